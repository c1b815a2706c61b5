//! The message a C handler is called with, handed out without the handle
//! table.
//!
//! A table handle costs a lock and reference counts to create and again to
//! end (~9 % of the C echo server's time per 32-byte message). Instead,
//! each thread that runs message handlers owns a *slot*: the message is
//! written into the slot's object and its handle published (one store);
//! after the handler the handle is withdrawn (one atomic exchange) and the
//! object reused for the next message.
//!
//! The handle is good wherever a table handle is:
//! - on the handler's own thread: through the handler record
//!   (src/ffi/dispatch.rs), no atomics at all;
//! - on another thread while the handler runs: the reader *pins* the slot
//!   (counts itself in `readers`), checks that the handle is still the
//!   published one, uses the object and unpins. Withdrawing waits until no
//!   reader is pinned, so an object is never rewritten under a reader;
//! - after the handler, if it was kept (`nopoll_msg_ref`): the first
//!   reference moves the object from the slot to `KEPT`, under the same
//!   handle, with the library's reference and the caller's; the slot makes
//!   a new object for its next message. The handle then lives in `KEPT`
//!   until its last reference goes (`nopoll_msg_unref`).
//!
//! A handle withdrawn without being kept is dead: it resolves to nothing.
//! Handles carry the slot's generation, which moves on with each message,
//! so an old handle does not name a later message (until the generation
//! wraps; then a handle still kept is skipped).
//!
//! A handler called while another runs on the same thread (a nested loop)
//! finds the slot taken and gets a table handle (src/ffi/ctx.rs), as every
//! message does without std (no thread-local storage).

use super::msg::MsgObj;
use crate::runtime::Message;

/// `release` of the running handler's own message reference: refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refused;

#[cfg(feature = "std")]
mod imp {
    use super::*;
    use crate::ffi::handle::{self, GENERATIONS, MAX_SLOTS};
    use crate::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
    use crate::sync::Lock;
    use alloc::boxed::Box;
    use alloc::collections::BTreeMap;
    use alloc::vec::Vec;
    use core::cell::Cell;
    use core::ptr::NonNull;

    /// Handle space of published messages (`handle::encode`): not a
    /// table's, so no table takes these handles for its own.
    const TAG: usize = 6;

    struct Slot {
        idx: usize,
        /// The published handle; 0 while none is.
        cur: AtomicUsize,
        /// Threads using the published object now (pinned).
        readers: AtomicUsize,
        /// The object of the current or next message (null until needed).
        /// Only the owning thread writes it or its message, and only while
        /// nothing is published.
        obj: AtomicPtr<MsgObj>,
        /// The published object was kept: `KEPT` owns it now.
        kept: AtomicBool,
        /// `KEPT` entries made from this slot.
        kept_live: AtomicUsize,
        /// Generation of the last handle (the owning thread's alone).
        gen: AtomicUsize,
        /// The generation has wrapped: a new handle may name a kept message.
        wrapped: AtomicBool,
    }

    struct Registry {
        slots: Vec<&'static Slot>,
        free: Vec<usize>,
    }

    /// Every slot (never freed: a thread's slot goes to the next thread).
    static REGISTRY: Lock<Registry> = Lock::new(Registry {
        slots: Vec::new(),
        free: Vec::new(),
    });

    /// A kept message: its object (a leaked `Box`) and its references.
    struct Kept {
        obj: ObjPtr,
        refs: i32,
        slot: &'static Slot,
    }

    struct ObjPtr(NonNull<MsgObj>);
    // SAFETY: the pointer is the only owner of its object once the slot let
    // go of it, and `MsgObj` is Send + Sync.
    unsafe impl Send for ObjPtr {}

    static KEPT: Lock<BTreeMap<usize, Kept>> = Lock::new(BTreeMap::new());

    /// This thread's slot; given back when the thread ends.
    struct Owner(Cell<Option<&'static Slot>>);

    impl Drop for Owner {
        fn drop(&mut self) {
            let Some(slot) = self.0.take() else {
                return;
            };
            // No handler frame outlives its thread: nothing is published,
            // and a kept object was already taken out of the slot.
            let obj = slot.obj.swap(core::ptr::null_mut(), Ordering::Relaxed);
            if !obj.is_null() {
                // SAFETY: the slot's own object (from `Box::leak`), not kept,
                // no longer reachable from the slot.
                drop(unsafe { Box::from_raw(obj) });
            }
            REGISTRY.lock().free.push(slot.idx);
        }
    }

    std::thread_local! {
        static OWNER: Owner = const { Owner(Cell::new(None)) };
    }

    fn take_slot() -> Option<&'static Slot> {
        let mut r = REGISTRY.lock();
        if let Some(i) = r.free.pop() {
            return Some(r.slots[i]);
        }
        if r.slots.len() >= MAX_SLOTS {
            return None;
        }
        let slot: &'static Slot = Box::leak(Box::new(Slot {
            idx: r.slots.len(),
            cur: AtomicUsize::new(0),
            readers: AtomicUsize::new(0),
            obj: AtomicPtr::new(core::ptr::null_mut()),
            kept: AtomicBool::new(false),
            kept_live: AtomicUsize::new(0),
            gen: AtomicUsize::new(0),
            wrapped: AtomicBool::new(false),
        }));
        r.slots.push(slot);
        Some(slot)
    }

    /// The next handle of `slot` (its owner only). None when every
    /// generation is kept.
    fn next_token(slot: &Slot) -> Option<usize> {
        let mut gen = slot.gen.load(Ordering::Relaxed);
        for _ in 0..GENERATIONS {
            gen = (gen + 1) % GENERATIONS;
            if gen == 0 {
                slot.wrapped.store(true, Ordering::Relaxed);
            }
            let token = handle::encode(TAG, slot.idx, gen);
            // Before the first wrap every handle is new. `kept_live` is
            // up to date here: this thread withdrew every message of the
            // slot, after whoever kept it (see `Published::drop`).
            if !slot.wrapped.load(Ordering::Relaxed)
                || slot.kept_live.load(Ordering::Relaxed) == 0
                || !KEPT.lock().contains_key(&token)
            {
                slot.gen.store(gen, Ordering::Relaxed);
                return Some(token);
            }
        }
        None
    }

    /// A message published to this thread's handler; withdrawn on drop.
    /// (Two words: returned in registers, not through memory.)
    pub(crate) struct Published {
        slot: &'static Slot,
        obj: NonNull<MsgObj>,
    }

    /// Publishes `msg` in this thread's slot (`msg` is left empty); None,
    /// `msg` untouched, when the slot is taken (a handler already runs on
    /// this thread) or cannot be had.
    pub(crate) fn publish(msg: &mut Message) -> Option<Published> {
        let slot = OWNER.try_with(|o| match o.0.get() {
            Some(s) => Some(s),
            None => {
                let s = take_slot();
                o.0.set(s);
                s
            }
        });
        let Ok(Some(slot)) = slot else {
            return None;
        };
        if slot.cur.load(Ordering::Relaxed) != 0 {
            return None;
        }
        let token = next_token(slot)?;
        let obj = match NonNull::new(slot.obj.load(Ordering::Relaxed)) {
            Some(o) => {
                // Its message is empty (withdrawing empties it): `msg` is
                // left empty.
                // SAFETY: the slot's object, not kept (withdrawing a kept
                // one empties the slot), nothing published: no reader.
                core::mem::swap(unsafe { &mut (*o.as_ptr()).msg }, msg);
                o
            }
            None => {
                let msg = core::mem::take(msg);
                let o = NonNull::from(Box::leak(Box::new(MsgObj { msg })));
                slot.obj.store(o.as_ptr(), Ordering::Relaxed);
                o
            }
        };
        // Release: a reader that sees the handle sees the message.
        slot.cur.store(token, Ordering::Release);
        Some(Published { slot, obj })
    }

    impl Published {
        pub(crate) fn token(&self) -> usize {
            // This thread's own store.
            self.slot.cur.load(Ordering::Relaxed)
        }

        pub(crate) fn obj(&self) -> &MsgObj {
            // SAFETY: published, the object is not rewritten until `self`
            // is dropped; kept, `KEPT` frees it only after the library's
            // reference goes, also in drop.
            unsafe { self.obj.as_ref() }
        }
    }

    impl Drop for Published {
        fn drop(&mut self) {
            let slot = self.slot;
            let token = self.token();
            // SeqCst with the readers' pin: a reader pinning after this
            // store sees the handle withdrawn; one pinned before is waited for.
            slot.cur.store(0, Ordering::SeqCst);
            let mut spins = 0u32;
            while slot.readers.load(Ordering::SeqCst) != 0 {
                if spins < 64 {
                    core::hint::spin_loop();
                    spins += 1;
                } else {
                    std::thread::yield_now();
                }
            }
            // A reader's `kept` store is seen: its unpin (Release) was read.
            if !slot.kept.load(Ordering::Relaxed) {
                // SAFETY: withdrawn and no reader pinned: this thread alone
                // uses the object. The payload is let go now.
                unsafe { (*self.obj.as_ptr()).msg = Message::empty() };
                return;
            }
            slot.kept.store(false, Ordering::Relaxed);
            slot.obj.store(core::ptr::null_mut(), Ordering::Relaxed);
            // The library's reference goes.
            let gone = {
                let mut k = KEPT.lock();
                match k.get_mut(&token) {
                    Some(e) if e.refs > 1 => {
                        e.refs -= 1;
                        None
                    }
                    Some(_) => k.remove(&token),
                    None => None,
                }
            };
            free(gone);
        }
    }

    /// Frees a kept entry's object (outside the `KEPT` lock).
    fn free(gone: Option<Kept>) {
        if let Some(e) = gone {
            e.slot.kept_live.fetch_sub(1, Ordering::Relaxed);
            // SAFETY: from `Box::leak`; the entry was its only owner.
            drop(unsafe { Box::from_raw(e.obj.0.as_ptr()) });
        }
    }

    /// A pinned slot: its published object is not rewritten meanwhile.
    struct Pin {
        slot: &'static Slot,
        obj: NonNull<MsgObj>,
    }

    impl Drop for Pin {
        fn drop(&mut self) {
            self.slot.readers.fetch_sub(1, Ordering::Release);
        }
    }

    /// Pins the slot of `token` if `token` is published now.
    fn pin(token: usize) -> Option<Pin> {
        let (idx, _) = handle::decode(TAG, token)?;
        let slot = REGISTRY.lock().slots.get(idx).copied()?;
        slot.readers.fetch_add(1, Ordering::SeqCst);
        let mut pin = Pin {
            slot,
            obj: NonNull::dangling(),
        };
        // Acquire (SeqCst): the owner's writes before publishing are seen,
        // `obj` among them.
        if slot.cur.load(Ordering::SeqCst) != token {
            return None;
        }
        pin.obj = NonNull::new(slot.obj.load(Ordering::Relaxed))?;
        Some(pin)
    }

    /// True for a handle of this space (published now, kept or dead).
    pub(crate) fn is_published(token: usize) -> bool {
        handle::decode(TAG, token).is_some()
    }

    /// Runs `f` on the message behind a published or kept handle.
    pub(crate) fn with_msg<R>(token: usize, f: impl FnOnce(&MsgObj) -> R) -> Option<R> {
        if let Some(p) = pin(token) {
            // SAFETY: pinned and published: alive and not rewritten.
            return Some(f(unsafe { p.obj.as_ref() }));
        }
        let k = KEPT.lock();
        let e = k.get(&token)?;
        // SAFETY: a kept object lives while its entry does.
        Some(f(unsafe { e.obj.0.as_ref() }))
    }

    /// +1 reference: the first keeps the message past its handler.
    pub(crate) fn add_ref(token: usize) -> bool {
        let live = pin(token);
        let mut k = KEPT.lock();
        if let Some(e) = k.get_mut(&token) {
            e.refs = e.refs.saturating_add(1);
            return true;
        }
        let Some(p) = live else {
            return false;
        };
        // The library's reference and the caller's.
        k.insert(
            token,
            Kept {
                obj: ObjPtr(p.obj),
                refs: 2,
                slot: p.slot,
            },
        );
        p.slot.kept_live.fetch_add(1, Ordering::Relaxed);
        // Seen by the owner when it withdraws: set before unpinning.
        p.slot.kept.store(true, Ordering::Relaxed);
        true
    }

    /// -1 reference; the object goes with the last. The handler's own
    /// reference is the library's to drop: releasing it during the
    /// handler is refused (upstream frees the message under the handler's
    /// feet): `Err(Refused)`, for the caller to log through the right
    /// context. Returns the references left, None for a dead handle.
    pub(crate) fn release(token: usize) -> Result<Option<i32>, Refused> {
        let live = pin(token);
        let mut k = KEPT.lock();
        let e = match k.get_mut(&token) {
            Some(e) if live.is_none() || e.refs > 1 => e,
            None if live.is_none() => return Ok(None),
            _ => return Err(Refused),
        };
        e.refs -= 1;
        let left = e.refs;
        let gone = if left == 0 { k.remove(&token) } else { None };
        drop(k);
        drop(live);
        free(gone);
        Ok(Some(left))
    }

    /// References on a published or kept handle; -1 for a dead one.
    pub(crate) fn ref_count(token: usize) -> i32 {
        let live = pin(token).is_some();
        match KEPT.lock().get(&token) {
            Some(e) => e.refs,
            None if live => 1,
            None => -1,
        }
    }

    /// Payload bytes the object of this thread's slot holds (tests).
    #[cfg(test)]
    pub(crate) fn spare_payload_len() -> Option<usize> {
        let slot = OWNER.with(|o| o.0.get())?;
        let obj = NonNull::new(slot.obj.load(Ordering::Relaxed))?;
        // SAFETY: this thread's slot, nothing published (a test calls this
        // between handlers): no one else uses the object.
        Some(unsafe { obj.as_ref() }.msg.payload().len())
    }

    /// Sets the generation of this thread's slot (tests of the wrap).
    #[cfg(test)]
    pub(crate) fn set_generation(gen: usize) {
        OWNER.with(|o| {
            let s = o.0.get().or_else(take_slot);
            o.0.set(s);
            if let Some(s) = s {
                s.gen.store(gen % GENERATIONS, Ordering::Relaxed);
            }
        });
    }
}

#[cfg(not(feature = "std"))]
mod imp {
    use super::*;

    /// Never made without std: every handler message gets a table handle.
    pub(crate) enum Published {}

    impl Published {
        pub(crate) fn token(&self) -> usize {
            match *self {}
        }
        pub(crate) fn obj(&self) -> &MsgObj {
            match *self {}
        }
    }

    pub(crate) fn publish(_msg: &mut Message) -> Option<Published> {
        None
    }

    pub(crate) fn is_published(_token: usize) -> bool {
        false
    }

    pub(crate) fn with_msg<R>(_token: usize, _f: impl FnOnce(&MsgObj) -> R) -> Option<R> {
        None
    }

    pub(crate) fn add_ref(_token: usize) -> bool {
        false
    }

    pub(crate) fn release(_token: usize) -> Result<Option<i32>, Refused> {
        Ok(None)
    }

    pub(crate) fn ref_count(_token: usize) -> i32 {
        -1
    }
}

pub(crate) use imp::*;

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::ffi::handle::GENERATIONS;
    use crate::protocol::DataKind;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    fn text(s: &str) -> Message {
        Message::whole(DataKind::Text, s.as_bytes()).unwrap()
    }

    fn payload(token: usize) -> Option<Vec<u8>> {
        with_msg(token, |m| m.msg.payload().to_vec())
    }

    /// Resolves `token` on another thread (not through this thread's record).
    fn payload_elsewhere(token: usize) -> Option<Vec<u8>> {
        std::thread::spawn(move || payload(token)).join().unwrap()
    }

    #[test]
    fn a_published_handle_resolves_everywhere_until_withdrawn() {
        let p = publish(&mut text("one")).unwrap();
        let t = p.token();
        assert!(is_published(t));
        assert_eq!(payload(t).as_deref(), Some(&b"one"[..]));
        assert_eq!(payload_elsewhere(t).as_deref(), Some(&b"one"[..]));
        assert_eq!(ref_count(t), 1);
        drop(p);
        assert_eq!(spare_payload_len(), Some(0), "the payload let go at once");
        assert_eq!(payload(t), None, "withdrawn: dead");
        assert_eq!(payload_elsewhere(t), None);
        assert_eq!(ref_count(t), -1);
        assert!(!add_ref(t) && release(t) == Ok(None));
        let q = publish(&mut text("two")).unwrap();
        assert_ne!(q.token(), t, "a new generation for the next message");
        assert_eq!(payload(t), None, "the old handle does not name it");
        assert_eq!(payload(q.token()).as_deref(), Some(&b"two"[..]));
    }

    #[test]
    fn a_second_handler_on_the_same_thread_is_refused_the_slot() {
        let p = publish(&mut text("outer")).unwrap();
        let mut inner = text("inner");
        assert!(publish(&mut inner).is_none());
        assert_eq!(inner.payload(), b"inner", "left to the caller");
        assert_eq!(payload(p.token()).as_deref(), Some(&b"outer"[..]));
    }

    #[test]
    fn a_kept_message_outlives_its_handler_at_the_same_address() {
        let p = publish(&mut text("keep me")).unwrap();
        let t = p.token();
        let before = with_msg(t, |m| m.msg.payload().as_ptr() as usize).unwrap();
        // Kept from another thread while the handler runs.
        assert!(std::thread::spawn(move || add_ref(t)).join().unwrap());
        assert_eq!(ref_count(t), 2, "the library's and the caller's");
        assert!(add_ref(t));
        assert_eq!(release(t), Ok(Some(2)));
        drop(p);
        assert_eq!(ref_count(t), 1, "the caller's only");
        let q = publish(&mut text("next")).unwrap();
        assert_eq!(q.obj().msg.payload(), b"next");
        assert_eq!(payload(t).as_deref(), Some(&b"keep me"[..]), "not reused");
        let after = with_msg(t, |m| m.msg.payload().as_ptr() as usize).unwrap();
        assert_eq!(before, after, "payload pointers stay good");
        drop(q);
        assert_eq!(payload_elsewhere(t).as_deref(), Some(&b"keep me"[..]));
        assert_eq!(release(t), Ok(Some(0)));
        assert_eq!(payload(t), None);
        assert_eq!(ref_count(t), -1);
        assert_eq!(release(t), Ok(None));
    }

    #[test]
    fn releasing_the_handlers_own_reference_is_refused() {
        let p = publish(&mut text("mine")).unwrap();
        let t = p.token();
        assert_eq!(release(t), Err(Refused));
        assert_eq!(payload(t).as_deref(), Some(&b"mine"[..]), "still good");
        assert!(add_ref(t));
        assert_eq!(release(t), Ok(Some(1)));
        assert_eq!(release(t), Err(Refused), "not below the library's");
        assert_eq!(payload(t).as_deref(), Some(&b"mine"[..]));
        drop(p);
        assert_eq!(payload(t), None, "the library's reference was the last");
    }

    #[test]
    fn withdrawing_waits_for_a_reader_on_another_thread() {
        let p = publish(&mut text("slow")).unwrap();
        let t = p.token();
        let done = Arc::new(AtomicBool::new(false));
        let (pinned_tx, pinned_rx) = mpsc::channel();
        let d = done.clone();
        let reader = std::thread::spawn(move || {
            with_msg(t, |m| {
                pinned_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(200));
                let seen = m.msg.payload().to_vec();
                d.store(true, Ordering::SeqCst);
                seen
            })
        });
        pinned_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        drop(p);
        assert!(
            done.load(Ordering::SeqCst),
            "withdrawn under a pinned reader"
        );
        assert_eq!(reader.join().unwrap().as_deref(), Some(&b"slow"[..]));
    }

    #[test]
    fn readers_on_other_threads_never_see_another_message() {
        // The owner publishes and withdraws messages as fast as it can;
        // two readers resolve, keep and release whatever handle is
        // current. Every answer must be the message published under that
        // handle (or nothing), and kept ones must stay intact.
        use std::collections::HashMap;
        use std::sync::Mutex;
        const N: usize = 20_000;
        let published: Arc<Mutex<HashMap<usize, String>>> = Arc::default();
        let current = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let (published, current, stop) = (published.clone(), current.clone(), stop.clone());
                std::thread::spawn(move || {
                    let (mut seen, mut kept) = (0usize, Vec::new());
                    while !stop.load(Ordering::Relaxed) {
                        let t = current.load(Ordering::Relaxed);
                        if t == 0 {
                            continue;
                        }
                        let Some(got) = payload(t) else { continue };
                        let want = published.lock().unwrap().get(&t).cloned().unwrap();
                        assert_eq!(got, want.as_bytes(), "handle {t:#x}");
                        seen += 1;
                        if seen % 16 == r && add_ref(t) {
                            kept.push((t, want));
                        }
                    }
                    (seen, kept)
                })
            })
            .collect();
        for i in 0..N {
            // Inline and heap-sized payloads alike.
            let body = format!("message {i} {}", "y".repeat(i % 80));
            let p = publish(&mut text(&body)).unwrap();
            published.lock().unwrap().insert(p.token(), body);
            current.store(p.token(), Ordering::Relaxed);
            // Published long enough for the readers to catch some.
            for _ in 0..200 {
                std::hint::spin_loop();
            }
            drop(p);
        }
        stop.store(true, Ordering::Relaxed);
        let (mut seen, mut kept) = (0, Vec::new());
        for r in readers {
            let (n, k) = r.join().unwrap();
            seen += n;
            kept.extend(k);
        }
        assert!(seen > 0, "the readers resolved no handle at all");
        assert!(!kept.is_empty(), "the readers kept no message");
        // Each reference taken is released once; a handle kept more than
        // once (the same message, or both readers) dies with its last.
        for (t, want) in &kept {
            assert_eq!(payload(*t).as_deref(), Some(want.as_bytes()), "kept {t:#x}");
            assert!(matches!(release(*t), Ok(Some(_))));
        }
        for (t, _) in &kept {
            assert_eq!(payload(*t), None, "{t:#x} outlived its references");
        }
    }

    #[test]
    fn after_the_generation_wraps_a_kept_handle_is_skipped() {
        set_generation(GENERATIONS - 3);
        let p = publish(&mut text("kept across the wrap")).unwrap();
        let kept = p.token();
        assert!(add_ref(kept));
        drop(p);
        // Around the wrap and back to the kept handle's generation.
        for _ in 0..3 {
            drop(publish(&mut text("x")).unwrap());
        }
        set_generation(GENERATIONS - 3);
        let q = publish(&mut text("new")).unwrap();
        assert_ne!(q.token(), kept, "skipped: still kept");
        assert_eq!(payload(kept).as_deref(), Some(&b"kept across the wrap"[..]));
        assert_eq!(payload(q.token()).as_deref(), Some(&b"new"[..]));
        drop(q);
        assert_eq!(release(kept), Ok(Some(0)));
    }
}
