"""Diagnosis with the figures newer probes send: the received rate with
retransmissions tells a sender that lowered its rate under a squeeze
(bandwidth) from a lossy path whose sender repairs (packet loss); audio
stalled is its own cause, at the source when every region loses it at once;
picture-stuck time shows a stall while it lasts."""

from __future__ import annotations

import pytest

from qosmon.diagnosis.config import DiagnosisConfig
from qosmon.diagnosis.engine import DiagnosisEngine
from qosmon.diagnosis.probe_health import Baseline, MediaView, classify_media
from qosmon.model import Cause, ConnectionState, Metric
from tests.synthetic_shows import Scenario, generate, new_figure_scenarios

CFG = DiagnosisConfig()
BASE = Baseline(bitrate_kbps=780.0, fps=18.0, rtt_ms=40.0, received_kbps=790.0)


def view(**kw: object) -> MediaView:
    fields: dict[str, object] = dict(
        second=100, state=ConnectionState.CONNECTED, no_frame_ms=40.0, fps=18.0,
        bitrate_kbps=780.0, rtt_ms=40.0, loss_pct=0.0, ttff_ms=300.0, chat_sent=5,
        chat_lost=0, chat_rtt_ms=50.0, received_kbps=790.0, rtx_kbps=2.0, stuck_ms=0.0,
        audio_stalled_ms=0.0, audio_loss_pct=0.0,
    )
    fields.update(kw)
    return MediaView(**fields)  # type: ignore[arg-type]


def test_a_healthy_window_is_no_fault() -> None:
    assert classify_media(view(), BASE, CFG) is None


def test_sender_that_lowers_its_rate_is_bandwidth() -> None:
    # What a libwebrtc sender did under a 600 kbit/s tbf: 780 -> 470 kbps,
    # no loss, no repairs, RTT and frame rate unchanged.
    v = view(bitrate_kbps=470.0, received_kbps=470.0, rtx_kbps=0.0)
    assert classify_media(v, BASE, CFG) is Cause.BANDWIDTH
    # The same drop with heavy repairs is not a sender adapting.
    v = view(bitrate_kbps=400.0, received_kbps=470.0, rtx_kbps=70.0)
    assert classify_media(v, BASE, CFG) is None
    # A drop within the ratio is the content's own swing.
    v = view(bitrate_kbps=600.0, received_kbps=600.0, rtx_kbps=0.0)
    assert classify_media(v, BASE, CFG) is None


def test_lossy_path_whose_sender_repairs_is_not_bandwidth() -> None:
    # 30 % loss, RTT checks lost, originals down to 60 %, fps down: without
    # the received rate that reads as a full queue (bandwidth); with it
    # holding near the baseline, it is the path losing packets.
    lossy = dict(loss_pct=30.0, rtt_ms=None, bitrate_kbps=470.0, fps=8.0)
    assert classify_media(view(**lossy, received_kbps=None, rtx_kbps=None), BASE,
                          CFG) is Cause.BANDWIDTH
    assert classify_media(view(**lossy, received_kbps=760.0, rtx_kbps=290.0), BASE,
                          CFG) is Cause.PACKET_LOSS
    # A squeeze dropping packets still thins the link: bandwidth as before.
    assert classify_media(view(**lossy, received_kbps=480.0, rtx_kbps=10.0), BASE,
                          CFG) is Cause.BANDWIDTH


def test_audio_stalled_on_clean_path_is_its_own_cause() -> None:
    assert classify_media(view(audio_stalled_ms=3000.0, audio_loss_pct=None), BASE,
                          CFG) is Cause.AUDIO_STALLED
    # A second of it is a blip below the threshold.
    assert classify_media(view(audio_stalled_ms=1000.0), BASE, CFG) is None
    # With loss on the path, the path is to blame (video or audio loss).
    assert classify_media(view(audio_stalled_ms=3000.0, loss_pct=12.0), BASE,
                          CFG) is Cause.PACKET_LOSS
    assert classify_media(view(audio_stalled_ms=3000.0, audio_loss_pct=20.0), BASE,
                          CFG) is Cause.PACKET_LOSS
    # Video gone too: the node, not the audio.
    assert classify_media(view(audio_stalled_ms=3000.0, bitrate_kbps=0.0, fps=0.0,
                               received_kbps=0.0, no_frame_ms=6000.0), BASE,
                          CFG) is Cause.NODE_FAILURE


def _diagnose(sc: Scenario) -> DiagnosisEngine:
    show, seconds = generate(sc)
    eng = DiagnosisEngine(show)
    for sec in seconds:
        sec.feed(eng)
        eng.step(sec.ts + 1.0)
    return eng


@pytest.mark.parametrize(
    ("cause", "variant", "region", "strength"),
    [
        (Cause.BANDWIDTH, "adaptive", "TH", 0.2),  # the mild squeeze: bitrate at 0.56
        (Cause.BANDWIDTH, "adaptive", "US", 0.8),
        (Cause.PACKET_LOSS, "", "ID", 0.8),  # 25 % loss, RTT checks often lost
        (Cause.AUDIO_STALLED, "", "DE", 0.5),
        (Cause.AUDIO_STALLED, "", None, 0.5),
    ],
)
def test_new_figure_scenarios(cause: Cause, variant: str, region: str | None,
                              strength: float) -> None:
    sc = Scenario(f"{cause}-{variant}-{region}", cause, region, strength, seed=7,
                  variant=variant)
    eng = _diagnose(sc)
    got = [(i.cause, i.scope) for i in eng.incidents]
    assert got == [(cause, sc.expected_scope)]
    (inc,) = eng.incidents
    metrics = [e.metric for e in inc.evidence]
    if variant == "adaptive":
        # Led by what the link carried against its baseline; the loss and
        # repairs that rule out a lossy path come with it.
        assert metrics[:3] == [Metric.RECEIVED_KBPS, Metric.LOSS_PCT, Metric.RTX_KBPS]
        assert "lowered its bitrate" in inc.summary
        e = inc.evidence[0]
        assert e.observed is not None and e.threshold is not None and e.observed < e.threshold
    elif cause == Cause.PACKET_LOSS:
        assert Metric.RECEIVED_KBPS in metrics and Metric.RTX_KBPS in metrics
    else:
        assert metrics[0] == Metric.AUDIO_STALLED_MS
        if region is None:
            assert "at the source" in inc.summary and "not the network" in inc.summary
        else:
            assert "at the source" not in inc.summary and "hear the host" in inc.summary


def test_every_new_figure_scenario_is_found() -> None:
    """The whole set the benchmark scores, one seed and strength: each fault
    found with its cause and place, nothing else within it."""
    for sc in new_figure_scenarios(seeds=1, strengths=(0.5,)):
        eng = _diagnose(sc)
        got = [(i.cause, i.scope) for i in eng.incidents]
        assert got == [(sc.cause, sc.expected_scope)], sc.name


def test_stall_shows_in_the_evidence_while_it_lasts() -> None:
    """A squeeze that leaves the picture stuck (packets still arriving):
    the stuck time is evidence while the incident is open, before any
    freeze has ended."""
    sc = Scenario("bw", Cause.BANDWIDTH, "TH", 0.8, seed=3, variant="adaptive")
    show, seconds = generate(sc)
    eng = DiagnosisEngine(show)
    for sec in seconds:
        if sc.onset_ts <= sec.ts < sc.onset_ts + sc.fault_s:
            sec.probes = [(a, x.model_copy(update={"stuck_ms": 900.0, "freeze_ms": 0.0,
                                                   "freeze_count": 0}))
                          if x.region == "TH" else (a, x) for a, x in sec.probes]
        sec.feed(eng)
        eng.step(sec.ts + 1.0)
        if eng.incidents and eng.incidents[0].end_ts is None:
            break
    (inc,) = eng.incidents
    stuck = [e for e in inc.evidence if e.metric is Metric.STUCK_MS]
    assert stuck and stuck[0].observed is not None and stuck[0].observed >= 1800


def test_a_sender_ramping_up_after_a_rejoin_is_not_a_squeeze() -> None:
    v = view(bitrate_kbps=350.0, received_kbps=350.0, rtx_kbps=0.0)
    assert classify_media(v, BASE, CFG) is Cause.BANDWIDTH
    assert classify_media(view(bitrate_kbps=350.0, received_kbps=350.0, rtx_kbps=0.0,
                               settling=True), BASE, CFG) is None


def test_outage_then_ramp_up_is_one_node_failure() -> None:
    """Both probes of a region lose their edge node for 15 s and rejoin; the
    libwebrtc sender starts each new session at ~300 kbps and ramps up over
    20 s: that is the node failure ending, not a bandwidth squeeze after it."""
    from qosmon.model import ProbeSample, Show

    t0 = 1_800_000_000.0
    show = Show(show_id="s", start_ts=t0, regions=["ID", "TH"])
    eng = DiagnosisEngine(show)
    probes = [("id-1", "ID"), ("id-2", "ID"), ("th-1", "TH"), ("th-2", "TH")]
    for k in range(150):
        batch = []
        for pid, region in probes:
            down = region == "ID" and 60 <= k < 75
            ramp = region == "ID" and 75 <= k < 95
            rate = 300.0 + (k - 75) * 24.0 if ramp else 780.0
            batch.append(ProbeSample(
                ts=t0 + k + 0.3, show_id="s", stream_id="m", probe_id=pid, region=region,
                edge_node=f"{region}-edge",
                state=ConnectionState.DISCONNECTED if down else ConnectionState.CONNECTED,
                ttff_ms=(450.0 if k >= 75 and region == "ID" else 300.0),
                rtt_ms=None if down else 40.0, loss_pct=None if down else 0.0,
                bitrate_kbps=0.0 if down else rate, received_kbps=0.0 if down else rate,
                rtx_kbps=0.0, fps=0.0 if down else 18.0,
                no_frame_ms=(k - 59) * 1000.0 if down else 40.0,
            ))
        eng.add_probe_samples(batch)
        eng.step(t0 + k + 1.0)
    got = [(i.cause, i.scope.get("region")) for i in eng.incidents]
    assert got == [(Cause.NODE_FAILURE, "ID")]
    (inc,) = eng.incidents
    assert inc.end_ts is not None and inc.end_ts < t0 + 90


# --- a probe starved on its own host ------------------------------------------------


def _without_starvation(sc: Scenario) -> DiagnosisEngine:
    """The same show with the probes' own-health figures saying they kept
    up: the very same loss, now only the path's to explain."""
    show, seconds = generate(sc)
    eng = DiagnosisEngine(show)
    for sec in seconds:
        sec.probes = [(a, x.model_copy(update={"socket_drops": 0, "probe_lag_ms": 2.0}))
                      for a, x in sec.probes]
        sec.feed(eng)
        eng.step(sec.ts + 1.0)
    return eng


@pytest.mark.parametrize("region", ["ID", None])
def test_loss_a_starved_probe_caused_is_no_network_incident(region: str | None) -> None:
    """Every probe of a region (or of the show) reports 25 % loss together
    with the kernel's drops at its own sockets: the probes' hosts fell behind,
    not the network. The same loss from probes that kept up is the region's
    (or the origin's) packet loss."""
    sc = Scenario(f"starved-{region}", None, region, 0.8, seed=11, variant="starved")
    _, seconds = generate(sc)
    lossy = [x for sec in seconds for _, x in sec.probes
             if (x.socket_drops or 0) > 0 and (x.loss_pct or 0) > 5]
    assert len(lossy) >= 60  # the scenario does show the loss, with drops
    assert _diagnose(sc).incidents == []
    path = _without_starvation(sc)
    got = [(i.cause, i.scope) for i in path.incidents]
    assert got == [(Cause.PACKET_LOSS, {"region": region} if region else {})]


def test_a_late_loop_alone_starves_a_second_and_a_slightly_late_one_does_not() -> None:
    from qosmon.diagnosis.probe_health import Labels, ProbeTracker, starved
    from qosmon.model import ProbeSample

    def sample(k: int, **kw: object) -> ProbeSample:
        base: dict[str, object] = dict(
            ts=1_800_000_000.0 + k + 0.5, show_id="s", stream_id="m", probe_id="p",
            region="ID", state=ConnectionState.CONNECTED, rtt_ms=40.0, loss_pct=0.0,
            bitrate_kbps=780.0, fps=18.0, no_frame_ms=40.0)
        base.update(kw)
        return ProbeSample.model_validate(base)

    m = CFG.media
    assert not starved(sample(0), m)  # an older probe: no figures, counted as before
    assert not starved(sample(0, probe_lag_ms=m.probe_lag_ms - 1, socket_drops=0), m)
    assert starved(sample(0, probe_lag_ms=m.probe_lag_ms, socket_drops=0), m)
    assert starved(sample(0, probe_lag_ms=1.0, socket_drops=3), m)
    tr = ProbeTracker(Labels("p", "ID", "", ""), CFG)
    t0 = 1_800_000_000
    # Two seconds of 30 % loss with drops, then one of 30 % loss without:
    # the window's median is that of the seconds the probe kept up in
    # (all three counted, it would be 30 % at second 3).
    for k, (loss, drops) in enumerate([(0.0, 0), (30.0, 40), (30.0, 35), (0.0, 0),
                                       (30.0, 0)]):
        tr.add(sample(k, loss_pct=loss, socket_drops=drops))
    v = tr.view(t0 + 3)
    assert v is not None and v.loss_pct == 0.0
    v = tr.view(t0 + 4)
    assert v is not None and v.loss_pct == 15.0  # seconds 3 and 4: path loss counts
    # A window of starved seconds only is no data, not a healthy window.
    tr2 = ProbeTracker(Labels("p", "ID", "", ""), CFG)
    for k in range(5):
        tr2.add(sample(k, loss_pct=30.0, probe_lag_ms=450.0))
    assert tr2.view(t0 + 4) is None
    assert tr2.evaluate(t0 + 4).media_known is False
