"""``proml threats list`` and ``proml threats run [ID ...] [--seeds N] [--scenarios PLUGIN]
[--json]``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import proml_sim.cliargs as cliargs
from proml_sim.errors import UsageError
from proml_sim.threats.catalogue import load_catalogue


def _catalogue(args: argparse.Namespace) -> dict[str, Any]:
    """The catalogue (``--models`` or threat_models/) plus the threat models of the plugins
    given with ``--scenarios`` and of installed ones."""
    from proml_sim.threats.plugins import load_entry_points, load_plugin
    from proml_sim.threats.runner import load_scenarios

    cat: dict[str, Any] = dict(load_catalogue(args.models))
    load_scenarios()
    plugins = dict(load_entry_points())
    for spec in args.scenarios or ():
        plugins.update(load_plugin(spec))
    for tid, tm in plugins.items():
        cat.setdefault(tid, tm)
    return cat


def cmd_list(args: argparse.Namespace) -> int:
    from proml_sim.threats.runner import load_scenarios

    cat = _catalogue(args)
    impl = load_scenarios()
    if args.markdown:
        from proml_sim.threats.catalogue_doc import catalogue_markdown

        print(catalogue_markdown(cat), end="")
        return 0
    rows = [{"id": t.id, "title": t.title, "stride": "".join(t.stride),
             "attacker": f"{t.attacker_role}@{t.attacker_domain}",
             "expected": {"baseline": t.expected_baseline, "proml": t.expected_proml},
             "implemented": t.id in impl, "seeds": t.seeds} for t in cat.values()]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            mark = "" if r["implemented"] else "  (not implemented)"
            print(f"{r['id']:>4} {r['stride']:<4} {r['title']}{mark}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from proml_sim.threats.runner import load_scenarios, run_many

    cat = _catalogue(args)
    impl = load_scenarios()
    ids = args.ids or [i for i in cat if i in impl]
    unknown = [i for i in ids if i not in cat]
    if unknown:
        raise UsageError(f"unknown threat id(s) {unknown}; `proml threats list` shows them")
    no_code = [i for i in ids if i not in impl]
    if no_code:
        raise UsageError(f"threat(s) {', '.join(no_code)} are catalogued but have no code; "
                         "write a scenario (docs/tutorials/threat_scenario.py) and load it with "
                         "--scenarios FILE_OR_MODULE")
    models = [cat[i] for i in ids]

    def progress(tid: str) -> None:
        if not args.json:
            print(f"running {tid} ...", file=sys.stderr)

    results = run_many(models, args.seeds, args.seed, progress)
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    else:
        print(format_matrix(results))
    return 0 if all(r["matches_expected"] for r in results) else 1


def _cell(side: dict[str, Any]) -> str:
    asr = side["asr"]
    lo, hi = side["asr_ci"]
    return f"{side['verdict']} (ASR {asr:.2f} [{lo:.2f}, {hi:.2f}])"


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
    rp.add_argument("--scenarios", action="append", metavar="FILE_OR_MODULE",
                    help="load scenario plugin(s): a .py file or module registering scenarios "
                    "with @scenario, its <ID>.toml beside it (repeatable)")
    rp.add_argument("--json", action="store_true",
                    help="one object per scenario with baseline/proml verdicts and metrics")
    rp.set_defaults(func=cmd_run)
