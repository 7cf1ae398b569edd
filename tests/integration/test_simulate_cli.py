from __future__ import annotations

import csv
import json
import math

import pytest

from proml_sim.cli import main


def test_simulate_streams_rows_and_reports(tmp_path, capsys):
    out = tmp_path / "rows.csv"
    assert main(["simulate", "--teams", "4", "--days", "0.02", "--per-hour", "60",
                 "--profile", "consortium-fast", "--out", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    rows = list(csv.DictReader(out.open()))
    assert stats["transactions"] == len(rows) > 0
    assert stats["sim_s_per_wall_s"] > 1
    assert {r["profile"] for r in rows} == {"consortium-fast"}


def test_simulate_rejects_bad_input(capsys):
    assert main(["simulate", "--teams", "0", "--days", "1"]) == 2
    assert "argument --teams: 0 is too small" in capsys.readouterr().err


def test_sim_bench_reports_growth(capsys):
    assert main(["sim-bench", "--sizes", "60", "120", "--teams", "4", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res["points"]) == 2
    assert res["points"][1]["transactions"] > res["points"][0]["transactions"]
    g = res["growth_exponent"]
    assert isinstance(g, float) and math.isfinite(g)  # a fitted number (tiny sizes: noisy)


@pytest.mark.slow
def test_fifty_teams_one_simulated_week_finishes(tmp_path, capsys):
    """The issue's scale check: 50 teams, one simulated week, py-evm engine, rows on disk."""
    out = tmp_path / "week.csv"
    assert main(["simulate", "--teams", "50", "--days", "7", "--profile", "ethereum-pos",
                 "--out", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["simulated_s"] >= 7 * 86400
    assert stats["transactions"] > 10_000
    with out.open() as fh:
        assert sum(1 for _ in fh) == stats["transactions"] + 1
