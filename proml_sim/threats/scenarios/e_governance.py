"""E4: q colluding member domains try to add a Sybil domain, at a quorum the run sets (a
consortium lifecycle declared at the ``quorum`` parameter).  E1-E3 need no code: their threat
models' ``[play]`` run them, with the single-admin design beside (``[play.compare]``).

The chain run is direct (a PyEVM chain and the lifecycle client, no network model): the attack
is about authority, not timing.  Outcomes through :func:`~proml_sim.threats.kit.outcome`:
success = the Sybil domain admitted; detection = a member's node reviewing the consortium's
events (:func:`~proml_sim.threats.kit.governance_review`); on the baseline, whoever holds the
database's admin password (one colluder is enough) grants Sybil verifiers who verify a bogus
evaluation, and the outside auditor (:class:`~proml_sim.threats.kit.Auditor`) visits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from proml_sim.chain import KeyRing, PyEVMBackend
from proml_sim.chain.client import LifecycleClient
from proml_sim.compiler import compile_artefact
from proml_sim.dsl import Consortium
from proml_sim.errors import LifecycleError
from proml_sim.ir import GovVoted, build_ir
from proml_sim.lifecycles import Model
from proml_sim.sim import digest_of
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.kit import (
    Alarm,
    Auditor,
    central,
    governance_review,
    outcome,
    trials_outcome,
)
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import params


def _dom(name: str) -> bytes:
    return name.encode().ljust(32, b"\0")


def _name(i: int) -> str:
    return "founder" if i == 0 else f"org-{i}"


@scenario("E4")
class CollidingDomains:
    @staticmethod
    def _p(tm: ThreatModel) -> tuple[int, int, int]:
        # (their [ranges]: quorum 1 .. domains, colluders 0 .. domains)
        p = params(tm, "domains", "quorum", "colluders")
        return int(p["domains"]), int(p["quorum"]), int(p["colluders"])

    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        """One database admin among the colluders is enough at any q >= 1: its operator
        registers a model, its developer trains it; k Sybil verifiers the admin grants under
        made-up domain labels approve a bogus evaluation; the outside auditor visits."""
        _, _, q = CollidingDomains._p(tm)
        if q == 0:  # nobody attacks: no attempt (the verdict is no_attack)
            return trials_outcome([])
        db = central(tm, workdir, {"Model": Model}, admin="eve", name="g")
        aid = db.register("op", "Model", "m")
        db.fire("dev", "train", aid, "w")
        auditor = Auditor(db, 1.0)
        auditor.visit_until(1.0)
        bogus = digest_of("bogus-evaluation", seed).hex()
        sybils = [f"sybil-{i}" for i in range(int(build_ir(Model).transition("verify")
                                                  .approvals))]
        for i, who in enumerate(sybils):
            db.grant(who, "Model", "verifier", f"lab-{i}")
        for who in sybils:
            db.fire(who, "verify", aid, bogus, 2.0)
        alarms = auditor.visit_until(3.0)
        state = db.admin_sql("SELECT state FROM artefacts WHERE id=?", (aid,))[0][0]
        db.close()
        return outcome(state == "verified", attack_at=2.0, alarms=alarms)

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        """n member domains (admins 0..n-1; the founder is 0) each join by the quorum of the
        members so far; the last q collude: one proposes a Sybil domain, the others vote, it
        executes."""
        n, quorum, q = CollidingDomains._p(tm)
        cls = type(f"GovernedModelQ{quorum}", (Model,),
                   {"governance": Consortium(quorum=quorum), "__module__": __name__})
        keys = KeyRing.from_seed(f"gov-threat-{seed}", max(12, n + 3))
        a = list(keys.addresses)
        client = LifecycleClient.deploy(PyEVMBackend(funded=a), compile_artefact(cls),
                                        keys.signer(a[0]), _dom(_name(0)))
        mask = sum(client.ir.role(r).bit for r in ("verifier", "developer"))
        for i in range(1, n):
            pid = client.propose(keys.signer(a[0]), "add_domain", _dom(_name(i)), a[i], mask)
            for v in range(1, min(i, quorum)):
                client.vote(keys.signer(a[v]), pid)
            client.execute(keys.signer(a[0]), pid)
        if q == 0:  # nobody colludes: no attempt, nothing to attribute
            return trials_outcome([])
        reverts: list[str] = []

        def try_(who: int, op: str, *args: Any) -> bool:
            try:
                getattr(client, op)(keys.signer(a[who]), *args)
                return True
            except LifecycleError as exc:
                reverts.append(f"{type(exc).__name__}: {exc}")
                return False

        colluders = list(range(n - q, n))  # the last q domains collude
        pid = client.propose(keys.signer(a[colluders[0]]), "add_domain", _dom("sybil"),
                             a[n + 1], client.ir.role("verifier").bit)
        for c in colluders[1:]:
            try_(c, "vote", pid)
        ok = try_(colluders[0], "execute", pid)
        votes = [e for e in client.events() if isinstance(e, GovVoted) and e.id == pid]
        attributed = {e.voter for e in votes} | {a[colluders[0]]}
        # an honest member's node reviews the governance events; when every member colludes
        # (q = n) no honest node is left to raise anything (a colluder's own node, or a
        # domain that never joined, was the watcher: "detected" by the attackers)
        watcher = next((i for i in range(n) if i not in colluders), None)
        alarms = [] if watcher is None else [
            Alarm(0.0, f"member-watch:{_name(watcher)}", why)
            for why in governance_review(client, _dom(_name(watcher)), a[watcher])]
        return outcome(ok, attack_at=0.0, alarms=alarms, note="; ".join(sorted(set(reverts))),
                       metrics={"attribution": len(attributed & {a[c] for c in colluders})
                                / len(colluders),
                                "threshold_violations": float(ok != (q >= quorum))})
