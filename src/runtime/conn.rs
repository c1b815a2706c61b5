//! Connections: clients, accepted connections and listeners.

#[allow(unused_imports)]
use crate::prelude::*;

use super::context::{ctx_log, CloseHandler, Context, CtxInner, LogLevel};

/// Queues a log line as an action (for code that holds the connection lock).
macro_rules! act_log {
    ($ctx:expr, $acts:expr, $lvl:ident, $($arg:tt)*) => {{
        if $ctx.wants_log(LogLevel::$lvl) {
            $acts.push(Action::Log(LogLevel::$lvl, format!($($arg)*)));
        }
    }};
}
use super::message::Message;
use super::rng::OsRandom;
use super::Error;
use crate::net::{self, NetError, Socket};
use crate::platform::Instant;
use crate::protocol::handshake::Request;
use crate::protocol::{
    ClientHandshake, ClientRequest, Config, DataKind, Delivery, Engine, Event, Role,
    ServerHandshake, ServerOutcome, UpgradeRequest,
};
use crate::protocol::{DeflateConfig, DeflateParams};
use crate::sync::Lock;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use core::time::Duration;

/// What a connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnRole {
    /// Opened by us (`nopoll_conn_new`).
    Client,
    /// Accepted by a listener.
    Accepted,
    /// A listening socket.
    Listener,
}

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
    pub permessage_deflate: Option<DeflateConfig>,
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

/// How much of a send went out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendStatus {
    /// Payload bytes (not header) written to the socket by this call.
    pub payload_written: usize,
    /// The whole frame was written; otherwise the rest is pending output.
    pub complete: bool,
}

enum Phase {
    Listening,
    Client(Box<ClientHandshake>),
    Server(Box<ServerHandshake>),
    AwaitOpen(Box<UpgradeRequest>),
    Http,
    Open(Box<Engine<OsRandom>>),
    Closed,
}

pub(crate) enum Action {
    /// A log line produced while the connection was locked (a log callback
    /// is user code: it runs at dispatch, with no lock held).
    Log(LogLevel, String),
    OnOpen,
    Http(Box<Request>),
    Ready,
    Message(Message),
    /// A whole message left where it was received: `len` bytes at `start`
    /// of the loop's receive buffer (unmasked in place), made into a
    /// [`Message`] only when dispatched. Building it under the lock and
    /// moving it through this list cost more than the rest of a small
    /// message's trip.
    InputMessage {
        kind: DataKind,
        start: usize,
        len: usize,
    },
    Closed,
}

#[derive(Default)]
pub(crate) struct Info {
    pub url: Option<String>,
    pub host_header: Option<String>,
    pub origin: Option<String>,
    pub cookie: Option<String>,
    pub x_real_ip: Option<String>,
    pub requested_protocol: Option<String>,
    pub accepted_protocol: Option<String>,
}

pub(crate) struct ConnState {
    phase: Phase,
    hs_out: Vec<u8>,
    hs_out_pos: usize,
    pub on_msg: Option<super::context::DispatchHandler>,
    pub on_close: Option<CloseHandler>,
    pub on_ready: Option<super::ActionHandler>,
    pub info: Info,
    pub close_status: i32,
    close_fired: bool,
    /// What few connections ever use, allocated on first use: an idle
    /// connection stays small (benches/README.md, idle connections).
    cold: Option<Box<Cold>>,
    /// Header bytes of the last short-written frame not yet written
    /// (nopoll reports payload bytes only).
    pending_header: usize,
    pub max_frame_size: Option<u64>,
    write_watch: bool,
    /// Non-zero while the loop dispatches this connection's messages: sends
    /// are queued and written once after the batch.
    pub defer_flush: u32,
}

/// Payloads from this size on are written straight from the caller's
/// buffer (header and payload in one vectored write), not copied into the
/// output queue first.
const UNBUFFERED_MIN: usize = 16 * 1024;
/// While the loop gathers the sends of a batch of messages into one write,
/// payloads below this size join the batch.
const DEFER_MAX: usize = 256 * 1024;

/// Connection state that is rarely needed (see `ConnState::cold`).
#[derive(Default)]
struct Cold {
    /// Reason of the peer's close frame.
    close_reason: Option<String>,
    /// Messages kept for `get_msg` (no handler took them).
    inbox: VecDeque<Message>,
    /// The message `read` is handing out, and how far.
    stream: Vec<u8>,
    stream_pos: usize,
    /// Bytes that came while `on_open` decided (pipelined frames).
    leftover: Vec<u8>,
}

impl ConnState {
    fn cold(&mut self) -> &mut Cold {
        self.cold.get_or_insert_with(Default::default)
    }

    fn inbox_bytes(&self) -> usize {
        self.cold
            .as_ref()
            .map_or(0, |c| c.inbox.iter().map(|m| m.payload().len()).sum())
    }
}

/// Bytes kept for a connection while `on_open` decides (pipelined frames).
const MAX_LEFTOVER: usize = 64 * 1024;
/// Messages kept for `get_msg` when no handler takes them.
const MAX_INBOX_BYTES: usize = 64 * 1024 * 1024;

pub(crate) struct ConnInner {
    pub id: i32,
    pub role: ConnRole,
    pub ctx: Arc<CtxInner>,
    sock: AtomicI32,
    closed: AtomicBool,
    /// The handshake completed (set once, with the phase turning `Open`;
    /// the phase leaves `Open` only for `Closed`, which sets `closed`):
    /// `is_ready` without the state lock on every send.
    opened: AtomicBool,
    /// The listener that accepted this connection (set when accepted, or
    /// by `nopoll_conn_accept_complete` for a socket the caller accepted).
    pub listener: Lock<Option<Arc<ConnInner>>>,
    pub host: String,
    pub port: String,
    pub st: Lock<ConnState>,
    pub hook: AtomicUsize,
    /// An opaque word for the binding layer (the C handle).
    pub binding: AtomicUsize,
    /// Strings handed to the binding layer, kept until the connection is
    /// destroyed so that pointers given to C never dangle.
    pub c_strings: Lock<Vec<alloc::ffi::CString>>,
    pub registered: AtomicBool,
    /// `st.on_msg` is set: this connection does not use the context's
    /// message handler (which the loop then need not look up per batch).
    own_on_msg: AtomicBool,
}

/// A message handler looked up once and kept until `handlers_epoch` moves
/// (a lookup costs locks and a reference count).
pub(crate) type HandlerCache = Option<(u64, Option<super::context::DispatchHandler>)>;

/// The handler in `cache`, looked up again with `load` if `epoch` moved.
fn cached_handler(
    cache: &mut HandlerCache,
    epoch: u64,
    load: impl FnOnce() -> Option<super::context::DispatchHandler>,
) -> Option<&super::context::DispatchHandler> {
    if !matches!(cache, Some((e, _)) if *e == epoch) {
        *cache = Some((epoch, load()));
    }
    cache.as_ref().and_then(|(_, h)| h.as_ref())
}

/// A WebSocket connection or listener. Cheap to clone (shared).
#[derive(Clone)]
pub struct Connection {
    pub(crate) inner: Arc<ConnInner>,
}

#[cfg(feature = "std")]
std::thread_local! {
    /// The receive buffer of `pump` (reads outside the loop), per thread.
    static RECV_BUF: core::cell::RefCell<Vec<u8>> = const { core::cell::RefCell::new(Vec::new()) };
}

fn new_state(phase: Phase) -> ConnState {
    ConnState {
        phase,
        hs_out: Vec::new(),
        hs_out_pos: 0,
        on_msg: None,
        on_close: None,
        on_ready: None,
        info: Info::default(),
        close_status: 1006,
        close_fired: false,
        cold: None,
        pending_header: 0,
        max_frame_size: None,
        write_watch: false,
        defer_flush: 0,
    }
}

impl Connection {
    fn build(
        ctx: &Context,
        role: ConnRole,
        fd: Socket,
        host: String,
        port: String,
        phase: Phase,
    ) -> Connection {
        Connection {
            inner: Arc::new(ConnInner {
                id: ctx.next_id(),
                role,
                ctx: ctx.inner.clone(),
                sock: AtomicI32::new(fd),
                closed: AtomicBool::new(false),
                opened: AtomicBool::new(false),
                listener: Lock::new(None),
                host,
                port,
                st: Lock::new(new_state(phase)),
                hook: AtomicUsize::new(0),
                binding: AtomicUsize::new(0),
                c_strings: Lock::new(Vec::new()),
                registered: AtomicBool::new(false),
                own_on_msg: AtomicBool::new(false),
            }),
        }
    }

    // ------------------------------------------------------------ creation

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
            Phase::Listening,
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
            deflate: o.permessage_deflate,
        };
        let (hs, bytes) = ClientHandshake::new(&req, cfg.limits, &mut OsRandom)?;
        let conn = Self::build(
            ctx,
            ConnRole::Client,
            fd,
            o.host.clone(),
            port.to_string(),
            Phase::Client(Box::new(hs)),
        );
        {
            let mut st = conn.inner.st.lock();
            st.hs_out = bytes;
            st.max_frame_size = o.max_frame_size;
            st.info.url = Some(req.path.to_string());
            st.info.host_header = Some(host_header.clone());
            st.info.origin = origin;
            st.info.cookie = o.cookie.clone();
            st.info.requested_protocol = o.protocols.clone().filter(|p| !p.is_empty());
        }
        // The request goes out before we return, bounded by the connect timeout.
        let deadline = Instant::now() + Duration::from_micros(cfg.connect_timeout_us);
        let sent = (|| loop {
            let pending = {
                let mut st = conn.inner.st.lock();
                conn.inner.flush_locked(&mut st)?;
                st.hs_out_pos < st.hs_out.len()
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
            conn.inner.sock.store(-1, Ordering::Release);
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
        let conn = Self::build(
            ctx,
            ConnRole::Accepted,
            fd,
            host,
            port,
            Phase::Server(Box::new(hs)),
        );
        if let Some(l) = listener {
            *conn.inner.listener.lock() = Some(l.inner.clone());
            let max = l.inner.st.lock().max_frame_size;
            conn.inner.st.lock().max_frame_size = max;
        }
        ctx.register_unwatched(&conn);
        ctx.push_deadline(conn.id());
        conn
    }

    // ------------------------------------------------------------ accessors

    /// Context-unique id.
    pub fn id(&self) -> i32 {
        self.inner.id
    }
    /// What this connection is.
    pub fn role(&self) -> ConnRole {
        self.inner.role
    }
    /// The socket, or -1 once closed.
    pub fn socket(&self) -> Socket {
        self.inner.socket()
    }
    /// Peer host (client, accepted) or bind host (listener).
    pub fn host(&self) -> &str {
        &self.inner.host
    }
    /// Peer port (client, accepted) or bound port (listener).
    pub fn port(&self) -> &str {
        &self.inner.port
    }
    /// The owning context.
    pub fn ctx(&self) -> Context {
        Context::from_inner(self.inner.ctx.clone())
    }
    /// The listener that accepted this connection.
    pub fn listener(&self) -> Option<Connection> {
        self.inner
            .listener
            .lock()
            .clone()
            .map(|inner| Connection { inner })
    }
    /// Whether two handles are the same connection.
    pub fn same(&self, other: &Connection) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
    /// An opaque user word (`nopoll_conn_set_hook`).
    pub fn hook(&self) -> usize {
        self.inner.hook.load(Ordering::Acquire)
    }
    /// Sets the user word.
    pub fn set_hook(&self, v: usize) {
        self.inner.hook.store(v, Ordering::Release)
    }
    /// Runs `f` on the handshake information.
    pub(crate) fn with_info<T>(&self, f: impl FnOnce(&Info) -> T) -> T {
        f(&self.inner.st.lock().info)
    }
    /// The request target of the handshake ("/" when unknown).
    pub fn url(&self) -> String {
        self.with_info(|i| i.url.clone())
            .unwrap_or_else(|| "/".into())
    }
    /// The subprotocol agreed on.
    pub fn accepted_protocol(&self) -> Option<String> {
        self.with_info(|i| i.accepted_protocol.clone())
    }
    /// Server side, in `on_open`: the subprotocol to answer with.
    pub fn set_accepted_protocol(&self, p: Option<&str>) {
        self.inner.st.lock().info.accepted_protocol = p.map(str::to_string);
    }
    /// Status of the peer's close frame: 1005 without code, 1006 without frame.
    pub fn close_status(&self) -> i32 {
        self.inner.st.lock().close_status
    }
    /// Reason of the peer's close frame.
    pub fn close_reason(&self) -> Option<String> {
        let st = self.inner.st.lock();
        st.cold.as_ref().and_then(|c| c.close_reason.clone())
    }
    /// Per-connection message handler (overrides the context's).
    pub fn set_on_message(&self, h: Option<super::MessageHandler>) {
        self.set_dispatch_handler(
            h.map(|h| super::context::dispatch_handler(move |c, k, m| h(c, k, m))),
        );
    }
    /// [`Connection::set_on_message`] with a handler that borrows each
    /// message (see [`Context::set_on_message_ref`]); `None` removes the
    /// connection's own handler, whichever kind it was.
    pub fn set_on_message_ref(&self, h: Option<super::MessageRefHandler>) {
        self.set_dispatch_handler(
            h.map(|h| super::context::ref_dispatch_handler(move |c, k, m| h(c, k, m))),
        );
    }
    /// [`Connection::set_on_message`] with a handler that takes the
    /// message by mutable reference (the C API's).
    pub(crate) fn set_dispatch_handler(&self, h: Option<super::context::DispatchHandler>) {
        let mut st = self.inner.st.lock();
        self.inner.own_on_msg.store(h.is_some(), Ordering::Release);
        st.on_msg = h;
        drop(st);
        self.ctx().handlers_changed();
    }
    /// Handler called once when the connection closes.
    pub fn set_on_close(&self, h: Option<CloseHandler>) {
        self.inner.st.lock().on_close = h;
    }
    /// Per-connection handler for handshake completion.
    pub fn set_on_ready(&self, h: Option<super::ActionHandler>) {
        self.inner.st.lock().on_ready = h;
    }
    /// Incoming frame limit for this connection (its own, else the context's).
    pub fn max_frame_size(&self) -> u64 {
        let own = self.inner.st.lock().max_frame_size;
        own.unwrap_or_else(|| self.inner.ctx.cfg.lock().max_frame_size)
    }
    /// permessage-deflate as negotiated on this connection (None: off, or
    /// the handshake is not done).
    pub fn permessage_deflate(&self) -> Option<DeflateParams> {
        match &self.inner.st.lock().phase {
            Phase::Open(e) => e.config().deflate,
            _ => None,
        }
    }
    /// The frame limit set on this connection itself, if any.
    pub fn own_max_frame_size(&self) -> Option<u64> {
        self.inner.st.lock().max_frame_size
    }

    /// Sets the incoming frame limit of this connection (and, for a
    /// listener, of what it accepts).
    pub fn set_max_frame_size(&self, max: u64) {
        let mut st = self.inner.st.lock();
        st.max_frame_size = Some(max);
        if let Phase::Open(e) = &mut st.phase {
            let mut c = *e.config();
            c.max_frame_size = max;
            c.max_message_size = c.max_message_size.max(max);
            e.set_config(c);
        }
    }

    /// Replaces the socket value (nopoll_conn_set_socket; the old one is
    /// not closed). A registered connection is then served by the loop on
    /// the new socket, and the old one is no longer watched.
    pub fn set_socket(&self, fd: Socket) {
        let old = self.inner.sock.swap(fd, Ordering::AcqRel);
        if old == fd || !self.inner.registered.load(Ordering::Acquire) {
            return;
        }
        let ctx = &self.inner.ctx;
        {
            let mut io = ctx.io.lock();
            if old >= 0 {
                io.changes.insert(old, None);
            }
            if fd >= 0 {
                io.changes.insert(fd, Some(self.id()));
            }
        }
        ctx.waker.wake();
    }

    /// Bytes received and buffered inside the connection, not yet handed out.
    pub fn read_pending(&self) -> usize {
        let st = self.inner.st.lock();
        let queued = st.inbox_bytes();
        let streamed = st
            .cold
            .as_ref()
            .map_or(0, |c| c.stream.len() - c.stream_pos);
        let partial = match &st.phase {
            Phase::Open(e) => e.buffered_len(),
            _ => 0,
        };
        queued + streamed + partial
    }

    /// True while the socket is usable (says nothing of the handshake).
    pub fn is_ok(&self) -> bool {
        !self.inner.closed.load(Ordering::Acquire) && self.inner.socket() >= 0
    }

    /// True once the handshake is complete; tries to advance it first.
    ///
    /// Also true when the handshake completed and the peer closed since,
    /// but messages that came before its close are still waiting for
    /// [`Connection::get_msg`]: upstream nopoll reads the handshake byte by
    /// byte and reports ready before it has seen what follows the 101, and
    /// callers then read those messages. [`Connection::is_ok`] is false.
    pub fn is_ready(&self) -> bool {
        if !self.is_ok() {
            return self.opened_with_unread();
        }
        if self.inner.is_open() {
            return true;
        }
        if self.role() == ConnRole::Listener {
            return false;
        }
        self.pump(None);
        (self.is_ok() && self.inner.is_open()) || self.opened_with_unread()
    }

    /// The handshake completed and messages are queued for `get_msg`.
    fn opened_with_unread(&self) -> bool {
        self.inner.opened.load(Ordering::Acquire)
            && self
                .inner
                .st
                .lock()
                .cold
                .as_ref()
                .is_some_and(|c| !c.inbox.is_empty())
    }

    /// Waits up to `timeout` for the handshake; false if it fails or times
    /// out. True, as [`Connection::is_ready`], when the peer closed right
    /// after the handshake but messages it sent before are still unread.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.is_ready() {
                return true;
            }
            if !self.is_ok() {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let ms = left.as_millis().clamp(1, 500) as i32;
            if net::wait_fd(self.socket(), true, false, ms).is_err() {
                return false;
            }
        }
    }

    // ------------------------------------------------------------ receive

    /// Reads what the socket has (or blocks if the socket is blocking),
    /// processes it and dispatches what results. Messages go to `sink` when
    /// given, else to the handlers.
    pub(crate) fn pump(&self, sink: Option<&mut VecDeque<Message>>) -> bool {
        let fd = self.socket();
        if fd < 0 || self.inner.closed.load(Ordering::Acquire) {
            return false;
        }
        let ctx = self.ctx();
        let mut acts = Vec::new();
        let size = ctx
            .inner
            .cfg
            .lock()
            .recv_buffer_size
            .max(super::event_loop::MIN_RECV_BUF);
        #[cfg(feature = "std")]
        let got = RECV_BUF.with(|cell| {
            let mut buf = cell.borrow_mut();
            if buf.len() != size {
                buf.resize(size, 0);
            }
            self.receive_into(&ctx, &mut buf, &mut acts, false)
        });
        // (Messages are owned here: `from_loop` is false, `buf` is free again.)
        // No thread-local storage: a buffer per call (firmware reads
        // outside a loop rarely, and with small buffers).
        #[cfg(not(feature = "std"))]
        let got = self.receive_into(&ctx, &mut vec![0u8; size], &mut acts, false);
        self.dispatch(&ctx, acts, sink);
        got > 0
    }

    /// One `recv` into `buf`, then ingestion. Returns how many bytes came
    /// (0 on end of stream, error or nothing to read). `from_loop` (the
    /// event loop's read), when messages resulted:
    /// - `defer_flush` is raised (under the same lock): sends from their
    ///   handlers are queued, and the caller lowers it and writes once after
    ///   dispatching them;
    /// - whole messages may stay in `buf` ([`Action::InputMessage`]): the
    ///   caller dispatches with `buf` as input, before reusing it.
    pub(crate) fn receive_into(
        &self,
        ctx: &Context,
        buf: &mut [u8],
        acts: &mut Vec<Action>,
        from_loop: bool,
    ) -> usize {
        let fd = self.socket();
        match net::recv(fd, buf) {
            Ok(0) => {
                let mut st = self.inner.st.lock();
                if !matches!(st.phase, Phase::Closed) {
                    act_log!(
                        ctx,
                        acts,
                        Debug,
                        "conn id={} closed by peer (no close frame)",
                        self.id()
                    );
                    self.inner.mark_closed(&mut st);
                    acts.push(Action::Closed);
                }
                0
            }
            Ok(n) => {
                let mut st = self.inner.st.lock();
                let base = from_loop.then_some(0);
                self.inner.ingest(ctx, &mut st, &mut buf[..n], base, acts);
                let _ = self.inner.flush_locked(&mut st);
                // Drained (a short read): give large idle buffers back.
                if n < buf.len() {
                    self.inner.release_idle_buffers(&mut st);
                }
                if from_loop && acts.iter().any(Action::is_message) {
                    st.defer_flush += 1;
                }
                n
            }
            Err(e) if e.would_block() => 0,
            Err(e) => {
                let mut st = self.inner.st.lock();
                if !matches!(st.phase, Phase::Closed) {
                    act_log!(ctx, acts, Debug, "conn id={} read failed: {e}", self.id());
                    self.inner.mark_closed(&mut st);
                    acts.push(Action::Closed);
                }
                0
            }
        }
    }

    /// Runs the results of ingestion without holding any lock.
    pub(crate) fn dispatch(
        &self,
        ctx: &Context,
        mut acts: Vec<Action>,
        sink: Option<&mut VecDeque<Message>>,
    ) {
        self.dispatch_drain(ctx, &mut acts, sink, &[], &mut None);
    }

    /// [`Connection::dispatch`], leaving `acts` empty with its capacity
    /// (the loop reuses one vector for every read). `input` is the buffer
    /// that [`Action::InputMessage`]s point into. `ctx_handler` keeps the
    /// context's message handler from one call to the next (the loop's).
    pub(crate) fn dispatch_drain(
        &self,
        ctx: &Context,
        acts: &mut Vec<Action>,
        mut sink: Option<&mut VecDeque<Message>>,
        input: &[u8],
        ctx_handler: &mut HandlerCache,
    ) {
        // The message handler, looked up once per batch (two locks and a
        // reference count otherwise, per message) and again only if a
        // handler was replaced meanwhile; the context's, without locking
        // this connection, when it has none of its own.
        let mut own_handler: HandlerCache = None;
        for act in acts.drain(..) {
            match act {
                Action::Log(level, line) => ctx.log(level, format_args!("{line}")),
                Action::OnOpen => {
                    let h = ctx.inner.cfg.lock().on_open.clone();
                    let ok = h.is_none_or(|h| h(ctx, self));
                    let mut more = Vec::new();
                    self.inner.finish_open(ctx, ok, &mut more);
                    self.dispatch(ctx, more, sink.as_deref_mut());
                }
                Action::Http(req) => {
                    let h = ctx.inner.cfg.lock().on_http.clone();
                    match h {
                        Some(h) => h(ctx, self, &req),
                        None => {
                            let _ =
                                self.send_http_response(400, "text/plain", b"WebSocket endpoint\n");
                        }
                    }
                    self.finish_http();
                }
                Action::Ready => {
                    let (ch, cc) = {
                        let st = self.inner.st.lock();
                        (ctx.inner.cfg.lock().on_ready.clone(), st.on_ready.clone())
                    };
                    ctx_log!(ctx, Debug, "conn id={} ready", self.id());
                    let ok = ch.is_none_or(|h| h(ctx, self)) && cc.is_none_or(|h| h(ctx, self));
                    if !ok {
                        self.close(None, b"");
                    }
                }
                Action::Message(_) | Action::InputMessage { .. } => {
                    // Everything received is delivered until `on_close` has
                    // run: a read holding data and then the peer's close
                    // frame (or a protocol error) marks the connection
                    // closed before its messages are dispatched.
                    if !self.is_ok() && self.inner.st.lock().close_fired {
                        continue;
                    }
                    let epoch = ctx.inner.handlers_epoch.load(Ordering::Acquire);
                    let ctx_on_msg = || ctx.inner.cfg.lock().on_msg.clone();
                    let h = if sink.is_some() {
                        None
                    } else if self.inner.own_on_msg.load(Ordering::Acquire) {
                        cached_handler(&mut own_handler, epoch, || {
                            let own = self.inner.st.lock().on_msg.clone();
                            own.or_else(ctx_on_msg)
                        })
                    } else {
                        cached_handler(ctx_handler, epoch, ctx_on_msg)
                    };
                    let mut m = match act {
                        Action::Message(m) => m,
                        Action::InputMessage { kind, start, len } => {
                            let d = &input[start..start + len];
                            // Filled in place and handed straight to the
                            // handler: through the common path below it is
                            // moved once more (24 instructions per message
                            // for the Rust echo server, none for the C one:
                            // benches/instructions.sh, measured at 862915a).
                            let mut m = Message::empty();
                            if !m.set_whole(kind, d) {
                                ctx_log!(
                                    ctx,
                                    Critical,
                                    "conn id={}: no memory for a message of {len} bytes",
                                    self.id()
                                );
                                self.close(Some(1009), b"");
                                continue;
                            }
                            if let (None, Some(h)) = (&sink, h) {
                                h(ctx, self, &mut m);
                                continue;
                            }
                            m
                        }
                        _ => continue,
                    };
                    if let Some(s) = sink.as_deref_mut() {
                        s.push_back(m);
                        continue;
                    }
                    match h {
                        Some(h) => h(ctx, self, &mut m),
                        None => self.inner.queue_inbox(ctx, m),
                    }
                }
                Action::Closed => {
                    self.fire_close(ctx);
                    self.inner.release_socket(ctx);
                    if super::event_loop::in_loop() {
                        ctx.unregister(self);
                    } else {
                        // Found dead while polling (get_msg, is_ready...):
                        // as upstream, it stays registered (its close status
                        // readable) until the caller closes it or a loop
                        // pass drops it.
                        ctx.inner.io.lock().dead.push(self.id());
                        ctx.inner.waker.wake();
                    }
                }
            }
        }
    }

    fn fire_close(&self, ctx: &Context) {
        let h = {
            let mut st = self.inner.st.lock();
            if st.close_fired {
                return;
            }
            st.close_fired = true;
            st.on_close.take()
        };
        if let Some(h) = h {
            h(ctx, self);
        }
    }

    /// Next message, or `None` when nothing complete is there (or the
    /// connection failed: check [`Connection::is_ok`]). Drives the
    /// handshake; blocks only if the socket was made blocking.
    pub fn get_msg(&self) -> Option<Message> {
        if let Some(m) = self.inner.pop_inbox() {
            return Some(m);
        }
        if self.role() == ConnRole::Listener {
            return None;
        }
        let mut got = VecDeque::new();
        self.pump(Some(&mut got));
        let first = got.pop_front();
        if !got.is_empty() {
            let mut st = self.inner.st.lock();
            // Keep order: these arrived before anything already queued after them.
            let inbox = &mut st.cold().inbox;
            for m in got.into_iter().rev() {
                inbox.push_front(m);
            }
        }
        first
    }

    /// Stream read across message boundaries (`nopoll_conn_read`).
    /// Non-blocking: what is there, or `Err(WouldBlock)` if nothing. Blocking:
    /// waits until `buf` is full or `timeout` (None = forever) expires.
    pub fn read(
        &self,
        buf: &mut [u8],
        block: bool,
        timeout: Option<Duration>,
    ) -> Result<usize, Error> {
        if !self.is_ok() {
            return Err(Error::NotOpen);
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut filled = 0;
        loop {
            filled += self.inner.take_stream(&mut buf[filled..]);
            if filled == buf.len() {
                return Ok(filled);
            }
            if let Some(m) = self.get_msg() {
                let mut st = self.inner.st.lock();
                let c = st.cold();
                c.stream.clear();
                c.stream.extend_from_slice(m.payload());
                c.stream_pos = 0;
                continue;
            }
            if !self.is_ok() {
                return if filled > 0 {
                    Ok(filled)
                } else {
                    Err(Error::NotOpen)
                };
            }
            if !block {
                return if filled > 0 {
                    Ok(filled)
                } else {
                    Err(Error::WouldBlock)
                };
            }
            let wait = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(filled);
                    }
                    left.as_millis().clamp(1, 500) as i32
                }
                None => 500,
            };
            net::wait_fd(self.socket(), true, false, wait)?;
        }
    }

    // ------------------------------------------------------------ send

    /// Sends a whole text message.
    pub fn send_text(&self, text: &str) -> Result<SendStatus, Error> {
        if text.len() >= UNBUFFERED_MIN {
            if let Some(r) = self.send_unbuffered(DataKind::Text, text.as_bytes(), true) {
                return r;
            }
        }
        // A `str` is UTF-8: the engine skips checking it again.
        self.send_with(text.len(), 0, |e| e.send_text(text))
    }
    /// Sends a whole binary message.
    pub fn send_binary(&self, data: &[u8]) -> Result<SendStatus, Error> {
        self.send_data(DataKind::Binary, data, true)
    }
    /// Sends a data frame; after `fin == false` the next one is a continuation.
    pub fn send_data(&self, kind: DataKind, data: &[u8], fin: bool) -> Result<SendStatus, Error> {
        if data.len() >= UNBUFFERED_MIN {
            if let Some(r) = self.send_unbuffered(kind, data, fin) {
                return r;
            }
        }
        self.send_with(data.len(), 0, |e| e.send(kind, data, fin))
    }

    /// A large frame goes out with one vectored write of header and
    /// payload, without a copy into the output queue; only what the socket
    /// does not take is queued. `None` when it cannot (output waiting, a
    /// client's masked frame, a batch of small sends being gathered): the
    /// caller queues as usual.
    fn send_unbuffered(
        &self,
        kind: DataKind,
        data: &[u8],
        fin: bool,
    ) -> Option<Result<SendStatus, Error>> {
        if !self.is_ok() {
            return None;
        }
        let fd = self.socket();
        let mut st = self.inner.st.lock();
        if st.defer_flush > 0 && data.len() < DEFER_MAX {
            return None;
        }
        if st.hs_out_pos < st.hs_out.len() {
            return None;
        }
        let Phase::Open(engine) = &mut st.phase else {
            return None;
        };
        let head = match engine.send_unbuffered(kind, data, fin) {
            Ok(Some(h)) => h,
            Ok(None) => return None,
            Err(e) => return Some(Err(e.into())),
        };
        let hdr = head.as_bytes();
        let total = hdr.len() + data.len();
        let (written, failed) = match net::send_vectored(fd, &[hdr, data]) {
            Ok(n) => (n, None),
            Err(e) if e.would_block() => (0, None),
            Err(e) => (0, Some(e)),
        };
        if written < hdr.len() {
            engine.queue_output(&hdr[written..]);
            engine.queue_output(data);
        } else if written < total {
            engine.queue_output(&data[written - hdr.len()..]);
        }
        if let Some(e) = failed {
            return Some(Err(e.into()));
        }
        let complete = written == total;
        st.pending_header = hdr.len().saturating_sub(written);
        if !complete {
            self.inner.watch_write(&mut st);
        }
        Some(Ok(SendStatus {
            payload_written: written.saturating_sub(hdr.len()),
            complete,
        }))
    }
    /// As [`Connection::send_data`], pausing `pause` between the frame's
    /// header and its payload (`__nopoll_conn_send_common`'s
    /// `sleep_in_header`).
    pub fn send_data_paused(
        &self,
        kind: DataKind,
        data: &[u8],
        fin: bool,
        pause: Duration,
    ) -> Result<SendStatus, Error> {
        let us = u64::try_from(pause.as_micros()).unwrap_or(u64::MAX);
        self.send_with(data.len(), us, |e| e.send(kind, data, fin))
    }
    /// Sends a ping.
    pub fn send_ping(&self, payload: &[u8]) -> Result<SendStatus, Error> {
        self.send_with(payload.len(), 0, |e| e.send_ping(payload))
    }
    /// Sends a pong.
    pub fn send_pong(&self, payload: &[u8]) -> Result<SendStatus, Error> {
        self.send_with(payload.len(), 0, |e| e.send_pong(payload))
    }
    /// Sends one frame exactly as described (`nopoll_conn_send_frame`),
    /// pausing `pause` between header and payload.
    pub fn send_raw_frame(
        &self,
        fin: bool,
        masked: bool,
        opcode: u8,
        payload: &[u8],
        pause: Duration,
    ) -> Result<SendStatus, Error> {
        self.send_with(payload.len(), pause.as_micros() as u64, |e| {
            e.send_raw_frame(fin, opcode, masked, payload)
        })
    }

    fn send_with(
        &self,
        payload_len: usize,
        pause_us: u64,
        queue: impl FnOnce(&mut Engine<OsRandom>) -> Result<(), crate::protocol::SendError>,
    ) -> Result<SendStatus, Error> {
        if !self.is_ok() {
            return Err(Error::NotOpen);
        }
        let mut st = self.inner.st.lock();
        let max_pending = self.inner.ctx.max_pending_output.load(Ordering::Acquire);
        let before = self.inner.pending_locked(&st);
        if before > max_pending {
            self.inner.flush_locked(&mut st)?;
            if self.inner.pending_locked(&st) > max_pending {
                return Err(Error::WouldBlock);
            }
        }
        let before = self.inner.pending_locked(&st);
        let Phase::Open(engine) = &mut st.phase else {
            return Err(Error::NotOpen);
        };
        let queued = engine.output_len();
        queue(engine)?;
        let frame_len = engine.output_len() - queued;
        if pause_us == 0 && st.defer_flush > 0 && before + frame_len < DEFER_MAX {
            // Queued for the loop to write after this batch: reported as sent.
            return Ok(SendStatus {
                payload_written: payload_len,
                complete: true,
            });
        }
        let header_len = frame_len.saturating_sub(payload_len);
        let written = if pause_us > 0 {
            let w = self.inner.flush_upto(&mut st, before + header_len)?;
            drop(st);
            crate::platform::sleep(Duration::from_micros(pause_us));
            st = self.inner.st.lock();
            w + self.inner.flush_locked(&mut st)?
        } else {
            self.inner.flush_locked(&mut st)?
        };
        let mine = written.saturating_sub(before).min(frame_len);
        let complete = mine == frame_len;
        st.pending_header = if complete {
            0
        } else {
            header_len.saturating_sub(mine)
        };
        Ok(SendStatus {
            payload_written: mine.saturating_sub(header_len).min(payload_len),
            complete,
        })
    }

    /// Bytes queued and not yet written.
    pub fn pending_write_bytes(&self) -> usize {
        let st = self.inner.st.lock();
        self.inner.pending_locked(&st)
    }

    /// Writes what is pending without blocking; returns the payload bytes
    /// written (header bytes are not counted, as nopoll does).
    pub fn complete_pending_write(&self) -> Result<usize, Error> {
        let mut st = self.inner.st.lock();
        if self.inner.pending_locked(&st) == 0 {
            return Ok(0);
        }
        let n = self.inner.flush_locked(&mut st)?;
        let hdr = st.pending_header.min(n);
        st.pending_header -= hdr;
        if self.inner.pending_locked(&st) == 0 {
            self.inner.release_idle_buffers(&mut st);
        }
        Ok(n - hdr)
    }

    /// Writes pending output until done or `timeout` expires; returns the
    /// bytes written.
    pub fn flush_writes(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut total = 0;
        loop {
            match self.complete_pending_write() {
                Ok(n) => total += n,
                Err(_) => return total,
            }
            if self.pending_write_bytes() == 0 {
                return total;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return total;
            }
            let _ = net::wait_fd(
                self.socket(),
                false,
                true,
                left.as_millis().clamp(1, 100) as i32,
            );
        }
    }

    /// Answers a plain HTTP request (from an HTTP handler).
    pub fn send_http_response(
        &self,
        status: u16,
        content_type: &str,
        body: &[u8],
    ) -> Result<(), Error> {
        if content_type.bytes().any(|b| b == b'\r' || b == b'\n') || !(100..=999).contains(&status)
        {
            return Err(Error::InvalidArgument("bad status or content type"));
        }
        let mut st = self.inner.st.lock();
        if !matches!(st.phase, Phase::Http) {
            return Err(Error::NotOpen);
        }
        let reason = crate::protocol::handshake::reason_phrase(status);
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        st.hs_out.extend_from_slice(head.as_bytes());
        st.hs_out.extend_from_slice(body);
        self.inner.flush_locked(&mut st)?;
        Ok(())
    }

    fn finish_http(&self) {
        // Give the answer a moment to leave, then close.
        let _ = self.flush_writes(Duration::from_millis(200));
        let ctx = self.ctx();
        {
            let mut st = self.inner.st.lock();
            self.inner.mark_closed(&mut st);
        }
        self.dispatch(&ctx, vec![Action::Closed], None);
        ctx.unregister(self);
    }

    // ------------------------------------------------------------ close

    /// Sends a close frame (status `None` = empty), closes the socket, fires
    /// `on_close` and leaves the context. Does not wait for the peer's reply.
    pub fn close(&self, status: Option<u16>, reason: &[u8]) {
        let ctx = self.ctx();
        let mut refused = None;
        {
            let mut st = self.inner.st.lock();
            if let Phase::Open(e) = &mut st.phase {
                if !e.close_sent() {
                    if let Err(err) = e.close(status, reason) {
                        refused = Some(err);
                        let _ = e.close(None, b"");
                    }
                }
            }
            if self.inner.pending_locked(&st) > 0 && self.socket() >= 0 {
                let _ = self.inner.flush_locked(&mut st);
                if self.inner.pending_locked(&st) > 0 {
                    drop(st);
                    let _ = net::wait_fd(self.socket(), false, true, 100);
                    st = self.inner.st.lock();
                    let _ = self.inner.flush_locked(&mut st);
                }
            }
            self.inner.mark_closed(&mut st);
        }
        if let Some(err) = refused {
            ctx_log!(
                &ctx,
                Warning,
                "conn id={}: {err}; sent a close frame without status",
                self.id()
            );
        }
        self.dispatch(&ctx, vec![Action::Closed], None);
        ctx.unregister(self);
    }

    /// Closes the socket abruptly (no close frame) and fires `on_close`;
    /// the connection stays registered until the loop drops it.
    pub fn shutdown(&self) {
        let ctx = self.ctx();
        {
            let mut st = self.inner.st.lock();
            self.inner.mark_closed(&mut st);
        }
        self.fire_close(&ctx);
        self.inner.release_socket(&ctx);
        ctx.inner.io.lock().dead.push(self.id());
        ctx.inner.waker.wake();
    }
}

impl Action {
    /// A message to dispatch, wherever its bytes are.
    pub(crate) fn is_message(&self) -> bool {
        matches!(self, Action::Message(_) | Action::InputMessage { .. })
    }
}

impl ConnInner {
    pub(crate) fn socket(&self) -> Socket {
        self.sock.load(Ordering::Acquire)
    }

    pub(crate) fn is_open(&self) -> bool {
        self.opened.load(Ordering::Acquire) && !self.closed.load(Ordering::Acquire)
    }

    /// Enters the `Open` phase.
    fn open(&self, st: &mut ConnState, engine: Engine<OsRandom>) {
        st.phase = Phase::Open(Box::new(engine));
        self.opened.store(true, Ordering::Release);
    }

    pub(crate) fn pending_locked(&self, st: &ConnState) -> usize {
        let hs = st.hs_out.len() - st.hs_out_pos;
        match &st.phase {
            Phase::Open(e) => hs + e.output_len(),
            _ => hs,
        }
    }

    /// Gives the engine's buffers back when they hold more than the
    /// context's `max_idle_buffers` (they only shrink when empty: a message
    /// being reassembled or output not yet written stays).
    pub(crate) fn release_idle_buffers(&self, st: &mut ConnState) {
        if let Phase::Open(e) = &mut st.phase {
            if e.buffer_capacity() > self.ctx.max_idle_buffers.load(Ordering::Relaxed) {
                e.shrink();
            }
        }
    }

    /// Marks the connection closed: no more sends; the socket is closed by
    /// `release_socket` once `on_close` has run.
    fn mark_closed(&self, st: &mut ConnState) {
        st.phase = Phase::Closed;
        self.closed.store(true, Ordering::Release);
    }

    pub(crate) fn release_socket(&self, ctx: &Context) {
        let fd = self.sock.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            // epoll drops a closed socket from its set by itself (an
            // EPOLL_CTL_DEL after the close only fails with EBADF); poll
            // must be told.
            if (self.registered.load(Ordering::Acquire) || self.role == ConnRole::Listener)
                && !ctx.inner.poller_forgets_closed
            {
                let mut io = ctx.inner.io.lock();
                io.changes.insert(fd, None);
                // A firmware stack (lwIP) must not see a socket closed while
                // its loop may be polling it: the loop closes it after
                // taking it out of the set (before its next wait, or when
                // it stops).
                if net::ops().kernel_fds == 0 && ctx.inner.poller.lock().is_none() {
                    io.close.push(fd);
                    drop(io);
                    ctx.inner.waker.wake();
                    return;
                }
            }
            net::close(fd);
        }
    }

    fn queue_inbox(&self, ctx: &Context, m: Message) {
        let mut st = self.st.lock();
        if st.inbox_bytes() + m.payload().len() > MAX_INBOX_BYTES {
            drop(st);
            ctx_log!(
                ctx,
                Warning,
                "conn id={}: no message handler and the queue is full; message dropped",
                self.id
            );
            return;
        }
        st.cold().inbox.push_back(m);
    }

    fn pop_inbox(&self) -> Option<Message> {
        self.st.lock().cold.as_mut()?.inbox.pop_front()
    }

    fn take_stream(&self, out: &mut [u8]) -> usize {
        let mut st = self.st.lock();
        let Some(c) = st.cold.as_mut() else {
            return 0;
        };
        let avail = &c.stream[c.stream_pos..];
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        c.stream_pos += n;
        n
    }

    /// Asks the loop to watch for writability (once per episode).
    fn watch_write(&self, st: &mut ConnState) {
        if !st.write_watch && self.registered.load(Ordering::Acquire) {
            st.write_watch = true;
            self.ctx.io.lock().want_write.push(self.id);
            self.ctx.waker.wake();
        }
    }

    pub(crate) fn clear_write_watch(&self) -> bool {
        let mut st = self.st.lock();
        st.write_watch = false;
        self.pending_locked(&st) > 0
    }

    /// Writes pending output until done or the socket would block.
    pub(crate) fn flush_locked(&self, st: &mut ConnState) -> Result<usize, NetError> {
        self.flush_upto(st, usize::MAX)
    }

    fn flush_upto(&self, st: &mut ConnState, limit: usize) -> Result<usize, NetError> {
        let fd = self.socket();
        let mut total = 0;
        while total < limit {
            let from_hs = st.hs_out_pos < st.hs_out.len();
            let buf: &[u8] = if from_hs {
                &st.hs_out[st.hs_out_pos..]
            } else if let Phase::Open(e) = &st.phase {
                e.output()
            } else {
                &[]
            };
            if buf.is_empty() {
                break;
            }
            if fd < 0 {
                return Err(NetError(libc::EBADF));
            }
            let buf = &buf[..buf.len().min(limit - total)];
            match net::send(fd, buf) {
                Ok(n) => {
                    total += n;
                    if from_hs {
                        st.hs_out_pos += n;
                        if st.hs_out_pos == st.hs_out.len() {
                            st.hs_out = Vec::new();
                            st.hs_out_pos = 0;
                        }
                    } else if let Phase::Open(e) = &mut st.phase {
                        e.consume_output(n);
                    }
                    if n == 0 {
                        break;
                    }
                }
                Err(e) if e.would_block() => {
                    self.watch_write(st);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    fn engine_for(
        &self,
        ctx: &Context,
        st: &ConnState,
        role: Role,
        deflate: Option<DeflateParams>,
    ) -> Engine<OsRandom> {
        let cfg = ctx.inner.cfg.lock();
        let max_frame = st.max_frame_size.unwrap_or(cfg.max_frame_size);
        let config = Config {
            max_frame_size: max_frame,
            max_message_size: cfg.max_message_size.max(max_frame),
            delivery: cfg.delivery,
            deflate,
        };
        Engine::new(role, config, OsRandom)
    }

    /// Processes received bytes; collects what must be dispatched.
    /// `base`: where `data` starts in the buffer the caller dispatches
    /// from, if whole messages may be left there
    /// ([`Action::InputMessage`]); `None`: they are copied out.
    fn ingest(
        &self,
        ctx: &Context,
        st: &mut ConnState,
        data: &mut [u8],
        base: Option<usize>,
        acts: &mut Vec<Action>,
    ) {
        let mut pos = 0;
        while pos < data.len() {
            match core::mem::replace(&mut st.phase, Phase::Closed) {
                Phase::Client(mut hs) => match hs.feed(&data[pos..]) {
                    Ok((n, None)) => {
                        pos += n;
                        st.phase = Phase::Client(hs);
                    }
                    Ok((n, Some(resp))) => {
                        pos += n;
                        st.info.accepted_protocol = resp.protocol;
                        let engine = self.engine_for(ctx, st, Role::Client, resp.deflate);
                        self.open(st, engine);
                        acts.push(Action::Ready);
                    }
                    Err(e) => {
                        act_log!(
                            ctx,
                            acts,
                            Critical,
                            "conn id={}: handshake refused: {e}",
                            self.id
                        );
                        self.mark_closed(st);
                        acts.push(Action::Closed);
                        return;
                    }
                },
                Phase::Server(mut hs) => {
                    let (n, outcome) = hs.feed(&data[pos..]);
                    pos += n;
                    match outcome {
                        None => st.phase = Phase::Server(hs),
                        Some(ServerOutcome::Upgrade(up)) => {
                            record_request(&mut st.info, &up.request);
                            st.phase = Phase::AwaitOpen(Box::new(up));
                            acts.push(Action::OnOpen);
                        }
                        Some(ServerOutcome::Http(req)) => {
                            record_request(&mut st.info, &req);
                            st.phase = Phase::Http;
                            acts.push(Action::Http(Box::new(req)));
                            return;
                        }
                        Some(ServerOutcome::Reject(r)) => {
                            act_log!(
                                ctx,
                                acts,
                                Warning,
                                "conn id={} from {}: bad handshake ({}): {}",
                                self.id,
                                self.host,
                                r.status,
                                r.error
                            );
                            st.hs_out.extend_from_slice(&r.response());
                            let _ = self.flush_locked(st);
                            self.mark_closed(st);
                            acts.push(Action::Closed);
                            return;
                        }
                    }
                }
                Phase::AwaitOpen(up) => {
                    st.phase = Phase::AwaitOpen(up);
                    let rest = &data[pos..];
                    let kept = st.cold.as_ref().map_or(0, |c| c.leftover.len());
                    if kept + rest.len() > MAX_LEFTOVER {
                        act_log!(
                            ctx,
                            acts,
                            Warning,
                            "conn id={}: too much data before the handshake completed",
                            self.id
                        );
                        self.mark_closed(st);
                        acts.push(Action::Closed);
                        return;
                    }
                    if !rest.is_empty() {
                        st.cold().leftover.extend_from_slice(rest);
                    }
                    return;
                }
                Phase::Open(mut engine) => {
                    let base = base.map(|b| b + pos);
                    let failed = Self::feed_engine(
                        ctx,
                        self.id,
                        &mut engine,
                        st,
                        &mut data[pos..],
                        base,
                        acts,
                    );
                    let closing = failed || engine.close_received();
                    st.phase = Phase::Open(engine);
                    if closing {
                        let _ = self.flush_locked(st);
                        self.mark_closed(st);
                        acts.push(Action::Closed);
                    }
                    return;
                }
                other => {
                    st.phase = other;
                    return;
                }
            }
        }
    }

    /// Runs the engine over `data` (at `base` of the dispatch input, if
    /// messages may stay there); returns true if the connection failed.
    fn feed_engine(
        ctx: &Context,
        id: i32,
        engine: &mut Engine<OsRandom>,
        st: &mut ConnState,
        data: &mut [u8],
        base: Option<usize>,
        acts: &mut Vec<Action>,
    ) -> bool {
        // Where `data` is, to tell a message handed out from it (unmasked
        // in place) from one out of the engine's reassembly buffer.
        let (data_at, data_len) = (data.as_ptr() as usize, data.len());
        let mut pos = 0;
        loop {
            match engine.read(&mut data[pos..]) {
                Ok((n, ev)) => {
                    pos += n;
                    let Some(ev) = ev else {
                        if n == 0 || pos == data.len() {
                            return false;
                        }
                        continue;
                    };
                    match ev {
                        Event::Message(kind, d) => {
                            let off = (d.as_ptr() as usize).wrapping_sub(data_at);
                            if let Some(b) = base.filter(|_| off + d.len() <= data_len) {
                                acts.push(Action::InputMessage {
                                    kind,
                                    start: b + off,
                                    len: d.len(),
                                });
                                continue;
                            }
                            // Copied out of the input or out of the engine's
                            // reassembly buffer, which the engine keeps: handing
                            // that buffer over made the heap shrink and regrow,
                            // faulting its pages in again, for every large message.
                            match Message::whole(kind, d) {
                                Some(m) => acts.push(Action::Message(m)),
                                None => return true,
                            }
                        }
                        Event::Chunk(c) => {
                            match Message::new(c.opcode, c.message_end, !c.message_end, c.data) {
                                Some(m) => acts.push(Action::Message(m)),
                                None => return true,
                            }
                        }
                        Event::Ping(_) | Event::Pong(_) => {}
                        Event::Close(cf) => {
                            st.close_status = cf.status() as i32;
                            if !cf.reason.is_empty() {
                                st.cold().close_reason = Some(cf.reason.to_string());
                            } else if let Some(c) = st.cold.as_mut() {
                                c.close_reason = None;
                            }
                            act_log!(
                                ctx,
                                acts,
                                Debug,
                                "conn id={id}: peer closed with {}",
                                st.close_status
                            );
                        }
                    }
                }
                Err(e) => {
                    act_log!(
                        ctx,
                        acts,
                        Warning,
                        "conn id={id}: closing with {}: {e}",
                        e.close_code()
                    );
                    return true;
                }
            }
        }
    }

    /// Completes a server handshake after `on_open` decided.
    fn finish_open(&self, ctx: &Context, accepted: bool, acts: &mut Vec<Action>) {
        let mut st = self.st.lock();
        let Phase::AwaitOpen(up) = core::mem::replace(&mut st.phase, Phase::Closed) else {
            return;
        };
        if !accepted {
            act_log!(ctx, acts, Debug, "conn id={}: refused by on_open", self.id);
            st.hs_out.extend_from_slice(
                b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            );
            let _ = self.flush_locked(&mut st);
            self.mark_closed(&mut st);
            acts.push(Action::Closed);
            return;
        }
        // Without an explicit choice, answer with the first requested
        // subprotocol (echoing a whole list would break RFC 6455 clients).
        if st.info.accepted_protocol.is_none() {
            st.info.accepted_protocol = up.request.protocols().next().map(str::to_string);
        }
        let offer = ctx.inner.cfg.lock().permessage_deflate;
        let protocol = st.info.accepted_protocol.as_deref();
        let (bytes, deflate) = match up.response_with_deflate(protocol, offer.as_ref()) {
            Ok(answer) => answer,
            Err(e) => {
                act_log!(
                    ctx,
                    acts,
                    Critical,
                    "conn id={}: cannot answer: {e}",
                    self.id
                );
                self.mark_closed(&mut st);
                acts.push(Action::Closed);
                return;
            }
        };
        st.hs_out.extend_from_slice(&bytes);
        let engine = self.engine_for(ctx, &st, Role::Server, deflate);
        self.open(&mut st, engine);
        acts.push(Action::Ready);
        let mut rest = st
            .cold
            .as_mut()
            .map(|c| core::mem::take(&mut c.leftover))
            .unwrap_or_default();
        if !rest.is_empty() {
            self.ingest(ctx, &mut st, &mut rest, None, acts);
        }
        let _ = self.flush_locked(&mut st);
    }

    /// Drops a connection whose handshake took too long.
    pub(crate) fn expire(&self) -> bool {
        let mut st = self.st.lock();
        if matches!(
            st.phase,
            Phase::Client(_) | Phase::Server(_) | Phase::AwaitOpen(_)
        ) {
            self.mark_closed(&mut st);
            return true;
        }
        false
    }
}

fn record_request(info: &mut Info, r: &Request) {
    info.url = Some(r.url.clone());
    info.host_header = r.host().map(str::to_string);
    info.origin = r.origin().map(str::to_string);
    info.cookie = r.cookie().map(str::to_string);
    info.x_real_ip = r.x_real_ip().map(str::to_string);
    info.requested_protocol = r.requested_protocols();
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
        let conn = Connection::build(self, ConnRole::Listener, fd, host, port, Phase::Listening);
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
        }
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn f<T: Send + Sync>() {}
    f::<Connection>();
    f::<Context>();
    let _ = Delivery::Messages;
}

impl Drop for ConnInner {
    fn drop(&mut self) {
        let fd = *self.sock.get_mut();
        if fd >= 0 {
            net::close(fd);
        }
        super::binding_dropped(*self.binding.get_mut());
    }
}
