//! The sans-IO RFC 6455 engine: no sockets, no clock, no locks, `alloc` only.
//!
//! - [`handshake`]: the opening handshake, both roles, fed in pieces.
//! - [`frame`]: the frame header codec; [`mask`]: masking.
//! - [`engine`]: frames to messages and back, control frames, closing.
//! - [`utf8`]: incremental UTF-8 validation; [`close`]: close frame rules.
//! - [`proxy`]: the PROXY protocol header a load balancer sends first.
//! - [`text`]: numbers and IP addresses as text without `core::fmt`.
//!
//! Safe Rust only: the compiler refuses any `unsafe` here.
#![forbid(unsafe_code)]

pub mod base64;
pub mod close;
pub mod deflate;
pub mod engine;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod proxy;
pub mod sha1;
pub mod text;
pub mod utf8;

pub use close::CloseFrame;
pub use deflate::{DeflateConfig, DeflateParams};
pub use engine::{Chunk, Config, DataKind, Delivery, Engine, Event, FrameHead};
pub use frame::{FrameHeader, OpCode};
pub use handshake::{
    accept_key, ClientHandshake, ClientRequest, HandshakeError, HandshakeLimits, Rejection,
    Request, Response, ServerHandshake, ServerOutcome, UpgradeRequest,
};

/// Which end of the connection an endpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Opened the connection; masks what it sends.
    Client,
    /// Accepted the connection; never masks.
    Server,
}

/// Where masking keys and handshake nonces come from.
///
/// RFC 6455 asks for unpredictable masking keys, so a real endpoint passes
/// a source backed by the system's (or the board's) random generator.
pub trait RandomSource {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

impl<F: FnMut(&mut [u8])> RandomSource for F {
    fn fill(&mut self, buf: &mut [u8]) {
        self(buf)
    }
}

/// A received frame broke the protocol; the connection fails with
/// [`ProtocolError::close_code`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// RSV bits set without a negotiated extension.
    #[error("reserved bits set without a negotiated extension")]
    ReservedBits,
    /// Opcode 3-7 or 11-15.
    #[error("reserved opcode {0}")]
    ReservedOpcode(u8),
    /// A control frame without FIN.
    #[error("fragmented control frame")]
    FragmentedControl,
    /// A control frame longer than 125 bytes.
    #[error("control frame payload of {0} bytes exceeds 125")]
    ControlTooLong(usize),
    /// A server received an unmasked frame.
    #[error("unmasked frame from a client")]
    UnmaskedFrame,
    /// A client received a masked frame.
    #[error("masked frame from a server")]
    MaskedFrame,
    /// A 64-bit length with its most significant bit set.
    #[error("64-bit payload length with the most significant bit set")]
    LengthOverflow,
    /// A continuation frame with no message in progress.
    #[error("continuation frame without a message in progress")]
    UnexpectedContinuation,
    /// A text or binary frame while a fragmented message is in progress
    /// (upstream nopoll sends its fragments so; `Config::legacy_fragments`,
    /// `nopoll_ctx_set_legacy_fragments` in C, accepts them).
    #[error("new data frame inside a fragmented message (upstream nopoll peers send these: nopoll_ctx_set_legacy_fragments accepts them)")]
    InterleavedMessage,
    /// A frame longer than the configured limit.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// Announced payload length.
        len: usize,
        /// Configured limit.
        max: usize,
    },
    /// A message longer than the configured limit.
    #[error("message exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// Configured limit.
        max: usize,
    },
    /// No memory left to reassemble a message (within the limits): 1009.
    #[error("out of memory reassembling a message (limit {max} bytes)")]
    OutOfMemory {
        /// Configured message limit.
        max: usize,
    },
    /// Text that is not UTF-8.
    #[error("invalid UTF-8 in a text message")]
    InvalidUtf8,
    /// A compressed message (permessage-deflate) that is not valid
    /// DEFLATE data: 1007, as for other payload inconsistent with its
    /// message (RFC 7692 only says to fail the connection).
    #[error("invalid compressed data (permessage-deflate)")]
    BadCompressedData,
    /// A close frame with a 1-byte payload.
    #[error("close frame with a 1-byte payload")]
    CloseLength,
    /// A close frame with a code not allowed on the wire.
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A close reason that is not UTF-8.
    #[error("invalid UTF-8 in the close reason")]
    InvalidCloseReason,
}

/// A length or limit as an error reports it: `usize` (a word on every
/// target, so that an error is moved around the receive path in three
/// words, not five), saturated where it does not fit (a 32-bit target's
/// limits over 4 GiB).
#[inline]
pub(crate) fn err_len(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl ProtocolError {
    /// The status code to close the connection with.
    pub fn close_code(&self) -> u16 {
        match self {
            ProtocolError::InvalidUtf8
            | ProtocolError::InvalidCloseReason
            | ProtocolError::BadCompressedData => close::STATUS_INVALID_DATA,
            ProtocolError::FrameTooLarge { .. }
            | ProtocolError::MessageTooLarge { .. }
            | ProtocolError::OutOfMemory { .. } => close::STATUS_TOO_BIG,
            _ => close::STATUS_PROTOCOL_ERROR,
        }
    }
}

/// A send was refused; nothing was queued.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// We already sent a close frame (or the connection failed).
    #[error("the connection is closing")]
    Closed,
    /// Text that is not UTF-8.
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    /// Control payload over 125 bytes.
    #[error("control frame payload exceeds 125 bytes")]
    ControlTooLong,
    /// A close code that may not be sent.
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// A close reason over 123 bytes, not UTF-8, or without a code.
    #[error("invalid close reason")]
    InvalidCloseReason,
    /// The heap cannot hold the frame to queue.
    #[error("out of memory for the frame")]
    OutOfMemory,
}

#[cfg(test)]
mod deflate_tests;
#[cfg(test)]
mod tests;
