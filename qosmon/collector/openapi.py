"""The OpenAPI 3.1 document of the collector's API, built from the data model
so the document and the validation cannot drift apart."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from qosmon import __version__
from qosmon.collector.wire import (
    BusinessPush,
    InventoryChanges,
    InventoryHeartbeat,
    InventorySnapshot,
    ShowEnd,
    ViewerAggregatePush,
)
from qosmon.model import (
    Heartbeat,
    Incident,
    OnScreen,
    ProbeAssignment,
    ProbeBatch,
    ProbeRegistration,
    ProbeSample,
    Show,
    StockState,
)

# Probe sample fields a series can be asked for: the numbers.
SERIES_METRICS: tuple[str, ...] = tuple(
    name
    for name, f in ProbeSample.model_fields.items()
    if name not in ("ts", "received_ts")
    and any(t in str(f.annotation) for t in ("float", "int"))
)

_MODELS: tuple[type[BaseModel], ...] = (
    ProbeBatch, Heartbeat, Show, ShowEnd, OnScreen, BusinessPush, InventorySnapshot,
    InventoryChanges, InventoryHeartbeat, Incident, StockState, ViewerAggregatePush,
    ProbeRegistration, ProbeAssignment,
)

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "what is wrong, naming the field"},
        "field": {"type": "string", "description": "e.g. samples[3].rtt_ms"},
        "problem": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "problem": {"type": "string"}},
            },
        },
        "line": {"type": "integer", "description": "CSV line (1 = header)"},
        "column": {"type": "string", "description": "CSV column"},
        "row": {"type": "integer"},
    },
}
_STORED = {
    "type": "object",
    "required": ["stored"],
    "properties": {"stored": {"type": "integer", "minimum": 0}},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "invalid input; the body names the field",
        401: "missing or unknown token",
        403: "token not allowed for this (probe id, pinned labels or shows do not match, "
             "wrong kind of token)",
        404: "no such show",
        408: "body not received within limits.body_timeout_s",
        409: "batch id stored before with other content",
        413: "body larger than max_body_bytes",
        415: "wrong Content-Type",
        429: "too many requests for this token (or address, for open reads); see Retry-After",
        501: "this store does not keep that kind of data",
        503: "store unavailable or too slow; nothing acknowledged, retry",
        504: "not answered within limits.request_timeout_s; nothing acknowledged",
    }
    return {
        str(c): {"description": text[c], "content": _json_content(_ref("Error"))} for c in codes
    }


_WRITE_ERRORS = (400, 401, 403, 408, 413, 415, 429, 503, 504)
_READ_ERRORS = (400, 401, 429, 503, 504)
_SHOW_PARAM = {
    "name": "show_id", "in": "path", "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 128,
               "pattern": r"^[^\x00-\x1f\x7f]+$"},
}


def _op(
    summary: str,
    ok: dict[str, Any],
    errors: tuple[int, ...],
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    ok_content: dict[str, Any] | None = None,
    secured: bool = True,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            "200": {"description": "OK", "content": ok_content or _json_content(ok)},
            **_errors(*errors),
        },
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": body}
    if params:
        op["parameters"] = params
    if not secured:
        op["security"] = []
    return op


def build_openapi(reads_open: bool = True) -> dict[str, Any]:
    """``reads_open``: the collector has no read tokens, so GET endpoints
    need no Authorization (the document says so, as clients should know)."""
    _, defs = models_json_schema(
        [(m, "validation") for m in _MODELS], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    # StockRecord.ts is the receipt time: the collector sets it.
    stock = dict(schemas["StockRecord"])
    stock["required"] = [r for r in stock.get("required", []) if r != "ts"]
    stock["properties"] = dict(stock["properties"])
    stock["properties"]["ts"] = {
        "type": "number", "description": "optional, replaced by the collector's receipt time",
    }
    schemas["StockRecord"] = stock
    schemas["Error"] = _ERROR
    schemas["Stored"] = _STORED
    shows_list = {"type": "object", "required": ["shows"],
                  "properties": {"shows": {"type": "array", "items": _ref("Show")}}}
    probe_view = {
        "type": "object",
        "required": ["probe_id", "up", "last_seen", "clock_offset_ms", "version", "labels"],
        "properties": {
            "probe_id": {"type": "string"},
            "labels": {"anyOf": [{"type": "object"}, {"type": "null"}]},
            "version": {"type": "string"},
            "streams": {"type": "array", "items": {"type": "string"}},
            "last_seen": {"type": ["number", "null"]},
            "last_heartbeat": {"type": ["number", "null"]},
            "up": {"type": "boolean", "description": "heartbeat within 3 intervals"},
            "clock_offset_ms": {
                "type": ["number", "null"],
                "description": "median of received_ts - probe ts (includes network delay)",
            },
            "samples_received": {"type": "integer"},
            "batches_received": {"type": "integer"},
            "dropped_samples": {"type": "integer"},
            "spool_error": {"type": "string",
                            "description": "the probe's spool failing (empty: fine)"},
        },
    }
    fleet = {"type": "object", "required": ["probes"],
             "properties": {"ts": {"type": "number"},
                            "heartbeat_interval_s": {"type": "number"},
                            "probes": {"type": "array", "items": probe_view}}}
    series = {
        "type": "object",
        "required": ["show_id", "metric", "points"],
        "properties": {
            "show_id": {"type": "string"}, "metric": {"type": "string"},
            "start_ts": {"type": "number"}, "end_ts": {"type": "number"},
            "bucket_s": {"type": "number", "description":
                         "0: raw samples; else values averaged over buckets this wide"},
            "truncated": {"type": "boolean",
                          "description": "the point cap cut the oldest points"},
            "points": {"type": "array", "items": {
                "type": "object",
                "properties": {"ts": {"type": "number"}, "probe_id": {"type": "string"},
                               "region": {"type": "string"}, "stream_id": {"type": "string"},
                               "value": {"type": ["number", "null"]}},
            }},
        },
    }
    auth_probe = "Bearer token of the probe named in the body"
    paths: dict[str, Any] = {
        "/api/v1/samples": {"post": _op(
            f"Store a probe batch once (by batch_id). {auth_probe}.",
            {"type": "object", "required": ["stored", "duplicate"],
             "properties": {"stored": {"type": "integer", "minimum": 0},
                            "duplicate": {"type": "boolean"}}},
            (*_WRITE_ERRORS, 404, 409), body=_json_content(_ref("ProbeBatch")),
        )},
        "/api/v1/probes/heartbeat": {"post": _op(
            f"Probe registration and liveness. {auth_probe}.",
            {"type": "object", "properties": {"ok": {"type": "boolean"},
                                              "received_ts": {"type": "number"}}},
            _WRITE_ERRORS, body=_json_content(_ref("Heartbeat")),
        )},
        "/api/v1/fleet": {"get": _op("Probes: labels, version, last seen, up, clock offset.",
                                     fleet, _READ_ERRORS)},
        "/api/v1/probes/assignment": {"post": _op(
            "A probe registers (labels, capabilities) and gets the streams of running "
            f"shows it should watch now. {auth_probe}.",
            _ref("ProbeAssignment"), _WRITE_ERRORS, body=_json_content(_ref("ProbeRegistration")),
        )},
        "/api/v1/assignments": {"get": _op(
            "Probes that asked for work: labels, capabilities, streams given.",
            {"type": "object", "required": ["probes"],
             "properties": {"ts": {"type": "number"},
                            "probes": {"type": "array", "items": {"type": "object"}}}},
            _READ_ERRORS,
        )},
        "/api/v1/shows": {"get": _op("All shows.", shows_list, _READ_ERRORS)},
        "/api/v1/shows/{show_id}": {
            "put": _op("Create or replace a show (feed token).", _ref("Show"), _WRITE_ERRORS,
                       body=_json_content(_ref("Show")), params=[_SHOW_PARAM]),
            "get": _op("One show.", _ref("Show"), (*_READ_ERRORS, 404), params=[_SHOW_PARAM]),
        },
        "/api/v1/shows/{show_id}/end": {"post": _op(
            "End a show at ts (feed token).", _ref("Show"), (*_WRITE_ERRORS, 404),
            body=_json_content(_ref("ShowEnd")), params=[_SHOW_PARAM],
        )},
        "/api/v1/shows/{show_id}/on-screen": {"post": _op(
            "SKUs going on/off screen (feed token).", _STORED, (*_WRITE_ERRORS, 404),
            body=_json_content({"type": "array", "items": _ref("OnScreen")}),
            params=[_SHOW_PARAM],
        )},
        "/api/v1/shows/{show_id}/incidents": {"get": _op(
            "Incidents of a show, from the store.",
            {"type": "object", "required": ["incidents"],
             "properties": {"show_id": {"type": "string"},
                            "incidents": {"type": "array", "items": _ref("Incident")}}},
            (*_READ_ERRORS, 404), params=[_SHOW_PARAM],
        )},
        "/api/v1/shows/{show_id}/inventory": {"get": _op(
            "Current stock state per SKU and warehouse (live pipeline).",
            {"type": "object", "required": ["states"],
             "properties": {"show_id": {"type": "string"},
                            "states": {"type": "array", "items": _ref("StockState")}}},
            (*_READ_ERRORS, 404), params=[_SHOW_PARAM],
        )},
        "/api/v1/shows/{show_id}/inventory/events": {"get": _op(
            "Server-sent events: one StockState JSON per 'data:' line, current states first.",
            {}, (*_READ_ERRORS, 404), params=[_SHOW_PARAM],
            ok_content={"text/event-stream": {"schema": {"type": "string"}}},
        )},
        "/api/v1/business": {"post": _op(
            "Business samples from the commerce platform (feed token).", _STORED,
            _WRITE_ERRORS, body=_json_content(_ref("BusinessPush")),
        )},
        "/api/v1/business/import": {"post": _op(
            "Business samples as CSV; header row of BusinessSample field names (feed token).",
            _STORED, _WRITE_ERRORS,
            body={"text/csv": {"schema": {"type": "string"}}},
            params=[{"name": "show_id", "in": "query", "required": False,
                     "schema": {"type": "string"}}],
        )},
        "/api/v1/viewer-aggregates": {"post": _op(
            "The platform's own player reports per audience slice (region, ISP, CDN, "
            "device, app version) and interval: sessions, failures, watched and stalled "
            "seconds (feed token). Diagnosis localizes failure rate and rebuffer ratio "
            "from them.", _STORED, (*_WRITE_ERRORS, 501),
            body=_json_content(_ref("ViewerAggregatePush")),
        )},
        "/api/v1/inventory/snapshot": {"post": _op(
            "A warehouse's full stock list; SKUs absent keep their last figure (feed token).",
            _STORED, _WRITE_ERRORS, body=_json_content(_ref("InventorySnapshot")),
        )},
        "/api/v1/inventory/changes": {"post": _op(
            "Changed stock figures (feed token). With warehouse and source_ts: all of that "
            "warehouse's changes up to source_ts; empty, a heartbeat.", _STORED, _WRITE_ERRORS,
            body=_json_content(_ref("InventoryChanges")),
        )},
        "/api/v1/inventory/heartbeat": {"post": _op(
            "A warehouse feed's heartbeat: nothing changed up to source_ts (feed token).",
            {"type": "object", "required": ["ok", "received_ts"],
             "properties": {"ok": {"type": "boolean"}, "received_ts": {"type": "number"}}},
            _WRITE_ERRORS, body=_json_content(_ref("InventoryHeartbeat")),
        )},
        "/api/v1/series": {"get": _op(
            "The last N minutes of one probe metric of a show.", series, _READ_ERRORS,
            params=[
                {"name": "show_id", "in": "query", "required": True,
                 "schema": {"type": "string"}},
                {"name": "metric", "in": "query", "required": True,
                 "schema": {"type": "string", "enum": list(SERIES_METRICS)}},
                {"name": "region", "in": "query", "schema": {"type": "string"}},
                {"name": "probe_id", "in": "query", "schema": {"type": "string"}},
                {"name": "minutes", "in": "query",
                 "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": 1440}},
            ],
        )},
        "/api/v1/history": {"get": _op(
            "History across the stored shows (what history.json holds): scores per region, "
            "where and when incidents recur, SKUs that sell out again, before/after changes.",
            {"type": "object"}, _READ_ERRORS,
            params=[
                {"name": "since", "in": "query", "schema": {"type": "string", "format": "date"}},
                {"name": "until", "in": "query", "schema": {"type": "string", "format": "date"}},
                {"name": "change", "in": "query", "style": "form", "explode": True,
                 "schema": {"type": "array", "maxItems": 20, "items": {"type": "string"}}},
            ],
        )},
        "/metrics": {"get": _op(
            "The collector's own metrics, Prometheus text format.", {}, (401, 429),
            ok_content={"text/plain": {"schema": {"type": "string"}}},
        )},
        "/healthz": {"get": _op("Health: the store's writes, the live pipeline's tick and "
                                "alert outbox.", {"type": "object"}, (), secured=False)},
    }
    paths["/healthz"]["get"]["responses"]["503"] = {
        "description": "unhealthy: `problems` says what is wrong",
        "content": _json_content({"type": "object"}),
    }
    if reads_open:
        for ops in paths.values():
            if "get" in ops:
                ops["get"]["security"] = []
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "qosmon collector",
            "version": __version__,
            "description": "Probe samples, fleet, shows, business and inventory feeds. "
                           "Errors: JSON naming the field.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
