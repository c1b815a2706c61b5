//! The opening handshake (RFC 6455 section 4), both roles, fed in pieces.

use super::base64;
use super::deflate::{self, DeflateConfig, DeflateParams};
use super::sha1::Sha1;
use super::text;
use super::utf8;
use super::RandomSource;
use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// The GUID that RFC 6455 appends to the key before hashing.
pub const WS_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The WebSocket protocol version this library speaks.
pub const WS_VERSION: u8 = 13;

/// Computes `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (section 4.2.2):
/// base64(SHA-1(key + GUID)), always 28 ASCII bytes.
pub fn accept_key(key: &[u8]) -> [u8; 28] {
    let mut sha = Sha1::new();
    for &b in key.iter().chain(WS_GUID) {
        sha.push(b);
    }
    let digest = sha.finalize();
    let mut out = [0u8; 28];
    // A 20-byte digest is always 28 base64 characters, so this cannot fail.
    let _ = base64::encode_slice(&digest, &mut out);
    out
}

/// Size limits for a handshake head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeLimits {
    /// Total bytes of the request/status line plus headers (default 8 KiB).
    pub max_header_bytes: usize,
    /// Number of header lines (default 64).
    pub max_headers: usize,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        HandshakeLimits {
            max_header_bytes: 8192,
            max_headers: 64,
        }
    }
}

/// Why a handshake failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The head exceeded `max_header_bytes` or `max_headers`.
    #[error("handshake head exceeds the configured limits")]
    TooLarge,
    /// Not a well-formed HTTP/1.1 head.
    #[error("malformed HTTP head: {0}")]
    Malformed(&'static str),
    /// The server answered with another status than 101.
    #[error("server answered with status {0} instead of 101")]
    Status(u16),
    /// A header required by RFC 6455 is missing or wrong.
    #[error("bad or missing {0} header")]
    BadHeader(&'static str),
    /// The request asks for another protocol version (answered 426 with
    /// the version we speak).
    #[error("missing or unsupported Sec-WebSocket-Version")]
    UnsupportedVersion,
    /// `Sec-WebSocket-Accept` does not match the key we sent.
    #[error("Sec-WebSocket-Accept does not match the key")]
    AcceptMismatch,
    /// The server selected an extension we did not offer.
    #[error("server selected an extension that was not offered")]
    UnofferedExtension,
    /// A value given to build a request or answer contains CR, LF or NUL.
    #[error("value for {0} contains forbidden characters")]
    InvalidInput(&'static str),
}

/// [`HandshakeError::Malformed`] with `why`; with `no-log` (no log line
/// ever shows it) one text for every case, so that a firmware keeps no
/// table of reasons: the status of the answer (400) does not change.
const fn malformed(why: &'static str) -> HandshakeError {
    HandshakeError::Malformed(if cfg!(feature = "no-log") {
        "bad head"
    } else {
        why
    })
}

/// One header line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Name as sent (compare case-insensitively).
    pub name: String,
    /// Value with surrounding whitespace removed.
    pub value: String,
}

/// Accumulates an HTTP head fed in arbitrary pieces, up to the limits.
#[derive(Clone, Debug)]
struct HeadBuffer {
    buf: Vec<u8>,
    limits: HandshakeLimits,
    done: bool,
}

impl HeadBuffer {
    fn new(limits: HandshakeLimits) -> Self {
        HeadBuffer {
            buf: Vec::new(),
            limits,
            done: false,
        }
    }

    /// Takes bytes up to the end of the head. Returns how many bytes of
    /// `data` were consumed and whether the head is complete.
    fn feed(&mut self, data: &[u8]) -> Result<(usize, bool), HandshakeError> {
        if self.done {
            return Ok((0, true));
        }
        let old = self.buf.len();
        let room = self.limits.max_header_bytes.saturating_sub(old);
        let take = data.len().min(room);
        self.buf.extend_from_slice(&data[..take]);
        // The terminator ("\n\n" or "\n\r\n") ends in the new bytes (the
        // old ones hold none): each new LF, looked at with what is before it.
        let b = &self.buf;
        for i in old.max(1)..b.len() {
            if b[i] == b'\n'
                && (b[i - 1] == b'\n' || (i >= 2 && b[i - 1] == b'\r' && b[i - 2] == b'\n'))
            {
                // Lines before the first one may not be empty.
                let end = i + 1;
                self.buf.truncate(end);
                self.done = true;
                return Ok((end - old, true));
            }
        }
        if take < data.len() || self.buf.len() >= self.limits.max_header_bytes {
            return Err(HandshakeError::TooLarge);
        }
        Ok((take, false))
    }

    /// Splits the completed head into its first line and headers.
    fn parse(&self) -> Result<(&str, Vec<Header>), HandshakeError> {
        let head = utf8::to_str(&self.buf).ok_or(malformed("head is not UTF-8"))?;
        // One pass for the whole head: no control character but tab and
        // line ends (a CR only before its LF), NUL included.
        // A byte loop with the one before (the head ends with LF, so a CR
        // is always followed by something).
        let mut prev = 0u8;
        for &c in &self.buf {
            if (prev == b'\r' && c != b'\n')
                || (c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r'))
                || c == 0x7f
            {
                return Err(malformed("control character in head"));
            }
            prev = c;
        }
        let mut lines = text::split_ascii(head, b'\n').map(|l| l.strip_suffix("\r").unwrap_or(l));
        let first = lines.next().unwrap_or("");
        if first.is_empty() {
            return Err(malformed("empty first line"));
        }
        let mut headers = Vec::new();
        for line in lines {
            if line.is_empty() {
                break;
            }
            if matches!(line.as_bytes().first(), Some(b' ' | b'\t')) {
                return Err(malformed("folded header line"));
            }
            let (name, value) =
                text::split_once_ascii(line, b':').ok_or(malformed("header without colon"))?;
            if name.is_empty() || !name.bytes().all(is_tchar) {
                return Err(malformed("invalid header name"));
            }
            if headers.len() == self.limits.max_headers {
                return Err(HandshakeError::TooLarge);
            }
            headers.push(Header {
                name: text::owned(name),
                value: text::owned(trim_ows(value)),
            });
        }
        Ok((first, headers))
    }
}

/// `s` without spaces and tabs at either end (HTTP's optional
/// whitespace). Byte by byte: `str::trim_matches` with a char pattern links
/// char searchers (about 300 bytes of firmware) for the same result.
fn trim_ows(s: &str) -> &str {
    let ows = |c: u8| c == b' ' || c == b'\t';
    let b = s.as_bytes();
    let (mut start, mut end) = (0, b.len());
    while start < end && ows(b[start]) {
        start += 1;
    }
    while end > start && ows(b[end - 1]) {
        end -= 1;
    }
    // Both ends are next to ASCII bytes, so char boundaries.
    text::slice(s, start, end).unwrap_or("")
}

/// An HTTP token character (RFC 9110 5.6.2).
pub(super) fn is_tchar(b: u8) -> bool {
    // A bit per ASCII byte, made at compile time (a `match` or a search
    // of the list is several times the code).
    const fn tchar(b: u8) -> bool {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            )
    }
    const TABLE: [u32; 4] = {
        let mut t = [0u32; 4];
        let mut b = 0u8;
        while b < 128 {
            if tchar(b) {
                t[(b >> 5) as usize] |= 1 << (b & 31);
            }
            b += 1;
        }
        t
    };
    b < 128 && (TABLE[usize::from(b >> 5)] >> (b & 31)) & 1 != 0
}

/// All values of header `name`, in order (case-insensitive name match).
pub(crate) fn header_values<'a>(
    headers: &'a [Header],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// Comma-separated tokens of every `name` header, trimmed, empties skipped.
fn header_tokens<'a>(headers: &'a [Header], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    header_values(headers, name)
        .flat_map(|v| text::split_ascii(v, b','))
        .map(trim_ows)
        .filter(|t| !t.is_empty())
}

/// The first token of [`header_tokens`] equal to `token` (ASCII case
/// ignored), or the first of all when `token` is `None`: plain loops,
/// smaller than the iterator chain for the handshake's own checks, and
/// one body (not one per caller's closure).
fn find_token<'a>(headers: &'a [Header], name: &str, token: Option<&str>) -> Option<&'a str> {
    for h in headers {
        if h.name.eq_ignore_ascii_case(name) {
            for t in text::split_ascii(&h.value, b',') {
                let t = trim_ows(t);
                if !t.is_empty() && token.is_none_or(|w| t.eq_ignore_ascii_case(w)) {
                    return Some(t);
                }
            }
        }
    }
    None
}

fn has_token(headers: &[Header], name: &str, token: &str) -> bool {
    find_token(headers, name, Some(token)).is_some()
}

/// Joins every value of a list header with ", " (None if absent).
fn joined(headers: &[Header], name: &str) -> Option<String> {
    let mut out = String::new();
    let mut found = false;
    for h in headers {
        if h.name.eq_ignore_ascii_case(name) {
            if found {
                out.push_str(", ");
            }
            out.push_str(&h.value);
            found = true;
        }
    }
    found.then_some(out)
}

fn check_value(v: &str, what: &'static str) -> Result<(), HandshakeError> {
    // The same rule the parser applies to header values: no control
    // characters but horizontal tab.
    if v.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        Err(HandshakeError::InvalidInput(what))
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------- server

/// A parsed HTTP request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Request method (`GET`).
    pub method: String,
    /// Request target as sent (`/chat?x=1`).
    pub url: String,
    /// HTTP version as (major, minor).
    pub version: (u8, u8),
    /// Every header line, in order.
    pub headers: Vec<Header>,
}

impl Request {
    /// First value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }
    /// `Host` header.
    pub fn host(&self) -> Option<&str> {
        self.header("Host")
    }
    /// `Origin` header (or the legacy `Sec-WebSocket-Origin`).
    pub fn origin(&self) -> Option<&str> {
        self.header("Origin")
            .or_else(|| self.header("Sec-WebSocket-Origin"))
    }
    /// `Cookie` header.
    pub fn cookie(&self) -> Option<&str> {
        self.header("Cookie")
    }
    /// `X-Real-IP` header.
    pub fn x_real_ip(&self) -> Option<&str> {
        self.header("X-Real-IP")
    }
    /// The raw `Sec-WebSocket-Protocol` list, several header lines joined.
    pub fn requested_protocols(&self) -> Option<String> {
        joined(&self.headers, "Sec-WebSocket-Protocol")
    }
    /// The requested subprotocols, one by one.
    pub fn protocols(&self) -> impl Iterator<Item = &str> {
        header_tokens(&self.headers, "Sec-WebSocket-Protocol")
    }
    /// The raw `Sec-WebSocket-Extensions` list.
    pub fn extensions(&self) -> Option<String> {
        joined(&self.headers, "Sec-WebSocket-Extensions")
    }
    /// The first requested subprotocol.
    pub fn first_protocol(&self) -> Option<&str> {
        find_token(&self.headers, "Sec-WebSocket-Protocol", None)
    }
    /// True when this request asks for a WebSocket upgrade.
    pub fn is_upgrade(&self) -> bool {
        has_token(&self.headers, "Upgrade", "websocket")
    }
}

/// A valid upgrade request, ready to be answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// The request head.
    pub request: Request,
    accept: [u8; 28],
}

impl UpgradeRequest {
    /// The computed `Sec-WebSocket-Accept` value.
    pub fn accept_key(&self) -> &str {
        // Base64 output is ASCII.
        utf8::to_str(&self.accept).unwrap_or("")
    }

    /// The `101 Switching Protocols` answer, with `protocol` (the chosen
    /// subprotocol) when given.
    pub fn response(&self, protocol: Option<&str>) -> Result<Vec<u8>, HandshakeError> {
        let mut out = Vec::new();
        self.answer(&mut out, protocol, None)?;
        Ok(out)
    }

    /// Like [`UpgradeRequest::response`], also answering a
    /// permessage-deflate offer when `deflate` is given (we are willing)
    /// and the request holds an acceptable offer: then the agreement is
    /// returned too.
    pub fn response_with_deflate(
        &self,
        protocol: Option<&str>,
        deflate: Option<&DeflateConfig>,
    ) -> Result<(Vec<u8>, Option<DeflateParams>), HandshakeError> {
        let mut out = Vec::new();
        let agreed = self.answer_into(&mut out, protocol, deflate)?;
        Ok((out, agreed))
    }

    /// [`UpgradeRequest::response_with_deflate`] appending the answer to
    /// `out` (nothing appended on error).
    pub(crate) fn answer_into(
        &self,
        out: &mut Vec<u8>,
        protocol: Option<&str>,
        deflate: Option<&DeflateConfig>,
    ) -> Result<Option<DeflateParams>, HandshakeError> {
        match deflate {
            Some(cfg) => deflate::answer(self, out, protocol, cfg),
            None => self.answer(out, protocol, None).map(|()| None),
        }
    }

    /// Appends the 101 answer to `out` (nothing on error).
    pub(super) fn answer(
        &self,
        out: &mut Vec<u8>,
        protocol: Option<&str>,
        extensions: Option<&str>,
    ) -> Result<(), HandshakeError> {
        let protocol = protocol.filter(|p| !p.is_empty());
        if let Some(p) = protocol {
            check_value(p, "Sec-WebSocket-Protocol")?;
        }
        out.extend_from_slice(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
        );
        push_header(out, b"Sec-WebSocket-Accept", &self.accept);
        if let Some(p) = protocol {
            push_header(out, b"Sec-WebSocket-Protocol", p.as_bytes());
        }
        if let Some(e) = extensions {
            push_header(out, b"Sec-WebSocket-Extensions", e.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }
}

/// Appends the header line `name: value` (CR LF ended) to `out`.
#[inline(never)]
fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// An answer refusing a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// HTTP status: 400 (malformed), 426 (wrong version), 431 (too large).
    pub status: u16,
    /// What was wrong.
    pub error: HandshakeError,
    /// WebSocket version to advertise (426 only).
    version: u8,
}

impl Rejection {
    /// The complete HTTP answer to send before closing. (Status lines as
    /// constants: a server that rejects handshakes links no reason-phrase
    /// table or number formatting for it.)
    pub fn response(&self) -> Vec<u8> {
        let mut s = Vec::new();
        self.write_response(&mut s);
        s
    }

    /// [`Rejection::response`] appended to `s`.
    pub(crate) fn write_response(&self, s: &mut Vec<u8>) {
        s.extend_from_slice(match self.status {
            426 => b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: ",
            431 => b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            _ => b"HTTP/1.1 400 Bad Request\r\n",
        });
        if self.status == 426 {
            // The version's digits and the line's end, appended at once
            // from the first significant digit.
            let mut v = self.version;
            let mut line = *b"000\r\n";
            let mut at = 3;
            loop {
                at -= 1;
                line[at] += v % 10;
                v /= 10;
                if v == 0 {
                    break;
                }
            }
            s.extend_from_slice(&line[at..]);
        }
        s.extend_from_slice(b"Connection: close\r\nContent-Length: 0\r\n\r\n");
    }
}

/// The reason phrase of an HTTP status code (RFC 9110), for the answers
/// this library writes.
pub fn reason_phrase(status: u16) -> &'static str {
    // One string and two small tables (3 bytes a status): a `match` costs
    // about 15 bytes of code and literal pool a status on a Cortex-M3.
    const CODES: [u16; 16] = [
        101, 200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 405, 426, 431, 500, 503,
    ];
    const ENDS: [u8; 16] = [
        19, 21, 28, 38, 55, 60, 72, 83, 95, 104, 113, 131, 147, 178, 199, 218,
    ];
    const PHRASES: &str = concat!(
        "Switching Protocols",
        "OK",
        "Created",
        "No Content",
        "Moved Permanently",
        "Found",
        "Not Modified",
        "Bad Request",
        "Unauthorized",
        "Forbidden",
        "Not Found",
        "Method Not Allowed",
        "Upgrade Required",
        "Request Header Fields Too Large",
        "Internal Server Error",
        "Service Unavailable",
    );
    let Some(i) = CODES.iter().position(|&c| c == status) else {
        return "Unknown";
    };
    let start = if i == 0 { 0 } else { ENDS[i - 1] };
    PHRASES
        .get(usize::from(start)..usize::from(ENDS[i]))
        .unwrap_or("Unknown")
}

/// What a server makes of a request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerOutcome {
    /// A valid WebSocket upgrade request (boxed: it is what a server
    /// keeps while it decides, and the outcome is moved a few times).
    Upgrade(Box<UpgradeRequest>),
    /// A well-formed request that does not ask for an upgrade (a browser
    /// fetching a page): the caller may serve it (boxed, as `Upgrade`).
    Http(Box<Request>),
    /// Refuse with this answer.
    Reject(Rejection),
}

/// Server side: parses an upgrade request fed in arbitrary pieces.
#[derive(Clone, Debug)]
pub struct ServerHandshake {
    head: HeadBuffer,
    version: u8,
}

impl ServerHandshake {
    /// A parser with the given limits, requiring `Sec-WebSocket-Version: 13`.
    pub fn new(limits: HandshakeLimits) -> Self {
        Self::with_version(limits, WS_VERSION)
    }

    /// A parser that requires another protocol version (nopoll's
    /// `nopoll_ctx_set_protocol_version`).
    pub fn with_version(limits: HandshakeLimits, version: u8) -> Self {
        ServerHandshake {
            head: HeadBuffer::new(limits),
            version,
        }
    }

    /// Feeds bytes. Returns how many were consumed (bytes after the head
    /// belong to the frame layer) and, once the head is complete, the outcome.
    pub fn feed(&mut self, data: &[u8]) -> (usize, Option<ServerOutcome>) {
        match self.head.feed(data) {
            Ok((n, false)) => (n, None),
            Ok((n, true)) => (n, Some(self.decide())),
            Err(e) => (data.len(), Some(ServerOutcome::Reject(self.reject(e)))),
        }
    }

    fn reject(&self, error: HandshakeError) -> Rejection {
        let status = match error {
            HandshakeError::TooLarge => 431,
            HandshakeError::UnsupportedVersion => 426,
            _ => 400,
        };
        Rejection {
            status,
            error,
            version: self.version,
        }
    }

    fn decide(&self) -> ServerOutcome {
        match self.parse() {
            Ok(outcome) => outcome,
            Err(e) => ServerOutcome::Reject(self.reject(e)),
        }
    }

    fn parse(&self) -> Result<ServerOutcome, HandshakeError> {
        let (line, headers) = self.head.parse()?;
        // Method, target and version, one space apart: a fourth part, or a
        // space more anywhere, leaves a version `parse_http_version`
        // refuses, or an empty method or target.
        let (method, url, proto) = text::split_once_ascii(line, b' ')
            .and_then(|(m, rest)| Some((m, text::split_once_ascii(rest, b' ')?)))
            .map(|(m, (u, p))| (m, u, p))
            .filter(|(m, u, _)| !m.is_empty() && !u.is_empty())
            .ok_or(malformed("bad request line"))?;
        if !method.bytes().all(is_tchar) {
            return Err(malformed("bad method"));
        }
        // RFC 7230: the request target is visible ASCII only.
        if !url.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            return Err(malformed("bad request target"));
        }
        let version = parse_http_version(proto).ok_or(malformed("bad HTTP version"))?;
        let request = Request {
            method: text::owned(method),
            url: text::owned(url),
            version,
            headers,
        };
        if !request.is_upgrade() {
            return Ok(ServerOutcome::Http(Box::new(request)));
        }
        if request.method != "GET" {
            return Err(malformed("upgrade request is not a GET"));
        }
        if version < (1, 1) {
            return Err(malformed("upgrade needs HTTP/1.1"));
        }
        if request.host().is_none_or(str::is_empty) {
            return Err(HandshakeError::BadHeader("Host"));
        }
        if !has_token(&request.headers, "Connection", "upgrade") {
            return Err(HandshakeError::BadHeader("Connection"));
        }
        if !request
            .header("Sec-WebSocket-Version")
            .is_some_and(|v| is_decimal(v, self.version))
        {
            return Err(HandshakeError::UnsupportedVersion);
        }
        let key = request
            .header("Sec-WebSocket-Key")
            .ok_or(HandshakeError::BadHeader("Sec-WebSocket-Key"))?;
        if !base64::encodes_16_bytes(key.as_bytes()) {
            return Err(HandshakeError::BadHeader("Sec-WebSocket-Key"));
        }
        let accept = accept_key(key.as_bytes());
        Ok(ServerOutcome::Upgrade(Box::new(UpgradeRequest {
            request,
            accept,
        })))
    }
}

/// Whether `v` is the decimal number `wanted`: digits only, at least one
/// (leading zeros allowed: what `text::parse_decimal` reads, without its
/// 64-bit arithmetic).
fn is_decimal(v: &str, wanted: u8) -> bool {
    let mut n = 0u32;
    for b in v.bytes() {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return false;
        }
        // Stays above any u8 once there, without overflowing.
        n = (n * 10 + u32::from(d)).min(256);
    }
    !v.is_empty() && n == u32::from(wanted)
}

fn parse_http_version(s: &str) -> Option<(u8, u8)> {
    match *s.as_bytes() {
        [b'H', b'T', b'T', b'P', b'/', a, b'.', b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Some((a - b'0', b - b'0'))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------- client

/// What a client puts in its upgrade request.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientRequest<'a> {
    /// `Host` header value (`host` or `host:port`).
    pub host: &'a str,
    /// Request target; empty means `/`.
    pub path: &'a str,
    /// `Origin` header, if any.
    pub origin: Option<&'a str>,
    /// Offered subprotocols as a comma-separated list, if any.
    pub protocols: Option<&'a str>,
    /// `Cookie` header, if any.
    pub cookie: Option<&'a str>,
    /// Extra header lines in nopoll's format: `"\r\nName: value"` repeated,
    /// without a trailing CRLF (a trailing CRLF is tolerated).
    pub extra_headers: Option<&'a str>,
    /// `Sec-WebSocket-Version` to send; 0 means 13.
    pub version: u8,
    /// Offer permessage-deflate (RFC 7692) with these settings.
    pub deflate: Option<DeflateConfig>,
}

/// The server's 101 answer, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code (always 101 once validated).
    pub status: u16,
    /// Every header line.
    pub headers: Vec<Header>,
    /// The subprotocol the server selected, if any, as it answered it.
    pub protocol: Option<String>,
    /// The answered subprotocol is not one the client offered (or none was
    /// offered). RFC 6455 says such a client fails the connection; nopoll
    /// clients accept it, and so does this one: the caller may warn.
    pub unoffered_protocol: bool,
    /// permessage-deflate as the server accepted it (None: declined or
    /// not offered).
    pub deflate: Option<DeflateParams>,
}

/// Client side: builds the request and validates the answer.
#[derive(Clone, Debug)]
pub struct ClientHandshake {
    head: HeadBuffer,
    expected_accept: [u8; 28],
    offered: Vec<String>,
    deflate: Option<DeflateConfig>,
    /// [`ClientHandshake::validate`], stored by `new` and called only
    /// through here: a firmware that never connects does not link the
    /// checks of a server's answer.
    check: fn(&ClientHandshake) -> Result<Response, HandshakeError>,
}

impl ClientHandshake {
    /// Builds the upgrade request with a fresh key from `rng`; returns the
    /// handshake state and the request bytes to send.
    pub fn new(
        req: &ClientRequest<'_>,
        limits: HandshakeLimits,
        rng: &mut dyn RandomSource,
    ) -> Result<(ClientHandshake, Vec<u8>), HandshakeError> {
        check_value(req.host, "Host")?;
        if req.host.is_empty() {
            return Err(HandshakeError::InvalidInput("Host"));
        }
        let path = if req.path.is_empty() { "/" } else { req.path };
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(HandshakeError::InvalidInput("request path"));
        }
        for (v, what) in [
            (req.origin, "Origin"),
            (req.protocols, "Sec-WebSocket-Protocol"),
            (req.cookie, "Cookie"),
        ] {
            if let Some(v) = v {
                check_value(v, what)?;
            }
        }
        let extra = match req.extra_headers {
            Some(e) => Some(validate_extra_headers(e)?),
            None => None,
        };
        let mut nonce = [0u8; 16];
        rng.fill(&mut nonce);
        let mut key = [0u8; 24];
        let _ = base64::encode_slice(&nonce, &mut key);
        let version = if req.version == 0 {
            WS_VERSION
        } else {
            req.version
        };

        let mut s = String::with_capacity(256);
        let mut line = |name: &str, value: &str| {
            s.push_str(name);
            s.push_str(": ");
            s.push_str(value);
            s.push_str("\r\n");
        };
        let key_str = utf8::to_str(&key).unwrap_or("");
        let version_str = text::decimal(u64::from(version));
        line("Host", req.host);
        line("Upgrade", "websocket");
        line("Connection", "Upgrade");
        line("Sec-WebSocket-Key", key_str);
        line("Sec-WebSocket-Version", &version_str);
        if let Some(o) = req.origin {
            line("Origin", o);
        }
        let mut offered = Vec::new();
        if let Some(p) = req.protocols.filter(|p| !p.trim().is_empty()) {
            line("Sec-WebSocket-Protocol", p);
            offered = p
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect();
        }
        if let Some(c) = req.cookie {
            line("Cookie", c);
        }
        if let Some(d) = &req.deflate {
            line("Sec-WebSocket-Extensions", &deflate::make_offer(d));
        }
        let mut out = String::with_capacity(s.len() + 32);
        out.push_str("GET ");
        out.push_str(path);
        out.push_str(" HTTP/1.1\r\n");
        out.push_str(&s);
        if let Some(e) = extra {
            // nopoll's format: each line starts with CRLF; we already ended
            // the previous line, so drop the leading CRLF and end the last.
            out.push_str(e);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        Ok((
            ClientHandshake {
                head: HeadBuffer::new(limits),
                expected_accept: accept_key(&key),
                offered,
                deflate: req.deflate,
                check: ClientHandshake::validate,
            },
            out.into_bytes(),
        ))
    }

    /// Feeds bytes of the answer. Returns how many were consumed (bytes
    /// after the head are frames) and, once the head is complete, the
    /// validated answer or why it is refused.
    pub fn feed(&mut self, data: &[u8]) -> Result<(usize, Option<Response>), HandshakeError> {
        let (n, done) = self.head.feed(data)?;
        if !done {
            return Ok((n, None));
        }
        Ok((n, Some((self.check)(self)?)))
    }

    fn validate(&self) -> Result<Response, HandshakeError> {
        let (line, headers) = self.head.parse()?;
        let mut parts = text::split_ascii(line, b' ');
        let proto = parts.next().unwrap_or("");
        match parse_http_version(proto) {
            Some(v) if v >= (1, 1) => {}
            _ => return Err(malformed("bad status line")),
        }
        let status: u16 = parts
            .next()
            .filter(|s| s.len() == 3)
            .and_then(|s| s.parse().ok())
            .ok_or(malformed("bad status code"))?;
        if status != 101 {
            return Err(HandshakeError::Status(status));
        }
        if !has_token(&headers, "Upgrade", "websocket") {
            return Err(HandshakeError::BadHeader("Upgrade"));
        }
        if !has_token(&headers, "Connection", "upgrade") {
            return Err(HandshakeError::BadHeader("Connection"));
        }
        let accept = header_values(&headers, "Sec-WebSocket-Accept").next();
        if accept.map(str::as_bytes) != Some(&self.expected_accept[..]) {
            return Err(HandshakeError::AcceptMismatch);
        }
        let deflate = deflate::verify_answer(&headers, self.deflate.as_ref())
            .map_err(|()| HandshakeError::UnofferedExtension)?;
        // What the server said, as it said it: upstream nopoll servers
        // answer with a subprotocol of their own ("hello-protocol" offered,
        // "hello-protocol-response" answered) and upstream clients accept
        // it, so the answer is kept and only flagged.
        let protocol = joined(&headers, "Sec-WebSocket-Protocol").filter(|p| !p.trim().is_empty());
        let unoffered_protocol = protocol
            .as_deref()
            .is_some_and(|p| !self.offered.iter().any(|o| o == trim_ows(p)));
        Ok(Response {
            status,
            headers,
            protocol,
            unoffered_protocol,
            deflate,
        })
    }
}

/// Checks nopoll-style extra headers ("\r\nName: value" repeated) and
/// returns them without the leading CRLF and without a trailing CRLF.
fn validate_extra_headers(e: &str) -> Result<&str, HandshakeError> {
    let bad = HandshakeError::InvalidInput("extra headers");
    let body = e.strip_prefix("\r\n").unwrap_or(e);
    let body = body.strip_suffix("\r\n").unwrap_or(body);
    if body.is_empty() {
        return Err(bad);
    }
    for line in body.split("\r\n") {
        let (name, value) = text::split_once_ascii(line, b':').ok_or(bad.clone())?;
        if name.is_empty()
            || !name.bytes().all(is_tchar)
            || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
        {
            return Err(bad);
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn token_characters_are_rfc_9110s() {
        for b in 0..=255u8 {
            let want = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(is_tchar(b), want, "byte {b}");
        }
    }

    #[test]
    fn version_read_as_parse_decimal_reads_it() {
        for v in [
            "13",
            "013",
            "0013",
            "8",
            "",
            "+13",
            "13 ",
            "1x",
            "256",
            "269",
            "99999999999999999999999",
        ] {
            for wanted in [0u8, 8, 13, 255] {
                let old = text::parse_decimal(v) == Some(u64::from(wanted));
                assert_eq!(is_decimal(v, wanted), old, "{v:?} {wanted}");
            }
        }
        assert!(is_decimal("013", 13) && is_decimal("255", 255) && !is_decimal("256", 0));
    }

    struct Fixed(u8);
    impl RandomSource for Fixed {
        fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                *b = self.0;
                self.0 = self.0.wrapping_add(1);
            }
        }
    }

    /// Spaces and tabs go from both ends, nothing else (not other
    /// whitespace, not inside), as `trim_matches([' ', '\t'])` did.
    #[test]
    fn optional_whitespace_trimmed_like_trim_matches() {
        for v in [
            "",
            " ",
            "\t \t",
            "a",
            " a ",
            " \t a\t ",
            "\ta b\t",
            "\u{a0}x\u{a0}",
            " \u{e9} ",
            "\x0bx\x0c",
        ] {
            assert_eq!(trim_ows(v), v.trim_matches([' ', '\t']), "{v:?}");
        }
    }

    const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

    fn server_outcome(req: &str) -> ServerOutcome {
        let mut s = ServerHandshake::new(HandshakeLimits::default());
        let (n, out) = s.feed(req.as_bytes());
        assert!(n <= req.len());
        out.expect("complete head")
    }

    fn status_of(req: &str) -> u16 {
        match server_outcome(req) {
            ServerOutcome::Reject(r) => r.status,
            ServerOutcome::Upgrade(_) => 101,
            ServerOutcome::Http(_) => 200,
        }
    }

    #[test]
    fn rfc_1_3_accept_key() {
        assert_eq!(
            &accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn rfc_request_one_byte_at_a_time() {
        let mut s = ServerHandshake::new(HandshakeLimits::default());
        let bytes = RFC_REQUEST.as_bytes();
        let mut outcome = None;
        for (i, b) in bytes.iter().enumerate() {
            let (n, out) = s.feed(core::slice::from_ref(b));
            assert_eq!(n, 1);
            if out.is_some() {
                assert_eq!(i, bytes.len() - 1, "complete only at the last byte");
                outcome = out;
            }
        }
        let ServerOutcome::Upgrade(up) = outcome.unwrap() else {
            panic!("not an upgrade")
        };
        assert_eq!(up.accept_key(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let r = &up.request;
        assert_eq!(r.url, "/chat");
        assert_eq!(r.host(), Some("server.example.com"));
        assert_eq!(r.origin(), Some("http://example.com"));
        assert_eq!(r.protocols().collect::<Vec<_>>(), vec!["chat", "superchat"]);
        assert_eq!(r.first_protocol(), Some("chat"));
        let h = |name: &str, value: &str| Header {
            name: name.into(),
            value: value.into(),
        };
        let odd = Request {
            method: "GET".into(),
            url: "/".into(),
            version: (1, 1),
            headers: vec![
                h("sec-websocket-protocol", " , "),
                h("X", "y"),
                h("Sec-WebSocket-Protocol", ",  b2 ,c"),
            ],
        };
        assert_eq!(odd.first_protocol(), odd.protocols().next());
        assert_eq!(odd.first_protocol(), Some("b2"));
        assert_eq!(r.requested_protocols().as_deref(), Some("chat, superchat"));
        let resp = String::from_utf8(up.response(Some("chat")).unwrap()).unwrap();
        assert_eq!(
            resp,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
        );
        assert!(up.response(Some("x\r\nEvil: 1")).is_err());
    }

    #[test]
    fn bytes_after_the_head_are_not_consumed() {
        let mut s = ServerHandshake::new(HandshakeLimits::default());
        let mut data = RFC_REQUEST.as_bytes().to_vec();
        data.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
        let (n, out) = s.feed(&data);
        assert_eq!(n, RFC_REQUEST.len());
        assert!(matches!(out, Some(ServerOutcome::Upgrade(_))));
    }

    #[test]
    fn server_rules_table() {
        let base = RFC_REQUEST;
        let cases: Vec<(String, u16)> = vec![
            (base.to_string(), 101),
            // header names are case-insensitive, token lists are lists
            (
                base.replace("Upgrade: websocket", "uPgRaDe: foo, WebSocket")
                    .replace("Connection: Upgrade", "connection: keep-alive, upgrade"),
                101,
            ),
            // bare LF line endings are tolerated
            (base.replace("\r\n", "\n"), 101),
            (
                base.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
                426,
            ),
            (base.replace("Sec-WebSocket-Version: 13\r\n", ""), 426),
            (base.replace("Version: 13", "Version: +13"), 426),
            (
                base.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ=="),
                400,
            ),
            (base.replace("dGhlIHNhbXBsZSBub25jZQ==", "not base64!"), 400),
            (
                base.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
                400,
            ),
            (
                base.replace("Connection: Upgrade", "Connection: keep-alive"),
                400,
            ),
            (base.replace("Host: server.example.com\r\n", ""), 400),
            (base.replace("GET /chat", "POST /chat"), 400),
            (base.replace("HTTP/1.1", "HTTP/1.0"), 400),
            (base.replace("GET /chat HTTP/1.1", "GET /chat"), 400),
            // the request line: three parts, one space apart
            (
                base.replace("GET /chat HTTP/1.1", "GET /chat HTTP/1.1 x"),
                400,
            ),
            (
                base.replace("GET /chat HTTP/1.1", "GET  /chat HTTP/1.1"),
                400,
            ),
            (
                base.replace("GET /chat HTTP/1.1", "GET /chat  HTTP/1.1"),
                400,
            ),
            (
                base.replace("GET /chat HTTP/1.1", " GET /chat HTTP/1.1"),
                400,
            ),
            (
                base.replace("GET /chat HTTP/1.1", "GET /chat HTTP/1.1 "),
                400,
            ),
            ("GET / HTTP/1.1 x\r\nHost: a\r\n\r\n".to_string(), 400),
            (base.replace("Origin: http", " Origin: http"), 400),
            (base.replace("Origin: http", "Origin http"), 400),
            (base.replace("Origin:", "Ori gin:"), 400),
            ("\u{1}garbage\r\n\r\n".to_string(), 400),
            // control characters in a value: NUL, a bare CR, DEL; a tab is
            // whitespace
            (base.replace("Origin: http", "Origin: \u{0}http"), 400),
            (base.replace("Origin: http", "Origin: a\rhttp"), 400),
            (base.replace("Origin: http", "Origin: http\r"), 400),
            (base.replace("Origin: http", "Origin: \u{7f}http"), 400),
            (base.replace("Origin: http", "Origin:\thttp"), 101),
            (base.replace("GET /chat ", "GET /\u{1b}[31mred "), 400),
            (base.replace("GET /chat ", "GET /caf\u{e9} "), 400),
            // not an upgrade: a plain page request
            (
                "GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n".to_string(),
                200,
            ),
            ("GET / HTTP/1.0\r\n\r\n".to_string(), 200),
        ];
        for (req, expect) in cases {
            assert_eq!(status_of(&req), expect, "{req:?}");
        }
    }

    #[test]
    fn reason_phrases() {
        assert_eq!(reason_phrase(404), "Not Found");
        assert_eq!(reason_phrase(431), "Request Header Fields Too Large");
        assert_eq!(reason_phrase(799), "Unknown");
        assert_eq!(reason_phrase(101), "Switching Protocols");
        assert_eq!(reason_phrase(503), "Service Unavailable");
        assert_eq!(reason_phrase(200), "OK");
        assert_eq!(reason_phrase(1200), "Unknown");
        assert_eq!(reason_phrase(20), "Unknown");
        for (code, phrase) in [
            (201, "Created"),
            (204, "No Content"),
            (301, "Moved Permanently"),
            (302, "Found"),
            (304, "Not Modified"),
            (400, "Bad Request"),
            (401, "Unauthorized"),
            (403, "Forbidden"),
            (405, "Method Not Allowed"),
            (426, "Upgrade Required"),
            (500, "Internal Server Error"),
        ] {
            assert_eq!(reason_phrase(code), phrase);
        }
        assert_eq!(parse_http_version("HTTP/1.1"), Some((1, 1)));
        assert_eq!(parse_http_version("HTTP/1.0"), Some((1, 0)));
        for bad in ["HTTP/1.", "HTTP/11.1", "HTTP/1.x", "http/1.1", "HTTP/1.1 "] {
            assert_eq!(parse_http_version(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rejection_answers() {
        let ServerOutcome::Reject(r) =
            server_outcome(&RFC_REQUEST.replace("Version: 13", "Version: 7"))
        else {
            panic!()
        };
        let text = String::from_utf8(r.response()).unwrap();
        assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        // Every status a rejection has, with its reason phrase and, for
        // 426, the version in decimal.
        for (status, version) in [
            (400, 13),
            (426, 13),
            (426, 7),
            (426, 0),
            (426, 100),
            (426, 255),
            (431, 13),
        ] {
            let r = Rejection {
                status,
                error: HandshakeError::TooLarge,
                version,
            };
            let mut expect = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
            if status == 426 {
                expect += &format!("Sec-WebSocket-Version: {version}\r\n");
            }
            expect += "Connection: close\r\nContent-Length: 0\r\n\r\n";
            assert_eq!(String::from_utf8(r.response()).unwrap(), expect);
        }
        assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        // A listener configured for another version asks for that one.
        let mut s = ServerHandshake::with_version(HandshakeLimits::default(), 14);
        let ServerOutcome::Reject(r) = s.feed(RFC_REQUEST.as_bytes()).1.unwrap() else {
            panic!()
        };
        assert!(String::from_utf8(r.response())
            .unwrap()
            .contains("Sec-WebSocket-Version: 14\r\n"));
    }

    #[test]
    fn limits() {
        let limits = HandshakeLimits {
            max_header_bytes: 64,
            max_headers: 2,
        };
        let mut s = ServerHandshake::new(limits);
        let (_, out) = s.feed(&[b'a'; 65]);
        assert!(matches!(
            out,
            Some(ServerOutcome::Reject(Rejection { status: 431, .. }))
        ));
        let mut s = ServerHandshake::new(limits);
        let (_, out) = s.feed(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
        assert!(matches!(
            out,
            Some(ServerOutcome::Reject(Rejection { status: 431, .. }))
        ));
        // Within limits, fed one byte at a time, with the head ending exactly at the limit.
        let req = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n";
        let mut s = ServerHandshake::new(HandshakeLimits {
            max_header_bytes: req.len(),
            max_headers: 2,
        });
        let mut got = None;
        for b in req {
            let (n, out) = s.feed(core::slice::from_ref(b));
            assert_eq!(n, 1);
            got = got.or(out);
        }
        assert!(matches!(got, Some(ServerOutcome::Http(_))));
        assert_eq!(HandshakeLimits::default().max_header_bytes, 8192);
    }

    fn client() -> (ClientHandshake, String) {
        let req = ClientRequest {
            host: "example.com:8080",
            path: "/ws",
            origin: Some("http://example.com"),
            protocols: Some("chat, superchat"),
            cookie: Some("a=b"),
            extra_headers: Some("\r\nX-One: 1\r\nX-Two: 2"),
            version: 0,
            deflate: None,
        };
        let (hs, bytes) =
            ClientHandshake::new(&req, HandshakeLimits::default(), &mut Fixed(0)).unwrap();
        (hs, String::from_utf8(bytes).unwrap())
    }

    fn answer_for(request: &str, extra: &str) -> String {
        let key = request
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap();
        let acc = accept_key(key.as_bytes());
        alloc::format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n{}\r\n",
            core::str::from_utf8(&acc).unwrap(),
            extra
        )
    }

    #[test]
    fn client_request_is_accepted_by_our_server() {
        let (_, req) = client();
        assert!(req.starts_with("GET /ws HTTP/1.1\r\n"));
        assert!(req.contains("\r\nX-One: 1\r\nX-Two: 2\r\n\r\n"));
        assert!(req.contains("\r\nCookie: a=b\r\n"));
        // Key from the random source: 16 bytes 0..15.
        assert!(req.contains("Sec-WebSocket-Key: AAECAwQFBgcICQoLDA0ODw==\r\n"));
        let ServerOutcome::Upgrade(up) = server_outcome(&req) else {
            panic!("{req}")
        };
        assert_eq!(up.request.cookie(), Some("a=b"));
        assert_eq!(up.request.header("x-two"), Some("2"));
    }

    #[test]
    fn client_validates_the_answer() {
        let (_, req) = client();
        let ok = answer_for(&req, "Sec-WebSocket-Protocol: superchat\r\n");
        type Answer<'a> = Result<(Option<&'a str>, bool), HandshakeError>;
        let cases: Vec<(String, Answer<'_>)> = vec![
            (ok.clone(), Ok((Some("superchat"), false))),
            (answer_for(&req, ""), Ok((None, false))),
            (
                ok.replace("101 Switching Protocols", "403 Forbidden"),
                Err(HandshakeError::Status(403)),
            ),
            (
                ok.replace("Upgrade: websocket\r\n", ""),
                Err(HandshakeError::BadHeader("Upgrade")),
            ),
            (
                ok.replace("Connection: Upgrade", "Connection: close"),
                Err(HandshakeError::BadHeader("Connection")),
            ),
            (
                ok.replace("Accept: ", "Accept: x"),
                Err(HandshakeError::AcceptMismatch),
            ),
            // Upstream nopoll servers answer with a subprotocol of their
            // own; like upstream clients we keep what they said, flagged.
            (
                answer_for(&req, "Sec-WebSocket-Protocol: chat-response\r\n"),
                Ok((Some("chat-response"), true)),
            ),
            (
                answer_for(&req, "Sec-WebSocket-Protocol: chat, superchat\r\n"),
                Ok((Some("chat, superchat"), true)),
            ),
            (
                answer_for(&req, "Sec-WebSocket-Extensions: permessage-deflate\r\n"),
                Err(HandshakeError::UnofferedExtension),
            ),
            (
                "garbage\r\n\r\n".to_string(),
                Err(HandshakeError::Malformed("bad status line")),
            ),
        ];
        for (answer, expect) in cases {
            let (mut hs, _) = client();
            let got = hs.feed(answer.as_bytes()).map(|(_, r)| {
                let r = r.unwrap();
                (r.protocol, r.unoffered_protocol)
            });
            assert_eq!(
                got.as_ref()
                    .map(|(p, u)| (p.as_deref(), *u))
                    .map_err(Clone::clone),
                expect,
                "{answer:?}"
            );
        }
        // A subprotocol answer when none was offered is kept, flagged.
        let plain = ClientRequest {
            host: "h",
            ..Default::default()
        };
        let (mut hs, req) =
            ClientHandshake::new(&plain, HandshakeLimits::default(), &mut Fixed(9)).unwrap();
        let req = String::from_utf8(req).unwrap();
        let ans = answer_for(&req, "Sec-WebSocket-Protocol: chat\r\n");
        let resp = hs.feed(ans.as_bytes()).unwrap().1.unwrap();
        assert_eq!(
            (resp.protocol.as_deref(), resp.unoffered_protocol),
            (Some("chat"), true)
        );
    }

    #[test]
    fn client_answer_in_pieces_leaves_frames() {
        let (mut hs, req) = client();
        let mut data = answer_for(&req, "").into_bytes();
        let head_len = data.len();
        data.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
        let mut pos = 0;
        let mut resp = None;
        while resp.is_none() {
            let end = (pos + 3).min(data.len());
            let (n, r) = hs.feed(&data[pos..end]).unwrap();
            pos += n;
            resp = r;
        }
        assert_eq!(pos, head_len);
    }

    #[test]
    fn client_refuses_injection() {
        let bad = [
            ClientRequest {
                host: "h\r\nX: y",
                ..Default::default()
            },
            ClientRequest {
                host: "",
                ..Default::default()
            },
            ClientRequest {
                host: "h",
                path: "/a b",
                ..Default::default()
            },
            ClientRequest {
                host: "h",
                origin: Some("o\n"),
                ..Default::default()
            },
            ClientRequest {
                host: "h",
                cookie: Some("a=\u{1}"),
                ..Default::default()
            },
            ClientRequest {
                host: "h",
                extra_headers: Some("\r\nNoColon"),
                ..Default::default()
            },
            ClientRequest {
                host: "h",
                extra_headers: Some("\r\nA: 1\r\n\r\nB: 2"),
                ..Default::default()
            },
        ];
        for req in bad {
            assert!(
                ClientHandshake::new(&req, HandshakeLimits::default(), &mut Fixed(0)).is_err(),
                "{req:?}"
            );
        }
    }
}
