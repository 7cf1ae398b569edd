"""The integrity scenarios T2-T10: both sides run, the verdicts and key metrics as measured."""

from __future__ import annotations

from pathlib import Path

import pytest

from proml_sim.threats.catalogue import load_catalogue
from proml_sim.threats.runner import Outcome, load_scenarios, summarise, verdict
from proml_sim.threats.scenarios import t_integrity, t_support
from proml_sim.threats.scenarios.t_history import prefix_violations, version_jumps

IDS = ("T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10")


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


def run(catalogue, tid: str, side: str, seeds: tuple[int, ...], tmp: Path, tag: str = ""
        ) -> list[Outcome]:
    sc = load_scenarios()[tid]
    out = []
    for s in seeds:
        d = tmp / f"{tid}-{side}{s}{tag}"
        d.mkdir()
        out.append(getattr(sc, side)(catalogue[tid], s, d))
    return out


def mean(outs: list[Outcome], key: str) -> float:
    return sum(o.metrics[key] for o in outs) / len(outs)


def test_the_catalogue_has_every_integrity_scenario_implemented(catalogue):
    impl = load_scenarios()
    for tid in IDS:
        tm = catalogue[tid]
        assert tid in impl and tm.steps and tm.oracle and 1 <= tm.seeds <= 20, tid


def test_t2_swap_at_hand_off_detected_at_verifier_or_consumer(catalogue, tmp_path):
    base = run(catalogue, "T2", "baseline", (0, 1), tmp_path)  # seed 0: MD->V, seed 1: V->C
    prom = run(catalogue, "T2", "proml", (0, 1), tmp_path)
    assert verdict(base) == "documented_limit" and mean(base, "swapped_accepted") == 1.0
    assert verdict(prom) == "detected" and mean(prom, "swapped_accepted") == 0.0
    assert [o.note for o in prom] == ["hand-off MD->V", "hand-off V->C"]
    assert prom[1].metrics["detected_at_consumer"] == 1.0  # only the consumer saw the swap
    assert all(o.ttd_s is not None and o.ttd_s >= 0 for o in prom)


def test_t3_label_flip_is_a_limit_with_exact_attribution_and_recall(catalogue, tmp_path):
    base = run(catalogue, "T3", "baseline", (0,), tmp_path)
    prom = run(catalogue, "T3", "proml", (0, 1), tmp_path)
    assert verdict(base) == verdict(prom) == "documented_limit"
    assert base[0].metrics["attribution"] == 0.0  # the admin shifted the blame
    for o in prom:
        assert o.metrics["attribution"] == 1.0
        assert o.metrics["recall"] == 1.0 and o.metrics["precision"] == 1.0
        assert o.metrics["blast_radius"] >= 1


def test_t3_recall_from_chain_events_matches_the_node_lineage(catalogue, tmp_path,
                                                             monkeypatch):
    with_module = run(catalogue, "T3", "proml", (2,), tmp_path, "lineage")
    assert with_module[0].note == "affected models found by node lineage"
    monkeypatch.setattr(t_support, "node_module", lambda name: None)
    from_events = run(catalogue, "T3", "proml", (2,), tmp_path, "events")
    assert from_events[0].note == "affected models found by chain events"
    assert from_events[0].metrics == with_module[0].metrics


def test_t4_history_stays_a_prefix_on_proml_not_in_the_database(catalogue, tmp_path):
    base = run(catalogue, "T4", "baseline", (0, 1), tmp_path)
    prom = run(catalogue, "T4", "proml", (0,), tmp_path)
    # the DBA bypasses the append-only guards and re-chains the audit trail (which then
    # verifies); the outside auditor's snapshots catch the rewrite within one snapshot period
    assert verdict(base) == "detected"
    assert all(o.metrics["integrity_violations"] > 0 and o.metrics["reject_present"] == 0
               and o.metrics["guard_bypasses"] > 0
               and o.metrics["audit_chain_verifies_after"] == 1 for o in base)
    assert all(o.detected and 0 < o.ttd_s <= 300 for o in base)
    m = prom[0].metrics
    assert verdict(prom) == "prevented"
    assert m["integrity_violations"] == 0 and m["reject_present"] == 1
    assert m["consumers_fooled"] == 0 and m["decoy_same_fingerprint"] == 1
    # withdraw appends; the owner (Model's founding domain) cannot even revoke another
    # domain's verifier under the consortium default
    assert m["attempts_reverted"] == 5 and m["cover_up_attempts"] == 6


def test_prefix_violations_and_version_jumps():
    assert prefix_violations([(1,), (1, 2), (1, 2, 3)]) == 0
    assert prefix_violations([(1, 2), (1,), (2,)]) == 2  # shortened, then rewritten
    assert version_jumps([1, 2, 3]) == 0 and version_jumps([1, 2, 2**63 - 1]) == 1


def test_t5_broken_lineage_refused_lies_pass(catalogue, tmp_path):
    base = run(catalogue, "T5", "baseline", (0,), tmp_path)
    prom = run(catalogue, "T5", "proml", (0,), tmp_path)
    assert verdict(base) == "documented_limit"
    assert base[0].metrics["broken_lineage_acceptance"] == 1.0
    m = prom[0].metrics
    assert verdict(prom) == "detected"
    assert m["broken_lineage_acceptance"] == 0.0 and m["honest_acceptance"] == 1.0
    assert m["lie_acceptance"] == 1.0  # the residual limit: the hash itself is a lie
    assert "node verify" in prom[0].note


def test_t5_local_lineage_rule_agrees_with_node_verify(catalogue, tmp_path, monkeypatch):
    monkeypatch.setattr(t_integrity, "node_module", lambda name: None)
    prom = run(catalogue, "T5", "proml", (1,), tmp_path)
    assert "local rule" in prom[0].note and verdict(prom) == "detected"
    assert prom[0].metrics == {"broken_lineage_acceptance": 0.0, "lie_acceptance": 1.0,
                               "honest_acceptance": 1.0}


def test_t6_split_view_detected_and_recovered(catalogue, tmp_path):
    base = run(catalogue, "T6", "baseline", (0, 1), tmp_path)
    prom = run(catalogue, "T6", "proml", (0, 1), tmp_path)
    # the baseline records the digest too (as T1's): its consumers see every mismatch; the
    # difference is recovery (ProML fetches the recorded bytes from a replica by digest)
    assert verdict(base) == "detected" and mean(base, "consumers_exposed") == 0
    assert all(o.trials()[0] == o.trials()[1] > 0 for o in base)
    assert verdict(prom) == "detected"
    for o in prom:
        m = o.metrics
        assert m["consumers_exposed"] == 0 and m["url_only_accepted"] == 0
        assert m["mismatches_served"] > 0
        assert m["mismatches_detected"] == m["recovered"] == m["mismatches_served"]


def test_t7_rollback_prevented_and_accepted_releases_monotonic(catalogue, tmp_path):
    base = run(catalogue, "T7", "baseline", (0, 1), tmp_path)
    prom = run(catalogue, "T7", "proml", (0, 1), tmp_path)
    assert verdict(base) == "documented_limit" and mean(base, "consumers_exposed") > 0
    assert verdict(prom) == "prevented"
    for o in prom:
        assert o.metrics["consumers_exposed"] == 0 and o.metrics["monotonic_violations"] == 0
        assert o.metrics["refused"] == 4  # every consumer was served an old release
    s = summarise(prom)
    assert s["asr"] == 0.0 and s["asr_ci"][1] < 1.0


def test_t8_cross_version_tuples_refused(catalogue, tmp_path):
    base = run(catalogue, "T8", "baseline", (0,), tmp_path)
    prom = run(catalogue, "T8", "proml", (0,), tmp_path)
    assert verdict(base) == "documented_limit" and base[0].metrics["cross_tuple_asr"] == 1.0
    m = prom[0].metrics
    assert verdict(prom) == "prevented"
    assert m["cross_tuple_asr"] == 0.0 and m["tuples"] == 17 and m["genuine_accepted"] == 1.0
    # the ablation on the same chain: evaluation-only approvals let mixes through
    assert m["asr_eval_only_binding"] == pytest.approx(5 / 17)


def test_t9_versions_assigned_by_the_contract(catalogue, tmp_path):
    base = run(catalogue, "T9", "baseline", (0,), tmp_path)
    prom = run(catalogue, "T9", "proml", (0,), tmp_path)
    legit = catalogue["T9"].parameters["legit_updates"]
    # the careful baseline numbers versions itself too: the fast-forward has nowhere to go
    assert verdict(base) == "prevented"
    assert base[0].metrics["legit_rejected"] == 0 and base[0].metrics["version_jumps"] == 0
    assert base[0].metrics["max_version"] == legit + 3  # register, m1, the insider's, legit
    m = prom[0].metrics
    assert verdict(prom) == "prevented"
    assert m["legit_rejected"] == 0 and m["version_jumps"] == 0 and m["verified"] == 1
    assert m["attempts_reverted"] == 3  # the functions taking a version do not exist
    # register, train, 3 attempts with an appended version (each +1), legit trains, verify
    assert m["max_version"] == 2 + 3 + legit + 1


def test_t10_detection_follows_the_spot_check_rate(catalogue, tmp_path):
    base = run(catalogue, "T10", "baseline", (0,), tmp_path)
    prom = run(catalogue, "T10", "proml", (0, 1), tmp_path)
    assert verdict(base) == verdict(prom) == "documented_limit"
    assert all(y == 0.0 for _, y in base[0].series["detection_by_spot_rate"])
    for o in prom:
        curve = dict(o.series["detection_by_spot_rate"])
        assert curve[0.0] == 0.0 and curve[1.0] == 1.0  # a full re-run finds every cheat
        ys = [curve[p] for p in sorted(curve)]
        assert ys == sorted(ys)  # more spot checks never find less
        assert o.metrics["false_alarms"] == 0
