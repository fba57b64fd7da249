"""A viewer's own network namespace, for comparing viewers under known
impairments: joined to the root namespace by a veth pair (addresses from
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
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest


def skip_unless_netns_possible() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: creates network namespaces, veths, nftables rules")
    for binary in ("ip", "nft", "tc"):
        if shutil.which(binary) is None:
            pytest.skip(f"needs {binary}")


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=30)


@dataclass
class ViewerCounters:
    udp_in: int  # UDP packets that reached the veth, before any drop
    dropped: int  # of those dropped that were not of the media SSRC
    media_in: int  # packets of the media SSRC given to set_loss
    media_dropped: int


class ViewerNetns:
    def __init__(self, index: int) -> None:
        tag = f"{os.getpid() % 10000}{index}"
        self.ns = f"qvw{tag}"
        self.veth_root = f"qvr{tag}"
        self.veth_ns = f"qvn{tag}"
        third = (os.getpid() + 7 * index) % 250 + 1
        self.root_ip = f"10.212.{third}.1"
        self.ns_ip = f"10.212.{third}.2"
        self.dir = Path(tempfile.mkdtemp(prefix="qosmon-viewer-"))
        self._made_ns = False
        self._made_veth = False

    def __enter__(self) -> ViewerNetns:
        try:
            self._network()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def netns(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("ip", "netns", "exec", self.ns, *cmd, check=check)

    def _network(self) -> None:
        run("ip", "netns", "add", self.ns)
        self._made_ns = True
        run("ip", "link", "add", self.veth_root, "type", "veth", "peer", "name", self.veth_ns)
        self._made_veth = True
        run("ip", "link", "set", self.veth_ns, "netns", self.ns)
        run("ip", "addr", "add", f"{self.root_ip}/30", "dev", self.veth_root)
        run("ip", "link", "set", self.veth_root, "up")
        self.netns("ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.veth_ns)
        self.netns("ip", "link", "set", self.veth_ns, "up")
        self.netns("ip", "link", "set", "lo", "up")
        # A viewer host has a default route, and a browser without camera
        # permission gathers ICE candidates only on the default route's
        # interface. The output chain below keeps every packet inside the
        # veth's own /30 anyway.
        self.netns("ip", "route", "add", "default", "via", self.root_ip)
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
        path = self.dir / "rules.nft"
        path.write_text(rules)
        self.netns("nft", "-f", str(path))

    def set_loss(self, percent: int, media_ssrc: int | None = None) -> None:
        """Drop ``percent`` % of the UDP packets reaching the viewer; with
        ``media_ssrc`` that RTP stream's packets are counted apart (SRTP
        leaves the RTP header, and so the SSRC, in the clear)."""
        for chain in ("impair", "media"):
            self.netns("nft", "flush", "chain", "inet", "qv", chain)
        if media_ssrc is not None:
            self.netns("nft", "add", "rule", "inet", "qv", "impair",
                       "@th,128,32", f"0x{media_ssrc:08x}", "jump", "media")
            self.netns("nft", "add", "rule", "inet", "qv", "media", "counter", "name", "media_in")
            if percent > 0:
                self.netns("nft", "add", "rule", "inet", "qv", "media",
                           "numgen", "random", "mod", "100", "<", str(percent),
                           "counter", "name", "media_dropped", "drop")
            self.netns("nft", "add", "rule", "inet", "qv", "media", "accept")
        if percent > 0:
            self.netns("nft", "add", "rule", "inet", "qv", "impair",
                       "numgen", "random", "mod", "100", "<", str(percent),
                       "counter", "name", "dropped", "drop")

    def set_rate(self, kbit: int | None) -> None:
        """Squeeze what the viewer receives (tbf on the root end's egress)."""
        if kbit is None:
            run("tc", "qdisc", "del", "dev", self.veth_root, "root", check=False)
        else:
            run("tc", "qdisc", "replace", "dev", self.veth_root, "root", "tbf",
                "rate", f"{kbit}kbit", "burst", "16kb", "latency", "200ms")

    def rate_dropped(self) -> int:
        """Packets the squeeze (tbf) dropped since it was set."""
        out = json.loads(run("tc", "-s", "-j", "qdisc", "show", "dev", self.veth_root).stdout)
        return sum(int(q.get("drops", 0)) for q in out if q.get("kind") == "tbf")

    def counters(self) -> ViewerCounters:
        out = json.loads(self.netns("nft", "-j", "list", "counters", "table", "inet", "qv").stdout)
        vals = {c["counter"]["name"]: c["counter"]["packets"]
                for c in out.get("nftables", []) if "counter" in c}
        return ViewerCounters(udp_in=vals["udp_in"], dropped=vals["dropped"],
                              media_in=vals["media_in"], media_dropped=vals["media_dropped"])

    def reset_counters(self) -> None:
        self.netns("nft", "reset", "counters", "table", "inet", "qv")

    def close(self) -> None:
        if self._made_veth:
            run("ip", "link", "del", self.veth_root, check=False)
        if self._made_ns:
            run("ip", "netns", "del", self.ns, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
