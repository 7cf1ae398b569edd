"""Property-based threat tests: honest and malicious actors against one lifecycle contract.

:func:`threat_machine` builds a hypothesis :class:`~hypothesis.stateful.RuleBasedStateMachine`
for a compiled lifecycle (any :class:`~proml_sim.compiler.CompiledContract` that carries its
IR, a :class:`~proml_sim.chain.client.CompiledLayout`, or a *mutant*: a modified source
compiled against the same IR, see :mod:`proml_sim.threats.mutants`) in one contract layout, on
an in-process py-evm chain.  Its rules mix honest work with attacks:

* **wrong roles** (an outsider or an insider without the step's role), **wrong states**
  (rollbacks: moving an artefact where its state does not allow), **missing evidence**,
  **separation of duty** broken by the actor of the conflicting step;
* **stolen keys**: an attacker signing with a victim's key, before and after the admin revokes
  the victim; a stolen approver's approval followed by revocation and an honest approval;
* **replays**: re-submitting an already-mined signed raw transaction (same chain, and a twin
  chain with another chain id), approving the same thing twice;
* **rollbacks and stale approvals**: approvals given for an earlier version reused after the
  artefact moved on; a caller-chosen version (fast-forward or back) through a call that adds a
  ``version`` argument;
* **mix-and-match tuples**: approvals over different evidence digests (the evaluation of
  version N+1 with the model of version N) must never add up;
* **Sybil approvers**: a second approver account in a trust domain that already approved;
* **spam**: bursts of junk registrations in one block, with an honest operation behind them;
* **phishing**: a role holder tricked into calling a malicious relay contract that calls the
  lifecycle (with ``msg.sender`` authorisation the relayed call must fail);
* **roles held by a contract account**: a wallet contract (as a multisig would) holds every role
  but the admin's and registers, approves and steps, each call signed by a drawn account: the
  actor is the wallet (``msg.sender``), whoever signed (``tx.origin``, which must count for
  nothing: not for roles, approvals, trust domains, separation of duty or what is stored);
* **re-calling the clone initialiser** (clone layout);
* **hidden entry points**: each contract's own ABI must be the interface generated from the IR
  (:func:`interface_violations`): a function the published ABI does not list is never called
  by honest clients or by these rules, so an extra setter or fallback would go unseen.

Every operation also runs on the reference :class:`~proml_sim.ir.Interpreter` (with the same
sender: the relay's address for relayed calls), and the outcome must be the same (same result,
or same exception type and message).  After every step the chain is audited **from chain data
only** (events, receipts, storage views), independently of the interpreter:
:func:`audit_events` replays the event log and checks who acted, thresholds, versions, states,
evidence and separation of duty at each event's point of the chain; the log is append-only; and
``replay(events)`` equals the contract storage read through views.  The properties are listed in
:data:`PROPERTIES`.

:func:`run_threat_properties` runs the machine programmatically (seeded, no example database)
and reports the first falsifying step as text.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.reporting import with_reporter
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from proml_sim.chain import ContractABI, KeyRing, PyEVMBackend, Receipt, TxSender, encode_call
from proml_sim.chain.client import (
    LATER_GAS,
    CompiledLayout,
    LifecycleClient,
    compile_layout,
    layout_of,
)
from proml_sim.chain.trie import keccak
from proml_sim.codegen import generate_vyper
from proml_sim.compiler import CompiledContract, compile_source
from proml_sim.errors import EngineError, lifecycle_error_from_reason
from proml_sim.ir import (
    MAX_APPROVERS,
    MAX_DOMAINS,
    PROPOSAL_KINDS,
    ZERO32,
    Approved,
    GovExecuted,
    GovProposed,
    GovVoted,
    Interpreter,
    LifecycleEvent,
    LifecycleIR,
    LifecycleSnapshot,
    Registered,
    RoleGranted,
    RoleRevoked,
    Transitioned,
    TransitionIR,
    approval_key,
    artefact_id,
    history_from_events,
    replay,
)
from proml_sim.ir.events import ZERO_ADDRESS, apply_governance
from proml_sim.ir.strategies import passable_proposal

__all__ = [
    "PROPERTIES",
    "GuardCoverage",
    "PropertyResult",
    "PropertyViolation",
    "Violation",
    "audit_events",
    "budget_guards",
    "guard_coverage",
    "guard_reasons",
    "interface_violations",
    "prepare_layout",
    "run_threat_properties",
    "storage_snapshot",
    "threat_machine",
    "unreachable_guards",
]

#: The properties, in the order a failing step reports them: checks on chain data first (the
#: event audit, then storage against the replayed log), then attacks that must be refused, then
#: the lock-step comparison with the reference interpreter.
PROPERTIES: dict[str, str] = {
    "ids": "every Transitioned/Approved names a registered artefact; a Registered id is "
           "keccak(registrant ++ salt) and is registered once",
    "role-admin": "every RoleGranted/RoleRevoked (after the constructor's) was sent by a holder "
                  "of that role's admin role at that point of the chain; in a consortium by the "
                  "admin of the account's domain (or a holder of the role's admin role in it), "
                  "for a role that domain may hold, never binding another domain's account",
    "governance": "in a consortium, every proposal is opened and voted by the admin of a member "
                  "domain (one vote per domain), and executed only with a quorum of member "
                  "domains' votes in the epoch it was proposed in (executing expires the "
                  "others); a removed domain's accounts hold no usable role",
    "role-holder": "every Registered/Transitioned/Approved was made by an account holding one of "
                   "the step's roles at that point (roles replayed from RoleGranted/RoleRevoked)",
    "revoked-key": "nothing is accepted from an account after the revocation of the role the "
                   "step needs",
    "threshold": "a k-of-n transition fires only when k distinct valid approvers (distinct "
                 "trust domains when counting domains) approved the same version and digest; "
                 "approvers revoked since do not count; nobody approves the same thing twice; "
                 "each Approved count is that recomputed count",
    "versions": "versions start at 1, each Transitioned is the artefact's version + 1, "
                "approvals are for the current version: the contract assigns versions",
    "source-state": "each Transitioned leaves the artefact's current state, which is a source of "
                    "the transition, for its target; approvals only from a source state",
    "evidence": "steps that need evidence carry a non-zero digest",
    "separation-of-duty": "the actor of a step named in separate_from (the domain of that "
                          "actor, for separate_domain_from) never does the separated step on "
                          "the same artefact",
    "append-only": "the event log (and so each artefact's history) of an earlier step is a "
                   "prefix of the log of every later step",
    "replay": "replay(events) equals the contract storage read through its views; every other "
              "view of the published interface agrees with it (artefact_id of each "
              "registration, artefact_of, effective_roles, IR_FINGERPRINT)",
    "raw-replay": "a signed raw transaction that was mined is refused when submitted again",
    "chain-id": "a signed raw transaction is refused by a chain with another chain id",
    "caller-version": "a call that passes its own version argument is refused",
    "initialiser": "a clone's initialize cannot be called again (or by anyone but its factory)",
    "interface": "each deployed contract has exactly the entry points (functions with their "
                 "argument types and mutability, fallback) and events of the interface generated "
                 "from the IR: nothing callable that the published ABI hides",
    "one-artefact": "a factory or clone layout's artefact contract refuses a step on another "
                    "artefact's id (it would log, or change state, in that artefact's name) "
                    "and its views know nothing of that id",
    "events": "the event log equals the reference interpreter's, field by field (what each "
              "record carries: registrant, actor, digest, locator, inputs, counts, domains)",
    "lock-step": "every call has the reference interpreter's outcome (same result, or same "
                 "exception type and message), and storage equals the interpreter's state",
    "error": "the machine itself raised (a suite bug, or a contract the client cannot drive)",
}
_PRIORITY = {name: i for i, name in enumerate(PROPERTIES)}


@dataclass(frozen=True)
class Violation:
    """One broken property: its name (a key of :data:`PROPERTIES`) and what was seen."""

    prop: str
    message: str

    def __str__(self) -> str:
        return f"[{self.prop}] {self.message}"


class PropertyViolation(AssertionError):
    """Properties broken by one step, most specific first (the order of :data:`PROPERTIES`)."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations = tuple(sorted(violations, key=lambda v: _PRIORITY.get(v.prop, 99)))
        super().__init__("\n".join(str(v) for v in self.violations))

    @property
    def prop(self) -> str:
        return self.violations[0].prop


@dataclass(frozen=True)
class PropertyResult:
    """What :func:`run_threat_properties` found.

    ``examples``: examples run (on a failure: the example that failed first, counting from 1);
    ``prop``: the first broken property of the failing step, ``props`` all of them;
    ``failure``: their messages and the falsifying steps, as text.
    """

    passed: bool
    failure: str | None
    examples: int
    prop: str | None = None
    props: tuple[str, ...] = ()
    seconds: float = 0.0
    #: revert reason -> how many examples (generated sequences) had a transaction mined that
    #: reverted with it (the guards the suite made fail)
    guard_hits: dict[str, int] = dataclasses.field(default_factory=dict)


_GUARD = re.compile(r'(?:assert\s.*?,|raise)\s*"((?:[^"\\]|\\.)*)"')


def guard_reasons(source: str) -> dict[str, int]:
    """Every guard of a generated contract, by revert reason: reason -> number of ``assert``
    (or ``raise``) sites carrying it in ``source``."""
    out: dict[str, int] = {}
    for m in _GUARD.finditer(source):
        out[m.group(1)] = out.get(m.group(1), 0) + 1
    return out


def contract_sources(compiled: CompiledContract | CompiledLayout,
                     layout: str | None = None) -> dict[str, str]:
    """The Vyper sources of the contracts a layout deploys (name -> source)."""
    bundle = prepare_layout(compiled, layout)
    out = {bundle.main.name: bundle.main.source}
    if bundle.artefact is not None:
        out[f"{bundle.artefact.name} (artefact)"] = bundle.artefact.source
    return out


def unreachable_guards(ir: LifecycleIR) -> dict[str, str]:
    """Guards no call can make fail, by revert reason, each with the argument why.

    A separation-of-duty guard of step ``t`` against step ``o`` can only fail on an artefact
    on which ``o`` was done; when no transition leads from ``o``'s target back to a source of
    ``t``, the state guard (checked before it in the generated code) refuses ``t`` first, so
    the separation guard never fails (it stays as a defence in depth).  In a consortium of
    quorum 1 the quorum guard of an execution never fails either."""
    from proml_sim.ir import messages as msg

    def reachable(start: str) -> set[str]:
        seen, todo = {start}, [start]
        while todo:
            s0 = todo.pop()
            for u in ir.transitions:
                if s0 in u.sources and u.target not in seen:
                    seen.add(u.target)
                    todo.append(u.target)
        return seen

    out: dict[str, str] = {}
    for t in ir.transitions:
        for other, err in [*((o, msg.separation(ir, t, o)) for o in t.separate_from),
                           *((o, msg.domain_separation(ir, t, o))
                             for o in t.separate_domain_from)]:
            target = ir.transition(other).target
            if reachable(target).isdisjoint(t.sources):
                out[str(getattr(err, "reason", err))] = (
                    f"after {other} the artefact is in {target}, from which no transition "
                    f"leads back to a source of {t.name} ({'|'.join(t.sources)}): the state "
                    "guard, checked first, always refuses it")
    if ir.consortium is not None and ir.consortium.quorum <= 1:
        err = msg.quorum_not_reached(ir)
        out[str(getattr(err, "reason", err))] = (
            "the quorum is 1 and the proposer's domain votes for its proposal as it opens it; "
            "a proposal is executable until any execution (the only way members change) "
            "closes it: it never has fewer votes than the quorum")
    return out


def budget_guards(ir: LifecycleIR) -> dict[str, str]:
    """Guards a call can make fail, but no generated sequence within the suite's budget does,
    by revert reason, each with the reason (not equivalent: their mutants are run)."""
    from proml_sim.ir import messages as msg

    if ir.consortium is None:
        return {}
    full = msg.consortium_full(ir)
    return {str(getattr(full, "reason", full)): (
        f"reachable only after {MAX_DOMAINS - 1} admissions by quorum (about "
        f"{3 * (MAX_DOMAINS - 1)} transactions, each domain with an admin key of its own), "
        "beyond a generated sequence's budget; checked once per run by the capacity probe")}


def capacity_probe(contracts: CompiledLayout) -> list[Violation]:
    """The consortium's member cap, checked once per run (not per example: it takes some 770
    transactions): a fresh deployment admits domains by quorum until the reference
    interpreter refuses one (the 256th admission), in lock-step with the reference.  A cap
    moved either way, or its guard weakened or removed, shows as a different outcome.  The
    first quorum-1 admitted domains get admin keys of their own (they vote); the rest get
    fresh addresses that never sign."""
    ir = contracts.ir
    quorum = ir.consortium.quorum if ir.consortium is not None else 0
    keys = KeyRing.from_seed("capacity-probe", max(quorum, 1))
    voters = [keys.signer(a) for a in keys.addresses]
    founder = voters[0]
    backend = PyEVMBackend(funded=list(keys.addresses))
    client = LifecycleClient.deploy(backend, contracts, founder, DOMAINS[0])
    batch = LifecycleClient(backend, contracts, client.address, automine=False)
    ref = Interpreter(ir, founder.address, DOMAINS[0])
    found: list[Violation] = []
    # (kind, args, members before the call, the reference's outcome, the pending call); the
    # block builder keeps arrival order among equal tips, so a batch runs in sending order
    ops: list[tuple[str, tuple[Any, ...], int, tuple[str, Any], Any]] = []

    def send(signer: Any, kind: str, *args: Any) -> tuple[str, Any]:
        members = len(ref.members)
        expected = _outcome(getattr(ref, kind), signer.address, *args)
        ops.append((kind, args, members, expected,
                    getattr(batch, kind)(signer, *args, gas=400_000)))
        return expected

    def settle() -> None:
        backend.produce_block()
        for kind, args, members, expected, op in ops:
            actual = _outcome(batch.result, op)
            if actual != expected and not found:
                found.append(Violation("lock-step", (
                    f"member cap: {kind}({', '.join(_show(a) for a in args)}) with "
                    f"{members} members: contract gave {_show(actual)}, the reference "
                    f"interpreter {_show(expected)}")))
        ops.clear()

    for j in range(1, MAX_DOMAINS + 1):
        admin = (voters[j].address if j < len(voters)
                 else to_checksum_address(keccak(b"capacity-probe admin %d" % j)[-20:]))
        status, pid = send(founder, "propose", "add_domain",
                           keccak(b"capacity-probe domain %d" % j), admin, 0)
        if status == "ok":
            for voter in voters[1:ref.quorum()]:
                send(voter, "vote", pid)
            send(founder, "execute", pid)
        if j % 30 == 0 or status != "ok":
            settle()
        if status != "ok" or found:
            break
    settle()
    return found


@dataclass(frozen=True)
class GuardCoverage:
    """Per guard (revert reason) of the deployed contracts: how many generated sequences made
    it fail (``hits``), out of ``examples``; ``missed`` lists the guards never hit."""

    lifecycle: str
    layout: str
    examples: int
    guards: dict[str, int]  # reason -> assert sites
    hits: dict[str, int]  # reason -> sequences that hit it (guards only)
    suite_passed: bool

    #: guards no call can make fail (reason -> why, :func:`unreachable_guards`), and those
    #: beyond the budget (:func:`budget_guards`): not missed
    unreachable: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def missed(self) -> list[str]:
        return sorted(r for r in self.guards
                      if not self.hits.get(r) and r not in self.unreachable)

    @property
    def excused(self) -> list[str]:
        """Guards no sequence hit because none can (each with its reason in ``unreachable``)."""
        return sorted(r for r in self.guards if not self.hits.get(r) and r in self.unreachable)

    @property
    def hit(self) -> int:
        """How many guards some sequence made fail."""
        return sum(1 for r in self.guards if self.hits.get(r))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"lifecycle": self.lifecycle, "layout": self.layout, "examples": self.examples,
                "suite_passed": self.suite_passed, "missed": self.missed,
                "guards": [{"reason": r, "sites": n, "sequences": self.hits.get(r, 0),
                            "unreachable": self.unreachable.get(r)}
                           for r, n in sorted(self.guards.items())]}


def guard_coverage(compiled: CompiledContract | CompiledLayout, layout: str | None = None,
                   max_examples: int = 50, seed: int = 0, steps: int = 30) -> GuardCoverage:
    """Run the property suite on the unmutated ``compiled`` and count, per guard of its
    generated contracts, the generated sequences that made it fail."""
    bundle = prepare_layout(compiled, layout)
    guards: dict[str, int] = {}
    for src in contract_sources(bundle).values():
        for r, n in guard_reasons(src).items():
            guards[r] = guards.get(r, 0) + n
    res = run_threat_properties(bundle, max_examples=max_examples, seed=seed, steps=steps)
    return GuardCoverage(bundle.ir.name, bundle.layout, res.examples, guards,
                         {r: n for r, n in res.guard_hits.items() if r in guards}, res.passed,
                         {r: why for r, why in {**unreachable_guards(bundle.ir),
                                                **budget_guards(bundle.ir)}.items()
                          if r in guards})


# -- the event audit (chain data only) ---------------------------------------------------------
def _short(b: bytes) -> str:
    return "0x" + b.hex()[:8]


def audit_events(ir: LifecycleIR, events: Sequence[LifecycleEvent]) -> list[Violation]:
    """Replay a lifecycle's event log in chain order and report every broken property.

    Independent of the interpreter: roles, domains, records, approvals and separation-of-duty
    memory are rebuilt from the events alone, and each event is judged against the state the
    events before it produced.  The first event must be the constructor's admin grant.
    """
    out: list[Violation] = []
    roles: dict[str, int] = {}
    domains: dict[str, bytes] = {}
    revoked: set[tuple[str, int]] = set()  # (account, role) revoked and not granted again
    records: dict[bytes, tuple[int, int]] = {}
    approvals: dict[bytes, list[str]] = {}
    last_actor: dict[tuple[bytes, int], str] = {}
    n_roles = len(ir.roles)
    gov = ir.consortium is not None
    # consortium: member domain -> (roles it may hold, admin); proposal id -> (kind, domain,
    # account, roles, epoch, voting domains); executed proposals so far (the epoch)
    members: dict[bytes, tuple[int, str]] = {}
    proposals: dict[int, tuple[int, bytes, str, int, int, list[bytes]]] = {}
    executed: set[int] = set()
    epoch = 0

    def bad(prop: str, i: int, what: str) -> None:
        out.append(Violation(prop, f"event #{i} {what}"))

    def eff(account: str) -> int:
        """The roles ``account`` can use: in a consortium only those its domain may hold."""
        mask = roles.get(account, 0)
        if not gov:
            return mask
        member = members.get(domains.get(account, ZERO32))
        return mask & member[0] if member is not None else 0

    def holds(account: str, names: tuple[str, ...]) -> bool:
        return bool(eff(account) & ir.role_mask(names))

    def admin_domain(account: str) -> bytes:
        return next((d for d, (_r, a) in members.items() if a == account), ZERO32)

    def managed(sender: str, role: int) -> bytes | None:
        """The domain ``sender`` may grant ``role`` in (consortium), or None."""
        mine = admin_domain(sender)
        if mine != ZERO32:
            return mine
        if holds(sender, (ir.roles[role].admin,)):
            return domains.get(sender, ZERO32)
        return None

    def quorum() -> int:
        assert ir.consortium is not None
        return min(ir.consortium.quorum, len(members))

    def check_actor(i: int, what: str, account: str, names: tuple[str, ...]) -> None:
        if holds(account, names):
            return
        if any((account, ir.role(n).index) in revoked for n in names):
            bad("revoked-key", i, f"{what} by {account}, whose role {'|'.join(names)} was "
                                  "revoked earlier")
        else:
            bad("role-holder", i, f"{what} by {account}, who holds none of {'|'.join(names)}")

    def valid_count(key: bytes, t: TransitionIR) -> int:
        valid = [a for a in approvals.get(key, []) if holds(a, t.by)]
        if t.count == "domains":
            return len({domains.get(a, ZERO32) for a in valid})
        return len(set(valid))

    def check_step(i: int, what: str, ev: Transitioned | Approved, actor: str) -> TransitionIR:
        t = ir.transitions[ev.transition]
        check_actor(i, what, actor, t.by)
        state = records[ev.id][0]
        if ir.state_by_index(state).name not in t.sources:
            bad("source-state", i, f"{what} from state {ir.state_by_index(state).name}, not one "
                                   f"of {'|'.join(t.sources)}")
        if t.evidence and ev.digest == ZERO32:
            bad("evidence", i, f"{what} without an evidence digest")
        for other in t.separate_from:
            if last_actor.get((ev.id, ir.transition(other).index)) == actor:
                bad("separation-of-duty", i, f"{what} by {actor}, who also did {other} on it")
        for other in t.separate_domain_from:
            last = last_actor.get((ev.id, ir.transition(other).index))
            if last is not None and domains.get(last, ZERO32) == domains.get(actor, ZERO32):
                bad("separation-of-duty", i, f"{what} by {actor}, of the domain that did "
                                             f"{other} on it")
        return t

    for i, ev in enumerate(events):
        if isinstance(ev, RoleGranted | RoleRevoked):
            kind = type(ev).__name__
            if ev.role >= n_roles:
                bad("role-admin", i, f"{kind} of unknown role index {ev.role}")
                continue
            name = ir.roles[ev.role].name
            constructor = (i == 0 and isinstance(ev, RoleGranted) and ev.role == 0
                           and ev.account == ev.sender)
            if i == 0 and not constructor:
                bad("role-admin", i, "is not the constructor's admin grant")
            if constructor:
                pass
            elif gov:
                mine = managed(ev.sender, ev.role)
                where = ev.domain if isinstance(ev, RoleGranted) else domains.get(ev.account,
                                                                                  ZERO32)
                if mine is None or mine != where:
                    bad("role-admin", i, f"{kind}({name}, {ev.account}) sent by {ev.sender}, "
                                         "neither the admin of the account's domain nor a "
                                         f"holder of {ir.roles[ev.role].admin} in it")
                elif isinstance(ev, RoleGranted) and (
                        not members.get(mine, (0, ""))[0] & (1 << ev.role)
                        or domains.get(ev.account, ZERO32) not in (ZERO32, mine)
                        or admin_domain(ev.account) not in (ZERO32, mine)):
                    bad("role-admin", i, f"{kind}({name}, {ev.account}) by {ev.sender}: a role "
                                         "its domain may not hold, or another domain's account")
            elif not holds(ev.sender, (ir.roles[ev.role].admin,)):
                bad("role-admin", i, f"{kind}({name}, {ev.account}) sent by {ev.sender}, who "
                                     f"does not hold its admin role {ir.roles[ev.role].admin}")
            bit = 1 << ev.role
            if isinstance(ev, RoleGranted):
                roles[ev.account] = roles.get(ev.account, 0) | bit
                domains[ev.account] = ev.domain
                revoked.discard((ev.account, ev.role))
            else:
                if roles.get(ev.account, 0) & bit:
                    revoked.add((ev.account, ev.role))
                roles[ev.account] = roles.get(ev.account, 0) & ~bit
        elif isinstance(ev, GovProposed):
            what = f"GovProposed(#{ev.id})"
            if admin_domain(ev.proposer) == ZERO32:
                bad("governance", i, f"{what} by {ev.proposer}, the admin of no member domain")
            if ev.id in proposals or ev.id != len(proposals) + 1:
                bad("governance", i, f"{what}: ids are 1, 2, ... in order, each used once")
            if ev.epoch != epoch:
                bad("governance", i, f"{what} in epoch {ev.epoch}; the log is at {epoch}")
            proposals[ev.id] = (ev.kind, ev.domain, ev.account, ev.roles, epoch, [])
        elif isinstance(ev, GovVoted):
            what = f"GovVoted(#{ev.id}, {_short(ev.domain)})"
            p = proposals.get(ev.id)
            if p is None or ev.id in executed or p[4] != epoch:
                bad("governance", i, f"{what}: no open proposal of this epoch")
                continue
            if ev.domain not in members or members[ev.domain][1] != ev.voter:
                bad("governance", i, f"{what} by {ev.voter}, not the admin of that member "
                                     "domain")
            if ev.domain in p[5]:
                bad("governance", i, f"{what}: the domain voted already")
            p[5].append(ev.domain)
            if ev.count != len(p[5]):
                bad("governance", i, f"{what} reports {ev.count} votes; the log shows "
                                     f"{len(p[5])}")
        elif isinstance(ev, GovExecuted):
            what = f"GovExecuted(#{ev.id})"
            if ev.id == 0:  # the constructor founds the consortium
                if i != 1 or members:
                    bad("governance", i, f"{what}: only the constructor founds the consortium")
            else:
                p = proposals.get(ev.id)
                if p is None or ev.id in executed or p[4] != epoch:
                    bad("governance", i, f"{what}: no open proposal of this epoch")
                else:
                    votes = [d for d in p[5] if d in members]
                    if len(votes) < quorum():
                        bad("governance", i, f"{what} with {len(votes)} member domains' "
                                             f"votes; the quorum is {quorum()}")
                    if p[:4] != (ev.kind, ev.domain, ev.account, ev.roles):
                        bad("governance", i, f"{what} carries out another proposal than the "
                                             "one voted for")
                executed.add(ev.id)
                epoch += 1
            if ev.kind == 1 and ev.domain in members:
                bad("governance", i, f"{what} adds {_short(ev.domain)}, a member already")
            elif ev.kind in (2, 3, 4) and ev.domain not in members:
                bad("governance", i, f"{what} on {_short(ev.domain)}, not a member")
                continue
            if ev.kind in (1, 2, 3, 4):
                apply_governance(members, ev.kind, ev.domain, ev.account, ev.roles)
        elif isinstance(ev, Registered):
            what = f"Registered({_short(ev.id)})"
            if ev.id != artefact_id(ev.registrant, ev.salt):
                bad("ids", i, f"{what}: the id is not keccak(registrant ++ salt)")
            if ev.id in records:
                bad("ids", i, f"{what}: the id was already registered")
            if ev.state != ir.initial.index:
                bad("source-state", i, f"{what} in state {ev.state}, not the initial state")
            if ir.register_by:
                check_actor(i, what, ev.registrant, ir.register_by)
            if ir.register_evidence and ev.digest == ZERO32:
                bad("evidence", i, f"{what} without an evidence digest")
            records[ev.id] = (ir.initial.index, 1)
        elif isinstance(ev, Approved | Transitioned):
            if ev.transition >= len(ir.transitions):
                bad("ids", i, f"{type(ev).__name__} of unknown transition {ev.transition}")
                continue
            t = ir.transitions[ev.transition]
            actor = ev.approver if isinstance(ev, Approved) else ev.actor
            what = f"{type(ev).__name__}({t.name}) on {_short(ev.id)}"
            if ev.id not in records:
                bad("ids", i, f"{what}: the artefact is not registered")
                continue
            state, version = records[ev.id]
            check_step(i, what, ev, actor)
            if isinstance(ev, Approved):
                if t.approvals < 2:
                    bad("threshold", i, f"{what}: {t.name} takes no approvals")
                if ev.version != version:
                    bad("versions", i, f"{what} for version {ev.version}; the artefact is at "
                                       f"version {version}")
                key = approval_key(ev.id, ev.transition, ev.version, ev.digest)
                entries = approvals.setdefault(key, [])
                if actor in entries:
                    bad("threshold", i, f"{what}: {actor} approved this version and digest "
                                        "already")
                entries.append(actor)
                n = valid_count(key, t)
                if ev.count != n:
                    bad("threshold", i, f"{what} reports {ev.count} approval(s); the log shows "
                                        f"{n} valid distinct {t.count}")
                nxt = events[i + 1] if i + 1 < len(events) else None
                fired = isinstance(nxt, Transitioned) and nxt.id == ev.id and (
                    nxt.transition == ev.transition)
                if ev.count >= t.approvals and not fired:
                    bad("threshold", i, f"{what}: {ev.count} of {t.approvals} approvals but the "
                                        "transition did not fire")
                continue
            # Transitioned
            if ev.source != state:
                bad("source-state", i, f"{what} says source state {ev.source}; the log has the "
                                       f"artefact in state {state}")
            if ev.target != ir.state(t.target).index:
                bad("source-state", i, f"{what} to state {ev.target}, not {t.target}")
            if ev.version != version + 1:
                bad("versions", i, f"{what} to version {ev.version}; the artefact was at "
                                   f"version {version}")
            if t.approvals > 1:
                prev = events[i - 1] if i else None
                key = approval_key(ev.id, ev.transition, ev.version - 1, ev.digest)
                n = valid_count(key, t)
                if not (isinstance(prev, Approved) and prev.approver == actor
                        and prev.id == ev.id and prev.transition == ev.transition):
                    bad("threshold", i, f"{what} fired without its firing approval")
                if n < t.approvals:
                    bad("threshold", i, f"{what} fired with {n} valid distinct {t.count} "
                                        f"approving version {ev.version - 1}; it needs "
                                        f"{t.approvals}")
            records[ev.id] = (ev.target, ev.version)
            if t.name in ir.sod_targets:
                last_actor[(ev.id, t.index)] = actor
    return out


# -- compiled input -----------------------------------------------------------------------------
def prepare_layout(
    compiled: CompiledContract | CompiledLayout, layout: str | None = None
) -> CompiledLayout:
    """The contracts to deploy for ``compiled`` in ``layout``, with the *reference* ABIs.

    ``compiled`` may be one contract of a layout (the registry, a factory, or a per-artefact
    part such as ``clone.artefact``, recognised by its generated header): the other parts are
    compiled from its IR.  An unmodified generated contract may be asked for in another layout
    (its IR is compiled for that layout); a modified one may not.  Callers (honest or not) use
    the published interface, so the ABIs are those generated from the IR; a mutant keeps its
    own bytecode (and :func:`interface_violations` compares its own ABI with the published one).
    """
    bundle, ref = _own_layout(compiled, layout)
    main = dataclasses.replace(bundle.main, abi=ref.main.abi, ir=ref.ir)
    artefact = bundle.artefact
    if artefact is not None:
        assert ref.artefact is not None
        artefact = dataclasses.replace(artefact, abi=ref.artefact.abi)
    return CompiledLayout(bundle.layout, main, artefact)


def _entry_points(abi: Sequence[dict[str, Any]]) -> set[str]:
    """Each entry point and event of an ABI, as a canonical signature with its mutability (a
    view made state-changing, or an event's indexing changed, is another entry)."""
    def types(params: Sequence[dict[str, Any]], indexed: bool = False) -> str:
        return ",".join(p["type"] + (" indexed" if indexed and p.get("indexed") else "")
                        for p in params)

    out = set()
    for e in abi:
        kind = e.get("type", "function")
        if kind == "event":
            out.add(f"event {e['name']}({types(e.get('inputs', []), True)})")
        elif kind in ("function", "constructor"):
            out.add(f"{kind} {e.get('name', '')}({types(e.get('inputs', []))}) -> "
                    f"({types(e.get('outputs', []))}) {e.get('stateMutability', '')}".strip())
        else:  # fallback, receive
            out.add(f"{kind} {e.get('stateMutability', '')}".strip())
    return out


def interface_violations(
    compiled: CompiledContract | CompiledLayout, layout: str | None = None
) -> list[Violation]:
    """The ``interface`` property, checked once per run: each contract of the layout (its own
    compiled ABI) against the interface generated from the IR.  Callers (the property suite
    too) only know the published interface, so a function it does not list (an extra setter,
    a ``__default__`` fallback, a view made state-changing) is never called by the rules: a
    backdoor anyone who reads the bytecode can use.  Such a contract is refused outright."""
    bundle, ref = _own_layout(compiled, layout)
    out = []
    for part, own, pub in [(bundle.layout, bundle.main, ref.main),
                           (f"{bundle.layout}.artefact", bundle.artefact, ref.artefact)]:
        if own is None or pub is None:
            continue
        mine, published = _entry_points(own.abi), _entry_points(pub.abi)
        for what, entries in (("has", mine - published), ("lacks", published - mine)):
            if entries:
                out.append(Violation("interface", (
                    f"the {part} contract {what} entry point(s) or event(s) the interface "
                    f"generated from the IR {'does not have' if what == 'has' else 'has'}: "
                    + "; ".join(sorted(entries)))))
    return out


def _own_layout(
    compiled: CompiledContract | CompiledLayout, layout: str | None
) -> tuple[CompiledLayout, CompiledLayout]:
    """The contracts to deploy for ``compiled`` in ``layout`` with their own ABIs, and the
    reference layout compiled from the IR (see :func:`prepare_layout`)."""
    if isinstance(compiled, CompiledLayout):
        bundle = compiled
        if layout is not None and layout != bundle.layout:
            raise ValueError(f"a {bundle.layout} layout cannot run as the {layout} layout")
        layout = bundle.layout
    else:
        if compiled.ir is None:
            raise ValueError(
                f"{compiled.name} carries no lifecycle IR; compile it with compile_artefact, or "
                "attach the IR it was generated from (dataclasses.replace(c, ir=ir))"
            )
        part = layout_of(compiled)
        layout = layout or part.partition(".")[0]
        ref = compile_layout(compiled.ir, layout)
        if part == layout:
            bundle = CompiledLayout(layout, compiled, ref.artefact)
        elif part == f"{layout}.artefact":
            bundle = CompiledLayout(layout, ref.main, dataclasses.replace(compiled, ir=ref.ir))
        elif compiled.source == generate_vyper(compiled.ir, part):
            bundle = ref  # the generated lifecycle itself: run it in the layout asked for
        else:
            raise ValueError(
                f"{compiled.name}: a modified {part} contract cannot run in the {layout} layout "
                f"(its changes would be lost); plant the change in the {layout} sources"
            )
    return bundle, compile_layout(bundle.ir, layout)


# -- the machine ---------------------------------------------------------------------------------
#: accounts: 0 admin, 1..5 insiders (role holders), 6 an outsider (the attacker's own key)
N_ACCOUNTS = 7
ADMIN, OUTSIDER = 0, 6
INSIDERS = tuple(range(1, 6))
DOMAINS = tuple(f"domain-{c}".encode().ljust(32, b"\0") for c in "abc")
LOCATOR = "s3://bucket/object"
#: gas for transactions the machine signs itself (relayed calls, raw attacks)
RAW_GAS = 600_000
#: gas for the raw deployment the governance probe makes (refused by the constructor)
DEPLOY_GAS = 8_000_000
#: the trust domain of the wallet contract that holds roles (see ThreatMachine.wallet)
WALLET_DOMAIN = DOMAINS[1]
#: extra approver accounts, one more than the approval slots of a version (guard_probe fills
#: them: each approves and is revoked before the next, so the threshold is never reached)
N_FLOOD = MAX_APPROVERS + 1


#: consortium lifecycles: the admins of member domains domain-b and domain-c (the admin,
#: account 0, founds domain-a), then two fresh accounts no domain has bound (new admins for
#: add_domain and rotate_admin proposals); their keys come after the flood approvers'
GOV_ADMINS = (N_ACCOUNTS + N_FLOOD, N_ACCOUNTS + N_FLOOD + 1)
FRESH = (N_ACCOUNTS + N_FLOOD + 2, N_ACCOUNTS + N_FLOOD + 3)
N_KEYS = N_ACCOUNTS + N_FLOOD + 4
#: domain ids a proposal may add (never members at set-up), and a probe id no proposal adds
NEW_DOMAINS = tuple(f"domain-{c}".encode().ljust(32, b"\0") for c in "de")
NOT_A_DOMAIN = b"domain-none".ljust(32, b"\0")


def flood_domain(j: int) -> bytes:
    """The trust domain of flood approver ``j`` (guard_probe): one of its own."""
    return f"domain-flood-{j}".encode().ljust(32, b"\0")


#: a small relay a phisher deploys: the victim "claims" something, the relay calls the lifecycle
RELAY_SOURCE = """# pragma version ~=0.4.3
# A phishing relay: whoever calls claim() makes this contract call `target` with `payload`.


@external
def claim(target: address, payload: Bytes[4096]):
    raw_call(target, payload)
"""


def _digest(*parts: bytes) -> bytes:
    return keccak(b"".join(parts))


def _v32(v: int) -> bytes:
    return v.to_bytes(32, "big")


def model_digest(aid: bytes, version: int) -> bytes:
    return _digest(b"model", aid, _v32(version))


def eval_digest(aid: bytes, version: int) -> bytes:
    return _digest(b"evaluation", aid, _v32(version))


def tuple_digest(aid: bytes, version: int, eval_version: int) -> bytes:
    """The evidence an approver signs off: (model of ``version``, evaluation of
    ``eval_version``); honest approvers use ``eval_version == version``."""
    return _digest(model_digest(aid, version), eval_digest(aid, eval_version))


def _outcome(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # compared by type and message
        return (type(exc).__name__, str(exc))


def _receipt_outcome(receipt: Receipt | None) -> tuple[str, Any]:
    if receipt is None:
        return ("NotMined", None)
    if receipt.status:
        return ("ok", None)
    err = lifecycle_error_from_reason(receipt.revert_reason or "")
    if err is not None:
        return (type(err).__name__, str(err))
    return ("TransactionFailed", receipt.revert_reason)


class _RecordingBackend(PyEVMBackend):
    """py-evm that keeps every raw transaction it accepted (for the replay attacks)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.sent: list[bytes] = []
        self.reverts: list[str] = []  # revert reasons of mined transactions (guard coverage)

    def submit(self, raw_tx: bytes) -> bytes:
        tx_hash = super().submit(raw_tx)
        self.sent.append(raw_tx)
        return tx_hash

    def produce_block(self, timestamp: int | None = None, *,
                      max_txs: int | None = None) -> Any:
        block = super().produce_block(timestamp, max_txs=max_txs)
        for h in block.tx_hashes:
            r = self.receipt(h)
            if r is not None and not r.status:
                self.reverts.append(r.revert_reason or "(no reason)")
        return block


class ThreatMachine(RuleBasedStateMachine):
    """The rules and invariants; :func:`threat_machine` binds them to one compiled lifecycle."""

    contracts: CompiledLayout
    relay_code: bytes
    stats: dict[str, Any]
    #: compare with the reference interpreter; ``False`` leaves only the chain-data properties
    #: (the interpreter still picks who holds which role, to aim the rules)
    lockstep: bool = True
    #: the contracts' entry points beyond (or missing from) the published interface
    #: (:func:`interface_violations`), reported at the first check of every example
    interface: Sequence[Violation] = ()
    artefacts = Bundle("artefacts")

    # -- set-up -------------------------------------------------------------------------------
    @initialize(target=artefacts)
    def deploy(self) -> bytes:
        """Deploy the lifecycle and a phishing relay, grant the roles, register an artefact."""
        self.stats["examples"] += 1
        self.example = self.stats["examples"]
        self.ir: LifecycleIR = self.contracts.ir
        self.layout = self.contracts.layout
        # accounts N_ACCOUNTS.. are only used by the approval-slot flood (guard_probe)
        self.keys = KeyRing.from_seed("threat-properties", N_KEYS)
        self.accounts = list(self.keys.addresses)
        self.flooded = False
        self.backend = _RecordingBackend(funded=self.accounts)
        admin = self.keys.signer(self.accounts[ADMIN])
        self.client = LifecycleClient.deploy(self.backend, self.contracts, admin, DOMAINS[0])
        self.oracle = Interpreter(self.ir, self.accounts[ADMIN], DOMAINS[0])
        receipt = self._raw(self.keys.signer(self.accounts[OUTSIDER]), None, self.relay_code)
        assert receipt is not None and receipt.contract_address, "relay deployment failed"
        self.relay = receipt.contract_address
        receipt = self._raw(self.keys.signer(self.accounts[OUTSIDER]), None, self.relay_code)
        assert receipt is not None and receipt.contract_address, "wallet deployment failed"
        self.wallet_address = receipt.contract_address
        self.violations: list[Violation] = list(self.interface)
        self.prev_events: list[LifecycleEvent] = []
        self.prev_histories: dict[bytes, list[Any]] = {}
        self.salt = 0
        self.recorded = 0
        self.twin: PyEVMBackend | None = None
        self.checked_head = b""
        self.ids_checked: set[bytes] = set()
        self.fingerprint_checked = False
        self.gov = self.ir.consortium is not None
        if self.gov:
            # the consortium: the founder (domain-a) admits domain-b and domain-c, each with
            # its own admin account and every role but the founder's ADMIN role
            mask = ((1 << len(self.ir.roles)) - 1) & ~1
            for d, admin_i in zip(DOMAINS[1:], GOV_ADMINS, strict=True):
                self._pass("add_domain", d, self.accounts[admin_i], mask, label="set-up")
        # honest set-up, in one block: role i to insiders i, i+1, i+2 (cyclically), each
        # account in trust domain (index mod 3): every role spans three domains, and
        # consecutive roles share holders (so separation of duty is exercised)
        batch = LifecycleClient(self.backend, self.contracts, self.client.address, automine=False)
        ops = []
        for r in self.ir.roles[1:]:
            for j in range(3):
                a = INSIDERS[(r.index - 1 + j) % len(INSIDERS)]
                granter = self._granter(r.name, DOMAINS[a % 3])
                signer = self.keys.signer(self.accounts[granter])
                args = (r.name, self.accounts[a], DOMAINS[a % 3])
                expected = _outcome(self.oracle.grant, self.accounts[granter], *args)
                ops.append((expected, batch.grant(signer, *args), args))
        self.backend.produce_block()
        for expected, op, args in ops:
            actual = _outcome(batch.result, op)
            if actual != expected:
                self._lockstep("set-up grant", args, actual, expected)
        # the wallet (a contract account) holds every role but the admin's, in WALLET_DOMAIN
        for r in self.ir.roles[1:]:
            self.op("grant", self._granter(r.name, WALLET_DOMAIN), r.name, self.wallet_address,
                    WALLET_DOMAIN, label="set-up grant to the wallet")
        return self._register_honestly(None)

    def _granter(self, role: str, domain: bytes) -> int:
        """Who grants ``role`` into ``domain``: in a consortium that domain's admin (a domain
        enrols its own accounts), else a holder of the role's admin role."""
        if self.gov:
            member = self.oracle.members.get(domain)
            if member is not None:
                return self.accounts.index(member[1])
        return self._holder_of((self.ir.role(role).admin,))

    def _pass(self, kind: str, domain: bytes, account: str = ZERO_ADDRESS, roles: int = 0,
              label: str = "") -> tuple[str, Any]:
        """A proposal that can pass: the first member's admin proposes, the others vote until
        the quorum, the proposer executes (each on chain and on the reference)."""
        admins = [self.accounts.index(a) for _r, a in self.oracle.members.values()]
        status, pid = self.op("propose", admins[0], kind, domain, account, roles,
                              label=label or "proposal")
        if status != "ok":
            return status, pid
        for voter in admins[1:self.oracle.quorum()]:
            self.op("vote", voter, pid, label=label or "vote")
        return self.op("execute", admins[0], pid, label=label or "execution")

    def _holder_of(self, names: tuple[str, ...]) -> int:
        for i in range(N_ACCOUNTS):
            if self._holds(i, names):
                return i
        return ADMIN

    # -- helpers ------------------------------------------------------------------------------
    def _holds(self, i: int, names: tuple[str, ...]) -> bool:
        """Whether account ``i`` can use one of ``names`` now: its effective roles (in a
        consortium, only those its domain may still hold), not merely the roles granted."""
        return bool(self.oracle.effective_roles(self.accounts[i]) & self.ir.role_mask(names))

    def _holders(self, t: TransitionIR) -> list[int]:
        return [i for i in range(N_ACCOUNTS) if self._holds(i, t.by)]

    def _allowed(self, aid: bytes) -> list[TransitionIR]:
        if not self.oracle.exists(aid):
            return []
        state = self.oracle.state(aid)
        return [t for t in self.ir.transitions if state in t.sources]

    def _version(self, aid: bytes) -> int:
        return self.oracle.version(aid) if self.oracle.exists(aid) else 1

    def _honest_digest(self, aid: bytes, t: TransitionIR) -> bytes:
        return tuple_digest(aid, self._version(aid), self._version(aid)) if t.evidence else ZERO32

    def _key(self, aid: bytes, t: TransitionIR, digest: bytes) -> bytes:
        return approval_key(aid, t.index, self._version(aid), digest)

    def _eligible(self, aid: bytes, t: TransitionIR, digest: bytes,
                  among: Sequence[int] | None = None) -> list[int]:
        """Holders of ``t``'s roles who may do it now: no separation-of-duty conflict (of the
        account or of its trust domain), and (for approvals) not already approved, nor from a
        trust domain that already counts; ``among``: of these accounts (default: the
        machine's seven)."""
        key = self._key(aid, t, digest)
        approvers = [a for a in self.oracle.approvers.get(key, [])
                     if self.oracle.effective_roles(a) & self.ir.role_mask(t.by)]
        counted = {self.oracle.domains.get(a) for a in approvers}
        out = []
        for i in (self._holders(t) if among is None
                  else [i for i in among if self._holds(i, t.by)]):
            acct = self.accounts[i]
            last = [self.oracle.last_actor.get((aid, self.ir.transition(o).index))
                    for o in (*t.separate_from, *t.separate_domain_from)]
            if acct in last[:len(t.separate_from)]:
                continue
            mine = self.oracle.domains.get(acct, ZERO32)
            if any(a is not None and self.oracle.domains.get(a, ZERO32) == mine
                   for a in last[len(t.separate_from):]):
                continue
            if acct in self.oracle.approvers.get(key, []):
                continue
            if t.count == "domains" and self.oracle.domains.get(acct) in counted:
                continue
            out.append(i)
        return out

    def _draw_t(self, data: st.DataObject, options: Sequence[TransitionIR],
                label: str = "transition") -> TransitionIR:
        return self.ir.transition(data.draw(st.sampled_from([t.name for t in options]),
                                            label=label))

    def _who(self, i: int) -> str:
        role = ("admin" if i == ADMIN else "outsider" if i == OUTSIDER else "insider"
                if i < N_ACCOUNTS else "flood approver" if i < GOV_ADMINS[0]
                else "domain admin" if i in GOV_ADMINS else "fresh account")
        return f"{role} {i}"

    def _lockstep(self, what: str, args: Any, actual: Any, expected: Any) -> None:
        if not self.lockstep:
            return
        shown = ", ".join(_show(a) for a in args)
        self.violations.append(Violation(
            "lock-step", f"{what}({shown}): contract gave {_show(actual)}, the reference "
                         f"interpreter {_show(expected)}"))

    def op(self, kind: str, sender: int, *args: Any, label: str = "") -> tuple[str, Any]:
        """``kind`` (register, fire, grant, revoke) by account ``sender`` on the chain and on
        the reference interpreter; a different outcome is a lock-step violation."""
        expected = _outcome(getattr(self.oracle, kind), self.accounts[sender], *args)
        actual = _outcome(getattr(self.client, kind), self.keys.signer(self.accounts[sender]),
                          *args)
        if actual != expected:
            self._lockstep(f"{label or self._who(sender)}: {kind}", args, actual, expected)
        return expected

    def _approve_once(self, data: st.DataObject, aid: bytes, t: TransitionIR, digest: bytes,
                      label: str = "approver", fire_label: str = "") -> int | None:
        """One eligible holder, drawn, fires ``t`` with ``digest``; None if nobody may."""
        first = self._eligible(aid, t, digest)
        if not first:
            return None
        who: int = data.draw(st.sampled_from(first), label=label)
        self._fire(who, t, aid, digest, label=fire_label)
        return who

    def _fire(self, sender: int, t: TransitionIR, aid: bytes, digest: bytes,
              label: str = "") -> tuple[str, Any]:
        if t.evidence:
            return self.op("fire", sender, t.name, aid, digest, *self._evidence(), label=label)
        return self.op("fire", sender, t.name, aid, label=label)

    def _evidence(self) -> tuple[str, list[bytes]]:
        """A locator and inputs for the next record: each record names other ones (none, one or
        two of the ids registered so far, in turn), so an event that drops or alters its
        locator or inputs differs from the reference's (the ``events`` property)."""
        self.recorded += 1
        ids = list(dict.fromkeys(e.id for e in self.oracle.events if isinstance(e, Registered)))
        return f"{LOCATOR}/{self.recorded}", ids[-(self.recorded % 3):] if self.recorded % 3 else []

    def _raw(self, signer: Any, to: str | None, data: bytes,
             gas: int = RAW_GAS) -> Receipt | None:
        tx_hash = TxSender(self.backend, signer).send(to, data, gas=gas)
        self.backend.produce_block()
        return self.backend.receipt(tx_hash)

    def _target(self, aid: bytes) -> str:
        """Where a transition on ``aid`` goes (as the client routes it)."""
        if self.layout == "registry":
            return self.client.address
        addr = self.client.artefact_address(aid)
        return addr if self.backend.code(addr) else self.client.address

    def _calldata(self, t: TransitionIR, aid: bytes, digest: bytes) -> bytes:
        args: list[Any] = [aid, digest, LOCATOR, []] if t.evidence else [aid]
        return self.client.transition_abi.encode_call(t.name, args)

    def _revoke_all(self, victim: int) -> None:
        """The admin side reacts to a detected theft: every role of ``victim`` is revoked, each
        by a holder of that role's admin role."""
        for r in self.ir.roles:
            if self._holds(victim, (r.name,)):
                granter = self._granter(r.name, self.oracle.domains.get(self.accounts[victim],
                                                                        ZERO32))
                self.op("revoke", granter, r.name, self.accounts[victim],
                        label=f"revocation of {self._who(victim)} by {self._who(granter)}")

    # -- honest work --------------------------------------------------------------------------
    @rule(target=artefacts, data=st.data())
    def register(self, data: st.DataObject) -> bytes:
        return self._register_honestly(data)

    def _register_honestly(self, data: st.DataObject | None) -> bytes:
        ir = self.ir
        registrants = ([i for i in range(N_ACCOUNTS) if self._holds(i, ir.register_by)]
                       if ir.register_by else list(INSIDERS))
        pool = registrants or [OUTSIDER]
        sender = pool[0] if data is None else data.draw(st.sampled_from(pool), label="registrant")
        self.salt += 1
        salt = _v32(self.salt)
        digest = _digest(b"register", salt)
        kind, value = self.op("register", sender, salt, digest, *self._evidence())
        return value if kind == "ok" else b"\xee" * 32  # an unknown id is a useful probe too

    @rule(aid=artefacts, data=st.data())
    def honest_step(self, aid: bytes, data: st.DataObject) -> None:
        """A holder of the step's role does an allowed step with the honest evidence."""
        options = self._allowed(aid)
        if not options:
            return
        t = self._draw_t(data, options, label="transition")
        digest = self._honest_digest(aid, t)
        pool = self._eligible(aid, t, digest) or self._holders(t) or [OUTSIDER]
        self._fire(data.draw(st.sampled_from(pool), label="sender"), t, aid, digest)

    # -- insiders and outsiders out of line ---------------------------------------------------
    @rule(aid=artefacts, data=st.data())
    def wrong_role(self, aid: bytes, data: st.DataObject) -> None:
        """An allowed step by an account holding none of its roles."""
        t = self._draw_t(data, self._allowed(aid) or list(self.ir.transitions))
        pool = [i for i in range(N_ACCOUNTS) if not self._holds(i, t.by)]
        if pool:
            sender = data.draw(st.sampled_from(pool), label="sender")
            self._fire(sender, t, aid, self._honest_digest(aid, t))

    @rule(aid=artefacts, data=st.data())
    def wrong_state(self, aid: bytes, data: st.DataObject) -> None:
        """A role holder moves the artefact where its current state does not allow (this is
        also the rollback attempt: back to an earlier state)."""
        allowed = self._allowed(aid)
        options = [t for t in self.ir.transitions if t not in allowed]
        if options:
            t = self._draw_t(data, options, label="transition")
            pool = self._holders(t) or [OUTSIDER]
            self._fire(data.draw(st.sampled_from(pool)), t, aid, self._honest_digest(aid, t))

    @rule(aid=artefacts, data=st.data())
    def missing_evidence(self, aid: bytes, data: st.DataObject) -> None:
        options = [t for t in self._allowed(aid) if t.evidence]
        if options:
            t = self._draw_t(data, options, label="transition")
            pool = self._eligible(aid, t, ZERO32) or self._holders(t) or [OUTSIDER]
            self._fire(data.draw(st.sampled_from(pool)), t, aid, ZERO32)

    @rule(aid=artefacts, data=st.data())
    def separation_of_duty(self, aid: bytes, data: st.DataObject) -> None:
        """The actor of a step does the step that must be separated from it."""
        # in a drawn order, so that every separated step gets its turn (not only the first)
        for t in data.draw(st.permutations(self._allowed(aid)), label="order"):
            for other in t.separate_from:
                o = self.ir.transition(other)
                last = self.oracle.last_actor.get((aid, o.index))
                if last in self.accounts and self._holds(self.accounts.index(last), t.by):
                    sender = self.accounts.index(last)
                    self._fire(sender, t, aid, self._honest_digest(aid, t))
                    return
        # nobody to catch yet: someone holding both roles does the first step, then the second
        for t in self.ir.transitions:
            for other in t.separate_from:
                o = self.ir.transition(other)
                if o not in self._allowed(aid):
                    continue
                both = [i for i in range(N_ACCOUNTS)
                        if self._holds(i, o.by) and self._holds(i, t.by)]
                if not both:
                    continue
                sender = data.draw(st.sampled_from(both), label="sender")
                self._fire(sender, o, aid, self._honest_digest(aid, o))
                if t in self._allowed(aid):
                    self._fire(sender, t, aid, self._honest_digest(aid, t))
                return

    @rule(aid=artefacts, data=st.data())
    def fuzz(self, aid: bytes, data: st.DataObject) -> None:
        """Anyone, any step, any of a few digests (zero, honest, evil)."""
        t = self._draw_t(data, self.ir.transitions, label="transition")
        sender = data.draw(st.integers(0, N_ACCOUNTS - 1), label="sender")
        digest = data.draw(st.sampled_from(
            [ZERO32, self._honest_digest(aid, t) or ZERO32, _digest(b"evil", aid)]))
        self._fire(sender, t, aid, digest if t.evidence else ZERO32)

    @rule(aid=artefacts, data=st.data())
    def guard_probe(self, aid: bytes, data: st.DataObject) -> None:
        """Make each kind of guard fail on purpose, so that every guard of the generated
        contract is exercised (``proml mutate --coverage``), all in one step: a step on an id
        nobody registered and a role index past the last (raw calldata: the client refuses
        them before sending); the same salt registered twice by one sender; a registration
        without evidence.  Once per example: every step (the registration too) by a holder of
        each role it does not name; every role granted and revoked by a holder of each other
        role (:meth:`_role_admin_probe`); every step from every state that refuses it (a fresh
        artefact walked honestly to each state), and every evidence step without evidence
        where it is allowed; every step done honestly from each of its source states on a
        fresh artefact (in the factory and clone layouts, sent first, for another id, to that
        artefact's contract); every separated step by the actor of the step it is separated
        from (walked back to the separated step's source when the state graph allows); for
        every k-of-n step, a double approval, approvals made void (by a revocation, of an
        insider and of a holder of each other role; in a consortium by the quorum taking the
        role from a domain), then the step done with exactly k approvals, and the approval
        slots of a version filled by approvers of distinct domains."""
        ir = self.ir
        admin = self.keys.signer(self.accounts[ADMIN])
        # a step on an id nobody registered (raw: no client-side check in the way), refused
        # with the reference's reason (the unknown-id guard, not a later one, refuses it)
        fake = _digest(b"never registered", aid)
        self._unregistered(self._draw_t(data, ir.transitions), fake)
        # a role index past the last, granted and revoked by the admin
        role = len(ir.roles) + data.draw(st.integers(0, 255 - len(ir.roles)), label="role")
        for fn, args in (("grant_role", [role, self.accounts[OUTSIDER], DOMAINS[0]]),
                         ("revoke_role", [role, self.accounts[OUTSIDER]])):
            self._refused(self._raw(admin, self.client.address,
                                    self.client.contract_abi.encode_call(fn, args)),
                          "role-admin", f"{fn} of role index {role}")
        # the same salt twice by one sender; a registration without evidence
        registrants = ([i for i in range(N_ACCOUNTS) if self._holds(i, ir.register_by)]
                       if ir.register_by else list(INSIDERS))
        sender = data.draw(st.sampled_from(registrants or [OUTSIDER]), label="registrant")
        self.salt += 1
        salt = _v32(self.salt)
        self.op("register", sender, salt, _digest(b"r", salt), LOCATOR, [])
        self.op("register", sender, salt, _digest(b"r", salt), LOCATOR, [])
        self.salt += 1
        self.op("register", sender, _v32(self.salt), ZERO32, LOCATOR, [])
        if self.flooded:
            return
        # once per example (nothing kept across examples: hypothesis replays an example and
        # its draws must not depend on earlier ones): every step on an unregistered id; every
        # step by an account without its role, from whatever state (the role guard comes
        # first) ...
        self.flooded = True
        for t in ir.transitions:
            self._unregistered(t, fake)
        if self.gov:
            self._gov_probe()
        # the role index just past the last (the boundary of the role-index guard); in a
        # consortium revoked from the admin's own account (another domain's account would be
        # refused by the domain check even if the index guard let it through)
        victim = ADMIN if self.gov else OUTSIDER
        for fn, args in (("grant_role", [len(ir.roles), self.accounts[OUTSIDER], DOMAINS[0]]),
                         ("revoke_role", [len(ir.roles), self.accounts[victim]])):
            receipt = self._raw(admin, self.client.address,
                                self.client.contract_abi.encode_call(fn, args))
            self._refused(receipt, "role-admin", f"{fn} of role index {len(ir.roles)}")
            # refused for the reference's reason (the index guard, not a later one)
            kind = "grant" if fn == "grant_role" else "revoke"
            expected = _outcome(getattr(self.oracle, kind), self.accounts[ADMIN], *args)
            actual = _receipt_outcome(receipt)
            if actual != expected:
                self._lockstep(f"{self._who(ADMIN)}: {kind} (raw)", args, actual, expected)
        self._other_role_probe(aid)
        self._role_admin_probe()
        # ... every step from every state that refuses it: a fresh artefact walked honestly
        # to each state, every step the state refuses tried on it by a holder of the step's
        # role (a refused step leaves the state as it was; the nearest refusing state alone
        # let a source mask admitting one more, far state pass: withdraw after audit) ...
        for state in ir.states:
            refused = [t for t in ir.transitions if state.name not in t.sources]
            path = self._path_to({state.name}) if refused else None
            if path is None:
                continue
            fresh = self._register_honestly(None)
            if not self._walk(fresh, path):
                continue
            for t in refused:
                pool = self._holders(t) or [OUTSIDER]
                self._fire(pool[0], t, fresh, self._honest_digest(fresh, t))
        # ... and every evidence step without evidence, on a fresh artefact walked honestly
        # to a source of it ...
        for t in ir.transitions:
            path = self._path_to(set(t.sources)) if t.evidence else None
            if path is None:
                continue
            fresh = self._register_honestly(None)
            if self._walk(fresh, path):
                pool = self._eligible(fresh, t, ZERO32) or self._holders(t) or [OUTSIDER]
                self._fire(pool[0], t, fresh, ZERO32)
        # ... every step done once, honestly, from each of its source states, on a fresh
        # artefact walked there (a step the drawn steps rarely take, such as a rejection beside
        # a k-of-n verification, is still taken; from its nearest source alone, a mask
        # dropping a far one survived: withdraw no longer from verified); in the factory and
        # clone layouts the step on this example's artefact is first sent to the fresh one's
        # contract, which must refuse it ...
        for t in ir.transitions:
            for n, source in enumerate(t.sources):
                path = self._path_to({source})
                if path is None:
                    continue
                fresh = self._register_honestly(None)
                if not self._walk(fresh, path) or t not in self._allowed(fresh):
                    continue
                if self.layout != "registry" and fresh != aid and n == 0:
                    self._misroute(t, aid, fresh)
                self._walk(fresh, [t])
        # ... every separated step by the actor of the step it is separated from: a fresh
        # artefact walked to the first step, which that actor does (its firing approval for a
        # k-of-n step), then walked on to a source of the separated step ...
        for t in ir.transitions:
            for other in map(ir.transition, t.separate_from):
                both = [i for i in range(N_ACCOUNTS)
                        if self._holds(i, other.by) and self._holds(i, t.by)]
                path = self._path_to(set(other.sources))
                back = self._path_to(set(t.sources), start=other.target)
                if path is None or back is None:
                    continue  # no back path: the state guard always refuses first
                # nobody holds both roles: a holder of the other step's role is appointed to
                # a role of this one for the probe (revoked after)
                appointed = None if both else self._appoint_to(other, t)
                if appointed is not None:
                    both = [appointed[0]]
                if both:
                    sod = self._register_honestly(None)
                    if (self._walk(sod, path) and self._walk(sod, [other], last=both[0])
                            and self._walk(sod, back)) and t in self._allowed(sod):
                        self._fire(both[0], t, sod, self._honest_digest(sod, t))
                if appointed is not None:
                    holder, extra, granter = appointed
                    self.op("revoke", granter, extra, self.accounts[holder])
        # ... every step separated by domain from another, by an account of the domain that
        # did the other (appointed into that domain for the purpose, then revoked) ...
        for t in ir.transitions:
            for other in map(ir.transition, t.separate_domain_from):
                self._domain_separation_probe(t, other)
        # ... and for every k-of-n step, on a fresh artefact walked to it: an approver
        # approves twice (counted by domains: a second account of its domain approves, and
        # one after the approver's role is revoked, which is then granted again), then the
        # step is done; in a consortium, on another artefact, a domain approves first and the
        # quorum then takes the role from it, and the step is done (that approval void); then
        # the approval slots of the version are filled: MAX_APPROVERS approvers, each in a
        # trust domain of its own, each approving and revoked before the next (so the
        # threshold is never reached); then all of them granted again, and one more approver
        # tries: every slot now holds a valid approver of a distinct domain, the most a count
        # by domains ever sees (catalogue mutant bound-_seen-1-1: a domain list one short
        # overflows here instead of answering ApprovalsFull)
        for step in ir.transitions:
            path = self._path_to(set(step.sources))
            if step.approvals < 2 or path is None:
                continue
            twice, flooded = self._register_honestly(None), self._register_honestly(None)
            if self._walk(twice, path) and step in self._allowed(twice):
                digest = self._honest_digest(twice, step)
                first = self._eligible(twice, step, digest)
                if first:
                    self._fire(first[0], step, twice, digest)
                    self._fire(first[0], step, twice, digest, label="second approval")
                    mate = None
                    if step.count == "domains":
                        self._same_domain_approval(twice, step, digest, first[0])
                        mate = self._domain_mate_approval(twice, step, digest, first[0])
                    # then the step done: it must fire at exactly its k-th approval, not
                    # before nor after (a k-of-n step into a final state is otherwise
                    # completed only by chance draws)
                    self._walk(twice, [step])
                    if mate is not None:
                        self.op("revoke", *mate)
            self._role_loss_approvals(step, path)
            if self.gov:
                voided = self._register_honestly(None)
                if self._walk(voided, path) and step in self._allowed(voided):
                    restore = self._disallowed_approval(voided, step)
                    self._walk(voided, [step])
                    restore()
            if self._walk(flooded, path) and step in self._allowed(flooded):
                self._flood(flooded, step)

    def _other_role_probe(self, aid: bytes) -> None:
        """Every step, the registration too, tried by a holder of each role it does not name
        and of none it names (from whatever state ``aid`` is in: the role guard comes first,
        so the reference refuses with RoleNotAllowed).  When only the first account without
        the role tried (the admin, holding no other role), a role mask one role wider (train
        also by the operator) survived 53 examples.  A role that no account holds apart from
        the step's is appointed to the last flood approver for the try, then revoked."""
        ir = self.ir
        pool = [*range(N_ACCOUNTS), *(GOV_ADMINS if self.gov else ())]
        steps: list[tuple[TransitionIR | None, tuple[str, ...]]] = (
            [(None, ir.register_by)] if ir.register_by else [])
        steps += [(t, t.by) for t in ir.transitions]
        spare = N_FLOOD - 1
        for t, by in steps:
            for role in (r.name for r in ir.roles if r.name not in by):
                who = next((i for i in pool
                            if self._holds(i, (role,)) and not self._holds(i, by)), None)
                granter = None
                if who is None and role != ir.roles[0].name:  # (the admin role: never granted)
                    granter, who = self._flood_granter(spare, role), N_ACCOUNTS + spare
                    self.op("grant", granter, role, self.accounts[who], flood_domain(spare),
                            label="appointed for the role probe")
                    if not self._holds(who, (role,)) or self._holds(who, by):
                        self.op("revoke", granter, role, self.accounts[who])
                        continue
                if who is None:
                    continue
                if t is None:
                    self.salt += 1
                    self.op("register", who, _v32(self.salt), _digest(b"r", _v32(self.salt)),
                            LOCATOR, [], label=f"register by role {role}")
                else:
                    self._fire(who, t, aid, self._honest_digest(aid, t),
                               label=f"{t.name} by role {role}")
                if granter is not None:
                    self.op("revoke", granter, role, self.accounts[who])

    def _role_admin_probe(self) -> None:
        """Every role granted (to the outsider) and revoked (from it) by a holder of each other
        role and not of the role's admin role, the admin role included: a role-admin guard
        letting the lifecycle's admin grant a role another role administers (the labeller,
        appointed by the dataset admin) survived 53 examples of the drawn ``roles`` rule.  A
        grant both sides allow is taken back by the same sender (the same check allows it).
        Then a holder of each role who neither holds its admin role nor administers a domain
        revokes that role from itself: renouncing a role takes its admin role too."""
        ir = self.ir
        pool = [*range(N_ACCOUNTS), *(GOV_ADMINS if self.gov else ())]
        outsider = self.accounts[OUTSIDER]
        for r in ir.roles[1:]:
            for other in (q.name for q in ir.roles if q.name != r.admin):
                who = next((i for i in pool if self._holds(i, (other,))
                            and not self._holds(i, (r.admin,))), None)
                if who is None:
                    continue
                label = f"{r.name} by a holder of {other}"
                self.op("grant", who, r.name, outsider, DOMAINS[OUTSIDER % 3],
                        label=f"grant of {label}")
                self.op("revoke", who, r.name, outsider, label=f"revoke of {label}")
        for r in ir.roles:
            who = next((i for i in INSIDERS if self._holds(i, (r.name,))
                        and not self._holds(i, (r.admin,))), None)
            if who is not None:
                self.op("revoke", who, r.name, self.accounts[who],
                        label=f"{r.name} renounced by its holder {self._who(who)}")

    def _role_loss_approvals(self, step: TransitionIR, path: list[TransitionIR]) -> None:
        """On a fresh artefact walked to ``step``: for each role ``step`` does not name, a
        holder of it approves (granted a role of the step first if needed) and then loses the
        step's roles, keeping the other; the step is then done honestly and must fire at
        exactly k approvals by current holders.  A contract counting the approvals of any
        role the approver still holds (the admin's, when the revoked approver also
        administers) survived 53 examples: the revocation probes revoke insiders, who never
        hold the admin role.  The roles are restored after."""
        ir = self.ir
        fresh = self._register_honestly(None)
        if not self._walk(fresh, path) or step not in self._allowed(fresh):
            return
        digest = self._honest_digest(fresh, step)
        pool = [*range(N_ACCOUNTS), *(GOV_ADMINS if self.gov else ())]
        restore: list[tuple[int, str, int, bytes]] = []  # (granter, role, account, domain)
        retire: list[tuple[int, str, str]] = []          # revocations of the probe's grants
        for other in (r.name for r in ir.roles if r.name not in step.by):
            if step not in self._allowed(fresh):
                break
            for x in (i for i in pool if self._holds(i, (other,))):
                acct = self.accounts[x]
                domain = self.oracle.domains.get(acct, DOMAINS[x % 3])
                held = [r for r in step.by if self._holds(x, (r,))]
                if not held and self._domain_may_hold(acct, (step.by[0],)):
                    granter = self._granter(step.by[0], domain)
                    self.op("grant", granter, step.by[0], acct, domain,
                            label=f"appointed approver holding {other}")
                    if self._holds(x, (step.by[0],)):
                        retire.append((granter, step.by[0], acct))
                if not self._eligible(fresh, step, digest, among=[x]):
                    continue
                self._fire(x, step, fresh, digest, label=f"approval by a holder of {other}")
                for r in step.by:
                    if self._holds(x, (r,)):
                        granter = self._granter(r, domain)
                        self.op("revoke", granter, r, acct,
                                label=f"approver loses {r}, keeps {other}")
                        if r in held:
                            restore.append((granter, r, x, domain))
                break
        if step in self._allowed(fresh):
            self._walk(fresh, [step])
        for granter, r, x, domain in restore:
            self.op("grant", granter, r, self.accounts[x], domain, label="approver restored")
        for granter, r, acct in retire:
            if self.oracle.effective_roles(acct) & ir.role_mask((r,)):
                self.op("revoke", granter, r, acct)

    def _disallowed_approval(self, aid: bytes, step: TransitionIR) -> Callable[[], None]:
        """In a consortium: a flood approver's domain (one of its own) gives ``aid`` its first
        approval of ``step``, then the quorum takes the step's role from that domain
        (``set_roles``): the approval, still stored, must no longer count (a contract counting
        approvals by the roles once granted, not those the domain may hold now, survived 53
        examples of the factory layout).  Returns what restores the domain's roles and
        retires the approver, to call once the step is done."""
        role, digest = step.by[0], self._honest_digest(aid, step)
        x, domain = N_ACCOUNTS, flood_domain(0)
        granter = self._flood_granter(0, role)
        self.op("grant", granter, role, self.accounts[x], domain,
                label="appointed approver of a domain of its own")
        member, status = self.oracle.members.get(domain), ""
        allowed = member[0] if member else 0  # (none: drawn governance removed the domain)
        if member and self._eligible(aid, step, digest, among=[x]):
            self._fire(x, step, aid, digest, label="approval by a domain about to lose the role")
            status, _ = self._pass("set_roles", domain, ZERO_ADDRESS,
                                   allowed & ~self.ir.role_mask((role,)),
                                   label="the approver's domain loses the role")

        def restore() -> None:
            if status == "ok":
                self._pass("set_roles", domain, ZERO_ADDRESS, allowed, label="roles restored")
            self.op("revoke", granter, role, self.accounts[x])
        return restore

    def _domain_mate_approval(self, aid: bytes, step: TransitionIR, digest: bytes,
                              approver: int) -> tuple[int, str, str] | None:
        """``approver``'s role revoked by its domain's granter, another account of its domain
        approves (accepted: the revoked approval no longer counts), ``approver`` granted the
        role again: two valid approvals of one domain now stand, which a count by domains
        must count once (a reviewer's mutant counting a seen domain again survived 53
        examples); the approvals after show it (the logged count, the threshold).  Returns
        the revocation that retires the domain-mate afterwards (granter, role, account), or
        None when it held the role already."""
        acct = self.accounts[approver]
        domain = self.oracle.domains.get(acct, ZERO32)
        role = next((r for r in step.by if self._holds(approver, (r,))), None)
        if role is None:
            return None
        mate = self._appoint_mate(role, domain, "appointed into the approver's domain",
                                  exclude=approver)
        if mate is None:
            return None
        granter, who, held = mate
        self.op("revoke", granter, role, acct, label="approver revoked")
        self._fire(who, step, aid, digest, label="approval by the revoked approver's domain")
        self.op("grant", granter, role, acct, domain, label="approver granted again")
        return None if held else (granter, role, self.accounts[who])

    def _same_domain_approval(self, aid: bytes, step: TransitionIR, digest: bytes,
                              approver: int) -> None:
        """A second account of ``approver``'s trust domain approves ``step`` too: counted by
        domains, refused as that domain's second approval (catalogue mutant
        cmp-_approve-5-1)."""
        if step in self._allowed(aid):
            self._fire_from_domain(self.accounts[approver], step, aid, digest,
                                   "a second account of the approver's domain")

    def _domain_separation_probe(self, t: TransitionIR, other: TransitionIR) -> None:
        """A fresh artefact walked through ``other`` and back to a source of ``t``; then ``t``
        by an account of the domain of ``other``'s actor (see guard_probe)."""
        path = self._path_to(set(other.sources))
        back = self._path_to(set(t.sources), start=other.target)
        if path is None or back is None:
            return  # no back path: the state guard always refuses first
        fresh = self._register_honestly(None)
        if not self._walk(fresh, path):
            return
        # ``other`` done by an account of a domain that may hold a role of ``t`` (else no
        # account of that domain could even try ``t``)
        fit = [i for i in self._eligible(fresh, other, self._honest_digest(fresh, other))
               if self._domain_may_hold(self.accounts[i], t.by)]
        if not (fit and self._walk(fresh, [other], last=fit[0])
                and self._walk(fresh, back)) or t not in self._allowed(fresh):
            return
        actor = self.oracle.last_actor.get((fresh, other.index))
        if actor is not None:
            self._fire_from_domain(actor, t, fresh, self._honest_digest(fresh, t),
                                   f"the domain that did {other.name}")

    def _fire_from_domain(self, account: str, t: TransitionIR, aid: bytes, digest: bytes,
                          what: str) -> None:
        """``t`` on ``aid`` by another account of ``account``'s trust domain, appointed into it
        for the purpose (in a consortium that domain's admin, enrolling itself; else a fresh
        account) in a role of ``t`` the domain may hold, then revoked (unless it held it)."""
        domain = self.oracle.domains.get(account, ZERO32)
        roles = [r for r in t.by if self._domain_may_hold(account, (r,))]
        if not roles:
            return
        mate = self._appoint_mate(roles[0], domain, f"appointed into {what}")
        assert mate is not None
        self._fire(mate[1], t, aid, digest, label=f"{t.name} by {what}")
        if not mate[2]:
            self.op("revoke", mate[0], roles[0], self.accounts[mate[1]])

    def _appoint_mate(self, role: str, domain: bytes, label: str, exclude: int | None = None
                      ) -> tuple[int, int, bool] | None:
        """Another account of trust domain ``domain`` in ``role`` (in a consortium that
        domain's admin, enrolling itself; else a fresh account), granted the role unless it
        holds it (a domain admin may: then it keeps it).  Returns (granter, account, held), or
        None when that account is ``exclude``."""
        granter = self._granter(role, domain)
        who = granter if self.gov else FRESH[1]
        if who == exclude:
            return None
        held = self._holds(who, (role,))
        if not held:
            self.op("grant", granter, role, self.accounts[who], domain, label=label)
        return granter, who, held

    def _appoint_to(self, other: TransitionIR, t: TransitionIR) -> tuple[int, str, int] | None:
        """A holder of ``other``'s role granted a role of ``t`` its domain may hold, by that
        role's granter: (account, role, granter), or None if no such grant is accepted."""
        for i in range(N_ACCOUNTS):
            acct = self.accounts[i]
            roles = [r for r in t.by if self._domain_may_hold(acct, (r,))]
            if not (self._holds(i, other.by) and roles):
                continue
            domain = self.oracle.domains.get(acct, ZERO32)
            granter = self._granter(roles[0], domain)
            status, _ = self.op("grant", granter, roles[0], acct, domain,
                                label=f"appointed to {t.name} as well as {other.name}")
            if status == "ok":
                return i, roles[0], granter
        return None

    def _domain_may_hold(self, account: str, names: tuple[str, ...]) -> bool:
        """Whether ``account``'s trust domain may hold one of ``names`` (always, outside a
        consortium; never, for an account of no member domain)."""
        if not self.gov:
            return True
        member = self.oracle.members.get(self.oracle.domains.get(account, ZERO32))
        return member is not None and bool(member[0] & self.ir.role_mask(names))

    def _flood(self, aid: bytes, step: TransitionIR) -> None:
        """Fill the approval slots of ``step`` on ``aid`` (see guard_probe)."""
        digest = self._honest_digest(aid, step)
        key = self._key(aid, step, digest)
        role = step.by[0]
        flood = [N_ACCOUNTS + j for j in range(N_FLOOD)]

        def enrol(j: int, kind: str) -> None:
            args = (flood_domain(j),) if kind == "grant" else ()
            self.op(kind, self._flood_granter(j, role), role, self.accounts[flood[j]], *args)

        used: list[int] = []
        for j, x in enumerate(flood[:-1]):
            if len(self.oracle.approvers.get(key, [])) >= MAX_APPROVERS:
                break
            enrol(j, "grant")
            kind, _ = self._fire(x, step, aid, digest, label=f"flood approver {j}")
            enrol(j, "revoke")
            used.append(j)
            if kind != "ok":
                return
        for j in [*used, len(flood) - 1]:
            enrol(j, "grant")
        self._fire(flood[-1], step, aid, digest, label=f"flood approver {len(flood) - 1}")
        for j in [*used, len(flood) - 1]:  # they leave: later steps are unaffected
            enrol(j, "revoke")

    def _unregistered(self, t: TransitionIR, fake: bytes) -> None:
        """The admin does ``t`` on id ``fake`` that nobody registered (raw calldata)."""
        digest = _digest(b"probe", fake)
        receipt = self._raw(self.keys.signer(self.accounts[ADMIN]), self.client.address,
                            self._calldata(t, fake, digest))
        self._refused(receipt, "ids", f"{t.name} on an unregistered id")
        args: list[Any] = [t.name, fake, *([digest, LOCATOR, []] if t.evidence else [])]
        expected = _outcome(self.oracle.fire, self.accounts[ADMIN], *args)
        actual = _receipt_outcome(receipt)
        if actual != expected:
            self._lockstep(f"{self._who(ADMIN)}: fire (raw)", args, actual, expected)

    def _misroute(self, t: TransitionIR, aid: bytes, host: bytes) -> None:
        """``t`` on ``aid`` sent to the contract of ``host``, another artefact at a source of
        ``t``, by one who may do ``t`` there, with evidence where ``t`` needs it: only the
        contract's id check stands in the way."""
        digest = self._honest_digest(host, t)
        who = (self._eligible(host, t, digest) or self._holders(t) or [OUTSIDER])[0]
        receipt = self._raw(self.keys.signer(self.accounts[who]),
                            self.client.artefact_address(host), self._calldata(t, aid, digest))
        self._refused(receipt, "one-artefact", f"{self._who(who)}'s {t.name}({_short(aid)}) "
                                               f"sent to the contract of {_short(host)}")
        # ... and its views answer for its own artefact only: asked about ``aid``, they know
        # nothing (a state_of answering for any id survived 53 examples)
        address, abi = self.client.artefact_address(host), self.client.transition_abi
        views: list[tuple[str, list[Any]]] = [
            ("state_of", [aid]), ("version_of", [aid]),
            *(("last_actor_of", [aid, u.index]) for u in self.ir.transitions)]
        for fn, args in views:
            res = self.backend.call(address, abi.encode_call(fn, args))
            got = abi.decode_output(fn, res.output) if res.success and res.output else None
            if not res.success or (int(got, 16) if isinstance(got, str) else got):
                self.violations.append(Violation("one-artefact", (
                    f"the contract of {_short(host)} answers {fn}({_short(aid)}) with "
                    f"{_show(got) if res.success else 'a revert'}, not the empty answer for "
                    "an artefact it does not hold")))

    def _refused(self, receipt: Receipt | None, prop: str, what: str) -> None:
        """A raw call that must revert; accepted, it breaks ``prop``."""
        if receipt is not None and receipt.status:
            self.violations.append(Violation(prop, f"{what} was accepted"))

    def _path_to(self, goals: set[str], start: str | None = None) -> list[TransitionIR] | None:
        """The shortest list of transitions from ``start`` (default: the initial state) into
        one of ``goals`` (``[]`` when ``start`` is one of them)."""
        start = start or self.ir.initial.name
        paths: dict[str, list[TransitionIR]] = {start: []}
        frontier = [start]
        while frontier:
            s0 = frontier.pop(0)
            if s0 in goals:
                return paths[s0]
            for t in self.ir.transitions:
                if s0 in t.sources and t.target not in paths:
                    paths[t.target] = [*paths[s0], t]
                    frontier.append(t.target)
        return None

    def _walk(self, aid: bytes, path: Sequence[TransitionIR], last: int | None = None) -> bool:
        """Do ``path`` honestly on ``aid`` (k eligible approvers for a k-of-n step); ``last``:
        the account that does the final step (gives its firing approval)."""
        for n, u in enumerate(path, 1):
            before = self._version(aid)
            for a in range(u.approvals):
                digest = self._honest_digest(aid, u)
                pool = self._eligible(aid, u, digest)
                if last is not None and n == len(path):
                    final = a == u.approvals - 1
                    pool = [i for i in pool if (i == last) == final]
                    if not pool and not final:
                        pool = [i for i in self._appoint(aid, u, digest) if i != last]
                elif not pool:
                    pool = self._appoint(aid, u, digest)
                if not pool:
                    return False
                self._fire(pool[0], u, aid, digest)
                if self._version(aid) != before:
                    break
            if self._version(aid) == before:
                return False
        return True

    def _appoint(self, aid: bytes, u: TransitionIR, digest: bytes) -> list[int]:
        """No eligible approver left for ``u`` (a k-of-n step with fewer holders than k): the
        role's admin appoints an insider who does not hold it yet; the eligible ones after.
        When no insider can be (the domains they are bound to may not hold the role, or are
        the trainer's or already count, after governance), a flood approver is appointed in
        a domain of its own, as guard_probe's flood does, so a deep state stays reachable."""
        for i in INSIDERS:
            if not self._holds(i, u.by):
                granter = self._granter(u.by[0], DOMAINS[i % 3])
                self.op("grant", granter, u.by[0], self.accounts[i], DOMAINS[i % 3],
                        label="appointed approver")
                pool = self._eligible(aid, u, digest)
                if pool:
                    return pool
        flood = [N_ACCOUNTS + j for j in range(N_FLOOD)]
        for j, x in enumerate(flood[:2]):
            if not self._holds(x, u.by):
                self.op("grant", self._flood_granter(j, u.by[0]), u.by[0], self.accounts[x],
                        flood_domain(j), label="appointed approver")
            pool = self._eligible(aid, u, digest, among=[x])
            if pool:
                return pool
        return []

    def _flood_granter(self, j: int, role: str) -> int:
        """Who enrols flood approver ``j`` in ``role``: in a consortium the approver itself,
        the admin of a domain of its own (admitted by quorum, with every role, the first
        time); else a holder of the role's admin role."""
        if not self.gov:
            return self._holder_of((self.ir.role(role).admin,))
        if flood_domain(j) not in self.oracle.members:
            self._pass("add_domain", flood_domain(j), self.accounts[N_ACCOUNTS + j],
                       (1 << len(self.ir.roles)) - 1, label=f"admission of flood domain {j}")
        return N_ACCOUNTS + j

    @rule(data=st.data())
    def roles(self, data: st.DataObject) -> None:
        """Anyone grants or revokes any role (one index past the last too) of anyone (the
        domain admins too, in a consortium)."""
        sender = data.draw(st.sampled_from([*range(N_ACCOUNTS), *GOV_ADMINS]) if self.gov
                           else st.integers(0, N_ACCOUNTS - 1), label="sender")
        role = data.draw(st.integers(0, len(self.ir.roles)), label="role")
        account = self.accounts[data.draw(st.integers(0, N_ACCOUNTS - 1), label="account")]
        if data.draw(st.booleans(), label="grant"):
            self.op("grant", sender, role, account, data.draw(st.sampled_from(DOMAINS)))
        else:
            self.op("revoke", sender, role, account)

    # -- consortium governance -----------------------------------------------------------------
    def _admins(self) -> list[int]:
        """The accounts administering member domains now (rotations change them)."""
        return [self.accounts.index(a) for _r, a in self.oracle.members.values()]

    def _unbound(self) -> list[int]:
        """Accounts no domain has bound (neither enrolled nor a domain's admin)."""
        bound = {*(a for _r, a in self.oracle.members.values()), *self.oracle.domains}
        return [i for i in (*FRESH, OUTSIDER, *INSIDERS) if self.accounts[i] not in bound]

    @precondition(lambda self: getattr(self, "gov", False))
    @rule(data=st.data())
    def govern(self, data: st.DataObject) -> None:
        """A proposal that can pass: a member's admin proposes (a new domain with a fresh
        admin, a removal, a rotation of a domain's admin key to a fresh account, or new roles
        for a domain), other members vote or not, someone executes (refused below quorum)."""
        admins = self._admins()
        kind, proposer_address, domain, who, roles = passable_proposal(
            data, self.oracle, [self.accounts[i] for i in (*FRESH, OUTSIDER, *INSIDERS)],
            NEW_DOMAINS, len(self.ir.roles))
        proposer = self.accounts.index(proposer_address)
        status, pid = self.op("propose", proposer, kind, domain, who, roles)
        if status != "ok":
            return
        if data.draw(st.booleans(), label="eager execution"):
            self.op("execute", proposer, pid, label="execution before the votes")
        for voter in admins:
            if voter != proposer and data.draw(st.booleans(), label=f"{voter} votes"):
                self.op("vote", voter, pid)
        self.op("execute", data.draw(st.sampled_from([*admins, OUTSIDER]), label="executor"),
                pid)

    @precondition(lambda self: getattr(self, "gov", False))
    @rule(data=st.data())
    def gov_fuzz(self, data: st.DataObject) -> None:
        """Anyone proposes anything (invalid kinds, the zero or a used domain id, a non-member,
        a bound or empty new admin, undeclared roles), votes or executes any proposal id."""
        senders = [*range(N_ACCOUNTS), *GOV_ADMINS, *FRESH]
        sender = data.draw(st.sampled_from(senders), label="sender")
        what = data.draw(st.sampled_from(["propose", "vote", "execute"]), label="call")
        if what != "propose":
            pid = data.draw(st.integers(0, len(self.oracle.proposals) + 1), label="proposal")
            self.op(what, sender, pid)
            return
        kind = data.draw(st.sampled_from([*PROPOSAL_KINDS, 0, len(PROPOSAL_KINDS) + 1]),
                         label="kind")
        domain = data.draw(st.sampled_from([*DOMAINS, *NEW_DOMAINS, NOT_A_DOMAIN, ZERO32]),
                           label="domain")
        who = data.draw(st.sampled_from([ZERO_ADDRESS, *(self.accounts[i] for i in senders)]),
                        label="account")
        roles = data.draw(st.integers(0, (1 << (len(self.ir.roles) + 1)) - 1), label="roles")
        self.op("propose", sender, kind, domain, who, roles)

    @precondition(lambda self: getattr(self, "gov", False))
    @rule(data=st.data())
    def expiry(self, data: st.DataObject) -> None:
        """Two proposals open at once; one passes, which expires the other: its votes and
        execution are refused, and so is executing the passed one again."""
        admins = self._admins()
        domain = data.draw(st.sampled_from(list(self.oracle.members)), label="domain")
        mask = self.oracle.members[domain][0]
        opened = []
        for _ in range(2):
            status, pid = self.op("propose", admins[0], "set_roles", domain, ZERO_ADDRESS, mask,
                                  label="proposal")
            if status != "ok":
                return
            opened.append(pid)
        first, second = data.draw(st.permutations(opened), label="order")
        if self.oracle.quorum() > 1:  # the proposer alone: below quorum, refused
            self.op("execute", admins[0], first, label="execution with the proposer's vote")
        for voter in admins[1:self.oracle.quorum()]:
            self.op("vote", voter, first)
        self.op("execute", admins[0], first)
        voter = data.draw(st.sampled_from(admins), label="late voter")
        self.op("vote", voter, second, label="vote on an expired proposal")
        self.op("execute", voter, second, label="execution of an expired proposal")
        self.op("execute", voter, first, label="execution again")

    @precondition(lambda self: getattr(self, "gov", False))
    @rule(data=st.data())
    def enrol(self, data: st.DataObject) -> None:
        """A member domain's admin grants or revokes a role: to its own accounts, to another
        domain's (refused), naming another domain (refused), or a role its domain may not
        hold (refused)."""
        admin, domain = data.draw(st.sampled_from(
            [(self.accounts.index(a), d) for d, (_r, a) in self.oracle.members.items()]),
            label="domain admin")
        role = data.draw(st.integers(0, len(self.ir.roles) - 1), label="role")
        account = self.accounts[data.draw(st.sampled_from([*range(N_ACCOUNTS), *FRESH]),
                                          label="account")]
        if data.draw(st.booleans(), label="grant"):
            named = data.draw(st.sampled_from([domain, *DOMAINS]), label="named domain")
            self.op("grant", admin, role, account, named, label="enrolment")
        else:
            self.op("revoke", admin, role, account, label="removal from the domain")

    @precondition(lambda self: getattr(self, "gov", False))
    @rule(aid=artefacts, data=st.data())
    def removed_domain(self, aid: bytes, data: st.DataObject) -> None:
        """An approver's domain approves, then is removed by quorum: its pending approval no
        longer counts toward the threshold, and its accounts can do nothing more.  Without a
        k-of-n step allowed now: the domain of a holder of an allowed step's role is removed,
        and that holder tries the step."""
        if len(self.oracle.members) < 2:
            return
        t = self._approval_step(aid)
        if t is None:
            options = self._allowed(aid)
            if not options:
                return
            t = self._draw_t(data, options, label="step of the removed domain")
            digest = self._honest_digest(aid, t)
            pool = self._eligible(aid, t, digest)
            if not pool:
                return
            victim: int | None = data.draw(st.sampled_from(pool), label="victim")
        else:
            digest = self._honest_digest(aid, t)
            victim = self._approve_once(data, aid, t, digest)
        if victim is None:
            return
        domain = self.oracle.domains.get(self.accounts[victim], ZERO32)
        if domain not in self.oracle.members:
            return
        self._pass("remove_domain", domain, label="removal of the approver's domain")
        if t not in self._allowed(aid):
            return
        if t.approvals < 2:
            self._fire(victim, t, aid, digest, label="holder of a removed domain")
            return
        honest = [i for i in self._eligible(aid, t, digest) if i != victim]
        if honest:
            self._fire(data.draw(st.sampled_from(honest), label="honest"), t, aid, digest)
        if t in self._allowed(aid):
            self._fire(victim, t, aid, digest, label="approver of a removed domain")

    def _gov_probe(self) -> None:
        """Make every governance guard fail once (guard_probe): proposals by a non-admin, of
        an unknown kind, for a used or a non-member domain, with an empty new admin or
        undeclared roles; a vote on no proposal, a second vote, an execution below quorum and
        after execution; removing the last member and founding with the zero domain id, on a
        second deployment of the lifecycle (its own reference), where a removed domain's
        holder of every role registers and tries every step, and the founder's key, once
        rotated out, grants and revokes each role (with its admin role in effect, then
        void)."""
        ir = self.ir
        admin = self._admins()[0]
        own = next(d for d, (_r, a) in self.oracle.members.items()
                   if a == self.accounts[admin])
        mask = self.oracle.members[own][0]
        fresh = self._unbound()
        self.op("propose", OUTSIDER, "set_roles", own, ZERO_ADDRESS, mask, label="non-admin")
        self.op("propose", admin, len(PROPOSAL_KINDS) + 1, own, ZERO_ADDRESS, 0)
        self.op("propose", admin, "add_domain", own, self.accounts[fresh[0]] if fresh
                else ZERO_ADDRESS, mask, label="used domain id")
        self.op("propose", admin, "set_roles", NOT_A_DOMAIN, ZERO_ADDRESS, 0)
        self.op("propose", admin, "add_domain", NOT_A_DOMAIN, ZERO_ADDRESS, 0)
        if fresh:
            self.op("propose", admin, "add_domain", NOT_A_DOMAIN, self.accounts[fresh[0]],
                    1 << len(ir.roles), label="undeclared role")
            # the role mask is checked for add_domain and set_roles only: a rotation carrying
            # stray mask bits opens (its mask is ignored)
            self.op("propose", admin, "rotate_admin", own, self.accounts[fresh[0]],
                    1 << len(ir.roles), label="rotation with a stray mask")
        self.op("propose", admin, "set_roles", own, ZERO_ADDRESS, 1 << len(ir.roles),
                label="undeclared role")
        self.op("propose", admin, 0, own, ZERO_ADDRESS, 0, label="proposal kind 0")
        self.op("vote", admin, len(self.oracle.proposals) + 7, label="vote on no proposal")
        self.op("vote", admin, 0, label="vote on proposal 0")  # ids count from 1
        self.op("execute", admin, 0, label="execution of proposal 0")
        # a domain's admin enrols, into its own domain and in a role it may hold, another
        # domain's admin and an account another domain enrolled: both refused
        role = next((r for r in range(len(ir.roles)) if mask >> r & 1), None)
        if role is not None:
            others = [a for d, (_r, a) in self.oracle.members.items() if d != own]
            enrolled = [a for a, d in self.oracle.domains.items()
                        if d not in (own, ZERO32) and a not in others]
            for who in (*others[:1], *enrolled[:1]):
                self.op("grant", admin, role, who, own, label="another domain's account")
        # a domain's admin enrols itself in a role its domain may not hold
        full = (1 << len(ir.roles)) - 1
        for d, (allowed, who) in list(self.oracle.members.items()):
            if allowed != full:
                role = next(r for r in range(len(ir.roles)) if not allowed >> r & 1)
                i = self.accounts.index(who)
                self.op("grant", i, role, who, d, label="a role its domain may not hold")
                break
        status, pid = self.op("propose", admin, "set_roles", own, ZERO_ADDRESS, mask)
        if status == "ok":
            self.op("vote", admin, pid, label="second vote")
            if self.oracle.quorum() > 1:
                self.op("execute", OUTSIDER, pid, label="execution below quorum")
            for voter in self._admins()[1:self.oracle.quorum()]:
                self.op("vote", voter, pid)
            self.op("execute", OUTSIDER, pid)
            self.op("execute", OUTSIDER, pid, label="second execution")
        # a second deployment: the founder alone cannot remove itself, and nobody founds a
        # consortium with the zero domain id (a raw deployment: the client refuses it first)
        signer = self.keys.signer(self.accounts[ADMIN])
        solo = LifecycleClient.deploy(self.backend, self.contracts, signer, DOMAINS[0])
        ref = Interpreter(ir, self.accounts[ADMIN], DOMAINS[0])
        opened: Any = None  # the proposal the last "propose" opened

        def both(what: str, sender: int, kind: str, *call: Any) -> None:
            """``kind`` on the second deployment and its own reference, in lock-step; a vote
            or an execution without arguments is on the proposal just opened."""
            nonlocal opened
            call = call or (opened,)
            who = self.accounts[sender]
            expected = _outcome(getattr(ref, kind), who, *call)
            actual = _outcome(getattr(solo, kind), self.keys.signer(who), *call)
            if actual != expected:
                self._lockstep(f"{what}: {kind}", call, actual, expected)
            if kind == "propose":
                opened = expected[1]

        both("founder alone", ADMIN, "propose", "remove_domain", DOMAINS[0], ZERO_ADDRESS, 0)
        # ... but of two members either may be removed: the founder admits a second domain
        # (alone it is the quorum), whose admin enrols itself in every role but the admin role
        # and registers; the two remove it, and its admin can use none of those roles: it
        # registers and tries every step on its artefact, each refused by the role guard (a
        # registration or a step reading the roles granted, not those in effect, survived 53
        # examples of the factory layout)
        mask = ir.role_mask(tuple(r.name for r in ir.roles[1:]))  # every role but the admin
        both("two members", ADMIN, "propose", "add_domain", NEW_DOMAINS[0],
             self.accounts[OUTSIDER], mask)
        both("two members", ADMIN, "execute")
        for r in ir.roles[1:]:
            both("a member's own enrolment", OUTSIDER, "grant", r.index, self.accounts[OUTSIDER],
                 NEW_DOMAINS[0])

        def register(what: str) -> bytes:
            self.salt += 1
            salt = _v32(self.salt)
            both(what, OUTSIDER, "register", salt, _digest(b"r", salt), LOCATOR, [])
            return artefact_id(self.accounts[OUTSIDER], salt)

        mine_id = register("a member's registrant")
        both("two members", ADMIN, "propose", "remove_domain", NEW_DOMAINS[0], ZERO_ADDRESS, 0)
        both("two members", OUTSIDER, "vote")
        both("two members", ADMIN, "execute")
        register("a removed domain's registrant")
        if ref.exists(mine_id):
            for t in ir.transitions:
                both(f"{t.name} by a removed domain's holder", OUTSIDER, "fire", t.name, mine_id,
                     *((_digest(b"t", mine_id), LOCATOR, []) if t.evidence else ()))
        # a domain's admin key rotated to an account that domain enrolled itself (allowed:
        # only another domain's accounts are refused), on the founder alone (its quorum)
        allowed = ref.members[DOMAINS[0]][0]
        role = next((r for r in range(len(ir.roles)) if allowed >> r & 1), None)
        mine = self.accounts[INSIDERS[0]]
        if role is not None:
            both("rotation to an own account", ADMIN, "grant", role, mine, DOMAINS[0])
        both("rotation to an own account", ADMIN, "propose", "rotate_admin", DOMAINS[0], mine, 0)
        both("rotation to an own account", ADMIN, "execute")
        # the rotated-out key no longer speaks for the domain (a rotation after a key theft
        # must lock the thief out), the new one does
        both("the old admin key after the rotation", ADMIN, "propose", "set_roles",
             DOMAINS[0], ZERO_ADDRESS, allowed)
        both("the new admin key", INSIDERS[0], "propose", "set_roles", DOMAINS[0],
             ZERO_ADDRESS, allowed)
        # the rotated-out key still holds the admin role granted at deployment, but no domain:
        # it may grant only the roles the admin role administers (a role-admin check passing
        # any admin-role holder survived), and none once its domain may no longer hold the
        # admin role (a check of the roles granted, not of those in effect, survived)
        other = self.accounts[INSIDERS[1]]
        for r in ir.roles[1:]:
            both("the rotated-out admin key", ADMIN, "grant", r.index, other, DOMAINS[0])
        both("set_roles without the admin role", INSIDERS[0], "propose", "set_roles",
             DOMAINS[0], ZERO_ADDRESS, allowed & ~1)
        both("set_roles without the admin role", INSIDERS[0], "execute")
        for r in ir.roles[1:]:
            both("the rotated-out admin key, its admin role void", ADMIN, "revoke", r.index,
                 other)
        # what the second deployment logged, read as chain data alone (``--chain-only``)
        self.violations.extend(audit_events(ir, solo.events()))
        ctor = next(e for e in self.contracts.main.abi if e.get("type") == "constructor")
        values = [ZERO32 if i["type"] == "bytes32" else solo.template
                  for i in ctor["inputs"]]
        code = self.contracts.main.bytecode + abi_encode(
            [i["type"] for i in ctor["inputs"]], values)
        self._refused(self._raw(signer, None, code, gas=DEPLOY_GAS), "governance",
                      "a deployment founding the consortium with the zero domain id")

    # -- approvals: double approvals, mix-and-match, stale versions, Sybils -------------------
    def _approval_step(self, aid: bytes) -> TransitionIR | None:
        """A k-of-n step allowed now; if there is none, first an honest 1-of-n step to a state
        where one is allowed (so the approval attacks do not wait for the honest rules)."""
        options = [t for t in self._allowed(aid) if t.approvals > 1]
        if not options:
            for u in self._allowed(aid):
                target = self.ir.state(u.target).name
                if u.approvals == 1 and any(target in t.sources and t.approvals > 1
                                            for t in self.ir.transitions):
                    pool = self._eligible(aid, u, self._honest_digest(aid, u))
                    if pool:
                        self._fire(pool[0], u, aid, self._honest_digest(aid, u))
                    break
            options = [t for t in self._allowed(aid) if t.approvals > 1]
        return options[0] if options else None

    @rule(aid=artefacts, data=st.data())
    def approve_twice(self, aid: bytes, data: st.DataObject) -> None:
        """An approver sends the same approval (same version, same digest) a second time."""
        t = self._approval_step(aid)
        if t is None:
            return
        digest = self._honest_digest(aid, t)
        key = self._key(aid, t, digest)
        pool = [self.accounts.index(a) for a in self.oracle.approvers.get(key, [])
                if a in self.accounts]  # not the wallet: its rule drives it
        if not pool:
            who = self._approve_once(data, aid, t, digest)
            if who is None:
                return
            pool = [who]
        self._fire(data.draw(st.sampled_from(pool), label="again"), t, aid, digest,
                   label="second approval")

    @rule(aid=artefacts, data=st.data())
    def mix_and_match(self, aid: bytes, data: st.DataObject) -> None:
        """Two approvers in different domains approve different tuples: the model of this
        version with its own evaluation, and with the evaluation of the next version."""
        t = self._approval_step(aid)
        if t is None:
            return
        v = self._version(aid)
        good, mixed = tuple_digest(aid, v, v), tuple_digest(aid, v, v + 1)
        if not t.evidence:
            return
        first = self._eligible(aid, t, good)
        if not first:
            return
        a = data.draw(st.sampled_from(first), label="approver")
        self._fire(a, t, aid, good)
        second = [i for i in self._eligible(aid, t, mixed)
                  if i != a and self.oracle.domains.get(self.accounts[i])
                  != self.oracle.domains.get(self.accounts[a])]
        if second and self.oracle.exists(aid) and self._version(aid) == v:
            self._fire(data.draw(st.sampled_from(second), label="other"), t, aid, mixed,
                       label="mix-and-match approval")

    @rule(aid=artefacts, data=st.data())
    def stale_approvals(self, aid: bytes, data: st.DataObject) -> None:
        """An approval given for this version, then the artefact moves on (a new version) back
        to where the approval applies, and another approver approves the same digest: the two
        must not add up."""
        t = self._approval_step(aid)
        if t is None:
            return
        loops = [u for u in self._allowed(aid)
                 if u.approvals == 1 and self.ir.state(u.target).name in t.sources]
        if not loops:
            return
        digest = _digest(b"stale", aid) if t.evidence else ZERO32
        a = self._approve_once(data, aid, t, digest)
        if a is None:
            return
        u = self._draw_t(data, loops, label="new version by")
        movers = [i for i in self._eligible(aid, u, self._honest_digest(aid, u)) if i != a]
        if not movers or u not in self._allowed(aid):
            return
        self._fire(data.draw(st.sampled_from(movers)), u, aid, self._honest_digest(aid, u))
        if t not in self._allowed(aid):
            return
        second = [i for i in self._eligible(aid, t, digest) if i != a and
                  self.oracle.domains.get(self.accounts[i]) !=
                  self.oracle.domains.get(self.accounts[a])]
        if second:
            self._fire(data.draw(st.sampled_from(second), label="second"), t, aid, digest,
                       label="approval of a stale version's digest")

    @rule(aid=artefacts, data=st.data())
    def sybil(self, aid: bytes, data: st.DataObject) -> None:
        """One organisation, two approver accounts: the admin grants the step's role to a
        second account in the domain of one that approved; the second account approves too."""
        t = self._approval_step(aid)
        if t is None and any(u.approvals > 1 and u.count == "domains"
                             for u in self.ir.transitions):
            # the drawn artefact has moved past its approvals (or is a probe id): a fresh one
            aid = self._register_honestly(None)
            t = self._approval_step(aid)
        if t is None or t.count != "domains":
            return
        digest = self._honest_digest(aid, t)
        key = self._key(aid, t, digest)
        approvers = self.oracle.approvers.get(key, [])
        if not approvers:
            first = self._eligible(aid, t, digest)
            if not first:
                # earlier steps revoked or separated every holder: the role admin appoints one
                separated = {self.oracle.last_actor.get((aid, self.ir.transition(o).index))
                             for o in t.separate_from}
                candidates = [i for i in INSIDERS if self.accounts[i] not in separated]
                if not candidates:
                    return
                pick = data.draw(st.sampled_from(candidates), label="appointed approver")
                granter = self._granter(t.by[0], DOMAINS[pick % 3])
                self.op("grant", granter, t.by[0], self.accounts[pick], DOMAINS[pick % 3],
                        label="appointed approver")
                first = self._eligible(aid, t, digest)
                if not first:
                    return
            self._fire(data.draw(st.sampled_from(first), label="approver"), t, aid, digest)
            approvers = self.oracle.approvers.get(key, [])
            if not approvers:
                return
        mine = [a for a in approvers if a in self.accounts]  # not the wallet
        if not mine:
            return
        a = self.accounts.index(mine[0])
        separated = {self.oracle.last_actor.get((aid, self.ir.transition(o).index))
                     for o in t.separate_from}
        others = [i for i in INSIDERS if i != a and self.accounts[i] not in approvers
                  and self.accounts[i] not in separated]
        if not others:
            return
        sybil = data.draw(st.sampled_from(others), label="sybil")
        role = t.by[0]
        granter = self._granter(role, self.oracle.domains.get(self.accounts[a], ZERO32))
        self.op("grant", granter, role, self.accounts[sybil],
                self.oracle.domains.get(self.accounts[a], ZERO32), label="sybil grant")
        self._fire(sybil, t, aid, digest, label="sybil approval")

    # -- stolen keys ---------------------------------------------------------------------------
    @rule(aid=artefacts, data=st.data())
    def stolen_key(self, aid: bytes, data: st.DataObject) -> None:
        """The attacker signs with a victim's key (evil evidence), before or after the admin
        revokes the victim."""
        victim = data.draw(st.sampled_from(INSIDERS), label="victim")
        if data.draw(st.booleans(), label="revoked first"):
            self._revoke_all(victim)
        t = self._draw_t(data, self._allowed(aid) or list(self.ir.transitions))
        digest = _digest(b"evil", aid) if t.evidence else ZERO32
        self._fire(victim, t, aid, digest, label=f"attacker with the key of {victim}")
        if data.draw(st.booleans(), label="grants itself a role"):
            role = data.draw(st.sampled_from([r.name for r in self.ir.roles[1:] or self.ir.roles]))
            self.op("grant", victim, role, self.accounts[OUTSIDER], DOMAINS[2],
                    label=f"attacker with the key of {victim}")

    @rule(aid=artefacts, data=st.data())
    def stolen_approval_revoked(self, aid: bytes, data: st.DataObject) -> None:
        """A stolen approver key approves; the theft is detected and the victim revoked; an
        honest approver approves the same: the revoked approval must no longer count, and the
        stolen key can do nothing more."""
        t = self._approval_step(aid)
        if t is None:
            return
        digest = self._honest_digest(aid, t)
        first = self._eligible(aid, t, digest)
        if not first:
            return
        victim = data.draw(st.sampled_from(first), label="victim")
        self._fire(victim, t, aid, digest, label=f"attacker with the key of {victim}")
        self._revoke_all(victim)
        if t not in self._allowed(aid):
            return
        honest = [i for i in self._eligible(aid, t, digest) if i != victim]
        if honest:
            self._fire(data.draw(st.sampled_from(honest), label="honest"), t, aid, digest)
        if t in self._allowed(aid):
            self._fire(victim, t, aid, digest, label=f"attacker with the revoked key of {victim}")

    # -- replays, versions chosen by the caller ----------------------------------------------------
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        """Re-submit a signed raw transaction that was already mined, to this chain or to a
        twin chain (same accounts, same contracts at the same addresses, another chain id)."""
        if data.draw(st.booleans(), label="other chain"):
            self._replay_other_chain(data)
            return
        raw = data.draw(st.sampled_from(self.backend.sent), label="raw tx")
        try:
            tx_hash = self.backend.submit(raw)
        except EngineError:
            return
        self.backend.produce_block()
        self.violations.append(Violation(
            "raw-replay", f"a mined raw transaction was accepted again (0x{tx_hash.hex()}, "
                          f"receipt {_receipt_outcome(self.backend.receipt(tx_hash))})"))

    def _replay_other_chain(self, data: st.DataObject) -> None:
        if self.twin is None:
            self.twin = PyEVMBackend(funded=self.accounts, chain_id=self.backend.chain_id + 1)
            LifecycleClient.deploy(self.twin, self.contracts,
                                   self.keys.signer(self.accounts[ADMIN]), DOMAINS[0])
        raw = data.draw(st.sampled_from(self.backend.sent), label="raw tx")
        try:
            tx_hash = self.twin.submit(raw)
        except EngineError:
            return
        self.twin.produce_block()
        self.violations.append(Violation(
            "chain-id", f"a raw transaction signed for chain {self.backend.chain_id} was "
                        f"accepted by chain {self.twin.chain_id} (0x{tx_hash.hex()})"))

    @rule(aid=artefacts, data=st.data())
    def caller_version(self, aid: bytes, data: st.DataObject) -> None:
        """A role holder calls the step with an extra ``version`` argument: far ahead
        (fast-forward) or behind (rollback).  The contract assigns versions: refused."""
        t = self._draw_t(data, self._allowed(aid) or list(self.ir.transitions))
        v = self._version(aid)
        version = data.draw(st.sampled_from([v + 1000, 2**64] + ([v - 1] if v > 1 else [])),
                            label="version")
        sender = data.draw(st.sampled_from(self._eligible(aid, t, self._honest_digest(aid, t))
                                           or self._holders(t) or [OUTSIDER]), label="sender")
        digest = self._honest_digest(aid, t)
        types = ["bytes32", "bytes32", "string", "bytes32[]"] if t.evidence else ["bytes32"]
        args: list[Any] = [aid, digest, LOCATOR, []] if t.evidence else [aid]
        sig = f"{t.name}({','.join([*types, 'uint256'])})"
        calldata = keccak(sig.encode())[:4] + abi_encode([*types, "uint256"], [*args, version])
        receipt = self._raw(self.keys.signer(self.accounts[sender]), self._target(aid), calldata)
        if receipt is not None and receipt.status:
            self.violations.append(Violation(
                "caller-version", f"{self._who(sender)} called {sig} with version {version} "
                                  f"on {_short(aid)} (at version {v}) and it was accepted"))

    # -- spam ----------------------------------------------------------------------------------
    @rule(data=st.data())
    def spam(self, data: st.DataObject) -> None:
        """A burst of junk registrations in one block, an honest registration behind it."""
        ir = self.ir
        registrants = ([i for i in range(N_ACCOUNTS) if self._holds(i, ir.register_by)]
                       if ir.register_by else list(INSIDERS))
        spammer = data.draw(st.sampled_from([OUTSIDER, *registrants]), label="spammer")
        n = data.draw(st.integers(2, 6), label="burst")
        honest = [i for i in registrants if i != spammer]
        batch = LifecycleClient(self.backend, self.contracts, self.client.address, automine=False)
        ops = []
        plan = [(spammer, b"junk")] * n + ([(honest[0], b"register")] if honest else [])
        for sender, tag in plan:
            self.salt += 1
            args: tuple[Any, ...] = (_v32(self.salt), _digest(tag, _v32(self.salt)), LOCATOR, [])
            expected = _outcome(self.oracle.register, self.accounts[sender], *args)
            ops.append((sender, args, expected,
                        batch.register(self.keys.signer(self.accounts[sender]), *args)))
        self.backend.produce_block()
        for sender, args, expected, op in ops:
            actual = _outcome(batch.result, op)
            if actual != expected:
                self._lockstep(f"spam burst, {self._who(sender)}: register", args, actual,
                               expected)

    # -- phishing ------------------------------------------------------------------------------
    @rule(aid=artefacts, data=st.data())
    def phish(self, aid: bytes, data: st.DataObject) -> None:
        """A role holder is tricked into calling the relay, which makes the step's call; or
        the admin is, and the relay grants the attacker a role."""
        if data.draw(st.integers(0, 3), label="admin phished") == 0:
            self._phish_admin(data)
            return
        t = self._draw_t(data, self._allowed(aid) or list(self.ir.transitions))
        digest = _digest(b"evil", aid) if t.evidence else ZERO32
        victim = data.draw(st.sampled_from(self._holders(t) or [ADMIN]), label="victim")
        payload = self._calldata(t, aid, digest)
        args: list[Any] = [t.name, aid, digest, LOCATOR, []] if t.evidence else [t.name, aid]
        self._relay(victim, self._target(aid), payload, "fire", args)

    def _phish_admin(self, data: st.DataObject) -> None:
        role = data.draw(st.sampled_from([r.name for r in self.ir.roles]), label="role")
        args: list[Any] = [role, self.accounts[OUTSIDER], DOMAINS[2]]
        payload = self.client.contract_abi.encode_call(
            "grant_role", [self.ir.role(role).index, *args[1:]])
        self._relay(ADMIN, self.client.address, payload, "grant", args)

    def _relay(self, victim: int, target: str, payload: bytes, kind: str,
               args: list[Any], via: str | None = None,
               what: str = "phished through the relay") -> tuple[str, Any]:
        """``victim`` calls the relay contract ``via`` (the phishing relay by default), which
        calls ``target`` with ``payload``; the reference does ``kind(*args)`` with the relay
        as its sender.  Returns the reference's outcome."""
        via = via or self.relay
        data = encode_call(_RELAY_ABI, "claim", [target, payload])
        expected = _outcome(getattr(self.oracle, kind), via, *args)
        receipt = self._raw(self.keys.signer(self.accounts[victim]), via, data,
                            gas=LATER_GAS if kind == "register" else RAW_GAS)
        actual = _receipt_outcome(receipt)
        if actual[0] != expected[0] or (actual[0] != "ok" and actual != expected):
            self._lockstep(f"{self._who(victim)} {what}: {kind}", args, actual, expected)
        return expected

    # -- roles held by a contract account -------------------------------------------------------
    @rule(aid=artefacts, data=st.data())
    def wallet(self, aid: bytes, data: st.DataObject) -> None:
        """A contract account holds roles (a smart-contract wallet or multisig; this one does
        whatever anyone asks it to): it registers an artefact or not; then one to three allowed
        steps are done, each by the wallet (the call signed by a drawn account, holding roles
        or not) or honestly by an eligible account, the wallet then trying a step separated
        from its own; then, at a k-of-n step, the wallet approves, after an eligible account or
        first.  The actor of the wallet's calls is the wallet: the account that signed
        (``tx.origin``) must change nothing, neither who may act, nor the approvals counted and
        their trust domain, nor separation of duty, nor what is recorded."""
        drivers = st.sampled_from(range(N_ACCOUNTS))
        if data.draw(st.booleans(), label="the wallet registers"):
            self.salt += 1
            salt = _v32(self.salt)
            args: list[Any] = [salt, _digest(b"register", salt), *self._evidence()]
            payload = self.client.contract_abi.encode_call("register", args)
            status, value = self._relay(data.draw(drivers, label="signer"), self.client.address,
                                        payload, "register", args, via=self.wallet_address,
                                        what="through the wallet")
            if status == "ok":
                aid = value
        for _ in range(data.draw(st.integers(1, 3), label="steps")):
            options = self._allowed(aid)
            if not options:
                break
            t = self._draw_t(data, options, label="step")
            digest = self._honest_digest(aid, t)
            if not data.draw(st.booleans(), label="by the wallet"):
                pool = self._eligible(aid, t, digest)
                if pool:
                    self._fire(data.draw(st.sampled_from(pool), label="sender"), t, aid, digest)
                continue
            self._wallet_fire(data, aid, t, digest)
            # the wallet then does a step separated from the one it did (signed by another
            # account): refused, as the wallet is the actor of both
            later = [u for u in self._allowed(aid)
                     if t.name in (*u.separate_from, *u.separate_domain_from)]
            if later:
                u = self._draw_t(data, later, label="separated step")
                self._wallet_fire(data, aid, u, self._honest_digest(aid, u))
        k_of_n = self._approval_step(aid)
        if k_of_n is None and any(t.approvals > 1 for t in self.ir.transitions):
            aid = self._register_honestly(None)  # past its approvals: a fresh artefact
            k_of_n = self._approval_step(aid)
        if k_of_n is not None:
            digest = self._honest_digest(aid, k_of_n)
            if data.draw(st.booleans(), label="an account approves first"):
                self._approve_once(data, aid, k_of_n, digest)
            if k_of_n in self._allowed(aid):
                # signed by any account, or by one that approved already (a multisig member
                # who also approves with their own key)
                signers = [self.accounts.index(a)
                           for a in self.oracle.approvers.get(self._key(aid, k_of_n, digest), [])
                           if a in self.accounts]
                self._wallet_fire(data, aid, k_of_n, digest, signers)

    def _wallet_fire(self, data: st.DataObject, aid: bytes, t: TransitionIR,
                     digest: bytes, signers: Sequence[int] = ()) -> None:
        """The wallet does ``t`` on ``aid``, the call signed by a drawn account (one of
        ``signers`` if any)."""
        args = [t.name, aid, digest, *self._evidence()] if t.evidence else [t.name, aid]
        payload = self.client.transition_abi.encode_call(t.name, args[1:])
        pool = list(signers) or list(range(N_ACCOUNTS))
        self._relay(data.draw(st.sampled_from(pool), label="signer"),
                    self._target(aid), payload, "fire", args, via=self.wallet_address,
                    what="through the wallet")

    # -- the clone's initialiser ---------------------------------------------------------------
    @precondition(lambda self: getattr(self, "layout", None) == "clone")
    @rule(aid=artefacts, data=st.data())
    def reinitialize(self, aid: bytes, data: st.DataObject) -> None:
        """Anyone calls ``initialize`` again on an artefact's proxy (or on the implementation),
        with the artefact's id or another one."""
        sender = data.draw(st.sampled_from([OUTSIDER, ADMIN, *INSIDERS]), label="sender")
        new_id = data.draw(st.sampled_from([aid, _digest(b"other", aid)]), label="id")
        where = data.draw(st.sampled_from(["proxy", "implementation"]), label="where")
        to = self.client.artefact_address(aid) if where == "proxy" else self.client.template
        if where == "proxy" and not self.backend.code(to):
            return
        calldata = keccak(b"initialize(bytes32)")[:4] + new_id
        receipt = self._raw(self.keys.signer(self.accounts[sender]), to, calldata)
        if receipt is not None and receipt.status:
            self.violations.append(Violation(
                "initialiser", f"{self._who(sender)} called initialize({_short(new_id)}) on the "
                               f"{where} of {_short(aid)} and it was accepted"))

    # -- invariants ----------------------------------------------------------------------------
    @invariant()
    def properties_hold(self) -> None:
        if not hasattr(self, "oracle"):
            return
        hits = self.stats.setdefault("guard_hits", {})
        for reason in self.backend.reverts:  # which guards this example (sequence) made fail
            hits.setdefault(reason, set()).add(self.example)
        self.backend.reverts.clear()
        found = list(self.violations)
        self.violations = []
        head = self.backend.head().hash
        if not found and head == self.checked_head:
            return  # no block since the last check: chain and reference are unchanged
        self.checked_head = head
        events = self.client.events()
        found += audit_events(self.ir, events)
        prev = self.prev_events
        if events[: len(prev)] != prev:
            at = _first_difference(prev, events)
            found.append(Violation("append-only", f"the event log changed at event #{at} (or "
                                                  "shrank) since the previous step"))
        histories = {}
        for aid in {e.id for e in events if isinstance(e, Registered)}:
            hist = history_from_events(self.ir, events, aid)
            old = self.prev_histories.get(aid, [])
            if hist[: len(old)] != old:
                found.append(Violation("append-only", f"the history of {_short(aid)} is no "
                                                      "longer an extension of its earlier one"))
            histories[aid] = hist
        self.prev_events, self.prev_histories = events, histories
        storage = storage_snapshot(self.client, events)
        replayed = replay(self.ir, events)
        if replayed != storage:
            found.append(Violation("replay", _diff("replay(events)", replayed,
                                                   "storage", storage)))
        found += self._other_views(events, replayed)
        if self.lockstep and events != self.oracle.events:
            found.append(Violation("events", _event_diff(events, self.oracle.events)))
        oracle = self.oracle.snapshot()
        if self.lockstep and storage != oracle:
            found.append(Violation("lock-step", _diff("storage", storage, "reference", oracle)))
        if found:
            raise PropertyViolation(found)


    def teardown(self) -> None:
        """At the end of each example, the approval store read beyond the keys the log names
        (:func:`storage_snapshot` reads those): for every (artefact, step, digest) some
        Approved event names, the approvers stored for each version from 1 to two past the
        artefact's current one must be those the replayed log gives (none where no Approved
        names that version).  An approval filed under another version too (carried over a new
        version, or waiting for a later one) shows here before any call uses it."""
        if not hasattr(self, "oracle"):
            return
        events = self.client.events()
        replayed = replay(self.ir, events)
        client, found = self.client, []
        families = {(e.id, e.transition, e.digest) for e in events if isinstance(e, Approved)}
        for aid, t, digest in sorted(families):
            record = replayed.records.get(aid)
            if record is None:
                continue
            for v in range(1, record[1] + 3):
                res = client.backend.call(client.artefact_address(aid),
                                          client.transition_abi.encode_call(
                                              "approvers_of", [aid, t, v, digest]))
                stored = ([to_checksum_address(a) for a in
                           client.transition_abi.decode_output("approvers_of", res.output)]
                          if res.success and res.output else None)
                want = replayed.approvers.get(approval_key(aid, t, v, digest), [])
                if stored != want:
                    found.append(Violation("replay", (
                        f"approvers_of({_short(aid)}, {t}, version {v}, {_short(digest)}) is "
                        f"{_show(stored)}; the replayed log gives {_show(want)} (the artefact "
                        f"is at version {record[1]})")))
        if found:
            raise PropertyViolation(found)

    def _other_views(self, events: Sequence[LifecycleEvent],
                     replayed: LifecycleSnapshot) -> list[Violation]:
        """The views of the published interface that :func:`storage_snapshot` does not read,
        against the replayed log (a consumer trusts them as it trusts ``state_of``):
        ``artefact_id`` of each registration (read once per id: a pure function), in the
        factory and clone layouts ``artefact_of`` of each registered id (the contract the
        client computes and routes to), in a consortium ``effective_roles`` of each account
        the log names, and ``IR_FINGERPRINT`` (once per example)."""
        client, ir, out = self.client, self.ir, []
        if not self.fingerprint_checked:
            self.fingerprint_checked = True
            if client.fingerprint() != ir.fingerprint():
                out.append(Violation("replay", f"IR_FINGERPRINT() is {client.fingerprint()}, "
                                               f"not the IR's {ir.fingerprint()}"))
        for ev in events:
            if not isinstance(ev, Registered) or ev.id in self.ids_checked:
                continue
            self.ids_checked.add(ev.id)
            got = client.artefact_id(ev.registrant, ev.salt)
            if got != ev.id:
                out.append(Violation("replay", f"artefact_id({ev.registrant}, {_short(ev.salt)}) "
                                               f"is {_short(got)}; {_short(ev.id)} was "
                                               "registered with them"))
        if self.layout != "registry":
            for aid in replayed.records:
                res = client.backend.call(client.address, client.contract_abi.encode_call(
                    "artefact_of", [aid]))
                where = (to_checksum_address(client.contract_abi.decode_output(
                    "artefact_of", res.output)) if res.success and res.output else None)
                if where != client.artefact_address(aid):
                    out.append(Violation("replay", f"artefact_of({_short(aid)}) is {where}, not "
                                                   f"its contract {client.artefact_address(aid)}"))
        if ir.consortium is not None:
            for account, mask in replayed.roles.items():
                member = replayed.members.get(replayed.domains.get(account, ZERO32))
                want = mask & member[0] if member is not None else 0
                if client.effective_roles(account) != want:
                    out.append(Violation("replay", f"effective_roles({account}) is "
                                                   f"{client.effective_roles(account)}; the "
                                                   f"replayed log gives {want}"))
        return out


def storage_snapshot(
    client: LifecycleClient, events: Sequence[LifecycleEvent]
) -> LifecycleSnapshot:
    """The contract storage read through its views, for every id, account and approval key the
    events mention (what :meth:`LifecycleClient.snapshot` reads, each read once)."""
    backend = client.backend
    ir = client.ir

    def view(address: str, abi: ContractABI, fn: str, *args: Any) -> Any:
        res = backend.call(address, abi.encode_call(fn, list(args)))
        if not res.success:
            raise AssertionError(f"view {fn} reverted: {res.revert_reason}")
        return abi.decode_output(fn, res.output) if res.output else None

    def aview(fn: str, aid: bytes, *args: Any) -> Any:
        return view(client.artefact_address(aid), client.transition_abi, fn, aid, *args)

    ids: dict[bytes, None] = {}
    accounts: dict[str, bool] = {}
    keys: dict[bytes, tuple[bytes, int, int, bytes]] = {}
    gov_domains: set[bytes] = set()
    for ev in events:
        if isinstance(ev, GovExecuted | GovProposed | GovVoted):
            gov_domains.add(ev.domain)
        elif isinstance(ev, Registered | Transitioned):
            ids[ev.id] = None
        elif isinstance(ev, RoleGranted | RoleRevoked):
            accounts[ev.account] = accounts.get(ev.account, False) or isinstance(ev, RoleGranted)
        elif isinstance(ev, Approved):
            keys[approval_key(ev.id, ev.transition, ev.version, ev.digest)] = (
                ev.id, ev.transition, ev.version, ev.digest)
    snap = LifecycleSnapshot()
    sod = sorted(ir.transition(n).index for n in ir.sod_targets)
    for aid in ids:
        snap.records[aid] = (int(aview("state_of", aid) or 0), int(aview("version_of", aid) or 0))
        for t in sod:
            actor = aview("last_actor_of", aid, t)
            if actor is not None and int(actor, 16):
                snap.last_actor[(aid, t)] = to_checksum_address(actor)
    for account, granted in accounts.items():
        snap.roles[account] = int(view(client.address, client.contract_abi, "roles", account))
        if granted:
            snap.domains[account] = bytes(
                view(client.address, client.contract_abi, "domains", account))
    for key, (aid, t, v, digest) in keys.items():
        snap.approvers[key] = [to_checksum_address(a)
                               for a in aview("approvers_of", aid, t, v, digest) or ()]
    if ir.consortium is not None:  # members, proposals and epoch, as the client reads them
        client.read_governance(snap, gov_domains)
    return snap.normalised()


def _show(value: Any) -> str:
    """Readable call arguments and outcomes: bytes as short hex."""
    if isinstance(value, bytes):
        return "0" if value == ZERO32 else _short(value)
    if isinstance(value, tuple | list):
        inner = ", ".join(_show(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    return repr(value)


def _diff(a_name: str, a: Any, b_name: str, b: Any) -> str:
    parts = []
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if x == y:
            continue
        if not (isinstance(x, dict) and isinstance(y, dict)):  # a counter such as the epoch
            parts.append(f"{f.name} differ ({_show(x)} vs {_show(y)})")
            continue
        keys = sorted(set(x) ^ set(y) | {k for k in set(x) & set(y) if x[k] != y[k]},
                      key=repr)[:3]
        shown = ", ".join(f"{_key(k)}: {x.get(k)!r} vs {y.get(k)!r}" for k in keys)
        parts.append(f"{f.name} differ ({shown})")
    return f"{a_name} != {b_name}: " + "; ".join(parts)


def _first_difference(a: Sequence[Any], b: Sequence[Any]) -> int:
    """The first index at which ``a`` and ``b`` differ (the shorter one's length if one is a
    prefix of the other)."""
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                min(len(a), len(b)))


def _event_diff(chain: Sequence[LifecycleEvent], reference: Sequence[LifecycleEvent]) -> str:
    """Where the chain's event log first differs from the reference interpreter's."""
    at = _first_difference(chain, reference)

    def show(i: int, log: Sequence[LifecycleEvent]) -> str:
        if i >= len(log):
            return "no event"
        e = log[i]
        fields = ", ".join(f"{f.name}={_show(getattr(e, f.name))}"
                           for f in dataclasses.fields(e))
        return f"{type(e).__name__}({fields})"

    return (f"event #{at}: the contract logged {show(at, chain)}, the reference interpreter "
            f"{show(at, reference)}")


def _key(k: Any) -> str:
    if isinstance(k, bytes):
        return _short(k)
    if isinstance(k, tuple):
        return "(" + ", ".join(_key(x) for x in k) + ")"
    return str(k)


_RELAY_ABI: list[dict[str, Any]] = []


def threat_machine(
    compiled: CompiledContract | CompiledLayout, layout: str | None = None, *,
    lockstep: bool = True,
) -> type[ThreatMachine]:
    """A :class:`ThreatMachine` class bound to ``compiled`` in ``layout`` (see
    :func:`prepare_layout`).  ``Machine.stats["examples"]`` counts the examples it ran.
    ``lockstep=False``: no comparison with the reference interpreter, chain-data properties
    only."""
    bundle = prepare_layout(compiled, layout)
    interface = interface_violations(compiled, layout)
    relay = compile_source(RELAY_SOURCE, "Relay")
    if not _RELAY_ABI:
        _RELAY_ABI.extend(relay.abi)
    name = f"ThreatMachine_{bundle.name}_{bundle.layout}"
    machine: type[ThreatMachine] = type(name, (ThreatMachine,), {
        "contracts": bundle, "relay_code": relay.bytecode, "stats": {"examples": 0},
        "lockstep": lockstep, "interface": interface,
    })
    return machine


def run_threat_properties(
    compiled: CompiledContract | CompiledLayout,
    layout: str | None = None,
    max_examples: int = 20,
    seed: int = 0,
    *,
    steps: int = 30,
    shrink: bool = False,
    lockstep: bool = True,
) -> PropertyResult:
    """Run the threat machine on ``compiled`` and report the first falsifying example.

    Reproducible: hypothesis is seeded with ``seed`` and no example database is read or
    written.  ``shrink=False`` (default) reports the first failing example as found, which is
    what mutation testing needs (how soon a mutant dies); ``shrink=True`` minimises it first.
    ``lockstep=False`` checks the chain-data properties only (no reference interpreter).
    """
    machine = threat_machine(compiled, layout, lockstep=lockstep)

    def hits() -> dict[str, int]:
        return {r: len(ex) for r, ex in machine.stats.get("guard_hits", {}).items()}
    phases = [Phase.explicit, Phase.generate, *([Phase.shrink] if shrink else [])]
    config = settings(
        max_examples=max_examples, stateful_step_count=steps, deadline=None, database=None,
        derandomize=False, phases=phases, print_blob=False, report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
    )
    lines: list[str] = []
    failed_at: int | None = None
    start = time.perf_counter()

    class _Counting(machine):  # type: ignore[valid-type,misc]
        def check_invariants(self, *args: Any, **kw: Any) -> None:
            nonlocal failed_at
            try:
                super().check_invariants(*args, **kw)
            except Exception:
                if failed_at is None:
                    failed_at = getattr(self, "example", None)
                raise

    _Counting.__name__ = machine.__name__
    hypothesis_seed(seed)(_Counting)
    try:
        with with_reporter(lambda text: lines.append(str(text))):
            run_state_machine_as_test(_Counting, settings=config)
    except Exception as exc:  # the falsifying example: report it as text
        seconds = time.perf_counter() - start
        violations = _violations_of(exc)
        if violations:
            props = tuple(dict.fromkeys(v.prop for v in violations))
            head = "\n".join(str(v) for v in violations)
        else:
            props = ("error",)
            head = f"[error] {type(exc).__name__}: {exc}"
        notes = [n for n in getattr(exc, "__notes__", []) if not n.startswith("Failing test")]
        steps_text = "\n".join(line for line in [*notes, *lines] if line.strip())
        return PropertyResult(
            passed=False, failure=f"{head}\nfalsifying steps:\n{steps_text}",
            examples=failed_at or machine.stats["examples"], prop=props[0], props=props,
            seconds=seconds, guard_hits=hits(),
        )
    found = (capacity_probe(machine.contracts)
             if lockstep and budget_guards(machine.contracts.ir) else [])
    if found:  # after the examples (a mutant they kill never pays for the long probe)
        return PropertyResult(
            passed=False, failure="\n".join(str(v) for v in found), prop=found[0].prop,
            props=(found[0].prop,), examples=machine.stats["examples"],
            seconds=time.perf_counter() - start, guard_hits=hits())
    return PropertyResult(passed=True, failure=None, examples=machine.stats["examples"],
                          seconds=time.perf_counter() - start, guard_hits=hits())


def _violations_of(exc: BaseException) -> tuple[Violation, ...]:
    if isinstance(exc, PropertyViolation):
        return exc.violations
    for inner in getattr(exc, "exceptions", ()) or ():  # hypothesis may group failures
        found = _violations_of(inner)
        if found:
            return found
    return ()
