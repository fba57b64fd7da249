"""Batches waiting for the collector, on local disk (or in memory), bounded.

Each batch is written once, with its id, and sent as written until the
collector takes it, so a retry carries the same ``batch_id`` and the collector
can drop the duplicate. When the spool holds more than ``max_samples``, the
oldest batches go (whole batches: the bound is exact to within one batch) and
their sample count is carried in the ``dropped_samples`` of the next batch
written, so the loss is reported, not silent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections import deque
from pathlib import Path

from pydantic import ValidationError

from qosmon.model import ProbeBatch, ProbeSample

log = logging.getLogger(__name__)


class Spool:
    def __init__(self, probe_id: str, max_samples: int, directory: Path | None = None) -> None:
        self.probe_id = probe_id
        self.max_samples = max_samples
        self.directory = directory
        self._queue: deque[tuple[str, ProbeBatch]] = deque()  # (file name or "", batch)
        self._samples = 0
        self._carry_dropped = 0  # dropped since the last batch written
        self.dropped_total = 0
        self._seq = 0
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._load()

    def _load(self) -> None:
        assert self.directory is not None
        for path in sorted(self.directory.glob("*.batch.json")):
            try:
                batch = ProbeBatch.model_validate_json(path.read_bytes())
            except (OSError, ValidationError) as exc:
                log.warning("spool: unreadable %s (%s), set aside", path.name, exc)
                path.rename(path.with_suffix(".bad"))
                continue
            self._queue.append((path.name, batch))
            self._samples += len(batch.samples)
            self._seq = max(self._seq, int(path.name.split("-", 1)[0]) + 1)
        if self._queue:
            log.info("spool: %d batches (%d samples) left from before",
                     len(self._queue), self._samples)

    @property
    def samples(self) -> int:
        return self._samples

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, samples: list[ProbeSample], now: float | None = None) -> ProbeBatch:
        """Write one batch of ``samples`` (with any drop count carried)."""
        while self._queue and self._samples + len(samples) > self.max_samples:
            name, old = self._queue.popleft()
            self._samples -= len(old.samples)
            self._carry_dropped += len(old.samples) + old.dropped_samples
            self.dropped_total += len(old.samples)
            self._remove(name)
        batch = ProbeBatch(
            batch_id=f"{self.probe_id[:20]}-{uuid.uuid4().hex}".replace(" ", "_")[:64],
            probe_id=self.probe_id,
            sent_ts=now or time.time(),
            samples=samples,
            dropped_samples=self._carry_dropped,
        )
        # The id must only use the characters the model allows.
        batch.batch_id = "".join(c if c.isalnum() or c in "_.:-" else "_" for c in batch.batch_id)
        self._carry_dropped = 0
        name = ""
        if self.directory is not None:
            name = f"{self._seq:012d}-{batch.batch_id}.batch.json"
            tmp = self.directory / (name + ".tmp")
            tmp.write_text(batch.model_dump_json())
            os.replace(tmp, self.directory / name)
        self._seq += 1
        self._queue.append((name, batch))
        self._samples += len(samples)
        return batch

    def oldest(self) -> ProbeBatch | None:
        return self._queue[0][1] if self._queue else None

    def done(self, batch: ProbeBatch) -> None:
        """The collector took (or finally refused) ``batch``: forget it."""
        if self._queue and self._queue[0][1] is batch:
            name, _ = self._queue.popleft()
            self._samples -= len(batch.samples)
            self._remove(name)

    def _remove(self, name: str) -> None:
        if name and self.directory is not None:
            with contextlib.suppress(FileNotFoundError):
                (self.directory / name).unlink()
