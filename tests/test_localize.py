"""Localization: the generic multi-dimensional search and the probe scopes."""

from __future__ import annotations

import itertools
import random

from qosmon.diagnosis.localize import abnormal_leaves, explain, localize
from qosmon.diagnosis.probes import Labels
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
    assert [f.combination for f in localize(leaves, real, pred, dims)] == [target]


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


def test_abnormal_leaves_adapts_cutoff_to_noise() -> None:
    rnd = random.Random(9)
    pred = [100.0] * 200
    real = [100 * rnd.gauss(1, 0.05) for _ in range(200)]
    real[:10] = [50.0] * 10
    flags = abnormal_leaves(real, pred)
    assert all(flags[:10]) and sum(flags[10:]) <= 2


def test_explain_with_boolean_leaves() -> None:
    leaves = [{"region": r, "isp": i} for r in "AB" for i in "xy"]
    abnormal = [True, True, False, False]
    out = explain(leaves, abnormal, ["region", "isp"], min_purity=1.0)
    assert [f.combination for f in out] == [{"region": "A"}]


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
