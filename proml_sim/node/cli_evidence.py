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
from proml_sim.errors import NodeError

if TYPE_CHECKING:
    from proml_sim.node.evidence import EvidenceSource, LiveSource
    from proml_sim.node.lineage import Lineage, VersionKey

#: the export formats (``proml_sim.node.prov.FORMATS``, checked equal by a test)
FORMATS = ("prov-json", "prov-n")


def _live(args: argparse.Namespace) -> LiveSource:
    from proml_sim.node.evidence import LiveSource
    from proml_sim.node.service import ProMLNode

    return LiveSource(ProMLNode.open(args.home))


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _line(lin: Lineage, k: VersionKey) -> str:
    a = lin.graph.nodes[k]
    dom = f" ({a['domain']})" if a["domain"] else ""
    return (f"  {lin.label(k):<28} {a['state']:<11} {a['step']:<9} by {a['actor']}{dom}, "
            f"block {a['block']} at {_when(a['timestamp'])}")


def cmd_lineage(args: argparse.Namespace) -> int:
    from proml_sim.node.lineage import Lineage, render_png

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
    if args.json:
        out: dict[str, Any] = {
            "artefact": lin.node_json(key), "direction": "descendants" if down else "ancestors",
            "versions": [lin.node_json(k) for k in keys], "conflicts": conflicts, "png": png}
        if radius is not None:
            out["blast_radius"] = radius.to_dict()
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

    source: EvidenceSource
    if args.bundle:
        bundle = load_bundle(args.bundle)
        source = bundle
        artefact: Any = args.artefact or bundle.artefact
    else:
        if not args.artefact:
            raise NodeError("proml verify needs an ARTEFACT (name or 0x id), or --bundle FILE")
        source = _live(args)
        artefact = args.artefact
    report = verify(source, artefact, expect_chain_id=args.expect_chain_id,
                    expect_contracts=_pins(args.expect_contract))
    print(report.to_json() if args.json else report.render())
    return 0 if report.ok else 1


def cmd_bundle(args: argparse.Namespace) -> int:
    from proml_sim.node.bundle import load_bundle, write_bundle

    source = _live(args)
    path = write_bundle(source, args.artefact, args.output, allow_missing=args.allow_missing)
    b = load_bundle(path)  # read back: what was written is what a consumer will validate
    info = {"bundle": str(path), "artefact": b.manifest["artefact"],
            "events": len(b.events()), "blobs": len(b.blobs),
            "bytes": sum(b.blobs.values()), "missing": ["0x" + d for d in sorted(b.missing)]}
    text = (f"wrote evidence bundle {path}: {info['events']} events, {info['blobs']} blobs "
            f"({info['bytes']} bytes)"
            + (f"; {len(b.missing)} blob(s) missing (listed in the manifest)" if b.missing
               else ""))
    print(json.dumps(info, indent=2) if args.json else text)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from proml_sim.node.bundle import load_bundle
    from proml_sim.node.evidence import atomic_write
    from proml_sim.node.prov import export_prov

    source: EvidenceSource = load_bundle(args.bundle) if args.bundle else _live(args)
    text = export_prov(source, args.artefact, args.format)
    if args.output:
        atomic_write(args.output, lambda fh: fh.write(text.encode()))
        print(f"wrote {args.format} to {args.output}")
    else:
        print(text)
    return 0


def register(sub: Any) -> None:
    """Add ``lineage``, ``verify``, ``bundle`` and ``export`` to the top-level ``proml``
    subparsers (``sub`` is what ``parser.add_subparsers()`` returned)."""

    def home(p: argparse.ArgumentParser, extra: str = "") -> None:
        # the top-level parser makes this default SUPPRESS (a global --home before the command)
        p.add_argument("--home", type=cliargs.home_dir, default=cliargs.default_home(),
                       metavar="DIR", help=cliargs.HOME_HELP + extra)

    p = sub.add_parser("lineage", help="what an artefact was built from, or what depends on it")
    p.add_argument("artefact", type=cliargs.artefact_ref,
                   help="name, name@0xregistrant or 0x id")
    p.add_argument("--version", type=cliargs.non_negative_int,
                   help="the version to start from (default: the latest "
                   "for ancestors, the first for --descendants)")
    p.add_argument("--descendants", action="store_true",
                   help="show what depends on it (the blast radius) instead of its ancestors")
    p.add_argument("--png", metavar="FILE", type=cliargs.output_file,
                   help="also draw the lineage to a PNG file")
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
    p.add_argument("--json", action="store_true", help="machine-readable report")
    home(p, "; not used with --bundle")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("bundle", help="write an offline evidence bundle of an artefact")
    p.add_argument("artefact", type=cliargs.artefact_ref, help="name or 0x id")
    p.add_argument("-o", "--output", required=True, metavar="FILE", type=cliargs.output_file,
                   help="the zip file to write")
    p.add_argument("--allow-missing", action="store_true",
                   help="bundle even if some blobs are unavailable (the manifest lists them)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    home(p)
    p.set_defaults(func=cmd_bundle)

    p = sub.add_parser("export", help="export provenance as W3C PROV (PROV-JSON or PROV-N)")
    p.add_argument("artefact", nargs="?", type=cliargs.artefact_ref,
                   help="name or 0x id (default: every artefact on the chain)")
    p.add_argument("--format", choices=FORMATS, default="prov-json")
    p.add_argument("-o", "--output", metavar="FILE", type=cliargs.output_file,
                   help="write to FILE instead of stdout")
    p.add_argument("--bundle", metavar="FILE", type=cliargs.existing_file,
                   help="export from an evidence bundle (no home)")
    home(p, "; not used with --bundle")
    p.set_defaults(func=cmd_export)
