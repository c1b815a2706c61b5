//! Incremental UTF-8 validation for text messages that arrive in pieces.

/// Validates UTF-8 fed in arbitrary pieces.
///
/// `feed` fails as soon as the bytes seen so far can no longer be the
/// beginning of valid UTF-8, even in the middle of a code point that is split
/// across pieces; `finish` fails if the text ends inside a code point.
///
/// The library's one UTF-8 validator (RFC 3629): a byte-at-a-time state
/// machine of three bytes, a few hundred bytes of code less than calling
/// `core::str::from_utf8` (which a firmware then does not link) and as
/// exact (tested against it below).
#[derive(Clone, Copy, Debug)]
pub struct Utf8Validator {
    /// Continuation bytes still expected for the current code point.
    need: u8,
    /// Range of the next continuation byte (narrower than 80..=BF right
    /// after some lead bytes: no overlong forms, surrogates, or code
    /// points above U+10FFFF).
    lo: u8,
    hi: u8,
}

impl Default for Utf8Validator {
    fn default() -> Self {
        Utf8Validator::new()
    }
}

/// True when `data` is a whole, valid UTF-8 text.
#[inline]
pub fn is_valid(data: &[u8]) -> bool {
    // The word-at-a-time ASCII check only with std (speed; the state
    // machine takes ASCII too, and a firmware links one copy less).
    (cfg!(feature = "std") && data.is_ascii()) || {
        let mut v = Utf8Validator::new();
        v.scan(data).is_ok() && v.need == 0
    }
}

/// `data` as text if it is valid UTF-8 (what `core::str::from_utf8(data).ok()`
/// gives), checked by [`is_valid`]: the conversion itself is
/// [`crate::utf8_str`], outside this module, which has no `unsafe`.
pub fn to_str(data: &[u8]) -> Option<&str> {
    crate::utf8_str(data)
}

/// Length of the longest start of `data` that is valid UTF-8 ending on a
/// code point boundary (`Utf8Error::valid_up_to`, or all of it).
pub fn valid_prefix(data: &[u8]) -> usize {
    match Utf8Validator::new().scan(data) {
        Ok(end) | Err(end) => end,
    }
}

impl Utf8Validator {
    /// A validator at the start of a text.
    pub const fn new() -> Self {
        Utf8Validator {
            need: 0,
            lo: 0x80,
            hi: 0xbf,
        }
    }

    /// Forgets any partial code point.
    pub fn reset(&mut self) {
        *self = Utf8Validator::new();
    }

    /// True when the text so far ends on a code point boundary.
    pub fn is_complete(&self) -> bool {
        self.need == 0
    }

    /// Runs the state machine over `data`: `Ok` if every byte can be part
    /// of valid UTF-8, `Err` at the first that cannot; either way the end
    /// of the last whole code point in `data`.
    fn scan(&mut self, data: &[u8]) -> Result<usize, usize> {
        let mut end = 0;
        for (i, &b) in data.iter().enumerate() {
            if self.need == 0 {
                if b < 0x80 {
                    end = i + 1;
                    continue;
                }
                let (need, lo, hi) = match b {
                    0xc2..=0xdf => (1, 0x80, 0xbf),
                    0xe0 => (2, 0xa0, 0xbf),
                    0xed => (2, 0x80, 0x9f),
                    0xe1..=0xef => (2, 0x80, 0xbf),
                    0xf0 => (3, 0x90, 0xbf),
                    0xf1..=0xf3 => (3, 0x80, 0xbf),
                    0xf4 => (3, 0x80, 0x8f),
                    _ => return Err(end),
                };
                *self = Utf8Validator { need, lo, hi };
            } else {
                if b < self.lo || b > self.hi {
                    return Err(end);
                }
                *self = Utf8Validator {
                    need: self.need - 1,
                    ..Utf8Validator::new()
                };
                if self.need == 0 {
                    end = i + 1;
                }
            }
        }
        Ok(end)
    }

    /// Feeds the next piece; false as soon as the text cannot be valid.
    pub fn feed(&mut self, data: &[u8]) -> bool {
        // Most text is ASCII: an inlined word-at-a-time check settles it.
        // (With std only, as in `is_valid`.)
        if cfg!(feature = "std") && self.need == 0 && data.is_ascii() {
            return true;
        }
        self.scan(data).is_ok()
    }

    /// Ends the text: false if it stopped inside a code point. Resets.
    pub fn finish(&mut self) -> bool {
        let ok = self.need == 0;
        self.reset();
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

    /// Every sequence of up to three bytes drawn from the bytes where UTF-8
    /// rules change, and every split of it, against `core::str::from_utf8`.
    #[test]
    fn agrees_with_core_on_every_edge() {
        let edges: &[u8] = &[
            0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0,
            0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff,
        ];
        let mut seqs: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..4 {
            let next: Vec<Vec<u8>> = seqs
                .iter()
                .filter(|s| s.len() < 4)
                .flat_map(|s| {
                    edges.iter().map(move |&b| {
                        let mut t = s.clone();
                        t.push(b);
                        t
                    })
                })
                .collect();
            seqs.extend(next);
            seqs.sort();
            seqs.dedup();
        }
        for s in &seqs {
            let core = core::str::from_utf8(s);
            assert_eq!(is_valid(s), core.is_ok(), "{s:x?}");
            assert_eq!(to_str(s), core.ok(), "{s:x?}");
            let up_to = core.map_or_else(|e| e.valid_up_to(), |_| s.len());
            assert_eq!(valid_prefix(s), up_to, "{s:x?}");
            for cut in 0..=s.len() {
                assert_eq!(split_validate(s, cut), core.is_ok(), "{s:x?} cut at {cut}");
            }
            // A streaming validator fails exactly when no continuation
            // could make the bytes valid: when core reports an error with a
            // length (not just a truncated end).
            let mut v = Utf8Validator::new();
            let impossible = core.is_err_and(|e| e.error_len().is_some());
            assert_eq!(!v.feed(s), impossible, "{s:x?}");
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
