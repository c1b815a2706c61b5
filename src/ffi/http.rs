//! Extension beyond upstream's API: answering plain HTTP requests on a
//! WebSocket listener, so one port serves both a page and the WebSocket
//! endpoint (the chat server uses it).

#[allow(unused_imports)]
use crate::prelude::*;

use super::types::*;
use super::{boundary, conn_from, conn_handle, ctx_from, ctx_handle, UserData};
use crate::protocol::handshake::Request;
use crate::runtime::{Connection, Context, HttpHandler};
use crate::sync::Arc;
use alloc::ffi::CString;
use core::ffi::{c_char, c_int, c_long};

/// Called for a request on a listener that is not a WebSocket upgrade
/// (a browser fetching a page). It may answer with
/// `nopoll_conn_send_http_response`; the connection is closed when it
/// returns. `method` and `url` are valid during the call.
pub type noPollHttpRequestHandler = Option<
    unsafe extern "C" fn(
        ctx: *mut noPollCtx,
        conn: *mut noPollConn,
        method: *const c_char,
        url: *const c_char,
        user_data: noPollPtr,
    ),
>;

/// Installs (or, with NULL, removes) the handler for plain HTTP requests.
/// Without one, such requests get `400 Bad Request`.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_on_http_request(
    ctx: *mut noPollCtx,
    handler: noPollHttpRequestHandler,
    user_data: noPollPtr,
) {
    boundary((), || {
        let Some(c) = ctx_from(ctx) else {
            return;
        };
        let h: Option<HttpHandler> = handler.map(|f| {
            let ud = UserData(user_data);
            Arc::new(move |ctx: &Context, conn: &Connection, req: &Request| {
                let (Ok(m), Ok(u)) = (
                    CString::new(req.method.as_str()),
                    CString::new(req.url.as_str()),
                ) else {
                    return;
                };
                // SAFETY: the caller's function with its user data; the
                // strings outlive the call and the handles are valid.
                unsafe {
                    f(
                        ctx_handle(ctx),
                        conn_handle(conn),
                        m.as_ptr(),
                        u.as_ptr(),
                        ud.get(),
                    )
                }
            }) as HttpHandler
        });
        c.update_config(|cfg| cfg.on_http = h);
    })
}

/// From an HTTP request handler: sends `status` with `body` (`body_size`
/// bytes, -1 for strlen) and `Content-Type: content_type`. False outside an
/// HTTP request or for bad arguments.
///
/// # Safety
/// `content_type` is NULL or NUL-terminated; `body` is NULL or valid for
/// `body_size` bytes (NUL-terminated when -1).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_send_http_response(
    conn: *mut noPollConn,
    status: c_int,
    content_type: *const c_char,
    body: *const c_char,
    body_size: c_long,
) -> nopoll_bool {
    // SAFETY: per this function's contract.
    let ct = unsafe { super::cstr(content_type) }.unwrap_or("text/plain");
    let body: &[u8] = if body.is_null() {
        &[]
    } else if body_size == -1 {
        // SAFETY: NUL-terminated per the contract.
        unsafe { core::ffi::CStr::from_ptr(body) }.to_bytes()
    } else if body_size >= 0 {
        // SAFETY: valid for `body_size` bytes per the contract.
        unsafe { core::slice::from_raw_parts(body as *const u8, body_size as usize) }
    } else {
        return nopoll_false;
    };
    boundary(nopoll_false, || {
        let (Some(c), Ok(st)) = (conn_from(conn), u16::try_from(status)) else {
            return nopoll_false;
        };
        c.send_http_response(st, ct, body).is_ok() as nopoll_bool
    })
}
