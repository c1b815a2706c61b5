//! The receiving half of the connection's state machine
//! (`machine.rs`): what received bytes do in each phase (handshake, PROXY
//! header, waiting for `on_open`, HTTP, open), entering `Open`, and
//! finishing a server handshake once `on_open` decided. Plain Rust like
//! the rest of the machine: no socket, no lock, no clock.

#[allow(unused_imports)]
use crate::prelude::*;

use super::*;
use crate::protocol::engine::Ready;
use crate::protocol::{DataKind, OpCode};

impl Machine {
    /// Enters `Open`: the engine that holds early sends takes over, if
    /// any (its frames now follow the handshake's output).
    /// `deflate`: permessage-deflate as the handshake agreed it.
    pub(super) fn open(&mut self, env: &dyn Env, role: Role, deflate: Option<DeflateParams>) {
        let config = Config {
            deflate,
            ..env.engine_config(self.max_frame_size)
        };
        let mut engine = self
            .cold
            .as_mut()
            .and_then(|c| c.held.take())
            .unwrap_or_else(|| fresh_engine(role));
        engine.start_with(config);
        self.phase = Phase::Open(engine);
        self.opened = true;
    }

    /// Processes received bytes; collects what must be dispatched, in
    /// stream order. `base`: where `data` starts in the buffer the caller
    /// dispatches from, if whole messages may be left there
    /// ([`Incoming::Input`]); `None`: they are copied out.
    pub(crate) fn receive(
        &mut self,
        env: &dyn Env,
        data: &mut [u8],
        base: Option<usize>,
        acts: &mut Actions,
    ) {
        let mut pos = 0;
        while pos < data.len() {
            if !matches!(self.phase, Phase::Open(_)) {
                // The handshake phases, once per connection: out of line,
                // so that the per-message path below stays small.
                match self.receive_opening(env, &data[pos..], acts) {
                    Some(n) => {
                        pos += n;
                        continue;
                    }
                    None => return,
                }
            }
            // The engine borrowed in place, beside the fields the peer's
            // close sets (not taken out of the phase and put back).
            let Phase::Open(engine) = &mut self.phase else {
                return;
            };
            let base = base.map(|b| b + pos);
            let peer = PeerClose {
                status: &mut self.peer_status,
                cold: &mut self.cold,
            };
            let failed = feed_engine(env, engine, peer, &mut data[pos..], base, acts);
            if failed || engine.close_received() {
                self.closed_by_input(acts);
            }
            return;
        }
    }

    /// [`Machine::receive`] before `Open`: feeds `data` to the phase
    /// (handshake, PROXY header, waiting for `on_open`). `Some(n)`: the
    /// first `n` bytes were taken and the rest goes to the next phase;
    /// `None`: nothing more to do with this input.
    #[inline(never)]
    fn receive_opening(&mut self, env: &dyn Env, data: &[u8], acts: &mut Actions) -> Option<usize> {
        let mut pos = 0;
        match core::mem::replace(&mut self.phase, Phase::Closed) {
            // Through the pointer `Machine::client` set: see `ClientWait`.
            Phase::Client(w) => return (w.step)(self, env, w, data, acts),
            Phase::Proxy(w) => return (w.imp.proxy_step)(self, env, w, data, acts),
            Phase::Server(mut hs) => {
                let (n, outcome) = hs.feed(data);
                pos += n;
                match outcome {
                    None => self.phase = Phase::Server(hs),
                    Some(ServerOutcome::Upgrade(up)) => {
                        record_request(&mut self.info, &up.request);
                        self.forwarded(env, &up.request, acts);
                        self.phase = Phase::AwaitOpen(up);
                        acts.on_open = true;
                    }
                    Some(ServerOutcome::Http(req)) => {
                        record_request(&mut self.info, &req);
                        self.forwarded(env, &req, acts);
                        self.phase = Phase::Http;
                        acts.http = Some(req);
                        return None;
                    }
                    Some(ServerOutcome::Reject(r)) => {
                        act_log!(
                            env,
                            acts,
                            Warning,
                            "conn id={} from {}: bad handshake ({}): {}",
                            env.id(),
                            env.peer(),
                            r.status,
                            r.error
                        );
                        r.write_response(&mut self.out);
                        acts.closed = true;
                        return None;
                    }
                }
            }
            Phase::AwaitOpen(up) => {
                self.phase = Phase::AwaitOpen(up);
                // (Never empty: `receive` calls with bytes left.)
                let left = &mut self.cold().leftover;
                if left.len() + data.len() <= MAX_LEFTOVER {
                    left.extend_from_slice(data);
                    return None;
                }
                act_log!(
                    env,
                    acts,
                    Warning,
                    "conn id={}: too much data before the handshake completed",
                    env.id()
                );
                self.phase = Phase::Closed;
                acts.closed = true;
                return None;
            }
            other => {
                self.phase = other;
                return None;
            }
        }
        Some(pos)
    }

    /// [`Machine::receive_opening`] for a client: feeds `data` to the
    /// server's answer in `w` (the first `n` bytes of `data` taken: `Some(n)`).
    pub(super) fn client_receive(
        &mut self,
        env: &dyn Env,
        mut w: Box<ClientWait>,
        data: &[u8],
        acts: &mut Actions,
    ) -> Option<usize> {
        match w.hs.feed(data) {
            Ok((n, None)) => {
                self.phase = Phase::Client(w);
                Some(n)
            }
            Ok((n, Some(resp))) => {
                if resp.unoffered_protocol {
                    act_log!(
                        env,
                        acts,
                        Warning,
                        "conn id={}: server answered subprotocol {:?}, which was not offered; accepted (as nopoll does)",
                        env.id(),
                        resp.protocol.as_deref().unwrap_or("")
                    );
                }
                self.info.accepted_protocol = resp.protocol.map(String::into_boxed_str);
                self.open(env, Role::Client, resp.deflate);
                acts.ready = true;
                Some(n)
            }
            Err(e) => {
                act_log!(
                    env,
                    acts,
                    Critical,
                    "conn id={}: handshake refused: {e}",
                    env.id()
                );
                acts.closed = true;
                None
            }
        }
    }

    /// [`Machine::receive_opening`] waiting for a PROXY header (through
    /// [`FORWARDING`]): `Some(n)` once it completed with the first `n`
    /// bytes of `data` (the upgrade request comes next).
    pub(super) fn proxy_step(
        &mut self,
        env: &dyn Env,
        mut w: Box<ProxyWait>,
        data: &[u8],
        acts: &mut Actions,
    ) -> Option<usize> {
        match self.proxy_header(env, &mut w.got, data, acts) {
            Some(Some(n)) => {
                self.phase = Phase::Server(Box::new(w.hs));
                Some(n)
            }
            Some(None) => {
                self.phase = Phase::Proxy(w);
                None
            }
            None => {
                acts.closed = true;
                None
            }
        }
    }

    /// Feeds `data` to a PROXY header whose first bytes are `got`:
    /// `Some(Some(n))` when it completed with the first `n` bytes of
    /// `data` (the client's address recorded), `Some(None)` when all of
    /// `data` was taken and more is needed, `None` when it is refused
    /// (logged; the connection closes without an answer).
    pub(super) fn proxy_header(
        &mut self,
        env: &dyn Env,
        got: &mut Vec<u8>,
        data: &[u8],
        acts: &mut Actions,
    ) -> Option<Option<usize>> {
        let peer = env.peer_ip();
        if peer.and_then(|ip| env.trusts(ip)) == Some(false) {
            act_log!(
                env,
                acts,
                Warning,
                "conn id={} from {}: PROXY header from an untrusted peer refused",
                env.id(),
                env.peer()
            );
            return None;
        }
        let before = got.len();
        let take = data.len().min(proxy::MAX_HEADER - before);
        got.extend_from_slice(&data[..take]);
        match proxy::parse(got) {
            Ok(None) => Some(None),
            Ok(Some((len, header))) => {
                if let ProxyHeader::Proxied { source, .. } = header {
                    self.cold().client = Some((source.0.to_string(), Some(source.1.to_string())));
                }
                act_log!(
                    env,
                    acts,
                    Debug,
                    "conn id={} from {}: PROXY header: {:?}",
                    env.id(),
                    env.peer(),
                    header
                );
                *got = Vec::new();
                Some(Some(len - before))
            }
            Err(e) => {
                act_log!(
                    env,
                    acts,
                    Warning,
                    "conn id={} from {}: refused: {e}",
                    env.id(),
                    env.peer()
                );
                None
            }
        }
    }

    /// [`Machine::forwarded_client`] when the context turned it on.
    fn forwarded(&mut self, env: &dyn Env, req: &Request, acts: &mut Actions) {
        if let Some(f) = env.forwarding() {
            (f.forwarded_client)(self, env, req, acts);
        }
    }

    /// Records the client's address from `X-Forwarded-For` (or else
    /// `X-Real-IP`) when the peer is a trusted proxy and no PROXY header
    /// gave it already. A value that is not an address is ignored (logged).
    pub(super) fn forwarded_client(&mut self, env: &dyn Env, req: &Request, acts: &mut Actions) {
        if self.client_addr().is_some() {
            return;
        }
        let Some(peer) = env.peer_ip() else {
            return;
        };
        if env.trusts(peer) != Some(true) {
            return;
        }
        let client = if let Some(xff) = req.header("X-Forwarded-For") {
            proxy::forwarded_client(xff, |ip| env.trusts(ip) == Some(true))
        } else if let Some(real) = req.header("X-Real-IP") {
            proxy::parse_forwarded_addr(real.trim())
        } else {
            return;
        };
        match client {
            Some(ip) => self.cold().client = Some((ip.to_string(), None)),
            None => act_log!(
                env,
                acts,
                Warning,
                "conn id={} from {}: forwarded client address is not an address",
                env.id(),
                env.peer()
            ),
        }
    }
}

/// Where the peer's close frame is recorded: the machine's fields, beside
/// its engine ([`feed_engine`]).
struct PeerClose<'a> {
    status: &'a mut i32,
    cold: &'a mut Option<Box<Cold>>,
}

impl PeerClose<'_> {
    /// Records the status and reason of the peer's close frame (shown
    /// once the close is delivered). `payload`: the close frame's (the
    /// engine checked its length and, unless it refused the code, its
    /// reason), kept as it came: its reason is made text when asked for
    /// ([`Machine::close_reason`]).
    fn closed(&mut self, payload: &[u8]) {
        let (code, reason) = match payload {
            [a, b, reason @ ..] => (u16::from_be_bytes([*a, *b]), reason),
            _ => (crate::protocol::close::STATUS_NO_STATUS, &[][..]),
        };
        *self.status = i32::from(code);
        if !reason.is_empty() {
            let r = &mut self.cold.get_or_insert_with(Default::default).close_reason;
            r.clear();
            r.extend_from_slice(reason);
        } else if let Some(c) = self.cold.as_mut() {
            c.close_reason.clear();
        }
    }
}

/// Runs the engine over `data` (at `base` of the dispatch input, if
/// messages may stay there); returns true if the connection failed.
fn feed_engine(
    env: &dyn Env,
    engine: &mut Engine<OsRandom>,
    mut peer: PeerClose<'_>,
    data: &mut [u8],
    base: Option<usize>,
    acts: &mut Actions,
) -> bool {
    // Without std whole messages are always copied out here: leaving
    // them in the input saves no copy (one is made at dispatch), only
    // lock time, which a firmware does not share.
    #[cfg(not(feature = "std"))]
    let _ = base;
    let mut pos = 0;
    loop {
        match engine.read_ready(&mut data[pos..]) {
            Ok((n, ready)) => {
                let at = pos;
                pos += n;
                let Some(ready) = ready else {
                    if n == 0 || pos == data.len() {
                        return false;
                    }
                    continue;
                };
                let input = &data[at..];
                let (opcode, end, utf8, src) = match ready {
                    #[cfg(feature = "std")]
                    Ready::Message(kind, crate::protocol::engine::Src::Input(a, b))
                        if base.is_some() =>
                    {
                        // Left where it is (unmasked in place).
                        acts.msgs.push(Incoming::Input {
                            kind,
                            start: base.unwrap_or(0) + at + a,
                            len: b - a,
                        });
                        continue;
                    }
                    // Copied out of the input or out of the engine's
                    // reassembly buffer, which the engine keeps: handing
                    // that buffer over made the heap shrink and regrow,
                    // faulting its pages in again, for every large message.
                    Ready::Message(DataKind::Text, src) => (OpCode::Text, true, true, src),
                    Ready::Message(DataKind::Binary, src) => (OpCode::Binary, true, false, src),
                    Ready::Chunk {
                        opcode,
                        fin,
                        frame_end,
                        src,
                        ..
                    } => (opcode, fin && frame_end, false, src),
                    Ready::Ping(_) | Ready::Pong(_) => continue,
                    Ready::Close(src) => {
                        // Validated when the frame completed.
                        peer.closed(engine.slice(src, input));
                        act_log!(
                            env,
                            acts,
                            Debug,
                            "conn id={}: peer closed with {}",
                            env.id(),
                            *peer.status
                        );
                        continue;
                    }
                };
                let bytes = engine.slice(src, input);
                if !Message::push_received(&mut acts.msgs, opcode, end, utf8, bytes) {
                    // No memory for it: closed with 1009 (what the
                    // engine answers when reassembly runs out).
                    let _ = engine.close(Some(1009), b"");
                    return true;
                }
            }
            Err(e) => {
                // A close frame refused for its code (answered 1002)
                // still reports what the peer sent.
                if let Some(payload) = engine.refused_close_payload() {
                    peer.closed(payload);
                }
                act_log!(
                    env,
                    acts,
                    Warning,
                    "conn id={}: closing with {}: {e}",
                    env.id(),
                    e.close_code()
                );
                return true;
            }
        }
    }
}

impl Machine {
    /// Completes a server handshake after `on_open` decided; then processes
    /// what the client sent meanwhile.
    pub(crate) fn finish_open(&mut self, env: &dyn Env, accepted: bool, acts: &mut Actions) {
        let Phase::AwaitOpen(up) = core::mem::replace(&mut self.phase, Phase::Closed) else {
            return;
        };
        if !accepted {
            act_log!(env, acts, Debug, "conn id={}: refused by on_open", env.id());
            self.out.extend_from_slice(
                b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            );
            acts.closed = true;
            return;
        }
        // Without an explicit choice, answer with the first requested
        // subprotocol (echoing a whole list would break RFC 6455 clients).
        if self.info.accepted_protocol.is_none() {
            self.info.accepted_protocol = up.request.first_protocol().map(Box::from);
        }
        let offer = env.permessage_deflate();
        let protocol = self.info.accepted_protocol.as_deref();
        let deflate = match up.answer_into(&mut self.out, protocol, offer.as_ref()) {
            Ok(deflate) => deflate,
            Err(e) => {
                act_log!(
                    env,
                    acts,
                    Critical,
                    "conn id={}: cannot answer: {e}",
                    env.id()
                );
                acts.closed = true;
                return;
            }
        };
        self.open(env, Role::Server, deflate);
        acts.ready = true;
        let mut rest = self
            .cold
            .as_mut()
            .map(|c| core::mem::take(&mut c.leftover))
            .unwrap_or_default();
        if !rest.is_empty() {
            self.receive(env, &mut rest, None, acts);
        }
    }
}

pub(super) fn record_request(info: &mut Info, r: &Request) {
    // The request target, always there (field 0).
    info.text.clear();
    info.text.push_str(&r.url);
    info.present = 1;
    info.ends[0] = info.text.len() as u32;
    // The headers by one loop over a table of (name, field): the first
    // line of each, `Sec-WebSocket-Origin` only without `Origin`, and
    // every `Sec-WebSocket-Protocol` line joined with ", " straight into
    // the text (`Request::requested_protocols` without its string).
    const PROTOCOLS: usize = INFO_FIELDS - 1;
    const NAMES: [(&str, usize); 6] = [
        ("Host", 1),
        ("Origin", 2),
        ("Sec-WebSocket-Origin", 2),
        ("Cookie", 3),
        ("X-Real-IP", 4),
        ("Sec-WebSocket-Protocol", PROTOCOLS),
    ];
    for (name, i) in NAMES {
        for h in &r.headers {
            if h.name.eq_ignore_ascii_case(name) {
                if info.present & (1 << i) != 0 {
                    if i != PROTOCOLS {
                        break;
                    }
                    info.text.push_str(", ");
                }
                info.text.push_str(&h.value);
                info.present |= 1 << i;
            }
        }
        info.ends[i] = info.text.len() as u32;
    }
}
