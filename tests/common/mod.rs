//! Helpers shared by the Rust integration tests over loopback
//! (`tests/runtime.rs`, `tests/firmware_table.rs`, `tests/deflate.rs`,
//! `tests/tls_rust.rs`, `tests/load.rs`, `tests/scale.rs`). Each test
//! crate uses a part of them.
#![allow(dead_code)]

use nopoll::protocol::OpCode;
use nopoll::runtime::{Connection, Context, LoopExit, Message};
use std::sync::mpsc;
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

/// A context's loop running in its own thread (bounded by `limit`),
/// stopped when dropped: `loop_stop` is repeated until the loop returned
/// (a stop that comes before the thread has entered `loop_wait` is lost,
/// the loop starts by clearing it, as upstream's does), within 10 s, and
/// the loop must have ended by that stop. A wedged loop fails the test
/// instead of hanging it.
pub struct LoopThread {
    ctx: Context,
    done: Option<mpsc::Receiver<LoopExit>>,
}

impl LoopThread {
    pub fn start(ctx: &Context, limit: Duration) -> LoopThread {
        let c = ctx.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(c.loop_wait(Some(limit)));
        });
        LoopThread {
            ctx: ctx.clone(),
            done: Some(rx),
        }
    }

    /// Stops the loop; how it ended (`Err` when it did not within 10 s).
    pub fn stop(mut self) -> Result<LoopExit, mpsc::RecvTimeoutError> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<LoopExit, mpsc::RecvTimeoutError> {
        let Some(rx) = self.done.take() else {
            return Ok(LoopExit::Stopped);
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.ctx.loop_stop();
            match rx.recv_timeout(Duration::from_millis(10)) {
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                other => return other,
            }
        }
    }
}

impl Drop for LoopThread {
    fn drop(&mut self) {
        let exit = self.stop_inner();
        if !std::thread::panicking() {
            assert_eq!(exit, Ok(LoopExit::Stopped), "loop did not stop");
        }
    }
}

/// Makes `ctx` echo every message: text as text, binary as binary.
pub fn echo_messages(ctx: &Context) {
    ctx.set_on_message(|_ctx, conn, msg: Message| {
        let _ = match msg.opcode() {
            Some(OpCode::Text) => conn.send_text(msg.text().unwrap()),
            _ => conn.send_binary(msg.payload()),
        };
    });
}
