//! The frame/message state machine: bytes in, events out; messages in,
//! bytes out. One per connection, after the opening handshake.

use super::close::{is_sendable_close_code, CloseFrame};
use super::deflate::{self, DeflateParams, InflateError, PerMessage};
use super::frame::{write_frame, FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use super::mask::apply_mask;
use super::utf8::{self, Utf8Validator};
use super::{err_len, ProtocolError, RandomSource, Role, SendError};
use alloc::boxed::Box;
use alloc::vec::Vec;

/// The kind of a data message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataKind {
    /// UTF-8 text (opcode 1).
    Text,
    /// Binary data (opcode 2).
    Binary,
}

impl DataKind {
    fn opcode(self) -> OpCode {
        match self {
            DataKind::Text => OpCode::Text,
            DataKind::Binary => OpCode::Binary,
        }
    }
}

/// How received data is handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Whole messages, fragments reassembled.
    Messages,
    /// Pieces of frames as soon as they arrive (nopoll's `is_fragment` /
    /// `is_final` view); nothing is buffered.
    Partial,
}

/// Limits and behaviour of an [`Engine`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Largest accepted frame payload (1009 beyond). Default 16 MiB, as nopoll.
    pub max_frame_size: u64,
    /// Largest accepted message (1009 beyond). Default 64 MiB.
    pub max_message_size: u64,
    /// Whole messages or partial frames.
    pub delivery: Delivery,
    /// Take a text or binary frame that arrives inside an unfinished
    /// fragmented message as its continuation, as upstream nopoll peers
    /// send them (RFC 6455 makes it a protocol error, the default).
    pub legacy_fragments: bool,
    /// permessage-deflate as negotiated in the handshake (`None`: off, and
    /// RSV1 stays a protocol error).
    pub deflate: Option<DeflateParams>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_frame_size: 16 * 1024 * 1024,
            max_message_size: 64 * 1024 * 1024,
            delivery: Delivery::Messages,
            legacy_fragments: false,
            deflate: None,
        }
    }
}

/// A piece of a data message ([`Delivery::Partial`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// Kind of the message this piece belongs to.
    pub kind: DataKind,
    /// Opcode of the frame (text/binary for the first frame, continuation after).
    pub opcode: OpCode,
    /// The bytes (unmasked).
    pub data: &'a [u8],
    /// FIN bit of the frame.
    pub fin: bool,
    /// This piece ends its frame.
    pub frame_end: bool,
    /// This piece ends the message (`fin && frame_end`).
    pub message_end: bool,
}

/// What the engine reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete message ([`Delivery::Messages`]).
    Message(DataKind, &'a [u8]),
    /// A piece of a message ([`Delivery::Partial`]).
    Chunk(Chunk<'a>),
    /// A ping; the pong is already queued.
    Ping(&'a [u8]),
    /// A pong (informational).
    Pong(&'a [u8]),
    /// The peer's close frame; when we had not closed yet, our echo is queued.
    Close(CloseFrame<'a>),
}

/// The header of a frame whose payload the caller writes itself
/// ([`Engine::send_unbuffered`]).
#[derive(Clone, Copy, Debug)]
pub struct FrameHead {
    bytes: [u8; MAX_HEADER_LEN],
    len: usize,
}

impl FrameHead {
    /// The encoded header.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Where a ready event's bytes are.
#[derive(Clone, Copy)]
pub(crate) enum Src {
    Input(usize, usize),
    Message,
    Control,
}

#[derive(Clone, Copy)]
pub(crate) enum Ready {
    Message(DataKind, Src),
    Chunk {
        kind: DataKind,
        opcode: OpCode,
        fin: bool,
        frame_end: bool,
        src: Src,
    },
    Ping(Src),
    Pong(Src),
    Close(Src),
}

#[derive(Clone, Copy)]
struct CurrentFrame {
    fin: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    /// Payload bytes still to come (a `usize`: a frame that does not fit
    /// one is refused as too large, see [`Engine::start_frame`]).
    remaining: usize,
    offset: usize,
}

/// Unwritten output from which a ping's pong replaces the previous pong
/// when that one is not written yet (RFC 6455 5.5.3 allows answering only
/// the most recent ping). Below it every ping is answered (what peers and
/// Autobahn's cases 2.10/2.11 expect of a burst of pings); above it a ping
/// flood from a peer that does not read queues one pong, not one per ping.
pub const PONG_BACKLOG: usize = 16 * 1024;

/// The per-connection RFC 6455 state machine after the handshake.
///
/// Feed received bytes with [`Engine::read`]; send with the `send_*`
/// methods; write out what [`Engine::output`] holds and acknowledge it with
/// [`Engine::consume_output`]. No I/O, no clock, no locks.
pub struct Engine<R: RandomSource> {
    role: Role,
    config: Config,
    rng: R,
    // receive side
    head: [u8; MAX_HEADER_LEN],
    head_len: usize,
    /// The frame being received (meaningful while `in_frame`). Kept in
    /// place rather than as an `Option` rebuilt per frame: copying a freshly
    /// built record stalls store forwarding, per frame.
    frame: CurrentFrame,
    in_frame: bool,
    /// The message being received.
    rx: MsgRx,
    /// A control frame's payload when it arrives in pieces (rare: empty
    /// and without memory otherwise, which keeps an idle engine small).
    ctrl: Vec<u8>,
    // send side
    out: Vec<u8>,
    out_pos: usize,
    /// The last pong queued and not yet started on the wire: where it is
    /// in `out` and its length. A newer ping replaces it while output is
    /// backlogged ([`PONG_BACKLOG`]).
    unsent_pong: Option<(usize, usize)>,
    send_kind: Option<DataKind>,
    send_utf8: Utf8Validator,
    // close state
    sent_close: bool,
    received_close: bool,
    /// The peer's close frame was refused for its status code (its payload
    /// is then in `ctrl`): see [`Engine::refused_close`].
    refused_close: bool,
    failed: Option<ProtocolError>,
    // permessage-deflate (RFC 7692)
    codec: Option<Box<dyn PerMessage + Send>>,
    /// The message being sent is compressed.
    send_compressed: bool,
}

/// The message being received: the part of the engine's state that
/// [`compressed_payload`] works on (not generic over the random source,
/// so that it can sit behind the deflate codec's table).
pub(crate) struct MsgRx {
    /// Kind of the message being received, when one is in progress.
    msg_kind: Option<DataKind>,
    /// Payload bytes of the message so far (a `usize`, as `remaining`).
    msg_len: usize,
    msg_buf: Vec<u8>,
    recv_utf8: Utf8Validator,
    /// The message buffer was handed out by the last event; clear it first.
    clear_msg: bool,
    /// The message being received is compressed (RSV1 on its first frame).
    recv_compressed: bool,
    /// Inflated bytes of the message being received.
    inflated: u64,
}

/// What a close frame's payload says, once the engine checked it: the
/// status (1005 when empty) and the reason (empty when not UTF-8).
pub(crate) fn close_parts(payload: &[u8]) -> (u16, &str) {
    match payload {
        [a, b, reason @ ..] => (
            u16::from_be_bytes([*a, *b]),
            utf8::to_str(reason).unwrap_or(""),
        ),
        _ => (super::close::STATUS_NO_STATUS, ""),
    }
}

/// A piece of a data frame's payload, as [`Engine::payload`] hands it on.
pub(crate) struct Piece<'a> {
    kind: DataKind,
    fin: bool,
    opcode: OpCode,
    frame_end: bool,
    data: &'a [u8],
}

/// [`Engine::payload`] for a compressed message: inflates the piece into
/// the message buffer, never beyond the message limit; `sent_close`: the
/// engine is closing (data checked, not delivered). Not a method of the
/// (generic) engine: the deflate codec's table calls it
/// ([`PerMessage::receive`]), so a firmware that never builds a codec does
/// not link it.
pub(crate) fn compressed_payload(
    codec: &mut dyn PerMessage,
    rx: &mut MsgRx,
    config: &Config,
    sent_close: bool,
    piece: Piece<'_>,
) -> Result<Option<Ready>, ProtocolError> {
    let Piece {
        kind,
        fin,
        opcode,
        frame_end,
        data,
    } = piece;
    let max = config.max_message_size;
    let message_end = frame_end && fin;
    let before = rx.msg_buf.len();
    let budget = max.saturating_sub(rx.inflated);
    let inflated = codec.inflate(data, message_end, &mut rx.msg_buf, budget);
    // What was inflated before an error is checked first, so that the
    // error does not depend on how the frames were cut.
    let produced = &rx.msg_buf[before..];
    rx.inflated += produced.len() as u64;
    if kind == DataKind::Text && !rx.recv_utf8.feed(produced) {
        return Err(ProtocolError::InvalidUtf8);
    }
    inflated.map_err(|e| match e {
        InflateError::TooBig => ProtocolError::MessageTooLarge { max: err_len(max) },
        InflateError::OutOfMemory => ProtocolError::OutOfMemory { max: err_len(max) },
        InflateError::Malformed => ProtocolError::BadCompressedData,
    })?;
    if message_end {
        rx.msg_kind = None;
        rx.msg_len = 0;
        rx.recv_compressed = false;
        if kind == DataKind::Text && !rx.recv_utf8.finish() {
            return Err(ProtocolError::InvalidUtf8);
        }
    }
    if sent_close {
        rx.msg_buf.clear();
        return Ok(None);
    }
    match config.delivery {
        Delivery::Partial => {
            if rx.msg_buf.is_empty() && !frame_end {
                return Ok(None);
            }
            rx.clear_msg = true;
            Ok(Some(Ready::Chunk {
                kind,
                opcode,
                fin,
                frame_end,
                src: Src::Message,
            }))
        }
        Delivery::Messages if message_end => {
            rx.clear_msg = true;
            Ok(Some(Ready::Message(kind, Src::Message)))
        }
        Delivery::Messages => Ok(None),
    }
}

/// Appends to `out` a frame of `data` compressed (permessage-deflate),
/// RSV1 on the first frame of the message. Called through the deflate
/// codec's table ([`PerMessage::queue`]), as [`compressed_payload`].
pub(crate) fn queue_compressed(
    codec: &mut dyn PerMessage,
    out: &mut Vec<u8>,
    fin: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    data: &[u8],
) {
    let mut z = Vec::new();
    codec.compress(data, fin, &mut z);
    let at = out.len();
    write_frame(out, fin, opcode as u8, mask, &z);
    if opcode != OpCode::Continuation {
        out[at] |= RSV1 << 4;
    }
}

/// RSV1: "this message is compressed" under permessage-deflate.
const RSV1: u8 = 0b100;

impl<R: RandomSource> Engine<R> {
    /// An engine for an endpoint of `role`. Clients take their masking keys
    /// from `rng`; servers never call it.
    pub fn new(role: Role, config: Config, rng: R) -> Self {
        Engine {
            role,
            config,
            rng,
            head: [0; MAX_HEADER_LEN],
            head_len: 0,
            frame: CurrentFrame {
                fin: false,
                opcode: OpCode::Continuation,
                mask: None,
                remaining: 0,
                offset: 0,
            },
            in_frame: false,
            rx: MsgRx {
                msg_kind: None,
                msg_len: 0,
                msg_buf: Vec::new(),
                recv_utf8: Utf8Validator::new(),
                clear_msg: false,
                recv_compressed: false,
                inflated: 0,
            },
            ctrl: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            unsent_pong: None,
            send_kind: None,
            send_utf8: Utf8Validator::new(),
            sent_close: false,
            received_close: false,
            refused_close: false,
            failed: None,
            codec: config.deflate.map(|p| deflate::new_codec(role, p)),
            send_compressed: false,
        }
    }

    /// The role given at creation.
    pub fn role(&self) -> Role {
        self.role
    }
    /// Current limits.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// Changes the limits (takes effect from the next frame).
    pub fn set_config(&mut self, config: Config) {
        if config.deflate != self.config.deflate {
            self.codec = config.deflate.map(|p| deflate::new_codec(self.role, p));
        }
        self.config = config;
    }
    /// Replaces the limits of an engine without a codec (one that has not
    /// received or sent a compressed message: the connection's, when it
    /// opens), making the codec `config` asks for. [`Engine::set_config`]
    /// without the comparison of the old and new deflate parameters.
    pub(crate) fn start_with(&mut self, config: Config) {
        debug_assert!(self.codec.is_none());
        self.codec = config.deflate.map(|p| deflate::new_codec(self.role, p));
        self.config = config;
    }
    /// Sets the frame limit (the message limit grows to it if smaller);
    /// the rest of the configuration stays.
    pub(crate) fn set_frame_limit(&mut self, max: u64) {
        self.config.max_frame_size = max;
        self.config.max_message_size = self.config.max_message_size.max(max);
    }
    /// Bytes of compression state (permessage-deflate) held now: zero on
    /// an idle connection without context takeover.
    pub fn compression_state_bytes(&self) -> usize {
        self.codec.as_ref().map_or(0, |c| c.state_bytes())
    }
    /// True once we have sent a close frame.
    pub fn close_sent(&self) -> bool {
        self.sent_close
    }
    /// True once the peer's close frame arrived.
    pub fn close_received(&self) -> bool {
        self.received_close
    }
    /// The close handshake is finished (both sides sent close), or the
    /// connection failed: the transport may be closed once output is written.
    pub fn is_closed(&self) -> bool {
        (self.sent_close && self.received_close) || self.failed.is_some()
    }
    /// Why the connection failed, if it did.
    pub fn failure(&self) -> Option<&ProtocolError> {
        self.failed.as_ref()
    }
    /// The status code and reason of the peer's close frame when it was
    /// refused for its code (reserved or out of range, answered with 1002):
    /// what the peer said, for the application to see. The reason is empty
    /// when it is not UTF-8.
    pub fn refused_close(&self) -> Option<(u16, &str)> {
        self.refused_close_payload().map(close_parts)
    }
    /// The payload of the peer's close frame refused for its status code
    /// (see [`Engine::refused_close`]), as it came.
    pub(crate) fn refused_close_payload(&self) -> Option<&[u8]> {
        self.refused_close.then_some(&self.ctrl[..])
    }
    /// Bytes of a message being reassembled (per-connection partial state).
    pub fn buffered_len(&self) -> usize {
        if self.rx.clear_msg {
            0
        } else {
            self.rx.msg_buf.len()
        }
    }

    // ------------------------------------------------------------ receive

    /// Processes bytes from the start of `input`, unmasking in place.
    ///
    /// Returns how many bytes were consumed and at most one event. Call
    /// again with the rest until it consumes nothing and reports nothing.
    /// Every byte is eventually consumed: partial headers and payloads are
    /// kept inside the engine. On a protocol violation the engine queues a
    /// close frame with the right status code and returns the error; the
    /// connection should then be closed once the output is written.
    pub fn read<'a>(
        &'a mut self,
        input: &'a mut [u8],
    ) -> Result<(usize, Option<Event<'a>>), ProtocolError> {
        match self.read_ready(input)? {
            (n, None) => Ok((n, None)),
            (n, Some(ready)) => Ok((n, Some(self.event(ready, input)))),
        }
    }

    /// [`Engine::read`] reporting where the event's bytes are (in `input`,
    /// by offsets, or in the engine: [`Engine::slice`]) instead of an
    /// [`Event`]: the connection's receive path keeps a message that is
    /// in its input there by these offsets, with no pointer arithmetic.
    pub(crate) fn read_ready(
        &mut self,
        input: &mut [u8],
    ) -> Result<(usize, Option<Ready>), ProtocolError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.rx.clear_msg {
            self.rx.msg_buf.clear();
            self.rx.clear_msg = false;
        }
        self.step(input).inspect_err(|e| self.fail(e.clone()))
    }

    /// The bytes of a [`Ready`] event's `src`, `input` being what
    /// [`Engine::read_ready`] was given.
    pub(crate) fn slice<'a>(&'a self, src: Src, input: &'a [u8]) -> &'a [u8] {
        match src {
            Src::Input(a, b) => &input[a..b],
            Src::Message => &self.rx.msg_buf,
            Src::Control => &self.ctrl,
        }
    }

    fn event<'a>(&'a self, ready: Ready, input: &'a [u8]) -> Event<'a> {
        match ready {
            Ready::Message(kind, src) => Event::Message(kind, self.slice(src, input)),
            Ready::Chunk {
                kind,
                opcode,
                fin,
                frame_end,
                src,
            } => Event::Chunk(Chunk {
                kind,
                opcode,
                data: self.slice(src, input),
                fin,
                frame_end,
                message_end: fin && frame_end,
            }),
            Ready::Ping(src) => Event::Ping(self.slice(src, input)),
            Ready::Pong(src) => Event::Pong(self.slice(src, input)),
            // Validated when the frame completed.
            Ready::Close(src) => Event::Close(CloseFrame::parse(self.slice(src, input)).unwrap_or(
                CloseFrame {
                    code: None,
                    reason: "",
                },
            )),
        }
    }

    fn step(&mut self, input: &mut [u8]) -> Result<(usize, Option<Ready>), ProtocolError> {
        let mut pos = 0;
        loop {
            if self.received_close {
                // Nothing may follow the peer's close frame.
                return Ok((input.len(), None));
            }
            if !self.in_frame {
                // The shortcut is for speed alone (the general path below
                // does the same, in more steps): builds without std
                // (firmware, built for size) go without its code.
                if cfg!(feature = "std") {
                    if let Some(done) = self.whole_frame_message(input, pos)? {
                        return Ok(done);
                    }
                }
                match self.take_header(&input[pos..])? {
                    (n, None) => return Ok((pos + n, None)),
                    (n, Some(h)) => {
                        pos += n;
                        self.start_frame(h)?;
                        continue;
                    }
                }
            };
            // Fields read one by one: copying the record as a whole right
            // after `start_frame` wrote it stalls store forwarding.
            let CurrentFrame {
                fin,
                opcode,
                mask,
                remaining,
                offset,
            } = self.frame;
            let avail = (input.len() - pos).min(remaining);
            // An empty frame completes here, with no payload (a frame
            // whose payload ran out was completed by `payload`).
            if avail == 0 && remaining != 0 {
                return Ok((pos, None));
            }
            let start = pos;
            pos += avail;
            let chunk = &mut input[start..pos];
            if let Some(k) = mask {
                apply_mask(chunk, k, offset);
            }
            let remaining = remaining - avail;
            self.frame.remaining = remaining;
            self.frame.offset += avail;
            if let Some(ready) =
                self.payload(fin, opcode, offset, remaining, start, &input[start..pos])?
            {
                return Ok((pos, Some(ready)));
            }
        }
    }

    /// The common case in one pass: at `pos`, a whole message in one frame
    /// (FIN, text or binary, valid for this role, within the limits), all
    /// of it in `input`, with no message in progress and nothing partial
    /// held. Unmasks and validates it and returns what [`Engine::step`]
    /// returns. `None` for anything else, which takes the general path
    /// (that one also reports every error, except invalid UTF-8 found here
    /// after unmasking).
    #[inline]
    fn whole_frame_message(
        &mut self,
        input: &mut [u8],
        pos: usize,
    ) -> Result<Option<(usize, Option<Ready>)>, ProtocolError> {
        if self.head_len != 0
            || self.rx.msg_kind.is_some()
            || self.sent_close
            || self.config.delivery != Delivery::Messages
        {
            return Ok(None);
        }
        let rest = &mut input[pos..];
        let Ok(Some((h, head))) = FrameHeader::decode(rest) else {
            return Ok(None);
        };
        let kind = match h.validate(self.role, 0) {
            Ok(OpCode::Text) if h.fin => DataKind::Text,
            Ok(OpCode::Binary) if h.fin => DataKind::Binary,
            _ => return Ok(None),
        };
        let limit = self.config.max_frame_size.min(self.config.max_message_size);
        if h.payload_len > limit || h.payload_len > (rest.len() - head) as u64 {
            return Ok(None);
        }
        let end = head + h.payload_len as usize;
        if let Some(k) = h.mask {
            apply_mask(&mut rest[head..end], k, 0);
        }
        if kind == DataKind::Text && !utf8::is_valid(&rest[head..end]) {
            return Err(ProtocolError::InvalidUtf8);
        }
        Ok(Some((
            pos + end,
            Some(Ready::Message(kind, Src::Input(pos + head, pos + end))),
        )))
    }

    /// Collects a frame header, from `input` directly when it is all there.
    fn take_header(&mut self, input: &[u8]) -> Result<(usize, Option<FrameHeader>), ProtocolError> {
        // Decoded in place when it is all there (speed only: without std
        // every header goes through the buffer, one decode call site).
        if cfg!(feature = "std") && self.head_len == 0 {
            if let Some((h, n)) = FrameHeader::decode(input)? {
                return Ok((n, Some(h)));
            }
        }
        let old = self.head_len;
        let take = input.len().min(MAX_HEADER_LEN - old);
        self.head[old..old + take].copy_from_slice(&input[..take]);
        self.head_len += take;
        match FrameHeader::decode(&self.head[..self.head_len])? {
            None => Ok((take, None)),
            Some((h, n)) => {
                self.head_len = 0;
                Ok((n - old, Some(h)))
            }
        }
    }

    /// Applies the rules that depend on the connection state to a new
    /// frame (an empty one completes in [`Engine::step`], as the end of
    /// any frame does).
    fn start_frame(&mut self, h: FrameHeader) -> Result<(), ProtocolError> {
        let allowed = if self.codec.is_some() { RSV1 } else { 0 };
        let mut op = h.validate(self.role, allowed)?;
        if h.rsv & RSV1 != 0 && !matches!(op, OpCode::Text | OpCode::Binary) {
            // Only the first frame of a data message says "compressed".
            return Err(ProtocolError::ReservedBits);
        }
        if !op.is_control() {
            match (op, self.rx.msg_kind) {
                (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
                (OpCode::Text | OpCode::Binary, Some(_)) if self.config.legacy_fragments => {
                    // Upstream nopoll sends every fragment with the
                    // message's opcode: continues the message, whose kind
                    // the first frame set.
                    op = OpCode::Continuation;
                }
                (OpCode::Text | OpCode::Binary, Some(_)) => {
                    return Err(ProtocolError::InterleavedMessage)
                }
                _ => {}
            }
            // Lengths in `usize` from here on: 32-bit arithmetic on a
            // 32-bit target (a frame or message that does not fit a `usize`
            // cannot be held there anyway, and is refused as too large).
            let max = self.config.max_frame_size;
            let len = usize::try_from(h.payload_len)
                .ok()
                .filter(|_| h.payload_len <= max)
                .ok_or(ProtocolError::FrameTooLarge {
                    len: err_len(h.payload_len),
                    max: err_len(max),
                })?;
            let total = self
                .rx
                .msg_len
                .checked_add(len)
                .filter(|&t| t as u64 <= self.config.max_message_size)
                .ok_or(ProtocolError::MessageTooLarge {
                    max: err_len(self.config.max_message_size),
                })?;
            self.rx.msg_len = total;
            if op != OpCode::Continuation {
                self.rx.msg_kind = Some(if op == OpCode::Text {
                    DataKind::Text
                } else {
                    DataKind::Binary
                });
                self.rx.recv_utf8.reset();
                self.rx.recv_compressed = h.rsv & RSV1 != 0;
                self.rx.inflated = 0;
                if let Some(c) = self.codec.as_mut() {
                    c.start_message();
                }
            }
        } else {
            self.ctrl.clear();
        }
        let f = &mut self.frame;
        f.fin = h.fin;
        f.opcode = op;
        f.mask = h.mask;
        // (A control frame's is at most 125: `validate` checked it.)
        f.remaining = h.payload_len as usize;
        f.offset = 0;
        self.in_frame = true;
        Ok(())
    }

    /// Handles `data` (unmasked, at `start` in the input, at `offset` in
    /// its frame) of the current frame; `remaining` is what is left of the
    /// frame after it.
    fn payload(
        &mut self,
        fin: bool,
        opcode: OpCode,
        offset: usize,
        remaining: usize,
        start: usize,
        data: &[u8],
    ) -> Result<Option<Ready>, ProtocolError> {
        let frame_end = remaining == 0;
        if frame_end {
            self.in_frame = false;
        }
        if opcode.is_control() {
            // Left in the input when it is all there (speed only: without
            // std every control payload is gathered in `ctrl`).
            let whole_in_input = cfg!(feature = "std") && frame_end && self.ctrl.is_empty();
            let src = if whole_in_input {
                Src::Input(start, start + data.len())
            } else {
                self.ctrl.extend_from_slice(data);
                Src::Control
            };
            if !frame_end {
                return Ok(None);
            }
            // Copied out (at most 125 bytes): `control` changes the engine.
            let bytes = if whole_in_input { data } else { &self.ctrl };
            let len = bytes.len();
            let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
            payload[..len].copy_from_slice(bytes);
            return self.control(opcode, &payload[..len], src).map(Some);
        }
        let Some(kind) = self.rx.msg_kind else {
            return Err(ProtocolError::UnexpectedContinuation);
        };
        if self.rx.recv_compressed {
            let Some(codec) = self.codec.as_mut() else {
                return Err(ProtocolError::ReservedBits);
            };
            let piece = Piece {
                kind,
                fin,
                opcode,
                frame_end,
                data,
            };
            // Through the codec's table: see `compressed_payload`.
            return codec.receive(&mut self.rx, &self.config, self.sent_close, piece);
        }
        if kind == DataKind::Text && !self.rx.recv_utf8.feed(data) {
            return Err(ProtocolError::InvalidUtf8);
        }
        let message_end = frame_end && fin;
        if message_end {
            self.rx.msg_kind = None;
            self.rx.msg_len = 0;
            if kind == DataKind::Text && !self.rx.recv_utf8.finish() {
                return Err(ProtocolError::InvalidUtf8);
            }
        }
        if self.sent_close {
            // We are closing: data is checked but no longer delivered.
            return Ok(None);
        }
        match self.config.delivery {
            Delivery::Partial => Ok(Some(Ready::Chunk {
                kind,
                opcode,
                fin,
                frame_end,
                src: Src::Input(start, start + data.len()),
            })),
            Delivery::Messages => {
                if message_end && self.rx.msg_buf.is_empty() && offset == 0 {
                    // The whole message is this one piece: no copy.
                    return Ok(Some(Ready::Message(
                        kind,
                        Src::Input(start, start + data.len()),
                    )));
                }
                // Fallible: a heap too small for a message within the
                // limits (firmware) closes this connection with 1009
                // instead of aborting the program.
                let buf = &mut self.rx.msg_buf;
                let room = if buf.is_empty() && fin {
                    // The message is this frame: room for all of it at once,
                    // no regrowth (and so for `data`).
                    // (Both are parts of one frame, whose length fits.)
                    // Exactly: an empty buffer without room is let go
                    // first, so that `try_reserve` allocates what is asked
                    // (above 8 bytes; `try_reserve_exact` is not linked).
                    let whole = data.len() + remaining;
                    if buf.capacity() < whole {
                        *buf = Vec::new();
                    }
                    buf.try_reserve(whole)
                } else {
                    buf.try_reserve(data.len())
                };
                room.map_err(|_| ProtocolError::OutOfMemory {
                    max: err_len(self.config.max_message_size),
                })?;
                self.rx.msg_buf.extend_from_slice(data);
                if message_end {
                    self.rx.clear_msg = true;
                    return Ok(Some(Ready::Message(kind, Src::Message)));
                }
                Ok(None)
            }
        }
    }

    fn control(&mut self, op: OpCode, payload: &[u8], src: Src) -> Result<Ready, ProtocolError> {
        match op {
            OpCode::Ping => {
                if !self.sent_close {
                    if let Some((at, len)) = self.unsent_pong.take() {
                        if self.output_len() >= PONG_BACKLOG {
                            // Output is piling up and not a byte of the
                            // last pong is written: the new pong replaces
                            // it (moved behind later frames, which a
                            // control frame may be).
                            self.out.copy_within(at + len.., at);
                            self.out.truncate(self.out.len() - len);
                        }
                    }
                    self.compact_output();
                    let at = self.out.len();
                    self.queue_frame(true, OpCode::Pong as u8, payload);
                    self.unsent_pong = Some((at, self.out.len() - at));
                }
                Ok(Ready::Ping(src))
            }
            OpCode::Pong => Ok(Ready::Pong(src)),
            _ => {
                let close = match CloseFrame::parse(payload) {
                    Ok(c) => c,
                    Err(e) => {
                        if matches!(e, ProtocolError::InvalidCloseCode(_)) {
                            // Kept for `refused_close` (already there when
                            // it was gathered in `ctrl`: always without std).
                            if !matches!(src, Src::Control) {
                                self.ctrl.clear();
                                self.ctrl.extend_from_slice(payload);
                            }
                            self.refused_close = true;
                        }
                        return Err(e);
                    }
                };
                self.received_close = true;
                if !self.sent_close {
                    // The peer's code echoed, or an empty close.
                    let code = close.code.unwrap_or(0).to_be_bytes();
                    let n = if close.code.is_some() { 2 } else { 0 };
                    self.queue_close(&code[..n]);
                }
                Ok(Ready::Close(src))
            }
        }
    }

    fn fail(&mut self, e: ProtocolError) {
        if !self.sent_close {
            self.queue_close(&e.close_code().to_be_bytes());
        }
        self.failed = Some(e);
    }

    /// Queues a close frame with `payload` and marks the close sent: one
    /// body for the answer to the peer's close, a failure's and ours.
    #[inline(never)]
    fn queue_close(&mut self, payload: &[u8]) {
        self.sent_close = true;
        self.queue_frame(true, OpCode::Close as u8, payload);
    }

    // ------------------------------------------------------------ send

    fn next_mask(&mut self) -> Option<[u8; 4]> {
        match self.role {
            Role::Client => {
                let mut k = [0u8; 4];
                self.rng.fill(&mut k);
                Some(k)
            }
            Role::Server => None,
        }
    }

    fn queue_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let mask = self.next_mask();
        self.compact_output();
        write_frame(&mut self.out, fin, opcode, mask, payload);
    }

    fn check_open(&self) -> Result<(), SendError> {
        if self.sent_close || self.failed.is_some() {
            Err(SendError::Closed)
        } else {
            Ok(())
        }
    }

    /// Queues a data frame. While a fragmented message is in progress (an
    /// earlier call had `fin == false`), the frame goes out as a
    /// continuation whatever `kind` says, as nopoll does. Text is checked
    /// to be UTF-8 across fragments.
    /// Fails with [`SendError::OutOfMemory`], changing nothing, when the
    /// heap cannot hold the frame (the caller sized it: no abort).
    pub fn send(&mut self, kind: DataKind, data: &[u8], fin: bool) -> Result<(), SendError> {
        self.compact_output();
        self.out
            .try_reserve(MAX_HEADER_LEN + data.len())
            .map_err(|_| SendError::OutOfMemory)?;
        let new_message = self.send_kind.is_none();
        let opcode = self.start_data_frame(kind, data, fin)?;
        if new_message {
            self.send_compressed = self.codec.as_ref().is_some_and(|c| c.compresses());
        }
        if !self.send_compressed {
            // Uncompressed frames, control frames too, are queued by
            // `queue_frame` (compressed ones by the codec's table).
            self.queue_frame(fin, opcode as u8, data);
            return Ok(());
        }
        if fin {
            self.send_compressed = false;
        }
        let mask = self.next_mask();
        if let Some(codec) = self.codec.as_mut() {
            // Through the codec's table: see `queue_compressed`.
            codec.queue(&mut self.out, fin, opcode, mask, data);
        }
        Ok(())
    }

    /// Like [`Engine::send`], without copying `data` into the output: the
    /// caller writes the returned header and then `data` itself, and hands
    /// back with [`Engine::queue_output`] whatever of the two the transport
    /// did not take. Only possible when no output is waiting (the frame
    /// must not overtake it) and frames are not masked (server role);
    /// otherwise returns `Ok(None)` and changes nothing.
    pub fn send_unbuffered(
        &mut self,
        kind: DataKind,
        data: &[u8],
        fin: bool,
    ) -> Result<Option<FrameHead>, SendError> {
        if self.want_write() || self.role != Role::Server || self.codec.is_some() {
            return Ok(None);
        }
        let opcode = self.start_data_frame(kind, data, fin)?;
        let header = FrameHeader {
            fin,
            rsv: 0,
            opcode: opcode as u8,
            mask: None,
            payload_len: data.len() as u64,
        };
        let mut head = FrameHead {
            bytes: [0; MAX_HEADER_LEN],
            len: 0,
        };
        head.len = header.encode(&mut head.bytes);
        Ok(Some(head))
    }

    /// Appends bytes to the output as they are: the part of a frame from
    /// [`Engine::send_unbuffered`] that the transport did not take.
    pub fn queue_output(&mut self, bytes: &[u8]) {
        self.compact_output();
        self.out.extend_from_slice(bytes);
    }

    /// Checks a data frame against the sending state and records it;
    /// returns its opcode.
    fn start_data_frame(
        &mut self,
        kind: DataKind,
        data: &[u8],
        fin: bool,
    ) -> Result<OpCode, SendError> {
        self.check_open()?;
        let (opcode, msg_kind) = match self.send_kind {
            Some(k) => (OpCode::Continuation, k),
            None => (kind.opcode(), kind),
        };
        if msg_kind == DataKind::Text {
            let mut v = self.send_utf8;
            if self.send_kind.is_none() {
                v.reset();
            }
            if !v.feed(data) || (fin && !v.finish()) {
                return Err(SendError::InvalidUtf8);
            }
            self.send_utf8 = v;
        }
        self.send_kind = if fin { None } else { Some(msg_kind) };
        Ok(opcode)
    }

    /// Queues a whole text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        if self.send_kind.is_none() && self.codec.is_none() {
            // A whole message that is a `str` is UTF-8 already.
            self.check_open()?;
            self.queue_frame(true, OpCode::Text as u8, text.as_bytes());
            return Ok(());
        }
        self.send(DataKind::Text, text.as_bytes(), true)
    }

    /// Queues a whole binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send(DataKind::Binary, data, true)
    }

    /// Queues a ping (payload up to 125 bytes).
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.send_control(OpCode::Ping, payload)
    }

    /// Queues a pong (payload up to 125 bytes).
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.send_control(OpCode::Pong, payload)
    }

    fn send_control(&mut self, op: OpCode, payload: &[u8]) -> Result<(), SendError> {
        self.check_open()?;
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlTooLong);
        }
        self.queue_frame(true, op as u8, payload);
        Ok(())
    }

    /// Starts (or answers) the close handshake. `code` `None` sends an empty
    /// close frame (then `reason` must be empty); otherwise it must be a
    /// code that may be sent ([`is_sendable_close_code`]: the
    /// application's own choice, 1000-4999 but 1005, 1006 and 1015) and
    /// the reason at most 123 bytes of UTF-8.
    pub fn close(&mut self, code: Option<u16>, reason: &[u8]) -> Result<(), SendError> {
        self.check_open()?;
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        let len = match code {
            None if reason.is_empty() => 0,
            None => return Err(SendError::InvalidCloseReason),
            Some(c) => {
                if !is_sendable_close_code(c) {
                    return Err(SendError::InvalidCloseCode(c));
                }
                if reason.len() > MAX_CONTROL_PAYLOAD - 2 || !utf8::is_valid(reason) {
                    return Err(SendError::InvalidCloseReason);
                }
                payload[..2].copy_from_slice(&c.to_be_bytes());
                payload[2..2 + reason.len()].copy_from_slice(reason);
                2 + reason.len()
            }
        };
        self.queue_close(&payload[..len]);
        Ok(())
    }

    /// Queues one frame exactly as described, without any protocol check
    /// beyond closing state (nopoll's `nopoll_conn_send_frame`). `masked`
    /// chooses a fresh key from the random source.
    pub fn send_raw_frame(
        &mut self,
        fin: bool,
        opcode: u8,
        masked: bool,
        payload: &[u8],
    ) -> Result<(), SendError> {
        self.check_open()?;
        let mask = if masked {
            let mut k = [0u8; 4];
            self.rng.fill(&mut k);
            Some(k)
        } else {
            None
        };
        self.compact_output();
        write_frame(&mut self.out, fin, opcode & 0x0f, mask, payload);
        if opcode == OpCode::Close as u8 {
            self.sent_close = true;
        }
        Ok(())
    }

    // ------------------------------------------------------------ output

    /// Bytes waiting to be written to the transport.
    #[inline]
    pub fn output(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }

    /// Bytes queued and not yet written (`output().len()`).
    #[inline]
    pub fn output_len(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// True when there is output to write.
    pub fn want_write(&self) -> bool {
        self.out_pos < self.out.len()
    }

    /// Marks `n` bytes of [`Engine::output`] as written.
    pub fn consume_output(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            self.unsent_pong = None;
        } else if self.unsent_pong.is_some_and(|(at, _)| self.out_pos > at) {
            // Its first bytes are on the wire: it stays whole.
            self.unsent_pong = None;
        }
    }

    #[inline]
    fn compact_output(&mut self) {
        if self.out_pos > 0 && self.out_pos >= self.out.len() / 2 {
            self.compact_now();
        }
    }

    /// Drops the written part of the output (rare: output is usually
    /// written whole, which empties it).
    #[cold]
    #[inline(never)]
    fn compact_now(&mut self) {
        let n = self.out_pos;
        self.out.copy_within(n.., 0);
        self.out.truncate(self.out.len() - n);
        if let Some((at, _)) = self.unsent_pong.as_mut() {
            *at -= self.out_pos;
        }
        self.out_pos = 0;
    }

    /// Bytes allocated for the reassembly and output buffers.
    pub fn buffer_capacity(&self) -> usize {
        self.rx.msg_buf.capacity() + self.out.capacity()
    }

    /// Bytes allocated for receiving: the message being reassembled and a
    /// control frame arriving in pieces (what a memory budget counts as
    /// reassembly).
    #[inline]
    /// (The inflater's state, permessage-deflate, counts here.)
    pub fn reassembly_capacity(&self) -> usize {
        self.rx.msg_buf.capacity()
            + self.ctrl.capacity()
            + self.codec.as_ref().map_or(0, |c| c.inflater_bytes())
    }

    /// Bytes allocated for output not yet written.
    #[inline]
    /// (The compressor's state, permessage-deflate, counts here.)
    pub fn output_capacity(&self) -> usize {
        self.out.capacity() + self.codec.as_ref().map_or(0, |c| c.deflater_bytes())
    }

    /// Releases the memory of idle buffers (after a large message).
    pub fn shrink(&mut self) {
        if self.out_pos == self.out.len() {
            self.out = Vec::new();
            self.out_pos = 0;
            self.unsent_pong = None;
        }
        if self.rx.clear_msg || self.rx.msg_buf.is_empty() {
            self.rx.msg_buf = Vec::new();
            self.rx.clear_msg = false;
        }
    }
}
