"""Gas per lifecycle operation from real receipts, beside the gas-schedule lower bound.

The lower bound is what *any* contract must pay for the same effects under the fork's schedule
(Prague, see :data:`SCHEDULE`): the intrinsic 21,000, the calldata actually sent (with the
EIP-7623 floor), the storage writes the operation must make (first write of a slot 20,000 +
2,100 cold access; update 2,900 + 2,100; clearing refunds 4,800, capped at a fifth), one cold
read of the sender's role slot for authorisation, and the logs actually emitted (375 + 375 per
topic + 8 per data byte).  The difference to the measured gas is the contract's own overhead
(dispatch, ABI decoding, memory, checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode

from proml_sim.chain import KeyRing, PyEVMBackend
from proml_sim.chain.base import Receipt
from proml_sim.chain.client import LifecycleClient, PendingOp
from proml_sim.compiler import CompiledContract, compile_artefact
from proml_sim.errors import LifecycleError
from proml_sim.lifecycles import Dataset, Model


@dataclass(frozen=True)
class GasSchedule:
    """Per-fork gas constants (Prague)."""

    tx_base: int = 21_000
    create: int = 32_000
    calldata_zero: int = 4
    calldata_nonzero: int = 16
    floor_per_token: int = 10  # EIP-7623
    initcode_word: int = 2  # EIP-3860
    code_deposit_byte: int = 200
    cold_sload: int = 2_100
    sstore_set: int = 20_000  # 0 -> x, plus cold access
    sstore_reset: int = 2_900  # x -> y, plus cold access
    clear_refund: int = 4_800  # x -> 0 (EIP-3529)
    refund_quotient: int = 5
    log: int = 375
    log_topic: int = 375
    log_byte: int = 8


SCHEDULE = GasSchedule()


def calldata_gas(data: bytes, s: GasSchedule = SCHEDULE) -> tuple[int, int]:
    """(standard calldata gas, EIP-7623 token count)."""
    zeros = data.count(0)
    nonzero = len(data) - zeros
    return zeros * s.calldata_zero + nonzero * s.calldata_nonzero, zeros + 4 * nonzero


def lower_bound(
    receipt: Receipt,
    data: bytes,
    *,
    new_slots: int,
    updated_slots: int,
    auth_reads: int = 1,
    cleared_slots: int = 0,
    create_runtime_bytes: int | None = None,
    s: GasSchedule = SCHEDULE,
) -> int:
    """The schedule's minimum for a transaction with these effects (see module docstring)."""
    standard, tokens = calldata_gas(data, s)
    execution = (
        new_slots * (s.sstore_set + s.cold_sload)
        + updated_slots * (s.sstore_reset + s.cold_sload)
        + cleared_slots * (s.sstore_reset + s.cold_sload)
        + auth_reads * s.cold_sload
        + sum(s.log + s.log_topic * len(lg.topics) + s.log_byte * len(lg.data)
              for lg in receipt.logs)
    )
    if create_runtime_bytes is not None:
        words = -(-len(data) // 32)
        execution += s.create + s.initcode_word * words + s.code_deposit_byte * create_runtime_bytes
    total = s.tx_base + standard + execution
    # clearing a slot refunds 4,800, capped at a fifth of the gas used (EIP-3529)
    total -= min(cleared_slots * s.clear_refund, total // s.refund_quotient)
    return max(total, s.tx_base + s.floor_per_token * tokens)


def _mined(client: LifecycleClient, op: PendingOp) -> tuple[Receipt, Any]:
    client.backend.produce_block()
    receipt = client.backend.receipt(op.tx_hash)
    assert receipt is not None
    try:
        return receipt, client.result(op)
    except LifecycleError as exc:
        return receipt, exc


def _row(lifecycle: str, operation: str, receipt: Receipt, bound: int, note: str) -> dict[str, Any]:
    return {
        "lifecycle": lifecycle, "operation": operation, "gas": receipt.gas_used,
        "lower_bound": bound, "overhead": round(receipt.gas_used / bound, 2),
        "status": "ok" if receipt.status else "reverted", "note": note,
    }


def measure_lifecycle_gas(compiled: CompiledContract, seed: int = 0) -> list[dict[str, Any]]:
    """Drive one paper lifecycle and return a row per operation kind."""
    assert compiled.ir is not None
    ir = compiled.ir
    keys = KeyRing.from_seed(f"gas-{seed}", 6)
    a = keys.addresses
    backend = PyEVMBackend(funded=a)
    dom = [bytes([i + 1]) * 32 for i in range(3)]
    admin = keys.signer(a[0])
    # deployment, measured from its receipt
    client = LifecycleClient.deploy(backend, compiled, admin, dom[0])
    deploy_receipt = next(
        r for r in (backend.receipt(h) for h in backend.block(backend.head().number).tx_hashes)
        if r is not None and r.contract_address is not None
    )
    init = compiled.bytecode + encode(["bytes32"], [dom[0]])
    rows = [_row(ir.name, "deployment", deploy_receipt,
                 lower_bound(deploy_receipt, init, new_slots=2, updated_slots=0, auth_reads=0,
                             create_runtime_bytes=len(compiled.runtime_bytecode)),
                 f"{len(compiled.runtime_bytecode)} bytes runtime")]
    client.automine = False
    digest, locator = b"\x5a" * 32, "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"

    def run(op_name: str, op: PendingOp, note: str, *, new_slots: int, updated_slots: int,
            auth_reads: int = 1, cleared_slots: int = 0) -> Any:
        receipt, result = _mined(client, op)
        bound = lower_bound(receipt, op.data, new_slots=new_slots, updated_slots=updated_slots,
                            auth_reads=auth_reads, cleared_slots=cleared_slots)
        rows.append(_row(ir.name, op_name, receipt, bound, note))
        return result

    if ir.name == "Dataset":
        da, lab, outsider = a[1], a[2], a[3]
        _mined(client, client.grant(admin, "dataset_admin", da, dom[1]))
        run("grant_role", client.grant(keys.signer(da), "labeller", lab, dom[2]),
            "dataset admin grants labeller", new_slots=2, updated_slots=0)
        aid = run("registration", client.register(keys.signer(da), b"\x01" * 32, digest, locator),
                  "register with digest + locator", new_slots=1, updated_slots=0)
        run("first_transition", client.fire(keys.signer(lab), "label", aid, digest, locator,
                                            [aid]),
            "label (SoD memory written)", new_slots=1, updated_slots=1)
        run("later_transition", client.fire(keys.signer(lab), "label", aid, digest, locator,
                                            [aid]),
            "relabel (self loop), same labeller", new_slots=0, updated_slots=1)
        run("later_transition_sod", client.fire(keys.signer(da), "review", aid),
            "review: SoD check, no evidence", new_slots=0, updated_slots=1, auth_reads=2)
        run("rejected_attempt", client.fire(keys.signer(outsider), "release", aid, digest),
            "RoleNotAllowed: reverted, still paid", new_slots=0, updated_slots=0, auth_reads=1)
        run("revoke_role", client.revoke(keys.signer(da), "labeller", lab),
            "dataset admin revokes labeller", new_slots=0, updated_slots=0, cleared_slots=1)
    else:
        op_, dev, v1, v2, outsider = a[1], a[2], a[3], a[4], a[5]
        for who, role, d in ((op_, "operator", dom[0]), (dev, "developer", dom[0]),
                             (v1, "verifier", dom[1])):
            _mined(client, client.grant(admin, role, who, d))
        run("grant_role", client.grant(admin, "verifier", v2, dom[2]), "admin grants verifier",
            new_slots=2, updated_slots=0)
        aid = run("registration", client.register(keys.signer(op_), b"\x02" * 32),
                  "register (no evidence needed)", new_slots=1, updated_slots=0)
        run("first_transition", client.fire(keys.signer(dev), "train", aid, digest, locator,
                                            [b"\x11" * 32]),
            "train: digest, locator, 1 input", new_slots=1, updated_slots=1)
        run("later_transition", client.fire(keys.signer(dev), "train", aid, digest, locator,
                                            [b"\x11" * 32]),
            "retrain (self loop), same developer", new_slots=0, updated_slots=1)
        run("approval", client.fire(keys.signer(v1), "verify", aid, digest),
            "1st of 2 verifier approvals (pending)", new_slots=2, updated_slots=0, auth_reads=2)
        run("approval_firing", client.fire(keys.signer(v2), "verify", aid, digest),
            "2nd approval, other domain: fires", new_slots=1, updated_slots=2, auth_reads=3)
        run("rejected_attempt", client.fire(keys.signer(outsider), "accept", aid),
            "RoleNotAllowed: reverted, still paid", new_slots=0, updated_slots=0, auth_reads=1)
        run("revoke_role", client.revoke(admin, "verifier", v2), "admin revokes verifier",
            new_slots=0, updated_slots=0, cleared_slots=1)
    return rows


def measure_paper_gas(seed: int = 0) -> list[dict[str, Any]]:
    rows = []
    for cls in (Dataset, Model):
        rows += measure_lifecycle_gas(compile_artefact(cls), seed)
    return rows


def format_gas_table(rows: list[dict[str, Any]]) -> str:
    head = f"{'lifecycle':<9} {'operation':<22} {'gas':>9} {'lower bound':>12} {'x':>5}  note"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['lifecycle']:<9} {r['operation']:<22} {r['gas']:>9,} {r['lower_bound']:>12,} "
            f"{r['overhead']:>5.2f}  {r['note']}"
        )
    return "\n".join(lines)
