//! The connection object: what it holds and its accessors.
//!
//! Where the rest is:
//! - `machine.rs`: phases, what bytes and sends do in each (no I/O);
//! - `driver.rs`: moving bytes between the machine and the transport
//!   (receive, send, flush, close);
//! - `dispatch.rs`: running the machine's actions (handlers, `on_close`);
//! - `inbox.rs`: the messages kept for `get_msg`;
//! - `establish.rs`: listen, connect, accept, adopt;
//! - `transport.rs`: where the bytes go (the socket, through `net/`).

#[allow(unused_imports)]
use crate::prelude::*;

use super::attachment::Attachment;
use super::context::{CloseHandler, Context, CtxInner, LogLevel};
use super::inbox::Inbox;
use super::machine::{Env, Info, Machine};
use super::message::Message;
use super::transport::Transport;
use crate::net::{self, Socket};
use crate::protocol::Config;
use crate::sync::atomic::{AtomicBool, AtomicPtr, AtomicU16, AtomicUsize, Ordering};
use crate::sync::Arc;
use crate::sync::Lock;

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

/// How much of a send went out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendStatus {
    /// Payload bytes (not header) written to the socket by this call.
    pub payload_written: usize,
    /// The whole frame was written; otherwise the rest is pending output.
    pub complete: bool,
}

/// Everything behind a connection's lock.
pub(crate) struct ConnState {
    /// The protocol state (phase, output, handshake information).
    pub m: Machine,
    /// The connection's own handlers, if it has any (one word otherwise:
    /// most use the context's).
    handlers: Option<Box<OwnHandlers>>,
    pub close_fired: bool,
    /// What few connections ever use, allocated on first use: an idle
    /// connection stays small (benches/README.md, idle connections).
    cold: Option<Box<Cold>>,
    pub write_watch: bool,
    /// Non-zero while the loop dispatches this connection's messages: sends
    /// are queued and written once after the batch.
    pub defer_flush: u32,
    /// (reassembly, output) bytes charged to the context's memory budget
    /// (`budget.rs`).
    pub charged: (usize, usize),
    /// The loop stopped reading this connection: its refused output is
    /// over the limit (read backpressure, `Machine::wants_read`).
    pub read_paused: bool,
}

/// A connection's own handlers (see `ConnState::handlers`).
#[derive(Default)]
struct OwnHandlers {
    on_msg: Option<super::context::DispatchHandler>,
    on_close: Option<CloseHandler>,
    on_ready: Option<super::ActionHandler>,
}

/// Connection state that is rarely needed (see `ConnState::cold`).
#[derive(Default)]
pub(crate) struct Cold {
    /// Messages kept for `get_msg` (no handler took them).
    pub inbox: Inbox,
    /// The message `read` is handing out, and how far.
    pub stream: Vec<u8>,
    pub stream_pos: usize,
    /// The connection closed (peer, transport) after the messages still
    /// in `inbox`: the close is delivered when the last one is handed out.
    pub close_pending: bool,
    /// Keepalive (only while it is on: nothing is allocated for it
    /// otherwise): when the loop last read bytes from the peer, and when
    /// it sent its last keepalive ping (none: 0), in clock microseconds
    /// (`keepalive.rs`).
    pub last_input: u64,
    pub ping_at: u64,
}

impl ConnState {
    /// The connection's own handlers, made when `make` (setting one);
    /// None when it has none and `make` is false (clearing one).
    fn own_handlers(&mut self, make: bool) -> Option<&mut OwnHandlers> {
        if make {
            return Some(self.handlers.get_or_insert_with(Default::default));
        }
        self.handlers.as_deref_mut()
    }
    /// The connection's own message handler.
    pub(crate) fn on_msg(&self) -> Option<super::context::DispatchHandler> {
        self.handlers.as_ref()?.on_msg.clone()
    }
    /// The connection's own `on_ready`.
    pub(crate) fn on_ready(&self) -> Option<super::ActionHandler> {
        self.handlers.as_ref()?.on_ready.clone()
    }
    /// The connection's own `on_close`, taken (it runs once).
    pub(crate) fn take_on_close(&mut self) -> Option<CloseHandler> {
        self.handlers.as_mut()?.on_close.take()
    }

    fn new(m: Machine) -> ConnState {
        ConnState {
            m,
            handlers: None,
            close_fired: false,
            cold: None,
            write_watch: false,
            defer_flush: 0,
            charged: (0, 0),
            read_paused: false,
        }
    }

    pub(crate) fn cold(&mut self) -> &mut Cold {
        self.cold.get_or_insert_with(Default::default)
    }

    pub(crate) fn cold_ref(&self) -> Option<&Cold> {
        self.cold.as_deref()
    }

    pub(crate) fn inbox_bytes(&self) -> usize {
        self.cold.as_ref().map_or(0, |c| c.inbox.bytes())
    }
}

/// Messages kept for `get_msg` when no handler takes them.
const MAX_INBOX_BYTES: usize = 64 * 1024 * 1024;

pub(crate) struct ConnInner {
    pub id: i32,
    pub role: ConnRole,
    pub ctx: Arc<CtxInner>,
    /// Where the bytes go.
    pub io: Transport,
    closed: AtomicBool,
    /// The handshake completed (set once, with the phase turning `Open`;
    /// the phase leaves `Open` only for `Closed`, which sets `closed`):
    /// `is_ready` without the state lock on every send.
    opened: AtomicBool,
    /// The listener that accepted this connection (set when accepted, or
    /// by `nopoll_conn_accept_complete` for a socket the caller accepted).
    pub listener: Lock<Option<Arc<ConnInner>>>,
    pub host: Host,
    /// The port given as text (empty for an accepted connection: its
    /// peer's is in `host`).
    pub port: String,
    pub st: Lock<ConnState>,
    /// Raised from reading the transport until the machine has the bytes:
    /// one reader at a time (the loop and a `get_msg` caller may both
    /// read), so bytes reach the machine in the order they came. See
    /// [`ConnInner::start_reading`].
    reading: AtomicBool,
    pub hook: AtomicUsize,
    /// The slot of a layer built on the runtime (the C API's handle).
    pub attachment: Attachment,
    pub registered: AtomicBool,
    /// `st.on_msg` is set: this connection does not use the context's
    /// message handler (which the loop then need not look up per batch).
    pub own_on_msg: AtomicBool,
    /// A listener's failed accepts in a row (`accept_backoff.rs`), kept
    /// by the loop's thread; two bytes of what was padding.
    pub accept_failures: AtomicU16,
}

/// A connection's host: text given when it was made (a listener's bind
/// host, a client's server), or an accepted connection's peer address,
/// formatted the first time its text is asked for (a listener whose
/// program never asks links no address formatter: firmware size). The
/// peer's port is made text by [`Connection::port`] alone.
pub(crate) struct Host {
    given: String,
    peer: Option<net::Peer>,
    /// The peer's text once made (null until then), freed with `self`.
    text: AtomicPtr<String>,
}

impl Host {
    /// The text of the host.
    pub(crate) fn as_str(&self) -> &str {
        if self.peer.is_none() {
            return &self.given;
        }
        let p = self.text.load(Ordering::Acquire);
        if p.is_null() {
            return self.format();
        }
        // SAFETY: set once from `Box::into_raw` below, freed only by `drop`.
        unsafe { &*p }
    }

    #[cold]
    fn format(&self) -> &str {
        let made = Box::into_raw(Box::new(self.peer.map(|p| p.host()).unwrap_or_default()));
        let p = match self.text.compare_exchange(
            core::ptr::null_mut(),
            made,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => made,
            Err(first) => {
                // SAFETY: `made` came from `Box::into_raw` and was never shared.
                drop(unsafe { Box::from_raw(made) });
                first
            }
        };
        // SAFETY: `p` is the text set once (by us or another thread), freed
        // only by `drop`.
        unsafe { &*p }
    }
}

/// What a log line that is never written shows (no formatting code).
struct Unwritten;

impl core::fmt::Display for Unwritten {
    fn fmt(&self, _: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        Ok(())
    }
}

impl From<String> for Host {
    fn from(given: String) -> Host {
        Host {
            given,
            peer: None,
            text: AtomicPtr::new(core::ptr::null_mut()),
        }
    }
}

impl From<Option<net::Peer>> for Host {
    fn from(peer: Option<net::Peer>) -> Host {
        Host {
            given: String::new(),
            peer,
            text: AtomicPtr::new(core::ptr::null_mut()),
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let p = *self.text.get_mut();
        if !p.is_null() {
            // SAFETY: set once from `Box::into_raw`, nobody borrows it now.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

impl core::ops::Deref for Host {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl core::fmt::Display for Host {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Ends a read (see [`ConnInner::start_reading`]), also on unwinding.
pub(crate) struct ReadingGuard<'a>(&'a AtomicBool);

impl Drop for ReadingGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A WebSocket connection or listener. Cheap to clone (shared).
#[derive(Clone)]
pub struct Connection {
    pub(crate) inner: Arc<ConnInner>,
}

/// The machine's view of a connection's surroundings.
pub(crate) struct ConnEnv<'a> {
    pub ctx: &'a Context,
    pub conn: &'a ConnInner,
}

impl Env for ConnEnv<'_> {
    fn id(&self) -> i32 {
        self.conn.id
    }
    fn peer(&self) -> &dyn core::fmt::Display {
        if cfg!(feature = "no-log") {
            // No log line is ever written: the address formatter (reached
            // through the host's text) is not linked for nothing.
            return &Unwritten;
        }
        &self.conn.host
    }
    fn peer_ip(&self) -> Option<core::net::IpAddr> {
        self.conn.host.peer.map(|p| p.ip)
    }
    fn wants_log(&self, level: LogLevel) -> bool {
        self.ctx.wants_log(level)
    }
    fn engine_config(&self, own_max_frame: Option<u64>) -> Config {
        self.ctx.engine_config(own_max_frame)
    }
    fn permessage_deflate(&self) -> Option<crate::protocol::DeflateConfig> {
        self.ctx.inner.cfg.lock().permessage_deflate
    }
    fn trusts(&self, ip: core::net::IpAddr) -> Option<bool> {
        let cfg = self.ctx.inner.cfg.lock();
        (cfg.scale.forwarding?.trusts)(&cfg.scale.trusted, ip)
    }
    fn forwarding(&self) -> Option<&'static super::machine::Forwarding> {
        self.ctx.inner.cfg.lock().scale.forwarding
    }
}

impl Connection {
    pub(crate) fn build(
        ctx: &Context,
        role: ConnRole,
        fd: Socket,
        host: Host,
        port: String,
        m: Machine,
    ) -> Connection {
        Connection {
            inner: Arc::new(ConnInner {
                id: ctx.next_id(),
                role,
                ctx: ctx.inner.clone(),
                io: Transport::plain(fd),
                closed: AtomicBool::new(false),
                opened: AtomicBool::new(false),
                listener: Lock::new(None),
                host,
                port,
                st: Lock::new(ConnState::new(m)),
                reading: AtomicBool::new(false),
                hook: AtomicUsize::new(0),
                attachment: Attachment::default(),
                registered: AtomicBool::new(false),
                own_on_msg: AtomicBool::new(false),
                accept_failures: AtomicU16::new(0),
            }),
        }
    }

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
    /// Peer host (client, accepted) or bind host (listener). Behind a
    /// trusted proxy that told it (PROXY header, `X-Forwarded-For`,
    /// `X-Real-IP`), the client's ([`Connection::peer_host`] is the proxy).
    pub fn host(&self) -> String {
        let client = self.inner.st.lock().m.client_addr().map(|c| c.0.clone());
        client.unwrap_or_else(|| self.inner.host.as_str().into())
    }
    /// Peer port (client, accepted) or bound port (listener); the client's
    /// when a PROXY header told it.
    pub fn port(&self) -> String {
        let port = self
            .inner
            .st
            .lock()
            .m
            .client_addr()
            .and_then(|c| c.1.clone());
        port.unwrap_or_else(|| match self.inner.host.peer {
            // An accepted connection's, made text now (see `Host`).
            Some(p) => crate::protocol::text::decimal(u64::from(p.port)),
            None => self.inner.port.clone(),
        })
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
        f(&self.inner.st.lock().m.info)
    }
    /// The request target of the handshake ("/" when unknown).
    pub fn url(&self) -> String {
        self.with_info(|i| i.url().map(String::from))
            .unwrap_or_else(|| "/".into())
    }
    /// The subprotocol agreed on.
    pub fn accepted_protocol(&self) -> Option<String> {
        self.with_info(|i| i.accepted_protocol.as_deref().map(String::from))
    }
    /// Server side, in `on_open`: the subprotocol to answer with.
    pub fn set_accepted_protocol(&self, p: Option<&str>) {
        self.inner.st.lock().m.info.accepted_protocol = p.map(Box::from);
    }
    /// Status of the peer's close frame: 1005 without code, 1006 without
    /// frame. Shown once the close is delivered: after every message that
    /// came before it was handed out.
    pub fn close_status(&self) -> i32 {
        self.inner.st.lock().m.close_status()
    }
    /// Reason of the peer's close frame.
    pub fn close_reason(&self) -> Option<String> {
        self.inner.st.lock().m.close_reason().map(str::to_string)
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
        if let Some(o) = st.own_handlers(h.is_some()) {
            o.on_msg = h;
        }
        drop(st);
        self.ctx().handlers_changed();
    }
    /// Handler called once when the connection closes.
    pub fn set_on_close(&self, h: Option<CloseHandler>) {
        if let Some(o) = self.inner.st.lock().own_handlers(h.is_some()) {
            o.on_close = h;
        }
    }
    /// Per-connection handler for handshake completion.
    pub fn set_on_ready(&self, h: Option<super::ActionHandler>) {
        if let Some(o) = self.inner.st.lock().own_handlers(h.is_some()) {
            o.on_ready = h;
        }
    }
    /// permessage-deflate as negotiated on this connection (None: off, or
    /// the handshake is not done).
    pub fn permessage_deflate(&self) -> Option<crate::protocol::DeflateParams> {
        let mut st = self.inner.st.lock();
        st.m.engine().and_then(|e| e.config().deflate)
    }
    /// Incoming frame limit for this connection (its own, else the context's).
    pub fn max_frame_size(&self) -> u64 {
        let own = self.inner.st.lock().m.max_frame_size;
        own.unwrap_or_else(|| self.inner.ctx.cfg.lock().max_frame_size)
    }
    /// The frame limit set on this connection itself, if any.
    pub fn own_max_frame_size(&self) -> Option<u64> {
        self.inner.st.lock().m.max_frame_size
    }

    /// Sets the incoming frame limit of this connection (and, for a
    /// listener, of what it accepts).
    pub fn set_max_frame_size(&self, max: u64) {
        self.inner.st.lock().m.set_max_frame_size(max);
    }

    /// Replaces the socket value (nopoll_conn_set_socket; the old one is
    /// not closed). A registered connection is then served by the loop on
    /// the new socket, and the old one is no longer watched.
    pub fn set_socket(&self, fd: Socket) {
        let old = self.inner.io.swap_socket(fd);
        if old == fd || !self.inner.registered.load(Ordering::Acquire) {
            return;
        }
        let ctx = &self.inner.ctx;
        {
            let mut io = ctx.io.lock();
            if old >= 0 {
                io.watch(old, None);
            }
            if fd >= 0 {
                io.watch(fd, Some(self.id()));
            }
        }
        ctx.waker.wake();
    }

    /// Bytes received and buffered inside the connection, not yet handed out.
    pub fn read_pending(&self) -> usize {
        let st = self.inner.st.lock();
        let queued = st.inbox_bytes();
        let streamed = st.cold_ref().map_or(0, |c| c.stream.len() - c.stream_pos);
        // Plaintext a TLS session holds counts (as upstream's SSL_pending).
        queued + streamed + st.m.buffered_len() + self.inner.io.buffered_len()
    }

    /// True while the socket is usable (says nothing of the handshake).
    pub fn is_ok(&self) -> bool {
        !self.inner.closed.load(Ordering::Acquire) && self.inner.socket() >= 0
    }
}

impl ConnInner {
    #[inline]
    pub(crate) fn socket(&self) -> Socket {
        self.io.socket()
    }

    pub(crate) fn is_open(&self) -> bool {
        self.opened.load(Ordering::Acquire) && !self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn has_opened(&self) -> bool {
        self.opened.load(Ordering::Acquire)
    }

    /// Becomes the connection's only reader until the guard is dropped;
    /// `None` while another thread reads it (that reader hands the bytes
    /// to the machine in order; this one reads nothing this time: the
    /// loop sees the socket readable again if anything is left, `get_msg`
    /// returns what is complete).
    #[inline]
    pub(crate) fn start_reading(&self) -> Option<ReadingGuard<'_>> {
        if self.reading.swap(true, Ordering::Acquire) {
            return None;
        }
        Some(ReadingGuard(&self.reading))
    }

    /// Publishes the machine's handshake completion to the lock-free flag
    /// (after every change of the machine, under the lock). The `closed`
    /// flag is published when the close is delivered (`closed_now`), in
    /// stream order.
    #[inline]
    pub(crate) fn sync_flags(&self, st: &ConnState) {
        // Acquire, as every other flag load: with one ordering a firmware
        // links no out-of-line `AtomicBool::load` (portable-atomic's).
        if st.m.opened() && !self.opened.load(Ordering::Acquire) {
            self.opened.store(true, Ordering::Release);
        }
    }

    /// The close is delivered: `is_ok` turns false.
    pub(crate) fn set_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }

    #[inline]
    pub(crate) fn pending_locked(&self, st: &ConnState) -> usize {
        st.m.pending()
    }

    /// Gives the engine's buffers back when they hold more than the
    /// context's `max_idle_buffers` (they only shrink when empty: a message
    /// being reassembled or output not yet written stays).
    pub(crate) fn release_idle_buffers(&self, st: &mut ConnState) {
        st.m.release_idle_buffers(self.ctx.max_idle_buffers.load(Ordering::Relaxed));
        self.charge(st);
    }

    /// Marks the connection closed: no more sends; the socket is closed by
    /// `release_socket` once `on_close` has run.
    /// Closed by this side: delivered at once (no message of the peer's
    /// is waited for).
    pub(crate) fn mark_closed(&self, st: &mut ConnState) {
        st.m.shut();
        st.m.deliver_close();
        self.closed.store(true, Ordering::Release);
        self.charge(st);
    }

    pub(crate) fn release_socket(&self, ctx: &Context) {
        let fd = self.io.take_socket();
        if fd >= 0 {
            // epoll drops a closed socket from its set by itself (an
            // EPOLL_CTL_DEL after the close only fails with EBADF); poll
            // must be told.
            if (self.registered.load(Ordering::Acquire) || self.role == ConnRole::Listener)
                && !ctx.inner.poller_forgets_closed
            {
                let mut io = ctx.inner.io.lock();
                io.watch(fd, None);
                // A firmware stack (lwIP) must not see a socket closed while
                // its loop may be polling it: the loop closes it after
                // taking it out of the set (before its next wait, or when
                // it stops).
                if net::ops().kernel_fds == 0 && ctx.inner.poller.busy() {
                    io.close(fd);
                    drop(io);
                    ctx.inner.waker.wake();
                    return;
                }
            }
            net::close(fd);
        }
    }

    /// Queues `m` for `get_msg`. A message no handler took is dropped
    /// (with a log line) once the inbox holds [`MAX_INBOX_BYTES`]; one
    /// that a `get_msg` read completed (`reader`) is not: the reader takes
    /// it next, and a read completes at most a read buffer's worth (the
    /// size limits bound each message).
    pub(crate) fn queue_inbox(&self, ctx: &Context, m: Message, reader: bool) {
        let cap = if reader { usize::MAX } else { MAX_INBOX_BYTES };
        if !self.st.lock().cold().inbox.push_within(m, cap) {
            super::context::ctx_log!(
                ctx,
                Warning,
                "conn id={}: no message handler and the queue is full; message dropped",
                self.id
            );
        }
    }

    pub(crate) fn pop_inbox(&self) -> Option<Message> {
        self.st.lock().cold.as_mut()?.inbox.pop()
    }

    /// Messages wait in the inbox.
    pub(crate) fn has_inbox(&self) -> bool {
        self.st
            .lock()
            .cold
            .as_ref()
            .is_some_and(|c| !c.inbox.is_empty())
    }

    /// The peer's close (or the end of the stream) came after messages not
    /// handed out yet: it is delivered after the last of them. Meanwhile
    /// the loop stops watching the socket (it would report the end of the
    /// stream again and again).
    pub(crate) fn defer_close(&self, ctx: &Context) {
        self.st.lock().cold().close_pending = true;
        let fd = self.socket();
        if fd >= 0 && self.registered.load(Ordering::Acquire) {
            ctx.queue_watch(fd, None, true);
        }
    }

    /// A deferred close whose messages are all handed out now: true once
    /// (the caller delivers it).
    pub(crate) fn take_due_close(&self) -> bool {
        let mut st = self.st.lock();
        match st.cold.as_mut() {
            Some(c) if c.close_pending && c.inbox.is_empty() => {
                c.close_pending = false;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn take_stream(&self, out: &mut [u8]) -> usize {
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
    pub(crate) fn watch_write(&self, st: &mut ConnState) {
        if !st.write_watch && self.registered.load(Ordering::Acquire) {
            st.write_watch = true;
            self.ctx.io.lock().want_write(self.id);
            self.ctx.waker.wake();
        }
    }

    pub(crate) fn clear_write_watch(&self) -> bool {
        let mut st = self.st.lock();
        st.write_watch = false;
        self.pending_locked(&st) > 0
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn f<T: Send + Sync>() {}
    f::<Connection>();
    f::<Context>();
}
