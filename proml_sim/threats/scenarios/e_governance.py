"""E1, E3, E4: who holds power over roles and trust domains (issue 10); E2 (one organisation
verifying its own model) needs no code: its threat model's ``[play]`` runs it, with the
single-admin design beside (``[play.compare]``).

Each attack runs against three systems: the SQLite baseline (``baseline``), the single-admin
design (``SingleAdminModel``: recorded as the ``single_admin_asr`` metric of the ProML run,
since the runner compares two systems) and the consortium (``Model``, the default: quorum of
member domains; the ProML verdict).  The chain runs are direct (a PyEVM chain and the
lifecycle client, no network model): these attacks are about authority, not timing.

Each attack's row (E1-E4) is its threat model in ``threat_models/``.

Outcomes through :func:`~proml_sim.threats.kit.outcome`: success = a model verified on a bogus
evaluation (E1), a governance act by the stolen or Sybil keys (E3, E4);
detection = the defences each side has: the baseline's outside auditor
(:class:`~proml_sim.threats.kit.Auditor`) over its audit table, and on chain every member's
watch of the consortium's events
(:func:`member_watch`: a proposal its domain did not make, a grant into a non-member domain).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from proml_sim.chain import KeyRing, PyEVMBackend
from proml_sim.chain.client import LifecycleClient
from proml_sim.compiler import compile_artefact
from proml_sim.dsl import Consortium
from proml_sim.errors import LifecycleError, UsageError
from proml_sim.ir import ZERO32, GovExecuted, GovProposed, GovVoted, RoleGranted, build_ir
from proml_sim.ir.model import PROPOSAL_KINDS, LifecycleIR
from proml_sim.lifecycles import Model, SingleAdminModel
from proml_sim.sim import digest_of
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.kit import Alarm, Auditor, central, outcome
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import params, salt

_Z = "0x" + "00" * 20


def _dom(name: str) -> bytes:
    return name.encode().ljust(32, b"\0")


class _Chain:
    """A lifecycle on a fresh chain; ``try_(who, op, *args)`` returns 'ok' or the revert."""

    def __init__(self, cls: Any, seed: int, n_keys: int = 12, domain: str = "founder") -> None:
        self.keys = KeyRing.from_seed(f"gov-threat-{seed}", n_keys)
        self.a = list(self.keys.addresses)
        self.client = LifecycleClient.deploy(
            PyEVMBackend(funded=self.a), compile_artefact(cls), self.keys.signer(self.a[0]),
            _dom(domain) if domain else ZERO32)
        self.reverts: list[str] = []

    def do(self, who: int, op: str, *args: Any) -> Any:
        return getattr(self.client, op)(self.keys.signer(self.a[who]), *args)

    def try_(self, who: int, op: str, *args: Any) -> str:
        try:
            self.do(who, op, *args)
            return "ok"
        except LifecycleError as exc:
            self.reverts.append(f"{type(exc).__name__}: {exc}")
            return type(exc).__name__


def _train(ch: _Chain, op: int, dev: int, seed: int) -> bytes:
    """Accounts ``op`` (an operator) and ``dev`` (a developer) register and train a model."""
    mid: bytes = ch.do(op, "register", salt(f"m{seed}"))
    ch.do(dev, "fire", "train", mid, digest_of("weights", seed), "", [])
    return mid


def member_watch(ch: _Chain, domain: str) -> list[Alarm]:
    """Defence of a member domain's node (what ``proml consortium list`` and the chain's events
    show anyone): an alarm for a proposal its own domain's admin did not make, and for a role
    granted into a domain that is not a member."""
    kinds = {v: k for k, v in PROPOSAL_KINDS.items()}
    admin_of = {_dom("founder"): ch.a[0]}  # the deployer founds the consortium
    alarms: list[Alarm] = []
    for e in ch.client.events():
        if isinstance(e, GovExecuted) and kinds.get(e.kind) in ("add_domain", "rotate_admin"):
            admin_of[e.domain] = e.account
        elif isinstance(e, GovExecuted) and kinds.get(e.kind) == "remove_domain":
            admin_of.pop(e.domain, None)
        elif isinstance(e, GovProposed) and e.proposer != admin_of.get(_dom(domain)):
            alarms.append(Alarm(0.0, f"member-watch:{domain}", f"proposal {e.id} "
                                f"({kinds.get(e.kind)}) for {_name(e.domain)!r}"))
        elif isinstance(e, RoleGranted) and e.domain not in admin_of:
            alarms.append(Alarm(0.0, f"member-watch:{domain}",
                                f"role granted into non-member domain {_name(e.domain)!r}"))
    return alarms


def _name(domain: bytes) -> str:
    return domain.rstrip(b"\0").decode(errors="replace")


def _verifiers_needed(ir: LifecycleIR) -> int:
    """k of Model.verify, read from the lifecycle (on chain: what an attacker reads)."""
    return int(ir.transition("verify").approvals)


def _baseline_db_admin(tm: ThreatModel, workdir: Path, seed: int) -> Outcome:
    """The baseline: the cast's database, run by eve; its operator registers a model and its
    developer trains it; then ``k`` Sybil verifiers that whoever administers the database
    grants under made-up domain labels approve a bogus evaluation; the outside auditor then
    visits."""
    db = central(tm, workdir, {"Model": Model}, admin="eve", name="g")
    aid = db.register("op", "Model", "m")
    db.fire("dev", "train", aid, "w")
    auditor = Auditor(db, 1.0)
    auditor.visit_until(1.0)
    bogus = digest_of("bogus-evaluation", seed).hex()
    sybils = [f"sybil-{i}" for i in range(_verifiers_needed(build_ir(Model)))]
    for i, who in enumerate(sybils):
        db.grant(who, "Model", "verifier", f"lab-{i}")
    for who in sybils:
        db.fire(who, "verify", aid, bogus, 2.0)
    alarms = auditor.visit_until(3.0)
    state = db.admin_sql("SELECT state FROM artefacts WHERE id=?", (aid,))[0][0]
    db.close()
    return outcome(state == "verified", attack_at=2.0, alarms=alarms)


def _single_admin(tm: ThreatModel, seed: int) -> bool:
    """The single-admin design: its ADMIN key (account 0) grants the cast its roles (accounts
    1, 2, ... in cast order, in their domains); the operator registers a model, the developer
    trains it; then the ADMIN grants verifier to k accounts of its own under k made-up
    domains, whose approvals of a bogus evaluation satisfy the k-of-n counted by domain.
    Whether the model is verified."""
    ch = _Chain(SingleAdminModel, seed, domain="")
    acct = {a.name: i for i, a in enumerate(tm.cast(), 1)}
    for a in tm.cast():
        for _, role in a.roles:
            ch.do(0, "grant", role, ch.a[acct[a.name]], _dom(a.domain))
    mid = _train(ch, acct["op"], acct["dev"], seed)
    ev = digest_of("bogus-evaluation", seed)
    sybils = list(range(8, 8 + _verifiers_needed(ch.client.ir)))
    for i in sybils:
        ch.try_(0, "grant", "verifier", ch.a[i], _dom(f"lab-{i - 8}"))
    for i in sybils:
        ch.try_(i, "fire", "verify", mid, ev, "", [])
    return ch.client.state(mid) == "verified"


def _consortium(seed: int, members: int, cls: Any = Model, n_keys: int = 0,
                roles: tuple[str, ...] = ("operator", "developer", "verifier", "auditor")
                ) -> _Chain:
    """The founder (account 0, domain 'founder') and ``members`` more member domains org-i,
    admins 1..members, each allowed ``roles`` (by default every role except admin); each joins
    honestly: the founder proposes, members 1.. vote up to the quorum, the founder executes."""
    ch = _Chain(cls, seed, n_keys=n_keys or max(12, members + 10))
    mask = sum(ch.client.ir.role(r).bit for r in roles)
    for i in range(1, members + 1):
        pid = ch.do(0, "propose", "add_domain", _dom(f"org-{i}"), ch.a[i], mask)
        for v in range(1, min(i, _quorum(ch))):
            ch.do(v, "vote", pid)
        ch.do(0, "execute", pid)
    return ch


def _quorum(ch: _Chain) -> int:
    consortium = ch.client.ir.consortium
    return 1 if consortium is None else int(consortium.quorum)


def _members(tm: ThreatModel) -> int:
    p = params(tm, {"members": 3}, positive=["members"])
    if int(p["members"]) < 3:
        raise UsageError(f"{tm.id}: members={p['members']}; the scenario needs at least 3 "
                         "member domains besides the founder (operator, developer, verifier)")
    return int(p["members"])


def _note(ch: _Chain) -> str:
    return "; ".join(sorted(set(ch.reverts)))


def _trained_in_consortium(tm: ThreatModel, seed: int) -> tuple[_Chain, int, bytes]:
    """The consortium of ``members`` domains, ``b`` (the first account that administers no
    domain: org-1's operator, b + 1 org-2's developer) and a model in training."""
    n = _members(tm)
    ch, b = _consortium(seed, n), n + 1
    ch.do(1, "grant", "operator", ch.a[b], _dom("org-1"))
    ch.do(2, "grant", "developer", ch.a[b + 1], _dom("org-2"))
    return ch, b, _train(ch, b, b + 1, seed)


class _DatabaseAdmin:
    """E1-E3's baseline (:func:`_baseline_db_admin`): whoever holds the database's admin
    password grants any role under any domain label (a stolen password cannot be rotated
    away: the thief keeps granting), and no rule separates a developer's own verifier."""

    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        _members(tm)
        return _baseline_db_admin(tm, workdir, seed)


def _verified_outcome(ch: _Chain, mid: bytes, single: bool) -> Outcome:
    """Success: the model verified (org-3's members watch); the single-admin run beside."""
    return outcome(ch.client.state(mid) == "verified", attack_at=0.0,
                   alarms=member_watch(ch, "org-3"), note=_note(ch),
                   metrics={"single_admin_asr": float(single)})


@scenario("E1")
class SybilApprovers(_DatabaseAdmin):
    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        single = _single_admin(tm, seed)
        ch, b, mid = _trained_in_consortium(tm, seed)
        bogus = digest_of("bogus-evaluation", seed)
        # the compromised founder key: accounts under made-up domains, then its own domain,
        # then a Sybil domain proposed and executed alone
        k = _verifiers_needed(ch.client.ir)
        for i in range(k):
            ch.try_(0, "grant", "verifier", ch.a[b + 3 + i], _dom(f"lab-{i}"))
            ch.try_(0, "grant", "verifier", ch.a[b + 3 + i], _dom("founder"))
            ch.try_(b + 3 + i, "fire", "verify", mid, bogus, "", [])
        pid = ch.do(0, "propose", "add_domain", _dom("lab-y"), ch.a[b + 2],
                    ch.client.ir.role("verifier").bit)
        ch.try_(0, "execute", pid)
        ch.try_(b + 2, "grant", "verifier", ch.a[b + 2], _dom("lab-y"))
        ch.try_(b + 2, "fire", "verify", mid, bogus, "", [])
        return _verified_outcome(ch, mid, single)


@scenario("E3")
class StolenDomainAdminKey(_DatabaseAdmin):
    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        # single admin: the deployer key cannot be replaced; the thief keeps granting
        single = _single_admin(tm, seed)
        n = _members(tm)
        ch = _consortium(seed, n)
        # org-1's admin key (account 1) is stolen; a quorum of the others rotates it to a
        # fresh key (account n + 9)
        fresh = n + 9
        others = list(range(2, n + 1))
        pid = ch.do(others[0], "propose", "rotate_admin", _dom("org-1"), ch.a[fresh], 0)
        for v in others[1:_quorum(ch)]:
            ch.do(v, "vote", pid)
        rotated = ch.try_(others[0], "execute", pid) == "ok"
        after = [ch.try_(1, "grant", "verifier", ch.a[fresh - 1], _dom("org-1")),
                 ch.try_(1, "propose", "set_roles", _dom("org-1"), _Z, 0)]
        works = ch.try_(fresh, "grant", "verifier", ch.a[fresh - 2], _dom("org-1"))
        return outcome(any(x == "ok" for x in after), attack_at=0.0,
                       alarms=member_watch(ch, "org-1"), note=_note(ch),
                       metrics={"single_admin_asr": float(single),
                                "rotated": float(rotated), "new_key_works": float(works == "ok"),
                                "time_to_revoke_s": 0.0})


@scenario("E4")
class CollidingDomains:
    @staticmethod
    def _p(tm: ThreatModel) -> tuple[int, int, int]:
        p = params(tm, {"domains": 4, "quorum": 3, "colluders": 3},
                   positive=["domains", "quorum"])
        n, quorum, q = int(p["domains"]), int(p["quorum"]), int(p["colluders"])
        if quorum > n or q > n:
            raise UsageError(f"{tm.id}: quorum={quorum}, colluders={q} with domains={n}; both "
                             "must be at most domains")
        return n, quorum, q

    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        _, _, q = CollidingDomains._p(tm)
        if q == 0:  # nobody attacks
            return outcome(False)
        # one database admin among the colluders is enough at any q >= 1
        return _baseline_db_admin(tm, workdir, seed)

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        n, quorum, q = CollidingDomains._p(tm)
        cls = type(f"GovernedModelQ{quorum}", (Model,),
                   {"governance": Consortium(quorum=quorum), "__module__": __name__})
        # n member domains with admins 0..n-1 (the founder is 0)
        ch = _consortium(seed, n - 1, cls, max(12, n + 3), ("verifier", "developer"))
        if q == 0:
            return outcome(False, metrics={"attribution": 1.0})
        colluders = list(range(n - q, n))  # the last q domains collude
        pid = ch.do(colluders[0], "propose", "add_domain", _dom("sybil"), ch.a[n + 1],
                    ch.client.ir.role("verifier").bit)
        for c in colluders[1:]:
            ch.try_(c, "vote", pid)
        ok = ch.try_(colluders[0], "execute", pid) == "ok"
        votes = [e for e in ch.client.events() if isinstance(e, GovVoted) and e.id == pid]
        attributed = {e.voter for e in votes} | {ch.a[colluders[0]]}
        watcher = "founder" if 0 not in colluders else "org-1"
        return outcome(ok, attack_at=0.0, alarms=member_watch(ch, watcher), note=_note(ch),
                       metrics={"attribution": len(attributed & {ch.a[c] for c in colluders})
                                / len(colluders),
                                "threshold_violations": float(ok != (q >= quorum))})
