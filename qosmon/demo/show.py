"""A complete live show on one machine, no root: origin, per-region network
paths, real WebRTC probes, the collector with live diagnosis and alerting,
business and warehouse feeds, and the report at the end.

Every part is the real one a deployment runs; only the stream's source (a
looped clip), the paths (userspace relays) and the commerce feeds are made up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp

from qosmon.demo.clip import encode_clip
from qosmon.demo.feeds import ShowFeeds
from qosmon.demo.netpath import Impairment, RegionPath
from qosmon.demo.origin import DemoOrigin
from qosmon.demo.scenario import FaultKind, Scenario
from qosmon.demo.scoring import FaultResult, score
from qosmon.demo.webhook_log import WebhookLog
from qosmon.model import Incident, InjectedFault, OnScreen, ProbeSample

if TYPE_CHECKING:
    from qosmon.live import LivePipeline

log = logging.getLogger(__name__)


@dataclass
class DemoResult:
    show_id: str
    report_path: Path
    faults: list[FaultResult]
    false_incidents: list[Incident]
    incidents: list[Incident]
    alerts: list[dict[str, Any]]  # what the local webhook received, in order
    out_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.faults) and not self.false_incidents


def _impairment(scenario: Scenario, region: str, t_s: float) -> Impairment:
    spec = next(r for r in scenario.regions if r.name == region)
    imp = Impairment(delay_ms=spec.base_delay_ms, jitter_ms=spec.jitter_ms)
    for f in scenario.faults:
        if not (f.at_s <= t_s < scenario.end_s(f)):
            continue
        if f.region is not None and f.region != region:
            continue
        if f.kind is FaultKind.BANDWIDTH:
            imp.rate_kbps = f.rate_kbps
        elif f.kind is FaultKind.LOSS:
            imp.loss_pct = f.loss_pct or 0.0
        elif f.kind is FaultKind.DELAY:
            imp.delay_ms += f.delay_ms or 0.0
        elif f.kind is FaultKind.OUTAGE:
            imp.outage = True
    return imp


def _fmt(v: float | None, unit: str, nd: int = 0) -> str:
    return "  -  " if v is None else f"{v:.{nd}f}{unit}"


def progress_lines(t_s: float, scenario: Scenario, latest: list[ProbeSample],
                   viewers: dict[str, float], open_incidents: list[Incident]) -> list[str]:
    """One live line per region: what its probes see now, its audience, and
    any open incident there."""
    lines = []
    for region in scenario.regions:
        samples = [s for s in latest if s.region == region.name]
        connected = sum(1 for s in samples if s.state == "connected")

        def mean(attr: str, samples: list[ProbeSample] = samples) -> float | None:
            vals = [getattr(s, attr) for s in samples if getattr(s, attr) is not None]
            return sum(vals) / len(vals) if vals else None

        here = [i for i in open_incidents if i.scope.get("region") in (region.name, None)
                and "probe_id" not in i.scope]
        flag = ", ".join(sorted({i.cause.value for i in here})) or "ok"
        lines.append(
            f"[{t_s:5.0f}s] {region.name:<6} probes {connected}/{len(region.probes)}"
            f"  rtt {_fmt(mean('rtt_ms'), 'ms'):>7}  loss {_fmt(mean('loss_pct'), '%', 1):>6}"
            f"  {_fmt(mean('bitrate_kbps'), 'kbps'):>8}  {_fmt(mean('fps'), 'fps'):>6}"
            f"  chat {_fmt(mean('chat_rtt_ms'), 'ms'):>7}"
            f"  viewers {viewers.get(region.name, 0):6.0f}"
            f"  | {flag}"
        )
    return lines


class DemoShow:
    def __init__(self, scenario: Scenario, out_dir: Path,
                 echo: Callable[[str], None] | None = None, store_url: str | None = None) -> None:
        self.sc = scenario
        self.out_dir = out_dir
        # None: a fresh store of this show alone, <out>/<show id>.db.
        self.store_url = store_url
        self.echo = echo or (lambda line: print(line, flush=True))

    async def run(self) -> DemoResult:
        # Imported here: the heavy parts load only when a show runs.
        from probes.agent import ProbeAgent
        from probes.config import ProbeConfig, StreamTarget
        from probes.uplink import CollectorUplink
        from qosmon.alerting.alerter import Alerter
        from qosmon.alerting.config import AlertingConfig
        from qosmon.alerting.outbox import Outbox
        from qosmon.collector.app import CollectorConfig, start_collector
        from qosmon.history.collect import refresh_history
        from qosmon.live import LivePipeline
        from qosmon.model import ProbeLabels
        from qosmon.report.data import load_show_data
        from qosmon.report.output import write_report
        from qosmon.store import open_store

        sc = self.sc
        out = self.out_dir
        out.mkdir(parents=True, exist_ok=True)
        (out / "alerts.jsonl").unlink(missing_ok=True)
        store_url = self.store_url
        if store_url is None:
            db = out / f"{sc.show.id}.db"
            db.unlink(missing_ok=True)
            store_url = str(db)
        store = open_store(store_url)
        webhook = WebhookLog(out / "alerts.jsonl")
        await webhook.start()

        tokens = {p.id: secrets.token_urlsafe(16) for r in sc.regions for p in r.probes}
        feed_token = secrets.token_urlsafe(16)
        hook_secret = secrets.token_urlsafe(16)
        pipeline: LivePipeline
        alerter = Alerter(
            AlertingConfig.model_validate({
                "routes": [
                    {"name": "oncall-webhook", "kind": "webhook", "url": f"{webhook.url}/oncall",
                     "secret": hook_secret, "serves": ["oncall"]},
                    {"name": "merch-webhook", "kind": "webhook", "secret": hook_secret,
                     "url": f"{webhook.url}/merchandising", "serves": ["merchandising"]},
                ],
            }),
            # While the show runs there is a live page to look at; after it, the report.
            link=lambda show_id: (f"{collector.url}/shows/{quote(show_id, safe='')}"
                                  if pipeline.watching(show_id)
                                  else f"file://{(out / (show_id + '.html')).resolve()}"),
            on_delivery=lambda d: pipeline.record_delivery(d),
            outbox=store if isinstance(store, Outbox) else None,
        )
        from qosmon.inventory.config import InventoryConfig

        pipeline = LivePipeline(store, alerter, inventory_config=InventoryConfig(
            daily_units={s.sku: s.daily_units for s in sc.skus if s.daily_units is not None}))
        await pipeline.start()
        collector = await start_collector(
            CollectorConfig.model_validate({
                "port": 0,
                "probes": [{"probe_id": k, "token": v} for k, v in tokens.items()],
                "feed_tokens": [feed_token],
            }),
            store,
            pipeline,
        )
        paths = {r.name: RegionPath(r.name, seed=sc.show.seed + i)
                 for i, r in enumerate(sc.regions)}
        for name, path in paths.items():
            path.impairment = _impairment(sc, name, 0.0)
        self.echo("encoding the show's video clip ...")
        origin = DemoOrigin(await asyncio.to_thread(encode_clip), paths)
        await origin.start()

        start = time.time()
        feeds = ShowFeeds(sc, start)
        show = sc.to_show(start)
        http = aiohttp.ClientSession(
            base_url=collector.url, headers={"Authorization": f"Bearer {feed_token}"}
        )
        stop = asyncio.Event()
        agents: list[asyncio.Task[None]] = []
        try:
            await self._post(http, "PUT", f"/api/v1/shows/{show.show_id}",
                             show.model_dump(mode="json"))
            live_url = f"{collector.url}/shows/{quote(show.show_id, safe='')}"
            self.echo(f"live page (it follows the show to its end): {live_url}")
            await self._post(http, "POST", f"/api/v1/shows/{show.show_id}/on-screen", [
                OnScreen(ts=start, show_id=show.show_id, sku=s.sku, on=True).model_dump(mode="json")
                for s in sc.skus if s.on_screen is None or any(a <= 0 < b for a, b in s.on_screen)
            ])
            for region in sc.regions:
                for p in region.probes:
                    cfg = ProbeConfig.model_validate({
                        "labels": ProbeLabels(probe_id=p.id, region=region.name, isp=p.isp,
                                              edge_node=region.edge_node).model_dump(),
                        "token": tokens[p.id],
                        "collector_url": collector.url,
                        "streams": [StreamTarget(show_id=show.show_id, stream_id="main",
                                                 join="demo", url=origin.whep_url(region.name),
                                                 ).model_dump()],
                        "spool_dir": str(out / "spool" / p.id),
                        "ice_host_addresses": ["127.0.0.1"],
                    })
                    agents.append(asyncio.create_task(
                        self._run_probe(ProbeAgent(cfg, CollectorUplink.from_config(cfg)), stop),
                        name=f"probe-{p.id}"))
            self.echo(f"show {show.show_id!r} live for {sc.show.duration_s:.0f} s: "
                      f"{len(agents)} probes in {len(sc.regions)} regions, "
                      f"{len(sc.faults)} faults scheduled")
            await self._run_timeline(http, show.show_id, start, feeds, paths, origin, pipeline)
            end = time.time()
            show = show.model_copy(update={"end_ts": end})
            await self._post(http, "POST", f"/api/v1/shows/{show.show_id}/end", {"ts": end})
            # Let the collector's next tick close the show's incidents and
            # alerts, then stop watching.
            for _ in range(50):
                state = pipeline.shows.get(show.show_id)
                if state is not None and state.finished:
                    break
                await asyncio.sleep(0.2)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*agents, return_exceptions=True), 30)
            await http.close()
            await origin.stop()
            for path in paths.values():
                path.close()
            await collector.stop()
            await pipeline.close()
            await webhook.stop()

        incidents = store.incidents(show.show_id)
        results, false = score(sc, start, incidents)
        data = load_show_data(store, show.show_id)
        data.injected = [r.record() for r in results]
        # The pipeline stored the show's summary when it ended: history over
        # every demo run kept in this store goes next to the reports.
        refresh_history(store, out, time.time())
        report = write_report(data, out)
        store.close()
        return DemoResult(
            show_id=show.show_id,
            report_path=report,
            faults=results,
            false_incidents=false,
            incidents=incidents,
            alerts=list(webhook.received),
            out_dir=out,
        )

    @staticmethod
    async def _run_probe(agent: Any, stop: asyncio.Event) -> None:
        try:
            await agent.run(stop)
        finally:
            await agent.sink.aclose()

    async def _post(self, http: aiohttp.ClientSession, method: str, url: str, body: Any) -> Any:
        async with http.request(method, url, json=body) as resp:
            text = await resp.text()
            if resp.status >= 300:
                raise RuntimeError(f"collector refused {method} {url}: {resp.status} {text}")
            return json.loads(text) if text else None

    async def _run_timeline(self, http: aiohttp.ClientSession, show_id: str, start: float,
                            feeds: ShowFeeds, paths: dict[str, RegionPath], origin: DemoOrigin,
                            pipeline: LivePipeline) -> None:
        sc = self.sc
        announced: set[int] = set()
        on_screen = {s.sku: True for s in sc.skus}
        tick = 0
        while True:
            t_s = tick * 1.0
            if t_s >= sc.show.duration_s:
                return
            # Sleep to the next whole second of show time: the feeds are
            # per-second series, like the platform's.
            await asyncio.sleep(max(0.0, start + t_s - time.time()))
            now = time.time()
            for name, path in paths.items():
                path.impairment = _impairment(sc, name, t_s)
            stalled = set()
            for i, f in enumerate(sc.faults):
                active = f.at_s <= t_s < sc.end_s(f)
                if active and f.kind is FaultKind.CHAT_STALL:
                    stalled.add(f.region or "*")
                if active and i not in announced:
                    announced.add(i)
                    where = f.region or f.warehouse or "all regions"
                    self.echo(f"[{t_s:5.0f}s] >>> injecting {f.kind.value} in {where}")
            origin.chat_stalled = stalled
            step = feeds.step(t_s, now)
            events = []
            for s in sc.skus:
                want = s.on_screen is None or any(a <= t_s < b for a, b in s.on_screen)
                if want != on_screen[s.sku]:
                    on_screen[s.sku] = want
                    events.append(OnScreen(ts=now, show_id=show_id, sku=s.sku, on=want))
            if events:
                await self._post(http, "POST", f"/api/v1/shows/{show_id}/on-screen",
                                 [e.model_dump(mode="json") for e in events])
            await self._post(http, "POST", "/api/v1/business",
                             {"samples": [b.model_dump(mode="json") for b in step.business]})
            if step.snapshot:
                by_wh: dict[str, list[dict[str, Any]]] = {}
                for rec in step.snapshot:
                    by_wh.setdefault(rec.warehouse, []).append(
                        {"sku": rec.sku, "on_hand": rec.on_hand})
                for wh, items in by_wh.items():
                    await self._post(http, "POST", "/api/v1/inventory/snapshot",
                                     {"warehouse": wh, "source_ts": now, "items": items})
            if step.stock_changes:
                await self._post(http, "POST", "/api/v1/inventory/changes",
                                 {"records": [r.model_dump(mode="json")
                                              for r in step.stock_changes]})
            for wh, source_ts in step.heartbeats:
                await self._post(http, "POST", "/api/v1/inventory/heartbeat",
                                 {"warehouse": wh, "source_ts": source_ts})
            if tick % 5 == 4:
                open_now = [i for i in pipeline.incidents(show_id) if i.end_ts is None]
                for line in progress_lines(t_s, sc, pipeline.latest_samples(show_id),
                                           feeds.viewers, open_now):
                    self.echo(line)
            tick += 1


def fault_line(fault: InjectedFault) -> str:
    """One fault as the demo's summary prints it (the report's found-vs-injected
    table shows the same record)."""
    if fault.ok:
        causes = ", ".join(f"{f.cause.value} ({f.incident_id})" for f in fault.found)
        ttd = f" after {fault.detect_s:.1f} s" if fault.detect_s is not None else ""
        return f"  FOUND  {fault.kind:<16} in {fault.where:<10} as {causes}{ttd}"
    return (f"  MISSED {fault.kind:<16} in {fault.where:<10}"
            f" expected cause {fault.expected_cause.value}")


def summary_lines(result: DemoResult) -> list[str]:
    lines = ["", "Faults injected vs incidents found:"]
    lines += [fault_line(f.record()) for f in result.faults]
    for inc in result.false_incidents:
        lines.append(f"  EXTRA  {inc.cause.value:<16} scope {inc.scope}: {inc.summary}")
    found = sum(1 for f in result.faults if f.ok)
    lines.append(f"{found}/{len(result.faults)} faults found, "
                 f"{len(result.false_incidents)} incidents not injected, "
                 f"{len(result.alerts)} alert notifications received.")
    lines.append(f"Report: {result.report_path.resolve()}")
    history = result.report_path.resolve().parent / "history.html"
    if history.is_file():
        lines.append(f"History of every run in this folder's store: {history}")
    return lines


def print_summary(result: DemoResult) -> None:
    for line in summary_lines(result):
        print(line, file=sys.stdout, flush=True)
