//! The C TLS table (`noPollTlsOps`): TLS from a library the firmware
//! already has (mbedTLS, wolfSSL, esp-tls), installed once with
//! `nopoll_install_tls_ops`, beside the socket table. Works in every build;
//! when installed it is used instead of OpenSSL.
//!
//! The table's sessions never touch the socket: they read and write
//! ciphertext through the two bio callbacks they are given, which call
//! `net::recv` / `net::send` (so through the socket table on firmware).

#![allow(non_camel_case_types)]

#[allow(unused_imports)]
use crate::prelude::*;

use super::{Step, TlsError, TlsOptions};
use crate::net::{self, NetError, Socket};
use crate::sync::atomic::{AtomicI32, AtomicPtr, Ordering};
use core::ffi::{c_char, c_int, c_long, c_uchar, c_void};

/// A bio callback or table entry had to wait for the socket to be readable.
pub const NOPOLL_TLS_WANT_READ: c_int = -2;
/// ... or writable.
pub const NOPOLL_TLS_WANT_WRITE: c_int = -3;
/// `noPollTlsOps::version` of this layout.
pub const NOPOLL_TLS_OPS_VERSION: c_int = 1;

/// What a new session is for (strings NUL-terminated, valid during the
/// `session_new` call only; NULL when not given).
#[repr(C)]
pub struct noPollTlsParams {
    /// 1 for a server (accepted) session, 0 for a client.
    pub is_server: c_int,
    /// Client: the name for SNI and certificate verification; NULL for an
    /// IP literal's SNI (the name to verify is then `verify_ip`).
    pub host_name: *const c_char,
    /// Client: an IP literal the certificate must carry (or NULL).
    pub verify_ip: *const c_char,
    /// Verify the peer (client: chain and name; server: require a client
    /// certificate).
    pub verify: c_int,
    /// Lowest TLS version as a `noPollSslProtocol` (TLS 1.2 unless
    /// NOPOLL_METHOD_TLSV1_1 / TLSV1).
    pub min_version: c_int,
    /// Own certificate, key, chain files; CA file (client: in addition to
    /// the backend's trust store if it has one).
    pub certificate: *const c_char,
    pub private_key: *const c_char,
    pub chain_certificate: *const c_char,
    pub ca_certificate: *const c_char,
}

/// Reads ciphertext: n > 0 bytes, 0 at the end of the stream,
/// NOPOLL_TLS_WANT_READ, or -1.
pub type noPollTlsBioRecv =
    Option<unsafe extern "C" fn(bio: *mut c_void, buf: *mut c_uchar, len: usize) -> c_int>;
/// Writes ciphertext: n > 0 bytes taken, NOPOLL_TLS_WANT_WRITE, or -1.
pub type noPollTlsBioSend =
    Option<unsafe extern "C" fn(bio: *mut c_void, buf: *const c_uchar, len: usize) -> c_int>;

/// A TLS implementation as a table of C functions. Every entry is
/// mandatory. Return conventions: n >= 0 as documented, NOPOLL_TLS_WANT_READ
/// / NOPOLL_TLS_WANT_WRITE when the socket must become readable / writable
/// first, -1 on failure.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct noPollTlsOps {
    /// NOPOLL_TLS_OPS_VERSION.
    pub version: c_int,
    /// A new session over `bio` (pass it to `recv`/`send`); NULL on
    /// failure, with a NUL-terminated reason in `err` (`err_size` bytes).
    pub session_new: Option<
        unsafe extern "C" fn(
            params: *const noPollTlsParams,
            bio: *mut c_void,
            recv: noPollTlsBioRecv,
            send: noPollTlsBioSend,
            err: *mut c_char,
            err_size: c_int,
        ) -> *mut c_void,
    >,
    /// One handshake step: 0 when established, WANT_*, -1.
    pub handshake: Option<unsafe extern "C" fn(s: *mut c_void) -> c_int>,
    /// Plaintext: n > 0, 0 at the end (close_notify), WANT_*, -1.
    pub read: Option<unsafe extern "C" fn(s: *mut c_void, buf: *mut c_uchar, len: c_int) -> c_int>,
    /// Plaintext out: n > 0 taken (partial writes allowed), WANT_*, -1.
    pub write:
        Option<unsafe extern "C" fn(s: *mut c_void, buf: *const c_uchar, len: c_int) -> c_int>,
    /// Decrypted bytes held inside (the loop serves them without waiting).
    pub pending: Option<unsafe extern "C" fn(s: *mut c_void) -> c_int>,
    /// Sends close_notify (best effort, never waits).
    pub close_notify: Option<unsafe extern "C" fn(s: *mut c_void)>,
    /// Frees the session (exactly once, also after a failure).
    pub session_free: Option<unsafe extern "C" fn(s: *mut c_void)>,
    /// 0 when the peer verified (or verification is off), else the
    /// backend's verification flags.
    pub verify_result: Option<unsafe extern "C" fn(s: *mut c_void) -> c_long>,
    /// The backend's session object (handed to the post-TLS check as its
    /// `SSL` argument, with NULL as `SSL_CTX`).
    pub native: Option<unsafe extern "C" fn(s: *mut c_void) -> *mut c_void>,
}

/// The installed table (leaked copy), or NULL.
static INSTALLED: AtomicPtr<noPollTlsOps> = AtomicPtr::new(core::ptr::null_mut());

/// Installs `t` for the whole process (once). False if one is installed.
pub(crate) fn install(t: &'static noPollTlsOps) -> bool {
    INSTALLED
        .compare_exchange(
            core::ptr::null_mut(),
            (t as *const noPollTlsOps).cast_mut(),
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_ok()
}

/// The installed table.
pub(crate) fn installed() -> Option<&'static noPollTlsOps> {
    let p = INSTALLED.load(Ordering::Acquire);
    // SAFETY: INSTALLED only ever holds pointers from `&'static noPollTlsOps`.
    unsafe { p.as_ref() }
}

/// The socket a session's bio callbacks use (boxed: its address is given
/// to C and stays put).
struct Bio {
    fd: AtomicI32,
}

unsafe extern "C" fn bio_recv(bio: *mut c_void, buf: *mut c_uchar, len: usize) -> c_int {
    if bio.is_null() || buf.is_null() {
        return -1;
    }
    // SAFETY: `bio` is the `Bio` this module gave to session_new (alive as
    // long as the session); `buf` is writable for `len` bytes (table
    // contract).
    let (bio, buf) = unsafe {
        (
            &*bio.cast::<Bio>(),
            core::slice::from_raw_parts_mut(buf, len.min(c_int::MAX as usize)),
        )
    };
    match net::recv(bio.fd.load(Ordering::Relaxed), buf) {
        Ok(n) => n as c_int,
        Err(e) if e.would_block() => NOPOLL_TLS_WANT_READ,
        Err(_) => -1,
    }
}

unsafe extern "C" fn bio_send(bio: *mut c_void, buf: *const c_uchar, len: usize) -> c_int {
    if bio.is_null() || buf.is_null() {
        return -1;
    }
    // SAFETY: as in bio_recv; `buf` is readable for `len` bytes.
    let (bio, buf) = unsafe {
        (
            &*bio.cast::<Bio>(),
            core::slice::from_raw_parts(buf, len.min(c_int::MAX as usize)),
        )
    };
    match net::send(bio.fd.load(Ordering::Relaxed), buf) {
        Ok(n) => n as c_int,
        Err(e) if e.would_block() => NOPOLL_TLS_WANT_WRITE,
        Err(_) => -1,
    }
}

/// A NUL-terminated copy of a string for C (None: NULL).
fn c_copy(s: Option<&str>) -> Option<Vec<u8>> {
    s.map(|s| {
        let mut v: Vec<u8> = s.bytes().filter(|&b| b != 0).collect();
        v.push(0);
        v
    })
}

fn c_ptr(v: &Option<Vec<u8>>) -> *const c_char {
    v.as_ref()
        .map_or(core::ptr::null(), |v| v.as_ptr().cast::<c_char>())
}

/// A session of the installed table.
/// "`what` (TLS table returned `r`)", without `core::fmt` (which a
/// firmware would link for this line alone).
#[cold]
#[inline(never)]
fn failure(what: &str, r: c_int) -> String {
    let mut e = String::from(what);
    e.push_str(if r < 0 {
        " (TLS table returned -"
    } else {
        " (TLS table returned "
    });
    crate::protocol::text::push_decimal(&mut e, u64::from(r.unsigned_abs()));
    crate::protocol::text::push_ascii(&mut e, b")");
    e
}

pub(crate) struct Session {
    t: &'static noPollTlsOps,
    s: *mut c_void,
    bio: Box<Bio>,
    established: bool,
    failed: bool,
    shut: bool,
    pub(crate) error: Option<TlsError>,
}

// SAFETY: the C session is used by one thread at a time (the transport
// keeps it under a lock); the table's contract allows moving it between
// threads (it is a plain object of the backend).
unsafe impl Send for Session {}

impl Session {
    /// A session of table `t`: a server one, or a client one for `host`.
    pub(crate) fn new(
        t: &'static noPollTlsOps,
        fd: Socket,
        server: bool,
        host: &str,
        o: &TlsOptions,
    ) -> Result<Session, TlsError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let is_ip = host.parse::<core::net::IpAddr>().is_ok();
        let (name, ip) = match (server, is_ip) {
            (true, _) => (None, None),
            (false, true) => (None, c_copy(Some(host))),
            (false, false) => (c_copy(Some(host)), None),
        };
        let files = [
            c_copy(o.certificate.as_deref()),
            c_copy(o.private_key.as_deref().or(o.certificate.as_deref())),
            c_copy(o.chain.as_deref()),
            c_copy(o.ca.as_deref()),
        ];
        let p = noPollTlsParams {
            is_server: server as c_int,
            host_name: c_ptr(&name),
            verify_ip: c_ptr(&ip),
            verify: o.verify as c_int,
            min_version: o.protocol,
            certificate: c_ptr(&files[0]),
            private_key: c_ptr(&files[1]),
            chain_certificate: c_ptr(&files[2]),
            ca_certificate: c_ptr(&files[3]),
        };
        let bio = Box::new(Bio {
            fd: AtomicI32::new(fd),
        });
        let mut err = [0u8; 256];
        let new = t.session_new.ok_or("the TLS table has no session_new")?;
        // SAFETY: the table's contract: `p` and its strings live for the
        // call; `bio` outlives the session (dropped after session_free);
        // `err` is writable for its length.
        let s = unsafe {
            new(
                &p,
                (&*bio as *const Bio).cast_mut().cast(),
                Some(bio_recv),
                Some(bio_send),
                err.as_mut_ptr().cast(),
                err.len() as c_int,
            )
        };
        if s.is_null() {
            let end = err.iter().position(|&b| b == 0).unwrap_or(err.len());
            let why = String::from_utf8_lossy(&err[..end]);
            return Err(format!("the TLS table could not make a session: {why}"));
        }
        Ok(Session {
            t,
            s,
            bio,
            established: false,
            failed: false,
            shut: false,
            error: None,
        })
    }

    pub(crate) fn set_fd(&mut self, fd: Socket) {
        self.bio.fd.store(fd, Ordering::Relaxed);
    }

    pub(crate) fn established(&self) -> bool {
        self.established
    }

    fn verify_failure(&self) -> Option<TlsError> {
        let f = self.t.verify_result?;
        // SAFETY: a live session of this table.
        let v = unsafe { f(self.s) };
        (v != 0).then(|| format!("certificate verification failed (backend flags {v:#x})"))
    }

    pub(crate) fn handshake(&mut self) -> Result<Step, TlsError> {
        if self.established {
            return Ok(Step::Done);
        }
        let f = self.t.handshake.ok_or("the TLS table has no handshake")?;
        // SAFETY: a live session of this table.
        match unsafe { f(self.s) } {
            0 => {
                self.established = true;
                Ok(Step::Done)
            }
            NOPOLL_TLS_WANT_READ => Ok(Step::WantRead),
            NOPOLL_TLS_WANT_WRITE => Ok(Step::WantWrite),
            r => {
                self.failed = true;
                let why = match self.verify_failure() {
                    Some(v) => format!("TLS handshake failed: {v}"),
                    None => format!("TLS handshake failed (TLS table returned {r})"),
                };
                self.error = Some(why.clone());
                Err(why)
            }
        }
    }

    fn result(&mut self, r: c_int, what: &str) -> Result<usize, NetError> {
        match r {
            n if n >= 0 => Ok(n as usize),
            NOPOLL_TLS_WANT_READ | NOPOLL_TLS_WANT_WRITE => Err(NetError(crate::sys::EAGAIN)),
            r => {
                self.failed = true;
                self.error = Some(failure(what, r));
                Err(NetError(crate::sys::EPROTO))
            }
        }
    }

    pub(crate) fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let Some(f) = self.t.read else {
            return Err(NetError(crate::sys::EPROTO));
        };
        let len = buf.len().min(c_int::MAX as usize) as c_int;
        // SAFETY: a live session; `buf` is writable for `len` bytes.
        let r = unsafe { f(self.s, buf.as_mut_ptr(), len) };
        self.result(r, "TLS read failed")
    }

    pub(crate) fn write(&mut self, buf: &[u8]) -> Result<usize, NetError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let Some(f) = self.t.write else {
            return Err(NetError(crate::sys::EPROTO));
        };
        let len = buf.len().min(c_int::MAX as usize) as c_int;
        // SAFETY: a live session; `buf` is readable for `len` bytes.
        let r = unsafe { f(self.s, buf.as_ptr(), len) };
        self.result(r, "TLS write failed")
    }

    pub(crate) fn pending(&self) -> usize {
        match (self.established, self.t.pending) {
            // SAFETY: a live session of this table.
            (true, Some(f)) => unsafe { f(self.s) }.max(0) as usize,
            _ => 0,
        }
    }

    pub(crate) fn close_notify(&mut self) {
        if self.established && !self.failed && !self.shut {
            self.shut = true;
            if let Some(f) = self.t.close_notify {
                // SAFETY: a live session of this table.
                unsafe { f(self.s) };
            }
        }
    }

    pub(crate) fn native(&self) -> (*mut c_void, *mut c_void) {
        let n = match self.t.native {
            // SAFETY: a live session of this table.
            Some(f) => unsafe { f(self.s) },
            None => core::ptr::null_mut(),
        };
        (core::ptr::null_mut(), n)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(f) = self.t.session_free {
            // SAFETY: freed exactly once, here; the bio is dropped after.
            unsafe { f(self.s) };
        }
    }
}
