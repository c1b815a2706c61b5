//! The runtime over real loopback sockets: a server context running its
//! loop in a thread, clients polling or looping in the test thread.

mod common;
use common::{echo_messages, recv, LoopThread};
use nopoll::protocol::OpCode;
use nopoll::runtime::{
    ConnectOptions, Connection, Context, LoopExit, Message, MessageHandler, MessageRefHandler,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Server {
    ctx: Context,
    port: String,
    _loop: LoopThread,
}

impl Server {
    fn echo() -> Server {
        let ctx = Context::new().unwrap();
        let listener = ctx.listen("127.0.0.1", "0", false).unwrap();
        echo_messages(&ctx);
        let port = listener.port().to_string();
        let _loop = LoopThread::start(&ctx, Duration::from_secs(60));
        Server { ctx, port, _loop }
    }
}

fn client(port: &str) -> (Context, Connection) {
    let ctx = Context::new().unwrap();
    let conn = ctx
        .connect(&ConnectOptions::new("127.0.0.1", port))
        .unwrap();
    assert!(conn.wait_ready(Duration::from_secs(5)), "handshake");
    (ctx, conn)
}

#[test]
fn echo_text_binary_and_large() {
    let s = Server::echo();
    let (_ctx, c) = client(&s.port);
    c.send_text("hello").unwrap();
    assert_eq!(recv(&c).text(), Some("hello"));
    c.send_binary(&[0, 1, 2, 255]).unwrap();
    assert_eq!(recv(&c).payload(), &[0, 1, 2, 255]);
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7) as u8).collect();
    let st = c.send_binary(&big).unwrap();
    if !st.complete {
        c.flush_writes(Duration::from_secs(10));
    }
    let m = recv(&c);
    assert_eq!(m.payload().len(), big.len());
    assert!(m.payload() == &big[..]);
    // Large text (~300 KB, above what the loop gathers into one write):
    // the server answers from its `send_text` straight out of the message
    // (the unbuffered path), non-ASCII included.
    let text: String = (0..120_000).map(|i| ['a', 'é', '€', '😀'][i % 4]).collect();
    let st = c.send_text(&text).unwrap();
    if !st.complete {
        c.flush_writes(Duration::from_secs(10));
    }
    let m = recv(&c);
    assert_eq!(m.opcode(), Some(nopoll::protocol::OpCode::Text));
    assert_eq!(m.text(), Some(text.as_str()));
    c.close(Some(1000), b"done");
    assert!(!c.is_ok());
}

#[test]
fn server_records_close_status_and_runs_on_close() {
    let s = Server::echo();
    let closed = Arc::new(AtomicUsize::new(0));
    let cl = closed.clone();
    s.ctx.set_on_ready(move |_ctx, conn| {
        let cl = cl.clone();
        conn.set_on_close(Some(Arc::new(move |_c, conn: &Connection| {
            cl.store(conn.close_status() as usize, Ordering::SeqCst);
        })));
        true
    });
    let (_ctx, c) = client(&s.port);
    c.close(Some(4001), b"bye");
    let deadline = Instant::now() + Duration::from_secs(5);
    while closed.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(closed.load(Ordering::SeqCst), 4001);
}

#[test]
fn silent_peer_does_not_block_others_and_times_out() {
    let s = Server::echo();
    s.ctx.update_config(|c| c.handshake_timeout_ms = 300);
    let silent = std::net::TcpStream::connect(format!("127.0.0.1:{}", s.port)).unwrap();
    let (_ctx, c) = client(&s.port);
    c.send_text("still served").unwrap();
    assert_eq!(recv(&c).text(), Some("still served"));
    // The silent one is dropped after the handshake timeout.
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut b = [0u8; 16];
    use std::io::Read;
    let n = (&silent).read(&mut b).unwrap_or(0);
    assert_eq!(n, 0, "server closed the silent connection");
}

#[test]
fn garbage_handshake_gets_400() {
    let s = Server::echo();
    let mut t = std::net::TcpStream::connect(format!("127.0.0.1:{}", s.port)).unwrap();
    use std::io::{Read, Write};
    t.write_all(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")
        .unwrap();
    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut s2 = String::new();
    let _ = t.read_to_string(&mut s2);
    assert!(s2.starts_with("HTTP/1.1 400 "), "{s2}");
}

#[test]
fn loop_stop_from_another_thread_is_prompt() {
    let ctx = Context::new().unwrap();
    let c = ctx.clone();
    let start = Instant::now();
    let t = std::thread::spawn(move || c.loop_wait(None));
    std::thread::sleep(Duration::from_millis(50));
    // Again until it returned: a stop before the thread has entered
    // `loop_wait` is lost (a busy machine can delay the thread that long).
    while !t.is_finished() {
        ctx.loop_stop();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(t.join().unwrap(), LoopExit::Stopped);
    // A bound, not a timing: without the wake-up it would never return.
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(
        ctx.loop_wait(Some(Duration::from_millis(20))),
        LoopExit::Timeout
    );
}

#[test]
fn log_callback_may_use_the_connection_it_reports_on() {
    let s = Server::echo();
    let slot: Arc<std::sync::Mutex<Option<Connection>>> = Arc::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let (sl, ca) = (slot.clone(), calls.clone());
    s.ctx.update_config(move |cfg| {
        cfg.log_sink = Some(Arc::new(move |_lvl, line: &str| {
            if line.contains("1007") {
                // Locks the connection: must not be called with its lock held.
                if let Some(c) = sl.lock().unwrap().clone() {
                    let _ = c.pending_write_bytes();
                }
                ca.fetch_add(1, Ordering::SeqCst);
            }
        }))
    });
    let sl = slot.clone();
    s.ctx.set_on_ready(move |_ctx, conn| {
        *sl.lock().unwrap() = Some(conn.clone());
        true
    });
    let (_ctx, c) = client(&s.port);
    c.send_raw_frame(true, true, 1, b"\xff", Duration::ZERO)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while calls.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "log line about 1007 never delivered"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // The server closed with 1007.
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.is_ok() {
        let _ = c.get_msg();
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(c.close_status(), 1007);
    slot.lock().unwrap().take();
}

/// A client context connected to a [`raw_server_sending`] `after`, and the
/// raw peer's thread.
fn client_of_raw_server(
    after: &'static [u8],
) -> (Context, Connection, std::thread::JoinHandle<()>) {
    let (port, t) = raw_server_sending(after);
    let ctx = Context::new().unwrap();
    let c = ctx
        .connect(&ConnectOptions::new("127.0.0.1", &port))
        .unwrap();
    (ctx, c, t)
}

/// Reads a client's upgrade request from `s` and answers 101, with
/// `after` in the same write.
fn answer_handshake(s: &mut std::net::TcpStream, after: &[u8]) {
    use std::io::{Read, Write};
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = Vec::new();
    let mut b = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut b).unwrap();
        assert!(n > 0, "client went away during the handshake");
        req.extend_from_slice(&b[..n]);
    }
    let req = String::from_utf8(req).unwrap();
    let key = req
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap()
        .trim();
    let acc = nopoll::protocol::handshake::accept_key(key.as_bytes());
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        std::str::from_utf8(&acc).unwrap()
    )
    .into_bytes();
    out.extend_from_slice(after);
    s.write_all(&out).unwrap();
}

/// A raw peer: answers the client handshake, then writes `after` in the same
/// `write` as the 101 response (so the client reads it all at once).
fn raw_server_sending(after: &'static [u8]) -> (String, std::thread::JoinHandle<()>) {
    use std::io::Read;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        answer_handshake(&mut s, after);
        let mut b = [0u8; 1024];
        // Drain until the client closes.
        while matches!(s.read(&mut b), Ok(n) if n > 0) {}
    });
    (port, t)
}

/// Regression: a message followed by a close frame in the same read was
/// dropped (the connection was marked closed before dispatch, and
/// dispatch skipped messages of closed connections). Everything received
/// before the close frame must reach the application.
#[test]
fn message_arriving_with_the_close_frame_is_delivered() {
    // text "hi", then close 1000 "bye"
    let (_ctx, c, t) = client_of_raw_server(b"\x81\x02hi\x88\x05\x03\xe8bye");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = None;
    while got.is_none() && Instant::now() < deadline {
        got = c.get_msg();
        if got.is_none() && !c.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(got.as_ref().and_then(|m| m.text()), Some("hi"));
    // The close that came with it was processed too.
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.is_ok() && Instant::now() < deadline {
        let _ = c.get_msg();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(!c.is_ok());
    assert_eq!(c.close_status(), 1000);
    assert_eq!(c.close_reason().as_deref(), Some("bye"));
    c.close(None, b"");
    t.join().unwrap();
}

/// A server that answers the handshake and at once sends a message and its
/// close, all in one write: the client still reports the handshake ready
/// (upstream reads the 101 byte by byte and has not seen the rest yet), and
/// the message is there to read; then the close shows.
#[test]
fn ready_when_the_peer_sent_a_message_and_closed_with_the_101() {
    let (_ctx, c, t) = client_of_raw_server(b"\x81\x02hi\x88\x02\x03\xe8");
    // Let everything arrive, so that one read takes it all.
    std::thread::sleep(Duration::from_millis(200));
    assert!(c.wait_ready(Duration::from_secs(5)));
    assert!(c.is_ready());
    // The close was read with the 101, but shows only after the message
    // that came before it (issue 17 item 2).
    assert!(c.is_ok(), "closed before its message was handed out");
    assert_eq!(c.close_status(), 1006);
    assert_eq!(c.get_msg().as_ref().and_then(|m| m.text()), Some("hi"));
    assert!(!c.is_ok());
    assert_eq!(c.close_status(), 1000);
    // Nothing left to read: no longer ready.
    assert!(c.get_msg().is_none());
    assert!(!c.is_ready());
    assert!(!c.wait_ready(Duration::from_millis(100)));
    c.close(None, b"");
    t.join().unwrap();
}

/// Messages that arrive in the same read as the 101 response are handed to
/// the loop's handler from where they were received (after the handshake
/// bytes), and a fragmented one from the reassembly buffer: every payload
/// must come out whole and in order.
#[test]
fn loop_delivers_messages_read_together_with_the_101() {
    // text "first", binary 00 01 02, text "frag"+"mented" in two frames.
    let (ctx, c, t) =
        client_of_raw_server(b"\x81\x05first\x82\x03\x00\x01\x02\x01\x04frag\x80\x06mented");
    type Got = Vec<(Option<OpCode>, Vec<u8>)>;
    let got: Arc<std::sync::Mutex<Got>> = Arc::default();
    let g = got.clone();
    ctx.set_on_message(move |_ctx, _conn, msg: Message| {
        g.lock()
            .unwrap()
            .push((msg.opcode(), msg.payload().to_vec()));
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.lock().unwrap().len() < 3 && Instant::now() < deadline {
        ctx.loop_wait(Some(Duration::from_millis(20)));
    }
    assert_eq!(
        *got.lock().unwrap(),
        vec![
            (Some(OpCode::Text), b"first".to_vec()),
            (Some(OpCode::Binary), vec![0, 1, 2]),
            (Some(OpCode::Text), b"fragmented".to_vec()),
        ]
    );
    c.close(None, b"");
    t.join().unwrap();
}

/// Same on the server side, through the loop and `on_message`: a client
/// that sends its last message and its close frame together.
#[test]
fn server_delivers_message_sent_together_with_close() {
    let ctx = Context::new().unwrap();
    let listener = ctx.listen("127.0.0.1", "0", false).unwrap();
    let port = listener.port().to_string();
    let got: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let g = got.clone();
    ctx.set_on_message(move |_ctx, _conn, msg: Message| {
        g.lock()
            .unwrap()
            .push(msg.text().unwrap_or("<binary>").to_string());
    });
    let c2 = ctx.clone();
    let lp = std::thread::spawn(move || c2.loop_wait(Some(Duration::from_secs(20))));
    let cctx = Context::new().unwrap();
    let c = cctx
        .connect(&ConnectOptions::new("127.0.0.1", &port))
        .unwrap();
    assert!(c.wait_ready(Duration::from_secs(5)));
    // One write: masked text "last" + masked close 1000.
    let mut frames = Vec::new();
    frames.extend_from_slice(&[0x81, 0x84, 0, 0, 0, 0]);
    frames.extend_from_slice(b"last");
    frames.extend_from_slice(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);
    {
        use std::io::Write;
        use std::os::fd::FromRawFd;
        // SAFETY: the client's socket is open (`c` lives) and is only
        // borrowed for one raw write: ManuallyDrop never closes it.
        let mut s =
            std::mem::ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(c.socket()) });
        s.write_all(&frames).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.lock().unwrap().is_empty() && Instant::now() < deadline {
        let _ = c.get_msg();
        std::thread::sleep(Duration::from_millis(2));
    }
    ctx.loop_stop();
    let _ = lp.join();
    assert_eq!(*got.lock().unwrap(), vec!["last".to_string()]);
    c.close(None, b"");
}

/// A connection found closed while polling (no loop) stays registered, its
/// close status readable, until the caller closes it (as upstream nopoll).
#[test]
fn polled_connection_found_closed_stays_until_closed() {
    let sctx = Context::new().unwrap();
    let listener = sctx.listen("127.0.0.1", "0", false).unwrap();
    let port = listener.port().to_string();
    let client_thread = std::thread::spawn(move || {
        let (_ctx, c) = client(&port);
        c.close(Some(4001), b"done");
    });
    let server_conn = sctx.accept(&listener).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server_conn.is_ok() {
        let _ = server_conn.get_msg();
        assert!(Instant::now() < deadline, "peer close not seen");
        std::thread::sleep(Duration::from_millis(1));
    }
    client_thread.join().unwrap();
    assert_eq!(server_conn.close_status(), 4001);
    assert_eq!(server_conn.close_reason().as_deref(), Some("done"));
    assert!(
        sctx.is_registered(&server_conn),
        "still registered after the peer closed"
    );
    server_conn.close(None, b"");
    assert!(!sctx.is_registered(&server_conn));
    listener.close(None, b"");
    assert_eq!(sctx.conns(), 0);
}

#[test]
fn a_socket_the_caller_accepted_goes_through_on_accept() {
    use std::os::fd::IntoRawFd;
    let srv = Server::echo();
    let asked = Arc::new(AtomicUsize::new(0));
    let a = asked.clone();
    // The first connection is let in, the second refused.
    srv.ctx
        .set_on_accept(move |_ctx, _conn| a.fetch_add(1, Ordering::SeqCst) == 0);
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let cctx = Context::new().unwrap();

    let conn = cctx
        .connect(&ConnectOptions::new("127.0.0.1", &port))
        .unwrap();
    let (sock, _) = l.accept().unwrap();
    let accepted = srv.ctx.accept_socket(None, sock.into_raw_fd());
    assert!(accepted.is_ok(), "on_accept agreed");
    assert!(conn.wait_ready(Duration::from_secs(5)), "handshake");
    conn.send_text("served").unwrap();
    assert_eq!(recv(&conn).text(), Some("served"));

    let refused = cctx
        .connect(&ConnectOptions::new("127.0.0.1", &port))
        .unwrap();
    let (sock, _) = l.accept().unwrap();
    assert!(matches!(
        srv.ctx.accept_socket(None, sock.into_raw_fd()),
        Err(nopoll::runtime::Error::Refused)
    ));
    assert!(
        !refused.wait_ready(Duration::from_secs(5)),
        "refused: no handshake"
    );
    assert_eq!(asked.load(Ordering::SeqCst), 2);
}

#[test]
fn message_handlers_replaced_while_the_loop_runs() {
    // The loop keeps the context's handler from one read to the next and
    // skips each connection's own (unset) one: replacing either must still
    // take effect for the very next message.
    let s = Server::echo();
    let (_ca, a) = client(&s.port);
    let (_cb, b) = client(&s.port);
    let ask = |c: &Connection, text: &str| {
        c.send_text(text).unwrap();
        recv(c).text().unwrap().to_string()
    };
    assert_eq!(ask(&a, "1"), "1");
    assert_eq!(ask(&b, "1"), "1");
    // The server side of `b`: accepted after `a`'s.
    let server_b = s
        .ctx
        .connections()
        .into_iter()
        .filter(|c| c.role() != nopoll::runtime::ConnRole::Listener)
        .max_by_key(|c| c.id())
        .unwrap();
    let own: MessageHandler = Arc::new(|_ctx, conn: &Connection, msg: Message| {
        let _ = conn.send_text(&format!("own:{}", msg.text().unwrap()));
    });
    server_b.set_on_message(Some(own.clone()));
    assert_eq!(ask(&b, "2"), "own:2");
    assert_eq!(ask(&a, "2"), "2");
    s.ctx.set_on_message(|_ctx, conn, msg: Message| {
        let _ = conn.send_text(&format!("new:{}", msg.text().unwrap()));
    });
    assert_eq!(ask(&a, "3"), "new:3");
    assert_eq!(ask(&b, "3"), "own:3");
    server_b.set_on_message(None);
    assert_eq!(ask(&b, "4"), "new:4");
    assert_eq!(ask(&a, "4"), "new:4");
    // A borrowing handler replaces an owning one and the other way round.
    s.ctx.set_on_message_ref(|_ctx, conn, msg: &Message| {
        let _ = conn.send_text(&format!("ref:{}", msg.text().unwrap()));
    });
    assert_eq!(ask(&a, "5"), "ref:5");
    assert_eq!(ask(&b, "5"), "ref:5");
    s.ctx.set_on_message(|_ctx, conn, msg: Message| {
        let _ = conn.send_text(&format!("owned:{}", msg.text().unwrap()));
    });
    assert_eq!(ask(&a, "6"), "owned:6");
    // A connection's own borrowing handler, replaced by an owning one and
    // removed: the context's applies again.
    let own_ref: MessageRefHandler = Arc::new(|_ctx, conn: &Connection, msg: &Message| {
        let _ = conn.send_text(&format!("own-ref:{}", msg.text().unwrap()));
    });
    server_b.set_on_message_ref(Some(own_ref.clone()));
    assert_eq!(ask(&b, "7"), "own-ref:7");
    assert_eq!(ask(&a, "7"), "owned:7");
    server_b.set_on_message(Some(own));
    assert_eq!(ask(&b, "8"), "own:8");
    server_b.set_on_message_ref(Some(own_ref));
    assert_eq!(ask(&b, "9"), "own-ref:9");
    server_b.set_on_message_ref(None);
    assert_eq!(ask(&b, "10"), "owned:10");
}

#[test]
fn a_borrowing_handler_sees_every_message_whole() {
    // Text, binary, empty, over the inline size, and a message in pieces:
    // each as the peer sent it, kept beyond the call by cloning.
    let ctx = Context::new().unwrap();
    let listener = ctx.listen("127.0.0.1", "0", false).unwrap();
    let seen: Arc<std::sync::Mutex<Vec<Message>>> = Arc::default();
    let log = seen.clone();
    ctx.set_on_message_ref(move |_ctx, conn, msg: &Message| {
        log.lock().unwrap().push(msg.clone());
        let _ = match msg.opcode() {
            Some(OpCode::Text) => conn.send_text(msg.text().unwrap()),
            _ => conn.send_binary(msg.payload()),
        };
    });
    let s = Server {
        port: listener.port().to_string(),
        _loop: LoopThread::start(&ctx, Duration::from_secs(60)),
        ctx,
    };
    let (_cctx, c) = client(&s.port);
    let long = "x".repeat(300);
    c.send_text("hi").unwrap();
    c.send_binary(&[1, 2, 3]).unwrap();
    c.send_text("").unwrap();
    c.send_text(&long).unwrap();
    c.send_data(nopoll::protocol::DataKind::Text, b"pie", false)
        .unwrap();
    c.send_data(nopoll::protocol::DataKind::Text, b"ces", true)
        .unwrap();
    let echoed: Vec<Vec<u8>> = (0..5).map(|_| recv(&c).payload().to_vec()).collect();
    let want: Vec<&[u8]> = vec![b"hi", &[1, 2, 3], b"", long.as_bytes(), b"pieces"];
    assert_eq!(echoed, want);
    let seen = seen.lock().unwrap();
    let got: Vec<(Option<OpCode>, &[u8])> =
        seen.iter().map(|m| (m.opcode(), m.payload())).collect();
    assert_eq!(
        got,
        vec![
            (Some(OpCode::Text), &b"hi"[..]),
            (Some(OpCode::Binary), &[1, 2, 3][..]),
            (Some(OpCode::Text), &b""[..]),
            (Some(OpCode::Text), long.as_bytes()),
            (Some(OpCode::Text), &b"pieces"[..]),
        ]
    );
}

/// Waits (bounded) until `fd` is readable (`POLLIN`) or writable
/// (`POLLOUT`): the precondition of the loop tests below, so that they do
/// not depend on how fast the peer is.
fn poll_fd(fd: i32, events: libc::c_short) -> bool {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, count 1.
    let n = unsafe { libc::poll(&mut p, 1, 10_000) };
    n == 1 && p.revents & events != 0
}

/// Regression (writes.c under valgrind): a `loop_wait` whose timeout
/// was already up when it was ready to wait (here a zero timeout; there
/// 10 ms that the loop's setup outlasted under valgrind) returned
/// `Timeout` without looking at readiness, so the ready input was never
/// served however often it was called. Every call waits at least once.
#[test]
fn loop_wait_with_an_expired_timeout_still_serves_ready_input() {
    let (port, t) = raw_server_sending(b"\x81\x02hi");
    let ctx = Context::new().unwrap();
    let got = Arc::new(AtomicUsize::new(0));
    let g = got.clone();
    ctx.set_on_message(move |_ctx, _conn, msg: Message| {
        assert_eq!(msg.text(), Some("hi"));
        g.fetch_add(1, Ordering::SeqCst);
    });
    let c = ctx
        .connect(&ConnectOptions::new("127.0.0.1", &port))
        .unwrap();
    // The 101 and the message are on the socket (one write of the peer).
    assert!(poll_fd(c.socket(), libc::POLLIN), "the peer's answer came");
    assert_eq!(ctx.loop_wait(Some(Duration::ZERO)), LoopExit::Timeout);
    assert_eq!(
        got.load(Ordering::SeqCst),
        1,
        "served by a zero-timeout call"
    );
    c.close(None, b"");
    t.join().unwrap();
}

/// The same for a short write: once the socket is writable, each
/// `loop_wait` with an expired timeout writes some of the pending rest.
#[test]
fn loop_wait_with_an_expired_timeout_still_writes_pending_output() {
    use std::io::Read;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        answer_handshake(&mut s, b"");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut b = [0u8; 65536];
        // Reads only once the client's send was short, until it closes.
        go_rx.recv().unwrap();
        while matches!(s.read(&mut b), Ok(n) if n > 0) {}
    });
    let ctx = Context::new().unwrap();
    let c = ctx
        .connect(&ConnectOptions::new("127.0.0.1", &port))
        .unwrap();
    assert!(c.wait_ready(Duration::from_secs(10)), "handshake");
    let small: libc::c_int = 16384;
    // SAFETY: a valid socket and an int option of the right size.
    unsafe {
        libc::setsockopt(
            c.socket(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&small as *const libc::c_int).cast(),
            core::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    let data = vec![7u8; 65536];
    let mut short = false;
    for _ in 0..4000 {
        if !c.send_binary(&data).unwrap().complete {
            short = true;
            break;
        }
    }
    assert!(short, "a send was short");
    go_tx.send(()).unwrap();
    let mut pending = c.pending_write_bytes();
    assert!(pending > 0);
    while pending > 0 {
        assert!(poll_fd(c.socket(), libc::POLLOUT), "the peer reads");
        assert_eq!(ctx.loop_wait(Some(Duration::ZERO)), LoopExit::Timeout);
        let now = c.pending_write_bytes();
        assert!(
            now < pending,
            "a zero-timeout call wrote nothing ({now} pending)"
        );
        pending = now;
    }
    c.close(None, b"");
    t.join().unwrap();
}

/// An accepted connection keeps its peer's address binary and makes its
/// text when asked (`Host`): the text is the peer's numeric address and
/// the port its socket is bound to.
#[test]
fn an_accepted_connection_reports_its_peer_address() {
    let ctx = Context::new().unwrap();
    let listener = ctx.listen("127.0.0.1", "0", false).unwrap();
    let seen = Arc::new(std::sync::Mutex::new(None));
    let s2 = seen.clone();
    ctx.set_on_accept(move |_, conn| {
        *s2.lock().unwrap() = Some((conn.host(), conn.port(), conn.peer_host().to_string()));
        true
    });
    let port = listener.port().to_string();
    let _loop = LoopThread::start(&ctx, Duration::from_secs(60));
    let (_cctx, c) = client(&port);
    let (_, local_port) = nopoll::net::local_addr(c.socket()).unwrap();
    let got = seen.lock().unwrap().clone();
    let ip = "127.0.0.1".to_string();
    assert_eq!(got, Some((ip.clone(), local_port, ip)));
}

/// A connection still in its handshake that the application unregisters
/// and registers again keeps a handshake deadline: leaving the registry
/// takes its timers with it, and registering gives it a new one (it was
/// never timed out, a slowloris peer held forever).
#[test]
fn a_reregistered_silent_peer_still_times_out() {
    use std::io::Read;
    let s = Server::echo();
    s.ctx.update_config(|c| c.handshake_timeout_ms = 300);
    let silent = std::net::TcpStream::connect(format!("127.0.0.1:{}", s.port)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let accepted = loop {
        let found = s
            .ctx
            .find_conn(|c| c.role() == nopoll::runtime::ConnRole::Accepted);
        if let Some(c) = found {
            break c;
        }
        assert!(Instant::now() < deadline, "never accepted");
        std::thread::sleep(Duration::from_millis(1));
    };
    assert!(s.ctx.unregister_conn(&accepted));
    assert!(s.ctx.register_conn(&accepted));
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut b = [0u8; 16];
    let n = (&silent).read(&mut b).unwrap_or(usize::MAX);
    assert_eq!(n, 0, "server closed the silent connection");
}
