"""Shared helpers for the collector tests: a running collector on a real
loopback port with a real SQLite store, and a pipeline that records what it
was handed (the pipeline is a seam we own)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from qosmon.collector.app import RunningCollector
from qosmon.model import (
    BusinessSample,
    OnScreen,
    ProbeSample,
    Show,
    StockRecord,
    StockState,
)
from qosmon.pipeline import NullPipeline
from qosmon.store.sqlite import SqliteStore

PROBE_TOKENS = {"p1": "probe-token-p1-0123456789", "p2": "probe-token-p2-0123456789"}
FEED_TOKEN = "feed-token-0123456789abcdef"


class RecordingPipeline(NullPipeline):
    """Records every hook call; checks on each that the store already holds
    the data (the collector must hand over only durable data)."""

    def __init__(self, store: SqliteStore) -> None:
        super().__init__()
        self.store = store
        self.samples: list[ProbeSample] = []
        self.samples_durable: list[bool] = []
        self.business: list[BusinessSample] = []
        self.stock: list[StockRecord] = []
        self.shows: list[Show] = []
        self.on_screen_events: list[OnScreen] = []
        self.heartbeats: list[tuple[str, float, float]] = []
        self.ticks: list[float] = []
        self.current: dict[str, list[StockState]] = {}
        self.tick_running = False
        self.overlapping_ticks = 0

    def current_stock(self, show_id: str) -> list[StockState]:
        return self.current.get(show_id, [])

    def on_show(self, show: Show) -> None:
        self.shows.append(show)

    def on_probe_samples(self, samples: Sequence[ProbeSample]) -> None:
        if samples:
            stored = self.store.probe_samples(samples[0].show_id)
            self.samples_durable.append(
                all(any(s.ts == t.ts and s.probe_id == t.probe_id for t in stored)
                    for s in samples)
            )
        self.samples.extend(samples)

    def on_business(self, samples: Sequence[BusinessSample]) -> None:
        self.business.extend(samples)

    def on_stock(self, records: Sequence[StockRecord]) -> None:
        self.stock.extend(records)

    def on_on_screen(self, events: Sequence[OnScreen]) -> None:
        self.on_screen_events.extend(events)

    def on_stock_heartbeat(self, warehouse: str, source_ts: float, received_ts: float) -> None:
        self.heartbeats.append((warehouse, source_ts, received_ts))

    async def tick(self, now: float) -> None:
        if self.tick_running:
            self.overlapping_ticks += 1
        self.tick_running = True
        self.ticks.append(now)
        self.tick_running = False


@dataclass
class Ctx:
    running: RunningCollector
    store: SqliteStore
    pipeline: RecordingPipeline
    http: aiohttp.ClientSession
    extra: dict[str, Any] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.running.url + path


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sample(probe_id: str = "p1", show_id: str = "show-1", ts: float | None = None,
           **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "ts": ts if ts is not None else time.time() - 1.0,
        "show_id": show_id, "stream_id": "main", "probe_id": probe_id, "region": "ID",
        "isp": "Telkomsel", "edge_node": "jkt-1", "state": "connected", "rtt_ms": 42.0,
        "loss_pct": 0.5, "bitrate_kbps": 800.0, "fps": 30.0, "packets_expected": 100,
        "packets_received": 99,
    }
    d.update(kw)
    return d


def batch(batch_id: str, samples: list[dict[str, Any]], probe_id: str = "p1") -> dict[str, Any]:
    return {"batch_id": batch_id, "probe_id": probe_id, "sent_ts": time.time(),
            "samples": samples}


def make_config(**overrides: Any) -> Any:
    from qosmon.collector.config import CollectorConfig

    base: dict[str, Any] = {
        "port": 0,
        "probes": [{"probe_id": p, "token": t} for p, t in PROBE_TOKENS.items()],
        "feed_tokens": [FEED_TOKEN],
        "rate_limit": {"requests_per_s": 1000, "burst": 1000},
        "retention": {"enabled": False},
    }
    base.update(overrides)
    return CollectorConfig.model_validate(base)
