"""When the probe asks for repairs (probes/nack.py): pure, times passed in."""

from __future__ import annotations

from probes.nack import (
    FIRST_NACK_WAIT_MS,
    FIRST_PLI_RETRY_MS,
    MAX_RETRIES,
    PLI_RETRY_MS,
    RETRY_MS,
    NackScheduler,
)


def test_a_gap_is_asked_for_at_once_then_every_100_ms() -> None:
    n = NackScheduler(deadline_ms=1000.0)
    n.media(10, 0.0)
    n.media(12, 5.0)  # 11 missing
    assert n.due(5.0) == [11]
    # Every 100 ms whatever the round trip, as a browser viewer (no RTT from
    # RTCP) resends: not sooner on a short path, where a sender that ignores
    # repeats for 200 ms after a retransmission would see every retry spent
    # before it listens again; not later on a long one, or under a squeeze
    # whose queue inflates the RTT, where spacing tries by it asked half as
    # often as a browser and got fewer repairs.
    assert n.due(5.0 + RETRY_MS - 1) == []
    assert n.due(5.0 + RETRY_MS) == [11]
    assert n.due(5.0 + 2 * RETRY_MS) == [11]


def test_retries_span_the_frame_deadline_then_stop() -> None:
    n = NackScheduler(deadline_ms=1000.0)
    n.media(1, 0.0)
    n.media(3, 0.0)
    asked = [t for t in range(0, 2000, 10) if n.due(float(t))]
    assert len(asked) == MAX_RETRIES
    assert asked[-1] >= 900  # the tenth try still comes late in the second
    assert n.nacks_sent == MAX_RETRIES


def test_a_repair_stops_the_requests() -> None:
    n = NackScheduler()
    n.media(1, 0.0)
    n.media(3, 0.0)
    assert n.due(0.0) == [2]
    n.repaired(2)
    assert n.due(500.0) == []


def test_a_path_that_reorders_delays_the_first_request_by_its_median_distance() -> None:
    n = NackScheduler()
    seq = 100
    n.media(seq, 0.0)
    # Four times a packet comes two places late: 101 after 103.
    t = 0.0
    for _ in range(4):
        n.media(seq + 2, t)
        n.media(seq + 3, t)
        assert n.due(t) == [(seq + 1) & 0xFFFF]  # no history yet: asked at once
        n.media(seq + 1, t + 1)
        seq += 3
        t += 40.0
    # Now a new gap is not asked for while it may still be a late packet...
    n.media(seq + 2, t)
    assert n.due(t) == []
    assert n.due(t + FIRST_NACK_WAIT_MS - 1) == []
    # ...but once the newest packet is the median distance past it,
    n.media(seq + 3, t + 2)
    assert n.due(t + 2) == [(seq + 1) & 0xFFFF]
    # or, with no packet coming, after the wait.
    n.media(seq + 5, t + 40)
    assert n.due(t + 40) == []
    assert n.due(t + 40 + FIRST_NACK_WAIT_MS) == [(seq + 4) & 0xFFFF]


def test_keyframe_requests_as_a_browser_spaces_them() -> None:
    n = NackScheduler()
    # Before the first keyframe: at once, again every 200 ms.
    assert n.pli_due(True, 0.0, started=False)
    assert not n.pli_due(True, FIRST_PLI_RETRY_MS - 1, started=False)
    assert n.pli_due(True, FIRST_PLI_RETRY_MS, started=False)
    # A keyframe came: nothing asked.
    assert not n.pli_due(False, 300.0, started=True)
    # The picture broke (a frame given up): at once, then only every 3 s.
    assert n.pli_due(True, 5000.0, started=True)
    assert not n.pli_due(True, 5000.0 + 1000, started=True)
    assert n.pli_due(True, 5000.0 + PLI_RETRY_MS, started=True)
    assert PLI_RETRY_MS == 3000.0 and n.plis_sent == 4
