//! A WebSocket echo server on the safe Rust API.
//!
//!     cargo run --release --example echo_server [PORT]     (default 9002)
use nopoll::protocol::OpCode;
use nopoll::runtime::Context;

fn main() {
    let port = std::env::args().nth(1).unwrap_or_else(|| "9002".into());
    let ctx = Context::new().expect("event loop");
    let listener = ctx.listen("127.0.0.1", &port, false).expect("listen");
    ctx.update_config(|c| c.max_frame_size = 20 * 1024 * 1024);
    ctx.set_on_message_ref(|_ctx, conn, msg| {
        let _ = match msg.opcode() {
            Some(OpCode::Binary) => conn.send_binary(msg.payload()),
            _ => conn.send_text(msg.text().unwrap_or_default()),
        };
    });
    println!("echo_server: ws://127.0.0.1:{}/", listener.port());
    ctx.loop_wait(None);
}
