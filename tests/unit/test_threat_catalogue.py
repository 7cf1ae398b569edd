"""The threat catalogue is data, validated on load: bad files name the file, field and fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from proml_sim.cli import main
from proml_sim.threats.catalogue import CatalogueError, catalogue_dir, load_catalogue, load_threat
from proml_sim.threats.runner import Outcome, implemented, load_scenarios, summarise, verdict


def _without_ranges(text: str) -> str:
    """A threat model's text without its [ranges] table (the tests below write their own)."""
    head, sep, rest = text.partition("\n[ranges]\n")
    return head + "\n" + rest[rest.index("\n[") + 1:] if sep else text


GOOD = _without_ranges((catalogue_dir() / "T1.toml").read_text())


def _write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def test_every_catalogued_threat_loads_and_has_an_implementation():
    cat = load_catalogue()
    impl = load_scenarios()
    assert {"T1", "S2", "S4", "D1"} <= set(cat)
    # code registered, or a [play] run as data (E2), never both
    lacking = set(cat) - {tm.id for tm in implemented(cat.values())}
    assert not lacking, f"catalogued without implementation: {lacking}"
    assert not {t for t, tm in cat.items() if t in impl and tm.play is not None}
    assert cat["E2"].play is not None
    for tm in cat.values():
        assert tm.expected_proml in ("prevented", "detected", "documented_limit", "out_of_scope")


@pytest.mark.parametrize(("edit", "fragment"), [
    (lambda s: s.replace('id = "T1"', 'id = "T9"'), "field 'id' is 'T9' but the file is T1.toml"),
    (lambda s: s.replace('stride = ["T"]', 'stride = ["X"]'), "field 'stride'"),
    (lambda s: s.replace('attacker_role = "DA"', 'attacker_role = "Mallory"'),
     "field 'attacker_role'"),
    (lambda s: s.replace('proml = "prevented"', 'proml = "fine"'), "field 'expected.proml'"),
    (lambda s: s.replace('metrics = ["asr", "ttd_s"]', 'metrics = ["x"]'),
     "field 'metrics' has unknown metrics"),
    (lambda s: s.replace("seeds = 20", "seeds = 0"), "field 'seeds'"),
    (lambda s: s.replace('defence = "', 'defense = "'), "field 'defence' is missing"),
    (lambda s: "bogus = 1\n" + s, "field 'bogus' is not a known field"),
    (lambda s: s.replace("[expected]", "[expected"), "not valid TOML"),
    (lambda s: s.replace('op = "client-co eu Model.operator"', 'op = "client-co"'),
     "field 'actors.op'"),
    (lambda s: s.replace('op = "client-co eu Model.operator"', 'op = "client-co mars"'),
     "field 'actors.op' has region 'mars'"),
    (lambda s: s.replace('op = "client-co eu Model.operator"', 'op = "client-co eu operator"'),
     "field 'actors.op' has roles ['operator']"),
    (lambda s: s.replace('count = 3', 'count = "verifiers"'), "field 'actors.v{i}.count'"),
    (lambda s: s.replace('"v{i}" = {', '"v" = {'), "field 'actors.v' is counted but its name"),
    (lambda s: s.replace('proml = "prevented"', 'proml = "prevented"\nlimit = 3'),
     "field 'expected' has"),
    (lambda s: s.replace("[actors]", '[ranges]\nconsumers = ">= 5"\n\n[actors]'),
     "field 'parameters' has consumers = 4 is out of range (>= 5)"),
    (lambda s: s.replace("[actors]", '[ranges]\nconsumer = ">= 1"\n\n[actors]'),
     "field 'ranges.consumer' names no parameter"),
    (lambda s: s.replace("[actors]", '[ranges]\nconsumers = "=> 1"\n\n[actors]'),
     "field 'ranges.consumers' has '=> 1'"),
    (lambda s: s.replace("[actors]", '[ranges]\nconsumers = ">= nope"\n\n[actors]'),
     "field 'ranges.consumers' has bound 'nope'"),
    (lambda s: s.replace("[actors]", '[ranges]\nlifecycle = ["Dataset", 3]\n\n[actors]'),
     "field 'ranges.lifecycle'"),
    (lambda s: s.replace("[actors]", '[ranges]\nlifecycle = "> 0"\n\n[actors]'),
     "field 'ranges.lifecycle'"),
    (lambda s: s.replace('proml = "prevented"', 'proml = "documented_limit"'),
     "field 'expected.limit' is missing; a documented limit is stated"),
    (lambda s: s.replace("consumers = 4", "consumers = -4"),
     "field 'parameters' has consumers = -4 is out of range (>= 0)"),
])
def test_bad_files_name_file_field_and_fix(tmp_path, edit, fragment):
    p = _write(tmp_path, "T1.toml", edit(GOOD))
    with pytest.raises(CatalogueError) as info:
        load_threat(p)
    assert str(p) in str(info.value) and fragment in str(info.value)


@pytest.mark.parametrize("who", ["DA", "Model.operator", "operator", "op", "v{i}"])
def test_the_attacker_is_an_actor_code_or_a_role_or_member_of_the_cast(tmp_path, who):
    # a lifecycle of your own has roles THREATS.md has no code for
    tm = load_threat(_write(tmp_path, "T1.toml",
                            GOOD.replace('attacker_role = "DA"', f'attacker_role = "{who}"')))
    assert tm.attacker_role == who


def test_empty_catalogue_and_cli_exit_codes(tmp_path, capsys):
    with pytest.raises(CatalogueError, match="no threat models"):
        load_catalogue(tmp_path)
    assert main(["threats", "list", "--models", str(tmp_path)]) == 2
    assert main(["threats", "run", "NOPE"]) == 2
    assert "unknown threat id" in capsys.readouterr().err
    # a file of one's own given where an id goes: how to load it
    assert main(["threats", "run", "docs/tutorials/X3.toml"]) == 2
    assert ("docs/tutorials/X3.toml is a file, not a threat id; load it with --scenarios "
            "docs/tutorials/X3.toml") in capsys.readouterr().err


def test_verdicts_come_from_measurements():
    assert verdict([Outcome(False), Outcome(False)]) == "prevented"
    assert verdict([Outcome(True, True, 5.0), Outcome(False)]) == "detected"
    assert verdict([Outcome(True, True, 5.0), Outcome(True, False)]) == "documented_limit"
    assert verdict([Outcome(False, out_of_scope=True)]) == "out_of_scope"
    # no attempt on any seed (an attacker share of 0): nothing was prevented
    assert verdict([Outcome(False, attempts=0), Outcome(False, attempts=0)]) == "no_attack"
    assert verdict([Outcome(False, attempts=0), Outcome(False, attempts=1)]) == "prevented"
    s = summarise([Outcome(True, True, 10.0), Outcome(True, True, 20.0), Outcome(False)])
    assert s["asr"] == pytest.approx(2 / 3) and s["detection_rate"] == 1.0
    assert s["asr_ci"][0] < 2 / 3 < s["asr_ci"][1]


def test_threats_run_json_objects(tmp_path, capsys):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(catalogue_dir() / "S2.toml", models / "S2.toml")
    assert main(["threats", "run", "--models", str(models), "--seeds", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == ["S2"]
    r = rows[0]
    assert r["baseline"]["verdict"] == "documented_limit" and r["baseline"]["asr"] == 1.0
    assert r["proml"]["verdict"] == "prevented" and r["proml"]["asr"] == 0.0


CAST = """
[parameters]
approvers = 3

[actors]
op = "client-co eu Model.operator Model.developer"
"v{i}" = { domain = "verif-{i}", region = "eu us", roles = "Model.verifier", count = "approvers" }
lurker = "lurk-co asia"
"""


def test_the_cast_expands_counted_actors_at_the_parameters_in_file_order(tmp_path):
    import dataclasses

    text = GOOD[:GOOD.index("[parameters]")] + CAST
    tm = load_threat(_write(tmp_path, "T1.toml", text))
    got = [(a.name, a.domain, a.region, a.roles) for a in tm.cast()]
    assert got == [("op", "client-co", "eu", (("Model", "operator"), ("Model", "developer"))),
                   ("v0", "verif-0", "eu", (("Model", "verifier"),)),
                   ("v1", "verif-1", "us", (("Model", "verifier"),)),
                   ("v2", "verif-2", "eu", (("Model", "verifier"),)),
                   ("lurker", "lurk-co", "asia", ())]
    # a sweep point's parameters change the cast; a bad count is named
    assert len(dataclasses.replace(tm, parameters={"approvers": 0}).cast()) == 2
    with pytest.raises(CatalogueError, match=r"counts parameter 'approvers' = 1\.5"):
        dataclasses.replace(tm, parameters={"approvers": 1.5}).cast()
    # a count no run could make keys for is refused before one actor is expanded (10**23
    # would never finish)
    with pytest.raises(CatalogueError, match=r"at approvers = 10{23} the cast has 10{22}2 "
                                             r"participants, more than a run makes keys for"):
        dataclasses.replace(tm, parameters={"approvers": 10**23}).cast()


@pytest.mark.parametrize(("tid", "name", "value", "fragment"), [
    # each verifier is a trust domain of its own on Model: 302 domains
    ("S4", "approvers", 300, "at these parameters (approvers = 300) 302 trust domains take a "
                             "role on Model, a consortium of at most 256 member domains"),
    # S1's verifiers are added by its code, not counted in [actors]
    ("S1", "approvers", 300, "302 trust domains take a role on Model, a consortium of at most "
                             "256 member domains"),
    ("S3", "sybils", 10**6, "at sybils = 1000000 the cast has 1000002 participants")])
def test_a_cast_too_large_to_run_is_exit_2_before_a_key_is_made(capsys, tid, name, value,
                                                                 fragment):
    # both ran on for hours (S4 at approvers = 10**6 making keys for the million verifiers,
    # at 300 failing only at the 257th domain's enrolment)
    assert main(["threats", "run", tid, "--param", f"{name}={value}", "--seeds", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("proml: error:") and fragment in err and "[ranges]" in err, err


def test_both_systems_are_built_from_the_cast(tmp_path):
    from proml_sim.lifecycles import Model
    from proml_sim.threats.kit import central, world

    tm = load_threat(_write(tmp_path, "T1.toml", GOOD[:GOOD.index("[parameters]")] + CAST))
    w, ps = world(tm, 0, lifecycles=[Model])
    assert list(ps) == ["op", "v0", "v1", "v2", "lurker"]
    assert (ps["v1"].domain, ps["v1"].region) == ("verif-1", "us")
    model = w.client("Model")
    assert model.has_role(ps["v2"].address, "verifier")
    assert model.has_role(ps["op"].address, "developer")
    assert not model.has_role(ps["lurker"].address, "verifier")
    db = central(tm, tmp_path, {"Model": Model}, admin="root")
    rows = db.admin_sql("SELECT account, role, domain FROM roles ORDER BY account, role")
    assert rows == [("op", "developer", "client-co"), ("op", "operator", "client-co"),
                    ("v0", "verifier", "verif-0"), ("v1", "verifier", "verif-1"),
                    ("v2", "verifier", "verif-2")]
    db.close()


def test_a_documented_limit_is_stated_by_the_threat_model(tmp_path):
    """The run's ``limit`` text comes from ``[expected] limit`` when ProML's verdict is a
    documented limit; the catalogue page shows it."""
    from proml_sim.threats.catalogue_doc import catalogue_markdown
    from proml_sim.threats.runner import run_threat

    tm = load_catalogue()["T3"]
    assert tm.limit.startswith("a ledger cannot tell a wrong label")
    r = run_threat(tm, seeds=1, workdir=tmp_path)
    assert r["proml"]["verdict"] == "documented_limit" and r["limit"] == tm.limit
    assert f"- Documented limit: {tm.limit}" in catalogue_markdown({"T3": tm})


def test_ranges_bound_every_run_and_sweep_point(tmp_path, capsys, monkeypatch):
    from proml_sim.errors import UsageError
    from proml_sim.threats.runner import with_parameters

    text = GOOD.replace("[actors]", '[ranges]\nconsumers = "1 .. 8, <= limit"\n'
                        'lifecycle = ["Dataset", "SingleAdminDataset"]\n\n[actors]').replace(
        "consumers = 4", "consumers = 4\nlimit = 6")
    tm = load_threat(_write(tmp_path, "T1.toml", text))
    assert with_parameters(tm, {"consumers": 6}).parameters["consumers"] == 6
    for bad, why in [({"consumers": 0}, "consumers = 0 is out of range (>= 1, <= 8, <= limit = 6)"),
                     ({"consumers": 7}, "consumers = 7 is out of range"),
                     ({"limit": 3}, "consumers = 4 is out of range"),  # a bound moved
                     ({"audit_every_s": -1.0}, "audit_every_s = -1.0 is out of range (>= 0)"),
                     ({"audit_every_s": float("nan")}, "audit_every_s = nan"),
                     ({"lifecycle": "Model"}, "lifecycle = 'Model' is out of range (one of")]:
        with pytest.raises(UsageError, match=why.replace("(", r"\(").replace(")", r"\)")):
            with_parameters(tm, bad)
    # the CLI: a sweep with one point out of range is exit 2 before anything runs
    monkeypatch.setenv("PROML_THREAT_MODELS", str(tmp_path))
    code = main(["threats", "run", "T1", "--param", "consumers=2,9", "--seeds", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "consumers = 9 is out of range" in err and "Traceback" not in err
    # a point is checked whole: consumers = 7 fits once the sweep also raises its bound
    code = main(["threats", "run", "T1", "--param", "consumers=7", "--param", "limit=8",
                 "--seeds", "1", "--json"])
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)[0]["points"][0]["parameters"] == {
        "consumers": 7, "limit": 8}


@pytest.mark.parametrize(("tid", "name", "floor"), [
    ("S6", "poll_s", "0.01"), ("C1", "poll_s", "0.01"), ("C1", "block_time", "0.01"),
    ("S1", "honest_interval_s", "1")])
def test_an_interval_that_drives_a_loop_has_a_floor(capsys, tid, name, floor):
    # "> 0" admitted 1e-300: a run that never ends (S6 poll_s=0.001 took 36 s)
    code = main(["threats", "run", tid, "--param", f"{name}=1e-300", "--seeds", "1"])
    err = capsys.readouterr().err
    assert code == 2 and f"{name} = 1e-300 is out of range (>= {floor})" in err, err


@pytest.mark.parametrize(("tid", "name"), [("C1", "release_margin_s"), ("T9", "legit_updates"),
                                           ("T11", "finetune"), ("T12", "models"),
                                           ("S3", "count")])
def test_a_parameter_the_file_lacks_is_exit_2_naming_it(tmp_path, capsys, tid, name):
    # the code keeps no default of its own: a user's file without a parameter the scenario
    # reads (or a range bounded by it) is a usage error naming it, never an internal KeyError
    models = tmp_path / "models"
    models.mkdir()
    text = (catalogue_dir() / f"{tid}.toml").read_text()
    (models / f"{tid}.toml").write_text("\n".join(
        line for line in text.splitlines() if not line.startswith(f"{name} =")
        and not line.endswith(f"{name}\"")) + "\n")
    assert main(["threats", "run", tid, "--models", str(models), "--seeds", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # (after the progress line)
    assert err.startswith("proml: error:") and f"{tid} needs parameters ['{name}']" in err, err


def _edited_copy(tmp: Path, tid: str, old: str, new: str) -> Path:
    """A --models directory holding ``tid``'s shipped threat model with one edit."""
    models = tmp / "models"
    models.mkdir()
    text = (catalogue_dir() / f"{tid}.toml").read_text()
    assert old in text
    (models / f"{tid}.toml").write_text(text.replace(old, new, 1))
    return models


@pytest.mark.parametrize(("tid", "old", "new", "fragment"), [
    # the built-in code reads a number or a flag: a string there was an internal error
    ("C3", "drift_tolerance_s = 4.0", 'drift_tolerance_s = "a b"',
     'parameter drift_tolerance_s is "a b"; C3\'s built-in scenario reads a float like 4.0'),
    ("I1", "locator_names = true", 'locator_names = "yes"',
     "parameter locator_names is \"yes\"; I1's built-in scenario reads a bool like true"),
    # an actor the code casts, removed: was "no participant 'mal' in this world"
    ("T9", 'mal = "dev-co us Model.developer"', "", "[actors] lacks mal, whom T9's built-in "
     "scenario casts; add them back"),
    # a role the code needs, taken away (S1 is registered through functools.partial: it was
    # reported as a bug of the scenario's code)
    ("S1", 'op = "client-co eu Model.operator"', 'op = "client-co eu Model.developer"',
     "an honest step of S1 was refused on the baseline side (Model.register needs role "
     "operator); give [actors] the roles the scenario needs"),
])
def test_an_edited_copy_of_a_built_in_model_keeps_what_its_code_reads(
        tmp_path, capsys, tid, old, new, fragment):
    models = _edited_copy(tmp_path, tid, old, new)
    assert main(["threats", "run", tid, "--models", str(models), "--seeds", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("proml: error:") and str(models / f"{tid}.toml") in err, err
    assert fragment in err and "Traceback" not in err, err


def test_a_numeric_range_over_a_parameter_that_is_no_number_names_both(tmp_path):
    models = _edited_copy(tmp_path, "D2", "approval_mean_s = 120.0", "approval_mean_s = []")
    with pytest.raises(CatalogueError, match=r"field 'ranges.approval_mean_s' is '> 0', a rule "
                       r"for a number, but parameters.approval_mean_s is \[\]"):
        load_threat(models / "D2.toml")


def test_a_time_parameter_takes_fractions_of_a_second():
    from proml_sim.threats.runner import with_parameters

    tm = with_parameters(load_catalogue()["C3"], {"drift_tolerance_s": 0.5, "period_s": 60})
    assert tm.parameters["drift_tolerance_s"] == 0.5 and tm.parameters["period_s"] == 60.0


def test_a_byte_that_is_not_utf8_in_a_toml_file_is_named_not_an_internal_error(tmp_path, capsys):
    # one flipped byte in a threat model's comment ended `threats list` and `threats run` in an
    # internal error (UnicodeDecodeError); a chain profile and a mutant file read TOML the same
    # way (found flipping bytes of the catalogue)
    models = tmp_path / "models"
    shutil.copytree(catalogue_dir(), models)
    t1 = models / "T1.toml"
    data = t1.read_bytes()
    i = data.index(b"# ")
    t1.write_bytes(data[:i + 2] + b"\xa0" + data[i + 3:])
    with pytest.raises(CatalogueError, match=rf"{t1}: not valid TOML \(byte {i + 2} \(0xa0\) "
                                             r"is not UTF-8 text"):
        load_threat(t1)
    for argv in (["threats", "list", "--models", str(models)],
                 ["threats", "run", "T1", "--models", str(models), "--seeds", "1"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "is not UTF-8 text" in err, err
    bad = tmp_path / "chain.toml"
    bad.write_bytes(b'base = "ethereum-pos"\n# \xe1\n')
    assert main(["reproduce", "--chain-profile", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err
    mutants = tmp_path / "m.toml"
    mutants.write_bytes(b"[[mutant]]\nid = '\xff'\n")
    assert main(["mutate", "--mutant-file", str(mutants)]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err
