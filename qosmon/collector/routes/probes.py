"""Probe traffic: sample batches, heartbeats, and the fleet view built from
them."""

from __future__ import annotations

import time

from aiohttp import web

from qosmon.collector.request import (
    auth_probe,
    auth_read,
    json_response,
    not_future,
    parse,
    read_body,
    state_of,
)
from qosmon.collector.state import CollectorState
from qosmon.collector.wire import ApiError, check_numbers, samples_plainly_fine
from qosmon.model import Heartbeat, ProbeBatch

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
        state.feed_pipeline(state.pipeline.on_probe_samples, samples)
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


@routes.post("/api/v1/probes/heartbeat")
async def post_heartbeat(request: web.Request) -> web.Response:
    state = state_of(request)
    probe_id = auth_probe(request)
    hb = parse(Heartbeat, await read_body(request))
    if hb.probe.probe_id != probe_id:
        raise _not_this_probe(probe_id, "probe.probe_id")
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
