//! Load generator for the nopoll-rs benchmark suite.
//!
//! One thread, one epoll set, plain non-blocking sockets and a minimal
//! RFC 6455 client of its own (masked frames out, unmasked frames in,
//! every echoed byte compared with what was sent). Loopback only: the
//! target and every source address must be in 127.0.0.0/8.
//!
//!   loadgen echo      --port P [--raw] --conns N --inflight K --size S [--binary]
//!                     [--warmup-ms W] [--duration-ms D] [--server-pid PID] [--wait-go]
//!   loadgen handshake --port P --parallel C [--duration-ms D] [--server-pid PID] [--wait-go]
//!   loadgen idle      --port P --conns N [--parallel C] [--src 127.0.0.2,127.0.0.3]
//!
//! Every mode takes `--tls` (wss://, or TLS under --raw: OpenSSL through
//! the `openssl` crate, no certificate check, no session resumption, so
//! every handshake is a full one). `echo` also takes `--json` (each
//! message a different JSON-like record of exactly S bytes instead of the
//! printable pattern) and `--deflate` (offers permessage-deflate, RFC
//! 7692: compresses what it sends when the server accepts, inflates what
//! comes back, compressed or not). Bytes on the wire (read and written on
//! the sockets, TLS records included) over the window are reported.
//!
//! `echo` opens N connections, warms up, drains, then (after a line on
//! stdin when --wait-go is given; "READY" is printed first) keeps K
//! messages in flight on each for D ms, stops sending, waits for every
//! echo and prints one JSON line: messages, messages/s, MB/s (payload,
//! one direction), latency p50/p99 and the server's CPU time over the
//! window (utime+stime from /proc/PID/stat, and the precise on-CPU time
//! from /proc/PID/task/*/schedstat).
//!
//! `handshake` keeps C opening handshakes in flight for D ms: TCP connect,
//! upgrade request, the 101 answer with its Sec-WebSocket-Accept checked,
//! then an abortive close (SO_LINGER 0, so no TIME_WAIT piles up).
//!
//! `idle` opens N connections (C handshakes at a time), prints "READY"
//! and a JSON line, then holds them until stdin closes or a line arrives.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use miniz_oxide::deflate::core::{create_comp_flags_from_zip_params, CompressorOxide};
use miniz_oxide::inflate::stream::InflateState;
use miniz_oxide::{DataFormat, MZError, MZFlush};
use openssl::ssl::{
    HandshakeError, MidHandshakeSslStream, Ssl, SslContext, SslMethod, SslStream, SslVerifyMode,
};

// ---------------------------------------------------------------- options

#[derive(Clone)]
struct Opts {
    mode: String,
    port: u16,
    host: Ipv4Addr,
    raw: bool,
    conns: usize,
    inflight: usize,
    size: usize,
    binary: bool,
    warmup_ms: u64,
    duration_ms: u64,
    server_pid: Option<i32>,
    wait_go: bool,
    parallel: usize,
    src: Vec<Ipv4Addr>,
    timeout_ms: u64,
    tls: bool,
    json: bool,
    deflate: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen echo|handshake|idle --port P [--host 127.0.0.1] [--raw] [--conns N] \
         [--inflight K] [--size S] [--binary] [--warmup-ms W] [--duration-ms D] \
         [--server-pid PID] [--wait-go] [--parallel C] [--src A,B,..] [--timeout-ms T] \
         [--tls] [--json] [--deflate]"
    );
    std::process::exit(2)
}

fn loopback(s: &str) -> Ipv4Addr {
    let a: Ipv4Addr = s.parse().unwrap_or_else(|_| {
        eprintln!("loadgen: {s}: not an IPv4 address");
        std::process::exit(2)
    });
    if !a.is_loopback() {
        eprintln!("loadgen: {s} is not a loopback address; refusing");
        std::process::exit(2)
    }
    a
}

fn parse_opts() -> Opts {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| usage());
    if !matches!(mode.as_str(), "echo" | "handshake" | "idle") {
        usage()
    }
    let mut o = Opts {
        mode,
        port: 0,
        host: Ipv4Addr::LOCALHOST,
        raw: false,
        conns: 1,
        inflight: 1,
        size: 32,
        binary: false,
        warmup_ms: 500,
        duration_ms: 2000,
        server_pid: None,
        wait_go: false,
        parallel: 200,
        src: Vec::new(),
        timeout_ms: 20_000,
        tls: false,
        json: false,
        deflate: false,
    };
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        let num = |s: String| -> u64 { s.parse().unwrap_or_else(|_| usage()) };
        match a.as_str() {
            "--port" => o.port = num(val()) as u16,
            "--host" => o.host = loopback(&val()),
            "--raw" => o.raw = true,
            "--binary" => o.binary = true,
            "--tls" => o.tls = true,
            "--json" => o.json = true,
            "--deflate" => o.deflate = true,
            "--conns" => o.conns = num(val()) as usize,
            "--inflight" => o.inflight = num(val()) as usize,
            "--size" => o.size = num(val()) as usize,
            "--warmup-ms" => o.warmup_ms = num(val()),
            "--duration-ms" => o.duration_ms = num(val()),
            "--server-pid" => o.server_pid = Some(num(val()) as i32),
            "--wait-go" => o.wait_go = true,
            "--parallel" => o.parallel = num(val()).max(1) as usize,
            "--timeout-ms" => o.timeout_ms = num(val()),
            "--src" => {
                o.src = val()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(loopback)
                    .collect()
            }
            _ => usage(),
        }
    }
    if o.port == 0 || (o.deflate && o.raw) {
        usage()
    }
    o
}

// ---------------------------------------------------------------- system

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn die(what: &str) -> ! {
    eprintln!("loadgen: {what}: {}", std::io::Error::last_os_error());
    std::process::exit(1)
}

/// Raises the open-file limit to the hard limit.
fn raise_nofile() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: r is a valid rlimit.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
    }
    r.rlim_cur
}

struct Epoll {
    fd: i32,
    events: Vec<libc::epoll_event>,
}

impl Epoll {
    fn new() -> Epoll {
        // SAFETY: plain syscall.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            die("epoll_create1");
        }
        Epoll {
            fd,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 1024],
        }
    }
    fn ctl(&self, op: i32, fd: i32, events: u32, token: u64) {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: ev is valid for the call.
        if unsafe { libc::epoll_ctl(self.fd, op, fd, &mut ev) } < 0 && op != libc::EPOLL_CTL_DEL {
            die("epoll_ctl");
        }
    }
    /// Waits; returns the number of events in `self.events`.
    fn wait(&mut self, ms: i32) -> usize {
        // SAFETY: events has room for its length.
        let n = unsafe {
            libc::epoll_wait(
                self.fd,
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                ms,
            )
        };
        if n < 0 {
            if errno() == libc::EINTR {
                return 0;
            }
            die("epoll_wait");
        }
        n as usize
    }
}

fn sockaddr(a: Ipv4Addr, port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(a).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// A non-blocking socket connecting to `to` (from `src` when given).
/// Returns the socket, or the errno of a failed socket/bind/connect.
fn start_connect(to: &libc::sockaddr_in, src: Option<Ipv4Addr>) -> Result<i32, i32> {
    // SAFETY: plain syscalls on a socket we own; addresses are valid.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err(errno());
        }
        let one: libc::c_int = 1;
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            &one as *const _ as *const libc::c_void,
            4,
        );
        if let Some(s) = src {
            let sa = sockaddr(s, 0);
            if libc::bind(
                fd,
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as u32,
            ) < 0
            {
                let e = errno();
                libc::close(fd);
                return Err(e);
            }
        }
        let r = libc::connect(
            fd,
            to as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        );
        if r < 0 && errno() != libc::EINPROGRESS {
            let e = errno();
            libc::close(fd);
            return Err(e);
        }
        Ok(fd)
    }
}

/// Waits until a non-blocking connect finishes; closes the socket on failure.
fn wait_connected(fd: i32, timeout_ms: u64) -> Result<i32, i32> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: p and err are valid for the calls; fd is ours.
    unsafe {
        if libc::poll(&mut p, 1, timeout_ms.min(i32::MAX as u64) as i32) != 1 {
            libc::close(fd);
            return Err(libc::ETIMEDOUT);
        }
        let mut err: libc::c_int = 0;
        let mut len = 4u32;
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut _ as *mut libc::c_void,
            &mut len,
        );
        if err != 0 {
            libc::close(fd);
            return Err(err);
        }
    }
    Ok(fd)
}

/// Closes with a reset (SO_LINGER 0): no TIME_WAIT on our side.
fn abort_close(fd: i32) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: plain syscalls on a socket we own.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as u32,
        );
        libc::close(fd);
    }
}

/// Bytes read from and written to every socket (TLS records included).
static WIRE_IN: AtomicU64 = AtomicU64::new(0);
static WIRE_OUT: AtomicU64 = AtomicU64::new(0);

fn sys_read(fd: i32, buf: &mut [u8]) -> isize {
    // SAFETY: buf is valid for its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
    if n > 0 {
        WIRE_IN.fetch_add(n as u64, Relaxed);
    }
    n
}

fn sys_write(fd: i32, buf: &[u8]) -> isize {
    // SAFETY: buf is valid for its length; MSG_NOSIGNAL: no SIGPIPE.
    let n = unsafe {
        libc::send(
            fd,
            buf.as_ptr() as *const libc::c_void,
            buf.len(),
            libc::MSG_NOSIGNAL,
        )
    };
    if n > 0 {
        WIRE_OUT.fetch_add(n as u64, Relaxed);
    }
    n
}

/// A socket as `Read`/`Write` for OpenSSL (EAGAIN is `WouldBlock`). It
/// does not own the descriptor: `abort_close` closes it.
#[derive(Debug)]
struct Fd(i32);

impl std::io::Read for Fd {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = sys_read(self.0, buf);
        if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

impl std::io::Write for Fd {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = sys_write(self.0, buf);
        if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

type Tls = SslStream<Fd>;

/// Client TLS context: no verification (loopback peers with throwaway
/// certificates), no session cache (every handshake is a full one).
fn tls_context() -> SslContext {
    let mut b = SslContext::builder(SslMethod::tls_client()).unwrap_or_else(|e| {
        eprintln!("loadgen: TLS context: {e}");
        std::process::exit(1)
    });
    b.set_verify(SslVerifyMode::NONE);
    b.set_session_cache_mode(openssl::ssl::SslSessionCacheMode::OFF);
    b.build()
}

/// Reads from the socket, through TLS when there is a session.
/// Ok(0): closed; Err(None): would block; Err(Some): failed.
fn io_read(fd: i32, tls: Option<&mut Tls>, buf: &mut [u8]) -> Result<usize, Option<String>> {
    use std::io::Read as _;
    let r = match tls {
        Some(t) => t.read(buf),
        None => Fd(fd).read(buf),
    };
    r.map_err(|e| (e.kind() != std::io::ErrorKind::WouldBlock).then(|| format!("recv: {e}")))
}

/// Writes to the socket, through TLS when there is a session.
fn io_write(fd: i32, tls: Option<&mut Tls>, buf: &[u8]) -> Result<usize, Option<String>> {
    use std::io::Write as _;
    let r = match tls {
        Some(t) => t.write(buf),
        None => Fd(fd).write(buf),
    };
    r.map_err(|e| (e.kind() != std::io::ErrorKind::WouldBlock).then(|| format!("send: {e}")))
}

// ---------------------------------------------------------------- server CPU

#[derive(Clone, Copy, Default)]
struct Cpu {
    /// utime + stime from /proc/PID/stat, in µs (clock-tick resolution).
    stat_us: f64,
    /// Sum of on-CPU ns over /proc/PID/task/*/schedstat, in µs.
    sched_us: f64,
}

fn server_cpu(pid: Option<i32>) -> Cpu {
    let Some(pid) = pid else {
        return Cpu::default();
    };
    let mut c = Cpu::default();
    if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        if let Some(rest) = s.rfind(')').map(|i| &s[i + 2..]) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            // After "pid (comm) ": state is field 3; utime 14, stime 15.
            let ticks = f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
            // SAFETY: sysconf is always safe.
            let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
            c.stat_us = ticks * 1e6 / hz;
        }
    }
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in dir.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
                let ns: f64 = s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0);
                c.sched_us += ns / 1000.0;
            }
        }
    }
    c
}

fn wait_go(o: &Opts, ready: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "READY {ready}");
    let _ = out.flush();
    drop(out);
    if o.wait_go {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

// ---------------------------------------------------------------- handshake

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Upgrade request and the Sec-WebSocket-Accept value it must get back.
fn upgrade_request(rng: &mut Rng, port: u16, deflate: bool) -> (Vec<u8>, String) {
    use base64::Engine as _;
    use sha1::Digest as _;
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&rng.next().to_le_bytes());
    nonce[8..].copy_from_slice(&rng.next().to_le_bytes());
    let key = base64::engine::general_purpose::STANDARD.encode(nonce);
    let mut h = sha1::Sha1::new();
    h.update(key.as_bytes());
    h.update(GUID);
    let accept = base64::engine::general_purpose::STANDARD.encode(h.finalize());
    let ext = if deflate {
        "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    } else {
        ""
    };
    let req = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1\r\n{ext}\r\n"
    );
    (req.into_bytes(), accept)
}

/// Checks a complete response head: status 101 and the right accept key.
/// Returns the Sec-WebSocket-Extensions answer, if any.
fn check_response(head: &[u8], accept: &str) -> Result<Option<String>, String> {
    let text = std::str::from_utf8(head).map_err(|_| "response is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 101") {
        return Err(format!("status line {status:?}"));
    }
    let mut ok = false;
    let mut ext = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            if k.trim().eq_ignore_ascii_case("sec-websocket-accept") {
                if v.trim() != accept {
                    return Err(format!("wrong accept key {:?}", v.trim()));
                }
                ok = true;
            } else if k.trim().eq_ignore_ascii_case("sec-websocket-extensions") {
                ext = Some(v.trim().to_string());
            }
        }
    }
    if ok {
        Ok(ext)
    } else {
        Err("no Sec-WebSocket-Accept".into())
    }
}

fn find_head_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

enum HsStage {
    Connecting,
    Tls(MidHandshakeSslStream<Fd>),
    /// Connected (and TLS done): the request is still to be written.
    Ready,
    Sent,
}

/// What a connection does once TCP (and TLS) is up.
#[derive(Clone, Copy, PartialEq)]
enum HsKind {
    /// The WebSocket upgrade.
    Ws,
    /// Raw: one byte out, its echo back (a handshake the server finished).
    Probe,
    /// Raw: nothing (only used with TLS: done when TLS is).
    Plain,
}

/// One opening handshake in progress.
struct Hs {
    fd: i32,
    kind: HsKind,
    stage: HsStage,
    req: Vec<u8>,
    accept: String,
    buf: Vec<u8>,
    started: Instant,
    tls: Option<Tls>,
}

enum HsStep {
    Pending,
    /// Done; bytes that followed the response head, the TLS session, and
    /// the Sec-WebSocket-Extensions answer.
    Done(Vec<u8>, Option<Tls>, Option<String>),
    Failed(String),
}

/// True once a non-blocking connect has completed.
fn connected(fd: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: p is valid for the call.
    unsafe { libc::poll(&mut p, 1, 0) == 1 && p.revents & libc::POLLOUT != 0 }
}

impl Hs {
    fn start(
        to: &libc::sockaddr_in,
        src: Option<Ipv4Addr>,
        rng: &mut Rng,
        o: &Opts,
        kind: HsKind,
    ) -> Result<Hs, String> {
        let fd = start_connect(to, src)
            .map_err(|e| format!("connect: {}", std::io::Error::from_raw_os_error(e)))?;
        let (req, accept) = match kind {
            HsKind::Ws => upgrade_request(rng, o.port, o.deflate),
            HsKind::Probe => (b"x".to_vec(), String::new()),
            HsKind::Plain => (Vec::new(), String::new()),
        };
        Ok(Hs {
            fd,
            kind,
            stage: HsStage::Connecting,
            req,
            accept,
            buf: Vec::new(),
            started: Instant::now(),
            tls: None,
        })
    }

    /// Advances on readiness (registered edge-triggered for in and out).
    fn step(&mut self, tmp: &mut [u8], ctx: Option<&SslContext>) -> HsStep {
        if let HsStage::Connecting = self.stage {
            match ctx {
                None => self.stage = HsStage::Ready,
                Some(ctx) => {
                    if !connected(self.fd) {
                        return HsStep::Pending;
                    }
                    let ssl = match Ssl::new(ctx) {
                        Ok(s) => s,
                        Err(e) => return HsStep::Failed(format!("TLS: {e}")),
                    };
                    match ssl.connect(Fd(self.fd)) {
                        Ok(s) => {
                            self.tls = Some(s);
                            self.stage = HsStage::Ready;
                        }
                        Err(HandshakeError::WouldBlock(m)) => {
                            self.stage = HsStage::Tls(m);
                            return HsStep::Pending;
                        }
                        Err(e) => return HsStep::Failed(format!("TLS handshake: {e}")),
                    }
                }
            }
        }
        if let HsStage::Tls(_) = self.stage {
            let HsStage::Tls(m) = std::mem::replace(&mut self.stage, HsStage::Ready) else {
                unreachable!()
            };
            match m.handshake() {
                Ok(s) => self.tls = Some(s),
                Err(HandshakeError::WouldBlock(m)) => {
                    self.stage = HsStage::Tls(m);
                    return HsStep::Pending;
                }
                Err(e) => return HsStep::Failed(format!("TLS handshake: {e}")),
            }
        }
        if let HsStage::Ready = self.stage {
            if self.kind == HsKind::Plain {
                return HsStep::Done(Vec::new(), self.tls.take(), None);
            }
            let r = match self.tls.as_mut() {
                Some(t) => io_write(self.fd, Some(t), &self.req),
                None => {
                    // Plain: the connect may still be in progress.
                    let n = sys_write(self.fd, &self.req);
                    let e = errno();
                    if n >= 0 {
                        Ok(n as usize)
                    } else if e == libc::EAGAIN || e == libc::ENOTCONN {
                        Err(None)
                    } else {
                        Err(Some(format!(
                            "send: {}",
                            std::io::Error::from_raw_os_error(e)
                        )))
                    }
                }
            };
            match r {
                Ok(n) if n == self.req.len() => self.stage = HsStage::Sent,
                Ok(_) => return HsStep::Failed("short write of the request".into()),
                Err(None) => return HsStep::Pending,
                Err(Some(e)) => return HsStep::Failed(e),
            }
        }
        loop {
            let n = match io_read(self.fd, self.tls.as_mut(), tmp) {
                Ok(n) => n,
                Err(None) => return HsStep::Pending,
                Err(Some(e)) => return HsStep::Failed(e),
            };
            if n == 0 {
                return HsStep::Failed("closed before the answer".into());
            }
            self.buf.extend_from_slice(&tmp[..n]);
            if self.kind == HsKind::Probe {
                return if self.buf == b"x" {
                    HsStep::Done(Vec::new(), self.tls.take(), None)
                } else {
                    HsStep::Failed("wrong probe echo".into())
                };
            }
            if let Some(end) = find_head_end(&self.buf) {
                return match check_response(&self.buf[..end], &self.accept) {
                    Ok(ext) => HsStep::Done(self.buf[end..].to_vec(), self.tls.take(), ext),
                    Err(e) => HsStep::Failed(e),
                };
            }
            if self.buf.len() > 16 * 1024 {
                return HsStep::Failed("response head too long".into());
            }
        }
    }
}

const ET_INOUT: u32 = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLET | libc::EPOLLRDHUP) as u32;

/// An open connection: socket, bytes that followed the 101, TLS session,
/// Sec-WebSocket-Extensions answer.
type Opened = (i32, Vec<u8>, Option<Tls>, Option<String>);

/// Opens `n` WebSocket connections (or raw TCP connections), `parallel`
/// at a time (TLS first with --tls).
fn open_many(o: &Opts, ep: &mut Epoll, n: usize, ws: bool) -> (Vec<Opened>, usize, Vec<String>) {
    let to = sockaddr(o.host, o.port);
    let ctx = o.tls.then(tls_context);
    let kind = if ws { HsKind::Ws } else { HsKind::Plain };
    let direct = !ws && !o.tls;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ std::process::id() as u64);
    let mut slots: Vec<Option<Hs>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut open = Vec::with_capacity(n);
    let mut failed = 0usize;
    let mut errors = Vec::new();
    let mut started = 0usize;
    let mut active = 0usize;
    let mut tmp = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + Duration::from_millis(o.timeout_ms.max(1000) * 3);
    while open.len() + failed < n {
        while active < o.parallel && started < n {
            let src = (!o.src.is_empty()).then(|| o.src[started % o.src.len()]);
            started += 1;
            if direct {
                match start_connect(&to, src).and_then(|fd| wait_connected(fd, o.timeout_ms)) {
                    Ok(fd) => open.push((fd, Vec::new(), None, None)),
                    Err(e) => {
                        failed += 1;
                        if errors.len() < 5 {
                            errors
                                .push(format!("connect: {}", std::io::Error::from_raw_os_error(e)));
                        }
                    }
                }
                continue;
            }
            match Hs::start(&to, src, &mut rng, o, kind) {
                Ok(h) => {
                    let idx = free.pop().unwrap_or_else(|| {
                        slots.push(None);
                        slots.len() - 1
                    });
                    ep.ctl(libc::EPOLL_CTL_ADD, h.fd, ET_INOUT, idx as u64);
                    slots[idx] = Some(h);
                    active += 1;
                }
                Err(e) => {
                    failed += 1;
                    if errors.len() < 5 {
                        errors.push(e);
                    }
                }
            }
        }
        if direct {
            break;
        }
        if Instant::now() > deadline {
            for s in slots.iter_mut() {
                if let Some(h) = s.take() {
                    abort_close(h.fd);
                    failed += 1;
                }
            }
            errors.push("timed out opening connections".into());
            break;
        }
        let k = ep.wait(100);
        for i in 0..k {
            let idx = ep.events[i].u64 as usize;
            let Some(h) = slots[idx].as_mut() else {
                continue;
            };
            match h.step(&mut tmp, ctx.as_ref()) {
                HsStep::Pending => {}
                HsStep::Done(rest, tls, ext) => {
                    let h = slots[idx].take().unwrap();
                    ep.ctl(libc::EPOLL_CTL_DEL, h.fd, 0, 0);
                    open.push((h.fd, rest, tls, ext));
                    free.push(idx);
                    active -= 1;
                }
                HsStep::Failed(e) => {
                    let h = slots[idx].take().unwrap();
                    ep.ctl(libc::EPOLL_CTL_DEL, h.fd, 0, 0);
                    abort_close(h.fd);
                    failed += 1;
                    if errors.len() < 5 {
                        errors.push(e);
                    }
                    free.push(idx);
                    active -= 1;
                }
            }
        }
    }
    (open, failed, errors)
}

fn run_handshake(o: &Opts) {
    raise_nofile();
    let mut ep = Epoll::new();
    let to = sockaddr(o.host, o.port);
    let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ std::process::id() as u64);
    let mut tmp = vec![0u8; 64 * 1024];
    let ctx = o.tls.then(tls_context);
    let kind = if o.raw { HsKind::Probe } else { HsKind::Ws };
    wait_go(o, "{}");
    let cpu0 = server_cpu(o.server_pid);
    let t0 = Instant::now();
    let stop_at = t0 + Duration::from_millis(o.duration_ms);
    let mut slots: Vec<Option<Hs>> = (0..o.parallel).map(|_| None).collect();
    let mut active = 0usize;
    let mut done = 0u64;
    let mut failed = 0u64;
    let mut errors: Vec<String> = Vec::new();
    let mut lat: Vec<u64> = Vec::new();
    let mut started = 0usize;
    let note = |errors: &mut Vec<String>, e: String| {
        if errors.len() < 5 {
            errors.push(e)
        }
    };
    // Fill every slot.
    let mut refill = |slots: &mut Vec<Option<Hs>>,
                      idx: usize,
                      ep: &mut Epoll,
                      active: &mut usize,
                      failed: &mut u64,
                      errors: &mut Vec<String>| {
        let src = (!o.src.is_empty()).then(|| o.src[started % o.src.len()]);
        started += 1;
        match Hs::start(&to, src, &mut rng, o, kind) {
            Ok(h) => {
                ep.ctl(libc::EPOLL_CTL_ADD, h.fd, ET_INOUT, idx as u64);
                slots[idx] = Some(h);
                *active += 1;
            }
            Err(e) => {
                *failed += 1;
                if errors.len() < 5 {
                    errors.push(e);
                }
            }
        }
    };
    for idx in 0..o.parallel {
        refill(
            &mut slots,
            idx,
            &mut ep,
            &mut active,
            &mut failed,
            &mut errors,
        );
    }
    let hard_stop = stop_at + Duration::from_millis(o.timeout_ms);
    loop {
        let now = Instant::now();
        let running = now < stop_at;
        if !running && active == 0 {
            break;
        }
        if now > hard_stop {
            for s in slots.iter_mut() {
                if let Some(h) = s.take() {
                    abort_close(h.fd);
                    failed += 1;
                }
            }
            note(
                &mut errors,
                "handshakes still pending at the time limit".into(),
            );
            break;
        }
        let k = ep.wait(if running { 5 } else { 50 });
        let now = Instant::now();
        let running = now < stop_at;
        for i in 0..k {
            let idx = ep.events[i].u64 as usize;
            let Some(h) = slots[idx].as_mut() else {
                continue;
            };
            let r = h.step(&mut tmp, ctx.as_ref());
            if let HsStep::Pending = r {
                continue;
            }
            let h = slots[idx].take().unwrap();
            active -= 1;
            // close() also removes it from the epoll set.
            abort_close(h.fd);
            match r {
                HsStep::Done(..) => {
                    done += 1;
                    lat.push((now - h.started).as_nanos() as u64);
                }
                HsStep::Failed(e) => {
                    failed += 1;
                    note(&mut errors, e);
                }
                HsStep::Pending => unreachable!(),
            }
            if running {
                refill(
                    &mut slots,
                    idx,
                    &mut ep,
                    &mut active,
                    &mut failed,
                    &mut errors,
                );
            }
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    // Let the server see the last resets before reading its CPU time.
    std::thread::sleep(Duration::from_millis(30));
    let cpu1 = server_cpu(o.server_pid);
    lat.sort_unstable();
    let errs: Vec<String> = errors.iter().map(|e| format!("{e:?}")).collect();
    println!(
        "{{\"mode\":\"handshake\",\"parallel\":{},\"handshakes\":{},\"failed\":{},\"seconds\":{:.4},\
         \"handshakes_per_s\":{:.1},\"lat_p50_us\":{:.1},\"lat_p99_us\":{:.1},\
         \"server_cpu_us\":{:.0},\"server_sched_us\":{:.0},\"errors\":[{}]}}",
        o.parallel,
        done,
        failed,
        elapsed,
        done as f64 / elapsed,
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        cpu1.stat_us - cpu0.stat_us,
        cpu1.sched_us - cpu0.sched_us,
        errs.join(",")
    );
}

fn run_idle(o: &Opts) {
    let lim = raise_nofile();
    if (o.conns as u64) + 16 > lim {
        eprintln!(
            "loadgen: {} connections need more descriptors than the limit {lim}",
            o.conns
        );
        std::process::exit(3);
    }
    let mut ep = Epoll::new();
    let t0 = Instant::now();
    let (open, failed, errors) = open_many(o, &mut ep, o.conns, !o.raw);
    let secs = t0.elapsed().as_secs_f64();
    let errs: Vec<String> = errors.iter().map(|e| format!("{e:?}")).collect();
    let summary = format!(
        "{{\"mode\":\"idle\",\"open\":{},\"failed\":{},\"seconds\":{secs:.3},\"errors\":[{}]}}",
        open.len(),
        failed,
        errs.join(",")
    );
    println!("{summary}");
    let _ = std::io::stdout().flush();
    wait_go(o, &summary);
    for (fd, ..) in open {
        abort_close(fd);
    }
}

// ---------------------------------------------------------------- echo

/// Printable ASCII (valid UTF-8 text), period 89; message k of a connection
/// starts at a different offset so stale or reordered echoes are caught.
struct Pattern {
    bytes: Vec<u8>,
}

impl Pattern {
    fn new(size: usize) -> Pattern {
        Pattern {
            bytes: (0..size + 128).map(|j| b'!' + (j % 89) as u8).collect(),
        }
    }
    fn msg(&self, conn: usize, seq: u64, size: usize) -> &[u8] {
        let off = ((seq as usize).wrapping_mul(13).wrapping_add(conn)) % 128;
        &self.bytes[off..off + size]
    }
}

/// A JSON-like record of exactly `size` bytes, different for every
/// (connection, sequence): the keys repeat from message to message, the
/// numbers do not (device telemetry, chat events).
fn json_msg(conn: usize, seq: u64, size: usize, out: &mut Vec<u8>) {
    use std::io::Write as _;
    out.clear();
    let mut r = Rng((conn as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ seq.wrapping_mul(0xD6E8_FEB8_6659_FD93)
        | 1);
    let status = ["ok", "ok", "ok", "warn", "degraded"][(r.next() % 5) as usize];
    let _ = write!(
        out,
        "{{\"device\":\"sensor-{conn:04}\",\"seq\":{seq},\"ts\":{},\"status\":\"{status}\",\"fw\":\"2.4.{}\",\"readings\":[",
        1_765_000_000_000u64 + seq * 250 + (r.next() % 100),
        r.next() % 10
    );
    let mut i = 0;
    while out.len() + 2 < size {
        let v = r.next();
        let _ = write!(
            out,
            "{}{{\"i\":{i},\"temp\":{}.{:02},\"hum\":{}.{},\"pres\":{},\"ok\":{}}}",
            if i == 0 { "" } else { "," },
            15 + v % 15,
            (v >> 8) % 100,
            30 + (v >> 16) % 40,
            (v >> 24) % 10,
            990 + (v >> 32) % 40,
            !(v >> 40).is_multiple_of(7)
        );
        i += 1;
    }
    out.truncate(size.saturating_sub(2));
    out.extend_from_slice(&b"]}"[..size.min(2)]);
}

/// permessage-deflate state of one connection (RFC 7692).
struct Pmd {
    comp: Box<CompressorOxide>,
    /// client_no_context_takeover: a fresh compressor per message.
    comp_reset: bool,
    infl: Box<InflateState>,
    /// server_no_context_takeover: a fresh inflater per message.
    infl_reset: bool,
    zin: Vec<u8>,
}

const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

fn compressor() -> Box<CompressorOxide> {
    Box::new(CompressorOxide::new(create_comp_flags_from_zip_params(
        1, -15, 0,
    )))
}

impl Pmd {
    /// From the server's Sec-WebSocket-Extensions answer (None: declined).
    fn from_answer(ext: Option<&str>) -> Result<Option<Pmd>, String> {
        let Some(ext) = ext else {
            return Ok(None);
        };
        let mut params = ext.split(';').map(str::trim);
        if params.next() != Some("permessage-deflate") || ext.contains(',') {
            return Err(format!("extension answer not offered: {ext:?}"));
        }
        let (mut comp_reset, mut infl_reset) = (false, false);
        for p in params {
            match p.split('=').next().unwrap_or("").trim() {
                "client_no_context_takeover" => comp_reset = true,
                "server_no_context_takeover" => infl_reset = true,
                "server_max_window_bits" => {}
                _ => return Err(format!("extension parameter not offered: {p:?}")),
            }
        }
        Ok(Some(Pmd {
            comp: compressor(),
            comp_reset,
            infl: InflateState::new_boxed(DataFormat::Raw),
            infl_reset,
            zin: Vec::new(),
        }))
    }

    /// Appends the compressed message (tail removed) to `out`.
    fn compress(&mut self, msg: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        if self.comp_reset {
            self.comp.reset();
        }
        let start = out.len();
        let room = msg.len() + msg.len() / 8 + 64;
        out.resize(start + room, 0);
        let r = miniz_oxide::deflate::stream::deflate(
            &mut self.comp,
            msg,
            &mut out[start..],
            MZFlush::Sync,
        );
        if r.bytes_consumed != msg.len() || r.bytes_written >= room {
            return Err("compressor did not finish in one step".into());
        }
        out.truncate(start + r.bytes_written);
        if out.len() >= start + 4 && out[out.len() - 4..] == TAIL {
            out.truncate(out.len() - 4);
        }
        Ok(())
    }

    /// Inflates the message gathered in `zin` into `out` (at most `max`
    /// bytes plus one, so a longer message is seen as such).
    fn inflate(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), String> {
        if self.infl_reset {
            self.infl.reset(DataFormat::Raw);
        }
        self.zin.extend_from_slice(&TAIL);
        out.clear();
        out.resize(max + 1, 0);
        let r =
            miniz_oxide::inflate::stream::inflate(&mut self.infl, &self.zin, out, MZFlush::Sync);
        self.zin.clear();
        if let Err(e) = r.status {
            if e != MZError::Buf {
                return Err(format!("inflate: {e:?}"));
            }
        }
        out.truncate(r.bytes_written);
        Ok(())
    }
}

fn mask_into(out: &mut Vec<u8>, data: &[u8], key: [u8; 4]) {
    let start = out.len();
    out.extend_from_slice(data);
    let buf = &mut out[start..];
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes(c.try_into().unwrap()) ^ wide;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

/// Receive-side frame parser state (server frames are unmasked).
#[derive(Default)]
struct Rx {
    head: [u8; 10],
    head_len: usize,
    /// Payload bytes left in the current frame (`None`: reading a header).
    left: Option<u64>,
    fin: bool,
    control: bool,
    in_msg: bool,
    /// Bytes of the current message verified so far.
    off: usize,
    /// The current message has RSV1 (compressed).
    compressed: bool,
}

struct Conn {
    fd: i32,
    idx: usize,
    out: Vec<u8>,
    out_pos: usize,
    want_out: bool,
    sent: u64,
    recvd: u64,
    sent_at: VecDeque<Instant>,
    rx: Rx,
    tls: Option<Tls>,
    pmd: Option<Pmd>,
    /// --json: the message being received, as sent.
    expect: Vec<u8>,
}

struct Echo<'a> {
    o: &'a Opts,
    pat: Pattern,
    rng: Rng,
    lat: Vec<u64>,
    completed: u64,
    error: Option<String>,
    scratch: Vec<u8>,
    inflated: Vec<u8>,
}

impl Echo<'_> {
    fn queue(&mut self, c: &mut Conn, now: Instant) {
        let mut size = self.o.size;
        let msg = if self.o.json {
            json_msg(c.idx, c.sent, size, &mut self.scratch);
            &self.scratch[..]
        } else {
            self.pat.msg(c.idx, c.sent, size)
        };
        if self.o.raw {
            c.out.extend_from_slice(msg);
        } else {
            let mut op = if self.o.binary { 0x82u8 } else { 0x81u8 };
            let mut z = Vec::new();
            let msg = match c.pmd.as_mut() {
                Some(p) => {
                    if let Err(e) = p.compress(msg, &mut z) {
                        self.error.get_or_insert(e);
                    }
                    op |= 0x40;
                    size = z.len();
                    &z[..]
                }
                None => msg,
            };
            c.out.push(op);
            if size < 126 {
                c.out.push(0x80 | size as u8);
            } else if size <= 0xffff {
                c.out.push(0x80 | 126);
                c.out.extend_from_slice(&(size as u16).to_be_bytes());
            } else {
                c.out.push(0x80 | 127);
                c.out.extend_from_slice(&(size as u64).to_be_bytes());
            }
            let key = (self.rng.next() as u32 | 0x0101_0101).to_ne_bytes();
            c.out.extend_from_slice(&key);
            mask_into(&mut c.out, msg, key);
        }
        c.sent += 1;
        c.sent_at.push_back(now);
    }

    /// Writes what is queued; returns false on a fatal error.
    fn flush(&mut self, ep: &Epoll, c: &mut Conn) -> bool {
        while c.out_pos < c.out.len() {
            match io_write(c.fd, c.tls.as_mut(), &c.out[c.out_pos..]) {
                Ok(n) => c.out_pos += n,
                Err(None) => break,
                Err(Some(e)) => {
                    self.fail(e);
                    return false;
                }
            }
        }
        if c.out_pos == c.out.len() {
            c.out.clear();
            c.out_pos = 0;
        }
        let want = c.out_pos < c.out.len();
        if want != c.want_out {
            c.want_out = want;
            let ev = if want {
                libc::EPOLLIN | libc::EPOLLOUT
            } else {
                libc::EPOLLIN
            };
            ep.ctl(libc::EPOLL_CTL_MOD, c.fd, ev as u32, c.idx as u64);
        }
        true
    }

    fn fail(&mut self, e: String) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    fn message_done(&mut self, c: &mut Conn, now: Instant) {
        c.recvd += 1;
        self.completed += 1;
        if let Some(t) = c.sent_at.pop_front() {
            self.lat.push((now - t).as_nanos() as u64);
        }
    }

    /// Verifies `data` against what connection `c` sent; counts messages.
    fn ingest(&mut self, c: &mut Conn, mut data: &[u8], now: Instant) -> bool {
        let size = self.o.size;
        if self.o.raw {
            while !data.is_empty() {
                if c.recvd >= c.sent {
                    self.fail("more bytes echoed than sent".into());
                    return false;
                }
                let want = self.pat.msg(c.idx, c.recvd, size);
                let k = (size - c.rx.off).min(data.len());
                if data[..k] != want[c.rx.off..c.rx.off + k] {
                    self.fail(format!("conn {}: echoed bytes differ", c.idx));
                    return false;
                }
                c.rx.off += k;
                data = &data[k..];
                if c.rx.off == size {
                    c.rx.off = 0;
                    self.message_done(c, now);
                }
            }
            return true;
        }
        while !data.is_empty() {
            let Some(left) = c.rx.left else {
                // Header: 2 bytes, then 0, 2 or 8 length bytes (no mask).
                let rx = &mut c.rx;
                while rx.head_len < 2 && !data.is_empty() {
                    rx.head[rx.head_len] = data[0];
                    rx.head_len += 1;
                    data = &data[1..];
                }
                if rx.head_len < 2 {
                    return true;
                }
                if rx.head[1] & 0x80 != 0 {
                    self.fail("server frame is masked".into());
                    return false;
                }
                let ext = match rx.head[1] & 0x7f {
                    126 => 2,
                    127 => 8,
                    _ => 0,
                };
                while rx.head_len < 2 + ext && !data.is_empty() {
                    rx.head[rx.head_len] = data[0];
                    rx.head_len += 1;
                    data = &data[1..];
                }
                if rx.head_len < 2 + ext {
                    return true;
                }
                let len = match ext {
                    0 => u64::from(rx.head[1] & 0x7f),
                    2 => u64::from(u16::from_be_bytes([rx.head[2], rx.head[3]])),
                    _ => u64::from_be_bytes(rx.head[2..10].try_into().unwrap()),
                };
                let op = rx.head[0] & 0x0f;
                rx.fin = rx.head[0] & 0x80 != 0;
                rx.head_len = 0;
                rx.control = op >= 8;
                if op == 8 {
                    self.fail(format!("conn {}: server sent a close frame", c.idx));
                    return false;
                }
                if !rx.control {
                    let expect = if self.o.binary { 2 } else { 1 };
                    if (op == 0) != rx.in_msg || (op != 0 && op != expect) {
                        self.fail(format!("conn {}: unexpected opcode {op}", c.idx));
                        return false;
                    }
                    if !rx.in_msg && c.recvd >= c.sent {
                        self.fail("more messages echoed than sent".into());
                        return false;
                    }
                    if !rx.in_msg {
                        rx.compressed = rx.head[0] & 0x40 != 0;
                        if rx.compressed && c.pmd.is_none() {
                            self.fail(format!("conn {}: RSV1 without permessage-deflate", c.idx));
                            return false;
                        }
                        if self.o.json {
                            json_msg(c.idx, c.recvd, size, &mut c.expect);
                        }
                    }
                    rx.in_msg = true;
                }
                c.rx.left = Some(len);
                if len == 0 {
                    self.frame_end(c, now);
                    if self.error.is_some() {
                        return false;
                    }
                }
                continue;
            };
            let k = (left.min(data.len() as u64)) as usize;
            if !c.rx.control && c.rx.compressed {
                if let Some(p) = c.pmd.as_mut() {
                    p.zin.extend_from_slice(&data[..k]);
                }
            } else if !c.rx.control {
                let want = if self.o.json {
                    &c.expect[..]
                } else {
                    self.pat.msg(c.idx, c.recvd, size)
                };
                let off = c.rx.off;
                if off + k > size || data[..k] != want[off..off + k] {
                    self.fail(format!("conn {}: echoed bytes differ", c.idx));
                    return false;
                }
                c.rx.off += k;
            }
            data = &data[k..];
            c.rx.left = Some(left - k as u64);
            if left == k as u64 {
                self.frame_end(c, now);
                if self.error.is_some() {
                    return false;
                }
            }
        }
        true
    }

    fn frame_end(&mut self, c: &mut Conn, now: Instant) {
        c.rx.left = None;
        if c.rx.control {
            return;
        }
        if c.rx.fin && c.rx.compressed {
            let p = c.pmd.as_mut().expect("compressed only with pmd");
            if let Err(e) = p.inflate(&mut self.inflated, self.o.size) {
                self.fail(format!("conn {}: {e}", c.idx));
                return;
            }
            let want = if self.o.json {
                &c.expect[..]
            } else {
                self.pat.msg(c.idx, c.recvd, self.o.size)
            };
            if self.inflated != want {
                self.fail(format!("conn {}: inflated echo differs", c.idx));
                return;
            }
            c.rx.off = self.o.size;
        }
        if c.rx.fin {
            if c.rx.off != self.o.size {
                self.fail(format!(
                    "conn {}: echoed message has {} bytes",
                    c.idx, c.rx.off
                ));
                return;
            }
            c.rx.in_msg = false;
            c.rx.off = 0;
            self.message_done(c, now);
        }
    }
}

fn run_echo(o: &Opts) {
    raise_nofile();
    let mut ep = Epoll::new();
    let (open, failed, errors) = open_many(o, &mut ep, o.conns, !o.raw);
    if failed > 0 || open.len() < o.conns {
        println!(
            "{{\"mode\":\"echo\",\"error\":\"{} of {} connections failed: {}\"}}",
            failed,
            o.conns,
            errors.join("; ").replace('"', "'")
        );
        std::process::exit(1);
    }
    let mut st = Echo {
        o,
        pat: Pattern::new(o.size),
        rng: Rng(0xD1B5_4A32_D192_ED03 ^ std::process::id() as u64),
        lat: Vec::new(),
        completed: 0,
        error: None,
        scratch: Vec::new(),
        inflated: Vec::new(),
    };
    let mut deflate_answer = None;
    let mut conns: Vec<Conn> = Vec::with_capacity(open.len());
    for (i, (fd, rest, tls, ext)) in open.into_iter().enumerate() {
        if !rest.is_empty() {
            st.fail("server sent data before any message".into());
        }
        let pmd = match Pmd::from_answer(ext.as_deref()) {
            Ok(p) => p,
            Err(e) => {
                st.fail(e);
                None
            }
        };
        if i == 0 {
            deflate_answer = ext;
        }
        ep.ctl(libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN as u32, i as u64);
        conns.push(Conn {
            fd,
            idx: i,
            out: Vec::new(),
            out_pos: 0,
            want_out: false,
            sent: 0,
            recvd: 0,
            sent_at: VecDeque::new(),
            rx: Rx::default(),
            tls,
            pmd,
            expect: Vec::new(),
        });
    }
    let mut buf = vec![0u8; 256 * 1024];
    // Phase 1: warm-up (not measured), then drain.
    let warm = Duration::from_millis(o.warmup_ms);
    if !warm.is_zero() {
        run_phase(&mut st, &mut ep, &mut conns, &mut buf, warm);
    }
    st.lat.clear();
    st.completed = 0;
    if st.error.is_none() {
        wait_go(o, "{}");
    }
    // Phase 2: the measured window, from the first send to the last echo.
    let cpu0 = server_cpu(o.server_pid);
    let (in0, out0) = (WIRE_IN.load(Relaxed), WIRE_OUT.load(Relaxed));
    let t0 = Instant::now();
    if st.error.is_none() {
        run_phase(
            &mut st,
            &mut ep,
            &mut conns,
            &mut buf,
            Duration::from_millis(o.duration_ms),
        );
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = server_cpu(o.server_pid);
    let (wire_in, wire_out) = (WIRE_IN.load(Relaxed) - in0, WIRE_OUT.load(Relaxed) - out0);
    for c in &conns {
        abort_close(c.fd);
    }
    if let Some(e) = &st.error {
        println!("{{\"mode\":\"echo\",\"error\":{:?}}}", e);
        std::process::exit(1);
    }
    st.lat.sort_unstable();
    let msgs = st.completed as f64;
    let cpu_stat = cpu1.stat_us - cpu0.stat_us;
    let cpu_sched = cpu1.sched_us - cpu0.sched_us;
    println!(
        "{{\"mode\":\"echo\",\"proto\":\"{}\",\"conns\":{},\"inflight\":{},\"size\":{},\"binary\":{},\
         \"messages\":{},\"seconds\":{:.4},\"msgs_per_s\":{:.1},\"mb_per_s\":{:.2},\
         \"lat_p50_us\":{:.1},\"lat_p99_us\":{:.1},\"server_cpu_us\":{:.0},\"server_sched_us\":{:.0},\
         \"cpu_us_per_msg\":{:.4},\"sched_us_per_msg\":{:.4},\"tls\":{},\"json\":{},\
         \"deflate\":{:?},\"wire_out_per_msg\":{:.1},\"wire_in_per_msg\":{:.1}}}",
        if o.raw { "raw" } else { "ws" },
        o.conns,
        o.inflight,
        o.size,
        o.binary,
        st.completed,
        elapsed,
        msgs / elapsed,
        msgs * o.size as f64 / elapsed / 1e6,
        percentile(&st.lat, 0.50),
        percentile(&st.lat, 0.99),
        cpu_stat,
        cpu_sched,
        if msgs > 0.0 { cpu_stat / msgs } else { 0.0 },
        if msgs > 0.0 { cpu_sched / msgs } else { 0.0 },
        o.tls,
        o.json,
        deflate_answer.as_deref().unwrap_or(""),
        if msgs > 0.0 { wire_out as f64 / msgs } else { 0.0 },
        if msgs > 0.0 { wire_in as f64 / msgs } else { 0.0 },
    );
}

/// Keeps `inflight` messages on every connection for `dur`, then stops
/// sending and waits for every echo (bounded by --timeout-ms).
fn run_phase(st: &mut Echo, ep: &mut Epoll, conns: &mut [Conn], buf: &mut [u8], dur: Duration) {
    let o = st.o;
    let t0 = Instant::now();
    let stop_at = t0 + dur;
    let hard_stop = stop_at + Duration::from_millis(o.timeout_ms);
    for c in conns.iter_mut() {
        for _ in 0..o.inflight {
            st.queue(c, t0);
        }
        if !st.flush(ep, c) {
            return;
        }
    }
    let mut outstanding: u64 = conns.iter().map(|c| c.sent - c.recvd).sum();
    loop {
        let now = Instant::now();
        let running = now < stop_at;
        if !running && outstanding == 0 {
            return;
        }
        if now > hard_stop {
            st.fail(format!("{outstanding} echoes missing at the time limit"));
            return;
        }
        let ms = if running {
            (stop_at - now).as_millis().min(10) as i32
        } else {
            10
        };
        let k = ep.wait(ms);
        let now = Instant::now();
        let running = now < stop_at;
        for i in 0..k {
            let ev = ep.events[i];
            let c = &mut conns[ev.u64 as usize];
            if ev.events & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
                let before = c.recvd;
                // TLS: read until it would block (plaintext left inside
                // OpenSSL would get no readiness event).
                let tries = if c.tls.is_some() { usize::MAX } else { 8 };
                for _ in 0..tries {
                    let n = match io_read(c.fd, c.tls.as_mut(), buf) {
                        Ok(n) => n,
                        Err(None) => break,
                        Err(Some(e)) => {
                            st.fail(e);
                            return;
                        }
                    };
                    if n == 0 {
                        st.fail(format!("conn {}: server closed the connection", c.idx));
                        return;
                    }
                    if !st.ingest(c, &buf[..n], now) {
                        return;
                    }
                    if c.tls.is_none() && n < buf.len() {
                        break;
                    }
                }
                let got = c.recvd - before;
                outstanding -= got;
                if running {
                    for _ in 0..got {
                        st.queue(c, now);
                    }
                    outstanding += got;
                }
            }
            if (c.out_pos < c.out.len() || !c.out.is_empty()) && !st.flush(ep, c) {
                return;
            }
        }
    }
}

fn main() {
    let o = parse_opts();
    // SAFETY: ignoring SIGPIPE is always safe.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    match o.mode.as_str() {
        "echo" => run_echo(&o),
        "handshake" => run_handshake(&o),
        _ => run_idle(&o),
    }
}
