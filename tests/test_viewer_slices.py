"""The players' reports as the engine keeps them (columns, in time order,
bounded) and how often the engine localizes them: never on arrival, at most
one incident per step."""

from __future__ import annotations

import random

import numpy as np
import pytest

from qosmon.diagnosis.breakdown import ViewerMeasure, usual_ratios
from qosmon.diagnosis.engine import DiagnosisEngine
from qosmon.diagnosis.viewer_slices import ViewerSlices
from qosmon.model import Cause, Metric, ViewerAggregate
from tests.test_diagnosis_engine import PROBES, SHOW, T0, outage, sample


def agg(ts: float, region: str = "ID", isp: str = "", sessions: int = 100,
        failures: int = 1, **kw: float) -> ViewerAggregate:
    return ViewerAggregate(ts=ts, show_id="s1", region=region, isp=isp, sessions=sessions,
                           failures=failures, **kw)


def test_sums_per_slice_now_against_before_whatever_the_arrival_order() -> None:
    rows = [
        agg(100, "ID", "a", 100, 1), agg(160, "ID", "a", 120, 2), agg(160, "TH", "b", 50, 0),
        agg(220, "ID", "a", 90, 9), agg(220, "TH", "b", 60, 1), agg(280, "TH", "c", 10, 5),
    ]
    vs = ViewerSlices()
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    for x in shuffled:
        vs.add([x])
        vs.absorb()
    got = vs.leaves(200.0, 300.0, ViewerMeasure.FAILURE_RATE, reference_s=150.0)
    assert got is not None
    assert got.dims == ("region", "isp")
    assert got.leaves == [{"region": "ID", "isp": "a"}, {"region": "TH", "isp": "b"},
                          {"region": "TH", "isp": "c"}]
    # Now (200, 300]: failures and sessions; before (50, 200]: sessions, and
    # failures at the usual rate of all (3.5 in 271: none departs from it).
    assert got.real_a == [9, 1, 5] and got.real_b == [90, 60, 10]
    assert got.predict_b == [220, 50, 0]
    assert got.predict_a == pytest.approx([220 * 3.5 / 271, 50 * 3.5 / 271, 0])
    # Nothing after the start, or nothing before it: no breakdown.
    assert vs.leaves(300.0, 400.0, ViewerMeasure.FAILURE_RATE) is None
    assert vs.leaves(50.0, 400.0, ViewerMeasure.FAILURE_RATE, reference_s=10) is None


def test_usual_ratio_is_the_pooled_one_unless_a_leaf_departs_beyond_noise() -> None:
    # Small leaves with 0, 1 or 3 failures in 100 sessions: noise around 1 %.
    # A big leaf failing 5 % of 10,000 sessions: that is its usual.
    a = np.array([0.0, 1.0, 3.0, 500.0, 100.0])
    b = np.array([100.0, 100.0, 100.0, 10_000.0, 10_000.0])
    got = usual_ratios(a, b)
    pooled = (604 + 0.5) / (20_300 + 1)
    assert got[:3] == pytest.approx([pooled] * 3)
    assert got[3] == pytest.approx(500.5 / 10_001)
    assert got[4] == pytest.approx(100.5 / 10_001)  # well below the pooled 3 %


def test_kept_for_an_hour_and_at_most_max_rows() -> None:
    vs = ViewerSlices(max_rows=50)
    vs.add(agg(float(t)) for t in range(1, 41))
    vs.absorb()
    vs.add([agg(4000.0)])
    vs.absorb()
    assert len(vs) == 1  # the first forty are more than an hour older
    vs.add(agg(4000.0 + t, isp=f"isp-{t}") for t in range(1, 40))
    vs.absorb()
    vs.add(agg(4000.0 + t, isp=f"isp-{t}") for t in range(40, 80))
    vs.absorb()
    assert len(vs) == 50
    got = vs.leaves(4070.0, 5000.0, ViewerMeasure.FAILURE_RATE)
    assert got is not None
    assert {x["isp"] for x in got.leaves} == {f"isp-{t}" for t in range(30, 80)}


def test_a_breakdown_holds_at_most_max_leaves_the_largest_slices() -> None:
    vs = ViewerSlices(max_leaves=3)
    vs.add(agg(100, isp=f"i{k}", sessions=10 * k) for k in range(1, 7))
    vs.add(agg(200, isp=f"i{k}", sessions=10 * k) for k in range(1, 7))
    vs.absorb()
    got = vs.leaves(150.0, 250.0, ViewerMeasure.FAILURE_RATE)
    assert got is not None
    assert [x["isp"] for x in got.leaves] == ["i4", "i5", "i6"]


def test_reports_wait_until_filed_a_bounded_number_at_a_time() -> None:
    vs = ViewerSlices(max_rows=100)
    vs.add(agg(100, isp=f"i{k}") for k in range(150))
    assert (vs.pending, len(vs)) == (100, 0)  # the oldest fifty handed over dropped
    assert vs.absorb(40) == 40 and (vs.pending, len(vs)) == (60, 40)
    vs.add([agg(200, isp="i149")])
    got = vs.leaves(150.0, 250.0, ViewerMeasure.FAILURE_RATE)
    assert got is None  # the report after the start is not filed yet
    assert vs.absorb() == 61 and vs.pending == 0
    assert len(vs) == 100  # the columns keep max_rows too: i50 is gone
    got = vs.leaves(150.0, 250.0, ViewerMeasure.FAILURE_RATE)
    assert got is not None
    assert {x["isp"] for x in got.leaves} == {f"i{k}" for k in range(51, 150)}


class CountingSlices(ViewerSlices):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def leaves(self, start: float, end: float, measure: ViewerMeasure, *,
               reference_s: float = 600.0):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().leaves(start, end, measure, reference_s=reference_s)


def test_engine_localizes_reports_at_most_once_a_step_never_on_arrival() -> None:
    """Two regions' outages open together while reports keep arriving: each
    step localizes one measure of one incident at most, adding reports
    or reading incidents computes nothing, and both incidents still get
    their players' evidence: the ISP of ID that failed is named."""
    rnd = random.Random(2)
    eng = DiagnosisEngine(SHOW)
    counting = CountingSlices()
    eng._viewers = counting
    faults = [outage("ID", 700, 800), outage("TH", 700, 800)]
    per_step = []
    for k in range(900):
        eng.add_probe_samples(
            sample(pid, k, rnd, **(next((o for f in faults if (o := f(pid, k))), None) or {}))
            for pid, *_ in PROBES
        )
        if k % 10 == 0:  # reports every 10 s, per region x ISP
            before = counting.calls
            eng.add_viewer_aggregates(
                agg(T0 + k, r, isp, 500, 30 if (r, isp, k > 705) == ("ID", "telkomsel", True)
                    else 5)
                for _, r, isp, *_ in PROBES
            )
            assert counting.calls == before
        before = counting.calls
        eng.step(T0 + k + 1)
        per_step.append(counting.calls - before)
        eng.incidents  # noqa: B018 - reading incidents must not compute
        assert counting.calls == before + per_step[-1]
    assert max(per_step) == 1 and sum(per_step) > 4
    outages = {i.scope["region"]: i for i in eng.incidents if i.cause == Cause.NODE_FAILURE}
    assert set(outages) == {"ID", "TH"}
    fail = [e for e in outages["ID"].evidence if e.metric == Metric.FAILURE_RATE]
    assert len(fail) == 1 and "in isp telkomsel:" in fail[0].text
    assert not [e for e in outages["TH"].evidence if e.metric == Metric.FAILURE_RATE]
