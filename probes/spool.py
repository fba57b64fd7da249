"""Batches waiting for the collector, on local disk (or in memory), bounded.

Each batch is written once, with its id, and sent as written until the
collector takes it, so a retry carries the same ``batch_id`` and the collector
can drop the duplicate. When the spool holds more than ``max_samples``, the
oldest batches go (whole batches: the bound is exact to within one batch) and
their sample count is carried in the ``dropped_samples`` of the next batch
written, so the loss is reported, not silent.

On disk, a batch file is fsynced and so is the folder after the rename that
makes it visible, so a batch survives a power cut, not only a crash (a
removal is not synced: if it is lost, the batch is sent again and the
collector answers "duplicate").

When the disk refuses a write (full, read-only, quota), the batch is kept
in memory instead, up to ``memory_max_samples`` (the oldest go first,
counted as above), and ``error`` says what failed, for the probe's
heartbeat; the next write that succeeds clears it.

A batch the collector refuses for good (it will never take it, however
often it is sent) is set aside: moved to ``refused/`` in the spool folder,
of which the newest ``refused_max_files`` are kept, so it can be looked at,
and the queue moves on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import uuid
from collections import deque
from pathlib import Path

from qosmon.model import ProbeBatch, ProbeSample

log = logging.getLogger(__name__)

# <sequence>-<batch id>.batch.json; anything else in the folder is not ours.
_BATCH_FILE = re.compile(r"^(\d{12})-([A-Za-z0-9_.:-]{8,64})\.batch\.json$")
REFUSED_DIR = "refused"
# A batch file is at most 10 000 samples; anything far bigger is not one.
_MAX_FILE_BYTES = 32 * 1024 * 1024


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    def __init__(
        self,
        probe_id: str,
        max_samples: int,
        directory: Path | None = None,
        memory_max_samples: int = 10_000,
        refused_max_files: int = 100,
    ) -> None:
        self.probe_id = probe_id
        self.max_samples = max_samples
        self.memory_max_samples = memory_max_samples
        self.refused_max_files = refused_max_files
        self.directory = directory
        self._queue: deque[tuple[str, ProbeBatch]] = deque()  # (file name or "", batch)
        self._samples = 0
        self._memory_samples = 0  # of batches held in memory while a disk is set
        self._carry_dropped = 0  # dropped since the last batch written
        self.dropped_total = 0
        self.refused_total = 0
        self._seq = 0
        # What the disk last refused; None while writes succeed.
        self.error: str | None = None
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._load()

    def _load(self) -> None:
        assert self.directory is not None
        for path in sorted(self.directory.iterdir()):
            if not path.is_file():
                continue
            if path.name.endswith(".tmp"):
                # A write cut off before its rename: never acknowledged to
                # anyone, and the samples are in no other batch either.
                log.warning("spool: removing unfinished %s", path.name)
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            m = _BATCH_FILE.match(path.name)
            if m is None:
                if not path.name.endswith(".bad"):
                    log.warning("spool: skipping %s: not a spool file name", path.name)
                continue
            try:
                if path.stat().st_size > _MAX_FILE_BYTES:
                    raise ValueError(f"larger than {_MAX_FILE_BYTES} bytes")
                batch = ProbeBatch.model_validate_json(path.read_bytes())
            except (OSError, ValueError) as exc:
                log.warning("spool: unreadable %s (%s), set aside", path.name,
                            str(exc).splitlines()[0])
                with contextlib.suppress(OSError):
                    path.rename(path.with_suffix(".bad"))
                continue
            self._queue.append((path.name, batch))
            self._samples += len(batch.samples)
            self._seq = max(self._seq, int(m.group(1)) + 1)
        if self._queue:
            log.info("spool: %d batches (%d samples) left from before",
                     len(self._queue), self._samples)

    @property
    def samples(self) -> int:
        return self._samples

    @property
    def memory_samples(self) -> int:
        """Samples held in memory because the disk refused them."""
        return self._memory_samples

    def __len__(self) -> int:
        return len(self._queue)

    def _drop_oldest(self, in_memory_only: bool = False) -> bool:
        for i, (name, old) in enumerate(self._queue):
            if in_memory_only and name:
                continue
            del self._queue[i]
            self._forget(name, old)
            self._carry_dropped += len(old.samples) + old.dropped_samples
            self.dropped_total += len(old.samples)
            self._remove(name)
            return True
        return False

    def _forget(self, name: str, batch: ProbeBatch) -> None:
        self._samples -= len(batch.samples)
        if not name and self.directory is not None:
            self._memory_samples -= len(batch.samples)

    def note_dropped(self, n: int) -> None:
        """``n`` samples were lost before reaching the spool: carried in the
        next batch's ``dropped_samples`` like the spool's own drops."""
        self._carry_dropped += n
        self.dropped_total += n

    def add(self, samples: list[ProbeSample], now: float | None = None) -> ProbeBatch:
        """Write one batch of ``samples`` (with any drop count carried).
        Never raises for a disk fault: see the module docstring."""
        while self._queue and self._samples + len(samples) > self.max_samples:
            self._drop_oldest()
        # The id may only use the characters the model allows.
        raw_id = f"{self.probe_id[:20]}-{uuid.uuid4().hex}"
        batch_id = "".join(c if (c.isascii() and c.isalnum()) or c in "_.:-" else "_"
                           for c in raw_id)
        batch = ProbeBatch(
            batch_id=batch_id,
            probe_id=self.probe_id,
            sent_ts=now or time.time(),
            samples=samples,
            dropped_samples=self._carry_dropped,
        )
        self._carry_dropped = 0
        name = ""
        if self.directory is not None:
            name = self._write_file(batch)
            if not name:
                while (self._memory_samples + len(samples) > self.memory_max_samples
                       and self._drop_oldest(in_memory_only=True)):
                    pass
                self._memory_samples += len(samples)
        self._seq += 1
        self._queue.append((name, batch))
        self._samples += len(samples)
        return batch

    def _write_file(self, batch: ProbeBatch) -> str:
        """The batch on disk, durably; "" if the disk refused it."""
        assert self.directory is not None
        name = f"{self._seq:012d}-{batch.batch_id}.batch.json"
        tmp = self.directory / (name + ".tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(batch.model_dump_json().encode())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.directory / name)
            _fsync_dir(self.directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            error = f"spool write failed: {exc.strerror or exc}; holding batches in memory"
            if error != self.error:
                log.error("%s (up to %d samples)", error, self.memory_max_samples)
            self.error = error
            return ""
        if self.error is not None:
            log.info("spool writes work again")
            self.error = None
        return name

    def batches(self) -> list[ProbeBatch]:
        """The queued batches, oldest first."""
        return [b for _, b in self._queue]

    def oldest(self) -> ProbeBatch | None:
        return self._queue[0][1] if self._queue else None

    def done(self, batch: ProbeBatch) -> None:
        """The collector took ``batch``: forget it."""
        if self._queue and self._queue[0][1] is batch:
            name, _ = self._queue.popleft()
            self._forget(name, batch)
            self._remove(name)

    def set_aside(self, batch: ProbeBatch) -> None:
        """The collector refused ``batch`` for good: move it out of the
        queue, keeping the file under ``refused/`` (bounded) to look at."""
        if not (self._queue and self._queue[0][1] is batch):
            return
        name, _ = self._queue.popleft()
        self._forget(name, batch)
        self.refused_total += len(batch.samples)
        if not name or self.directory is None:
            return
        refused = self.directory / REFUSED_DIR
        try:
            refused.mkdir(exist_ok=True)
            os.replace(self.directory / name, refused / name)
            kept = sorted(p for p in refused.iterdir() if p.name.endswith(".batch.json"))
            for old in kept[: max(0, len(kept) - self.refused_max_files)]:
                old.unlink()
        except OSError as exc:
            log.warning("spool: cannot set %s aside (%s); removing it", name, exc.strerror)
            self._remove(name)

    def _remove(self, name: str) -> None:
        if name and self.directory is not None:
            with contextlib.suppress(FileNotFoundError):
                (self.directory / name).unlink()
