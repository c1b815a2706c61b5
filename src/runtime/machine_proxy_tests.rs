//! The machine's PROXY phase and forwarded-for headers, fed by hand: the
//! header in pieces, trusted and untrusted peers, malformed headers, and
//! what the HTTP handshake then sees.

use super::*;
use crate::protocol::HandshakeLimits;

/// A peer at `peer`, trusting `trusted` (None: no list configured).
struct ProxyEnv {
    peer: &'static str,
    trusted: Option<&'static [&'static str]>,
}

impl Env for ProxyEnv {
    fn id(&self) -> i32 {
        3
    }
    fn peer(&self) -> &dyn core::fmt::Display {
        &self.peer
    }
    fn peer_ip(&self) -> Option<core::net::IpAddr> {
        self.peer.parse().ok()
    }
    fn wants_log(&self, _: LogLevel) -> bool {
        true
    }
    fn engine_config(&self, own: Option<u64>) -> Config {
        super::tests::test_config(own)
    }
    fn forwarding(&self) -> Option<&'static Forwarding> {
        Some(&FORWARDING)
    }
    fn trusts(&self, ip: IpAddr) -> Option<bool> {
        self.trusted.map(|list| {
            list.iter()
                .any(|c| proxy::Cidr::parse(c).is_some_and(|c| c.contains(ip)))
        })
    }
}

const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

fn behind_proxy() -> Machine {
    Machine::server_behind_proxy(
        ServerHandshake::new(HandshakeLimits::default()),
        &FORWARDING,
    )
}

/// Feeds `bytes` in pieces of `piece` bytes; the actions.
fn feed_in(m: &mut Machine, env: &ProxyEnv, bytes: &[u8], piece: usize) -> Actions {
    let mut acts = Actions::default();
    for chunk in bytes.chunks(piece) {
        let mut data = chunk.to_vec();
        m.receive(env, &mut data, None, &mut acts);
    }
    acts
}

fn is_open_request(acts: &Actions) -> bool {
    acts.on_open
}
fn is_closed(acts: &Actions) -> bool {
    acts.closed
}
fn logged(acts: &Actions, text: &str) -> bool {
    acts.logs.iter().any(|(_, l)| l.contains(text))
}

fn request(head: &[u8], extra: &str) -> Vec<u8> {
    let mut v = head.to_vec();
    v.extend_from_slice(UPGRADE);
    v.extend_from_slice(extra.as_bytes());
    v.extend_from_slice(b"\r\n");
    v
}

const ANYONE: ProxyEnv = ProxyEnv {
    peer: "127.0.0.1",
    trusted: None,
};

#[test]
fn v1_header_in_every_piece_size_then_the_handshake() {
    let bytes = request(b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n", "");
    for piece in [1, 2, 7, 44, 45, bytes.len()] {
        let mut m = behind_proxy();
        let acts = feed_in(&mut m, &ANYONE, &bytes, piece);
        assert!(is_open_request(&acts), "piece {piece}");
        assert_eq!(
            m.client_addr(),
            Some(&("203.0.113.7".to_string(), Some("5555".to_string()))),
            "piece {piece}"
        );
        assert!(m.is_handshaking());
    }
}

#[test]
fn v2_header_gives_the_address_and_a_local_one_does_not() {
    let mut h = proxy::V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[
        0x21, 0x11, 0, 12, 198, 51, 100, 9, 127, 0, 0, 1, 0x9c, 0x40, 0, 80,
    ]);
    let mut m = behind_proxy();
    assert!(is_open_request(&feed_in(
        &mut m,
        &ANYONE,
        &request(&h, ""),
        5
    )));
    assert_eq!(
        m.client_addr(),
        Some(&("198.51.100.9".to_string(), Some("40000".to_string())))
    );

    let mut local = proxy::V2_SIGNATURE.to_vec();
    local.extend_from_slice(&[0x20, 0x00, 0, 0]);
    let mut m = behind_proxy();
    assert!(is_open_request(&feed_in(
        &mut m,
        &ANYONE,
        &request(&local, ""),
        64
    )));
    assert_eq!(m.client_addr(), None);
}

#[test]
fn malformed_or_missing_header_closes_without_an_answer() {
    for bad in [
        request(b"PROXY TCP4 203.0.113.7 127.0.0.1 05555 80\r\n", ""),
        request(b"", ""),
        b"PROXY UNKNOWN "
            .iter()
            .copied()
            .chain([b'x'; 200])
            .collect(),
    ] {
        let mut m = behind_proxy();
        let acts = feed_in(&mut m, &ANYONE, &bad, 16);
        assert!(is_closed(&acts));
        assert!(!is_open_request(&acts));
        assert!(logged(&acts, "refused"), "a log line says why");
        assert!(m.output().is_empty(), "no answer: we do not speak HTTP yet");
        assert!(m.is_closed());
    }
}

#[test]
fn header_from_an_untrusted_peer_is_refused() {
    let env = ProxyEnv {
        peer: "192.0.2.50",
        trusted: Some(&["10.0.0.0/8"]),
    };
    let mut m = behind_proxy();
    let acts = feed_in(
        &mut m,
        &env,
        &request(b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n", ""),
        1000,
    );
    assert!(is_closed(&acts) && !is_open_request(&acts));
    assert!(logged(&acts, "untrusted"));
    assert_eq!(m.client_addr(), None);

    let trusted = ProxyEnv {
        peer: "10.1.2.3",
        trusted: Some(&["10.0.0.0/8"]),
    };
    let mut m = behind_proxy();
    let acts = feed_in(
        &mut m,
        &trusted,
        &request(b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n", ""),
        1000,
    );
    assert!(is_open_request(&acts));
}

#[test]
fn forwarded_headers_count_only_from_trusted_peers() {
    let plain = || Machine::server(ServerHandshake::new(HandshakeLimits::default()));
    let xff = "X-Forwarded-For: 192.0.2.1, 203.0.113.9, 10.0.0.5\r\n";
    let trusted = ProxyEnv {
        peer: "10.0.0.6",
        trusted: Some(&["10.0.0.0/8"]),
    };
    let mut m = plain();
    assert!(is_open_request(&feed_in(
        &mut m,
        &trusted,
        &request(b"", xff),
        1000
    )));
    assert_eq!(m.client_addr(), Some(&("203.0.113.9".to_string(), None)));

    let mut m = plain();
    feed_in(
        &mut m,
        &trusted,
        &request(b"", "X-Real-IP: 2001:db8::2\r\n"),
        1000,
    );
    assert_eq!(m.client_addr(), Some(&("2001:db8::2".to_string(), None)));

    // Not an address: ignored, logged.
    let mut m = plain();
    let acts = feed_in(
        &mut m,
        &trusted,
        &request(b"", "X-Forwarded-For: bogus\r\n"),
        1000,
    );
    assert!(is_open_request(&acts) && logged(&acts, "not an address"));
    assert_eq!(m.client_addr(), None);

    for env in [
        ProxyEnv {
            peer: "192.0.2.50",
            trusted: Some(&["10.0.0.0/8"]),
        },
        ANYONE,
    ] {
        let mut m = plain();
        feed_in(&mut m, &env, &request(b"", xff), 1000);
        assert_eq!(m.client_addr(), None, "peer {} not trusted", env.peer);
    }
}

#[test]
fn a_plain_listener_answers_a_proxy_header_as_a_bad_request() {
    let mut m = Machine::server(ServerHandshake::new(HandshakeLimits::default()));
    let acts = feed_in(
        &mut m,
        &ANYONE,
        &request(b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n", ""),
        1000,
    );
    assert!(is_closed(&acts));
    assert!(m.output().starts_with(b"HTTP/1.1 400"));
}
