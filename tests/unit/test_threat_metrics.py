from __future__ import annotations

import pytest

from proml_sim.threats.metrics import bootstrap, wilson


def test_wilson_known_values():
    e = wilson(0, 20)
    assert e.value == 0 and e.lo == 0 and 0.15 < e.hi < 0.17  # 0.161 for n=20
    e = wilson(20, 20)
    assert e.value == 1 and e.hi == 1 and 0.83 < e.lo < 0.85
    e = wilson(10, 20)
    assert e.lo < 0.5 < e.hi and abs((e.lo + e.hi) / 2 - 0.5) < 1e-9
    assert wilson(0, 0).value is None
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_bootstrap_contains_median_and_is_reproducible():
    xs = [float(i) for i in range(1, 101)]
    a, b = bootstrap(xs, seed=1), bootstrap(xs, seed=1)
    assert a == b and a.lo <= a.value <= a.hi and a.value == 50.5
    assert bootstrap([]).value is None and bootstrap([3.0]).lo == 3.0
