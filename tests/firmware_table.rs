//! The runtime over a socket table that is not made of kernel descriptors
//! (`kernel_fds == 0`, as lwIP's is): the libc calls wrapped so that the
//! test sees every socket the library creates and every poll it makes.
//!
//! What a firmware stack needs and this checks:
//! - nothing but the table's own open sockets ever enters its `poll` (lwIP
//!   fails the whole poll for one foreign or closed descriptor), so the
//!   loop's waker must be a table socket, not an eventfd;
//! - `loop_stop` from another thread wakes a loop blocked in `poll`;
//! - a connection closed from another thread while the loop polls is not
//!   closed under it (lwIP can hang), yet its socket is closed soon after;
//! - echo of small and large messages works;
//! - when the wake-up socket cannot be made (socket budget used up), the
//!   loop still runs and notices `loop_stop` within its tick;
//! - a poll that fails as lwIP's does (-1 for the whole set, POLLNVAL on
//!   the entry the stack no longer knows) costs that connection only.
//!
//! Its own test binary: a table is installed once per process.

mod common;
use common::recv;
use nopoll::net::{self, SocketOps};
use nopoll::runtime::{ConnectOptions, Context, LoopExit, Message};
use std::collections::HashSet;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Runs a binary echo server on `ctx`, its loop in a thread (stopped by
/// `loop_stop`, at most 60 s): the port and the loop's thread.
fn serve_echo(ctx: &Context) -> (String, std::thread::JoinHandle<LoopExit>) {
    let listener = ctx.listen("127.0.0.1", "0", false).unwrap();
    ctx.set_on_message(|_ctx, conn, msg: Message| {
        let _ = conn.send_binary(msg.payload());
    });
    let c = ctx.clone();
    let server = std::thread::spawn(move || c.loop_wait(Some(Duration::from_secs(60))));
    (listener.port().to_string(), server)
}

/// Sockets created through the table and not yet closed.
static OPEN: Mutex<Option<HashSet<c_int>>> = Mutex::new(None);
/// Descriptors that reached `poll` while not open table sockets.
static FOREIGN: Mutex<Vec<c_int>> = Mutex::new(Vec::new());
static TABLE: OnceLock<SocketOps> = OnceLock::new();

fn open_set<R>(f: impl FnOnce(&mut HashSet<c_int>) -> R) -> R {
    f(OPEN.lock().unwrap().get_or_insert_with(HashSet::new))
}

/// Refuse datagram sockets (a firmware socket budget used up).
static REFUSE_DGRAM: AtomicBool = AtomicBool::new(false);
static REFUSED: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn t_socket(d: c_int, t: c_int, p: c_int) -> c_int {
    if REFUSE_DGRAM.load(Ordering::SeqCst) && t == libc::SOCK_DGRAM {
        // SAFETY: sets this thread's errno.
        unsafe { *libc::__errno_location() = libc::ENFILE };
        REFUSED.fetch_add(1, Ordering::SeqCst);
        return -1;
    }
    // SAFETY: forwards the caller's arguments to the libc table.
    let fd = unsafe { (net::LIBC_OPS.socket)(d, t, p) };
    if fd >= 0 {
        open_set(|s| s.insert(fd));
    }
    fd
}

unsafe extern "C" fn t_accept(fd: c_int, a: *mut libc::sockaddr, l: *mut libc::socklen_t) -> c_int {
    // SAFETY: forwards the caller's arguments to the libc table.
    let new = unsafe { (net::LIBC_OPS.accept)(fd, a, l) };
    if new >= 0 {
        open_set(|s| s.insert(new));
    }
    new
}

unsafe extern "C" fn t_recv(fd: c_int, buf: *mut c_void, len: usize, flags: c_int) -> isize {
    if LWIP_POLL.load(Ordering::SeqCst) && !open_set(|s| s.contains(&fd)) {
        // SAFETY: sets this thread's errno.
        unsafe { *libc::__errno_location() = libc::EBADF };
        return -1;
    }
    // SAFETY: forwards the caller's arguments to the libc table.
    unsafe { (net::LIBC_OPS.recv)(fd, buf, len, flags) }
}

unsafe extern "C" fn t_close(fd: c_int) -> c_int {
    open_set(|s| s.remove(&fd));
    // SAFETY: forwards the caller's argument to the libc table.
    unsafe { (net::LIBC_OPS.close)(fd) }
}

/// Answer like lwIP's poll: -1 at once, with POLLNVAL on the first entry
/// that is not an open socket and errno untouched.
static LWIP_POLL: AtomicBool = AtomicBool::new(false);

unsafe extern "C" fn t_poll(fds: *mut libc::pollfd, n: libc::nfds_t, ms: c_int) -> c_int {
    if LWIP_POLL.load(Ordering::SeqCst) && n > 0 {
        // SAFETY: the library passes `n` live pollfds.
        let set = unsafe { std::slice::from_raw_parts_mut(fds, n as usize) };
        let open: HashSet<c_int> = open_set(|s| s.clone());
        if let Some(p) = set.iter_mut().find(|p| p.fd >= 0 && !open.contains(&p.fd)) {
            p.revents = libc::POLLNVAL;
            // SAFETY: sets this thread's errno to a value poll never leaves.
            unsafe { *libc::__errno_location() = libc::EAGAIN };
            return -1;
        }
    }
    // SAFETY: the library passes `n` live pollfds (or NULL with n == 0).
    let set = unsafe { std::slice::from_raw_parts(fds, n as usize) };
    let bad: Vec<c_int> = open_set(|s| {
        set.iter()
            .map(|p| p.fd)
            .filter(|fd| *fd >= 0 && !s.contains(fd))
            .collect()
    });
    FOREIGN.lock().unwrap().extend(bad);
    // SAFETY: forwards the caller's arguments to the libc table.
    unsafe { (net::LIBC_OPS.poll)(fds, n, ms) }
}

fn install() {
    let t = TABLE.get_or_init(|| SocketOps {
        kernel_fds: 0,
        socket: t_socket,
        accept: t_accept,
        close: t_close,
        recv: t_recv,
        poll: t_poll,
        ..net::LIBC_OPS
    });
    // Every test of this binary installs the same table; the first wins.
    net::install(t);
    assert_eq!(net::ops().kernel_fds, 0, "the wrapper table is in place");
}

fn foreign() -> Vec<c_int> {
    FOREIGN.lock().unwrap().clone()
}

#[test]
fn loop_over_a_non_kernel_table() {
    install();
    let ctx = Context::new().unwrap();
    assert_eq!(
        ctx.backend(),
        Some(net::Backend::Poll),
        "no epoll over a firmware table"
    );
    let (port, server) = serve_echo(&ctx);

    let cctx = Context::new().unwrap();
    let mut conns = Vec::new();
    for _ in 0..5 {
        let conn = cctx
            .connect(&ConnectOptions::new("127.0.0.1", &port))
            .unwrap();
        assert!(conn.wait_ready(Duration::from_secs(5)), "handshake");
        conns.push(conn);
    }
    for (i, conn) in conns.iter().enumerate() {
        let payload: Vec<u8> = (0..(1usize << (4 * i + 2)).min(65536))
            .map(|b| b as u8)
            .collect();
        conn.send_binary(&payload).unwrap();
        assert_eq!(
            recv(conn).payload(),
            &payload[..],
            "echo of {} bytes",
            payload.len()
        );
    }

    // Close server-side connections from this thread while the loop polls.
    std::thread::sleep(Duration::from_millis(50));
    let before = open_set(|s| s.len());
    let server_conns = ctx.connections();
    let mut closed = 0;
    for sc in server_conns
        .iter()
        .filter(|c| c.socket() >= 0 && c.role() != nopoll::runtime::ConnRole::Listener)
    {
        sc.close(Some(1000), b"bye");
        closed += 1;
    }
    assert!(closed >= 5, "closed {closed} server connections");
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_set(|s| s.len()) > before - closed && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        open_set(|s| s.len()),
        before - closed,
        "the loop closed them"
    );

    // Stop from another thread: the loop is blocked in poll (no timeout due).
    std::thread::sleep(Duration::from_millis(50));
    let t0 = Instant::now();
    ctx.loop_stop();
    assert_eq!(server.join().unwrap(), LoopExit::Stopped);
    // Bounds, not timings: unwoken, the loop would wait out its 60 s.
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        t0.elapsed()
    );
    assert_eq!(
        foreign(),
        Vec::<c_int>::new(),
        "non-table or closed fds reached poll"
    );

    // No socket left for the waker: the context still works, on a tick.
    REFUSE_DGRAM.store(true, Ordering::SeqCst);
    let ctx = Context::new().expect("a context without a wake-up socket");
    assert_eq!(
        REFUSED.load(Ordering::SeqCst),
        1,
        "its wake-up socket was refused"
    );
    let (port, server) = serve_echo(&ctx);
    let conn = cctx
        .connect(&ConnectOptions::new("127.0.0.1", &port))
        .unwrap();
    assert!(
        conn.wait_ready(Duration::from_secs(5)),
        "handshake on a tick loop"
    );
    conn.send_binary(b"tick").unwrap();
    assert_eq!(recv(&conn).payload(), b"tick");
    std::thread::sleep(Duration::from_millis(120));
    let t0 = Instant::now();
    ctx.loop_stop();
    assert_eq!(server.join().unwrap(), LoopExit::Stopped);
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "stop on a tick loop took {took:?}"
    );
    REFUSE_DGRAM.store(false, Ordering::SeqCst);
    assert_eq!(
        foreign(),
        Vec::<c_int>::new(),
        "non-table or closed fds reached poll"
    );

    // lwIP's poll fails as a whole (-1, POLLNVAL on that entry, errno
    // untouched) for one descriptor that is not its socket: such a socket
    // must cost its connection only, not the loop.
    LWIP_POLL.store(true, Ordering::SeqCst);
    let ctx = Context::new().unwrap();
    let (port, server) = serve_echo(&ctx);
    let a = cctx
        .connect(&ConnectOptions::new("127.0.0.1", &port))
        .unwrap();
    let b = cctx
        .connect(&ConnectOptions::new("127.0.0.1", &port))
        .unwrap();
    assert!(a.wait_ready(Duration::from_secs(5)) && b.wait_ready(Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(50));
    let victim = ctx
        .connections()
        .into_iter()
        .find(|c| c.role() != nopoll::runtime::ConnRole::Listener)
        .expect("a server-side connection");
    // The stack forgets the socket (as lwIP does for one closed under it):
    // poll and recv no longer know it.
    let fd = victim.socket();
    open_set(|s| s.remove(&fd));
    // The loop's next poll (woken now, before any data) meets it.
    ctx.waker().wake();
    std::thread::sleep(Duration::from_millis(50));
    a.send_binary(b"still").unwrap();
    b.send_binary(b"there").unwrap();
    let alive: Vec<_> = [&a, &b]
        .iter()
        .filter_map(|c| {
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline && c.is_ok() {
                if let Some(m) = c.get_msg() {
                    return Some(m.payload().to_vec());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            None
        })
        .collect();
    assert_eq!(alive.len(), 1, "the other connection is still served");
    assert!(
        !victim.is_ok(),
        "the connection whose socket vanished failed"
    );
    ctx.loop_stop();
    assert_eq!(
        server.join().unwrap(),
        LoopExit::Stopped,
        "the loop survived the failed poll"
    );
    LWIP_POLL.store(false, Ordering::SeqCst);
}
