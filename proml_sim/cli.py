"""The ``proml`` command line.

Exit codes (documented in the README and in ``proml --help``):

* 0 ok; 1 a check failed (``generate --check``, ``verify``, ``status --max-age``, ``threats
  run``, ``mutate``...); 2 a usage or input error (argparse's own errors, a bad value caught by
  the :mod:`proml_sim.cliargs` types, any :class:`~proml_sim.errors.ProMLError` whose
  ``exit_code`` is 2); 130 interrupted (Ctrl-C); 141 the output pipe was closed (``proml ... |
  head``: nothing more is printed); 70 an internal error, i.e. a bug (one line; ``PROML_DEBUG=1``
  shows the traceback).
* Errors go to stderr as one line ``proml: error: ...``; with ``--json`` as one JSON object
  ``{"error": "...", "code": N}``, also on stderr, so stdout only ever carries results.

:func:`main` is the one error boundary: no input ends in a traceback.

Registering subcommands (how other modules add theirs): a module exposes ``register(sub)``
which calls ``sub.add_parser(...)`` and ``set_defaults(func=cmd)``, and is listed in
:data:`REGISTRARS`; :func:`build_parser` calls it.  Rules that keep ``proml --help`` fast
and the options uniform:

* import nothing heavy at module level (py-evm, vyper, eth-*, simpy, matplotlib, rich,
  hypothesis, the node service): import it inside the ``cmd_*`` function;
* use the :mod:`proml_sim.cliargs` types for numbers, ids, addresses and paths, so bad values
  fail before any work;
* report a problem by raising a :class:`~proml_sim.errors.ProMLError` (``UsageError`` for bad
  input), never by printing and returning 2: the boundary prints it, as JSON with ``--json``;
* ``--json`` and ``--home`` are global: every subcommand accepts ``--json`` (added here if the
  module did not), and a module whose commands read a node home calls
  ``cliargs.global_options(p, home=True)``.  Both may be given before or after the subcommand;
  ``args.home`` defaults to ``$PROML_HOME``, else ``./.proml``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import proml_sim.cliargs as cliargs
from proml_sim.errors import DEBUG_ENV, ProMLError, UsageError

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERNAL = 70  # EX_SOFTWARE (sysexits.h): a bug
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE, what shells report when the reader went away
ENGINES = ["pyevm", "revm", "rpc"]
RPC_DEV_HELP = ("JSON-RPC development node for --engine rpc (anvil, hardhat); the run takes it "
                "over (automining off, blocks at simulated times, its gas limit): give it a "
                "node of its own")

__all__ = ["UsageError", "build_parser", "commands", "main"]

#: modules whose ``register(sub)`` adds their subcommands, in the order of ``proml --help``
#: (a new area adds one line here; none may import anything heavy at import time)
REGISTRARS = (
    "proml_sim.node.cli",
    "proml_sim.node.cli_keys",
    "proml_sim.threats.cli",
    "proml_sim.node.cli_evidence",
    "proml_sim.node.cli_doctor",
    "proml_sim.node.cli_consortium",
    "proml_sim.threats.cli_mutate",
    "experiments.sweep",  # the CLI may import experiments
    "proml_sim.serve.cli",  # parsers only: the HTTP stack loads when `proml serve` runs
)


# -- subcommands ---------------------------------------------------------------------------------
def cmd_generate(args: argparse.Namespace) -> int:
    from proml_sim.artifacts import out_of_sync, regenerate

    out = Path(args.out)
    as_json = args.json  # the global --json
    if args.check:
        stale = out_of_sync(out)
        if as_json:
            print(json.dumps({"out": str(out), "up_to_date": not stale, "stale": stale}))
        elif stale:
            print(f"out of sync in {out}: {', '.join(stale)}; run `proml generate --out {out}`")
        else:
            print(f"{out}: generated contracts are up to date")
        return EXIT_CHECK_FAILED if stale else EXIT_OK
    written = [str(p) for p in regenerate(out)]
    for line in [json.dumps({"out": str(out), "written": written})] if as_json else written:
        print(line)
    return EXIT_OK


def cmd_compile(args: argparse.Namespace) -> int:
    from proml_sim.artifacts import write_atomic
    from proml_sim.codegen import to_mermaid
    from proml_sim.compiler import compile_artefact
    from proml_sim.lifecycles import load_lifecycle

    compiled = compile_artefact(load_lifecycle(args.lifecycle))
    assert compiled.ir is not None
    if args.json:
        print(json.dumps({
            "name": compiled.name, "fingerprint": compiled.fingerprint,
            "bytecode_bytes": len(compiled.bytecode),
            "runtime_bytes": len(compiled.runtime_bytecode), "compiler": compiled.compiler,
        }))
    else:
        print(f"{compiled.name}: {len(compiled.runtime_bytecode)} bytes runtime, "
              f"IR {compiled.fingerprint}")
    if args.out:
        out = Path(args.out)
        write_atomic(out / f"{compiled.name}.vy", compiled.source)
        write_atomic(out / f"{compiled.name}.abi.json", compiled.abi_json())
        write_atomic(out / f"{compiled.name}.mmd", to_mermaid(compiled.ir))
        if not args.json:
            print(f"wrote {out}/{compiled.name}.{{vy,abi.json,mmd}}")
    return EXIT_OK


def cmd_diagram(args: argparse.Namespace) -> int:
    from proml_sim.codegen import to_dot, to_mermaid
    from proml_sim.codegen.diagram import render_png
    from proml_sim.ir import build_ir
    from proml_sim.lifecycles import load_lifecycle

    ir = build_ir(load_lifecycle(args.lifecycle))
    if args.format == "png":
        if not args.output:
            raise UsageError("--format png needs -o FILE.png")
        print(render_png(ir, args.output))
        return EXIT_OK
    text = to_mermaid(ir) if args.format == "mermaid" else to_dot(ir)
    if args.output:
        from proml_sim.artifacts import write_atomic

        write_atomic(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from proml_sim.bench import format_bench, run_bench

    try:
        result = run_bench(
            n=args.n, per_block=args.per_block, baseline_n=args.baseline_n, seed=args.seed,
            engines=args.engine, rpc_url=args.rpc_url, workers=args.workers,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    print(json.dumps(result, indent=2) if args.json else format_bench(result))
    return EXIT_OK


def cmd_gas(args: argparse.Namespace) -> int:
    from proml_sim.gas import format_gas_table, measure_governance_gas, measure_paper_gas

    if args.lifecycle:  # a lifecycle of your own, walked from its IR
        from proml_sim.gas import measure_walk_gas
        from proml_sim.lifecycles import load_lifecycle

        if args.single_admin or args.governance:
            raise UsageError("--lifecycle measures the lifecycles it names; --single-admin and "
                             "--governance measure the paper's: drop one or the other")
        rows = [r for spec in args.lifecycle
                for r in measure_walk_gas(load_lifecycle(spec), seed=args.seed,
                                          layout=args.layout)]
        print(json.dumps(rows, indent=2) if args.json else format_gas_table(rows))
        return EXIT_OK
    rows = measure_paper_gas(seed=args.seed, layouts=(args.layout,))
    if args.single_admin:  # the same operations under the single-admin design, to compare
        from proml_sim.lifecycles import SINGLE_ADMIN_LIFECYCLES

        rows += measure_paper_gas(seed=args.seed, layouts=(args.layout,),
                                  lifecycles=SINGLE_ADMIN_LIFECYCLES)
    if args.governance:  # consortium proposal, vote, execution (the paper's Model)
        rows += measure_governance_gas(seed=args.seed, layouts=(args.layout,))
    print(json.dumps(rows, indent=2) if args.json else format_gas_table(rows))
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    from proml_sim.sim.scenario import StreamScenario, run_streams

    try:
        sc = StreamScenario(args.profile, args.teams, args.days * 24, args.per_hour, args.seed,
                            args.engine, args.rpc_url)
        _, stats = run_streams(sc, rows_csv=args.out, keep_rows=False)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    stats.update(profile=args.profile, teams=args.teams, days=args.days, rows=args.out)
    if args.json:
        print(json.dumps(stats))
    else:
        print(f"{stats['transactions']} provenance transactions from {args.teams} teams over "
              f"{args.days} simulated day(s) on {args.profile} ({args.engine}): "
              f"{stats['blocks']} blocks, {stats['orphaned_blocks']} orphaned; "
              f"wall {stats['wall_s']} s ({stats['tx_per_wall_s']} tx/s, "
              f"{stats['sim_s_per_wall_s']} simulated s per wall s); peak RSS "
              f"{stats['peak_rss_mb']} MB; rows in {args.out}")
    return EXIT_OK


def cmd_sim_bench(args: argparse.Namespace) -> int:
    from proml_sim.sim.scenario import simulator_bench

    try:
        res = simulator_bench(tuple(args.sizes), args.profile, args.teams, args.seed,
                              args.engine, rpc_url=args.rpc_url, per_hour=args.per_hour)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if args.json:
        print(json.dumps(res, indent=2))
        return EXIT_OK
    print(f"simulator on {res['profile']} ({res['engine']}), {res['teams']} teams")
    for p in res["points"]:
        print(f"  {p['transactions']:>7} transitions: wall {p['wall_s']:>7.2f} s, "
              f"{p['tx_per_wall_s']:>8.1f} tx/s, {p['sim_s_per_wall_s']:>8.1f} sim-s/wall-s, "
              f"peak RSS {p['peak_rss_mb']:>6.1f} MB ({p['run_rss_mb']:+.1f} MB in the run)")
    if res["growth_exponent"] is not None:
        print(f"wall time grows as transitions^{res['growth_exponent']} (1.0 = linear); "
              f"memory in the run as transitions^{res['memory_growth_exponent']}, "
              f"{res['memory_mb_per_1k_transitions']} MB per 1,000 transitions")
    return EXIT_OK


def cmd_reproduce(args: argparse.Namespace) -> int:
    from experiments.reproduce import reproduce

    try:
        summary = reproduce(profile=args.profile, out=Path(args.out), seed=args.seed,
                            engine=args.engine, rpc_url=args.rpc_url,
                            chain_profiles=args.chain_profile)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    print(f"wrote {Path(args.out) / 'REPORT.md'} and {Path(args.out) / 'summary.json'}")
    return EXIT_OK if summary.get("ok", True) else EXIT_CHECK_FAILED


def chain_profile(value: str) -> str:
    """Argument type: a named chain profile or a profile TOML file (checked now, passed on as
    given so that worker processes load the same file)."""
    from proml_sim.errors import ProfileError
    from proml_sim.sim.profiles import get_profile

    try:
        get_profile(value)
    except ProfileError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


PROFILE_HELP = ("a chain profile: {names}, or a TOML file of ChainProfile fields "
                "(e.g. base = \"ethereum-pos\" and block_time = 6.0)")


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of printing and exiting, so the one
    boundary in :func:`main` reports it (as JSON with ``--json``)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; see `{self.prog} --help`")


class _Version(argparse.Action):
    """``--version``: the installed distribution's version, read only when asked for."""

    def __init__(self, option_strings: list[str], dest: str, **kw: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("proml-sim")
        except PackageNotFoundError:
            text = "(not installed: run pip install -e .)"
        print(f"proml-sim {text}")
        parser.exit(0)


EPILOG = """\
global options (before or after the command): --json (JSON output; errors as JSON on stderr),
--home DIR (node home; default $PROML_HOME, else ./.proml).
exit codes: 0 ok, 1 a check failed, 2 usage or input error, 130 interrupted (Ctrl-C),
141 output pipe closed, 70 internal error (a bug: rerun with PROML_DEBUG=1 for the traceback)."""


def _subparsers(p: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every parser below ``p`` (subcommands, and their subcommands), depth first."""
    out: list[argparse.ArgumentParser] = []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases share a parser
                out += [child, *_subparsers(child)]
    return out


def commands(parser: argparse.ArgumentParser | None = None) -> dict[str, argparse.ArgumentParser]:
    """Every runnable command, by its words (``"status"``, ``"threats run"``), with its parser.
    Tests enumerate these, so a new subcommand is covered automatically."""
    parser = parser or build_parser()
    return {sp.prog.removeprefix(parser.prog).strip(): sp for sp in _subparsers(parser)
            if not any(isinstance(a, argparse._SubParsersAction) for a in sp._actions)}


def _globalise(parser: argparse.ArgumentParser) -> None:
    """Make ``--json``/``--home`` global: every subcommand accepts ``--json``; a
    subcommand's own ``--json``/``--home`` defaults to ``SUPPRESS`` so that the value given
    before the subcommand survives parsing."""
    for sp in _subparsers(parser):
        cliargs.global_options(sp)
        for action in sp._actions:
            if action.dest in ("json", "home"):
                action.default = argparse.SUPPRESS
                if action.dest == "home" and action.type is None:
                    action.type = cliargs.home_dir
                    action.help = cliargs.HOME_HELP


def build_parser() -> argparse.ArgumentParser:
    """The whole ``proml`` parser.  Cheap: imports no heavy module (see the module docstring)."""
    from proml_sim.dsl import MAX_DOMAINS
    from proml_sim.sim.profiles import PROFILES

    pos, nonneg = cliargs.positive_int, cliargs.non_negative_int
    p = _Parser(
        prog="proml",
        description="proml-sim: artefact state machines compiled to EVM contracts, run on "
        "in-process chains; provenance experiments after ProML (arXiv 2206.10110).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action=_Version, help="print the version and exit")
    p.add_argument("--json", action="store_true", default=False,
                   help="JSON output where a command has one; errors as JSON (on stderr)")
    p.add_argument("--home", type=cliargs.home_dir, default=None, metavar="DIR",
                   help=cliargs.HOME_HELP)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    g = sub.add_parser("generate", help="regenerate contracts/ (Vyper, ABI, mermaid, IR) of the "
                       "paper lifecycles")
    g.add_argument("--out", default="contracts", type=cliargs.output_dir,
                   help="output directory (default: contracts)")
    g.add_argument("--check", action="store_true",
                   help="do not write; exit 1 if any generated file is out of sync")
    g.set_defaults(func=cmd_generate)

    c = sub.add_parser("compile", help="compile one lifecycle (Dataset, Model or module:Class)")
    c.add_argument("lifecycle")
    c.add_argument("--out", type=cliargs.output_dir,
                   help="also write .vy, .abi.json and .mmd into this directory")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.set_defaults(func=cmd_compile)

    d = sub.add_parser("diagram", help="draw a lifecycle as mermaid, dot or PNG")
    d.add_argument("lifecycle")
    d.add_argument("--format", choices=["mermaid", "dot", "png"], default="mermaid")
    d.add_argument("-o", "--output", type=cliargs.output_file,
                   help="output file (required for png)")
    d.set_defaults(func=cmd_diagram)

    b = sub.add_parser("bench", help="signed transitions/s per engine (many per block) vs "
                       "web3 + EthereumTesterProvider (one block per tx), measured in one run")
    b.add_argument("--engine", action="append", choices=ENGINES,
                   help="engine to bench (repeatable; default: pyevm and revm, plus rpc when "
                   "--rpc-url is given)")
    b.add_argument("--rpc-url", type=cliargs.rpc_url,
                   help=RPC_DEV_HELP)
    b.add_argument("--workers", type=nonneg, default=None,
                   help="revm: sender-recovery worker processes overlapped with block "
                   "production (default 1 on a machine with 2+ CPUs, else 0: recover in "
                   "this process)")
    b.add_argument("--n", type=pos, default=2000, help="transitions on the engine (default 2000)")
    b.add_argument("--per-block", type=pos, default=1000, help="transitions per block")
    b.add_argument("--baseline-n", type=pos, default=100,
                   help="transitions through the web3 baseline (default 100)")
    b.add_argument("--seed", type=nonneg, default=0)
    b.add_argument("--json", action="store_true", help="print a JSON object")
    b.set_defaults(func=cmd_bench)

    gas = sub.add_parser("gas", help="gas per operation of the paper lifecycles (consortium "
                         "governance) from real receipts, beside the gas-schedule lower bound; "
                         "or of your own lifecycle (--lifecycle)")
    gas.add_argument("--seed", type=nonneg, default=0)
    gas.add_argument("--governance", action="store_true", help="also the consortium's "
                     "proposal, vote and execution (the paper's Model)")
    gas.add_argument("--single-admin", action="store_true", help="also the same operations "
                     "under the single-admin design (SingleAdminDataset/SingleAdminModel), "
                     "for comparison")
    gas.add_argument("--lifecycle", action="append", metavar="SPEC", help="instead: the gas "
                     "of this lifecycle's operations (Model, ..., or package.module:Class; "
                     "repeatable), driven from its rules: deployment, a grant, a registration, "
                     "each reachable transition (a k-of-n one: first and k-th approval), a "
                     "refused call, a revocation; no lower bound (only the paper's lifecycles "
                     "state their storage effects)")
    gas.add_argument("--layout", choices=cliargs.LAYOUTS, default="registry", help="the contract "
                     "layout (default registry; factory and clone put each artefact in a "
                     "contract of its own, for a lifecycle too large for one contract)")
    gas.add_argument("--json", action="store_true")
    gas.set_defaults(func=cmd_gas)

    sim = sub.add_parser("simulate", help="many teams recording provenance on a simulated "
                         "chain; rows stream to a CSV file")
    sim.add_argument("--profile", type=chain_profile, default="ethereum-pos",
                     metavar="NAME_OR_TOML",
                     help=PROFILE_HELP.format(names=", ".join(sorted(PROFILES))))
    sim.add_argument("--teams", type=pos, default=50,
                     help="teams, each a trust domain of the consortium Model (at most "
                          f"{MAX_DOMAINS}; default 50)")
    sim.add_argument("--days", type=cliargs.positive_float, default=7.0,
                     help="simulated days (default 7)")
    sim.add_argument("--per-hour", type=cliargs.positive_float, default=2.0,
                     help="provenance updates per team per hour (default 2)")
    sim.add_argument("--engine", choices=ENGINES, default="pyevm",
                     help="chain engine (default pyevm)")
    sim.add_argument("--rpc-url", type=cliargs.rpc_url,
                     help=RPC_DEV_HELP)
    sim.add_argument("--seed", type=nonneg, default=0)
    sim.add_argument("--out", default="simulation_rows.csv", type=cliargs.output_file,
                     help="CSV file for the rows")
    sim.add_argument("--json", action="store_true")
    sim.set_defaults(func=cmd_simulate)

    sb = sub.add_parser("sim-bench", help="simulator speed: transitions/s, simulated s per "
                        "wall s, and how wall time grows with the number of transitions")
    sb.add_argument("--sizes", type=pos, nargs="+", default=[500, 1000, 2000, 4000])
    sb.add_argument("--profile", type=chain_profile, default="consortium-fast",
                    metavar="NAME_OR_TOML",
                    help=PROFILE_HELP.format(names=", ".join(sorted(PROFILES))))
    sb.add_argument("--teams", type=pos, default=20,
                    help=f"teams (at most {MAX_DOMAINS}; default 20)")
    sb.add_argument("--engine", choices=ENGINES, default="pyevm")
    sb.add_argument("--rpc-url", type=cliargs.rpc_url,
                    help=RPC_DEV_HELP)
    sb.add_argument("--per-hour", type=cliargs.positive_float, default=60.0,
                    help="provenance updates per team per hour (default 60)")
    sb.add_argument("--seed", type=nonneg, default=0)
    sb.add_argument("--json", action="store_true")
    sb.set_defaults(func=cmd_sim_bench)

    for module in REGISTRARS:
        importlib.import_module(module).register(sub)

    r = sub.add_parser("reproduce", help="run the experiments and write REPORT.md + summary.json")
    r.add_argument("--profile", choices=["smoke", "paper"], default="smoke")
    r.add_argument("--out", default="out", type=cliargs.output_dir,
                   help="output directory (default: out)")
    r.add_argument("--seed", type=nonneg, default=0)
    r.add_argument("--engine", choices=ENGINES, default="pyevm",
                   help="chain engine of the experiments (default pyevm)")
    r.add_argument("--rpc-url", type=cliargs.rpc_url,
                   help=RPC_DEV_HELP)
    r.add_argument("--chain-profile", action="append", type=chain_profile, default=[],
                   metavar="NAME_OR_TOML", help="also measure E1 latency on this chain "
                   "profile (repeatable; " + PROFILE_HELP.format(names="a named one") + ")")
    r.set_defaults(func=cmd_reproduce)
    _globalise(p)
    return p


# -- the error boundary ------------------------------------------------------------------------
def _check_argv(argv: Sequence[str]) -> None:
    for i, a in enumerate(argv, start=1):
        try:
            a.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(f"argument {i} ({a!a}) is not valid UTF-8; pass UTF-8 text "
                             "(rename a file whose name is not UTF-8)") from None
        if "\0" in a:  # no path, name or value can hold one (a shell cannot even pass it)
            raise UsageError(f"argument {i} ({a!a}) contains a NUL byte; remove it")


def _wants_json(argv: Sequence[str]) -> bool:
    """``--json`` among the options (before a ``--``), for errors raised before parsing ends."""
    for a in argv:
        if a == "--":
            return False
        if a == "--json":
            return True
    return False


#: a word of an error line longer than this (an input quoted back: a parameter value, a forged
#: field) is shown by its two ends, so the line stays readable and keeps its fix
_LONG_WORD = 200


def _elide(word: str) -> str:
    if len(word) <= _LONG_WORD:
        return word
    return f"{word[:120]}...({len(word) - 160} more characters)...{word[-40:]}"


def _report(message: str, code: int, as_json: bool) -> int:
    line = " ".join(map(_elide, message.split()))  # one line, whatever the exception held
    text = json.dumps({"error": line, "code": code}) if as_json else f"proml: error: {line}"
    if sys.stderr is None:  # started with stderr closed: the exit code still says it
        return code
    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stderr, flush=True)
    return code


def _pipe_closed() -> int:
    """The reader of stdout went away (``proml ... | head``): stop quietly, the standard way
    (https://docs.python.org/3/library/signal.html#note-on-sigpipe): point stdout at devnull
    so the interpreter's final flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout has no file descriptor (a test's capture)
        pass
    return EXIT_PIPE_CLOSED


def _run(argv: list[str]) -> int:
    _check_argv(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "home", None) is None:
        try:
            args.home = cliargs.home_dir(cliargs.default_home())
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"${cliargs.HOME_ENV}: {exc}") from None
    code: int = args.func(args)
    return code


@contextlib.contextmanager
def _interrupts_not_lost() -> Iterator[Callable[[], None]]:
    """While the body runs, a Ctrl-C cannot be lost; yields the function that marks it caught.

    CPython raises the ``KeyboardInterrupt`` of a SIGINT wherever the main thread is, and one
    raised inside a ``__del__`` or a weakref callback (a garbage collection during a run) is
    not propagated: it is printed as "Exception ignored in ..." with a traceback and the run
    goes on (``proml simulate`` ran on after a Ctrl-C in 4 runs of 6).  So after a SIGINT the
    interrupt is raised again every second until :func:`main` has caught it, and such an
    ignored ``KeyboardInterrupt`` prints nothing.  Outside the main thread (signal handlers
    cannot be set there) the body runs as it is."""
    import threading

    caught = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield caught.set
        return
    import _thread
    import signal

    def again() -> None:
        while not caught.wait(1.0):
            _thread.interrupt_main(signal.SIGINT)

    def on_sigint(signum: int, frame: Any) -> None:
        if not any(t.name == "proml-interrupt" for t in threading.enumerate()):
            threading.Thread(target=again, name="proml-interrupt", daemon=True).start()
        raise KeyboardInterrupt

    def unraisable(u: Any) -> None:
        if not issubclass(u.exc_type, KeyboardInterrupt):  # that one is raised again
            previous_hook(u)

    previous, previous_hook = signal.getsignal(signal.SIGINT), sys.unraisablehook
    if previous is not signal.default_int_handler:  # ignored, or someone else's: theirs
        yield caught.set
        return
    signal.signal(signal.SIGINT, on_sigint)
    sys.unraisablehook = unraisable
    try:
        yield caught.set
    finally:
        caught.set()
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = previous_hook


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``proml`` with ``argv`` (default ``sys.argv[1:]``) and return the exit code.  The
    one error boundary: every outcome is an exit code and at most one line on stderr."""
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = _wants_json(argv)
    from proml_sim.node import sentlog

    sentlog.COMMAND = "proml " + shlex.join(argv)  # what a dropped step's fix says to re-run
    with _interrupts_not_lost() as interrupt_caught:
        return _main(argv, as_json, interrupt_caught)


def _main(argv: list[str], as_json: bool, interrupt_caught: Callable[[], None]) -> int:
    try:
        try:
            code = _run(argv)
        except SystemExit as exc:  # --help, --version, or a command that exits itself
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        if sys.stdout is not None:  # None when started with stdout closed (`proml ... >&-`)
            sys.stdout.flush()  # a closed pipe shows here, inside the boundary, not at exit
        return code
    except BrokenPipeError:
        return _pipe_closed()
    except KeyboardInterrupt:
        interrupt_caught()
        # CPython 3.11: a Ctrl-C that lands inside code run from a string (`exec`, as
        # dataclasses does to build its methods) sets the interpreter's "unhandled
        # KeyboardInterrupt" flag even when it is caught here, and the process then kills
        # itself with SIGINT at exit instead of exiting 130; running a string that succeeds
        # clears the flag
        exec("None")
        return _report("interrupted", EXIT_INTERRUPTED, as_json)
    except ProMLError as exc:
        return _report(str(exc), exc.exit_code, as_json)
    except OSError as exc:  # the environment refused (permissions, disk full, missing file)
        what = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else
                                           " (writing the output)")
        return _report(f"{what}; check the path, its permissions and the free space",
                       EXIT_USAGE, as_json)
    except BaseException as exc:  # a bug (or user code raising a bare BaseException)
        if os.environ.get(DEBUG_ENV) or isinstance(exc, GeneratorExit):
            raise
        return _report(f"internal error ({type(exc).__name__}: {exc}); this is a bug in "
                       f"proml-sim: rerun with {DEBUG_ENV}=1 for the traceback and report it",
                       EXIT_INTERNAL, as_json)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
