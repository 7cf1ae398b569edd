"""Verification: an honest history passes; tampering, broken lineage and missing blobs fail
with a report naming the artefact, version, digest and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proml_sim.errors import NodeError, UnknownName
from proml_sim.node.lineage import Lineage
from proml_sim.node.records import InputRef
from proml_sim.node.verify import VerifyReport, verify
from tests.unit.node.evidence_fixtures import (
    World,
    cli,
    file_ref,
    make_record,
    make_world,
    record_with,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("verify"))


def failures(report: VerifyReport, name: str | None = None) -> list[str]:
    return [c.detail for c in report.failures if name is None or c.name == name]


def output_digest(world: World, owner: str, artefact: str, file: str, version: int) -> str:
    node = world[owner]
    rec = node.record_of(node.history(artefact)[version - 1].digest)
    assert rec is not None
    return next(f.sha256 for f in rec.outputs if f.name == file)


def test_an_honest_history_verifies(world: World) -> None:
    report = verify(world.source("vic"), "clf")
    assert report.ok, report.render()
    kinds = {c.name for c in report.checks}
    assert kinds == {"chain", "replay Dataset", "replay Model", "versions", "blob", "record",
                     "lineage"}
    # every blob of clf and its ancestors is checked: 4 outputs, 6 records/evidence files
    assert len([c for c in report.checks if c.name == "blob"]) == 10
    assert report.artefact["version"] == 3 and report.artefact["state"] == "verified"
    text = report.render()
    assert text.splitlines()[0].startswith("verify Model clf (version 3, verified) from node vic")
    assert text.splitlines()[-1] == f"PASSED: {len(report.checks)} checks, 0 failed"
    assert verify(world.source("alice"), "wine").ok


def test_cli_verify_exit_0_and_json(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["verify", "clf", "--home", str(world["bob"].home)]) == 0
    assert "PASSED" in capsys.readouterr().out
    assert cli(["verify", "iris", "--json", "--home", str(world["bob"].home)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["artefact"]["name"] == "iris"
    assert all(c["ok"] for c in data["checks"])


def test_pins_of_chain_id_and_contracts(world: World, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    source = world.source()
    good = verify(source, "iris", expect_chain_id=source.chain_id,
                  expect_contracts=dict(source.contracts))
    assert good.ok
    # unpinned, a contract is what the source claims: anyone can deploy a look-alike of their
    # own on the same chain, with domains named as they like; the report says how to pin it
    claims = [c.detail for c in verify(source, "iris").checks
              if c.name == "chain" and "contract" in c.detail]
    assert claims and all("as the source claims" in d and "--expect-contract" in d
                          for d in claims), claims
    assert all("(pinned)" in c.detail for c in good.checks
               if c.name == "chain" and "contract" in c.detail)
    bad = verify(source, "iris", expect_chain_id=1, expect_contracts={
        "Dataset": "0x" + "11" * 20})
    assert any("not the pinned 1" in d for d in failures(bad, "chain"))
    assert any("not the pinned 0x1111" in d for d in failures(bad, "chain"))
    home = str(world["admin"].home)
    assert cli(["verify", "iris", "--expect-chain-id", "5", "--home", home]) == 1
    capsys.readouterr()
    with pytest.raises(SystemExit):  # an argparse type: rejected before any work
        cli(["verify", "iris", "--expect-contract", "Dataset", "--home", home])
    assert "LIFECYCLE=0xADDRESS" in capsys.readouterr().err


def test_unknown_artefact_is_bad_input(world: World) -> None:
    with pytest.raises(UnknownName, match="no artefact named 'ghost'"):
        verify(world.source(), "ghost")
    with pytest.raises(NodeError, match="needs an ARTEFACT"):
        cli(["verify", "--home", str(world["admin"].home)])


def test_tampered_output_bytes_fail_and_are_named(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    w = make_world(tmp_path, verify_model=False)
    digest = output_digest(w, "bob", "clf", "clf.pkl", 2)
    copies = w.copies(digest)
    assert copies  # bob's store and the shared archive
    for p in copies:
        p.chmod(0o644)
        p.write_bytes(b"a swapped model")
    report = verify(w.source("vera"), "clf")
    assert not report.ok
    (detail,) = failures(report)
    assert f"output clf.pkl of Model clf v2: blob {digest}" in detail
    assert "corrupted" in detail and "restore it" in detail
    # the rest of the history still checks out: the failure is exactly the swapped file
    assert not failures(report, "replay Model") and not failures(report, "lineage")

    assert cli(["verify", "clf", "--home", str(w["vera"].home)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  blob: output clf.pkl of Model clf v2" in out
    assert out.splitlines()[-1].startswith("FAILED:") and out.rstrip().endswith("1 failed")


def test_a_missing_blob_fails_and_is_named(tmp_path: Path) -> None:
    w = make_world(tmp_path, verify_model=False)
    digest = output_digest(w, "lena", "iris", "iris_labelled.csv", 2)
    for p in w.copies(digest):
        p.unlink()
    report = verify(w.source("bob"), "clf")
    (detail,) = failures(report, "blob")
    assert "output iris_labelled.csv of Dataset iris v2" in detail
    assert "input file iris_labelled.csv of Model clf v2" in detail
    assert digest in detail and "missing from" in detail
    # the model's own blobs are fine; only the dataset's output is gone
    assert verify(w.source("bob"), "reg").ok


def test_an_input_file_that_step_n_did_not_produce_fails_t5(tmp_path: Path) -> None:
    w = make_world(tmp_path, verify_model=False)
    bob = w["bob"]
    other = tmp_path / "work" / "other.csv"
    other.write_text("x,y,label\n1,2,versicolor\n")  # not what the labeller produced
    bob.register("Model", "swap")
    bob.record("train", "swap", inputs=["iris", other], outputs=[w.files["clf.pkl"]])
    report = verify(w.source(), "swap")
    (detail,) = failures(report)
    assert detail.startswith("Model swap v2: input file other.csv (")
    assert "not an output of its input artefacts at the versions consumed" in detail
    assert "iris_labelled.csv of Dataset iris v2" in detail  # what it should have used
    assert "re-record the step" in detail
    # the honest model trained on the same dataset still passes
    assert verify(w.source(), "clf").ok


def test_a_record_naming_other_evidence_for_its_input_fails(tmp_path: Path) -> None:
    w = make_world(tmp_path, verify_model=False)
    bob = w["bob"]
    lin = Lineage(w.source())
    iris2 = lin.graph.nodes[lin.key("iris", 2)]
    forged = "ab" * 32
    bob.register("Model", "forged")
    rec = make_record(bob, "Model", "train", "forged",
                      inputs=[InputRef(iris2["id"], "Dataset", 2, forged)],
                      outputs=[file_ref(bob, w.files["clf.pkl"])])
    record_with(bob, "train", "forged", rec, inputs=["iris"])
    report = verify(w.source(), "forged")
    (detail,) = failures(report, "lineage")
    assert f"consumed Dataset iris v2 with evidence {forged}" in detail
    assert f"on-chain evidence is {iris2['evidence']}" in detail


def test_a_record_claiming_another_actor_fails(tmp_path: Path) -> None:
    w = make_world(tmp_path, verify_model=False)
    bob = w["bob"]
    bob.register("Model", "claimed")
    rec = make_record(bob, "Model", "train", "claimed")
    rec = type(rec)(**{**rec.__dict__, "actor": w["vera"].address})
    record_with(bob, "train", "claimed", rec)
    (detail,) = failures(verify(w.source(), "claimed"), "record")
    assert f"claims actor {w['vera'].address}" in detail
    assert f"signed by {bob.address}" in detail
