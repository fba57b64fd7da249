"""The report and the live page read picture-stuck time while a stall
lasts: a 12 s stall with packets still arriving is frozen in each of its
seconds (the samples' frozen share, the region verdict, the score), not only
in the second its freeze ends; older probes, which report only freezes that
ended, are read as before."""

from __future__ import annotations

import numpy as np

from qosmon.i18n import translator
from qosmon.model import ConnectionState, ProbeSample
from qosmon.pipeline import ProbeQos
from qosmon.report.experience import experience_scores
from qosmon.report.live import LiveInputs, _probe_rows
from qosmon.report.signals import ProbeTable
from qosmon.report.verdict import DEGRADED, GOOD, ReportThresholds, region_verdicts

T0 = 1_800_000_000.0
STALL = range(20, 32)  # seconds of the stall; the freeze ends in second 32


def samples(probe: str, new_probe: bool) -> list[ProbeSample]:
    out = []
    for k in range(60):
        stalled = k in STALL
        ends = k == STALL.stop
        out.append(ProbeSample(
            ts=T0 + k + 0.5, show_id="s", stream_id="m", probe_id=probe, region="ID",
            state=ConnectionState.CONNECTED, rtt_ms=40.0, loss_pct=0.0, bitrate_kbps=700.0,
            fps=0.0 if stalled else 18.0,
            no_frame_ms=(k - STALL.start + 1) * 1000.0 if stalled else 40.0,
            freeze_count=1 if ends else 0, freeze_ms=len(STALL) * 1000.0 if ends else 0.0,
            stuck_ms=1000.0 if (stalled and new_probe) else 0.0,
        ))
    return out


def test_frozen_while_it_lasts_for_probes_that_report_stuck_time() -> None:
    table = ProbeTable.from_samples(samples("new", True) + samples("old", False), ["ID"], T0)
    new = table.probe_idx == table.probes.index("new")
    old = ~new
    sec_new, sec_old = table.sec[new], table.sec[old]
    frozen_new = dict(zip(sec_new.tolist(), table.frozen_ms[new].tolist(), strict=True))
    frozen_old = dict(zip(sec_old.tolist(), table.frozen_ms[old].tolist(), strict=True))
    assert all(frozen_new[k] == 1000.0 for k in STALL) and frozen_new[STALL.stop] == 0.0
    # The older probe's freeze is its whole length in the second it ended.
    assert all(frozen_old[k] == 0.0 for k in STALL)
    assert frozen_old[STALL.stop] == len(STALL) * 1000.0
    # Summed over the show, the two say the same.
    assert table.frozen_ms[new].sum() == table.frozen_ms[old].sum()


def test_verdict_is_degraded_from_the_first_stuck_second() -> None:
    th = ReportThresholds(no_frame_failed_ms=1e9)  # judge the freeze alone
    only_new = ProbeTable.from_samples(samples("new", True), ["ID"], T0)
    (v,) = region_verdicts(only_new, T0, T0 + 60, ["ID"], th)
    assert v.timeline[STALL.start] == DEGRADED and v.timeline[STALL.start + 5] == DEGRADED
    assert v.timeline[STALL.start - 2] == GOOD


def test_score_counts_stuck_time_until_the_stream_counts_as_down() -> None:
    new = ProbeTable.from_samples(samples("new", True), ["ID"], T0)
    (s,) = experience_scores(new, ["ID"])
    # 12 s stuck: the 4 with no frame for less than 5 s are frozen, the 8
    # after them down (availability's), not both; share of connected time.
    assert s.availability is not None and abs(s.availability - 52 / 60) < 1e-3
    assert s.smoothness is not None and abs(s.smoothness - (1 - (4 / 60) / 0.10)) < 1e-3


def test_live_page_row_says_what_is_stuck_now() -> None:
    latest = samples("new", True)[STALL.start + 2].model_copy(
        update={"audio_stalled": True, "audio_stalled_ms": 1000.0})
    live = LiveInputs(now=latest.ts + 1, running=True, fleet=[],
                      probes=[ProbeQos("new", "ID", latest, up=True)], stock=[])
    (row,) = _probe_rows(live, ["ID"], translator("en"))
    assert row.now == "picture stuck, no audio"
    (row_zh,) = _probe_rows(live, ["ID"], translator("zh"))
    assert row_zh.now == "画面卡住, 无音频"
    fine = samples("new", True)[5]
    live = LiveInputs(now=fine.ts + 1, running=True, fleet=[],
                      probes=[ProbeQos("new", "ID", fine, up=True)], stock=[])
    assert _probe_rows(live, ["ID"], translator("en"))[0].now == ""
    assert np.isfinite(fine.stuck_ms)


def test_live_page_row_says_the_probe_is_overloaded_now() -> None:
    fine = samples("new", True)[5]

    def row_now(**update: object) -> str:
        latest = fine.model_copy(update=update)
        live = LiveInputs(now=latest.ts + 1, running=True, fleet=[],
                          probes=[ProbeQos("new", "ID", latest, up=True)], stock=[])
        (row,) = _probe_rows(live, ["ID"], translator("en"))
        return row.now

    assert row_now(socket_drops=12, probe_lag_ms=3.0) == "probe overloaded"
    assert row_now(socket_drops=0, probe_lag_ms=450.0) == "probe overloaded"
    assert row_now(socket_drops=0, probe_lag_ms=3.0) == ""
    assert row_now() == ""  # an older probe says nothing of its health
