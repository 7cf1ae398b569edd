"""Generated artefacts kept in the repository: ``contracts/<Name>.vy``, ``<Name>.abi.json``,
``<Name>.mmd`` (mermaid) for the paper lifecycles.  One function writes them; a test checks they
are in sync with the code generator.
"""

from __future__ import annotations

from pathlib import Path

from proml_sim.codegen import generate_vyper, to_mermaid
from proml_sim.compiler import compile_artefact
from proml_sim.fsutil import atomic_write_text
from proml_sim.ir import build_ir
from proml_sim.lifecycles import PAPER_LIFECYCLES, SINGLE_ADMIN_LIFECYCLES


def expected_files() -> dict[str, str]:
    """File name -> exact content for every generated file of the paper lifecycles (the
    consortium default and the single-admin design)."""
    out: dict[str, str] = {}
    for cls in (*PAPER_LIFECYCLES, *SINGLE_ADMIN_LIFECYCLES):
        ir = build_ir(cls)
        compiled = compile_artefact(ir)
        out[f"{ir.name}.vy"] = generate_vyper(ir)
        out[f"{ir.name}.abi.json"] = compiled.abi_json()
        out[f"{ir.name}.mmd"] = to_mermaid(ir)
        out[f"{ir.name}.ir.json"] = ir.canonical_json() + "\n"
    return out


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and rename: never half-written."""
    atomic_write_text(path, text)


def out_of_sync(directory: Path) -> list[str]:
    """Names of generated files that are missing or differ in ``directory``."""
    stale = []
    for name, text in expected_files().items():
        p = directory / name
        if not p.exists() or p.read_text() != text:
            stale.append(name)
    return stale


def regenerate(directory: Path) -> list[Path]:
    written = []
    for name, text in expected_files().items():
        p = directory / name
        if not p.exists() or p.read_text() != text:
            write_atomic(p, text)
        written.append(p)
    return written
