"""What a report is made of: one plain bundle of a show's stored data.

Rendering takes a :class:`ShowData` and nothing else, so a report can be
rebuilt from storage at any time, from a test's generated show, or from the
demo's in-memory data, without the collector running.
"""

from __future__ import annotations

from dataclasses import dataclass

from qosmon.errors import UnknownShowError
from qosmon.model import (
    AlertDelivery,
    BusinessSample,
    Incident,
    InjectedFault,
    OnScreen,
    ProbeSample,
    Show,
    StockState,
)
from qosmon.store.base import Store


@dataclass
class ShowData:
    show: Show
    probe_samples: list[ProbeSample]
    business: list[BusinessSample]
    stock_states: list[StockState]
    on_screen: list[OnScreen]
    incidents: list[Incident]
    deliveries: list[AlertDelivery]
    # Demo only: the faults that were injected and how the demo scored
    # them, for the "found vs injected" table.
    injected: list[InjectedFault] | None = None


def load_show_data(store: Store, show_id: str) -> ShowData:
    """Read everything a report needs about one show through the Store
    interface only. Raises :class:`UnknownShowError` if there is no such show."""
    show = store.get_show(show_id)
    if show is None:
        raise UnknownShowError(show_id)
    return ShowData(
        show=show,
        probe_samples=list(store.probe_samples(show_id)),
        business=list(store.business(show_id)),
        stock_states=list(store.stock_states(show_id)),
        on_screen=list(store.on_screen(show_id)),
        incidents=list(store.incidents(show_id)),
        deliveries=list(store.alert_deliveries(show_id)),
    )
