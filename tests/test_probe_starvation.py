"""The probe's own health: kernel drops at its sockets read from /proc on real
UDP sockets, and the event loop's lateness measured on a real loop."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.starvation import (
    LAG_TICK_MS,
    LagWindow,
    LoopLagMonitor,
    StreamDrops,
    UdpDropTable,
    parse_udp_table,
    read_udp_drops,
    socket_inode,
)

linux_only = pytest.mark.skipif(not Path("/proc/self/net/udp").exists(),
                                reason="needs Linux /proc/net/udp")

# Two lines as Linux 6.1 writes them (header, then one socket per line).
UDP_TEXT = "\n".join((
    "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"
    "  timeout inode ref pointer drops",
    "  123: 0100007F:D431 00000000:0000 07 00000000:00000000 00:00000000 00000000     0"
    "        0 81234 2 0000000000000000 17",
    "  456: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0"
    "        0 1999 2 0000000000000000 0",
    "  789: 0100007F:D4",
))


def test_parse_udp_table_reads_port_inode_and_drops_and_skips_a_cut_line() -> None:
    rows = parse_udp_table(UDP_TEXT)
    assert [(r.local_port, r.inode, r.drops) for r in rows] == [(0xD431, 81234, 17),
                                                                 (0x44, 1999, 0)]


def test_unreadable_tables_are_unknown_not_an_error(tmp_path: Path) -> None:
    assert read_udp_drops([str(tmp_path / "nope")]) is None
    table = tmp_path / "udp"
    table.write_text(UDP_TEXT)
    assert read_udp_drops([str(tmp_path / "nope"), str(table)]) == {81234: 17, 1999: 0}


def test_reading_is_bounded(tmp_path: Path) -> None:
    table = tmp_path / "udp"
    table.write_text(UDP_TEXT)
    first_line_end = UDP_TEXT.index("\n", UDP_TEXT.index("81234"))
    # Only the bytes asked for are read: the second socket is not seen.
    assert read_udp_drops([str(table)], max_bytes=first_line_end) == {81234: 17}


@pytest.fixture
def flooded() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A loopback socket with a tiny receive buffer, flooded and never read,
    and an idle one."""
    victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    idle = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        victim.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)  # the kernel's floor
        victim.bind(("127.0.0.1", 0))
        idle.bind(("127.0.0.1", 0))
        payload = b"x" * 1200
        for _ in range(500):
            sender.sendto(payload, victim.getsockname())
        yield victim, idle
    finally:
        for s in (victim, idle, sender):
            s.close()


@linux_only
def test_drops_of_a_flooded_socket_are_read_from_proc(
    flooded: tuple[socket.socket, socket.socket],
) -> None:
    victim, idle = flooded
    drops = read_udp_drops()
    assert drops is not None
    v_inode, i_inode = socket_inode(victim.fileno()), socket_inode(idle.fileno())
    assert v_inode is not None and i_inode is not None
    # A few datagrams fit the buffer; most of the 500 cannot.
    assert drops[v_inode] > 400
    assert drops[i_inode] == 0
    # The same socket by its port, as the table lists it.
    rows = parse_udp_table(Path("/proc/self/net/udp").read_text())
    by_port = {r.local_port: r.drops for r in rows}
    assert by_port[victim.getsockname()[1]] == drops[v_inode]
    assert by_port[idle.getsockname()[1]] == 0


@linux_only
def test_a_stream_is_told_only_its_new_drops(
    flooded: tuple[socket.socket, socket.socket],
) -> None:
    victim, idle = flooded
    inodes = [socket_inode(victim.fileno()), socket_inode(idle.fileno())]
    mine = StreamDrops()
    first = mine.take([i for i in inodes if i is not None], read_udp_drops())
    assert first is not None and first > 400
    # Nothing new since: 0, not the total again.
    assert mine.take([i for i in inodes if i is not None], read_udp_drops()) == 0
    other = StreamDrops()
    assert other.take([i for i in inodes[1:] if i is not None], read_udp_drops()) == 0


def test_stream_drops_unknown_without_table_or_sockets() -> None:
    d = StreamDrops()
    assert d.take([1], None) is None
    assert d.take([1], {2: 5}) is None
    assert d.take([1, 2], {1: 3, 2: 5}) == 8
    assert d.take([1, 2], {1: 4, 2: 5}) == 1


def test_the_table_is_read_once_per_second_whatever_the_streams() -> None:
    reads = []

    def read() -> dict[int, int]:
        reads.append(1)
        return {1: len(reads)}

    table = UdpDropTable(every_ms=950.0, read=read)
    for now in (0.0, 10.0, 500.0, 949.0):
        assert table.drops(now) == {1: 1}
    assert table.drops(1000.0) == {1: 2}
    assert len(reads) == 2


def test_lag_window_reports_a_block_once_in_the_second_after_it() -> None:
    w = LagWindow()
    t = 0.0
    for _ in range(20):  # on time
        w.due(t + 50)
        t += 50.5
        w.fired(t)
    assert w.max_late_ms(t) == pytest.approx(0.5)
    w.due(t + 50)
    # The loop blocks for 300 ms: a sample taken just after, before the
    # monitor ran again, sees the overdue tick.
    assert w.max_late_ms(t + 300) == pytest.approx(250)
    w.fired(t + 300)
    assert w.max_late_ms(t + 310) == pytest.approx(250)
    # One second after the block was due, it is no longer this second's.
    assert w.max_late_ms(t + 50 + 1000) == 0.0


@pytest.mark.timeout(20)
async def test_loop_lag_monitor_sees_a_blocked_loop() -> None:
    monitor = LoopLagMonitor()
    assert monitor.lag_ms(time.monotonic() * 1000) is None  # not running: unknown
    monitor.start()
    try:
        await asyncio.sleep(1.2)
        quiet = monitor.lag_ms(time.monotonic() * 1000)
        assert quiet is not None
        time.sleep(0.3)  # the loop blocked, as by a CPU-bound neighbour
        blocked = monitor.lag_ms(time.monotonic() * 1000)
        await asyncio.sleep(0.2)
        after_block = monitor.lag_ms(time.monotonic() * 1000)
        await asyncio.sleep(1.2)
        later = monitor.lag_ms(time.monotonic() * 1000)
    finally:
        await monitor.stop()
    assert blocked is not None and after_block is not None and later is not None
    # A 300 ms block is at least 300 ms less one tick late.
    assert blocked >= 300 - LAG_TICK_MS - 5
    assert after_block >= 300 - LAG_TICK_MS - 5
    # Otherwise small: the shared machine's scheduling noise, well below
    # what diagnosis calls starved (200 ms).
    assert quiet < 100, quiet
    assert later < 100, later
    assert not monitor.running



# --- in the samples of a real probe ---------------------------------------------


@pytest.mark.server
@pytest.mark.timeout(60)
async def test_samples_of_a_starved_probe_say_so() -> None:
    """A real probe watches the demo origin over WebRTC on loopback; its
    media sockets' buffers are shrunk and its loop blocked for half a
    second, as a host whose CPU is taken would: the samples that follow say
    the loop was late and the kernel dropped datagrams at this stream's
    sockets; the quiet seconds before say neither."""
    from probes.agent import ProbeAgent
    from probes.config import ProbeConfig
    from probes.rtc_seams import enlarge_receive_buffers
    from probes.sinks import MemorySink
    from qosmon.demo.clip import encode_clip
    from qosmon.demo.netpath import RegionPath
    from qosmon.demo.origin import DemoOrigin
    from qosmon.model import ConnectionState

    origin = DemoOrigin(encode_clip(seconds=4), {"SG": RegionPath("SG")})
    await origin.start()
    sink = MemorySink()
    stop = asyncio.Event()
    try:
        cfg = ProbeConfig.model_validate({
            "labels": {"probe_id": "sg-1", "region": "SG"},
            "streams": [{"show_id": "show", "stream_id": "main", "join": "demo",
                         "url": origin.whep_url("SG"), "chat": False}],
            "ice_host_addresses": ["127.0.0.1"],
        })
        agent = ProbeAgent(cfg, sink)
        task = asyncio.create_task(agent.run(stop))
        for _ in range(100):
            await asyncio.sleep(0.1)
            if sum(s.state == ConnectionState.CONNECTED and (s.fps or 0) > 0
                   for s in sink.samples) >= 3:
                break
        quiet = [s for s in sink.samples if s.state == ConnectionState.CONNECTED]
        assert len(quiet) >= 3, sink.samples
        joined = agent.watchers[0]._joined
        assert joined is not None
        assert enlarge_receive_buffers(joined.pc, size=1024) > 0
        n_before = len(sink.samples)
        time.sleep(0.5)  # the loop starved: packets pile up at the sockets
        await asyncio.sleep(2.5)
        enlarge_receive_buffers(joined.pc)  # as the probe keeps them
        stop.set()
        await asyncio.wait_for(task, 15)
    finally:
        await origin.stop()
    after = sink.samples[n_before:]
    assert quiet[-1].probe_lag_ms is not None and quiet[-1].probe_lag_ms < 200
    assert all(s.socket_drops == 0 for s in quiet[1:]), [s.socket_drops for s in quiet]
    assert max(s.probe_lag_ms or 0.0 for s in after) >= 500 - 60
    assert sum(s.socket_drops or 0 for s in after) > 0, [s.socket_drops for s in after]
