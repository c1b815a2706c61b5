//! A slot on a context or connection for a layer built on the runtime
//! (the C API keeps its handle there). The runtime never looks inside: it
//! stores one word, readable without a lock on every message, and one
//! value of the layer's own type, dropped with the object (so the layer
//! learns of the object's end by its value's `Drop`).

#[allow(unused_imports)]
use crate::prelude::*;

use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::Lock;
use core::any::Any;

/// The layer's value.
pub(crate) type Attached = Box<dyn Any + Send + Sync>;

/// One word and one value, both set once (together).
pub(crate) struct Attachment {
    word: AtomicUsize,
    value: Lock<Option<Attached>>,
}

impl Default for Attachment {
    fn default() -> Self {
        Attachment {
            word: AtomicUsize::new(0),
            value: Lock::new(None),
        }
    }
}

impl Attachment {
    /// The word (0 until set).
    #[inline]
    pub(crate) fn word(&self) -> usize {
        self.word.load(Ordering::Acquire)
    }

    /// Sets the word and the value `make` gives, unless set already: then
    /// `make` is not called (nothing to hand back and undo) and the word
    /// set before is returned.
    pub(crate) fn set_once(
        &self,
        word: usize,
        make: impl FnOnce() -> Attached,
    ) -> Result<(), usize> {
        let mut slot = self.value.lock();
        let cur = self.word.load(Ordering::Acquire);
        if cur != 0 || slot.is_some() {
            return Err(cur);
        }
        *slot = Some(make());
        self.word.store(word, Ordering::Release);
        Ok(())
    }

    /// Runs `f` on the value if it is set and of type `T`.
    pub(crate) fn with<T: Any, R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut slot = self.value.lock();
        slot.as_mut()?.downcast_mut::<T>().map(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::atomic::AtomicBool;
    use crate::sync::Arc;

    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn set_once_then_dropped_with_the_slot() {
        let dropped = Arc::new(AtomicBool::new(false));
        let a = Attachment::default();
        assert_eq!(a.word(), 0);
        assert!(a.set_once(7, || Box::new(Flag(dropped.clone()))).is_ok());
        assert_eq!(a.word(), 7);
        let again = a.set_once(8, || unreachable!("not made when set"));
        assert_eq!(again, Err(7), "a second value must be refused");
        assert_eq!(a.word(), 7);
        assert_eq!(
            a.with(|f: &mut Flag| f.0.load(Ordering::SeqCst)),
            Some(false)
        );
        assert_eq!(a.with(|_: &mut u32| ()), None, "wrong type");
        drop(a);
        assert!(dropped.load(Ordering::SeqCst));
    }
}
