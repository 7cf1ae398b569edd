"""The engines' fast type-2 transaction decoder agrees with pyrlp's strict decoder: on valid
signed transactions, on transactions with access lists, and on mangled bytes (flipped,
truncated, extended, spliced), both accept with the same fields or both refuse."""

from __future__ import annotations

import rlp
from hypothesis import given, settings
from hypothesis import strategies as st

from proml_sim.chain._txpool import _decode_type2_items_rlp, decode_type2_items
from proml_sim.chain.accounts import KeyRing
from proml_sim.errors import EngineError

_KEYS = KeyRing.from_seed("tx-decoding", 1)
SIGNER = _KEYS.signer(_KEYS.addresses[0])


def _reference(raw: bytes) -> list | None:
    try:
        return _decode_type2_items_rlp(raw)
    except EngineError:
        return None


def _fast(raw: bytes) -> list | None:
    try:
        return decode_type2_items(raw)
    except EngineError as exc:
        assert str(exc).startswith("malformed transaction: ")
        return None


signed = st.builds(
    lambda nonce, gas, fee, tip, value, data, to: SIGNER.sign_transaction(
        chain_id=1337, nonce=nonce, to=to, data=data, gas=gas, max_fee_per_gas=fee,
        max_priority_fee_per_gas=tip, value=value,
    ),
    st.integers(0, 2**64 - 2),
    st.integers(0, 2**64),
    st.integers(0, 2**80),
    st.integers(0, 2**20),
    st.integers(0, 2**100),
    st.binary(max_size=300),
    st.one_of(st.just(b""), st.binary(min_size=20, max_size=20)),
)


@settings(max_examples=300, deadline=None)
@given(signed)
def test_valid_transactions_decode_alike(raw: bytes) -> None:
    assert _fast(raw) == _reference(raw) is not None


@settings(max_examples=1500, deadline=None)
@given(
    signed,
    st.lists(
        st.tuples(
            st.sampled_from(["flip", "truncate", "append", "insert", "delete"]),
            st.integers(0, 10_000),
            st.integers(0, 255),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_mangled_transactions_are_refused_or_read_alike(raw: bytes, edits: list) -> None:
    b = bytearray(raw)
    for op, at, byte in edits:
        i = 1 + at % max(len(b) - 1, 1)  # keep the type byte
        if op == "flip":
            if len(b) > 1:  # the type byte stays (an empty or untyped input is another test)
                b[min(i, len(b) - 1)] = byte
        elif op == "truncate":
            del b[i:]
        elif op == "append":
            b.append(byte)
        elif op == "insert":
            b.insert(i, byte)
        elif len(b) > 1:  # delete, keeping the type byte
            del b[min(i, len(b) - 1)]
    mangled = bytes(b)
    assert _fast(mangled) == _reference(mangled)


items_strategy = st.lists(
    st.one_of(
        st.binary(max_size=70),
        st.lists(st.binary(max_size=40), max_size=3),
        st.lists(
            st.tuples(
                st.binary(min_size=20, max_size=20),
                st.lists(st.binary(min_size=32, max_size=32)),
            ),
            max_size=2,
        ),
    ),
    min_size=10,
    max_size=13,
)


@settings(max_examples=500, deadline=None)
@given(items_strategy)
def test_arbitrary_rlp_lists_decode_alike(items: list) -> None:
    raw = b"\x02" + rlp.encode(items)
    assert _fast(raw) == _reference(raw)


def _list(payload: bytes) -> bytes:
    if len(payload) < 56:
        return bytes((0xC0 + len(payload),)) + payload
    n = len(payload).to_bytes((len(payload).bit_length() + 7) // 8, "big")
    return bytes((0xF7 + len(n),)) + n + payload


def test_non_canonical_prefixes_are_refused() -> None:
    good = SIGNER.sign_transaction(chain_id=1337, nonce=5, to=b"\x01" * 20, data=b"\x07",
                                   gas=21_000, max_fee_per_gas=10, max_priority_fee_per_gas=1)
    items = _fast(good)
    assert items is not None and items == _reference(good)
    fields = [rlp.encode(x) for x in items]
    cases = {
        "byte 0x07 as the string 0x81 0x07": [*fields[:7], b"\x81\x07", *fields[8:]],
        "short string in long form": [*fields[:7], b"\xb8\x01\x99", *fields[8:]],
        "long length with a leading zero": [*fields[:7], b"\xb9\x00\x01\x99", *fields[8:]],
        "eleven fields": fields[:11],
    }
    for name, parts in cases.items():
        raw = b"\x02" + _list(b"".join(parts))
        assert _fast(raw) is None, name
        assert _reference(raw) is None, name
    # a short list written in long form, and trailing bytes after the list
    payload = b"".join(fields)
    trailing = b"\x02" + _list(payload) + b"\x00"
    assert _fast(trailing) is None and _reference(trailing) is None
