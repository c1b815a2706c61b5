//! Engine tests with permessage-deflate (RFC 7692) negotiated: the RFC's
//! examples, both roles talking to each other, RSV1 rules, the message
//! limit while inflating, malformed streams.

use super::frame::write_frame;
use super::tests::{close_code_sent, feed, feed_split, Counter, Ev};
use super::*;
use alloc::vec;
use alloc::vec::Vec;

fn params(no_takeover: bool) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: no_takeover,
        client_no_context_takeover: no_takeover,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
        level: 6,
        ..DeflateParams::default()
    }
}

fn engine_with(role: Role, deflate: Option<DeflateParams>, max_message: u64) -> Engine<Counter> {
    let cfg = Config {
        deflate,
        max_message_size: max_message,
        ..Config::default()
    };
    Engine::new(role, cfg, Counter(3))
}

fn deflating(role: Role, no_takeover: bool) -> Engine<Counter> {
    engine_with(role, Some(params(no_takeover)), 64 << 20)
}

/// Moves everything `from` has queued into `to`.
fn pipe(from: &mut Engine<Counter>, to: &mut Engine<Counter>) -> Vec<Ev> {
    let bytes = from.output().to_vec();
    from.consume_output(bytes.len());
    feed(to, &bytes)
}

/// (first header byte, payload length) of every frame in `out`.
fn frames(out: &[u8]) -> Vec<(u8, u64)> {
    let mut pos = 0;
    let mut v = Vec::new();
    while let Ok(Some((h, n))) = FrameHeader::decode(&out[pos..]) {
        v.push((out[pos], h.payload_len));
        pos += n + h.payload_len as usize;
    }
    v
}

fn text(s: &str) -> Ev {
    Ev::Msg(DataKind::Text, s.as_bytes().to_vec())
}

#[test]
fn rfc_7692_examples_received_in_any_split() {
    let mut input = Vec::new();
    // 7.2.3.1: "Hello" in one compressed frame.
    input.extend_from_slice(&[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    // 7.2.3.2: the same again, referring to the first (context takeover).
    input.extend_from_slice(&[0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00]);
    // 7.2.3.3: a stored (uncompressed) block.
    input.extend_from_slice(&[
        0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ]);
    // 7.2.3.1: fragmented, RSV1 on the first frame only, a ping between.
    input.extend_from_slice(&[0x41, 0x03, 0xf2, 0x48, 0xcd]);
    input.extend_from_slice(&[0x89, 0x01, b'p']);
    input.extend_from_slice(&[0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00]);
    // 7.2.3.4: a final block (BFINAL), with the trailing byte the RFC shows.
    input.extend_from_slice(&[0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]);
    // An uncompressed message between compressed ones.
    input.extend_from_slice(&[0x81, 0x02, b'o', b'k']);
    let expect = vec![
        text("Hello"),
        text("Hello"),
        text("Hello"),
        Ev::Ping(b"p".to_vec()),
        text("Hello"),
        text("Hello"),
        text("ok"),
    ];
    let mut c = deflating(Role::Client, false);
    assert_eq!(feed(&mut c, &input), expect);
    let every: Vec<usize> = (1..input.len()).collect();
    let mut c = deflating(Role::Client, false);
    assert_eq!(feed_split(&mut c, &input, &every), expect);
}

#[test]
fn both_roles_round_trip_fragments_and_control_frames() {
    let json: Vec<u8> = (0..50)
        .flat_map(|i| alloc::format!("{{\"id\":{i},\"temp\":21.5,\"ok\":true}}").into_bytes())
        .collect();
    let noise: Vec<u8> = (0..4000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    for no_takeover in [false, true] {
        let mut c = deflating(Role::Client, no_takeover);
        let mut s = deflating(Role::Server, no_takeover);
        for _ in 0..3 {
            c.send(DataKind::Text, &json, true).unwrap();
            let sent = frames(c.output());
            assert_eq!(sent.len(), 1);
            assert_eq!(sent[0].0, 0xc1, "FIN + RSV1 + text");
            assert!(sent[0].1 < json.len() as u64 / 3, "{}", sent[0].1);
            assert_eq!(
                pipe(&mut c, &mut s),
                vec![Ev::Msg(DataKind::Text, json.clone())]
            );
            // Fragmented, with a ping in between, server to client.
            s.send(DataKind::Binary, &noise[..1000], false).unwrap();
            s.send_ping(b"x").unwrap();
            s.send(DataKind::Binary, &noise[1000..], false).unwrap();
            s.send(DataKind::Binary, &[], true).unwrap();
            let heads: Vec<u8> = frames(s.output()).iter().map(|f| f.0).collect();
            assert_eq!(heads, vec![0x42, 0x89, 0x00, 0x80]);
            assert_eq!(
                pipe(&mut s, &mut c),
                vec![
                    Ev::Ping(b"x".to_vec()),
                    Ev::Msg(DataKind::Binary, noise.clone())
                ]
            );
            // The pong the client queued goes back uncompressed.
            assert_eq!(pipe(&mut c, &mut s), vec![Ev::Pong(b"x".to_vec())]);
            // An empty message.
            s.send_text("").unwrap();
            assert_eq!(pipe(&mut s, &mut c), vec![text("")]);
        }
        // Without takeover nothing is kept between messages.
        assert_eq!(c.compression_state_bytes() == 0, no_takeover);
        assert_eq!(s.compression_state_bytes() == 0, no_takeover);
    }
}

#[test]
fn rsv1_rules() {
    let with = |bytes: &[u8]| {
        let mut c = deflating(Role::Client, false);
        let ev = feed(&mut c, bytes);
        (ev, close_code_sent(&c))
    };
    let bad = |e| (vec![Ev::Err(e)], Some(1002));
    // Without the extension RSV1 is a protocol error.
    let mut plain = engine_with(Role::Client, None, 1 << 20);
    assert_eq!(
        feed(
            &mut plain,
            &[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        ),
        vec![Ev::Err(ProtocolError::ReservedBits)]
    );
    assert_eq!(close_code_sent(&plain), Some(1002));
    // With it: not on a continuation, not on a control frame, and RSV2/3
    // stay reserved.
    assert_eq!(
        with(&[0x01, 0x01, 0x00, 0xc0, 0x00]),
        bad(ProtocolError::ReservedBits)
    );
    assert_eq!(with(&[0xc9, 0x00]), bad(ProtocolError::ReservedBits));
    assert_eq!(with(&[0xa1, 0x00]), bad(ProtocolError::ReservedBits));
    assert_eq!(with(&[0x91, 0x00]), bad(ProtocolError::ReservedBits));
}

#[test]
fn a_decompression_bomb_stops_at_the_message_limit() {
    let zeros = vec![0u8; 10 << 20];
    for pieces in [1usize, 7] {
        let mut c = deflating(Role::Client, false);
        let chunk = zeros.len() / pieces + 1;
        let parts: Vec<&[u8]> = zeros.chunks(chunk).collect();
        for (i, p) in parts.iter().enumerate() {
            c.send(DataKind::Binary, p, i + 1 == parts.len()).unwrap();
        }
        assert!(c.output_len() < 64 * 1024, "{}", c.output_len());
        let mut s = engine_with(Role::Server, Some(params(false)), 1 << 20);
        assert_eq!(
            pipe(&mut c, &mut s),
            vec![Ev::Err(ProtocolError::MessageTooLarge { max: 1 << 20 })]
        );
        assert_eq!(close_code_sent(&s), Some(1009));
        // Never more than the limit (+1 byte to see it exceeded).
        assert!(
            s.buffer_capacity() <= (1 << 20) + 1 + 64,
            "{}",
            s.buffer_capacity()
        );
    }
}

#[test]
fn the_limit_counts_inflated_bytes_exactly() {
    let data = vec![b'a'; 5000];
    let mut c = deflating(Role::Client, false);
    c.send(DataKind::Text, &data, true).unwrap();
    c.send(DataKind::Text, &data[..4999], true).unwrap();
    let mut s = engine_with(Role::Server, Some(params(false)), 4999);
    assert_eq!(
        pipe(&mut c, &mut s),
        vec![Ev::Err(ProtocolError::MessageTooLarge { max: 4999 })]
    );
    let mut c = deflating(Role::Client, false);
    c.send(DataKind::Text, &data[..4999], true).unwrap();
    let mut s = engine_with(Role::Server, Some(params(false)), 4999);
    assert_eq!(
        pipe(&mut c, &mut s),
        vec![Ev::Msg(DataKind::Text, data[..4999].to_vec())]
    );
}

#[test]
fn malformed_compressed_data_fails_with_1007() {
    for payload in [&[0xff, 0xff, 0xff][..], &[0x07][..]] {
        let mut c = deflating(Role::Client, false);
        let mut frame = Vec::new();
        write_frame(&mut frame, true, 2, None, payload);
        frame[0] |= 0x40;
        assert_eq!(
            feed(&mut c, &frame),
            vec![Ev::Err(ProtocolError::BadCompressedData)],
            "{payload:?}"
        );
        assert_eq!(close_code_sent(&c), Some(1007));
    }
    // Valid DEFLATE, invalid UTF-8 in a text message.
    let mut s = deflating(Role::Server, false);
    let mut c = deflating(Role::Client, false);
    s.send(DataKind::Binary, &[0xc3, 0x28], true).unwrap();
    let mut out = s.output().to_vec();
    out[0] = (out[0] & 0xf0) | 1;
    assert_eq!(
        feed(&mut c, &out),
        vec![Ev::Err(ProtocolError::InvalidUtf8)]
    );
    assert_eq!(close_code_sent(&c), Some(1007));
}

#[test]
fn partial_delivery_hands_out_inflated_pieces() {
    let msg: Vec<u8> = (0..20_000u32)
        .map(|i| b"abcdefgh"[(i % 8) as usize])
        .collect();
    let mut s = deflating(Role::Server, false);
    s.send(DataKind::Text, &msg[..9000], false).unwrap();
    s.send(DataKind::Text, &msg[9000..], true).unwrap();
    let wire = s.output().to_vec();
    let mut c = Engine::new(
        Role::Client,
        Config {
            delivery: Delivery::Partial,
            deflate: Some(params(false)),
            ..Config::default()
        },
        Counter(1),
    );
    let cuts: Vec<usize> = (1..wire.len()).step_by(3).collect();
    let mut got = Vec::new();
    let mut ends = 0;
    for ev in feed_split(&mut c, &wire, &cuts) {
        match ev {
            Ev::Chunk {
                kind: DataKind::Text,
                data,
                fin,
                frame_end,
                ..
            } => {
                got.extend_from_slice(&data);
                ends += usize::from(fin && frame_end);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, msg);
    assert_eq!(ends, 1);
}

#[test]
fn level_zero_sends_uncompressed_and_still_inflates() {
    let mut p = params(false);
    p.level = 0;
    let mut c = engine_with(Role::Client, Some(p), 1 << 20);
    let mut s = deflating(Role::Server, false);
    c.send_text("hello hello hello").unwrap();
    assert_eq!(frames(c.output())[0].0, 0x81);
    assert_eq!(pipe(&mut c, &mut s), vec![text("hello hello hello")]);
    s.send_text("hello hello hello").unwrap();
    assert_eq!(frames(s.output())[0].0, 0xc1);
    assert_eq!(pipe(&mut s, &mut c), vec![text("hello hello hello")]);
    assert_eq!(
        c.compression_state_bytes(),
        core::mem::size_of::<miniz_oxide::inflate::stream::InflateState>()
    );
}

/// The context-wide memory budget reads reassembly and output capacity:
/// the compressor's state counts as output, the inflater's as
/// reassembly, and neither stays counted after a message without
/// context takeover.
#[test]
fn compression_state_counts_in_the_buffers_the_budget_reads() {
    for no_takeover in [false, true] {
        let mut server = deflating(Role::Server, no_takeover);
        let mut client = deflating(Role::Client, no_takeover);
        let idle_out = server.output_capacity();
        server.send_text(&"json ".repeat(200)).unwrap();
        let sent_out = server.output_capacity();
        let got = pipe(&mut server, &mut client);
        assert_eq!(got, vec![text(&"json ".repeat(200))]);
        if no_takeover {
            assert!(server.compression_state_bytes() == 0, "compressor kept");
            assert!(client.compression_state_bytes() == 0, "inflater kept");
        } else {
            assert!(
                sent_out >= idle_out + 100 * 1024,
                "compressor not counted as output: {idle_out} -> {sent_out}"
            );
            assert!(
                client.reassembly_capacity() >= client.compression_state_bytes(),
                "inflater not counted as reassembly"
            );
            assert!(client.compression_state_bytes() > 0);
        }
    }
}
