"""Actors as plain generator functions, and the scenario that wires teams into projects.

Two kinds of actor:

* :func:`record_stream`: a team records provenance updates (``Model.train`` with a fresh
  digest, i.e. a new model version) at Poisson times; it does not wait (the latency
  experiments measure the chain, not the team).
* :func:`paper_workflow`: the paper's 9-step distributed workflow for one project, with
  step durations from :class:`StepDurations`; each step captures provenance (a signed
  transaction) and waits for ``wait_depth`` confirmations before the next step starts, as a
  careful team would.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Generator
from dataclasses import dataclass, fields
from typing import Any

from proml_sim.sim.network import REGIONS
from proml_sim.sim.world import Participant, SimTx, World, domain_id

HOUR = 3600.0
DAY = 24 * HOUR


@dataclass(frozen=True)
class StepDurations:
    """Median durations (seconds) of the ML work between provenance steps; each draw is
    log-normal around the median with spread ``sigma``.  These are our assumptions (the paper
    does not state its own): data collection takes days, labelling by a crowd a couple of days,
    training hours, verification hours, acceptance and audit a day or more.

    Example: ``StepDurations(label=3600.0, sigma=0.5)`` (one-hour labelling).
    """

    collect: float = 3 * DAY
    label: float = 2 * DAY
    review: float = 4 * HOUR
    release: float = 1 * HOUR
    train: float = 8 * HOUR
    verify: float = 4 * HOUR
    accept: float = 1 * DAY
    audit: float = 3 * DAY
    sigma: float = 0.5
    p_reject: float = 0.2  # a verifier rejects a model version; the developer retrains

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if v < 0:
                raise ValueError(f"StepDurations.{f.name}={v}; durations must be >= 0")
        if not 0 <= self.p_reject < 1:
            raise ValueError("p_reject must be in [0, 1)")

    def scaled(self, factor: float) -> StepDurations:
        """All durations times ``factor`` (smoke runs compress days into minutes)."""
        kw = {f.name: getattr(self, f.name) * factor for f in fields(self)
              if f.name not in ("sigma", "p_reject")}
        return StepDurations(**kw, sigma=self.sigma, p_reject=self.p_reject)

    def total_median(self) -> float:
        """Median end-to-end duration of the 9 steps without rejections (serial steps)."""
        return (self.collect + self.label + self.review + self.release + self.train
                + 2 * self.verify + self.accept + self.audit)


def digest_of(*parts: Any) -> bytes:
    """A SHA-256 content digest standing in for an artefact's bytes in the simulation.

    Example: ``digest_of("team1", "model", 3)`` (32 bytes, the same for the same parts)."""
    return hashlib.sha256(repr(parts).encode()).digest()


def _work(world: World, median: float, sigma: float) -> Any:
    if median <= 0:
        return world.env.timeout(0)
    return world.env.timeout(median * math.exp(world.rng.gauss(0.0, sigma)))


def record_stream(world: World, who: Participant, model_id: bytes, rate_per_s: float,
                  until: float) -> Generator[Any, Any, int]:
    """Poisson provenance updates (new model versions) from ``who`` until ``until``.

    Example: ``w.env.process(record_stream(w, team, model_id, 30 / 3600, 3600.0))``."""
    n = 0
    while True:
        yield world.env.timeout(world.rng.expovariate(rate_per_s))
        if world.env.now >= until:
            return n
        n += 1
        yield from world.send(who, "Model", "fire", "train", model_id,
                              digest_of(who.name, n), f"s3://{who.domain}/m/{n}", [],
                              artefact=model_id, transition="train")


@dataclass
class Project:
    """One run of the paper's workflow: seven participants in (ideally) seven trust domains.

    Example: ``projects, grants = build_projects(w, n_teams=7, n_projects=2)``."""

    name: str
    operator: Participant
    data_admin: Participant
    labeller: Participant
    developer: Participant
    verifier_a: Participant
    verifier_b: Participant
    auditor: Participant
    log: list[dict[str, Any]] | None = None


ROLES = (  # (project attribute, lifecycle, role)
    ("operator", "Model", "operator"),
    ("operator", "Dataset", "operator"),
    ("data_admin", "Dataset", "dataset_admin"),
    ("developer", "Model", "developer"),
    ("verifier_a", "Model", "verifier"),
    ("verifier_b", "Model", "verifier"),
    ("auditor", "Model", "auditor"),
)


def build_projects(world: World, n_teams: int, n_projects: int) -> tuple[list[Project], list[
        tuple[str, str, str]]]:
    """Teams are organisations (one trust domain each, spread over regions); each project
    draws its seven roles from seven different teams (or as many as exist).  Returns the
    projects and the role grants ``World.setup`` must make.

    Example: ``projects, grants = build_projects(w, 12, 4); w.setup(grants=grants)``.
    """
    if n_teams < 1 or n_projects < 0:
        raise ValueError("need n_teams >= 1 and n_projects >= 0")
    teams = [(f"team{i:03d}", REGIONS[i % len(REGIONS)]) for i in range(n_teams)]
    attrs = ("operator", "data_admin", "labeller", "developer", "verifier_a", "verifier_b",
             "auditor")
    projects, grants = [], []
    for j in range(n_projects):
        picks = world.rng.sample(range(n_teams), k=min(n_teams, len(attrs)))
        people = {}
        for k, attr in enumerate(attrs):
            team, region = teams[picks[k % len(picks)]]
            people[attr] = world.add_participant(f"p{j:03d}-{attr}", team, region)
        proj = Project(f"project{j:03d}", **people, log=[])
        for attr, lifecycle, role in ROLES:
            grants.append((getattr(proj, attr).name, lifecycle, role))
        # the labeller is hired during the run (step 4): a consortium admits its domain for
        # the role at set-up, and its domain's admin enrols it then
        world.allow(proj.labeller.name, "Dataset", "labeller")
        projects.append(proj)
    return projects, grants


def paper_workflow(world: World, proj: Project, durations: StepDurations,
                   wait_depth: int = 1) -> Generator[Any, Any, dict[str, Any]]:
    """The 9 steps of PAPER.md for one project; returns a summary of times and outcomes.

    Example: ``w.env.process(paper_workflow(w, projects[0], StepDurations(), wait_depth=12))``.
    """
    d = durations
    started = world.env.now
    waited = 0.0
    txs: list[SimTx] = []

    def step(who: Participant, lifecycle: str, method: str, *args: Any,
             transition: str, artefact: Any = None) -> Generator[Any, Any, Any]:
        nonlocal waited
        t0 = world.env.now
        tx = yield from world.send(who, lifecycle, method, *args, transition=transition,
                                   artefact=artefact, project=proj.name)
        txs.append(tx)
        yield world.confirmed(tx, wait_depth)
        waited += world.env.now - t0
        return world.result(tx)

    salt = proj.name.encode().ljust(32, b"\0")
    # 1 the client's idea: the model request
    mid = yield from step(proj.operator, "Model", "register", salt, transition="register")
    # 2 hire a data company (its role was granted at set-up); 3 data gathered
    yield _work(world, d.collect, d.sigma)
    raw = digest_of(proj.name, "raw")
    did = yield from step(proj.data_admin, "Dataset", "register", salt, raw,
                          f"s3://{proj.data_admin.domain}/raw", transition="register")
    # 4 labelling outsourced: the labeller is hired (enrolled by its own domain's admin in a
    # consortium; granted by the data company, the role's admin, under a single admin)
    hirer = (proj.data_admin if world.clients["Dataset"].ir.consortium is None
             else world.domain_admin(proj.labeller, "Dataset"))
    yield from step(hirer, "Dataset", "grant", "labeller", proj.labeller.address,
                    domain_id(proj.labeller.domain), transition="grant")
    yield _work(world, d.label, d.sigma)
    yield from step(proj.labeller, "Dataset", "fire", "label", did, digest_of(proj.name, "lab"),
                    f"s3://{proj.labeller.domain}/labels", [did], transition="label",
                    artefact=did)
    # 5 review and hand-over to the developers
    yield _work(world, d.review, d.sigma)
    yield from step(proj.data_admin, "Dataset", "fire", "review", did, transition="review",
                    artefact=did)
    yield _work(world, d.release, d.sigma)
    rel = digest_of(proj.name, "release")
    yield from step(proj.data_admin, "Dataset", "fire", "release", did, rel,
                    f"s3://{proj.data_admin.domain}/release", [did], transition="release",
                    artefact=did)
    # 6 model developed; 7 verified by two organisations (retrain after a rejection)
    version = 0
    while True:
        version += 1
        yield _work(world, d.train, d.sigma)
        model = digest_of(proj.name, "model", version)
        yield from step(proj.developer, "Model", "fire", "train", mid, model,
                        f"s3://{proj.developer.domain}/model-v{version}", [did],
                        transition="train", artefact=mid)
        yield _work(world, d.verify, d.sigma)
        evaluation = digest_of(proj.name, "eval", version)
        if world.rng.random() < d.p_reject:
            yield from step(proj.verifier_a, "Model", "fire", "reject", mid, evaluation, "", [],
                            transition="reject", artefact=mid)
            continue
        yield from step(proj.verifier_a, "Model", "fire", "verify", mid, evaluation, "", [],
                        transition="verify", artefact=mid)
        yield _work(world, d.verify, d.sigma)
        yield from step(proj.verifier_b, "Model", "fire", "verify", mid, evaluation, "", [],
                        transition="verify", artefact=mid)
        break
    # 8 returned to the client; 9 third-party validation
    yield _work(world, d.accept, d.sigma)
    yield from step(proj.operator, "Model", "fire", "accept", mid, transition="accept",
                    artefact=mid)
    yield _work(world, d.audit, d.sigma)
    yield from step(proj.auditor, "Model", "fire", "audit", mid, digest_of(proj.name, "audit"),
                    f"s3://{proj.auditor.domain}/report", [], transition="audit", artefact=mid)
    total = world.env.now - started
    summary = {
        "project": proj.name, "started": started, "duration_s": total,
        "provenance_wait_s": waited, "share": waited / total if total else 0.0,
        "transactions": len(txs), "versions": version,
        "gas": sum(t.receipt.gas_used for t in txs if t.receipt),
        "final_model_state": world.clients["Model"].state(mid),
    }
    if proj.log is not None:
        proj.log.append(summary)
    return summary
