//! Rust side of the C shim (`src/ffi/shim.c`, compiled by `build.rs`).
//!
//! A cdylib only exports symbols defined in Rust (rustc's version script
//! hides everything else), so the shim's `nopoll_strdup_printf`,
//! `nopoll_strdup_printfv` and `__nopoll_log` would be missing from
//! `libnopoll.so`. Where `build.rs` enables `nopoll_shim_trampolines`
//! (ELF x86_64/aarch64, rustc >= 1.88), the C functions are named
//! `nopoll_shim_*` (hidden) and the public names below are naked Rust
//! functions made of a single tail jump: registers and stack are untouched,
//! so the variadic arguments and the `va_list` arrive exactly as the caller
//! passed them. Elsewhere the C file defines the public names itself (fine
//! for `libnopoll.a`, the firmware case).
//!
//! Nothing here is declared by cbindgen: `cbindgen.toml` excludes these
//! names and `include/nopoll_trailer.h.in` declares the real prototypes.

#[allow(unused_imports)]
use crate::prelude::*;

/// cbindgen:ignore
#[cfg(nopoll_shim_trampolines)]
mod trampolines {
    // Only the addresses of these are used (as jump targets), never called
    // from Rust, so a parameterless declaration is enough; the real
    // prototypes are in shim.c / the header.
    unsafe extern "C" {
        fn nopoll_shim_strdup_printf();
        fn nopoll_shim_strdup_printfv();
        fn nopoll_shim_log();
    }

    // `@PLT` keeps the x86_64 jump valid in a shared object whatever the
    // target's visibility; the aarch64 linker adds a PLT stub by itself.
    #[cfg(target_arch = "x86_64")]
    macro_rules! tail_jump {
        ($target:ident) => {
            core::arch::naked_asm!("jmp {0}@PLT", sym $target)
        };
    }
    #[cfg(target_arch = "aarch64")]
    macro_rules! tail_jump {
        ($target:ident) => {
            core::arch::naked_asm!("b {0}", sym $target)
        };
    }

    macro_rules! trampoline {
        ($($(#[$doc:meta])* $public:ident => $target:ident),* $(,)?) => {$(
            $(#[$doc])*
            // SAFETY: a naked function whose whole body is one tail jump to a
            // C function with the very signature C callers use for the
            // public name; no prologue, no register or stack is touched, so
            // the callee sees the caller's arguments (variadic included) and
            // returns directly to the caller.
            #[unsafe(naked)]
            // SAFETY: the symbol name is unique in the link: shim.c defines
            // only the `nopoll_shim_*` names when trampolines are enabled.
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn $public() {
                tail_jump!($target)
            }
        )*};
    }

    trampoline! {
        /// `char * nopoll_strdup_printf (const char * chunk, ...);`
        nopoll_strdup_printf => nopoll_shim_strdup_printf,
        /// `char * nopoll_strdup_printfv (const char * chunk, va_list args);`
        nopoll_strdup_printfv => nopoll_shim_strdup_printfv,
        /// `void __nopoll_log (noPollCtx * ctx, const char * function_name,
        /// const char * file, int line, noPollDebugLevel level,
        /// const char * message, ...);`
        __nopoll_log => nopoll_shim_log,
    }
}
