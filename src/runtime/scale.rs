//! Running behind a load balancer: the client's real address (PROXY
//! protocol on a listener, `X-Forwarded-For` / `X-Real-IP` from trusted
//! proxies) and graceful drain for rolling restarts.
//!
//! The parsing is sans-IO (`protocol/proxy.rs`); the connection's machine
//! has a phase for the PROXY header before the HTTP handshake
//! (`machine.rs`). This file holds the settings and the calls of the API.
//!
//! Drain, as a balancer sees it (README, "Deployment"):
//! 1. [`Context::set_draining`]`(true)`: the application's health check
//!    (its `on_http` handler, on the same port) answers 503, so the
//!    balancer stops sending new connections here;
//! 2. after the balancer's check interval, [`Context::drain`]: the
//!    listeners close, every open connection gets a close frame (1001
//!    Going Away, or the caller's code and reason), the close handshakes
//!    complete until the deadline, then whatever is left is closed.
//!    Clients reconnect through the balancer, to another instance.

#[allow(unused_imports)]
use crate::prelude::*;

use super::conn::{ConnRole, Connection};
use super::context::{ctx_log, Context};
use super::event_loop::{in_loop, LoopExit};
use super::machine::{Forwarding, FORWARDING};
use super::Error;
use crate::platform::Instant;
use crate::protocol::proxy::Cidr;
use core::net::IpAddr;
use core::time::Duration;

/// A context's settings for running behind proxies (in its configuration).
#[derive(Clone, Default)]
pub(crate) struct ScaleSettings {
    /// Peers allowed to send a PROXY header or forwarded-for headers.
    pub trusted: Vec<Cidr>,
    /// Listeners (by id) whose connections start with a PROXY header.
    pub proxy_listeners: Vec<i32>,
    /// The health check should say "go away" ([`Context::set_draining`]).
    pub draining: bool,
    /// Set by the setters above, which are what link it (see [`Forwarding`]).
    pub forwarding: Option<&'static Forwarding>,
}

/// What [`Context::drain`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Listeners closed.
    pub listeners: usize,
    /// Connections sent a close frame.
    pub closing: usize,
    /// Connections closed without completing the close handshake (still
    /// open at the deadline, or not open yet when the drain began).
    pub forced: usize,
}

/// The close code of a drain without one of the caller's (RFC 6455
/// "Going Away": a server going down).
pub const GOING_AWAY: u16 = 1001;

impl Context {
    /// Sets the proxies (addresses or CIDR ranges, separated by commas or
    /// spaces; empty clears) trusted to tell a client's address: by a PROXY
    /// header on a listener that requires one, and by `X-Forwarded-For` /
    /// `X-Real-IP` on any listener. Returns how many entries were set;
    /// a malformed entry sets nothing and is an error.
    pub fn set_trusted_proxies(&self, list: &str) -> Result<usize, Error> {
        let mut v = Vec::new();
        for part in list.split([',', ' ', '\t', '\n']).filter(|p| !p.is_empty()) {
            v.push(Cidr::parse(part).ok_or(Error::InvalidArgument("not an address or CIDR"))?);
        }
        let n = v.len();
        let mut cfg = self.inner.cfg.lock();
        cfg.scale.trusted = v;
        cfg.scale.forwarding = Some(&FORWARDING);
        Ok(n)
    }

    /// Whether `ip` is a trusted proxy; `None` when no list is set.
    pub fn trusts_proxy(&self, ip: IpAddr) -> Option<bool> {
        let cfg = self.inner.cfg.lock();
        let t = &cfg.scale.trusted;
        (!t.is_empty()).then(|| t.iter().any(|c| c.contains(ip)))
    }

    /// Marks the context as draining (or not): [`Context::is_draining`],
    /// which a health check answers from. Set by [`Context::drain`] too.
    pub fn set_draining(&self, on: bool) {
        self.inner.cfg.lock().scale.draining = on;
    }

    /// Whether the context is draining: a health check should answer 503.
    pub fn is_draining(&self) -> bool {
        self.inner.cfg.lock().scale.draining
    }

    /// Drains the context for a restart: marks it draining, closes its
    /// listeners, sends every open connection a close frame (`status`,
    /// default [`GOING_AWAY`], and `reason`), serves the connections until
    /// every close handshake completed or `timeout` passed, then closes
    /// whatever is left. Connections still in their opening handshake are
    /// closed at once. Must not be called from the loop's own thread
    /// (a handler): [`Error::InvalidArgument`]. When no loop runs, drain
    /// runs it; when another thread runs it, drain waits for it.
    pub fn drain(
        &self,
        status: Option<u16>,
        reason: &str,
        timeout: Duration,
    ) -> Result<DrainReport, Error> {
        if in_loop() {
            return Err(Error::InvalidArgument("drain from the loop's own thread"));
        }
        let status = status.unwrap_or(GOING_AWAY);
        if !crate::protocol::close::is_valid_close_code(status) || reason.len() > 123 {
            return Err(Error::InvalidArgument("close status or reason"));
        }
        let deadline = Instant::now() + timeout;
        self.set_draining(true);
        let mut report = DrainReport::default();
        for c in self.connections() {
            match c.role() {
                ConnRole::Listener => {
                    c.close(None, b"");
                    report.listeners += 1;
                }
                _ if open_now(&c) => {
                    c.start_close(status, reason.as_bytes());
                    report.closing += 1;
                }
                // Closed already (an answered HTTP request, a peer that
                // left) and not dropped by the loop yet: nothing to close.
                _ if !c.is_ok() => {
                    self.unregister(&c);
                }
                _ => {
                    c.shutdown();
                    self.unregister(&c);
                    report.forced += 1;
                }
            }
        }
        ctx_log!(
            self,
            Debug,
            "drain: {} listeners closed, {} connections closing with {status}",
            report.listeners,
            report.closing
        );
        loop {
            if !self.connections().iter().any(open_now) {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let slice = left.min(Duration::from_millis(50));
            if self.loop_wait(Some(slice)) == LoopExit::Failed {
                // Another thread runs the loop: it completes the handshakes.
                crate::platform::sleep(slice.min(Duration::from_millis(10)));
            }
        }
        for c in self.connections() {
            if c.role() != ConnRole::Listener {
                if open_now(&c) {
                    report.forced += 1;
                }
                c.shutdown();
                self.unregister(&c);
            }
        }
        ctx_log!(
            self,
            Debug,
            "drain: done, {} connections closed without a close handshake",
            report.forced
        );
        Ok(report)
    }
}

/// Open (handshake done, not closed), without reading anything. The
/// machine's phase, not the lock-free flag: the flag is published after
/// the 101 is written, so a peer may already be open that the flag does
/// not show yet.
fn open_now(c: &Connection) -> bool {
    c.is_ok() && c.inner.st.lock().m.is_open()
}

impl Connection {
    /// Listener: requires (or stops requiring) a PROXY protocol header,
    /// version 1 or 2, at the start of every connection it accepts from
    /// now on. A connection whose header is missing, malformed, or sent by
    /// a peer that is not a trusted proxy (when
    /// [`Context::set_trusted_proxies`] set a list) is closed, with a log
    /// line.
    pub fn set_proxy_protocol(&self, on: bool) -> Result<(), Error> {
        if self.role() != ConnRole::Listener {
            return Err(Error::InvalidArgument("not a listener"));
        }
        let ctx = self.ctx();
        let mut cfg = ctx.inner.cfg.lock();
        let l = &mut cfg.scale.proxy_listeners;
        l.retain(|&id| id != self.id());
        if on {
            l.push(self.id());
            cfg.scale.forwarding = Some(&FORWARDING);
        }
        Ok(())
    }

    /// Listener: whether its connections start with a PROXY header.
    pub fn proxy_protocol(&self) -> bool {
        self.inner
            .ctx
            .cfg
            .lock()
            .scale
            .proxy_listeners
            .contains(&self.id())
    }

    /// The address of the proxy the connection came through (its TCP
    /// peer), when a trusted proxy told the client's address (then
    /// [`Connection::host`] is the client's); `None` otherwise.
    pub fn proxy_host(&self) -> Option<String> {
        let proxied = self.inner.st.lock().m.client_addr().is_some();
        proxied.then(|| self.peer_host().to_string())
    }

    /// The connection's TCP peer, whatever a proxy said.
    pub fn peer_host(&self) -> &str {
        &self.inner.host
    }

    /// Queues a close frame and writes it, leaving the connection open to
    /// receive the peer's (the loop completes the close handshake).
    pub(crate) fn start_close(&self, status: u16, reason: &[u8]) {
        let mut st = self.inner.st.lock();
        let _ = st.m.queue_close(Some(status), reason);
        let _ = self.inner.flush_locked(&mut st);
    }
}
