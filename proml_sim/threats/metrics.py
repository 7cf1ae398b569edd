"""Metrics with 95 % intervals: Wilson for rates over independent trials, a cluster bootstrap
across seeds for trials that share a seed's world, percentile bootstrap for times."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    value: float | None
    lo: float | None
    hi: float | None
    n: int

    def as_dict(self) -> dict[str, float | int | None]:
        return {"value": self.value, "lo": self.lo, "hi": self.hi, "n": self.n}

    def fmt(self, digits: int = 2, pct: bool = False) -> str:
        if self.value is None:
            return "n/a"
        k = 100.0 if pct else 1.0
        unit = " %" if pct else ""
        return (f"{self.value * k:.{digits}f}{unit} [{(self.lo or 0) * k:.{digits}f}, "
                f"{(self.hi or 0) * k:.{digits}f}]")


def wilson(successes: int, n: int, z: float = Z95) -> Estimate:
    """Wilson score interval of a proportion (well-behaved at 0 and 1)."""
    if n <= 0:
        return Estimate(None, None, None, 0)
    if not 0 <= successes <= n:
        raise ValueError(f"successes={successes} outside [0, n={n}]")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # at 0 or n successes the bound is exactly 0 or 1 (centre -+ half rounds off it)
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return Estimate(p, lo, hi, n)


def bootstrap(values: Sequence[float], stat: Callable[[Sequence[float]], float] =
              statistics.median, n_boot: int = 2000, seed: int = 0,
              level: float = 0.95) -> Estimate:
    """Percentile bootstrap interval of ``stat`` (default: the median)."""
    xs = [float(v) for v in values]
    if not xs:
        return Estimate(None, None, None, 0)
    est = float(stat(xs))
    if len(xs) == 1:
        return Estimate(est, est, est, 1)
    rng = random.Random(seed)
    boots = sorted(float(stat(rng.choices(xs, k=len(xs)))) for _ in range(n_boot))
    a = (1 - level) / 2
    return Estimate(est, boots[int(a * (n_boot - 1))], boots[int((1 - a) * (n_boot - 1))],
                    len(xs))


def cluster_bootstrap(clusters: Sequence[tuple[float, float]], n_boot: int = 2000,
                      seed: int = 0, level: float = 0.95) -> Estimate:
    """Ratio estimate sum(x)/sum(n) over clusters ``(x, n)`` with a percentile bootstrap
    that resamples whole clusters (seeds).

    Attack attempts within one seed share that seed's world (its timing, its monitor, its
    admin's reaction), so they are not independent; resampling seeds instead of attempts keeps
    that correlation in the interval.  ``n`` is the number of trials of the cluster and ``x``
    its successes (or any additive quantity).  Clusters with ``n == 0`` carry no trial and are
    ignored.  ``Estimate.n`` is the number of trials.  With few seeds the bootstrap has
    little or no spread (seeds that all agree give a zero-width interval): see
    :func:`trial_rate`, which never reports less than the pooled Wilson interval.
    """
    cs = [(float(x), float(n)) for x, n in clusters if n > 0]
    if not cs:
        return Estimate(None, None, None, 0)
    trials = int(sum(n for _, n in cs))
    est = sum(x for x, _ in cs) / sum(n for _, n in cs)
    if len(cs) == 1:
        return Estimate(est, est, est, trials)
    rng = random.Random(seed)
    boots = []
    for _ in range(n_boot):
        pick = rng.choices(cs, k=len(cs))
        boots.append(sum(x for x, _ in pick) / sum(n for _, n in pick))
    boots.sort()
    a = (1 - level) / 2
    lo, hi = boots[int(a * (n_boot - 1))], boots[int((1 - a) * (n_boot - 1))]
    return Estimate(est, lo, hi, trials)


def trial_rate(clusters: Sequence[tuple[int, int]], seed: int = 0) -> Estimate:
    """A rate over trials grouped by seed: ``clusters`` is ``[(successes, trials), ...]``,
    one pair per seed.

    With at most one trial per seed the trials are independent and the interval is Wilson's;
    with several trials in some seed it is the cluster bootstrap across seeds, never narrower
    than the Wilson interval of the pooled trials.
    """
    cs = [(int(x), int(n)) for x, n in clusters if n > 0]
    for x, n in cs:
        if not 0 <= x <= n:
            raise ValueError(f"successes={x} outside [0, trials={n}]")
    pooled = wilson(sum(x for x, _ in cs), sum(n for _, n in cs))
    if all(n == 1 for _, n in cs):
        return pooled
    boot = cluster_bootstrap([(float(x), float(n)) for x, n in cs], seed=seed)
    # clustering can only widen the interval of independent trials (trials of one seed agree
    # more than independent ones); with few seeds the bootstrap understates the spread, so the
    # pooled Wilson interval is a floor
    assert boot.lo is not None and boot.hi is not None and pooled.lo is not None \
        and pooled.hi is not None
    return Estimate(boot.value, min(boot.lo, pooled.lo), max(boot.hi, pooled.hi), boot.n)
