"""The JSON-RPC engine against a real node (anvil, started by the ``anvil_url`` fixture): the
lifecycle client works on it unchanged, with the same errors, gas and events as in process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from proml_sim.chain import KeyRing, PyEVMBackend, TxSender
from proml_sim.chain.client import LifecycleClient
from proml_sim.chain.engines import make_backend
from proml_sim.chain.rpc import RPCBackend
from proml_sim.compiler import compile_artefact
from proml_sim.errors import EngineError, RoleNotAllowed
from proml_sim.lifecycles import SingleAdminModel as Model  # chain mechanics, one admin

COMPILED = compile_artefact(Model)


@pytest.fixture
def node(anvil_url: str) -> Iterator[RPCBackend]:
    backend = RPCBackend(anvil_url)
    sid = backend.snapshot()  # every test starts from the node's state at this point
    yield backend
    backend.revert(sid)


def _scenario(backend, keys):  # type: ignore[no-untyped-def]
    a = keys.addresses
    start = backend.head().number
    c = LifecycleClient.deploy(backend, COMPILED, keys.signer(a[0]))
    c.grant(keys.signer(a[0]), "operator", a[1])
    c.grant(keys.signer(a[0]), "developer", a[2])
    rid = c.register(keys.signer(a[1]), b"\x05" * 32, b"\x01" * 32, "s3://m")
    c.fire(keys.signer(a[2]), "train", rid, b"\x07" * 32, "s3://x", [rid])
    with pytest.raises(RoleNotAllowed, match=r"Model\.train needs role developer"):
        c.fire(keys.signer(a[1]), "train", rid, b"\x07" * 32)
    blocks = range(start + 1, backend.head().number + 1)
    hashes = [h for n in blocks for h in backend.block(n).tx_hashes]
    receipts = [backend.receipt(h) for h in hashes]
    return (
        [(r.status, r.gas_used, r.revert_reason, len(r.logs)) for r in receipts],
        c.state(rid),
        [type(e).__name__ for e in c.events()],
        c.snapshot(),
    )


def test_client_on_anvil_equals_py_evm(node: RPCBackend) -> None:
    keys = KeyRing.from_seed("rpc-client", 3)
    for address in keys.addresses:
        node.set_balance(address, 10**24)
    ours = _scenario(node, keys)
    reference = _scenario(PyEVMBackend(funded=keys.addresses), keys)
    assert ours == reference
    assert len(ours[0]) == 6 and ours[0][-1][:1] == (False,)


def test_pool_blocks_and_snapshots(node: RPCBackend) -> None:
    keys = KeyRing.from_seed("rpc-pool", 2)
    for address in keys.addresses:
        node.set_balance(address, 10**24)
    sender = TxSender(node, keys.signer(keys.addresses[0]))
    before = node.head()
    sid = node.snapshot()
    hashes = [sender.send(keys.addresses[1], gas=21_000, value=1) for _ in range(3)]
    assert node.pending() == tuple(hashes) and node.head() == before  # nothing mined yet
    assert node.next_nonce(keys.addresses[0]) == node.nonce(keys.addresses[0]) + 3
    block = node.produce_block(before.timestamp + 5)
    assert block.tx_hashes == tuple(hashes) and block.timestamp == before.timestamp + 5
    assert block.parent_hash == before.hash and not node.pending()
    r = node.receipt(hashes[2])
    assert r is not None and r.status and r.gas_used == 21_000 and r.tx_index == 2
    with pytest.raises(EngineError, match="must be greater than the parent"):
        node.produce_block(block.timestamp)
    node.revert(sid)
    assert node.head() == before and node.receipt(hashes[0]) is None
    node.revert(sid)  # the id stays valid
    with pytest.raises(EngineError, match="unknown snapshot id"):
        node.revert(sid + 100)


def test_make_backend_names_its_engines(anvil_url: str) -> None:
    assert make_backend("rpc", rpc_url=anvil_url).chain_id == 1337
    with pytest.raises(ValueError, match="--rpc-url"):
        make_backend("rpc")
    with pytest.raises(ValueError, match="pyevm, revm, rpc"):
        make_backend("geth")
    with pytest.raises(EngineError, match="no Ethereum JSON-RPC node answers"):
        RPCBackend("http://127.0.0.1:9", timeout=2)


def test_revert_restores_the_pending_pool(node: RPCBackend) -> None:
    keys = KeyRing.from_seed("rpc-revert-pool", 2)
    for address in keys.addresses:
        node.set_balance(address, 10**24)
    sender = TxSender(node, keys.signer(keys.addresses[0]))
    first = sender.send(keys.addresses[1], gas=21_000, value=1)
    sid = node.snapshot()  # `first` is pending here
    second = sender.send(keys.addresses[1], gas=21_000, value=2)
    assert node.produce_block().tx_hashes == (first, second)
    node.revert(sid)
    assert node.pending() == (first,)
    assert node.produce_block().tx_hashes == (first,)  # `second` is gone, `first` is back
