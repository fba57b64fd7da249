"""The words of the report: what each cause, evidence metric, stock level
and region status is called on the page. One table each, complete over the
model's enums (a test checks), so a new member cannot go unlabelled.
"""

from __future__ import annotations

from qosmon.model import Cause, Metric, StockLevel

# cause -> (short label, what it means)
CAUSE_TEXT: dict[Cause, tuple[str, str]] = {
    Cause.NODE_FAILURE: ("node failure", "an edge or origin node stopped serving media"),
    Cause.BANDWIDTH: ("bandwidth", "the path carries less: bitrate down with queueing RTT up or "
                      "frame rate down, or the sender lowered its bitrate without loss"),
    Cause.PACKET_LOSS: ("packet loss", "loss on the path with latency normal"),
    Cause.HIGH_LATENCY: ("high latency", "RTT high while media kept flowing"),
    Cause.CHAT_CHANNEL: ("chat channel", "the interaction channel failed; media fine"),
    Cause.AUDIO_STALLED: ("audio stalled", "the host cannot be heard: no audio while video "
                          "flows; everywhere at once it is the source, not the network"),
    Cause.STOCK_OUT: ("stock-out", "a SKU on screen sold out where viewers buy"),
    Cause.LOW_STOCK: ("low stock", "a SKU on screen ran low"),
    Cause.STALE_INVENTORY: ("stale inventory", "warehouse data too old or a sync fault"),
    Cause.NETWORK_FINE: ("not the network", "business moved while the stream was fine"),
    Cause.PROBE_LOCAL: ("probe-local", "one probe alone: its own problem"),
    Cause.UNKNOWN: ("unknown", "no rule explained it"),
}

# evidence metric -> (label, unit) of its chart
METRIC_TEXT: dict[Metric, tuple[str, str]] = {
    Metric.RTT_MS: ("RTT", "ms"),
    Metric.LOSS_PCT: ("packet loss", "%"),
    Metric.BITRATE_KBPS: ("bitrate", "kbps"),
    Metric.FPS: ("frame rate", "fps"),
    Metric.NO_FRAME_MS: ("time since last frame", "ms"),
    Metric.RECEIVED_KBPS: ("received with retransmissions", "kbps"),
    Metric.RTX_KBPS: ("retransmissions", "kbps"),
    Metric.STUCK_MS: ("picture stuck", "ms"),
    Metric.AUDIO_STALLED_MS: ("no audio", "ms"),
    Metric.AUDIO_LOSS_PCT: ("audio packet loss", "%"),
    Metric.TTFF_MS: ("time to first frame", "ms"),
    Metric.CHAT_RTT_MS: ("chat delivery time", "ms"),
    Metric.CHAT_LOST_RATIO: ("chat messages lost", "% of sent"),
    Metric.PROBES_WITHOUT_MEDIA: ("probes without media", "probes"),
    Metric.DISCONNECTED_PROBES: ("probes disconnected", "probes"),
    Metric.HEALTHY_PEERS: ("other probes of the region fine", "probes"),
    Metric.HEALTHY_PROBES: ("probes with a fine stream", "probes"),
    Metric.VIEWERS_ONLINE: ("viewers online", "viewers"),
    Metric.VIEWERS_LEAVING: ("viewers leaving", "viewers"),
    Metric.ORDERS: ("orders", "orders"),
    Metric.CHAT_MESSAGES: ("chat messages", "messages"),
    Metric.SKU_ORDERS_30S: ("orders of the SKU", "orders"),
    Metric.CONVERSION: ("conversion", "orders per 1,000 viewer-min"),
    Metric.FAILURE_RATE: ("sessions failing (players)", "% of sessions"),
    Metric.REBUFFER_RATIO: ("watch time stalled (players)", "% of watch time"),
    Metric.ON_HAND: ("units on hand", "units"),
    Metric.DATA_AGE_S: ("age of the stock figures", "s"),
}

LEVEL_TEXT: dict[StockLevel, str] = {
    StockLevel.GREEN: "green",
    StockLevel.YELLOW: "yellow",
    StockLevel.ORANGE: "orange",
    StockLevel.RED: "red",
    StockLevel.STALE: "stale",
    StockLevel.SYNC_FAULT: "sync fault",
    StockLevel.UNKNOWN: "unknown",
}

# A region's state in a second, worst last (see qosmon.report.verdict).
STATUS_ORDER: tuple[str, ...] = ("good", "degraded", "failed", "unknown")


def cause_label(cause: Cause) -> str:
    return CAUSE_TEXT[cause][0]


def scope_text(scope: dict[str, str]) -> str:
    """'ID · jkt-1' for an incident's scope; the whole show when empty."""
    return " · ".join(scope.values()) or "whole show"
