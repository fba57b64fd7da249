"""Localization: the generic multi-dimensional search and the probe scopes."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from qosmon.diagnosis.localize import LocalizeParams, localize
from qosmon.diagnosis.probe_health import Labels
from qosmon.diagnosis.scope import localize_probes


def _cube(rnd: random.Random, faults):  # type: ignore[no-untyped-def]
    dims = ["region", "isp", "edge_node", "device"]
    values = [
        ["ID", "TH", "US", "DE"],
        ["a", "b", "c"],
        ["n1", "n2", "n3"],
        ["ios", "android", "web"],
    ]
    leaves, real, pred = [], [], []
    for combo in itertools.product(*values):
        leaf = dict(zip(dims, combo, strict=True))
        p = rnd.uniform(50, 500)
        r = p * rnd.gauss(1, 0.02)
        for cond, factor in faults:
            if all(leaf[k] == v for k, v in cond.items()):
                r = p * factor
        leaves.append(leaf)
        real.append(r)
        pred.append(p)
    return dims, leaves, real, pred


def test_finds_a_region_x_isp_x_edge_node_x_device_combination() -> None:
    rnd = random.Random(5)
    target = {"region": "ID", "isp": "b", "edge_node": "n2", "device": "android"}
    dims, leaves, real, pred = _cube(rnd, [(target, 0.3)])
    # Deeper than the default search (three dimensions) when asked for.
    deep = LocalizeParams(max_depth=4)
    assert [f.combination for f in localize(leaves, real, pred, dims, params=deep)] == [target]


def test_prefers_the_most_general_combination_and_ranks_by_deviation() -> None:
    rnd = random.Random(6)
    dims, leaves, real, pred = _cube(
        rnd, [({"region": "US"}, 0.4), ({"isp": "c", "device": "web"}, 0.8)]
    )
    found = [f.combination for f in localize(leaves, real, pred, dims)]
    assert found[0] == {"region": "US"}
    assert {"isp": "c", "device": "web"} in found
    assert len(found) == 2


def test_nothing_abnormal_gives_nothing() -> None:
    rnd = random.Random(2)
    dims, leaves, real, pred = _cube(rnd, [])
    assert localize(leaves, real, pred, dims) == []


def test_everything_moved_is_the_root() -> None:
    leaves = [{"r": "a"}, {"r": "b"}]
    assert [f.combination for f in localize(leaves, [50, 50], [100, 100], ["r"])] == [{}]


def _sessions(rng: np.random.Generator, n_small: int = 0):  # type: ignore[no-untyped-def]
    """Sessions and failures by cdn x bitrate x device, 2 % failing."""
    dims = ["cdn", "bitrate", "device"]
    leaves, attempts = [], []
    for cdn, br, dev in itertools.product(["c1", "c2", "c3"], ["360p", "720p", "1080p"],
                                          ["ios", "android", "web", "tv"]):
        leaves.append({"cdn": cdn, "bitrate": br, "device": dev})
        attempts.append(float(rng.integers(3000, 9000)))
    return dims, leaves, np.array(attempts)


def test_ratio_cause_with_fewer_failures_but_a_higher_rate() -> None:
    rng = np.random.default_rng(4)
    dims, leaves, predict_b = _sessions(rng)
    rate = 0.02
    real_b = rng.poisson(predict_b).astype(float)
    in_cause = np.array([leaf["bitrate"] == "1080p" for leaf in leaves])
    # The cause loses 80 % of its sessions (viewers give up) while the ones
    # left fail at 3x the rate: 40 % fewer failures than predicted.
    real_b[in_cause] = rng.poisson(predict_b[in_cause] * 0.2)
    real_rate = np.where(in_cause, rate * 3, rate)
    real_a = rng.binomial(real_b.astype(np.int64), real_rate).astype(float)
    predict_a = predict_b * rate
    assert real_a[in_cause].sum() < predict_a[in_cause].sum()
    found = localize(leaves, real_a, predict_a, dims, real_b=real_b, predict_b=predict_b)
    assert [f.combination for f in found] == [{"bitrate": "1080p"}]
    (f,) = found
    assert f.observed == pytest.approx(0.06, rel=0.2) and f.expected == pytest.approx(0.02)
    assert f.explains > 0.9
    # On the failure counts alone the cause looks like it got better: no
    # failure surge there at all.
    counts = localize(leaves, real_a, predict_a, dims)
    assert {"bitrate": "1080p"} not in [f.combination for f in counts if f.deviation > 0]


def test_volume_change_alone_is_no_ratio_anomaly() -> None:
    rng = np.random.default_rng(5)
    dims, leaves, predict_b = _sessions(rng)
    real_b = rng.poisson(predict_b).astype(float)
    real_b[:12] = rng.poisson(predict_b[:12] * 0.3)  # cdn c1 loses most sessions
    real_a = rng.binomial(real_b.astype(np.int64), 0.02).astype(float)
    assert localize(leaves, real_a, predict_b * 0.02, dims, real_b=real_b,
                    predict_b=predict_b) == []


def test_a_small_leaf_does_not_win_on_a_noisy_ratio() -> None:
    rng = np.random.default_rng(6)
    dims, leaves, predict_b = _sessions(rng)
    leaves.append({"cdn": "c4", "bitrate": "360p", "device": "ios"})
    predict_b = np.append(predict_b, 3.0)
    real_b = rng.poisson(predict_b).astype(float)
    real_b[-1] = 3
    real_a = rng.binomial(real_b.astype(np.int64), 0.02).astype(float)
    real_a[-1] = 2  # 2 of 3 sessions failed: 67 % on nothing
    assert localize(leaves, real_a, predict_b * 0.02, dims, real_b=real_b,
                    predict_b=predict_b) == []


def test_the_most_general_combination_not_every_child() -> None:
    rng = np.random.default_rng(7)
    dims, leaves, predict_b = _sessions(rng)
    real_b = rng.poisson(predict_b).astype(float)
    cause = np.array([leaf["bitrate"] == "720p" and leaf["device"] == "tv" for leaf in leaves])
    real_a = rng.binomial(real_b.astype(np.int64), np.where(cause, 0.1, 0.02)).astype(float)
    found = localize(leaves, real_a, predict_b * 0.02, dims, real_b=real_b, predict_b=predict_b)
    assert [f.combination for f in found] == [{"bitrate": "720p", "device": "tv"}]


LABELS = {
    p: Labels(p, r, isp, node)
    for p, r, isp, node in [
        ("id-1", "ID", "telkomsel", "jkt-1"),
        ("id-2", "ID", "indosat", "jkt-1"),
        ("th-1", "TH", "ais", "bkk-1"),
        ("th-2", "TH", "true", "bkk-1"),
        ("us-1", "US", "att", "sfo-1"),
        ("us-2", "US", "att", "sfo-2"),
        ("us-3", "US", "comcast", "sfo-2"),
        ("us-4", "US", "comcast", "sfo-1"),
    ]
}
ALL = set(LABELS)


def _scopes(bad: set[str], known: set[str] = ALL) -> list[dict[str, str]]:
    return [g.scope for g in localize_probes(bad, known, LABELS)]


def test_probe_scopes() -> None:
    assert _scopes(set()) == []
    assert _scopes(ALL) == [{}]  # every region: origin
    assert _scopes({"id-1", "id-2"}) == [{"region": "ID"}]
    assert _scopes({"id-1"}) == [{"probe_id": "id-1"}]  # alone: its own problem
    assert _scopes({"us-2", "us-3"}) == [{"region": "US", "edge_node": "sfo-2"}]
    assert _scopes({"us-3", "us-4"}) == [{"region": "US", "isp": "comcast"}]
    assert _scopes({"id-1", "id-2", "th-1"}) == [{"region": "ID"}, {"probe_id": "th-1"}]


def test_probe_scope_group_shares_its_node() -> None:
    (g,) = localize_probes({"id-1", "id-2"}, ALL, LABELS)
    assert g.common["edge_node"] == "jkt-1"


def test_unknown_probes_do_not_count_as_fine() -> None:
    # th-2 has no data: th-1 alone is then the whole known TH, but a single
    # probe is never a regional verdict.
    assert _scopes({"th-1"}, ALL - {"th-2"}) == [{"probe_id": "th-1"}]
    # All known probes bad in two regions is the origin even with one silent.
    assert _scopes(ALL - {"us-4"}, ALL - {"us-4"}) == [{}]
