//! The socket function table every socket call goes through, and its libc
//! implementation.
//!
//! The table is `#[repr(C)]` with C function pointers so that firmware can
//! fill one in from C (`lwip_socket`, `lwip_recv`, ...) and install it once
//! at start-up with [`install`]. Policy that only makes sense on POSIX
//! (close-on-exec, never handing out fds 0..2, no SIGPIPE) lives in the libc
//! wrappers below, so the generic code in `net` stays portable.

#[allow(unused_imports)]
use crate::prelude::*;

use crate::sync::atomic::{AtomicPtr, Ordering};
use crate::sys::{
    addrinfo, c_char, c_int, c_void, msghdr, nfds_t, pollfd, size_t, sockaddr, socklen_t, ssize_t,
};

/// A table of BSD-style socket functions. All of `net` calls sockets only
/// through the table returned by [`ops`].
///
/// Contract of each entry (the libc table meets it; a firmware table must):
/// functions return what their POSIX namesake returns (`-1` and the error in
/// [`get_errno`](SocketOps::get_errno) on failure) unless noted otherwise.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SocketOps {
    /// Non-zero: sockets are kernel file descriptors that epoll, eventfd and
    /// pipes can be mixed with (1 for the libc table, 0 for firmware stacks).
    /// The build without std makes no kernel descriptor whatever this says:
    /// it polls through the table and its waker is a UDP socket of the table.
    /// A C `int`, not `bool`, so the struct is C89.
    pub kernel_fds: c_int,
    /// `socket(domain, type, protocol)`; the new socket must be close-on-exec
    /// (where that exists) and must not raise SIGPIPE on send.
    pub socket: unsafe extern "C" fn(c_int, c_int, c_int) -> c_int,
    /// `bind(fd, addr, len)`.
    pub bind: unsafe extern "C" fn(c_int, *const sockaddr, socklen_t) -> c_int,
    /// `listen(fd, backlog)`.
    pub listen: unsafe extern "C" fn(c_int, c_int) -> c_int,
    /// `accept(fd, addr, len)`; the new socket must be non-blocking and
    /// close-on-exec (the libc table uses `accept4` where available).
    pub accept: unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int,
    /// `connect(fd, addr, len)`.
    pub connect: unsafe extern "C" fn(c_int, *const sockaddr, socklen_t) -> c_int,
    /// `recv(fd, buf, len, flags)`.
    pub recv: unsafe extern "C" fn(c_int, *mut c_void, size_t, c_int) -> ssize_t,
    /// `send(fd, buf, len, flags)`; must never raise SIGPIPE.
    pub send: unsafe extern "C" fn(c_int, *const c_void, size_t, c_int) -> ssize_t,
    /// `sendmsg(fd, msg, flags)` (only `msg_iov`/`msg_iovlen` are used); must
    /// never raise SIGPIPE. `None` (NULL in C): vectored sends use `send`.
    pub sendmsg: Option<unsafe extern "C" fn(c_int, *const msghdr, c_int) -> ssize_t>,
    /// `close(fd)`.
    pub close: unsafe extern "C" fn(c_int) -> c_int,
    /// `shutdown(fd, how)` with `SHUT_RD`/`SHUT_WR`/`SHUT_RDWR`.
    pub shutdown: unsafe extern "C" fn(c_int, c_int) -> c_int,
    /// `set_nonblocking(fd, on)`: 0 on success, -1 on failure.
    pub set_nonblocking: unsafe extern "C" fn(c_int, c_int) -> c_int,
    /// `get_nonblocking(fd)`: 1 non-blocking, 0 blocking, -1 on failure.
    pub get_nonblocking: unsafe extern "C" fn(c_int) -> c_int,
    /// `setsockopt(fd, level, name, value, len)`.
    pub setsockopt: unsafe extern "C" fn(c_int, c_int, c_int, *const c_void, socklen_t) -> c_int,
    /// `getsockopt(fd, level, name, value, len)`.
    pub getsockopt: unsafe extern "C" fn(c_int, c_int, c_int, *mut c_void, *mut socklen_t) -> c_int,
    /// `getpeername(fd, addr, len)`.
    pub getpeername: unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int,
    /// `getsockname(fd, addr, len)`.
    pub getsockname: unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int,
    /// `getaddrinfo(node, service, hints, res)`: 0 or an `EAI_*` code.
    pub getaddrinfo: unsafe extern "C" fn(
        *const c_char,
        *const c_char,
        *const addrinfo,
        *mut *mut addrinfo,
    ) -> c_int,
    /// `freeaddrinfo(res)` for lists returned by `getaddrinfo`.
    pub freeaddrinfo: unsafe extern "C" fn(*mut addrinfo),
    /// `poll(fds, nfds, timeout_ms)`.
    pub poll: unsafe extern "C" fn(*mut pollfd, nfds_t, c_int) -> c_int,
    /// The error of the last failed call on this thread (not named `errno`:
    /// that is a macro in C).
    pub get_errno: unsafe extern "C" fn() -> c_int,
    /// Sets the calling thread's `errno` (the C API reports some failures
    /// to its caller through `errno`, as upstream does). `None` (NULL in
    /// C): those calls leave `errno` alone.
    pub set_errno: Option<unsafe extern "C" fn(c_int)>,
}

/// The POSIX table: libc calls plus the policy wrappers in this file.
#[cfg(feature = "std")]
pub static LIBC_OPS: SocketOps = SocketOps {
    kernel_fds: 1,
    socket: libc_socket,
    bind: crate::sys::bind,
    listen: crate::sys::listen,
    accept: libc_accept,
    connect: crate::sys::connect,
    recv: crate::sys::recv,
    send: libc_send,
    sendmsg: Some(libc_sendmsg),
    close: crate::sys::close,
    shutdown: crate::sys::shutdown,
    set_nonblocking: libc_set_nonblocking,
    get_nonblocking: libc_get_nonblocking,
    setsockopt: crate::sys::setsockopt,
    getsockopt: crate::sys::getsockopt,
    getpeername: crate::sys::getpeername,
    getsockname: crate::sys::getsockname,
    getaddrinfo: crate::sys::getaddrinfo,
    freeaddrinfo: crate::sys::freeaddrinfo,
    poll: crate::sys::poll,
    get_errno: libc_errno,
    set_errno: Some(libc_set_errno),
};

static INSTALLED: AtomicPtr<SocketOps> = AtomicPtr::new(core::ptr::null_mut());

/// The table used when none was installed: [`LIBC_OPS`] with `std`; without
/// it, a table whose every call fails with `ENOSYS` (firmware must install
/// its own before using sockets).
#[cfg(feature = "std")]
const DEFAULT: &SocketOps = &LIBC_OPS;
#[cfg(not(feature = "std"))]
const DEFAULT: &SocketOps = &NO_OPS;

/// The installed table (the default unless [`install`] ran first).
#[inline]
pub fn ops() -> &'static SocketOps {
    let p = INSTALLED.load(Ordering::Acquire);
    if p.is_null() {
        return first_use();
    }
    // SAFETY: INSTALLED only ever holds pointers from `&'static SocketOps`.
    unsafe { &*p }
}

/// [`ops`] before any table is in place: puts the default there (unless
/// another thread installs one first). Out of line: every socket call
/// inlines `ops`, and this runs once.
#[cold]
#[inline(never)]
fn first_use() -> &'static SocketOps {
    let default = DEFAULT as *const SocketOps as *mut SocketOps;
    let p = match INSTALLED.compare_exchange(
        core::ptr::null_mut(),
        default,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => default,
        Err(winner) => winner,
    };
    // SAFETY: INSTALLED only ever holds pointers from `&'static SocketOps`.
    unsafe { &*p }
}

/// Installs `table` as the one every socket call goes through. Only the
/// first call before any socket use wins; returns false if a table (possibly
/// the default, on first use) is already in place.
pub fn install(table: &'static SocketOps) -> bool {
    INSTALLED
        .compare_exchange(
            core::ptr::null_mut(),
            table as *const SocketOps as *mut SocketOps,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_ok()
}

/// True once a table is in place (installed, or the default after a use).
pub fn installed() -> bool {
    !INSTALLED.load(Ordering::Acquire).is_null()
}

/// The calling thread's `errno`, read through the installed table.
pub(crate) fn last_errno() -> c_int {
    // SAFETY: the errno entry takes no arguments and only reads thread state.
    unsafe { (ops().get_errno)() }
}

#[cfg(feature = "std")]
#[cfg(not(target_vendor = "apple"))]
const SEND_FLAGS: c_int = crate::sys::MSG_NOSIGNAL;
#[cfg(feature = "std")]
#[cfg(target_vendor = "apple")]
const SEND_FLAGS: c_int = 0;

#[cfg(feature = "std")]
unsafe extern "C" fn libc_errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[cfg(feature = "std")]
/// Sets `FD_CLOEXEC` on `fd`; false on failure.
fn set_cloexec(fd: c_int) -> bool {
    // SAFETY: fcntl F_GETFD/F_SETFD only reads/writes descriptor flags of
    // `fd`; an invalid fd yields -1, never UB.
    unsafe {
        let flags = crate::sys::fcntl(fd, crate::sys::F_GETFD);
        flags >= 0
            && crate::sys::fcntl(fd, crate::sys::F_SETFD, flags | crate::sys::FD_CLOEXEC) == 0
    }
}

#[cfg(feature = "std")]
/// Per-socket setup that the platform needs at creation: close-on-exec where
/// the creating call could not set it, SO_NOSIGPIPE on Apple, and moving
/// the fd above stdin/stdout/stderr (upstream nopoll refuses fds 0..2).
/// Returns the (possibly new) fd, or -1 with errno set and `fd` closed.
/// Only async-signal-safe calls, so it can run in a forked child (tests).
fn finish_new_socket(fd: c_int, cloexec_done: bool) -> c_int {
    if fd < 0 {
        return fd;
    }
    if !cloexec_done && !set_cloexec(fd) {
        // SAFETY: closes the fd this function owns.
        unsafe { crate::sys::close(fd) };
        return -1;
    }
    #[cfg(target_vendor = "apple")]
    {
        let one: c_int = 1;
        // SAFETY: value points to a live c_int of the given size.
        unsafe {
            crate::sys::setsockopt(
                fd,
                crate::sys::SOL_SOCKET,
                crate::sys::SO_NOSIGPIPE,
                (&one as *const c_int).cast(),
                super::addr::socklen_of::<c_int>(),
            )
        };
    }
    if fd > 2 {
        return fd;
    }
    // SAFETY: F_DUPFD_CLOEXEC duplicates an fd we own to the lowest free
    // number >= 3 (sharing O_NONBLOCK); the original is then closed.
    unsafe {
        let moved = crate::sys::fcntl(fd, crate::sys::F_DUPFD_CLOEXEC, 3);
        let saved = libc_errno();
        crate::sys::close(fd);
        if moved < 0 {
            set_errno(saved);
        }
        moved
    }
}

#[cfg(feature = "std")]
#[cfg(feature = "std")]
unsafe extern "C" fn libc_set_errno(value: c_int) {
    set_errno(value);
}

/// Restores `errno` after a cleanup call (best effort; platforms whose errno
/// location libc does not expose keep the cleanup's value).
#[cfg(feature = "std")]
fn set_errno(value: c_int) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe {
        *crate::sys::__errno_location() = value
    };
    #[cfg(any(target_vendor = "apple", target_os = "freebsd"))]
    // SAFETY: __error returns this thread's errno slot.
    unsafe {
        *crate::sys::__error() = value
    };
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple",
        target_os = "freebsd"
    )))]
    let _ = value;
}

#[cfg(feature = "std")]
/// The calling thread's errno, saved and restored around `f` (for code that
/// may run in a signal handler).
pub(crate) fn preserving_errno(f: impl FnOnce()) {
    // SAFETY: libc_errno only reads thread-local state.
    let saved = unsafe { libc_errno() };
    f();
    set_errno(saved);
}

#[cfg(feature = "std")]
unsafe extern "C" fn libc_socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: plain syscall wrapper; SOCK_CLOEXEC is a valid type flag.
        let fd = unsafe { crate::sys::socket(domain, ty | crate::sys::SOCK_CLOEXEC, protocol) };
        finish_new_socket(fd, true)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        // SAFETY: plain syscall wrapper with integer arguments.
        let fd = unsafe { crate::sys::socket(domain, ty, protocol) };
        finish_new_socket(fd, false)
    }
}

#[cfg(feature = "std")]
unsafe extern "C" fn libc_accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: the caller passes `addr`/`len` valid for accept(2) (or null).
        let new = unsafe {
            crate::sys::accept4(
                fd,
                addr,
                len,
                crate::sys::SOCK_CLOEXEC | crate::sys::SOCK_NONBLOCK,
            )
        };
        finish_new_socket(new, true)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        // SAFETY: the caller passes `addr`/`len` valid for accept(2) (or null).
        let new = unsafe { crate::sys::accept(fd, addr, len) };
        // SAFETY: `new` is checked non-negative before use.
        if new >= 0 && unsafe { libc_set_nonblocking(new, 1) } != 0 {
            // SAFETY: closes the socket this function just accepted.
            unsafe { crate::sys::close(new) };
            return -1;
        }
        finish_new_socket(new, false)
    }
}

#[cfg(feature = "std")]
unsafe extern "C" fn libc_send(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
) -> ssize_t {
    // SAFETY: the caller guarantees `buf` is readable for `len` bytes.
    unsafe { crate::sys::send(fd, buf, len, flags | SEND_FLAGS) }
}

#[cfg(feature = "std")]
unsafe extern "C" fn libc_sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    // SAFETY: the caller guarantees `msg` and its iovecs are valid.
    unsafe { crate::sys::sendmsg(fd, msg, flags | SEND_FLAGS) }
}

#[cfg(feature = "std")]
unsafe extern "C" fn libc_set_nonblocking(fd: c_int, on: c_int) -> c_int {
    // SAFETY: fcntl F_GETFL/F_SETFL only touches status flags of `fd`.
    unsafe {
        let flags = crate::sys::fcntl(fd, crate::sys::F_GETFL);
        if flags < 0 {
            return -1;
        }
        let wanted = if on != 0 {
            flags | crate::sys::O_NONBLOCK
        } else {
            flags & !crate::sys::O_NONBLOCK
        };
        if wanted == flags || crate::sys::fcntl(fd, crate::sys::F_SETFL, wanted) == 0 {
            0
        } else {
            -1
        }
    }
}

#[cfg(feature = "std")]
unsafe extern "C" fn libc_get_nonblocking(fd: c_int) -> c_int {
    // SAFETY: fcntl F_GETFL only reads status flags of `fd`.
    let flags = unsafe { crate::sys::fcntl(fd, crate::sys::F_GETFL) };
    if flags < 0 {
        -1
    } else {
        c_int::from(flags & crate::sys::O_NONBLOCK != 0)
    }
}

/// Without std there is no errno to preserve portably (the firmware's wake
/// path is a table `send`, not a signal handler).
#[cfg(not(feature = "std"))]
pub(crate) fn preserving_errno(f: impl FnOnce()) {
    f();
}

/// The default table without std: every call fails with `ENOSYS` until the
/// firmware installs its own.
#[cfg(not(feature = "std"))]
pub static NO_OPS: SocketOps = {
    unsafe extern "C" fn fail3(_: c_int, _: c_int, _: c_int) -> c_int {
        -1
    }
    unsafe extern "C" fn fail_addr(_: c_int, _: *const sockaddr, _: socklen_t) -> c_int {
        -1
    }
    unsafe extern "C" fn fail_addr_out(_: c_int, _: *mut sockaddr, _: *mut socklen_t) -> c_int {
        -1
    }
    unsafe extern "C" fn fail2(_: c_int, _: c_int) -> c_int {
        -1
    }
    unsafe extern "C" fn fail1(_: c_int) -> c_int {
        -1
    }
    unsafe extern "C" fn fail_recv(_: c_int, _: *mut c_void, _: size_t, _: c_int) -> ssize_t {
        -1
    }
    unsafe extern "C" fn fail_send(_: c_int, _: *const c_void, _: size_t, _: c_int) -> ssize_t {
        -1
    }
    unsafe extern "C" fn fail_setopt(
        _: c_int,
        _: c_int,
        _: c_int,
        _: *const c_void,
        _: socklen_t,
    ) -> c_int {
        -1
    }
    unsafe extern "C" fn fail_getopt(
        _: c_int,
        _: c_int,
        _: c_int,
        _: *mut c_void,
        _: *mut socklen_t,
    ) -> c_int {
        -1
    }
    unsafe extern "C" fn fail_gai(
        _: *const c_char,
        _: *const c_char,
        _: *const addrinfo,
        _: *mut *mut addrinfo,
    ) -> c_int {
        crate::sys::EAI_FAIL
    }
    unsafe extern "C" fn no_free(_: *mut addrinfo) {}
    unsafe extern "C" fn fail_poll(_: *mut pollfd, _: nfds_t, _: c_int) -> c_int {
        -1
    }
    unsafe extern "C" fn enosys() -> c_int {
        crate::sys::ENOSYS
    }
    SocketOps {
        kernel_fds: 0,
        socket: fail3,
        bind: fail_addr,
        listen: fail2,
        accept: fail_addr_out,
        connect: fail_addr,
        recv: fail_recv,
        send: fail_send,
        sendmsg: None,
        close: fail1,
        shutdown: fail2,
        set_nonblocking: fail2,
        get_nonblocking: fail1,
        setsockopt: fail_setopt,
        getsockopt: fail_getopt,
        getpeername: fail_addr_out,
        getsockname: fail_addr_out,
        getaddrinfo: fail_gai,
        freeaddrinfo: no_free,
        poll: fail_poll,
        get_errno: enosys,
        set_errno: None,
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_after_use_is_refused() {
        // Whichever of these wins, the table in place is the libc one.
        let _ = ops();
        assert!(!install(&LIBC_OPS));
        assert!(core::ptr::eq(ops(), &LIBC_OPS));
    }

    #[test]
    fn socket_never_returns_stdio_fds() {
        // In a forked child (only async-signal-safe calls there), close
        // stdin so the lowest free fd is 0, then create a socket.
        // SAFETY: the child only calls close/socket/fcntl/_exit, all
        // async-signal-safe; the parent only waits for it.
        unsafe {
            let pid = crate::sys::fork();
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                crate::sys::close(0);
                let fd = libc_socket(crate::sys::AF_INET, crate::sys::SOCK_STREAM, 0);
                let cloexec =
                    crate::sys::fcntl(fd, crate::sys::F_GETFD) & crate::sys::FD_CLOEXEC != 0;
                let stdin_free = crate::sys::fcntl(0, crate::sys::F_GETFD) < 0;
                crate::sys::_exit(if fd > 2 && cloexec && stdin_free {
                    0
                } else {
                    1
                });
            }
            let mut status: c_int = 0;
            assert_eq!(crate::sys::waitpid(pid, &mut status, 0), pid);
            assert!(crate::sys::WIFEXITED(status), "child did not exit normally");
            assert_eq!(
                crate::sys::WEXITSTATUS(status),
                0,
                "socket() returned an fd in 0..2"
            );
        }
    }
}
