"""``proml mutate``: plant access-control mutants in a lifecycle's generated contracts and show
the threat properties kill every one.

Wire it into the top-level parser with :func:`register` (``register(subparsers)``).  Exit codes:
0 every applicable mutant killed and the unmutated contracts pass, 1 otherwise, 2 usage or
input error (unknown lifecycle or mutant, a mutant whose anchor is not in the source).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import proml_sim.cliargs as cliargs
from proml_sim.errors import UsageError

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE = 0, 1, 2


def cmd_mutate(args: argparse.Namespace) -> int:
    from proml_sim.lifecycles import load_lifecycle

    try:
        from proml_sim.threats.mutants import (
            MutantAnchorError,
            format_matrix,
            run_mutation,
            write_report,
        )
    except ImportError as exc:  # hypothesis is a development extra
        if (exc.name or "").split(".")[0] != "hypothesis":
            raise
        raise UsageError("proml mutate runs the hypothesis property suite; install it with "
                         "pip install 'proml-sim[dev]' (or pip install hypothesis)") from exc

    if args.coverage:
        return cmd_coverage(args)
    try:
        lifecycle = load_lifecycle(args.lifecycle)
        progress = None if args.json else (lambda line: print(line, file=sys.stderr, flush=True))
        mutants = None
        if args.mutant_file:
            from proml_sim.threats.mutants import load_user_mutants, mutants_for

            mutants = [*mutants_for(lifecycle), *load_user_mutants(args.mutant_file, lifecycle)]
        report = run_mutation(
            lifecycle, max_examples=args.max_examples, seed=args.seed, steps=args.steps,
            only=tuple(args.mutant) if args.mutant else None, chain_only=args.chain_only,
            progress=progress, mutants=mutants,
        )
    except (MutantAnchorError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    if args.out:
        path = write_report(report, Path(args.out))
        if not args.json:
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_json(), sort_keys=True))
    else:
        print(format_matrix(report))
        if not report.suite_ok:
            print("the unmutated contract fails the threat properties: the suite (or the "
                  "generator) is broken, so kills mean nothing", file=sys.stderr)
    return EXIT_OK if report.all_killed else EXIT_CHECK_FAILED


def cmd_coverage(args: argparse.Namespace) -> int:
    """``proml mutate --coverage``: per guard (revert reason) of the generated contracts, how
    many generated sequences made it fail; exit 1 if a guard was never hit."""
    from proml_sim.lifecycles import load_lifecycle

    try:
        from proml_sim.compiler import compile_artefact
        from proml_sim.threats.properties import guard_coverage
    except ImportError as exc:  # hypothesis is a development extra
        if (exc.name or "").split(".")[0] != "hypothesis":
            raise
        raise UsageError("proml mutate --coverage runs the hypothesis property suite; install "
                         "it with pip install 'proml-sim[dev]'") from exc
    try:
        lifecycle = load_lifecycle(args.lifecycle)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    rows = []
    for layout in args.layout or ["registry"]:
        if not args.json:
            print(f"guard coverage of {args.lifecycle} ({layout}) ...", file=sys.stderr)
        rows.append(guard_coverage(compile_artefact(lifecycle, layout=layout), layout,
                                   args.max_examples, args.seed, args.steps))
    if args.json:
        print(json.dumps([c.to_json() for c in rows], sort_keys=True))
    else:
        for c in rows:
            print(f"{c.lifecycle} ({c.layout}): {len(c.guards) - len(c.missed)} of "
                  f"{len(c.guards)} guards hit in {c.examples} sequences (seed {args.seed})")
            for g in c.to_json()["guards"]:
                print(f"  {g['sequences']:5d}  {g['reason']}"
                      + (f"  [{g['sites']} sites]" if g["sites"] > 1 else ""))
            if not c.suite_passed:
                print("  the unmutated contract fails the threat properties", file=sys.stderr)
    return EXIT_OK if all(not c.missed and c.suite_passed for c in rows) else EXIT_CHECK_FAILED


def register(sub: Any) -> None:
    """Add ``mutate`` to the top-level ``proml`` parser (``sub``: its subparsers)."""
    p = sub.add_parser(
        "mutate", help="plant access-control mutants in the generated contracts; the threat "
        "property suite must kill every one (kill matrix)",
        description="Plant access-control bugs into the generated Vyper of a lifecycle, compile "
        "each, run the hypothesis threat properties on it and on the unmutated contracts. "
        "Exit 0 only if every applicable mutant is killed and the unmutated contracts pass.",
    )
    p.add_argument("--lifecycle", default="SingleAdminModel",
                   help="SingleAdminModel (default), SingleAdminDataset or "
                   "package.module:ClassName (the property suite drives roles, not consortium "
                   "governance: the paper's consortium Dataset/Model are covered by the "
                   "governance mutants' lock-step test)")
    p.add_argument("--max-examples", type=cliargs.positive_int, default=50,
                   help="hypothesis examples per run before a mutant counts as surviving "
                   "(default 50)")
    p.add_argument("--steps", type=cliargs.positive_int, default=30,
                   help="steps per example (default 30)")
    p.add_argument("--seed", type=cliargs.non_negative_int, default=0,
                   help="hypothesis seed (default 0)")
    p.add_argument("--mutant", action="append",
                   help="only this mutant (id such as b-tx-origin, or its letter); repeatable")
    p.add_argument("--chain-only", action="store_true",
                   help="also run each mutant without the reference interpreter (chain-data "
                   "properties only)")
    p.add_argument("--coverage", action="store_true",
                   help="instead of mutants: per guard (revert reason) of the generated "
                   "contracts, how many generated sequences made it fail; exit 1 if one is "
                   "never hit")
    p.add_argument("--layout", action="append", choices=("registry", "factory", "clone"),
                   help="with --coverage: the contract layout(s) (default registry)")
    p.add_argument("--mutant-file", type=cliargs.existing_file, metavar="FILE",
                   help="also plant your own mutant(s): a TOML file of [[mutant]] tables with "
                   "id, title, old and new (the exact text to replace, found exactly once), "
                   "optionally part (registry, factory, clone, artefact) and function")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--out", type=cliargs.output_dir, help="write DIR/mutation.json (atomically)")
    p.set_defaults(func=cmd_mutate)
