"""E1-E4 (consortium governance threats): verdicts as catalogued, with the single-admin design
beside the consortium; the colluding domains succeed exactly at the quorum (a sweep of the
``colluders`` parameter), and every member's node sees the proposal.  E1-E3 are plays: more
of them in test_story_governance.py."""

from __future__ import annotations

import pytest

from proml_sim.threats.catalogue import load_catalogue
from proml_sim.threats.runner import run_threat, sweep_threat, with_parameters


@pytest.mark.parametrize("tid", ["E1", "E2", "E3"])
def test_single_admin_falls_and_consortium_prevents(tid: str) -> None:
    r = run_threat(load_catalogue()[tid], seeds=1)
    assert r["matches_expected"], r
    assert r["proml"]["single_admin_asr"] == 1.0  # the same attack on the single-admin design
    assert r["proml"]["asr"] == 0.0 and r["proml"]["notes"]  # refused with named reverts
    assert r["baseline"]["asr"] == 1.0 and r["baseline"]["detection_rate"] == 0.0


def test_colluding_domains_succeed_exactly_at_quorum() -> None:
    tm = load_catalogue()["E4"]
    n, quorum = tm.parameters["domains"], tm.parameters["quorum"]
    points = sweep_threat(tm, [("colluders", list(range(n + 1)))], seeds=1)["points"]
    for p in points:
        q = p["parameters"]["colluders"]
        if q == 0:  # nobody colludes: no attempt on either system
            assert p["proml"]["verdict"] == p["baseline"]["verdict"] == "no_attack", p
            continue
        assert p["proml"]["asr"] == float(q >= quorum), p
        if 0 < q < quorum:
            assert "QuorumNotReached" in p["proml"]["notes"][0]
            assert p["proml"]["verdict"] == "prevented"
        if quorum <= q < n:  # admitted, but the other members saw the proposal on chain
            assert p["proml"]["verdict"] == "detected" and p["proml"]["attribution"] == 1.0
        if q == n:  # admitted, and no honest member is left to see it
            assert p["proml"]["verdict"] == "documented_limit" and p["proml"]["asr"] == 1.0
            assert p["proml"]["attribution"] == 1.0 and "notes" not in p["proml"], p


@pytest.mark.parametrize("n", [1, 2])
def test_no_honest_member_left_raises_no_alarm(n: int) -> None:
    # every member domain colludes (one domain alone, at quorum 1): nobody honest watches; the
    # alarm used to come from org-1's review (a colluder, or a domain that never joined)
    tm = with_parameters(load_catalogue()["E4"], {"domains": n, "quorum": 1, "colluders": n})
    r = run_threat(tm, seeds=1)["proml"]
    assert r["verdict"] == "documented_limit" and r["detection_rate"] == 0.0, r
