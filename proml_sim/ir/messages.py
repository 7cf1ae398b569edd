"""Guard failure messages, derived from DSL names only.

The code generator embeds ``<Code>: <message>`` as revert reasons and the reference interpreter
raises ``<Code>(message)``: one table, so both always say the same words.
"""

from __future__ import annotations

from proml_sim.errors import (
    AlreadyApproved,
    AlreadyRegistered,
    AlreadyVoted,
    ApprovalsFull,
    DomainRoleNotAllowed,
    EvidenceRequired,
    ForeignAccount,
    InvalidArgument,
    InvalidProposal,
    LifecycleError,
    NotDomainAdmin,
    NotRoleAdmin,
    ProposalClosed,
    QuorumNotReached,
    RoleNotAllowed,
    SeparationOfDuty,
    TransitionNotAllowed,
    UnknownArtefact,
    UnknownProposal,
)
from proml_sim.ir.model import (
    MAX_DOMAINS,
    MAX_INPUTS,
    MAX_LOCATOR_BYTES,
    LifecycleIR,
    TransitionIR,
)


def _alts(names: tuple[str, ...]) -> str:
    return " or ".join(names)


def unknown_artefact(ir: LifecycleIR) -> LifecycleError:
    return UnknownArtefact(f"{ir.name}: unknown artefact id; register it first")


def already_registered(ir: LifecycleIR) -> LifecycleError:
    return AlreadyRegistered(f"{ir.name}: this sender already registered that salt; use a new salt")


def register_role(ir: LifecycleIR) -> LifecycleError:
    return RoleNotAllowed(f"{ir.name}.register needs role {_alts(ir.register_by)}")


def register_evidence(ir: LifecycleIR) -> LifecycleError:
    return EvidenceRequired(f"{ir.name}.register needs a non-zero evidence digest")


def wrong_role(ir: LifecycleIR, t: TransitionIR) -> LifecycleError:
    return RoleNotAllowed(f"{ir.name}.{t.name} needs role {_alts(t.by)}")


def wrong_state(ir: LifecycleIR, t: TransitionIR) -> LifecycleError:
    return TransitionNotAllowed(f"{ir.name}.{t.name} is allowed only from {_alts(t.sources)}")


def missing_evidence(ir: LifecycleIR, t: TransitionIR) -> LifecycleError:
    return EvidenceRequired(f"{ir.name}.{t.name} needs a non-zero evidence digest")


def separation(ir: LifecycleIR, t: TransitionIR, other: str) -> LifecycleError:
    return SeparationOfDuty(f"{ir.name}.{t.name}: the actor of {other} may not also do this")


def already_approved(ir: LifecycleIR, t: TransitionIR) -> LifecycleError:
    who = "trust domain" if t.count == "domains" else "account"
    return AlreadyApproved(f"{ir.name}.{t.name}: this {who} already approved this version")


def approvals_full(ir: LifecycleIR, t: TransitionIR) -> LifecycleError:
    return ApprovalsFull(f"{ir.name}.{t.name}: approval slots for this version are full")


def not_role_admin(ir: LifecycleIR) -> LifecycleError:
    return NotRoleAdmin(f"{ir.name}: sender does not hold the admin role of that role")


def domain_separation(ir: LifecycleIR, t: TransitionIR, other: str) -> LifecycleError:
    return SeparationOfDuty(
        f"{ir.name}.{t.name}: the trust domain that did {other} may not also do this"
    )


# -- consortium governance ----------------------------------------------------------------------
def no_consortium(ir: LifecycleIR) -> LifecycleError:
    return InvalidArgument(
        f"{ir.name} uses the single-admin design and has no consortium; declare "
        "`governance = Consortium(quorum=...)` in the lifecycle"
    )


def not_domain_admin(ir: LifecycleIR) -> LifecycleError:
    return NotDomainAdmin(
        f"{ir.name}: sender is not the admin of a member domain; use that domain's admin key"
    )


def foreign_account(ir: LifecycleIR) -> LifecycleError:
    return ForeignAccount(
        f"{ir.name}: that account belongs to another trust domain; a domain enrols and "
        "manages only its own accounts"
    )


def other_domain(ir: LifecycleIR) -> LifecycleError:
    return ForeignAccount(
        f"{ir.name}: a domain enrols accounts only into itself; pass your own domain id"
    )


def domain_role(ir: LifecycleIR) -> LifecycleError:
    return DomainRoleNotAllowed(
        f"{ir.name}: your domain may not hold that role; propose set_roles to the consortium"
    )


def unknown_proposal(ir: LifecycleIR) -> LifecycleError:
    return UnknownProposal(f"{ir.name}: no proposal has that id; list the proposals")


def proposal_closed(ir: LifecycleIR) -> LifecycleError:
    return ProposalClosed(
        f"{ir.name}: proposal already executed, or expired by a later execution; propose again"
    )


def already_voted(ir: LifecycleIR) -> LifecycleError:
    return AlreadyVoted(f"{ir.name}: your domain already voted for this proposal")


def quorum_not_reached(ir: LifecycleIR) -> LifecycleError:
    return QuorumNotReached(
        f"{ir.name}: proposal lacks a quorum of member domains; collect more votes first"
    )


def bad_kind(ir: LifecycleIR) -> LifecycleError:
    return InvalidProposal(
        f"{ir.name}: unknown proposal kind; use add_domain, remove_domain, rotate_admin or "
        "set_roles"
    )


def consortium_full(ir: LifecycleIR) -> LifecycleError:
    return InvalidProposal(
        f"{ir.name}: the consortium has {MAX_DOMAINS} member domains, the most it can hold; "
        "remove one first"
    )


def domain_taken(ir: LifecycleIR) -> LifecycleError:
    return InvalidProposal(
        f"{ir.name}: that domain id is empty or was already used; pick a new domain id"
    )


def not_member(ir: LifecycleIR) -> LifecycleError:
    return InvalidProposal(f"{ir.name}: that domain is not a member; name a member domain")


def bad_new_admin(ir: LifecycleIR) -> LifecycleError:
    return InvalidProposal(
        f"{ir.name}: the new admin account is empty or already bound to a domain; use a fresh "
        "account"
    )


def bad_role_mask(ir: LifecycleIR) -> LifecycleError:
    return InvalidProposal(f"{ir.name}: role mask names undeclared roles; use declared roles")


def last_member(ir: LifecycleIR) -> LifecycleError:
    return InvalidProposal(f"{ir.name}: the last member domain cannot be removed")


def founder_domain(ir: LifecycleIR) -> LifecycleError:
    return InvalidProposal(f"{ir.name}: a consortium's founding domain id must not be zero")


def unknown_role(ir: LifecycleIR) -> LifecycleError:
    return InvalidArgument(f"{ir.name}: unknown role index")


def too_many_inputs(ir: LifecycleIR) -> LifecycleError:
    return InvalidArgument(f"{ir.name}: at most {MAX_INPUTS} input references per step")


def locator_too_long(ir: LifecycleIR) -> LifecycleError:
    return InvalidArgument(f"{ir.name}: locator longer than {MAX_LOCATOR_BYTES} bytes")


# -- malformed arguments, refused before anything is signed (client) or changed (interpreter) --
# Never embedded in a contract: the contract only ever sees well-formed ABI words.
def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def bad_bytes32(ir: LifecycleIR, name: str, value: object) -> LifecycleError:
    got = f"{len(value)} bytes" if isinstance(value, bytes | bytearray) else type(value).__name__
    return InvalidArgument(
        f"{ir.name}: argument {name} must be exactly 32 bytes, got {got}; pass a 32-byte value "
        "(e.g. a SHA-256 digest), neither padded nor cut"
    )


def bad_address(ir: LifecycleIR, name: str, value: object) -> LifecycleError:
    return InvalidArgument(
        f"{ir.name}: argument {name} must be an address ('0x' and 40 hex digits), got "
        f"{_shown(value)}; pass the account's full address"
    )


def bad_checksum(ir: LifecycleIR, name: str, value: str) -> LifecycleError:
    return InvalidArgument(
        f"{ir.name}: argument {name} {value} fails its EIP-55 checksum (mixed case that does not "
        "match); copy the address again, or pass it all in lower case"
    )


def bad_role(ir: LifecycleIR, value: object) -> LifecycleError:
    return InvalidArgument(
        f"{ir.name}: argument role must be a role name or an index 0..{len(ir.roles) - 1}, got "
        f"{_shown(value)}; pass one of {', '.join(r.name for r in ir.roles)}"
    )


def bad_locator(ir: LifecycleIR, value: object) -> LifecycleError:
    got = "a string that is not valid UTF-8" if isinstance(value, str) else type(value).__name__
    return InvalidArgument(
        f"{ir.name}: argument locator must be a UTF-8 string, got {got}; pass a URI of at most "
        f"{MAX_LOCATOR_BYTES} UTF-8 bytes"
    )


def bad_inputs(ir: LifecycleIR, value: object) -> LifecycleError:
    return InvalidArgument(
        f"{ir.name}: argument inputs must be a list of 32-byte artefact ids, got "
        f"{type(value).__name__}; pass a list (or tuple) of ids"
    )
