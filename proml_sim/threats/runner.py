"""Run threat scenarios against the centralised baseline and against ProML; measure; judge.

A scenario implements two functions, ``baseline(tm, seed, workdir) -> Outcome`` and
``proml(tm, seed, workdir) -> Outcome``, each one independent run of the attack with that
seed.  Over seeds the runner computes the attack success rate (Wilson interval), the detection
rate among successful attacks (Wilson), the time to detect (bootstrap of the median) and each
extra metric the scenario reports (bootstrap of the mean; sweeps such as ASR(c) are passed
through).  Verdicts come from the measurements only:

* ``prevented``: no attack succeeded on any seed;
* ``detected``: attacks succeeded, and every one was detected;
* ``documented_limit``: some attack succeeded undetected; the scenario states why this is a
  limit (for example an authorised insider's self-reported lie);
* ``out_of_scope``: the scenario says so before running (``Outcome.out_of_scope``).
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.metrics import Estimate, bootstrap, wilson


@dataclass
class Outcome:
    """One run of one attack on one system."""

    attack_succeeded: bool
    detected: bool = False
    ttd_s: float | None = None
    out_of_scope: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # sweeps
    note: str = ""


RunFn = Callable[[ThreatModel, int, Path], Outcome]


@dataclass(frozen=True)
class Scenario:
    id: str
    baseline: RunFn
    proml: RunFn
    limit_note: str = ""  # why an undetected success is a documented limit, if it can be


SCENARIOS: dict[str, Scenario] = {}


def scenario(id_: str, *, limit: str = "") -> Callable[[type], type]:
    """Class decorator registering ``baseline``/``proml`` static methods as a scenario."""
    def reg(cls: type) -> type:
        SCENARIOS[id_] = Scenario(id_, cls.baseline, cls.proml, limit)  # type: ignore[attr-defined]
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


def verdict(outcomes: list[Outcome]) -> str:
    if any(o.out_of_scope for o in outcomes):
        return "out_of_scope"
    succeeded = [o for o in outcomes if o.attack_succeeded]
    if not succeeded:
        return "prevented"
    if all(o.detected for o in succeeded):
        return "detected"
    return "documented_limit"


def summarise(outcomes: list[Outcome], seed: int = 0) -> dict[str, Any]:
    n = len(outcomes)
    succ = [o for o in outcomes if o.attack_succeeded]
    asr = wilson(len(succ), n)
    det = wilson(sum(o.detected for o in succ), len(succ))
    ttd = bootstrap([o.ttd_s for o in succ if o.detected and o.ttd_s is not None], seed=seed)
    out: dict[str, Any] = {
        "verdict": verdict(outcomes), "seeds": n,
        "asr": asr.value, "asr_ci": [asr.lo, asr.hi],
        "detection_rate": det.value, "detection_rate_ci": [det.lo, det.hi],
        "ttd_s": ttd.value, "ttd_s_ci": [ttd.lo, ttd.hi],
    }
    keys = sorted({k for o in outcomes for k in o.metrics})
    for k in keys:
        vals = [o.metrics[k] for o in outcomes if k in o.metrics]
        e: Estimate = bootstrap(vals, stat=statistics.fmean, seed=seed)
        out[k] = e.value
        out[f"{k}_ci"] = [e.lo, e.hi]
    series_keys = sorted({k for o in outcomes for k in o.series})
    for k in series_keys:
        points: dict[float, list[float]] = {}
        for o in outcomes:
            for x, y in o.series.get(k, []):
                points.setdefault(x, []).append(y)
        out[k] = [[x, statistics.fmean(ys), len(ys)] for x, ys in sorted(points.items())]
        if all(y in (0.0, 1.0) for ys in points.values() for y in ys):
            # a success sweep: a Wilson 95% interval per point, over the seeds
            out[f"{k}_wilson"] = [[x, (e := wilson(int(sum(ys)), len(ys))).lo, e.hi]
                                  for x, ys in sorted(points.items())]
    notes = sorted({o.note for o in outcomes if o.note})
    if notes:
        out["notes"] = notes
    return out


def run_threat(tm: ThreatModel, seeds: int | None = None, base_seed: int = 0,
               workdir: str | Path | None = None) -> dict[str, Any]:
    """Run one catalogued scenario on both systems over ``seeds`` seeds."""
    sc = load_scenarios().get(tm.id)
    if sc is None:
        from proml_sim.threats.catalogue import CatalogueError

        raise CatalogueError(f"threat {tm.id} is catalogued but has no code; register one with "
                             "@scenario and load it (--scenarios FILE_OR_MODULE)")
    n = seeds or tm.seeds
    with tempfile.TemporaryDirectory(dir=workdir, prefix=f"threat-{tm.id}-") as tmp:
        root = Path(tmp)
        base = [sc.baseline(tm, base_seed + i, _fresh(root, "b", i)) for i in range(n)]
        prom = [sc.proml(tm, base_seed + i, _fresh(root, "p", i)) for i in range(n)]
    b, p = summarise(base, base_seed), summarise(prom, base_seed)
    result = {
        "id": tm.id, "title": tm.title, "stride": "".join(tm.stride),
        "attacker": f"{tm.attacker_role}@{tm.attacker_domain}", "defence": tm.defence,
        "baseline": b, "proml": p,
        "expected": {"baseline": tm.expected_baseline, "proml": tm.expected_proml},
        "matches_expected": b["verdict"] == tm.expected_baseline
        and p["verdict"] == tm.expected_proml,
    }
    if p["verdict"] == "documented_limit" and sc.limit_note:
        result["limit"] = sc.limit_note
    return result


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
