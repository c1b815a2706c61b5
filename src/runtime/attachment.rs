//! A slot on a context or connection for a layer built on the runtime
//! (the C API keeps its handle there). The runtime never looks inside: it
//! stores one word, readable without a lock on every message, the
//! function the layer wants called with that word when the object is
//! dropped (so the layer learns of the object's end), and the C strings
//! the layer handed out for the object, kept as long as it lives.
//!
//! Plain fields, not a boxed value of the layer's type: no allocation per
//! object, no `dyn Any` type checks or drop glue (firmware size).

#[allow(unused_imports)]
use crate::prelude::*;

use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::Lock;
use alloc::ffi::CString;

/// One word and its end-of-object function, both set once (together),
/// and the kept strings.
pub(crate) struct Attachment {
    word: AtomicUsize,
    slot: Lock<Slot>,
}

#[derive(Default)]
struct Slot {
    on_drop: Option<fn(usize)>,
    strings: Vec<CString>,
}

impl Default for Attachment {
    fn default() -> Self {
        Attachment {
            word: AtomicUsize::new(0),
            slot: Lock::new(Slot::default()),
        }
    }
}

impl Attachment {
    /// The word (0 until set).
    #[inline]
    pub(crate) fn word(&self) -> usize {
        self.word.load(Ordering::Acquire)
    }

    /// The word; if none is set yet, the one `make` gives (None: none
    /// set), set with the function called with it when the object is
    /// dropped. `make` runs under the slot's lock, so only one caller
    /// makes it (nothing made is thrown away). True: made by this call.
    pub(crate) fn get_or_set(
        &self,
        on_drop: fn(usize),
        make: impl FnOnce() -> Option<usize>,
    ) -> Option<(usize, bool)> {
        let mut slot = self.slot.lock();
        // Under the lock, where it is only ever stored: no fence.
        let cur = self.word.load(Ordering::Relaxed);
        if cur != 0 {
            return Some((cur, false));
        }
        let word = make()?;
        slot.on_drop = Some(on_drop);
        self.word.store(word, Ordering::Release);
        Some((word, true))
    }

    /// Runs `f` on the kept strings once the word is set (None before).
    pub(crate) fn with_strings<R>(&self, f: impl FnOnce(&mut Vec<CString>) -> R) -> Option<R> {
        let mut slot = self.slot.lock();
        slot.on_drop?;
        Some(f(&mut slot.strings))
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        let word = *self.word.get_mut();
        if let Some(f) = self.slot.get_mut().on_drop {
            f(word);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static ENDED: AtomicUsize = AtomicUsize::new(0);

    fn ended(word: usize) {
        ENDED.store(word, Ordering::SeqCst);
    }

    #[test]
    fn set_once_then_called_when_dropped() {
        let a = Attachment::default();
        assert_eq!(a.word(), 0);
        assert_eq!(a.with_strings(|_| ()), None, "no strings kept before");
        assert_eq!(a.get_or_set(ended, || None), None, "nothing made");
        assert_eq!(a.word(), 0);
        assert_eq!(a.get_or_set(ended, || Some(7)), Some((7, true)));
        assert_eq!(a.word(), 7);
        let again = a.get_or_set(|_| unreachable!("not kept"), || unreachable!("not made"));
        assert_eq!(again, Some((7, false)), "the first word stays");
        assert_eq!(a.word(), 7);
        let p = a
            .with_strings(|v| {
                v.push(CString::new("kept").unwrap());
                v[0].as_ptr()
            })
            .unwrap();
        assert_eq!(a.with_strings(|v| v[0].as_ptr()), Some(p), "not moved");
        assert_eq!(ENDED.load(Ordering::SeqCst), 0);
        drop(a);
        assert_eq!(ENDED.load(Ordering::SeqCst), 7);
    }
}
