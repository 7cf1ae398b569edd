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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from proml_sim.errors import UsageError
from proml_sim.ir import Registered, RoleGranted, Transitioned
from proml_sim.node.consumer import sha256
from proml_sim.node.lineage import Lineage, parse_requirement
from proml_sim.node.records import InputRef, Record
from proml_sim.node.service import name_salt
from proml_sim.node.store import BlobStore
from proml_sim.sim.world import World
from proml_sim.threats.baseline import CentralDB
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.kit import Alarm, Consumer, Trial, ratio, trials_outcome, world
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import param, play, send_ok, wait_until
from proml_sim.threats.scenarios.t_support import (
    TICK,
    baseline_db,
    db_dataset,
    evidence_source,
    fref,
    hexd,
    node_record,
)


# -- the baseline application's lineage -----------------------------------------------------------
def lineage_db(tm: ThreatModel, workdir: Path, admin: str) -> CentralDB:
    """The baseline database (:func:`baseline_db`) with the application's lineage table."""
    db = baseline_db(tm, workdir, admin)
    db.conn.execute("CREATE TABLE IF NOT EXISTS inputs (artefact TEXT, version INTEGER, "
                    "input TEXT)")
    db.conn.commit()
    return db


def db_fire(db: CentralDB, actor: str, transition: str, aid: str, digest: str = "",
            at: float = 0.0, inputs: Sequence[str] = ()) -> bool:
    """Fire through the baseline application, recording the declared inputs (its lineage
    table ``inputs(artefact, version, input)``, as a careful design keeps)."""
    fired = db.fire(actor, transition, aid, digest, at)
    if fired and inputs:
        row = db.conn.execute("SELECT version FROM artefacts WHERE id=?", (aid,)).fetchone()
        db.conn.executemany("INSERT INTO inputs VALUES (?, ?, ?)",
                            [(aid, int(row[0]), i) for i in inputs])
        db.conn.commit()
    return fired


# -- records as a node makes them ----------------------------------------------------------------
def node_args(store: BlobStore | None, rec: Record, name: str | None = None, *,
              locator: bool = True) -> tuple[Any, ...]:
    """The on-chain arguments a node sends for ``rec`` (stored in ``store``; ``None``: the
    record is lost): ``register`` gets (name salt, digest, ``proml:<name>``), a transition
    (digest, ``proml:<digest>``); ``locator=False``: a locator that does not name it."""
    data = rec.canonical()
    if store is not None:
        store.put_bytes(data)
    digest = sha256(data)
    if name is not None:
        return (name_salt(name), digest, f"proml:{name}" if locator else "")
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
    rng = random.Random(f"teams-{seed}")
    n_teams, per_team = int(param(tm, "teams")), int(param(tm, "trainings"))
    n_data = int(param(tm, "datasets"))
    versions = [str(v) for v in param(tm, "releases")]
    if not versions:  # a list: no [ranges] rule (teams, trainings, datasets, adopt_lag have)
        raise UsageError(f"{tm.id}: releases=[]; give at least one version, e.g. --param "
                         "'releases=[\"2.0.0\"]'")
    n_steps = n_data + 2 * n_teams * per_team
    releases = [(v, round(i * n_steps / len(versions))) for i, v in enumerate(versions)]
    people = {a.name: (a.domain, a.region) for a in tm.cast()}  # data, team0 ...
    lag = float(param(tm, "adopt_lag"))
    adopt = {p: [0.0] + [tick + rng.expovariate(1 / lag) for _, tick in releases[1:]]
             for p in people}

    def installed(p: str, tick: int) -> str:
        return versions[max(i for i, a in enumerate(adopt[p]) if a <= tick)]

    plan = Plan(str(param(tm, "package")), releases, people)
    for d in range(n_data):
        plan.steps.append(Step(d, "data", "dataset", f"ds{d}", installed("data", d)))
    order = [t for t in range(n_teams) for _ in range(per_team)]
    rng.shuffle(order)
    trained: list[tuple[int, str]] = []
    finetune = float(param(tm, "finetune"))
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


def content(s: Step, seed: int) -> bytes:
    """The bytes a step produced (a dataset file, a model)."""
    return f"{s.name}:{s.kind}:{seed}".encode()


def plan_versions(plan: Plan) -> dict[tuple[str, int], Step]:
    """(artefact name, version) -> the step that made it."""
    return {(s.name, 2 if s.kind == "train" else 1): s for s in plan.steps}


@dataclass
class TeamsRun:
    """A plan run on a simulated chain: the world, the shared store, artefact ids by name and
    the chain time each step was sent at, by (name, kind)."""

    world: World
    store: BlobStore
    ids: dict[str, bytes]
    sent: dict[tuple[str, str], float]


def run_teams_world(plan: Plan, tm: ThreatModel, seed: int, workdir: Path, lost: float = 0.0,
                    *, locator: bool = True, raw_digests: bool = False) -> TeamsRun:
    """Run the plan on a simulated chain, recording every step as a node does; a fraction
    ``lost`` of the records never reaches the shared store (a team's disk lost);
    ``locator=False``: registrations carry no name in their locator; ``raw_digests``: datasets
    are registered with the digest of their bytes (as tools without records do)."""
    w, ps = world(tm, seed)
    store = BlobStore(workdir / "exchange")
    run = TeamsRun(w, store, {}, {})
    ids = run.ids
    rng = random.Random(f"lost-{seed}")

    def teams() -> Any:
        for s in plan.steps:
            yield wait_until(w.env, s.tick * TICK)
            p, env = ps[s.who], plan.env(s.version)
            keep = None if rng.random() < lost else store
            out = (fref(store, f"{s.name}.bin", content(s, seed)),)
            run.sent[(s.name, s.kind)] = w.real_ts(w.env.now)
            if s.kind in ("dataset", "register"):
                lc = "Dataset" if s.kind == "dataset" else "Model"
                rec = node_record(p, lc, "register", None, s.name, env=env, outputs=out,
                                  at=w.env.now)
                args = node_args(keep, rec, s.name, locator=locator)
                if raw_digests and s.kind == "dataset":
                    args = (args[0], sha256(content(s, seed)), args[2])
                tx = yield from send_ok(w, p, lc, "register", *args, [])
                ids[s.name] = w.result(tx)
                continue
            refs = tuple(_input_ref(w, ids[i], i) for i in s.inputs)
            rec = node_record(p, "Model", "train", ids[s.name], s.name, env=env, inputs=refs,
                              outputs=out, at=w.env.now)
            yield from send_ok(w, p, "Model", "fire", "train", ids[s.name],
                               *node_args(keep, rec), [ids[i] for i in s.inputs])

    play(w, disclosed_at(plan), teams(), tail=0.0)
    return run


def _input_ref(w: World, aid: bytes, name: str) -> InputRef:
    lc = "Dataset" if name.startswith("ds") else "Model"
    hist = w.clients[lc].history(aid)
    evidence = next((h.digest for h in reversed(hist) if h.digest.strip(b"\0")), b"")
    return InputRef("0x" + aid.hex(), lc, hist[-1].version, evidence.hex())


def run_teams_db(plan: Plan, tm: ThreatModel, seed: int, workdir: Path) -> Any:
    """The same plan through the baseline application (digests of the bytes, inputs)."""
    db = lineage_db(tm, workdir, "ops")
    ids: dict[str, str] = {}
    for s in plan.steps:
        at = s.tick * TICK
        digest = hexd(content(s, seed))
        if s.kind in ("dataset", "register"):
            lc = "Dataset" if s.kind == "dataset" else "Model"
            ids[s.name] = db.register(s.who, lc, s.name, digest, at)
        else:
            db_fire(db, s.who, "train", ids[s.name], digest, at, [ids[i] for i in s.inputs])
    return db, ids


# -- T11 ------------------------------------------------------------------------------------------
def t11_truth(plan: Plan, spec: str) -> set[tuple[str, int]]:
    """Versions built with a matching package version (in the environment the step really
    ran in), and every version built on one (inputs and later versions: the lineage rule),
    from the plan: what really happened."""
    req = parse_requirement(spec)
    bad: set[tuple[str, int]] = set()
    for (name, v), s in sorted(plan_versions(plan).items(), key=lambda kv: kv[1].tick):
        pkgs = {canonicalize_name(k): x for k, x in plan.env(s.version)["packages"].items()}
        got = pkgs.get(canonicalize_name(req.name))
        if ((got is not None and req.specifier.contains(got, prereleases=True))
                or (name, 1) in bad
                or any((i, 1 if i.startswith("ds") else 2) in bad for i in s.inputs)):
            bad.add((name, v))
    return bad


def release_window(plan: Plan, spec: str) -> float:
    """The baseline defender's triage: the publication time of the first release the
    advisory names (the registry's dates); 0 (everything) for a package whose releases the
    workload does not track."""
    req = parse_requirement(spec)
    if canonicalize_name(req.name) != canonicalize_name(plan.package):
        return 0.0
    ticks = [t for v, t in plan.releases if req.specifier.contains(v, prereleases=True)]
    return min(ticks) * TICK if ticks else float("inf")


def disclosed_at(plan: Plan) -> float:
    """When the CVE is disclosed: after the workload's last step."""
    return (plan.steps[-1].tick + 2) * TICK


def _t11_outcome(found: set[tuple[str, int]], truth: set[tuple[str, int]], used: set[str],
                 disclosed: float, seconds: float, extra: dict[str, float]) -> Outcome:
    """Trials: each affected version in use when the CVE is disclosed (a consumer acted on
    it); detected: the defender's query listed it (alarm after the query's measured time)."""
    hit = found & truth
    metrics = {"recall": ratio(len(hit), len(truth)),
               "precision": ratio(len(hit), len(found)),
               "find_time_s": seconds, "affected": float(len(truth)),
               "flagged": float(len(found)), **extra}
    alarm = (Alarm(disclosed + seconds, "defender query", f"{len(found)} flagged"),)
    # (none: nobody built anything with the release, nothing to find: no_attack)
    trials = [Trial(True, alarm if k in found else ()) for k in sorted(truth) if k[0] in used]
    return trials_outcome(trials, attack_at=disclosed, metrics=metrics)


@scenario("T11")
class VulnerableFramework:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan, spec = teams_plan(tm, seed), str(param(tm, "vulnerable"))
        db, ids = run_teams_db(plan, tm, seed, workdir)
        t0 = time.perf_counter()
        # what its database records: who did what when, digests, inputs; the advisory gives
        # the vulnerable versions, the registry their publication dates: flag every step since
        # the first vulnerable release, then what was built on those (the inputs table)
        rows = db.conn.execute("SELECT artefact, version FROM history WHERE at >= ?",
                               (release_window(plan, spec),)).fetchall()
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
        plan, spec = teams_plan(tm, seed), str(param(tm, "vulnerable"))
        run = run_teams_world(plan, tm, seed, workdir,
                              float(param(tm, "lost_records")))
        w, ids = run.world, run.ids
        t0 = time.perf_counter()
        # what `proml lineage --affected-by` answers
        got = Lineage(evidence_source(w, run.store)).affected_by(spec)
        seconds = time.perf_counter() - t0
        name = {"0x" + aid.hex(): n for n, aid in ids.items()}
        # the defender quarantines the unknown versions too (their record is lost), and what
        # was built on them
        found = {(name[k.id], k.version)
                 for k in [*got.affected, *got.unknown, *got.unknown_descendants]}
        used = {n for n in ids if Consumer("Dataset", "collected").accepts(w, ids[n])
                or Consumer("Model", "trained").accepts(w, ids[n])}
        return _t11_outcome(found, t11_truth(plan, spec), used, disclosed_at(plan), seconds,
                            {"unknown": float(len(got.unknown))})


# -- T12 ------------------------------------------------------------------------------------------
def _t12_params(tm: ThreatModel) -> tuple[str, int, bool, bool]:
    return (str(param(tm, "hidden")), int(param(tm, "models")),
            bool(param(tm, "record_inputs")),
            bool(param(tm, "consumer_checks")))


def _t12_bytes(seed: int) -> dict[str, bytes]:
    rows = b"".join(b"%d,%d\n" % (seed + i, i % 7) for i in range(40))
    return {"raw": rows, "labelled": rows.replace(b"\n", b",cat\n"),
            "relabelled": rows.replace(b"\n", b",dog\n")}  # the off-the-books step's output


def _t12_model(hidden: str, i: int, seed: int) -> tuple[bytes, bytes]:
    """(the model bytes the training recorded, the bytes served to the consumer)."""
    recorded = b"model %d of seed %d" % (i, seed)
    return recorded, (b"retrained off the books: " + recorded if hidden == "retrain"
                      else recorded)


def _t12_outcome(trials: list[Trial], attack_at: float) -> Outcome:
    """Trials: one per model (success: a consumer acted on it; its alarms: the consumer's or
    a monitor's about that model)."""
    first = next((t.alarms[0].detail for t in trials if t.alarms), "")
    return trials_outcome(trials, attack_at=attack_at, note=first)


@scenario("T12")
class UnrecordedStep:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        hidden, n, _, checks = _t12_params(tm)
        data = _t12_bytes(seed)
        db = lineage_db(tm, workdir, "da")
        ds = db_dataset(db, "ds", hexd(data["raw"]), hexd(data["labelled"]))
        trials = []
        for i in range(n):
            at = (4 + i) * TICK
            recorded, served = _t12_model(hidden, i, seed)
            mid = db.register("op", "Model", f"m{i}", "", at)
            db_fire(db, "dev", "train", mid, hexd(recorded), at, [ds])
            # the consumer's guard: the served bytes are the recorded digest, every input is
            # a released artefact (all the database can check)
            ok = db.digest_of(mid) == hexd(served) and all(
                db.conn.execute("SELECT state FROM artefacts WHERE id=?", (a,)).fetchone()[0]
                == "released" for (a,) in db.conn.execute(
                    "SELECT input FROM inputs WHERE artefact=?", (mid,)))
            alarms = () if ok else (
                Alarm(at + TICK, "consumer guard", "served bytes are not the recorded digest"),)
            trials.append(Trial(ok or not checks, alarms))
        db.close()
        return _t12_outcome(trials, 4 * TICK)

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        from proml_sim.node.verify import verify

        hidden, n, record_inputs, checks = _t12_params(tm)
        data = _t12_bytes(seed)
        w, ps = world(tm, seed)
        store = BlobStore(workdir / "exchange")
        f = {k: fref(store, f"{k}.csv", v) for k, v in data.items()}
        trials: list[Trial] = []

        def fire(who: str, lc: str, step: str, aid: bytes, rec: Record | None = None,
                 inputs: tuple[bytes, ...] = ()) -> Any:
            args = (*node_args(store, rec), list(inputs)) if rec else ()
            return (yield from send_ok(w, ps[who], lc, "fire", step, aid, *args))

        def work() -> Any:
            rec = node_record(ps["da"], "Dataset", "register", None, "ds", outputs=(f["raw"],))
            ds = w.result((yield from send_ok(w, ps["da"], "Dataset", "register",
                                              *node_args(store, rec, "ds"), [])))
            rec = node_record(ps["lab"], "Dataset", "label", ds, "ds", input_files=(f["raw"],),
                              outputs=(f["labelled"],))
            yield from fire("lab", "Dataset", "label", ds, rec)
            yield from fire("da", "Dataset", "review", ds)
            rec = node_record(ps["da"], "Dataset", "release", ds, "ds",
                              input_files=(f["labelled"],), outputs=(f["labelled"],))
            yield from fire("da", "Dataset", "release", ds, rec)
            # the hidden step: relabelled bytes no record mentions (or a retrained model)
            for i in range(n):
                yield w.env.timeout(TICK)
                recorded, served = _t12_model(hidden, i, seed)
                rec = node_record(ps["op"], "Model", "register", None, f"m{i}")
                mid = w.result((yield from send_ok(w, ps["op"], "Model", "register",
                                                   *node_args(store, rec, f"m{i}"), [])))
                used = f["relabelled"] if hidden == "relabel" else f["labelled"]
                rec = node_record(ps["dev"], "Model", "train", mid, f"m{i}",
                                  inputs=(_input_ref(w, ds, "ds"),),
                                  input_files=(used,) if record_inputs else (),
                                  outputs=(fref(store, "model.bin", recorded),))
                yield from fire("dev", "Model", "train", mid, rec, (ds,))
                # the consumer's guard: node verify (lineage: every input file has a recorded
                # producer) and the served bytes are an output of the latest record
                report = verify(evidence_source(w, store), mid)
                problems = [f"{c.name} check failed" for c in report.checks if not c.ok]
                if sha256(served).hex() not in {o.sha256 for o in rec.outputs}:
                    problems.append("served bytes are no output of the recorded step")
                alarms = tuple(Alarm(w.env.now, "consumer guard", p) for p in problems[:1])
                trials.append(Trial(Consumer("Model", "trained").accepts(w, mid)
                                    and (not problems or not checks), alarms))

        play(w, (6 + 2 * n) * TICK, work(), tail=0.0)
        return _t12_outcome(trials, 4 * TICK)


# -- I1 -------------------------------------------------------------------------------------------
@dataclass
class View:
    """What one observer can read: accounts' domains, steps (actor, step name, artefact,
    time, inputs), artefact names, and evidence digests.  Also the truth, on the same keys."""

    domains: dict[str, str] = field(default_factory=dict)
    steps: list[tuple[str, str, str, float, tuple[str, ...]]] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    digests: set[str] = field(default_factory=set)


def chain_view(run: TeamsRun, candidates: list[str]) -> View:
    """The outsider: every event of the public chain; names from the registrations' locators,
    or confirmed by hashing ``candidates`` into the name salt (a dictionary attack)."""
    v = View()
    salts = {name_salt(c): c for c in candidates}
    for ce in evidence_source(run.world, run.store).events():
        ev, ir = ce.event, run.world.clients[ce.lifecycle].ir
        if isinstance(ev, RoleGranted):
            v.domains[ev.account] = ev.domain.rstrip(b"\0").decode(errors="replace")
        elif isinstance(ev, Registered | Transitioned):
            aid = "0x" + ev.id.hex()
            step = "register" if isinstance(ev, Registered) else ir.transitions[
                ev.transition].name
            v.steps.append((ce.sender, step, aid, float(ce.timestamp),
                            tuple("0x" + i.hex() for i in ev.inputs)))
            v.digests.add(ev.digest.hex())
            if isinstance(ev, Registered):
                if ev.locator.startswith("proml:") and name_salt(ev.locator[6:]) == ev.salt:
                    v.names[aid] = ev.locator[6:]
                elif ev.salt in salts:
                    v.names[aid] = salts[ev.salt]
    return v


def truth_view(plan: Plan, seed: int, aid: Callable[[str], str], actor: Callable[[str], str],
               when: Callable[[Step], float]) -> tuple[View, dict[str, bytes]]:
    """What really happened, in an observer's terms (``aid(name)``, ``actor(participant)``,
    ``when(step)``), and the dataset files an outsider may hold (public data)."""
    t = View(domains={actor(p): d for p, (d, _) in plan.people.items()},
             names={aid(s.name): s.name for s in plan.steps})
    t.steps = [(actor(s.who), "train" if s.kind == "train" else "register", aid(s.name),
                when(s), tuple(aid(i) for i in s.inputs)) for s in plan.steps]
    return t, {s.name: content(s, seed) for s in plan.steps if s.kind == "dataset"}


def db_view(db: Any) -> View:
    """The baseline operator's view: every table of the database."""
    v = View(domains={a: d for a, d in db.conn.execute("SELECT account, domain FROM accounts")})
    inputs: dict[tuple[str, int], list[str]] = {}
    for a, ver, i in db.conn.execute("SELECT artefact, version, input FROM inputs"):
        inputs.setdefault((a, int(ver)), []).append(i)
    for a, step, actor, ver, digest, at in db.conn.execute(
            "SELECT artefact, step, actor, version, digest, at FROM history"):
        v.steps.append((actor, step, a, float(at), tuple(inputs.get((a, int(ver)), ()))))
        v.digests.add(digest)
    v.names = {a: n for a, n in db.conn.execute("SELECT id, name FROM artefacts")}
    return v


def disclosure(seen: View, truth: View, files: dict[str, bytes], slack: float
               ) -> dict[str, tuple[int, int]]:
    """(inferred, targets) per question an outsider asks: which domain each acting account
    belongs to; which team trained when (domain and time within ``slack`` s); each artefact's
    name; each lineage edge (input -> trained model); which held dataset file was registered
    (its digest on record)."""
    acting = {a for a, *_ in truth.steps}
    trains = [s for s in truth.steps if s[1] == "train"]
    seen_trains = {(s[2]): s for s in seen.steps if s[1] == "train"}

    def timed(s: tuple[str, str, str, float, tuple[str, ...]]) -> bool:
        o = seen_trains.get(s[2])
        return o is not None and seen.domains.get(o[0]) == truth.domains[s[0]] and abs(
            o[3] - s[3]) <= slack

    edges = {(i, s[2]) for s in trains for i in s[4]}
    seen_edges = {(i, s[2]) for s in seen.steps for i in s[4]}
    return {
        "accounts_linked": (sum(seen.domains.get(a) == truth.domains[a] for a in acting),
                            len(acting)),
        "trainings_timed": (sum(timed(s) for s in trains), len(trains)),
        "names_recovered": (sum(seen.names.get(a) == n for a, n in truth.names.items()),
                            len(truth.names)),
        "lineage_edges": (len(edges & seen_edges), len(edges)),
        "datasets_confirmed": (sum(hexd(b) in seen.digests or sha256(b).hex() in seen.digests
                                   for b in files.values()), len(files)),
    }


def _i1_outcome(found: dict[str, tuple[int, int]], extra: Mapping[str, float | None]
                ) -> Outcome:
    """Trials: every question of :func:`disclosure`; success: the outsider inferred it.
    Reading a public chain (or failing to read a database) raises no alarm anywhere."""
    trials = [Trial(i < h) for h, n in found.values() for i in range(n)]
    return trials_outcome(trials, metrics={**{k: ratio(h, n) for k, (h, n) in found.items()},
                                           **extra})


@scenario("I1")
class OutsiderReadsMetadata:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = teams_plan(tm, seed)
        db, ids = run_teams_db(plan, tm, seed, workdir)
        truth, files = truth_view(plan, seed, ids.__getitem__, str, lambda s: s.tick * TICK)
        # an outsider has no account on the database: it reads nothing; the operator all
        outsider = disclosure(View(), truth, files, TICK)
        operator = disclosure(db_view(db), truth, files, TICK)
        db.close()
        return _i1_outcome(outsider, {f"operator_{k}": ratio(h, n)
                                      for k, (h, n) in operator.items()})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = teams_plan(tm, seed)
        run = run_teams_world(plan, tm, seed, workdir, locator=bool(param(tm, "locator_names")),
                              raw_digests=bool(param(tm, "raw_digests")))
        truth, files = truth_view(
            plan, seed, lambda n: "0x" + run.ids[n].hex(),
            lambda p: run.world.participants[p].address,
            lambda s: run.sent[(s.name, s.kind)])
        rng = random.Random(f"guess-{seed}")
        guessed = float(param(tm, "guessed_names"))
        candidates = [n for n in truth.names.values() if rng.random() < guessed]
        candidates += [f"model-{i}" for i in range(100)]  # the rest of the dictionary
        slack = float(param(tm, "timing_slack_s"))
        seen = chain_view(run, candidates)
        when = {s[2]: s[3] for s in seen.steps if s[1] == "train"}
        errors = [abs(when[s[2]] - s[3]) for s in truth.steps if s[1] == "train" and s[2] in when]
        extra = {"timing_error_s": sum(errors) / len(errors)} if errors else {}
        return _i1_outcome(disclosure(seen, truth, files, slack), extra)
