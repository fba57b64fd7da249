"""Who hears about a stock state: the on-call person, merchandising, or nobody.

Only a red SKU that is on screen pages on-call: viewers are trying to buy it
right now, and the sales graph will look like a broken stream. Everything
else that needs a person (red off screen, orange, data faults) goes to
merchandising, who own delisting, repricing, refills and the WMS sync.
Yellow, green and unknown need no one: the live-room screen shows them.
"""

from __future__ import annotations

from typing import Literal

from qosmon.model import StockLevel, StockState

Route = Literal["oncall", "merchandising", "none"]


def paging_route(state: StockState) -> Route:
    if state.level == StockLevel.RED and state.on_screen:
        return "oncall"
    if state.level.urgent:
        return "merchandising"
    return "none"
