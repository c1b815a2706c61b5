//! Extensions for running behind load balancers: PROXY protocol on a
//! listener, trusted proxies, the proxy's address, graceful drain
//! (`runtime/scale.rs`).

#[allow(unused_imports)]
use crate::prelude::*;

use super::types::*;
use super::{boundary, conn_cstr, conn_from, cstr, ctx_from, ctx_handle, UserData};
use crate::runtime::{Context, FdHandler};
use crate::sync::Arc;
use core::ffi::{c_char, c_int, c_long};
use core::time::Duration;

/// Extension: the proxies trusted to tell a client's address (PROXY header,
/// `X-Forwarded-For`, `X-Real-IP`): addresses or CIDR ranges separated by
/// commas or spaces ("127.0.0.1, 10.0.0.0/8, ::1"); NULL or "" clears the
/// list. Without a list, `X-Forwarded-For` / `X-Real-IP` are ignored and a
/// PROXY header is accepted from any peer of a listener that requires one.
/// Returns the number of entries set, or -1 (NULL ctx, a malformed entry:
/// the list is then unchanged).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_trusted_proxies(
    ctx: *mut noPollCtx,
    list: *const c_char,
) -> c_int {
    boundary(-1, || {
        let Some(c) = ctx_from(ctx) else {
            return -1;
        };
        let list = if list.is_null() {
            ""
        } else {
            // SAFETY: non-NULL, a NUL-terminated string per the API contract.
            match unsafe { cstr(list) } {
                Some(s) => s,
                None => return -1,
            }
        };
        match c.set_trusted_proxies(list) {
            Ok(n) => n.min(c_int::MAX as usize) as c_int,
            Err(_) => -1,
        }
    })
}

/// Extension: `listener` requires (true) or stops requiring (false) a
/// PROXY protocol header (v1 or v2) at the start of each connection it
/// accepts from now on. A connection with a missing or malformed header,
/// or from a peer outside the trusted proxies, is closed with a log line.
/// Then `nopoll_conn_host` / `nopoll_conn_port` give the client's address
/// and `nopoll_conn_proxy_host` the balancer's. False for NULL or a
/// connection that is not a listener.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_listener_set_proxy_protocol(
    listener: *mut noPollConn,
    enable: nopoll_bool,
) -> nopoll_bool {
    boundary(nopoll_false, || {
        conn_from(listener)
            .is_some_and(|l| l.set_proxy_protocol(enable != 0).is_ok())
            .into()
    })
}

/// Extension: the address of the proxy `conn` came through (its TCP
/// peer), when a trusted proxy told the client's address; NULL otherwise
/// (and for NULL). Valid as long as the connection.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_proxy_host(conn: *mut noPollConn) -> *const c_char {
    boundary(core::ptr::null(), || {
        conn_from(conn).map_or(core::ptr::null(), |c| {
            conn_cstr(&c, c.proxy_host().as_deref())
        })
    })
}

/// Extension: marks the context as draining (or not). The library only
/// records it: an `on_http` health check answers 503 while
/// `nopoll_ctx_is_draining` is true, so the balancer sends no new
/// connections. `nopoll_ctx_drain` sets it too.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_draining(ctx: *mut noPollCtx, draining: nopoll_bool) {
    boundary((), || {
        if let Some(c) = ctx_from(ctx) {
            c.set_draining(draining != 0);
        }
    })
}

/// Extension: whether the context is draining; false for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_is_draining(ctx: *mut noPollCtx) -> nopoll_bool {
    boundary(nopoll_false, || {
        ctx_from(ctx).is_some_and(|c| c.is_draining()).into()
    })
}

/// Extension: graceful drain for a restart. Marks the context draining,
/// closes its listeners, sends every open connection a close frame
/// (`status`, 0 for 1001 Going Away, and `reason`, NULL for none), serves
/// the connections until their close handshakes completed or `timeout_ms`
/// passed, then closes the rest (`on_close` runs for each). Call it from
/// outside `nopoll_loop_wait` (e.g. after it returned, or from another
/// thread while it runs). Returns the number of connections closed
/// without a close handshake, or -1 (NULL ctx, negative timeout, a status
/// or reason a close frame cannot carry, called from a loop handler).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_drain(
    ctx: *mut noPollCtx,
    status: c_int,
    reason: *const c_char,
    timeout_ms: c_long,
) -> c_int {
    boundary(-1, || {
        let (Some(c), Ok(ms)) = (ctx_from(ctx), u64::try_from(timeout_ms)) else {
            return -1;
        };
        let status = match status {
            0 => None,
            s => match u16::try_from(s) {
                Ok(s) => Some(s),
                Err(_) => return -1,
            },
        };
        let reason = if reason.is_null() {
            ""
        } else {
            // SAFETY: not NULL, and a NUL-terminated string per the API contract.
            match unsafe { cstr(reason) } {
                Some(s) => s,
                None => return -1,
            }
        };
        match c.drain(status, reason, Duration::from_millis(ms)) {
            Ok(r) => r.forced.min(c_int::MAX as usize) as c_int,
            Err(_) => -1,
        }
    })
}

/// Extension: called by `nopoll_loop_wait` when a socket watched with
/// `nopoll_loop_watch_fd` is ready (a hang-up or error reports as
/// readable), on the loop's thread.
pub type noPollFdHandler = Option<
    unsafe extern "C" fn(
        ctx: *mut noPollCtx,
        fd: NOPOLL_SOCKET,
        readable: nopoll_bool,
        writable: nopoll_bool,
        user_data: noPollPtr,
    ),
>;

/// Extension: watches a socket the application owns (a Redis client's,
/// a database driver's) in the context's `nopoll_loop_wait`, next to its
/// connections: `handler` runs on the loop's thread when `fd` is readable
/// (`read`) or writable (`write`), so the work never blocks WebSocket
/// traffic and needs no second thread. Calling it again for the same
/// socket changes the interest, handler and user data; both false stops
/// watching. The loop never reads, writes or closes `fd`; unwatch it
/// before closing it. Changes take effect before the loop's next wait
/// (from a handler too). False for NULL ctx, a negative socket or a NULL
/// handler while watching.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_loop_watch_fd(
    ctx: *mut noPollCtx,
    fd: NOPOLL_SOCKET,
    read: nopoll_bool,
    write: nopoll_bool,
    handler: noPollFdHandler,
    user_data: noPollPtr,
) -> nopoll_bool {
    boundary(nopoll_false, || {
        let Some(c) = ctx_from(ctx) else {
            return nopoll_false;
        };
        let (read, write) = (read != 0, write != 0);
        if !read && !write {
            c.unwatch_fd(fd);
            return nopoll_true;
        }
        let Some(f) = handler else {
            return nopoll_false;
        };
        let ud = UserData(user_data);
        let h: FdHandler = Arc::new(move |ctx: &Context, fd, r: bool, w: bool| {
            // SAFETY: `f` is the function C installed with this user data;
            // the context handle is valid while the library holds it.
            unsafe { f(ctx_handle(ctx), fd, r.into(), w.into(), ud.get()) }
        });
        c.watch_fd(fd, read, write, h).is_ok().into()
    })
}

/// Extension: stops watching a socket watched with `nopoll_loop_watch_fd`
/// (not closed); false if it was not watched or for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_loop_unwatch_fd(ctx: *mut noPollCtx, fd: NOPOLL_SOCKET) -> nopoll_bool {
    boundary(nopoll_false, || {
        ctx_from(ctx).is_some_and(|c| c.unwatch_fd(fd)).into()
    })
}
