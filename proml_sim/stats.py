"""Metrics with 95 % intervals over seeds: Wilson for rates, percentile bootstrap for times.

The one copy of the toolkit's interval estimators: threat verdicts (``proml_sim.threats``),
sweeps and :class:`proml_sim.sim.study.Study` all use these.  Example::

    wilson(7, 20).fmt(pct=True)        # '35.00 % [18.12, 56.71]'
    bootstrap([1.0, 2.0, 4.0]).value   # the median, 2.0, with a percentile interval
"""

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
