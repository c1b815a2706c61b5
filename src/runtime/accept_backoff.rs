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
use crate::net::{Interest, NetError, NetResult, Poller, Socket};
use crate::platform::Instant;
use core::time::Duration;

/// First pause after a failed accept.
pub(crate) const FIRST_PAUSE: Duration = Duration::from_millis(10);
/// Longest pause: the delay before a freed descriptor is used.
pub(crate) const MAX_PAUSE: Duration = Duration::from_millis(500);

/// A listener in an episode of failing accepts.
struct Episode {
    id: i32,
    fd: Socket,
    since: Instant,
    failures: u64,
    pause: Duration,
    /// Not watched until then; `None` once watched again.
    until: Option<Instant>,
}

/// The listeners of one loop that are backing off (usually none).
#[derive(Default)]
pub(crate) struct AcceptBackoff {
    episodes: Vec<Episode>,
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
    ) -> bool {
        match r {
            Ok(_) => {
                if !self.episodes.is_empty() {
                    self.ended(ctx, listener.id());
                }
                false
            }
            Err(e) => {
                self.failed(ctx, poller, listener, *e);
                true
            }
        }
    }

    fn failed(&mut self, ctx: &Context, poller: &mut Poller, listener: &Connection, e: NetError) {
        let now = Instant::now();
        let (id, fd) = (listener.id(), listener.socket());
        let i = match self.episodes.iter().position(|x| x.id == id) {
            Some(i) => {
                let ep = &mut self.episodes[i];
                ep.pause = (ep.pause * 2).min(MAX_PAUSE);
                i
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
                self.episodes.push(Episode {
                    id,
                    fd,
                    since: now,
                    failures: 0,
                    pause: FIRST_PAUSE,
                    until: None,
                });
                self.episodes.len() - 1
            }
        };
        let ep = &mut self.episodes[i];
        ep.failures += 1;
        ep.fd = fd;
        ep.until = Some(now + ep.pause);
        let _ = poller.delete(fd);
    }

    fn ended(&mut self, ctx: &Context, id: i32) {
        if let Some(i) = self.episodes.iter().position(|x| x.id == id) {
            let ep = self.episodes.swap_remove(i);
            ctx_log!(
                ctx,
                Warning,
                "listener id={id} accepting again after {} ms ({} failed accepts)",
                ep.since.elapsed().as_millis(),
                ep.failures
            );
        }
    }

    /// Watches again the listeners whose pause is over, and forgets those
    /// that were closed meanwhile.
    pub(crate) fn resume_due(&mut self, ctx: &Context, poller: &mut Poller) {
        if self.episodes.is_empty() {
            return;
        }
        let now = Instant::now();
        self.episodes.retain_mut(|ep| {
            let Some(until) = ep.until else {
                // Watched again, not accepted on yet: kept while it lives.
                return ctx.lookup(ep.id).is_some_and(|l| l.socket() == ep.fd);
            };
            if until > now {
                return true;
            }
            ep.until = None;
            // The listener may have closed (and its number been reused).
            match ctx.lookup(ep.id) {
                Some(l) if l.socket() == ep.fd => {
                    let _ = poller.delete(ep.fd);
                    let read = Interest {
                        read: true,
                        write: false,
                    };
                    if let Err(e) = poller.add(ep.fd, ep.id as u64, read) {
                        ctx_log!(ctx, Critical, "cannot watch listener {}: {e}", ep.fd);
                        return false;
                    }
                    true
                }
                _ => false,
            }
        });
    }

    /// When the next paused listener is due to be watched again.
    pub(crate) fn next_wake(&self) -> Option<Instant> {
        self.episodes.iter().filter_map(|ep| ep.until).min()
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
