//! Arbitrary bytes into a client-side `Engine` (it must receive unmasked
//! frames): whole and split, whole-message and partial delivery, small
//! limits. See `nopoll_fuzz::fuzz_engine` for the checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nopoll::protocol::Role;

fuzz_target!(|raw: &[u8]| nopoll_fuzz::fuzz_engine(Role::Client, raw));
