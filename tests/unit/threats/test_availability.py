"""Scenarios D1-D5, R1-R2 and C1-C3: one seed each through the runner, measured verdicts and
metrics, at the catalogue's parameters and at others (the attackers and oracles read them)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from proml_sim.errors import UsageError
from proml_sim.threats.catalogue import CatalogueError, load_catalogue
from proml_sim.threats.runner import run_threat, with_parameters

IDS = ("D1", "D2", "D3", "D4", "D5", "R1", "R2", "C1", "C2", "C3")


@pytest.fixture(scope="module")
def catalogue() -> dict[str, Any]:
    return load_catalogue()


def run(catalogue: dict[str, Any], tid: str, seeds: int = 1, **params: Any) -> dict[str, Any]:
    return run_threat(with_parameters(catalogue[tid], params), seeds=seeds)


def verdicts(r: dict[str, Any]) -> tuple[str, str]:
    return r["baseline"]["verdict"], r["proml"]["verdict"]


def test_every_threat_model_is_catalogued_with_all_fields(catalogue):
    for tid in IDS:
        tm = catalogue[tid]
        assert tm.steps and tm.oracle and tm.defence and 1 <= tm.seeds <= 10, tid


def test_d1_each_record_is_a_trial_and_full_censorship_is_seen_by_the_victim(catalogue):
    r = run(catalogue, "D1")
    assert verdicts(r) == ("detected", "prevented") and r["matches_expected"]
    records = catalogue["D1"].parameters["records"]
    # the baseline's triggers drop every write the application acknowledged; the read-back
    # sees each gap
    assert r["baseline"]["trials"] == records == r["baseline"]["trial_successes"]
    assert r["baseline"]["writes_acknowledged"] == records
    assert r["proml"]["censorship_delay_s"] > 0 and r["proml"]["censored_forever_rate"] == 0
    assert run(catalogue, "D1", attack_m=0)["proml"]["verdict"] == "no_attack"  # none censors
    every = run(catalogue, "D1", attack_m=5)["proml"]  # every sealer censors
    assert every["verdict"] == "detected" and every["censored_forever_rate"] == 1
    assert every["ttd_s"] == catalogue["D1"].parameters["stall_timeout_s"]
    with pytest.raises(UsageError, match=r"attack_m = 6 is out of range \(>= 0, <= sealers = 5\)"):
        run(catalogue, "D1", attack_m=6)
    # a short run judges the same records on both systems: those sent at least
    # stall_timeout_s before its end (the baseline counted all ten, ProML none: no_attack)
    short = run(catalogue, "D1", attack_m=5, horizon_s=100, stall_timeout_s=40)
    assert verdicts(short) == ("detected", "detected")
    assert 0 < short["baseline"]["trials"] < records and 0 < short["proml"]["trials"] < records
    # the victim sends at the same instants on both systems: every record censored, both judge
    # the same number, whatever the seed
    for seed in range(4):
        both = run_threat(with_parameters(catalogue["D1"], {
            "attack_m": 5, "horizon_s": 150, "stall_timeout_s": 30}), seeds=1, base_seed=seed)
        assert both["baseline"]["trials"] == both["proml"]["trials"] > 0, seed
    # a timeout as long as the run judges no record: no attempt on either side, and each says
    # why (it was a bare no_attack, as if nobody censored)
    late = run(catalogue, "D1", stall_timeout_s=899.0)
    assert verdicts(late) == ("no_attack", "no_attack")
    for side in ("baseline", "proml"):
        assert re.search(r"none of the victim's \d+ record\(s\) was sent stall_timeout_s = 899 s "
                         r"before horizon_s: nothing to judge", late[side]["notes"][0]), late
    with pytest.raises(UsageError, match=r"stall_timeout_s = 900.0 is out of range \(> 0, < "
                                         r"horizon_s = 900.0\)"):
        run(catalogue, "D1", stall_timeout_s=900)


def test_d2_withholding_stalls_only_at_n_minus_k_plus_one(catalogue):
    r = run(catalogue, "D2")
    assert verdicts(r) == ("detected", "detected")
    # the database admin is a withholder: no escalation; the consortium's role admin escalates
    assert r["baseline"]["completion_rate"] == 0 and r["proml"]["completion_rate"] == 1
    assert r["proml"]["ttd_s"] == catalogue["D2"].parameters["timeout_s"]
    assert r["proml"]["latency_s"] > r["proml"]["ttd_s"]
    assert verdicts(run(catalogue, "D2", attack_w=2)) == ("prevented", "prevented")
    # a 3-of-4 step: two withholders already stall it, and the requester reads k = 3
    r3 = run(catalogue, "D2", approvals=3, attack_w=2)
    assert verdicts(r3) == ("detected", "detected") and r3["proml"]["completion_rate"] == 1
    # nobody withholds: no attempt on either system, and every request completes
    r0 = run(catalogue, "D2", attack_w=0)
    assert verdicts(r0) == ("no_attack", "no_attack")
    assert r0["baseline"]["completion_rate"] == r0["proml"]["completion_rate"] == 1


def test_d3_flat_gas_and_an_indexed_baseline(catalogue):
    r = run(catalogue, "D3", history=[1, 300])
    assert verdicts(r) == ("prevented", "prevented") and r["proml"]["gas_growth"] <= 200
    assert r["baseline"]["cost_growth"] < 1.5
    ablation = run(catalogue, "D3", history=[1, 300], baseline_index=False)["baseline"]
    assert ablation["verdict"] == "documented_limit" and ablation["cost_growth"] > 10
    # one length grows nothing and compares nothing (it was measured "prevented")
    for one in ([1], [1000]):
        with pytest.raises(UsageError, match=r"history=.*two or more increasing"):
            run(catalogue, "D3", history=one)


def test_d4_spam_above_capacity_delays_honest_work_and_is_attributed(catalogue):
    r = run(catalogue, "D4")
    b, p = r["baseline"], r["proml"]
    assert verdicts(r) == ("prevented", "detected")
    assert p["honest_latency_p50_s"] > 2 * p["honest_latency_p50_nospam_s"]
    assert abs(p["honest_gas_delta"]) < 50  # gas per honest operation does not degrade
    assert p["junk_after_revoke"] == 0 and p["ttd_s"] < 30 and p["false_flags"] == 0
    assert b["honest_cost_growth"] < 1.2  # the baseline's indexes: flat under junk rows
    # nobody spams at attack_rate 0, on either system (the baseline still spammed its rows)
    assert verdicts(run(catalogue, "D4", attack_rate=0)) == ("no_attack", "no_attack")
    low = run(catalogue, "D4", attack_rate=3)["proml"]  # below capacity: no harm, no flag
    assert low["verdict"] == "prevented" and low["false_flags"] == 0
    # no spam, no junk rows: nothing attempted on either side (no_attack), costs still measured
    none = run(catalogue, "D4", attack_rate=0, baseline_junk=0)
    assert verdicts(none) == ("no_attack", "no_attack") and none["proml"]["junk_records"] == 0
    # a spam window outside the run, or empty, attempts nothing: exit 2 naming the rule (it
    # was "prevented" with an honest latency of 0 s)
    for bad, rule in (({"spam_start_s": 60, "spam_end_s": 20}, "< spam_end_s = 20"),
                      ({"spam_start_s": 200, "spam_end_s": 210}, "<= horizon_s = 150")):
        with pytest.raises(UsageError, match=re.escape(rule)):
            run(catalogue, "D4", **bad)


def test_d5_guard_flags_the_frozen_node_within_seconds(catalogue):
    r = run(catalogue, "D5", seeds=2)
    b, p = r["baseline"], r["proml"]
    assert verdicts(r) in {("documented_limit", "detected"), ("documented_limit", "prevented")}
    assert p["stale_actions"] <= 1 < 20 < p["stale_actions_unguarded"]
    assert p["false_alarms"] == 0 and b["stale_actions"] > 20
    # no use while the node lies (the run ends at the withdrawal): no attempt on either system
    # (both were measured "prevented")
    r = run(catalogue, "D5", after_s=0.0)
    assert verdicts(r) == ("no_attack", "no_attack")
    assert "nothing to judge" in r["baseline"]["notes"][0] and r["proml"]["stale_actions"] == 0


def test_r1_signatures_attribute_and_the_auditor_sees_the_baseline_rewrite(catalogue):
    r = run(catalogue, "R1")
    b, p = r["baseline"], r["proml"]
    assert verdicts(r) == ("detected", "prevented") and r["matches_expected"]
    assert p["attribution"] == 1 and p["replay_matches"] == 1 and p["integrity_violations"] == 0
    assert b["attribution"] < 1 and b["ttd_s"] > 0
    # no auditor's visit between the train and the rewrite: the re-hashed chain verifies
    assert run(catalogue, "R1", audit_every_s=1e9)["baseline"]["verdict"] == "documented_limit"


def test_r2_without_replicas_the_deletion_is_a_documented_limit(catalogue):
    r = run(catalogue, "R2")
    assert verdicts(r) == ("documented_limit", "prevented")
    assert r["proml"]["availability"] == 1 and r["proml"]["trials"] == 10
    r0 = run(catalogue, "R2", replicas=0)["proml"]
    # the consumer sees 'blob missing' for every dataset, which is no detection of a deletion
    assert r0["verdict"] == "documented_limit" and r0["availability"] == 0
    assert r0["missing_noticed"] == 1 and r0["detection_rate"] == 0
    lossy = run(catalogue, "R2", replicas=1, replica_loss=0.5, trials=20)["proml"]
    assert 0 < lossy["asr"] < 1 and lossy["trials"] == 20


def test_c1_private_branch_beats_shallow_policies_and_is_detected(catalogue):
    r = run(catalogue, "C1", attacker_share=0.4, defence_policy="L@3", attack_policy="L@3",
            policies=["L@1", "L@3"])
    p = r["proml"]
    assert verdicts(r) == ("out_of_scope", "detected")
    assert p["trial_successes"] >= 1 and p["trials"] > p["trial_successes"]
    assert p["max_reorg_depth"] >= 3 and p["latency_cost_s"] > 0
    r = run(catalogue, "C1", attacker_share=0.0, records_s=300, policies=["L@12"])
    assert r["proml"]["verdict"] == "no_attack" and r["proml"]["trials"] == 0  # nothing tried
    # a near-total share withholds nearly every block: no victim record gets deep enough to
    # race for, and the report says so (a stall, not a prevented reorg)
    p = run(catalogue, "C1", attacker_share=0.999, records_s=300)["proml"]
    assert p["verdict"] == "no_attack" and p["victim_records_acted"] == 0
    assert re.search(r"no race: of the victim's [1-9]\d* record\(s\), the public chain took 0 "
                     r"to L@6 .*a stall, not a reorg", p["notes"][0]), p["notes"]
    # a run too short for any record: no latency to measure, null (it was NaN, not JSON)
    r = run(catalogue, "C1", records_s=1)
    assert r["proml"]["latency_defence_s"] is None and r["proml"]["latency_cost_s"] is None
    json.dumps(r, allow_nan=False)
    # no victim record at all: the attacker's races remove nothing, no attempt (each race was
    # a trial "prevented" by the defence policy, which had nothing to wait for)
    for records_s in (0.0, 1):
        p = run(catalogue, "C1", records_s=records_s)["proml"]
        assert p["verdict"] == "no_attack" and p["trials"] == 0, (records_s, p)
        assert p["victim_records_acted"] == 0 and "nothing to remove" in p["notes"][0]
        assert p["double_record_rate_shallow"] is None  # no record at stake: no rate (was 0)


def test_c1_runs_on_every_forking_profile_from_the_file_parameters(catalogue):
    # the file's stale_rate is for a PoW or PoA chain: a PoS profile forks by its reorg_rate
    for profile in ("ethereum-pos", "poa-clique"):
        p = run(catalogue, "C1", profile=profile, records_s=300)["proml"]
        assert p["trials"] > 0 and p["verdict"] in ("prevented", "detected"), (profile, p)


def test_c1_c2_bad_parameters_name_the_field(catalogue):
    for tid, bad in (("C1", {"defence_policy": "soon"}), ("C1", {"profile": "consortium-fast"})):
        with pytest.raises(CatalogueError, match=r"\[parameters\].*scenario file"):
            run(catalogue, tid, **bad)
    for tid, bad in (("C1", {"attacker_share": 1.5}), ("C2", {"equivocators": 9})):
        with pytest.raises(UsageError, match=r"is out of range.*\[ranges\] of"):
            run(catalogue, tid, **bad)


def test_c2_checkpoint_agreement_refuses_the_losing_branch(catalogue):
    r = run(catalogue, "C2")
    b, p = r["baseline"], r["proml"]
    assert verdicts(r) == ("detected", "prevented")
    assert p["acted_on_losing_rate"] == 0 and p["acted_on_losing_rate_d3"] == 1
    assert p["checkpoint_completion"] == 1 and p["equivocation_proofs"] > 0
    # the clique signer rule is no defence here: E and 2 honest sealers are 3 of 5 on side A
    assert p["acted_on_losing_rate_finalised"] == 1
    assert b["acted_on_losing_rate"] == 1 and b["ttd_s"] > 0  # noted heads, after the harm
    assert run(catalogue, "C2", heads_kept=False)["baseline"]["verdict"] == "documented_limit"
    p0 = run(catalogue, "C2", equivocators=0)["proml"]  # 2 of 5 on side A: never final there
    assert p0["acted_on_losing_rate_finalised"] == 0 and p0["acted_on_losing_rate_d3"] == 1


def test_c3_block_number_cutoff_ignores_skewed_timestamps(catalogue):
    r = run(catalogue, "C3", deadlines=4)
    b, p = r["baseline"], r["proml"]
    assert verdicts(r) == ("documented_limit", "prevented")
    assert p["trials"] == 8 and b["trials"] == 8 and b["trial_successes"] == 8
    assert p["skewed_blocks"] > 0 and p["skew_flips_naive"] > 0
    assert p["skew_detection_rate"] > 0.5
    assert b["detection_rate"] == 0.5  # the victim's own log; the accomplice never complains
    none = run(catalogue, "C3", deadlines=4, skewer_share=0.0)["proml"]  # the skewer seals none
    assert none["verdict"] == "no_attack" and none["skewed_blocks"] == 0
    # a share so small that the skewer seals no block holding a targeted record: nobody's
    # stamp was skewed, no attempt (it was "prevented" over every record), and an honest
    # miner's whole-second stamp is no skew flip (it counted 1)
    tiny = run(catalogue, "C3", skewer_share=0.001)["proml"]
    assert tiny["verdict"] == "no_attack" and tiny["skewed_blocks"] == 0, tiny
    assert tiny["skew_flips_naive"] == 0
