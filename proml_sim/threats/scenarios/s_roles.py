"""S4: c of n approvers collude.  (S2, an account without the role calling every function, is
a play: ``threat_models/S2.toml``.)"""

from __future__ import annotations

from pathlib import Path

from proml_sim.sim import digest_of
from proml_sim.threats.baseline import CentralDB
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.kit import Alarm, Trial, ratio, trials_outcome
from proml_sim.threats.runner import Outcome
from proml_sim.threats.scenarios.common import both_sides, params
from proml_sim.threats.scenarios.s_identity import HOUR, BaselineDesk, Gen, desk


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

    d.play(run(), HOUR, tail=0.0)
    for a in d.approvals():  # who the record says approved each model
        named.setdefault(a.artefact, set()).add(a.account)
    alarms = audit_alarms(d.db, d.env.now) if isinstance(d, BaselineDesk) else []
    # attribution: every recorded approver of a forged model is a colluder, and every colluder
    # who approved before the threshold fired is recorded
    attributed = [named[ids[c]] <= {f"v{i}" for i in range(c)} and len(named[ids[c]]) ==
                  min(c, k) for c in won if won[c]]
    # (no colluder: nobody attacks, no attempt; the verdict is no_attack)
    return trials_outcome([Trial(won[c0], tuple(alarms))] * (c0 > 0), attack_at=0.0, metrics={
        "attribution": ratio(sum(attributed), len(attributed)),
        "threshold_violations": float(sum(won[c] != (c >= k) for c in won))},
        series={"asr_by_c": [(float(c), float(x)) for c, x in won.items()]})


both_sides("S4", _s4)
