"""The README's quick start and both tutorials run as a researcher runs them, producing their
figures (CI runs these: documentation that cannot rot)."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Researcher's quick start", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_quick_start_runs_in_under_40_lines(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pandas", reason="the data extra (pandas) is not installed")
    code = _readme_block()
    assert len(code.strip().splitlines()) + 1 < 40  # + the pip install line
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    assert (tmp_path / "latency.png").stat().st_size > 5000


def test_simulation_study_tutorial(tmp_path: Path) -> None:
    mod = runpy.run_path(str(ROOT / "docs" / "tutorials" / "simulation_study.py"))
    summary = mod["main"](tmp_path, seeds=1)
    assert [r["block_time"] for r in summary] == [1.0, 2.0, 5.0]
    # finality 6 s after the block: time to final grows with the block time, and is >= 6 s
    values = [r["value"] for r in summary]
    assert 6.0 <= values[0] <= values[1] <= values[2]
    assert (tmp_path / "time_to_final.png").stat().st_size > 5000


def test_threat_scenario_tutorial_as_a_script(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, str(ROOT / "docs" / "tutorials" /
                                              "threat_scenario.py"), str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "baseline: detected" in out.stdout and "proml: prevented" in out.stdout
    assert (tmp_path / "x1_asr.png").stat().st_size > 5000
