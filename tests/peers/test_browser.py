"""Headless Chromium (Debian's /usr/bin/chromium) against our C echo-listener.

A page served by a Python http.server on another loopback port sends a
1 MiB binary message and a 100 KiB text message (multi-byte UTF-8) to the
echo-listener and checks both come back byte for byte; it writes the
verdict into document.title, read back over the DevTools protocol (spoken
with `websockets`). No browser is downloaded: without chromium the test is
skipped (tests/peers/run.sh installs it with NOPOLL_INSTALL_DEPS=1).

A second page talks to an echo-listener with permessage-deflate on
(ECHO_DEFLATE=1; Chromium offers it on every connection): it checks the
extension was negotiated (WebSocket.extensions) and round-trips JSON-like
text (compressible), random binary (incompressible), an empty and a 1 MiB
message, three rounds on one connection (context takeover).
"""
import asyncio
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import pytest
from websockets.asyncio.client import connect

CHROMIUM = os.environ.get("NOPOLL_CHROMIUM", "/usr/bin/chromium")

PAGE = r"""<!doctype html>
<html><head><meta charset="utf-8"><title>running</title></head><body>
<pre id="log"></pre>
<script>
const WS_URL = "%(ws_url)s";
function log(s) { document.getElementById("log").textContent += s + "\n"; }
function done(verdict) { log(verdict); document.title = verdict; }

// 1 MiB of random bytes (getRandomValues fills at most 64 KiB per call)
const bin = new Uint8Array(1024 * 1024);
for (let i = 0; i < bin.length; i += 65536) crypto.getRandomValues(bin.subarray(i, i + 65536));
// ~100 KiB of text with 1- to 4-byte UTF-8 characters
const alphabet = ["a", "Z", "0", " ", "\u00e9", "\u00df", "\u03bb", "\u0416", "\u4e2d", "\u2713", "\u{1F600}", "\u{1D11E}"];
let text = "", bytes = 0;
for (let i = 0; bytes < 100 * 1024; i++) {
  const ch = alphabet[(i * 7 + (i >> 3)) %% alphabet.length];
  text += ch; bytes += new TextEncoder().encode(ch).length;
}

const ws = new WebSocket(WS_URL);
ws.binaryType = "arraybuffer";
const got = [];
const timer = setTimeout(() => done("FAIL timeout after " + got.length + " echo(es)"), 20000);
ws.onopen = () => { log("open"); ws.send(bin); ws.send(text); };
ws.onerror = () => log("error event");
ws.onclose = (e) => { if (got.length < 2) done("FAIL closed early code=" + e.code); };
ws.onmessage = (e) => {
  got.push(e.data);
  if (got.length < 2) return;
  clearTimeout(timer);
  const [b, t] = got;
  if (!(b instanceof ArrayBuffer)) return done("FAIL first echo is not binary");
  const echoed = new Uint8Array(b);
  if (echoed.length !== bin.length) return done("FAIL binary length " + echoed.length);
  for (let i = 0; i < bin.length; i++)
    if (echoed[i] !== bin[i]) return done("FAIL binary differs at " + i);
  if (typeof t !== "string") return done("FAIL second echo is not text");
  if (t !== text) return done("FAIL text differs (" + t.length + " vs " + text.length + " UTF-16 units)");
  ws.close(1000, "done");
  done("PASS binary=" + bin.length + " text=" + bytes);
};
</script></body></html>
"""


DEFLATE_PAGE = r"""<!doctype html>
<html><head><meta charset="utf-8"><title>running</title></head><body>
<pre id="log"></pre>
<script>
const WS_URL = "%(ws_url)s";
function log(s) { document.getElementById("log").textContent += s + "\n"; }
function done(verdict) { log(verdict); document.title = verdict; }

function json(n, seed) {
  const a = [];
  for (let i = 0; i < n; i++) a.push({id: i, sensor: "temp-" + (i %% 7), value: (i * seed) %% 1000 / 10, ok: i %% 3 != 0});
  return JSON.stringify(a) + " \u2713\u{1F600}";
}
function random(n) {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  return b;
}
const sent = [];
for (let r = 1; r <= 3; r++) sent.push(json(2000, r), random(100000), "", random(1024 * 1024), json(20000, r));

const ws = new WebSocket(WS_URL);
ws.binaryType = "arraybuffer";
let next = 0;
const timer = setTimeout(() => done("FAIL timeout after " + next + " echo(es)"), 30000);
ws.onopen = () => {
  log("open, extensions: " + ws.extensions);
  if (!ws.extensions.startsWith("permessage-deflate")) { clearTimeout(timer); return done("FAIL not negotiated: '" + ws.extensions + "'"); }
  ws.send(sent[0]);
};
ws.onerror = () => log("error event");
ws.onclose = (e) => { if (next < sent.length) done("FAIL closed early code=" + e.code); };
ws.onmessage = (e) => {
  const want = sent[next];
  if (typeof want === "string") {
    if (e.data !== want) { clearTimeout(timer); return done("FAIL text " + next + " differs"); }
  } else {
    const got = new Uint8Array(e.data);
    if (got.length !== want.length) { clearTimeout(timer); return done("FAIL binary " + next + " length " + got.length); }
    for (let i = 0; i < want.length; i++)
      if (got[i] !== want[i]) { clearTimeout(timer); return done("FAIL binary " + next + " differs at " + i); }
  }
  next++;
  if (next < sent.length) return ws.send(sent[next]);
  clearTimeout(timer);
  ws.close(1000, "done");
  done("PASS deflate messages=" + next + " extensions=" + ws.extensions);
};
</script></body></html>
"""


class PageServer:
    """Serves PAGE on http://127.0.0.1:<free port>/echo.html in a thread."""

    def __init__(self, body):
        data = body.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/echo.html":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/echo.html" % self.httpd.server_address[1]
        self.t = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.t.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.t.join(5)


async def read_title(user_data_dir, page_url, timeout):
    """Waits for chromium's DevTools endpoint, then polls document.title of
    the page until it is a verdict (PASS.../FAIL...) or `timeout` passes."""
    end = time.monotonic() + timeout
    port_file = os.path.join(user_data_dir, "DevToolsActivePort")
    while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
        if time.monotonic() > end:
            raise AssertionError("chromium did not open its DevTools port")
        await asyncio.sleep(0.1)
    port, browser_path = open(port_file).read().split("\n")[:2]
    async with connect("ws://127.0.0.1:%s%s" % (port, browser_path), max_size=None,
                       ping_interval=None) as cdp:
        ids = iter(range(1, 1 << 30))

        async def call(method, session=None, **params):
            msg = {"id": next(ids), "method": method, "params": params}
            if session:
                msg["sessionId"] = session
            await cdp.send(json.dumps(msg))
            while True:
                r = json.loads(await cdp.recv())
                if r.get("id") == msg["id"]:
                    if "error" in r:
                        raise AssertionError("%s: %s" % (method, r["error"]))
                    return r["result"]

        title = ""
        while time.monotonic() < end:
            targets = (await call("Target.getTargets"))["targetInfos"]
            page = [t for t in targets if t["type"] == "page" and t["url"] == page_url]
            if page:
                title = page[0]["title"]
                if title.startswith(("PASS", "FAIL")):
                    if title.startswith("FAIL"):
                        # fetch the page's log for the report
                        s = (await call("Target.attachToTarget", targetId=page[0]["targetId"],
                                        flatten=True))["sessionId"]
                        r = await call("Runtime.evaluate", session=s,
                                       expression="document.getElementById('log').textContent")
                        title += " | log: " + r["result"].get("value", "")
                    return title
            await asyncio.sleep(0.2)
        return "no verdict within %ds (title %r)" % (timeout, title)


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                    reason="chromium not installed (%s); run tests/peers/run.sh with "
                           "NOPOLL_INSTALL_DEPS=1 to apt-get install it" % CHROMIUM)
def test_chromium_round_trips_1mib_binary_and_100kib_text(echo_listener):
    run_page(PAGE % {"ws_url": echo_listener})


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                    reason="chromium not installed (%s); run tests/peers/run.sh with "
                           "NOPOLL_INSTALL_DEPS=1 to apt-get install it" % CHROMIUM)
def test_chromium_permessage_deflate(deflate_listener):
    run_page(DEFLATE_PAGE % {"ws_url": deflate_listener})


def run_page(body):
    """Opens `body` in headless chromium; asserts its verdict is PASS."""
    page = PageServer(body)
    profile = tempfile.mkdtemp(prefix="nopoll-chromium-")
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--user-data-dir=" + profile, "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0", page.url]
    log = open(os.path.join(profile, "chromium.log"), "w+")
    browser = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        verdict = asyncio.run(asyncio.wait_for(read_title(profile, page.url, 40), 50))
    finally:
        # chromium runs helper processes in its session: stop the whole group
        try:
            os.killpg(browser.pid, 15)
            browser.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(browser.pid, 9)
            except ProcessLookupError:
                pass
            browser.wait(5)
        page.close()
        log.seek(0)
        tail = log.read()[-2000:]
        log.close()
        shutil.rmtree(profile, ignore_errors=True)
    assert verdict.startswith("PASS"), "%s\nchromium output:\n%s" % (verdict, tail)
