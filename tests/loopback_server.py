"""Starting and stopping a server binary on loopback for the tests and
benchmarks: a free port, a wait until it answers (or exits, with its log
tail in the error), and a stop that escalates to SIGKILL."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, name: str,
               timeout_s: float) -> None:
    """Poll ``url`` until it answers 200; RuntimeError (with the log's
    tail) when ``proc`` exits first or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} not ready in {timeout_s:.0f} s: "
                               f"{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)


def stop_process(proc: subprocess.Popen[bytes] | subprocess.Popen[str],
                 grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it is still there after ``grace_s``. What it
    still writes to a pipe is read meanwhile, so a full pipe cannot hold
    its exit up."""
    proc.terminate()
    try:
        proc.communicate(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)
