"""When the probe asks for repairs (probes/nack.py): pure, times passed in."""

from __future__ import annotations

from probes.nack import MAX_RETRIES, MIN_RETRY_MS, NackScheduler


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
