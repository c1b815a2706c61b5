//! `nopoll_loop_*` and `nopoll_io_*`: the event loop and I/O engines.

use super::handle::Table;
use super::types::*;
use super::{boundary, ctx_from, ctx_handle};
use crate::net::{Backend, Poller};
use crate::runtime::LoopExit;
use core::ffi::{c_int, c_long};
use std::sync::Arc;
use std::time::Duration;

/// Runs the loop: `timeout` µs (0 = until `nopoll_loop_stop`). Returns 0
/// when stopped, -2 for bad arguments, -3 on timeout, -4 on engine failure.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_loop_wait(ctx: *mut noPollCtx, timeout: c_long) -> c_int {
    boundary(-4, || {
        let Some(c) = ctx_from(ctx) else {
            return -2;
        };
        if timeout < 0 {
            return -2;
        }
        let t = (timeout > 0).then(|| Duration::from_micros(timeout as u64));
        match c.loop_wait(t) {
            LoopExit::Stopped => 0,
            LoopExit::Timeout => -3,
            LoopExit::Failed => -4,
        }
    })
}

/// Makes a running `nopoll_loop_wait` return (from a callback, another
/// thread or a signal handler: only an atomic store and a write(2)).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_loop_stop(ctx: *mut noPollCtx) {
    boundary((), || {
        if let Some(c) = ctx_from(ctx) {
            c.loop_stop();
        }
    })
}

/// An I/O wait engine object (what `nopoll_io_get_engine` returns).
pub(crate) struct IoEngine {
    #[allow(dead_code)]
    poller: Poller,
}

static ENGINES: Table<IoEngine> = Table::new(5);

/// Creates an I/O engine of the requested type: epoll (the default on
/// Linux) or poll; SELECT gives poll, which has no FD_SETSIZE cap.
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
            NOPOLL_IO_ENGINE_DEFAULT | NOPOLL_IO_ENGINE_EPOLL if cfg!(target_os = "linux") => {
                Backend::Epoll
            }
            NOPOLL_IO_ENGINE_DEFAULT
            | NOPOLL_IO_ENGINE_EPOLL
            | NOPOLL_IO_ENGINE_POLL
            | NOPOLL_IO_ENGINE_SELECT => Backend::Poll,
            _ => return core::ptr::null_mut(),
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
