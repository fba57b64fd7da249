"""The demo's userspace network path: shaping maths without a loop, and the
relay forwarding real UDP on loopback."""

import asyncio
import itertools
import random
import socket

import pytest

from qosmon.demo.netpath import Impairment, LinkShaper, RegionPath


def test_clean_path_delays_by_the_configured_amount() -> None:
    shaper = LinkShaper(random.Random(1))
    fate = shaper.admit(Impairment(delay_ms=40), 1200, now=10.0, shaped=True)
    assert fate == pytest.approx(0.040)


def test_bottleneck_queues_then_tail_drops() -> None:
    shaper = LinkShaper(random.Random(1))
    imp = Impairment(rate_kbps=96, queue_ms=350)  # 1200 B takes 100 ms at 96 kbps
    fates = [shaper.admit(imp, 1200, now=0.0, shaped=True) for _ in range(6)]
    assert fates[:4] == pytest.approx([0.1, 0.2, 0.3, 0.4])  # queue grows
    assert fates[4:] == ["queue", "queue"]  # would wait > 350 ms: dropped
    # Once drained, packets pass again.
    assert shaper.admit(imp, 1200, now=1.0, shaped=True) == pytest.approx(0.1)


def test_random_loss_rate_matches_setting() -> None:
    shaper = LinkShaper(random.Random(7))
    imp = Impairment(loss_pct=15)
    fates = [shaper.admit(imp, 100, now=0.0, shaped=False) for _ in range(20_000)]
    lost = sum(1 for f in fates if f == "loss") / len(fates)
    assert lost == pytest.approx(0.15, abs=0.01)


def test_outage_drops_everything() -> None:
    shaper = LinkShaper(random.Random(1))
    assert shaper.admit(Impairment(outage=True), 100, now=0.0, shaped=False) == "outage"


async def test_relay_forwards_both_ways_and_cuts_on_outage() -> None:
    viewer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    origin = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (viewer, origin):
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
    path = RegionPath("T", impairment=Impairment(delay_ms=20))
    try:
        a_port, b_port, session = await path.open_session(viewer.getsockname())
        path.connect_origin(session, origin.getsockname())
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        viewer.sendto(b"up", ("127.0.0.1", a_port))
        data, src = await asyncio.wait_for(loop.sock_recvfrom(origin, 100), 2)
        assert data == b"up" and src[1] == b_port  # the origin only sees the relay
        assert loop.time() - t0 >= 0.019
        origin.sendto(b"down", ("127.0.0.1", b_port))
        data, src = await asyncio.wait_for(loop.sock_recvfrom(viewer, 100), 2)
        assert data == b"down" and src[1] == a_port
        path.impairment = Impairment(outage=True)
        origin.sendto(b"lost", ("127.0.0.1", b_port))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(loop.sock_recvfrom(viewer, 100), 0.3)
        assert path.counters.dropped_outage == 1
        assert path.counters.forwarded == 2
    finally:
        path.close()
        viewer.close()
        origin.close()


def test_jitter_varies_delay_but_never_reorders() -> None:
    shaper = LinkShaper(random.Random(3))
    imp = Impairment(delay_ms=50, jitter_ms=10)
    arrivals = [t * 0.001 + shaper.admit(imp, 1200, now=t * 0.001, shaped=False)  # type: ignore[operator]
                for t in range(500)]
    assert all(b > a for a, b in itertools.pairwise(arrivals))
    delays = [a - t * 0.001 for t, a in enumerate(arrivals)]
    assert min(delays) >= 0.040 and max(delays) <= 0.060 + 1e-9
    assert max(delays) - min(delays) > 0.010


async def test_a_burst_through_a_jittery_relay_arrives_in_order() -> None:
    """A frame's packets leave the sender back to back; with jitter many are
    held to the same delivery instant, and the event loop's timers do not
    keep the order of equal instants: the relay must (a viewer would NACK
    every overtaken packet and the sender send it twice)."""
    viewer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    origin = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (viewer, origin):
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
    path = RegionPath("T", seed=5, impairment=Impairment(delay_ms=20, jitter_ms=5))
    try:
        _, b_port, session = await path.open_session(viewer.getsockname())
        path.connect_origin(session, origin.getsockname())
        loop = asyncio.get_running_loop()

        async def receive() -> list[int]:
            return [int.from_bytes((await loop.sock_recvfrom(viewer, 10))[0], "big")
                    for _ in range(300)]

        reader = asyncio.ensure_future(asyncio.wait_for(receive(), 5))
        for i in range(300):  # ten frames of 30 packets, 40 ms apart
            origin.sendto(i.to_bytes(2, "big"), ("127.0.0.1", b_port))
            if i % 30 == 29:
                await asyncio.sleep(0.04)
        assert await reader == list(range(300))
    finally:
        path.close()
        viewer.close()
        origin.close()
