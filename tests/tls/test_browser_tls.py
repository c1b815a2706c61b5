"""Headless Chromium (Debian's) opening wss:// to our TLS listener with
real verification: the test CA is trusted through an NSS database
(certutil, Debian libnss3-tools) in the browser's own HOME, Chromium's
documented Linux store. The page (tests/peers/test_browser.py's, over
http on another loopback port) round-trips 1 MiB binary and 100 KiB text.
Skipped with a message when chromium or certutil is missing (.ci/run
installs both)."""
import asyncio
import importlib.util
import os
import shutil
import subprocess
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "peers_browser", os.path.join(os.path.dirname(HERE), "peers", "test_browser.py"))
_browser = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_browser)
CHROMIUM = _browser.CHROMIUM


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK) or shutil.which("certutil") is None,
                    reason="chromium or certutil missing (Debian chromium, libnss3-tools)")
@pytest.mark.parametrize("trusted", [True, False])
def test_chromium_wss_verified(server, certs, trusted):
    port, _ = server()
    page = _browser.PageServer(_browser.PAGE % {"ws_url": "wss://localhost:%d/" % port})
    home = tempfile.mkdtemp(prefix="nopoll-chromium-tls-")
    nss = "sql:" + os.path.join(home, ".pki", "nssdb")
    os.makedirs(os.path.join(home, ".pki", "nssdb"))
    subprocess.run(["certutil", "-d", nss, "-N", "--empty-password"], check=True, timeout=30)
    if trusted:
        subprocess.run(["certutil", "-d", nss, "-A", "-t", "C,,", "-n", "nopoll-test-ca",
                        "-i", certs("ca.pem")], check=True, timeout=30)
    profile = os.path.join(home, "profile")
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--user-data-dir=" + profile, "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0", page.url]
    os.makedirs(profile)
    log = open(os.path.join(home, "chromium.log"), "w+")
    env = dict(os.environ, HOME=home)
    browser = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    try:
        verdict = asyncio.run(asyncio.wait_for(_browser.read_title(profile, page.url, 40), 50))
    finally:
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
        shutil.rmtree(home, ignore_errors=True)
    if trusted:
        assert verdict.startswith("PASS"), "%s\nchromium output:\n%s" % (verdict, tail)
    else:
        # an untrusted certificate: the browser refuses the WebSocket
        assert verdict.startswith("FAIL closed early"), "%s\nchromium output:\n%s" % (verdict, tail)
