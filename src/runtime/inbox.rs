//! The messages a connection keeps for `get_msg` (no handler took them).

#[allow(unused_imports)]
use crate::prelude::*;

use super::message::Message;
use alloc::vec::Vec;

/// Messages kept for `get_msg`, oldest first: a vector read from `head`
/// (not a `VecDeque`, whose ring code was twice this in a firmware), and
/// the payload bytes it holds (kept, not summed at each message).
#[derive(Default)]
pub(crate) struct Inbox {
    items: Vec<Message>,
    head: usize,
    bytes: usize,
}

impl Inbox {
    pub(crate) fn is_empty(&self) -> bool {
        self.head == self.items.len()
    }

    /// Payload bytes of the messages waiting.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Queues `m` after the others.
    pub(crate) fn push(&mut self, m: Message) {
        self.bytes += m.payload().len();
        self.items.push(m);
    }

    /// Queues `m` unless the payload bytes waiting would pass `cap`
    /// (false: `m` dropped).
    pub(crate) fn push_within(&mut self, m: Message, cap: usize) -> bool {
        if self.bytes.saturating_add(m.payload().len()) > cap {
            return false;
        }
        self.push(m);
        true
    }

    /// Takes the oldest message.
    pub(crate) fn pop(&mut self) -> Option<Message> {
        let m = core::mem::take(self.items.get_mut(self.head)?);
        self.bytes -= m.payload().len();
        self.head += 1;
        // The taken slots (empty messages, no heap) go once they are half
        // of the vector: amortised O(1) a message, memory bounded by the
        // messages waiting.
        if self.head * 2 >= self.items.len() {
            self.items.drain(..self.head);
            self.head = 0;
        }
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::DataKind;

    fn msg(p: &[u8]) -> Message {
        Message::whole(DataKind::Binary, p).unwrap()
    }

    #[test]
    fn the_inbox_counts_its_payload_bytes_in_order() {
        let mut q = Inbox::default();
        q.push(msg(b"abc"));
        q.push(msg(b"de"));
        q.push(msg(b"f"));
        assert_eq!(q.bytes(), 6);
        assert_eq!(q.pop().unwrap().payload(), b"abc");
        assert_eq!(q.bytes(), 3);
        assert_eq!(q.pop().unwrap().payload(), b"de");
        assert_eq!(q.pop().unwrap().payload(), b"f");
        assert_eq!(q.bytes(), 0);
        assert!(q.pop().is_none());
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn a_push_within_a_cap_refuses_what_would_pass_it() {
        let mut q = Inbox::default();
        assert!(q.push_within(msg(b"abc"), 4));
        assert!(!q.push_within(msg(b"de"), 4));
        assert!(q.push_within(msg(b"d"), 4));
        assert!(q.push_within(msg(b"de"), usize::MAX));
        assert_eq!(q.bytes(), 6);
        assert_eq!(q.pop().unwrap().payload(), b"abc");
        assert_eq!(q.pop().unwrap().payload(), b"d");
        assert_eq!(q.pop().unwrap().payload(), b"de");
    }

    #[test]
    fn the_inbox_keeps_order_and_drops_taken_slots() {
        let mut q = Inbox::default();
        let mut next = 0u32;
        let mut want = 0u32;
        // Pushes and pops interleaved, never empty: the taken slots go
        // (the vector stays within twice the waiting messages) and the
        // order holds.
        for round in 0..200 {
            for _ in 0..(1 + round % 3) {
                q.push(msg(&next.to_be_bytes()));
                next += 1;
            }
            while next - want > 2 {
                assert_eq!(q.pop().unwrap().payload(), want.to_be_bytes());
                want += 1;
                assert!(q.items.len() <= 2 * (next - want) as usize + 1);
            }
        }
        while let Some(m) = q.pop() {
            assert_eq!(m.payload(), want.to_be_bytes());
            want += 1;
        }
        assert_eq!((want, q.bytes()), (next, 0));
        assert!(q.is_empty() && q.items.is_empty());
    }
}
