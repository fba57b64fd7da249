"""kill -9 of a collector process mid-ingest loses nothing it acknowledged,
stores no half batch, and a probe's retries after restart are stored once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from qosmon.model import Show
from qosmon.store.sqlite import SqliteStore
from tests.cli_run import start_serve
from tests.test_collector_support import PROBE_TOKENS, auth, batch, sample

SAMPLES_PER_BATCH = 50


def _start(tmp_path: Path, db: Path) -> tuple[subprocess.Popen[str], str]:
    # The collector refuses samples for a show it does not know.
    store = SqliteStore(db)
    store.put_show(Show(show_id="show-1", start_ts=time.time() - 600))
    store.close()
    cfg = tmp_path / "collector.toml"
    cfg.write_text(
        'host = "127.0.0.1"\nport = 0\n'
        f'store = "sqlite://{db}"\n'
        "[rate_limit]\nrequests_per_s = 10000\nburst = 10000\n"
        "[retention]\nenabled = false\n"
        f'[[probes]]\nprobe_id = "p1"\ntoken = "{PROBE_TOKENS["p1"]}"\n'
    )
    return start_serve(["serve", "--config", str(cfg)], cwd=tmp_path)


def _batches(n: int) -> list[dict[str, object]]:
    now = time.time()
    return [
        batch(f"crash-{i:05d}", [sample(ts=now - 10 + j / 1000, stream_id=f"b{i}")
                                 for j in range(SAMPLES_PER_BATCH)])
        for i in range(n)
    ]


async def _send_until_dead(url: str, batches: list[dict[str, object]], acked: set[str],
                           kill_after: int, proc: subprocess.Popen[str]) -> None:
    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)

    async def worker(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            b = queue.get_nowait()
            try:
                async with http.post(f"{url}/api/v1/samples", json=b,
                                     headers=auth(PROBE_TOKENS["p1"])) as r:
                    if r.status == 200:
                        acked.add(str(b["batch_id"]))
                        if len(acked) == kill_after:
                            proc.send_signal(signal.SIGKILL)
            except (TimeoutError, aiohttp.ClientError):
                return

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        await asyncio.gather(*(worker(http) for _ in range(8)))


async def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    batches = _batches(400)
    proc, url = _start(tmp_path, db)
    acked: set[str] = set()
    try:
        await _send_until_dead(url, batches, acked, kill_after=150, proc=proc)
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert 150 <= len(acked) < 400, "the kill must land mid-ingest"

    store = SqliteStore(db)
    try:
        stored = {f"crash-{i:05d}" for i in range(400) if store.has_batch(f"p1/crash-{i:05d}")}
        assert acked <= stored, f"acknowledged but lost: {sorted(acked - stored)[:5]}"
        # No half batches: every stored batch has all its samples.
        assert store.count_probe_samples() == len(stored) * SAMPLES_PER_BATCH
    finally:
        store.close()

    # The probe, not knowing what landed, resends everything after restart.
    proc, url = _start(tmp_path, db)
    try:
        duplicates = 0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            for b in batches:
                async with http.post(f"{url}/api/v1/samples", json=b,
                                     headers=auth(PROBE_TOKENS["p1"])) as r:
                    assert r.status == 200
                    duplicates += (await r.json())["duplicate"]
        assert duplicates == len(stored)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert proc.returncode == 0
    store = SqliteStore(db)
    try:
        assert store.count_probe_samples() == 400 * SAMPLES_PER_BATCH
    finally:
        store.close()


def test_serve_rejects_a_bad_config(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('port = "eighty"\ncolour = 1\n[[probes]]\nprobe_id = "p"\ntoken = "short"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "qosmon.cli", "serve", "--config", str(cfg)],
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert proc.returncode == 2
    assert "port" in proc.stderr and "colour: unknown key" in proc.stderr
    assert "probes[0].token" in proc.stderr and "Traceback" not in proc.stderr
    assert "short" not in proc.stderr.replace("at least", "")  # no secret echoed
