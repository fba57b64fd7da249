"""The data model every part of qosmon speaks: probe -> collector -> store ->
detection -> diagnosis -> alerts / report.

This module imports no other part of qosmon; every other part imports it.
Units are in the field names (``_ms``, ``_kbps``, ``_pct``, ``_s``). Times are
Unix seconds as floats (UTC). A value that was not measured is ``None``
(unknown), never a number that looks fine.

The classes are pydantic models so that the collector's validation, the probe's
JSON lines and the store all use one definition; unknown fields are rejected so
a typo in a producer is an error, not silently dropped data.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Identifiers and labels (region, ISP, edge node, probe, show, stream, SKU,
# warehouse): short, and only characters that show as themselves. They end
# up as tags in line protocol, as labels in Alertmanager and as text in
# alerts and reports, where a bidi override (U+202E), a zero-width space or
# another invisible character would let one label pass for another. Refused:
# Unicode categories C (controls, format characters such as bidi controls
# and zero-width joiners, surrogates, private use, unassigned) and Z
# (separators) except the plain space. Letters of any script are fine.
LABEL_PATTERN = r"^(?:[^\p{C}\p{Z}]| )+$"
LABEL_MAX_CHARS = 128
Label = Annotated[str, Field(min_length=1, max_length=LABEL_MAX_CHARS, pattern=LABEL_PATTERN)]
# The same, where empty means "not given".
OptLabel = Annotated[str, Field(max_length=LABEL_MAX_CHARS, pattern=r"^(?:[^\p{C}\p{Z}]| )*$")]
# Older spellings (``x: Label``, ``x: OptLabel = ""``) still
# work: the checks are in ``Label`` itself, these only say required / "".
_LABEL = Field()
_OPT_LABEL = Field(default="")


class _Model(BaseModel):
    # NaN and infinity are never a measurement; refusing them here keeps them
    # out of every store, detector and chart.
    model_config = ConfigDict(extra="forbid", validate_assignment=False, allow_inf_nan=False)


class ConnectionState(StrEnum):
    """The viewer's connection, as ICE/DTLS/RTCPeerConnection report it."""

    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    FAILED = "failed"
    CLOSED = "closed"
    JOIN_FAILED = "join_failed"  # signalling failed: no session at all


class ProbeLabels(_Model):
    """Who a probe is and where it watches from."""

    probe_id: Label
    region: Label
    isp: OptLabel = ""
    edge_node: OptLabel = ""


class ProbeSample(_Model):
    """What one probe saw of one stream during one second.

    ``ts`` is the probe's clock at the end of the second. Counters (``_count``,
    ``packets_*``, ``chat_*``) are for that second only, so samples add up.
    """

    ts: float = Field(gt=0)
    show_id: Label
    stream_id: Label
    probe_id: Label
    region: Label
    isp: OptLabel = ""
    edge_node: OptLabel = ""
    state: ConnectionState
    # Time from starting to join until the first complete video frame; set on
    # every sample of a session once known.
    ttff_ms: float | None = Field(default=None, ge=0)
    rtt_ms: float | None = Field(default=None, ge=0)
    packets_expected: int = Field(default=0, ge=0)
    packets_received: int = Field(default=0, ge=0)
    # Loss on the path (before retransmission) and what was still missing
    # after retransmission, in % of packets expected in this second.
    loss_pct: float | None = Field(default=None, ge=0, le=100)
    residual_loss_pct: float | None = Field(default=None, ge=0, le=100)
    jitter_ms: float | None = Field(default=None, ge=0)
    bitrate_kbps: float | None = Field(default=None, ge=0)
    fps: float | None = Field(default=None, ge=0)
    width: int | None = Field(default=None, ge=0)
    height: int | None = Field(default=None, ge=0)
    # W3C webrtc-stats freezes/pauses that ended in this second, and their
    # total duration; ``no_frame_ms`` is the time since the last frame at
    # ``ts``, so a freeze still in progress is visible while it lasts.
    freeze_count: int = Field(default=0, ge=0)
    freeze_ms: float = Field(default=0.0, ge=0)
    pause_count: int = Field(default=0, ge=0)
    pause_ms: float = Field(default=0.0, ge=0)
    no_frame_ms: float | None = Field(default=None, ge=0)
    # Interaction (chat) channel: messages sent this second, messages that
    # were not seen back within the deadline, and the mean delivery time.
    chat_sent: int = Field(default=0, ge=0)
    chat_lost: int = Field(default=0, ge=0)
    chat_rtt_ms: float | None = Field(default=None, ge=0)
    error: str | None = Field(default=None, max_length=500)
    # Set by the collector on receipt (not by the probe).
    received_ts: float | None = None
    # Video as the browser counts it: every RTP payload byte received,
    # retransmissions (RTX) included (W3C bytesReceived), the retransmitted
    # part on its own, and the bytes of frames a decoder could show.
    received_kbps: float | None = Field(default=None, ge=0)
    rtx_kbps: float | None = Field(default=None, ge=0)
    goodput_kbps: float | None = Field(default=None, ge=0)
    # Picture stuck: time in stalls (gaps beyond the freeze threshold, and
    # pauses) counted while they last. When a stall begins, its part before
    # the threshold is counted at once, so a second can hold up to about
    # 1.2 s; the sum over a show is the browser's freeze + pause time.
    stuck_ms: float = Field(default=0.0, ge=0)
    # Why rtt_ms is unknown when its measuring stopped (None: not stopped).
    rtt_error: str | None = Field(default=None, max_length=300)
    video_codec: str | None = Field(default=None, max_length=32)
    # Audio (Opus), all None when the stream carries none: path loss in % of
    # packets expected, interarrival jitter, payload bitrate; time the
    # receiver had to conceal (lost packets, arrivals later than a jitter
    # buffer absorbs), silence the sender chose (DTX, not concealment);
    # "stalled": no audio packet for 1 s, its time counted while it lasts.
    audio_loss_pct: float | None = Field(default=None, ge=0, le=100)
    audio_jitter_ms: float | None = Field(default=None, ge=0)
    audio_kbps: float | None = Field(default=None, ge=0)
    audio_concealed_ms: float | None = Field(default=None, ge=0)
    audio_dtx_ms: float | None = Field(default=None, ge=0)
    audio_stalled_ms: float | None = Field(default=None, ge=0)
    audio_stalled: bool | None = None
    # Video arriving later (+) or earlier (-) than the audio captured with
    # it, from both streams' RTCP sender reports, in ms.
    av_skew_ms: float | None = None
    # The probe's own health in this second (None: not measured, e.g. an
    # older probe or no /proc): the worst lateness of its event loop, and the
    # datagrams the kernel dropped at this stream's sockets because the
    # probe did not read them in time. Either means the second's loss and
    # stalls may be the probe's own starvation, not the path's.
    probe_lag_ms: float | None = Field(default=None, ge=0)
    socket_drops: int | None = Field(default=None, ge=0)


class ProbeBatch(_Model):
    """What a probe posts to the collector. A retried batch keeps its id."""

    batch_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    probe_id: Label
    sent_ts: float = Field(gt=0)
    samples: list[ProbeSample] = Field(max_length=10_000)
    dropped_samples: int = Field(default=0, ge=0)  # spool overflow, counted


class Heartbeat(_Model):
    probe: ProbeLabels
    ts: float = Field(gt=0)
    version: str = Field(default="", max_length=64)
    streams: list[Label] = Field(default_factory=list)
    # Empty while the probe's spool works; else what fails (e.g. the disk
    # is full and batches are held in memory), so "up" does not hide it.
    spool_error: str = Field(default="", max_length=300)


class BusinessSample(_Model):
    """The commerce platform's view of one second (or one interval) of a show.

    ``region`` empty means the whole show. Counters are for the interval
    ending at ``ts``; ``viewers_online`` is a level.
    """

    ts: float = Field(gt=0)
    show_id: Label
    region: OptLabel = ""
    viewers_online: int | None = Field(default=None, ge=0)
    joins: int | None = Field(default=None, ge=0)
    leaves: int | None = Field(default=None, ge=0)
    orders: int | None = Field(default=None, ge=0)
    chat_messages: int | None = Field(default=None, ge=0)
    sku: OptLabel = ""  # orders broken down per SKU when known


class StockRecord(_Model):
    """Stock on hand of one SKU in one warehouse.

    ``source_ts`` is the warehouse system's own timestamp for the figure (so
    stale data can be seen); ``ts`` is when qosmon received it.
    """

    ts: float = Field(gt=0)
    source_ts: float = Field(gt=0)
    warehouse: Label
    sku: Label
    on_hand: int = Field(ge=0)
    full_snapshot: bool = False


class Sku(_Model):
    sku: Label
    name: str = Field(default="", max_length=300)
    abc_class: str = Field(default="B", pattern=r"^[ABC]$")
    price: float | None = Field(default=None, ge=0)


class OnScreen(_Model):
    """A SKU goes on or off screen in a show at ``ts``."""

    ts: float = Field(gt=0)
    show_id: Label
    sku: Label
    on: bool


class Show(_Model):
    show_id: Label
    title: str = Field(default="", max_length=300)
    start_ts: float = Field(gt=0)
    end_ts: float | None = None  # set when the show ends
    planned_end_ts: float | None = None
    regions: list[Label] = Field(default_factory=list)
    skus: list[Sku] = Field(default_factory=list)
    # region -> warehouses serving it, in order of preference
    region_warehouses: dict[Label, list[Label]] = Field(default_factory=dict)
    # The stream endpoints probes watch, defined once here: running probes
    # pick them up from the collector (see ShowStream) until the show ends.
    streams: list[ShowStream] = Field(default_factory=list, max_length=200)

    @field_validator("streams")
    @classmethod
    def _one_stream_per_id(cls, streams: list[ShowStream]) -> list[ShowStream]:
        seen: set[str] = set()
        for s in streams:
            if s.stream_id in seen:
                raise ValueError(f"stream_id {s.stream_id!r} listed twice")
            seen.add(s.stream_id)
        return streams


class Cause(StrEnum):
    """What diagnosis names as the reason for an incident."""

    NODE_FAILURE = "node_failure"  # edge or origin node stopped serving media
    # Bitrate down with queueing RTT up or fps down, or what the link carries
    # (retransmissions included) down with little loss: the sender lowered
    # its rate to fit the path.
    BANDWIDTH = "bandwidth"
    PACKET_LOSS = "packet_loss"  # loss on the path, latency normal
    HIGH_LATENCY = "high_latency"  # RTT high, media otherwise flowing
    CHAT_CHANNEL = "chat_channel"  # interaction channel degraded, media fine
    # The host cannot be heard: no audio packet for seconds while video
    # flows and the path is clean. Everywhere at once it is the source
    # (microphone, encoder, origin); in one place, that edge node or path.
    # Audio stalling on a lossy path is that path's packet loss.
    AUDIO_STALLED = "audio_stalled"
    STOCK_OUT = "stock_out"  # a SKU on screen sold out where viewers buy
    LOW_STOCK = "low_stock"
    STALE_INVENTORY = "stale_inventory"  # warehouse data too old / sync fault
    NETWORK_FINE = "network_fine"  # business moved, stream fine: content/audience
    PROBE_LOCAL = "probe_local"  # one probe alone: its own problem
    UNKNOWN = "unknown"


# Causes that concern the media path / on-call, as opposed to merchandising.
STREAM_CAUSES = frozenset(
    {Cause.NODE_FAILURE, Cause.BANDWIDTH, Cause.PACKET_LOSS, Cause.HIGH_LATENCY, Cause.CHAT_CHANNEL,
     Cause.AUDIO_STALLED}
)
STOCK_CAUSES = frozenset({Cause.STOCK_OUT, Cause.LOW_STOCK, Cause.STALE_INVENTORY})


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Metric(StrEnum):
    """The signals diagnosis cites as evidence, by one name everywhere: the
    evidence itself, the report's charts of it and the collector's series.

    Names of probe signals are the :class:`ProbeSample` field they come
    from; the others say what they count.
    """

    # Probe signals, per second (ProbeSample fields).
    RTT_MS = "rtt_ms"
    LOSS_PCT = "loss_pct"
    BITRATE_KBPS = "bitrate_kbps"
    FPS = "fps"
    NO_FRAME_MS = "no_frame_ms"
    TTFF_MS = "ttff_ms"
    CHAT_RTT_MS = "chat_rtt_ms"
    # Video received with retransmissions, and the retransmitted part.
    RECEIVED_KBPS = "received_kbps"
    RTX_KBPS = "rtx_kbps"
    # Picture stuck, counted while a stall lasts (ms per second).
    STUCK_MS = "stuck_ms"
    # Audio: time with no audio packet (ms per second), path loss.
    AUDIO_STALLED_MS = "audio_stalled_ms"
    AUDIO_LOSS_PCT = "audio_loss_pct"
    # Share of chat messages not seen back within the deadline, 0-1.
    CHAT_LOST_RATIO = "chat_lost_ratio"
    # Counts of probes in the incident's scope.
    PROBES_WITHOUT_MEDIA = "probes_without_media"
    DISCONNECTED_PROBES = "disconnected_probes"
    HEALTHY_PEERS = "healthy_peers"  # other probes of the region that were fine
    HEALTHY_PROBES = "healthy_probes"  # probes whose stream stayed fine
    # The commerce platform's figures (BusinessSample fields and derived).
    VIEWERS_ONLINE = "viewers_online"
    VIEWERS_LEAVING = "viewers_leaving"
    ORDERS = "orders"
    CHAT_MESSAGES = "chat_messages"
    SKU_ORDERS_30S = "sku_orders_30s"  # orders of the incident's SKUs in 30 s
    # Orders per 1,000 viewer-minutes where conversion moved (region x SKU).
    CONVERSION = "conversion"
    # The platform's players (ViewerAggregate), where the ratio rose: share
    # of sessions that failed and of watch time stalled, in %.
    FAILURE_RATE = "failure_rate"
    REBUFFER_RATIO = "rebuffer_ratio"
    # Stock (StockState fields).
    ON_HAND = "on_hand"
    DATA_AGE_S = "data_age_s"


class Evidence(_Model):
    """One signal that decided a diagnosis, as a person would check it."""

    metric: Metric
    observed: float | None = None
    baseline: float | None = None
    threshold: float | None = None
    unit: str = ""
    text: str  # one line: "bitrate 210 kbps vs 820 kbps before (-74%)"


class Incident(_Model):
    incident_id: str
    show_id: Label
    start_ts: float
    end_ts: float | None = None  # None while it lasts
    detected_ts: float | None = None  # when the engine first reported it
    severity: Severity
    cause: Cause
    # The narrowest dimension combination that explains it, e.g.
    # {"region": "ID", "edge_node": "jkt-1"}; {} means the whole show.
    scope: dict[str, str] = Field(default_factory=dict)
    probes: list[Label] = Field(default_factory=list)
    skus: list[Label] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    summary: str = ""
    viewers_lost: float | None = None
    orders_lost: float | None = None


class LevelKind(StrEnum):
    """What a :class:`StockLevel` says: how much stock there is against
    demand, or that the figure itself cannot be trusted (or is missing)."""

    STOCK = "stock"
    DATA_FAULT = "data_fault"
    NO_DATA = "no_data"


class StockLevel(StrEnum):
    """The alert state of one SKU in one warehouse.

    Members are declared in display order (legends, tables): the stock
    levels from best to worst, then the data states. ``severity`` orders
    them worst-first where several warehouses disagree; ``urgent`` levels
    ask a person to act now (the others are watched on the live screen).
    """

    GREEN = "green"
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"
    # Data states, not stock levels: the figure itself cannot be trusted.
    STALE = "stale"
    SYNC_FAULT = "sync_fault"
    UNKNOWN = "unknown"

    @property
    def kind(self) -> LevelKind:
        return _LEVEL_TRAITS[self][0]

    @property
    def severity(self) -> int:
        """Higher is worse. A data fault ranks above yellow and below
        orange: it hides the level, and the fix (check the sync) is not
        as pressing as stock that is running out."""
        return _LEVEL_TRAITS[self][1]

    @property
    def urgent(self) -> bool:
        return _LEVEL_TRAITS[self][2]

    @property
    def rank(self) -> int:
        """Position in display order (0 = green)."""
        return _LEVEL_ORDER.index(self)


# level -> (kind, severity, urgent)
_LEVEL_TRAITS: dict[StockLevel, tuple[LevelKind, int, bool]] = {
    StockLevel.GREEN: (LevelKind.STOCK, 0, False),
    StockLevel.YELLOW: (LevelKind.STOCK, 2, False),
    StockLevel.ORANGE: (LevelKind.STOCK, 4, True),
    StockLevel.RED: (LevelKind.STOCK, 5, True),
    StockLevel.STALE: (LevelKind.DATA_FAULT, 3, True),
    StockLevel.SYNC_FAULT: (LevelKind.DATA_FAULT, 3, True),
    StockLevel.UNKNOWN: (LevelKind.NO_DATA, 1, False),
}
_LEVEL_ORDER: tuple[StockLevel, ...] = tuple(StockLevel)
# The stock levels proper, best first.
STOCK_LEVELS: tuple[StockLevel, ...] = tuple(
    lv for lv in StockLevel if lv.kind is LevelKind.STOCK
)


def worse_level(a: StockLevel, b: StockLevel) -> StockLevel:
    """The more severe of two levels (the first when equally severe)."""
    return a if a.severity >= b.severity else b


class StockState(_Model):
    """The alert state of one SKU in one warehouse at ``ts``."""

    ts: float
    show_id: Label
    sku: Label
    warehouse: Label
    level: StockLevel
    on_hand: int | None = None
    velocity_per_min: float | None = None
    forecast_units: float | None = None  # expected sales until the show ends
    minutes_left: float | None = None  # at current velocity
    data_age_s: float | None = None
    on_screen: bool = False
    action: str = ""
    refill_units: int | None = None


def scope_region(scope: dict[str, str]) -> str:
    return scope.get("region", "")


def scope_node(scope: dict[str, str]) -> str:
    return scope.get("edge_node") or scope.get("node", "")


def alert_key(show_id: str, region: str, node: str, cause: Cause) -> str:
    """The de-duplication key of the alert about a place and cause.

    Readable in Alertmanager / PagerDuty and stable across re-detections (an
    incident's id may change when it flaps; its scope and cause do not)."""
    return f"qosmon:{show_id}:{region or '*'}:{node or '*'}:{cause.value}"


def incident_alert_key(incident: Incident) -> str:
    """The key of the alert an incident raises (or joins)."""
    return alert_key(incident.show_id, scope_region(incident.scope), scope_node(incident.scope),
                     incident.cause)


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Alert(_Model):
    """One notification about one incident (firing or resolved)."""

    key: str  # stable de-duplication key
    status: AlertStatus
    show_id: Label
    region: str = ""
    node: str = ""
    cause: Cause
    severity: Severity
    route: str = "oncall"  # "oncall" or "merchandising"
    starts_at: float
    ends_at: float | None = None
    summary: str
    evidence: str = ""
    url: str = ""
    incident_id: str = ""


class AlertDelivery(_Model):
    """The delivery log: one attempt to send an alert to one notifier."""

    ts: float
    show_id: str = ""
    alert_key: str
    incident_id: str = ""  # the incident the alert was raised for (its first)
    status: AlertStatus
    notifier: str
    ok: bool
    attempt: int
    error: str = ""
    # The notification's stable id (the receiver's de-duplication key).
    delivery_id: str = ""
    # Sent only after the route's retry budget ran out, or by a collector
    # process other than the one that queued it (after a restart).
    late: bool = False


class FoundAs(_Model):
    """An incident that named an injected fault rightly."""

    incident_id: str
    cause: Cause


class InjectedFault(_Model):
    """A fault the demo injected, and how its scoring judged diagnosis.

    Written by the scoring, shown as is by the report: the report never
    works out again which incident found which fault. Where the fault was
    is given by what applies to its kind: the regions it should be
    localized to, and the probe, SKU or warehouse it concerned.
    """

    index: int = Field(ge=0)
    kind: Label
    regions: list[Label] = Field(default_factory=list)
    probe: OptLabel = ""
    sku: OptLabel = ""
    warehouse: OptLabel = ""
    start_ts: float
    end_ts: float
    expected_cause: Cause
    found: list[FoundAs] = Field(default_factory=list)
    detect_s: float | None = Field(default=None, ge=0)  # onset to first detection

    @property
    def ok(self) -> bool:
        return bool(self.found)

    @property
    def where(self) -> str:
        """One line: "ID, TH · SKU SKU-2 · warehouse ID-JKT"."""
        parts = [", ".join(self.regions)] if self.regions else []
        parts += [f"{name} {value}" for name, value in
                  (("probe", self.probe), ("SKU", self.sku), ("warehouse", self.warehouse))
                  if value]
        return " · ".join(parts) or "whole show"


class RegionSummary(_Model):
    """One region of one finished show, as history compares it across shows."""

    region: Label
    score: float | None = Field(default=None, ge=0, le=100)  # viewer experience 0-100
    # The score's parts (availability, smoothness, network, startup, chat), 0..1.
    parts: dict[str, float | None] = Field(default_factory=dict)
    probe_seconds: int = Field(default=0, ge=0)
    good_s: int = Field(default=0, ge=0)
    degraded_s: int = Field(default=0, ge=0)
    failed_s: int = Field(default=0, ge=0)
    incident_minutes: float = Field(default=0.0, ge=0)
    viewers_lost: float = 0.0
    orders_lost: float = 0.0
    peak_viewers: int | None = Field(default=None, ge=0)
    orders: int | None = Field(default=None, ge=0)


class IncidentSummary(_Model):
    """An incident as history needs it, kept after raw samples are aged out."""

    incident_id: str
    start_ts: float
    end_ts: float
    cause: Cause
    severity: Severity
    scope: dict[str, str] = Field(default_factory=dict)
    viewers_lost: float | None = None
    orders_lost: float | None = None
    summary: str = ""


class StockEvent(_Model):
    """A SKU x warehouse that sold out, went red or went stale during a show."""

    sku: Label
    warehouse: Label
    kind: str = Field(pattern=r"^(sold_out|red|stale|sync_fault)$")
    first_ts: float
    refill_units: int | None = None
    action: str = ""


class ShowSummary(_Model):
    """Per-show aggregates written when a show ends: what history reads, so
    history neither reads raw samples nor loses shows whose samples were
    downsampled or deleted by retention."""

    show_id: Label
    title: str = Field(default="", max_length=300)
    start_ts: float = Field(gt=0)
    end_ts: float = Field(gt=0)
    made_ts: float = Field(gt=0)
    score_version: int = 1
    regions: list[RegionSummary] = Field(default_factory=list)
    incidents: list[IncidentSummary] = Field(default_factory=list)
    stock: list[StockEvent] = Field(default_factory=list)


class ViewerAggregate(_Model):
    """What the platform's own players reported for one slice of the audience
    over the interval ending at ``ts``: sessions started and how many failed
    to play, seconds watched and seconds stalled. Slices are any combination
    of region, ISP, CDN, device and app version (empty: not broken down), so
    big audiences are diagnosed from their own numbers."""

    ts: float = Field(gt=0)
    show_id: Label
    interval_s: float = Field(default=60.0, gt=0, le=3600)
    region: OptLabel = ""
    isp: OptLabel = ""
    cdn: OptLabel = ""
    device: OptLabel = ""
    app_version: OptLabel = ""
    sessions: int = Field(ge=0)
    failures: int = Field(default=0, ge=0)
    watched_s: float = Field(default=0.0, ge=0)
    stalled_s: float = Field(default=0.0, ge=0)


# --- central assignment: which probe watches which stream ---------------------

JoinKind = Literal["whep", "janus", "demo"]
VideoCodecName = Literal["vp8", "h264"]
_BOTH_CODECS: tuple[VideoCodecName, ...] = ("vp8", "h264")


class ShowStream(_Model):
    """One stream endpoint of a show and the probes that should watch it.

    A probe is assigned the stream when its labels match every non-empty
    selector: ``regions`` (empty: the show's ``regions``; both empty: every
    region), ``isps`` and ``edge_nodes``. ``credential`` names a secret the
    probe holds in its own config (``[credentials.NAME]``): the collector
    never hands out secrets, and cannot make a probe read arbitrary ones.
    """

    stream_id: Label = _LABEL
    join: JoinKind
    url: str = Field(min_length=1, max_length=2048, pattern=r"^https?://[^\x00-\x20\x7f]+$")
    mountpoint: int | None = Field(default=None, ge=0, le=2**53)
    textroom_room: int | None = Field(default=None, ge=0, le=2**53)
    regions: list[Label] = Field(default_factory=list, max_length=500)
    isps: list[Label] = Field(default_factory=list, max_length=500)
    edge_nodes: list[Label] = Field(default_factory=list, max_length=500)
    credential: Label | None = Field(default=None, min_length=1, max_length=128,
                                     pattern=r"^[A-Za-z0-9_.-]+$")
    video_codecs: list[VideoCodecName] = Field(default_factory=lambda: list(_BOTH_CODECS),
                                               min_length=1, max_length=2)
    audio: bool = True
    chat: bool = True

    @model_validator(mode="after")
    def _janus_needs_mountpoint(self) -> ShowStream:
        if self.join == "janus" and self.mountpoint is None:
            raise ValueError("join = 'janus' needs mountpoint")
        return self


class ProbeCapabilities(_Model):
    """What a probe can watch: how it joins, which codecs it accounts for,
    the credentials it holds (names only) and how many streams it takes."""

    joins: list[JoinKind] = Field(min_length=1, max_length=3)
    video_codecs: list[VideoCodecName] = Field(min_length=1, max_length=2)
    audio: bool = True
    credentials: list[Label] = Field(default_factory=list, max_length=100)
    max_streams: int = Field(default=50, ge=0, le=10_000)


class ProbeRegistration(_Model):
    """A probe introducing itself and asking for its work (sent every poll)."""

    probe: ProbeLabels
    ts: float = Field(gt=0)
    version: str = Field(default="", max_length=64)
    capabilities: ProbeCapabilities


class AssignedStream(_Model):
    show_id: Label = _LABEL
    stream: ShowStream


class ProbeAssignment(_Model):
    """The streams one probe should watch now; anything else it was given
    before is to be dropped (its show ended or no longer lists it)."""

    ts: float
    streams: list[AssignedStream] = Field(default_factory=list)
    # Streams matching the probe beyond its max_streams (not assigned).
    over_capacity: int = 0


Show.model_rebuild()
