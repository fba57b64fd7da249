"""Scenario files: a show, its regions and probes, its products and
warehouses, and a timeline of faults to inject. See config/demo-scenario.toml.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from qosmon.configfile import load_model
from qosmon.model import Cause, Show, Sku

_ID = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProbeSpec(_Strict):
    id: str = _ID
    isp: str = Field(min_length=1, max_length=64)


class RegionSpec(_Strict):
    name: str = _ID
    edge_node: str = _ID
    warehouses: list[str] = Field(min_length=1)
    base_delay_ms: float = Field(default=20.0, ge=0, le=2000)
    jitter_ms: float = Field(default=2.0, ge=0, le=500)
    viewers: int = Field(default=2000, ge=0, le=10_000_000)
    probes: list[ProbeSpec] = Field(min_length=1, max_length=8)


class SkuSpec(_Strict):
    sku: str = _ID
    name: str = Field(default="", max_length=200)
    abc_class: str = Field(default="B", pattern=r"^[ABC]$")
    price: float = Field(default=10.0, ge=0)
    # Orders per viewer per minute while the SKU is on screen.
    conversion_per_min: float = Field(default=0.002, ge=0, le=1)
    # Everyday sales outside shows (units/day), for the safety stock in refills.
    daily_units: float | None = Field(default=None, ge=0)
    # [start_s, end_s) windows when the SKU is on screen; default: whole show.
    on_screen: list[tuple[float, float]] | None = None


class WarehouseSpec(_Strict):
    id: str = _ID
    stock: dict[str, int] = Field(default_factory=dict)


class FaultKind(StrEnum):
    BANDWIDTH = "bandwidth"
    LOSS = "loss"
    DELAY = "delay"
    OUTAGE = "outage"  # the region's edge node stops forwarding
    CHAT_STALL = "chat_stall"
    SELL_OUT = "sell_out"
    STALE_INVENTORY = "stale_inventory"
    AUDIENCE_DROP = "audience_drop"  # viewers leave, stream fine (content)


# What diagnosis should name for each injected fault.
EXPECTED_CAUSE: dict[FaultKind, Cause] = {
    FaultKind.BANDWIDTH: Cause.BANDWIDTH,
    FaultKind.LOSS: Cause.PACKET_LOSS,
    FaultKind.DELAY: Cause.HIGH_LATENCY,
    FaultKind.OUTAGE: Cause.NODE_FAILURE,
    FaultKind.CHAT_STALL: Cause.CHAT_CHANNEL,
    FaultKind.SELL_OUT: Cause.STOCK_OUT,
    FaultKind.STALE_INVENTORY: Cause.STALE_INVENTORY,
    FaultKind.AUDIENCE_DROP: Cause.NETWORK_FINE,
}


class FaultSpec(_Strict):
    kind: FaultKind
    at_s: float = Field(ge=0)
    duration_s: float | None = Field(default=None, gt=0)  # None: until the show ends
    region: str | None = None  # None for chat_stall/outage means every region
    rate_kbps: float | None = Field(default=None, gt=0)
    loss_pct: float | None = Field(default=None, gt=0, le=100)
    delay_ms: float | None = Field(default=None, gt=0, le=5000)
    sku: str | None = None
    warehouse: str | None = None


class ShowSpec(_Strict):
    id: str = _ID
    title: str = Field(default="", max_length=300)
    duration_s: float = Field(default=180, ge=20, le=6 * 3600)
    seed: int = 1


class Scenario(_Strict):
    show: ShowSpec
    regions: list[RegionSpec] = Field(min_length=1)
    skus: list[SkuSpec] = Field(default_factory=list)
    warehouses: list[WarehouseSpec] = Field(default_factory=list)
    faults: list[FaultSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> Self:
        regions = {r.name for r in self.regions}
        warehouses = {w.id for w in self.warehouses}
        skus = {s.sku for s in self.skus}
        if len(regions) != len(self.regions):
            raise ValueError("regions: names must be unique")
        probe_ids = [p.id for r in self.regions for p in r.probes]
        if len(set(probe_ids)) != len(probe_ids):
            raise ValueError("regions.probes: probe ids must be unique")
        for i, r in enumerate(self.regions):
            for wh_id in r.warehouses:
                if wh_id not in warehouses:
                    raise ValueError(f"regions[{i}].warehouses: unknown warehouse {wh_id!r}")
        for i, wh in enumerate(self.warehouses):
            for sku in wh.stock:
                if sku not in skus:
                    raise ValueError(f"warehouses[{i}].stock: unknown sku {sku!r}")
        for i, f in enumerate(self.faults):
            where = f"faults[{i}]"
            if f.region is not None and f.region not in regions:
                raise ValueError(f"{where}.region: unknown region {f.region!r}")
            if f.at_s >= self.show.duration_s:
                raise ValueError(f"{where}.at_s: after the show ends ({self.show.duration_s} s)")
            needs = {
                FaultKind.BANDWIDTH: ("rate_kbps", "region"),
                FaultKind.LOSS: ("loss_pct", "region"),
                FaultKind.DELAY: ("delay_ms", "region"),
                FaultKind.OUTAGE: (),
                FaultKind.CHAT_STALL: (),
                FaultKind.SELL_OUT: ("sku", "warehouse"),
                FaultKind.STALE_INVENTORY: ("warehouse",),
                FaultKind.AUDIENCE_DROP: ("region",),
            }[f.kind]
            for key in needs:
                if getattr(f, key) is None:
                    raise ValueError(f"{where}.{key}: required for kind {f.kind.value!r}")
            if f.sku is not None and f.sku not in skus:
                raise ValueError(f"{where}.sku: unknown sku {f.sku!r}")
            if f.warehouse is not None and f.warehouse not in warehouses:
                raise ValueError(f"{where}.warehouse: unknown warehouse {f.warehouse!r}")
        return self

    def end_s(self, fault: FaultSpec) -> float:
        if fault.duration_s is None:
            return self.show.duration_s
        return min(self.show.duration_s, fault.at_s + fault.duration_s)

    def to_show(self, start_ts: float) -> Show:
        return Show(
            show_id=self.show.id,
            title=self.show.title,
            start_ts=start_ts,
            planned_end_ts=start_ts + self.show.duration_s,
            regions=[r.name for r in self.regions],
            skus=[
                Sku(sku=s.sku, name=s.name, abc_class=s.abc_class, price=s.price)
                for s in self.skus
            ],
            region_warehouses={r.name: list(r.warehouses) for r in self.regions},
        )

    def fault_regions(self, fault: FaultSpec) -> list[str]:
        """The regions a fault should be localized to."""
        if fault.region is not None:
            return [fault.region]
        if fault.warehouse is not None:
            return [r.name for r in self.regions if r.warehouses[0] == fault.warehouse]
        return [r.name for r in self.regions]


def load_scenario(path: str | Path) -> Scenario:
    return load_model(path, Scenario)
