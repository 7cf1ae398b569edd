"""The one-pass ordered trie equals py-evm's HexaryTrie, root and persisted nodes."""

from __future__ import annotations

import random

import pytest
import rlp
from hypothesis import given, settings
from hypothesis import strategies as st
from trie import HexaryTrie

from proml_sim.chain.trie import BLANK_ROOT, ordered_trie_root


def reference(items: list[bytes]) -> tuple[bytes, dict[bytes, bytes]]:
    store: dict[bytes, bytes] = {}
    t = HexaryTrie(store, BLANK_ROOT)
    with t.squash_changes() as memory_trie:
        for i, item in enumerate(items):
            memory_trie[rlp.encode(i)] = item
    return t.root_hash, store


@pytest.mark.parametrize("n", [0, 1, 2, 15, 16, 17, 127, 128, 129, 300])
def test_root_and_nodes_match_hexary_trie(n: int) -> None:
    rnd = random.Random(n)
    items = [
        rnd.randbytes(rnd.choice([1, 2, 5, 20, 31, 32, 33, 55, 56, 100, 300])) for _ in range(n)
    ]
    assert ordered_trie_root(items) == reference(items)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=120), max_size=300))
def test_random_items_match_hexary_trie(items: list[bytes]) -> None:
    assert ordered_trie_root(items) == reference(items)


def test_empty_item_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        ordered_trie_root([b"a", b""])
