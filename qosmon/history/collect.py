"""Getting show summaries out of a store, and into it when a show ends.

A show normally gets its summary when it ends (the live pipeline, the demo).
Shows stored before that existed, or whose end was missed, are summarized
from their raw data when history asks, without writing anything: history is
a read-only command.
"""

from __future__ import annotations

import logging
from pathlib import Path

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
    store: Store, since_ts: float | None, until_ts: float | None, now: float,
    compute_missing: bool = True,
) -> tuple[list[ShowSummary], int]:
    """Summaries of the shows that started in [since_ts, until_ts): stored
    ones, plus (``compute_missing``) ended shows without one summarized on
    the fly. Returns them and how many had to be computed."""
    stored = {s.show_id: s for s in store.show_summaries(since_ts, until_ts)}
    computed = 0
    if not compute_missing:
        return sorted(stored.values(), key=lambda s: (s.start_ts, s.show_id)), 0
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


def backfill_summaries(store: Store, now: float, limit: int = 10) -> int:
    """Summarize up to ``limit`` ended shows that have no summary yet (shows
    stored before summaries existed, or whose end the pipeline missed), so
    that retention never ages out raw samples history has not seen.
    Returns how many were written."""
    have = {s.show_id for s in store.show_summaries()}
    done = 0
    for show in store.list_shows():
        if done >= limit:
            break
        if show.end_ts is None or show.show_id in have:
            continue
        store_summary(store, load_show_data(store, show.show_id), now)
        log.info("show %s: summary written from its stored data", show.show_id)
        done += 1
    return done


def refresh_history(store: Store, out_dir: Path, now: float, lang: str = "en") -> Path:
    """Rewrite ``out_dir/history.html`` (and .json) over the stored
    summaries, so a reports folder always has history next to its index."""
    from qosmon.history.analysis import analyse
    from qosmon.history.render import write_history

    summaries, _ = load_summaries(store, None, None, now, compute_missing=False)
    return write_history(analyse(summaries), out_dir, lang)[0]
