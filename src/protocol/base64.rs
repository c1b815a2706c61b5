//! Base64 (RFC 4648, standard alphabet, padded), strict like the `base64`
//! crate's `STANDARD` engine it replaces: padding required, no whitespace,
//! non-zero trailing bits rejected. A few hundred bytes of code where the
//! crate cost 3.2 KB on a Cortex-M3 (docs/footprint.md).

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Length of the padded encoding of `n` bytes (None on overflow).
pub fn encoded_len(n: usize) -> Option<usize> {
    n.div_ceil(3).checked_mul(4)
}

/// Encodes `input` into the start of `out`; the bytes written, or None if
/// `out` is too small.
pub fn encode_slice(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let n = encoded_len(input.len())?;
    let out = out.get_mut(..n)?;
    // Six bits out whenever six are in the accumulator (one loop, no
    // per-chunk padding cases): what is left is the last character's
    // high bits, then the padding.
    let (mut acc, mut bits, mut o) = (0u32, 0u32, 0usize);
    for &b in input {
        acc = acc << 8 | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out[o] = ALPHABET[(acc >> bits & 63) as usize];
            o += 1;
        }
    }
    if bits > 0 {
        out[o] = ALPHABET[(acc << (6 - bits) & 63) as usize];
        o += 1;
    }
    out[o..].fill(b'=');
    Some(n)
}

fn value(c: u8) -> Option<u32> {
    // Its place in the encoder's alphabet (a loop smaller than the
    // ranges; only handshake keys, 22 characters, are looked up).
    ALPHABET.iter().position(|&a| a == c).map(|i| i as u32)
}

/// Decodes `input` into the start of `out`; the bytes written, or None if
/// the input is not canonical padded base64 or `out` is too small.
pub fn decode_slice(input: &[u8], out: &mut [u8]) -> Option<usize> {
    if !input.len().is_multiple_of(4) {
        return None;
    }
    let quads = input.len() / 4;
    let mut n = 0;
    for (q, quad) in input.chunks(4).enumerate() {
        // '=' only at the end of the last quad, at most two.
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && q + 1 != quads) {
            return None;
        }
        let mut v = 0u32;
        for &c in &quad[..4 - pad] {
            v = v << 6 | value(c)?;
        }
        v <<= 6 * pad as u32;
        let bytes = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        let keep = 3 - pad;
        // The bits the padding drops must be zero (canonical encoding).
        if bytes[keep..].iter().any(|&b| b != 0) {
            return None;
        }
        out.get_mut(n..n + keep)?.copy_from_slice(&bytes[..keep]);
        n += keep;
    }
    Some(n)
}

/// Whether `input` is the canonical padded encoding of exactly 16 bytes
/// (a `Sec-WebSocket-Key`, RFC 6455 4.2.1): what `decode_slice` returning
/// `Some(16)` means, checked without decoding (a server never needs the
/// key's bytes, so a firmware server links no decoder).
pub fn encodes_16_bytes(input: &[u8]) -> bool {
    match input {
        [body @ .., last, b'=', b'='] if body.len() == 21 => {
            body.iter().all(|&c| value(c).is_some()) && value(*last).is_some_and(|v| v & 15 == 0)
        }
        _ => false,
    }
}

/// [`decode_slice`] into a new vector.
pub fn decode(input: &[u8]) -> Option<alloc::vec::Vec<u8>> {
    let mut out = alloc::vec![0u8; input.len() / 4 * 3];
    let n = decode_slice(input, &mut out)?;
    out.truncate(n);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::base64::engine::general_purpose::STANDARD;
    use ::base64::Engine as _;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn enc(input: &[u8]) -> Vec<u8> {
        let mut out = alloc::vec![0u8; encoded_len(input.len()).unwrap()];
        assert_eq!(encode_slice(input, &mut out), Some(out.len()));
        out
    }

    #[test]
    fn rfc4648_vectors() {
        let v: [(&str, &str); 7] = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, coded) in v {
            assert_eq!(enc(plain.as_bytes()), coded.as_bytes(), "{plain}");
            assert_eq!(
                decode(coded.as_bytes()).unwrap(),
                plain.as_bytes(),
                "{coded}"
            );
        }
    }

    #[test]
    fn rejects_what_the_strict_engine_rejects() {
        for bad in [
            "Zg", "Zg=", "Zh==", "Zm9=", "====", "Z===", "Zg==Zg==", "Zm 9v", "Zm9v\n", "Zm-v",
        ] {
            assert_eq!(decode(bad.as_bytes()), None, "{bad:?}");
        }
        for bad in [
            "dGhlIHNhbXBsZSBub25jZR==", // trailing bits set
            "dGhlIHNhbXBsZSBub25jZQ=",
            "dGhlIHNhbXBsZSBub25jZQ===",
            "dGhlIHNhbXBsZSBub25j=Q==",
            "dGhlIHNhbXBsZSBub25jZ-==",
            "dGhlIHNhbXBsZSBub25jZA",
            "",
        ] {
            assert!(!encodes_16_bytes(bad.as_bytes()), "{bad:?}");
        }
        assert!(encodes_16_bytes(b"dGhlIHNhbXBsZSBub25jZQ=="));
        let mut small = [0u8; 2];
        assert_eq!(decode_slice(b"Zm9v", &mut small), None);
        assert_eq!(encode_slice(b"foo", &mut small), None);
    }

    proptest! {
        #[test]
        fn same_as_the_base64_crate(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let ours = enc(&bytes);
            let theirs = STANDARD.encode(&bytes);
            prop_assert_eq!(&ours, theirs.as_bytes());
            prop_assert_eq!(decode(&ours), Some(bytes));
        }

        #[test]
        fn key_check_agrees_with_decoding(key in "[A-Za-z0-9+/=]{20,26}") {
            let mut raw = [0u8; 20];
            let decodes_16 = decode_slice(key.as_bytes(), &mut raw) == Some(16);
            prop_assert_eq!(encodes_16_bytes(key.as_bytes()), decodes_16);
        }

        #[test]
        fn key_check_accepts_every_16_bytes(bytes in proptest::array::uniform16(any::<u8>())) {
            prop_assert!(encodes_16_bytes(&enc(&bytes)));
        }

        #[test]
        fn decodes_like_the_base64_crate(s in "[A-Za-z0-9+/=]{0,16}") {
            prop_assert_eq!(decode(s.as_bytes()), STANDARD.decode(s.as_bytes()).ok());
        }
    }
}
