//! The state machine fed bytes by hand: no socket, no lock, no clock.
//! A client and a server machine talk to each other through their
//! `output()`; what each receives is checked as the actions it yields.

use super::*;
use crate::protocol::{ClientRequest, DataKind, Delivery, Event, HandshakeLimits};

struct TestEnv;

impl Env for TestEnv {
    fn id(&self) -> i32 {
        7
    }
    fn peer(&self) -> &dyn core::fmt::Display {
        &"peer"
    }
    fn peer_ip(&self) -> Option<core::net::IpAddr> {
        None
    }
    fn wants_log(&self, _: LogLevel) -> bool {
        true
    }
    fn engine_config(&self, own: Option<u64>) -> Config {
        test_config(own)
    }
}

/// The engine limits of the test environments (also `machine_proxy_tests`):
/// the connection's own frame limit, else 1 MiB.
pub(super) fn test_config(own: Option<u64>) -> Config {
    let max = own.unwrap_or(1 << 20);
    Config {
        max_frame_size: max,
        max_message_size: max.max(1 << 20),
        delivery: Delivery::Messages,
        ..Config::default()
    }
}

const ENV: TestEnv = TestEnv;

fn client_with(protocols: Option<&str>) -> Machine {
    let req = ClientRequest {
        host: "example:80",
        path: "/chat",
        origin: Some("http://example"),
        protocols,
        cookie: None,
        extra_headers: None,
        version: 13,
        deflate: None,
    };
    let (hs, bytes) =
        ClientHandshake::new(&req, HandshakeLimits::default(), &mut OsRandom).unwrap();
    Machine::client(hs, bytes)
}

fn client() -> Machine {
    client_with(None)
}

fn server() -> Machine {
    Machine::server(ServerHandshake::new(HandshakeLimits::default()))
}

/// Everything `m` has to write, marked written.
fn drain(m: &mut Machine) -> Vec<u8> {
    let mut all = Vec::new();
    loop {
        let out = m.output().to_vec();
        if out.is_empty() {
            return all;
        }
        m.consume(out.len());
        all.extend_from_slice(&out);
    }
}

fn feed(m: &mut Machine, bytes: &[u8]) -> Actions {
    let mut data = bytes.to_vec();
    let mut acts = Actions::default();
    m.receive(&ENV, &mut data, None, &mut acts);
    acts
}

impl Actions {
    /// Nothing to do at all, log lines included.
    fn is_empty(&self) -> bool {
        self.logs.is_empty() && names(self).is_empty()
    }
}

/// Actions without log lines, as short names (messages with their text),
/// in the order the dispatcher runs them.
fn names(acts: &Actions) -> Vec<String> {
    let flags = [
        (acts.on_open, "open?"),
        (acts.http.is_some(), "http"),
        (acts.ready, "ready"),
    ];
    let mut out: Vec<String> = flags.iter().filter(|f| f.0).map(|f| f.1.into()).collect();
    out.extend(acts.msgs.iter().map(|m| match m {
        Incoming::Message(m) => format!("msg:{}", String::from_utf8_lossy(m.payload())),
        Incoming::Input { start, len, .. } => format!("input:{start}+{len}"),
    }));
    out.extend(acts.closed.then(|| "closed".into()));
    out
}

/// A server's answer to `client`'s request (the server accepts).
fn answer(c: &mut Machine) -> (Machine, Vec<u8>) {
    let mut s = server();
    let acts = feed(&mut s, &drain(c));
    assert_eq!(names(&acts), ["open?"]);
    let mut acts = Actions::default();
    s.finish_open(&ENV, true, &mut acts);
    assert_eq!(names(&acts), ["ready"]);
    let resp = drain(&mut s);
    (s, resp)
}

/// An open client and server.
fn pair() -> (Machine, Machine) {
    let mut c = client();
    let (s, resp) = answer(&mut c);
    assert_eq!(names(&feed(&mut c, &resp)), ["ready"]);
    (c, s)
}

fn send_text(m: &mut Machine, t: &str) -> Vec<u8> {
    m.send(|e| e.send_text(t)).unwrap();
    drain(m)
}

// ------------------------------------------------------------ handshake

#[test]
fn client_writes_its_request_first_and_is_not_open() {
    let mut c = client();
    assert!(c.is_handshaking() && !c.opened() && !c.is_open());
    assert!(c.handshake_pending());
    let req = drain(&mut c);
    assert!(req.starts_with(b"GET /chat HTTP/1.1\r\n"));
    assert_eq!(c.pending(), 0);
    assert!(!c.handshake_pending());
}

#[test]
fn client_handshake_fed_one_byte_at_a_time() {
    let mut c = client();
    let (_s, resp) = answer(&mut c);
    let mut all = Vec::new();
    for b in &resp {
        all.extend(names(&feed(&mut c, core::slice::from_ref(b))));
    }
    assert_eq!(all, ["ready"], "ready exactly once, at the last byte");
    assert!(c.is_open() && c.opened());
}

#[test]
fn server_handshake_fed_in_pieces() {
    let mut c = client();
    let req = drain(&mut c);
    let mut s = server();
    let mut all = Vec::new();
    for piece in req.chunks(5) {
        all.extend(names(&feed(&mut s, piece)));
    }
    assert_eq!(all, ["open?"]);
    assert!(s.is_handshaking() && !s.opened());
    assert_eq!(s.info.url(), Some("/chat"));
    assert_eq!(s.info.origin(), Some("http://example"));
}

#[test]
fn first_requested_protocol_is_answered_and_seen_by_the_client() {
    let mut c = client_with(Some("chat, superchat"));
    let (s, resp) = answer(&mut c);
    assert_eq!(s.info.accepted_protocol.as_deref(), Some("chat"));
    feed(&mut c, &resp);
    assert_eq!(c.info.accepted_protocol.as_deref(), Some("chat"));
}

#[test]
fn bad_101_closes_the_client_without_opening() {
    let mut c = client();
    drain(&mut c);
    let acts = feed(
        &mut c,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bogus\r\n\r\n",
    );
    assert_eq!(names(&acts), ["closed"]);
    assert!(acts
        .logs
        .iter()
        .any(|(level, _)| *level == LogLevel::Critical));
    assert!(c.is_closed() && !c.opened());
}

#[test]
fn bad_request_gets_an_http_error_then_closes() {
    let mut s = server();
    let acts = feed(
        &mut s,
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
    );
    assert_eq!(names(&acts), ["closed"]);
    assert!(s.is_closed());
    let out = drain(&mut s);
    assert!(
        out.starts_with(b"HTTP/1.1 4"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn plain_http_request_is_handed_out_and_answered() {
    let mut s = server();
    let acts = feed(&mut s, b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(names(&acts), ["http"]);
    assert!(s.is_http());
    assert!(s.queue_http_response(200, "text/plain", b"hi").is_ok());
    let out = drain(&mut s);
    assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n") && out.ends_with(b"\r\n\r\nhi"));
    assert!(matches!(
        s.queue_http_response(200, "a\r\nb", b""),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn default_http_answer_is_what_the_builder_makes() {
    let (mut built, mut constant, mut open) = (server(), server(), server());
    feed(&mut built, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    feed(&mut constant, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let body = b"WebSocket endpoint\n";
    assert!(built.queue_http_response(400, "text/plain", body).is_ok());
    constant.queue_http_default();
    open.queue_http_default(); // only in the HTTP phase
    assert_eq!(drain(&mut constant), drain(&mut built));
    assert!(drain(&mut open).is_empty());
}

#[test]
fn frames_pipelined_behind_the_request_wait_for_on_open() {
    let mut c = client();
    let req = drain(&mut c);
    // The client cannot send before the 101: build its frames with a
    // second, already open client.
    let (mut c2, _s2) = pair();
    let frames = send_text(&mut c2, "early");
    let mut s = server();
    let mut bytes = req.clone();
    bytes.extend_from_slice(&frames);
    assert_eq!(
        names(&feed(&mut s, &bytes)),
        ["open?"],
        "kept until on_open"
    );
    let mut acts = Actions::default();
    s.finish_open(&ENV, true, &mut acts);
    assert_eq!(names(&acts), ["ready", "msg:early"]);
}

#[test]
fn refused_by_on_open_answers_403_and_closes() {
    let mut c = client();
    let mut s = server();
    feed(&mut s, &drain(&mut c));
    let mut acts = Actions::default();
    s.finish_open(&ENV, false, &mut acts);
    assert_eq!(names(&acts), ["closed"]);
    assert!(drain(&mut s).starts_with(b"HTTP/1.1 403 Forbidden"));
    assert!(!s.opened());
}

#[test]
fn too_much_data_before_on_open_closes() {
    let mut c = client();
    let mut s = server();
    feed(&mut s, &drain(&mut c));
    let acts = feed(&mut s, &vec![0x81; MAX_LEFTOVER + 1]);
    assert_eq!(names(&acts), ["closed"]);
    assert!(s.is_closed());
}

#[test]
fn a_listener_takes_no_bytes() {
    let mut l = Machine::listening();
    assert!(feed(&mut l, b"GET / HTTP/1.1\r\n\r\n").is_empty());
    assert!(!l.is_handshaking() && !l.is_closed() && l.pending() == 0);
}

// ------------------------------------------------------------ messages

#[test]
fn the_101_and_messages_in_one_read_come_out_in_order() {
    let mut c = client();
    let (mut s, mut bytes) = answer(&mut c);
    bytes.extend(send_text(&mut s, "one"));
    bytes.extend(send_text(&mut s, "two"));
    assert_eq!(
        names(&feed(&mut c, &bytes)),
        ["ready", "msg:one", "msg:two"]
    );
}

#[test]
fn messages_before_a_close_all_come_out_before_closed() {
    let mut c = client();
    let (mut s, mut bytes) = answer(&mut c);
    bytes.extend(send_text(&mut s, "a"));
    bytes.extend(send_text(&mut s, "b"));
    assert!(s.queue_close(Some(4001), b"bye").is_none());
    bytes.extend(drain(&mut s));
    let acts = names(&feed(&mut c, &bytes));
    assert_eq!(acts, ["ready", "msg:a", "msg:b", "closed"]);
    // Not shown until the close is delivered (after the messages).
    assert_eq!(c.close_status(), 1006);
    assert_eq!(c.close_reason(), None);
    c.deliver_close();
    assert_eq!(c.close_status(), 4001);
    assert_eq!(c.close_reason(), Some("bye"));
    assert!(c.opened() && c.is_closed());
    // The close reply is left for one last write.
    let reply = drain(&mut c);
    assert_eq!(
        reply.len(),
        2 + 4 + 2,
        "masked close frame echoing the code"
    );
    assert_eq!(reply[0], 0x88);
}

#[test]
fn a_message_split_across_reads_comes_out_once() {
    let (mut c, mut s) = pair();
    let frame = send_text(&mut c, "hello world");
    let (a, b) = frame.split_at(4);
    assert!(names(&feed(&mut s, a)).is_empty());
    assert_eq!(names(&feed(&mut s, b)), ["msg:hello world"]);
}

#[test]
fn whole_messages_stay_in_the_input_when_a_base_is_given() {
    let (mut c, mut s) = pair();
    let mut bytes = send_text(&mut c, "abc");
    bytes.extend(send_text(&mut c, "defg"));
    let mut acts = Actions::default();
    s.receive(&ENV, &mut bytes, Some(100), &mut acts);
    // Client frames: 2 header + 4 mask bytes each.
    assert_eq!(names(&acts), ["input:106+3", "input:115+4"]);
    assert_eq!(&bytes[6..9], b"abc", "unmasked in place");
}

#[test]
fn a_ping_is_answered_with_a_pong() {
    let (mut c, mut s) = pair();
    c.send(|e| e.send_ping(b"p")).unwrap();
    let acts = feed(&mut s, &drain(&mut c));
    assert!(names(&acts).is_empty());
    let out = drain(&mut s);
    assert_eq!(out, [0x8a, 0x01, b'p']);
}

#[test]
fn a_protocol_error_closes_with_1002_after_earlier_messages() {
    let (mut c, mut s) = pair();
    let mut bytes = send_text(&mut c, "ok");
    // Unmasked frame from a client: a protocol error.
    bytes.extend_from_slice(&[0x81, 0x01, b'x']);
    let acts = feed(&mut s, &bytes);
    assert_eq!(names(&acts), ["msg:ok", "closed"]);
    let out = drain(&mut s);
    assert_eq!(&out[..4], &[0x88, 0x02, 0x03, 0xea], "close 1002");
    assert!(s.is_closed());
}

#[test]
fn the_frame_limit_set_after_open_applies() {
    let (mut c, mut s) = pair();
    s.set_max_frame_size(4);
    let acts = feed(&mut s, &send_text(&mut c, "too long"));
    assert_eq!(names(&acts), ["closed"]);
    assert_eq!(&drain(&mut s)[..4], &[0x88, 0x02, 0x03, 0xf1], "close 1009");
}

#[test]
fn bytes_after_closed_are_ignored() {
    let (mut c, mut s) = pair();
    s.shut();
    assert!(feed(&mut s, &send_text(&mut c, "late")).is_empty());
}

// ------------------------------------------------------------ send and output

#[test]
fn client_sends_before_the_101_are_held_then_follow_it_in_order() {
    let mut c = client();
    let req = drain(&mut c);
    assert_eq!(c.send(|e| e.send_text("one")).unwrap(), 2 + 4 + 3);
    c.send(|e| e.send_binary(b"two")).unwrap();
    assert_eq!(c.output(), b"", "nothing goes out before the 101");
    assert_eq!(c.pending(), 0);
    assert_eq!(c.held_len(), 2 * (2 + 4 + 3));
    let mut s = server();
    feed(&mut s, &req);
    let mut acts = Actions::default();
    s.finish_open(&ENV, true, &mut acts);
    assert_eq!(names(&feed(&mut c, &drain(&mut s))), ["ready"]);
    assert_eq!(c.held_len(), 0);
    let frames = drain(&mut c);
    assert_eq!(frames.len(), 2 * (2 + 4 + 3));
    assert_eq!(names(&feed(&mut s, &frames)), ["msg:one", "msg:two"]);
}

#[test]
fn server_sends_before_on_open_follow_the_101() {
    let mut c = client();
    let mut s = server();
    s.send(|e| e.send_text("early")).unwrap();
    feed(&mut s, &drain(&mut c));
    s.send(|e| e.send_text("still early")).unwrap();
    assert_eq!(s.output(), b"");
    let mut acts = Actions::default();
    s.finish_open(&ENV, true, &mut acts);
    let out = drain(&mut s);
    assert!(out.starts_with(b"HTTP/1.1 101"));
    assert_eq!(
        names(&feed(&mut c, &out)),
        ["ready", "msg:early", "msg:still early"]
    );
}

#[test]
fn held_sends_are_dropped_when_the_handshake_fails() {
    let mut c = client();
    drain(&mut c);
    c.send(|e| e.send_text("lost")).unwrap();
    let acts = feed(
        &mut c,
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(names(&acts), ["closed"]);
    c.drop_output();
    assert_eq!((c.pending(), c.held_len()), (0, 0));
    assert!(matches!(c.send(|e| e.send_text("x")), Err(Error::NotOpen)));
    // Refused by on_open: the 403, never the held frame.
    let mut c = client();
    let mut s = server();
    feed(&mut s, &drain(&mut c));
    s.send(|e| e.send_text("lost")).unwrap();
    let mut acts = Actions::default();
    s.finish_open(&ENV, false, &mut acts);
    let out = drain(&mut s);
    assert!(out.starts_with(b"HTTP/1.1 403") && !out.windows(4).any(|w| w == b"lost"));
}

#[test]
fn a_listener_refuses_sends() {
    let mut l = Machine::listening();
    assert!(matches!(l.send(|e| e.send_text("x")), Err(Error::NotOpen)));
}

#[test]
fn only_output_the_transport_refused_is_reported_pending() {
    let (mut c, _s) = pair();
    c.send(|e| e.send_text("gathered")).unwrap();
    c.send(|e| e.send_text("too")).unwrap();
    assert!(c.pending() > 0);
    assert_eq!(c.refused_pending(), 0, "held to batch, not refused");
    c.consume(3);
    c.note_refused();
    assert_eq!(c.refused_pending(), c.pending());
    c.send(|e| e.send_text("after")).unwrap();
    assert_eq!(
        c.refused_pending(),
        c.pending(),
        "queued behind refused bytes"
    );
    drain(&mut c);
    assert_eq!(c.refused_pending(), 0);
    c.send(|e| e.send_text("again")).unwrap();
    assert_eq!(c.refused_pending(), 0, "a full write ends the episode");
}

#[test]
fn the_close_shows_only_once_delivered() {
    let mut c = client();
    let (mut s, mut bytes) = answer(&mut c);
    bytes.extend(send_text(&mut s, "m"));
    s.queue_close(Some(1001), b"away");
    bytes.extend(drain(&mut s));
    assert_eq!(names(&feed(&mut c, &bytes)), ["ready", "msg:m", "closed"]);
    assert_eq!((c.close_status(), c.close_reason()), (1006, None));
    c.deliver_close();
    assert_eq!((c.close_status(), c.close_reason()), (1001, Some("away")));
}

#[test]
fn pending_output_counts_handshake_and_frames_and_drains_in_order() {
    let (mut c, _s) = pair();
    let n1 = c.send(|e| e.send_text("first")).unwrap();
    let n2 = c.send(|e| e.send_binary(b"second")).unwrap();
    assert_eq!(n1, 2 + 4 + 5);
    assert_eq!(n2, 2 + 4 + 6);
    assert_eq!(c.pending(), n1 + n2);
    // Partial writes keep the order.
    let mut out = Vec::new();
    while c.pending() > 0 {
        let chunk = c.output()[..3.min(c.output().len())].to_vec();
        c.consume(chunk.len());
        out.extend(chunk);
    }
    assert_eq!(out.len(), n1 + n2);
    assert_eq!(out[0], 0x81);
    assert_eq!(out[n1], 0x82);
}

#[test]
fn the_handshake_answer_is_written_before_any_frame() {
    let mut c = client();
    let mut s = server();
    feed(&mut s, &drain(&mut c));
    let mut acts = Actions::default();
    s.finish_open(&ENV, true, &mut acts);
    s.send(|e| e.send_text("hi")).unwrap();
    let out = drain(&mut s);
    assert!(out.starts_with(b"HTTP/1.1 101"));
    assert!(out.ends_with(&[0x81, 0x02, b'h', b'i']));
}

// ------------------------------------------------------------ closing

#[test]
fn close_in_the_client_handshake_drops_the_request() {
    let mut c = client();
    c.shut();
    assert!(c.is_closed() && c.pending() == 0 && !c.opened());
}

#[test]
fn handshake_deadline_closes_each_handshake_phase() {
    let mut c = client();
    assert!(c.expire() && c.is_closed());
    let mut s = server();
    assert!(s.expire() && s.is_closed());
    let mut c = client();
    let mut s = server();
    feed(&mut s, &drain(&mut c));
    assert!(s.is_handshaking(), "waiting for on_open");
    assert!(s.expire() && s.is_closed());
}

#[test]
fn handshake_deadline_leaves_open_connections_alone() {
    let (mut c, mut s) = pair();
    assert!(!c.expire() && !s.expire());
    assert!(c.is_open() && s.is_open());
}

#[test]
fn close_when_open_queues_one_close_frame() {
    let (mut c, mut s) = pair();
    assert!(s.queue_close(Some(1000), b"done").is_none());
    assert!(s.queue_close(Some(1001), b"").is_none(), "only once");
    let out = drain(&mut s);
    assert_eq!(out, [0x88, 0x06, 0x03, 0xe8, b'd', b'o', b'n', b'e']);
    let acts = feed(&mut c, &out);
    assert_eq!(names(&acts), ["closed"]);
    c.deliver_close();
    assert_eq!(c.close_status(), 1000);
}

#[test]
fn a_close_code_refused_by_the_protocol_sends_an_empty_close() {
    let (_c, mut s) = pair();
    let err = s.queue_close(Some(1005), b"");
    assert!(err.is_some());
    assert_eq!(drain(&mut s), [0x88, 0x00]);
}

#[test]
fn close_in_phases_without_an_engine_queues_nothing() {
    let mut c = client();
    drain(&mut c);
    assert!(c.queue_close(Some(1000), b"").is_none());
    assert_eq!(c.pending(), 0);
    let mut s = server();
    assert!(s.queue_close(Some(1000), b"").is_none());
    assert_eq!(s.pending(), 0);
}

#[test]
fn shut_when_open_drops_unwritten_frames() {
    let (mut c, _s) = pair();
    c.send(|e| e.send_text("never")).unwrap();
    assert!(c.pending() > 0);
    c.shut();
    assert_eq!(c.pending(), 0);
    assert!(matches!(c.send(|e| e.send_text("x")), Err(Error::NotOpen)));
}

#[test]
fn close_without_status_reports_1005() {
    let (mut c, mut s) = pair();
    s.queue_close(None, b"");
    let acts = feed(&mut c, &drain(&mut s));
    assert_eq!(names(&acts), ["closed"]);
    c.deliver_close();
    assert_eq!(c.close_status(), 1005);
    assert_eq!(c.close_reason(), None);
}

// ------------------------------------------------------------ load

/// A client's ping frame with `payload`.
fn ping_from(c: &mut Machine, payload: &[u8]) -> Vec<u8> {
    c.send(|e| e.send_ping(payload)).unwrap();
    drain(c)
}

/// The frames a client receives from `bytes`: (opcode, payload) of each
/// control frame seen, through a raw engine.
fn control_frames(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut e = Engine::new(Role::Client, Config::default(), OsRandom);
    let mut data = bytes.to_vec();
    let mut pos = 0;
    let mut got = Vec::new();
    while pos < data.len() {
        let (n, ev) = e.read(&mut data[pos..]).unwrap();
        pos += n;
        match ev {
            Some(Event::Pong(p)) => got.push((0xA, p.to_vec())),
            Some(Event::Ping(p)) => got.push((0x9, p.to_vec())),
            Some(Event::Message(_, m)) => got.push((0x1, m.to_vec())),
            Some(_) => got.push((0, Vec::new())),
            None if n == 0 => break,
            None => {}
        }
    }
    got
}

#[test]
fn a_burst_of_pings_gets_every_pong() {
    // Autobahn 2.10: ten pings in one read, ten pongs in order.
    let (mut c, mut s) = pair();
    let mut burst = Vec::new();
    for i in 0..10u8 {
        burst.extend_from_slice(&ping_from(&mut c, &[i]));
    }
    assert!(feed(&mut s, &burst).is_empty());
    let want: Vec<_> = (0..10u8).map(|i| (0xA, vec![i])).collect();
    assert_eq!(control_frames(&drain(&mut s)), want);
}

#[test]
fn a_ping_flood_without_reads_queues_one_pong_past_the_backlog() {
    let (mut c, mut s) = pair();
    let mut flood = Vec::new();
    for i in 0..10_000u32 {
        flood.extend_from_slice(&ping_from(&mut c, &i.to_be_bytes()));
    }
    assert!(feed(&mut s, &flood).is_empty());
    // RFC 6455 5.5.3: once output piles up, only the most recent ping is
    // answered while the earlier pong is unsent.
    let pong = 2 + 4;
    assert!(s.pending() < crate::protocol::engine::PONG_BACKLOG + 2 * pong);
    let pongs = control_frames(&drain(&mut s));
    assert_eq!(
        pongs.len(),
        crate::protocol::engine::PONG_BACKLOG.div_ceil(pong)
    );
    assert_eq!(pongs.last(), Some(&(0xA, 9_999u32.to_be_bytes().to_vec())));
}

#[test]
fn a_replaced_pong_moves_behind_later_frames_and_a_started_one_stays() {
    let (mut c, mut s) = pair();
    let big = vec![b'x'; crate::protocol::engine::PONG_BACKLOG];
    s.send(|e| e.send_binary(&big)).unwrap();
    assert!(feed(&mut s, &ping_from(&mut c, b"a")).is_empty());
    s.send(|e| e.send_text("between")).unwrap();
    assert!(feed(&mut s, &ping_from(&mut c, b"b")).is_empty());
    let out = s.output().to_vec();
    let frames = control_frames(&out);
    assert_eq!(
        frames[1..],
        [(0x1, b"between".to_vec()), (0xA, b"b".to_vec())]
    );
    // The pong's first byte is written: the next ping gets its own pong.
    s.consume(out.len() - 1);
    assert!(feed(&mut s, &ping_from(&mut c, b"c")).is_empty());
    assert_eq!(s.pending(), 1 + 3);
    assert_eq!(drain(&mut s).len(), 1 + 3);
}

#[test]
fn reading_pauses_while_refused_output_is_over_the_limit() {
    let (_c, mut s) = pair();
    s.send(|e| e.send_binary(&[7u8; 1000])).unwrap();
    // Output gathered but never refused: reads go on.
    assert!(s.wants_read(100));
    s.note_refused();
    assert!(!s.wants_read(100));
    assert!(s.wants_read(2000));
    // Drained to the limit: reading resumes.
    s.consume(s.pending() - 100);
    assert!(s.wants_read(100));
    s.consume(100);
    assert_eq!(s.refused_pending(), 0);
}

#[test]
fn memory_counts_reassembly_and_output_apart() {
    let (mut c, mut s) = pair();
    assert_eq!(s.memory(), (0, 0));
    // A fragment of an unfinished message is reassembly.
    c.send(|e| e.send(DataKind::Binary, &[1u8; 5000], false))
        .unwrap();
    assert!(feed(&mut s, &drain(&mut c)).is_empty());
    let (r, o) = s.memory();
    assert!(r >= 5000 && o == 0, "{r} {o}");
    // Output queued is output.
    s.send(|e| e.send_binary(&[2u8; 3000])).unwrap();
    let (r2, o2) = s.memory();
    assert_eq!(r2, r);
    assert!(o2 >= 3000);
    // Closed: nothing held.
    s.shut();
    assert_eq!(s.memory(), (0, 0));
}

fn at(ms: u64) -> Instant {
    Instant::from_micros(1_000_000_000 + ms * 1000)
}

#[test]
fn keepalive_pings_after_the_interval_and_declares_a_silent_peer_dead() {
    let ka = Keepalive {
        ping_interval: Some(Duration::from_millis(100)),
        pong_timeout: Some(Duration::from_millis(50)),
        idle_timeout: None,
    };
    assert_eq!(
        keepalive_check(&ka, at(10), at(0), None),
        KeepaliveStep::Wait(at(100))
    );
    assert_eq!(
        keepalive_check(&ka, at(100), at(0), None),
        KeepaliveStep::Ping(at(150))
    );
    assert_eq!(
        keepalive_check(&ka, at(120), at(0), Some(at(100))),
        KeepaliveStep::Wait(at(150))
    );
    assert_eq!(
        keepalive_check(&ka, at(150), at(0), Some(at(100))),
        KeepaliveStep::Dead
    );
    // Input after the ping (its pong, or anything) answers it.
    assert_eq!(
        keepalive_check(&ka, at(150), at(130), Some(at(100))),
        KeepaliveStep::Wait(at(230))
    );
}

#[test]
fn idle_timeout_closes_without_input_and_bounds_the_next_check() {
    let ka = Keepalive {
        ping_interval: None,
        pong_timeout: None,
        idle_timeout: Some(Duration::from_millis(300)),
    };
    assert_eq!(
        keepalive_check(&ka, at(10), at(0), None),
        KeepaliveStep::Wait(at(300))
    );
    assert_eq!(
        keepalive_check(&ka, at(300), at(0), None),
        KeepaliveStep::Idle
    );
    let both = Keepalive {
        ping_interval: Some(Duration::from_millis(100)),
        pong_timeout: Some(Duration::from_millis(500)),
        idle_timeout: Some(Duration::from_millis(300)),
    };
    // The pong timeout would come after the idle timeout: the check is at
    // the earlier of the two.
    assert_eq!(
        keepalive_check(&both, at(100), at(0), None),
        KeepaliveStep::Ping(at(300))
    );
    assert_eq!(
        keepalive_check(&both, at(300), at(0), Some(at(100))),
        KeepaliveStep::Idle
    );
}
