"""A real VictoriaMetrics server (Debian package ``victoria-metrics``) for
tests and benchmarks: loopback only, its own temporary data directory,
always stopped.

It speaks the InfluxDB v2 write API that influxdb-client uses; reads go
through ``/api/v1/export``. ``-search.latencyOffset=0s`` so freshly written
points are visible at once (after ``flush()``).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.loopback_server import free_port, stop_process, wait_ready

BINARY = "victoria-metrics"


@dataclass
class VictoriaMetrics:
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]

    def flush(self) -> None:
        """Make everything written so far searchable."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10) as r:
            r.read()

    def export(self, match: str) -> list[dict[str, Any]]:
        q = urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{q}", timeout=30) as r:
            return [json.loads(line) for line in r.read().splitlines() if line.strip()]


def available() -> bool:
    return shutil.which(BINARY) is not None


# The marks of a test module that runs against this server.
NEEDED = [
    pytest.mark.server,
    pytest.mark.skipif(not available(),
                       reason="victoria-metrics not installed (apt install victoria-metrics)"),
]


@contextlib.contextmanager
def victoria_metrics(data_dir: Path | None = None, timeout_s: float = 20.0) -> Iterator[
    VictoriaMetrics
]:
    if not available():
        raise RuntimeError(f"{BINARY} is not installed (Debian package victoria-metrics)")
    own_dir = data_dir is None
    path = Path(tempfile.mkdtemp(prefix="qosmon-vm-")) if data_dir is None else data_dir
    path.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = (path / "vm.log").open("wb")
    proc = subprocess.Popen(
        [
            BINARY,
            f"-httpListenAddr=127.0.0.1:{port}",
            f"-storageDataPath={path / 'data'}",
            "-search.latencyOffset=0s",
            "-retentionPeriod=100y",
            "-loggerLevel=WARN",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, f"{url}/health", path / "vm.log", "victoria-metrics", timeout_s)
        yield VictoriaMetrics(url=url, data_dir=path, proc=proc)
    finally:
        stop_process(proc)
        log.close()
        if own_dir:
            shutil.rmtree(path, ignore_errors=True)
