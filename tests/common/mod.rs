//! Helpers shared by the Rust integration tests over loopback
//! (`tests/runtime.rs`, `tests/firmware_table.rs`, `tests/deflate.rs`,
//! `tests/tls_rust.rs`).

use nopoll::runtime::{Connection, Message};
use std::time::{Duration, Instant};

/// The next message of `conn`, polling for up to 10 s; fails the test if
/// the connection fails or nothing comes.
pub fn recv(conn: &Connection) -> Message {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(m) = conn.get_msg() {
            return m;
        }
        assert!(conn.is_ok(), "connection failed");
        assert!(Instant::now() < deadline, "no message in time");
        std::thread::sleep(Duration::from_millis(1));
    }
}
