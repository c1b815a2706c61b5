//! Message dispatch: runs the state machine's actions with no lock held
//! (`on_open`, `on_ready`, HTTP requests, messages to their handler or the
//! `get_msg` queue, `on_close`).

#[allow(unused_imports)]
use crate::prelude::*;

use super::conn::Connection;
use super::context::{ctx_log, ActionHandler, Context, DispatchHandler};
use super::machine::{Actions, Incoming};
use super::message::Message;
use crate::sync::atomic::Ordering;

/// Where [`Connection::dispatch_drain`] puts messages when given: the
/// connection's inbox (`get_msg`), whatever handler is set.
pub(crate) struct ToInbox;

/// A message handler looked up once and kept until `handlers_epoch` moves
/// (a lookup costs locks and a reference count).
pub(crate) type HandlerCache = Option<(usize, Option<DispatchHandler>)>;

/// The handler in `cache`, looked up again with `load` if `epoch` moved.
#[cfg(feature = "std")]
#[inline(always)]
fn cached_handler(
    cache: &mut HandlerCache,
    epoch: usize,
    load: impl FnOnce() -> Option<DispatchHandler>,
) -> Option<&DispatchHandler> {
    if !matches!(cache, Some((e, _)) if *e == epoch) {
        *cache = Some((epoch, load()));
    }
    cache.as_ref().and_then(|(_, h)| h.as_ref())
}

/// Runs the log lines of `acts` (none are made with `no-log`).
fn log_lines(ctx: &Context, acts: &mut Actions) {
    #[cfg(not(feature = "no-log"))]
    for (level, line) in acts.logs.drain(..) {
        ctx.log(level, format_args!("{line}"));
    }
    #[cfg(feature = "no-log")]
    let _ = (ctx, acts);
}

impl Connection {
    /// Runs the results of ingestion without holding any lock.
    pub(crate) fn dispatch(&self, ctx: &Context, mut acts: Actions, sink: Option<ToInbox>) {
        self.dispatch_drain(ctx, &mut acts, sink, &[], &mut None);
    }

    /// [`Connection::dispatch`], leaving `acts` empty with its capacity
    /// (the loop reuses one for every read). `input` is the buffer that
    /// [`Incoming::Input`] messages point into. `ctx_handler` keeps the
    /// context's message handler from one call to the next (the loop's).
    pub(crate) fn dispatch_drain(
        &self,
        ctx: &Context,
        acts: &mut Actions,
        sink: Option<ToInbox>,
        input: &[u8],
        ctx_handler: &mut HandlerCache,
    ) {
        log_lines(ctx, acts);
        if core::mem::take(&mut acts.on_open) {
            let h = ctx.inner.cfg.lock().on_open.clone();
            let ok = self.run_action(ctx, h);
            // What follows (ready, the messages sent meanwhile, or the
            // close) is added to `acts` and dispatched below.
            self.inner.finish_open(ctx, ok, acts);
            log_lines(ctx, acts);
        }
        if let Some(req) = acts.http.take() {
            let h = ctx.inner.cfg.lock().on_http.clone();
            match h {
                Some(h) => h(ctx, self, &req),
                None => {
                    let mut st = self.inner.st.lock();
                    st.m.queue_http_default();
                    let _ = self.inner.flush_locked(&mut st);
                }
            }
            self.finish_http();
        }
        if core::mem::take(&mut acts.ready) {
            ctx_log!(ctx, Debug, "conn id={} ready", self.id());
            // The context's handler, then the connection's (each looked
            // up when its turn comes, as upstream does).
            let h = ctx.inner.cfg.lock().on_ready.clone();
            let ok = self.run_action(ctx, h) && {
                let h = self.inner.st.lock().on_ready();
                self.run_action(ctx, h)
            };
            if !ok {
                self.close(None, b"");
            }
        }
        // The message handler, looked up once per batch (two locks and a
        // reference count otherwise, per message) and again only if a
        // handler was replaced meanwhile; the context's, without locking
        // this connection, when it has none of its own.
        #[cfg(feature = "std")]
        let mut own_handler: HandlerCache = None;
        #[cfg(not(feature = "std"))]
        let _ = (input, ctx_handler);
        // By reference, then all dropped at once (most were taken by
        // the handler or the inbox): no `Drain` with its drop per message
        // and its tail move.
        for msg in acts.msgs.iter_mut() {
            // Everything received is delivered until `on_close` has run: a
            // read holding data and then the peer's close frame (or a
            // protocol error) marks the connection closed before its
            // messages are dispatched.
            if !self.is_ok() && self.inner.st.lock().close_fired {
                continue;
            }
            // One path for both kinds, by reference: a message left in the
            // input is filled in place and handed straight to the handler,
            // never moved (a move is 24 instructions per message for the
            // Rust echo server: measured at 862915a with
            // benches/instructions.sh).
            #[cfg(feature = "std")]
            let mut built: Message;
            // (One kind without std: see `Machine::feed_engine`.)
            #[cfg_attr(not(feature = "std"), allow(clippy::infallible_destructuring_match))]
            let m: &mut Message = match msg {
                Incoming::Message(m) => m,
                #[cfg(feature = "std")]
                Incoming::Input { kind, start, len } => {
                    built = Message::empty();
                    if !built.set_whole(*kind, &input[*start..*start + *len]) {
                        ctx_log!(
                            ctx,
                            Critical,
                            "conn id={}: no memory for a message of {len} bytes",
                            self.id()
                        );
                        self.close(Some(1009), b"");
                        continue;
                    }
                    &mut built
                }
            };
            // The connection's own handler when it has one, else the
            // context's; none for a reader's messages (`sink`).
            let own = self.inner.own_on_msg.load(Ordering::Acquire);
            let load = || {
                if sink.is_some() {
                    return None;
                }
                let h = if own {
                    self.inner.st.lock().on_msg()
                } else {
                    None
                };
                h.or_else(|| ctx.inner.cfg.lock().on_msg.clone())
            };
            // Kept in this batch's cache (the connection's own) or the
            // caller's (the context's alone, without locking this
            // connection) until a handler is replaced.
            #[cfg(feature = "std")]
            let h = {
                let epoch = ctx.inner.handlers_epoch.load(Ordering::Acquire);
                let cache = if own {
                    &mut own_handler
                } else {
                    &mut *ctx_handler
                };
                cached_handler(cache, epoch, load)
            };
            // Without std, looked up for each message: the cache is for
            // threaded servers (its locks are contended, its reference
            // counts shared between cores), and its code is larger than
            // the lookup.
            #[cfg(not(feature = "std"))]
            let loaded = load();
            #[cfg(not(feature = "std"))]
            let h = loaded.as_ref();
            match h {
                Some(h) => h(ctx, self, m),
                None => self
                    .inner
                    .queue_inbox(ctx, core::mem::take(m), sink.is_some()),
            }
        }
        acts.msgs.clear();
        if core::mem::take(&mut acts.closed) {
            // Messages that came before the close and are not handed out
            // yet come first, for a caller that reads them with get_msg
            // (is_ready, wait_ready, get_msg itself). The loop closes at
            // once: it reads no inbox, and a close waiting for a reader that
            // never comes would keep the socket (the inbox stays readable
            // after the close, as before).
            let undelivered =
                (sink.is_some() || !super::event_loop::in_loop()) && self.inner.has_inbox();
            if undelivered {
                self.inner.defer_close(ctx);
            } else {
                self.closed_now(ctx);
            }
        }
    }

    /// Runs an action handler (`on_accept`, `on_open`, `on_ready`) with no
    /// lock held; true without one. One call (and one drop of the handler)
    /// for all.
    #[inline(never)]
    pub(crate) fn run_action(&self, ctx: &Context, h: Option<ActionHandler>) -> bool {
        h.is_none_or(|h| h(ctx, self))
    }

    /// Delivers the close: `is_ok` turns false, the close status shows,
    /// `on_close` runs, the socket is released.
    pub(crate) fn closed_now(&self, ctx: &Context) {
        self.deliver_closed(ctx, super::event_loop::in_loop());
    }

    /// [`Connection::closed_now`], for every close (the peer's, this
    /// side's, a shutdown): `unregister` leaves the context at once;
    /// otherwise (found dead while polling: get_msg, is_ready..., or shut
    /// down) it stays registered, its close status readable as upstream,
    /// until the caller closes it or a loop pass drops it.
    pub(crate) fn deliver_closed(&self, ctx: &Context, unregister: bool) {
        // Delivered, and `on_close` taken to run once, under one lock.
        let h = {
            let mut st = self.inner.st.lock();
            st.m.deliver_close();
            self.inner.set_closed();
            if st.close_fired {
                None
            } else {
                st.close_fired = true;
                st.take_on_close()
            }
        };
        if let Some(h) = h {
            h(ctx, self);
        }
        self.inner.release_socket(ctx);
        if unregister {
            ctx.unregister(self);
        } else {
            ctx.inner.io.lock().dead(self.id());
            ctx.inner.waker.wake();
        }
    }
}
