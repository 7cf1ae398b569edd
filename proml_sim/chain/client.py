"""A Python client for one deployed lifecycle contract, on any :class:`ChainBackend`.

Every write is a real signed transaction from a key the caller holds (a ``Signer`` from its
``KeyRing``); a revert is decoded into the same :class:`~proml_sim.errors.LifecycleError` type
and message that the reference interpreter raises for the same call.

Two modes: ``automine=True`` produces a block after each write and returns the decoded result
(tests, scripts); ``automine=False`` returns a :class:`PendingOp` at once, and the caller (for
instance the simulator) produces blocks and later calls :meth:`LifecycleClient.result`.

A call that would revert is still sent (and pays its gas on chain, as an attacker's attempt
would) unless ``preflight=True``, which raises the decoded error at once without sending, as
wallets do.

One client serves the three contract layouts (``proml_sim.codegen.LAYOUTS``) with the same API
and the same exceptions.  ``registry``: every call goes to the one contract.  ``factory`` and
``clone``: ``address`` is the factory; registration, roles and role views go to it, and a
transition (or an artefact view) goes to the artefact's own contract, whose address the client
computes from the factory, the id and the contract's code exactly as ``CREATE2`` does, so it can
address an artefact whose registration is still pending.  A transition on an id that has no
contract yet, and is not being registered by this client, is sent to the factory, which reverts
with ``UnknownArtefact`` as the registry would; one that reaches an address without code after
all (its registration failed, or the chain was reverted) is a no-op on chain, and the client
raises the same ``UnknownArtefact`` for it.  The route is chosen when the call is submitted: a
transition submitted before this client knows of the artefact's registration (neither mined nor
submitted through it) fails even if another client's registration lands first in the same
block, where the registry would order them.  Events are read from the factory and from the
contracts it created (its ``ArtefactCreated`` log), each for the artefact it was created for,
never from other contracts emitting look-alike events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address

from proml_sim.chain.abi import ContractABI, EventCodec
from proml_sim.chain.accounts import submit_signed
from proml_sim.chain.base import ChainBackend, Receipt
from proml_sim.chain.trie import keccak, rlp_encode_bytes, rlp_encode_list
from proml_sim.compiler import MAX_CODE_SIZE, CompiledContract, compile_artefact
from proml_sim.errors import (
    ContractTooLarge,
    LifecycleError,
    TransactionFailed,
    lifecycle_error_from_reason,
)
from proml_sim.ir import (
    EVENT_TYPES,
    ZERO32,
    GovExecuted,
    GovProposed,
    GovVoted,
    HistoryEntry,
    LifecycleEvent,
    LifecycleIR,
    LifecycleSnapshot,
    Registered,
    RoleGranted,
    RoleRevoked,
    StepResult,
    Transitioned,
    artefact_id,
    build_ir,
    history_from_events,
)
from proml_sim.ir import messages as msg
from proml_sim.ir.events import ZERO_ADDRESS
from proml_sim.ir.interpreter import (
    check_address,
    check_bytes32,
    check_fire,
    check_propose,
    check_register,
    check_role,
    check_uint,
)

#: Gas limit for a call whose estimate reverts and that is sent anyway (``preflight=False``): the
#: revert then happens on chain, pays its gas, and is decoded from the receipt.
REVERT_GAS = 250_000
#: Gas limit for a transition sent to an artefact contract that does not exist yet (its
#: registration is pending in the same block, so it cannot be estimated): enough for any
#: transition of the per-artefact layouts, including 16 approvers.
UNDEPLOYED_GAS = 400_000
#: Gas added to an estimate when the call will not run right after it (automine off, or other
#: transactions already pending): the transactions mined before it in the same block may make it
#: dearer (a zero storage slot becomes non-zero, an approver list grows by up to 16 entries).
#: Unused gas is not paid for; too little would end the call out of gas instead of with its
#: lifecycle result.  A backend with its own gas policy says so with a ``gas_headroom``
#: attribute (the simulator's gateway: 0, as its blocks are packed by gas limit).
PENDING_HEADROOM = 150_000
#: Gas limit for a call whose estimate reverts at the latest state but that runs behind other
#: pending transactions, which may make it succeed (a grant earlier in the same block): enough
#: for the dearest successful call, a factory-layout registration that deploys its artefact
#: contract (1.82M gas measured, docs/design.md "Measured gas per layout").
LATER_GAS = 2_500_000
#: The layouts this client drives (``proml_sim.codegen.LAYOUTS``) and the per-artefact part of each.
LAYOUTS = ("registry", "factory", "clone")
_HEADER_LAYOUT = "# Contract layout: "
#: ERC-5202 blueprint preamble (magic 0xFE71, version 0, no data section); Vyper's
#: ``create_from_blueprint`` skips these 3 bytes by default.
BLUEPRINT_PREAMBLE = b"\xfe\x71\x00"
#: EIP-1167 minimal proxy init code around the implementation address, as Vyper 0.4 emits it for
#: ``create_minimal_proxy_to`` (loader + forwarder prefix, address, forwarder suffix).
EIP1167_PREFIX = bytes.fromhex("602d3d8160093d39f3" "363d3d373d3d3d363d73")
EIP1167_SUFFIX = bytes.fromhex("5af43d82803e903d91602b57fd5bf3")


@dataclass(frozen=True)
class CompiledLayout:
    """The compiled contracts of one lifecycle in one contract layout.

    ``main`` is the contract a client talks to first (the registry, or the factory);
    ``artefact`` is the per-artefact contract of the factory and clone layouts (the blueprint's
    init code, or the clones' implementation), ``None`` for the registry.
    """

    layout: str
    main: CompiledContract
    artefact: CompiledContract | None = None

    @property
    def ir(self) -> LifecycleIR:
        assert self.main.ir is not None
        return self.main.ir

    @property
    def name(self) -> str:
        return self.main.name


def compile_layout(
    lifecycle: Any, layout: str = "registry", *, use_cache: bool = True
) -> CompiledLayout:
    """Generate and compile every contract of ``lifecycle`` (a DSL class or an IR) in ``layout``."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown contract layout {layout!r}; choose one of {LAYOUTS}")
    ir = build_ir(lifecycle)
    main = compile_artefact(ir, layout=layout, use_cache=use_cache)
    if layout == "registry":
        return CompiledLayout(layout, main)
    part = compile_artefact(ir, layout=f"{layout}.artefact", use_cache=use_cache)
    return CompiledLayout(layout, main, part)


def layout_of(compiled: CompiledContract) -> str:
    """The layout part a compiled lifecycle contract is (``"registry"``, ``"factory"``,
    ``"factory.artefact"``, ...), from its generated header."""
    for line in compiled.source.splitlines()[:8]:
        if line.startswith(_HEADER_LAYOUT):
            return line[len(_HEADER_LAYOUT):].split(" ", 1)[0]
    return "registry"


def as_layout(
    compiled: CompiledContract | CompiledLayout, layout: str | None = None
) -> CompiledLayout:
    """A :class:`CompiledLayout` for ``compiled``: itself, or the layout of a compiled contract
    (``layout`` overrides it: a lifecycle compiled for the registry is recompiled, from its IR,
    for another layout)."""
    if isinstance(compiled, CompiledLayout):
        if layout is not None and layout != compiled.layout:
            return compile_layout(compiled.ir, layout)
        return compiled
    if compiled.ir is None:
        raise ValueError("LifecycleClient needs a contract compiled from a lifecycle IR")
    have = layout_of(compiled)
    want = layout or have.partition(".")[0]
    if want == have == "registry":
        return CompiledLayout("registry", compiled)
    if want == have:  # the main contract of a factory or clone layout
        part = compile_artefact(compiled.ir, layout=f"{want}.artefact")
        return CompiledLayout(want, compiled, part)
    return compile_layout(compiled.ir, want)


def create_address(sender: str, nonce: int) -> str:
    """Address of the contract created by ``sender``'s transaction with ``nonce`` (CREATE)."""
    nb = nonce.to_bytes((nonce.bit_length() + 7) // 8, "big") if nonce else b""
    payload = rlp_encode_bytes(bytes.fromhex(sender[2:])) + rlp_encode_bytes(nb)
    return to_checksum_address(keccak(rlp_encode_list(payload))[12:])


def create2_address(deployer: str, salt: bytes, initcode_hash: bytes) -> str:
    """Address of a contract created by ``deployer`` with CREATE2 (EIP-1014)."""
    raw = keccak(b"\xff" + bytes.fromhex(deployer[2:]) + salt + initcode_hash)
    return to_checksum_address(raw[12:])


def blueprint_deploy_code(initcode: bytes) -> bytes:
    """Init code that deploys ``initcode`` as an ERC-5202 blueprint (never executable itself)."""
    body = BLUEPRINT_PREAMBLE + initcode
    # PUSH2 len, RETURNDATASIZE, DUP2, PUSH1 10, RETURNDATASIZE, CODECOPY, RETURN: copy the 10
    # bytes after this loader to memory 0 and return them as the runtime code
    return b"\x61" + len(body).to_bytes(2, "big") + bytes.fromhex("3d81600a3d39f3") + body


def eip1167_initcode(implementation: str) -> bytes:
    """Init code of an EIP-1167 minimal proxy to ``implementation`` (as Vyper creates it)."""
    return EIP1167_PREFIX + bytes.fromhex(implementation[2:]) + EIP1167_SUFFIX


@dataclass(frozen=True)
class PendingOp:
    """A submitted lifecycle call; ``decode`` turns its receipt into the call's result."""

    tx_hash: bytes
    kind: str
    decode: Callable[[Receipt], Any]
    data: bytes = b""


class LifecycleClient:
    """Operations on a deployed lifecycle at ``address`` (the registry, or the factory).

    ``compiled``: a :class:`CompiledLayout`, or the :class:`CompiledContract` of the registry or
    of a factory (the layout is read from its header and the artefact contract compiled).
    """

    def __init__(
        self,
        backend: ChainBackend,
        compiled: CompiledContract | CompiledLayout,
        address: str,
        *,
        automine: bool = True,
        preflight: bool = False,
    ) -> None:
        if isinstance(compiled, CompiledContract) and compiled.ir is None:
            raise ValueError("LifecycleClient needs a contract compiled from a lifecycle IR")
        self.bundle = as_layout(compiled)
        self.layout = self.bundle.layout
        self.backend = backend
        self.compiled = self.bundle.main
        self.ir: LifecycleIR = self.bundle.ir
        self.address = to_checksum_address(address)
        self.automine = automine
        self.preflight = preflight
        self.abi = list(self.compiled.abi)
        self.codec = EventCodec(self.abi)
        self.contract_abi = ContractABI(self.abi)
        self._registry = self.layout == "registry"
        #: the ABI of the contract that runs transitions (the registry, or an artefact contract)
        self.transition_abi = self.contract_abi
        if not self._registry:
            assert self.bundle.artefact is not None
            art_abi = list(self.bundle.artefact.abi)
            self.artefact_codec = EventCodec(art_abi)
            self.artefact_abi = ContractABI(art_abi)
            self.transition_abi = self.artefact_abi
            self._created_topic = self.codec.topic("ArtefactCreated")
            template = to_checksum_address(
                self._view("IMPLEMENTATION" if self.layout == "clone" else "BLUEPRINT")
            )
            self.template = template
            self._initcode = (
                eip1167_initcode(template) if self.layout == "clone"
                else self.bundle.artefact.bytecode
            )
            self._addresses: dict[bytes, str] = {}
            self._pending_ids: set[bytes] = set()

    # -- deployment -------------------------------------------------------------------------------
    @classmethod
    def deploy(
        cls,
        backend: ChainBackend,
        compiled: CompiledContract | CompiledLayout,
        deployer: Any,
        admin_domain: bytes = ZERO32,
        *,
        automine: bool = True,
        timestamp: int | None = None,
        layout: str | None = None,
    ) -> LifecycleClient:
        """Deploy ``compiled`` from ``deployer`` (a Signer), who becomes its admin.

        ``layout`` (``"registry"``, ``"factory"``, ``"clone"``) defaults to the layout
        ``compiled`` was generated for.  The factory and clone layouts take two transactions in
        two blocks: the artefact contract's template (blueprint, or clone implementation, which
        is told the factory's address: the deployer's next CREATE address), then the factory.
        """
        from eth_abi.abi import encode

        bundle = as_layout(compiled, layout)
        if bundle.ir.consortium is not None and admin_domain == ZERO32:
            raise msg.founder_domain(bundle.ir)  # as the constructor would, without paying gas
        check_code_size(bundle)
        if bundle.layout == "registry":
            compiled = bundle.main
            data = compiled.bytecode + encode(["bytes32"], [admin_domain])
            address = _deploy(backend, deployer, data, timestamp, compiled.name)
            return cls(backend, bundle, address, automine=automine)
        assert bundle.artefact is not None
        nonce = backend.next_nonce(deployer.address)
        if bundle.layout == "clone":
            factory = create_address(deployer.address, nonce + 1)
            data = bundle.artefact.bytecode + encode(["address"], [factory])
        else:
            data = blueprint_deploy_code(bundle.artefact.bytecode)
        what = f"{bundle.name} {bundle.layout}"
        template = _deploy(backend, deployer, data, timestamp, f"{what} template")
        data = bundle.main.bytecode + encode(["bytes32", "address"], [admin_domain, template])
        address = _deploy(
            backend, deployer, data, None if timestamp is None else timestamp + 1,
            f"{what} factory",
        )
        return cls(backend, bundle, address, automine=automine)

    # -- writes -----------------------------------------------------------------------------------
    def register(
        self,
        signer: Any,
        salt: bytes,
        digest: bytes = ZERO32,
        locator: str = "",
        inputs: Sequence[bytes] = (),
        *,
        gas: int | None = None,
    ) -> Any:
        """Register an artefact; returns its id (bound to the signer's address and ``salt``)."""
        check_register(self.ir, salt, digest, locator, inputs)
        data = self.contract_abi.encode_call("register", [salt, digest, locator, list(inputs)])
        if self._registry:

            def decode(receipt: Receipt) -> bytes:
                for name, args in self._decoded(receipt):
                    if name == "Registered":
                        return bytes(args["id"])
                raise TransactionFailed("registration emitted no Registered event", receipt)

            return self._write(signer, data, gas, "register", decode)

        aid = artefact_id(signer.address, salt)
        self._pending_ids.add(aid)

        def decode_created(receipt: Receipt) -> bytes:
            self._pending_ids.discard(aid)
            for name, args in self._decoded(receipt):
                if name == "ArtefactCreated":
                    created = to_checksum_address(args["artefact"])
                    if bytes(args["id"]) != aid or created != self.artefact_address(aid):
                        raise TransactionFailed(
                            f"{self.ir.name}: the factory created {created} for this id, not the "
                            f"address the client computes; client and factory disagree", receipt
                        )
                    return aid
            raise TransactionFailed("registration emitted no ArtefactCreated event", receipt)

        try:
            return self._write(signer, data, gas, "register", decode_created)
        except BaseException:
            self._pending_ids.discard(aid)
            raise

    def fire(
        self,
        signer: Any,
        transition: str,
        artefact: bytes,
        digest: bytes = ZERO32,
        locator: str = "",
        inputs: Sequence[bytes] = (),
        *,
        gas: int | None = None,
    ) -> Any:
        """Fire (or, for k-of-n transitions, approve) ``transition``; returns a StepResult."""
        t = self.ir.transition(transition)
        abi = self.transition_abi
        check_fire(self.ir, t, artefact, digest, locator, inputs)
        if t.evidence:
            data = abi.encode_call(t.name, [artefact, digest, locator, list(inputs)])
        else:
            data = abi.encode_call(t.name, [artefact])
        to = self.address if self._registry else self._route(artefact)

        def decode(receipt: Receipt) -> StepResult:
            # Everything comes from this receipt's logs (and, for the state of an approval that
            # did not fire, from earlier logs): never from a view of a later state, which with
            # automine off may already include later transitions of the same artefact.
            count = 1
            approved: dict[str, Any] | None = None
            decoded = self._decoded(receipt, to)
            for name, args in decoded:
                if name == "Approved":
                    approved = args
                    count = args["count"]
                elif name == "Transitioned":
                    return StepResult(True, count, t.approvals, args["version"], t.target)
            if approved is None:
                # a transition that succeeds emits Approved or Transitioned; one that emitted
                # nothing ran no code: there was no artefact contract at that address
                raise msg.unknown_artefact(self.ir)
            version = int(approved["version"])
            state = self._state_at_version(to, artefact, version, t.sources, receipt.block_number)
            return StepResult(False, count, t.approvals, version, state)

        return self._write(signer, data, gas, t.name, decode, to)

    def approve(self, signer: Any, transition: str, artefact: bytes, *args: Any, **kw: Any) -> Any:
        """Approve a k-of-n transition (the k-th approval fires it)."""
        t = self.ir.transition(transition)
        if t.approvals < 2:
            raise ValueError(
                f"{self.ir.name}.{t.name} needs no approvals (approvals=1); use fire()"
            )
        return self.fire(signer, transition, artefact, *args, **kw)

    def grant(
        self,
        signer: Any,
        role: str | int,
        account: str,
        domain: bytes = ZERO32,
        *,
        gas: int | None = None,
    ) -> Any:
        """Grant ``role`` to ``account`` in trust ``domain`` (the role's admin may)."""
        args = [
            check_role(self.ir, role),
            check_address(self.ir, "account", account),
            check_bytes32(self.ir, "domain", domain),
        ]
        data = self.contract_abi.encode_call("grant_role", args)
        return self._write(signer, data, gas, "grant_role", lambda r: None)

    def revoke(self, signer: Any, role: str | int, account: str, *, gas: int | None = None) -> Any:
        """Revoke ``role`` from ``account`` (the role's admin may)."""
        args = [check_role(self.ir, role), check_address(self.ir, "account", account)]
        data = self.contract_abi.encode_call("revoke_role", args)
        return self._write(signer, data, gas, "revoke_role", lambda r: None)

    # -- consortium governance (the registry, or the factory) --------------------------------------
    def propose(
        self,
        signer: Any,
        kind: str | int,
        domain: bytes,
        account: str = ZERO_ADDRESS,
        roles: int = 0,
        *,
        gas: int | None = None,
    ) -> Any:
        """Open a consortium proposal (``kind``: add_domain, remove_domain, rotate_admin,
        set_roles) as a member domain's admin; returns its id.  The proposer's domain votes."""
        self._need_consortium()
        args = list(check_propose(self.ir, kind, domain, account, roles))
        data = self.contract_abi.encode_call("gov_propose", args)
        return self._write(signer, data, gas, "gov_propose", lambda r: self._gov_log(
            r, "GovProposed", "id"))

    def vote(self, signer: Any, proposal: int, *, gas: int | None = None) -> Any:
        """Vote for a proposal as a member domain's admin; returns its vote count."""
        self._need_consortium()
        pid = check_uint(self.ir, "proposal", proposal)
        data = self.contract_abi.encode_call("gov_vote", [pid])
        return self._write(signer, data, gas, "gov_vote", lambda r: self._gov_log(
            r, "GovVoted", "count"))

    def execute(self, signer: Any, proposal: int, *, gas: int | None = None) -> Any:
        """Carry out a proposal a quorum of member domains voted for (anyone may)."""
        self._need_consortium()
        pid = check_uint(self.ir, "proposal", proposal)
        data = self.contract_abi.encode_call("gov_execute", [pid])
        return self._write(signer, data, gas, "gov_execute", lambda r: None)

    def votes(self, proposal: int) -> tuple[bytes, ...]:
        """The member domains (32-byte ids) that voted for ``proposal`` so far, its proposer's
        first; the contract executes it once ``min(quorum, members)`` have."""
        self._need_consortium()
        return tuple(bytes(v) for v in self._view("gov_votes_of",
                                                  check_uint(self.ir, "proposal", proposal)))

    def member(self, domain: bytes) -> tuple[int, str] | None:
        """``(roles it may hold, admin account)`` of a member trust domain of this consortium
        (a 32-byte domain id), None when ``domain`` is not a member.

        Example: ``client.member(domain_id("org-1"))`` is ``(mask, "0xAb...")`` once org-1 is
        admitted."""
        self._need_consortium()
        if not self._view("gov_member", domain):
            return None
        return int(self._view("gov_allowed", domain)), to_checksum_address(
            self._view("gov_admin_of", domain))

    def effective_roles(self, account: str) -> int:
        """The roles ``account`` can use now (with a consortium: those its domain may hold)."""
        account = check_address(self.ir, "account", account)
        if self.ir.consortium is None:
            return self.roles_of(account)
        return int(self._view("effective_roles", account))

    def _need_consortium(self) -> None:
        if self.ir.consortium is None:
            raise msg.no_consortium(self.ir)

    def _gov_log(self, receipt: Receipt, event: str, field: str) -> int:
        for name, args in self._decoded(receipt):
            if name == event:
                return int(args[field])
        raise TransactionFailed(f"{self.ir.name}: the call emitted no {event} event", receipt)

    def read_governance(self, snap: LifecycleSnapshot, domains: set[bytes]) -> None:
        """Fill ``snap``'s consortium part from the contract: which of ``domains`` are members
        (with their allowed roles and admin), every proposal (kind, domain, account, roles,
        status, epoch, votes) and the governance epoch."""
        from proml_sim.ir.events import EXECUTED, OPEN

        for d in domains:
            member = self.member(d)
            if member is not None:
                snap.members[d] = member
        for pid in range(1, int(self._view("gov_proposals")) + 1):
            kind, domain, account, roles, status, epoch = self._view("gov_proposal", pid)
            votes = self.votes(pid)
            assert status in (OPEN, EXECUTED)
            snap.proposals[pid] = (int(kind), bytes(domain), to_checksum_address(account),
                                   int(roles), int(status), int(epoch), votes)
        snap.epoch = int(self._view("gov_epoch"))

    def send_raw(
        self, signer: Any, data: bytes, gas: int | None = None, kind: str = "raw"
    ) -> Any:
        """Send arbitrary calldata to the lifecycle contract as ``signer``; its result is None.
        A revert raises the lifecycle error for a lifecycle reason, else TransactionFailed.
        For probing the contract with calls its ABI does not offer, as an attacker would:
        unknown selectors, extra words."""
        return self._write(signer, bytes(data), gas, kind, lambda r: None)

    def result(self, op: PendingOp) -> Any:
        """The decoded result of a mined PendingOp; raises the lifecycle error if it reverted."""
        receipt = self.backend.receipt(op.tx_hash)
        if receipt is None:
            raise TransactionFailed(f"{op.kind} transaction {op.tx_hash.hex()} is not mined yet")
        self._raise_for(receipt, op.kind)
        return op.decode(receipt)

    # -- per-artefact contracts (factory and clone layouts) ---------------------------------------
    def artefact_address(self, artefact: bytes) -> str:
        """The contract that holds ``artefact``: the registry itself, or the address the
        factory creates (or created) for that id.  Whether code is there yet is not checked."""
        if self._registry:
            return self.address
        addr = self._addresses.get(artefact)
        if addr is None:
            if self.layout == "clone":
                init_hash = keccak(self._initcode)
            else:  # create_from_blueprint appends the ABI-encoded constructor argument (the id)
                init_hash = keccak(self._initcode + artefact)
            addr = create2_address(self.address, artefact, init_hash)
            self._addresses[artefact] = addr
        return addr

    def _route(self, artefact: bytes) -> str:
        addr = self.artefact_address(artefact)
        if artefact in self._pending_ids or self.backend.code(addr):
            return addr
        return self.address  # the factory refuses it with UnknownArtefact, as the registry does

    # -- reads ----------------------------------------------------------------------------------
    def _view(self, fn: str, *args: Any) -> Any:
        res = self.backend.call(self.address, self.contract_abi.encode_call(fn, list(args)))
        if not res.success:
            raise TransactionFailed(f"view {fn} reverted: {res.revert_reason}")
        return self.contract_abi.decode_output(fn, res.output)

    def _aview(self, fn: str, artefact: bytes, *args: Any) -> Any:
        """A view of the contract holding ``artefact`` (``None``: there is no such contract)."""
        check_bytes32(self.ir, "artefact", artefact)
        if self._registry:
            return self._view(fn, artefact, *args)
        res = self.backend.call(
            self.artefact_address(artefact), self.artefact_abi.encode_call(fn, [artefact, *args])
        )
        if not res.success:
            raise TransactionFailed(f"view {fn} reverted: {res.revert_reason}")
        if not res.output:
            return None  # no code at the address: not registered
        return self.artefact_abi.decode_output(fn, res.output)

    def exists(self, artefact: bytes) -> bool:
        return int(self._aview("state_of", artefact) or 0) != 0

    def state(self, artefact: bytes) -> str:
        s = int(self._aview("state_of", artefact) or 0)
        if s == 0:
            raise msg.unknown_artefact(self.ir)
        return self.ir.state_by_index(s).name

    def version(self, artefact: bytes) -> int:
        if not self.exists(artefact):
            raise msg.unknown_artefact(self.ir)
        return int(self._aview("version_of", artefact))

    def roles_of(self, account: str) -> int:
        return int(self._view("roles", check_address(self.ir, "account", account)))

    def has_role(self, account: str, role: str) -> bool:
        return bool(self.roles_of(account) & self.ir.role(role).bit)

    def domain_of(self, account: str) -> bytes:
        return bytes(self._view("domains", check_address(self.ir, "account", account)))

    def artefact_id(self, registrant: str, salt: bytes) -> bytes:
        registrant = check_address(self.ir, "registrant", registrant)
        return bytes(self._view("artefact_id", registrant, check_bytes32(self.ir, "salt", salt)))

    def fingerprint(self) -> str:
        return bytes(self._view("IR_FINGERPRINT")).hex()

    def events(self, from_block: int = 0, to_block: int | None = None,
               topics: list[bytes | None] | None = None) -> list[LifecycleEvent]:
        """All lifecycle events of this lifecycle, in chain order (only those whose topics match
        ``topics``, position by position, if given: an indexed query on a chain store)."""
        out: list[LifecycleEvent] = []
        if self._registry:
            for log in self.backend.logs(self.address, from_block, to_block, topics):
                if not self.codec.knows(log.topics):
                    continue
                name, args = self.codec.decode_log(log)
                out.append(event_from_args(name, args))
            return out
        # only the factory and the contracts it created (whatever block they were created in),
        # each artefact contract for its own artefact only: an event it logs in another id's
        # name is not that artefact's history, whatever the contract's code let through
        created: dict[str, bytes] = {
            to_checksum_address(log.topics[2][12:]): bytes(log.topics[1])
            for log in self.backend.logs(self.address, 0, to_block, [self._created_topic])
        }
        for log in self.backend.logs(None, from_block, to_block, topics):
            if log.address == self.address:
                codec = self.codec
            elif log.address in created:
                codec = self.artefact_codec
            else:
                continue
            if not codec.knows(log.topics):
                continue
            name, args = codec.decode_log(log)
            if name not in EVENT_TYPES:
                continue
            ev = event_from_args(name, args)
            if log.address != self.address and getattr(ev, "id", None) != created[log.address]:
                continue
            out.append(ev)
        return out

    def history(self, artefact: bytes) -> list[HistoryEntry]:
        check_bytes32(self.ir, "artefact", artefact)
        # every event of an artefact has its id as topic1: read only those.  An artefact exists
        # exactly when its registration was mined, so no events means unknown, as the contract's
        # own check would say; reading only logs needs no EVM (fast read-only commands)
        events = self.events(topics=[None, artefact])
        if not any(isinstance(ev, Registered) for ev in events):
            raise msg.unknown_artefact(self.ir)
        return history_from_events(self.ir, events, artefact)

    def snapshot(self) -> LifecycleSnapshot:
        """Contract storage read through views, for every id/account/key the events mention."""
        from proml_sim.ir import Approved, approval_key

        snap = LifecycleSnapshot()
        sod = {self.ir.transition(n).index for n in self.ir.sod_targets}
        gov_domains: set[bytes] = set()
        for ev in self.events():
            if isinstance(ev, GovExecuted | GovProposed | GovVoted):
                gov_domains.add(ev.domain)
                continue
            if isinstance(ev, Registered | Transitioned):
                aid = ev.id
                snap.records[aid] = (
                    int(self._aview("state_of", aid) or 0),
                    int(self._aview("version_of", aid) or 0),
                )
                for t in sod:
                    actor = self._aview("last_actor_of", aid, t)
                    if actor is not None and int(actor, 16):
                        snap.last_actor[(aid, t)] = to_checksum_address(actor)
            elif isinstance(ev, RoleGranted | RoleRevoked):
                snap.roles[ev.account] = self.roles_of(ev.account)
                if isinstance(ev, RoleGranted):
                    snap.domains[ev.account] = self.domain_of(ev.account)
            elif isinstance(ev, Approved):
                key = approval_key(ev.id, ev.transition, ev.version, ev.digest)
                snap.approvers[key] = [
                    to_checksum_address(a)
                    for a in self._aview("approvers_of", ev.id, ev.transition, ev.version,
                                         ev.digest) or ()
                ]
        if self.ir.consortium is not None:
            self.read_governance(snap, gov_domains)
        return snap.normalised()

    # -- internals ------------------------------------------------------------------------------
    def _state_at_version(
        self, contract: str, artefact: bytes, version: int, sources: Sequence[str], block: int
    ) -> str:
        """The state ``artefact`` had at ``version``, from the event log up to ``block``.

        Every state change bumps the version, so the state at a version is the target of the
        transition that produced it (the initial state at version 1) whatever happened later.
        An approval was accepted, so that state is one of the transition's ``sources``: a
        transition with a single source needs no lookup.
        """
        if len(sources) == 1:
            return sources[0]
        if version == 1:
            return self.ir.initial.name
        codec = self.codec if contract == self.address else self.artefact_codec
        topics: list[bytes | None] = [codec.topic("Transitioned"), artefact]
        for log in self.backend.logs(contract, 0, block, topics):
            _name, args = codec.decode_log(log)
            if int(args["version"]) == version:
                return self.ir.state_by_index(int(args["target"])).name
        raise TransactionFailed(
            f"{self.ir.name}: no Transitioned event produced version {version} of this artefact "
            "up to its approval's block; the chain's logs are incomplete (resync the node)"
        )

    def _decoded(
        self, receipt: Receipt, address: str | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        if address is None or address == self.address:
            address, codec = self.address, self.codec
        else:
            codec = self.artefact_codec
        out = []
        for log in receipt.logs:
            if log.address == address and codec.knows(log.topics):
                out.append(codec.decode_log(log))
        return out

    def _raise_for(self, receipt: Receipt, kind: str) -> None:
        if receipt.status:
            return
        reason = receipt.revert_reason
        err = lifecycle_error_from_reason(reason) if reason else None
        if err is not None:
            raise err
        raise TransactionFailed(
            f"{self.ir.name}.{kind} reverted without a lifecycle reason "
            f"({reason or 'no reason; out of gas?'}); gas used {receipt.gas_used}",
            receipt,
        )

    def _write(
        self,
        signer: Any,
        data: bytes,
        gas: int | None,
        kind: str,
        decode: Callable[[Receipt], Any],
        to: str | None = None,
    ) -> Any:
        to = to or self.address
        if gas is None:
            # the estimate is made at the latest state; a call that runs behind other pending
            # transactions may find another state (and succeed where the estimate reverted)
            headroom = getattr(self.backend, "gas_headroom", PENDING_HEADROOM)
            later = headroom > 0 and (not self.automine or bool(self.backend.pending()))
            if to != self.address and not self.backend.code(to):
                gas = UNDEPLOYED_GAS  # its registration is pending: nothing to estimate against
            else:
                try:
                    gas = self.backend.estimate_gas(signer.address, to, data)
                    if later:
                        gas += headroom
                except (LifecycleError, TransactionFailed):
                    if self.preflight:
                        raise  # refuse to send a call that would revert, as wallets do
                    gas = LATER_GAS if later else REVERT_GAS
        tx_hash = _send(self.backend, signer, to, data, gas)
        op = PendingOp(tx_hash, kind, decode, data)
        if not self.automine:
            return op
        self.backend.produce_block()
        return self.result(op)


def check_code_size(bundle: CompiledLayout, fix: str | None = None) -> None:
    """Raise :class:`ContractTooLarge` for a layout with a contract over EIP-170's code size
    limit (a blueprint's code is its preamble and the artefact contract's init code);
    :meth:`LifecycleClient.deploy` calls it before paying gas.  ``fix``: what the message
    tells the user to do (default: another layout, or fewer transitions)."""
    parts = [("", bundle.main.runtime_bytecode)]
    if bundle.artefact is not None:
        parts.append((" artefact", BLUEPRINT_PREAMBLE + bundle.artefact.bytecode
                      if bundle.layout == "factory" else bundle.artefact.runtime_bytecode))
    for part, code in parts:
        if len(code) > MAX_CODE_SIZE:
            fix = fix or (
                "deploy it in the factory or clone layout, which moves the transitions into a "
                "contract per artefact, or give the lifecycle fewer transitions"
                if bundle.layout == "registry" else "give the lifecycle fewer transitions")
            raise ContractTooLarge(
                f"{bundle.name}'s {bundle.layout}{part} contract has {len(code):,} bytes of "
                f"code, over the {MAX_CODE_SIZE:,} bytes a chain deploys (EIP-170): {fix}")


def _deploy(backend: ChainBackend, deployer: Any, data: bytes, timestamp: int | None,
            what: str) -> str:
    gas = backend.estimate_gas(deployer.address, None, data)
    tx_hash = _send(backend, deployer, None, data, gas)
    backend.produce_block(timestamp)
    receipt = backend.receipt(tx_hash)
    if receipt is None or not receipt.status or receipt.contract_address is None:
        raise TransactionFailed(f"deployment of {what} failed", receipt)
    return receipt.contract_address


def _send(backend: ChainBackend, signer: Any, to: str | None, data: bytes, gas: int) -> bytes:
    return submit_signed(backend, signer, to, data, gas=min(gas, backend.gas_limit))


def event_from_args(name: str, args: dict[str, Any]) -> LifecycleEvent:
    """The typed lifecycle event for an ABI-decoded log (``codec.decode_log``): addresses
    checksummed, byte arrays as ``bytes``, lists as tuples."""
    cls = EVENT_TYPES[name]
    fields = [f.name for f in dataclasses.fields(cls)]
    kw: dict[str, Any] = {}
    for f in fields:
        v = args[f]
        if isinstance(v, str) and v.startswith("0x") and len(v) == 42:
            v = to_checksum_address(v)
        elif isinstance(v, list | tuple):
            v = tuple(bytes(x) for x in v)
        elif isinstance(v, bytes | bytearray):
            v = bytes(v)
        kw[f] = v
    return cls(**kw)  # type: ignore[no-any-return]
