"""A viewer's own network namespace, for comparing viewers under known
impairments: joined to the root namespace (or, with ``peer_ns``, straight
to the origin's own test namespace, e.g. Janus's) by a veth pair (addresses from
10.212.0.0/16, which exists only on these veths; no default route, no
forwarding), with nftables in the namespace counting (and, on demand,
randomly dropping) the UDP packets that reach the viewer, and a tc tbf on
the root end of the veth for a bandwidth squeeze. The namespace's default
route points at the veth (as a viewer host's would) and nftables drops
anything it sends to another address. Nothing outside the namespace and its
veth is touched; :meth:`ViewerNetns.close` removes both.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass

import pytest

from tests.veth_namespace import VethNamespace


def skip_unless_netns_possible() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: creates network namespaces, veths, nftables rules")
    for binary in ("ip", "nft", "tc"):
        if shutil.which(binary) is None:
            pytest.skip(f"needs {binary}")


@dataclass
class ViewerCounters:
    udp_in: int  # UDP packets that reached the veth, before any drop
    dropped: int  # of those dropped that were not of the media SSRC
    media_in: int  # packets of the media SSRC given to set_loss
    media_dropped: int


class ViewerNetns(VethNamespace):
    prefix = "qv"
    ns_letter = "w"
    subnet16 = "10.212"
    index_step = 7
    table = "qv"
    media_counter = "media_in"

    def __enter__(self) -> ViewerNetns:
        super().__enter__()
        return self

    def _setup(self) -> None:
        subnet = self.root_ip.rsplit(".", 1)[0] + ".0/30"
        rules = f"""
table inet qv {{
  chain out {{
    type filter hook output priority 0; policy accept;
    oifname "{self.veth_ns}" ip daddr != {subnet} drop
    oifname "{self.veth_ns}" ip6 daddr != fe80::/10 drop
  }}
  chain in {{
    type filter hook input priority 0; policy accept;
    iifname "{self.veth_ns}" meta l4proto udp counter name "udp_in"
    iifname "{self.veth_ns}" meta l4proto udp jump impair
  }}
  chain impair {{
  }}
  chain media {{
  }}
  counter udp_in {{ }}
  counter dropped {{ }}
  counter media_in {{ }}
  counter media_dropped {{ }}
}}
"""
        self._network(rules)
        # A viewer host has a default route, and a browser without camera
        # permission gathers ICE candidates only on the default route's
        # interface. The output chain above keeps every packet inside the
        # veth's own /30 anyway.
        self.netns("ip", "route", "add", "default", "via", self.root_ip)

    def set_rate(self, kbit: int | None) -> None:
        """Squeeze what the viewer receives (tbf on the root end's egress)."""
        if kbit is None:
            self.peer("tc", "qdisc", "del", "dev", self.veth_root, "root", check=False)
        else:
            self.peer("tc", "qdisc", "replace", "dev", self.veth_root, "root", "tbf",
                "rate", f"{kbit}kbit", "burst", "16kb", "latency", "200ms")

    def rate_dropped(self) -> int:
        """Packets the squeeze (tbf) dropped since it was set."""
        out = json.loads(self.peer("tc", "-s", "-j", "qdisc", "show", "dev",
                                   self.veth_root).stdout)
        return sum(int(q.get("drops", 0)) for q in out if q.get("kind") == "tbf")

    def counters(self) -> ViewerCounters:
        out = json.loads(self.netns("nft", "-j", "list", "counters", "table", "inet", "qv").stdout)
        vals = {c["counter"]["name"]: c["counter"]["packets"]
                for c in out.get("nftables", []) if "counter" in c}
        return ViewerCounters(udp_in=vals["udp_in"], dropped=vals["dropped"],
                              media_in=vals["media_in"], media_dropped=vals["media_dropped"])
