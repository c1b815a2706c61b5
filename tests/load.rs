//! Hostile load and dead peers (issue 18), over real loopback sockets: a
//! server context running its loop in a thread, attackers speaking raw
//! TCP, and beside each attack a well-behaved client whose echo is
//! checked. Every wait is bounded; nothing asserts on timing (memory and
//! CPU under attack are measured by benches/hostile.sh).

mod common;
use common::LoopThread;
use nopoll::runtime::{ConnectOptions, Connection, Context, Message};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;

struct Server {
    ctx: Context,
    port: String,
    _loop: LoopThread,
    /// Close status of every connection closed, in order.
    closes: Arc<Mutex<Vec<i32>>>,
    /// Messages received.
    msgs: Arc<AtomicUsize>,
}

impl Server {
    /// An echo server; `setup` configures the context before it listens.
    fn echo(setup: impl FnOnce(&Context)) -> Server {
        let ctx = Context::new().unwrap();
        setup(&ctx);
        let listener = ctx.listen("127.0.0.1", "0", false).unwrap();
        let closes = Arc::new(Mutex::new(Vec::new()));
        let msgs = Arc::new(AtomicUsize::new(0));
        let (cl, ms) = (closes.clone(), msgs.clone());
        ctx.set_on_open(move |_, conn| {
            let cl = cl.clone();
            conn.set_on_close(Some(Arc::new(move |_, c: &Connection| {
                cl.lock().unwrap().push(c.close_status());
            })));
            true
        });
        ctx.set_on_message(move |_ctx, conn, msg: Message| {
            ms.fetch_add(1, Ordering::SeqCst);
            let _ = match msg.opcode() {
                Some(nopoll::protocol::OpCode::Text) => conn.send_text(msg.text().unwrap()),
                _ => conn.send_binary(msg.payload()),
            };
        });
        let port = listener.port().to_string();
        let _loop = LoopThread::start(&ctx, Duration::from_secs(120));
        Server {
            ctx,
            port,
            _loop,
            closes,
            msgs,
        }
    }

    fn closes(&self) -> Vec<i32> {
        self.closes.lock().unwrap().clone()
    }

    /// Waits (bounded) until `f` holds.
    fn wait_for(&self, what: &str, f: impl Fn(&Server) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !f(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The well-behaved client: its echo must keep working during attacks.
/// It runs its own loop (so it answers the server's pings at once).
struct Good {
    conn: Connection,
    rx: std::sync::mpsc::Receiver<String>,
    _loop: LoopThread,
    n: usize,
}

impl Good {
    fn new(port: &str) -> Good {
        let ctx = Context::new().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let tx = Mutex::new(tx);
        ctx.set_on_message(move |_, _, m: Message| {
            let _ = tx
                .lock()
                .unwrap()
                .send(m.text().unwrap_or("(binary)").to_string());
        });
        let conn = ctx
            .connect(&ConnectOptions::new("127.0.0.1", port))
            .unwrap();
        assert!(conn.wait_ready(Duration::from_secs(10)), "handshake");
        let _loop = LoopThread::start(&ctx, Duration::from_secs(120));
        let mut g = Good {
            conn,
            rx,
            _loop,
            n: 0,
        };
        g.check();
        g
    }

    /// One echo, checked.
    fn check(&mut self) {
        self.n += 1;
        let text = format!("good client message {}", self.n);
        self.conn.send_text(&text).unwrap();
        let got = self.rx.recv_timeout(Duration::from_secs(10));
        assert_eq!(got.as_deref(), Ok(text.as_str()), "good client's echo");
        assert!(self.conn.is_ok());
    }
}

// ------------------------------------------------------------ raw peer

/// A raw WebSocket client: handshake, masked frames out, frames in.
struct Raw {
    s: TcpStream,
    inbuf: Vec<u8>,
}

impl Raw {
    fn connect(port: &str) -> Raw {
        let s = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Raw {
            s,
            inbuf: Vec::new(),
        }
    }

    fn open(port: &str) -> Raw {
        let mut r = Raw::connect(port);
        r.s.write_all(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
        while !r.inbuf.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut b = [0u8; 1024];
            let n = r.s.read(&mut b).unwrap();
            assert!(n > 0, "no 101");
            r.inbuf.extend_from_slice(&b[..n]);
        }
        assert!(r.inbuf.starts_with(b"HTTP/1.1 101"));
        let end = r.inbuf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        r.inbuf.drain(..end);
        r
    }

    /// A masked frame (key 0: the payload reads as is).
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![(if fin { 0x80 } else { 0 }) | opcode];
        let n = payload.len();
        if n < 126 {
            f.push(0x80 | n as u8);
        } else if n < 65536 {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(payload);
        f
    }

    fn send(&mut self, fin: bool, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        self.s.write_all(&Self::frame(fin, opcode, payload))
    }

    /// The next frame from the server: (opcode, payload); `None` at the
    /// end of the stream.
    fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.inbuf.len() >= 2 {
                let op = self.inbuf[0] & 0x0f;
                let (len, at) = match self.inbuf[1] & 0x7f {
                    126 if self.inbuf.len() >= 4 => (
                        u16::from_be_bytes([self.inbuf[2], self.inbuf[3]]) as usize,
                        4,
                    ),
                    127 if self.inbuf.len() >= 10 => (
                        u64::from_be_bytes(self.inbuf[2..10].try_into().unwrap()) as usize,
                        10,
                    ),
                    126 | 127 => (usize::MAX, 0),
                    n => (n as usize, 2),
                };
                if len != usize::MAX && self.inbuf.len() >= at + len {
                    let p = self.inbuf[at..at + len].to_vec();
                    self.inbuf.drain(..at + len);
                    return Some((op, p));
                }
            }
            let mut b = [0u8; 65536];
            match self.s.read(&mut b) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.inbuf.extend_from_slice(&b[..n]),
            }
        }
    }

    /// Reads until the server's close frame; its status (None: the stream
    /// ended without one).
    fn close_status(&mut self) -> Option<u16> {
        while let Some((op, p)) = self.next_frame() {
            if op == 8 {
                return Some(if p.len() >= 2 {
                    u16::from_be_bytes([p[0], p[1]])
                } else {
                    1005
                });
            }
        }
        None
    }

    /// True once the server closed the TCP connection (bounded wait).
    fn sees_end(&mut self) -> bool {
        let mut b = [0u8; 4096];
        loop {
            match self.s.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// Sends `frame` over and over from a non-blocking socket until the
/// socket stays unwritable for `quiet` (the peer stopped reading), or
/// `max` bytes went out. Returns the bytes sent.
fn send_until_blocked(s: &TcpStream, frame: &[u8], max: usize, quiet: Duration) -> usize {
    s.set_nonblocking(true).unwrap();
    let mut sent = 0;
    let mut pos = 0;
    let mut blocked_since: Option<Instant> = None;
    while sent < max {
        match (&*s).write(&frame[pos..]) {
            Ok(n) => {
                sent += n;
                pos = (pos + n) % frame.len();
                blocked_since = None;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let since = *blocked_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= quiet {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("attacker's send failed: {e}"),
        }
    }
    s.set_nonblocking(false).unwrap();
    sent
}

// ------------------------------------------------------------ attacks

#[test]
fn a_client_that_never_reads_is_stopped_by_tcp_and_memory_stays_bounded() {
    let s = Server::echo(|ctx| ctx.update_config(|c| c.max_pending_output = 2 * MIB));
    let mut good = Good::new(&s.port);
    let bad = Raw::open(&s.port);
    // 256 KiB messages, echoed by the server, never read back.
    let frame = Raw::frame(true, 2, &vec![0x5a; 256 * 1024]);
    let sent = send_until_blocked(&bad.s, &frame, 512 * MIB, Duration::from_secs(2));
    // Without read backpressure the server reads (and drops the echoes it
    // cannot queue) forever: the attacker never blocks before 512 MiB.
    assert!(
        sent < 128 * MIB,
        "the attacker was never blocked: {sent} bytes"
    );
    good.check();
    let used = s.ctx.memory_in_use();
    // Pending output is capped at 2 MiB (+ one message over the cap) and
    // reassembly at one message: generous bound.
    assert!(used < 16 * MIB, "server holds {used} bytes");
    good.check();
}

#[test]
fn a_ping_flood_without_reads_queues_one_pong() {
    let s = Server::echo(|ctx| ctx.update_config(|c| c.max_pending_output = 64 * MIB));
    let mut good = Good::new(&s.port);
    let mut bad = Raw::open(&s.port);
    // 200 000 pings of 125 bytes: 26 MB of pongs if each were answered,
    // more than the kernel buffers take.
    let ping = Raw::frame(true, 9, &[0x70; 125]);
    let batch: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 1000)
        .collect();
    let writer = bad.s.try_clone().unwrap();
    let t = std::thread::spawn(move || {
        let mut w = writer;
        for _ in 0..200 {
            if w.write_all(&batch).is_err() {
                return false;
            }
        }
        let done = Raw::frame(true, 1, b"flood done");
        w.write_all(&done).is_ok()
    });
    let before = s.msgs.load(Ordering::SeqCst);
    good.check();
    s.wait_for("the flood to be read", |s| {
        s.msgs.load(Ordering::SeqCst) >= before + 2
    });
    assert!(t.join().unwrap(), "flood written");
    let used = s.ctx.memory_in_use();
    assert!(used < MIB, "server holds {used} bytes after the ping flood");
    good.check();
    // The attacker still gets pongs (the latest ping's) and its echo.
    let mut pongs = 0;
    while let Some((op, p)) = bad.next_frame() {
        match op {
            0xA => pongs += 1,
            1 => {
                assert_eq!(p, b"flood done");
                break;
            }
            _ => panic!("unexpected opcode {op}"),
        }
    }
    assert!((1..200_000).contains(&pongs), "{pongs} pongs");
}

#[test]
fn endless_fragmented_messages_hit_the_budget_and_only_their_senders_close() {
    let s = Server::echo(|ctx| ctx.set_memory_budget(4 * MIB));
    let mut good = Good::new(&s.port);
    let attackers: Vec<_> = (0..4)
        .map(|_| {
            let port = s.port.clone();
            std::thread::spawn(move || {
                let mut r = Raw::open(&port);
                let piece = vec![0x41u8; 64 * 1024];
                let mut w = r.s.try_clone().unwrap();
                let writer = std::thread::spawn(move || {
                    let _ = w.write_all(&Raw::frame(false, 2, &piece));
                    // Up to 16 MiB each, never finished.
                    for _ in 0..256 {
                        if w.write_all(&Raw::frame(false, 0, &piece)).is_err() {
                            break;
                        }
                    }
                });
                let status = r.close_status();
                let _ = r.s.shutdown(std::net::Shutdown::Both);
                let _ = writer.join();
                status
            })
        })
        .collect();
    for _ in 0..20 {
        good.check();
    }
    for a in attackers {
        assert_eq!(a.join().unwrap(), Some(1009));
    }
    good.check();
    s.wait_for("the attackers' closes", |s| s.closes().len() >= 4);
    assert!(s.ctx.memory_in_use() < MIB);
    assert!(good.conn.is_ok());
}

#[test]
fn slowloris_and_half_open_connections_are_dropped_by_the_handshake_timeout() {
    let s = Server::echo(|ctx| ctx.update_config(|c| c.handshake_timeout_ms = 300));
    let mut good = Good::new(&s.port);
    let mut slow: Vec<Raw> = Vec::new();
    for i in 0..20 {
        let mut r = Raw::connect(&s.port);
        if i % 2 == 0 {
            // Slowloris: a request head that never ends.
            r.s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-a: ")
                .unwrap();
        } else {
            // Half-open: connected, sends nothing, and says it is done.
            r.s.shutdown(std::net::Shutdown::Write).unwrap();
        }
        slow.push(r);
    }
    good.check();
    for (i, r) in slow.iter_mut().enumerate() {
        assert!(r.sees_end(), "connection {i} was not dropped");
    }
    good.check();
}

#[test]
fn a_reset_in_the_middle_of_a_frame_frees_what_it_held() {
    let s = Server::echo(|_| {});
    let mut good = Good::new(&s.port);
    let baseline = s.ctx.memory_in_use();
    for _ in 0..5 {
        let mut r = Raw::open(&s.port);
        // A fragment (reassembly), then half of a 1 MiB frame, then RST.
        r.send(false, 2, &[1u8; 100_000]).unwrap();
        let f = Raw::frame(false, 0, &vec![2u8; MIB]);
        r.s.write_all(&f[..f.len() / 2]).unwrap();
        let l = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        use std::os::fd::AsRawFd;
        // SAFETY: a valid socket and a linger struct of the size given.
        let rc = unsafe {
            libc::setsockopt(
                r.s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&l as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
        drop(r);
        good.check();
    }
    s.wait_for("five closes", |s| s.closes().len() >= 5);
    assert!(s.closes().iter().all(|&c| c == 1006), "{:?}", s.closes());
    // (Slack for the good client's own output buffer, which may grow by
    // a few bytes with its messages' numbers; each reset one held 100 KB.)
    s.wait_for("memory back to the baseline", |s| {
        s.ctx.memory_in_use() <= baseline + 16 * 1024
    });
    good.check();
}

// ------------------------------------------------------------ dead peers

#[test]
fn keepalive_closes_a_peer_that_stops_answering_with_1006() {
    let s = Server::echo(|ctx| {
        ctx.set_keepalive(
            Some(Duration::from_millis(100)),
            Some(Duration::from_millis(200)),
        )
    });
    let mut good = Good::new(&s.port);
    let mut silent = Raw::open(&s.port);
    // The silent peer is pinged, never answers, and is dropped.
    let mut pinged = false;
    while let Some((op, _)) = silent.next_frame() {
        pinged |= op == 9;
    }
    assert!(pinged, "no keepalive ping came");
    s.wait_for("the silent peer's close", |s| s.closes().contains(&1006));
    // The good client answers pings (it reads): it stays, its echo works,
    // across several ping intervals.
    let end = Instant::now() + Duration::from_millis(600);
    while Instant::now() < end {
        good.check();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(good.conn.is_ok());
    assert_eq!(s.closes(), [1006]);
}

#[test]
fn keepalive_off_by_default_and_idle_timeout_closes_with_1001() {
    let s = Server::echo(|_| {});
    let mut quiet = Raw::open(&s.port);
    quiet
        .s
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    // Off by default: no ping comes.
    let mut b = [0u8; 16];
    assert!(
        matches!(quiet.s.read(&mut b), Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut)
    );
    quiet
        .s
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    s.ctx.set_idle_timeout(Some(Duration::from_millis(200)));
    assert_eq!(quiet.close_status(), Some(1001));
    s.wait_for("the idle close", |s| s.closes().len() == 1);
}

#[test]
fn output_over_the_budget_closes_only_that_connection_with_1013() {
    let logs = Arc::new(Mutex::new(Vec::<String>::new()));
    let l = logs.clone();
    let s = Server::echo(|ctx| {
        ctx.update_config(|c| {
            c.max_pending_output = 64 * MIB;
            c.log_sink = Some(Arc::new(move |_, line: &str| {
                l.lock().unwrap().push(line.to_string())
            }));
        });
        ctx.set_memory_budget(8 * MIB);
    });
    let mut good = Good::new(&s.port);
    let bad = Raw::open(&s.port);
    // Echoes of 512 KiB messages pile up as output (the attacker does not
    // read); past 8 MiB for the whole context, the connection is closed.
    let frame = Raw::frame(true, 2, &vec![0x33; 512 * 1024]);
    let w = bad.s.try_clone().unwrap();
    let t = std::thread::spawn(move || {
        let mut w = w;
        for _ in 0..200 {
            if w.write_all(&frame).is_err() {
                break;
            }
        }
    });
    s.wait_for("the over-budget close", |s| !s.closes().is_empty());
    let _ = bad.s.shutdown(std::net::Shutdown::Both);
    let _ = t.join();
    assert!(
        logs.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("memory budget") && l.contains("closing with 1013")),
        "no 1013 log line"
    );
    s.wait_for("memory released", |s| s.ctx.memory_in_use() < MIB);
    good.check();
    assert_eq!(s.closes().len(), 1);
}
