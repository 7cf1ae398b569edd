"""The on-disk pieces of a persistent chain: an append-only block log and a SQLite state DB.

They back each other up (see ``docs/design.md``, "Chain store"):

* the **block log** (``chain.log``) is the immutable history: a 48-byte file header (magic,
  format, genesis hash), then one record per block, ``>II`` (payload length, CRC-32 of the
  payload) + payload ``>Q number | hash | parent hash | >Q timestamp | >I header length | header
  RLP | >I tx count | (>I length | raw tx)*``.  The hash chain is checkable without executing
  anything: ``keccak(header RLP) == hash``, the header's parent field is the previous record's
  hash, numbers are consecutive;
* the **state DB** (``state.sqlite``, WAL mode, ``synchronous=FULL``) holds py-evm's key-value
  data (trie nodes, chaindb entries), the block index (with each block's byte range and CRC in
  the log), receipts (with their consensus RLP encodings) and logs (indexed by address, topic0
  and block).  One SQLite transaction per block commits the block's state and its index rows.

Nothing here truncates, rewrites or deletes: :class:`BlockLog` only appends, and moves a torn,
uncommitted tail into a side file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proml_sim.chain.base import BlockInfo, Log, Receipt
from proml_sim.chain.trie import keccak
from proml_sim.errors import JournalError

LOG_NAME = "chain.log"
DB_NAME = "state.sqlite"
LOG_MAGIC = b"proml-blocks"
LOG_FORMAT = 2
FILE_HEADER_SIZE = len(LOG_MAGIC) + 4 + 32
_FRAME = struct.Struct(">II")  # payload length, CRC-32 of the payload
_FIXED = struct.Struct(">Q32s32sQ")  # number, hash, parent hash, timestamp
_U32 = struct.Struct(">I")
MAX_RECORD = 1 << 30  # a length field above this is damage, not a block
REPAIR_HINT = "run `proml doctor --repair --from <a replica's chain dir>`"


def repair_hint(directory: Path) -> str:
    """The fix sentence for damage in the chain at ``directory``."""
    return (f"writes are refused until it is repaired: run `proml doctor --repair` (with `--from "
            f"DIR`, a replica's or peer's copy of this chain, if the block log itself is "
            f"damaged); chain dir {directory}")


# ---------------------------------------------------------------------------------------------
# the block log
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LogRecord:
    """One block as the log holds it, with where it lies in the file."""

    number: int
    hash: bytes
    parent_hash: bytes
    timestamp: int
    header: bytes
    txs: tuple[bytes, ...]
    start: int
    end: int
    crc: int


def file_header(genesis_hash: bytes) -> bytes:
    return LOG_MAGIC + _U32.pack(LOG_FORMAT) + genesis_hash


def encode_record(number: int, block_hash: bytes, parent_hash: bytes, timestamp: int,
                  header: bytes, txs: list[bytes]) -> bytes:
    """The framed bytes of one block record."""
    parts = [_FIXED.pack(number, block_hash, parent_hash, timestamp), _U32.pack(len(header)),
             header, _U32.pack(len(txs))]
    for raw in txs:
        parts.append(_U32.pack(len(raw)))
        parts.append(raw)
    payload = b"".join(parts)
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def _header_parent(header: bytes) -> bytes | None:
    """The parent-hash field of a header's RLP (its first item), or None if malformed."""
    if not header:
        return None
    b0 = header[0]
    if 0xC0 <= b0 < 0xF8:
        start = 1
    elif b0 >= 0xF8:
        start = 1 + b0 - 0xF7
    else:
        return None
    if len(header) < start + 33 or header[start] != 0xA0:
        return None
    return header[start + 1 : start + 33]


def decode_payload(payload: bytes, start: int, end: int, crc: int, *, txs: bool = True
                   ) -> LogRecord | str:
    """A record from its (CRC-checked) payload, or a sentence saying what is wrong with it.
    ``txs=False``: leave the transactions unsplit (a committed block: the CRC covers them, and
    the integrity walk on open stays a few microseconds per block)."""
    try:
        number, block_hash, parent, ts = _FIXED.unpack_from(payload, 0)
        pos = _FIXED.size
        (hlen,) = _U32.unpack_from(payload, pos)
        pos += 4
        header = payload[pos : pos + hlen]
        pos += hlen
        (ntx,) = _U32.unpack_from(payload, pos)
        pos += 4
        raw: list[bytes] = []
        if not txs:
            pos = len(payload)
        for _ in range(ntx if txs else 0):
            (tlen,) = _U32.unpack_from(payload, pos)
            pos += 4
            raw.append(payload[pos : pos + tlen])
            pos += tlen
    except struct.error:
        return "its payload is shorter than its fields"
    if pos != len(payload) or len(header) != hlen or any(not t for t in raw):
        return "its payload does not parse (lengths do not add up)"
    if keccak(header) != block_hash:
        return "its header does not hash to its block hash"
    if _header_parent(header) != parent:
        return "its header's parent hash differs from the record's"
    return LogRecord(number, block_hash, parent, ts, header, tuple(raw), start, end, crc)


@dataclass
class LogScan:
    """What a walk of the block log found."""

    records: list[LogRecord] = field(default_factory=list)
    """verified records, in order, from block 1 (possibly beyond the DB head)"""
    damage: list[str] = field(default_factory=list)
    """one sentence per problem, naming the file and the block"""
    good_end: int = FILE_HEADER_SIZE
    """offset just past the last verified record"""
    torn: int = 0
    """bytes of an incomplete final record beyond the committed head (a crash mid-append)"""
    size: int = 0


def read_log(path: Path) -> bytes | None:
    """The log's bytes, or None if it does not exist."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise JournalError(f"cannot read the block log {path}: {exc.strerror}; fix its "
                           "permissions") from None


def scan_log(path: Path, data: bytes, genesis_hash: bytes,
             committed: list[tuple[int, bytes, int, int]], *, all_txs: bool = False) -> LogScan:
    """Walk ``data`` (the log at ``path``): checksums, hash chain, and agreement with the DB's
    ``committed`` blocks ``(number, hash, start, end)`` (1.. in order).  Framing comes from the
    file while it is intact; where a record is damaged, the DB's byte ranges let the walk name
    the block and go on.  Transactions are split out of records beyond the DB's head only,
    unless ``all_txs``."""
    scan = LogScan(size=len(data))
    if len(data) < FILE_HEADER_SIZE or data[: len(LOG_MAGIC)] != LOG_MAGIC:
        scan.damage.append(f"{path}: not a proml block log (bad file header)")
        return scan
    (fmt,) = _U32.unpack_from(data, len(LOG_MAGIC))
    if fmt != LOG_FORMAT:
        scan.damage.append(f"{path}: block log format {fmt}, expected {LOG_FORMAT}")
        return scan
    if data[len(LOG_MAGIC) + 4 : FILE_HEADER_SIZE] != genesis_hash:
        scan.damage.append(f"{path}: this block log belongs to another chain (genesis differs "
                           "from chain.json)")
        return scan
    by_number = {n: (h, s, e) for n, h, s, e in committed}
    head = committed[-1][0] if committed else 0
    pos = FILE_HEADER_SIZE
    prev_hash = genesis_hash
    number = 1
    broken = False  # the hash chain is interrupted by damage: later records are unlinked
    n = len(data)
    while pos < n:
        expected = by_number.get(number)
        if expected is not None and expected[1] != pos:
            scan.damage.append(f"{path}: block {number} should start at byte {expected[1]}, "
                               f"the previous record ends at {pos}")
            broken = True
            pos = expected[1]
            continue
        if n - pos < _FRAME.size:
            frame_ok = False
            length = crc = 0
        else:
            length, crc = _FRAME.unpack_from(data, pos)
            frame_ok = length <= MAX_RECORD and pos + _FRAME.size + length <= n
        if not frame_ok:
            if number > head and expected is None:  # an incomplete append beyond the head
                scan.torn = n - pos
                break
            scan.damage.append(f"{path}: block {number} (byte {pos}) is cut short or its "
                               "length is damaged")
            if expected is None:
                break
            pos, broken = expected[2], True
            number += 1
            continue
        end = pos + _FRAME.size + length
        payload = data[pos + _FRAME.size : end]
        if zlib.crc32(payload) != crc:
            if expected is None and end == n and number > head:
                # the last record, not committed: a torn append whose length bytes made it
                scan.torn = n - pos
                break
            scan.damage.append(f"{path}: block {number} (bytes {pos}-{end}) fails its checksum")
            if expected is None:
                break
            pos, broken = expected[2], True
            number += 1
            continue
        rec = decode_payload(payload, pos, end, crc, txs=all_txs or expected is None)
        problem = None
        if isinstance(rec, str):
            problem = rec
        elif rec.number != number:
            problem = f"it says it is block {rec.number}"
        elif not broken and rec.parent_hash != prev_hash:
            problem = "its parent hash is not the previous block's hash"
        elif expected is not None and (expected[0] != rec.hash or expected[2] != end):
            problem = "it differs from the block the state DB committed"
        if problem is not None:
            scan.damage.append(f"{path}: block {number} (bytes {pos}-{end}): {problem}")
            if expected is None:
                break
            pos, broken = expected[2], True
            number += 1
            continue
        assert isinstance(rec, LogRecord)
        if not broken:
            scan.records.append(rec)
            scan.good_end = end
        prev_hash = rec.hash
        pos = end
        number += 1
    if pos >= n and number <= head and not scan.torn:
        which = f"block {number} is" if number == head else f"block {number} to {head} are"
        scan.damage.append(f"{path}: {which} committed in the state DB but missing from the "
                           "block log")
    return scan


def set_aside_torn_tail(path: Path, good_end: int) -> Path | None:
    """Move the bytes after ``good_end`` (an incomplete append) into a side file, fsynced, and
    only then cut them from the log.  Returns the side file."""
    with open(path, "r+b") as fh:
        fh.seek(good_end)
        tail = fh.read()
        if not tail:
            return None
        side = path.with_name(f"{path.name}.torn-{good_end}-{int(time.time())}")
        with open(side, "xb") as out:
            out.write(tail)
            out.flush()
            os.fsync(out.fileno())
        _fsync_dir(path.parent)
        fh.truncate(good_end)
        fh.flush()
        os.fsync(fh.fileno())
    return side


def append_record(path: Path, record: bytes, expected_size: int) -> int:
    """Append one record and fsync; returns the new size.  Refuses if the file is not
    ``expected_size`` long (another writer, or damage)."""
    with open(path, "ab") as fh:
        if fh.tell() != expected_size:
            raise JournalError(
                f"the block log {path} is {fh.tell()} bytes, expected {expected_size}: another "
                "process appended without the lock, or it was changed; run `proml doctor`"
            )
        fh.write(record)
        fh.flush()
        os.fsync(fh.fileno())
        return fh.tell()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# the state DB
# ---------------------------------------------------------------------------------------------
DB_FORMAT = 1
_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE kv(key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE blocks(number INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, parent BLOB NOT NULL,
  timestamp INTEGER NOT NULL, gas_used INTEGER NOT NULL, gas_limit INTEGER NOT NULL,
  base_fee INTEGER NOT NULL, header BLOB NOT NULL, txs BLOB NOT NULL,
  log_start INTEGER NOT NULL, log_end INTEGER NOT NULL, crc INTEGER NOT NULL);
CREATE TABLE receipts(tx_hash BLOB PRIMARY KEY, block INTEGER NOT NULL, tx_index INTEGER NOT NULL,
  sender TEXT NOT NULL, recipient TEXT, nonce INTEGER NOT NULL, contract TEXT,
  status INTEGER NOT NULL, gas_used INTEGER NOT NULL, cumulative INTEGER NOT NULL,
  price INTEGER NOT NULL, output BLOB NOT NULL, revert TEXT, rlp BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE logs(block INTEGER NOT NULL, log_index INTEGER NOT NULL, address TEXT NOT NULL,
  topic0 BLOB, topic1 BLOB, topics BLOB NOT NULL, data BLOB NOT NULL, tx_hash BLOB NOT NULL,
  tx_index INTEGER NOT NULL, PRIMARY KEY(block, log_index)) WITHOUT ROWID;
CREATE INDEX logs_by_address ON logs(address, block, log_index);
CREATE INDEX logs_by_topic0 ON logs(topic0, block, log_index);
CREATE INDEX logs_by_topic1 ON logs(topic1, block, log_index);
"""
_DELETED = object()
_LOG_COLUMNS = "block, log_index, address, topics, data, tx_hash, tx_index"


def db_error(exc: BaseException, path: Path, doing: str) -> JournalError:
    """A SQLite failure as a :class:`JournalError` naming the file and the fix."""
    text = str(exc)
    low = text.lower()
    if "malformed" in low or "not a database" in low or "corrupt" in low:
        fix = ("the state DB is damaged; run `proml doctor --repair` to rebuild it from the "
               "block log (the damaged file is kept aside)")
    elif "locked" in low or "busy" in low:
        fix = "another process holds it; retry when that process is done"
    elif "readonly" in low or "read-only" in low or "unable to open" in low:
        fix = "the chain directory or the DB is not writable; fix its permissions"
    elif (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "full" in low:
        fix = "the disk is full; free space"
    else:
        fix = "run `proml doctor` to check the chain"
    return JournalError(f"state DB {path}: {doing} failed ({text}); {fix}")


class StateDB:
    """The SQLite side of a chain directory.  ``readonly`` opens without writing anything
    (``mode=ro``, or ``immutable=1`` when the directory is not writable and no WAL is left)."""

    def __init__(self, path: Path, *, create: bool = False, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        if not create and not path.exists():
            raise JournalError(
                f"state DB {path} is missing; it is never recreated silently: rebuild it from "
                "the block log with `proml doctor --repair`"
            )
        try:
            try:
                self._connect(readonly)
            except sqlite3.OperationalError as exc:
                if readonly or create or "readonly" not in str(exc).replace("-", ""):
                    raise
                self.readonly = readonly = True  # a read-only DB file: serve reads
                self._connect(True)
            if create:
                self.conn.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
            self.meta = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.Error as exc:
            raise db_error(exc, path, "opening") from None
        self.pending: dict[bytes, Any] = {}
        self._cache: dict[bytes, bytes] = {}

    def _connect(self, readonly: bool) -> None:
        path = self.path
        if readonly:
            from urllib.parse import quote

            writable_dir = os.access(path.parent, os.W_OK)
            wal = path.with_name(path.name + "-wal")
            # immutable=1 only when no WAL holds commits (it would be ignored)
            mode = "mode=ro" if writable_dir or (wal.exists() and wal.stat().st_size) else (
                "immutable=1")
            self.conn = sqlite3.connect(f"file:{quote(str(path))}?{mode}", uri=True,
                                        isolation_level=None, check_same_thread=False)
            self.mode = mode
        else:
            self.mode = "rw"
            self.conn = sqlite3.connect(str(path), isolation_level=None,
                                        check_same_thread=False)
        self.conn.execute("PRAGMA busy_timeout = 30000")
        if not readonly:
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = FULL")

    def close(self) -> None:
        self.conn.close()

    def q(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return self.conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise db_error(exc, self.path, "reading") from None

    # -- py-evm's key-value data (see SQLiteKV) ------------------------------------------------
    def kv_get(self, key: bytes) -> bytes | None:
        value = self.pending.get(key)
        if value is not None:
            return None if value is _DELETED else bytes(value)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        rows = self.q("SELECT value FROM kv WHERE key = ?", (key,))
        if not rows:
            return None
        value = bytes(rows[0][0])
        if len(key) == 32:  # keccak-keyed (trie nodes, headers, code): cheap to verify
            if keccak(value) != key:
                raise JournalError(
                    f"state DB {self.path}: the entry 0x{key.hex()} does not hash to its key "
                    "(damaged); run `proml doctor --repair` to rebuild the DB from the block log"
                )
            if len(self._cache) > 500_000:
                self._cache.clear()
            self._cache[key] = value  # content-addressed: never changes
        return value

    # -- writes: one transaction per block -----------------------------------------------------
    def commit_block(self, info: BlockInfo, header: bytes, start: int, end: int, crc: int,
                     receipts: list[tuple[Receipt, bytes]]) -> None:
        """Commit the pending key-value writes and the block's index rows atomically."""
        c = self.conn
        try:
            c.execute("BEGIN IMMEDIATE")
            try:
                self._write_pending()
                c.execute(
                    "INSERT INTO blocks VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (info.number, info.hash, info.parent_hash, info.timestamp, info.gas_used,
                     info.gas_limit, info.base_fee, header, b"".join(info.tx_hashes), start, end,
                     crc))
                logs = []
                rows = []
                for r, rlp in receipts:
                    rows.append((r.tx_hash, r.block_number, r.tx_index, r.sender, r.to, r.nonce,
                                 r.contract_address, int(r.status), r.gas_used,
                                 r.cumulative_gas_used, r.effective_gas_price, r.output,
                                 r.revert_reason, rlp))
                    for lg in r.logs:
                        logs.append((lg.block_number, lg.log_index, lg.address,
                                     lg.topics[0] if lg.topics else None,
                                     lg.topics[1] if len(lg.topics) > 1 else None,
                                     b"".join(lg.topics), lg.data, lg.tx_hash, lg.tx_index))
                c.executemany("INSERT INTO receipts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
                c.executemany("INSERT INTO logs VALUES (?,?,?,?,?,?,?,?,?)", logs)
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise db_error(exc, self.path, f"committing block {info.number}") from None
        self._promote()

    def commit_genesis(self, info: BlockInfo, header: bytes, genesis_hash: bytes,
                       chain_id: int) -> None:
        c = self.conn
        try:
            c.execute("BEGIN IMMEDIATE")
            self._write_pending()
            c.executemany("INSERT INTO meta VALUES (?, ?)", [
                ("format", DB_FORMAT), ("genesis_hash", genesis_hash), ("chain_id", chain_id)])
            c.execute("INSERT INTO blocks VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                      (0, info.hash, info.parent_hash, info.timestamp, info.gas_used,
                       info.gas_limit, info.base_fee, header, b"", 0, FILE_HEADER_SIZE, 0))
            c.execute("COMMIT")
        except sqlite3.Error as exc:
            raise db_error(exc, self.path, "writing genesis") from None
        self.meta = dict(self.q("SELECT key, value FROM meta"))
        self._promote()

    def _write_pending(self) -> None:
        puts = [(k, v) for k, v in self.pending.items() if v is not _DELETED]
        dels = [(k,) for k, v in self.pending.items() if v is _DELETED]
        self.conn.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", puts)
        self.conn.executemany("DELETE FROM kv WHERE key = ?", dels)

    def _promote(self) -> None:
        for k, v in self.pending.items():
            if len(k) == 32 and v is not _DELETED:
                self._cache[k] = v
        self.pending.clear()

    def discard(self) -> None:
        """Forget uncommitted writes (a block that failed half-way)."""
        self.pending.clear()

    # -- reads -----------------------------------------------------------------------------
    def head_number(self) -> int:
        rows = self.q("SELECT max(number) FROM blocks")
        return -1 if rows[0][0] is None else int(rows[0][0])

    def committed(self) -> list[tuple[int, bytes, int, int]]:
        """(number, hash, log start, log end) of every block after genesis."""
        return [(n, bytes(h), s, e) for n, h, s, e in self.q(
            "SELECT number, hash, log_start, log_end FROM blocks WHERE number > 0 "
            "ORDER BY number")]

    def block(self, number: int) -> BlockInfo | None:
        rows = self.q("SELECT number, hash, parent, timestamp, gas_used, gas_limit, base_fee, "
                      "txs, header FROM blocks WHERE number = ?", (number,))
        if not rows:
            return None
        n, h, p, ts, gu, gl, bf, txs, header = rows[0]
        if keccak(bytes(header)) != bytes(h):
            raise JournalError(f"state DB {self.path}: block {n}'s header does not hash to its "
                               "hash (damaged); run `proml doctor --repair`")
        txs = bytes(txs)
        return BlockInfo(number=n, hash=bytes(h), parent_hash=bytes(p), timestamp=ts,
                         gas_used=gu, gas_limit=gl, base_fee=bf,
                         tx_hashes=tuple(txs[i : i + 32] for i in range(0, len(txs), 32)))

    def header(self, number: int) -> bytes | None:
        rows = self.q("SELECT header FROM blocks WHERE number = ?", (number,))
        return bytes(rows[0][0]) if rows else None

    def receipt(self, tx_hash: bytes) -> Receipt | None:
        rows = self.q(
            "SELECT r.block, b.hash, b.timestamp, r.tx_index, r.sender, r.recipient, r.nonce, "
            "r.contract, r.status, r.gas_used, r.cumulative, r.price, r.output, r.revert "
            "FROM receipts r JOIN blocks b ON b.number = r.block WHERE r.tx_hash = ?",
            (bytes(tx_hash),))
        if not rows:
            return None
        (block, bhash, ts, idx, sender, to, nonce, contract, status, gas, cum, price, output,
         revert) = rows[0]
        logs = self._logs(f"SELECT {_LOG_COLUMNS} FROM logs WHERE block = ? AND tx_index = ? "
                          "ORDER BY log_index", (block, idx))
        return Receipt(tx_hash=bytes(tx_hash), block_number=block, block_hash=bytes(bhash),
                       block_timestamp=ts, tx_index=idx, sender=sender, to=to, nonce=nonce,
                       contract_address=contract, status=bool(status), gas_used=gas,
                       cumulative_gas_used=cum, effective_gas_price=price, logs=tuple(logs),
                       output=bytes(output), revert_reason=revert)

    def receipt_rlp(self, tx_hash: bytes) -> bytes | None:
        """The consensus encoding of a receipt (what the block's receipt trie holds)."""
        rows = self.q("SELECT rlp FROM receipts WHERE tx_hash = ?", (bytes(tx_hash),))
        return bytes(rows[0][0]) if rows else None

    def block_receipt_rlps(self, number: int) -> list[bytes]:
        """The consensus encodings of a block's receipts, in transaction order (the leaves of
        its receipt trie)."""
        return [bytes(r[0]) for r in self.q(
            "SELECT rlp FROM receipts WHERE block = ? ORDER BY tx_index", (number,))]

    def _logs(self, sql: str, args: tuple[Any, ...]) -> list[Log]:
        out = []
        for block, idx, address, topics, data, tx_hash, tx_index in self.q(sql, args):
            topics = bytes(topics)
            out.append(Log(address=address,
                           topics=tuple(topics[i : i + 32] for i in range(0, len(topics), 32)),
                           data=bytes(data), block_number=block, tx_hash=bytes(tx_hash),
                           tx_index=tx_index, log_index=idx))
        return out

    def logs(self, address: str | None, from_block: int, to_block: int,
             topics: list[bytes | None] | None) -> list[Log]:
        where = ["block BETWEEN ? AND ?"]
        args: list[Any] = [from_block, to_block]
        if address is not None:
            from eth_utils.address import to_checksum_address

            where.append("address = ?")
            args.append(to_checksum_address(address))
        pattern = [None if t is None else bytes(t) for t in topics] if topics else []
        for i, column in enumerate(("topic0", "topic1")):  # the indexed topics
            if len(pattern) > i and pattern[i] is not None:
                where.append(f"{column} = ?")
                args.append(pattern[i])
        logs = self._logs(f"SELECT {_LOG_COLUMNS} FROM logs WHERE {' AND '.join(where)} "
                          "ORDER BY block, log_index", tuple(args))
        if len(pattern) > 1 or (pattern and pattern[0] is None):
            logs = [lg for lg in logs if len(lg.topics) >= len(pattern) and all(
                p is None or p == t for p, t in zip(pattern, lg.topics, strict=False))]
        return logs


class SQLiteKV:
    """py-evm's ``BaseDB`` over a :class:`StateDB`: reads see this process's uncommitted block,
    writes wait in memory for :meth:`StateDB.commit_block`."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def __getitem__(self, key: bytes) -> bytes:
        value = self.db.kv_get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.db.pending[bytes(key)] = bytes(value)

    def __delitem__(self, key: bytes) -> None:
        if self.db.kv_get(key) is None:
            raise KeyError(key)
        self.db.pending[bytes(key)] = _DELETED

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and self.db.kv_get(key) is not None

    def exists(self, key: bytes) -> bool:
        return self.db.kv_get(key) is not None

    def get(self, key: bytes, default: Any = None) -> Any:
        value = self.db.kv_get(key)
        return default if value is None else value

    def set(self, key: bytes, value: bytes) -> None:
        self[key] = value

    def delete(self, key: bytes) -> None:
        with contextlib.suppress(KeyError):
            del self[key]

    def __iter__(self) -> Iterator[bytes]:
        raise NotImplementedError("the state DB is not iterable")

    def __len__(self) -> int:
        raise NotImplementedError("the state DB has no cheap length")
