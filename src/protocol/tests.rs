//! Engine tests: RFC 6455 section 5.7 examples, one table per rule, the
//! close handshake, and the property that any split of the input yields
//! the same events.

use super::frame::write_frame;
use super::*;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use proptest::prelude::*;

/// A deterministic random source for tests.
#[derive(Clone)]
pub(super) struct Counter(pub(super) u8);
impl RandomSource for Counter {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 = self.0.wrapping_mul(31).wrapping_add(7);
            *b = self.0;
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Ev {
    Msg(DataKind, Vec<u8>),
    Chunk {
        kind: DataKind,
        opcode: OpCode,
        data: Vec<u8>,
        fin: bool,
        frame_end: bool,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    Err(ProtocolError),
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
        },
        Event::Ping(d) => Ev::Ping(d.to_vec()),
        Event::Pong(d) => Ev::Pong(d.to_vec()),
        Event::Close(c) => Ev::Close(c.code, c.reason.into()),
    }
}

fn engine(role: Role) -> Engine<Counter> {
    Engine::new(role, Config::default(), Counter(1))
}

/// Feeds `input` in pieces cut at `cuts`; collects every event.
pub(super) fn feed_split(e: &mut Engine<Counter>, input: &[u8], cuts: &[usize]) -> Vec<Ev> {
    let mut events = Vec::new();
    let mut bounds: Vec<usize> = cuts.iter().copied().filter(|&c| c < input.len()).collect();
    bounds.sort_unstable();
    bounds.push(input.len());
    let mut start = 0;
    for end in bounds {
        let mut piece = input[start..end].to_vec();
        let mut pos = 0;
        loop {
            let len = piece.len();
            match e.read(&mut piece[pos..]) {
                Ok((n, ev)) => {
                    pos += n;
                    match ev {
                        Some(ev) => events.push(own(ev)),
                        None if n == 0 || pos == len => break,
                        None => {}
                    }
                }
                Err(err) => {
                    events.push(Ev::Err(err));
                    return events;
                }
            }
        }
        assert_eq!(pos, piece.len(), "every byte is consumed");
        start = end;
    }
    events
}

pub(super) fn feed(e: &mut Engine<Counter>, input: &[u8]) -> Vec<Ev> {
    feed_split(e, input, &[])
}

/// A frame as a client sends it (masked with a fixed key).
fn cframe(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    write_frame(&mut v, fin, op, Some([0xa1, 0xb2, 0xc3, 0xd4]), payload);
    v
}

/// A frame as a server sends it (unmasked).
fn sframe(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    write_frame(&mut v, fin, op, None, payload);
    v
}

pub(super) fn close_code_sent(e: &Engine<Counter>) -> Option<u16> {
    let out = e.output();
    // Find the last close frame in the output (server role: unmasked).
    let mut pos = 0;
    let mut code = None;
    while let Ok(Some((h, n))) = FrameHeader::decode(&out[pos..]) {
        let mut payload = out[pos + n..pos + n + h.payload_len as usize].to_vec();
        if let Some(k) = h.mask {
            mask::apply_mask(&mut payload, k, 0);
        }
        if h.opcode == 8 {
            code = Some(if payload.len() >= 2 {
                u16::from_be_bytes([payload[0], payload[1]])
            } else {
                1005
            });
        }
        pos += n + h.payload_len as usize;
    }
    code
}

// ------------------------------------------------------------ RFC 5.7

#[test]
fn rfc_5_7_examples_as_client() {
    let mut c = engine(Role::Client);
    // A single-frame unmasked text message.
    assert_eq!(
        feed(&mut c, &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]),
        vec![Ev::Msg(DataKind::Text, b"Hello".to_vec())]
    );
    // A fragmented unmasked text message.
    assert_eq!(
        feed(
            &mut c,
            &[0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]
        ),
        vec![Ev::Msg(DataKind::Text, b"Hello".to_vec())]
    );
    // Unmasked Pong answering a ping.
    assert_eq!(
        feed(&mut c, &[0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]),
        vec![Ev::Pong(b"Hello".to_vec())]
    );
    // 256 bytes and 64 KiB binary messages in single unmasked frames.
    for len in [256usize, 65536] {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut f = if len == 256 {
            vec![0x82, 0x7e, 0x01, 0x00]
        } else {
            vec![0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]
        };
        f.extend_from_slice(&payload);
        assert_eq!(feed(&mut c, &f), vec![Ev::Msg(DataKind::Binary, payload)]);
    }
}

#[test]
fn rfc_5_7_examples_as_server() {
    let mut s = engine(Role::Server);
    // A single-frame masked text message.
    let f = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(
        feed(&mut s, &f),
        vec![Ev::Msg(DataKind::Text, b"Hello".to_vec())]
    );
    // Unmasked Ping request, masked ping answered by an unmasked pong.
    let ping = [
        0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(feed(&mut s, &ping), vec![Ev::Ping(b"Hello".to_vec())]);
    assert_eq!(s.output(), &[0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
}

// ------------------------------------------------------------ rules

#[test]
fn frame_rules_table() {
    use ProtocolError::*;
    // (role that receives, bytes, expected error, close code sent)
    let cases: Vec<(Role, Vec<u8>, ProtocolError, u16)> = vec![
        (Role::Server, sframe(true, 1, b"x"), UnmaskedFrame, 1002),
        (Role::Client, cframe(true, 1, b"x"), MaskedFrame, 1002),
        (Role::Client, vec![0xc1, 0x00], ReservedBits, 1002),
        (Role::Client, vec![0xa1, 0x00], ReservedBits, 1002),
        (Role::Client, vec![0x91, 0x00], ReservedBits, 1002),
        (Role::Client, vec![0x83, 0x00], ReservedOpcode(3), 1002),
        (Role::Client, vec![0x8b, 0x00], ReservedOpcode(11), 1002),
        (Role::Client, vec![0x09, 0x00], FragmentedControl, 1002),
        (
            Role::Client,
            sframe(true, 9, &[0; 126]),
            ControlTooLong(126),
            1002,
        ),
        (
            Role::Client,
            vec![0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0],
            LengthOverflow,
            1002,
        ),
        (
            Role::Client,
            sframe(true, 0, b"x"),
            UnexpectedContinuation,
            1002,
        ),
        (
            Role::Client,
            [sframe(false, 1, b"a"), sframe(true, 2, b"b")].concat(),
            InterleavedMessage,
            1002,
        ),
        (
            Role::Client,
            [sframe(false, 2, b"a"), sframe(true, 1, b"b")].concat(),
            InterleavedMessage,
            1002,
        ),
        (Role::Client, sframe(true, 1, b"\xff"), InvalidUtf8, 1007),
        (Role::Client, sframe(true, 8, b"\x03"), CloseLength, 1002),
        (
            Role::Client,
            sframe(true, 8, &1005u16.to_be_bytes()),
            InvalidCloseCode(1005),
            1002,
        ),
        (
            Role::Client,
            sframe(true, 8, b"\x03\xe8\xc3"),
            InvalidCloseReason,
            1007,
        ),
    ];
    for (role, bytes, err, code) in cases {
        let mut e = engine(role);
        let events = feed(&mut e, &bytes);
        assert_eq!(events.last(), Some(&Ev::Err(err.clone())), "{bytes:x?}");
        assert_eq!(err.close_code(), code);
        assert_eq!(close_code_sent(&e), Some(code), "{bytes:x?}");
        assert!(e.is_closed());
        // A failed engine stays failed.
        let mut more = [0x81, 0x00];
        assert!(e.read(&mut more).is_err());
    }
}

#[test]
fn fragments_with_control_frames_between() {
    let mut s = engine(Role::Server);
    let input = [
        cframe(false, 1, b"Hel"),
        cframe(true, 9, b"p1"),
        cframe(false, 0, b""),
        cframe(true, 10, b"p2"),
        cframe(true, 0, b"lo"),
    ]
    .concat();
    assert_eq!(
        feed(&mut s, &input),
        vec![
            Ev::Ping(b"p1".to_vec()),
            Ev::Pong(b"p2".to_vec()),
            Ev::Msg(DataKind::Text, b"Hello".to_vec())
        ]
    );
}

#[test]
fn utf8_fails_in_the_middle_of_a_frame() {
    // Bytes before the bad sequence arrive; the error comes with the bad
    // byte, before the frame (of 1000 bytes) has ended.
    let mut payload = vec![b'a'; 1000];
    payload[10] = 0xed;
    payload[11] = 0xa0; // surrogate: impossible from here on
    let f = sframe(true, 1, &payload);
    let mut c = engine(Role::Client);
    let mut first = f[..4 + 12].to_vec();
    let r = c.read(&mut first).map(|(n, _)| n);
    assert_eq!(r.err(), Some(ProtocolError::InvalidUtf8));
    // Split across fragments: the first fragment ends with a lead byte.
    let mut c = engine(Role::Client);
    let input = [
        sframe(false, 1, b"ok\xf0\x9f"),
        sframe(true, 0, b"\x98\x80"),
    ]
    .concat();
    assert_eq!(
        feed(&mut c, &input),
        vec![Ev::Msg(DataKind::Text, "ok😀".as_bytes().to_vec())]
    );
    let mut c = engine(Role::Client);
    let input = [sframe(false, 1, b"ok\xf0\x9f"), sframe(true, 0, b"\x98")].concat();
    assert_eq!(
        feed(&mut c, &input),
        vec![Ev::Err(ProtocolError::InvalidUtf8)]
    );
    // In partial mode the bad byte is caught in the chunk that carries it.
    let mut c = Engine::new(
        Role::Client,
        Config {
            delivery: Delivery::Partial,
            ..Config::default()
        },
        Counter(0),
    );
    let input = [sframe(false, 1, b"ok"), sframe(true, 0, b"\xc0\xaf")].concat();
    let events = feed(&mut c, &input);
    assert_eq!(events.len(), 2);
    assert_eq!(events[1], Ev::Err(ProtocolError::InvalidUtf8));
}

#[test]
fn no_memory_for_a_message_closes_1009() {
    // Limits far above what any heap has: a frame announcing 2^62 bytes
    // (the client sends the first ones) cannot get its buffer. The
    // connection fails with 1009 instead of the program aborting.
    let cfg = Config {
        max_frame_size: 1 << 62,
        max_message_size: 1 << 62,
        ..Config::default()
    };
    let mut c = Engine::new(Role::Client, cfg, Counter(0));
    let mut input = vec![0x82, 0x7f, 0x40, 0, 0, 0, 0, 0, 0, 0];
    input.extend_from_slice(&[7u8; 64]);
    let events = feed(&mut c, &input);
    assert_eq!(
        events.last(),
        Some(&Ev::Err(ProtocolError::OutOfMemory { max: 1 << 62 }))
    );
    assert_eq!(close_code_sent(&c), Some(1009));
}

#[test]
fn size_limits_before_allocation() {
    let cfg = Config {
        max_frame_size: 100,
        max_message_size: 150,
        ..Config::default()
    };
    // A frame header announcing more than the limit fails at once, before
    // any payload arrives (nothing is buffered for it).
    let mut c = Engine::new(Role::Client, cfg, Counter(0));
    let mut big = [0x82, 0x7f, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff];
    let r = c.read(&mut big).map(|(n, _)| n);
    assert_eq!(
        r.err(),
        Some(ProtocolError::FrameTooLarge {
            len: 0x7fff_ffff,
            max: 100
        })
    );
    assert_eq!(close_code_sent(&c), Some(1009));
    assert_eq!(c.buffered_len(), 0);
    // The same for a whole short frame that is all there.
    let mut c = Engine::new(Role::Client, cfg, Counter(0));
    assert_eq!(
        feed(&mut c, &sframe(true, 2, &[0; 101])),
        vec![Ev::Err(ProtocolError::FrameTooLarge { len: 101, max: 100 })]
    );
    let small_messages = Config {
        max_message_size: 50,
        ..cfg
    };
    let mut c = Engine::new(Role::Client, small_messages, Counter(0));
    assert_eq!(
        feed(&mut c, &sframe(true, 1, &[b'a'; 51])),
        vec![Ev::Err(ProtocolError::MessageTooLarge { max: 50 })]
    );
    // Fragments each under the frame limit but over the message limit.
    let mut c = Engine::new(Role::Client, cfg, Counter(0));
    let input = [sframe(false, 2, &[0; 100]), sframe(true, 0, &[0; 51])].concat();
    assert_eq!(
        feed(&mut c, &input).last(),
        Some(&Ev::Err(ProtocolError::MessageTooLarge { max: 150 }))
    );
    assert_eq!(close_code_sent(&c), Some(1009));
    // Exactly at the limits is fine.
    let mut c = Engine::new(Role::Client, cfg, Counter(0));
    let input = [sframe(false, 2, &[0; 100]), sframe(true, 0, &[0; 50])].concat();
    assert_eq!(
        feed(&mut c, &input),
        vec![Ev::Msg(DataKind::Binary, vec![0; 150])]
    );
}

#[test]
fn partial_delivery_hands_out_pieces() {
    let cfg = Config {
        delivery: Delivery::Partial,
        ..Config::default()
    };
    let mut c = Engine::new(Role::Client, cfg, Counter(0));
    let input = [sframe(false, 2, b"abcdef"), sframe(true, 0, b"gh")].concat();
    let events = feed_split(&mut c, &input, &[5]);
    let chunk = |opcode, data: &[u8], fin, frame_end| Ev::Chunk {
        kind: DataKind::Binary,
        opcode,
        data: data.to_vec(),
        fin,
        frame_end,
    };
    assert_eq!(
        events,
        vec![
            chunk(OpCode::Binary, b"abc", false, false),
            chunk(OpCode::Binary, b"def", false, true),
            chunk(OpCode::Continuation, b"gh", true, true),
        ]
    );
    // A whole message in one frame, all in one read, is a piece too.
    let mut s = Engine::new(Role::Server, cfg, Counter(0));
    assert_eq!(
        feed(&mut s, &cframe(true, 1, b"whole")),
        vec![Ev::Chunk {
            kind: DataKind::Text,
            opcode: OpCode::Text,
            data: b"whole".to_vec(),
            fin: true,
            frame_end: true,
        }]
    );
}

#[test]
fn whole_frames_in_one_read_or_cut_anywhere() {
    // Messages each in one frame, as most traffic is (the engine's one-pass
    // path), with the edge cases of that path: empty, a second header byte
    // that looks like a first one (0x82: masked, length 2), a 16-bit
    // length, non-ASCII text.
    let long: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
    let messages = [
        (DataKind::Text, Vec::new()),
        (DataKind::Binary, vec![1, 2]),
        (DataKind::Text, "héllo".as_bytes().to_vec()),
        (DataKind::Binary, long),
        (DataKind::Text, b"ok".to_vec()),
    ];
    let input: Vec<u8> = messages
        .iter()
        .flat_map(|(k, p)| cframe(true, if *k == DataKind::Text { 1 } else { 2 }, p))
        .collect();
    let expect: Vec<Ev> = messages
        .iter()
        .map(|(k, p)| Ev::Msg(*k, p.clone()))
        .collect();
    for cut in 0..input.len() {
        let mut s = engine(Role::Server);
        assert_eq!(feed_split(&mut s, &input, &[cut]), expect, "cut at {cut}");
    }
    // Invalid UTF-8 in such a frame closes with 1007 as in any other.
    let mut s = engine(Role::Server);
    assert_eq!(
        feed(&mut s, &cframe(true, 1, &[b'a', 0xff])),
        vec![Ev::Err(ProtocolError::InvalidUtf8)]
    );
    assert_eq!(close_code_sent(&s), Some(1007));
}

#[test]
fn ping_pong_and_unsolicited_pong() {
    let mut c = engine(Role::Client);
    assert_eq!(
        feed(&mut c, &sframe(true, 9, b"abc")),
        vec![Ev::Ping(b"abc".to_vec())]
    );
    // The client's pong is masked and carries the same payload.
    let out = c.output().to_vec();
    let (h, n) = FrameHeader::decode(&out).unwrap().unwrap();
    assert_eq!((h.opcode, h.fin, h.payload_len), (10, true, 3));
    let mut p = out[n..].to_vec();
    mask::apply_mask(&mut p, h.mask.expect("client masks"), 0);
    assert_eq!(p, b"abc");
    c.consume_output(out.len());
    assert!(!c.want_write());
    // An unsolicited pong is reported and otherwise ignored.
    assert_eq!(
        feed(&mut c, &sframe(true, 10, b"zz")),
        vec![Ev::Pong(b"zz".to_vec())]
    );
    assert!(!c.want_write());
    // A ping split across reads.
    let events = feed_split(&mut c, &sframe(true, 9, b"0123456789"), &[1, 3, 7]);
    assert_eq!(events, vec![Ev::Ping(b"0123456789".to_vec())]);
}

#[test]
fn close_handshake_peer_initiated() {
    let mut s = engine(Role::Server);
    let events = feed(&mut s, &cframe(true, 8, b"\x0b\xb8going"));
    assert_eq!(events, vec![Ev::Close(Some(3000), "going".into())]);
    // The peer's code is echoed.
    assert_eq!(close_code_sent(&s), Some(3000));
    assert!(s.is_closed() && s.close_sent() && s.close_received());
    // No data after our close.
    assert_eq!(s.send_text("late"), Err(SendError::Closed));
    assert_eq!(s.send_ping(b""), Err(SendError::Closed));
    // Empty close is answered with an empty close and reported as 1005.
    let mut s = engine(Role::Server);
    let events = feed(&mut s, &cframe(true, 8, b""));
    assert_eq!(events, vec![Ev::Close(None, String::new())]);
    assert_eq!(s.output(), &[0x88, 0x00]);
    assert_eq!(CloseFrame::parse(&[]).unwrap().status(), 1005);
    // Data after the peer's close is ignored.
    assert_eq!(feed(&mut s, &cframe(true, 1, b"x")), vec![]);
}

#[test]
fn close_handshake_locally_initiated() {
    let mut c = engine(Role::Client);
    c.close(Some(1000), b"bye").unwrap();
    assert!(c.close_sent() && !c.is_closed());
    // Data that was in flight is not delivered, but the peer's close is.
    let input = [
        sframe(true, 1, b"in flight"),
        sframe(true, 8, &1000u16.to_be_bytes()),
    ]
    .concat();
    assert_eq!(
        feed(&mut c, &input),
        vec![Ev::Close(Some(1000), String::new())]
    );
    assert!(c.is_closed());
    // Only one close frame was sent.
    let out = c.output();
    let (h, n) = FrameHeader::decode(out).unwrap().unwrap();
    assert_eq!(out.len(), n + h.payload_len as usize);
}

#[test]
fn every_close_code_we_may_send() {
    for code in 0..=u16::MAX {
        let mut s = engine(Role::Server);
        let r = s.close(Some(code), b"");
        // The application's code goes out as given (nopoll's listener
        // closes with 1048), except those RFC 6455 forbids on the wire.
        if close::is_sendable_close_code(code) {
            assert_eq!(r, Ok(()));
            assert_eq!(close_code_sent(&s), Some(code));
        } else {
            assert_eq!(r, Err(SendError::InvalidCloseCode(code)), "{code}");
            assert!(!s.want_write());
        }
    }
    let mut s = engine(Role::Server);
    assert_eq!(s.close(None, b"why"), Err(SendError::InvalidCloseReason));
    assert_eq!(
        s.close(Some(1000), &[b'a'; 124]),
        Err(SendError::InvalidCloseReason)
    );
    assert_eq!(
        s.close(Some(1000), b"\xff"),
        Err(SendError::InvalidCloseReason)
    );
    assert_eq!(s.close(Some(1000), &[b'a'; 123]), Ok(()));
}

#[test]
fn a_reserved_code_goes_out_verbatim_with_its_reason() {
    let mut s = engine(Role::Server);
    s.close(Some(1048), b"reasonable").unwrap();
    let out = s.output().to_vec();
    assert_eq!(out, sframe(true, 8, b"\x04\x18reasonable"));
    for never in [1005, 1006, 1015] {
        let mut s = engine(Role::Server);
        assert_eq!(
            s.close(Some(never), b""),
            Err(SendError::InvalidCloseCode(never))
        );
    }
}

#[test]
fn a_refused_close_code_is_answered_1002_and_reported() {
    for (code, reason) in [
        (1004u16, &b"odd"[..]),
        (1048, b"upstream listener"),
        (5000, b""),
        (999, b"low"),
        (1005, b"forbidden"),
    ] {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason);
        // Whole in the input, and cut inside the frame (kept in pieces).
        for cut in [0usize, 3] {
            let mut c = engine(Role::Client);
            let input = sframe(true, 8, &payload);
            assert_eq!(
                feed_split(&mut c, &input, &[cut]),
                vec![Ev::Err(ProtocolError::InvalidCloseCode(code))]
            );
            assert_eq!(close_code_sent(&c), Some(1002));
            assert_eq!(
                c.refused_close(),
                Some((code, core::str::from_utf8(reason).unwrap()))
            );
        }
    }
    // Not UTF-8: the code alone.
    let mut c = engine(Role::Client);
    feed(&mut c, &sframe(true, 8, b"\x03\xec\xff"));
    assert_eq!(c.refused_close(), Some((1004, "")));
    // Other failures, and accepted close frames, report nothing here.
    let mut c = engine(Role::Client);
    feed(&mut c, &sframe(true, 8, b"\x03\xe8\xff"));
    assert_eq!(close_code_sent(&c), Some(1007));
    assert_eq!(c.refused_close(), None);
    let mut c = engine(Role::Client);
    feed(&mut c, &sframe(true, 8, b"\x03\xe8ok"));
    assert_eq!(c.refused_close(), None);
}

#[test]
fn upstream_fragments_need_the_legacy_switch() {
    // Upstream nopoll sends every fragment with the message's opcode.
    let upstream = [
        cframe(false, 1, b"ab"),
        cframe(false, 1, b"cd"),
        cframe(true, 1, b"ef"),
        cframe(false, 2, b"gh"),
        cframe(true, 2, b"ij"),
        cframe(false, 1, b"kl"),
        cframe(true, 0, b"mn"),
    ]
    .concat();
    let mut s = engine(Role::Server);
    let events = feed(&mut s, &upstream);
    assert_eq!(events, vec![Ev::Err(ProtocolError::InterleavedMessage)]);
    assert_eq!(close_code_sent(&s), Some(1002));
    assert!(ProtocolError::InterleavedMessage
        .to_string()
        .contains("nopoll_ctx_set_legacy_fragments"));
    let legacy = Config {
        legacy_fragments: true,
        ..Config::default()
    };
    let want = vec![
        Ev::Msg(DataKind::Text, b"abcdef".to_vec()),
        Ev::Msg(DataKind::Binary, b"ghij".to_vec()),
        Ev::Msg(DataKind::Text, b"klmn".to_vec()),
    ];
    for cut in 0..upstream.len() {
        let mut s = Engine::new(Role::Server, legacy, Counter(1));
        assert_eq!(feed_split(&mut s, &upstream, &[cut]), want, "cut {cut}");
    }
    // Pieces: the repeated opcode is reported as a continuation.
    let mut s = Engine::new(
        Role::Server,
        Config {
            delivery: Delivery::Partial,
            ..legacy
        },
        Counter(1),
    );
    let events = feed(
        &mut s,
        &[cframe(false, 1, b"ab"), cframe(true, 1, b"cd")].concat(),
    );
    let opcodes: Vec<_> = events
        .iter()
        .map(|e| match e {
            Ev::Chunk { opcode, kind, .. } => (*opcode, *kind),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        opcodes,
        vec![
            (OpCode::Text, DataKind::Text),
            (OpCode::Continuation, DataKind::Text)
        ]
    );
    // UTF-8 is still checked across the pieces, and a continuation
    // without a message is still an error.
    let mut s = Engine::new(Role::Server, legacy, Counter(1));
    let bad = [cframe(false, 1, b"\xc3"), cframe(true, 1, b"(")].concat();
    assert_eq!(
        feed(&mut s, &bad),
        vec![Ev::Err(ProtocolError::InvalidUtf8)]
    );
    let mut s = Engine::new(Role::Server, legacy, Counter(1));
    assert_eq!(
        feed(&mut s, &cframe(true, 0, b"x")),
        vec![Ev::Err(ProtocolError::UnexpectedContinuation)]
    );
}

#[test]
fn sending_fragments_and_masking() {
    let mut c = engine(Role::Client);
    c.send(DataKind::Text, "hé".as_bytes(), false).unwrap();
    // Continuation follows automatically, whatever kind is asked for.
    c.send(DataKind::Binary, b"llo", true).unwrap();
    c.send_binary(&[1, 2, 3]).unwrap();
    c.send_ping(b"p").unwrap();
    assert_eq!(c.send_ping(&[0; 126]), Err(SendError::ControlTooLong));
    // Invalid text is refused and nothing is queued.
    let before = c.output().len();
    assert_eq!(
        c.send(DataKind::Text, b"\xff", true),
        Err(SendError::InvalidUtf8)
    );
    assert_eq!(c.output().len(), before);
    // A server decodes exactly that, and fresh keys were used per frame.
    let out = c.output().to_vec();
    let mut keys = Vec::new();
    let mut pos = 0;
    while let Ok(Some((h, n))) = FrameHeader::decode(&out[pos..]) {
        keys.push(h.mask.unwrap());
        pos += n + h.payload_len as usize;
    }
    assert_eq!(keys.len(), 4);
    keys.dedup();
    assert_eq!(keys.len(), 4, "a fresh key for every frame");
    let mut s = engine(Role::Server);
    assert_eq!(
        feed(&mut s, &out),
        vec![
            Ev::Msg(DataKind::Text, "héllo".as_bytes().to_vec()),
            Ev::Msg(DataKind::Binary, vec![1, 2, 3]),
            Ev::Ping(b"p".to_vec()),
        ]
    );
    // Server frames are never masked.
    s.send_text("x").unwrap();
    assert_eq!(&s.output()[s.output().len() - 3..], &[0x81, 0x01, b'x']);
}

#[test]
fn raw_frames_and_output_accounting() {
    let mut s = engine(Role::Server);
    s.send_raw_frame(false, 3, false, b"ab").unwrap();
    assert_eq!(s.output(), &[0x03, 0x02, b'a', b'b']);
    s.consume_output(1);
    assert_eq!(s.output(), &[0x02, b'a', b'b']);
    s.send_raw_frame(true, 1, true, b"").unwrap();
    assert_eq!(s.output().len(), 3 + 6);
    s.consume_output(100);
    assert!(!s.want_write());
    s.shrink();
}

// ------------------------------------------------------------ property

fn arb_frames(role_of_sender: Role) -> impl Strategy<Value = Vec<u8>> {
    let frame = (
        0u8..6,
        proptest::collection::vec(any::<u8>(), 0..300),
        any::<bool>(),
    );
    proptest::collection::vec(frame, 1..12).prop_map(move |frames| {
        let mut out = Vec::new();
        let mut fragmenting = false;
        for (kind, payload, more) in frames {
            let mask = match role_of_sender {
                Role::Client => Some([payload.len() as u8, 3, 5, 7]),
                Role::Server => None,
            };
            match kind {
                0 => write_frame(&mut out, true, 9, mask, &payload[..payload.len().min(125)]),
                1 => write_frame(&mut out, true, 10, mask, &payload[..payload.len().min(20)]),
                2 => {
                    // text: make it valid UTF-8 (or not, sometimes)
                    let text: String = payload
                        .iter()
                        .map(|&b| char::from_u32(b as u32 * 37).unwrap_or('x'))
                        .collect();
                    let op = if fragmenting { 0 } else { 1 };
                    fragmenting = more;
                    write_frame(&mut out, !more, op, mask, text.as_bytes());
                }
                3 | 4 => {
                    let op = if fragmenting { 0 } else { 2 };
                    fragmenting = more;
                    write_frame(&mut out, !more, op, mask, &payload);
                }
                _ => write_frame(&mut out, true, 1, mask, &payload), // may be invalid UTF-8 or interleaved
            }
        }
        if !fragmenting {
            write_frame(&mut out, true, 8, mask_for(role_of_sender), &[0x03, 0xe8]);
        }
        out
    })
}

fn mask_for(r: Role) -> Option<[u8; 4]> {
    match r {
        Role::Client => Some([9, 9, 9, 9]),
        Role::Server => None,
    }
}

/// In partial mode the pieces depend on the split; merge them per message.
fn merge_chunks(events: Vec<Ev>) -> Vec<Ev> {
    let mut out = Vec::new();
    let mut cur: Option<(DataKind, Vec<u8>)> = None;
    for e in events {
        match e {
            Ev::Chunk {
                kind,
                data,
                fin,
                frame_end,
                ..
            } => {
                let c = cur.get_or_insert((kind, Vec::new()));
                c.1.extend_from_slice(&data);
                if fin && frame_end {
                    let (k, d) = cur.take().unwrap();
                    out.push(Ev::Msg(k, d));
                }
            }
            other => out.push(other),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_split_gives_the_same_events(
        input in arb_frames(Role::Client),
        cuts in proptest::collection::vec(0usize..4000, 0..20),
        partial in any::<bool>(),
    ) {
        let cfg = Config { delivery: if partial { Delivery::Partial } else { Delivery::Messages }, ..Config::default() };
        let mut whole = Engine::new(Role::Server, cfg, Counter(0));
        let mut split = Engine::new(Role::Server, cfg, Counter(0));
        let a = feed(&mut whole, &input);
        let b = feed_split(&mut split, &input, &cuts);
        prop_assert_eq!(merge_chunks(a), merge_chunks(b));
        prop_assert_eq!(whole.output(), split.output());
    }

    #[test]
    fn one_byte_at_a_time_as_client(input in arb_frames(Role::Server)) {
        let mut whole = engine(Role::Client);
        let mut split = engine(Role::Client);
        let cuts: Vec<usize> = (1..input.len()).collect();
        prop_assert_eq!(feed(&mut whole, &input), feed_split(&mut split, &input, &cuts));
    }

    #[test]
    fn in_pieces_as_server_equals_byte_by_byte(
        input in arb_frames(Role::Client),
        cuts in proptest::collection::vec(0usize..4000, 0..20),
    ) {
        // Byte by byte never has a whole frame at hand; in pieces (or whole)
        // most frames are.
        let mut pieces = engine(Role::Server);
        let mut bytes = engine(Role::Server);
        let every: Vec<usize> = (1..input.len()).collect();
        prop_assert_eq!(feed_split(&mut pieces, &input, &cuts), feed_split(&mut bytes, &input, &every));
        prop_assert_eq!(pieces.output(), bytes.output());
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..600), server in any::<bool>()) {
        let mut e = engine(if server { Role::Server } else { Role::Client });
        let _ = feed(&mut e, &input);
    }
}
