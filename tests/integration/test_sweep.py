"""``proml sweep``: a grid of seeds x parameters gives the same rows serially, on a process pool
and on a Dask cluster (a LocalCluster on loopback, two worker processes)."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import pytest

from experiments.sweep import UNITS, grid, parse_param, resolve, rows_csv, run_sweep
from proml_sim.cli import main

#: small units of work: two saturation points on a tight chain, two threat scenarios, one
#: latency run; each well under a few seconds
E04 = {"load": [0.5, 1.5], "minutes": [1.0], "engine": ["revm"]}
THREATS = {"id": ["S2", "T1"]}
E01 = {"profile": ["consortium-fast"], "teams": [2], "hours": [0.1], "engine": ["revm"]}


def _serial(unit: str, overrides: dict[str, list[Any]], seeds: list[int]) -> list[dict[str, Any]]:
    res = run_sweep(unit, overrides, seeds, workers=0)
    assert res.executor == "serial"
    return res.rows


def test_rows_ordered_by_parameters_then_seed_with_params_first():
    rows = _serial("e04", E04, [3, 1])
    assert [(r["load"], r["seed"]) for r in rows] == [(0.5, 3), (0.5, 1), (1.5, 3), (1.5, 1)]
    assert list(rows[0])[:7] == ["unit", "profile", "load", "gas_limit", "minutes", "engine",
                                 "seed"]
    # the measure the unit reports (its own seed, load, ...) never overrides the grid's
    assert all(r["unit"] == "e04" and r["gas_limit"] == 600_000 for r in rows)
    over = [r for r in rows if r["load"] == 1.5]
    assert all(r["l1_median_s"] > 3 * rows[0]["l1_median_s"] for r in over)  # past the knee


def test_process_pool_equals_serial(tmp_path: Path):
    seeds = [0, 1]
    for unit, overrides in (("e04", E04), ("threats", THREATS), ("e01", E01)):
        serial = _serial(unit, overrides, seeds)
        pool = run_sweep(unit, overrides, seeds, workers=2)
        assert pool.executor == "processes" and pool.workers == 2
        assert pool.rows == serial, unit
        assert rows_csv(pool.rows) == rows_csv(serial)


def test_dask_cluster_equals_serial():
    distributed = pytest.importorskip(
        "dask.distributed", reason="dask.distributed not installed: pip install -e '.[sweeps]'")
    seeds = [0, 1]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        on_dask = {unit: run_sweep(unit, o, seeds, scheduler=cluster.scheduler_address)
                   for unit, o in (("e04", E04), ("threats", THREATS))}
    for unit, o in (("e04", E04), ("threats", THREATS)):
        assert on_dask[unit].executor == "dask"
        assert on_dask[unit].rows == _serial(unit, o, seeds), unit


def test_cli_writes_csv_and_json_atomically(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    argv = ["sweep", "S2", "--seeds", "2", "--base-seed", "4", "--workers", "0", "--out",
            str(tmp_path), "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["executor"] == "serial" and [r["seed"] for r in out["rows"]] == [4, 5]
    assert out["summary"][0]["id"] == "S2" and out["summary"][0]["seeds"] == 2
    doc = json.loads((tmp_path / "sweep_threats.json").read_text())
    assert doc["rows"] == out["rows"] and doc["run"]["executor"] == "serial"
    lines = (tmp_path / "sweep_threats.csv").read_text().splitlines()
    assert lines[0].startswith("unit,id,seed,") and len(lines) == 3
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize("argv, message", [
    (["sweep", "e99"], "unknown sweep unit 'e99'"),
    (["sweep", "e04", "--param", "speed=1"], "no parameter 'speed'"),
    (["sweep", "e04", "--param", "load=fast"], "'fast' is not a number"),
    (["sweep", "e04", "--param", "gas_limit=1.5e6"], "'1.5e6' is not a whole number"),
    # a negative load reached simpy ("Negative delay -3.47...")
    (["sweep", "e04", "--param", "load=-1", "--workers", "0"], "load=-1.0 and minutes=8.0: "
     "both must be > 0"),
    (["sweep", "e04", "--param", "load"], "NAME=V1,V2"),
    (["sweep", "e04", "--param", "engine=rpc"], "only the in-process engines"),
    (["sweep", "e04", "--seeds", "0"], "argument --seeds: 0 is too small"),
    (["sweep"], "name a unit"),
    # a threat's own parameter: the error names the command that sweeps it
    (["sweep", "S4", "--param", "colluders=1,2"],
     "swept by `proml threats run ID --param colluders=V1,V2`"),
])
def test_cli_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow  # the client tries for its whole 30 s timeout before it gives up
def test_an_unreachable_scheduler_is_named_with_the_fix(capsys: pytest.CaptureFixture[str]):
    # a closed loopback port: the connection is refused (it was "... (writing the output);
    # check the path, its permissions and the free space", the boundary's words for a file)
    pytest.importorskip("dask.distributed")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed
    assert main(["sweep", "S4", "--workers", "0", "--scheduler", f"tcp://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"proml: error: cannot reach the Dask scheduler at tcp://127.0.0.1:"
                          f"{port}") and "`dask scheduler`" in err, err


def test_scheduler_without_dask_says_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]):
    real_import = builtins.__import__

    def no_dask(name: str, *args: Any, **kw: Any) -> Any:
        if name.startswith("dask"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    assert main(["sweep", "S2", "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "proml-sim[sweeps]" in capsys.readouterr().err


def test_grid_and_param_parsing():
    unit = UNITS["e01"]
    assert parse_param("teams=2,4", unit) == ("teams", [2, 4])
    assert parse_param("per-hour=10", unit) == ("per_hour", [10.0])
    points = grid(unit, {"teams": [2, 4], "profile": ["poa-clique", "ethereum-pos"]})
    assert [(p["profile"], p["teams"]) for p in points] == [
        ("poa-clique", 2), ("poa-clique", 4), ("ethereum-pos", 2), ("ethereum-pos", 4)]
    threats, alias = resolve("S4")
    assert threats.name == "threats" and alias == {"id": ["S4"]}
    every = grid(threats, {})
    assert {"S2", "S4", "T1"} <= {p["id"] for p in every}
