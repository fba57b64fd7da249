"""When a browser would show each frame (probes/playout.py), and what that
does to freeze counting: pure, times passed in."""

from __future__ import annotations

from itertools import pairwise

from probes.frames import FrameAssembler
from probes.meter import StreamMeter
from probes.playout import MAX_HOLD_MS, PLAYOUT_DELAY_MS, Playout

TICKS = 3600  # 40 ms at 90 kHz: 25 fps


def test_frames_on_time_are_shown_a_fixed_hold_after_the_fastest_transit() -> None:
    p = Playout()
    shown = [p.show_ms(1000.0 + 40 * i + (5 if i % 2 else 0), i * TICKS) for i in range(10)]
    assert shown[0] == 1000.0 + PLAYOUT_DELAY_MS
    # Jitter of 5 ms inside the hold: shown at an even pace.
    assert [b - a for a, b in pairwise(shown)] == [40.0] * 9


def test_a_late_frame_is_shown_when_complete_and_never_before_the_last() -> None:
    p = Playout()
    for i in range(5):
        p.show_ms(40.0 * i, i * TICKS)
    # Repaired 60 ms late: within the hold.
    assert p.show_ms(40.0 * 5 + 60, 5 * TICKS, repaired=True) == 40.0 * 5 + PLAYOUT_DELAY_MS
    late = p.show_ms(40.0 * 6 + 400, 6 * TICKS, repaired=True)  # repaired 400 ms late
    assert late == 40.0 * 6 + 400
    # The frame after it was complete on time, but is shown after it.
    assert p.show_ms(40.0 * 7, 7 * TICKS) == late


def test_timestamps_wrap_and_a_new_timeline_starts_over() -> None:
    p = Playout()
    base = (1 << 32) - 2 * TICKS
    shown = [p.show_ms(40.0 * i, (base + i * TICKS) % (1 << 32)) for i in range(5)]
    assert [b - a for a, b in pairwise(shown)] == [40.0] * 4
    # The sender restarts its timestamps: shown at once plus the hold again.
    assert p.show_ms(400.0, 2_000_000_000) == 400.0 + PLAYOUT_DELAY_MS


def _run(repair_delay_ms: float) -> tuple[int, float]:
    """25 fps for 4 s; frame 50 completes ``repair_delay_ms`` late (its lost
    packet repaired then), the frames behind it wait for it, as a decoder's
    do. Freeze count and duration."""
    m = StreamMeter(start_ms=0.0)
    held: list[int] = []
    for i in range(100):
        now = 40.0 * i
        if i == 50:
            held.append(i)
            continue
        if held and now >= 40.0 * 50 + repair_delay_ms:
            for j in [*held, i]:
                m.frame(now, 1000, rtp_timestamp=j * TICKS)
            held.clear()
        elif held:
            held.append(i)
        else:
            m.frame(now, 1000, rtp_timestamp=i * TICKS)
    s = m.take(4000.0)
    return s.freeze_count, s.freeze_ms


def test_a_repair_within_the_hold_shows_no_freeze_a_late_one_does() -> None:
    assert _run(200.0) == (0, 0.0)  # judged on completion, this were a 240 ms freeze
    count, ms = _run(400.0)
    assert count == 1 and 350 <= ms <= 450, (count, ms)


def test_frames_without_timestamps_are_judged_when_complete() -> None:
    m = StreamMeter(start_ms=0.0)
    for i in range(50):
        m.frame(40.0 * i + (160 if i == 30 else 0), 1000)
    assert m.take(3000.0).freeze_count == 1


def _jittery(p: Playout, start: int, frames: int, spread_ms: float,
             repaired: bool = False) -> list[float]:
    """Frames at 25 fps whose transit cycles through 0, spread/2, spread
    (a path with jitter of that size); the times each is shown."""
    out = []
    for i in range(start, start + frames):
        extra = spread_ms * ((i % 3) / 2)
        out.append(p.show_ms(40.0 * i + extra, i * TICKS, repaired=repaired))
    return out


def test_a_clean_path_keeps_the_base_hold() -> None:
    p = Playout()
    _jittery(p, 0, 500, 4.0)  # a few ms of pacing: under the offset
    assert p.hold_ms == PLAYOUT_DELAY_MS


def test_the_hold_grows_with_the_paths_jitter_and_shrinks_slowly_after() -> None:
    p = Playout()
    shown = _jittery(p, 0, 400, 120.0)
    # Transit spread 0-120 ms (mean 60, std dev 49): 60 + 2.33 x 49 - 30
    # = 144 ms over the base hold.
    assert 130 <= p.hold_ms - PLAYOUT_DELAY_MS <= 155, p.hold_ms
    # Once it settled, frames that late are shown at an even pace: no stall.
    assert max(b - a for a, b in pairwise(shown[200:])) < 100
    grown = p.hold_ms
    _jittery(p, 400, 100, 0.0)  # the path calms down: 4 s later, still held longer
    assert PLAYOUT_DELAY_MS < p.hold_ms < grown
    _jittery(p, 500, 2000, 0.0)
    assert p.hold_ms - PLAYOUT_DELAY_MS < 1.0


def test_repaired_frames_do_not_grow_the_hold() -> None:
    p = Playout()
    _jittery(p, 0, 50, 0.0)
    _jittery(p, 50, 400, 300.0, repaired=True)
    assert p.hold_ms == PLAYOUT_DELAY_MS


def test_the_hold_is_bounded() -> None:
    p = Playout()
    _jittery(p, 0, 400, 5000.0)
    assert p.hold_ms == MAX_HOLD_MS


def test_a_frame_with_a_retransmitted_packet_is_marked_repaired() -> None:
    a = FrameAssembler()
    assert a.packet(1, True, True, True, 900, 0.0, rtp_timestamp=0)[0].repaired is False
    assert a.packet(3, True, True, False, 900, 80.0, rtp_timestamp=2 * TICKS) == []
    shown = a.packet(2, True, True, False, 900, 90.0, rtp_timestamp=TICKS, repaired=True)
    assert [f.repaired for f in shown] == [True, False]


def test_frames_held_behind_a_late_one_keep_their_own_arrival_time() -> None:
    """A repair 300 ms late holds 7 good frames behind it, over and over:
    those arrived on time, and the path's jitter estimate stays where it is."""
    m = StreamMeter(start_ms=0.0)
    a = FrameAssembler()
    for i in range(400):
        seq = i
        now = 40.0 * i
        if i % 25 == 10:  # lost, repaired 300 ms later
            lost = (seq, i)
        else:
            for f in a.packet(seq, True, True, i % 25 == 0, 900, now, rtp_timestamp=i * TICKS):
                m.frame(f.at_ms, f.size_bytes, rtp_timestamp=f.rtp_timestamp,
                        repaired=f.repaired, arrived_ms=f.arrived_ms)
        if i % 25 == 17:
            s, j = lost
            for f in a.packet(s, True, True, False, 900, now + 20, rtp_timestamp=j * TICKS,
                              repaired=True):
                m.frame(f.at_ms, f.size_bytes, rtp_timestamp=f.rtp_timestamp,
                        repaired=f.repaired, arrived_ms=f.arrived_ms)
    assert m._playout.hold_ms == PLAYOUT_DELAY_MS
    # Each repair is a freeze the hold did not cover.
    assert m.take(16000.0).freeze_count >= 14
