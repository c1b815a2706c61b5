//! Randomness for masking keys and handshake nonces, from the OS.

#[allow(unused_imports)]
use crate::prelude::*;

use crate::protocol::RandomSource;

/// Random bytes for masking keys and nonces. The hook installed with
/// `nopoll_install_random` when there is one; otherwise, with std, the
/// operating system's (`getrandom(2)`, falling back to `/dev/urandom`),
/// fetched 256 bytes at a time into a per-thread pool so that a client pays
/// one system call per 64 masking keys; without std, C `rand()` (firmware
/// should install its hardware RNG). Zero-sized: connections that never
/// mask (servers) carry nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRandom;

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
            let n =
                unsafe { libc::getrandom(rest.as_mut_ptr() as *mut libc::c_void, rest.len(), 0) };
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

impl RandomSource for OsRandom {
    fn fill(&mut self, out: &mut [u8]) {
        if crate::platform::hook_random(out) {
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
            *b = (unsafe { libc::rand() } >> 7) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ() {
        let mut r = OsRandom;
        let mut keys = std::collections::HashSet::new();
        for _ in 0..1000 {
            let mut k = [0u8; 4];
            r.fill(&mut k);
            keys.insert(k);
        }
        assert!(keys.len() > 990, "random keys repeat: {}", keys.len());
        assert_eq!(core::mem::size_of::<OsRandom>(), 0);
    }
}
