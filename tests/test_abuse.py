"""Faults and abuse against real ``qosmon serve`` processes on loopback: one
case per finding of the hardening review, each naming the finding, the
request or fault, and the answer expected (status and message, or the
behaviour: nothing lost, memory bounded). Loops are bounded; no timing is
asserted, only order and outcome."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import resource
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from probes.uplink import CollectorUplink
from qosmon.diagnosis.business import RegionBusiness
from qosmon.diagnosis.config import DiagnosisConfig
from qosmon.model import BusinessSample, ProbeLabels, ProbeSample, Show
from qosmon.store.sqlite import SqliteStore
from tests.serve_process import CollectorProcess

FEED = "abuse-feed-token-0123456789abcdef"
SG1 = "abuse-probe-token-sg-1-0123456789"
FREE = "abuse-probe-token-free-0123456789"


def _config(tmp: Path, db: Path, **limits: Any) -> Path:
    lim = {"body_timeout_s": 1.5, "header_timeout_s": 1.5, "series_max_points": 500,
           "series_concurrency": 1, "store_timeout_s": 8.0, **limits}
    cfg = tmp / "collector.toml"
    cfg.write_text(
        'host = "127.0.0.1"\nport = 0\n'
        f'store = "sqlite://{db}"\n'
        f'feed_tokens = ["{FEED}"]\n'
        "[rate_limit]\nrequests_per_s = 10000\nburst = 10000\n"
        "open_reads_per_s = 1\nopen_reads_burst = 3\n"
        "[retention]\nenabled = false\n"
        "[live]\nenabled = false\n"
        "[limits]\n" + "".join(f"{k} = {v!r}\n" for k, v in lim.items())
        + f'[[probes]]\nprobe_id = "sg-1"\ntoken = "{SG1}"\n'
        'labels = { region = "SG", isp = "singtel", edge_node = "sin-1" }\n'
        'shows = ["show-1"]\n'
        # A token from the environment, as under systemd or in a container.
        '[[probes]]\nprobe_id = "free-1"\ntoken_env = "ABUSE_FREE_TOKEN"\n'
    )
    return cfg


def _with_shows(db: Path) -> None:
    store = SqliteStore(db)
    for show_id in ("show-1", "show-2"):
        store.put_show(Show(show_id=show_id, start_ts=time.time() - 3600))
    store.close()


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    tmp = tmp_path_factory.mktemp("abuse")
    _with_shows(tmp / "q.db")
    proc = CollectorProcess(_config(tmp, tmp / "q.db"), env={"ABUSE_FREE_TOKEN": FREE})
    proc.db = tmp / "q.db"  # type: ignore[attr-defined]
    try:
        yield proc
    finally:
        err = proc.stop()
        assert "Traceback" not in err, err


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        yield s


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sample(ts: float | None = None, **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "ts": time.time() - 1.0 if ts is None else ts, "show_id": "show-1",
        "stream_id": "main", "probe_id": "sg-1", "region": "SG", "isp": "singtel",
        "edge_node": "sin-1", "state": "connected", "rtt_ms": 40.0,
    }
    d.update(kw)
    return d


def batch(batch_id: str, samples: list[dict[str, Any]], probe_id: str = "sg-1"
          ) -> dict[str, Any]:
    return {"batch_id": batch_id, "probe_id": probe_id, "sent_ts": time.time(),
            "samples": samples}


async def post(http: aiohttp.ClientSession, url: str, body: Any, token: str
               ) -> tuple[int, dict[str, Any]]:
    async with http.post(url, json=body, headers=auth(token)) as r:
        return r.status, await r.json()


async def metrics(http: aiohttp.ClientSession, base: str) -> str:
    for _ in range(20):  # open reads are rate-limited: wait for a token
        async with http.get(base + "/metrics") as r:
            if r.status == 200:
                return await r.text()
        await asyncio.sleep(1.0)
    raise AssertionError("/metrics kept answering 429")


# --- series reads ---------------------------------------------------------------

async def test_series_read_is_capped_and_downsampled(
    collector: CollectorProcess, http: aiohttp.ClientSession,
) -> None:
    """Finding: GET /api/v1/series had no row cap (200k samples: 6 s, 770 MB).
    Request: 3000 samples of 3 streams, read back over 1440 minutes.
    Expected: 200 with at most series_max_points (500) points, bucket_s > 0,
    and the downsampling counted in /metrics."""
    now = time.time()
    for k in range(3):
        samples = [sample(ts=now - 1000 + i, stream_id=f"s{k}", rtt_ms=float(i))
                   for i in range(1000)]
        status, _ = await post(http, collector.url + "/api/v1/samples",
                               batch(f"series-{k}-0001", samples), SG1)
        assert status == 200
    async with http.get(collector.url + "/api/v1/series",
                        params={"show_id": "show-1", "metric": "rtt_ms",
                                "minutes": "1440"}) as r:
        assert r.status == 200
        body = await r.json()
    assert 0 < len(body["points"]) <= 500 and body["bucket_s"] >= 6
    # Averages of consecutive seconds: each point lies within the range sent.
    assert all(0.0 <= p["value"] <= 999.0 for p in body["points"])
    assert 'qosmon_collector_limits_hit_total{limit="series_downsampled"}' in \
        await metrics(http, collector.url)


async def test_open_reads_are_rate_limited_per_address(
    collector: CollectorProcess, http: aiohttp.ClientSession,
) -> None:
    """Finding: open (tokenless) reads skipped the rate limiter.
    Request: 10 GET /api/v1/shows at once with no token (burst 3, 1/s).
    Expected: some 429 "too many reads from this address" with Retry-After."""
    async def one() -> tuple[int, str, str | None]:
        async with http.get(collector.url + "/api/v1/shows") as r:
            return r.status, await r.text(), r.headers.get("Retry-After")

    answers = await asyncio.gather(*(one() for _ in range(10)))
    refused = [a for a in answers if a[0] == 429]
    assert refused and len(refused) <= 10 - 1
    assert all("too many reads from this address" in t and ra for _, t, ra in refused)


# --- probe tokens and what they may claim --------------------------------------------

async def test_probe_token_is_pinned_to_its_labels_and_shows(
    collector: CollectorProcess, http: aiohttp.ClientSession,
) -> None:
    """Finding: a probe token could post for any region, ISP, edge node or
    show, and a heartbeat could relabel the probe in the fleet view.
    Requests: sg-1 (pinned to SG/singtel/sin-1 and show-1) claiming TH, another
    edge node, show-2; free-1 (not pinned) posting for a show that does not
    exist; a relabelling heartbeat. Expected: 403 naming the pin, 404 for the
    unknown show, nothing stored for any of them."""
    url = collector.url + "/api/v1/samples"
    status, body = await post(http, url, batch("pin-0001", [sample(region="TH")]), SG1)
    assert status == 403 and "pinned to region 'SG', not 'TH'" in body["error"]
    status, body = await post(http, url, batch("pin-0002", [sample(edge_node="bkk-1")]), SG1)
    assert status == 403 and "pinned to edge_node 'sin-1'" in body["error"]
    status, body = await post(http, url, batch("pin-0003", [sample(show_id="show-2")]), SG1)
    assert status == 403 and "may not post for show 'show-2'" in body["error"]
    status, body = await post(http, url, batch(
        "pin-0004", [sample(probe_id="free-1", show_id="no-such-show")], "free-1"), FREE)
    assert status == 404 and "no show 'no-such-show'" in body["error"]
    hb = {"probe": {"probe_id": "sg-1", "region": "TH"}, "ts": time.time()}
    status, body = await post(http, collector.url + "/api/v1/probes/heartbeat", hb, SG1)
    assert status == 403 and "pinned to region 'SG'" in body["error"]
    # The env-named token works, for a show that exists.
    status, _ = await post(http, url, batch(
        "pin-0005", [sample(probe_id="free-1", region="TH")], "free-1"), FREE)
    assert status == 200
    store = SqliteStore(collector.db)  # type: ignore[attr-defined]
    try:
        assert not any(store.has_batch(f"sg-1/pin-000{i}") for i in range(1, 4))
        assert not store.has_batch("free-1/pin-0004") and store.has_batch("free-1/pin-0005")
    finally:
        store.close()


async def test_reused_batch_id_with_other_content_is_409(
    collector: CollectorProcess, http: aiohttp.ClientSession,
) -> None:
    """Finding: a reused batch id with different content was answered 200
    "duplicate" and silently dropped. Request: batch "reuse-0001" sent, sent
    again unchanged, then with other samples. Expected: 200, 200 duplicate,
    409 naming the reuse."""
    url = collector.url + "/api/v1/samples"
    ts = time.time() - 5
    first = batch("reuse-0001", [sample(ts=ts, rtt_ms=10.0)])
    assert await post(http, url, first, SG1) == (200, {"stored": 1, "duplicate": False})
    assert await post(http, url, first, SG1) == (200, {"stored": 0, "duplicate": True})
    other = batch("reuse-0001", [sample(ts=ts + 1, rtt_ms=10.0)])
    status, body = await post(http, url, other, SG1)
    assert status == 409
    assert "'reuse-0001' was stored before with other content" in body["error"]


# --- times ------------------------------------------------------------------------

async def test_show_and_sample_times_are_validated(
    collector: CollectorProcess, http: aiohttp.ClientSession,
) -> None:
    """Finding: show times were not checked (end_ts=-5, start_ts=1) and samples
    from 1970 were taken. Requests: such a show, a show ending before it
    starts, one lasting a week, a sample stamped 1970. Expected: 400 naming
    the field each time."""
    now = time.time()

    async def put(show: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        async with http.put(collector.url + f"/api/v1/shows/{show['show_id']}", json=show,
                            headers=auth(FEED)) as r:
            return r.status, await r.json()

    status, body = await put({"show_id": "bad-1", "start_ts": 1.0, "end_ts": -5.0})
    assert status == 400 and body["field"] == "start_ts"
    status, body = await put({"show_id": "bad-2", "start_ts": now, "end_ts": now - 5})
    assert status == 400 and body["field"] == "end_ts"
    assert "must be after start_ts" in body["error"]
    status, body = await put({"show_id": "bad-3", "start_ts": now,
                              "planned_end_ts": now + 7 * 86400})
    assert (status, body["field"]) == (400, "planned_end_ts")
    status, body = await post(http, collector.url + "/api/v1/samples",
                              batch("time-0001", [sample(ts=1.0)]), SG1)
    assert status == 400 and body["field"] == "samples[0].ts"
    assert "older than the collector's clock" in body["error"]


def test_business_history_in_the_engine_is_pruned() -> None:
    """Finding: per-second business history in the engine was never pruned.
    Fault: an hour of per-second business figures for one region, history
    kept 30 minutes. Expected: the engine keeps at most history_s (+ a
    minute) of seconds."""
    cfg = DiagnosisConfig.model_validate({"business": {"history_s": 1800}})
    rb = RegionBusiness("SG", cfg)
    t0 = 1_800_000_000
    for s in range(t0, t0 + 3600):
        rb.add(BusinessSample(ts=float(s), show_id="x", region="SG", viewers_online=1000,
                              orders=3))
        rb.evaluate(s)
    assert len(rb.viewers) <= cfg.business.history_s + 60
    assert len(rb.orders_total) <= cfg.business.history_s + 60


# --- slow clients -------------------------------------------------------------------

def _trickle(url: str, head: bytes, body: bytes, every_s: float, limit_s: float) -> bytes:
    """Send ``head`` and ``body``: the one that is not empty a byte every
    ``every_s`` (a non-empty ``body`` goes after its head, sent at once).
    Returns what the server answered (b"": it closed without answering)."""
    host, port = url.removeprefix("http://").split(":")
    t0 = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=limit_s) as sock:
        if body:
            sock.sendall(head)
        slow = body or head
        sock.settimeout(every_s)
        for byte in slow:
            try:
                sock.sendall(bytes([byte]))
                chunk = sock.recv(65536)
            except TimeoutError:
                chunk = None  # nothing yet: go on trickling
            except OSError:
                chunk = b""
            if chunk is not None:
                if chunk:
                    sock.settimeout(2.0)
                    with contextlib.suppress(OSError):
                        while more := sock.recv(65536):
                            chunk += more
                return chunk
            if time.monotonic() - t0 > limit_s:
                break
        return b"(still open)"


async def test_trickled_headers_and_body_are_cut_off(collector: CollectorProcess) -> None:
    """Finding: a client trickling headers or body at 1 byte/s was served.
    Requests: headers a byte at a time, never finished; a POST whose body
    of 2000 bytes comes a byte at a time. Expected: the first connection
    closed by the server (header_timeout_s 1.5), the second answered 408
    "body not received within 1.5 s", both long before the trickle ends."""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    got = await asyncio.to_thread(_trickle, collector.url, head, b"", 0.1, 25.0)
    assert got == b""  # closed without an answer before the trickle ended
    body = b"x" * 2000
    head = (b"POST /api/v1/samples HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + SG1.encode() + b"\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    got = await asyncio.to_thread(_trickle, collector.url, head, body, 0.1, 25.0)
    assert got.startswith(b"HTTP/1.1 408") and b"body not received within 1.5 s" in got


async def test_csv_import_is_parsed_off_the_event_loop(
    collector: CollectorProcess, http: aiohttp.ClientSession,
) -> None:
    """Finding: a 200k-row CSV import parsed on the event loop (/healthz took
    1.2 s). Request: a 200 000-row import, and /healthz asked while it runs.
    Expected: the import is stored (200 000) and /healthz answers before it."""
    now = int(time.time())
    rows = "\n".join(f"{now - 200_000 + i},ID,{1000 + i % 7},{i % 3}" for i in range(200_000))
    csv_body = ("ts,region,viewers_online,orders\n" + rows + "\n").encode()
    order: list[str] = []

    async def import_csv() -> None:
        async with http.post(collector.url + "/api/v1/business/import",
                             params={"show_id": "show-2"}, data=io.BytesIO(csv_body),
                             headers={**auth(FEED), "Content-Type": "text/csv"}) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["stored"] == 200_000
        order.append("import")

    async def health_while_importing() -> None:
        await asyncio.sleep(0.3)  # the body is on its way
        async with http.get(collector.url + "/healthz") as r:
            assert r.status in (200, 429)
        order.append("healthz")

    await asyncio.gather(import_csv(), health_while_importing())
    assert order == ["healthz", "import"]


# --- the store --------------------------------------------------------------------------

@pytest.mark.slow
async def test_store_call_times_out_and_nothing_acknowledged_is_lost(
    collector: CollectorProcess, http: aiohttp.ClientSession,
) -> None:
    """Finding: store calls had no timeout. Fault: another process holds the
    database's write lock. Request: a batch. Expected: 503 "store
    unavailable" after store_timeout_s (8 s here), not a hang; once the lock is gone
    the retry is stored exactly once."""
    lock = sqlite3.connect(collector.db, isolation_level=None, timeout=5)  # type: ignore[attr-defined]
    lock.execute("BEGIN IMMEDIATE")
    b = batch("locked-0001", [sample(stream_id=f"l{i}") for i in range(5)])
    try:
        status, body = await post(http, collector.url + "/api/v1/samples", b, SG1)
    finally:
        lock.execute("COMMIT")
        lock.close()
    assert status == 503 and "store unavailable" in body["error"]
    for _ in range(20):  # the writer may still hold the first try: retry
        status, body = await post(http, collector.url + "/api/v1/samples", b, SG1)
        if status == 200:
            break
        await asyncio.sleep(0.5)
    assert status == 200
    store = SqliteStore(collector.db)  # type: ignore[attr-defined]
    try:
        stored = [s for s in store.probe_samples("show-1") if s.stream_id.startswith("l")]
    finally:
        store.close()
    assert len(stored) == 5


def _file_size_cap(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


async def test_full_disk_fails_batches_and_the_writer_lives_on(tmp_path: Path) -> None:
    """Finding: one failing group killed the SQLite writer thread; later writes
    waited forever and /healthz said ok. Fault: the collector's files may not
    grow past 400 kB (RLIMIT_FSIZE: writes fail as on a full disk), then the
    limit is lifted. Expected: 503 while full and /healthz 503
    "unhealthy" naming store_failing; afterwards 200 again, /healthz ok, and every batch
    acknowledged is stored (the refused ones on retry): nothing lost."""
    db = tmp_path / "full.db"
    _with_shows(db)
    proc = CollectorProcess(_config(tmp_path, db), env={"ABUSE_FREE_TOKEN": FREE},
                            preexec=lambda: _file_size_cap(400_000))
    acked: set[str] = set()
    refused: list[dict[str, Any]] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            url = proc.url + "/api/v1/samples"
            now = time.time()
            for i in range(200):
                b = batch(f"full-{i:05d}", [sample(ts=now - 60 + j / 100, stream_id=f"f{i}",
                                                   error="e" * 400) for j in range(20)])
                status, _ = await post(http, url, b, SG1)
                if status == 200:
                    acked.add(b["batch_id"])
                else:
                    assert status == 503
                    refused.append(b)
                    if len(refused) >= 3:
                        break
            assert refused, "the file size cap was never reached"
            async with http.get(proc.url + "/healthz") as r:
                health = await r.json()
                assert r.status == 503 and health["status"] == "unhealthy"
                assert "store_failing" in health["problems"]
                assert health["store"]["writer_alive"] and health["store"]["last_error"]
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE,
                             (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            for b in refused:
                status, _ = await post(http, url, b, SG1)
                assert status == 200
                acked.add(b["batch_id"])
            async with http.get(proc.url + "/healthz") as r:
                assert r.status == 200 and (await r.json())["store"]["ok"]
    finally:
        err = proc.stop()
    assert "Traceback" not in err.split("write failed")[0]
    store = SqliteStore(db)
    try:
        assert all(store.has_batch(f"sg-1/{b}") for b in acked)
        assert store.count_probe_samples("show-1") == 20 * len(acked)
    finally:
        store.close()


# --- labels -------------------------------------------------------------------------

async def test_labels_with_invisible_characters_are_refused(
    collector: CollectorProcess, http: aiohttp.ClientSession,
) -> None:
    """Finding: labels accepted bidi overrides and other invisible characters
    (spoofing in alerts and reports). Requests: a sample whose stream id has
    a right-to-left override, a show whose region has a zero-width space.
    Expected: 400 naming the field; letters of any script still pass."""
    status, body = await post(http, collector.url + "/api/v1/samples",
                              batch("label-0001", [sample(stream_id="main\u202e1")]), SG1)
    assert status == 400 and body["field"] == "samples[0].stream_id"
    show = {"show_id": "label-show", "start_ts": time.time(), "regions": ["S\u200bG"]}
    async with http.put(collector.url + "/api/v1/shows/label-show", json=show,
                        headers=auth(FEED)) as r:
        body = await r.json()
        assert r.status == 400 and body["field"] == "regions[0]"
    show["regions"] = ["東南亞 SG"]
    async with http.put(collector.url + "/api/v1/shows/label-show", json=show,
                        headers=auth(FEED)) as r:
        assert r.status == 200


# --- the probe's side ---------------------------------------------------------------

async def test_probe_sets_aside_a_batch_refused_for_good_and_goes_on(
    collector: CollectorProcess, tmp_path: Path,
) -> None:
    """Finding: a spooled batch answered 403 was retried forever at the head of
    the queue; a stray file in the spool folder crashed start-up. Fault: a
    stray file in the spool; a batch claiming a region the token is not
    pinned to, then good ones. Expected: start-up skips the file, the bad
    batch is set aside under refused/, the good ones are stored."""
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "notes.batch.json").write_text("not a batch")
    up = CollectorUplink(collector.url, SG1, ProbeLabels(probe_id="sg-1", region="SG"),
                         spool_dir=spool, batch_interval_s=0.05, retry_max_s=0.2)

    def ps(**kw: Any) -> ProbeSample:
        return ProbeSample.model_validate(sample(**kw))

    await up.put(ps(region="TH", stream_id="aside"))
    up._flush_pending()
    for i in range(3):
        await up.put(ps(stream_id=f"after-{i}"))
    deadline = time.monotonic() + 20
    while (up.sent_samples < 3 or up.rejected_samples < 1) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await up.aclose()
    assert (up.rejected_samples, up.sent_samples) == (1, 3)
    assert len(list((spool / "refused").glob("*.batch.json"))) == 1
    assert (spool / "notes.batch.json").exists()  # skipped, not deleted


_PROBE_ON_A_FULL_DISK = """
import asyncio, json, resource, sys, time
from pathlib import Path
from probes.uplink import CollectorUplink
from qosmon.model import ProbeLabels, ProbeSample

url, token, spool = sys.argv[1], sys.argv[2], Path(sys.argv[3])

def sample(i):
    return ProbeSample(ts=time.time() - 1, show_id="show-1", stream_id=f"disk-{i}",
                       probe_id="sg-1", region="SG", isp="singtel", edge_node="sin-1",
                       state="connected")

async def main():
    up = CollectorUplink(url, token, ProbeLabels(probe_id="sg-1", region="SG", isp="singtel",
                         edge_node="sin-1"), spool_dir=spool, spool_memory_max_samples=50,
                         batch_interval_s=0.05, heartbeat_interval_s=0.2, retry_max_s=0.2)
    # Files may no longer grow: every spool write fails as on a full disk.
    resource.setrlimit(resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))
    for i in range(30):
        await up.put(sample(i))
        await asyncio.sleep(0.01)
    while up.sent_samples < 30:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.6)  # heartbeats carry the spool's error meanwhile
    error = up.spool_error
    # The collector away too: memory holds at most 50 samples.
    up.url = "http://127.0.0.1:9"
    for i in range(30, 530):
        await up.put(sample(i))
        await asyncio.sleep(0.002)
    await asyncio.sleep(0.3)
    memory = up.spool.memory_samples
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    up.url = url
    await up.put(sample(999))
    while len(up.spool):
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.6)
    print(json.dumps({"error": error, "memory": memory, "sent": up.sent_samples,
                      "dropped": up.spool.dropped_total, "error_after": up.spool_error,
                      "task_failures": up.task_failures}))
    await up.aclose()

asyncio.run(main())
"""


async def test_probe_on_a_full_disk_keeps_sending_bounded_and_says_so(
    collector: CollectorProcess, http: aiohttp.ClientSession, tmp_path: Path,
) -> None:
    """Finding: on a full disk the uploader task died silently while
    heartbeats kept the probe "up", and samples piled up in memory without
    bound. Fault: a probe process whose files may not grow (RLIMIT_FSIZE),
    first with the collector up, then down. Expected: samples still reach
    the collector, the fleet view shows the probe's spool_error, memory holds
    at most spool_memory_max_samples (the rest counted as dropped), and
    after the disk recovers everything left is sent and the error clears."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _PROBE_ON_A_FULL_DISK, collector.url, SG1,
        str(tmp_path / "spool"), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ,
             "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    seen_error = ""
    deadline = time.monotonic() + 60
    while proc.returncode is None and time.monotonic() < deadline:
        async with http.get(collector.url + "/api/v1/fleet") as r:
            if r.status == 200:
                fleet = await r.json()
                probe = next(p for p in fleet["probes"] if p["probe_id"] == "sg-1")
                seen_error = seen_error or probe["spool_error"]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 1.0)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert "spool write failed" in result["error"] and "spool write failed" in seen_error
    # The bound holds to within one batch (a batch is never split).
    assert result["memory"] <= 100 and result["dropped"] >= 500 - 100
    assert result["sent"] == 30 + (530 - 30 - result["dropped"]) + 1
    assert result["error_after"] == "" and result["task_failures"] == 0
