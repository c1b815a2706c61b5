//! A chat room on the safe Rust API: every text message is broadcast to
//! every connected client.
//!
//!     cargo run --release --example chat_server [PORT]     (default 9003)
use nopoll::runtime::{ConnRole, Context};

fn main() {
    let port = std::env::args().nth(1).unwrap_or_else(|| "9003".into());
    let ctx = Context::new().expect("event loop");
    let listener = ctx.listen("127.0.0.1", &port, false).expect("listen");
    ctx.set_on_message(|ctx, _from, msg| {
        let Some(text) = msg.text() else { return };
        for c in ctx.connections() {
            if c.role() == ConnRole::Accepted && c.is_ready() {
                let _ = c.send_text(text);
            }
        }
    });
    println!("chat_server: ws://127.0.0.1:{}/", listener.port());
    ctx.loop_wait(None);
}
