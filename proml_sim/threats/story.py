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
                                       # | propose | vote | execute (governance, below)
    by = "op"                          # an actor of [actors]
    lifecycle = "Model"
    artefact = "m"                     # the artefact's name in the play
    [[play.steps]]
    do = "fire"
    by = "dev"
    step = "train"                     # the transition (an approval, for a k-of-n one;
                                       # "*": each transition of its lifecycle in turn)
    artefact = "m"
    digest = "weights"                 # evidence: the digest of the content so named (a
                                       # step its lifecycle needs evidence for must have one)
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
    uses = "poison"                    # ... is this content's digest (a step's digest: the goal)

    [[play.defences]]
    kind = "history"                   # history | actors | auditor | governance
    every = "check_every_s"            # seconds, or a [parameters] name

``grant`` / ``revoke`` give or take ``role`` of ``lifecycle`` to or from the actor ``who``
(in its cast domain, or ``domain``), by its domain's admin (the database's admin on the
baseline) or by ``by`` when the role's administrator is another role (a dataset admin appoints
a labeller); both systems refuse ``by`` without that role.

Governance (``on = "proml"``: the baseline has none; ``threat_models/E1.toml`` and ``E3.toml``
are worked examples): ``propose`` (``kind`` add_domain | remove_domain | rotate_admin |
set_roles, ``domain``, optional ``account`` and ``roles``, a ``proposal`` name), ``vote`` and
``execute`` (that ``proposal``); ``by = "members"`` on a vote: the admins of the cast's member
domains that have not voted, in the cast's order, until the proposal has the quorum of the
lifecycle deployed (so a play runs at any quorum).  A signer (``by``, and ``account``) may be
``admin@DOMAIN``, the admin key of a trust domain of the cast: on a single-admin lifecycle its
one admin, on the baseline the database's admin (the central design has one administrator).  A
governance step on a lifecycle without governance is skipped and noted, so one play also runs on
the single-admin design (``[play.compare]``).

A step naming a counted actor (``by = "sybil{i}"``) runs once per participant of it, ``{i}``
filled in every name of the step; ``[play] reads = { sybils = "Model.verify" }`` makes a
count read from the deployed lifecycle (that step's approvals k; ``"Model.verify - 1"``: k - 1,
the honest approvers an attacker's approval completes), usable as a counted actor's ``count``.
A lifecycle of your own that names the play's steps, roles or states otherwise: a play that
declares the ``rename`` parameter (E1-E3) maps each name the deployed lifecycle lacks through
it (``--param 'rename = {verify = "approve", verifier = "reviewer"}'``; a key may name its
lifecycle, ``"Model.verify"``).
``goal = true`` marks an attacker's step whose going through is the attacker's goal (with or
instead of ``[play.consumer]``); ``metric = "name"`` records the share of a step's runs that went
through as a metric of the run.

``[play.compare]`` maps a metric to parameter values at which the ProML side runs again
(the same seed): the metric is whether the attack succeeded there, so one run shows the
attack on another design beside the verdict (``single_admin_asr = { model =
"SingleAdminModel" }``).

Defences: ``history``, a party re-reads each artefact's recorded actions (registration,
approvals, steps: the chain's events; the baseline's audit table, as its API shows them) and
alarms when an entry it saw changed or vanished; ``actors``, it alarms when they name an
actor outside ``expect``; ``auditor`` (baseline only), the outside auditor of the audit table
(:class:`~proml_sim.threats.kit.Auditor`); ``governance`` (ProML only), the ``member``
domain's node reviews the consortium's governance
(:func:`~proml_sim.threats.kit.governance_review`).  Waits draw from the seed's own
generator, so both systems see the same timeline.  A step a system refuses before the attack
stops the run (exit 2: the set-up is wrong); refusals from the attack on are the defence at
work, counted in the ``attack_steps_refused`` metric and named in the run's note.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proml_sim.errors import LifecycleError, ProMLError, UnknownArtefact, UsageError
from proml_sim.sim import digest_of
from proml_sim.threats.catalogue import CatalogueError, ThreatModel
from proml_sim.threats.runner import Outcome

__all__ = ["Play", "describe", "parse_play", "run_baseline", "run_proml"]

GOVERNANCE = ("propose", "vote", "execute")
DOS = ("register", "fire", "grant", "revoke", "wait", "rewrite", *GOVERNANCE)
SIDES = ("both", "proml", "baseline")
DEFENCES = ("history", "actors", "auditor", "governance")
_FIELDS = {"register": {"by", "lifecycle", "artefact", "digest"},
           "fire": {"by", "step", "artefact", "digest"},
           "grant": {"by", "who", "role", "lifecycle", "domain"},
           "revoke": {"by", "who", "role", "lifecycle"},
           "wait": {"seconds"}, "rewrite": {"artefact", "step", "digest"},
           "propose": {"by", "lifecycle", "kind", "domain", "account", "roles", "proposal"},
           "vote": {"by", "lifecycle", "proposal"}, "execute": {"by", "lifecycle", "proposal"}}
_NEEDS = {"register": ("by", "lifecycle", "artefact"), "fire": ("by", "step", "artefact"),
          "grant": ("who", "role", "lifecycle"), "revoke": ("who", "role", "lifecycle"),
          "wait": ("seconds",), "rewrite": ("artefact", "step", "digest"),
          "propose": ("by", "lifecycle", "kind", "domain", "proposal"),
          "vote": ("by", "lifecycle", "proposal"), "execute": ("by", "lifecycle", "proposal")}
_EVERY_STEP = {"do", "on", "attack", "goal", "metric"}
#: a signer that is a trust domain's admin key, not an actor: ``admin@org-1``
ADMIN = "admin@"
#: a ``reads`` entry: a transition's approvals k, less N (``"Model.verify - 1"``)
READ = re.compile(r"^(?P<lifecycle>\w+)\.(?P<transition>\w+)(?:\s*-\s*(?P<minus>\d+))?$")
#: a vote's ``by``: the member domains' admins, until the proposal has the deployed quorum
MEMBERS = "members"
#: the parameter mapping the play's names to a lifecycle that names them otherwise
RENAME = "rename"


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
    domain: str = ""
    kind: str = ""
    account: str = ""
    roles: tuple[str, ...] = ()
    proposal: str = ""
    goal: bool = False
    metric: str = ""

    def runs_on(self, side: str) -> bool:
        return self.on in ("both", side)

    def names(self) -> tuple[str, ...]:
        """The actors and domain admins the step names (``by``, ``who``, ``account``)."""
        return tuple(n for n in (self.by, self.who, self.account)
                     if n and not self.quorum_vote(n))

    def quorum_vote(self, name: str | None = None) -> bool:
        """A ``vote`` by ``members``: every member domain's admin that has not voted, in the
        cast's order, until the proposal has the quorum of the deployed lifecycle."""
        return self.do == "vote" and (self.by if name is None else name) == MEMBERS


@dataclass(frozen=True)
class Defence:
    kind: str
    every: float | str
    expect: tuple[str, ...] = ()
    member: str = ""


@dataclass(frozen=True)
class Play:
    """A threat model's ``[play]``: what :func:`run_proml` and :func:`run_baseline` run.

    Example: ``load_threat("docs/tutorials/X3.toml").play.steps[0].do == "register"``."""

    lifecycles: dict[str, str]
    steps: tuple[Step, ...]
    artefact: str = ""  # the consumer's (none: the goal is a ``goal = true`` step going through)
    state: str = ""
    step: str = ""
    uses: str = ""
    defences: tuple[Defence, ...] = ()
    db_admin: str = "db-admin"
    observe_s: float | str = 3600.0
    #: metric -> parameter values: the ProML run is repeated at them and the metric is
    #: whether the attack succeeded there (``single_admin_asr = { model = "SingleAdminModel" }``)
    compare: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    #: a count read from the deployed lifecycle at run time: name -> "Lifecycle.transition"
    #: (its approvals k), usable as a counted actor's ``count`` (``sybils = "Model.verify"``)
    reads: dict[str, str] = dataclasses.field(default_factory=dict)


def describe(s: Step) -> str:
    """A step as a catalogue row's prose (the threat model's ``steps`` when it states none).

    Example: ``describe(Step("fire", by="dev", step="train", artefact="m"))`` is
    ``"dev fires train on 'm'"``."""
    where = ("" if s.on == "both" else f"{s.on}: ") + (
        "for each i: " if any("{i}" in n for n in s.names()) else "")
    attack = {(True, True): " (the attack, its goal)", (True, False): " (the attack)",
              (False, True): " (the attack's goal)", (False, False): ""}[s.attack, s.goal]
    ev = f" with {s.digest!r}" if s.digest else ""
    into = f" in {s.domain}" if s.domain else ""
    what = f"{s.kind} {s.domain}" + (f" -> {s.account}" if s.account else "") + (
        f" ({', '.join(s.roles)})" if s.roles else "")
    text = {"register": f"{s.by} registers {s.lifecycle} {s.artefact!r}{ev}",
            "fire": f"{s.by} fires {'every transition' if s.step == '*' else s.step} on "
                    f"{s.artefact!r}{ev}",
            "grant": f"{s.by or 'its administrator'} grants {s.who} {s.lifecycle}.{s.role}"
                     f"{into}",
            "revoke": f"{s.by or 'its administrator'} revokes {s.who}'s {s.lifecycle}.{s.role}",
            "wait": f"wait {s.seconds} s",
            "rewrite": f"the database admin rewrites {s.artefact!r}'s {s.step} to {s.digest!r}"
                       " and re-chains the audit trail",
            "propose": f"{s.by} proposes {what} ({s.proposal!r})",
            "vote": (f"the member domains vote for {s.proposal!r} up to the quorum"
                     if s.quorum_vote() else f"{s.by} votes for {s.proposal!r}"),
            "execute": f"{s.by} executes {s.proposal!r}"}[s.do]
    return where + text + attack


# -- parsing (at load: exit 2 naming the file, the field and the fix) ----------------------------
def parse_play(path: Path, table: Any, params: dict[str, Any], actors: set[str],
               domains: frozenset[str] | set[str] = frozenset()) -> Play:
    """``[play]`` of the threat model at ``path`` as a :class:`Play`, checked against its
    ``[parameters]``, the names of its cast (``actors``, counted ones as their ``"v{i}"``
    pattern too) and their trust ``domains``; a bad entry raises
    :class:`~proml_sim.threats.catalogue.CatalogueError` naming ``play.<field>`` and the fix.

    Example: :func:`~proml_sim.threats.catalogue.load_threat` calls it for a file with a
    ``[play]``; ``parse_play(Path("X.toml"), {"steps": []}, {}, set())`` raises (no lifecycles).
    """
    from proml_sim.ir.model import PROPOSAL_KINDS

    def err(fld: str, problem: str, fix: str) -> CatalogueError:
        return CatalogueError(f"{path}: field 'play.{fld}' {problem}; {fix}")

    def number(fld: str, v: Any, *, positive: bool = False) -> float | str:
        if isinstance(v, str) and isinstance(params.get(v), int | float) \
                and not isinstance(params[v], bool):
            return v
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < math.inf \
                or (positive and v == 0):
            raise err(fld, f"is {v!r}", f"give a {'positive' if positive else 'non-negative'} "
                      "finite number of seconds or the name of a number in [parameters]")
        return float(v)

    if not isinstance(table, dict):
        raise err("", "is not a table", "write it as [play] (see docs/tutorials/X3.toml)")
    extra = set(table) - {"lifecycles", "steps", "consumer", "defences", "db_admin",
                          "observe_s", "compare", "reads"}
    if extra:
        raise err(sorted(extra)[0], "is not a known field", "use lifecycles, steps, consumer, "
                  "defences, db_admin, observe_s, compare, reads")
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
    reads = table.get("reads", {})
    if not isinstance(reads, dict) or not all(
            isinstance(v, str) and (m := READ.match(v)) and m["lifecycle"] in lcs
            and k not in params for k, v in reads.items()):
        raise err("reads", f"is {reads!r}", 'map a name that is not in [parameters] to '
                  '"Lifecycle.transition" of play.lifecycles (its approvals k), or '
                  '"Lifecycle.transition - N" (k - N), e.g. sybils = "Model.verify"')
    raw = table.get("steps")
    if not isinstance(raw, list) or not raw:
        raise err("steps", "is missing or empty", "add [[play.steps]] entries")
    steps: list[Step] = []
    known: dict[str, set[str]] = {"proml": set(), "baseline": set()}  # registered, per system
    attacked = {"proml": False, "baseline": False}
    proposals: set[str] = set()
    for i, s in enumerate(raw):
        fld = f"steps[{i}]"
        if not isinstance(s, dict) or s.get("do") not in DOS:
            raise err(fld, f"has do = {s.get('do') if isinstance(s, dict) else s!r}",
                      f"use one of {', '.join(DOS)}")
        do = s["do"]
        bad = set(s) - _FIELDS[do] - _EVERY_STEP
        if bad:
            raise err(f"{fld}.{sorted(bad)[0]}", f"is not a field of {do!r}",
                      f"use {', '.join(sorted(_FIELDS[do]))}, {', '.join(sorted(_EVERY_STEP))}")
        missing = [k for k in _NEEDS[do] if k not in s]
        if missing:
            raise err(f"{fld}.{missing[0]}", "is missing", f"a {do!r} step needs "
                      f"{', '.join(_NEEDS[do])}")
        if any(not isinstance(s[k], str) for k in _FIELDS[do] - {"seconds", "roles"} | {"metric"}
               if k in s):
            raise err(fld, "has a non-text name", "write actors, steps and names as text")
        roles = s.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise err(f"{fld}.roles", f"is {roles!r}", 'list role names, e.g. ["verifier"]')
        on, attack, goal = s.get("on", "both"), s.get("attack", False), s.get("goal", False)
        if on not in SIDES or not isinstance(attack, bool) or not isinstance(goal, bool):
            raise err(fld, f"has on = {on!r}, attack = {attack!r}, goal = {goal!r}",
                      f"on is one of {', '.join(SIDES)}; attack and goal are true or false")
        if do == "rewrite" and on != "baseline":
            raise err(f"{fld}.on", f"is {on!r}", 'a rewrite is the database insider\'s: set '
                      'on = "baseline" (on ProML the insider can only send transactions)')
        if do in GOVERNANCE and on != "proml":
            raise err(f"{fld}.on", f"is {on!r}", 'the baseline has no governance: set '
                      'on = "proml" (its database admin grants what it likes)')
        for k in ("by", "who", "account"):
            v = s.get(k, "")
            admin = k != "who" and v.startswith(ADMIN) and v[len(ADMIN):] in domains
            members = (k, do, v) == ("by", "vote", MEMBERS)
            if v and actors and v not in actors and not admin and not members:
                raise err(f"{fld}.{k}", f"is {v!r}, not an actor", f"use one of "
                          f"{', '.join(sorted(actors))}, or {ADMIN}DOMAIN (a domain's admin "
                          "key) for a signer, or add it to [actors]")
        if "{i}" in str(s) and not any("{i}" in s.get(k, "") for k in ("by", "who", "account")):
            raise err(fld, "uses {i} but names no counted actor",
                      'repeat a step over a counted actor by naming it, e.g. by = "v{i}"')
        if "lifecycle" in s and s["lifecycle"] not in lcs:
            raise err(f"{fld}.lifecycle", f"is {s['lifecycle']!r}",
                      f"use one of play.lifecycles: {', '.join(lcs)}")
        if do == "propose" and s["kind"] not in PROPOSAL_KINDS:
            raise err(f"{fld}.kind", f"is {s['kind']!r}", f"use one of "
                      f"{', '.join(PROPOSAL_KINDS)}")
        if do == "propose":
            if s["proposal"] in proposals:
                raise err(f"{fld}.proposal", f"is {s['proposal']!r}, proposed already",
                          "give each proposal its own name")
            proposals.add(s["proposal"])
        elif do in GOVERNANCE and s["proposal"] not in proposals:
            raise err(f"{fld}.proposal", f"is {s['proposal']!r}, made by no earlier step",
                      "propose it first (do = \"propose\" with this proposal name)")
        metric = s.get("metric", "")
        if metric == "attack_steps_refused":
            raise err(f"{fld}.metric", "is the play's own metric", "name it otherwise")
        sides = [x for x in known if on in ("both", x)]
        if do == "register":
            if any(s["artefact"] in known[x] for x in sides):
                raise err(f"{fld}.artefact", f"is {s['artefact']!r}, registered already",
                          "give each artefact its own name")
            for x in sides:
                known[x].add(s["artefact"])
        elif do in ("fire", "rewrite") and any(s["artefact"] not in known[x] for x in sides):
            raise err(f"{fld}.artefact", f"is {s['artefact']!r}, registered by no earlier step "
                      f"on {' and '.join(sides)}", "register it first, on the same system(s)")
        for x in sides:
            attacked[x] = attacked[x] or attack
        if goal and not all(attacked[x] for x in sides):
            raise err(f"{fld}.goal", "is before the attack", "a goal step is the attacker's: "
                      "mark it (or an earlier step on the same system) attack = true")
        seconds: Any = 0.0
        if do == "wait":
            w = s["seconds"]
            if isinstance(w, list):
                if len(w) != 2 or not all(isinstance(x, int | float) and not isinstance(x, bool)
                                          for x in w) or not 0 <= w[0] <= w[1] < math.inf:
                    raise err(f"{fld}.seconds", f"is {w!r}", "give [lo, hi] with 0 <= lo <= hi, "
                              "finite numbers of seconds")
                seconds = (float(w[0]), float(w[1]))
            else:
                seconds = number(f"{fld}.seconds", w)
        steps.append(Step(do, s.get("by", ""), s.get("lifecycle", ""), s.get("step", ""),
                          s.get("artefact", ""), s.get("digest", ""), seconds, on, attack,
                          s.get("who", ""), s.get("role", ""), s.get("domain", ""),
                          s.get("kind", ""), s.get("account", ""), tuple(roles),
                          s.get("proposal", ""), goal, metric))
    con = table.get("consumer", {})
    for side in ("proml", "baseline"):
        if not any(s.attack and s.runs_on(side) for s in steps):
            raise err("steps", f"has no attack step that runs on {side}",
                      f"mark the attacker's first step attack = true (on = 'both' or '{side}')")
        if not con and not any(s.goal and s.runs_on(side) for s in steps):
            raise err("consumer", f"is missing and no goal step runs on {side}",
                      "give [play.consumer] (who acts on what) or mark the step that reaches "
                      "the attacker's goal goal = true")
    if not isinstance(con, dict) or set(con) - {"artefact", "state", "step", "uses"} \
            or not all(isinstance(con.get(k, ""), str) for k in ("artefact", "state", "step",
                                                                 "uses")) \
            or (con and (not con.get("artefact") or not con.get("state"))):
        raise err("consumer", f"is {con!r}", "give [play.consumer] with artefact, state and "
                  "optionally step and uses (the content the attacker wants used)")
    if con and (any(con["artefact"] not in k for k in known.values())
                or (con.get("uses") and not con.get("step"))):
        raise err("consumer", f"names artefact {con['artefact']!r} / uses without step",
                  "name an artefact registered on both systems; give step with uses")
    if con.get("uses") and not any(s.digest == con["uses"] for s in steps):
        # no step records that content, so nothing could ever use it: a "prevented" vacuous
        named = sorted({s.digest for s in steps if s.digest})
        raise err("consumer.uses", f"is {con['uses']!r}, the content of no step",
                  f"name the attacker's content, one of the steps' digests: "
                  f"{', '.join(named) or 'none (give the attack step a digest)'}")
    defences = []
    if not isinstance(table.get("defences", []), list):
        raise err("defences", "is not a list", "write each defence as a [[play.defences]] table")
    for i, d in enumerate(table.get("defences", [])):
        fld = f"defences[{i}]"
        if not isinstance(d, dict) or d.get("kind") not in DEFENCES or "every" not in d \
                or set(d) - {"kind", "every", "expect", "member"}:
            raise err(fld, f"is {d!r}", f"give kind (one of {', '.join(DEFENCES)}) and every")
        expect = d.get("expect", [])
        if d["kind"] == "actors" and (
                not isinstance(expect, list) or not expect
                or not all(isinstance(x, str) for x in expect) or set(expect) - actors):
            raise err(f"{fld}.expect", f"is {expect!r}", "list the actors who may appear in "
                      "the history")
        member = d.get("member", "")
        if (d["kind"] == "governance") != bool(member) or not isinstance(member, str) or (
                member and domains and member not in domains):
            raise err(f"{fld}.member", f"is {member!r}", "a governance defence names the member "
                      "domain whose node reviews (a domain of [actors]); other kinds have none")
        defences.append(Defence(d["kind"], number(f"{fld}.every", d["every"], positive=True),
                                tuple(expect), member))
    admin = table.get("db_admin", "db-admin")
    if not isinstance(admin, str) or not admin:
        raise err("db_admin", f"is {admin!r}", "name who administers the baseline database")
    return Play(dict(lcs), tuple(steps), con.get("artefact", ""), con.get("state", ""),
                con.get("step", ""), con.get("uses", ""), tuple(defences), admin,
                number("observe_s", table.get("observe_s", 3600.0)), compare, dict(reads))


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


#: the play's steps at this run's parameters: (index in the file, the step with {i} filled in)
Steps = list[tuple[int, Step]]


def _prepared(tm: ThreatModel) -> tuple[ThreatModel, dict[str, type], Steps, dict[str, str]]:
    """This run's threat model (the play's ``reads`` filled in from the deployed lifecycles),
    the classes deployed, the steps (a step naming a counted actor ``v{i}`` once per
    participant) and each artefact's lifecycle, all checked by :func:`_check`."""
    from proml_sim.ir import build_ir

    classes = _classes(tm)
    tm = _renamed(tm, classes)
    p = _play(tm)
    read = {}
    for name, spec in p.reads.items():
        m = READ.match(spec)
        assert m is not None  # checked when the play was read
        lc, step = m["lifecycle"], m["transition"]
        ir = build_ir(classes[lc])
        if step not in {t.name for t in ir.transitions}:
            raise UsageError(f"{tm.path or tm.id}: play.reads {name} = {spec!r}, but the {lc} "
                             f"deployed ({ir.name}) has no transition {step!r}; use one of "
                             f"{', '.join(t.name for t in ir.transitions)}"
                             + _map_hint(tm, lc, step))
        read[name] = int(ir.transition(step).approvals) - int(m["minus"] or 0)
        if read[name] < 0:
            raise UsageError(f"{tm.path or tm.id}: play.reads {name} = {spec!r} is "
                             f"{read[name]} for the {lc} deployed ({ir.name}); take away less")
    tm = dataclasses.replace(tm, parameters={**tm.parameters, **read})
    counts: dict[str, Any] = {}
    for a in tm.actors:
        if a.count != "":
            counts[a.name] = counts[ADMIN + a.domain] = (
                a.count if isinstance(a.count, int) else tm.parameters.get(a.count))
    steps: Steps = []
    for i, s in enumerate(p.steps):
        ns = {counts.get(v) for v in s.names() if "{i}" in v}
        if len(ns) > 1 or None in ns:
            raise UsageError(f"{tm.path or tm.id}: [play] step {i} ({describe(s)}) repeats over "
                             "actors of different counts; name one counted actor per step")
        n = ns.pop() if ns else None
        steps += [(i, s)] if n is None else [(i, _nth(s, j)) for j in range(n)]
    # step = "*": each transition of the artefact's lifecycle in turn (its evidence, if any)
    lifecycle: dict[str, str] = {}
    every: Steps = []
    for i, s in steps:
        if s.do == "register":
            lifecycle.setdefault(s.artefact, s.lifecycle)
        every += [(i, s)] if (s.do, s.step) != ("fire", "*") else [
            (i, dataclasses.replace(s, step=t.name, digest=s.digest if t.evidence else ""))
            for t in build_ir(classes[lifecycle[s.artefact]]).transitions]
    return tm, classes, every, _check(tm, classes, every)


def _renamed(tm: ThreatModel, classes: dict[str, type]) -> ThreatModel:
    """``tm`` with each lifecycle name its play and cast use (transition, role, state) that the
    deployed lifecycle does not declare taken from the ``rename`` parameter: ``{ verify =
    "approve" }`` (any lifecycle of the play) or ``{ "Model.verify" = "approve" }``.  So a play
    written for the paper's Model runs on a lifecycle of your own that names its steps
    otherwise; a name the deployed lifecycle has is kept (so one table serves several plays,
    and a ``compare`` run on the paper's lifecycle).  A name still missing, a misspelt key's,
    is the usage error of :func:`_check`, which names this parameter."""
    from proml_sim.ir import build_ir

    table = tm.parameters.get(RENAME)
    if not table:
        return tm
    where = f"{tm.path or tm.id}: {RENAME}"
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise UsageError(f"{where} = {table!r} is not a table of names; write e.g. "
                         f"--param '{RENAME} = {{verify = \"approve\"}}'")
    p = _play(tm)
    of: dict[str, str] = {}
    for s in p.steps:
        if s.do == "register":
            of.setdefault(s.artefact, s.lifecycle)
    declared = {lc: {*(t.name for t in ir.transitions), *(r.name for r in ir.roles),
                     *(x.name for x in ir.states)}
                for lc, ir in ((lc, build_ir(c)) for lc, c in classes.items())}

    def rn(lc: str, name: str) -> str:
        if not name or name in declared.get(lc, {name}):
            return name
        return str(table.get(f"{lc}.{name}", table.get(name, name)))

    def read(spec: str) -> str:
        m = READ.match(spec)
        if m is None:
            return spec
        return (f"{m['lifecycle']}.{rn(m['lifecycle'], m['transition'])}"
                + (f" - {m['minus']}" if m["minus"] else ""))

    def step(s: Step) -> Step:
        lc = s.lifecycle or of.get(s.artefact, "")
        return dataclasses.replace(s, step=rn(lc, s.step), role=rn(lc, s.role),
                                   roles=tuple(rn(lc, r) for r in s.roles))

    consumer = of.get(p.artefact, "")
    play = dataclasses.replace(
        p, steps=tuple(map(step, p.steps)), reads={k: read(v) for k, v in p.reads.items()},
        state=rn(consumer, p.state), step=rn(consumer, p.step))
    actors = tuple(dataclasses.replace(a, roles=tuple((lc, rn(lc, r)) for lc, r in a.roles))
                   for a in tm.actors)
    return dataclasses.replace(tm, play=play, actors=actors)


def _map_hint(tm: ThreatModel, lc: str, name: str) -> str:
    """How to map a name the deployed lifecycle lacks, where the play takes ``rename``."""
    if RENAME not in tm.parameters:
        return ""
    return f"; or map it to yours: --param '{RENAME} = {{\"{lc}.{name}\" = \"...\"}}'"


def _nth(s: Step, j: int) -> Step:
    """Step ``s`` for the ``j``-th participant of its counted actor (``{i}`` -> ``j``)."""
    def f(v: str) -> str:
        return v.replace("{i}", str(j))

    return dataclasses.replace(s, by=f(s.by), who=f(s.who), account=f(s.account),
                               domain=f(s.domain), proposal=f(s.proposal),
                               artefact=f(s.artefact), digest=f(s.digest))


def _check(tm: ThreatModel, classes: dict[str, type], steps: Steps) -> dict[str, str]:
    """The play against this run's cast and the deployed lifecycles' rules (a parameter may
    change either); returns each artefact's lifecycle.  A name that does not fit is a usage
    error, never a silently refused step or a consumer that can never accept."""
    from proml_sim.ir import build_ir

    p, cast = _play(tm), {a.name for a in tm.cast()}
    domains = {a.domain for a in tm.cast()}
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
                                 f" deploy a {lc} lifecycle or fix the role"
                                 + _map_hint(tm, lc, role))
    for i, s in steps:
        for name in s.names():
            if name.startswith(ADMIN) and name[len(ADMIN):] in domains:
                continue
            if name not in cast:
                raise UsageError(f"{where} step {i} names {name!r}, not in the cast at these "
                                 f"parameters ({', '.join(sorted(cast))}) nor the admin of "
                                 f"one of its domains; fix it or [actors]")
        for role in filter(None, (s.role, *s.roles)):
            if role not in {r.name for r in irs[s.lifecycle].roles}:
                raise UsageError(f"{where} step {i}: {s.lifecycle} has no role {role!r}; use "
                                 f"one of {', '.join(r.name for r in irs[s.lifecycle].roles)}"
                                 + _map_hint(tm, s.lifecycle, role))
        if s.do == "register":
            of.setdefault(s.artefact, s.lifecycle)
        ir = irs[of[s.artefact]] if s.artefact in of else None  # (grant, governance: none)
        if ir is not None and s.step and s.step not in {t.name for t in ir.transitions}:
            raise UsageError(f"{where} step {i}: {ir.name} has no transition {s.step!r}; use "
                             f"one of {', '.join(t.name for t in ir.transitions)}"
                             + _map_hint(tm, of[s.artefact], s.step))
        if ir is not None and s.do == "fire" and s.digest and not ir.transition(s.step).evidence:
            raise UsageError(f"{where} step {i}: {ir.name}.{s.step} takes no evidence; drop "
                             f"its digest {s.digest!r}")
        # a step refused for want of evidence would read as a defence's refusal ("prevented")
        if ir is not None and not s.digest and (
                (s.do == "register" and ir.register_evidence)
                or (s.do == "fire" and ir.transition(s.step).evidence)):
            what = "registration" if s.do == "register" else s.step
            raise UsageError(f"{where} step {i} ({describe(s)}): {ir.name}'s {what} needs an "
                             "evidence digest (the chain refuses it without one, whoever "
                             "signs); give the step a digest, e.g. digest = \"spec\"")
    for d in p.defences:
        _seconds(tm, d.every, f"the {d.kind} defence's every", positive=True)
        if d.member and d.member not in domains:
            raise UsageError(f"{where} governance defence: {d.member!r} is no domain of the "
                             f"cast ({', '.join(sorted(domains))}); fix member")
    _seconds(tm, p.observe_s, "observe_s")
    if not p.artefact:
        return of
    if p.artefact not in of:
        raise UsageError(f"{where} consumer: {p.artefact!r} is registered by no step at these "
                         "parameters (a counted actor's count may be 0); fix the consumer")
    ir = irs[of[p.artefact]]
    if p.state not in {x.name for x in ir.states}:
        raise UsageError(f"{where} consumer: {ir.name} has no state {p.state!r}; use a state "
                         f"of {', '.join(x.name for x in ir.states)}"
                         + _map_hint(tm, of[p.artefact], p.state))
    step_names = ["register", *(t.name for t in ir.transitions)]
    if p.step and p.step not in step_names:
        raise UsageError(f"{where} consumer: {ir.name} has no step {p.step!r}; use one of "
                         f"{', '.join(step_names)}" + _map_hint(tm, of[p.artefact], p.step))
    return of


def _waits(tm: ThreatModel, seed: int) -> dict[int, float]:
    """Every wait's length (by step index), drawn once from the seed's generator: both
    systems see them."""
    rng = random.Random(seed)
    return {i: rng.uniform(*s.seconds) if isinstance(s.seconds, tuple)
            else _seconds(tm, s.seconds) for i, s in enumerate(_play(tm).steps)
            if s.do == "wait"}


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


class _Review:
    """The ``governance`` defence on ProML: the ``member`` domain's node reviews each
    consortium lifecycle's governance every ``every`` seconds
    (:func:`~proml_sim.threats.kit.governance_review`); the first finding raises an alarm."""

    def __init__(self, d: Defence, every: float, w: Any, lifecycles: list[str]) -> None:
        from proml_sim.sim.world import domain_id

        self.every, self.member = every, d.member
        self.alarms: list[Any] = []
        # each consortium lifecycle's client and the member's admin key on it at the start
        self.watched = [(w.client(lc), w.domain_admin(d.member, lc).address)
                        for lc in lifecycles if w.client(lc).ir.consortium is not None]
        self.mine = domain_id(d.member)

    def visit(self, at: float) -> None:
        from proml_sim.threats.kit import Alarm, governance_review

        for client, admin in self.watched:
            found = governance_review(client, self.mine, admin)
            if found and not self.alarms:
                self.alarms.append(Alarm(at, f"play:governance:{self.member}", found[0]))


@dataclass
class _Run:
    """What one side's run observed: the attack's start, refusals, goal steps that went
    through and each step metric's accepted share."""

    attack_at: float | None = None
    refused: int = 0
    notes: tuple[str, ...] = ()
    goal: bool = False
    metrics: dict[str, list[bool]] = dataclasses.field(default_factory=dict)

    def step(self, i: int, s: Step, at: float, reason: str | None) -> None:
        if s.attack and self.attack_at is None:
            self.attack_at = at
        if s.metric:
            self.metrics.setdefault(s.metric, []).append(reason is None)
        self.goal = self.goal or (s.goal and reason is None)
        if reason is None:
            return
        if self.attack_at is None:
            raise UsageError(f"play step {i} ({describe(s)}) was refused before the attack: "
                             f"{reason}; fix the set-up in the threat model's [play]")
        self.refused += 1
        self.notes += (f"step {i} ({describe(s)}) refused: {reason}",)

    def skip(self, i: int, s: Step, at: float, why: str) -> None:
        """A step that does not apply to the design deployed (governance on a single-admin
        lifecycle): nothing is sent; noted."""
        if s.attack and self.attack_at is None:
            self.attack_at = at
        self.notes += (f"step {i} ({describe(s)}) skipped: {why}",)

    def outcome(self, consumer_acts: bool, alarms: list[Any]) -> Outcome:
        from proml_sim.threats.kit import outcome

        return outcome(consumer_acts or self.goal, attack_at=self.attack_at, alarms=alarms,
                       metrics={"attack_steps_refused": float(self.refused),
                                **{m: sum(v) / len(v) for m, v in self.metrics.items()}},
                       note="; ".join(self.notes))


def _why(w: Any, out: dict[str, Any]) -> str:
    """A reverted step's reason in the interpreter's words (``Error: message``)."""
    try:
        w.result(out["tx"])
    except ProMLError as exc:
        return f"{type(exc).__name__}: {exc}"
    return str(out["outcome"])


def run_proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
    """The play on ProML: the cast's world, each step a signed transaction (kit.attempt);
    ``admin@D`` signs with trust domain D's admin key (a single-admin lifecycle's one admin);
    a governance step on a lifecycle without governance is skipped, and noted.

    Example: ``run_proml(load_threat("docs/tutorials/X3.toml"), 0, Path("/tmp/x"))`` is an
    :class:`~proml_sim.threats.runner.Outcome` with ``attack_succeeded`` False."""
    from proml_sim.ir import ZERO32, Approved, Registered, Transitioned
    from proml_sim.sim.world import domain_id
    from proml_sim.threats.kit import Consumer, attempt, world

    given, waits = tm, _waits(tm, seed)
    tm, classes, steps, _ = _prepared(tm)
    p = _play(tm)
    deployed = {k: c.__name__ for k, c in classes.items()}
    w, ps = world(tm, seed, lifecycles=list(classes.values()), rename=deployed)
    names = {q.address: n for n, q in w.participants.items()}
    ids: dict[str, tuple[str, bytes]] = {}
    pids: dict[str, int] = {}
    run = _Run()

    def signer(name: str, lc: str) -> Any:
        return w.domain_admin(name[len(ADMIN):], lc) if name.startswith(ADMIN) else ps[name]

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

    def send(s: Step, lc: str, out: dict[str, Any]) -> Generator[Any, Any, None]:
        """One step's transaction (raises LifecycleError when refused before sending)."""
        ev = (_content(s.digest),) if s.digest else ()
        if s.do == "register":
            salt = s.artefact.encode().ljust(32, b"\0")[:32]
            ids[s.artefact] = (lc, w.client(lc).artefact_id(ps[s.by].address, salt))
            yield from attempt(w, s.by, lc, "register", salt, *ev, out=out)
        elif s.do in ("grant", "revoke"):  # by its domain's admin unless `by` says
            who = ps[s.who]
            args = (s.role, who.address) + (
                (domain_id(s.domain or who.domain),) if s.do == "grant" else ())
            yield from attempt(w, signer(s.by, lc) if s.by else w.domain_admin(who, lc), lc,
                               s.do, *args, out=out)
        elif s.do == "propose":
            ir = w.client(lc).ir
            yield from attempt(w, signer(s.by, lc), lc, "propose", s.kind, domain_id(s.domain),
                               signer(s.account, lc).address if s.account else "0x" + "00" * 20,
                               sum(ir.role(r).bit for r in s.roles), out=out)
            if out["outcome"] == "ok":
                pids[s.proposal] = int(w.result(out["tx"]))
        elif s.do in ("vote", "execute"):
            if s.proposal not in pids:
                raise UnknownArtefact(f"proposal {s.proposal!r} was never made")
            if s.quorum_vote():
                yield from vote_to_quorum(lc, pids[s.proposal], out)
            else:
                yield from attempt(w, signer(s.by, lc), lc, s.do, pids[s.proposal], out=out)
        else:
            yield from attempt(w, s.by, lc, "fire", s.step, ids[s.artefact][1], *ev, out=out)

    def vote_to_quorum(lc: str, pid: int, out: dict[str, Any]) -> Generator[Any, Any, None]:
        """The member domains of the cast (in its order) that have not voted, each by its
        admin, until the proposal has the quorum the deployed contract counts
        (``min(quorum, members)``); the first refused vote ends it."""
        client = w.client(lc)
        members = [d for d in dict.fromkeys(a.domain for a in tm.cast())
                   if client.member(domain_id(d)) is not None]
        need = min(client.ir.consortium.quorum, len(members))
        voted = set(client.votes(pid))
        out["outcome"] = "ok"
        for d in members:
            if len(voted) >= need:
                break
            if domain_id(d) not in voted:
                yield from attempt(w, w.domain_admin(d, lc), lc, "vote", pid, out=out)
                if out["outcome"] != "ok":
                    return
                voted.add(domain_id(d))

    def story() -> Generator[Any, Any, None]:
        for i, s in steps:
            if not s.runs_on("proml"):
                continue
            if s.do == "wait":
                yield w.env.timeout(waits[i])
                continue
            lc = deployed[s.lifecycle] if s.lifecycle else ids[s.artefact][0]
            if s.do in GOVERNANCE and w.client(lc).ir.consortium is None:
                run.skip(i, s, w.env.now, f"{lc} has no governance")
                continue
            out: dict[str, Any] = {}
            at = w.env.now
            try:
                yield from send(s, lc, out)
                run.step(i, s, at, None if out["outcome"] == "ok" else _why(w, out))
            except LifecycleError as exc:  # refused before sending (the client's own checks)
                run.step(i, s, at, f"{type(exc).__name__}: {exc}")

    watches: list[Any] = [
        _Review(d, _seconds(tm, d.every), w, list(deployed.values())) if d.kind == "governance"
        else _Watch(d, _seconds(tm, d.every), histories)
        for d in p.defences if d.kind != "auditor"]
    for wt in watches:
        def visits(wt: Any = wt) -> Generator[Any, Any, None]:
            while not wt.alarms:
                yield w.env.timeout(wt.every)
                wt.visit(w.env.now)
        w.env.process(visits())
    w.env.run(until=w.env.process(story()))
    w.run(w.env.now + _seconds(tm, p.observe_s))
    acts = False
    if p.artefact:
        lc, aid = ids[p.artefact]
        acts = Consumer(lc, p.state, p.step).accepts(w, aid, _content(p.uses) or None)
    out = run.outcome(acts, [a for wt in watches for a in wt.alarms])
    for metric, values in p.compare.items():  # the same play on another design, beside
        from proml_sim.threats.runner import with_parameters

        alt = with_parameters(
            dataclasses.replace(given, play=dataclasses.replace(_play(given), compare={})),
            values)
        sub = workdir / f"compare-{metric}"
        sub.mkdir(exist_ok=True)
        out.metrics[metric] = float(run_proml(alt, seed, sub).attack_succeeded)
    return out


def _administer(db: Any, s: Step, admin: str, domain: str) -> None:
    """A ``grant``/``revoke`` through the baseline's application: by the database's admin (who
    also stands for any ``admin@DOMAIN`` key: the central design has one administrator), or
    by ``s.by`` only if it holds the role that administers ``s.role`` (the careful rule the
    contract enforces too: a labeller is appointed by a dataset admin)."""
    from proml_sim.errors import RoleNotAllowed

    ruler = db.irs[s.lifecycle].role(s.role).admin
    if s.by and s.by != admin and not s.by.startswith(ADMIN) and not db.conn.execute(
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

    waits = _waits(tm, seed)
    tm, classes, steps, lifecycle_of = _prepared(tm)
    p = _play(tm)
    db = central(tm, workdir, classes, admin=p.db_admin, name="play")
    ids: dict[str, str] = {}

    def histories() -> History:
        """Every recorded action on the play's artefacts, from the audit table."""
        return {a: [(act, who, d or "") for act, who, d in db.conn.execute(
            "SELECT action, actor, digest FROM audit WHERE artefact=? ORDER BY seq", (aid,))]
            for a, aid in ids.items()}

    watches: list[Any] = [Auditor(db, _seconds(tm, d.every)) if d.kind == "auditor" else
                          _Watch(d, _seconds(tm, d.every), histories) for d in p.defences
                          if d.kind != "governance"]
    run, now = _Run(), 0.0
    domains = {a.name: a.domain for a in tm.cast()}
    for i, s in steps:
        if not s.runs_on("baseline"):
            continue
        for wt in watches:
            wt.visit_until(now)
        now += waits.get(i, 0.0)
        ev, aid = _content(s.digest).hex(), ids.get(s.artefact, "")
        try:
            if s.do == "register":
                ids[s.artefact] = db.register(s.by, s.lifecycle, s.artefact, ev, at=now)
            elif s.do in ("grant", "revoke"):
                _administer(db, s, p.db_admin, s.domain or domains[s.who])
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
    acts = False
    if p.artefact:
        aid = ids.get(p.artefact, "")
        row = db.conn.execute("SELECT state FROM artefacts WHERE id=?", (aid,)).fetchone()
        recorded = [(r[1], bytes.fromhex(r[4] or "")) for r in db.history(aid)]
        acts = Consumer(lifecycle_of[p.artefact], p.state, p.step).decides(
            row[0] if row else None, recorded, _content(p.uses) or None)
    db.close()
    return run.outcome(acts, alarms)
