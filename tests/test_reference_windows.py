"""How the reference comparison judges a phase run several times over
(bench/browser_reference.py --repeat): the means of its windows against the
targets. Pure figures; the runs themselves are in
tests/test_probe_browser_reference.py."""

from __future__ import annotations

from typing import Any

from tests.reference_viewer import Phase, _control_compared, aggregate, compared, verdicts

LOSS15 = Phase("loss15", 15)


def window(probe_frozen: float, browser_frozen: float, probe_kbps: float = 820.0,
           browser_kbps: float = 820.0) -> dict[str, Any]:
    f = compared({
        "samples": 26, "probe_loss_pct": 11.5, "truth_loss_pct_probe_path": 11.4,
        "probe_received_kbps": probe_kbps, "browser_kbps": browser_kbps,
        "probe_fps": 24.5, "browser_fps": 24.0, "probe_frozen_s": probe_frozen,
        "browser_frozen_s": browser_frozen, "sender_kbps_to_probe": None,
        "sender_kbps_to_browser": None, "tbf_dropped_packets": {"probe": 0, "browser": 0},
    })
    f["verdicts"] = verdicts(LOSS15, f)
    return f


def test_windows_that_each_miss_on_either_side_can_meet_the_target_together() -> None:
    # One unlucky window each way (2 s off a 5 s browser figure, where 1 s
    # is allowed): the probe reads neither high nor low.
    windows = [window(3.0, 5.0), window(7.0, 5.0)]
    assert [w["verdicts"]["frozen_s_vs_browser"]["pass"] for w in windows] == [False, False]
    mean = compared(aggregate(windows))
    assert mean["windows"] == 2
    assert mean["probe_frozen_s"] == 5.0 and mean["browser_frozen_s"] == 5.0
    assert verdicts(LOSS15, mean)["frozen_s_vs_browser"]["pass"]


def test_a_probe_that_reads_low_in_every_window_misses_on_the_mean() -> None:
    windows = [window(3.5, 5.0), window(4.0, 5.5), window(5.0, 6.8)]
    mean = compared(aggregate(windows))
    v = verdicts(LOSS15, mean)["frozen_s_vs_browser"]
    assert not v["pass"] and v["value"] == -1.6  # 4.17 against 5.77 s: 1.15 s allowed


def test_the_rates_are_compared_again_from_their_means() -> None:
    windows = [window(1.0, 1.0, 800.0, 760.0), window(1.0, 1.0, 800.0, 840.0)]
    assert [w["probe_vs_browser_kbps_pct"] for w in windows] == [5.3, -4.8]
    mean = compared(aggregate(windows))
    assert mean["probe_vs_browser_kbps_pct"] == 0.0
    assert verdicts(LOSS15, mean)["received_kbps_vs_browser_pct"]["pass"]


def test_a_figure_missing_from_any_window_has_no_mean() -> None:
    a, b = window(1.0, 1.0), window(1.0, 1.0)
    b["probe_fps"] = None
    mean = compared(aggregate([a, b]))
    assert mean["probe_fps"] is None and mean["probe_vs_browser_fps_pct"] is None
    assert not verdicts(LOSS15, mean)["fps_vs_browser_pct"]["pass"]
    # what is not a number (verdicts, counters of each path) is not averaged
    assert "verdicts" not in mean and "tbf_dropped_packets" not in mean


def test_one_window_is_its_own_figure() -> None:
    w = window(2.0, 2.5)
    assert aggregate([w]) == w


def test_two_browsers_are_held_to_the_probe_s_targets() -> None:
    def pair(a_kbps: float, b_kbps: float, a_frozen: float, b_frozen: float) -> dict[str, Any]:
        return {"a_kbps": a_kbps, "b_kbps": b_kbps, "a_fps": 24.0, "b_fps": 25.0,
                "a_frozen_s": a_frozen, "b_frozen_s": b_frozen}

    met = _control_compared(LOSS15, pair(500.0, 540.0, 4.17, 5.41))["targets_met"]
    # 7.4 % apart in rate, 1.24 s in frozen time where 1.08 s is allowed
    assert met == {"received_kbps_vs_browser_pct": False, "fps_vs_browser_pct": True,
                   "frozen_s_vs_browser": False}
    # b received nothing: no figure to compare, nothing met
    nothing = _control_compared(LOSS15, pair(500.0, 0.0, 0.0, 0.0))
    assert nothing["kbps_a_vs_b_pct"] is None
    assert not nothing["targets_met"]["received_kbps_vs_browser_pct"]
    assert "frozen_s_vs_browser" not in _control_compared(Phase("clean"), pair(
        500.0, 500.0, 0.0, 0.0))["targets_met"]
