"""A network namespace joined to the root namespace by a veth pair, with an
nftables table inside it that can randomly drop UDP packets and count them.

The end-to-end tests put Janus (tests/janus_harness.py) or a viewer
(tests/viewer_netns.py) in such a namespace; each subclass names its own
addresses, nftables table and rules. Nothing outside the namespace and its
veth is touched; :meth:`VethNamespace.close` removes both, also after a
failed set-up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import ClassVar


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=30)


class VethNamespace:
    """Subclasses set the name prefixes, the /16 the addresses come from,
    the nftables table (which must have the chains ``impair`` and ``media``
    and the counters ``dropped``, ``media_dropped`` and :attr:`media_counter`)
    and override :meth:`_setup` to build on :meth:`_network`."""

    prefix: ClassVar[str]  # two letters: namespace <p>w, veths <p>r / <p>n
    ns_letter: ClassVar[str]
    subnet16: ClassVar[str]  # e.g. "10.211": only ever on these veths
    index_step: ClassVar[int]  # spreads the /30s of several instances
    table: ClassVar[str]
    media_counter: ClassVar[str]

    def __init__(self, index: int, peer_ns: str | None = None) -> None:
        # The namespace holding the other end of the veth: the root
        # namespace (None), or another test namespace (e.g. Janus's, so a
        # viewer reaches it without any forwarding in the root namespace).
        self.peer_ns = peer_ns
        tag = f"{os.getpid() % 10000}{index}"
        self.ns = f"{self.prefix}{self.ns_letter}{tag}"
        self.veth_root = f"{self.prefix}r{tag}"
        self.veth_ns = f"{self.prefix}n{tag}"
        third = (os.getpid() + self.index_step * index) % 250 + 1
        self.root_ip = f"{self.subnet16}.{third}.1"
        self.ns_ip = f"{self.subnet16}.{third}.2"
        self.dir = Path(tempfile.mkdtemp(prefix=f"qosmon-{type(self).__name__.lower()}-"))
        self._made_ns = False
        self._made_veth = False

    def netns(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("ip", "netns", "exec", self.ns, *cmd, check=check)

    def peer(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` where the other end of the veth (``veth_root``) is."""
        if self.peer_ns is None:
            return run(*cmd, check=check)
        return run("ip", "netns", "exec", self.peer_ns, *cmd, check=check)

    def __enter__(self) -> VethNamespace:
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _setup(self) -> None:
        raise NotImplementedError

    def _network(self, rules: str) -> None:
        """The namespace, the veth with a /30 on each end, and ``rules``
        (an nftables script) loaded inside the namespace."""
        run("ip", "netns", "add", self.ns)
        self._made_ns = True
        run("ip", "link", "add", self.veth_root, "type", "veth", "peer", "name", self.veth_ns)
        self._made_veth = True
        run("ip", "link", "set", self.veth_ns, "netns", self.ns)
        if self.peer_ns is not None:
            run("ip", "link", "set", self.veth_root, "netns", self.peer_ns)
        self.peer("ip", "addr", "add", f"{self.root_ip}/30", "dev", self.veth_root)
        self.peer("ip", "link", "set", self.veth_root, "up")
        self.netns("ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.veth_ns)
        self.netns("ip", "link", "set", self.veth_ns, "up")
        self.netns("ip", "link", "set", "lo", "up")
        path = self.dir / "rules.nft"
        path.write_text(rules)
        self.netns("nft", "-f", str(path))

    def set_loss(self, percent: int, media_ssrc: int | None = None,
                 only_media: bool = False, media_pt: int | None = None) -> None:
        """Drop ``percent`` % of the UDP packets the ``impair`` chain sees.

        With ``media_ssrc``, packets of that RTP stream (SRTP leaves the RTP
        header in the clear: the SSRC is bytes 8-11 after the UDP header) are
        counted apart, in :attr:`media_counter` and ``media_dropped``, so
        those are the exact truth for that stream's path loss; the rest (RTX,
        RTCP, STUN) is dropped at the same rate and counted in ``dropped``,
        unless ``only_media``: then only that stream loses packets (e.g. only
        the audio of a show). ``media_pt`` instead picks the stream by its
        RTP payload type (RTP version 2, payload type without the marker bit:
        never a STUN, DTLS or RTCP packet), for senders whose SSRCs differ
        from one viewer to the next.
        """
        for chain in ("impair", "media"):
            self.netns("nft", "flush", "chain", "inet", self.table, chain)
        drop = ("numgen", "random", "mod", "100", "<", str(percent), "counter", "name")
        match: tuple[str, ...] = ()
        if media_ssrc is not None:
            match = ("@th,128,32", f"0x{media_ssrc:08x}")
        elif media_pt is not None:
            match = ("@th,64,2", "2", "@th,73,7", str(media_pt))
        if match:
            self.netns("nft", "add", "rule", "inet", self.table, "impair", *match,
                       "jump", "media")
            self.netns("nft", "add", "rule", "inet", self.table, "media",
                       "counter", "name", self.media_counter)
            if percent > 0:
                self.netns("nft", "add", "rule", "inet", self.table, "media",
                           *drop, "media_dropped", "drop")
            self.netns("nft", "add", "rule", "inet", self.table, "media", "accept")
        if percent > 0 and not (only_media and match):
            self.netns("nft", "add", "rule", "inet", self.table, "impair",
                       *drop, "dropped", "drop")

    def reset_counters(self) -> None:
        self.netns("nft", "reset", "counters", "table", "inet", self.table)

    def close(self) -> None:
        if self._made_veth:
            # Wherever the root end is now (deleting either end removes both).
            run("ip", "link", "del", self.veth_root, check=False)
            if self.peer_ns is not None:
                self.peer("ip", "link", "del", self.veth_root, check=False)
        if self._made_ns:
            run("ip", "netns", "del", self.ns, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
