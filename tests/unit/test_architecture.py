"""The layering of docs/design.md, enforced: each layer imports only from layers to its left."""

from __future__ import annotations

import ast
from pathlib import Path

import proml_sim

ROOT = Path(proml_sim.__file__).parent

#: module (dotted, relative to proml_sim) or package -> rank.  Lower ranks are to the left.
RANKS = {
    "errors": 0,
    "_lazy": 0,
    "fsutil": 0.5,  # raises OutputError from errors
    "progress": 0,
    "stats": 0,  # interval estimators (Wilson, bootstrap): the standard library only
    "parallel": 0.5,  # executors for seeds x parameter grids (serial, processes, Dask)
    "procs": 0,
    "dsl": 1,
    "lifecycles": 1.5,
    "cliargs": 1.6,  # argument types of every command line, below the layers that register
    "ir": 2,
    "codegen": 3,
    "compiler": 4,
    "artifacts": 4.5,
    "chain": 5,
    "gas": 5.5,
    "bench": 5.5,
    "node": 6,
    "serve": 6.5,  # the HTTP server and explorer sit above the node
    "sim": 7,
    "threats": 8,
    "cli": 10,
}
#: third-party packages a layer must not know about
FORBIDDEN = {
    "dsl": {"vyper", "eth", "simpy", "web3", "matplotlib"},
    "ir": {"vyper", "eth", "simpy", "web3", "matplotlib"},
    "codegen": {"vyper", "eth", "simpy", "web3"},
    "compiler": {"eth", "simpy", "web3"},
    "chain": {"simpy", "matplotlib"},
}


def _unit(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return rel.parts[0]


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


def test_every_module_has_a_rank():
    units = {_unit(p) for p in ROOT.rglob("*.py") if p.name != "__init__.py" or p.parent != ROOT}
    assert units <= set(RANKS), units - set(RANKS)


def test_layers_import_only_to_their_left():
    bad = []
    for path in ROOT.rglob("*.py"):
        if path.parent == ROOT and path.name == "__init__.py":
            continue  # the flat public surface re-exports from every layer
        unit = _unit(path)
        for mod in _imports(path):
            top = mod.split(".")[0]
            if top == "proml_sim":
                parts = mod.split(".")
                if len(parts) == 1:
                    bad.append(f"{path.relative_to(ROOT)} imports the package root")
                    continue
                target = parts[1]
                if target != unit and RANKS[target] >= RANKS[unit]:
                    bad.append(f"{path.relative_to(ROOT)} ({unit}) imports {mod} ({target})")
            elif top in FORBIDDEN.get(unit, set()):
                bad.append(f"{path.relative_to(ROOT)} ({unit}) must not know {top}")
            elif top == "experiments" and unit != "cli":
                bad.append(f"{path.relative_to(ROOT)} imports experiments")
    assert not bad, "\n".join(bad)


def test_public_surface_is_flat_and_sorted():
    assert proml_sim.__all__ == sorted(proml_sim.__all__)
    for name in proml_sim.__all__:
        assert hasattr(proml_sim, name), name
    assert issubclass(proml_sim.InvalidDefinition, TypeError)


def test_chain_does_not_know_codegen():
    """ARCHITECTURE.md: the chain layer must not know about codegen (it gets compiled
    contracts from the compiler)."""
    bad = [
        str(p.relative_to(ROOT)) for p in (ROOT / "chain").rglob("*.py")
        if any(m.startswith("proml_sim.codegen") for m in _imports(p))
    ]
    assert not bad
