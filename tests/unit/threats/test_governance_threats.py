"""E1-E4 (consortium governance threats): verdicts as catalogued, with the single-admin design
beside the consortium, and the collusion sweep failing below the quorum only."""

from __future__ import annotations

import pytest

from proml_sim.threats.catalogue import load_catalogue
from proml_sim.threats.runner import run_threat


@pytest.mark.parametrize("tid", ["E1", "E2", "E3"])
def test_single_admin_falls_and_consortium_prevents(tid: str) -> None:
    r = run_threat(load_catalogue()[tid], seeds=1)
    assert r["matches_expected"], r
    assert r["proml"]["single_admin_asr"] == 1.0  # the same attack on the single-admin design
    assert r["proml"]["asr"] == 0.0 and r["proml"]["notes"]  # refused with named reverts


def test_colluding_domains_sweep_succeeds_exactly_at_quorum() -> None:
    tm = load_catalogue()["E4"]
    r = run_threat(tm, seeds=1)
    assert r["matches_expected"], r
    quorum = tm.parameters["quorum"]
    assert {x: y for x, y, _ in r["proml"]["asr_by_c"]} == {
        float(q): float(q >= quorum) for q in range(tm.parameters["domains"] + 1)}
    assert "QuorumNotReached" in r["proml"]["notes"][0]
    lo, hi = r["proml"]["asr_by_c_wilson"][0][1:]
    assert lo == 0.0 and 0.0 < hi < 1.0  # one seed: a wide Wilson interval, not a point
