"""The three worked studies of examples/studies/ run against the public API."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

from proml_sim.cli import main

STUDIES = Path(__file__).resolve().parents[2] / "examples" / "studies"


def test_custom_lifecycle_study(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pandas", reason="the data extra (pandas) is not installed")
    runpy.run_path(str(STUDIES / "custom_lifecycle.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "publish ok" in out and "register ok" in out and "nan" not in out


def test_custom_profile_study_one_run() -> None:
    mod = runpy.run_path(str(STUDIES / "custom_profile.py"))
    fast = mod["latency"]({"profile": mod["PROFILES"][1]}, 0)
    assert fast["all_final"] and fast["l1_median_s"] < 6.5  # 6 s slots
    assert fast["final_median_s"] < 16 * 6 * 3 + 60  # 16-slot epochs, final 2 epochs later


def test_insider_scenario_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["threats", "run", "X2", "--scenarios", str(STUDIES / "insider_scenario.py"),
                 "--seeds", "2", "--json"])
    res = json.loads(capsys.readouterr().out)[0]
    assert code == 0
    assert res["proml"]["verdict"] == "prevented"
    assert res["proml"]["notes"] == ["reverted:TransitionNotAllowed"]
    assert res["baseline"]["verdict"] == "detected" and res["baseline"]["ttd_s"] > 0
