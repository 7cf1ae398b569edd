from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proml_sim import EvidenceRequired
from proml_sim.chain import KeyRing, PyEVMBackend
from proml_sim.chain.anchor import AnchorClient
from proml_sim.chain.merkle import MerkleTree, leaf_hash, node_hash, verify


@given(st.lists(st.binary(min_size=0, max_size=40), min_size=1, max_size=70), st.data())
def test_every_record_proves_and_tampering_fails(records, data):
    tree = MerkleTree.build(records)
    for i, r in enumerate(records):
        assert verify(r, tree.proof(i), tree.root)
    i = data.draw(st.integers(0, len(records) - 1))
    assert not verify(records[i] + b"!", tree.proof(i), tree.root)


def test_inner_node_cannot_pass_as_a_record():
    records = [b"a", b"b", b"c", b"d"]
    tree = MerkleTree.build(records)
    inner = tree.levels[1][0]
    assert inner == node_hash(leaf_hash(b"a"), leaf_hash(b"b"))
    # presenting the concatenated children as a "record" does not verify
    assert not verify(leaf_hash(b"a") + leaf_hash(b"b"), tree.proof(2)[1:], tree.root)


def test_anchor_roots_on_chain_and_proofs_check_against_them():
    keys = KeyRing.from_seed("anchor", 2)
    backend = PyEVMBackend(funded=keys.addresses)
    anchor = AnchorClient.deploy(backend, keys.signer(keys.addresses[0]))
    records = [f"record-{i}".encode() for i in range(10)]
    tree = MerkleTree.build(records)
    batch = anchor.anchor(keys.signer(keys.addresses[1]), tree.root, len(records), "s3://b/1")
    assert batch == 1
    root = anchor.root_of(batch)
    assert all(verify(r, tree.proof(i), root) for i, r in enumerate(records))
    with pytest.raises(EvidenceRequired):
        anchor.anchor(keys.signer(keys.addresses[1]), b"\0" * 32, 1)
    with pytest.raises(IndexError):
        tree.proof(10)
