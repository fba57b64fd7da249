"""The demo's verdict on diagnosis, printed and in the report: the same
faults, places, findings and detection delays, because the report shows
the records the demo's scoring wrote (no live show needed: the scoring and
the report are pure of it)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from qosmon.demo.scenario import load_scenario
from qosmon.demo.scoring import score
from qosmon.demo.show import DemoResult, summary_lines
from qosmon.model import Cause, Incident, InjectedFault, Severity
from qosmon.report.data import ShowData
from qosmon.report.render import build_report

SCENARIO = Path(__file__).resolve().parents[1] / "config" / "demo-scenario.toml"
START = 1_750_000_000.0


class _Rows(HTMLParser):
    """Cells (text) and links of each body row of the first table."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.links: list[list[str]] = []
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append([])
            self.links.append([])
        elif self._in_body and tag == "td":
            self._cell = []
        elif self._in_body and tag == "a":
            self.links[-1].append(dict(attrs).get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append(re.sub(r"\s+", " ", "".join(self._cell)).strip())
            self._cell = None
        elif tag == "tbody":
            self._in_body = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _incident(iid: str, cause: Cause, at: float, scope: dict[str, str],
              skus: list[str] | None = None, detected_after: float = 4.0) -> Incident:
    return Incident(incident_id=iid, show_id="demo-autumn-gadgets", start_ts=START + at,
                    end_ts=START + at + 15, detected_ts=START + at + detected_after,
                    severity=Severity.CRITICAL, cause=cause, scope=scope, skus=skus or [],
                    summary=f"{cause.value} found")


def test_found_vs_injected_table_matches_the_demo_summary(tmp_path: Path) -> None:
    sc = load_scenario(SCENARIO)
    incidents = [
        _incident("i-bw", Cause.BANDWIDTH, 32, {"region": "ID"}, detected_after=6.4),
        _incident("i-node", Cause.NODE_FAILURE, 71, {"region": "DE", "edge_node": "fra-edge-1"},
                  detected_after=3.2),
        # The chat stall in TH is missed; a low-stock step before the sell-out
        # is accepted along the way, not a finding of its own.
        _incident("i-low", Cause.LOW_STOCK, 120, {"region": "US-W", "warehouse": "WH-US-LAX"},
                  skus=["SKU-EARBUDS"]),
        _incident("i-out", Cause.STOCK_OUT, 131, {"region": "US-W", "warehouse": "WH-US-LAX"},
                  skus=["SKU-EARBUDS"], detected_after=1.0),
        _incident("i-extra", Cause.HIGH_LATENCY, 150, {"region": "TH"}),
    ]
    results, false = score(sc, START, incidents)
    assert [f.ok for f in results] == [True, True, False, True]
    assert [i.incident_id for i in false] == ["i-extra"]
    show = sc.to_show(START).model_copy(update={"end_ts": START + sc.show.duration_s})
    records = [r.record() for r in results]
    data = ShowData(show=show, probe_samples=[], business=[], stock_states=[], on_screen=[],
                    incidents=incidents, deliveries=[], injected=records)
    html, _ = build_report(data)
    section = html[html.index('<section id="injected"'):]
    parser = _Rows()
    parser.feed(section[:section.index("</section>")])
    demo = DemoResult(show_id=show.show_id, report_path=tmp_path / "r.html", faults=results,
                      false_incidents=false, incidents=incidents, alerts=[], out_dir=tmp_path)
    printed = [line for line in summary_lines(demo)
               if line.startswith(("  FOUND", "  MISSED"))]

    numbers = {inc.incident_id: n for n, inc in
               enumerate(sorted(incidents, key=lambda i: (i.start_ts, i.incident_id)), start=1)}
    assert len(parser.rows) == len(printed) == len(sc.faults)
    for row, links, line, rec in zip(parser.rows, parser.links, printed, records, strict=True):
        kind, where, _when, found_as, detected = row
        # What the demo printed, the report shows.
        assert kind == rec.kind and f" {kind} " in line
        assert where == rec.where and f" in {where} " in line
        assert where  # never an empty "where" column
        if rec.ok:
            assert line.startswith("  FOUND")
            assert links == [f"#incident-{numbers[x.incident_id]}" for x in rec.found]
            for x in rec.found:
                assert f"{x.cause.value} ({x.incident_id})" in line
            assert detected == f"{rec.detect_s:.1f} s" and line.endswith(f"after {detected}")
        else:
            assert line.startswith("  MISSED") and "missed" in found_as
            assert f"expected cause {rec.expected_cause.value}" in line
            assert detected == "–"

    # The places are the scenario's, per kind of fault.
    by_kind = {r.kind: r for r in records}
    assert by_kind["bandwidth"].where == "ID"
    assert by_kind["outage"].where == "DE"
    assert by_kind["sell_out"].where == "US-W · SKU SKU-EARBUDS · warehouse WH-US-LAX"
    # Found as the incident the scoring matched: the stock-out, not the
    # low-stock step that overlaps it.
    assert [x.incident_id for x in by_kind["sell_out"].found] == ["i-out"]
    assert parser.rows[3][3] == f"#{numbers['i-out']} stock-out"
    assert parser.rows[0][3] == f"#{numbers['i-bw']} bandwidth"
    assert parser.rows[0][4] == "8.4 s"  # from the onset at 30 s, not from the incident's start


def test_injected_record_rejects_what_is_not_a_fault() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        InjectedFault(index=0, kind="", start_ts=START, end_ts=START + 1,
                      expected_cause=Cause.BANDWIDTH)
    with pytest.raises(ValidationError):
        InjectedFault.model_validate({"index": 0, "kind": "loss", "start_ts": START,
                                      "end_ts": START + 1, "expected_cause": "packet_loss",
                                      "found": [], "region": "ID"})  # old free-form key
