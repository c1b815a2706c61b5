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
