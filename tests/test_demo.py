"""The whole show end to end: real WebRTC probes through impaired paths, the
collector, live diagnosis, alerting and the report. What a user checks: every
injected fault is named with its region and cause, nothing else is, alerts
arrived, and the report says so."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest
import pytest_asyncio

from qosmon.demo.scenario import load_scenario
from qosmon.demo.show import DemoResult, DemoShow

SHORT = Path(__file__).parent / "scenarios" / "short.toml"

# One show for the module: it takes a minute and a half of real time.
pytestmark = [pytest.mark.slow, pytest.mark.server, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def result(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    out = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    res = await DemoShow(load_scenario(SHORT), out, echo=lines.append).run()
    res.extra["lines"] = lines
    return res


@pytest.mark.timeout(240)
async def test_every_fault_found_with_region_and_cause_and_nothing_else(
    result: DemoResult,
) -> None:
    missed = [(f.kind.value, f.regions) for f in result.faults if not f.ok]
    assert not missed, f"faults not diagnosed: {missed}; incidents: " + "; ".join(
        f"{i.cause.value} {i.scope} {i.summary}" for i in result.incidents)
    assert not result.false_incidents, [
        (i.cause.value, i.scope, i.summary) for i in result.false_incidents]
    for f in result.faults:
        assert f.detect_s is not None and f.detect_s <= 15, (f.kind, f.detect_s)


async def test_live_progress_shows_each_region(result: DemoResult) -> None:
    lines = result.extra["lines"]
    for region in ("ID", "DE", "TH"):
        assert any(f"] {region} " in line and "probes 2/2" in line for line in lines)
    assert any(">>> injecting outage in DE" in line for line in lines)


async def test_alerts_fired_and_resolved_and_stock_went_to_merchandising(
    result: DemoResult,
) -> None:
    routes: dict[str, set[str]] = {}
    for entry in result.alerts:
        for alert in entry["payload"]["alerts"]:
            routes.setdefault(entry["route"], set()).add(f"{alert['cause']}:{alert['status']}")
    oncall = routes.get("oncall", set())
    assert {"bandwidth:firing", "node_failure:firing", "chat_channel:firing"} <= oncall
    assert {"bandwidth:resolved", "node_failure:resolved", "chat_channel:resolved"} <= oncall
    assert not any(c.startswith("stock_out") for c in oncall)
    assert "stock_out:firing" in routes.get("merchandising", set())
    log = (result.out_dir / "alerts.jsonl").read_text().splitlines()
    assert len(log) == len(result.alerts)


async def test_report_lists_each_incident_with_region_and_cause(result: DemoResult) -> None:
    page = result.report_path.read_text()
    assert result.report_path.name == "e2e-short.html"
    assert "E2E &lt;b&gt;short&lt;/b&gt; show" in page  # outside strings are escaped
    text = html.unescape(page)
    for inc in result.incidents:
        assert inc.summary in text
    for region in ("ID", "DE", "TH"):
        assert region in text
    index = json.loads((result.out_dir / "index.json").read_text())
    assert [e["show_id"] for e in index["reports"]] == ["e2e-short"]
    assert "e2e-short.html" in (result.out_dir / "index.html").read_text()


async def test_report_shows_where_each_fault_was_and_how_it_was_found(
    result: DemoResult,
) -> None:
    from qosmon.demo.show import fault_line, summary_lines
    from qosmon.report.vocabulary import cause_label

    page = result.report_path.read_text()
    table = page[page.index('<section id="injected"'):]
    table = html.unescape(table[:table.index("</section>")])
    rows = table.split("<tr>")[2:]  # after the header row
    printed = summary_lines(result)
    assert len(rows) == len(result.faults)
    for row, fault in zip(rows, result.faults, strict=True):
        rec = fault.record()
        assert fault_line(rec) in printed
        assert f"<td>{rec.kind}</td><td>{rec.where}</td>" in row  # where: never empty
        for found in rec.found:
            assert cause_label(found.cause) in row and 'href="#incident-' in row
        if rec.detect_s is not None:
            assert f"{rec.detect_s:.1f} s" in row
