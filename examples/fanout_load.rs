//! Load client of the broadcast fan-out benchmark (`benches/fanout.py`):
//! opens CLIENTS connections spread over the chat instances given, makes
//! SENDERS of them send MESSAGES chat lines at RATE lines/s in total, and
//! measures, at every client, the delay from a line's send to its arrival.
//! Prints one JSON line: deliveries, deliveries/s, latency p50/p99 (µs).
//!
//!     cargo run --release --example fanout_load -- PORTS CLIENTS SENDERS MESSAGES RATE
//!
//! PORTS: comma-separated ports on 127.0.0.1 (clients are spread round
//! robin). One process, one event loop for every client.
use nopoll::runtime::{ConnectOptions, Connection, Context};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 5 {
        eprintln!("usage: fanout_load PORTS CLIENTS SENDERS MESSAGES RATE");
        std::process::exit(2);
    }
    let ports: Vec<&str> = a[0].split(',').collect();
    let clients: usize = a[1].parse().expect("CLIENTS");
    let senders: usize = a[2].parse().expect("SENDERS");
    let messages: usize = a[3].parse().expect("MESSAGES");
    let rate: f64 = a[4].parse().expect("RATE");

    let ctx = Context::new().expect("context");
    let t0 = Instant::now();
    let lat: Arc<Mutex<Vec<u32>>> = Arc::new(Mutex::new(Vec::with_capacity(clients * messages)));
    let got = Arc::new(AtomicU64::new(0));
    let (l, g) = (lat.clone(), got.clone());
    ctx.set_on_message_ref(move |_, _, msg| {
        // "<sent at, µs since t0> <seq>"
        let now = t0.elapsed().as_micros() as u64;
        if let Some(sent) = msg
            .text()
            .and_then(|t| t.split(' ').next())
            .and_then(|s| s.parse::<u64>().ok())
        {
            l.lock().unwrap().push(now.saturating_sub(sent) as u32);
            g.fetch_add(1, Ordering::Relaxed);
        }
    });
    let mut conns: Vec<Connection> = Vec::with_capacity(clients);
    for i in 0..clients {
        let mut o = ConnectOptions::new("127.0.0.1", ports[i % ports.len()]);
        o.path = Some("/chat".into());
        conns.push(ctx.connect(&o).expect("connect"));
        // Let the handshakes complete in batches (bounded backlog).
        if i % 100 == 99 {
            for c in &conns[i - 99..=i] {
                assert!(c.wait_ready(Duration::from_secs(20)), "handshake");
            }
        }
    }
    for c in &conns {
        assert!(c.wait_ready(Duration::from_secs(20)), "handshake");
    }
    let c2 = ctx.clone();
    let lp = std::thread::spawn(move || c2.loop_wait(Some(Duration::from_secs(300))));
    // Every instance must see every client before the window starts.
    std::thread::sleep(Duration::from_millis(500));

    let start = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / rate);
    for seq in 0..messages {
        let due = start + gap * seq as u32;
        if let Some(w) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
        let line = format!("{} {seq}", t0.elapsed().as_micros());
        let _ = conns[seq % senders.max(1)].send_text(&line);
    }
    let want = (clients * messages) as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.load(Ordering::Relaxed) < want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = start.elapsed().as_secs_f64();
    ctx.loop_stop();
    let _ = lp.join();
    let mut v = lat.lock().unwrap().clone();
    v.sort_unstable();
    let pct = |p: f64| {
        v.get(((v.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{{\"clients\": {clients}, \"messages\": {messages}, \"rate\": {rate}, \"deliveries\": {}, \"expected\": {want}, \"seconds\": {elapsed:.3}, \"deliveries_per_s\": {:.0}, \"p50_us\": {}, \"p99_us\": {}}}",
        v.len(),
        v.len() as f64 / elapsed,
        pct(0.5),
        pct(0.99)
    );
}
