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


def test_pause_over_5s_is_not_a_freeze() -> None:
    det = FreezeDetector()
    feed(det, steady(0, 31))
    t = 30 * 40.0
    assert det.frame(t + 5001) is Stall.PAUSE
    assert det.counts.pause_count == 1 and det.counts.pause_ms == 5001
    assert det.counts.freeze_count == 0
    # exactly 5 s is a (long) freeze, not a pause: "more than 5 s"
    det2 = FreezeDetector()
    feed(det2, steady(0, 31))
    assert det2.frame(t + 5000) is Stall.FREEZE


def test_freeze_in_progress_is_visible_before_it_ends() -> None:
    det = FreezeDetector()
    feed(det, steady(0, 31))
    last = 30 * 40.0
    assert det.ongoing(last + 100) is None
    assert det.no_frame_ms(last + 100) == 100
    assert det.ongoing(last + 300) is Stall.FREEZE
    assert det.counts.freeze_count == 0  # not counted until it ends, as W3C
    assert det.ongoing(last + 6000) is Stall.PAUSE
    assert det.no_frame_ms(last + 6000) == 6000
    assert det.frame(last + 700) is Stall.FREEZE
    assert det.ongoing(last + 720) is None


def test_no_frames_yet() -> None:
    det = FreezeDetector()
    assert det.ongoing(1e6) is None and det.no_frame_ms(1e6) is None
