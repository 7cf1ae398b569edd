"""The scenario kit: attacker actions, defences, consumers and outcome oracles for writing a
threat scenario (the public API of a scenario plugin; ``docs/tutorials/threat_scenario.py``).

One definition of each outcome, used by every scenario written with the kit:

* **attack success** (ASR counts it): the attacker's goal was reached -- a
  :class:`Consumer` *acted on* a forged or poisoned artefact, or the record was rewritten.  An
  attacker's transaction that was merely included is not success; a reverted one never is.
* **detected**: an :class:`Alarm` was raised from data a real deployment has (chain events and
  state anyone can read, a party's own logs) -- never from the simulator's internals; **time
  to detect** is the first alarm's time minus the attack's start.

:func:`outcome` turns those into the :class:`~proml_sim.threats.runner.Outcome` the runner
judges (Wilson interval of ASR, detection rate, bootstrap of the time to detect).

A scenario is a class with ``baseline`` and ``proml`` static methods registered with
:func:`~proml_sim.threats.runner.scenario`; each builds its system from the threat model's cast
(:func:`world` on the chain, :func:`central` for the baseline), runs the attacker
(:func:`attempt`), defences (:func:`watch`) and consumers (:class:`Consumer`), and returns
:func:`outcome`: the worked example is ``docs/tutorials/threat_scenario.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proml_sim.ir import build_ir
from proml_sim.sim.monitor import outcome as tx_outcome
from proml_sim.sim.world import Participant, World, domain_id
from proml_sim.threats.baseline import CentralDB
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.runner import Outcome, finite_number

__all__ = ["Alarm", "Auditor", "Consumer", "Trial", "attempt", "central", "dba_rewrite",
           "governance_review", "outcome", "ratio", "trials_outcome", "watch", "world"]


# -- the two systems, built from the threat model's cast ([actors]) ---------------------------
def _set_up_world(seed: int, people: dict[str, tuple[str, str]],
                  grants: Iterable[tuple[str, str, str]], profile: Any = "consortium-fast",
                  allow: Iterable[tuple[str, str, str]] = (),
                  **kw: Any) -> tuple[World, dict[str, Participant]]:
    """A world with ``people`` = {name: (domain, region)} and role ``grants``
    (name, lifecycle, role), set up and ready to run (``allow``: see :meth:`World.setup`).  A
    consortium lifecycle's grants go through its governance; on a single-admin lifecycle a role
    whose admin is another role (Dataset.labeller) is granted by that role's holder.  Grants on
    a lifecycle the world does not deploy are left out (:func:`world` over a cast)."""
    w = World(seed=seed, profile=profile, **kw)
    ps = {n: w.add_participant(n, d, r) for n, (d, r) in people.items()}
    irs = {n: build_ir(cls) for n, cls in w.lifecycles.items()}
    grants = [g for g in dict.fromkeys(grants) if g[1] in irs]
    later = [g for g in grants if irs[g[1]].consortium is None
             and irs[g[1]].role(g[2]).admin != "admin"]
    w.setup([g for g in grants if g not in later], allow=allow)
    for name, lc, role in later:
        granter = next(ps[n] for n, c, r in grants if c == lc and r == irs[lc].role(role).admin)
        w.clients[lc].grant(granter.signer, role, ps[name].address, domain_id(ps[name].domain))
    w.mark_start()
    return w, ps


#: participants a run adds beside the cast: (name, domain, region, "Lifecycle.role ...")
Extra = Iterable[tuple[str, str, str, str]]
Person = tuple[str, str, str, tuple[tuple[str, str], ...]]


def _people(tm: ThreatModel, extra: Extra) -> list[Person]:
    """(name, domain, region, roles) of the cast, then of ``extra`` (name, domain, region,
    "Lifecycle.role ...") participants a run adds."""
    return [(a.name, a.domain, a.region, a.roles) for a in tm.cast()] + [
        (n, d, r, tuple((lc, role) for lc, role in (x.split(".") for x in roles.split())))
        for n, d, r, roles in extra]


def world(tm: ThreatModel, seed: int, *, extra: Extra = (),
          grants: Iterable[tuple[str, str, str]] = (), rename: dict[str, str] | None = None,
          **kw: Any) -> tuple[World, dict[str, Participant]]:
    """ProML's side of a scenario: a set-up world of the threat model's cast
    (:meth:`ThreatModel.cast`) and ``extra`` (name, domain, region, "Lifecycle.role ...")
    participants a run adds, each actor's roles granted in that order on the lifecycles
    deployed (``lifecycles=`` and the other keywords go to :class:`World`), then ``grants``
    (name, lifecycle, role) a run adds; ``rename`` maps a cast's lifecycle to the one deployed
    in its place (``{"Dataset": "StrictDataset"}``).

    Example: ``w, ps = world(tm, seed, lifecycles=[Dataset])``.
    """
    names = rename or {}
    cast = _people(tm, extra)
    people = {n: (d, r) for n, d, r, _ in cast}
    all_grants = [*((n, names.get(lc, lc), role) for n, _, _, roles in cast
                    for lc, role in roles), *grants]
    _check_members(tm, people, [*all_grants, *kw.get("allow", ())], kw.get("lifecycles"))
    return _set_up_world(seed, people, all_grants, **kw)


def _check_members(tm: ThreatModel, people: dict[str, tuple[str, str]],
                   grants: Iterable[tuple[str, str, str]], lifecycles: Any) -> None:
    """Refuse, before any key is made, a run whose consortium lifecycle would enrol more
    member domains than a consortium holds (:data:`~proml_sim.ir.MAX_DOMAINS`): each domain
    of a participant granted (or allowed) a role on it joins (:meth:`World.setup`)."""
    from proml_sim.ir import MAX_DOMAINS
    from proml_sim.sim.world import DEFAULT_LIFECYCLES
    from proml_sim.threats.catalogue import CatalogueError

    for cls in DEFAULT_LIFECYCLES if lifecycles is None else lifecycles:
        name = cls.__name__
        if build_ir(cls).consortium is None:
            continue
        domains = {people[n][0] for n, lc, _ in grants if lc == name and n in people}
        if len(domains) > MAX_DOMAINS:
            counts = ", ".join(dict.fromkeys(f"{a.count} = {tm.parameters[a.count]}"
                                             for a in tm.actors
                                             if isinstance(a.count, str) and a.count))
            at = f" ({counts})" if counts else ""
            raise CatalogueError(
                f"{tm.path or tm.id}: at these parameters{at} {len(domains)} trust domains "
                f"take a role on {name}, a consortium of at most {MAX_DOMAINS} member domains; "
                "give fewer or bound them in [ranges]")


def central(tm: ThreatModel, workdir: Path, lifecycles: dict[str, Any], *,
            admin: str = "db-admin", name: str = "p", extra: Extra = ()) -> CentralDB:
    """The baseline's side: the careful centralised database ``workdir/name.sqlite`` of
    ``lifecycles`` ({name: class}) run by ``admin``, every role of the cast (and of ``extra``
    participants, as in :func:`world`) granted in the actor's domain (on the lifecycles it
    has).  No fsync per commit: a simulated run needs none.

    Example: ``db = central(tm, workdir, {"Model": Model}, admin="dev")``.
    """
    db = CentralDB(workdir / f"{name}.sqlite", lifecycles, admin=admin)
    db.admin_sql("PRAGMA synchronous=OFF")
    for who, domain, _, roles in _people(tm, extra):
        for lc, role in roles:
            if lc in lifecycles:
                db.grant(who, lc, role, domain)
    return db


@dataclass(frozen=True)
class Alarm:
    """An alarm raised at simulated time ``at`` by ``source`` (a defence), from data a real
    deployment has.  Example: ``Alarm(120.0, "monitor:unexpected-approval", "v0 approved X")``."""

    at: float
    source: str
    detail: str = ""

    def __post_init__(self) -> None:
        if not finite_number(self.at):
            raise ValueError(f"Alarm({self.at!r}, {self.source!r}): an alarm's time is a finite "
                             "number of simulated seconds")


def ratio(hits: float, n: float) -> float | None:
    """``hits / n``, or None when there was nothing to count (``n = 0``): a rate over no cases
    is undefined, never 0 or 1.  A metric that is None in a run is left out of that run's
    summary (the runner averages the runs that have it; in none: null, with a null interval).

    Example: ``ratio(3, 4)`` is 0.75; ``ratio(0, 0)`` is None."""
    return hits / n if n else None


def outcome(goal_reached: bool, *, attack_at: float | None = None,
            alarms: Iterable[Alarm] = (), metrics: Mapping[str, float | None] | None = None,
            note: str = "") -> Outcome:
    """The one outcome definition (module docstring): success = the attacker's goal reached;
    detected = some alarm raised; time to detect = first alarm - ``attack_at`` (None without
    an attack time or an alarm; an alarm before the attack counts as 0 s).

    Example: ``outcome(consumer.accepts(w, aid), attack_at=10.0, alarms=[Alarm(40.0, "m")])``
    has ``attack_succeeded`` as the consumer decided, ``detected=True`` and ``ttd_s=30.0``.
    """
    if attack_at is not None and not finite_number(attack_at):
        raise ValueError(f"attack_at={attack_at!r}: the attack's start is a finite number of "
                         "simulated seconds (or None)")
    first = min(alarms, key=lambda a: a.at, default=None)
    ttd = None
    if first is not None and attack_at is not None:
        ttd = max(0.0, first.at - attack_at)
    return Outcome(bool(goal_reached), first is not None, ttd, metrics=dict(metrics or {}),
                   note=note or (f"first alarm: {first.source}" if first else ""))


def attempt(world: World, who: str | Participant, lifecycle: str, method: str, *args: Any,
            out: dict[str, Any] | None = None, depth: int = 1) -> Generator[Any, Any, bool]:
    """Attacker action (an actor process): make one lifecycle call as ``who`` and wait until
    it is ``depth`` blocks deep.  Returns whether the chain accepted it; ``out`` (if given) gets
    ``at`` (when it was sent), ``tx`` and ``outcome`` (``'ok'`` or ``'reverted:<Error>'``).

    Example: ``w.env.process(attempt(w, "mallory", "Dataset", "fire", "label", did, digest,
    out=result))``.
    """
    at = world.env.now
    tx = yield from world.send(who, lifecycle, method, *args)
    yield world.confirmed(tx, depth)
    result = tx_outcome(tx)
    if out is not None:
        out.update(at=at, tx=tx, outcome=result)
    return result == "ok"


def watch(world: World, lifecycle: str, *, every: float,
          rule: Callable[[World, list[Any]], str | None], alarms: list[Alarm],
          name: str = "") -> Any:
    """Defence: a monitor that every ``every`` simulated seconds reads ``lifecycle``'s events
    on the chain (what any node serves) and calls ``rule(world, events)``; a returned reason
    raises an :class:`Alarm` (once) in ``alarms``.  Returns the simpy process.

    Example: ``watch(w, "Dataset", every=60, alarms=alarms, rule=lambda w, evs: "unknown
    labeller" if any(e.actor == x for e in evs) else None)`` (``e`` are
    :mod:`proml_sim.ir.events` objects).
    """
    if every <= 0:
        raise ValueError(f"every={every}; a monitor needs a positive interval in seconds")
    source = name or f"watch:{lifecycle}"

    def run() -> Generator[Any, Any, None]:
        client = world.clients[lifecycle]
        while True:
            yield world.env.timeout(every)
            reason = rule(world, client.events())
            if reason:
                alarms.append(Alarm(world.env.now, source, reason))
                return

    world.client(lifecycle)  # a clear error for an unknown lifecycle name, now
    return world.env.process(run())


def governance_review(client: Any, member: bytes, admin: str) -> list[str]:
    """Defence of a member domain's node over a consortium lifecycle (what any node reads):
    a reason for each proposal its own domain's admin did not make (every one needs the
    member's review; ``admin`` is that admin's key at the start, a ``rotate_admin`` of the
    domain moves it) and for each role granted into a domain that is not a member now.

    Example: ``governance_review(w.client("Model"), domain_id("org-1"),
    w.domain_admin("org-1", "Model").address)`` is ``[]`` while only org-1 proposes."""
    from proml_sim.ir import GovExecuted, GovProposed, RoleGranted
    from proml_sim.ir.model import PROPOSAL_KINDS

    kinds = {v: k for k, v in PROPOSAL_KINDS.items()}

    def name(d: bytes) -> str:
        return d.rstrip(b"\0").decode(errors="replace")

    reasons: list[str] = []
    for e in client.events():
        if isinstance(e, GovExecuted) and e.domain == member \
                and kinds.get(e.kind) == "rotate_admin":
            admin = e.account
        elif isinstance(e, GovProposed) and e.proposer != admin:
            reasons.append(f"proposal {e.id} ({kinds.get(e.kind)}) for {name(e.domain)!r}")
        elif isinstance(e, RoleGranted) and client.member(e.domain) is None:
            reasons.append(f"role granted into non-member domain {name(e.domain)!r}")
    return reasons


@dataclass(frozen=True)
class Consumer:
    """A party that acts on what the record says: it uses an artefact of ``lifecycle`` when it
    is in ``state`` (and, with ``digest``, when the latest evidence recorded for it -- of
    ``step`` if given, else of any step -- is that digest: the bytes it was served).

    Example: ``Consumer("Model", state="delivered").accepts(w, model_id)``.
    """

    lifecycle: str
    state: str
    step: str = ""

    def accepts(self, world: World, artefact: bytes, digest: bytes | None = None) -> bool:
        """Whether this consumer would act on ``artefact`` now (reads chain state only)."""
        client = world.client(self.lifecycle)
        if not client.exists(artefact) or client.state(artefact) != self.state:
            return False
        history = [] if digest is None else client.history(artefact)
        return self.decides(self.state, [(h.step, h.digest) for h in history], digest)

    def decides(self, state: str | None, history: Iterable[tuple[str, bytes]],
                digest: bytes | None = None) -> bool:
        """The decision from a record read anywhere (the chain, a database): the artefact's
        ``state`` and its history as (step, evidence digest) pairs, oldest first.

        Example: ``Consumer("Model", "delivered", "train").decides("delivered",
        [("train", d1), ("train", d2)], d2)`` is True.
        """
        if state != self.state:
            return False
        if digest is None:
            return True
        recorded = [d for s, d in history if d.strip(b"\0") and s == (self.step or s)]
        return bool(recorded) and recorded[-1] == digest


# -- branch threats-s: trial-level outcomes ----------------------------------------------------
@dataclass(frozen=True)
class Trial:
    """One attack attempt of a run: whether its goal was reached (observed: a consumer acted,
    the record was rewritten) and the alarms raised about it (from deployment data).

    Example: ``Trial(Consumer("Model", state="verified").accepts(w, mid), alarms=mine)``.
    """

    success: bool
    alarms: tuple[Alarm, ...] = ()
    #: when this attempt started, if attempts start at different times (threats-dcr: D1's
    #: records, C1's races); its time to detect is measured from it instead of ``attack_at``
    at: float | None = None


def trials_outcome(trials: Iterable[Trial], *, attack_at: float | None = None,
                   metrics: Mapping[str, float | None] | None = None,
                   series: dict[str, list[tuple[float, float]]] | None = None,
                   note: str = "") -> Outcome:
    """:func:`outcome` of a run that made several attempts: each is one trial of the runner's
    statistics (successes, and detected successes: those with an alarm); the run's time to
    detect is the first alarm of a detected success minus ``attack_at`` (or minus that trial's
    own ``at``, the earliest such difference).

    No trials is a run in which nobody attacked (a sweep's zero point: no stolen key, no
    colluder): attempts 0, which the runner's verdict reads as ``no_attack``, never as
    ``prevented``; its metrics and series are kept.

    Example: ``trials_outcome([Trial(True, (Alarm(70.0, "monitor"),)), Trial(False)],
    attack_at=10.0)`` has attempts 2, successes 1, detections 1, ``ttd_s`` 60.0.
    """
    ts = list(trials)
    won = [t for t in ts if t.success]
    seen = [t for t in won if t.alarms]
    base = outcome(bool(won), attack_at=attack_at, alarms=[a for t in seen for a in t.alarms],
                   metrics=metrics, note=note)
    # each detected success's first alarm minus its start (its own, else attack_at)
    ttds = [max(0.0, min(a.at for a in t.alarms) - start) for t in seen
            if (start := t.at if t.at is not None else attack_at) is not None]
    # the run counts as detected only if every success was (the runner's verdict rule)
    return dataclasses.replace(base, detected=bool(won) and len(seen) == len(won),
                               ttd_s=min(ttds) if ttds else None,
                               series=dict(series or {}), attempts=len(ts),
                               successes=len(won), detections=len(seen))


# -- branch threats-t: the baseline's insider and its outside auditor ----------------------------
def dba_rewrite(db: CentralDB, aid: str, digests: dict[str, str]) -> None:
    """Baseline attacker action: the database insider's consistent rewrite.  The latest row of
    each step in ``digests`` (its history row, the audit and approval rows that carried the
    same digest, the record if it is the latest) gets the new digest; then the audit trail is
    re-chained (it has no secret), so only a head noted earlier exposes it (:class:`Auditor`).

    Example: ``dba_rewrite(db, aid, {"train": bad_digest_hex})``.
    """
    for step, digest in digests.items():
        seq, old = [(r[0], r[4]) for r in db.history(aid) if r[1] == step][-1]
        db.admin_sql("UPDATE history SET digest=? WHERE seq=?", (digest, seq))
        # its audit row, and the approvals just before it
        last = db.admin_sql("SELECT MAX(seq) FROM audit WHERE artefact=? AND action=?",
                            (aid, step))[0][0]
        prev = db.admin_sql("SELECT COALESCE(MAX(seq), 0) FROM audit WHERE artefact=? AND "
                            "seq<? AND action NOT LIKE 'approve:%'", (aid, last))[0][0]
        db.admin_sql("UPDATE audit SET digest=? WHERE artefact=? AND seq>? AND seq<=? AND "
                     "action IN (?, ?)", (digest, aid, prev, last, step, f"approve:{step}"))
        db.admin_sql("UPDATE approvals SET digest=? WHERE artefact=? AND step=? AND digest=?",
                     (digest, aid, step, old))
        if seq == db.history(aid)[-1][0]:
            db.admin_sql("UPDATE artefacts SET digest=? WHERE id=?", (digest, aid))
    db.rechain_audit()


class Auditor:
    """Baseline defence: the outside auditor a careful centralised design adds to its
    hash-chained audit table.  Every ``every`` seconds of the baseline's clock it notes the
    audit head (seq, hash) in its own log and checks that the chain verifies, that every head
    it noted is unchanged and that the history agrees with the audit rows; the first failed
    visit raises an :class:`Alarm`.

    Example: ``aud = Auditor(db, 3600); aud.visit_until(attack_at); <attack>;
    alarms = aud.visit_until(end)``.
    """

    def __init__(self, db: CentralDB, every: float) -> None:
        if every <= 0:
            raise ValueError(f"audit_every_s={every}; use a positive number of seconds")
        self.db, self.every = db, every
        self.heads: list[tuple[int, str]] = []
        self.alarms: list[Alarm] = []
        self.at = 0.0
        self._changes = -1  # the database's change count at the last visit

    def visit_until(self, now: float) -> list[Alarm]:
        """Make every visit due up to ``now``; returns the alarms so far."""
        while self.at + self.every <= now:
            if self.heads and self.db.conn.total_changes == self._changes:
                # nothing changed since the last visit: the visits due until now see the same
                self.at += self.every * ((now - self.at) // self.every)
                break
            self._changes = self.db.conn.total_changes
            self.at += self.every
            why = self.problem()
            if why and not self.alarms:
                self.alarms.append(Alarm(self.at, "baseline-auditor", why))
            row = self.db.conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC "
                                       "LIMIT 1").fetchone()
            if row:
                self.heads.append((int(row[0]), str(row[1])))
        return self.alarms

    def problem(self) -> str | None:
        conn = self.db.conn
        if (bad := self.db.verify_audit()) is not None:
            return f"audit row {bad} does not hash"
        for seq, h in self.heads:
            if conn.execute("SELECT hash FROM audit WHERE seq=?", (seq,)).fetchone() != (h,):
                return f"noted audit head {seq} changed: rows before it were rewritten"
        for aid, in conn.execute("SELECT id FROM artefacts").fetchall():
            hist = [(s, d or "") for _, s, _, _, d, _ in self.db.history(aid)]
            aud = [(a, d or "") for a, d in conn.execute(
                "SELECT action, digest FROM audit WHERE artefact=? AND action NOT LIKE "
                "'approve:%' ORDER BY seq", (aid,))]
            if hist != aud:
                return f"history of {aid} disagrees with the audit trail"
        return None
