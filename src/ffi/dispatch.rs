//! The handles a C message handler was called with, on the thread running it.
//!
//! Every `nopoll_msg_*` / `nopoll_conn_*` call resolves its handle in a
//! global table (a lock and two atomic reference-count updates). Inside a
//! message handler nearly every call names the handler's own message,
//! connection or context, whose objects the dispatching frame keeps alive
//! for the whole call: a thread-local record of those three lets such calls
//! skip the table. The message stays in the table too, so a handle passed
//! to another thread, or kept with `nopoll_msg_ref`, resolves as before.
//!
//! Without std there is no thread-local storage: every lookup goes to the
//! tables.

use super::msg::MsgObj;
use crate::runtime::{Connection, Context, Message};
use alloc::sync::Arc;

#[cfg(feature = "std")]
mod imp {
    use super::*;
    use crate::runtime::{ConnInner, CtxInner};
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
        /// The message object of this thread's last handler call, kept for
        /// the next one when nothing else held it (no allocation per
        /// message).
        static SPARE: Cell<Option<Arc<MsgObj>>> = const { Cell::new(None) };
    }

    /// An object holding `msg`, in this thread's spare allocation if there
    /// is one.
    pub(crate) fn msg_obj(msg: Message) -> Arc<MsgObj> {
        if let Some(mut spare) = SPARE.with(|s| s.take()) {
            if let Some(o) = Arc::get_mut(&mut spare) {
                o.msg = msg;
                return spare;
            }
        }
        Arc::new(MsgObj { msg })
    }

    /// Keeps `obj` for [`msg_obj`] if nothing else references it (its
    /// payload is let go now).
    pub(crate) fn recycle(mut obj: Arc<MsgObj>) {
        if let Some(o) = Arc::get_mut(&mut obj) {
            o.msg = Message::empty();
            SPARE.with(|s| s.set(Some(obj)));
        }
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
        msg: (usize, &'a Arc<MsgObj>),
    ) -> Scope<'a> {
        let rec = Record {
            ctx: (ctx.0, Arc::as_ptr(&ctx.1.inner)),
            conn: (conn.0, Arc::as_ptr(&conn.1.inner)),
            msg: (msg.0, Arc::as_ptr(msg.1)),
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
        let (t, p) = current().conn;
        if token == 0 || t != token {
            return Err(f);
        }
        // SAFETY: `p` came from `Arc::as_ptr` of the connection a live
        // scope on this thread borrows, so it is alive; the count this
        // `Arc` did not take is never given back (ManuallyDrop).
        let c = core::mem::ManuallyDrop::new(Connection {
            inner: unsafe { Arc::from_raw(p) },
        });
        Ok(f(&c))
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
        // SAFETY: recorded by a live scope whose message Arc outlives it.
        Ok(f(unsafe { &*p }))
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
        _msg: (usize, &'a Arc<MsgObj>),
    ) -> Scope<'a> {
        Scope(PhantomData)
    }

    pub(crate) fn conn(_token: usize) -> Option<Connection> {
        None
    }

    pub(crate) fn with_conn<R, F: FnOnce(&Connection) -> R>(_token: usize, f: F) -> Result<R, F> {
        Err(f)
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

    pub(crate) fn msg_obj(msg: Message) -> Arc<MsgObj> {
        Arc::new(MsgObj { msg })
    }

    pub(crate) fn recycle(_obj: Arc<MsgObj>) {}
}

pub(crate) use imp::*;
