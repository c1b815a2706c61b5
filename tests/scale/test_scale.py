"""Two chat-server-redis instances sharing one room through a real Redis,
behind a real nginx (WebSocket reverse proxy, X-Forwarded-For) and a real
HAProxy (PROXY protocol v2, /health checks), with Python websockets
clients: messages cross instances exactly once and in one order, each
instance sees the client's address (not the balancer's), draining one
instance moves its clients to the other, and a Redis outage leaves each
instance serving its own clients until Redis is back.

Each client connects from its own loopback address (127.0.0.1x), so the
instance's log line "joined from ADDR:PORT via PROXY" tells where it
landed and which address the instance saw. nginx connects to the
instances from 127.0.0.2, HAProxy from 127.0.0.3."""

import asyncio
import signal
import time

import pytest
import websockets
from websockets.asyncio.client import connect

from conftest import STEP, Chat, HAProxy, Nginx, Redis


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


class Client:
    _next = 10

    def __init__(self, ws, src):
        self.ws, self.src = ws, src

    @classmethod
    async def join(cls, port):
        cls._next += 1
        src = f"127.0.0.{cls._next}"
        ws = await connect(f"ws://127.0.0.1:{port}/chat", local_addr=(src, 0), open_timeout=STEP)
        return cls(ws, src)

    @property
    def local_port(self):
        return self.ws.local_address[1]


async def landed(client, instances):
    """The instance whose log shows `client` joining, and the match."""
    pattern = rf"joined from {client.src.replace('.', '[.]')}:(\d+)(?: via (\S+))?"
    for _ in range(int(STEP / 0.05)):
        for inst in instances:
            if inst.count(pattern):
                return inst, inst.wait_for(pattern)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no instance saw {client.src} join")


async def spread(port, instances):
    """One client on each instance, connected through the balancer."""
    placed, extra = {}, []
    for _ in range(8):
        c = await Client.join(port)
        inst, _ = await landed(c, instances)
        if inst.name in placed:
            extra.append(c)
        else:
            placed[inst.name] = c
        if len(placed) == len(instances):
            break
    for c in extra:
        await c.ws.close()
    assert len(placed) == len(instances), f"the balancer used only {list(placed)}"
    return [placed[i.name] for i in instances]


async def chat_round(clients, tag, per=5):
    """Every client sends `per` lines, interleaved; every client receives
    every line once, all in the same order, each sender's in its order."""
    sent = []
    for i in range(per):
        for j, c in enumerate(clients):
            line = f"{tag}-c{j}-{i}"
            await c.ws.send(line)
            sent.append(line)
    got = []
    for c in clients:
        got.append([await asyncio.wait_for(c.ws.recv(), STEP) for _ in sent])
    for g in got:
        assert sorted(g) == sorted(sent), "each line exactly once"
        assert g == got[0], "the same order on every instance"
    for j in range(len(clients)):
        mine = [m for m in got[0] if m.startswith(f"{tag}-c{j}-")]
        assert mine == [f"{tag}-c{j}-{i}" for i in range(per)]


async def closed_with(client):
    with pytest.raises(websockets.exceptions.ConnectionClosed) as err:
        await asyncio.wait_for(client.ws.recv(), STEP)
    return err.value.rcvd.code if err.value.rcvd else None


async def drain_and_rejoin(a, b, lb, x, y):
    """SIGTERM drains `a`: its client `x` gets 1001, joins again through
    the balancer, lands on `b`, and chats with `y` there."""
    a.proc.send_signal(signal.SIGTERM)
    assert await closed_with(x) == 1001
    x2 = await Client.join(lb.port)
    inst, _ = await landed(x2, [a, b])
    assert inst is b
    await chat_round([x2, y], "after")
    await x2.ws.close()
    await y.ws.close()


def start_pair(procs, extra):
    redis = Redis()
    procs.append(redis)
    a = Chat("instance-a", redis.port, extra)
    procs.append(a)
    b = Chat("instance-b", redis.port, extra)
    procs.append(b)
    return redis, a, b


def test_behind_haproxy_with_proxy_v2(procs, tmpdir_short):
    _, a, b = start_pair(procs, ["--proxy-protocol", "--trusted", "127.0.0.3"])
    lb = HAProxy([a.port, b.port], tmpdir_short)
    procs.append(lb)

    async def body():
        x, y = await spread(lb.port, [a, b])
        # The instance saw the client's address and port, and the balancer.
        for c, inst in ((x, a), (y, b)):
            m = inst.wait_for(rf"joined from {c.src.replace('.', '[.]')}:(\d+) via (\S+)")
            assert (int(m.group(1)), m.group(2)) == (c.local_port, "127.0.0.3")
        await chat_round([x, y], "lb")

        # Drain a: its health check fails first, HAProxy takes it out...
        a.proc.send_signal(signal.SIGUSR1)
        lb.wait_for(r"s0 is DOWN")
        # ...then a closes its clients with 1001; x comes back through the
        # balancer, to b.
        await drain_and_rejoin(a, b, lb, x, y)

    run(body())
    assert a.proc.wait(STEP) == 0
    a.wait_for(r"chat-server: bye")


def test_behind_nginx_with_forwarded_for(procs, tmpdir_short):
    _, a, b = start_pair(procs, ["--trusted", "127.0.0.2"])
    lb = Nginx([a.port, b.port], tmpdir_short)
    procs.append(lb)

    async def body():
        x, y = await spread(lb.port, [a, b])
        for c, inst in ((x, a), (y, b)):
            m = inst.wait_for(rf"joined from {c.src.replace('.', '[.]')}:\d+ via (\S+)")
            assert m.group(1) == "127.0.0.2"
        await chat_round([x, y], "lb")
        # nginx has no active checks: a's listener closing is what sends
        # the reconnection to b.
        await drain_and_rejoin(a, b, lb, x, y)

    run(body())
    assert a.proc.wait(STEP) == 0


def test_untrusted_balancer_is_not_believed(procs, tmpdir_short):
    # The instances trust no proxy: X-Forwarded-For from nginx is ignored.
    _, a, b = start_pair(procs, [])
    lb = Nginx([a.port, b.port], tmpdir_short)
    procs.append(lb)

    async def body():
        c = await Client.join(lb.port)
        await c.ws.send("hello")
        assert await asyncio.wait_for(c.ws.recv(), STEP) == "hello"
        await c.ws.close()

    run(body())
    # The instance saw nginx's address (no "via"), not the client's.
    seen = r"joined from 127[.]0[.]0[.]2:\d+ \("
    for _ in range(int(STEP / 0.05)):
        if a.count(seen) + b.count(seen) == 1:
            break
        time.sleep(0.05)
    assert a.count(seen) + b.count(seen) == 1
    assert a.count(r" via ") + b.count(r" via ") == 0


def test_redis_outage_keeps_local_rooms_and_reconnects(procs):
    redis, a, b = start_pair(procs, [])

    async def body():
        x1 = await Client.join(a.port)
        x2 = await Client.join(a.port)
        y = await Client.join(b.port)
        await chat_round([x1, x2, y], "up")

        redis.stop()
        a.wait_for(r"redis subscriber down")
        b.wait_for(r"redis subscriber down")
        # Each instance keeps its own room going.
        await chat_round([x1, x2], "local")
        await chat_round([y], "alone")

        # Redis is back on the same port: both reconnect by themselves.
        procs.append(Redis(redis.port))
        for _ in range(int(STEP / 0.05)):
            ups = [i.count(r"redis (subscriber|publisher) up") for i in (a, b)]
            if ups == [4, 4]:
                break
            await asyncio.sleep(0.05)
        assert ups == [4, 4], "both links of both instances up again"
        await chat_round([x1, x2, y], "again")
        for c in (x1, x2, y):
            await c.ws.close()

    run(body())
