"""Fixtures of the TLS tests: certificates made at run time (nothing
private is committed) and the C programs built by tests/tls/run.sh into
$NOPOLL_TLS_BIN. Processes are the peers tests' Proc (stopped by pid)."""
import importlib.util
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "peers_conftest", os.path.join(os.path.dirname(HERE), "peers", "conftest.py"))
_peers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_peers)
Proc = _peers.Proc

BIN = os.environ.get("NOPOLL_TLS_BIN", os.path.join(HERE, "..", "..", "target", "tls", "bin"))


def binary(name):
    path = os.path.join(BIN, name)
    if not os.access(path, os.X_OK):
        pytest.fail("%s is not built (run tests/tls/run.sh)" % path)
    return path


def _run(cmd, cwd):
    subprocess.run(cmd, cwd=cwd, shell=True, check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _leaf(d, name, ca, san, eku, days=2, key="ec -pkeyopt ec_paramgen_curve:P-256"):
    _run("openssl req -newkey %s -nodes -keyout %s.key -out %s.csr -subj /CN=%s" % (key, name, name, name), d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        if san:
            f.write("subjectAltName=%s\n" % san)
        f.write("extendedKeyUsage=%s\n" % eku)
    _run("openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial -days %d -extfile %s.ext -out %s.pem"
         % (name, ca, ca, days, name, name), d)


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("certs"))
    for ca in ("ca", "ca2"):
        _run("openssl req -x509 -newkey rsa:2048 -nodes -keyout %s.key -out %s.pem -days 2 -subj /CN=%s "
             "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign" % (ca, ca, ca), d)
    _leaf(d, "server", "ca", "DNS:localhost,IP:127.0.0.1", "serverAuth")
    _leaf(d, "alt", "ca", "DNS:alt.test", "serverAuth")
    _leaf(d, "client", "ca", None, "clientAuth")
    _leaf(d, "wrongname", "ca", "DNS:elsewhere.test", "serverAuth")
    # expired: `openssl ca` sets the dates (OpenSSL 3.0's x509 cannot)
    _run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout expired.key -out expired.csr "
         "-subj /CN=expired", d)
    with open(os.path.join(d, "expired.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost\n")
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca=c\n[c]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\n"
                "default_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n")
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("01\n")
    _run("openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr -out expired.pem "
         "-startdate 20200101000000Z -enddate 20200102000000Z -extfile expired.ext -notext", d)
    _leaf(d, "weak", "ca", "DNS:localhost", "serverAuth", key="rsa:1024")
    _run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout self.key -out self.pem "
         "-days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost", d)
    return lambda name: os.path.join(d, name)


@pytest.fixture
def procs():
    started = []

    class Starter:
        @staticmethod
        def start(argv):
            pr = Proc(argv)
            started.append(pr)
            return pr

    yield Starter
    for pr in started:
        pr.stop()


@pytest.fixture
def server(procs, certs):
    """Starts tls_server with extra args; returns (port, proc)."""
    def start(*args, cert="server"):
        pr = procs.start([binary("tls_server"), certs(cert + ".pem"), certs(cert + ".key")] + list(args))
        m = pr.wait_line(r"^ready (\d+)$")
        return int(m.group(1)), pr
    return start
