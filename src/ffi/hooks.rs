//! Extension: the clock and random hooks firmware installs (the mutex hooks
//! are upstream's `nopoll_thread_handlers`, in `util.rs`).

use super::boundary;
use super::types::*;

/// Extension: makes `hook` the library's clock (monotonic milliseconds)
/// instead of the built-in one (`std::time::Instant`; C `gettimeofday` in
/// no_std builds). NULL restores the built-in clock. Handshake, connect and
/// loop timeouts all read it. Install it before creating a context.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_install_clock(hook: noPollClockHook) {
    boundary((), || {
        crate::platform::install_clock(hook);
    })
}

/// Extension: makes `hook` the source of masking keys and handshake nonces
/// instead of the built-in one (the OS's `getrandom`; C `rand()` in no_std
/// builds, which firmware should replace with its hardware RNG). NULL
/// restores the built-in source.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_install_random(hook: noPollRandomHook) {
    boundary((), || {
        crate::platform::install_random(hook);
    })
}
