//! The I/O driver: moves bytes between a connection's state machine
//! (`machine.rs`) and its transport (`transport.rs`), under the
//! connection's lock, and hands the resulting actions to `dispatch.rs`
//! with no lock held.

#[allow(unused_imports)]
use crate::prelude::*;

use super::conn::{ConnEnv, ConnInner, ConnRole, ConnState, Connection, SendStatus};
use super::context::{ctx_log, Context};
use super::dispatch::ToInbox;
use super::machine::Actions;
use super::message::Message;
use super::rng::OsRandom;
use super::Error;
use crate::net::{self, NetError};
use crate::platform::Instant;
use crate::protocol::{DataKind, Engine};
use crate::sync::atomic::Ordering;
use core::time::Duration;

/// Payloads from this size on are written straight from the caller's
/// buffer (header and payload in one vectored write), not copied into the
/// output queue first. With std only: a firmware stack's send buffer
/// (lwIP's `TCP_SND_BUF`, a few KiB) takes a small part of such a frame,
/// the rest is queued anyway, and the direct path cost 0.8 KB of code.
const UNBUFFERED: bool = cfg!(feature = "std");
const UNBUFFERED_MIN: usize = 16 * 1024;
/// While the loop gathers the sends of a batch of messages into one write,
/// payloads below this size join the batch.
const DEFER_MAX: usize = 256 * 1024;

#[cfg(feature = "std")]
std::thread_local! {
    /// The receive buffer of `pump` (reads outside the loop), per thread.
    static RECV_BUF: core::cell::RefCell<Vec<u8>> = const { core::cell::RefCell::new(Vec::new()) };
}

impl Connection {
    // ------------------------------------------------------------ receive

    /// True once the handshake is complete; tries to advance it first.
    ///
    /// Also true when the handshake completed and the peer closed since,
    /// but messages that came before its close are still waiting for
    /// [`Connection::get_msg`]: upstream nopoll reads the handshake byte by
    /// byte and reports ready before it has seen what follows the 101, and
    /// callers then read those messages. The close shows
    /// ([`Connection::is_ok`] false) once the last of them is handed out.
    pub fn is_ready(&self) -> bool {
        if !self.is_ok() {
            return self.opened_with_unread();
        }
        if self.inner.is_open() {
            return true;
        }
        if self.role() == ConnRole::Listener {
            return false;
        }
        self.pump(None);
        (self.is_ok() && self.inner.is_open()) || self.opened_with_unread()
    }

    /// Whether a send can be taken now: open, or still in the opening
    /// handshake (advanced first with what has already arrived, never
    /// waiting: the socket may be blocking), whose answer the send then
    /// follows.
    pub fn can_send(&self) -> bool {
        if self.inner.is_open() {
            return true;
        }
        if !self.is_ok() || self.role() == ConnRole::Listener {
            return false;
        }
        if matches!(net::wait_fd(self.socket(), true, false, 0), Ok((true, _))) {
            self.pump(None);
        }
        self.is_ok()
    }

    /// The handshake completed and messages are queued for `get_msg`.
    fn opened_with_unread(&self) -> bool {
        self.inner.has_opened()
            && self
                .inner
                .st
                .lock()
                .cold_ref()
                .is_some_and(|c| !c.inbox.is_empty())
    }

    /// Waits up to `timeout` for the handshake; false if it fails or times
    /// out. True, as [`Connection::is_ready`], when the peer closed right
    /// after the handshake but messages it sent before are still unread.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.is_ready() {
                return true;
            }
            if !self.is_ok() {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let ms = left.as_millis().clamp(1, 500) as i32;
            // Plaintext held by TLS is read without waiting on the socket.
            if !self.inner.io.has_buffered_input()
                && net::wait_fd(self.socket(), true, false, ms).is_err()
            {
                return false;
            }
        }
    }

    /// Reads what the socket has (or blocks if the socket is blocking),
    /// processes it and dispatches what results. Messages go to the inbox
    /// with `sink`, else to the handlers.
    pub(crate) fn pump(&self, sink: Option<ToInbox>) -> bool {
        let fd = self.socket();
        if fd < 0 || self.inner.is_closed() || self.inner.st.lock().m.is_closed() {
            return false;
        }
        let ctx = self.ctx();
        let mut acts = Actions::default();
        let size = ctx
            .inner
            .cfg
            .lock()
            .recv_buffer_size
            .clamp(super::event_loop::MIN_RECV_BUF, super::MAX_RECV_BUF);
        #[cfg(feature = "std")]
        let got = RECV_BUF.with(|cell| {
            let mut buf = cell.borrow_mut();
            if buf.len() != size {
                *buf = super::recv_buf::recv_buffer(&ctx, size);
            }
            self.receive_into(&ctx, &mut buf, &mut acts, false)
        });
        // (Messages are owned here: `from_loop` is false, `buf` is free again.)
        // No thread-local storage: a buffer per call (firmware reads
        // outside a loop rarely, and with small buffers).
        #[cfg(not(feature = "std"))]
        let got = self.receive_into(
            &ctx,
            &mut super::recv_buf::recv_buffer(&ctx, size),
            &mut acts,
            false,
        );
        self.dispatch(&ctx, acts, sink);
        got > 0
    }

    /// One read into `buf`, then the machine. Returns how many bytes came
    /// (0 on end of stream, error or nothing to read). `from_loop` (the
    /// event loop's read), when messages resulted:
    /// - `defer_flush` is raised (under the same lock): sends from their
    ///   handlers are queued, and the caller lowers it and writes once after
    ///   dispatching them;
    /// - whole messages may stay in `buf` ([`super::machine::Incoming::Input`]): the
    ///   caller dispatches with `buf` as input, before reusing it.
    pub(crate) fn receive_into(
        &self,
        ctx: &Context,
        buf: &mut [u8],
        acts: &mut Actions,
        from_loop: bool,
    ) -> usize {
        // Until the machine has the bytes (not while dispatching: a
        // handler may read this connection).
        let Some(_reading) = self.inner.start_reading() else {
            return 0;
        };
        // A server's TLS handshake, advanced through the table that
        // enabling server TLS installs (plain programs link none of it).
        if self.inner.io.tls_handshaking() && !ctx.tls_advance(self, acts) {
            return 0;
        }
        let n = match self.inner.io.recv(buf) {
            Ok(n) if n > 0 => n,
            Err(e) if e.would_block() => return 0,
            // The end of the stream or a failed read: one way out.
            r => {
                // Taken only to be logged (not at all in no-log builds).
                if !cfg!(feature = "no-log") {
                    if let Some(why) = self.inner.io.take_tls_error() {
                        super::context::ctx_log!(ctx, Warning, "conn id={}: {why}", self.id());
                    }
                }
                match r {
                    Err(e) => self.lost(ctx, acts, format_args!("read failed: {e}")),
                    Ok(_) => self.lost(ctx, acts, format_args!("closed by peer (no close frame)")),
                }
                return 0;
            }
        };
        let inner = &*self.inner;
        let mut st = inner.st.lock();
        let base = from_loop.then_some(0);
        let env = ConnEnv { ctx, conn: inner };
        st.m.receive(&env, &mut buf[..n], base, acts);
        inner.after_machine(&mut st);
        if let Some(code) = inner.charge(&mut st) {
            inner.fail_over_budget(ctx, &mut st, code, acts);
            return n;
        }
        // Drained (a short read): give large idle buffers back.
        if n < buf.len() {
            inner.release_idle_buffers(&mut st);
        }
        if from_loop && !acts.msgs.is_empty() {
            st.defer_flush += 1;
        }
        n
    }

    /// [`Connection::tls_advance`] before a read; a failure loses the connection.
    pub(super) fn tls_read_gate(&self, ctx: &Context, acts: &mut Actions) -> bool {
        let why = match self.tls_advance(ctx) {
            Ok(done) => return done,
            Err(why) => why,
        };
        super::context::ctx_log!(
            ctx,
            Warning,
            "conn id={} from {}: {why}",
            self.id(),
            self.host()
        );
        self.lost(ctx, acts, format_args!("TLS failed"));
        false
    }

    /// The transport ended or failed: closed, once (shown to the
    /// application after the messages that came before).
    pub(super) fn lost(&self, ctx: &Context, acts: &mut Actions, why: core::fmt::Arguments<'_>) {
        let mut st = self.inner.st.lock();
        if !st.m.is_closed() {
            if ctx.wants_log(super::LogLevel::Debug) {
                acts.log(
                    super::LogLevel::Debug,
                    format!("conn id={} {why}", self.id()),
                );
            }
            st.m.shut();
            self.inner.charge(&mut st);
            acts.closed = true;
        }
    }

    /// Next message, or `None` when nothing complete is there (or the
    /// connection failed: check [`Connection::is_ok`]). Drives the
    /// handshake; blocks only if the socket was made blocking.
    pub fn get_msg(&self) -> Option<Message> {
        if let Some(m) = self.inner.pop_inbox() {
            self.close_if_drained();
            return Some(m);
        }
        if self.role() == ConnRole::Listener {
            return None;
        }
        // What the read completes goes to the inbox, after anything
        // queued meanwhile, and is not dropped for the inbox's cap. (Two
        // readers at once with no message handler, the loop and this
        // one, can meet there out of stream order: reading is exclusive,
        // queueing after it is not.)
        self.pump(Some(ToInbox));
        let first = self.inner.pop_inbox();
        self.close_if_drained();
        first
    }

    /// Delivers a close that waited for the inbox, once it is empty.
    fn close_if_drained(&self) {
        if self.inner.take_due_close() {
            self.closed_now(&self.ctx());
        }
    }

    /// Stream read across message boundaries (`nopoll_conn_read`).
    /// Non-blocking: what is there, or `Err(WouldBlock)` if nothing. Blocking:
    /// waits until `buf` is full or `timeout` (None = forever) expires.
    pub fn read(
        &self,
        buf: &mut [u8],
        block: bool,
        timeout: Option<Duration>,
    ) -> Result<usize, Error> {
        if !self.is_ok() {
            return Err(Error::NotOpen);
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut filled = 0;
        loop {
            filled += self.inner.take_stream(&mut buf[filled..]);
            if filled == buf.len() {
                return Ok(filled);
            }
            if let Some(m) = self.get_msg() {
                let mut st = self.inner.st.lock();
                let c = st.cold();
                c.stream.clear();
                c.stream.extend_from_slice(m.payload());
                c.stream_pos = 0;
                continue;
            }
            if !self.is_ok() {
                return if filled > 0 {
                    Ok(filled)
                } else {
                    Err(Error::NotOpen)
                };
            }
            if !block {
                return if filled > 0 {
                    Ok(filled)
                } else {
                    Err(Error::WouldBlock)
                };
            }
            let wait = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(filled);
                    }
                    left.as_millis().clamp(1, 500) as i32
                }
                None => 500,
            };
            if !self.inner.io.has_buffered_input() {
                net::wait_fd(self.socket(), true, false, wait)?;
            }
        }
    }

    // ------------------------------------------------------------ send

    /// Sends a whole text message.
    pub fn send_text(&self, text: &str) -> Result<SendStatus, Error> {
        if UNBUFFERED && text.len() >= UNBUFFERED_MIN {
            if let Some(r) = self.send_unbuffered(DataKind::Text, text.as_bytes(), true) {
                return r;
            }
        }
        // A `str` is UTF-8: the engine skips checking it again.
        self.send_with(text.len(), 0, |e| e.send_text(text))
    }
    /// Sends a whole binary message.
    pub fn send_binary(&self, data: &[u8]) -> Result<SendStatus, Error> {
        self.send_data(DataKind::Binary, data, true)
    }
    /// Sends a data frame; after `fin == false` the next one is a continuation.
    pub fn send_data(&self, kind: DataKind, data: &[u8], fin: bool) -> Result<SendStatus, Error> {
        if UNBUFFERED && data.len() >= UNBUFFERED_MIN {
            if let Some(r) = self.send_unbuffered(kind, data, fin) {
                return r;
            }
        }
        self.send_with(data.len(), 0, |e| e.send(kind, data, fin))
    }

    /// A large frame goes out with one vectored write of header and
    /// payload, without a copy into the output queue (over TLS, encrypted
    /// from the caller's buffer); only what the transport does not take is
    /// queued. `None` when it cannot (output waiting, a
    /// client's masked frame, a batch of small sends being gathered): the
    /// caller queues as usual.
    fn send_unbuffered(
        &self,
        kind: DataKind,
        data: &[u8],
        fin: bool,
    ) -> Option<Result<SendStatus, Error>> {
        if !self.is_ok() {
            return None;
        }
        let mut st = self.inner.st.lock();
        if st.defer_flush > 0 && data.len() < DEFER_MAX {
            return None;
        }
        if st.m.handshake_pending() {
            return None;
        }
        let engine = st.m.engine()?;
        let head = match engine.send_unbuffered(kind, data, fin) {
            Ok(Some(h)) => h,
            Ok(None) => return None,
            Err(e) => return Some(Err(e.into())),
        };
        let hdr = head.as_bytes();
        let total = hdr.len() + data.len();
        let (written, failed) = match self.inner.io.send_vectored(hdr, data) {
            Ok(n) => (n, None),
            Err(e) if e.would_block() => (0, None),
            Err(e) => (0, Some(e)),
        };
        if written < hdr.len() {
            engine.queue_output(&hdr[written..]);
            engine.queue_output(data);
        } else if written < total {
            engine.queue_output(&data[written - hdr.len()..]);
        }
        if let Some(e) = failed {
            return Some(Err(e.into()));
        }
        let complete = written == total;
        if !complete {
            if let Some(code) = self.inner.charge(&mut st) {
                drop(st);
                self.over_budget(code);
                return Some(Err(Error::NotOpen));
            }
        }
        st.m.pending_header = hdr.len().saturating_sub(written);
        if !complete {
            st.m.note_refused();
            self.inner.watch_write(&mut st);
        }
        Some(Ok(SendStatus {
            payload_written: written.saturating_sub(hdr.len()),
            complete,
        }))
    }
    /// As [`Connection::send_data`], pausing `pause` between the frame's
    /// header and its payload (`__nopoll_conn_send_common`'s
    /// `sleep_in_header`).
    pub fn send_data_paused(
        &self,
        kind: DataKind,
        data: &[u8],
        fin: bool,
        pause: Duration,
    ) -> Result<SendStatus, Error> {
        let us = u64::try_from(pause.as_micros()).unwrap_or(u64::MAX);
        self.send_with(data.len(), us, |e| e.send(kind, data, fin))
    }
    /// Sends a ping.
    pub fn send_ping(&self, payload: &[u8]) -> Result<SendStatus, Error> {
        self.send_with(payload.len(), 0, |e| e.send_ping(payload))
    }
    /// Sends a pong.
    pub fn send_pong(&self, payload: &[u8]) -> Result<SendStatus, Error> {
        self.send_with(payload.len(), 0, |e| e.send_pong(payload))
    }
    /// Sends one frame exactly as described (`nopoll_conn_send_frame`),
    /// pausing `pause` between header and payload.
    pub fn send_raw_frame(
        &self,
        fin: bool,
        masked: bool,
        opcode: u8,
        payload: &[u8],
        pause: Duration,
    ) -> Result<SendStatus, Error> {
        self.send_with(payload.len(), pause.as_micros() as u64, |e| {
            e.send_raw_frame(fin, opcode, masked, payload)
        })
    }

    fn send_with(
        &self,
        payload_len: usize,
        pause_us: u64,
        queue: impl FnOnce(&mut Engine<OsRandom>) -> Result<(), crate::protocol::SendError>,
    ) -> Result<SendStatus, Error> {
        if !self.is_ok() {
            return Err(Error::NotOpen);
        }
        let inner = &*self.inner;
        let mut st = inner.st.lock();
        let max_pending = inner.ctx.max_pending_output.load(Ordering::Acquire);
        let held = st.m.is_handshaking();
        let queued = |st: &ConnState| st.m.pending() + if held { st.m.held_len() } else { 0 };
        if queued(&st) > max_pending {
            inner.flush_locked(&mut st)?;
            if queued(&st) > max_pending {
                return Err(Error::WouldBlock);
            }
        }
        let before = st.m.pending();
        let frame_len = st.m.send(queue)?;
        if held {
            // Held until the handshake completes, then written after its
            // answer: sent, as far as the caller is concerned (as upstream,
            // which writes it at once).
            return Ok(SendStatus {
                payload_written: payload_len,
                complete: true,
            });
        }
        if pause_us == 0 && st.defer_flush > 0 && before + frame_len < DEFER_MAX {
            // Queued for the loop to write after this batch: reported as sent.
            return Ok(SendStatus {
                payload_written: payload_len,
                complete: true,
            });
        }
        if let Some(code) = inner.charge(&mut st) {
            drop(st);
            self.over_budget(code);
            return Err(Error::NotOpen);
        }
        let header_len = frame_len.saturating_sub(payload_len);
        let written = if pause_us > 0 {
            let w = inner.flush_upto(&mut st, before + header_len)?;
            drop(st);
            crate::platform::sleep(Duration::from_micros(pause_us));
            st = inner.st.lock();
            w + inner.flush_locked(&mut st)?
        } else {
            inner.flush_locked(&mut st)?
        };
        let mine = written.saturating_sub(before).min(frame_len);
        // (Zero once complete: `mine` is then the whole frame.)
        st.m.pending_header = header_len.saturating_sub(mine);
        Ok(SendStatus {
            payload_written: mine.saturating_sub(header_len).min(payload_len),
            complete: mine == frame_len,
        })
    }

    /// Bytes the socket refused and that are not written yet
    /// (`nopoll_conn_pending_write_bytes`). Frames gathered to be written
    /// together (sends from a message handler, written once after the
    /// batch) are not pending: nothing refused them.
    pub fn pending_write_bytes(&self) -> usize {
        self.inner.st.lock().m.refused_pending()
    }

    /// Writes what is pending without blocking; returns the payload bytes
    /// written (header bytes are not counted, as nopoll does).
    pub fn complete_pending_write(&self) -> Result<usize, Error> {
        let mut st = self.inner.st.lock();
        if st.m.pending() == 0 {
            return Ok(0);
        }
        let n = self.inner.flush_locked(&mut st)?;
        let hdr = st.m.pending_header.min(n);
        st.m.pending_header -= hdr;
        if st.m.pending() == 0 {
            self.inner.release_idle_buffers(&mut st);
        }
        Ok(n - hdr)
    }

    /// Writes pending output until done or `timeout` expires; returns the
    /// bytes written.
    pub fn flush_writes(&self, timeout: Duration) -> usize {
        self.flush_for_us(crate::platform::duration_us(timeout))
    }

    /// [`Connection::flush_writes`] for up to `us` microseconds (in
    /// integers: the internal closes give constants, no `Duration` math).
    pub(crate) fn flush_for_us(&self, us: u64) -> usize {
        let deadline = Instant::now().plus_us(us);
        let mut total = 0;
        loop {
            match self.complete_pending_write() {
                Ok(n) => total += n,
                Err(_) => return total,
            }
            if self.inner.st.lock().m.pending() == 0 {
                return total;
            }
            // In integer milliseconds (no `Duration` division on firmware).
            let left = Instant::now().wait_ms(deadline);
            if left == 0 {
                return total;
            }
            let _ = net::wait_fd(self.socket(), false, true, left.min(100));
        }
    }

    /// Answers a plain HTTP request (from an HTTP handler).
    pub fn send_http_response(
        &self,
        status: u16,
        content_type: &str,
        body: &[u8],
    ) -> Result<(), Error> {
        let mut st = self.inner.st.lock();
        st.m.queue_http_response(status, content_type, body)?;
        self.inner.flush_locked(&mut st)?;
        Ok(())
    }

    /// After the HTTP handler: the answer gets a moment to leave, then the
    /// connection closes.
    pub(crate) fn finish_http(&self) {
        self.close_waiting(None, b"", 200_000);
    }

    // ------------------------------------------------------------ close

    /// Sends a close frame (status `None` = empty), closes the socket, fires
    /// `on_close` and leaves the context. Does not wait for the peer's reply.
    pub fn close(&self, status: Option<u16>, reason: &[u8]) {
        self.close_waiting(status, reason, 100_000);
    }

    /// As [`Connection::close`] without waiting for the socket to take
    /// the close frame (the loop's own closes: keepalive, budget).
    pub(crate) fn close_now(&self, status: Option<u16>, reason: &[u8]) {
        self.close_waiting(status, reason, 0);
    }

    /// Closes a connection whose output took the context over its memory
    /// budget (`budget.rs`), with `code`.
    pub(crate) fn over_budget(&self, code: u16) {
        let ctx = self.ctx();
        ctx_log!(
            &ctx,
            Warning,
            "conn id={} from {}: over the context's memory budget ({} of {} bytes); closing with {code}",
            self.id(),
            self.host(),
            ctx.memory_in_use(),
            ctx.memory_budget()
        );
        self.close_now(Some(code), b"memory budget");
    }

    /// The one way this side closes a connection: queues a close frame
    /// (when open; an HTTP connection has its answer queued), gives the
    /// output up to `wait_us` microseconds to leave (one attempt when
    /// zero), then delivers the close and leaves the context.
    fn close_waiting(&self, status: Option<u16>, reason: &[u8], wait_us: u64) {
        let ctx = self.ctx();
        let refused = self.inner.st.lock().m.queue_close(status, reason);
        if self.socket() >= 0 {
            let _ = self.flush_for_us(wait_us);
        }
        {
            let mut st = self.inner.st.lock();
            self.inner.mark_closed(&mut st);
        }
        if let Some(err) = refused {
            ctx_log!(
                &ctx,
                Warning,
                "conn id={}: {err}; sent a close frame without status",
                self.id()
            );
        }
        self.deliver_closed(&ctx, true);
    }

    /// Closes the socket abruptly (no close frame) and fires `on_close`;
    /// the connection stays registered until the loop drops it.
    pub fn shutdown(&self) {
        let ctx = self.ctx();
        {
            let mut st = self.inner.st.lock();
            self.inner.mark_closed(&mut st);
        }
        self.deliver_closed(&ctx, false);
    }
}

impl ConnInner {
    /// After the machine ran: writes what it produced, publishes its
    /// phase, and drops what a closed connection could not write.
    pub(crate) fn after_machine(&self, st: &mut ConnState) {
        let _ = self.flush_locked(st);
        self.sync_flags(st);
        if st.m.is_closed() {
            st.m.drop_output();
            self.charge(st);
        }
    }

    /// The bytes just received took the context over its memory budget:
    /// closes with `code` (a close frame, one write attempt), frees the
    /// connection's buffers and reports the close (`on_close`).
    pub(crate) fn fail_over_budget(
        &self,
        ctx: &Context,
        st: &mut ConnState,
        code: u16,
        acts: &mut Actions,
    ) {
        if ctx.wants_log(super::LogLevel::Warning) {
            acts.log(
                super::LogLevel::Warning,
                format!(
                    "conn id={} from {}: over the context's memory budget ({} of {} bytes); closing with {code}",
                    self.id,
                    self.host,
                    ctx.memory_in_use(),
                    ctx.memory_budget()
                ),
            );
        }
        let _ = st.m.queue_close(Some(code), b"memory budget");
        let _ = self.flush_locked(st);
        st.m.shut();
        self.charge(st);
        acts.closed = true;
    }

    /// Writes pending output until done or the socket would block.
    pub(crate) fn flush_locked(&self, st: &mut ConnState) -> Result<usize, NetError> {
        self.flush_upto(st, usize::MAX)
    }

    fn flush_upto(&self, st: &mut ConnState, limit: usize) -> Result<usize, NetError> {
        let mut total = 0;
        while total < limit {
            let buf = st.m.output();
            if buf.is_empty() {
                break;
            }
            if self.socket() < 0 {
                return Err(NetError(crate::sys::EBADF));
            }
            let buf = &buf[..buf.len().min(limit - total)];
            match self.io.send(buf) {
                Ok(n) => {
                    total += n;
                    st.m.consume(n);
                    if n == 0 {
                        st.m.note_refused();
                        break;
                    }
                }
                Err(e) if e.would_block() => {
                    st.m.note_refused();
                    self.watch_write(st);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// Completes a server handshake after `on_open` decided.
    pub(crate) fn finish_open(&self, ctx: &Context, accepted: bool, acts: &mut Actions) {
        let mut st = self.st.lock();
        let env = ConnEnv { ctx, conn: self };
        st.m.finish_open(&env, accepted, acts);
        self.after_machine(&mut st);
    }

    /// Drops a connection whose handshake took too long.
    pub(crate) fn expire(&self) -> bool {
        let mut st = self.st.lock();
        if st.m.expire() {
            self.sync_flags(&st);
            return true;
        }
        false
    }
}
