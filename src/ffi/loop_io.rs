//! `nopoll_loop_*` and `nopoll_io_*`: the event loop and I/O engines.

#[allow(unused_imports)]
use crate::prelude::*;

use super::handle::Table;
use super::types::*;
use super::{boundary, ctx_from, ctx_handle, CTXS};
use crate::net::{Backend, Poller};
use crate::runtime::Context;
use crate::runtime::LoopExit;
use crate::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicUsize, Ordering};
use crate::sync::Arc;
use core::ffi::{c_int, c_long};

/// Runs the loop: `timeout` µs (0 = until `nopoll_loop_stop`; negative:
/// -2; `LONG_MAX` saturates, it never overflows). Returns 0 when stopped,
/// -2 for bad arguments, -3 on timeout, -4 on engine failure.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_loop_wait(ctx: *mut noPollCtx, timeout: c_long) -> c_int {
    boundary(-4, || {
        let Some(c) = ctx_from(ctx) else {
            return -2;
        };
        if timeout < 0 {
            return -2;
        }
        match c.loop_wait_us((timeout > 0).then_some(timeout as u64)) {
            LoopExit::Stopped => 0,
            LoopExit::Timeout => -3,
            LoopExit::Failed => -4,
        }
    })
}

/// What `nopoll_loop_stop` needs of a context, reachable without any lock
/// so that it is async-signal-safe: the stop flag and the wake-up socket.
/// All-zero when empty, so the array lives in `.bss` (no flash image).
struct StopCell {
    token: AtomicUsize,
    flag: AtomicPtr<AtomicBool>,
    /// The wake-up socket + 1 (0: none).
    wake_fd1: AtomicI32,
    busy: AtomicUsize,
}

/// Contexts whose handle slot is below this have a lock-free stop cell
/// (the others are stopped through the handle table: from threads, not
/// from signal handlers). 4096 with std; 16 (512 bytes) without.
const STOP_CELLS: usize = if cfg!(feature = "std") { 4096 } else { 16 };

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_CELL: StopCell = StopCell {
    token: AtomicUsize::new(0),
    flag: AtomicPtr::new(core::ptr::null_mut()),
    wake_fd1: AtomicI32::new(0),
    busy: AtomicUsize::new(0),
};

static CELLS: [StopCell; STOP_CELLS] = [EMPTY_CELL; STOP_CELLS];

/// Publishes a context's stop flag and wake-up socket for its handle.
pub(crate) fn publish_stop_cell(token: usize, ctx: &Context) {
    let Some(cell) = CTXS.slot_index(token).and_then(|i| CELLS.get(i)) else {
        return;
    };
    // A reader uses the flag and the socket only after finding `token` in
    // the cell, which is stored last: the stores between need no fence of
    // their own.
    cell.token.store(0, Ordering::SeqCst);
    cell.flag.store(
        ctx.stop_flag() as *const AtomicBool as *mut AtomicBool,
        Ordering::Relaxed,
    );
    cell.wake_fd1.store(
        ctx.inner.waker.raw_fd().saturating_add(1).max(0),
        Ordering::Relaxed,
    );
    cell.token.store(token, Ordering::SeqCst);
}

/// Withdraws a context's cell before the context is destroyed; waits out a
/// signal handler that may be using it.
pub(crate) fn withdraw_stop_cell(token: usize) {
    let Some(cell) = CTXS.slot_index(token).and_then(|i| CELLS.get(i)) else {
        return;
    };
    if cell
        .token
        .compare_exchange(token, 0, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return;
    }
    while cell.busy.load(Ordering::SeqCst) != 0 {
        core::hint::spin_loop();
    }
    // No reader uses them any more (the token is gone, those that found
    // it are done): no fences.
    cell.flag.store(core::ptr::null_mut(), Ordering::Relaxed);
    cell.wake_fd1.store(0, Ordering::Relaxed);
}

/// Makes a running `nopoll_loop_wait` return. Safe from a callback, another
/// thread or a signal handler: it takes no lock and allocates nothing (an
/// atomic store and a write(2) on the loop's wake-up socket).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_loop_stop(ctx: *mut noPollCtx) {
    let token = ctx as usize;
    let Some(cell) = CTXS.slot_index(token).and_then(|i| CELLS.get(i)) else {
        // Beyond the lock-free cells: through the handle table.
        boundary((), || {
            if let Some(c) = ctx_from(ctx) {
                c.loop_stop();
            }
        });
        return;
    };
    cell.busy.fetch_add(1, Ordering::SeqCst);
    if cell.token.load(Ordering::SeqCst) == token {
        let flag = cell.flag.load(Ordering::SeqCst);
        if !flag.is_null() {
            // SAFETY: the flag lives inside the context, which cannot be
            // destroyed while `busy` is raised (withdraw_stop_cell waits).
            unsafe { (*flag).store(true, Ordering::SeqCst) };
        }
        let fd1 = cell.wake_fd1.load(Ordering::SeqCst);
        if fd1 > 0 {
            crate::net::wake_raw(fd1 - 1);
        }
    }
    cell.busy.fetch_sub(1, Ordering::SeqCst);
}

/// An I/O wait engine object (what `nopoll_io_get_engine` returns).
pub(crate) struct IoEngine {
    #[allow(dead_code)]
    poller: Poller,
}

static ENGINES: Table<IoEngine> = Table::new(5);

/// Creates an I/O engine of the requested type: epoll (the default on
/// Linux) or poll; SELECT gives poll, which has no FD_SETSIZE cap. An
/// unknown type gives the default engine (upstream answers every type with
/// its one engine). NULL for a NULL context or when the engine's
/// descriptors cannot be created.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_io_get_engine(
    ctx: *mut noPollCtx,
    engine_type: noPollIoEngineType,
) -> *mut noPollIoEngine {
    boundary(core::ptr::null_mut(), || {
        let Some(c) = ctx_from(ctx) else {
            return core::ptr::null_mut();
        };
        let backend = match engine_type {
            // epoll where it exists and sockets are kernel descriptors.
            NOPOLL_IO_ENGINE_DEFAULT | NOPOLL_IO_ENGINE_EPOLL => Backend::best(),
            NOPOLL_IO_ENGINE_POLL | NOPOLL_IO_ENGINE_SELECT => Backend::Poll,
            other => {
                c.log(
                    crate::runtime::LogLevel::Warning,
                    format_args!(
                        "nopoll_io_get_engine: unknown engine type {other}, using the default"
                    ),
                );
                Backend::best()
            }
        };
        let _ = ctx_handle(&c);
        match Poller::new(backend) {
            Ok(poller) => ENGINES
                .insert(&Arc::new(IoEngine { poller }), 1)
                .unwrap_or(0) as *mut noPollIoEngine,
            Err(_) => core::ptr::null_mut(),
        }
    })
}

/// Destroys an engine from `nopoll_io_get_engine`.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_io_release_engine(engine: *mut noPollIoEngine) {
    boundary((), || {
        ENGINES.release(engine as usize);
    })
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::ffi::ctx::{nopoll_ctx_new, nopoll_ctx_unref};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc as StdArc;

    /// Stoppers on other threads hammer `nopoll_loop_stop` on whatever
    /// context is current while contexts are created, looped, and
    /// destroyed (their stop cells published and withdrawn): no stop is
    /// lost for a loop it was meant for, and none touches a freed context
    /// (the point of running it under ThreadSanitizer: `make test-tsan`).
    #[test]
    fn stop_cells_against_contexts_coming_and_going() {
        let current = StdArc::new(AtomicUsize::new(0));
        let done = StdArc::new(AtomicBool::new(false));
        let stoppers: Vec<_> = (0..2)
            .map(|_| {
                let (current, done) = (current.clone(), done.clone());
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !done.load(Ordering::Acquire) {
                        nopoll_loop_stop(current.load(Ordering::Acquire) as *mut noPollCtx);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        for _ in 0..50 {
            let ctx = nopoll_ctx_new();
            assert!(!ctx.is_null());
            current.store(ctx as usize, Ordering::Release);
            // Stopped by the stoppers (0) or timed out (-3): never stuck.
            let rc = nopoll_loop_wait(ctx, 20_000);
            assert!(rc == 0 || rc == -3, "loop_wait gave {rc}");
            current.store(0, Ordering::Release);
            nopoll_ctx_unref(ctx);
        }
        done.store(true, Ordering::Release);
        for s in stoppers {
            assert!(s.join().unwrap() > 0);
        }
    }
}
