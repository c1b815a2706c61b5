//! The runtime over real loopback sockets: a server context running its
//! loop in a thread, clients polling or looping in the test thread.

use nopoll::runtime::{ConnectOptions, Connection, Context, LoopExit, Message};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Server {
    ctx: Context,
    port: String,
    thread: Option<std::thread::JoinHandle<LoopExit>>,
}

impl Server {
    fn echo() -> Server {
        let ctx = Context::new().unwrap();
        let listener = ctx.listen("127.0.0.1", "0", false).unwrap();
        ctx.set_on_message(|_ctx, conn, msg: Message| {
            let _ = match msg.opcode() {
                Some(nopoll::protocol::OpCode::Text) => conn.send_text(msg.text().unwrap()),
                _ => conn.send_binary(msg.payload()),
            };
        });
        let port = listener.port().to_string();
        let c = ctx.clone();
        let thread = std::thread::spawn(move || c.loop_wait(Some(Duration::from_secs(60))));
        Server {
            ctx,
            port,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.ctx.loop_stop();
        if let Some(t) = self.thread.take() {
            assert_eq!(t.join().unwrap(), LoopExit::Stopped);
        }
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

fn recv(conn: &Connection) -> Message {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(m) = conn.get_msg() {
            return m;
        }
        assert!(conn.is_ok(), "connection failed");
        assert!(Instant::now() < deadline, "no message in time");
        std::thread::sleep(Duration::from_millis(1));
    }
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
    ctx.loop_stop();
    assert_eq!(t.join().unwrap(), LoopExit::Stopped);
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(
        ctx.loop_wait(Some(Duration::from_millis(20))),
        LoopExit::Timeout
    );
}
