"""One detector library and one localizer, live and offline: the recorded
shows (real aiortc probes, tests/data/demo-recorded-shows.json.gz) go through
the engine's own per-region detectors and conversion breakdown, and through
``qosmon detect`` / ``qosmon localize`` on CSV files written from the same
series, and both give the same findings."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from qosmon.diagnosis.breakdown import conversion_leaves, where_ratio_moved
from qosmon.diagnosis.business import RegionBusiness
from qosmon.diagnosis.engine import DiagnosisEngine
from qosmon.model import BusinessSample
from tests.test_diagnosis_recorded import SHOWS, _raw, recorded

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qosmon.cli", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def _engine(show_id: str) -> DiagnosisEngine:
    show, _ = recorded(show_id)
    d = _raw()[show_id]
    engine = DiagnosisEngine(show)
    engine.add_business(
        BusinessSample.model_validate(
            {"show_id": show_id,
             **{k: v for k, v in zip(d["business_fields"], row, strict=True) if v is not None}}
        )
        for row in d["business"]
    )
    return engine


def _write(path: Path, rows: list[tuple[int, int]]) -> None:
    path.write_text("timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in rows))


def _cli_flags(path: Path, kind: str) -> list[bool]:
    res = _cli("detect", "--kind", kind, "--clock", "time", str(path))
    assert res.returncode == 0, res.stderr
    return [r[4] == "1" for r in list(csv.reader(io.StringIO(res.stdout)))[1:]]


@pytest.mark.parametrize("show_id", SHOWS)
def test_detect_flags_what_the_engine_flags(show_id: str, tmp_path: Path) -> None:
    engine = _engine(show_id)
    for region, live in engine._business.items():
        # A fresh tracker with the same data: the engine's detectors, second
        # by second as the engine evaluates them.
        rb = RegionBusiness(region, engine.cfg)
        rb.viewers, rb.orders_total = live.viewers, live.orders_total
        rb.sku_orders, rb.chat, rb.leaves = live.sku_orders, live.chat, live.leaves
        seconds = sorted(rb.viewers)
        statuses = [rb.evaluate(s) for s in seconds]
        viewers_engine = [st.viewers is not None and st.viewers.anomalous for st in statuses]
        orders_engine = [st.orders is not None and st.orders.anomalous for st in statuses]
        _write(tmp_path / "viewers.csv", [(s, rb.viewers[s]) for s in seconds])
        _write(tmp_path / "orders.csv", [(s, rb.orders_at(s) or 0) for s in seconds])
        assert _cli_flags(tmp_path / "viewers.csv", "level") == viewers_engine, region
        assert _cli_flags(tmp_path / "orders.csv", "count") == orders_engine, region


def test_localize_names_what_the_engine_names(tmp_path: Path) -> None:
    named = {}
    for show_id in SHOWS:
        engine = _engine(show_id)
        _, incidents = recorded(show_id)
        for inc in incidents:
            end = int(inc.end_ts if inc.end_ts is not None else inc.start_ts + 30)
            leaves = conversion_leaves(engine._business, int(inc.start_ts), end)
            assert leaves is not None
            live = where_ratio_moved(leaves)
            f = tmp_path / "leaves.csv"
            with f.open("w", newline="") as fh:
                csv.writer(fh).writerows(leaves.csv_rows())
            res = _cli("localize", "--details", str(f))
            assert res.returncode == 0, res.stderr
            offline = json.loads(res.stdout)
            assert [x["combination"] for x in offline] == [x.combination for x in live]
            assert [x["explains"] for x in offline] == [round(x.explains, 3) for x in live]
            named[(show_id, inc.cause.value, tuple(inc.skus))] = live
    # The sell-out of the earbuds in the US warehouse: US-W converts far worse
    # at the viewers it has, and nothing else does at the time.
    (sold_out,) = named[("diag-commerce", "stock_out", ("SKU-EARBUDS",))]
    assert sold_out.combination["region"] == "US-W" and sold_out.change < -0.5
    assert sold_out.combination.get("sku", "SKU-EARBUDS") == "SKU-EARBUDS"
    # Network faults in one region leave conversion where it was.
    assert all(not v for (show, cause, _), v in named.items()
               if show == "diag-network" and cause != "node_failure")
