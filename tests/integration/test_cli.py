from __future__ import annotations

import json
import subprocess
import sys

from proml_sim.cli import main


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("reproduce", "generate", "compile", "diagram", "gas", "bench"):
        assert cmd in out


def test_generate_check_detects_drift(tmp_path, capsys):
    assert main(["generate", "--out", str(tmp_path)]) == 0
    assert main(["generate", "--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "Model.vy").write_text("# tampered\n")
    assert main(["generate", "--check", "--out", str(tmp_path)]) == 1
    assert "Model.vy" in capsys.readouterr().out
    # --json (the global flag) is one object, for either outcome
    assert main(["--json", "generate", "--check", "--out", str(tmp_path)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["up_to_date"] is False and "Model.vy" in report["stale"]
    assert main(["--json", "generate", "--out", str(tmp_path)]) == 0
    assert any(p.endswith("Model.vy") for p in json.loads(capsys.readouterr().out)["written"])
    assert main(["--json", "generate", "--check", "--out", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out) == {"out": str(tmp_path), "up_to_date": True,
                                                    "stale": []}


def test_compile_json_and_bad_lifecycle(capsys, tmp_path):
    assert main(["compile", "Dataset", "--json", "--out", str(tmp_path)]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert info["name"] == "Dataset" and len(info["fingerprint"]) == 64
    assert (tmp_path / "Dataset.vy").exists()
    assert main(["compile", "Nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown lifecycle 'Nope'" in err and "module:ClassName" in err
    assert main(["compile", "Modle"]) == 2  # a misspelt name: the closest one suggested
    assert "did you mean 'Model'?" in capsys.readouterr().err
    assert main(["compile", "no_such_module_xyz:Thing"]) == 2


def test_compile_user_lifecycle_from_module(tmp_path, monkeypatch, capsys):
    (tmp_path / "mylife.py").write_text(
        "from proml_sim import Artefact, Role, State\n"
        "class Note(Artefact):\n"
        "    writer = Role()\n"
        "    open_ = State(initial=True)\n"
        "    closed = State(final=True)\n"
        "    close = open_.to(closed, by=writer)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["compile", "mylife:Note"]) == 0
    assert "Note:" in capsys.readouterr().out


def test_invalid_user_lifecycle_exits_2_with_every_problem(tmp_path, monkeypatch, capsys):
    (tmp_path / "badlife.py").write_text(
        "from proml_sim import Artefact, Role, State\n"
        "class Bad(Artefact):\n"
        "    writer = Role()\n"
        "    a = State()\n"
        "    b = State()\n"
        "    go = a.to(b, by=writer)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["compile", "badlife:Bad"]) == 2
    err = capsys.readouterr().err
    assert "no initial state" in err and "no final state" in err


def test_diagram_outputs(tmp_path, capsys):
    assert main(["diagram", "Model"]) == 0
    assert capsys.readouterr().out.startswith("stateDiagram-v2")
    assert main(["diagram", "Model", "--format", "png"]) == 2
    png = tmp_path / "m.png"
    assert main(["diagram", "Model", "--format", "png", "-o", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_gas_json(capsys):
    assert main(["gas", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by = {(r["lifecycle"], r["operation"]): r for r in rows}
    # measured gas never beats the schedule's lower bound
    assert all(r["gas"] >= r["lower_bound"] for r in rows)
    assert by[("Model", "registration")]["gas"] > by[("Model", "later_transition")]["gas"]
    assert by[("Model", "rejected_attempt")]["status"] == "reverted"
    assert by[("Model", "approval")]["status"] == "ok"


def test_bench_json_shape(capsys):
    assert main(["bench", "--n", "60", "--per-block", "30", "--baseline-n", "5", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["engines"]["pyevm"]["tx_per_s"] > 0
    assert res["engines"]["pyevm"]["blocks"] == 2
    assert res["baseline"]["tx_per_s"] > 0 and res["ratio"]["pyevm"] > 0


def test_bad_bench_arguments_exit_2():
    proc = subprocess.run([sys.executable, "-m", "proml_sim.cli", "bench", "--n", "0"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "positive" in proc.stderr


def test_an_error_quoting_a_huge_input_stays_a_short_line(capsys):
    # a parameter value of 50,000 characters was quoted back whole: a 50 kB "one line"
    huge = "[" * 50_000
    assert main(["threats", "run", "C2", "--param", f"equivocators={huge}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and len(err) < 600, len(err)
    assert "more characters" in err and "equivocators" in err and "written as in TOML" in err
