"""The collector's own metrics, in a registry per collector instance (several
collectors may run in one process: tests, the in-process demo)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _UnknownShowSamples(Collector):
    """The collector and the live pipeline keep the count; it is read at
    scrape time (``describe`` keeps registration from reading it early)."""

    _NAME = "qosmon_samples_unknown_show"
    _HELP = ("Probe samples for a show that did not exist (refused) or that live "
             "analysis did not know (stored)")

    def __init__(self, count: Callable[[], int]) -> None:
        self._count = count

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self._NAME, self._HELP)

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self._NAME, self._HELP, value=float(self._count()))


class CollectorMetrics:
    def __init__(
        self, probes_up: Callable[[], int], unknown_show_samples: Callable[[], int] | None = None
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.samples = Counter(
            "qosmon_collector_samples_ingested",
            "Probe samples acknowledged and stored",
            registry=self.registry,
        )
        self.batches = Counter(
            "qosmon_collector_batches",
            "Probe batches acknowledged, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.records = Counter(
            "qosmon_collector_records_ingested",
            "Business samples, stock records and on-screen events stored",
            ["kind"],
            registry=self.registry,
        )
        self.rejects = Counter(
            "qosmon_collector_requests_rejected",
            "Requests refused, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.limits_hit = Counter(
            "qosmon_collector_limits_hit",
            "Limits reached without refusing the request (a series downsampled) "
            "or refusing it for load (concurrent series reads); refusals are "
            "also in requests_rejected",
            ["limit"],
            registry=self.registry,
        )
        self.store_seconds = Histogram(
            "qosmon_collector_store_seconds",
            "Time for a store call to return (writes: until durable)",
            ["op"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.store_errors = Counter(
            "qosmon_collector_store_errors",
            "Store calls that failed",
            ["op"],
            registry=self.registry,
        )
        self.tick_lag = Gauge(
            "qosmon_collector_tick_lag_seconds",
            "How long after its whole second the last live-analysis tick was done",
            registry=self.registry,
        )
        self.tick_lag_max = Gauge(
            "qosmon_collector_tick_lag_max_seconds",
            "The largest tick lag since the collector started",
            registry=self.registry,
        )
        self._tick_lag_max = 0.0
        up = Gauge(
            "qosmon_collector_probes_up",
            "Probes whose last heartbeat is within 3 heartbeat intervals",
            registry=self.registry,
        )
        up.set_function(lambda: float(probes_up()))
        if unknown_show_samples is not None:
            self.registry.register(_UnknownShowSamples(unknown_show_samples))

    def observe_tick_lag(self, lag_s: float) -> None:
        self.tick_lag.set(lag_s)
        if lag_s > self._tick_lag_max:
            self._tick_lag_max = lag_s
            self.tick_lag_max.set(lag_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)
