"""permessage-deflate (RFC 7692) with Python `websockets`, which compresses
by default, both ways:

  websockets client  ->  c-examples/echo-listener with ECHO_DEFLATE=1
  websockets server  ->  tests/peers/c_peer_client with PEER_DEFLATE=1

Compressible (JSON-like text) and incompressible (random) messages, small,
empty, fragmented and 1 MiB ones, several rounds on one connection
(context takeover), under several negotiated parameter sets: defaults, no
context takeover both ways, small windows both ways (our compressor then
emits only distance-1 matches). All on 127.0.0.1.
"""
import asyncio
import json
import os

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory, PerMessageDeflate, ServerPerMessageDeflateFactory)

from conftest import binary
from test_websockets import MIB, random_text, run

BASE = dict(max_size=8 * MIB, ping_interval=None, close_timeout=10, compression=None)

CLIENT_OFFERS = {
    "default": dict(),
    "no-context-takeover": dict(server_no_context_takeover=True, client_no_context_takeover=True),
    "small-windows": dict(server_max_window_bits=9, client_max_window_bits=10),
}


def json_text(n_records, seed):
    return json.dumps([{"id": i, "sensor": "temp-%d" % (i % 7), "value": (i * seed) % 1000 / 10,
                        "ok": i % 3 != 0} for i in range(n_records)])


def negotiated(ws):
    exts = ws.protocol.extensions
    assert len(exts) == 1 and isinstance(exts[0], PerMessageDeflate), exts
    return exts[0]


@pytest.mark.parametrize("offer", sorted(CLIENT_OFFERS))
def test_websockets_client_with_our_server(deflate_listener, offer):
    factory = ClientPerMessageDeflateFactory(**CLIENT_OFFERS[offer])

    async def go():
        async with connect(deflate_listener, extensions=[factory], open_timeout=10, **BASE) as ws:
            ext = negotiated(ws)
            if offer == "no-context-takeover":
                assert ext.remote_no_context_takeover and ext.local_no_context_takeover
            if offer == "small-windows":
                assert ext.remote_max_window_bits == 9
            for rnd in range(3):
                text = json_text(2000, rnd + 1)               # ~100 KB, compresses well
                noise = os.urandom(200_000)                    # does not compress
                for msg in [text, noise, "hi", "", b"", random_text(MIB, rnd), os.urandom(MIB)]:
                    await ws.send(msg)
                    got = await ws.recv()
                    assert type(got) is type(msg) and got == msg
                parts = [json_text(50, i) for i in range(20)]
                await ws.send(parts)                           # 20 frames, one message
                assert await ws.recv() == "".join(parts)
    run(go(), 60)


def test_our_server_declines_when_off(echo_listener):
    async def go():
        async with connect(echo_listener, open_timeout=10, **{**BASE, "compression": "deflate"}) as ws:
            assert ws.protocol.extensions == []
            await ws.send("plain")
            assert await ws.recv() == "plain"
    run(go())


SERVER_ANSWERS = {
    "default": dict(),
    "no-context-takeover": dict(server_no_context_takeover=True, client_no_context_takeover=True),
    "small-windows": dict(server_max_window_bits=10, client_max_window_bits=9),
}


async def with_deflate_server(handler, client_args, answer, timeout=60):
    conns = []

    async def wrapped(ws):
        conns.append(ws)
        try:
            await handler(ws)
        except ConnectionClosed:
            pass

    factory = ServerPerMessageDeflateFactory(**SERVER_ANSWERS[answer])
    async with serve(wrapped, "127.0.0.1", 0, extensions=[factory], **BASE) as srv:
        port = str(srv.sockets[0].getsockname()[1])
        p = await asyncio.create_subprocess_exec(
            binary("c_peer_client"), port, *client_args,
            env={**os.environ, "PEER_DEFLATE": "1"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(p.communicate(), timeout)
        except asyncio.TimeoutError:
            p.kill()
            out, _ = await p.communicate()
            raise AssertionError("c_peer_client timed out; output:\n" + out.decode(errors="replace"))
        for ws in conns:
            await asyncio.wait_for(ws.wait_closed(), 10)
    return p.returncode, out.decode(errors="replace").splitlines(), conns


async def echo(ws):
    async for msg in ws:
        await ws.send(msg)


@pytest.mark.parametrize("answer", sorted(SERVER_ANSWERS))
def test_our_client_script_with_websockets_server(answer):
    rc, lines, conns = run(with_deflate_server(echo, ["/script", "script", "1000", "bye"], answer), 90)
    assert rc == 0, "\n".join(lines)
    assert "deflate 1" in lines, "\n".join(lines)
    for name in ["text", "binary", "fragmented-text", "fragmented-binary", "binary-1MiB",
                 "text-1MiB", "ping-sent", "text-after-ping"]:
        assert "ok " + name in lines, "\n".join(lines)
    (ws,) = conns
    negotiated(ws)
    assert ws.close_code == 1000


@pytest.mark.parametrize("answer", sorted(SERVER_ANSWERS))
def test_websockets_server_drives_our_client(answer):
    async def handler(ws):
        negotiated(ws)
        for rnd in range(3):
            for msg in [json_text(20_000, rnd + 1), os.urandom(MIB), random_text(300_000, rnd), "x", b""]:
                await ws.send(msg)
                assert await ws.recv() == msg
        await ws.send([json_text(100, 1), os.urandom(10).hex(), json_text(100, 2)])
        assert await ws.recv() is not None
        await ws.close(1000, "deflate ok")
    rc, lines, conns = run(with_deflate_server(handler, ["/serverdriven", "echo"], answer), 90)
    assert rc == 0, "\n".join(lines)
    assert "deflate 1" in lines and "closed 1000 deflate ok" in lines, "\n".join(lines)
