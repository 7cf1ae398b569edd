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
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address

from proml_sim.chain.abi import ContractABI, EventCodec
from proml_sim.chain.base import ChainBackend, Receipt
from proml_sim.compiler import CompiledContract
from proml_sim.errors import LifecycleError, TransactionFailed, lifecycle_error_from_reason
from proml_sim.ir import (
    EVENT_TYPES,
    ZERO32,
    HistoryEntry,
    LifecycleEvent,
    LifecycleIR,
    LifecycleSnapshot,
    Registered,
    RoleGranted,
    RoleRevoked,
    StepResult,
    Transitioned,
    history_from_events,
)
from proml_sim.ir import messages as msg
from proml_sim.ir.model import MAX_INPUTS, MAX_LOCATOR_BYTES

#: Gas limit for a call whose estimate reverts and that is sent anyway (``preflight=False``): the
#: revert then happens on chain, pays its gas, and is decoded from the receipt.
REVERT_GAS = 250_000


@dataclass(frozen=True)
class PendingOp:
    """A submitted lifecycle call; ``decode`` turns its receipt into the call's result."""

    tx_hash: bytes
    kind: str
    decode: Callable[[Receipt], Any]
    data: bytes = b""


class LifecycleClient:
    """Operations on a deployed lifecycle contract at ``address``."""

    def __init__(
        self,
        backend: ChainBackend,
        compiled: CompiledContract,
        address: str,
        *,
        automine: bool = True,
        preflight: bool = False,
    ) -> None:
        if compiled.ir is None:
            raise ValueError("LifecycleClient needs a contract compiled from a lifecycle IR")
        self.backend = backend
        self.compiled = compiled
        self.ir: LifecycleIR = compiled.ir
        self.address = to_checksum_address(address)
        self.automine = automine
        self.preflight = preflight
        self.abi = list(compiled.abi)
        self.codec = EventCodec(self.abi)
        self.contract_abi = ContractABI(self.abi)

    # -- deployment -------------------------------------------------------------------------------
    @classmethod
    def deploy(
        cls,
        backend: ChainBackend,
        compiled: CompiledContract,
        deployer: Any,
        admin_domain: bytes = ZERO32,
        *,
        automine: bool = True,
        timestamp: int | None = None,
    ) -> LifecycleClient:
        """Deploy ``compiled`` from ``deployer`` (a Signer), who becomes its admin."""
        from eth_abi.abi import encode

        data = compiled.bytecode + encode(["bytes32"], [admin_domain])
        gas = backend.estimate_gas(deployer.address, None, data)
        tx_hash = _send(backend, deployer, None, data, gas)
        backend.produce_block(timestamp)
        receipt = backend.receipt(tx_hash)
        if receipt is None or not receipt.status or receipt.contract_address is None:
            raise TransactionFailed(f"deployment of {compiled.name} failed", receipt)
        return cls(backend, compiled, receipt.contract_address, automine=automine)

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
        self._check_evidence_args(locator, inputs)
        data = self.contract_abi.encode_call("register", [salt, digest, locator, list(inputs)])

        def decode(receipt: Receipt) -> bytes:
            for name, args in self._decoded(receipt):
                if name == "Registered":
                    return bytes(args["id"])
            raise TransactionFailed("registration emitted no Registered event", receipt)

        return self._write(signer, data, gas, "register", decode)

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
        if t.evidence:
            self._check_evidence_args(locator, inputs)
            data = self.contract_abi.encode_call(t.name, [artefact, digest, locator, list(inputs)])
        else:
            if digest != ZERO32 or locator or inputs:
                raise TypeError(
                    f"{self.ir.name}.{t.name} takes no evidence; drop digest/locator/inputs"
                )
            data = self.contract_abi.encode_call(t.name, [artefact])

        def decode(receipt: Receipt) -> StepResult:
            count = 1
            for name, args in self._decoded(receipt):
                if name == "Approved":
                    count = args["count"]
                elif name == "Transitioned":
                    return StepResult(True, count, t.approvals, args["version"], t.target)
            version = self.version(artefact)
            return StepResult(False, count, t.approvals, version, self.state(artefact))

        return self._write(signer, data, gas, t.name, decode)

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
        args = [self._role_index(role), account, domain]
        data = self.contract_abi.encode_call("grant_role", args)
        return self._write(signer, data, gas, "grant_role", lambda r: None)

    def revoke(self, signer: Any, role: str | int, account: str, *, gas: int | None = None) -> Any:
        data = self.contract_abi.encode_call("revoke_role", [self._role_index(role), account])
        return self._write(signer, data, gas, "revoke_role", lambda r: None)

    def result(self, op: PendingOp) -> Any:
        """The decoded result of a mined PendingOp; raises the lifecycle error if it reverted."""
        receipt = self.backend.receipt(op.tx_hash)
        if receipt is None:
            raise TransactionFailed(f"{op.kind} transaction {op.tx_hash.hex()} is not mined yet")
        self._raise_for(receipt, op.kind)
        return op.decode(receipt)

    # -- reads ----------------------------------------------------------------------------------
    def _view(self, fn: str, *args: Any) -> Any:
        res = self.backend.call(self.address, self.contract_abi.encode_call(fn, list(args)))
        if not res.success:
            raise TransactionFailed(f"view {fn} reverted: {res.revert_reason}")
        return self.contract_abi.decode_output(fn, res.output)

    def exists(self, artefact: bytes) -> bool:
        return int(self._view("state_of", artefact)) != 0

    def state(self, artefact: bytes) -> str:
        s = int(self._view("state_of", artefact))
        if s == 0:
            raise msg.unknown_artefact(self.ir)
        return self.ir.state_by_index(s).name

    def version(self, artefact: bytes) -> int:
        if not self.exists(artefact):
            raise msg.unknown_artefact(self.ir)
        return int(self._view("version_of", artefact))

    def roles_of(self, account: str) -> int:
        return int(self._view("roles", account))

    def has_role(self, account: str, role: str) -> bool:
        return bool(self.roles_of(account) & self.ir.role(role).bit)

    def domain_of(self, account: str) -> bytes:
        return bytes(self._view("domains", account))

    def artefact_id(self, registrant: str, salt: bytes) -> bytes:
        return bytes(self._view("artefact_id", registrant, salt))

    def fingerprint(self) -> str:
        return bytes(self._view("IR_FINGERPRINT")).hex()

    def events(self, from_block: int = 0, to_block: int | None = None) -> list[LifecycleEvent]:
        """All lifecycle events of this contract, in chain order."""
        out: list[LifecycleEvent] = []
        for log in self.backend.logs(self.address, from_block, to_block):
            if not self.codec.knows(log.topics):
                continue
            name, args = self.codec.decode_log(log)
            out.append(_to_event(name, args))
        return out

    def history(self, artefact: bytes) -> list[HistoryEntry]:
        if not self.exists(artefact):
            raise msg.unknown_artefact(self.ir)
        return history_from_events(self.ir, self.events(), artefact)

    def snapshot(self) -> LifecycleSnapshot:
        """Contract storage read through views, for every id/account/key the events mention."""
        from proml_sim.ir import Approved, approval_key

        snap = LifecycleSnapshot()
        sod = {self.ir.transition(n).index for n in self.ir.sod_targets}
        for ev in self.events():
            if isinstance(ev, Registered | Transitioned):
                aid = ev.id
                snap.records[aid] = (
                    int(self._view("state_of", aid)),
                    int(self._view("version_of", aid)),
                )
                for t in sod:
                    actor = to_checksum_address(self._view("last_actor_of", aid, t))
                    if int(actor, 16):
                        snap.last_actor[(aid, t)] = actor
            elif isinstance(ev, RoleGranted | RoleRevoked):
                snap.roles[ev.account] = self.roles_of(ev.account)
                if isinstance(ev, RoleGranted):
                    snap.domains[ev.account] = self.domain_of(ev.account)
            elif isinstance(ev, Approved):
                key = approval_key(ev.id, ev.transition, ev.version, ev.digest)
                snap.approvers[key] = [
                    to_checksum_address(a)
                    for a in self._view("approvers_of", ev.id, ev.transition, ev.version, ev.digest)
                ]
        return snap.normalised()

    # -- internals ------------------------------------------------------------------------------
    def _role_index(self, role: str | int) -> int:
        if isinstance(role, str):
            return self.ir.role(role).index
        if not 0 <= role < len(self.ir.roles):
            raise msg.unknown_role(self.ir)
        return role

    def _check_evidence_args(self, locator: str, inputs: Sequence[bytes]) -> None:
        if len(inputs) > MAX_INPUTS:
            raise msg.too_many_inputs(self.ir)
        if len(locator.encode()) > MAX_LOCATOR_BYTES:
            raise msg.locator_too_long(self.ir)

    def _decoded(self, receipt: Receipt) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for log in receipt.logs:
            if log.address == self.address and self.codec.knows(log.topics):
                out.append(self.codec.decode_log(log))
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
    ) -> Any:
        if gas is None:
            try:
                gas = self.backend.estimate_gas(signer.address, self.address, data)
            except (LifecycleError, TransactionFailed):
                if self.preflight:
                    raise  # refuse to send a call that would revert, as wallets do
                gas = REVERT_GAS
        tx_hash = _send(self.backend, signer, self.address, data, gas)
        op = PendingOp(tx_hash, kind, decode, data)
        if not self.automine:
            return op
        self.backend.produce_block()
        return self.result(op)


def _send(backend: ChainBackend, signer: Any, to: str | None, data: bytes, gas: int) -> bytes:
    tip = 10**9
    raw = signer.sign_transaction(
        chain_id=backend.chain_id,
        nonce=backend.next_nonce(signer.address),
        to=to,
        data=data,
        gas=min(gas, backend.gas_limit),
        max_fee_per_gas=2 * backend.base_fee() + tip,
        max_priority_fee_per_gas=tip,
    )
    return backend.submit(raw)


def _to_event(name: str, args: dict[str, Any]) -> LifecycleEvent:
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
