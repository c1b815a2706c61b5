"""Shared fixtures: a running build/examples/chat-server (or echo-listener)
on a free port.

The server is always stopped (SIGTERM, then SIGKILL) when a test ends, and
dies with the test process if that one is killed (PR_SET_PDEATHSIG).
"""

import ctypes
import os
import pathlib
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = pathlib.Path(os.environ.get("NOPOLL_EXAMPLES_DIR", str(ROOT / "build" / "examples")))
CHAT_SERVER = str(EXAMPLES / "chat-server")
ECHO_LISTENER = str(EXAMPLES / "echo-listener")
ECHO_CLIENT = str(EXAMPLES / "echo-client")
OUT_DIR = pathlib.Path(__file__).resolve().parent / "out"


def free_port():
    """A port that was free a moment ago (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    # Runs in the child between fork and exec: SIGKILL it if pytest dies.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Server:
    """An example server process, its port and everything it printed.

    `ready` is the line it prints once listening ({port} is filled in)."""

    def __init__(self, binary=CHAT_SERVER, ready=r"open http://127\.0\.0\.1:{port}/ in a browser"):
        self.binary = binary
        self.ready = ready
        self.proc = None
        self._reader = None
        self.port = None
        self.lines = []
        self._eof = False
        self._cond = threading.Condition()

    # -- process ---------------------------------------------------------
    def start(self, attempts=3):
        if not os.access(self.binary, os.X_OK):
            pytest.fail(f"{self.binary} is not built: run `make examples` first")
        for _ in range(attempts):
            port = free_port()
            self.lines = []
            self._eof = False
            self.proc = subprocess.Popen(
                [self.binary, str(port)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
            self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
            self._reader.start()
            try:
                self.wait_for(self.ready.format(port=port), timeout=10)
                self.port = port
                return self
            except AssertionError:
                self.stop()  # most likely the port was taken in between: retry
        pytest.fail(f"{self.binary} did not start; output:\n{self.output()}")

    def _read(self, proc):
        for raw in proc.stdout:
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def stop(self, sig=signal.SIGTERM, timeout=5):
        """Stops the server (sig, then SIGKILL after timeout); returns its exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self._reader.join(5)  # all output read before anyone looks at it
        return proc.returncode

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # -- output ----------------------------------------------------------
    def output(self):
        with self._cond:
            return "\n".join(self.lines)

    def wait_for(self, pattern, timeout=5.0, count=1):
        """Waits until `count` output lines match `pattern`; returns the last."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                hits = [line for line in self.lines if rx.search(line)]
                if len(hits) >= count:
                    return hits[count - 1]
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:  # timed out, or the server has exited
                    raise AssertionError(
                        f"no {count} line(s) matching {pattern!r} in {self.binary} output:\n"
                        + "\n".join(self.lines))
                self._cond.wait(min(left, 0.5))

    # -- URLs ------------------------------------------------------------
    def http_url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def ws_url(self, path="/chat"):
        return f"ws://127.0.0.1:{self.port}{path}"


@pytest.fixture
def chat_server():
    server = Server()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def echo_listener():
    server = Server(ECHO_LISTENER, ready=r"echo-listener: ready on ws://127\.0\.0\.1:{port}/")
    try:
        yield server.start()
    finally:
        server.stop()
