"""Thresholds and timings of diagnosis, one validated model.

Every figure here is documented in ``docs/diagnosis.md`` (thresholds
reference). Load a file with ``qosmon.configfile.load_model(path,
DiagnosisConfig)``; every key is optional and unknown keys are rejected.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MediaThresholds(_Section):
    """Per-probe media SLOs and the relative tests against a probe's own past."""

    loss_pct: float = Field(default=5.0, gt=0, le=100)  # loss above this is a fault
    rtt_ms: float = Field(default=250.0, gt=0)  # RTT at or above this is high latency
    # Queueing: RTT this far above the probe's own baseline counts as "RTT up"
    # for the bandwidth test even below the SLO.
    rtt_rise_ms: float = Field(default=80.0, gt=0)
    no_frame_s: float = Field(default=5.0, gt=0)
    ttff_s: float = Field(default=2.0, gt=0)
    # Bitrate or fps below this fraction of the probe's baseline is "down".
    bitrate_drop_ratio: float = Field(default=0.75, gt=0, lt=1)
    fps_drop_ratio: float = Field(default=0.75, gt=0, lt=1)
    # Without a baseline yet, these absolute floors stand in.
    min_bitrate_kbps: float = Field(default=300.0, ge=0)
    min_fps: float = Field(default=10.0, ge=0)
    # Below both, media has stopped even if the connection still says connected.
    stopped_bitrate_kbps: float = Field(default=50.0, ge=0)
    stopped_fps: float = Field(default=1.0, ge=0)
    # What the link carries (received_kbps, retransmissions included) below
    # this fraction of the probe's baseline is a thin path: with loss within
    # the SLO and retransmissions at most ``rtx_share_max`` of it, the
    # sender adapted to a squeeze (bandwidth), and loss with the received
    # rate holding is a lossy path repaired by retransmission (packet loss).
    received_drop_ratio: float = Field(default=0.7, gt=0, lt=1)
    rtx_share_max: float = Field(default=0.1, ge=0, le=1)
    # A sender with congestion control starts each session low and ramps up
    # (libwebrtc: ~300 kbps, full rate after ~20 s): for this long after a
    # session starts or media stopped, a thin link is not read as a squeeze.
    ramp_s: int = Field(default=30, ge=0, le=300)
    # Audio stalled (no audio packet for 1 s, counted while it lasts) for at
    # least this many ms of the window: the host cannot be heard.
    audio_stalled_ms: float = Field(default=1500.0, gt=0)
    # A probe second is starved (its loss, stalls and RTT are the probe's
    # own, not the path's) when the kernel dropped datagrams at the probe's
    # sockets, or its event loop ran this late: at 25 fps a frame handled
    # 200 ms late already passes the W3C freeze threshold (max(3 x 40 ms,
    # 40 + 150 ms) = 190 ms), so from here a late loop alone makes freezes
    # no viewer saw. Healthy probes stay under 10 ms.
    probe_lag_ms: float = Field(default=200.0, gt=0)
    window_s: int = Field(default=3, ge=1, le=30)  # medians over this many seconds
    rtt_window_s: int = Field(default=5, ge=1, le=60)  # RTT answers are sparse
    baseline_s: int = Field(default=120, ge=10)  # healthy seconds kept per probe
    baseline_min_s: int = Field(default=10, ge=1)


class ChatThresholds(_Section):
    window_s: int = Field(default=5, ge=1, le=60)
    lost_ratio: float = Field(default=0.3, gt=0, le=1)
    min_lost: int = Field(default=2, ge=1)  # at least this many lost in the window
    rtt_ms: float = Field(default=1500.0, gt=0)


class BusinessThresholds(_Section):
    """Baseline-relative tests on the commerce series of each region."""

    viewers_drop_rel: float = Field(default=0.15, gt=0, lt=1)
    viewers_k_sigma: float = Field(default=6.0, gt=0)
    current_s: int = Field(default=5, ge=1)
    gap_s: int = Field(default=5, ge=0)
    reference_s: int = Field(default=40, ge=5)
    rebaseline_s: int = Field(default=180, ge=10)  # a lasting new level becomes normal
    orders_window_s: int = Field(default=15, ge=1)
    orders_reference_s: int = Field(default=120, ge=10)
    # Per-second business history kept for impact figures (viewers and
    # orders lost look back up to 10 minutes before an incident's start),
    # pruned beyond this so a long show's history stays bounded.
    history_s: int = Field(default=3 * 3600, ge=1800)
    orders_p_value: float = Field(default=1e-6, gt=0, lt=1)
    orders_drop_rel: float = Field(default=0.5, gt=0, lt=1)
    orders_min_expected: float = Field(default=8.0, gt=0)
    # Viewers leaving (BusinessSample.leaves) surging: at least this many
    # times the reference rate and improbable as Poisson noise.
    leaves_window_s: int = Field(default=5, ge=1)
    leaves_reference_s: int = Field(default=60, ge=10)
    leaves_ratio: float = Field(default=2.0, gt=1)
    leaves_p_value: float = Field(default=1e-6, gt=0, lt=1)
    min_duration_s: int = Field(default=3, ge=1)
    clear_s: int = Field(default=10, ge=1)
    # Seconds a business move must also hold with every probe of the region
    # healthy before it is called network_fine: a stream fault makes viewers
    # leave at once, its probes show it a second or two later.
    confirm_s: int = Field(default=3, ge=1)
    # A business move within this long after a stream or stock incident in the
    # same place is that incident's impact, not a new incident.
    attribution_grace_s: int = Field(default=300, ge=0)


class StockThresholds(_Section):
    min_duration_s: int = Field(default=1, ge=0)
    clear_s: int = Field(default=5, ge=1)
    low_stock_levels: list[str] = Field(default_factory=lambda: ["red"])


class IncidentTimings(_Section):
    """Hysteresis: how long a condition must hold to open and to close."""

    # Seconds a probe must be bad in a row before it counts as bad, and
    # fine in a row before it counts as fine again.
    probe_min_bad_s: int = Field(default=2, ge=1)
    probe_clear_s: int = Field(default=5, ge=1)
    # Seconds the same group must be seen before an incident opens: lets
    # probes that fail within a second of each other land in one incident.
    confirm_s: int = Field(default=2, ge=0)
    # A probe alone must stay bad this long before it is called its own problem.
    probe_local_min_s: int = Field(default=6, ge=1)
    clear_s: int = Field(default=5, ge=1)
    escalate_after_s: int = Field(default=120, ge=1)
    # Evaluate this many seconds behind wall clock so late samples are in.
    lag_s: float = Field(default=2.0, ge=0, le=30)
    max_catch_up_s: int = Field(default=86_400, ge=1)


class DiagnosisConfig(_Section):
    media: MediaThresholds = Field(default_factory=MediaThresholds)
    chat: ChatThresholds = Field(default_factory=ChatThresholds)
    business: BusinessThresholds = Field(default_factory=BusinessThresholds)
    stock: StockThresholds = Field(default_factory=StockThresholds)
    incident: IncidentTimings = Field(default_factory=IncidentTimings)
