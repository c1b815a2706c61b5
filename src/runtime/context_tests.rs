//! Unit tests of `context.rs`.

use super::*;
use crate::runtime::ConnectOptions;

/// A connection is registered only in its own context (ids are per
/// context: another's could take the place of one of this one's).
#[test]
fn register_conn_refuses_another_contexts_connection() {
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port().to_string();
    let (a, b) = (Context::new().unwrap(), Context::new().unwrap());
    let c = a.connect(&ConnectOptions::new("127.0.0.1", &port)).unwrap();
    assert!(a.unregister_conn(&c));
    assert!(!b.register_conn(&c));
    assert_eq!(b.conns(), 0);
    assert!(a.register_conn(&c));
    c.close(None, b"");
}

/// One loop at a time per context: a second `loop_wait` while one
/// runs fails at once (its poller is busy) and the first goes on.
#[test]
fn a_second_loop_fails_while_one_runs() {
    use crate::runtime::LoopExit;
    use std::time::Duration;
    let ctx = Context::new().unwrap();
    let c = ctx.clone();
    let first = std::thread::spawn(move || c.loop_wait(Some(Duration::from_secs(30))));
    while !ctx.inner.poller.busy() {
        // Bounded: a first loop that returned at once never gets busy.
        assert!(!first.is_finished(), "the first loop returned at once");
        std::thread::yield_now();
    }
    assert_eq!(
        ctx.loop_wait(Some(Duration::from_millis(1))),
        LoopExit::Failed
    );
    // Again until it returns: a stop before the loop cleared its flag
    // at the start would be lost.
    while !first.is_finished() {
        ctx.loop_stop();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(first.join().unwrap(), LoopExit::Stopped);
    assert!(!ctx.inner.poller.busy(), "given back");
    assert_eq!(ctx.loop_wait(Some(Duration::ZERO)), LoopExit::Timeout);
}

/// A client that never runs the loop: the handshake-deadline queue
/// holds only its live connections' timers (a closed one's go with
/// it).
#[test]
fn deadline_queue_is_bounded_without_a_loop() {
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port().to_string();
    let ctx = Context::new().unwrap();
    for _ in 0..300 {
        let c = ctx
            .connect(&ConnectOptions::new("127.0.0.1", &port))
            .unwrap();
        drop(server.accept().unwrap());
        c.close(None, b"");
    }
    let n = ctx.inner.conns.lock().timers.len();
    assert!(
        n <= ctx.conns(),
        "{n} deadlines queued for {} connections",
        ctx.conns()
    );
}
