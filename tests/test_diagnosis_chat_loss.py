"""Where chat loss rose, live: a chat incident carries the ratio localizer's
answer over the probes' labels (region, ISP, edge node), against the probes'
own healthy seconds before it; nothing when loss did not rise."""

from __future__ import annotations

import random

from qosmon.diagnosis.engine import DiagnosisEngine
from qosmon.model import Cause, ConnectionState, Evidence, Incident, ProbeSample, Show
from tests.synthetic_shows import Scenario, generate
from tests.test_diagnosis_recorded import recorded

T0 = 1_700_000_000.0
SHOW = Show(show_id="chat", start_ts=T0, regions=["A", "B", "C"])
# Three regions, two ISPs with the same names in each, two edge nodes per
# region each serving one probe of each ISP: "mobile in B" is only a depth-2
# combination, and no edge node or region holds exactly its probes.
PROBES = [
    (f"{r.lower()}-{isp}-{n}", r, isp, f"{r.lower()}-edge-{n}")
    for r in ("A", "B", "C")
    for isp in ("fiber", "mobile")
    for n in (1, 2)
]


def _run(fault: dict[str, tuple[str, str]], seconds: int = 230) -> list[Incident]:
    """Probes chatting one message a second (a lost one now and then); from
    120 s to 180 s those of ``fault`` = {"stall"|"slow": (region, isp)} lose
    every message or get them late."""
    rnd = random.Random(7)
    eng = DiagnosisEngine(SHOW)
    for k in range(seconds):
        batch = []
        for pid, region, isp, edge in PROBES:
            lost, chat_rtt = (1 if rnd.random() < 0.005 else 0), 60 + rnd.uniform(0, 40)
            for kind, where in fault.items():
                if 120 <= k < 180 and where == (region, isp):
                    if kind == "stall":
                        lost, chat_rtt = (1 if k >= 123 else 0), None
                    else:
                        chat_rtt = 2200 + rnd.uniform(0, 300)
            batch.append(
                ProbeSample(
                    ts=T0 + k + rnd.uniform(0.1, 0.9),
                    show_id="chat",
                    stream_id="main",
                    probe_id=pid,
                    region=region,
                    isp=isp,
                    edge_node=edge,
                    state=ConnectionState.CONNECTED,
                    rtt_ms=80 * rnd.uniform(0.9, 1.1),
                    loss_pct=rnd.uniform(0, 0.5),
                    bitrate_kbps=750 * rnd.uniform(0.95, 1.05),
                    fps=24 * rnd.uniform(0.95, 1.05),
                    no_frame_ms=50.0,
                    chat_sent=1,
                    chat_lost=lost,
                    chat_rtt_ms=chat_rtt,
                )
            )
        eng.add_probe_samples(batch)
        eng.step(T0 + k + 1)
    return eng.incidents


def _where(inc: Incident) -> list[Evidence]:
    return [e for e in inc.evidence if e.text.startswith("chat loss rose")]


def test_a_stall_on_one_isp_of_a_region_is_localized_to_it() -> None:
    incidents = _run({"stall": ("B", "mobile")})
    chat = [i for i in incidents if i.cause == Cause.CHAT_CHANNEL]
    assert [i.scope for i in chat] == [{"region": "B", "isp": "mobile"}], [
        (i.cause, i.scope) for i in incidents
    ]
    (ev,) = _where(chat[0])
    assert "in region B isp mobile:" in ev.text, ev.text
    assert "100% of the rise" in ev.text
    assert ev.observed is not None and ev.observed >= 0.8
    assert ev.baseline is not None and ev.baseline < 0.02


def test_slow_chat_without_loss_gets_no_loss_localization() -> None:
    incidents = _run({"slow": ("A", "fiber")})
    chat = [i for i in incidents if i.cause == Cause.CHAT_CHANNEL]
    assert [i.scope for i in chat] == [{"region": "A", "isp": "fiber"}]
    assert _where(chat[0]) == []
    assert any(e.metric == "chat_rtt_ms" for e in chat[0].evidence)


def test_clean_run_has_no_chat_incident_nor_evidence() -> None:
    incidents = _run({})
    assert not [e for i in incidents for e in _where(i)]


def test_show_wide_synthetic_stall_is_explained_by_all_probes() -> None:
    sc = Scenario("chat-all", Cause.CHAT_CHANNEL, None, 0.8, seed=5)
    show, seconds = generate(sc)
    eng = DiagnosisEngine(show)
    pending: list[tuple[float, ProbeSample]] = []
    for sec in seconds:
        pending += sec.probes
        now = sec.ts + 1
        eng.add_probe_samples([x for t, x in pending if t <= now])
        pending = [(t, x) for t, x in pending if t > now]
        eng.add_business(sec.business)
        eng.step(now)
    chat = [i for i in eng.incidents if i.cause == Cause.CHAT_CHANNEL]
    assert [i.scope for i in chat] == [{}]
    (ev,) = _where(chat[0])
    assert ev.text.startswith("chat loss rose across all probes"), ev.text


def test_recorded_demo_chat_stalls_are_localized() -> None:
    _, incidents = recorded("diag-commerce")
    chat = {str(sorted(i.scope.items())): i for i in incidents if i.cause == Cause.CHAT_CHANNEL}
    (th,) = _where(chat[str([("region", "TH")])])
    assert "in region TH:" in th.text
    (everywhere,) = _where(chat["[]"])
    assert "across all probes" in everywhere.text


def test_chat_counts_of_skipped_seconds_are_not_kept() -> None:
    """Seconds the engine never judges (it resumed after a gap) leave no
    chat counts behind waiting for them: what waits is bounded by the lag."""
    eng = DiagnosisEngine(SHOW)
    pid, region, isp, edge = PROBES[0]
    eng.add_probe_samples(
        ProbeSample(ts=T0 + k + 0.5, show_id="chat", stream_id="main", probe_id=pid,
                    region=region, isp=isp, edge_node=edge, state=ConnectionState.CONNECTED,
                    fps=24.0, bitrate_kbps=750.0, chat_sent=1)
        for k in range(100)
    )
    eng.step(T0 + 10)
    eng.resume_at(T0 + 80)
    eng.step(T0 + 100)
    # Seconds 10-79 were skipped and none of their counts wait. At most the
    # last second waits: judging lags 2 s, unless every reporting probe has
    # sent the second already (here the only probe has), then it is judged.
    waiting = sorted(k - int(T0) for k in eng._chat_in[pid])
    assert set(waiting) <= {99}
