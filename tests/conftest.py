"""Test-session policy.

* ``slow`` tests run when ``CI`` is set (bounded example counts, see each test) or when asked
  for with ``-m slow``; a plain local ``pytest`` skips them to stay within a few minutes.
* Compiled contracts are cached where the compiler caches them (``$PROML_CACHE_DIR``, else
  ``~/.cache/proml-sim/vyper``); entries are written atomically, so the parallel workers
  (pytest-xdist, ``-n auto`` in pyproject.toml; ``-n 0`` runs in one process) share them.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from tests.fixtures.anvil import anvil_url  # noqa: F401  (a real node for the engine tests)

os.environ.update(PROML_PASSPHRASE="proml-test-session", PROML_LIGHT_KDF="1")  # node keystores
settings.register_profile("ci", deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("CI") or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow suite: run with `pytest -m slow` (CI runs it)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
