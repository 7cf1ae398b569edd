"""One exception tree for the whole toolkit.

::

    ProMLError
    ├── UsageError (ValueError)               bad command-line input (``proml`` exits 2)
    ├── InvalidDefinition (TypeError)         a DSL lifecycle class breaks rules (all listed)
    ├── CompilationError (RuntimeError)       vyper rejected a source (source + line attached)
    ├── LifecycleError                        a lifecycle guard refused an operation; raised
    │   │                                     with the *same type and message* by the reference
    │   │                                     interpreter and by a deployed contract (revert)
    │   ├── UnknownArtefact (LookupError)
    │   ├── AlreadyRegistered
    │   ├── TransitionNotAllowed              current state is not a source of the transition
    │   ├── RoleNotAllowed (PermissionError)  sender holds none of the roles the step needs
    │   ├── NotRoleAdmin (PermissionError)    sender may not grant/revoke that role
    │   ├── EvidenceRequired (ValueError)     a step that needs a content digest got none
    │   ├── SeparationOfDuty (PermissionError) the actor fired a conflicting step on this artefact
    │   ├── AlreadyApproved                   the approver (or its trust domain) already approved
    │   ├── ApprovalsFull                     approval slots for this version are exhausted
    │   ├── GovernanceError                   a consortium rule refused the call
    │   │   ├── NotDomainAdmin (PermissionError)  sender administers no member domain
    │   │   ├── ForeignAccount (PermissionError)  the account belongs to another domain
    │   │   ├── DomainRoleNotAllowed (PermissionError) the domain may not hold that role
    │   │   ├── UnknownProposal (LookupError)     no proposal has that id
    │   │   ├── ProposalClosed                    executed, or expired by a later execution
    │   │   ├── AlreadyVoted                      this domain already voted on the proposal
    │   │   ├── QuorumNotReached                  too few member domains voted for it
    │   │   └── InvalidProposal (ValueError)      the change cannot be made (unknown domain...)
    │   └── InvalidArgument (ValueError)      malformed call (unknown role index, bad input list)
    ├── ChainError                            engine-level failure
    │   ├── TransactionFailed                 reverted without a lifecycle reason, or out of gas
    │   ├── KeyCustodyError (PermissionError) an actor tried to send as a key it does not hold
    │   ├── EngineError                       engine misuse (unknown snapshot, bad tx, ...)
    │   │   ├── RPCError                      a JSON-RPC node answered with an error
    │   │   │   └── NonceTaken                another transaction from the account took the nonce
    │   │   └── NoFaucet                      a JSON-RPC node cannot give an account gas money
    │   ├── JournalError                      a persistent chain's journal is unusable
    │   ├── ContractTooLarge (ValueError)     a contract's code is over EIP-170's 24,576 bytes
    │   └── ProofError                        a header chain, receipt proof or completeness
    │                                         check fails (a failed check: exit 1)
    └── NodeError                             a ProML node cannot do what was asked
        ├── HomeError                         node home missing, unreadable or of a newer format
        ├── StoreError (OSError)              off-chain store unwritable, full, or blob missing
        │   └── BlobCorrupted                 a blob's bytes no longer match its digest
        ├── UnknownName (LookupError)         an artefact name/id/file the node cannot resolve
        │   └── UnknownLifecycleName (KeyError) a role/state/transition a lifecycle lacks
        ├── BundleError                       an evidence bundle is malformed
        ├── StaleView                         a node's view failed a freshness check
        ├── PeerError                         no HTTP peer served a blob (down, refused, bad bytes)
        ├── AccessDenied (PermissionError)    `proml serve` refused a request (unsigned, outsider)
        ├── KeystoreError                     the node's key: unreadable, no passphrase source
        │   └── WrongPassphrase (PermissionError)  the passphrase does not open the keystore
        └── ConsumerRefused                   a consumer refuses what it was served
            ├── DigestMismatch                bytes hash to no digest the chain recorded
            ├── RollbackRefused               older than the latest or than already seen
            ├── NotApproved                   not accepted, or no approval covers it
            └── TupleMismatch                 not the (model, dataset, evaluation) approved

    UnknownLifecycle (LookupError)            a lifecycle spec names no importable class
    SimNameError (LookupError)                a World has no lifecycle or participant of
                                              that name (the message lists the known ones)
    ProfileError (ValueError)                 a chain profile is invalid or its file unreadable
    OutputError (OSError)                     an output path cannot be written (missing
                                              directory, a directory where a file goes)
    CatalogueError (ValueError)               a threat-model file is invalid (also ProMLError)
    ScenarioError (RuntimeError)              a plugin's scenario code raised, or returned no
                                              valid Outcome (also ProMLError; exit 2)

``exit_code`` on a class is the ``proml`` exit code when that error ends a command: 2 (usage or
input) unless the error is a failed check (1: :class:`StaleView`, :class:`ConsumerRefused`).

A revert reason on chain is ``"<Code>: <message>"`` where ``<Code>`` is the class name of a
:class:`LifecycleError` subclass; :func:`lifecycle_error_from_reason` maps it back.
"""

from __future__ import annotations

import difflib
from typing import Any

#: set in the environment (``PROML_DEBUG=1``), an error that would be one line shows its
#: traceback instead: an internal error, or the failure of a user's own scenario code
DEBUG_ENV = "PROML_DEBUG"


class ProMLError(Exception):
    """Root of every error raised by proml-sim.

    Catch it to handle any of the toolkit's refusals; ``exit_code`` is what ``proml`` exits with.

    Example::

        >>> from proml_sim import ProMLError
        >>> from proml_sim.lifecycles import load_lifecycle
        >>> try:
        ...     load_lifecycle("Datset")
        ... except ProMLError as err:
        ...     print(type(err).__name__, err.exit_code)
        UnknownLifecycle 2
    """

    #: the ``proml`` exit code when this error ends a command (2: usage or input error)
    exit_code: int = 2


class UsageError(ProMLError, ValueError):
    """Bad input on the ``proml`` command line (a value, a path, a combination of options)."""


class InvalidDefinition(ProMLError, TypeError):
    """A lifecycle definition is invalid.  ``problems`` lists every problem found.

    Raised when the :class:`~proml_sim.dsl.Artefact` subclass is created.

    Example::

        >>> from proml_sim import Artefact, State
        >>> class Broken(Artefact):
        ...     start = State(initial=True)
        Traceback (most recent call last):
        ...
        proml_sim.errors.InvalidDefinition: Broken: 1 problem(s) in lifecycle definition:
          - Broken: no final state; mark at least one state with State(final=True).
    """

    def __init__(self, cls_name: str, problems: list[str]) -> None:
        self.cls_name = cls_name
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"{cls_name}: {len(self.problems)} problem(s) in lifecycle definition:\n{lines}"
        )


class CompilationError(ProMLError, RuntimeError):
    """The vyper compiler rejected a source text.

    Example (compiles, so not run by the doctests)::

        >>> from proml_sim import compile_source
        >>> compile_source("x: uint256 = 1")  # doctest: +SKIP
        Traceback (most recent call last):
        ...
        proml_sim.errors.CompilationError: vyper could not compile the generated contract: ...
    """

    def __init__(self, message: str, source: str, line: int | None = None) -> None:
        self.source = source
        self.line = line
        where = ""
        if line is not None:
            src_lines = source.splitlines()
            if 1 <= line <= len(src_lines):
                where = f"\n  at line {line}: {src_lines[line - 1].strip()}"
        super().__init__(f"vyper could not compile the generated contract: {message}{where}")


class LifecycleError(ProMLError):
    """A lifecycle guard refused an operation (off chain or on chain: same type, same text).

    ``reason`` is the revert reason a deployed contract gives for the same refusal.

    Example::

        >>> from proml_sim import Interpreter, build_ir
        >>> from proml_sim.lifecycles import SingleAdminDataset as Dataset
        >>> admin, lab, crowd = ("0x" + c * 40 for c in "abc")
        >>> ds = Interpreter(build_ir(Dataset), deployer=admin)
        >>> ds.grant(admin, "dataset_admin", lab)
        >>> raw = ds.register(lab, bytes(32), digest=b"r" * 32)
        >>> from proml_sim import LifecycleError
        >>> try:
        ...     ds.fire(crowd, "label", raw, digest=b"l" * 32)
        ... except LifecycleError as err:
        ...     print(err.reason)
        RoleNotAllowed: SingleAdminDataset.label needs role labeller
    """

    @property
    def code(self) -> str:
        return type(self).__name__

    @property
    def reason(self) -> str:
        """The exact revert reason string the contract uses: ``"<Code>: <message>"``."""
        return f"{self.code}: {self.args[0] if self.args else ''}"


class UnknownArtefact(LifecycleError, LookupError):
    """No artefact with that id in this lifecycle.

    Example::

        >>> from proml_sim import Interpreter, build_ir
        >>> from proml_sim.lifecycles import SingleAdminDataset as Dataset
        >>> admin, lab, crowd = ("0x" + c * 40 for c in "abc")
        >>> ds = Interpreter(build_ir(Dataset), deployer=admin)
        >>> ds.grant(admin, "dataset_admin", lab)
        >>> raw = ds.register(lab, bytes(32), digest=b"r" * 32)
        >>> ds.state(b"?" * 32)
        Traceback (most recent call last):
        ...
        proml_sim.errors.UnknownArtefact: SingleAdminDataset: unknown artefact id; register it first
    """

    def __str__(self) -> str:  # LookupError/KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class AlreadyRegistered(LifecycleError):
    """An artefact with that id (registrant + salt) already exists.

    Example::

        >>> from proml_sim import Interpreter, build_ir
        >>> from proml_sim.lifecycles import SingleAdminDataset as Dataset
        >>> admin, lab, crowd = ("0x" + c * 40 for c in "abc")
        >>> ds = Interpreter(build_ir(Dataset), deployer=admin)
        >>> ds.grant(admin, "dataset_admin", lab)
        >>> raw = ds.register(lab, bytes(32), digest=b"r" * 32)
        >>> ds.register(lab, bytes(32), digest=b"r" * 32)  # the same salt again
        Traceback (most recent call last):
        ...
        proml_sim.errors.AlreadyRegistered: SingleAdminDataset: this sender already registered ...
    """


class TransitionNotAllowed(LifecycleError):
    """The artefact's current state is not a source of the transition.

    Example::

        >>> from proml_sim import Interpreter, build_ir
        >>> from proml_sim.lifecycles import SingleAdminDataset as Dataset
        >>> admin, lab, crowd = ("0x" + c * 40 for c in "abc")
        >>> ds = Interpreter(build_ir(Dataset), deployer=admin)
        >>> ds.grant(admin, "dataset_admin", lab)
        >>> raw = ds.register(lab, bytes(32), digest=b"r" * 32)
        >>> ds.fire(lab, "release", raw, digest=b"v" * 32)  # not reviewed yet
        Traceback (most recent call last):
        ...
        proml_sim.errors.TransitionNotAllowed: SingleAdminDataset.release is allowed only from ...
    """


class RoleNotAllowed(LifecycleError, PermissionError):
    """The sender holds none of the roles the step needs.

    Example::

        >>> from proml_sim import Interpreter, build_ir
        >>> from proml_sim.lifecycles import SingleAdminDataset as Dataset
        >>> admin, lab, crowd = ("0x" + c * 40 for c in "abc")
        >>> ds = Interpreter(build_ir(Dataset), deployer=admin)
        >>> ds.grant(admin, "dataset_admin", lab)
        >>> raw = ds.register(lab, bytes(32), digest=b"r" * 32)
        >>> ds.fire(crowd, "label", raw, digest=b"l" * 32)  # crowd is not a labeller yet
        Traceback (most recent call last):
        ...
        proml_sim.errors.RoleNotAllowed: SingleAdminDataset.label needs role labeller
    """


class NotRoleAdmin(LifecycleError, PermissionError):
    """The sender may not grant or revoke that role.

    Example::

        >>> from proml_sim import Interpreter, build_ir
        >>> from proml_sim.lifecycles import SingleAdminDataset as Dataset
        >>> admin, lab, crowd = ("0x" + c * 40 for c in "abc")
        >>> ds = Interpreter(build_ir(Dataset), deployer=admin)
        >>> ds.grant(admin, "dataset_admin", lab)
        >>> raw = ds.register(lab, bytes(32), digest=b"r" * 32)
        >>> ds.grant(crowd, "labeller", crowd)  # only dataset_admin grants labeller
        Traceback (most recent call last):
        ...
        proml_sim.errors.NotRoleAdmin: SingleAdminDataset: sender does not hold the admin role ...
    """


class EvidenceRequired(LifecycleError, ValueError):
    """A step that needs a content digest got none.

    Example::

        >>> from proml_sim import Interpreter, build_ir
        >>> from proml_sim.lifecycles import SingleAdminDataset as Dataset
        >>> admin, lab, crowd = ("0x" + c * 40 for c in "abc")
        >>> ds = Interpreter(build_ir(Dataset), deployer=admin)
        >>> ds.grant(admin, "dataset_admin", lab)
        >>> raw = ds.register(lab, bytes(32), digest=b"r" * 32)
        >>> ds.grant(lab, "labeller", crowd)
        >>> ds.fire(crowd, "label", raw)  # no digest of the labels
        Traceback (most recent call last):
        ...
        proml_sim.errors.EvidenceRequired: SingleAdminDataset.label needs a non-zero evidence digest
    """


class SeparationOfDuty(LifecycleError, PermissionError):
    """The actor fired a conflicting step on this artefact.

    Example::

        >>> from proml_sim import Interpreter, build_ir
        >>> from proml_sim.lifecycles import SingleAdminDataset as Dataset
        >>> admin, lab, crowd = ("0x" + c * 40 for c in "abc")
        >>> ds = Interpreter(build_ir(Dataset), deployer=admin)
        >>> ds.grant(admin, "dataset_admin", lab)
        >>> raw = ds.register(lab, bytes(32), digest=b"r" * 32)
        >>> ds.grant(lab, "labeller", lab)
        >>> _ = ds.fire(lab, "label", raw, digest=b"l" * 32)
        >>> ds.fire(lab, "review", raw)  # the labeller may not review its own labels
        Traceback (most recent call last):
        ...
        proml_sim.errors.SeparationOfDuty: SingleAdminDataset.review: the actor of label may ...
    """


class AlreadyApproved(LifecycleError):
    """The approver (or its trust domain) already approved this version.

    Example (``Model.verify`` counts two approvals from distinct trust domains)::

        >>> from proml_sim import Interpreter, build_ir
        >>> from proml_sim.lifecycles import SingleAdminModel as Model
        >>> admin, dev, v1, v2 = ("0x" + c * 40 for c in "abcd")
        >>> m = Interpreter(build_ir(Model), deployer=admin)
        >>> for role, who in [("operator", admin), ("developer", dev)]:
        ...     m.grant(admin, role, who)
        >>> model = m.register(admin, bytes(32))
        >>> _ = m.fire(dev, "train", model, digest=b"m" * 32)
        >>> lab_b = b"lab-b".ljust(32, b"\\0")
        >>> m.grant(admin, "verifier", v1, lab_b)
        >>> m.grant(admin, "verifier", v2, lab_b)  # same trust domain as v1
        >>> m.fire(v1, "verify", model, digest=b"e" * 32)
        StepResult(fired=False, approvals=1, required=2, version=2, state='trained')
        >>> m.fire(v2, "verify", model, digest=b"e" * 32)
        Traceback (most recent call last):
        ...
        proml_sim.errors.AlreadyApproved: SingleAdminModel.verify: this trust domain already ...
    """


class ApprovalsFull(LifecycleError):
    """The approval slots for this version are exhausted.

    Example (approvers whose role was revoked no longer count, but keep their slot)::

        >>> from proml_sim import Interpreter, build_ir
        >>> from proml_sim.lifecycles import SingleAdminModel as Model
        >>> admin, dev, v1, v2 = ("0x" + c * 40 for c in "abcd")
        >>> m = Interpreter(build_ir(Model), deployer=admin)
        >>> for role, who in [("operator", admin), ("developer", dev)]:
        ...     m.grant(admin, role, who)
        >>> model = m.register(admin, bytes(32))
        >>> _ = m.fire(dev, "train", model, digest=b"m" * 32)
        >>> for i in range(16):  # MAX_APPROVERS
        ...     verifier = f"0x{i + 1:040x}"
        ...     m.grant(admin, "verifier", verifier)
        ...     _ = m.fire(verifier, "verify", model, digest=b"e" * 32)
        ...     m.revoke(admin, "verifier", verifier)
        >>> m.grant(admin, "verifier", v1)
        >>> m.fire(v1, "verify", model, digest=b"e" * 32)
        Traceback (most recent call last):
        ...
        proml_sim.errors.ApprovalsFull: SingleAdminModel.verify: approval slots for this ...
    """


class InvalidArgument(LifecycleError, ValueError):
    """A malformed call (unknown role index, bad input list, wrong length).

    Example::

        >>> from proml_sim import Interpreter, build_ir
        >>> from proml_sim.lifecycles import SingleAdminDataset as Dataset
        >>> admin, lab, crowd = ("0x" + c * 40 for c in "abc")
        >>> ds = Interpreter(build_ir(Dataset), deployer=admin)
        >>> ds.grant(admin, "dataset_admin", lab)
        >>> raw = ds.register(lab, bytes(32), digest=b"r" * 32)
        >>> ds.state(b"short")
        Traceback (most recent call last):
        ...
        proml_sim.errors.InvalidArgument: SingleAdminDataset: argument artefact must be exactly ...
    """


class GovernanceError(LifecycleError):
    """A consortium governance rule refused the call (same type and text on and off chain)."""


class NotDomainAdmin(GovernanceError, PermissionError):
    pass


class ForeignAccount(GovernanceError, PermissionError):
    pass


class DomainRoleNotAllowed(GovernanceError, PermissionError):
    pass


class UnknownProposal(GovernanceError, LookupError):
    def __str__(self) -> str:  # LookupError would repr() the message
        return str(self.args[0]) if self.args else ""


class ProposalClosed(GovernanceError):
    pass


class AlreadyVoted(GovernanceError):
    pass


class QuorumNotReached(GovernanceError):
    pass


class InvalidProposal(GovernanceError, ValueError):
    pass


LIFECYCLE_ERRORS: dict[str, type[LifecycleError]] = {
    cls.__name__: cls
    for cls in (
        UnknownArtefact,
        AlreadyRegistered,
        TransitionNotAllowed,
        RoleNotAllowed,
        NotRoleAdmin,
        EvidenceRequired,
        SeparationOfDuty,
        AlreadyApproved,
        ApprovalsFull,
        InvalidArgument,
        NotDomainAdmin,
        ForeignAccount,
        DomainRoleNotAllowed,
        UnknownProposal,
        ProposalClosed,
        AlreadyVoted,
        QuorumNotReached,
        InvalidProposal,
    )
}


def lifecycle_error_from_reason(reason: str) -> LifecycleError | None:
    """Map a revert reason ``"<Code>: <message>"`` back to its exception, or ``None``."""
    code, sep, message = reason.partition(": ")
    cls = LIFECYCLE_ERRORS.get(code) if sep else None
    return cls(message) if cls is not None else None


class ChainError(ProMLError):
    """A chain engine failed or was misused.

    Example::

        >>> from proml_sim import ChainError
        >>> from proml_sim.chain.accounts import KeyRing
        >>> ring = KeyRing.from_seed("demo", 1, owner="alice")
        >>> try:
        ...     ring.signer("0x" + "b" * 40)  # a key alice does not hold
        ... except ChainError as err:
        ...     print(type(err).__name__)
        KeyCustodyError
    """


class TransactionFailed(ChainError):
    """A transaction reverted without a lifecycle reason (or ran out of gas).

    ``receipt`` is the failed transaction's receipt, when there is one.

    Example (compiles, so not run by the doctests)::

        >>> from proml_sim import compile_artefact
        >>> from proml_sim.chain.accounts import KeyRing
        >>> from proml_sim.chain.client import LifecycleClient
        >>> from proml_sim.chain.engines import make_backend
        >>> from proml_sim.lifecycles import SingleAdminModel as Model
        >>> ring = KeyRing.from_seed("demo", 1)
        >>> admin = ring.signer(ring.addresses[0])
        >>> chain = make_backend("pyevm", funded=ring.addresses)
        >>> lc = LifecycleClient.deploy(chain, compile_artefact(Model), admin)  # doctest: +SKIP
        >>> lc.grant(admin, "operator", admin.address, gas=30_000)  # doctest: +SKIP
        Traceback (most recent call last):
        ...
        proml_sim.errors.TransactionFailed: SingleAdminModel.grant_role reverted without a ...
    """

    def __init__(self, message: str, receipt: object | None = None) -> None:
        self.receipt = receipt
        super().__init__(message)


class KeyCustodyError(ChainError, PermissionError):
    """An actor tried to sign with a key it does not hold.

    Example::

        >>> from proml_sim.chain.accounts import KeyRing
        >>> ring = KeyRing.from_seed("demo", 1, owner="alice")
        >>> ring.signer("0x" + "b" * 40)
        Traceback (most recent call last):
        ...
        proml_sim.errors.KeyCustodyError: actor alice holds no key for 0xbbbb...; add it to ...
    """


class EngineError(ChainError):
    """An engine was asked for something it cannot do (unknown snapshot, malformed tx...).

    Example::

        >>> from proml_sim.chain.accounts import Signer
        >>> Signer(bytes(32))  # zero is no private key
        Traceback (most recent call last):
        ...
        proml_sim.errors.EngineError: a private key must be 32 bytes encoding an integer in [1, n-1]
    """


class RPCError(EngineError):
    """A JSON-RPC node answered a request with an error: one line, ``METHOD: the node's
    message``; ``error`` keeps the node's error object (it may carry a revert's data)."""

    def __init__(self, message: str, error: Any = None) -> None:
        super().__init__(message)
        self.error = error


class NonceTaken(RPCError):
    """A JSON-RPC node refused a transaction because another transaction from the same account
    took its nonce (another process sending from it at the same time: a second node home with
    the same key, the user's own script).  The transaction was not sent; signing it again with
    the node's next nonce is safe (:func:`proml_sim.chain.accounts.submit_signed` does)."""


class NoFaucet(EngineError):
    """A JSON-RPC node has no development faucet and no unlocked funded account to give an
    account gas money (a public network): bring an account funded there."""


class JournalError(ChainError):
    """A persistent chain's block journal cannot be used (diverges, newer format...)."""


class ContractTooLarge(ChainError, ValueError):
    """A contract's code is larger than the 24,576 bytes EIP-170 lets a chain deploy (the
    compiler already fell back to optimising for size); the message names the contract, its
    size and the fix (a layout with a contract per artefact, or fewer transitions)."""


class ProofError(ChainError):
    """A chain proof does not hold: a header chain that does not link or reach its pin, a
    receipt that does not rebuild or prove into its block's receipts root, an omitted event."""

    exit_code = 1


class NodeError(ProMLError):
    """A ProML node cannot do what was asked; the message names the problem and the fix."""


class HomeError(NodeError):
    """The node home is missing, unreadable, or written by a newer proml-sim."""


class StoreError(NodeError, OSError):
    """The off-chain store cannot be written (read-only, full) or lacks a blob."""


class BlobCorrupted(StoreError):
    """A stored blob's bytes no longer hash to its digest."""


class UnknownName(NodeError, LookupError):
    """An artefact name, id or file the node cannot resolve."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownLifecycleName(UnknownName, KeyError):
    """A role, state or transition name the lifecycle does not define (the message lists the
    known names and suggests the closest); a ``KeyError`` too, for mapping-style callers."""


class BundleError(NodeError):
    """An evidence bundle is malformed or incomplete."""


class StaleView(NodeError):
    """A node's view failed a freshness check; ``report`` says which and by how much."""

    exit_code = 1

    def __init__(self, message: str, report: object) -> None:
        super().__init__(message)
        self.report = report


class PeerError(NodeError):
    """No HTTP peer could serve a blob: each was down, refused, or sent other bytes."""


class AccessDenied(NodeError, PermissionError):
    """``proml serve`` refused a request: unsigned, stale, replayed, or not from a member."""


class ConsumerRefused(NodeError):
    """The consumer refuses what it was served; the message says why and what to do."""

    exit_code = 1


class DigestMismatch(ConsumerRefused):
    """The served bytes hash to no digest the chain recorded for the artefact."""


class RollbackRefused(ConsumerRefused):
    """The served artefact is older than the chain's latest or than what was already seen."""


class NotApproved(ConsumerRefused):
    """The artefact is not in an accepted state, or no approval covers what was served."""


class TupleMismatch(ConsumerRefused):
    """The (model, dataset, evaluation) served is not the tuple the approvers bound."""


class UnknownLifecycle(ProMLError, LookupError):
    """A lifecycle spec (``Dataset``, ``Model`` or ``package.module:Class``) names no
    importable lifecycle class."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class SimNameError(ProMLError, LookupError):
    """A :class:`~proml_sim.sim.World` has no lifecycle or participant of that name; the
    message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ProfileError(ProMLError, ValueError):
    """A chain profile is invalid (every problem listed), names a field its consensus ignores,
    or its TOML file cannot be read."""


class OutputError(ProMLError, OSError):
    """An output file cannot be written: its directory is missing (none is created), it is a
    directory, or the file system refused the write."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class KeystoreError(NodeError):
    """The node's key cannot be read, unlocked or written, or no passphrase source is given."""


class WrongPassphrase(KeystoreError, PermissionError):
    """The passphrase does not decrypt the keystore (its MAC does not match)."""


def unknown_name_message(problem: str, name: object, known: list[str]) -> str:
    """``problem``, then a "did you mean" for the closest known name, then the known names."""
    close = difflib.get_close_matches(str(name), known, n=1) if isinstance(name, str) else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{problem}{hint} (known: {', '.join(known)})"
