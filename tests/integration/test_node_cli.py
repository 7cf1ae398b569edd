"""The node as people use it (issue 16, items 3 and 5): homes that move and copy, replicas
added later, custom lifecycles, ``ls``/``whoami``/``history``, errors that say what is wrong and
what to do, outputs that honour the umask."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from proml_sim.cli import main
from proml_sim.errors import (
    DomainRoleNotAllowed,
    HomeError,
    NodeError,
    NotRoleAdmin,
    OutputError,
    RoleNotAllowed,
    TransitionNotAllowed,
    UnknownLifecycle,
)
from proml_sim.fsutil import atomic_write_bytes
from proml_sim.node import BlobStore, ProMLNode, sha256_file
from proml_sim.node import consortium as gov


@pytest.fixture
def world(tmp_path):
    """A consortium admin, a developer and two verifiers in two domains, one model trained."""
    chain = tmp_path / "chain"
    admin = ProMLNode.init(tmp_path / "admin", name="admin", domain="consortium",
                           new_chain=True, chain_dir=chain, seed="admin")
    dev = ProMLNode.init(tmp_path / "dev", name="dev", domain="dev-co", chain_dir=chain,
                         seed="dev")
    v1 = ProMLNode.init(tmp_path / "v1", name="v1", domain="lab-1", chain_dir=chain, seed="v1")
    v2 = ProMLNode.init(tmp_path / "v2", name="v2", domain="lab-2", chain_dir=chain, seed="v2")
    # the admin's domain founded the consortium (quorum 2): dev-co, lab-1, lab-2 join by vote
    gov.admit([admin], "Model", dev, ["operator", "developer"])
    gov.admit([admin, dev], "Model", v1, ["verifier"])
    gov.admit([admin, dev], "Model", v2, ["verifier"])
    dev.register("Model", "m1")
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"weights")
    dev.record("train", "m1", outputs=[weights])
    return tmp_path, admin, dev, v1, v2


def _json(capsys, argv):
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


# -- paths ------------------------------------------------------------------------------------
def test_copied_home_uses_its_own_chain_and_moved_home_works(tmp_path):
    home = tmp_path / "proj" / ".proml"
    node = ProMLNode.init(home, name="a", domain="org", new_chain=True, seed="a")
    cfg = json.loads((home / "node.json").read_text())
    assert cfg["chain"]["path"] == "chain" and cfg["chain"]["genesis"].startswith("0x")
    node.grant("Dataset", "dataset_admin", node.address, "org")
    head = node.backend.head().number
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "proj", copy)
    other = ProMLNode.open(copy / ".proml")
    (tmp_path / "f.csv").write_text("1\n")
    other.register("Dataset", "only-in-copy", [tmp_path / "f.csv"])
    assert ProMLNode.open(home).backend.head().number == head  # the original is untouched
    moved = tmp_path / "moved"
    shutil.move(str(tmp_path / "proj"), moved)
    assert ProMLNode.open(moved / ".proml").backend.head().number == head


def test_a_home_refuses_a_chain_that_is_not_its_own(tmp_path):
    home = tmp_path / "h"
    ProMLNode.init(home, name="a", domain="org", new_chain=True, seed="a")
    shutil.rmtree(home / "chain")
    ProMLNode.init(tmp_path / "h2", name="b", domain="org", new_chain=True, seed="b",
                   chain_dir=home / "chain")  # a different chain at the same place
    with pytest.raises(HomeError, match="is not the chain of node home"):
        ProMLNode.open(home)


def test_relative_replica_is_the_users_directory_stored_relative_to_the_home(tmp_path,
                                                                             monkeypatch):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    node = ProMLNode.init(tmp_path / "h", name="a", domain="org", new_chain=True, seed="a",
                          replicas=["rep"])
    cfg = json.loads((tmp_path / "h" / "node.json").read_text())
    assert cfg["replicas"] == [{"kind": "dir", "path": "../work/rep"}]
    node.store.put_bytes(b"blob")
    assert list((tmp_path / "work" / "rep" / "objects").rglob("*"))
    monkeypatch.chdir(tmp_path)  # opened from elsewhere: the same replica
    assert ProMLNode.open("h").replica_dirs() == [(tmp_path / "work" / "rep").resolve()]


def test_format_1_home_opens_and_is_rewritten_only_by_a_write(world):
    tmp, admin, dev, v1, v2 = world
    path = tmp / "dev" / "node.json"
    cfg = json.loads(path.read_text())
    old = {"format": 1, "name": cfg["name"], "domain": cfg["domain"],
           "address": cfg["address"], "replicas": [str(tmp / "v1" / "store")],
           "chain": {"kind": "journal", "path": str((tmp / "chain").resolve())},
           "contracts": cfg["contracts"]}
    path.write_text(json.dumps(old))
    node = ProMLNode.open(tmp / "dev")
    assert node.status("m1")["state"] == "trained" and node.ls()
    assert json.loads(path.read_text()) == old  # reads never write
    node.register("Model", "m2")
    new = json.loads(path.read_text())
    assert new["format"] == 2 and new["lifecycles"] == {"Dataset": "Dataset", "Model": "Model"}
    assert new["replicas"] == [{"kind": "dir", "path": str(tmp / "v1" / "store")}]
    assert new["chain"]["path"] == "../chain" and new["chain"]["genesis"].startswith("0x")


def test_a_copied_format_1_home_uses_its_own_chain(tmp_path):
    home = tmp_path / "orig"
    node = ProMLNode.init(home, name="a", domain="org", new_chain=True, seed="a")
    cfg = json.loads((home / "node.json").read_text())
    cfg.update(format=1, replicas=[], chain={"kind": "journal",
                                             "path": str((home / "chain").resolve())})
    del cfg["lifecycles"]
    (home / "node.json").write_text(json.dumps(cfg))
    shutil.copytree(home, tmp_path / "copy")
    copy = ProMLNode.open(tmp_path / "copy")
    copy.grant("Model", "operator", copy.address, "org")
    assert json.loads((tmp_path / "copy" / "node.json").read_text())["chain"]["path"] == "chain"
    assert ProMLNode.open(home).backend.head().number == node.backend.head().number


# -- replicas ----------------------------------------------------------------------------------
def test_replica_add_sync_list_remove(world, capsys):
    tmp, admin, dev, v1, v2 = world
    home = str(tmp / "dev")
    rep = tmp / "rep"
    held = sorted(dev.store.digests())
    assert main(["replica", "add", str(rep), "--home", home]) == 0
    assert main(["replica", "add", str(rep), "--home", home]) == 2  # already there
    capsys.readouterr()
    # a valid blob already in the replica is never overwritten; a corrupt one is repaired
    other = BlobStore(rep)
    good = other.path_of(held[0])
    good.parent.mkdir(parents=True)
    shutil.copyfile(dev.store.path_of(held[0]), good)
    stamp = good.stat().st_mtime_ns
    bad = other.path_of(held[1])
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"rot")
    code = main(["replica", "sync", "--home", home, "--json"])
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert code == 0
    assert out["replicas"][str(rep.resolve())] == {
        "copied": len(held) - 2, "present": 1, "repaired": 1, "skipped": 0}
    assert good.stat().st_mtime_ns == stamp
    assert sorted(other.digests()) == held and other.check(held[1]) is None
    # the replica's damaged copy is kept in its quarantine and named (it was overwritten)
    (kept,) = (rep / "quarantine").glob(f"*/blobs/{held[1]}")
    assert kept.read_bytes() == b"rot" and f"{held[1]} at {bad}" in captured.err
    code, out = _json(capsys, ["replica", "list", "--home", home])
    assert out == {"replicas": [{"kind": "dir", "path": str(rep.resolve())}]}
    assert main(["replica", "remove", str(rep), "--home", home]) == 0
    assert main(["replica", "remove", str(rep), "--home", home]) == 2
    assert ProMLNode.open(home).replica_dirs() == [] and rep.is_dir()  # nothing deleted


# -- custom lifecycles -------------------------------------------------------------------------
CUSTOM = '''
from proml_sim.dsl import Artefact, Role, State


class Paper(Artefact):
    author = Role()
    draft = State(initial=True, by=author)
    published = State(final=True)
    publish = draft.to(published, by=author)


class Notebook(Artefact):
    owner = Role()
    open_ = State(initial=True, by=owner)
    closed = State(final=True)
    close = open_.to(closed, by=owner)
'''


def test_custom_lifecycles_at_init_and_deployed_later(tmp_path, monkeypatch, capsys):
    (tmp_path / "mylc.py").write_text(textwrap.dedent(CUSTOM))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "mylc", raising=False)
    chain = tmp_path / "chain"
    a = str(tmp_path / "a")
    assert main(["init", "--home", a, "--name", "a", "--domain", "org", "--new-chain",
                 "--chain", str(chain), "--seed", "a", "--lifecycle", "Model",
                 "--lifecycle", "mylc:Paper"]) == 0
    node = ProMLNode.open(a)
    assert sorted(node.clients) == ["Model", "Paper"]
    assert main(["grant", "Paper", "author", node.address, "--domain", "org", "--home", a]) == 0
    assert main(["register", "p1", "--lifecycle", "Paper", "--home", a]) == 0
    assert main(["record", "publish", "p1", "--home", a]) == 0
    capsys.readouterr()
    code, out = _json(capsys, ["deploy", "mylc:Notebook", "--home", a])
    assert code == 0 and out["lifecycle"] == "Notebook" and out["spec"] == "mylc:Notebook"
    assert main(["deploy", "mylc:Notebook", "--home", a]) == 2  # already deployed
    assert main(["deploy", "mylc:Nope", "--home", a]) == 2
    assert main(["deploy", "nomodule_xyz:Thing", "--home", a]) == 2
    err = capsys.readouterr().err
    assert "no class 'Nope'" in err and "cannot import module 'nomodule_xyz'" in err
    joiner = ProMLNode.init(tmp_path / "b", name="b", domain="org2", chain_dir=chain, seed="b")
    assert sorted(joiner.clients) == ["Model", "Notebook", "Paper"]
    assert main(["deploy", "mylc:Later", "--home", a]) == 2
    (tmp_path / "mylc2.py").write_text(textwrap.dedent(CUSTOM).replace("Paper", "Essay"))
    assert main(["deploy", "mylc2:Essay", "--home", a]) == 0  # after b joined: b sees it too
    assert "Essay" in ProMLNode.open(tmp_path / "b").clients
    (tmp_path / "mylc2.py").unlink()
    monkeypatch.delitem(sys.modules, "mylc2")
    with pytest.raises(NodeError, match="deployed on this chain but this node cannot load it"):
        ProMLNode.open(tmp_path / "b").client("Essay")
    late = ProMLNode.init(tmp_path / "late", name="l", domain="o3", chain_dir=chain, seed="l")
    assert "Essay" not in late.clients and "Essay" in late.unavailable  # joined all the same
    capsys.readouterr()
    code, out = _json(capsys, ["ls", "--lifecycle", "Paper", "--home", str(tmp_path / "b")])
    assert [(r["name"], r["state"], r["version"]) for r in out] == [("p1", "published", 2)]
    with pytest.raises(UnknownLifecycle, match="not a lifecycle class"):
        ProMLNode.init(tmp_path / "c", name="c", domain="o", new_chain=True,
                       lifecycles=["json:dumps"])
    assert not (tmp_path / "c" / "node.json").exists()


def test_joining_with_a_contracts_file_keeps_a_lifecycle_of_your_own_in_view(
        tmp_path, monkeypatch, capsys):
    # a flat {name: address} file cannot say which class a lifecycle of one's own is: the
    # joiner used to leave its contract out of view (ls: nothing, exit 0); now it is refused,
    # and the founder's node.json (addresses and specs) joins with it in view
    (tmp_path / "mylc.py").write_text(textwrap.dedent(CUSTOM))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "mylc", raising=False)
    chain, a = tmp_path / "chain", str(tmp_path / "a")
    assert main(["init", "--home", a, "--name", "a", "--domain", "org", "--new-chain",
                 "--chain", str(chain), "--seed", "a", "--lifecycle", "mylc:Paper"]) == 0
    node = ProMLNode.open(a)
    assert main(["grant", "Paper", "author", node.address, "--domain", "org", "--home", a]) == 0
    assert main(["register", "p1", "--lifecycle", "Paper", "--home", a]) == 0
    flat = tmp_path / "contracts.json"
    flat.write_text(json.dumps(node.config["contracts"]))
    capsys.readouterr()
    b = str(tmp_path / "b")
    join = ["init", "--name", "b", "--domain", "org2", "--chain", str(chain), "--seed", "b"]
    assert main([*join, "--home", b, "--contracts", str(flat)]) == 2
    err = capsys.readouterr().err
    assert "names Paper without a lifecycle spec" in err and "node.json" in err
    assert not (tmp_path / "b" / "node.json").exists()
    assert main([*join, "--home", b, "--contracts", str(tmp_path / "a" / "node.json")]) == 0
    capsys.readouterr()
    code, out = _json(capsys, ["ls", "--home", b])
    assert code == 0 and [(r["name"], r["lifecycle"]) for r in out] == [("p1", "Paper")]


# -- ls, whoami, history -----------------------------------------------------------------------
def test_ls_whoami_and_history_with_time_block_tx_domains_approvers(world, capsys):
    tmp, admin, dev, v1, v2 = world
    (tmp / "eval.json").write_text('{"acc": 0.9}')
    v1.approve("verify", "m1", tmp / "eval.json")
    v2.approve("verify", "m1", tmp / "eval.json")
    code, rows = _json(capsys, ["ls", "--home", str(tmp / "v1")])
    assert code == 0
    assert [(r["name"], r["lifecycle"], r["state"], r["version"], r["registrant"])
            for r in rows] == [("m1", "Model", "verified", 3, dev.address)]
    code, me = _json(capsys, ["whoami", "--home", str(tmp / "v1")])
    assert me["roles"] == {"Dataset": [], "Model": ["verifier"]} and me["domain"] == "lab-1"
    assert me["head"] == v1.backend.head().number and me["address"] == v1.address
    code, hist = _json(capsys, ["history", "m1", "--home", str(tmp / "admin")])
    assert [h["step"] for h in hist] == ["register", "train", "verify"]
    verify = hist[-1]
    assert verify["actor"] == v2.address and verify["actor_domain"] == "lab-2"
    assert [(a["approver"], a["domain"]) for a in verify["approvers"]] == [
        (v1.address, "lab-1"), (v2.address, "lab-2")]
    for h in hist:
        for key in ("digest", "tx"):
            assert h[key].startswith("0x") and len(h[key]) == 66
        block = dev.backend.block(h["block"])
        assert h["timestamp"] == block.timestamp and h["time"].endswith("Z")
        assert block.tx_hashes and bytes.fromhex(h["tx"][2:]) in block.tx_hashes
    assert hist[0]["approvers"] is None and hist[0]["actor_domain"] == "dev-co"
    assert main(["history", "m1", "--home", str(tmp / "admin")]) == 0
    text = capsys.readouterr().out
    assert "approved by " + v1.address + " (lab-1)" in text and "block" in text
    code, lin = _json(capsys, ["lineage", "m1", "--home", str(tmp / "admin")])
    assert lin["artefact"]["digest"] == hist[-1]["digest"]  # one schema for all outputs
    assert lin["artefact"]["time"] == hist[-1]["time"]
    assert [a["approver"] for a in lin["artefact"]["approvers"]] == [
        a["approver"] for a in verify["approvers"]]


# -- errors that say what to do ----------------------------------------------------------------
def test_errors_name_the_state_and_the_missing_admin_role(world):
    tmp, admin, dev, v1, v2 = world
    with pytest.raises(TransitionNotAllowed, match="allowed only from verified; m1 is trained"):
        dev.record("accept", "m1")
    # the consortium default: a node enrols only its own domain's accounts, in the roles the
    # quorum allowed its domain; each refusal names the command that asks the quorum
    with pytest.raises(NodeError, match=r"governed by a consortium: this node enrols only "
                       r"accounts of its own domain 'dev-co'.*proml consortium join Model"):
        dev.grant("Model", "verifier", v1.address, "lab-1")
    with pytest.raises(DomainRoleNotAllowed, match=r"your domain may not hold that role.*"
                       r"proml consortium propose Model set_roles --domain dev-co"):
        dev.grant("Model", "verifier", dev.address, "dev-co")
    outsider = ProMLNode.init(tmp / "out", name="out", domain="out-co",
                              chain_dir=tmp / "chain", seed="out")
    with pytest.raises(NotRoleAdmin, match=r"domain 'out-co', which must be a member.*"
                       r"proml consortium join Model"):
        outsider.grant("Model", "auditor", outsider.address, "out-co")
    assert dev.whoami()["roles"]["Model"] == ["operator", "developer"]
    with pytest.raises(RoleNotAllowed, match="holds operator, developer"):
        dev.record("audit", "m1", outputs=[tmp / "w.bin"])
    with pytest.raises(NodeError, match="has no transition 'verfy'"):
        dev.record("verfy", "m1")
    ran = []
    with pytest.raises(NodeError, match="use `proml approve verify m1"), \
            v1.step("verify", artefact="m1"):  # refused before the work
        ran.append(1)
    assert ran == []


def test_record_on_an_approval_transition_is_refused(world, capsys):
    tmp, admin, dev, v1, v2 = world
    head = v1.backend.head().number
    assert main(["record", "verify", "m1", "--output", str(tmp / "w.bin"),
                 "--home", str(tmp / "v1")]) == 2
    assert "use `proml approve verify m1 --evidence FILE`" in capsys.readouterr().err
    assert v1.backend.head().number == head


def test_a_second_approval_on_other_evidence_is_explained(world):
    tmp, admin, dev, v1, v2 = world
    (tmp / "e1.json").write_text("1")
    (tmp / "e2.json").write_text("2")
    v1.approve("verify", "m1", tmp / "e1.json")
    head = v2.backend.head().number
    with pytest.raises(NodeError) as info:
        v2.approve("verify", "m1", tmp / "e2.json")
    msg = str(info.value)
    assert f"1 of 2 by {v1.address} (lab-1)" in msg and "would start a new tally" in msg
    assert "approve the same file" in msg and "--new-tally" in msg
    assert "a copy of which" not in msg  # v2 holds no copy of e1.json (no replicas here)
    e1 = sha256_file(tmp / "e1.json")[0]
    v2.store.put_file(tmp / "e1.json")  # as a replica of v1's store would hold it
    with pytest.raises(NodeError, match=f"a copy of which is at {v2.store.path_of(e1)}"):
        v2.approve("verify", "m1", tmp / "e2.json")
    assert v2.backend.head().number == head  # nothing sent
    res = v2.approve("verify", "m1", tmp / "e2.json", new_tally=True)
    assert not res.fired and res.approvals == 1  # a tally of its own, as explained
    res = v1.approve("verify", "m1", tmp / "e2.json")  # joins v2's tally: two domains
    assert res.fired and res.state == "verified"


def test_duplicate_name_unheld_revoke_and_eip55(world, capsys):
    tmp, admin, dev, v1, v2 = world
    with pytest.raises(NodeError, match=r"an artefact named 'm1' already exists .*lifecycle "
                       r"Model, registrant .*choose another name"):
        dev.register("Model", "m1")
    head = admin.backend.head().number
    with pytest.raises(NodeError, match=r"does not hold Model\.auditor; nothing to revoke"):
        admin.revoke("Model", "auditor", v1.address)
    assert admin.backend.head().number == head
    body = v1.address[2:]
    i = next(k for k, c in enumerate(body) if c.isalpha())
    wrong = "0x" + body[:i] + body[i].swapcase() + body[i + 1:]
    assert main(["grant", "Model", "auditor", wrong, "--domain", "x",
                 "--home", str(tmp / "admin")]) == 2
    assert "wrong EIP-55 checksum" in capsys.readouterr().err
    with pytest.raises(NodeError, match="wrong EIP-55 checksum"):
        admin.revoke("Model", "verifier", wrong)
    # lab-1 may hold auditor once a quorum allows it (set_roles); then its own node enrols
    pid = gov.propose(v1, "Model", "set_roles", "lab-1", None, ["verifier", "auditor"])
    gov.vote(admin, "Model", pid)
    gov.execute(v1, "Model", pid)
    assert main(["grant", "Model", "auditor", v1.address.lower(), "--domain", "lab-1",
                 "--home", str(tmp / "v1")]) == 0
    assert ProMLNode.open(tmp / "v1").whoami()["roles"]["Model"] == ["verifier", "auditor"]
    with pytest.raises(NodeError, match="not an address"):
        admin.grant("Model", "auditor", "0x123", "x")


# -- outputs -----------------------------------------------------------------------------------
def test_outputs_honour_the_umask_and_keys_stay_private(tmp_path):
    old = os.umask(0o027)
    try:
        node = ProMLNode.init(tmp_path / "h", name="a", domain="org", new_chain=True, seed="a")
        blob = node.store.put_bytes(b"data")
        assert node.store.path_of(blob.digest).stat().st_mode & 0o777 == 0o640
        assert (tmp_path / "h" / "node.json").stat().st_mode & 0o777 == 0o640
        assert (tmp_path / "h" / "keystore.json").stat().st_mode & 0o777 == 0o600
        out = node.store.export(blob.digest, tmp_path / "copy.bin")
        assert out.stat().st_mode & 0o777 == 0o640 and out.read_bytes() == b"data"
        os.umask(0o002)
        assert atomic_write_bytes(tmp_path / "x", b"1").stat().st_mode & 0o777 == 0o664
    finally:
        os.umask(old)


def test_output_into_a_missing_directory_is_an_input_error(world, capsys):
    tmp, admin, dev, v1, v2 = world
    missing = tmp / "nope" / "deeper"
    with pytest.raises(OutputError, match="does not exist; create it first"):
        atomic_write_bytes(missing / "f", b"1")
    digest = next(dev.store.digests())
    with pytest.raises(OutputError):
        dev.store.export(digest, missing / "f")
    with pytest.raises(OutputError, match="is a directory"):
        dev.store.export(digest, tmp)
    for argv in (["bundle", "m1", "-o", str(missing / "b.zip")],
                 ["export", "m1", "-o", str(missing / "p.json")],
                 ["lineage", "m1", "--png", str(missing / "l.png")]):
        assert main([*argv, "--home", str(tmp / "dev")]) == 2, argv
    assert not (tmp / "nope").exists()
    assert capsys.readouterr().err.count("does not exist") == 3
    assert Path(tmp / "dev" / "node.json").exists()


def test_a_home_whose_contract_is_another_definition_is_refused(tmp_path):
    """A home made when Model was single-admin records "Model" for a single-admin contract:
    opening it names the fingerprint mismatch and the fix instead of misreading the chain."""
    home = tmp_path / "old"
    ProMLNode.init(home, name="a", domain="org", new_chain=True, seed="a",
                   lifecycles=["SingleAdminModel"])
    cfg = json.loads((home / "node.json").read_text())
    cfg["contracts"] = {"Model": cfg["contracts"].pop("SingleAdminModel"), **cfg["contracts"]}
    cfg["lifecycles"] = {"Model": "Model"}
    (home / "node.json").write_text(json.dumps(cfg))
    with pytest.raises(HomeError, match=r"generated from another definition than 'Model'.*"
                       r"SingleAdminModel: start a new chain"):
        ProMLNode.open(home)


def test_a_lifecycle_too_large_to_deploy_is_refused_before_anything_is_created(
        tmp_path, monkeypatch, capsys):
    """EIP-170: a node deploys the registry layout; a lifecycle whose contract is over the
    code size limit is refused at init before the home or the chain exists, and by
    `proml deploy` before anything is deployed."""
    shutil.copy(Path(__file__).parents[1] / "unit" / "compiler" / "test_code_size.py",
                tmp_path / "biglc.py")
    with (tmp_path / "biglc.py").open("a") as f:
        f.write("\nLong6 = long_lifecycle(6)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "biglc", raising=False)
    home = tmp_path / "a"
    assert main(["init", "--home", str(home), "--name", "a", "--domain", "org", "--new-chain",
                 "--seed", "a", "--plain-key", "--lifecycle", "biglc:Long6"]) == 2
    err = capsys.readouterr().err
    assert "Long6's registry contract has" in err and "EIP-170" in err
    assert "fewer transitions" in err and "Traceback" not in err
    assert not home.exists()
    assert main(["init", "--home", str(home), "--name", "a", "--domain", "org", "--new-chain",
                 "--seed", "a", "--plain-key"]) == 0
    before = ProMLNode.open(home).backend.head().number
    assert main(["deploy", "biglc:Long6", "--home", str(home)]) == 2
    assert "EIP-170" in capsys.readouterr().err
    assert ProMLNode.open(home).backend.head().number == before


def test_a_contract_whose_code_is_not_its_lifecycles_is_refused(tmp_path, capsys):
    """The IR fingerprint is a constant the contract states: a founder who deploys the
    generated source plus a backdoor (here a function granting any role to anyone) states the
    same fingerprint.  A node now compares the code with the code it compiles from the
    lifecycle and refuses the contract (it was used, trusting the fingerprint)."""
    from proml_sim.chain.client import LifecycleClient
    from proml_sim.codegen import generate_vyper
    from proml_sim.compiler import compile_artefact, compile_source
    from proml_sim.lifecycles import SingleAdminModel

    home = tmp_path / "h"
    node = ProMLNode.init(home, name="a", domain="org", new_chain=True, seed="bd",
                          lifecycles=["SingleAdminModel"])
    honest = compile_artefact(SingleAdminModel)
    backdoor = ("\n\n@external\ndef grant_me(role: uint256):\n"
                "    self.roles[msg.sender] |= 1 << role\n")
    source = generate_vyper(honest.ir) + backdoor
    assert "roles: public(HashMap[address, uint256])" in source  # what the backdoor writes
    evil = dataclasses.replace(compile_source(source, "SingleAdminModel"), ir=honest.ir,
                               fingerprint=honest.fingerprint)
    with node.backend.locked():
        client = LifecycleClient.deploy(node.backend, evil, node.signer, automine=False)
        node.backend.produce_block(node.backend.head().timestamp + 1)
    assert client.fingerprint() == honest.ir.fingerprint()  # it states the honest rules
    node.backend.close()
    cfg = json.loads((home / "node.json").read_text())
    cfg["contracts"]["SingleAdminModel"] = client.address
    (home / "node.json").write_text(json.dumps(cfg))
    with pytest.raises(HomeError, match=r"SingleAdminModel contract at 0x\w+ is not the code "
                       r"generated and compiled from 'SingleAdminModel'"):
        ProMLNode.open(home)
    assert main(["doctor", "--json", "--home", str(home)]) == 1  # doctor names it too
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert any(p["kind"] == "code" and p["path"] == client.address for p in problems)
