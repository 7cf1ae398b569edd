"""The revm engine: the py-evm engine's behaviour tests run on it unchanged (pool, blocks,
receipts, reverts, gas estimates, rejections, legacy transactions, logs, snapshots, faucet), plus
what is specific to it (cold journal per transaction, parallel sender recovery, its block
hash)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from test_pyevm import (  # type: ignore[import-not-found]  # re-collected with a revm backend
    compiled,
    deploy,
    raw_tx,
    ring,
    signer,
    test_block_context_uses_the_produced_timestamp,
    test_deploy_call_and_receipt_fields,
    test_estimate_gas_is_enough,
    test_faucet,
    test_fee_ordering_across_senders,
    test_legacy_transactions,
    test_logs_filter_by_address_topic_and_range,
    test_many_txs_from_one_sender_in_one_block,
    test_nonce_gap_stays_pending,
    test_revert_is_charged_and_decoded,
    test_snapshot_revert_restores_head_state_and_pool,
    test_submit_rejections,
)

from proml_sim.chain import KeyRing, PyEVMBackend, TxSender, send_and_mine
from proml_sim.chain.revm import RevmBackend
from proml_sim.errors import EngineError

__all__ = [
    "compiled",
    "ring",
    "test_block_context_uses_the_produced_timestamp",
    "test_deploy_call_and_receipt_fields",
    "test_estimate_gas_is_enough",
    "test_faucet",
    "test_fee_ordering_across_senders",
    "test_legacy_transactions",
    "test_logs_filter_by_address_topic_and_range",
    "test_many_txs_from_one_sender_in_one_block",
    "test_nonce_gap_stays_pending",
    "test_revert_is_charged_and_decoded",
    "test_snapshot_revert_restores_head_state_and_pool",
    "test_submit_rejections",
]


@pytest.fixture
def backend(ring: KeyRing) -> RevmBackend:
    return RevmBackend(funded=ring.addresses)


def _script(backend: Any, ring: KeyRing, compiled: Any) -> list[tuple[bool, int, int]]:
    """Deploy, register, then the same SSTORE-heavy call five times in one block and once per
    block: (status, gas used, sender balance) of every transaction."""
    abi = compiled[1]
    addr = deploy(backend, ring, compiled)
    ident = send_and_mine(
        backend, signer(ring), addr, abi.encode_call("register", [b"\x06" * 32]), gas=200_000
    ).output
    sender = TxSender(backend, signer(ring, 1))
    step = abi.encode_call("step", [ident, b"\x07" * 32])
    hashes = [sender.send(addr, step, gas=150_000) for _ in range(5)]
    for _ in range(2):  # the second registration of the same id reverts (and pays)
        hashes.append(sender.send(addr, abi.encode_call("register", [b"\x08" * 32]), gas=150_000))
    backend.produce_block()
    for _ in range(3):
        hashes.append(sender.send(addr, step, gas=150_000))
        backend.produce_block()
    out = []
    for h in hashes:
        r = backend.receipt(h)
        assert r is not None
        out.append((r.status, r.gas_used, r.cumulative_gas_used))
    return [*out, (True, backend.balance(ring.addresses[1]), backend.base_fee())]


def test_every_transaction_starts_cold_and_gas_equals_py_evm(ring: KeyRing, compiled: Any) -> None:
    # a raw pyrevm message_call sequence would charge the repeated SSTOREs as warm and dirty
    ours = _script(RevmBackend(funded=ring.addresses), ring, compiled)
    reference = _script(PyEVMBackend(funded=ring.addresses), ring, compiled)
    assert ours == reference
    assert len({gas for _, gas, _ in ours[:5]}) <= 2  # the first step sets a fresh slot
    assert ours[5][0] is True and ours[6][0] is False


def test_block_gas_limit_and_max_txs(ring: KeyRing, compiled: Any) -> None:
    backend = RevmBackend(funded=ring.addresses, gas_limit=1_000_000)
    addr = deploy(backend, ring, compiled)
    abi = compiled[1]
    ident = send_and_mine(
        backend, signer(ring), addr, abi.encode_call("register", [b"\x06" * 32]), gas=200_000
    ).output
    sender = TxSender(backend, signer(ring))
    hashes = [
        sender.send(addr, abi.encode_call("step", [ident, b"\x07" * 32]), gas=150_000)
        for _ in range(40)
    ]
    with pytest.raises(EngineError, match="above the block gas limit"):
        backend.submit(raw_tx(signer(ring, 1), backend, 0, addr, gas=1_000_001))
    first = backend.produce_block()
    n = len(first.tx_hashes)
    assert 0 < n < 40 and first.tx_hashes == tuple(hashes[:n])
    assert backend.produce_block(max_txs=2).tx_hashes == tuple(hashes[n : n + 2])


def test_blocks_are_chained_and_deterministic(compiled: Any) -> None:
    def run() -> list[bytes]:
        ring = KeyRing.from_seed("determinism", 2)
        backend = RevmBackend(funded=ring.addresses)
        addr = deploy(backend, ring, compiled)
        s = TxSender(backend, signer(ring, 1))
        for i in range(5):
            s.send(addr, compiled[1].encode_call("register", [bytes([i]) * 32]), gas=200_000)
        backend.produce_block()
        backend.produce_block(backend.head().timestamp + 7)
        blocks = [backend.block(n) for n in range(backend.head().number + 1)]
        for parent, child in itertools.pairwise(blocks):
            assert child.parent_hash == parent.hash
        return [b.hash for b in blocks]

    first = run()
    assert first == run() and len(set(first)) == len(first)


def test_access_lists_are_refused_with_a_reason(backend: RevmBackend, ring: KeyRing) -> None:
    from eth_account import Account

    key = KeyRing.from_seed("chain-tests", 1)
    del key
    acct = Account.create("access-list")
    tx = {
        "type": 2, "chainId": backend.chain_id, "nonce": 0, "to": ring.addresses[1],
        "gas": 30_000, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9, "value": 0,
        "data": b"", "accessList": [{"address": ring.addresses[1], "storageKeys": []}],
    }
    raw = bytes(acct.sign_transaction(tx).raw_transaction)
    with pytest.raises(EngineError, match="access lists"):
        backend.submit(raw)


def test_submit_many_with_workers_equals_submit(ring: KeyRing) -> None:
    to = ring.addresses[1]
    pooled = RevmBackend(funded=ring.addresses, workers=2)
    serial = RevmBackend(funded=ring.addresses)
    try:
        raws = [raw_tx(signer(ring, i % 3), serial, i // 3, to, gas=21_000) for i in range(12)]
        assert pooled.submit_many(raws) == [serial.submit(r) for r in raws]
        assert pooled.produce_block().hash == serial.produce_block().hash
        bad = [raw_tx(signer(ring, 3), serial, 0, to, gas=21_000), raws[0]]
        with pytest.raises(EngineError, match=r"transaction 1 of the batch: .*already known"):
            pooled.submit_many(bad)
        assert pooled.pending() == (serial.submit(bad[0]),)  # the one before it was admitted
    finally:
        pooled.close()


def test_release_stops_journaling(backend: RevmBackend) -> None:
    sid = backend.snapshot()
    backend.produce_block()
    backend.release(sid)
    with pytest.raises(EngineError, match="unknown snapshot id"):
        backend.revert(sid)
    assert backend._undo is None


def _edges(backend: Any, ring: KeyRing, compiled: Any) -> list[tuple[bool, int, bytes, int]]:
    """Out of gas, the EIP-7623 floor binding, a failing creation, value to a non-payable
    function, a plain transfer: (status, gas used, output, sender balance) of each."""
    abi = compiled[1]
    addr = deploy(backend, ring, compiled)
    s = TxSender(backend, signer(ring, 1))
    register = abi.encode_call("register", [b"\x06" * 32])
    hashes = [
        s.send(addr, register, gas=30_000),  # runs out of gas
        s.send(ring.addresses[2], b"\xff" * 1000, gas=100_000),  # floor 61,000 > 37,000
        s.send(None, bytes.fromhex("60006000fd"), gas=100_000),  # init code that reverts
        s.send(addr, register, gas=200_000, value=5),  # non-payable: reverts
        s.send(ring.addresses[3], b"", gas=21_000, value=10**18),
    ]
    backend.produce_block()
    out = []
    for h in hashes:
        r = backend.receipt(h)
        assert r is not None
        out.append((r.status, r.gas_used, r.output, r.cumulative_gas_used))
    balances = (True, backend.balance(ring.addresses[1]), b"", backend.balance(ring.addresses[3]))
    return [*out, balances]


def test_edge_transactions_match_py_evm(ring: KeyRing, compiled: Any) -> None:
    ours = _edges(RevmBackend(funded=ring.addresses), ring, compiled)
    assert ours == _edges(PyEVMBackend(funded=ring.addresses), ring, compiled)
    assert [status for status, *_ in ours[:5]] == [False, True, False, False, True]
    assert ours[0][1] == 30_000 and ours[1][1] == 61_000


def _state_effects(backend: Any, ring: KeyRing) -> list[Any]:
    """A raw contract whose constructor stores a slot, whose calls write a slot and restore it
    within the transaction (no net change), store ``value + 7`` and forward the value to a third
    account; reads go through a calldata getter.  (status, gas used) of each transaction, the
    slots read back and the balances touched."""
    third = bytes.fromhex(ring.addresses[3][2:])
    runtime = (
        bytes.fromhex("3615601157" "60003554600052" "60206000f3" "5b")  # getter: SLOAD(arg)
        + bytes.fromhex("6001600055" "6000600055")  # slot 0 = 1, then back to 0
        + bytes.fromhex("3460070160015500")[:-1]  # slot 1 = value + 7
        + bytes.fromhex("6000600060006000" "34" "73") + third + bytes.fromhex("5af150" "00")
    )
    init = bytes.fromhex("602a600255") + bytes.fromhex(f"60{len(runtime):02x}80601060003960" "00f3")
    init += runtime
    s = TxSender(backend, signer(ring, 1))
    h0 = s.send(None, init, gas=200_000)
    backend.produce_block()
    r0 = backend.receipt(h0)
    assert r0 is not None and r0.status and r0.contract_address
    contract = r0.contract_address
    hashes = [s.send(contract, b"", gas=100_000, value=1_000 + i) for i in range(3)]
    backend.produce_block()
    hashes.append(TxSender(backend, signer(ring, 2)).send(contract, b"", gas=100_000, value=5))
    backend.produce_block()
    out: list[Any] = [(r0.status, r0.gas_used)]
    for h in hashes:
        r = backend.receipt(h)
        assert r is not None
        out.append((r.status, r.gas_used))
    slots = [
        int.from_bytes(backend.call(contract, k.to_bytes(32, "big")).output, "big")
        for k in range(3)
    ]
    balances = [backend.balance(a) for a in ring.addresses[1:4]] + [backend.balance(contract)]
    return [out, slots, balances]


def test_storage_and_value_effects_match_py_evm(ring: KeyRing) -> None:
    ours = _state_effects(RevmBackend(funded=ring.addresses), ring)
    assert ours == _state_effects(PyEVMBackend(funded=ring.addresses), ring)
    out, slots, balances = ours
    assert all(status for status, _ in out)
    assert slots == [0, 12, 42]  # restored slot, last value + 7, the constructor's slot
    assert balances[-1] == 0  # every wei was forwarded to the third account
