"""Threat models as code: the catalogue (``threat_models/``), attacker scenarios run against
ProML on the simulated chain and against a centralised baseline, metrics and verdicts; property
tests with malicious actors and mutation testing of the generated contracts."""
