"""Getting show summaries out of a store, and into it when a show ends.

A show normally gets its summary when it ends (the live pipeline, the demo).
Shows stored before that existed, or whose end was missed, are summarized
from their raw data when history asks, without writing anything: history is
a read-only command.
"""

from __future__ import annotations

import logging

from qosmon.history.summary import summarize_show
from qosmon.model import ShowSummary
from qosmon.report.data import ShowData, load_show_data
from qosmon.store.base import Store

log = logging.getLogger(__name__)


def store_summary(store: Store, data: ShowData, now: float) -> ShowSummary:
    """Summarize a finished show and keep the summary in the store."""
    summary = summarize_show(data, now)
    store.put_show_summary(summary)
    return summary


def load_summaries(
    store: Store, since_ts: float | None, until_ts: float | None, now: float
) -> tuple[list[ShowSummary], int]:
    """Summaries of the shows that started in [since_ts, until_ts): stored
    ones, plus ended shows without one summarized on the fly. Returns them
    and how many had to be computed."""
    stored = {s.show_id: s for s in store.show_summaries(since_ts, until_ts)}
    computed = 0
    for show in store.list_shows():
        if show.show_id in stored or show.end_ts is None:
            continue
        if (since_ts is not None and show.start_ts < since_ts) or (
            until_ts is not None and show.start_ts >= until_ts
        ):
            continue
        stored[show.show_id] = summarize_show(load_show_data(store, show.show_id), now)
        computed += 1
    return sorted(stored.values(), key=lambda s: (s.start_ts, s.show_id)), computed
