//! Message dispatch: runs the state machine's actions with no lock held
//! (`on_open`, `on_ready`, HTTP requests, messages to their handler or the
//! `get_msg` queue, `on_close`).

#[allow(unused_imports)]
use crate::prelude::*;

use super::conn::Connection;
use super::context::{ctx_log, Context, DispatchHandler};
use super::machine::Action;
use super::message::Message;
use crate::sync::atomic::Ordering;
use alloc::collections::VecDeque;

/// A message handler looked up once and kept until `handlers_epoch` moves
/// (a lookup costs locks and a reference count).
pub(crate) type HandlerCache = Option<(usize, Option<DispatchHandler>)>;

/// The handler in `cache`, looked up again with `load` if `epoch` moved.
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

impl Connection {
    /// Runs the results of ingestion without holding any lock.
    pub(crate) fn dispatch(
        &self,
        ctx: &Context,
        mut acts: Vec<Action>,
        sink: Option<&mut VecDeque<Message>>,
    ) {
        self.dispatch_drain(ctx, &mut acts, sink, &[], &mut None);
    }

    /// [`Connection::dispatch`], leaving `acts` empty with its capacity
    /// (the loop reuses one vector for every read). `input` is the buffer
    /// that [`Action::InputMessage`]s point into. `ctx_handler` keeps the
    /// context's message handler from one call to the next (the loop's).
    pub(crate) fn dispatch_drain(
        &self,
        ctx: &Context,
        acts: &mut Vec<Action>,
        mut sink: Option<&mut VecDeque<Message>>,
        input: &[u8],
        ctx_handler: &mut HandlerCache,
    ) {
        // The message handler, looked up once per batch (two locks and a
        // reference count otherwise, per message) and again only if a
        // handler was replaced meanwhile; the context's, without locking
        // this connection, when it has none of its own.
        let mut own_handler: HandlerCache = None;
        for act in acts.drain(..) {
            match act {
                Action::Log(level, line) => ctx.log(level, format_args!("{line}")),
                Action::OnOpen => {
                    let h = ctx.inner.cfg.lock().on_open.clone();
                    let ok = h.is_none_or(|h| h(ctx, self));
                    let mut more = Vec::new();
                    self.inner.finish_open(ctx, ok, &mut more);
                    self.dispatch(ctx, more, sink.as_deref_mut());
                }
                Action::Http(req) => {
                    let h = ctx.inner.cfg.lock().on_http.clone();
                    match h {
                        Some(h) => h(ctx, self, &req),
                        None => {
                            let _ =
                                self.send_http_response(400, "text/plain", b"WebSocket endpoint\n");
                        }
                    }
                    self.finish_http();
                }
                Action::Ready => {
                    let (ch, cc) = {
                        let st = self.inner.st.lock();
                        (ctx.inner.cfg.lock().on_ready.clone(), st.on_ready())
                    };
                    ctx_log!(ctx, Debug, "conn id={} ready", self.id());
                    let ok = ch.is_none_or(|h| h(ctx, self)) && cc.is_none_or(|h| h(ctx, self));
                    if !ok {
                        self.close(None, b"");
                    }
                }
                Action::Message(_) | Action::InputMessage { .. } => {
                    // Everything received is delivered until `on_close` has
                    // run: a read holding data and then the peer's close
                    // frame (or a protocol error) marks the connection
                    // closed before its messages are dispatched.
                    if !self.is_ok() && self.inner.st.lock().close_fired {
                        continue;
                    }
                    let epoch = ctx.inner.handlers_epoch.load(Ordering::Acquire);
                    let ctx_on_msg = || ctx.inner.cfg.lock().on_msg.clone();
                    let h = if sink.is_some() {
                        None
                    } else if self.inner.own_on_msg.load(Ordering::Acquire) {
                        cached_handler(&mut own_handler, epoch, || {
                            let own = self.inner.st.lock().on_msg();
                            own.or_else(ctx_on_msg)
                        })
                    } else {
                        cached_handler(ctx_handler, epoch, ctx_on_msg)
                    };
                    let mut m = match act {
                        Action::Message(m) => m,
                        Action::InputMessage { kind, start, len } => {
                            let d = &input[start..start + len];
                            // Filled in place and handed straight to the
                            // handler: through the common path below it is
                            // moved once more (24 instructions per message
                            // for the Rust echo server, none for the C one:
                            // benches/instructions.sh, measured at 862915a).
                            let mut m = Message::empty();
                            if !m.set_whole(kind, d) {
                                ctx_log!(
                                    ctx,
                                    Critical,
                                    "conn id={}: no memory for a message of {len} bytes",
                                    self.id()
                                );
                                self.close(Some(1009), b"");
                                continue;
                            }
                            if let (None, Some(h)) = (&sink, h) {
                                h(ctx, self, &mut m);
                                continue;
                            }
                            m
                        }
                        _ => continue,
                    };
                    if let Some(s) = sink.as_deref_mut() {
                        s.push_back(m);
                        continue;
                    }
                    match h {
                        Some(h) => h(ctx, self, &mut m),
                        None => self.inner.queue_inbox(ctx, m),
                    }
                }
                Action::Closed => {
                    // Messages that came before the close and are not
                    // handed out yet come first, for a caller that reads
                    // them with get_msg (is_ready, wait_ready, get_msg
                    // itself). The loop closes at once: it reads no
                    // inbox, and a close waiting for a reader that never
                    // comes would keep the socket (the inbox stays
                    // readable after the close, as before).
                    let undelivered = sink.as_ref().is_some_and(|s| !s.is_empty())
                        || (!super::event_loop::in_loop() && self.inner.has_inbox());
                    if undelivered {
                        self.inner.defer_close(ctx);
                    } else {
                        self.closed_now(ctx);
                    }
                }
            }
        }
    }

    /// Delivers the close: `is_ok` turns false, the close status shows,
    /// `on_close` runs, the socket is released.
    pub(crate) fn closed_now(&self, ctx: &Context) {
        {
            let mut st = self.inner.st.lock();
            st.m.deliver_close();
            self.inner.set_closed();
        }
        self.fire_close(ctx);
        self.inner.release_socket(ctx);
        if super::event_loop::in_loop() {
            ctx.unregister(self);
        } else {
            // Found dead while polling (get_msg, is_ready...): as upstream,
            // it stays registered (its close status readable) until the
            // caller closes it or a loop pass drops it.
            ctx.inner.io.lock().dead.push(self.id());
            ctx.inner.waker.wake();
        }
    }

    /// Runs `on_close` once.
    pub(crate) fn fire_close(&self, ctx: &Context) {
        let h = {
            let mut st = self.inner.st.lock();
            if st.close_fired {
                return;
            }
            st.close_fired = true;
            st.take_on_close()
        };
        if let Some(h) = h {
            h(ctx, self);
        }
    }
}
