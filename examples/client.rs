//! Connects, sends one message, prints the answer and closes.
//!
//!     cargo run --example client [PORT [MESSAGE]]     (default 9002, "hello")
use nopoll::runtime::{ConnectOptions, Context};
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let port = args.next().unwrap_or_else(|| "9002".into());
    let text = args.next().unwrap_or_else(|| "hello".into());
    let ctx = Context::new().expect("context");
    let conn = ctx
        .connect(&ConnectOptions::new("127.0.0.1", &port))
        .expect("connect");
    if !conn.wait_ready(Duration::from_secs(5)) {
        eprintln!("client: handshake failed");
        std::process::exit(1);
    }
    conn.send_text(&text).expect("send");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && conn.is_ok() {
        if let Some(m) = conn.get_msg() {
            println!("client: received {:?}", m.text().unwrap_or("<binary>"));
            conn.close(Some(1000), b"bye");
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    eprintln!("client: no answer");
    std::process::exit(1);
}
