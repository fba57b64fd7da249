"""Found vs injected (demo shows): each injected fault as the demo's
scoring judged it. The report shows the scoring's records as they are; it
does not match incidents to faults again."""

from __future__ import annotations

from dataclasses import dataclass

from qosmon.report import charts
from qosmon.report.sections.context import ReportContext
from qosmon.report.vocabulary import cause_label


@dataclass(frozen=True)
class FoundLink:
    n: int | None  # the incident's number in this report (None: not in it)
    incident_id: str
    cause: str  # label


@dataclass(frozen=True)
class InjectedRow:
    kind: str  # the demo's name for the fault, as it wrote it
    where: str
    window: str  # h:mm-h:mm into the show
    ok: bool
    found: list[FoundLink]
    expected: str  # the cause the fault should have been named as
    detect: str | None  # "8.4 s" from onset to detection; None when missed


@dataclass(frozen=True)
class InjectedView:
    faults: list[InjectedRow]


def build(ctx: ReportContext) -> InjectedView | None:
    """None when the show had no injected faults (not a demo show)."""
    if not ctx.data.injected:
        return None
    t0 = ctx.span.t0
    rows = []
    for f in sorted(ctx.data.injected, key=lambda f: f.index):
        rows.append(InjectedRow(
            kind=f.kind, where=f.where, ok=f.ok,
            window=f"{charts.fmt_clock(f.start_ts - t0)}–{charts.fmt_clock(f.end_ts - t0)}",
            found=[FoundLink(ctx.numbers.get(x.incident_id), x.incident_id,
                             ctx.t(cause_label(x.cause))) for x in f.found],
            expected=ctx.t(cause_label(f.expected_cause)),
            detect=None if f.detect_s is None else ctx.t("{s} s").format(s=f"{f.detect_s:.1f}"),
        ))
    return InjectedView(faults=rows)
