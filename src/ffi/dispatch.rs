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
    use crate::sync::Arc;
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
        // The count this `Arc` did not take is never given back (ManuallyDrop).
        let c = core::mem::ManuallyDrop::new(Connection {
            // SAFETY: `rec.conn.1` came from `Arc::as_ptr` of the connection
            // a live scope on this thread borrows, so it is alive.
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

#[cfg(all(test, feature = "std"))]
mod tests {
    use crate::ffi::conn::{nopoll_conn_port, nopoll_conn_send_text, nopoll_listener_new};
    use crate::ffi::ctx::{nopoll_ctx_new, nopoll_ctx_set_on_msg, nopoll_ctx_unref};
    use crate::ffi::loop_io::{nopoll_loop_stop, nopoll_loop_wait};
    use crate::ffi::msg::{
        nopoll_msg_get_payload, nopoll_msg_get_payload_size, nopoll_msg_ref, nopoll_msg_unref,
    };
    use crate::ffi::types::*;
    use crate::runtime::{ConnectOptions, Context};
    use core::ffi::{c_long, CStr};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// The message handle the running handler was given (0: none).
    static CURRENT: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn echo(
        _ctx: *mut noPollCtx,
        conn: *mut noPollConn,
        msg: *mut noPollMsg,
        _user: noPollPtr,
    ) {
        CURRENT.store(msg as usize, Ordering::Release);
        // The handler's own handles: resolved through the record.
        let n = nopoll_msg_get_payload_size(msg);
        let p = nopoll_msg_get_payload(msg);
        // SAFETY: the payload of the running handler's message, n bytes.
        unsafe { nopoll_conn_send_text(conn, p.cast(), n as c_long) };
        CURRENT.store(0, Ordering::Release);
    }

    /// A C handler echoes while two other threads resolve, keep and
    /// release its message handle (published slot, pins, `KEPT`) and the
    /// loop is stopped at the end: every echo arrives intact. Meant for
    /// ThreadSanitizer (`make test-tsan`): the handler record, the slot
    /// and its readers on real threads.
    #[test]
    fn handler_handles_used_from_other_threads() {
        let ctx = nopoll_ctx_new();
        nopoll_ctx_set_on_msg(ctx, Some(echo), core::ptr::null_mut());
        // SAFETY: NUL-terminated literals.
        let l = unsafe { nopoll_listener_new(ctx, c"127.0.0.1".as_ptr(), c"0".as_ptr()) };
        assert!(!l.is_null());
        // SAFETY: the listener's port string lives as long as it does.
        let port = unsafe { CStr::from_ptr(nopoll_conn_port(l)) }
            .to_str()
            .unwrap()
            .to_string();
        let token = ctx as usize;
        let looper = std::thread::spawn(move || nopoll_loop_wait(token as *mut noPollCtx, 0));
        let done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let done = done.clone();
                std::thread::spawn(move || {
                    let mut seen = 0u32;
                    while !done.load(Ordering::Acquire) {
                        let m = CURRENT.load(Ordering::Acquire) as *mut noPollMsg;
                        if m.is_null() {
                            std::thread::yield_now();
                            continue;
                        }
                        if nopoll_msg_get_payload_size(m) >= 0 {
                            seen += 1;
                        }
                        if nopoll_msg_ref(m) != 0 {
                            let _ = nopoll_msg_get_payload(m);
                            nopoll_msg_unref(m);
                        }
                    }
                    seen
                })
            })
            .collect();

        let client_ctx = Context::new().unwrap();
        let client = client_ctx
            .connect(&ConnectOptions::new("127.0.0.1", &port))
            .unwrap();
        assert!(client.wait_ready(Duration::from_secs(10)));
        for i in 0..100 {
            let text = format!("message {i}");
            client.send_text(&text).unwrap();
            let mut got = None;
            for _ in 0..2000 {
                if let Some(m) = client.get_msg() {
                    got = Some(m);
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            assert_eq!(got.expect("echo").payload(), text.as_bytes());
        }
        done.store(true, Ordering::Release);
        for r in readers {
            r.join().unwrap();
        }
        nopoll_loop_stop(ctx);
        assert_eq!(looper.join().unwrap(), 0);
        client.close(None, b"");
        nopoll_ctx_unref(ctx);
    }
}
