//! A memory-safe, drop-in replacement for the nopoll C WebSocket library.
//!
//! Layers, top to bottom (see the README's "Crate layout"):
//! - `ffi`: the C ABI (`include/nopoll.h`), thin wrappers over the runtime.
//! - `runtime`: contexts, listeners, connections, messages, the event loop.
//! - [`protocol`]: the sans-IO RFC 6455 engine (`no_std` + `alloc`).
//! - `net`: the only place that touches sockets; `sync`: the one lock type.
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]

extern crate alloc;

pub mod protocol;

#[cfg(not(feature = "std"))]
mod nostd;

pub mod ffi;
pub mod net;
pub mod platform;
mod prelude;
pub mod runtime;
pub mod sync;
pub mod sys;
mod tls;
pub use tls::TlsOptions;

/// `data` as text if it is valid UTF-8, checked by the library's one
/// validator ([`protocol::utf8`]): a firmware then links no
/// `core::str::from_utf8` (360 bytes on a Cortex-M3) next to it.
pub(crate) fn utf8_str(data: &[u8]) -> Option<&str> {
    // SAFETY: `is_valid` checked that `data` is UTF-8.
    protocol::utf8::is_valid(data).then(|| unsafe { core::str::from_utf8_unchecked(data) })
}
