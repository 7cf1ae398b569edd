"""The threat catalogue as data: one TOML file per scenario in ``threat_models/``, validated.

A bad file raises :class:`CatalogueError` naming the file, the field and the fix.  Fields::

    id = "T1"                      # unique, matches the file name
    title = "..."
    stride = ["T"]                 # letters of S, T, R, I, D, E
    attacker_role = "DA"           # actor code from THREATS.md (O, DA, L, MD, V, A, C, BP, N),
                                   # or a role ("Lifecycle.role" or "role") or member of [actors]
    attacker_domain = "data-co"
    capabilities = ["..."]         # what the attacker can do
    keys_held = ["..."]            # keys the attacker holds
    preconditions = ["..."]
    steps = ["..."]
    defence = "..."
    oracle = "..."                 # how a run decides whether the attack succeeded
    metrics = ["asr", ...]         # from METRICS
    seeds = 20                     # default number of seeds
    [expected]                     # expected verdicts
    baseline = "detected"          # prevented | detected | documented_limit | out_of_scope
    proml = "prevented"
    limit = "..."                  # why an undetected success is a documented limit (required
                                   # when proml expects one)
    [parameters]                   # scenario-specific knobs (optional)
    [ranges]                       # the values each parameter may take (optional; a number
    consumers = ">= 1"             # without one must be >= 0): "> 0", ">= 1, <= approvers"
    colluders = "0 .. approvers"   # (bounds: numbers or other parameters), "a .. b"
    region = ["eu", "us", "asia"]  # (inclusive), or a list of the allowed values
    [actors]                       # the cast (optional): who takes part, where, with which roles
    op = "client-co eu Model.operator"           # "domain region Lifecycle.role ..."
    "v{i}" = { domain = "verif-{i}", region = "eu us asia", roles = "Model.verifier",
               count = "approvers" }             # v0 .. v(approvers-1), regions cycled
    [play]                         # optional: the attack as data, run without code
                                   # (:mod:`proml_sim.threats.story`); then ``steps`` may be
                                   # left out (the play's steps are the catalogue row's)

A cast holds at most :data:`MAX_CAST` participants at its parameters (and a run at most
:data:`~proml_sim.ir.MAX_DOMAINS` trust domains with a role on a consortium lifecycle,
:func:`proml_sim.threats.kit.world`); both are checked before any key is made.

The cast is what both systems are built from (:func:`proml_sim.threats.kit.world` and
:func:`~proml_sim.threats.kit.central`), so a scenario's code does not restate who is who.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proml_sim.errors import ProMLError, UsageError
from proml_sim.fsutil import read_toml

STRIDE = frozenset("STRIDE")
ACTORS = frozenset({"O", "DA", "L", "MD", "V", "A", "C", "BP", "N"})
VERDICTS = ("prevented", "detected", "documented_limit", "out_of_scope")
#: the most participants a cast may have at its parameters: a run makes, funds and (on a
#: consortium) enrols a key for each; a count above it is refused before any is made
MAX_CAST = 100_000
METRICS = frozenset({
    "asr", "detection_rate", "precision", "ttd_s", "time_to_revoke_s", "damage",
    "blast_radius", "attribution", "integrity_violations", "asr_by_c", "double_record_rate",
    "censorship_delay_s", "gas", "availability", "consumers_exposed", "latency_cost_s",
    "completion_rate", "stall_detect_s", "wrong_decisions", "recall",
})
REQUIRED: dict[str, type | tuple[type, ...]] = {
    "id": str, "title": str, "stride": list, "attacker_role": str, "attacker_domain": str,
    "capabilities": list, "keys_held": list, "preconditions": list, "steps": list,
    "defence": str, "oracle": str, "metrics": list, "expected": dict,
}


class CatalogueError(ProMLError, ValueError):
    """A threat-model file is invalid."""


@dataclass(frozen=True)
class Actor:
    """One entry of a scenario's ``[actors]``: a participant ``name`` in trust ``domain`` and
    ``region`` holding ``roles`` ((lifecycle, role) pairs).  With ``count`` (a parameter's name
    or a number) the entry stands for ``count`` participants: ``{i}`` in the name, domain and
    roles becomes 0, 1, ... and the ``regions`` are taken in turn.

    Example: ``Actor("v{i}", "verif-{i}", ("eu", "us"), (("Model", "verifier"),), "approvers")``.
    """

    name: str
    domain: str
    regions: tuple[str, ...]
    roles: tuple[tuple[str, str], ...] = ()
    count: str | int = ""

    @property
    def region(self) -> str:
        return self.regions[0]


class MissingParameter(UsageError, KeyError):
    """A parameter a scenario reads that the threat model's ``[parameters]`` lacks (exit 2,
    naming it; a ``KeyError`` too, for code that looks a name up)."""

    def __init__(self, where: str, tid: str, names: list[str]) -> None:
        super().__init__(f"{where}: {tid} needs parameters {names} in [parameters]; add them "
                         f"(the catalogue's {tid}.toml states each with its range)")

    def __str__(self) -> str:  # KeyError's own would quote the message
        return str(self.args[0])


class Parameters(dict[str, Any]):
    """A threat model's ``[parameters]``: a dict whose missing name is a
    :class:`MissingParameter` naming the file, not an internal ``KeyError``."""

    def __init__(self, values: Any = (), where: str = "", tid: str = "") -> None:
        super().__init__(values)
        self.where, self.tid = where, tid

    def __missing__(self, name: str) -> Any:
        raise MissingParameter(self.where, self.tid, [name])

    def copy(self) -> Parameters:
        return Parameters(self, self.where, self.tid)


@dataclass(frozen=True)
class ThreatModel:
    id: str
    title: str
    stride: tuple[str, ...]
    attacker_role: str
    attacker_domain: str
    capabilities: tuple[str, ...]
    keys_held: tuple[str, ...]
    preconditions: tuple[str, ...]
    steps: tuple[str, ...]
    defence: str
    oracle: str
    metrics: tuple[str, ...]
    expected_baseline: str
    expected_proml: str
    seeds: int = 20
    #: why an undetected success on ProML is a documented limit (``[expected] limit``)
    limit: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    actors: tuple[Actor, ...] = ()
    #: the attack as data (``[play]``, :class:`proml_sim.threats.story.Play`): a scenario
    #: that needs no code
    play: Any = None
    #: ``[ranges]``: parameter -> its rules, ("in", values) or (op, bound) pairs
    ranges: dict[str, tuple[tuple[str, Any], ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:  # a missing name names the file, however it was built
        object.__setattr__(self, "parameters",
                           Parameters(self.parameters, self.path or self.id, self.id))

    def out_of_range(self) -> str | None:
        """The first parameter value outside its ``[ranges]`` rule (a number without one:
        below 0), as "NAME = V is out of range (RULE)"; None when all fit.

        Example: with ``[ranges] consumers = ">= 1"`` and ``consumers = 0``:
        ``"consumers = 0 is out of range (>= 1)"``."""
        import operator

        ops = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
        for name, v in self.parameters.items():
            rules: tuple[tuple[str, Any], ...] = self.ranges.get(name, ()) if (
                name in self.ranges) else (((">=", 0),) if isinstance(v, int | float)
                                           and not isinstance(v, bool) else ())
            for op, bound in rules:
                if op == "in":
                    ok = v in bound
                else:
                    # (a bound naming a parameter the model lacks: MissingParameter)
                    b = self.parameters[bound] if isinstance(bound, str) else bound
                    ok = bool(ops[op](v, b)) and v == v and abs(v) != float("inf")
                if not ok:
                    rule = ", ".join(
                        f"one of {list(x)}" if o == "in" else f"{o} {x}" + (
                            f" = {self.parameters[x]!r}" if isinstance(x, str) else "")
                        for o, x in rules)
                    return f"{name} = {v!r} is out of range ({rule})"
        return None

    def cast(self) -> list[Actor]:
        """The participants of ``[actors]`` at this model's parameters, in file order (a
        counted entry expanded); each has one region.

        Example: with ``approvers = 3``, ``"v{i}" = {domain = "verif-{i}", region = "eu us",
        roles = "Model.verifier", count = "approvers"}`` gives v0@eu, v1@us, v2@eu.
        """
        counted = [(a, a.count if isinstance(a.count, int) else (
            self.parameters.get(a.count) if a.count else None)) for a in self.actors]
        for a, n in counted:
            if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
                raise CatalogueError(f"{self.path or self.id}: actor {a.name!r} counts "
                                     f"parameter {a.count!r} = {n!r}; make it a whole number "
                                     ">= 0")
        size = sum(1 if n is None else n for _, n in counted)
        if size > MAX_CAST:  # before one is expanded: 10**23 would never end
            counts = ", ".join(dict.fromkeys(f"{a.count} = {n}" for a, n in counted
                                             if isinstance(a.count, str) and a.count))
            raise CatalogueError(f"{self.path or self.id}: at {counts or 'these counts'} the "
                                 f"cast has {size} participants, more than a run makes keys "
                                 f"for ({MAX_CAST}); give fewer or bound them in [ranges]")
        out: list[Actor] = []
        for a, n in counted:
            if n is None:
                out.append(Actor(a.name, a.domain, a.regions[:1], a.roles))
                continue
            for i in range(n):
                out.append(Actor(a.name.format(i=i), a.domain.format(i=i),
                                 (a.regions[i % len(a.regions)],),
                                 tuple((lc, r.format(i=i)) for lc, r in a.roles)))
        names = [a.name for a in out]
        if len(set(names)) != len(names):
            raise CatalogueError(f"{self.path or self.id}: [actors] names repeat at these "
                                 "parameters; give every entry its own name")
        return out


def _err(path: Path, fld: str, problem: str, fix: str) -> CatalogueError:
    return CatalogueError(f"{path}: field '{fld}' {problem}; {fix}")


def load_threat(path: str | Path) -> ThreatModel:
    path = Path(path)
    try:
        data = read_toml(path)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{path}: not valid TOML ({exc}); fix the syntax") from exc
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot be read ({exc})") from exc
    for fld, typ in REQUIRED.items():
        if fld == "steps" and "play" in data:
            data.setdefault("steps", [])
        if fld not in data:
            raise _err(path, fld, "is missing", f"add `{fld} = ...` (see threat_models/README)")
        if not isinstance(data[fld], typ):
            raise _err(path, fld, f"has type {type(data[fld]).__name__}",
                       f"make it a {getattr(typ, '__name__', typ)}")
    unknown = set(data) - set(REQUIRED) - {"seeds", "parameters", "ranges", "actors", "play"}
    if unknown:
        raise _err(path, sorted(unknown)[0], "is not a known field",
                   f"remove it or use one of {sorted(REQUIRED)}, seeds, parameters, ranges, "
                   "actors, play")
    if data["id"] != path.stem:
        raise _err(path, "id", f"is {data['id']!r} but the file is {path.name}",
                   f"rename the file to {data['id']}.toml or fix the id")
    bad = [s for s in data["stride"] if s not in STRIDE]
    if not data["stride"] or bad:
        raise _err(path, "stride", f"has {bad or 'no letters'}",
                   "use letters from S, T, R, I, D, E")
    bad = [m for m in data["metrics"] if m not in METRICS]
    if not data["metrics"] or bad:
        raise _err(path, "metrics", f"has unknown metrics {bad}", f"use {sorted(METRICS)}")
    exp = data["expected"]
    for side in ("baseline", "proml"):
        if exp.get(side) not in VERDICTS:
            raise _err(path, f"expected.{side}", f"is {exp.get(side)!r}",
                       f"use one of {', '.join(VERDICTS)}")
    if not isinstance(exp.get("limit", ""), str) or set(exp) - {"baseline", "proml", "limit"}:
        raise _err(path, "expected", f"has {sorted(exp)}", "give baseline, proml and an "
                   "optional limit text")
    if exp["proml"] == "documented_limit" and not exp.get("limit", "").strip():
        raise _err(path, "expected.limit", "is missing", "a documented limit is stated: say "
                   "why ProML cannot stop this (`limit = \"...\"`)")
    seeds = data.get("seeds", 20)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise _err(path, "seeds", f"is {seeds!r}", "use a positive integer")
    params = data.get("parameters", {})
    if not isinstance(params, dict):
        raise _err(path, "parameters", "is not a table", "write it as [parameters]")
    for fld in ("capabilities", "keys_held", "preconditions", "steps"):
        if not all(isinstance(x, str) for x in data[fld]):
            raise _err(path, fld, "has non-text entries", "make every entry a string")
    play = data.get("play")
    reads = play.get("reads") if isinstance(play, dict) else None
    # a counted actor may count a number the play reads from the deployed lifecycle
    actors = _actors(path, data.get("actors", {}),
                     {**params, **(reads if isinstance(reads, dict) else {})})
    # the attacker is a THREATS.md actor code, or (a lifecycle of your own) a role or a member
    # of the cast
    cast = {a.name for a in actors} | {f"{lc}.{r}" for a in actors for lc, r in a.roles} \
        | {r for a in actors for _lc, r in a.roles}
    if data["attacker_role"] not in ACTORS | cast:
        raise _err(path, "attacker_role", f"is {data['attacker_role']!r}",
                   f"use an actor code ({', '.join(sorted(ACTORS))}), or a role or member of "
                   "[actors]")
    tm = ThreatModel(
        id=data["id"], title=data["title"], stride=tuple(data["stride"]),
        attacker_role=data["attacker_role"], attacker_domain=data["attacker_domain"],
        capabilities=tuple(data["capabilities"]), keys_held=tuple(data["keys_held"]),
        preconditions=tuple(data["preconditions"]), steps=tuple(data["steps"]),
        defence=data["defence"], oracle=data["oracle"], metrics=tuple(data["metrics"]),
        expected_baseline=exp["baseline"], expected_proml=exp["proml"], seeds=seeds,
        limit=exp.get("limit", ""),
        parameters=params, path=str(path), actors=actors,
        ranges=_ranges(path, data.get("ranges", {}), params),
    )
    if (problem := tm.out_of_range()) is not None:
        raise _err(path, "parameters", f"has {problem}", "fix the value or its [ranges] rule")
    if "play" not in data:
        return tm
    from proml_sim.threats.story import describe, parse_play

    people = [*tm.cast(), *tm.actors]  # counted actors also as their "v{i}" pattern
    play = parse_play(path, data["play"], params, {a.name for a in people},
                      {a.domain for a in people})
    return dataclasses.replace(tm, play=play,
                               steps=tm.steps or tuple(describe(s) for s in play.steps))


def _ranges(path: Path, table: Any, params: dict[str, Any]
            ) -> dict[str, tuple[tuple[str, Any], ...]]:
    """``[ranges]`` checked: each names a parameter; a list of allowed values of its type, or
    rules ``OP BOUND`` / ``LO .. HI`` (comma-separated, all must hold) whose bounds are
    numbers or numeric parameters."""
    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    if not isinstance(table, dict):
        raise _err(path, "ranges", "is not a table", 'write it as [ranges] with name = ">= 0"')
    out: dict[str, tuple[tuple[str, Any], ...]] = {}
    for name, spec in table.items():
        fld = f"ranges.{name}"
        if name not in params:
            raise _err(path, fld, "names no parameter", f"use one of {', '.join(params)}")
        if isinstance(spec, list):
            if not spec or any(type(x) is not type(params[name]) for x in spec):
                raise _err(path, fld, f"is {spec!r}", f"list values of the parameter's type "
                           f"({type(params[name]).__name__})")
            out[name] = (("in", tuple(spec)),)
            continue
        if not isinstance(spec, str):
            raise _err(path, fld, f"is {spec!r}", 'give a numeric parameter rules like "> 0", '
                       '">= 1, <= approvers" or "0 .. approvers", or list the allowed values')
        if not number(params[name]):
            raise _err(path, fld, f"is {spec!r}, a rule for a number, but parameters.{name} is "
                       f"{params[name]!r}", "make the parameter a number, or list its allowed "
                       "values")
        parsed: list[tuple[str, Any]] = []
        for part in spec.split(","):
            words = part.replace("..", " .. ").split()
            if len(words) == 3 and words[1] == "..":
                words = [">=", words[0], "<=", words[2]]
            if len(words) not in (2, 4) or any(w not in (">", ">=", "<", "<=")
                                               for w in words[::2]):
                raise _err(path, fld, f"has {part.strip()!r}", 'write "OP BOUND" (OP one of '
                           '>, >=, <, <=) or "LO .. HI"')
            for op, b in zip(words[::2], words[1::2], strict=True):
                try:
                    bound: Any = float(b) if any(c in b for c in ".eE") else int(b)
                except ValueError:
                    bound = b
                    if not number(params.get(b)):
                        raise _err(path, fld, f"has bound {b!r}", "use a number or a numeric "
                                   "parameter") from None
                parsed.append((op, bound))
        out[name] = tuple(parsed)
    return out


def _actors(path: Path, table: Any, params: dict[str, Any]) -> tuple[Actor, ...]:
    """``[actors]`` as :class:`Actor` entries (see the module docstring), checked."""
    from proml_sim.sim.network import REGIONS

    if not isinstance(table, dict):
        raise _err(path, "actors", "is not a table", 'write it as [actors] with name = "domain '
                   'region Lifecycle.role ..." entries')
    out = []
    for name, spec in table.items():
        fld = f"actors.{name}"
        if isinstance(spec, str):
            words = spec.split()
            if len(words) < 2:
                raise _err(path, fld, f"is {spec!r}", 'write "domain region Lifecycle.role ..."')
            spec = {"domain": words[0], "region": words[1], "roles": words[2:]}
        if not isinstance(spec, dict) or set(spec) - {"domain", "region", "roles", "count"} \
                or not isinstance(spec.get("domain"), str) \
                or not isinstance(spec.get("region"), str):
            raise _err(path, fld, f"is {spec!r}", 'write "domain region Lifecycle.role ..." or '
                       "{ domain = ..., region = ..., roles = ..., count = ... }")
        regions = tuple(spec["region"].split())
        if not regions or set(regions) - set(REGIONS):
            raise _err(path, fld, f"has region {spec['region']!r}",
                       f"use one of {', '.join(REGIONS)}")
        roles = spec.get("roles", [])
        roles = roles.split() if isinstance(roles, str) else roles
        if not isinstance(roles, list) or not all(
                isinstance(r, str) and r.count(".") == 1 and all(r.split(".")) for r in roles):
            raise _err(path, fld, f"has roles {roles!r}", 'name each role "Lifecycle.role"')
        count = spec.get("count", "")
        if isinstance(count, bool) or not isinstance(count, str | int) or (
                isinstance(count, str) and count and count not in params):
            raise _err(path, f"{fld}.count", f"is {count!r}",
                       "name a whole-number entry of [parameters] or give a number")
        if count != "" and "{i}" not in name:
            raise _err(path, fld, "is counted but its name has no {i}",
                       'name it like "v{i}" so each participant gets its own name')
        out.append(Actor(name, spec["domain"], regions,
                         tuple((lc, role) for lc, role in (r.split(".") for r in roles)), count))
    return tuple(out)


def shipped_dir() -> Path:
    """``threat_models/`` of the repository: the threat models shipped with proml-sim."""
    return Path(__file__).resolve().parents[2] / "threat_models"


def catalogue_dir() -> Path:
    """``threat_models/`` of the repository (or ``$PROML_THREAT_MODELS``)."""
    import os

    env = os.environ.get("PROML_THREAT_MODELS")
    return Path(env) if env else shipped_dir()


def load_catalogue(directory: str | Path | None = None) -> dict[str, ThreatModel]:
    d = Path(directory) if directory else catalogue_dir()
    files = sorted(d.glob("*.toml"))
    if not files:
        raise CatalogueError(f"no threat models (*.toml) in {d}; set PROML_THREAT_MODELS")
    out = {}
    for f in files:
        tm = load_threat(f)
        out[tm.id] = tm
    order = "TSRDC"  # THREATS.md's order: tampering, spoofing, repudiation, DoS, consensus
    return dict(sorted(out.items(), key=lambda kv: (order.find(kv[0][0]) % 10, kv[0][0],
                                                    int(kv[0][1:]) if kv[0][1:].isdigit() else 0)))
