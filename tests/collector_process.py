"""`qosmon serve` as a real process, and a show played against it over HTTP
the way probes and the commerce platform would: for the restart and
takeover tests, and the restart benchmark."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from qosmon.model import ConnectionState, ProbeBatch, ProbeSample, Show

REPO = Path(__file__).resolve().parents[1]
HOOK_SECRET = "restart-test-hook-secret-0123456789"

# Two regions, two probes each, one edge node per region.
PROBES = {"id-1": ("ID", "jkt-1"), "id-2": ("ID", "jkt-1"),
          "th-1": ("TH", "bkk-1"), "th-2": ("TH", "bkk-1")}


def sample(show_id: str, probe: str, ts: float, broken_since: float | None) -> ProbeSample:
    """One second of one probe; ``broken_since``: its edge node stopped
    serving media then (no frames, no packets, chat lost)."""
    region, node = PROBES[probe]
    broken = broken_since is not None
    return ProbeSample(
        ts=ts, show_id=show_id, stream_id="main", probe_id=probe, region=region,
        edge_node=node, state=ConnectionState.CONNECTED, ttff_ms=150.0,
        rtt_ms=None if broken else 80.0, packets_expected=0 if broken else 80,
        packets_received=0 if broken else 80, loss_pct=None if broken else 0.0,
        bitrate_kbps=0.0 if broken else 720.0, fps=0.0 if broken else 25.0,
        no_frame_ms=(ts - broken_since) * 1000 if broken_since is not None else 40.0,
        chat_sent=1, chat_lost=1 if broken else 0, chat_rtt_ms=None if broken else 80.0,
    )


@dataclass
class Deployment:
    """The config files of one collector (tokens shared by every collector
    of a test)."""

    tmp: Path
    store_url: str
    hook_url: str
    tokens: dict[str, str] = field(
        default_factory=lambda: {p: secrets.token_urlsafe(16) for p in PROBES})
    feed: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    extra_live: str = ""
    # Alert timings short enough for a test, the same rules otherwise.
    alerting: str = (
        "pending_s = 0\ngroup_wait_s = 0\ngroup_interval_s = 1\ncool_off_s = 3\n"
    )

    def write(self, name: str = "collector") -> Path:
        alerting = self.tmp / "alerting.toml"
        alerting.write_text(
            self.alerting
            + "[[routes]]\nname = \"hook\"\nkind = \"webhook\"\n"
            f"url = \"{self.hook_url}\"\nsecret = \"{HOOK_SECRET}\"\n"
            "serves = [\"oncall\", \"merchandising\"]\ntimeout_s = 2\n"
            "[routes.retry]\nmax_attempts = 3\ninitial_backoff_s = 0.2\nmax_backoff_s = 1\n"
        )
        cfg = self.tmp / f"{name}.toml"
        probes = "".join(f'[[probes]]\nprobe_id = "{p}"\ntoken = "{t}"\n'
                         for p, t in self.tokens.items())
        cfg.write_text(
            'host = "127.0.0.1"\nport = 0\n'
            f'store = "{self.store_url}"\n'
            f'feed_tokens = ["{self.feed}"]\n'
            "[rate_limit]\nrequests_per_s = 1000\nburst = 1000\n"
            "[retention]\nenabled = false\n"
            "[live]\n"
            f'diagnosis_config = "{REPO / "config" / "diagnosis.toml"}"\n'
            f'alerting_config = "{alerting}"\n'
            f'report_dir = "{self.tmp / "reports"}"\n'
            "resume_wait_s = 15\n"
            + self.extra_live + probes
        )
        return cfg


class CollectorProcess:
    """One `qosmon serve` process; its log goes to a file next to its config."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.env = env or {}
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.log = config.with_suffix(".log")
        self.started_s = 0.0  # seconds from exec to listening

    def start(self, timeout_s: float = 60.0) -> str:
        t0 = time.monotonic()
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "qosmon.cli", "serve", "--config", str(self.config)],
                stdout=subprocess.PIPE, stderr=log, text=True,
                env={**os.environ, "PYTHONPATH": str(REPO), **self.env},
            )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("collector listening on "):
                self.url = line.split()[-1]
                self.started_s = time.monotonic() - t0
                return self.url
            if not line and self.proc.poll() is not None:
                break
        self.kill()
        raise AssertionError(f"collector did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._close_pipe()

    def _close_pipe(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._close_pipe()
        return self.proc.returncode


class ShowPlayer:
    """Plays a show: one sample per probe per second, stamped with the wall
    clock, posted to whichever collector ``url`` is (nothing is posted while
    it is down: a probe would spool)."""

    def __init__(self, deployment: Deployment, show_id: str, url: str) -> None:
        self.d = deployment
        self.show_id = show_id
        self.url = url
        self.broken: dict[str, float | None] = {"ID": None, "TH": None}
        self.start = time.time()
        self._k = 0
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))

    async def close(self) -> None:
        await self.http.close()

    async def put_show(self, planned_s: float = 600.0) -> None:
        show = Show(show_id=self.show_id, title="restart test", start_ts=self.start,
                    planned_end_ts=self.start + planned_s, regions=["ID", "TH"])
        async with self.http.put(f"{self.url}/api/v1/shows/{self.show_id}",
                                 json=show.model_dump(mode="json"),
                                 headers={"Authorization": f"Bearer {self.d.feed}"}) as r:
            assert r.status == 200, await r.text()

    async def end_show(self) -> None:
        async with self.http.post(f"{self.url}/api/v1/shows/{self.show_id}/end",
                                  json={"ts": time.time()},
                                  headers={"Authorization": f"Bearer {self.d.feed}"}) as r:
            assert r.status == 200, await r.text()

    async def second(self) -> None:
        """Post this second's samples, then wait for the next second."""
        ts = time.time()
        self._k += 1
        for probe, (region, _) in PROBES.items():
            batch = ProbeBatch(batch_id=f"{probe}-{self._k:05d}", probe_id=probe, sent_ts=ts,
                               samples=[sample(self.show_id, probe, ts, self.broken[region])])
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self.http.post(
                    f"{self.url}/api/v1/samples", data=batch.model_dump_json(),
                    headers={"Authorization": f"Bearer {self.d.tokens[probe]}",
                             "Content-Type": "application/json"},
                ) as r:
                    assert r.status == 200, await r.text()
        await asyncio.sleep(max(0.0, 1.0 - (time.time() - ts)))

    async def incidents(self) -> list[dict[str, Any]]:
        try:
            async with self.http.get(f"{self.url}/api/v1/shows/{self.show_id}/incidents") as r:
                if r.status != 200:
                    return []
                got: list[dict[str, Any]] = (await r.json())["incidents"]
                return got
        except (aiohttp.ClientError, TimeoutError):
            return []

    async def health(self) -> dict[str, Any]:
        async with self.http.get(f"{self.url}/healthz") as r:
            body: dict[str, Any] = await r.json()
            body["http_status"] = r.status
            return body

    async def play_until(self, cond: Any, timeout_s: float, what: str) -> Any:
        """Play seconds until ``await cond()`` is truthy; returns its value."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            await self.second()
            got = await cond()
            if got:
                return got
        raise AssertionError(f"not seen within {timeout_s:.0f} s: {what}")


def node_failures(incidents: list[dict[str, Any]], region: str) -> list[dict[str, Any]]:
    return [i for i in incidents
            if i["cause"] == "node_failure" and i["scope"].get("region") == region]
