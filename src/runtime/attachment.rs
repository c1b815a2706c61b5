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

    /// Sets the word (non-zero) and the function called with it when the
    /// object is dropped, unless set already: then the word set before is
    /// returned.
    pub(crate) fn set_once(&self, word: usize, on_drop: fn(usize)) -> Result<(), usize> {
        let mut slot = self.slot.lock();
        let cur = self.word.load(Ordering::Acquire);
        if cur != 0 || slot.on_drop.is_some() {
            return Err(cur);
        }
        slot.on_drop = Some(on_drop);
        self.word.store(word, Ordering::Release);
        Ok(())
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
        let word = self.word();
        let on_drop = self.slot.lock().on_drop;
        if let Some(f) = on_drop {
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
        assert!(a.set_once(7, ended).is_ok());
        assert_eq!(a.word(), 7);
        let again = a.set_once(8, |_| unreachable!("not kept when set"));
        assert_eq!(again, Err(7), "a second binding must be refused");
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
