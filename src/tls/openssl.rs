//! The OpenSSL backend (the system libssl, linked dynamically).
//!
//! A [`Session`] wraps an OpenSSL `SSL` whose BIO is a callback BIO (one
//! method for every session, the socket in the BIO's data word) that
//! reads and writes through `net::recv`/`net::send`: the
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
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::Arc;
use crate::sync::Lock;
use core::ffi::{c_char, c_int, c_long, c_void};
use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::error::ErrorStack;
use openssl::ssl::{
    NameType, Ssl, SslContext, SslContextBuilder, SslFiletype, SslMethod, SslMode, SslOptions,
    SslVerifyMode, SslVersion,
};
use openssl::x509::verify::X509CheckFlags;
use openssl::x509::{X509VerifyResult, X509};
use std::io;

use super::{METHOD_TLSV1, METHOD_TLSV1_1, METHOD_TLSV1_2};

fn stack(what: &str, e: ErrorStack) -> TlsError {
    format!("{what}: {e}")
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

/// libssl and libcrypto (1.1.0 on), called directly: a session is an
/// `SSL` over a BIO of one method shared by every connection, whose data
/// word is the socket. (The `openssl` crate's `SslStream` allocates a BIO
/// method, a boxed stream state and ex_data for every connection: about
/// 300 bytes of each idle TLS connection, issue 20.)
mod sys {
    use core::ffi::{c_char, c_int, c_long, c_void};
    unsafe extern "C" {
        pub fn SSL_new(ctx: *mut c_void) -> *mut c_void;
        pub fn SSL_set_bio(s: *mut c_void, rbio: *mut c_void, wbio: *mut c_void);
        pub fn SSL_get_rbio(s: *const c_void) -> *mut c_void;
        pub fn SSL_set_read_ahead(s: *mut c_void, yes: c_int);
        pub fn SSL_has_pending(s: *const c_void) -> c_int;
        pub fn SSL_do_handshake(s: *mut c_void) -> c_int;
        pub fn SSL_read_ex(s: *mut c_void, buf: *mut c_void, num: usize, got: *mut usize) -> c_int;
        pub fn SSL_write_ex(
            s: *mut c_void,
            buf: *const c_void,
            num: usize,
            put: *mut usize,
        ) -> c_int;
        pub fn SSL_shutdown(s: *mut c_void) -> c_int;
        pub fn SSL_get_error(s: *const c_void, ret: c_int) -> c_int;
        pub fn ERR_clear_error();
        pub fn BIO_meth_new(kind: c_int, name: *const c_char) -> *mut c_void;
        pub fn BIO_meth_free(m: *mut c_void);
        pub fn BIO_meth_set_write(
            m: *mut c_void,
            f: unsafe extern "C" fn(*mut c_void, *const c_char, c_int) -> c_int,
        ) -> c_int;
        pub fn BIO_meth_set_read(
            m: *mut c_void,
            f: unsafe extern "C" fn(*mut c_void, *mut c_char, c_int) -> c_int,
        ) -> c_int;
        pub fn BIO_meth_set_ctrl(
            m: *mut c_void,
            f: unsafe extern "C" fn(*mut c_void, c_int, c_long, *mut c_void) -> c_long,
        ) -> c_int;
        pub fn BIO_new(m: *const c_void) -> *mut c_void;
        pub fn BIO_set_data(b: *mut c_void, data: *mut c_void);
        pub fn BIO_get_data(b: *mut c_void) -> *mut c_void;
        pub fn BIO_set_init(b: *mut c_void, init: c_int);
        pub fn BIO_set_flags(b: *mut c_void, flags: c_int);
        pub fn BIO_clear_flags(b: *mut c_void, flags: c_int);
    }
    pub const SSL_ERROR_SSL: c_int = 1;
    pub const SSL_ERROR_WANT_READ: c_int = 2;
    pub const SSL_ERROR_WANT_WRITE: c_int = 3;
    pub const SSL_ERROR_SYSCALL: c_int = 5;
    pub const SSL_ERROR_ZERO_RETURN: c_int = 6;
    pub const BIO_FLAGS_READ: c_int = 0x01;
    pub const BIO_FLAGS_WRITE: c_int = 0x02;
    pub const BIO_FLAGS_RWS: c_int = 0x07;
    pub const BIO_FLAGS_SHOULD_RETRY: c_int = 0x08;
    pub const BIO_CTRL_FLUSH: c_int = 11;
}

std::thread_local! {
    /// The next socket read of a session BIO must not wait (see
    /// [`Session::read`]): `Some(true)` asks, `Some(false)` reports that it
    /// could not be done without waiting (an installed socket table).
    static NO_WAIT: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
    /// errno of the socket call that failed in the last SSL call on this
    /// thread (0: none); set by the BIO callbacks, which run on the thread
    /// of the SSL call.
    static IO_ERRNO: core::cell::Cell<i32> = const { core::cell::Cell::new(0) };
}

/// The socket a session BIO reads and writes.
///
/// # Safety
/// `b` is a BIO of [`bio_method`].
unsafe fn bio_fd(b: *mut c_void) -> Socket {
    // SAFETY: per the contract; its data word is a socket, not a pointer.
    unsafe { sys::BIO_get_data(b) as isize as Socket }
}

/// After a socket call: the BIO's retry flags (a call that would block is
/// retried once the socket is ready), or the errno kept for the session.
///
/// # Safety
/// `b` is a live BIO.
unsafe fn bio_result(b: *mut c_void, r: Result<usize, NetError>, flag: c_int) -> c_int {
    // SAFETY: per the contract.
    unsafe { sys::BIO_clear_flags(b, sys::BIO_FLAGS_RWS | sys::BIO_FLAGS_SHOULD_RETRY) };
    match r {
        Ok(n) => n.min(c_int::MAX as usize) as c_int,
        Err(e) if e.would_block() || e.0 == crate::sys::ENOTCONN => {
            // SAFETY: per the contract.
            unsafe { sys::BIO_set_flags(b, flag | sys::BIO_FLAGS_SHOULD_RETRY) };
            -1
        }
        Err(e) => {
            IO_ERRNO.with(|c| c.set(e.0));
            -1
        }
    }
}

unsafe extern "C" fn bio_write(b: *mut c_void, buf: *const c_char, len: c_int) -> c_int {
    if buf.is_null() || len <= 0 {
        return 0;
    }
    // SAFETY: OpenSSL hands `len` readable bytes at `buf`; `b` is ours.
    unsafe {
        let data = core::slice::from_raw_parts(buf.cast::<u8>(), len as usize);
        bio_result(b, net::send(bio_fd(b), data), sys::BIO_FLAGS_WRITE)
    }
}

unsafe extern "C" fn bio_read(b: *mut c_void, buf: *mut c_char, len: c_int) -> c_int {
    if buf.is_null() || len <= 0 {
        return 0;
    }
    // SAFETY: OpenSSL hands `len` writable bytes at `buf`; `b` is ours.
    unsafe {
        let data = core::slice::from_raw_parts_mut(buf.cast::<u8>(), len as usize);
        let r = if NO_WAIT.with(|c| c.replace(false)) {
            net::recv_nowait(bio_fd(b), data).unwrap_or(Err(NetError(crate::sys::EAGAIN)))
        } else {
            net::recv(bio_fd(b), data)
        };
        bio_result(b, r, sys::BIO_FLAGS_READ)
    }
}

unsafe extern "C" fn bio_ctrl(_b: *mut c_void, cmd: c_int, _n: c_long, _p: *mut c_void) -> c_long {
    c_long::from(cmd == sys::BIO_CTRL_FLUSH)
}

/// The BIO method of every session, made once (and kept for the process).
fn bio_method() -> Result<*const c_void, TlsError> {
    static METHOD: AtomicUsize = AtomicUsize::new(0);
    let m = METHOD.load(Ordering::Acquire);
    if m != 0 {
        return Ok(m as *const c_void);
    }
    // SAFETY: a new method, set up before anyone else can see it.
    let m = unsafe {
        let m = sys::BIO_meth_new(0, c"nopoll".as_ptr());
        if m.is_null()
            || sys::BIO_meth_set_write(m, bio_write) != 1
            || sys::BIO_meth_set_read(m, bio_read) != 1
            || sys::BIO_meth_set_ctrl(m, bio_ctrl) != 1
        {
            return Err(stack("BIO_meth_new", ErrorStack::get()));
        }
        m
    };
    match METHOD.compare_exchange(0, m as usize, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Ok(m),
        Err(won) => {
            // SAFETY: ours, never used: another thread's was kept.
            unsafe { sys::BIO_meth_free(m) };
            Ok(won as *const c_void)
        }
    }
}

/// A record from this size on makes a read go on to the socket once more
/// (see [`Session::read`]); below it (small messages) the extra `recv`,
/// mostly `EAGAIN`, would cost more than it gathers.
const LARGE_RECORD: usize = 8 * 1024;

/// A TLS session on one connection.
pub(crate) struct Session {
    ssl: Ssl,
    established: bool,
    /// The last read stopped with bytes OpenSSL already holds (records
    /// read ahead, or an end or error to report): the socket may not
    /// signal them (see [`Session::has_input`]).
    more: bool,
    /// A fatal error happened: no close_notify, nothing more.
    failed: bool,
    shut: bool,
    /// The end of the stream or error a read met after plaintext, for
    /// the next read.
    held: Option<Result<usize, NetError>>,
    /// Why the last operation failed (for the log).
    pub(crate) error: Option<TlsError>,
}

/// An `SSL` of `cfg`. (`Ssl::new` also keeps the context in the session's
/// ex_data, a box and a stack per connection, for session callbacks this
/// library does not use.)
fn new_ssl(cfg: &SslContext) -> Result<Ssl, TlsError> {
    // SAFETY: a valid SSL_CTX*; SSL_new takes its own reference.
    let p = unsafe { sys::SSL_new(cfg.as_ptr().cast()) };
    if p.is_null() {
        return Err(stack("SSL_new", ErrorStack::get()));
    }
    // SAFETY: a new SSL*, owned (freed) by the returned value.
    Ok(unsafe { Ssl::from_ptr(p.cast()) })
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
        let mut ssl = new_ssl(cfg)?;
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
        let mut ssl = new_ssl(cfg)?;
        ssl.set_accept_state();
        Self::over(ssl, fd)
    }

    fn over(ssl: Ssl, fd: Socket) -> Result<Session, TlsError> {
        let method = bio_method()?;
        // SAFETY: `method` is a valid BIO method; the new BIO goes to the
        // SSL (one reference for both directions), freed with it.
        unsafe {
            let bio = sys::BIO_new(method);
            if bio.is_null() {
                return Err(stack("BIO_new", ErrorStack::get()));
            }
            sys::BIO_set_data(bio, fd as isize as *mut c_void);
            sys::BIO_set_init(bio, 1);
            sys::SSL_set_bio(ssl.as_ptr().cast(), bio, bio);
            // Read ahead: one `recv` fills OpenSSL's read buffer (a record
            // and the start of the next), not a 5-byte record header and
            // then its body. (Its default size: a 64 KiB buffer,
            // SSL_set_default_read_buffer_len, measured no faster and
            // kept ~100 bytes more per idle connection.)
            sys::SSL_set_read_ahead(ssl.as_ptr().cast(), 1);
        }
        Ok(Session {
            ssl,
            established: false,
            more: false,
            failed: false,
            shut: false,
            held: None,
            error: None,
        })
    }

    fn ptr(&self) -> *mut c_void {
        self.ssl.as_ptr().cast()
    }

    /// The socket to read and write (it may be replaced or taken).
    pub(crate) fn set_fd(&mut self, fd: Socket) {
        // SAFETY: the session's BIO (set in `over`), of our method.
        unsafe { sys::BIO_set_data(sys::SSL_get_rbio(self.ptr()), fd as isize as *mut c_void) }
    }

    pub(crate) fn established(&self) -> bool {
        self.established
    }

    /// What the SSL call that returned `r` left: (SSL_get_error, errno of
    /// the failed socket call or 0).
    fn outcome(&self, r: c_int) -> (c_int, i32) {
        // SAFETY: a live SSL, right after the call that returned `r`.
        let code = unsafe { sys::SSL_get_error(self.ptr(), r) };
        (code, IO_ERRNO.with(|c| c.replace(0)))
    }

    /// Runs the handshake as far as the socket allows.
    pub(crate) fn handshake(&mut self) -> Result<Step, TlsError> {
        if self.established {
            return Ok(Step::Done);
        }
        // SAFETY: a live SSL with its BIO.
        let r = unsafe { sys::SSL_do_handshake(self.ptr()) };
        if r == 1 {
            self.established = true;
            // Records read ahead with the handshake's last message.
            self.more = self.read_ahead_pending();
            return Ok(Step::Done);
        }
        match self.outcome(r) {
            (sys::SSL_ERROR_WANT_READ, _) => Ok(Step::WantRead),
            (sys::SSL_ERROR_WANT_WRITE, _) => Ok(Step::WantWrite),
            (code, errno) => {
                self.failed = true;
                let why = self.describe(code, errno, "TLS handshake failed");
                self.error = Some(why.clone());
                Err(why)
            }
        }
    }

    /// Why an SSL call failed (drains the thread's error queue).
    fn describe(&self, code: c_int, errno: i32, what: &str) -> TlsError {
        let errors = ErrorStack::get();
        let v = self.ssl.verify_result();
        if v != X509VerifyResult::OK {
            return format!(
                "{what}: certificate verification failed: {}",
                v.error_string()
            );
        }
        if errno != 0 {
            return format!("{what}: {}", io::Error::from_raw_os_error(errno));
        }
        if !errors.errors().is_empty() {
            return format!("{what}: {errors}");
        }
        match code {
            sys::SSL_ERROR_SYSCALL => format!("{what}: the peer closed the connection"),
            sys::SSL_ERROR_SSL => format!("{what}: protocol error"),
            c => format!("{what}: SSL error {c}"),
        }
    }

    /// A read or write that returned `r` (not success).
    fn failure(&mut self, r: c_int, what: &str) -> Result<usize, NetError> {
        match self.outcome(r) {
            (sys::SSL_ERROR_ZERO_RETURN, _) => Ok(0),
            (sys::SSL_ERROR_WANT_READ | sys::SSL_ERROR_WANT_WRITE, _) => {
                Err(NetError(libc::EAGAIN))
            }
            (code, errno) => {
                self.failed = true;
                if code == sys::SSL_ERROR_SYSCALL && errno == 0 {
                    let errors = ErrorStack::get();
                    if errors.errors().is_empty() {
                        // EOF without close_notify: the end of the stream,
                        // but the peer did not say it meant to stop there.
                        self.error = Some(format!("{what}: the peer closed without close_notify"));
                        return Ok(0);
                    }
                    self.error = Some(format!("{what}: {errors}"));
                    return Err(NetError(libc::EPROTO));
                }
                self.error = Some(self.describe(code, errno, what));
                Err(NetError(if errno != 0 { errno } else { libc::EPROTO }))
            }
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
        if let Some(end) = self.held.take() {
            return end;
        }
        let mut filled = 0;
        loop {
            let rest = &mut buf[filled..];
            let mut n = 0;
            // SAFETY: a live SSL; `rest` is writable for its length.
            let r = unsafe {
                sys::SSL_read_ex(self.ptr(), rest.as_mut_ptr().cast(), rest.len(), &mut n)
            };
            if r == 1 {
                filled += n;
                if filled == buf.len() {
                    self.more = self.read_ahead_pending();
                    return Ok(filled);
                }
                if !self.read_ahead_pending() {
                    if n < LARGE_RECORD {
                        return Ok(filled);
                    }
                    // What OpenSSL held is read, and the peer sends large
                    // records: one more socket read, which never waits (a
                    // blocking socket must not block here), so that one
                    // read takes a whole batch of large messages (their
                    // answers then leave together, in fewer records).
                    NO_WAIT.with(|c| c.set(true));
                }
                continue;
            }
            NO_WAIT.with(|c| c.set(false));
            let end = self.failure(r, "TLS read failed");
            if filled == 0 {
                return end;
            }
            if !matches!(end, Err(e) if e.would_block()) {
                // For the next read (the error queue is drained already:
                // another session's call must not see it).
                self.held = Some(end);
                self.more = true;
            }
            return Ok(filled);
        }
    }

    /// Bytes OpenSSL holds (decrypted or read ahead, whole records or not).
    fn read_ahead_pending(&self) -> bool {
        // SAFETY: a live SSL.
        self.established && unsafe { sys::SSL_has_pending(self.ptr()) } == 1
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
        let mut n = 0;
        // SAFETY: a live SSL; `buf` is readable for its length.
        let r = unsafe { sys::SSL_write_ex(self.ptr(), buf.as_ptr().cast(), buf.len(), &mut n) };
        if r == 1 {
            return Ok(n);
        }
        self.failure(r, "TLS write failed")
    }

    /// Decrypted bytes held inside OpenSSL.
    pub(crate) fn pending(&self) -> usize {
        if self.established {
            self.ssl.pending()
        } else {
            0
        }
    }

    /// Sends close_notify once (best effort, does not wait for the peer's).
    pub(crate) fn close_notify(&mut self) {
        if self.established && !self.failed && !self.shut {
            self.shut = true;
            // SAFETY: a live SSL; whatever it left in the error queue is
            // not this thread's next call's.
            unsafe {
                sys::SSL_shutdown(self.ptr());
                sys::ERR_clear_error();
            }
            IO_ERRNO.with(|c| c.set(0));
        }
    }

    /// The OpenSSL objects, for the post-handshake check.
    pub(crate) fn native(&self) -> (*mut c_void, *mut c_void) {
        (self.ssl.ssl_context().as_ptr().cast(), self.ptr())
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
