//! Tests with real sockets on 127.0.0.1 and ::1 (IPv6 cases are skipped
//! with a message when ::1 is unavailable). Every wait is bounded.

use super::*;
use std::time::{Duration, Instant};

const SECOND: i32 = 1000;

fn v6_available() -> bool {
    match tcp_listen("::1", "0", true, 1) {
        Ok(s) => {
            close(s);
            true
        }
        Err(e) => {
            println!("skipping IPv6 case: cannot listen on ::1 ({e})");
            false
        }
    }
}

fn loopback(v6: bool) -> &'static str {
    if v6 {
        "::1"
    } else {
        "127.0.0.1"
    }
}

/// Accepts one connection within 5 s.
fn accept_one(listener: Socket) -> Socket {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(s) = accept(listener).expect("accept") {
            return s;
        }
        assert!(Instant::now() < deadline, "no connection to accept");
        let _ = wait_fd(listener, true, false, 100);
    }
}

/// A listener and a connected (client, server) pair on loopback.
struct Pair {
    listener: Socket,
    client: Socket,
    server: Socket,
}

impl Pair {
    fn new(v6: bool) -> Pair {
        let listener = tcp_listen(loopback(v6), "0", v6, 16).expect("listen");
        let (_, port) = local_addr(listener).expect("local addr");
        let client = tcp_connect(loopback(v6), &port, v6, 5000, None).expect("connect");
        let server = accept_one(listener);
        Pair {
            listener,
            client,
            server,
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        close(self.client);
        close(self.server);
        close(self.listener);
    }
}

/// Receives exactly `n` bytes within 5 s.
fn recv_exact(s: Socket, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 4096];
    while got.len() < n {
        assert!(Instant::now() < deadline, "timed out receiving");
        match recv(s, &mut buf) {
            Ok(0) => panic!("unexpected EOF"),
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(e) if e.would_block() => {
                let _ = wait_fd(s, true, false, 100);
            }
            Err(e) => panic!("recv: {e}"),
        }
    }
    got
}

fn cloexec(s: Socket) -> bool {
    // SAFETY: F_GETFD only reads descriptor flags.
    let fl = unsafe { libc::fcntl(s, libc::F_GETFD) };
    fl >= 0 && fl & libc::FD_CLOEXEC != 0
}

fn nodelay(s: Socket) -> bool {
    let mut v: libc::c_int = 0;
    let mut len = addr::socklen_of::<libc::c_int>();
    // SAFETY: v/len are live locals of the right size.
    let rc = unsafe {
        libc::getsockopt(
            s,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            core::ptr::addr_of_mut!(v).cast(),
            &mut len,
        )
    };
    rc == 0 && v != 0
}

/// Raises the soft RLIMIT_NOFILE to the hard limit.
fn raise_nofile() {
    // SAFETY: rlimit is plain data; getrlimit/setrlimit read/write it.
    unsafe {
        let mut rl: libc::rlimit = core::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 && rl.rlim_cur < rl.rlim_max {
            rl.rlim_cur = rl.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
    }
}

fn socketpair() -> (Socket, Socket) {
    let mut fds = [-1; 2];
    // SAFETY: fds is a live array of two c_ints.
    let rc = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
    assert_eq!(rc, 0, "socketpair: {}", NetError::last());
    assert!(set_blocking(fds[0], false) && set_blocking(fds[1], false));
    (fds[0], fds[1])
}

// ---------------------------------------------------------------- errors

#[test]
fn net_error_classification_and_text() {
    assert!(NetError(libc::EAGAIN).would_block());
    assert!(NetError(libc::EWOULDBLOCK).would_block());
    assert!(NetError(libc::EINTR).interrupted());
    assert!(!NetError(libc::ECONNRESET).would_block());
    assert_eq!(NetError(libc::EPIPE).errno(), libc::EPIPE);
    let text = NetError(libc::ECONNREFUSED).to_string().to_lowercase();
    assert!(text.contains("refused"), "{text}");
    let io: std::io::Error = NetError(libc::ECONNREFUSED).into();
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
}

// ---------------------------------------------------------------- resolve

#[test]
fn resolve_numeric_names_and_families() {
    let a = resolve("127.0.0.1", "80", false).expect("v4 literal");
    assert_eq!(
        a[0].host_port(),
        Some(("127.0.0.1".to_string(), "80".to_string()))
    );
    assert!(!a[0].is_v6());
    let l = resolve("localhost", "8080", false).expect("localhost");
    assert!(l
        .iter()
        .any(|a| a.host_port() == Some(("127.0.0.1".into(), "8080".into()))));
    let b = resolve("[::1]", "443", true).expect("bracketed v6 literal");
    assert_eq!(
        b[0].host_port(),
        Some(("::1".to_string(), "443".to_string()))
    );
    assert!(b[0].is_v6());
    assert!(
        resolve("127.0.0.1", "80", true).is_err(),
        "v4 literal as v6"
    );
    assert!(resolve("::1", "80", false).is_err(), "v6 literal as v4");
    assert_eq!(
        resolve("bad\0host", "80", false).unwrap_err(),
        NetError(libc::EINVAL)
    );
    // The arguments are copied to fixed buffers: the longest that fit
    // still reach getaddrinfo, longer ones fail as it would fail them.
    let long_port = format!("{:0>31}", 80);
    let fits = resolve("127.0.0.1", &long_port, false).expect("31-byte port");
    assert_eq!(fits[0].host_port().map(|h| h.1), Some("80".to_string()));
    assert_eq!(
        resolve("127.0.0.1", &format!("0{long_port}"), false).unwrap_err(),
        NetError(libc::EINVAL)
    );
    assert_eq!(
        resolve(&"a".repeat(256), "80", false).unwrap_err(),
        NetError(libc::ENXIO)
    );
    let sa: std::net::SocketAddr = "[fe80::1%3]:9".parse().expect("addr");
    let scoped = Addr::from(sa);
    assert_eq!(scoped.to_socket_addr(), Some(sa));
    assert_eq!(
        scoped.host_port(),
        Some(("fe80::1%3".to_string(), "9".to_string()))
    );
}

// ---------------------------------------------------------------- listen

#[test]
fn listen_port_zero_v4() {
    let l = tcp_listen("127.0.0.1", "0", false, 8).expect("listen");
    assert!(l > 2, "fd {l} in 0..2");
    let (host, port) = local_addr(l).expect("local addr");
    assert_eq!(host, "127.0.0.1");
    assert_ne!(port, "0");
    assert!(port.parse::<u16>().is_ok());
    assert!(is_socket(l));
    assert!(!is_blocking(l), "listener must be non-blocking");
    assert!(cloexec(l));
    assert_eq!(accept(l), Ok(None), "nothing pending");
    assert_eq!(peer_addr(l), None, "listener has no peer");
    close(l);
    assert!(!is_socket(l));
    assert!(!is_socket(INVALID_SOCKET));
}

#[test]
fn listen_port_zero_v6() {
    if !v6_available() {
        return;
    }
    let l = tcp_listen("::1", "0", true, 8).expect("listen");
    let (host, port) = local_addr(l).expect("local addr");
    assert_eq!(host, "::1");
    assert_ne!(port, "0");
    close(l);
    assert!(tcp_listen("127.0.0.1", "0", true, 8).is_err());
}

#[test]
fn listen_wildcard_and_bad_port() {
    let l = tcp_listen("", "0", false, 8).expect("wildcard listen");
    assert_eq!(local_addr(l).map(|(h, _)| h), Some("0.0.0.0".to_string()));
    close(l);
    assert!(tcp_listen("127.0.0.1", "not-a-port", false, 8).is_err());
}

// ---------------------------------------------------------------- streams

fn round_trip(v6: bool) {
    let p = Pair::new(v6);
    let host = loopback(v6);
    for s in [p.client, p.server] {
        assert!(!is_blocking(s), "must be non-blocking");
        assert!(cloexec(s));
        assert!(nodelay(s));
        assert!(s > 2);
    }
    let (_, lport) = local_addr(p.listener).expect("listener addr");
    let (chost, cport) = local_addr(p.client).expect("client addr");
    assert_eq!(peer_addr(p.client), Some((host.to_string(), lport.clone())));
    assert_eq!(peer_addr(p.server), Some((chost.clone(), cport)));
    assert_eq!(chost, host);
    assert_eq!(local_addr(p.server).map(|(_, port)| port), Some(lport));

    assert_eq!(send(p.client, b"hello"), Ok(5));
    assert_eq!(recv_exact(p.server, 5), b"hello");
    let n = send_vectored(p.server, &[b"ab", b"", b"cde", b"f"]).expect("sendmsg");
    assert_eq!(n, 6);
    assert_eq!(recv_exact(p.client, 6), b"abcdef");
    assert_eq!(send_vectored(p.server, &[b"", b""]), Ok(0));
    // The two-buffer form (a frame's header and payload), either one empty.
    assert_eq!(socket::send_pair(p.server, b"gh", b"ij"), Ok(4));
    assert_eq!(socket::send_pair(p.server, b"", b"kl"), Ok(2));
    assert_eq!(socket::send_pair(p.server, b"m", b""), Ok(1));
    assert_eq!(socket::send_pair(p.server, b"", b""), Ok(0));
    assert_eq!(recv_exact(p.client, 7), b"ghijklm");
    assert_eq!(send(p.server, b""), Ok(0));

    shutdown(p.client, false, true);
    let mut buf = [0u8; 8];
    assert_eq!(
        wait_fd(p.server, true, false, 5 * SECOND),
        Ok((true, false))
    );
    assert_eq!(recv(p.server, &mut buf), Ok(0), "EOF after shutdown(WR)");
}

#[test]
fn round_trip_v4() {
    round_trip(false);
}

#[test]
fn round_trip_v6() {
    if v6_available() {
        round_trip(true);
    }
}

#[test]
fn would_block_reporting() {
    let p = Pair::new(false);
    let mut buf = [0u8; 16];
    let e = recv(p.server, &mut buf).unwrap_err();
    assert!(e.would_block(), "{e}");
    // Fill the send buffer: loopback buffers are a few MB at most.
    let chunk = [7u8; 65536];
    let mut blocked = false;
    for _ in 0..10_000 {
        match send(p.client, &chunk) {
            Ok(_) => {}
            Err(e) if e.would_block() => {
                blocked = true;
                break;
            }
            Err(e) => panic!("send: {e}"),
        }
    }
    assert!(blocked, "send never reported would-block");
    let e = send_vectored(p.client, &[&chunk[..10], &chunk[..10]]).unwrap_err();
    assert!(e.would_block(), "{e}");
    assert_eq!(wait_fd(p.client, false, true, 0), Ok((false, false)));
}

#[test]
fn blocking_mode_and_nodelay_toggle() {
    let p = Pair::new(false);
    assert!(set_blocking(p.client, true));
    assert!(is_blocking(p.client));
    assert!(set_blocking(p.client, false));
    assert!(!is_blocking(p.client));
    assert!(set_nodelay(p.client, false));
    assert!(!nodelay(p.client));
    assert!(set_nodelay(p.client, true));
    assert!(nodelay(p.client));
    assert!(!set_blocking(INVALID_SOCKET, true));
    assert!(!is_blocking(INVALID_SOCKET));
}

#[test]
fn send_to_closed_peer_never_raises_sigpipe() {
    let (a, b) = socketpair();
    close(b);
    // Rust ignores SIGPIPE in this process, so check in a child that
    // restores the default action (only async-signal-safe calls there).
    // SAFETY: the child only calls signal/send/sendmsg/_exit.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            let r1 = send(a, b"x");
            let r2 = send_vectored(a, &[b"y", b"z"]);
            let ok = matches!(r1, Err(NetError(libc::EPIPE)))
                && matches!(r2, Err(NetError(libc::EPIPE)));
            libc::_exit(if ok { 0 } else { 1 });
        }
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        assert!(
            libc::WIFEXITED(status),
            "child killed by signal {}",
            libc::WTERMSIG(status)
        );
        assert_eq!(libc::WEXITSTATUS(status), 0, "send did not give EPIPE");
    }
    close(a);
}

// ---------------------------------------------------------------- connect

fn closed_port() -> String {
    let l = tcp_listen("127.0.0.1", "0", false, 1).expect("listen");
    let (_, port) = local_addr(l).expect("addr");
    close(l);
    port
}

#[test]
fn connect_refused_is_quick() {
    let port = closed_port();
    let t = Instant::now();
    let e = tcp_connect("127.0.0.1", &port, false, 5000, None).unwrap_err();
    assert_eq!(e, NetError(libc::ECONNREFUSED));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(tcp_connect("127.0.0.1", "", false, 1000, None).is_err());
}

#[test]
fn connect_times_out_on_full_backlog() {
    // Nobody accepts: once the accept queue is full, SYNs are dropped and
    // connect can only end by its timeout.
    let l = tcp_listen("127.0.0.1", "0", false, 0).expect("listen");
    let (_, port) = local_addr(l).expect("addr");
    let mut open = Vec::new();
    let mut timed_out = false;
    for _ in 0..32 {
        let t = Instant::now();
        let r = tcp_connect("127.0.0.1", &port, false, 200, None);
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "connect took {:?}",
            t.elapsed()
        );
        match r {
            Ok(s) => open.push(s),
            Err(e) => {
                assert_eq!(e, NetError(libc::ETIMEDOUT));
                timed_out = true;
                break;
            }
        }
    }
    assert!(timed_out, "backlog never filled ({} connected)", open.len());
    open.into_iter().for_each(close);
    close(l);
}

#[test]
fn connect_zero_timeout_to_refused_port_fails() {
    let port = closed_port();
    assert!(tcp_connect("127.0.0.1", &port, false, 0, None).is_err());
}

#[test]
fn connect_with_bind_address() {
    let l = tcp_listen("127.0.0.1", "0", false, 8).expect("listen");
    let (_, port) = local_addr(l).expect("addr");
    let c = tcp_connect("127.0.0.1", &port, false, 5000, Some("127.0.0.1")).expect("connect");
    assert_eq!(local_addr(c).map(|(h, _)| h), Some("127.0.0.1".to_string()));
    let s = accept_one(l);
    close(s);
    close(c);
    assert_eq!(
        tcp_connect("127.0.0.1", &port, false, 1000, Some("::1")),
        Err(NetError(libc::EAFNOSUPPORT))
    );
    // An interface name that does not exist (SO_BINDTODEVICE fails).
    assert!(tcp_connect("127.0.0.1", &port, false, 1000, Some("nosuchif0")).is_err());
    // Binding to the loopback device may need privileges on old kernels.
    match tcp_connect("127.0.0.1", &port, false, 1000, Some("lo")) {
        Ok(c) => {
            close(accept_one(l));
            close(c);
        }
        Err(e) => println!("binding to device lo refused here: {e}"),
    }
    close(l);
}

// ---------------------------------------------------------------- wait_fd

#[test]
fn wait_fd_readiness_and_timeout() {
    let p = Pair::new(false);
    assert_eq!(wait_fd(p.client, false, true, SECOND), Ok((false, true)));
    let t = Instant::now();
    assert_eq!(wait_fd(p.server, true, false, 50), Ok((false, false)));
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(40) && waited < Duration::from_secs(2));
    send(p.client, b"x").expect("send");
    assert_eq!(wait_fd(p.server, true, true, SECOND), Ok((true, true)));
    assert_eq!(
        wait_fd(INVALID_SOCKET, true, false, 0),
        Err(NetError(libc::EBADF))
    );
}

// ---------------------------------------------------------------- poller

const BACKENDS: [Backend; 2] = [Backend::Epoll, Backend::Poll];

fn wait_for(poller: &mut Poller, token: usize, what: impl Fn(&Ready) -> bool) -> Ready {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut out = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "token {token} never ready");
        poller.wait(&mut out, 100).expect("wait");
        if let Some(r) = out.iter().find(|r| r.token == token && what(r)) {
            return *r;
        }
    }
}

fn assert_quiet(poller: &mut Poller, token: usize) {
    let mut out = Vec::new();
    poller.wait(&mut out, 50).expect("wait");
    assert!(
        out.iter().all(|r| r.token != token),
        "unexpected event {out:?}"
    );
}

#[test]
fn poller_read_write_readiness() {
    for backend in BACKENDS {
        let mut poller = Poller::new(backend).expect("poller");
        assert_eq!(poller.backend(), backend);
        let p = Pair::new(false);
        poller.add(p.server, 1, Interest::READ).expect("add");
        poller.add(p.client, 2, Interest::WRITE).expect("add");
        let w = wait_for(&mut poller, 2, |r| r.writable);
        assert!(!w.readable && !w.hangup && !w.error, "{w:?}");
        assert_quiet(&mut poller, 1);
        send(p.client, b"ping").expect("send");
        let r = wait_for(&mut poller, 1, |r| r.readable);
        assert!(!r.writable && !r.hangup, "{r:?}");
        // Level-triggered: still ready until read.
        wait_for(&mut poller, 1, |r| r.readable);
        assert_eq!(recv_exact(p.server, 4), b"ping");
        assert_quiet(&mut poller, 1);
        // Modify: same fd, new token and interest.
        poller.modify(p.server, 11, Interest::BOTH).expect("modify");
        let m = wait_for(&mut poller, 11, |r| r.writable);
        assert!(!m.readable, "{m:?}");
        poller
            .add(p.server, 12, Interest::NONE)
            .expect("re-add replaces");
        assert_quiet(&mut poller, 12);
    }
}

#[test]
fn poller_hangup_on_peer_close() {
    for backend in BACKENDS {
        let mut poller = Poller::new(backend).expect("poller");
        let p = Pair::new(false);
        poller.add(p.server, 5, Interest::READ).expect("add");
        assert_quiet(&mut poller, 5);
        shutdown(p.client, true, true);
        let r = wait_for(&mut poller, 5, |r| r.readable || r.hangup);
        if cfg!(target_os = "linux") {
            assert!(r.hangup, "{backend:?}: {r:?}");
        }
        let mut buf = [0u8; 4];
        assert_eq!(recv(p.server, &mut buf), Ok(0));
    }
}

#[test]
fn poller_delete() {
    for backend in BACKENDS {
        let mut poller = Poller::new(backend).expect("poller");
        let p = Pair::new(false);
        poller.add(p.server, 7, Interest::READ).expect("add");
        send(p.client, b"x").expect("send");
        wait_for(&mut poller, 7, |r| r.readable);
        poller.delete(p.server).expect("delete");
        assert_quiet(&mut poller, 7);
        poller.delete(p.server).expect("delete twice");
        poller.delete(12345).expect("delete unknown");
        // A registered fd closed before delete.
        let (a, b) = socketpair();
        poller.add(a, 8, Interest::READ).expect("add");
        close(a);
        poller.delete(a).expect("delete closed");
        close(b);
        assert_quiet(&mut poller, 8);
        // Errors.
        assert_eq!(
            poller.add(p.client, usize::MAX, Interest::READ),
            Err(NetError(libc::EINVAL))
        );
        assert_eq!(
            poller.add(INVALID_SOCKET, 1, Interest::READ),
            Err(NetError(libc::EBADF))
        );
        assert_eq!(
            poller.modify(p.client, 9, Interest::READ),
            Err(NetError(libc::ENOENT))
        );
    }
}

fn assert_woken_promptly(poller: &mut Poller, wake: impl FnOnce() + Send + 'static) {
    let t = Instant::now();
    let waker_thread = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        wake();
    });
    let mut out = Vec::new();
    let n = poller.wait(&mut out, 5 * SECOND).expect("wait");
    let waited = t.elapsed();
    waker_thread.join().expect("waker thread");
    assert_eq!(n, 0, "a wake is not reported: {out:?}");
    assert!(waited < Duration::from_secs(2), "woke after {waited:?}");
}

#[test]
fn poller_waker_from_thread_and_raw_fd() {
    for backend in BACKENDS {
        let mut poller = Poller::new(backend).expect("poller");
        let waker = poller.waker();
        assert_woken_promptly(&mut poller, move || waker.wake());
        let fd = poller.waker().raw_fd();
        assert_woken_promptly(&mut poller, move || wake_raw(fd));

        // Woken twice before a wait: one prompt return, then drained.
        let waker = poller.waker();
        waker.wake();
        waker.wake();
        let mut out = Vec::new();
        let t = Instant::now();
        assert_eq!(poller.wait(&mut out, 5 * SECOND), Ok(0));
        assert!(t.elapsed() < Duration::from_secs(2));
        let t = Instant::now();
        assert_eq!(poller.wait(&mut out, 50), Ok(0));
        assert!(
            t.elapsed() >= Duration::from_millis(40),
            "waker not drained"
        );
        assert_eq!(
            poller.add(fd, 1, Interest::READ),
            Err(NetError(libc::EINVAL))
        );

        // Waker outliving its poller stays harmless.
        drop(poller);
        waker.wake();
        wake_raw(waker.raw_fd());
    }
}

#[test]
fn poller_many_sockets() {
    raise_nofile();
    const PAIRS: usize = 1000;
    for backend in BACKENDS {
        let mut poller = Poller::new(backend).expect("poller");
        let pairs: Vec<(Socket, Socket)> = (0..PAIRS).map(|_| socketpair()).collect();
        let fds: Vec<Socket> = pairs.iter().flat_map(|&(a, b)| [a, b]).collect();
        assert_eq!(fds.len(), 2 * PAIRS);
        for (token, &fd) in (0usize..).zip(&fds) {
            poller.add(fd, token, Interest::WRITE).expect("add");
        }
        // All writable: batches of at most MAX_EVENTS must cover every token.
        let mut seen = vec![false; fds.len()];
        let mut out = Vec::new();
        for _ in 0..100 {
            let n = poller.wait(&mut out, SECOND).expect("wait");
            assert!(n <= MAX_EVENTS && n == out.len());
            for r in &out {
                assert!(r.writable);
                if let Some(s) = seen.get_mut(r.token) {
                    *s = true;
                }
            }
            if seen.iter().all(|&s| s) {
                break;
            }
        }
        assert!(
            seen.iter().all(|&s| s),
            "{backend:?}: some tokens never reported"
        );

        // Read interest: exactly the sockets whose peer wrote are ready.
        for (token, &fd) in (0usize..).zip(&fds) {
            poller.modify(fd, token, Interest::READ).expect("modify");
        }
        let writers = [0usize, 1, 777, 1500, 1999];
        for &w in &writers {
            let peer = fds[w ^ 1];
            assert_eq!(send(peer, b"!"), Ok(1));
        }
        let mut expected: Vec<usize> = writers.to_vec();
        expected.sort_unstable();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got: Vec<usize> = Vec::new();
        while got.len() < expected.len() && Instant::now() < deadline {
            poller.wait(&mut out, 100).expect("wait");
            got.extend(out.iter().filter(|r| r.readable).map(|r| r.token));
            got.sort_unstable();
            got.dedup();
        }
        assert_eq!(got, expected, "{backend:?}");
        // Delete half (swap_remove reshuffles the poll array), then check
        // the remaining ready ones still map to the right tokens.
        for &fd in fds.iter().step_by(2) {
            poller.delete(fd).expect("delete");
        }
        poller.wait(&mut out, SECOND).expect("wait");
        let mut odd: Vec<usize> = out.iter().map(|r| r.token).collect();
        odd.sort_unstable();
        assert_eq!(odd, vec![1, 777, 1999], "{backend:?}");
        fds.into_iter().for_each(close);
    }
}
