//! A `ClientHandshake` with a fixed key, fed arbitrary bytes as the
//! server's answer in fuzzer-chosen pieces; then the same client fed a
//! valid 101 answer (followed by the fuzz bytes as frames), which must be
//! accepted whatever the cuts.
//!
//! Config byte: bits 0-1 pick the offered subprotocols, bits 2-4 the
//! limits (0 = default), bits 5-6 the subprotocol the valid answer picks,
//! bit 7 offers permessage-deflate (the valid answer then accepts it).
//! The fixed key is `AAECAwQFBgcICQoLDA0ODw==` (nonce bytes 0..16), so its
//! accept value is `Bz3qJYTGdOe8gUSpLosEdiLKDrk=` (used by the seeds).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nopoll::protocol::{
    accept_key, ClientHandshake, ClientRequest, DeflateConfig, HandshakeError, HandshakeLimits,
    Response, ServerHandshake, ServerOutcome,
};
use nopoll_fuzz::{is_exact_head, split, Input};
use std::ops::Range;

const OFFERS: [Option<&str>; 4] = [
    None,
    Some("chat"),
    Some("chat, superchat"),
    Some(" superchat,chat ,x"),
];
const HEADER_BYTES: [usize; 8] = [8192, 0, 1, 16, 64, 100, 200, 1024];

/// Builds the client with the fixed key; returns it and the key it sent.
fn client(
    protocols: Option<&str>,
    deflate: Option<DeflateConfig>,
    limits: HandshakeLimits,
) -> (ClientHandshake, String) {
    let mut next = 0u8;
    let mut rng = |buf: &mut [u8]| {
        for b in buf {
            *b = next;
            next = next.wrapping_add(1);
        }
    };
    let req = ClientRequest {
        host: "server.example.com",
        path: "/chat",
        origin: Some("http://example.com"),
        protocols,
        cookie: None,
        extra_headers: None,
        version: 0,
        deflate,
    };
    let (hs, request) = ClientHandshake::new(&req, limits, &mut rng).expect("a valid request");
    let text = String::from_utf8(request).expect("ASCII request");
    let key = text
        .split("\r\n")
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .expect("key line")
        .to_string();
    assert_eq!(key, "AAECAwQFBgcICQoLDA0ODw==");
    // Our own server accepts our own request.
    let mut server = ServerHandshake::new(HandshakeLimits::default());
    let (n, outcome) = server.feed(text.as_bytes());
    assert_eq!(n, text.len());
    match outcome {
        Some(ServerOutcome::Upgrade(up)) => {
            assert_eq!(up.accept_key().as_bytes(), &accept_key(key.as_bytes())[..]);
            assert_eq!(
                up.request.requested_protocols().as_deref(),
                protocols.map(str::trim)
            );
        }
        other => panic!("our server refused our request: {other:?}"),
    }
    (hs, key)
}

fn offered(protocols: Option<&str>) -> Vec<&str> {
    protocols
        .map(|p| {
            p.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Feeds the pieces until the client decides; returns the bytes consumed
/// and the decision (`Ok(None)`: the answer is unfinished).
fn feed(
    hs: &mut ClientHandshake,
    data: &[u8],
    ranges: &[Range<usize>],
) -> (usize, Result<Option<Response>, HandshakeError>) {
    let mut total = 0;
    for r in ranges {
        let piece = &data[r.clone()];
        match hs.feed(piece) {
            Ok((n, None)) => {
                assert_eq!(n, piece.len(), "an unfinished head takes every byte");
                total += n;
            }
            Ok((n, Some(resp))) => {
                assert!(n <= piece.len());
                total += n;
                assert!(
                    is_exact_head(&data[..total]),
                    "answer before the head ended"
                );
                return (total, Ok(Some(resp)));
            }
            Err(e) => return (total, Err(e)),
        }
    }
    (total, Ok(None))
}

fuzz_target!(|raw: &[u8]| {
    let Some(input) = Input::parse(raw) else {
        return;
    };
    let c = usize::from(input.config);
    let protocols = OFFERS[c & 3];
    let offers = offered(protocols);
    let limits = HandshakeLimits {
        max_header_bytes: HEADER_BYTES[(c >> 2) & 7],
        max_headers: 64,
    };
    let data = input.data;
    let pieces = split(data.len(), input.pieces);

    // 1. Arbitrary answers: the same decision whole or in pieces, and an
    //    accepted answer is a well-formed 101 whose protocol is flagged
    //    exactly when it is not one offered (kept, as nopoll clients do).
    let deflate = (c & 0x80 != 0).then(DeflateConfig::default);
    let (mut hs, key) = client(protocols, deflate, limits);
    let whole = feed(&mut hs.clone(), data, &split(data.len(), &[]));
    let split_run = feed(&mut hs, data, &pieces);
    assert_eq!(whole.1, split_run.1, "whole vs split");
    if let Ok(Some(resp)) = &whole.1 {
        assert_eq!(whole.0, split_run.0);
        assert_eq!(resp.status, 101);
        assert!(whole.0 <= limits.max_header_bytes);
        let offered = resp
            .protocol
            .as_deref()
            .is_none_or(|p| offers.contains(&p.trim_matches([' ', '\t'])));
        assert_eq!(
            resp.unoffered_protocol, !offered,
            "{:?} flagged wrongly",
            resp.protocol
        );
        assert!(
            deflate.is_some() || resp.deflate.is_none(),
            "unoffered deflate"
        );
    }

    // 2. The valid answer, cut the same way and followed by arbitrary
    //    frame bytes, is accepted and only the head is consumed.
    let chosen = match (c >> 5) & 3 {
        0 => None,
        i => offers.get(i % offers.len().max(1)).copied(),
    };
    let accept = accept_key(key.as_bytes());
    let mut answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ".to_vec();
    answer.extend_from_slice(&accept);
    answer.extend_from_slice(b"\r\n");
    if let Some(p) = chosen {
        answer.extend_from_slice(format!("Sec-WebSocket-Protocol: {p}\r\n").as_bytes());
    }
    if deflate.is_some() {
        answer.extend_from_slice(b"Sec-WebSocket-Extensions: permessage-deflate\r\n");
    }
    answer.extend_from_slice(b"\r\n");
    let head_len = answer.len();
    answer.extend_from_slice(data);
    let (mut hs, _) = client(protocols, deflate, HandshakeLimits::default());
    let (n, result) = feed(&mut hs, &answer, &split(answer.len(), input.pieces));
    match result {
        Ok(Some(resp)) => {
            assert_eq!(n, head_len, "consumed exactly the head");
            assert_eq!(resp.status, 101);
            assert_eq!(resp.protocol.as_deref(), chosen);
            assert_eq!(resp.deflate.is_some(), deflate.is_some());
        }
        other => panic!(
            "valid answer {:?} refused: {other:?}",
            String::from_utf8_lossy(&answer[..head_len])
        ),
    }
});
