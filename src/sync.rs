//! The one lock abstraction of the crate.
//!
//! With `std` it is `std::sync::Mutex` (poisoning ignored: a panic cannot
//! cross into C anyway, and the protected state stays consistent because no
//! code path panics between two related writes). Without `std` it is a
//! mutex made through the hooks of `nopoll_thread_handlers` (FreeRTOS
//! mutexes in practice), or a spin lock for locks first used before any
//! hooks were installed (install them first thing on firmware: a spin lock
//! between tasks of different priorities on one core can live-lock).

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

        /// The value, without locking: `&mut self` is the only reference.
        pub fn get_mut(&mut self) -> &mut T {
            self.0.get_mut().unwrap_or_else(|p| p.into_inner())
        }

        /// Ends the lock without dropping its value (one that owns nothing:
        /// its drop code is not linked here); the mutex itself is dropped
        /// (on some targets std's mutex owns an OS mutex on the heap).
        pub fn forget_value(self) {
            core::mem::forget(self.0.into_inner().unwrap_or_else(|p| p.into_inner()));
        }
    }
}

#[cfg(not(feature = "std"))]
mod imp {
    use crate::platform::mutex_hooks;
    use crate::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
    use core::cell::UnsafeCell;
    use core::ffi::c_void;
    use core::ops::{Deref, DerefMut};

    /// `Raw::mutex` value of a lock that spins (no hooks when first used).
    const SPIN: *mut c_void = core::ptr::dangling_mut::<c_void>();

    /// The lock itself, without the value: one non-generic body for every
    /// `Lock<T>` (a copy per `T` costs about 200 bytes of firmware each).
    #[derive(Debug, Default)]
    struct Raw {
        /// NULL: not decided yet; `SPIN`; else the hooks' mutex.
        mutex: AtomicPtr<c_void>,
        held: AtomicBool,
    }

    /// A mutex from the hooks, else `SPIN`. Out of line: inlined, the
    /// first use's compare-and-swap was copied for each outcome.
    #[inline(never)]
    fn new_mutex() -> *mut c_void {
        let made = match mutex_hooks() {
            // SAFETY: the hooks' contract (nopoll_thread_handlers).
            Some(h) => unsafe { (h.create)() },
            None => SPIN,
        };
        if made.is_null() {
            SPIN
        } else {
            made
        }
    }

    impl Raw {
        const fn new() -> Self {
            Raw {
                mutex: AtomicPtr::new(core::ptr::null_mut()),
                held: AtomicBool::new(false),
            }
        }

        /// The mutex (made on first use).
        fn mutex(&self) -> *mut c_void {
            let m = self.mutex.load(Ordering::Acquire);
            if !m.is_null() {
                return m;
            }
            let made = new_mutex();
            match self.mutex.compare_exchange(
                core::ptr::null_mut(),
                made,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => made,
                Err(winner) => {
                    // SAFETY: `made` came from `new_mutex` and was never shared.
                    unsafe { destroy_mutex(made) };
                    winner
                }
            }
        }

        #[inline(always)]
        fn acquire(&self) {
            let m = self.mutex();
            if m != SPIN {
                if let Some(h) = mutex_hooks() {
                    // SAFETY: `m` came from the hooks' `create`.
                    unsafe { (h.lock)(m) };
                    return;
                }
            }
            while self
                .held
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                core::hint::spin_loop();
            }
        }

        /// Releases what [`Raw::acquire`] took: it chose the hooks' mutex
        /// when the lock has one and hooks are installed, which is still
        /// so (hooks are installed at start-up, never while a lock is
        /// held), else the spin flag. Nothing to remember per guard: a
        /// guard is one pointer (a guard of the hooks and the mutex, six
        /// words, cost 0.8 KB of firmware in copies at every lock site).
        #[inline(never)]
        fn release(&self) {
            let m = self.mutex.load(Ordering::Acquire);
            if !m.is_null() && m != SPIN {
                if let Some(h) = mutex_hooks() {
                    // SAFETY: `m` is the mutex `acquire` locked through the
                    // hooks' `lock`.
                    unsafe { (h.unlock)(m) };
                    return;
                }
            }
            self.held.store(false, Ordering::Release);
        }
    }

    /// Gives a lock's mutex back to the hooks (nothing for none or
    /// `SPIN`). One body for a lock's drop and a lost first-use race.
    ///
    /// # Safety
    /// `m` is null, `SPIN` or a mutex from the hooks' `create` that
    /// nobody holds or uses any more.
    #[inline(never)]
    unsafe fn destroy_mutex(m: *mut c_void) {
        if !m.is_null() && m != SPIN {
            if let Some(h) = mutex_hooks() {
                // SAFETY: `m` came from `create`; nobody holds the lock.
                unsafe { (h.destroy)(m) };
            }
        }
    }

    impl Drop for Raw {
        fn drop(&mut self) {
            // SAFETY: the lock's own mutex, unused from now on.
            unsafe { destroy_mutex(*self.mutex.get_mut()) };
        }
    }

    /// A mutual-exclusion lock around `T`: a mutex from the hooks of
    /// `nopoll_thread_handlers` (created on first use), or a spin lock when
    /// none were installed by then.
    ///
    /// `repr(C)`, the `Raw` first: the value is then [`VALUE_AT`] bytes
    /// after the start for every `T` whose alignment `Raw`'s size is a
    /// multiple of (every `T` up to 8-byte alignment on a 32-bit target,
    /// where `Raw` is 8 bytes), and one non-generic [`lock_at`] locks
    /// every `Lock<T>` (a `lock` per `T`, five on the firmware's echo
    /// listener, were identical but for that offset). Other `T` take the
    /// value's own offset (checked in [`Lock::lock`]).
    #[derive(Debug, Default)]
    #[repr(C)]
    pub struct Lock<T> {
        raw: Raw,
        value: UnsafeCell<T>,
    }

    /// Where a `Lock<T>`'s value starts when `T`'s alignment divides
    /// `Raw`'s size: right after the `Raw`.
    const VALUE_AT: usize = core::mem::size_of::<Raw>();

    /// Locks the `Lock<_>` at `lock`; returns where its value is for
    /// most `T` ([`VALUE_AT`]) and `lock` itself,
    /// in two registers: the caller keeps neither across the call.
    ///
    /// # Safety
    /// `lock` points at a live `Lock<_>`.
    #[inline(never)]
    unsafe fn lock_at(lock: *const Raw) -> (*const u8, *const Raw) {
        // SAFETY: the caller's contract; a `Lock` starts with its `Raw`.
        unsafe { (*lock).acquire() };
        (lock.cast::<u8>().wrapping_add(VALUE_AT), lock)
    }

    // SAFETY: access to `value` is serialised by the mutex or `held`.
    unsafe impl<T: Send> Sync for Lock<T> {}
    // SAFETY: moving the lock moves the value; `T: Send` makes that sound.
    unsafe impl<T: Send> Send for Lock<T> {}

    /// Guard returned by [`Lock::lock`].
    pub struct LockGuard<'a, T> {
        value: &'a UnsafeCell<T>,
        /// Releases on drop: the only drop code, shared by every `T`.
        _held: RawGuard<'a>,
    }

    /// A held [`Raw`], released when dropped.
    struct RawGuard<'a> {
        raw: &'a Raw,
    }

    impl Drop for RawGuard<'_> {
        fn drop(&mut self) {
            self.raw.release();
        }
    }

    impl<T> Lock<T> {
        /// A new unlocked lock.
        pub const fn new(value: T) -> Self {
            Lock {
                raw: Raw::new(),
                value: UnsafeCell::new(value),
            }
        }

        /// The value, without locking: `&mut self` is the only reference.
        pub fn get_mut(&mut self) -> &mut T {
            self.value.get_mut()
        }

        /// Ends the lock (its mutex given back) without dropping its
        /// value: for a value that owns nothing, whose drop code is then
        /// not linked here.
        pub fn forget_value(self) {
            let me = core::mem::ManuallyDrop::new(self);
            // SAFETY: `me` is never used again: its `Raw` is read out
            // once and dropped, its value forgotten.
            drop(unsafe { core::ptr::read(&me.raw) });
        }

        /// Locks (blocking or spinning) and returns the guard.
        #[inline(always)]
        pub fn lock(&self) -> LockGuard<'_, T> {
            // SAFETY: `self` is a live lock, its `Raw` first (`repr(C)`).
            let (at, raw) = unsafe { lock_at((self as *const Self).cast()) };
            let value = if core::mem::offset_of!(Self, value) == VALUE_AT {
                at.cast::<UnsafeCell<T>>()
            } else {
                &self.value
            };
            // SAFETY: `raw` is `self.raw`, `value` is `self.value` (the
            // offset checked above): both live as long as `self`.
            let (raw, value) = unsafe { (&*raw, &*value) };
            LockGuard {
                _held: RawGuard { raw },
                value,
            }
        }
    }

    impl<T> Deref for LockGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            // SAFETY: the guard holds the lock.
            unsafe { &*self.value.get() }
        }
    }

    impl<T> DerefMut for LockGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            // SAFETY: the guard holds the lock; `&mut self` makes this the
            // only reference through it.
            unsafe { &mut *self.value.get() }
        }
    }
}

pub use imp::{Lock, LockGuard};

/// The atomics of the crate: `core`'s on hosted targets; on bare metal
/// (`target_os = "none"`) `portable-atomic`'s, which are `core`'s where the
/// target has them, with compare-and-swap emulated on ARMv6-M (Cortex-M0/M0+,
/// loads and stores only) by masking interrupts: sound on a single-core part
/// only (the `unsafe-assume-single-core` feature, see Cargo.toml and the
/// README's firmware section). `AtomicU64` where the target has none
/// (ARMv6-M, ARMv7-M/R) is [`LockedU64`]: a [`Lock`] around the value
/// (portable-atomic's fallback would cost a 2 KB table of spin locks in RAM).
#[cfg(not(target_os = "none"))]
pub use core::sync::atomic;

/// The atomics of the crate (see the hosted definition).
#[cfg(target_os = "none")]
pub mod atomic {
    #[cfg(target_has_atomic = "64")]
    pub use portable_atomic::AtomicU64;
    pub use portable_atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU16, AtomicUsize, Ordering};

    #[cfg(not(target_has_atomic = "64"))]
    pub use super::LockedU64 as AtomicU64;
}

/// A `u64` behind the crate's [`Lock`] with the subset of `AtomicU64`'s API
/// the crate uses (every operation is sequentially consistent; the
/// orderings are accepted and ignored).
#[cfg(any(test, all(target_os = "none", not(target_has_atomic = "64"))))]
#[derive(Debug, Default)]
pub struct LockedU64(Lock<u64>);

#[cfg(any(test, all(target_os = "none", not(target_has_atomic = "64"))))]
#[allow(dead_code)]
impl LockedU64 {
    /// A new value.
    pub const fn new(value: u64) -> Self {
        LockedU64(Lock::new(value))
    }

    /// The value.
    pub fn load(&self, _: core::sync::atomic::Ordering) -> u64 {
        *self.0.lock()
    }

    /// Replaces the value.
    pub fn store(&self, value: u64, _: core::sync::atomic::Ordering) {
        *self.0.lock() = value;
    }

    /// Adds (wrapping); the previous value.
    pub fn fetch_add(&self, value: u64, _: core::sync::atomic::Ordering) -> u64 {
        let mut g = self.0.lock();
        let old = *g;
        *g = old.wrapping_add(value);
        old
    }

    /// Keeps the larger; the previous value.
    pub fn fetch_max(&self, value: u64, _: core::sync::atomic::Ordering) -> u64 {
        let mut g = self.0.lock();
        let old = *g;
        *g = old.max(value);
        old
    }

    /// Stores `new` if the value is `current`: Ok(previous) or Err(actual).
    pub fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        _: core::sync::atomic::Ordering,
        _: core::sync::atomic::Ordering,
    ) -> Result<u64, u64> {
        let mut g = self.0.lock();
        if *g == current {
            *g = new;
            Ok(current)
        } else {
            Err(*g)
        }
    }
}

/// The reference-counted pointer of the crate: `alloc`'s wherever the target
/// has compare-and-swap; on ARMv6-M, where `alloc::sync::Arc` does not
/// exist, `portable-atomic-util`'s (its `Arc<dyn Fn ..>` coercions need the
/// `portable_atomic_unstable_coerce_unsized` cfg, set for that target in
/// `.cargo/config.toml`).
#[cfg(not(all(target_os = "none", not(target_has_atomic = "ptr"))))]
pub use alloc::sync::{Arc, Weak};

/// The reference-counted pointer of the crate (see the other definition).
#[cfg(all(target_os = "none", not(target_has_atomic = "ptr")))]
pub use portable_atomic_util::{Arc, Weak};

#[cfg(test)]
mod tests {
    use super::{Lock, LockedU64};
    use core::sync::atomic::Ordering::SeqCst;

    #[test]
    fn locked_u64_is_an_atomic_u64() {
        let a = LockedU64::new(u64::MAX - 1);
        assert_eq!(a.fetch_add(3, SeqCst), u64::MAX - 1);
        assert_eq!(a.load(SeqCst), 1);
        assert_eq!(a.compare_exchange(2, 9, SeqCst, SeqCst), Err(1));
        assert_eq!(a.compare_exchange(1, 9, SeqCst, SeqCst), Ok(1));
        assert_eq!(a.fetch_max(5, SeqCst), 9);
        assert_eq!(a.fetch_max(1 << 40, SeqCst), 9);
        a.store(7, SeqCst);
        assert_eq!(a.load(SeqCst), 7);
    }

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
