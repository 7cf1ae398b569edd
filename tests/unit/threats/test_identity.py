"""Scenarios S1-S7, R1, R2: measured verdicts and key metrics on one or two seeds
(each run is a real simulation: the assertions are on what was measured)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from proml_sim.chain import KeyRing
from proml_sim.chain.proofs import tx_sender
from proml_sim.errors import UsageError
from proml_sim.threats.catalogue import load_catalogue
from proml_sim.threats.runner import run_threat, with_parameters
from proml_sim.threats.scenarios.r_repudiation import tx_fields, tx_with
from proml_sim.threats.scenarios.s_identity import SENDER_BOUND_ID, caller_chosen_id_mutant

MINE = ("S1", "S2", "S3", "S4", "S5", "S6", "S7", "R1", "R2")


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
    for side in (b, p):  # k = 2 domains, 2 keys used together: targets verified, keys flagged
        assert side["trials"] == 3 and side["trial_successes"] >= 1
        assert side["ttd_s"] > 0 and side["time_to_revoke_s"] > 0 and side["damage"] >= 1
        assert side["precision"] > 0.5 and side["detection_rate"] == 1
    # a revoked key's earlier approval no longer counts, on the contract and in the careful
    # baseline's application alike (the same lifecycle rule)
    assert b["revoked_approvals_counted"] == 0 and p["revoked_approvals_counted"] == 0


def test_s1_an_alert_on_honest_traffic_before_the_theft_detects_nothing(catalogue, tmp_path):
    # honest approvals trip the burst rule on the keys long before the thief starts; nobody
    # revokes in time and the monitor's next look is past the end: the theft goes unseen (it
    # was "detected", time to detect 0, by the honest bursts' alerts)
    tm = with_parameters(catalogue["S1"], {
        "horizon_s": 4800.0, "poll_s": 2400.0, "burst_max": 1, "burst_window_s": 1e5,
        "honest_interval_s": 60.0, "reaction_mean_s": 1e6})
    r = run_threat(tm, seeds=2, workdir=tmp_path)
    for side in (r["baseline"], r["proml"]):
        assert side["trial_successes"] > 0 and side["detection_rate"] == 0, side
        assert side["verdict"] == "documented_limit" and side["ttd_s"] is None
        assert side["precision"] == 0  # the early alerts were on honest traffic


@pytest.mark.parametrize(("k", "stolen", "verdict"), [(3, 2, "prevented"), (3, 3, "detected"),
                                                      (2, 1, "prevented"), (2, 0, "no_attack")])
def test_s1_thief_needs_as_many_keys_as_the_deployed_threshold(catalogue, tmp_path, k, stolen,
                                                               verdict):
    tm = with_parameters(catalogue["S1"], {"approvals": k, "stolen": stolen})
    r = run_threat(tm, seeds=1, workdir=tmp_path)
    for side in (r["baseline"], r["proml"]):  # each target is an attempt (none: no thief)
        assert side["verdict"] == verdict and side["trials"] == 3 * (stolen > 0)


def test_s3_sybil_accounts(catalogue, tmp_path):
    a = catalogue["S3"].parameters["sybils"]
    for count, verdict in (("domains", "prevented"), ("accounts", "documented_limit")):
        r = run_threat(with_parameters(catalogue["S3"], {"count": count}), seeds=1,
                       workdir=tmp_path)
        for side in (r["baseline"], r["proml"]):
            assert side["verdict"] == verdict
            assert series(side, "asr_by_accounts") == {
                float(m): float(count == "accounts" and m >= 2) for m in range(1, a + 1)}
        if count == "domains":  # her other accounts' approvals are refused as her domain's
            assert r["proml"]["sybil_approvals_refused"] == a - 1


def test_s5_lured_role_holders(catalogue, tmp_path):
    r = run(catalogue, "S5", 1, tmp_path)
    b, p = r["baseline"], r["proml"]
    assert b["verdict"] == "prevented" and p["verdict"] == "prevented" and r["matches_expected"]
    assert p["victim_txs_succeeded"] == 3 and p["asr_mutant"] == 1  # tx.origin would fall
    assert b["trials"] == 6 and b["forged_requests_accepted"] == 0
    assert "no session" in b["notes"][0] and "bad signature" in b["notes"][0]


def test_s5_an_ambient_cookie_baseline_falls(catalogue, tmp_path):
    tm = with_parameters(catalogue["S5"], {"session_samesite": "None", "csrf_token": False})
    b = run_threat(tm, seeds=1, workdir=tmp_path)["baseline"]
    # both verifiers' browsers post the forged approvals (the model is then verified, so the
    # developer's forged retrain is refused by the lifecycle); their domains flag them
    assert b["trial_successes"] == 2 and b["verdict"] == "detected" and b["ttd_s"] > 0


def test_s6_replays(catalogue, tmp_path):
    r = run(catalogue, "S6", 1, tmp_path)
    b, p = r["baseline"], r["proml"]
    assert p["verdict"] == "prevented" and p["successful_replays"] == 0 and p["trials"] == 8
    assert p["altered_txs_ran_as_stranger"] == 2  # funded, they ran: as nobody with a role
    assert "another chain id" in p["notes"][0] and "a known transaction" in p["notes"][0]
    # the baseline: every signed-request replay refused, the captured session is a bearer
    # credential (another model approved in v1's name), which v1's domain monitor flags
    assert b["verdict"] == "detected" and b["trials"] == 10 and b["successful_replays"] == 1
    assert b["replay_session_other_artefact"] == 1 and b["replay_other_artefact"] == 0
    assert b["replay_other_deployment"] == 0 and b["replay_session_other_deployment"] == 0
    assert 0 < b["ttd_s"] <= catalogue["S6"].parameters["poll_s"]
    late = with_parameters(catalogue["S6"], {"replay_after_s": 1200.0})
    assert run_threat(late, seeds=1, workdir=tmp_path)["baseline"]["verdict"] == "prevented"


def test_s7_front_running(catalogue, tmp_path):
    r = run(catalogue, "S7", 1, tmp_path)
    b, p = r["baseline"], r["proml"]
    assert p["verdict"] == "prevented" and p["trials"] == 5 and p["latency_cost_s"] == 0
    assert p["squat_rate_caller_chosen_ids"] > 0  # the same race wins against id = salt
    assert p["commit_reveal_extra_s"] > 0 and p["bare_name_ambiguous_rate"] > 0
    assert b["verdict"] == "documented_limit" and b["asr"] == 1
    assert SENDER_BOUND_ID not in caller_chosen_id_mutant().source


def test_forensics_recover_the_signer_and_see_alterations():
    s = KeyRing.from_seed("forensics", 1).signer(KeyRing.from_seed("forensics", 1).addresses[0])
    raw = s.sign_transaction(chain_id=1337, nonce=3, to="0x" + "12" * 20, data=b"\x01\x02",
                             gas=50_000, max_fee_per_gas=10**10, max_priority_fee_per_gas=10**9)
    f = tx_fields(raw)
    assert tx_sender(raw) == s.address and f["nonce"] == 3 and f["data"] == b"\x01\x02"
    assert f["chain_id"] == 1337 and f["to"].lower() == "0x" + "12" * 20
    moved = tx_with(raw, to="0x" + "34" * 20)
    assert tx_fields(moved)["to"].lower() == "0x" + "34" * 20 and tx_sender(moved) != s.address
    assert tx_sender(tx_with(raw, data=b"\x09")) != s.address
    with pytest.raises(ValueError):
        tx_fields(b"\xf8" + raw[1:])


def test_parameters_are_checked(catalogue, tmp_path):
    tm = dataclasses.replace(catalogue["S3"], parameters={"sybil": 2})
    with pytest.raises(UsageError, match="unknown parameters"):
        run_threat(tm, seeds=1, workdir=tmp_path)
    # every parameter comes from the file (the code keeps no default): one left out is named
    tm = dataclasses.replace(catalogue["S3"], parameters={"sybils": 2, "approvals": 2})
    with pytest.raises(UsageError, match=r"S3 needs parameters \['count'\]"):
        run_threat(tm, seeds=1, workdir=tmp_path)
    # a value outside the threat model's [ranges] is refused before anything runs
    for tid, bad, why in (("S3", {"sybils": 0}, r"sybils = 0 is out of range \(>= 1\)"),
                          ("S6", {"replay_after_s": -1.0}, r"replay_after_s = -1.0 is out of"),
                          ("S1", {"stolen": 5}, r"stolen = 5 is out of range \(>= 0, <= approvers"),
                          ("S1", {"approvals": 5}, r"approvals = 5 is out of range"),
                          ("S4", {"approvers": 1}, r"approvers = 1 is out of range \(>= 2\)"),
                          ("S5", {"session_samesite": "Loose"}, "session_samesite = 'Loose' is "
                                                                "out of range")):
        with pytest.raises(UsageError, match=why):
            run_threat(with_parameters(catalogue[tid], bad), seeds=1, workdir=tmp_path)


def test_an_attack_outlasting_the_scenarios_horizon_is_run_to_its_end(catalogue, tmp_path):
    # 20 victims: 21 lures (20 verifiers and the developer), 2 tries each on the baseline, one
    # on the chain; at seed 1 the baseline's lures outlast its two-hour horizon (they were cut
    # short: an internal error here, fewer trials elsewhere)
    tm = with_parameters(catalogue["S5"], {"victims": 20})
    r = run_threat(tm, seeds=2, workdir=tmp_path)
    assert (r["baseline"]["trials"], r["proml"]["trials"]) == (2 * 42, 2 * 21)


def test_a_scripts_run_goes_past_the_horizon_to_its_end_and_its_tail():
    import simpy

    from proml_sim.threats.scenarios.common import finish

    for tail, ends_at in ((None, 15.0), (5.0, 35.0), (0.0, 30.0)):
        env, done = simpy.Environment(), []

        def script(e: simpy.Environment = env, d: list[float] = done) -> Any:
            for _ in range(3):
                yield e.timeout(10.0)
                d.append(e.now)

        proc = env.process(script())
        env.run(until=15.0)  # the scenario's horizon
        finish(env, [proc], tail)
        # None: cut at the horizon (monitors, parametrised horizons); else run to the end
        assert env.now == ends_at and done == ([10.0] if tail is None else [10.0, 20.0, 30.0])
    finish(env, [proc], 60.0)  # a script that ended: nothing more
    assert env.now == 30.0


def test_s6_replays_long_after_the_capture_run_on_both_systems(catalogue, tmp_path):
    # the baseline ran one hour whatever replay_after_s: a replay after it never happened;
    # two hours on, the captured session and signature have expired
    tm = with_parameters(catalogue["S6"], {"replay_after_s": 7200.0})
    r = run_threat(tm, seeds=1, workdir=tmp_path)
    b = r["baseline"]
    assert b["trials"] == 10 and b["successful_replays"] == 0 and "session expired" in b["notes"][0]
    assert r["proml"]["verdict"] == "prevented"


@pytest.mark.parametrize(("k", "c"), [(2, 2), (3, 2), (3, 3), (2, 0)])
def test_s4_colluders_read_the_threshold_from_the_contract(catalogue, tmp_path, k, c):
    r = run_threat(with_parameters(catalogue["S4"], {"approvals": k, "colluders": c}), seeds=1,
                   workdir=tmp_path)
    p, b = r["proml"], r["baseline"]
    assert series(p, "asr_by_c") == {float(x): float(x >= k) for x in range(5)}
    assert p["attribution"] == 1.0 and p["threshold_violations"] == 0.0
    assert p["verdict"] == ("documented_limit" if c >= k else "prevented" if c else "no_attack")
    # the baseline's database administrator is a colluder: one suffices, unseen by the auditor
    assert b["verdict"] == ("documented_limit" if c else "no_attack")
    assert series(b, "asr_by_c")[1.0] == 1
    assert b["attribution"] < 1


def test_s2_no_role(catalogue, tmp_path):
    r = run(catalogue, "S2", 1, tmp_path)
    # a play: eve's every call (6 Model and 5 Dataset transitions, 2 registrations, 2 grants,
    # 2 revocations) is refused by the contract's role checks, each named with its reason
    p = r["proml"]
    assert p["verdict"] == "prevented" and p["attack_steps_refused"] == 17
    assert p["notes"][0].count("RoleNotAllowed") == 13 and p["notes"][0].count("NotRoleAdmin") == 4
    assert r["baseline"]["verdict"] == "documented_limit" and r["baseline"]["asr"] == 1.0
