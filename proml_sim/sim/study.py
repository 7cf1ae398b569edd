"""Studies: your function over seeds x a parameter grid, serially, on processes or on Dask
(the machinery of ``proml sweep``, :mod:`proml_sim.parallel`), as tidy rows with intervals.

``fn(params, seed) -> dict`` is one run: a module-level function (worker processes import it
by name) returning flat measures (numbers, booleans, None for "no value").
:meth:`Study.run` returns a :class:`StudyResult`: ``rows`` (one per grid point and seed, the
parameters and ``seed`` first), :meth:`StudyResult.summary` (one row per grid point and
measure: the mean with a bootstrap interval, or for a boolean measure the rate with a Wilson
interval -- :mod:`proml_sim.stats`), :meth:`StudyResult.dataframe` (pandas, the ``data``
extra) and :meth:`StudyResult.write` (CSV, or Parquet for large studies).

Example::

    def latency(params, seed):
        w = World(seed, get_profile("ethereum-pos").with_(block_time=params["slot"]))
        ...
        w.run(3600)
        return {"l1_median_s": statistics.median(...), "all_final": ...}

    res = Study(latency, {"slot": [6.0, 12.0]}, seeds=10, workers=2).run()
    for row in res.summary():
        print(row["slot"], row["measure"], row["value"], row["lo"], row["hi"])
"""

from __future__ import annotations

import csv
import io
import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proml_sim.errors import ProMLError
from proml_sim.parallel import grid_points, run_tasks
from proml_sim.stats import bootstrap, wilson

RunFn = Callable[[dict[str, Any], int], Mapping[str, Any]]
DATA_HINT = "pip install 'proml-sim[data]'  (pandas, pyarrow)"


def _one(fn: RunFn, params: dict[str, Any], seed: int) -> dict[str, Any]:
    measures = fn(dict(params), seed)
    row: dict[str, Any] = {**params, "seed": seed}
    for k, v in measures.items():
        row.setdefault(k, _tidy(v))
    return row


def _tidy(v: Any) -> Any:
    """Missing values are None, never '' or NaN (NaN becomes None)."""
    if v == "" or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


@dataclass
class StudyResult:
    """What :meth:`Study.run` returns: the tidy rows, the grid and how the run went.

    Example: ``res = Study(fn, {"p": [1, 2]}, seeds=5).run(); res.summary(); res.write("s.csv")``.
    """

    params: list[str]
    grid: list[dict[str, Any]]
    seeds: list[int]
    rows: list[dict[str, Any]]
    executor: str
    wall_s: float

    def measures(self) -> list[str]:
        """The measure columns, in first-seen order."""
        skip = {*self.params, "seed"}
        out: dict[str, None] = {}
        for r in self.rows:
            out.update((k, None) for k in r if k not in skip)
        return list(out)

    def summary(self, measures: Iterable[str] | None = None, *, stat: str = "mean",
                seed: int = 0) -> list[dict[str, Any]]:
        """One row per (grid point, measure): the parameters, ``measure``, ``value``, ``lo``,
        ``hi`` (95 %) and ``n`` (runs with a value).  Booleans: the rate with a Wilson interval;
        numbers: ``stat`` (``mean`` or ``median``) with a percentile bootstrap interval.
        Example: ``res.summary(["l1_median_s"])``."""
        if stat not in ("mean", "median"):
            raise ValueError(f"stat={stat!r}; use 'mean' or 'median'")
        fn = statistics.fmean if stat == "mean" else statistics.median
        out = []
        for point in self.grid:
            runs = [r for r in self.rows if all(r.get(k) == v for k, v in point.items())]
            for m in measures or self.measures():
                vals = [r.get(m) for r in runs if r.get(m) is not None]
                if vals and all(isinstance(v, bool) for v in vals):
                    e = wilson(sum(bool(v) for v in vals), len(vals))
                    kind = "rate"
                else:
                    nums = [float(v) for v in vals if isinstance(v, int | float)]
                    e = bootstrap(nums, stat=fn, seed=seed)
                    kind = stat
                out.append({**point, "measure": m, "stat": kind, "value": e.value,
                            "lo": e.lo, "hi": e.hi, "n": e.n})
        return out

    def dataframe(self) -> Any:
        """The rows as a pandas DataFrame (missing values NaN/None)."""
        try:
            import pandas as pd
        except ImportError:
            raise ProMLError(f"StudyResult.dataframe needs pandas: {DATA_HINT}") from None
        return pd.DataFrame(self.rows)

    def write(self, path: str | Path) -> Path:
        """Write the rows atomically: ``.parquet`` (needs pyarrow, the ``data`` extra) or
        ``.csv`` (missing values as empty cells).  Returns the path."""
        from proml_sim.fsutil import atomic_write_bytes, atomic_write_with, check_output_path

        p = check_output_path(path)
        if p.suffix == ".parquet":
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError:
                raise ProMLError(f"Parquet output needs pyarrow: {DATA_HINT}") from None
            table = pa.Table.from_pylist(self.rows)
            return atomic_write_with(p, lambda fh: pq.write_table(table, fh))  # type: ignore[no-untyped-call]
        columns: dict[str, None] = {}
        for r in self.rows:
            columns.update(dict.fromkeys(r))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
        w.writeheader()
        w.writerows(self.rows)
        return atomic_write_bytes(p, buf.getvalue().encode())


class Study:
    """``fn`` over every combination of ``grid``'s values x ``seeds`` (a count: 0..n-1, or a
    list).  ``workers``: 0 serially (the default), K local processes; ``scheduler``: a Dask
    scheduler address.  See the module docstring for an example."""

    def __init__(self, fn: RunFn, grid: Mapping[str, Sequence[Any]] | None = None,
                 seeds: int | Sequence[int] = 1, *, workers: int = 0,
                 scheduler: str | None = None) -> None:
        self.fn = fn
        self.grid = {k: list(v) for k, v in (grid or {}).items()}
        self.seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds: give a positive count or distinct seeds")
        if "seed" in self.grid:
            raise ValueError("'seed' is not a parameter: use seeds=")
        self.workers = workers
        self.scheduler = scheduler

    def run(self, progress: Callable[[int, int], None] | None = None) -> StudyResult:
        """Run every (grid point, seed); rows in (grid point, seed) order whatever runs them."""
        points = grid_points(self.grid) if self.grid else [{}]
        tasks = [(self.fn, p, s) for p in points for s in self.seeds]
        t0 = time.perf_counter()
        rows, executor, _ = run_tasks(_one, tasks, workers=self.workers,
                                      scheduler=self.scheduler, progress=progress)
        return StudyResult(list(self.grid), points, self.seeds, rows, executor,
                           round(time.perf_counter() - t0, 3))
