"""Where samples go: the protocol every sink implements, and JSON lines."""

from __future__ import annotations

import json
from typing import Protocol, TextIO

from qosmon.model import ProbeSample


class SampleSink(Protocol):
    async def put(self, sample: ProbeSample) -> None:
        """Take one sample. Must not block for long: the probe measures on."""

    async def aclose(self) -> None:
        """Flush and release. The owner of the sink calls it, not the agent."""


class JsonLinesSink:
    """One JSON object per line (``ProbeSample.model_dump(mode="json")``)."""

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self.count = 0

    async def put(self, sample: ProbeSample) -> None:
        self._file.write(json.dumps(sample.model_dump(mode="json"), separators=(",", ":")))
        self._file.write("\n")
        self._file.flush()
        self.count += 1

    async def aclose(self) -> None:
        self._file.flush()


class MemorySink:
    """Keeps samples in a list: for embedding the probe (the demo) and tests."""

    def __init__(self) -> None:
        self.samples: list[ProbeSample] = []

    async def put(self, sample: ProbeSample) -> None:
        self.samples.append(sample)

    async def aclose(self) -> None:
        return None
