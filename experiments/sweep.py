"""Parameter sweeps: seeds x parameters of one unit of work, run serially, on local processes,
or on a Dask cluster, with the same rows whichever runs them.

A **unit** is a deterministic function of ``(params, seed)`` returning a flat dict of measures;
the registry :data:`UNITS` holds

* ``e01``: provenance latency (L@1/L@12 medians and p95s) of one block-production profile
  (:func:`experiments.e01_latency.run_profile`), swept over ``profile``, ``teams``, ``hours``,
  ``per_hour``, ``engine``;
* ``e04``: one saturation point (:func:`experiments.e04_scaling.saturation_point`): offered
  ``load`` (a multiple of the nominal capacity), ``profile``, ``gas_limit``, ``minutes``,
  ``engine``;
* ``threats``: one catalogued threat scenario on both systems
  (:func:`proml_sim.threats.runner.run_threat` with ``seeds=1`` and ``base_seed=seed``), swept
  over the threat ``id``; ``proml sweep S4`` is ``proml sweep threats --param id=S4``; plugin
  scenarios with ``--scenarios FILE_OR_MODULE`` (the ``scenarios`` parameter, so every
  worker loads the plugin too).

The grid is the product of every parameter's values (a parameter not swept keeps its default),
in the order the unit declares its parameters and the values were given; each grid point runs
once per seed.  Rows are ordered by (grid point, seed) and carry ``unit``, every parameter and
``seed`` first, so a serial run, a process pool and a Dask cluster write identical files.

Executors: ``workers=0`` runs serially in this process; ``workers=K`` (default: the CPU count)
runs K spawned processes (:class:`concurrent.futures.ProcessPoolExecutor`); ``scheduler=
"tcp://HOST:PORT"`` submits to a running Dask scheduler (``dask.distributed``, the ``sweeps``
extra), whose workers need this package installed.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proml_sim.parallel import DASK_HINT, grid_points, run_tasks


@dataclass(frozen=True)
class Unit:
    """One sweepable unit of work.  ``params``: each parameter's default values (the grid takes
    all of them when the parameter is not swept); ``run(params, seed)`` must be a module-level
    function (workers import it by name); ``headline``: measures the summary table shows."""

    name: str
    help: str
    params: dict[str, tuple[Any, ...]]
    run: Callable[[dict[str, Any], int], dict[str, Any]]
    headline: tuple[str, ...] = ()
    in_process_engines_only: bool = True
    aliases: Callable[[], dict[str, dict[str, list[Any]]]] | None = field(default=None,
                                                                        compare=False)
    #: parameters left out of the rows while empty (e.g. no plugin loaded)
    quiet: frozenset[str] = frozenset()
    #: appended to the error for a parameter the unit lacks (where such a one is swept)
    elsewhere: str = ""


# -- the units -----------------------------------------------------------------------------------
def _e01(params: dict[str, Any], seed: int) -> dict[str, Any]:
    from experiments.e01_latency import run_profile

    _, stats = run_profile(params["profile"], seed, params["teams"], params["hours"],
                           params["per_hour"], params["engine"])
    return stats


def _e04(params: dict[str, Any], seed: int) -> dict[str, Any]:
    from experiments.e04_scaling import saturation_point

    return saturation_point(params["profile"], params["gas_limit"], params["load"],
                            params["minutes"], seed, params["engine"])


def _threat(params: dict[str, Any], seed: int) -> dict[str, Any]:
    from proml_sim.threats.runner import run_threat

    tm = _threat_models(params.get("scenarios", "")).get(params["id"])
    if tm is None:
        raise ValueError(f"unknown or unimplemented threat {params['id']!r}; implemented: "
                         f"{', '.join(_threat_models())}")
    r = run_threat(tm, 1, seed)
    out: dict[str, Any] = {"matches_expected": r["matches_expected"]}
    for side in ("baseline", "proml"):
        for k, v in r[side].items():
            if k != "seeds" and not k.endswith("_ci"):  # one seed: no interval to report
                out[f"{side}.{k}"] = v
    return out


def _threat_models(plugin: str = "") -> dict[str, Any]:
    """Catalogued threats that have an implementation (code, or a ``[play]``), in catalogue
    order, then those of installed plugins and of ``plugin`` (a scenario plugin file or
    module, or a threat model whose ``[play]`` needs no code)."""
    from proml_sim.threats.catalogue import load_catalogue
    from proml_sim.threats.plugins import load_entry_points, load_plugin
    from proml_sim.threats.runner import implemented

    cat = {**load_catalogue(), **load_entry_points(), **(load_plugin(plugin) if plugin else {})}
    return {tm.id: tm for tm in implemented(cat.values())}


def _threat_aliases() -> dict[str, dict[str, list[Any]]]:
    return {tid: {"id": [tid]} for tid in _threat_models()}


UNITS: dict[str, Unit] = {
    u.name: u
    for u in (
        Unit("e01", "E1 latency of one block-production profile (L@1, L@12)",
             {"profile": ("ropsten-2022",), "teams": (6,), "hours": (3.0,),
              "per_hour": (30.0,), "engine": ("pyevm",)},
             _e01, ("l1_median_s", "l12_median_s", "transactions")),
        Unit("e04", "E4 one saturation point: latency and throughput at an offered load",
             {"profile": ("consortium-fast",), "load": (0.5, 1.1), "gas_limit": (600_000,),
              "minutes": (8.0,), "engine": ("pyevm",)},
             _e04, ("l1_median_s", "throughput_per_s", "never_included")),
        Unit("threats", "one threat scenario against the baseline and ProML (seeds=1 each)",
             {"id": (), "scenarios": ("",)}, _threat,
             ("baseline.asr", "proml.asr", "proml.detection_rate"),
             aliases=_threat_aliases, quiet=frozenset({"scenarios"}),
             elsewhere="; a threat model's own parameters are swept by `proml threats run ID "
                       "--param {name}=V1,V2` (an interval at every point)"),
    )
}


def resolve(name: str) -> tuple[Unit, dict[str, list[Any]]]:
    """The unit called ``name`` (or a threat id: the ``threats`` unit for that id)."""
    if name in UNITS:
        return UNITS[name], {}
    for unit in UNITS.values():
        if unit.aliases is not None:
            alias = unit.aliases().get(name)
            if alias is not None:
                return unit, alias
    raise ValueError(f"unknown sweep unit {name!r}; use one of {', '.join(UNITS)} or a "
                     "threat id (`proml threats list`)")


def parse_param(spec: str, unit: Unit) -> tuple[str, list[Any]]:
    """``NAME=V1,V2,...`` with values typed like the parameter's default."""
    name, sep, text = spec.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not text.strip():
        raise ValueError(f"--param {spec!r}: write NAME=V1,V2,...")
    if name not in unit.params:
        raise ValueError(f"unit {unit.name} has no parameter {name!r}; its parameters: "
                         f"{', '.join(unit.params)}{unit.elsewhere.format(name=name)}")
    defaults = unit.params[name]
    kind = type(defaults[0]) if defaults else str
    values = []
    for raw in (v.strip() for v in text.split(",")):
        try:
            values.append(kind(raw) if kind is not bool else raw.lower() in ("1", "true", "yes"))
        except ValueError:
            what = {int: "a whole number", float: "a number"}.get(kind, f"a {kind.__name__}")
            raise ValueError(f"--param {name}: {raw!r} is not {what}") from None
    if len(set(values)) != len(values):
        raise ValueError(f"--param {name}: repeated values in {text!r}")
    return name, values


def grid(unit: Unit, overrides: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every parameter combination, in the unit's parameter order."""
    unknown = set(overrides) - set(unit.params)
    if unknown:
        raise ValueError(f"unit {unit.name} has no parameter(s) {sorted(unknown)}; its "
                         f"parameters: {', '.join(unit.params)}"
                         f"{unit.elsewhere.format(name='NAME')}")
    axes: dict[str, list[Any]] = {}
    for name, defaults in unit.params.items():
        values = list(overrides.get(name, defaults))
        if not values and unit.aliases is not None:  # e.g. every implemented threat
            values = [v for alias in unit.aliases().values() for v in alias[name]]
        if not values:
            raise ValueError(f"unit {unit.name} needs --param {name}=...")
        axes[name] = values
    points = grid_points(axes)
    if unit.in_process_engines_only:
        for p in points:
            if p.get("engine") not in (None, "pyevm", "revm"):
                raise ValueError(f"engine {p['engine']!r}: sweep units run independently and "
                                 "in parallel, so only the in-process engines pyevm and revm "
                                 "are allowed (one JSON-RPC node would be shared by all)")
    return points


def run_task(unit_name: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """One unit of work: a row with the unit, its parameters and seed first, then the measures
    (a measure named like a parameter is dropped: the parameter is the one swept)."""
    unit = UNITS[unit_name]
    measures = unit.run(dict(params), seed)
    shown = {k: v for k, v in params.items() if v or k not in unit.quiet}
    row: dict[str, Any] = {"unit": unit_name, **shown, "seed": seed}
    for k, v in measures.items():
        if k not in row:
            row[k] = v
    return row


@dataclass
class SweepResult:
    unit: str
    grid: list[dict[str, Any]]
    seeds: list[int]
    rows: list[dict[str, Any]]
    executor: str
    workers: int
    wall_s: float


def run_sweep(unit: Unit | str, overrides: dict[str, list[Any]] | None = None,
              seeds: Sequence[int] = (0,), *, workers: int | None = None,
              scheduler: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> SweepResult:
    """Run the grid x ``seeds``; rows ordered by (grid point, seed) whatever the executor."""
    if isinstance(unit, str):
        unit, alias = resolve(unit)
        overrides = {**alias, **(overrides or {})}
    points = grid(unit, overrides or {})
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError("seeds must be distinct and at least one")
    tasks = [(unit.name, p, s) for p in points for s in seeds]
    t0 = time.perf_counter()
    rows, executor, n = run_tasks(run_task, tasks, workers=workers, scheduler=scheduler,
                                  progress=progress)
    return SweepResult(unit.name, points, seeds, rows, executor, n,
                       round(time.perf_counter() - t0, 3))


# -- results ---------------------------------------------------------------------------------------
def _cell(v: Any) -> Any:
    return json.dumps(v, sort_keys=True) if isinstance(v, list | dict | tuple) else v


def rows_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV (columns in first-seen order; lists and dicts as JSON)."""
    columns: dict[str, None] = {}
    for r in rows:
        columns.update(dict.fromkeys(r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(v) for k, v in r.items()})
    return buf.getvalue()


def write_results(out: Path, res: SweepResult, scheduler: str | None = None) -> list[Path]:
    """``OUT/<unit>.csv`` (the rows: the same bytes whichever executor ran them) and
    ``OUT/<unit>.json`` (the rows and how this run went), each written atomically."""
    from proml_sim.artifacts import write_atomic

    csv_path, json_path = out / f"sweep_{res.unit}.csv", out / f"sweep_{res.unit}.json"
    write_atomic(csv_path, rows_csv(res.rows))
    doc = {"unit": res.unit, "grid": res.grid, "seeds": res.seeds, "rows": res.rows,
           "run": {"executor": res.executor, "workers": res.workers, "scheduler": scheduler,
                   "wall_s": res.wall_s}}
    write_atomic(json_path, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    return [csv_path, json_path]


def summarise(unit: Unit, res: SweepResult) -> list[dict[str, Any]]:
    """Per grid point: the mean of each headline measure over seeds."""
    out = []
    for p in res.grid:
        rows = [r for r in res.rows if all(r.get(k, "") == v for k, v in p.items())]
        line: dict[str, Any] = {**p, "seeds": len(rows)}
        for m in unit.headline:
            vals = [r[m] for r in rows if isinstance(r.get(m), int | float)
                    and not isinstance(r.get(m), bool)]
            line[m] = round(sum(vals) / len(vals), 3) if vals else None
        out.append(line)
    return out


# -- command line ----------------------------------------------------------------------------------
def cmd_sweep(args: argparse.Namespace) -> int:
    from proml_sim.cli import UsageError

    if args.list:
        for u in UNITS.values():
            params = ", ".join(f"{k}={','.join(map(str, v)) or '(all)'}"
                               for k, v in u.params.items())
            print(f"{u.name:>8}  {u.help}\n{'':>8}  parameters (defaults): {params}")
        return 0
    if not args.unit:
        raise UsageError("name a unit (or a threat id); `proml sweep --list` shows them")
    try:
        if args.scenarios:
            from proml_sim.threats.plugins import load_plugin

            if args.unit in load_plugin(args.scenarios):
                unit, overrides = UNITS["threats"], {"id": [args.unit]}
            else:
                unit, overrides = resolve(args.unit)
        else:
            unit, overrides = resolve(args.unit)
        if args.scenarios:
            if unit.name != "threats":
                raise ValueError("--scenarios loads threat scenarios: sweep a threat id")
            overrides["scenarios"] = [args.scenarios]
        for spec in args.param:
            name, values = parse_param(spec, unit)
            overrides[name] = values
        if args.seeds < 1:
            raise ValueError("--seeds must be >= 1")
        seeds = list(range(args.base_seed, args.base_seed + args.seeds))
        progress = None
        if not args.json and sys.stderr.isatty():
            def progress(done: int, total: int) -> None:
                print(f"\r{done}/{total} units done", end="" if done < total else "\n",
                      file=sys.stderr, flush=True)
        res = run_sweep(unit, overrides, seeds, workers=args.workers, scheduler=args.scheduler,
                        progress=progress)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    paths = write_results(Path(args.out), res, args.scheduler)
    if args.json:
        print(json.dumps({"unit": res.unit, "executor": res.executor, "wall_s": res.wall_s,
                          "files": [str(p) for p in paths], "summary": summarise(unit, res),
                          "rows": res.rows}, indent=2, default=str))
        return 0
    where = (f"Dask scheduler {args.scheduler}" if res.executor == "dask" else
             f"{res.workers} process(es)" if res.executor == "processes" else "this process")
    print(f"{len(res.rows)} runs of {res.unit} ({len(res.grid)} parameter set(s) x "
          f"{len(res.seeds)} seed(s)) in {res.wall_s} s on {where}")
    for line in summarise(unit, res):
        print("  " + ", ".join(f"{k}={v}" for k, v in line.items()))
    print(f"wrote {paths[0]} and {paths[1]}")
    return 0


def register(sub: Any) -> None:
    """Add ``proml sweep`` to the ``proml`` command line."""
    import proml_sim.cliargs as cliargs

    p = sub.add_parser(
        "sweep", help="a parameter grid (seeds x parameters) of an experiment's or a threat "
        "scenario's unit of work, on local processes or a Dask cluster")
    p.add_argument("unit", nargs="?", metavar="EXPERIMENT_OR_THREAT",
                   help=f"{', '.join(UNITS)}, or a threat id (e.g. S4)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="sweep a parameter over these values (repeatable)")
    p.add_argument("--seeds", type=cliargs.positive_int, default=1,
                   help="seeds per parameter set (default 1)")
    p.add_argument("--base-seed", type=cliargs.non_negative_int, default=0,
                   help="first seed (default 0)")
    p.add_argument("--workers", type=cliargs.non_negative_int, default=None,
                   help="local processes (default: CPU count; 0: serially in this process)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help=f"run on this Dask scheduler instead ({DASK_HINT})")
    p.add_argument("--out", default="sweeps", type=cliargs.output_dir,
                   help="directory for sweep_<unit>.csv/.json "
                   "(default: sweeps)")
    p.add_argument("--scenarios", metavar="FILE_OR_MODULE",
                   help="load a threat scenario plugin first (then sweep its id)")
    p.add_argument("--list", action="store_true", help="list the units and their parameters")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sweep)
