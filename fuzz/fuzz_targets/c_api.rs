//! The C API driven by random call sequences with hostile arguments
//! (issue 18, item 4): no argument a C caller can pass may reach a panic
//! or an allocation the heap cannot give (libFuzzer's panic hook and its
//! malloc limit make either a crash).
//!
//! Each input is one session: a context, a client and a server connection
//! over a loopback TCP pair (`nopoll_conn_new_with_socket`,
//! `nopoll_conn_accept_socket`), an echo handler on the server side, then
//! up to 64 operations read from the input: `[op, selector bytes...]`.
//! Integer arguments come from a table of hostile values (0, -1, LONG_MAX,
//! LONG_MIN, INT_MAX, INT_MIN, 125/126/127, 65535/65536, ...) or raw input
//! bytes. Calls that could block for long are given bounded timeouts (the
//! loop runs at most 2 ms per call), and lengths never exceed the buffer
//! passed (a longer one is the caller's out-of-bounds read, not ours to
//! catch); everything else is as hostile as the selector makes it,
//! NULL handles included.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nopoll::ffi::{
    noPollConn, noPollConnOpts, noPollCtx, noPollMsg, noPollPtr, nopoll_bool, NOPOLL_ROLE_CLIENT,
};
use std::ffi::{c_char, c_int, c_long};
use std::net::{TcpListener, TcpStream};
use std::os::fd::IntoRawFd;
use std::sync::OnceLock;

type OnMsg =
    Option<unsafe extern "C" fn(*mut noPollCtx, *mut noPollConn, *mut noPollMsg, noPollPtr)>;

extern "C" {
    fn nopoll_ctx_new() -> *mut noPollCtx;
    fn nopoll_ctx_unref(ctx: *mut noPollCtx);
    fn nopoll_ctx_conns(ctx: *mut noPollCtx) -> c_int;
    fn nopoll_ctx_set_on_msg(ctx: *mut noPollCtx, h: OnMsg, user: noPollPtr);
    fn nopoll_ctx_set_recv_buffer_size(ctx: *mut noPollCtx, v: c_long);
    fn nopoll_ctx_set_max_pending_output(ctx: *mut noPollCtx, v: c_long);
    fn nopoll_ctx_set_max_idle_buffers(ctx: *mut noPollCtx, v: c_long);
    fn nopoll_ctx_set_max_message_size(ctx: *mut noPollCtx, v: c_long);
    fn nopoll_ctx_set_max_frame_size(ctx: *mut noPollCtx, v: c_long);
    fn nopoll_ctx_get_max_frame_size(ctx: *mut noPollCtx) -> c_long;
    fn nopoll_ctx_set_handshake_timeout(ctx: *mut noPollCtx, v: c_long);
    fn nopoll_ctx_set_listen_backlog(ctx: *mut noPollCtx, v: c_int);
    fn nopoll_ctx_set_protocol_version(ctx: *mut noPollCtx, v: c_int);
    fn nopoll_ctx_set_fragment_delivery(ctx: *mut noPollCtx, v: nopoll_bool);
    fn nopoll_conn_connect_timeout(ctx: *mut noPollCtx, v: c_long);
    fn nopoll_conn_get_connect_timeout(ctx: *mut noPollCtx) -> c_long;
    fn nopoll_loop_wait(ctx: *mut noPollCtx, timeout: c_long) -> c_int;
    fn nopoll_conn_new_with_socket(
        ctx: *mut noPollCtx,
        opts: *mut noPollConnOpts,
        socket: c_int,
        host_ip: *const c_char,
        host_port: *const c_char,
        host_name: *const c_char,
        get_url: *const c_char,
        protocols: *const c_char,
        origin: *const c_char,
    ) -> *mut noPollConn;
    fn nopoll_conn_accept_socket(
        ctx: *mut noPollCtx,
        listener: *mut noPollConn,
        session: c_int,
    ) -> *mut noPollConn;
    fn nopoll_conn_role(conn: *mut noPollConn) -> c_int;
    fn nopoll_conn_is_ok(conn: *mut noPollConn) -> nopoll_bool;
    fn nopoll_conn_is_ready(conn: *mut noPollConn) -> nopoll_bool;
    fn nopoll_conn_close(conn: *mut noPollConn);
    fn nopoll_conn_close_ext(
        conn: *mut noPollConn,
        status: c_int,
        reason: *const c_char,
        size: c_int,
    );
    fn nopoll_conn_shutdown(conn: *mut noPollConn);
    fn nopoll_conn_send_text(
        conn: *mut noPollConn,
        content: *const c_char,
        length: c_long,
    ) -> c_int;
    fn nopoll_conn_send_binary(
        conn: *mut noPollConn,
        content: *const c_char,
        length: c_long,
    ) -> c_int;
    fn nopoll_conn_send_text_fragment(
        conn: *mut noPollConn,
        content: *const c_char,
        length: c_long,
    ) -> c_int;
    fn nopoll_conn_send_binary_fragment(
        conn: *mut noPollConn,
        content: *const c_char,
        length: c_long,
    ) -> c_int;
    fn nopoll_conn_send_ping(conn: *mut noPollConn) -> nopoll_bool;
    fn nopoll_conn_send_pong(
        conn: *mut noPollConn,
        length: c_long,
        content: noPollPtr,
    ) -> nopoll_bool;
    fn nopoll_conn_send_frame(
        conn: *mut noPollConn,
        fin: nopoll_bool,
        masked: nopoll_bool,
        op_code: c_int,
        length: c_long,
        content: noPollPtr,
        sleep_in_header: c_long,
    ) -> c_int;
    fn nopoll_conn_get_msg(conn: *mut noPollConn) -> *mut noPollMsg;
    fn nopoll_msg_get_payload(msg: *mut noPollMsg) -> *const u8;
    fn nopoll_msg_get_payload_size(msg: *mut noPollMsg) -> c_int;
    fn nopoll_msg_opcode(msg: *mut noPollMsg) -> c_int;
    fn nopoll_msg_unref(msg: *mut noPollMsg);
    fn nopoll_conn_read(
        conn: *mut noPollConn,
        buffer: *mut c_char,
        bytes: c_int,
        block: nopoll_bool,
        timeout: c_long,
    ) -> c_int;
    fn nopoll_conn_pending_write_bytes(conn: *mut noPollConn) -> c_int;
    fn nopoll_conn_complete_pending_write(conn: *mut noPollConn) -> c_int;
    fn nopoll_conn_flush_writes(conn: *mut noPollConn, timeout: c_long, previous: c_int) -> c_int;
    fn nopoll_conn_get_close_status(conn: *mut noPollConn) -> c_int;
    fn nopoll_conn_get_close_reason(conn: *mut noPollConn) -> *const c_char;
    fn nopoll_conn_opts_new() -> *mut noPollConnOpts;
    fn nopoll_conn_opts_set_max_frame_size(opts: *mut noPollConnOpts, v: c_long);
    fn nopoll_conn_opts_set_reuse(opts: *mut noPollConnOpts, reuse: nopoll_bool);
    fn nopoll_conn_opts_set_cookie(opts: *mut noPollConnOpts, cookie: *const c_char);
    fn nopoll_conn_opts_set_extra_headers(opts: *mut noPollConnOpts, headers: *const c_char);
    fn nopoll_conn_opts_free(opts: *mut noPollConnOpts);
}

/// The hostile integers arguments are drawn from.
const HOSTILE: [i64; 24] = [
    0,
    -1,
    1,
    2,
    125,
    126,
    127,
    255,
    256,
    65_535,
    65_536,
    1 << 20,
    16 << 20,
    i32::MAX as i64,
    i32::MIN as i64,
    i32::MAX as i64 + 1,
    1 << 32,
    i64::MAX,
    i64::MIN,
    i64::MAX - 1,
    -2,
    1000,
    1001,
    4999,
];

/// Bytes sent by the send calls: fuzz data first, NUL-terminated (for
/// `length == -1`, which means strlen).
const DATA_CAP: usize = 256 * 1024;

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(b)
    }

    /// A hostile value, or 8 raw bytes for selectors past the table.
    fn int(&mut self) -> i64 {
        let s = self.byte().unwrap_or(0) as usize;
        if s < HOSTILE.len() * 8 {
            return HOSTILE[s % HOSTILE.len()];
        }
        let mut v = [0u8; 8];
        for b in v.iter_mut() {
            *b = self.byte().unwrap_or(0);
        }
        i64::from_le_bytes(v)
    }

    /// A length for a buffer of `cap` bytes: hostile negatives kept (the
    /// API must refuse them), positives cut to `cap`.
    fn len(&mut self, cap: usize) -> c_long {
        let v = self.int();
        if v < 0 {
            v as c_long
        } else {
            (v as u64).min(cap as u64) as c_long
        }
    }
}

/// Server side: echo what comes (the client side only collects).
unsafe extern "C" fn echo(
    _ctx: *mut noPollCtx,
    conn: *mut noPollConn,
    msg: *mut noPollMsg,
    _user: noPollPtr,
) {
    // SAFETY: the handles are the library's, valid during the call.
    unsafe {
        if nopoll_conn_role(conn) == NOPOLL_ROLE_CLIENT {
            return;
        }
        let p = nopoll_msg_get_payload(msg);
        let n = nopoll_msg_get_payload_size(msg);
        if nopoll_msg_opcode(msg) == 1 {
            nopoll_conn_send_text(conn, p.cast(), n as c_long);
        } else {
            nopoll_conn_send_binary(conn, p.cast(), n as c_long);
        }
    }
}

fn listener() -> &'static TcpListener {
    static L: OnceLock<TcpListener> = OnceLock::new();
    L.get_or_init(|| TcpListener::bind("127.0.0.1:0").expect("loopback listener"))
}

/// A connected loopback pair whose close resets (SO_LINGER 0): no
/// TIME_WAIT piles up over millions of runs.
fn tcp_pair() -> Option<(c_int, c_int)> {
    let l = listener();
    let a = TcpStream::connect(l.local_addr().ok()?).ok()?;
    let (b, _) = l.accept().ok()?;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let (a, b) = (a.into_raw_fd(), b.into_raw_fd());
    for fd in [a, b] {
        // SAFETY: fd is open; linger is a live struct of the given size.
        // Non-blocking, as nopoll_conn_new makes its sockets: a caller's
        // blocking socket blocks reads, as upstream's does.
        unsafe {
            libc::fcntl(
                fd,
                libc::F_SETFL,
                libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK,
            );
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }
    Some((a, b))
}

fuzz_target!(|input: &[u8]| {
    let Some((cfd, sfd)) = tcp_pair() else {
        return;
    };
    let mut data = vec![b'a'; DATA_CAP];
    let n = input.len().min(DATA_CAP - 1);
    data[..n].copy_from_slice(&input[..n]);
    data[DATA_CAP - 1] = 0;
    let dp = data.as_ptr().cast::<c_char>();
    let cap = DATA_CAP - 1;
    let mut r = Reader { bytes: input };
    let mut rbuf = vec![0u8; 4096];

    // SAFETY: every pointer passed is NULL, a handle from the library, or
    // a live buffer at least as long as the length passed with it.
    unsafe {
        let ctx = nopoll_ctx_new();
        assert!(!ctx.is_null());
        nopoll_ctx_set_on_msg(ctx, Some(echo), std::ptr::null_mut());
        let host = c"127.0.0.1".as_ptr();
        let port = c"80".as_ptr();
        let client = nopoll_conn_new_with_socket(
            ctx,
            std::ptr::null_mut(),
            cfd,
            host,
            port,
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
        );
        if client.is_null() {
            libc::close(cfd);
        }
        let server = nopoll_conn_accept_socket(ctx, std::ptr::null_mut(), sfd);
        if server.is_null() {
            libc::close(sfd);
        }
        nopoll_loop_wait(ctx, 2000);

        for _ in 0..64 {
            let Some(op) = r.byte() else { break };
            let sel = r.byte().unwrap_or(0);
            let conn = match sel % 4 {
                0 | 1 => client,
                2 => server,
                _ => std::ptr::null_mut(),
            };
            let c = if sel & 0x80 != 0 {
                std::ptr::null_mut()
            } else {
                ctx
            };
            match op % 28 {
                0 => nopoll_ctx_set_recv_buffer_size(c, r.int() as c_long),
                1 => nopoll_ctx_set_max_pending_output(c, r.int() as c_long),
                2 => nopoll_ctx_set_max_idle_buffers(c, r.int() as c_long),
                3 => nopoll_ctx_set_max_message_size(c, r.int() as c_long),
                4 => {
                    nopoll_ctx_set_max_frame_size(c, r.int() as c_long);
                    assert!(nopoll_ctx_get_max_frame_size(c) > 0);
                }
                5 => nopoll_ctx_set_handshake_timeout(c, r.int() as c_long),
                6 => {
                    nopoll_conn_connect_timeout(c, r.int() as c_long);
                    assert!(nopoll_conn_get_connect_timeout(c) >= 0);
                }
                7 => nopoll_ctx_set_listen_backlog(c, r.int() as c_int),
                8 => nopoll_ctx_set_protocol_version(c, r.int() as c_int),
                9 => nopoll_ctx_set_fragment_delivery(c, r.int() as nopoll_bool),
                10 => {
                    nopoll_conn_send_text(conn, dp, r.len(cap));
                }
                11 => {
                    nopoll_conn_send_binary(conn, dp, r.len(cap));
                }
                12 => {
                    nopoll_conn_send_text_fragment(conn, dp, r.len(cap));
                }
                13 => {
                    nopoll_conn_send_binary_fragment(conn, dp, r.len(cap));
                }
                14 => {
                    nopoll_conn_send_ping(conn);
                }
                15 => {
                    nopoll_conn_send_pong(conn, r.len(cap), dp as noPollPtr);
                }
                16 => {
                    let fin = r.int() as nopoll_bool;
                    let masked = r.int() as nopoll_bool;
                    let opcode = r.int() as c_int;
                    // sleep_in_header stays 0: it sleeps, as upstream.
                    nopoll_conn_send_frame(
                        conn,
                        fin,
                        masked,
                        opcode,
                        r.len(cap),
                        dp as noPollPtr,
                        0,
                    );
                }
                17 | 18 => {
                    // Bounded: at most 2 ms (negatives must be refused).
                    let t = r.int();
                    let t = if t < 0 { t } else { t % 2001 + 1 };
                    nopoll_loop_wait(c, t as c_long);
                }
                19 => {
                    let m = nopoll_conn_get_msg(conn);
                    if !m.is_null() {
                        nopoll_msg_get_payload_size(m);
                        nopoll_msg_unref(m);
                    }
                }
                20 => {
                    let bytes = r.len(rbuf.len()) as c_int;
                    nopoll_conn_read(conn, rbuf.as_mut_ptr().cast(), bytes, 0, r.int() as c_long);
                }
                21 => {
                    nopoll_conn_pending_write_bytes(conn);
                    nopoll_conn_complete_pending_write(conn);
                    let t = r.int();
                    let t = if t < 0 { t } else { t % 2001 };
                    nopoll_conn_flush_writes(conn, t as c_long, r.int() as c_int);
                }
                22 => {
                    let status = r.int() as c_int;
                    let size = r.len(cap).min(c_int::MAX as c_long) as c_int;
                    let reason = if r.int() == 0 { std::ptr::null() } else { dp };
                    nopoll_conn_close_ext(conn, status, reason, size);
                }
                23 => nopoll_conn_shutdown(conn),
                24 => {
                    nopoll_conn_is_ok(conn);
                    nopoll_conn_is_ready(conn);
                    nopoll_conn_get_close_status(conn);
                    nopoll_conn_get_close_reason(conn);
                    nopoll_ctx_conns(c);
                }
                25 => {
                    let o = nopoll_conn_opts_new();
                    nopoll_conn_opts_set_max_frame_size(o, r.int() as c_long);
                    nopoll_conn_opts_set_reuse(o, r.int() as nopoll_bool);
                    nopoll_conn_opts_set_cookie(o, dp);
                    nopoll_conn_opts_set_extra_headers(o, std::ptr::null());
                    nopoll_conn_opts_free(o);
                }
                26 => {
                    // A message sent, then the loop serving both ends.
                    nopoll_conn_send_binary(client, dp, r.len(cap));
                    nopoll_loop_wait(ctx, 2000);
                }
                _ => {
                    // Hostile values for every setter at once, then a loop run.
                    let v = r.int() as c_long;
                    nopoll_ctx_set_recv_buffer_size(ctx, v);
                    nopoll_ctx_set_max_pending_output(ctx, v);
                    nopoll_ctx_set_max_idle_buffers(ctx, v);
                    nopoll_ctx_set_max_message_size(ctx, v);
                    nopoll_ctx_set_max_frame_size(ctx, v);
                    nopoll_ctx_set_handshake_timeout(ctx, v);
                    nopoll_loop_wait(ctx, 1000);
                }
            }
        }
        if !client.is_null() {
            nopoll_conn_close(client);
        }
        if !server.is_null() {
            nopoll_conn_close(server);
        }
        nopoll_ctx_unref(ctx);
    }
});
