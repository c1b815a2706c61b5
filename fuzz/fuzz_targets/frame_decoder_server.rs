//! Arbitrary bytes into a server-side `Engine` (it must receive masked
//! frames): whole and split, whole-message and partial delivery, small
//! limits. See `nopoll_fuzz::fuzz_engine` for the checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nopoll::protocol::Role;

fuzz_target!(|raw: &[u8]| nopoll_fuzz::fuzz_engine(Role::Server, raw));
