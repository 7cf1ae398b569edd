"""One-pass builder for Ethereum's ordered-index tries (transactions, receipts, withdrawals).

A block's transaction and receipt roots are roots of a Merkle-Patricia trie whose keys are
``rlp(index)``.  py-evm builds them with one ``HexaryTrie`` insert per item, re-hashing the path
each time; that was a third of block time.  Here all keys are known up front, so the trie is built
bottom-up in a single recursive pass: every node is RLP-encoded and hashed exactly once.

The result is byte-identical to ``trie.HexaryTrie`` (checked by ``tests/unit/chain/test_trie.py``):
the same root and the same ``{hash: rlp(node)}`` mapping py-evm persists, nodes shorter than 32
bytes embedded in their parent, and the root node stored under its hash whatever its size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import rlp

try:  # pysha3 is a C extension: ~5x cheaper per call than eth_hash's pycryptodome backend
    from sha3 import keccak_256 as _keccak_256

    def keccak(data: bytes) -> bytes:
        """Keccak-256 digest of ``data``."""
        return _keccak_256(data).digest()  # type: ignore[no-any-return]

except ImportError:  # pragma: no cover - depends on the environment
    from eth_hash.auto import keccak as _eth_keccak

    def keccak(data: bytes) -> bytes:
        """Keccak-256 digest of ``data``."""
        return _eth_keccak(data)


__all__ = ["BLANK_ROOT", "keccak", "ordered_trie_root", "rlp_encode_bytes", "rlp_encode_list"]

BLANK_ROOT = keccak(b"\x80")
_EMPTY = b"\x80"  # rlp(b""): an empty branch slot or an absent branch value


def rlp_encode_bytes(b: bytes) -> bytes:
    """RLP encoding of one byte string."""
    n = len(b)
    if n == 1 and b[0] < 0x80:
        return b
    if n < 56:
        return bytes((0x80 + n,)) + b
    lb = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0xB7 + len(lb),)) + lb + b


def rlp_encode_list(payload: bytes) -> bytes:
    """RLP encoding of a list whose items' encodings, concatenated, are ``payload``."""
    n = len(payload)
    if n < 56:
        return bytes((0xC0 + n,)) + payload
    lb = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0xF7 + len(lb),)) + lb + payload


def rlp_uint(value: int) -> bytes:
    """RLP encoding of a non-negative integer (a trie's index key, a transaction's field)."""
    if value == 0:
        return b"\x80"
    if value < 0x80:
        return bytes((value,))
    b = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return bytes((0x80 + len(b),)) + b


def _hex_prefix(nibbles: bytes, leaf: bool) -> bytes:
    flag = 0x20 if leaf else 0x00
    if len(nibbles) % 2:
        head = bytes((flag | 0x10 | nibbles[0],))
        rest = nibbles[1:]
    else:
        head = bytes((flag,))
        rest = nibbles
    return head + bytes(rest[i] << 4 | rest[i + 1] for i in range(0, len(rest), 2))


def ordered_trie_root(
    items: Sequence[bytes], *, hasher: Callable[[bytes], bytes] = keccak
) -> tuple[bytes, dict[bytes, bytes]]:
    """Root and node mapping of the trie ``{rlp(i): items[i]}``.

    ``items`` are the already-encoded values (``tx.encode()``, receipt encodings...); they must be
    non-empty, as an empty value means "absent" in a Merkle-Patricia trie.
    """
    if not items:
        return BLANK_ROOT, {}
    keyed = sorted((rlp_uint(i), i) for i in range(len(items)))
    keys = [bytes(n for byte in k for n in (byte >> 4, byte & 15)) for k, _ in keyed]
    values = [items[i] for _, i in keyed]
    nodes: dict[bytes, bytes] = {}

    def ref(encoded: bytes) -> bytes:
        if len(encoded) < 32:
            return encoded  # embedded in the parent as is
        h = hasher(encoded)
        nodes[h] = encoded
        return b"\xa0" + h

    def build(lo: int, hi: int, depth: int) -> bytes:
        first = keys[lo]
        if hi - lo == 1:
            value = values[lo]
            if not value:
                raise ValueError(f"trie item {lo} is empty; empty values mean 'absent'")
            return rlp_encode_list(
                rlp_encode_bytes(_hex_prefix(first[depth:], True)) + rlp_encode_bytes(value)
            )
        last = keys[hi - 1]
        common = depth
        limit = min(len(first), len(last))
        while common < limit and first[common] == last[common]:
            common += 1
        if common > depth:
            child = build(lo, hi, common)
            return rlp_encode_list(
                rlp_encode_bytes(_hex_prefix(first[depth:common], False)) + ref(child)
            )
        slots = [_EMPTY] * 16
        value_slot = _EMPTY
        i = lo
        if len(first) == depth:  # a key ends here: its value sits in the branch
            value_slot = rlp_encode_bytes(values[i])
            i += 1
        while i < hi:
            nib = keys[i][depth]
            j = i + 1
            while j < hi and keys[j][depth] == nib:
                j += 1
            slots[nib] = ref(build(i, j, depth + 1))
            i = j
        return rlp_encode_list(b"".join(slots) + value_slot)

    root_node = build(0, len(keys), 0)
    root = hasher(root_node)
    nodes[root] = root_node
    return root, nodes


def rlp_decode(raw: bytes, *, strict: bool = True) -> Any:
    """``rlp.decode`` for bytes from outside (a bundle's headers, a submitted transaction):
    lists nested deeper than the decoder's recursion limit are a ``rlp.DecodingError`` like any
    other malformed RLP, not a ``RecursionError``."""
    try:
        return rlp.decode(raw, strict=strict)
    except RecursionError:
        raise rlp.DecodingError("RLP nested too deeply to decode", raw) from None
