//! The C types, socket structures, constants, `errno` values and the few
//! C functions the crate uses: every `sys::` name in the crate comes from
//! here.
//!
//! - Hosted targets: the `libc` crate's, re-exported.
//! - Bare-metal targets (`target_os = "none"`: Cortex-M/R firmware), where
//!   `libc` defines nothing: the crate's own definitions in [`bare`].
//!
//! # The numbers a firmware socket table receives and returns
//!
//! On bare metal the library speaks the **Linux ABI** (the generic numbering
//! of x86_64/Arm Linux with glibc): the socket levels, option names, flags,
//! `poll` events, address families and `sockaddr` layouts it passes to the
//! firmware's [`SocketOps`](crate::net::SocketOps) table, and the `errno`
//! and `EAI_*` values it expects back from it, are those listed in [`bare`].
//! They are exactly the `NL_LIB_*` defaults of
//! `c-examples/lwip/nopoll_lwip.c`, the translation point of a port: its
//! table maps each of them to the lwIP headers' numbers (`SOL_SOCKET` is
//! 0xfff there, `POLLOUT` 0x2, `sockaddr` starts with a length byte...) and
//! maps lwIP's or newlib's `errno` values back (newlib's `EINPROGRESS` is
//! 119, Linux's 115). A unit test checks on Linux that every number and
//! layout here equals `libc`'s.
//!
//! `struct timeval` (only `nopoll_timeval_substract` and the default clock,
//! `gettimeofday`, use it) has newlib's layout: a 64-bit `time_t` and a
//! `long` microsecond count.

#[cfg(not(target_os = "none"))]
pub use libc::*;

#[cfg(target_os = "none")]
pub use bare::*;

/// Definitions for targets without an operating system (see the module
/// documentation). Compiled on every target so that the hosted tests can
/// compare them with `libc`'s.
#[allow(non_camel_case_types, dead_code, missing_docs)]
pub mod bare {
    pub use core::ffi::{c_char, c_int, c_long, c_short, c_uint, c_ulong, c_void};

    pub type size_t = usize;
    pub type ssize_t = isize;
    pub type socklen_t = u32;
    pub type sa_family_t = u16;
    pub type in_port_t = u16;
    /// Linux's `unsigned long` (lwIP's `unsigned int`: the same on 32 bits).
    pub type nfds_t = c_ulong;
    /// newlib's (64-bit since newlib 3).
    pub type time_t = i64;
    pub type suseconds_t = c_long;

    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct timeval {
        pub tv_sec: time_t,
        pub tv_usec: suseconds_t,
    }

    /// Generic address: a 16-bit family in host order, then 14 bytes.
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct sockaddr {
        pub sa_family: sa_family_t,
        pub sa_data: [c_char; 14],
    }

    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct in_addr {
        /// Network byte order.
        pub s_addr: u32,
    }

    /// IPv4 address: family at 0, port (network order) at 2, address at 4;
    /// 16 bytes.
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct sockaddr_in {
        pub sin_family: sa_family_t,
        pub sin_port: in_port_t,
        pub sin_addr: in_addr,
        pub sin_zero: [u8; 8],
    }

    #[repr(C, align(4))]
    #[derive(Clone, Copy)]
    pub struct in6_addr {
        pub s6_addr: [u8; 16],
    }

    /// IPv6 address: family at 0, port at 2, flowinfo at 4, address at 8,
    /// scope id at 24; 28 bytes.
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct sockaddr_in6 {
        pub sin6_family: sa_family_t,
        pub sin6_port: in_port_t,
        pub sin6_flowinfo: u32,
        pub sin6_addr: in6_addr,
        pub sin6_scope_id: u32,
    }

    /// Room for any address: 128 bytes, 8-aligned, the family first.
    #[repr(C, align(8))]
    #[derive(Clone, Copy)]
    pub struct sockaddr_storage {
        pub ss_family: sa_family_t,
        pub __ss_pad: [u8; 126],
    }

    /// The same field order as glibc's and lwIP's.
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct addrinfo {
        pub ai_flags: c_int,
        pub ai_family: c_int,
        pub ai_socktype: c_int,
        pub ai_protocol: c_int,
        pub ai_addrlen: socklen_t,
        pub ai_addr: *mut sockaddr,
        pub ai_canonname: *mut c_char,
        pub ai_next: *mut addrinfo,
    }

    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct iovec {
        pub iov_base: *mut c_void,
        pub iov_len: size_t,
    }

    /// Linux's layout (`msg_iovlen` and `msg_controllen` are `size_t`;
    /// lwIP's are `int`: the same on 32 bits). The library only fills
    /// `msg_iov` and `msg_iovlen`; the rest is zero.
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct msghdr {
        pub msg_name: *mut c_void,
        pub msg_namelen: socklen_t,
        pub msg_iov: *mut iovec,
        pub msg_iovlen: size_t,
        pub msg_control: *mut c_void,
        pub msg_controllen: size_t,
        pub msg_flags: c_int,
    }

    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct pollfd {
        pub fd: c_int,
        pub events: c_short,
        pub revents: c_short,
    }

    // Address families, socket types and their flag bits, protocols.
    pub const AF_UNSPEC: c_int = 0;
    pub const AF_UNIX: c_int = 1;
    pub const AF_INET: c_int = 2;
    pub const AF_INET6: c_int = 10;
    pub const SOCK_STREAM: c_int = 1;
    pub const SOCK_DGRAM: c_int = 2;
    pub const SOCK_NONBLOCK: c_int = 0x800;
    pub const SOCK_CLOEXEC: c_int = 0x80000;
    pub const IPPROTO_IP: c_int = 0;
    pub const IPPROTO_TCP: c_int = 6;
    pub const IPPROTO_UDP: c_int = 17;
    pub const IPPROTO_IPV6: c_int = 41;

    // setsockopt/getsockopt levels and names.
    pub const SOL_SOCKET: c_int = 1;
    pub const SO_REUSEADDR: c_int = 2;
    pub const SO_TYPE: c_int = 3;
    pub const SO_ERROR: c_int = 4;
    pub const SO_SNDBUF: c_int = 7;
    pub const SO_RCVBUF: c_int = 8;
    pub const SO_KEEPALIVE: c_int = 9;
    pub const SO_LINGER: c_int = 13;
    pub const SO_RCVTIMEO: c_int = 20;
    pub const SO_SNDTIMEO: c_int = 21;
    pub const SO_BINDTODEVICE: c_int = 25;
    pub const SO_ACCEPTCONN: c_int = 30;
    pub const IPV6_V6ONLY: c_int = 26;
    pub const TCP_NODELAY: c_int = 1;

    // shutdown, send/recv flags.
    pub const SHUT_RD: c_int = 0;
    pub const SHUT_WR: c_int = 1;
    pub const SHUT_RDWR: c_int = 2;
    pub const MSG_PEEK: c_int = 0x2;
    pub const MSG_DONTWAIT: c_int = 0x40;
    pub const MSG_NOSIGNAL: c_int = 0x4000;

    // poll events.
    pub const POLLIN: c_short = 0x1;
    pub const POLLPRI: c_short = 0x2;
    pub const POLLOUT: c_short = 0x4;
    pub const POLLERR: c_short = 0x8;
    pub const POLLHUP: c_short = 0x10;
    pub const POLLNVAL: c_short = 0x20;
    pub const POLLRDHUP: c_short = 0x2000;

    // getaddrinfo flags and results.
    pub const AI_PASSIVE: c_int = 0x1;
    pub const AI_CANONNAME: c_int = 0x2;
    pub const AI_NUMERICHOST: c_int = 0x4;
    pub const EAI_BADFLAGS: c_int = -1;
    pub const EAI_NONAME: c_int = -2;
    pub const EAI_AGAIN: c_int = -3;
    pub const EAI_FAIL: c_int = -4;
    pub const EAI_FAMILY: c_int = -6;
    pub const EAI_SOCKTYPE: c_int = -7;
    pub const EAI_SERVICE: c_int = -8;
    pub const EAI_MEMORY: c_int = -10;
    pub const EAI_SYSTEM: c_int = -11;

    // errno values.
    pub const EPERM: c_int = 1;
    pub const ENOENT: c_int = 2;
    pub const EINTR: c_int = 4;
    pub const EIO: c_int = 5;
    pub const ENXIO: c_int = 6;
    pub const EBADF: c_int = 9;
    pub const EAGAIN: c_int = 11;
    pub const EWOULDBLOCK: c_int = EAGAIN;
    pub const ENOMEM: c_int = 12;
    pub const EEXIST: c_int = 17;
    pub const ENFILE: c_int = 23;
    pub const EMFILE: c_int = 24;
    pub const EINVAL: c_int = 22;
    pub const EPIPE: c_int = 32;
    pub const ENOSYS: c_int = 38;
    pub const EPROTO: c_int = 71;
    pub const EOPNOTSUPP: c_int = 95;
    pub const EAFNOSUPPORT: c_int = 97;
    pub const EADDRINUSE: c_int = 98;
    pub const EADDRNOTAVAIL: c_int = 99;
    pub const ENETUNREACH: c_int = 101;
    pub const ECONNABORTED: c_int = 103;
    pub const ECONNRESET: c_int = 104;
    pub const ENOBUFS: c_int = 105;
    pub const ENOTCONN: c_int = 107;
    pub const ETIMEDOUT: c_int = 110;
    pub const ECONNREFUSED: c_int = 111;
    pub const EHOSTUNREACH: c_int = 113;
    pub const EALREADY: c_int = 114;
    pub const EINPROGRESS: c_int = 115;

    // The C library functions the no_std build calls (newlib has them all;
    // tests/nostd/symbols.sh keeps the list closed).
    extern "C" {
        pub fn malloc(size: size_t) -> *mut c_void;
        pub fn calloc(count: size_t, size: size_t) -> *mut c_void;
        pub fn realloc(ptr: *mut c_void, size: size_t) -> *mut c_void;
        pub fn free(ptr: *mut c_void);
        pub fn abort() -> !;
        pub fn strlen(s: *const c_char) -> size_t;
        pub fn rand() -> c_int;
        pub fn gettimeofday(tv: *mut timeval, tz: *mut c_void) -> c_int;
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::bare;
    use core::mem::{align_of, offset_of, size_of};

    /// Every number a firmware table sees is Linux's: compare with libc.
    #[test]
    fn bare_numbers_are_linux() {
        macro_rules! same {
            ($($name:ident),* $(,)?) => {
                $(assert_eq!(bare::$name, libc::$name, stringify!($name));)*
            };
        }
        same!(
            AF_UNSPEC,
            AF_UNIX,
            AF_INET,
            AF_INET6,
            SOCK_STREAM,
            SOCK_DGRAM,
            SOCK_NONBLOCK,
            SOCK_CLOEXEC,
            IPPROTO_IP,
            IPPROTO_TCP,
            IPPROTO_UDP,
            IPPROTO_IPV6,
            SOL_SOCKET,
            SO_REUSEADDR,
            SO_TYPE,
            SO_ERROR,
            SO_SNDBUF,
            SO_RCVBUF,
            SO_KEEPALIVE,
            SO_LINGER,
            SO_RCVTIMEO,
            SO_SNDTIMEO,
            SO_BINDTODEVICE,
            SO_ACCEPTCONN,
            IPV6_V6ONLY,
            TCP_NODELAY,
            SHUT_RD,
            SHUT_WR,
            SHUT_RDWR,
            MSG_PEEK,
            MSG_DONTWAIT,
            MSG_NOSIGNAL,
            POLLIN,
            POLLPRI,
            POLLOUT,
            POLLERR,
            POLLHUP,
            POLLNVAL,
            POLLRDHUP,
            AI_PASSIVE,
            AI_CANONNAME,
            AI_NUMERICHOST,
            EAI_BADFLAGS,
            EAI_NONAME,
            EAI_AGAIN,
            EAI_FAIL,
            EAI_FAMILY,
            EAI_SOCKTYPE,
            EAI_SERVICE,
            EAI_MEMORY,
            EAI_SYSTEM,
            EPERM,
            ENOENT,
            EINTR,
            EIO,
            ENXIO,
            EBADF,
            EAGAIN,
            EWOULDBLOCK,
            ENOMEM,
            EEXIST,
            ENFILE,
            EMFILE,
            EINVAL,
            EPIPE,
            ENOSYS,
            EPROTO,
            EOPNOTSUPP,
            EAFNOSUPPORT,
            EADDRINUSE,
            EADDRNOTAVAIL,
            ENETUNREACH,
            ECONNABORTED,
            ECONNRESET,
            ENOBUFS,
            ENOTCONN,
            ETIMEDOUT,
            ECONNREFUSED,
            EHOSTUNREACH,
            EALREADY,
            EINPROGRESS,
        );
    }

    /// The structures a firmware table reads and fills have Linux's layout.
    #[test]
    fn bare_layouts_are_linux() {
        macro_rules! layout {
            ($ty:ident { $($field:ident),* }) => {
                assert_eq!(size_of::<bare::$ty>(), size_of::<libc::$ty>(), stringify!($ty));
                assert_eq!(align_of::<bare::$ty>(), align_of::<libc::$ty>(), stringify!($ty));
                $(assert_eq!(
                    offset_of!(bare::$ty, $field),
                    offset_of!(libc::$ty, $field),
                    concat!(stringify!($ty), ".", stringify!($field))
                );)*
            };
        }
        layout!(sockaddr { sa_family, sa_data });
        layout!(sockaddr_in {
            sin_family,
            sin_port,
            sin_addr,
            sin_zero
        });
        layout!(sockaddr_in6 {
            sin6_family,
            sin6_port,
            sin6_flowinfo,
            sin6_addr,
            sin6_scope_id
        });
        layout!(sockaddr_storage { ss_family });
        layout!(addrinfo {
            ai_flags,
            ai_family,
            ai_socktype,
            ai_protocol,
            ai_addrlen,
            ai_addr,
            ai_canonname,
            ai_next
        });
        layout!(iovec { iov_base, iov_len });
        layout!(msghdr {
            msg_name,
            msg_namelen,
            msg_iov,
            msg_iovlen,
            msg_control,
            msg_controllen,
            msg_flags
        });
        layout!(pollfd {
            fd,
            events,
            revents
        });
        // timeval is newlib's on bare metal (64-bit time_t): the same as
        // 64-bit Linux only.
        #[cfg(target_pointer_width = "64")]
        layout!(timeval { tv_sec, tv_usec });
    }
}
