"""Run threat scenarios against the centralised baseline and against ProML; measure; judge.

A scenario implements two functions, ``baseline(tm, seed, workdir) -> Outcome`` and
``proml(tm, seed, workdir) -> Outcome``, each one independent run of the attack with that
seed.  A run may make several attack attempts (``Outcome.attempts``); rates count attempts as
trials with seeds as clusters (Wilson when a seed makes one attempt, else a cluster bootstrap
across seeds).  Over seeds the runner computes the attack success rate, the detection rate
among successful attempts, the time to detect (bootstrap of the median), each extra metric
the scenario reports (bootstrap of the mean) and every sweep point such as ASR(c) with its
interval.  Verdicts come from the measurements only:

* ``prevented``: no attempt succeeded on any seed;
* ``detected``: attempts succeeded, and every successful one was detected;
* ``documented_limit``: some attack succeeded undetected; the scenario states why this is a
  limit (for example an authorised insider's self-reported lie);
* ``out_of_scope``: the scenario says so before running (``Outcome.out_of_scope``);
* ``no_attack``: no seed made an attack attempt (``Outcome.attempts`` 0 everywhere: a sweep's
  zero point such as an attacker share of 0): nothing was prevented, so it is never
  ``prevented``; a threat model cannot expect it, so at the file's parameters it fails.
"""

from __future__ import annotations

import functools
import json
import math
import numbers
import os
import reprlib
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proml_sim.errors import DEBUG_ENV, LifecycleError, ProMLError, UsageError
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.metrics import Estimate, bootstrap, trial_rate, wilson


@dataclass
class Outcome:
    """One run of one attack on one system."""

    attack_succeeded: bool
    detected: bool = False
    ttd_s: float | None = None
    out_of_scope: bool = False
    metrics: dict[str, float | None] = field(default_factory=dict)  # None: undefined (kit.ratio)
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # sweeps
    note: str = ""
    # trial level: a run may make several attack attempts (S1's targets, R2's trials); how
    # many it made, how many reached the goal and how many of those were detected.  Left at
    # None, a run is one trial whose result is ``attack_succeeded`` / ``detected``.
    attempts: int | None = None
    successes: int | None = None
    detections: int | None = None

    def trials(self) -> tuple[int, int, int]:
        """(attempts, successes, detected successes) of this run."""
        n = 1 if self.attempts is None else self.attempts
        s = int(self.attack_succeeded) if self.successes is None else self.successes
        d = int(self.attack_succeeded and self.detected) if self.detections is None \
            else self.detections
        if not 0 <= d <= s <= n:
            raise ValueError(f"trial counts out of order: detections {d} <= successes {s} "
                             f"<= attempts {n} must hold; fix the scenario's Outcome")
        if (s > 0) != self.attack_succeeded:
            raise ValueError(f"successes={s} contradicts attack_succeeded="
                             f"{self.attack_succeeded}; fix the scenario's Outcome")
        return n, s, d


RunFn = Callable[[ThreatModel, int, Path], Outcome]


class ScenarioError(ProMLError, RuntimeError):
    """A user's scenario code (a plugin) raised, or returned no valid :class:`Outcome`: exit 2
    naming the scenario, the side, the seed and the plugin (``PROML_DEBUG=1``: the traceback).
    The built-in scenarios' failures stay internal errors (a bug of proml-sim), but for an
    honest step their threat model's cast cannot make (a usage error naming the file)."""


@dataclass(frozen=True)
class Scenario:
    id: str
    baseline: RunFn
    proml: RunFn


SCENARIOS: dict[str, Scenario] = {}


def scenario(id_: str) -> Callable[[type], type]:
    """Class decorator registering ``baseline``/``proml`` static methods as a scenario (its
    threat model ``<id_>.toml`` states the rest, a documented limit included)."""
    def reg(cls: type) -> type:
        SCENARIOS[id_] = Scenario(id_, cls.baseline, cls.proml)  # type: ignore[attr-defined]
        return cls

    return reg


_ENTRY_POINTS_LOADED = False


def load_scenarios() -> dict[str, Scenario]:
    """Import every scenario module (they register themselves), then installed plugins (the
    ``proml_sim.scenarios`` entry points, :mod:`proml_sim.threats.plugins`)."""
    global _ENTRY_POINTS_LOADED
    import importlib
    import pkgutil

    from proml_sim.threats import scenarios as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{mod.name}")
    if not _ENTRY_POINTS_LOADED:
        _ENTRY_POINTS_LOADED = True
        from proml_sim.threats.plugins import load_entry_points

        load_entry_points()
    return SCENARIOS


def scenario_of(tm: ThreatModel) -> Scenario:
    """The code that runs ``tm``: its registered scenario, or its ``[play]`` run as data
    (:mod:`proml_sim.threats.story`); a threat model with both, or neither, is an error."""
    from proml_sim.threats.catalogue import CatalogueError

    sc = load_scenarios().get(tm.id)
    if sc is not None and tm.play is not None:
        raise CatalogueError(f"threat {tm.id} has both a [play] ({tm.path}) and registered "
                             "code; keep one of them")
    if sc is not None:
        return sc
    if tm.play is not None:
        from proml_sim.threats import story

        return Scenario(tm.id, story.run_baseline, story.run_proml)
    raise CatalogueError(f"threat {tm.id} is catalogued but has no code and no [play]; give "
                         "it a [play] or register code with @scenario and load it "
                         "(--scenarios FILE_OR_MODULE)")


def implemented(models: Iterable[ThreatModel]) -> list[ThreatModel]:
    """The threat models that can run, in their order: those with registered code or a
    ``[play]`` (:func:`scenario_of`).

    Example: ``[tm.id for tm in implemented(load_catalogue().values())]``."""
    impl = load_scenarios()
    return [tm for tm in models if tm.id in impl or tm.play is not None]


def verdict(outcomes: list[Outcome]) -> str:
    if any(o.out_of_scope for o in outcomes):
        return "out_of_scope"
    counts = [o.trials() for o in outcomes]
    if not any(a for a, _, _ in counts):
        return "no_attack"
    if not any(s for _, s, _ in counts):
        return "prevented"
    if all(d == s for _, s, d in counts):
        return "detected"
    return "documented_limit"


def summarise(outcomes: list[Outcome], seed: int = 0) -> dict[str, Any]:
    """Verdict and every rate with its 95 % interval over ``outcomes`` (one per seed).

    Rates are over attack attempts (trials), seeds being clusters: Wilson when each seed makes
    one attempt, a cluster bootstrap across seeds otherwise (:func:`metrics.trial_rate`).
    Each sweep ``series[k]`` gives ``[x, mean, seeds]`` per point and ``k + "_ci"`` its
    interval ``[x, lo, hi]`` (Wilson for 0/1 points, bootstrap of the mean otherwise).  Each
    metric is the mean over the runs where it is defined (not None:
    :func:`proml_sim.threats.kit.ratio`) with a bootstrap interval; defined in no run, it is
    null.
    """
    n = len(outcomes)
    for o in outcomes:
        _checked(o)
    succ = [o for o in outcomes if o.attack_succeeded]
    counts = [o.trials() for o in outcomes]
    asr = trial_rate([(s, a) for a, s, _ in counts], seed=seed)
    det = trial_rate([(d, s) for _, s, d in counts], seed=seed)
    ttd = bootstrap([o.ttd_s for o in succ if o.detected and o.ttd_s is not None], seed=seed)
    out: dict[str, Any] = {
        "verdict": verdict(outcomes), "seeds": n,
        "trials": sum(a for a, _, _ in counts), "trial_successes": sum(s for _, s, _ in counts),
        "asr": asr.value, "asr_ci": [asr.lo, asr.hi],
        "detection_rate": det.value, "detection_rate_ci": [det.lo, det.hi],
        "ttd_s": ttd.value, "ttd_s_ci": [ttd.lo, ttd.hi],
    }
    keys = sorted({k for o in outcomes for k in o.metrics})
    for k in keys:
        vals = [v for o in outcomes if (v := o.metrics.get(k)) is not None]
        e: Estimate = bootstrap(vals, stat=_mean, seed=seed)
        out[k] = e.value
        out[f"{k}_ci"] = [e.lo, e.hi]
    series_keys = sorted({k for o in outcomes for k in o.series})
    for k in series_keys:
        points: dict[float, list[float]] = {}
        for o in outcomes:
            for x, y in o.series.get(k, []):
                points.setdefault(x, []).append(y)
        out[k] = [[x, _mean(ys), len(ys)] for x, ys in sorted(points.items())]
        out[f"{k}_ci"] = [[x, *_point_ci(ys, seed)] for x, ys in sorted(points.items())]
        if all(y in (0.0, 1.0) for ys in points.values() for y in ys):
            # a success sweep: a Wilson 95% interval per point, over the seeds
            out[f"{k}_wilson"] = [[x, (e := wilson(int(sum(ys)), len(ys))).lo, e.hi]
                                  for x, ys in sorted(points.items())]
    notes = sorted({o.note for o in outcomes if o.note})
    if notes:
        out["notes"] = notes
    return out


def finite_number(v: Any) -> bool:
    """Whether ``v`` is a real number a summary can average (not NaN, not infinite, not an
    integer beyond the float range)."""
    try:
        return isinstance(v, numbers.Real) and math.isfinite(float(v))
    except OverflowError:
        return False


def _check_values(out: Outcome) -> None:
    """ValueError naming the first field of ``out`` a summary cannot take: a flag that is not
    a truth value, a time to detect that is no finite number of seconds (or negative), a metric
    or sweep point that is no finite number (NaN and Infinity are not JSON, and they would
    turn every mean and interval they enter into nonsense), a trial count that is no
    whole number."""
    fix, show = "; fix the scenario", reprlib.repr  # (a huge number shortened)
    for name in ("attack_succeeded", "detected", "out_of_scope"):
        v = getattr(out, name)
        if isinstance(v, str) or v not in (True, False):
            raise ValueError(f"its Outcome.{name} is {show(v)}, not True or False{fix}")
    if out.ttd_s is not None and not (finite_number(out.ttd_s) and out.ttd_s >= 0):
        raise ValueError(f"its time to detect is {show(out.ttd_s)}, not a finite number of seconds "
                         f">= 0 (or None: not detected){fix}")
    for k, v in out.metrics.items():
        if v is not None and not finite_number(v):
            raise ValueError(f"its metric {k!r} is {show(v)}, not a finite number (or None where "
                             f"it is undefined, as kit.ratio gives){fix}")
    for k, pts in out.series.items():
        if not isinstance(pts, list | tuple):
            raise ValueError(f"its series {k!r} is {show(pts)}, not a list of (x, y) pairs{fix}")
        for pt in pts:
            if not (isinstance(pt, tuple | list) and len(pt) == 2
                    and all(finite_number(x) for x in pt)):
                raise ValueError(f"its series {k!r} holds {show(pt)}, not an (x, y) pair of "
                                 f"finite numbers{fix}")
    for name in ("attempts", "successes", "detections"):
        v = getattr(out, name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Integral)
                              or v < 0):
            raise ValueError(f"its Outcome.{name} is {show(v)}, not a whole number >= 0{fix}")


def _mean(xs: Sequence[float]) -> float:
    """The mean of ``xs``; values near the ends of the float range, whose sum overflows, are
    scaled down first."""
    try:
        return statistics.fmean(xs)
    except OverflowError:
        return math.fsum(x / len(xs) for x in xs)


def _point_ci(ys: list[float], seed: int) -> list[float | None]:
    """95 % interval of one sweep point over seeds: Wilson if every value is 0 or 1 (one
    trial per seed), else a bootstrap of the mean."""
    if all(y in (0.0, 1.0) for y in ys):
        e = wilson(int(sum(ys)), len(ys))
    else:
        e = bootstrap(ys, stat=_mean, seed=seed)
    return [e.lo, e.hi]


def run_threat(tm: ThreatModel, seeds: int | None = None, base_seed: int = 0,
               workdir: str | Path | None = None) -> dict[str, Any]:
    """Run one catalogued scenario on both systems over ``seeds`` seeds (its parameters
    within its ``[ranges]``, however they were set)."""
    if (bad := tm.out_of_range()) is not None:
        raise UsageError(f"{tm.id}: {bad}; give a value in range ([ranges] of {tm.path})")
    sc = scenario_of(tm)
    _as_shipped(tm, sc)
    n = seeds or tm.seeds
    with tempfile.TemporaryDirectory(dir=workdir, prefix=f"threat-{tm.id}-") as tmp:
        root = Path(tmp)
        base = [_run_side(sc, "baseline", tm, base_seed + i, _fresh(root, "b", i))
                for i in range(n)]
        prom = [_run_side(sc, "proml", tm, base_seed + i, _fresh(root, "p", i))
                for i in range(n)]
    b, p = summarise(base, base_seed), summarise(prom, base_seed)
    result = {
        "id": tm.id, "title": tm.title, "stride": "".join(tm.stride),
        "attacker": f"{tm.attacker_role}@{tm.attacker_domain}", "defence": tm.defence,
        "baseline": b, "proml": p,
        "expected": {"baseline": tm.expected_baseline, "proml": tm.expected_proml},
        "matches_expected": b["verdict"] == tm.expected_baseline
        and p["verdict"] == tm.expected_proml,
    }
    if p["verdict"] == "documented_limit" and tm.limit:
        result["limit"] = tm.limit
    return result


#: the keys of a :func:`summarise` a scenario's metric or series may not reuse
_SUMMARY_KEYS = frozenset({"verdict", "seeds", "trials", "trial_successes", "asr", "asr_ci",
                           "detection_rate", "detection_rate_ci", "ttd_s", "ttd_s_ci", "notes"})


def _builtin(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` is proml-sim's own code (a ``functools.partial`` of it too)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    module = getattr(fn, "__module__", "") or ""
    return module == "proml_sim" or module.startswith("proml_sim.")


@functools.cache
def _shipped() -> dict[str, ThreatModel]:
    """The threat models shipped with proml-sim (none when they cannot be read)."""
    from proml_sim.threats.catalogue import load_catalogue, shipped_dir

    try:
        return load_catalogue(shipped_dir())
    except ProMLError:
        return {}


def _as_shipped(tm: ThreatModel, sc: Scenario) -> None:
    """A built-in scenario's code reads the parameters and casts the actors of its shipped
    threat model: an edited copy of it (``--models DIR``) must keep each parameter's type and
    every actor, or the code would fail half-way; UsageError naming the file and the fix.  (A
    ``[play]`` is data, checked when it is read.)"""
    ref = _shipped().get(tm.id)
    if tm.play is not None or not _builtin(sc.proml) or ref is None or ref.path == tm.path:
        return
    for name, old in ref.parameters.items():
        new = tm.parameters.get(name)
        if name not in tm.parameters or _fits(old, new):
            continue  # (a missing one is named by the scenario: MissingParameter)
        raise UsageError(f"{tm.path}: parameter {name} is {_literal(new)}; {tm.id}'s built-in "
                         f"scenario reads {_a(type(old).__name__)} like {_literal(old)} (as in "
                         f"{ref.path}): give one")
    if missing := sorted({a.name for a in ref.actors} - {a.name for a in tm.actors}):
        raise UsageError(f"{tm.path}: [actors] lacks {', '.join(missing)}, whom {tm.id}'s "
                         f"built-in scenario casts; add them back (as in {ref.path})")


def _run_side(sc: Scenario, side: str, tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
    """One seed of one side, its :class:`Outcome` checked.  The code of a scenario from
    outside the package (a plugin) is the user's: what it raises, or a result that is no valid
    Outcome, is a :class:`ScenarioError` naming the plugin and the fix."""
    fn: RunFn = getattr(sc, side)
    if _builtin(fn):
        try:
            return _checked(fn(tm, seed, workdir))
        except LifecycleError as exc:  # an honest step refused: the file's cast lacks a role
            raise UsageError(f"{tm.path}: an honest step of {tm.id} was refused on the {side} "
                             f"side ({exc}); give [actors] the roles the scenario needs, or "
                             "a lifecycle (parameter) whose rules let its honest steps through"
                             + (f" (as in {ref.path})" if (ref := _shipped().get(tm.id))
                                and ref.path != tm.path else "")) from None
    module = getattr(fn, "__module__", "") or ""
    where = getattr(sys.modules.get(module), "__file__", None) or module
    what = f"{tm.id}: the {side} side of its scenario ({where}) at seed {seed}"
    try:
        out = fn(tm, seed, workdir)
    except ProMLError:
        raise
    except SystemExit as exc:  # not the run's end: the command would exit with its code
        raise ScenarioError(f"{what} called sys.exit({exc.code!r}); fix the scenario to "
                            "return an Outcome (kit.outcome(...)), or raise to fail") from None
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        raise ScenarioError(f"{what} failed: {type(exc).__name__}: {exc}; fix the scenario "
                            f"(rerun with {DEBUG_ENV}=1 for its traceback)") from None
    try:
        return _checked(out)
    except ValueError as exc:
        raise ScenarioError(f"{what}: {exc}") from None


def _checked(out: Any) -> Outcome:
    """``out`` if it is an :class:`Outcome` whose trial counts agree and whose metric and
    series names reuse neither a summary key nor each other; else ValueError naming the
    problem."""
    if not isinstance(out, Outcome):
        raise ValueError(f"it returned {type(out).__name__}, not an Outcome; fix the scenario "
                         "to return kit.outcome(...) or kit.trials_outcome(...)")
    _check_values(out)
    out.trials()
    names = [*out.metrics, *out.series]
    clash = sorted(set(names) & _SUMMARY_KEYS) or sorted(set(out.metrics) & set(out.series))
    if clash:
        raise ValueError(f"its metric or series name(s) {clash} reuse a summary key or each "
                         "other; fix the scenario to rename them")
    return out


def with_parameters(tm: ThreatModel, values: dict[str, Any]) -> ThreatModel:
    """``tm`` with some ``[parameters]`` replaced.  Only parameters the threat model's file
    declares can be set, with a value of the declared type (an int where a float is declared
    is taken as that float), so a typo cannot silently run the default."""
    import dataclasses

    params = dict(tm.parameters)
    for name, value in values.items():
        reads = getattr(tm.play, "reads", {})
        if name in reads:
            raise UsageError(f"{tm.id}: {name} is read from the deployed lifecycle ("
                             f"{reads[name]}'s approvals, [play] reads), not set; deploy "
                             "another lifecycle to change it")
        if name not in params:
            raise UsageError(f"{tm.id} has no parameter {name!r}; its parameters are "
                             f"{', '.join(sorted(params)) or 'none'} ({tm.path})")
        old = params[name]
        if not _fits(old, value):
            raise UsageError(f"{tm.id} parameter {name} must be {_a(type(old).__name__)} like "
                             f"{_literal(old)} (written as in TOML), not {_literal(value)}")
        if (big := _beyond_int64(value)) is not None:  # (T10 steps=10**20 was exit 70)
            raise UsageError(f"{tm.id} parameter {name}: {reprlib.repr(big)} is beyond a TOML "
                             f"integer (-2^63 .. 2^63-1); give a smaller number")
        params[name] = float(value) if isinstance(old, float) else value
    out = dataclasses.replace(tm, parameters=params)
    if (bad := out.out_of_range()) is not None:
        raise UsageError(f"{tm.id}: {bad}; give a value in range ([ranges] of {tm.path})")
    return out


def _beyond_int64(v: Any) -> int | None:
    """The first integer in ``v`` (a value, or a list or table of them) outside TOML's 64-bit
    range, which Python's TOML reader lets through; None if there is none."""
    if isinstance(v, int) and not isinstance(v, bool):
        return v if not -2**63 <= v < 2**63 else None
    items = v.values() if isinstance(v, dict) else v if isinstance(v, list | tuple) else ()
    return next((b for x in items if (b := _beyond_int64(x)) is not None), None)


def _fits(old: Any, new: Any) -> bool:
    """Whether ``new`` may stand where ``old`` is declared: the same type, or an int where a
    float is (taken as that float)."""
    return type(new) is type(old) or (isinstance(old, float) and isinstance(new, int)
                                      and not isinstance(new, bool))


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _literal(v: Any) -> str:
    """``v`` as a TOML literal, the way ``--param`` and the scenario file write it (``true``,
    ``"text"``, ``[1, 2]``)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(map(_literal, v)) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_literal(x)}" for k, x in v.items()) + "}"
    return repr(v)


def sweep_threat(tm: ThreatModel, grid: list[tuple[str, list[Any]]], seeds: int | None = None,
                 base_seed: int = 0, progress: Callable[[str], None] | None = None
                 ) -> dict[str, Any]:
    """Run ``tm`` at every point of the grid (the cartesian product of each parameter's
    values), each point over ``seeds`` seeds with the full summary (intervals included)."""
    import itertools

    names = [n for n, _ in grid]
    points = []
    for combo in itertools.product(*(vs for _, vs in grid)):
        values = dict(zip(names, combo, strict=True))
        if progress:
            progress(f"{tm.id} {values}")
        r = run_threat(with_parameters(tm, values), seeds, base_seed)
        points.append({"parameters": values, "baseline": r["baseline"], "proml": r["proml"],
                       "matches_expected": r["matches_expected"]})
    return {"id": tm.id, "title": tm.title, "sweep": names, "points": points}


def _fresh(root: Path, side: str, i: int) -> Path:
    d = root / f"{side}{i}"
    d.mkdir()
    return d


def run_many(models: Iterable[ThreatModel], seeds: int | None = None, base_seed: int = 0,
             progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    out = []
    for tm in models:
        if progress:
            progress(tm.id)
        out.append(run_threat(tm, seeds, base_seed))
    return out
