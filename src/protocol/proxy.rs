//! The PROXY protocol header (HAProxy's "The PROXY protocol", versions 1
//! and 2) that a load balancer sends before the client's bytes, telling
//! the address of the client it is relaying.
//!
//! Sans-IO: [`parse`] looks at the bytes received so far and says whether
//! they hold a whole header (and how long it is), need more, or are not a
//! valid header. The caller keeps the bytes until then; nothing here
//! allocates. The longest accepted header is [`MAX_HEADER`] bytes.

#[allow(unused_imports)]
use crate::prelude::*;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Version 2's 12-byte signature.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Version 1's longest line (the spec's 107 bytes, CRLF included).
pub const V1_MAX: usize = 107;
/// The longest header accepted: a v2 header of 16 bytes plus up to 1 KiB
/// of addresses and TLVs (the spec allows 64 KiB; no balancer we know of
/// sends more than a few hundred bytes).
pub const MAX_HEADER: usize = 16 + 1024;

/// What a complete header said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyHeader {
    /// The relayed connection's addresses: the client's (`source`) and
    /// the one it connected to on the balancer (`destination`).
    Proxied {
        /// The client.
        source: (IpAddr, u16),
        /// Where the client connected to.
        destination: (IpAddr, u16),
    },
    /// No address to use: v1 `UNKNOWN`, v2 `LOCAL` (the balancer's own
    /// health check), or a v2 family other than TCP over IPv4/IPv6. The
    /// connection's own peer address stands.
    Local,
}

/// Why the bytes are not a PROXY header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// Neither signature.
    #[error("not a PROXY protocol header")]
    NotProxy,
    /// v1 line without CRLF within 107 bytes, or v2 length over the limit.
    #[error("PROXY header too long")]
    TooLong,
    /// A v1 line that does not follow the grammar.
    #[error("malformed PROXY v1 line")]
    BadV1,
    /// A v2 version or command nibble other than 2 / LOCAL or PROXY.
    #[error("unsupported PROXY v2 version or command")]
    BadV2Command,
    /// A v2 address block shorter than its family needs.
    #[error("PROXY v2 address block too short")]
    BadV2Length,
}

/// Parses the header at the start of `buf`: `Ok(Some((len, header)))` when
/// the first `len` bytes are a whole header, `Ok(None)` when `buf` is a
/// valid beginning of one (read more), an error otherwise. Bytes after the
/// header are not looked at.
pub fn parse(buf: &[u8]) -> Result<Option<(usize, ProxyHeader)>, ProxyError> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] == V2_SIGNATURE[..n] {
        if n < V2_SIGNATURE.len() {
            return Ok(None);
        }
        return parse_v2(buf);
    }
    let n = buf.len().min(6);
    if buf[..n] == b"PROXY "[..n] {
        if n < 6 {
            return Ok(None);
        }
        return parse_v1(buf);
    }
    Err(ProxyError::NotProxy)
}

fn parse_v1(buf: &[u8]) -> Result<Option<(usize, ProxyHeader)>, ProxyError> {
    let window = &buf[..buf.len().min(V1_MAX)];
    // The line ends at the first CR; a LF before it is malformed.
    let Some(cr) = window.iter().position(|&b| b == b'\r' || b == b'\n') else {
        return if buf.len() >= V1_MAX {
            Err(ProxyError::TooLong)
        } else {
            Ok(None)
        };
    };
    if window[cr] == b'\n' {
        return Err(ProxyError::BadV1);
    }
    match window.get(cr + 1) {
        None if buf.len() < V1_MAX => return Ok(None),
        Some(b'\n') => {}
        _ => return Err(ProxyError::BadV1),
    }
    let line = super::utf8::to_str(&buf[6..cr]).ok_or(ProxyError::BadV1)?;
    let mut parts = line.split(' ');
    let proto = parts.next().ok_or(ProxyError::BadV1)?;
    if proto == "UNKNOWN" {
        // Anything may follow; the receiver ignores it.
        return Ok(Some((cr + 2, ProxyHeader::Local)));
    }
    let v6 = match proto {
        "TCP4" => false,
        "TCP6" => true,
        _ => return Err(ProxyError::BadV1),
    };
    let mut next = || parts.next().ok_or(ProxyError::BadV1);
    let src = parse_ip(next()?, v6)?;
    let dst = parse_ip(next()?, v6)?;
    let sport = parse_port(next()?)?;
    let dport = parse_port(next()?)?;
    if parts.next().is_some() {
        return Err(ProxyError::BadV1);
    }
    Ok(Some((
        cr + 2,
        ProxyHeader::Proxied {
            source: (src, sport),
            destination: (dst, dport),
        },
    )))
}

fn parse_ip(s: &str, v6: bool) -> Result<IpAddr, ProxyError> {
    if v6 {
        s.parse::<Ipv6Addr>().map(IpAddr::V6)
    } else {
        s.parse::<Ipv4Addr>().map(IpAddr::V4)
    }
    .map_err(|_| ProxyError::BadV1)
}

/// A decimal port without sign or leading zeros (the spec's grammar).
fn parse_port(s: &str) -> Result<u16, ProxyError> {
    let ok = !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    if !ok {
        return Err(ProxyError::BadV1);
    }
    s.parse().map_err(|_| ProxyError::BadV1)
}

fn parse_v2(buf: &[u8]) -> Result<Option<(usize, ProxyHeader)>, ProxyError> {
    if buf.len() >= 13 {
        let ver_cmd = buf[12];
        if ver_cmd >> 4 != 2 || ver_cmd & 0x0f > 1 {
            return Err(ProxyError::BadV2Command);
        }
    }
    if buf.len() < 16 {
        return Ok(None);
    }
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let total = 16 + len;
    if total > MAX_HEADER {
        return Err(ProxyError::TooLong);
    }
    if buf.len() < total {
        return Ok(None);
    }
    let local = buf[12] & 0x0f == 0;
    let body = &buf[16..total];
    // The family is checked for LOCAL too: its address block is ignored.
    let header = match buf[13] {
        _ if local => ProxyHeader::Local,
        // TCP over IPv4
        0x11 => {
            let a = body.get(..12).ok_or(ProxyError::BadV2Length)?;
            let ip = |o: usize| IpAddr::V4(Ipv4Addr::new(a[o], a[o + 1], a[o + 2], a[o + 3]));
            ProxyHeader::Proxied {
                source: (ip(0), u16::from_be_bytes([a[8], a[9]])),
                destination: (ip(4), u16::from_be_bytes([a[10], a[11]])),
            }
        }
        // TCP over IPv6
        0x21 => {
            let a = body.get(..36).ok_or(ProxyError::BadV2Length)?;
            let ip = |o: usize| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&a[o..o + 16]);
                IpAddr::V6(Ipv6Addr::from(b))
            };
            ProxyHeader::Proxied {
                source: (ip(0), u16::from_be_bytes([a[32], a[33]])),
                destination: (ip(16), u16::from_be_bytes([a[34], a[35]])),
            }
        }
        // UNSPEC, UDP, UNIX: the spec says to accept and use the real
        // connection's addresses.
        _ => ProxyHeader::Local,
    };
    Ok(Some((total, header)))
}

/// An address range (`10.0.0.0/8`, `::1/128`, or a bare address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr` or `addr/prefix`; None if malformed.
    pub fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.len() <= 3 => {
                p.parse::<u8>().ok().filter(|&p| p <= max)?
            }
            Some(_) => return None,
        };
        Some(Cidr { addr, prefix })
    }

    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as
    /// its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The client's address in an `X-Forwarded-For` value: the rightmost
/// entry that `trusted` does not vouch for (entries to its right were
/// added by trusted proxies), or the leftmost if all are trusted. None if
/// an entry that matters is not an address.
pub fn forwarded_client(value: &str, trusted: impl Fn(IpAddr) -> bool) -> Option<IpAddr> {
    let mut last = None;
    for entry in value.rsplit(',') {
        let ip = parse_forwarded_addr(entry.trim())?;
        if !trusted(ip) {
            return Some(ip);
        }
        last = Some(ip);
    }
    last
}

/// An address as proxies write it: bare, `[v6]`, `[v6]:port`, `v4:port`.
pub fn parse_forwarded_addr(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    let (a, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    a.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn v2(cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(cmd);
        h.push(fam);
        h.extend_from_slice(&(body.len() as u16).to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    #[test]
    fn v1_tcp4() {
        let b = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\n";
        let (n, h) = parse(b).unwrap().unwrap();
        assert_eq!(&b[n..n + 3], b"GET");
        assert_eq!(
            h,
            ProxyHeader::Proxied {
                source: (v4(192, 0, 2, 7), 56324),
                destination: (v4(198, 51, 100, 1), 443)
            }
        );
    }

    #[test]
    fn v1_tcp6_and_unknown() {
        let b = b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n";
        let (n, h) = parse(b).unwrap().unwrap();
        assert_eq!(n, b.len());
        assert_eq!(
            h,
            ProxyHeader::Proxied {
                source: ("2001:db8::1".parse().unwrap(), 1),
                destination: ("::1".parse().unwrap(), 65535)
            }
        );
        let b = b"PROXY UNKNOWN whatever follows\r\nX";
        assert_eq!(parse(b), Ok(Some((b.len() - 1, ProxyHeader::Local))));
    }

    #[test]
    fn v1_truncated_needs_more_at_every_cut() {
        let b = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n";
        for cut in 0..b.len() {
            assert_eq!(parse(&b[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn v1_malformed() {
        for bad in [
            &b"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n"[..],
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 65536\r\n",
            b"PROXY TCP4 ::1 1.2.3.4 1 2\r\n",
            b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
            b"PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rX",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n",
            // Found by the fuzzer: a LF before the CR, with a CR later.
            b"PROXY TYQUIT\n!x\r",
        ] {
            assert_eq!(parse(bad), Err(ProxyError::BadV1), "{:?}", bad);
        }
    }

    #[test]
    fn v1_oversized() {
        let mut b = b"PROXY UNKNOWN ".to_vec();
        b.resize(V1_MAX, b'x');
        assert_eq!(parse(&b), Err(ProxyError::TooLong));
        // 107 bytes with the CRLF is the longest allowed.
        b.truncate(V1_MAX - 2);
        b.extend_from_slice(b"\r\n");
        assert_eq!(parse(&b), Ok(Some((V1_MAX, ProxyHeader::Local))));
    }

    #[test]
    fn v2_tcp4_with_tlv() {
        let mut body = vec![10, 1, 2, 3, 127, 0, 0, 1, 0x1f, 0x90, 0x01, 0xbb];
        body.extend_from_slice(&[0x04, 0x00, 0x01, 0x00]); // a NOOP TLV
        let mut b = v2(0x21, 0x11, &body);
        let total = b.len();
        b.extend_from_slice(b"GET");
        assert_eq!(
            parse(&b),
            Ok(Some((
                total,
                ProxyHeader::Proxied {
                    source: (v4(10, 1, 2, 3), 8080),
                    destination: (v4(127, 0, 0, 1), 443)
                }
            )))
        );
        for cut in 0..total {
            assert_eq!(parse(&b[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn v2_tcp6() {
        let mut body = Vec::new();
        body.extend_from_slice(&"2001:db8::5".parse::<Ipv6Addr>().unwrap().octets());
        body.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        body.extend_from_slice(&[0, 80, 1, 0]);
        let b = v2(0x21, 0x21, &body);
        assert_eq!(
            parse(&b),
            Ok(Some((
                b.len(),
                ProxyHeader::Proxied {
                    source: ("2001:db8::5".parse().unwrap(), 80),
                    destination: ("::1".parse().unwrap(), 256)
                }
            )))
        );
        // One byte short of the family's addresses.
        let b = v2(0x21, 0x21, &body[..35]);
        assert_eq!(parse(&b), Err(ProxyError::BadV2Length));
    }

    #[test]
    fn v2_local_and_unspec() {
        let b = v2(0x20, 0x00, &[]);
        assert_eq!(parse(&b), Ok(Some((16, ProxyHeader::Local))));
        // LOCAL with an address block: skipped.
        let b = v2(0x20, 0x11, &[0; 12]);
        assert_eq!(parse(&b), Ok(Some((28, ProxyHeader::Local))));
        // PROXY over UNIX sockets: no address we can use.
        let b = v2(0x21, 0x31, &[0; 216]);
        assert_eq!(parse(&b), Ok(Some((232, ProxyHeader::Local))));
    }

    #[test]
    fn v2_bad_command_and_oversized() {
        assert_eq!(
            parse(&v2(0x22, 0x11, &[0; 12])),
            Err(ProxyError::BadV2Command)
        );
        assert_eq!(
            parse(&v2(0x11, 0x11, &[0; 12])),
            Err(ProxyError::BadV2Command)
        );
        let mut b = V2_SIGNATURE.to_vec();
        b.extend_from_slice(&[0x21, 0x11, 0x04, 0x01]); // 1025 bytes follow
        assert_eq!(parse(&b), Err(ProxyError::TooLong));
        let ok = v2(0x21, 0x11, &[0; 1024]);
        assert!(matches!(parse(&ok), Ok(Some((1040, _)))));
    }

    #[test]
    fn garbage() {
        for g in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"PROXX",
            b"proxy ",
            b"\r\n\r\n\0\r\nQUIT\r",
            b"\x16\x03\x01",
        ] {
            assert_eq!(parse(g), Err(ProxyError::NotProxy), "{:?}", g);
        }
        assert_eq!(parse(b""), Ok(None));
    }

    #[test]
    fn cidr() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(v4(10, 200, 1, 1)));
        assert!(!c.contains(v4(11, 0, 0, 1)));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains(v4(127, 0, 0, 1)));
        assert!(!one.contains(v4(127, 0, 0, 2)));
        assert!(one.contains("::ffff:127.0.0.1".parse().unwrap()));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(v4(1, 2, 3, 4)));
        assert!(!all.contains("::1".parse().unwrap()));
        assert!(Cidr::parse("::1/128")
            .unwrap()
            .contains("::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "x", "10.0.0.0/", "10.0.0.0/+8", "::1/129"] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn forwarded_for() {
        let proxies = |ip: IpAddr| Cidr::parse("10.0.0.0/8").unwrap().contains(ip);
        assert_eq!(
            forwarded_client("203.0.113.9, 10.0.0.2, 10.0.0.3", proxies),
            Some(v4(203, 0, 113, 9))
        );
        // A client cannot forge what is left of the first untrusted hop.
        assert_eq!(
            forwarded_client("1.1.1.1, 203.0.113.9, 10.0.0.3", proxies),
            Some(v4(203, 0, 113, 9))
        );
        assert_eq!(
            forwarded_client("10.0.0.9, 10.0.0.3", proxies),
            Some(v4(10, 0, 0, 9))
        );
        assert_eq!(
            forwarded_client("[2001:db8::1]:443", proxies),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(forwarded_client("nonsense", proxies), None);
        assert_eq!(parse_forwarded_addr("1.2.3.4:80"), Some(v4(1, 2, 3, 4)));
    }
}
