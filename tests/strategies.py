"""Hypothesis strategies for the tests: the random-lifecycle generator lives in
:mod:`proml_sim.ir.strategies` (``proml mutate --coverage --random`` draws from it too)."""

from proml_sim.ir.strategies import draw_lifecycles, lifecycles

__all__ = ["draw_lifecycles", "lifecycles"]
