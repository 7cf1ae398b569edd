"""Pieces every in-process engine shares: raw-transaction decoding and sender recovery, the
pending pool with Ethereum block-builder ordering, and consensus receipt encoding.

:class:`~proml_sim.chain.pyevm.PyEVMBackend` and :class:`~proml_sim.chain.revm.RevmBackend` both
admit transactions and pick them for a block through :class:`TxPool`, so the two engines follow
the same pool rules (see :meth:`~proml_sim.chain.base.ChainBackend.submit` and
:meth:`~proml_sim.chain.base.ChainBackend.produce_block`) by construction.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import coincurve
import rlp

from proml_sim.chain.accounts import SECP256K1_N, Signer, TxSender
from proml_sim.chain.base import BlockInfo, Log
from proml_sim.chain.trie import keccak, rlp_decode, rlp_encode_bytes, rlp_encode_list, rlp_uint
from proml_sim.errors import EngineError

TX_BASE_GAS = 21_000
FLOOR_PER_TOKEN = 10  # EIP-7623: floor gas per calldata token
_SUCCESS = b"\x01"  # EIP-658 status byte
_FAILURE = b""


# ---------------------------------------------------------------------------------------------
# RLP and transaction decoding
# ---------------------------------------------------------------------------------------------
def rlp_walk(buf: bytes, pos: int) -> tuple[int, int]:
    """(payload start, item end) of the RLP item at ``pos``."""
    b0 = buf[pos]
    if b0 < 0x80:
        return pos, pos + 1
    if b0 < 0xB8:
        return pos + 1, pos + 1 + b0 - 0x80
    if b0 < 0xC0:
        ll = b0 - 0xB7
        return pos + 1 + ll, pos + 1 + ll + int.from_bytes(buf[pos + 1 : pos + 1 + ll], "big")
    if b0 < 0xF8:
        return pos + 1, pos + 1 + b0 - 0xC0
    ll = b0 - 0xF7
    return pos + 1 + ll, pos + 1 + ll + int.from_bytes(buf[pos + 1 : pos + 1 + ll], "big")


def scalar(item: Any, field: str) -> int:
    """A canonical RLP scalar (bytes without leading zeros) as an int."""
    if not isinstance(item, bytes):
        raise EngineError(f"malformed transaction: field {field} must be a scalar")
    if item[:1] == b"\x00":
        raise EngineError(f"malformed transaction: field {field} has leading zero bytes")
    return int.from_bytes(item, "big")


def _malformed(what: str) -> EngineError:
    return EngineError(f"malformed transaction: {what}")


def decode_type2_items(raw: bytes) -> list[Any]:
    """The 12 RLP items of a type-2 transaction (``raw`` starts with the type byte 0x02).

    Strict, as pyrlp's ``decode(strict=True)``: the list must span the rest of ``raw`` exactly and
    every length prefix must be canonical (no long form under 56 bytes, no leading zero length
    bytes, no single byte below 0x80 wrapped as a string).  Fields are walked here with slices;
    a transaction with any nested list other than an empty access list (``[]``) goes to pyrlp
    itself.  ``tests/property/test_tx_decoding.py`` checks both agree on valid and mangled input.
    """
    n = len(raw)
    if n < 2 or raw[1] < 0xC0:
        raise _malformed("a type-2 transaction is an RLP list after the type byte")
    b0 = raw[1]
    if b0 < 0xF8:
        pos, length = 2, b0 - 0xC0
    else:
        pos = 2 + b0 - 0xF7
        if pos > n or raw[2] == 0:
            raise _malformed("bad list length prefix")
        length = int.from_bytes(raw[2:pos], "big")
        if length < 56:
            raise _malformed("non-canonical list length (long form under 56 bytes)")
    if pos + length != n:
        raise _malformed("the RLP list does not span the transaction exactly")
    items: list[Any] = []
    append = items.append
    while pos < n:
        b = raw[pos]
        if b < 0x80:
            append(raw[pos : pos + 1])
            pos += 1
            continue
        if b < 0xB8:
            start = pos + 1
            end = start + b - 0x80
            if b == 0x81 and (start >= n or raw[start] < 0x80):
                raise _malformed("single byte below 0x80 encoded as a string (non-canonical)")
        elif b < 0xC0:
            start = pos + 1 + b - 0xB7
            if start > n or raw[pos + 1] == 0:
                raise _malformed("bad string length prefix")
            end = start + int.from_bytes(raw[pos + 1 : start], "big")
            if end - start < 56:
                raise _malformed("non-canonical string length (long form under 56 bytes)")
        elif b == 0xC0 and len(items) == 8:
            append([])  # the empty access list
            pos += 1
            continue
        else:
            return _decode_type2_items_rlp(raw)  # nested lists: pyrlp's general decoder
        if end > n:
            raise _malformed("a field runs past the end of the transaction")
        append(raw[start:end])
        pos = end
    if len(items) != 12:
        raise _malformed("a type-2 transaction is a list of 12 fields")
    return items


def _decode_type2_items_rlp(raw: bytes) -> list[Any]:
    try:
        items = rlp_decode(raw[1:])
    except rlp.DecodingError as exc:
        raise _malformed(str(exc)) from None
    if not isinstance(items, list) or len(items) != 12:
        raise _malformed("a type-2 transaction is a list of 12 fields")
    return items


def recover_typed_sender(raw: bytes, tx: Any) -> bytes:
    """Sender of a type-2 transaction: ecrecover over keccak(0x02 || rlp(first 9 fields)).

    ``tx`` is any object with ``y_parity``, ``r`` and ``s``.  The signing payload is sliced from
    the raw bytes (the decoder has checked they are canonical RLP), which saves re-encoding the
    transaction."""
    start, _ = rlp_walk(raw, 1)
    pos = start
    for _ in range(9):
        pos = rlp_walk(raw, pos)[1]
    digest = keccak(raw[:1] + rlp_encode_list(raw[start:pos]))
    return recover_address(digest, tx.y_parity, tx.r, tx.s)


def recover_address(digest: bytes, y: int, r: int, s: int) -> bytes:
    """The 20-byte address whose key signed ``digest`` (EIP-2 low-s enforced)."""
    if y not in (0, 1) or not 0 < r < SECP256K1_N or not 0 < s <= SECP256K1_N // 2:
        raise EngineError("bad signature: y_parity must be 0/1, r in [1,n), s in [1,n/2] (EIP-2)")
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((y,)), digest, hasher=None
        )
    except Exception as exc:
        raise EngineError(f"bad signature: no public key recovers from it ({exc})") from None
    return keccak(public.format(compressed=False)[1:])[12:]


def floor_gas(data: bytes) -> int:
    """EIP-7623 floor: 21,000 + 10 gas per calldata token (zero byte 1 token, other bytes 4)."""
    zeros = data.count(0)
    return TX_BASE_GAS + FLOOR_PER_TOKEN * (zeros + 4 * (len(data) - zeros))


# ---------------------------------------------------------------------------------------------
# receipts
# ---------------------------------------------------------------------------------------------
def bloom_add(bloom: int, value: bytes) -> int:
    h = keccak(value)
    for i in (0, 2, 4):
        bloom |= 1 << (((h[i] << 8) | h[i + 1]) & 2047)
    return bloom


def encode_receipt(
    typed_prefix: bytes,
    status: bool,
    cumulative_gas: int,
    logs: Iterable[tuple[bytes, Iterable[bytes | int], bytes]],
) -> tuple[bytes, int]:
    """(consensus encoding of a receipt, its bloom as an int).  Topics are 32-byte values or
    ints."""
    bloom = 0
    encoded_logs = []
    for address, topics, data in logs:
        bloom = bloom_add(bloom, address)
        topic_bytes = [t if isinstance(t, bytes) else t.to_bytes(32, "big") for t in topics]
        for t in topic_bytes:
            bloom = bloom_add(bloom, t)
        encoded_logs.append(
            rlp_encode_list(
                rlp_encode_bytes(address)
                + rlp_encode_list(b"".join(b"\xa0" + t for t in topic_bytes))
                + rlp_encode_bytes(data)
            )
        )
    body = rlp_encode_list(
        rlp_encode_bytes(_SUCCESS if status else _FAILURE)
        + rlp_uint(cumulative_gas)
        + b"\xb9\x01\x00"
        + bloom.to_bytes(256, "big")
        + rlp_encode_list(b"".join(encoded_logs))
    )
    return typed_prefix + body, bloom


def filter_logs(logs: list[Any], address: str | None, from_block: int, to_block: int,
                topics: list[bytes | None] | None) -> list[Any]:
    """The logs (kept in chain order) of blocks ``from_block..to_block``, from ``address`` if
    given, whose topics match ``topics`` position by position (``None`` matches anything)."""
    from bisect import bisect_left, bisect_right
    from itertools import islice

    from eth_utils.address import to_checksum_address

    want = to_checksum_address(address) if address is not None else None
    pattern = [None if t is None else bytes(t) for t in topics] if topics else []
    lo = bisect_left(logs, from_block, key=lambda lg: lg.block_number)
    hi = bisect_right(logs, to_block, lo=lo, key=lambda lg: lg.block_number)
    out = []
    for log in islice(logs, lo, hi):
        if want is not None and log.address != want:
            continue
        if pattern and (len(log.topics) < len(pattern) or any(
                p is not None and p != t for p, t in zip(pattern, log.topics, strict=False))):
            continue
        out.append(log)
    return out


def next_base_fee(parent_base_fee: int, parent_gas_used: int, parent_gas_limit: int) -> int:
    """EIP-1559 base fee of a child block (elasticity 2, change denominator 8)."""
    target = parent_gas_limit // 2
    if parent_gas_used == target:
        return parent_base_fee
    if parent_gas_used > target:
        delta = parent_base_fee * (parent_gas_used - target) // target // 8
        return parent_base_fee + max(delta, 1)
    delta = parent_base_fee * (target - parent_gas_used) // target // 8
    return max(parent_base_fee - delta, 0)


# ---------------------------------------------------------------------------------------------
# the pending pool
# ---------------------------------------------------------------------------------------------
@dataclass(slots=True)
class PendingTx:
    """One admitted transaction.  ``tx`` is the engine's own decoded object."""

    hash: bytes
    raw: bytes
    tx: Any
    sender: bytes
    nonce: int
    gas: int
    max_fee: int
    tip: int  # max priority fee (legacy: gas price)
    seq: int
    typed: bool


class Selection:
    """Builder order over a pool for one block: a heap of each sender's next transaction by
    (-effective tip, arrival); a sender's transactions come in nonce order."""

    __slots__ = ("_base_fee", "_by_sender", "_heap", "cursor")

    def __init__(
        self,
        by_sender: dict[bytes, dict[int, PendingTx]],
        base_fee: int,
        nonce_of: Callable[[bytes], int],
    ) -> None:
        self._by_sender = by_sender
        self._base_fee = base_fee
        heap: list[tuple[int, int, bytes]] = []
        cursor: dict[bytes, int] = {}
        for sender, queue in by_sender.items():
            nonce = nonce_of(sender)
            cursor[sender] = nonce
            head = queue.get(nonce)
            if head is not None and head.max_fee >= base_fee:
                heap.append((-min(head.tip, head.max_fee - base_fee), head.seq, sender))
        heapq.heapify(heap)
        self._heap = heap
        self.cursor = cursor
        """sender -> the next nonce this block would include"""

    def pop(self) -> PendingTx | None:
        """The next candidate, or ``None``.  Unless :meth:`included` is called for it, its sender
        takes no further part in this block."""
        if not self._heap:
            return None
        _, _, sender = heapq.heappop(self._heap)
        return self._by_sender[sender][self.cursor[sender]]

    def included(self, entry: PendingTx) -> None:
        """``entry`` went into the block: its sender's next transaction becomes a candidate."""
        self.cursor[entry.sender] = entry.nonce + 1
        nxt = self._by_sender[entry.sender].get(entry.nonce + 1)
        if nxt is not None and nxt.max_fee >= self._base_fee:
            fee = -min(nxt.tip, nxt.max_fee - self._base_fee)
            heapq.heappush(self._heap, (fee, nxt.seq, entry.sender))


class TxPool:
    """Pending transactions by hash (arrival order) and by sender and nonce."""

    def __init__(self) -> None:
        self.entries: dict[bytes, PendingTx] = {}
        self.by_sender: dict[bytes, dict[int, PendingTx]] = {}
        self.seq = 0
        self._next_nonce: dict[bytes, int] = {}

    def admit(
        self,
        tx_hash: bytes,
        raw: bytes,
        tx: Any,
        sender: bytes,
        *,
        nonce: int,
        gas: int,
        max_fee: int,
        tip: int,
        typed: bool,
        value: int,
        data: bytes,
        intrinsic: int,
        gas_limit: int,
        confirmed_nonce: Callable[[bytes], int],
        balance: Callable[[bytes], int],
        checksum: Callable[[bytes], str],
    ) -> PendingTx:
        """Check a decoded, signature-verified transaction against the pool and the state, and
        add it; :class:`EngineError` names the first rule it breaks."""
        if gas > gas_limit:
            raise EngineError(f"gas limit {gas} is above the block gas limit {gas_limit}")
        needed = max(intrinsic, floor_gas(data))
        if gas < needed:
            raise EngineError(
                f"gas limit {gas} is below the intrinsic gas {needed} of this transaction"
            )
        confirmed = confirmed_nonce(sender)
        if nonce < confirmed:
            raise EngineError(
                f"nonce {nonce} of {checksum(sender)} is already used (confirmed nonce is "
                f"{confirmed}); use next_nonce()"
            )
        queue = self.by_sender.get(sender)
        if queue is not None and nonce in queue:
            raise EngineError(
                f"nonce {nonce} of {checksum(sender)} is already used by pending transaction "
                f"0x{queue[nonce].hash.hex()} (no replacement); use next_nonce()"
            )
        cost = gas * max_fee + value
        have = balance(sender)
        if have < cost:
            raise EngineError(
                f"sender {checksum(sender)} cannot pay: balance {have} wei < gas * max_fee + "
                f"value = {cost} wei"
            )
        entry = PendingTx(tx_hash, raw, tx, sender, nonce, gas, max_fee, tip, self.seq, typed)
        self.seq += 1
        self.entries[tx_hash] = entry
        if queue is None:
            queue = self.by_sender[sender] = {}
        queue[nonce] = entry
        cached = self._next_nonce.get(sender)
        if cached is not None and cached == nonce:
            while cached in queue:
                cached += 1
            self._next_nonce[sender] = cached
        return entry

    def next_nonce(self, sender: bytes, confirmed_nonce: Callable[[bytes], int]) -> int:
        cached = self._next_nonce.get(sender)
        if cached is None:
            cached = confirmed_nonce(sender)
            queue = self.by_sender.get(sender)
            if queue:
                while cached in queue:
                    cached += 1
            self._next_nonce[sender] = cached
        return cached

    def invalidate(self) -> None:
        """Forget cached next nonces (the confirmed state changed)."""
        self._next_nonce.clear()

    def select(self, base_fee: int, nonce_of: Callable[[bytes], int]) -> Selection:
        return Selection(self.by_sender, base_fee, nonce_of)

    def remove_block(self, included: Iterable[PendingTx], cursor: dict[bytes, int]) -> None:
        """Drop the included transactions, then those whose nonce is now below their sender's
        confirmed nonce (stale: nobody can include them any more)."""
        entries, by_sender = self.entries, self.by_sender
        for entry in included:
            del entries[entry.hash]
            queue = by_sender[entry.sender]
            del queue[entry.nonce]
            if not queue:
                del by_sender[entry.sender]
        for sender in list(by_sender):
            confirmed = cursor.get(sender)
            if confirmed is None:
                continue
            queue = by_sender[sender]
            for n in [n for n in queue if n < confirmed]:
                del entries[queue.pop(n).hash]
            if not queue:
                del by_sender[sender]
        self._next_nonce.clear()

    def snapshot(self) -> tuple[dict[bytes, PendingTx], int]:
        return dict(self.entries), self.seq

    def restore(self, snap: tuple[dict[bytes, PendingTx], int]) -> None:
        entries, self.seq = snap
        self.entries = dict(entries)
        self.by_sender = {}
        for entry in self.entries.values():
            self.by_sender.setdefault(entry.sender, {})[entry.nonce] = entry
        self._next_nonce.clear()


class BlockListReads:
    """``head``, ``block`` and ``logs`` of an in-process engine that keeps its blocks in
    ``self._blocks`` and its logs, in chain order, in ``self._logs``."""

    _blocks: list[BlockInfo]
    _logs: list[Log]

    def head(self) -> BlockInfo:
        return self._blocks[-1]

    def block(self, number: int) -> BlockInfo:
        if not 0 <= number < len(self._blocks):
            raise EngineError(f"no block {number}: the chain has blocks 0..{len(self._blocks) - 1}")
        return self._blocks[number]

    def logs(self, address: str | None = None, from_block: int = 0,
             to_block: int | None = None, topics: list[bytes | None] | None = None) -> list[Log]:
        last = len(self._blocks) - 1 if to_block is None else to_block
        return filter_logs(self._logs, address, from_block, last, topics)



@dataclass(slots=True)
class ChainSnapshot:
    """What :class:`SnapshotBookkeeping` keeps per snapshot."""

    state: Any  # the engine's own mark (:meth:`SnapshotBookkeeping._state_mark`)
    n_blocks: int
    n_logs: int
    pool: tuple[dict[bytes, PendingTx], int]


def rewind_snapshots(snapshots: dict[int, Any], snapshot_id: int) -> Any:
    """The snapshot ``snapshot_id`` of ``snapshots``, forgetting every later one (reverting to
    it invalidates them); :class:`EngineError` naming the live ids if it is unknown."""
    snap = snapshots.get(snapshot_id)
    if snap is None:
        raise EngineError(
            f"unknown snapshot id {snapshot_id}; live snapshots: {sorted(snapshots)}"
        )
    for sid in [s for s in snapshots if s > snapshot_id]:
        del snapshots[sid]
    return snap


class SnapshotBookkeeping:
    """``snapshot``/``revert``/``release`` of an in-process engine: blocks, receipts, logs and
    the pool are rolled back here; the engine's state through three hooks:
    ``_state_mark()`` (start journaling if needed; a mark to roll back to),
    ``_state_rollback(mark)`` and ``_state_stop()`` (no snapshot left: stop journaling).
    The engine calls ``_init_snapshots()`` in its constructor."""

    _blocks: list[BlockInfo]
    _logs: list[Log]
    _receipts: dict[bytes, Any]
    _pool: TxPool

    def _init_snapshots(self) -> None:
        self._snapshots: dict[int, ChainSnapshot] = {}
        self._snapshot_ids = itertools.count(1)

    def _state_mark(self) -> Any:
        raise NotImplementedError

    def _state_rollback(self, mark: Any) -> None:
        raise NotImplementedError

    def _state_stop(self) -> None:
        raise NotImplementedError

    def snapshot(self) -> int:
        sid = next(self._snapshot_ids)
        self._snapshots[sid] = ChainSnapshot(
            self._state_mark(), len(self._blocks), len(self._logs), self._pool.snapshot()
        )
        return sid

    def revert(self, snapshot_id: int) -> None:
        snap = rewind_snapshots(self._snapshots, snapshot_id)
        self._state_rollback(snap.state)
        for info in self._blocks[snap.n_blocks :]:
            for h in info.tx_hashes:
                self._receipts.pop(h, None)
        del self._blocks[snap.n_blocks :]
        del self._logs[snap.n_logs :]
        self._pool.restore(snap.pool)

    def release(self, snapshot_id: int) -> None:
        self._snapshots.pop(snapshot_id, None)
        if not self._snapshots:
            self._state_stop()


class FaucetMixin:
    """The pre-funded faucet of an in-process engine (its key is the same on every engine)."""

    _faucet: Signer

    @property
    def faucet_address(self) -> str:
        """Address of the pre-funded faucet account."""
        return self._faucet.address

    def faucet_send(self, to: str, wei: int) -> bytes:
        """Submit a transfer of ``wei`` from the faucet to ``to``; it lands in the next block."""
        return TxSender(self, self._faucet).send(to, b"", gas=TX_BASE_GAS, value=wei)  # type: ignore[arg-type]
