"""E1-E4: who holds power over roles and trust domains (issue 10).

Each attack runs against three systems: the SQLite baseline (``baseline``), the single-admin
design (``SingleAdminModel``: recorded as the ``single_admin_asr`` metric of the ProML run,
since the runner compares two systems) and the consortium (``Model``, the default: quorum of
member domains; the ProML verdict).  The chain runs are direct (a PyEVM chain and the
lifecycle client, no network model): these attacks are about authority, not timing.

* E1: a compromised ADMIN (or role admin) key mints Sybil verifiers under made-up domains.
* E2: one organisation in two roles: the developer's company also holds a verifier account.
* E3: a stolen domain-admin key, rotated away by a quorum of the other domains.
* E4: q colluding member domains try to add a Sybil domain (sweep q = 0..n): refused below the
  quorum with a clear revert; at the quorum it succeeds (the honest, documented limit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from proml_sim.chain import KeyRing, PyEVMBackend
from proml_sim.chain.client import LifecycleClient
from proml_sim.compiler import compile_artefact
from proml_sim.errors import LifecycleError
from proml_sim.ir import ZERO32
from proml_sim.lifecycles import Model, SingleAdminModel
from proml_sim.sim import digest_of
from proml_sim.threats.baseline import CentralDB
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import salt

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

    def join(self, admin: int, domain: str, roles: list[str], voters: list[int]) -> None:
        """Add a domain honestly: the first voter proposes, the others vote, then execute."""
        mask = sum(self.client.ir.role(r).bit for r in roles)
        pid = self.do(voters[0], "propose", "add_domain", _dom(domain), self.a[admin], mask)
        for v in voters[1:]:
            self.do(v, "vote", pid)
        self.do(voters[0], "execute", pid)


def _model_in_training(ch: _Chain, op: int, dev: int, seed: int, op_domain: bytes,
                       dev_domain: bytes, granter: int | None = None,
                       dev_granter: int | None = None) -> bytes:
    g = 0 if granter is None else granter
    ch.do(g, "grant", "operator", ch.a[op], op_domain)
    ch.do(g if dev_granter is None else dev_granter, "grant", "developer", ch.a[dev],
          dev_domain)
    mid: bytes = ch.do(op, "register", salt(f"m{seed}"))
    ch.do(dev, "fire", "train", mid, digest_of("weights", seed), "", [])
    return mid


def _baseline_db_admin(workdir: Path, seed: int) -> Outcome:
    """The baseline: whoever administers the database grants roles under any domain label."""
    db = CentralDB(workdir / "g.sqlite", {"Model": Model}, admin="eve")
    db.grant("op", "Model", "operator", "client-co")
    db.grant("dev", "Model", "developer", "dev-co")
    aid = db.register("op", "Model", "m")
    db.fire("dev", "train", aid, "w")
    db.grant("sybil-1", "Model", "verifier", "lab-x")
    db.grant("sybil-2", "Model", "verifier", "lab-y")
    bogus = digest_of("bogus-evaluation", seed).hex()
    db.fire("sybil-1", "verify", aid, bogus)
    db.fire("sybil-2", "verify", aid, bogus)
    state = db.admin_sql("SELECT state FROM artefacts WHERE id=?", (aid,))[0][0]
    db.close()
    return Outcome(state == "verified", False, None)


def _single_admin_sybil(seed: int) -> bool:
    """Single-admin design: the ADMIN key grants verifier to two accounts of its own under two
    made-up domains; their two approvals satisfy the 2-of-n counted by domain."""
    ch = _Chain(SingleAdminModel, seed, domain="")
    mid = _model_in_training(ch, 1, 2, seed, _dom("client-co"), _dom("dev-co"))
    bogus = digest_of("bogus-evaluation", seed)
    ch.do(0, "grant", "verifier", ch.a[8], _dom("lab-x"))
    ch.do(0, "grant", "verifier", ch.a[9], _dom("lab-y"))
    ch.do(8, "fire", "verify", mid, bogus, "", [])
    ch.do(9, "fire", "verify", mid, bogus, "", [])
    return ch.client.state(mid) == "verified"


def _consortium(seed: int, cls: Any = Model, n: int = 3) -> _Chain:
    """The founder (account 0, domain 'founder') and ``n`` more member domains, admins 1..n,
    all allowed every role except admin."""
    ch = _Chain(cls, seed)
    roles = ["operator", "developer", "verifier", "auditor"]
    members = [0]
    for i in range(1, n + 1):
        ch.join(i, f"org-{i}", roles, members)
        members.append(i)
    return ch


@scenario("E1")
class SybilApprovers:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        return _baseline_db_admin(workdir, seed)

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        single = _single_admin_sybil(seed)
        ch = _consortium(seed)
        mid = _model_in_training(ch, 5, 6, seed, _dom("org-1"), _dom("org-2"), granter=1,
                                 dev_granter=2)
        bogus = digest_of("bogus-evaluation", seed)
        # the compromised founder key: accounts under made-up domains, a Sybil domain
        steps = [ch.try_(0, "grant", "verifier", ch.a[8], _dom("lab-x")),
                 ch.try_(0, "grant", "verifier", ch.a[8], _dom("founder")),
                 ch.try_(0, "grant", "verifier", ch.a[9], _dom("founder")),
                 ch.try_(8, "fire", "verify", mid, bogus, "", []),
                 ch.try_(9, "fire", "verify", mid, bogus, "", [])]
        pid = ch.do(0, "propose", "add_domain", _dom("lab-y"), ch.a[10],
                    ch.client.ir.role("verifier").bit)
        steps.append(ch.try_(0, "execute", pid))
        succeeded = ch.client.state(mid) == "verified"
        assert steps[0] == "ForeignAccount" and steps[4] == "AlreadyApproved", steps
        assert steps[5] == "QuorumNotReached", steps
        return Outcome(succeeded, False, None, note="; ".join(sorted(set(ch.reverts))),
                       metrics={"single_admin_asr": float(single)})


@scenario("E2")
class OneOrganisationTwoRoles:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        db = CentralDB(workdir / "g.sqlite", {"Model": Model}, admin="admin")
        db.grant("op", "Model", "operator", "client-co")
        db.grant("dev", "Model", "developer", "dev-co")
        db.grant("dev-qa", "Model", "verifier", "dev-co")  # the developer's own verifier
        db.grant("lab", "Model", "verifier", "lab-1")
        aid = db.register("op", "Model", "m")
        db.fire("dev", "train", aid, "w")
        db.fire("dev-qa", "verify", aid, "eval")
        db.fire("lab", "verify", aid, "eval")
        state = db.admin_sql("SELECT state FROM artefacts WHERE id=?", (aid,))[0][0]
        db.close()
        return Outcome(state == "verified", False, None)

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        ev = digest_of("evaluation", seed)
        s = _Chain(SingleAdminModel, seed, domain="")
        mid = _model_in_training(s, 1, 2, seed, _dom("client-co"), _dom("dev-co"))
        s.do(0, "grant", "verifier", s.a[7], _dom("dev-co"))
        s.do(0, "grant", "verifier", s.a[8], _dom("lab-1"))
        s.do(7, "fire", "verify", mid, ev, "", [])
        s.do(8, "fire", "verify", mid, ev, "", [])
        single = s.client.state(mid) == "verified"
        ch = _consortium(seed)
        mid = _model_in_training(ch, 5, 6, seed, _dom("org-1"), _dom("org-2"), granter=1,
                                 dev_granter=2)
        ch.do(2, "grant", "verifier", ch.a[7], _dom("org-2"))  # the developer's company
        ch.do(3, "grant", "verifier", ch.a[8], _dom("org-3"))
        own = ch.try_(7, "fire", "verify", mid, ev, "", [])
        ch.try_(8, "fire", "verify", mid, ev, "", [])
        assert own == "SeparationOfDuty", own
        return Outcome(ch.client.state(mid) == "verified", False, None,
                       note="; ".join(sorted(set(ch.reverts))),
                       metrics={"single_admin_asr": float(single)})


@scenario("E3")
class StolenDomainAdminKey:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        return _baseline_db_admin(workdir, seed)  # a stolen database password: no rotation

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        # single admin: the deployer key cannot be replaced; the thief keeps granting
        single = _single_admin_sybil(seed)
        ch = _consortium(seed)
        # org-1's admin key (account 1) is stolen; the others rotate it to a fresh key (11)
        pid = ch.do(2, "propose", "rotate_admin", _dom("org-1"), ch.a[11], 0)
        ch.do(3, "vote", pid)
        ch.do(2, "execute", pid)
        after = [ch.try_(1, "grant", "verifier", ch.a[9], _dom("org-1")),
                 ch.try_(1, "propose", "set_roles", _dom("org-1"), _Z, 0)]
        works = ch.try_(11, "grant", "verifier", ch.a[10], _dom("org-1"))
        assert after == ["NotRoleAdmin", "NotDomainAdmin"] and works == "ok", (after, works)
        return Outcome(any(x == "ok" for x in after), False, None,
                       note="; ".join(sorted(set(ch.reverts))),
                       metrics={"single_admin_asr": float(single), "time_to_revoke_s": 0.0})


@scenario("E4", limit="q colluding member domains at or above the quorum govern the "
                     "consortium (add Sybil domains, remove honest ones): a quorum is trusted "
                     "by definition; every vote is attributed to its domain in the events")
class CollidingDomains:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        n = int(tm.parameters.get("domains", 4))
        out = _baseline_db_admin(workdir, seed)  # one database admin is enough at any q >= 1
        series = [(float(q), float(q >= 1 and out.attack_succeeded)) for q in range(n + 1)]
        return Outcome(out.attack_succeeded, False, None, series={"asr_by_c": series})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        from proml_sim.dsl import Consortium

        n = int(tm.parameters.get("domains", 4))
        quorum = int(tm.parameters.get("quorum", 3))
        cls = type(f"GovernedModelQ{quorum}", (Model,),
                   {"governance": Consortium(quorum=quorum), "__module__": __name__})
        series = []
        reverts: set[str] = set()
        for q in range(n + 1):
            ch = _Chain(cls, seed)
            # n member domains with admins 0..n-1 (the founder is domain 0)
            for i in range(1, n):
                members = list(range(i))
                mask = sum(ch.client.ir.role(r).bit for r in ("verifier", "developer"))
                pid = ch.do(0, "propose", "add_domain", _dom(f"org-{i}"), ch.a[i], mask)
                for v in members[1:]:
                    ch.do(v, "vote", pid)
                ch.do(0, "execute", pid)
            if q == 0:
                series.append((0.0, 0.0))
                continue
            colluders = list(range(n - q, n))  # the last q domains collude
            pid = ch.do(colluders[0], "propose", "add_domain", _dom("sybil"), ch.a[n + 1],
                        ch.client.ir.role("verifier").bit)
            for c in colluders[1:]:
                ch.do(c, "vote", pid)
            ok = ch.try_(colluders[0], "execute", pid) == "ok"
            reverts |= set(ch.reverts)
            series.append((float(q), float(ok)))
        succeeded = any(y for _, y in series)
        wrong = sum(1 for q, y in series if bool(y) != (q >= quorum))
        return Outcome(succeeded, False, None, series={"asr_by_c": series},
                       note="; ".join(sorted(reverts)),
                       metrics={"threshold_violations": float(wrong), "attribution": 1.0})
