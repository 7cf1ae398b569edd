"""Scenarios D2-D5 and C1-C3: one seed each through the runner, measured verdicts and metrics."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from proml_sim.threats.catalogue import load_catalogue
from proml_sim.threats.runner import run_threat

IDS = ("D2", "D3", "D4", "D5", "C1", "C2", "C3")


@pytest.fixture(scope="module")
def catalogue() -> dict[str, Any]:
    return load_catalogue()


def run(catalogue: dict[str, Any], tid: str, seeds: int = 1, **params: Any) -> dict[str, Any]:
    tm = catalogue[tid]
    if params:
        tm = dataclasses.replace(tm, parameters={**tm.parameters, **params})
    return run_threat(tm, seeds=seeds)


def series(side: dict[str, Any], key: str) -> dict[float, float]:
    return {x: y for x, y, _ in side[key]}


def test_every_threat_model_is_catalogued_with_all_fields(catalogue):
    for tid in IDS:
        tm = catalogue[tid]
        assert tm.steps and tm.oracle and tm.defence and 1 <= tm.seeds <= 10, tid


def test_d2_withholding_stalls_below_k_and_escalation_restores_liveness(catalogue):
    r = run(catalogue, "D2")
    b, p = r["baseline"], r["proml"]
    assert (b["verdict"], p["verdict"]) == ("detected", "detected") and r["matches_expected"]
    # liveness needs n - w >= k (n = 4, k = 2): w = 3, 4 stall until someone escalates
    assert series(p, "completion_before_timeout_by_w") == {0: 1, 1: 1, 2: 1, 3: 0, 4: 0}
    assert series(p, "completion_by_w") == {0: 1, 1: 1, 2: 1, 3: 1, 4: 1}
    assert series(b, "completion_by_w")[3] == 0  # the database admin is a withholder
    assert p["stall_detect_s"] == 600 and p["stall_false_alarms"] == 0
    lat = series(p, "latency_by_w")
    assert lat[3] > 600 > lat[2]  # escalation costs the timeout


def test_d3_gas_is_flat_in_history_length_the_baseline_read_is_not(catalogue):
    r = run(catalogue, "D3")
    b, p = r["baseline"], r["proml"]
    assert (b["verdict"], p["verdict"]) == ("prevented", "prevented")
    for op in ("train", "approve", "register", "first_train"):
        gas = series(p, f"gas_{op}_by_L")
        assert set(gas) == {1, 10, 100, 1000}
        assert abs(gas[1000] - gas[10]) <= 200, (op, gas)
    assert p["max_loop_bound"] == 16
    read = series(b, "read_history_steps_without_index_by_L")
    assert read[1000] > 20 * read[10]  # without the baseline's index: a full table scan
    indexed = series(b, "read_history_steps_as_built_by_L")
    assert indexed[1000] == indexed[10]


def test_d4_spam_above_capacity_delays_honest_work_and_is_attributed(catalogue):
    r = run(catalogue, "D4")
    b, p = r["baseline"], r["proml"]
    assert (b["verdict"], p["verdict"]) == ("prevented", "detected")
    lat = series(p, "honest_latency_p50_by_rate")
    assert lat[12] > 2 * lat[0] and lat[3] < 2 * lat[0] + 2  # below capacity: no effect
    assert abs(p["honest_gas_delta"]) < 50  # gas per honest operation does not degrade
    assert p["junk_after_revoke"] == 0 and p["ttd_s"] < 30 and p["false_flags"] == 0
    assert b["honest_cost_growth"] < 1.2  # the baseline's indexes: flat under 10^4 junk rows


def test_d5_guard_flags_the_frozen_node_within_seconds(catalogue):
    r = run(catalogue, "D5", seeds=2)
    b, p = r["baseline"], r["proml"]
    assert (b["verdict"], p["verdict"]) == ("documented_limit", "detected")
    assert p["detection_rate"] == 1 and p["ttd_s"] < 10 and p["detect_s"] < 10
    assert p["stale_actions"] <= 1 < 20 < p["stale_actions_unguarded"]
    assert p["false_alarms"] == 0 and b["stale_actions"] > 20


def test_c1_private_branch_beats_shallow_policies_and_is_detected(catalogue):
    r = run(catalogue, "C1", attacker_share=0.4, defence_policy="L@3", attack_policy="L@3",
            policies=["L@1", "L@3"])
    b, p = r["baseline"], r["proml"]
    assert (b["verdict"], p["verdict"]) == ("out_of_scope", "detected")
    assert p["double_record_attempts"] >= 1 and p["max_reorg_depth"] >= 3
    assert p["latency_defence_s"] > p["latency_L@1_s"] > 0
    # no attacker: honest depth-1 forks only
    r = run(catalogue, "C1", attacker_share=0.0, records_s=300, policies=["L@12"])
    assert r["proml"]["verdict"] == "prevented" and r["proml"]["attempts"] == 0


def test_c1_c2_bad_parameters_name_the_field(catalogue):
    from proml_sim.threats.catalogue import CatalogueError

    for tid, bad in (("C1", {"defence_policy": "soon"}), ("C1", {"attacker_share": 1.5}),
                     ("C1", {"profile": "consortium-fast"}), ("C2", {"equivocators": 9})):
        with pytest.raises(CatalogueError, match=r"\[parameters\].*scenario file"):
            run(catalogue, tid, **bad)


def test_c2_checkpoint_agreement_refuses_the_losing_branch(catalogue):
    r = run(catalogue, "C2")
    b, p = r["baseline"], r["proml"]
    assert (b["verdict"], p["verdict"]) == ("documented_limit", "prevented")
    assert p["acted_on_losing_rate"] == 0 and p["acted_on_losing_rate_d3"] == 1
    assert series(p, "acted_on_losing_by_depth") == {1: 1, 3: 1, 12: 1}
    assert p["checkpoint_completion"] == 1 and p["equivocation_proofs"] > 0
    # nobody can compare across the partition: detection comes with the heal (300 s)
    assert 250 < p["detect_s"] < 300
    assert b["acted_on_losing_rate"] == 1
    # the clique signer rule is no defence here: E and 2 honest sealers are 3 of 5 on side A
    assert p["acted_on_losing_rate_finalised"] == 1
    p0 = run(catalogue, "C2", equivocators=0)["proml"]  # 2 of 5 on side A: never final there
    assert p0["acted_on_losing_rate_finalised"] == 0 and p0["acted_on_losing_rate_d3"] == 1


def test_c3_block_number_cutoff_ignores_skewed_timestamps(catalogue):
    r = run(catalogue, "C3")
    b, p = r["baseline"], r["proml"]
    assert (b["verdict"], p["verdict"]) == ("documented_limit", "prevented")
    assert p["skewed_blocks"] > 0 and p["wrong_decisions_naive_targeted"] > 0
    assert p["wrong_decisions_targeted"] == 0 and p["skew_detection_rate"] > 0.5
    assert b["wrong_decisions"] == 16


def test_d1_baseline_censorship_is_executed_and_read_back(catalogue):
    from proml_sim.threats.scenarios.d_censorship import Censorship

    records = int(catalogue["D1"].parameters["records"])
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        o = Censorship.baseline(catalogue["D1"], 0, Path(tmp))
    # the application acknowledged every write; the trigger dropped every one; the victim's
    # read-back found each gap
    assert o.metrics["writes_acknowledged"] == records
    assert o.trials() == (records, records, records) and o.ttd_s is not None
