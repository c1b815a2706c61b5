"""The chat page in a real browser: headless Chromium, two tabs, one room.

Playwright's Python package drives Debian's /usr/bin/chromium through the
driver bundled in its wheel (no `playwright install`). A Python websockets
client joins the same room, so browser <-> C server <-> Python all meet.
The second tab is saved to tests/interop/out/chat.png.
"""

import os
import shutil
import tempfile

import pytest

from conftest import OUT_DIR

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STEP_MS = 10_000

if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(
        "chromium not installed: `apt-get install -y chromium` "
        "(tests/interop/run.sh does it with NOPOLL_INSTALL_DEPS=1)",
        allow_module_level=True,
    )
playwright = pytest.importorskip("playwright.sync_api", reason="pip install -r tests/interop/requirements.txt")
from websockets.sync.client import connect  # noqa: E402  (after the skips)


def test_two_tabs_chat(chat_server):
    expect = playwright.expect
    url = chat_server.http_url("/")
    with tempfile.TemporaryDirectory(prefix="nopoll-chromium-") as profile, \
            playwright.sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            user_data_dir=profile,  # fresh profile (Chromium's --user-data-dir)
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 720, "height": 520},
            timeout=30_000,
        )
        try:
            alice = browser.pages[0] if browser.pages else browser.new_page()
            bob = browser.new_page()
            for page, name in ((alice, "alice"), (bob, "bob")):
                page.goto(url, timeout=STEP_MS)
                expect(page).to_have_title("nopoll chat")
                expect(page.locator("#status")).to_have_text("online", timeout=STEP_MS)
                page.fill("#name", name)
            chat_server.wait_for(r"\(2 online\)")

            # Alice types and clicks Send: both tabs show it, hers as her own.
            alice.fill("#msg", "Hello Bob! ✓ ünïcödé")
            alice.click("#send")
            mine = alice.locator("#messages li.me", has_text="Hello Bob! ✓ ünïcödé")
            theirs = bob.locator("#messages li:not(.me)", has_text="Hello Bob! ✓ ünïcödé")
            expect(mine).to_have_count(1, timeout=STEP_MS)
            expect(theirs).to_have_count(1, timeout=STEP_MS)
            expect(theirs.locator(".from")).to_have_text("alice")
            expect(mine.locator(".from")).to_have_text("you")
            expect(alice.locator("#msg")).to_have_value("")

            # Bob answers with Enter; markup is shown as text, not run.
            bob.fill("#msg", "Hi Alice 🎉 <b>not bold</b>")
            bob.press("#msg", "Enter")
            reply = alice.locator("#messages li", has_text="Hi Alice 🎉 <b>not bold</b>")
            expect(reply).to_have_count(1, timeout=STEP_MS)
            expect(reply.locator("b")).to_have_count(0)
            expect(bob.locator("#messages li.me", has_text="Hi Alice")).to_have_count(1, timeout=STEP_MS)

            # A plain Python client in the same room sees the page's JSON,
            # and the tabs show its plain text.
            with connect(chat_server.ws_url(), open_timeout=5) as py:
                chat_server.wait_for(r"\(3 online\)")
                alice.fill("#msg", "from the browser")
                alice.click("#send")
                got = py.recv(timeout=5)
                assert '"text":"from the browser"' in got and '"name":"alice"' in got
                py.send("from Python")
                assert py.recv(timeout=5) == "from Python"
                for page in (alice, bob):
                    expect(page.locator("#messages li", has_text="from Python")).to_have_count(1, timeout=STEP_MS)

            OUT_DIR.mkdir(parents=True, exist_ok=True)
            bob.screenshot(path=str(OUT_DIR / "chat.png"))
        finally:
            browser.close()
    chat_server.wait_for(r"\(0 online\)", timeout=10)
