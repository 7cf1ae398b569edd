"""The persistent chain: survives reopen and crashes, shared by processes, refuses bad journals."""

from __future__ import annotations

import json
import multiprocessing as mp
import struct
from pathlib import Path

import pytest

from proml_sim import compile_artefact
from proml_sim.chain import KeyRing
from proml_sim.chain.client import LifecycleClient
from proml_sim.chain.journal import JournaledChain
from proml_sim.errors import JournalError
from proml_sim.lifecycles import Model


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


def test_reopen_gives_same_head_and_state(tmp_path):
    keys, chain, c, mid = _setup(tmp_path)
    again = JournaledChain(tmp_path / "chain")
    assert again.head() == chain.head()
    c2 = LifecycleClient(again, c.compiled, c.address)
    assert c2.state(mid) == "trained" and c2.version(mid) == 2
    assert c2.snapshot() == c.snapshot()


def test_torn_last_record_is_ignored_then_truncated(tmp_path):
    keys, chain, c, mid = _setup(tmp_path)
    log = tmp_path / "chain" / "blocks.log"
    good = log.read_bytes()
    with open(log, "ab") as fh:  # a crash in the middle of appending a block
        fh.write(struct.pack(">II", 500, 0) + b"{\"number\": 9")
    reader = JournaledChain(tmp_path / "chain")
    assert reader.head() == chain.head()
    with reader.locked():
        pass
    assert log.read_bytes() == good  # the next writer drops the torn tail


def test_edited_journal_is_refused(tmp_path):
    _setup(tmp_path)
    log = tmp_path / "chain" / "blocks.log"
    data = bytearray(log.read_bytes())
    # rewrite the first record's hash while keeping its CRC valid: replay must catch it
    length = struct.unpack(">I", data[:4])[0]
    rec = json.loads(data[8:8 + length])
    rec["hash"] = "00" * 32
    payload = json.dumps(rec, separators=(",", ":")).encode()
    import zlib

    new = struct.pack(">II", len(payload), zlib.crc32(payload)) + payload + data[8 + length:]
    log.write_bytes(new)
    with pytest.raises(JournalError, match="journal says"):
        JournaledChain(tmp_path / "chain")


def test_newer_format_and_missing_chain(tmp_path):
    with pytest.raises(JournalError, match=r"missing chain\.json"):
        JournaledChain(tmp_path / "nothing")
    _setup(tmp_path)
    meta = json.loads((tmp_path / "chain" / "chain.json").read_text())
    meta["format"] = 99
    (tmp_path / "chain" / "chain.json").write_text(json.dumps(meta))
    with pytest.raises(JournalError, match="newer than this proml-sim"):
        JournaledChain(tmp_path / "chain")


def test_submit_outside_lock_is_refused(tmp_path):
    keys, chain, c, mid = _setup(tmp_path)
    with pytest.raises(JournalError, match=r"inside `with chain\.locked"):
        c.fire(keys.signer(keys.addresses[2]), "train", mid, b"\x03" * 32)


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
