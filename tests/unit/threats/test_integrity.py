"""The tampering scenarios T1-T10 (+ T1L): both sides run; verdicts from the kit's outcome
definition (a consumer acts on the forged artefact / the record is rewritten; detected = an
alarm), at the default and at other parameter values."""

from __future__ import annotations

from pathlib import Path

import pytest

from proml_sim.lifecycles import Dataset, Model
from proml_sim.threats.baseline import CentralDB
from proml_sim.threats.catalogue import load_catalogue
from proml_sim.threats.kit import Alarm, Auditor, dba_rewrite
from proml_sim.threats.runner import Outcome, load_scenarios, verdict, with_parameters
from proml_sim.threats.scenarios.t_history import prefix_violations, version_jumps
from proml_sim.threats.scenarios.t_support import TICK, trials

IDS = ("T1", "T1L", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10")
STRICT = "proml_sim.threats.scenarios.t_tampering:StrictDataset"


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


def run(catalogue, tid: str, side: str, seeds: tuple[int, ...], tmp: Path, **params
        ) -> list[Outcome]:
    sc = load_scenarios()[tid]
    tm = with_parameters(catalogue[tid], params)
    out = []
    for s in seeds:
        d = tmp / f"{tid}-{side}{s}-{len(list(tmp.iterdir()))}"
        d.mkdir()
        out.append(getattr(sc, side)(tm, s, d))
    return out


def test_every_tampering_scenario_is_implemented_with_its_parameters(catalogue):
    impl = load_scenarios()
    for tid in IDS:
        tm = catalogue[tid]
        assert tid in impl and tm.steps and tm.oracle and 1 <= tm.seeds <= 20, tid


def test_auditor_catches_a_rechained_rewrite_only_after_noting_a_later_head(tmp_path):
    def world(name: str, every: float) -> tuple[CentralDB, Auditor, str]:
        db = CentralDB(tmp_path / name, {"Dataset": Dataset, "Model": Model}, admin="da")
        db.grant("da", "Dataset", "dataset_admin", "data-co")
        aid = db.register("da", "Dataset", "ds", "aa" * 32, at=10)
        return db, Auditor(db, every), aid

    db, aud, aid = world("a.sqlite", 100)
    assert aud.visit_until(150) == []  # a head noted at t=100, after the register row
    dba_rewrite(db, aid, {"register": "bb" * 32})
    assert db.verify_audit() is None and db.bypasses > 0  # the chain itself verifies again
    alarms = aud.visit_until(250)
    assert [a.at for a in alarms] == [200.0] and "head" in alarms[0].detail
    db, aud, aid = world("b.sqlite", 1000)  # no visit between the row and the rewrite
    dba_rewrite(db, aid, {"register": "bb" * 32})
    assert aud.visit_until(5000) == []
    db.admin_sql("UPDATE history SET digest='cc' WHERE artefact=?", (aid,))  # no cover-up
    assert "disagrees" in aud.visit_until(6000)[0].detail


def test_trials_counts_attempts_and_caught_successes():
    alarm = [Alarm(40.0, "monitor")]
    o = trials([True, False, True], [True, True, False], attack_at=10.0, alarms=alarm)
    assert o.trials() == (3, 2, 1) and o.attack_succeeded and not o.detected
    assert verdict([o]) == "documented_limit"
    o = trials([True, True], [True, True], attack_at=10.0, alarms=alarm)
    assert verdict([o]) == "detected" and o.ttd_s == 30.0
    assert trials([True], [True]).trials() == (1, 1, 0)  # caught, but no alarm was raised
    assert verdict([trials([False, False], [False, False])]) == "prevented"
    assert trials([], []).trials() == (0, 0, 0)  # no attempt at all (T5 with no bad step)


def test_t1_consumers_refuse_the_swap_the_baseline_auditor_sees_the_cover_up(catalogue,
                                                                             tmp_path):
    base = run(catalogue, "T1", "baseline", (0, 1), tmp_path)
    assert verdict(base) == "detected" and all(o.trials() == (4, 4, 4) for o in base)
    assert all(0 < o.ttd_s <= 3600 for o in base)
    blind = run(catalogue, "T1", "baseline", (0,), tmp_path, audit_every_s=50000.0, consumers=2)
    assert verdict(blind) == "documented_limit" and blind[0].trials() == (2, 2, 0)
    prom = run(catalogue, "T1", "proml", (0,), tmp_path, consumers=3)
    assert verdict(prom) == "prevented" and prom[0].trials() == (3, 0, 0)


@pytest.mark.parametrize(("lifecycle", "expected"), [
    ("SingleAdminDataset", "documented_limit"),  # single-admin: the sock claims label-co
    ("Dataset", "detected"),  # consortium (default): enrolled into data-co, flagged
    (STRICT, "prevented"),  # review separate_domain_from label: refused
])
def test_t1l_laundering_through_a_sock_labeller(catalogue, tmp_path, lifecycle, expected):
    prom = run(catalogue, "T1L", "proml", (1,), tmp_path, lifecycle=lifecycle, consumers=2)
    assert verdict(prom) == expected, prom[0].note
    if expected == "detected":
        assert "ForeignAccount" in prom[0].note and prom[0].ttd_s is not None


def test_t1l_without_in_house_labelling_the_release_digest_gives_it_away(catalogue, tmp_path):
    prom = run(catalogue, "T1L", "proml", (0,), tmp_path, consumers=2, in_house_labelling=False)
    assert verdict(prom) == "detected" and "label reverted" in prom[0].note
    base = run(catalogue, "T1L", "baseline", (0,), tmp_path)
    assert verdict(base) == "documented_limit"


def test_t1l_sock_domain_must_fit_a_trust_domain_id(catalogue, tmp_path):
    from proml_sim.errors import UsageError

    for side in ("baseline", "proml"):
        with pytest.raises(UsageError, match=r"sock_domain = 'x{33}' is longer than 32 bytes"):
            run(catalogue, "T1L", side, (0,), tmp_path, sock_domain="x" * 33)


def test_t2_swapped_model_never_used_on_proml(catalogue, tmp_path):
    base = run(catalogue, "T2", "baseline", (0, 1), tmp_path)
    prom = run(catalogue, "T2", "proml", (0, 1), tmp_path)
    assert all(o.attack_succeeded for o in base)  # the rewritten record agrees with the swap
    assert verdict(prom) == "prevented" and all(o.ttd_s is None for o in prom)
    assert [o.note for o in prom] == ["hand-off MD->V", "hand-off V->C"]
    more = run(catalogue, "T2", "proml", (2,), tmp_path, verifiers=4, handoff="V->C",
               verifier_check_rate=0.0)
    assert verdict(more) == "prevented" and more[0].note == "hand-off V->C"
    # 90 verifiers: their planned times come closer than a confirmed approval takes, so each
    # acts when the one before it is done (it was an internal error: a negative delay)
    many = run(catalogue, "T2", "proml", (0,), tmp_path, verifiers=90)
    assert verdict(many) == "prevented" and many[0].trials() == (1, 0, 0)


def test_t3_label_flip_is_a_limit_with_exact_attribution_and_recall(catalogue, tmp_path):
    base = run(catalogue, "T3", "baseline", (1,), tmp_path)
    prom = run(catalogue, "T3", "proml", (1,), tmp_path, models=5)
    assert verdict(base) == verdict(prom) == "documented_limit"
    assert base[0].metrics["attribution"] == 0.0 and base[0].metrics["recall"] == 1.0
    m = prom[0].metrics
    assert m["attribution"] == m["recall"] == m["precision"] == 1.0 and m["blast_radius"] >= 1


def test_t4_baseline_rewrite_alarms_from_the_audit_chain_check(catalogue, tmp_path):
    base = run(catalogue, "T4", "baseline", (0, 1), tmp_path)
    assert verdict(base) == "detected"
    assert all(o.metrics["audit_chain_verifies_after"] == 1 and o.note.endswith("auditor")
               and 0 < o.ttd_s <= 300 for o in base)
    late = run(catalogue, "T4", "baseline", (0,), tmp_path, audit_every_s=20000.0)
    assert verdict(late) == "documented_limit"
    prom = run(catalogue, "T4", "proml", (0,), tmp_path)
    assert verdict(prom) == "prevented"
    # the owner (Model's founding domain) cannot even revoke another domain's verifier under
    # the consortium default: 5 of its attempts revert (withdraw alone appends)
    assert prom[0].metrics == {"attempts_reverted": 5.0, "decoy_same_fingerprint": 1.0}


def test_prefix_violations_and_version_jumps():
    assert prefix_violations([(1,), (1, 2), (1, 2, 3)]) == 0
    assert prefix_violations([(1, 2), (1,), (2,)]) == 2  # shortened, then rewritten
    assert version_jumps([1, 2, 3]) == 0 and version_jumps([1, 2, 2**63 - 1]) == 1


def test_t5_approved_lies_count_as_success(catalogue, tmp_path):
    prom = run(catalogue, "T5", "proml", (0,), tmp_path)
    m = prom[0].metrics
    assert verdict(prom) == "documented_limit" and prom[0].trials() == (3, 1, 0)
    assert m == {"broken_lineage_acceptance": 0.0, "lie_acceptance": 1.0,
                 "honest_acceptance": 1.0}
    only_broken = run(catalogue, "T5", "proml", (1,), tmp_path, lie=0, broken=3, honest=1)
    assert verdict(only_broken) == "prevented" and only_broken[0].trials() == (3, 0, 0)
    only_lies = run(catalogue, "T5", "proml", (2,), tmp_path, lie=2, broken=0, honest=0)
    assert verdict(only_lies) == "documented_limit" and only_lies[0].trials() == (2, 2, 0)
    # kinds absent from the run have no acceptance rate (not 0, nor 1 for honest steps)
    assert only_lies[0].metrics == {"broken_lineage_acceptance": None, "lie_acceptance": 1.0,
                                    "honest_acceptance": None}
    base = run(catalogue, "T5", "baseline", (0,), tmp_path, lie=0)
    assert verdict(base) == "documented_limit"  # the admin rewrote the broken steps' inputs


def test_t6_split_view_refused_on_both_recovered_on_proml(catalogue, tmp_path):
    base = run(catalogue, "T6", "baseline", (0, 1), tmp_path)
    prom = run(catalogue, "T6", "proml", (0,), tmp_path, consumers=4, targeted_fraction=1.0)
    assert verdict(base) == verdict(prom) == "prevented"
    assert prom[0].trials() == (4, 0, 0) and prom[0].metrics["recovered"] == 4
    assert prom[0].metrics["url_only_accepted"] == 0
    # nobody targeted: no consumer is served the split view, so nothing was attempted
    for side in ("baseline", "proml"):
        none = run(catalogue, "T6", side, (0,), tmp_path, targeted_fraction=0.0)
        assert verdict(none) == "no_attack" and none[0].trials() == (0, 0, 0)


def test_t7_rollback_prevented_on_proml(catalogue, tmp_path):
    base = run(catalogue, "T7", "baseline", (0, 1), tmp_path)
    assert sum(o.trials()[1] for o in base) > 0  # new consumers take the old release
    prom = run(catalogue, "T7", "proml", (0,), tmp_path, releases=4, new_consumers=1)
    assert verdict(prom) == "prevented" and prom[0].trials() == (3, 0, 0)


def test_t8_cross_version_tuples_refused(catalogue, tmp_path):
    base = run(catalogue, "T8", "baseline", (0,), tmp_path)
    prom = run(catalogue, "T8", "proml", (0,), tmp_path)
    assert base[0].trials()[:2] == (17, 17)
    assert verdict(prom) == "prevented" and prom[0].metrics["genuine_accepted"] == 1.0
    # the ablation on the same chain: evaluation-only approvals let mixes through
    assert prom[0].metrics["asr_eval_only_binding"] == pytest.approx(5 / 17)


def test_t9_versions_assigned_by_both_systems(catalogue, tmp_path):
    base = run(catalogue, "T9", "baseline", (0,), tmp_path, legit_updates=2)
    prom = run(catalogue, "T9", "proml", (0,), tmp_path, legit_updates=2)
    assert verdict(base) == verdict(prom) == "prevented"
    assert base[0].metrics["max_version"] == 2 + 3 + 2  # register, m1, 3 insider calls, legit
    m = prom[0].metrics
    assert m["verified"] == 1 and m["attempts_reverted"] == 3 and m["version_jumps"] == 0


def test_t10_detection_follows_the_spot_check_rate(catalogue, tmp_path):
    base = run(catalogue, "T10", "baseline", (0,), tmp_path)
    prom = run(catalogue, "T10", "proml", (0,), tmp_path, spot_check_rate=1.0)
    assert verdict(base) == "documented_limit"
    assert all(y == 0.0 for _, y in base[0].series["detection_by_spot_rate"])
    assert verdict(prom) == "detected"  # every cheat re-run at rate 1
    # timed from each cheating step's start to its spot check's alarm (it was null)
    assert prom[0].ttd_s is not None and 0 < prom[0].ttd_s <= 7 * TICK
    curve = dict(prom[0].series["detection_by_spot_rate"])
    assert curve[0.0] == 0.0 and curve[1.0] == 1.0
    assert [curve[p] for p in sorted(curve)] == sorted(curve.values())
    assert prom[0].metrics["false_alarms"] == 0
    # no cheating step: no attempt, and no detection curve (a rate over none is undefined)
    none = run(catalogue, "T10", "proml", (0,), tmp_path, cheat_rate=0.0)
    assert verdict(none) == "no_attack" and none[0].series["detection_by_spot_rate"] == []


#: Dataset lifecycles of a researcher's own that T1 cannot run as written: a 2-of-n review,
#: and a release only the operator may do
T1_MISFITS = '''
from proml_sim.lifecycles import Dataset

class ReviewK2(Dataset):
    review = Dataset.labelled.to(Dataset.reviewed, by=Dataset.dataset_admin, approvals=2,
                                 count="accounts", separate_from="label")

class OperatorReleases(Dataset):
    release = Dataset.reviewed.to(Dataset.released, by=Dataset.operator, evidence=True)

class LabelOnce(Dataset):
    label = Dataset.collected.to(Dataset.labelled, by=Dataset.labeller, evidence=True)
'''

#: Dataset lifecycles whose steps take evidence elsewhere than the paper's: T1 passes a digest
#: where the lifecycle takes one (a digest on a step without evidence was an internal error)
T1_EVIDENCE = '''
from proml_sim.dsl import Artefact, Consortium, Role, State
from proml_sim.lifecycles import Dataset

class PlainRelease(Dataset):
    release = Dataset.reviewed.to(Dataset.released, by=Dataset.dataset_admin)

class EvidenceReview(Dataset):
    review = Dataset.labelled.to(Dataset.reviewed, by=Dataset.dataset_admin,
                                 separate_from="label", evidence=True)

class NoDigests(Artefact):
    governance = Consortium(quorum=2)
    operator = Role()
    dataset_admin = Role()
    labeller = Role(admin=dataset_admin)
    collected = State(initial=True, by=dataset_admin)
    labelled = State()
    reviewed = State()
    released = State(final=True)
    label = collected.to(labelled, by=labeller)
    review = labelled.to(reviewed, by=dataset_admin, separate_from="label")
    release = reviewed.to(released, by=dataset_admin)
'''


@pytest.mark.parametrize("lifecycle", ["PlainRelease", "EvidenceReview"])
def test_t1_passes_evidence_where_the_lifecycle_takes_it(catalogue, tmp_path, monkeypatch,
                                                         lifecycle):
    import sys

    (tmp_path / "t1_evidence.py").write_text(T1_EVIDENCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "t1_evidence", raising=False)
    spec = f"t1_evidence:{lifecycle}"
    prom = run(catalogue, "T1", "proml", (0,), tmp_path, lifecycle=spec, consumers=2)
    assert verdict(prom) == "prevented" and prom[0].trials() == (2, 0, 0), prom[0].note
    base = run(catalogue, "T1", "baseline", (0,), tmp_path, lifecycle=spec, consumers=2)
    assert verdict(base) == "detected" and base[0].trials() == (2, 2, 2)
    # the laundering goes through each step the lifecycle has, with its evidence or none: the
    # consortium enrols the sock into data-co, and the label-domain monitor flags it
    laundered = run(catalogue, "T1L", "proml", (1,), tmp_path, lifecycle=spec, consumers=2)
    assert verdict(laundered) == "detected", laundered[0].note
    assert "label ok" in laundered[0].note and "release ok" in laundered[0].note


def test_t1_on_a_lifecycle_that_records_no_digest_is_a_usage_error(catalogue, tmp_path,
                                                                   monkeypatch):
    import sys

    from proml_sim.errors import UsageError

    (tmp_path / "t1_evidence.py").write_text(T1_EVIDENCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "t1_evidence", raising=False)
    for tid in ("T1", "T1L"):
        for side in ("baseline", "proml"):
            with pytest.raises(UsageError, match=r"NoDigests records no digest at registration "
                                                 r"nor on label"):
                run(catalogue, tid, side, (0,), tmp_path, lifecycle="t1_evidence:NoDigests")


def test_t1_on_a_lifecycle_it_cannot_set_up_is_a_usage_error(catalogue, tmp_path, monkeypatch):
    # it reported ProML "prevented" there: the honest release never happened, so no consumer
    # could act on anything; both systems now run the lifecycle given, and say why not
    import sys

    from proml_sim.errors import LifecycleError, UsageError
    from proml_sim.threats.runner import run_threat

    (tmp_path / "t1_misfits.py").write_text(T1_MISFITS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "t1_misfits", raising=False)
    for tid in ("T1", "T1L"):
        with pytest.raises(UsageError, match=r"ReviewK2\.review needs 2 approvals"):
            run_threat(with_parameters(catalogue[tid], {"lifecycle": "t1_misfits:ReviewK2"}),
                       seeds=1)
    late = with_parameters(catalogue["T1"], {"lifecycle": "t1_misfits:OperatorReleases"})
    with pytest.raises(UsageError, match=r"refused on the baseline side \(Dataset\.release "
                                         r"needs role operator\).*or a lifecycle"):
        run_threat(late, seeds=1)
    with pytest.raises(LifecycleError, match=r"release needs role operator"):
        run(catalogue, "T1", "proml", (0,), tmp_path, lifecycle="t1_misfits:OperatorReleases")


def test_t1l_attack_steps_the_lifecycle_refuses_are_counted_on_both_systems(catalogue, tmp_path,
                                                                          monkeypatch):
    # a Dataset labelled once: the sock's relabel is refused by the rules on both systems.  The
    # baseline took that refusal for a broken set-up (exit 2); it is the attack refused, and
    # the admin's review and release that follow are judged by the consumers, as on ProML
    import sys

    from proml_sim.threats.runner import run_threat

    (tmp_path / "t1_misfits.py").write_text(T1_MISFITS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "t1_misfits", raising=False)
    spec = "t1_misfits:LabelOnce"
    base = run(catalogue, "T1L", "baseline", (0,), tmp_path, lifecycle=spec, consumers=2)
    assert "label by sock refused: TransitionNotAllowed" in base[0].note
    prom = run(catalogue, "T1L", "proml", (0,), tmp_path, lifecycle=spec, consumers=2)
    assert "label reverted:TransitionNotAllowed" in prom[0].note
    # the admin releases the poisoned digest itself: both consumers take it; only the chain's
    # label-domain monitor notices a release of other bytes than were labelled
    assert verdict(base) == "documented_limit" and base[0].trials() == (2, 2, 0)
    assert verdict(prom) == "detected" and prom[0].trials() == (2, 2, 2)
    res = run_threat(with_parameters(catalogue["T1L"], {"lifecycle": spec}), seeds=1)
    assert (res["baseline"]["verdict"], res["proml"]["verdict"]) == ("documented_limit", "detected")


def test_t3_without_a_model_trained_on_the_flipped_labels_is_no_attack(catalogue, tmp_path):
    # models = 1: on seeds 0-2 the one model trains on the clean dataset only; nothing refused
    # the flipped labels, nobody used them: no attempt (it was measured "prevented")
    for side in ("baseline", "proml"):
        out = run(catalogue, "T3", side, (0, 1, 2), tmp_path, models=1)
        assert verdict(out) == "no_attack", side
        assert all(o.metrics["labels_flipped"] > 0 and o.metrics["blast_radius"] == 0
                   for o in out), side
    # seed 3's model does train on them: the limit, as at the defaults
    assert verdict(run(catalogue, "T3", "proml", (3,), tmp_path, models=1)) == \
        "documented_limit"
