"""Interval estimators for threat verdicts: Wilson and the percentile bootstrap re-exported
from :mod:`proml_sim.stats` (the one copy the simulator's studies share), plus the trial-level
estimators of the threat runner: a cluster bootstrap across seeds for attempts that share a
seed's world, and :func:`trial_rate` choosing between them."""

from __future__ import annotations

import random
from collections.abc import Sequence

from proml_sim.stats import Z95, Estimate, bootstrap, wilson

__all__ = ["Z95", "Estimate", "bootstrap", "cluster_bootstrap", "trial_rate", "wilson"]


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
