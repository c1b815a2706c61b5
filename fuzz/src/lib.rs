//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! Every target reads its input in the same layout (see [`Input`]), so a
//! seed file is two or more control bytes followed by the bytes a peer
//! would send.

use nopoll::protocol::close::CloseFrame;
use nopoll::protocol::frame::FrameHeader;
use nopoll::protocol::mask::apply_mask;
use nopoll::protocol::{
    Config, DataKind, DeflateParams, Delivery, Engine, Event, OpCode, ProtocolError, RandomSource,
    Role, SendError,
};
use std::ops::Range;

/// A fuzz input: control bytes, then the bytes fed to the parser.
///
/// - byte 0: a target-specific configuration selector (limits, modes);
/// - byte 1: `N = byte % 16`, the number of piece lengths that follow;
/// - bytes `2..2 + N`: piece lengths, used cyclically to split `data`
///   (0 feeds an empty slice, 255 feeds everything left);
/// - the rest: `data`.
///
/// `[0, 0, data...]` feeds `data` in one piece with the default
/// configuration.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// Configuration selector.
    pub config: u8,
    /// Piece lengths.
    pub pieces: &'a [u8],
    /// What is fed to the parser.
    pub data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Splits a raw fuzz input; `None` when it is too short for the header.
    pub fn parse(raw: &'a [u8]) -> Option<Input<'a>> {
        let (&config, rest) = raw.split_first()?;
        let (&n, rest) = rest.split_first()?;
        let n = usize::from(n % 16).min(rest.len());
        let (pieces, data) = rest.split_at(n);
        Some(Input {
            config,
            pieces,
            data,
        })
    }
}

/// Cuts `0..len` into consecutive ranges whose lengths cycle through
/// `pieces` (see [`Input`]). An empty list, or one of zeros only, gives
/// one range covering everything.
pub fn split(len: usize, pieces: &[u8]) -> Vec<Range<usize>> {
    if pieces.iter().all(|&p| p == 0) {
        return std::iter::once(0..len).collect();
    }
    let mut out = Vec::new();
    let mut start = 0;
    for &p in pieces.iter().cycle() {
        if start >= len && !out.is_empty() {
            break;
        }
        let end = if p == 255 {
            len
        } else {
            (start + usize::from(p)).min(len)
        };
        out.push(start..end);
        start = end;
    }
    out
}

/// True when `head` is a complete HTTP head: it ends with the first blank
/// line (`"\n\n"` or `"\n\r\n"`) and contains no earlier one.
pub fn is_exact_head(head: &[u8]) -> bool {
    let first_end = (0..head.len()).find_map(|i| {
        if head[i] != b'\n' {
            return None;
        }
        match (head.get(i + 1), head.get(i + 2)) {
            (Some(b'\n'), _) => Some(i + 2),
            (Some(b'\r'), Some(b'\n')) => Some(i + 3),
            _ => None,
        }
    });
    first_end == Some(head.len())
}

/// A deterministic masking-key source (the engine's output for the same
/// calls is then the same byte for byte).
#[derive(Clone, Debug)]
pub struct Counter(pub u8);

impl RandomSource for Counter {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 = self.0.wrapping_mul(31).wrapping_add(7);
            *b = self.0;
        }
    }
}

/// An owned [`Event`], comparable across runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    /// A whole message.
    Msg(DataKind, Vec<u8>),
    /// A piece of a message (partial delivery).
    Chunk {
        /// Message kind.
        kind: DataKind,
        /// Opcode of the frame.
        opcode: OpCode,
        /// Unmasked bytes.
        data: Vec<u8>,
        /// FIN bit of the frame.
        fin: bool,
        /// Last piece of its frame.
        frame_end: bool,
        /// Last piece of its message.
        message_end: bool,
    },
    /// A ping.
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// The peer's close frame.
    Close(Option<u16>, String),
}

fn own(e: Event<'_>) -> Ev {
    match e {
        Event::Message(k, d) => Ev::Msg(k, d.to_vec()),
        Event::Chunk(c) => Ev::Chunk {
            kind: c.kind,
            opcode: c.opcode,
            data: c.data.to_vec(),
            fin: c.fin,
            frame_end: c.frame_end,
            message_end: c.message_end,
        },
        Event::Ping(d) => Ev::Ping(d.to_vec()),
        Event::Pong(d) => Ev::Pong(d.to_vec()),
        Event::Close(c) => Ev::Close(c.code, c.reason.into()),
    }
}

/// Everything an engine produced for one input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// Events in order.
    pub events: Vec<Ev>,
    /// The protocol error that ended the run, if any.
    pub error: Option<ProtocolError>,
    /// Every byte the engine queued for the peer.
    pub output: Vec<u8>,
}

/// When the test harness takes bytes out of [`Engine::output`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drain {
    /// Only at the end.
    Never,
    /// Everything after each piece.
    All,
    /// Half of it after each piece (exercises compaction).
    Half,
    /// One byte after every `read`.
    Trickle,
}

impl Drain {
    fn take<R: RandomSource>(self, eng: &mut Engine<R>, sink: &mut Vec<u8>, after_piece: bool) {
        let n = match (self, after_piece) {
            (Drain::All, true) => eng.output().len(),
            (Drain::Half, true) => eng.output().len() / 2,
            (Drain::Trickle, false) => eng.output().len().min(1),
            _ => 0,
        };
        sink.extend_from_slice(&eng.output()[..n]);
        eng.consume_output(n);
        assert_eq!(eng.want_write(), !eng.output().is_empty());
    }
}

/// Feeds `data`, cut into `ranges`, to a fresh engine, checking the
/// per-call invariants; stops at the first error.
pub fn run_engine(
    role: Role,
    config: Config,
    data: &[u8],
    ranges: &[Range<usize>],
    drain: Drain,
) -> Run {
    // The engine unmasks in place, so it gets its own copy.
    let mut buf = data.to_vec();
    let mut eng = Engine::new(role, config, Counter(0x5a));
    let mut output = Vec::new();
    let mut events = Vec::new();
    for r in ranges {
        let piece = &mut buf[r.clone()];
        let mut pos = 0;
        loop {
            let left = piece.len() - pos;
            let res = eng.read(&mut piece[pos..]).map(|(n, ev)| (n, ev.map(own)));
            match res {
                Ok((n, ev)) => {
                    assert!(n <= left, "consumed {n} of {left} bytes");
                    pos += n;
                    drain.take(&mut eng, &mut output, false);
                    match ev {
                        Some(ev) => {
                            // Also guarantees that this loop terminates.
                            assert!(n > 0, "an event without consuming input: {ev:?}");
                            events.push(ev);
                        }
                        None if n == 0 => break,
                        None => {}
                    }
                }
                Err(e) => {
                    check_failed(&mut eng, &e, &mut piece[pos..]);
                    output.extend_from_slice(eng.output());
                    return Run {
                        events,
                        error: Some(e),
                        output,
                    };
                }
            }
        }
        assert_eq!(pos, piece.len(), "every byte is consumed");
        assert!(
            eng.buffered_len() as u64 <= config.max_message_size,
            "buffered {} bytes beyond the message limit",
            eng.buffered_len()
        );
        drain.take(&mut eng, &mut output, true);
    }
    output.extend_from_slice(eng.output());
    Run {
        events,
        error: None,
        output,
    }
}

/// After `read` failed with `e`: the engine stays failed.
fn check_failed<R: RandomSource>(eng: &mut Engine<R>, e: &ProtocolError, rest: &mut [u8]) {
    assert_eq!(eng.failure(), Some(e));
    assert!(eng.is_closed() && eng.close_sent());
    assert_eq!(eng.read(&mut []).err().as_ref(), Some(e));
    assert_eq!(eng.read(rest).err().as_ref(), Some(e));
    // Even a perfectly valid frame is refused now.
    let mut ping = [0x89, 0x80, 1, 2, 3, 4];
    assert_eq!(eng.read(&mut ping).err().as_ref(), Some(e));
    assert_eq!(eng.send_binary(b"x"), Err(SendError::Closed));
    assert_eq!(eng.send_ping(b""), Err(SendError::Closed));
}

/// Decodes what an engine of `role` queued for its peer and checks it
/// against the events: one pong per ping, in order, and a close frame
/// last exactly when the run ended with the peer's close or an error.
pub fn check_output(role: Role, run: &Run) {
    let peer = match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    let out = &run.output;
    let mut pos = 0;
    let mut pongs = Vec::new();
    let mut close: Option<Vec<u8>> = None;
    while pos < out.len() {
        assert!(close.is_none(), "bytes after our close frame");
        let (h, n) = FrameHeader::decode(&out[pos..])
            .expect("output has a valid length")
            .expect("output ends inside a frame header");
        let op = h
            .validate(peer, 0)
            .unwrap_or_else(|e| panic!("output frame {h:?} invalid for the peer: {e}"));
        let len = usize::try_from(h.payload_len).expect("small payload");
        let end = pos + n + len;
        assert!(end <= out.len(), "output ends inside a frame payload");
        let mut payload = out[pos + n..end].to_vec();
        if let Some(k) = h.mask {
            apply_mask(&mut payload, k, 0);
        }
        match op {
            OpCode::Pong => pongs.push(payload),
            OpCode::Close => {
                CloseFrame::parse(&payload).expect("our close frame is valid");
                close = Some(payload);
            }
            other => panic!("the engine sent a {other:?} frame on its own"),
        }
        pos = end;
    }
    for e in &run.events {
        match e {
            Ev::Ping(p) | Ev::Pong(p) => assert!(p.len() <= 125, "control payload"),
            Ev::Close(code, reason) => {
                assert!(reason.len() <= 123, "close reason");
                assert!(code.is_some() || reason.is_empty());
                assert!(code.is_none_or(nopoll::protocol::close::is_valid_close_code));
            }
            _ => {}
        }
    }
    let pings: Vec<&Vec<u8>> = run
        .events
        .iter()
        .filter_map(|e| match e {
            Ev::Ping(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(pongs.iter().collect::<Vec<_>>(), pings, "one pong per ping");
    let expect_close = match (&run.error, run.events.last()) {
        (Some(e), _) => Some(e.close_code().to_be_bytes().to_vec()),
        (None, Some(Ev::Close(code, _))) => {
            Some(code.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default())
        }
        (None, _) => None,
    };
    assert_eq!(close, expect_close, "close frame in the output");
    if run.error.is_none() {
        // A close event ends the stream: nothing is reported after it.
        let closes = run
            .events
            .iter()
            .filter(|e| matches!(e, Ev::Close(..)))
            .count();
        assert!(closes == 0 || (closes == 1 && matches!(run.events.last(), Some(Ev::Close(..)))));
    }
}

/// Whole-message delivery: only whole messages within the limit, text
/// messages valid UTF-8.
pub fn check_messages(config: &Config, events: &[Ev]) {
    for e in events {
        match e {
            Ev::Chunk { .. } => panic!("a chunk in whole-message mode"),
            Ev::Msg(kind, data) => {
                assert!(data.len() as u64 <= config.max_message_size);
                if *kind == DataKind::Text {
                    assert!(std::str::from_utf8(data).is_ok(), "invalid UTF-8 delivered");
                }
            }
            _ => {}
        }
    }
}

/// Turns partial-delivery events into what whole-message delivery reports
/// (checking the chunk invariants on the way); an unfinished message at
/// the end is dropped, as whole-message delivery never reports it.
pub fn coalesce(config: &Config, events: &[Ev]) -> Vec<Ev> {
    let mut out = Vec::new();
    let mut frame_len = 0u64;
    // (kind, bytes so far, still in the message's first frame)
    let mut cur: Option<(DataKind, Vec<u8>, bool)> = None;
    for e in events {
        let Ev::Chunk {
            kind,
            opcode,
            data,
            fin,
            frame_end,
            message_end,
        } = e
        else {
            assert!(!matches!(e, Ev::Msg(..)), "a whole message in partial mode");
            out.push(e.clone());
            continue;
        };
        assert_eq!(*message_end, *fin && *frame_end);
        let first_op = match kind {
            DataKind::Text => OpCode::Text,
            DataKind::Binary => OpCode::Binary,
        };
        let (k, buf, first_frame) = cur.get_or_insert_with(|| (*kind, Vec::new(), true));
        assert_eq!(k, kind, "message kind changed mid-message");
        let expect_op = if *first_frame {
            first_op
        } else {
            OpCode::Continuation
        };
        assert_eq!(*opcode, expect_op, "chunk opcode");
        buf.extend_from_slice(data);
        frame_len += data.len() as u64;
        // (Inflated data may exceed the frame limit, which counts wire bytes.)
        assert!(
            config.deflate.is_some() || frame_len <= config.max_frame_size,
            "frame beyond the limit"
        );
        assert!(
            buf.len() as u64 <= config.max_message_size,
            "message beyond the limit"
        );
        if *kind == DataKind::Text {
            // A piece may end inside a code point, but what was delivered
            // so far is always a valid prefix.
            if let Err(e) = std::str::from_utf8(buf) {
                assert!(e.error_len().is_none(), "invalid UTF-8 delivered");
            }
        }
        if *frame_end {
            *first_frame = false;
            frame_len = 0;
        }
        if *message_end {
            let (k, buf, _) = cur.take().expect("message in progress");
            out.push(Ev::Msg(k, buf));
        }
    }
    out
}

const FRAME_LIMITS: [u64; 8] = [0, 1, 3, 125, 126, 1000, 65536, 16 << 20];
const MESSAGE_LIMITS: [u64; 8] = [0, 1, 4, 125, 200, 2000, 65536, 64 << 20];

/// The body of both frame decoder targets.
///
/// Config byte: bits 0-2 pick the frame limit, bits 3-5 the message limit
/// (index 7 is the default), bits 6-7 when output is drained.
pub fn fuzz_engine(role: Role, raw: &[u8]) {
    let Some(input) = Input::parse(raw) else {
        return;
    };
    let c = input.config;
    // Every input runs without and with permessage-deflate negotiated
    // (context takeover, so messages depend on the ones before).
    for deflate in [None, Some(DEFLATE)] {
        let messages = Config {
            max_frame_size: FRAME_LIMITS[usize::from(c & 7)],
            max_message_size: MESSAGE_LIMITS[usize::from((c >> 3) & 7)],
            delivery: Delivery::Messages,
            deflate,
            legacy_fragments: false,
        };
        let partial = Config {
            delivery: Delivery::Partial,
            ..messages
        };
        let drain = [Drain::Never, Drain::All, Drain::Half, Drain::Trickle][usize::from(c >> 6)];
        let data = input.data;
        let whole = split(data.len(), &[]);
        let pieces = split(data.len(), input.pieces);

        let m_whole = run_engine(role, messages, data, &whole, Drain::Never);
        let m_split = run_engine(role, messages, data, &pieces, drain);
        let p_whole = run_engine(role, partial, data, &whole, Drain::Never);
        let p_split = run_engine(role, partial, data, &pieces, drain);
        for run in [&m_whole, &m_split, &p_whole, &p_split] {
            check_output(role, run);
        }
        for run in [&m_whole, &m_split] {
            check_messages(&messages, &run.events);
        }
        // How the input is cut changes nothing in whole-message mode...
        same_run(&m_whole, &m_split, "whole vs split, whole messages");
        // ...and partial delivery reassembles to the same messages, with the
        // same error and the same bytes for the peer.
        for p in [&p_whole, &p_split] {
            assert_eq!(
                coalesce(&partial, &p.events),
                m_whole.events,
                "partial vs whole messages"
            );
            same_run(
                &Run {
                    events: m_whole.events.clone(),
                    ..p.clone()
                },
                &m_whole,
                "partial vs whole, error and output",
            );
        }
    }
}

/// Two runs of the same input are the same, with one allowance: a stream
/// that is not valid DEFLATE may be reported as such (1007) or by a fault
/// found in what inflated before it (too big, 1009; invalid UTF-8, 1007),
/// depending on the cuts, because `miniz_oxide` drops the output it had not
/// handed out yet when it meets the bad data. Then only the close code in
/// the output (its last two bytes) may differ.
fn same_run(a: &Run, b: &Run, what: &str) {
    use ProtocolError::{BadCompressedData, InvalidUtf8, MessageTooLarge};
    let fault = |e: &Option<ProtocolError>| {
        matches!(
            e,
            Some(BadCompressedData | InvalidUtf8 | MessageTooLarge { .. })
        )
    };
    let compression_fault = a.error != b.error
        && (a.error == Some(BadCompressedData) || b.error == Some(BadCompressedData))
        && fault(&a.error)
        && fault(&b.error);
    if !compression_fault {
        assert_eq!(a, b, "{what}");
        return;
    }
    assert_eq!(a.events, b.events, "{what}");
    let n = a.output.len();
    assert!(n >= 2 && b.output.len() == n, "{what}");
    assert_eq!(a.output[..n - 2], b.output[..n - 2], "{what}");
}

/// permessage-deflate as negotiated by default (context takeover both ways).
const DEFLATE: DeflateParams = DeflateParams::new(6);

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn input_layout() {
        let i = Input::parse(&[7, 2, 3, 4, b'a', b'b']).unwrap();
        assert_eq!((i.config, i.pieces, i.data), (7, &[3, 4][..], &b"ab"[..]));
        // N counts modulo 16 and never past the end.
        let i = Input::parse(&[0, 18, 1]).unwrap();
        assert_eq!((i.pieces, i.data), (&[1][..], &[][..]));
        assert!(Input::parse(&[1]).is_none());
    }

    #[test]
    fn split_covers_the_input_in_order() {
        assert_eq!(split(5, &[]), vec![0..5]);
        assert_eq!(split(5, &[0, 0]), vec![0..5]);
        assert_eq!(split(0, &[3]), vec![0..0]);
        assert_eq!(split(7, &[2, 3]), vec![0..2, 2..5, 5..7]);
        assert_eq!(
            split(4, &[0, 1]),
            vec![0..0, 0..1, 1..1, 1..2, 2..2, 2..3, 3..3, 3..4]
        );
        assert_eq!(split(600, &[1, 255]), vec![0..1, 1..600]);
    }

    #[test]
    fn exact_heads() {
        assert!(is_exact_head(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(is_exact_head(b"GET / HTTP/1.1\n\n"));
        assert!(!is_exact_head(b"GET / HTTP/1.1\r\n\r\nx"));
        assert!(!is_exact_head(b"GET / HTTP/1.1\r\n"));
        assert!(!is_exact_head(b"a\n\nb\n\n"));
    }

    #[test]
    fn coalescing_chunks_gives_messages() {
        let chunk = |opcode, data: &[u8], fin, frame_end| Ev::Chunk {
            kind: DataKind::Text,
            opcode,
            data: data.to_vec(),
            fin,
            frame_end,
            message_end: fin && frame_end,
        };
        let events = [
            chunk(OpCode::Text, b"He", false, false),
            chunk(OpCode::Text, b"l", false, true),
            Ev::Ping(vec![1]),
            chunk(OpCode::Continuation, b"lo", true, true),
            chunk(OpCode::Text, b"unfinished", false, true),
        ];
        assert_eq!(
            coalesce(&Config::default(), &events),
            vec![
                Ev::Ping(vec![1]),
                Ev::Msg(DataKind::Text, b"Hello".to_vec())
            ]
        );
    }

    fn seeds(target: &str) -> Vec<Vec<u8>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("seeds")
            .join(target);
        let mut out: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        out.sort();
        out
    }

    /// The committed frame seeds decode as the RFC says, and pass every
    /// check of the targets.
    #[test]
    fn frame_seeds() {
        for (target, role) in [
            ("frame_decoder_server", Role::Server),
            ("frame_decoder_client", Role::Client),
        ] {
            let seeds = seeds(target);
            assert!(seeds.len() >= 5, "{target}");
            let mut texts = 0;
            for raw in &seeds {
                fuzz_engine(role, raw);
                let input = Input::parse(raw).unwrap();
                let run = run_engine(
                    role,
                    Config::default(),
                    input.data,
                    &split(input.data.len(), &[]),
                    Drain::Never,
                );
                assert_eq!(run.error, None, "{target} seed {raw:?}");
                texts += run
                    .events
                    .iter()
                    .filter(|e| **e == Ev::Msg(DataKind::Text, b"Hello".to_vec()))
                    .count();
            }
            assert_eq!(texts, 2, "{target}: the unfragmented and fragmented Hello");
        }
    }
}
