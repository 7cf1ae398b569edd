"""The persistent chain: survives reopen and crashes, shared by processes, refuses bad stores."""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import sqlite3
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from proml_sim import compile_artefact
from proml_sim.chain import KeyRing
from proml_sim.chain.blockstore import DB_NAME, FILE_HEADER_SIZE, LOG_NAME
from proml_sim.chain.client import LifecycleClient
from proml_sim.chain.journal import JournaledChain
from proml_sim.chain.pyevm import PyEVMBackend
from proml_sim.errors import EngineError, JournalError
from proml_sim.lifecycles import SingleAdminModel as Model  # chain mechanics, one admin

RECIPIENT = "0x00000000000000000000000000000000000000aa"


def _setup(tmp: Path) -> tuple[KeyRing, JournaledChain, LifecycleClient, bytes]:
    keys = KeyRing.from_seed("journal", 3)
    chain = JournaledChain.create(tmp / "chain", funded=keys.addresses)
    with chain.locked():
        c = LifecycleClient.deploy(chain, compile_artefact(Model), keys.signer(keys.addresses[0]))
        c.grant(keys.signer(keys.addresses[0]), "operator", keys.addresses[1])
        c.grant(keys.signer(keys.addresses[0]), "developer", keys.addresses[2])
        mid = c.register(keys.signer(keys.addresses[1]), b"\x01" * 32)
        c.fire(keys.signer(keys.addresses[2]), "train", mid, b"\x02" * 32)
    return keys, chain, c, mid


def _transfers(directory: Path, n: int, create: bool = True) -> JournaledChain:
    """A chain of ``n`` blocks with one faucet transfer each (no contract: fast)."""
    chain = JournaledChain.create(directory) if create else JournaledChain(directory)
    for _ in range(n):
        with chain.locked():
            chain.faucet_send(RECIPIENT, 1)
            chain.produce_block()
    return chain


def _records(log: Path) -> list[tuple[int, int]]:
    """(start, end) of each record of a block log."""
    data = log.read_bytes()
    pos, out = FILE_HEADER_SIZE, []
    while pos < len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        out.append((pos, pos + 8 + length))
        pos += 8 + length
    return out


def test_reopen_gives_same_head_and_state(tmp_path):
    keys, chain, c, mid = _setup(tmp_path)
    again = JournaledChain(tmp_path / "chain")
    assert again.head() == chain.head()
    assert [again.block(n) for n in range(chain.head().number + 1)] == [
        chain.block(n) for n in range(chain.head().number + 1)]
    c2 = LifecycleClient(again, c.compiled, c.address)
    assert c2.state(mid) == "trained" and c2.version(mid) == 2
    assert c2.snapshot() == c.snapshot()
    assert c2.history(mid) == c.history(mid)
    # receipts come back from the DB, with their consensus encoding kept
    last = chain.head().tx_hashes[0]
    assert again.receipt(last) == chain.receipt(last)
    rlp_bytes = again.receipt_rlp(last)
    assert rlp_bytes is not None and rlp_bytes[0] == 2  # a type-2 receipt


def test_same_blocks_as_the_in_memory_engine(tmp_path):
    """The store executes exactly what PyEVMBackend does (same hashes, same state roots)."""
    chain = _transfers(tmp_path / "c", 3)
    mem = PyEVMBackend(chain_id=1337, gas_limit=30_000_000, genesis_timestamp=1_700_000_000)
    for _ in range(3):
        mem.faucet_send(RECIPIENT, 1)
        mem.produce_block()
    assert [chain.block(n).hash for n in range(4)] == [mem.block(n).hash for n in range(4)]
    assert chain.balance(RECIPIENT) == mem.balance(RECIPIENT) == 3
    assert chain.logs() == mem.logs()


def test_open_does_not_replay(tmp_path, monkeypatch):
    _transfers(tmp_path / "c", 3)

    def boom(*a, **k):
        raise AssertionError("opening replayed a block")

    monkeypatch.setattr(PyEVMBackend, "produce_block", boom)
    again = JournaledChain(tmp_path / "c")
    assert again.head().number == 3 and again.balance(RECIPIENT) == 3


def test_torn_last_record_is_set_aside_not_dropped(tmp_path):
    chain = _transfers(tmp_path / "c", 2)
    log = tmp_path / "c" / LOG_NAME
    good = log.read_bytes()
    torn = struct.pack(">II", 500, 0) + b"\x00\x00\x00\x00\x00\x00\x00\x03partial"
    with open(log, "ab") as fh:  # a crash in the middle of appending a block
        fh.write(torn)
    reader = JournaledChain(tmp_path / "c")
    assert reader.head() == chain.head() and not reader.damage
    assert log.read_bytes() == good  # opening with the lock free already set it aside
    sides = list((tmp_path / "c").glob(f"{LOG_NAME}.torn-*"))
    assert len(sides) == 1 and sides[0].read_bytes() == torn
    _transfers(tmp_path / "c", 1, create=False)
    assert JournaledChain(tmp_path / "c").head().number == 3


def _log_ahead(tmp_path: Path, monkeypatch) -> tuple[Path, int, tuple[int, int]]:
    """A chain of 3 blocks whose 4th block was appended to the log but not committed to the DB
    (a crash between the two writes)."""
    chain = _transfers(tmp_path / "c", 3)
    from proml_sim.chain import blockstore

    def crash(*a, **k):
        raise OSError("simulated crash before the DB commit")

    monkeypatch.setattr(blockstore.StateDB, "commit_block", crash)
    with pytest.raises(OSError), chain.locked():
        chain.faucet_send(RECIPIENT, 1)
        chain.produce_block()
    monkeypatch.undo()
    log = tmp_path / "c" / LOG_NAME
    return log, 3, _records(log)[-1]


def test_a_logged_uncommitted_block_is_replayed(tmp_path, monkeypatch):
    log, head, (start, end) = _log_ahead(tmp_path, monkeypatch)
    assert end == log.stat().st_size
    again = JournaledChain(tmp_path / "c")
    assert again.head().number == head + 1 and not again.damage
    assert again.balance(RECIPIENT) == 4


def test_truncation_in_the_last_record(tmp_path, monkeypatch):
    """A cut uncommitted append is torn (set aside, no damage); a cut committed record is
    damage naming the block (reads served from the DB, writes refused, nothing truncated).
    Every 9th offset and both ends here; every offset in the slow test below."""
    _truncations(tmp_path, monkeypatch, 9)


@pytest.mark.slow
def test_truncation_at_every_offset_of_the_last_record(tmp_path, monkeypatch):
    _truncations(tmp_path, monkeypatch, 1)


def _truncations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    log, head, (start, end) = _log_ahead(tmp_path, monkeypatch)
    full = log.read_bytes()
    d = tmp_path / "c"
    committed_start, committed_end = _records(log)[-2]
    for cut in sorted({*range(start, end, step), start + 1, end - 1}):
        log.write_bytes(full[:cut])
        chain = JournaledChain(d)
        assert not chain.damage and chain.head().number == head
        assert log.read_bytes() == full[:start]
        sides = list(d.glob(f"{LOG_NAME}.torn-*"))
        assert [s.read_bytes() for s in sides] == ([full[start:cut]] if cut > start else [])
        for s in sides:
            s.unlink()
        chain.close()
    for cut in sorted({*range(committed_start, committed_end, step), committed_end - 1}):
        log.write_bytes(full[:cut])
        chain = JournaledChain(d)
        assert chain.damage and f"block {head} " in chain.damage[0], (cut, chain.damage)
        assert chain.head().number == head  # served from the DB
        with pytest.raises(JournalError, match="doctor --repair"), chain.locked():
            pass
        assert log.read_bytes() == full[:cut]  # nothing truncated
        chain.close()


def test_a_flipped_byte_in_any_record_is_named(tmp_path):
    """The length, the CRC, the block number, the hash, a header byte and the tx bytes of every
    record here; every byte of every record in the slow test below."""
    _flips(tmp_path, lambda start, end: {start + 1, start + 5, start + 15, start + 20,
                                         start + 120, end - 1})


@pytest.mark.slow
def test_a_flipped_byte_anywhere_in_the_log_is_named(tmp_path):
    _flips(tmp_path, lambda start, end: set(range(start, end)))


def _flips(tmp_path: Path, offsets: Callable[[int, int], set[int]]) -> None:
    chain = _transfers(tmp_path / "c", 4)
    log = tmp_path / "c" / LOG_NAME
    data = log.read_bytes()
    recs = _records(log)
    for number, (start, end) in enumerate(recs, start=1):
        for off in sorted(offsets(start, end)):
            bad = bytearray(data)
            bad[off] ^= 0x40
            log.write_bytes(bytes(bad))
            again = JournaledChain(tmp_path / "c")
            assert again.damage, (number, off)
            assert f"block {number} " in again.damage[0] and str(log) in again.damage[0]
            assert again.head() == chain.head()  # reads still served from the DB
            with pytest.raises(JournalError, match=f"block {number}"), again.locked():
                pass
            assert log.read_bytes() == bytes(bad)  # never truncated or rewritten
            again.close()
    log.write_bytes(data)
    assert not JournaledChain(tmp_path / "c").damage


def test_an_edited_record_with_a_valid_crc_is_refused(tmp_path):
    _transfers(tmp_path / "c", 2)
    log = tmp_path / "c" / LOG_NAME
    data = bytearray(log.read_bytes())
    start, end = _records(log)[0]
    payload = bytearray(data[start + 8 : end])
    payload[8 + 3] ^= 1  # the block hash
    data[start : end] = struct.pack(">II", len(payload), zlib.crc32(payload)) + payload
    log.write_bytes(bytes(data))
    chain = JournaledChain(tmp_path / "c")
    assert chain.damage and "block 1 " in chain.damage[0]


def test_missing_garbage_and_swapped_files(tmp_path):
    _transfers(tmp_path / "c", 2)
    other = JournaledChain.create(tmp_path / "o", genesis_timestamp=1_700_000_001)
    other.close()
    c = tmp_path / "c"

    def fresh() -> Path:
        d = tmp_path / "x"
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(c, d)
        return d

    d = fresh()
    (d / DB_NAME).unlink()
    with pytest.raises(JournalError, match=r"state DB .* is missing.*doctor --repair"):
        JournaledChain(d)
    d = fresh()
    (d / LOG_NAME).unlink()
    chain = JournaledChain(d)
    assert "block log is missing" in chain.damage[0]
    with pytest.raises(JournalError, match="missing"), chain.locked():
        pass
    assert not (d / LOG_NAME).exists()  # never silently restarted
    d = fresh()
    (d / "chain.json").unlink()
    with pytest.raises(JournalError, match=r"missing chain\.json"):
        JournaledChain(d)
    d = fresh()
    (d / DB_NAME).write_bytes(b"garbage" * 1000)
    with pytest.raises(JournalError, match=f"{DB_NAME}.*doctor --repair"):
        JournaledChain(d).head()
    d = fresh()
    (d / LOG_NAME).write_bytes(b"\x07garbage" * 500)
    chain = JournaledChain(d)
    assert "not a proml block log" in chain.damage[0]
    with pytest.raises(JournalError, match="doctor --repair"), chain.locked():
        pass
    assert (d / LOG_NAME).read_bytes() == b"\x07garbage" * 500
    d = fresh()
    shutil.copy(tmp_path / "o" / LOG_NAME, d / LOG_NAME)  # another chain's log
    assert "another chain" in JournaledChain(d).damage[0]
    d = fresh()
    for suffix in ("", "-wal", "-shm"):
        (d / (DB_NAME + suffix)).unlink(missing_ok=True)
    shutil.copy(tmp_path / "o" / DB_NAME, d / DB_NAME)  # another chain's DB
    with pytest.raises(JournalError, match="belongs to another chain"):
        JournaledChain(d)
    d = fresh()
    shutil.copy(tmp_path / "o" / "chain.json", d / "chain.json")  # another chain's chain.json
    with pytest.raises(JournalError, match="belongs to another chain"):
        JournaledChain(d)
    # an older copy of the log beside the DB: committed blocks are missing from the log
    d = fresh()
    log = d / LOG_NAME
    log.write_bytes(log.read_bytes()[: _records(log)[0][1]])
    chain = JournaledChain(d)
    assert "block 2 is committed in the state DB but missing" in chain.damage[0]


def test_an_older_db_is_caught_up_from_the_log(tmp_path):
    _transfers(tmp_path / "c", 1).close()
    shutil.copytree(tmp_path / "c", tmp_path / "old")
    _transfers(tmp_path / "c", 2, create=False).close()
    for suffix in ("-wal", "-shm"):
        (tmp_path / "c" / (DB_NAME + suffix)).unlink(missing_ok=True)
    shutil.copy(tmp_path / "old" / DB_NAME, tmp_path / "c" / DB_NAME)
    chain = JournaledChain(tmp_path / "c")
    assert chain.head().number == 3 and chain.balance(RECIPIENT) == 3


def test_read_only_directory_serves_reads(tmp_path, monkeypatch):
    keys, chain, c, mid = _setup(tmp_path)
    chain.close()
    from proml_sim.chain import journal

    monkeypatch.setattr(journal, "_writable", lambda d: False)
    ro = JournaledChain(tmp_path / "chain")
    assert ro.db.readonly and ro.db.mode == "mode=ro"
    c2 = LifecycleClient(ro, c.compiled, c.address)
    assert c2.state(mid) == "trained" and ro.head().number == 5
    with pytest.raises(JournalError, match="read-only"), ro.locked():
        pass
    # a read-only connection cannot write
    with pytest.raises(sqlite3.OperationalError):
        ro.db.conn.execute("DELETE FROM blocks")
    ro.close()
    # a directory SQLite cannot write its -shm into: opened immutable (no WAL is left)
    from proml_sim.chain import blockstore

    wal = tmp_path / "chain" / (DB_NAME + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    monkeypatch.setattr(blockstore.os, "access", lambda p, mode: False)
    imm = JournaledChain(tmp_path / "chain")
    assert imm.db.mode == "immutable=1"
    assert LifecycleClient(imm, c.compiled, c.address).version(mid) == 2


def test_sqlite_errors_are_journal_errors(tmp_path):
    chain = _transfers(tmp_path / "c", 1)
    chain.db.conn.close()
    with pytest.raises(JournalError, match=f"state DB .*{DB_NAME}"):
        chain.head()


def test_newer_format_and_missing_chain(tmp_path):
    with pytest.raises(JournalError, match=r"missing chain\.json"):
        JournaledChain(tmp_path / "nothing")
    _setup(tmp_path)
    meta = json.loads((tmp_path / "chain" / "chain.json").read_text())
    meta["format"] = 99
    (tmp_path / "chain" / "chain.json").write_text(json.dumps(meta))
    with pytest.raises(JournalError, match="newer than this proml-sim"):
        JournaledChain(tmp_path / "chain")
    with pytest.raises(JournalError, match="already exists"):
        JournaledChain.create(tmp_path / "chain")


def test_submit_outside_lock_is_refused(tmp_path):
    keys, chain, c, mid = _setup(tmp_path)
    with pytest.raises(JournalError, match=r"inside `with chain\.locked"):
        c.fire(keys.signer(keys.addresses[2]), "train", mid, b"\x03" * 32)
    with pytest.raises(EngineError):
        chain.snapshot()


def _write_v1(directory: Path, n: int) -> bytes:
    """A format-1 chain (the previous release's journal), made with the in-memory engine."""
    directory.mkdir(parents=True)
    mem = PyEVMBackend(chain_id=1337, gas_limit=30_000_000, genesis_timestamp=1_700_000_000)
    raws: dict[bytes, bytes] = {}
    out = bytearray()
    for _ in range(n):
        h = mem.faucet_send(RECIPIENT, 1)
        raws[h] = mem._pool.entries[h].raw
        info = mem.produce_block()
        payload = json.dumps({"number": info.number, "timestamp": info.timestamp,
                              "hash": info.hash.hex(),
                              "txs": [raws[t].hex() for t in info.tx_hashes]}).encode()
        out += struct.pack(">II", len(payload), zlib.crc32(payload)) + payload
    (directory / "blocks.log").write_bytes(bytes(out))
    (directory / "chain.json").write_text(json.dumps({
        "format": 1, "chain_id": 1337, "gas_limit": 30_000_000,
        "genesis_timestamp": 1_700_000_000, "funded": [],
        "genesis_hash": mem.block(0).hash.hex()}))
    return mem.head().hash


def test_format_1_chains_are_imported_and_kept(tmp_path):
    head = _write_v1(tmp_path / "v1", 3)
    old = (tmp_path / "v1" / "blocks.log").read_bytes()
    chain = JournaledChain(tmp_path / "v1")
    assert chain.head().hash == head and chain.balance(RECIPIENT) == 3
    assert (tmp_path / "v1" / "blocks.log").read_bytes() == old  # never rewritten
    assert json.loads((tmp_path / "v1" / "chain.v1.json").read_text())["format"] == 1
    assert json.loads((tmp_path / "v1" / "chain.json").read_text())["format"] == 2
    _transfers(tmp_path / "v1", 1, create=False)
    assert JournaledChain(tmp_path / "v1").head().number == 4


def test_format_1_read_only_is_served(tmp_path, monkeypatch):
    head = _write_v1(tmp_path / "v1", 2)
    from proml_sim.chain import journal

    monkeypatch.setattr(journal, "_writable", lambda d: False)
    chain = JournaledChain(tmp_path / "v1")
    assert chain.head().hash == head
    assert sorted(p.name for p in (tmp_path / "v1").iterdir()) == ["blocks.log", "chain.json"]


def _writer(directory: str, address: str, abi_ir: str, mid_hex: str, key_index: int,
            n: int) -> None:
    keys = KeyRing.from_seed("journal", 3)
    chain = JournaledChain(directory)
    c = LifecycleClient(chain, compile_artefact(Model), address)
    for i in range(n):
        with chain.locked():
            c.fire(keys.signer(keys.addresses[key_index]), "train", bytes.fromhex(mid_hex),
                   bytes([key_index, i + 1]) * 16)


def test_processes_append_to_one_chain(tmp_path):
    keys, chain, c, mid = _setup(tmp_path)
    with chain.locked():
        c.grant(keys.signer(keys.addresses[0]), "developer", keys.addresses[1])
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path / "chain"), c.address, "", mid.hex(),
                                               k, 5)) for k in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    chain.sync()
    assert LifecycleClient(chain, c.compiled, c.address).version(mid) == 2 + 10
    fresh = JournaledChain(tmp_path / "chain")
    assert fresh.head() == chain.head()


_KILL_WRITER = """
import sys
from proml_sim.chain.journal import JournaledChain
chain = JournaledChain(sys.argv[1])
while True:
    with chain.locked():
        chain.faucet_send("0x00000000000000000000000000000000000000aa", 1)
        info = chain.produce_block()
    print(info.number, info.hash.hex(), flush=True)
"""


def test_kill_9_during_writes_loses_no_acknowledged_block(tmp_path):
    """A writer is SIGKILLed at random points; every block it acknowledged is there after, and
    the chain opens without damage (a torn append is set aside)."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    JournaledChain.create(tmp_path / "c").close()
    rng = random.Random(7)
    acked: dict[int, str] = {}
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", _KILL_WRITER, str(tmp_path / "c")],
                                stdout=subprocess.PIPE, text=True, env=dict(os.environ))
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the writer is up and appending
        assert first, "the writer did not start"
        n, h = first.split()
        acked[int(n)] = h
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        for line in out.splitlines():
            n, h = line.split()
            acked[int(n)] = h
        chain = JournaledChain(tmp_path / "c")
        assert not chain.damage
        for n, h in acked.items():
            assert chain.block(n).hash.hex() == h
        assert chain.balance(RECIPIENT) == chain.head().number
        chain.close()


def test_log_queries_by_address_and_topics(tmp_path):
    keys, chain, c, mid = _setup(tmp_path)
    every = chain.logs()
    assert every and every == sorted(every, key=lambda lg: (lg.block_number, lg.log_index))
    mine = chain.logs(c.address)
    assert mine == [lg for lg in every if lg.address == c.address]
    t0 = mine[-1].topics[0]
    assert chain.logs(None, 0, None, [t0]) == [lg for lg in every if lg.topics[:1] == (t0,)]
    by_id = chain.logs(c.address, 0, None, [None, mid])
    assert by_id and all(lg.topics[1] == mid for lg in by_id)
    assert by_id == [lg for lg in mine if len(lg.topics) > 1 and lg.topics[1] == mid]
    assert chain.logs(c.address, 2, 3) == [lg for lg in mine if 2 <= lg.block_number <= 3]


def test_read_only_db_file_and_odd_paths(tmp_path, monkeypatch):
    d = tmp_path / "a dir?with #odd chars"
    _transfers(d, 1).close()
    from proml_sim.chain import journal

    monkeypatch.setattr(journal, "_writable", lambda p: False)
    chain = JournaledChain(d)
    assert chain.head().number == 1 and chain.balance(RECIPIENT) == 1


def test_readers_never_see_damage_while_a_writer_appends(tmp_path):
    import os
    import subprocess
    import sys
    import time

    JournaledChain.create(tmp_path / "c").close()
    proc = subprocess.Popen([sys.executable, "-c", _KILL_WRITER, str(tmp_path / "c")],
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert proc.stdout is not None and proc.stdout.readline()
        seen = set()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            chain = JournaledChain(tmp_path / "c")
            assert not chain.damage, chain.damage
            head = chain.head()
            assert chain.balance(RECIPIENT) >= head.number  # state at least as new as the head
            seen.add(head.number)
            chain.close()
        assert len(seen) > 1  # the readers followed the writer
    finally:
        proc.kill()
        proc.communicate()


def test_a_failed_db_commit_says_the_block_is_safe_in_the_log(tmp_path, monkeypatch):
    chain = _transfers(tmp_path / "c", 1)
    from proml_sim.chain import blockstore

    def full(self, *a, **k):
        raise blockstore.db_error(sqlite3.OperationalError("database or disk is full"),
                                  self.path, "committing block 2")

    monkeypatch.setattr(blockstore.StateDB, "commit_block", full)
    with pytest.raises(JournalError, match=r"disk is full.*safe in the block log"), \
            chain.locked():
        chain.faucet_send(RECIPIENT, 1)
        chain.produce_block()
    monkeypatch.undo()
    assert JournaledChain(tmp_path / "c").head().number == 2  # committed by the next opener


def test_an_interrupted_format_1_import_is_redone_and_kept_aside(tmp_path):
    head = _write_v1(tmp_path / "v1", 2)
    JournaledChain(tmp_path / "v1").close()
    meta = json.loads((tmp_path / "v1" / "chain.json").read_text())
    meta["import_pending"] = True  # as a crash before the import's last step leaves it
    (tmp_path / "v1" / "chain.json").write_text(json.dumps(meta))
    chain = JournaledChain(tmp_path / "v1")
    assert chain.head().hash == head
    assert "import_pending" not in json.loads((tmp_path / "v1" / "chain.json").read_text())
    assert list((tmp_path / "v1").glob(f"{LOG_NAME}.partial-import-*"))  # kept, not deleted


def test_a_damaged_format_1_journal_is_named_not_truncated(tmp_path):
    _write_v1(tmp_path / "v1", 3)
    log = tmp_path / "v1" / "blocks.log"
    data = bytearray(log.read_bytes())
    data[20] ^= 0x01  # inside the first record, with later records intact
    log.write_bytes(bytes(data))
    with pytest.raises(JournalError, match=r"blocks\.log: the record at byte 0 fails"):
        JournaledChain(tmp_path / "v1")
    assert log.read_bytes() == bytes(data)
    assert json.loads((tmp_path / "v1" / "chain.json").read_text())["format"] == 1
