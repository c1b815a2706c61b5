#!/usr/bin/env python3
"""wsping.py HOST PORT: checks that a WebSocket echo server echoes.

Opens a connection (retrying for up to 5 s while the server starts), does
the opening handshake, sends a text and a binary message (masked, as a
client must) and checks each echo. Standard library only; every socket
operation times out after 5 s. Exit status 0 when both came back intact.
"""
import base64
import os
import socket
import struct
import sys
import time


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data


def send_frame(s, opcode, payload):
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
    s.sendall(head + key + masked)


def recv_frame(s):
    b0, b1 = recv_exact(s, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", recv_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(s, 8))[0]
    if b1 & 0x80:
        raise ValueError("server frame is masked")
    return b0 & 0x0F, recv_exact(s, n)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    deadline = time.monotonic() + 5
    while True:
        try:
            s = socket.create_connection((host, port), timeout=5)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += recv_exact(s, 1)
    if not head.startswith(b"HTTP/1.1 101"):
        sys.exit(f"wsping: handshake refused: {head[:40]!r}")
    for opcode, payload in ((1, "héllo".encode()), (2, bytes(range(256)) * 40)):
        send_frame(s, opcode, payload)
        got = recv_frame(s)
        if got != (opcode, payload):
            sys.exit(f"wsping: bad echo for opcode {opcode}")
    send_frame(s, 8, struct.pack("!H", 1000))
    print(f"wsping: {host}:{port} echoed text and binary")


if __name__ == "__main__":
    main()
