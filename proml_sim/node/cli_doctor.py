"""``proml doctor``: check the node home's chain data, blobs and temporary files; ``--repair``
restores them (see :mod:`proml_sim.node.doctor`).  Exit 0 healthy, 1 damage found (or left)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import proml_sim.cliargs as cliargs
from proml_sim.node.cli_keys import add_passphrase_option, passphrase_of


def cmd_doctor(args: argparse.Namespace) -> int:
    from proml_sim.node import doctor

    passphrase = passphrase_of(args).given()  # never a prompt: without one, a note says so
    if args.repair:
        report = doctor.repair(args.home, args.source, passphrase=passphrase)
    else:
        if args.source:
            from proml_sim.errors import NodeError

            raise NodeError("--from is used by --repair; add --repair to restore from it")
        report = doctor.check(args.home, passphrase=passphrase)
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        for line in report.repaired:
            print(f"repaired: {line}")
        for p in report.problems:
            print(f"problem: {p.line()}")
        for note in report.notes:
            print(f"note: {note}")
        print(f"{report.home}: " + ("healthy" if report.healthy else
                                   f"{len(report.problems)} problem(s)"))
    return 0 if report.healthy else 1


def register(sub: Any) -> None:
    """Add ``proml doctor`` to the CLI's subparsers."""
    p = sub.add_parser(
        "doctor", help="check the home's node.json, chain (every block, the state against a "
        "replay), contracts' code, deployment files, key file, blobs and stray temporary "
        "files; --repair "
        "restores them",
        description="Check the node home's data: node.json (each entry as every command "
        "reads it, and the chain identity it records against the chain directory), the block "
        "log, every row of the state DB against a replay of the log, code at each of the "
        "home's contract addresses (on an RPC node also that it is the home's chain), the "
        "chain's deployment files, the key file (unlocked when a passphrase is given by "
        "--passphrase-file or $PROML_PASSPHRASE, never asked for) and the retired keys, the "
        "blobs. Exit 0 "
        "healthy, 1 problems found (one line each, naming the file, block or blob and the "
        "fix). --repair rebuilds a damaged block "
        "log from the state DB, or restores it from --from DIR (a replica's or peer's copy of "
        "the same chain, verified block by block), rebuilds the state DB by replaying the log "
        "(the old DB is kept aside), "
        "restores damaged blobs from the store's replicas, writes damaged deployment files "
        "again (the damaged copy kept aside) and moves stray temporary files into "
        "<home>/quarantine. Nothing is deleted.")
    cliargs.global_options(p, home=True)
    add_passphrase_option(p, prompt=False)
    p.add_argument("--repair", action="store_true", help="repair what is found")
    p.add_argument("--from", dest="source", metavar="DIR", type=cliargs.existing_dir,
                   help="a replica's or peer's copy of this chain's directory (for --repair)")
    p.set_defaults(func=cmd_doctor)
