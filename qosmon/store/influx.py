"""The InfluxDB-API backend: time series to a server that speaks the InfluxDB
v2 write API (InfluxDB 2.x, VictoriaMetrics), through influxdb-client.

What goes where:
- probe samples, business samples, stock records: line protocol, measurements
  ``qosmon_probe``, ``qosmon_business``, ``qosmon_stock``. Labels (show,
  stream, probe, region, isp, edge node, state; region/SKU; warehouse/SKU)
  are tags, numbers are fields, the sample's ``ts`` is the point's time (ms).
  ``ProbeSample.error`` (free text) is not written: it is no time series.
- everything else (shows, on-screen events, stock states, incidents, alert
  deliveries, the platform's viewer-side aggregates) and the ids of stored
  batches: a SQLite side store, because they are documents, not time series,
  and need update-by-id (aggregates: one document per audience slice and
  interval, a dozen dimensions of labels that would each be a series).

Reads of the time series use the Prometheus-style export API
(``/api/v1/export``) that VictoriaMetrics offers. Flux (InfluxDB 2.x reads)
is not implemented: no such server can be run here to test it.

Durability is the server's: a write returns once the server answered 2xx.
"""

from __future__ import annotations

import json
import logging
import math
import operator
import queue
import threading
import typing
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from qosmon.alerting.outbox import OutboxEntry
from qosmon.model import (
    AlertDelivery,
    BusinessSample,
    Incident,
    OnScreen,
    ProbeSample,
    Show,
    ShowSummary,
    StockRecord,
    StockState,
    ViewerAggregate,
)
from qosmon.store.base import BatchConflictError, StoreError
from qosmon.store.sqlite import SqliteStore, batch_digest

if TYPE_CHECKING:
    from qosmon.store.postgres import PostgresDocuments

log = logging.getLogger(__name__)

PROBE = "qosmon_probe"
BUSINESS = "qosmon_business"
STOCK = "qosmon_stock"

PROBE_TAGS = ("show_id", "stream_id", "probe_id", "region", "isp", "edge_node", "state")
# Numbers only: text (error, rtt_error, video_codec) and flags have no
# place in a numeric series (audio_stalled_ms carries audio_stalled).
PROBE_FIELDS = tuple(
    n for n, f in ProbeSample.model_fields.items()
    if n not in PROBE_TAGS and n != "ts"
    and set(typing.get_args(f.annotation) or (f.annotation,)) - {type(None)} <= {int, float}
)
_INT_FIELDS = frozenset(
    n for n, f in ProbeSample.model_fields.items() if "int" in str(f.annotation)
)
BUSINESS_TAGS = ("show_id", "region", "sku")
BUSINESS_FIELDS = ("viewers_online", "joins", "leaves", "orders", "chat_messages")

# Line protocol escaping, as influxdb-client's Point does it: backslash
# first, so an escape we add is never itself escaped.
_TAG_ESCAPE = str.maketrans({
    "\\": "\\\\", ",": "\\,", " ": "\\ ", "=": "\\=", "\n": "\\n", "\r": "\\r", "\t": "\\t",
})


def escape_tag(value: str) -> str:
    """Escape a tag key or value (or field key) for line protocol."""
    return value.translate(_TAG_ESCAPE)


def _tags(pairs: Iterable[tuple[str, str]]) -> str:
    # Empty values are left out: line protocol has no empty tag value.
    return "".join(f",{k}={escape_tag(v)}" for k, v in pairs if v != "")


def _field(name: str, value: float | int | bool) -> str:
    if isinstance(value, bool):
        return f"{name}={'true' if value else 'false'}"
    if isinstance(value, int):
        return f"{name}={value}i"
    return f"{name}={value!r}"


def _ms(ts: float) -> int:
    return round(ts * 1000.0)


# probe_line is the InfluxDB backend's hot path (it was a third of the
# collector's time there). Samples of a batch share their tags and, mostly,
# which fields are known; both are turned into strings once and cached. The
# caches are pure functions of their keys, so store instances may share them.
_probe_tag_values = operator.itemgetter(*PROBE_TAGS)
_probe_field_values = operator.itemgetter(*PROBE_FIELDS)
_CACHE_MAX = 10_000
_probe_prefixes: dict[tuple[Any, ...], str] = {}
_probe_field_formats: dict[tuple[type, ...], str | None] = {}


def _probe_prefix(tag_values: tuple[Any, ...]) -> str:
    prefix = _probe_prefixes.get(tag_values)
    if prefix is None:
        if len(_probe_prefixes) >= _CACHE_MAX:
            _probe_prefixes.clear()
        prefix = PROBE + _tags(zip(PROBE_TAGS, map(str, tag_values), strict=True))
        _probe_prefixes[tag_values] = prefix
    return prefix


def _probe_field_format(types: tuple[type, ...]) -> str | None:
    """A ``str.format`` pattern for field values of these types, in
    ``PROBE_FIELDS`` order: unknown (None) values format to nothing, the
    others as ``_field`` writes them. None: some type needs ``_field``."""
    parts: list[str] = []
    sep = ""
    for name, t in zip(PROBE_FIELDS, types, strict=True):
        if t is type(None):
            parts.append("{!s:.0}")  # consumes the None, writes nothing
            continue
        if t is float:
            parts.append(f"{sep}{name}={{!r}}")
        elif t is int:
            parts.append(f"{sep}{name}={{}}i")
        else:
            return None
        sep = ","
    return "".join(parts)


def probe_line(s: ProbeSample) -> str | None:
    d = s.__dict__
    values = _probe_field_values(d)
    types = tuple(map(type, values))
    try:
        fmt = _probe_field_formats[types]
    except KeyError:
        if len(_probe_field_formats) >= _CACHE_MAX:
            _probe_field_formats.clear()
        fmt = _probe_field_formats[types] = _probe_field_format(types)
    if fmt is not None:
        fields = fmt.format(*values)
    else:
        fields = ",".join(
            _field(n, v) for n, v in zip(PROBE_FIELDS, values, strict=True) if v is not None
        )
    if not fields:
        return None
    return f"{_probe_prefix(_probe_tag_values(d))} {fields} {_ms(s.ts)}"


def business_line(s: BusinessSample) -> str:
    d = s.__dict__
    fields = ",".join(_field(n, d[n]) for n in BUSINESS_FIELDS if d[n] is not None)
    # A sample with every figure unknown still marks the interval as seen.
    fields = fields or "seen=1i"
    return f"{BUSINESS}{_tags((t, d[t]) for t in BUSINESS_TAGS)} {fields} {_ms(s.ts)}"


def stock_line(r: StockRecord) -> str:
    tags = _tags((("warehouse", r.warehouse), ("sku", r.sku)))
    return (
        f"{STOCK}{tags} on_hand={r.on_hand}i,source_ts={r.source_ts!r},"
        f"full_snapshot={'true' if r.full_snapshot else 'false'} {_ms(r.ts)}"
    )


def _selector_value(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Probe batches queued together go to the server in one request of at most
# this many points (a few MB of line protocol; VictoriaMetrics takes 32 MB,
# InfluxDB 25 MB by default).
GROUP_MAX_POINTS = 20_000


class _Rejected(StoreError):
    """The server refused the data itself (4xx), not a server or network
    failure: worth retrying each batch of a group alone."""


@dataclass(slots=True)
class _PendingBatch:
    batch_id: str
    samples: Sequence[ProbeSample]
    future: Future[bool]


class InfluxStore:
    """``Store`` over an InfluxDB-API server plus a SQLite side store.

    Probe batches go through one writer thread that sends whatever is queued
    as one write: influxdb-client's per-call cost was a quarter of the
    collector's time with small batches. A batch is acknowledged once the
    server took its points and its id is recorded."""

    def __init__(
        self,
        url: str,
        bucket: str,
        org: str = "qosmon",
        token: str = "",
        side_path: str | Path = "qosmon-side.db",
        timeout_s: float = 30.0,
        read_only: bool = False,
        documents_dsn: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.bucket = bucket
        self._timeout_s = timeout_s
        # VictoriaMetrics takes any token; InfluxDB 2.x needs the real one.
        self._client = InfluxDBClient(
            url=self.url, token=token or "unused", org=org, timeout=int(timeout_s * 1000)
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        # Documents: in PostgreSQL when several collectors share them,
        # else in a SQLite file beside this collector.
        self._side: SqliteStore | PostgresDocuments
        if documents_dsn is not None:
            from qosmon.store.postgres import PostgresDocuments

            self._side = PostgresDocuments(documents_dsn, read_only=read_only)
        else:
            self._side = SqliteStore(side_path, read_only=read_only)
        self._closed = False
        self._queue: queue.SimpleQueue[_PendingBatch | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name="influx-writer",
                                        daemon=True)
        self._writer.start()

    # --- writes -------------------------------------------------------------
    def _write_lines(self, lines: list[str]) -> None:
        if not lines:
            return
        try:
            self._write_api.write(
                bucket=self.bucket, record="\n".join(lines),
                write_precision=WritePrecision.MS,  # type: ignore[arg-type]
            )
        except ApiException as exc:
            error = _Rejected if 400 <= (exc.status or 0) < 500 else StoreError
            raise error(f"write to {self.url} failed: {exc}") from exc
        except Exception as exc:  # urllib3 errors, timeouts
            raise StoreError(f"write to {self.url} failed: {exc}") from exc

    def write_probe_batch(self, batch_id: str, samples: Sequence[ProbeSample]) -> bool:
        return self.submit_probe_batch(batch_id, samples).result()

    def submit_probe_batch(self, batch_id: str, samples: Sequence[ProbeSample]) -> Future[bool]:
        """See ``SubmitsProbeBatches``. Copies of one batch queued together
        (a retry racing its original) are stored once."""
        if self._closed:
            raise StoreError("store is closed")
        fut: Future[bool] = Future()
        self._queue.put(_PendingBatch(batch_id, samples, fut))
        return fut

    def _write_loop(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            group = [first]
            points = len(first.samples)
            while points < GROUP_MAX_POINTS:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                group.append(item)
                points += len(item.samples)
            try:
                self._write_group(group)
            except BaseException as exc:  # a bug: tell the callers, keep the writer
                log.exception("influx writer failed")
                for p in group:
                    if not p.future.done():
                        p.future.set_exception(exc)

    def _write_group(self, group: list[_PendingBatch]) -> None:
        fresh: list[_PendingBatch] = []
        seen: dict[str, str] = {}
        digests: dict[int, str] = {}
        for p in group:
            digest = digests[id(p)] = batch_digest(p.samples)
            try:
                known, before = (True, seen[p.batch_id]) if p.batch_id in seen \
                    else self._side.batch_record(p.batch_id)
            except StoreError as exc:
                p.future.set_exception(exc)
                continue
            if known and before is not None and before != digest:
                # The same id with other samples: a new batch, not a retry.
                p.future.set_exception(BatchConflictError(
                    f"batch id {p.batch_id.partition('/')[2] or p.batch_id!r} was stored "
                    "before with other content; a new batch needs a new batch_id"))
            elif known:
                p.future.set_result(False)
            else:
                seen[p.batch_id] = digest
                fresh.append(p)
        if not fresh:
            return
        try:
            self._write_lines([ln for p in fresh for ln in map(probe_line, p.samples)
                               if ln is not None])
        except _Rejected as exc:
            if len(fresh) == 1:
                fresh[0].future.set_exception(exc)
                return
            # Find the batch the server refuses; the others still go in.
            written = []
            for p in fresh:
                try:
                    self._write_lines([ln for ln in map(probe_line, p.samples) if ln is not None])
                except StoreError as one_exc:
                    p.future.set_exception(one_exc)
                else:
                    written.append(p)
            fresh = written
        except StoreError as exc:  # server or network down: nothing acknowledged
            for p in fresh:
                p.future.set_exception(exc)
            return
        # Recorded after the server took the points: a crash in between
        # means the retry writes them again, and the server keeps one point
        # per series and timestamp (InfluxDB; VictoriaMetrics with
        # -dedup.minScrapeInterval; the reader below dedups too). One side
        # store commit for the whole group.
        recorded: list[Future[bool] | None] = []
        for p in fresh:
            try:
                recorded.append(
                    self._side.submit_probe_batch(p.batch_id, [], digest=digests[id(p)]))
            except StoreError as exc:
                p.future.set_exception(exc)
                recorded.append(None)
        for p, rec in zip(fresh, recorded, strict=True):
            if rec is None:
                continue
            try:
                rec.result()
            except StoreError as exc:
                p.future.set_exception(exc)
            else:
                p.future.set_result(True)

    def write_business(self, samples: Sequence[BusinessSample]) -> None:
        self._write_lines([business_line(s) for s in samples])

    def write_stock(self, records: Sequence[StockRecord]) -> None:
        self._write_lines([stock_line(r) for r in records])

    def write_stock_states(self, states: Sequence[StockState]) -> None:
        self._side.write_stock_states(states)

    def put_show(self, show: Show) -> None:
        self._side.put_show(show)

    def write_on_screen(self, events: Sequence[OnScreen]) -> None:
        self._side.write_on_screen(events)

    def put_incidents(self, show_id: str, incidents: Sequence[Incident]) -> None:
        self._side.put_incidents(show_id, incidents)

    def write_alert_deliveries(self, show_id: str, deliveries: Sequence[AlertDelivery]) -> None:
        self._side.write_alert_deliveries(show_id, deliveries)

    def write_viewer_aggregates(self, samples: Sequence[ViewerAggregate]) -> None:
        self._side.write_viewer_aggregates(samples)

    # The alert outbox is a set of documents too: the side store keeps it.
    def outbox_add(
        self, new: Sequence[OutboxEntry], changed: Sequence[OutboxEntry],
        alert_state: tuple[str, str | None] | None,
    ) -> None:
        self._side.outbox_add(new, changed, alert_state)

    def outbox_update(self, entries: Sequence[OutboxEntry]) -> None:
        self._side.outbox_update(entries)

    def outbox_load(
        self, show_ids: Sequence[str] | None = None
    ) -> tuple[list[OutboxEntry], dict[str, str]]:
        return self._side.outbox_load(show_ids)

    def acquire_lease(self, show_id: str, owner: str, ttl_s: float) -> bool:
        return self._side.acquire_lease(show_id, owner, ttl_s)

    def release_lease(self, show_id: str, owner: str) -> None:
        self._side.release_lease(show_id, owner)

    def lease_holders(self) -> dict[str, str]:
        return self._side.lease_holders()

    def expired_leases(self) -> list[str]:
        return self._side.expired_leases()

    def outbox_entries(self, show_id: str) -> list[OutboxEntry]:
        return self._side.outbox_entries(show_id)

    # --- reads --------------------------------------------------------------
    def _export(
        self, measurement: str, labels: dict[str, str], start_ts: float | None,
        end_ts: float | None,
    ) -> dict[tuple[tuple[tuple[str, str], ...], int], dict[str, Any]]:
        """Points of a measurement as {(tags, ms): {field: value}}."""
        matchers = [f'__name__=~"{measurement}_.*"'] + [
            f"{k}={_selector_value(v)}" for k, v in labels.items()
        ]
        params = [("match[]", "{" + ",".join(matchers) + "}")]
        if start_ts is not None:
            params.append(("start", f"{start_ts:.3f}"))
        if end_ts is not None:
            params.append(("end", f"{end_ts:.3f}"))
        url = f"{self.url}/api/v1/export?{urllib.parse.urlencode(params)}"
        points: dict[tuple[tuple[tuple[str, str], ...], int], dict[str, Any]] = {}
        prefix = len(measurement) + 1
        try:
            with urllib.request.urlopen(url, timeout=self._timeout_s) as resp:
                for raw in resp:
                    if not raw.strip():
                        continue
                    series = json.loads(raw)
                    metric = dict(series["metric"])
                    field = metric.pop("__name__")[prefix:]
                    key_tags = tuple(sorted(metric.items()))
                    for ms, value in zip(series["timestamps"], series["values"], strict=True):
                        # Duplicates of one point (a re-sent batch) collapse here.
                        points.setdefault((key_tags, int(ms)), {})[field] = value
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            raise StoreError(f"read from {self.url} failed: {exc}") from exc
        return points

    def probe_samples(
        self,
        show_id: str,
        start_ts: float | None = None,
        end_ts: float | None = None,
        region: str | None = None,
        probe_id: str | None = None,
    ) -> list[ProbeSample]:
        labels = {"show_id": show_id}
        if region is not None:
            labels["region"] = region
        if probe_id is not None:
            labels["probe_id"] = probe_id
        out = []
        for (tags, ms), fields in self._export(PROBE, labels, start_ts, end_ts).items():
            d: dict[str, Any] = dict(tags)
            for name, value in fields.items():
                if name not in PROBE_FIELDS or value is None or not math.isfinite(value):
                    continue
                d[name] = int(value) if name in _INT_FIELDS else float(value)
            d["ts"] = ms / 1000.0
            out.append(ProbeSample.model_validate(d))
        out.sort(key=lambda s: (s.ts, s.probe_id, s.stream_id))
        return out

    def business(
        self, show_id: str, start_ts: float | None = None, end_ts: float | None = None
    ) -> list[BusinessSample]:
        out = []
        for (tags, ms), fields in self._export(
            BUSINESS, {"show_id": show_id}, start_ts, end_ts
        ).items():
            d: dict[str, Any] = dict(tags)
            d.update({k: int(v) for k, v in fields.items() if k in BUSINESS_FIELDS})
            d["ts"] = ms / 1000.0
            out.append(BusinessSample.model_validate(d))
        out.sort(key=lambda s: (s.ts, s.region, s.sku))
        return out

    def stock(
        self, start_ts: float | None = None, end_ts: float | None = None
    ) -> list[StockRecord]:
        out = []
        for (tags, ms), fields in self._export(STOCK, {}, start_ts, end_ts).items():
            d: dict[str, Any] = dict(tags)
            if "on_hand" not in fields or "source_ts" not in fields:
                continue
            d["on_hand"] = int(fields["on_hand"])
            d["source_ts"] = float(fields["source_ts"])
            # VictoriaMetrics stores a boolean field as 1/0.
            d["full_snapshot"] = bool(fields.get("full_snapshot", 0))
            d["ts"] = ms / 1000.0
            out.append(StockRecord.model_validate(d))
        out.sort(key=lambda r: (r.ts, r.warehouse, r.sku))
        return out

    def put_show_summary(self, summary: ShowSummary) -> None:
        self._side.put_show_summary(summary)

    def show_summaries(
        self, start_ts: float | None = None, end_ts: float | None = None
    ) -> list[ShowSummary]:
        return self._side.show_summaries(start_ts, end_ts)

    def get_show(self, show_id: str) -> Show | None:
        return self._side.get_show(show_id)

    def list_shows(self) -> list[Show]:
        return self._side.list_shows()

    def stock_states(self, show_id: str) -> list[StockState]:
        return self._side.stock_states(show_id)

    def on_screen(self, show_id: str) -> list[OnScreen]:
        return self._side.on_screen(show_id)

    def incidents(self, show_id: str) -> list[Incident]:
        return self._side.incidents(show_id)

    def alert_deliveries(self, show_id: str) -> list[AlertDelivery]:
        return self._side.alert_deliveries(show_id)

    def viewer_aggregates(
        self, show_id: str, start: float | None = None, end: float | None = None
    ) -> list[ViewerAggregate]:
        return self._side.viewer_aggregates(show_id, start, end)

    def has_batch(self, batch_id: str) -> bool:
        return self._side.has_batch(batch_id)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._writer.join(timeout=self._timeout_s + 30.0)
        try:
            self._write_api.close()
            self._client.close()
        finally:
            self._side.close()
