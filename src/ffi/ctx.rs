//! `nopoll_ctx_*`: contexts.

#[allow(unused_imports)]
use crate::prelude::*;

use super::dispatch;
use super::msg::{MsgObj, MSGS};
use super::published;
use super::types::*;
use super::{boundary, conn_from, conn_handle, ctx_from, ctx_handle, UserData, CTXS};
use crate::protocol::DeflateConfig;
use crate::runtime::{ActionHandler, Connection, Context, DispatchHandler, Message, MAX_RECV_BUF};
use crate::sync::Arc;
use core::ffi::{c_int, c_long};

/// Wraps a C action handler.
pub(crate) fn action_handler(
    h: noPollActionHandler,
    user_data: noPollPtr,
) -> Option<ActionHandler> {
    let f = h?;
    let ud = UserData(user_data);
    Some(Arc::new(move |ctx: &Context, conn: &Connection| {
        let (c, k) = (ctx_handle(ctx), conn_handle(conn));
        // SAFETY: `f` is the function C installed with this user data; the
        // handles are valid tokens while the library holds both objects.
        unsafe { f(c, k, ud.get()) != 0 }
    }))
}

/// Wraps a C message handler: the message handle lives for the call
/// (or longer if the handler takes a reference).
pub(crate) fn message_handler(
    h: noPollOnMessageHandler,
    user_data: noPollPtr,
) -> Option<DispatchHandler> {
    let f = h?;
    let ud = UserData(user_data);
    Some(Arc::new(
        move |ctx: &Context, conn: &Connection, msg: &mut Message| {
            let (c, k) = (ctx_handle(ctx), conn_handle(conn));
            let call = |m: usize, obj: &MsgObj| {
                let _scope = dispatch::enter((c as usize, ctx), (k as usize, conn), (m, obj));
                // SAFETY: as for action handlers; `m` is a valid message handle.
                unsafe { f(c, k, m as *mut noPollMsg, ud.get()) };
            };
            match published::publish(msg) {
                // Withdrawn when `p` goes: the handle dies then, unless C
                // kept the message (`nopoll_msg_ref`).
                Some(p) => call(p.token(), p.obj()),
                None => {
                    // A handler already runs on this thread (a nested
                    // loop), or no std: a table handle, which dies after
                    // the handler unless C took references of its own.
                    let obj = Arc::new(MsgObj {
                        msg: core::mem::take(msg),
                    });
                    let Some(m) = MSGS.insert_c_owned(&obj) else {
                        return;
                    };
                    call(m, &obj);
                    MSGS.retire(m);
                }
            }
        },
    ))
}

/// A new context, one reference owned by the caller (`nopoll_ctx_unref`).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_new() -> *mut noPollCtx {
    boundary(core::ptr::null_mut(), || {
        let Ok(ctx) = Context::new() else {
            return core::ptr::null_mut();
        };
        let h = ctx_handle(&ctx);
        if h.is_null() || !CTXS.add_ref(h as usize) {
            return core::ptr::null_mut();
        }
        h
    })
}

/// +1 reference; false for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_ref(ctx: *mut noPollCtx) -> nopoll_bool {
    boundary(nopoll_false, || CTXS.add_ref(ctx as usize) as nopoll_bool)
}

/// -1 reference. Registered connections keep the context alive.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_unref(ctx: *mut noPollCtx) {
    boundary((), || {
        if CTXS.release(ctx as usize).is_none() {
            log::error!(target: "nopoll", "nopoll_ctx_unref: invalid context {ctx:p}");
        }
    })
}

/// References: the caller's plus one per registered connection; -1 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_ref_count(ctx: *mut noPollCtx) -> c_int {
    boundary(-1, || match ctx_from(ctx) {
        Some(c) => CTXS.c_refs(ctx as usize).max(0) + c.conns() as c_int,
        None => -1,
    })
}

/// Number of registered connections; -1 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_conns(ctx: *mut noPollCtx) -> c_int {
    boundary(-1, || ctx_from(ctx).map_or(-1, |c| c.conns() as c_int))
}

/// Handler run when a TCP connection is accepted.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_on_accept(
    ctx: *mut noPollCtx,
    on_accept: noPollActionHandler,
    user_data: noPollPtr,
) {
    boundary((), || {
        if let Some(c) = ctx_from(ctx) {
            c.update_config(|cfg| cfg.on_accept = action_handler(on_accept, user_data));
        }
    })
}

/// Handler run after the upgrade request, before the 101 answer.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_on_open(
    ctx: *mut noPollCtx,
    on_open: noPollActionHandler,
    user_data: noPollPtr,
) {
    boundary((), || {
        if let Some(c) = ctx_from(ctx) {
            c.update_config(|cfg| cfg.on_open = action_handler(on_open, user_data));
        }
    })
}

/// Handler run when a handshake completes.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_on_ready(
    ctx: *mut noPollCtx,
    on_ready: noPollActionHandler,
    user_data: noPollPtr,
) {
    boundary((), || {
        if let Some(c) = ctx_from(ctx) {
            c.update_config(|cfg| cfg.on_ready = action_handler(on_ready, user_data));
        }
    })
}

/// Default message handler of the context's connections.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_on_msg(
    ctx: *mut noPollCtx,
    on_msg: noPollOnMessageHandler,
    user_data: noPollPtr,
) {
    boundary((), || {
        if let Some(c) = ctx_from(ctx) {
            c.update_config(|cfg| cfg.on_msg = message_handler(on_msg, user_data));
        }
    })
}

/// Calls `foreach` for each registered connection; returns the first one
/// for which it returns true.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_foreach_conn(
    ctx: *mut noPollCtx,
    foreach: noPollForeachConn,
    user_data: noPollPtr,
) -> *mut noPollConn {
    boundary(core::ptr::null_mut(), || {
        let (Some(c), Some(f)) = (ctx_from(ctx), foreach) else {
            return core::ptr::null_mut();
        };
        let ch = ctx_handle(&c);
        for conn in c.connections() {
            // `conn` (an Arc) keeps the connection alive during the call, so
            // the handler may close it.
            let k = conn_handle(&conn);
            // SAFETY: `f` is the caller's function; the handles are valid tokens.
            if unsafe { f(ch, k, user_data) } != 0 {
                return k;
            }
        }
        core::ptr::null_mut()
    })
}

/// Incoming frame limit; values <= 0 or above the limit are ignored.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_max_frame_size(ctx: *mut noPollCtx, max_frame_size: c_long) {
    boundary((), || {
        if max_frame_size <= 0 || max_frame_size > NOPOLL_MAX_FRAME_SIZE_LIMIT {
            return;
        }
        if let Some(c) = ctx_from(ctx) {
            c.update_config(|cfg| cfg.max_frame_size = max_frame_size as u64);
        }
    })
}

/// Incoming frame limit (the default for NULL).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_get_max_frame_size(ctx: *mut noPollCtx) -> c_long {
    boundary(NOPOLL_MAX_FRAME_SIZE_DEFAULT, || {
        ctx_from(ctx).map_or(NOPOLL_MAX_FRAME_SIZE_DEFAULT, |c| {
            c.config().max_frame_size as c_long
        })
    })
}

/// `Sec-WebSocket-Version` sent by clients and required by listeners.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_protocol_version(ctx: *mut noPollCtx, version: c_int) {
    boundary((), || {
        if let (Some(c), Ok(v)) = (ctx_from(ctx), u8::try_from(version)) {
            c.update_config(|cfg| cfg.protocol_version = v);
        }
    })
}

/// Adds a connection to the context's registry.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_register_conn(
    ctx: *mut noPollCtx,
    conn: *mut noPollConn,
) -> nopoll_bool {
    boundary(nopoll_false, || match (ctx_from(ctx), conn_from(conn)) {
        (Some(c), Some(k)) if c.same(&k.ctx()) => {
            c.register_conn(&k);
            nopoll_true
        }
        _ => nopoll_false,
    })
}

/// Removes a connection from the registry (no-op if absent).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_unregister_conn(ctx: *mut noPollCtx, conn: *mut noPollConn) {
    boundary((), || {
        if let (Some(c), Some(k)) = (ctx_from(ctx), conn_from(conn)) {
            if c.same(&k.ctx()) {
                c.unregister_conn(&k);
            }
        }
    })
}

/// Whether `conn` is in `ctx`'s registry.
#[unsafe(no_mangle)]
pub extern "C" fn __nopoll_ctx_conn_is_registered(
    ctx: *mut noPollCtx,
    conn: *mut noPollConn,
) -> nopoll_bool {
    boundary(nopoll_false, || match (ctx_from(ctx), conn_from(conn)) {
        (Some(c), Some(k)) => c.is_registered(&k) as nopoll_bool,
        _ => nopoll_false,
    })
}

// ------------------------------------------------------------ extensions
// Settings upstream has no call for; documented in the README.

/// Extension: an opening handshake not completed within `microseconds` is
/// dropped (values <= 0 restore the default of 10 s; `LONG_MAX` is about
/// 292,000 years: never; deadlines saturate, they never overflow).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_handshake_timeout(ctx: *mut noPollCtx, microseconds: c_long) {
    boundary((), || {
        if let Some(c) = ctx_from(ctx) {
            let ms = if microseconds <= 0 {
                10_000
            } else {
                (microseconds as u64).div_ceil(1000)
            };
            c.update_config(|cfg| cfg.handshake_timeout_ms = ms);
        }
    })
}

/// Extension: listen backlog of listeners created afterwards (default 1024;
/// values <= 0 ignored; the system caps large ones, e.g. Linux's
/// `net.core.somaxconn`).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_listen_backlog(ctx: *mut noPollCtx, backlog: c_int) {
    boundary((), || {
        if let (Some(c), true) = (ctx_from(ctx), backlog > 0) {
            c.update_config(|cfg| cfg.backlog = backlog);
        }
    })
}

/// Extension: largest incoming message after reassembly (default 64 MiB,
/// never below the frame limit; values <= 0 ignored; any positive value is
/// taken). Beyond it: close 1009. Reassembly memory is reserved fallibly:
/// a message within the limit that the heap cannot hold also closes the
/// connection with 1009.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_max_message_size(ctx: *mut noPollCtx, max_message_size: c_long) {
    boundary((), || {
        if let (Some(c), true) = (ctx_from(ctx), max_message_size > 0) {
            c.update_config(|cfg| cfg.max_message_size = max_message_size as u64);
        }
    })
}

/// Extension: listeners of this context accept permessage-deflate
/// (RFC 7692) offers (default off, as upstream nopoll, which has no
/// compression). Connections accepted afterwards are affected. Turning it
/// off forgets the settings below.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_permessage_deflate(ctx: *mut noPollCtx, enable: nopoll_bool) {
    boundary((), || {
        if let Some(c) = ctx_from(ctx) {
            c.update_config(|cfg| {
                cfg.permessage_deflate = match enable {
                    0 => None,
                    _ => Some(cfg.permessage_deflate.unwrap_or_default()),
                }
            });
        }
    })
}

/// Extension: listeners insist on no context takeover in both directions
/// (default false): neither end keeps compressor state between messages,
/// so an idle connection holds no compressor memory. True also turns
/// permessage-deflate on.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_permessage_deflate_no_context_takeover(
    ctx: *mut noPollCtx,
    enable: nopoll_bool,
) {
    boundary((), || {
        if let Some(c) = ctx_from(ctx) {
            c.update_config(|cfg| {
                if let Some(d) = cfg.permessage_deflate.as_mut() {
                    d.no_context_takeover = enable != 0;
                } else if enable != 0 {
                    cfg.permessage_deflate = Some(DeflateConfig {
                        no_context_takeover: true,
                        ..DeflateConfig::default()
                    });
                }
            });
        }
    })
}

/// Extension: compression level of what listeners send under
/// permessage-deflate, 1 (fastest) to 9 (smallest), default 1; 0 sends
/// every message uncompressed (inflate only: no compressor memory, for
/// small heaps). Other values are ignored. Does not turn the extension on.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_permessage_deflate_level(ctx: *mut noPollCtx, level: c_int) {
    boundary((), || {
        if let (Some(c), Ok(level @ 0..=9)) = (ctx_from(ctx), u8::try_from(level)) {
            c.update_config(|cfg| {
                if let Some(d) = cfg.permessage_deflate.as_mut() {
                    d.level = level;
                }
            });
        }
    })
}

/// Extension: hand out frames and partial frames as they arrive
/// (`nopoll_msg_is_fragment` / `nopoll_msg_is_final` tell the pieces apart)
/// instead of whole messages (the default). Affects connections opened or
/// accepted afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_fragment_delivery(ctx: *mut noPollCtx, enable: nopoll_bool) {
    boundary((), || {
        if let Some(c) = ctx_from(ctx) {
            c.update_config(|cfg| {
                cfg.delivery = if enable != 0 {
                    crate::protocol::Delivery::Partial
                } else {
                    crate::protocol::Delivery::Messages
                }
            });
        }
    })
}

/// Extension: for fleets running upstream nopoll peers, which send every
/// fragment of a message with the message's opcode: a text or binary frame
/// arriving inside an unfinished fragmented message is taken as its
/// continuation instead of failing the connection with 1002 (RFC 6455, the
/// default). Affects connections opened or accepted afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_legacy_fragments(ctx: *mut noPollCtx, enable: nopoll_bool) {
    boundary((), || {
        if let Some(c) = ctx_from(ctx) {
            c.update_config(|cfg| cfg.legacy_fragments = enable != 0);
        }
    })
}

/// Extension: size of the receive buffer: one per event loop, shared by
/// all its connections, and one per thread reading outside a loop
/// (default 256 KiB; 4 KiB in no_std builds). Clamped to 256 bytes ..
/// 16 MiB (64 KiB in no_std builds); values
/// <= 0 ignored. Takes effect at the next `nopoll_loop_wait`; a size the
/// heap refuses is halved until it fits (logged), never an abort.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_recv_buffer_size(ctx: *mut noPollCtx, bytes: c_long) {
    boundary((), || {
        if let (Some(c), true) = (ctx_from(ctx), bytes > 0) {
            let n = usize::try_from(bytes).map_or(MAX_RECV_BUF, |n| n.min(MAX_RECV_BUF));
            c.update_config(|cfg| cfg.recv_buffer_size = n);
        }
    })
}

/// Extension: output a connection may queue (the peer reading slower than
/// we send) before sends fail with `NOPOLL_EWOULDBLOCK` semantics (-1 /
/// errno EWOULDBLOCK, nothing queued); beyond it the loop also stops
/// reading the connection until its output drains (read backpressure):
/// default 16 MiB; 256 KiB in no_std builds; values <= 0 ignored. Any
/// positive value is taken (up to `LONG_MAX`: no limit): it is a threshold,
/// nothing is allocated from it.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_max_pending_output(ctx: *mut noPollCtx, bytes: c_long) {
    boundary((), || {
        if let (Some(c), Ok(n)) = (ctx_from(ctx), usize::try_from(bytes)) {
            if n > 0 {
                c.update_config(|cfg| cfg.max_pending_output = n);
            }
        }
    })
}

/// Extension: buffer memory (reassembly and output) a connection keeps
/// between messages; above it the buffers are released once the connection
/// has read all there was (default 1 MiB + 16 bytes; 4 KiB in no_std
/// builds; values < 0 ignored; 0 releases them after every message; any
/// positive value is taken: a threshold, nothing is allocated from it).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_max_idle_buffers(ctx: *mut noPollCtx, bytes: c_long) {
    boundary((), || {
        if let (Some(c), Ok(n)) = (ctx_from(ctx), usize::try_from(bytes)) {
            c.update_config(|cfg| cfg.max_idle_buffers = n);
        }
    })
}

/// Extension: memory all connections of `ctx` may hold together for
/// message reassembly and pending output (default 256 MiB; 4 MiB in
/// no_std builds). A connection whose buffers would take the context over
/// it is closed: 1009 while receiving, 1013 (try again later) while
/// sending; the others are not touched. Values below 64 KiB are raised to
/// 64 KiB; values <= 0 are ignored.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_memory_budget(ctx: *mut noPollCtx, bytes: c_long) {
    boundary((), || {
        if let (Some(c), Ok(n)) = (ctx_from(ctx), usize::try_from(bytes)) {
            if n > 0 {
                c.set_memory_budget(n);
            }
        }
    })
}

/// Extension: bytes the connections of `ctx` hold now against its memory
/// budget (-1 for a NULL context).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_get_memory_in_use(ctx: *mut noPollCtx) -> c_long {
    boundary(-1, || match ctx_from(ctx) {
        Some(c) => c_long::try_from(c.memory_in_use()).unwrap_or(c_long::MAX),
        None => -1,
    })
}

/// Extension: keepalive. A connection from which nothing arrived for
/// `ping_interval_ms` gets a ping; when nothing arrives within
/// `pong_timeout_ms` after it (<= 0: the interval), the connection is
/// closed without a close frame: its on_close runs and
/// nopoll_conn_get_close_status reports 1006. `ping_interval_ms` <= 0
/// turns the pings off (the default). Driven by nopoll_loop_wait.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_keepalive(
    ctx: *mut noPollCtx,
    ping_interval_ms: c_long,
    pong_timeout_ms: c_long,
) {
    boundary((), || {
        if let Some(c) = ctx_from(ctx) {
            c.set_keepalive(positive_ms(ping_interval_ms), positive_ms(pong_timeout_ms));
        }
    })
}

/// Extension: a connection from which nothing arrives for `timeout_ms` is
/// closed with 1001 (its on_close runs). <= 0: off (the default). Driven
/// by nopoll_loop_wait.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_idle_timeout(ctx: *mut noPollCtx, timeout_ms: c_long) {
    boundary((), || {
        if let Some(c) = ctx_from(ctx) {
            c.set_idle_timeout(positive_ms(timeout_ms));
        }
    })
}

/// A duration in ms from C: `None` for <= 0, at most a year.
fn positive_ms(ms: c_long) -> Option<core::time::Duration> {
    const YEAR_MS: u64 = 365 * 24 * 3600 * 1000;
    u64::try_from(ms)
        .ok()
        .filter(|&m| m > 0)
        .map(|m| core::time::Duration::from_millis(m.min(YEAR_MS)))
}
