"""What an operator can tune about inventory alerting (``config/inventory.toml``).

Defaults are the cross-border sellers' usual bands and time thresholds and
their safety-stock tiers by ABC class; ``docs/inventory.md`` explains each
choice. Load with
``qosmon.configfile.load_model(path, InventoryConfig)``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

GapLevel = Literal["yellow", "green", "hold"]
RefillTier = Literal["everyday", "planned_show"]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SafetyWeeks(_Config):
    """Weeks of everyday sales to keep as safety stock, per ABC class."""

    A: float = Field(ge=0, le=52)
    B: float = Field(ge=0, le=52)
    C: float = Field(ge=0, le=52)

    def for_class(self, abc_class: str) -> float:
        weeks: float = getattr(self, abc_class, self.B)
        return weeks


class SafetyTiers(_Config):
    # Seed 002: 2-3 weeks everyday, hot items raised to 4-5 weeks before a
    # planned show; the long tail (C) is refilled small and often, so it is
    # not raised.
    everyday: SafetyWeeks = SafetyWeeks(A=3.0, B=2.5, C=2.0)
    planned_show: SafetyWeeks = SafetyWeeks(A=5.0, B=4.0, C=2.0)


class InventoryConfig(_Config):
    # Bands, as multiples of the forecast sales until the show ends. A level applies when
    # stock <= factor x forecast; green needs stock > green_above_x x forecast.
    green_above_x: float = Field(default=3.0, gt=0)
    yellow_at_x: float = Field(default=2.0, gt=0)
    orange_at_x: float = Field(default=1.0, gt=0)
    red_at_x: float = Field(default=0.5, gt=0)
    # Stock between yellow_at_x and green_above_x (2x-3x by default): the
    # seed's table leaves it unassigned. "yellow" = watch (default), "green" =
    # sell normally, "hold" = keep green if it was green, else yellow
    # (hysteresis, so a noisy forecast does not flap between the two).
    gap_level: GapLevel = "yellow"
    # Time-based form: minutes the stock lasts at the current sales velocity.
    # 0 (or None) switches a threshold off; TOML has no null.
    yellow_minutes_left: float | None = Field(default=60.0, ge=0)
    red_minutes_left: float | None = Field(default=30.0, ge=0)

    # Data states. A warehouse is stale when its newest word is older than
    # its age limit (by the warehouse's own clock, source_ts, against now), or
    # when its newest record took longer than max_sync_lag_s to reach us.
    # A feed that heartbeats (sends an empty change set while nothing
    # changes) says "still current" every few seconds, so silence beyond
    # heartbeat_stale_after_s means its sync stopped. A feed that never
    # heartbeats is silent between full snapshots, so its limit
    # (stale_after_s) must exceed the snapshot period. A warehouse counts as
    # heartbeating from its first heartbeat on.
    stale_after_s: float = Field(default=60.0, gt=0)
    heartbeat_stale_after_s: float = Field(default=10.0, gt=0)
    # Per-warehouse age limits that override both of the above.
    warehouse_stale_after_s: dict[str, float] = Field(default_factory=dict)
    max_sync_lag_s: float | None = Field(default=10.0, ge=0)  # 0 = off
    # A figure that drops from at least sync_fault_min_drop units to 0 in one
    # record is a sync fault unless the orders received since the previous
    # figure cover at least sync_fault_explained_share of the drop.
    sync_fault_min_drop: int = Field(default=5, ge=1)
    sync_fault_explained_share: float = Field(default=0.5, gt=0, le=1)

    # Forecast of sales until the show ends.
    velocity_window_s: float = Field(default=300.0, gt=0)
    # Early in a show the window is short; dividing by at least this span
    # stops the first order from looking like a rush.
    min_velocity_span_s: float = Field(default=60.0, gt=0)
    # Weight of the traffic-based forecast (viewers now x conversion x time
    # left) against the velocity-based one (velocity x time left).
    traffic_weight: float = Field(default=0.5, ge=0, le=1)
    # Orders per viewer-minute to assume before the show has any per-SKU
    # orders (from past shows' conversion). None: no forecast until orders arrive.
    conversion_prior_per_viewer_min: float | None = Field(default=None, ge=0)
    # Show length to assume when the show has no planned end.
    assumed_show_min: float = Field(default=120.0, gt=0)
    # While a show is live the horizon never drops below this, so an overrun
    # past the planned end still has demand.
    min_horizon_min: float = Field(default=5.0, ge=0)
    # Sales data older than this: demand is unknown rather than zero.
    business_stale_after_s: float = Field(default=120.0, gt=0)

    # Refill quantity: forecast until the show ends + safety stock - on hand.
    refill_tier: RefillTier = "everyday"
    safety_weeks: SafetyTiers = SafetyTiers()
    # Everyday sales per SKU (units/day) from the ERP. Without it there is no
    # safety stock to add, unless selling_min_per_day is set: then the show's
    # velocity x that many minutes stands in (a live show's rate is far above
    # everyday sales, so the stand-in is off by default).
    daily_units: dict[str, float] = Field(default_factory=dict)
    selling_min_per_day: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> InventoryConfig:
        if not (self.red_at_x <= self.orange_at_x <= self.yellow_at_x <= self.green_above_x):
            raise ValueError(
                "bands must satisfy red_at_x <= orange_at_x <= yellow_at_x <= green_above_x"
            )
        if self.yellow_minutes_left and self.red_minutes_left and (
            self.red_minutes_left > self.yellow_minutes_left
        ):
            raise ValueError("red_minutes_left must not exceed yellow_minutes_left")
        if any(v <= 0 for v in self.warehouse_stale_after_s.values()):
            raise ValueError("warehouse_stale_after_s must be positive")
        if any(v < 0 for v in self.daily_units.values()):
            raise ValueError("daily_units must not be negative")
        return self
