"""QoS in /metrics of a running collector with its live pipeline: per show x
region x probe measures in base units, open incidents by cause, alert
delivery, and the shipped Prometheus rules and Grafana dashboard use only
names the collector really exposes."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from qosmon.alerting.alerter import Alerter
from qosmon.alerting.config import AlertingConfig
from qosmon.collector.app import RunningCollector, start_collector
from qosmon.collector.config import CollectorConfig
from qosmon.live import LivePipeline
from qosmon.model import Cause, ConnectionState, ProbeBatch, ProbeSample, Show
from qosmon.store import open_store
from tests.alertmanager_server import Receiver, receiver

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "deploy" / "prometheus-rules.yml"
DASHBOARD = REPO / "deploy" / "grafana-dashboard.json"
PROBES = {"id-1": ("ID", "jkt-1"), "id-2": ("ID", "jkt-1"),
          "th-1": ("TH", "bkk-1"), "th-2": ("TH", "bkk-1")}


def sample(probe: str, ts: float, broken: bool, drops: int = 0) -> ProbeSample:
    region, node = PROBES[probe]
    return ProbeSample(
        ts=ts, show_id="m-1", stream_id="main", probe_id=probe, region=region, edge_node=node,
        state=ConnectionState.CONNECTED, ttff_ms=150.0,
        rtt_ms=None if broken else 80.0, packets_expected=0 if broken else 80,
        packets_received=0 if broken else 78, loss_pct=None if broken else 2.5,
        residual_loss_pct=None if broken else 0.5,
        bitrate_kbps=0.0 if broken else 720.0, fps=0.0 if broken else 25.0,
        no_frame_ms=4000.0 if broken else 40.0, freeze_ms=0.0 if broken else 250.0,
        stuck_ms=1000.0 if broken else 250.0,
        # The probe's own health: TH's host busier (not starved), and
        # dropping datagrams at its sockets in its first seconds.
        probe_lag_ms=150.0 if probe.startswith("th") else 2.0, socket_drops=drops,
        chat_sent=2, chat_lost=2 if broken else 0, chat_rtt_ms=None if broken else 90.0,
    )


@dataclass
class Running:
    collector: RunningCollector
    pipeline: LivePipeline
    tokens: dict[str, str]
    feed: str
    hooks: Receiver
    start: float


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    tokens = {p: secrets.token_urlsafe(16) for p in PROBES}
    feed = secrets.token_urlsafe(16)
    store = open_store(f"sqlite:///{tmp_path / 'q.db'}")
    async with receiver(status={"/broken": 400}) as hooks:
        retry = {"max_attempts": 2, "initial_backoff_s": 0.1, "max_backoff_s": 0.1}
        alerter = Alerter(AlertingConfig.model_validate({
            "pending_s": 0, "group_wait_s": 0,
            "routes": [
                {"name": "oncall-hook", "kind": "webhook", "url": hooks.url + "/ok",
                 "secret": "k", "serves": ["oncall"], "retry": retry},
                {"name": "broken-hook", "kind": "webhook", "url": hooks.url + "/broken",
                 "secret": "k", "serves": ["oncall"], "retry": retry},
            ]}))
        pipeline = LivePipeline(store, alerter)
        await pipeline.start()
        collector = await start_collector(CollectorConfig.model_validate({
            "port": 0, "probes": [{"probe_id": p, "token": t} for p, t in tokens.items()],
            "feed_tokens": [feed]}), store, pipeline)
        try:
            yield Running(collector, pipeline, tokens, feed, hooks, time.time() - 40)
        finally:
            await collector.stop()
            await pipeline.close()
            store.close()


async def post_show(r: Running, http: aiohttp.ClientSession) -> None:
    """A show that started 40 s ago; its probes' samples arrive all at once
    (as after a probe's spool drains), ID's edge node broken for the last 20 s."""
    show = Show(show_id="m-1", start_ts=r.start, regions=["ID", "TH"])
    async with http.put("/api/v1/shows/m-1", json=show.model_dump(mode="json"),
                        headers={"Authorization": f"Bearer {r.feed}"}) as resp:
        assert resp.status == 200, await resp.text()
    for probe in PROBES:
        samples = [sample(probe, r.start + k, broken=probe.startswith("id") and k >= 20,
                          drops=5 if probe.startswith("th") and k < 3 else 0)
                   for k in range(40)]
        batch = ProbeBatch(batch_id=f"{probe}-0001", probe_id=probe, sent_ts=time.time(),
                           samples=samples)
        async with http.post("/api/v1/samples", data=batch.model_dump_json(),
                             headers={"Authorization": f"Bearer {r.tokens[probe]}",
                                      "Content-Type": "application/json"}) as resp:
            assert resp.status == 200, await resp.text()


Scraped = dict[str, dict[tuple[tuple[str, str], ...], float]]


async def scrape(http: aiohttp.ClientSession) -> Scraped:
    async with http.get("/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    out: Scraped = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def value(metrics: Scraped, name: str, **labels: str) -> float:
    key = tuple(sorted(labels.items()))
    assert key in metrics.get(name, {}), f"{name}{labels} not in /metrics"
    return metrics[name][key]


async def wait_for(cond: object, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(cond) and cond():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("condition not met in time")


@pytest.mark.timeout(60)
async def test_qos_of_a_live_show_in_metrics_and_gone_when_it_ends(running: Running) -> None:
    r = running
    async with aiohttp.ClientSession(base_url=r.collector.url) as http:
        await post_show(r, http)
        # The pipeline's next ticks judge the 40 s and the node failure pages.
        await wait_for(lambda: any(i.end_ts is None and i.cause == Cause.NODE_FAILURE
                                   for i in r.pipeline.incidents("m-1")))
        await r.hooks.wait_for(1, 10, path="/ok")
        await wait_for(lambda: r.pipeline.delivery_qos()[1].failed == 1)
        # A further on-call notification may still be on its way: scrape once
        # nothing is pending, so the gauge is checked at rest.
        await wait_for(lambda: r.pipeline.delivery_qos()[0].pending == 0)
        m = await scrape(http)

        th = {"show": "m-1", "region": "TH", "probe": "th-1"}
        assert value(m, "qosmon_probe_rtt_seconds", **th) == pytest.approx(0.080)
        assert value(m, "qosmon_probe_loss_ratio", **th) == pytest.approx(0.025)
        assert value(m, "qosmon_probe_bitrate_bits_per_second", **th) == 720_000
        assert value(m, "qosmon_probe_frames_per_second", **th) == 25
        assert value(m, "qosmon_probe_frozen_seconds_total", **th) == pytest.approx(40 * 0.25)
        assert value(m, "qosmon_probe_stuck_seconds_total", **th) == pytest.approx(40 * 0.25)
        assert value(m, "qosmon_probe_chat_messages_sent_total", **th) == 80
        assert value(m, "qosmon_probe_chat_messages_lost_total", **th) == 0
        assert value(m, "qosmon_probe_chat_delivery_seconds", **th) == pytest.approx(0.090)
        idn = {"show": "m-1", "region": "ID", "probe": "id-1"}
        assert value(m, "qosmon_probe_chat_messages_lost_total", **idn) == 40
        assert value(m, "qosmon_probe_no_frame_seconds", **idn) == 4.0
        # The 20 s stall still going on: in the stuck counter, not yet frozen.
        assert value(m, "qosmon_probe_stuck_seconds_total", **idn) == pytest.approx(
            20 * 0.25 + 20 * 1.0)
        assert value(m, "qosmon_probe_frozen_seconds_total", **idn) == pytest.approx(20 * 0.25)
        assert value(m, "qosmon_probe_loop_lag_seconds", **th) == pytest.approx(0.150)
        assert value(m, "qosmon_probe_loop_lag_seconds", **idn) == pytest.approx(0.002)
        assert value(m, "qosmon_probe_socket_drops_total", **th) == 3 * 5
        assert value(m, "qosmon_probe_socket_drops_total", **idn) == 0
        # Not measured in the latest second: absent, not 0.
        assert ("qosmon_probe_rtt_seconds", tuple(sorted(idn.items()))) not in {
            (n, k) for n, series in m.items() for k in series}
        # The samples are 1-40 s old: only the newest second counts as up.
        assert value(m, "qosmon_probes", show="m-1", region="ID") == 2
        assert value(m, "qosmon_incidents_open", show="m-1", cause="node_failure") == 1
        assert value(m, "qosmon_incidents_open", show="m-1", cause="bandwidth") == 0
        assert len([k for k in m["qosmon_incidents_open"]]) == len(Cause)
        assert value(m, "qosmon_show_live", show="m-1") == 1
        assert value(m, "qosmon_alert_notifications_sent_total", notifier="oncall-hook") >= 1
        assert value(m, "qosmon_alert_notifications_failed_total", notifier="broken-hook") == 1
        assert value(m, "qosmon_alert_delivery_attempts_failed_total",
                     notifier="broken-hook") == 1
        assert value(m, "qosmon_alert_notifications_pending", notifier="oncall-hook") == 0
        [(labels, one)] = m["qosmon_build_info"].items()
        assert one == 1 and dict(labels)["version"]

        async with http.post("/api/v1/shows/m-1/end", json={"ts": time.time()},
                             headers={"Authorization": f"Bearer {r.feed}"}) as resp:
            assert resp.status == 200
        await wait_for(lambda: not r.pipeline.watching("m-1"))
        m = await scrape(http)
        shown = [(n, dict(k)) for n, series in m.items() for k in series
                 if dict(k).get("show") == "m-1"]
        assert shown == []
        assert "qosmon_alert_notifications_sent_total" in m  # not per show: stays


@pytest.mark.timeout(60)
async def test_probes_up_per_region(running: Running) -> None:
    r = running
    r.start = time.time() - 5
    async with aiohttp.ClientSession(base_url=r.collector.url) as http:
        show = Show(show_id="m-1", start_ts=r.start, regions=["ID", "TH"])
        async with http.put("/api/v1/shows/m-1", json=show.model_dump(mode="json"),
                            headers={"Authorization": f"Bearer {r.feed}"}) as resp:
            assert resp.status == 200
        for probe in ("id-1", "th-1", "th-2"):
            # id-1 last reported 30 s ago: down; TH's two report now.
            ts = time.time() - (30 if probe == "id-1" else 1)
            batch = ProbeBatch(batch_id=f"{probe}-0001", probe_id=probe, sent_ts=ts,
                               samples=[sample(probe, ts, broken=False)])
            async with http.post("/api/v1/samples", data=batch.model_dump_json(),
                                 headers={"Authorization": f"Bearer {r.tokens[probe]}",
                                          "Content-Type": "application/json"}) as resp:
                assert resp.status == 200
        m = await scrape(http)
    assert value(m, "qosmon_probes_up", show="m-1", region="TH") == 2
    assert value(m, "qosmon_probes_up", show="m-1", region="ID") == 0
    assert value(m, "qosmon_probes", show="m-1", region="ID") == 1
    assert value(m, "qosmon_probe_up", show="m-1", region="ID", probe="id-1") == 0


# --- the shipped rules and dashboard ------------------------------------------

_PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, label matchers,
    grouping labels, ranges, strings and keywords left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        word = m.group(0)
        rest = expr[m.end():].lstrip()
        if rest.startswith("(") or word.lower() in _PROMQL_WORDS:
            continue
        if re.fullmatch(r"\d+[smhdwy]", word) or word.startswith("$"):
            continue
        names.add(word)
    return names


def test_metric_names_are_found_in_expressions() -> None:
    assert metric_names('sum by (show, region) (rate(qosmon_a_total{x="y"}[1m])) > 0 '
                        'and on (show) qosmon_b == 0') == {"qosmon_a_total", "qosmon_b"}


def rule_exprs() -> tuple[list[str], set[str]]:
    doc = yaml.safe_load(RULES.read_text())
    exprs, recorded = [], set()
    for group in doc["groups"]:
        for rule in group["rules"]:
            exprs.append(rule["expr"])
            if "record" in rule:
                recorded.add(rule["record"])
    return exprs, recorded


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    for var in dash["templating"]["list"]:
        query = var["query"]["query"]
        m = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)
        assert m, query
        exprs.append(m.group(1))
    return exprs


@pytest.mark.timeout(60)
async def test_every_name_in_the_rules_and_dashboard_is_in_metrics(running: Running) -> None:
    r = running
    async with aiohttp.ClientSession(base_url=r.collector.url) as http:
        await post_show(r, http)
        await wait_for(lambda: r.pipeline.delivery_qos()[0].sent >= 1)
        m = await scrape(http)
    exposed = set(m)
    rules, recorded = rule_exprs()
    used = set().union(*(metric_names(e) for e in rules + dashboard_exprs()))
    missing = sorted(used - exposed - recorded)
    assert missing == [], f"named in deploy/ but not in /metrics: {missing}"
    # The rules cover what on-call needs from Prometheus itself.
    assert {"qosmon_collector_probes_up", "qosmon_probes_up",
            "qosmon_alert_delivery_attempts_failed_total"} <= used


def test_rule_file_is_valid_for_prometheus() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        # Without Debian's prometheus package: the rule file's shape only.
        doc = yaml.safe_load(RULES.read_text())
        for group in doc["groups"]:
            assert set(group) <= {"name", "interval", "rules", "limit"}
            for rule in group["rules"]:
                assert ("alert" in rule) != ("record" in rule) and rule["expr"].strip()
                assert set(rule) <= {"alert", "record", "expr", "for", "labels", "annotations",
                                     "keep_firing_for"}
        pytest.skip("promtool not installed (Debian package prometheus): checked the shape only")
    run = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                         text=True, timeout=30)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout


def test_overloaded_probe_left_out_of_region_loss_and_alerted(tmp_path: Path) -> None:
    """Prometheus itself evaluates the rules (promtool's rule unit tests): a
    probe dropping datagrams at its own sockets is not the region's loss,
    and it raises its own alert instead of the region's loss alert."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    th1 = 'show="m-1", region="TH", probe="th-1"'
    th2 = 'show="m-1", region="TH", probe="th-2"'
    cases = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "15s",
        "tests": [{
            "interval": "15s",
            "input_series": [
                # th-1: 2 % loss, its own sockets clean; th-2: 30 % "loss"
                # while its kernel drops 40 datagrams every 15 s.
                {"series": f"qosmon_probe_loss_ratio{{{th1}}}", "values": "0.02x12"},
                {"series": f"qosmon_probe_loss_ratio{{{th2}}}", "values": "0.30x12"},
                {"series": f"qosmon_probe_socket_drops_total{{{th1}}}", "values": "0x12"},
                {"series": f"qosmon_probe_socket_drops_total{{{th2}}}", "values": "0+40x12"},
                {"series": f"qosmon_probe_loop_lag_seconds{{{th1}}}", "values": "0.002x12"},
                {"series": f"qosmon_probe_loop_lag_seconds{{{th2}}}", "values": "0.05x12"},
            ],
            "promql_expr_test": [{
                "expr": "qosmon:region_loss_ratio:avg",
                "eval_time": "2m",
                "exp_samples": [{"labels": 'qosmon:region_loss_ratio:avg{show="m-1", region="TH"}',
                                 "value": 0.02}],
            }],
            "alert_rule_test": [
                {"eval_time": "2m", "alertname": "QosmonRegionPacketLoss", "exp_alerts": []},
                {"eval_time": "2m", "alertname": "QosmonProbeOverloaded", "exp_alerts": [{
                    "exp_labels": {"severity": "warning", "show": "m-1", "region": "TH",
                                   "probe": "th-2"},
                    "exp_annotations": {
                        "summary": "probe th-2 (TH) cannot keep up",
                        "description": "Probe th-2 drops datagrams at its own sockets or runs "
                                       "late: give it CPU or fewer streams. Its figures for show "
                                       "m-1 are not the network's."},
                }]},
            ],
        }],
    }
    path = tmp_path / "rules_test.yml"
    path.write_text(yaml.safe_dump(cases))
    run = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
