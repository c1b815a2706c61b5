"""Fixtures for the interop tests against independent WebSocket peers.

The C programs are built by tests/peers/run.sh into $NOPOLL_PEERS_BIN
(default target/peers/bin). Every process started here is stopped at
teardown, by its pid; everything listens on 127.0.0.1.
"""
import os
import re
import signal
import subprocess
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("NOPOLL_PEERS_BIN", os.path.join(ROOT, "target", "peers", "bin"))


def binary(name):
    path = os.path.join(BIN, name)
    if not os.access(path, os.X_OK):
        pytest.fail("%s is not built (run tests/peers/run.sh)" % path)
    return path


class Proc:
    """A C program whose stdout lines are collected by a reader thread."""

    def __init__(self, argv, env=None):
        self.argv = argv
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, errors="replace", bufsize=1,
                                  env=None if env is None else {**os.environ, **env})
        self.lines = []
        self.cond = threading.Condition()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_line(self, pattern, timeout=10.0):
        """First line matching the regex `pattern` (a match object)."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    m = rx.search(line)
                    if m:
                        return m
                left = end - time.monotonic()
                if left <= 0 or (self.p.poll() is not None and not self.t.is_alive()):
                    raise AssertionError("%s: no line matching %r within %.0fs; output:\n%s"
                                         % (os.path.basename(self.argv[0]), pattern, timeout,
                                            "\n".join(self.lines[-30:])))
                self.cond.wait(min(left, 0.2))

    def output(self):
        with self.cond:
            return list(self.lines)

    def wait(self, timeout):
        rc = self.p.wait(timeout)
        self.t.join(5)
        return rc

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.t.join(5)
        return self.p.returncode


@pytest.fixture
def procs():
    """Start C programs with procs.start(argv); all stopped at teardown."""
    started = []

    class Starter:
        @staticmethod
        def start(argv, env=None):
            pr = Proc(argv, env)
            started.append(pr)
            return pr

    yield Starter
    for pr in started:
        pr.stop()


@pytest.fixture
def echo_listener(procs):
    """c-examples/echo-listener on a free port: returns the ws:// URL."""
    pr = procs.start([binary("echo-listener"), "0"])
    m = pr.wait_line(r"ready on (ws://127\.0\.0\.1:\d+/)")
    url = m.group(1)
    yield url
    assert pr.stop() == 0, "echo-listener did not exit cleanly on SIGTERM"


@pytest.fixture
def deflate_listener(procs):
    """c-examples/echo-listener accepting permessage-deflate (ECHO_DEFLATE=1)."""
    pr = procs.start([binary("echo-listener"), "0"], {"ECHO_DEFLATE": "1"})
    m = pr.wait_line(r"ready on (ws://127\.0\.0\.1:\d+/)")
    yield m.group(1)
    assert pr.stop() == 0, "echo-listener did not exit cleanly on SIGTERM"


@pytest.fixture
def peer_server(procs):
    """tests/peers/c_peer_server: returns (url, proc)."""
    pr = procs.start([binary("c_peer_server"), "0"])
    m = pr.wait_line(r"^ready (\d+)$")
    return "ws://127.0.0.1:%s/" % m.group(1), pr
