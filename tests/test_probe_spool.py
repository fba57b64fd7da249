"""The probe's spool under faults: stray files at start-up, a folder the
disk will not write to, batches the collector refuses for good."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from probes.spool import Spool
from qosmon.model import ConnectionState, ProbeSample

T0 = 1_700_000_000.0


def samples(n: int, t0: float = T0) -> list[ProbeSample]:
    return [ProbeSample(ts=t0 + i, show_id="s", stream_id="m", probe_id="p1", region="SG",
                        state=ConnectionState.CONNECTED) for i in range(n)]


def test_start_up_skips_stray_files_and_keeps_real_batches(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Finding: a stray file name in the spool folder crashed start-up.
    first = Spool("p1", 1000, tmp_path)
    kept = first.add(samples(3))
    (tmp_path / "notes.batch.json").write_text("{}")
    (tmp_path / "x-y.batch.json").write_text("{}")
    (tmp_path / "README").write_text("hello")
    (tmp_path / "000000000007-cutoff-abcdefgh.batch.json.tmp").write_text("{")
    (tmp_path / "000000000008-garbled-abcdefgh.batch.json").write_text("not json")
    (tmp_path / "subdir").mkdir()
    with caplog.at_level(logging.WARNING, logger="probes.spool"):
        again = Spool("p1", 1000, tmp_path)
    assert [b.batch_id for b in again.batches()] == [kept.batch_id]
    assert "skipping notes.batch.json: not a spool file name" in caplog.text
    assert "skipping README" in caplog.text
    assert not list(tmp_path.glob("*.tmp"))  # an unfinished write is removed
    assert (tmp_path / "000000000008-garbled-abcdefgh.batch.bad").exists()
    # New batches are numbered after the batches found, so order holds.
    new = again.add(samples(1))
    names = sorted(p.name for p in tmp_path.glob("*.batch.json") if p.name[0] == "0")
    assert [n.split("-", 1)[1] for n in names] == [
        f"{kept.batch_id}.batch.json", f"{new.batch_id}.batch.json"]


def test_a_disk_that_refuses_writes_holds_batches_in_memory_bounded(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    spool = Spool("p1", 1000, spool_dir, memory_max_samples=25)
    spool.add(samples(5))
    shutil.rmtree(spool_dir)  # the folder is gone: every write fails
    for k in range(10):
        spool.add(samples(10, T0 + 100 * k))
    assert spool.error is not None and "spool write failed" in spool.error
    # Memory holds at most 25 samples; the on-disk batch is still queued.
    assert spool.memory_samples <= 25 and spool.samples == 5 + spool.memory_samples
    assert spool.dropped_total == 5 + 10 * 10 - spool.samples
    spool_dir.mkdir()
    batch = spool.add(samples(1))
    assert spool.error is None and list(spool_dir.glob("*.batch.json"))
    # Every loss is carried in a batch still to be sent, not silent.
    assert batch.dropped_samples > 0
    assert sum(b.dropped_samples for b in spool.batches()) == spool.dropped_total


def test_set_aside_moves_the_batch_out_of_the_queue_and_keeps_a_bounded_few(
    tmp_path: Path,
) -> None:
    spool = Spool("p1", 1000, tmp_path, refused_max_files=2)
    batches = [spool.add(samples(1, T0 + i)) for i in range(4)]
    for b in batches[:3]:
        spool.set_aside(b)
    assert spool.oldest() is batches[3] and spool.refused_total == 3
    refused = sorted(p.name for p in (tmp_path / "refused").iterdir())
    assert len(refused) == 2 and batches[2].batch_id in refused[-1]
    # Set-aside batches are not loaded again at start-up.
    assert [b.batch_id for b in Spool("p1", 1000, tmp_path).batches()] == [
        batches[3].batch_id]
