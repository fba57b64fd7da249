"""The collector's metrics, in a registry per collector instance (several
collectors may run in one process: tests, the in-process demo).

Two kinds: the collector's own counters (ingest, rejects, store calls), and
the viewers' QoS of every live show as the pipeline sees it, read at scrape
time so a show's series leave ``/metrics`` when it ends. Prometheus
conventions: base units (seconds, ratios, bits per second), ``_total`` on
counters, labels from bounded sets only (show x region x probe of live shows,
the ``Cause`` enum, configured alert routes). ``docs/collector.md`` lists
every name; ``deploy/`` has rules and a dashboard that use them.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

import qosmon
from qosmon.pipeline import DeliveryQos, ShowQos

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_PROBE_LABELS = ["show", "region", "probe"]

# (name, help, unit factor, ProbeSample field): per-probe gauges of the
# latest sample. A field the probe did not measure this second is left out
# rather than reported as 0.
_PROBE_GAUGES = (
    ("qosmon_probe_rtt_seconds", "Round-trip time to the edge, latest sample", 1e-3, "rtt_ms"),
    ("qosmon_probe_loss_ratio", "Packets lost on the path before retransmission, "
     "share of those expected in the latest second", 1e-2, "loss_pct"),
    ("qosmon_probe_residual_loss_ratio", "Packets still missing after retransmission, "
     "share of those expected in the latest second", 1e-2, "residual_loss_pct"),
    ("qosmon_probe_jitter_seconds", "Interarrival jitter, latest sample", 1e-3, "jitter_ms"),
    ("qosmon_probe_bitrate_bits_per_second", "Received media bitrate, latest second",
     1e3, "bitrate_kbps"),
    ("qosmon_probe_frames_per_second", "Decodable frames received, latest second", 1.0, "fps"),
    ("qosmon_probe_no_frame_seconds", "Time since the last frame (a freeze in progress)",
     1e-3, "no_frame_ms"),
    ("qosmon_probe_chat_delivery_seconds", "Mean time for a chat message to be seen back, "
     "latest second", 1e-3, "chat_rtt_ms"),
    ("qosmon_probe_loop_lag_seconds", "How late the probe's own event loop ran at worst, "
     "latest second (the probe falling behind, not the path)", 1e-3, "probe_lag_ms"),
)


class QosCollector(Collector):
    """Viewer QoS of the live shows and alert delivery, read at scrape time."""

    def __init__(self, shows: Callable[[], list[ShowQos]],
                 deliveries: Callable[[], list[DeliveryQos]]) -> None:
        self._shows = shows
        self._deliveries = deliveries

    def describe(self) -> Iterator[Metric]:
        return iter(())  # the series depend on the live shows

    def collect(self) -> Iterator[Metric]:
        shows = self._shows()
        gauges = {name: GaugeMetricFamily(name, doc, labels=_PROBE_LABELS)
                  for name, doc, _, _ in _PROBE_GAUGES}
        up = GaugeMetricFamily("qosmon_probe_up", "1 if the probe's latest sample for the show "
                               "is recent and its connection is up", labels=_PROBE_LABELS)
        frozen = CounterMetricFamily("qosmon_probe_frozen_seconds",
                                     "Seconds of frozen picture (W3C freezes that ended)",
                                     labels=_PROBE_LABELS)
        # Counted while a stall lasts, so a rate over a minute shows a stall
        # in progress; the frozen counter above moves only when one ends.
        stuck = CounterMetricFamily("qosmon_probe_stuck_seconds",
                                    "Seconds the picture was stuck (freezes and pauses), "
                                    "counted while they last", labels=_PROBE_LABELS)
        # Datagrams the kernel dropped at the probe's own sockets: loss that
        # is the probe's host falling behind, not the path.
        socket_drops = CounterMetricFamily("qosmon_probe_socket_drops",
                                           "Datagrams the kernel dropped at the probe's own "
                                           "sockets (it did not read them in time)",
                                           labels=_PROBE_LABELS)
        chat_sent = CounterMetricFamily("qosmon_probe_chat_messages_sent",
                                        "Chat messages the probe sent", labels=_PROBE_LABELS)
        chat_lost = CounterMetricFamily("qosmon_probe_chat_messages_lost",
                                        "Chat messages not seen back within the deadline",
                                        labels=_PROBE_LABELS)
        region_up = GaugeMetricFamily("qosmon_probes_up", "Probes up per show and region",
                                      labels=["show", "region"])
        region_known = GaugeMetricFamily("qosmon_probes", "Probes that reported for the show, "
                                         "per region", labels=["show", "region"])
        incidents = GaugeMetricFamily("qosmon_incidents_open", "Open incidents by cause",
                                      labels=["show", "cause"])
        live = GaugeMetricFamily("qosmon_show_live", "1 for every show being watched now",
                                 labels=["show"])
        for show in shows:
            live.add_metric([show.show_id], 1.0)
            per_region: dict[str, list[int]] = {}
            for p in show.probes:
                labels = [show.show_id, p.region, p.probe_id]
                for name, _, factor, attr in _PROBE_GAUGES:
                    value = getattr(p.latest, attr)
                    if value is not None:
                        gauges[name].add_metric(labels, float(value) * factor)
                up.add_metric(labels, 1.0 if p.up else 0.0)
                frozen.add_metric(labels, p.frozen_s)
                stuck.add_metric(labels, p.stuck_s)
                if p.socket_drops is not None:  # an older probe: unknown, left out
                    socket_drops.add_metric(labels, float(p.socket_drops))
                chat_sent.add_metric(labels, float(p.chat_sent))
                chat_lost.add_metric(labels, float(p.chat_lost))
                counts = per_region.setdefault(p.region, [0, 0])
                counts[0] += int(p.up)
                counts[1] += 1
            for region, (n_up, n) in sorted(per_region.items()):
                region_up.add_metric([show.show_id, region], float(n_up))
                region_known.add_metric([show.show_id, region], float(n))
            for cause, n in sorted(show.open_incidents.items()):
                incidents.add_metric([show.show_id, cause.value], float(n))
        yield live
        yield from gauges.values()
        yield from (up, frozen, stuck, socket_drops, chat_sent, chat_lost, region_up,
                    region_known, incidents)

        deliveries = self._deliveries()
        sent = CounterMetricFamily("qosmon_alert_notifications_sent",
                                   "Alert notifications delivered", labels=["notifier"])
        failed = CounterMetricFamily("qosmon_alert_notifications_failed",
                                     "Alert notifications the receiver rejected, or dropped "
                                     "because too many were waiting",
                                     labels=["notifier"])
        attempts = CounterMetricFamily("qosmon_alert_delivery_attempts_failed",
                                       "Delivery attempts that failed, retried or not",
                                       labels=["notifier"])
        pending = GaugeMetricFamily("qosmon_alert_notifications_pending",
                                    "Alert notifications queued or being delivered",
                                    labels=["notifier"])
        for d in deliveries:
            sent.add_metric([d.notifier], float(d.sent))
            failed.add_metric([d.notifier], float(d.failed + d.dropped))
            attempts.add_metric([d.notifier], float(d.failed_attempts))
            pending.add_metric([d.notifier], float(d.pending))
        yield from (sent, failed, attempts, pending)


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
        self,
        probes_up: Callable[[], int],
        unknown_show_samples: Callable[[], int] | None = None,
        shows: Callable[[], list[ShowQos]] = list,
        deliveries: Callable[[], list[DeliveryQos]] = list,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        info = Gauge("qosmon_build_info", "qosmon's version; always 1",
                     ["version", "python"], registry=self.registry)
        info.labels(qosmon.__version__, platform.python_version()).set(1)
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
        self.registry.register(QosCollector(shows, deliveries))

    def observe_tick_lag(self, lag_s: float) -> None:
        self.tick_lag.set(lag_s)
        if lag_s > self._tick_lag_max:
            self._tick_lag_max = lag_s
            self.tick_lag_max.set(lag_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)
