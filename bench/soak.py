"""Soak: a real collector (``qosmon serve``, embedded store, live analysis
on) with 50 simulated probes posting once a second, next to a hostile
client that keeps trying what the collector must refuse or bound:
oversized series reads, bodies trickled a byte at a time, bad tokens,
samples for shows that do not exist, bodies over the size cap.

    python bench/soak.py [--minutes N]   (default 10)

Prints the collector's memory at start and end, the probes' ack latency,
samples acknowledged vs stored (must be equal: the hostile traffic never
costs an acknowledged sample), the refusals by reason as the collector
counted them, and the worst lag of the live analysis' 1 s tick. Last line:
one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qosmon.model import Show
from qosmon.store.sqlite import SqliteStore
from tests.serve_process import CollectorProcess

PROBES = 50
SHOW = "soak"
FEED = "soak-feed-token-" + secrets.token_hex(8)
FREE = "soak-free-probe-" + secrets.token_hex(8)
REGIONS = ["SG", "ID", "TH", "VN", "PH"]


def token(i: int) -> str:
    return f"soak-probe-{i:03d}-token-0123456789"


def write_config(path: Path, db: Path, store_threads: int | None) -> None:
    lines = [
        'host = "127.0.0.1"', "port = 0", f'store = "sqlite://{db}"',
        *([f"store_threads = {store_threads}"] if store_threads else []),
        f'feed_tokens = ["{FEED}"]',
        "[retention]", "enabled = false",
        "[live]", "enabled = true", f'report_dir = "{path.parent / "reports"}"',
        "[limits]", "body_timeout_s = 5.0",
    ]
    for i in range(PROBES):
        region = REGIONS[i % len(REGIONS)]
        lines += [
            "[[probes]]", f'probe_id = "p{i:03d}"', f'token = "{token(i)}"',
            f'labels = {{ region = "{region}", isp = "isp-{region}", '
            f'edge_node = "edge-{region}" }}',
            f'shows = ["{SHOW}"]',
        ]
    lines += ["[[probes]]", 'probe_id = "free"', f'token = "{FREE}"']
    path.write_text("\n".join(lines) + "\n")


def rss_mb(pid: int) -> float:
    m = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return round(int(m.group(1)) / 1024, 1) if m else float("nan")


def sample(i: int, ts: float, k: int) -> dict[str, Any]:
    region = REGIONS[i % len(REGIONS)]
    return {
        "ts": ts, "show_id": SHOW, "stream_id": "main", "probe_id": f"p{i:03d}",
        "region": region, "isp": f"isp-{region}", "edge_node": f"edge-{region}",
        "state": "connected", "ttff_ms": 400.0, "rtt_ms": 40.0 + (k % 7),
        "packets_expected": 100, "packets_received": 100, "loss_pct": 0.0,
        "residual_loss_pct": 0.0, "jitter_ms": 2.0, "bitrate_kbps": 1200.0, "fps": 30.0,
        "width": 1280, "height": 720, "no_frame_ms": 33.0, "chat_sent": 1, "chat_lost": 0,
        "chat_rtt_ms": 80.0,
    }


class Probes:
    def __init__(self) -> None:
        self.acked = 0
        self.latencies_ms: list[float] = []
        self.failures: dict[str, int] = {}

    async def run_one(self, http: aiohttp.ClientSession, url: str, i: int, until: float) -> None:
        headers = {"Authorization": f"Bearer {token(i)}"}
        await asyncio.sleep(i / PROBES)  # spread over the second, as real probes are
        k = 0
        pending: dict[str, Any] | None = None
        while time.time() < until:
            t_next = time.monotonic() + 1.0
            if pending is None:
                pending = {"batch_id": f"p{i:03d}-{k:08d}", "probe_id": f"p{i:03d}",
                           "sent_ts": time.time(), "samples": [sample(i, time.time(), k)]}
                k += 1
            t0 = time.perf_counter()
            try:
                async with http.post(url + "/api/v1/samples", json=pending,
                                     headers=headers) as r:
                    await r.read()
                    status = r.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = type(exc).__name__  # type: ignore[assignment]
            if status == 200:
                self.latencies_ms.append((time.perf_counter() - t0) * 1000)
                self.acked += len(pending["samples"])
                pending = None  # else: retried next second, same batch id
            else:
                self.failures[str(status)] = self.failures.get(str(status), 0) + 1
            if k % 5 == 0:
                hb = {"probe": {"probe_id": f"p{i:03d}", "region": REGIONS[i % len(REGIONS)],
                                "isp": f"isp-{REGIONS[i % len(REGIONS)]}",
                                "edge_node": f"edge-{REGIONS[i % len(REGIONS)]}"},
                      "ts": time.time(), "streams": [f"{SHOW}/main"]}
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.post(url + "/api/v1/probes/heartbeat", json=hb,
                                         headers=headers) as r:
                        await r.read()
            await asyncio.sleep(max(0.0, t_next - time.monotonic()))


def _slow_body(url: str, seconds: float) -> None:
    """A POST whose body comes a byte every 0.5 s, until the server answers
    or closes (or ``seconds`` pass)."""
    host, port = url.removeprefix("http://").split(":")
    head = (f"POST /api/v1/samples HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {token(0)}\r\nContent-Type: application/json\r\n"
            "Content-Length: 100000\r\n\r\n").encode()
    with contextlib.suppress(OSError), socket.create_connection((host, int(port)), 5) as s:
        s.sendall(head)
        s.settimeout(0.5)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            s.sendall(b"{")
            try:
                if s.recv(4096) is not None:
                    return
            except TimeoutError:
                continue


async def hostile(http: aiohttp.ClientSession, url: str, until: float,
                  counts: dict[str, int]) -> None:
    """One unwanted request every 0.25 s, round robin, and up to three
    trickled bodies at a time."""
    bad = {"Authorization": "Bearer not-a-token-at-all-0000"}
    free = {"Authorization": f"Bearer {FREE}"}
    big = b'{"batch_id": "x", "pad": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    slow: set[asyncio.Task[None]] = set()
    n = 0
    while time.time() < until:
        kind = ("series", "bad_token", "unknown_show", "oversized", "slow_body")[n % 5]
        n += 1
        try:
            if kind == "series":
                # Four at once: more than the concurrent series reads allowed.
                async def series() -> int:
                    async with http.get(url + "/api/v1/series", params={
                            "show_id": SHOW, "metric": "rtt_ms", "minutes": "1440"}) as r:
                        await r.read()
                        return r.status

                for st in await asyncio.gather(*(series() for _ in range(4))):
                    counts[f"series:{st}"] = counts.get(f"series:{st}", 0) + 1
                status = 0
            elif kind == "bad_token":
                async with http.post(url + "/api/v1/samples", json={}, headers=bad) as r:
                    status = r.status
            elif kind == "unknown_show":
                body = {"batch_id": f"free-{n:08d}", "probe_id": "free",
                        "sent_ts": time.time(),
                        "samples": [{**sample(0, time.time(), n), "probe_id": "free",
                                     "show_id": f"nope-{n}"}]}
                async with http.post(url + "/api/v1/samples", json=body, headers=free) as r:
                    status = r.status
            elif kind == "oversized":
                async with http.post(url + "/api/v1/samples", data=big, headers={
                        **free, "Content-Type": "application/json"}) as r:
                    status = r.status
            else:
                if len(slow) < 3:
                    t = asyncio.create_task(asyncio.to_thread(_slow_body, url, 30.0))
                    slow.add(t)
                    t.add_done_callback(slow.discard)
                status = 0
        except (aiohttp.ClientError, TimeoutError) as exc:
            status = type(exc).__name__  # type: ignore[assignment]
        if status:
            key = f"{kind}:{status}"
            counts[key] = counts.get(key, 0) + 1
        await asyncio.sleep(0.25)
    for t in list(slow):
        with contextlib.suppress(Exception):
            await t


async def watch_rss(pid: int, until: float, course: list[float]) -> None:
    """The collector's RSS every 30 s: whether it levels off or keeps
    climbing shows here, not in two end points."""
    while time.time() < until:
        await asyncio.sleep(min(30.0, max(0.0, until - time.time())))
        course.append(rss_mb(pid))


def scrape(text: str) -> tuple[dict[str, float], float]:
    refused = {m.group(1): float(m.group(2)) for m in re.finditer(
        r'^qosmon_collector_requests_rejected_total\{reason="([^"]+)"\} ([0-9.e+]+)$', text,
        re.M)}
    lag = re.search(r"^qosmon_collector_tick_lag_max_seconds ([0-9.e+-]+)$", text, re.M)
    return refused, float(lag.group(1)) if lag else float("nan")


async def run(minutes: float, tmp: Path, store_threads: int | None) -> dict[str, Any]:
    db = tmp / "soak.db"
    store = SqliteStore(db)
    now = time.time()
    store.put_show(Show(show_id=SHOW, start_ts=now - 60, planned_end_ts=now + minutes * 60 + 600,
                        regions=REGIONS))
    store.close()
    cfg = tmp / "collector.toml"
    write_config(cfg, db, store_threads)
    proc = CollectorProcess(cfg)
    probes = Probes()
    counts: dict[str, int] = {}
    rss_course: list[float] = []
    try:
        await asyncio.sleep(2.0)
        rss_start = rss_mb(proc.pid)
        until = time.time() + minutes * 60.0
        conn = aiohttp.TCPConnector(limit=200)
        async with aiohttp.ClientSession(connector=conn,
                                         timeout=aiohttp.ClientTimeout(total=30)) as http:
            await asyncio.gather(
                *(probes.run_one(http, proc.url, i, until) for i in range(PROBES)),
                hostile(http, proc.url, until, counts),
                watch_rss(proc.pid, until, rss_course),
            )
            rss_end = rss_mb(proc.pid)
            text = ""
            for _ in range(30):  # open reads are rate-limited per address
                async with http.get(proc.url + "/metrics") as r:
                    if r.status == 200:
                        text = await r.text()
                        break
                await asyncio.sleep(1.0)
        refused, tick_lag = scrape(text)
    finally:
        err = proc.stop()
    if "Traceback" in err:
        print(err[-3000:], file=sys.stderr)
    store = SqliteStore(db)
    stored = store.count_probe_samples(SHOW)
    store.close()
    lat = sorted(probes.latencies_ms)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
    return {
        "minutes": minutes, "probes": PROBES,
        "rss_start_mb": rss_start, "rss_end_mb": rss_end, "rss_every_30s_mb": rss_course,
        "p50_ack_ms": round(statistics.median(lat), 1) if lat else None,
        "p99_ack_ms": round(p99, 1),
        "acked": probes.acked, "stored": stored,
        "probe_failures": probes.failures,
        "refused": {k: int(v) for k, v in sorted(refused.items())},
        "hostile_answers": dict(sorted(counts.items())),
        "max_tick_lag_s": round(tick_lag, 3),
        "traceback_in_log": "Traceback" in err,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--store-threads", type=int, default=None,
                    help="the collector's store_threads (default: its own default, 16); "
                         "each reading thread keeps its own SQLite page cache")
    args = ap.parse_args()
    if not args.minutes > 0:
        print("--minutes must be > 0", file=sys.stderr)
        return 2
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="qosmon-soak-") as tmp:
        out = asyncio.run(run(args.minutes, Path(tmp), args.store_threads))
    out["load_average_start"] = round(load0, 1)
    out["load_average_end"] = round(os.getloadavg()[0], 1)
    print(f"{PROBES} probes at 1 Hz + hostile client, {args.minutes:g} min, "
          f"cpus={os.cpu_count()}, load {load0:.1f} -> {out['load_average_end']:.1f}")
    print(f"collector RSS {out['rss_start_mb']} MB -> {out['rss_end_mb']} MB "
          f"({out['rss_end_mb'] / out['rss_start_mb']:.2f}x); every 30 s: "
          f"{out['rss_every_30s_mb']}")
    print(f"acks p50 {out['p50_ack_ms']} ms, p99 {out['p99_ack_ms']} ms; acked {out['acked']}, "
          f"stored {out['stored']} ({'equal' if out['acked'] == out['stored'] else 'DIFFERENT'})")
    print(f"refused by the collector: {out['refused']}")
    print(f"hostile answers seen: {out['hostile_answers']}")
    print(f"live analysis tick: worst lag {out['max_tick_lag_s']} s")
    print(json.dumps(out))
    return 0 if out["acked"] == out["stored"] and not out["traceback_in_log"] else 1


if __name__ == "__main__":
    sys.exit(main())
