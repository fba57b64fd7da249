"""The demo origin: WHEP, plus a chat DataChannel labelled ``chat`` on which the
origin echoes every text message back (as a chat room broadcasts a viewer's
message to everyone, the sender included)."""

from __future__ import annotations

from probes.joins.whep import WhepJoiner


class DemoJoiner(WhepJoiner):
    def __init__(self) -> None:
        super().__init__(with_chat=True)
