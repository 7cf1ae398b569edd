"""A persistent embedded chain: the py-evm engine over an on-disk chain store.

Several processes (CLI calls from shell scripts, one node per participant) share one chain
directory::

    <dir>/chain.json     genesis parameters and store format (written once, atomically)
    <dir>/chain.log      the block log: append-only, one CRC-checked record per block
    <dir>/state.sqlite   the state DB (SQLite, WAL): py-evm state, block index, receipts, logs
    <dir>/lock           advisory lock (fcntl) held by a writer

(:mod:`proml_sim.chain.blockstore` has the formats.)  Opening is O(1) in history: state, blocks,
receipts and logs are read from the DB, nothing is replayed.  Opening walks the block log's
checksums and hash chain and compares it with the DB's block index; damage is reported naming
the file and the block, reads are then served from the DB (with a warning), and writes are
refused until ``proml doctor --repair``.  Nothing here truncates, rewrites or deletes data.

A block is written in this order: the log record is appended and fsynced, then one SQLite
transaction commits the block's state and index rows.  A crash between the two leaves the log
one block ahead: the next writer replays that block from the log (it was committed there).  A
crash mid-append leaves an incomplete final record beyond the committed head: the next writer
moves its bytes into a side file (``chain.log.torn-<offset>-<time>``) before appending.
Writers wrap their work in :meth:`JournaledChain.locked`.  Readers take no lock and see every
block committed by other processes.

Chains made by the previous release (format 1: ``blocks.log`` replayed on every open) are
imported once, by replay, into the new store; ``blocks.log`` is left untouched (and the old
``chain.json`` is kept as ``chain.v1.json``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import sqlite3
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from proml_sim.chain.base import BlockInfo, CallResult, ChainBackend, Log, Receipt
from proml_sim.chain.blockstore import (
    DB_NAME,
    LOG_NAME,
    LogRecord,
    LogScan,
    SQLiteKV,
    StateDB,
    append_record,
    encode_record,
    file_header,
    read_log,
    repair_hint,
    scan_log,
    set_aside_torn_tail,
)
from proml_sim.chain.trie import keccak
from proml_sim.errors import EngineError, JournalError
from proml_sim.fsutil import atomic_write_json, parse_json

JOURNAL_FORMAT = 2
V1_LOG = "blocks.log"
_V1_HEADER = struct.Struct(">II")
_warned: set[str] = set()


#: how a chain.json whose genesis_hash entry alone is damaged is mended
GENESIS_FIX = ("`proml doctor --repair` writes the hash its genesis parameters give, when the "
               "state DB records that genesis too (else restore chain.json from a replica of "
               "this chain)")
#: how doctor mends what :func:`chain_json_damage` finds
CHAIN_JSON_FIX = "proml doctor --repair (writes the entry again; the damaged file is kept aside)"


def _is_hash(value: Any) -> bool:
    return (isinstance(value, str) and len(value) == 64
            and all(c in "0123456789abcdefABCDEF" for c in value))


def _read_meta(directory: Path, *, check_genesis: bool = True) -> dict[str, Any]:
    """chain.json, every entry checked for its type (a damaged one is named, never a crash
    later); ``check_genesis=False`` leaves a malformed ``genesis_hash`` to the caller (doctor
    recomputes it from the parameters)."""
    meta_path = directory / "chain.json"
    try:
        meta = parse_json(meta_path.read_text())
    except FileNotFoundError:
        raise JournalError(
            f"no chain at {directory} (missing chain.json); create one with "
            "`proml init --new-chain` or JournaledChain.create(), or restore chain.json from a "
            "replica of this chain"
        ) from None
    except (OSError, ValueError) as exc:
        raise JournalError(f"cannot read {meta_path}: {exc}; restore it from a copy") from exc
    if not isinstance(meta, dict):
        raise JournalError(f"{meta_path} is not a chain description; restore it from a copy")
    fmt = meta.get("format")
    if not isinstance(fmt, int) or fmt > JOURNAL_FORMAT:
        raise JournalError(
            f"chain at {directory} has journal format {fmt!r}, newer than this "
            f"proml-sim understands ({JOURNAL_FORMAT}); upgrade proml-sim"
        )
    for key in ("chain_id", "gas_limit", "genesis_timestamp", "funded", "genesis_hash"):
        if key not in meta:
            raise JournalError(f"{meta_path} lacks {key!r}; restore it from a copy")
    for key in ("chain_id", "gas_limit", "genesis_timestamp"):
        v = meta[key]
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**63:
            raise JournalError(f"{meta_path}: its entry {key!r} is {v!r}, not a whole number "
                               "below 2**63; restore chain.json from a replica of this chain")
    funded = meta["funded"]
    if not isinstance(funded, list) or not all(
            isinstance(a, str) and re.fullmatch("0x[0-9a-fA-F]{40}", a) for a in funded):
        raise JournalError(f"{meta_path}: its entry 'funded' is {funded!r}, not a list of "
                           "0x addresses; restore chain.json from a replica of this chain")
    if check_genesis and not _is_hash(meta["genesis_hash"]):
        raise JournalError(f"{meta_path}: its entry 'genesis_hash' is "
                           f"{meta['genesis_hash']!r}, not 32 bytes of hex; {GENESIS_FIX}")
    return meta


def genesis_of(meta: dict[str, Any]) -> bytes:
    """The genesis hash chain.json's genesis parameters give (built in a scratch DB, the way
    :meth:`JournaledChain.create` builds it)."""
    try:
        with tempfile.TemporaryDirectory(prefix="proml-genesis-") as t:
            return _genesis_db(Path(t) / DB_NAME, list(meta["funded"]), meta["chain_id"],
                               meta["gas_limit"], meta["genesis_timestamp"])
    except JournalError:
        raise
    except Exception as exc:  # py-evm's validation of a damaged parameter, say
        raise JournalError(f"chain.json's genesis parameters make no genesis block ({exc}); "
                           "restore chain.json from a replica of this chain") from None


def chain_json_damage(directory: str | Path, chain_id: int | None = None
                      ) -> tuple[list[str], dict[str, Any]]:
    """(what is wrong, the entries to write) for chain.json's entries that alone are damaged,
    judged against the state DB: ``genesis_hash`` malformed or not the DB's genesis while
    chain.json's own genesis parameters give the DB's; ``chain_id`` not the DB's while
    ``chain_id`` (the home's node.json's) is.  Nothing when chain.json is right, or when it
    cannot be told which side is wrong (a person decides: restore from a replica)."""
    d = Path(directory)
    meta = _read_meta(d, check_genesis=False)
    try:
        db = StateDB(d / DB_NAME, readonly=True)
        try:
            db_meta = dict(db.meta)
        finally:
            db.close()
    except (JournalError, sqlite3.Error, OSError):  # an unreadable DB decides nothing here
        return [], {}
    whats: list[str] = []
    fix: dict[str, Any] = {}
    recorded, db_genesis = meta["genesis_hash"], db_meta.get("genesis_hash")
    if not (_is_hash(recorded) and bytes.fromhex(recorded) == db_genesis):
        given = genesis_of(meta)
        if given == db_genesis:
            whats.append(f"its entry 'genesis_hash' is {recorded!r}, but its genesis "
                         f"parameters give 0x{given.hex()}, the genesis the state DB records "
                         "too: the entry is damaged")
            fix["genesis_hash"] = given.hex()
    db_id = _int_or_none(db_meta.get("chain_id"))
    if db_id is not None and meta["chain_id"] != db_id and chain_id == db_id:
        whats.append(f"its entry 'chain_id' is {meta['chain_id']!r}, but the state DB and "
                     f"node.json record {db_id}: the entry is damaged")
        fix["chain_id"] = db_id
    return whats, fix


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def repair_chain_json(directory: str | Path, chain_id: int | None = None) -> str | None:
    """Write chain.json again with the entries :func:`chain_json_damage` finds damaged set
    right; the damaged file is kept aside, the write is atomic and under the chain's lock.
    Returns what was done (None: nothing to do)."""
    d = Path(directory)
    with directory_lock(d):
        _, fix = chain_json_damage(d, chain_id)
        if not fix:
            return None
        path = d / "chain.json"  # copied aside, then replaced atomically: never absent
        meta = parse_json(path.read_text())
        aside = path.with_name(f"{path.name}.damaged-{_aside_stamp(path, 'damaged')}")
        shutil.copyfile(path, aside)
        atomic_write_json(path, {**meta, **fix}, mkdir=False)
    said = ", ".join(f"{k} {v if k == 'chain_id' else '0x' + v}" for k, v in fix.items())
    return (f"wrote chain.json again with {said} (what the state DB records); the damaged file "
            f"is kept as {aside}")


def _writable(directory: Path) -> bool:
    return os.access(directory, os.W_OK)


class JournaledChain(ChainBackend):
    """A :class:`PyEVMBackend` whose blocks and state persist in ``directory``."""

    name = "pyevm-journal"
    _faucet_signer: Any

    @property
    def _faucet(self) -> Any:
        """The public dev faucet's signer (the read path never needs it)."""
        if self._faucet_signer is None:
            from proml_sim.chain.accounts import Signer, derive_private_keys
            from proml_sim.chain.pyevm import FAUCET_SEED

            signer: Any = Signer(derive_private_keys(FAUCET_SEED, 1)[0])
            self._faucet_signer = signer
        return self._faucet_signer

    def __init__(self, directory: str | Path, *, _importing: bool = False) -> None:
        self.directory = Path(directory)
        meta = _read_meta(self.directory)
        self.writable = _importing or _writable(self.directory)
        if (meta["format"] == 1 or meta.get("import_pending")) and not _importing:
            meta = _import_v1(self.directory, meta, self.writable)
            if meta.get("imported_into"):  # read-only: imported into a temporary copy
                self.directory = Path(meta["imported_into"])
        self.meta = meta
        self.chain_id: int = meta["chain_id"]
        self._gas_limit: int = meta["gas_limit"]
        self.genesis_hash = bytes.fromhex(meta["genesis_hash"])
        self.log_path = self.directory / LOG_NAME
        self.db_path = self.directory / DB_NAME
        self.db = StateDB(self.db_path, readonly=not self.writable)
        self.writable = self.writable and not self.db.readonly  # a read-only DB file
        if self.db.meta.get("genesis_hash") != self.genesis_hash:
            raise JournalError(
                f"state DB {self.db_path} belongs to another chain (its genesis differs from "
                f"chain.json); {repair_hint(self.directory)}"
            )
        self._engine_obj: Any = None
        self._raw: dict[bytes, bytes] = {}
        self._lock_fd: int | None = None
        self._faucet_signer = None  # made on first use (eth-account is slow to import)
        self.scan = self._scan()
        self.damage: list[str] = list(self.scan.damage)
        if self.damage:
            key = f"{self.directory}:{len(self.damage)}"
            if key not in _warned:
                _warned.add(key)
                sys.stderr.write(
                    f"warning: the chain at {self.directory} is damaged ({self.damage[0]}"
                    f"{'; and more' if len(self.damage) > 1 else ''}); reads are served from "
                    f"its state DB, {repair_hint(self.directory)}\n"
                )
        elif self.writable and not _importing and self._log_behind():
            # a writer crashed between the log and the DB, or mid-append: fix it now if nobody
            # is writing (otherwise that writer does it)
            with contextlib.suppress(BlockingIOError), self.locked(blocking=False):
                pass

    @classmethod
    def create(cls, directory: str | Path, *, funded: Iterable[str] = (), chain_id: int = 1337,
               gas_limit: int = 30_000_000, genesis_timestamp: int = 1_700_000_000
               ) -> JournaledChain:
        """Create a new chain in ``directory`` (refuses to overwrite an existing one)."""
        d = Path(directory)
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(f"cannot create the chain directory {d}: {exc.strerror}; pick "
                               "a writable place") from None
        if (d / "chain.json").exists():
            raise JournalError(f"a chain already exists at {d}; open it instead of creating")
        for name in (LOG_NAME, DB_NAME):
            if (d / name).exists():
                raise JournalError(f"{d / name} exists without chain.json; restore chain.json "
                                   "from a replica instead of creating a new chain here")
        funded = list(funded)
        genesis = _init_store(d, funded, chain_id, gas_limit, genesis_timestamp)
        atomic_write_json(d / "chain.json", mkdir=False, obj={
            "format": JOURNAL_FORMAT, "chain_id": chain_id, "gas_limit": gas_limit,
            "genesis_timestamp": genesis_timestamp, "funded": funded,
            "genesis_hash": genesis.hex(),
        })
        return cls(d)

    # -- the store ------------------------------------------------------------------------------
    def _scan(self) -> LogScan:
        # the DB's index first, then the log: a writer appends to the log before it commits,
        # so the log read after is never behind the index read before (no false "missing")
        committed = self.db.committed()
        data = read_log(self.log_path)
        if data is None:
            scan = LogScan()
            scan.damage.append(f"{self.log_path}: the block log is missing (it is never "
                               "recreated silently)")
            return scan
        return scan_log(self.log_path, data, self.genesis_hash, committed)

    def _log_behind(self) -> bool:
        head = self.db.head_number()
        return bool(self.scan.torn) or any(r.number > head for r in self.scan.records)

    @property
    def _engine(self) -> Any:
        """The py-evm engine over the DB (built on first use: reads of blocks, receipts and
        logs never import py-evm)."""
        if self._engine_obj is None:
            self._engine_obj = _engine_over(self.directory, lambda: self.db, self.chain_id,
                                            self._gas_limit)
        return self._engine_obj

    def _refuse_if_damaged(self) -> None:
        if self.damage:
            raise JournalError(f"{self.damage[0]}; {repair_hint(self.directory)}")
        if not self.writable:
            raise JournalError(f"the chain directory {self.directory} is read-only: reads work, "
                               "writes need write access to it")

    @contextlib.contextmanager
    def locked(self, *, blocking: bool = True) -> Iterator[JournaledChain]:
        """Exclusive writer section: take the lock, catch the DB up with the log (replay of
        blocks a crashed writer logged but did not commit; a torn tail is set aside), follow
        blocks other processes committed, then yield.  Refused while the chain is damaged."""
        if self._lock_fd is not None:  # re-entrant
            yield self
            return
        self._refuse_if_damaged()
        fd = _open_lock(self.directory)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BaseException:
            os.close(fd)
            raise
        try:
            self._lock_fd = fd
            self._catch_up()
            if self._engine_obj is not None:
                self._engine_obj.reload_head()
            yield self
        finally:
            self._lock_fd = None
            self._raw.clear()
            if self._engine_obj is not None and self._engine_obj.pending():
                self._engine_obj = None  # pending transactions die with the writer section
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _catch_up(self) -> None:
        size = self._log_size()
        head = self.db.head_number()
        row = self.db.q("SELECT log_end FROM blocks WHERE number = ?", (head,))
        end = int(row[0][0]) if row else -1
        if size == end:
            self.scan.good_end = end
            return
        self.scan = self._scan()
        self.damage = list(self.scan.damage)
        if self.damage:
            raise JournalError(f"{self.damage[0]}; {repair_hint(self.directory)}")
        for rec in self.scan.records:
            if rec.number > head:
                self._replay(rec)
        if self.scan.torn:
            side = set_aside_torn_tail(self.log_path, self.scan.good_end)
            sys.stderr.write(f"note: an incomplete block record (a crash mid-append) was moved "
                             f"from {self.log_path} to {side}\n")
            self.scan.torn = 0

    def _replay(self, rec: LogRecord) -> None:
        """Commit to the DB a block the log holds (its writer crashed before the DB commit)."""
        engine = self._engine
        engine.reload_head()
        try:
            for raw in rec.txs:
                engine.submit(raw)
            info = engine.produce_block(rec.timestamp)
        except Exception as exc:
            self.db.discard()
            self._engine_obj = None
            raise JournalError(f"{self.log_path}: replaying block {rec.number} failed ({exc}); "
                               f"{repair_hint(self.directory)}") from None
        if info.hash != rec.hash:
            self.db.discard()
            self._engine_obj = None
            raise JournalError(
                f"{self.log_path}: replaying block {rec.number} gives hash 0x{info.hash.hex()}, "
                f"the log says 0x{rec.hash.hex()}: it was written by a different engine version "
                f"or edited; {repair_hint(self.directory)}")
        self._commit(info, rec.header, rec.start, rec.end, rec.crc)

    def _commit(self, info: BlockInfo, header: bytes, start: int, end: int, crc: int) -> None:
        engine = self._engine
        receipts = [(engine._receipts.pop(h), enc)
                    for h, enc in zip(info.tx_hashes, engine._receipt_encodings, strict=True)]
        engine._logs.clear()
        self.db.commit_block(info, header, start, end, crc, receipts)
        self.scan.good_end = end

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError as exc:
            raise JournalError(f"the block log {self.log_path} is unreadable ({exc.strerror}); "
                               f"{repair_hint(self.directory)}") from None

    # -- writes ---------------------------------------------------------------------------------
    def submit(self, raw_tx: bytes) -> bytes:
        if self._lock_fd is None:
            # outside the lock another process's block could sweep this pending transaction
            # into a block it was never in
            raise JournalError("submit to a journaled chain inside `with chain.locked():`")
        h: bytes = self._engine.submit(raw_tx)
        self._raw[h] = bytes(raw_tx)
        return h

    def produce_block(self, timestamp: int | None = None, *, max_txs: int | None = None
                      ) -> BlockInfo:
        with self.locked():
            import rlp

            engine = self._engine
            try:
                info: BlockInfo = engine.produce_block(timestamp, max_txs=max_txs)
            except BaseException:
                self.db.discard()
                self._engine_obj = None
                raise
            header = rlp.encode(engine._head)
            record = encode_record(info.number, info.hash, info.parent_hash, info.timestamp,
                                   header, [self._raw.pop(h) for h in info.tx_hashes])
            start = self.scan.good_end
            try:
                end = append_record(self.log_path, record, start)
            except BaseException as exc:
                self.db.discard()
                self._engine_obj = None
                if isinstance(exc, OSError):
                    raise JournalError(f"cannot append block {info.number} to {self.log_path} "
                                       f"({exc.strerror}); nothing was written; free space or "
                                       "fix permissions") from None
                raise
            try:
                self._commit(info, header, start, end, struct.unpack(">I", record[4:8])[0])
            except BaseException as exc:
                self.db.discard()
                self._engine_obj = None
                if isinstance(exc, JournalError):
                    raise JournalError(f"{exc} (block {info.number} is safe in the block log: "
                                       "the next write commits it to the state DB)") from None
                raise
            return info

    def faucet_send(self, to: str, wei: int) -> bytes:
        """Fund ``to`` from the public dev faucet (a journaled transfer; mine a block after)."""
        engine = self._engine
        raw = self._faucet.sign_transaction(
            chain_id=self.chain_id, nonce=engine.next_nonce(self._faucet.address), to=to,
            data=b"", gas=21_000, max_fee_per_gas=2 * engine.base_fee() + 10**9,
            max_priority_fee_per_gas=10**9, value=wei,
        )
        return self.submit(raw)

    def snapshot(self) -> int:
        raise EngineError("a journaled chain cannot be snapshotted: its blocks are permanent")

    def revert(self, snapshot_id: int) -> None:
        raise EngineError("a journaled chain cannot be reverted: its blocks are permanent")

    def sync(self) -> int:
        """Follow blocks other processes committed; returns how many the engine moved."""
        if self._engine_obj is None:
            return 0
        before = self._engine_obj._head.block_number
        self._engine_obj.reload_head()
        return int(self._engine_obj._head.block_number - before)

    # -- reads (from the DB: they see every block committed by any process) --------------------
    def _fresh(self) -> Any:
        engine = self._engine
        if self._lock_fd is None:
            engine.reload_head()
        return engine

    def pending(self) -> tuple[bytes, ...]:
        return () if self._engine_obj is None else tuple(self._engine_obj.pending())

    def receipt(self, tx_hash: bytes) -> Receipt | None:
        return self.db.receipt(tx_hash)

    def receipt_rlp(self, tx_hash: bytes) -> bytes | None:
        """The consensus RLP encoding of a receipt, as the block's receipt trie holds it."""
        return self.db.receipt_rlp(tx_hash)

    def block_receipt_rlps(self, number: int) -> list[bytes]:
        """The consensus RLP encodings of block ``number``'s receipts, in transaction order
        (the leaves of its receipt trie, for receipt proofs)."""
        return self.db.block_receipt_rlps(number)

    def call(self, to: str | None, data: bytes, *, sender: str | None = None, value: int = 0
             ) -> CallResult:
        result: CallResult = self._fresh().call(to, data, sender=sender, value=value)
        return result

    def estimate_gas(self, sender: str, to: str | None, data: bytes, value: int = 0) -> int:
        return int(self._fresh().estimate_gas(sender, to, data, value))

    def nonce(self, address: str) -> int:
        return int(self._fresh().nonce(address))

    def next_nonce(self, address: str) -> int:
        return int(self._fresh().next_nonce(address))

    def balance(self, address: str) -> int:
        return int(self._fresh().balance(address))

    def code(self, address: str) -> bytes:
        return bytes(self._fresh().code(address))

    def head(self) -> BlockInfo:
        info = self.db.block(self.db.head_number())
        if info is None:
            raise JournalError(f"state DB {self.db_path} holds no blocks; "
                               f"{repair_hint(self.directory)}")
        return info

    def block(self, number: int) -> BlockInfo:
        info = self.db.block(number) if number >= 0 else None
        if info is None:
            raise EngineError(f"no block {number}: the chain has blocks "
                              f"0..{self.db.head_number()}")
        return info

    def logs(self, address: str | None = None, from_block: int = 0, to_block: int | None = None,
             topics: list[bytes | None] | None = None) -> list[Log]:
        last = self.db.head_number() if to_block is None else to_block
        return self.db.logs(address, from_block, last, topics)

    def base_fee(self) -> int:
        return int(self._fresh().base_fee())

    @property
    def gas_limit(self) -> int:
        return self._gas_limit

    def close(self) -> None:
        """Close the state DB (the last connection's close checkpoints its WAL)."""
        self.db.close()


# ---------------------------------------------------------------------------------------------
# creating a store; importing format-1 chains
# ---------------------------------------------------------------------------------------------
def _init_store(d: Path, funded: list[str], chain_id: int, gas_limit: int,
                genesis_timestamp: int) -> bytes:
    """Write an empty block log and a state DB holding genesis; returns the genesis hash."""
    genesis = _genesis_db(d / DB_NAME, funded, chain_id, gas_limit, genesis_timestamp)
    with open(d / LOG_NAME, "xb") as fh:
        fh.write(file_header(genesis))
        fh.flush()
        os.fsync(fh.fileno())
    return genesis


def _genesis_db(path: Path, funded: list[str], chain_id: int, gas_limit: int,
                genesis_timestamp: int) -> bytes:
    """A new state DB at ``path`` holding genesis only; returns the genesis hash."""
    import rlp

    from proml_sim.chain.pyevm import PyEVMBackend

    db = StateDB(path, create=True)
    try:
        engine = PyEVMBackend(funded=funded, chain_id=chain_id, gas_limit=gas_limit,
                              genesis_timestamp=genesis_timestamp, db=SQLiteKV(db))
        info = engine.block(0)
        db.commit_genesis(info, rlp.encode(engine._head), info.hash, chain_id)
    finally:
        db.close()
    return bytes(info.hash)


def _aside_stamp(path: Path, why: str) -> str:
    """``<time>`` (or ``<time>-<n>``) such that ``<name>.<why>-<stamp>`` names no file yet."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    n = 1
    while path.with_name(f"{path.name}.{why}-{stamp}").exists():  # never over an earlier copy
        stamp, n = f"{time.strftime('%Y%m%dT%H%M%S')}-{n}", n + 1
    return stamp


def _set_aside(path: Path, why: str) -> Path | None:
    """Rename ``path`` (and its SQLite companions) to ``<name>.<why>-<time>``: kept, not
    deleted.  Returns the new name of ``path``."""
    stamp = _aside_stamp(path, why)
    moved = None
    for suffix in ("", "-wal", "-shm"):
        p = path.with_name(path.name + suffix)
        if p.exists():
            dest = p.with_name(f"{path.name}.{why}-{stamp}{suffix}")
            p.rename(dest)
            moved = moved or dest
    return moved


def _open_lock(directory: Path) -> int:
    """The descriptor of the chain directory's lock file (created if absent)."""
    path = directory / "lock"
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        fix = ("it is not a file: move it aside, the next writer creates it"
               if path.exists() and not path.is_file() else "fix its permissions")
        raise JournalError(f"cannot take the writer lock {path}: {exc.strerror}; "
                           f"{fix}") from None


@contextlib.contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """The chain directory's writer lock (what :meth:`JournaledChain.locked` takes), for a
    repair that replaces one of its files."""
    fd = _open_lock(directory)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _engine_over(d: Path, open_db: Callable[[], StateDB], chain_id: int, gas_limit: int
                 ) -> Any:
    """The py-evm engine over the state DB ``open_db()`` of the chain directory ``d`` (at its
    canonical head; nothing replayed); JournalError naming the DB when it cannot serve one."""
    from proml_sim.chain.pyevm import PyEVMBackend

    try:
        return PyEVMBackend.from_db(SQLiteKV(open_db()), chain_id=chain_id,
                                    gas_limit=gas_limit)
    except JournalError:
        raise
    except Exception as exc:  # SQLite or py-evm found the data missing or malformed
        raise JournalError(f"state DB {d / DB_NAME} cannot be read by the engine ({exc!r}); "
                           f"{repair_hint(d)}") from None


@contextlib.contextmanager
def read_code(directory: str | Path) -> Iterator[Callable[[str], bytes]]:
    """A reader of contract code (``reader(address) -> bytes``) in the state at the head of the
    chain in ``directory``, that never writes: no recovery, no import, no lock (``proml
    doctor`` reads a home's contracts with it); the state DB is closed on leaving.
    JournalError if the state DB cannot serve it."""
    d = Path(directory)
    meta = _read_meta(d)
    opened: list[StateDB] = []

    def open_db() -> StateDB:
        opened.append(StateDB(d / DB_NAME, readonly=True))
        return opened[-1]

    try:
        engine = _engine_over(d, open_db, meta["chain_id"], meta["gas_limit"])

        def reader(address: str) -> bytes:
            try:
                return bytes(engine.code(address))
            except (JournalError, ValueError, TypeError):
                raise
            except Exception as exc:  # a trie node missing under the account
                raise JournalError(f"state DB {d / DB_NAME} cannot give the code at "
                                   f"{address} ({exc!r}); {repair_hint(d)}") from None

        yield reader
    finally:
        for db in opened:
            db.close()


def rebuild_state_db(directory: str | Path) -> tuple[Path | None, int]:
    """Rebuild the state DB of the chain at ``directory`` by replaying its block log (the old DB
    is renamed aside, never deleted).  Returns (where the old DB went, the new head number)."""
    d = Path(directory)
    meta = _read_meta(d)
    with directory_lock(d):
        old = _set_aside(d / DB_NAME, "damaged")
        genesis = _genesis_db(d / DB_NAME, list(meta["funded"]), meta["chain_id"],
                              meta["gas_limit"], meta["genesis_timestamp"])
        if genesis.hex() != meta["genesis_hash"]:
            raise JournalError(f"genesis of {d} does not match this engine")
    chain = JournaledChain(d)
    with chain.locked():  # catches the new DB up with every block of the log
        pass
    head = chain.head().number
    chain.close()
    return old, head


def replay_into(directory: str | Path, into: str | Path, *, log_end: int) -> JournaledChain:
    """A copy of the chain at ``directory`` in the empty directory ``into``: its chain.json, its
    block log up to byte ``log_end``, and a state DB built from that log by replay (the commit
    path every writer takes).  ``proml doctor`` compares it with the chain's own DB.  Raises
    :class:`JournalError` when a block does not replay to its logged hash."""
    d, t = Path(directory), Path(into)
    meta = _read_meta(d)
    shutil.copyfile(d / "chain.json", t / "chain.json")
    with open(d / LOG_NAME, "rb") as src, open(t / LOG_NAME, "wb") as dst:
        left = log_end
        while left > 0:
            chunk = src.read(min(left, 1 << 20))
            if not chunk:
                break
            dst.write(chunk)
            left -= len(chunk)
    genesis = _genesis_db(t / DB_NAME, list(meta["funded"]), meta["chain_id"],
                          meta["gas_limit"], meta["genesis_timestamp"])
    if genesis.hex() != meta["genesis_hash"]:
        raise JournalError(f"{d / 'chain.json'}: its genesis parameters give genesis "
                           f"0x{genesis.hex()}, not the recorded 0x{meta['genesis_hash']}")
    chain = JournaledChain(t, _importing=True)  # opened without catching up yet
    chain.db.conn.execute("PRAGMA synchronous = OFF")  # a scratch copy: no fsync per block
    try:
        with chain.locked():  # replays every block of the copied log into the new DB
            pass
    except BaseException:
        chain.close()
        raise
    return chain


def restore_log(directory: str | Path, source: str | Path) -> tuple[Path | None, int]:
    """Replace the block log of ``directory`` with the verified records of ``source``'s (a
    replica's or peer's copy of the same chain).  Every record is checked against the hash
    chain from our genesis and against every block we hold intact (our DB's index and our
    log's verified records); the old log is renamed aside.  Returns (where the old log went,
    the number of blocks now in the log)."""
    d, src = Path(directory), Path(source)
    meta = _read_meta(d)
    genesis = bytes.fromhex(meta["genesis_hash"])
    peer_data = read_log(src / LOG_NAME)
    if peer_data is None:
        raise JournalError(f"{src} has no block log ({LOG_NAME}); pass a copy of this chain's "
                           "directory to --from")
    peer = scan_log(src / LOG_NAME, peer_data, genesis, [])
    if not peer.records:
        raise JournalError(f"{src / LOG_NAME} holds no verifiable block of this chain"
                           + (f" ({peer.damage[0]})" if peer.damage else ""))
    ours: dict[int, bytes] = {}
    try:
        db = StateDB(d / DB_NAME, readonly=True)
        for n, h, _s, _e in db.committed():
            ours[n] = h
        db.close()
    except JournalError:
        pass  # a missing or damaged DB: it is rebuilt from the restored log afterwards
    own = read_log(d / LOG_NAME)
    if own is not None:
        for own_rec in scan_log(d / LOG_NAME, own, genesis, []).records:
            ours.setdefault(own_rec.number, own_rec.hash)
    by_number = {r.number: r for r in peer.records}
    for n, h in sorted(ours.items()):
        rec = by_number.get(n)
        if rec is None:
            raise JournalError(f"{src / LOG_NAME} stops at block {peer.records[-1].number}, "
                               f"but this chain holds block {n}; use a more recent copy")
        if rec.hash != h:
            raise JournalError(f"{src / LOG_NAME} has another block {n} (0x{rec.hash.hex()}) "
                               f"than this chain (0x{h.hex()}); it is not a copy of this chain")
    from proml_sim.fsutil import atomic_write_bytes

    with directory_lock(d):
        old = _set_aside(d / LOG_NAME, "damaged")
        atomic_write_bytes(d / LOG_NAME, peer_data[: peer.good_end])
    return old, peer.records[-1].number


def regenerate_log(directory: str | Path) -> tuple[Path | None, int]:
    """Rebuild the block log of ``directory`` from its state DB (which holds every committed
    block's header and, in its transaction trie, its raw transactions).  Every record must come
    out at the byte range and with the CRC the DB recorded for it, so the new log is the one
    that was written.  The old log is renamed aside.  Returns (where it went, head number)."""
    import rlp
    from trie.hexary import HexaryTrie

    d = Path(directory)
    meta = _read_meta(d)
    genesis = bytes.fromhex(meta["genesis_hash"])
    db = StateDB(d / DB_NAME, readonly=True)
    kv = SQLiteKV(db)
    out = bytearray(file_header(genesis))
    head = 0
    try:
        rows = db.q("SELECT number, log_start, log_end, crc FROM blocks WHERE number > 0 "
                    "ORDER BY number")
        for n, start, end, crc in rows:
            info = db.block(n)
            header = db.header(n)
            assert info is not None and header is not None
            trie = HexaryTrie(kv, rlp.decode(header)[4])
            txs = [bytes(trie[rlp.encode(i)]) for i in range(len(info.tx_hashes))]
            if [keccak(t) for t in txs] != list(info.tx_hashes):
                raise JournalError(f"state DB {db.path}: block {n}'s transactions do not match "
                                   "its index; restore the log with --from DIR instead")
            rec = encode_record(n, info.hash, info.parent_hash, info.timestamp, header, txs)
            if (len(out), len(out) + len(rec), zlib.crc32(rec[8:])) != (start, end, crc):
                raise JournalError(f"state DB {db.path}: block {n} does not re-encode to the "
                                   "record it committed; restore the log with --from DIR")
            out += rec
            head = n
    except KeyError as exc:
        raise JournalError(f"state DB {db.path} lacks a transaction trie node ({exc}); restore "
                           "the log with --from DIR instead") from None
    finally:
        db.close()
    from proml_sim.fsutil import atomic_write_bytes

    with directory_lock(d):
        old = _set_aside(d / LOG_NAME, "damaged")
        atomic_write_bytes(d / LOG_NAME, bytes(out))
    return old, head


def v1_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(offset, record) of each record of a format-1 journal.  A bad record that is not the
    incomplete final one is :class:`JournalError` naming the offset."""
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
        if len(data) - pos < _V1_HEADER.size:
            return  # torn final record: it was never acknowledged
        length, crc = _V1_HEADER.unpack_from(data, pos)
        end = pos + _V1_HEADER.size + length
        payload = data[pos + _V1_HEADER.size : end]
        if zlib.crc32(payload) != crc:
            if end >= len(data):
                return
            raise JournalError(f"{path}: the record at byte {pos} fails its checksum; restore "
                               f"{path.name} from a replica of this chain, then open it again")
        yield pos, parse_json(payload)
        pos = end


def _import_v1(directory: Path, meta: dict[str, Any], writable: bool) -> dict[str, Any]:
    """Import a format-1 chain (``blocks.log`` replayed) into a format-2 store, once.  The old
    journal is never changed; the old ``chain.json`` is kept as ``chain.v1.json``.  A
    read-only directory is imported into a temporary copy for this process."""
    old_log = directory / V1_LOG
    if not old_log.exists():
        raise JournalError(f"{old_log} is missing (format-1 chain); restore it from a replica")
    target = directory
    if not writable:
        target = Path(tempfile.mkdtemp(prefix="proml-v1-import-"))
        import atexit

        atexit.register(shutil.rmtree, target, True)  # our own scratch copy
        sys.stderr.write(f"note: {directory} is a read-only format-1 chain; it is replayed into "
                         f"a temporary store ({target}); make it writable once to import it\n")
    lock_fd = None
    try:
        if writable:
            lock_fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            fresh = _read_meta(directory)
            if fresh["format"] != 1 and not fresh.get("import_pending"):
                return fresh  # another process imported it meanwhile
            if not (directory / "chain.v1.json").exists():
                shutil.copyfile(directory / "chain.json", directory / "chain.v1.json")
            for name in (LOG_NAME, DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"):
                if (directory / name).exists():  # an import that crashed: keep it aside
                    (directory / name).rename(directory / f"{name}.partial-import-"
                                              f"{int(time.time())}")
        records = list(v1_records(old_log))  # every record checked before anything is written
        genesis = _init_store(target, list(meta["funded"]), meta["chain_id"],
                              meta["gas_limit"], meta["genesis_timestamp"])
        if genesis.hex() != meta["genesis_hash"]:
            raise JournalError(f"genesis of {directory} does not match this engine; the chain "
                               "was made by an incompatible proml-sim")
        new_meta = dict(meta, format=JOURNAL_FORMAT, imported_from=V1_LOG)
        new_meta.pop("import_pending", None)
        # import_pending: a crash before the end makes the next open import again
        atomic_write_json(target / "chain.json", dict(new_meta, import_pending=True),
                          mkdir=False)
        chain = JournaledChain(target, _importing=True)
        # this function holds the directory's lock (a temporary store is private): hand it over
        chain._lock_fd = -1 if lock_fd is None else lock_fd
        try:
            for pos, rec in records:
                for raw_hex in rec["txs"]:
                    chain.submit(bytes.fromhex(raw_hex))
                info = chain.produce_block(rec["timestamp"])
                if info.hash.hex() != rec["hash"] or info.number != rec["number"]:
                    raise JournalError(
                        f"replaying block {rec['number']} (byte {pos}) of {old_log} gives hash "
                        f"{info.hash.hex()}, the journal says {rec['hash']}; the journal was "
                        "written by a different engine version or edited")
        except JournalError:
            chain.close()
            if writable:  # the old journal stays the chain (the old release still opens it)
                from proml_sim.fsutil import atomic_write_bytes

                atomic_write_bytes(directory / "chain.json",
                                   (directory / "chain.v1.json").read_bytes())
            raise
        finally:
            chain._lock_fd = None
        chain.close()
        atomic_write_json(target / "chain.json", new_meta, mkdir=False)
        if writable:
            return new_meta
        return dict(new_meta, imported_into=str(target))
    finally:
        if lock_fd is not None:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
            os.close(lock_fd)
