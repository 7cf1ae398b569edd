"""Scenarios S1, S3, S5, S6, S7, R1, R2: measured verdicts and key metrics on one or two seeds
(each run is a real simulation: the assertions are on what was measured)."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import pytest

from proml_sim.chain import KeyRing
from proml_sim.ir import build_ir
from proml_sim.lifecycles import Model
from proml_sim.threats.catalogue import load_catalogue
from proml_sim.threats.runner import run_threat
from proml_sim.threats.scenarios.r_repudiation import tx_fields, tx_signer, tx_with
from proml_sim.threats.scenarios.s_identity import (
    SENDER_BOUND_ID,
    TxOrigin,
    caller_chosen_id_mutant,
    tx_origin_mutant,
)

MINE = ("S1", "S3", "S5", "S6", "S7", "R1", "R2")


@pytest.fixture(scope="module")
def catalogue() -> dict[str, Any]:
    return load_catalogue()


def run(catalogue: dict[str, Any], tid: str, seeds: int, tmp_path: Any) -> dict[str, Any]:
    return run_threat(catalogue[tid], seeds=seeds, workdir=tmp_path)


def series(summary: dict[str, Any], key: str) -> dict[float, float]:
    return {x: y for x, y, _ in summary[key]}


def test_threat_models_are_complete(catalogue):
    for tid in MINE:
        tm = catalogue[tid]
        assert tm.expected_baseline and tm.expected_proml and tm.seeds <= 20
        assert tm.capabilities and tm.steps and tm.oracle and tm.defence


def test_s1_stolen_keys(catalogue, tmp_path):
    r = run(catalogue, "S1", 1, tmp_path)
    b, p = r["baseline"], r["proml"]
    assert (b["verdict"], p["verdict"]) == ("detected", "detected") and r["matches_expected"]
    for side in (b, p):  # k = 2 domains: one key cannot, two keys together can
        assert series(side, "asr_by_keys") == {0.0: 0, 1.0: 0, 2.0: 1, 3.0: 1, 4.0: 1}
        assert all(y == 1 for y in series(side, "detected_by_keys").values())
        assert side["ttd_s"] > 0 and side["time_to_revoke_s"] > 0 and side["damage"] >= 1
        assert side["precision"] > 0.5
    # a revoked key's earlier approval: still counted by the baseline, not by the contract
    assert b["revoked_approvals_counted"] == 1 and p["revoked_approvals_counted"] == 0


def test_s1_thief_uses_as_many_keys_as_the_deployed_threshold_needs(catalogue, tmp_path):
    from proml_sim.threats.runner import with_parameters

    tm = with_parameters(catalogue["S1"], {"approvals": 3, "stolen": 3})
    r = run_threat(tm, seeds=1, workdir=tmp_path)
    for side in (r["baseline"], r["proml"]):  # k = 3 read from the contract: 2 keys cannot
        assert series(side, "asr_by_keys") == {0.0: 0, 1.0: 0, 2.0: 0, 3.0: 1, 4.0: 1}
        assert side["verdict"] == "detected" and side["trials"] == 3
        assert 1 <= side["trial_successes"] <= 3


def test_s3_sybil_accounts(catalogue, tmp_path):
    r = run(catalogue, "S3", 1, tmp_path)
    a = catalogue["S3"].parameters["sybils"]
    for side in (r["baseline"], r["proml"]):
        assert side["verdict"] == "prevented"
        assert side["asr_account_counting"] == 1 and side["asr_domain_counting"] == 0
        assert set(series(side, "asr_domains_by_accounts").values()) == {0}
        assert series(side, "asr_accounts_by_accounts") == {
            float(k): float(k >= 2) for k in range(1, a + 1)}
    assert r["proml"]["sybil_approvals_refused"] == a - 1


def test_s5_tx_origin(catalogue, tmp_path):
    r = run(catalogue, "S5", 1, tmp_path)
    b, p = r["baseline"], r["proml"]
    assert b["verdict"] == "documented_limit" and p["verdict"] == "prevented"
    assert p["relayed_calls_accepted"] == 0 and p["victim_txs_succeeded"] == 3
    assert p["asr_mutant"] == 1 and p["bogus_version_mutant"] == 1
    assert series(p, "asr_by_contract") == {0.0: 0, 1.0: 1}


def test_s5_local_mutant_matches_the_mutation_module(catalogue, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "proml_sim.threats.mutants", None)  # import fails
    compiled, origin = tx_origin_mutant()
    assert origin == "local"
    n = len(build_ir(Model).transitions)
    assert compiled.source.count("tx.origin") == n and "msg.sender" in compiled.source
    out = TxOrigin.proml(catalogue["S5"], 0, tmp_path)
    assert not out.attack_succeeded and out.metrics["asr_mutant"] == 1
    assert out.note == "tx.origin mutant: local"


def test_s6_replays(catalogue, tmp_path):
    r = run(catalogue, "S6", 1, tmp_path)
    b, p = r["baseline"], r["proml"]
    assert p["verdict"] == "prevented" and p["successful_replays"] == 0
    assert p["replays_tried"] == 8 and p["v1_approvals_counted"] == 1
    assert p["altered_txs_ran_as_stranger"] == 2  # funded, they ran: as nobody with a role
    assert "another chain id" in p["notes"][0] and "a known transaction" in p["notes"][0]
    assert b["verdict"] == "documented_limit" and b["successful_replays"] == 2
    assert b["replay_other_artefact"] == 1 and b["replay_same_tx"] == 0
    assert b["replays_tried"] == 7 and b["replay_no_role_sender"] == 0


def test_s7_front_running(catalogue, tmp_path):
    r = run(catalogue, "S7", 1, tmp_path)
    b, p = r["baseline"], r["proml"]
    assert p["verdict"] == "prevented" and p["squat_rate"] == 0 and p["latency_cost_s"] == 0
    assert p["squat_rate_caller_chosen_ids"] > 0  # the same race wins against id = salt
    assert p["commit_reveal_extra_s"] > 0 and p["bare_name_ambiguous_rate"] > 0
    assert b["verdict"] == "documented_limit" and b["squat_rate"] == 1
    assert SENDER_BOUND_ID not in caller_chosen_id_mutant().source


def test_forensics_recover_the_signer_and_see_alterations():
    s = KeyRing.from_seed("forensics", 1).signer(KeyRing.from_seed("forensics", 1).addresses[0])
    raw = s.sign_transaction(chain_id=1337, nonce=3, to="0x" + "12" * 20, data=b"\x01\x02",
                             gas=50_000, max_fee_per_gas=10**10, max_priority_fee_per_gas=10**9)
    f = tx_fields(raw)
    assert tx_signer(raw) == s.address and f["nonce"] == 3 and f["data"] == b"\x01\x02"
    assert f["chain_id"] == 1337 and f["to"].lower() == "0x" + "12" * 20
    moved = tx_with(raw, to="0x" + "34" * 20)
    assert tx_fields(moved)["to"].lower() == "0x" + "34" * 20 and tx_signer(moved) != s.address
    assert tx_signer(tx_with(raw, data=b"\x09")) != s.address
    with pytest.raises(ValueError):
        tx_fields(b"\xf8" + raw[1:])


def test_parameters_are_checked(catalogue, tmp_path):
    tm = dataclasses.replace(catalogue["S3"], parameters={"sybil": 2})
    with pytest.raises(ValueError, match="unknown parameters"):
        run_threat(tm, seeds=1, workdir=tmp_path)


@pytest.mark.parametrize("k", [2, 3])
def test_s4_colluders_read_the_threshold_from_the_contract(catalogue, tmp_path, k):
    from proml_sim.threats.runner import with_parameters

    r = run_threat(with_parameters(catalogue["S4"], {"approvals": k}), seeds=1,
                   workdir=tmp_path)
    p = r["proml"]
    assert series(p, "asr_by_c") == {float(c): float(c >= k) for c in range(5)}
    assert p["attribution"] == 1.0 and p["threshold_violations"] == 0.0

