"""Probe traffic: sample batches, heartbeats, and the fleet view built from
them."""

from __future__ import annotations

import operator
import time

from aiohttp import web

from qosmon.collector.request import (
    PINNED_LABELS,
    auth_probe,
    auth_read,
    check_pinned,
    json_response,
    known_show,
    not_future,
    not_stale,
    parse,
    read_body,
    state_of,
)
from qosmon.collector.state import CollectorState
from qosmon.collector.wire import ApiError, check_numbers, samples_plainly_fine
from qosmon.model import Heartbeat, ProbeBatch, ProbeSample

routes = web.RouteTableDef()


def _not_this_probe(probe_id: str, field: str) -> ApiError:
    return ApiError(403, f"this token belongs to probe {probe_id!r}", field)


@routes.post("/api/v1/samples")
async def post_samples(request: web.Request) -> web.Response:
    state = state_of(request)
    probe_id = auth_probe(request)
    batch = parse(ProbeBatch, await read_body(request), check=False)
    now = time.time()
    samples = batch.samples
    if not samples_plainly_fine(batch, probe_id, now + state.config.max_future_skew_s):
        _check_samples(state, batch, probe_id, now)
    if samples:
        oldest = min(map(_TS, samples))
        if oldest < now - state.config.limits.max_sample_age_s:
            i = next(i for i, s in enumerate(samples) if s.ts == oldest)
            not_stale(state, oldest, now, f"samples[{i}].ts")
        await _check_claims(state, probe_id, samples)
    for s in samples:
        # Plain dict write: pydantic's __setattr__ costs ~1 µs a sample here.
        s.__dict__["received_ts"] = now
    # Batch ids are scoped by probe (batch ids cannot contain "/"), so one
    # probe can never shadow another's batch.
    batch_key = f"{probe_id}/{batch.batch_id}"
    if state.submit_probe_batch is not None:
        stored = await state.store_submit("write_probe_batch", state.submit_probe_batch,
                                          batch_key, samples)
    else:
        stored = await state.store_call("write_probe_batch", state.store.write_probe_batch,
                                        batch_key, samples)
    state.fleet.on_batch(probe_id, batch.sent_ts, now, len(samples) if stored else 0,
                         batch.dropped_samples if stored else 0)
    if stored:
        state.metrics.samples.inc(len(samples))
        state.metrics.batches.labels("stored").inc()
        state.feed_pipeline(state.pipeline.on_probe_samples,
                            _live_part(state, samples, now))
    else:
        state.metrics.batches.labels("duplicate").inc()
    return json_response({"stored": len(samples) if stored else 0, "duplicate": not stored})


def _check_samples(state: CollectorState, batch: ProbeBatch, probe_id: str, now: float) -> None:
    """The checks ``samples_plainly_fine`` vouches for, one sample at a time,
    raising for the first problem found (field by field, in order)."""
    check_numbers(batch.model_copy(update={"samples": []}))
    if batch.probe_id != probe_id:
        raise _not_this_probe(probe_id, "probe_id")
    for i, s in enumerate(batch.samples):
        if s.probe_id != probe_id:
            raise _not_this_probe(probe_id, f"samples[{i}].probe_id")
        not_future(state, s.ts, now, f"samples[{i}].ts")
        check_numbers(s, f"samples[{i}]")


def _live_part(state: CollectorState, samples: list[ProbeSample], now: float
               ) -> list[ProbeSample]:
    """The samples recent enough for live diagnosis. Older ones (a probe
    sending what it spooled through a long outage) are stored and in the
    show's report, but the live analysis would have to replay every second
    since then on the event loop to place them."""
    horizon = now - state.config.limits.live_max_age_s
    if not samples or min(s.ts for s in samples) >= horizon:
        return samples
    state.metrics.limits_hit.labels("live_max_age").inc()
    return [s for s in samples if s.ts >= horizon]


_GET = {name: operator.itemgetter(name) for name in (*PINNED_LABELS, "show_id")}
_TS = operator.attrgetter("ts")


async def _check_claims(state: CollectorState, probe_id: str,
                        samples: list[ProbeSample]) -> None:
    """What the samples claim beyond the probe id: its pinned labels, shows
    it may post for, and shows that exist."""
    pin = state.pins.get(probe_id)
    # C loops (map): this runs for every batch on the ingest path.
    dicts = [s.__dict__ for s in samples]
    if pin is not None:
        values = {name: set(map(_GET[name], dicts)) for name in PINNED_LABELS}
        check_pinned(state, probe_id, values, "samples[].{name}")
    shows = set(map(_GET["show_id"], dicts))
    if pin is not None and pin.shows:
        other = sorted(shows - set(pin.shows))
        if other:
            raise ApiError(403, f"this token may not post for show {other[0]!r}",
                           "samples[].show_id")
    for show_id in sorted(shows):
        try:
            await known_show(state, show_id, "samples[].show_id")
        except ApiError:
            # Refused, and the probe keeps the batch and sends it again: once
            # the show is created its samples are stored and diagnosed.
            state.count_unknown_show(show_id, len(samples))
            raise


@routes.post("/api/v1/probes/heartbeat")
async def post_heartbeat(request: web.Request) -> web.Response:
    state = state_of(request)
    probe_id = auth_probe(request)
    hb = parse(Heartbeat, await read_body(request))
    if hb.probe.probe_id != probe_id:
        raise _not_this_probe(probe_id, "probe.probe_id")
    # A heartbeat names the probe's labels for the fleet view: pinned too.
    check_pinned(state, probe_id, {n: {getattr(hb.probe, n)} for n in PINNED_LABELS},
                  "probe.{name}")
    now = time.time()
    state.fleet.on_heartbeat(hb, now)
    return json_response({"ok": True, "received_ts": now})


@routes.get("/api/v1/fleet")
async def get_fleet(request: web.Request) -> web.Response:
    state = state_of(request)
    auth_read(request)
    now = time.time()
    return json_response({"ts": now, "heartbeat_interval_s": state.config.heartbeat_interval_s,
                          "probes": state.fleet.view(now)})
