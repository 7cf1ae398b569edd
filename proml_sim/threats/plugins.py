"""Threat scenarios from outside the package: plugin files, modules and installed packages.

A plugin is a Python module that registers scenarios with
:func:`~proml_sim.threats.runner.scenario` (usually written with :mod:`proml_sim.threats.kit`)
and ships each scenario's threat model as ``<ID>.toml`` (the catalogue format of
:mod:`proml_sim.threats.catalogue`) in the module's directory, or in the directory named by a
module-level ``THREAT_MODELS``.  Load one with ``proml threats run --scenarios FILE_OR_MODULE``
(``proml sweep X1 --scenarios ...``) or :func:`load_plugin`; an installed package declares its
modules in the entry-point group :data:`ENTRY_POINT_GROUP`, loaded with the built-in scenarios::

    [project.entry-points."proml_sim.scenarios"]
    insider = "my_study.scenarios"

Example: ``load_plugin("docs/tutorials/threat_scenario.py")`` returns ``{"X1": <ThreatModel>}``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from proml_sim.threats.catalogue import CatalogueError, ThreatModel, load_threat

__all__ = ["ENTRY_POINT_GROUP", "PLUGIN_MODELS", "load_entry_points", "load_plugin"]

#: The entry-point group installed packages use to ship scenarios.
ENTRY_POINT_GROUP = "proml_sim.scenarios"

#: Threat models of loaded plugins, by id.
PLUGIN_MODELS: dict[str, ThreatModel] = {}
_LOADED: dict[str, dict[str, ThreatModel]] = {}


def load_plugin(spec: str) -> dict[str, ThreatModel]:
    """Import the plugin ``spec`` (a ``.py`` file or a module name), which registers its
    scenarios, and return the threat models of the scenarios it registered.  Loading the same
    plugin again is a no-op.  Raises :class:`~proml_sim.threats.catalogue.CatalogueError` (exit
    2 on the command line) when it cannot be imported or a scenario has no threat model.

    A ``.toml`` spec is a threat model whose ``[play]`` runs without code
    (:mod:`proml_sim.threats.story`).

    Example: ``load_plugin("my_study.scenarios")``, ``load_plugin("attacks/x1.py")`` or
    ``load_plugin("docs/tutorials/X3.toml")``."""
    if spec in _LOADED:
        return _LOADED[spec]
    if spec.endswith(".toml"):  # a threat model whose [play] needs no code
        if not Path(spec).is_file():
            raise CatalogueError(f"threat model {spec} does not exist")
        tm = load_threat(spec)
        if tm.play is None:
            raise CatalogueError(f"{spec} has no [play]; a threat model loaded without code "
                                 "needs one (docs/tutorials/X3.toml), or load the plugin that "
                                 "registers its code")
        PLUGIN_MODELS[tm.id] = tm
        _LOADED[spec] = {tm.id: tm}
        return _LOADED[spec]
    from proml_sim.threats.runner import SCENARIOS, load_scenarios

    load_scenarios()  # the built-in ones first, so that only the plugin's are new
    before = set(SCENARIOS)
    module = _import(spec)
    new = [sid for sid in SCENARIOS if sid not in before]
    if not new:
        raise CatalogueError(f"plugin {spec} registered no scenario; decorate a class with "
                             "@proml_sim.threats.runner.scenario('ID')")
    models = {sid: _model_for(sid, module, spec) for sid in new}
    PLUGIN_MODELS.update(models)
    _LOADED[spec] = models
    return models


def load_entry_points() -> dict[str, ThreatModel]:
    """Load every installed plugin of :data:`ENTRY_POINT_GROUP` (failures name the plugin);
    returns their threat models.

    Example: after ``pip install my-study`` (which declares the group), ``load_entry_points()``
    returns ``{"X1": ...}``; ``proml threats run`` calls it for you."""
    out: dict[str, ThreatModel] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        out.update(load_plugin(ep.value.split(":")[0]))
    return out


def _import(spec: str) -> ModuleType:
    path = Path(spec)
    try:
        if spec.endswith(".py") or path.is_file():
            if not path.is_file():
                raise CatalogueError(f"scenario plugin file {spec} does not exist")
            name = "proml_plugin_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
            loader_spec = importlib.util.spec_from_file_location(name, path)
            if loader_spec is None or loader_spec.loader is None:
                raise CatalogueError(f"cannot import {spec} as a Python module")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[name] = module  # worker processes and dataclasses find it by name
            loader_spec.loader.exec_module(module)
            return module
        return importlib.import_module(spec)
    except CatalogueError:
        raise
    except ImportError as exc:
        raise CatalogueError(f"cannot import scenario plugin {spec!r}: {exc}; give a .py file "
                             "or an importable module name") from None
    except SystemExit as exc:  # a script's main part run on import, unguarded
        raise CatalogueError(f"scenario plugin {spec} called sys.exit({exc.code!r}) while "
                             "importing; put its script part under `if __name__ == "
                             "'__main__':`") from None
    except Exception as exc:  # the plugin's own code failed at import: name it, one line
        raise CatalogueError(f"scenario plugin {spec} failed while importing: "
                             f"{type(exc).__name__}: {exc}") from None


def _model_for(sid: str, module: ModuleType, spec: str) -> ThreatModel:
    where = getattr(module, "THREAT_MODELS", None)
    base = Path(where) if where else Path(module.__file__ or ".").parent
    if not base.is_absolute() and where:
        base = Path(module.__file__ or ".").parent / base
    f = base / f"{sid}.toml"
    if not f.is_file():
        raise CatalogueError(f"plugin {spec} registers scenario {sid} but {f} is missing; ship "
                             "its threat model (threat_models/README.md shows the fields)")
    return load_threat(f)
