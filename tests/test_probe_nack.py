"""When the probe asks for repairs (probes/nack.py): pure, times passed in."""

from __future__ import annotations

from probes.nack import FIRST_NACK_WAIT_MS, MAX_RETRIES, MIN_RETRY_MS, NackScheduler


def test_a_gap_is_asked_for_at_once_then_every_100_ms_on_a_short_path() -> None:
    n = NackScheduler(deadline_ms=1000.0)
    n.media(10, 0.0)
    n.media(12, 5.0)  # 11 missing
    assert n.due(5.0, rtt_ms=1.0) == [11]
    # A 1 ms round trip does not make the probe ask again within 100 ms: a
    # browser viewer (no RTT from RTCP) resends every 100 ms, and a sender
    # that ignores repeats for 200 ms after a retransmission would otherwise
    # see every retry spent before it listens again.
    assert n.due(5.0 + MIN_RETRY_MS - 1, rtt_ms=1.0) == []
    assert n.due(5.0 + MIN_RETRY_MS, rtt_ms=1.0) == [11]


def test_retries_span_the_frame_deadline_then_stop() -> None:
    n = NackScheduler(deadline_ms=1000.0)
    n.media(1, 0.0)
    n.media(3, 0.0)
    asked = [t for t in range(0, 2000, 10) if n.due(float(t), rtt_ms=0.5)]
    assert len(asked) == MAX_RETRIES
    assert asked[-1] >= 900  # the tenth try still comes late in the second
    assert n.nacks_sent == MAX_RETRIES


def test_a_long_round_trip_spaces_the_retries_by_it() -> None:
    n = NackScheduler(deadline_ms=3000.0)
    n.media(1, 0.0)
    n.media(3, 0.0)
    assert n.due(0.0, rtt_ms=300.0) == [2]
    assert n.due(250.0, rtt_ms=300.0) == []
    assert n.due(300.0, rtt_ms=300.0) == [2]


def test_a_repair_stops_the_requests() -> None:
    n = NackScheduler()
    n.media(1, 0.0)
    n.media(3, 0.0)
    assert n.due(0.0, None) == [2]
    n.repaired(2)
    assert n.due(500.0, None) == []


def test_a_path_that_reorders_delays_the_first_request_by_its_median_distance() -> None:
    n = NackScheduler()
    seq = 100
    n.media(seq, 0.0)
    # Four times a packet comes two places late: 101 after 103.
    t = 0.0
    for _ in range(4):
        n.media(seq + 2, t)
        n.media(seq + 3, t)
        assert n.due(t, None) == [(seq + 1) & 0xFFFF]  # no history yet: asked at once
        n.media(seq + 1, t + 1)
        seq += 3
        t += 40.0
    # Now a new gap is not asked for while it may still be a late packet...
    n.media(seq + 2, t)
    assert n.due(t, None) == []
    assert n.due(t + FIRST_NACK_WAIT_MS - 1, None) == []
    # ...but once the newest packet is the median distance past it,
    n.media(seq + 3, t + 2)
    assert n.due(t + 2, None) == [(seq + 1) & 0xFFFF]
    # or, with no packet coming, after the wait.
    n.media(seq + 5, t + 40)
    assert n.due(t + 40, None) == []
    assert n.due(t + 40 + FIRST_NACK_WAIT_MS, None) == [(seq + 4) & 0xFFFF]
