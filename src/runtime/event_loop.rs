//! The event loop: readiness from epoll/poll, no scan of every connection.

#[allow(unused_imports)]
use crate::prelude::*;

use super::accept_backoff::AcceptBackoff;
use super::conn::{ConnRole, Connection};
use super::context::{ctx_log, Context};
use super::dispatch::HandlerCache;
use super::machine::Action;
use crate::net::{self, Interest, Poller, Ready};
use crate::platform::Instant;
use crate::sync::atomic::Ordering;
use core::time::Duration;

/// Why [`Context::loop_wait`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoopExit {
    /// `loop_stop` was called (nopoll: 0).
    Stopped,
    /// The timeout expired (nopoll: -3).
    Timeout,
    /// The readiness backend failed, or another thread runs the loop (-4).
    Failed,
}

#[cfg(feature = "std")]
std::thread_local! {
    static IN_LOOP: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
}

/// True on a thread that is running an event loop (its callbacks included).
/// Without std (no thread-local storage) always false: callers then take
/// the path that is right from any thread (queue work for the loop).
pub(crate) fn in_loop() -> bool {
    #[cfg(feature = "std")]
    return IN_LOOP.with(|d| d.get() > 0);
    #[cfg(not(feature = "std"))]
    false
}

/// Counts a loop running on this thread (`+1` entering, `-1` leaving).
fn loop_depth(delta: i32) {
    #[cfg(feature = "std")]
    IN_LOOP.with(|d| d.set(d.get().wrapping_add_signed(delta)));
    #[cfg(not(feature = "std"))]
    let _ = delta;
}

/// Smallest receive buffer a loop uses, whatever the setting.
pub(crate) const MIN_RECV_BUF: usize = 256;
/// Reads per connection and wake-up, for fairness.
const READS_PER_WAKE: usize = 4;
/// Accepts per listener and wake-up.
const ACCEPTS_PER_WAKE: usize = 128;

const READ: Interest = Interest {
    read: true,
    write: false,
};
const READ_WRITE: Interest = Interest {
    read: true,
    write: true,
};

impl Context {
    /// Serves every registered connection until [`Context::loop_stop`] or
    /// until `timeout` (None = no timeout) expires.
    pub fn loop_wait(&self, timeout: Option<Duration>) -> LoopExit {
        let Some(mut poller) = self.inner.poller.lock().take() else {
            ctx_log!(
                self,
                Critical,
                "loop_wait: the loop of this context is already running"
            );
            return LoopExit::Failed;
        };
        self.inner.stop.store(false, Ordering::Release);
        loop_depth(1);
        let exit = self.run(&mut poller, timeout);
        loop_depth(-1);
        // Closes deferred to the loop (see `IoOps::close`) are done and the
        // poller put back under the io lock, so that none is deferred to a
        // loop that is no longer running.
        let mut io = self.inner.io.lock();
        for fd in core::mem::take(&mut io.close) {
            let _ = poller.delete(fd);
            net::close(fd);
        }
        *self.inner.poller.lock() = Some(poller);
        drop(io);
        exit
    }

    fn run(&self, poller: &mut Poller, timeout: Option<Duration>) -> LoopExit {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut events: Vec<Ready> = Vec::with_capacity(256);
        let size = self.inner.cfg.lock().recv_buffer_size.max(MIN_RECV_BUF);
        let mut buf = super::recv_buf::recv_buffer(self, size);
        let mut acts = Vec::new();
        let mut on_msg: HandlerCache = None;
        // Connections whose transport holds received bytes that readiness
        // will not report (see `transport.rs`): served before waiting, and
        // the wait does not block while there are any.
        let mut buffered: Vec<i32> = Vec::new();
        let mut backoff = AcceptBackoff::default();
        loop {
            if self.inner.stop.load(Ordering::Acquire) {
                return LoopExit::Stopped;
            }
            self.apply_io(poller);
            self.apply_watches(poller);
            let next_handshake = self.expire_handshakes();
            backoff.resume_due(self, poller);
            let next_handshake = [next_handshake, backoff.next_wake()]
                .into_iter()
                .flatten()
                .min();
            // No return on the timeout here: every call looks at readiness
            // at least once (a wait of 0 ms when the time is already up),
            // else a short timeout that the work above outlasts (a slow or
            // loaded machine, valgrind) returns again and again without
            // serving anything, a pending write or input included.
            let now = Instant::now();
            let wake_at = match (deadline, next_handshake) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let held = core::mem::take(&mut buffered);
            let ms = match wake_at {
                _ if !held.is_empty() => 0,
                None => -1,
                Some(t) => {
                    let left = t.saturating_duration_since(now);
                    // Round up so we do not spin just before the deadline.
                    (left.as_micros().div_ceil(1000)).min(i32::MAX as u128) as i32
                }
            };
            if let Err(e) = poller.wait(&mut events, ms) {
                ctx_log!(self, Critical, "loop_wait: readiness wait failed: {e}");
                return LoopExit::Failed;
            }
            for ev in events.iter().copied() {
                if self.serve_watched(&ev) {
                    continue;
                }
                let Some(conn) = self.lookup(ev.token as i32) else {
                    continue;
                };
                if conn.role() == ConnRole::Listener {
                    self.accept_batch(poller, &conn, &mut backoff);
                    continue;
                }
                if ev.writable {
                    let _ = conn.complete_pending_write();
                    if !conn.inner.clear_write_watch() && conn.socket() >= 0 {
                        let _ = poller.modify(conn.socket(), conn.id() as u64, READ);
                    } else if conn.socket() >= 0 {
                        let _ = poller.modify(conn.socket(), conn.id() as u64, READ_WRITE);
                    }
                }
                // A TLS handshake that waited for the socket to be
                // writable goes on.
                let handshake_write = ev.writable && conn.inner.io.tls_handshaking();
                if ev.readable || ev.hangup || ev.error || handshake_write {
                    self.serve(&conn, &mut buf, &mut acts, &mut on_msg);
                    if conn.inner.io.has_buffered_input() {
                        buffered.push(conn.id());
                    }
                }
                if self.inner.stop.load(Ordering::Acquire) {
                    break;
                }
            }
            for id in held {
                let Some(conn) = self.lookup(id) else {
                    continue;
                };
                if conn.inner.io.has_buffered_input() && !buffered.contains(&id) {
                    self.serve(&conn, &mut buf, &mut acts, &mut on_msg);
                    if conn.inner.io.has_buffered_input() {
                        buffered.push(id);
                    }
                }
            }
            if deadline.is_some_and(|d| d <= Instant::now())
                && !self.inner.stop.load(Ordering::Acquire)
            {
                return LoopExit::Timeout;
            }
        }
    }

    /// Reads a connection's input and runs its callbacks.
    fn serve(
        &self,
        conn: &Connection,
        buf: &mut [u8],
        acts: &mut Vec<Action>,
        on_msg: &mut HandlerCache,
    ) {
        for _ in 0..READS_PER_WAKE {
            // Raises defer_flush when messages came (sends are batched).
            let got = conn.receive_into(self, buf, acts, true);
            let had_msgs = acts.iter().any(Action::is_message);
            conn.dispatch_drain(self, acts, None, buf, on_msg);
            if had_msgs {
                let mut st = conn.inner.st.lock();
                st.defer_flush -= 1;
                if st.defer_flush == 0 {
                    let _ = conn.inner.flush_locked(&mut st);
                    // The handlers' answers are out: large buffers of an
                    // idle connection go back.
                    if got < buf.len() && conn.inner.pending_locked(&st) == 0 {
                        conn.inner.release_idle_buffers(&mut st);
                    }
                }
            }
            // A short read means the socket is drained: the poller is
            // level-triggered and reports anything that arrives later, so
            // no second recv just to hear EAGAIN.
            if got < buf.len() || !conn.is_ok() {
                break;
            }
        }
    }

    fn accept_batch(
        &self,
        poller: &mut Poller,
        listener: &Connection,
        backoff: &mut AcceptBackoff,
    ) {
        for _ in 0..ACCEPTS_PER_WAKE {
            let lfd = listener.socket();
            if lfd < 0 {
                return;
            }
            let r = net::accept_with_peer(lfd);
            if backoff.check(self, poller, listener, &r) {
                return; // paused: see accept_backoff
            }
            match r {
                Ok(Some((fd, peer))) => {
                    // A closed connection may have left a pending "unwatch"
                    // for this (reused) socket number: it must not remove
                    // the watch added here.
                    self.inner.io.lock().changes.remove(&fd);
                    let conn = Connection::accepted(self, Some(listener), fd, peer);
                    if let Err(e) = poller.add(fd, conn.id() as u64, READ) {
                        ctx_log!(self, Critical, "cannot watch accepted socket {fd}: {e}");
                        conn.shutdown();
                        continue;
                    }
                    ctx_log!(
                        self,
                        Debug,
                        "accepted conn id={} from {}:{}",
                        conn.id(),
                        conn.host(),
                        conn.port()
                    );
                    let h = self.inner.cfg.lock().on_accept.clone();
                    if let Some(h) = h {
                        if !h(self, &conn) {
                            ctx_log!(self, Debug, "conn id={} refused by on_accept", conn.id());
                            conn.shutdown();
                            self.unregister(&conn);
                            continue;
                        }
                    }
                    // TLS starts after on_accept (as upstream); the loop
                    // drives its handshake like the WebSocket one.
                    if listener.inner.io.is_tls() {
                        conn.start_server_tls(self, Some(listener));
                    }
                }
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// Applies watch changes requested from outside the loop.
    fn apply_io(&self, poller: &mut Poller) {
        let ops = core::mem::take(&mut *self.inner.io.lock());
        for fd in ops.close {
            let _ = poller.delete(fd);
            net::close(fd);
        }
        for (fd, change) in ops.changes {
            let _ = poller.delete(fd);
            if let Some(id) = change {
                // The connection may have closed (and its socket number been
                // reused) since; only watch it if it still owns the socket.
                if self.lookup(id).is_some_and(|c| c.socket() == fd) {
                    if let Err(e) = poller.add(fd, id as u64, READ) {
                        ctx_log!(self, Critical, "cannot watch socket {fd}: {e}");
                    }
                }
            }
        }
        for id in ops.want_write {
            if let Some(c) = self.lookup(id) {
                if c.socket() >= 0 {
                    let _ = poller.modify(c.socket(), id as u64, READ_WRITE);
                }
            }
        }
        for id in ops.dead {
            if let Some(c) = self.lookup(id) {
                self.unregister(&c);
            }
        }
    }

    /// Drops connections whose handshake deadline passed; returns the next
    /// deadline.
    fn expire_handshakes(&self) -> Option<Instant> {
        let now = Instant::now();
        loop {
            let (at, id) = {
                let mut q = self.inner.deadlines.lock();
                match q.front() {
                    Some(&(at, id)) if at <= now => {
                        q.pop_front();
                        (at, id)
                    }
                    Some(&(at, _)) => return Some(at),
                    None => return None,
                }
            };
            let _ = at;
            if let Some(conn) = self.lookup(id) {
                if conn.inner.expire() {
                    ctx_log!(
                        self,
                        Warning,
                        "conn id={} from {}: handshake timed out",
                        conn.id(),
                        conn.host()
                    );
                    conn.dispatch(self, vec![Action::Closed], None);
                }
            }
        }
    }
}
