//! permessage-deflate (RFC 7692): negotiation in both roles and the
//! per-connection compressor/decompressor. Pure Rust (`miniz_oxide`), `alloc`
//! only, no unsafe.
//!
//! # Window sizes
//!
//! Our inflater always keeps a 32 KiB window, so it accepts whatever window
//! (8..=15 bits) the peer compresses with: we never ask the peer to use a
//! smaller one.
//!
//! `miniz_oxide`'s compressor always matches over a 32 KiB window (its
//! "small window" settings for 12..=14 bits still emit distances up to
//! 32 KiB). When the peer limits the window we compress with
//! (`server_max_window_bits` offered to our server, `client_max_window_bits`
//! answered to our client) to less than 15 bits, we honour it with the
//! run-length strategy: matches of distance 1 only, which every window
//! allows. Such messages still shrink (Huffman codes plus runs), less than
//! with full LZ77 matching.
//!
//! # Memory per connection
//!
//! - Inflater (receiving compressed messages): about 43 KiB while a message
//!   is being inflated. Without context takeover for the peer's direction
//!   it is dropped at the end of each message; with takeover it stays for
//!   the life of the connection (the peer's 32 KiB window must be kept).
//! - Compressor (sending): about 310 KiB (`miniz_oxide` keeps a 32 KiB
//!   dictionary, its hash chains and a 64 KiB code buffer), dropped after
//!   each message without context takeover for our direction, kept
//!   otherwise. `level: 0` never compresses what we send (allowed by
//!   RFC 7692): no compressor at all, for small heaps.
//!
//! So with no context takeover in both directions an idle connection holds
//! no compressor state.

use super::engine::{self, Config, MsgRx, Piece, Ready};
use super::frame::OpCode;
use super::handshake::{header_values, is_tchar, HandshakeError, Header, UpgradeRequest};
use super::{ProtocolError, Role};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use miniz_oxide::deflate::core::{CompressionStrategy, CompressorOxide};
use miniz_oxide::inflate::stream::InflateState;
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

/// The extension token.
pub const EXTENSION: &str = "permessage-deflate";

/// The bytes a sync flush ends with, removed from the wire (RFC 7692 7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The permessage-deflate implementation (negotiation and codec), reached
/// only through this table of function pointers. The table is named only by
/// the constructors of [`DeflateConfig`] and [`DeflateParams`], which run when
/// a program turns the extension on: a firmware that never does links none
/// of it (`--gc-sections` drops `miniz_oxide` and this module's code).
#[derive(Clone, Copy)]
pub struct Linked(&'static Imp);

/// A head's header lines, whose `Sec-WebSocket-Extensions` values the
/// table's functions read (a list, not a `dyn Iterator`: its vtable was
/// linked by every server, with or without the extension).
type Values<'a> = &'a [Header];

const EXTENSIONS: &str = "Sec-WebSocket-Extensions";

/// [`answer`]'s signature: the 101 answer for a request, with the
/// agreement when an offer is accepted.
type Answer = fn(
    &UpgradeRequest,
    &mut Vec<u8>,
    Option<&str>,
    &DeflateConfig,
) -> Result<Option<DeflateParams>, HandshakeError>;

struct Imp {
    answer: Answer,
    offer: fn(&DeflateConfig) -> String,
    check_answer: fn(Values<'_>, &DeflateConfig) -> Result<Option<DeflateParams>, ()>,
    codec: fn(Role, DeflateParams) -> Box<dyn PerMessage + Send>,
}

static IMP: Imp = Imp {
    answer: |up, out, protocol, cfg| {
        let agreed = accept_offer(header_values(&up.request.headers, EXTENSIONS), cfg);
        up.answer(out, protocol, agreed.as_ref().map(|(_, a)| a.as_str()))?;
        Ok(agreed.map(|(p, _)| p))
    },
    offer,
    check_answer: |h, cfg| check_answer(header_values(h, EXTENSIONS), Some(cfg)),
    codec: |role, params| Box::new(Codec::new(role, params)),
};

impl Linked {
    const IMP: Linked = Linked(&IMP);
}

/// There is one implementation: every table is the same.
impl PartialEq for Linked {
    fn eq(&self, _: &Linked) -> bool {
        true
    }
}
impl Eq for Linked {}
impl core::fmt::Debug for Linked {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Linked")
    }
}

/// What this endpoint is willing to negotiate. Build it with
/// `..DeflateConfig::default()` (which links the implementation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Ask for (client) or insist on (server) no context takeover in both
    /// directions: neither end keeps compression state between messages,
    /// so an idle connection holds no compressor memory. A server answers
    /// every accepted offer with `server_no_context_takeover` and
    /// `client_no_context_takeover`.
    pub no_context_takeover: bool,
    /// Compression level of what we send, 1 (fastest) ..= 9 (smallest);
    /// 0 never compresses what we send (inflate only, no compressor
    /// memory). Default 1: for 128 KiB messages `miniz_oxide` compresses
    /// text at about 120 MB/s to 52 % (level 6: 14 MB/s to 39 %), JSON at
    /// over 1 GB/s to 5 % (level 6: 180 MB/s to 4 %).
    pub level: u8,
    /// The implementation (see [`Linked`]).
    pub imp: Linked,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            no_context_takeover: false,
            level: 1,
            imp: Linked::IMP,
        }
    }
}

/// The parameters agreed on a connection (plus our own level). Build it
/// with `..DeflateParams::default()` (which links the implementation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message.
    pub client_no_context_takeover: bool,
    /// Largest window the server compresses with (8..=15).
    pub server_max_window_bits: u8,
    /// Largest window the client compresses with (8..=15).
    pub client_max_window_bits: u8,
    /// Our compression level (see [`DeflateConfig::level`]).
    pub level: u8,
    /// The implementation (see [`Linked`]).
    pub imp: Linked,
}

/// No context takeover asked, 15-bit windows, level 1.
impl Default for DeflateParams {
    fn default() -> Self {
        DeflateParams::new(1)
    }
}

impl DeflateParams {
    /// No context takeover asked, 15-bit windows, our compression `level`
    /// (links the implementation, see [`Linked`]).
    pub const fn new(level: u8) -> Self {
        DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            level,
            imp: Linked::IMP,
        }
    }

    /// Whether `role` keeps its compression context between messages.
    fn takeover(&self, sender: Role) -> bool {
        match sender {
            Role::Server => !self.server_no_context_takeover,
            Role::Client => !self.client_no_context_takeover,
        }
    }

    fn window(&self, sender: Role) -> u8 {
        match sender {
            Role::Server => self.server_max_window_bits,
            Role::Client => self.client_max_window_bits,
        }
    }
}

// ---------------------------------------------------------------- parsing

/// One element of a `Sec-WebSocket-Extensions` list.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Extension {
    name: String,
    /// Parameters in order; values unquoted.
    params: Vec<(String, Option<String>)>,
}

/// Parses a whole extension list (RFC 6455 9.1, quoted values allowed).
/// `None` when it is not well formed.
fn parse_list(s: &str) -> Option<Vec<Extension>> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| -> Option<String> {
        let start = *i;
        while *i < b.len() && is_tchar(b[*i]) {
            *i += 1;
        }
        (start < *i).then(|| String::from(&s[start..*i]))
    };
    loop {
        skip_ws(&mut i);
        if i < b.len() && b[i] == b',' {
            // Empty list elements are allowed by the list rule.
            i += 1;
            continue;
        }
        if i == b.len() {
            break;
        }
        let name = token(&mut i)?;
        let mut params = Vec::new();
        loop {
            skip_ws(&mut i);
            if i == b.len() || b[i] == b',' {
                break;
            }
            if b[i] != b';' {
                return None;
            }
            i += 1;
            skip_ws(&mut i);
            let pname = token(&mut i)?;
            skip_ws(&mut i);
            let mut value = None;
            if i < b.len() && b[i] == b'=' {
                i += 1;
                skip_ws(&mut i);
                if i < b.len() && b[i] == b'"' {
                    i += 1;
                    let mut v = String::new();
                    loop {
                        match b.get(i)? {
                            b'"' => {
                                i += 1;
                                break;
                            }
                            b'\\' => {
                                v.push(*b.get(i + 1)? as char);
                                i += 2;
                            }
                            &c => {
                                v.push(c as char);
                                i += 1;
                            }
                        }
                    }
                    value = Some(v);
                } else {
                    value = Some(token(&mut i)?);
                }
            }
            params.push((pname, value));
        }
        out.push(Extension { name, params });
    }
    Some(out)
}

/// Window bits as RFC 7692 writes them: 8..=15, no leading zero.
fn window_bits(v: &str) -> Option<u8> {
    if v.is_empty() || v.starts_with('0') || !v.bytes().all(|c| c.is_ascii_digit()) || v.len() > 2 {
        return None;
    }
    let n: u8 = v.parse().ok()?;
    (8..=15).contains(&n).then_some(n)
}

/// A permessage-deflate element's parameters, each at most once and valid.
#[derive(Default)]
struct Parsed {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value (offers only).
    client_max_window_bits: Option<Option<u8>>,
}

fn parse_params(ext: &Extension) -> Option<Parsed> {
    let mut p = Parsed::default();
    for (name, value) in &ext.params {
        let v = value.as_deref();
        match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if v.is_none() && !p.server_no_context_takeover => {
                p.server_no_context_takeover = true
            }
            "client_no_context_takeover" if v.is_none() && !p.client_no_context_takeover => {
                p.client_no_context_takeover = true
            }
            "server_max_window_bits" if p.server_max_window_bits.is_none() => {
                p.server_max_window_bits = Some(window_bits(v?)?)
            }
            "client_max_window_bits" if p.client_max_window_bits.is_none() => {
                p.client_max_window_bits = Some(match v {
                    None => None,
                    Some(v) => Some(window_bits(v)?),
                })
            }
            // Unknown or repeated parameter, or a value where none belongs.
            _ => return None,
        }
    }
    Some(p)
}

// ---------------------------------------------------------------- through the table

/// Server side: appends the 101 answer to `out`, accepting the first
/// acceptable offer of the request (then returned) through `cfg`'s table:
/// a server that never turns the extension on links none of the
/// agreement's handling ([`UpgradeRequest::answer_into`]).
pub(crate) fn answer(
    up: &UpgradeRequest,
    out: &mut Vec<u8>,
    protocol: Option<&str>,
    cfg: &DeflateConfig,
) -> Result<Option<DeflateParams>, HandshakeError> {
    (cfg.imp.0.answer)(up, out, protocol, cfg)
}

/// Client side: [`offer`] through `cfg`'s table.
pub(crate) fn make_offer(cfg: &DeflateConfig) -> String {
    (cfg.imp.0.offer)(cfg)
}

/// Client side: [`check_answer`], through `cfg`'s table when we offered.
/// Without an offer every extension in the answer fails the connection,
/// which needs no parsing: a value holding anything but separators names
/// an extension or is malformed, both errors.
pub(crate) fn verify_answer(
    headers: &[Header],
    cfg: Option<&DeflateConfig>,
) -> Result<Option<DeflateParams>, ()> {
    match cfg {
        Some(cfg) => (cfg.imp.0.check_answer)(headers, cfg),
        None if header_values(headers, EXTENSIONS)
            .all(|v| v.bytes().all(|c| matches!(c, b' ' | b'\t' | b','))) =>
        {
            Ok(None)
        }
        None => Err(()),
    }
}

/// The codec of a connection that agreed on `params`, through its table.
pub(crate) fn new_codec(role: Role, params: DeflateParams) -> Box<dyn PerMessage + Send> {
    (params.imp.0.codec)(role, params)
}

// ---------------------------------------------------------------- server

/// Server side: picks the first acceptable permessage-deflate offer among
/// every `Sec-WebSocket-Extensions` value of a request (RFC 7692 5.1: an
/// offer with an unknown, repeated or invalid parameter is declined and
/// the next one considered). Returns the agreement and the value of the
/// `Sec-WebSocket-Extensions` answer, or `None` to decline the extension.
pub fn accept_offer<'a>(
    values: impl Iterator<Item = &'a str>,
    cfg: &DeflateConfig,
) -> Option<(DeflateParams, String)> {
    for value in values {
        // A malformed header declines everything in it.
        let Some(list) = parse_list(value) else {
            continue;
        };
        for ext in list
            .iter()
            .filter(|e| e.name.eq_ignore_ascii_case(EXTENSION))
        {
            let Some(p) = parse_params(ext) else {
                continue;
            };
            let mut agreed = DeflateParams::new(cfg.level);
            let mut answer = String::from(EXTENSION);
            if p.server_no_context_takeover || cfg.no_context_takeover {
                agreed.server_no_context_takeover = true;
                answer.push_str("; server_no_context_takeover");
            }
            if cfg.no_context_takeover {
                // The client must accept it even unasked (RFC 7692 7.1.1.2).
                agreed.client_no_context_takeover = true;
                answer.push_str("; client_no_context_takeover");
            }
            if let Some(bits) = p.server_max_window_bits {
                // Honoured (run-length matches below 15, see module docs).
                agreed.server_max_window_bits = bits;
                answer.push_str("; server_max_window_bits=");
                push_bits(&mut answer, bits);
            }
            // client_max_window_bits: our inflater takes any window, so we
            // never limit the client's (and say nothing: it may use 15, or
            // the smaller value it offered, which is within 15 anyway).
            return Some((agreed, answer));
        }
    }
    None
}

fn push_bits(s: &mut String, bits: u8) {
    if bits >= 10 {
        s.push('1');
    }
    s.push((b'0' + bits % 10) as char);
}

// ---------------------------------------------------------------- client

/// Client side: the `Sec-WebSocket-Extensions` value of our offer.
pub fn offer(cfg: &DeflateConfig) -> String {
    let mut s = String::from(EXTENSION);
    if cfg.no_context_takeover {
        s.push_str("; server_no_context_takeover; client_no_context_takeover");
    }
    // We can compress with any window the server asks for.
    s.push_str("; client_max_window_bits");
    s
}

/// Client side: checks the server's `Sec-WebSocket-Extensions` answer
/// against what [`offer`] offered (`cfg`; `None`: nothing offered).
/// `Ok(None)`: the server declined. `Err(())`: the answer selects something
/// we did not offer, or breaks RFC 7692: the client fails the connection.
#[allow(clippy::result_unit_err)]
pub fn check_answer<'a>(
    values: impl Iterator<Item = &'a str>,
    cfg: Option<&DeflateConfig>,
) -> Result<Option<DeflateParams>, ()> {
    let mut found = None;
    for value in values {
        let list = parse_list(value).ok_or(())?;
        for ext in list {
            let Some(cfg) = cfg else {
                return Err(());
            };
            if !ext.name.eq_ignore_ascii_case(EXTENSION) || found.is_some() {
                return Err(());
            }
            let p = parse_params(&ext).ok_or(())?;
            let mut agreed = DeflateParams::new(cfg.level);
            agreed.server_no_context_takeover = p.server_no_context_takeover;
            agreed.client_no_context_takeover = p.client_no_context_takeover;
            if cfg.no_context_takeover && !p.server_no_context_takeover {
                // We asked for it; a server that does not grant it declined
                // our (only) offer (RFC 7692 7.1.1.1).
                return Err(());
            }
            if let Some(bits) = p.server_max_window_bits {
                agreed.server_max_window_bits = bits;
            }
            match p.client_max_window_bits {
                None => {}
                // In an answer it needs a value (RFC 7692 7.1.2.2).
                Some(None) => return Err(()),
                Some(Some(bits)) => agreed.client_max_window_bits = bits,
            }
            found = Some(agreed);
        }
    }
    Ok(found)
}

// ---------------------------------------------------------------- codec

/// Why inflating a message stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// The message would exceed the limit: inflating stopped there.
    TooBig,
    /// Not a valid DEFLATE stream.
    Malformed,
    /// No memory for the output within the limit.
    OutOfMemory,
}

/// What the engine asks of a connection's compression state ([`Codec`],
/// behind [`Linked`]). Method docs on its implementation for [`Codec`].
pub(crate) trait PerMessage {
    fn compresses(&self) -> bool;
    fn compress(&mut self, data: &[u8], fin: bool, out: &mut Vec<u8>);
    fn start_message(&mut self);
    fn inflate(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
        budget: u64,
    ) -> Result<(), InflateError>;
    fn state_bytes(&self) -> usize;
    fn deflater_bytes(&self) -> usize;
    fn inflater_bytes(&self) -> usize;
    /// The engine's handling of a compressed data frame
    /// ([`engine::compressed_payload`]), named by this table only.
    fn receive(
        &mut self,
        rx: &mut MsgRx,
        config: &Config,
        sent_close: bool,
        piece: Piece<'_>,
    ) -> Result<Option<Ready>, ProtocolError>;
    /// Queues a compressed data frame ([`engine::queue_compressed`]).
    fn queue(
        &mut self,
        out: &mut Vec<u8>,
        fin: bool,
        opcode: OpCode,
        mask: Option<[u8; 4]>,
        data: &[u8],
    );
}

/// The compression state of one connection (both directions).
pub(crate) struct Codec {
    params: DeflateParams,
    /// Our role: we compress as it, and inflate what the other role sent.
    role: Role,
    deflater: Option<Box<CompressorOxide>>,
    inflater: Option<Box<InflateState>>,
    /// The current received message's inflate stream ended (BFINAL):
    /// whatever else the message carries is ignored.
    recv_done: bool,
    /// Largest output step while compressing (small in a test).
    max_room: usize,
}

fn peer(role: Role) -> Role {
    match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

impl Codec {
    pub(crate) fn new(role: Role, params: DeflateParams) -> Self {
        Codec {
            params,
            role,
            deflater: None,
            inflater: None,
            recv_done: false,
            max_room: 256 * 1024,
        }
    }

    fn inflate_part(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        cap: usize,
    ) -> Result<(), InflateError> {
        if self.recv_done {
            return Ok(());
        }
        let st = self
            .inflater
            .get_or_insert_with(|| InflateState::new_boxed(DataFormat::Raw));
        loop {
            let len = out.len();
            if len >= cap {
                return Err(InflateError::TooBig);
            }
            if len == out.capacity() {
                let want = len.max(4096).min(cap - len);
                out.try_reserve_exact(want)
                    .map_err(|_| InflateError::OutOfMemory)?;
            }
            // Zeroed before use: a step in proportion to the input (the
            // loop goes on while steps fill up), at most 64 KiB, whatever
            // the capacity a large message left behind.
            let step = input.len().saturating_mul(4).clamp(4096, 64 * 1024);
            let room = (out.capacity().min(cap) - len).min(step);
            out.resize(len + room, 0);
            let r =
                miniz_oxide::inflate::stream::inflate(st, input, &mut out[len..], MZFlush::None);
            out.truncate(len + r.bytes_written);
            input = &input[r.bytes_consumed..];
            match r.status {
                Ok(MZStatus::StreamEnd) => {
                    // A final block (BFINAL): the message's data ends here.
                    self.recv_done = true;
                    if out.len() >= cap {
                        return Err(InflateError::TooBig);
                    }
                    // With takeover the next message is a new stream.
                    self.inflater = None;
                    return Ok(());
                }
                Ok(_) => {}
                Err(MZError::Buf) => {
                    // No progress: the input is used up and nothing is
                    // pending.
                    return Ok(());
                }
                Err(_) => return Err(InflateError::Malformed),
            }
            if input.is_empty() && r.bytes_written < room {
                return Ok(());
            }
        }
    }
}

impl PerMessage for Codec {
    /// Whether we compress what we send.
    fn compresses(&self) -> bool {
        self.params.level > 0
    }

    /// Appends the compressed form of `data`, a piece of the message being
    /// sent, to `out`; `fin` ends the message (sync flush, tail removed).
    fn compress(&mut self, data: &[u8], fin: bool, out: &mut Vec<u8>) {
        let window = self.params.window(self.role);
        let level = self.params.level.min(9);
        let c = self.deflater.get_or_insert_with(|| {
            let (level, strategy) = if window < 15 {
                // Level 1 takes miniz_oxide's fast path, which ignores the
                // run-length flag: 2 and above honour it.
                (level.max(2), CompressionStrategy::RLE)
            } else {
                (level, CompressionStrategy::Default)
            };
            Box::new(CompressorOxide::new(
                miniz_oxide::deflate::core::create_comp_flags_from_zip_params(
                    i32::from(level),
                    -15,
                    strategy as i32,
                ),
            ))
        });
        let start = out.len();
        let mut input = data;
        // miniz_oxide skips the sync flush of a call that starts with
        // output still pending from a call whose buffer filled up (its
        // #105): the message is complete only after a call that started
        // clean, had all the input and did not fill its buffer.
        let mut clean_start = true;
        let mut room = (input.len() + input.len() / 16 + 64).min(self.max_room);
        loop {
            let len = out.len();
            out.resize(len + room, 0);
            let r = miniz_oxide::deflate::stream::deflate(c, input, &mut out[len..], MZFlush::Sync);
            out.truncate(len + r.bytes_written);
            input = &input[r.bytes_consumed..];
            let full = r.bytes_written == room;
            if (clean_start && input.is_empty() && !full)
                || (r.status.is_err() && r.bytes_written == 0 && r.bytes_consumed == 0)
            {
                break;
            }
            clean_start = !full;
            room = (input.len() + 4096).min(self.max_room);
        }
        if fin {
            if out.len() >= start + 4 && out[out.len() - 4..] == TAIL {
                out.truncate(out.len() - 4);
            }
            if !self.params.takeover(self.role) {
                // Nothing kept between messages.
                self.deflater = None;
            }
        }
    }

    /// Starts a received compressed message.
    fn start_message(&mut self) {
        self.recv_done = false;
    }

    /// Inflates `input`, a piece of the compressed message being received,
    /// appending to `out` (which holds `out.len()` bytes of this message
    /// or piece); `fin` ends the message (the removed tail is put back).
    /// `budget`: how many more inflated bytes the message may have; the
    /// output never grows beyond one byte more.
    fn inflate(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
        budget: u64,
    ) -> Result<(), InflateError> {
        let cap = (out.len() as u64).saturating_add(budget.saturating_add(1));
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        let r = self.inflate_part(input, out, cap);
        let r = r.and_then(|()| {
            if fin {
                self.inflate_part(&TAIL, out, cap)
            } else {
                Ok(())
            }
        });
        if fin || r.is_err() {
            if !self.params.takeover(peer(self.role)) || r.is_err() {
                self.inflater = None;
            }
            self.recv_done = false;
        }
        r
    }

    /// Bytes of compression state held now (both directions, approximate).
    fn state_bytes(&self) -> usize {
        self.deflater_bytes() + self.inflater_bytes()
    }
    /// Bytes the compressor holds now (0 between messages without context
    /// takeover): counted with the connection's output.
    fn deflater_bytes(&self) -> usize {
        if self.deflater.is_some() {
            DEFLATER_BYTES
        } else {
            0
        }
    }
    /// Bytes the inflater holds now: counted with reassembly.
    fn inflater_bytes(&self) -> usize {
        if self.inflater.is_some() {
            core::mem::size_of::<InflateState>()
        } else {
            0
        }
    }
    fn receive(
        &mut self,
        rx: &mut MsgRx,
        config: &Config,
        sent_close: bool,
        piece: Piece<'_>,
    ) -> Result<Option<Ready>, ProtocolError> {
        engine::compressed_payload(self, rx, config, sent_close, piece)
    }
    fn queue(
        &mut self,
        out: &mut Vec<u8>,
        fin: bool,
        opcode: OpCode,
        mask: Option<[u8; 4]>,
        data: &[u8],
    ) {
        engine::queue_compressed(self, out, fin, opcode, mask, data)
    }
}

/// Heap held by one `miniz_oxide` compressor: the struct (with its 64 KiB
/// code buffer), the 32 KiB dictionary (+258), hash chains (2 x 64 KiB) and
/// the output staging buffer (83 KiB).
const DEFLATER_BYTES: usize =
    core::mem::size_of::<CompressorOxide>() + (32 * 1024 + 258) + 2 * 64 * 1024 + 85_196;

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn cfg() -> DeflateConfig {
        DeflateConfig::default()
    }

    /// A head's `Sec-WebSocket-Extensions` lines, one per value, with an
    /// unrelated line between them.
    fn ext(values: &[&str]) -> Vec<Header> {
        let line = |name: &str, value: &str| Header {
            name: name.into(),
            value: value.into(),
        };
        let mut h = vec![line("Host", "x")];
        for v in values {
            h.push(line(EXTENSIONS, v));
            h.push(line("X-Other", "permessage-deflate"));
        }
        h
    }

    #[test]
    fn parse_list_with_quotes_and_params() {
        let l = parse_list("permessage-deflate; client_max_window_bits=\"10\", x-foo ; a ; b=c, ,")
            .unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].name, "permessage-deflate");
        assert_eq!(
            l[0].params,
            vec![("client_max_window_bits".into(), Some("10".into()))]
        );
        assert_eq!(l[1].params.len(), 2);
        assert!(parse_list("permessage-deflate; =1").is_none());
        assert!(parse_list("permessage-deflate; a=\"1").is_none());
        assert!(parse_list("permessage deflate").is_none());
    }

    #[test]
    fn window_bits_rule() {
        for ok in 8..=15u8 {
            assert_eq!(window_bits(&alloc::format!("{ok}")), Some(ok));
        }
        for bad in ["7", "16", "08", "", "1a", "+9", "100"] {
            assert_eq!(window_bits(bad), None, "{bad}");
        }
    }

    fn accept(v: &str, c: &DeflateConfig) -> Option<(DeflateParams, String)> {
        accept_offer([v].into_iter(), c)
    }

    #[test]
    fn server_accepts_plain_and_parametrised_offers() {
        let (p, a) = accept("permessage-deflate", &cfg()).unwrap();
        assert_eq!(a, "permessage-deflate");
        assert_eq!(p, DeflateParams::new(1));
        let (p, a) = accept(
            "permessage-deflate; client_max_window_bits; server_max_window_bits=10; \
             server_no_context_takeover; client_no_context_takeover",
            &cfg(),
        )
        .unwrap();
        assert_eq!(
            a,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"
        );
        assert!(p.server_no_context_takeover && !p.client_no_context_takeover);
        assert_eq!(
            (p.server_max_window_bits, p.client_max_window_bits),
            (10, 15)
        );
    }

    #[test]
    fn server_declines_bad_offers_and_takes_a_later_good_one() {
        for bad in [
            "permessage-deflate; foo",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=0",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits=9; client_max_window_bits=9",
            "x-webkit-deflate-frame",
            "permessage-deflate; a=\"",
        ] {
            assert_eq!(accept(bad, &cfg()), None, "{bad}");
        }
        let (p, a) = accept(
            "permessage-deflate; foo, permessage-deflate; server_max_window_bits=9",
            &cfg(),
        )
        .unwrap();
        assert_eq!(a, "permessage-deflate; server_max_window_bits=9");
        assert_eq!(p.server_max_window_bits, 9);
        // Several header lines.
        let got = accept_offer(["x-foo", "permessage-deflate"].into_iter(), &cfg());
        assert!(got.is_some());
    }

    #[test]
    fn server_can_insist_on_no_context_takeover() {
        let c = DeflateConfig {
            no_context_takeover: true,
            ..cfg()
        };
        let (p, a) = accept("permessage-deflate", &c).unwrap();
        assert_eq!(
            a,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert!(p.server_no_context_takeover && p.client_no_context_takeover);
    }

    fn check(v: Option<&str>, c: &DeflateConfig) -> Result<Option<DeflateParams>, ()> {
        check_answer(v.into_iter(), Some(c))
    }

    /// Without an offer the answer is judged without parsing it: the same
    /// verdicts as the parser's.
    #[test]
    fn unoffered_answers_judged_like_the_parser() {
        for v in [
            "",
            " ,\t, ",
            "permessage-deflate",
            "x; y=\"z\"",
            ",;",
            "\"",
            " , foo",
        ] {
            let values = [v, ""];
            assert_eq!(
                verify_answer(&ext(&values), None),
                check_answer(values.into_iter(), None),
                "{v:?}"
            );
        }
        assert_eq!(verify_answer(&ext(&[" , "]), None), Ok(None));
        assert_eq!(verify_answer(&ext(&["", " x"]), None), Err(()));
    }

    #[test]
    fn client_offer_and_answers() {
        assert_eq!(offer(&cfg()), "permessage-deflate; client_max_window_bits");
        assert_eq!(check(None, &cfg()), Ok(None));
        assert_eq!(
            check(Some("permessage-deflate"), &cfg()),
            Ok(Some(DeflateParams::new(1)))
        );
        let p = check(
            Some("permessage-deflate; client_max_window_bits=9; client_no_context_takeover; server_max_window_bits=12"),
            &cfg(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (p.client_max_window_bits, p.server_max_window_bits),
            (9, 12)
        );
        assert!(p.client_no_context_takeover && !p.server_no_context_takeover);
        for bad in [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; foo",
            "permessage-deflate, permessage-deflate",
            "x-foo",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        ] {
            assert_eq!(check(Some(bad), &cfg()), Err(()), "{bad}");
        }
        // Nothing offered: any extension fails.
        assert_eq!(
            check_answer(["permessage-deflate"].into_iter(), None),
            Err(())
        );
        assert_eq!(check_answer(core::iter::empty(), None), Ok(None));
        // Asked for no takeover, not granted.
        let c = DeflateConfig {
            no_context_takeover: true,
            ..cfg()
        };
        assert_eq!(check(Some("permessage-deflate"), &c), Err(()));
        assert!(
            check(Some("permessage-deflate; server_no_context_takeover"), &c)
                .unwrap()
                .is_some()
        );
    }

    fn round_trip(params: DeflateParams, msgs: &[&[u8]]) {
        let mut tx = Codec::new(Role::Server, params);
        let mut rx = Codec::new(Role::Client, params);
        for m in msgs {
            let mut wire = Vec::new();
            tx.compress(m, true, &mut wire);
            assert_ne!(wire.get(wire.len().saturating_sub(4)..), Some(&TAIL[..]));
            let mut out = Vec::new();
            rx.start_message();
            rx.inflate(&wire, true, &mut out, 1 << 30).unwrap();
            assert_eq!(&out[..], *m);
        }
    }

    #[test]
    fn codec_round_trips_with_and_without_takeover_and_small_windows() {
        let text: Vec<u8> = (0..5000).map(|i| b"{\"k\":\"value\"}"[i % 13]).collect();
        let random: Vec<u8> = (0..3000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let msgs: [&[u8]; 4] = [&text, b"", &random, &text];
        for sntc in [false, true] {
            for bits in [8, 9, 12, 15] {
                let mut p = DeflateParams::new(6);
                p.server_no_context_takeover = sntc;
                p.server_max_window_bits = bits;
                round_trip(p, &msgs);
            }
        }
    }

    #[test]
    fn takeover_shrinks_the_repeated_message_and_no_takeover_drops_state() {
        let msg: Vec<u8> = (0..2000u32)
            .map(|i| (i.wrapping_mul(7919) % 251) as u8)
            .collect();
        let mut p = DeflateParams::new(6);
        let mut tx = Codec::new(Role::Server, p);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        tx.compress(&msg, true, &mut a);
        tx.compress(&msg, true, &mut b);
        assert!(b.len() < a.len() / 4, "{} vs {}", b.len(), a.len());
        assert!(tx.state_bytes() > 0);
        p.server_no_context_takeover = true;
        let mut tx = Codec::new(Role::Server, p);
        tx.compress(&msg, true, &mut Vec::new());
        assert_eq!(tx.state_bytes(), 0);
    }

    #[test]
    fn small_window_uses_only_distance_one() {
        // Two copies of a random block: LZ77 over 32 KiB would reference
        // the first copy 3000 bytes back. With a 9-bit window it may not,
        // so the output stays about as large as two random blocks.
        let block: Vec<u8> = (0..3000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
            .collect();
        let twice = [block.clone(), block].concat();
        for level in [1, 6] {
            let mut p = DeflateParams::new(level);
            let mut full = Vec::new();
            Codec::new(Role::Server, p).compress(&twice, true, &mut full);
            p.server_max_window_bits = 9;
            let mut small = Vec::new();
            Codec::new(Role::Server, p).compress(&twice, true, &mut small);
            assert!(full.len() < 3300, "level {level}: {}", full.len());
            assert!(small.len() > 5500, "level {level}: {}", small.len());
        }
    }

    #[test]
    fn compression_completes_whatever_the_output_steps() {
        // With an output step that fills up while a block is written,
        // miniz_oxide leaves the sync flush undone after flushing the
        // pending output: the loop must go on, or the end of the message
        // is lost.
        let mut x = 12345u32;
        let noisy: Vec<u8> = (0..300_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                b'a' + ((x >> 16) % 40) as u8
            })
            .collect();
        // The block written when the code buffer fills must come within
        // the last bytes of the input: sweep the message length.
        let p = DeflateParams::new(1);
        let mut rx = Codec::new(Role::Client, p);
        let mut failures = 0;
        for len in (50_000..70_000).step_by(41) {
            let mut tx = Codec::new(Role::Server, p);
            tx.max_room = len / 2;
            let msg = &noisy[..len];
            let mut z = Vec::new();
            tx.compress(msg, true, &mut z);
            let mut out = Vec::new();
            rx.inflate(&z, true, &mut out, 1 << 30).unwrap();
            failures += usize::from(out != msg);
        }
        assert_eq!(failures, 0);
    }

    #[test]
    fn inflate_stops_at_the_budget() {
        let zeros = vec![0u8; 10 * 1024 * 1024];
        let mut wire = Vec::new();
        Codec::new(Role::Server, DeflateParams::new(6)).compress(&zeros, true, &mut wire);
        assert!(wire.len() < 20_000, "{}", wire.len());
        let mut rx = Codec::new(Role::Client, DeflateParams::new(6));
        let mut out = Vec::new();
        rx.start_message();
        assert_eq!(
            rx.inflate(&wire, true, &mut out, 1024 * 1024),
            Err(InflateError::TooBig)
        );
        assert!(out.capacity() <= 1024 * 1024 + 1, "{}", out.capacity());
    }

    #[test]
    fn malformed_stream_is_an_error() {
        let mut rx = Codec::new(Role::Client, DeflateParams::new(6));
        let mut out = Vec::new();
        // BTYPE 11 is reserved.
        assert_eq!(
            rx.inflate(&[0xff, 0xff, 0xff], true, &mut out, 1000),
            Err(InflateError::Malformed)
        );
    }
}
