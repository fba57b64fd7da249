"""``qosmon diagnose --show ID`` over a store.

The store is reached through ``qosmon.store.open_store`` (the Store protocol,
a seam this project owns); here a small in-memory Store stands in for it, filled
with a synthetic show whose fault is known.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import pytest

import qosmon.store
from qosmon.diagnosis import command
from qosmon.model import BusinessSample, Cause, Incident, ProbeSample, Show, StockState
from qosmon.store.url import DEFAULT_STORE_URL
from tests.synthetic_shows import Scenario, generate


class MemoryStore:
    def __init__(
        self,
        show: Show,
        probes: list[ProbeSample],
        business: list[BusinessSample],
        stock: list[StockState],
    ) -> None:
        self.show, self.probes, self.biz, self.stock = show, probes, business, stock
        self.saved: list[Incident] = []
        self.closed = False

    def get_show(self, show_id: str) -> Show | None:
        return self.show if show_id == self.show.show_id else None

    def probe_samples(self, show_id: str, *a: object, **k: object) -> list[ProbeSample]:
        return sorted(self.probes, key=lambda x: x.ts)

    def business(self, show_id: str, *a: object, **k: object) -> list[BusinessSample]:
        return self.biz

    def stock_states(self, show_id: str) -> list[StockState]:
        return self.stock

    def put_incidents(self, show_id: str, incidents: Sequence[Incident]) -> None:
        self.saved = list(incidents)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    sc = Scenario("bw", Cause.BANDWIDTH, "TH", 0.6, seed=5)
    show, seconds = generate(sc)
    probes, biz, stock = [], [], []
    for sec in seconds:
        probes += [x for _, x in sec.probes]
        biz += sec.business
        stock += sec.stock
    st = MemoryStore(show, probes, biz, stock)
    opened: list[tuple[str, bool]] = []

    def open_store(url: str, *, read_only: bool = False, must_exist: bool = False) -> MemoryStore:
        assert must_exist or read_only  # diagnose never creates a store
        opened.append((url, read_only))
        return st

    monkeypatch.setattr(qosmon.store, "open_store", open_store, raising=False)
    st.opened = opened  # type: ignore[attr-defined]
    return st


def _args(**kw: object) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    command.add_arguments(p)
    ns = p.parse_args(["--show", str(kw.pop("show", "synthetic"))])
    for k, v in kw.items():
        setattr(ns, k, v)
    return ns


def test_diagnose_prints_the_incident(
    store: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert command.main(_args(save=True)) == 0
    out = capsys.readouterr().out
    assert "bandwidth (region=TH)" in out
    assert "squeezed stream" in out
    # --save writes incidents back: the store is opened for writing.
    assert store.opened == [(DEFAULT_STORE_URL, False)]  # type: ignore[attr-defined]
    assert [i.cause for i in store.saved] == [Cause.BANDWIDTH]
    assert store.closed


def test_diagnose_json(store: MemoryStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert command.main(_args(json=True, store="sqlite:///x.db")) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(d["cause"], d["scope"]) for d in data] == [("bandwidth", {"region": "TH"})]


def test_diagnose_unknown_show(store: MemoryStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert command.main(_args(show="nope")) == 2
    assert "no show 'nope'" in capsys.readouterr().err
