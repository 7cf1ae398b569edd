"""Pure-Python reference interpreter of a lifecycle IR: the oracle for the generated contract.

It enforces the same rules, in the same order, with the same exception types and messages as the
contract, and records the same events.  Rule order for a transition: artefact exists, sender
holds a ``by`` role, current state is a source, evidence digest present, separation of duty,
then (k > 1) approval bookkeeping.  Registration: role, evidence, id not taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_utils.address import is_hex_address, to_canonical_address, to_checksum_address
from eth_utils.crypto import keccak

from proml_sim.errors import InvalidArgument
from proml_sim.ir import messages as msg
from proml_sim.ir.events import (
    EXECUTED,
    OPEN,
    ZERO32,
    ZERO_ADDRESS,
    Approved,
    GovExecuted,
    GovProposed,
    GovVoted,
    LifecycleEvent,
    LifecycleSnapshot,
    Registered,
    RoleGranted,
    RoleRevoked,
    Transitioned,
)
from proml_sim.ir.model import (
    MAX_APPROVERS,
    MAX_DOMAINS,
    MAX_INPUTS,
    MAX_LOCATOR_BYTES,
    PROPOSAL_KINDS,
    LifecycleIR,
    TransitionIR,
)


def artefact_id(registrant: str, salt: bytes) -> bytes:
    """Artefact ids are bound to the registrant: keccak256(address ++ salt).

    A front-runner who copies a registration gets a *different* id, so ids cannot be squatted.
    """
    return keccak(to_canonical_address(registrant) + _b32(salt))


def approval_key(artefact: bytes, transition: int, version: int, digest: bytes) -> bytes:
    """Approvals count per (artefact, transition, version, evidence digest)."""
    return keccak(
        artefact + transition.to_bytes(32, "big") + version.to_bytes(32, "big") + _b32(digest)
    )


def _b32(b: bytes) -> bytes:
    if not isinstance(b, bytes | bytearray) or len(b) != 32:
        got = f"{len(b)} bytes" if isinstance(b, bytes | bytearray) else type(b).__name__
        raise InvalidArgument(
            f"expected 32 bytes, got {got}; pass a bytes32 value (e.g. a SHA-256 digest)"
        )
    return bytes(b)


# -- argument checks shared with the chain client -----------------------------------------------
# The client runs the same checks, in the same order, before it signs anything, so a malformed
# argument is the same InvalidArgument (same message) off chain and on chain, and never reaches
# the ABI encoder (which would pad a short bytes32, or fail with its own error).
def check_bytes32(ir: LifecycleIR, name: str, value: object) -> bytes:
    """``value`` as exactly 32 bytes, or :class:`InvalidArgument` naming ``name``."""
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise msg.bad_bytes32(ir, name, value)
    return bytes(value)


def check_address(ir: LifecycleIR, name: str, value: object) -> str:
    """``value`` as a checksummed address; a wrong EIP-55 checksum is refused, not ignored."""
    if not isinstance(value, str) or not value.startswith("0x") or not is_hex_address(value):
        raise msg.bad_address(ir, name, value)
    body, checked = value[2:], to_checksum_address(value)
    if body != body.lower() and body != body.upper() and value != checked:
        raise msg.bad_checksum(ir, name, value)
    return checked


def check_evidence(ir: LifecycleIR, locator: object, inputs: object) -> None:
    """The locator and input list of a step that carries evidence."""
    if not isinstance(inputs, list | tuple):
        raise msg.bad_inputs(ir, inputs)
    if len(inputs) > MAX_INPUTS:
        raise msg.too_many_inputs(ir)
    if not isinstance(locator, str):
        raise msg.bad_locator(ir, locator)
    try:
        size = len(locator.encode())
    except UnicodeEncodeError:
        raise msg.bad_locator(ir, locator) from None
    if size > MAX_LOCATOR_BYTES:
        raise msg.locator_too_long(ir)
    for k, i in enumerate(inputs):
        check_bytes32(ir, f"inputs[{k}]", i)


def check_register(
    ir: LifecycleIR, salt: object, digest: object, locator: object, inputs: object
) -> None:
    """All arguments of ``register``, in the order the client and interpreter check them."""
    check_evidence(ir, locator, inputs)
    check_bytes32(ir, "salt", salt)
    check_bytes32(ir, "digest", digest)


def check_fire(
    ir: LifecycleIR, t: TransitionIR, artefact: object, digest: object, locator: object,
    inputs: object,
) -> None:
    """All arguments of transition ``t``; a step without evidence must get none."""
    if not t.evidence and (digest != ZERO32 or locator or inputs):
        raise TypeError(f"{ir.name}.{t.name} takes no evidence; drop digest/locator/inputs")
    check_bytes32(ir, "artefact", artefact)
    if t.evidence:
        check_evidence(ir, locator, inputs)
        check_bytes32(ir, "digest", digest)


def check_role(ir: LifecycleIR, role: object) -> int:
    """The index of ``role`` (a name, or an index of a declared role)."""
    if isinstance(role, str):
        return ir.role(role).index
    if not isinstance(role, int) or isinstance(role, bool):
        raise msg.bad_role(ir, role)
    if not 0 <= role < len(ir.roles):
        raise msg.unknown_role(ir)
    return role


def check_kind(ir: LifecycleIR, kind: object) -> int:
    """A proposal kind: a name of :data:`PROPOSAL_KINDS` or its number (any other number is
    left for the contract to refuse, so both sides refuse it with the same words)."""
    if isinstance(kind, str):
        if kind not in PROPOSAL_KINDS:
            raise msg.bad_kind(ir)
        return PROPOSAL_KINDS[kind]
    if not isinstance(kind, int) or isinstance(kind, bool) or not 0 <= kind < 256:
        raise msg.bad_kind(ir)
    return kind


def check_uint(ir: LifecycleIR, name: str, value: object) -> int:
    """A uint256 argument (proposal id, role mask)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**256:
        raise InvalidArgument(
            f"{ir.name}: argument {name} must be an integer from 0 to 2**256-1, got "
            f"{value!r}; pass a non-negative integer"
        )
    return value


def check_propose(
    ir: LifecycleIR, kind: object, domain: object, account: object, roles: object
) -> tuple[int, bytes, str, int]:
    """All arguments of ``propose``, in the order the client and interpreter check them."""
    return (check_kind(ir, kind), check_bytes32(ir, "domain", domain),
            check_address(ir, "account", account), check_uint(ir, "roles", roles))


@dataclass(frozen=True)
class StepResult:
    """What one transition call did: fired (state changed) or recorded an approval."""

    fired: bool
    approvals: int
    required: int
    version: int  # artefact version after the call
    state: str


@dataclass(frozen=True)
class HistoryEntry:
    step: str  # "register" or a transition name
    actor: str
    source: str | None
    target: str
    version: int
    digest: bytes
    locator: str
    inputs: tuple[bytes, ...]


def history_from_events(
    ir: LifecycleIR, events: Sequence[LifecycleEvent], artefact: bytes
) -> list[HistoryEntry]:
    """The provenance trail of one artefact, from events (interpreter or chain alike)."""
    out: list[HistoryEntry] = []
    for ev in events:
        if isinstance(ev, Registered) and ev.id == artefact:
            out.append(
                HistoryEntry("register", ev.registrant, None, ir.state_by_index(ev.state).name, 1,
                             ev.digest, ev.locator, ev.inputs)
            )
        elif isinstance(ev, Transitioned) and ev.id == artefact:
            out.append(
                HistoryEntry(
                    ir.transitions[ev.transition].name, ev.actor,
                    ir.state_by_index(ev.source).name, ir.state_by_index(ev.target).name,
                    ev.version, ev.digest, ev.locator, ev.inputs,
                )
            )
    return out


class Interpreter:
    """One lifecycle "contract" held in Python memory.

    ``deployer`` receives the built-in admin role in ``admin_domain``, as the contract's
    constructor does.  A refused call raises the same
    :class:`~proml_sim.errors.LifecycleError` the contract reverts with.

    Example::

        >>> from proml_sim import Interpreter, build_ir
        >>> from proml_sim.lifecycles import SingleAdminDataset as Dataset
        >>> admin, lab, crowd = ("0x" + c * 40 for c in "abc")
        >>> ds = Interpreter(build_ir(Dataset), deployer=admin)
        >>> ds.grant(admin, "dataset_admin", lab)
        >>> ds.grant(lab, "labeller", crowd)  # the dataset admin hires a labeller
        >>> raw = ds.register(lab, bytes(32), digest=b"r" * 32)
        >>> ds.fire(crowd, "label", raw, digest=b"l" * 32)
        StepResult(fired=True, approvals=1, required=1, version=2, state='labelled')
        >>> ds.fire(crowd, "review", raw)  # a labeller may not review
        Traceback (most recent call last):
        ...
        proml_sim.errors.RoleNotAllowed: SingleAdminDataset.review needs role dataset_admin
        >>> _ = ds.fire(lab, "review", raw)
        >>> ds.state(raw), [h.step for h in ds.history(raw)]
        ('reviewed', ['register', 'label', 'review'])
    """

    def __init__(self, ir: LifecycleIR, deployer: str, admin_domain: bytes = ZERO32) -> None:
        if ir.consortium is not None and admin_domain == ZERO32:
            raise msg.founder_domain(ir)
        self.ir = ir
        self.records: dict[bytes, tuple[int, int]] = {}
        self.roles: dict[str, int] = {}
        self.domains: dict[str, bytes] = {}
        self.approvers: dict[bytes, list[str]] = {}
        self.last_actor: dict[tuple[bytes, int], str] = {}
        self.events: list[LifecycleEvent] = []
        self._sod = {ir.transition(n).index for n in ir.sod_targets}
        #: consortium state: member domain -> (roles it may hold, admin account); domain ids
        #: ever used; proposals (kind, domain, account, roles, status, epoch, voting domains)
        self.members: dict[bytes, tuple[int, str]] = {}
        self.used: set[bytes] = set()
        self.proposals: dict[int, tuple[int, bytes, str, int, int, int, tuple[bytes, ...]]] = {}
        self.epoch = 0
        founder = to_checksum_address(deployer)
        self._grant(founder, 0, admin_domain, founder)
        if ir.consortium is not None:
            mask = ir.founder_mask()
            self._apply(1, admin_domain, founder, mask)
            self.events.append(GovExecuted(0, 1, admin_domain, founder, mask, founder))

    # -- queries --------------------------------------------------------------------------------
    def state(self, artefact: bytes) -> str:
        return self.ir.state_by_index(self._record(artefact)[0]).name

    def version(self, artefact: bytes) -> int:
        return self._record(artefact)[1]

    def exists(self, artefact: bytes) -> bool:
        return check_bytes32(self.ir, "artefact", artefact) in self.records

    def has_role(self, account: str, role: str) -> bool:
        return bool(self.roles.get(to_checksum_address(account), 0) & self.ir.role(role).bit)

    def history(self, artefact: bytes) -> list[HistoryEntry]:
        self._record(artefact)
        return history_from_events(self.ir, self.events, artefact)

    def approvals(self, artefact: bytes, transition: str, digest: bytes = ZERO32) -> int:
        """Valid approvals counted now for the artefact's current version."""
        t = self.ir.transition(transition)
        key = approval_key(artefact, t.index, self.version(artefact), digest)
        return self._count(key, t)

    def effective_roles(self, account: str) -> int:
        """The roles ``account`` can use now: in a consortium, only those its domain may hold
        (none once its domain is removed)."""
        account = to_checksum_address(account)
        return self._eff(account)

    def snapshot(self) -> LifecycleSnapshot:
        return LifecycleSnapshot(
            records=dict(self.records),
            roles=dict(self.roles),
            domains=dict(self.domains),
            approvers={k: list(v) for k, v in self.approvers.items()},
            last_actor=dict(self.last_actor),
            members=dict(self.members),
            proposals=dict(self.proposals),
            epoch=self.epoch,
        ).normalised()

    # -- operations -----------------------------------------------------------------------------
    def register(
        self,
        sender: str,
        salt: bytes,
        digest: bytes = ZERO32,
        locator: str = "",
        inputs: Sequence[bytes] = (),
    ) -> bytes:
        ir = self.ir
        sender = to_checksum_address(sender)
        check_register(ir, salt, digest, locator, inputs)
        if ir.register_by and not self._eff(sender) & ir.role_mask(ir.register_by):
            raise msg.register_role(ir)
        if ir.register_evidence and digest == ZERO32:
            raise msg.register_evidence(ir)
        aid = artefact_id(sender, salt)
        if aid in self.records:
            raise msg.already_registered(ir)
        self.records[aid] = (ir.initial.index, 1)
        self.events.append(
            Registered(aid, sender, bytes(salt), ir.initial.index, bytes(digest), locator,
                       tuple(bytes(i) for i in inputs))
        )
        return aid

    def fire(
        self,
        sender: str,
        transition: str,
        artefact: bytes,
        digest: bytes = ZERO32,
        locator: str = "",
        inputs: Sequence[bytes] = (),
    ) -> StepResult:
        ir = self.ir
        t = ir.transition(transition)
        sender = to_checksum_address(sender)
        check_fire(ir, t, artefact, digest, locator, inputs)
        state, version = self._record(artefact)
        if not self._eff(sender) & ir.role_mask(t.by):
            raise msg.wrong_role(ir, t)
        if ir.state_by_index(state).name not in t.sources:
            raise msg.wrong_state(ir, t)
        if t.evidence and digest == ZERO32:
            raise msg.missing_evidence(ir, t)
        for other in t.separate_from:
            if self.last_actor.get((artefact, ir.transition(other).index)) == sender:
                raise msg.separation(ir, t, other)
        for other in t.separate_domain_from:
            last = self.last_actor.get((artefact, ir.transition(other).index))
            if last is not None and self.domains.get(last, ZERO32) == self.domains.get(
                sender, ZERO32
            ):
                raise msg.domain_separation(ir, t, other)
        count = 1
        if t.approvals > 1:
            key = approval_key(artefact, t.index, version, digest)
            count = self._approve(key, t, sender)
            self.events.append(Approved(artefact, t.index, sender, version, digest, count))
            if count < t.approvals:
                return StepResult(False, count, t.approvals, version, ir.state_by_index(state).name)
        target = ir.state(t.target).index
        self.records[artefact] = (target, version + 1)
        if t.index in self._sod:
            self.last_actor[(artefact, t.index)] = sender
        self.events.append(
            Transitioned(artefact, t.index, sender, state, target, version + 1, digest, locator,
                         tuple(inputs))
        )
        return StepResult(True, count, t.approvals, version + 1, t.target)

    def grant(self, sender: str, role: str | int, account: str, domain: bytes = ZERO32) -> None:
        idx = check_role(self.ir, role)
        account = check_address(self.ir, "account", account)
        domain = check_bytes32(self.ir, "domain", domain)
        sender = to_checksum_address(sender)
        if self.ir.consortium is None:
            self._check_admin(sender, idx)
        else:
            mine = self._sender_domain(sender, idx)
            if domain != mine:
                raise msg.other_domain(self.ir)
            if not self.members[mine][0] & (1 << idx):
                raise msg.domain_role(self.ir)
            if self.domains.get(account, ZERO32) not in (ZERO32, mine) or self._admin_domain(
                account
            ) not in (ZERO32, mine):
                raise msg.foreign_account(self.ir)
        self._grant(account, idx, domain, sender)

    def revoke(self, sender: str, role: str | int, account: str) -> None:
        idx = check_role(self.ir, role)
        account = check_address(self.ir, "account", account)
        sender = to_checksum_address(sender)
        if self.ir.consortium is None:
            self._check_admin(sender, idx)
        elif self.domains.get(account, ZERO32) != self._sender_domain(sender, idx):
            raise msg.foreign_account(self.ir)
        self.roles[account] = self.roles.get(account, 0) & ~(1 << idx)
        self.events.append(RoleRevoked(idx, account, sender))

    # -- consortium governance -----------------------------------------------------------------
    def propose(
        self, sender: str, kind: str | int, domain: bytes, account: str = ZERO_ADDRESS,
        roles: int = 0,
    ) -> int:
        """Open a proposal (a member domain's admin may); the proposer's domain votes for it.
        Returns the proposal id."""
        self._need_consortium()
        k, domain, account, roles = check_propose(self.ir, kind, domain, account, roles)
        sender = to_checksum_address(sender)
        mine = self._admin_domain(sender)
        if mine == ZERO32:
            raise msg.not_domain_admin(self.ir)
        self._check_proposal(k, domain, account, roles)
        pid = len(self.proposals) + 1
        self.proposals[pid] = (k, domain, account, roles, OPEN, self.epoch, (mine,))
        self.events.append(GovProposed(pid, k, domain, account, roles, sender, self.epoch))
        self.events.append(GovVoted(pid, mine, sender, 1))
        return pid

    def vote(self, sender: str, proposal: int) -> int:
        """Vote for a proposal as the admin of a member domain; returns its vote count."""
        self._need_consortium()
        pid = check_uint(self.ir, "proposal", proposal)
        sender = to_checksum_address(sender)
        mine = self._admin_domain(sender)
        if mine == ZERO32:
            raise msg.not_domain_admin(self.ir)
        p = self._proposal(pid)
        if mine in p[6]:
            raise msg.already_voted(self.ir)
        self.proposals[pid] = (*p[:6], (*p[6], mine))
        self.events.append(GovVoted(pid, mine, sender, len(p[6]) + 1))
        return len(p[6]) + 1

    def execute(self, sender: str, proposal: int) -> None:
        """Carry out a proposal that a quorum of member domains voted for (anyone may)."""
        self._need_consortium()
        pid = check_uint(self.ir, "proposal", proposal)
        sender = to_checksum_address(sender)
        k, domain, account, roles, _status, ep, votes = self._proposal(pid)
        if len(votes) < self.quorum():
            raise msg.quorum_not_reached(self.ir)
        self._check_proposal(k, domain, account, roles)
        self._apply(k, domain, account, roles)
        self.proposals[pid] = (k, domain, account, roles, EXECUTED, ep, votes)
        self.epoch += 1
        self.events.append(GovExecuted(pid, k, domain, account, roles, sender))

    def quorum(self) -> int:
        """Votes a proposal needs now: the declared quorum, or every member while fewer."""
        c = self.ir.consortium
        return min(c.quorum, len(self.members)) if c is not None else 0

    def _need_consortium(self) -> None:
        if self.ir.consortium is None:
            raise msg.no_consortium(self.ir)

    def _proposal(self, pid: int) -> tuple[int, bytes, str, int, int, int, tuple[bytes, ...]]:
        p = self.proposals.get(pid)
        if p is None:
            raise msg.unknown_proposal(self.ir)
        if p[4] != OPEN or p[5] != self.epoch:
            raise msg.proposal_closed(self.ir)
        return p

    def _check_proposal(self, k: int, domain: bytes, account: str, roles: int) -> None:
        ir = self.ir
        if not 1 <= k <= len(PROPOSAL_KINDS):
            raise msg.bad_kind(ir)
        if k == 1 and len(self.members) >= MAX_DOMAINS:
            raise msg.consortium_full(ir)
        if k == 1 and (domain == ZERO32 or domain in self.used):
            raise msg.domain_taken(ir)
        if k != 1 and domain not in self.members:
            raise msg.not_member(ir)
        if k == 2 and len(self.members) < 2:
            raise msg.last_member(ir)
        if k in (1, 3):
            bound = self.domains.get(account, ZERO32)
            if account == ZERO_ADDRESS or self._admin_domain(account) != ZERO32 or bound not in (
                ZERO32, domain if k == 3 else ZERO32
            ):
                raise msg.bad_new_admin(ir)
        if k in (1, 4) and roles >> len(ir.roles):
            raise msg.bad_role_mask(ir)

    def _apply(self, k: int, domain: bytes, account: str, roles: int) -> None:
        from proml_sim.ir.events import apply_governance

        if k == 1:
            self.used.add(domain)
        apply_governance(self.members, k, domain, account, roles)

    def _admin_domain(self, account: str) -> bytes:
        for d, (_roles, admin) in self.members.items():
            if admin == account:
                return d
        return ZERO32

    def _sender_domain(self, sender: str, idx: int) -> bytes:
        """The domain ``sender`` may manage role ``idx`` in: the one it administers, else its
        own if it holds (effectively) the admin role of that role."""
        mine = self._admin_domain(sender)
        if mine != ZERO32:
            return mine
        admin = self.ir.role(self.ir.roles[idx].admin).bit
        if not self._eff(sender) & admin:
            raise msg.not_role_admin(self.ir)
        return self.domains.get(sender, ZERO32)

    # -- internals -----------------------------------------------------------------------------
    def _eff(self, account: str) -> int:
        roles = self.roles.get(account, 0)
        if self.ir.consortium is None:
            return roles
        member = self.members.get(self.domains.get(account, ZERO32))
        return roles & member[0] if member is not None else 0

    def _record(self, artefact: bytes) -> tuple[int, int]:
        check_bytes32(self.ir, "artefact", artefact)
        try:
            return self.records[artefact]
        except KeyError:
            raise msg.unknown_artefact(self.ir) from None

    def _check_admin(self, sender: str, idx: int) -> None:
        admin = self.ir.role(self.ir.roles[idx].admin).bit
        if not self.roles.get(sender, 0) & admin:
            raise msg.not_role_admin(self.ir)

    def _grant(self, account: str, idx: int, domain: bytes, sender: str) -> None:
        self.roles[account] = self.roles.get(account, 0) | (1 << idx)
        self.domains[account] = domain
        self.events.append(RoleGranted(idx, account, domain, sender))

    def _approve(self, key: bytes, t: TransitionIR, sender: str) -> int:
        """Record ``sender``'s approval; return the valid count including it (contract mirror)."""
        entries = self.approvers.get(key, [])
        mask = self.ir.role_mask(t.by)
        mine = self.domains.get(sender, ZERO32)
        seen = [mine]
        count = 1
        for a in entries:
            if a == sender:
                raise msg.already_approved(self.ir, t)
            if not self._eff(a) & mask:
                continue  # revoked (or its domain removed) since approving: no longer counts
            if t.count == "domains":
                d = self.domains.get(a, ZERO32)
                if d in seen:
                    if d == mine:
                        raise msg.already_approved(self.ir, t)
                    continue
                seen.append(d)
            count += 1
        if len(entries) >= MAX_APPROVERS:
            raise msg.approvals_full(self.ir, t)
        self.approvers.setdefault(key, []).append(sender)
        return count

    def _count(self, key: bytes, t: TransitionIR) -> int:
        mask = self.ir.role_mask(t.by)
        seen: list[bytes] = []
        count = 0
        for a in self.approvers.get(key, []):
            if not self._eff(a) & mask:
                continue
            if t.count == "domains":
                d = self.domains.get(a, ZERO32)
                if d in seen:
                    continue
                seen.append(d)
            count += 1
        return count
