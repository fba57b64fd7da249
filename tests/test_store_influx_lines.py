"""Line protocol for probe samples: the cached fast path writes exactly what
the plain definition (tags escaped and empty ones left out, ints with ``i``,
floats as ``repr``, unknown fields left out, ms timestamps) writes."""

from __future__ import annotations

import random

from qosmon.model import ConnectionState, ProbeSample
from qosmon.store.influx import PROBE_FIELDS, PROBE_TAGS, escape_tag, probe_line

OPTIONAL = [n for n, f in ProbeSample.model_fields.items()
            if n in PROBE_FIELDS and not f.is_required() and f.default is None]
LABELS = ["ID", "with space", "com,ma", "equ=als", "tr\\ail\\", 'quo"te', "Jakarta–Süd 雅加达", ""]


def reference_line(s: ProbeSample) -> str:
    d = s.__dict__
    tags = "".join(f",{t}={escape_tag(str(d[t]))}" for t in PROBE_TAGS if str(d[t]) != "")
    fields = ",".join(
        f"{n}={d[n]}i" if isinstance(d[n], int) else f"{n}={d[n]!r}"
        for n in PROBE_FIELDS if d[n] is not None
    )
    return f"qosmon_probe{tags} {fields} {round(s.ts * 1000)}"


def random_sample(rng: random.Random) -> ProbeSample:
    d: dict[str, object] = {
        "ts": 1_700_000_000 + rng.random() * 1e5, "show_id": rng.choice(LABELS[:-1]),
        "stream_id": rng.choice(LABELS[:-1]), "probe_id": rng.choice(LABELS[:-1]),
        "region": rng.choice(LABELS[:-1]), "isp": rng.choice(LABELS),
        "edge_node": rng.choice(LABELS), "state": rng.choice(list(ConnectionState)),
        "packets_expected": rng.randrange(2**40), "freeze_ms": rng.random() * 1e3,
    }
    for name in OPTIONAL:
        if rng.random() < 0.5:
            ann = str(ProbeSample.model_fields[name].annotation)
            d[name] = rng.randrange(4000) if "int" in ann else rng.choice(
                [0.0, 1e-300, 1 / 3, 42.5, 99.99999999999999, rng.random() * 100])
    return ProbeSample.model_validate(d)


def test_probe_lines_match_the_plain_definition() -> None:
    rng = random.Random(4)
    samples = [random_sample(rng) for _ in range(500)]
    for s in samples + samples:  # the second round comes from the caches
        assert probe_line(s) == reference_line(s)


def test_a_value_of_an_unexpected_type_is_still_written_as_its_type() -> None:
    s = random_sample(random.Random(1))
    s.__dict__["rtt_ms"] = 7  # an int where a float is declared (bypassing validation)
    assert probe_line(s) == reference_line(s)
    assert ",rtt_ms=7i," in (probe_line(s) or "")


def test_the_probe_health_fields_are_series() -> None:
    s = ProbeSample(ts=1_700_000_000.0, show_id="s", stream_id="m", probe_id="p", region="ID",
                    state=ConnectionState.CONNECTED, probe_lag_ms=312.5, socket_drops=17)
    line = probe_line(s) or ""
    assert ",probe_lag_ms=312.5" in line and ",socket_drops=17i" in line
    unknown = probe_line(s.model_copy(update={"probe_lag_ms": None, "socket_drops": None})) or ""
    assert "probe_lag_ms" not in unknown and "socket_drops" not in unknown
