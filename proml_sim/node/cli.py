"""``proml`` subcommands of the node: capture provenance from shell scripts.

Every command takes ``--home`` (default ``$PROML_HOME``, else ``./.proml``) and ``--json``,
before or after the command; errors are :class:`~proml_sim.errors.ProMLError` subclasses, which
the top-level CLI prints and turns into exit code 2.  ``--json`` output follows docs/json.md:
ids, digests and tx hashes 0x-hex, addresses EIP-55, times ISO-8601 UTC beside unix seconds,
stable keys.  The node service is imported inside the commands (:func:`_open`), so registering
them stays cheap.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import proml_sim.cliargs as cliargs
from proml_sim.errors import NodeError
from proml_sim.fsutil import parse_json
from proml_sim.node.cli_keys import add_passphrase_option, passphrase_of

if TYPE_CHECKING:
    from proml_sim.node.service import ProMLNode


def _open(home: str, args: argparse.Namespace | None = None) -> ProMLNode:
    from proml_sim.node.service import ProMLNode

    if args is None:
        return ProMLNode.open(home)
    return ProMLNode.open(home, passphrase=passphrase_of(args))


def _params(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise NodeError(f"--param {item!r} is not KEY=VALUE; write e.g. --param lr=0.01")
        try:
            out[key] = parse_json(value)
        except ValueError:
            out[key] = value
    return out


def _emit(args: argparse.Namespace, obj: Any, text: str) -> None:
    print(json.dumps(obj, default=str) if args.json else text)


def cmd_init(args: argparse.Namespace) -> int:
    contracts = None
    if args.contracts:
        try:
            contracts = parse_json(Path(args.contracts).read_text())
        except (OSError, ValueError) as exc:
            raise NodeError(f"cannot read contract addresses from {args.contracts}: {exc}"
                            ) from exc
    from proml_sim.node.service import ProMLNode

    # directories init creates: each inside an existing parent (never a tree from the root)
    cliargs.check("--home", cliargs.output_dir, args.home)
    for replica in args.replica or ():
        cliargs.check("--replica", cliargs.output_dir, replica)
    if args.chain and args.new_chain:
        cliargs.check("--chain", cliargs.output_dir, args.chain)
    node = ProMLNode.init(args.home, name=args.name, domain=args.domain,
                          chain_dir=args.chain, new_chain=args.new_chain, rpc_url=args.rpc_url,
                          contracts=contracts, seed=args.seed, replicas=args.replica or (),
                          lifecycles=args.lifecycle or (), plain_key=args.plain_key,
                          passphrase=passphrase_of(args), key_file=args.key)
    info = {"home": str(node.home), "name": node.name, "domain": node.domain,
            "address": node.address, "chain": node.config["chain"],
            "contracts": node.config["contracts"], "lifecycles": node.config["lifecycles"]}
    chain = node.config["chain"]
    where = (f"{node.path(chain['path'])}" if chain["kind"] == "journal" else chain["url"])
    _emit(args, info, f"initialised node {node.name} ({node.domain}) at {node.home}\n"
          f"  address {node.address}\n  chain {where} (chain id {chain['chain_id']}, genesis "
          f"{chain['genesis'][:18]}..)\n  lifecycles {', '.join(node.config['lifecycles'])}")
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    node = _open(args.home, args)
    ref = node.register(args.lifecycle, args.name, args.files, locator=args.locator,
                        inputs=args.input or (), params=_params(args.param), code=args.code)
    _emit(args, {"name": args.name, "lifecycle": ref.lifecycle, "id": ref.hex,
                 "registrant": node.address},
          f"registered {ref.lifecycle} {args.name} as {ref.hex}")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    node = _open(args.home, args)
    res = node.record(args.transition, args.artefact, inputs=args.input or (),
                      outputs=args.output or (), params=_params(args.param), code=args.code,
                      locator=args.locator)
    _emit(args, {"transition": args.transition, "artefact": args.artefact, "fired": res.fired,
                 "approvals": res.approvals, "required": res.required, "state": res.state,
                 "version": res.version},
          f"{args.transition} recorded: {args.artefact} is {res.state} (version {res.version})")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    node = _open(args.home, args)
    res = node.approve(args.transition, args.artefact, args.evidence, new_tally=args.new_tally)
    text = (f"{args.transition} fired: {args.artefact} is {res.state} (version {res.version})"
            if res.fired else f"approval {res.approvals} of {res.required} recorded for "
            f"{args.transition} on {args.artefact}")
    _emit(args, {"transition": args.transition, "artefact": args.artefact, "fired": res.fired,
                 "approvals": res.approvals, "required": res.required, "state": res.state,
                 "version": res.version}, text)
    return 0


def cmd_grant(args: argparse.Namespace) -> int:
    node = _open(args.home, args)
    account = args.account  # EIP-55 checked by its argument type
    node.grant(args.lifecycle, args.role, account, args.domain)
    _emit(args, {"lifecycle": args.lifecycle, "granted": args.role, "account": account,
                 "domain": args.domain},
          f"granted {args.lifecycle}.{args.role} to {account} ({args.domain})")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    node = _open(args.home, args)
    account = args.account  # EIP-55 checked by its argument type
    node.revoke(args.lifecycle, args.role, account)
    _emit(args, {"lifecycle": args.lifecycle, "revoked": args.role, "account": account},
          f"revoked {args.lifecycle}.{args.role} from {account}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    node = _open(args.home)
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
    from proml_sim.node.service import iso_time

    head = node.backend.head()
    info = {"name": node.name, "domain": node.domain, "address": node.address,
            "chain": node.config["chain"],
            "head": {"number": head.number, "hash": "0x" + head.hash.hex()},
            "head_time": iso_time(head.timestamp), "head_timestamp": head.timestamp,
            "balance_wei": node.backend.balance(node.address),
            "contracts": node.config["contracts"]}
    _emit(args, info, "\n".join(f"{k:>12}: {v}" for k, v in info.items()))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    node = _open(args.home)
    rows = node.history_detail(args.artefact)
    lines = []
    for h in rows:
        who = f"{h['actor']} ({h['actor_domain'] or 'no domain'})"
        lines.append(f"v{h['version']:<3} {h['time'] or '-':<20} block {h['block']!s:<6} "
                     f"{h['step']:<14} -> {h['target']:<12} by {who}")
        lines.append(f"     tx {h['tx']}  digest {h['digest']}")
        for a in h["approvers"] or ():
            lines.append(f"     approved by {a['approver']} ({a['domain'] or 'no domain'}) "
                         f"at {a['time']}, block {a['block']}")
    _emit(args, rows, "\n".join(lines))
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    node = _open(args.home)
    rows = node.ls(args.lifecycle)
    lines = [f"{r['name'] or '(no record)':<20} {r['lifecycle']:<10} {r['state']:<12} "
             f"v{r['version']:<4} {r['id'][:18]}..  by {r['registrant']}" for r in rows]
    _emit(args, rows, "\n".join(lines) if lines else "no artefacts on this chain yet")
    return 0


def cmd_whoami(args: argparse.Namespace) -> int:
    node = _open(args.home)
    info = node.whoami()
    roles = "; ".join(f"{lc}: {', '.join(r) or '-'}" for lc, r in info["roles"].items())
    chain = info["chain"].get("path") or info["chain"].get("url")
    text = (f"{info['name']} ({info['domain']}) {info['address']}\n  roles   {roles}\n"
            f"  chain   {chain} (chain id {info['chain'].get('chain_id')}), head "
            f"#{info['head']} at {info['head_time']}")
    _emit(args, info, text)
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    node = _open(args.home, args)
    lc, addr = node.deploy(args.spec)
    _emit(args, {"lifecycle": lc, "address": addr, "spec": node.config["lifecycles"][lc]},
          f"deployed lifecycle {lc} at {addr} (admin: {node.address})")
    return 0


def cmd_replica(args: argparse.Namespace) -> int:
    node = _open(args.home)
    if args.action == "list":
        dirs = [str(d) for d in node.replica_dirs()]
        urls = node.peer_urls()
        _emit(args, {"replicas": [{"kind": "dir", "path": d} for d in dirs]
                     + [{"kind": "http", "url": u} for u in urls]},
              "\n".join(dirs + [f"{u} (HTTP peer)" for u in urls]) or "no replicas")
        return 0
    if args.action == "sync":
        counts = node.sync_replicas()
        text = "\n".join(f"{d}: {c['copied']} copied, {c['present']} already there, "
                         f"{c['repaired']} repaired, {c['skipped']} skipped (corrupt here)"
                         for d, c in counts.items()) or "no replicas to sync"
        _emit(args, {"replicas": counts}, text)
        return 1 if any(c["skipped"] for c in counts.values()) else 0
    if not args.dir:
        raise NodeError(f"`proml replica {args.action}` needs the replica's directory")
    if args.action == "add" and str(args.dir).startswith(("http://", "https://")):
        url = node.add_replica(args.dir)
        _emit(args, {"added": str(url)}, f"fetching missing blobs from peer {url} (verify, "
              "bundle and lineage ask it, hash-checked)")
    elif args.action == "add":
        cliargs.check("dir", cliargs.output_dir, args.dir)  # never a tree of new directories
        path = node.add_replica(args.dir)
        _emit(args, {"added": str(path)}, f"replicating to {path} (copy the blobs held now "
              "with `proml replica sync`)")
    else:
        path = node.remove_replica(args.dir)
        _emit(args, {"removed": str(path)}, f"no longer replicating to {path} (nothing there "
              "was deleted)")
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
        cliargs.global_options(p, home=True)  # --home/--json, also accepted before the command

    p = sub.add_parser("init", help="create a node home (keys, store) on a new or shared chain")
    p.add_argument("--name", required=True, type=cliargs.name, help="participant name")
    p.add_argument("--domain", required=True, type=cliargs.name,
                   help="trust domain (organisation), <= 32 bytes")
    p.add_argument("--new-chain", action="store_true",
                   help="create the chain and deploy the lifecycle contracts (this node admin)")
    p.add_argument("--chain", type=cliargs.home_dir, help="directory of the shared embedded chain "
                   "(default: HOME/chain with --new-chain)")
    p.add_argument("--rpc-url", type=cliargs.rpc_url,
                   help="use an Ethereum JSON-RPC node (any, at the Prague hardfork) instead of an "
                   "embedded chain")
    p.add_argument("--contracts", type=cliargs.existing_file,
                   help="JSON file of the chain's contracts (joining an RPC chain): "
                        "{lifecycle: address} for the paper's lifecycles, or a founding "
                        "node's node.json ({\"contracts\": .., \"lifecycles\": specs}) for "
                        "lifecycles of your own")
    p.add_argument("--seed", help="derive the key from this seed (reproducible; default random)")
    p.add_argument("--key", type=cliargs.existing_file, metavar="KEYSTORE",
                   help="use this v3 keystore (geth's, eth-account's) as the node's key, "
                   "unlocked with --passphrase-file: an account already funded, on a network "
                   "with no faucet")
    p.add_argument("--replica", action="append", type=cliargs.home_dir,
                   help="another domain's store directory to replicate blobs to (repeatable; "
                   "relative to the current directory)")
    p.add_argument("--lifecycle", action="append", metavar="SPEC",
                   help="with --new-chain: a lifecycle to deploy, Dataset, Model (consortium "
                   "governance, founded by this node's domain), SingleAdminDataset, "
                   "SingleAdminModel (the single-admin design) or package.module:Class "
                   "(repeatable; default: Dataset and Model)")
    p.add_argument("--plain-key", action="store_true", help="store the key UNENCRYPTED "
                   "(keys.json; for tests and simulations only)")
    add_passphrase_option(p)
    common(p)
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("deploy", help="deploy another lifecycle (package.module:Class) on the "
                       "node's chain, this node its admin")
    p.add_argument("spec", help="package.module:Class (importable from PYTHONPATH)")
    add_passphrase_option(p)
    common(p)
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("ls", help="the artefacts on the chain: name, lifecycle, state, version")
    p.add_argument("--lifecycle", help="only this lifecycle")
    common(p)
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("whoami", help="this node: name, domain, address, roles, chain, head")
    common(p)
    p.set_defaults(func=cmd_whoami)

    p = sub.add_parser("replica", help="the store directories blobs are replicated to, and HTTP "
                       "peers (a URL) missing blobs are fetched from: add, remove, list, sync")
    p.add_argument("action", choices=["add", "remove", "list", "sync"])
    p.add_argument("dir", nargs="?", type=cliargs.home_dir,
                   help="the replica store directory, or a peer's http://127.0.0.1:PORT URL "
                   "(add, remove)")
    common(p)
    p.set_defaults(func=cmd_replica)

    p = sub.add_parser("register", help="register a dataset or model (files are hashed, stored "
                       "and recorded)")
    p.add_argument("name", type=cliargs.name)
    p.add_argument("files", nargs="*", type=cliargs.existing_file, help="the artefact's files")
    p.add_argument("--lifecycle", required=True,
                   help="a lifecycle deployed on the chain (Dataset, Model, or deployed ones)")
    p.add_argument("--locator", help="where the bytes live (a hint; the digest is the truth)")
    add_passphrase_option(p)
    p.add_argument("--input", action="append", type=cliargs.artefact_or_file,
                   help="input artefact (name or 0x id) or file")
    p.add_argument("--param", action="append", help="KEY=VALUE (JSON values allowed)")
    p.add_argument("--code", type=cliargs.existing_file,
                   help="the script that produced it (its digest is recorded)")
    common(p)
    p.set_defaults(func=cmd_register)

    p = sub.add_parser("record", help="record a lifecycle transition with its evidence")
    p.add_argument("transition")
    p.add_argument("artefact", type=cliargs.artefact_ref, help="name or 0x id")
    p.add_argument("--input", action="append", type=cliargs.artefact_or_file,
                   help="input artefact (name or 0x id) or file")
    p.add_argument("--output", action="append", type=cliargs.existing_file,
                   help="an output file (repeatable)")
    p.add_argument("--param", action="append", help="KEY=VALUE (JSON values allowed)")
    p.add_argument("--code", type=cliargs.existing_file, help="the script that did the step")
    p.add_argument("--locator", help="where the outputs live")
    add_passphrase_option(p)
    common(p)
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("approve", help="approve a k-of-n transition")
    p.add_argument("transition")
    p.add_argument("artefact", type=cliargs.artefact_ref)
    p.add_argument("--evidence", type=cliargs.existing_file,
                   help="the file every approver approves (e.g. an evaluation)")
    p.add_argument("--new-tally", action="store_true",
                   help="approve evidence other than the pending approvals' (a separate tally)")
    add_passphrase_option(p)
    common(p)
    p.set_defaults(func=cmd_approve)

    for verb, fn in (("grant", cmd_grant), ("revoke", cmd_revoke)):
        p = sub.add_parser(verb, help=f"{verb} a lifecycle role (consortium: as this node's "
                           "domain admin, own-domain accounts only; single-admin: needs the "
                           "role's admin role)")
        p.add_argument("lifecycle", help="a lifecycle deployed on the chain")
        p.add_argument("role")
        p.add_argument("account", type=cliargs.address,
                       help="0x address (EIP-55 checksum, or all lower case)")
        if verb == "grant":
            p.add_argument("--domain", required=True, type=cliargs.name,
                           help="the account's trust domain")
        add_passphrase_option(p)
        common(p)
        p.set_defaults(func=fn)

    p = sub.add_parser("status", help="an artefact's state, or the node's own status")
    p.add_argument("artefact", nargs="?", type=cliargs.artefact_ref)
    p.add_argument("--max-age", type=cliargs.non_negative_float,
                   help="freshness check first: the head must be at "
                   "most this many seconds old (exit 1 if the view is stale)")
    p.add_argument("--peer", action="append", help="another domain's node to cross-check the "
                   "head with (JSON-RPC URL or shared chain directory; repeatable)")
    common(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("node-bench", help="hashing MB/s on a large file beside sha256sum, and "
                       "the capture overhead per recorded step")
    p.add_argument("--size-mb", type=cliargs.positive_int, default=1024,
                   help="file size in MiB (default 1024)")
    p.add_argument("--dir", type=cliargs.existing_dir,
                   help="where to write the temporary file (default: system temp)")
    p.add_argument("--steps", type=cliargs.positive_int, default=20, help="captured steps to time")
    p.add_argument("--status-sizes", type=cliargs.positive_int, nargs="+", default=[10, 10_000],
                   metavar="N",
                   help="time `proml status` on chains of these many transitions (10 10000)")
    p.add_argument("--status-runs", type=cliargs.positive_int, default=3,
                   help="runs per size (median; 3)")
    p.set_defaults(func=cmd_node_bench)

    p = sub.add_parser("history", help="an artefact's provenance trail from the chain")
    p.add_argument("artefact", type=cliargs.artefact_ref)
    common(p)
    p.set_defaults(func=cmd_history)
