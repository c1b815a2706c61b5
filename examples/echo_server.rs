//! A WebSocket echo server on the safe Rust API.
//!
//!     cargo run --release --example echo_server [PORT] [--deflate] [--tls CERT KEY]
//!
//! PORT defaults to 9002. `--deflate` offers permessage-deflate (RFC 7692)
//! to clients that ask for it; `--tls CERT KEY` serves wss:// with that
//! certificate and key (PEM files).
use nopoll::protocol::{DeflateConfig, OpCode};
use nopoll::runtime::Context;

fn main() {
    let mut port = "9002".to_string();
    let (mut deflate, mut tls) = (false, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--deflate" => deflate = true,
            "--tls" => match (args.next(), args.next()) {
                (Some(cert), Some(key)) => tls = Some((cert, key)),
                _ => usage(),
            },
            p if !p.starts_with('-') => port = p.to_string(),
            _ => usage(),
        }
    }
    let ctx = Context::new().expect("event loop");
    ctx.update_config(|c| {
        c.max_frame_size = 20 * 1024 * 1024;
        if deflate {
            c.permessage_deflate = Some(DeflateConfig::default());
        }
    });
    let listener = match &tls {
        None => ctx.listen("127.0.0.1", &port, false).expect("listen"),
        Some((cert, key)) => {
            let l = ctx
                .listen_tls("127.0.0.1", &port, false, None)
                .expect("listen");
            if !l.set_tls_certificate(cert, key, None) {
                eprintln!("echo_server: cannot use {cert} / {key}");
                std::process::exit(1);
            }
            l
        }
    };
    ctx.set_on_message_ref(|_ctx, conn, msg| {
        let _ = match msg.opcode() {
            Some(OpCode::Binary) => conn.send_binary(msg.payload()),
            _ => conn.send_text(msg.text().unwrap_or_default()),
        };
    });
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    println!("echo_server: {scheme}://127.0.0.1:{}/", listener.port());
    ctx.loop_wait(None);
}

fn usage() -> ! {
    eprintln!("usage: echo_server [PORT] [--deflate] [--tls CERT KEY]");
    std::process::exit(2);
}
