"""A threat scenario as data: a threat model's ``[play]``, run on both systems without code.

A scenario whose attack is made of lifecycle calls (and, on the baseline, the database
insider's rewrite) needs no Python: its threat model states the lifecycles, the steps, the
defences and the consumer that decides, and :func:`run_proml` / :func:`run_baseline` play them
on ProML (a :func:`~proml_sim.threats.kit.world` of the cast) and on the careful centralised
database (:func:`~proml_sim.threats.kit.central`).  The outcome is the kit's one definition:
success = the consumer acts on the attacker's content (or on an artefact that reached its
state); detected = a defence's alarm, with the time to detect from the first attack step.
The worked example is ``docs/tutorials/X3.toml``::

    [play]
    lifecycles = { Model = "model" }   # the cast's lifecycle -> a spec or a [parameters] name
    db_admin = "op"                    # who administers the baseline's database
    observe_s = 7200.0                 # how long the defences watch after the last step

    [[play.steps]]                     # in order, on both systems unless `on` says one
    do = "register"                    # register | fire | grant | revoke | wait | rewrite
    by = "op"                          # an actor of [actors]
    lifecycle = "Model"
    artefact = "m"                     # the artefact's name in the play
    [[play.steps]]
    do = "fire"
    by = "dev"
    step = "train"                     # the transition (an approval, for a k-of-n one)
    artefact = "m"
    digest = "weights"                 # evidence: the digest of the content so named
    [[play.steps]]
    do = "wait"
    seconds = [60.0, 600.0]            # a number, a uniform [lo, hi] draw or a parameter name
    [[play.steps]]
    do = "rewrite"                     # the baseline's DBA: history, audit re-chained
    on = "baseline"
    attack = true                      # the attack starts at the first such step
    artefact = "m"
    step = "train"
    digest = "poison"

    [play.consumer]                    # the oracle
    artefact = "m"
    state = "delivered"                # it acts on the artefact in this state ...
    step = "train"                     # ... when the latest evidence of this step ...
    uses = "poison"                    # ... is this content's digest (the attacker's goal)

    [[play.defences]]
    kind = "history"                   # history | actors | auditor
    every = "check_every_s"            # seconds, or a [parameters] name

``grant`` / ``revoke`` give or take ``role`` of ``lifecycle`` to or from the actor ``who``
(in its cast domain), by its domain's admin (the database's admin on the baseline) or by
``by`` when the role's administrator is another role (a dataset admin appoints a labeller);
both systems refuse ``by`` without that role.

``[play.compare]`` maps a metric to parameter values at which the ProML side runs again
(the same seed): the metric is whether the attack succeeded there, so one run shows the
attack on another design beside the verdict (``single_admin_asr = { model =
"SingleAdminModel" }``).

Defences: ``history``, a party re-reads each artefact's recorded actions (registration,
approvals, steps: the chain's events; the baseline's audit table, as its API shows them) and
alarms when an entry it saw changed or vanished; ``actors``, it alarms when they name an
actor outside ``expect``; ``auditor`` (baseline only), the outside auditor of the audit table
(:class:`~proml_sim.threats.kit.Auditor`).  Waits draw from the seed's own generator, so both
systems see the same timeline.  A step a system refuses before the attack stops the run
(exit 2: the set-up is wrong); refusals from the attack on are the defence at work, counted
in the ``attack_steps_refused`` metric and named in the run's note.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proml_sim.errors import LifecycleError, ProMLError, UnknownArtefact, UsageError
from proml_sim.sim import digest_of
from proml_sim.threats.catalogue import CatalogueError, ThreatModel
from proml_sim.threats.runner import Outcome

__all__ = ["Play", "describe", "parse_play", "run_baseline", "run_proml"]

DOS = ("register", "fire", "grant", "revoke", "wait", "rewrite")
SIDES = ("both", "proml", "baseline")
DEFENCES = ("history", "actors", "auditor")
_FIELDS = {"register": {"by", "lifecycle", "artefact", "digest"},
           "fire": {"by", "step", "artefact", "digest"},
           "grant": {"by", "who", "role", "lifecycle"},
           "revoke": {"by", "who", "role", "lifecycle"},
           "wait": {"seconds"}, "rewrite": {"artefact", "step", "digest"}}
_NEEDS = {"register": ("by", "lifecycle", "artefact"), "fire": ("by", "step", "artefact"),
          "grant": ("who", "role", "lifecycle"), "revoke": ("who", "role", "lifecycle"),
          "wait": ("seconds",), "rewrite": ("artefact", "step", "digest")}


@dataclass(frozen=True)
class Step:
    """One ``[[play.steps]]`` entry (see the module docstring)."""

    do: str
    by: str = ""
    lifecycle: str = ""
    step: str = ""
    artefact: str = ""
    digest: str = ""
    seconds: Any = 0.0
    on: str = "both"
    attack: bool = False
    who: str = ""
    role: str = ""

    def runs_on(self, side: str) -> bool:
        return self.on in ("both", side)


@dataclass(frozen=True)
class Defence:
    kind: str
    every: float | str
    expect: tuple[str, ...] = ()


@dataclass(frozen=True)
class Play:
    """A threat model's ``[play]``: what :func:`run_proml` and :func:`run_baseline` run.

    Example: ``load_threat("docs/tutorials/X3.toml").play.steps[0].do == "register"``."""

    lifecycles: dict[str, str]
    steps: tuple[Step, ...]
    artefact: str
    state: str
    step: str = ""
    uses: str = ""
    defences: tuple[Defence, ...] = ()
    db_admin: str = "db-admin"
    observe_s: float | str = 3600.0
    #: metric -> parameter values: the ProML run is repeated at them and the metric is
    #: whether the attack succeeded there (``single_admin_asr = { model = "SingleAdminModel" }``)
    compare: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


def describe(s: Step) -> str:
    """A step as a catalogue row's prose (the threat model's ``steps`` when it states none).

    Example: ``describe(Step("fire", by="dev", step="train", artefact="m"))`` is
    ``"dev fires train on 'm'"``."""
    where = "" if s.on == "both" else f"{s.on}: "
    attack = " (the attack)" if s.attack else ""
    ev = f" with {s.digest!r}" if s.digest else ""
    text = {"register": f"{s.by} registers {s.lifecycle} {s.artefact!r}{ev}",
            "fire": f"{s.by} fires {s.step} on {s.artefact!r}{ev}",
            "grant": f"{s.by or 'its administrator'} grants {s.who} {s.lifecycle}.{s.role}",
            "revoke": f"{s.by or 'its administrator'} revokes {s.who}'s {s.lifecycle}.{s.role}",
            "wait": f"wait {s.seconds} s",
            "rewrite": f"the database admin rewrites {s.artefact!r}'s {s.step} to {s.digest!r}"
                       " and re-chains the audit trail"}[s.do]
    return where + text + attack


# -- parsing (at load: exit 2 naming the file, the field and the fix) ----------------------------
def parse_play(path: Path, table: Any, params: dict[str, Any], actors: set[str]) -> Play:
    """``[play]`` of the threat model at ``path`` as a :class:`Play`, checked against its
    ``[parameters]`` and the names of its cast (at the file's parameters); a bad entry raises
    :class:`~proml_sim.threats.catalogue.CatalogueError` naming ``play.<field>`` and the fix.

    Example: :func:`~proml_sim.threats.catalogue.load_threat` calls it for a file with a
    ``[play]``; ``parse_play(Path("X.toml"), {"steps": []}, {}, set())`` raises (no lifecycles).
    """
    def err(fld: str, problem: str, fix: str) -> CatalogueError:
        return CatalogueError(f"{path}: field 'play.{fld}' {problem}; {fix}")

    def number(fld: str, v: Any, *, positive: bool = False) -> float | str:
        if isinstance(v, str) and isinstance(params.get(v), int | float) \
                and not isinstance(params[v], bool):
            return v
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0 or (positive and v == 0):
            raise err(fld, f"is {v!r}", f"give a {'positive' if positive else 'non-negative'} "
                      "number of seconds or the name of a number in [parameters]")
        return float(v)

    if not isinstance(table, dict):
        raise err("", "is not a table", "write it as [play] (see docs/tutorials/X3.toml)")
    extra = set(table) - {"lifecycles", "steps", "consumer", "defences", "db_admin",
                          "observe_s", "compare"}
    if extra:
        raise err(sorted(extra)[0], "is not a known field", "use lifecycles, steps, consumer, "
                  "defences, db_admin, observe_s, compare")
    compare = table.get("compare", {})
    if not isinstance(compare, dict) or not all(
            isinstance(v, dict) and v and all(k in params and type(x) is type(params[k])
                                              for k, x in v.items())
            for v in compare.values()):
        raise err("compare", f"is {compare!r}", 'map a metric to parameter values of the '
                  'declared types, e.g. single_admin_asr = { model = "SingleAdminModel" }')
    lcs = table.get("lifecycles")
    if not isinstance(lcs, dict) or not lcs or not all(isinstance(v, str) for v in lcs.values()):
        raise err("lifecycles", f"is {lcs!r}", 'map each lifecycle of the cast to a spec, e.g. '
                  '{ Model = "Model" } or { Model = "model" } naming a [parameters] entry')
    raw = table.get("steps")
    if not isinstance(raw, list) or not raw:
        raise err("steps", "is missing or empty", "add [[play.steps]] entries")
    steps: list[Step] = []
    known: dict[str, set[str]] = {"proml": set(), "baseline": set()}  # registered, per system
    for i, s in enumerate(raw):
        fld = f"steps[{i}]"
        if not isinstance(s, dict) or s.get("do") not in DOS:
            raise err(fld, f"has do = {s.get('do') if isinstance(s, dict) else s!r}",
                      f"use one of {', '.join(DOS)}")
        do = s["do"]
        bad = set(s) - _FIELDS[do] - {"do", "on", "attack"}
        if bad:
            raise err(f"{fld}.{sorted(bad)[0]}", f"is not a field of {do!r}",
                      f"use {', '.join(sorted(_FIELDS[do]))}, on, attack")
        missing = [k for k in _NEEDS[do] if k not in s]
        if missing:
            raise err(f"{fld}.{missing[0]}", "is missing", f"a {do!r} step needs "
                      f"{', '.join(_NEEDS[do])}")
        if any(not isinstance(s[k], str) for k in _FIELDS[do] - {"seconds"} if k in s):
            raise err(fld, "has a non-text name", "write actors, steps and names as text")
        on, attack = s.get("on", "both"), s.get("attack", False)
        if on not in SIDES or not isinstance(attack, bool):
            raise err(fld, f"has on = {on!r}, attack = {attack!r}",
                      f"on is one of {', '.join(SIDES)}; attack is true or false")
        if do == "rewrite" and on != "baseline":
            raise err(f"{fld}.on", f"is {on!r}", 'a rewrite is the database insider\'s: set '
                      'on = "baseline" (on ProML the insider can only send transactions)')
        for k in ("by", "who"):
            if k in s and actors and s[k] not in actors:
                raise err(f"{fld}.{k}", f"is {s[k]!r}, not an actor", f"use one of "
                          f"{', '.join(sorted(actors))} or add it to [actors]")
        if do in ("grant", "revoke") and s["lifecycle"] not in lcs:
            raise err(f"{fld}.lifecycle", f"is {s['lifecycle']!r}",
                      f"use one of play.lifecycles: {', '.join(lcs)}")
        sides = [x for x in known if on in ("both", x)]
        if do == "register":
            if s["lifecycle"] not in lcs:
                raise err(f"{fld}.lifecycle", f"is {s['lifecycle']!r}",
                          f"use one of play.lifecycles: {', '.join(lcs)}")
            if any(s["artefact"] in known[x] for x in sides):
                raise err(f"{fld}.artefact", f"is {s['artefact']!r}, registered already",
                          "give each artefact its own name")
            for x in sides:
                known[x].add(s["artefact"])
        elif do in ("fire", "rewrite") and any(s["artefact"] not in known[x] for x in sides):
            raise err(f"{fld}.artefact", f"is {s['artefact']!r}, registered by no earlier step "
                      f"on {' and '.join(sides)}", "register it first, on the same system(s)")
        seconds: Any = 0.0
        if do == "wait":
            w = s["seconds"]
            if isinstance(w, list):
                if len(w) != 2 or not all(isinstance(x, int | float) and not isinstance(x, bool)
                                          for x in w) or not 0 <= w[0] <= w[1]:
                    raise err(f"{fld}.seconds", f"is {w!r}", "give [lo, hi] with 0 <= lo <= hi")
                seconds = (float(w[0]), float(w[1]))
            else:
                seconds = number(f"{fld}.seconds", w)
        steps.append(Step(do, s.get("by", ""), s.get("lifecycle", ""), s.get("step", ""),
                          s.get("artefact", ""), s.get("digest", ""), seconds, on, attack,
                          s.get("who", ""), s.get("role", "")))
    for side in ("proml", "baseline"):
        if not any(s.attack and s.runs_on(side) for s in steps):
            raise err("steps", f"has no attack step that runs on {side}",
                      f"mark the attacker's first step attack = true (on = 'both' or '{side}')")
    con = table.get("consumer")
    if not isinstance(con, dict) or set(con) - {"artefact", "state", "step", "uses"} \
            or not all(isinstance(con.get(k, ""), str) for k in ("artefact", "state", "step",
                                                                 "uses")) \
            or not con.get("artefact") or not con.get("state"):
        raise err("consumer", f"is {con!r}", "give [play.consumer] with artefact, state and "
                  "optionally step and uses (the content the attacker wants used)")
    if any(con["artefact"] not in k for k in known.values()) or (con.get("uses")
                                                                 and not con.get("step")):
        raise err("consumer", f"names artefact {con['artefact']!r} / uses without step",
                  "name an artefact registered on both systems; give step with uses")
    defences = []
    if not isinstance(table.get("defences", []), list):
        raise err("defences", "is not a list", "write each defence as a [[play.defences]] table")
    for i, d in enumerate(table.get("defences", [])):
        fld = f"defences[{i}]"
        if not isinstance(d, dict) or d.get("kind") not in DEFENCES or "every" not in d \
                or set(d) - {"kind", "every", "expect"}:
            raise err(fld, f"is {d!r}", f"give kind (one of {', '.join(DEFENCES)}) and every")
        expect = d.get("expect", [])
        if d["kind"] == "actors" and (
                not isinstance(expect, list) or not expect
                or not all(isinstance(x, str) for x in expect) or set(expect) - actors):
            raise err(f"{fld}.expect", f"is {expect!r}", "list the actors who may appear in "
                      "the history")
        defences.append(Defence(d["kind"], number(f"{fld}.every", d["every"], positive=True),
                                tuple(expect)))
    admin = table.get("db_admin", "db-admin")
    if not isinstance(admin, str) or not admin:
        raise err("db_admin", f"is {admin!r}", "name who administers the baseline database")
    return Play(dict(lcs), tuple(steps), con["artefact"], con["state"], con.get("step", ""),
                con.get("uses", ""), tuple(defences), admin,
                number("observe_s", table.get("observe_s", 3600.0)), compare)


# -- running ------------------------------------------------------------------------------------
def _play(tm: ThreatModel) -> Play:
    if not isinstance(tm.play, Play):
        raise CatalogueError(f"{tm.path or tm.id}: has no [play]; give one, or register code "
                             "with @scenario")
    return tm.play


def _seconds(tm: ThreatModel, v: float | str, what: str = "a wait",
             positive: bool = False) -> float:
    """A length of time of the play at this run's parameters (a sweep may set any value)."""
    x = float(tm.parameters[v]) if isinstance(v, str) else float(v)
    if x < 0 or (positive and x == 0) or x != x or x == float("inf"):
        raise UsageError(f"{tm.id}: {what} is {v} = {x}; give a "
                         f"{'positive' if positive else 'non-negative'} finite number of seconds")
    return x


def _classes(tm: ThreatModel) -> dict[str, type]:
    """The cast's lifecycle name -> the class deployed (a spec, or a parameter naming one)."""
    from proml_sim.lifecycles import load_lifecycle

    return {name: load_lifecycle(str(tm.parameters.get(spec, spec)))
            for name, spec in _play(tm).lifecycles.items()}


def _check(tm: ThreatModel, classes: dict[str, type]) -> dict[str, str]:
    """The play against this run's cast and the deployed lifecycles' rules (a parameter may
    change either); returns each artefact's lifecycle.  A name that does not fit is a usage
    error, never a silently refused step or a consumer that can never accept."""
    from proml_sim.ir import build_ir

    p, cast = _play(tm), {a.name for a in tm.cast()}
    irs = {k: build_ir(c) for k, c in classes.items()}
    of: dict[str, str] = {}
    where = f"{tm.path or tm.id}: [play]"
    for a in tm.cast():  # every role of the cast is granted: none may be left out unsaid
        for lc, role in a.roles:
            if lc not in irs:
                raise UsageError(f"{tm.path or tm.id}: [actors] {a.name} holds {lc}.{role}, "
                                 f"but play.lifecycles deploys no {lc} (only "
                                 f"{', '.join(irs)}); add it or fix the role")
            if role not in {r.name for r in irs[lc].roles}:
                raise UsageError(f"{tm.path or tm.id}: [actors] {a.name} holds {lc}.{role}, "
                                 f"but the {lc} deployed ({irs[lc].name}) has no role {role!r};"
                                 f" deploy a {lc} lifecycle or fix the role")
    for i, s in enumerate(p.steps):
        for name in (s.by, s.who):
            if name and name not in cast:
                raise UsageError(f"{where} step {i} names {name!r}, not in the cast at these "
                                 f"parameters ({', '.join(sorted(cast))}); fix it or [actors]")
        if s.role and s.role not in {r.name for r in irs[s.lifecycle].roles}:
            raise UsageError(f"{where} step {i}: {s.lifecycle} has no role {s.role!r}; use one "
                             f"of {', '.join(r.name for r in irs[s.lifecycle].roles)}")
        if s.do == "register":
            of.setdefault(s.artefact, s.lifecycle)
        ir = irs[of[s.artefact]] if s.artefact else None  # (grant, revoke: no artefact)
        if ir is not None and s.step and s.step not in {t.name for t in ir.transitions}:
            raise UsageError(f"{where} step {i}: {ir.name} has no transition {s.step!r}; use "
                             f"one of {', '.join(t.name for t in ir.transitions)}")
    for d in p.defences:
        _seconds(tm, d.every, f"the {d.kind} defence's every", positive=True)
    _seconds(tm, p.observe_s, "observe_s")
    ir = irs[of[p.artefact]]
    if p.state not in {x.name for x in ir.states} or (
            p.step and p.step not in {"register", *(t.name for t in ir.transitions)}):
        raise UsageError(f"{where} consumer: {ir.name} has no state {p.state!r} or step "
                         f"{p.step!r}; use a state of {', '.join(x.name for x in ir.states)}")
    return of


def _waits(tm: ThreatModel, seed: int) -> list[float]:
    """Every wait's length, drawn once from the seed's generator: both systems see them."""
    rng = random.Random(seed)
    return [rng.uniform(*s.seconds) if isinstance(s.seconds, tuple)
            else _seconds(tm, s.seconds) for s in _play(tm).steps if s.do == "wait"]


def _content(name: str) -> bytes:
    return digest_of("play-content", name) if name else b""


#: artefact -> its recorded actions [(action, actor, digest hex)]: register, a step, approve:step
History = dict[str, list[tuple[str, str, str]]]


class _Watch:
    """A defence of the play (``history`` or ``actors``): visits every ``every`` seconds and
    reads the histories; the first problem raises an alarm."""

    def __init__(self, d: Defence, every: float, read: Callable[[], History]) -> None:
        self.d, self.every, self.read, self.at = d, every, read, 0.0
        self.seen: History = {}
        self.alarms: list[Any] = []

    def visit(self, at: float) -> None:
        from proml_sim.threats.kit import Alarm

        if self.alarms:
            return
        now = self.read()
        for aid, hist in now.items():
            old = self.seen.get(aid, [])
            if self.d.kind == "history" and hist[:len(old)] != old:
                self.alarms.append(Alarm(at, "play:history", f"history of {aid!r} changed "
                                         "after it was read"))
            bad = sorted({a for _, a, _ in hist if a not in self.d.expect})
            if self.d.kind == "actors" and bad:
                self.alarms.append(Alarm(at, "play:actors", f"{aid!r} has entries by "
                                         f"{', '.join(bad)}"))
            if self.alarms:
                return
        self.seen = now

    def visit_until(self, now: float) -> list[Any]:
        """The visits due up to ``now`` on the baseline, whose record changes only at the
        play's steps: the first sees what changed since the last call, the rest the same."""
        if self.at + self.every <= now:
            self.at += self.every
            self.visit(self.at)
            self.at += self.every * ((now - self.at) // self.every)
        return self.alarms


@dataclass
class _Run:
    """What one side's run observed."""

    attack_at: float | None = None
    refused: int = 0
    notes: tuple[str, ...] = ()

    def step(self, i: int, s: Step, at: float, reason: str | None) -> None:
        if s.attack and self.attack_at is None:
            self.attack_at = at
        if reason is None:
            return
        if self.attack_at is None:
            raise UsageError(f"play step {i} ({describe(s)}) was refused before the attack: "
                             f"{reason}; fix the set-up in the threat model's [play]")
        self.refused += 1
        self.notes += (f"step {i} refused: {reason}",)

    def outcome(self, goal: bool, alarms: list[Any]) -> Outcome:
        from proml_sim.threats.kit import outcome

        return outcome(goal, attack_at=self.attack_at, alarms=alarms,
                       metrics={"attack_steps_refused": float(self.refused)},
                       note="; ".join(self.notes))


def _why(w: Any, out: dict[str, Any]) -> str:
    """A reverted step's reason in the interpreter's words (``Error: message``)."""
    try:
        w.result(out["tx"])
    except ProMLError as exc:
        return f"{type(exc).__name__}: {exc}"
    return str(out["outcome"])


def run_proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
    """The play on ProML: the cast's world, each step a signed transaction (kit.attempt).

    Example: ``run_proml(load_threat("docs/tutorials/X3.toml"), 0, Path("/tmp/x"))`` is an
    :class:`~proml_sim.threats.runner.Outcome` with ``attack_succeeded`` False."""
    from proml_sim.ir import ZERO32, Approved, Registered, Transitioned
    from proml_sim.sim.world import domain_id
    from proml_sim.threats.kit import Consumer, attempt, world

    p, classes, waits = _play(tm), _classes(tm), _waits(tm, seed)
    _check(tm, classes)
    deployed = {k: c.__name__ for k, c in classes.items()}
    w, ps = world(tm, seed, lifecycles=list(classes.values()), rename=deployed)
    names = {q.address: n for n, q in w.participants.items()}
    ids: dict[str, tuple[str, bytes]] = {}
    run = _Run()

    def histories() -> History:
        """Every recorded action on the play's artefacts, from the chain's events."""
        out: History = {a: [] for a in ids}
        by_id = {aid: (a, w.client(lc).ir) for a, (lc, aid) in ids.items()}
        for lc in {lc for lc, _ in ids.values()}:
            for e in w.client(lc).events():
                if getattr(e, "id", None) not in by_id:
                    continue
                a, ir = by_id[e.id]
                if isinstance(e, Registered):
                    row = ("register", e.registrant)
                elif isinstance(e, Approved):
                    row = (f"approve:{ir.transitions[e.transition].name}", e.approver)
                elif isinstance(e, Transitioned):
                    row = (ir.transitions[e.transition].name, e.actor)
                else:
                    continue
                out[a].append((row[0], names.get(row[1], row[1]),
                               "" if e.digest == ZERO32 else e.digest.hex()))
        return out

    def story() -> Generator[Any, Any, None]:
        delays = iter(waits)
        for i, s in enumerate(p.steps):
            delay = next(delays) if s.do == "wait" else 0.0
            if not s.runs_on("proml"):
                continue
            if s.do == "wait":
                yield w.env.timeout(delay)
                continue
            out: dict[str, Any] = {}
            at, ev = w.env.now, (_content(s.digest),) if s.digest else ()
            try:
                if s.do == "register":
                    lc, salt = deployed[s.lifecycle], s.artefact.encode().ljust(32, b"\0")[:32]
                    ids[s.artefact] = (lc, w.client(lc).artefact_id(ps[s.by].address, salt))
                    yield from attempt(w, s.by, lc, "register", salt, *ev, out=out)
                elif s.do in ("grant", "revoke"):  # by its domain's admin unless `by` says
                    lc, who = deployed[s.lifecycle], ps[s.who]
                    args = (s.role, who.address) + (
                        (domain_id(who.domain),) if s.do == "grant" else ())
                    yield from attempt(w, ps[s.by] if s.by else w.domain_admin(who, lc), lc,
                                       s.do, *args, out=out)
                else:
                    lc, aid = ids[s.artefact]
                    yield from attempt(w, s.by, lc, "fire", s.step, aid, *ev, out=out)
                run.step(i, s, at, None if out["outcome"] == "ok" else _why(w, out))
            except LifecycleError as exc:  # refused before sending (the client's own checks)
                run.step(i, s, at, f"{type(exc).__name__}: {exc}")

    watches = [_Watch(d, _seconds(tm, d.every), histories) for d in p.defences
               if d.kind != "auditor"]
    for wt in watches:
        def visits(wt: _Watch = wt) -> Generator[Any, Any, None]:
            while not wt.alarms:
                yield w.env.timeout(wt.every)
                wt.visit(w.env.now)
        w.env.process(visits())
    w.env.run(until=w.env.process(story()))
    w.run(w.env.now + _seconds(tm, p.observe_s))
    lc, aid = ids[p.artefact]
    goal = Consumer(lc, p.state, p.step).accepts(w, aid, _content(p.uses) or None)
    out = run.outcome(goal, [a for wt in watches for a in wt.alarms])
    for metric, values in p.compare.items():  # the same play on another design, beside
        from proml_sim.threats.runner import with_parameters

        alt = with_parameters(dataclasses.replace(tm, play=dataclasses.replace(p, compare={})),
                              values)
        sub = workdir / f"compare-{metric}"
        sub.mkdir(exist_ok=True)
        out.metrics[metric] = float(run_proml(alt, seed, sub).attack_succeeded)
    return out


def _administer(db: Any, s: Step, admin: str, domain: str) -> None:
    """A ``grant``/``revoke`` through the baseline's application: by the database's admin, or
    by ``s.by`` only if it holds the role that administers ``s.role`` (the careful rule the
    contract enforces too: a labeller is appointed by a dataset admin)."""
    from proml_sim.errors import RoleNotAllowed

    ruler = db.irs[s.lifecycle].role(s.role).admin
    if s.by and s.by != admin and not db.conn.execute(
            "SELECT 1 FROM roles WHERE account=? AND lifecycle=? AND role=?",
            (s.by, s.lifecycle, ruler)).fetchone():
        raise RoleNotAllowed(f"{s.lifecycle}.{s.do} of {s.role} needs role {ruler}")
    if s.do == "grant":
        db.grant(s.who, s.lifecycle, s.role, domain)
    else:
        db.revoke(s.who, s.lifecycle, s.role)


def run_baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
    """The play on the careful centralised database run by ``db_admin``: each step through
    the application at its time, a ``rewrite`` by the database insider (kit.dba_rewrite).

    Example: ``run_baseline(load_threat("docs/tutorials/X3.toml"), 0, Path("/tmp/x"))`` has
    ``attack_succeeded`` and ``detected`` True."""
    from proml_sim.threats.kit import Auditor, Consumer, central, dba_rewrite

    p, waits, classes = _play(tm), _waits(tm, seed), _classes(tm)
    lifecycle_of = _check(tm, classes)
    db = central(tm, workdir, classes, admin=p.db_admin, name="play")
    ids: dict[str, str] = {}

    def histories() -> History:
        """Every recorded action on the play's artefacts, from the audit table."""
        return {a: [(act, who, d or "") for act, who, d in db.conn.execute(
            "SELECT action, actor, digest FROM audit WHERE artefact=? ORDER BY seq", (aid,))]
            for a, aid in ids.items()}

    watches: list[Any] = [Auditor(db, _seconds(tm, d.every)) if d.kind == "auditor" else
                          _Watch(d, _seconds(tm, d.every), histories) for d in p.defences]
    run, now, delays = _Run(), 0.0, iter(waits)
    domains = {a.name: a.domain for a in tm.cast()}
    for i, s in enumerate(p.steps):
        delay = next(delays) if s.do == "wait" else 0.0
        if not s.runs_on("baseline"):
            continue
        for wt in watches:
            wt.visit_until(now)
        now += delay
        ev, aid = _content(s.digest).hex(), ids.get(s.artefact, "")
        try:
            if s.do == "register":
                ids[s.artefact] = db.register(s.by, s.lifecycle, s.artefact, ev, at=now)
            elif s.do in ("grant", "revoke"):
                _administer(db, s, p.db_admin, domains[s.who])
            elif not aid and s.do != "wait":  # its registration was refused
                raise UnknownArtefact(f"{s.artefact!r} was never registered")
            elif s.do == "fire":
                db.fire(s.by, s.step, aid, ev, at=now)
            elif s.do == "rewrite":
                if not any(r[1] == s.step for r in db.history(aid)):
                    raise UnknownArtefact(f"{s.artefact!r} has no {s.step!r} to rewrite")
                dba_rewrite(db, aid, {s.step: ev})
            if s.do != "wait":
                run.step(i, s, now, None)
        except LifecycleError as exc:
            run.step(i, s, now, f"{type(exc).__name__}: {exc}")
    end = now + _seconds(tm, p.observe_s)
    alarms = [a for wt in watches for a in wt.visit_until(end)]
    aid = ids.get(p.artefact, "")
    row = db.conn.execute("SELECT state FROM artefacts WHERE id=?", (aid,)).fetchone()
    recorded = [(r[1], bytes.fromhex(r[4] or "")) for r in db.history(aid)]
    goal = Consumer(lifecycle_of[p.artefact], p.state, p.step).decides(
        row[0] if row else None, recorded, _content(p.uses) or None)
    db.close()
    return run.outcome(goal, alarms)
