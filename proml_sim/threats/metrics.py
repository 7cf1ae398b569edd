"""Interval estimators for threat verdicts: re-exported from :mod:`proml_sim.stats`, the one
copy the simulator's studies share (kept here so existing imports work)."""

from proml_sim.stats import Z95, Estimate, bootstrap, wilson

__all__ = ["Z95", "Estimate", "bootstrap", "wilson"]
