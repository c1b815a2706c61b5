//! What a `no_std` build needs from its host: the C heap and an abort.
//!
//! Firmware provides `malloc`, `free`, `realloc` and `abort`; the crate
//! allocates through them so that memory crosses the C boundary with one
//! allocator, and a panic (which no input can reach) aborts.

use core::alloc::{GlobalAlloc, Layout};

/// Alignment every C `malloc` guarantees, even on 32-bit targets.
const MALLOC_ALIGN: usize = 8;

struct CHeap;

// SAFETY: every path returns memory from the C heap sized and aligned for
// the layout, or NULL; `dealloc`/`realloc` only receive pointers from here.
unsafe impl GlobalAlloc for CHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: plain malloc of a non-zero size (Layout sizes of GlobalAlloc are non-zero).
            return unsafe { crate::sys::malloc(layout.size()) as *mut u8 };
        }
        // Over-aligned: allocate extra room and keep the original pointer just before the block.
        let Some(total) = layout
            .size()
            .checked_add(layout.align() + core::mem::size_of::<usize>())
        else {
            return core::ptr::null_mut();
        };
        // SAFETY: malloc of a computed, non-overflowing size.
        let raw = unsafe { crate::sys::malloc(total) as *mut u8 };
        if raw.is_null() {
            return raw;
        }
        let start = raw as usize + core::mem::size_of::<usize>();
        let aligned = (start + layout.align() - 1) & !(layout.align() - 1);
        let p = aligned as *mut u8;
        // SAFETY: `aligned - size_of::<usize>()` lies inside the block, after `raw`.
        unsafe { (p as *mut usize).sub(1).write_unaligned(raw as usize) };
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: `ptr` came from malloc in `alloc` with the same layout.
            unsafe { crate::sys::free(ptr as *mut crate::sys::c_void) };
        } else {
            // SAFETY: `alloc` stored the original pointer just before `ptr`.
            let raw = unsafe { (ptr as *mut usize).sub(1).read_unaligned() };
            // SAFETY: `raw` is the pointer malloc returned.
            unsafe { crate::sys::free(raw as *mut crate::sys::c_void) };
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: `ptr` came from malloc with this alignment; realloc keeps it.
            return unsafe {
                crate::sys::realloc(ptr as *mut crate::sys::c_void, new_size) as *mut u8
            };
        }
        // SAFETY: the new layout is valid because the caller guarantees it for realloc.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: allocation with a valid layout.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are at least min(old, new) bytes and do not overlap.
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: `ptr` was allocated here with `layout`.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}

#[global_allocator]
static HEAP: CHeap = CHeap;

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: abort has no preconditions and never returns.
    unsafe { crate::sys::abort() }
}

// The compiler lowers copies and fills to the ARM EABI helpers
// `__aeabi_memcpy*`, `__aeabi_memmove*`, `__aeabi_memset*` and
// `__aeabi_memclr*`. `compiler_builtins` defines them *weakly*, as jumps to
// its own byte-oriented `memcpy`/`memmove`/`memset` (1 KB of code), and
// since those weak definitions sit in `libnopoll.a` they win over the C
// library's whatever the link order. These strong definitions, in the
// object the firmware always links, forward to the C library's `memcpy`,
// `memmove` and `memset` instead (README, "Firmware", memcpy): the
// firmware has them anyway, often word-wise or in assembly, and the
// builtins' copies are no longer linked. (Should the link resolve
// `memcpy` to the builtins' weak one, as when `libnopoll.a` comes first,
// these still work: they only jump.) `ldr`/`bx` rather than `b.w`: the
// Cortex-M0 has no 32-bit branch.
#[cfg(all(target_arch = "arm", target_os = "none"))]
core::arch::global_asm!(
    ".pushsection .text.nopoll_aeabi_mem,\"ax\",%progbits",
    ".syntax unified",
    ".thumb",
    ".p2align 2",
    // (dest, src, n) as memcpy's.
    ".global __aeabi_memcpy",
    ".type __aeabi_memcpy,%function",
    ".thumb_func",
    "__aeabi_memcpy:",
    "ldr r3, =memcpy",
    "bx r3",
    ".global __aeabi_memcpy4",
    ".thumb_set __aeabi_memcpy4, __aeabi_memcpy",
    ".global __aeabi_memcpy8",
    ".thumb_set __aeabi_memcpy8, __aeabi_memcpy",
    // (dest, src, n) as memmove's.
    ".global __aeabi_memmove",
    ".type __aeabi_memmove,%function",
    ".thumb_func",
    "__aeabi_memmove:",
    "ldr r3, =memmove",
    "bx r3",
    ".global __aeabi_memmove4",
    ".thumb_set __aeabi_memmove4, __aeabi_memmove",
    ".global __aeabi_memmove8",
    ".thumb_set __aeabi_memmove8, __aeabi_memmove",
    // (dest, n, c) -> memset (dest, c, n).
    ".global __aeabi_memset",
    ".type __aeabi_memset,%function",
    ".thumb_func",
    "__aeabi_memset:",
    "mov r3, r1",
    "mov r1, r2",
    "mov r2, r3",
    "ldr r3, =memset",
    "bx r3",
    ".global __aeabi_memset4",
    ".thumb_set __aeabi_memset4, __aeabi_memset",
    ".global __aeabi_memset8",
    ".thumb_set __aeabi_memset8, __aeabi_memset",
    // (dest, n) -> memset (dest, 0, n).
    ".global __aeabi_memclr",
    ".type __aeabi_memclr,%function",
    ".thumb_func",
    "__aeabi_memclr:",
    "mov r2, r1",
    "movs r1, #0",
    "ldr r3, =memset",
    "bx r3",
    ".global __aeabi_memclr4",
    ".thumb_set __aeabi_memclr4, __aeabi_memclr",
    ".global __aeabi_memclr8",
    ".thumb_set __aeabi_memclr8, __aeabi_memclr",
    ".ltorg",
    ".popsection",
);
