//! The OpenSSL backend (the system libssl, linked dynamically).
//!
//! A [`Session`] wraps an OpenSSL `SSL` whose BIO is a callback BIO over
//! [`SockIo`], which reads and writes through `net::recv`/`net::send`: the
//! ciphertext goes through `net/` like every other byte, so `net/` stays
//! the only code that touches sockets (on firmware too, through the
//! `SocketOps` table). The session never blocks: a handshake step, a read
//! or a write that needs the socket says so (`WantRead`/`WantWrite`,
//! `EAGAIN`) and the caller waits for readiness (the event loop, or
//! `net::wait_fd` in a blocking call).
//!
//! Configurations (`SSL_CTX`) are built once per listener and once per set
//! of client options, not per connection (upstream re-read the files for
//! every accepted connection). A context creator installed from C is still
//! called per connection, as upstream does.

use super::{Step, TlsError, TlsOptions};
use crate::net::{self, NetError, Socket};
use crate::runtime::Certificate;
use crate::sync::Arc;
use crate::sync::Lock;
use core::ffi::{c_int, c_void};
use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::error::ErrorStack;
use openssl::ssl::{
    ErrorCode, NameType, ShutdownResult, Ssl, SslContext, SslContextBuilder, SslFiletype,
    SslMethod, SslMode, SslOptions, SslStream, SslVerifyMode, SslVersion,
};
use openssl::x509::verify::X509CheckFlags;
use openssl::x509::{X509VerifyResult, X509};
use std::io;

use super::{METHOD_TLSV1, METHOD_TLSV1_1, METHOD_TLSV1_2};

fn stack(what: &str, e: ErrorStack) -> TlsError {
    format!("{what}: {e}")
}

/// Reads and writes ciphertext through `net/`.
pub(crate) struct SockIo {
    fd: Socket,
}

impl io::Read for SockIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        net::recv(self.fd, buf).map_err(io::Error::from)
    }
}

impl io::Write for SockIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        net::send(self.fd, buf).map_err(io::Error::from)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn set_versions(b: &mut SslContextBuilder, protocol: i32) -> Result<(), TlsError> {
    let min = match protocol {
        METHOD_TLSV1 => SslVersion::TLS1,
        METHOD_TLSV1_1 => SslVersion::TLS1_1,
        METHOD_TLSV1_2 => SslVersion::TLS1_2,
        _ => SslVersion::TLS1_2,
    };
    b.set_min_proto_version(Some(min))
        .map_err(|e| stack("cannot set the minimum TLS version", e))?;
    if matches!(protocol, METHOD_TLSV1 | METHOD_TLSV1_1) {
        // OpenSSL 3 allows TLS 1.0/1.1 (MD5-SHA1) only at security level 0;
        // only on this context, only because the caller asked for it.
        b.set_security_level(0);
    }
    Ok(())
}

fn common(b: &mut SslContextBuilder) {
    // Partial writes: a short write takes what fits, like a socket. Idle
    // sessions give their record buffers back (24 -> 15 KiB per idle
    // connection measured).
    b.set_mode(
        SslMode::ENABLE_PARTIAL_WRITE
            | SslMode::ACCEPT_MOVING_WRITE_BUFFER
            | SslMode::RELEASE_BUFFERS,
    );
    // A write never has to wait for a read.
    b.set_options(SslOptions::NO_RENEGOTIATION);
}

fn load_identity(
    b: &mut SslContextBuilder,
    cert: &str,
    key: &str,
    chain: Option<&str>,
) -> Result<(), TlsError> {
    b.set_certificate_chain_file(cert)
        .map_err(|e| stack(&format!("cannot load certificate {cert}"), e))?;
    if let Some(chain) = chain {
        let pem = std::fs::read(chain).map_err(|e| format!("cannot read chain {chain}: {e}"))?;
        for c in X509::stack_from_pem(&pem).map_err(|e| stack(&format!("bad chain {chain}"), e))? {
            b.add_extra_chain_cert(c)
                .map_err(|e| stack(&format!("cannot use chain {chain}"), e))?;
        }
    }
    b.set_private_key_file(key, SslFiletype::PEM)
        .map_err(|e| stack(&format!("cannot load private key {key}"), e))?;
    b.check_private_key()
        .map_err(|e| stack(&format!("private key {key} does not match {cert}"), e))
}

/// A client configuration: the system trust store plus `o.ca`, the
/// client certificate if given, the version policy.
pub(crate) fn client_context(o: &TlsOptions) -> Result<SslContext, TlsError> {
    let mut b =
        SslContext::builder(SslMethod::tls_client()).map_err(|e| stack("SSL_CTX_new", e))?;
    common(&mut b);
    set_versions(&mut b, o.protocol)?;
    b.set_default_verify_paths()
        .map_err(|e| stack("cannot load the system trust store", e))?;
    if let Some(ca) = &o.ca {
        b.set_ca_file(ca)
            .map_err(|e| stack(&format!("cannot load CA file {ca}"), e))?;
    }
    match (&o.certificate, &o.private_key) {
        (Some(c), Some(k)) => load_identity(&mut b, c, k, o.chain.as_deref())?,
        (Some(c), None) => load_identity(&mut b, c, c, o.chain.as_deref())?,
        _ => {}
    }
    b.set_verify(if o.verify {
        SslVerifyMode::PEER
    } else {
        SslVerifyMode::NONE
    });
    Ok(b.build())
}

/// A listener configuration for `cert`/`key`; `o` adds client
/// verification (against `o.ca` only) and the version policy. `store`
/// (the context's certificate store) is consulted when the client sends
/// a server name that matches an entry.
pub(crate) fn server_context(
    cert: &str,
    key: &str,
    chain: Option<&str>,
    o: &TlsOptions,
    store: Option<Arc<Lock<Vec<Certificate>>>>,
) -> Result<SslContext, TlsError> {
    let mut b = server_builder(cert, key, chain, o)?;
    if let Some(store) = store {
        let o = o.clone();
        // Contexts built for names, kept for the listener's lifetime.
        let by_name: Arc<Lock<Vec<(String, SslContext)>>> = Arc::new(Lock::new(Vec::new()));
        b.set_servername_callback(move |ssl, _alert| {
            let Some(name) = ssl.servername(NameType::HOST_NAME).map(str::to_string) else {
                return Ok(());
            };
            let mut cache = by_name.lock();
            if let Some((_, c)) = cache.iter().find(|(n, _)| *n == name) {
                let _ = ssl.set_ssl_context(c);
                return Ok(());
            }
            let entry = store
                .lock()
                .iter()
                .find(|c| c.server_name.as_deref() == Some(name.as_str()))
                .cloned();
            if let Some(e) = entry {
                if let Ok(b) =
                    server_builder(&e.certificate, &e.private_key, e.chain.as_deref(), &o)
                {
                    let c = b.build();
                    let _ = ssl.set_ssl_context(&c);
                    if cache.len() < 64 {
                        cache.push((name, c));
                    }
                }
            }
            Ok(())
        });
    }
    Ok(b.build())
}

fn server_builder(
    cert: &str,
    key: &str,
    chain: Option<&str>,
    o: &TlsOptions,
) -> Result<SslContextBuilder, TlsError> {
    let mut b =
        SslContext::builder(SslMethod::tls_server()).map_err(|e| stack("SSL_CTX_new", e))?;
    common(&mut b);
    set_versions(&mut b, o.protocol)?;
    load_identity(&mut b, cert, key, chain)?;
    if let Some(ca) = &o.ca {
        b.set_ca_file(ca)
            .map_err(|e| stack(&format!("cannot load CA file {ca}"), e))?;
    }
    if o.verify {
        b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    }
    Ok(b)
}

/// Adopts an `SSL_CTX*` returned by a C context creator (its reference
/// becomes ours and is released with the session, as upstream frees it at
/// the connection's last unref). None for NULL.
///
/// # Safety
/// `raw` is NULL or a valid `SSL_CTX*` of the process's libssl whose
/// reference the caller hands over.
pub(crate) unsafe fn adopt_context(raw: *mut c_void) -> Option<SslContext> {
    if raw.is_null() {
        return None;
    }
    // SAFETY: per this function's contract: a valid SSL_CTX* whose one
    // reference is handed to us (freed by SslContext's Drop).
    Some(unsafe { SslContext::from_ptr(raw.cast()) })
}

// Functions of libssl (1.1.0 on) that the `openssl` crates do not bind.
unsafe extern "C" {
    fn SSL_set_read_ahead(s: *mut c_void, yes: c_int);
    fn SSL_set_default_read_buffer_len(s: *mut c_void, len: usize);
    fn SSL_has_pending(s: *const c_void) -> c_int;
}

/// OpenSSL's read buffer while a session reads ahead: up to four full
/// records per `recv` (released when empty, `SSL_MODE_RELEASE_BUFFERS`).
const READ_AHEAD: usize = 64 * 1024;

/// A TLS session on one connection.
pub(crate) struct Session {
    stream: SslStream<SockIo>,
    established: bool,
    /// The last read stopped with bytes OpenSSL already holds (records
    /// read ahead, or an end or error to report): the socket may not
    /// signal them (see [`Session::has_input`]).
    more: bool,
    /// A fatal error happened: no close_notify, nothing more.
    failed: bool,
    shut: bool,
    /// Why the last operation failed (for the log).
    pub(crate) error: Option<TlsError>,
}

impl Session {
    /// A client session: SNI (unless `host` is an IP literal) and, when
    /// `verify`, the host name (or IP) checked against the certificate.
    pub(crate) fn client(
        cfg: &SslContext,
        fd: Socket,
        host: &str,
        verify: bool,
    ) -> Result<Session, TlsError> {
        let mut ssl = Ssl::new(cfg).map_err(|e| stack("SSL_new", e))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ip = host.parse::<std::net::IpAddr>().ok();
        if ip.is_none() {
            ssl.set_hostname(host)
                .map_err(|e| stack("cannot set the server name", e))?;
        }
        if verify {
            ssl.set_verify(SslVerifyMode::PEER);
            let p = ssl.param_mut();
            p.set_hostflags(X509CheckFlags::NO_PARTIAL_WILDCARDS);
            match ip {
                Some(ip) => p.set_ip(ip),
                None => p.set_host(host),
            }
            .map_err(|e| stack("cannot set the name to verify", e))?;
        }
        ssl.set_connect_state();
        Self::over(ssl, fd)
    }

    /// A server session.
    pub(crate) fn server(cfg: &SslContext, fd: Socket) -> Result<Session, TlsError> {
        let mut ssl = Ssl::new(cfg).map_err(|e| stack("SSL_new", e))?;
        ssl.set_accept_state();
        Self::over(ssl, fd)
    }

    fn over(ssl: Ssl, fd: Socket) -> Result<Session, TlsError> {
        // Read ahead: one `recv` takes what the socket has (several
        // records), not a 5-byte record header and then its body.
        // SAFETY: a valid SSL*, owned by `ssl`.
        unsafe {
            SSL_set_read_ahead(ssl.as_ptr().cast(), 1);
            SSL_set_default_read_buffer_len(ssl.as_ptr().cast(), READ_AHEAD);
        }
        let stream = SslStream::new(ssl, SockIo { fd }).map_err(|e| stack("BIO", e))?;
        Ok(Session {
            stream,
            established: false,
            more: false,
            failed: false,
            shut: false,
            error: None,
        })
    }

    /// The socket to read and write (it may be replaced or taken).
    pub(crate) fn set_fd(&mut self, fd: Socket) {
        self.stream.get_mut().fd = fd;
    }

    pub(crate) fn established(&self) -> bool {
        self.established
    }

    /// Runs the handshake as far as the socket allows.
    pub(crate) fn handshake(&mut self) -> Result<Step, TlsError> {
        if self.established {
            return Ok(Step::Done);
        }
        match self.stream.do_handshake() {
            Ok(()) => {
                self.established = true;
                // Records read ahead with the handshake's last message.
                self.more = self.read_ahead_pending();
                Ok(Step::Done)
            }
            Err(e) => match e.code() {
                ErrorCode::WANT_READ => Ok(Step::WantRead),
                ErrorCode::WANT_WRITE => Ok(Step::WantWrite),
                _ => {
                    self.failed = true;
                    let why = self.describe(&e, "TLS handshake failed");
                    self.error = Some(why.clone());
                    Err(why)
                }
            },
        }
    }

    fn describe(&self, e: &openssl::ssl::Error, what: &str) -> TlsError {
        let v = self.stream.ssl().verify_result();
        if v != X509VerifyResult::OK {
            return format!(
                "{what}: certificate verification failed: {}",
                v.error_string()
            );
        }
        if let Some(io) = e.io_error() {
            return format!("{what}: {io}");
        }
        match e.ssl_error() {
            Some(s) => format!("{what}: {s}"),
            None if e.code() == ErrorCode::SYSCALL => {
                format!("{what}: the peer closed the connection")
            }
            None => format!("{what}: {e}"),
        }
    }

    fn result(
        &mut self,
        r: Result<usize, openssl::ssl::Error>,
        what: &str,
    ) -> Result<usize, NetError> {
        match r {
            Ok(n) => Ok(n),
            Err(e) => match e.code() {
                ErrorCode::ZERO_RETURN => Ok(0),
                ErrorCode::WANT_READ | ErrorCode::WANT_WRITE => Err(NetError(libc::EAGAIN)),
                ErrorCode::SYSCALL if e.io_error().is_none() && e.ssl_error().is_none() => {
                    // EOF without close_notify: the end of the stream, but
                    // the peer did not say it meant to stop there.
                    self.failed = true;
                    self.error = Some(format!("{what}: the peer closed without close_notify"));
                    Ok(0)
                }
                _ => {
                    if let Some(io) = e.io_error() {
                        if io.kind() == io::ErrorKind::WouldBlock {
                            return Err(NetError(libc::EAGAIN));
                        }
                    }
                    self.failed = true;
                    self.error = Some(self.describe(&e, what));
                    let errno = e
                        .io_error()
                        .and_then(io::Error::raw_os_error)
                        .unwrap_or(libc::EPROTO);
                    Err(NetError(errno))
                }
            },
        }
    }

    /// Plaintext into `buf`; `Ok(0)` is the end of the stream. Decrypts
    /// every record OpenSSL already holds while `buf` has room, without
    /// asking the socket again (which may block); an end or error met
    /// after some plaintext is reported by the next read.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.more = false;
        let mut filled = 0;
        loop {
            match self.stream.ssl_read(&mut buf[filled..]) {
                Ok(n) if n > 0 => {
                    filled += n;
                    if filled == buf.len() || !self.read_ahead_pending() {
                        self.more = self.read_ahead_pending();
                        return Ok(filled);
                    }
                }
                Err(e)
                    if filled > 0
                        && matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) =>
                {
                    return Ok(filled);
                }
                r if filled > 0 => {
                    // Kept for the next read: OpenSSL reports it again.
                    let _ = r;
                    self.more = true;
                    return Ok(filled);
                }
                r => return self.result(r, "TLS read failed"),
            }
        }
    }

    /// Bytes OpenSSL holds (decrypted or read ahead, whole records or not).
    fn read_ahead_pending(&self) -> bool {
        // SAFETY: a valid SSL*, owned by the stream.
        self.established && unsafe { SSL_has_pending(self.stream.ssl().as_ptr().cast()) } == 1
    }

    /// Received bytes the socket will not signal again: plaintext, whole
    /// records read ahead, or an end or error the last read left for the
    /// next. (A partial record read ahead is not: its rest comes from
    /// the socket, which signals it.)
    pub(crate) fn has_input(&self) -> bool {
        self.more || self.pending() > 0
    }

    /// Encrypts and writes plaintext; how much was taken.
    pub(crate) fn write(&mut self, buf: &[u8]) -> Result<usize, NetError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let r = self.stream.ssl_write(buf);
        self.result(r, "TLS write failed")
    }

    /// Decrypted bytes held inside OpenSSL.
    pub(crate) fn pending(&self) -> usize {
        if self.established {
            self.stream.ssl().pending()
        } else {
            0
        }
    }

    /// Sends close_notify once (best effort, does not wait for the peer's).
    pub(crate) fn close_notify(&mut self) {
        if self.established && !self.failed && !self.shut {
            self.shut = true;
            let _: Result<ShutdownResult, _> = self.stream.shutdown();
        }
    }

    /// The OpenSSL objects, for the post-handshake check.
    pub(crate) fn native(&self) -> (*mut c_void, *mut c_void) {
        let ssl = self.stream.ssl();
        (ssl.ssl_context().as_ptr().cast(), ssl.as_ptr().cast())
    }
}

impl super::CtxTls {
    /// The client configuration for `o`, built once.
    pub(crate) fn client(&self, o: &TlsOptions) -> Result<SslContext, TlsError> {
        let mut cache = self.clients.lock();
        if let Some((_, c)) = cache.iter().find(|(k, _)| k == o) {
            return Ok(c.clone());
        }
        let c = client_context(o)?;
        if cache.len() >= 16 {
            cache.remove(0);
        }
        cache.push((o.clone(), c.clone()));
        Ok(c)
    }
}
