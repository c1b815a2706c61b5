//! Throughput of the protocol core: unmasking, frame decoding, and the
//! server's work per echoed 1 KiB JSON-like message with permessage-deflate
//! on and off.
//!
//!     cargo bench --bench protocol
//!
//! A plain program (`harness = false`, std only): every figure is the
//! median of several runs of about 0.35 s each, after a warm-up. Set
//! `BENCH_RUN_MS` to change the length of a run.

use nopoll::protocol::frame::write_frame;
use nopoll::protocol::mask::apply_mask;
use nopoll::protocol::{Config, DataKind, DeflateParams, Delivery, Engine, Event, Role};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Runs per measurement; the median is reported.
const RUNS: usize = 7;

/// The median, minimum and maximum rate of a measurement (units per second).
struct Rate {
    median: f64,
    min: f64,
    max: f64,
}

/// Measures how many units per second `batch` processes; `batch` does a
/// fixed amount of work and returns how many units that was.
fn measure(run_for: Duration, mut batch: impl FnMut() -> u64) -> Rate {
    // Warm up and find how many batches fill a run.
    let mut calls = 1u64;
    let per_call = loop {
        let start = Instant::now();
        for _ in 0..calls {
            black_box(batch());
        }
        let spent = start.elapsed();
        if spent >= Duration::from_millis(20) {
            break spent.as_secs_f64() / calls as f64;
        }
        calls *= 2;
    };
    let calls = ((run_for.as_secs_f64() / per_call).ceil() as u64).max(1);
    let mut rates: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let mut units = 0;
            for _ in 0..calls {
                units += black_box(batch());
            }
            units as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    Rate {
        median: rates[RUNS / 2],
        min: rates[0],
        max: rates[RUNS - 1],
    }
}

fn size_name(n: usize) -> String {
    match n {
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

/// `apply_mask` over buffers of several sizes. "aligned": the buffer
/// starts on an 8-byte boundary and the mask phase is 0; "misaligned":
/// it starts 3 bytes past one and the mask phase is 1 (a frame payload
/// unmasked piecewise, after a 2-byte header).
fn bench_mask(run_for: Duration) {
    println!("Unmasking (protocol::mask::apply_mask)");
    println!(
        "  {:>8}  {:>10}  {:>8}  {:>15}",
        "buffer", "alignment", "GB/s", "min..max"
    );
    let key = [0x37, 0xfa, 0x21, 0x3d];
    for size in [16, 1 << 10, 64 << 10, 1 << 20] {
        let mut storage = vec![0x5au8; size + 16];
        let base = storage.as_ptr().align_offset(8);
        for (label, skew, phase) in [("aligned", 0, 0), ("misaligned", 3, 1)] {
            let buf = &mut storage[base + skew..base + skew + size];
            // Small buffers: many calls per batch, so that the clock is
            // read rarely compared with the work.
            let reps = (64 << 10) / size + 1;
            let rate = measure(run_for, || {
                for _ in 0..reps {
                    apply_mask(black_box(&mut *buf), black_box(key), black_box(phase));
                }
                (reps * size) as u64
            });
            println!(
                "  {:>8}  {:>10}  {:>8.2}  {:>15}",
                size_name(size),
                label,
                rate.median / 1e9,
                format!("{:.2}..{:.2}", rate.min / 1e9, rate.max / 1e9)
            );
        }
    }
}

/// `Engine::read` over a stream of single-frame binary messages of
/// `payload` bytes, given the whole stream at once (the zero-copy path:
/// every message is handed out from the input buffer).
fn bench_decode(run_for: Duration, role: Role, kind: DataKind, payload: usize) -> Rate {
    let mask = match role {
        // Key bytes below 0x80: ASCII stays ASCII whether masked or not,
        // so a text stream stays valid pass after pass (see below).
        Role::Server => Some([0x21, 0x32, 0x43, 0x54]),
        Role::Client => None,
    };
    let frames = ((1usize << 20) / (payload + 14)).max(16);
    // Text: ASCII letters (what most text traffic is), validated as UTF-8.
    let body: Vec<u8> = (0..payload).map(|i| b'a' + (i % 26) as u8).collect();
    let opcode = match kind {
        DataKind::Text => 1,
        DataKind::Binary => 2,
    };
    let mut stream = Vec::with_capacity(frames * (payload + 14));
    for _ in 0..frames {
        write_frame(&mut stream, true, opcode, mask, &body);
    }
    let config = Config {
        delivery: Delivery::Messages,
        ..Config::default()
    };
    let mut engine = Engine::new(role, config, |k: &mut [u8]| k.fill(0));
    measure(run_for, || {
        // Unmasking in place changes only payload bytes, which binary
        // frames do not care about and which stay ASCII in text frames:
        // the stream stays valid pass after pass.
        let mut pos = 0;
        let mut seen = 0u64;
        while pos < stream.len() {
            match engine.read(&mut stream[pos..]) {
                Ok((n, Some(Event::Message(k, data)))) if k == kind => {
                    black_box(data);
                    seen += 1;
                    pos += n;
                }
                Ok((n, None)) if n > 0 => pos += n,
                other => panic!("unexpected result {:?}", other.map(|(n, _)| n)),
            }
        }
        assert_eq!(seen, frames as u64);
        seen
    })
}

/// About 1 KiB of JSON-like text, different for every `i`.
fn json_message(i: usize) -> String {
    let mut s = format!(
        "{{\"seq\":{i},\"device\":\"sensor-{}\",\"readings\":[",
        i % 17
    );
    let mut k = 0;
    while s.len() < 1000 {
        s.push_str(&format!(
            "{{\"t\":{},\"temp\":{}.{},\"ok\":{}}},",
            1_700_000_000 + i * 10 + k,
            18 + (i * 7 + k) % 9,
            (i + k * 3) % 10,
            !(i + k).is_multiple_of(5)
        ));
        k += 1;
    }
    s.push_str("null]}");
    s
}

/// A server engine echoing a stream of 256 client messages of ~1 KiB
/// (masked, as our client compresses them when `deflate` is on): reading,
/// inflating, validating, compressing the echo. Returns the rate of
/// messages and the wire bytes per message each way.
fn bench_deflate_echo(run_for: Duration, deflate: Option<DeflateParams>) -> (Rate, f64, f64) {
    let config = Config {
        deflate,
        ..Config::default()
    };
    let mut client = Engine::new(Role::Client, config, |k: &mut [u8]| k.fill(0x21));
    let messages: Vec<String> = (0..256).map(json_message).collect();
    for m in &messages {
        client.send_text(m).expect("send");
    }
    let stream = client.output().to_vec();
    let mut out_bytes = 0usize;
    let rate = measure(run_for, || {
        let mut server = Engine::new(Role::Server, config, |k: &mut [u8]| k.fill(0));
        let mut input = stream.clone();
        let mut pos = 0;
        let mut seen = 0u64;
        out_bytes = 0;
        while pos < input.len() {
            match server.read(&mut input[pos..]) {
                Ok((n, Some(Event::Message(DataKind::Text, data)))) => {
                    let text = black_box(data).to_vec();
                    pos += n;
                    seen += 1;
                    server.send(DataKind::Text, &text, true).expect("echo");
                    out_bytes += server.output_len();
                    let len = server.output_len();
                    server.consume_output(len);
                }
                Ok((n, None)) if n > 0 => pos += n,
                other => panic!("unexpected result {:?}", other.map(|(n, _)| n)),
            }
        }
        assert_eq!(seen, messages.len() as u64);
        seen
    });
    let n = messages.len() as f64;
    (rate, stream.len() as f64 / n, out_bytes as f64 / n)
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is ignored.
    let run_ms = std::env::var("BENCH_RUN_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(350);
    let run_for = Duration::from_millis(run_ms);
    println!("nopoll protocol core, median of {RUNS} runs of ~{run_ms} ms each\n");

    bench_mask(run_for);

    println!(
        "\nFrame decoding (Engine::read, Delivery::Messages, whole stream in one buffer;\n\
         text is ASCII, validated as UTF-8)"
    );
    println!(
        "  {:<24}  {:>8}  {:>12}  {:>12}  {:>21}",
        "receiver", "payload", "frames/s", "payload GB/s", "frames/s min..max"
    );
    for (role, kind, label) in [
        (Role::Server, DataKind::Binary, "server (masked) binary"),
        (Role::Server, DataKind::Text, "server (masked) text"),
        (Role::Client, DataKind::Binary, "client (unmasked) binary"),
        (Role::Client, DataKind::Text, "client (unmasked) text"),
    ] {
        for payload in [16, 1 << 10, 64 << 10] {
            let rate = bench_decode(run_for, role, kind, payload);
            println!(
                "  {:<24}  {:>8}  {:>12.0}  {:>12.2}  {:>21}",
                label,
                size_name(payload),
                rate.median,
                rate.median * payload as f64 / 1e9,
                format!("{:.0}..{:.0}", rate.min, rate.max)
            );
        }
    }
    println!(
        "\n  Unmasked binary payloads are handed out in place without being read,\n  \
         so a client's cost per frame does not grow with the payload."
    );

    println!(
        "\nServer echo of ~1 KiB JSON-like text (Engine::read + Engine::send, 256 distinct\n\
         messages from our client per pass; wire bytes per message with headers)"
    );
    println!(
        "  {:<34}  {:>10}  {:>9}  {:>9}  {:>16}",
        "permessage-deflate", "µs/message", "wire in", "wire out", "µs min..max"
    );
    let takeover = DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
        level: 1,
        ..DeflateParams::default()
    };
    let no_takeover = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..takeover
    };
    let level6 = DeflateParams {
        level: 6,
        ..takeover
    };
    for (label, d) in [
        ("off", None),
        ("on, level 1, context takeover", Some(takeover)),
        ("on, level 1, no context takeover", Some(no_takeover)),
        ("on, level 6, context takeover", Some(level6)),
    ] {
        let (rate, wire_in, wire_out) = bench_deflate_echo(run_for, d);
        println!(
            "  {:<34}  {:>10.2}  {:>9.0}  {:>9.0}  {:>16}",
            label,
            1e6 / rate.median,
            wire_in,
            wire_out,
            format!("{:.2}..{:.2}", 1e6 / rate.max, 1e6 / rate.min)
        );
    }
}
