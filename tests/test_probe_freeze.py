"""W3C webrtc-stats freezes and pauses on frame-arrival sequences."""

from __future__ import annotations

from probes.freeze import FreezeDetector, Stall


def feed(det: FreezeDetector, times: list[float]) -> list[Stall | None]:
    return [det.frame(t) for t in times]


def steady(start: float, n: int, step: float = 40.0) -> list[float]:
    return [start + i * step for i in range(n)]


def test_steady_frames_no_freeze() -> None:
    det = FreezeDetector()
    assert all(r is None for r in feed(det, steady(0, 100)))
    assert det.counts.freeze_count == 0 and det.counts.pause_count == 0


def test_freeze_threshold_is_mean_plus_150_at_25fps() -> None:
    # mean 40 ms: max(120, 190) = 190 ms
    det = FreezeDetector()
    feed(det, steady(0, 31))
    assert det.threshold_ms() == 190.0
    last = 30 * 40.0
    assert det.frame(last + 189) is None  # just under: not a freeze
    det2 = FreezeDetector()
    feed(det2, steady(0, 31))
    assert det2.frame(last + 190) is Stall.FREEZE
    assert det2.counts.freeze_count == 1 and det2.counts.freeze_ms == 190


def test_freeze_threshold_is_three_means_at_low_fps() -> None:
    # 5 fps: mean 200 ms: max(600, 350) = 600 ms
    det = FreezeDetector()
    feed(det, steady(0, 31, 200.0))
    assert det.threshold_ms() == 600.0
    t = 30 * 200.0
    assert det.frame(t + 599) is None
    det2 = FreezeDetector()
    feed(det2, steady(0, 31, 200.0))
    assert det2.frame(t + 600) is Stall.FREEZE


def test_mean_uses_last_30_durations_only() -> None:
    det = FreezeDetector()
    feed(det, steady(0, 40, 100.0))  # slow start
    t = 39 * 100.0
    feed(det, [t + 40 * (i + 1) for i in range(30)])  # then 30 frames at 40 ms
    assert det.threshold_ms() == 190.0


def test_no_judgement_before_enough_frames() -> None:
    det = FreezeDetector()
    assert feed(det, [0, 40, 1000]) == [None, None, None]
    assert det.counts.freeze_count == 0


def test_long_stall_while_packets_arrive_is_one_freeze_not_a_pause() -> None:
    # The browser's rule: a 24 s stall during which packets keep arriving (a
    # squeeze) is one 24 s freeze; only a stream that stops makes a pause.
    det = FreezeDetector()
    feed(det, steady(0, 31))
    t = 30 * 40.0
    assert det.ongoing(t + 10_000) is Stall.FREEZE
    assert det.frame(t + 24_000) is Stall.FREEZE
    assert det.counts.freeze_count == 1 and det.counts.freeze_ms == 24_000
    assert det.counts.pause_count == 0


def test_pause_only_when_the_stream_stopped() -> None:
    det = FreezeDetector()
    det.stream_inactive()  # before any frame: nothing to call a pause
    feed(det, steady(0, 31))
    t = 30 * 40.0
    det.stream_inactive()
    assert det.ongoing(t + 100) is Stall.PAUSE
    assert det.frame(t + 7000) is Stall.PAUSE
    assert det.counts.pause_count == 1 and det.counts.pause_ms == 7000
    assert det.counts.freeze_count == 0
    # the next stall, packets arriving again, is a freeze
    assert det.frame(t + 7000 + 1000) is Stall.FREEZE


def test_picture_stuck_is_counted_while_it_lasts() -> None:
    det = FreezeDetector()
    feed(det, steady(0, 31))
    last = 30 * 40.0  # threshold is 190 ms at 25 fps
    assert det.take_stuck_ms(last + 100) == 0.0  # within the threshold: not stuck
    assert det.take_stuck_ms(last + 1000) == 1000.0  # crossed it: the whole gap so far
    assert det.take_stuck_ms(last + 2000) == 1000.0
    assert det.frame(last + 2500) is Stall.FREEZE
    assert det.take_stuck_ms(last + 2500) == 500.0  # the rest, once it ended
    det.frame(last + 2540)
    assert det.take_stuck_ms(last + 2560) == 0.0
    total = 1000.0 + 1000.0 + 500.0
    assert total == det.counts.freeze_ms  # stuck time adds up to the freezes


def test_freeze_in_progress_is_visible_before_it_ends() -> None:
    det = FreezeDetector()
    feed(det, steady(0, 31))
    last = 30 * 40.0
    assert det.ongoing(last + 100) is None
    assert det.no_frame_ms(last + 100) == 100
    assert det.ongoing(last + 300) is Stall.FREEZE
    assert det.counts.freeze_count == 0  # not counted until it ends, as W3C
    assert det.ongoing(last + 6000) is Stall.FREEZE  # packets still came: no pause
    assert det.no_frame_ms(last + 6000) == 6000
    assert det.frame(last + 700) is Stall.FREEZE
    assert det.ongoing(last + 720) is None


def test_no_frames_yet() -> None:
    det = FreezeDetector()
    assert det.ongoing(1e6) is None and det.no_frame_ms(1e6) is None
