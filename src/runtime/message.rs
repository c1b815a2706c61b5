//! A received (or user-built) message.

use crate::protocol::OpCode;
use alloc::vec::Vec;

/// A message, a frame, or a piece of a frame.
///
/// With the default delivery, every message is whole (`is_final`, not
/// `is_fragment`). With partial delivery it is a piece as it arrived.
#[derive(Clone, Debug)]
pub struct Message {
    opcode: Option<OpCode>,
    fin: bool,
    fragment: bool,
    /// Payload followed by one NUL byte (C callers get a C string).
    data: Vec<u8>,
    /// The payload is known to be UTF-8 (a whole text message the engine
    /// validated): [`Message::text`] need not check it again.
    utf8: bool,
}

impl PartialEq for Message {
    fn eq(&self, other: &Message) -> bool {
        (self.opcode, self.fin, self.fragment, &self.data)
            == (other.opcode, other.fin, other.fragment, &other.data)
    }
}

impl Eq for Message {}

impl Default for Message {
    fn default() -> Self {
        Message::empty()
    }
}

impl Message {
    /// An empty holder (`nopoll_msg_new`): no opcode, not final.
    pub fn empty() -> Message {
        Message {
            opcode: None,
            fin: false,
            fragment: false,
            data: alloc::vec![0],
            utf8: false,
        }
    }

    /// A message with `payload`. Returns `None` only if memory runs out.
    pub fn new(opcode: OpCode, fin: bool, fragment: bool, payload: &[u8]) -> Option<Message> {
        let mut data = Vec::new();
        data.try_reserve_exact(payload.len() + 1).ok()?;
        data.extend_from_slice(payload);
        data.push(0);
        Some(Message {
            opcode: Some(opcode),
            fin,
            fragment,
            data,
            utf8: false,
        })
    }

    /// A whole text message whose payload the protocol engine validated.
    pub(crate) fn validated_text(payload: &[u8]) -> Option<Message> {
        let mut m = Message::new(OpCode::Text, true, false, payload)?;
        m.utf8 = true;
        Some(m)
    }

    /// The frame opcode (`None` for an empty holder).
    pub fn opcode(&self) -> Option<OpCode> {
        self.opcode
    }
    /// FIN: this is the last piece of its message.
    pub fn is_final(&self) -> bool {
        self.fin
    }
    /// A piece of a message (FIN unset, or a partially read frame).
    pub fn is_fragment(&self) -> bool {
        self.fragment
    }
    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.data[..self.data.len() - 1]
    }
    /// The payload as text, if it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        if self.utf8 {
            // SAFETY: `utf8` is only set by `validated_text`, for text the
            // engine checked to be UTF-8 as a whole; the payload is never
            // mutated.
            return Some(unsafe { core::str::from_utf8_unchecked(self.payload()) });
        }
        core::str::from_utf8(self.payload()).ok()
    }
    /// The payload followed by a NUL byte.
    pub fn payload_with_nul(&self) -> &[u8] {
        &self.data
    }

    /// `self` followed by `other` as one new message with `self`'s header
    /// (`nopoll_msg_join`). `None` if memory runs out.
    pub fn join(&self, other: &Message) -> Option<Message> {
        let mut data = Vec::new();
        data.try_reserve_exact(self.payload().len() + other.payload().len() + 1)
            .ok()?;
        data.extend_from_slice(self.payload());
        data.extend_from_slice(other.payload());
        data.push(0);
        Some(Message {
            opcode: self.opcode,
            fin: other.fin,
            fragment: other.fragment,
            data,
            utf8: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_nul_terminated_and_joins() {
        let a = Message::new(OpCode::Text, false, true, b"ab").unwrap();
        let b = Message::new(OpCode::Continuation, true, false, b"cd").unwrap();
        assert_eq!(a.payload_with_nul(), b"ab\0");
        let j = a.join(&b).unwrap();
        assert_eq!(
            (j.payload(), j.opcode(), j.is_final(), j.is_fragment()),
            (&b"abcd"[..], Some(OpCode::Text), true, false)
        );
        assert_eq!(Message::empty().payload(), b"");
        assert_eq!(j.text(), Some("abcd"));
    }
}
