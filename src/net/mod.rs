//! The only place in the crate that touches sockets.
//!
//! Every socket call goes through one table of function pointers
//! ([`SocketOps`], see [`ops`]): the libc table by default, a firmware (lwIP)
//! table once one is installed. On top of it:
//! - addresses: [`resolve`] and [`Addr`] (numeric text, `sockaddr` access);
//! - stream helpers: [`tcp_listen`], [`tcp_connect`], [`accept`], [`recv`],
//!   [`send`], [`send_vectored`], socket options and addresses;
//! - readiness: [`Poller`] (epoll on Linux, poll everywhere) and its
//!   [`Waker`].

#[allow(unused_imports)]
use crate::prelude::*;

mod addr;
mod ops;
mod poller;
mod socket;

#[cfg(test)]
mod tests;

pub use addr::{resolve, Addr, Peer};
#[cfg(feature = "std")]
pub use ops::LIBC_OPS;
#[cfg(not(feature = "std"))]
pub use ops::NO_OPS;
pub use ops::{install, installed, ops, SocketOps};
pub use poller::{wake_raw, Backend, Interest, Poller, Ready, Waker, MAX_EVENTS};
#[cfg(not(feature = "std"))]
pub(crate) use socket::idle_wait;
#[cfg(feature = "std")]
pub use socket::recv_nowait;
pub(crate) use socket::send_pair;
pub use socket::{
    accept, accept_with_peer, close, is_blocking, is_listening, is_socket, local_addr, local_port,
    peer_addr, peer_of, recv, send, send_vectored, set_blocking, set_nodelay, shutdown,
    tcp_connect, tcp_listen, wait_fd,
};

use core::fmt;

/// A socket descriptor (`NOPOLL_SOCKET`); [`INVALID_SOCKET`] when none.
pub type Socket = i32;

/// The invalid socket value (`NOPOLL_INVALID_SOCKET`).
pub const INVALID_SOCKET: Socket = -1;

/// A failed socket call: the `errno` value it left.
///
/// Name-resolution failures are mapped to errno values too (see
/// [`resolve`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetError(pub i32);

/// Result of a socket call.
pub type NetResult<T> = Result<T, NetError>;

impl NetError {
    /// The errno value.
    pub fn errno(self) -> i32 {
        self.0
    }

    /// The call would have blocked (`EAGAIN` / `EWOULDBLOCK`).
    pub fn would_block(self) -> bool {
        self.0 == crate::sys::EAGAIN || self.0 == crate::sys::EWOULDBLOCK
    }

    /// The call was interrupted by a signal (`EINTR`).
    pub fn interrupted(self) -> bool {
        self.0 == crate::sys::EINTR
    }

    /// A non-blocking connect is under way (`EINPROGRESS`).
    pub fn in_progress(self) -> bool {
        self.0 == crate::sys::EINPROGRESS
    }

    /// The error of the last failed call on this thread (via the table).
    pub fn last() -> NetError {
        NetError(ops::last_errno())
    }
}

impl fmt::Display for NetError {
    #[cfg(feature = "std")]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&std::io::Error::from_raw_os_error(self.0), f)
    }
    #[cfg(not(feature = "std"))]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "socket error (errno {})", self.0)
    }
}

impl core::error::Error for NetError {}

#[cfg(feature = "std")]
impl From<NetError> for std::io::Error {
    fn from(e: NetError) -> Self {
        std::io::Error::from_raw_os_error(e.0)
    }
}
