//! Masking (RFC 6455 section 5.3): XOR with a 4-byte key, a machine word at a time.

/// XORs `buf` in place with `key`, starting at key position `offset % 4`.
///
/// Masking is its own inverse, so this both masks and unmasks. `offset` is
/// the number of payload bytes of the same frame already processed, which
/// lets a frame be unmasked in pieces as it arrives.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    // The key rotated to start at `offset`, in registers (the slice
    // `rotate_left` is an out-of-line call, paid per frame).
    let k = (u32::from_le_bytes(key).rotate_right(8 * (offset as u32 & 3))).to_le_bytes();
    // The key twice, as a native word (built from the bytes one by one, it
    // compiled to a dozen shifts and ors, per frame).
    // Without std a byte at a time (a firmware is built for size: the
    // word loop is twice the code).
    if !cfg!(feature = "std") {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= k[i & 3];
        }
        return;
    }
    let wide = u64::from(u32::from_ne_bytes(k)) * 0x1_0000_0001;
    let mut words = buf.chunks_exact_mut(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        word.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
    }
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= k[i & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(i + offset) % 4];
        }
    }

    #[test]
    fn matches_bytewise_masking_for_every_length_and_offset() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..70 {
            for offset in 0..8 {
                let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let mut fast = data.clone();
                let mut slow = data.clone();
                apply_mask(&mut fast, key, offset);
                naive(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
                apply_mask(&mut fast, key, offset);
                assert_eq!(fast, data, "mask is self-inverse");
            }
        }
    }

    #[test]
    fn unmasking_in_pieces_equals_unmasking_at_once() {
        let key = [1, 2, 3, 4];
        let data: Vec<u8> = (0..100u8).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        let mut pieces = data.clone();
        let (a, rest) = pieces.split_at_mut(13);
        let (b, c) = rest.split_at_mut(50);
        apply_mask(a, key, 0);
        apply_mask(b, key, 13);
        apply_mask(c, key, 63);
        assert_eq!(whole, pieces);
    }
}
