//! Arbitrary bytes, cut at fuzzer-chosen points, into `ServerHandshake`
//! with small and default limits.
//!
//! Config byte: bits 0-2 pick `max_header_bytes` (0 = default), bits 3-5
//! `max_headers` (0 = default), bits 6-7 the required version.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nopoll::protocol::{
    accept_key, HandshakeError, HandshakeLimits, ServerHandshake, ServerOutcome,
};
use nopoll_fuzz::{is_exact_head, split, Input};
use std::ops::Range;

const HEADER_BYTES: [usize; 8] = [8192, 0, 1, 20, 64, 128, 300, 1024];
const HEADERS: [usize; 8] = [64, 0, 1, 2, 3, 5, 8, 16];
const VERSIONS: [u8; 4] = [13, 13, 8, 255];

/// Feeds the pieces until an outcome; returns the bytes consumed in total
/// and the outcome, checked against the head it was made from.
fn feed(
    limits: HandshakeLimits,
    version: u8,
    data: &[u8],
    ranges: &[Range<usize>],
) -> (usize, Option<ServerOutcome>) {
    let mut hs = ServerHandshake::with_version(limits, version);
    let mut total = 0;
    for r in ranges {
        let piece = &data[r.clone()];
        let (n, outcome) = hs.feed(piece);
        assert!(n <= piece.len(), "consumed {n} of {} bytes", piece.len());
        total += n;
        match outcome {
            Some(o) => {
                check(&o, &data[..total], limits, version);
                return (total, Some(o));
            }
            None => assert_eq!(n, piece.len(), "an unfinished head takes every byte"),
        }
    }
    assert!(
        total < limits.max_header_bytes,
        "no outcome at the size limit"
    );
    (total, None)
}

fn check(outcome: &ServerOutcome, consumed: &[u8], limits: HandshakeLimits, version: u8) {
    match outcome {
        ServerOutcome::Reject(r) => {
            let expect = match r.error {
                HandshakeError::TooLarge => 431,
                HandshakeError::UnsupportedVersion => 426,
                _ => 400,
            };
            assert_eq!(r.status, expect, "{:?}", r.error);
            let answer = String::from_utf8(r.response()).expect("ASCII answer");
            assert!(answer.starts_with(&format!("HTTP/1.1 {} ", r.status)));
            assert!(answer.ends_with("\r\nContent-Length: 0\r\n\r\n"));
            assert_eq!(answer.matches("\r\n\r\n").count(), 1);
            if r.status == 426 {
                assert!(answer.contains(&format!("\r\nSec-WebSocket-Version: {version}\r\n")));
            }
            if r.error != HandshakeError::TooLarge {
                assert!(is_exact_head(consumed), "rejected before the head ended");
            }
        }
        ServerOutcome::Http(req) => {
            assert!(is_exact_head(consumed), "outcome before the head ended");
            assert!(consumed.len() <= limits.max_header_bytes);
            assert!(req.headers.len() <= limits.max_headers);
            assert!(!req.is_upgrade());
        }
        ServerOutcome::Upgrade(up) => {
            assert!(is_exact_head(consumed), "outcome before the head ended");
            assert!(consumed.len() <= limits.max_header_bytes);
            let req = &up.request;
            assert!(req.headers.len() <= limits.max_headers);
            assert!(req.is_upgrade());
            assert_eq!(req.method, "GET");
            assert!(req.version >= (1, 1));
            assert!(req.host().is_some_and(|h| !h.is_empty()));
            let key = req.header("Sec-WebSocket-Key").expect("key");
            let accept = accept_key(key.as_bytes());
            assert_eq!(up.accept_key().as_bytes(), &accept[..]);

            let answer = up.response(None).expect("plain 101 answer");
            let mut expect = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ".to_vec();
            expect.extend_from_slice(&accept);
            expect.extend_from_slice(b"\r\n\r\n");
            assert_eq!(answer, expect);
            // Every requested subprotocol can be chosen verbatim.
            for p in req.protocols() {
                let answer = up.response(Some(p)).expect("a requested subprotocol");
                let line = format!("\r\nSec-WebSocket-Protocol: {p}\r\n\r\n");
                assert!(answer.ends_with(line.as_bytes()));
                assert!(is_exact_head(&answer));
            }
            // A permessage-deflate offer in the request: accepted (one
            // well-formed header line, parameters within RFC 7692) or not.
            for insist in [false, true] {
                let cfg = nopoll::protocol::DeflateConfig {
                    no_context_takeover: insist,
                    level: 6,
                    ..Default::default()
                };
                let (answer, agreed) = up
                    .response_with_deflate(None, Some(&cfg))
                    .expect("a 101 answer");
                assert!(is_exact_head(&answer));
                let text = String::from_utf8(answer).expect("ASCII answer");
                let ext = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: "));
                assert_eq!(ext.is_some(), agreed.is_some());
                if let Some(p) = agreed {
                    assert!(ext.is_some_and(|e| e.starts_with("permessage-deflate")));
                    assert!((8..=15).contains(&p.server_max_window_bits));
                    assert_eq!(p.client_max_window_bits, 15);
                    assert!(
                        !insist || (p.server_no_context_takeover && p.client_no_context_takeover)
                    );
                }
            }
            // Anything else is either refused or one header line.
            for p in [req.url.as_str(), key, req.host().unwrap_or("")] {
                match up.response(Some(p)) {
                    Ok(answer) => {
                        assert!(!p.contains(['\r', '\n', '\0']));
                        assert!(
                            p.is_empty() || answer.ends_with(format!(": {p}\r\n\r\n").as_bytes())
                        );
                    }
                    Err(e) => {
                        assert!(p.contains(['\r', '\n', '\0']));
                        assert_eq!(e, HandshakeError::InvalidInput("Sec-WebSocket-Protocol"));
                    }
                }
            }
        }
    }
}

fuzz_target!(|raw: &[u8]| {
    let Some(input) = Input::parse(raw) else {
        return;
    };
    let c = usize::from(input.config);
    let limits = HandshakeLimits {
        max_header_bytes: HEADER_BYTES[c & 7],
        max_headers: HEADERS[(c >> 3) & 7],
    };
    let version = VERSIONS[c >> 6];
    let data = input.data;
    let whole = feed(limits, version, data, &split(data.len(), &[]));
    let pieces = feed(limits, version, data, &split(data.len(), input.pieces));
    // How the head is cut changes nothing (except that a refusal for size
    // takes the whole piece it happened in).
    assert_eq!(whole.1, pieces.1, "whole vs split");
    let too_large = matches!(
        &whole.1,
        Some(ServerOutcome::Reject(r)) if r.error == HandshakeError::TooLarge
    );
    if !too_large {
        assert_eq!(whole.0, pieces.0, "consumed, whole vs split");
    }
});
