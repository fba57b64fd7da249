"""Real receivers for the alerting tests: a recording HTTP receiver (what a
webhook / Slack / PagerDuty endpoint sees) and a real Prometheus Alertmanager
process on loopback with its own storage, posting to such a receiver."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.loopback_server import free_port, stop_process, wait_ready

ALERTMANAGER_BIN = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    received: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every POST; answers ``status`` (200 by default, per path)."""

    port: int = field(default_factory=free_port)
    status: dict[str, int] = field(default_factory=dict)
    delay_s: float = 0.0
    requests: list[Request] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Condition | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        status = self.status.get(request.path, 200)
        if status < 300:
            # Only accepted requests count as delivered.
            self.requests.append(Request(request.path, dict(request.headers), body, time.time()))
            assert self._arrived is not None
            async with self._arrived:
                self._arrived.notify_all()
        text = "ok" if status < 300 else f"error {status}"
        return web.Response(status=status, text=text)

    async def start(self) -> None:
        self._arrived = self._arrived or asyncio.Condition()
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_for(self, count: int, timeout_s: float, path: str | None = None
                       ) -> list[Request]:
        """Wait until ``count`` requests (to ``path`` if given) have arrived."""
        self._arrived = self._arrived or asyncio.Condition()

        def got() -> list[Request]:
            return [r for r in self.requests if path is None or r.path == path]

        async with self._arrived:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait_for(lambda: len(got()) >= count),
                                       timeout_s)
        return got()


@contextlib.asynccontextmanager
async def receiver(**kwargs: Any) -> AsyncIterator[Receiver]:
    r = Receiver(**kwargs)
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


ALERTMANAGER_CONFIG = """\
route:
  receiver: oncall
  group_by: [show, region, route]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - receiver: merchandising
      matchers: ['route="merchandising"']
receivers:
  - name: oncall
    webhook_configs:
      - url: {hook}/oncall
        send_resolved: true
  - name: merchandising
    webhook_configs:
      - url: {hook}/merchandising
        send_resolved: true
"""


@dataclass
class Alertmanager:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    async def alerts(self) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as s, s.get(f"{self.url}/api/v2/alerts") as r:
            r.raise_for_status()
            data: list[dict[str, Any]] = await r.json()
            return data


@contextlib.asynccontextmanager
async def alertmanager(hook_url: str, startup_timeout_s: float = 20.0
                       ) -> AsyncIterator[Alertmanager]:
    """A real Alertmanager on 127.0.0.1 with fresh storage and no gossip,
    whose two receivers post to ``hook_url``/oncall and /merchandising."""
    if ALERTMANAGER_BIN is None:
        raise RuntimeError("prometheus-alertmanager not installed")
    with tempfile.TemporaryDirectory(prefix="qosmon-am-") as tmp:
        cfg = Path(tmp) / "alertmanager.yml"
        cfg.write_text(ALERTMANAGER_CONFIG.format(hook=hook_url))
        port = free_port()
        log_path = Path(tmp) / "alertmanager.log"
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                [ALERTMANAGER_BIN, f"--config.file={cfg}",
                 f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
                 f"--storage.path={tmp}/data", "--log.level=warn"],
                stdout=log_file, stderr=subprocess.STDOUT,
            )
        am = Alertmanager(f"http://127.0.0.1:{port}", proc, log_path)
        try:
            # In a thread: the test's own receiver keeps serving meanwhile.
            await asyncio.to_thread(wait_ready, proc, f"{am.url}/-/ready", log_path,
                                    "alertmanager", startup_timeout_s)
            yield am
        finally:
            stop_process(proc)
