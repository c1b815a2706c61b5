"""The chat page in headless Chromium behind HAProxy (PROXY v2) with two
instances sharing the room through Redis: draining the page's instance
makes the page reconnect by itself, through the balancer, to the other
instance, and lines sent after the reconnection reach both sides.

Playwright drives Debian's /usr/bin/chromium (as tests/interop does);
skipped when either is missing."""

import contextlib
import os
import shutil
import signal
import tempfile
import time

import pytest

from conftest import STEP, Chat, HAProxy, Redis

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STEP_MS = STEP * 1000

if not os.access(CHROMIUM, os.X_OK):
    pytest.skip("chromium not installed (NOPOLL_INSTALL_DEPS=1 tests/interop/run.sh installs it)",
                allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api")
from websockets.sync.client import connect  # noqa: E402

PAGE_JOIN = r"joined from 127[.]0[.]0[.]1:\d+ via 127[.]0[.]0[.]3"


def wait_count(procs, pattern, n):
    """Waits until `pattern` appears `n` times over `procs`; which did."""
    end = time.time() + STEP
    while time.time() < end:
        counts = [p.count(pattern) for p in procs]
        if sum(counts) >= n:
            return counts
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} seen {[p.count(pattern) for p in procs]} times, wanted {n}")


def test_page_moves_to_the_other_instance_when_drained(procs):
    redis = Redis()
    procs.append(redis)
    extra = ["--proxy-protocol", "--trusted", "127.0.0.3"]
    a = Chat("instance-a", redis.port, extra)
    procs.append(a)
    b = Chat("instance-b", redis.port, extra)
    procs.append(b)
    with tempfile.TemporaryDirectory(prefix="nopoll-scale-") as tmp:
        lb = HAProxy([a.port, b.port], tmp)
        procs.append(lb)
        expect = playwright.expect
        with tempfile.TemporaryDirectory(prefix="nopoll-chromium-") as profile, \
                contextlib.ExitStack() as clients, playwright.sync_playwright() as p:
            browser = p.chromium.launch_persistent_context(
                user_data_dir=profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
                timeout=30_000)
            try:
                page = browser.pages[0] if browser.pages else browser.new_page()
                page.goto(f"http://127.0.0.1:{lb.port}/", timeout=STEP_MS)
                expect(page.locator("#status")).to_have_text("online", timeout=STEP_MS)
                counts = wait_count([a, b], PAGE_JOIN, 1)
                here, there = (a, b) if counts[0] else (b, a)
                page.fill("#name", "page")

                # A Python client on the other instance (round robin; retry).
                other = None
                for i in range(8):
                    src = f"127.0.0.{30 + i}"
                    ws = clients.enter_context(connect(
                        f"ws://127.0.0.1:{lb.port}/chat", source_address=(src, 0), open_timeout=STEP))
                    rx = rf"joined from {src.replace('.', '[.]')}:"
                    wait_count([a, b], rx, 1)
                    if there.count(rx):
                        other = ws
                        break
                    ws.close()
                assert other is not None, "the balancer never used the other instance"

                page.fill("#msg", "before drain")
                page.click("#send")
                assert "before drain" in other.recv(timeout=STEP)

                # Drain the page's instance: health check first, then 1001.
                here.proc.send_signal(signal.SIGUSR1)
                lb.wait_for(rf"s{0 if here is a else 1} is DOWN")
                here.proc.send_signal(signal.SIGTERM)
                assert here.proc.wait(STEP) == 0
                expect(page.locator("#messages li.info", has_text="reconnecting")).to_have_count(
                    1, timeout=STEP_MS)
                # The page comes back by itself (2 s later), on the other one.
                expect(page.locator("#status")).to_have_text("online", timeout=STEP_MS)
                wait_count([there], PAGE_JOIN, 1)

                page.fill("#msg", "after drain")
                page.click("#send")
                assert "after drain" in other.recv(timeout=STEP)
                other.send("python says hi")
                expect(page.locator("#messages li", has_text="python says hi")).to_have_count(
                    1, timeout=STEP_MS)
            finally:
                browser.close()
