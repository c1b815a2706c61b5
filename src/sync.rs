//! The one lock abstraction of the crate.
//!
//! With `std` it is `std::sync::Mutex` (poisoning ignored: a panic cannot
//! cross into C anyway, and the protected state stays consistent because no
//! code path panics between two related writes). Without `std` it is a
//! minimal spin lock; firmware builds replace it with the mutex hooks of
//! `nopoll_thread_handlers`.

#[cfg(feature = "std")]
mod imp {
    /// A mutual-exclusion lock around `T`.
    #[derive(Debug, Default)]
    pub struct Lock<T>(std::sync::Mutex<T>);

    /// Guard returned by [`Lock::lock`].
    pub type LockGuard<'a, T> = std::sync::MutexGuard<'a, T>;

    impl<T> Lock<T> {
        /// A new unlocked lock.
        pub const fn new(value: T) -> Self {
            Lock(std::sync::Mutex::new(value))
        }

        /// Blocks until the lock is held.
        pub fn lock(&self) -> LockGuard<'_, T> {
            self.0.lock().unwrap_or_else(|p| p.into_inner())
        }
    }
}

#[cfg(not(feature = "std"))]
mod imp {
    use core::cell::UnsafeCell;
    use core::ops::{Deref, DerefMut};
    use core::sync::atomic::{AtomicBool, Ordering};

    /// A mutual-exclusion lock around `T`.
    #[derive(Debug, Default)]
    pub struct Lock<T> {
        held: AtomicBool,
        value: UnsafeCell<T>,
    }

    // SAFETY: access to `value` is serialised by `held`.
    unsafe impl<T: Send> Sync for Lock<T> {}
    // SAFETY: moving the lock moves the value; `T: Send` makes that sound.
    unsafe impl<T: Send> Send for Lock<T> {}

    /// Guard returned by [`Lock::lock`].
    pub struct LockGuard<'a, T>(&'a Lock<T>);

    impl<T> Lock<T> {
        /// A new unlocked lock.
        pub const fn new(value: T) -> Self {
            Lock {
                held: AtomicBool::new(false),
                value: UnsafeCell::new(value),
            }
        }

        /// Spins until the lock is held.
        pub fn lock(&self) -> LockGuard<'_, T> {
            while self
                .held
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                core::hint::spin_loop();
            }
            LockGuard(self)
        }
    }

    impl<T> Deref for LockGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            // SAFETY: the guard proves the lock is held, so no other reference exists.
            unsafe { &*self.0.value.get() }
        }
    }

    impl<T> DerefMut for LockGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            // SAFETY: the guard proves the lock is held, so this is the only reference.
            unsafe { &mut *self.0.value.get() }
        }
    }

    impl<T> Drop for LockGuard<'_, T> {
        fn drop(&mut self) {
            self.0.held.store(false, Ordering::Release);
        }
    }
}

pub use imp::{Lock, LockGuard};

#[cfg(test)]
mod tests {
    use super::Lock;

    #[test]
    fn serialises_writers() {
        let lock = std::sync::Arc::new(Lock::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let l = lock.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        *l.lock() += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*lock.lock(), 40_000);
    }
}
