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
pub(crate) mod attachment;
mod budget;
mod conn;
mod context;
mod dispatch;
mod driver;
mod establish;
mod event_loop;
mod inbox;
mod keepalive;
mod machine;
mod message;
mod recv_buf;
pub(crate) use recv_buf::MAX_RECV_BUF;
mod rng;
mod scale;
mod transport;
mod watch;

pub(crate) use attachment::Attachment;
pub use conn::{ConnRole, Connection, SendStatus};
pub(crate) use context::DispatchHandler;
pub use context::{
    ActionHandler, Certificate, CloseHandler, Context, CtxConfig, HttpHandler, LogLevel, LogSink,
    MessageHandler, MessageRefHandler,
};
pub use establish::ConnectOptions;
pub use event_loop::LoopExit;
pub use message::Message;
pub use rng::OsRandom;
pub use scale::{DrainReport, GOING_AWAY};
pub use watch::FdHandler;

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
