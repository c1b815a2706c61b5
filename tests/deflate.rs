//! permessage-deflate through the Rust API over loopback: a server context
//! with `CtxConfig::permessage_deflate`, clients with
//! `ConnectOptions::permessage_deflate`.

mod common;
use common::{echo_messages, recv, LoopThread};
use nopoll::protocol::DeflateConfig;
use nopoll::runtime::{ConnectOptions, Context, LoopExit};
use std::time::Duration;

fn echo_server(deflate: Option<DeflateConfig>) -> (Context, String, LoopThread) {
    let ctx = Context::new().unwrap();
    ctx.update_config(|c| c.permessage_deflate = deflate);
    let listener = ctx.listen("127.0.0.1", "0", false).unwrap();
    echo_messages(&ctx);
    let port = listener.port().to_string();
    let t = LoopThread::start(&ctx, Duration::from_secs(60));
    (ctx, port, t)
}

#[test]
fn rust_api_negotiates_and_echoes_compressed() {
    for (server, client, expect) in [
        (
            Some(DeflateConfig::default()),
            Some(DeflateConfig::default()),
            true,
        ),
        (
            Some(DeflateConfig {
                no_context_takeover: true,
                level: 9,
                ..DeflateConfig::default()
            }),
            Some(DeflateConfig::default()),
            true,
        ),
        (None, Some(DeflateConfig::default()), false),
        (Some(DeflateConfig::default()), None, false),
    ] {
        let (_sctx, port, t) = echo_server(server);
        let ctx = Context::new().unwrap();
        let mut o = ConnectOptions::new("127.0.0.1", &port);
        o.permessage_deflate = client;
        let c = ctx.connect(&o).unwrap();
        assert!(c.wait_ready(Duration::from_secs(5)), "handshake");
        let agreed = c.permessage_deflate();
        assert_eq!(agreed.is_some(), expect, "{server:?} / {client:?}");
        if let (Some(p), Some(s)) = (agreed, server) {
            assert_eq!(p.server_no_context_takeover, s.no_context_takeover);
            assert_eq!(p.client_no_context_takeover, s.no_context_takeover);
        }
        let text: String = (0..3000)
            .map(|i| format!("{{\"n\":{i},\"v\":\"é😀\"}},"))
            .collect();
        let noise: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for _ in 0..3 {
            let st = c.send_text(&text).unwrap();
            if !st.complete {
                c.flush_writes(Duration::from_secs(10));
            }
            assert_eq!(recv(&c).text(), Some(text.as_str()));
            let st = c.send_binary(&noise).unwrap();
            if !st.complete {
                c.flush_writes(Duration::from_secs(10));
            }
            assert!(recv(&c).payload() == &noise[..]);
        }
        c.close(Some(1000), b"done");
        assert_eq!(t.stop(), Ok(LoopExit::Stopped));
    }
}
