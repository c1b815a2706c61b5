//! Making connections: listen, connect, accept, adopt a socket.

#[allow(unused_imports)]
use crate::prelude::*;

use super::conn::{ConnRole, Connection};
use super::context::{ctx_log, Context};
use super::machine::Machine;
use super::rng::OsRandom;
use super::Error;
use crate::net::{self, Socket};
use crate::platform::Instant;
use crate::protocol::{ClientHandshake, ClientRequest, ServerHandshake};
use crate::sync::atomic::Ordering;
use core::time::Duration;

/// Parameters of a client connection.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// Host or address to connect to.
    pub host: String,
    /// Port (default "80").
    pub port: String,
    /// Use IPv6.
    pub ipv6: bool,
    /// Name for the `Host` header (default: `host`).
    pub host_name: Option<String>,
    /// Request path (default "/").
    pub path: Option<String>,
    /// Offered subprotocols, comma separated.
    pub protocols: Option<String>,
    /// `Origin` header (default `http://<host_name>` unless disabled).
    pub origin: Option<String>,
    /// Send no `Origin` header at all.
    pub no_origin: bool,
    /// `Cookie` header.
    pub cookie: Option<String>,
    /// Extra header lines, nopoll format ("\r\nName: value"...).
    pub extra_headers: Option<String>,
    /// Local address to bind before connecting.
    pub interface: Option<String>,
    /// Incoming frame limit for this connection.
    pub max_frame_size: Option<u64>,
}

impl ConnectOptions {
    /// Options for `ws://host:port/`.
    pub fn new(host: &str, port: &str) -> Self {
        ConnectOptions {
            host: host.into(),
            port: port.into(),
            ..Default::default()
        }
    }
}

impl Connection {
    pub(crate) fn listen(
        ctx: &Context,
        host: &str,
        port: &str,
        ipv6: bool,
    ) -> Result<Connection, Error> {
        if host.is_empty() || port.is_empty() {
            return Err(Error::InvalidArgument("host and port are required"));
        }
        let backlog = ctx.inner.cfg.lock().backlog;
        let fd = net::tcp_listen(host, port, ipv6, backlog)?;
        let real_port = net::local_addr(fd)
            .map(|(_, p)| p)
            .unwrap_or_else(|| port.to_string());
        let conn = Self::build(
            ctx,
            ConnRole::Listener,
            fd,
            host.to_string(),
            real_port,
            Machine::listening(),
        );
        ctx.register(&conn);
        ctx_log!(
            ctx,
            Debug,
            "listener id={} on {}:{} (socket {fd})",
            conn.id(),
            host,
            conn.port()
        );
        Ok(conn)
    }

    pub(crate) fn connect(ctx: &Context, o: &ConnectOptions) -> Result<Connection, Error> {
        if o.host.is_empty() {
            return Err(Error::InvalidArgument("host is required"));
        }
        let port = if o.port.is_empty() {
            "80"
        } else {
            o.port.as_str()
        };
        let timeout_ms =
            (ctx.inner.cfg.lock().connect_timeout_us / 1000).clamp(1, u32::MAX as u64) as u32;
        let fd = net::tcp_connect(&o.host, port, o.ipv6, timeout_ms, o.interface.as_deref())
            .inspect_err(|e| {
                ctx_log!(ctx, Critical, "connect to {}:{port} failed: {e}", o.host);
            })?;
        // On failure the socket is still ours (see client_over_socket).
        Self::client_over_socket(ctx, fd, o).inspect_err(|_| net::close(fd))
    }

    /// A client handshake over a socket that is already connected. On
    /// failure the socket is left open: it is still the caller's.
    pub(crate) fn client_over_socket(
        ctx: &Context,
        fd: Socket,
        o: &ConnectOptions,
    ) -> Result<Connection, Error> {
        let cfg = ctx.config();
        let port = if o.port.is_empty() {
            "80"
        } else {
            o.port.as_str()
        };
        let name = o.host_name.as_deref().unwrap_or(&o.host);
        let host_header = if name.contains(':') && !name.starts_with('[') {
            format!("[{name}]:{port}")
        } else {
            format!("{name}:{port}")
        };
        let origin = if o.no_origin {
            None
        } else {
            Some(o.origin.clone().unwrap_or_else(|| format!("http://{name}")))
        };
        let req = ClientRequest {
            host: &host_header,
            path: o.path.as_deref().unwrap_or("/"),
            origin: origin.as_deref(),
            protocols: o.protocols.as_deref(),
            cookie: o.cookie.as_deref(),
            extra_headers: o.extra_headers.as_deref(),
            version: cfg.protocol_version,
        };
        let (hs, bytes) = ClientHandshake::new(&req, cfg.limits, &mut OsRandom)?;
        let mut m = Machine::client(hs, bytes);
        m.max_frame_size = o.max_frame_size;
        m.info.url = Some(req.path.to_string());
        m.info.host_header = Some(host_header.clone());
        m.info.origin = origin;
        m.info.cookie = o.cookie.clone();
        m.info.requested_protocol = o.protocols.clone().filter(|p| !p.is_empty());
        let conn = Self::build(
            ctx,
            ConnRole::Client,
            fd,
            o.host.clone(),
            port.to_string(),
            m,
        );
        // The request goes out before we return, bounded by the connect timeout.
        let deadline = Instant::now() + Duration::from_micros(cfg.connect_timeout_us);
        let sent = (|| loop {
            let pending = {
                let mut st = conn.inner.st.lock();
                conn.inner.flush_locked(&mut st)?;
                st.m.handshake_pending()
            };
            if !pending {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout);
            }
            net::wait_fd(
                fd,
                false,
                true,
                left.as_millis().min(i32::MAX as u128) as i32,
            )?;
        })();
        if let Err(e) = sent {
            // Dropping `conn` must not close the socket: the caller does
            // (connect) or keeps it (a socket of the application). It
            // used to be closed twice, the second time maybe as someone
            // else's descriptor.
            conn.inner.io.swap_socket(-1);
            return Err(e);
        }
        ctx.register(&conn);
        ctx.push_deadline(conn.id());
        ctx_log!(
            ctx,
            Debug,
            "client id={} sent upgrade request to {}:{port}",
            conn.id(),
            o.host
        );
        Ok(conn)
    }

    /// Wraps a socket accepted from `listener` (or by the caller),
    /// registered but not watched yet (the caller watches it once
    /// `on_accept` agreed). `peer` is the peer's host and port when the
    /// accept call gave them.
    pub(crate) fn accepted(
        ctx: &Context,
        listener: Option<&Connection>,
        fd: Socket,
        peer: Option<(String, String)>,
    ) -> Connection {
        let (host, port) = peer.or_else(|| net::peer_addr(fd)).unwrap_or_default();
        let (limits, version) = {
            let cfg = ctx.inner.cfg.lock();
            (cfg.limits, cfg.protocol_version)
        };
        let hs = ServerHandshake::with_version(limits, version);
        let conn = Self::build(ctx, ConnRole::Accepted, fd, host, port, Machine::server(hs));
        if let Some(l) = listener {
            *conn.inner.listener.lock() = Some(l.inner.clone());
            let max = l.inner.st.lock().m.max_frame_size;
            conn.inner.st.lock().m.max_frame_size = max;
        }
        ctx.register_unwatched(&conn);
        ctx.push_deadline(conn.id());
        conn
    }

    // ------------------------------------------------------------ accessors
}

impl Context {
    /// Opens a listener on `host:port` ("0" picks a free port; see
    /// [`Connection::port`]).
    pub fn listen(&self, host: &str, port: &str, ipv6: bool) -> Result<Connection, Error> {
        Connection::listen(self, host, port, ipv6)
    }

    /// Connects and sends the upgrade request; the answer is processed by
    /// [`Connection::is_ready`], [`Connection::get_msg`] or the loop.
    pub fn connect(&self, o: &ConnectOptions) -> Result<Connection, Error> {
        Connection::connect(self, o)
    }

    /// Client handshake over an already connected socket.
    pub fn connect_with_socket(&self, fd: Socket, o: &ConnectOptions) -> Result<Connection, Error> {
        Connection::client_over_socket(self, fd, o)
    }

    /// Waits for and accepts one connection on `listener`, then runs
    /// `on_accept` ([`Error::Refused`] when it refuses the connection).
    pub fn accept(&self, listener: &Connection) -> Result<Connection, Error> {
        if listener.role() != ConnRole::Listener {
            return Err(Error::InvalidArgument("not a listener"));
        }
        loop {
            let lfd = listener.socket();
            match net::accept(lfd)? {
                Some(fd) => return self.accept_socket(Some(listener), fd),
                None => {
                    net::wait_fd(lfd, true, false, -1)?;
                }
            }
        }
    }

    /// Finishes accepting `conn` (from [`Context::adopt_socket`], possibly
    /// over a socket the caller accepted itself): records `listener` (its
    /// frame limit applies), runs `on_accept`, then lets the loop serve
    /// the connection. A connection refused by `on_accept` is shut down
    /// and leaves the context: false.
    pub fn complete_accept(&self, listener: Option<&Connection>, conn: &Connection) -> bool {
        if let Some(l) = listener {
            *conn.inner.listener.lock() = Some(l.inner.clone());
            if let Some(max) = l.own_max_frame_size() {
                conn.set_max_frame_size(max);
            }
        }
        let h = self.inner.cfg.lock().on_accept.clone();
        if h.is_some_and(|h| !h(self, conn)) {
            ctx_log!(self, Debug, "conn id={} refused by on_accept", conn.id());
            conn.shutdown();
            self.unregister(conn);
            return false;
        }
        // Only now may the loop start on the handshake (whose bytes may be
        // waiting already): after the listener's settings and on_accept.
        let fd = conn.socket();
        if fd >= 0 && conn.inner.registered.load(Ordering::Acquire) {
            self.inner.io.lock().changes.insert(fd, Some(conn.id()));
            self.inner.waker.wake();
        }
        true
    }

    /// Wraps a socket accepted by the caller as a server connection that
    /// is registered but not served by the loop until
    /// [`Context::complete_accept`] accepts it.
    pub fn adopt_socket(&self, listener: Option<&Connection>, fd: Socket) -> Connection {
        let conn = Connection::accepted(self, listener, fd, None);
        ctx_log!(
            self,
            Debug,
            "adopted conn id={} from {}:{}",
            conn.id(),
            conn.host(),
            conn.port()
        );
        conn
    }

    /// Wraps a socket accepted by the caller as a server connection, as
    /// [`Context::accept`] does with one it accepts itself: `listener`'s
    /// settings apply, `on_accept` decides ([`Error::Refused`]: the
    /// connection is shut down), then the loop serves it.
    pub fn accept_socket(
        &self,
        listener: Option<&Connection>,
        fd: Socket,
    ) -> Result<Connection, Error> {
        let conn = self.adopt_socket(listener, fd);
        if self.complete_accept(listener, &conn) {
            Ok(conn)
        } else {
            Err(Error::Refused)
        }
    }

    /// Wraps a listening socket the application owns and accepts on itself
    /// (upstream's port-sharing sample hands it to
    /// `nopoll_listener_from_socket` to get a listener object for
    /// `nopoll_conn_accept_complete`). The listener is registered, but the
    /// loop never watches it: it must not accept the application's
    /// connections. Closing it closes the socket, as upstream.
    pub fn adopt_listening_socket(&self, fd: Socket) -> Connection {
        let (host, port) = net::local_addr(fd).unwrap_or_default();
        let conn = Connection::build(
            self,
            ConnRole::Listener,
            fd,
            host,
            port,
            Machine::listening(),
        );
        self.register_unwatched(&conn);
        ctx_log!(
            self,
            Debug,
            "listener id={} wraps the application's listening socket {fd}",
            conn.id()
        );
        conn
    }

    /// Registers without asking the loop to watch (the loop adds it itself).
    pub(crate) fn register_unwatched(&self, conn: &Connection) {
        let c = &conn.inner;
        if !c.registered.swap(true, Ordering::AcqRel) {
            self.inner.conns.lock().insert(c.id, c.clone());
            if self.inner.keepalive_on.load(Ordering::Acquire) {
                self.arm_keepalive(c);
            }
        }
    }
}
