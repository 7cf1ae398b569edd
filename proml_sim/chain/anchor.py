"""Client of the batch-anchoring contract (``proml_sim.codegen.anchor``)."""

from __future__ import annotations

from typing import Any

from eth_utils.address import to_checksum_address

from proml_sim.chain.abi import ContractABI, EventCodec
from proml_sim.chain.base import ChainBackend, Receipt
from proml_sim.chain.client import PendingOp, _send
from proml_sim.compiler import CompiledContract, compile_anchor
from proml_sim.errors import LifecycleError, TransactionFailed, lifecycle_error_from_reason

ANCHOR_GAS = 120_000  # for a call whose estimate reverts: ample for its two new slots and log


class AnchorClient:
    """Anchor Merkle roots of record batches; read them back for proof checks."""

    def __init__(self, backend: ChainBackend, compiled: CompiledContract, address: str,
                 *, automine: bool = True) -> None:
        self.backend = backend
        self.compiled = compiled
        self.address = to_checksum_address(address)
        self.automine = automine
        self.contract_abi = ContractABI(list(compiled.abi))
        self.codec = EventCodec(list(compiled.abi))

    @classmethod
    def deploy(cls, backend: ChainBackend, deployer: Any, *, automine: bool = True
               ) -> AnchorClient:
        compiled = compile_anchor()
        gas = backend.estimate_gas(deployer.address, None, compiled.bytecode)
        h = _send(backend, deployer, None, compiled.bytecode, gas)
        backend.produce_block()
        receipt = backend.receipt(h)
        if receipt is None or not receipt.status or receipt.contract_address is None:
            raise TransactionFailed("deployment of the Anchor contract failed", receipt)
        return cls(backend, compiled, receipt.contract_address, automine=automine)

    def anchor(self, signer: Any, root: bytes, count: int, locator: str = "") -> Any:
        """Anchor ``root`` of ``count`` records; returns the batch number (or a PendingOp)."""
        data = self.contract_abi.encode_call("anchor", [root, count, locator])
        try:
            gas = self.backend.estimate_gas(signer.address, self.address, data)
        except (LifecycleError, TransactionFailed):
            gas = ANCHOR_GAS  # send anyway: the revert happens on chain and is decoded
        h = _send(self.backend, signer, self.address, data, gas)

        def decode(receipt: Receipt) -> int:
            for log in receipt.logs:
                if log.address == self.address and self.codec.knows(log.topics):
                    return int(self.codec.decode_log(log)[1]["batch"])
            raise TransactionFailed("anchor emitted no Anchored event", receipt)

        op = PendingOp(h, "anchor", decode, data)
        if not self.automine:
            return op
        self.backend.produce_block()
        return self.result(op)

    def result(self, op: PendingOp) -> Any:
        receipt = self.backend.receipt(op.tx_hash)
        if receipt is None:
            raise TransactionFailed(f"anchor transaction {op.tx_hash.hex()} is not mined yet")
        if not receipt.status:
            err: LifecycleError | None = (
                lifecycle_error_from_reason(receipt.revert_reason)
                if receipt.revert_reason else None
            )
            if err is not None:
                raise err
            raise TransactionFailed("anchor reverted", receipt)
        return op.decode(receipt)

    def root_of(self, batch: int) -> bytes:
        res = self.backend.call(self.address, self.contract_abi.encode_call("roots", [batch]))
        if not res.success:
            raise TransactionFailed(f"roots({batch}) reverted")
        return bytes(self.contract_abi.decode_output("roots", res.output))
