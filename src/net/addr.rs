//! Socket addresses: resolution through the table and numeric text.

#[allow(unused_imports)]
use crate::prelude::*;

use super::ops::{last_errno, ops};
use super::{NetError, NetResult};
use crate::protocol::text;
use crate::sys::{
    addrinfo, c_char, c_int, sockaddr, sockaddr_in, sockaddr_in6, sockaddr_storage, socklen_t,
};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use core::{fmt, mem, ptr};

/// A resolved socket address: `sockaddr_storage` plus its length, ready to
/// hand to `bind`/`connect`.
#[derive(Clone, Copy)]
pub struct Addr {
    storage: sockaddr_storage,
    len: socklen_t,
}

/// An IP socket address as a connection keeps it: its text (which needs
/// the address formatter) is made only when asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The address.
    pub ip: IpAddr,
    /// The port.
    pub port: u16,
    /// The IPv6 scope (interface) id; 0 for none.
    pub scope: u32,
}

impl Peer {
    /// Numeric host text: IPv6 without brackets, `%scope` appended for a
    /// scoped address.
    pub fn host(&self) -> String {
        let mut host = String::new();
        text::push_ip(&mut host, self.ip);
        if self.scope != 0 {
            text::push_ascii(&mut host, b"%");
            text::push_decimal(&mut host, u64::from(self.scope));
        }
        host
    }
}

/// `size_of::<T>()` as a `socklen_t` (socket structs are far below 4 GiB).
pub(crate) fn socklen_of<T>() -> socklen_t {
    socklen_t::try_from(mem::size_of::<T>()).unwrap_or(socklen_t::MAX)
}

impl Addr {
    /// An all-zero address whose length is the full storage size: the
    /// out-parameter for `getpeername`/`getsockname`/`accept`.
    pub(crate) fn empty() -> Addr {
        Addr {
            // SAFETY: sockaddr_storage is plain C data; all-zero is valid.
            storage: unsafe { mem::zeroed() },
            len: socklen_of::<sockaddr_storage>(),
        }
    }

    /// Pointers for a call that fills the address in (`getsockname`, ...).
    pub(crate) fn out_ptrs(&mut self) -> (*mut sockaddr, *mut socklen_t) {
        self.len = socklen_of::<sockaddr_storage>();
        (
            ptr::addr_of_mut!(self.storage).cast(),
            ptr::addr_of_mut!(self.len),
        )
    }

    /// The address family (`AF_INET`, `AF_INET6`, ...).
    pub fn family(&self) -> i32 {
        i32::from(self.storage.ss_family)
    }

    /// True for an IPv6 address.
    pub fn is_v6(&self) -> bool {
        self.family() == crate::sys::AF_INET6
    }

    /// Pointer to the `sockaddr`, valid for [`socklen`](Addr::socklen) bytes
    /// while `self` lives.
    pub fn as_ptr(&self) -> *const sockaddr {
        ptr::addr_of!(self.storage).cast()
    }

    /// Length of the `sockaddr` in bytes.
    pub fn socklen(&self) -> socklen_t {
        self.len
    }

    fn holds<T>(&self) -> bool {
        usize::try_from(self.len).is_ok_and(|l| l >= mem::size_of::<T>())
    }

    /// The address as a std `SocketAddr` (None for non-IP families).
    pub fn to_socket_addr(&self) -> Option<SocketAddr> {
        if self.family() == crate::sys::AF_INET && self.holds::<sockaddr_in>() {
            // SAFETY: the family says the storage holds a sockaddr_in and
            // the length covers it; storage is larger than sockaddr_in.
            let sin: sockaddr_in = unsafe { ptr::read_unaligned(self.as_ptr().cast()) };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        } else if self.is_v6() && self.holds::<sockaddr_in6>() {
            // SAFETY: as above, for sockaddr_in6.
            let sin6: sockaddr_in6 = unsafe { ptr::read_unaligned(self.as_ptr().cast()) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        } else {
            None
        }
    }

    /// The IP peer this address names (None for non-IP families), read
    /// from the C structure directly (no `SocketAddr` built on the way).
    pub fn peer(&self) -> Option<Peer> {
        if self.family() == crate::sys::AF_INET && self.holds::<sockaddr_in>() {
            // SAFETY: the family says the storage holds a sockaddr_in and
            // the length covers it; storage is larger than sockaddr_in.
            let sin: sockaddr_in = unsafe { ptr::read_unaligned(self.as_ptr().cast()) };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(Peer {
                ip: ip.into(),
                port: u16::from_be(sin.sin_port),
                scope: 0,
            })
        } else if self.is_v6() && self.holds::<sockaddr_in6>() {
            // SAFETY: as above, for sockaddr_in6.
            let sin6: sockaddr_in6 = unsafe { ptr::read_unaligned(self.as_ptr().cast()) };
            Some(Peer {
                ip: Ipv6Addr::from(sin6.sin6_addr.s6_addr).into(),
                port: u16::from_be(sin6.sin6_port),
                scope: sin6.sin6_scope_id,
            })
        } else {
            None
        }
    }

    /// Numeric host text (IPv6 without brackets, `%scope` appended for a
    /// scoped address) and port text; None for non-IP families.
    pub fn host_port(&self) -> Option<(String, String)> {
        let p = self.peer()?;
        Some((p.host(), text::decimal(u64::from(p.port))))
    }

    /// Copies `len` bytes of a sockaddr; None if it does not fit.
    fn from_raw(sa: *const sockaddr, len: socklen_t) -> Option<Addr> {
        let n = usize::try_from(len).ok()?;
        if sa.is_null() || n > mem::size_of::<sockaddr_storage>() {
            return None;
        }
        let mut addr = Addr::empty();
        // SAFETY: `sa` is non-null and readable for `n` bytes (getaddrinfo's
        // contract), and `n` fits in the destination storage.
        unsafe {
            ptr::copy_nonoverlapping(
                sa.cast::<u8>(),
                ptr::addr_of_mut!(addr.storage).cast::<u8>(),
                n,
            )
        };
        addr.len = len;
        Some(addr)
    }
}

impl From<SocketAddr> for Addr {
    fn from(sa: SocketAddr) -> Addr {
        let mut addr = Addr::empty();
        match sa {
            SocketAddr::V4(a) => {
                // SAFETY: sockaddr_in is plain C data; all-zero is valid.
                let mut sin: sockaddr_in = unsafe { mem::zeroed() };
                sin.sin_family = crate::sys::AF_INET as crate::sys::sa_family_t;
                sin.sin_port = a.port().to_be();
                sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
                // SAFETY: storage is larger than sockaddr_in; unaligned write.
                unsafe { ptr::write_unaligned(ptr::addr_of_mut!(addr.storage).cast(), sin) };
                addr.len = socklen_of::<sockaddr_in>();
            }
            SocketAddr::V6(a) => {
                // SAFETY: sockaddr_in6 is plain C data; all-zero is valid.
                let mut sin6: sockaddr_in6 = unsafe { mem::zeroed() };
                sin6.sin6_family = crate::sys::AF_INET6 as crate::sys::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_addr.s6_addr = a.ip().octets();
                sin6.sin6_flowinfo = a.flowinfo();
                sin6.sin6_scope_id = a.scope_id();
                // SAFETY: storage is larger than sockaddr_in6; unaligned write.
                unsafe { ptr::write_unaligned(ptr::addr_of_mut!(addr.storage).cast(), sin6) };
                addr.len = socklen_of::<sockaddr_in6>();
            }
        }
        addr
    }
}

impl fmt::Debug for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_socket_addr() {
            Some(sa) => write!(f, "Addr({sa})"),
            None => write!(f, "Addr(family {}, {} bytes)", self.family(), self.len),
        }
    }
}

/// Resolves `host` / `port` (numeric or names, through the table's
/// `getaddrinfo`) to TCP addresses: `v6 = false` gives IPv4 only, `true`
/// IPv6 only. `host` may be an IPv6 literal in brackets; an empty `host`
/// means loopback. Never returns an empty list.
///
/// Resolution failures map to errno values: unknown name / no address of
/// that family / temporary DNS failure → `ENXIO`, bad service or flags →
/// `EINVAL`, `EAI_FAMILY` → `EAFNOSUPPORT`, `EAI_MEMORY` → `ENOMEM`,
/// `EAI_SYSTEM` → its errno.
pub fn resolve(host: &str, port: &str, v6: bool) -> NetResult<Vec<Addr>> {
    let mut out = Vec::new();
    // `f` never succeeds: every address is collected.
    let r = try_each(host, port, v6, false, &mut |sa, len| {
        if let Some(a) = Addr::from_raw(sa, len) {
            out.push(a);
        }
        Err(NetError(crate::sys::ENXIO))
    });
    match r {
        Err(e) if out.is_empty() => Err(e),
        _ => Ok(out),
    }
}

/// Runs `f` on each address [`resolve`] would give (getaddrinfo's own
/// `sockaddr`, non-null, and its length), in order, until one
/// succeeds: its socket, else the last failure (a resolution error when
/// there is no address). `passive` makes an empty host the wildcard
/// address (for listeners) instead of loopback. No list is built and
/// nothing copied (a listener binds getaddrinfo's address directly).
pub(crate) fn try_each(
    host: &str,
    port: &str,
    v6: bool,
    passive: bool,
    f: &mut dyn FnMut(*const sockaddr, socklen_t) -> NetResult<super::Socket>,
) -> NetResult<super::Socket> {
    // By bytes: `char` patterns link the searcher code (firmware size).
    let host = match host.as_bytes() {
        [b'[', .., b']'] => crate::protocol::text::slice(host, 1, host.len() - 1).unwrap_or(host),
        _ => host,
    };
    // NUL-terminated copies on the stack (no allocation): DNS names have
    // at most 253 bytes, service names are short; longer ones could not
    // resolve anyway and fail as getaddrinfo would fail them.
    let mut node = [0u8; 256];
    let mut service = [0u8; 32];
    let node = c_arg(host, &mut node, crate::sys::ENXIO)?;
    let service = c_arg(port, &mut service, crate::sys::EINVAL)?;
    let family = if v6 {
        crate::sys::AF_INET6
    } else {
        crate::sys::AF_INET
    };

    // SAFETY: addrinfo is plain C data; all-zero is a valid "no hints" value.
    let mut hints: addrinfo = unsafe { mem::zeroed() };
    hints.ai_family = family;
    hints.ai_socktype = crate::sys::SOCK_STREAM;
    hints.ai_flags = if passive { crate::sys::AI_PASSIVE } else { 0 };
    let mut list: *mut addrinfo = ptr::null_mut();
    // SAFETY: node/service are NUL-terminated strings (or null) that outlive
    // the call, hints is initialised, and `list` receives the result.
    let rc = unsafe { (ops().getaddrinfo)(node, service, &hints, &mut list) };
    if rc != 0 {
        log::debug!("getaddrinfo({host:?}, {port:?}) failed with code {rc}");
        return Err(gai_error(rc));
    }

    let mut result = Err(NetError(crate::sys::ENXIO));
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getaddrinfo returned, not yet
        // freed; we only read its fields.
        let ai = unsafe { &*cur };
        if ai.ai_family == family && !ai.ai_addr.is_null() {
            result = f(ai.ai_addr, ai.ai_addrlen);
            if result.is_ok() {
                break;
            }
        }
        cur = ai.ai_next;
    }
    if !list.is_null() {
        // SAFETY: `list` came from the table's getaddrinfo and is freed once.
        unsafe { (ops().freeaddrinfo)(list) };
    }
    result
}

/// A `getaddrinfo` argument: `s` with a NUL in `buf`, or NULL for an
/// empty string; `EINVAL` for one with a NUL byte, `too_long` for one that
/// does not fit.
fn c_arg(s: &str, buf: &mut [u8], too_long: c_int) -> NetResult<*const c_char> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Ok(ptr::null());
    }
    // One loop copies and looks for a NUL (`contains` links the
    // word-at-a-time memchr; firmware size).
    let room = buf.len() - 1;
    for (i, &c) in b.iter().enumerate() {
        if c == 0 {
            return Err(NetError(crate::sys::EINVAL));
        }
        if let Some(d) = buf.get_mut(i).filter(|_| i < room) {
            *d = c;
        }
    }
    let Some(nul) = buf.get_mut(b.len()) else {
        return Err(NetError(too_long));
    };
    *nul = 0;
    Ok(buf.as_ptr().cast())
}

/// Maps a getaddrinfo `EAI_*` code to an errno value.
fn gai_error(rc: c_int) -> NetError {
    NetError(match rc {
        crate::sys::EAI_SYSTEM => match last_errno() {
            0 => crate::sys::EIO,
            e => e,
        },
        crate::sys::EAI_MEMORY => crate::sys::ENOMEM,
        crate::sys::EAI_FAMILY => crate::sys::EAFNOSUPPORT,
        crate::sys::EAI_SERVICE | crate::sys::EAI_BADFLAGS | crate::sys::EAI_SOCKTYPE => {
            crate::sys::EINVAL
        }
        _ => crate::sys::ENXIO,
    })
}
