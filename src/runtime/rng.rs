//! Randomness for masking keys and handshake nonces, as a
//! [`RandomSource`] (the bytes come from `platform::fill_random`).

#[allow(unused_imports)]
use crate::prelude::*;

use crate::protocol::RandomSource;

/// Random bytes for masking keys and nonces: the hook installed with
/// `nopoll_install_random`, else the operating system's (std) or C
/// `rand()` (no_std); see [`crate::platform::fill_random`]. Zero-sized:
/// connections that never mask (servers) carry nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&mut self, out: &mut [u8]) {
        crate::platform::fill_random(out);
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
