"""Signed in-toto attestations of transitions (issue 11, item 6): read with the in-toto
libraries' models, signatures checked independently (OpenSSL through ``cryptography``), and
checked against the chain by ``proml verify --attestation``."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope

from proml_sim.chain.trie import keccak
from proml_sim.node.attest import (
    PREDICATE_TYPE,
    SLSA_PREDICATE_TYPE,
    model_dir_subject,
    sign_envelope,
)
from tests.unit.node.evidence_fixtures import World, cli, make_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("attest"))


@pytest.fixture(scope="module")
def exported(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("att") / "clf.intoto.jsonl"
    assert cli(["export", "clf", "--format", "in-toto", "-o", str(out),
                "--home", str(world["bob"].home)]) == 0
    return out


def envelopes(path: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln]


def statement_of(env: dict[str, Any]) -> dict[str, Any]:
    return json.loads(base64.b64decode(env["payload"]))  # type: ignore[no-any-return]


def independent_check(env: dict[str, Any], private_key: bytes) -> str:
    """Verify the DSSE signature with OpenSSL (not the libsecp256k1 that made it), the PAE
    from securesystemslib; returns the Ethereum address of the verifying key."""
    e = Envelope.from_dict(json.loads(json.dumps(env)))  # from_dict consumes its argument
    pae = e.pae()
    sig = base64.b64decode(env["signatures"][0]["sig"])
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"))
    pub = ec.derive_private_key(int.from_bytes(private_key, "big"), ec.SECP256K1()).public_key()
    pub.verify(der, pae, ec.ECDSA(hashes.SHA256()))  # raises InvalidSignature
    raw = pub.public_numbers()
    xy = raw.x.to_bytes(32, "big") + raw.y.to_bytes(32, "big")
    return "0x" + keccak(xy)[12:].hex()


def test_export_signs_the_nodes_transitions_as_statements(world: World, exported: Path) -> None:
    bob = world["bob"]
    envs = envelopes(exported)
    sts = [statement_of(e) for e in envs]
    types = [s["predicateType"] for s in sts]
    assert types.count(PREDICATE_TYPE) == 2  # clf v1 (register), clf v2 (train): bob's
    assert types.count(SLSA_PREDICATE_TYPE) == 1  # the training step
    key = bob.key.private_key()
    for env, st in zip(envs, sts, strict=True):
        assert independent_check(env, key) == bob.address.lower()
        assert env["signatures"][0]["keyid"] == bob.address
        pb = json_format.ParseDict(st, statement_pb2.Statement())
        Statement.copy_from_pb(pb).validate()  # the in-toto model accepts it
        if st["predicateType"] == SLSA_PREDICATE_TYPE:
            json_format.ParseDict(st["predicate"], provenance_pb2.Provenance())
    train = next(s for s in sts if s["predicateType"] == PREDICATE_TYPE
                 and s["predicate"]["step"] == "train" and s["predicate"]["artefact"]["name"]
                 == "clf")
    p = train["predicate"]
    assert p["actor"] == bob.address and p["domain"] == "dev-co"
    assert p["chainId"] == bob.backend.chain_id and p["contract"] == bob.clients["Model"].address
    assert p["irFingerprint"] == bob.clients["Model"].ir.fingerprint()
    assert [i["lifecycle"] for i in p["inputs"]] == ["Dataset", "Dataset"]
    clf_sha = bob.store.put_file(world.files["clf.pkl"]).digest
    assert train["subject"] == [{"name": "clf.pkl", "digest": {"sha256": clf_sha}}]
    slsa = next(s for s in sts if s["predicateType"] == SLSA_PREDICATE_TYPE
                and s["predicate"]["buildDefinition"]["externalParameters"]["artefact"]["name"]
                == "clf")
    deps = slsa["predicate"]["buildDefinition"]["resolvedDependencies"]
    roles = sorted(d["annotations"]["role"] for d in deps)
    assert roles == ["input-artefact", "input-artefact", "input-file"]


def test_verify_attestation_against_the_chain(world: World, exported: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    home = str(world["admin"].home)
    assert cli(["verify", "--attestation", str(exported), "--home", home]) == 0
    assert "PASSED: 3 attestation(s)" in capsys.readouterr().out
    from proml_sim.node.bundle import write_bundle

    bundle = write_bundle(world.source(), "clf", tmp_path / "clf.zip")
    assert cli(["verify", "--attestation", str(exported), "--bundle", str(bundle)]) == 0
    capsys.readouterr()

    env = envelopes(exported)[0]
    st = statement_of(env)
    # altered payload, old signature: the signature no longer recovers to the keyid
    st["subject"][0]["digest"]["sha256"] = "00" * 32
    bad = dict(env, payload=base64.b64encode(json.dumps(st).encode()).decode())
    path = tmp_path / "altered.jsonl"
    path.write_text(json.dumps(bad) + "\n" + json.dumps(envelopes(exported)[1]) + "\n")
    assert cli(["verify", "--attestation", str(path), "--home", home]) == 1
    assert "statement or signature was altered" in capsys.readouterr().out

    # re-signed by the actor but lying about the evidence: the chain disagrees
    st = statement_of(env)
    st["predicate"]["evidence"] = "0x" + "11" * 32
    path.write_text(json.dumps(sign_envelope(st, world["bob"].key.private_key())) + "\n")
    assert cli(["verify", "--attestation", str(path), "--home", home]) == 1
    assert 'evidence is "0x1111' in capsys.readouterr().out

    # a true statement signed by someone else than the chain's actor
    st = statement_of(env)
    path.write_text(json.dumps(sign_envelope(st, world["alice"].key.private_key())) + "\n")
    assert cli(["verify", "--attestation", str(path), "--home", home]) == 1
    assert "but the chain's actor is" in capsys.readouterr().out


def test_a_subject_whose_record_is_not_here_is_named_unchecked_not_forged(
        world: World, exported: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A node without the step's record blob (no replica, not its own step) cannot link the
    subject to the chain's digest: the check fails naming the missing record and the fix, and
    does not call the subject a forgery; with the blob reachable it passes."""
    from tests.unit.node.evidence_fixtures import _node

    outsider = _node(world.root, "outsider", "audit-co", archive=False)
    home = ["--home", str(outsider.home)]
    assert cli(["verify", "--attestation", str(exported), *home]) == 1
    out = capsys.readouterr().out
    assert "cannot be checked: the record of" in out and "missing from" in out
    assert "replica" in out and "is not an output" not in out
    # the name and inputs the records prove are unchecked here, not called forged
    assert "artefact.name is" not in out and "inputs is" not in out
    outsider.add_replica(world.archive)  # what `proml replica add DIR` does
    assert cli(["verify", "--attestation", str(exported), *home]) == 0
    assert "PASSED: 3 attestation(s)" in capsys.readouterr().out


def test_model_dir_is_named_as_model_signing_names_it(world: World, tmp_path: Path) -> None:
    """The subject ProML adds for a model directory is the one model-signing signs."""
    from cryptography.hazmat.primitives import serialization
    from model_signing import signing

    model = tmp_path / "clf-model"
    model.mkdir()
    (model / "clf.pkl").write_bytes(world.files["clf.pkl"].read_bytes())
    ours = model_dir_subject(model)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "key.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    sig = tmp_path / "model.sig"
    signing.Config().use_elliptic_key_signer(private_key=pem).sign(model, sig)
    bundle = json.loads(sig.read_text())
    theirs = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))["subject"][0]
    assert {"name": ours["name"], "digest": ours["digest"]} == theirs

    out = tmp_path / "with-model.jsonl"
    assert cli(["export", "clf", "--format", "in-toto", "-o", str(out), "--model-dir",
                str(model), "--home", str(world["bob"].home)]) == 0
    subjects = [s for e in envelopes(out) for s in statement_of(e)["subject"]]
    assert theirs in subjects
    assert cli(["verify", "--attestation", str(out), "--home", str(world["admin"].home)]) == 0


def test_steps_signed_by_a_key_this_node_retired_are_attested_with_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # after `proml key rotate` the node could attest none of its earlier steps: they were
    # "by other actors" ("their nodes sign them"), while the old key sat in keys-retired/
    from proml_sim.cli import main
    from proml_sim.node import ProMLNode
    from proml_sim.node.keys import decrypt_keystore, encrypt_key, retired_key_files

    h = tmp_path / "n"
    node = ProMLNode.init(h, name="n", domain="d1", new_chain=True, seed="att-rot")
    for role in ("operator", "developer"):
        node.grant("Model", role, node.address, "d1")
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights")
    node.register("Model", "m", [])
    node.record("train", "m", outputs=[f])
    old = node.address
    node.backend.close()
    assert main(["key", "rotate", "--home", str(h)]) == 0
    out = tmp_path / "m.intoto"
    assert main(["export", "m", "--format", "in-toto", "-o", str(out), "--home", str(h)]) == 0
    assert "skipped" not in capsys.readouterr().out
    signers = {statement_of(e)["predicate"]["actor"] for e in envelopes(out)}
    assert signers == {old}
    assert main(["verify", "--attestation", str(out), "--home", str(h)]) == 0
    assert "PASSED: 2 attestation(s)" in capsys.readouterr().out
    # a retired key written under an earlier passphrase is skipped, and said
    ((path, _),) = retired_key_files(h)
    key = decrypt_keystore(json.loads(path.read_text()), "proml-test-session", path)
    path.write_text(json.dumps(encrypt_key(key, "an earlier one", n=2**4)))
    assert main(["export", "m", "--format", "in-toto", "-o", str(out), "--home", str(h)]) == 2
    assert "this node's retired key, which does not open with the passphrase given" in \
        capsys.readouterr().err


def _set(st: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    obj = st
    for k in parents:
        obj = obj[k]
    obj[last] = value
    return st


@pytest.mark.parametrize(("path", "value", "said"), [
    # claims the chain can refute, each signed by the step's own actor: every field counts
    ("predicate.artefact.id", "0x" + "11" * 32, "artefact.id is \"0x1111"),
    ("predicate.artefact.name", "other", "artefact.name is \"other\""),
    ("predicate.artefact.version", True, "artefact.version is true, the chain's is"),
    ("predicate.block", 1.5, "block is 1.5, the chain's is"),
    ("predicate.domain", "org-z", "domain is \"org-z\""),
    ("predicate.approvers", [{"approver": "0x" + "22" * 20, "block": 1, "domain": "org-z",
                              "tx": "0x" + "33" * 32}], "approvers is [{\"approver\": \"0x2222"),
    ("predicate.inputs", [{"evidence": None, "id": "0x" + "44" * 32, "lifecycle": "Dataset",
                           "version": 9}], "inputs is [{\"evidence\": null"),
    ("predicate.extra", 1, "extra is not a field ProML states"),
    ("subject", [], "names no subject"),
    # shapes no exporter writes: one named problem each, not an internal error
    ("predicate", [], "the predicate is not a JSON object"),
    ("predicate.tx", ["0x"], "names no transaction"),
    ("predicate.lifecycle", {"a": 1}, "no ? transition in transaction"),
    ("subject", [5], "subject 5 is not {name, digest: {sha256}}"),
    ("subject", 5, "names no subject"),
    ("predicate.modelSigning", 5, "modelSigning is not a list"),
    ("predicate.modelSigning", [{"files": [[1, 2]]}], "a modelSigning entry is malformed"),
])
def test_every_claim_of_a_signed_statement_is_the_chains(
        world: World, exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        path: str, value: Any, said: str) -> None:
    """Before, only eight predicate fields were compared: a statement re-signed by the step's
    actor naming another artefact id, other approvers or inputs (a lineage lie) passed as
    "matches the chain", and a predicate or subject of another JSON type was exit 70."""
    st = next(statement_of(e) for e in envelopes(exported)
              if statement_of(e)["predicateType"] == PREDICATE_TYPE)
    actor = next(n for n in world.nodes.values() if n.address == st["predicate"]["actor"])
    f = tmp_path / "forged.jsonl"
    f.write_text(json.dumps(sign_envelope(_set(st, path, value),
                                          actor.key.private_key())) + "\n")
    assert cli(["verify", "--attestation", str(f), "--home", str(world["admin"].home)]) == 1
    out = capsys.readouterr().out
    assert said in out and "FAILED: 1 attestation(s)" in out
