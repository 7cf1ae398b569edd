"""Merkle trees over provenance records, with inclusion proofs checked against on-chain roots.

Leaves and inner nodes are domain-separated (``keccak(0x00 ++ record)`` and
``keccak(0x01 ++ left ++ right)``) so that an inner node can never pass for a record.  A level
with an odd number of nodes carries its last node up unchanged.  A proof is the list of sibling
hashes from the leaf up, each with the side it sits on.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils.crypto import keccak


def leaf_hash(record: bytes) -> bytes:
    return keccak(b"\x00" + record)


def node_hash(left: bytes, right: bytes) -> bytes:
    return keccak(b"\x01" + left + right)


@dataclass(frozen=True)
class MerkleTree:
    levels: tuple[tuple[bytes, ...], ...]  # levels[0] = leaf hashes, levels[-1] = (root,)

    @classmethod
    def build(cls, records: list[bytes]) -> MerkleTree:
        if not records:
            raise ValueError("a Merkle tree needs at least one record")
        level = tuple(leaf_hash(r) for r in records)
        levels = [level]
        while len(level) > 1:
            nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            level = tuple(nxt)
            levels.append(level)
        return cls(tuple(levels))

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def proof(self, index: int) -> list[tuple[bool, bytes]]:
        """Siblings from the leaf up: (sibling_is_left, hash)."""
        if not 0 <= index < len(self.levels[0]):
            raise IndexError(f"record {index} is not in this tree of {len(self.levels[0])}")
        out = []
        for level in self.levels[:-1]:
            sib = index ^ 1
            if sib < len(level):
                out.append((sib < index, level[sib]))
            index //= 2
        return out


def verify(record: bytes, proof: list[tuple[bool, bytes]], root: bytes) -> bool:
    """Whether ``record`` with ``proof`` hashes up to ``root``."""
    h = leaf_hash(record)
    for is_left, sib in proof:
        h = node_hash(sib, h) if is_left else node_hash(h, sib)
    return h == root
