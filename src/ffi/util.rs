//! Utilities of `nopoll.h`: memory, strings, base64, bits, time, mutexes.

#[allow(unused_imports)]
use crate::prelude::*;

use super::types::*;
use super::{boundary, conn_from, ctx_from};
use crate::platform::MutexHooks;
use crate::protocol::base64;
use crate::runtime::LogLevel;
use core::ffi::{c_char, c_int, c_long};

// ------------------------------------------------------------ memory

/// calloc wrapper (the allocator of everything crossing the boundary).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_calloc(count: usize, size: usize) -> noPollPtr {
    boundary(core::ptr::null_mut(), || {
        // SAFETY: libc calloc checks the multiplication for overflow.
        unsafe { crate::sys::calloc(count, size) }
    })
}

/// realloc wrapper.
///
/// # Safety
/// `ref_` is NULL or memory from this allocator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_realloc(ref_: noPollPtr, size: usize) -> noPollPtr {
    boundary(core::ptr::null_mut(), || {
        // SAFETY: per this function's contract.
        unsafe { crate::sys::realloc(ref_, size) }
    })
}

/// free() if non-NULL.
///
/// # Safety
/// `ref_` is NULL or memory from this allocator, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_free(ref_: noPollPtr) {
    boundary((), || {
        if !ref_.is_null() {
            // SAFETY: per this function's contract.
            unsafe { crate::sys::free(ref_) }
        }
    })
}

/// strdup returning NULL for NULL (free with `nopoll_free`).
///
/// # Safety
/// `buffer` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_strdup(buffer: *const c_char) -> *mut c_char {
    boundary(core::ptr::null_mut(), || {
        if buffer.is_null() {
            return core::ptr::null_mut();
        }
        // SAFETY: NUL-terminated per the contract.
        let s = unsafe { core::ffi::CStr::from_ptr(buffer) };
        super::malloc_str(s.to_bytes())
    })
}

// ------------------------------------------------------------ strings

/// String equality; both NULL = true, one NULL = false.
///
/// # Safety
/// Each string is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_cmp(string1: *const c_char, string2: *const c_char) -> nopoll_bool {
    boundary(nopoll_false, || {
        match (string1.is_null(), string2.is_null()) {
            (true, true) => nopoll_true,
            (false, false) => {
                // SAFETY: both NUL-terminated per the contract.
                let (a, b) = unsafe {
                    (
                        core::ffi::CStr::from_ptr(string1),
                        core::ffi::CStr::from_ptr(string2),
                    )
                };
                (a == b) as nopoll_bool
            }
            _ => nopoll_false,
        }
    })
}

/// Compares the first `bytes` characters; both strings must have them.
///
/// # Safety
/// Each string is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_ncmp(
    string1: *const c_char,
    string2: *const c_char,
    bytes: c_int,
) -> nopoll_bool {
    boundary(nopoll_false, || {
        if bytes <= 0 {
            return nopoll_false;
        }
        match (string1.is_null(), string2.is_null()) {
            (true, true) => nopoll_true,
            (false, false) => {
                let n = bytes as usize;
                // SAFETY: both NUL-terminated per the contract.
                let (a, b) = unsafe {
                    (
                        core::ffi::CStr::from_ptr(string1).to_bytes(),
                        core::ffi::CStr::from_ptr(string2).to_bytes(),
                    )
                };
                (a.len() >= n && b.len() >= n && a[..n] == b[..n]) as nopoll_bool
            }
            _ => nopoll_false,
        }
    })
}

/// Strips leading and trailing whitespace in place; `trimmed` receives the
/// number of characters removed.
///
/// # Safety
/// `chunk` is NULL or a writable NUL-terminated string; `trimmed` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_trim(chunk: *mut c_char, trimmed: *mut c_int) {
    boundary((), || {
        if chunk.is_null() {
            return;
        }
        // SAFETY: NUL-terminated per the contract.
        let len = unsafe { crate::sys::strlen(chunk) };
        // SAFETY: `chunk` is valid and writable for `len + 1` bytes.
        let s = unsafe { core::slice::from_raw_parts_mut(chunk as *mut u8, len + 1) };
        let ws =
            |b: u8| b == b' ' || b == b'\t' || b == b'\n' || b == b'\r' || b == 0x0b || b == 0x0c;
        let start = s[..len].iter().position(|&b| !ws(b)).unwrap_or(len);
        let end = s[..len]
            .iter()
            .rposition(|&b| !ws(b))
            .map_or(start, |i| i + 1);
        s.copy_within(start..end, 0);
        s[end - start] = 0;
        if !trimmed.is_null() {
            // SAFETY: writable per the contract.
            unsafe { *trimmed = (len - (end - start)) as c_int };
        }
    })
}

// ------------------------------------------------------------ base64

/// Base64 of `length` bytes into `output` (capacity in `*output_size`,
/// NUL-terminated); `*output_size` receives the length (or the size needed).
///
/// # Safety
/// `content` valid for `length` bytes; `output` writable for `*output_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_base64_encode(
    content: *const c_char,
    length: c_int,
    output: *mut c_char,
    output_size: *mut c_int,
) -> nopoll_bool {
    boundary(nopoll_false, || {
        if content.is_null() || output.is_null() || output_size.is_null() || length <= 0 {
            return nopoll_false;
        }
        // SAFETY: per the contract.
        let (input, cap) = unsafe {
            (
                core::slice::from_raw_parts(content as *const u8, length as usize),
                *output_size,
            )
        };
        let needed = base64::encoded_len(input.len()).unwrap_or(usize::MAX);
        if cap < 0 || needed >= cap as usize {
            // SAFETY: writable per the contract.
            unsafe { *output_size = (needed.saturating_add(1)).min(c_int::MAX as usize) as c_int };
            return nopoll_false;
        }
        // SAFETY: `output` is writable for `cap > needed` bytes.
        let out = unsafe { core::slice::from_raw_parts_mut(output as *mut u8, cap as usize) };
        let Some(n) = base64::encode_slice(input, out) else {
            return nopoll_false;
        };
        out[n] = 0;
        // SAFETY: writable per the contract.
        unsafe { *output_size = n as c_int };
        nopoll_true
    })
}

/// Decodes base64 into `output` (capacity in `*output_size`), NUL-terminated.
///
/// # Safety
/// `content` valid for `length` bytes; `output` writable for `*output_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_base64_decode(
    content: *const c_char,
    length: c_int,
    output: *mut c_char,
    output_size: *mut c_int,
) -> nopoll_bool {
    boundary(nopoll_false, || {
        if content.is_null() || output.is_null() || output_size.is_null() || length <= 0 {
            return nopoll_false;
        }
        // SAFETY: per the contract.
        let (input, cap) = unsafe {
            (
                core::slice::from_raw_parts(content as *const u8, length as usize),
                *output_size,
            )
        };
        let Some(decoded) = base64::decode(input) else {
            return nopoll_false;
        };
        if cap < 0 || decoded.len() >= cap as usize {
            return nopoll_false;
        }
        // SAFETY: `output` is writable for `cap > decoded.len()` bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(decoded.as_ptr(), output as *mut u8, decoded.len());
            *output.add(decoded.len()) = 0;
            *output_size = decoded.len() as c_int;
        }
        nopoll_true
    })
}

// ------------------------------------------------------------ bits

/// Big-endian unsigned 16-bit read.
///
/// # Safety
/// `buffer` is NULL or readable for 2 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_get_16bit(buffer: *const c_char) -> c_int {
    boundary(0, || {
        if buffer.is_null() {
            return 0;
        }
        // SAFETY: readable for 2 bytes per the contract.
        let b = unsafe { core::slice::from_raw_parts(buffer as *const u8, 2) };
        u16::from_be_bytes([b[0], b[1]]) as c_int
    })
}

/// Big-endian 32-bit read.
///
/// # Safety
/// `buffer` is NULL or readable for 4 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_get_32bit(buffer: *const c_char) -> c_int {
    boundary(0, || {
        if buffer.is_null() {
            return 0;
        }
        // SAFETY: readable for 4 bytes per the contract.
        let b = unsafe { core::slice::from_raw_parts(buffer as *const u8, 4) };
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as c_int
    })
}

/// `buffer[0]` as 0..255.
///
/// # Safety
/// `buffer` is NULL or readable for 1 byte.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_get_8bit(buffer: *const c_char) -> c_int {
    boundary(0, || {
        if buffer.is_null() {
            return 0;
        }
        // SAFETY: readable for 1 byte per the contract.
        unsafe { *(buffer as *const u8) as c_int }
    })
}

/// Big-endian 16-bit write.
///
/// # Safety
/// `buffer` is NULL or writable for 2 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_set_16bit(value: c_int, buffer: *mut c_char) {
    boundary((), || {
        if !buffer.is_null() {
            // SAFETY: writable for 2 bytes per the contract.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    (value as u16).to_be_bytes().as_ptr(),
                    buffer as *mut u8,
                    2,
                )
            };
        }
    })
}

/// Big-endian 32-bit write.
///
/// # Safety
/// `buffer` is NULL or writable for 4 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_set_32bit(value: c_int, buffer: *mut c_char) {
    boundary((), || {
        if !buffer.is_null() {
            // SAFETY: writable for 4 bytes per the contract.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    (value as u32).to_be_bytes().as_ptr(),
                    buffer as *mut u8,
                    4,
                )
            };
        }
    })
}

/// Bit `position` (0 = LSB) of `byte`.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_get_bit(byte: c_char, position: c_int) -> c_int {
    boundary(0, || {
        if !(0..8).contains(&position) {
            return 0;
        }
        ((byte as u8 >> position) & 1) as c_int
    })
}

/// Sets bit `position` of `buffer[0]`.
///
/// # Safety
/// `buffer` is NULL or writable for 1 byte.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_set_bit(buffer: *mut c_char, position: c_int) {
    boundary((), || {
        if !buffer.is_null() && (0..8).contains(&position) {
            // SAFETY: writable per the contract.
            unsafe { *(buffer as *mut u8) |= 1 << position };
        }
    })
}

fn binary(a: c_int) -> String {
    format!("{:032b}", a as u32)
}

/// Writes the binary form of `a` into `buffer` (bounded); returns `buffer`.
///
/// # Safety
/// `buffer` is NULL or writable for `buf_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_int2bin(
    a: c_int,
    buffer: *mut c_char,
    buf_size: c_int,
) -> *mut c_char {
    boundary(core::ptr::null_mut(), || {
        if buffer.is_null() || buf_size <= 0 {
            return buffer;
        }
        let s = binary(a);
        let n = s.len().min(buf_size as usize - 1);
        // SAFETY: writable for `buf_size > n` bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(s.as_ptr(), buffer as *mut u8, n);
            *buffer.add(n) = 0;
        }
        buffer
    })
}

/// Logs the binary form of `value`.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_int2bin_print(ctx: *mut noPollCtx, value: c_int) {
    boundary((), || {
        if let Some(c) = ctx_from(ctx) {
            c.log(LogLevel::Debug, format_args!("{value} = {}", binary(value)));
        }
    })
}

/// Logs the 8 bits of `byte`.
///
/// # Safety
/// `label` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_show_byte(ctx: *mut noPollCtx, byte: c_char, label: *const c_char) {
    // SAFETY: per this function's contract.
    let label = unsafe { super::cstr(label) }.unwrap_or("");
    boundary((), || {
        if let Some(c) = ctx_from(ctx) {
            c.log(LogLevel::Debug, format_args!("{label}: {:08b}", byte as u8));
        }
    })
}

/// XORs `payload_size` bytes with the 4-byte `mask` starting at `desp`.
///
/// # Safety
/// `payload` writable for `payload_size` bytes; `mask` readable for 4 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_mask_content(
    ctx: *mut noPollCtx,
    payload: *mut c_char,
    payload_size: c_int,
    mask: *mut c_char,
    desp: c_int,
) {
    boundary((), || {
        let _ = ctx;
        if payload.is_null() || mask.is_null() || payload_size <= 0 || desp < 0 {
            return;
        }
        // SAFETY: per this function's contract.
        let (data, key) = unsafe {
            (
                core::slice::from_raw_parts_mut(payload as *mut u8, payload_size as usize),
                core::slice::from_raw_parts(mask as *const u8, 4),
            )
        };
        crate::protocol::mask::apply_mask(data, [key[0], key[1], key[2], key[3]], desp as usize);
    })
}

// ------------------------------------------------------------ time, misc

/// `result = a - b` (normalised: `0 <= tv_usec < 1000000`); 1 if
/// negative, else 0.
///
/// # Safety
/// Each pointer is NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_timeval_substract(
    a: *mut crate::sys::timeval,
    b: *mut crate::sys::timeval,
    result: *mut crate::sys::timeval,
) -> c_int {
    boundary(-1, || {
        if a.is_null() || b.is_null() || result.is_null() {
            return 0;
        }
        // SAFETY: valid per the contract.
        let (a, b, r) = unsafe { (&mut *a, &*b, &mut *result) };
        let us = |t: &crate::sys::timeval| (t.tv_sec as i128) * 1_000_000 + t.tv_usec as i128;
        let diff = us(a) - us(b);
        // Normalise a's fields as upstream does.
        let na = us(a);
        a.tv_sec = na.div_euclid(1_000_000) as crate::sys::time_t;
        a.tv_usec = na.rem_euclid(1_000_000) as crate::sys::suseconds_t;
        // Normalised like timersub(3): 0 <= tv_usec < 1_000_000, so -0.5 s is
        // { -1, 500000 }.
        r.tv_sec = diff.div_euclid(1_000_000) as crate::sys::time_t;
        r.tv_usec = diff.rem_euclid(1_000_000) as crate::sys::suseconds_t;
        (diff < 0) as c_int
    })
}

/// Sleeps `microseconds` µs.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_sleep(microseconds: c_long) {
    boundary((), || {
        if microseconds > 0 {
            crate::platform::sleep(core::time::Duration::from_micros(microseconds as u64));
        }
    })
}

/// True for a usable socket descriptor (>= 0).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_socket_is_valid(socket: NOPOLL_SOCKET) -> nopoll_bool {
    boundary(nopoll_false, || (socket >= 0) as nopoll_bool)
}

/// Fills `nonce_size` bytes with random data.
///
/// # Safety
/// `buffer` is NULL or writable for `nonce_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_nonce(buffer: *mut c_char, nonce_size: c_int) -> nopoll_bool {
    boundary(nopoll_false, || {
        if buffer.is_null() || nonce_size <= 0 {
            return nopoll_false;
        }
        // SAFETY: writable per the contract.
        let out =
            unsafe { core::slice::from_raw_parts_mut(buffer as *mut u8, nonce_size as usize) };
        crate::platform::fill_random(out);
        nopoll_true
    })
}

/// Optional end-of-process cleanup (nothing global to release without TLS).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_cleanup_library() {
    boundary((), || {})
}

// ------------------------------------------------------------ mutex hooks

fn hooks() -> Option<MutexHooks> {
    crate::platform::mutex_hooks()
}

/// Installs the process-wide mutex callbacks (all four; any NULL
/// uninstalls). Without std the library's own locks are made with them
/// (install them before creating a context); std builds lock with std
/// mutexes and use the hooks only for `nopoll_mutex_*`.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_thread_handlers(
    mutex_create: noPollMutexCreate,
    mutex_destroy: noPollMutexDestroy,
    mutex_lock: noPollMutexLock,
    mutex_unlock: noPollMutexUnlock,
) {
    boundary((), || {
        let h = match (mutex_create, mutex_destroy, mutex_lock, mutex_unlock) {
            (Some(create), Some(destroy), Some(lock), Some(unlock)) => Some(MutexHooks {
                create,
                destroy,
                lock,
                unlock,
            }),
            _ => None,
        };
        crate::platform::install_mutex_hooks(h);
    })
}

/// Creates a mutex through the installed callback; NULL without one.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_mutex_create() -> noPollPtr {
    boundary(core::ptr::null_mut(), || {
        match hooks().map(|h| h.create) {
            // SAFETY: the callback the caller installed.
            Some(f) => unsafe { f() },
            None => core::ptr::null_mut(),
        }
    })
}

/// Destroys a mutex through the callback.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_mutex_destroy(mutex: noPollPtr) {
    boundary((), || {
        if let (false, Some(f)) = (mutex.is_null(), hooks().map(|h| h.destroy)) {
            // SAFETY: the callback the caller installed, with a mutex it created.
            unsafe { f(mutex) }
        }
    })
}

/// Locks a mutex through the callback.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_mutex_lock(mutex: noPollPtr) {
    boundary((), || {
        if let (false, Some(f)) = (mutex.is_null(), hooks().map(|h| h.lock)) {
            // SAFETY: as above.
            unsafe { f(mutex) }
        }
    })
}

/// Unlocks a mutex through the callback.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_mutex_unlock(mutex: noPollPtr) {
    boundary((), || {
        if let (false, Some(f)) = (mutex.is_null(), hooks().map(|h| h.unlock)) {
            // SAFETY: as above.
            unsafe { f(mutex) }
        }
    })
}

/// Plain recv() I/O callback of non-TLS connections.
///
/// # Safety
/// `buffer` writable for `buffer_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_default_receive(
    conn: *mut noPollConn,
    buffer: *mut c_char,
    buffer_size: c_int,
) -> c_int {
    boundary(-1, || {
        let Some(c) = conn_from(conn) else {
            return -1;
        };
        if buffer.is_null() || buffer_size <= 0 {
            return -1;
        }
        // SAFETY: per the contract.
        let buf =
            unsafe { core::slice::from_raw_parts_mut(buffer as *mut u8, buffer_size as usize) };
        match crate::net::recv(c.socket(), buf) {
            Ok(n) => n as c_int,
            Err(e) => {
                super::set_errno(e.errno());
                -1
            }
        }
    })
}

/// Plain send() I/O callback of non-TLS connections.
///
/// # Safety
/// `buffer` readable for `buffer_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_default_send(
    conn: *mut noPollConn,
    buffer: *mut c_char,
    buffer_size: c_int,
) -> c_int {
    boundary(-1, || {
        let Some(c) = conn_from(conn) else {
            return -1;
        };
        if buffer.is_null() || buffer_size <= 0 {
            return -1;
        }
        // SAFETY: per the contract.
        let buf = unsafe { core::slice::from_raw_parts(buffer as *const u8, buffer_size as usize) };
        match crate::net::send(c.socket(), buf) {
            Ok(n) => n as c_int,
            Err(e) => {
                super::set_errno(e.errno());
                -1
            }
        }
    })
}
