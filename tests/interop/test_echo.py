"""The echo examples: echo-client against echo-listener (C to C through the
library on both ends), and echo-listener against a Python client."""

import subprocess

from websockets.sync.client import connect

from conftest import ECHO_CLIENT


def test_c_client_against_c_listener(echo_listener):
    out = subprocess.run(
        [ECHO_CLIENT, str(echo_listener.port), "Hello from C ✓"],
        capture_output=True, timeout=20, check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "echo received (Hello from C ✓)" in out.stdout.decode("utf-8")


def test_python_client_against_c_listener(echo_listener):
    with connect(echo_listener.ws_url("/"), open_timeout=5, max_size=None) as ws:
        for message in ["text ✓ 🎉", b"\x00\xffbinary", "", "y" * 100_000, bytes(range(256)) * 300]:
            ws.send(message)
            assert ws.recv(timeout=5) == message
