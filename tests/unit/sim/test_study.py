"""Study: a function over seeds x a grid, tidy rows, intervals, DataFrame/Parquet/CSV output."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pytest

from proml_sim.sim import Study, World, rows_dataframe, write_parquet


def coin(params: dict[str, Any], seed: int) -> dict[str, Any]:
    """Deterministic per seed: 'hit' on seeds below p * 10, a number, and a missing value."""
    return {"hit": seed < params["p"] * 10, "x": params["p"] * 100 + seed,
            "maybe": None if seed % 2 else 1.0, "nan": math.nan}


def test_grid_x_seeds_rows_and_intervals() -> None:
    res = Study(coin, {"p": [0.2, 0.5]}, seeds=10).run()
    assert len(res.rows) == 20 and res.executor == "serial"
    assert list(res.rows[0])[:2] == ["p", "seed"]
    assert res.rows[1]["nan"] is None  # NaN and '' are tidied to None
    by = {(r["p"], r["measure"]): r for r in res.summary()}
    hit = by[(0.5, "hit")]
    assert (hit["stat"], hit["value"], hit["n"]) == ("rate", 0.5, 10)
    assert 0.2 < hit["lo"] < 0.5 < hit["hi"] < 0.8  # Wilson, 10 trials
    x = by[(0.2, "x")]
    assert x["stat"] == "mean" and x["value"] == pytest.approx(24.5)
    assert x["lo"] < 24.5 < x["hi"]
    assert by[(0.2, "maybe")]["n"] == 5 and by[(0.2, "nan")]["value"] is None
    with pytest.raises(ValueError, match="seeds"):
        Study(coin, {"p": [0.1]}, seeds=0)


def latency(params: dict[str, Any], seed: int) -> dict[str, Any]:
    w = World(seed, "consortium-fast")
    w.add_participant("ann", "lab", "eu")
    w.setup(grants=[("ann", "Model", "operator")])

    def act(w: World):  # type: ignore[no-untyped-def]
        for i in range(params["n"]):
            yield from w.send("ann", "Model", "register", bytes([i + 1]).ljust(32, b"\0"))

    w.env.process(act(w))
    w.run(30)
    w.finish()
    rows = w.monitor.rows
    return {"txs": len(rows), "l1_max_s": max(r["l1_s"] for r in rows)}


def test_study_of_worlds_and_outputs(tmp_path: Path) -> None:
    res = Study(latency, {"n": [1, 3]}, seeds=[4, 5]).run()
    assert [(r["n"], r["seed"], r["txs"]) for r in res.rows] == [
        (1, 4, 1), (1, 5, 1), (3, 4, 3), (3, 5, 3)]
    res.write(tmp_path / "s.csv")
    with open(tmp_path / "s.csv") as fh:
        assert [int(r["txs"]) for r in csv.DictReader(fh)] == [1, 1, 3, 3]
    pd = pytest.importorskip("pandas", reason="the data extra (pandas) is not installed")
    res.write(tmp_path / "s.parquet")
    assert list(pd.read_parquet(tmp_path / "s.parquet")["txs"]) == [1, 1, 3, 3]
    assert list(res.dataframe()["n"]) == [1, 1, 3, 3]


def test_world_rows_as_dataframe_and_parquet(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas", reason="the data extra (pandas) is not installed")
    w = World(1, "consortium-fast")
    w.add_participant("ann", "lab", "eu")
    w.setup(grants=[("ann", "Model", "operator")])

    def act(w: World):  # type: ignore[no-untyped-def]
        yield from w.send("ann", "Model", "register", b"\1".ljust(32, b"\0"))
        yield w.env.timeout(5)
        yield from w.send("ann", "Model", "register", b"\2".ljust(32, b"\0"))

    w.env.process(act(w))
    w.run(7, drain=False)
    w.finish()
    df = rows_dataframe(w.monitor.rows)
    assert len(df) == 2 and df["l12_s"].isna().all() and df["l1_s"].notna().any()
    write_parquet(w.monitor.rows, tmp_path / "rows.parquet")
    back = pd.read_parquet(tmp_path / "rows.parquet")
    assert list(back.columns) == list(df.columns)
    assert back["l12_s"].isna().all() and back["gas"].dtype.kind in "if"
