"""The contracts the parts share through the data model: stock levels (order,
kind, urgency), the evidence metric names and the alert key, each defined
once and used as such by inventory, diagnosis, alerting and the report."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import ValidationError

from qosmon.inventory.paging import paging_route
from qosmon.model import (
    STOCK_LEVELS,
    Cause,
    Evidence,
    Incident,
    LevelKind,
    Metric,
    Severity,
    StockLevel,
    StockState,
    incident_alert_key,
    worse_level,
)
from qosmon.report import charts
from qosmon.report.vocabulary import CAUSE_TEXT, LEVEL_TEXT, METRIC_TEXT

ROOT = Path(__file__).resolve().parents[1]


def test_stock_levels_order_kind_and_urgency() -> None:
    assert [lv.value for lv in StockLevel] == [
        "green", "yellow", "orange", "red", "stale", "sync_fault", "unknown"]
    assert [lv.rank for lv in StockLevel] == list(range(7))
    assert STOCK_LEVELS == (StockLevel.GREEN, StockLevel.YELLOW, StockLevel.ORANGE,
                            StockLevel.RED)
    assert {lv for lv in StockLevel if lv.kind is LevelKind.DATA_FAULT} == {
        StockLevel.STALE, StockLevel.SYNC_FAULT}
    assert StockLevel.UNKNOWN.kind is LevelKind.NO_DATA
    # Worse and worse along the stock levels; a data fault hides the level
    # but is less pressing than stock running out.
    sev = [lv.severity for lv in STOCK_LEVELS]
    assert sev == sorted(sev) and len(set(sev)) == 4
    assert StockLevel.YELLOW.severity < StockLevel.STALE.severity < StockLevel.ORANGE.severity
    assert worse_level(StockLevel.GREEN, StockLevel.RED) is StockLevel.RED
    assert worse_level(StockLevel.ORANGE, StockLevel.SYNC_FAULT) is StockLevel.ORANGE
    assert {lv for lv in StockLevel if lv.urgent} == {
        StockLevel.ORANGE, StockLevel.RED, StockLevel.STALE, StockLevel.SYNC_FAULT}


@pytest.mark.parametrize("level", list(StockLevel))
def test_urgent_levels_are_the_ones_that_page_someone(level: StockLevel) -> None:
    st = StockState(ts=1.0, show_id="s", sku="A", warehouse="W", level=level, on_screen=False)
    assert (paging_route(st) != "none") == level.urgent
    # Every level has its colour in the report's charts and tables.
    assert level in charts.LEVEL_FILL and level in charts.LEVEL_SWATCH


def _emitted_by_evidence() -> set[str]:
    """The Metric members diagnosis's evidence module names."""
    tree = ast.parse((ROOT / "qosmon" / "diagnosis" / "evidence.py").read_text())
    return {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == "Metric"}


def test_metric_vocabulary_is_what_evidence_emits_and_the_report_knows() -> None:
    # Every name is one diagnosis really uses (no dead names for the report
    # to chart), and the report has words for each.
    assert _emitted_by_evidence() == {m.name for m in Metric}
    assert set(METRIC_TEXT) == set(Metric)


def test_report_has_words_for_every_cause_and_level() -> None:
    assert set(CAUSE_TEXT) == set(Cause)
    assert list(LEVEL_TEXT) == list(StockLevel)  # legends follow the model's order
    with pytest.raises(ValidationError):
        Evidence(metric="chat_lost_pct", text="a name no diagnosis emits")
    assert Evidence(metric="rtt_ms", text="x").metric is Metric.RTT_MS


def test_alert_key_is_one_per_place_and_cause() -> None:
    def inc(iid: str, scope: dict[str, str]) -> Incident:
        return Incident(incident_id=iid, show_id="s1", start_ts=1.0, severity=Severity.WARNING,
                        cause="packet_loss", scope=scope)

    a = incident_alert_key(inc("a", {"region": "ID", "edge_node": "jkt-1", "isp": "X"}))
    b = incident_alert_key(inc("b", {"region": "ID", "edge_node": "jkt-1"}))
    assert a == b == "qosmon:s1:ID:jkt-1:packet_loss"
    assert incident_alert_key(inc("c", {})) == "qosmon:s1:*:*:packet_loss"


def test_probe_signal_metrics_can_be_asked_of_the_collector() -> None:
    # The evidence's probe signals are ProbeSample fields, so the collector's
    # live series query serves each under the same name.
    from qosmon.collector.openapi import SERIES_METRICS
    from qosmon.model import ProbeSample

    probe_metrics = {m for m in Metric if m.value in ProbeSample.model_fields}
    assert probe_metrics == {Metric.RTT_MS, Metric.LOSS_PCT, Metric.BITRATE_KBPS, Metric.FPS,
                             Metric.NO_FRAME_MS, Metric.TTFF_MS, Metric.CHAT_RTT_MS,
                             Metric.RECEIVED_KBPS, Metric.RTX_KBPS, Metric.STUCK_MS,
                             Metric.AUDIO_STALLED_MS, Metric.AUDIO_LOSS_PCT}
    assert {m.value for m in probe_metrics} <= set(SERIES_METRICS)
