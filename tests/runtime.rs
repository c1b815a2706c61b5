//! The runtime over real loopback sockets: a server context running its
//! loop in a thread, clients polling or looping in the test thread.

use nopoll::runtime::{ConnectOptions, Connection, Context, LoopExit, Message};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Server {
    ctx: Context,
    port: String,
    done: Option<std::sync::mpsc::Receiver<LoopExit>>,
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
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(c.loop_wait(Some(Duration::from_secs(60))));
        });
        Server {
            ctx,
            port,
            done: Some(rx),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.ctx.loop_stop();
        if let Some(rx) = self.done.take() {
            // Bounded: a wedged loop fails the test instead of hanging it.
            let exit = rx.recv_timeout(Duration::from_secs(10));
            if !std::thread::panicking() {
                assert_eq!(exit, Ok(LoopExit::Stopped), "loop did not stop");
            }
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
