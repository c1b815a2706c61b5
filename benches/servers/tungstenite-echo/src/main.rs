//! A minimal tokio-tungstenite echo server (the idiomatic one: each
//! connection's stream forwarded into its sink, which flushes when the
//! stream has nothing more ready). One thread, like the other servers.
//!
//!     tungstenite-echo [PORT]        (listens on 127.0.0.1)
use futures_util::{future, StreamExt, TryStreamExt};
use tokio::net::{TcpListener, TcpStream};

async fn serve(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (write, read) = ws.split();
    let _ = read
        .try_filter(|m| future::ready(m.is_text() || m.is_binary()))
        .forward(write)
        .await;
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let port = std::env::args().nth(1).unwrap_or_else(|| "9105".into());
    let listener = TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .expect("listen");
    println!("tungstenite-echo: ready on ws://127.0.0.1:{port}/");
    loop {
        if let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve(s));
        }
    }
}
