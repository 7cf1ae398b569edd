"""Deterministic keys, key custody, signing equal to py-evm's."""

from __future__ import annotations

import pytest
from eth.vm.forks.prague.transactions import PragueTransactionBuilder
from eth_keys import keys
from eth_utils import to_canonical_address
from hypothesis import given, settings
from hypothesis import strategies as st

from proml_sim.chain.accounts import KeyRing, Signer, derive_private_keys
from proml_sim.chain.pyevm import _decode_dynamic_fee, _recover_typed_sender
from proml_sim.errors import KeyCustodyError


def test_keys_are_deterministic_and_namespaced() -> None:
    a = derive_private_keys("seed", 3)
    assert a == derive_private_keys("seed", 3)
    assert a[:2] == derive_private_keys("seed", 2)
    assert len(set(a)) == 3
    assert a != derive_private_keys("seed", 3, namespace="other")
    assert a != derive_private_keys("seed2", 3)
    assert KeyRing.from_seed(7, 2).addresses == KeyRing.from_seed("7", 2).addresses


def test_address_matches_eth_keys() -> None:
    key = derive_private_keys(1, 1)[0]
    assert Signer(key).address == keys.PrivateKey(key).public_key.to_checksum_address()
    assert "key" not in repr(Signer(key)).lower()


def test_key_custody_error_names_actor_and_address() -> None:
    ring = KeyRing.from_seed(1, 2, owner="alice")
    other = KeyRing.from_seed(2, 1).addresses[0]
    assert ring.signer(ring.addresses[0].lower()).address == ring.addresses[0]
    with pytest.raises(KeyCustodyError, match=f"actor alice holds no key for {other}; add it"):
        ring.signer(other)
    assert other not in ring
    added = ring.add(derive_private_keys(2, 1)[0])
    assert added == other and other in ring and len(ring) == 3


@settings(max_examples=25, deadline=None)
@given(
    nonce=st.integers(0, 2**64 - 2),
    gas=st.integers(21_000, 30_000_000),
    tip=st.integers(0, 10**12),
    fee=st.integers(0, 10**15),
    value=st.integers(0, 10**30),
    data=st.binary(max_size=200),
    create=st.booleans(),
)
def test_signing_and_fast_decode_match_py_evm(
    nonce: int, gas: int, tip: int, fee: int, value: int, data: bytes, create: bool
) -> None:
    key = derive_private_keys("sig", 1)[0]
    to = b"" if create else b"\x42" * 20
    raw = Signer(key).sign_transaction(
        chain_id=1337,
        nonce=nonce,
        to=to,
        data=data,
        gas=gas,
        max_fee_per_gas=fee,
        max_priority_fee_per_gas=tip,
        value=value,
    )
    reference = PragueTransactionBuilder.new_unsigned_dynamic_fee_transaction(
        chain_id=1337,
        nonce=nonce,
        max_priority_fee_per_gas=tip,
        max_fee_per_gas=fee,
        gas=gas,
        to=to,
        value=value,
        data=data,
        access_list=(),
    ).as_signed_transaction(keys.PrivateKey(key))
    assert raw == reference.encode()  # RFC 6979: same signature, same bytes
    decoded = _decode_dynamic_fee(raw)
    assert decoded == PragueTransactionBuilder.decode(raw)
    assert _recover_typed_sender(raw, decoded) == to_canonical_address(Signer(key).address)
    assert _recover_typed_sender(raw, decoded) == reference.sender
