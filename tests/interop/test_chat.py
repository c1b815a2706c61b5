"""The C chat server (c-examples/chat-server.c) against Python clients.

Python's `websockets` library is an independent RFC 6455 implementation: if
it and the C server built on our library agree, the wire format is right.
Every wait is bounded (asyncio.wait_for); the fixture always stops the server.
"""

import asyncio
import signal
import socket
import urllib.error
import urllib.request

import pytest
import websockets
from websockets.asyncio.client import connect

STEP = 5.0  # seconds any single expected event may take


def run(coro, timeout=30.0):
    """Runs an async test body with an overall time limit."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def recv(ws, timeout=STEP):
    return await asyncio.wait_for(ws.recv(), timeout)


async def expect_all(clients, text):
    """Every client receives exactly `text` as its next message."""
    got = await asyncio.gather(*(recv(ws) for ws in clients))
    assert got == [text] * len(clients)


def http_get(url):
    """(status, content type, body) of a GET, 4xx/5xx included."""
    try:
        with urllib.request.urlopen(url, timeout=STEP) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers.get("Content-Type", ""), e.read()


# -- HTTP ------------------------------------------------------------------

def test_get_root_serves_the_chat_page(chat_server):
    status, ctype, body = http_get(chat_server.http_url("/"))
    assert status == 200
    assert ctype.split(";")[0].strip() == "text/html"
    page = body.decode("utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>nopoll chat</title>" in page
    assert "(location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/chat'" in page
    for element in ("id='messages'", "id='msg'", "id='send'"):
        assert element in page
    # A query string does not change the page.
    assert http_get(chat_server.http_url("/?room=1"))[2] == body


@pytest.mark.parametrize("path", ["/nope", "/chat", "/index.htm", "/a/b/c?x=1"])
def test_other_paths_are_404(chat_server, path):
    status, _, _ = http_get(chat_server.http_url(path))
    assert status == 404


def test_websocket_only_on_chat_path(chat_server):
    async def body():
        with pytest.raises(websockets.exceptions.InvalidStatus) as err:
            async with connect(chat_server.ws_url("/elsewhere"), open_timeout=STEP):
                pass
        assert err.value.response.status_code == 403
    run(body())
    chat_server.wait_for(r"refused a WebSocket for /elsewhere")


def test_refusal_log_does_not_echo_control_characters(chat_server):
    request = (b"GET /\x1b[31mred HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               b"Sec-WebSocket-Version: 13\r\n\r\n")
    with socket.create_connection(("127.0.0.1", chat_server.port), timeout=STEP) as s:
        s.sendall(request)
        reply = s.recv(4096)
    # The library may refuse the request line itself (400) or let the
    # server's on_open refuse the path (403); either way no terminal escape
    # reaches the log.
    assert reply.split(b"\r\n", 1)[0] in (b"HTTP/1.1 400 Bad Request", b"HTTP/1.1 403 Forbidden")
    if reply.startswith(b"HTTP/1.1 403"):
        chat_server.wait_for(r"refused a WebSocket for /\?\[31mred$")
    assert "\x1b" not in chat_server.output()


# -- chat --------------------------------------------------------------------

def test_message_reaches_every_client_including_sender(chat_server):
    async def body():
        async with connect(chat_server.ws_url()) as a, connect(chat_server.ws_url()) as b:
            await a.send("hello from a")
            await expect_all([a, b], "hello from a")
            await b.send("hello from b")
            await expect_all([a, b], "hello from b")
            # Each message arrived once: the next thing anyone gets is this.
            await a.send("marker")
            await expect_all([a, b], "marker")
    run(body())
    chat_server.wait_for(r"client \d+ joined from 127\.0\.0\.1:\d+ \(2 online\)")


def test_utf8_text_survives(chat_server):
    texts = [
        "héllo wörld, ça va ?",
        "日本語のテキスト、中文，한국어",
        "emoji 🎉🚀 and symbols ✓ € ∞",
        "nul\x00inside and \ttabs\nnewlines",
        "",
        "ü" * 30000,  # 60000 bytes: 16-bit extended length
    ]

    async def body():
        async with connect(chat_server.ws_url()) as a, connect(chat_server.ws_url()) as b:
            for text in texts:
                await b.send(text)
                await expect_all([a, b], text)
    run(body())


def test_binary_is_not_relayed(chat_server):
    async def body():
        async with connect(chat_server.ws_url()) as a, connect(chat_server.ws_url()) as b:
            await a.send(b"\x00\x01binary")
            await a.send("text after binary")
            await expect_all([a, b], "text after binary")
    run(body())


def test_many_messages_arrive_in_order(chat_server):
    count = 300

    async def body():
        async with connect(chat_server.ws_url()) as a, connect(chat_server.ws_url()) as b:
            for i in range(count):
                await a.send(f"message {i}")
            for ws in (a, b):
                got = [await recv(ws) for _ in range(count)]
                assert got == [f"message {i}" for i in range(count)]
    run(body())


def test_clients_leaving_do_not_break_the_others(chat_server):
    async def body():
        a = await connect(chat_server.ws_url())
        b = await connect(chat_server.ws_url())
        polite = await connect(chat_server.ws_url())
        rude = await connect(chat_server.ws_url())
        try:
            await asyncio.to_thread(chat_server.wait_for, r"\(4 online\)")
            await polite.close()                 # close handshake
            rude.transport.abort()               # TCP reset, no close frame
            await asyncio.to_thread(chat_server.wait_for, r"client \d+ left \(2 online\)")
            await a.send("still there?")
            await expect_all([a, b], "still there?")
            # A newcomer joins the remaining room.
            async with connect(chat_server.ws_url()) as c:
                await b.send("welcome c")
                await expect_all([a, b, c], "welcome c")
        finally:
            await a.close()
            await b.close()
    run(body())
    chat_server.wait_for(r"\(0 online\)")
    assert chat_server.running()


def test_oversized_message_closes_only_its_sender(chat_server):
    async def body():
        async with connect(chat_server.ws_url()) as a, connect(chat_server.ws_url()) as b:
            await a.send("x" * (64 * 1024 + 1))  # over the server's 64 KiB limit
            with pytest.raises(websockets.exceptions.ConnectionClosed) as err:
                await recv(a)
            assert err.value.rcvd is not None and err.value.rcvd.code == 1009  # message too big
            await b.send("b is fine")
            assert await recv(b) == "b is fine"
    run(body())
    assert chat_server.running()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_server_cleanly(chat_server, sig):
    async def body():
        async with connect(chat_server.ws_url()) as a:
            await a.send("before stop")
            assert await recv(a) == "before stop"
            chat_server.proc.send_signal(sig)
            with pytest.raises(websockets.exceptions.ConnectionClosed) as err:
                await recv(a)
            assert err.value.rcvd is not None and err.value.rcvd.code == 1001
    run(body())
    assert chat_server.proc.wait(STEP) == 0
    chat_server.wait_for(r"chat-server: bye")
    chat_server.wait_for(r"client \d+ left \(0 online\)")
