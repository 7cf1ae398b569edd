"""S2: an account without the role calls every function.  S4: c of n approvers collude."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from proml_sim.ir import Approved, RoleGranted, RoleRevoked, Transitioned
from proml_sim.lifecycles import Model
from proml_sim.sim import digest_of
from proml_sim.sim.monitor import outcome as tx_outcome
from proml_sim.threats.baseline import CentralDB
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.kit import Alarm, Trial, central, outcome, trials_outcome, world
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import both_sides, params, play, salt
from proml_sim.threats.scenarios.s_identity import HOUR, BaselineDesk, Gen, desk


def role_violations(client: Any) -> int:
    """Events made by an account not holding a ``by`` role at that point of the chain."""
    ir = client.ir
    roles: dict[str, int] = {}
    bad = 0
    for ev in client.events():
        if isinstance(ev, RoleGranted):
            roles[ev.account] = roles.get(ev.account, 0) | (1 << ev.role)
        elif isinstance(ev, RoleRevoked):
            roles[ev.account] = roles.get(ev.account, 0) & ~(1 << ev.role)
        elif isinstance(ev, Transitioned | Approved):
            actor = ev.actor if isinstance(ev, Transitioned) else ev.approver
            if not roles.get(actor, 0) & ir.role_mask(ir.transitions[ev.transition].by):
                bad += 1
    return bad


def audit_alarms(db: CentralDB, at: float) -> list[Alarm]:
    """An auditor's check of the baseline (data it has): the audit chain hashes, and every
    artefact is in the state its last audited transition left it in."""
    bad = db.verify_audit()
    out = [Alarm(at, "auditor:audit-chain", f"row {bad} does not hash")] if bad else []
    for aid, lc, state in db.admin_sql("SELECT id, lifecycle, state FROM artefacts"):
        ir = db.irs[lc]
        last = db.admin_sql("SELECT action FROM audit WHERE artefact=? AND action NOT LIKE "
                            "'approve:%' ORDER BY seq DESC LIMIT 1", (aid,))
        want = (ir.transition(last[0][0]).target if last and last[0][0] != "register"
                else ir.initial.name)
        if want != state:
            out.append(Alarm(at, "auditor:state", f"{aid} is {state}, its audit says {want}"))
    return out


@scenario("S2")
class NoRoleCallsEverything:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        db = central(tm, workdir, {"Model": Model}, admin="eve")
        aid = db.register("op", "Model", "m")
        # eve holds no role but runs the database: she enrols made-up accounts, acts as them
        # through the application (its audit trail stays consistent), and removes them
        fake = (("dev-x", "developer", "x-1"), ("ver-x", "verifier", "x-2"),
                ("ver-y", "verifier", "x-3"))
        for who, role, dom in fake:
            db.grant(who, "Model", role, dom)
        db.fire("dev-x", "train", aid, digest_of("bogus-model").hex())
        for who in ("ver-x", "ver-y"):
            db.fire(who, "verify", aid, digest_of("bogus-eval").hex())
        for who, role, _ in fake:
            db.revoke(who, "Model", role)
        goal = db.admin_sql("SELECT state FROM artefacts WHERE id=?", (aid,))[0][0] == "verified"
        alarms = audit_alarms(db, 0.0)
        db.close()
        return outcome(goal, attack_at=0.0, alarms=alarms)

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        w, ps = world(tm, seed)
        txs = []

        def run() -> Gen:
            tx = yield from w.send("op", "Model", "register", salt("m"))
            yield w.confirmed(tx, 1)
            tx2 = yield from w.send("da", "Dataset", "register", salt("d"), digest_of("d"), "",
                                    [])
            yield w.confirmed(tx2, 1)
            for lc, aid in (("Model", w.result(tx)), ("Dataset", w.result(tx2))):
                for t in w.clients[lc].ir.transitions:
                    args: tuple[Any, ...] = (digest_of(t.name), "x", []) if t.evidence else ()
                    txs.append((yield from w.send("eve", lc, "fire", t.name, aid, *args)))
                txs.append((yield from w.send("eve", lc, "register", salt("eve"), digest_of(1),
                                              "", [])))
                txs.append((yield from w.send("eve", lc, "grant", 1, ps["eve"].address,
                                              salt("eve"))))
                txs.append((yield from w.send("eve", lc, "revoke", 1, ps["op"].address)))
            for t in txs:
                yield w.confirmed(t, 1)

        play(w, 600, run())
        accepted = sum(tx_outcome(t) == "ok" for t in txs)
        violations = sum(role_violations(w.clients[lc]) for lc in ("Model", "Dataset"))
        return outcome(accepted > 0 or violations > 0, metrics={
            "integrity_violations": float(violations), "calls": float(len(txs)),
            "accepted": float(accepted)})


S4_PARAMS = ("approvers", "approvals", "count", "colluders")


def _s4(side: str, tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
    p = params(tm, *S4_PARAMS)
    n, c0 = int(p["approvers"]), int(p["colluders"])  # ([ranges]: 0 <= colluders <= n)
    d = desk(side, tm, seed, workdir, p)  # verifiers v0 .. v(n-1) of their own domains
    k, _ = d.threshold()  # what the deployed rules demand
    won: dict[int, bool] = {}
    named: dict[bytes, set[str]] = {}
    ids: dict[int, bytes] = {}

    def run() -> Gen:
        for c in range(n + 1):  # the colluders v0 .. v(c-1) approve a bogus evaluation
            aid = yield from d.model(f"m{c}")
            bogus = digest_of("bogus-evaluation", c)
            yield d.env.all_of([d.env.process(d.approve(f"v{i}", aid, bogus))
                                for i in range(c)])
            if isinstance(d, BaselineDesk) and 0 < c < k:
                # v0 also runs the database: it acts as the verifiers it lacks through the
                # application (nothing authenticates a call made below the API)
                for i in range(c, k):
                    yield from d.approve(f"v{i}", aid, bogus)
            won[c], ids[c] = d.state(aid) == "verified", aid

    d.env.process(run())
    d.run(HOUR)
    for a in d.approvals():  # who the record says approved each model
        named.setdefault(a.artefact, set()).add(a.account)
    alarms = audit_alarms(d.db, d.env.now) if isinstance(d, BaselineDesk) else []
    # attribution: every recorded approver of a forged model is a colluder, and every colluder
    # who approved before the threshold fired is recorded
    attributed = [named[ids[c]] <= {f"v{i}" for i in range(c)} and len(named[ids[c]]) ==
                  min(c, k) for c in won if won[c]]
    # (no colluder: nobody attacks, no attempt; the verdict is no_attack)
    return trials_outcome([Trial(won[c0], tuple(alarms))] * (c0 > 0), attack_at=0.0, metrics={
        "attribution": sum(attributed) / len(attributed) if attributed else 1.0,
        "threshold_violations": float(sum(won[c] != (c >= k) for c in won))},
        series={"asr_by_c": [(float(c), float(x)) for c, x in won.items()]})


both_sides("S4", _s4)
