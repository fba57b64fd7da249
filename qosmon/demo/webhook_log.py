"""A local webhook receiver that appends every alert it gets to a JSON-lines
file: the demo's stand-in for an on-call channel, and a way to see exactly
what a receiver would get."""

from __future__ import annotations

import json
import time
from pathlib import Path

from aiohttp import web


class WebhookLog:
    def __init__(self, path: Path, host: str = "127.0.0.1") -> None:
        self.path = path
        self.host = host
        self.url = ""
        self.received: list[dict[str, object]] = []
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{route}", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        self.url = f"http://{self.host}:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            payload: object = json.loads(body)
        except ValueError:
            payload = body.decode("utf-8", "replace")
        entry = {
            "received_ts": time.time(),
            "route": request.match_info["route"],
            "payload": payload,
        }
        self.received.append(entry)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return web.json_response({"ok": True})
