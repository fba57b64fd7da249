"""What goes over the collector's HTTP API besides the data model itself:
request envelopes, the error shape, and the checks the data model leaves to
the boundary (finite numbers, integers that fit a 64-bit column).

Errors are ``{"error": "<field>: <problem>", "field": "samples[3].rtt_ms",
"problem": "...", "errors": [{"field": ..., "problem": ...}, ...]}``.
"""

from __future__ import annotations

import math
import operator
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from qosmon.errors import QosmonError
from qosmon.model import (
    BusinessSample,
    Label,
    ProbeBatch,
    ProbeSample,
    StockRecord,
    ViewerAggregate,
)

INT64_MAX = 2**63 - 1
MAX_ERRORS_LISTED = 20


class ApiError(QosmonError):
    """An answer other than success, with the field it is about."""

    def __init__(
        self,
        status: int,
        problem: str,
        field: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(problem)
        self.status = status
        self.problem = problem
        self.field = field
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "error": f"{self.field}: {self.problem}" if self.field else self.problem,
        }
        if self.field is not None:
            out["field"] = self.field
            out["problem"] = self.problem
        out.update(self.extra)
        return out


def field_path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(body)"


def from_validation_error(exc: ValidationError, prefix: str = "") -> ApiError:
    errors = []
    for err in exc.errors(include_url=False, include_input=False)[:MAX_ERRORS_LISTED]:
        problem = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        errors.append({"field": field_path(tuple(err["loc"]), prefix), "problem": problem})
    first = errors[0] if errors else {"field": "(body)", "problem": "invalid"}
    return ApiError(400, first["problem"], first["field"], errors=errors)


def _check_value(value: Any, path: str) -> None:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ApiError(400, "must be a finite number", path)
    elif isinstance(value, int) and not isinstance(value, bool):
        if not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise ApiError(400, "integer out of range (64-bit)", path)
    elif isinstance(value, BaseModel):
        check_numbers(value, path)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_value(v, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_value(v, f"{path}.{k}" if path else str(k))


def check_numbers(model: BaseModel, path: str = "") -> None:
    """Reject infinities, NaN and integers a store column cannot hold, which
    the data model's JSON parsing lets through."""
    for name, value in model.__dict__.items():
        _check_value(value, f"{path}.{name}" if path else name)


# The fast path leaves NaN and infinities to the model; should the model ever
# let them through, every batch takes the field-by-field checks instead.
_MODEL_REFUSES_NAN = ProbeSample.model_config.get("allow_inf_nan") is False
_PROBE_ID = operator.attrgetter("probe_id")
_TS = operator.attrgetter("ts")
_SAMPLE_INTS = operator.itemgetter(*(
    name for name, f in ProbeSample.model_fields.items()
    if f.annotation is int or set(typing.get_args(f.annotation)) == {int, type(None)}
))


def samples_plainly_fine(batch: ProbeBatch, probe_id: str, latest_ts: float) -> bool:
    """True if a probe batch certainly passes the checks the data model
    leaves to the boundary: the batch and every sample from ``probe_id``,
    none stamped after ``latest_ts``, no integer too large for a 64-bit
    column (NaN and infinities the model refuses itself:
    ``allow_inf_nan=False``). False means "look closer", which
    ``check_numbers`` and friends do field by field to name the culprit.

    This is the ingest hot path, hence C loops (``map``) where possible:
    the per-sample generic checks cost about a third of validation."""
    if not _MODEL_REFUSES_NAN or batch.probe_id != probe_id:
        return False
    if not -INT64_MAX - 1 <= batch.dropped_samples <= INT64_MAX:
        return False
    samples = batch.samples
    if not samples:
        return True
    if max(map(_TS, samples)) > latest_ts or set(map(_PROBE_ID, samples)) != {probe_id}:
        return False
    for s in samples:
        for v in _SAMPLE_INTS(s.__dict__):
            if v is not None and not -INT64_MAX - 1 <= v <= INT64_MAX:
                return False
    return True


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ShowEnd(_Wire):
    ts: float = Field(gt=0)


class BusinessPush(_Wire):
    samples: list[BusinessSample] = Field(max_length=100_000)


class ViewerAggregatePush(_Wire):
    samples: list[ViewerAggregate] = Field(max_length=100_000)


class SnapshotItem(_Wire):
    sku: Label
    on_hand: int = Field(ge=0)


class InventorySnapshot(_Wire):
    """A warehouse's complete stock list at ``source_ts`` (its own clock).

    SKUs absent from the list keep their last figure: a truncated export
    from a warehouse system would otherwise read as a mass sell-out, the very
    sync fault diagnosis has to tell apart. To zero a SKU, list it with 0.
    """

    warehouse: Label
    source_ts: float = Field(gt=0)
    items: list[SnapshotItem] = Field(max_length=200_000)


class InventoryChanges(_Wire):
    """Changed stock figures. Each record's ``ts`` is set by the collector
    on receipt (a value sent is replaced)."""

    records: list[StockRecord] = Field(max_length=200_000)
    # Both or neither: "these are all of this warehouse's changes up to
    # source_ts (its own clock)". An empty set so marked is a heartbeat: the
    # warehouse's figures are still current, and from then on it is held to
    # the heartbeat age limit (see docs/inventory.md).
    warehouse: str | None = Field(default=None, min_length=1, max_length=128,
                                  pattern=r"^[^\x00-\x1f\x7f]+$")
    source_ts: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _whole_warehouse(self) -> InventoryChanges:
        if (self.warehouse is None) != (self.source_ts is None):
            raise ValueError("give warehouse and source_ts together, or neither")
        if self.warehouse is not None:
            for r in self.records:
                if r.warehouse != self.warehouse:
                    raise ValueError(f"record for warehouse {r.warehouse!r} in a change set "
                                     f"marked as warehouse {self.warehouse!r}'s")
        return self


class InventoryHeartbeat(_Wire):
    """A warehouse feed's "nothing changed up to ``source_ts``" (its own
    clock): sent every few seconds while there is nothing to send."""

    warehouse: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")
    source_ts: float = Field(gt=0)


class ShowPath(_Wire):
    """Path parameter ``show_id``, validated like ``Show.show_id``."""

    show_id: Label
