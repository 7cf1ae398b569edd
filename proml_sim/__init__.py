"""proml-sim: decentralised provenance of ML assets, after ProML (Tran et al., arXiv 2206.10110).

Lifecycles are declared with the DSL (:class:`Artefact`, :class:`Role`, :class:`State`), compiled
to EVM contracts with :func:`compile_artefact`, and run on chain engines from
:mod:`proml_sim.chain`.

Names are imported on first use (PEP 562), so that ``import proml_sim.cli`` and ``proml --help``
do not load the compiler, the EVM or eth-utils.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proml_sim._lazy import getattr_for, table

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

#: the module each public name lives in (the errors: every other name of ``__all__``)
_LAZY = table((
    ("proml_sim.compiler", "CompiledContract compile_artefact compile_source"),
    ("proml_sim.dsl", "ADMIN Artefact Consortium Role State Transition"),
    ("proml_sim.ir", "Interpreter LifecycleIR build_ir"),
))

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

_LAZY.update((name, "proml_sim.errors") for name in __all__ if name not in _LAZY)
__getattr__ = getattr_for("proml_sim", _LAZY, globals())
