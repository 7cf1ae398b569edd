"""The fast py-evm engine (one-pass tries, tightened interpreter loop) must produce *exactly* the
blocks stock py-evm produces: random lifecycle operations (registrations, transitions, approvals
with their bounded loops, grants, revokes, reverts) grouped into random blocks, replayed through
``MiningChain.mine_all`` with ``PragueVM``; block hashes (so state, receipt and transaction
roots) and per-transaction gas must match."""

from __future__ import annotations

from typing import Any

from eth import constants as evm_constants
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.vm.forks.prague import PragueVM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proml_sim import compile_artefact
from proml_sim.chain import KeyRing, PyEVMBackend
from proml_sim.chain.client import LifecycleClient
from proml_sim.chain.pyevm import FAUCET_BALANCE
from proml_sim.lifecycles import SingleAdminModel as Model  # chain mechanics, one admin

GAS_LIMIT = 30_000_000
COMPILED = compile_artefact(Model)


class Recording(PyEVMBackend):
    """Keeps the raw transactions of every produced block for the replay."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.funded = tuple(kw.get("funded", ()))
        self.raw: dict[bytes, bytes] = {}

    def submit(self, raw_tx: bytes) -> bytes:
        h = super().submit(raw_tx)
        self.raw[h] = raw_tx
        return h


ops = st.lists(
    st.tuples(
        st.sampled_from(["train", "verify", "reject", "accept", "withdraw", "grant", "revoke",
                         "register"]),
        st.integers(0, 5),  # sender
        st.integers(0, 2),  # artefact
        st.integers(0, 2),  # digest choice
        st.booleans(),  # close the block after this op
    ),
    min_size=5,
    max_size=40,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_fast_engine_blocks_equal_stock_py_evm(plan: list[tuple[str, int, int, int, bool]]) -> None:
    keys = KeyRing.from_seed("stock-equivalence", 6)
    a = keys.addresses
    backend = Recording(funded=a, gas_limit=GAS_LIMIT)
    c = LifecycleClient.deploy(backend, COMPILED, keys.signer(a[0]), b"D0".ljust(32, b"\0"))
    for i, role in ((1, "operator"), (2, "developer"), (3, "verifier"), (4, "verifier")):
        c.grant(keys.signer(a[0]), role, a[i], bytes([i]).ljust(32, b"\0"))
    ids = [c.register(keys.signer(a[1]), bytes([n + 1]) * 32) for n in range(3)]
    c.automine = False
    digests = [b"\0" * 32, b"\x11" * 32, b"\x22" * 32]
    ts = backend.head().timestamp
    for op, sender, art, dig, close in plan:
        s = keys.signer(a[sender])
        if op in ("train", "verify", "reject"):
            c.fire(s, op, ids[art], digests[dig], "s3://x" * dig, [ids[art]] * dig, gas=400_000)
        elif op in ("accept", "withdraw"):
            c.fire(s, op, ids[art], gas=200_000)
        elif op == "grant":
            c.grant(s, 3, a[sender], digests[dig], gas=200_000)
        elif op == "revoke":
            c.revoke(s, 3, a[(sender + art) % 6], gas=200_000)
        else:
            c.register(s, bytes([9 + dig]) * 32, gas=200_000)
        if close:
            ts += 12
            backend.produce_block(ts)
    ts += 12
    backend.produce_block(ts)
    assert not backend.pending()

    stock = _stock_chain(backend)
    builder = PragueVM.get_transaction_builder()
    for number in range(1, backend.head().number + 1):
        ours = backend.block(number)
        raws = [backend.raw[h] for h in ours.tx_hashes]
        stock.header = PragueVM.create_header_from_parent(
            stock.get_canonical_head(), timestamp=ours.timestamp, gas_limit=GAS_LIMIT,
            coinbase=evm_constants.ZERO_ADDRESS,
        )
        result, receipts, _ = stock.mine_all([builder.decode(r) for r in raws],
                                             timestamp=ours.timestamp)
        assert result.imported_block.hash == ours.hash, f"block {number} differs"
        for h, receipt in zip(ours.tx_hashes, receipts, strict=True):
            mine = backend.receipt(h)
            assert mine is not None and mine.cumulative_gas_used == receipt.gas_used
            assert len(mine.logs) == len(receipt.logs)


def _stock_chain(backend: Recording) -> Any:
    klass = MiningChain.configure(
        __name__="Stock", vm_configuration=((0, PragueVM),), chain_id=backend.chain_id
    )
    alloc = {
        bytes.fromhex(addr[2:]): {"balance": 10**24, "nonce": 0, "code": b"", "storage": {}}
        for addr in backend.funded
    }
    alloc[bytes.fromhex(backend.faucet_address[2:])] = {
        "balance": FAUCET_BALANCE, "nonce": 0, "code": b"", "storage": {},
    }
    stock = klass.from_genesis(
        AtomicDB(),
        {"difficulty": 0, "gas_limit": GAS_LIMIT, "timestamp": backend.block(0).timestamp,
         "coinbase": evm_constants.ZERO_ADDRESS, "extra_data": b"", "nonce": b"\x00" * 8,
         "mix_hash": evm_constants.ZERO_HASH32},
        alloc,
    )
    assert stock.get_canonical_head().hash == backend.block(0).hash
    return stock
