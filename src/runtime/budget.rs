//! The context-wide memory budget: what all connections of a context hold
//! for message reassembly and pending output, together
//! (`CtxConfig::memory_budget`).
//!
//! Accounting follows buffer *growth*, not messages: after the machine ran
//! (a read, a send, a flush), the connection's allocated bytes
//! ([`super::machine::Machine::memory`]) are compared with what it was
//! charged; only when they changed (a buffer grew or was released) is the
//! difference added to or taken from the context's counter, one atomic
//! add. A message that fits the buffers already there costs two loads and
//! a compare.
//!
//! A connection whose growth takes the context over its budget is closed:
//! with 1009 (message too big) when its reassembly grew, 1013 (try again
//! later) when its output grew; nothing else is touched. The check follows
//! the growth, so the budget can be exceeded by one buffer growth (at most
//! the frame or message limit) until that connection's buffers are
//! released, which closing does at once.
//!
//! A protocol extension that allocates per connection (permessage-deflate's
//! compressor state) counts in by adding its bytes to the engine's
//! `reassembly_capacity` (inflate) and `output_capacity` (deflate).

#[allow(unused_imports)]
use crate::prelude::*;

use super::conn::{ConnInner, ConnState};
use super::context::Context;
use crate::sync::atomic::Ordering;

/// Close status for a connection over the budget while receiving.
pub(crate) const OVER_BUDGET_RECEIVING: u16 = 1009;
/// Close status for a connection over the budget while sending.
pub(crate) const OVER_BUDGET_SENDING: u16 = 1013;

impl ConnInner {
    /// Charges the change of the connection's buffers to the context's
    /// budget. Returns the close status when its growth took the context
    /// over the budget (the caller closes it).
    #[inline]
    pub(crate) fn charge(&self, st: &mut ConnState) -> Option<u16> {
        let now = st.m.memory();
        if now == st.charged {
            return None;
        }
        self.charge_change(st, now)
    }

    #[cold]
    fn charge_change(&self, st: &mut ConnState, now: (usize, usize)) -> Option<u16> {
        let was = st.charged;
        st.charged = now;
        let (before, after) = (was.0 + was.1, now.0 + now.1);
        // One atomic add for growth and release alike (a release adds the
        // wrapped negative difference).
        let change = after.wrapping_sub(before);
        let total = self
            .ctx
            .memory_used
            .fetch_add(change, Ordering::Relaxed)
            .wrapping_add(change);
        if after <= before || total <= self.ctx.memory_budget.load(Ordering::Relaxed) {
            return None;
        }
        Some(if now.0 > was.0 {
            OVER_BUDGET_RECEIVING
        } else {
            OVER_BUDGET_SENDING
        })
    }
}

impl Drop for ConnInner {
    fn drop(&mut self) {
        // Whatever the connection still held goes back (a connection
        // dropped without being closed).
        let st = self.st.get_mut();
        let held = st.charged.0 + st.charged.1;
        if held > 0 {
            self.ctx.memory_used.fetch_sub(held, Ordering::Relaxed);
        }
    }
}

impl Context {
    /// Bytes the context's connections hold for reassembly and pending
    /// output (what counts against [`Context::memory_budget`]).
    pub fn memory_in_use(&self) -> usize {
        self.inner.memory_used.load(Ordering::Relaxed)
    }

    /// The context's memory budget (`CtxConfig::memory_budget`).
    pub fn memory_budget(&self) -> usize {
        self.inner.memory_budget.load(Ordering::Relaxed)
    }

    /// Sets the memory budget (bytes, at least 64 KiB; see
    /// `CtxConfig::memory_budget`).
    pub fn set_memory_budget(&self, bytes: usize) {
        self.update_config(|c| c.memory_budget = bytes.max(64 * 1024));
    }
}
