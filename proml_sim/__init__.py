"""proml-sim: decentralised provenance of ML assets, after ProML (Tran et al., arXiv 2206.10110).

Lifecycles are declared with the DSL (:class:`Artefact`, :class:`Role`, :class:`State`), compiled
to EVM contracts with :func:`compile_artefact`, and run on chain engines from
:mod:`proml_sim.chain`.

Names are imported on first use (PEP 562), so that ``import proml_sim.cli`` and ``proml --help``
do not load the compiler, the EVM or eth-utils.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from proml_sim.compiler import CompiledContract, compile_artefact, compile_source
    from proml_sim.dsl import ADMIN, Artefact, Consortium, Role, State, Transition
    from proml_sim.errors import (
        AlreadyApproved,
        AlreadyRegistered,
        ApprovalsFull,
        ChainError,
        CompilationError,
        EngineError,
        EvidenceRequired,
        InvalidArgument,
        InvalidDefinition,
        KeyCustodyError,
        LifecycleError,
        NotRoleAdmin,
        ProMLError,
        RoleNotAllowed,
        SeparationOfDuty,
        TransactionFailed,
        TransitionNotAllowed,
        UnknownArtefact,
    )
    from proml_sim.ir import Interpreter, LifecycleIR, build_ir

__version__ = "0.1.0"

#: the module each public name lives in
_LAZY = {
    **dict.fromkeys(("CompiledContract", "compile_artefact", "compile_source"),
                    "proml_sim.compiler"),
    **dict.fromkeys(("ADMIN", "Artefact", "Consortium", "Role", "State", "Transition"),
                    "proml_sim.dsl"),
    **dict.fromkeys(("Interpreter", "LifecycleIR", "build_ir"), "proml_sim.ir"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in __all__:
        value = getattr(importlib.import_module("proml_sim.errors"), name)
    else:
        raise AttributeError(f"module 'proml_sim' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


__all__ = [
    "ADMIN",
    "AlreadyApproved",
    "AlreadyRegistered",
    "ApprovalsFull",
    "Artefact",
    "ChainError",
    "CompilationError",
    "CompiledContract",
    "Consortium",
    "EngineError",
    "EvidenceRequired",
    "Interpreter",
    "InvalidArgument",
    "InvalidDefinition",
    "KeyCustodyError",
    "LifecycleError",
    "LifecycleIR",
    "NotRoleAdmin",
    "ProMLError",
    "Role",
    "RoleNotAllowed",
    "SeparationOfDuty",
    "State",
    "TransactionFailed",
    "Transition",
    "TransitionNotAllowed",
    "UnknownArtefact",
    "build_ir",
    "compile_artefact",
    "compile_source",
]
