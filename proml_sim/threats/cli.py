"""``proml threats list`` and ``proml threats run [ID ...] [--seeds N] [--scenarios PLUGIN]
[--json]``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import proml_sim.cliargs as cliargs
from proml_sim.errors import UsageError
from proml_sim.fsutil import parse_toml
from proml_sim.threats.catalogue import load_catalogue


def _catalogue(args: argparse.Namespace) -> dict[str, Any]:
    """The catalogue (``--models`` or threat_models/) plus the threat models of the plugins
    given with ``--scenarios`` and of installed ones.  A plugin's model with a catalogued id
    from another file is an error: it would silently not run."""
    from proml_sim.threats.plugins import load_entry_points, load_plugin
    from proml_sim.threats.runner import load_scenarios

    cat: dict[str, Any] = dict(load_catalogue(args.models))
    load_scenarios()
    plugins = dict(load_entry_points())
    for spec in args.scenarios or ():
        plugins.update(load_plugin(spec))
    for tid, tm in plugins.items():
        if tid in cat and Path(cat[tid].path).resolve() != Path(tm.path).resolve():
            raise UsageError(f"{tm.path} has id {tid}, which the catalogue's {cat[tid].path} "
                             "already has; give the plugin's threat model its own id")
        cat.setdefault(tid, tm)
    return cat


def _show(args: argparse.Namespace, results: list[dict[str, Any]],
          text: Callable[[list[dict[str, Any]]], str]) -> None:
    print(json.dumps(results, indent=2, default=str) if args.json else text(results))


def _progress(args: argparse.Namespace) -> Callable[[str], None]:
    return lambda what: None if args.json else print(f"running {what} ...", file=sys.stderr)


def cmd_list(args: argparse.Namespace) -> int:
    from proml_sim.threats.runner import implemented

    cat = _catalogue(args)
    ok = {tm.id for tm in implemented(cat.values())}
    if args.markdown:
        from proml_sim.threats.catalogue_doc import catalogue_markdown

        print(catalogue_markdown(cat), end="")
        return 0
    rows = [{"id": t.id, "title": t.title, "stride": "".join(t.stride),
             "attacker": f"{t.attacker_role}@{t.attacker_domain}",
             "expected": {"baseline": t.expected_baseline, "proml": t.expected_proml},
             "implemented": t.id in ok, "seeds": t.seeds} for t in cat.values()]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            mark = "" if r["implemented"] else "  (not implemented)"
            print(f"{r['id']:>4} {r['stride']:<4} {r['title']}{mark}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from proml_sim.threats.runner import implemented, run_many

    cat = _catalogue(args)
    ok = {tm.id for tm in implemented(cat.values())}
    ids = args.ids or [i for i in cat if i in ok]
    unknown = [i for i in ids if i not in cat]
    files = [i for i in unknown if i.endswith((".toml", ".py"))]
    if files:  # a threat model or plugin of one's own is loaded, then run by its id
        raise UsageError(f"{files[0]} is a file, not a threat id; load it with --scenarios "
                         f"{files[0]} (then its id, or no id to run every one)")
    if unknown:
        raise UsageError(f"unknown threat id(s) {unknown}; `proml threats list` shows them")
    no_code = [i for i in ids if i not in ok]
    if no_code:
        raise UsageError(f"threat(s) {', '.join(no_code)} are catalogued but have no code and "
                         "no [play]; give the threat model a [play] (docs/tutorials/X3.toml) or "
                         "write a scenario (docs/tutorials/threat_scenario.py) and load it with "
                         "--scenarios FILE_OR_MODULE")
    if args.param:
        return cmd_sweep(args, [cat[i] for i in ids])
    results = run_many([cat[i] for i in ids], args.seeds, args.seed, _progress(args))
    _show(args, results, format_matrix)
    return 0 if all(r["matches_expected"] for r in results) else 1


def param_sweep(text: str) -> tuple[str, list[Any]]:
    """``NAME=V1,V2,...`` -> (NAME, [V1, V2, ...]); values are TOML literals (``3``, ``0.5``,
    ``true``, ``"x"``, ``[1, 2]``), and a value that is not one is taken as text."""
    import tomllib

    name, eq, rest = text.partition("=")
    name = name.strip()
    if not eq or not name.isidentifier() or not rest.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not NAME=V1,V2,...; write e.g. --param stolen=1,2,3")
    try:
        values = parse_toml(f"v = [{rest}]")["v"]
    except tomllib.TOMLDecodeError:
        values = []
        for part in rest.split(","):
            try:
                values.append(parse_toml(f"v = {part.strip()}")["v"])
            except tomllib.TOMLDecodeError:
                values.append(part.strip())
    if not values or any(v == "" for v in values):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty value; write NAME=V1,V2")
    return name, list(values)


def cmd_sweep(args: argparse.Namespace, models: list[Any]) -> int:
    from proml_sim.threats.runner import sweep_threat, with_parameters

    grid: list[tuple[str, list[Any]]] = args.param
    names = [n for n, _ in grid]
    if len(set(names)) != len(names):
        raise UsageError(f"--param names a parameter twice ({names}); give each once")
    import itertools

    for tm in models:  # every point of the grid checked before anything runs
        for point in itertools.product(*(vs for _, vs in grid)):
            with_parameters(tm, dict(zip(names, point, strict=True)))
    _show(args, [sweep_threat(tm, grid, args.seeds, args.seed, _progress(args))
                 for tm in models], format_sweep)
    return 0


def format_sweep(results: list[dict[str, Any]]) -> str:
    """One line per (threat, parameter point): both systems' verdict and ASR with interval."""
    lines = [f"{'id':>4} {'parameters':<28} {'baseline':<44} {'ProML':<44}"]
    for r in results:
        for pt in r["points"]:
            ps = " ".join(f"{k}={v}" for k, v in pt["parameters"].items())
            lines.append(f"{r['id']:>4} {ps:<28} {_cell(pt['baseline']):<44} "
                         f"{_cell(pt['proml']):<44}")
    return "\n".join(lines)


def _cell(side: dict[str, Any]) -> str:
    asr = side["asr"]
    lo, hi = side["asr_ci"]
    n = side.get("trials", side["seeds"])
    if asr is None:  # no attack attempt at all (e.g. T5 with broken=0 and lie=0)
        return f"{side['verdict']} (no attempt, n=0)"
    return f"{side['verdict']} (ASR {asr:.2f} [{lo:.2f}, {hi:.2f}] n={n})"


def format_matrix(results: list[dict[str, Any]]) -> str:
    lines = [f"{'id':>4} {'STRIDE':<6} {'baseline':<44} {'ProML':<44} as expected"]
    for r in results:
        lines.append(f"{r['id']:>4} {r['stride']:<6} {_cell(r['baseline']):<44} "
                     f"{_cell(r['proml']):<44} {'yes' if r['matches_expected'] else 'NO'}")
    return "\n".join(lines)


def register(sub: Any) -> None:
    """Add ``threats list`` and ``threats run`` to the top-level ``proml`` parser."""
    p = sub.add_parser("threats", help="the threat catalogue: list scenarios, run them against "
                       "ProML and the centralised baseline")
    tsub = p.add_subparsers(dest="threats_command", metavar="SUBCOMMAND")
    tsub.required = True
    lp = tsub.add_parser("list", help="list the catalogued scenarios")
    lp.add_argument("--models", type=cliargs.existing_dir,
                    help="directory of threat models (default threat_models/)")
    lp.add_argument("--json", action="store_true")
    lp.add_argument("--markdown", action="store_true",
                    help="print the catalogue page (threat_models/README.md is this output)")
    lp.add_argument("--scenarios", action="append", metavar="FILE_OR_MODULE",
                    help="also load this scenario plugin (repeatable)")
    lp.set_defaults(func=cmd_list)
    rp = tsub.add_parser("run", help="run scenarios; exit 1 if a verdict differs from the "
                         "expected one")
    rp.add_argument("ids", nargs="*", help="threat ids (default: all implemented)")
    rp.add_argument("--seeds", type=cliargs.positive_int,
                    help="seeds per scenario (default: each model's own)")
    rp.add_argument("--seed", type=cliargs.non_negative_int, default=0, help="first seed")
    rp.add_argument("--models", type=cliargs.existing_dir,
                    help="directory of threat models (default threat_models/)")
    rp.add_argument("--param", type=param_sweep, action="append", metavar="NAME=V1,V2",
                    help="sweep a [parameters] entry of the threat model over these values "
                    "(TOML literals); repeat for a grid; each point runs --seeds seeds and "
                    "reports its verdicts and ASR with 95 %% intervals")
    rp.add_argument("--scenarios", action="append", metavar="FILE_OR_MODULE",
                    help="load scenario plugin(s): a .py file or module registering scenarios "
                    "with @scenario, its <ID>.toml beside it; or a threat model (.toml) whose "
                    "[play] needs no code (repeatable)")
    rp.add_argument("--json", action="store_true",
                    help="one object per scenario with baseline/proml verdicts and metrics")
    rp.set_defaults(func=cmd_run)
