"""Shared by benches/deflate.py and benches/tls.py: servers on a fresh
loopback port pinned to CPU 0, the load generator pinned to CPU 1,
interleaved repetitions and medians. Builds on suite.py's process
bookkeeping (every process started is killed on exit)."""

import atexit
import json
import os
import signal
import socket
import subprocess
import sys

import suite

HERE = suite.HERE
ROOT = suite.ROOT
BUILD = suite.BUILD
LOADGEN = suite.LOADGEN
log = suite.log
med = suite.med
fmt = suite.fmt


def setup():
    """Signals and exit: everything started is stopped."""
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, suite.on_signal)
    atexit.register(suite.kill_all)
    suite.raise_nofile()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server(suite.Pinned):
    """argv with "{port}" replaced by a free loopback port; pinned to CPU 0;
    started once it has printed a line."""

    def __init__(self, name, argv, env=None):
        port = free_port()
        super().__init__(name, [a.replace("{port}", str(port)) for a in argv], port, env)


def loadgen(server, args, timeout=120):
    """One load generator run against `server`; its JSON line."""
    return suite.run_loadgen(args + ["--port", str(server.port), "--server-pid", str(server.pid)], timeout)


def interleaved(reps, servers, shapes, run):
    """runs[(shape key, server name)] = [result of run(server spec, shape)
    per repetition]; server order rotated per repetition, a fresh server
    process per run. servers: [(name, argv, env)]; shapes: [(key, ...)]."""
    runs = {}
    for rep in range(reps):
        order = servers[rep % len(servers):] + servers[:rep % len(servers)]
        for shape in shapes:
            for name, argv, env in order:
                srv = Server(name, argv, env)
                try:
                    r = run(srv, shape)
                except RuntimeError as e:
                    log(f"  {name} {shape[0]}: {e}")
                    r = None
                finally:
                    srv.stop()
                runs.setdefault((shape[0], name), []).append(r)
                if r is not None:
                    log(f"  rep {rep + 1} {shape[0]:>10} {name:<28} {json.dumps(r)[:160]}")
    return runs


def commit():
    return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    log(f"wrote {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    sys.exit("a module: run benches/deflate.py or benches/tls.py")
