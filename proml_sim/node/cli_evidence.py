"""``proml lineage``, ``proml verify``, ``proml bundle`` and ``proml export``.

:func:`register` adds them to the top-level parser.  Each reads a node home (``--home``,
default ``./.proml``), except ``verify --bundle`` and ``export --bundle``, which read an
offline evidence bundle and need no home, chain or network.  Human output by default, ``--json``
for scripts (``--json`` and ``--home`` may also come before the command).  The evidence
modules are imported inside the commands, so registering them stays cheap.  Exit codes: 0 ok,
1 a verification check failed, 2 bad input (a :class:`~proml_sim.errors.ProMLError`, printed
by the top-level CLI).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import proml_sim.cliargs as cliargs
from proml_sim.errors import NodeError, UnknownName

if TYPE_CHECKING:
    from proml_sim.node.evidence import EvidenceSource, LiveSource
    from proml_sim.node.lineage import Lineage, VersionKey

#: the PROV export formats (``proml_sim.node.prov.FORMATS``, checked equal by a test)
FORMATS = ("prov-json", "prov-n")
#: signed attestations (``proml_sim.node.attest``)
IN_TOTO = "in-toto"


def _live(args: argparse.Namespace) -> LiveSource:
    from proml_sim.node.cli_keys import passphrase_of
    from proml_sim.node.evidence import LiveSource
    from proml_sim.node.service import ProMLNode

    # the key is unlocked only to sign a request to an HTTP peer for a missing blob
    return LiveSource(ProMLNode.open(args.home, passphrase=passphrase_of(args)))


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _line(lin: Lineage, k: VersionKey) -> str:
    a = lin.graph.nodes[k]
    dom = f" ({a['domain']})" if a["domain"] else ""
    return (f"  {lin.label(k):<28} {a['state']:<11} {a['step']:<9} by {a['actor']}{dom}, "
            f"block {a['block']} at {_when(a['timestamp'])}")


def cmd_lineage(args: argparse.Namespace) -> int:
    from proml_sim.node.lineage import Lineage, render_png

    if args.affected_by:
        if args.artefact or args.descendants or args.version is not None:
            raise NodeError("--affected-by searches every artefact: give it without an "
                            "ARTEFACT, --version or --descendants")
        return _affected(args, Lineage(_live(args)))
    if not args.artefact:
        raise NodeError("proml lineage needs an ARTEFACT (name or 0x id), or --affected-by "
                        "PKG==VERSION")
    lin = Lineage(_live(args))
    down = bool(args.descendants)
    key = lin.key(args.artefact, args.version, default="first" if down else "latest")
    keys = lin.descendants(key) if down else lin.ancestors(key)
    radius = lin.blast_radius(key, key.version) if down else None
    png = None
    if args.png:
        png = str(render_png(lin.around(key, up=not down, down=down), args.png,
                             title=f"{'descendants' if down else 'lineage'} of "
                                   f"{lin.label(key)}"))
    conflicts = [c.message for c in lin.conflicts if c.key in {key, *keys}]
    unfetched = _unfetched(lin.source)
    if args.json:
        out: dict[str, Any] = {
            "artefact": lin.node_json(key), "direction": "descendants" if down else "ancestors",
            "versions": [lin.node_json(k) for k in keys], "conflicts": conflicts, "png": png,
            "blast_radius": radius.to_dict() if radius is not None else None,
            "unfetched": unfetched}
        print(json.dumps(out, indent=2, default=str))
        return 0
    word = "built on it" if down else "it was built from"
    lines = [f"{lin.label(key)} ({lin.graph.nodes[key]['state']}): {len(keys)} version(s) "
             f"{word}"]
    lines += [_line(lin, k) for k in keys]
    if radius is not None:
        if radius.artefacts:
            lines.append("affected artefacts:")
            for lc, arts in sorted(radius.artefacts.items()):
                lines.append(f"  {lc}: " + ", ".join(
                    f"{a['name'] or a['id']} (v{', v'.join(map(str, a['versions']))})"
                    for a in arts))
        else:
            lines.append("nothing depends on it")
    lines += [f"warning: {c}" for c in conflicts]
    lines += [f"note: {u['reason']} (shown by id)" for u in unfetched]
    if png:
        lines.append(f"picture written to {png}")
    print("\n".join(lines))
    return 0


def _unfetched(source: Any) -> list[dict[str, str]]:
    """The blobs (records) the HTTP peers could not serve, each with why (the peers' notes, as
    ``verify`` puts them in its checks): what lineage shows by id instead of by name."""
    notes = getattr(source, "notes", {})
    return [{"digest": d, "reason": why} for d, why in sorted(notes.items())
            if not why.startswith("fetched from peer")]


def _requirement(text: str) -> str:
    """``PKG==VERSION`` or ``PKG<2.1`` (an argparse type: a bad one fails before any work)."""
    from proml_sim.errors import UsageError
    from proml_sim.node.lineage import parse_requirement

    try:
        parse_requirement(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _affected(args: argparse.Namespace, lin: Lineage) -> int:
    """``proml lineage --affected-by PKG==VERSION``: every version built with it, and on it."""
    from proml_sim.node.lineage import render_png

    found = lin.affected_by(args.affected_by)
    keys = found.affected
    png = None
    if args.png and keys:
        png = str(render_png(lin.subgraph(keys), args.png,
                             title=f"built with or on {args.affected_by}"))
    per: dict[str, dict[str, Any]] = {}
    for k in keys:
        a = per.setdefault(k.lifecycle, {}).setdefault(
            k.id, {"id": k.id, "name": lin.name(k), "versions": []})
        a["versions"].append(k.version)
    artefacts = {lc: list(arts.values()) for lc, arts in sorted(per.items())}
    conflicts = [c.message for c in lin.conflicts if c.key in set(keys)]
    if args.json:
        print(json.dumps({
            "query": found.query, "package": found.package,
            "matched": [{**lin.node_json(k), "package_version": v} for k, v in found.matched],
            "descendants": [lin.node_json(k) for k in found.descendants],
            "unknown": [lin.node_json(k) for k in found.unknown],
            "unknown_descendants": [lin.node_json(k) for k in found.unknown_descendants],
            "artefacts": artefacts, "records_listing_package": found.listing,
            "conflicts": conflicts, "png": png}, indent=2, default=str))
        return 0
    lines = [f"{found.query}: {len(found.matched)} version(s) built with it, "
             f"{len(found.descendants)} built on them ({len(keys)} affected version(s) of "
             f"{sum(len(a) for a in artefacts.values())} artefact(s))"]
    lines += [_line(lin, k) + f" [{found.package} {v}]" for k, v in found.matched]
    if found.descendants:
        lines.append("built on them:")
        lines += [_line(lin, k) for k in found.descendants]
    if found.unknown:
        lines.append(f"warning: {len(found.unknown)} version(s) cannot be told: their record "
                     "is unavailable or unreadable (fetch the blobs: `proml replica sync`, or "
                     "add the owner's `proml serve` as a replica), or gives the package a "
                     "version PEP 440 cannot compare; treat them as affected:")
        lines += [_line(lin, k) for k in found.unknown]
        if found.unknown_descendants:
            lines.append(f"  and {len(found.unknown_descendants)} version(s) built on them "
                         "(suspect too):")
            lines += [_line(lin, k) for k in found.unknown_descendants]
    if not found.listing:
        lines.append(f"warning: no record lists {found.package} at any version: it was never "
                     "installed where steps ran, or records do not capture it (records capture "
                     "proml_sim.node.records.ENV_PACKAGES and $PROML_ENV_PACKAGES)")
    lines += [f"warning: {c}" for c in conflicts]
    if png:
        lines.append(f"picture written to {png}")
    print("\n".join(lines))
    return 0


def _pin(item: str) -> tuple[str, str]:
    """``LIFECYCLE=0xADDRESS`` (an argparse type: a bad one fails before any work)."""
    lc, sep, addr = item.partition("=")
    if not sep or not lc:
        raise argparse.ArgumentTypeError(
            f"{item!r} is not LIFECYCLE=0xADDRESS; write e.g. "
            "--expect-contract Model=0x5FbDB2315678afecb367f032d93F642f64180aa3")
    return lc, cliargs.address(addr)


def _pins(items: list[tuple[str, str]] | None) -> dict[str, str]:
    return dict(items or [])


def cmd_verify(args: argparse.Namespace) -> int:
    from proml_sim.node.bundle import load_bundle
    from proml_sim.node.verify import verify

    if args.since:
        if args.bundle or args.attestation or args.artefact:
            raise NodeError("--since checks the node's own chain against an old checkpoint; "
                            "run it alone: `proml verify --since OLD_HASH`")
        return _verify_since(args)
    if args.attestation:
        return _verify_attestation(args)
    source: EvidenceSource
    pin = bytes.fromhex(args.checkpoint[2:]) if args.checkpoint else None
    if args.bundle:
        bundle = load_bundle(args.bundle)
        source = bundle
        artefact: Any = args.artefact or bundle.artefact
    else:
        if not args.artefact:
            raise NodeError("proml verify needs an ARTEFACT (name or 0x id), or --bundle FILE")
        if pin is not None:
            raise NodeError("--checkpoint pins a bundle's headers: use it with --bundle FILE "
                            "(a live node is checked with --since OLD_HASH)")
        source = _live(args)
        artefact = args.artefact
    pins = _pins(args.expect_contract)
    missing = False
    try:
        report = verify(source, artefact, expect_chain_id=args.expect_chain_id,
                        expect_contracts=pins)
    except UnknownName:
        if not args.bundle or not _names_subject(bundle, args.artefact):
            raise
        # the bundle's own subject is not among its events: a failed check (events removed
        # or the manifest altered), not a wrong name on the command line
        report, missing = _subject_missing(bundle), True
    if args.bundle:
        from proml_sim.node.proofs import check_proofs

        contracts = {lc: pins.get(lc, a) for lc, a in bundle.contracts.items()}
        report.checks[:0] = check_proofs(bundle.proofs, bundle.events(), contracts,
                                         checkpoint=pin,
                                         chain_id=args.expect_chain_id or bundle.chain_id,
                                         fingerprints=_fingerprints(bundle),
                                         deploy_codes=_deploy_codes(bundle))
        if not missing:
            report.checks += bundle.check_claims(report.artefact)
        report.unpinned = (["checkpoint (--checkpoint)"] * (pin is None)
                           + ["chain id (--expect-chain-id)"] * (args.expect_chain_id is None)
                           + [f"{lc} contract (--expect-contract)"
                              for lc in sorted(bundle.contracts) if lc not in pins])
    print(report.to_json() if args.json else report.render())
    return 0 if report.ok else 1


def _deploy_codes(bundle: Any) -> dict[str, bytes]:
    """The deployment code this proml-sim generates and compiles from each lifecycle's rules the
    bundle gives (the registry layout, as a node deploys), which the contract's proven deployment
    must begin with; rules that do not compile are left to the fingerprint check, which they
    fail (no genuine contract states a forged IR's fingerprint)."""
    from proml_sim.compiler import compile_artefact
    from proml_sim.errors import ProMLError

    out = {}
    for lc, ir in bundle.irs.items():
        try:
            out[lc] = compile_artefact(ir).bytecode
        except ProMLError:
            continue
    return out


def _fingerprints(bundle: Any) -> dict[str, str]:
    """The IR fingerprint of each lifecycle's rules the bundle gives (what verify replays),
    which its contract's proven deployment must hold."""
    return {lc: ir.fingerprint() for lc, ir in bundle.irs.items()}


def _names_subject(bundle: Any, ref: str | None) -> bool:
    """Whether ``ref`` (the ARTEFACT argument; None: none given) is the bundle's subject."""
    a = bundle.manifest["artefact"]
    return ref is None or ref.lower() == a["id"].lower() or ref.partition("@")[0] == a.get("name")


def _subject_missing(bundle: Any) -> Any:
    """The report of a bundle whose events do not register the subject its manifest names."""
    from proml_sim.node.verify import Check, VerifyReport

    a = bundle.manifest["artefact"]
    report = VerifyReport({"lifecycle": a["lifecycle"], "id": a["id"], "name": a.get("name"),
                           "version": a["version"], "state": "unproven"}, bundle.describe())
    report.checks.append(Check(
        "subject", False, f"the manifest names {a['lifecycle']} {a.get('name') or a['id']} "
        f"v{a['version']} as the subject, but no event of the bundle registers it (its events "
        "were removed or the manifest altered); rebuild the bundle with "
        "`proml bundle ARTEFACT -o FILE` from a node"))
    return report


def _verify_since(args: argparse.Namespace) -> int:
    from proml_sim.node.proofs import check_extends
    from proml_sim.node.service import ProMLNode

    node = ProMLNode.open(args.home)
    number, head = check_extends(node.backend, bytes.fromhex(args.since[2:]))
    head_n = node.backend.head().number
    info = {"ok": True, "checkpoint": {"number": number, "hash": args.since},
            "head": {"number": head_n, "hash": "0x" + head.hex()}}
    print(json.dumps(info, indent=2) if args.json else
          f"PASSED: the head (block {head_n}, 0x{head.hex()}) extends the checkpoint block "
          f"{number} {args.since}")
    return 0


def _verify_attestation(args: argparse.Namespace) -> int:
    from proml_sim.node.attest import verify_attestation
    from proml_sim.node.bundle import load_bundle

    if not args.bundle:
        report = verify_attestation(_live(args), args.attestation)
    else:  # the bundle's own proofs first: its events must be the chain's
        from proml_sim.node.proofs import check_proofs

        bundle = load_bundle(args.bundle)
        pin = bytes.fromhex(args.checkpoint[2:]) if args.checkpoint else None
        pins = _pins(args.expect_contract)
        proofs = check_proofs(bundle.proofs, bundle.events(),
                              {lc: pins.get(lc, a) for lc, a in bundle.contracts.items()},
                              checkpoint=pin,
                              chain_id=args.expect_chain_id or bundle.chain_id,
                              fingerprints=_fingerprints(bundle),
                              deploy_codes=_deploy_codes(bundle))
        report = verify_attestation(bundle, args.attestation)
        bad = [c for c in proofs if not c.ok]
        report["lines"][:0] = [f"{'ok  ' if c.ok else 'FAIL'}  bundle {c.name}: {c.detail}"
                               for c in proofs]
        if bad:
            report["ok"] = False
            report["lines"][-1] = f"FAILED: the bundle's chain proofs fail ({bad[0].name})"
    print(json.dumps(report, indent=2) if args.json else "\n".join(report["lines"]))
    return 0 if report["ok"] else 1


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from proml_sim.node.service import ProMLNode

    node = ProMLNode.open(args.home)
    head = node.backend.head()
    info = {"chain_id": int(node.backend.chain_id), "number": head.number,
            "hash": "0x" + head.hash.hex()}
    print(json.dumps(info, indent=2) if args.json else
          f"chain {info['chain_id']} block {info['number']} {info['hash']}")
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from proml_sim.node.bundle import load_bundle, write_bundle

    source = _live(args)
    path = write_bundle(source, args.artefact, args.output, allow_missing=args.allow_missing)
    b = load_bundle(path)  # read back: what was written is what a consumer will validate
    info = {"bundle": str(path), "artefact": b.manifest["artefact"],
            "events": len(b.events()), "blobs": len(b.blobs),
            "bytes": sum(b.blobs.values()), "missing": ["0x" + d for d in sorted(b.missing)],
            "checkpoint": b.proofs["checkpoint"] if b.proofs else None}
    cp = info["checkpoint"]
    text = (f"wrote evidence bundle {path}: {info['events']} events, {info['blobs']} blobs "
            f"({info['bytes']} bytes)"
            + (f", proved up to block {cp['number']} {cp['hash']}" if cp else "")
            + (f"; {len(b.missing)} blob(s) missing (listed in the manifest)" if b.missing
               else ""))
    print(json.dumps(info, indent=2) if args.json else text)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from proml_sim.node.bundle import load_bundle
    from proml_sim.node.evidence import atomic_write
    from proml_sim.node.prov import export_prov

    if args.format == IN_TOTO:
        return _export_in_toto(args)
    if args.model_dir:
        raise NodeError("--model-dir names a model directory in in-toto attestations; use it "
                        "with --format in-toto")
    source: EvidenceSource = load_bundle(args.bundle) if args.bundle else _live(args)
    text = export_prov(source, args.artefact, args.format)
    if args.output:
        atomic_write(args.output, lambda fh: fh.write(text.encode()))
        print(f"wrote {args.format} to {args.output}")
    else:
        print(text)
    return 0


def _export_in_toto(args: argparse.Namespace) -> int:
    from proml_sim.node.attest import export_in_toto
    from proml_sim.node.evidence import atomic_write

    if args.bundle:
        raise NodeError("in-toto attestations are signed by the node's key: export them from "
                        "a node home, not from --bundle")
    envs, skipped = export_in_toto(_live(args), args.artefact, model_dirs=args.model_dir or ())
    text = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in envs)
    note = (f"; {len(skipped)} transition(s) skipped (each is signed by its actor's node; a "
            "key of this node that does not unlock signs nothing): "
            + ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else "")) if skipped else ""
    if not envs:
        raise NodeError("no transition in scope was fired by this node, so there is nothing "
                        f"it can sign{note}")
    if args.output:
        atomic_write(args.output, lambda fh: fh.write(text.encode()))
        print(f"wrote {len(envs)} signed in-toto statement(s) to {args.output}{note}")
    else:
        print(text, end="")
    return 0


def register(sub: Any) -> None:
    """Add ``lineage``, ``verify``, ``bundle`` and ``export`` to the top-level ``proml``
    subparsers (``sub`` is what ``parser.add_subparsers()`` returned)."""
    from proml_sim.node.cli_keys import add_passphrase_option

    def home(p: argparse.ArgumentParser, extra: str = "") -> None:
        # the top-level parser makes this default SUPPRESS (a global --home before the command)
        p.add_argument("--home", type=cliargs.home_dir, default=cliargs.default_home(),
                       metavar="DIR", help=cliargs.HOME_HELP + extra)
        add_passphrase_option(p)  # signs requests to HTTP peers for missing blobs, if any

    p = sub.add_parser("lineage", help="what an artefact was built from, or what depends on "
                       "it; or every artefact built with a package version (--affected-by)")
    p.add_argument("artefact", nargs="?", type=cliargs.artefact_ref,
                   help="name, name@0xregistrant or 0x id (not with --affected-by)")
    p.add_argument("--affected-by", metavar="PKG==VERSION", type=_requirement,
                   help="list every artefact version whose recorded environment has the "
                   "package at a matching version (any PEP 440 specifier: 'torch==2.0.1', "
                   "'numpy<1.26', 'python>=3.12,<3.12.2'), every version built on them, and "
                   "the versions whose record is unavailable")
    p.add_argument("--version", type=cliargs.non_negative_int,
                   help="the version to start from (default: the latest "
                   "for ancestors, the first for --descendants)")
    p.add_argument("--descendants", action="store_true",
                   help="show what depends on it (the blast radius) instead of its ancestors")
    p.add_argument("--png", metavar="FILE", type=cliargs.output_file,
                   help="also draw the lineage (or the affected versions) to a PNG file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    home(p)
    p.set_defaults(func=cmd_lineage)

    p = sub.add_parser("verify", help="check an artefact's blobs, lineage and history against "
                       "the chain (exit 1 when a check fails)")
    p.add_argument("artefact", nargs="?", type=cliargs.artefact_ref,
                   help="name or 0x id (with --bundle: default the bundle's artefact)")
    p.add_argument("--bundle", metavar="FILE", type=cliargs.existing_file,
                   help="verify from an offline evidence bundle (no home, no network)")
    p.add_argument("--expect-chain-id", type=cliargs.positive_int, metavar="N",
                   help="the chain id you trust; a different one fails verification")
    p.add_argument("--expect-contract", action="append", metavar="LIFECYCLE=0xADDR", type=_pin,
                   help="a contract address you trust (repeatable)")
    p.add_argument("--checkpoint", metavar="HASH", type=cliargs.hex_bytes(32, "block hash"),
                   help="with --bundle: the block hash you trust (`proml checkpoint` on a node "
                   "you trust); the bundle's headers must reach it")
    p.add_argument("--since", metavar="OLD_HASH", type=cliargs.hex_bytes(32, "block hash"),
                   help="prove the node's current head extends this old checkpoint")
    p.add_argument("--attestation", metavar="FILE", type=cliargs.existing_file,
                   help="check in-toto attestations (`proml export --format in-toto`) "
                   "against the chain (or against --bundle FILE, offline)")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    home(p, "; not used with --bundle")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("checkpoint", help="the head block to pin: chain id, number and hash")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    home(p)
    p.set_defaults(func=cmd_checkpoint)

    p = sub.add_parser("bundle", help="write an offline evidence bundle of an artefact")
    p.add_argument("artefact", type=cliargs.artefact_ref, help="name or 0x id")
    p.add_argument("-o", "--output", required=True, metavar="FILE", type=cliargs.output_file,
                   help="the zip file to write")
    p.add_argument("--allow-missing", action="store_true",
                   help="bundle even if some blobs are unavailable (the manifest lists them)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    home(p)
    p.set_defaults(func=cmd_bundle)

    p = sub.add_parser("export", help="export provenance as W3C PROV (PROV-JSON or PROV-N), or "
                       "as signed in-toto attestations (one DSSE envelope per line)")
    p.add_argument("artefact", nargs="?", type=cliargs.artefact_ref,
                   help="name or 0x id (default: every artefact on the chain)")
    p.add_argument("--format", choices=(*FORMATS, IN_TOTO), default="prov-json",
                   help="prov-json, prov-n, or in-toto (Statement v1 + SLSA v1 for training "
                   "steps, DSSE-signed by this node's key: its own transitions)")
    p.add_argument("--model-dir", action="append", metavar="DIR", type=cliargs.existing_dir,
                   help="with --format in-toto: also name this model directory by its OpenSSF "
                   "model-signing digest in the statements of the step that produced its "
                   "files (repeatable)")
    p.add_argument("-o", "--output", metavar="FILE", type=cliargs.output_file,
                   help="write to FILE instead of stdout")
    p.add_argument("--bundle", metavar="FILE", type=cliargs.existing_file,
                   help="export from an evidence bundle (no home)")
    home(p, "; not used with --bundle")
    p.set_defaults(func=cmd_export)
