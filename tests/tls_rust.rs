//! wss:// through the Rust API: `Context::listen_tls`, `ConnectOptions::tls`,
//! `Connection::set_tls_certificate`, `Connection::is_tls`. Certificates are
//! made at run time with the `openssl` command (nothing private committed).
#![cfg(feature = "tls")]

mod common;
use common::{recv, LoopThread};
use nopoll::runtime::{ConnectOptions, Context, LoopExit, Message};
use nopoll::TlsOptions;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn certs() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nopoll-tls-rust-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = "set -e; exec >gen.log 2>&1;\
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=rust-test-ca \
          -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign;\
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj /CN=localhost;\
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext;\
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.pem";
    let ok = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(&dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl failed: see {}", dir.join("gen.log").display());
    dir
}

fn path(dir: &Path, f: &str) -> String {
    dir.join(f).to_str().unwrap().to_string()
}

#[test]
fn wss_echo_verified_and_refused() {
    let dir = certs();
    let server = Context::new().unwrap();
    let listener = server.listen_tls("127.0.0.1", "0", false, None).unwrap();
    assert!(listener.is_tls());
    assert!(!listener.set_tls_certificate("/nonexistent.pem", "/nonexistent.key", None));
    assert!(listener.set_tls_certificate(
        &path(&dir, "server.pem"),
        &path(&dir, "server.key"),
        None
    ));
    server.set_on_message(|_ctx, conn, msg: Message| {
        let _ = conn.send_binary(msg.payload());
    });
    let port = listener.port().to_string();
    let lp = LoopThread::start(&server, Duration::from_secs(60));

    let client = Context::new().unwrap();
    let mut o = ConnectOptions::new("127.0.0.1", &port);
    o.host_name = Some("localhost".into());
    o.tls = Some(TlsOptions {
        ca: Some(path(&dir, "ca.pem")),
        verify: true,
        ..Default::default()
    });
    let conn = client.connect(&o).unwrap();
    assert!(conn.is_ok() && conn.is_tls());
    assert!(conn.wait_ready(Duration::from_secs(5)));
    conn.send_binary(b"over tls").unwrap();
    assert_eq!(recv(&conn).payload(), b"over tls");
    conn.close(Some(1000), b"");

    // Verification on and a name the certificate does not carry: not ok.
    o.host_name = Some("elsewhere.example".into());
    let bad = client.connect(&o).unwrap();
    assert!(!bad.is_ok() && !bad.is_tls());

    assert_eq!(lp.stop(), Ok(LoopExit::Stopped));
    let _ = std::fs::remove_dir_all(dir);
}
