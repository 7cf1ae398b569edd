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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import proml_sim.cliargs as cliargs
from proml_sim.errors import UsageError
from proml_sim.fsutil import atomic_write_json

EXIT_OK, EXIT_CHECK_FAILED = 0, 1


def cmd_mutate(args: argparse.Namespace) -> int:
    from proml_sim.lifecycles import load_lifecycle

    try:  # mutants imports the property suite, hence hypothesis (a development extra)
        from proml_sim.threats.mutants import (
            MutantAnchorError,
            format_matrix,
            run_mutation,
            write_report,
        )
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != "hypothesis":
            raise
        raise UsageError("proml mutate runs the hypothesis property suite; install it with "
                         "pip install 'proml-sim[dev]' (or pip install hypothesis)") from exc

    _check_modes(args)
    args.lifecycle = args.lifecycle or "Model"
    args.seeds = args.seeds or 1
    if args.coverage:
        return cmd_coverage(args)
    if args.catalogue:
        return cmd_catalogue(args)
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
    return _report(args, report, lambda out: write_report(report, out), format_matrix,
                   "the suite (or the generator) is broken, so kills mean nothing")


def _check_modes(args: argparse.Namespace) -> None:
    """An option given where it does nothing is a usage error, never silently ignored: each
    option and the runs it works in (the plain mutant run, --coverage, --random, --catalogue)."""
    if args.coverage and args.catalogue:
        raise UsageError("--coverage and --catalogue are two different runs; give one of them "
                         "(see `proml mutate --help`)")
    plain = not (args.coverage or args.catalogue)
    works = {"--layout": args.coverage, "--random": args.coverage,
             "--governance": bool(args.random), "--lifecycle": not args.random,
             "--list": args.catalogue, "--kind": args.catalogue, "--seeds": args.catalogue,
             "--sample": args.catalogue, "--workers": args.catalogue or bool(args.random),
             "--chain-only": plain, "--mutant-file": plain, "--mutant": not args.coverage}
    given = {"--layout": args.layout, "--random": args.random, "--governance": args.governance,
             "--lifecycle": args.lifecycle, "--list": args.list, "--kind": args.kind,
             "--seeds": args.seeds, "--sample": args.sample, "--workers": args.workers is not None,
             "--chain-only": args.chain_only, "--mutant-file": args.mutant_file,
             "--mutant": args.mutant}
    for flag, ok in works.items():
        if given[flag] and not ok:
            raise UsageError(f"{flag} does nothing in this run; see `proml mutate --help` for "
                             "the runs it works in (e.g. --layout and --random with --coverage, "
                             "--kind with --catalogue) and drop it or add that option")


def _report(args: argparse.Namespace, report: Any, write: Callable[[Path], Path],
            text: Callable[[Any], str], broken: str) -> int:
    """Print a mutation or catalogue report (``--out``, ``--json`` or text); exit 0 only if
    every mutant was killed."""
    if args.out:
        path = write(Path(args.out))
        if not args.json:
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_json(), sort_keys=True))
    else:
        print(text(report))
        if not report.suite_ok:
            print(f"the unmutated contract fails the threat properties: {broken}",
                  file=sys.stderr)
    return EXIT_OK if report.all_killed else EXIT_CHECK_FAILED


def cmd_coverage(args: argparse.Namespace) -> int:
    """``proml mutate --coverage``: per guard (revert reason) of the generated contracts, how
    many generated sequences made it fail; exit 1 if a guard was never hit."""
    from proml_sim.compiler import compile_artefact
    from proml_sim.lifecycles import load_lifecycle
    from proml_sim.threats.properties import guard_coverage

    if args.random:
        return _random_coverage(args)
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
    return _print_coverage(args, rows)


def _print_coverage(args: argparse.Namespace, rows: list[Any]) -> int:
    """Print guard coverage rows; exit 1 if a guard was never hit or the suite failed."""
    if args.json:
        print(json.dumps([c.to_json() for c in rows], sort_keys=True))
    else:
        for c in rows:
            print(f"{c.lifecycle} ({c.layout}): {c.hit} of {len(c.guards)} guards hit in "
                  f"{c.examples} sequences (seed {args.seed})"
                  + (f"; {len(c.excused)} no sequence can hit, each with the reason"
                     if c.excused else ""))
            for g in c.to_json()["guards"]:
                why = g["unreachable"] if not g["sequences"] and g["unreachable"] else ""
                print(f"  {g['sequences']:5d}  {g['reason']}"
                      + (f"  [{g['sites']} sites]" if g["sites"] > 1 else "")
                      + (f"\n         not by a sequence: {why}" if why else ""))
            if not c.suite_passed:
                print("  the unmutated contract fails the threat properties", file=sys.stderr)
    return EXIT_OK if all(not c.missed and c.suite_passed for c in rows) else EXIT_CHECK_FAILED


def _random_coverage(args: argparse.Namespace) -> int:
    """``--coverage --random N``: guard coverage of N random lifecycles drawn (with hypothesis
    seeded by --seed) by the strategy the differential tests use; one row per lifecycle."""
    from proml_sim.parallel import run_tasks

    tasks = [(args.random, args.seed, i, args.governance, layout, args.max_examples, args.steps)
             for i in range(args.random) for layout in args.layout or ["registry"]]
    progress = None if args.json else (
        lambda done, n: print(f"random lifecycles: {done}/{n}", file=sys.stderr, flush=True))
    try:
        rows, _executor, _n = run_tasks(random_coverage_task, tasks, workers=args.workers,
                                        progress=progress)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return _print_coverage(args, rows)


def random_coverage_task(n: int, seed: int, index: int, governance: bool, layout: str,
                         max_examples: int, steps: int) -> Any:
    """Guard coverage of random lifecycle ``index`` of the ``n`` drawn with ``seed`` (a task
    for :func:`proml_sim.parallel.run_tasks`: a worker draws the same lifecycles again).  Its
    IR is named ``R<seed>x<index>`` so that reports name it the same in every process."""
    import dataclasses

    from proml_sim.chain.client import check_code_size, compile_layout
    from proml_sim.compiler import compile_artefact
    from proml_sim.errors import ContractTooLarge
    from proml_sim.ir import build_ir
    from proml_sim.ir.strategies import draw_lifecycles
    from proml_sim.threats.properties import guard_coverage

    def deployable(cls: Any) -> bool:  # a chain can deploy its contracts (EIP-170)
        try:  # (named as long as the longest name of the run: names are in the code)
            check_code_size(compile_layout(
                dataclasses.replace(build_ir(cls), name=f"R{seed}x{n - 1}"), layout))
        except ContractTooLarge:
            return False
        return True

    lc = draw_lifecycles(n, seed, governance=governance, keep=deployable)[index]
    ir = dataclasses.replace(build_ir(lc), name=f"R{seed}x{index}")
    return guard_coverage(compile_artefact(ir, layout=layout), layout, max_examples, seed, steps)


def cmd_catalogue(args: argparse.Namespace) -> int:
    """``proml mutate --catalogue``: the mutants generated from the contract text (each guard
    removed, each comparison moved by one, each bound changed), run on --seeds seeds."""
    from proml_sim.lifecycles import load_lifecycle
    from proml_sim.threats.mutant_catalogue import (
        KINDS,
        catalogue,
        format_catalogue,
        run_catalogue,
    )

    try:
        lifecycle = load_lifecycle(args.lifecycle)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    kinds = tuple(args.kind) if args.kind else KINDS
    if args.list:
        entries = catalogue(lifecycle, kinds=kinds)
        if args.json:
            print(json.dumps([{"id": e.id, "kind": e.kind, "function": e.function,
                               "line": e.line, "title": e.title, "old": e.old, "new": e.new,
                               "equivalent_because": e.equivalent} for e in entries],
                             sort_keys=True))
        else:
            for e in entries:
                print(f"{e.id:28s} {e.kind:8s} {e.title}"
                      + (f"  [equivalent: {e.equivalent}]" if e.equivalent else ""))
        return EXIT_OK
    progress = None if args.json else (
        lambda done, n: print(f"catalogue: {done}/{n} runs", file=sys.stderr, flush=True))
    try:
        run = run_catalogue(
            args.lifecycle if ":" in args.lifecycle else lifecycle,
            seeds=tuple(range(args.seed, args.seed + args.seeds)),
            max_examples=args.max_examples, steps=args.steps, kinds=kinds, sample=args.sample,
            only=tuple(args.mutant) if args.mutant else None, workers=args.workers,
            progress=progress)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return _report(args, run, lambda out: atomic_write_json(out / "catalogue.json", run.to_json()),
                   format_catalogue, "kills mean nothing")


def register(sub: Any) -> None:
    """Add ``mutate`` to the top-level ``proml`` parser (``sub``: its subparsers)."""
    p = sub.add_parser(
        "mutate", help="plant access-control mutants in the generated contracts; the threat "
        "property suite must kill every one (kill matrix)",
        description="Plant access-control bugs into the generated Vyper of a lifecycle, compile "
        "each, run the hypothesis threat properties on it and on the unmutated contracts. "
        "Exit 0 only if every applicable mutant is killed and the unmutated contracts pass.",
    )
    p.add_argument("--lifecycle",
                   help="Model (default: the paper's consortium Model), Dataset, "
                   "SingleAdminModel, SingleAdminDataset or package.module:ClassName; on a "
                   "consortium lifecycle the property suite also drives governance (domain "
                   "enrolment, proposals, votes, executions) and its mutants")
    p.add_argument("--max-examples", type=cliargs.positive_int, default=50,
                   help="hypothesis examples per run before a mutant counts as surviving "
                   "(default 50)")
    p.add_argument("--steps", type=cliargs.positive_int, default=30,
                   help="steps per example (default 30)")
    p.add_argument("--seed", type=cliargs.non_negative_int, default=0,
                   help="hypothesis seed (default 0)")
    p.add_argument("--mutant", action="append",
                   help="only this mutant (id such as b-tx-origin, or its letter; with "
                   "--catalogue a catalogue id such as guard-verify-6); repeatable")
    p.add_argument("--chain-only", action="store_true",
                   help="also run each mutant without the reference interpreter (chain-data "
                   "properties only)")
    p.add_argument("--coverage", action="store_true",
                   help="instead of mutants: per guard (revert reason) of the generated "
                   "contracts, how many generated sequences made it fail; exit 1 if one is "
                   "never hit")
    p.add_argument("--layout", action="append", choices=cliargs.LAYOUTS,
                   help="with --coverage: the contract layout(s) (default registry)")
    p.add_argument("--mutant-file", type=cliargs.existing_file, metavar="FILE",
                   help="also plant your own mutant(s): a TOML file of [[mutant]] tables with "
                   "id, title, old and new (the exact text to replace, found exactly once), "
                   "optionally function (search only its body), layout (registry, factory "
                   "or clone; default registry), part (the layout's contract, or "
                   "LAYOUT.artefact) and how_killed (your note)")
    p.add_argument("--random", type=cliargs.positive_int, metavar="N",
                   help="with --coverage: N random lifecycles (drawn with --seed by the "
                   "strategy the differential tests use; draws whose contracts are over "
                   "EIP-170's code size are passed over) instead of --lifecycle; one row each")
    p.add_argument("--governance", action="store_true",
                   help="with --random: draw consortium lifecycles too")
    p.add_argument("--catalogue", action="store_true",
                   help="run the mutant catalogue generated from the contract text: each guard "
                   "removed, each comparison moved by one or flipped, each capacity/bound "
                   "constant changed by one, each state of a step's source mask and each role "
                   "of its role mask added or dropped; equivalent mutants listed with the "
                   "reason; exit 1 if one survives on any seed")
    p.add_argument("--list", action="store_true",
                   help="with --catalogue: list the mutants, run nothing")
    # mutant_catalogue.KINDS (not imported here: it loads the property machine; a test
    # checks the two agree)
    p.add_argument("--kind", action="append",
                   choices=("guard", "compare", "bound", "source", "role"),
                   help="with --catalogue: only this kind (repeatable)")
    p.add_argument("--seeds", type=cliargs.positive_int,
                   help="with --catalogue: run on seeds --seed .. --seed+N-1 (default 1)")
    p.add_argument("--sample", type=cliargs.positive_int, metavar="N",
                   help="with --catalogue: run N mutants, each kind its share (one at least "
                   "when N allows), spread evenly over that kind's mutants")
    p.add_argument("--workers", type=cliargs.non_negative_int,
                   help="with --catalogue or --random: worker processes (default: one per "
                   "CPU; 0 runs in this process)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--out", type=cliargs.output_dir,
                   help="write DIR/mutation.json (with --catalogue: DIR/catalogue.json), "
                   "atomically")
    p.set_defaults(func=cmd_mutate)
