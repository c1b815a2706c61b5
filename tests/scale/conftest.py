"""Real parts for the scale-out tests: redis-server, nginx, haproxy and
chat-server-redis instances, each on a loopback port of its own, each
stopped when its test ends (and killed with the test process)."""

import ctypes
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = pathlib.Path(os.environ.get("NOPOLL_EXAMPLES_DIR", str(ROOT / "build" / "examples")))
CHAT = str(EXAMPLES / "chat-server-redis")
STEP = 15  # seconds any one expected event may take


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def wait_port(port, timeout=STEP):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


class Proc:
    """A process, everything it printed, and waiting for a line."""

    def __init__(self, name, argv, cwd=None):
        self.name = name
        self.lines = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pattern, timeout=STEP, start=0):
        """The first match of `pattern` in lines[start:] (waits for it)."""
        rx = re.compile(pattern)
        end = time.time() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    m = rx.search(line)
                    if m:
                        return m
                left = end - time.time()
                if left <= 0 or (self.proc.poll() is not None and not self._more()):
                    raise AssertionError(
                        f"{self.name}: no line matching {pattern!r}; output:\n" + "\n".join(self.lines[-40:])
                    )
                self._cond.wait(min(left, 0.2))

    def _more(self):
        return False

    def count(self, pattern):
        rx = re.compile(pattern)
        with self._cond:
            return sum(1 for l in self.lines if rx.search(l))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Redis(Proc):
    def __init__(self, port=None):
        self.port = port or free_port()
        super().__init__(
            "redis",
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
        )
        wait_port(self.port)


class Chat(Proc):
    def __init__(self, name, redis_port, extra=()):
        if not os.access(CHAT, os.X_OK):
            pytest.fail(f"{CHAT} is not built (make test-scale builds it)")
        self.port = free_port()
        super().__init__(name, [CHAT, str(self.port), "--redis", f"127.0.0.1:{redis_port}", *extra])
        self.wait_for(rf"open http://127\.0\.0\.1:{self.port}/")
        self.wait_for(r"redis subscriber up")
        self.wait_for(r"redis publisher up")


class Nginx(Proc):
    """nginx as a WebSocket reverse proxy in front of `backends`; it
    connects to them from 127.0.0.2 and tells the client's address in
    X-Forwarded-For and X-Real-IP."""

    def __init__(self, backends, tmp):
        self.port = free_port()
        servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in backends)
        conf = f"""
worker_processes 1;
pid {tmp}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  upstream chat {{
{servers}
  }}
  server {{
    listen 127.0.0.1:{self.port};
    location / {{
      proxy_pass http://chat;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host $host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_bind 127.0.0.2;
      proxy_connect_timeout 2s;
      proxy_read_timeout 120s;
      proxy_next_upstream error timeout;
    }}
  }}
}}
"""
        path = pathlib.Path(tmp) / "nginx.conf"
        path.write_text(conf)
        super().__init__("nginx", ["nginx", "-p", tmp, "-c", str(path), "-g", "daemon off;"])
        wait_port(self.port)


class HAProxy(Proc):
    """HAProxy in HTTP mode in front of `backends`, PROXY v2 to them (its
    health checks too), from 127.0.0.3, checking /health every 200 ms."""

    def __init__(self, backends, tmp):
        self.port = free_port()
        servers = "\n".join(f"  server s{i} 127.0.0.1:{p} check" for i, p in enumerate(backends))
        conf = f"""
global
  maxconn 512
defaults
  mode http
  timeout connect 2s
  timeout client 120s
  timeout server 120s
  timeout tunnel 120s
frontend fe
  bind 127.0.0.1:{self.port}
  default_backend chat
backend chat
  balance roundrobin
  option httpchk
  http-check send meth GET uri /health ver HTTP/1.1 hdr Host check
  default-server inter 200ms fall 1 rise 1 send-proxy-v2 check-send-proxy source 127.0.0.3
{servers}
"""
        path = pathlib.Path(tmp) / "haproxy.cfg"
        path.write_text(conf)
        super().__init__("haproxy", ["haproxy", "-db", "-f", str(path)])
        wait_port(self.port)


@pytest.fixture
def tmpdir_short():
    d = tempfile.mkdtemp(prefix="nopoll-scale-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def procs():
    """Processes to stop at the end of the test, newest first."""
    started = []
    yield started
    for p in reversed(started):
        p.stop()
