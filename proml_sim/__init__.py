"""proml-sim: decentralised provenance of ML assets, after ProML (Tran et al., arXiv 2206.10110).

Lifecycles are declared with the DSL (:class:`Artefact`, :class:`Role`, :class:`State`), compiled
to EVM contracts with :func:`compile_artefact`, and run on chain engines from
:mod:`proml_sim.chain`.
"""

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
