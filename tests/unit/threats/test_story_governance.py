"""Governance in a play (proml_sim.threats.story): propose / vote / execute, ``admin@DOMAIN``
signers, steps repeated over a counted actor, goal steps, step metrics, counts read from the
deployed lifecycle (``reads``) and a member's governance review.  E1 and E3 are such plays;
their verdicts follow what the deployed lifecycle does, not the file."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

from proml_sim.errors import UsageError
from proml_sim.threats.catalogue import CatalogueError, load_catalogue, load_threat
from proml_sim.threats.runner import run_threat, with_parameters
from proml_sim.threats.story import run_proml

ROOT = Path(__file__).resolve().parents[3]
E1 = (ROOT / "threat_models" / "E1.toml").read_text()
E3 = (ROOT / "threat_models" / "E3.toml").read_text()

#: a Model whose verification needs three domains (a researcher's own lifecycle)
MODEL3 = '''
from proml_sim.lifecycles import Model

class Model3(Model):
    verify = Model.trained.to(Model.verified, by=Model.verifier, approvals=3, count="domains",
                              evidence=True, separate_from=Model.train,
                              separate_domain_from=Model.train)
'''


def _on_lifecycle(tmp: Path, monkeypatch: pytest.MonkeyPatch, tid: str, param: str,
                  source: str, spec: str) -> Any:
    """Threat model ``tid`` with ``param`` naming a lifecycle of one's own: ``source`` written
    as the module of ``spec`` (``module:Class``), importable for this test only."""
    module = spec.split(":")[0]
    (tmp / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp))
    monkeypatch.delitem(sys.modules, module, raising=False)
    return with_parameters(load_catalogue()[tid], {param: spec})


def _file(tmp: Path, text: str, tid: str) -> Path:
    p = tmp / f"{tid}.toml"
    p.write_text(text)
    return p


def test_e3_rotation_locks_the_stolen_key_out_and_single_admin_cannot() -> None:
    r = run_threat(load_catalogue()["E3"], seeds=1)
    p = r["proml"]
    assert (p["verdict"], p["asr"], p["rotated"], p["new_key_works"]) == (
        "prevented", 0.0, 1.0, 1.0)
    assert "NotRoleAdmin" in p["notes"][0] and "NotDomainAdmin" in p["notes"][0]
    assert p["single_admin_asr"] == 1.0  # the one admin key of the single-admin design
    assert (r["baseline"]["asr"], r["baseline"]["detection_rate"]) == (1.0, 0.0)


def test_without_the_quorums_execution_the_stolen_key_wins(tmp_path: Path) -> None:
    # the verdict is the chain's: take the rotation's execution out and the thief's grant
    # goes through on ProML too
    text = E3.replace('''[[play.steps]]
do = "execute"
by = "admin@org-1"
lifecycle = "Model"
proposal = "rotate"
on = "proml"
metric = "rotated"
''', "")
    r = run_threat(load_threat(_file(tmp_path, text, "E3")), seeds=1)
    assert r["proml"]["asr"] == 1.0 and r["proml"]["verdict"] != "prevented"
    assert r["proml"]["new_key_works"] == 0.0


def test_governance_steps_are_skipped_and_noted_on_a_single_admin_lifecycle() -> None:
    tm = with_parameters(load_catalogue()["E3"], {"model": "SingleAdminModel"})
    r = run_threat(tm, seeds=1)
    notes = r["proml"]["notes"][0]
    assert "SingleAdminModel has no governance" in notes and "skipped" in notes
    assert r["proml"]["asr"] == 1.0 and "rotated" not in r["proml"]


def test_e1_reads_k_from_the_deployed_lifecycle(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    tm = _on_lifecycle(tmp_path, monkeypatch, "E1", "model", MODEL3, "e1_model_k3:Model3")
    r = run_threat(tm, seeds=1)
    # k = 3: the attacker mints three Sybils, enough on the database, refused on the chain
    assert r["baseline"]["asr"] == 1.0
    assert r["proml"]["asr"] == 0.0 and "sybil2" in r["proml"]["notes"][0]
    assert r["proml"]["single_admin_asr"] == 1.0
    with pytest.raises(UsageError, match="sybils is read from the deployed lifecycle"):
        with_parameters(load_catalogue()["E1"], {"sybils": 3})


#: a Model governed by a quorum of three member domains
MODEL_Q3 = '''
from proml_sim.dsl import Consortium
from proml_sim.lifecycles import Model

class ModelQ3(Model):
    governance = Consortium(quorum=3)
'''


def test_e3_at_a_quorum_of_three_more_members_vote(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # E3's defenders voted with org-1 and org-2 only: at quorum 3 their execution was refused
    # and the run stopped (exit 2, "fix the set-up"); `by = "members"` votes up to the
    # quorum the deployed contract counts, so the verdict is the contract's at any quorum
    r = run_threat(_on_lifecycle(tmp_path, monkeypatch, "E3", "model", MODEL_Q3,
                                 "e3_model_q3:ModelQ3"), seeds=1)
    p = r["proml"]
    assert (p["verdict"], p["asr"], p["rotated"], p["new_key_works"]) == (
        "prevented", 0.0, 1.0, 1.0)
    # without the vote up to the quorum, the two votes the file names are not enough
    members_vote = '''[[play.steps]]
do = "vote"
by = "members"
lifecycle = "Model"
proposal = "rotate"
on = "proml"
'''
    assert members_vote in E3
    short = with_parameters(load_threat(_file(tmp_path, E3.replace(members_vote, ""), "E3")),
                            {"model": "e3_model_q3:ModelQ3"})
    with pytest.raises(UsageError, match="QuorumNotReached"):
        run_proml(short, 0, tmp_path)


def test_e2_casts_the_honest_labs_the_deployed_k_needs(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # E2 cast one honest lab: at k = 3 nobody could verify, so the baseline was "prevented"
    # for want of approvers, not by a defence; it now reads k - 1 labs from the contract
    r = run_threat(_on_lifecycle(tmp_path, monkeypatch, "E2", "model", MODEL3,
                                 "e2_model_k3:Model3"), seeds=1)
    assert (r["baseline"]["verdict"], r["baseline"]["asr"]) == ("documented_limit", 1.0)
    assert (r["proml"]["verdict"], r["proml"]["asr"]) == ("prevented", 0.0)
    assert r["proml"]["single_admin_asr"] == 1.0
    # k minus more than k is refused, naming the entry
    e2 = (ROOT / "threat_models" / "E2.toml").read_text()
    bad = load_threat(_file(tmp_path, e2.replace('"Model.verify - 1"', '"Model.verify - 5"'),
                            "E2"))
    with pytest.raises(UsageError, match=r"play.reads labs = 'Model.verify - 5' is -3"):
        run_proml(bad, 0, tmp_path)
    with pytest.raises(CatalogueError, match=r"play\.reads"):
        load_threat(_file(tmp_path, e2.replace('"Model.verify - 1"', '"Model.verify + 1"'),
                          "E2"))


#: a researcher's Model-like lifecycle that names every role, step and state otherwise, and
#: takes evidence at registration (the plays register with a digest, so they run on it)
CHECKPOINT = '''
from proml_sim.dsl import Artefact, Consortium, Role, State

class Checkpoint(Artefact):
    governance = Consortium(quorum=2)
    owner = Role()
    engineer = Role()
    reviewer = Role()
    proposed = State(initial=True, by=owner, evidence=True)
    built = State()
    signed_off = State()
    shipped = State(final=True)
    build = (proposed | built).to(built, by=engineer, evidence=True)
    approve = built.to(signed_off, by=reviewer, approvals=3, count="domains", evidence=True,
                       separate_from=build, separate_domain_from=build)
    ship = signed_off.to(shipped, by=owner)
'''
CHECKPOINT_NAMES = {"operator": "owner", "developer": "engineer", "verifier": "reviewer",
                    "train": "build", "verify": "approve", "verified": "signed_off"}


def test_a_play_runs_on_a_lifecycle_that_names_things_otherwise(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # E2 on a lifecycle without 'verify': refused, naming the rename parameter; with the
    # names mapped, the play runs there (k = 3 read from 'approve'), and its single-admin
    # comparison still runs on the paper's SingleAdminModel, whose names it keeps
    tm = _on_lifecycle(tmp_path, monkeypatch, "E2", "model", CHECKPOINT, "e2_ckpt:Checkpoint")
    with pytest.raises(UsageError, match=r"no transition 'verify'.*--param 'rename = "):
        run_proml(tm, 0, tmp_path)
    r = run_threat(with_parameters(tm, {"rename": CHECKPOINT_NAMES}), seeds=1)
    assert (r["baseline"]["verdict"], r["baseline"]["asr"]) == ("documented_limit", 1.0)
    assert (r["proml"]["verdict"], r["proml"]["asr"]) == ("prevented", 0.0)
    assert r["proml"]["single_admin_asr"] == 1.0
    # keys of the lifecycle ("Model.verify") and one table for several plays (E3 uses no
    # 'train'); a name mapped to one the lifecycle lacks is named
    e3 = _on_lifecycle(tmp_path, monkeypatch, "E3", "model", CHECKPOINT, "e2_ckpt:Checkpoint")
    names = {f"Model.{k}": v for k, v in CHECKPOINT_NAMES.items()}
    assert run_threat(with_parameters(e3, {"rename": names}), seeds=1)["proml"]["asr"] == 0.0
    with pytest.raises(UsageError, match=r"no transition 'aprove'"):
        run_proml(with_parameters(tm, {"rename": {**CHECKPOINT_NAMES, "verify": "aprove"}}),
                  0, tmp_path)
    with pytest.raises(UsageError, match=r"not a table of names"):
        run_proml(with_parameters(tm, {"rename": {"verify": 3}}), 0, tmp_path)


def test_s2_runs_on_a_lifecycle_of_ones_own_its_baseline_reading_k(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # S2 on a researcher's Model (k = 3 of domains, every name its own): eve's calls are
    # refused on chain; on the baseline she enrols as many made-up verifiers as the deployed
    # verification needs (two were fixed in the file: at k = 3 the baseline was "prevented")
    tm = _on_lifecycle(tmp_path, monkeypatch, "S2", "model", CHECKPOINT, "s2_ckpt:Checkpoint")
    r = run_threat(with_parameters(tm, {"rename": CHECKPOINT_NAMES}), seeds=1)
    assert (r["baseline"]["verdict"], r["baseline"]["asr"]) == ("documented_limit", 1.0)
    assert (r["proml"]["verdict"], r["proml"]["asr"]) == ("prevented", 0.0)
    assert "eve fires approve on 'm'" in r["proml"]["notes"][0]
    with pytest.raises(UsageError, match=r"no transition 'verify'.*--param 'rename = "):
        run_proml(tm, 0, tmp_path)


def test_too_few_members_is_a_usage_error(tmp_path: Path) -> None:
    r = run_threat(with_parameters(load_catalogue()["E1"], {"members": 5}), seeds=1)
    assert r["proml"]["asr"] == 0.0 and r["proml"]["single_admin_asr"] == 1.0
    for tid, play_says in (("E1", "'org-2' is no domain of the cast"), ("E3", "admin@org-2")):
        tm = load_catalogue()[tid]
        with pytest.raises(UsageError, match=r"members = 2 is out of range \(>= 3\)"):
            with_parameters(tm, {"members": 2})
        # run_threat checks [ranges] however the parameters were set; past them (the play
        # alone) the play itself names the member it lacks
        bypass = dataclasses.replace(tm, parameters={**tm.parameters, "members": 2})
        with pytest.raises(UsageError, match="members = 2 is out of range"):
            run_threat(bypass, seeds=1)
        with pytest.raises(UsageError, match=play_says):
            run_proml(bypass, 0, tmp_path)


def test_the_review_defence_raises_from_the_chain_events(tmp_path: Path) -> None:
    r = run_threat(load_catalogue()["E1"], seeds=1)
    assert r["matches_expected"], r
    # the founder's proposal of a Sybil domain is refused at execution, but org-2's node has
    # seen it (a detection that counts only for a successful attack: none here)
    assert r["proml"]["detection_rate"] is None and r["proml"]["asr"] == 0.0
    seen = run_proml(load_catalogue()["E1"], 0, tmp_path)
    assert seen.detected and not seen.attack_succeeded
    # without the member's review nothing on ProML raises (the auditor is the baseline's)
    blind = E1.replace('[[play.defences]]\nkind = "governance"\nmember = "org-2"\nevery = 1.0\n',
                       "")
    assert blind != E1
    (tmp_path / "b").mkdir()
    assert not run_proml(load_threat(_file(tmp_path, blind, "E1")), 0, tmp_path / "b").detected


@pytest.mark.parametrize(("edit", "fragment"), [
    (lambda s: s.replace('proposal = "rotate"\non = "proml"\n\n[[play.steps]]\ndo = "vote"',
                         'proposal = "rotate"\n\n[[play.steps]]\ndo = "vote"'),
     "play.steps[0].on' is 'both'"),
    (lambda s: s.replace('kind = "rotate_admin"', 'kind = "coup"'), "play.steps[0].kind'"),
    (lambda s: s.replace('do = "vote"\nby = "admin@org-2"\nlifecycle = "Model"\n'
                         'proposal = "rotate"', 'do = "vote"\nby = "admin@org-2"\n'
                         'lifecycle = "Model"\nproposal = "rotation"'),
     "play.steps[1].proposal' is 'rotation', made by no earlier step"),
    (lambda s: s.replace('by = "admin@org-2"', 'by = "admin@nowhere"'),
     "play.steps[1].by' is 'admin@nowhere', not an actor"),
    # "members" signs votes only
    (lambda s: s.replace('by = "admin@org-1"', 'by = "members"', 1),
     "play.steps[0].by' is 'members', not an actor"),
    (lambda s: s.replace('who = "recruit"\nrole = "verifier"\nlifecycle = "Model"\nattack = true',
                         'who = "recruit{i}"\nrole = "verifier"\nlifecycle = "Model"\n'
                         'attack = true'), "play.steps[4].who' is 'recruit{i}', not an actor"),
    (lambda s: s.replace('proposal = "rotate"\non = "proml"\nmetric = "rotated"',
                         'proposal = "rotate"\non = "proml"\ngoal = true'),
     "play.steps[3].goal' is before the attack"),
    (lambda s: s.replace("goal = true", ""), "play.consumer' is missing and no goal step"),
    (lambda s: s.replace('member = "org-0"', ''), "play.defences[1].member'"),
    (lambda s: s.replace('member = "org-0"', 'member = "org-9"'), "play.defences[1].member'"),
    (lambda s: s.replace('metric = "rotated"', 'metric = "attack_steps_refused"'),
     "play.steps[3].metric' is the play's own metric"),
    (lambda s: s.replace('roles = "Model.operator', 'roles = "Model.operator').replace(
        "[play]\n", '[play]\nreads = { members = "Model.verify" }\n'), "play.reads'"),
    (lambda s: s.replace("[play]\n", '[play]\nreads = { k = "Dataset.verify" }\n'),
     "play.reads'"),
    (lambda s: s.replace('domain = "org-0"\nproposal = "grab"',
                         'domain = "org-0"\nproposal = "grab"\nroles = "verifier"'),
     "play.steps[5].roles'"),
])
def test_bad_governance_plays_name_the_field(tmp_path: Path, edit, fragment) -> None:  # type: ignore[no-untyped-def]
    p = _file(tmp_path, edit(E3), "E3")
    with pytest.raises(CatalogueError) as info:
        load_threat(p)
    assert str(p) in str(info.value) and fragment in str(info.value)


def test_a_step_over_a_counted_actor_needs_one_count(tmp_path: Path) -> None:
    # own{i} (sybils) and m{i} (members) differ in count: one step cannot pair them
    text = E1.replace('by = "admin@founder"\nwho = "own{i}"', 'by = "m{i}"\nwho = "own{i}"')
    with pytest.raises(UsageError, match="repeats over actors of different counts"):
        run_threat(load_threat(_file(tmp_path, text, "E1")), seeds=1)
    with pytest.raises(UsageError, match="no transition 'verifyy'"):
        run_threat(load_threat(_file(tmp_path, E1.replace('"Model.verify"', '"Model.verifyy"'),
                                     "E1")), seeds=1)
