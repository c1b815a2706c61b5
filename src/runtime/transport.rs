//! Where a connection's bytes go: the seam between the state machine and
//! `net/` (which alone touches sockets).
//!
//! Today a connection's transport is its plain socket. The next kind is a
//! TLS session: it consumes ciphertext from the socket and yields
//! plaintext, and may hold decrypted bytes that the socket will never
//! signal again (the peer sent them in the same TLS record as what was
//! read). [`Transport::has_buffered_input`] says so; the event loop keeps a
//! list of such connections and serves them before it waits for readiness
//! (see `event_loop.rs`), so nothing received is left waiting for an event
//! that will not come.

#[allow(unused_imports)]
use crate::prelude::*;

use crate::net::{self, NetError, Socket};
use crate::sync::atomic::{AtomicI32, Ordering};

/// A connection's byte stream.
pub(crate) struct Transport {
    /// The socket, or -1 once released.
    sock: AtomicI32,
}

impl Transport {
    /// A plain TCP socket.
    pub(crate) fn plain(fd: Socket) -> Transport {
        Transport {
            sock: AtomicI32::new(fd),
        }
    }

    /// The socket (for readiness), or -1.
    #[inline]
    pub(crate) fn socket(&self) -> Socket {
        self.sock.load(Ordering::Acquire)
    }

    /// Replaces the socket; returns the previous one (not closed).
    pub(crate) fn swap_socket(&self, fd: Socket) -> Socket {
        self.sock.swap(fd, Ordering::AcqRel)
    }

    /// Reads received bytes into `buf`; `Ok(0)` is the end of the stream.
    #[inline]
    pub(crate) fn recv(&self, buf: &mut [u8]) -> Result<usize, NetError> {
        net::recv(self.socket(), buf)
    }

    /// Writes bytes; returns how many were taken.
    #[inline]
    pub(crate) fn send(&self, buf: &[u8]) -> Result<usize, NetError> {
        net::send(self.socket(), buf)
    }

    /// Writes several buffers in order with one call.
    pub(crate) fn send_vectored(&self, bufs: &[&[u8]]) -> Result<usize, NetError> {
        net::send_vectored(self.socket(), bufs)
    }

    /// Received bytes held inside the transport that the socket will not
    /// signal as readable (a TLS session's decrypted records). Never for a
    /// plain socket.
    #[inline]
    pub(crate) fn has_buffered_input(&self) -> bool {
        false
    }

    /// Whether the caller may write from its own buffer without a copy
    /// (a TLS session encrypts into its own).
    #[inline]
    pub(crate) fn writes_in_place(&self) -> bool {
        true
    }

    /// Takes the socket out (to close it); -1 if already taken.
    pub(crate) fn take_socket(&self) -> Socket {
        self.sock.swap(-1, Ordering::AcqRel)
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        let fd = *self.sock.get_mut();
        if fd >= 0 {
            net::close(fd);
        }
    }
}
