//! `nopoll_conn_*` and `nopoll_listener_*`: connections and listeners.

#[allow(unused_imports)]
use crate::prelude::*;

use super::ctx::{action_handler, message_handler};
use super::dispatch;
use super::msg::{msg_handle_owned, MsgObj};
use super::opts::{take_opts, OptsData};
use super::types::*;
use super::{
    boundary, conn_cstr, conn_from, conn_handle, conn_handle_owned, cstr, ctx_from, ctx_handle,
    malloc_str, set_errno, UserData, CONNS,
};
use crate::net;
use crate::protocol::DataKind;
use crate::runtime::{
    CloseHandler, ConnRole, ConnectOptions, Connection, Context, Error, SendStatus,
};
use crate::sync::Arc;
use core::ffi::{c_char, c_int, c_long};
use core::time::Duration;

fn log_ctx(ctx: &Context, msg: core::fmt::Arguments<'_>) {
    ctx.log(crate::runtime::LogLevel::Critical, msg);
}

/// [`log_ctx`] on `conn`'s context; with `no-log` not even the context is
/// looked up (an `Arc` clone and drop per call site).
fn log_conn(conn: &Connection, msg: core::fmt::Arguments<'_>) {
    if !cfg!(feature = "no-log") {
        log_ctx(&conn.ctx(), msg);
    }
}

/// Maps a send outcome to nopoll's convention: payload bytes written (all
/// of them when complete), -2 with errno EWOULDBLOCK when nothing went
/// out, a short count with errno EWOULDBLOCK when part did, -1 on error.
fn send_result(conn: &Connection, r: Result<SendStatus, Error>, length: usize) -> c_int {
    match r {
        Ok(SendStatus { complete: true, .. }) => length.min(c_int::MAX as usize) as c_int,
        Ok(SendStatus {
            payload_written: 0, ..
        })
        | Err(Error::WouldBlock) => {
            set_errno(crate::sys::EWOULDBLOCK);
            -2
        }
        Ok(SendStatus {
            payload_written, ..
        }) => {
            set_errno(crate::sys::EWOULDBLOCK);
            payload_written.min(c_int::MAX as usize) as c_int
        }
        Err(e) => {
            log_conn(
                conn,
                format_args!("send on conn id={} failed: {e}", conn.id()),
            );
            -1
        }
    }
}

/// The bytes behind a `(content, length)` pair; `length == -1` means
/// strlen when `allow_strlen`. None for a NULL `content` with a non-zero
/// length, a negative length, or one above `NOPOLL_MAX_FRAME_SIZE_LIMIT`
/// (no nopoll peer accepts such a frame, and the result could not be
/// reported in an `int`; upstream fails the allocation for those).
///
/// # Safety
/// `content` is NULL or valid for `length` bytes (or NUL-terminated when
/// `length == -1`).
unsafe fn payload<'a>(
    content: *const c_char,
    length: c_long,
    allow_strlen: bool,
) -> Option<&'a [u8]> {
    if length == -1 && allow_strlen && !content.is_null() {
        // SAFETY: NUL-terminated per the contract.
        return Some(unsafe { core::ffi::CStr::from_ptr(content) }.to_bytes());
    }
    if length > NOPOLL_MAX_FRAME_SIZE_LIMIT {
        return None;
    }
    let len = usize::try_from(length).ok()?;
    if len == 0 {
        return Some(&[]);
    }
    if content.is_null() {
        return None;
    }
    // SAFETY: `content` is valid for `len` bytes per the contract.
    Some(unsafe { core::slice::from_raw_parts(content as *const u8, len) })
}

fn ready_conn(conn: *mut noPollConn) -> Option<Connection> {
    with_ready_conn(conn, Connection::clone)
}

/// Runs `f` on the connection behind `conn` if it can take a send (the
/// running handler's own connection without a reference count): open, or
/// still in its opening handshake, whose progress is checked first (sends
/// then wait for the handshake to complete, see `Connection::send_text`).
fn with_ready_conn<R>(conn: *mut noPollConn, f: impl FnOnce(&Connection) -> R) -> Option<R> {
    let ready = |c: &Connection| {
        if !c.can_send() {
            log_conn(c, format_args!("conn id={} is not open", c.id()));
            return None;
        }
        Some(f(c))
    };
    match dispatch::with_conn(conn as usize, ready) {
        Ok(r) => r,
        Err(ready) => ready(&conn_from(conn)?),
    }
}

unsafe fn send_kind(
    conn: *mut noPollConn,
    content: *const c_char,
    length: c_long,
    kind: DataKind,
    fin: bool,
) -> c_int {
    // The running handler's own connection (an answer, the common case):
    // its handshake is complete, so no readiness check (a connection the
    // handler closed fails in the send itself).
    let own = dispatch::with_conn_msg(conn as usize, |c, m| {
        // SAFETY: forwarded from the exported function's contract.
        let data = unsafe { payload(content, length, kind == DataKind::Text) };
        data.map_or(-1, |d| send_on(c, d, kind, fin, Some(m)))
    });
    if let Ok(r) = own {
        return r;
    }
    with_ready_conn(conn, |c| {
        // SAFETY: forwarded from the exported function's contract.
        let Some(data) = (unsafe { payload(content, length, kind == DataKind::Text) }) else {
            return -1;
        };
        // A handler relaying its own message to another connection still
        // skips checking it again.
        dispatch::with_current_msg(|m| send_on(c, data, kind, fin, Some(m)))
            .unwrap_or_else(|| send_on(c, data, kind, fin, None))
    })
    .unwrap_or(-1)
}

/// Sends `data` on `c`. A whole text message that is `own`'s text (the
/// running handler's message, sent back or relayed) was validated as UTF-8
/// on arrival and is not checked a second time.
fn send_on(c: &Connection, data: &[u8], kind: DataKind, fin: bool, own: Option<&MsgObj>) -> c_int {
    if kind == DataKind::Text && fin {
        let is_own = own
            .and_then(|o| o.msg.checked_text())
            .is_some_and(|t| t.as_ptr() == data.as_ptr() && t.len() == data.len());
        if is_own {
            // The result goes straight to `send_result` (wrapped in
            // Options it was moved at odd offsets: a store-forwarding
            // stall, ~1 % of the C echo server's time).
            // SAFETY: `data` is the running handler's own text, which was
            // validated as UTF-8 on arrival and does not change while the
            // handler runs.
            let t = unsafe { core::str::from_utf8_unchecked(data) };
            return send_result(c, c.send_text(t), data.len());
        }
    }
    send_result(c, c.send_data(kind, data, fin), data.len())
}

/// One text frame (FIN set); `length == -1` means strlen.
///
/// # Safety
/// `content` is valid for `length` bytes (NUL-terminated for -1).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_send_text(
    conn: *mut noPollConn,
    content: *const c_char,
    length: c_long,
) -> c_int {
    // SAFETY: forwarded contract.
    boundary(-1, || unsafe {
        send_kind(conn, content, length, DataKind::Text, true)
    })
}

/// A text frame without FIN; the next send continues the message.
///
/// # Safety
/// As `nopoll_conn_send_text`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_send_text_fragment(
    conn: *mut noPollConn,
    content: *const c_char,
    length: c_long,
) -> c_int {
    // SAFETY: forwarded contract.
    boundary(-1, || unsafe {
        send_kind(conn, content, length, DataKind::Text, false)
    })
}

/// One binary frame (FIN set).
///
/// # Safety
/// `content` is valid for `length` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_send_binary(
    conn: *mut noPollConn,
    content: *const c_char,
    length: c_long,
) -> c_int {
    // SAFETY: forwarded contract.
    boundary(-1, || unsafe {
        send_kind(conn, content, length, DataKind::Binary, true)
    })
}

/// A binary frame without FIN.
///
/// # Safety
/// `content` is valid for `length` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_send_binary_fragment(
    conn: *mut noPollConn,
    content: *const c_char,
    length: c_long,
) -> c_int {
    // SAFETY: forwarded contract.
    boundary(-1, || unsafe {
        send_kind(conn, content, length, DataKind::Binary, false)
    })
}

/// An empty ping; true when written without error.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_send_ping(conn: *mut noPollConn) -> nopoll_bool {
    boundary(nopoll_false, || match ready_conn(conn) {
        Some(c) => (send_result(&c, c.send_ping(&[]), 0) >= 0) as nopoll_bool,
        None => nopoll_false,
    })
}

/// A pong with the given payload (at most 125 bytes).
///
/// # Safety
/// `content` is valid for `length` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_send_pong(
    conn: *mut noPollConn,
    length: c_long,
    content: noPollPtr,
) -> nopoll_bool {
    boundary(nopoll_false, || {
        let Some(c) = ready_conn(conn) else {
            return nopoll_false;
        };
        // SAFETY: forwarded contract.
        let Some(data) = (unsafe { payload(content as *const c_char, length, false) }) else {
            return nopoll_false;
        };
        (send_result(&c, c.send_pong(data), data.len()) >= 0) as nopoll_bool
    })
}

/// Low level: one frame exactly as described, pausing `sleep_in_header` µs
/// between header and payload. Payload bytes written, -2 would block, -1 error.
///
/// # Safety
/// `content` is valid for `length` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_send_frame(
    conn: *mut noPollConn,
    fin: nopoll_bool,
    masked: nopoll_bool,
    op_code: noPollOpCode,
    length: c_long,
    content: noPollPtr,
    sleep_in_header: c_long,
) -> c_int {
    boundary(-1, || {
        let Some(c) = conn_from(conn) else {
            return -1;
        };
        if !(0..=15).contains(&op_code) {
            return -1;
        }
        // SAFETY: forwarded contract.
        let Some(data) = (unsafe { payload(content as *const c_char, length, false) }) else {
            return -1;
        };
        let pause = Duration::from_micros(sleep_in_header.max(0) as u64);
        let r = c.send_raw_frame(fin != 0, masked != 0, op_code as u8, data, pause);
        send_result(&c, r, data.len())
    })
}

/// Internal but exported: a data frame of `frame_type` with masking by role
/// (`length == -1` allowed for text), continuing a fragmented message
/// automatically (a frame after one without FIN goes out as a
/// continuation), pausing `sleep_in_header` µs between header and payload.
/// A continuation `frame_type` with no fragmented message in progress is
/// sent as binary. Other opcodes go out as `nopoll_conn_send_frame` would.
///
/// # Safety
/// `content` is valid for `length` bytes (NUL-terminated for -1).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __nopoll_conn_send_common(
    conn: *mut noPollConn,
    content: *const c_char,
    length: c_long,
    has_fin: nopoll_bool,
    sleep_in_header: c_long,
    frame_type: noPollOpCode,
) -> c_int {
    boundary(-1, || {
        let kind = match frame_type {
            NOPOLL_TEXT_FRAME => DataKind::Text,
            NOPOLL_BINARY_FRAME | NOPOLL_CONTINUATION_FRAME => DataKind::Binary,
            _ => {
                let masked = conn_from(conn).is_some_and(|c| c.role() == ConnRole::Client);
                // SAFETY: forwarded contract.
                return unsafe {
                    nopoll_conn_send_frame(
                        conn,
                        has_fin,
                        masked as c_int,
                        frame_type,
                        length,
                        content as noPollPtr,
                        sleep_in_header,
                    )
                };
            }
        };
        if sleep_in_header <= 0 {
            // SAFETY: forwarded contract.
            return unsafe { send_kind(conn, content, length, kind, has_fin != 0) };
        }
        let Some(c) = ready_conn(conn) else {
            return -1;
        };
        // SAFETY: forwarded contract.
        let Some(data) = (unsafe { payload(content, length, kind == DataKind::Text) }) else {
            return -1;
        };
        let pause = Duration::from_micros(sleep_in_header as u64);
        send_result(
            &c,
            c.send_data_paused(kind, data, has_fin != 0, pause),
            data.len(),
        )
    })
}

/// Reads at most one message; NULL when nothing is complete or on error.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_get_msg(conn: *mut noPollConn) -> *mut noPollMsg {
    boundary(core::ptr::null_mut(), || {
        match conn_from(conn).and_then(|c| c.get_msg()) {
            Some(m) => msg_handle_owned(m),
            None => core::ptr::null_mut(),
        }
    })
}

/// Stream read across message boundaries.
///
/// # Safety
/// `buffer` is valid for writing `bytes` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_read(
    conn: *mut noPollConn,
    buffer: *mut c_char,
    bytes: c_int,
    block: nopoll_bool,
    timeout: c_long,
) -> c_int {
    boundary(-1, || {
        let Some(c) = conn_from(conn) else {
            return -1;
        };
        if buffer.is_null() || bytes <= 0 {
            return -1;
        }
        // SAFETY: `buffer` is valid for `bytes` bytes per the contract.
        let buf = unsafe { core::slice::from_raw_parts_mut(buffer as *mut u8, bytes as usize) };
        let t = (timeout > 0).then(|| Duration::from_millis(timeout as u64));
        match c.read(buf, block != 0, t) {
            Ok(n) => n as c_int,
            Err(Error::WouldBlock) => {
                set_errno(crate::sys::EWOULDBLOCK);
                -1
            }
            Err(_) => -1,
        }
    })
}

/// Bytes already received and buffered inside the connection.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_read_pending(conn: *mut noPollConn) -> c_int {
    boundary(0, || {
        conn_from(conn).map_or(0, |c| c.read_pending().min(c_int::MAX as usize) as c_int)
    })
}

/// Sends a close frame with `status` (0 = none) and `reason`, closes the
/// socket and releases the caller's reference.
///
/// # Safety
/// `reason` is NULL or valid for `reason_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_close_ext(
    conn: *mut noPollConn,
    status: c_int,
    reason: *const c_char,
    reason_size: c_int,
) {
    boundary((), || {
        let Some(c) = conn_from(conn) else {
            return;
        };
        let reason = if reason_size > 0 && !reason.is_null() {
            // SAFETY: valid for `reason_size` bytes per the contract.
            unsafe { core::slice::from_raw_parts(reason as *const u8, reason_size as usize) }
        } else {
            &[]
        };
        let status = u16::try_from(status).ok().filter(|s| *s != 0);
        // nopoll sends the reason as given; a close frame holds 123 bytes
        // of UTF-8: the longest such start of it goes, with the code.
        let reason = crate::protocol::close::reason_prefix(reason);
        c.close(status, if status.is_some() { reason } else { &[] });
        // The caller's reference (none if the library alone owned it).
        if CONNS.c_refs(conn as usize) > 0 {
            CONNS.release(conn as usize);
        }
    })
}

/// `nopoll_conn_close_ext (conn, 0, NULL, 0)`.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_close(conn: *mut noPollConn) {
    boundary((), || {
        // SAFETY: no reason pointer is passed.
        unsafe { nopoll_conn_close_ext(conn, 0, core::ptr::null(), 0) }
    })
}

/// Closes the socket without a close frame and fires on_close.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_shutdown(conn: *mut noPollConn) {
    boundary((), || {
        if let Some(c) = conn_from(conn) {
            c.shutdown();
        }
    })
}

/// +1 reference; false for NULL or a dead connection.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_ref(conn: *mut noPollConn) -> nopoll_bool {
    boundary(nopoll_false, || CONNS.add_ref(conn as usize) as nopoll_bool)
}

/// -1 reference; the connection is freed when nothing references it.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_unref(conn: *mut noPollConn) {
    boundary((), || {
        CONNS.release(conn as usize);
    })
}

/// References: the caller's plus one while registered; -1 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_ref_count(conn: *mut noPollConn) -> c_int {
    boundary(-1, || match conn_from(conn) {
        Some(c) => CONNS.c_refs(conn as usize).max(0) + c.ctx().is_registered(&c) as c_int,
        None => -1,
    })
}

/// Owner references (transient ones are never visible here); -1 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn __nopoll_conn_owner_ref_count(conn: *mut noPollConn) -> c_int {
    boundary(-1, || nopoll_conn_ref_count(conn))
}

/// A library-held temporary reference.
#[unsafe(no_mangle)]
pub extern "C" fn __nopoll_conn_transient_ref(conn: *mut noPollConn) -> nopoll_bool {
    boundary(nopoll_false, || nopoll_conn_ref(conn))
}

/// Drops a temporary reference.
#[unsafe(no_mangle)]
pub extern "C" fn __nopoll_conn_transient_unref(conn: *mut noPollConn) {
    boundary((), || nopoll_conn_unref(conn))
}

/// Context-unique id; -1 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_get_id(conn: *mut noPollConn) -> c_int {
    boundary(-1, || conn_from(conn).map_or(-1, |c| c.id()))
}

/// Role; NOPOLL_ROLE_UNKNOWN for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_role(conn: *mut noPollConn) -> noPollRole {
    boundary(NOPOLL_ROLE_UNKNOWN, || {
        match conn_from(conn).map(|c| c.role()) {
            Some(ConnRole::Client) => NOPOLL_ROLE_CLIENT,
            Some(ConnRole::Accepted) => NOPOLL_ROLE_LISTENER,
            Some(ConnRole::Listener) => NOPOLL_ROLE_MAIN_LISTENER,
            None => NOPOLL_ROLE_UNKNOWN,
        }
    })
}

/// The socket; -1 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_socket(conn: *mut noPollConn) -> NOPOLL_SOCKET {
    boundary(-1, || conn_from(conn).map_or(-1, |c| c.socket()))
}

/// Replaces the socket value (the old one is not closed).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_set_socket(conn: *mut noPollConn, _socket: NOPOLL_SOCKET) {
    boundary((), || {
        if let Some(c) = conn_from(conn) {
            c.set_socket(_socket);
        }
    })
}

/// Peer (or bind) host text; behind a trusted proxy that told it (PROXY
/// header, `X-Forwarded-For`, `X-Real-IP`) the client's, see
/// `nopoll_conn_proxy_host`. NULL for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_host(conn: *mut noPollConn) -> *const c_char {
    boundary(core::ptr::null(), || {
        conn_from(conn).map_or(core::ptr::null(), |c| conn_cstr(&c, Some(&c.host())))
    })
}

/// Peer (or bind) port text; NULL for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_port(conn: *mut noPollConn) -> *const c_char {
    boundary(core::ptr::null(), || {
        conn_from(conn).map_or(core::ptr::null(), |c| conn_cstr(&c, Some(&c.port())))
    })
}

/// Owning context (borrowed); NULL for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_ctx(conn: *mut noPollConn) -> *mut noPollCtx {
    boundary(core::ptr::null_mut(), || {
        conn_from(conn).map_or(core::ptr::null_mut(), |c| ctx_handle(&c.ctx()))
    })
}

/// For an accepted connection: its listener; NULL otherwise.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_get_listener(conn: *mut noPollConn) -> *mut noPollConn {
    boundary(core::ptr::null_mut(), || {
        conn_from(conn)
            .and_then(|c| c.listener())
            .map_or(core::ptr::null_mut(), |l| conn_handle(&l))
    })
}

/// True while the socket is usable.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_is_ok(conn: *mut noPollConn) -> nopoll_bool {
    boundary(nopoll_false, || {
        conn_from(conn).is_some_and(|c| c.is_ok()) as nopoll_bool
    })
}

/// True once the handshake is complete (tries to advance it).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_is_ready(conn: *mut noPollConn) -> nopoll_bool {
    boundary(nopoll_false, || {
        conn_from(conn).is_some_and(|c| c.is_ready()) as nopoll_bool
    })
}

/// Waits up to `timeout` seconds for the handshake.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_wait_until_connection_ready(
    conn: *mut noPollConn,
    timeout: c_int,
) -> nopoll_bool {
    boundary(nopoll_false, || {
        conn_from(conn).is_some_and(|c| c.wait_ready(Duration::from_secs(timeout.max(0) as u64)))
            as nopoll_bool
    })
}

/// Advances the handshake without blocking.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_complete_handshake(conn: *mut noPollConn) {
    boundary((), || {
        if let Some(c) = conn_from(conn) {
            c.is_ready();
        }
    })
}

/// Per-connection message handler.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_set_on_msg(
    conn: *mut noPollConn,
    on_msg: noPollOnMessageHandler,
    user_data: noPollPtr,
) {
    boundary((), || {
        if let Some(c) = conn_from(conn) {
            c.set_dispatch_handler(message_handler(on_msg, user_data));
        }
    })
}

/// Per-connection handshake-complete handler.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_set_on_ready(
    conn: *mut noPollConn,
    on_ready: noPollActionHandler,
    user_data: noPollPtr,
) {
    boundary((), || {
        if let Some(c) = conn_from(conn) {
            c.set_on_ready(action_handler(on_ready, user_data));
        }
    })
}

/// Handler called once when the connection closes.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_set_on_close(
    conn: *mut noPollConn,
    on_close: noPollOnCloseHandler,
    user_data: noPollPtr,
) {
    boundary((), || {
        let Some(c) = conn_from(conn) else {
            return;
        };
        let h: Option<CloseHandler> = on_close.map(|f| {
            let ud = UserData(user_data);
            Arc::new(move |ctx: &Context, conn: &Connection| {
                // SAFETY: the caller's function with its user data; valid handles.
                unsafe { f(ctx_handle(ctx), conn_handle(conn), ud.get()) }
            }) as CloseHandler
        });
        c.set_on_close(h);
    })
}

/// Stores a user pointer.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_set_hook(conn: *mut noPollConn, ptr: noPollPtr) {
    boundary((), || {
        if let Some(c) = conn_from(conn) {
            c.set_hook(ptr as usize);
        }
    })
}

/// The user pointer (NULL if unset).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_get_hook(conn: *mut noPollConn) -> noPollPtr {
    boundary(core::ptr::null_mut(), || {
        conn_from(conn).map_or(core::ptr::null_mut(), |c| c.hook() as noPollPtr)
    })
}

/// Peer's close status: 1005 without code, 1006 without close frame; 0 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_get_close_status(conn: *mut noPollConn) -> c_int {
    boundary(0, || conn_from(conn).map_or(0, |c| c.close_status()))
}

fn info_str(conn: *mut noPollConn, f: impl FnOnce(&Connection) -> Option<String>) -> *const c_char {
    boundary(core::ptr::null(), || match conn_from(conn) {
        Some(c) => {
            let v = f(&c);
            conn_cstr(&c, v.as_deref())
        }
        None => core::ptr::null(),
    })
}

/// Peer's close reason; NULL if none.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_get_close_reason(conn: *mut noPollConn) -> *const c_char {
    boundary(core::ptr::null(), || info_str(conn, |c| c.close_reason()))
}

/// Agreed subprotocol; NULL if none.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_get_accepted_protocol(conn: *mut noPollConn) -> *const c_char {
    boundary(core::ptr::null(), || {
        info_str(conn, |c| c.accepted_protocol())
    })
}

/// Subprotocols the client requested (raw list); NULL if none.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_get_requested_protocol(conn: *mut noPollConn) -> *const c_char {
    boundary(core::ptr::null(), || {
        info_str(conn, |c| {
            c.with_info(|i| i.requested_protocol().map(String::from))
        })
    })
}

/// Origin received (server) or sent (client); NULL if none.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_get_origin(conn: *mut noPollConn) -> *const c_char {
    boundary(core::ptr::null(), || {
        info_str(conn, |c| c.with_info(|i| i.origin().map(String::from)))
    })
}

/// Host header; NULL if none.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_get_host_header(conn: *mut noPollConn) -> *const c_char {
    boundary(core::ptr::null(), || {
        info_str(conn, |c| c.with_info(|i| i.host_header().map(String::from)))
    })
}

/// Cookie header; NULL if none.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_get_cookie(conn: *mut noPollConn) -> *const c_char {
    boundary(core::ptr::null(), || {
        info_str(conn, |c| c.with_info(|i| i.cookie().map(String::from)))
    })
}

/// X-Real-IP header; NULL if none.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_get_x_real_ip_header(conn: *mut noPollConn) -> *const c_char {
    boundary(core::ptr::null(), || {
        info_str(conn, |c| c.with_info(|i| i.x_real_ip().map(String::from)))
    })
}

/// GET url of the handshake ("/" if unknown); NULL only for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_get_requested_url(conn: *mut noPollConn) -> *const c_char {
    boundary(core::ptr::null(), || info_str(conn, |c| Some(c.url())))
}

/// Server side, in on_open: the subprotocol for the 101 answer (copied).
///
/// # Safety
/// `protocol` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_set_accepted_protocol(
    conn: *mut noPollConn,
    protocol: *const c_char,
) {
    // SAFETY: per this function's contract.
    let p = unsafe { cstr(protocol) };
    boundary((), || {
        if let Some(c) = conn_from(conn) {
            c.set_accepted_protocol(p);
        }
    })
}

/// Bytes queued from short writes; 0 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_pending_write_bytes(conn: *mut noPollConn) -> c_int {
    boundary(0, || {
        conn_from(conn).map_or(0, |c| {
            c.pending_write_bytes().min(c_int::MAX as usize) as c_int
        })
    })
}

/// Writes pending bytes without blocking; payload bytes written, 0 if
/// nothing pending, -1 on error.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_complete_pending_write(conn: *mut noPollConn) -> c_int {
    boundary(0, || {
        match conn_from(conn).map(|c| c.complete_pending_write()) {
            None => 0,
            Some(Ok(n)) => n.min(c_int::MAX as usize) as c_int,
            Some(Err(Error::WouldBlock)) => 0,
            Some(Err(_)) => -1,
        }
    })
}

/// Flushes pending writes for up to `timeout` µs; returns bytes written
/// plus `previous_result` when positive.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_flush_writes(
    conn: *mut noPollConn,
    timeout: c_long,
    previous_result: c_int,
) -> c_int {
    boundary(previous_result.max(0), || {
        let n = conn_from(conn).map_or(0, |c| c.flush_for_us(timeout.max(0) as u64));
        (n.min(c_int::MAX as usize) as c_int).saturating_add(previous_result.max(0))
    })
}

/// fcntl helper: enable = true makes the socket blocking.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_set_sock_block(
    socket: NOPOLL_SOCKET,
    enable: nopoll_bool,
) -> nopoll_bool {
    boundary(nopoll_false, || {
        (socket >= 0 && net::set_blocking(socket, enable != 0)) as nopoll_bool
    })
}

/// Context-wide TCP connect timeout in µs (values <= 0 restore 20 s;
/// `LONG_MAX` is never: deadlines saturate, they never overflow).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_connect_timeout(ctx: *mut noPollCtx, microseconds_to_wait: c_long) {
    boundary((), || {
        if let Some(c) = ctx_from(ctx) {
            let us = if microseconds_to_wait <= 0 {
                20_000_000
            } else {
                microseconds_to_wait as u64
            };
            c.update_config(|cfg| cfg.connect_timeout_us = us);
        }
    })
}

/// Current connect timeout in µs; 0 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_get_connect_timeout(ctx: *mut noPollCtx) -> c_long {
    boundary(0, || {
        ctx_from(ctx).map_or(0, |c| {
            c.config().connect_timeout_us.min(c_long::MAX as u64) as c_long
        })
    })
}

/// Effective incoming frame limit (the default for NULL).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_get_max_frame_size(conn: *mut noPollConn) -> c_long {
    boundary(NOPOLL_MAX_FRAME_SIZE_DEFAULT, || {
        conn_from(conn).map_or(NOPOLL_MAX_FRAME_SIZE_DEFAULT, |c| {
            c.max_frame_size() as c_long
        })
    })
}

/// Extension: true when permessage-deflate (RFC 7692) was negotiated on
/// this connection (false for NULL, before the handshake, or declined).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_is_permessage_deflate(conn: *mut noPollConn) -> nopoll_bool {
    boundary(nopoll_false, || {
        conn_from(conn).map_or(nopoll_false, |c| {
            c.permessage_deflate().is_some() as nopoll_bool
        })
    })
}

/// INTERNAL: copies the frame limit of `options` into the connection.
#[unsafe(no_mangle)]
pub extern "C" fn __nopoll_conn_set_max_frame_size(
    conn: *mut noPollConn,
    options: *mut noPollConnOpts,
) {
    boundary((), || {
        if let (Some(c), Some(o)) = (conn_from(conn), super::opts::OPTS.get(options as usize)) {
            if let Some(m) = o.data.lock().max_frame_size {
                c.set_max_frame_size(m);
            }
        }
    })
}

// ------------------------------------------------------------ clients

pub(super) struct ClientArgs<'a> {
    host_ip: Option<&'a str>,
    host_port: Option<&'a str>,
    host_name: Option<&'a str>,
    get_url: Option<&'a str>,
    protocols: Option<&'a str>,
    origin: Option<&'a str>,
}

fn connect_options(a: &ClientArgs<'_>, o: &OptsData, ipv6: bool) -> Option<ConnectOptions> {
    let host = a.host_ip?.to_string();
    Some(ConnectOptions {
        host,
        // Empty: the default port (80, or 443 for wss://).
        port: a.host_port.unwrap_or("").to_string(),
        ipv6,
        host_name: a.host_name.map(str::to_string),
        path: a.get_url.map(str::to_string),
        protocols: a.protocols.map(str::to_string),
        origin: a.origin.map(str::to_string),
        no_origin: !o.add_origin,
        cookie: o.cookie.clone(),
        extra_headers: o.extra_headers.clone(),
        interface: o.interface.clone(),
        max_frame_size: o.max_frame_size,
        permessage_deflate: o.permessage_deflate,
        tls: None,
    })
}

/// # Safety
/// Every pointer is NULL or a NUL-terminated string.
pub(super) unsafe fn client_args<'a>(
    host_ip: *const c_char,
    host_port: *const c_char,
    host_name: *const c_char,
    get_url: *const c_char,
    protocols: *const c_char,
    origin: *const c_char,
) -> ClientArgs<'a> {
    // SAFETY: per the caller's contract.
    unsafe {
        ClientArgs {
            host_ip: cstr(host_ip),
            host_port: cstr(host_port),
            host_name: cstr(host_name),
            get_url: cstr(get_url),
            protocols: cstr(protocols),
            origin: cstr(origin),
        }
    }
}

pub(super) fn connect_common(
    ctx: *mut noPollCtx,
    opts: *mut noPollConnOpts,
    a: ClientArgs<'_>,
    ipv6: bool,
    socket: Option<c_int>,
    tls: bool,
) -> *mut noPollConn {
    // NULL options mean peer verification on (as upstream); options from
    // nopoll_conn_opts_new mean off unless asked for.
    let verify_default = opts.is_null();
    let o = take_opts(opts);
    let Some(c) = ctx_from(ctx) else {
        return core::ptr::null_mut();
    };
    let Some(co) = connect_options(&a, &o, ipv6) else {
        log_ctx(&c, format_args!("nopoll_conn_new: host_ip is required"));
        return core::ptr::null_mut();
    };
    let mut co = co;
    if tls {
        co.tls = Some(super::tls::tls_options(&o, verify_default || o.ssl_verify));
    }
    let r = match socket {
        Some(fd) => c.connect_with_socket(fd, &co),
        None => c.connect(&co),
    };
    match r {
        Ok(conn) => conn_handle_owned(&conn),
        Err(e) => {
            log_ctx(
                &c,
                format_args!("connection to {}:{} failed: {e}", co.host, co.port),
            );
            core::ptr::null_mut()
        }
    }
}

/// ws:// client over IPv4: connects and sends the upgrade request.
///
/// # Safety
/// Every string is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_new(
    ctx: *mut noPollCtx,
    host_ip: *const c_char,
    host_port: *const c_char,
    host_name: *const c_char,
    get_url: *const c_char,
    protocols: *const c_char,
    origin: *const c_char,
) -> *mut noPollConn {
    // SAFETY: forwarded contract.
    let a = unsafe { client_args(host_ip, host_port, host_name, get_url, protocols, origin) };
    boundary(core::ptr::null_mut(), || {
        connect_common(ctx, core::ptr::null_mut(), a, false, None, false)
    })
}

/// ws:// client over IPv6.
///
/// # Safety
/// Every string is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_new6(
    ctx: *mut noPollCtx,
    host_ip: *const c_char,
    host_port: *const c_char,
    host_name: *const c_char,
    get_url: *const c_char,
    protocols: *const c_char,
    origin: *const c_char,
) -> *mut noPollConn {
    // SAFETY: forwarded contract.
    let a = unsafe { client_args(host_ip, host_port, host_name, get_url, protocols, origin) };
    boundary(core::ptr::null_mut(), || {
        connect_common(ctx, core::ptr::null_mut(), a, true, None, false)
    })
}

/// ws:// client with options (consumed unless reuse is set).
///
/// # Safety
/// Every string is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_new_opts(
    ctx: *mut noPollCtx,
    opts: *mut noPollConnOpts,
    host_ip: *const c_char,
    host_port: *const c_char,
    host_name: *const c_char,
    get_url: *const c_char,
    protocols: *const c_char,
    origin: *const c_char,
) -> *mut noPollConn {
    // SAFETY: forwarded contract.
    let a = unsafe { client_args(host_ip, host_port, host_name, get_url, protocols, origin) };
    boundary(core::ptr::null_mut(), || {
        connect_common(ctx, opts, a, false, None, false)
    })
}

/// Client handshake over a socket the caller already connected.
///
/// # Safety
/// Every string is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_new_with_socket(
    ctx: *mut noPollCtx,
    opts: *mut noPollConnOpts,
    socket: c_int,
    host_ip: *const c_char,
    host_port: *const c_char,
    host_name: *const c_char,
    get_url: *const c_char,
    protocols: *const c_char,
    origin: *const c_char,
) -> *mut noPollConn {
    // SAFETY: forwarded contract.
    let a = unsafe { client_args(host_ip, host_port, host_name, get_url, protocols, origin) };
    boundary(core::ptr::null_mut(), || {
        if socket < 0 {
            let _ = take_opts(opts);
            return core::ptr::null_mut();
        }
        connect_common(ctx, opts, a, false, Some(socket), false)
    })
}

// ------------------------------------------------------------ servers

/// How a wss:// listener is made (from `ffi/tls.rs`): passed in rather
/// than chosen by a flag here, so that plain listeners do not link TLS.
pub(super) type ListenTls = fn(
    &crate::runtime::Context,
    &str,
    &str,
    bool,
    Option<&OptsData>,
) -> Result<Connection, crate::runtime::Error>;

/// `opts`: the options the caller took (consumed, dropped by the
/// caller), `None` when it has none (so that plain `nopoll_listener_new`
/// links neither the options table nor their drop).
pub(super) fn listen_common(
    ctx: *mut noPollCtx,
    opts: Option<&OptsData>,
    host: *const c_char,
    port: *const c_char,
    ipv6: bool,
    tls: Option<ListenTls>,
) -> *mut noPollConn {
    listen_with(ctx, opts, host, port, ipv6, tls)
}

/// [`listen_common`] without options or TLS (`nopoll_listener_new`,
/// `nopoll_listener_new6`): the same body, specialised, so that a plain
/// listener's firmware carries no branches for the other two.
fn listen_plain(
    ctx: *mut noPollCtx,
    host: *const c_char,
    port: *const c_char,
    ipv6: bool,
) -> *mut noPollConn {
    listen_with(ctx, None, host, port, ipv6, None)
}

#[inline(always)]
fn listen_with(
    ctx: *mut noPollCtx,
    opts: Option<&OptsData>,
    host: *const c_char,
    port: *const c_char,
    ipv6: bool,
    tls: Option<ListenTls>,
) -> *mut noPollConn {
    let Some(c) = ctx_from(ctx) else {
        return core::ptr::null_mut();
    };
    // SAFETY: the exported functions forward NULL or NUL-terminated strings.
    let (Some(h), Some(p)) = (unsafe { cstr(host) }, unsafe { cstr(port) }) else {
        return core::ptr::null_mut();
    };
    let r = match tls {
        Some(listen_tls) => listen_tls(&c, h, p, ipv6, opts),
        None => c.listen(h, p, ipv6),
    };
    match r {
        Ok(l) => {
            if let Some(m) = opts.and_then(|o| o.max_frame_size) {
                l.set_max_frame_size(m);
            }
            conn_handle_owned(&l)
        }
        Err(e) => {
            log_ctx(&c, format_args!("cannot listen on {h}:{p}: {e}"));
            core::ptr::null_mut()
        }
    }
}

/// The options of a `_opts` listener, taken (`None` for NULL).
pub(super) fn given_opts(opts: *mut noPollConnOpts) -> Option<OptsData> {
    (!opts.is_null()).then(|| take_opts(opts))
}

/// ws:// listener on host:port (IPv4).
///
/// # Safety
/// `host` and `port` are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_listener_new(
    ctx: *mut noPollCtx,
    host: *const c_char,
    port: *const c_char,
) -> *mut noPollConn {
    boundary(core::ptr::null_mut(), || {
        listen_plain(ctx, host, port, false)
    })
}

/// ws:// listener on host:port (IPv6).
///
/// # Safety
/// `host` and `port` are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_listener_new6(
    ctx: *mut noPollCtx,
    host: *const c_char,
    port: *const c_char,
) -> *mut noPollConn {
    boundary(core::ptr::null_mut(), || {
        listen_plain(ctx, host, port, true)
    })
}

/// Listener with options (consumed unless reuse is set).
///
/// # Safety
/// `host` and `port` are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_listener_new_opts(
    ctx: *mut noPollCtx,
    opts: *mut noPollConnOpts,
    host: *const c_char,
    port: *const c_char,
) -> *mut noPollConn {
    boundary(core::ptr::null_mut(), || {
        listen_common(ctx, given_opts(opts).as_ref(), host, port, false, None)
    })
}

/// IPv6 listener with options.
///
/// # Safety
/// `host` and `port` are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_listener_new_opts6(
    ctx: *mut noPollCtx,
    opts: *mut noPollConnOpts,
    host: *const c_char,
    port: *const c_char,
) -> *mut noPollConn {
    boundary(core::ptr::null_mut(), || {
        listen_common(ctx, given_opts(opts).as_ref(), host, port, true, None)
    })
}

/// Accepts one connection (waits for it).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_accept(
    ctx: *mut noPollCtx,
    listener: *mut noPollConn,
) -> *mut noPollConn {
    boundary(core::ptr::null_mut(), || {
        let (Some(c), Some(l)) = (ctx_from(ctx), conn_from(listener)) else {
            return core::ptr::null_mut();
        };
        match c.accept(&l) {
            Ok(conn) => conn_handle(&conn),
            Err(e) => {
                log_ctx(&c, format_args!("accept failed: {e}"));
                core::ptr::null_mut()
            }
        }
    })
}

/// Wraps a socket the caller accepted from `listener`: a server connection
/// registered in the context (the context owns it, as for
/// `nopoll_conn_accept`), after `on_accept` agreed. NULL for a socket that
/// is not connected, or when `on_accept` refused it (then it is closed).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_accept_socket(
    ctx: *mut noPollCtx,
    listener: *mut noPollConn,
    session: NOPOLL_SOCKET,
) -> *mut noPollConn {
    boundary(core::ptr::null_mut(), || {
        let Some(c) = ctx_from(ctx) else {
            return core::ptr::null_mut();
        };
        if !connected_socket(&c, session) {
            return core::ptr::null_mut();
        }
        let l = conn_from(listener);
        let _ = net::set_blocking(session, false);
        let k = c.adopt_socket(l.as_ref(), session);
        if !c.complete_accept(l.as_ref(), &k) {
            return core::ptr::null_mut();
        }
        conn_handle(&k)
    })
}

/// True if `session` is a connected socket (logs why not).
fn connected_socket(c: &Context, session: NOPOLL_SOCKET) -> bool {
    if session >= 0 && net::peer_addr(session).is_some() {
        return true;
    }
    log_ctx(
        c,
        format_args!("socket {session} is not a connected socket: cannot accept it"),
    );
    false
}

/// Plain accept() on a listening socket; the new socket or -1.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_listener_accept(server_socket: NOPOLL_SOCKET) -> NOPOLL_SOCKET {
    boundary(-1, || {
        if server_socket < 0 {
            return -1;
        }
        loop {
            match net::accept(server_socket) {
                Ok(Some(fd)) => {
                    // As accept(2) gives it: blocking (the library makes
                    // it non-blocking when it takes the socket over).
                    let _ = net::set_blocking(fd, true);
                    return fd;
                }
                Ok(None) => {
                    if net::wait_fd(server_socket, true, false, -1).is_err() {
                        return -1;
                    }
                }
                Err(_) => return -1,
            }
        }
    })
}

/// A newly allocated accept key for `websocket_key` (free with nopoll_free).
///
/// # Safety
/// `websocket_key` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_produce_accept_key(
    ctx: *mut noPollCtx,
    websocket_key: *const c_char,
) -> *mut c_char {
    let _ = ctx;
    // SAFETY: per this function's contract.
    let key = unsafe { cstr(websocket_key) };
    boundary(core::ptr::null_mut(), || match key {
        Some(k) => malloc_str(&crate::protocol::accept_key(k.as_bytes())),
        None => core::ptr::null_mut(),
    })
}

// ------------------------------------------------------------ port sharing

/// Wraps an accepted, connected socket as a server connection (port
/// sharing), registered in the context; the loop serves it once
/// `nopoll_conn_accept_complete` accepted it. Given the application's
/// *listening* socket (as upstream's port-sharing sample does, to get the
/// `listener` argument of `nopoll_conn_accept_complete`), it returns a
/// listener object the loop never accepts on. NULL for anything else.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_listener_from_socket(
    ctx: *mut noPollCtx,
    session: NOPOLL_SOCKET,
) -> *mut noPollConn {
    boundary(core::ptr::null_mut(), || {
        let Some(c) = ctx_from(ctx) else {
            return core::ptr::null_mut();
        };
        if session >= 0 && net::is_listening(session) {
            return conn_handle(&c.adopt_listening_socket(session));
        }
        if !connected_socket(&c, session) {
            return core::ptr::null_mut();
        }
        let _ = net::set_blocking(session, false);
        conn_handle(&c.adopt_socket(None, session))
    })
}

/// Finishes setting up an accepted connection: records `listener` (its
/// frame limit applies; NULL is allowed) and runs `on_accept`. False, with
/// the connection shut down and removed from the context, when that
/// refuses it, when `session` is not the connection's socket, or when TLS
/// is requested (not implemented yet).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_accept_complete(
    ctx: *mut noPollCtx,
    listener: *mut noPollConn,
    conn: *mut noPollConn,
    session: NOPOLL_SOCKET,
    tls_on: nopoll_bool,
) -> nopoll_bool {
    boundary(nopoll_false, || {
        let (Some(c), Some(k)) = (ctx_from(ctx), conn_from(conn)) else {
            return nopoll_false;
        };
        if session < 0 || k.socket() != session || !c.same(&k.ctx()) {
            k.shutdown();
            k.ctx().unregister_conn(&k);
            return nopoll_false;
        }
        let _ = net::set_blocking(session, false);
        let l = conn_from(listener);
        let tls = tls_on != 0 || l.as_ref().is_some_and(Connection::is_tls);
        c.complete_accept_with(l.as_ref(), &k, tls) as nopoll_bool
    })
}

/// socket + bind + listen on host:port (IPv4); the socket (blocking, as
/// upstream's: accept(2) on it waits), -1 on failure, -2 for bad
/// parameters.
///
/// # Safety
/// `host` and `port` are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_listener_sock_listen(
    ctx: *mut noPollCtx,
    host: *const c_char,
    port: *const c_char,
) -> NOPOLL_SOCKET {
    // SAFETY: per this function's contract.
    let (h, p) = unsafe { (cstr(host), cstr(port)) };
    boundary(-1, || {
        let (Some(c), Some(h), Some(p)) = (ctx_from(ctx), h, p) else {
            return -2;
        };
        let backlog = c.config().backlog;
        match net::tcp_listen(h, p, false, backlog) {
            Ok(fd) => {
                let _ = net::set_blocking(fd, true);
                fd
            }
            Err(e) => {
                log_ctx(&c, format_args!("cannot listen on {h}:{p}: {e}"));
                -1
            }
        }
    })
}
