"""Every public object has a docstring; the researcher's API (sim, the scenario kit, plugins,
studies) and the flat ``proml_sim`` surface have an example in each, and the flat surface's and
the fork tools' examples run (doctest), so they cannot rot."""

from __future__ import annotations

import doctest
import importlib
from typing import Any

import pytest

import proml_sim

#: type aliases and data cannot carry a docstring of their own
NOT_DOCUMENTABLE = {"TimestampPolicy"}
#: the fork tools whose examples run with the flat surface's (sim/forks.py is not all exported)
FORKS = ("ConfirmationPolicy", "PrivateBranch", "final_height", "rosenfeld")


def _objects(module: str) -> list[tuple[str, Any]]:
    mod = importlib.import_module(module)
    out = []
    for name in mod.__all__:
        obj = getattr(mod, name)
        if name in NOT_DOCUMENTABLE or (not callable(obj) and not isinstance(obj, type)):
            continue  # constants (PROFILES, REGIONS, ...) are documented where defined
        out.append((name, obj))
    return out


def test_flat_api_has_docstrings() -> None:
    missing = [n for n, o in _objects("proml_sim") if not (o.__doc__ or "").strip()]
    assert not missing, missing
    assert proml_sim.__all__


@pytest.mark.parametrize("module", ["proml_sim", "proml_sim.sim", "proml_sim.threats.kit",
                                    "proml_sim.threats.plugins", "proml_sim.threats.story",
                                    "proml_sim.parallel"])
def test_researcher_api_has_examples(module: str) -> None:
    mod = importlib.import_module(module)
    names = getattr(mod, "__all__", None)
    objs = _objects(module) if names else []
    assert (mod.__doc__ or "").strip(), module
    lacking = [n for n, o in objs if "xample" not in (o.__doc__ or "")]
    assert not lacking, f"{module}: no example in {lacking}"


def _documented() -> list[tuple[str, Any]]:
    """The flat surface (``ADMIN``, a Role instance, carries its class's docstring) and the fork
    tools."""
    from proml_sim.sim import forks

    objs = [*_objects("proml_sim"), ("ADMIN", proml_sim.ADMIN)]
    objs += [(f"forks.{n}", getattr(forks, n)) for n in FORKS]
    return objs


def _examples(name: str, obj: Any) -> list[doctest.DocTest]:
    # the object's own docstring only (recurse=False): methods' docstrings are not examples
    finder = doctest.DocTestFinder(recurse=False, exclude_empty=True)
    globs = {"proml_sim": proml_sim}
    return finder.find(obj, f"proml_sim.{name}", globs=globs, module=False)


@pytest.mark.parametrize("name", [n for n, _ in _documented()])
def test_examples_run(name: str) -> None:
    obj = dict(_documented())[name]
    tests = _examples(name, obj)
    assert tests and any(t.examples for t in tests), f"{name}: no >>> example in its docstring"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test)
    summary = runner.summarize(verbose=False)
    assert summary.failed == 0, f"{name}: {summary.failed} of {summary.attempted} examples failed"
