//! The C ABI: one file per handle type, thin, no logic.
//!
//! Conventions (every exported function follows them):
//! - every body runs inside [`boundary`], so a panic never unwinds into C;
//! - every pointer argument is NULL-checked and the documented failure value
//!   returned;
//! - handles are reference-counted; `into_raw`/`from_raw` happen only in
//!   `handle.rs`;
//! - every `unsafe` block carries a `// SAFETY:` line.
#![allow(non_camel_case_types, non_snake_case)]

pub mod types;
pub use types::*;

/// Runs `f`; if it panics, returns `fallback` instead of unwinding into C.
///
/// Release and debug builds use `panic = "abort"`, so there a panic aborts;
/// test builds unwind and this catches it.
pub(crate) fn boundary<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    #[cfg(feature = "std")]
    {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(fallback)
    }
    #[cfg(not(feature = "std"))]
    {
        let _ = fallback;
        f()
    }
}
