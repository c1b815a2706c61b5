//! What the runtime needs from its host besides sockets: a monotonic clock,
//! random bytes and (without `std`) mutexes. Each has a hook that firmware
//! installs from C (`nopoll_install_clock`, `nopoll_install_random`,
//! `nopoll_thread_handlers`) and a default:
//!
//! | need   | std default                 | no_std default (no hook)          |
//! |--------|-----------------------------|-----------------------------------|
//! | clock  | `std::time::Instant`        | C `gettimeofday`, never going back |
//! | random | `getrandom(2)`/`/dev/urandom` | C `rand()` (install a real RNG!) |
//! | mutex  | `std::sync::Mutex`          | a spin lock                       |

#[allow(unused_imports)]
use crate::prelude::*;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::Lock;
use core::ffi::c_void;
use core::ops::{Add, Sub};
use core::time::Duration;

/// The map the runtime keys sockets and connection ids with: std's hash map
/// with std.
#[cfg(feature = "std")]
pub(crate) type Map<K, V> = std::collections::HashMap<K, V>;

/// The map the runtime keys sockets and connection ids with, without std: a
/// vector of pairs searched linearly. A firmware has a handful of sockets
/// and connections, and this costs a few hundred bytes of code where a hash
/// map costs 2.4 KB (docs/footprint.md); no hasher needs seeding either.
/// Only the operations the runtime uses; iteration order is unspecified,
/// as a hash map's.
#[cfg(not(feature = "std"))]
pub(crate) type Map<K, V> = VecMap<K, V>;

/// See [`Map`] without std (also compiled for the tests).
#[cfg(any(not(feature = "std"), test))]
#[derive(Debug, Clone)]
pub(crate) struct VecMap<K, V>(Vec<(K, V)>);

#[cfg(any(not(feature = "std"), test))]
impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        VecMap(Vec::new())
    }
}

#[cfg(any(not(feature = "std"), test))]
#[allow(dead_code)]
impl<K: PartialEq, V> VecMap<K, V> {
    /// Inserts or replaces; the value replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.0.iter_mut().find(|e| e.0 == key) {
            Some(e) => Some(core::mem::replace(&mut e.1, value)),
            None => {
                self.0.push((key, value));
                None
            }
        }
    }

    /// Removes `key`; its value.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.0.iter().position(|e| e.0 == *key)?;
        Some(self.0.swap_remove(i).1)
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.0.iter().find(|e| e.0 == *key).map(|e| &e.1)
    }

    /// True if `key` is in the map.
    pub(crate) fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The values.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|e| &e.1)
    }
}

/// Adds `key`, which the caller knows is not in `map` (a connection id
/// registered once, see `Context::set_registered`): without std a push,
/// no search for an entry to replace.
#[cfg(feature = "std")]
pub(crate) fn map_add_new<K: Eq + core::hash::Hash, V>(map: &mut Map<K, V>, key: K, value: V) {
    map.insert(key, value);
}

/// See the std version.
#[cfg(not(feature = "std"))]
pub(crate) fn map_add_new<K, V>(map: &mut Map<K, V>, key: K, value: V) {
    map.0.push((key, value));
}

#[cfg(any(not(feature = "std"), test))]
impl<K, V> IntoIterator for VecMap<K, V> {
    type Item = (K, V);
    type IntoIter = alloc::vec::IntoIter<(K, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

// ------------------------------------------------------------------ clock

/// C clock hook: monotonic milliseconds (any origin; may wrap around).
pub type ClockHook = unsafe extern "C" fn() -> core::ffi::c_ulong;

static CLOCK: AtomicUsize = AtomicUsize::new(0);
/// The clock's state: the newest raw value, the microseconds it stood
/// for, and the source it came from (the hook's address; 1: the built-in
/// clock without std; 0: no reading yet). All change together under one
/// lock: apart, a thread that read the same raw value as the one updating
/// them, between its two stores, got the time from before the update, up
/// to a whole wait too early (a deadline set from it had passed already).
/// Time starts at 1 µs, so that no reading is 0, which stored instants
/// (a keepalive's `ping_at`) use for "none".
static CLOCK_STATE: Lock<(u64, u64, usize)> = Lock::new((0, 1, 0));

/// Installs (or with `None` removes) the clock hook.
pub fn install_clock(hook: Option<ClockHook>) {
    CLOCK.store(hook.map_or(0, |f| f as usize), Ordering::Release);
}

/// Microseconds from a raw reading of `source`, a counter of `unit_us`
/// microseconds that wraps at `mask`.
fn advance(source: usize, raw: u64, unit_us: u64, mask: u64) -> u64 {
    // Accumulate wrapping deltas so a 32-bit millisecond counter that wraps
    // (every 49.7 days) keeps time going forward. Only a reading ahead of
    // the newest one (by less than half the counter's range) moves it: a
    // thread that read the clock just before another but gets the lock
    // after it has a stale reading, not a wrap-around (nor a clock set
    // back: time never goes back). A new source starts from the time
    // reached. Wrapping arithmetic: 2^64 microseconds are 584,000 years.
    let mut st = CLOCK_STATE.lock();
    let (last, mut us, src) = *st;
    if src == source {
        let delta = raw.wrapping_sub(last) & mask;
        if delta == 0 || delta > mask / 2 {
            return us;
        }
        us = us.wrapping_add(delta.wrapping_mul(unit_us));
    }
    *st = (raw, us, source);
    us
}

fn hook_micros(f: ClockHook) -> u64 {
    #[allow(clippy::useless_conversion)] // c_ulong is u32 on 32-bit targets
    // SAFETY: the firmware's clock function takes no arguments.
    let raw = u64::from(unsafe { f() });
    let bits = core::mem::size_of::<core::ffi::c_ulong>() * 8;
    let mask = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    advance(f as usize, raw, 1000, mask)
}

/// Microseconds on the built-in clock.
#[cfg(feature = "std")]
fn builtin_micros() -> u64 {
    static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(std::time::Instant::now);
    u64::try_from(base.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Microseconds from C `gettimeofday`, made non-decreasing (the hook's
/// bookkeeping, see [`advance`]).
#[cfg(not(feature = "std"))]
fn builtin_micros() -> u64 {
    let mut tv = crate::sys::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    // SAFETY: tv is a live timeval; a NULL timezone is allowed.
    unsafe { crate::sys::gettimeofday(&mut tv, core::ptr::null_mut()) };
    let us = u64::try_from(tv.tv_sec)
        .unwrap_or(0)
        .wrapping_mul(1_000_000)
        .wrapping_add(u64::try_from(tv.tv_usec).unwrap_or(0));
    advance(1, us, 1, u64::MAX)
}

/// `d` in whole microseconds, saturating: without `Duration::as_micros`
/// (its u128 arithmetic costs a Cortex-M a 128-bit division).
pub(crate) fn duration_us(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from(d.subsec_micros()))
}

/// A point on the monotonic clock (microseconds), the runtime's only notion
/// of time: deadlines for handshakes, connects and loop timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(u64);

impl Instant {
    /// Never: the loop's "no deadline" (an `Option<Instant>` costs
    /// firmware its tag tests and `min` of two options at every use).
    pub(crate) const NEVER: Instant = Instant(u64::MAX);

    /// Now, from the installed clock hook or the built-in clock.
    pub fn now() -> Instant {
        let hook = CLOCK.load(Ordering::Acquire);
        if hook != 0 {
            // SAFETY: only `install_clock` stores here, from a ClockHook.
            let f: ClockHook = unsafe { core::mem::transmute::<usize, ClockHook>(hook) };
            return Instant(hook_micros(f));
        }
        Instant(builtin_micros())
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }

    /// Time since this instant.
    pub fn elapsed(self) -> Duration {
        Instant::now().saturating_duration_since(self)
    }

    /// `ms` milliseconds after this instant. In integers: a `Duration` on
    /// the way costs a Cortex-M 64-bit divisions. A `u32` (49.7 days at
    /// most): its product by 1000 cannot overflow, no saturating 64-bit
    /// multiply.
    pub(crate) fn plus_ms(self, ms: u32) -> Instant {
        Instant(self.0.saturating_add(u64::from(ms) * 1000))
    }

    /// `us` microseconds after this instant.
    pub(crate) fn plus_us(self, us: u64) -> Instant {
        Instant(self.0.saturating_add(us))
    }

    /// Milliseconds from this instant until `later` (0 if passed), rounded
    /// up so that a wait does not end just before it: a `poll` timeout, at
    /// most [`Instant::MAX_WAIT_MS`] (71.6 minutes; a caller waiting
    /// longer waits again). One 32-bit division: no 64-bit one.
    #[inline(never)]
    pub(crate) fn wait_ms(self, later: Instant) -> i32 {
        let us = later.0.saturating_sub(self.0);
        u32::try_from(us).map_or(Self::MAX_WAIT_MS, |us| us.div_ceil(1000) as i32)
    }

    /// The longest wait [`Instant::wait_ms`] gives: what a `u32` of
    /// microseconds holds.
    pub(crate) const MAX_WAIT_MS: i32 = u32::MAX.div_ceil(1000) as i32;

    /// Microseconds on the clock (for storing an instant in an atomic).
    pub(crate) fn as_micros(self) -> u64 {
        self.0
    }

    /// The instant `us` microseconds on the clock ([`Instant::as_micros`]).
    pub(crate) fn from_micros(us: u64) -> Instant {
        Instant(us)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        // Whole microseconds without `as_micros` (u128 arithmetic).
        let us = d
            .as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(u64::from(d.subsec_micros()));
        Instant(self.0.saturating_add(us))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// Blocks the calling thread for `d`: `std::thread::sleep` with std, else
/// a `poll` of no sockets through the socket table (lwIP sleeps on a
/// semaphore; no busy wait).
pub fn sleep(d: Duration) {
    #[cfg(feature = "std")]
    std::thread::sleep(d);
    #[cfg(not(feature = "std"))]
    {
        let deadline = Instant::now() + d;
        loop {
            let ms = Instant::now().wait_ms(deadline);
            if ms == 0 {
                return;
            }
            if !crate::net::idle_wait(ms) {
                return; // no table that can wait: do not spin
            }
        }
    }
}

// ----------------------------------------------------------------- random

/// C random hook: fill `len` bytes at `buf` with unpredictable data.
pub type RandomHook = unsafe extern "C" fn(buf: *mut u8, len: usize);

static RANDOM: AtomicUsize = AtomicUsize::new(0);

/// Installs (or with `None` removes) the random hook.
pub fn install_random(hook: Option<RandomHook>) {
    RANDOM.store(hook.map_or(0, |f| f as usize), Ordering::Release);
}

/// Fills `out` with random bytes: through the hook when one is installed;
/// else, with std, from the operating system (`getrandom(2)`, falling back
/// to `/dev/urandom`), fetched 256 bytes at a time into a per-thread pool
/// so that a client pays one system call per 64 masking keys; without std,
/// from C `rand()` (firmware should install its hardware RNG).
pub fn fill_random(out: &mut [u8]) {
    let hook = RANDOM.load(Ordering::Acquire);
    if hook != 0 {
        // SAFETY: only `install_random` stores here, from a RandomHook.
        let f: RandomHook = unsafe { core::mem::transmute::<usize, RandomHook>(hook) };
        // SAFETY: out is live and writable for its length.
        unsafe { f(out.as_mut_ptr(), out.len()) };
        return;
    }
    #[cfg(feature = "std")]
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        for b in out {
            if p.pos == p.buf.len() {
                p.refill();
            }
            *b = p.buf[p.pos];
            p.pos += 1;
        }
    });
    #[cfg(not(feature = "std"))]
    for b in out {
        // SAFETY: rand() takes no arguments.
        *b = (unsafe { crate::sys::rand() } >> 7) as u8;
    }
}

#[cfg(feature = "std")]
struct Pool {
    buf: [u8; 256],
    pos: usize,
}

#[cfg(feature = "std")]
std::thread_local! {
    static POOL: core::cell::RefCell<Pool> = const {
        core::cell::RefCell::new(Pool { buf: [0; 256], pos: 256 })
    };
}

#[cfg(feature = "std")]
impl Pool {
    fn refill(&mut self) {
        let mut got = 0;
        while got < self.buf.len() {
            let rest = &mut self.buf[got..];
            // SAFETY: the pointer and length describe `rest`, a valid writable slice.
            let n = unsafe {
                crate::sys::getrandom(rest.as_mut_ptr() as *mut crate::sys::c_void, rest.len(), 0)
            };
            if n > 0 {
                got += n as usize;
            } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                break;
            }
        }
        if got < self.buf.len() {
            use std::io::Read;
            let ok = std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut self.buf[got..]));
            if ok.is_err() {
                // Last resort: never hand out a constant key; mix time and address.
                let seed = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0)
                    ^ (self as *const Self as u64);
                let mut x = seed | 1;
                for b in &mut self.buf[got..] {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *b = x as u8;
                }
            }
        }
        self.pos = 0;
    }
}

// ----------------------------------------------------------------- mutex

/// The four mutex hooks of `nopoll_thread_handlers`.
#[derive(Clone, Copy)]
pub struct MutexHooks {
    /// Creates a mutex (NULL on failure).
    pub create: unsafe extern "C" fn() -> *mut c_void,
    /// Destroys a mutex made by `create`.
    pub destroy: unsafe extern "C" fn(*mut c_void),
    /// Locks it (blocking).
    pub lock: unsafe extern "C" fn(*mut c_void),
    /// Unlocks it.
    pub unlock: unsafe extern "C" fn(*mut c_void),
}

/// Installations go round these slots and `MUTEX_SLOT` says which one is
/// current (0: none), so readers take no lock and nothing is allocated or
/// freed: a reader that loaded a slot number reads that slot, which is only
/// rewritten seven installations later (installations are rare: once at
/// start-up).
const MUTEX_SLOTS: usize = 8;
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_SLOT: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];
static MUTEX: [[AtomicUsize; 4]; MUTEX_SLOTS] = [EMPTY_SLOT; MUTEX_SLOTS];
static MUTEX_SLOT: AtomicUsize = AtomicUsize::new(0);
static MUTEX_NEXT: AtomicUsize = AtomicUsize::new(0);

/// Installs (or with `None` removes) the mutex hooks.
pub fn install_mutex_hooks(hooks: Option<MutexHooks>) {
    let Some(h) = hooks else {
        MUTEX_SLOT.store(0, Ordering::Release);
        return;
    };
    let i = MUTEX_NEXT.fetch_add(1, Ordering::AcqRel) % MUTEX_SLOTS;
    let slot = &MUTEX[i];
    slot[0].store(h.create as usize, Ordering::Release);
    slot[1].store(h.destroy as usize, Ordering::Release);
    slot[2].store(h.lock as usize, Ordering::Release);
    slot[3].store(h.unlock as usize, Ordering::Release);
    MUTEX_SLOT.store(i + 1, Ordering::Release);
}

/// The installed mutex hooks.
pub fn mutex_hooks() -> Option<MutexHooks> {
    let i = MUTEX_SLOT.load(Ordering::Acquire);
    // A published slot holds four function pointers: `install_mutex_hooks`
    // stores them before the slot number (release), loaded above (acquire).
    let slot = MUTEX.get(i.checked_sub(1)?)?;
    let f = |k: usize| slot[k].load(Ordering::Relaxed);
    let (c, d, l, u) = (f(0), f(1), f(2), f(3));
    // SAFETY: a published slot only ever holds the function pointers stored by
    // install_mutex_hooks from a MutexHooks, of these exact types.
    unsafe {
        Some(MutexHooks {
            create: core::mem::transmute::<usize, unsafe extern "C" fn() -> *mut c_void>(c),
            destroy: core::mem::transmute::<usize, unsafe extern "C" fn(*mut c_void)>(d),
            lock: core::mem::transmute::<usize, unsafe extern "C" fn(*mut c_void)>(l),
            unlock: core::mem::transmute::<usize, unsafe extern "C" fn(*mut c_void)>(u),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_arithmetic_in_integers() {
        let t = Instant::from_micros(1_000);
        assert_eq!(t.plus_ms(2), Instant::from_micros(3_000));
        assert_eq!(
            t.plus_ms(u32::MAX),
            Instant::from_micros(1_000 + u64::from(u32::MAX) * 1000)
        );
        assert_eq!(Instant::NEVER.plus_ms(1), Instant::NEVER);
        assert_eq!(t + Duration::new(1, 2_500), Instant::from_micros(1_001_002));
        assert_eq!(t + Duration::MAX, Instant::from_micros(u64::MAX));
        assert_eq!(t.wait_ms(t), 0);
        assert_eq!(t.wait_ms(Instant::from_micros(0)), 0, "passed");
        assert_eq!(t.wait_ms(Instant::from_micros(1_001)), 1, "rounded up");
        assert_eq!(t.wait_ms(Instant::from_micros(3_000)), 2);
        assert_eq!(
            t.wait_ms(Instant::from_micros(u64::MAX)),
            Instant::MAX_WAIT_MS
        );
        assert_eq!(t.wait_ms(Instant::NEVER), Instant::MAX_WAIT_MS);
        let top = 1_000 + u64::from(u32::MAX);
        assert_eq!(t.wait_ms(Instant::from_micros(top - 295)), 4_294_967);
        assert_eq!(t.wait_ms(Instant::from_micros(top - 294)), 4_294_968);
        assert_eq!(t.wait_ms(Instant::from_micros(top)), Instant::MAX_WAIT_MS);
        assert_eq!(
            t.wait_ms(Instant::from_micros(top + 1)),
            Instant::MAX_WAIT_MS
        );
        assert_eq!(Instant::MAX_WAIT_MS, 4_294_968);
        assert_eq!(t.plus_us(u64::MAX), Instant::NEVER, "saturates to never");
        assert!(Instant::now() < Instant::NEVER);
    }

    #[test]
    fn vec_map_behaves_as_a_map() {
        let mut m: VecMap<i32, &str> = VecMap::default();
        assert!(m.is_empty());
        assert_eq!(m.insert(3, "a"), None);
        assert_eq!(m.insert(7, "b"), None);
        assert_eq!(m.insert(5, "c"), None);
        assert_eq!(m.insert(7, "B"), Some("b"));
        assert_eq!(m.len(), 3);
        assert_eq!(m.get(&7), Some(&"B"));
        assert!(m.contains_key(&5) && !m.contains_key(&4));
        assert_eq!(m.remove(&3), Some("a"));
        assert_eq!(m.remove(&3), None);
        assert_eq!(m.get(&5), Some(&"c"));
        let mut v: Vec<&str> = m.values().copied().collect();
        v.sort_unstable();
        assert_eq!(v, ["B", "c"]);
        let mut all: Vec<(i32, &str)> = m.into_iter().collect();
        all.sort_unstable();
        assert_eq!(all, [(5, "c"), (7, "B")]);
    }

    #[test]
    fn instant_arithmetic() {
        let a = Instant(1_000);
        let b = a + Duration::from_millis(2);
        assert_eq!(b, Instant(3_000));
        assert_eq!(b - a, Duration::from_millis(2));
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
        assert!(Instant::now() <= Instant::now());
    }
}
