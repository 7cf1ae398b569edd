"""Verify an artefact's provenance from an evidence source (a live node or an offline bundle).

``verify(source, ref)`` checks the artefact's latest version and everything it was built from
(its lineage ancestors), and reports one :class:`Check` per finding:

``chain``
    the chain id (against a pin, when given) and, per involved lifecycle, that every event was
    emitted by the claimed contract, that the contract reports the IR fingerprint of the rules
    replayed against, and that it is the pinned address (when given).
``replay <Lifecycle>``
    *all* events of the contract, transaction by transaction in chain order, are re-executed by
    the reference interpreter (grants and revocations by their sender, registrations with their
    salt, transitions and approvals by their signer): every call must be accepted and reproduce
    exactly the chain's events, and the event's actor must be the transaction's signer.  This
    checks roles, separation of duty and k-of-n approvals at each block.
``versions``
    each artefact's versions run 1, 2, ... in chain order, as the contract assigns them, and
    approvals name the version current when they were given.
``blob``
    every blob behind an on-chain digest of the artefact and of its ancestors is present and
    hashes to it: the evidence (records, approval files), and each record's outputs, input files
    and code.
``record``
    each record agrees with the transaction that committed it (lifecycle, step, artefact or
    registration name, actor).
``lineage``
    each record's input (``InputRef``) names the version the chain order gives and carries that
    version's on-chain evidence digest, and each input file is among the outputs of the input
    artefacts' records at the versions consumed (or of the artefact's own previous version):
    step n+1 consumed what step n produced.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from proml_sim.errors import ProMLError
from proml_sim.ir import (
    Approved,
    GovExecuted,
    GovProposed,
    GovVoted,
    Interpreter,
    LifecycleEvent,
    LifecycleIR,
    Registered,
    RoleGranted,
    RoleRevoked,
    Transitioned,
    approval_key,
    artefact_id,
)
from proml_sim.ir.events import apply_event
from proml_sim.node.evidence import ChainEvent, EvidenceSource
from proml_sim.node.lineage import Lineage, VersionKey
from proml_sim.node.records import Record
from proml_sim.node.service import ArtefactRef


@dataclass(frozen=True)
class Check:
    """One finding: what was checked, whether it holds, and the details (or the fix)."""

    name: str
    ok: bool
    detail: str


@dataclass
class VerifyReport:
    """All findings for one artefact."""

    artefact: dict[str, Any]
    source: str
    checks: list[Check] = field(default_factory=list)
    #: what the verifier did not pin, so was taken from the evidence itself (a bundle's:
    #: checkpoint, chain id, contracts): a forger's own chain or contract passes those checks
    unpinned: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "artefact": self.artefact, "source": self.source,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail}
                           for c in self.checks], "unpinned": list(self.unpinned)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def render(self) -> str:
        a = self.artefact
        head = (f"verify {a['lifecycle']} {a.get('name') or a['id']} (version {a['version']}, "
                f"{a['state']}) from {self.source}")
        lines = [head]
        for c in self.checks:
            lines.append(f"  {'ok  ' if c.ok else 'FAIL'}  {c.name}: {c.detail}")
        n_bad = len(self.failures)
        unpinned = (f"; not pinned, so taken from the evidence itself: "
                    f"{', '.join(self.unpinned)} (pin them: a forger's own chain or contract "
                    "passes what is not pinned)" if self.unpinned else "")
        lines.append(f"{'PASSED' if self.ok else 'FAILED'}: {len(self.checks)} checks, "
                     f"{n_bad} failed{unpinned}")
        return "\n".join(lines)


def verify(source: EvidenceSource, ref: str | bytes | ArtefactRef, *,
           expect_chain_id: int | None = None,
           expect_contracts: Mapping[str, str] | None = None) -> VerifyReport:
    """Verify ``ref`` (name, ``0x`` id or :class:`ArtefactRef`) from ``source``.

    ``expect_chain_id`` and ``expect_contracts`` pin what the verifier trusts (for a bundle,
    what the consumer knows independently); without them the source's own claims are used."""
    lin = Lineage(source)
    target = lin.key(ref)
    attrs = lin.graph.nodes[target]
    report = VerifyReport(
        {"lifecycle": target.lifecycle, "id": target.id, "name": lin.name(target),
         "version": target.version, "state": attrs["state"]},
        source.describe(),
    )
    scope = verification_scope(lin, target)
    lifecycles = sorted({k.lifecycle for k in scope})
    checks = report.checks
    checks += _check_chain(source, lifecycles, expect_chain_id, expect_contracts)
    for lc in lifecycles:
        checks += _check_replay(source, lc, lin)
    checks += _check_versions(source, lin, scope)
    checks += _check_blobs(source, lin, scope)
    checks += _check_records(lin, scope)
    checks += _check_lineage(lin, scope)
    return report


def verification_scope(lin: Lineage, target: VersionKey) -> list[VersionKey]:
    """The versions whose evidence verifying ``target`` needs: its ancestors and itself."""
    return [*lin.ancestors(target), target]


# -- chain and contracts ---------------------------------------------------------------------------
def _check_chain(source: EvidenceSource, lifecycles: Sequence[str], expect_chain_id: int | None,
                 expect_contracts: Mapping[str, str] | None) -> list[Check]:
    out = []
    cid = source.chain_id
    if expect_chain_id is None:
        out.append(Check("chain", True, f"chain id {cid} (as the source claims; pin it with "
                                        "--expect-chain-id to check it)"))
    elif cid == expect_chain_id:
        out.append(Check("chain", True, f"chain id {cid}, as pinned"))
    else:
        out.append(Check("chain", False, f"the source's events claim chain id {cid}, not the "
                                         f"pinned {expect_chain_id}: these events are from "
                                         "another chain; get the evidence from the right chain"))
    for lc in lifecycles:
        addr = source.contracts.get(lc)
        if addr is None:
            out.append(Check("chain", False, f"the source names no {lc} contract; the evidence "
                                             "is incomplete: rebuild it"))
            continue
        problems = []
        pinned = (expect_contracts or {}).get(lc)
        if pinned is not None and pinned.lower() != addr.lower():
            problems.append(f"the source's {lc} contract is {addr}, not the pinned {pinned}: "
                            "a look-alike contract can emit any events; use evidence from the "
                            "pinned contract")
        foreign = [ce for ce in source.events(lc) if ce.address.lower() != addr.lower()]
        if foreign:
            problems.append(f"{len(foreign)} {lc} event(s) come from {foreign[0].address}, not "
                            f"the {lc} contract {addr} (first in block {foreign[0].block}); "
                            "ignore them and rebuild the evidence from the contract")
        fp = source.deployed_fingerprint(lc)
        want = source.irs[lc].fingerprint()
        if fp is None:
            problems.append(f"no {lc} lifecycle contract answers at {addr}: check the address")
        elif fp != want:
            problems.append(f"the {lc} contract at {addr} reports IR fingerprint {fp}, but the "
                            f"rules replayed are {want}: get the IR the contract was generated "
                            "from")
        if problems:
            out += [Check("chain", False, p) for p in problems]
        else:
            claim = (" (pinned)" if pinned else
                     f" (as the source claims; anyone can deploy a {lc} contract of their own: "
                     f"pin yours with --expect-contract {lc}=0xADDR to check it)")
            out.append(Check("chain", True, f"{lc} contract {addr}{claim}: every {lc} event is "
                             f"its own, IR fingerprint {want[:16]}"))
    return out


# -- replay under the lifecycle rules --------------------------------------------------------------
def _actor(ev: LifecycleEvent) -> str:
    if isinstance(ev, Registered):
        return ev.registrant
    if isinstance(ev, Transitioned):
        return ev.actor
    if isinstance(ev, Approved):
        return ev.approver
    if isinstance(ev, GovProposed):
        return ev.proposer
    if isinstance(ev, GovVoted):
        return ev.voter
    return ev.sender


def _describe(ir: LifecycleIR, ev: LifecycleEvent, lin: Lineage) -> str:
    def art(aid: bytes, version: int | None = None) -> str:
        name = lin.names.get((ir.name, "0x" + aid.hex()))
        v = f" v{version}" if version is not None else ""
        return f"{ir.name} {name or '0x' + aid.hex()[:12] + '...'}{v}"

    def tname(i: int) -> str:
        return ir.transitions[i].name if 0 <= i < len(ir.transitions) else f"#{i}"

    def rname(i: int) -> str:
        return ir.roles[i].name if 0 <= i < len(ir.roles) else f"#{i}"

    if isinstance(ev, Registered):
        return f"registration of {art(ev.id, 1)} by {ev.registrant}"
    if isinstance(ev, Transitioned):
        return f"{tname(ev.transition)} of {art(ev.id, ev.version)} by {ev.actor}"
    if isinstance(ev, Approved):
        return (f"approval {ev.count} of {tname(ev.transition)} on {art(ev.id, ev.version)} by "
                f"{ev.approver}")
    if isinstance(ev, RoleGranted):
        return f"grant of {rname(ev.role)} to {ev.account} by {ev.sender}"
    if isinstance(ev, GovProposed):
        return f"consortium proposal {ev.id} (kind {ev.kind}) by {ev.proposer}"
    if isinstance(ev, GovVoted):
        return f"vote {ev.count} on consortium proposal {ev.id} by {ev.voter}"
    if isinstance(ev, GovExecuted):
        return f"execution of consortium proposal {ev.id} by {ev.sender}"
    return f"revocation of {rname(ev.role)} from {ev.account} by {ev.sender}"


def _difference(ir: LifecycleIR, chain: Sequence[LifecycleEvent],
                rules: Sequence[LifecycleEvent]) -> str:
    """What differs between the chain's events and those the rules give (their descriptions
    may be the same: a state, digest or locator is not in them)."""
    if len(chain) != len(rules):
        return f"{len(chain)} event(s) on chain, {len(rules)} by the rules"
    for a, b in zip(chain, rules, strict=True):
        if type(a) is not type(b):
            return f"a {type(a).__name__} on chain, a {type(b).__name__} by the rules"
        names = [f.name for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)]
        if names:
            return "; ".join(f"{type(a).__name__} {n}: the chain's {_arg(ir, n, getattr(a, n))}, "
                             f"the rules' {_arg(ir, n, getattr(b, n))}" for n in names)
    return "the same events in another order"


def _arg(ir: LifecycleIR, name: str, v: Any) -> str:
    """An event argument as a person reads it: a state index with its state's name."""
    if name in ("state", "source", "target") and 1 <= v <= len(ir.states):
        return f"{v} ({ir.state_by_index(v).name})"
    if isinstance(v, bytes):
        return "0x" + v.hex()
    if isinstance(v, tuple):
        return "[" + ", ".join("0x" + x.hex() for x in v) + "]"
    return repr(v)


_MISSING = object()


class _Saved:
    """The few interpreter entries one call may touch, to undo it if it disagrees."""

    def __init__(self) -> None:
        self.entries: list[tuple[dict[Any, Any], Any, Any]] = []

    def keep(self, table: dict[Any, Any], key: Any) -> None:
        v = table.get(key, _MISSING)
        self.entries.append((table, key, list(v) if isinstance(v, list) else v))

    def restore(self) -> None:
        for table, key, v in reversed(self.entries):
            if v is _MISSING:
                table.pop(key, None)
            else:
                table[key] = v


def _apply_facts(interp: Interpreter, ir: LifecycleIR, evs: Sequence[LifecycleEvent]) -> None:
    """Make the interpreter follow the chain after a disagreement (as ``replay`` does), so one
    bad transaction is reported once rather than cascading."""
    sod = {ir.transition(n).index for n in ir.sod_targets}
    for ev in evs:
        apply_event(interp, ev, sod)
        interp.events.append(ev)


def _call_for(interp: Interpreter, ir: LifecycleIR, evs: Sequence[LifecycleEvent],
              saved: _Saved) -> Callable[[], object]:
    """The interpreter call that should have produced ``evs`` (one transaction's events)."""
    head = evs[0]
    if isinstance(head, GovProposed | GovVoted | GovExecuted):  # consortium governance
        saved.keep(interp.__dict__, "epoch")
        saved.keep(interp.proposals, head.id)
        for d in list(interp.members):
            saved.keep(interp.members, d)
        if isinstance(head, GovProposed):
            saved.keep(interp.members, head.domain)
            return lambda: interp.propose(head.proposer, head.kind, head.domain, head.account,
                                          head.roles)
        if isinstance(head, GovVoted):
            return lambda: interp.vote(head.voter, head.id)
        return lambda: interp.execute(head.sender, head.id)
    if isinstance(head, RoleGranted):
        saved.keep(interp.roles, head.account)
        saved.keep(interp.domains, head.account)
        return lambda: interp.grant(head.sender, head.role, head.account, head.domain)
    if isinstance(head, RoleRevoked):
        saved.keep(interp.roles, head.account)
        return lambda: interp.revoke(head.sender, head.role, head.account)
    if isinstance(head, Registered):
        saved.keep(interp.records, artefact_id(head.registrant, head.salt))
        return lambda: interp.register(head.registrant, head.salt, head.digest, head.locator,
                                       head.inputs)
    t = ir.transitions[head.transition]  # IndexError for an unknown transition
    saved.keep(interp.records, head.id)
    for n in ir.sod_targets:
        saved.keep(interp.last_actor, (head.id, ir.transition(n).index))
    version = interp.records.get(head.id, (0, 0))[1]
    if isinstance(head, Approved):
        saved.keep(interp.approvers, approval_key(head.id, t.index, version, head.digest))
        fired = next((e for e in evs if isinstance(e, Transitioned)), None)
        locator, inputs = (fired.locator, fired.inputs) if fired else ("", ())
        return lambda: interp.fire(head.approver, t.name, head.id, head.digest, locator, inputs)
    assert isinstance(head, Transitioned)
    return lambda: interp.fire(head.actor, t.name, head.id, head.digest, head.locator,
                               head.inputs)


def _group_by_tx(events: Sequence[ChainEvent]) -> list[list[ChainEvent]]:
    groups: list[list[ChainEvent]] = []
    for ce in events:
        if groups and groups[-1][0].tx_hash == ce.tx_hash:
            groups[-1].append(ce)
        else:
            groups.append([ce])
    return groups


_DISTRUST = ("do not trust this artefact's history from that transaction on; check the "
             "contract address against the one you trust (a look-alike contract can emit any "
             "events) and where this evidence came from")


def _check_replay(source: EvidenceSource, lc: str, lin: Lineage) -> list[Check]:
    name = f"replay {lc}"
    ir = source.irs[lc]
    events = source.events(lc)
    if not events:
        return [Check(name, False, f"the {lc} contract has no events; the evidence is "
                                   "incomplete: rebuild it from the chain")]
    groups = _group_by_tx(events)
    first = groups[0][0]
    ev0 = first.event
    if not (isinstance(ev0, RoleGranted) and ev0.role == 0 and ev0.account == ev0.sender
            and (not first.sender or first.sender == ev0.sender)):
        return [Check(name, False, f"the first {lc} event (block {first.block}) is not the "
                                   "deployer's admin grant; the event list does not start at the "
                                   f"contract's deployment: {_DISTRUST}")]
    interp = Interpreter(ir, ev0.account, ev0.domain)
    problems: list[str] = []
    n_tx = 0
    for i, group in enumerate(groups):
        if i == 0:  # the constructor's events: the admin grant (and a consortium's founding)
            group = [ce for ce in group[1:]
                     if not (isinstance(ce.event, GovExecuted) and ce.event.id == 0)]
        if not group:
            continue
        n_tx += 1
        ce0 = group[0]
        evs = [ce.event for ce in group]
        what = _describe(ir, evs[-1] if len(evs) > 1 else evs[0], lin)
        where = f"block {ce0.block}, tx 0x{ce0.tx_hash.hex()}"
        actor = _actor(evs[0])
        if ce0.sender and actor != ce0.sender:
            problems.append(f"{where}: the {what} names {actor} but the transaction was signed "
                            f"by {ce0.sender}: {_DISTRUST}")
        before = len(interp.events)
        saved = _Saved()
        try:
            call = _call_for(interp, ir, evs, saved)
            call()
        except (ProMLError, TypeError, ValueError, KeyError, IndexError) as exc:
            saved.restore()
            del interp.events[before:]
            _apply_facts(interp, ir, evs)
            problems.append(f"{where}: the {what} is on chain, but the {lc} rules refuse it "
                            f"({type(exc).__name__}: {exc}): {_DISTRUST}")
            continue
        produced = interp.events[before:]
        if produced != evs:
            saved.restore()
            del interp.events[before:]
            _apply_facts(interp, ir, evs)
            got = "; ".join(_describe(ir, e, lin) for e in produced) or "no event"
            want = "; ".join(_describe(ir, e, lin) for e in evs)
            problems.append(f"{where}: the chain records [{want}] but the {lc} rules give "
                            f"[{got}] for that call ({_difference(ir, evs, produced)}): "
                            f"{_DISTRUST}")
    if problems:
        return [Check(name, False, p) for p in problems]
    return [Check(name, True, f"{n_tx} transactions ({len(events)} events) replay under the {lc} "
                              "rules: roles, separation of duty, approvals and versions as the "
                              "reference interpreter gives them, each signed by its actor")]


# -- versions --------------------------------------------------------------------------------------
def _check_versions(source: EvidenceSource, lin: Lineage, scope: Sequence[VersionKey]
                    ) -> list[Check]:
    out = []
    arts = sorted({(k.lifecycle, k.id) for k in scope})
    for lc in sorted({lc for lc, _ in arts}):
        events = source.events(lc)
        disorder = [ce for a, ce in itertools.pairwise(events)
                    if ce.position <= a.position or ce.timestamp < a.timestamp]
        if disorder:
            ce = disorder[0]
            out.append(Check("versions", False, f"{lc} events are not in chain order (block "
                                                f"{ce.block}, log {ce.log_index} comes too late "
                                                "or goes back in time); the evidence was "
                                                "reordered: rebuild it from the chain"))
    for lc, aid in arts:
        raw = bytes.fromhex(aid[2:])
        label = f"{lc} {lin.names.get((lc, aid)) or aid}"
        current = 0
        problems = []
        for ce in source.events(lc):
            ev = ce.event
            if isinstance(ev, Registered) and ev.id == raw:
                if current:
                    problems.append(f"{label} is registered again in block {ce.block}")
                current = 1
            elif isinstance(ev, Transitioned) and ev.id == raw:
                if ev.version != current + 1:
                    problems.append(f"{label}: block {ce.block} records version {ev.version} "
                                    f"after version {current}; the contract assigns "
                                    f"{current + 1}")
                current = ev.version
            elif isinstance(ev, Approved) and ev.id == raw and ev.version != current:
                problems.append(f"{label}: an approval in block {ce.block} names version "
                                f"{ev.version} while version {current} was current")
        if problems:
            out += [Check("versions", False, p + "; the history was altered: do not use the "
                                                  "versions after it") for p in problems]
        else:
            out.append(Check("versions", True, f"{label}: versions 1..{current} in chain order, "
                                               "as the contract assigns them"))
    return out


# -- blobs, records, lineage -----------------------------------------------------------------------
def evidence_digests(lin: Lineage, scope: Sequence[VersionKey]) -> dict[str, list[str]]:
    """Every blob digest behind the versions in ``scope`` -> what each is (evidence, approval
    evidence, a record's outputs, input files and code), in chain order."""
    roles: dict[str, list[str]] = {}

    def need(digest: str | None, role: str) -> None:
        if digest and role not in roles.setdefault(digest, []):
            roles[digest].append(role)

    for key in scope:
        a = lin.graph.nodes[key]
        label = lin.label(key)
        need(a["digest"], f"evidence of {label}")
        for ap in a["approvers"] + a["pending"]:
            need(ap.get("digest"), f"approval evidence of {label}")
        rec = lin.records.get(key)
        if rec is not None:
            for f in rec.outputs:
                need(f.sha256, f"output {f.name} of {label}")
            for f in rec.input_files:
                need(f.sha256, f"input file {f.name} of {label}")
            if rec.code is not None:
                need(rec.code.sha256, f"code {rec.code.name} of {label}")
    return roles


def _check_blobs(source: EvidenceSource, lin: Lineage, scope: Sequence[VersionKey]
                 ) -> list[Check]:
    roles = evidence_digests(lin, scope)
    out = []
    for digest, what in roles.items():
        ok, detail = source.check_blob(digest)
        names = ", ".join(what)
        if ok:
            out.append(Check("blob", True, f"{names}: {digest[:16]}... {detail}"))
        else:
            out.append(Check("blob", False, f"{names}: blob {digest} {detail}"))
    return out


def _check_records(lin: Lineage, scope: Sequence[VersionKey]) -> list[Check]:
    out = []
    for key in scope:
        rec = lin.records.get(key)
        if rec is None:
            continue
        a = lin.graph.nodes[key]
        label = lin.label(key)
        problems = []
        if rec.lifecycle != key.lifecycle:
            problems.append(f"is for lifecycle {rec.lifecycle}, not {key.lifecycle}")
        if rec.step != a["step"]:
            problems.append(f"describes step {rec.step!r}, but the transaction is "
                            f"{a['step']!r}")
        if a["step"] == "register":
            if lin.names.get((key.lifecycle, key.id)) is None:
                problems.append(f"names the artefact {rec.name!r}, whose registration salt is "
                                "not this artefact's")
        elif (rec.artefact or "").lower() != key.id:
            problems.append(f"is about artefact {rec.artefact}, not {key.id}")
        if rec.actor.lower() != str(a["actor"]).lower():
            problems.append(f"claims actor {rec.actor}, but the transaction was signed by "
                            f"{a['actor']}")
        if problems:
            out += [Check("record", False, f"the record of {label} ({a['digest']}) {p}: the "
                                           "record does not describe this transaction; treat "
                                           "its contents as unverified") for p in problems]
        else:
            out.append(Check("record", True, f"{label}: the record matches its transaction "
                                             f"({a['step']} by {a['actor']}"
                                             f"{' in ' + a['domain'] if a['domain'] else ''})"))
    return out


def _outputs_of(lin: Lineage, key: VersionKey, by_digest: Mapping[str, Record]
                ) -> tuple[Record | None, str | None]:
    """The record holding ``key``'s evidence (its own, or the latest earlier one) and that
    evidence digest."""
    evidence = lin.graph.nodes[key]["evidence"]
    return (by_digest.get(evidence) if evidence else None), evidence


def _check_lineage(lin: Lineage, scope: Sequence[VersionKey]) -> list[Check]:
    out = []
    in_scope = set(scope)
    by_digest = {lin.graph.nodes[k]["digest"]: r for k, r in lin.records.items()}
    # each artefact's versions the graph holds, latest first: a version number is the
    # evidence's claim (a forged one may be 10^40), so it is looked up, never counted down
    held: dict[tuple[str, str], list[int]] = {}
    for k in sorted(lin.graph, key=lambda k: -k.version):
        held.setdefault((k.lifecycle, k.id), []).append(k.version)
    for c in lin.conflicts:
        if c.key in in_scope:
            out.append(Check("lineage", False, f"{c.message}: the record and the chain disagree "
                                               "on what the step consumed; re-record the step "
                                               "with its real inputs"))
    for key in scope:
        rec = lin.records.get(key)
        if rec is None:
            continue
        label = lin.label(key)
        problems: list[str] = []
        allowed: dict[str, str] = {}
        consumed = []
        sources = [u.input for u in lin.uses.get(key, [])]
        if key.version > 1:
            sources.append(VersionKey(key.lifecycle, key.id, key.version - 1))
        for use in lin.uses.get(key, []):
            inp = use.input
            consumed.append(lin.label(inp))
            chain_ev = lin.graph.nodes[inp]["evidence"]
            if use.record_evidence is not None and use.record_evidence != (chain_ev or "0" * 64):
                problems.append(
                    f"{label} says it consumed {lin.label(inp)} with evidence "
                    f"{use.record_evidence}, but that version's on-chain evidence is {chain_ev}: "
                    "the step consumed bytes the chain never recorded for that version; "
                    "re-record the step with the input's current evidence")
        # an input artefact keeps what its history produced: files output by the consumed
        # version or by any earlier version of the same artefact are legitimate inputs
        history = [VersionKey(s.lifecycle, s.id, v) for s in sources
                   for v in held.get((s.lifecycle, s.id), []) if v <= s.version]
        for src in dict.fromkeys(history):
            if src not in lin.graph:
                continue
            src_rec, ev = _outputs_of(lin, src, by_digest)
            if src_rec is None:
                if ev is not None and rec.input_files and src in sources:
                    problems.append(f"cannot check {label}'s input files: the record of "
                                    f"{lin.label(src)} ({ev}) is unavailable; restore that blob")
                continue
            for f in src_rec.outputs:
                allowed.setdefault(f.sha256, f"{f.name} of {lin.label(src)}")
        external = not lin.uses.get(key) and not allowed
        for f in rec.input_files:
            if external or f.sha256 in allowed:
                continue
            outs = "; ".join(sorted(set(allowed.values()))) or "none"
            problems.append(
                f"{label}: input file {f.name} ({f.sha256}) is not an output of its input "
                f"artefacts at the versions consumed (their outputs: {outs}): step n+1 consumed "
                "something step n did not produce; re-record the step with the input "
                "artefact's file, or register that file as an artefact of its own")
        if problems:
            out += [Check("lineage", False, p) for p in problems]
        elif consumed or rec.input_files:
            files = ", ".join(f.name for f in rec.input_files)
            made_by = sorted({allowed[f.sha256].split(" of ", 1)[1] for f in rec.input_files
                              if f.sha256 in allowed})
            text = f"{label} consumed {', '.join(consumed) or 'no input artefact'}"
            text += " as recorded" if consumed else ""
            if files:
                text += (f"; its input files ({files}) are external inputs" if external else
                         f"; its input files ({files}) are outputs of {', '.join(made_by)}")
            out.append(Check("lineage", True, text))
    return out
