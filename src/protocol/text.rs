//! Numbers and IP addresses as text without `core::fmt`: the handshake,
//! HTTP answers and `nopoll_conn_host`/`_port` need only these, and
//! `core::fmt` costs a firmware that logs nothing about 2 KB.

use alloc::string::String;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `n / d` and `n % d` with 32-bit divisions only, 16 bits of `n` at a
/// time: a 32-bit MCU has no 64-bit division instruction, and the generic
/// routine behind `u64 / u64` is 0.4 KB of firmware. (`d` 0 counts as 1.)
pub fn div_rem_u16(n: u64, d: u16) -> (u64, u16) {
    let d = u32::from(d.max(1));
    let (mut q, mut r) = (0u64, 0u32);
    // 48, 32, 16, 0 (a counted loop: an array's iterator is 44 bytes of
    // firmware).
    let mut shift = 64;
    while shift > 0 {
        shift -= 16;
        // r < d <= 0xffff: x fits in 32 bits.
        let x = (r << 16) | ((n >> shift) as u32 & 0xffff);
        q |= u64::from(x / d) << shift;
        r = x % d;
    }
    (q, r as u16)
}

/// `s` as an owned `String`, by `push_str` into an empty one: what
/// `to_string` gives (an exact allocation above 8 bytes), without the
/// `with_capacity` path `to_string` links (0.2 KB of firmware), out of
/// line so that its callers share one body. Used where the firmware's
/// echo listener makes strings; code it does not link may keep
/// `to_string`.
#[inline(never)]
pub fn owned(s: &str) -> String {
    let mut o = String::new();
    o.push_str(s);
    o
}

/// Appends `n` in decimal.
pub fn push_decimal(s: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        let (q, r) = div_rem_u16(n, 10);
        digits[i] = b'0' + r as u8;
        n = q;
        if n == 0 {
            break;
        }
    }
    push_ascii(s, &digits[i..]);
}

/// Appends ASCII `bytes` (`String::push` of a `char` links the UTF-8
/// encoder, about 170 bytes of firmware, where these are single bytes).
pub fn push_ascii(s: &mut String, bytes: &[u8]) {
    s.push_str(crate::utf8_str(bytes).unwrap_or(""));
}

/// `n` in decimal.
pub fn decimal(n: u64) -> String {
    let mut s = String::new();
    push_decimal(&mut s, n);
    s
}

/// `s` as a decimal number: one or more ASCII digits, nothing else (no
/// sign), `None` above `u64::MAX`. What `str::parse` does for such text,
/// without its generic code (about 0.1 KB of firmware per integer type).
pub fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u64, |n, b| {
        let d = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// `s.split_once(sep)` for an ASCII `sep`, by bytes: a `char` pattern
/// links core's char searchers (about 0.4 KB of firmware).
pub fn split_once_ascii(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|c| c == sep)?;
    // An ASCII byte is never inside a multi-byte character: both are
    // char boundaries, so `slice` always succeeds.
    Some((slice(s, 0, i)?, slice(s, i + 1, s.len())?))
}

/// `s.get(start..end)`: one body for every such slice of the firmware
/// echo (core's `get` is one out-of-line body per range type).
#[inline(never)]
pub fn slice(s: &str, start: usize, end: usize) -> Option<&str> {
    let (head, _) = s.split_at_checked(end)?;
    Some(head.split_at_checked(start)?.1)
}

/// `s.split(sep)` for an ASCII `sep`, by bytes (see [`split_once_ascii`]).
pub fn split_ascii(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    core::iter::from_fn(move || {
        let r = rest?;
        let (piece, after) = match split_once_ascii(r, sep) {
            Some((a, b)) => (a, Some(b)),
            None => (r, None),
        };
        rest = after;
        Some(piece)
    })
}

/// Appends `ip` as `Display` writes it: dotted quad; RFC 5952 for IPv6
/// (lowercase, no leading zeros, the longest run of two or more zero
/// groups, the first of equals, as `::`; `::ffff:a.b.c.d` for an
/// IPv4-mapped address).
pub fn push_ip(s: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => push_ipv4(s, a),
        IpAddr::V6(a) => push_ipv6(s, a),
    }
}

fn push_ipv4(s: &mut String, a: Ipv4Addr) {
    for (i, o) in a.octets().into_iter().enumerate() {
        if i > 0 {
            push_ascii(s, b".");
        }
        push_decimal(s, u64::from(o));
    }
}

fn push_ipv6(s: &mut String, a: Ipv6Addr) {
    if let Some(v4) = a.to_ipv4_mapped() {
        s.push_str("::ffff:");
        return push_ipv4(s, v4);
    }
    let g = a.segments();
    // The longest run of zero groups (at least two).
    let (mut best, mut best_len, mut run) = (0, 0, 0);
    for (i, &x) in g.iter().enumerate() {
        run = if x == 0 { run + 1 } else { 0 };
        if run > best_len {
            (best, best_len) = (i + 1 - run, run);
        }
    }
    let mut i = 0;
    while i < g.len() {
        if best_len > 1 && i == best {
            s.push_str("::");
            i += best_len;
            continue;
        }
        if i > 0 && !(best_len > 1 && i == best + best_len) {
            push_ascii(s, b":");
        }
        push_hex(s, g[i]);
        i += 1;
    }
}

fn push_hex(s: &mut String, x: u16) {
    let mut digits = [0u8; 4];
    let mut n = 0;
    for shift in [12, 8, 4, 0] {
        let d = (x >> shift) & 0xf;
        if d != 0 || n > 0 || shift == 0 {
            digits[n] = b"0123456789abcdef"[usize::from(d)];
            n += 1;
        }
    }
    push_ascii(s, &digits[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    #[test]
    fn splits_by_ascii_bytes_as_str_does() {
        for s in ["", ",", "a", "a,b", ",a,,b,", "é,ü,€", "a,b,c,"] {
            let ours: Vec<&str> = split_ascii(s, b',').collect();
            let std: Vec<&str> = s.split(',').collect();
            assert_eq!(ours, std, "{s:?}");
            assert_eq!(split_once_ascii(s, b','), s.split_once(','), "{s:?}");
        }
    }

    #[test]
    fn parses_decimal_digits_as_str_parse_does() {
        for s in ["0", "13", "0013", "255", "256", "18446744073709551615"] {
            assert_eq!(parse_decimal(s), s.parse::<u64>().ok(), "{s:?}");
        }
        // Digits only: no sign, space or other character; nothing above u64.
        for s in [
            "",
            "+13",
            "-1",
            " 13",
            "13 ",
            "1a",
            "١٣",
            "18446744073709551616",
        ] {
            assert_eq!(parse_decimal(s), None, "{s:?}");
        }
    }

    fn ip_text(ip: IpAddr) -> String {
        let mut s = String::new();
        push_ip(&mut s, ip);
        s
    }

    #[test]
    fn division_in_16_bit_steps() {
        for n in [
            0,
            1,
            9,
            10,
            999,
            1000,
            65_535,
            65_536,
            u64::from(u32::MAX),
            1 << 40,
        ]
        .into_iter()
        .chain([u64::MAX - 1, u64::MAX, 12_345_678_901_234_567_890])
        {
            for d in [1u16, 7, 10, 1000, u16::MAX] {
                let want = (n / u64::from(d), (n % u64::from(d)) as u16);
                assert_eq!(div_rem_u16(n, d), want, "{n} / {d}");
            }
        }
    }

    #[test]
    fn decimals() {
        for n in [0, 7, 10, 65535, 1_000_000, u64::MAX] {
            assert_eq!(decimal(n), n.to_string());
        }
    }

    /// The same text as `Display`, over addresses with zero runs in every
    /// place and of every length, and a pseudo-random sample.
    #[test]
    fn addresses_as_display_writes_them() {
        let check = |ip: IpAddr| assert_eq!(ip_text(ip), ip.to_string(), "{ip:?}");
        for mask in 0u32..256 {
            let mut g = [0u16; 8];
            for (i, x) in g.iter_mut().enumerate() {
                if mask & (1 << i) != 0 {
                    *x = [0x1, 0xab, 0xf00, 0xffff, 0x10, 0x2001, 0xdb8, 0x7][i];
                }
            }
            check(IpAddr::V6(Ipv6Addr::from(g)));
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            check(IpAddr::V4(Ipv4Addr::from(x as u32)));
            let hi = u128::from(x) << 64 | u128::from(x.rotate_left(17));
            // Sparse groups make zero runs likely.
            check(IpAddr::V6(Ipv6Addr::from(
                hi & 0x00ff_0000_ffff_0000_0000_00ff_0000_ffff,
            )));
            check(IpAddr::V6(Ipv6Addr::from(hi)));
        }
        for t in [
            "::",
            "::1",
            "::ffff:1.2.3.4",
            "::1.2.3.4",
            "1::",
            "fe80::1",
            "1:0:0:1::1",
        ] {
            check(t.parse().unwrap());
        }
    }
}
