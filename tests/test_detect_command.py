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


def test_detect_scores_a_large_file_and_marks_the_change_onset(tmp_path: Path) -> None:
    rnd = random.Random(1)
    f = tmp_path / "series.csv"
    with f.open("w") as fh:
        fh.write("timestamp,value\n")
        for i in range(100_000):
            drop = -300 if 60_000 <= i < 60_300 else 0
            v = 1000 + 10 * math.sin(i / 500) + rnd.gauss(0, 3) + drop
            fh.write(f"{1_700_000_000 + i},{v:.3f}\n")
    res = qosmon("detect", str(f))
    assert res.returncode == 0, res.stderr
    rows = list(csv.reader(io.StringIO(res.stdout)))
    assert rows[0] == ["timestamp", "value", "anomaly_score", "expected", "anomalous"]
    assert len(rows) == 100_001
    scores = [float(r[2]) for r in rows[1:]]
    assert all(0 <= s <= 1 for s in scores)
    onsets = [i for i, s in enumerate(scores) if s > 0.9]
    assert len(onsets) == 1 and 60_000 <= onsets[0] <= 60_006
    assert float(rows[1 + onsets[0]][3]) == pytest.approx(1000, rel=0.03)  # expected level
    assert all(s == 0 for s in scores[:60_000])  # no noisy point flagged


def test_detect_has_no_look_ahead(tmp_path: Path) -> None:
    rnd = random.Random(2)
    values = [rnd.gauss(10, 1) * (0.5 if 200 <= i < 230 else 1) for i in range(300)]
    full, part = tmp_path / "full.csv", tmp_path / "part.csv"
    full.write_text("timestamp,value\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    part.write_text("timestamp,value\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values[:210])))
    a = qosmon("detect", str(full)).stdout.splitlines()
    b = qosmon("detect", str(part)).stdout.splitlines()
    assert a[: len(b)] == b
    assert any(line.split(",")[2] == "1.00" for line in b)


def test_detect_scores_a_clock_that_steps_back_in_arrival_order(tmp_path: Path) -> None:
    # A monitoring export whose clock stepped back an hour once: every row is
    # scored, in the order it came, and the step is noted, not refused.
    rows = [(1_700_000_000 + i - (3600 if i >= 150 else 0), 500.0 + (i % 3)) for i in range(300)]
    rows[250:] = [(t, v * 0.5) for t, v in rows[250:]]
    f = tmp_path / "stepped.csv"
    f.write_text("timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in rows))
    res = qosmon("detect", "--kind", "level", str(f))
    assert res.returncode == 0, res.stderr
    out = list(csv.reader(io.StringIO(res.stdout)))[1:]
    assert len(out) == 300 and [r[0] for r in out] == [str(t) for t, _ in rows]
    onsets = [i for i, r in enumerate(out) if r[2] == "1.00"]
    assert len(onsets) == 1 and 250 <= onsets[0] <= 256
    assert "1 go back in time" in res.stderr and "scored in arrival order" in res.stderr


def test_detect_skips_blanks_and_garbage_with_a_count(tmp_path: Path) -> None:
    lines = ["timestamp,value"]
    for i in range(200):
        ts = 1_700_000_000 + i // 2  # every timestamp twice
        if i % 50 == 7:
            lines.append(f"{ts},")
        elif i % 50 == 9:
            lines.append(f"{ts},n/a")
        else:
            lines.append(f"{ts},{40 + (i % 5)}")
    lines.append("2024-05-01T10:00:00Z,41")  # ISO among Unix seconds: fine
    f = tmp_path / "messy.csv"
    f.write_text("\n".join(lines) + "\n")
    res = qosmon("detect", str(f))
    assert res.returncode == 0, res.stderr
    out = list(csv.reader(io.StringIO(res.stdout)))[1:]
    assert len(out) == 201 - 8
    assert "skipped 8 rows (4 empty value, 4 not a number; first at line 9)" in res.stderr
    assert "repeat a timestamp" in res.stderr
    # Whole numbers >= 0: counted as events per row, nothing flagged.
    assert all(r[2] == "0.00" for r in out)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("time,v\n1,2\n", "line 1: header must name columns timestamp and value"),
        ("", "empty file"),
        ("timestamp,value\n1,\n2,x\n", "no row with a number in column value"),
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


def test_localize_20k_leaves_4_dims(tmp_path: Path) -> None:
    f = tmp_path / "leaves.csv"
    cause = _leaves(f)
    res = qosmon("localize", str(f))
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
        ("cdn,real_a,predict_a,real_b\nc1,1,2,3\n", "or real_a, predict_a, real_b and predict_b"),
        ("cdn,real_a,predict_a,real_b,predict_b\nc1,1,2,x,3\n",
         "line 2, column real_b: not a number: 'x'"),
    ],
)
def test_localize_bad_input(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(content)
    res = qosmon("localize", str(f))
    assert res.returncode == 2
    assert message in res.stderr
    assert "Traceback" not in res.stderr
