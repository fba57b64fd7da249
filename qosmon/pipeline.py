"""The live pipeline the collector feeds: what it accepted goes here, and
once a second ``tick`` turns it into incidents, stock states and alerts.

The collector only knows this interface; diagnosis, inventory and alerting
plug in behind it (see ``qosmon.live``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from qosmon.model import BusinessSample, OnScreen, ProbeSample, Show, StockRecord


class Pipeline(Protocol):
    def on_show(self, show: Show) -> None: ...

    def on_probe_samples(self, samples: Sequence[ProbeSample]) -> None: ...

    def on_business(self, samples: Sequence[BusinessSample]) -> None: ...

    def on_stock(self, records: Sequence[StockRecord]) -> None: ...

    def on_on_screen(self, events: Sequence[OnScreen]) -> None: ...

    async def tick(self, now: float) -> None:
        """Called about once a second by the collector, never concurrently."""
        ...

    async def close(self) -> None: ...


class NullPipeline:
    """A collector with no live analysis (store only)."""

    def on_show(self, show: Show) -> None:
        pass

    def on_probe_samples(self, samples: Sequence[ProbeSample]) -> None:
        pass

    def on_business(self, samples: Sequence[BusinessSample]) -> None:
        pass

    def on_stock(self, records: Sequence[StockRecord]) -> None:
        pass

    def on_on_screen(self, events: Sequence[OnScreen]) -> None:
        pass

    async def tick(self, now: float) -> None:
        pass

    async def close(self) -> None:
        pass
