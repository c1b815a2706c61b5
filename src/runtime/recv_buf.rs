//! The receive buffer, allocated fallibly (issue 18, item 4).
//!
//! Its size is the caller's (`recv_buffer_size`): a size the heap cannot
//! give (a C caller's `LONG_MAX`, or 1 MiB on a small firmware heap) must
//! not abort the program. It is clamped to [`MAX_RECV_BUF`] (a read never
//! needs more), and a size the heap refuses falls back to smaller ones.

#[allow(unused_imports)]
use crate::prelude::*;

use super::context::{ctx_log, Context};
use super::event_loop::MIN_RECV_BUF;

/// Largest receive buffer: 16 MiB (64 KiB without std). One read fills
/// it; beyond that a larger buffer only costs memory.
pub(crate) const MAX_RECV_BUF: usize = if cfg!(feature = "std") {
    16 * 1024 * 1024
} else {
    64 * 1024
};

/// A zeroed buffer of `size` bytes (clamped to `MIN_RECV_BUF` ..
/// [`MAX_RECV_BUF`]); when the heap refuses it, half that and so on down
/// to `MIN_RECV_BUF` (logged).
pub(crate) fn recv_buffer(ctx: &Context, size: usize) -> Vec<u8> {
    let size = size.clamp(MIN_RECV_BUF, MAX_RECV_BUF);
    let mut n = size;
    loop {
        let mut v = Vec::new();
        // Empty: `try_reserve` gives exactly `n` (above 8 bytes).
        if n <= MIN_RECV_BUF || v.try_reserve(n).is_ok() {
            v.resize(n, 0);
            if n < size {
                ctx_log!(
                    ctx,
                    Warning,
                    "receive buffer of {size} bytes refused by the heap: using {n}"
                );
            }
            return v;
        }
        n /= 2;
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::runtime::LoopExit;
    use core::time::Duration;

    #[test]
    fn sizes_are_clamped_not_aborted_on() {
        let ctx = Context::new().unwrap();
        assert_eq!(recv_buffer(&ctx, usize::MAX).len(), MAX_RECV_BUF);
        assert_eq!(recv_buffer(&ctx, 0).len(), MIN_RECV_BUF);
        assert_eq!(recv_buffer(&ctx, 4096).len(), 4096);
        // The Rust configuration is not clamped: the loop's allocation is.
        ctx.update_config(|c| c.recv_buffer_size = usize::MAX);
        assert_eq!(
            ctx.loop_wait(Some(Duration::from_millis(1))),
            LoopExit::Timeout
        );
    }
}
