//! A send whose frame the heap cannot hold is refused, not an abort
//! (issue 18, item 4: every allocation a caller can size is fallible).
//!
//! Its own test binary: the global allocator here refuses, once armed,
//! every allocation of at least a threshold, the way a small firmware
//! heap does. Before the send path reserved fallibly, the refused
//! reservation called `handle_alloc_error` and the process aborted.

use nopoll::protocol::SendError;
use nopoll::runtime::{ConnectOptions, Context, Error, LoopExit};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Allocations of at least this many bytes fail (0: none do).
static REFUSE_FROM: AtomicUsize = AtomicUsize::new(0);

struct SmallHeap;

// SAFETY: forwards to the system allocator, or returns null (allowed).
unsafe impl GlobalAlloc for SmallHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let limit = REFUSE_FROM.load(Ordering::Relaxed);
        if limit != 0 && layout.size() >= limit {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout, as GlobalAlloc::alloc requires.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr came from System.alloc with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let limit = REFUSE_FROM.load(Ordering::Relaxed);
        if limit != 0 && new_size >= limit {
            return std::ptr::null_mut();
        }
        // SAFETY: as GlobalAlloc::realloc requires, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static HEAP: SmallHeap = SmallHeap;

#[test]
fn a_frame_the_heap_cannot_hold_is_refused() {
    let server = Context::new().unwrap();
    let listener = server.listen("127.0.0.1", "0", false).unwrap();
    let port = listener.port().to_string();
    server.set_on_message(|_ctx, conn, msg| {
        let _ = conn.send_binary(msg.payload());
    });
    let s = server.clone();
    let loop_thread = std::thread::spawn(move || s.loop_wait(Some(Duration::from_secs(30))));

    let ctx = Context::new().unwrap();
    let client = ctx
        .connect(&ConnectOptions::new("127.0.0.1", &port))
        .unwrap();
    assert!(client.wait_ready(Duration::from_secs(10)));
    let big = vec![7u8; 48 << 20];
    // A client frame is masked, so it is always copied into the output.
    REFUSE_FROM.store(32 << 20, Ordering::Relaxed);
    let r = client.send_binary(&big);
    REFUSE_FROM.store(0, Ordering::Relaxed);
    assert!(
        matches!(r, Err(Error::Send(SendError::OutOfMemory))),
        "got {r:?}"
    );
    // Nothing was queued: the connection goes on.
    assert_eq!(client.pending_write_bytes(), 0);
    client.send_binary(b"after").unwrap();
    let mut got = None;
    for _ in 0..1000 {
        if let Some(m) = client.get_msg() {
            got = Some(m);
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(got.expect("the echo").payload(), b"after");
    server.loop_stop();
    assert_eq!(loop_thread.join().unwrap(), LoopExit::Stopped);
}
