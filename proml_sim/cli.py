"""The ``proml`` command line.  Exit codes: 0 ok, 1 a check failed, 2 usage or input error."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from proml_sim.errors import ProMLError

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input from the command line: printed as ``error: ...`` with exit code 2."""


# -- subcommands ---------------------------------------------------------------------------------
def cmd_generate(args: argparse.Namespace) -> int:
    from proml_sim.artifacts import out_of_sync, regenerate

    out = Path(args.out)
    if args.check:
        stale = out_of_sync(out)
        if stale:
            print(f"out of sync in {out}: {', '.join(stale)}; run `proml generate --out {out}`")
            return EXIT_CHECK_FAILED
        print(f"{out}: generated contracts are up to date")
        return EXIT_OK
    for p in regenerate(out):
        print(p)
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
    from proml_sim.gas import format_gas_table, measure_paper_gas

    rows = measure_paper_gas(seed=args.seed)
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="proml",
        description="proml-sim: artefact state machines compiled to EVM contracts, run on "
        "in-process chains; provenance experiments after ProML (arXiv 2206.10110).",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    g = sub.add_parser("generate", help="regenerate contracts/ (Vyper, ABI, mermaid, IR) of the "
                       "paper lifecycles")
    g.add_argument("--out", default="contracts", help="output directory (default: contracts)")
    g.add_argument("--check", action="store_true",
                   help="do not write; exit 1 if any generated file is out of sync")
    g.set_defaults(func=cmd_generate)

    c = sub.add_parser("compile", help="compile one lifecycle (Dataset, Model or module:Class)")
    c.add_argument("lifecycle")
    c.add_argument("--out", help="also write .vy, .abi.json and .mmd into this directory")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.set_defaults(func=cmd_compile)

    d = sub.add_parser("diagram", help="draw a lifecycle as mermaid, dot or PNG")
    d.add_argument("lifecycle")
    d.add_argument("--format", choices=["mermaid", "dot", "png"], default="mermaid")
    d.add_argument("-o", "--output", help="output file (required for png)")
    d.set_defaults(func=cmd_diagram)

    b = sub.add_parser("bench", help="signed transitions/s per engine (many per block) vs "
                       "web3 + EthereumTesterProvider (one block per tx), measured in one run")
    b.add_argument("--engine", action="append", choices=["pyevm", "revm", "rpc"],
                   help="engine to bench (repeatable; default: pyevm and revm, plus rpc when "
                   "--rpc-url is given)")
    b.add_argument("--rpc-url", help="JSON-RPC node for --engine rpc (e.g. a local anvil)")
    b.add_argument("--workers", type=int, default=None,
                   help="revm: sender-recovery worker processes overlapped with block "
                   "production (default 1 on a machine with 2+ CPUs, else 0: recover in "
                   "this process)")
    b.add_argument("--n", type=int, default=2000, help="transitions on the engine (default 2000)")
    b.add_argument("--per-block", type=int, default=1000, help="transitions per block")
    b.add_argument("--baseline-n", type=int, default=100,
                   help="transitions through the web3 baseline (default 100)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--json", action="store_true", help="print a JSON object")
    b.set_defaults(func=cmd_bench)

    gas = sub.add_parser("gas", help="gas per operation of the paper lifecycles from real "
                         "receipts, beside the gas-schedule lower bound")
    gas.add_argument("--seed", type=int, default=0)
    gas.add_argument("--json", action="store_true")
    gas.set_defaults(func=cmd_gas)

    from proml_sim.sim.profiles import PROFILES

    sim = sub.add_parser("simulate", help="many teams recording provenance on a simulated "
                         "chain; rows stream to a CSV file")
    sim.add_argument("--profile", type=chain_profile, default="ethereum-pos",
                     metavar="NAME_OR_TOML",
                     help=PROFILE_HELP.format(names=", ".join(sorted(PROFILES))))
    sim.add_argument("--teams", type=int, default=50)
    sim.add_argument("--days", type=float, default=7.0, help="simulated days (default 7)")
    sim.add_argument("--per-hour", type=float, default=2.0,
                     help="provenance updates per team per hour (default 2)")
    sim.add_argument("--engine", default="pyevm", help="chain engine (default pyevm)")
    sim.add_argument("--rpc-url", help="JSON-RPC endpoint for --engine rpc")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--out", default="simulation_rows.csv", help="CSV file for the rows")
    sim.add_argument("--json", action="store_true")
    sim.set_defaults(func=cmd_simulate)

    sb = sub.add_parser("sim-bench", help="simulator speed: transitions/s, simulated s per "
                        "wall s, and how wall time grows with the number of transitions")
    sb.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000, 4000])
    sb.add_argument("--profile", type=chain_profile, default="consortium-fast",
                    metavar="NAME_OR_TOML",
                    help=PROFILE_HELP.format(names=", ".join(sorted(PROFILES))))
    sb.add_argument("--teams", type=int, default=20)
    sb.add_argument("--engine", default="pyevm")
    sb.add_argument("--rpc-url", help="JSON-RPC endpoint for --engine rpc")
    sb.add_argument("--per-hour", type=float, default=60.0,
                    help="provenance updates per team per hour (default 60)")
    sb.add_argument("--seed", type=int, default=0)
    sb.add_argument("--json", action="store_true")
    sb.set_defaults(func=cmd_sim_bench)

    from proml_sim.node import cli as node_cli
    from proml_sim.node import cli_keys

    node_cli.register(sub)
    cli_keys.register(sub)
    from proml_sim.threats import cli as threats_cli

    threats_cli.register(sub)
    from proml_sim.node import cli_evidence
    from proml_sim.threats import cli_mutate

    cli_evidence.register(sub)
    cli_mutate.register(sub)
    from experiments import sweep as sweep_cli  # the CLI may import experiments

    sweep_cli.register(sub)

    r = sub.add_parser("reproduce", help="run the experiments and write REPORT.md + summary.json")
    r.add_argument("--profile", choices=["smoke", "paper"], default="smoke")
    r.add_argument("--out", default="out", help="output directory (default: out)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--engine", choices=["pyevm", "revm", "rpc"], default="pyevm",
                   help="chain engine of the experiments (default pyevm)")
    r.add_argument("--rpc-url", help="JSON-RPC node for --engine rpc (e.g. a local anvil)")
    r.add_argument("--chain-profile", action="append", type=chain_profile, default=[],
                   metavar="NAME_OR_TOML", help="also measure E1 latency on this chain "
                   "profile (repeatable; " + PROFILE_HELP.format(names="a named one") + ")")
    r.set_defaults(func=cmd_reproduce)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ProMLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
