//! The context: configuration, handlers, the connection registry.

#[allow(unused_imports)]
use crate::prelude::*;

use super::conn::{ConnInner, Connection};
use super::event_loop::{IoOp, IoOps};
use super::message::Message;
use crate::net::{self, Poller, Waker};
use crate::platform::Instant;
use crate::platform::Map;
use crate::protocol::handshake::Request;
use crate::protocol::{DeflateConfig, Delivery, HandshakeLimits};
use crate::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use crate::sync::Arc;
use crate::sync::Lock;
use alloc::collections::BinaryHeap;
use core::cmp::Reverse;

/// Accept / open / ready handler: return false to refuse the connection.
pub type ActionHandler = Arc<dyn Fn(&Context, &Connection) -> bool + Send + Sync>;
/// Message handler: receives each message (or piece, in partial delivery).
pub type MessageHandler = Arc<dyn Fn(&Context, &Connection, Message) + Send + Sync>;
/// Message handler that borrows each message ([`Context::set_on_message_ref`],
/// [`Connection::set_on_message_ref`]): one copy of the message less per call.
pub type MessageRefHandler = Arc<dyn Fn(&Context, &Connection, &Message) + Send + Sync>;
/// How the loop calls a message handler: with the message by reference.
/// The C API's handler moves it straight into its published slot, one
/// 64-byte copy less per message than a call by value (which copies it
/// into the call's arguments). A [`MessageHandler`] is wrapped into one
/// that takes the message out ([`dispatch_handler`]): the same copy the
/// call by value made.
pub(crate) type DispatchHandler = Arc<dyn Fn(&Context, &Connection, &mut Message) + Send + Sync>;

/// The [`DispatchHandler`] of a message handler taking messages by value.
pub(crate) fn dispatch_handler(
    h: impl Fn(&Context, &Connection, Message) + Send + Sync + 'static,
) -> DispatchHandler {
    Arc::new(move |ctx: &Context, conn: &Connection, m: &mut Message| {
        h(ctx, conn, core::mem::take(m))
    })
}
/// The [`DispatchHandler`] of a message handler borrowing messages.
pub(crate) fn ref_dispatch_handler(
    h: impl Fn(&Context, &Connection, &Message) + Send + Sync + 'static,
) -> DispatchHandler {
    Arc::new(move |ctx: &Context, conn: &Connection, m: &mut Message| h(ctx, conn, m))
}
/// Close handler: called once when a connection closes.
pub type CloseHandler = Arc<dyn Fn(&Context, &Connection) + Send + Sync>;
/// Handler for plain HTTP requests (not upgrades) on a listener; it may
/// answer with [`Connection::send_http_response`]. The connection is closed
/// after it returns.
pub type HttpHandler = Arc<dyn Fn(&Context, &Connection, &Request) + Send + Sync>;
/// Where a context's log lines go.
pub type LogSink = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

/// Log levels (nopoll's three).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// Debug detail.
    Debug,
    /// Something unexpected that was handled.
    Warning,
    /// A failure.
    Critical,
}

/// Everything a context can be configured with.
#[derive(Clone)]
pub struct CtxConfig {
    /// Largest incoming frame payload (16 MiB; 64 KiB without std).
    pub max_frame_size: u64,
    /// Largest incoming message (64 MiB, never below `max_frame_size`;
    /// 64 KiB without std, where the heap is small and running out of it
    /// aborts).
    pub max_message_size: u64,
    /// `Sec-WebSocket-Version` sent and required (13).
    pub protocol_version: u8,
    /// TCP connect timeout for clients, µs (20 s).
    pub connect_timeout_us: u64,
    /// Listen backlog (1024; upstream's 5 drops SYNs under bursts).
    pub backlog: i32,
    /// An opening handshake not done within this is dropped, ms (10 s).
    pub handshake_timeout_ms: u64,
    /// Whole messages (default) or pieces as they arrive.
    pub delivery: Delivery,
    /// Accept a text or binary frame inside an unfinished fragmented
    /// message as its continuation, as upstream nopoll peers send them
    /// (default false: RFC 6455's 1002).
    pub legacy_fragments: bool,
    /// Output queued beyond this makes sends report would-block, and the
    /// loop stops reading the connection until it drains (16 MiB; 256 KiB
    /// without std).
    pub max_pending_output: usize,
    /// Size of the receive buffer: one per event loop (shared by all its
    /// connections) and one per thread reading outside a loop (256 KiB;
    /// 4 KiB without std). Connections own no receive buffer.
    pub recv_buffer_size: usize,
    /// Buffer memory (reassembly and output) a connection keeps between
    /// messages: above it, the buffers are released once the connection
    /// has read everything there was (1 MiB + 16: large-message streams
    /// keep their buffers; 4 KiB without std).
    pub max_idle_buffers: usize,
    /// Memory all of the context's connections may hold together for
    /// message reassembly and pending output (256 MiB; 4 MiB without
    /// std): a connection whose buffer growth crosses it is closed, with
    /// 1009 when it was receiving, 1013 (try again later) when sending.
    /// See `runtime/budget.rs`.
    pub memory_budget: usize,
    /// Keepalive: ping a connection after this long without input, ms
    /// (0: off, the default, as upstream). This and the next two take
    /// effect once [`Context::set_keepalive`] or
    /// [`Context::set_idle_timeout`] was called (which link the keepalive
    /// code, see `keepalive.rs`).
    pub ping_interval_ms: u64,
    /// Keepalive: after its ping, a connection from which nothing arrives
    /// within this is closed without a close frame (status 1006), ms
    /// (0: the ping interval).
    pub pong_timeout_ms: u64,
    /// A connection from which nothing arrives for this long is closed
    /// with 1001, ms (0: off, the default).
    pub idle_timeout_ms: u64,
    /// The keepalive code, once a keepalive setter installed it.
    pub(crate) keepalive: Option<&'static super::keepalive::KeepaliveImp>,
    /// Handshake head limits.
    pub limits: HandshakeLimits,
    /// Accept permessage-deflate (RFC 7692) offers on listeners with these
    /// settings (off: None, the default, as upstream nopoll).
    pub permessage_deflate: Option<DeflateConfig>,
    /// Server-side TLS, once something made it possible (see
    /// [`ServerTls`](super::establish::ServerTls)).
    pub(crate) server_tls: Option<&'static super::establish::ServerTls>,
    /// Console logging on (nopoll_log_enable).
    pub log_enabled: bool,
    /// Colours in console logging.
    pub log_color: bool,
    /// Log callback (replaces the console).
    pub log_sink: Option<LogSink>,
    pub(crate) on_accept: Option<ActionHandler>,
    pub(crate) on_open: Option<ActionHandler>,
    pub(crate) on_ready: Option<ActionHandler>,
    pub(crate) on_msg: Option<DispatchHandler>,
    pub(crate) on_http: Option<HttpHandler>,
    /// Trusted proxies, PROXY-protocol listeners, draining (`scale.rs`).
    pub(crate) scale: super::scale::ScaleSettings,
}

impl Default for CtxConfig {
    fn default() -> Self {
        CtxConfig {
            max_frame_size: if cfg!(feature = "std") {
                16 * 1024 * 1024
            } else {
                64 * 1024
            },
            max_message_size: if cfg!(feature = "std") {
                64 * 1024 * 1024
            } else {
                64 * 1024
            },
            protocol_version: 13,
            connect_timeout_us: 20_000_000,
            backlog: 1024,
            handshake_timeout_ms: 10_000,
            delivery: Delivery::Messages,
            legacy_fragments: false,
            max_pending_output: if cfg!(feature = "std") {
                16 * 1024 * 1024
            } else {
                256 * 1024
            },
            max_idle_buffers: if cfg!(feature = "std") {
                1024 * 1024 + 16
            } else {
                4 * 1024
            },
            recv_buffer_size: if cfg!(feature = "std") {
                256 * 1024
            } else {
                4 * 1024
            },
            memory_budget: if cfg!(feature = "std") {
                256 * 1024 * 1024
            } else {
                4 * 1024 * 1024
            },
            ping_interval_ms: 0,
            pong_timeout_ms: 0,
            idle_timeout_ms: 0,
            keepalive: None,
            limits: HandshakeLimits::default(),
            permessage_deflate: None,
            server_tls: None,
            log_enabled: false,
            log_color: false,
            log_sink: None,
            on_accept: None,
            on_open: None,
            on_ready: None,
            on_msg: None,
            on_http: None,
            scale: Default::default(),
        }
    }
}

/// One entry of a context's certificate store (`nopoll_ctx_set_certificate`):
/// file *paths* for TLS listeners, optionally tied to a server name. The
/// files are not opened when stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// Server name (SNI / `Host`) the entry is for; `None` is the default.
    pub server_name: Option<String>,
    /// Certificate file.
    pub certificate: String,
    /// Private key file.
    pub private_key: String,
    /// Optional chain file.
    pub chain: Option<String>,
}

pub(crate) struct CtxInner {
    /// The slot of a layer built on the runtime (the C API's handle).
    /// First, so it is dropped first: the layer lets go of the context
    /// (the C API withdraws its stop cell) before the rest is torn down.
    pub attachment: super::Attachment,
    pub cfg: Lock<CtxConfig>,
    /// The registered connections and their timers, under one lock.
    pub conns: Lock<Registry>,
    next_id: AtomicI32,
    pub io: Lock<IoOps>,
    /// The loop's poller (busy while `loop_wait` runs).
    pub poller: super::event_loop::LoopPoller,
    pub waker: Waker,
    pub stop: AtomicBool,
    /// What only some programs use, made on first use (see
    /// [`Context::with_extras`]).
    extras: Lock<Option<Box<dyn Extras>>>,
    /// TLS hooks and cached client configurations.
    pub(crate) tls: crate::tls::CtxTls,
    /// Bumped whenever a message handler (context or connection) may have
    /// changed: the loop resolves the handler once per batch of messages
    /// and only looks again when this moved. A word, not a `u64`: on a
    /// Cortex-M3 that is a lock around every use (`sync::LockedU64`); it
    /// would take 2^32 changes within one batch to be fooled.
    pub handlers_epoch: AtomicUsize,
    /// `cfg.max_pending_output`, readable without the configuration lock
    /// on every send.
    pub max_pending_output: AtomicUsize,
    /// `cfg.max_idle_buffers`, readable without the configuration lock.
    pub max_idle_buffers: AtomicUsize,
    /// `cfg.memory_budget`, and what the connections hold against it
    /// (`runtime/budget.rs`).
    pub memory_budget: AtomicUsize,
    pub memory_used: AtomicUsize,
    /// Keepalive is on (a ping interval or idle timeout is set): the loop
    /// keeps `keepalive` and stamps input times.
    pub keepalive_on: AtomicBool,
    /// The readiness backend forgets a socket when it is closed (epoll), so
    /// closing a connection needs no "stop watching" request to the loop.
    pub poller_forgets_closed: bool,
    /// Sockets of the application the loop watches (`watch.rs`).
    pub watches: super::watch::Watches,
}

/// A context's registered connections and their timers: one lock for
/// both (a connection's timers leave with it).
pub(crate) struct Registry {
    pub map: Map<i32, Arc<ConnInner>>,
    /// Timers (handshake deadlines, ends of accept pauses), sorted (see
    /// `Context::push_timer`). A `Vec`, not a `VecDeque`: its ring code
    /// cost 0.5 KB of firmware for a queue that is short and popped only
    /// when a handshake times out.
    pub timers: Vec<(Instant, i32)>,
}

/// The parts of a context that only some programs use, made by the first
/// call that needs them ([`Context::with_extras`]). Behind a trait object
/// so that a program that never makes that call links none of their code,
/// their drop included (the firmware's echo listener: 0.3 KB).
#[derive(Default)]
pub(crate) struct CtxExtras {
    /// The certificate store, in insertion order (shared with the TLS
    /// listeners' server-name lookup).
    pub certificates: Arc<Lock<Vec<Certificate>>>,
    /// Keepalive checks, earliest first: one entry per open connection
    /// while keepalive is on (`keepalive.rs`).
    pub keepalive: BinaryHeap<Reverse<(Instant, i32)>>,
    /// Sockets of the application the loop watches (`watch.rs`).
    pub watches: super::watch::WatchState,
}

/// [`CtxExtras`] behind a pointer whose drop is in its vtable.
trait Extras: Send + Sync {
    fn get(&mut self) -> &mut CtxExtras;
}

impl Extras for CtxExtras {
    fn get(&mut self) -> &mut CtxExtras {
        self
    }
}

/// A context: configuration, handlers, the connections it owns and the
/// event loop that serves them. Cheap to clone (shared).
#[derive(Clone)]
pub struct Context {
    pub(crate) inner: Arc<CtxInner>,
}

impl Context {
    /// A new context with default settings. Fails only when the event
    /// loop's descriptors cannot be created.
    pub fn new() -> Result<Context, super::Error> {
        Self::with_backend(net::Backend::best())
    }

    /// A new context whose loop uses `backend`.
    pub fn with_backend(backend: net::Backend) -> Result<Context, super::Error> {
        let poller = Poller::new(backend)?;
        let waker = poller.waker();
        let poller_forgets_closed = poller.backend() == net::Backend::Epoll;
        let cfg = CtxConfig::default();
        Ok(Context {
            inner: Arc::new(CtxInner {
                attachment: super::Attachment::default(),
                max_pending_output: AtomicUsize::new(cfg.max_pending_output),
                max_idle_buffers: AtomicUsize::new(cfg.max_idle_buffers),
                memory_budget: AtomicUsize::new(cfg.memory_budget),
                cfg: Lock::new(cfg),
                conns: Lock::new(Registry {
                    map: Map::default(),
                    timers: Vec::new(),
                }),
                next_id: AtomicI32::new(1),
                io: Lock::new(IoOps::default()),
                poller: super::event_loop::LoopPoller::new(poller),
                waker,
                stop: AtomicBool::new(false),
                extras: Lock::new(None),
                tls: Default::default(),
                handlers_epoch: AtomicUsize::new(0),
                memory_used: AtomicUsize::new(0),
                keepalive_on: AtomicBool::new(false),
                poller_forgets_closed,
                watches: Default::default(),
            }),
        })
    }

    /// Runs `f` on the context's extras (made now if this is the first
    /// use), under their lock: `f` must not call back into the context.
    pub(crate) fn with_extras<R>(&self, f: impl FnOnce(&mut CtxExtras) -> R) -> R {
        let mut slot = self.inner.extras.lock();
        f(slot
            .get_or_insert_with(|| Box::new(CtxExtras::default()))
            .get())
    }

    /// The certificate store (shared with TLS listeners).
    pub(crate) fn certificate_store(&self) -> Arc<Lock<Vec<Certificate>>> {
        self.with_extras(|e| e.certificates.clone())
    }

    pub(crate) fn from_inner(inner: Arc<CtxInner>) -> Context {
        Context { inner }
    }

    /// The readiness backend the loop uses (always `Some`; an `Option`
    /// for compatibility: it was `None` while the loop ran).
    pub fn backend(&self) -> Option<net::Backend> {
        Some(if self.inner.poller_forgets_closed {
            net::Backend::Epoll
        } else {
            net::Backend::Poll
        })
    }

    /// A copy of the configuration.
    pub fn config(&self) -> CtxConfig {
        self.inner.cfg.lock().clone()
    }

    /// Changes the configuration (new connections and frames see it).
    pub fn update_config(&self, f: impl FnOnce(&mut CtxConfig)) {
        let mut cfg = self.inner.cfg.lock();
        f(&mut cfg);
        self.config_changed(cfg);
    }

    /// What follows every configuration change: one body for every
    /// setter's closure.
    #[inline(never)]
    fn config_changed(&self, cfg: crate::sync::LockGuard<'_, CtxConfig>) {
        self.inner
            .max_pending_output
            .store(cfg.max_pending_output, Ordering::Release);
        self.inner
            .max_idle_buffers
            .store(cfg.max_idle_buffers, Ordering::Release);
        self.inner
            .memory_budget
            .store(cfg.memory_budget, Ordering::Release);
        // Keepalive on or off: only once its table is installed (see
        // `keepalive.rs`), which turning it on needs.
        let imp = cfg.keepalive;
        let on = cfg.ping_interval_ms > 0 || cfg.idle_timeout_ms > 0;
        drop(cfg);
        if let Some(k) = imp {
            (k.changed)(self, on);
        }
        self.handlers_changed();
    }

    /// Makes the loop look up message handlers again.
    pub(crate) fn handlers_changed(&self) {
        self.inner.handlers_epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Handler run when a TCP connection is accepted.
    pub fn set_on_accept(&self, h: impl Fn(&Context, &Connection) -> bool + Send + Sync + 'static) {
        self.inner.cfg.lock().on_accept = Some(Arc::new(h));
    }
    /// Handler run on the server after the upgrade request, before the 101.
    pub fn set_on_open(&self, h: impl Fn(&Context, &Connection) -> bool + Send + Sync + 'static) {
        self.inner.cfg.lock().on_open = Some(Arc::new(h));
    }
    /// Handler run when a handshake completes (both roles).
    pub fn set_on_ready(&self, h: impl Fn(&Context, &Connection) -> bool + Send + Sync + 'static) {
        self.inner.cfg.lock().on_ready = Some(Arc::new(h));
    }
    /// Default message handler of every connection.
    pub fn set_on_message(
        &self,
        h: impl Fn(&Context, &Connection, Message) + Send + Sync + 'static,
    ) {
        self.inner.cfg.lock().on_msg = Some(dispatch_handler(h));
        self.handlers_changed();
    }
    /// Default message handler of every connection, borrowing each
    /// message instead of owning it: for a handler that only reads it
    /// (answers, forwards, parses), it saves a copy of the message per call.
    /// Replaces a handler set with [`Context::set_on_message`].
    pub fn set_on_message_ref(
        &self,
        h: impl Fn(&Context, &Connection, &Message) + Send + Sync + 'static,
    ) {
        self.inner.cfg.lock().on_msg = Some(ref_dispatch_handler(h));
        self.handlers_changed();
    }
    /// Handler for plain HTTP requests on listeners (serve a page).
    pub fn set_on_http(&self, h: impl Fn(&Context, &Connection, &Request) + Send + Sync + 'static) {
        self.inner.cfg.lock().on_http = Some(Arc::new(h));
    }

    /// Number of registered connections (listeners included).
    pub fn conns(&self) -> usize {
        self.inner.conns.lock().map.len()
    }

    /// A snapshot of the registered connections, ordered by id.
    pub fn connections(&self) -> Vec<Connection> {
        let mut v: Vec<Connection> = self
            .inner
            .conns
            .lock()
            .map
            .values()
            .map(|c| Connection { inner: c.clone() })
            .collect();
        v.sort_by_key(|c| c.id());
        v
    }

    /// Calls `f` for each registered connection (no lock held during the
    /// call); returns the first for which it returns true.
    pub fn find_conn(&self, mut f: impl FnMut(&Connection) -> bool) -> Option<Connection> {
        self.connections().into_iter().find(|c| f(c))
    }

    pub(crate) fn next_id(&self) -> i32 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Adds a connection to the registry (and the loop's watch list).
    #[inline(always)]
    pub(crate) fn register(&self, conn: &Connection) -> bool {
        self.register_with(conn, true)
    }

    /// Adds a connection to the registry; `watch`: and asks the loop to
    /// watch its socket (false: the loop adds it itself).
    #[inline(always)]
    pub(crate) fn register_with(&self, conn: &Connection, watch: bool) -> bool {
        self.set_registered(conn, true, watch)
    }

    /// Removes a connection from the registry. Returns whether it was there.
    #[inline(always)]
    pub(crate) fn unregister(&self, conn: &Connection) -> bool {
        self.set_registered(conn, false, true)
    }

    /// Adds (`on`) or removes a connection: one body for both (two cost
    /// firmware the same flag swap, map update, change queue and wake-up
    /// twice). `watch`: tell the loop to watch (or stop watching) its
    /// socket. Returns whether anything changed.
    #[inline(never)]
    fn set_registered(&self, conn: &Connection, on: bool, watch: bool) -> bool {
        let c = &conn.inner;
        if c.registered.swap(on, Ordering::AcqRel) == on {
            return false;
        }
        {
            let mut reg = self.inner.conns.lock();
            if on {
                // Absent: `registered` was false, and an id is one connection's.
                crate::platform::map_add_new(&mut reg.map, c.id, c.clone());
            } else {
                reg.map.remove(&c.id);
                // Its timers go with it: only the loop pops them, so a
                // program that never runs it would keep them. Compacted
                // by hand: `retain`'s generic code costs firmware more.
                let q = &mut reg.timers;
                let mut keep = 0;
                for i in 0..q.len() {
                    let e = q[i];
                    if e.1 != c.id {
                        q[keep] = e;
                        keep += 1;
                    }
                }
                q.truncate(keep);
            }
        }
        if on {
            if c.role != super::ConnRole::Listener {
                // Still in its handshake: its deadline, here so that a
                // connection registered again (its timers went when it
                // left) is timed out too.
                if !c.has_opened() {
                    self.push_deadline(c.id);
                }
                if self.inner.keepalive_on.load(Ordering::Acquire) {
                    self.arm_keepalive(c);
                }
            }
        } else {
            // Its queued `Dead` entries go (a program that never runs the
            // loop would keep them), compacted by hand too.
            let mut io = self.inner.io.lock();
            let mut keep = 0;
            for i in 0..io.ops.len() {
                let o = io.ops[i];
                if o != IoOp::Dead(c.id) {
                    io.ops[keep] = o;
                    keep += 1;
                }
            }
            io.ops.truncate(keep);
        }
        // The loop must stop watching a socket it no longer serves (else a
        // readable one would wake it over and over).
        let fd = c.socket();
        if watch && fd >= 0 {
            self.queue_watch(fd, on.then_some(c.id), true);
        }
        true
    }

    /// Adds a connection of this context to its registry (and the loop).
    /// False for another context's connection (ids are per context).
    pub fn register_conn(&self, conn: &Connection) -> bool {
        Arc::ptr_eq(&conn.inner.ctx, &self.inner) && self.register(conn)
    }

    /// Removes a connection from the registry; the loop stops serving it.
    pub fn unregister_conn(&self, conn: &Connection) -> bool {
        self.unregister(conn)
    }

    /// Whether `conn` is in this context's registry.
    pub fn is_registered(&self, conn: &Connection) -> bool {
        Arc::ptr_eq(&conn.inner.ctx, &self.inner) && conn.inner.registered.load(Ordering::Acquire)
    }

    pub(crate) fn lookup(&self, id: i32) -> Option<Connection> {
        self.inner
            .conns
            .lock()
            .map
            .get(&id)
            .map(|c| Connection { inner: c.clone() })
    }

    /// Queues connection `id`'s handshake deadline.
    pub(crate) fn push_deadline(&self, id: i32) {
        let ms = self.inner.cfg.lock().handshake_timeout_ms;
        // Beyond 49.7 days: never (deadlines saturate).
        let at = u32::try_from(ms).map_or(Instant::NEVER, |ms| Instant::now().plus_ms(ms));
        self.push_timer(at, id);
    }

    /// Queues a timer for connection `id` at `at` (see
    /// `Context::run_timers`): a handshake deadline, or for a listener the
    /// end of an accept pause.
    pub(crate) fn push_timer(&self, at: Instant, id: i32) {
        // Only the loop pops this queue: in a program that never runs it
        // (a client reading with nopoll_conn_get_msg) the entries of a
        // connection are dropped when it leaves the registry
        // (`set_registered`), so the queue is bounded by the live
        // connections.
        let mut reg = self.inner.conns.lock();
        let q = &mut reg.timers;
        // Kept sorted: this is the end unless the timeout was lowered since
        // earlier handshakes were queued (rare: then in place).
        let pos = q.partition_point(|&(t, _)| t <= at);
        q.insert(pos, (at, id));
    }

    /// Stores certificate paths for TLS listeners of this context, for
    /// `server_name` (`None`: the default entry). The files are not opened
    /// here. When an entry for the same server name is already stored it
    /// is kept unchanged, as nopoll does. Returns true once an entry for
    /// `server_name` is stored.
    pub fn set_certificate(
        &self,
        server_name: Option<&str>,
        certificate: &str,
        private_key: &str,
        chain: Option<&str>,
    ) -> bool {
        let store = self.certificate_store();
        let mut store = store.lock();
        if store
            .iter()
            .any(|c| c.server_name.as_deref() == server_name)
        {
            return true;
        }
        store.push(Certificate {
            server_name: server_name.map(str::to_string),
            certificate: certificate.to_string(),
            private_key: private_key.to_string(),
            chain: chain.map(str::to_string),
        });
        true
    }

    /// Looks up the certificate store: the entry for `server_name`; for
    /// `None`, the entry stored without a server name, else the first one.
    pub fn find_certificate(&self, server_name: Option<&str>) -> Option<Certificate> {
        let store = self.certificate_store();
        let store = store.lock();
        store
            .iter()
            .find(|c| c.server_name.as_deref() == server_name)
            .or_else(|| server_name.is_none().then(|| store.first()).flatten())
            .cloned()
    }

    /// Asks the loop to stop (safe from any thread; the wake-up itself is
    /// async-signal-safe).
    pub fn loop_stop(&self) {
        self.inner.stop.store(true, Ordering::Release);
        self.inner.waker.wake();
    }

    /// The flag `loop_stop` sets (for binding layers that must reach it
    /// without locks, e.g. from a signal handler).
    pub fn stop_flag(&self) -> &AtomicBool {
        &self.inner.stop
    }

    /// The waker of this context's loop (for signal handlers).
    pub fn waker(&self) -> Waker {
        self.inner.waker.clone()
    }

    /// Whether two handles are the same context.
    pub fn same(&self, other: &Context) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Logs through this context (its sink or console) and the `log` crate.
    /// With the `no-log` feature nothing is logged (and the text of every
    /// log line is compiled out).
    pub fn log(&self, level: LogLevel, args: core::fmt::Arguments<'_>) {
        if cfg!(feature = "no-log") {
            return;
        }
        let (enabled, color, sink) = {
            let c = self.inner.cfg.lock();
            (c.log_enabled, c.log_color, c.log_sink.clone())
        };
        let lvl = match level {
            LogLevel::Debug => log::Level::Debug,
            LogLevel::Warning => log::Level::Warn,
            LogLevel::Critical => log::Level::Error,
        };
        log::log!(target: "nopoll", lvl, "{args}");
        if let Some(sink) = sink {
            sink(level, &args.to_string());
        } else if enabled {
            let (tag, on, off) = match level {
                LogLevel::Debug => ("debug", "\x1b[32m", "\x1b[0m"),
                LogLevel::Warning => ("warning", "\x1b[33m", "\x1b[0m"),
                LogLevel::Critical => ("critical", "\x1b[31m", "\x1b[0m"),
            };
            // Without std there is no stdout: firmware logs through
            // nopoll_log_set_handler.
            #[cfg(feature = "std")]
            if color {
                println!("({on}{tag}{off}) nopoll: {args}");
            } else {
                println!("({tag}) nopoll: {args}");
            }
            #[cfg(not(feature = "std"))]
            let _ = (color, on, tag, off);
        }
    }

    /// The engine's limits for a connection whose own frame limit is
    /// `own_max_frame` (else the context's).
    pub(crate) fn engine_config(&self, own_max_frame: Option<u64>) -> crate::protocol::Config {
        let cfg = self.inner.cfg.lock();
        let max_frame = own_max_frame.unwrap_or(cfg.max_frame_size);
        crate::protocol::Config {
            max_frame_size: max_frame,
            max_message_size: cfg.max_message_size.max(max_frame),
            delivery: cfg.delivery,
            legacy_fragments: cfg.legacy_fragments,
            // Set by the handshake, when it agrees on the extension.
            deflate: None,
        }
    }

    pub(crate) fn wants_log(&self, level: LogLevel) -> bool {
        if cfg!(feature = "no-log") {
            // Logging compiled out: no log line is ever formatted.
            return false;
        }
        let c = self.inner.cfg.lock();
        c.log_sink.is_some()
            || c.log_enabled
            || (level != LogLevel::Debug && log::log_enabled!(target: "nopoll", log::Level::Warn))
    }
}

/// Logs through a context when anything listens (formats lazily).
macro_rules! ctx_log {
    ($ctx:expr, $lvl:ident, $($arg:tt)*) => {{
        let ctx: &$crate::runtime::Context = $ctx;
        if !cfg!(feature = "no-log") && ctx.wants_log($crate::runtime::LogLevel::$lvl) {
            ctx.log($crate::runtime::LogLevel::$lvl, format_args!($($arg)*));
        }
    }};
}
pub(crate) use ctx_log;

#[cfg(all(test, feature = "std"))]
#[path = "context_tests.rs"]
mod tests;
