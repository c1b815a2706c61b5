//! Incremental UTF-8 validation for text messages that arrive in pieces.

/// Validates UTF-8 fed in arbitrary pieces.
///
/// `feed` fails as soon as the bytes seen so far can no longer be the
/// beginning of valid UTF-8, even in the middle of a code point that is split
/// across pieces; `finish` fails if the text ends inside a code point.
#[derive(Clone, Copy, Debug, Default)]
pub struct Utf8Validator {
    pending: [u8; 4],
    len: u8,
}

/// True when `data` is a whole, valid UTF-8 text.
#[inline]
pub fn is_valid(data: &[u8]) -> bool {
    data.is_ascii() || core::str::from_utf8(data).is_ok()
}

/// Number of bytes of the sequence that starts with `lead` (only called on
/// lead bytes that `core::str::from_utf8` accepted as a valid prefix).
fn seq_width(lead: u8) -> usize {
    match lead {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

impl Utf8Validator {
    /// A validator at the start of a text.
    pub const fn new() -> Self {
        Utf8Validator {
            pending: [0; 4],
            len: 0,
        }
    }

    /// Forgets any partial code point.
    pub fn reset(&mut self) {
        self.len = 0;
    }

    /// True when the text so far ends on a code point boundary.
    pub fn is_complete(&self) -> bool {
        self.len == 0
    }

    /// Feeds the next piece; false as soon as the text cannot be valid.
    pub fn feed(&mut self, mut data: &[u8]) -> bool {
        // Most text is ASCII: an inlined word-at-a-time check settles it
        // without the call into `from_utf8`.
        if self.len == 0 && data.is_ascii() {
            return true;
        }
        if self.len > 0 {
            let have = self.len as usize;
            let need = seq_width(self.pending[0]) - have;
            let take = need.min(data.len());
            self.pending[have..have + take].copy_from_slice(&data[..take]);
            self.len += take as u8;
            data = &data[take..];
            match core::str::from_utf8(&self.pending[..self.len as usize]) {
                Ok(_) => self.len = 0,
                // Still a valid prefix: `data` is exhausted.
                Err(e) if e.error_len().is_none() => return true,
                Err(_) => return false,
            }
        }
        match core::str::from_utf8(data) {
            Ok(_) => true,
            Err(e) => match e.error_len() {
                Some(_) => false,
                None => {
                    let tail = &data[e.valid_up_to()..];
                    self.pending[..tail.len()].copy_from_slice(tail);
                    self.len = tail.len() as u8;
                    true
                }
            },
        }
    }

    /// Ends the text: false if it stopped inside a code point. Resets.
    pub fn finish(&mut self) -> bool {
        let ok = self.len == 0;
        self.len = 0;
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_validate(data: &[u8], cut: usize) -> bool {
        let mut v = Utf8Validator::new();
        let (a, b) = data.split_at(cut);
        v.feed(a) && v.feed(b) && v.finish()
    }

    #[test]
    fn agrees_with_std_for_every_split() {
        let samples: &[&[u8]] = &[
            "Hello-µ@ßöäüàá-UTF-8!!".as_bytes(),
            "κόσμε".as_bytes(),
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"\xf4\x90\x80\x80",
            b"\xf0\x9f\x98\x80\xf0\x9f",
            b"\xc0\xaf",
            b"\xe0\x80\xaf",
            b"\xed\xbf\xbf",
            b"\xf4\x8f\xbf\xbf",
            b"\xff",
            b"",
        ];
        for s in samples {
            let expect = core::str::from_utf8(s).is_ok();
            for cut in 0..=s.len() {
                assert_eq!(split_validate(s, cut), expect, "{s:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn fails_at_the_first_impossible_byte() {
        // U+D800 (surrogate) starts ED A0: impossible after the second byte.
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"ok \xed"));
        assert!(!v.feed(b"\xa0"));
        // 0xF5 can never start a sequence.
        let mut v = Utf8Validator::new();
        assert!(!v.feed(b"\xf5"));
        // F4 90 is above U+10FFFF.
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"\xf4"));
        assert!(!v.feed(b"\x90"));
    }

    #[test]
    fn ascii_piece_after_a_cut_code_point() {
        // The all-ASCII shortcut must not skip a pending lead byte.
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"caf\xc3"));
        assert!(!v.feed(b"e!"), "a lead byte followed by ASCII");
        // Completed first, later ASCII pieces are fine.
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"caf\xc3"));
        assert!(v.feed(b"\xa9"));
        assert!(v.feed(b"plain ascii"));
        assert!(v.finish());
    }

    #[test]
    fn byte_at_a_time() {
        let s = "aé€😀z".as_bytes();
        let mut v = Utf8Validator::new();
        for b in s {
            assert!(v.feed(core::slice::from_ref(b)));
        }
        assert!(v.finish());
        let mut v = Utf8Validator::new();
        assert!(v.feed(&s[..4]));
        assert!(!v.finish(), "ends inside a code point");
    }
}
