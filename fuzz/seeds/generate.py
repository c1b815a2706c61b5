#!/usr/bin/env python3
"""Regenerates the committed seed files (python3 only needed to change them).

Every seed is `[config, N, piece lengths x N] + bytes` (see fuzz/src/lib.rs,
`Input`): `[0, 0]` feeds the bytes whole with default limits.
"""
import base64
import hashlib
import os

HERE = os.path.dirname(os.path.abspath(__file__))
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def seed(target, name, data, config=0, pieces=()):
    os.makedirs(os.path.join(HERE, target), exist_ok=True)
    with open(os.path.join(HERE, target, name), "wb") as f:
        f.write(bytes([config, len(pieces)] + list(pieces)) + data)


def frame(op, payload, fin=True, mask=None):
    b0 = (0x80 if fin else 0) | op
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, m | 127]) + n.to_bytes(8, "big")
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        head += bytes(mask)
    return head + payload


# --- server_handshake: RFC 6455 section 1.3 request and variants
RFC_REQUEST = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
seed("server_handshake", "rfc_request", RFC_REQUEST)
seed("server_handshake", "rfc_request_bytewise", RFC_REQUEST, pieces=[1])
# max_header_bytes 300, max_headers 8, odd cuts
seed("server_handshake", "rfc_request_small_limits", RFC_REQUEST, config=6 | 6 << 3, pieces=[2, 7, 13])
seed("server_handshake", "rfc_request_lf_only", RFC_REQUEST.replace(b"\r\n", b"\n"))
seed("server_handshake", "rfc_request_version_8", RFC_REQUEST.replace(b"Version: 13", b"Version: 8"))
seed("server_handshake", "plain_get", b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n")
seed("server_handshake", "rfc_request_then_frame", RFC_REQUEST + frame(1, b"Hello", mask=[0x37, 0xFA, 0x21, 0x3D]))

# --- client_handshake: the 101 answer for the target's fixed key
KEY = base64.b64encode(bytes(range(16)))
ACCEPT = base64.b64encode(hashlib.sha1(KEY + GUID).digest())
assert ACCEPT == b"Bz3qJYTGdOe8gUSpLosEdiLKDrk="


def answer(extra=b"", status=b"101 Switching Protocols"):
    return (
        b"HTTP/1.1 " + status + b"\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + ACCEPT + b"\r\n" + extra + b"\r\n"
    )


seed("client_handshake", "answer_101", answer())
# offers "chat, superchat" (config bits 0-1 = 2), picks superchat
seed("client_handshake", "answer_101_protocol", answer(b"Sec-WebSocket-Protocol: superchat\r\n"), config=2, pieces=[3, 5, 1])
seed("client_handshake", "answer_101_then_frame", answer() + frame(1, b"Hello"))
seed("client_handshake", "answer_403", answer(status=b"403 Forbidden"))
seed("client_handshake", "answer_extension", answer(b"Sec-WebSocket-Extensions: permessage-deflate\r\n"))

# --- frame decoders: RFC 6455 section 5.7 examples
HELLO = b"Hello"
KEY_5_7 = [0x37, 0xFA, 0x21, 0x3D]
assert frame(1, HELLO, mask=KEY_5_7) == bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
assert frame(1, b"Hel", fin=False) + frame(0, b"lo") == bytes([0x01, 0x03, 0x48, 0x65, 0x6C, 0x80, 0x02, 0x6C, 0x6F])
BIN256 = bytes(range(256))

for target, mask in (("frame_decoder_client", None), ("frame_decoder_server", KEY_5_7)):
    seed(target, "text_hello", frame(1, HELLO, mask=mask))
    seed(target, "text_fragmented", frame(1, b"Hel", fin=False, mask=mask) + frame(0, b"lo", mask=mask))
    seed(target, "ping_hello", frame(9, HELLO, mask=mask))
    seed(target, "pong_hello", frame(10, HELLO, mask=mask))
    seed(target, "binary_256", frame(2, BIN256, mask=mask))
    # 64 KiB binary frame: the header only (longer than -max_len).
    seed(target, "binary_64k_header", frame(2, bytes(65536), mask=mask)[:14 if mask else 10])
    seed(target, "close_1000", frame(8, b"\x03\xe8bye", mask=mask))
    # UTF-8 text cut inside code points, a ping between the fragments,
    # fed in pieces of 1, 2 and 3 bytes with output drained (config 0x40).
    kosme = "κόσμε".encode()
    seed(
        target,
        "mixed_in_pieces",
        frame(1, kosme[:3], fin=False, mask=mask)
        + frame(9, b"", mask=mask)
        + frame(0, kosme[3:], mask=mask)
        + frame(2, b"", mask=mask)
        + frame(8, b"", mask=mask),
        config=0x40,
        pieces=[1, 2, 3],
    )
    # small limits: frames up to 125 bytes, messages up to 200 (config 3 | 4 << 3)
    seed(target, "over_the_limits", frame(2, bytes(126), mask=mask) , config=3 | 4 << 3)
