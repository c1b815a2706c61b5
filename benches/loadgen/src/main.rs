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
use std::time::{Duration, Instant};

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
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen echo|handshake|idle --port P [--host 127.0.0.1] [--raw] [--conns N] \
         [--inflight K] [--size S] [--binary] [--warmup-ms W] [--duration-ms D] \
         [--server-pid PID] [--wait-go] [--parallel C] [--src A,B,..] [--timeout-ms T]"
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
    };
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        let num = |s: String| -> u64 { s.parse().unwrap_or_else(|_| usage()) };
        match a.as_str() {
            "--port" => o.port = num(val()) as u16,
            "--host" => o.host = loopback(&val()),
            "--raw" => o.raw = true,
            "--binary" => o.binary = true,
            "--conns" => o.conns = num(val()) as usize,
            "--inflight" => o.inflight = num(val()) as usize,
            "--size" => o.size = num(val()) as usize,
            "--warmup-ms" => o.warmup_ms = num(val()),
            "--duration-ms" => o.duration_ms = num(val()),
            "--server-pid" => o.server_pid = Some(num(val()) as i32),
            "--wait-go" => o.wait_go = true,
            "--parallel" => o.parallel = num(val()).max(1) as usize,
            "--timeout-ms" => o.timeout_ms = num(val()),
            "--src" => o.src = val().split(',').filter(|s| !s.is_empty()).map(loopback).collect(),
            _ => usage(),
        }
    }
    if o.port == 0 {
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

fn sys_read(fd: i32, buf: &mut [u8]) -> isize {
    // SAFETY: buf is valid for its length.
    unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) }
}

fn sys_write(fd: i32, buf: &[u8]) -> isize {
    // SAFETY: buf is valid for its length; MSG_NOSIGNAL: no SIGPIPE.
    unsafe {
        libc::send(
            fd,
            buf.as_ptr() as *const libc::c_void,
            buf.len(),
            libc::MSG_NOSIGNAL,
        )
    }
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
fn upgrade_request(rng: &mut Rng, port: u16) -> (Vec<u8>, String) {
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
    let req = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1\r\n\r\n"
    );
    (req.into_bytes(), accept)
}

/// Checks a complete response head: status 101 and the right accept key.
fn check_response(head: &[u8], accept: &str) -> Result<(), String> {
    let text = std::str::from_utf8(head).map_err(|_| "response is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 101") {
        return Err(format!("status line {status:?}"));
    }
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            if k.trim().eq_ignore_ascii_case("sec-websocket-accept") {
                return if v.trim() == accept {
                    Ok(())
                } else {
                    Err(format!("wrong accept key {:?}", v.trim()))
                };
            }
        }
    }
    Err("no Sec-WebSocket-Accept".into())
}

fn find_head_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

enum HsStage {
    Connecting,
    Sent,
}

/// One opening handshake in progress.
struct Hs {
    fd: i32,
    stage: HsStage,
    req: Vec<u8>,
    accept: String,
    buf: Vec<u8>,
    started: Instant,
}

enum HsStep {
    Pending,
    /// Done; bytes that followed the response head.
    Done(Vec<u8>),
    Failed(String),
}

impl Hs {
    fn start(to: &libc::sockaddr_in, src: Option<Ipv4Addr>, rng: &mut Rng, port: u16) -> Result<Hs, String> {
        let fd = start_connect(to, src).map_err(|e| {
            format!("connect: {}", std::io::Error::from_raw_os_error(e))
        })?;
        let (req, accept) = upgrade_request(rng, port);
        Ok(Hs {
            fd,
            stage: HsStage::Connecting,
            req,
            accept,
            buf: Vec::new(),
            started: Instant::now(),
        })
    }

    /// Advances on readiness (registered edge-triggered for in and out).
    fn step(&mut self, tmp: &mut [u8]) -> HsStep {
        if let HsStage::Connecting = self.stage {
            let n = sys_write(self.fd, &self.req);
            if n < 0 {
                let e = errno();
                if e == libc::EAGAIN || e == libc::ENOTCONN {
                    return HsStep::Pending;
                }
                return HsStep::Failed(format!("send: {}", std::io::Error::from_raw_os_error(e)));
            }
            if (n as usize) < self.req.len() {
                return HsStep::Failed("short write of the upgrade request".into());
            }
            self.stage = HsStage::Sent;
        }
        loop {
            let n = sys_read(self.fd, tmp);
            if n < 0 {
                let e = errno();
                if e == libc::EAGAIN {
                    return HsStep::Pending;
                }
                return HsStep::Failed(format!("recv: {}", std::io::Error::from_raw_os_error(e)));
            }
            if n == 0 {
                return HsStep::Failed("closed before the 101 answer".into());
            }
            self.buf.extend_from_slice(&tmp[..n as usize]);
            if let Some(end) = find_head_end(&self.buf) {
                return match check_response(&self.buf[..end], &self.accept) {
                    Ok(()) => HsStep::Done(self.buf[end..].to_vec()),
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

/// Opens `n` WebSocket connections (or raw TCP connections), `parallel`
/// at a time. Returns the sockets with any bytes that followed the 101.
fn open_many(o: &Opts, ep: &mut Epoll, n: usize, ws: bool) -> (Vec<(i32, Vec<u8>)>, usize, Vec<String>) {
    let to = sockaddr(o.host, o.port);
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
            if !ws {
                match start_connect(&to, src).and_then(|fd| wait_connected(fd, o.timeout_ms)) {
                    Ok(fd) => open.push((fd, Vec::new())),
                    Err(e) => {
                        failed += 1;
                        if errors.len() < 5 {
                            errors.push(format!("connect: {}", std::io::Error::from_raw_os_error(e)));
                        }
                    }
                }
                continue;
            }
            match Hs::start(&to, src, &mut rng, o.port) {
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
        if !ws {
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
            match h.step(&mut tmp) {
                HsStep::Pending => {}
                HsStep::Done(rest) => {
                    let h = slots[idx].take().unwrap();
                    ep.ctl(libc::EPOLL_CTL_DEL, h.fd, 0, 0);
                    open.push((h.fd, rest));
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
    let mut refill = |slots: &mut Vec<Option<Hs>>, idx: usize, ep: &mut Epoll, active: &mut usize, failed: &mut u64, errors: &mut Vec<String>| {
        let src = (!o.src.is_empty()).then(|| o.src[started % o.src.len()]);
        started += 1;
        match Hs::start(&to, src, &mut rng, o.port) {
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
        refill(&mut slots, idx, &mut ep, &mut active, &mut failed, &mut errors);
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
            note(&mut errors, "handshakes still pending at the time limit".into());
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
            let r = h.step(&mut tmp);
            if let HsStep::Pending = r {
                continue;
            }
            let h = slots[idx].take().unwrap();
            active -= 1;
            // close() also removes it from the epoll set.
            abort_close(h.fd);
            match r {
                HsStep::Done(_) => {
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
                refill(&mut slots, idx, &mut ep, &mut active, &mut failed, &mut errors);
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
    for (fd, _) in open {
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

fn mask_into(out: &mut Vec<u8>, data: &[u8], key: [u8; 4]) {
    let start = out.len();
    out.extend_from_slice(data);
    let buf = &mut out[start..];
    let wide = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
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
}

struct Echo<'a> {
    o: &'a Opts,
    pat: Pattern,
    rng: Rng,
    lat: Vec<u64>,
    completed: u64,
    error: Option<String>,
}

impl Echo<'_> {
    fn queue(&mut self, c: &mut Conn, now: Instant) {
        let size = self.o.size;
        let msg = self.pat.msg(c.idx, c.sent, size);
        if self.o.raw {
            c.out.extend_from_slice(msg);
        } else {
            let op = if self.o.binary { 0x82u8 } else { 0x81u8 };
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
            let n = sys_write(c.fd, &c.out[c.out_pos..]);
            if n < 0 {
                if errno() == libc::EAGAIN {
                    break;
                }
                self.fail(format!("send: {}", std::io::Error::last_os_error()));
                return false;
            }
            c.out_pos += n as usize;
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
            if !c.rx.control {
                let want = self.pat.msg(c.idx, c.recvd, size);
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
        if c.rx.fin {
            if c.rx.off != self.o.size {
                self.fail(format!("conn {}: echoed message has {} bytes", c.idx, c.rx.off));
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
    };
    let mut conns: Vec<Conn> = Vec::with_capacity(open.len());
    for (i, (fd, rest)) in open.into_iter().enumerate() {
        if !rest.is_empty() {
            st.fail("server sent data before any message".into());
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
    let t0 = Instant::now();
    if st.error.is_none() {
        run_phase(&mut st, &mut ep, &mut conns, &mut buf, Duration::from_millis(o.duration_ms));
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = server_cpu(o.server_pid);
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
         \"cpu_us_per_msg\":{:.4},\"sched_us_per_msg\":{:.4}}}",
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
                for _ in 0..8 {
                    let n = sys_read(c.fd, buf);
                    if n < 0 {
                        if errno() == libc::EAGAIN {
                            break;
                        }
                        st.fail(format!("recv: {}", std::io::Error::last_os_error()));
                        return;
                    }
                    if n == 0 {
                        st.fail(format!("conn {}: server closed the connection", c.idx));
                        return;
                    }
                    if !st.ingest(c, &buf[..n as usize], now) {
                        return;
                    }
                    if (n as usize) < buf.len() {
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
            if c.out_pos < c.out.len() || !c.out.is_empty() {
                if !st.flush(ep, c) {
                    return;
                }
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
