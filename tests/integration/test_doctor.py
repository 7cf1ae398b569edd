"""``proml doctor``: finds damage in the chain, the state DB, the blobs and temporary files, and
``--repair`` restores them from copies without deleting anything."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from proml_sim.chain.blockstore import DB_NAME, LOG_NAME
from proml_sim.chain.journal import JournaledChain
from proml_sim.cli import main
from proml_sim.errors import JournalError
from proml_sim.node import ProMLNode
from proml_sim.node.doctor import check, repair


@pytest.fixture
def home(tmp_path) -> tuple[Path, ProMLNode, Path]:
    """A home with a chain of several blocks, a replica of its chain dir and of its store."""
    node = ProMLNode.init(tmp_path / "h", name="a", domain="d1", new_chain=True, seed="doc",
                          replicas=[tmp_path / "replica-store"])
    node.grant("Dataset", "dataset_admin", node.address, "d1")
    f = tmp_path / "data.csv"
    f.write_text("x\n1\n")
    node.register("Dataset", "ds1", [f])
    node.backend.close()
    replica = tmp_path / "replica-chain"
    shutil.copytree(tmp_path / "h" / "chain", replica)
    return tmp_path / "h", node, replica


def _doctor(capsys, *argv: str) -> tuple[int, dict]:
    code = main(["doctor", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_healthy_home(home, capsys):
    h, node, _ = home
    code, rep = _doctor(capsys, "--home", str(h))
    assert code == 0 and rep["healthy"] and rep["problems"] == []


def _flip_log_byte(h: Path) -> Path:
    """Flip one bit in the middle of the home's block log; its path."""
    log = h / "chain" / LOG_NAME
    data = bytearray(log.read_bytes())
    data[len(data) // 2] ^= 0x01
    log.write_bytes(bytes(data))
    return log


def test_flipped_log_byte_is_found_and_repaired_from_a_replica(home, capsys):
    h, node, replica = home
    log = _flip_log_byte(h)
    data = log.read_bytes()
    code, rep = _doctor(capsys, "--home", str(h))
    assert code == 1
    (p,) = rep["problems"]
    assert p["kind"] == "chain-log" and p["path"] == str(log) and "block " in p["what"]
    assert "--from" in p["fix"]
    with pytest.raises(JournalError, match="doctor --repair"):  # writes refused meanwhile
        ProMLNode.open(h).register("Dataset", "ds2", [])
    code, rep = _doctor(capsys, "--home", str(h), "--repair", "--from", str(replica))
    assert code == 0 and rep["healthy"] and rep["repaired"]
    kept = list((h / "chain").glob(f"{LOG_NAME}.damaged-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == data  # nothing deleted
    again = ProMLNode.open(h)
    again.register("Dataset", "ds2", [])  # writes work again
    assert again.status("ds1")["state"] == again.status("ds2")["state"]


def test_a_damaged_log_is_rebuilt_from_the_state_db_byte_for_byte(home, capsys):
    h, node, _ = home
    log = h / "chain" / LOG_NAME
    good = log.read_bytes()
    for damage in ("flip", "cut", "delete"):
        if damage == "flip":
            data = bytearray(good)
            data[-30] ^= 0x01
            log.write_bytes(bytes(data))
        elif damage == "cut":
            log.write_bytes(good[: len(good) // 2])
        else:
            log.unlink()
        code, rep = _doctor(capsys, "--home", str(h))
        assert code == 1 and rep["problems"][0]["kind"] == "chain-log"
        code, rep = _doctor(capsys, "--home", str(h), "--repair")
        assert code == 0 and "from the state DB" in rep["repaired"][0]
        assert log.read_bytes() == good
    assert len(list((h / "chain").glob(f"{LOG_NAME}.damaged-*"))) >= 1  # kept, not deleted


def test_log_and_db_both_damaged_need_a_replica(home, capsys):
    h, node, replica = home
    (h / "chain" / LOG_NAME).unlink()
    (h / "chain" / DB_NAME).write_bytes(b"x" * 4096)
    assert main(["doctor", "--home", str(h), "--repair"]) == 2
    assert "--from DIR" in capsys.readouterr().err
    code, rep = _doctor(capsys, "--home", str(h), "--repair", "--from", str(replica))
    assert code == 0 and rep["healthy"]
    assert ProMLNode.open(h).status("ds1")["state"]


def test_a_replica_of_another_chain_is_refused(home, tmp_path, capsys):
    h, node, _ = home
    other = JournaledChain.create(tmp_path / "other", genesis_timestamp=1_600_000_000)
    other.close()
    (h / "chain" / LOG_NAME).write_bytes(b"")
    (h / "chain" / DB_NAME).unlink()
    assert main(["doctor", "--home", str(h), "--repair", "--from", str(tmp_path / "other")]) == 2
    assert "no verifiable block" in capsys.readouterr().err


def test_a_lost_state_db_is_rebuilt_from_the_log(home, capsys):
    h, node, _ = home
    head = JournaledChain(h / "chain").head()
    db = h / "chain" / DB_NAME
    db.write_bytes(b"not a database" * 100)
    code, rep = _doctor(capsys, "--home", str(h))
    assert code == 1 and rep["problems"][0]["kind"] == "state-db"
    code, rep = _doctor(capsys, "--home", str(h), "--repair")
    assert code == 0, rep
    assert list((h / "chain").glob(f"{DB_NAME}.damaged-*"))  # the old DB kept aside
    assert JournaledChain(h / "chain").head() == head
    assert ProMLNode.open(h).status("ds1")["state"]


def test_a_state_db_missing_its_state_is_found_and_rebuilt(home, capsys):
    h, node, _ = home
    import sqlite3

    import rlp

    con = sqlite3.connect(h / "chain" / DB_NAME)
    head = con.execute("SELECT max(number) FROM blocks").fetchone()[0]
    (header,) = con.execute("SELECT header FROM blocks WHERE number = ?", (head,)).fetchone()
    root = rlp.decode(header)[3]
    assert con.execute("DELETE FROM kv WHERE key = ?", (root,)).rowcount == 1
    con.commit()
    con.close()
    code, rep = _doctor(capsys, "--home", str(h))
    assert code == 1
    (p,) = rep["problems"]
    assert p["kind"] == "state-db" and "of its kv table differ from a replay" in p["what"]
    code, rep = _doctor(capsys, "--home", str(h), "--repair")
    assert code == 0 and rep["healthy"]
    assert ProMLNode.open(h).status("ds1")["state"]


def test_damaged_blob_restored_from_replica_and_temp_files_quarantined(home, capsys):
    h, node, _ = home
    objects = h / "store" / "objects"
    blob = next(p for p in objects.rglob("*") if p.is_file())
    blob.write_bytes(b"tampered")
    stray = h / ".node.json.abc123.tmp"
    stray.write_text("{half")
    stray2 = objects / ".incoming-xyz"
    stray2.write_bytes(b"part")
    code, rep = _doctor(capsys, "--home", str(h))
    kinds = sorted(p["kind"] for p in rep["problems"])
    assert code == 1 and kinds == ["blob", "temp-file", "temp-file"]
    code, rep = _doctor(capsys, "--home", str(h), "--repair")
    assert code == 0 and rep["healthy"], rep
    digest = blob.parent.name + blob.name
    import hashlib

    assert hashlib.sha256(blob.read_bytes()).hexdigest() == digest
    quarantined = sorted(p.name for p in (h / "quarantine").rglob("*") if p.is_file())
    assert quarantined == sorted([digest, stray.name, stray2.name])


def test_text_output_names_each_problem(home, capsys):
    h, node, _ = home
    (h / "chain" / LOG_NAME).unlink()
    assert main(["doctor", "--home", str(h)]) == 1
    out = capsys.readouterr().out
    assert f"problem: {h / 'chain' / LOG_NAME}: the block log is missing; fix:" in out
    report = check(h)
    assert not report.healthy
    assert repair(h).healthy  # rebuilt from the state DB


def test_damaged_receipts_are_found(home, capsys):
    h, node, _ = home
    import sqlite3

    chain = JournaledChain(h / "chain")
    head = chain.head().number
    rlps = chain.block_receipt_rlps(head)
    assert rlps and all(r[0] == 2 for r in rlps)  # type-2 receipts, as the receipt trie holds
    chain.close()
    con = sqlite3.connect(h / "chain" / DB_NAME)
    con.execute("UPDATE receipts SET rlp = ? WHERE block = ?", (b"\x02\xc0", head))
    con.commit()
    con.close()
    code, rep = _doctor(capsys, "--home", str(h))
    what = rep["problems"][0]["what"]
    assert code == 1 and "of its receipts table differ from a replay" in what
    code, rep = _doctor(capsys, "--home", str(h), "--repair")
    assert code == 0 and rep["healthy"]


def _flip(con, table: str, column: str, where: str) -> None:
    (value,) = con.execute(f"SELECT {column} FROM {table} WHERE {where}").fetchone()
    if isinstance(value, bytes):
        data = bytearray(value)
        data[len(data) // 2] ^= 0x01
        value = bytes(data)
    else:
        value += 1
    con.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (value,))


@pytest.mark.parametrize(("table", "column", "named"), [
    ("logs", "data", "log 0 of block"),          # an event's data: history would show it
    ("logs", "topic1", "log 0 of block"),        # an index column: a query would miss it
    ("receipts", "output", "the receipt of tx"),
    ("receipts", "status", "the receipt of tx"),
    ("blocks", "timestamp", "block "),
    ("kv", "value", "state entry 0x"),
])
def test_every_table_of_the_state_db_is_checked_against_a_replay(home, capsys, table, column,
                                                                 named):
    # SQLite's own check cannot see a changed value; the replay of the log can
    import sqlite3

    h, node, _ = home
    con = sqlite3.connect(h / "chain" / DB_NAME)
    head = con.execute("SELECT max(number) FROM blocks").fetchone()[0]
    where = {"logs": f"block = {head} AND log_index = 0", "receipts": f"block = {head}",
             "blocks": f"number = {head}",
             "kv": "key = (SELECT key FROM kv WHERE length(key) = 32 ORDER BY key LIMIT 1)"}
    _flip(con, table, column, where[table])
    con.commit()
    con.close()
    code, rep = _doctor(capsys, "--home", str(h))
    assert code == 1
    (p,) = rep["problems"]
    assert p["kind"] == "state-db" and p["path"] == str(h / "chain" / DB_NAME)
    assert f"of its {table} table differ from a replay of the block log" in p["what"]
    assert named in p["what"] and "--repair" in p["fix"]
    code, rep = _doctor(capsys, "--home", str(h), "--repair")
    assert code == 0 and rep["healthy"], rep
    kept = [p for p in (h / "chain").glob(f"{DB_NAME}.damaged-*")
            if not p.name.endswith(("-wal", "-shm"))]
    assert len(kept) == 1  # kept aside, not deleted
    assert ProMLNode.open(h).history("ds1")


def test_an_event_that_no_longer_decodes_is_one_line_naming_the_log(home, capsys):
    import sqlite3

    h, node, _ = home
    con = sqlite3.connect(h / "chain" / DB_NAME)
    (block, data) = con.execute("SELECT block, data FROM logs ORDER BY block DESC, log_index "
                                "LIMIT 1").fetchone()
    data = bytearray(data)
    data[40] ^= 0x01  # inside the padding of a word: eth-abi refuses it
    con.execute("UPDATE logs SET data = ? WHERE block = ? AND log_index = 0",
                (bytes(data), block))
    con.commit()
    con.close()
    assert main(["history", "ds1", "--home", str(h)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"log 0 of block {block}" in err
    assert "proml doctor" in err and "Traceback" not in err


def test_damaged_deployment_files_are_named_and_written_again(home, tmp_path, capsys):
    h, node, _ = home
    chain = h / "chain"
    other = "0x" + "ab" * 20
    deployments = json.loads((chain / "deployments.json").read_text())
    # another node deployed a lifecycle this one does not hold
    (chain / "deployments.json").write_text(json.dumps({**deployments, "Other": other}))
    (chain / "lifecycles.json").write_text('{"Dataset": "Dataset", "Model": "Mod')  # torn
    code, rep = _doctor(capsys, "--home", str(h))
    assert code == 1
    (p,) = rep["problems"]
    assert p["kind"] == "deployments" and p["path"] == str(chain / "lifecycles.json")
    assert p["what"].startswith("cannot be read") and "--repair" in p["fix"]
    code, rep = _doctor(capsys, "--home", str(h), "--repair")
    assert code == 0 and rep["healthy"], rep
    kept = list(chain.glob("lifecycles.json.damaged-*"))
    assert len(kept) == 1 and kept[0].read_text().endswith('"Mod')  # nothing lost
    assert json.loads((chain / "deployments.json").read_text())["Other"] == other
    specs = json.loads((chain / "lifecycles.json").read_text())
    assert specs["Dataset"] == "Dataset" and specs["Model"] == "Model"
    # a joining node reads them again
    ProMLNode.init(tmp_path / "b", name="b", domain="d2", chain_dir=chain, seed="b")


def test_a_damaged_deployment_file_is_named_when_a_node_opens_not_skipped(home, capsys):
    h, node, _ = home
    path = h / "chain" / "lifecycles.json"
    path.write_text('{"Dataset": "Dataset", "Model": "Mod')  # torn
    before = path.read_bytes()
    assert main(["ls", "--home", str(h)]) == 0  # this node's own lifecycles still work
    out, err = capsys.readouterr()
    assert "ds1" in out
    (line,) = err.strip().splitlines()
    assert line.startswith("warning: cannot read") and str(path) in line
    assert "proml doctor --repair" in line and "Traceback" not in err
    assert path.read_bytes() == before  # named, not rewritten


def test_a_conflicting_deployment_is_named_not_overwritten(home, capsys):
    # both addresses hold a contract: which one is right is not guessed
    h, node, _ = home
    path = h / "chain" / "deployments.json"
    deployments = json.loads(path.read_text())
    deployments["Dataset"] = deployments["Model"]
    path.write_text(json.dumps(deployments))
    code, rep = _doctor(capsys, "--home", str(h))
    (p,) = rep["problems"]
    assert code == 1 and "has Dataset as 0x" in p["what"] and "node.json" in p["fix"]
    before = path.read_text()
    code, rep = _doctor(capsys, "--home", str(h), "--repair")
    assert code == 1 and path.read_text() == before


@pytest.mark.parametrize(("name", "entry", "bad", "why"), [
    ("deployments.json", "Dataset", "0x" + "cd" * 20, "where the chain holds no contract"),
    # one letter of a checksummed address changes case (a byte of the file): its checksum
    ("deployments.json", "Dataset", None, "EIP-55 checksum is broken"),
    ("lifecycles.json", "Dataset", "Datas!t", "a spec that does not load"),
])
def test_a_deployment_entry_only_node_json_can_have_right_is_mended(home, capsys, name, entry,
                                                                     bad, why):
    h, node, _ = home
    path = h / "chain" / name
    table = json.loads(path.read_text())
    good = table[entry]
    if bad is None:  # the first letter of the address changes case: its checksum breaks
        i = next(i for i, c in enumerate(good) if i > 1 and c.isalpha())
        bad = good[:i] + good[i].swapcase() + good[i + 1:]
    path.write_text(json.dumps({**table, entry: bad}))
    code, rep = _doctor(capsys, "--home", str(h))
    (p,) = rep["problems"]
    assert code == 1 and why in p["what"] and "--repair" in p["fix"], p
    code, rep = _doctor(capsys, "--home", str(h), "--repair")
    assert code == 0 and rep["healthy"], rep
    assert json.loads(path.read_text())[entry] == good
    (kept,) = [f for f in (h / "chain").iterdir() if f.name.startswith(f"{name}.damaged-")]
    assert bad in kept.read_text()


@pytest.mark.parametrize("damage", ["torn", "other key", "missing"])
def test_a_damaged_key_file_is_named_never_touched(tmp_path, capsys, damage):
    h = tmp_path / "k"
    node = ProMLNode.init(h, name="k", domain="d1", new_chain=True, seed="key")
    node.backend.close()
    ks = h / "keystore.json"
    assert ks.exists()
    if damage == "torn":
        ks.write_text(ks.read_text()[:60])
    elif damage == "other key":
        data = json.loads(ks.read_text())
        data["address"] = "ab" * 20
        ks.write_text(json.dumps(data))
    else:
        ks.unlink()
    before = ks.read_bytes() if ks.exists() else None
    code, rep = _doctor(capsys, "--home", str(h))
    assert code == 1
    (p,) = rep["problems"]
    assert p["kind"] == "key" and "backup" in p["fix"]
    assert {"torn": "not a keystore", "other key": "holds the key of",
            "missing": "holds no key"}[damage] in p["what"]
    code, rep = _doctor(capsys, "--home", str(h), "--repair")
    assert code == 1 and (ks.read_bytes() if ks.exists() else None) == before


@pytest.mark.parametrize("edit", [
    lambda a: a[:10] + ("c" if a[10] != "c" else "d") + a[11:],  # another address
    lambda a: a[:2] + a[2:].swapcase(),  # the same one, its checksum broken
])
def test_a_plain_keys_damaged_address_entry_is_named_never_touched(tmp_path, capsys, edit):
    # the private key still gives node.json's address, so nothing else noticed; doctor said
    # healthy (found flipping bytes of a home)
    h = tmp_path / "k"
    node = ProMLNode.init(h, name="k", domain="d1", new_chain=True, seed="key", plain_key=True)
    node.backend.close()
    kf = h / "keys.json"
    data = json.loads(kf.read_text())
    data["address"] = edit(data["address"])
    kf.write_text(json.dumps(data))
    before = kf.read_bytes()
    code, rep = _doctor(capsys, "--home", str(h))
    (p,) = rep["problems"]
    assert code == 1 and p["kind"] == "key" and "the address entry is damaged" in p["what"]
    assert node.address in p["what"]
    code, rep = _doctor(capsys, "--home", str(h), "--repair")
    assert code == 1 and kf.read_bytes() == before


def test_a_damaged_record_blob_does_not_stop_the_listing(tmp_path, capsys):
    # the name comes from the registration's default locator (checked against its salt);
    # verify names the damaged blob, doctor too
    h = tmp_path / "solo"  # no replica to heal the blob from
    node = ProMLNode.init(h, name="a", domain="d1", new_chain=True, seed="solo")
    node.grant("Dataset", "dataset_admin", node.address, "d1")
    (tmp_path / "data.csv").write_text("x\n1\n")
    node.register("Dataset", "ds1", [tmp_path / "data.csv"])
    node.backend.close()
    rec = ProMLNode.open(h).history("ds1")[0].digest.hex()
    blob = h / "store" / "objects" / rec[:2] / rec[2:]
    blob.write_bytes(b"garbled")
    assert main(["ls", "--home", str(h), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["ds1"]
    assert main(["verify", "ds1", "--home", str(h)]) == 1
    assert rec in capsys.readouterr().out
    code, rep = _doctor(capsys, "--home", str(h))
    assert code == 1 and rep["problems"][0]["kind"] == "blob"


def test_no_scratch_space_for_the_replay_is_one_line_naming_tmpdir(home, capsys, monkeypatch):
    import errno

    import proml_sim.chain.journal as journal

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal, "replay_into", full)
    h, node, _ = home
    assert main(["doctor", "--home", str(h)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "TMPDIR" in err and "No space left" in err


def _edit_config(h: Path, edit) -> dict:
    path = h / "node.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    return config


@pytest.mark.parametrize(("edit", "entry"), [
    # each once opened as "no artefacts on this chain yet", a crash, or refused while doctor
    # said healthy
    (lambda c: c["contracts"].update(Dataset=c["contracts"]["Dataset"][:5] + "#"
                                     + c["contracts"]["Dataset"][6:]), "contracts.Dataset"),
    (lambda c: c["lifecycles"].update(Datqset=c["lifecycles"].pop("Dataset")),
     "lifecycles.Datqset"),
    (lambda c: c.pop("replicas"), "replicas"),
    (lambda c: c.update(chain=5), "chain"),
    (lambda c: c.update(replicas=[{"kind": "dir", "path": 3}]), "replicas[0]"),
    (lambda c: c.update(address=c["address"][:-1] + ("A" if c["address"][-1] != "A" else "B")),
     "address"),
])
def test_a_malformed_node_json_is_named_by_doctor_and_every_command(home, capsys, edit, entry):
    h, node, _ = home
    _edit_config(h, edit)
    code, rep = _doctor(capsys, "--home", str(h))
    assert code == 1
    (p,) = [p for p in rep["problems"] if p["kind"] == "config"]
    assert p["path"] == str(h / "node.json") and f"its entry {entry!r} is missing or wrong" in (
        p["what"])
    # named once: a malformed address is not also sent to the chain for its code
    assert not any("code at" in q["what"] for q in rep["problems"])
    assert main(["ls", "--home", str(h)]) == 2
    assert f"its entry {entry!r} is missing or wrong" in capsys.readouterr().err
    # --repair leaves node.json as it found it (nothing rewritten) and says it is still bad
    before = (h / "node.json").read_bytes()
    code, rep = _doctor(capsys, "--home", str(h), "--repair")
    assert code == 1 and (h / "node.json").read_bytes() == before


def test_a_contract_address_without_code_is_refused_not_listed_empty(home, capsys):
    h, node, _ = home
    # a valid address, but not the contract's (one hex digit changed, all lower case)
    _edit_config(h, lambda c: c["contracts"].update(
        Dataset="0x" + format(int(c["contracts"]["Dataset"], 16) ^ 1, "040x")))
    assert main(["ls", "--home", str(h)]) == 2
    err = capsys.readouterr().err
    assert "records Dataset at 0x" in err and "holds no contract; fix contracts.Dataset" in err
    code, rep = _doctor(capsys, "--home", str(h))
    assert code == 1 and any(p["kind"] == "deployments" for p in rep["problems"])


def test_a_contract_address_without_code_agreed_by_every_record_is_named_by_doctor(home, capsys):
    """node.json and the chain directory's deployments.json both record an address with no
    code: every command refuses the home, so doctor (reading the state DB only) names it."""
    h, node, _ = home
    wrong = "0x" + "11" * 20
    config = _edit_config(h, lambda c: c["contracts"].update(Dataset=wrong))
    deployments = h / "chain" / "deployments.json"
    table = json.loads(deployments.read_text())
    table["Dataset"] = wrong
    deployments.write_text(json.dumps(table))
    assert main(["ls", "--home", str(h)]) == 2
    assert "holds no contract; fix contracts.Dataset" in capsys.readouterr().err

    def files() -> dict[Path, bytes]:  # SQLite's shared-memory index (-shm) holds no data
        return {p: p.read_bytes() for p in (h / "chain").iterdir()
                if p.is_file() and not p.name.endswith("-shm")}

    before = files()
    code, rep = _doctor(capsys, "--home", str(h))
    (p,) = rep["problems"]
    assert code == 1 and p["kind"] == "deployments" and p["path"] == str(h / "chain")
    assert f"holds no code at Dataset's address {wrong}" in p["what"]
    assert "fix contracts.Dataset in node.json" in p["fix"]
    # only Dataset is named (the home's other contracts hold code); doctor wrote nothing in
    # the chain directory
    assert len(config["contracts"]) > 1
    assert files() == before


def test_a_node_json_recording_another_genesis_is_named(home, capsys):
    h, node, _ = home
    config = _edit_config(h, lambda c: c["chain"].update(genesis="0x" + "ab" * 32))
    assert main(["ls", "--home", str(h)]) == 2
    assert "0x" + "ab" * 32 in capsys.readouterr().err  # in full: a prefix hid the difference
    code, rep = _doctor(capsys, "--home", str(h))
    (p,) = rep["problems"]
    assert code == 1 and p["kind"] == "chain" and p["path"] == str(h / "node.json")
    assert "chain.genesis" in p["what"] and "set chain.genesis to '0x" in p["fix"]
    assert config["chain"]["genesis"] not in p["fix"]


def test_an_unreadable_node_json_is_damage_found_and_the_chain_still_checked(home, capsys):
    h, node, _ = home
    (h / "node.json").write_bytes((h / "node.json").read_bytes()[:40])
    _flip_log_byte(h)
    code, rep = _doctor(capsys, "--home", str(h))
    assert code == 1
    assert {p["kind"] for p in rep["problems"]} == {"config", "chain-log"}
    assert any(n.startswith("node.json unreadable: checked the chain at") for n in rep["notes"])
    # --repair mends what check found in that chain; node.json stays as it is, still named
    before = (h / "node.json").read_bytes()
    code, rep = _doctor(capsys, "--home", str(h), "--repair")
    assert code == 1 and rep["repaired"] and (h / "node.json").read_bytes() == before
    assert {p["kind"] for p in rep["problems"]} == {"config"}


def test_a_damaged_contract_code_entry_does_not_stop_reads_of_the_others(home, capsys):
    # opening checks each recorded contract holds code; code the state DB cannot give back
    # intact (the Anchor's, unused by `ls`) is named by doctor, not held against every read
    import sqlite3

    from eth_utils import keccak

    h, node, _ = home
    anchor = json.loads((h / "node.json").read_text())["contracts"]["Anchor"]
    key = keccak(ProMLNode.open(h).backend.code(anchor))
    con = sqlite3.connect(h / "chain" / DB_NAME)
    (value,) = con.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
    damaged = bytearray(value)
    damaged[len(damaged) // 2] ^= 0x08
    assert con.execute("UPDATE kv SET value = ? WHERE key = ?",
                       (bytes(damaged), key)).rowcount == 1
    con.commit()
    con.close()
    assert main(["ls", "--home", str(h)]) == 0
    assert "ds1" in capsys.readouterr().out
    code, rep = _doctor(capsys, "--home", str(h))
    assert code == 1 and {p["kind"] for p in rep["problems"]} == {"state-db"}


def _edit_chain_json(h: Path, edit) -> tuple[Path, bytes, bytes, bytes]:
    """Apply ``edit`` to the text of the home's chain.json; (its path, the log's, the DB's and
    chain.json's bytes before)."""
    meta = h / "chain" / "chain.json"
    log, db = (h / "chain" / LOG_NAME).read_bytes(), (h / "chain" / DB_NAME).read_bytes()
    text = meta.read_text()
    meta.write_text(edit(text))
    assert meta.read_text() != text
    return meta, log, db, text.encode()


@pytest.mark.parametrize(("edit", "entry"), [
    # a non-hex character: every command and doctor ended in an internal error (exit 70)
    (lambda t: re.sub(r'("genesis_hash": ")..', r"\1zz", t), "genesis_hash"),
    # a hex digit changed: the log and the state DB were called another chain's
    (lambda t: re.sub(r'("genesis_hash": ").', lambda m: m[1] + ("1" if t[t.index(
        '"genesis_hash": "') + 17] != "1" else "2"), t), "genesis_hash"),
    # the chain id: the replay failed and --repair set the (sound) log and DB aside
    (lambda t: t.replace('"chain_id": 1337', '"chain_id": 1338'), "chain_id"),
])
def test_a_damaged_chain_json_entry_the_state_db_vouches_for_is_mended(home, capsys, edit,
                                                                       entry):
    h, _, _ = home
    meta, log, db, before = _edit_chain_json(h, edit)
    assert main(["ls", "--home", str(h)]) in (0, 2)  # named or served; never a crash
    assert "internal error" not in capsys.readouterr().err
    code, rep = _doctor(capsys, "--home", str(h))
    assert code == 1 and [(p["kind"], p["path"]) for p in rep["problems"]] == [
        ("chain-json", str(meta))]
    assert f"its entry '{entry}'" in rep["problems"][0]["what"]
    code, rep = _doctor(capsys, "--home", str(h), "--repair")
    assert code == 0 and rep["healthy"], rep
    assert meta.read_bytes() == before or json.loads(meta.read_text()) == json.loads(before)
    assert (h / "chain" / LOG_NAME).read_bytes() == log  # the log untouched, nothing set aside
    assert [p.name for p in (h / "chain").iterdir() if "damaged" in p.name] == [
        next(p.name for p in (h / "chain").iterdir() if p.name.startswith("chain.json.dam"))]
    assert main(["ls", "--home", str(h)]) == 0


def test_a_damaged_genesis_parameter_is_named_and_nothing_else_is_touched(home, capsys):
    # the parameters no longer give the recorded genesis: which entry is wrong cannot be told,
    # so doctor names chain.json (not the log and DB, which --repair then set aside)
    h, _, _ = home
    meta, log, db, _ = _edit_chain_json(h, lambda t: t.replace('"gas_limit": 30000000',
                                                               '"gas_limit": 30000001'))
    code, rep = _doctor(capsys, "--home", str(h))
    (p,) = rep["problems"]
    assert code == 1 and p["kind"] == "chain" and p["path"] == str(meta)
    assert "genesis parameters" in p["what"] and "replica" in p["fix"]
    code, rep = _doctor(capsys, "--home", str(h), "--repair")
    assert code == 1 and rep["repaired"] == []
    assert (h / "chain" / LOG_NAME).read_bytes() == log
    assert not [p for p in (h / "chain").iterdir() if "damaged" in p.name]


@pytest.mark.parametrize("case", ["lock is a directory", "objects is a file",
                                  "node.json is a directory"])
def test_a_home_file_of_the_wrong_kind_is_damage_named(home, capsys, case):
    # doctor said healthy while every write was refused (a lock that is a directory) or no
    # blob could be read (a store whose objects is a file); a node.json that is a directory
    # was "no home" (exit 2), not damage found
    h, _, _ = home
    path, kind = {"lock is a directory": (h / "chain" / "lock", "chain-lock"),
                  "objects is a file": (h / "store" / "objects", "store"),
                  "node.json is a directory": (h / "node.json", "config")}[case]
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    path.write_text("x") if case == "objects is a file" else path.mkdir()
    code, rep = _doctor(capsys, "--home", str(h))
    assert code == 1 and (kind, str(path)) in [(p["kind"], p["path"]) for p in rep["problems"]]
    code, rep = _doctor(capsys, "--home", str(h), "--repair")
    assert code == 1 and path.exists()  # named, and left for a person to move aside


def _hex_flip(text: str) -> str:
    """``text`` (hex) with its first digit changed to another hex digit."""
    return ("1" if text[0] != "1" else "2") + text[1:]


@pytest.mark.parametrize("field, why", [
    ("ciphertext", "MAC mismatch"), ("salt", "MAC mismatch"), ("mac", "MAC mismatch"),
    ("iv", "opens to the key of"), ("cipher", "its cipher is"),
])
def test_a_keystore_damaged_where_only_its_passphrase_shows_is_named(tmp_path, capsys,
                                                                       monkeypatch, field, why):
    # a hex digit of the ciphertext, salt, MAC or iv changed (or the cipher's name): the
    # keystore's shape is intact, so doctor said healthy while the node's only key was lost;
    # with the passphrase given it unlocks the key and says so, without one a note says what
    # was not checked
    h = tmp_path / "k"
    node = ProMLNode.init(h, name="k", domain="d1", new_chain=True, seed="key")
    node.backend.close()
    ks = h / "keystore.json"
    code, rep = _doctor(capsys, "--home", str(h))
    assert code == 0 and rep["healthy"] and not any("without unlocking" in n
                                                    for n in rep["notes"])
    data = json.loads(ks.read_text())
    crypto = data["crypto"]
    if field == "cipher":
        crypto["cipher"] = "aes-128-ctx"
    elif field in ("salt",):
        crypto["kdfparams"]["salt"] = _hex_flip(crypto["kdfparams"]["salt"])
    elif field == "iv":
        crypto["cipherparams"]["iv"] = _hex_flip(crypto["cipherparams"]["iv"])
    else:
        crypto[field] = _hex_flip(crypto[field])
    ks.write_text(json.dumps(data))
    before = ks.read_bytes()
    code, rep = _doctor(capsys, "--home", str(h))
    (p,) = rep["problems"]
    assert code == 1 and p["kind"] == "key" and why in p["what"] and "backup" in p["fix"], p
    code, rep = _doctor(capsys, "--home", str(h), "--repair")
    assert code == 1 and ks.read_bytes() == before
    if field != "cipher":  # no passphrase: the shape is all that can be seen, and it is said
        monkeypatch.delenv("PROML_PASSPHRASE")
        code, rep = _doctor(capsys, "--home", str(h))
        assert code == 0 and any("without unlocking it" in n for n in rep["notes"]), rep
        pf = tmp_path / "pass"
        pf.write_text("proml-test-session\n")
        code, rep = _doctor(capsys, "--home", str(h), "--passphrase-file", str(pf))
        assert code == 1 and why in rep["problems"][0]["what"]


def test_retired_keys_are_checked(tmp_path, capsys):
    # `proml key rotate` keeps the old key in keys-retired/, the only copy of a key that may
    # still hold a domain-admin seat; doctor did not look there
    from proml_sim.node.keys import encrypt_key

    h = tmp_path / "k"
    node = ProMLNode.init(h, name="k", domain="d1", new_chain=True, seed="key")
    node.backend.close()
    assert main(["key", "rotate", "--home", str(h)]) == 0
    capsys.readouterr()
    (old,) = (h / "keys-retired").iterdir()
    good = old.read_bytes()
    code, rep = _doctor(capsys, "--home", str(h))
    assert code == 0 and rep["healthy"], rep
    # written with an earlier passphrase: not damage, a note
    from proml_sim.node.keys import decrypt_keystore

    key = decrypt_keystore(json.loads(good), "proml-test-session", old)
    old.write_text(json.dumps(encrypt_key(key, "an earlier one", n=2**4)))
    code, rep = _doctor(capsys, "--home", str(h))
    assert code == 0 and any(str(old) in n and "earlier" in n for n in rep["notes"]), rep
    flipped = json.loads(good)
    flipped["crypto"]["cipherparams"]["iv"] = _hex_flip(flipped["crypto"]["cipherparams"]["iv"])
    for damage, why in ((good[:80], "not a keystore"),
                        (json.dumps(flipped).encode(), "opens to the key of")):
        old.write_bytes(damage)
        code, rep = _doctor(capsys, "--home", str(h))
        (p,) = rep["problems"]
        assert code == 1 and p["path"] == str(old) and why in p["what"], p
        assert "only copy of the old key" in p["fix"]
        code, rep = _doctor(capsys, "--home", str(h), "--repair")
        assert code == 1 and old.read_bytes() == damage  # never touched
    old.write_bytes(good)
    stray = h / "keys-retired" / "notes.txt"
    stray.write_text("mine")
    code, rep = _doctor(capsys, "--home", str(h))
    (p,) = rep["problems"]
    assert code == 1 and p["path"] == str(stray) and "not a retired key file" in p["what"]


def test_an_interrupted_key_rotation_is_named_with_the_command_that_finishes_it(tmp_path,
                                                                               capsys):
    # a rotation stopped after writing its new key, or after swapping the key files but before
    # node.json: doctor said healthy to the first, and to the second that a key file was
    # damaged ("restore it from your backup"); `proml key rotate` finishes either
    from proml_sim.node.keys import NEXT_KEYSTORE, encrypt_key

    h = tmp_path / "k"
    node = ProMLNode.init(h, name="k", domain="d1", new_chain=True, seed="key")
    node.backend.close()
    nxt = h / NEXT_KEYSTORE
    nxt.write_text(json.dumps(encrypt_key(b"\x07" * 32, "proml-test-session", n=2**4)))
    code, rep = _doctor(capsys, "--home", str(h))
    (p,) = rep["problems"]
    assert code == 1 and p["path"] == str(nxt) and "interrupted key rotation" in p["what"]
    assert "proml key rotate" in p["fix"]
    assert main(["key", "rotate", "--home", str(h)]) == 0
    capsys.readouterr()
    code, rep = _doctor(capsys, "--home", str(h))
    assert code == 0 and not nxt.exists(), rep
    # the swap done, node.json not yet pointed at the new key
    config = json.loads((h / "node.json").read_text())
    new = config["address"]
    (h / "node.json").write_text(json.dumps({**config, "address": node.address}))
    code, rep = _doctor(capsys, "--home", str(h))
    (p,) = rep["problems"]
    assert code == 1 and p["path"] == str(h / "node.json") and new in p["what"]
    assert "proml key rotate" in p["fix"], p
    assert main(["key", "rotate", "--home", str(h)]) == 0
    capsys.readouterr()
    assert json.loads((h / "node.json").read_text())["address"] == new
    code, rep = _doctor(capsys, "--home", str(h))
    assert code == 0, rep


def test_a_keys_retired_that_is_no_directory_is_named_and_a_rotation_says_what_it_did(
        tmp_path, capsys):
    # a rotation whose old key could not be retired said "nothing was changed" after its chain
    # steps had moved every role; doctor said healthy to the file that stops it
    from proml_sim.node.keys import NEXT_KEYSTORE, RETIRED

    h = tmp_path / "k"
    node = ProMLNode.init(h, name="k", domain="d1", new_chain=True, seed="key")
    node.backend.close()
    (h / RETIRED).write_text("mine")
    code, rep = _doctor(capsys, "--home", str(h))
    (p,) = rep["problems"]
    assert code == 1 and p["path"] == str(h / RETIRED) and "is not a directory" in p["what"]
    assert main(["key", "rotate", "--home", str(h)]) == 2
    err = capsys.readouterr().err
    assert "chain steps are done" in err and "nothing was changed" not in err, err
    assert (h / NEXT_KEYSTORE).exists() and (h / RETIRED).read_text() == "mine"
    (h / RETIRED).rename(tmp_path / "mine")
    assert main(["key", "rotate", "--home", str(h)]) == 0
    capsys.readouterr()
    code, rep = _doctor(capsys, "--home", str(h))
    assert code == 0, rep


def test_a_missing_key_that_sits_in_keys_retired_is_named_with_the_import_that_restores_it(
        tmp_path, capsys, monkeypatch):
    # an install (key import, key encrypt) that stopped between retiring the old file and
    # writing the new one leaves the key only in keys-retired/: doctor said "restore it from
    # your backup"
    from proml_sim.node.keys import KEYSTORE, retire

    h = tmp_path / "k"
    node = ProMLNode.init(h, name="k", domain="d1", new_chain=True, seed="key")
    node.backend.close()
    kept = retire(h, h / KEYSTORE, node.address)
    code, rep = _doctor(capsys, "--home", str(h))
    (p,) = rep["problems"]
    assert code == 1 and "holds no key" in p["what"]
    assert p["fix"].startswith(f"this node's key is in {kept}: `proml key import {kept}` puts "
                               "it back (its passphrase is the node's")
    monkeypatch.setenv("PROML_NEW_PASSPHRASE", "proml-test-session")
    assert main(["key", "import", str(kept), "--home", str(h)]) == 0
    capsys.readouterr()
    code, rep = _doctor(capsys, "--home", str(h))
    assert code == 0, rep


def test_a_block_a_stale_replica_lacks_is_named_after_a_restore(home, capsys):
    """Both chain files damaged, restored from a replica copied before the last write: the
    restore succeeds and the chain is whole, but the last registration is gone from it.  The
    sent log names the transaction and the command to run again (it was silently lost)."""
    h, node, replica = home
    node = ProMLNode.open(h)
    node.register("Dataset", "ds2", [])
    node.backend.close()
    _flip_log_byte(h)
    (h / "chain" / DB_NAME).unlink()
    code, rep = _doctor(capsys, "--home", str(h), "--repair", "--from", str(replica))
    assert code == 1 and rep["repaired"]
    (p,) = rep["problems"]
    assert p["kind"] == "sent" and "(Dataset.register, mined in block" in p["what"]
    assert "is no longer on the chain" in p["what"] and "run again" in p["fix"]
    assert p["path"].startswith(str(h / "sent.jsonl") + ":")
    code, rep = _doctor(capsys, "--home", str(h), "--repair")  # marks it handled, appended
    assert code == 0 and "marked the dropped transaction" in rep["repaired"][0]
    lines = (h / "sent.jsonl").read_text().splitlines()
    assert len(lines) == 4 and '"ack"' in lines[-1]  # grant, ds1, ds2, the mark


def test_a_sent_log_that_links_elsewhere_is_named_and_its_target_untouched(home, capsys):
    h, node, _replica = home
    victim = h.parent / "someone-elses.txt"
    victim.write_text("not a sent log\nat all\n")
    (h / "sent.jsonl").replace(h.parent / "sent.jsonl.kept")
    (h / "sent.jsonl").symlink_to(victim)
    for args in ((), ("--repair",)):
        code, rep = _doctor(capsys, "--home", str(h), *args)
        (p,) = rep["problems"]
        assert code == 1 and p["kind"] == "sent-file" and "is a symbolic link" in p["what"]
        assert "replace it with a regular file" in p["fix"]
    assert victim.read_text() == "not a sent log\nat all\n"
