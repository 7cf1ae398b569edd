"""Scenario implementations, one module per group; each registers with ``@scenario(id)``."""
