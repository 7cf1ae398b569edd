"""``proml`` subcommands of the node: capture provenance from shell scripts.

Every command takes ``--home`` (default ``./.proml``) and ``--json``; errors are
:class:`~proml_sim.errors.ProMLError` subclasses, which the top-level CLI prints and turns into
exit code 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from proml_sim.errors import NodeError
from proml_sim.ir import HistoryEntry
from proml_sim.node.service import DEFAULT_HOME, LIFECYCLES, ProMLNode


def _params(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise NodeError(f"--param {item!r} is not KEY=VALUE; write e.g. --param lr=0.01")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _emit(args: argparse.Namespace, obj: Any, text: str) -> None:
    print(json.dumps(obj, default=str) if args.json else text)


def _hist(h: HistoryEntry) -> dict[str, Any]:
    return {"step": h.step, "actor": h.actor, "source": h.source, "target": h.target,
            "version": h.version, "digest": h.digest.hex(), "locator": h.locator,
            "inputs": ["0x" + i.hex() for i in h.inputs]}


def cmd_init(args: argparse.Namespace) -> int:
    contracts = None
    if args.contracts:
        try:
            contracts = json.loads(Path(args.contracts).read_text())
        except (OSError, ValueError) as exc:
            raise NodeError(f"cannot read contract addresses from {args.contracts}: {exc}"
                            ) from exc
    node = ProMLNode.init(args.home, name=args.name, domain=args.domain,
                          chain_dir=args.chain, new_chain=args.new_chain, rpc_url=args.rpc_url,
                          contracts=contracts, seed=args.seed, replicas=args.replica or ())
    info = {"home": str(node.home), "name": node.name, "domain": node.domain,
            "address": node.address, "chain": node.config["chain"],
            "contracts": node.config["contracts"]}
    _emit(args, info, f"initialised node {node.name} ({node.domain}) at {node.home}\n"
          f"  address {node.address}\n  chain {node.config['chain']}")
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    node = ProMLNode.open(args.home)
    ref = node.register(args.lifecycle, args.name, args.files, locator=args.locator,
                        inputs=args.input or (), params=_params(args.param), code=args.code)
    _emit(args, {"name": args.name, "lifecycle": ref.lifecycle, "id": ref.hex},
          f"registered {ref.lifecycle} {args.name} as {ref.hex}")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    node = ProMLNode.open(args.home)
    res = node.record(args.transition, args.artefact, inputs=args.input or (),
                      outputs=args.output or (), params=_params(args.param), code=args.code,
                      locator=args.locator)
    _emit(args, {"transition": args.transition, "artefact": args.artefact, "fired": res.fired,
                 "state": res.state, "version": res.version},
          f"{args.transition} recorded: {args.artefact} is {res.state} (version {res.version})")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    node = ProMLNode.open(args.home)
    res = node.approve(args.transition, args.artefact, args.evidence)
    text = (f"{args.transition} fired: {args.artefact} is {res.state} (version {res.version})"
            if res.fired else f"approval {res.approvals} of {res.required} recorded for "
            f"{args.transition} on {args.artefact}")
    _emit(args, {"fired": res.fired, "approvals": res.approvals, "required": res.required,
                 "state": res.state, "version": res.version}, text)
    return 0


def cmd_grant(args: argparse.Namespace) -> int:
    node = ProMLNode.open(args.home)
    node.grant(args.lifecycle, args.role, args.account, args.domain)
    _emit(args, {"granted": args.role, "account": args.account, "domain": args.domain},
          f"granted {args.lifecycle}.{args.role} to {args.account} ({args.domain})")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    node = ProMLNode.open(args.home)
    node.revoke(args.lifecycle, args.role, args.account)
    _emit(args, {"revoked": args.role, "account": args.account},
          f"revoked {args.lifecycle}.{args.role} from {args.account}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    node = ProMLNode.open(args.home)
    if args.max_age is not None:
        rep = node.freshness(args.max_age, args.peer or ())
        problems = list(rep.problems)
        info = {"fresh": rep.ok, "head": rep.head_number, "age_s": round(rep.age_s, 1),
                "peer_heads": rep.peer_heads, "problems": problems}
        _emit(args, info, ("fresh: " if rep.ok else "STALE: ") + (
            "; ".join(problems) or f"head #{rep.head_number}, {rep.age_s:.0f} s old"))
        if not rep.ok:
            return 1
        if not args.artefact:
            return 0
    if args.artefact:
        st = node.status(args.artefact)
        _emit(args, st, "\n".join(f"{k:>10}: {v}" for k, v in st.items()))
        return 0
    head = node.backend.head()
    info = {"name": node.name, "domain": node.domain, "address": node.address,
            "chain": node.config["chain"], "head": head.number, "head_time": head.timestamp,
            "balance_wei": node.backend.balance(node.address),
            "contracts": node.config["contracts"]}
    _emit(args, info, "\n".join(f"{k:>12}: {v}" for k, v in info.items()))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    node = ProMLNode.open(args.home)
    hist = node.history(args.artefact)
    rows = [_hist(h) for h in hist]
    lines = [f"{h['version']:>3}  {h['step']:<14} {h['actor']}  -> {h['target']:<12} "
             f"digest {h['digest'][:16]}" for h in rows]
    _emit(args, rows, "\n".join(lines))
    return 0


def cmd_node_bench(args: argparse.Namespace) -> int:
    from proml_sim.node.bench import capture_bench, hash_bench, status_bench, status_text

    try:
        res = {"hashing": hash_bench(args.size_mb, args.dir), "capture": capture_bench(args.steps),
               "status": status_bench(tuple(args.status_sizes), args.status_runs)}
    except ValueError as exc:
        raise NodeError(str(exc)) from exc
    h, c = res["hashing"], res["capture"]
    text = (f"hashing a {h['size_mb']} MiB file: sha256_file {h['sha256_file_mb_s']} MB/s, "
            f"sha256sum {h.get('sha256sum_mb_s', 'n/a')} MB/s (ratio "
            f"{h.get('ratio_vs_sha256sum', 'n/a')}), store put {h['store_put_mb_s']} MB/s\n"
            f"capture: {c['overhead_ms_per_step']} ms per recorded step over the bare work "
            f"({c['steps']} steps)\n" + status_text(res["status"]))
    _emit(args, res, text)
    return 0


def register(sub: Any) -> None:
    """Add the node's subcommands to the top-level ``proml`` parser."""

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--home", default=DEFAULT_HOME,
                       help=f"node home directory (default {DEFAULT_HOME})")
        p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("init", help="create a node home (keys, store) on a new or shared chain")
    p.add_argument("--name", required=True, help="participant name")
    p.add_argument("--domain", required=True, help="trust domain (organisation), <= 32 bytes")
    p.add_argument("--new-chain", action="store_true",
                   help="create the chain and deploy the lifecycle contracts (this node admin)")
    p.add_argument("--chain", help="directory of the shared embedded chain "
                   "(default: HOME/chain with --new-chain)")
    p.add_argument("--rpc-url", help="use an Ethereum JSON-RPC node instead of an embedded chain")
    p.add_argument("--contracts", help="JSON file of contract addresses (joining an RPC chain)")
    p.add_argument("--seed", help="derive the key from this seed (reproducible; default random)")
    p.add_argument("--replica", action="append",
                   help="another domain's store directory to replicate blobs to (repeatable)")
    common(p)
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("register", help="register a dataset or model (files are hashed, stored "
                       "and recorded)")
    p.add_argument("name")
    p.add_argument("files", nargs="*", help="the artefact's files")
    p.add_argument("--lifecycle", choices=sorted(LIFECYCLES), required=True)
    p.add_argument("--locator", help="where the bytes live (a hint; the digest is the truth)")
    p.add_argument("--input", action="append", help="input artefact (name or 0x id) or file")
    p.add_argument("--param", action="append", help="KEY=VALUE (JSON values allowed)")
    p.add_argument("--code", help="the script that produced it (its digest is recorded)")
    common(p)
    p.set_defaults(func=cmd_register)

    p = sub.add_parser("record", help="record a lifecycle transition with its evidence")
    p.add_argument("transition")
    p.add_argument("artefact", help="name or 0x id")
    p.add_argument("--input", action="append", help="input artefact (name or 0x id) or file")
    p.add_argument("--output", action="append", help="an output file (repeatable)")
    p.add_argument("--param", action="append", help="KEY=VALUE (JSON values allowed)")
    p.add_argument("--code", help="the script that did the step")
    p.add_argument("--locator", help="where the outputs live")
    common(p)
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("approve", help="approve a k-of-n transition")
    p.add_argument("transition")
    p.add_argument("artefact")
    p.add_argument("--evidence", help="the file every approver approves (e.g. an evaluation)")
    common(p)
    p.set_defaults(func=cmd_approve)

    for verb, fn in (("grant", cmd_grant), ("revoke", cmd_revoke)):
        p = sub.add_parser(verb, help=f"{verb} a lifecycle role (needs its admin role)")
        p.add_argument("lifecycle", choices=sorted(LIFECYCLES))
        p.add_argument("role")
        p.add_argument("account", help="0x address")
        if verb == "grant":
            p.add_argument("--domain", required=True, help="the account's trust domain")
        common(p)
        p.set_defaults(func=fn)

    p = sub.add_parser("status", help="an artefact's state, or the node's own status")
    p.add_argument("artefact", nargs="?")
    p.add_argument("--max-age", type=float, help="freshness check first: the head must be at "
                   "most this many seconds old (exit 1 if the view is stale)")
    p.add_argument("--peer", action="append", help="another domain's node to cross-check the "
                   "head with (JSON-RPC URL or shared chain directory; repeatable)")
    common(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("node-bench", help="hashing MB/s on a large file beside sha256sum, and "
                       "the capture overhead per recorded step")
    p.add_argument("--size-mb", type=int, default=1024, help="file size in MiB (default 1024)")
    p.add_argument("--dir", help="where to write the temporary file (default: system temp)")
    p.add_argument("--steps", type=int, default=20, help="captured steps to time")
    p.add_argument("--status-sizes", type=int, nargs="+", default=[10, 10_000], metavar="N",
                   help="time `proml status` on chains of these many transitions (10 10000)")
    p.add_argument("--status-runs", type=int, default=3, help="runs per size (median; 3)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_node_bench)

    p = sub.add_parser("history", help="an artefact's provenance trail from the chain")
    p.add_argument("artefact")
    common(p)
    p.set_defaults(func=cmd_history)
