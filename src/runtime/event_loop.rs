//! The event loop: readiness from epoll/poll, no scan of every connection.

#[allow(unused_imports)]
use crate::prelude::*;

use super::accept_backoff;
use super::conn::{ConnRole, ConnState, Connection};
use super::context::{ctx_log, Context};
use super::dispatch::HandlerCache;
use super::machine::Actions;
use crate::net::{self, Interest, Poller, Ready, Socket};
use crate::platform::Instant;
use crate::sync::atomic::{AtomicBool, Ordering};
use core::cell::UnsafeCell;
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

/// One change to the poller requested from outside the loop.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum IoOp {
    /// Watch socket for reading for this connection id, or (`None`) stop.
    Watch(Socket, Option<i32>),
    /// Output waits for writability on this connection.
    WantWrite(i32),
    /// The connection died outside the loop (to unregister).
    Dead(i32),
    /// Close this socket once out of the poll set (firmware stacks:
    /// closing a socket another thread is polling can hang lwIP); only
    /// while the loop runs (its poller is busy: `LoopPoller::busy`).
    Close(Socket),
}

/// Changes to the poller requested from outside the loop, in request
/// order: one list, applied by one loop (four lists cost firmware four
/// takes, loops and drops). Watch changes are merged per socket, so the
/// queue stays bounded by the number of sockets and connections.
#[derive(Default)]
pub(crate) struct IoOps {
    pub ops: Vec<IoOp>,
}

impl IoOps {
    /// Watches `fd` for connection `id` (`None`: stops watching it),
    /// replacing an earlier change of the same socket.
    pub fn watch(&mut self, fd: Socket, id: Option<i32>) {
        let op = IoOp::Watch(fd, id);
        match self
            .ops
            .iter_mut()
            .find(|o| matches!(o, IoOp::Watch(f, _) if *f == fd))
        {
            Some(o) => *o = op,
            None => self.ops.push(op),
        }
    }

    /// Queues a wait for writability of connection `id`.
    pub fn want_write(&mut self, id: i32) {
        self.ops.push(IoOp::WantWrite(id));
    }

    /// Queues connection `id`, dead outside the loop, to be unregistered.
    pub fn dead(&mut self, id: i32) {
        self.ops.push(IoOp::Dead(id));
    }

    /// Queues socket `fd` to be closed once out of the poll set.
    pub fn close(&mut self, fd: Socket) {
        self.ops.push(IoOp::Close(fd));
    }
}

/// A context's poller, used by one running loop at a time: the loop that
/// raises `busy` has it alone until it lowers `busy` again. In place, not
/// a `Lock<Option<Poller>>` it is moved out of and back into (two copies
/// of it, its drop and a mutex per context on firmware).
pub(crate) struct LoopPoller {
    busy: AtomicBool,
    poller: UnsafeCell<Poller>,
}

// SAFETY: the poller is reached only by the one loop that raised `busy`
// (`LoopPoller::run`); `Poller` is `Send`.
unsafe impl Sync for LoopPoller {}

impl LoopPoller {
    pub(crate) fn new(poller: Poller) -> LoopPoller {
        LoopPoller {
            busy: AtomicBool::new(false),
            poller: UnsafeCell::new(poller),
        }
    }

    /// A loop has the poller (look under the io lock: the loop gives it
    /// back under that lock, see [`LoopPoller::run`]).
    pub(crate) fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Runs `f` with the poller, unless a loop has it already (`None`).
    /// `f` returns a guard (the io lock) that is dropped only after the
    /// poller is free again, and its result.
    fn run<G, R>(&self, f: impl FnOnce(&mut Poller) -> (G, R)) -> Option<R> {
        if self
            .busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        // SAFETY: raising `busy` made this the poller's only user until it
        // is lowered below, after `f` returned.
        let (guard, r) = f(unsafe { &mut *self.poller.get() });
        self.busy.store(false, Ordering::Release);
        drop(guard);
        Some(r)
    }
}

impl Context {
    /// Queues a watch change of `fd` (see [`IoOps::watch`]) and, with
    /// `wake`, wakes the loop: one body for the sites that ask for one.
    #[inline(never)]
    pub(crate) fn queue_watch(&self, fd: Socket, id: Option<i32>, wake: bool) {
        self.inner.io.lock().watch(fd, id);
        if wake {
            self.inner.waker.wake();
        }
    }

    /// Serves every registered connection until [`Context::loop_stop`] or
    /// until `timeout` (None = no timeout) expires.
    pub fn loop_wait(&self, timeout: Option<Duration>) -> LoopExit {
        self.loop_wait_us(timeout.map(crate::platform::duration_us))
    }

    /// [`Context::loop_wait`] with the timeout in microseconds (the C
    /// API's unit: no `Duration` on the way).
    pub(crate) fn loop_wait_us(&self, timeout_us: Option<u64>) -> LoopExit {
        let exit = self.inner.poller.run(|poller| {
            self.inner.stop.store(false, Ordering::Release);
            loop_depth(1);
            let exit = self.run(poller, timeout_us);
            loop_depth(-1);
            // The queue is applied to the end (closes deferred to the loop,
            // see `IoOp::Close`, included) and the poller given back under
            // the io lock, so that none is deferred to a loop that is no
            // longer running.
            loop {
                let io = self.inner.io.lock();
                if io.ops.is_empty() {
                    return (io, exit);
                }
                drop(io);
                self.apply_io(poller);
            }
        });
        exit.unwrap_or_else(|| {
            ctx_log!(
                self,
                Critical,
                "loop_wait: the loop of this context is already running"
            );
            LoopExit::Failed
        })
    }

    fn run(&self, poller: &mut Poller, timeout_us: Option<u64>) -> LoopExit {
        let deadline = timeout_us.map_or(Instant::NEVER, |us| Instant::now().plus_us(us));
        // Grown by the first waits to what they report (a firmware loop:
        // a few entries, not 4 KiB for 256).
        let mut events: Vec<Ready> = Vec::new();
        let size = self.inner.cfg.lock().recv_buffer_size.max(MIN_RECV_BUF);
        let mut buf = super::recv_buf::recv_buffer(self, size);
        let mut acts = Actions::default();
        let mut on_msg: HandlerCache = None;
        // Connections whose transport holds received bytes that readiness
        // will not report (see `transport.rs`) are held in the poller
        // (`Poller::hold`): reported readable, without blocking, until
        // served dry; the poller keeps them from one `loop_wait` call to
        // the next (the next must not wait for readiness that will not
        // come).
        loop {
            if self.inner.stop.load(Ordering::Acquire) {
                break LoopExit::Stopped;
            }
            self.apply_io(poller);
            self.apply_watches(poller);
            // One clock read for the timers and the wait, one after it.
            let now = Instant::now();
            let next = self.run_timers(poller, now).min(self.run_keepalive());
            // No return on the timeout here: every call looks at readiness
            // at least once (a wait of 0 ms when the time is already up),
            // else a short timeout that the work above outlasts (a slow or
            // loaded machine, valgrind) returns again and again without
            // serving anything, a pending write or input included.
            let wake = deadline.min(next);
            let ms = if wake == Instant::NEVER {
                -1
            } else {
                // Rounded up so we do not spin just before the deadline.
                now.wait_ms(wake)
            };
            if let Err(e) = poller.wait(&mut events, ms) {
                ctx_log!(self, Critical, "loop_wait: readiness wait failed: {e}");
                break LoopExit::Failed;
            }
            let now = Instant::now();
            // Keepalive: input times are stamped with this clock read
            // (none while it is off). Acquire, as every other flag load:
            // with one ordering a firmware links no out-of-line load.
            let stamp = self
                .inner
                .keepalive_on
                .load(Ordering::Acquire)
                .then(|| now.as_micros());
            for ev in &events {
                if self.serve_watched(ev) {
                    continue;
                }
                let Some(conn) = self.lookup(ev.token as i32) else {
                    poller.hold(ev.token, false); // gone
                    continue;
                };
                if conn.role() == ConnRole::Listener {
                    self.accept_batch(poller, &conn, now);
                    continue;
                }
                // Reading resumed after a backlog (what the transport
                // holds is not reported by readiness), or a TLS handshake
                // that waited for the socket to be writable: read now.
                let mut read = ev.readable;
                if ev.writable {
                    let _ = conn.complete_pending_write();
                    let pending = conn.inner.clear_write_watch();
                    read |= self.rewatch(poller, &conn, pending) || conn.inner.io.tls_handshaking();
                }
                if ev.hangup || ev.error {
                    // Reported even without read interest: read, which
                    // ends the connection, rather than spin on it.
                    conn.inner.st.lock().read_paused = false;
                    read = true;
                }
                if read {
                    let more = self.serve(&conn, &mut buf, &mut acts, &mut on_msg, stamp);
                    poller.hold(ev.token, more);
                }
                if self.inner.stop.load(Ordering::Acquire) {
                    break;
                }
            }
            if deadline <= now && !self.inner.stop.load(Ordering::Acquire) {
                break LoopExit::Timeout;
            }
        }
    }

    /// Reads a connection's input and runs its callbacks. `stamp`: the
    /// time to record as its last input (keepalive on). True when its
    /// transport still holds input that readiness will not report (to be
    /// served before the next wait).
    fn serve(
        &self,
        conn: &Connection,
        buf: &mut [u8],
        acts: &mut Actions,
        on_msg: &mut HandlerCache,
        stamp: Option<u64>,
    ) -> bool {
        self.serve_reads(conn, buf, acts, on_msg, stamp);
        conn.inner.io.has_buffered_input() && !conn.inner.st.lock().read_paused
    }

    /// [`Context::serve`]'s reads and callbacks.
    fn serve_reads(
        &self,
        conn: &Connection,
        buf: &mut [u8],
        acts: &mut Actions,
        on_msg: &mut HandlerCache,
        stamp: Option<u64>,
    ) {
        for _ in 0..READS_PER_WAKE {
            // Raises defer_flush when messages came (sends are batched).
            let got = conn.receive_into(self, buf, acts, true);
            let had_msgs = !acts.msgs.is_empty();
            conn.dispatch_drain(self, acts, None, buf, on_msg);
            let mut over = None;
            let paused;
            {
                let mut st = conn.inner.st.lock();
                if let (Some(t), true) = (stamp, got > 0) {
                    st.cold().last_input = t;
                }
                if had_msgs {
                    st.defer_flush -= 1;
                    if st.defer_flush == 0 {
                        let _ = conn.inner.flush_locked(&mut st);
                        // The handlers' answers are out: large buffers of an
                        // idle connection go back.
                        if got < buf.len() && conn.inner.pending_locked(&st) == 0 {
                            conn.inner.release_idle_buffers(&mut st);
                        }
                        // The batch's answers, charged once (`budget.rs`).
                        over = conn.inner.charge(&mut st);
                    }
                }
                paused = if over.is_none() {
                    self.pause_if_backlogged(conn, &mut st)
                } else {
                    None
                };
            }
            if paused == Some(true) {
                ctx_log!(
                    self,
                    Debug,
                    "conn id={}: output backlog over the limit; not reading until it drains",
                    conn.id()
                );
            }
            if let Some(code) = over {
                conn.over_budget(code);
                return;
            }
            // A short read means the socket is drained: the poller is
            // level-triggered and reports anything that arrives later, so
            // no second recv just to hear EAGAIN.
            if paused.is_some() || got < buf.len() || !conn.is_ok() {
                break;
            }
        }
    }

    /// Read backpressure: stops reading a connection whose refused output
    /// is over the limit (`Machine::wants_read`), until it drains (see
    /// `rewatch`). `Some` if it is paused (`Some(true)`: just now).
    #[inline]
    fn pause_if_backlogged(&self, conn: &Connection, st: &mut ConnState) -> Option<bool> {
        let limit = self.inner.max_pending_output.load(Ordering::Relaxed);
        if st.m.wants_read(limit) {
            return None;
        }
        if st.read_paused || conn.socket() < 0 {
            return Some(false);
        }
        st.read_paused = true;
        st.write_watch = true;
        self.inner.io.lock().want_write(conn.id());
        Some(true)
    }

    /// Sets a connection's interest after a write: write while output is
    /// `pending`, read unless paused by backpressure (which ends here once
    /// the output is back under the limit). True if reading resumed.
    fn rewatch(&self, poller: &mut Poller, conn: &Connection, pending: bool) -> bool {
        let fd = conn.socket();
        if fd < 0 {
            return false;
        }
        let limit = self.inner.max_pending_output.load(Ordering::Relaxed);
        let mut st = conn.inner.st.lock();
        let resumed = st.read_paused && st.m.wants_read(limit);
        if resumed {
            st.read_paused = false;
        }
        let interest = Interest {
            read: !st.read_paused,
            write: pending || st.read_paused,
        };
        if interest.write {
            st.write_watch = true;
        }
        drop(st);
        let _ = poller.modify(fd, conn.id() as usize, interest);
        resumed
    }

    fn accept_batch(&self, poller: &mut Poller, listener: &Connection, now: Instant) {
        for _ in 0..ACCEPTS_PER_WAKE {
            let lfd = listener.socket();
            if lfd < 0 {
                return;
            }
            let r = net::accept_with_peer(lfd);
            if accept_backoff::check(self, poller, listener, &r, now) {
                return; // paused: see accept_backoff
            }
            match r {
                Ok(Some((fd, peer))) => {
                    let conn = Connection::accepted(self, Some(listener), fd, peer);
                    // Watched from the next round on, before its wait: the
                    // change replaces an "unwatch" a closed connection may
                    // have left for this (reused) socket number. No wake-up
                    // needed: this is the loop.
                    self.queue_watch(fd, Some(conn.id()), false);
                    ctx_log!(
                        self,
                        Debug,
                        "accepted conn id={} from {}:{}",
                        conn.id(),
                        conn.host(),
                        conn.port()
                    );
                    let h = self.inner.cfg.lock().on_accept.clone();
                    if !conn.run_action(self, h) {
                        ctx_log!(self, Debug, "conn id={} refused by on_accept", conn.id());
                        conn.shutdown();
                        self.unregister(&conn);
                        continue;
                    }
                    // TLS starts after on_accept (as upstream); the loop
                    // drives its handshake like the WebSocket one.
                    if listener.inner.io.is_tls() {
                        self.start_server_tls(&conn, Some(listener));
                    }
                }
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// Applies the changes requested from outside the loop, in request
    /// order.
    fn apply_io(&self, poller: &mut Poller) {
        let ops = core::mem::take(&mut self.inner.io.lock().ops);
        for op in ops {
            let (fd, id) = match op {
                IoOp::Watch(fd, id) => (fd, id),
                IoOp::Close(fd) => {
                    let _ = poller.delete(fd);
                    net::close(fd);
                    continue;
                }
                IoOp::WantWrite(id) => {
                    if let Some(c) = self.lookup(id) {
                        let _ = self.rewatch(poller, &c, true);
                    }
                    continue;
                }
                IoOp::Dead(id) => {
                    if let Some(c) = self.lookup(id) {
                        self.unregister(&c);
                    }
                    continue;
                }
            };
            let _ = poller.delete(fd);
            // The connection may have closed (and its socket number been
            // reused) since; only watch it if it still owns the socket.
            if let Some(c) = id
                .and_then(|id| self.lookup(id))
                .filter(|c| c.socket() == fd)
            {
                if let Err(e) = poller.add(fd, c.id() as usize, READ) {
                    ctx_log!(self, Critical, "cannot watch socket {fd}: {e}");
                    c.shutdown();
                }
            }
        }
    }

    /// Runs the timers that are due at `now` (`Context::push_timer`):
    /// drops connections whose handshake deadline passed, watches again
    /// listeners whose accept pause is over. Returns the next one
    /// ([`Instant::NEVER`]: none).
    fn run_timers(&self, poller: &mut Poller, now: Instant) -> Instant {
        loop {
            let id = {
                let mut q = self.inner.conns.lock();
                match q.timers.first() {
                    // O(queue) a timer that fires: the queue is short.
                    Some(&(at, _)) if at <= now => q.timers.remove(0).1,
                    next => return next.map_or(Instant::NEVER, |&(at, _)| at),
                }
            };
            let Some(conn) = self.lookup(id) else {
                continue;
            };
            if conn.role() == ConnRole::Listener {
                // Its accept pause is over (see `accept_backoff.rs`).
                let fd = conn.socket();
                if fd >= 0 {
                    if let Err(e) = poller.add(fd, id as usize, READ) {
                        ctx_log!(self, Critical, "cannot watch listener {fd}: {e}");
                    }
                }
            } else if conn.inner.expire() {
                ctx_log!(
                    self,
                    Warning,
                    "conn id={} from {}: handshake timed out",
                    conn.id(),
                    conn.host()
                );
                conn.dispatch(self, Actions::closed(), None);
            }
        }
    }
}
