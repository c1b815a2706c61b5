#!/usr/bin/env python3
"""Kernel-side WebSocket client (Python `websockets`) for tests/lwip/run_tap.sh.

Runs inside the script's private network namespace only, against our C API
echo server (lwip-demo tap-server) running on lwIP over a tap:

  tap_peer.py HOST PORT

Checks: handshake, text and binary echo up to 64 KiB, a fragmented message,
ping/pong, 8 connections at once, the server's close code (4003) and our
close code (4001, checked by the script in the server's output), then sends
"cmd:quit" to end the server. One line per check; exit status 0 when all
passed.
"""
import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

OPTS = dict(max_size=1 << 20, compression=None, ping_interval=None, open_timeout=10, close_timeout=10)

results = []


def check(ok, name, detail=""):
    results.append(bool(ok))
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, ": " + detail if detail else ""), flush=True)


def payload(n, seed, text):
    if text:
        return "".join(chr(ord("a") + (i * 7 + seed) % 26) for i in range(n))
    return bytes((i * 31 + seed * 17 + (i >> 8)) & 0xFF for i in range(n))


async def echoes(uri):
    async with connect(uri + "/echo", **OPTS) as ws:
        check(True, "handshake with the lwIP server", "%s:%d -> %s:%d" % (ws.local_address[:2] + ws.remote_address[:2]))
        sizes = [0, 1, 125, 126, 127, 1000, 1460, 4096, 65535, 65536]
        bad = []
        for text in (True, False):
            for i, n in enumerate(sizes):
                msg = payload(n, i, text)
                await ws.send(msg)
                got = await asyncio.wait_for(ws.recv(), 10)
                if type(got) is not type(msg) or got != msg:
                    bad.append(("text" if text else "binary", n))
        check(not bad, "text and binary echo 0 B .. 64 KiB", "%d messages" % (2 * len(sizes)) if not bad else "wrong: %r" % bad)
        utf8 = "h\u00e9llo w\u00f6rld \u2713 lwIP \U0001f680"
        await ws.send(utf8)
        got = await asyncio.wait_for(ws.recv(), 10)
        check(got == utf8, "UTF-8 text echo", got)
        await ws.send(["Hello, ", "lwIP ", "world"])     # one message, three frames
        got = await asyncio.wait_for(ws.recv(), 10)
        check(got == "Hello, lwIP world", "fragmented text echo", repr(got))
        big = [payload(20000, 1, False), payload(20000, 2, False), payload(25536, 3, False)]
        await ws.send(big)
        got = await asyncio.wait_for(ws.recv(), 10)
        check(got == b"".join(big), "fragmented binary echo (64 KiB in 3 frames)", "%d bytes" % len(got))
        pong = await ws.ping(b"tap")
        latency = await asyncio.wait_for(pong, 10)
        check(True, "ping answered by a pong", "%.2f ms" % (latency * 1000))


async def many(uri, n):
    async def one(i):
        async with connect(uri + "/many", **OPTS) as ws:
            msg = payload(1000 + i * 4096, i, False)
            await ws.send(msg)
            return await asyncio.wait_for(ws.recv(), 20) == msg
    oks = await asyncio.gather(*(one(i) for i in range(n)))
    check(all(oks), "%d connections at once all echo" % n, "%d of %d" % (sum(oks), n))


async def close_codes(uri):
    async with connect(uri + "/echo", **OPTS) as ws:
        await ws.send("cmd:close 4003 server bye")
        try:
            await asyncio.wait_for(ws.recv(), 10)
            check(False, "close code server -> client", "got a message instead")
        except ConnectionClosed as e:
            rcvd = e.rcvd
            check(rcvd is not None and rcvd.code == 4003 and rcvd.reason == "server bye",
                  "close code server -> client (nopoll_conn_close_ext 4003)",
                  "received %s" % (rcvd,))
    ws = await connect(uri + "/close-me", **OPTS)
    await ws.close(4001, "client bye")
    check(ws.close_code == 4001, "close code client -> server sent", "close handshake done, server echoed %s" % ws.close_code)


async def quit_server(uri):
    async with connect(uri + "/quit", **OPTS) as ws:
        await ws.send("cmd:quit")
        try:
            await asyncio.wait_for(ws.recv(), 10)
        except ConnectionClosed as e:
            check(e.rcvd is not None and e.rcvd.code == 1000, "cmd:quit: the server closes with 1000", "received %s" % (e.rcvd,))


async def main(host, port):
    uri = "ws://%s:%d" % (host, port)
    for step in (echoes(uri), many(uri, 8), close_codes(uri)):
        try:
            await asyncio.wait_for(step, 60)
        except Exception as e:      # a failed step must not hide the next ones
            check(False, "step raised", "%s: %s" % (type(e).__name__, e))
    try:
        await asyncio.wait_for(quit_server(uri), 10)
    except Exception as e:
        check(False, "cmd:quit", "%s: %s" % (type(e).__name__, e))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    print("tap peer: %d passed, %d failed" % (results.count(True), results.count(False)))
    sys.exit(0 if results and all(results) else 1)
