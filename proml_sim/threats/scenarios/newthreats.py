"""T11 (a vulnerable ML framework), T12 (a step never recorded) and I1 (what an outsider learns
from the chain's metadata), on the SQLite baseline and on ProML, both executed.

T11 and I1 share one workload (:func:`teams_plan`): a data company registers datasets, then
``teams`` development teams, each in its own trust domain, register and train models (some
fine-tuned from another team's model), while a framework (``package``) publishes releases that
each team adopts after its own lag.  Every step is recorded the way a ProML node records it (a
record with the step's environment, stored off chain; its digest, the name's salt and the
default locator on chain: :func:`node_args`); the baseline application records the same steps in
its database (digests of the bytes, the declared inputs).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proml_sim.ir import Registered, RoleGranted, Transitioned
from proml_sim.node.consumer import sha256
from proml_sim.node.records import FileRef, InputRef, Record
from proml_sim.node.service import name_salt
from proml_sim.node.store import BlobStore
from proml_sim.sim.world import Participant, World
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.kit import Alarm, Consumer, outcome
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import small_world
from proml_sim.threats.scenarios.t_support import (
    TICK,
    WorldSource,
    baseline_db,
    db_fire,
    hexd,
    paper_world,
    send_ok,
)


# -- records as a node makes them ----------------------------------------------------------------
def node_record(p: Participant, lifecycle: str, step: str, artefact: bytes | None, name: str,
                *, env: dict[str, Any] | None = None, inputs: tuple[InputRef, ...] = (),
                input_files: tuple[FileRef, ...] = (), outputs: tuple[FileRef, ...] = (),
                at: float = 0.0) -> Record:
    """A step's record as ``ProMLNode`` writes it (actor, node, domain, time, environment)."""
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(1_700_000_000 + at, UTC).isoformat(timespec="seconds")
    return Record(lifecycle=lifecycle, step=step,
                  artefact=("0x" + artefact.hex()) if artefact else None,
                  name=name if artefact is None else None, actor=p.address, node=p.name,
                  domain=p.domain, time=when, inputs=inputs, input_files=input_files,
                  outputs=outputs, environment=dict(env or {}))


def fref(store: BlobStore, name: str, data: bytes) -> FileRef:
    blob = store.put_bytes(data)
    return FileRef(name, blob.digest, blob.size)


def node_args(store: BlobStore | None, rec: Record, name: str | None = None
              ) -> tuple[Any, ...]:
    """The on-chain arguments a node sends for ``rec`` (stored in ``store``; ``None``: the
    record is lost): ``register`` gets (name salt, digest, ``proml:<name>``), a transition
    (digest, ``proml:<digest>``)."""
    data = rec.canonical()
    if store is not None:
        store.put_bytes(data)
    digest = sha256(data)
    if name is not None:
        return (name_salt(name), digest, f"proml:{name}")
    return (digest, f"proml:{digest.hex()}")


# -- the teams workload (T11, I1) ----------------------------------------------------------------
@dataclass
class Step:
    tick: int
    who: str  # participant
    kind: str  # "dataset", "register" or "train"
    name: str
    version: str  # the package version installed where the step ran
    inputs: tuple[str, ...] = ()


@dataclass
class Plan:
    package: str
    releases: list[tuple[str, int]]  # (version, tick published)
    people: dict[str, tuple[str, str]]  # participant -> (domain, region)
    steps: list[Step] = field(default_factory=list)

    def env(self, version: str) -> dict[str, Any]:
        return {"python": "3.11.9", "platform": "Linux",
                "packages": {self.package: version, "numpy": "1.26.4"}}


def teams_plan(tm: ThreatModel, seed: int) -> Plan:
    """Datasets first, then each team registers and trains models in a random order; a team
    runs the latest release it has adopted (each release adopted after an exponential lag)."""
    prm = tm.parameters
    rng = random.Random(f"teams-{seed}")
    n_teams, per_team = int(prm.get("teams", 4)), int(prm.get("trainings", 5))
    n_data = int(prm.get("datasets", 3))
    versions = [str(v) for v in prm.get("releases", ["2.0.0", "2.0.1", "2.1.0"])]
    n_steps = n_data + 2 * n_teams * per_team
    releases = [(v, round(i * n_steps / len(versions))) for i, v in enumerate(versions)]
    people = {"data": ("data-co", "eu"),
              **{f"team{t}": (f"team-{t}", ("eu", "us", "asia")[t % 3]) for t in range(n_teams)}}
    lag = float(prm.get("adopt_lag", 8.0))
    adopt = {p: [0.0] + [tick + rng.expovariate(1 / lag) for _, tick in releases[1:]]
             for p in people}

    def installed(p: str, tick: int) -> str:
        return versions[max(i for i, a in enumerate(adopt[p]) if a <= tick)]

    plan = Plan(str(prm.get("package", "torch")), releases, people)
    for d in range(n_data):
        plan.steps.append(Step(d, "data", "dataset", f"ds{d}", installed("data", d)))
    order = [t for t in range(n_teams) for _ in range(per_team)]
    rng.shuffle(order)
    trained: list[tuple[int, str]] = []
    finetune = float(prm.get("finetune", 0.3))
    for i, t in enumerate(order):
        tick = n_data + 2 * i
        name, who = f"m{i}", f"team{t}"
        inputs = [f"ds{rng.randrange(n_data)}"]
        others = [m for tt, m in trained if tt != t]
        if others and rng.random() < finetune:
            inputs.append(rng.choice(others))
        plan.steps.append(Step(tick, who, "register", name, installed(who, tick)))
        plan.steps.append(Step(tick + 1, who, "train", name, installed(who, tick + 1),
                               tuple(inputs)))
        trained.append((t, name))
    return plan


def plan_versions(plan: Plan) -> dict[tuple[str, int], Step]:
    """(artefact name, version) -> the step that made it."""
    return {(s.name, 2 if s.kind == "train" else 1): s for s in plan.steps}


def run_teams_world(plan: Plan, seed: int, workdir: Path, lost: float = 0.0
                    ) -> tuple[World, BlobStore, dict[str, bytes]]:
    """Run the plan on a simulated chain, recording every step as a node does; a fraction
    ``lost`` of the records never reaches the shared store (a team's disk lost)."""
    grants = [("data", "Dataset", "dataset_admin")] + [
        (p, "Model", r) for p in plan.people if p != "data" for r in ("operator", "developer")]
    w, ps = small_world(seed, plan.people, grants)
    store = BlobStore(workdir / "exchange")
    ids: dict[str, bytes] = {}
    rng = random.Random(f"lost-{seed}")

    def teams() -> Any:
        for s in plan.steps:
            yield w.env.timeout(max(0.0, s.tick * TICK - w.env.now))
            p, env = ps[s.who], plan.env(s.version)
            keep = None if rng.random() < lost else store
            out = (fref(store, f"{s.name}.bin", f"{s.name}:{s.kind}:{seed}".encode()),)
            if s.kind in ("dataset", "register"):
                lc = "Dataset" if s.kind == "dataset" else "Model"
                rec = node_record(p, lc, "register", None, s.name, env=env, outputs=out,
                                  at=w.env.now)
                tx = yield from send_ok(w, p, lc, "register", *node_args(keep, rec, s.name), [])
                ids[s.name] = w.result(tx)
                continue
            refs = tuple(_input_ref(w, ids[i], i) for i in s.inputs)
            rec = node_record(p, "Model", "train", ids[s.name], s.name, env=env, inputs=refs,
                              outputs=out, at=w.env.now)
            yield from send_ok(w, p, "Model", "fire", "train", ids[s.name],
                               *node_args(keep, rec), [ids[i] for i in s.inputs])

    w.env.process(teams())
    w.run(disclosed_at(plan), drain=False)
    w.finish()
    return w, store, ids


def _input_ref(w: World, aid: bytes, name: str) -> InputRef:
    lc = "Dataset" if name.startswith("ds") else "Model"
    hist = w.clients[lc].history(aid)
    evidence = next((h.digest for h in reversed(hist) if h.digest.strip(b"\0")), b"")
    return InputRef("0x" + aid.hex(), lc, hist[-1].version, evidence.hex())


def run_teams_db(plan: Plan, workdir: Path) -> Any:
    """The same plan through the baseline application (digests of the bytes, inputs)."""
    db = baseline_db(workdir, admin="ops")
    for p, (dom, _) in plan.people.items():
        if p != "data":
            db.grant(p, "Model", "operator", dom)
            db.grant(p, "Model", "developer", dom)
    db.grant("data", "Dataset", "dataset_admin", "data-co")
    ids: dict[str, str] = {}
    for s in plan.steps:
        at = s.tick * TICK
        digest = hexd(f"{s.name}:{s.kind}".encode())
        if s.kind in ("dataset", "register"):
            lc = "Dataset" if s.kind == "dataset" else "Model"
            ids[s.name] = db.register(s.who, lc, s.name, digest, at)
        else:
            db_fire(db, s.who, "train", ids[s.name], digest, at, [ids[i] for i in s.inputs])
    return db, ids


# -- T11 ------------------------------------------------------------------------------------------
def t11_truth(plan: Plan, spec: str) -> set[tuple[str, int]]:
    """Versions built with a matching release, and every version built on one (inputs and
    later versions: the lineage rule), from the plan: what really happened."""
    req = _requirement(plan, spec)
    bad: set[tuple[str, int]] = set()
    for (name, v), s in sorted(plan_versions(plan).items(), key=lambda kv: kv[1].tick):
        if ((req is not None and req.specifier.contains(s.version, prereleases=True))
                or (name, 1) in bad
                or any((i, 1 if i.startswith("ds") else 2) in bad for i in s.inputs)):
            bad.add((name, v))
    return bad


def _requirement(plan: Plan, spec: str) -> Any:
    """The advisory's specifier, or None when it names another package than the plan's."""
    from packaging.utils import canonicalize_name

    from proml_sim.node.lineage import parse_requirement

    req = parse_requirement(spec)
    return req if canonicalize_name(req.name) == canonicalize_name(plan.package) else None


def disclosed_at(plan: Plan) -> float:
    """When the CVE is disclosed: after the workload's last step."""
    return (plan.steps[-1].tick + 2) * TICK


def _t11_outcome(found: set[tuple[str, int]], truth: set[tuple[str, int]], used: set[str],
                 disclosed: float, seconds: float, extra: dict[str, float]) -> Outcome:
    """Trials: each affected version in use when the CVE is disclosed (a consumer acted on
    it); detected: the defender's query listed it (alarm after the query's measured time)."""
    hit = found & truth
    in_use = {k for k in truth if k[0] in used}
    alarms = [Alarm(disclosed + seconds, "defender query", f"{len(found)} flagged")] if hit \
        else []
    o = outcome(bool(in_use), attack_at=disclosed, alarms=alarms, metrics={
        "recall": len(hit) / len(truth) if truth else 1.0,
        "precision": len(hit) / len(found) if found else 1.0,
        "find_time_s": seconds, "affected": float(len(truth)), "flagged": float(len(found)),
        **extra})
    o.attempts, o.successes, o.detections = len(in_use), len(in_use), len(in_use & found)
    return o


@scenario("T11", limit="the baseline records no environment: a defender can only flag every "
                      "step since the vulnerable release, or miss some")
class VulnerableFramework:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan, spec = teams_plan(tm, seed), str(tm.parameters.get("vulnerable", "torch==2.0.1"))
        db, ids = run_teams_db(plan, workdir)
        req = _requirement(plan, spec)
        t0 = time.perf_counter()
        # what its database records: who did what when, digests, inputs; the advisory gives
        # the vulnerable versions, the registry their publication dates: flag every step since
        # the first vulnerable release, then what was built on those (the inputs table)
        since = min((tick for v, tick in plan.releases
                     if req is not None and req.specifier.contains(v, prereleases=True)),
                    default=None)
        rows = [] if since is None else db.conn.execute(
            "SELECT artefact, version FROM history WHERE at >= ?", (since * TICK,)).fetchall()
        flagged = {(a, int(v)) for a, v in rows}
        grew = True
        while grew:
            users = db.conn.execute("SELECT artefact, version, input FROM inputs").fetchall()
            new = {(a, int(v)) for a, v, i in users if any(f[0] == i for f in flagged)}
            grew = not new <= flagged
            flagged |= new
        seconds = time.perf_counter() - t0
        name = {aid: n for n, aid in ids.items()}
        found = {(name[a], v) for a, v in flagged}
        used = {n for n, aid in ids.items() if db.conn.execute(
            "SELECT state FROM artefacts WHERE id=?", (aid,)).fetchone()[0] in
            ("collected", "trained")}
        db.close()
        return _t11_outcome(found, t11_truth(plan, spec), used, disclosed_at(plan), seconds,
                            {})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        from proml_sim.node.lineage import Lineage

        plan, spec = teams_plan(tm, seed), str(tm.parameters.get("vulnerable", "torch==2.0.1"))
        w, store, ids = run_teams_world(plan, seed, workdir,
                                        float(tm.parameters.get("lost_records", 0.0)))
        t0 = time.perf_counter()
        got = Lineage(WorldSource(w, store)).affected_by(spec)  # `proml lineage --affected-by`
        seconds = time.perf_counter() - t0
        name = {"0x" + aid.hex(): n for n, aid in ids.items()}
        # the defender quarantines the unknown versions too (their record is lost)
        found = {(name[k.id], k.version) for k in [*got.affected, *got.unknown]}
        used = {n for n in ids if Consumer("Dataset", "collected").accepts(w, ids[n])
                or Consumer("Model", "trained").accepts(w, ids[n])}
        return _t11_outcome(found, t11_truth(plan, spec), used, disclosed_at(plan), seconds,
                            {"unknown": float(len(got.unknown))})
