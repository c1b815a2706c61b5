"""Interop with Python `websockets` (PyPI), an independent RFC 6455
implementation, in both directions:

  websockets client  ->  c-examples/echo-listener, tests/peers/c_peer_server
  websockets server  ->  tests/peers/c_peer_client

Text, binary, fragmented messages, 1 MiB messages, pings both ways and every
sendable close code (with reasons) both ways, the code checked on the side
that receives it. All on 127.0.0.1.
"""
import asyncio
import os
import random
import re

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Opcode

from conftest import binary

MIB = 1024 * 1024
OPTS = dict(max_size=8 * MIB, compression=None, ping_interval=None, open_timeout=10, close_timeout=10)
# Every close code an endpoint may send (RFC 6455 7.4.1, plus one of each
# private range); 1004-1006 and 1015 are never sent on the wire.
CLOSE_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999]


def reason_for(code):
    return "reason %d \u2713" % code   # non-ASCII on purpose (UTF-8 in the close frame)


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def random_text(n_bytes, seed):
    """About n_bytes of UTF-8 with 1- to 4-byte characters."""
    rnd = random.Random(seed)
    alphabet = "abcxyz 019\u00e9\u00df\u03bb\u0416\u4e2d\u6587\u2713\U0001f600\U0001d11e"
    out, size = [], 0
    while size < n_bytes:
        ch = rnd.choice(alphabet)
        out.append(ch)
        size += len(ch.encode())
    return "".join(out)


# ------------------------------------------------------------ our server

def test_text_and_binary_roundtrip(echo_listener):
    async def go():
        async with connect(echo_listener, **OPTS) as ws:
            for msg in ["hello", "", "h\u00e9llo \u2713 \U0001f600", bytes(range(256)), b"", b"\x00" * 125]:
                await ws.send(msg)
                got = await ws.recv()
                assert type(got) is type(msg) and got == msg
    run(go())


def test_fragmented_messages(echo_listener):
    async def go():
        async with connect(echo_listener, **OPTS) as ws:
            await ws.send(["frag-1|", "frag-2|", "\u2713"])           # 3 text frames
            assert await ws.recv() == "frag-1|frag-2|\u2713"
            await ws.send([b"\x01\x02", b"", b"\x03" * 70000])      # 3 binary frames, one empty
            assert await ws.recv() == b"\x01\x02" + b"\x03" * 70000
            # UTF-8 character split across two fragments
            smile = "\U0001f600".encode()
            await ws.send([smile[:2], smile[2:]], text=True)
            assert await ws.recv() == "\U0001f600"
            # many small fragments
            parts = ["%04d," % i for i in range(1000)]
            await ws.send(parts)
            assert await ws.recv() == "".join(parts)
    run(go())


def test_1mib_messages(echo_listener):
    async def go():
        async with connect(echo_listener, **OPTS) as ws:
            data = os.urandom(MIB)
            await ws.send(data)
            assert await ws.recv() == data
            text = random_text(MIB, 1)
            await ws.send(text)
            assert await ws.recv() == text
            # fragmented 1 MiB (16 frames of 64 KiB)
            await ws.send([data[i:i + 65536] for i in range(0, MIB, 65536)])
            assert await ws.recv() == data
    run(go())


def test_server_answers_pings(echo_listener):
    async def go():
        async with connect(echo_listener, **OPTS) as ws:
            for payload in [b"nopoll-ping", b"", os.urandom(125)]:
                waiter = await ws.ping(payload)
                # websockets resolves the waiter only on a pong with the same payload
                await asyncio.wait_for(waiter, 5)
            await ws.send("after pings")
            assert await ws.recv() == "after pings"
    run(go())


@pytest.mark.parametrize("code", CLOSE_CODES)
def test_client_close_code_seen_by_our_server(peer_server, code):
    url, server = peer_server

    async def go():
        ws = await connect(url, **OPTS)
        await ws.send("hi")
        assert await ws.recv() == "hi"
        await ws.close(code, reason_for(code))
        return ws
    ws = run(go())
    # our server answered the close handshake with the same status
    assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == code
    m = server.wait_line(r"^closed \d+ %d (.*)$" % code, timeout=10)
    assert m.group(1) == reason_for(code)


@pytest.mark.parametrize("code", CLOSE_CODES)
def test_our_server_close_code_seen_by_client(peer_server, code):
    url, server = peer_server

    async def go():
        async with connect(url, **OPTS) as ws:
            await ws.send("close %d %s" % (code, reason_for(code)))
            with pytest.raises(ConnectionClosed) as e:
                await ws.recv()
            return e.value
    exc = run(go())
    assert exc.rcvd is not None, "no close frame from our server"
    assert exc.rcvd.code == code
    assert exc.rcvd.reason == reason_for(code)


# ------------------------------------------------------------ our client

class RecordingConnection(ServerConnection):
    """Records every frame the C client sends (to see fragments and pings)."""

    def process_event(self, event):
        if self.request is not None:
            self.frames.append((event.opcode, event.fin, len(event.data)))
        super().process_event(event)

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.frames = []


async def with_server(handler, client_args, timeout=30):
    """Runs a websockets server and the C client against it; returns
    (client exit status, client output lines, connections)."""
    conns = []

    async def wrapped(ws):
        conns.append(ws)
        try:
            await handler(ws)
        except ConnectionClosed:
            pass

    async with serve(wrapped, "127.0.0.1", 0, create_connection=RecordingConnection, **{
            k: v for k, v in OPTS.items() if k != "open_timeout"}) as srv:
        port = str(srv.sockets[0].getsockname()[1])
        p = await asyncio.create_subprocess_exec(
            binary("c_peer_client"), port, *client_args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(p.communicate(), timeout)
        except asyncio.TimeoutError:
            p.kill()
            out, _ = await p.communicate()
            raise AssertionError("c_peer_client timed out; output:\n" + out.decode(errors="replace"))
        # let the handlers see the close
        for ws in conns:
            await asyncio.wait_for(ws.wait_closed(), 10)
    return p.returncode, out.decode(errors="replace").splitlines(), conns


async def echo(ws):
    async for msg in ws:
        await ws.send(msg)


def test_our_client_sends_everything_and_closes():
    rc, lines, conns = run(with_server(echo, ["/script", "script", "3000", "script done \u2713"]), 60)
    assert rc == 0, "\n".join(lines)
    for name in ["text", "binary", "fragmented-text", "fragmented-binary", "binary-1MiB",
                 "text-1MiB", "ping-sent", "text-after-ping"]:
        assert "ok " + name in lines, "\n".join(lines)
    assert "done 0" in lines
    (ws,) = conns
    # the fragmented messages went out as 3 frames each
    frames = ws.frames
    for first in (Opcode.TEXT, Opcode.BINARY):
        i = next(i for i, f in enumerate(frames) if f[0] == first and not f[1])
        assert [f[:2] for f in frames[i:i + 3]] == [(first, False), (Opcode.CONT, False), (Opcode.CONT, True)]
    assert any(f[0] == Opcode.PING for f in frames), "the C client's ping did not arrive"
    assert ws.close_code == 3000 and ws.close_reason == "script done \u2713"


@pytest.mark.parametrize("code", CLOSE_CODES)
def test_our_client_close_code_seen_by_server(code):
    rc, lines, conns = run(with_server(echo, ["/close", "close", str(code), reason_for(code)]))
    assert rc == 0, "\n".join(lines)
    (ws,) = conns
    assert ws.close_code == code
    assert ws.close_reason == reason_for(code)


@pytest.mark.parametrize("code", CLOSE_CODES)
def test_server_close_code_seen_by_our_client(code):
    async def handler(ws):
        await ws.send("before close")
        assert await ws.recv() == "before close"
        await ws.close(code, reason_for(code))
    rc, lines, conns = run(with_server(handler, ["/x", "echo"]))
    assert rc == 0, "\n".join(lines)
    assert "closed %d %s" % (code, reason_for(code)) in lines, "\n".join(lines)


def test_server_sends_fragments_big_messages_and_pings_to_our_client():
    async def handler(ws):
        # our client answers pings while it waits for messages
        for payload in [b"srv-ping", b""]:
            waiter = await ws.ping(payload)
            await asyncio.wait_for(waiter, 5)
        await ws.send(["one|", "two|", "three"])
        assert await ws.recv() == "one|two|three"
        await ws.send([b"\xff" * 10, b"\x00" * 100000])
        assert await ws.recv() == b"\xff" * 10 + b"\x00" * 100000
        data = os.urandom(MIB)
        await ws.send(data)
        assert await ws.recv() == data
        text = random_text(MIB, 2)
        await ws.send(text)
        assert await ws.recv() == text
        await ws.close(1000, "all good")
    rc, lines, conns = run(with_server(handler, ["/serverdriven", "echo"]), 60)
    assert rc == 0, "\n".join(lines)
    assert "closed 1000 all good" in lines, "\n".join(lines)
    (ws,) = conns
    # the handler's assertions ran to the end: it closed with 1000 itself
    assert ws.close_code == 1000


def test_server_greets_and_closes_at_once():
    """The 101 reply, a message and the close can reach our client in one read."""
    async def handler(ws):
        await ws.send("greeting")
        await ws.close(4000, "bye")
    rc, lines, conns = run(with_server(handler, ["/greet", "echo"]))
    assert rc == 0, "\n".join(lines)
    assert any(re.fullmatch(r"closed 4000 bye", ln) for ln in lines), "\n".join(lines)


# ------------------------------------------------------------ keepalive

@pytest.fixture
def keepalive_server(procs):
    """tests/peers/c_peer_server with a 200 ms keepalive: (url, proc)."""
    pr = procs.start([binary("c_peer_server"), "0", "200"])
    m = pr.wait_line(r"^ready (\d+)$")
    return "ws://127.0.0.1:%s/" % m.group(1), pr


def test_keepalive_keeps_a_reading_client_and_drops_one_that_stops_answering(keepalive_server):
    """Our server pings idle connections (nopoll_ctx_set_keepalive); the
    client's own pings are off (ping_interval=None), so only the server's
    pings and the client's automatic pongs keep it alive. A client that
    stops reading stops answering: the server closes it (on_close, 1006),
    and the other client is untouched."""
    url, pr = keepalive_server

    async def go():
        async with connect(url, **OPTS) as live, connect(url, **OPTS) as dead:
            # Idle for several ping intervals while reading: pinged and
            # answered, both stay open.
            await asyncio.sleep(1.2)
            for ws in (live, dead):
                await ws.send("after idle")
                assert await ws.recv() == "after idle"
            assert not [l for l in pr.lines if l.startswith("closed")]
            # The dead one stops reading: no pong goes back.
            dead.transport.pause_reading()
            loop = asyncio.get_running_loop()
            m = await loop.run_in_executor(None, lambda: pr.wait_line(r"^closed \d+ (\d+)", timeout=20))
            assert m.group(1) == "1006"
            await live.send("still served")
            assert await live.recv() == "still served"
            dead.transport.resume_reading()
        closed = [l for l in pr.lines if l.startswith("closed")]
        assert closed[0].split()[2] == "1006"
    run(go(), timeout=60)
