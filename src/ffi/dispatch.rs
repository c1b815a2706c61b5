//! The handles a C message handler was called with, on the thread running it.
//!
//! Every `nopoll_msg_*` / `nopoll_conn_*` call resolves its handle in a
//! global table (a lock and two atomic reference-count updates). Inside a
//! message handler nearly every call names the handler's own message,
//! connection or context, whose objects the dispatching frame keeps alive
//! for the whole call: a thread-local record of those three lets such calls
//! skip the table. The message's handle resolves on other threads too
//! (src/ffi/published.rs), and after the handler if it was kept with
//! `nopoll_msg_ref`.
//!
//! Without std there is no thread-local storage: every lookup goes to the
//! tables.

use super::msg::MsgObj;
use crate::runtime::{Connection, Context};

#[cfg(feature = "std")]
mod imp {
    use super::*;
    use crate::runtime::{ConnInner, CtxInner};
    use alloc::sync::Arc;
    use core::cell::Cell;
    use core::marker::PhantomData;

    #[derive(Clone, Copy)]
    struct Record {
        ctx: (usize, *const CtxInner),
        conn: (usize, *const ConnInner),
        msg: (usize, *const MsgObj),
    }

    const NONE: Record = Record {
        ctx: (0, core::ptr::null()),
        conn: (0, core::ptr::null()),
        msg: (0, core::ptr::null()),
    };

    std::thread_local! {
        static CURRENT: Cell<Record> = const { Cell::new(NONE) };
    }

    /// While alive, this thread resolves the three handles to the borrowed
    /// objects; dropping it restores the enclosing handler's record.
    pub(crate) struct Scope<'a> {
        prev: Record,
        _objects: PhantomData<&'a ()>,
    }

    /// Records the handles of a handler call. `'a` ties the scope to the
    /// objects: they outlive it, so the pointers stay valid while recorded.
    pub(crate) fn enter<'a>(
        ctx: (usize, &'a Context),
        conn: (usize, &'a Connection),
        msg: (usize, &'a MsgObj),
    ) -> Scope<'a> {
        let rec = Record {
            ctx: (ctx.0, Arc::as_ptr(&ctx.1.inner)),
            conn: (conn.0, Arc::as_ptr(&conn.1.inner)),
            msg: (msg.0, msg.1 as *const MsgObj),
        };
        Scope {
            prev: CURRENT.with(|c| c.replace(rec)),
            _objects: PhantomData,
        }
    }

    impl Drop for Scope<'_> {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.prev));
        }
    }

    fn current() -> Record {
        CURRENT.with(|c| c.get())
    }

    /// A new owner of `p`, an `Arc` pointer some live scope keeps alive.
    fn share<T>(p: *const T) -> Arc<T> {
        // SAFETY: `p` came from `Arc::as_ptr` of an Arc that a `Scope` on
        // this thread borrows; the scope is still recorded, so it is alive.
        unsafe {
            Arc::increment_strong_count(p);
            Arc::from_raw(p)
        }
    }

    pub(crate) fn conn(token: usize) -> Option<Connection> {
        with_conn(token, Connection::clone).ok()
    }

    /// Runs `f` on the recorded connection if `token` names it, without
    /// taking a reference; gives `f` back otherwise.
    pub(crate) fn with_conn<R, F: FnOnce(&Connection) -> R>(token: usize, f: F) -> Result<R, F> {
        let Some((c, _)) = recorded(token) else {
            return Err(f);
        };
        Ok(f(&c))
    }

    /// [`with_conn`], also handing `f` the handler's message: what a send
    /// on the handler's own connection needs, with one look at the record.
    #[inline(always)]
    pub(crate) fn with_conn_msg<R, F: FnOnce(&Connection, &MsgObj) -> R>(
        token: usize,
        f: F,
    ) -> Result<R, F> {
        let Some((c, m)) = recorded(token) else {
            return Err(f);
        };
        // SAFETY: recorded by the live scope that recorded the connection;
        // its message outlives it.
        Ok(f(&c, unsafe { &*m }))
    }

    /// The recorded connection, without its reference count, and the
    /// recorded message, if `token` names that connection. Private: the
    /// two are only good while the recording scope is, which the callers
    /// above are within (they only lend them to `f`).
    #[inline(always)]
    fn recorded(token: usize) -> Option<(core::mem::ManuallyDrop<Connection>, *const MsgObj)> {
        let rec = current();
        if token == 0 || rec.conn.0 != token {
            return None;
        }
        // SAFETY: `rec.conn.1` came from `Arc::as_ptr` of the connection a
        // live scope on this thread borrows, so it is alive; the count this
        // `Arc` did not take is never given back (ManuallyDrop).
        let c = core::mem::ManuallyDrop::new(Connection {
            inner: unsafe { Arc::from_raw(rec.conn.1) },
        });
        Some((c, rec.msg.1))
    }

    pub(crate) fn ctx(token: usize) -> Option<Context> {
        let (t, p) = current().ctx;
        (token != 0 && t == token).then(|| Context::from_inner(share(p)))
    }

    /// Runs `f` on the recorded message if `token` names it; gives `f`
    /// back otherwise.
    pub(crate) fn with_msg<R, F: FnOnce(&MsgObj) -> R>(token: usize, f: F) -> Result<R, F> {
        let (t, p) = current().msg;
        if token == 0 || t != token {
            return Err(f);
        }
        // SAFETY: recorded by a live scope whose message outlives it.
        Ok(f(unsafe { &*p }))
    }

    /// The context of the handler running on this thread, if one is.
    pub(crate) fn current_ctx() -> Option<Context> {
        let (t, _) = current().ctx;
        ctx(t)
    }

    /// Runs `f` on the message of the handler running on this thread, if
    /// one is.
    pub(crate) fn with_current_msg<R>(f: impl FnOnce(&MsgObj) -> R) -> Option<R> {
        let (t, _) = current().msg;
        with_msg(t, f).ok()
    }
}

#[cfg(not(feature = "std"))]
mod imp {
    use super::*;
    use core::marker::PhantomData;

    pub(crate) struct Scope<'a>(PhantomData<&'a ()>);

    pub(crate) fn enter<'a>(
        _ctx: (usize, &'a Context),
        _conn: (usize, &'a Connection),
        _msg: (usize, &'a MsgObj),
    ) -> Scope<'a> {
        Scope(PhantomData)
    }

    pub(crate) fn conn(_token: usize) -> Option<Connection> {
        None
    }

    pub(crate) fn with_conn<R, F: FnOnce(&Connection) -> R>(_token: usize, f: F) -> Result<R, F> {
        Err(f)
    }

    pub(crate) fn with_conn_msg<R, F: FnOnce(&Connection, &MsgObj) -> R>(
        _token: usize,
        f: F,
    ) -> Result<R, F> {
        Err(f)
    }

    pub(crate) fn current_ctx() -> Option<Context> {
        None
    }

    pub(crate) fn ctx(_token: usize) -> Option<Context> {
        None
    }

    pub(crate) fn with_msg<R, F: FnOnce(&MsgObj) -> R>(_token: usize, f: F) -> Result<R, F> {
        Err(f)
    }

    pub(crate) fn with_current_msg<R>(_f: impl FnOnce(&MsgObj) -> R) -> Option<R> {
        None
    }
}

pub(crate) use imp::*;
