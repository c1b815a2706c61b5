//! A slot on a context or connection for a layer built on the runtime
//! (the C API keeps its handle there). The runtime never looks inside: it
//! stores one word, readable without a lock on every message, and the
//! function the layer wants called with that word when the object is
//! dropped (so the layer learns of the object's end: the C API then frees
//! the handle and the C strings it handed out for the object).
//!
//! Two atomic words, not a boxed value of the layer's type nor a lock of
//! their own: no allocation or mutex per object, no `dyn Any` type checks
//! or drop glue (firmware size).

#[allow(unused_imports)]
use crate::prelude::*;

use crate::sync::atomic::{AtomicUsize, Ordering};

/// One word and its end-of-object function, both set once (together).
/// The layer serialises the setting (the C API: under its handle table's
/// lock, which also keeps the strings it hands out): no lock of its own
/// per object, no drop code beyond the call.
#[derive(Default)]
pub(crate) struct Attachment {
    word: AtomicUsize,
    /// The `fn(usize)` called with the word when the object is dropped,
    /// as an address (0: none); stored before `word`.
    on_drop: AtomicUsize,
}

impl Attachment {
    /// The word (0 until set).
    #[inline]
    pub(crate) fn word(&self) -> usize {
        self.word.load(Ordering::Acquire)
    }

    /// Sets the word, with the function called with it when the object
    /// is dropped. Once: the caller makes sure no other call races it
    /// (the C API sets it under its handle table's lock, after looking
    /// at [`Attachment::word`] there).
    pub(crate) fn set(&self, word: usize, on_drop: fn(usize)) {
        self.on_drop.store(on_drop as usize, Ordering::Relaxed);
        self.word.store(word, Ordering::Release);
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        let f = *self.on_drop.get_mut();
        if f != 0 {
            // SAFETY: only `set` stores here, the address of a `fn(usize)`.
            let f = unsafe { core::mem::transmute::<usize, fn(usize)>(f) };
            f(*self.word.get_mut());
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
        drop(a);
        assert_eq!(
            ENDED.load(Ordering::SeqCst),
            0,
            "nothing set: nothing called"
        );
        let a = Attachment::default();
        a.set(7, ended);
        assert_eq!(a.word(), 7);
        assert_eq!(ENDED.load(Ordering::SeqCst), 0);
        drop(a);
        assert_eq!(ENDED.load(Ordering::SeqCst), 7);
    }
}
