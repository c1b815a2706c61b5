//! A received (or user-built) message.

#[allow(unused_imports)]
use crate::prelude::*;

#[cfg(any(feature = "std", test))]
use crate::protocol::DataKind;
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
    data: Data,
    /// The payload is known to be UTF-8 (a whole text message the engine
    /// validated): [`Message::text`] need not check it again.
    utf8: bool,
}

/// Room for a payload and its NUL without an allocation.
const INLINE: usize = 48;

/// Payload bytes followed by one NUL: inline when short (no allocation for
/// the small messages most traffic is made of), else on the heap.
#[derive(Clone)]
enum Data {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Vec<u8>),
}

impl Data {
    /// The concatenation of `parts` and a NUL; `None` if memory runs out.
    fn from_parts(parts: &[&[u8]]) -> Option<Data> {
        let n: usize = parts.iter().map(|p| p.len()).sum();
        if n < INLINE {
            let mut buf = [0u8; INLINE];
            let mut at = 0;
            for p in parts {
                buf[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
            return Some(Data::Inline { len: n as u8, buf });
        }
        let mut v = Vec::new();
        // Empty: this reserves exactly `n + 1` (n + 1 > INLINE >= 8).
        v.try_reserve(n + 1).ok()?;
        for p in parts {
            v.extend_from_slice(p);
        }
        v.push(0);
        Some(Data::Heap(v))
    }

    /// [`Data::from_parts`] of one part (what received messages are),
    /// without the loop over parts.
    fn from_slice(p: &[u8]) -> Option<Data> {
        let n = p.len();
        if n < INLINE {
            let mut buf = [0u8; INLINE];
            buf[..n].copy_from_slice(p);
            return Some(Data::Inline { len: n as u8, buf });
        }
        let mut v = Vec::new();
        // Empty: this reserves exactly `n + 1` (n + 1 > INLINE >= 8).
        v.try_reserve(n + 1).ok()?;
        v.extend_from_slice(p);
        // The NUL by `resize`, which the receive buffer links anyway: no
        // `Vec::push` of bytes in a firmware echo.
        v.resize(n + 1, 0);
        Some(Data::Heap(v))
    }

    fn with_nul(&self) -> &[u8] {
        match self {
            Data::Inline { len, buf } => &buf[..usize::from(*len) + 1],
            Data::Heap(v) => v,
        }
    }
}

impl core::fmt::Debug for Data {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.with_nul().fmt(f)
    }
}

impl PartialEq for Message {
    fn eq(&self, other: &Message) -> bool {
        (self.opcode, self.fin, self.fragment, self.data.with_nul())
            == (
                other.opcode,
                other.fin,
                other.fragment,
                other.data.with_nul(),
            )
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
            data: Data::Inline {
                len: 0,
                buf: [0; INLINE],
            },
            utf8: false,
        }
    }

    /// A message with `payload`. Returns `None` only if memory runs out.
    pub fn new(opcode: OpCode, fin: bool, fragment: bool, payload: &[u8]) -> Option<Message> {
        let mut m = Message::received(opcode, fin, false, payload)?;
        m.fragment = fragment;
        Some(m)
    }

    /// A whole message as the protocol engine hands it out (text already
    /// validated as a whole). `None` only if memory runs out.
    #[cfg(test)]
    pub(crate) fn whole(kind: DataKind, payload: &[u8]) -> Option<Message> {
        let (opcode, utf8) = match kind {
            DataKind::Text => (OpCode::Text, true),
            DataKind::Binary => (OpCode::Binary, false),
        };
        Message::received(opcode, true, utf8, payload)
    }

    /// What the receive path builds, whole messages and pieces alike (one
    /// constructor, so one copy of the payload's code): a piece unless
    /// `fin`; `utf8`: a whole text message the engine validated (only
    /// then: [`Message::text`] trusts it). `None` only if memory runs out.
    pub(crate) fn received(
        opcode: OpCode,
        fin: bool,
        utf8: bool,
        payload: &[u8],
    ) -> Option<Message> {
        Some(Message::assemble(
            opcode,
            fin,
            utf8,
            Data::from_slice(payload)?,
        ))
    }

    /// A received message of `data` (see [`Message::received`]).
    #[inline(always)]
    fn assemble(opcode: OpCode, fin: bool, utf8: bool, data: Data) -> Message {
        Message {
            opcode: Some(opcode),
            fin,
            fragment: !fin,
            data,
            utf8,
        }
    }

    /// [`Message::received`] appended to `to` as it is made (not built
    /// first and moved in); false, nothing appended, if memory runs out.
    pub(crate) fn push_received(
        to: &mut Vec<super::machine::Incoming>,
        opcode: OpCode,
        fin: bool,
        utf8: bool,
        payload: &[u8],
    ) -> bool {
        let Some(data) = Data::from_slice(payload) else {
            return false;
        };
        to.push(super::machine::Incoming::Message(Message::assemble(
            opcode, fin, utf8, data,
        )));
        true
    }

    /// Makes this message [`Message::whole`] in place; false (unchanged)
    /// if memory runs out.
    /// (The std dispatch's; a build without std copies messages out when
    /// received: [`Message::received`].)
    #[cfg(any(feature = "std", test))]
    #[inline]
    pub(crate) fn set_whole(&mut self, kind: DataKind, payload: &[u8]) -> bool {
        let n = payload.len();
        if n < INLINE {
            if !matches!(self.data, Data::Inline { .. }) {
                self.data = Data::Inline {
                    len: 0,
                    buf: [0; INLINE],
                };
            }
            // Written in place (building a new `Data` makes a temporary
            // that is then copied): bytes after the NUL are never read.
            if let Data::Inline { len, buf } = &mut self.data {
                buf[..n].copy_from_slice(payload);
                buf[n] = 0;
                *len = n as u8;
            }
        } else {
            match Data::from_slice(payload) {
                Some(d) => self.data = d,
                None => return false,
            }
        }
        let (opcode, utf8) = match kind {
            DataKind::Text => (OpCode::Text, true),
            DataKind::Binary => (OpCode::Binary, false),
        };
        self.opcode = Some(opcode);
        self.fin = true;
        self.fragment = false;
        self.utf8 = utf8;
        true
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
        let d = self.data.with_nul();
        &d[..d.len() - 1]
    }
    /// The payload as text, if it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        if self.utf8 {
            // SAFETY: `utf8` is only set by `set_whole` and by `received`
            // (for a whole text message, by the receive path), for text
            // the engine checked to be UTF-8 as a whole; the payload is
            // never mutated.
            return Some(unsafe { core::str::from_utf8_unchecked(self.payload()) });
        }
        crate::protocol::utf8::to_str(self.payload())
    }
    /// The payload as text if it was validated on arrival (a whole text
    /// message): no check now, `None` for anything else.
    pub(crate) fn checked_text(&self) -> Option<&str> {
        self.utf8.then(|| self.text()).flatten()
    }
    /// The payload followed by a NUL byte.
    pub fn payload_with_nul(&self) -> &[u8] {
        self.data.with_nul()
    }

    /// `self` followed by `other` as one new message with `self`'s header
    /// (`nopoll_msg_join`). `None` if memory runs out.
    pub fn join(&self, other: &Message) -> Option<Message> {
        let data = Data::from_parts(&[self.payload(), other.payload()])?;
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
        assert_eq!(Message::empty().payload_with_nul(), b"\0");
        assert_eq!(j.text(), Some("abcd"));
    }

    #[test]
    fn short_and_long_payloads_alike() {
        for n in [0, 1, INLINE - 2, INLINE - 1, INLINE, INLINE + 1, 1000] {
            let p: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            let m = Message::new(OpCode::Binary, true, false, &p).unwrap();
            assert_eq!(m.payload(), &p[..], "{n}");
            assert_eq!(m.payload_with_nul().len(), n + 1);
            assert_eq!(m.payload_with_nul()[n], 0);
            assert_eq!(m.clone(), m);
            let j = m.join(&m).unwrap();
            assert_eq!(j.payload().len(), 2 * n);
            assert_eq!(&j.payload()[n..], &p[..]);
        }
    }

    #[test]
    fn set_whole_makes_a_whole_message_and_marks_validated_text() {
        for n in [0, 5, INLINE - 1, INLINE, 1000] {
            let p: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            for (kind, op) in [
                (DataKind::Text, OpCode::Text),
                (DataKind::Binary, OpCode::Binary),
            ] {
                // Start from a message holding something else entirely,
                // on the heap or inline and longer.
                let mut m = Message::new(OpCode::Ping, false, true, &[7; 60]).unwrap();
                assert!(m.set_whole(kind, &p));
                let mut inline = Message::new(OpCode::Ping, false, true, &[7; INLINE - 1]).unwrap();
                assert!(inline.set_whole(kind, &p));
                assert_eq!(inline, m, "{n} {kind:?} from an inline message");
                assert_eq!(inline.payload_with_nul()[n], 0);
                let expect = Message::new(op, true, false, &p).unwrap();
                assert_eq!(m, expect, "{n} {kind:?}");
                assert_eq!(Message::whole(kind, &p).unwrap(), expect);
                assert_eq!(m.payload_with_nul()[n], 0);
                assert_eq!((m.is_final(), m.is_fragment()), (true, false));
                // Only validated text skips the second check.
                assert_eq!(m.checked_text().is_some(), kind == DataKind::Text);
            }
        }
    }
}
