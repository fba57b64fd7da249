"""When the engine judges a second: ``lag_s`` behind the clock, or as soon as
every probe still reporting has sent that second (nothing more can come, so
waiting only delays the page)."""

from __future__ import annotations

from qosmon.diagnosis.config import DiagnosisConfig, IncidentTimings
from tests.test_diagnosis_engine import only, outage, run


def detected_after(lag_s: float, delay: float) -> float:
    cfg = DiagnosisConfig(incident=IncidentTimings(lag_s=lag_s))
    eng, _ = run(60, outage("ID", 30, 60), delay=delay, config=cfg)
    inc = only(eng)
    assert inc.detected_ts is not None
    return inc.detected_ts - inc.start_ts


def test_a_second_is_judged_once_every_probe_has_sent_it() -> None:
    # Every sample is in well within its next second: the lag does not matter.
    assert detected_after(lag_s=5, delay=0.3) == detected_after(lag_s=2, delay=0.3)


def test_a_late_probe_holds_judging_back_up_to_the_lag() -> None:
    prompt = detected_after(lag_s=5, delay=0.3)
    # Samples up to 1.5 s late: some probe has not sent the second yet, so
    # judging waits (never past lag_s) rather than judge without it.
    late = detected_after(lag_s=5, delay=1.5)
    assert prompt < late <= prompt + 5
