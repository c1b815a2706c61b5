//! Readiness: one [`Poller`] per event loop (epoll on Linux, poll(2)
//! everywhere) and a [`Waker`] to interrupt its wait from any thread or a
//! signal handler.

#[allow(unused_imports)]
use crate::prelude::*;

use super::ops::{ops, preserving_errno};
use super::{NetError, NetResult, Socket};
#[cfg(feature = "std")]
use crate::platform::Map;
use crate::sync::Arc;
use crate::sys::{c_int, c_short, c_void};
use core::net::SocketAddr;

/// Most events one [`Poller::wait`] reports; the rest stay pending
/// (level-triggered) for the next call.
pub const MAX_EVENTS: usize = 256;

/// Token reserved for the poller's own waker registration.
const WAKER_TOKEN: usize = usize::MAX;

/// The thread's errno after a direct (non-table) libc call.
#[cfg(feature = "std")]
fn os_error() -> NetError {
    NetError(
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(crate::sys::EIO),
    )
}

/// Readiness mechanism of a [`Poller`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Linux epoll: O(1) per event, no descriptor limit.
    Epoll,
    /// poll(2) through the socket table: works everywhere, O(registered)
    /// per wait.
    Poll,
}

impl Backend {
    /// The best backend here: epoll on Linux with the libc table, else poll.
    pub fn best() -> Backend {
        // The epoll backend exists only with std.
        if cfg!(all(
            feature = "std",
            any(target_os = "linux", target_os = "android")
        )) && ops().kernel_fds != 0
        {
            Backend::Epoll
        } else {
            Backend::Poll
        }
    }
}

/// What a registration waits for. Hang-up and error are always reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interest {
    /// Wait for readability (and peer half-close).
    pub read: bool,
    /// Wait for writability.
    pub write: bool,
}

impl Interest {
    /// Only hang-up / error.
    pub const NONE: Interest = Interest {
        read: false,
        write: false,
    };
    /// Readable.
    pub const READ: Interest = Interest {
        read: true,
        write: false,
    };
    /// Writable.
    pub const WRITE: Interest = Interest {
        read: false,
        write: true,
    };
    /// Readable or writable.
    pub const BOTH: Interest = Interest {
        read: true,
        write: true,
    };
}

/// One ready registration, as reported by [`Poller::wait`].
#[derive(Clone, Copy, Debug)]
pub struct Ready {
    /// The token given at registration.
    pub token: usize,
    /// Data (or end of stream) can be read / a connection accepted.
    pub readable: bool,
    /// Data can be written.
    pub writable: bool,
    /// The peer closed (at least its sending side); reading gives EOF.
    pub hangup: bool,
    /// The socket is in error (or the descriptor is invalid: poll backend).
    pub error: bool,
}

/// The descriptors behind a [`Waker`], closed when the last user goes.
///
/// With the libc table (kernel descriptors) an eventfd on Linux, a pipe
/// elsewhere. With a firmware table (`kernel_fds == 0`, e.g. lwIP) nothing
/// but the table's own sockets may enter its `poll`, so the waker is a UDP
/// socket made through the table and connected to itself: a wake is one
/// datagram. Without std every table is treated as a firmware's (there is
/// no kernel eventfd or pipe to make, nor `write` to wake one).
#[derive(Debug)]
struct WakerFds {
    read: c_int,
    write: c_int,
    /// Made through the socket table (UDP), not a kernel eventfd/pipe.
    via_table: bool,
}

impl WakerFds {
    fn new() -> NetResult<WakerFds> {
        #[cfg(feature = "std")]
        if ops().kernel_fds != 0 {
            return WakerFds::new_kernel();
        }
        WakerFds::new_udp()
    }

    /// An eventfd on Linux, a pipe elsewhere.
    #[cfg(feature = "std")]
    fn new_kernel() -> NetResult<WakerFds> {
        #[cfg(all(feature = "std", any(target_os = "linux", target_os = "android")))]
        {
            // SAFETY: eventfd() takes plain integers.
            let fd = unsafe {
                crate::sys::eventfd(0, crate::sys::EFD_CLOEXEC | crate::sys::EFD_NONBLOCK)
            };
            if fd < 0 {
                return Err(os_error());
            }
            Ok(WakerFds {
                read: fd,
                write: fd,
                via_table: false,
            })
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            WakerFds::new_pipe()
        }
    }

    /// A non-blocking, close-on-exec pipe.
    #[cfg(feature = "std")]
    #[cfg_attr(any(target_os = "linux", target_os = "android"), allow(dead_code))]
    fn new_pipe() -> NetResult<WakerFds> {
        let mut fds: [c_int; 2] = [-1, -1];
        // SAFETY: fds is a live array of two c_ints, as pipe() requires.
        if unsafe { crate::sys::pipe(fds.as_mut_ptr()) } < 0 {
            return Err(os_error());
        }
        let pair = WakerFds {
            read: fds[0],
            write: fds[1],
            via_table: false,
        };
        for fd in fds {
            // SAFETY: fcntl on descriptors this function just created.
            let ok = unsafe {
                let fl = crate::sys::fcntl(fd, crate::sys::F_GETFL);
                let fd_fl = crate::sys::fcntl(fd, crate::sys::F_GETFD);
                fl >= 0
                    && fd_fl >= 0
                    && crate::sys::fcntl(fd, crate::sys::F_SETFL, fl | crate::sys::O_NONBLOCK) == 0
                    && crate::sys::fcntl(fd, crate::sys::F_SETFD, fd_fl | crate::sys::FD_CLOEXEC)
                        == 0
            };
            if !ok {
                return Err(os_error()); // `pair` closes both ends
            }
        }
        Ok(pair)
    }

    /// A non-blocking UDP socket bound to 127.0.0.1 and connected to
    /// itself, all through the socket table.
    fn new_udp() -> NetResult<WakerFds> {
        let t = ops();
        // SAFETY: socket() takes plain integers.
        let fd = unsafe { (t.socket)(crate::sys::AF_INET, crate::sys::SOCK_DGRAM, 0) };
        if fd < 0 {
            return Err(NetError::last());
        }
        let w = WakerFds {
            read: fd,
            write: fd,
            via_table: true,
        };
        let mut addr = super::Addr::from(SocketAddr::from(([127, 0, 0, 1], 0)));
        // SAFETY: the address is live and `socklen` bytes long.
        if unsafe { (t.bind)(fd, addr.as_ptr(), addr.socklen()) } != 0 {
            return Err(NetError::last()); // `w` closes the socket
        }
        let (sa, len) = addr.out_ptrs();
        // SAFETY: `sa`/`len` point into `addr`, live and sized for any address.
        if unsafe { (t.getsockname)(fd, sa, len) } != 0 {
            return Err(NetError::last());
        }
        // SAFETY: the address getsockname filled in, with its length.
        let ok = unsafe {
            (t.connect)(fd, addr.as_ptr(), addr.socklen()) == 0 && (t.set_nonblocking)(fd, 1) == 0
        };
        if !ok {
            return Err(NetError::last()); // `w` closes the socket
        }
        Ok(w)
    }

    /// Made through the socket table: always without std (no kernel
    /// descriptors), which spares firmware the other branches.
    fn via_table(&self) -> bool {
        !cfg!(feature = "std") || self.via_table
    }

    /// Empties the waker so the next wait blocks again.
    fn drain(&self) {
        if self.read < 0 {
            return;
        }
        // Written by the calls, never read: left uninitialised.
        let mut buf = core::mem::MaybeUninit::<[u8; 64]>::uninit();
        let (p, len) = (buf.as_mut_ptr().cast::<c_void>(), 64);
        loop {
            let n = if self.via_table() {
                // SAFETY: `p` is a live, writable 64-byte buffer.
                unsafe { (ops().recv)(self.read, p, len, 0) }
            } else {
                kernel_read(self.read, p, len)
            };
            // An eventfd reads 8 bytes at once; a pipe may need more reads;
            // a datagram socket gives one (short) datagram per call.
            if n <= 0 || (!self.via_table() && usize::try_from(n).map_or(true, |n| n < len)) {
                break;
            }
        }
    }
}

/// `read(2)` of up to `len` bytes to `buf`, which is writable for them.
#[cfg(feature = "std")]
fn kernel_read(fd: c_int, buf: *mut c_void, len: usize) -> isize {
    // SAFETY: the caller's buffer is live and writable for `len` bytes.
    unsafe { crate::sys::read(fd, buf, len) }
}

#[cfg(not(feature = "std"))]
fn kernel_read(_fd: c_int, _buf: *mut c_void, _len: usize) -> isize {
    -1
}

impl Drop for WakerFds {
    fn drop(&mut self) {
        if self.via_table() {
            if self.read >= 0 {
                // SAFETY: the socket is owned by this value alone.
                unsafe { (ops().close)(self.read) };
            }
        } else {
            #[cfg(feature = "std")]
            // SAFETY: these descriptors are owned by this value alone.
            unsafe {
                crate::sys::close(self.read);
                if self.write != self.read {
                    crate::sys::close(self.write);
                }
            }
        }
    }
}

/// Wakes a [`Poller`] blocked in [`wait`](Poller::wait) from any thread.
/// Clones share the descriptors, which stay open (and waking stays
/// harmless) until the last clone and the poller are gone.
#[derive(Clone, Debug)]
pub struct Waker {
    fds: Arc<WakerFds>,
}

impl Waker {
    /// Makes the poller's current or next wait return. Never blocks;
    /// several wakes before a wait count as one.
    pub fn wake(&self) {
        wake_raw(self.fds.write);
    }

    /// The descriptor [`wake_raw`] writes to, for C signal handlers. Valid
    /// while this waker (or a clone, or its poller) lives.
    pub fn raw_fd(&self) -> i32 {
        self.fds.write
    }
}

/// Wakes the poller whose [`Waker::raw_fd`] is `fd`: one 8-byte `write()`
/// (or, with a firmware table, one datagram sent through it), errors
/// ignored (a full buffer is already awake), `errno` preserved. With the
/// libc table it is safe to call from a signal handler. Negative `fd`:
/// no-op.
pub fn wake_raw(fd: i32) {
    if fd < 0 {
        return;
    }
    preserving_errno(|| {
        let one: u64 = 1;
        let p = core::ptr::addr_of!(one).cast::<c_void>();
        let n = core::mem::size_of::<u64>();
        // Without std every table is a firmware's (no kernel descriptors).
        if !cfg!(feature = "std") || ops().kernel_fds == 0 {
            // SAFETY: sends 8 bytes from a live u64 on a non-blocking socket.
            unsafe { (ops().send)(fd, p, n, 0) };
        } else {
            #[cfg(feature = "std")]
            // SAFETY: writes 8 bytes from a live u64; write() is
            // async-signal-safe and the fd is non-blocking.
            unsafe {
                crate::sys::write(fd, p, n)
            };
        }
    });
}

/// Readiness of many sockets, level-triggered, identified by caller-chosen
/// tokens (`usize::MAX` is reserved). Tokens are words, not `u64`: a
/// 64-bit token cost a Cortex-M3 two registers at every use.
pub struct Poller {
    fds: Arc<WakerFds>,
    imp: Imp,
    /// Tokens reported readable by every wait, whatever their sockets say
    /// (see [`Poller::hold`]).
    held: Vec<usize>,
}

enum Imp {
    #[cfg(all(feature = "std", any(target_os = "linux", target_os = "android")))]
    Epoll(epoll::Epoll),
    Poll(PollSet),
}

/// Longest wait of a poller without a wake-up socket (a firmware socket
/// budget used up): how late `loop_stop` from another thread is noticed.
pub const TICK_MS: i32 = 50;

impl Poller {
    /// A poller using `backend`: `Epoll` needs Linux and the libc table
    /// (else `ENOSYS`), `Poll` works everywhere. With a firmware table, if
    /// the wake-up socket cannot be made (socket budget exhausted), the
    /// poller does without: its waits last at most [`TICK_MS`].
    pub fn new(backend: Backend) -> NetResult<Poller> {
        let fds = match WakerFds::new() {
            Ok(f) => f,
            Err(_) if !cfg!(feature = "std") || ops().kernel_fds == 0 => WakerFds {
                read: -1,
                write: -1,
                via_table: true,
            },
            Err(e) => return Err(e),
        };
        let fds = Arc::new(fds);
        let imp = match backend {
            #[cfg(all(feature = "std", any(target_os = "linux", target_os = "android")))]
            Backend::Epoll if ops().kernel_fds != 0 => Imp::Epoll(epoll::Epoll::new(fds.read)?),
            Backend::Epoll => return Err(NetError(crate::sys::ENOSYS)),
            Backend::Poll => Imp::Poll(PollSet::new(fds.read)),
        };
        Ok(Poller {
            fds,
            imp,
            held: Vec::new(),
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        match self.imp {
            #[cfg(all(feature = "std", any(target_os = "linux", target_os = "android")))]
            Imp::Epoll(_) => Backend::Epoll,
            Imp::Poll(_) => Backend::Poll,
        }
    }

    fn check(&self, s: Socket, token: usize) -> NetResult<()> {
        if s < 0 {
            Err(NetError(crate::sys::EBADF))
        } else if token == WAKER_TOKEN || s == self.fds.read {
            Err(NetError(crate::sys::EINVAL))
        } else {
            Ok(())
        }
    }

    /// Registers `s` with `token`; registering an fd again replaces its
    /// token and interest. `EINVAL` for the reserved token `usize::MAX`.
    pub fn add(&mut self, s: Socket, token: usize, interest: Interest) -> NetResult<()> {
        self.check(s, token)?;
        match &mut self.imp {
            #[cfg(all(feature = "std", any(target_os = "linux", target_os = "android")))]
            Imp::Epoll(e) => e.add(s, token, interest),
            Imp::Poll(p) => {
                p.set(s, token, interest);
                Ok(())
            }
        }
    }

    /// Changes the token and interest of a registered `s` (`ENOENT` if it
    /// is not registered).
    pub fn modify(&mut self, s: Socket, token: usize, interest: Interest) -> NetResult<()> {
        self.check(s, token)?;
        match &mut self.imp {
            #[cfg(all(feature = "std", any(target_os = "linux", target_os = "android")))]
            Imp::Epoll(e) => e.modify(s, token, interest),
            Imp::Poll(p) => p.modify(s, token, interest),
        }
    }

    /// Unregisters `s`. Unknown and already-closed descriptors are fine
    /// (epoll drops closed ones by itself).
    pub fn delete(&mut self, s: Socket) -> NetResult<()> {
        if s < 0 || s == self.fds.read {
            return Ok(());
        }
        match &mut self.imp {
            #[cfg(all(feature = "std", any(target_os = "linux", target_os = "android")))]
            Imp::Epoll(e) => e.delete(s),
            Imp::Poll(p) => {
                p.delete(s);
                Ok(())
            }
        }
    }

    /// Holds `token` (`on`) or lets it go: a held token is reported
    /// readable by every wait, whatever its socket says, and waits do not
    /// block while any is held. For input buffered above the socket that
    /// readiness will not report (the rest of a TLS record).
    pub fn hold(&mut self, token: usize, on: bool) {
        match (self.held.iter().position(|&t| t == token), on) {
            (None, true) => self.held.push(token),
            (Some(i), false) => {
                self.held.swap_remove(i);
            }
            _ => {}
        }
    }

    /// Waits up to `timeout_ms` (-1: forever, 0: just check) and fills
    /// `out` (cleared first) with at most [`MAX_EVENTS`] ready
    /// registrations, and the held tokens (see [`Poller::hold`]); returns
    /// their count. A wake, a timeout or `EINTR` gives `Ok(0)` (wakes are
    /// drained and never reported).
    pub fn wait(&mut self, out: &mut Vec<Ready>, timeout_ms: i32) -> NetResult<usize> {
        out.clear();
        // Without a wake-up socket, wake-ups are noticed at the next tick.
        let timeout_ms = if !self.held.is_empty() {
            0
        } else if self.fds.read < 0 && timeout_ms as u32 > TICK_MS as u32 {
            // Negative (no timeout) or above a tick: one compare.
            TICK_MS
        } else {
            timeout_ms
        };
        let woken = match &mut self.imp {
            #[cfg(all(feature = "std", any(target_os = "linux", target_os = "android")))]
            Imp::Epoll(e) => e.wait(out, timeout_ms)?,
            Imp::Poll(p) => p.wait(out, timeout_ms)?,
        };
        if woken {
            self.fds.drain();
        }
        for &token in &self.held {
            match out.iter_mut().find(|r| r.token == token) {
                Some(r) => r.readable = true,
                None => out.push(Ready {
                    token,
                    readable: true,
                    writable: false,
                    hangup: false,
                    error: false,
                }),
            }
        }
        Ok(out.len())
    }

    /// A waker for this poller.
    pub fn waker(&self) -> Waker {
        Waker {
            fds: Arc::clone(&self.fds),
        }
    }
}

#[cfg(all(feature = "std", any(target_os = "linux", target_os = "android")))]
mod epoll {
    use super::{os_error, Interest, Ready, MAX_EVENTS, WAKER_TOKEN};
    use crate::net::{NetError, NetResult, Socket};
    use crate::sys::c_int;

    const IN: u32 = crate::sys::EPOLLIN as u32;
    const OUT: u32 = crate::sys::EPOLLOUT as u32;
    const RDHUP: u32 = crate::sys::EPOLLRDHUP as u32;
    const HUP: u32 = crate::sys::EPOLLHUP as u32;
    const ERR: u32 = crate::sys::EPOLLERR as u32;

    pub(super) struct Epoll {
        epfd: c_int,
        events: Vec<crate::sys::epoll_event>,
    }

    fn flags(i: Interest) -> u32 {
        // Peer half-close only matters while reading; asking for it
        // without read interest would spin (level-triggered).
        (if i.read { IN | RDHUP } else { 0 }) | (if i.write { OUT } else { 0 })
    }

    impl Epoll {
        pub(super) fn new(waker_fd: c_int) -> NetResult<Epoll> {
            // SAFETY: epoll_create1 takes a plain flag.
            let epfd = unsafe { crate::sys::epoll_create1(crate::sys::EPOLL_CLOEXEC) };
            if epfd < 0 {
                return Err(os_error());
            }
            let mut e = Epoll {
                epfd,
                events: vec![crate::sys::epoll_event { events: 0, u64: 0 }; MAX_EVENTS],
            };
            e.ctl(
                crate::sys::EPOLL_CTL_ADD,
                waker_fd,
                WAKER_TOKEN,
                Interest::READ,
            )?;
            Ok(e)
        }

        fn ctl(&mut self, op: c_int, s: Socket, token: usize, i: Interest) -> NetResult<()> {
            let mut ev = crate::sys::epoll_event {
                events: flags(i),
                u64: token as u64,
            };
            // SAFETY: ev is a live epoll_event; epfd is owned by self.
            if unsafe { crate::sys::epoll_ctl(self.epfd, op, s, &mut ev) } < 0 {
                return Err(os_error());
            }
            Ok(())
        }

        pub(super) fn add(&mut self, s: Socket, token: usize, i: Interest) -> NetResult<()> {
            match self.ctl(crate::sys::EPOLL_CTL_ADD, s, token, i) {
                Err(NetError(crate::sys::EEXIST)) => {
                    self.ctl(crate::sys::EPOLL_CTL_MOD, s, token, i)
                }
                r => r,
            }
        }

        pub(super) fn modify(&mut self, s: Socket, token: usize, i: Interest) -> NetResult<()> {
            self.ctl(crate::sys::EPOLL_CTL_MOD, s, token, i)
        }

        pub(super) fn delete(&mut self, s: Socket) -> NetResult<()> {
            match self.ctl(crate::sys::EPOLL_CTL_DEL, s, 0, Interest::NONE) {
                Err(NetError(crate::sys::EBADF | crate::sys::ENOENT | crate::sys::EPERM)) => Ok(()),
                r => r,
            }
        }

        /// Appends ready events to `out`; true if the waker fired.
        pub(super) fn wait(&mut self, out: &mut Vec<Ready>, timeout_ms: i32) -> NetResult<bool> {
            let max = c_int::try_from(self.events.len()).unwrap_or(c_int::MAX);
            // SAFETY: events has room for `max` entries; epfd is owned.
            let rc = unsafe {
                crate::sys::epoll_wait(self.epfd, self.events.as_mut_ptr(), max, timeout_ms.max(-1))
            };
            let n = match usize::try_from(rc) {
                Ok(n) => n.min(self.events.len()),
                Err(_) => {
                    let e = os_error();
                    return if e.interrupted() { Ok(false) } else { Err(e) };
                }
            };
            let mut woken = false;
            for ev in &self.events[..n] {
                let (token, bits) = (ev.u64 as usize, ev.events);
                if token == WAKER_TOKEN {
                    woken = true;
                    continue;
                }
                out.push(Ready {
                    token,
                    readable: bits & IN != 0,
                    writable: bits & OUT != 0,
                    hangup: bits & (HUP | RDHUP) != 0,
                    error: bits & ERR != 0,
                });
            }
            Ok(woken)
        }
    }

    impl Drop for Epoll {
        fn drop(&mut self) {
            // SAFETY: epfd is owned by self and closed exactly once.
            unsafe { crate::sys::close(self.epfd) };
        }
    }
}

/// POLLRDHUP where the kernel has it; a firmware stack's poll does not
/// (lwIP signals a peer's FIN as readable, and recv then returns 0).
fn poll_rdhup() -> c_short {
    #[cfg(all(feature = "std", any(target_os = "linux", target_os = "android")))]
    if ops().kernel_fds != 0 {
        return crate::sys::POLLRDHUP;
    }
    0
}

/// The poll(2) backend: a dense `pollfd` array plus parallel tokens and an
/// fd → index map (O(1) add/modify/delete via swap_remove).
struct PollSet {
    fds: Vec<crate::sys::pollfd>,
    tokens: Vec<usize>,
    /// fd -> index in `fds`, with std (a large set on Linux). Without std
    /// (a handful of sockets, and `Map` a vector searched linearly anyway)
    /// `fds` itself is searched: 0.2 KB less firmware.
    #[cfg(feature = "std")]
    index: Map<Socket, usize>,
    /// Where the next scan starts, so a flood of ready sockets beyond
    /// MAX_EVENTS cannot starve the ones at the end of the array.
    cursor: usize,
    /// [`poll_rdhup`], fixed at creation.
    rdhup: c_short,
}

fn poll_events(i: Interest, rdhup: c_short) -> c_short {
    (if i.read {
        crate::sys::POLLIN | rdhup
    } else {
        0
    }) | (if i.write { crate::sys::POLLOUT } else { 0 })
}

impl PollSet {
    /// [`poll_rdhup`]: a constant 0 without std (no kernel poll).
    fn rdhup(&self) -> c_short {
        if cfg!(feature = "std") {
            self.rdhup
        } else {
            0
        }
    }

    fn new(waker_fd: c_int) -> PollSet {
        let mut p = PollSet {
            fds: Vec::new(),
            tokens: Vec::new(),
            #[cfg(feature = "std")]
            index: Map::default(),
            cursor: 0,
            rdhup: poll_rdhup(),
        };
        if waker_fd >= 0 {
            p.set(waker_fd, WAKER_TOKEN, Interest::READ);
        }
        p
    }

    /// Where `s` is in `fds`.
    fn find(&self, s: Socket) -> Option<usize> {
        #[cfg(feature = "std")]
        return self.index.get(&s).copied();
        #[cfg(not(feature = "std"))]
        self.fds.iter().position(|p| p.fd == s)
    }

    fn set(&mut self, s: Socket, token: usize, i: Interest) {
        if self.modify(s, token, i).is_err() {
            #[cfg(feature = "std")]
            self.index.insert(s, self.fds.len());
            self.fds.push(crate::sys::pollfd {
                fd: s,
                events: poll_events(i, self.rdhup()),
                revents: 0,
            });
            self.tokens.push(token);
        }
    }

    fn modify(&mut self, s: Socket, token: usize, i: Interest) -> NetResult<()> {
        let idx = self.find(s).ok_or(NetError(crate::sys::ENOENT))?;
        let rdhup = self.rdhup();
        match (self.fds.get_mut(idx), self.tokens.get_mut(idx)) {
            (Some(p), Some(t)) => {
                p.events = poll_events(i, rdhup);
                *t = token;
                Ok(())
            }
            _ => Err(NetError(crate::sys::ENOENT)),
        }
    }

    fn delete(&mut self, s: Socket) {
        #[cfg(feature = "std")]
        let idx = self.index.remove(&s);
        #[cfg(not(feature = "std"))]
        let idx = self.find(s);
        let Some(idx) = idx.filter(|&i| i < self.fds.len()) else {
            return;
        };
        self.fds.swap_remove(idx);
        self.tokens.swap_remove(idx);
        #[cfg(feature = "std")]
        if let Some(moved) = self.fds.get(idx) {
            self.index.insert(moved.fd, idx);
        }
    }

    /// Appends ready events to `out`; true if the waker fired.
    fn wait(&mut self, out: &mut Vec<Ready>, timeout_ms: i32) -> NetResult<bool> {
        let nfds = crate::sys::nfds_t::try_from(self.fds.len())
            .map_err(|_| NetError(crate::sys::EINVAL))?;
        // An empty set is passed as NULL (lwIP rejects a non-NULL pointer
        // with no entries): the call is then a plain wait.
        let ptr = if self.fds.is_empty() {
            core::ptr::null_mut()
        } else {
            self.fds.as_mut_ptr()
        };
        // SAFETY: `ptr` is NULL with nfds 0, or a live array of `nfds` pollfds.
        let rc = unsafe { (ops().poll)(ptr, nfds, timeout_ms.max(-1)) };
        // lwIP's poll fails at once, with that entry's revents set to
        // POLLNVAL and errno untouched, when one descriptor in the set is
        // not an open socket: report it like Linux would (the owner sees
        // an error and unregisters it) instead of failing.
        if rc < 0
            && !self
                .fds
                .iter()
                .any(|p| p.revents & crate::sys::POLLNVAL != 0)
        {
            let e = NetError::last();
            return if e.interrupted() { Ok(false) } else { Err(e) };
        }
        if rc == 0 {
            return Ok(false); // timed out
        }
        // Every entry is looked at (poll costs as much already), from the
        // cursor on, round the end. Without std every ready entry is
        // reported at once (a firmware polls a handful of sockets, never
        // MAX_EVENTS): no cursor.
        let n = self.fds.len();
        let mut i = if cfg!(feature = "std") && self.cursor < n {
            self.cursor
        } else {
            0
        };
        let mut woken = false;
        for _ in 0..n {
            let (Some(p), Some(&token)) = (self.fds.get(i), self.tokens.get(i)) else {
                break;
            };
            let re = p.revents;
            if re != 0 {
                if token == WAKER_TOKEN {
                    woken = true;
                } else if cfg!(feature = "std") && out.len() >= MAX_EVENTS {
                    self.cursor = i;
                    break;
                } else {
                    out.push(Ready {
                        token,
                        readable: re & crate::sys::POLLIN != 0,
                        writable: re & crate::sys::POLLOUT != 0,
                        hangup: re & (crate::sys::POLLHUP | self.rdhup()) != 0,
                        error: re & (crate::sys::POLLERR | crate::sys::POLLNVAL) != 0,
                    });
                }
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
        Ok(woken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_waker_wakes_and_drains() {
        let fds = WakerFds::new_pipe().expect("pipe");
        for _ in 0..1000 {
            wake_raw(fds.write); // more than fits: must not block
        }
        let mut pfd = crate::sys::pollfd {
            fd: fds.read,
            events: crate::sys::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        assert_eq!(unsafe { crate::sys::poll(&mut pfd, 1, 1000) }, 1);
        fds.drain();
        pfd.revents = 0;
        // SAFETY: one live pollfd.
        assert_eq!(unsafe { crate::sys::poll(&mut pfd, 1, 0) }, 0, "drained");
    }

    #[test]
    fn poll_set_index_stays_consistent() {
        let mut p = PollSet::new(1000);
        for fd in 1001..1100 {
            p.set(fd, usize::try_from(fd).unwrap_or(0), Interest::READ);
        }
        for fd in (1001..1100).step_by(3) {
            p.delete(fd);
        }
        p.delete(5); // unknown: ignored
        assert!(p.modify(1001, 1, Interest::WRITE).is_err());
        assert!(p.modify(1002, 7, Interest::WRITE).is_ok());
        assert_eq!(p.fds.len(), p.tokens.len());
        assert_eq!(p.fds.len(), p.index.len());
        for (fd, &i) in &p.index {
            assert_eq!(p.fds[i].fd, *fd);
        }
        let i = p.index[&1002];
        assert_eq!((p.tokens[i], p.fds[i].events), (7, crate::sys::POLLOUT));
    }
}
