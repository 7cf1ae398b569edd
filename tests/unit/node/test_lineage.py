"""The lineage graph: ancestors, descendants, blast radius, state at a past time, pictures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proml_sim.errors import NodeError, UnknownName
from proml_sim.node.evidence import LiveSource
from proml_sim.node.lineage import Lineage, VersionKey, render_png
from proml_sim.node.records import InputRef
from tests.unit.node.evidence_fixtures import World, cli, make_record, make_world, record_with


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("lineage"))


@pytest.fixture(scope="module")
def lin(world: World) -> Lineage:
    return Lineage(world.source())


def names(lin: Lineage, keys: list[VersionKey]) -> list[str]:
    return [f"{lin.name(k)} v{k.version}" for k in keys]


def test_ancestors_of_a_model_are_its_datasets_at_the_versions_it_consumed(lin: Lineage) -> None:
    assert names(lin, lin.ancestors("clf")) == [
        "iris v1", "wine v1", "iris v2", "clf v1", "clf v2"]
    # the first model was trained before the labels existed: it used iris v1, not v2
    assert names(lin, lin.ancestors("reg")) == ["iris v1", "wine v1", "reg v1"]
    assert names(lin, lin.ancestors("clf", version=1)) == []


def test_descendants_and_blast_radius(lin: Lineage) -> None:
    assert names(lin, lin.descendants("wine")) == ["reg v2", "clf v2", "clf v3"]
    # "which models depend on dataset iris version 2?": only clf, both its later versions
    r2 = lin.blast_radius("iris", 2)
    assert r2.root.version == 2
    assert [(a["name"], a["versions"]) for a in r2.artefacts["Model"]] == [("clf", [2, 3])]
    assert "Dataset" not in r2.artefacts
    # version 1 also fed reg directly, and iris v2 was derived from it
    r1 = lin.blast_radius("iris", 1)
    assert sorted(a["name"] for a in r1.artefacts["Model"]) == ["clf", "reg"]
    assert [(a["name"], a["versions"]) for a in r1.artefacts["Dataset"]] == [("iris", [2])]
    assert lin.blast_radius("clf", 3).versions == []


def test_nodes_carry_actor_domain_digest_and_approvals(world: World, lin: Lineage) -> None:
    iris2 = lin.graph.nodes[lin.key("iris", 2)]
    assert (iris2["step"], iris2["state"], iris2["domain"]) == ("label", "labelled", "label-co")
    assert iris2["actor"] == world["lena"].address
    assert iris2["digest"] == world["lena"].history("iris")[-1].digest.hex()
    clf3 = lin.graph.nodes[lin.key("clf")]
    assert clf3["state"] == "verified"
    assert [(a["approver"], a["domain"]) for a in clf3["approvers"]] == [
        (world["vera"].address, "verify-a"), (world["vic"].address, "verify-b")]
    # review-less versions inherit the latest evidence; the verify step's evidence is eval.json
    assert clf3["evidence"] == clf3["digest"]


def test_edges_use_the_version_the_record_states_and_the_chain_agrees(lin: Lineage) -> None:
    key = lin.key("clf", 2)
    uses = {lin.name(u.input): u for u in lin.uses[key]}
    assert uses["iris"].chain_version == uses["iris"].record_version == 2
    assert uses["wine"].chain_version == uses["wine"].record_version == 1
    assert lin.graph.edges[lin.key("iris", 2), key]["kind"] == "input"
    assert lin.graph.edges[lin.key("clf", 1), key]["kind"] == "version"
    assert lin.conflicts == []


def test_state_at_a_past_time_replays_events_up_to_it(world: World, lin: Lineage) -> None:
    assert lin.state_at("iris", world.times["roles"]) is None
    then = lin.state_at("iris", world.times["iris v1"])
    assert then is not None and (then.state, then.version) == ("collected", 1)
    then = lin.state_at("iris", world.times["clf v2"])
    assert then is not None and (then.state, then.version) == ("labelled", 2)
    then = lin.state_at("clf", world.times["clf v2"])
    assert then is not None and (then.state, then.version) == ("trained", 2)
    now = lin.state_at("clf", world.times["clf v3"])
    assert now is not None and (now.state, now.version) == ("verified", 3)
    assert now.timestamp <= world.times["clf v3"]


def test_unknown_artefacts_and_versions_are_named(lin: Lineage) -> None:
    with pytest.raises(UnknownName, match="no artefact named 'nope'"):
        lin.ancestors("nope")
    with pytest.raises(UnknownName, match=r"has no version 9 \(versions 1..2\)"):
        lin.key("iris", 9)


def test_a_record_that_disagrees_with_the_chain_is_a_conflict(tmp_path: Path) -> None:
    w = make_world(tmp_path, verify_model=False)
    bob, lin0 = w["bob"], Lineage(w.source())
    iris1 = lin0.graph.nodes[lin0.key("iris", 1)]
    # bob says he trained on iris v1 while the chain was at iris v2 (a stale or lying tool)
    rec = make_record(bob, "Model", "train", "clf", inputs=[
        InputRef(iris1["id"], "Dataset", 1, iris1["evidence"])])
    record_with(bob, "train", "clf", rec, inputs=["iris"])
    lin = Lineage(w.source())
    key = lin.key("clf")
    (use,) = lin.uses[key]
    assert (use.chain_version, use.record_version, use.input.version) == (2, 1, 1)
    assert [c.key for c in lin.conflicts] == [key]
    assert "record says it consumed Dataset" in lin.conflicts[0].message


def test_logs_are_read_once_per_contract(world: World) -> None:
    source = world.source()
    calls: list[str | None] = []
    real = source.node.backend.logs

    def counting(address: str | None = None, *a: object, **kw: object) -> object:
        calls.append(address)
        return real(address, *a, **kw)  # type: ignore[arg-type]

    source.node.backend.logs = counting  # type: ignore[method-assign]
    lin = Lineage(source)
    lin.ancestors("clf")
    lin.state_at("iris", world.times["iris v1"])
    Lineage(source)
    assert sorted(calls) == sorted(source.contracts.values())


def test_render_png_writes_a_picture_atomically(world: World, lin: Lineage,
                                                tmp_path: Path) -> None:
    out = render_png(lin.around("clf"), tmp_path / "clf.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["clf.png"]
    with pytest.raises(NodeError, match="does not exist"):
        render_png(lin.graph, tmp_path / "no-such-dir" / "x.png")
    with pytest.raises(NodeError, match="empty"):
        render_png(lin.subgraph([]), tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()


def test_cli_lineage_human_json_and_png(world: World, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    home = str(world["admin"].home)
    assert cli(["lineage", "clf", "--home", home]) == 0
    out = capsys.readouterr().out
    assert "Model clf v3 (verified): 5 version(s) it was built from" in out
    assert "Dataset iris v2" in out and "label-co" in out and "Model reg" not in out
    assert cli(["lineage", "clf", "--json", "--home", home]) == 0  # every key, null if absent
    assert json.loads(capsys.readouterr().out)["blast_radius"] is None

    png = tmp_path / "down.png"
    assert cli(["lineage", "iris", "--version", "2", "--descendants", "--json", "--png",
                str(png), "--home", home]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["direction"] == "descendants"
    assert [(v["name"], v["version"]) for v in data["versions"]] == [("clf", 2), ("clf", 3)]
    assert [a["name"] for a in data["blast_radius"]["artefacts"]["Model"]] == ["clf"]
    assert png.read_bytes()[:4] == b"\x89PNG"

    assert cli(["lineage", "wine", "--descendants", "--home", home]) == 0
    out = capsys.readouterr().out
    assert "affected artefacts:" in out and "Model: reg (v2), clf (v2, v3)" in out

    with pytest.raises(NodeError, match="not a node home"):
        cli(["lineage", "clf", "--home", str(tmp_path / "nowhere")])


def test_live_source_reports_block_metadata(world: World) -> None:
    source: LiveSource = world.source()
    events = source.events()
    assert [ce.position for ce in events] == sorted(ce.position for ce in events)
    for ce in events:
        receipt = source.node.backend.receipt(ce.tx_hash)
        assert receipt is not None and receipt.sender == ce.sender
        assert source.node.backend.block(ce.block).timestamp == ce.timestamp
