"""Lifecycle events and the state they replay into.

The generated contract emits exactly these events; the reference interpreter records the same
ones.  :func:`replay` rebuilds a :class:`LifecycleSnapshot` from events alone, so that anyone
holding the event log can reproduce the contract's state without trusting a node.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from proml_sim.ir.model import LifecycleIR

ZERO32 = b"\x00" * 32


@dataclass(frozen=True)
class Registered:
    id: bytes
    registrant: str
    salt: bytes
    state: int
    digest: bytes
    locator: str
    inputs: tuple[bytes, ...]


@dataclass(frozen=True)
class Transitioned:
    id: bytes
    transition: int
    actor: str
    source: int
    target: int
    version: int
    digest: bytes
    locator: str
    inputs: tuple[bytes, ...]


@dataclass(frozen=True)
class Approved:
    id: bytes
    transition: int
    approver: str
    version: int
    digest: bytes
    count: int


@dataclass(frozen=True)
class RoleGranted:
    role: int
    account: str
    domain: bytes
    sender: str


@dataclass(frozen=True)
class RoleRevoked:
    role: int
    account: str
    sender: str


@dataclass(frozen=True)
class GovProposed:
    """A consortium proposal was opened (the proposer's domain votes for it at once)."""

    id: int
    kind: int
    domain: bytes
    account: str
    roles: int
    proposer: str
    epoch: int


@dataclass(frozen=True)
class GovVoted:
    id: int
    domain: bytes
    voter: str
    count: int


@dataclass(frozen=True)
class GovExecuted:
    """A proposal took effect; id 0 is the founding of the consortium by the deployer."""

    id: int
    kind: int
    domain: bytes
    account: str
    roles: int
    sender: str


LifecycleEvent = (
    Registered | Transitioned | Approved | RoleGranted | RoleRevoked | GovProposed | GovVoted
    | GovExecuted
)
EVENT_TYPES: dict[str, type] = {
    c.__name__: c
    for c in (Registered, Transitioned, Approved, RoleGranted, RoleRevoked, GovProposed,
              GovVoted, GovExecuted)
}
ZERO_ADDRESS = "0x" + "00" * 20
#: proposal status: open (may still expire: its epoch is not the current one), executed
OPEN, EXECUTED = 1, 2


@dataclass
class LifecycleSnapshot:
    """The observable state of one lifecycle contract.

    ``records``: artefact id -> (state index, version).  ``roles``: account -> role mask (only
    non-zero masks).  ``domains``: account -> trust domain (accounts ever granted a role).
    ``approvers``: approval key -> approver accounts in order.  ``last_actor``: (artefact id,
    transition index) -> account, for transitions named in a separation-of-duty rule.
    Consortium only: ``members``: member domain -> (roles it may hold, admin account);
    ``proposals``: id -> (kind, domain, account, roles, status, epoch, voting domains);
    ``epoch``: executed proposals so far (a proposal of another epoch has expired).
    """

    records: dict[bytes, tuple[int, int]] = field(default_factory=dict)
    roles: dict[str, int] = field(default_factory=dict)
    domains: dict[str, bytes] = field(default_factory=dict)
    approvers: dict[bytes, list[str]] = field(default_factory=dict)
    last_actor: dict[tuple[bytes, int], str] = field(default_factory=dict)
    members: dict[bytes, tuple[int, str]] = field(default_factory=dict)
    proposals: dict[int, tuple[int, bytes, str, int, int, int, tuple[bytes, ...]]] = field(
        default_factory=dict
    )
    epoch: int = 0

    def normalised(self) -> LifecycleSnapshot:
        return LifecycleSnapshot(
            records=dict(sorted(self.records.items())),
            roles={a: m for a, m in sorted(self.roles.items()) if m},
            domains=dict(sorted(self.domains.items())),
            approvers={k: list(v) for k, v in sorted(self.approvers.items()) if v},
            last_actor=dict(sorted(self.last_actor.items())),
            members=dict(sorted(self.members.items())),
            proposals=dict(sorted(self.proposals.items())),
            epoch=self.epoch,
        )


def apply_event(state: Any, ev: LifecycleEvent, sod: set[int] | frozenset[int]) -> None:
    """Apply one event's effect, without rule checks, to anything holding ``records``,
    ``roles``, ``domains``, ``approvers`` and ``last_actor`` (a snapshot or an interpreter).
    ``sod``: indices of transitions whose last actor is remembered."""
    from proml_sim.ir.interpreter import approval_key

    if isinstance(ev, Registered):
        state.records[ev.id] = (ev.state, 1)
    elif isinstance(ev, Transitioned):
        state.records[ev.id] = (ev.target, ev.version)
        if ev.transition in sod:
            state.last_actor[(ev.id, ev.transition)] = ev.actor
    elif isinstance(ev, Approved):
        key = approval_key(ev.id, ev.transition, ev.version, ev.digest)
        state.approvers.setdefault(key, []).append(ev.approver)
    elif isinstance(ev, RoleGranted):
        state.roles[ev.account] = state.roles.get(ev.account, 0) | (1 << ev.role)
        state.domains[ev.account] = ev.domain
    elif isinstance(ev, RoleRevoked):
        state.roles[ev.account] = state.roles.get(ev.account, 0) & ~(1 << ev.role)
    elif isinstance(ev, GovProposed):
        state.proposals[ev.id] = (ev.kind, ev.domain, ev.account, ev.roles, OPEN, ev.epoch, ())
    elif isinstance(ev, GovVoted):
        p = state.proposals.get(ev.id)
        if p is not None:  # a vote on no proposal (forged evidence) changes nothing
            state.proposals[ev.id] = (*p[:6], (*p[6], ev.domain))
    elif isinstance(ev, GovExecuted):
        apply_governance(state.members, ev.kind, ev.domain, ev.account, ev.roles)
        if ev.id and ev.id in state.proposals:
            state.proposals[ev.id] = (*state.proposals[ev.id][:4], EXECUTED,
                                      *state.proposals[ev.id][5:])
            state.epoch += 1


def apply_governance(
    members: dict[bytes, tuple[int, str]], kind: int, domain: bytes, account: str, roles: int
) -> None:
    """The effect of an executed proposal on the member table (domain -> (roles, admin)); one
    on a domain that is no member (forged evidence) changes nothing."""
    if kind == 1:  # add_domain
        members[domain] = (roles, account)
    elif domain not in members:
        return
    elif kind == 2:  # remove_domain
        del members[domain]
    elif kind == 3:  # rotate_admin
        members[domain] = (members[domain][0], account)
    else:  # set_roles
        members[domain] = (roles, members[domain][1])


def replay(
    ir: LifecycleIR, events: Iterable[LifecycleEvent], deployer: str | None = None
) -> LifecycleSnapshot:
    """Rebuild the contract state from its events alone (no rule checks: events are facts)."""
    snap = LifecycleSnapshot()
    sod = {ir.transition(n).index for n in ir.sod_targets}
    for ev in events:
        apply_event(snap, ev, sod)
    return snap.normalised()
