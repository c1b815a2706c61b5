//! Handles given to C: generation-checked tokens, not raw pointers.
//!
//! A `noPollConn *` (or ctx, opts, msg) that C holds is an opaque token that
//! encodes a slot index, a per-slot generation and a type tag. C never
//! dereferences it (the structs are opaque), and every exported function
//! looks it up here first. A handle that was released, never existed, or
//! belongs to another type resolves to nothing, so the function returns
//! its documented failure value: a stale `noPollConn *` after
//! `nopoll_conn_close` gives `nopoll_false`, never a use-after-free.
//!
//! Each slot counts the references C owns (`*_ref` / `*_unref`) and keeps
//! the object alive (a strong `Arc`) while that count is above zero; it
//! also keeps a `Weak` so that an object still owned by the library (a
//! registered connection, a context with connections) keeps the same
//! handle. Slots are freed when the C count reaches zero and the object is
//! gone, and their generation moves on.
//!
//! All `into_raw`-like conversions of the crate live in this file.

#[allow(unused_imports)]
use crate::prelude::*;

use crate::runtime::Attachment;
use crate::sync::{Arc, Weak};
use crate::sync::{Lock, LockGuard};
use alloc::ffi::CString;
use core::marker::PhantomData;

#[cfg(target_pointer_width = "64")]
mod layout {
    pub const SHIFT: u32 = 3;
    pub const IDX_BITS: u32 = 28;
    pub const TAG_BITS: u32 = 3;
    pub const GEN_BITS: u32 = 30;
}
#[cfg(not(target_pointer_width = "64"))]
mod layout {
    pub const SHIFT: u32 = 3;
    pub const IDX_BITS: u32 = 15;
    pub const TAG_BITS: u32 = 3;
    pub const GEN_BITS: u32 = 11;
}
use layout::*;

const IDX_MASK: usize = (1 << IDX_BITS) - 1;
const TAG_MASK: usize = (1 << TAG_BITS) - 1;
const GEN_MASK: usize = (1 << GEN_BITS) - 1;

/// What a slot holds: any of the handle types. The table is type-erased
/// so that one copy of its code serves every kind of handle (one per kind
/// cost 1 KB of firmware); [`Table`] gives each table one type (its
/// tag), so no type id is kept or checked (`Table::get`).
type Obj = dyn Send + Sync;

struct Entry {
    gen: usize,
    weak: Option<Weak<Obj>>,
    strong: Option<Arc<Obj>>,
    /// C strings handed out for the object (`nopoll_conn_get_host`, ...),
    /// kept while the handle lives (the object's end kills it).
    strings: Vec<CString>,
    /// References C owns; negative while the slot is free: then
    /// `-1 - c_refs` links the next free slot (its index + 1, 0 for none),
    /// so the free slots need no list of their own.
    c_refs: i32,
}

impl Entry {
    /// A new reference to the object, if it lives. One body for lookups
    /// and `add_ref` (firmware size).
    #[inline(never)]
    fn live(&self) -> Option<Arc<Obj>> {
        self.strong
            .clone()
            .or_else(|| self.weak.as_ref().and_then(Weak::upgrade))
    }
}

struct Slots {
    entries: Vec<Entry>,
    /// The first free slot's index + 1 (0: none); the others are linked
    /// through their `c_refs`.
    free: usize,
}

/// Ends the live entry `idx` of the locked table `s`: its handle dies
/// (the generation moves on), the slot is free again; the entry's
/// references are dropped once the lock is let go (destructors may call
/// back into this module).
fn kill(mut s: LockGuard<'_, Slots>, idx: usize) {
    let free = s.free;
    let e = &mut s.entries[idx];
    // Fits: below `MAX_SLOTS`, which is below `i32::MAX`.
    e.c_refs = -1 - free as i32;
    e.gen = (e.gen + 1) & GEN_MASK;
    let refs = (
        e.strong.take(),
        e.weak.take(),
        core::mem::take(&mut e.strings),
    );
    s.free = idx + 1;
    drop(s);
    drop(refs);
}

/// Generations a slot goes through before its handles repeat.
#[cfg_attr(not(feature = "std"), allow(dead_code))]
pub(crate) const GENERATIONS: usize = GEN_MASK + 1;

/// The handle of slot `idx` (below `IDX_MASK`) at generation `gen` in the
/// handle space `tag` (each table has its own; so do the messages
/// published to handlers, src/ffi/published.rs). Never 0.
pub(crate) fn encode(tag: usize, idx: usize, gen: usize) -> usize {
    (((gen & GEN_MASK) << (IDX_BITS + TAG_BITS)) | (tag << IDX_BITS) | (idx + 1)) << SHIFT
}

/// Slot index and generation of a well-formed handle of space `tag`.
pub(crate) fn decode(tag: usize, token: usize) -> Option<(usize, usize)> {
    if token == 0 || token & ((1 << SHIFT) - 1) != 0 {
        return None;
    }
    let t = token >> SHIFT;
    let idx = t & IDX_MASK;
    if idx == 0 || (t >> IDX_BITS) & TAG_MASK != tag {
        return None;
    }
    Some((idx - 1, (t >> (IDX_BITS + TAG_BITS)) & GEN_MASK))
}

/// Most slots a handle space can have.
pub(crate) const MAX_SLOTS: usize = IDX_MASK;

/// One table per handle type: a typed face on a [`RawTable`].
pub(crate) struct Table<T> {
    raw: RawTable,
    _kind: PhantomData<fn() -> T>,
}

impl<T: Send + Sync + 'static> Table<T> {
    pub const fn new(tag: usize) -> Self {
        Table {
            raw: RawTable {
                tag,
                slots: Lock::new(Slots {
                    entries: Vec::new(),
                    free: 0,
                }),
            },
            _kind: PhantomData,
        }
    }

    /// The slot index of a well-formed handle of this table (no lock, no
    /// check that it is live: for lock-free side tables).
    pub fn slot_index(&self, token: usize) -> Option<usize> {
        self.raw.decode(token).map(|(idx, _)| idx)
    }

    /// A new handle for `obj` with `c_refs` references owned by C (0 for an
    /// object kept alive by the library alone). None when the table is full.
    pub fn insert(&self, obj: &Arc<T>, c_refs: i32) -> Option<usize> {
        // SAFETY: `obj` is a live `Arc`, borrowed for the call.
        unsafe {
            self.raw
                .insert(Arc::as_ptr(obj) as *const Obj, c_refs, true)
        }
    }

    /// A new handle for `obj` that lives only while C holds references:
    /// one now, and when the last is released the handle dies even if
    /// the object lives on elsewhere (messages).
    pub fn insert_c_owned(&self, obj: &Arc<T>) -> Option<usize> {
        // SAFETY: `obj` is a live `Arc`, borrowed for the call.
        unsafe { self.raw.insert(Arc::as_ptr(obj) as *const Obj, 1, false) }
    }

    /// The object behind a handle, if the handle is valid.
    pub fn get(&self, token: usize) -> Option<Arc<T>> {
        let obj = self.raw.get(token)?;
        // SAFETY: `self.raw` holds this table's own slots, and only
        // `Table<T>`'s methods insert into them, always an `Arc<T>`: the
        // object is a `T`. (The tag `decode` checks turns away another
        // table's handles, which would name the wrong object, still a `T`.) The cast keeps the
        // pointer and drops the `dyn` metadata, undoing the unsizing of
        // `insert` (no type-id check per lookup, once per kind of handle).
        Some(unsafe { Arc::from_raw(Arc::into_raw(obj).cast::<T>()) })
    }

    /// References C owns on a handle (-1 for an invalid one).
    pub fn c_refs(&self, token: usize) -> i32 {
        self.raw.with_entry(token, |e| e.c_refs).unwrap_or(-1)
    }

    /// +1 C reference. False for an invalid handle or a dead object.
    pub fn add_ref(&self, token: usize) -> bool {
        self.raw.add_ref(token)
    }

    /// -1 C reference (never below zero). At zero the handle stops keeping
    /// the object alive; the slot is freed once the object is gone too.
    /// Returns the remaining C references, or None for an invalid handle.
    pub fn release(&self, token: usize) -> Option<i32> {
        self.raw.release(token)
    }

    /// Drops the caller's one C reference (as [`Table::release`]) and, if
    /// it was the last, kills the handle at once under one lock, even when
    /// the object lives on elsewhere (the caller then owns it alone, unless
    /// another thread still holds an `Arc` got from the handle). True when
    /// the handle was killed; false when C keeps references (the handle
    /// and the object stay) or the handle was already invalid.
    pub fn retire(&self, token: usize) -> bool {
        self.raw.retire(token)
    }

    /// The handle kept in `att`, `obj`'s attachment, made on first use
    /// (see [`RawTable::attached`]); `on_drop` is called with it when the
    /// object ends. True: made by this call.
    pub fn attached(
        &self,
        obj: &Arc<T>,
        att: &Attachment,
        on_drop: fn(usize),
    ) -> Option<(usize, bool)> {
        // SAFETY: `obj` is a live `Arc`, borrowed for the call.
        unsafe {
            self.raw
                .attached(Arc::as_ptr(obj) as *const Obj, att, on_drop)
        }
    }

    /// Runs `f` on the C strings kept with a live handle.
    pub fn with_strings<R>(
        &self,
        token: usize,
        f: impl FnOnce(&mut Vec<CString>) -> R,
    ) -> Option<R> {
        self.raw.with_strings(token, f)
    }

    /// Frees the slot if nothing keeps its object alive any more.
    pub fn reclaim(&self, token: usize) {
        self.raw.reclaim(token)
    }
}

/// An object's attachment and the function its end calls (see
/// [`RawTable::attached`]).
type Attach<'a> = (&'a Attachment, fn(usize));

/// The handle table's code, the same for every kind of object.
struct RawTable {
    tag: usize,
    slots: Lock<Slots>,
}

impl RawTable {
    fn decode(&self, token: usize) -> Option<(usize, usize)> {
        decode(self.tag, token)
    }

    /// `weak`: the handle also finds the object while the library keeps
    /// it alive (else only while C holds references).
    ///
    /// # Safety
    /// `obj` is `Arc::as_ptr` of an `Arc` the caller holds for the call.
    /// The references the entry keeps are taken only once a slot is
    /// found (a full table has nothing to drop).
    #[inline(always)]
    unsafe fn insert(&self, obj: *const Obj, c_refs: i32, weak: bool) -> Option<usize> {
        // SAFETY: forwarded contract.
        unsafe { self.insert_into(obj, c_refs, weak, None) }.map(|(h, _)| h)
    }

    /// The handle kept in `att`, the attachment of `obj`; made now (no C
    /// references, found while the object lives) if there is none, and
    /// set in `att` with `on_drop` under the table's lock, so one caller
    /// makes it. True: made by this call.
    ///
    /// # Safety
    /// As [`RawTable::insert`].
    #[inline(always)]
    unsafe fn attached(
        &self,
        obj: *const Obj,
        att: &Attachment,
        on_drop: fn(usize),
    ) -> Option<(usize, bool)> {
        // SAFETY: forwarded contract.
        unsafe { self.insert_into(obj, 0, true, Some((att, on_drop))) }
    }

    /// One body for [`RawTable::insert`] and [`RawTable::attached`]
    /// (`att` given): a new handle, or `att`'s if it has one.
    ///
    /// # Safety
    /// As [`RawTable::insert`].
    #[inline(never)]
    unsafe fn insert_into(
        &self,
        obj: *const Obj,
        c_refs: i32,
        weak: bool,
        att: Option<Attach<'_>>,
    ) -> Option<(usize, bool)> {
        let mut s = self.slots.lock();
        if let Some((att, _)) = att {
            // Only ever set under this lock.
            let cur = att.word();
            if cur != 0 {
                return Some((cur, false));
            }
        }
        // A free slot, or a new one: either holds no references (`kill`
        // took them), so it is filled in place, dropping nothing.
        let idx = match s.free.checked_sub(1) {
            Some(i) => {
                s.free = (-1 - s.entries[i].c_refs) as usize;
                i
            }
            None if s.entries.len() >= MAX_SLOTS => return None,
            None => {
                s.entries.push(Entry {
                    gen: 0,
                    weak: None,
                    strong: None,
                    strings: Vec::new(),
                    c_refs: -1,
                });
                s.entries.len() - 1
            }
        };
        // SAFETY: `obj` came from a live `Arc` (contract); the borrowed
        // `Arc` is never dropped here, only cloned and downgraded.
        let a = core::mem::ManuallyDrop::new(unsafe { Arc::from_raw(obj) });
        let e = &mut s.entries[idx];
        debug_assert!(e.strong.is_none() && e.weak.is_none());
        // Nothing to drop in the slot (no drop code here).
        core::mem::forget(core::mem::replace(
            &mut e.weak,
            weak.then(|| Arc::downgrade(&a)),
        ));
        core::mem::forget(core::mem::replace(
            &mut e.strong,
            (c_refs > 0).then(|| Arc::clone(&a)),
        ));
        e.c_refs = c_refs.max(0);
        let h = encode(self.tag, idx, e.gen);
        if let Some((att, on_drop)) = att {
            att.set(h, on_drop);
        }
        Some((h, true))
    }

    /// The table, locked, and the index of the live entry `token` names:
    /// the one lookup every handle operation starts with (out of line,
    /// one copy for all of them: firmware size).
    #[inline(never)]
    fn lookup(&self, token: usize) -> Option<(LockGuard<'_, Slots>, usize)> {
        let (idx, gen) = self.decode(token)?;
        let s = self.slots.lock();
        let e = s.entries.get(idx)?;
        if e.c_refs < 0 || e.gen & GEN_MASK != gen {
            return None;
        }
        Some((s, idx))
    }

    fn with_entry<R>(&self, token: usize, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        let (mut s, idx) = self.lookup(token)?;
        Some(f(&mut s.entries[idx]))
    }

    fn get(&self, token: usize) -> Option<Arc<Obj>> {
        self.with_entry(token, |e| e.live()).flatten()
    }

    fn add_ref(&self, token: usize) -> bool {
        self.with_entry(token, |e| {
            let Some(obj) = e.live() else {
                return false;
            };
            e.c_refs = e.c_refs.saturating_add(1);
            e.strong = Some(obj);
            true
        })
        .unwrap_or(false)
    }

    fn release(&self, token: usize) -> Option<i32> {
        let (left, dropped) = self.with_entry(token, |e| {
            e.c_refs = (e.c_refs - 1).max(0);
            let dropped = if e.c_refs == 0 { e.strong.take() } else { None };
            (e.c_refs, dropped)
        })?;
        // Dropping may run destructors that call back into this module:
        // never while the table is locked.
        drop(dropped);
        self.reclaim(token);
        Some(left)
    }

    fn retire(&self, token: usize) -> bool {
        let Some((mut s, idx)) = self.lookup(token) else {
            return false;
        };
        let e = &mut s.entries[idx];
        if e.c_refs > 1 {
            e.c_refs -= 1;
            return false;
        }
        kill(s, idx);
        true
    }

    fn with_strings<R>(&self, token: usize, f: impl FnOnce(&mut Vec<CString>) -> R) -> Option<R> {
        self.with_entry(token, |e| f(&mut e.strings))
    }

    fn reclaim(&self, token: usize) {
        let Some((s, idx)) = self.lookup(token) else {
            return;
        };
        let e = &s.entries[idx];
        if e.c_refs != 0
            || e.strong.is_some()
            || e.weak.as_ref().is_some_and(|w| w.strong_count() != 0)
        {
            return;
        }
        kill(s, idx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_and_foreign_handles_resolve_to_nothing() {
        let t: Table<u32> = Table::new(1);
        let other: Table<u32> = Table::new(2);
        let a = Arc::new(7u32);
        let h = t.insert(&a, 1).unwrap();
        assert_ne!(h, 0);
        assert_eq!(h % 8, 0, "handles look aligned");
        assert_eq!(t.get(h).as_deref(), Some(&7));
        assert!(other.get(h).is_none(), "tag checked");
        assert!(t.get(h + 8).is_none(), "no such slot");
        assert!(t.get(1).is_none() && t.get(0).is_none() && t.get(usize::MAX & !7).is_none());
        drop(a);
        assert_eq!(t.release(h), Some(0));
        assert!(t.get(h).is_none(), "released");
        // The slot is reused with a new generation: the old handle stays dead.
        let b = Arc::new(9u32);
        let h2 = t.insert(&b, 1).unwrap();
        assert_ne!(h, h2);
        assert!(t.get(h).is_none());
        assert_eq!(t.get(h2).as_deref(), Some(&9));
    }

    #[test]
    fn retire_kills_the_last_reference_at_once_and_keeps_extra_ones() {
        let t: Table<u32> = Table::new(5);
        let mut obj = Arc::new(3u32);
        let h = t.insert(&obj, 1).unwrap();
        assert!(t.retire(h), "last C reference: killed");
        assert!(t.get(h).is_none(), "dead although the object lives");
        assert_eq!(t.c_refs(h), -1);
        assert!(!t.retire(h), "twice: invalid");
        assert!(Arc::get_mut(&mut obj).is_some(), "the table let go of it");
        let h2 = t.insert(&obj, 1).unwrap();
        assert_eq!(t.slot_index(h), t.slot_index(h2), "slot reused");
        assert!(t.add_ref(h2));
        assert!(!t.retire(h2), "C took a reference: it stays");
        assert_eq!(t.c_refs(h2), 1);
        drop(obj);
        assert_eq!(t.get(h2).as_deref(), Some(&3), "kept alive by C");
        assert_eq!(t.release(h2), Some(0));
        assert!(t.get(h2).is_none());
        assert!(!t.retire(0) && !t.retire(h2 + 8));
    }

    #[test]
    fn a_c_owned_handle_dies_with_its_last_c_reference() {
        let t: Table<u32> = Table::new(6);
        let obj = Arc::new(4u32);
        let h = t.insert_c_owned(&obj).unwrap();
        assert_eq!(t.c_refs(h), 1);
        assert!(t.add_ref(h));
        assert_eq!(t.release(h), Some(1));
        assert_eq!(t.get(h).as_deref(), Some(&4));
        assert_eq!(t.release(h), Some(0));
        assert!(t.get(h).is_none(), "dead although `obj` still lives");
        assert_eq!(t.c_refs(h), -1, "and its slot is free");
        let h2 = t.insert(&obj, 0).unwrap();
        assert_eq!(t.slot_index(h), t.slot_index(h2));
    }

    #[test]
    fn library_owned_objects_keep_their_handle() {
        let t: Table<u32> = Table::new(3);
        let obj = Arc::new(1u32);
        let h = t.insert(&obj, 0).unwrap();
        assert_eq!(t.c_refs(h), 0);
        assert!(t.add_ref(h));
        assert_eq!(t.release(h), Some(0));
        assert!(t.get(h).is_some(), "still alive through the library's Arc");
        drop(obj);
        assert!(t.get(h).is_none());
        t.reclaim(h);
        assert_eq!(t.c_refs(h), -1);
        assert!(!t.add_ref(h));
    }
}
