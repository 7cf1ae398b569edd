"""``proml consortium propose|vote|execute|join|list|show``: quorum governance of a lifecycle's
trust domains from a node (see :mod:`proml_sim.node.consortium`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import proml_sim.cliargs as cliargs
from proml_sim.node.cli_keys import add_passphrase_option, passphrase_of

KINDS = ("add_domain", "remove_domain", "rotate_admin", "set_roles")


def _node(args: argparse.Namespace) -> Any:
    from proml_sim.node.service import ProMLNode

    return ProMLNode.open(args.home, passphrase=passphrase_of(args))


def _emit(args: argparse.Namespace, obj: Any, text: str) -> None:
    print(json.dumps(obj, default=str) if args.json else text)


def cmd_propose(args: argparse.Namespace) -> int:
    from proml_sim.node import consortium

    roles = [r for r in (args.roles or "").split(",") if r]
    pid = consortium.propose(_node(args), args.lifecycle, args.kind, args.domain, args.admin,
                             roles)
    _emit(args, {"lifecycle": args.lifecycle, "proposal": pid, "kind": args.kind,
                 "domain": args.domain, "votes": 1},
          f"proposal {pid} ({args.kind} {args.domain}) opened on {args.lifecycle} with your "
          f"domain's vote; other members vote with `proml consortium vote {args.lifecycle} "
          f"{pid}`")
    return 0


def cmd_vote(args: argparse.Namespace) -> int:
    from proml_sim.node import consortium

    n = consortium.vote(_node(args), args.lifecycle, args.proposal)
    _emit(args, {"lifecycle": args.lifecycle, "proposal": args.proposal, "votes": n},
          f"voted: proposal {args.proposal} has {n} vote(s)")
    return 0


def cmd_execute(args: argparse.Namespace) -> int:
    from proml_sim.node import consortium

    consortium.execute(_node(args), args.lifecycle, args.proposal)
    _emit(args, {"lifecycle": args.lifecycle, "proposal": args.proposal, "executed": True},
          f"proposal {args.proposal} executed on {args.lifecycle}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from proml_sim.node import consortium

    rows = consortium.proposals(_node(args), args.lifecycle)
    lines = [f"{r['id']:>4}  {r['status']:<8} {r['kind']:<13} {r['domain']:<20} "
             f"votes: {', '.join(r['votes'])}" for r in rows] or ["no proposals"]
    _emit(args, rows, "\n".join(lines))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from proml_sim.node import consortium

    info = consortium.show(_node(args), args.lifecycle)
    lines = [f"{info['lifecycle']}: quorum {info['quorum']} (needs {info['votes_needed']} "
             f"now), epoch {info['epoch']}"]
    lines += [f"  {m['domain']:<20} admin {m['admin']}  roles: {', '.join(m['roles'])}"
              for m in info["members"]]
    _emit(args, info, "\n".join(lines))
    return 0


def cmd_join(args: argparse.Namespace) -> int:
    from proml_sim.node import consortium

    roles = [r for r in (args.roles or "").split(",") if r]
    req = consortium.join_request(_node(args), args.lifecycle, roles)
    text = (f"{req['domain']} is already a member of {args.lifecycle}'s consortium"
            if req["member"] else
            f"to join {args.lifecycle}'s consortium as {req['domain']}, ask a member domain's "
            f"admin to run:\n  {req['command']}\nthen a quorum of members votes and anyone "
            "executes; afterwards enrol your accounts with `proml grant`")
    _emit(args, req, text)
    return 0


def register(sub: Any) -> None:
    """Add ``proml consortium`` and its subcommands."""
    p = sub.add_parser("consortium", help="quorum governance of a lifecycle's trust domains: "
                       "propose, vote, execute, list, show")
    inner = p.add_subparsers(dest="consortium_command", required=True, metavar="ACTION")

    def common(q: argparse.ArgumentParser, *, writes: bool) -> None:
        q.add_argument("lifecycle", help="a lifecycle deployed with a Consortium declaration")
        cliargs.global_options(q, home=True)
        if writes:
            add_passphrase_option(q)

    q = inner.add_parser("propose", help="open a proposal as your domain's admin")
    common(q, writes=True)
    q.add_argument("kind", choices=KINDS)
    q.add_argument("--domain", required=True, help="the domain the proposal is about")
    q.add_argument("--admin", type=cliargs.address, help="new domain admin (add_domain, "
                   "rotate_admin)")
    q.add_argument("--roles", help="comma-separated roles the domain may hold (add_domain, "
                   "set_roles)")
    q.set_defaults(func=cmd_propose)
    for verb, fn, what in (("vote", cmd_vote, "vote for a proposal as your domain's admin"),
                           ("execute", cmd_execute, "carry out a proposal that has a quorum")):
        q = inner.add_parser(verb, help=what)
        common(q, writes=True)
        q.add_argument("proposal", type=cliargs.positive_int)
        q.set_defaults(func=fn)
    q = inner.add_parser("join", help="what a member must run to admit this node's domain "
                         "(sends nothing)")
    common(q, writes=True)
    q.add_argument("--roles", required=True, help="comma-separated roles your domain asks for")
    q.set_defaults(func=cmd_join)
    q = inner.add_parser("list", help="the proposals: open, expired, executed, with votes")
    common(q, writes=True)
    q.set_defaults(func=cmd_list)
    q = inner.add_parser("show", help="the members, their admins and roles, the quorum")
    common(q, writes=True)
    q.set_defaults(func=cmd_show)
