"""Experiments: each ``eNN_*.py`` has ``main(config)``; data first (CSV/JSON with seed, profile
and IR fingerprints), plots second.  :mod:`experiments.reproduce` runs them all."""
