"""The ProML node: capture for existing scripts, the store, and bad input (each case: a clear
error, non-zero exit through the CLI, nothing lost or half-written)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from proml_sim.errors import (
    BlobCorrupted,
    HomeError,
    NodeError,
    RoleNotAllowed,
    StoreError,
    UnknownName,
)
from proml_sim.node import BlobStore, ProMLNode, Record, sha256_file
from proml_sim.node import consortium as gov


@pytest.fixture
def world(tmp_path):
    chain = tmp_path / "chain"
    admin = ProMLNode.init(tmp_path / "admin", name="admin", domain="consortium",
                           new_chain=True, chain_dir=chain, seed="admin")
    data = ProMLNode.init(tmp_path / "data", name="data", domain="data-co", chain_dir=chain,
                          seed="data", replicas=[tmp_path / "dev" / "store"])
    dev = ProMLNode.init(tmp_path / "dev", name="dev", domain="dev-co", chain_dir=chain,
                         seed="dev", replicas=[tmp_path / "data" / "store"])
    # the admin's domain founded both consortiums; data-co and dev-co join and enrol themselves
    gov.admit([admin], "Dataset", data, ["dataset_admin"])
    gov.admit([admin], "Model", dev, ["operator", "developer"])
    raw = tmp_path / "raw.csv"
    raw.write_text("x,y\n1,0\n2,1\n")
    data.register("Dataset", "ds", [raw])
    dev.register("Model", "clf")
    return tmp_path, admin, data, dev


def test_step_context_manager_records_inputs_outputs_params_code(world):
    tmp, admin, data, dev = world
    out = tmp / "model.pkl"
    with dev.step("train", artefact="clf", inputs=["ds"], outputs=[out],
                  params={"C": 0.5}) as s:
        out.write_bytes(b"weights")  # the script's own work
        s.params["accuracy"] = 0.93
    assert s.result is not None and s.result.fired and dev.status("clf")["state"] == "trained"
    last = dev.history("clf")[-1]
    rec = dev.record_of(last.digest)
    assert isinstance(rec, Record) and rec.digest() == last.digest.hex()
    assert rec.params == {"C": 0.5, "accuracy": 0.93}
    assert rec.outputs[0].sha256 == sha256_file(out)[0]
    assert rec.inputs[0].lifecycle == "Dataset" and rec.inputs[0].version == 1
    assert rec.environment["python"] and rec.actor == dev.address and rec.domain == "dev-co"
    assert last.inputs == (data.resolve("ds").id,)  # lineage on chain


def test_failed_step_records_nothing(world):
    tmp, admin, data, dev = world
    before = dev.history("clf")
    head = dev.backend.head().number
    with pytest.raises(ZeroDivisionError), dev.step("train", artefact="clf",
                                                     outputs=[tmp / "never.pkl"]):
        1 / 0  # noqa: B018 - the script fails
    assert dev.history("clf") == before and dev.backend.head().number == head


def test_decorator_captures_parameters_and_source(world):
    tmp, admin, data, dev = world
    out = tmp / "m2.pkl"

    @dev.capture("train", artefact="clf", inputs=["ds"], outputs=[out])
    def train(lr: float = 0.1, epochs: int = 3) -> str:
        out.write_bytes(b"m2")
        return "done"

    assert train(lr=0.01, epochs=5) == "done"
    rec = dev.record_of(dev.history("clf")[-1].digest)
    assert rec.params == {"lr": 0.01, "epochs": 5}
    assert rec.code is not None and rec.code.name == Path(__file__).name


def test_nodes_in_separate_processes_share_the_chain(world):
    tmp, admin, data, dev = world
    reopened = ProMLNode.open(tmp / "dev")
    assert reopened.status("ds")["state"] == "collected"
    assert reopened.resolve("ds").id == data.resolve("ds").id


def test_store_verifies_reads_and_heals_from_replica(world, capsys):
    tmp, admin, data, dev = world
    digest = data.history("ds")[0].digest.hex()
    path = data.store.path_of(digest)
    path.write_bytes(b"tampered")
    # the replica (dev's store) has good bytes: the read heals the local copy; the damaged
    # one is kept in the home's quarantine and named (it was overwritten, unsaid)
    assert Record.from_bytes(data.store.get(digest)).name == "ds"
    assert sha256_file(path)[0] == digest
    kept = data.store.healed[digest]
    assert kept.read_bytes() == b"tampered" and kept.is_relative_to(tmp / "data" / "quarantine")
    err = capsys.readouterr().err
    assert f"blob {digest}" in err and "was corrupted" in err and str(kept) in err
    # with no good replica, corruption is an error naming the blob
    lonely = BlobStore(tmp / "lonely")
    blob = lonely.put_bytes(b"abc")
    lonely.path_of(blob.digest).write_bytes(b"abd")
    with pytest.raises(BlobCorrupted, match=blob.digest):
        lonely.get(blob.digest)


def test_hashing_streams_large_files(tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:
        for i in range(40):
            fh.write(bytes([i]) * (1 << 20))
    import hashlib

    digest, size = sha256_file(big)
    assert size == 40 << 20
    assert digest == hashlib.sha256(big.read_bytes()).hexdigest()
    blob = BlobStore(tmp_path / "s").put_file(big)
    assert blob.digest == digest


# -- bad input ------------------------------------------------------------------------------
def test_unknown_artefact_and_ambiguous_name(world):
    tmp, admin, data, dev = world
    with pytest.raises(UnknownName, match="no artefact named 'nope'"):
        dev.status("nope")
    dev.register("Model", "ds")  # same name, other registrant and lifecycle
    with pytest.raises(UnknownName, match="ambiguous"):
        dev.status("ds")
    assert dev.status(f"ds@{data.address}")["lifecycle"] == "Dataset"


def test_wrong_role_is_refused_before_sending(world):
    tmp, admin, data, dev = world
    head = data.backend.head().number
    with pytest.raises(RoleNotAllowed, match="needs role developer"):
        data.record("train", "clf", outputs=[tmp / "raw.csv"])
    assert data.backend.head().number == head  # nothing sent


def test_missing_file(world):
    tmp, admin, data, dev = world
    with pytest.raises(StoreError, match="does not exist"):
        data.register("Dataset", "other", [tmp / "missing.csv"])
    with pytest.raises(NodeError, match=r"outputs .* do not exist"), dev.step(
            "train", artefact="clf", outputs=[tmp / "not-written.pkl"]):
        pass


@pytest.mark.parametrize(("err", "fragment"), [(errno.ENOSPC, "is full"),
                                               (errno.EROFS, "not writable")])
def test_full_or_read_only_store_loses_nothing(world, monkeypatch, err, fragment):
    tmp, admin, data, dev = world
    before = data.history("ds")
    def files() -> list[str]:
        return sorted(p.name for p in (tmp / "data" / "store").rglob("*") if p.is_file())

    objects_before = files()
    real_replace = os.replace

    def failing_replace(src, dst, *a, **k):
        if "objects" in str(dst):
            raise OSError(err, os.strerror(err))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", failing_replace)
    (tmp / "new.csv").write_text("new")
    with pytest.raises(StoreError, match=fragment):
        data.register("Dataset", "new", [tmp / "new.csv"])
    monkeypatch.undo()
    assert data.history("ds") == before
    assert files() == objects_before  # no blob, no temporary file left behind


def test_home_errors(tmp_path, world):
    tmp, admin, data, dev = world
    with pytest.raises(HomeError, match="not a node home"):
        ProMLNode.open(tmp_path / "nowhere")
    cfg = json.loads((tmp / "dev" / "node.json").read_text())
    cfg["format"] = 99
    (tmp / "dev" / "node.json").write_text(json.dumps(cfg))
    with pytest.raises(HomeError, match="newer than this proml-sim"):
        ProMLNode.open(tmp / "dev")
    with pytest.raises(HomeError, match="already a node home"):
        ProMLNode.init(tmp / "data", name="x", domain="y", chain_dir=tmp / "chain")
    assert oct((tmp / "data" / "keystore.json").stat().st_mode & 0o777) == "0o600"


def test_node_bench_small(capsys):
    from proml_sim.cli import main

    assert main(["node-bench", "--size-mb", "4", "--steps", "2", "--status-sizes", "2", "12",
                 "--status-runs", "1", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["hashing"]["size_mb"] == 4 and res["hashing"]["sha256_file_mb_s"] > 0
    assert res["capture"]["overhead_ms_per_step"] > 0
    assert main(["node-bench", "--size-mb", "0"]) == 2


def test_freshness_check_before_acting(world, capsys, monkeypatch):
    from proml_sim.cli import main
    from proml_sim.node import service

    tmp, admin, data, dev = world
    rep = dev.freshness(max_age_s=3600, peers=[str(tmp / "chain")])
    assert rep.ok and rep.head_number == dev.backend.head().number
    head_ts = dev.backend.head().timestamp
    stale = dev.freshness(max_age_s=600, now=head_ts + 7200)  # two hours without a block
    assert not stale.ok and stale.problems
    assert main(["status", "ds", "--max-age", "3600", "--peer", str(tmp / "chain"),
                 "--home", str(tmp / "dev")]) == 0
    monkeypatch.setattr(service.time, "time", lambda: head_ts + 7200.0)
    assert main(["status", "--max-age", "600", "--home", str(tmp / "dev")]) == 1
    assert "STALE" in capsys.readouterr().out


def test_node_on_a_json_rpc_endpoint(tmp_path, anvil_url):
    """The same node and client code on a real Ethereum node (anvil) instead of the embedded
    chain: init with --rpc-url, deploy, register, capture a step, read it back, join."""
    admin = ProMLNode.init(tmp_path / "admin", name="admin", domain="consortium",
                           new_chain=True, rpc_url=anvil_url, seed="rpc-admin")
    chain = admin.config["chain"]
    assert (chain["kind"], chain["url"], chain["chain_id"]) == ("rpc", anvil_url, 1337)
    assert chain["genesis"] == "0x" + admin.backend.block(0).hash.hex()
    contracts = tmp_path / "contracts.json"
    contracts.write_text(json.dumps(admin.config["contracts"]))
    dev = ProMLNode.init(tmp_path / "dev", name="dev", domain="dev-co", rpc_url=anvil_url,
                         contracts=json.loads(contracts.read_text()), seed="rpc-dev")
    gov.admit([admin], "Model", dev, ["operator", "developer"])
    dev.register("Model", "rpc-model")
    out = tmp_path / "m.bin"
    with dev.step("train", artefact="rpc-model", outputs=[out]):
        out.write_bytes(b"weights")
    reopened = ProMLNode.open(tmp_path / "dev")
    st = reopened.status("rpc-model")
    assert st["state"] == "trained" and st["version"] == 2
    assert [h.step for h in reopened.history("rpc-model")] == ["register", "train"]
