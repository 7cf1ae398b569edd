"""Scenario plugins and the scenario kit: the tutorial's X1 runs from a file, through the CLI
and `proml sweep`; a catalogued id without code and a broken plugin are usage errors (exit 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from proml_sim.cli import main
from proml_sim.threats.kit import Alarm, outcome
from proml_sim.threats.plugins import load_plugin

ROOT = Path(__file__).resolve().parents[3]
TUTORIAL = ROOT / "docs" / "tutorials" / "threat_scenario.py"


def test_outcome_is_defined_once() -> None:
    o = outcome(True, attack_at=10.0, alarms=[Alarm(70.0, "b"), Alarm(40.0, "a")])
    assert (o.attack_succeeded, o.detected, o.ttd_s) == (True, True, 30.0)
    assert "first alarm: a" in o.note
    quiet = outcome(False, attack_at=10.0)
    assert (quiet.attack_succeeded, quiet.detected, quiet.ttd_s) == (False, False, None)
    early = outcome(True, attack_at=10.0, alarms=[Alarm(5.0, "pre")])
    assert early.ttd_s == 0.0


def test_tutorial_plugin_runs_from_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert load_plugin(str(TUTORIAL))["X1"].expected_proml == "prevented"
    code = main(["threats", "run", "X1", "--scenarios", str(TUTORIAL), "--seeds", "2",
                 "--json"])
    res = json.loads(capsys.readouterr().out)
    assert code == 0, res
    assert res[0]["baseline"]["verdict"] == "detected" and res[0]["baseline"]["asr"] == 1.0
    assert res[0]["proml"]["verdict"] == "prevented" and res[0]["proml"]["asr"] == 0.0
    assert main(["threats", "list", "--scenarios", str(TUTORIAL)]) == 0
    assert "X1" in capsys.readouterr().out


def test_sweep_runs_a_plugin_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    code = main(["sweep", "X1", "--scenarios", str(TUTORIAL), "--seeds", "2", "--workers", "0",
                 "--out", str(tmp_path), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [(r["id"], r["proml.asr"], r["baseline.asr"]) for r in doc["rows"]] == [
        ("X1", 0.0, 1.0), ("X1", 0.0, 1.0)]


def test_catalogued_id_without_code_is_exit_2(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    models.mkdir()
    text = (ROOT / "threat_models" / "S4.toml").read_text().replace('id = "S4"', 'id = "X9"')
    (models / "X9.toml").write_text(text)
    assert main(["threats", "run", "X9", "--models", str(models)]) == 2
    err = capsys.readouterr().err
    assert "X9" in err and "no code" in err and "--scenarios" in err


def test_broken_plugins_are_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    assert main(["threats", "run", "--scenarios", str(empty)]) == 2
    assert "registered no scenario" in capsys.readouterr().err
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('boom')\n")
    assert main(["threats", "run", "--scenarios", str(bad)]) == 2
    assert "failed while importing: RuntimeError: boom" in capsys.readouterr().err
    assert main(["threats", "run", "--scenarios", "no_such_module_xyz"]) == 2
    assert "cannot import" in capsys.readouterr().err
    script = tmp_path / "script.py"  # a script's main part, unguarded: it exited exit 0
    script.write_text("import sys\nsys.exit(0)\n")
    assert main(["threats", "run", "--scenarios", str(script)]) == 2
    assert "called sys.exit(0) while importing" in capsys.readouterr().err
    assert main(["threats", "run", "--scenarios", "no_such_module_xyz"]) == 2
    assert "cannot import" in capsys.readouterr().err
    lone = tmp_path / "lone.py"
    shutil.copy(TUTORIAL, lone)
    lone.write_text(lone.read_text().replace('@scenario("X1")', '@scenario("X7")'))
    assert main(["threats", "run", "--scenarios", str(lone)]) == 2
    assert "X7.toml is missing" in capsys.readouterr().err


def test_kit_attempt_watch_and_consumer_on_a_world() -> None:
    from proml_sim.ir import Transitioned
    from proml_sim.lifecycles import Dataset
    from proml_sim.sim import World
    from proml_sim.threats.kit import Consumer, attempt, watch

    w = World(2, "consortium-fast", lifecycles=[Dataset])
    da = w.add_participant("da", "data-co", "eu")
    mal = w.add_participant("mal", "data-co", "us")
    # a consortium: data-co may also hold the labeller role its dataset admin grants below
    w.setup(grants=[("da", "Dataset", "dataset_admin")], allow=[("mal", "Dataset", "labeller")])
    salt, poison = b"d".ljust(32, b"\0"), b"\x66" * 32
    did = w.client("Dataset").artefact_id(da.address, salt)
    alarms: list[Alarm] = []
    # the data company's monitor: a label by anyone but its known labeller "ann" is an alarm
    watch(w, "Dataset", every=30, alarms=alarms, name="label-monitor",
          rule=lambda w, evs: "unknown labeller" if any(
              isinstance(e, Transitioned) and e.actor == mal.address for e in evs) else None)
    out: dict[str, object] = {}
    denied: dict[str, object] = {}

    def story(w: World):  # type: ignore[no-untyped-def]
        yield from attempt(w, "da", "Dataset", "register", salt, b"\1" * 32)
        yield from attempt(w, "da", "Dataset", "grant", "labeller", mal.address,
                           b"data-co".ljust(32, b"\0"))
        yield w.env.timeout(100)
        yield from attempt(w, "mal", "Dataset", "fire", "label", did, poison, out=out)
        yield from attempt(w, "mal", "Dataset", "fire", "review", did, out=denied)

    w.env.process(story(w))
    w.run(400)
    assert out["outcome"] == "ok" and denied["outcome"] == "reverted:RoleNotAllowed"
    assert Consumer("Dataset", state="labelled").accepts(w, did, digest=poison)
    assert not Consumer("Dataset", state="labelled").accepts(w, did, digest=b"\1" * 32)
    assert not Consumer("Dataset", state="released").accepts(w, did)
    o = outcome(True, attack_at=float(out["at"]), alarms=alarms)  # type: ignore[arg-type]
    assert o.detected and alarms[0].source == "label-monitor" and 0 < o.ttd_s <= 30 + 10
    with pytest.raises(ValueError, match="positive interval"):
        watch(w, "Dataset", every=0, rule=lambda w, e: None, alarms=alarms)


def test_installed_plugins_load_through_the_entry_point_group(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import EntryPoint

    import proml_sim.threats.plugins as plugins

    pkg = tmp_path / "site"
    pkg.mkdir()
    (pkg / "study_x5.py").write_text(TUTORIAL.read_text().replace('@scenario("X1")',
                                                                  '@scenario("X5")'))
    (pkg / "X5.toml").write_text((TUTORIAL.parent / "X1.toml").read_text()
                                 .replace('id = "X1"', 'id = "X5"'))
    monkeypatch.syspath_prepend(str(pkg))
    eps = [EntryPoint("x5", "study_x5", plugins.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(plugins, "entry_points",
                        lambda group: eps if group == plugins.ENTRY_POINT_GROUP else [])
    assert main(["threats", "list", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["X5"]["implemented"] and rows["X5"]["expected"]["proml"] == "prevented"
    assert main(["threats", "run", "X5", "--seeds", "1"]) == 0


BAD_BODIES = {
    "raise": ('raise ValueError("oops in the study\'s code")', "ValueError: oops in the study's"),
    "not_an_outcome": ("return 42", "returned int, not an Outcome"),
    "counts": ("return Outcome(True, attempts=1, successes=2)", "trial counts out of order"),
    "metric": ('return Outcome(False, metrics={"asr": 1.0})', "['asr'] reuse a summary key"),
    # values no summary can take: an internal error (exit 70), or NaN/Infinity in --json, or
    # a NaN alarm time read as a time to detect of 0 s, before they were checked
    "nan_metric": ('return Outcome(True, metrics={"m": float("nan")})', "metric 'm' is nan"),
    "str_metric": ('return Outcome(False, metrics={"m": "high"})',
                   "metric 'm' is 'high', not a finite number"),
    "huge_metric": ('return Outcome(False, metrics={"m": 10**400})', "not a finite number"),
    "inf_ttd": ('return Outcome(True, True, ttd_s=float("inf"))', "time to detect is inf"),
    "flag": ('return Outcome("yes")', "Outcome.attack_succeeded is 'yes'"),
    "series": ('return Outcome(False, series={"s": [(1.0, float("nan"))]})',
               "series 's' holds (1.0, nan)"),
    "alarm": ('from proml_sim.threats.kit import outcome, Alarm; '
              'return outcome(True, attack_at=0.0, alarms=[Alarm(float("nan"), "m")])',
              "an alarm's time is a finite number"),
    "exit": ("raise SystemExit(0)", "called sys.exit(0)"),
}


@pytest.mark.parametrize("kind", sorted(BAD_BODIES))
def test_a_plugins_failing_code_is_exit_2_naming_it(tmp_path: Path, kind: str,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's scenario that raises or returns no valid Outcome is the user's to fix: one
    line (JSON under --json), exit 2, naming the plugin, the side and the seed; never
    "a bug in proml-sim"; PROML_DEBUG=1 shows its traceback."""
    from proml_sim.threats import plugins, runner

    monkeypatch.setattr(runner, "SCENARIOS", dict(runner.load_scenarios()))
    monkeypatch.setattr(plugins, "PLUGIN_MODELS", dict(plugins.PLUGIN_MODELS))
    monkeypatch.delenv("PROML_DEBUG", raising=False)
    sid = f"X{50 + sorted(BAD_BODIES).index(kind)}"
    body, words = BAD_BODIES[kind]
    (tmp_path / f"{sid}.toml").write_text(
        (ROOT / "docs" / "tutorials" / "X1.toml").read_text().replace('id = "X1"', f'id = "{sid}"'))
    plugin = tmp_path / f"bad_{kind}.py"
    plugin.write_text(
        "from proml_sim.threats.runner import Outcome, scenario\n\n"
        f"@scenario({sid!r})\nclass Bad:\n    @staticmethod\n"
        "    def baseline(tm, seed, workdir):\n        return Outcome(False)\n\n"
        f"    @staticmethod\n    def proml(tm, seed, workdir):\n        {body}\n")
    assert main(["threats", "run", sid, "--scenarios", str(plugin), "--seeds", "1"]) == 2
    out = capsys.readouterr().err
    assert "Traceback" not in out and out.count("error") == 1, out
    err = out.strip().splitlines()[-1]
    assert f"{sid}: the proml side of its scenario ({plugin}) at seed 0" in err, err
    assert words in err and "fix the scenario" in err and "bug in proml-sim" not in err, err
    assert main(["threats", "run", sid, "--scenarios", str(plugin), "--seeds", "1",
                 "--json"]) == 2
    assert words in json.loads(capsys.readouterr().err.strip().splitlines()[-1])["error"]
    if kind == "raise":
        monkeypatch.setenv("PROML_DEBUG", "1")
        with pytest.raises(ValueError, match="oops"):
            main(["threats", "run", sid, "--scenarios", str(plugin), "--seeds", "1"])


def test_every_summary_key_is_reserved_from_metric_names() -> None:
    from proml_sim.threats.runner import _SUMMARY_KEYS, Outcome, summarise

    s = summarise([Outcome(True, note="n", metrics={"m": 1.0})])
    assert set(s) - {"m", "m_ci"} <= _SUMMARY_KEYS


def test_a_metric_near_the_float_range_ends_is_averaged_without_overflow() -> None:
    from proml_sim.threats.runner import Outcome, summarise

    s = summarise([Outcome(False, metrics={"m": -1e308}), Outcome(False, metrics={"m": -1e308})])
    assert s["m"] == -1e308 and s["m_ci"] == [-1e308, -1e308]
