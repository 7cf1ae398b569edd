"""Behaviour of the py-evm backend: pool, block production, receipts, logs, snapshots."""

from __future__ import annotations

from typing import Any

import pytest
import rlp
from eth import constants as evm_constants
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.vm.forks.prague import PragueVM
from eth_abi import decode, encode
from vyper.compiler import compile_code

from proml_sim.chain import (
    ContractABI,
    EventCodec,
    KeyRing,
    PyEVMBackend,
    Signer,
    TxSender,
    derive_private_keys,
    send_and_mine,
)
from proml_sim.chain.pyevm import FAUCET_BALANCE, FAUCET_SEED
from proml_sim.chain.trie import keccak
from proml_sim.errors import AlreadyRegistered, EngineError

SOURCE = """# pragma version ~=0.4.3
event Transitioned:
    id: indexed(bytes32)
    actor: indexed(address)
    version: uint256
    digest: bytes32

event Noted:
    tag: indexed(String[32])
    text: String[64]
    items: DynArray[bytes32, 4]

record: HashMap[bytes32, uint256]
roles: HashMap[address, uint256]

@deploy
def __init__():
    self.roles[msg.sender] = 1

@external
def register(salt: bytes32) -> bytes32:
    id: bytes32 = keccak256(concat(convert(msg.sender, bytes20), salt))
    assert self.record[id] == 0, "AlreadyRegistered: x"
    self.record[id] = (1 << 8) | 1
    log Transitioned(id=id, actor=msg.sender, version=1, digest=salt)
    return id

@external
def step(id: bytes32, digest: bytes32):
    r: uint256 = self.record[id]
    assert r != 0, "UnknownArtefact: x"
    v: uint256 = (r >> 8) + 1
    self.record[id] = (v << 8) | (r & 255)
    log Transitioned(id=id, actor=msg.sender, version=v, digest=digest)

@external
def note(tag: String[32], text: String[64], items: DynArray[bytes32, 4]):
    log Noted(tag=tag, text=text, items=items)

@view
@external
def version(id: bytes32) -> uint256:
    return self.record[id] >> 8

@external
def now() -> (uint256, uint256):
    return block.timestamp, block.number
"""

GWEI = 10**9


@pytest.fixture(scope="module")
def compiled() -> tuple[bytes, ContractABI]:
    out = compile_code(SOURCE, output_formats=["abi", "bytecode"])
    return bytes.fromhex(out["bytecode"][2:]), ContractABI(out["abi"])


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.from_seed("chain-tests", 4, owner="tester")


@pytest.fixture
def backend(ring: KeyRing) -> PyEVMBackend:
    return PyEVMBackend(funded=ring.addresses)


def signer(ring: KeyRing, i: int = 0) -> Signer:
    return ring.signer(ring.addresses[i])


def deploy(backend: PyEVMBackend, ring: KeyRing, compiled: tuple[bytes, ContractABI]) -> str:
    receipt = send_and_mine(backend, signer(ring), None, compiled[0], gas=1_000_000)
    assert receipt.status and receipt.contract_address
    return receipt.contract_address


def raw_tx(
    s: Signer,
    backend: PyEVMBackend,
    nonce: int,
    to: str | None,
    data: bytes = b"",
    *,
    gas: int = 100_000,
    tip: int = GWEI,
    max_fee: int | None = None,
    chain_id: int | None = None,
    value: int = 0,
) -> bytes:
    return s.sign_transaction(
        chain_id=backend.chain_id if chain_id is None else chain_id,
        nonce=nonce,
        to=to,
        data=data,
        gas=gas,
        max_fee_per_gas=2 * backend.base_fee() + tip if max_fee is None else max_fee,
        max_priority_fee_per_gas=tip,
        value=value,
    )


# -- deploy, call, receipts ------------------------------------------------------------------
def test_deploy_call_and_receipt_fields(
    backend: PyEVMBackend, ring: KeyRing, compiled: Any
) -> None:
    abi = compiled[1]
    addr = deploy(backend, ring, compiled)
    assert backend.code(addr)
    data = abi.encode_call("register", [b"\x01" * 32])
    call = backend.call(addr, data, sender=ring.addresses[0])
    assert call.success and call.revert_reason is None and call.gas_used > 21_000
    before = backend.balance(ring.addresses[0])
    r = send_and_mine(backend, signer(ring), addr, data, gas=200_000)
    assert r.status and r.output == call.output and r.gas_used == call.gas_used
    assert r.sender == ring.addresses[0] and r.to == addr and r.contract_address is None
    assert r.cumulative_gas_used == r.gas_used and r.tx_index == 0
    head = backend.head()
    assert (r.block_number, r.block_hash, r.block_timestamp) == (
        head.number,
        head.hash,
        head.timestamp,
    )
    assert r.effective_gas_price == head.base_fee + GWEI
    assert backend.balance(ring.addresses[0]) == before - r.gas_used * r.effective_gas_price
    assert (
        abi.decode_output(
            "version", backend.call(addr, abi.encode_call("version", [r.output])).output
        )
        == 1
    )
    assert backend.receipt(b"\x00" * 32) is None


def test_block_context_uses_the_produced_timestamp(
    backend: PyEVMBackend, ring: KeyRing, compiled: Any
) -> None:
    addr = deploy(backend, ring, compiled)
    r = send_and_mine(
        backend,
        signer(ring),
        addr,
        compiled[1].encode_call("now"),
        gas=100_000,
        timestamp=backend.head().timestamp + 100,
    )
    assert compiled[1].decode_output("now", r.output) == (r.block_timestamp, r.block_number)
    assert backend.head().timestamp == r.block_timestamp
    with pytest.raises(EngineError, match="must be greater than the parent"):
        backend.produce_block(backend.head().timestamp)


def test_revert_is_charged_and_decoded(backend: PyEVMBackend, ring: KeyRing, compiled: Any) -> None:
    addr = deploy(backend, ring, compiled)
    data = compiled[1].encode_call("register", [b"\x02" * 32])
    send_and_mine(backend, signer(ring), addr, data, gas=200_000)
    with pytest.raises(AlreadyRegistered, match="x"):
        backend.estimate_gas(ring.addresses[0], addr, data)
    before = backend.balance(ring.addresses[0])
    r = send_and_mine(backend, signer(ring), addr, data, gas=200_000)
    assert not r.status and r.revert_reason == "AlreadyRegistered: x"
    assert 21_000 < r.gas_used < 200_000 and r.logs == ()
    assert backend.balance(ring.addresses[0]) == before - r.gas_used * r.effective_gas_price
    oog = send_and_mine(
        backend, signer(ring), addr, compiled[1].encode_call("register", [b"\x03" * 32]), gas=23_000
    )
    assert (
        not oog.status
        and oog.gas_used == 23_000
        and oog.output == b""
        and oog.revert_reason is None
    )


def test_estimate_gas_is_enough(backend: PyEVMBackend, ring: KeyRing, compiled: Any) -> None:
    create_gas = backend.estimate_gas(ring.addresses[0], None, compiled[0])
    r = send_and_mine(backend, signer(ring), None, compiled[0], gas=create_gas)
    assert r.status and r.gas_used <= create_gas
    data = compiled[1].encode_call("register", [b"\x04" * 32])
    gas = backend.estimate_gas(ring.addresses[0], r.contract_address, data)
    r2 = send_and_mine(backend, signer(ring), r.contract_address, data, gas=gas)
    assert r2.status and r2.gas_used <= gas


# -- the pool and block production -------------------------------------------------------------
def test_many_txs_from_one_sender_in_one_block(
    backend: PyEVMBackend, ring: KeyRing, compiled: Any
) -> None:
    abi = compiled[1]
    addr = deploy(backend, ring, compiled)
    ident = send_and_mine(
        backend, signer(ring), addr, abi.encode_call("register", [b"\x05" * 32]), gas=200_000
    ).output
    sender = TxSender(backend, signer(ring))
    hashes = [
        sender.send(addr, abi.encode_call("step", [ident, keccak(bytes([i]))]), gas=100_000)
        for i in range(50)
    ]
    assert backend.pending() == tuple(hashes)
    assert backend.next_nonce(ring.addresses[0]) == backend.nonce(ring.addresses[0]) + 50
    block = backend.produce_block()
    assert block.tx_hashes == tuple(hashes) and backend.pending() == ()
    receipts = [backend.receipt(h) for h in hashes]
    assert all(r is not None and r.status for r in receipts)
    assert [r.nonce for r in receipts] == sorted(r.nonce for r in receipts)  # type: ignore[union-attr]
    assert [r.tx_index for r in receipts] == list(range(50))  # type: ignore[union-attr]
    assert receipts[-1].cumulative_gas_used == block.gas_used == sum(r.gas_used for r in receipts)  # type: ignore[union-attr]
    assert (
        abi.decode_output("version", backend.call(addr, abi.encode_call("version", [ident])).output)
        == 51
    )


def test_nonce_gap_stays_pending(backend: PyEVMBackend, ring: KeyRing) -> None:
    s = signer(ring)
    to = ring.addresses[1]
    h0 = backend.submit(raw_tx(s, backend, 0, to, gas=21_000))
    h2 = backend.submit(raw_tx(s, backend, 2, to, gas=21_000))
    assert backend.next_nonce(s.address) == 1
    block = backend.produce_block()
    assert block.tx_hashes == (h0,) and backend.pending() == (h2,)
    assert backend.receipt(h2) is None
    h1 = backend.submit(raw_tx(s, backend, 1, to, gas=21_000))
    assert backend.next_nonce(s.address) == 3
    assert backend.produce_block().tx_hashes == (h1, h2)


def test_fee_ordering_across_senders(backend: PyEVMBackend, ring: KeyRing) -> None:
    a, b, c, d = (signer(ring, i) for i in range(4))
    to = ring.addresses[0]
    a0 = backend.submit(raw_tx(a, backend, 0, to, gas=21_000, tip=1 * GWEI))
    a1 = backend.submit(raw_tx(a, backend, 1, to, gas=21_000, tip=10 * GWEI))
    b0 = backend.submit(raw_tx(b, backend, 0, to, gas=21_000, tip=5 * GWEI))
    c0 = backend.submit(raw_tx(c, backend, 0, to, gas=21_000, tip=3 * GWEI))
    d0 = backend.submit(raw_tx(d, backend, 0, to, gas=21_000, tip=3 * GWEI))  # tie with c: arrival
    # a1 pays most but must wait for a0 (nonce order per sender)
    assert backend.produce_block().tx_hashes == (b0, c0, d0, a0, a1)
    # effective tip is capped by max_fee - base_fee
    capped = backend.submit(
        raw_tx(a, backend, 2, to, gas=21_000, tip=50 * GWEI, max_fee=backend.base_fee() + GWEI)
    )
    plain = backend.submit(raw_tx(b, backend, 1, to, gas=21_000, tip=2 * GWEI))
    assert backend.produce_block().tx_hashes == (plain, capped)
    assert (
        backend.receipt(capped).effective_gas_price
        == backend.block(backend.head().number).base_fee + GWEI
    )  # type: ignore[union-attr]


def test_block_gas_limit_leaves_the_rest_pending(ring: KeyRing, compiled: Any) -> None:
    backend = PyEVMBackend(funded=ring.addresses, gas_limit=1_000_000)
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
    assert first.gas_used + 150_000 > first.gas_limit  # the next one did not fit
    assert backend.pending() == tuple(hashes[n:])
    second = backend.produce_block(max_txs=5)
    assert second.tx_hashes == tuple(hashes[n : n + 5])
    while backend.pending():
        backend.produce_block()
    assert backend.produce_block().tx_hashes == ()  # empty blocks are fine


def test_submit_rejections(backend: PyEVMBackend, ring: KeyRing) -> None:
    s = signer(ring)
    to = ring.addresses[1]
    with pytest.raises(EngineError, match="chain id 1, this chain is 1337"):
        backend.submit(raw_tx(s, backend, 0, to, gas=21_000, chain_id=1))
    good = raw_tx(s, backend, 0, to, gas=21_000)
    fields = rlp.decode(good[1:])
    high_s = [*fields[:11], (2**256 - 1).to_bytes(32, "big")]
    with pytest.raises(EngineError, match="bad signature"):
        backend.submit(b"\x02" + rlp.encode(high_s))
    zero_r = [*fields[:10], b"", fields[11]]
    with pytest.raises(EngineError, match="bad signature"):
        backend.submit(b"\x02" + rlp.encode(zero_r))
    with pytest.raises(EngineError, match="malformed"):
        backend.submit(good[:-3])
    with pytest.raises(EngineError, match="not supported"):
        backend.submit(b"\x03" + good[1:])
    backend.submit(good)
    with pytest.raises(EngineError, match="already known"):
        backend.submit(good)
    with pytest.raises(EngineError, match=r"nonce 0 .* already used by pending"):
        backend.submit(raw_tx(s, backend, 0, to, gas=21_001))
    backend.produce_block()
    with pytest.raises(EngineError, match=r"nonce 0 .* already used \(confirmed nonce is 1\)"):
        backend.submit(raw_tx(s, backend, 0, to, gas=21_002))
    with pytest.raises(EngineError, match="below the intrinsic gas"):
        backend.submit(raw_tx(s, backend, 1, to, gas=20_000))
    poor = Signer(derive_private_keys("poor", 1)[0])
    with pytest.raises(EngineError, match="cannot pay"):
        backend.submit(raw_tx(poor, backend, 0, to, gas=21_000))


def test_legacy_transactions(backend: PyEVMBackend, ring: KeyRing) -> None:
    from eth_account import Account

    key = derive_private_keys("chain-tests", 1)[0]
    tx = {
        "nonce": 0,
        "gasPrice": 2 * backend.base_fee(),
        "gas": 21_000,
        "to": ring.addresses[1],
        "value": 5,
        "data": b"",
    }
    signed = Account.sign_transaction({**tx, "chainId": backend.chain_id}, key)
    h = backend.submit(bytes(signed.raw_transaction))
    assert h == bytes(signed.hash)
    backend.produce_block()
    assert backend.receipt(h).status  # type: ignore[union-attr]
    replayable = Account.sign_transaction({**tx, "nonce": 1}, key)  # no chain id (pre-EIP-155)
    with pytest.raises(EngineError, match="EIP-155"):
        backend.submit(bytes(replayable.raw_transaction))


# -- logs -------------------------------------------------------------------------------------
def test_logs_filter_by_address_topic_and_range(
    backend: PyEVMBackend, ring: KeyRing, compiled: Any
) -> None:
    abi = compiled[1]
    addr = deploy(backend, ring, compiled)
    ids = [
        send_and_mine(
            backend, signer(ring), addr, abi.encode_call("register", [bytes([i]) * 32]), gas=200_000
        ).output
        for i in (1, 2)
    ]
    first_block = backend.head().number - 1
    s = TxSender(backend, signer(ring))
    s.send(addr, abi.encode_call("step", [ids[0], b"\x09" * 32]), gas=100_000)
    s.send(addr, abi.encode_call("note", ["release", "hello", [b"\x0a" * 32]]), gas=100_000)
    backend.produce_block()
    topic = abi.events.topic("Transitioned")
    assert len(backend.logs(addr)) == 4
    only_first = backend.logs(topics=[topic, ids[0]])
    assert [log.topics[1] for log in only_first] == [ids[0], ids[0]]
    actor = b"\x00" * 12 + bytes.fromhex(ring.addresses[0][2:])
    assert len(backend.logs(topics=[None, None, actor])) == 3  # wildcard positions
    assert backend.logs(topics=[topic, None, None, None]) == []  # more topics than the log has
    assert [
        log.block_number for log in backend.logs(from_block=first_block, to_block=first_block)
    ] == [first_block]
    assert backend.logs(ring.addresses[1]) == []
    noted = backend.logs(topics=[abi.events.topic("Noted")])
    assert len(noted) == 1 and noted[0].log_index == 1 and noted[0].tx_index == 1
    name, args = EventCodec(abi.abi).decode_log(noted[0])
    assert (name, args["tag"], args["text"], args["items"]) == (
        "Noted",
        keccak(b"release"),
        "hello",
        (b"\x0a" * 32,),
    )


# -- snapshots and determinism ---------------------------------------------------------------
def test_snapshot_revert_restores_head_state_and_pool(
    backend: PyEVMBackend, ring: KeyRing, compiled: Any
) -> None:
    addr = deploy(backend, ring, compiled)
    s = TxSender(backend, signer(ring))
    waiting = s.send(ring.addresses[1], gas=21_000, value=10)
    snap = backend.snapshot()
    head, balance, pending = backend.head(), backend.balance(ring.addresses[1]), backend.pending()
    later = s.send(addr, compiled[1].encode_call("register", [b"\x0b" * 32]), gas=200_000)
    first = backend.produce_block()
    backend.produce_block()
    assert backend.balance(ring.addresses[1]) == balance + 10
    backend.revert(snap)
    assert backend.head() == head and backend.balance(ring.addresses[1]) == balance
    assert backend.pending() == pending == (waiting,)
    assert backend.receipt(waiting) is None and backend.receipt(later) is None
    assert backend.logs(from_block=head.number + 1) == []
    with pytest.raises(EngineError, match="no block"):
        backend.block(head.number + 1)
    # the same operations again give the same block
    assert s.send(addr, compiled[1].encode_call("register", [b"\x0b" * 32]), gas=200_000) == later
    assert backend.produce_block() == first
    backend.revert(snap)  # a snapshot stays usable
    assert backend.head() == head
    with pytest.raises(EngineError, match="unknown snapshot id 999"):
        backend.revert(999)


def test_same_seed_same_addresses_and_block_hashes(compiled: Any) -> None:
    def run() -> list[bytes]:
        ring = KeyRing.from_seed("determinism", 2)
        backend = PyEVMBackend(funded=ring.addresses)
        addr = deploy(backend, ring, compiled)
        s = TxSender(backend, signer(ring, 1))
        for i in range(5):
            s.send(addr, compiled[1].encode_call("register", [bytes([i]) * 32]), gas=200_000)
        backend.produce_block()
        backend.faucet_send(ring.addresses[0], 123)
        backend.produce_block(backend.head().timestamp + 7)
        return [backend.block(n).hash for n in range(backend.head().number + 1)]

    assert run() == run()


def test_faucet(backend: PyEVMBackend) -> None:
    newcomer = Signer(derive_private_keys("newcomer", 1)[0]).address
    assert backend.balance(newcomer) == 0
    assert backend.balance(backend.faucet_address) == FAUCET_BALANCE
    backend.faucet_send(newcomer, 10**18)
    backend.produce_block()
    assert backend.balance(newcomer) == 10**18
    assert Signer(derive_private_keys(FAUCET_SEED, 1)[0]).address == backend.faucet_address


# -- the blocks are py-evm's own --------------------------------------------------------------
def test_blocks_equal_stock_py_evm(compiled: Any) -> None:
    """Replay the same transactions through stock py-evm (MiningChain.mine_all, PragueVM):
    same block hashes, hence the same state, receipt and transaction roots."""
    ring = KeyRing.from_seed("differential", 3)
    backend = PyEVMBackend(funded=ring.addresses, gas_limit=30_000_000)
    abi = compiled[1]
    plan: list[tuple[int, list[bytes]]] = []

    def block(raws: list[bytes], ts: int) -> None:
        for raw in raws:
            backend.submit(raw)
        info = backend.produce_block(ts)
        assert len(info.tx_hashes) == len(raws)
        plan.append((ts, raws))

    s0, s1 = signer(ring, 0), signer(ring, 1)
    block([raw_tx(s0, backend, 0, None, compiled[0], gas=1_000_000)], 1_700_000_012)
    addr = backend.receipt(keccak(plan[0][1][0])).contract_address  # type: ignore[union-attr]
    reg = [abi.encode_call("register", [bytes([i]) * 32]) for i in range(3)]
    block(
        [
            raw_tx(s0, backend, 1, addr, reg[0], gas=200_000),
            raw_tx(s0, backend, 2, addr, reg[0], gas=200_000),  # reverts
            raw_tx(s1, backend, 0, addr, reg[1], gas=23_000),  # out of gas
            raw_tx(
                s1,
                backend,
                1,
                addr,
                abi.encode_call("note", ["t", "x" * 60, [b"\x01" * 32] * 4]),
                gas=200_000,
            ),
            raw_tx(s1, backend, 2, ring.addresses[2], gas=21_000, value=7),
        ],
        1_700_000_030,
    )
    block([], 1_700_000_031)
    block(
        [raw_tx(s0, backend, 3 + i, addr, abi.encode_call("now"), gas=60_000) for i in range(20)],
        1_700_000_050,
    )

    klass = MiningChain.configure(
        __name__="Stock", vm_configuration=((0, PragueVM),), chain_id=backend.chain_id
    )
    alloc = {
        bytes.fromhex(a[2:]): {"balance": 10**24, "nonce": 0, "code": b"", "storage": {}}
        for a in ring.addresses
    }
    alloc[bytes.fromhex(backend.faucet_address[2:])] = {
        "balance": FAUCET_BALANCE,
        "nonce": 0,
        "code": b"",
        "storage": {},
    }
    stock = klass.from_genesis(
        AtomicDB(),
        {
            "difficulty": 0,
            "gas_limit": 30_000_000,
            "timestamp": 1_700_000_000,
            "coinbase": evm_constants.ZERO_ADDRESS,
            "extra_data": b"",
            "nonce": b"\x00" * 8,
            "mix_hash": evm_constants.ZERO_HASH32,
        },
        alloc,
    )
    assert stock.get_canonical_head().hash == backend.block(0).hash
    builder = PragueVM.get_transaction_builder()
    for number, (ts, raws) in enumerate(plan, start=1):
        parent = stock.get_canonical_head()
        stock.header = PragueVM.create_header_from_parent(
            parent, timestamp=ts, gas_limit=30_000_000, coinbase=evm_constants.ZERO_ADDRESS
        )
        result, receipts, _ = stock.mine_all([builder.decode(r) for r in raws], timestamp=ts)
        ours = backend.block(number)
        assert result.imported_block.hash == ours.hash, f"block {number} differs"
        for i, receipt in enumerate(receipts):
            r = backend.receipt(keccak(raws[i]))
            assert r is not None and r.cumulative_gas_used == receipt.gas_used
    # and py-evm can read our blocks back from its database
    again = backend._chain.get_canonical_block_by_number(2)
    assert [tx.hash for tx in again.transactions] == [keccak(r) for r in plan[1][1]]
    assert decode(["uint256", "uint256"], backend.receipt(keccak(plan[3][1][0])).output) == (
        1_700_000_050,
        4,
    )  # type: ignore[union-attr]
    assert encode(["uint256"], [1])  # eth_abi available for the lifecycle layer


def test_release_forgets_a_snapshot_and_stops_journaling(
    backend: PyEVMBackend, ring: KeyRing
) -> None:
    sid = backend.snapshot()
    backend.produce_block()
    backend.release(sid)
    with pytest.raises(EngineError, match="unknown snapshot id"):
        backend.revert(sid)
    assert backend._db.undo is None
    backend.release(12345)  # unknown ids are ignored
