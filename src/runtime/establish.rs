//! Making connections: listen, connect, accept, adopt a socket.

#[allow(unused_imports)]
use crate::prelude::*;

use super::conn::{ConnRole, Connection};
use super::context::{ctx_log, Context};
use super::machine::{Actions, Machine};
use super::rng::OsRandom;
use super::Error;
use crate::net::{self, Socket};
use crate::platform::Instant;
use crate::protocol::{text, ClientHandshake, ClientRequest, ServerHandshake};
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
    /// Offer permessage-deflate (RFC 7692) with these settings (off: None).
    pub permessage_deflate: Option<crate::protocol::DeflateConfig>,
    /// wss://: the TLS handshake runs before the upgrade request (the
    /// port then defaults to 443).
    pub tls: Option<crate::tls::TlsOptions>,
}

impl ConnectOptions {
    fn port_or_default(&self) -> &str {
        match self.port.as_str() {
            "" if self.is_tls() => "443",
            "" => "80",
            p => p,
        }
    }

    fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
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
        let real_port =
            net::local_port(fd).map_or_else(|| text::owned(port), |p| text::decimal(p.into()));
        let conn = Self::build(
            ctx,
            ConnRole::Listener,
            fd,
            text::owned(host).into(),
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
        let port = o.port_or_default();
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
        let port = o.port_or_default();
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
            deflate: o.permessage_deflate,
            version: cfg.protocol_version,
        };
        let (hs, bytes) = ClientHandshake::new(&req, cfg.limits, &mut OsRandom)?;
        let mut m = Machine::client(hs, bytes);
        m.max_frame_size = o.max_frame_size;
        m.info.record([
            Some(req.path),
            Some(&host_header),
            origin.as_deref(),
            o.cookie.as_deref(),
            None,
            o.protocols.as_deref().filter(|p| !p.is_empty()),
        ]);
        let conn = Self::build(
            ctx,
            ConnRole::Client,
            fd,
            o.host.clone().into(),
            port.to_string(),
            m,
        );
        // The request goes out before we return, bounded by the connect timeout.
        let deadline = Instant::now() + Duration::from_micros(cfg.connect_timeout_us);
        if let Some(t) = &o.tls {
            if let Err(why) = conn.tls_connect(ctx, t, name, deadline) {
                // As upstream: a connection that is not ok (NULL is for
                // argument and TCP failures), registered, socket closed.
                ctx_log!(
                    ctx,
                    Critical,
                    "wss connection to {}:{port} failed: {why}",
                    o.host
                );
                {
                    let mut st = conn.inner.st.lock();
                    conn.inner.mark_closed(&mut st);
                }
                conn.inner.release_socket(ctx);
                ctx.register(&conn);
                return Ok(conn);
            }
        }
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
    /// registered but not watched yet (the caller queues its watch: the
    /// loop's accept before `on_accept`, applied before its next wait;
    /// `complete_accept` once `on_accept` agreed). `peer` is the peer's
    /// address (from the accept call, or looked up by the caller).
    pub(crate) fn accepted(
        ctx: &Context,
        listener: Option<&Connection>,
        fd: Socket,
        peer: Option<net::Peer>,
    ) -> Connection {
        let m = {
            let cfg = ctx.inner.cfg.lock();
            let hs = ServerHandshake::with_version(cfg.limits, cfg.protocol_version);
            // The table is there whenever a listener requires a PROXY
            // header: only then is the listener looked for.
            match cfg.scale.forwarding {
                Some(f) => (f.accepted)(&cfg.scale, listener.map(|l| l.id()), hs),
                None => Machine::server(hs),
            }
        };
        // The peer's host and port are made text only if asked for (`Host`).
        let conn = Self::build(ctx, ConnRole::Accepted, fd, peer.into(), String::new(), m);
        if let Some(l) = listener {
            *conn.inner.listener.lock() = Some(l.inner.clone());
            let max = l.inner.st.lock().m.max_frame_size;
            conn.inner.st.lock().m.max_frame_size = max;
        }
        ctx.register_with(&conn, false);
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
        // A TLS listener was made by `listen_tls`, which linked server TLS.
        let tls = listener.is_some_and(|l| l.inner.io.is_tls());
        self.finish_accept(listener, conn, tls)
    }

    /// As [`Context::complete_accept`]; `tls`: the connection runs TLS
    /// (upstream's `tls_on` of `nopoll_conn_accept_complete`), with the
    /// listener's configuration or the context's default certificate.
    /// Without the `tls` feature, `tls` refuses the connection.
    pub fn complete_accept_with(
        &self,
        listener: Option<&Connection>,
        conn: &Connection,
        tls: bool,
    ) -> bool {
        if tls {
            self.enable_server_tls();
        }
        self.finish_accept(listener, conn, tls)
    }

    /// [`Context::complete_accept_with`] once server TLS is linked if `tls`.
    fn finish_accept(&self, listener: Option<&Connection>, conn: &Connection, tls: bool) -> bool {
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
        if tls && !self.start_server_tls(conn, listener) {
            return false;
        }
        // Only now may the loop start on the handshake (whose bytes may be
        // waiting already): after the listener's settings and on_accept.
        let fd = conn.socket();
        if fd >= 0 && conn.inner.registered.load(Ordering::Acquire) {
            self.queue_watch(fd, Some(conn.id()), true);
        }
        true
    }

    /// Wraps a socket accepted by the caller as a server connection that
    /// is registered but not served by the loop until
    /// [`Context::complete_accept`] accepts it.
    pub fn adopt_socket(&self, listener: Option<&Connection>, fd: Socket) -> Connection {
        let conn = Connection::accepted(self, listener, fd, net::peer_of(fd));
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
            host.into(),
            port,
            Machine::listening(),
        );
        self.register_with(&conn, false);
        ctx_log!(
            self,
            Debug,
            "listener id={} wraps the application's listening socket {fd}",
            conn.id()
        );
        conn
    }
}

pub(crate) use tls::ServerTls;

mod tls {
    use super::*;
    use crate::runtime::transport::Tls;
    #[cfg(feature = "tls")]
    use crate::tls::openssl::{self, adopt_context};
    use crate::tls::{ops, ListenerTls, Session, Step, TlsError, TlsOptions};

    /// Server-side TLS (making a session for an accepted connection and
    /// driving its handshake), reached only through this table in the
    /// context's configuration: only what makes a TLS server connection
    /// possible (`listen_tls`, `complete_accept_with` with TLS) installs
    /// it, so a firmware that serves plain WebSocket links none of it.
    pub(crate) struct ServerTls {
        start: fn(&Connection, &Context, Option<&Connection>) -> bool,
        advance: fn(&Connection, &Context, &mut Actions) -> bool,
    }

    static SERVER_TLS: ServerTls = ServerTls {
        start: Connection::start_server_tls,
        advance: Connection::tls_read_gate,
    };

    impl Context {
        /// Links server TLS for this context (see [`ServerTls`]).
        pub(super) fn enable_server_tls(&self) {
            self.inner.cfg.lock().server_tls = Some(&SERVER_TLS);
        }

        /// [`Connection::start_server_tls`], through the table.
        pub(crate) fn start_server_tls(
            &self,
            conn: &Connection,
            listener: Option<&Connection>,
        ) -> bool {
            let imp = self.inner.cfg.lock().server_tls;
            match imp {
                Some(t) => (t.start)(conn, self, listener),
                None => {
                    ctx_log!(self, Critical, "conn id={}: {NOT_ENABLED}", conn.id());
                    conn.shutdown();
                    self.unregister(conn);
                    false
                }
            }
        }

        /// [`Connection::tls_read_gate`], through the table: true to read on.
        pub(crate) fn tls_advance(&self, conn: &Connection, acts: &mut Actions) -> bool {
            let imp = self.inner.cfg.lock().server_tls;
            match imp {
                Some(t) => (t.advance)(conn, self, acts),
                None => {
                    conn.lost(self, acts, format_args!("{NOT_ENABLED}"));
                    false
                }
            }
        }
    }

    /// Cannot happen: a TLS server connection is made only after the table
    /// was installed.
    const NOT_ENABLED: &str = "cannot start TLS: server TLS not enabled on this context";

    impl Connection {
        /// The client's TLS handshake, before the upgrade request, bounded
        /// by `deadline`; waits on the socket (no sleep-polling).
        pub(super) fn tls_connect(
            &self,
            ctx: &Context,
            o: &TlsOptions,
            host: &str,
            deadline: Instant,
        ) -> Result<(), String> {
            let fd = self.socket();
            let s = self.client_session(ctx, o, host)?;
            self.inner.io.set_tls(Tls::Session(s));
            loop {
                let step = self
                    .inner
                    .io
                    .with_session(|s| s.handshake())
                    .ok_or("no TLS session")??;
                let (r, w) = match step {
                    Step::Done => break,
                    Step::WantRead => (true, false),
                    Step::WantWrite => (false, true),
                };
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err("TLS handshake timed out".into());
                }
                let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
                net::wait_fd(fd, r, w, ms).map_err(|e| format!("TLS handshake: {e}"))?;
            }
            self.tls_post_check(ctx)
        }

        /// A client session: the installed C table, else OpenSSL (with the
        /// context's creator when one is installed).
        fn client_session(
            &self,
            ctx: &Context,
            o: &TlsOptions,
            host: &str,
        ) -> Result<Session, TlsError> {
            let fd = self.socket();
            if let Some(t) = ops::installed() {
                return Ok(Session::ops(ops::Session::new(t, fd, false, host, o)?));
            }
            #[cfg(feature = "tls")]
            {
                let creator = ctx.inner.tls.creator.lock().clone();
                let cfg = match creator {
                    // SAFETY: the creator's contract (nopoll's): it returns
                    // NULL or an SSL_CTX* of this process's libssl, handed
                    // over.
                    Some(c) => unsafe { adopt_context(c(ctx, self, true)) }
                        .ok_or("the SSL context creator returned NULL")?,
                    None => ctx.inner.tls.client(o)?,
                };
                Ok(Session::openssl(openssl::Session::client(
                    &cfg, fd, host, o.verify,
                )?))
            }
            #[cfg(not(feature = "tls"))]
            {
                let _ = ctx;
                Err(NO_BACKEND.into())
            }
        }

        /// Runs the context's post-TLS check, if any.
        fn tls_post_check(&self, ctx: &Context) -> Result<(), String> {
            let check = ctx.inner.tls.post_check.lock().clone();
            let Some(check) = check else {
                return Ok(());
            };
            let (c, s) = self
                .inner
                .io
                .with_session(|s| s.native())
                .ok_or("no TLS session")?;
            if check(ctx, self, c, s) {
                Ok(())
            } else {
                Err("the post-TLS check refused the connection".into())
            }
        }

        /// Advances a server's TLS handshake as far as the socket allows
        /// (from the loop or a read): true once established (and the post
        /// check passed).
        pub(in crate::runtime) fn tls_advance(&self, ctx: &Context) -> Result<bool, String> {
            let step = self
                .inner
                .io
                .with_session(|s| s.handshake())
                .ok_or("no TLS session")??;
            match step {
                Step::Done => {
                    self.tls_post_check(ctx)?;
                    Ok(true)
                }
                Step::WantRead => Ok(false),
                Step::WantWrite => {
                    let mut st = self.inner.st.lock();
                    self.inner.watch_write(&mut st);
                    Ok(false)
                }
            }
        }

        /// Starts TLS on an accepted connection (after `on_accept`), with
        /// the listener's configuration (built once per listener), else the
        /// context's default certificate. False (the connection is shut
        /// down, and why is logged) when no configuration can be made.
        fn start_server_tls(&self, ctx: &Context, listener: Option<&Connection>) -> bool {
            let made = self.server_session(ctx, listener);
            match made {
                Ok(s) => {
                    self.inner.io.set_tls(Tls::Session(s));
                    true
                }
                Err(why) => {
                    ctx_log!(
                        ctx,
                        Critical,
                        "conn id={} from {}: cannot start TLS: {why}",
                        self.id(),
                        self.host()
                    );
                    self.shutdown();
                    ctx.unregister(self);
                    false
                }
            }
        }
    }

    #[cfg(not(feature = "tls"))]
    const NO_BACKEND: &str =
        "no TLS backend: built without OpenSSL and no table installed (nopoll_install_tls_ops)";
    const NO_CERT: &str = "no certificate for this TLS listener (nopoll_listener_set_certificate or nopoll_ctx_set_certificate)";

    impl Connection {
        /// A server session: the installed C table, else OpenSSL.
        fn server_session(
            &self,
            ctx: &Context,
            listener: Option<&Connection>,
        ) -> Result<Session, TlsError> {
            if let Some(t) = ops::installed() {
                let o = match listener.map(|l| l.inner.io.tls.lock()) {
                    Some(g) => match &*g {
                        Tls::Listener(lt) => with_certificate(ctx, Some(&**lt))?,
                        _ => with_certificate(ctx, None)?,
                    },
                    None => with_certificate(ctx, None)?,
                };
                return Ok(Session::ops(ops::Session::new(
                    t,
                    self.socket(),
                    true,
                    "",
                    &o,
                )?));
            }
            #[cfg(feature = "tls")]
            {
                let creator = ctx.inner.tls.creator.lock().clone();
                let cfg = match creator {
                    // SAFETY: as in client_session.
                    Some(c) => unsafe { adopt_context(c(ctx, self, false)) }
                        .ok_or("the SSL context creator returned NULL")?,
                    None => listener_context(ctx, listener)?,
                };
                Ok(Session::openssl(openssl::Session::server(
                    &cfg,
                    self.socket(),
                )?))
            }
            #[cfg(not(feature = "tls"))]
            {
                let _ = listener;
                Err(NO_BACKEND.into())
            }
        }
    }

    /// A listener's options with the certificate it serves filled in: its
    /// options' own, else `nopoll_listener_set_certificate`'s, else the
    /// context's default entry.
    fn with_certificate(ctx: &Context, l: Option<&ListenerTls>) -> Result<TlsOptions, TlsError> {
        let mut o = l.and_then(|l| l.opts.clone()).unwrap_or_default();
        if o.certificate.is_none() {
            let (c, k, ch) = l
                .and_then(|l| l.cert.clone())
                .or_else(|| {
                    ctx.find_certificate(None)
                        .map(|c| (c.certificate, c.private_key, c.chain))
                })
                .ok_or(NO_CERT)?;
            o.certificate = Some(c);
            o.private_key = Some(k);
            o.chain = ch;
        }
        Ok(o)
    }

    /// The listener's server configuration, built on first use.
    #[cfg(feature = "tls")]
    fn listener_context(
        ctx: &Context,
        listener: Option<&Connection>,
    ) -> Result<::openssl::ssl::SslContext, String> {
        let store = ctx.certificate_store();
        let build = |l: Option<&ListenerTls>| {
            let o = with_certificate(ctx, l)?;
            let cert = o.certificate.clone().unwrap_or_default();
            let key = o.private_key.clone().unwrap_or_else(|| cert.clone());
            openssl::server_context(&cert, &key, o.chain.as_deref(), &o, Some(store.clone()))
        };
        let Some(l) = listener else {
            return build(None);
        };
        let mut t = l.inner.io.tls.lock();
        match &mut *t {
            Tls::Listener(lt) => {
                if let Some(c) = &lt.cached {
                    return Ok(c.clone());
                }
                let c = build(Some(&**lt))?;
                lt.cached = Some(c.clone());
                Ok(c)
            }
            _ => build(None),
        }
    }

    impl Context {
        /// A wss:// listener: as [`Context::listen`], and each accepted
        /// connection runs TLS with `opts` (its certificate, or the one
        /// set later with [`Connection::set_tls_certificate`], or the
        /// context's default entry).
        pub fn listen_tls(
            &self,
            host: &str,
            port: &str,
            ipv6: bool,
            opts: Option<TlsOptions>,
        ) -> Result<Connection, Error> {
            let l = Connection::listen(self, host, port, ipv6)?;
            self.enable_server_tls();
            l.inner.io.set_tls(Tls::Listener(Box::new(ListenerTls {
                opts,
                ..Default::default()
            })));
            Ok(l)
        }
    }

    impl Connection {
        /// Certificate, key and chain files of a TLS listener (they are
        /// loaded at the next accept). False if this is not a TLS listener
        /// or a file cannot be read.
        pub fn set_tls_certificate(&self, cert: &str, key: &str, chain: Option<&str>) -> bool {
            // Without std there is no file system to look at.
            #[cfg(feature = "std")]
            let readable = [Some(cert), Some(key), chain]
                .iter()
                .flatten()
                .all(|p| std::fs::File::open(p).is_ok());
            #[cfg(not(feature = "std"))]
            let readable = true;
            if !readable {
                return false;
            }
            let mut t = self.inner.io.tls.lock();
            match &mut *t {
                Tls::Listener(l) => {
                    l.cert = Some((cert.into(), key.into(), chain.map(str::to_string)));
                    #[cfg(feature = "tls")]
                    {
                        l.cached = None;
                    }
                    true
                }
                _ => false,
            }
        }

        /// True once this connection's TLS handshake completed (as
        /// upstream's `tls_on`); for a listener: it accepts TLS.
        pub fn is_tls(&self) -> bool {
            match &*self.inner.io.tls.lock() {
                Tls::None => false,
                Tls::Listener(_) => true,
                Tls::Session(s) => s.established(),
            }
        }
    }
}
