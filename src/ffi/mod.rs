//! The C ABI: one file per handle type, thin, no logic.
//!
//! Conventions (every exported function follows them):
//! - every body runs inside [`boundary`], so a panic never unwinds into C;
//! - every pointer argument is NULL-checked (handles are looked up in
//!   [`handle`] tables) and the documented failure value returned;
//! - handles are reference-counted tokens; the token/object mapping lives
//!   only in `handle.rs`;
//! - every `unsafe` block carries a `// SAFETY:` line.
#![allow(non_camel_case_types, non_snake_case)]

#[allow(unused_imports)]
use crate::prelude::*;

pub mod types;
pub use types::*;
mod shim_bridge;

mod conn;
mod ctx;
mod dispatch;
pub(crate) mod handle;
mod hooks;
mod http;
mod log;
mod loop_io;
mod msg;
mod net_ops;
mod opts;
mod published;
mod scale;
mod tls;
mod util;

/// The boundary every exported function's body runs in (the shape of the
/// C API: `boundary(FAILURE, || { ...look up handles, NULL-check... })`):
/// runs `f`; if it panics, returns `fallback`, the function's documented
/// failure value, instead of unwinding into C.
///
/// A function rather than a macro (rustls-ffi's `ffi_panic_boundary!`):
/// the closure gives the same single shape, and rustfmt and clippy see
/// the body. tests/ffi_shape.rs fails when an exported function does not
/// use it. Release and debug builds use `panic = "abort"`, so there a
/// panic aborts; test builds unwind and this catches it.
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

pub(crate) use glue::*;

mod glue {
    use super::handle::Table;
    use super::types::*;
    #[allow(unused_imports)]
    use crate::prelude::*;
    use crate::runtime::{ConnInner, Connection, Context, CtxInner};
    use alloc::ffi::CString;
    use core::ffi::{c_char, CStr};

    pub(crate) static CTXS: Table<CtxInner> = Table::new(1);
    pub(crate) static CONNS: Table<ConnInner> = Table::new(2);

    /// What the C API attaches to a context or a connection (its
    /// `Attachment`): its handle, whose slot is freed when the object is
    /// destroyed (these functions), with the strings handed to C
    /// (certificate paths, ...) that the slot keeps until then, so that
    /// pointers given to C never dangle.
    fn ctx_ended(token: usize) {
        super::loop_io::withdraw_stop_cell(token);
        CTXS.reclaim(token);
    }

    fn conn_ended(token: usize) {
        CONNS.reclaim(token);
    }

    /// The context behind a C handle.
    pub(crate) fn ctx_from(p: *mut noPollCtx) -> Option<Context> {
        super::dispatch::ctx(p as usize).or_else(|| CTXS.get(p as usize).map(Context::from_inner))
    }

    /// The handle of a context (created on first use, owned by the library).
    /// Inlined with std: the release build's thin LTO stopped inlining it
    /// into the per-message handler when `CtxInner` changed (+15
    /// instructions a message).
    #[cfg_attr(feature = "std", inline(always))]
    pub(crate) fn ctx_handle(ctx: &Context) -> *mut noPollCtx {
        let slot = &ctx.inner.attachment;
        // The word is set once (from 0) and its slot is freed only when the
        // object is destroyed, so for an object we hold it always names a
        // live slot: no table lookup on this hot path.
        let cur = slot.word();
        if cur != 0 {
            return cur as *mut noPollCtx;
        }
        // Made under the table's lock: one thread makes it.
        match CTXS.attached(&ctx.inner, slot, ctx_ended) {
            Some((h, made)) => {
                if made {
                    super::loop_io::publish_stop_cell(h, ctx);
                }
                h as *mut noPollCtx
            }
            None => core::ptr::null_mut(),
        }
    }

    /// The connection behind a C handle.
    pub(crate) fn conn_from(p: *mut noPollConn) -> Option<Connection> {
        super::dispatch::conn(p as usize)
            .or_else(|| CONNS.get(p as usize).map(|inner| Connection { inner }))
    }

    /// The handle of a connection (created on first use, owned by the
    /// library). Inlined with std, as `ctx_handle`.
    #[cfg_attr(feature = "std", inline(always))]
    pub(crate) fn conn_handle(conn: &Connection) -> *mut noPollConn {
        let slot = &conn.inner.attachment;
        // As for contexts: set once, freed with the object.
        let cur = slot.word();
        if cur != 0 {
            return cur as *mut noPollConn;
        }
        CONNS
            .attached(&conn.inner, slot, conn_ended)
            .map_or(core::ptr::null_mut(), |(h, _)| h as *mut noPollConn)
    }

    /// A handle on which the caller owns one reference.
    pub(crate) fn conn_handle_owned(conn: &Connection) -> *mut noPollConn {
        let h = conn_handle(conn);
        if h.is_null() || !CONNS.add_ref(h as usize) {
            return core::ptr::null_mut();
        }
        h
    }

    /// A C string argument as `&str` (None for NULL or invalid UTF-8).
    ///
    /// # Safety
    /// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
    pub(crate) unsafe fn cstr<'a>(p: *const c_char) -> Option<&'a str> {
        if p.is_null() {
            return None;
        }
        // SAFETY: non-NULL and NUL-terminated per the caller's contract.
        crate::protocol::utf8::to_str(unsafe { CStr::from_ptr(p) }.to_bytes())
    }

    /// A string kept in `strings` (once per distinct value): its pointer.
    fn keep(strings: &mut Vec<CString>, c: CString) -> *const c_char {
        if let Some(found) = strings.iter().find(|x| **x == c) {
            return found.as_ptr();
        }
        let p = c.as_ptr();
        strings.push(c);
        p
    }

    /// A C string stored with a connection so the pointer stays valid as
    /// long as the connection (NULL for None).
    pub(crate) fn conn_cstr(conn: &Connection, s: Option<&str>) -> *const c_char {
        let Some(c) = s.and_then(|s| CString::new(s).ok()) else {
            return core::ptr::null();
        };
        let h = conn_handle(conn);
        CONNS
            .with_strings(h as usize, |strings| keep(strings, c))
            .unwrap_or(core::ptr::null())
    }

    /// A C string stored with a context so the pointer stays valid as long
    /// as the context (NULL for None).
    pub(crate) fn ctx_cstr(ctx: &Context, s: Option<&str>) -> *const c_char {
        let Some(c) = s.and_then(|s| CString::new(s).ok()) else {
            return core::ptr::null();
        };
        let h = ctx_handle(ctx);
        CTXS.with_strings(h as usize, |strings| keep(strings, c))
            .unwrap_or(core::ptr::null())
    }

    /// A `malloc`ed copy of `s` (freed by the caller with `nopoll_free`).
    pub(crate) fn malloc_str(s: &[u8]) -> *mut c_char {
        // SAFETY: plain allocation; the result is checked for NULL.
        let p = unsafe { crate::sys::malloc(s.len() + 1) } as *mut u8;
        if p.is_null() {
            return core::ptr::null_mut();
        }
        // SAFETY: `p` has room for `s.len() + 1` bytes and does not overlap `s`.
        unsafe {
            core::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
            *p.add(s.len()) = 0;
        }
        p as *mut c_char
    }

    /// Sets the C `errno`.
    /// Sets the caller's `errno` through the socket table (firmware's errno
    /// is whatever its C library makes it).
    pub(crate) fn set_errno(v: i32) {
        if let Some(f) = crate::net::ops().set_errno {
            // SAFETY: the table's errno setter takes a plain integer.
            unsafe { f(v) };
        }
    }

    /// Wraps a C `user_data` pointer so handlers can carry it across threads.
    #[derive(Clone, Copy)]
    pub(crate) struct UserData(pub noPollPtr);
    // SAFETY: the pointer is opaque to the library and only handed back to
    // the C callback it came with; what it points to is the caller's
    // business, exactly as with upstream nopoll, whose loop may run the
    // callback on another thread than the one that installed it.
    unsafe impl Send for UserData {}
    // SAFETY: as above; the library never dereferences it.
    unsafe impl Sync for UserData {}

    impl UserData {
        /// The pointer (a method, so closures capture the whole wrapper).
        pub(crate) fn get(self) -> noPollPtr {
            self.0
        }
    }
}
