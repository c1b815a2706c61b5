//! The connection's state machine: phases, what received bytes and sends
//! do in each phase, and close ordering. Plain Rust: no socket, no lock,
//! no clock. Bytes go in ([`Machine::receive`]), actions come out
//! ([`Actions`], for the dispatcher) and so do bytes to write
//! ([`Machine::output`] / [`Machine::consume`], for the I/O driver).
//!
//! The protocol itself (handshake parsers, frame codec, messages, close
//! rules) is in `protocol/`; this file only sequences it for one
//! connection: handshake, then `on_open`'s decision (server), then the
//! [`Engine`], then closed.
//!
//! ```text
//!  Client ──101──────────────────────────────► Open ──close/error──► Closed
//!  (Proxy ──PROXY header──►) only on a listener that requires one
//!  Server ──upgrade──► AwaitOpen ──accepted──► Open
//!     │                    └──refused──────────────────────────────► Closed
//!     └──plain HTTP──► Http ──answered──────────────────────────────► Closed
//! ```

#[allow(unused_imports)]
use crate::prelude::*;

use super::context::LogLevel;
use super::message::Message;
use super::rng::OsRandom;
use super::Error;
use crate::platform::Instant;
use crate::protocol::handshake::Request;
use crate::protocol::proxy::{self, ProxyHeader};
use crate::protocol::text;
use crate::protocol::{
    ClientHandshake, Config, DeflateConfig, DeflateParams, Engine, Role, SendError,
    ServerHandshake, ServerOutcome, UpgradeRequest,
};
use core::net::IpAddr;
use core::time::Duration;

/// What the machine needs from its surroundings (the context, for a real
/// connection; a plain struct in tests).
pub(crate) trait Env {
    /// The connection's id, for log lines.
    fn id(&self) -> i32;
    /// The peer's host, for log lines (made text only when one is
    /// written: an accepted connection keeps its peer's address binary).
    fn peer(&self) -> &dyn core::fmt::Display;
    /// The peer's IP address (None when unknown), for the trust checks
    /// of the forwarding headers.
    fn peer_ip(&self) -> Option<IpAddr>;
    /// Whether a log line of `level` would go anywhere.
    fn wants_log(&self, level: LogLevel) -> bool;
    /// The engine's limits, given the connection's own frame limit.
    fn engine_config(&self, own_max_frame: Option<u64>) -> Config;
    /// What a listener accepts of a permessage-deflate offer (None: it
    /// declines every offer).
    fn permessage_deflate(&self) -> Option<DeflateConfig> {
        None
    }
    /// Whether `ip` is one of the context's trusted proxies; `None` when
    /// none are configured.
    fn trusts(&self, _ip: IpAddr) -> Option<bool> {
        None
    }
    /// The PROXY and forwarded-for code, once a setter turned it on.
    fn forwarding(&self) -> Option<&'static Forwarding> {
        None
    }
}

/// The PROXY protocol and trusted forwarded-for headers, reached only
/// through this table: only the setters that turn them on
/// (`Context::set_trusted_proxies`, `Connection::set_proxy_protocol`) name
/// [`FORWARDING`], so a firmware that calls neither links none of it.
pub(crate) struct Forwarding {
    proxy_step: ProxyStep,
    forwarded_client: fn(&mut Machine, &dyn Env, &Request, &mut Actions),
    /// Whether `ip` is in the list (`None`: the list is empty).
    pub trusts: fn(&[proxy::Cidr], IpAddr) -> Option<bool>,
    /// The machine of a connection accepted by a listener (by id), which
    /// waits for a PROXY header first if the listener requires one.
    pub accepted: fn(&super::scale::ScaleSettings, Option<i32>, ServerHandshake) -> Machine,
}

type ProxyStep = fn(&mut Machine, &dyn Env, Box<ProxyWait>, &[u8], &mut Actions) -> Option<usize>;

pub(crate) static FORWARDING: Forwarding = Forwarding {
    proxy_step: Machine::proxy_step,
    forwarded_client: Machine::forwarded_client,
    trusts: |list, ip| (!list.is_empty()).then(|| list.iter().any(|c| c.contains(ip))),
    accepted: |scale, listener, hs| match listener {
        Some(l) if scale.proxy_listeners.contains(&l) => {
            Machine::server_behind_proxy(hs, &FORWARDING)
        }
        _ => Machine::server(hs),
    },
};

/// Queues a log line as an action (the machine runs under the
/// connection's lock; a log callback is user code and runs at dispatch).
macro_rules! act_log {
    ($env:expr, $acts:expr, $lvl:ident, $($arg:tt)*) => {{
        if !cfg!(feature = "no-log") && $env.wants_log(LogLevel::$lvl) {
            $acts.log(LogLevel::$lvl, format!($($arg)*));
        }
    }};
}

pub(crate) enum Phase {
    Listening,
    Client(Box<ClientWait>),
    /// Server behind a balancer: the PROXY header comes first.
    Proxy(Box<ProxyWait>),
    Server(Box<ServerHandshake>),
    AwaitOpen(Box<UpgradeRequest>),
    Http,
    Open(Box<Engine<OsRandom>>),
    Closed,
}

/// A client waiting for the server's answer. `step` is
/// [`Machine::client_receive`], named only by [`Machine::client`]: a
/// program that makes no client (a firmware listener) links none of the
/// answer's handling, as it links none of its checks
/// (`ClientHandshake::validate`, behind a pointer too).
pub(crate) struct ClientWait {
    hs: ClientHandshake,
    step: ClientStep,
}

type ClientStep = fn(&mut Machine, &dyn Env, Box<ClientWait>, &[u8], &mut Actions) -> Option<usize>;

/// A server connection waiting for its PROXY header (one box, so that
/// the phase stays two words).
pub(crate) struct ProxyWait {
    hs: ServerHandshake,
    imp: &'static Forwarding,
    /// The header's bytes so far, kept until it is whole.
    got: Vec<u8>,
}

/// What the dispatcher must do once the connection's lock is released,
/// in this order: log lines, `on_open`'s decision, an HTTP request, the
/// handshake's completion, the messages (in stream order), the close.
/// Flags and two lists, not a list of actions: within one batch of input
/// nothing comes in another order (`on_open` and an HTTP request end the
/// batch, the close ends the stream), and a flag is a store where a list
/// entry was a 60-byte record pushed, matched and dropped.
#[derive(Default)]
pub(crate) struct Actions {
    /// Log lines produced while the connection was locked (a log callback
    /// is user code: it runs at dispatch, with no lock held). None are
    /// made with `no-log`.
    #[cfg(not(feature = "no-log"))]
    pub logs: Vec<(LogLevel, String)>,
    /// Server: the upgrade request is complete; `on_open` decides
    /// ([`Machine::finish_open`]).
    pub on_open: bool,
    /// Server: a plain HTTP request (not an upgrade).
    pub http: Option<Box<Request>>,
    /// The handshake completed.
    pub ready: bool,
    /// Messages, in stream order.
    pub msgs: Vec<Incoming>,
    /// The connection closed (peer's close frame, protocol error, refused
    /// handshake...): `on_close`, then the socket is released.
    pub closed: bool,
}

impl Actions {
    /// Queues a log line (callers format it only if the context logs).
    #[inline]
    pub(crate) fn log(&mut self, level: LogLevel, line: String) {
        #[cfg(not(feature = "no-log"))]
        self.logs.push((level, line));
        #[cfg(feature = "no-log")]
        let _ = (level, line);
    }

    /// Only the close.
    pub(crate) fn closed() -> Actions {
        Actions {
            closed: true,
            ..Actions::default()
        }
    }
}

/// A received message to dispatch.
pub(crate) enum Incoming {
    Message(Message),
    /// A whole message left where it was received: `len` bytes at `start`
    /// of the loop's receive buffer (unmasked in place), made into a
    /// [`Message`] only when dispatched. Building it under the lock and
    /// moving it through this list cost more than the rest of a small
    /// message's trip. (Not without std: see [`Machine::feed_engine`].)
    #[cfg(feature = "std")]
    Input {
        kind: crate::protocol::DataKind,
        start: usize,
        len: usize,
    },
}

/// What the opening handshake told about the connection: the request
/// target, `Host`, `Origin`, `Cookie`, `X-Real-IP` and the requested
/// subprotocols, one after the other in one string (one allocation and
/// one copy routine where seven boxed strings took seven of each), and the
/// subprotocol agreed on.
#[derive(Default)]
pub(crate) struct Info {
    text: String,
    /// Where each field ends in `text`.
    ends: [u32; INFO_FIELDS],
    /// Bit `i`: field `i` is present.
    present: u8,
    pub accepted_protocol: Option<Box<str>>,
}

const INFO_FIELDS: usize = 6;

impl Info {
    /// Records the fields, in order: request target, `Host`, `Origin`,
    /// `Cookie`, `X-Real-IP`, requested subprotocols.
    pub(crate) fn record(&mut self, fields: [Option<&str>; INFO_FIELDS]) {
        self.text.clear();
        self.present = 0;
        for (i, f) in fields.into_iter().enumerate() {
            self.push(i, f);
        }
    }
    /// Appends field `i` (after those before it).
    fn push(&mut self, i: usize, f: Option<&str>) {
        if let Some(f) = f {
            self.text.push_str(f);
            self.present |= 1 << i;
        }
        self.ends[i] = self.text.len() as u32;
    }
    fn field(&self, i: usize) -> Option<&str> {
        if self.present & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.text.get(start as usize..self.ends[i] as usize)
    }
    /// The request target.
    pub(crate) fn url(&self) -> Option<&str> {
        self.field(0)
    }
    /// The `Host` header.
    pub(crate) fn host_header(&self) -> Option<&str> {
        self.field(1)
    }
    /// The `Origin` header.
    pub(crate) fn origin(&self) -> Option<&str> {
        self.field(2)
    }
    /// The `Cookie` header.
    pub(crate) fn cookie(&self) -> Option<&str> {
        self.field(3)
    }
    /// The `X-Real-IP` header.
    pub(crate) fn x_real_ip(&self) -> Option<&str> {
        self.field(4)
    }
    /// The requested subprotocols, as sent (several lines joined).
    pub(crate) fn requested_protocol(&self) -> Option<&str> {
        self.field(5)
    }
}

/// [`Machine::queue_http_default`]'s answer.
const HTTP_DEFAULT_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 19\r\nConnection: close\r\n\r\nWebSocket endpoint\n";

/// Bytes kept for a connection while `on_open` decides (pipelined frames).
const MAX_LEFTOVER: usize = 64 * 1024;

/// What few connections ever use, allocated on first use.
#[derive(Default)]
struct Cold {
    /// Reason of the peer's close frame, as it came (empty: none).
    close_reason: Vec<u8>,
    /// Bytes that came while `on_open` decided (pipelined frames).
    leftover: Vec<u8>,
    /// Frames sent before the handshake completed: encoded by the engine
    /// the connection will use once open, and held until then.
    held: Option<Box<Engine<OsRandom>>>,
    /// The client's host and port as a trusted proxy told them (PROXY
    /// header, `X-Forwarded-For`, `X-Real-IP`; no port from the headers).
    client: Option<(String, Option<String>)>,
}

/// One connection's protocol state, between bytes and actions.
pub(crate) struct Machine {
    phase: Phase,
    /// Bytes written before the engine's: the handshake request or answer,
    /// an HTTP answer, or what the engine had left when it closed.
    out: Vec<u8>,
    out_pos: usize,
    /// Set once, when the handshake completes (stays set once closed).
    opened: bool,
    pub info: Info,
    /// Status of the peer's close frame: 1005 without code, 1006 without
    /// frame. Shown once the close is delivered ([`Machine::close_status`]).
    peer_status: i32,
    /// The close was handed to the application (after every message that
    /// came before it): its status and reason are visible from then on.
    close_delivered: bool,
    /// The transport refused output (would block) and not all of it has
    /// been written since: what [`Machine::refused_pending`] reports.
    refused: bool,
    /// The connection's own incoming frame limit.
    pub max_frame_size: Option<u64>,
    /// Header bytes of the last short-written frame not yet written
    /// (nopoll reports payload bytes only).
    pub pending_header: usize,
    cold: Option<Box<Cold>>,
}

impl Machine {
    #[inline(always)]
    fn with(phase: Phase, out: Vec<u8>) -> Machine {
        Machine {
            phase,
            out,
            out_pos: 0,
            opened: false,
            info: Info::default(),
            peer_status: 1006,
            close_delivered: false,
            refused: false,
            max_frame_size: None,
            pending_header: 0,
            cold: None,
        }
    }

    /// A listener: takes no bytes.
    pub(crate) fn listening() -> Machine {
        Self::with(Phase::Listening, Vec::new())
    }

    /// A client whose upgrade `request` is its first output.
    pub(crate) fn client(hs: ClientHandshake, request: Vec<u8>) -> Machine {
        let step = Machine::client_receive;
        Self::with(Phase::Client(Box::new(ClientWait { hs, step })), request)
    }

    /// An accepted connection waiting for a PROXY header, then the
    /// upgrade request.
    pub(crate) fn server_behind_proxy(hs: ServerHandshake, imp: &'static Forwarding) -> Machine {
        Self::with(
            Phase::Proxy(Box::new(ProxyWait {
                hs,
                imp,
                got: Vec::new(),
            })),
            Vec::new(),
        )
    }

    /// An accepted connection waiting for the upgrade request. Inlined:
    /// the accept path and the forwarding table's `accepted` call it.
    #[inline(always)]
    pub(crate) fn server(hs: ServerHandshake) -> Machine {
        Self::with(Phase::Server(Box::new(hs)), Vec::new())
    }

    fn cold(&mut self) -> &mut Cold {
        self.cold.get_or_insert_with(Default::default)
    }

    // ------------------------------------------------------------ state

    /// The handshake completed (stays true once closed).
    pub(crate) fn opened(&self) -> bool {
        self.opened
    }
    /// Messages can be sent and received.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }
    pub(crate) fn is_http(&self) -> bool {
        matches!(self.phase, Phase::Http)
    }
    /// Still in the opening handshake (either side).
    pub(crate) fn is_handshaking(&self) -> bool {
        matches!(
            self.phase,
            Phase::Client(_) | Phase::Proxy(_) | Phase::Server(_) | Phase::AwaitOpen(_)
        )
    }
    /// The client's host and port, when a trusted proxy told them.
    pub(crate) fn client_addr(&self) -> Option<&(String, Option<String>)> {
        self.cold.as_ref()?.client.as_ref()
    }
    /// Status of the peer's close frame (1005: without status), once the
    /// close is delivered; 1006 until then, or when no close frame came.
    pub(crate) fn close_status(&self) -> i32 {
        if self.close_delivered {
            self.peer_status
        } else {
            1006
        }
    }
    /// Reason of the peer's close frame, once the close is delivered.
    pub(crate) fn close_reason(&self) -> Option<&str> {
        if !self.close_delivered {
            return None;
        }
        // Not text (a close refused for its code may carry any bytes):
        // none, as when it is empty.
        let r = &self.cold.as_ref()?.close_reason;
        crate::protocol::utf8::to_str(r).filter(|r| !r.is_empty())
    }
    /// The application has been told of the close (its messages from
    /// before the close were all handed out): status and reason show.
    pub(crate) fn deliver_close(&mut self) {
        self.close_delivered = true;
    }
    /// The engine, once open.
    pub(crate) fn engine(&mut self) -> Option<&mut Engine<OsRandom>> {
        match &mut self.phase {
            Phase::Open(e) => Some(e),
            _ => None,
        }
    }
    /// Bytes of a message being reassembled.
    pub(crate) fn buffered_len(&self) -> usize {
        match &self.phase {
            Phase::Open(e) => e.buffered_len(),
            _ => 0,
        }
    }

    /// Sets the connection's frame limit (and the engine's, once open).
    pub(crate) fn set_max_frame_size(&mut self, max: u64) {
        self.max_frame_size = Some(max);
        if let Phase::Open(e) = &mut self.phase {
            e.set_frame_limit(max);
        }
    }

    // ------------------------------------------------------------ output

    /// Bytes to write now: the handshake's first, then the engine's.
    #[inline]
    pub(crate) fn output(&self) -> &[u8] {
        if self.out_pos < self.out.len() {
            &self.out[self.out_pos..]
        } else if let Phase::Open(e) = &self.phase {
            e.output()
        } else {
            &[]
        }
    }

    /// Marks `n` bytes of [`Machine::output`] as written.
    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        if self.out_pos < self.out.len() {
            self.out_pos += n.min(self.out.len() - self.out_pos);
            if self.out_pos == self.out.len() {
                self.out = Vec::new();
                self.out_pos = 0;
            }
        } else if let Phase::Open(e) = &mut self.phase {
            e.consume_output(n);
        }
        if self.refused && self.pending() == 0 {
            self.refused = false;
        }
    }

    /// The transport would not take all of [`Machine::output`].
    pub(crate) fn note_refused(&mut self) {
        self.refused = true;
    }

    /// Output the transport refused and that is still unwritten (all of
    /// it, from the first refused byte on); 0 while the transport takes
    /// everything, even if frames are gathered to be written together.
    pub(crate) fn refused_pending(&self) -> usize {
        if self.refused {
            self.pending()
        } else {
            0
        }
    }

    /// Frames sent before the handshake completed, not written yet.
    pub(crate) fn held_len(&self) -> usize {
        self.cold
            .as_ref()
            .and_then(|c| c.held.as_ref())
            .map_or(0, |e| e.output_len())
    }

    /// Handshake bytes not yet written (a large send must not overtake them).
    pub(crate) fn handshake_pending(&self) -> bool {
        self.out_pos < self.out.len()
    }

    /// All bytes not yet written.
    #[inline]
    pub(crate) fn pending(&self) -> usize {
        let hs = self.out.len() - self.out_pos;
        match &self.phase {
            Phase::Open(e) => hs + e.output_len(),
            _ => hs,
        }
    }

    /// Whether the connection should be read: not while the output the
    /// transport refused is over `limit` (read backpressure). Whatever is
    /// read may queue more output (answers, pongs, the handler's echo),
    /// so a peer that sends without reading would grow it without bound;
    /// unread, its bytes wait in TCP and the peer blocks. Reading resumes
    /// once the output drains to `limit` or below.
    #[inline]
    pub(crate) fn wants_read(&self, limit: usize) -> bool {
        self.refused_pending() <= limit
    }

    /// Memory the connection holds for the budget (`runtime/budget.rs`):
    /// (reassembly, output) bytes allocated. Reassembly: the message and
    /// control frame being received, bytes kept while `on_open` decides.
    /// Output: the engine's queue, the handshake's or HTTP answer, frames
    /// held for the handshake.
    #[inline]
    pub(crate) fn memory(&self) -> (usize, usize) {
        let (mut r, mut o) = match &self.phase {
            Phase::Open(e) => (e.reassembly_capacity(), e.output_capacity()),
            _ => (0, 0),
        };
        o += self.out.capacity();
        if let Some(c) = self.cold.as_ref() {
            r += c.leftover.capacity();
            o += c.held.as_ref().map_or(0, |e| e.output_capacity());
        }
        (r, o)
    }

    /// Gives the engine's buffers back when they hold more than `max`.
    pub(crate) fn release_idle_buffers(&mut self, max: usize) {
        if let Phase::Open(e) = &mut self.phase {
            if e.buffer_capacity() > max {
                e.shrink();
            }
        }
    }

    // ------------------------------------------------------------ closing

    /// Closed from this side or by the transport: nothing more is read or
    /// written, and unwritten output is dropped.
    pub(crate) fn shut(&mut self) {
        self.phase = Phase::Closed;
        self.drop_output();
    }

    /// Drops unwritten output (once closed and the last write was tried),
    /// and frames held for a handshake that did not complete.
    pub(crate) fn drop_output(&mut self) {
        self.out = Vec::new();
        self.out_pos = 0;
        self.refused = false;
        if let Some(c) = self.cold.as_mut() {
            c.held = None;
        }
    }

    /// Closed by what was received: the engine's last output (the close
    /// reply) stays in [`Machine::output`] for one last write.
    fn closed_by_input(&mut self, acts: &mut Actions) {
        if let Phase::Open(e) = core::mem::replace(&mut self.phase, Phase::Closed) {
            let rest = e.output();
            if !rest.is_empty() {
                self.out.extend_from_slice(rest);
            }
        }
        acts.closed = true;
    }

    /// Handshake deadline passed: closes a connection still in its
    /// handshake; true if it did.
    pub(crate) fn expire(&mut self) -> bool {
        if self.is_handshaking() {
            self.shut();
            return true;
        }
        false
    }

    /// Queues a close frame (status `None` = empty) if open and none was
    /// sent yet. A status or reason the protocol refuses is replaced by an
    /// empty close frame and the refusal returned.
    pub(crate) fn queue_close(&mut self, status: Option<u16>, reason: &[u8]) -> Option<SendError> {
        let Phase::Open(e) = &mut self.phase else {
            return None;
        };
        if e.close_sent() {
            return None;
        }
        match e.close(status, reason) {
            Ok(()) => None,
            Err(err) => {
                let _ = e.close(None, b"");
                Some(err)
            }
        }
    }

    // ------------------------------------------------------------ send

    /// Queues a frame built by `queue`; returns the bytes it added.
    ///
    /// During the opening handshake (either side) the frame is held, not
    /// output: it follows the handshake's answer once that is accepted
    /// (never before it: RFC 6455 4.1), in order, and is dropped if the
    /// handshake fails. [`Machine::is_handshaking`] tells the two apart.
    pub(crate) fn send(
        &mut self,
        queue: impl FnOnce(&mut Engine<OsRandom>) -> Result<(), SendError>,
    ) -> Result<usize, Error> {
        let role = if matches!(self.phase, Phase::Client(_)) {
            Role::Client
        } else {
            Role::Server
        };
        let engine = match &mut self.phase {
            Phase::Open(e) => e,
            Phase::Client(_) | Phase::Server(_) | Phase::AwaitOpen(_) => {
                // Its limits are set when it takes over (see `open`).
                self.cold
                    .get_or_insert_with(Default::default)
                    .held
                    .get_or_insert_with(|| fresh_engine(role))
            }
            _ => return Err(Error::NotOpen),
        };
        let queued = engine.output_len();
        queue(engine)?;
        Ok(engine.output_len() - queued)
    }

    /// Queues the answer to a plain HTTP request when the context has no
    /// HTTP handler: what `queue_http_response(400, "text/plain",
    /// b"WebSocket endpoint\n")` queues, as one constant, so that a program
    /// that never answers HTTP itself does not link the answer's builder.
    pub(crate) fn queue_http_default(&mut self) {
        if self.is_http() {
            self.out.extend_from_slice(HTTP_DEFAULT_ANSWER);
        }
    }

    /// Queues the answer to a plain HTTP request (in the `Http` phase).
    pub(crate) fn queue_http_response(
        &mut self,
        status: u16,
        content_type: &str,
        body: &[u8],
    ) -> Result<(), Error> {
        if content_type.bytes().any(|b| b == b'\r' || b == b'\n') || !(100..=999).contains(&status)
        {
            return Err(Error::InvalidArgument("bad status or content type"));
        }
        if !self.is_http() {
            return Err(Error::NotOpen);
        }
        let reason = crate::protocol::handshake::reason_phrase(status);
        let mut head = String::from("HTTP/1.1 ");
        text::push_decimal(&mut head, u64::from(status));
        text::push_ascii(&mut head, b" ");
        head.push_str(reason);
        head.push_str("\r\nContent-Type: ");
        head.push_str(content_type);
        head.push_str("\r\nContent-Length: ");
        text::push_decimal(&mut head, body.len() as u64);
        head.push_str("\r\nConnection: close\r\n\r\n");
        self.out.extend_from_slice(head.as_bytes());
        self.out.extend_from_slice(body);
        Ok(())
    }
}

/// An engine with the default limits, which [`Machine::open`] replaces
/// with the connection's (one place builds engines: frames sent during the
/// handshake are queued on the engine the connection then keeps).
fn fresh_engine(role: Role) -> Box<Engine<OsRandom>> {
    Box::new(Engine::new(role, Config::default(), OsRandom))
}

/// Keepalive settings (all off by default, as upstream: nopoll has none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Keepalive {
    /// Ping a connection after this long without input.
    pub ping_interval: Option<Duration>,
    /// After a keepalive ping, close (1006, no close frame) if nothing
    /// arrives within this (default: the ping interval).
    pub pong_timeout: Option<Duration>,
    /// Close (1001) a connection after this long without input.
    pub idle_timeout: Option<Duration>,
}

impl Keepalive {
    pub(crate) fn is_on(&self) -> bool {
        self.ping_interval.is_some() || self.idle_timeout.is_some()
    }
}

/// What a keepalive check decided ([`keepalive_check`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeepaliveStep {
    /// Nothing to do; check again at the given time.
    Wait(Instant),
    /// Send a ping now (and note the time); check again at the given time.
    Ping(Instant),
    /// No answer to the keepalive ping in time: the link is dead (closed
    /// without a close frame, status 1006).
    Dead,
    /// No input for the idle timeout: close (1001).
    Idle,
}

/// The keepalive rule for one connection at `now`: `last_input` is when
/// bytes last came from the peer, `ping_at` when the last keepalive ping
/// went out (if one is unanswered: input since clears it).
pub(crate) fn keepalive_check(
    ka: &Keepalive,
    now: Instant,
    last_input: Instant,
    ping_at: Option<Instant>,
) -> KeepaliveStep {
    let ping_at = ping_at.filter(|&p| p >= last_input);
    if let Some(idle) = ka.idle_timeout {
        if now >= last_input + idle {
            return KeepaliveStep::Idle;
        }
    }
    let idle_at = ka.idle_timeout.map(|i| last_input + i);
    let earliest = |t: Instant| idle_at.map_or(t, |i| i.min(t));
    let Some(interval) = ka.ping_interval else {
        return KeepaliveStep::Wait(earliest(idle_at.unwrap_or(now)));
    };
    let timeout = ka.pong_timeout.unwrap_or(interval);
    match ping_at {
        Some(p) if now >= p + timeout => KeepaliveStep::Dead,
        Some(p) => KeepaliveStep::Wait(earliest(p + timeout)),
        None if now >= last_input + interval => KeepaliveStep::Ping(earliest(now + timeout)),
        None => KeepaliveStep::Wait(earliest(last_input + interval)),
    }
}

// What received bytes do in each phase, and finishing a server handshake.
#[path = "machine_receive.rs"]
mod receive;

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "machine_proxy_tests.rs"]
mod proxy_tests;
