"""Janus in a network namespace, fed by ffmpeg, for the probe's end-to-end
tests and the cost benchmark.

Janus never uses loopback for ICE, so it runs in its own namespace joined to
the root namespace by a veth pair (addresses from 10.211.0.0/16, which exists
only on these veths; no default route, no forwarding). The probe runs in the
root namespace and offers only the root end of the veth as ICE candidate.
Janus gets its own folders with only the streaming and TextRoom plugins and
the HTTP transport. Impairments (nftables random drop with counters, tc tbf)
are applied inside Janus's namespace, on its veth's egress, so nothing
outside the test's namespace is touched.

Everything made here is removed by :meth:`JanusNetns.close` (namespace,
veth, processes, temp dir), also after failures.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.veth_namespace import VethNamespace, run

JANUS_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
HTTP_PORT = 8088
RTP_PORT = 5004
VIDEO_PT = 100
VIDEO_SSRC = 0x1234ABCD
MOUNTPOINT = 1
TEXTROOM = 1234
# The H.264 + Opus mountpoint: what live shows mostly send.
H264_MOUNTPOINT = 2
H264_RTP_PORT = 5006
H264_PT = 96
H264_SSRC = 0x2345BCDE
OPUS_RTP_PORT = 5008
OPUS_PT = 111
OPUS_SSRC = 0x3456CDEF
# The same two at a live show's resolution (the cost bench feeds them 720p
# at 2.5 Mbps), on mountpoints of their own so they run beside the ones above.
VP8_HD_MOUNTPOINT = 3
VP8_HD_RTP_PORT = 5030
H264_HD_MOUNTPOINT = 4
H264_HD_RTP_PORT = 5032
OPUS_HD_RTP_PORT = 5034
# mountpoint -> (video RTP port, SSRC) and, for H.264 + Opus ones, (Opus port, SSRC)
_VP8_FEEDS = {MOUNTPOINT: (RTP_PORT, VIDEO_SSRC), VP8_HD_MOUNTPOINT: (VP8_HD_RTP_PORT, 0x1234ABCE)}
_H264_FEEDS = {H264_MOUNTPOINT: ((H264_RTP_PORT, H264_SSRC), (OPUS_RTP_PORT, OPUS_SSRC)),
               H264_HD_MOUNTPOINT: ((H264_HD_RTP_PORT, 0x2345BCDF),
                                    (OPUS_HD_RTP_PORT, 0x3456CDF0))}


def skip_unless_janus_possible() -> None:
    """Skip, saying why, where the end-to-end tests cannot run."""
    if os.geteuid() != 0:
        pytest.skip("needs root: creates network namespaces, veths, nftables rules")
    for binary in ("janus", "ffmpeg", "ip", "nft", "tc"):
        if shutil.which(binary) is None:
            pytest.skip(f"needs {binary} (make sysdeps installs it)")
    for so in ("plugins/libjanus_streaming.so", "plugins/libjanus_textroom.so",
               "transports/libjanus_http.so"):
        if not (JANUS_LIB / so).exists():
            pytest.skip(f"Janus plugin missing: {JANUS_LIB / so}")


def encode_clip(path: Path, seconds: int = 10, bitrate_kbps: int = 800,
                size: str = "640x360", fps: int = 25) -> Path:
    """Encode the test clip once (libvpx); looping it later costs no CPU."""
    if not path.exists():
        run("ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
            "-i", f"testsrc2=size={size}:rate={fps}", "-t", str(seconds),
            "-c:v", "libvpx", "-b:v", f"{bitrate_kbps}k", "-minrate", f"{bitrate_kbps}k",
            "-maxrate", f"{bitrate_kbps}k", "-deadline", "realtime", "-cpu-used", "8",
            "-g", str(fps * 2), "-keyint_min", str(fps * 2), "-auto-alt-ref", "0",
            "-lag-in-frames", "0", "-an", str(path))
    return path


def encode_h264_clip(path: Path, seconds: int = 10, bitrate_kbps: int = 800,
                     size: str = "640x360", fps: int = 25) -> Path:
    """Encode the H.264 (libx264 baseline, SPS/PPS before every IDR) + Opus
    (a tone) clip once, as MPEG-TS; looping it later costs no CPU."""
    if not path.exists():
        run("ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
            "-i", f"testsrc2=size={size}:rate={fps}", "-f", "lavfi",
            "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds),
            "-c:v", "libx264", "-profile:v", "baseline", "-preset", "veryfast",
            "-tune", "zerolatency", "-b:v", f"{bitrate_kbps}k", "-maxrate", f"{bitrate_kbps}k",
            "-bufsize", f"{bitrate_kbps}k", "-g", str(fps * 2), "-keyint_min", str(fps * 2),
            "-sc_threshold", "0", "-x264-params", "repeat-headers=1",
            "-c:a", "libopus", "-b:a", "48k", "-ac", "2", "-frame_duration", "20",
            "-f", "mpegts", str(path))
    return path


@dataclass
class NftCounters:
    packets_out: int  # every UDP packet Janus sent towards the probe
    packets_dropped: int  # of those, dropped (not media_ssrc)
    media_out: int  # packets of the media SSRC given to set_loss
    media_dropped: int
    feed_packets: int  # RTP from ffmpeg into the mountpoint
    feed_bytes: int  # IP bytes of those

    @property
    def feed_payload_bytes(self) -> int:
        # IPv4 20 + UDP 8 + RTP 12 (ffmpeg adds no CSRC or extension)
        return self.feed_bytes - 40 * self.feed_packets


@dataclass(frozen=True)
class JanusAuth:
    """Janus's own request auth: ``api_secret`` (every request carries
    ``apisecret``) and/or ``token_auth`` with HMAC-signed tokens
    (``token_auth_secret``; see :func:`signed_janus_token`)."""

    api_secret: str | None = None
    token_auth_secret: str | None = None

    def general_config(self) -> str:
        lines = []
        if self.api_secret is not None:
            lines.append(f'  api_secret = "{self.api_secret}"')
        if self.token_auth_secret is not None:
            lines += ["  token_auth = true",
                      f'  token_auth_secret = "{self.token_auth_secret}"']
        return "\n".join(lines)


def signed_janus_token(secret: str, plugins: list[str], valid_s: float = 3600) -> str:
    """A Janus signed token: ``expiry,janus,plugin...:base64(HMAC-SHA1)``."""
    data = ",".join([str(int(time.time() + valid_s)), "janus", *plugins])
    mac = hmac.new(secret.encode(), data.encode(), hashlib.sha1).digest()
    return f"{data}:{base64.b64encode(mac).decode()}"


class JanusNetns(VethNamespace):
    """One Janus in one namespace. Use as a context manager."""

    prefix = "qp"
    ns_letter = "j"
    subnet16 = "10.211"
    index_step = 1
    table = "qp"
    media_counter = "media_out"

    def __init__(self, index: int = 0, auth: JanusAuth | None = None,
                 ice_interfaces: tuple[str, ...] = ()) -> None:
        super().__init__(index)
        self.auth = auth or JanusAuth()
        # More interfaces (or name prefixes) Janus may gather ICE candidates
        # on, for veths into this namespace made after Janus started (Janus
        # looks at the interfaces again for each new peer connection).
        self.ice_interfaces = ice_interfaces
        self.janus: subprocess.Popen[bytes] | None = None
        self.feeds: dict[int, subprocess.Popen[bytes]] = {}  # mountpoint -> ffmpeg
        self.debug_level = 3

    @property
    def api_url(self) -> str:
        return f"http://{self.ns_ip}:{HTTP_PORT}/janus"

    # -- lifecycle -------------------------------------------------------------

    def __enter__(self) -> JanusNetns:
        super().__enter__()
        return self

    def _setup(self) -> None:
        # Ground truth for the tests: every UDP packet Janus sends to the
        # probe, and every packet of the ffmpeg feed.
        rules = f"""
table inet qp {{
  chain out {{
    type filter hook output priority 0; policy accept;
    oifname "{self.veth_ns}" meta l4proto udp counter name "udp_out"
    oifname "{self.veth_ns}" meta l4proto udp jump impair
  }}
  chain impair {{
  }}
  chain feed {{
    type filter hook input priority 0; policy accept;
    iifname "lo" udp dport {RTP_PORT} counter name "feed"
  }}
  chain media {{
  }}
  counter udp_out {{ }}
  counter dropped {{ }}
  counter media_out {{ }}
  counter media_dropped {{ }}
  counter feed {{ }}
}}
"""
        self._network(rules)
        self._configure()
        self._start_janus()

    def _configure(self) -> None:
        conf = self.dir / "conf"
        plugins = self.dir / "plugins"
        transports = self.dir / "transports"
        empty = self.dir / "empty"
        for d in (conf, plugins, transports, empty):
            d.mkdir()
        for name in ("streaming", "textroom"):
            (plugins / f"libjanus_{name}.so").symlink_to(
                JANUS_LIB / "plugins" / f"libjanus_{name}.so")
        (transports / "libjanus_http.so").symlink_to(JANUS_LIB / "transports/libjanus_http.so")
        (conf / "janus.jcfg").write_text(f"""
general: {{
  configs_folder = "{conf}"
  plugins_folder = "{plugins}"
  transports_folder = "{transports}"
  events_folder = "{empty}"
  loggers_folder = "{empty}"
  debug_level = {self.debug_level}
  admin_secret = "janusoverlord"
  protected_folders = []
{self.auth.general_config()}
}}
media: {{
  rtp_port_range = "20000-20999"
  # Janus keeps packets for retransmission this long at least; its default
  # (about the RTT) is too short on a veth for a viewer's NACKs to be served.
  min_nack_queue = 1000
}}
nat: {{
  nice_debug = false
  ice_enforce_list = "{",".join((self.veth_ns, *self.ice_interfaces))}"
}}
plugins: {{ }}
transports: {{ }}
loggers: {{ }}
events: {{ broadcast = false }}
""")
        (conf / "janus.transport.http.jcfg").write_text(f"""
general: {{ json = "plain" base_path = "/janus" http = true port = {HTTP_PORT} https = false }}
admin: {{ admin_http = false }}
""")
        (conf / "janus.plugin.streaming.jcfg").write_text(f"""
general: {{ }}
probe-test: {{
  type = "rtp"
  id = {MOUNTPOINT}
  description = "probe test"
  audio = false
  video = true
  videoport = {RTP_PORT}
  videopt = {VIDEO_PT}
  videocodec = "vp8"
  videobufferkf = true
}}
probe-h264: {{
  type = "rtp"
  id = {H264_MOUNTPOINT}
  description = "probe test h264 + opus"
  audio = true
  audioport = {OPUS_RTP_PORT}
  audiopt = {OPUS_PT}
  audiocodec = "opus"
  audiortpmap = "opus/48000/2"
  video = true
  videoport = {H264_RTP_PORT}
  videopt = {H264_PT}
  videocodec = "h264"
  videofmtp = "profile-level-id=42e01f;packetization-mode=1"
  videobufferkf = true
}}
probe-vp8-hd: {{
  type = "rtp"
  id = {VP8_HD_MOUNTPOINT}
  description = "probe test vp8 720p"
  audio = false
  video = true
  videoport = {VP8_HD_RTP_PORT}
  videopt = {VIDEO_PT}
  videocodec = "vp8"
  videobufferkf = true
}}
probe-h264-hd: {{
  type = "rtp"
  id = {H264_HD_MOUNTPOINT}
  description = "probe test h264 + opus 720p"
  audio = true
  audioport = {OPUS_HD_RTP_PORT}
  audiopt = {OPUS_PT}
  audiocodec = "opus"
  audiortpmap = "opus/48000/2"
  video = true
  videoport = {H264_HD_RTP_PORT}
  videopt = {H264_PT}
  videocodec = "h264"
  videofmtp = "profile-level-id=42e01f;packetization-mode=1"
  videobufferkf = true
}}
""")
        (conf / "janus.plugin.textroom.jcfg").write_text(f"""
general: {{ json = "plain" }}
room-{TEXTROOM}: {{ description = "probe chat" }}
""")

    def _start_janus(self) -> None:
        with open(self.dir / "janus.log", "wb") as log:  # the child keeps its own copy
            self.janus = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, "janus", "-F", str(self.dir / "conf"),
                 "-C", str(self.dir / "conf" / "janus.jcfg"), "-o"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.janus.poll() is not None:
                raise RuntimeError(f"Janus exited: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/info", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"Janus did not answer in 15 s: {self.log_tail()}")

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join((self.dir / "janus.log").read_text(errors="replace")
                             .splitlines()[-n:])
        except OSError:
            return "(no log)"

    def start_feed(self, clip: Path, mountpoint: int = MOUNTPOINT) -> None:
        """Loop the clip into a VP8 mountpoint as RTP, copying (no encoding)."""
        self.stop_feed(mountpoint)
        port, ssrc = _VP8_FEEDS[mountpoint]
        self.feeds[mountpoint] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "ffmpeg", "-nostdin", "-loglevel", "error",
             "-re", "-stream_loop", "-1", "-i", str(clip), "-an", "-c:v", "copy",
             "-f", "rtp", "-payload_type", str(VIDEO_PT), "-ssrc", str(ssrc),
             f"rtp://127.0.0.1:{port}?pkt_size=1200"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )

    def stop_feed(self, mountpoint: int = MOUNTPOINT) -> None:
        feed = self.feeds.pop(mountpoint, None)
        if feed is not None:
            _stop(feed)

    def start_h264_feed(self, clip: Path, audio: bool = True,
                        mountpoint: int = H264_MOUNTPOINT) -> None:
        """Loop the H.264 + Opus clip into an H.264 mountpoint, copying."""
        self.stop_h264_feed(mountpoint)
        (video_port, video_ssrc), (audio_port, audio_ssrc) = _H264_FEEDS[mountpoint]
        cmd = ["ip", "netns", "exec", self.ns, "ffmpeg", "-nostdin", "-loglevel", "error",
               "-re", "-stream_loop", "-1", "-i", str(clip),
               "-map", "0:v", "-c:v", "copy", "-f", "rtp", "-payload_type", str(H264_PT),
               "-ssrc", str(video_ssrc), f"rtp://127.0.0.1:{video_port}?pkt_size=1200"]
        if audio:
            cmd += ["-map", "0:a", "-c:a", "copy", "-f", "rtp", "-payload_type", str(OPUS_PT),
                    "-ssrc", str(audio_ssrc), f"rtp://127.0.0.1:{audio_port}"]
        self.feeds[mountpoint] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL,
                                                  start_new_session=True)

    def stop_h264_feed(self, mountpoint: int = H264_MOUNTPOINT) -> None:
        self.stop_feed(mountpoint)

    # -- impairments -------------------------------------------------------

    def set_rate(self, kbit: int | None) -> None:
        if kbit is None:
            self.netns("tc", "qdisc", "del", "dev", self.veth_ns, "root", check=False)
        else:
            self.netns("tc", "qdisc", "replace", "dev", self.veth_ns, "root", "tbf",
                       "rate", f"{kbit}kbit", "burst", "16kb", "latency", "200ms")

    def counters(self) -> NftCounters:
        out = json.loads(self.netns("nft", "-j", "list", "counters", "table", "inet", "qp")
                         .stdout)
        vals: dict[str, tuple[int, int]] = {}
        for item in out.get("nftables", []):
            c = item.get("counter")
            if c:
                vals[c["name"]] = (c["packets"], c["bytes"])
        return NftCounters(packets_out=vals["udp_out"][0], packets_dropped=vals["dropped"][0],
                           media_out=vals["media_out"][0],
                           media_dropped=vals["media_dropped"][0],
                           feed_packets=vals["feed"][0], feed_bytes=vals["feed"][1])

    # -- teardown ----------------------------------------------------------

    def close(self) -> None:
        for mountpoint in list(self.feeds):
            self.stop_feed(mountpoint)
        if self.janus is not None:
            _stop(self.janus)
            self.janus = None
        super().close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


# -- known delay: a UDP relay plus candidate rewriting -------------------------

_CANDIDATE = re.compile(r"^(a=candidate:\S+ 1 udp \d+ )(\S+) (\d+)( typ host.*)$",
                        re.IGNORECASE | re.MULTILINE)


class DelayRelay:
    """Sits between the probe and Janus on the root end of the veth and
    holds every datagram ``one_way_ms`` in each direction, so the round trip
    grows by exactly twice that. netem is not in this kernel; this is exact."""

    def __init__(self, host: str, one_way_ms: float) -> None:
        self.host = host
        self.delay_s = one_way_ms / 1000.0
        self.probe_addr: tuple[str, int] | None = None
        self.janus_addr: tuple[str, int] | None = None
        self.probe_side: asyncio.DatagramTransport | None = None  # looks like Janus
        self.janus_side: asyncio.DatagramTransport | None = None  # looks like the probe

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        relay = self

        class Side(asyncio.DatagramProtocol):
            def __init__(self, from_probe: bool) -> None:
                self.from_probe = from_probe

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                if self.from_probe:
                    relay.probe_addr = addr
                    out, to = relay.janus_side, relay.janus_addr
                else:
                    out, to = relay.probe_side, relay.probe_addr
                if out is not None and to is not None:
                    loop.call_later(relay.delay_s, _send, out, data, to)

        t1, _ = await loop.create_datagram_endpoint(lambda: Side(True), local_addr=(self.host, 0))
        t2, _ = await loop.create_datagram_endpoint(lambda: Side(False),
                                                    local_addr=(self.host, 0))
        self.probe_side, self.janus_side = t1, t2

    def port(self, transport: asyncio.DatagramTransport | None) -> int:
        assert transport is not None
        return int(transport.get_extra_info("sockname")[1])

    def close(self) -> None:
        for t in (self.probe_side, self.janus_side):
            if t is not None:
                t.close()

    def rewrite(self, sdp: str, from_janus: bool) -> str:
        """Point the SDP's host candidate at the relay; remember the real one."""
        m = _CANDIDATE.search(sdp)
        if m is not None:
            real = (m.group(2), int(m.group(3)))
            if from_janus:
                self.janus_addr = real
            else:
                self.probe_addr = real
        port = self.port(self.probe_side if from_janus else self.janus_side)
        return _CANDIDATE.sub(lambda m: f"{m.group(1)}{self.host} {port}{m.group(4)}", sdp)


def _send(transport: asyncio.DatagramTransport, data: bytes, to: tuple[str, int]) -> None:
    if not transport.is_closing():
        transport.sendto(data, to)


class JanusApiProxy:
    """Forwards the Janus REST API and rewrites the SDP candidates in it so
    that the media goes through a :class:`DelayRelay` (as a NAT or TURN relay
    would make it). The probe is not told: it talks to this URL. Without a
    relay it only forwards, keeping every request body it forwarded in
    :attr:`requests` (what the probe asked Janus, in order)."""

    def __init__(self, janus_url: str, relay: DelayRelay | None = None) -> None:
        self.janus_url = janus_url.rstrip("/")
        self.relay = relay
        self.runner: web.AppRunner | None = None
        self.url = ""
        self.requests: list[dict[str, object]] = []

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/janus{tail:.*}", self._forward)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/janus"
        self._http = aiohttp.ClientSession()

    async def stop(self) -> None:
        await self._http.close()
        if self.runner is not None:
            await self.runner.cleanup()

    def _fix(self, obj: object, from_janus: bool) -> object:
        if self.relay is None:
            return obj
        if isinstance(obj, list):
            return [self._fix(x, from_janus) for x in obj]
        if isinstance(obj, dict):
            jsep = obj.get("jsep")
            if isinstance(jsep, dict) and isinstance(jsep.get("sdp"), str):
                jsep["sdp"] = self.relay.rewrite(jsep["sdp"], from_janus)
        return obj

    async def _forward(self, request: web.Request) -> web.Response:
        url = self.janus_url + request.match_info["tail"]
        body = await request.read()
        if body:
            sent = json.loads(body)
            if isinstance(sent, dict):
                self.requests.append(sent)
            body = json.dumps(self._fix(sent, from_janus=False)).encode()
        async with self._http.request(request.method, url, data=body or None,
                                      params=request.query,
                                      timeout=aiohttp.ClientTimeout(total=40)) as resp:
            data = await resp.read()
            status = resp.status
        with contextlib.suppress(ValueError):
            data = json.dumps(self._fix(json.loads(data), from_janus=True)).encode()
        return web.Response(status=status, body=data, content_type="application/json")
