"""``qosmon detect`` and ``qosmon localize`` as a user runs them."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def qosmon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qosmon.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def test_detect_scores_a_large_file_fast_and_flags_the_spike(tmp_path: Path) -> None:
    rnd = random.Random(1)
    f = tmp_path / "series.csv"
    with f.open("w") as fh:
        fh.write("timestamp,value\n")
        for i in range(100_000):
            v = 100 + 10 * math.sin(i / 500) + rnd.gauss(0, 1) + (40 if i == 60_000 else 0)
            fh.write(f"{1_700_000_000 + i},{v:.3f}\n")
    t0 = time.monotonic()
    res = qosmon("detect", str(f))
    elapsed = time.monotonic() - t0
    assert res.returncode == 0, res.stderr
    assert elapsed < 10
    rows = list(csv.reader(io.StringIO(res.stdout)))
    assert rows[0] == ["timestamp", "value", "anomaly_score"]
    assert len(rows) == 100_001
    scores = [float(r[2]) for r in rows[1:]]
    assert all(0 <= s <= 1 for s in scores)
    assert scores[60_000] > 0.9
    assert sum(s > 0.5 for s in scores) < 20


def test_detect_has_no_look_ahead(tmp_path: Path) -> None:
    rnd = random.Random(2)
    values = [rnd.gauss(10, 1) for _ in range(300)]
    full, part = tmp_path / "full.csv", tmp_path / "part.csv"
    full.write_text("timestamp,value\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    part.write_text("timestamp,value\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values[:150])))
    a = qosmon("detect", str(full)).stdout.splitlines()
    b = qosmon("detect", str(part)).stdout.splitlines()
    assert a[: len(b)] == b


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("timestamp,value\n1,2\n2,abc\n", "line 3, column value: not a number: 'abc'"),
        ("timestamp,value\n1,2\nyesterday,3\n", "line 3, column timestamp: not a time"),
        ("time,v\n1,2\n", "line 1: header must name columns timestamp and value"),
        ("timestamp,value\n5,1\n4,1\n", "line 3, column timestamp: goes back in time"),
        ("", "empty file"),
    ],
)
def test_detect_bad_input(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(content)
    res = qosmon("detect", str(f))
    assert res.returncode == 2
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_detect_missing_file(tmp_path: Path) -> None:
    res = qosmon("detect", str(tmp_path / "nope.csv"))
    assert res.returncode == 2 and "cannot read" in res.stderr


def test_detect_accepts_iso_timestamps(tmp_path: Path) -> None:
    f = tmp_path / "iso.csv"
    f.write_text("timestamp,value\n2024-05-01T10:00:00Z,1\n2024-05-01T10:00:01Z,1.1\n")
    res = qosmon("detect", str(f))
    assert res.returncode == 0
    assert res.stdout.splitlines()[1].startswith("2024-05-01T10:00:00Z,1,")


def _leaves(path: Path, n_target: int = 20_000) -> dict[str, str]:
    rnd = random.Random(3)
    dims = ["region", "isp", "edge_node", "device"]
    values = [
        [f"r{i}" for i in range(10)],
        [f"i{i}" for i in range(10)],
        [f"e{i}" for i in range(20)],
        [f"d{i}" for i in range(10)],
    ]
    combos = list(itertools.product(*values))
    rnd.shuffle(combos)
    cause = {"region": "r3", "device": "d1"}
    with path.open("w") as fh:
        fh.write(",".join(dims) + ",real,predict\n")
        for combo in combos[:n_target]:
            leaf = dict(zip(dims, combo, strict=True))
            p = rnd.uniform(10, 1000)
            r = p * 0.5 if all(leaf[k] == v for k, v in cause.items()) else p * rnd.gauss(1, 0.03)
            fh.write(",".join(combo) + f",{r:.2f},{p:.2f}\n")
    return cause


def test_localize_20k_leaves_4_dims_fast(tmp_path: Path) -> None:
    f = tmp_path / "leaves.csv"
    cause = _leaves(f)
    t0 = time.monotonic()
    res = qosmon("localize", str(f))
    assert time.monotonic() - t0 < 5
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == [cause]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("region,real,predict\nID,1,2\nTH,x,2\n", "line 3, column real: not a number: 'x'"),
        ("region,real,predict\nID,1,-2\n", "line 2, column predict: must be a finite number >= 0"),
        ("region,real\nID,1\n", "line 1: header must have columns real and predict"),
        ("region,real,predict\nID,1\n", "line 2: 2 columns, header has 3"),
        ("real,predict\n1,2\n", "no dimension columns"),
    ],
)
def test_localize_bad_input(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(content)
    res = qosmon("localize", str(f))
    assert res.returncode == 2
    assert message in res.stderr
    assert "Traceback" not in res.stderr
