//! Back-off for listeners whose `accept` fails (issue 18, item 1).
//!
//! When the process is out of descriptors (`EMFILE`, `ENFILE`) or memory
//! (`ENOMEM`, `ENOBUFS`), `accept` fails but the pending connection stays
//! in the kernel's backlog, so the listener stays readable: a
//! level-triggered loop that simply retries spins at 100 % CPU. Instead
//! the loop stops watching the listener for a while (10 ms, doubling up
//! to 500 ms while it keeps failing) and then tries again by itself; the
//! first accept that works (or finds nothing) ends the episode. One log
//! line (through the context's log, so a C log handler sees it) starts an
//! episode and one ends it, with the number of failed accepts in between.
//! Every other accept error is backed off the same way: whatever it is,
//! retrying at once would spin too.
//!
//! Why pausing rather than a reserve descriptor (close a spare descriptor,
//! accept the newest connection, close it, reopen the spare): the waiting
//! connections stay in the backlog and are served as soon as descriptors
//! free up, instead of being reset; it needs no spare descriptor per
//! context and no `open()` (firmware socket tables have none); and it
//! helps with `ENOMEM`/`ENOBUFS` too, where a spare descriptor does not.
//! The cost: a connection that arrives during a pause waits for its end
//! (at most 500 ms once descriptors are free again).

#[allow(unused_imports)]
use crate::prelude::*;

use super::conn::Connection;
use super::context::{ctx_log, Context};
use crate::net::{NetError, NetResult, Poller};
use crate::platform::Instant;
use crate::sync::atomic::Ordering;

/// First pause after a failed accept, ms.
pub(crate) const FIRST_PAUSE_MS: u32 = 10;
/// Longest pause, ms: the delay before a freed descriptor is used.
pub(crate) const MAX_PAUSE_MS: u32 = 500;

/// Looks at the result of an accept on `listener`. An error pauses the
/// listener (returns true: stop accepting on it now); a success or
/// would-block ends its episode, if it had one. The failed accepts of
/// the episode are counted in the listener itself
/// (`ConnInner::accept_failures`, in what was padding): no list of the
/// loop's to search, grow and drop. The end of a pause is an entry of
/// the context's timer queue (see `Context::run_timers`): the loop
/// watches the listener again when it is due, even in a later
/// `loop_wait` call.
pub(crate) fn check<T>(
    ctx: &Context,
    poller: &mut Poller,
    listener: &Connection,
    r: &NetResult<T>,
    now: Instant,
) -> bool {
    let id = listener.id();
    let count = &listener.inner.accept_failures;
    // Only the loop's thread counts: plain loads and stores.
    let failures = count.load(Ordering::Relaxed);
    let e = match r {
        Err(e) => *e,
        Ok(_) => {
            if failures > 0 {
                count.store(0, Ordering::Relaxed);
                ctx_log!(
                    ctx,
                    Warning,
                    "listener id={id} accepting again ({failures} failed accepts)"
                );
            }
            return false;
        }
    };
    if failures == 0 {
        ctx_log!(
            ctx,
            Critical,
            "accept failed on listener id={id}: {e}{}; not accepting for a while, \
             retrying by itself",
            if exhausted(e) {
                " (out of descriptors or memory)"
            } else {
                ""
            }
        );
    }
    let _ = e;
    count.store(failures.saturating_add(1), Ordering::Relaxed);
    // 10 ms doubling: 10, 20, ... 320, then 500.
    let pause = (FIRST_PAUSE_MS << u32::from(failures).min(6)).min(MAX_PAUSE_MS);
    let _ = poller.delete(listener.socket());
    ctx.push_timer(now.plus_ms(pause), id);
    true
}

/// Out of descriptors or memory.
fn exhausted(e: NetError) -> bool {
    [
        crate::sys::EMFILE,
        crate::sys::ENFILE,
        crate::sys::ENOMEM,
        crate::sys::ENOBUFS,
    ]
    .contains(&e.errno())
}
