"""Vyper source -> :class:`CompiledContract`, compiled in process, cached on disk by source hash.

The cache directory is ``$PROML_CACHE_DIR`` or ``~/.cache/proml-sim/vyper``; entries are keyed by
SHA-256 of (vyper version, EVM version, source) and written atomically, so concurrent processes
and crashes never leave a half-written entry.  A corrupt entry is ignored and rebuilt.

Contracts are optimised for gas; one whose runtime code would exceed EIP-170's limit
(:data:`MAX_CODE_SIZE`) is compiled again optimised for size (about 3% smaller), and the
smaller is kept.  Deploying one that is still too large raises
:class:`~proml_sim.errors.ContractTooLarge` (``proml_sim.chain.client``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proml_sim.codegen import generate_vyper
from proml_sim.errors import CompilationError
from proml_sim.fsutil import atomic_write_text, parse_json
from proml_sim.ir import LifecycleIR, build_ir

__all__ = ["CompiledContract", "cache_dir", "compile_anchor", "compile_artefact", "compile_source"]

EVM_VERSION = "prague"
#: EIP-170: the largest runtime code (bytes) a contract may have on Ethereum chains.
MAX_CODE_SIZE = 24_576


@dataclass(frozen=True)
class CompiledContract:
    """A compiled lifecycle contract.  ``ir`` is ``None`` for plain sources.

    Example (compiles, so not run by the doctests)::

        >>> from proml_sim import build_ir, compile_artefact
        >>> from proml_sim.lifecycles import Dataset
        >>> contract = compile_artefact(Dataset)  # doctest: +SKIP
        >>> contract.name, contract.ir == build_ir(Dataset)  # doctest: +SKIP
        ('Dataset', True)
        >>> contract.fingerprint == build_ir(Dataset).fingerprint()  # doctest: +SKIP
        True
        >>> "register" in contract.abi_json()  # doctest: +SKIP
        True
    """

    name: str
    source: str
    abi: tuple[dict[str, Any], ...]
    bytecode: bytes
    runtime_bytecode: bytes
    source_hash: str
    compiler: str
    fingerprint: str | None = None
    ir: LifecycleIR | None = None

    def abi_json(self) -> str:
        return json.dumps(list(self.abi), indent=2, sort_keys=True) + "\n"


def cache_dir() -> Path:
    env = os.environ.get("PROML_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "proml-sim" / "vyper"


def _compiler_id() -> str:
    # the installed distribution's version (equal to vyper.__version__), read without importing
    # vyper: a cache hit then costs no compiler import (~90 ms on every node command)
    from importlib.metadata import version

    return f"vyper-{version('vyper')}-{EVM_VERSION}"


def _line_of(exc: Exception) -> int | None:
    line = getattr(exc, "lineno", None)
    if line is None:
        for ann in getattr(exc, "annotations", None) or []:
            line = getattr(ann, "lineno", None)
            if line is not None:
                break
    return line if isinstance(line, int) else None


def _too_large(out: dict[str, Any]) -> bool:
    return len(str(out["bytecode_runtime"]).removeprefix("0x")) // 2 > MAX_CODE_SIZE


def _vyper_compile(source: str) -> dict[str, Any]:
    import warnings

    from vyper.compiler import compile_code
    from vyper.compiler.settings import OptimizationLevel, Settings
    from vyper.evm.opcodes import EVM_VERSIONS
    from vyper.warnings import ContractSizeLimit

    assert EVM_VERSION in EVM_VERSIONS

    def run(**opts: Any) -> dict[str, Any]:
        try:
            with warnings.catch_warnings():  # the size is checked here, and at deployment
                warnings.simplefilter("ignore", ContractSizeLimit)
                out: dict[str, Any] = compile_code(
                    source,
                    output_formats=["abi", "bytecode", "bytecode_runtime"],
                    settings=Settings(evm_version=EVM_VERSION, **opts),
                )
        except Exception as exc:  # vyper raises many types; wrap all with source + line
            message = getattr(exc, "message", None) or str(exc).splitlines()[0]
            raise CompilationError(f"{type(exc).__name__}: {message}", source,
                                   _line_of(exc)) from exc
        return out

    out = run()
    if _too_large(out):  # over EIP-170 optimised for gas: optimise for size instead
        with contextlib.suppress(CompilationError):  # (then the gas-optimised code stands)
            small = run(optimize=OptimizationLevel.CODESIZE)
            if len(small["bytecode_runtime"]) < len(out["bytecode_runtime"]):
                out = small
        out["optimize"] = "codesize"
    return out


def compile_source(
    source: str, name: str = "Contract", *, use_cache: bool = True
) -> CompiledContract:
    """Compile a Vyper source text (cached on disk by its hash).

    Example (compiles, so not run by the doctests)::

        >>> from proml_sim import compile_source
        >>> src = "@external\\n@pure\\ndef answer() -> uint256:\\n    return 42\\n"
        >>> contract = compile_source(src, "Answer")  # doctest: +SKIP
        >>> [f["name"] for f in contract.abi], contract.ir is None  # doctest: +SKIP
        (['answer'], True)
    """
    compiler = _compiler_id()
    key = hashlib.sha256(f"{compiler}\n{source}".encode()).hexdigest()
    path = cache_dir() / f"{key}.json"
    out: dict[str, Any] | None = None
    if use_cache and path.exists():
        try:
            out = parse_json(path.read_text())
            if not {"abi", "bytecode", "bytecode_runtime"} <= set(out) or (
                    _too_large(out) and out.get("optimize") != "codesize"):
                out = None  # (an oversized entry of before the size fallback: rebuild it)
        except (OSError, ValueError):
            out = None  # corrupt or unreadable entry: rebuild it
    if out is None:
        out = _vyper_compile(source)
        if use_cache:
            with contextlib.suppress(OSError):  # a read-only cache must not stop compilation
                atomic_write_text(path, json.dumps(out))
    return CompiledContract(
        name=name,
        source=source,
        abi=tuple(out["abi"]),
        bytecode=bytes.fromhex(out["bytecode"].removeprefix("0x")),
        runtime_bytecode=bytes.fromhex(out["bytecode_runtime"].removeprefix("0x")),
        source_hash=key,
        compiler=compiler,
    )


def compile_anchor(*, use_cache: bool = True) -> CompiledContract:
    """Compile the batch-anchoring contract (``proml_sim.codegen.anchor``)."""
    from proml_sim.codegen.anchor import ANCHOR_NAME, anchor_source

    return compile_source(anchor_source(), ANCHOR_NAME, use_cache=use_cache)


def compile_artefact(
    lifecycle: Any, *, layout: str = "registry", use_cache: bool = True
) -> CompiledContract:
    """Generate and compile the contract of a DSL lifecycle class (or a :class:`LifecycleIR`).

    ``layout``: ``"registry"`` (one contract holds every artefact), ``"factory"`` or ``"clone"``
    (a contract per artefact).

    Example (compiles, so not run by the doctests)::

        >>> from proml_sim import compile_artefact
        >>> from proml_sim.lifecycles import Model
        >>> contract = compile_artefact(Model)  # doctest: +SKIP
        >>> contract.name, len(contract.runtime_bytecode) > 0  # doctest: +SKIP
        ('Model', True)
    """
    ir = build_ir(lifecycle)
    compiled = compile_source(generate_vyper(ir, layout), ir.name, use_cache=use_cache)
    return CompiledContract(
        **{**compiled.__dict__, "fingerprint": ir.fingerprint(), "ir": ir},
    )
