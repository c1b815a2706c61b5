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

/// First pause after a failed accept, ms.
pub(crate) const FIRST_PAUSE_MS: u32 = 10;
/// Longest pause, ms: the delay before a freed descriptor is used.
pub(crate) const MAX_PAUSE_MS: u32 = 500;

/// The listeners of one loop that are backing off (usually none): each
/// listener's id and its failed accepts so far (the pause doubles with
/// each). The end of a pause is an entry of the context's timer queue
/// (see `Context::run_timers`): the loop watches the listener again when
/// it is due, even in a later `loop_wait` call.
#[derive(Default)]
pub(crate) struct AcceptBackoff {
    episodes: Vec<(i32, u32)>,
}

impl AcceptBackoff {
    /// Looks at the result of an accept on `listener`. An error pauses the
    /// listener (returns true: stop accepting on it now); a success or
    /// would-block ends its episode, if it had one.
    pub(crate) fn check<T>(
        &mut self,
        ctx: &Context,
        poller: &mut Poller,
        listener: &Connection,
        r: &NetResult<T>,
        now: Instant,
    ) -> bool {
        let id = listener.id();
        let ep = self.episodes.iter().position(|x| x.0 == id);
        let e = match (r, ep) {
            (Err(e), _) => *e,
            (Ok(_), None) => return false,
            (Ok(_), Some(i)) => {
                let (_, failures) = self.episodes.swap_remove(i);
                ctx_log!(
                    ctx,
                    Warning,
                    "listener id={id} accepting again ({failures} failed accepts)"
                );
                let _ = failures;
                return false;
            }
        };
        let failures = match ep.and_then(|i| self.episodes.get_mut(i)) {
            Some(x) => {
                x.1 += 1;
                x.1
            }
            None => {
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
                let _ = e;
                self.episodes.push((id, 1));
                1
            }
        };
        // 10 ms doubling: 10, 20, ... 320, then 500.
        let pause = (FIRST_PAUSE_MS << (failures - 1).min(6)).min(MAX_PAUSE_MS);
        let _ = poller.delete(listener.socket());
        ctx.push_timer(now.plus_ms(u64::from(pause)), id);
        true
    }
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
