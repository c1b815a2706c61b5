//! The frame header codec (RFC 6455 section 5.2), used by both roles.

use super::mask::apply_mask;
use super::{ProtocolError, Role};
use alloc::vec::Vec;

/// Largest possible frame header: 2 + 8 (64-bit length) + 4 (mask key).
pub const MAX_HEADER_LEN: usize = 14;

/// Largest payload of a control frame.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Frame opcodes defined by RFC 6455.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    /// Continuation of a fragmented message (0x0).
    Continuation = 0,
    /// First frame of a text message (0x1).
    Text = 1,
    /// First frame of a binary message (0x2).
    Binary = 2,
    /// Close (0x8).
    Close = 8,
    /// Ping (0x9).
    Ping = 9,
    /// Pong (0xA).
    Pong = 10,
}

impl OpCode {
    /// The opcode for a 4-bit value, or `None` for a reserved one.
    pub fn from_u8(v: u8) -> Option<OpCode> {
        Some(match v {
            0 => OpCode::Continuation,
            1 => OpCode::Text,
            2 => OpCode::Binary,
            8 => OpCode::Close,
            9 => OpCode::Ping,
            10 => OpCode::Pong,
            _ => return None,
        })
    }

    /// Close, ping and pong.
    pub fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// A decoded frame header. `opcode` is the raw 4-bit value so that the
/// low-level API can also describe (and send) reserved opcodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN bit.
    pub fin: bool,
    /// RSV1..RSV3 as the low three bits.
    pub rsv: u8,
    /// Raw opcode (0..=15).
    pub opcode: u8,
    /// Masking key, when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// Payload length.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Decodes a header from the start of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` holds only part of a header, otherwise
    /// the header and its length in bytes. The only structural error is a
    /// 64-bit length with its most significant bit set; the role-dependent
    /// rules are checked by [`FrameHeader::validate`].
    pub fn decode(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let b0 = buf[0];
        let b1 = buf[1];
        let masked = b1 & 0x80 != 0;
        let (payload_len, mut pos) = match b1 & 0x7f {
            126 => {
                if buf.len() < 4 {
                    return Ok(None);
                }
                (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4)
            }
            127 => {
                if buf.len() < 10 {
                    return Ok(None);
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[2..10]);
                let len = u64::from_be_bytes(b);
                if len & (1 << 63) != 0 {
                    return Err(ProtocolError::LengthOverflow);
                }
                (len, 10)
            }
            n => (n as u64, 2),
        };
        let mask = if masked {
            if buf.len() < pos + 4 {
                return Ok(None);
            }
            let k = [buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]];
            pos += 4;
            Some(k)
        } else {
            None
        };
        Ok(Some((
            FrameHeader {
                fin: b0 & 0x80 != 0,
                rsv: (b0 >> 4) & 0x7,
                opcode: b0 & 0x0f,
                mask,
                payload_len,
            },
            pos,
        )))
    }

    /// Checks the rules that do not depend on earlier frames: reserved bits
    /// (none are negotiated, so `allowed_rsv` is normally 0), reserved
    /// opcodes, control frame shape, and masking direction for a frame
    /// *received* by an endpoint of role `receiver`.
    pub fn validate(&self, receiver: Role, allowed_rsv: u8) -> Result<OpCode, ProtocolError> {
        if self.rsv & !allowed_rsv != 0 {
            return Err(ProtocolError::ReservedBits);
        }
        let op = OpCode::from_u8(self.opcode).ok_or(ProtocolError::ReservedOpcode(self.opcode))?;
        if op.is_control() {
            if !self.fin {
                return Err(ProtocolError::FragmentedControl);
            }
            if self.payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlTooLong(super::err_len(
                    self.payload_len,
                )));
            }
        }
        match (receiver, self.mask.is_some()) {
            (Role::Server, false) => Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => Err(ProtocolError::MaskedFrame),
            _ => Ok(op),
        }
    }

    /// Encodes the header into `out`, returning the number of bytes used.
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = (u8::from(self.fin) << 7) | ((self.rsv & 7) << 4) | (self.opcode & 0x0f);
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut pos = if self.payload_len < 126 {
            out[1] = mask_bit | self.payload_len as u8;
            2
        } else if self.payload_len <= u16::MAX as u64 {
            out[1] = mask_bit | 126;
            out[2..4].copy_from_slice(&(self.payload_len as u16).to_be_bytes());
            4
        } else {
            out[1] = mask_bit | 127;
            out[2..10].copy_from_slice(&self.payload_len.to_be_bytes());
            10
        };
        if let Some(k) = self.mask {
            out[pos..pos + 4].copy_from_slice(&k);
            pos += 4;
        }
        pos
    }
}

/// Appends one complete frame (header and payload, masked when `mask` is
/// given) to `out`.
pub fn write_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    if cfg!(feature = "std") && mask.is_none() && payload.len() < 126 {
        // A server's small frame: the two header bytes directly (speed
        // only: builds without std, built for size, take the general path).
        out.reserve(2 + payload.len());
        out.extend_from_slice(&[(u8::from(fin) << 7) | (opcode & 0x0f), payload.len() as u8]);
        out.extend_from_slice(payload);
        return;
    }
    let header = FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    };
    let mut hbuf = [0u8; MAX_HEADER_LEN];
    let hlen = header.encode(&mut hbuf);
    out.reserve(hlen + payload.len());
    out.extend_from_slice(&hbuf[..hlen]);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(k) = mask {
        apply_mask(&mut out[start..], k, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(fin: bool, op: u8, mask: Option<[u8; 4]>, len: u64) -> FrameHeader {
        FrameHeader {
            fin,
            rsv: 0,
            opcode: op,
            mask,
            payload_len: len,
        }
    }

    #[test]
    fn length_forms_round_trip() {
        for (len, hlen) in [
            (0u64, 2usize),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
            (1 << 40, 10),
            (i64::MAX as u64, 10),
        ] {
            for mask in [None, Some([9, 8, 7, 6])] {
                let h = hdr(true, 2, mask, len);
                let mut buf = [0u8; MAX_HEADER_LEN];
                let n = h.encode(&mut buf);
                let expect = hlen + if mask.is_some() { 4 } else { 0 };
                assert_eq!(n, expect, "length {len}");
                assert_eq!(FrameHeader::decode(&buf[..n]).unwrap(), Some((h, n)));
                for short in 0..n {
                    assert_eq!(FrameHeader::decode(&buf[..short]).unwrap(), None);
                }
            }
        }
    }

    #[test]
    fn top_bit_of_64_bit_length_is_an_error() {
        let buf = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            FrameHeader::decode(&buf),
            Err(ProtocolError::LengthOverflow)
        );
    }

    #[test]
    fn rfc_5_7_header_examples() {
        // Single-frame unmasked text "Hello".
        let (h, n) = FrameHeader::decode(&[0x81, 0x05]).unwrap().unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.mask, h.payload_len, n),
            (true, 1, None, 5, 2)
        );
        // 256 bytes binary in a single unmasked frame.
        let (h, n) = FrameHeader::decode(&[0x82, 0x7e, 0x01, 0x00])
            .unwrap()
            .unwrap();
        assert_eq!((h.opcode, h.payload_len, n), (2, 256, 4));
        // 64 KiB binary in a single unmasked frame.
        let b = [0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0];
        let (h, n) = FrameHeader::decode(&b).unwrap().unwrap();
        assert_eq!((h.payload_len, n), (65536, 10));
    }

    #[test]
    fn validation_rules_table() {
        use ProtocolError::*;
        let m = Some([1, 2, 3, 4]);
        let cases: &[(FrameHeader, Role, Result<OpCode, ProtocolError>)] = &[
            (hdr(true, 1, m, 5), Role::Server, Ok(OpCode::Text)),
            (hdr(true, 1, None, 5), Role::Server, Err(UnmaskedFrame)),
            (hdr(true, 1, m, 5), Role::Client, Err(MaskedFrame)),
            (hdr(true, 1, None, 5), Role::Client, Ok(OpCode::Text)),
            (hdr(true, 3, None, 0), Role::Client, Err(ReservedOpcode(3))),
            (hdr(true, 7, None, 0), Role::Client, Err(ReservedOpcode(7))),
            (
                hdr(true, 11, None, 0),
                Role::Client,
                Err(ReservedOpcode(11)),
            ),
            (
                hdr(true, 15, None, 0),
                Role::Client,
                Err(ReservedOpcode(15)),
            ),
            (hdr(false, 9, None, 0), Role::Client, Err(FragmentedControl)),
            (
                hdr(true, 9, None, 126),
                Role::Client,
                Err(ControlTooLong(126)),
            ),
            (hdr(true, 8, None, 125), Role::Client, Ok(OpCode::Close)),
            (
                hdr(false, 0, None, 1 << 20),
                Role::Client,
                Ok(OpCode::Continuation),
            ),
        ];
        for (h, role, expect) in cases {
            assert_eq!(&h.validate(*role, 0), expect, "{h:?} as {role:?}");
        }
        for rsv in 1..8 {
            let h = FrameHeader {
                rsv,
                ..hdr(true, 1, None, 0)
            };
            assert_eq!(h.validate(Role::Client, 0), Err(ReservedBits));
            assert_eq!(h.validate(Role::Client, 7), Ok(OpCode::Text));
        }
    }

    #[test]
    fn write_frame_masks_payload() {
        let mut out = Vec::new();
        write_frame(&mut out, true, 1, Some([0x37, 0xfa, 0x21, 0x3d]), b"Hello");
        assert_eq!(
            out,
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
    }
}
