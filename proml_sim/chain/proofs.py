"""Chain facts a verifier can check without trusting a node: headers, receipts, tries, blooms.

A block header's RLP hashes to the block hash and names its parent's hash, its receipts root
(the root of the Merkle-Patricia trie ``{rlp(i): receipt_i}``) and its logs bloom.  From a
pinned block hash, a chain of headers linked by parent hash is therefore authentic, and so is
every receipt whose trie rebuilds, or whose inclusion proof reaches, a header's receipts root.

This module reads those facts from both kinds of chain (the embedded journaled chain keeps
each block's header RLP and its receipts' consensus encodings; a JSON-RPC node is asked for the
block's fields and receipts, and the header and trie are rebuilt and checked against the
block hash and receipts root) and checks them: :func:`decode_header`, :func:`receipts_root`
(the same :func:`~proml_sim.chain.trie.ordered_trie_root` the engine builds headers
with), :func:`bloom_may_hold`, :func:`decode_receipt_logs`, and single-receipt inclusion
proofs built and checked with the ``trie`` package (:func:`trie_proof`,
:func:`check_trie_proof`); a block's raw transactions (:func:`block_transactions`, against its
transactions root) and their signers (:func:`tx_sender`).  Every failure is a
:class:`~proml_sim.errors.ProofError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import rlp
from eth_bloom.bloom import BloomFilter
from eth_utils.address import to_checksum_address
from trie.hexary import HexaryTrie

from proml_sim.chain.trie import keccak, ordered_trie_root, rlp_decode
from proml_sim.errors import ProofError

__all__ = [
    "Header",
    "ReceiptLog",
    "block_receipt_rlps",
    "block_transactions",
    "bloom_may_hold",
    "check_trie_proof",
    "decode_header",
    "decode_receipt_logs",
    "header_rlp",
    "header_rlps",
    "receipts_root",
    "supports_proofs",
    "trie_proof",
    "tx_chain_id",
    "tx_creation",
    "tx_sender",
]


@dataclass(frozen=True, slots=True)
class Header:
    """The fields of a block header a proof needs, with the RLP they come from."""

    rlp: bytes
    hash: bytes
    parent_hash: bytes
    number: int
    tx_root: bytes
    receipt_root: bytes
    bloom: bytes
    timestamp: int


@dataclass(frozen=True, slots=True)
class ReceiptLog:
    """One log as a receipt's consensus encoding holds it."""

    address: str
    """``0x`` and 40 lower-case hex digits (checksumming every log costs more than the rest)."""
    topics: tuple[bytes, ...]
    data: bytes


def _int(b: bytes) -> int:
    return int.from_bytes(b, "big")


def decode_header(raw: bytes) -> Header:
    """Parse a header's RLP (``ProofError`` if it is not one)."""
    try:
        fields = rlp_decode(raw)
    except rlp.exceptions.DecodingError as exc:
        raise ProofError(f"a block header is not valid RLP ({exc})") from None
    if (not isinstance(fields, list) or len(fields) < 15
            or not all(isinstance(f, bytes) for f in fields)):
        raise ProofError("a block header does not have the fields of an Ethereum header")
    parent, tx_root, receipt_root, bloom = fields[0], fields[4], fields[5], fields[6]
    if len(parent) != 32 or len(tx_root) != 32 or len(receipt_root) != 32 or len(bloom) != 256:
        raise ProofError("a block header's parent hash, roots or bloom have the wrong size")
    return Header(raw, keccak(raw), parent, _int(fields[8]), tx_root, receipt_root, bloom,
                  _int(fields[11]))


def receipts_root(receipts: Sequence[bytes]) -> bytes:
    """The receipts root of a block whose receipts (consensus encodings, in order) these are."""
    try:
        return ordered_trie_root(list(receipts))[0]
    except ValueError as exc:  # an empty receipt
        raise ProofError(f"a receipt list is malformed ({exc})") from None


def bloom_may_hold(bloom: bytes, addresses: Iterable[str], topics: Iterable[bytes]) -> bool:
    """Whether a logs bloom may hold a log of one of ``addresses`` with one of ``topics`` as
    topic0 (a bloom has no false negatives: ``False`` means no such log is in the block)."""
    bf = BloomFilter(int.from_bytes(bloom, "big"))
    return (any(bytes.fromhex(a[2:]) in bf for a in addresses)
            and any(t in bf for t in topics))


def decode_receipt_logs(raw: bytes) -> tuple[bool, list[ReceiptLog]]:
    """(status, logs) of a receipt's consensus encoding (typed or legacy)."""
    body = raw[1:] if raw and raw[0] < 0x7F else raw
    try:
        fields = rlp_decode(body)
        status, _cum, _bloom, logs = fields
        out = [ReceiptLog("0x" + bytes(a).hex(), tuple(bytes(t) for t in ts), bytes(d))
               for a, ts, d in logs]
    except (rlp.exceptions.DecodingError, ValueError, TypeError) as exc:
        raise ProofError(f"a receipt is not a valid consensus encoding ({exc})") from None
    return status == b"\x01", out


def _key(index: int) -> bytes:
    return bytes(rlp.encode(index))


def trie_proof(items: Sequence[bytes], indices: Iterable[int]) -> list[bytes]:
    """The Merkle-Patricia inclusion proof of ``items[i]`` for ``indices`` in the ordered-index
    trie of ``items`` (a block's receipts or transactions):
    the RLP of every node on their paths from the root, each node once (the trie is built
    once, with the ``trie`` package's ``HexaryTrie`` walking each path)."""
    root, nodes = ordered_trie_root(list(items))
    t = HexaryTrie(dict(nodes), root)
    out: dict[bytes, None] = {}
    for i in indices:
        path = t.get_proof(_key(i))  # type: ignore[no-untyped-call]
        for node in path:
            out.setdefault(bytes(rlp.encode(node)), None)
    return list(out)


def check_trie_proof(root: bytes, indices: Iterable[int], proof: Sequence[bytes], *,
                     what: str = "receipt") -> dict[int, bytes]:
    """The items at ``indices`` that ``proof`` (trie nodes) proves under ``root``: each is
    found by walking from the root through nodes looked up by their hash, so a node that was
    altered or left out breaks the walk (``ProofError``)."""
    db = {keccak(n): bytes(n) for n in proof}
    t = HexaryTrie(db, root)
    out = {}
    for i in indices:
        try:
            value = t.get(_key(i))
        except Exception as exc:  # MissingTrieNode, or a node that does not decode
            raise ProofError(f"the inclusion proof of {what} {i} does not reach the {what}s "
                             f"root 0x{root.hex()} ({type(exc).__name__})") from None
        if not value:
            raise ProofError(f"the inclusion proof proves no {what} at index {i}")
        out[i] = bytes(value)
    return out


# ---------------------------------------------------------------------------------------------
# reading the facts from a chain
# ---------------------------------------------------------------------------------------------
def supports_proofs(backend: Any) -> bool:
    """Whether this chain backend can give headers, receipts and raw transactions (the
    embedded journaled chain and JSON-RPC nodes can; the in-memory engines keep no headers)."""
    from proml_sim.chain.journal import JournaledChain
    from proml_sim.chain.rpc import RPCBackend

    return isinstance(backend, JournaledChain | RPCBackend)


def header_rlp(backend: Any, number: int) -> bytes:
    """Block ``number``'s header RLP from a chain backend, checked against its block hash."""
    from proml_sim.chain.journal import JournaledChain
    from proml_sim.chain.rpc import RPCBackend

    if isinstance(backend, JournaledChain):
        raw = backend.db.header(number)
        info = backend.block(number)
        if raw is None or keccak(raw) != info.hash:
            raise ProofError(f"the chain's block {number} header does not hash to its block "
                             "hash; run `proml doctor`")
        return raw
    if isinstance(backend, RPCBackend):
        return _rpc_header(backend, number)
    raise ProofError(f"the {type(backend).__name__} chain keeps no block headers; proofs need "
                     "the embedded chain store or a JSON-RPC node")


_HEADER_KEYS = ("parentHash", "sha3Uncles", "miner", "stateRoot", "transactionsRoot",
                "receiptsRoot", "logsBloom", "difficulty", "number", "gasLimit", "gasUsed",
                "timestamp", "extraData", "mixHash", "nonce")
#: the fields later forks appended, in order; a header has a prefix of them
_HEADER_TAIL = ("baseFeePerGas", "withdrawalsRoot", "blobGasUsed", "excessBlobGas",
                "parentBeaconBlockRoot", "requestsHash")
_INT_KEYS = {"difficulty", "number", "gasLimit", "gasUsed", "timestamp", "baseFeePerGas",
             "blobGasUsed", "excessBlobGas"}


def _field(key: str, value: str) -> Any:
    if key in _INT_KEYS:
        return int(value, 16)
    return bytes.fromhex(value[2:])


def header_rlps(backend: Any, start: int, stop: int) -> Iterator[bytes]:
    """The header RLPs of blocks ``start`` .. ``stop`` (inclusive), each checked as
    :func:`header_rlp` checks it; a JSON-RPC node is asked in batches."""
    from proml_sim.chain.rpc import BATCH, RPCBackend

    if not isinstance(backend, RPCBackend):
        for n in range(start, stop + 1):
            yield header_rlp(backend, n)
        return
    for first in range(start, stop + 1, BATCH):
        numbers = range(first, min(first + BATCH, stop + 1))
        blocks = backend._rpc_many("eth_getBlockByNumber", [[hex(n), False] for n in numbers])
        for n, b in zip(numbers, blocks, strict=True):
            yield _header_of(backend, n, b)


def _rpc_header(backend: Any, number: int) -> bytes:
    return _header_of(backend, number, backend._rpc("eth_getBlockByNumber",
                                                    [hex(number), False]))


def _header_of(backend: Any, number: int, b: Any) -> bytes:
    """Block ``number``'s header RLP rebuilt from the node's JSON block ``b``, checked to hash
    to the block hash the node gave."""
    if not isinstance(b, dict):
        raise ProofError(f"the node at {backend.url} has no block {number}")
    try:
        fields = [_field(k, b[k]) for k in _HEADER_KEYS]
        for k in _HEADER_TAIL:
            if b.get(k) is None:
                break
            fields.append(_field(k, b[k]))
        claimed = b["hash"].lower()
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ProofError(f"the node at {backend.url} returned block {number} with a missing or "
                         f"malformed header field ({type(exc).__name__}: {exc}); its headers "
                         "cannot be proven: use a node that serves whole blocks") from None
    raw = bytes(rlp.encode(fields))
    if "0x" + keccak(raw).hex() != claimed:
        raise ProofError(f"block {number}'s header, rebuilt from the fields the node at "
                         f"{backend.url} returned, does not hash to its block hash {b['hash']}")
    return raw


def block_receipt_rlps(backend: Any, header: Header) -> list[bytes]:
    """Every receipt of ``header``'s block (consensus encodings, in order), checked to rebuild
    its receipts root."""
    from proml_sim.chain.journal import JournaledChain
    from proml_sim.chain.rpc import RPCBackend

    if isinstance(backend, JournaledChain):
        out = backend.block_receipt_rlps(header.number)
        where = "the chain store"
        fix = "run `proml doctor --repair`"
    elif isinstance(backend, RPCBackend):
        out = _rpc_receipts(backend, header.number)
        where = f"the node at {backend.url}"
        fix = "the node serves wrong receipts; use another node"
    else:
        raise ProofError(f"the {type(backend).__name__} chain keeps no receipts encodings")
    if receipts_root(out) != header.receipt_root:
        raise ProofError(f"block {header.number}'s receipts from {where} do not rebuild its "
                         f"receipts root 0x{header.receipt_root.hex()}; {fix}")
    return out


def _rpc_receipts(backend: Any, number: int) -> list[bytes]:
    rs = backend._try("eth_getBlockReceipts", [hex(number)])
    if rs is None:  # an older node: one receipt per transaction
        txs = backend._rpc("eth_getBlockByNumber", [hex(number), False])["transactions"]
        rs = [backend._rpc("eth_getTransactionReceipt", [h]) for h in txs]
    rs = sorted(rs, key=lambda r: int(r["transactionIndex"], 16))
    return [encode_rpc_receipt(r) for r in rs]


def encode_rpc_receipt(r: dict[str, Any]) -> bytes:
    """The consensus encoding of a receipt from its JSON-RPC fields."""
    status = b"\x01" if int(r.get("status", "0x1"), 16) == 1 else b""
    logs = [[bytes.fromhex(lg["address"][2:]), [bytes.fromhex(t[2:]) for t in lg["topics"]],
             bytes.fromhex(lg["data"][2:])] for lg in r["logs"]]
    payload = bytes(rlp.encode([status, int(r["cumulativeGasUsed"], 16),
                                bytes.fromhex(r["logsBloom"][2:]), logs]))
    kind = int(r.get("type", "0x0"), 16)
    return payload if kind == 0 else bytes((kind,)) + payload


#: the fields of each typed transaction (EIP-2718 type -> JSON-RPC names), as eth-account
#: takes them; legacy transactions (type 0) are RLP of nonce .. s
_TYPED_FIELDS = {
    1: ("chainId", "nonce", "gasPrice", "gas", "to", "value", "data", "accessList"),
    2: ("chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gas", "to", "value",
        "data", "accessList"),
    3: ("chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gas", "to", "value",
        "data", "accessList", "maxFeePerBlobGas", "blobVersionedHashes"),
    4: ("chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gas", "to", "value",
        "data", "accessList", "authorizationList"),
}


def encode_rpc_transaction(tx: dict[str, Any]) -> bytes:
    """The signed raw encoding of a transaction from its JSON-RPC fields
    (``eth_getBlockByNumber(n, true)``), checked to hash to the transaction's hash; a
    :class:`~proml_sim.errors.ProofError` names a transaction it cannot rebuild."""
    from eth_account.typed_transactions.typed_transaction import TypedTransaction
    from eth_utils.address import to_checksum_address

    def num(key: str) -> int:
        return int(tx[key], 16)

    try:
        kind = num("type") if tx.get("type") is not None else 0
        if kind == 0:
            raw = bytes(rlp.encode([num("nonce"), num("gasPrice"), num("gas"),
                                    bytes.fromhex((tx.get("to") or "0x")[2:]), num("value"),
                                    bytes.fromhex(tx["input"][2:]), num("v"), num("r"),
                                    num("s")]))
        elif kind in _TYPED_FIELDS:
            fields = dict(tx, data=tx["input"], v=tx.get("yParity", tx.get("v")))
            d = {k: fields[k] for k in (*_TYPED_FIELDS[kind], "v", "r", "s")
                 if fields.get(k) is not None}
            if "to" in d:
                d["to"] = to_checksum_address(d["to"])
            raw = bytes(TypedTransaction.from_dict(d).encode())
        else:
            raise ValueError(f"transaction type {kind} is not known")
    except (KeyError, TypeError, ValueError) as exc:
        raise ProofError(f"transaction {tx.get('hash')} cannot be re-encoded from the node's "
                         f"fields ({exc}); use a node that serves eth_getRawTransactionByHash "
                         "(geth, anvil, reth)") from None
    if "0x" + keccak(raw).hex() != str(tx.get("hash", "")).lower():
        raise ProofError(f"transaction {tx.get('hash')}, re-encoded from the fields the node "
                         "returned, does not hash to its hash; use a node that serves "
                         "eth_getRawTransactionByHash (geth, anvil, reth)")
    return raw


def _rpc_transactions(backend: Any, number: int) -> list[bytes]:
    hashes = backend._rpc("eth_getBlockByNumber", [hex(number), False])["transactions"]
    first = backend._try("eth_getRawTransactionByHash", [hashes[0]]) if hashes else None
    if isinstance(first, str):
        return [bytes.fromhex(first[2:])] + [
            bytes.fromhex(backend._rpc("eth_getRawTransactionByHash", [h])[2:])
            for h in hashes[1:]]
    full = backend._rpc("eth_getBlockByNumber", [hex(number), True])["transactions"]
    return [encode_rpc_transaction(tx) for tx in full]


def block_transactions(backend: Any, header: Header) -> list[bytes]:
    """Every raw transaction of ``header``'s block, in order, checked to rebuild its
    transactions root (the embedded store keeps them in its block log; a JSON-RPC node is asked
    with ``eth_getRawTransactionByHash``, or, where it lacks that (hardhat), each transaction is
    re-encoded from its fields, :func:`encode_rpc_transaction`)."""
    from proml_sim.chain.journal import JournaledChain
    from proml_sim.chain.rpc import RPCBackend

    if isinstance(backend, JournaledChain):
        txs = _logged_transactions(backend, header.number)
    elif isinstance(backend, RPCBackend):
        txs = _rpc_transactions(backend, header.number)
    else:
        raise ProofError(f"the {type(backend).__name__} chain keeps no raw transactions")
    if ordered_trie_root(txs)[0] != header.tx_root:
        raise ProofError(f"block {header.number}'s transactions do not rebuild its "
                         f"transactions root 0x{header.tx_root.hex()}")
    return txs


def _logged_transactions(backend: Any, number: int) -> list[bytes]:
    import struct
    import zlib

    from proml_sim.chain.blockstore import decode_payload

    rows = backend.db.q("SELECT log_start, log_end, crc FROM blocks WHERE number = ?", (number,))
    if not rows:
        raise ProofError(f"the chain store has no block {number}")
    start, end, crc = rows[0]
    try:
        with open(backend.log_path, "rb") as fh:
            fh.seek(start)
            raw = fh.read(end - start)
    except OSError as exc:
        raise ProofError(f"cannot read block {number} from {backend.log_path}: {exc}; run "
                         "`proml doctor`") from None
    payload = raw[struct.calcsize(">II"):]
    rec = decode_payload(payload, start, end, crc) if zlib.crc32(payload) == crc else \
        "its checksum does not match"
    if isinstance(rec, str):
        raise ProofError(f"block {number}'s record in {backend.log_path}: {rec}; run "
                         "`proml doctor`")
    return list(rec.txs)


def tx_sender(raw: bytes) -> str:
    """The checksum address that signed a raw transaction: type 2 (what ProML nodes send)
    through the engines' own decoder and ecrecover (``chain/_txpool.py``), other kinds through
    ``eth-account``."""
    from types import SimpleNamespace

    from proml_sim.chain._txpool import decode_type2_items, recover_typed_sender, scalar

    try:
        if raw[:1] == b"\x02":
            items = decode_type2_items(raw)
            sig = SimpleNamespace(y_parity=scalar(items[9], "y_parity"),
                                  r=scalar(items[10], "r"), s=scalar(items[11], "s"))
            return str(to_checksum_address(recover_typed_sender(raw, sig)))
        from eth_account import Account

        return str(Account.recover_transaction(raw))
    except Exception as exc:  # not a transaction, or a signature nothing recovers from
        raise ProofError(f"a proven transaction does not recover a signer ({exc})") from None


def tx_chain_id(raw: bytes) -> int | None:
    """The EIP-155 chain id a raw transaction's signature binds (``None`` for a pre-EIP-155
    legacy transaction)."""
    try:
        if raw and raw[0] < 0x7F:  # typed (EIP-2718): the chain id is the first field
            return int.from_bytes(rlp_decode(raw[1:])[0], "big")
        v = int.from_bytes(rlp_decode(raw)[6], "big")
    except (rlp.exceptions.DecodingError, IndexError, TypeError) as exc:
        raise ProofError(f"a proven transaction does not decode ({exc})") from None
    return (v - 35) // 2 if v >= 35 else None


def tx_creation(raw: bytes, sender: str) -> tuple[str, bytes] | None:
    """The address a raw transaction signed by ``sender`` creates and its init code, or None
    when it calls an address instead (legacy, EIP-2930 and EIP-1559 kinds): the created
    address is ``keccak(rlp([sender, nonce]))[12:]``, so proven code is bound to an address."""
    try:
        kind = raw[0] if raw and raw[0] < 0x7F else None
        f = rlp_decode(raw[1:] if kind is not None else raw)
        nonce_at = {None: 0, 1: 1, 2: 1}[kind]
        to, data = f[nonce_at + 3 + (kind == 2)], f[nonce_at + 5 + (kind == 2)]
        nonce = int.from_bytes(f[nonce_at], "big")
    except (rlp.exceptions.DecodingError, IndexError, KeyError, TypeError) as exc:
        raise ProofError(f"a proven transaction does not decode ({exc})") from None
    if to:
        return None
    created = keccak(rlp.encode([bytes.fromhex(sender[2:]), nonce]))[12:]
    return to_checksum_address(created), bytes(data)
