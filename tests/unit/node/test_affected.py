"""``Lineage.affected_by`` / ``proml lineage --affected-by``: every artefact version built with a
package version (a CVE in an ML framework), everything built on them, and what cannot be told.

The home is built through the node API; each step's environment is what the node captured at
that step (``records.environment``, replaced here per step to play teams with different installs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import proml_sim.node.service as service
from proml_sim.errors import NodeError, UsageError
from proml_sim.node import consortium as gov
from proml_sim.node.lineage import Lineage, VersionKey, parse_requirement
from tests.unit.node.evidence_fixtures import World, _node, cli


def env(torch: str | None, numpy: str = "1.26.4") -> dict[str, Any]:
    pkgs = {"numpy": numpy, **({"torch": torch} if torch else {})}
    return {"python": "3.11.9", "platform": "Linux", "packages": pkgs}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """d1 (torch 2.0.0), d2 (torch 2.0.1: vulnerable); bob trains m1 on d1 with 2.0.1 and m2 on
    d1 with 2.0.0; carol trains m3 on d2 and fine-tunes m4 from m1, both with 2.1.0; carol's m5
    is trained with a record whose blob is then lost, and m7 fine-tuned from m5; m6's steps ran
    without torch; m8 was registered on a "nightly" build (no PEP 440 version)."""
    root = tmp_path_factory.mktemp("affected")
    admin = _node(root, "admin", "consortium", new_chain=True)
    alice = _node(root, "alice", "data-co")
    bob = _node(root, "bob", "dev-co")
    carol = _node(root, "carol", "dev-b")
    # the consortium default: each domain joins by vote and enrols its own account
    gov.admit([admin], "Dataset", alice, ["dataset_admin"])
    gov.admit([admin], "Model", bob, ["operator", "developer"])
    gov.admit([admin, bob], "Model", carol, ["operator", "developer"])
    mp = pytest.MonkeyPatch()
    files = {}
    for name in ("a.csv", "b.csv", "m.pkl"):
        files[name] = root / "work" / name
        files[name].parent.mkdir(exist_ok=True)
        files[name].write_text(name)

    def with_env(e: dict[str, Any]) -> None:
        mp.setattr(service, "environment", lambda: e)

    try:
        with_env(env("2.0.0"))
        alice.register("Dataset", "d1", [files["a.csv"]])
        with_env(env("2.0.1"))
        alice.register("Dataset", "d2", [files["b.csv"]])
        with_env(env("2.0.0"))
        bob.register("Model", "m1")
        bob.register("Model", "m2")
        with_env(env("2.0.1"))
        bob.record("train", "m1", inputs=["d1"], outputs=[files["m.pkl"]])
        with_env(env("2.0.0"))
        bob.record("train", "m2", inputs=["d1"], outputs=[files["m.pkl"]])
        with_env(env("2.1.0"))
        for m in ("m3", "m4", "m5"):
            carol.register("Model", m)
        carol.record("train", "m3", inputs=["d2"], outputs=[files["m.pkl"]])
        carol.record("train", "m4", inputs=["m1"], outputs=[files["m.pkl"]])
        carol.record("train", "m5", inputs=["d1"], outputs=[files["m.pkl"]],
                     params={"lost": True})
        carol.register("Model", "m7")
        carol.record("train", "m7", inputs=["m5"], outputs=[files["m.pkl"]])
        with_env(env(None))
        carol.register("Model", "m6")
        carol.record("train", "m6", inputs=["d1"], outputs=[files["m.pkl"]])
        with_env(env("nightly"))
        carol.register("Model", "m8")
    finally:
        mp.undo()
    w = World(root, {n.name: n for n in (admin, alice, bob, carol)}, files)
    lost = carol.history("m5")[-1].digest.hex()
    for copy in w.copies(lost):  # the team's store and the archive lose that record
        copy.unlink()
    return w


@pytest.fixture(scope="module")
def lin(world: World) -> Lineage:
    return Lineage(world.source())


def names(lin: Lineage, keys: list[VersionKey]) -> list[str]:
    return [f"{lin.name(k)} v{k.version}" for k in keys]


def test_an_exact_version_finds_the_steps_built_with_it_and_everything_built_on_them(
        lin: Lineage) -> None:
    found = lin.affected_by("torch==2.0.1")
    assert [(f"{lin.name(k)} v{k.version}", v) for k, v in found.matched] == [
        ("d2 v1", "2.0.1"), ("m1 v2", "2.0.1")]
    # m3 was trained on d2, m4 fine-tuned from m1: safe installs, affected inputs
    assert names(lin, found.descendants) == ["m3 v2", "m4 v2"]
    assert names(lin, found.affected) == ["d2 v1", "m1 v2", "m3 v2", "m4 v2"]
    # m5's record is lost, m8's torch version cannot be compared: neither can be told
    assert names(lin, found.unknown) == ["m5 v2", "m8 v1"]
    assert names(lin, found.unknown_descendants) == ["m7 v2"]  # built on m5: suspect too
    assert found.listing == 14  # every record but m5's lost one and m6's torch-less two


def test_specifier_sets_names_and_the_interpreter(lin: Lineage) -> None:
    older = lin.affected_by("torch<2.1")
    assert {lin.name(k) for k, _ in older.matched} == {"d1", "d2", "m1", "m2"}
    # carol's registrations ran 2.1.0, but her trainings used d1, d2 or m1: all built on them
    # (m5 v2 too: its own record is lost, its input is known from the chain)
    assert names(lin, older.descendants) == ["m3 v2", "m4 v2", "m5 v2", "m7 v2", "m6 v2"]
    assert older.unknown_descendants == []  # m7 v2 is already known to be affected
    assert names(lin, lin.affected_by("Torch>=2.0.1,<2.1").affected) == names(
        lin, lin.affected_by("torch==2.0.1").affected)  # names compare canonically
    assert len(lin.affected_by("python==3.11.9").matched) == 16  # all readable records
    none = lin.affected_by("tensorflow==2.15.0")
    assert (none.matched, none.descendants, none.listing) == ([], [], 0)


@pytest.mark.parametrize("bad, why", [
    ("torch", "names no version"), ("torch==2.0.1; python_version<'3'", "markers"),
    ("==2.0", "not a package specifier"), ("torch[cuda]==2.0", "extras"),
    ("torch=2", "not a package specifier"),
    # a marker or URL without a version was told "names no version", a fix that keeps the marker
    ("torch; python_version<'3'", "markers"), ("torch @ https://example.org/t.whl", "URLs"),
])
def test_a_bad_specifier_is_a_usage_error(bad: str, why: str) -> None:
    with pytest.raises(UsageError, match=why):
        parse_requirement(bad)


def test_cli_affected_by_human_json_and_errors(world: World, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    home = str(world["admin"].home)
    assert cli(["lineage", "--affected-by", "torch==2.0.1", "--home", home]) == 0
    out = capsys.readouterr().out
    assert out.startswith("torch==2.0.1: 2 version(s) built with it, 2 built on them "
                          "(4 affected version(s) of 4 artefact(s))")
    assert "[torch 2.0.1]" in out and "built on them:" in out
    assert "2 version(s) cannot be told: their record is unavailable" in out
    assert "and 1 version(s) built on them (suspect too)" in out

    png = tmp_path / "cve.png"
    assert cli(["lineage", "--affected-by", "torch==2.0.1", "--json", "--png", str(png),
                "--home", home]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(m["name"], m["version"], m["package_version"]) for m in data["matched"]] == [
        ("d2", 1, "2.0.1"), ("m1", 2, "2.0.1")]
    assert [(d["name"], d["version"]) for d in data["descendants"]] == [("m3", 2), ("m4", 2)]
    assert [(u["name"], u["version"]) for u in data["unknown"]] == [("m5", 2), ("m8", 1)]
    assert [(u["name"], u["version"]) for u in data["unknown_descendants"]] == [("m7", 2)]
    assert sorted(a["name"] for a in data["artefacts"]["Model"]) == ["m1", "m3", "m4"]
    assert data["records_listing_package"] == 14 and data["png"] == str(png)
    assert png.read_bytes()[:4] == b"\x89PNG"

    assert cli(["lineage", "--affected-by", "jax==0.4.1", "--home", home]) == 0
    assert "no record lists jax at any version" in capsys.readouterr().out
    with pytest.raises(NodeError, match="without an ARTEFACT"):
        cli(["lineage", "m1", "--affected-by", "torch==2.0.1", "--home", home])
    with pytest.raises(NodeError, match="needs an ARTEFACT"):
        cli(["lineage", "--home", home])
    with pytest.raises(SystemExit) as exc:  # argparse: exit 2 before any work
        cli(["lineage", "--affected-by", "torch", "--home", home])
    assert exc.value.code == 2
    assert "names no version" in capsys.readouterr().err
