//! Close frame rules (RFC 6455 sections 5.5.1 and 7.4).

use super::ProtocolError;

/// Status reported when a close frame carried no status code.
pub const STATUS_NO_STATUS: u16 = 1005;
/// Status reported when the connection ended without a close frame.
pub const STATUS_ABNORMAL: u16 = 1006;
/// Normal closure.
pub const STATUS_NORMAL: u16 = 1000;
/// Protocol error.
pub const STATUS_PROTOCOL_ERROR: u16 = 1002;
/// Data inconsistent with the message type (invalid UTF-8 in text).
pub const STATUS_INVALID_DATA: u16 = 1007;
/// Message or frame too big.
pub const STATUS_TOO_BIG: u16 = 1009;

/// True for a status code that may appear in a close frame on the wire:
/// 1000–1003, 1007–1011 and 3000–4999. 1005, 1006 and 1015 are reserved for
/// local reporting and are never sent nor accepted.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// True for a status code an application may send: 1000–4999 except 1005,
/// 1006 and 1015, which RFC 6455 (section 7.4.1) forbids in a close frame.
/// Wider than [`is_valid_close_code`], which is what a received close frame
/// must carry: nopoll sends whatever code the application gives (its
/// listener closes with 1048), and so do we, leaving the peer to judge.
pub fn is_sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=4999) && !matches!(code, 1005 | 1006 | 1015)
}

/// Room for a reason in a close frame: 125 bytes of payload, 2 of them the code.
pub const MAX_REASON_LEN: usize = 123;

/// The longest start of `reason` a close frame can carry: at most
/// [`MAX_REASON_LEN`] bytes, cut before the first byte that is not part of
/// valid UTF-8 (and never inside a character). nopoll sends the reason it
/// is given as it is; a longer or invalid one would make the peer fail the
/// connection instead of reading the code.
pub fn reason_prefix(reason: &[u8]) -> &[u8] {
    let head = &reason[..reason.len().min(MAX_REASON_LEN)];
    &head[..super::utf8::valid_prefix(head)]
}

/// A parsed close frame payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// Status code, `None` for an empty close frame.
    pub code: Option<u16>,
    /// Reason text (empty when absent).
    pub reason: &'a str,
}

impl<'a> CloseFrame<'a> {
    /// Parses and validates a close payload: empty, or a valid code followed
    /// by a UTF-8 reason.
    pub fn parse(payload: &'a [u8]) -> Result<CloseFrame<'a>, ProtocolError> {
        match payload.len() {
            0 => Ok(CloseFrame {
                code: None,
                reason: "",
            }),
            1 => Err(ProtocolError::CloseLength),
            _ => {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                if !is_valid_close_code(code) {
                    return Err(ProtocolError::InvalidCloseCode(code));
                }
                let reason =
                    super::utf8::to_str(&payload[2..]).ok_or(ProtocolError::InvalidCloseReason)?;
                Ok(CloseFrame {
                    code: Some(code),
                    reason,
                })
            }
        }
    }

    /// The status as nopoll reports it: the code, or 1005 when absent.
    pub fn status(&self) -> u16 {
        self.code.unwrap_or(STATUS_NO_STATUS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_close_code() {
        for code in 0..=u16::MAX {
            let expect = (1000..=1003).contains(&code)
                || (1007..=1011).contains(&code)
                || (3000..=4999).contains(&code);
            assert_eq!(is_valid_close_code(code), expect, "code {code}");
            let p = code.to_be_bytes();
            let parsed = CloseFrame::parse(&p);
            if expect {
                assert_eq!(
                    parsed,
                    Ok(CloseFrame {
                        code: Some(code),
                        reason: ""
                    })
                );
            } else {
                assert_eq!(parsed, Err(ProtocolError::InvalidCloseCode(code)));
            }
        }
        for never in [1004, 1005, 1006, 1012, 1015, 999, 2999, 5000] {
            assert!(!is_valid_close_code(never));
        }
    }

    #[test]
    fn sendable_close_codes() {
        for code in 0..=u16::MAX {
            let expect = (1000..=4999).contains(&code) && ![1005, 1006, 1015].contains(&code);
            assert_eq!(is_sendable_close_code(code), expect, "code {code}");
            // Everything a peer may send, we may send.
            assert!(!is_valid_close_code(code) || is_sendable_close_code(code));
        }
        for sendable in [1004, 1012, 1048, 2000, 2999] {
            assert!(is_sendable_close_code(sendable) && !is_valid_close_code(sendable));
        }
    }

    #[test]
    fn reason_prefixes() {
        assert_eq!(reason_prefix(b""), b"");
        assert_eq!(reason_prefix(b"bye"), b"bye");
        assert_eq!(reason_prefix(&[b'a'; 123]), &[b'a'; 123][..]);
        assert_eq!(reason_prefix(&[b'a'; 200]), &[b'a'; 123][..]);
        // Not UTF-8: up to the first bad byte.
        assert_eq!(reason_prefix(b"ok\xffmore"), b"ok");
        // A character cut by the limit is left out whole.
        let mut long = [b'a'; 122].to_vec();
        long.extend_from_slice("é".as_bytes());
        assert_eq!(reason_prefix(&long), &[b'a'; 122][..]);
        // Whatever comes out is a valid close payload after a code.
        for r in [&long[..], b"ok\xff", &[0xc3; 130][..]] {
            let mut p = 1000u16.to_be_bytes().to_vec();
            p.extend_from_slice(reason_prefix(r));
            assert!(CloseFrame::parse(&p).is_ok());
        }
    }

    #[test]
    fn payload_shapes() {
        assert_eq!(CloseFrame::parse(&[]).unwrap().status(), 1005);
        assert_eq!(CloseFrame::parse(&[3]), Err(ProtocolError::CloseLength));
        let ok = CloseFrame::parse(b"\x03\xe8bye \xc3\xa9").unwrap();
        assert_eq!((ok.code, ok.reason), (Some(1000), "bye é"));
        assert_eq!(
            CloseFrame::parse(b"\x03\xe8\xff"),
            Err(ProtocolError::InvalidCloseReason)
        );
        assert_eq!(ProtocolError::InvalidCloseReason.close_code(), 1007);
        assert_eq!(ProtocolError::InvalidCloseCode(5).close_code(), 1002);
    }
}
