"""A threat scenario as data ([play], proml_sim.threats.story): the tutorial's X3 runs with no
code on both systems; the lifecycle is a parameter; the same play's verdicts follow the
deployed lifecycle's rules; bad plays are exit 2 naming the file, the field and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proml_sim.cli import main
from proml_sim.errors import UsageError
from proml_sim.threats.catalogue import CatalogueError, load_threat
from proml_sim.threats.catalogue_doc import catalogue_markdown
from proml_sim.threats.kit import Consumer
from proml_sim.threats.runner import run_threat

ROOT = Path(__file__).resolve().parents[3]
X3 = ROOT / "docs" / "tutorials" / "X3.toml"

#: E2's attack as a play: dev-co's own verifier approves the model dev-co trained
SELF_VERIFY = '''
id = "Y1"
title = "one organisation verifies its own model"
stride = ["E"]
attacker_role = "MD"
attacker_domain = "dev-co"
capabilities = ["trains", "holds a verifier account"]
keys_held = ["dev", "dev-qa"]
preconditions = ["a model in training"]
defence = "domain-level separation of duty"
oracle = "the model reaches verified"
metrics = ["asr"]
seeds = 2

[expected]
baseline = "detected"
proml = "prevented"

[parameters]
model = "Model"
every = 60.0

[actors]
op = "client-co eu Model.operator"
dev = "dev-co eu Model.developer"
dev-qa = "dev-co eu Model.verifier"
lab = "lab-1 us Model.verifier"

[play]
lifecycles = { Model = "model" }
observe_s = 600.0

[[play.steps]]
do = "register"
by = "op"
lifecycle = "Model"
artefact = "m"

[[play.steps]]
do = "fire"
by = "dev"
step = "train"
artefact = "m"
digest = "weights"

[[play.steps]]
do = "wait"
seconds = "every"

[[play.steps]]
do = "fire"
by = "dev-qa"
step = "verify"
artefact = "m"
digest = "evaluation"
attack = true

[[play.steps]]
do = "fire"
by = "lab"
step = "verify"
artefact = "m"
digest = "evaluation"

[play.consumer]
artefact = "m"
state = "verified"

[[play.defences]]
kind = "actors"
every = "every"
expect = ["op", "dev", "lab"]
'''


#: T1L's laundering as a play: the dataset admin appoints a labeller account in its own domain
LAUNDER = '''id = "Y2"
title = "the dataset admin launders poisoned labels through a labeller it appoints in-house"
stride = ["T"]
attacker_role = "DA"
attacker_domain = "data-co"
capabilities = ["appoints labellers"]
keys_held = ["da", "sock"]
preconditions = ["a dataset collected"]
defence = "domain binding of roles"
oracle = "a developer uses the released dataset with the poisoned labels"
metrics = ["asr"]
seeds = 2

[expected]
baseline = "documented_limit"
proml = "prevented"

[parameters]
dataset = "Dataset"

[actors]
da = "data-co eu Dataset.dataset_admin"
lab = "label-co asia Dataset.labeller"
sock = "data-co eu"

[play]
lifecycles = { Dataset = "dataset" }
db_admin = "da"
observe_s = 600.0

[[play.steps]]
do = "register"
by = "da"
lifecycle = "Dataset"
artefact = "d"
digest = "raw"

[[play.steps]]
do = "grant"
by = "da"
who = "sock"
role = "labeller"
lifecycle = "Dataset"
attack = true

[[play.steps]]
do = "fire"
by = "sock"
step = "label"
artefact = "d"
digest = "poison"

[[play.steps]]
do = "fire"
by = "da"
step = "review"
artefact = "d"

[[play.steps]]
do = "fire"
by = "da"
step = "release"
artefact = "d"
digest = "poison"

[play.consumer]
artefact = "d"
state = "released"
step = "label"
uses = "poison"
'''


def _model(tmp: Path, text: str = SELF_VERIFY, name: str = "Y1.toml") -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def test_tutorial_x3_runs_without_code(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["threats", "run", "X3", "--scenarios", str(X3), "--seeds", "3", "--json"])
    r = json.loads(capsys.readouterr().out)[0]
    assert code == 0, r
    b, p = r["baseline"], r["proml"]
    # the insider's rewrite is used by the client and caught by the history check
    assert (b["verdict"], b["asr"], b["detection_rate"]) == ("detected", 1.0, 1.0)
    assert b["ttd_s"] > 0
    # on the chain the developer's retrain of a delivered model reverts
    assert (p["verdict"], p["asr"], p["attack_steps_refused"]) == ("prevented", 0.0, 1.0)
    assert any("TransitionNotAllowed" in n for n in p["notes"])
    assert main(["threats", "list", "--scenarios", str(X3), "--json"]) == 0
    row = [x for x in json.loads(capsys.readouterr().out) if x["id"] == "X3"]
    assert row and row[0]["implemented"]


def test_a_play_sweeps_over_lifecycles(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["threats", "run", "X3", "--scenarios", str(X3), "--seeds", "1", "--json",
                 "--param", "model=Model,SingleAdminModel"])
    pts = json.loads(capsys.readouterr().out)[0]["points"]
    assert code == 0 and [p["parameters"]["model"] for p in pts] == ["Model", "SingleAdminModel"]
    assert all(p["proml"]["verdict"] == "prevented" for p in pts)
    code = main(["sweep", "X3", "--scenarios", str(X3), "--seeds", "1", "--workers", "0",
                 "--out", str(tmp_path), "--json"])
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert code == 0 and [(r["id"], r["proml.asr"], r["baseline.asr"]) for r in rows] == [
        ("X3", 0.0, 1.0)]


def test_the_verdict_follows_the_deployed_lifecycle(tmp_path: Path) -> None:
    tm = load_threat(_model(tmp_path))
    r = run_threat(tm, seeds=2)
    # the consortium Model forbids the training domain's own verifier, and so does the
    # database's application, by the domain it recorded (it did not: a weakened baseline)
    assert r["proml"]["verdict"] == "prevented" and r["proml"]["attack_steps_refused"] == 1.0
    assert any("SeparationOfDuty" in n or "reverted" in n for n in r["proml"]["notes"])
    assert (r["baseline"]["verdict"], r["baseline"]["asr"]) == ("prevented", 0.0)
    assert any("trust domain that did train" in n for n in r["baseline"]["notes"])
    # the database's admin records the domain it is told: dev-qa enrolled as a partner's
    # verifier goes through, and the history shows an actor the watcher does not expect
    grant = ('[[play.steps]]\ndo = "grant"\non = "baseline"\nwho = "dev-qa"\n'
             'role = "verifier"\nlifecycle = "Model"\ndomain = "lab-qa"\n\n')
    told = load_threat(_model(tmp_path, SELF_VERIFY.replace(
        '[[play.steps]]\ndo = "wait"', grant + '[[play.steps]]\ndo = "wait"')))
    b = run_threat(told, seeds=2)["baseline"]
    assert (b["verdict"], b["asr"]) == ("detected", 1.0)
    assert b["ttd_s"] == pytest.approx(60.0)
    # the single-admin design has no domain-level separation: the same play succeeds on chain
    # and the members' watch of the events raises the alarm
    single = run_threat(load_threat(_model(tmp_path, SELF_VERIFY.replace(
        'model = "Model"', 'model = "SingleAdminModel"'))), seeds=2)
    assert (single["proml"]["verdict"], single["proml"]["asr"]) == ("detected", 1.0)
    assert single["proml"]["attack_steps_refused"] == 0.0


def test_the_play_is_the_catalogue_row(tmp_path: Path) -> None:
    tm = load_threat(_model(tmp_path))
    assert tm.steps[3] == "dev-qa fires verify on 'm' with 'evaluation' (the attack)"
    page = catalogue_markdown({tm.id: tm})
    assert "dev-qa fires verify on 'm'" in page


def test_a_refused_set_up_step_is_a_usage_error(tmp_path: Path) -> None:
    # the operator cannot train: the play's set-up is wrong, not the attack prevented
    tm = load_threat(_model(tmp_path, SELF_VERIFY.replace('by = "dev"\nstep = "train"',
                                                          'by = "op"\nstep = "train"')))
    with pytest.raises(UsageError, match="refused before the attack"):
        run_threat(tm, seeds=1)


@pytest.mark.parametrize(("edit", "fragment"), [
    (lambda s: s.replace('step = "verify"\nartefact = "m"\ndigest = "evaluation"\nattack',
                         'step = "verfy"\nartefact = "m"\ndigest = "evaluation"\nattack'),
     "has no transition 'verfy'"),
    (lambda s: s.replace('state = "verified"', 'state = "verifed"'), "has no state 'verifed'"),
    # a consumer's step the lifecycle lacks is named as a step, with the steps it has
    (lambda s: s.replace('state = "verified"', 'state = "verified"\nstep = "trian"'),
     "has no step 'trian'; use one of register, train, verify"),
    (lambda s: s.replace('lab = "lab-1 us Model.verifier"', 'lab = "lab-1 us Model.verifier '
                         'Dataset.labeller"'), "lab holds Dataset.labeller, but play.lifecycles"
     " deploys no Dataset"),
    (lambda s: s.replace('lab = "lab-1 us Model.verifier"', 'lab = "lab-1 us Model.checker"'),
     "lab holds Model.checker, but the Model deployed .Model. has no role 'checker'"),
    # evidence on a step that takes none (was an internal TypeError on ProML)
    (lambda s: s + '\n[[play.steps]]\ndo = "fire"\nby = "op"\nstep = "accept"\n'
                   'artefact = "m"\ndigest = "x"\n', "Model.accept takes no evidence; drop"),
])
def test_names_the_lifecycle_does_not_have_are_usage_errors(tmp_path: Path, edit,  # type: ignore[no-untyped-def]
                                                             fragment) -> None:
    # a typo must not read as "prevented": the run stops, naming the step and the fix
    with pytest.raises(UsageError, match=fragment):
        run_threat(load_threat(_model(tmp_path, edit(SELF_VERIFY))), seeds=1)


@pytest.mark.parametrize(("play", "edit", "fragment"), [
    # a step the chain refuses for want of evidence, whoever signs, would read as "prevented"
    (SELF_VERIFY, lambda s: s.replace('step = "verify"\nartefact = "m"\ndigest = "evaluation"\n'
                                      'attack', 'step = "verify"\nartefact = "m"\nattack'),
     r"Model's verify needs an evidence digest .* give the step a digest"),
    (LAUNDER, lambda s: s.replace('artefact = "d"\ndigest = "raw"\n', 'artefact = "d"\n'),
     r"Dataset's registration needs an evidence digest"),
])
def test_a_step_without_the_evidence_its_lifecycle_needs_is_a_usage_error(
        tmp_path: Path, play: str, edit, fragment: str) -> None:  # type: ignore[no-untyped-def]
    text = edit(play)
    assert text != play
    name = "Y2.toml" if play is LAUNDER else "Y1.toml"
    with pytest.raises(UsageError, match=fragment):
        run_threat(load_threat(_model(tmp_path, text, name)), seeds=1)


def test_a_refused_registration_refuses_what_follows(tmp_path: Path) -> None:
    # the attacker registers a look-alike it has no role for: refused on both systems, and
    # its later steps on that artefact are refused too (never a crash)
    text = SELF_VERIFY.replace("""[play.consumer]""", """[[play.steps]]
do = "register"
by = "lab"
lifecycle = "Model"
artefact = "fake"
attack = true

[[play.steps]]
do = "fire"
by = "dev"
step = "train"
artefact = "fake"
digest = "weights"

[play.consumer]""")
    r = run_threat(load_threat(_model(tmp_path, text)), seeds=1)
    # (and dev-qa's verify: the application separates the domains it records)
    assert r["baseline"]["attack_steps_refused"] == 3.0
    assert any("never registered" in n for n in r["baseline"]["notes"])
    assert r["proml"]["attack_steps_refused"] >= 2.0


@pytest.mark.parametrize(("edit", "fragment"), [
    (lambda s: s.replace('lifecycle = "Model"\nartefact = "m"',
                         'lifecycle = "Model"\nartefact = "m"\non = "baseline"'),
     "play.steps[1].artefact' is 'm', registered by no earlier step on proml"),
    (lambda s: s.replace('do = "wait"', 'do = "sleep"'), "play.steps[2]' has do = 'sleep'"),
    (lambda s: s.replace('by = "lab"', 'by = "eve"'), "play.steps[4].by' is 'eve', not an actor"),
    (lambda s: s.replace('step = "train"\nartefact = "m"', 'step = "train"\nartefact = "x"'),
     "play.steps[1].artefact' is 'x', registered by no earlier step"),
    (lambda s: s.replace("attack = true", ""), "has no attack step that runs on proml"),
    (lambda s: s.replace("attack = true", 'attack = true\non = "baseline"'),
     "has no attack step that runs on proml"),
    (lambda s: s.replace('do = "fire"\nby = "lab"\nstep = "verify"',
                         'do = "rewrite"\nstep = "verify"'), "play.steps[4].on' is 'both'"),
    (lambda s: s.replace('seconds = "every"', 'seconds = "model"'), "play.steps[2].seconds'"),
    (lambda s: s.replace('seconds = "every"', 'seconds = [5, 1]'), "play.steps[2].seconds'"),
    (lambda s: s.replace('seconds = "every"', 'seconds = [5, inf]'), "play.steps[2].seconds'"),
    (lambda s: s.replace('seconds = "every"', 'seconds = [nan, 5]'), "play.steps[2].seconds'"),
    (lambda s: s.replace('seconds = "every"', 'seconds = inf'), "play.steps[2].seconds'"),
    (lambda s: s.replace("observe_s = 600.0", "observe_s = nan"), "play.observe_s'"),
    (lambda s: s.replace('kind = "actors"', 'kind = "cctv"'), "play.defences[0]'"),
    (lambda s: s.replace('expect = ["op", "dev", "lab"]', 'expect = ["zed"]'),
     "play.defences[0].expect'"),
    (lambda s: s.replace('expect = ["op", "dev", "lab"]', 'expect = [["op"]]'),
     "play.defences[0].expect'"),
    (lambda s: s.replace('[[play.defences]]', '[play.defences]'), "play.defences' is not a list"),
    (lambda s: s.replace('state = "verified"', 'uses = "weights"'), "play.consumer'"),
    # a content no step records could never be used: the verdict would be a vacuous
    # "prevented" (a typo in a user's play did that)
    (lambda s: s.replace('state = "verified"', 'state = "verified"\nstep = "verify"\n'
                         'uses = "evaluatoin"'),
     "play.consumer.uses' is 'evaluatoin', the content of no step; name the attacker's "
     "content, one of the steps' digests: evaluation, weights"),
    (lambda s: s.replace("lifecycles = { Model", "lifecycles = { Mdl"),
     "play.steps[0].lifecycle' is 'Model'"),
    (lambda s: s.replace("observe_s = 600.0", "observe = 600.0"), "play.observe'"),
    (lambda s: s.replace("observe_s = 600.0", 'observe_s = 600.0\ncompare = { x = { mdl = "A" } }'),
     "play.compare'"),
    (lambda s: s.replace("observe_s = 600.0", "observe_s = 600.0\ncompare = { x = { model = 1 } }"),
     "play.compare'"),
])
def test_bad_plays_name_the_field(tmp_path: Path, edit, fragment) -> None:  # type: ignore[no-untyped-def]
    p = _model(tmp_path, edit(SELF_VERIFY))
    with pytest.raises(CatalogueError) as info:
        load_threat(p)
    assert str(p) in str(info.value) and fragment in str(info.value)


def test_cli_errors_are_one_line_exit_2(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    no_play = SELF_VERIFY.split("[play]")[0].replace("defence =", 'steps = ["x"]\ndefence =')
    assert main(["threats", "run", "Y1", "--scenarios", str(_model(tmp_path, no_play))]) == 2
    assert "has no [play]" in capsys.readouterr().err
    assert main(["threats", "run", "Y1", "--scenarios", str(tmp_path / "nope.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    # a plugin's model may not take a catalogued id: the catalogue's would run instead
    taken = _model(tmp_path, SELF_VERIFY.replace('id = "Y1"', 'id = "T1"'), "T1.toml")
    assert main(["threats", "run", "T1", "--scenarios", str(taken)]) == 2
    assert "already has; give the plugin's threat model its own id" in capsys.readouterr().err
    bad = _model(tmp_path, SELF_VERIFY.replace('by = "lab"', 'by = "eve"'))
    assert main(["threats", "run", "Y1", "--scenarios", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "play.steps[4].by" in err and "Traceback" not in err


def test_a_threat_model_with_both_play_and_code_is_refused(tmp_path: Path) -> None:
    from proml_sim.threats.runner import scenario_of

    tm = load_threat(_model(tmp_path, SELF_VERIFY.replace('id = "Y1"', 'id = "T1"'), "T1.toml"))
    with pytest.raises(CatalogueError, match="both a \\[play\\]"):
        scenario_of(tm)


def test_consumer_decides_on_the_named_steps_latest_evidence() -> None:
    a, b = b"\x01" * 32, b"\x02" * 32
    c = Consumer("Model", "delivered", "train")
    hist = [("train", a), ("verify", b"\x09" * 32), ("train", b), ("accept", b"\0" * 32)]
    assert c.decides("delivered", hist, b) and not c.decides("delivered", hist, a)
    assert not c.decides("verified", hist, b)
    assert Consumer("Model", "delivered").decides("delivered", hist, b)  # latest of any step
    assert not Consumer("Model", "delivered").decides("delivered", hist[:2], a)


@pytest.mark.parametrize(("name", "value", "fragment"), [
    ("check_every_s", 0.0, "check_every_s = 0.0 is out of range (> 0)"),  # X3's [ranges]
    ("check_every_s", -5.0, "check_every_s = -5.0 is out of range"),
])
def test_swept_times_are_checked_at_run_time(capsys: pytest.CaptureFixture[str], name: str,
                                             value: float, fragment: str) -> None:
    code = main(["threats", "run", "X3", "--scenarios", str(X3), "--seeds", "1",
                 "--param", f"{name}={value}"])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and "internal error" not in err


def test_a_zero_interval_from_a_parameter_is_a_usage_error(tmp_path: Path) -> None:
    # no [ranges] rule: a number must be >= 0 (at load), and the play checks what it needs
    with pytest.raises(CatalogueError, match=r"every = -1\.0 is out of range \(>= 0\)"):
        load_threat(_model(tmp_path, SELF_VERIFY.replace("every = 60.0", "every = -1.0")))
    tm = load_threat(_model(tmp_path, SELF_VERIFY.replace("every = 60.0", "every = 0.0")))
    with pytest.raises(UsageError, match=r"the actors defence's every is every = 0\.0"):
        run_threat(tm, seeds=1)


def test_grant_appoints_through_the_role_admin_and_domain_binding_stops_it(tmp_path: Path
                                                                          ) -> None:
    tm = load_threat(_model(tmp_path, LAUNDER, "Y2.toml"))
    from proml_sim.threats.runner import sweep_threat

    pts = {p["parameters"]["dataset"]: p for p in sweep_threat(
        tm, [("dataset", ["Dataset", "SingleAdminDataset"])], seeds=1)["points"]}
    # the consortium binds roles to domains: data-co may not hold labeller, so the appointment
    # reverts and what follows with it; the single-admin design and the database let it pass
    c = pts["Dataset"]["proml"]
    assert (c["verdict"], c["asr"]) == ("prevented", 0.0)
    assert "DomainRoleNotAllowed" in c["notes"][0]
    assert pts["SingleAdminDataset"]["proml"]["asr"] == 1.0
    assert pts["SingleAdminDataset"]["proml"]["attack_steps_refused"] == 0.0
    assert all(p["baseline"]["asr"] == 1.0 for p in pts.values())


def test_a_revoked_key_and_a_grant_by_a_non_admin_are_refused_on_both(tmp_path: Path) -> None:
    revoked = SELF_VERIFY.replace('''[[play.steps]]
do = "wait"''', '''[[play.steps]]
do = "revoke"
who = "dev-qa"
role = "verifier"
lifecycle = "Model"

[[play.steps]]
do = "grant"
by = "lab"
who = "dev-qa"
role = "verifier"
lifecycle = "Model"
attack = true

[[play.steps]]
do = "wait"''').replace("model = \"Model\"", "model = \"SingleAdminModel\"")
    r = run_threat(load_threat(_model(tmp_path, revoked)), seeds=1)
    # on the single-admin Model the self-verification would pass (see above); revoked, and
    # re-granted only by someone who may not, it fails on both systems
    for side in ("baseline", "proml"):
        assert (r[side]["verdict"], r[side]["attack_steps_refused"]) == ("prevented", 2.0), side
        assert "RoleNotAllowed" in r[side]["notes"][0]


def test_a_role_the_lifecycle_does_not_have_is_a_usage_error(tmp_path: Path) -> None:
    tm = load_threat(_model(tmp_path, LAUNDER.replace('role = "labeller"', 'role = "labeler"'),
                            "Y2.toml"))
    with pytest.raises(UsageError, match="Dataset has no role 'labeler'"):
        run_threat(tm, seeds=1)
    with pytest.raises(CatalogueError, match=r"play\.steps\[1\]\.who' is 'ghost'"):
        load_threat(_model(tmp_path, LAUNDER.replace('who = "sock"', 'who = "ghost"'),
                           "Y2.toml"))


def test_compare_replays_the_attack_on_another_design(tmp_path: Path) -> None:
    text = SELF_VERIFY.replace("observe_s = 600.0", 'observe_s = 600.0\ncompare = { '
                               'single_admin_asr = { model = "SingleAdminModel" } }')
    r = run_threat(load_threat(_model(tmp_path, text)), seeds=1)
    # the consortium refuses dev-co's own verifier; the single-admin design, same seed, does not
    assert (r["proml"]["asr"], r["proml"]["single_admin_asr"]) == (0.0, 1.0)


def test_every_transition_of_the_deployed_lifecycle(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # step = "*" fires each transition of the artefact's lifecycle as deployed: a user's Model
    # with one more step has one more refusal, each with its evidence only where it takes any
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "more_steps.py").write_text(
        "from proml_sim.lifecycles import Model\n\n\nclass Model2(Model):\n"
        "    recheck = Model.verified.to(Model.verified, by=Model.verifier)\n")
    play = SELF_VERIFY.replace('by = "dev-qa"\nstep = "verify"', 'by = "dev-qa"\nstep = "*"')
    counts = []
    for spec in ("Model", "more_steps:Model2"):
        tm = load_threat(_model(tmp_path, play.replace('model = "Model"', f'model = "{spec}"')))
        counts.append(run_threat(tm, seeds=1)["proml"]["attack_steps_refused"])
    # every one refused: dev-qa has no role for train, accept, audit, withdraw; verify and
    # reject are separated from dev-co's train; Model2's recheck is in the wrong state
    assert counts == [6, 7]
