//! Where a connection's bytes go: the seam between the state machine and
//! `net/` (which alone touches sockets).
//!
//! A connection's transport is its plain socket, or a TLS session over it
//! (`crate::tls`: OpenSSL, or a C table of TLS functions): the session reads
//! ciphertext through `net/` and yields plaintext, and may hold decrypted
//! bytes that the socket will never signal again (the peer sent them in the same TLS record as what was
//! read). [`Transport::has_buffered_input`] says so; the event loop holds
//! such connections in its poller (`Poller::hold`), whose waits report them
//! readable without blocking (see `event_loop.rs`), so nothing received is
//! left waiting for an event that will not come.

#[allow(unused_imports)]
use crate::prelude::*;

use crate::net::{self, NetError, Socket};
use crate::sync::atomic::{AtomicI32, AtomicPtr, Ordering};
use crate::sync::Lock;
use crate::tls::{ListenerTls, Session};
use core::mem::ManuallyDrop;

/// What TLS a transport carries.
pub(crate) enum Tls {
    /// Plain.
    None,
    /// A TLS listener's configuration (what its connections start with;
    /// boxed: inline it made every connection ~180 bytes larger).
    Listener(Box<ListenerTls>),
    /// A TLS session on a connection (a pointer: `Session` is boxed).
    Session(Session),
}

/// What the transport's own methods ask of a TLS session: one out-of-line
/// body ([`Transport::session_op`]) serves them all, not a copy of the
/// lock and the session's calls at each (firmware size: a plain program
/// still links the TLS branches).
enum Op<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
    WriteVectored(&'a [u8], &'a [u8]),
    /// 1 when it holds received bytes the socket will not signal.
    HasInput,
    /// Plaintext bytes held.
    Pending,
    /// 1 while its handshake has not completed.
    Handshaking,
    CloseNotify,
    /// Why the session last failed, taken.
    TakeError(&'a mut Option<crate::tls::TlsError>),
    /// The TLS state dropped (the transport's end): `Tls::None` after.
    Clear,
}

/// [`Transport::session_op`]'s type.
type SessionOp = for<'a> fn(&Transport, Op<'a>) -> Result<usize, NetError>;

/// A connection's byte stream.
pub(crate) struct Transport {
    /// The socket, or -1 once released.
    sock: AtomicI32,
    /// [`Transport::session_op`] as a pointer once TLS is installed, else
    /// null (no lock taken on plain connections). Put here by
    /// [`Transport::set_tls`] alone, so a program that never installs TLS
    /// links no session calls (firmware size). Per transport, not a
    /// global: a global stored once is folded back by the optimiser.
    tls_op: AtomicPtr<()>,
    /// Not dropped with the transport: a TLS transport empties it through
    /// `tls_op` first (so a plain program links no drop of TLS state).
    pub(crate) tls: ManuallyDrop<Lock<Tls>>,
}

impl Transport {
    /// A plain TCP socket.
    pub(crate) fn plain(fd: Socket) -> Transport {
        Transport {
            sock: AtomicI32::new(fd),
            tls_op: AtomicPtr::new(core::ptr::null_mut()),
            tls: ManuallyDrop::new(Lock::new(Tls::None)),
        }
    }

    /// Installs TLS (a session, or a listener's configuration).
    pub(crate) fn set_tls(&self, t: Tls) {
        let on = !matches!(t, Tls::None);
        *self.tls.lock() = t;
        let op: SessionOp = Transport::session_op;
        let op = if on {
            op as *mut ()
        } else {
            core::ptr::null_mut()
        };
        self.tls_op.store(op, Ordering::Release);
    }

    /// [`Transport::session_op`] when this transport runs TLS.
    #[inline]
    fn tls(&self) -> Option<SessionOp> {
        let p = self.tls_op.load(Ordering::Acquire);
        // SAFETY: non-null values come from `set_tls`: a `SessionOp`.
        (!p.is_null()).then(|| unsafe { core::mem::transmute::<*mut (), SessionOp>(p) })
    }

    /// Runs `op` on the TLS session if this transport has one.
    #[inline]
    fn on_session(&self, op: Op<'_>) -> Option<Result<usize, NetError>> {
        self.tls().map(|f| f(self, op))
    }

    /// True when this transport runs (or, for a listener, accepts) TLS.
    #[inline]
    pub(crate) fn is_tls(&self) -> bool {
        !self.tls_op.load(Ordering::Acquire).is_null()
    }

    /// Runs `f` on the TLS session, if there is one.
    pub(crate) fn with_session<R>(&self, f: impl FnOnce(&mut Session) -> R) -> Option<R> {
        if !self.is_tls() {
            return None;
        }
        let mut t = self.tls.lock();
        match &mut *t {
            Tls::Session(s) => {
                s.set_fd(self.socket());
                Some(f(s))
            }
            _ => None,
        }
    }

    /// Runs `op` on the TLS session; `ENOTCONN` when there is none.
    #[inline(never)]
    fn session_op(&self, op: Op<'_>) -> Result<usize, NetError> {
        let mut t = self.tls.lock();
        if let Op::Clear = op {
            *t = Tls::None;
            return Ok(0);
        }
        let Tls::Session(s) = &mut *t else {
            return Err(NetError(crate::sys::ENOTCONN));
        };
        s.set_fd(self.socket());
        match op {
            Op::Read(buf) => s.read(buf),
            Op::Write(buf) => s.write(buf),
            Op::WriteVectored(head, data) => s.write_vectored(head, data),
            Op::HasInput => Ok(usize::from(s.has_input())),
            Op::Pending => Ok(s.pending()),
            Op::Handshaking => Ok(usize::from(!s.established())),
            Op::CloseNotify => {
                s.close_notify();
                Ok(0)
            }
            Op::TakeError(out) => {
                *out = s.take_error();
                Ok(0)
            }
            Op::Clear => Ok(0),
        }
    }

    /// A TLS session whose handshake has not completed.
    #[inline]
    pub(crate) fn tls_handshaking(&self) -> bool {
        self.on_session(Op::Handshaking)
            .is_some_and(|r| r.is_ok_and(|n| n != 0))
    }

    /// Why the TLS session last failed (taken once, for the log).
    pub(crate) fn take_tls_error(&self) -> Option<String> {
        let mut why = None;
        let _ = self.on_session(Op::TakeError(&mut why));
        why
    }

    /// Plaintext held inside the TLS layer (nopoll_conn_read_pending).
    pub(crate) fn buffered_len(&self) -> usize {
        self.on_session(Op::Pending).map_or(0, |r| r.unwrap_or(0))
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
        if let Some(r) = self.on_session(Op::Read(buf)) {
            return r;
        }
        net::recv(self.socket(), buf)
    }

    /// Writes bytes; returns how many were taken.
    #[inline]
    pub(crate) fn send(&self, buf: &[u8]) -> Result<usize, NetError> {
        if let Some(r) = self.on_session(Op::Write(buf)) {
            return r;
        }
        net::send(self.socket(), buf)
    }

    /// Writes a frame's header and payload in order, with one call (a TLS
    /// session encrypts the payload from where it is: `Session::write_vectored`).
    /// Returns how many of their bytes were taken.
    pub(crate) fn send_vectored(&self, head: &[u8], data: &[u8]) -> Result<usize, NetError> {
        if let Some(r) = self.on_session(Op::WriteVectored(head, data)) {
            return r;
        }
        net::send_pair(self.socket(), head, data)
    }

    /// Received bytes held inside the transport that the socket will not
    /// signal as readable (a TLS session's decrypted records). Never for a
    /// plain socket.
    #[inline]
    pub(crate) fn has_buffered_input(&self) -> bool {
        self.on_session(Op::HasInput)
            .is_some_and(|r| r.is_ok_and(|n| n != 0))
    }

    /// Takes the socket out (to close it); -1 if already taken. An
    /// established TLS session sends its close_notify first.
    pub(crate) fn take_socket(&self) -> Socket {
        if self.socket() >= 0 {
            let _ = self.on_session(Op::CloseNotify);
        }
        self.sock.swap(-1, Ordering::AcqRel)
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        let fd = *self.sock.get_mut();
        if fd >= 0 {
            net::close(fd);
        }
        // TLS state is dropped through the pointer `set_tls` put here;
        // without one it is `Tls::None`, which owns nothing.
        let _ = self.on_session(Op::Clear);
        // SAFETY: `tls` is taken once, here, and never used again.
        unsafe { ManuallyDrop::take(&mut self.tls) }.forget_value();
    }
}
