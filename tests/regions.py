"""The regions of the generated shows tests and benchmarks use: one table
for every generator, so a region is called the same (and served by the
same edge node and warehouse) in each."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    name: str
    edge_node: str
    isps: tuple[str, ...]
    warehouse: str
    base_rtt_ms: float  # probe to edge on a clean path


REGIONS: tuple[Region, ...] = (
    Region("SG", "sin-1", ("singtel", "starhub"), "wh-sg", 40.0),
    Region("ID", "jkt-1", ("telkomsel", "indosat"), "wh-id", 95.0),
    Region("US", "sfo-1", ("att", "comcast"), "wh-usw", 150.0),
    Region("DE", "fra-1", ("dtag", "vodafone"), "wh-nl", 170.0),
    Region("TH", "bkk-1", ("ais", "true"), "wh-th", 80.0),
    Region("US-East", "iad-1", ("verizon", "comcast"), "wh-use", 120.0),
)
