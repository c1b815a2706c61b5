//! SHA-1 (FIPS 180-4), only for `Sec-WebSocket-Accept` (RFC 6455 4.2.2:
//! one digest of about 60 bytes per handshake, where SHA-1's weaknesses do
//! not matter). Written for size, not speed: one rolled round loop and a
//! 16-word schedule, about 600 bytes of code where the `sha1` crate cost
//! 3.2 KB on a Cortex-M3 (docs/footprint.md).

/// A running SHA-1 computation.
#[derive(Clone)]
pub struct Sha1 {
    h: [u32; 5],
    block: [u8; 64],
    /// Bytes buffered in `block` (0..64).
    used: usize,
    /// Bytes hashed in all (the inputs are small: a `usize` holds them).
    total: usize,
}

impl Default for Sha1 {
    fn default() -> Self {
        Sha1::new()
    }
}

impl Sha1 {
    /// A new computation.
    pub fn new() -> Sha1 {
        Sha1 {
            h: [
                0x6745_2301,
                0xEFCD_AB89,
                0x98BA_DCFE,
                0x1032_5476,
                0xC3D2_E1F0,
            ],
            block: [0; 64],
            used: 0,
            total: 0,
        }
    }

    /// Hashes `data` (a byte at a time: the inputs are a few dozen bytes).
    pub fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.push(b);
        }
    }

    /// Hashes one byte.
    pub fn push(&mut self, b: u8) {
        self.total = self.total.wrapping_add(1);
        self.block[self.used & 63] = b;
        self.used += 1;
        if self.used == 64 {
            compress(&mut self.h, &self.block);
            self.used = 0;
        }
    }

    /// The digest.
    pub fn finalize(mut self) -> [u8; 20] {
        // The length in bits, big-endian, in the last 8 bytes (the inputs
        // are small: a `usize` counts their bytes).
        let bits = (self.total as u64) << 3;
        self.push(0x80);
        while self.used != 56 {
            self.push(0);
        }
        for i in (0..8).rev() {
            self.push((bits >> (8 * i)) as u8);
        }
        let mut out = [0u8; 20];
        for (i, o) in out.iter_mut().enumerate() {
            *o = (self.h[i / 4] >> (24 - 8 * (i % 4))) as u8;
        }
        out
    }
}

fn compress(h: &mut [u32; 5], block: &[u8; 64]) {
    let mut w = [0u32; 16];
    for (w, b) in w.iter_mut().zip(block.chunks(4)) {
        *w = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    }
    let [mut a, mut b, mut c, mut d, mut e] = *h;
    for i in 0..80 {
        if i >= 16 {
            let x = w[(i + 13) & 15] ^ w[(i + 8) & 15] ^ w[(i + 2) & 15] ^ w[i & 15];
            w[i & 15] = x.rotate_left(1);
        }
        let (f, k) = match i / 20 {
            0 => ((b & c) | (!b & d), 0x5A82_7999),
            1 => (b ^ c ^ d, 0x6ED9_EBA1),
            2 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
            _ => (b ^ c ^ d, 0xCA62_C1D6),
        };
        let t = a
            .rotate_left(5)
            .wrapping_add(f)
            .wrapping_add(e)
            .wrapping_add(k)
            .wrapping_add(w[i & 15]);
        e = d;
        d = c;
        c = b.rotate_left(30);
        b = a;
        a = t;
    }
    for (h, v) in h.iter_mut().zip([a, b, c, d, e]) {
        *h = h.wrapping_add(v);
    }
}

#[cfg(test)]
mod tests {
    use super::Sha1;
    use ::sha1::Digest as _;
    use proptest::prelude::*;

    fn hex(d: [u8; 20]) -> alloc::string::String {
        d.iter().map(|b| alloc::format!("{b:02x}")).collect()
    }

    fn digest(data: &[u8]) -> [u8; 20] {
        let mut s = Sha1::new();
        s.update(data);
        s.finalize()
    }

    #[test]
    fn fips_vectors() {
        assert_eq!(hex(digest(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(digest(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(digest(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        let mut s = Sha1::new();
        for _ in 0..1000 {
            s.update(&[b'a'; 1000]);
        }
        assert_eq!(
            hex(s.finalize()),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
    }

    proptest! {
        #[test]
        fn same_as_the_sha1_crate(data in proptest::collection::vec(any::<u8>(), 0..300), split in 0usize..300) {
            let split = split.min(data.len());
            let mut s = Sha1::new();
            s.update(&data[..split]);
            s.update(&data[split..]);
            let theirs: [u8; 20] = ::sha1::Sha1::digest(&data).into();
            prop_assert_eq!(s.finalize(), theirs);
        }
    }
}
