//! TLS: a session per connection behind the transport seam, from one of two
//! backends:
//!
//! - `openssl` (std builds with the `tls` feature): OpenSSL on the system
//!   libssl; honours upstream's `SSL_CTX*` creator and post check;
//! - `ops`: a C table of TLS functions (`noPollTlsOps`, installed with
//!   `nopoll_install_tls_ops`) for firmware (mbedTLS, wolfSSL, esp-tls), in
//!   every build, std included. When a table is installed it is used.
//!
//! Either way the ciphertext goes through `net/` (the OpenSSL BIO and the
//! table's bio callbacks call `net::recv`/`net::send`): `net/` stays the
//! only code that touches sockets.

#[allow(unused_imports)]
use crate::prelude::*;

use crate::net::{NetError, Socket};
use crate::sync::Lock;
use core::ffi::c_void;

#[cfg(feature = "tls")]
pub(crate) mod openssl;
pub(crate) mod ops;

/// nopoll's `noPollSslProtocol` values that mean something here (OpenSSL;
/// a C table gets the value as is).
#[cfg(feature = "tls")]
pub(crate) const METHOD_TLSV1: i32 = 4;
#[cfg(feature = "tls")]
pub(crate) const METHOD_TLSV1_1: i32 = 5;
#[cfg(feature = "tls")]
pub(crate) const METHOD_TLSV1_2: i32 = 6;

/// What one side of a TLS connection is configured with (nopoll's
/// connection options).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Own certificate (PEM; may hold the chain after the leaf).
    pub certificate: Option<String>,
    /// Own private key (PEM).
    pub private_key: Option<String>,
    /// Extra chain certificates (PEM).
    pub chain: Option<String>,
    /// CA file that verifies the peer (clients: in addition to the system
    /// trust store; servers: the only source of trust for client certs).
    pub ca: Option<String>,
    /// `noPollSslProtocol`: the lowest version accepted (TLS 1.2 unless
    /// `NOPOLL_METHOD_TLSV1_1` / `NOPOLL_METHOD_TLSV1` ask for older).
    pub protocol: i32,
    /// Verify the peer (clients: chain and host name; servers: require a
    /// client certificate).
    pub verify: bool,
}

/// Why a TLS operation failed, for the log.
pub type TlsError = String;

/// One step of a handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Established.
    Done,
    /// Waiting for the socket to be readable.
    WantRead,
    /// Waiting for the socket to be writable.
    WantWrite,
}

/// A TLS session on one connection, from either backend, behind a trait
/// object: only the code that starts a session (a TLS client, a TLS
/// listener's accept) names a backend, so a firmware that never does
/// links none of the session code its transport would otherwise call.
pub(crate) struct Session(Box<dyn Backend>);

/// What the transport asks of a backend's session.
trait Backend: Send {
    fn set_fd(&mut self, fd: Socket);
    fn established(&self) -> bool;
    fn handshake(&mut self) -> Result<Step, TlsError>;
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError>;
    fn write(&mut self, buf: &[u8]) -> Result<usize, NetError>;
    fn pending(&self) -> usize;
    fn has_input(&self) -> bool;
    fn close_notify(&mut self);
    fn native(&self) -> (*mut c_void, *mut c_void);
    fn take_error(&mut self) -> Option<TlsError>;

    /// See [`Session::write_vectored`].
    fn write_vectored(&mut self, head: &[u8], data: &[u8]) -> Result<usize, NetError> {
        const FIRST: usize = 4096;
        let mut total = 0;
        if !head.is_empty() {
            if head.len() >= FIRST {
                return self.write(head);
            }
            let mut first = [0u8; FIRST];
            let take = (FIRST - head.len()).min(data.len());
            first[..head.len()].copy_from_slice(head);
            first[head.len()..head.len() + take].copy_from_slice(&data[..take]);
            total = self.write(&first[..head.len() + take])?;
            if total < head.len() + take {
                return Ok(total);
            }
        }
        while total < head.len() + data.len() {
            match self.write(&data[total - head.len()..]) {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) if e.would_block() && total > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }
}

/// The backend methods, forwarded to each backend's own.
macro_rules! backend {
    ($t:ty, |$s:ident| $has_input:expr) => {
        impl Backend for $t {
            fn set_fd(&mut self, fd: Socket) {
                <$t>::set_fd(self, fd)
            }
            fn established(&self) -> bool {
                <$t>::established(self)
            }
            fn handshake(&mut self) -> Result<Step, TlsError> {
                <$t>::handshake(self)
            }
            fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
                <$t>::read(self, buf)
            }
            fn write(&mut self, buf: &[u8]) -> Result<usize, NetError> {
                <$t>::write(self, buf)
            }
            fn pending(&self) -> usize {
                <$t>::pending(self)
            }
            fn has_input(&self) -> bool {
                let $s = self;
                $has_input
            }
            fn close_notify(&mut self) {
                <$t>::close_notify(self)
            }
            fn native(&self) -> (*mut c_void, *mut c_void) {
                <$t>::native(self)
            }
            fn take_error(&mut self) -> Option<TlsError> {
                self.error.take()
            }
        }
    };
}

#[cfg(feature = "tls")]
backend!(openssl::Session, |s| s.has_input());
backend!(ops::Session, |s| s.pending() > 0);

impl Session {
    /// A session of the C table's backend.
    pub(crate) fn ops(s: ops::Session) -> Session {
        Session(Box::new(s))
    }
    /// A session of the OpenSSL backend.
    #[cfg(feature = "tls")]
    pub(crate) fn openssl(s: openssl::Session) -> Session {
        Session(Box::new(s))
    }
    /// The socket to read and write (it may be replaced or taken).
    pub(crate) fn set_fd(&mut self, fd: Socket) {
        self.0.set_fd(fd)
    }
    /// The handshake completed.
    pub(crate) fn established(&self) -> bool {
        self.0.established()
    }
    /// Runs the handshake as far as the socket allows.
    pub(crate) fn handshake(&mut self) -> Result<Step, TlsError> {
        self.0.handshake()
    }
    /// Plaintext into `buf`; `Ok(0)` is the end of the stream.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        self.0.read(buf)
    }
    /// Encrypts and writes plaintext; how much was taken.
    pub(crate) fn write(&mut self, buf: &[u8]) -> Result<usize, NetError> {
        self.0.write(buf)
    }
    /// Decrypted bytes held inside the TLS layer.
    pub(crate) fn pending(&self) -> usize {
        self.0.pending()
    }
    /// Received bytes held inside the session that the socket will not
    /// signal again: decrypted plaintext, or (OpenSSL) records read ahead
    /// and not yet decrypted.
    pub(crate) fn has_input(&self) -> bool {
        self.0.has_input()
    }
    /// Encrypts and writes `head` then `data` as one stream; returns how
    /// many of their bytes were taken (as [`Session::write`]). `head` (a
    /// frame header) travels in one record with the start of `data`,
    /// never in a record of its own, and `data` is encrypted from where it
    /// is: no copy of a large payload into an output queue first. What is
    /// not taken is queued by the caller and written from there with the
    /// same bytes first, as a TLS retry needs.
    pub(crate) fn write_vectored(&mut self, head: &[u8], data: &[u8]) -> Result<usize, NetError> {
        self.0.write_vectored(head, data)
    }
    /// Sends close_notify once (best effort).
    pub(crate) fn close_notify(&mut self) {
        self.0.close_notify()
    }
    /// The backend's objects for the post check: (`SSL_CTX*`, `SSL*`) for
    /// OpenSSL, (NULL, the table's native handle) for a C table.
    pub(crate) fn native(&self) -> (*mut c_void, *mut c_void) {
        self.0.native()
    }
    /// Why the last operation failed (taken once, for the log).
    pub(crate) fn take_error(&mut self) -> Option<TlsError> {
        self.0.take_error()
    }
}

/// A listener's TLS configuration.
#[derive(Default)]
pub(crate) struct ListenerTls {
    /// Options given when the listener was made.
    pub opts: Option<TlsOptions>,
    /// `nopoll_listener_set_certificate`.
    pub cert: Option<(String, String, Option<String>)>,
    /// Built on the first accept, dropped when the certificate changes.
    #[cfg(feature = "tls")]
    pub cached: Option<::openssl::ssl::SslContext>,
}

/// TLS state of a context: the C hooks and the client configurations.
#[derive(Default)]
pub(crate) struct CtxTls {
    #[cfg(feature = "tls")]
    pub creator: Lock<Option<Creator>>,
    pub post_check: Lock<Option<PostCheck>>,
    #[cfg(feature = "tls")]
    clients: Lock<Vec<(TlsOptions, ::openssl::ssl::SslContext)>>,
}

/// Returns an `SSL_CTX*` (whose reference is handed over) or NULL.
#[cfg(feature = "tls")]
pub type Creator = crate::sync::Arc<
    dyn Fn(&crate::runtime::Context, &crate::runtime::Connection, bool) -> *mut c_void
        + Send
        + Sync,
>;
/// Called after the handshake with the backend's objects (see
/// [`Session::native`]); false aborts.
pub type PostCheck = crate::sync::Arc<
    dyn Fn(&crate::runtime::Context, &crate::runtime::Connection, *mut c_void, *mut c_void) -> bool
        + Send
        + Sync,
>;
