"""S2: an account without the role calls every function.  S4: c of n approvers collude."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from proml_sim.ir import Approved, RoleGranted, RoleRevoked, Transitioned
from proml_sim.lifecycles import Dataset, Model
from proml_sim.sim import digest_of
from proml_sim.threats.baseline import CentralDB
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import outcome_of, salt, small_world


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


@scenario("S2")
class NoRoleCallsEverything:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        db = CentralDB(workdir / "p.sqlite", {"Dataset": Dataset, "Model": Model}, admin="eve")
        db.grant("op", "Model", "operator", "client-co")
        aid = db.register("op", "Model", "m")
        # eve has no role, but runs the database: she writes the transitions herself
        db.admin_sql("UPDATE artefacts SET state='verified', version=version+1 WHERE id=?",
                     (aid,))
        db.admin_sql("INSERT INTO history (artefact, step, actor, version, digest, at) "
                     "VALUES (?, 'verify', 'verifier-x', 2, 'bogus', 0)", (aid,))
        accepted = db.admin_sql("SELECT state FROM artefacts WHERE id=?", (aid,))[0][0]
        db.close()
        # nothing outside the database can show that 'verifier-x' never acted
        return Outcome(accepted == "verified", False, None,
                       metrics={"integrity_violations": 1.0})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        people = {"op": ("client-co", "eu"), "dev": ("dev-co", "us"), "da": ("data-co", "eu"),
                  "eve": ("eve-co", "asia")}
        grants = [("op", "Model", "operator"), ("dev", "Model", "developer"),
                  ("da", "Dataset", "dataset_admin")]
        w, ps = small_world(seed, people, grants)
        txs = []

        def honest():
            tx = yield from w.send(ps["op"], "Model", "register", salt("m"))
            yield w.confirmed(tx, 1)
            mid = w.result(tx)
            tx = yield from w.send(ps["da"], "Dataset", "register", salt("d"),
                                   digest_of("d"), "", [])
            yield w.confirmed(tx, 1)
            did = w.result(tx)
            eve = ps["eve"]
            for lc, aid in (("Model", mid), ("Dataset", did)):
                ir = w.clients[lc].ir
                for t in ir.transitions:
                    args: tuple[Any, ...] = (digest_of(t.name), "x", []) if t.evidence else ()
                    txs.append((yield from w.send(eve, lc, "fire", t.name, aid, *args)))
                txs.append((yield from w.send(eve, lc, "register", salt("eve"), digest_of(1),
                                              "", [])))
                txs.append((yield from w.send(eve, lc, "grant", 1, eve.address, salt("eve"))))
                txs.append((yield from w.send(eve, lc, "revoke", 1, ps["op"].address)))
            for tx in txs:
                yield w.confirmed(tx, 1)

        w.env.process(honest())
        w.run(600, drain=False)
        w.finish()
        accepted = [t for t in txs if outcome_of(w, t) == "ok"]
        violations = sum(role_violations(w.clients[lc]) for lc in ("Model", "Dataset"))
        return Outcome(bool(accepted) or violations > 0, False, None,
                       metrics={"integrity_violations": float(violations),
                                "calls": float(len(txs)), "accepted": float(len(accepted))})


@scenario("S4", limit="k colluding approvers can approve anything: a threshold cannot stop "
                     "k insiders; every colluder is identified from the Approved events")
class Collusion:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        n = int(tm.parameters.get("approvers", 4))
        series = []
        for c in range(n + 1):
            db = CentralDB(workdir / f"c{c}.sqlite", {"Model": Model}, admin="v0")
            db.grant("op", "Model", "operator", "client-co")
            aid = db.register("op", "Model", "m")
            if c >= 1:  # the database admin is one of the colluders: one UPDATE suffices
                db.admin_sql("UPDATE artefacts SET state='verified' WHERE id=?", (aid,))
            ok = db.admin_sql("SELECT state FROM artefacts WHERE id=?", (aid,))[0][0]
            series.append((float(c), float(ok == "verified")))
            db.close()
        succeeded = any(y for _, y in series)
        return Outcome(succeeded, False, None, series={"asr_by_c": series},
                       metrics={"attribution": 0.0})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        n = int(tm.parameters.get("approvers", 4))
        k = 2  # Model.verify: 2 approvals from distinct trust domains
        people = {"op": ("client-co", "eu"), "dev": ("dev-co", "us"),
                  **{f"v{i}": (f"verif-{i}", "eu") for i in range(n)}}
        grants = [("op", "Model", "operator"), ("dev", "Model", "developer"),
                  *((f"v{i}", "Model", "verifier") for i in range(n))]
        w, ps = small_world(seed, people, grants)
        results: dict[int, tuple[bool, set[str]]] = {}

        def run_c(c: int):
            tx = yield from w.send(ps["op"], "Model", "register", salt(f"m{c}"))
            yield w.confirmed(tx, 1)
            mid = w.result(tx)
            tx = yield from w.send(ps["dev"], "Model", "fire", "train", mid, digest_of("bad", c),
                                   "", [])
            yield w.confirmed(tx, 1)
            bogus = digest_of("bogus-evaluation", c)
            for i in range(c):  # the colluders approve a bogus evaluation
                tx = yield from w.send(ps[f"v{i}"], "Model", "fire", "verify", mid, bogus, "", [])
                yield w.confirmed(tx, 1)
            state = w.clients["Model"].state(mid)
            approvers = {ev.approver for ev in w.clients["Model"].events()
                         if isinstance(ev, Approved) and ev.id == mid}
            results[c] = (state == "verified", approvers)

        for c in range(n + 1):
            w.env.process(run_c(c))
        w.run(3600, drain=False)
        w.finish()
        series = [(float(c), float(results[c][0])) for c in sorted(results)]
        colluders = {c: {ps[f"v{i}"].address for i in range(c)} for c in results}
        # every accepted approval is signed by a colluder, and every colluder who got to
        # approve before the threshold fired is named (later ones are refused: already verified)
        attribution = min((1.0 if results[c][1] <= colluders[c] and len(results[c][1]) ==
                           min(c, k) else 0.0) for c in results)
        wrong = sum(1 for c, (ok, _) in results.items() if ok != (c >= k))
        return Outcome(any(ok for ok, _ in results.values()), False, None,
                       series={"asr_by_c": series},
                       metrics={"attribution": attribution, "threshold_violations": float(wrong)})
