"""wss:// against independent peers: Python ssl + websockets both ways,
raw TLS sockets for what a library client cannot do (two frames in one
record, garbage, stalls, no close_notify), and openssl s_client probes."""
import asyncio
import os
import random
import socket
import ssl
import struct
import subprocess
import time

import pytest
import websockets

from conftest import binary  # tests/tls/conftest.py


def client_ctx(certs, verify=True, cert=None):
    ctx = ssl.create_default_context(cafile=certs("ca.pem")) if verify else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(certs(cert + ".pem"), certs(cert + ".key"))
    return ctx


async def ws_echo(url, ctx, text, **kw):
    async with websockets.connect(url, ssl=ctx, open_timeout=10, **kw) as ws:
        await ws.send(text)
        return await asyncio.wait_for(ws.recv(), 10)


def masked(opcode, payload):
    mask = b"\x01\x02\x03\x04"
    n = len(payload)
    key = (mask * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + mask + body


def raw_tls(port, certs, rcvbuf=None):
    """A verified TLS socket to our server, upgraded to WebSocket by hand
    (`rcvbuf`: a small receive buffer, set before connecting)."""
    s = socket.socket()
    s.settimeout(10)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    t = client_ctx(certs).wrap_socket(s, server_hostname="localhost")
    t.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = t.recv(1)
        assert chunk, "closed during the upgrade"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return t


def read_frame(t):
    def exact(n):
        b = b""
        while len(b) < n:
            c = t.recv(n - len(b))
            assert c, "closed"
            b += c
        return b
    b0, b1 = exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", exact(8))[0]
    return b0 & 0x0F, exact(n)


def count_lines(pr, text, want, timeout=10.0):
    """How many output lines of `pr` contain `text`, once `want` do (or
    after `timeout`)."""
    end = time.monotonic() + timeout
    while True:
        n = sum(text in ln for ln in pr.output())
        if n >= want or time.monotonic() > end:
            return n
        time.sleep(0.05)


# ------------------------------------------------------------ our server


def test_websockets_client_verifies_our_server(server, certs):
    port, _ = server()
    got = asyncio.run(ws_echo("wss://localhost:%d/" % port, client_ctx(certs), "hello"))
    assert got == "hello"


# The loop reads at most 4 receive buffers per connection and wake-up; with
# 256 bytes (the smallest buffer) most of a record stays inside OpenSSL,
# where readiness never reports it: only the loop's list of connections
# with buffered input serves it (without it these tests hang).
@pytest.mark.parametrize("recv", ["4096", "256"])
def test_two_frames_in_one_record_both_echoed(server, certs, recv):
    """Upstream's test 48: OpenSSL holds the second frame, the socket
    does not signal it again; the loop must serve it anyway."""
    port, _ = server("-recv", recv)
    t = raw_tls(port, certs)
    first = b"f" * 3000
    t.sendall(masked(1, first) + masked(1, b"second"))  # one SSL_write: one record
    assert read_frame(t) == (1, first)
    assert read_frame(t) == (1, b"second")
    t.close()


def echo_16k_record(port, certs):
    t = raw_tls(port, certs)
    payload = bytes(range(256)) * 63 + b"z" * 248  # a 16 KiB frame: one full record
    assert len(masked(2, payload)) == 16384
    t.sendall(masked(2, payload))
    assert read_frame(t) == (2, payload)
    t.close()


@pytest.mark.parametrize("recv", ["4096", "256"])
def test_16k_record_against_small_buffer(server, certs, recv):
    port, _ = server("-recv", recv)
    echo_16k_record(port, certs)


def large_echoes_in_pieces(port, certs):
    """Echoes of 256 KiB and more are encrypted from the handler's buffer
    (no copy into the output queue first); a reader with a small window
    makes those writes short (OpenSSL keeps a record it could not write),
    and the rest must follow from the queue, byte for byte, in order."""
    t = raw_tls(port, certs, rcvbuf=4096)
    rnd = random.Random(20)
    msgs = [rnd.randbytes(n) for n in (1 << 20, 300_007, 1 << 20, 2 << 20)]
    t.sendall(b"".join(masked(2, m) for m in msgs))
    for m in msgs:
        op, got = read_frame(t)
        assert (op, len(got)) == (2, len(m))
        assert got == m
    t.close()


def test_large_echoes_written_in_pieces(server, certs):
    port, _ = server()
    large_echoes_in_pieces(port, certs)


# A program that runs the loop in short calls (nopoll_loop_wait with a
# timeout of 1 us, other work between them): a call may return while
# OpenSSL still holds decrypted bytes, and the next call must serve them
# without waiting for readiness that will not come (without the carried
# list the 16 KiB record never completes: the socket is drained).
@pytest.mark.parametrize("recv", ["256"])
def test_16k_record_served_across_short_loop_calls(server, certs, recv):
    port, _ = server("-recv", recv, "-slice", "1")
    echo_16k_record(port, certs)


def test_mutual_tls(server, certs):
    port, pr = server("-ca", certs("ca.pem"), "-verify")
    url = "wss://localhost:%d/" % port
    assert asyncio.run(ws_echo(url, client_ctx(certs, cert="client"), "mutual")) == "mutual"
    with pytest.raises(Exception):
        asyncio.run(ws_echo(url, client_ctx(certs), "no cert"))
    pr.wait_line(r"TLS handshake failed: .*certificate", timeout=10)


def test_garbage_and_plain_http_refused_server_goes_on(server, certs):
    port, pr = server()
    for junk in (b"\x00" * 64 + b"garbage instead of a ClientHello\r\n\r\n",
                 b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(junk)
        try:  # an alert at most, then the end (or a reset: input left unread)
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass
        s.close()
    pr.wait_line(r"TLS handshake failed", timeout=10)
    assert asyncio.run(ws_echo("wss://localhost:%d/" % port, client_ctx(certs), "still")) == "still"


def test_stalled_handshake_dropped_others_served(server, certs):
    # long enough for the other client's handshakes on a loaded machine
    port, pr = server("-hs-timeout", "3000000")
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, then nothing
    # others are served meanwhile
    assert asyncio.run(ws_echo("wss://localhost:%d/" % port, client_ctx(certs), "busy")) == "busy"
    assert s.recv(100) == b""  # dropped after the handshake timeout
    s.close()
    pr.wait_line(r"handshake timed out", timeout=10)


def test_close_without_close_notify_and_bad_record(server, certs):
    port, pr = server()
    t = raw_tls(port, certs)
    t.sendall(masked(1, b"x"))
    assert read_frame(t) == (1, b"x")
    sock = socket.socket(fileno=os.dup(t.fileno()))
    t.close()  # no unwrap: no close_notify; the duplicate keeps the socket
    sock.close()
    pr.wait_line(r"without close_notify", timeout=10)
    # in the middle of a message: a corrupted record, then a (plaintext)
    # fatal alert: a TLS read error each, logged; the server goes on
    for n, junk in enumerate((b"\x17\x03\x03\x00\x20" + b"\x55" * 32,
                              b"\x15\x03\x03\x00\x02\x02\x28")):
        t = raw_tls(port, certs)
        t.sendall(masked(1, b"y" * 100)[:10])
        fd = socket.socket(fileno=os.dup(t.fileno()))
        fd.sendall(junk)
        fd.close()
        assert count_lines(pr, "TLS read failed", n + 1) == n + 1
        t.close()


def test_version_policy_s_client(server, certs):
    port, _ = server()

    def probe(*args):
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-brief"] + list(args),
                           input=b"", capture_output=True, timeout=30)
        return r.returncode, (r.stdout + r.stderr).decode(errors="replace")

    rc, out = probe("-tls1_2")
    assert "Protocol version: TLSv1.2" in out, out
    rc, out = probe("-tls1_3")
    assert "Protocol version: TLSv1.3" in out, out
    rc, out = probe("-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert "Protocol version: TLSv1.1" not in out and rc != 0, out
    rc, out = probe("-verify_return_error", "-CAfile", certs("ca.pem"), "-verify_hostname", "localhost")
    assert rc == 0 and "Verification: OK" in out, out


def test_sni_picks_the_context_certificate(server, certs):
    port, _ = server("-sni", "alt.test", certs("alt.pem"), certs("alt.key"))

    def subject(name):
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", name],
                           input=b"", capture_output=True, timeout=30)
        return r.stdout.decode(errors="replace")

    assert "s:CN = alt\n" in subject("alt.test")
    out = subject("localhost")
    assert "s:CN = server\n" in out, out


# ------------------------------------------------------------ our client


def run_client(port, *args):
    r = subprocess.run([binary("tls_client"), "127.0.0.1", str(port), "hello"] + list(args),
                       capture_output=True, timeout=60, text=True)
    return r.returncode, r.stdout + r.stderr


class PyServer:
    """A Python websockets wss echo server in a thread."""

    def __init__(self, ctx):
        import threading
        self.ctx = ctx
        self.port = None
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        assert self.ready.wait(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def echo(ws):
            async for m in ws:
                await ws.send(m)

        async def main():
            self.stop = self.loop.create_future()
            async with websockets.serve(echo, "127.0.0.1", 0, ssl=self.ctx) as srv:
                self.port = srv.sockets[0].getsockname()[1]
                self.ready.set()
                await self.stop
        self.loop.run_until_complete(main())

    def close(self):
        self.loop.call_soon_threadsafe(self.stop.set_result, None)
        self.t.join(10)


def server_ctx(certs, cert="server", require_client=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs(cert + ".pem"), certs(cert + ".key"))
    if require_client:
        ctx.load_verify_locations(certs("ca.pem"))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


@pytest.fixture
def pyserver():
    made = []

    def start(ctx):
        s = PyServer(ctx)
        made.append(s)
        return s
    yield start
    for s in made:
        s.close()


def test_our_client_verifies_python_server(pyserver, certs):
    s = pyserver(server_ctx(certs))
    assert run_client(s.port, "-ca", certs("ca.pem"), "-verify", "-name", "localhost")[0] == 0
    # IP literal: checked against the IP SAN, no SNI
    assert run_client(s.port, "-ca", certs("ca.pem"), "-verify")[0] == 0


@pytest.mark.parametrize("cert,why", [
    ("wrongname", "hostname mismatch"),
    ("expired", "certificate has expired"),
    ("self", "self-signed certificate"),
])
def test_our_client_refuses_bad_certificates(pyserver, certs, cert, why):
    s = pyserver(server_ctx(certs, cert=cert))
    rc, out = run_client(s.port, "-ca", certs("ca.pem"), "-verify", "-name", "localhost")
    assert rc == 1 and why in out, out
    # NULL options: verification on too
    rc, out = run_client(s.port, "-null-opts", "-name", "localhost")
    assert rc == 1 and "verification failed" in out, out


def test_weak_key_refused_by_default(pyserver, certs):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.load_cert_chain(certs("weak.pem"), certs("weak.key"))
    s = pyserver(ctx)
    rc, out = run_client(s.port, "-ca", certs("ca.pem"), "-verify", "-name", "localhost")
    assert rc == 1 and "key too weak" in out, out


def test_our_client_mutual_tls(pyserver, certs):
    s = pyserver(server_ctx(certs, require_client=True))
    assert run_client(s.port, "-ca", certs("ca.pem"), "-verify", "-name", "localhost",
                      "-cert", certs("client.pem"), certs("client.key"))[0] == 0
    rc, out = run_client(s.port, "-ca", certs("ca.pem"), "-verify", "-name", "localhost")
    assert rc == 1, out


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated")
def test_tls11_only_when_asked(pyserver, certs):
    ctx = server_ctx(certs)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    s = pyserver(ctx)
    rc, out = run_client(s.port, "-name", "localhost")
    assert rc == 1, out  # TLS 1.2 minimum by default
    rc, out = run_client(s.port, "-name", "localhost", "-proto", "5")  # NOPOLL_METHOD_TLSV1_1
    assert rc == 0, out


def test_chat_demo_over_https_and_wss(procs, certs):
    """`make demo-tls`: the chat server's page over https, its room over wss."""
    pr = procs.start([binary("chat-server"), "0", certs("server.pem"), certs("server.key")])
    port = int(pr.wait_line(r"open https://127\.0\.0\.1:(\d+)/").group(1))
    import urllib.request
    page = urllib.request.urlopen("https://localhost:%d/" % port, context=client_ctx(certs), timeout=10).read()
    assert b"wss://" in page
    got = asyncio.run(ws_echo("wss://localhost:%d/chat" % port, client_ctx(certs), '{"text":"hi"}'))
    assert got == '{"text":"hi"}'


# ------------------------------------------------------------ the C table
# The same programs with TLS by c-examples/tls/nopoll_mbedtls.c, installed
# with nopoll_install_tls_ops (mbedTLS 2.28: TLS 1.2).

mbedtls = pytest.mark.skipif(
    not os.access(os.path.join(os.environ.get("NOPOLL_TLS_BIN", ""), "tls_server_mbedtls"), os.X_OK),
    reason="built without libmbedtls-dev (tests/tls/run.sh)")


@mbedtls
def test_mbedtls_server_verified_by_websockets(procs, certs):
    pr = procs.start([binary("tls_server_mbedtls"), certs("server.pem"), certs("server.key")])
    port = int(pr.wait_line(r"^ready (\d+)$").group(1))
    got = asyncio.run(ws_echo("wss://localhost:%d/" % port, client_ctx(certs), "via mbedtls"))
    assert got == "via mbedtls"


@mbedtls
def test_mbedtls_two_frames_in_one_record_small_buffer(procs, certs):
    """The table's `pending` feeds the loop's buffered-input list."""
    pr = procs.start([binary("tls_server_mbedtls"), certs("server.pem"), certs("server.key"), "-recv", "256"])
    port = int(pr.wait_line(r"^ready (\d+)$").group(1))
    t = raw_tls(port, certs)
    first = b"f" * 3000
    t.sendall(masked(1, first) + masked(1, b"second"))
    assert read_frame(t) == (1, first)
    assert read_frame(t) == (1, b"second")
    t.close()


@mbedtls
def test_mbedtls_large_echoes_written_in_pieces(procs, certs):
    pr = procs.start([binary("tls_server_mbedtls"), certs("server.pem"), certs("server.key")])
    large_echoes_in_pieces(int(pr.wait_line(r"^ready (\d+)$").group(1)), certs)


def run_mbedtls_client(port, *args):
    r = subprocess.run([binary("tls_client_mbedtls"), "127.0.0.1", str(port), "hello"] + list(args),
                       capture_output=True, timeout=60, text=True)
    return r.returncode, r.stdout + r.stderr


@mbedtls
def test_mbedtls_client_verifies_python_server(pyserver, certs):
    s = pyserver(server_ctx(certs))
    rc, out = run_mbedtls_client(s.port, "-ca", certs("ca.pem"), "-verify", "-name", "localhost")
    assert rc == 0, out
    for cert in ("wrongname", "expired", "self"):
        s = pyserver(server_ctx(certs, cert=cert))
        rc, out = run_mbedtls_client(s.port, "-ca", certs("ca.pem"), "-verify", "-name", "localhost")
        assert rc == 1 and "verification failed" in out, (cert, out)


@mbedtls
def test_mbedtls_client_mutual_tls(pyserver, certs):
    s = pyserver(server_ctx(certs, require_client=True))
    rc, out = run_mbedtls_client(s.port, "-ca", certs("ca.pem"), "-verify", "-name", "localhost",
                                 "-cert", certs("client.pem"), certs("client.key"))
    assert rc == 0, out
    rc, out = run_mbedtls_client(s.port, "-ca", certs("ca.pem"), "-verify", "-name", "localhost")
    assert rc == 1, out
