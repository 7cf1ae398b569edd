"""W3C PROV export, read back with the ``prov`` package."""

from __future__ import annotations

import json
from pathlib import Path

import prov
import pytest
from prov.model import (
    PROV,
    ProvActivity,
    ProvAgent,
    ProvAssociation,
    ProvAttribution,
    ProvDelegation,
    ProvDerivation,
    ProvDocument,
    ProvEntity,
    ProvGeneration,
    ProvMembership,
    ProvUsage,
)

from proml_sim.errors import NodeError
from proml_sim.node.bundle import load_bundle, write_bundle
from proml_sim.node.evidence import LiveSource
from proml_sim.node.lineage import Lineage, VersionKey
from proml_sim.node.prov import export_prov
from tests.unit.node.evidence_fixtures import World, cli, make_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("prov"))


@pytest.fixture(scope="module")
def source(world: World) -> LiveSource:
    return world.source()


@pytest.fixture(scope="module")
def doc(source: LiveSource) -> ProvDocument:
    return ProvDocument.deserialize(content=export_prov(source, "clf"), format="json")


def ident(rec: object, attr: str) -> str:
    """The local id a relation points to (``prov:entity``, ``prov:agent``...)."""
    return str(next(v for k, v in rec.attributes if str(k) == attr).localpart)  # type: ignore[attr-defined]


def vid(lin: Lineage, name: str, version: int) -> str:
    k: VersionKey = lin.key(name, version)
    return f"{k.lifecycle}_{k.id}_v{k.version}"


def records(doc: ProvDocument, cls: type) -> list[object]:
    return list(doc.get_records(cls))


def test_counts_of_entities_activities_agents(doc: ProvDocument) -> None:
    entities = records(doc, ProvEntity)
    versions = [e for e in entities if str(e.identifier.namespace.prefix) == "art"]  # type: ignore[attr-defined]
    files = [e for e in entities if str(e.identifier.namespace.prefix) == "file"]  # type: ignore[attr-defined]
    # clf v1-v3, iris v1-v2, wine v1; files: iris_raw, wine, iris_labelled, clf.pkl
    assert (len(versions), len(files)) == (6, 4)
    assert len(records(doc, ProvActivity)) == 6  # one per registration or transition
    agents = records(doc, ProvAgent)
    orgs = [a for a in agents if PROV["Organization"] in a.get_attribute("prov:type")]  # type: ignore[attr-defined]
    assert len(agents) == 10 and len(orgs) == 5  # alice lena bob vera vic + their domains
    assert len(records(doc, ProvDelegation)) == 5
    assert len(records(doc, ProvAttribution)) == 6
    assert len(records(doc, ProvGeneration)) == 6 + 4
    assert len(records(doc, ProvMembership)) == 4


def test_relations_of_the_training_and_verification(world: World, source: LiveSource,
                                                    doc: ProvDocument) -> None:
    lin = Lineage(source)
    clf2, clf3 = vid(lin, "clf", 2), vid(lin, "clf", 3)
    iris2, wine1 = vid(lin, "iris", 2), vid(lin, "wine", 1)
    train_tx = lin.graph.nodes[lin.key("clf", 2)]["tx"]
    verify_tx = lin.graph.nodes[lin.key("clf", 3)]["tx"]

    derived = {(ident(r, "prov:generatedEntity"), ident(r, "prov:usedEntity"))
               for r in records(doc, ProvDerivation)}
    assert {(clf2, iris2), (clf2, wine1), (clf3, clf2)} <= derived
    assert (clf2, vid(lin, "iris", 1)) not in derived  # trained on the labelled version
    revisions = [r for r in records(doc, ProvDerivation)
                 if PROV["Revision"] in r.get_attribute("prov:type")]  # type: ignore[attr-defined]
    assert len(revisions) == 3  # iris v1->v2, clf v1->v2, clf v2->v3

    used = {(ident(r, "prov:activity"), ident(r, "prov:entity")) for r in records(doc, ProvUsage)}
    assert {(train_tx, iris2), (train_tx, wine1)} <= used
    labelled = next(f.sha256 for f in lin.records[lin.key("iris", 2)].outputs)
    assert (train_tx, labelled) in used  # the input file, by digest

    assoc = {(ident(r, "prov:activity"), ident(r, "prov:agent")): r
             for r in records(doc, ProvAssociation)}
    for who in ("vera", "vic"):
        rel = assoc[(verify_tx, world[who].address)]
        assert {str(v) for v in rel.get_attribute("prov:role")} == {"proml:approver"}  # type: ignore[attr-defined]
    assert (train_tx, world["bob"].address) in assoc

    delegations = {(ident(r, "prov:delegate"), ident(r, "prov:responsible"))
                   for r in records(doc, ProvDelegation)}
    assert (world["lena"].address, "label-co") in delegations
    attributed = {(ident(r, "prov:entity"), ident(r, "prov:agent"))
                  for r in records(doc, ProvAttribution)}
    assert (iris2, world["lena"].address) in attributed

    act = next(a for a in records(doc, ProvActivity)
               if a.identifier.localpart == train_tx)  # type: ignore[attr-defined]
    assert act.get_startTime() == act.get_endTime()  # type: ignore[attr-defined]
    assert int(act.get_startTime().timestamp()) == lin.graph.nodes[lin.key("clf", 2)][  # type: ignore[attr-defined]
        "timestamp"]
    assert json.loads(next(iter(act.get_attribute("proml:params")))) == {"C": 1.0}  # type: ignore[attr-defined]
    assert {str(v) for v in act.get_attribute("proml:transition")} == {"train"}  # type: ignore[attr-defined]


def test_whole_chain_export_includes_every_artefact(source: LiveSource) -> None:
    doc = ProvDocument.deserialize(content=export_prov(source), format="json")
    versions = [e for e in records(doc, ProvEntity)
                if str(e.identifier.namespace.prefix) == "art"]  # type: ignore[attr-defined]
    assert len(versions) == 8  # + reg v1, v2
    assert len(records(doc, ProvActivity)) == 8


def test_prov_n_is_the_same_document(source: LiveSource) -> None:
    text = export_prov(source, "clf", fmt="prov-n")
    lines = text.splitlines()
    assert lines[0] == "document" and lines[-1] == "endDocument"
    doc = ProvDocument.deserialize(content=export_prov(source, "clf"), format="json")
    # the same records as the PROV-JSON export, statement by statement
    for keyword, cls in (("entity", ProvEntity), ("activity", ProvActivity),
                         ("agent", ProvAgent), ("used", ProvUsage),
                         ("wasGeneratedBy", ProvGeneration), ("wasDerivedFrom", ProvDerivation),
                         ("wasAssociatedWith", ProvAssociation),
                         ("wasAttributedTo", ProvAttribution),
                         ("actedOnBehalfOf", ProvDelegation), ("hadMember", ProvMembership)):
        n = sum(1 for line in lines if line.strip().startswith(keyword + "("))
        assert n == len(records(doc, cls)), keyword
    assert "prefix acct <urn:proml:" in text


def test_bad_format_and_unknown_artefact(source: LiveSource) -> None:
    with pytest.raises(NodeError, match="unknown PROV format 'rdf'"):
        export_prov(source, "clf", fmt="rdf")
    with pytest.raises(NodeError, match="no artefact named 'nope'"):
        export_prov(source, "nope")


def test_export_from_a_bundle_matches_the_node(source: LiveSource, tmp_path: Path) -> None:
    bundle = load_bundle(write_bundle(source, "clf", tmp_path / "clf.zip"))
    assert export_prov(bundle, "clf") == export_prov(source, "clf")


def test_cli_export_to_a_file_read_back_with_prov(world: World, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "iris.json"
    home = str(world["admin"].home)
    assert cli(["export", "--format", "prov-json", "-o", str(out), "iris", "--home", home]) == 0
    assert "wrote prov-json" in capsys.readouterr().out
    doc = prov.read(str(out), format="json")
    assert len(list(doc.get_records(ProvEntity))) == 2 + 2  # iris v1, v2 + two files
    assert cli(["export", "--format", "prov-n", "--home", home]) == 0
    assert capsys.readouterr().out.startswith("document")
