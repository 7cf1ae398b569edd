"""A persistent embedded chain: the py-evm engine plus an append-only block journal on disk.

Several processes (CLI calls from shell scripts, one node per participant) share one chain
directory::

    <dir>/chain.json    genesis parameters and journal format (written once, atomically)
    <dir>/blocks.log    one record per block: length, CRC-32, JSON {number, timestamp, hash, txs}
    <dir>/lock          advisory lock (fcntl) held by a writer

Opening replays the journal into a fresh engine; every replayed block must reproduce its
journaled hash (same state, same receipts), otherwise :class:`JournalError`.  A block is
appended with one ``write`` + ``fsync`` after it was executed; a crash mid-append leaves a short
or corrupt last record, which readers ignore and the next writer truncates: there is never a
half-written block.  Writers wrap their work in :meth:`JournaledChain.locked`, which takes the
lock and first catches up with blocks other processes appended.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from proml_sim.chain.accounts import Signer, derive_private_keys
from proml_sim.chain.base import BlockInfo, CallResult, ChainBackend, Log, Receipt
from proml_sim.chain.pyevm import FAUCET_SEED, PyEVMBackend
from proml_sim.errors import EngineError, JournalError
from proml_sim.fsutil import atomic_write_json

JOURNAL_FORMAT = 1
_HEADER = struct.Struct(">II")  # payload length, CRC-32 of payload


class JournaledChain(ChainBackend):
    """A :class:`PyEVMBackend` whose blocks persist in ``directory``."""

    name = "pyevm-journal"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        meta_path = self.directory / "chain.json"
        try:
            meta = json.loads(meta_path.read_text())
        except FileNotFoundError:
            raise JournalError(
                f"no chain at {self.directory} (missing chain.json); create one with "
                "`proml init --new-chain` or JournaledChain.create()"
            ) from None
        except (OSError, ValueError) as exc:
            raise JournalError(f"cannot read {meta_path}: {exc}; restore it from a copy") from exc
        fmt = meta.get("format")
        if not isinstance(fmt, int) or fmt > JOURNAL_FORMAT:
            raise JournalError(
                f"chain at {self.directory} has journal format {fmt!r}, newer than this "
                f"proml-sim understands ({JOURNAL_FORMAT}); upgrade proml-sim"
            )
        self.meta = meta
        self._engine = PyEVMBackend(
            funded=meta["funded"], chain_id=meta["chain_id"], gas_limit=meta["gas_limit"],
            genesis_timestamp=meta["genesis_timestamp"],
        )
        self.chain_id = self._engine.chain_id
        if self._engine.block(0).hash.hex() != meta["genesis_hash"]:
            raise JournalError(
                f"genesis of {self.directory} does not match this engine; the chain was made "
                "by an incompatible proml-sim"
            )
        self._log = self.directory / "blocks.log"
        self._log.touch(exist_ok=True)
        self._offset = 0
        self._raw: dict[bytes, bytes] = {}
        self._lock_fd: int | None = None
        self._faucet = Signer(derive_private_keys(FAUCET_SEED, 1)[0])
        self.sync()

    @classmethod
    def create(cls, directory: str | Path, *, funded: Iterable[str] = (), chain_id: int = 1337,
               gas_limit: int = 30_000_000, genesis_timestamp: int = 1_700_000_000
               ) -> JournaledChain:
        """Create a new chain in ``directory`` (refuses to overwrite an existing one)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        if (d / "chain.json").exists():
            raise JournalError(f"a chain already exists at {d}; open it instead of creating")
        funded = list(funded)
        probe = PyEVMBackend(funded=funded, chain_id=chain_id, gas_limit=gas_limit,
                             genesis_timestamp=genesis_timestamp)
        atomic_write_json(d / "chain.json", mkdir=False, obj={
            "format": JOURNAL_FORMAT, "chain_id": chain_id, "gas_limit": gas_limit,
            "genesis_timestamp": genesis_timestamp, "funded": funded,
            "genesis_hash": probe.block(0).hash.hex(),
        })
        return cls(d)

    # -- journal ------------------------------------------------------------------------------
    def _records(self, start: int) -> Iterator[tuple[int, dict[str, Any]]]:
        """(end offset, record) for each complete record from ``start``; stops at a bad tail."""
        with open(self._log, "rb") as fh:
            fh.seek(start)
            pos = start
            while True:
                head = fh.read(_HEADER.size)
                if len(head) < _HEADER.size:
                    return
                length, crc = _HEADER.unpack(head)
                payload = fh.read(length)
                if len(payload) < length or zlib.crc32(payload) != crc:
                    return
                pos += _HEADER.size + length
                yield pos, json.loads(payload)

    def sync(self) -> int:
        """Replay blocks that other processes appended; returns how many."""
        n = 0
        for end, rec in self._records(self._offset):
            for raw_hex in rec["txs"]:
                self._engine.submit(bytes.fromhex(raw_hex))
            info = self._engine.produce_block(rec["timestamp"])
            if info.hash.hex() != rec["hash"] or info.number != rec["number"]:
                raise JournalError(
                    f"replaying block {rec['number']} of {self._log} gives hash "
                    f"{info.hash.hex()}, journal says {rec['hash']}; the journal was written "
                    "by a different engine version or edited"
                )
            self._offset = end
            n += 1
        return n

    @contextlib.contextmanager
    def locked(self) -> Iterator[JournaledChain]:
        """Exclusive writer section: take the lock, catch up, drop a torn tail, then yield."""
        if self._lock_fd is not None:  # re-entrant
            yield self
            return
        fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._lock_fd = fd
            self.sync()
            if self._log.stat().st_size > self._offset:  # torn last record from a crash
                with open(self._log, "r+b") as fh:
                    fh.truncate(self._offset)
                    fh.flush()
                    os.fsync(fh.fileno())
            yield self
        finally:
            self._lock_fd = None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _append(self, info: BlockInfo) -> None:
        payload = json.dumps({
            "number": info.number, "timestamp": info.timestamp, "hash": info.hash.hex(),
            "txs": [self._raw.pop(h).hex() for h in info.tx_hashes],
        }, separators=(",", ":")).encode()
        with open(self._log, "ab") as fh:
            if fh.tell() != self._offset:
                raise JournalError(
                    "the chain advanced in another process since this one synced; write "
                    "inside `with chain.locked():`"
                )
            fh.write(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
            fh.flush()
            os.fsync(fh.fileno())
            self._offset = fh.tell()

    # -- writes ---------------------------------------------------------------------------------
    def submit(self, raw_tx: bytes) -> bytes:
        if self._lock_fd is None:
            # outside the lock, a replay of another process's block could sweep this pending
            # transaction into a block it was never in
            raise JournalError("submit to a journaled chain inside `with chain.locked():`")
        h = self._engine.submit(raw_tx)
        self._raw[h] = raw_tx
        return h

    def produce_block(self, timestamp: int | None = None, *, max_txs: int | None = None
                      ) -> BlockInfo:
        with self.locked():
            info = self._engine.produce_block(timestamp, max_txs=max_txs)
            self._append(info)
            return info

    def faucet_send(self, to: str, wei: int) -> bytes:
        """Fund ``to`` from the public dev faucet (a journaled transfer; mine a block after)."""
        raw = self._faucet.sign_transaction(
            chain_id=self.chain_id, nonce=self._engine.next_nonce(self._faucet.address), to=to,
            data=b"", gas=21_000, max_fee_per_gas=2 * self._engine.base_fee() + 10**9,
            max_priority_fee_per_gas=10**9, value=wei,
        )
        return self.submit(raw)

    def snapshot(self) -> int:
        raise EngineError("a journaled chain cannot be snapshotted: its blocks are permanent")

    def revert(self, snapshot_id: int) -> None:
        raise EngineError("a journaled chain cannot be reverted: its blocks are permanent")

    # -- reads (catch up first: other processes may have appended) ------------------------------
    def _fresh(self) -> PyEVMBackend:
        if self._lock_fd is None and self._log.stat().st_size != self._offset:
            self.sync()
        return self._engine

    def pending(self) -> tuple[bytes, ...]:
        return self._engine.pending()

    def receipt(self, tx_hash: bytes) -> Receipt | None:
        return self._fresh().receipt(tx_hash)

    def call(self, to: str | None, data: bytes, *, sender: str | None = None, value: int = 0
             ) -> CallResult:
        return self._fresh().call(to, data, sender=sender, value=value)

    def estimate_gas(self, sender: str, to: str | None, data: bytes, value: int = 0) -> int:
        return self._fresh().estimate_gas(sender, to, data, value)

    def nonce(self, address: str) -> int:
        return self._fresh().nonce(address)

    def next_nonce(self, address: str) -> int:
        return self._fresh().next_nonce(address)

    def balance(self, address: str) -> int:
        return self._fresh().balance(address)

    def code(self, address: str) -> bytes:
        return self._fresh().code(address)

    def head(self) -> BlockInfo:
        return self._fresh().head()

    def block(self, number: int) -> BlockInfo:
        return self._fresh().block(number)

    def logs(self, address: str | None = None, from_block: int = 0, to_block: int | None = None,
             topics: list[bytes | None] | None = None) -> list[Log]:
        return self._fresh().logs(address, from_block, to_block, topics)

    def base_fee(self) -> int:
        return self._fresh().base_fee()

    @property
    def gas_limit(self) -> int:
        return self._engine.gas_limit
