"""Threat evaluation: threat models as data, attacker actors, oracles, the centralised baseline,
metrics, property-based threat tests and mutation testing of the generated contracts.

Modules are imported by their full path (``proml_sim.threats.properties``,
``proml_sim.threats.mutants``, ...); this package re-exports nothing, so its modules stay
independent of one another.
"""
