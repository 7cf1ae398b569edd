"""Chain profiles from TOML files on the command line: simulate runs on one, and a bad file is a
usage error (exit 2) for simulate, sim-bench, reproduce and sweep before any work."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from proml_sim.cli import main


def test_simulate_on_a_toml_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prof = tmp_path / "lab.toml"
    prof.write_text('consensus = "fixed"\nblock_time = 3.0\nfinality_delay = 4.0\n')
    rows = tmp_path / "rows.csv"
    code = main(["simulate", "--profile", str(prof), "--teams", "2", "--days", "0.02",
                 "--per-hour", "60", "--out", str(rows), "--json"])
    assert code == 0, capsys.readouterr().err
    got = list(csv.DictReader(rows.open()))
    assert got and {r["profile"] for r in got} == {"lab"}
    assert all(r["final"] != "" for r in got)  # drained: every row final (delay rule)
    assert json.loads(capsys.readouterr().out)["transactions"] == len(got)


@pytest.mark.parametrize("argv", [
    ["simulate", "--profile", "{bad}"], ["sim-bench", "--profile", "{bad}"],
    ["reproduce", "--chain-profile", "{bad}"], ["simulate", "--profile", "{missing}"],
])
def test_bad_profile_files_are_usage_errors(tmp_path: Path, argv: list[str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('consensus = "pos"\nblock_time = 12.0\nsealers = 3\n')
    args = [a.format(bad=bad, missing=tmp_path / "nope.toml") for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "is ignored by consensus 'pos'" in err or "cannot read profile file" in err


@pytest.mark.parametrize(("line", "said"), [
    # a string where a number goes leaked Python's comparison error ("'>' not supported ...")
    ('block_time = "fast"', "block_time='fast'; must be a finite number"),
    ("block_time = inf", "block_time=inf; must be a finite number"),
    ("block_gas_limit = 3e7", "block_gas_limit=30000000.0; must be a finite number (a whole"),
    ("finality_delay = true", "finality_delay=True; must be a finite number"),
])
def test_a_profile_field_of_the_wrong_kind_is_named(tmp_path: Path, line: str, said: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "p.toml"
    f.write_text(f'base = "ethereum-pos"\n{line}\n')
    assert main(["simulate", "--profile", str(f), "--teams", "2", "--days", "0.01",
                 "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert said in err and "not supported" not in err


@pytest.mark.parametrize(("lines", "said"), [
    # each of these ran into the engine or the simulator and ended as an internal error
    ("consensus = 'fixed'\nblock_gas_limit = 100000000000000000000000",
     "block_gas_limit=100000000000000000000000; must be >= 21,000 and <= 9,223,372,036,854,775,"),
    ("consensus = 'fixed'\nfinality_depth = -3", "finality_depth=-3; must be >= 1"),
    ("consensus = 'poa'\nfinality_depth = 0", "finality_depth=0; must be >= 1"),
    ("consensus = 'fixed'\nfinality_delay = 1e308", "finality_delay=1e+308; must be >= 0 and"),
    # C(m + z - 1, m) of the Rosenfeld sum passed the largest float at this depth
    ("consensus = 'pow'\nfinality_share = 0.4999999\nfinality_risk = 1e-300",
     "no depth up to 1000 brings the risk for q=0.4999999 under 1e-300; raise finality_risk"),
    # accepted before, though nothing read it or it broke the report
    ("consensus = 'fixed'\nbase_fee_gwei = -1.0", "base_fee_gwei is not modelled"),
    ("consensus = 'fixed'\nreference = 'x'", "reference='x'; must be a table of names to"),
    ("consensus = 'fixed'\nname = 5", "name=5; must be a non-empty string"),
])
def test_a_profile_value_the_simulator_cannot_run_is_a_usage_error(
        tmp_path: Path, lines: str, said: str, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "p.toml"
    f.write_text(f"block_time = 2.0\n{lines}\n")
    assert main(["simulate", "--profile", str(f), "--teams", "2", "--days", "0.01",
                 "--out", str(tmp_path / "o.csv")]) == 2
    assert said in capsys.readouterr().err


def test_rosenfeld_holds_at_depths_past_the_float_range_of_its_binomials() -> None:
    from proml_sim.sim.forks import pow_final_depth, rosenfeld

    assert rosenfeld(0.0, 6) == 0.0 and rosenfeld(0.5, 6) == 1.0
    assert abs(rosenfeld(0.3, 10) - 0.0651067) < 1e-6  # the published value
    deep = rosenfeld(0.49, 1000)  # C(1999, 1000) ~ 1e600 as a float: OverflowError before
    assert 0 < deep < rosenfeld(0.49, 500) < 1
    assert pow_final_depth(0.1, 0.001) == 6 and pow_final_depth(0.45, 1e-3) > 500
