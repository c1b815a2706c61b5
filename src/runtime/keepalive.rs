//! Keepalive and dead peers: an automatic ping after a while without
//! input, a close when its answer does not come, an idle timeout
//! (`CtxConfig::ping_interval_ms`, `pong_timeout_ms`, `idle_timeout_ms`).
//! Off by default (upstream nopoll has none).
//!
//! One queue of checks per context, earliest first, served by the event
//! loop before it waits (as the handshake deadlines are): each open
//! connection has one entry, re-armed when it is checked, never moved
//! when input arrives (the loop only stamps the time of each read, one
//! store under the lock it takes anyway, with one clock read per wake-up). Check times are rounded up to a tick (a sixteenth of the
//! shortest setting, 10 ms to 1 s), so connections' checks share
//! wake-ups: the loop wakes at most once per tick, however many
//! connections there are. While off, a connection costs nothing and the
//! loop one atomic load per wake-up.
//!
//! The rule itself (what a check decides) is
//! [`super::machine::keepalive_check`], tested in `machine_tests.rs`.

#[allow(unused_imports)]
use crate::prelude::*;

use super::conn::{ConnInner, ConnRole};
use super::context::{ctx_log, Context};
use super::machine::{keepalive_check, Keepalive, KeepaliveStep};
use crate::platform::Instant;
use crate::sync::atomic::Ordering;
use core::cmp::Reverse;
use core::time::Duration;

/// The keepalive code, reached only through this table in the context's
/// configuration: only [`Context::set_keepalive`] and
/// [`Context::set_idle_timeout`] install it, so a firmware that never
/// turns keepalive on links none of it.
pub(crate) struct KeepaliveImp {
    arm: fn(&Context, &ConnInner),
    /// After a configuration change: keepalive is on (or off).
    pub changed: fn(&Context, bool),
    run: fn(&Context) -> Instant,
}

static KEEPALIVE: KeepaliveImp = KeepaliveImp {
    arm: Context::arm_checks,
    changed: Context::keepalive_changed,
    run: Context::run_checks,
};

impl Context {
    /// Gives a connection its first keepalive check (keepalive on).
    pub(crate) fn arm_keepalive(&self, c: &ConnInner) {
        let imp = self.inner.cfg.lock().keepalive;
        if let Some(k) = imp {
            (k.arm)(self, c);
        }
    }

    /// Runs the keepalive checks that are due; returns when the next one
    /// is. One atomic load while keepalive is off.
    /// ([`Instant::NEVER`]: none).
    pub(crate) fn run_keepalive(&self) -> Instant {
        if !self.inner.keepalive_on.load(Ordering::Acquire) {
            return Instant::NEVER;
        }
        let imp = self.inner.cfg.lock().keepalive;
        imp.map_or(Instant::NEVER, |k| (k.run)(self))
    }

    fn keepalive_settings(&self) -> Keepalive {
        let c = self.inner.cfg.lock();
        let ms = |v: u64| (v > 0).then(|| Duration::from_millis(v));
        Keepalive {
            ping_interval: ms(c.ping_interval_ms),
            pong_timeout: ms(c.pong_timeout_ms),
            idle_timeout: ms(c.idle_timeout_ms),
        }
    }

    /// Sets the keepalive: ping after `ping_interval` without input, close
    /// (1006) when nothing answers within `pong_timeout` (`None`: the
    /// interval). `None` interval: no pings.
    pub fn set_keepalive(&self, ping_interval: Option<Duration>, pong_timeout: Option<Duration>) {
        let ms = |d: Option<Duration>| d.map_or(0, |d| (d.as_millis() as u64).max(1));
        self.update_config(|c| {
            c.keepalive = Some(&KEEPALIVE);
            c.ping_interval_ms = ms(ping_interval);
            c.pong_timeout_ms = ms(pong_timeout);
        });
    }

    /// Closes (1001) connections from which nothing arrives for `idle`
    /// (`None`: never, the default).
    pub fn set_idle_timeout(&self, idle: Option<Duration>) {
        let ms = idle.map_or(0, |d| (d.as_millis() as u64).max(1));
        self.update_config(|c| {
            c.keepalive = Some(&KEEPALIVE);
            c.idle_timeout_ms = ms;
        });
    }

    /// The tick check times are rounded up to.
    fn keepalive_tick(ka: &Keepalive) -> u64 {
        let shortest = [ka.ping_interval, ka.pong_timeout, ka.idle_timeout]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(Duration::from_secs(1));
        (shortest.as_micros() as u64 / 16).clamp(10_000, 1_000_000)
    }

    fn push_check(&self, at: Instant, tick: u64, id: i32) {
        let us = at.as_micros().div_ceil(tick).saturating_mul(tick);
        self.with_extras(|e| e.keepalive.push(Reverse((Instant::from_micros(us), id))));
    }

    /// [`Context::arm_keepalive`]'s body.
    fn arm_checks(&self, c: &ConnInner) {
        let ka = self.keepalive_settings();
        let now = Instant::now();
        {
            let mut st = c.st.lock();
            let cold = st.cold();
            cold.last_input = now.as_micros();
            cold.ping_at = 0;
        }
        if let KeepaliveStep::Wait(at) = keepalive_check(&ka, now, now, None) {
            self.push_check(at, Self::keepalive_tick(&ka), c.id);
        }
        if !super::event_loop::in_loop() {
            // A loop waiting without a deadline must learn of the check
            // (the loop itself computes its next wake-up anyway).
            self.inner.waker.wake();
        }
    }

    /// [`KeepaliveImp::changed`]: turned on, every connection gets its
    /// first check; turned off, the checks are dropped.
    fn keepalive_changed(&self, on: bool) {
        if !on {
            self.inner.keepalive_on.store(false, Ordering::Release);
            self.with_extras(|e| e.keepalive.clear());
        } else if !self.inner.keepalive_on.swap(true, Ordering::AcqRel) {
            self.arm_keepalive_all();
        }
    }

    /// Keepalive turned on: every connection gets its first check.
    fn arm_keepalive_all(&self) {
        let conns: Vec<_> = self.inner.conns.lock().map.values().cloned().collect();
        self.with_extras(|e| e.keepalive.clear());
        for c in conns.iter().filter(|c| c.role != ConnRole::Listener) {
            self.arm_checks(c);
        }
    }

    /// [`Context::run_keepalive`]'s body.
    fn run_checks(&self) -> Instant {
        let ka = self.keepalive_settings();
        if !ka.is_on() {
            return Instant::NEVER;
        }
        let tick = Self::keepalive_tick(&ka);
        let now = Instant::now();
        loop {
            let due = self.with_extras(|e| match e.keepalive.peek() {
                Some(&Reverse((at, id))) if at <= now => {
                    e.keepalive.pop();
                    Ok(id)
                }
                Some(&Reverse((at, _))) => Err(at),
                None => Err(Instant::NEVER),
            });
            let id = match due {
                Ok(id) => id,
                Err(next) => return next,
            };
            let Some(conn) = self.lookup(id) else {
                continue;
            };
            if !conn.is_ok() {
                continue;
            }
            if !conn.inner.is_open() {
                // Still in its handshake (which has its own deadline).
                self.push_check(now + Duration::from_micros(tick), tick, id);
                continue;
            }
            let (last, ping_at) = {
                let mut st = conn.inner.st.lock();
                let c = st.cold();
                (c.last_input, c.ping_at)
            };
            let last = Instant::from_micros(last);
            let ping_at = (ping_at > 0).then(|| Instant::from_micros(ping_at));
            match keepalive_check(&ka, now, last, ping_at) {
                KeepaliveStep::Wait(at) => self.push_check(at, tick, id),
                KeepaliveStep::Ping(at) => {
                    conn.inner.st.lock().cold().ping_at = now.as_micros();
                    let _ = conn.send_ping(b"");
                    self.push_check(at, tick, id);
                }
                KeepaliveStep::Dead => {
                    ctx_log!(
                        self,
                        Warning,
                        "conn id={} from {}: no answer to the keepalive ping; closing (1006)",
                        conn.id(),
                        conn.host()
                    );
                    conn.shutdown();
                    // In the loop: leave the registry now, not at the
                    // next wake-up (the loop may be stopped before it).
                    self.unregister(&conn);
                }
                KeepaliveStep::Idle => {
                    ctx_log!(
                        self,
                        Warning,
                        "conn id={} from {}: idle timeout; closing (1001)",
                        conn.id(),
                        conn.host()
                    );
                    conn.close_now(Some(1001), b"idle timeout");
                }
            }
        }
    }
}
