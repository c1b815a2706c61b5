//! Contexts, listeners, connections, messages and the event loop: the
//! protocol engine driven over sockets. This is also the safe Rust API.
//!
//! ```no_run
//! use nopoll::runtime::{Context, ConnectOptions};
//! let ctx = Context::new().unwrap();
//! let listener = ctx.listen("127.0.0.1", "0", false).unwrap();
//! ctx.set_on_message(|_ctx, conn, msg| {
//!     let _ = conn.send_text(msg.text().unwrap_or(""));
//! });
//! let port = listener.port().to_string();
//! let client = ctx.connect(&ConnectOptions::new("127.0.0.1", &port)).unwrap();
//! # let _ = client;
//! ctx.loop_wait(Some(core::time::Duration::from_millis(100)));
//! ```
//!
//! Locking: a context's own locks are leaves (never held while taking a
//! connection's lock), and no lock is held while a user callback runs.

#[allow(unused_imports)]
use crate::prelude::*;

mod accept_backoff;
mod conn;
mod context;
mod event_loop;
mod message;
mod recv_buf;
pub(crate) use recv_buf::MAX_RECV_BUF;
mod rng;

pub use conn::{ConnRole, ConnectOptions, Connection, SendStatus};
pub(crate) use context::DispatchHandler;
pub use context::{
    ActionHandler, Certificate, CloseHandler, Context, CtxConfig, HttpHandler, LogLevel, LogSink,
    MessageHandler, MessageRefHandler,
};
pub use event_loop::LoopExit;
pub use message::Message;
pub use rng::OsRandom;

pub(crate) use conn::ConnInner;
pub(crate) use context::CtxInner;

use crate::net::NetError;
use crate::protocol::{HandshakeError, SendError};

/// Why a runtime operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A socket call failed.
    #[error("network: {0}")]
    Net(NetError),
    /// The opening handshake failed.
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// A send was refused.
    #[error("send: {0}")]
    Send(#[from] SendError),
    /// An argument was unusable.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The connection is closed or not yet open.
    #[error("connection is not open")]
    NotOpen,
    /// The operation would block.
    #[error("operation would block")]
    WouldBlock,
    /// A timeout expired.
    #[error("timed out")]
    Timeout,
    /// The `on_accept` handler refused the connection.
    #[error("refused by the on_accept handler")]
    Refused,
}

impl From<NetError> for Error {
    fn from(e: NetError) -> Self {
        if e.would_block() {
            Error::WouldBlock
        } else {
            Error::Net(e)
        }
    }
}

/// Called with an object's binding word when a context or connection that
/// has one is destroyed (the C layer frees its handle slot).
static BINDING_DROP_HOOK: core::sync::atomic::AtomicPtr<()> =
    core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());

/// Sets the binding layer's drop hook (once; later calls are ignored).
pub(crate) fn set_binding_drop_hook(h: fn(usize)) {
    // Called on every handle lookup: a plain load once set (a
    // compare-exchange is a write to a shared cache line).
    if !BINDING_DROP_HOOK
        .load(core::sync::atomic::Ordering::Acquire)
        .is_null()
    {
        return;
    }
    let _ = BINDING_DROP_HOOK.compare_exchange(
        core::ptr::null_mut(),
        h as *mut (),
        core::sync::atomic::Ordering::AcqRel,
        core::sync::atomic::Ordering::Acquire,
    );
}

pub(crate) fn binding_dropped(word: usize) {
    let p = BINDING_DROP_HOOK.load(core::sync::atomic::Ordering::Acquire);
    if word != 0 && !p.is_null() {
        // SAFETY: only set_binding_drop_hook stores here, from a fn(usize).
        let h = unsafe { core::mem::transmute::<*mut (), fn(usize)>(p) };
        h(word);
    }
}
