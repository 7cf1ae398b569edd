"""threat_models/README.md is the catalogue generated from its TOML files, and stays so."""

from __future__ import annotations

from pathlib import Path

from proml_sim.threats.catalogue import catalogue_dir, load_catalogue
from proml_sim.threats.catalogue_doc import catalogue_markdown


def test_shipped_catalogue_page_matches_the_toml_files() -> None:
    cat = load_catalogue()
    page = (catalogue_dir() / "README.md").read_text()
    assert page == catalogue_markdown(cat), (
        "threat_models/README.md is stale: proml threats list --markdown > "
        "threat_models/README.md")
    for tm in cat.values():
        assert f"## {tm.id}\n" in page and tm.title in page


def test_page_changes_with_a_model(tmp_path: Path) -> None:
    cat = load_catalogue()
    first = next(iter(cat.values()))
    changed = {**cat, first.id: type(first)(**{**first.__dict__, "title": "a | new title"})}
    page = catalogue_markdown(changed)
    assert page != catalogue_markdown(cat) and "a \\| new title" in page
