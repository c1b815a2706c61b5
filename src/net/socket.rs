//! Stream sockets: listen, connect, accept, I/O, options, addresses.

#[allow(unused_imports)]
use crate::prelude::*;

use super::addr::{resolve, socklen_of, try_each, Addr, Peer};
use super::ops::ops;
use super::{NetError, NetResult, Socket};
use crate::platform::Instant;
use crate::sys::{c_int, c_short};
use alloc::ffi::CString;
use core::net::{IpAddr, SocketAddr};

/// Most buffers one [`send_vectored`] call hands to `sendmsg`.
const MAX_IOV: usize = 64;

/// A socket closed on drop unless released with `into_raw`.
struct Owned(Socket);

impl Owned {
    fn into_raw(self) -> Socket {
        let s = self.0;
        core::mem::forget(self);
        s
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        close(self.0);
    }
}

/// `rc` when it is not negative, else the thread's socket error.
fn check(rc: c_int) -> NetResult<c_int> {
    if rc < 0 {
        Err(NetError::last())
    } else {
        Ok(rc)
    }
}

fn set_int_opt(s: Socket, level: c_int, name: c_int, value: c_int) -> NetResult<()> {
    // SAFETY: the value pointer refers to a live c_int of the given length.
    let rc = unsafe {
        (ops().setsockopt)(
            s,
            level,
            name,
            core::ptr::addr_of!(value).cast(),
            socklen_of::<c_int>(),
        )
    };
    check(rc).map(drop)
}

fn get_int_opt(s: Socket, level: c_int, name: c_int) -> NetResult<c_int> {
    let mut value: c_int = 0;
    let mut len = socklen_of::<c_int>();
    // SAFETY: value/len point to live locals; len gives value's size.
    let rc = unsafe {
        (ops().getsockopt)(
            s,
            level,
            name,
            core::ptr::addr_of_mut!(value).cast(),
            &mut len,
        )
    };
    check(rc).map(|_| value)
}

/// A new non-blocking TCP socket of `family` (close-on-exec via the table).
fn new_stream_socket(family: c_int) -> NetResult<Owned> {
    // SAFETY: socket() takes plain integers.
    let s = Owned(check(unsafe {
        (ops().socket)(family, crate::sys::SOCK_STREAM, 0)
    })?);
    if !set_blocking(s.0, false) {
        return Err(NetError::last());
    }
    Ok(s)
}

/// Creates a listening TCP socket on `host`:`port` (port "0" picks a free
/// one; read it back with [`local_addr`]). `v6` selects IPv6 (with
/// `IPV6_V6ONLY`) instead of IPv4; an empty host is the wildcard address.
/// The socket is non-blocking, close-on-exec, has `SO_REUSEADDR`, and (with
/// the libc table) is never one of fds 0..2. Tries each resolved address.
pub fn tcp_listen(host: &str, port: &str, v6: bool, backlog: i32) -> NetResult<Socket> {
    try_each(host, port, v6, true, &mut |sa, len| {
        listen_on(v6, sa, len, backlog)
    })
}

/// A listening socket bound to `sa` (`len` bytes, of the family `v6`
/// names: `try_each` gives only those).
fn listen_on(
    v6: bool,
    sa: *const crate::sys::sockaddr,
    len: crate::sys::socklen_t,
    backlog: i32,
) -> NetResult<Socket> {
    let family = if v6 {
        crate::sys::AF_INET6
    } else {
        crate::sys::AF_INET
    };
    let s = new_stream_socket(family)?;
    set_int_opt(s.0, crate::sys::SOL_SOCKET, crate::sys::SO_REUSEADDR, 1)?;
    if v6 {
        set_int_opt(s.0, crate::sys::IPPROTO_IPV6, crate::sys::IPV6_V6ONLY, 1)?;
    }
    // SAFETY: `sa` is getaddrinfo's address, valid for `len` bytes while
    // `try_each` runs this.
    check(unsafe { (ops().bind)(s.0, sa, len) })?;
    // SAFETY: listen() takes plain integers.
    check(unsafe { (ops().listen)(s.0, backlog) })?;
    Ok(s.into_raw())
}

/// Where a client socket is bound before connecting.
enum LocalBind {
    /// A local address (port 0).
    Addr(Addr),
    /// A network interface name (`SO_BINDTODEVICE`).
    Device(CString),
}

impl LocalBind {
    fn parse(iface: &str, v6: bool) -> NetResult<LocalBind> {
        let bare = iface
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(iface);
        match bare.parse::<IpAddr>() {
            Ok(ip) if ip.is_ipv6() != v6 => Err(NetError(crate::sys::EAFNOSUPPORT)),
            Ok(ip) => Ok(LocalBind::Addr(Addr::from(SocketAddr::new(ip, 0)))),
            Err(_) => CString::new(iface)
                .map(LocalBind::Device)
                .map_err(|_| NetError(crate::sys::EINVAL)),
        }
    }

    fn apply(&self, s: Socket) -> NetResult<()> {
        match self {
            LocalBind::Addr(a) => {
                // SAFETY: the address pointer is valid for socklen bytes.
                check(unsafe { (ops().bind)(s, a.as_ptr(), a.socklen()) }).map(drop)
            }
            LocalBind::Device(name) => bind_device(s, name),
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn bind_device(s: Socket, name: &CString) -> NetResult<()> {
    let bytes = name.as_bytes_with_nul();
    let len =
        crate::sys::socklen_t::try_from(bytes.len()).map_err(|_| NetError(crate::sys::EINVAL))?;
    // SAFETY: the value points to `len` readable bytes of the name.
    let rc = unsafe {
        (ops().setsockopt)(
            s,
            crate::sys::SOL_SOCKET,
            crate::sys::SO_BINDTODEVICE,
            bytes.as_ptr().cast(),
            len,
        )
    };
    check(rc).map(drop)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn bind_device(_s: Socket, _name: &CString) -> NetResult<()> {
    Err(NetError(crate::sys::EOPNOTSUPP))
}

/// Connects a TCP socket to `host`:`port` (IPv6 when `v6`), trying each
/// resolved address in turn within one overall budget of `timeout_ms`
/// (0: only a connection that completes at once succeeds). Each attempt is
/// a non-blocking connect, a poll for writability and an `SO_ERROR` check;
/// running out of time gives `ETIMEDOUT`, otherwise the last attempt's
/// error is returned.
///
/// `bind_iface` (`nopoll_conn_opts_set_interface`): a local IP address to
/// bind to before connecting, or else a network interface name bound with
/// `SO_BINDTODEVICE` (Linux; upstream nopoll's behaviour).
///
/// The returned socket is connected, non-blocking, close-on-exec and has
/// `TCP_NODELAY`.
pub fn tcp_connect(
    host: &str,
    port: &str,
    v6: bool,
    timeout_ms: u32,
    bind_iface: Option<&str>,
) -> NetResult<Socket> {
    let deadline = Instant::now().plus_ms(timeout_ms);
    let addrs = resolve(host, port, v6)?;
    let local = match bind_iface {
        Some(i) if !i.is_empty() => Some(LocalBind::parse(i, v6)?),
        _ => None,
    };
    let mut last = NetError(crate::sys::ETIMEDOUT);
    for a in &addrs {
        match connect_one(a, local.as_ref(), deadline) {
            Ok(s) => {
                // Best effort: a socket without it still works.
                let _ = set_nodelay(s, true);
                return Ok(s);
            }
            Err(e) => last = e,
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    Err(last)
}

fn connect_one(a: &Addr, local: Option<&LocalBind>, deadline: Instant) -> NetResult<Socket> {
    let s = new_stream_socket(a.family())?;
    if let Some(l) = local {
        l.apply(s.0)?;
    }
    // SAFETY: the address pointer is valid for socklen bytes while `a` lives.
    let rc = unsafe { (ops().connect)(s.0, a.as_ptr(), a.socklen()) };
    if rc < 0 {
        let e = NetError::last();
        // A non-blocking connect interrupted by a signal still proceeds.
        if !(e.in_progress() || e.would_block() || e.interrupted()) {
            return Err(e);
        }
        let (_, writable) = wait_fd(s.0, false, true, millis_until(deadline))?;
        if !writable {
            return Err(NetError(crate::sys::ETIMEDOUT));
        }
        match get_int_opt(s.0, crate::sys::SOL_SOCKET, crate::sys::SO_ERROR)? {
            0 => {}
            err => return Err(NetError(err)),
        }
    }
    Ok(s.into_raw())
}

/// Milliseconds from now until `deadline`, rounded up, as a poll timeout.
fn millis_until(deadline: Instant) -> i32 {
    Instant::now().wait_ms(deadline)
}

/// Accepts one connection: `Ok(None)` when none is pending on a
/// non-blocking listener (blocks on a blocking one). The new socket is
/// non-blocking, close-on-exec and has `TCP_NODELAY`. `EINTR` and
/// connections aborted before they were accepted are retried.
pub fn accept(listener: Socket) -> NetResult<Option<Socket>> {
    loop {
        // SAFETY: null address/length pointers are allowed by accept().
        let s = unsafe { (ops().accept)(listener, core::ptr::null_mut(), core::ptr::null_mut()) };
        if s >= 0 {
            // Best effort: fails harmlessly on non-TCP sockets.
            let _ = set_nodelay(s, true);
            return Ok(Some(s));
        }
        let e = NetError::last();
        if e.would_block() {
            return Ok(None);
        }
        if !(e.interrupted() || e.0 == crate::sys::ECONNABORTED || e.0 == crate::sys::EPROTO) {
            return Err(e);
        }
    }
}

/// As [`accept`], also giving the peer's address, taken from the accept
/// call itself (no `getpeername` afterwards).
pub fn accept_with_peer(listener: Socket) -> NetResult<Option<(Socket, Option<Peer>)>> {
    loop {
        let mut a = Addr::empty();
        let (sa, len) = a.out_ptrs();
        // SAFETY: sa/len point into `a`, len holding the storage size.
        let s = unsafe { (ops().accept)(listener, sa, len) };
        if s >= 0 {
            // Best effort: fails harmlessly on non-TCP sockets.
            let _ = set_nodelay(s, true);
            return Ok(Some((s, a.peer())));
        }
        let e = NetError::last();
        if e.would_block() {
            return Ok(None);
        }
        if !(e.interrupted() || e.0 == crate::sys::ECONNABORTED || e.0 == crate::sys::EPROTO) {
            return Err(e);
        }
    }
}

/// Receives into `buf`: `Ok(0)` is end of stream (or an empty `buf`);
/// would-block is `Err(e)` with `e.would_block()`. `EINTR` is retried.
pub fn recv(s: Socket, buf: &mut [u8]) -> NetResult<usize> {
    recv_flags(s, buf, 0)
}

/// As [`recv`], never waiting (`MSG_DONTWAIT`), even on a blocking
/// socket: `EAGAIN` when nothing is there. `None` under an installed
/// table (a firmware stack's flags are its own): the caller does without.
#[cfg(feature = "std")]
pub fn recv_nowait(s: Socket, buf: &mut [u8]) -> Option<NetResult<usize>> {
    if !core::ptr::eq(ops(), &super::LIBC_OPS) {
        return None;
    }
    Some(recv_flags(s, buf, crate::sys::MSG_DONTWAIT))
}

fn recv_flags(s: Socket, buf: &mut [u8], flags: c_int) -> NetResult<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    loop {
        // SAFETY: buf is a live, writable slice of buf.len() bytes.
        let n = unsafe { (ops().recv)(s, buf.as_mut_ptr().cast(), buf.len(), flags) };
        match usize::try_from(n) {
            Ok(n) => return Ok(n.min(buf.len())),
            Err(_) => {
                let e = NetError::last();
                if !e.interrupted() {
                    return Err(e);
                }
            }
        }
    }
}

/// Sends from `buf`, returning how much the kernel took. Never raises
/// SIGPIPE (a closed peer gives `EPIPE`); `EINTR` is retried.
pub fn send(s: Socket, buf: &[u8]) -> NetResult<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    loop {
        // SAFETY: buf is a live, readable slice of buf.len() bytes.
        let n = unsafe { (ops().send)(s, buf.as_ptr().cast(), buf.len(), 0) };
        match usize::try_from(n) {
            Ok(n) => return Ok(n.min(buf.len())),
            Err(_) => {
                let e = NetError::last();
                if !e.interrupted() {
                    return Err(e);
                }
            }
        }
    }
}

/// Sends the buffers in order with one `sendmsg` (at most 64 non-empty
/// buffers per call; the rest are left for the next call), returning the
/// total bytes taken. Never raises SIGPIPE; `EINTR` is retried. Falls back
/// to [`send`] of the first buffer when the table has no `sendmsg`.
pub fn send_vectored(s: Socket, bufs: &[&[u8]]) -> NetResult<usize> {
    let mut iov = [crate::sys::iovec {
        iov_base: core::ptr::null_mut(),
        iov_len: 0,
    }; MAX_IOV];
    let mut count = 0;
    for b in bufs.iter().filter(|b| !b.is_empty()).take(MAX_IOV) {
        iov[count] = crate::sys::iovec {
            iov_base: b.as_ptr().cast_mut().cast(),
            iov_len: b.len(),
        };
        count += 1;
    }
    send_iov(s, &mut iov[..count])
}

/// [`send_vectored`] of two buffers (a frame's header and payload), without
/// the general version's 64-entry array.
pub(crate) fn send_pair(s: Socket, head: &[u8], data: &[u8]) -> NetResult<usize> {
    let iov = |b: &[u8]| crate::sys::iovec {
        iov_base: b.as_ptr().cast_mut().cast(),
        iov_len: b.len(),
    };
    let mut pair = [iov(head), iov(data)];
    let from = usize::from(head.is_empty());
    let to = if data.is_empty() { 1 } else { 2 };
    send_iov(s, pair.get_mut(from..to).unwrap_or_default())
}

/// One `sendmsg` of `iov` (non-empty buffers), or [`send`] of the first
/// when the table has none.
fn send_iov(s: Socket, iov: &mut [crate::sys::iovec]) -> NetResult<usize> {
    let count = iov.len();
    let Some(first) = iov.first() else {
        return Ok(0);
    };
    let Some(sendmsg) = ops().sendmsg else {
        // SAFETY: the iovec describes a live slice of the caller's.
        let first = unsafe {
            core::slice::from_raw_parts(first.iov_base.cast::<u8>().cast_const(), first.iov_len)
        };
        return send(s, first);
    };
    // SAFETY: msghdr is plain C data; all-zero means no name, no control.
    let mut msg: crate::sys::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    // msg_iovlen is size_t on glibc but int on musl and the BSDs.
    #[allow(clippy::useless_conversion)]
    let iovlen = count.try_into().map_err(|_| NetError(crate::sys::EINVAL))?;
    msg.msg_iovlen = iovlen;
    let total: usize = iov.iter().map(|v| v.iov_len).sum();
    loop {
        // SAFETY: msg points to `count` iovecs that borrow live slices of
        // the caller's; sendmsg only reads them.
        let n = unsafe { sendmsg(s, &msg, 0) };
        match usize::try_from(n) {
            Ok(n) => return Ok(n.min(total)),
            Err(_) => {
                let e = NetError::last();
                if !e.interrupted() {
                    return Err(e);
                }
            }
        }
    }
}

/// Closes `s` (negative values are ignored). Not retried on `EINTR`: the
/// descriptor is gone either way.
pub fn close(s: Socket) {
    if s >= 0 {
        // SAFETY: close() takes a plain integer; a stale fd gives EBADF.
        unsafe { (ops().close)(s) };
    }
}

/// Shuts down the read and/or write side of `s` (neither: no-op).
pub fn shutdown(s: Socket, read: bool, write: bool) {
    let how = match (read, write) {
        (true, true) => crate::sys::SHUT_RDWR,
        (true, false) => crate::sys::SHUT_RD,
        (false, true) => crate::sys::SHUT_WR,
        (false, false) => return,
    };
    // SAFETY: shutdown() takes plain integers.
    unsafe { (ops().shutdown)(s, how) };
}

/// Makes `s` blocking or non-blocking; false on failure.
pub fn set_blocking(s: Socket, blocking: bool) -> bool {
    // SAFETY: takes plain integers.
    s >= 0 && unsafe { (ops().set_nonblocking)(s, c_int::from(!blocking)) } == 0
}

/// True if `s` is a valid descriptor in blocking mode.
pub fn is_blocking(s: Socket) -> bool {
    // SAFETY: takes a plain integer.
    s >= 0 && unsafe { (ops().get_nonblocking)(s) } == 0
}

/// Turns Nagle's algorithm off (`on = true`) or back on; false on failure.
pub fn set_nodelay(s: Socket, on: bool) -> bool {
    set_int_opt(
        s,
        crate::sys::IPPROTO_TCP,
        crate::sys::TCP_NODELAY,
        c_int::from(on),
    )
    .is_ok()
}

type NameFn =
    unsafe extern "C" fn(c_int, *mut crate::sys::sockaddr, *mut crate::sys::socklen_t) -> c_int;

/// Fills `a` with the address `f` (getsockname, getpeername) gives for
/// `s`; false if it gives none.
fn name_into(s: Socket, f: NameFn, a: &mut Addr) -> bool {
    let (sa, len) = a.out_ptrs();
    // SAFETY: sa/len point into `a`, len holding the storage size.
    s >= 0 && unsafe { f(s, sa, len) } >= 0
}

fn name_of(s: Socket, f: NameFn) -> Option<Addr> {
    let mut a = Addr::empty();
    name_into(s, f, &mut a).then_some(a)
}

/// The peer's numeric host (IPv6 without brackets) and port.
pub fn peer_addr(s: Socket) -> Option<(String, String)> {
    name_of(s, ops().getpeername)?.host_port()
}

/// The IP address `f` gives for `s` (read in place: an `Option<Addr>`
/// returned by [`name_of`] is a 136-byte copy on a 32-bit target).
fn peer_name(s: Socket, f: NameFn) -> Option<Peer> {
    let mut a = Addr::empty();
    if name_into(s, f, &mut a) {
        a.peer()
    } else {
        None
    }
}

/// The peer's address (its text made only when asked for).
pub fn peer_of(s: Socket) -> Option<Peer> {
    peer_name(s, ops().getpeername)
}

/// The local numeric host (IPv6 without brackets) and port.
pub fn local_addr(s: Socket) -> Option<(String, String)> {
    name_of(s, ops().getsockname)?.host_port()
}

/// The port a socket is bound to (what a listener on port 0 got), without
/// formatting its address.
pub fn local_port(s: Socket) -> Option<u16> {
    Some(peer_name(s, ops().getsockname)?.port)
}

/// True if `s` is an open socket.
pub fn is_socket(s: Socket) -> bool {
    s >= 0 && get_int_opt(s, crate::sys::SOL_SOCKET, crate::sys::SO_TYPE).is_ok()
}

/// True if `s` is a listening socket (`SO_ACCEPTCONN`).
pub fn is_listening(s: Socket) -> bool {
    s >= 0
        && get_int_opt(s, crate::sys::SOL_SOCKET, crate::sys::SO_ACCEPTCONN).is_ok_and(|v| v != 0)
}

/// Waits until `s` is readable (or hung up / in error) and/or writable, or
/// `timeout_ms` passes (-1 or any negative: forever). Returns
/// `(readable_or_hup, writable)`; `(false, false)` on timeout. Hang-up and
/// error conditions set every requested flag, so the caller's next call
/// reports the error. `EINTR` is retried with the remaining time (without
/// std, where a firmware stack has no signals to interrupt a wait, with
/// the whole timeout again: no clock read and deadline for it); an
/// invalid descriptor gives `EBADF`.
pub fn wait_fd(s: Socket, read: bool, write: bool, timeout_ms: i32) -> NetResult<(bool, bool)> {
    if s < 0 {
        return Err(NetError(crate::sys::EBADF));
    }
    let mut events: c_short = 0;
    if read {
        events |= crate::sys::POLLIN;
    }
    if write {
        events |= crate::sys::POLLOUT;
    }
    #[cfg(feature = "std")]
    let deadline = u32::try_from(timeout_ms)
        .ok()
        .map(|ms| Instant::now().plus_ms(ms));
    loop {
        let mut pfd = crate::sys::pollfd {
            fd: s,
            events,
            revents: 0,
        };
        #[cfg(feature = "std")]
        let timeout = deadline.map_or(-1, millis_until);
        #[cfg(not(feature = "std"))]
        let timeout = timeout_ms;
        // SAFETY: pfd is one live pollfd; nfds is 1.
        let rc = unsafe { (ops().poll)(&mut pfd, 1, timeout) };
        if rc < 0 {
            let e = NetError::last();
            if e.interrupted() {
                continue;
            }
            return Err(e);
        }
        if rc == 0 {
            return Ok((false, false));
        }
        let re = pfd.revents;
        if re & crate::sys::POLLNVAL != 0 {
            return Err(NetError(crate::sys::EBADF));
        }
        // Hang-up or error: every requested flag.
        let got = if re & (crate::sys::POLLHUP | crate::sys::POLLERR) != 0 {
            events
        } else {
            re & events
        };
        return Ok((
            got & crate::sys::POLLIN != 0,
            got & crate::sys::POLLOUT != 0,
        ));
    }
}

/// Waits `ms` milliseconds in the table's `poll` with no sockets (how a
/// firmware build sleeps). False if the table's poll failed at once.
#[cfg(not(feature = "std"))]
pub(crate) fn idle_wait(ms: i32) -> bool {
    // SAFETY: poll with no descriptors only waits.
    unsafe { (ops().poll)(core::ptr::null_mut(), 0, ms) >= 0 }
}
