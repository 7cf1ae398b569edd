from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from proml_sim.artifacts import out_of_sync
from proml_sim.codegen import LAYOUT_PARTS, LAYOUTS, generate_vyper, to_dot, to_mermaid
from proml_sim.dsl._names import GENERATED_NAMES
from proml_sim.ir import build_ir
from proml_sim.lifecycles import Dataset, Model
from tests.fixtures.lifecycles import make_review

GOLDEN = Path(__file__).parents[2] / "golden"
ROOT = Path(__file__).parents[3]


def test_golden_source_of_review_fixture():
    """Byte-for-byte golden test.  Regenerate with PROML_UPDATE_GOLDEN=1 after a deliberate
    codegen change, and review the diff."""
    text = generate_vyper(build_ir(make_review()))
    path = GOLDEN / "Review.vy"
    if os.environ.get("PROML_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize(
    "part", [p for ps in LAYOUT_PARTS.values() for p in ps if p != "registry"]
)
def test_golden_source_of_review_fixture_per_layout_part(part):
    """Byte-for-byte golden test of the factory and clone layouts (both contracts of each)."""
    text = generate_vyper(build_ir(make_review()), part)
    path = GOLDEN / f"Review.{part}.vy"
    if os.environ.get("PROML_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_codegen_is_deterministic_and_has_header():
    ir = build_ir(Model)
    a, b = generate_vyper(ir), generate_vyper(build_ir(Model))
    assert a == b
    lines = a.splitlines()
    assert lines[0].startswith("# pragma version")
    assert "DSL class `Model`" in lines[1]
    assert lines[2] == f"# IR fingerprint: {ir.fingerprint()}"


def test_revert_reasons_are_derived_from_dsl_names():
    src = generate_vyper(build_ir(Model))
    reasons = set(re.findall(r'"([A-Za-z]+: [^"]*)"', src))
    assert "RoleNotAllowed: Model.train needs role developer" in reasons
    assert "TransitionNotAllowed: Model.verify is allowed only from trained" in reasons
    assert "SeparationOfDuty: Model.verify: the actor of train may not also do this" in reasons
    from proml_sim.errors import GovernanceError, LifecycleError

    def codes(cls: type) -> set[str]:
        return {c.__name__ for c in cls.__subclasses__()} | {
            n for c in cls.__subclasses__() for n in codes(c)}

    # the paper Model is a consortium: its governance guards have their own codes
    assert all(r.split(":")[0] in {
        "UnknownArtefact", "AlreadyRegistered", "TransitionNotAllowed", "RoleNotAllowed",
        "NotRoleAdmin", "EvidenceRequired", "SeparationOfDuty", "AlreadyApproved",
        "ApprovalsFull", "InvalidArgument", *codes(GovernanceError)} for r in reasons), (
        {r.split(":")[0] for r in reasons} - codes(LifecycleError))


def test_no_unbounded_loops_and_no_tx_origin():
    for cls in (Dataset, Model):
        src = generate_vyper(build_ir(cls))
        assert "tx.origin" not in src
        for line in src.splitlines():
            if line.strip().startswith("for "):
                assert "DynArray" in src and "in _entries" in line  # bounded by MAX_APPROVERS


def test_reserved_names_cover_generated_identifiers_and_vyper_keywords():
    src = "\n".join(generate_vyper(build_ir(c)) for c in (Dataset, Model, make_review()))
    declared = set(re.findall(r"^def (\w+)\(", src, re.M))
    declared |= set(re.findall(r"^(\w+): ", src, re.M))
    declared |= set(re.findall(r"^event (\w+):", src, re.M))
    transitions = {t.name for c in (Dataset, Model, make_review())
                   for t in build_ir(c).transitions}
    generated = {d for d in declared - transitions - {"__init__"} if not d.startswith("_")}
    assert generated <= GENERATED_NAMES, generated - GENERATED_NAMES
    from vyper.ast.identifiers import RESERVED_KEYWORDS

    from proml_sim.dsl._names import is_reserved

    # every reserved word a DSL name could collide with (letters first, as IDENTIFIER demands)
    assert all(is_reserved(k) for k in RESERVED_KEYWORDS if k[0].isalpha())
    assert is_reserved("TRUE") and is_reserved("Event")


def test_diagrams():
    ir = build_ir(Model)
    m = to_mermaid(ir)
    assert m.startswith("stateDiagram-v2")
    assert "trained --> verified: verify, by verifier, 2-of-n domains, evidence" in m
    assert "audited --> [*]" in m
    d = to_dot(ir)
    assert d.startswith('digraph "Model"') and '"trained" -> "verified"' in d


def test_lifecycle_png(tmp_path):
    from proml_sim.codegen.diagram import render_png

    out = render_png(build_ir(Dataset), tmp_path / "d.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000


def test_contracts_directory_is_in_sync():
    stale = out_of_sync(ROOT / "contracts")
    assert not stale, f"run `proml generate` to refresh: {stale}"


def test_unknown_layout_is_refused():
    with pytest.raises(ValueError, match="unknown contract layout"):
        generate_vyper(build_ir(Model), layout="diamond")


ALL_PARTS = [p for ps in LAYOUT_PARTS.values() for p in ps]


def test_layouts_and_their_parts():
    assert LAYOUTS == ("registry", "factory", "clone")
    assert {k: v[0] for k, v in LAYOUT_PARTS.items()} == {k: k for k in LAYOUTS}
    with pytest.raises(ValueError, match="unknown contract layout"):
        generate_vyper(build_ir(Model), layout="registry.artefact")


@pytest.mark.parametrize("part", ALL_PARTS)
def test_every_part_is_deterministic_and_names_class_fingerprint_and_layout(part):
    ir = build_ir(Model)
    a, b = generate_vyper(ir, part), generate_vyper(build_ir(Model), part)
    assert a == b
    lines = a.splitlines()
    assert lines[0].startswith("# pragma version")
    assert "DSL class `Model`" in lines[1]
    assert lines[2] == f"# IR fingerprint: {ir.fingerprint()}"
    if part != "registry":  # the registry header predates layouts and is published as it is
        assert lines[3].startswith(f"# Contract layout: {part} -- ")
    assert "tx.origin" not in a
    for line in a.splitlines():
        if line.strip().startswith("for "):
            assert "in _entries" in line  # the only loop: at most MAX_APPROVERS approvers


def _reasons(src: str) -> set[str]:
    return set(re.findall(r'"([A-Za-z]+: [^"]*)"', src))


@pytest.mark.parametrize("layout", ["factory", "clone"])
@pytest.mark.parametrize("make", [lambda: Dataset, lambda: Model, make_review])
def test_same_revert_reasons_and_events_as_the_registry(layout, make):
    """The layout moves storage, not rules: the factory and its artefact contract together carry
    exactly the registry's revert reasons and event declarations."""
    ir = build_ir(make())
    registry = generate_vyper(ir)
    main, artefact = (generate_vyper(ir, p) for p in LAYOUT_PARTS[layout])
    lifecycle_reasons = {r for r in _reasons(main + artefact) if not r.startswith("initialize")}
    assert lifecycle_reasons == _reasons(registry)

    def events(src: str) -> set[str]:
        return set(re.findall(r"^event \w+:\n(?:    .*\n)+", src, re.M))

    assert events(main) | events(artefact) == events(registry) | {
        "event ArtefactCreated:\n    id: indexed(bytes32)\n    artefact: indexed(address)\n"
    }
    # the transitions keep the registry's guards in the registry's order
    for t in ir.transitions:
        reg_fn = _function(registry, t.name)
        art_fn = _function(artefact, t.name)
        assert _reasons_in_order(reg_fn) == _reasons_in_order(art_fn)


def _function(src: str, name: str) -> str:
    m = re.search(rf"^def {name}\(.*?(?=^@|\Z)", src, re.M | re.S)
    assert m, name
    return m.group(0)


def _reasons_in_order(src: str) -> list[str]:
    return re.findall(r'"([A-Za-z]+: [^"]*)"', src)


@pytest.mark.parametrize("part", ["factory.artefact", "clone.artefact"])
def test_artefact_contract_identifiers_cannot_collide_with_dsl_names(part):
    """An artefact contract declares the DSL's transition names, so everything else it declares
    is reserved for DSL names or starts with an underscore (DSL names start with a letter)."""
    srcs = {c: generate_vyper(build_ir(c), part) for c in (Dataset, Model, make_review())}
    for cls, src in srcs.items():
        declared = set(re.findall(r"^def (\w+)\(", src, re.M))
        declared |= set(re.findall(r"^(\w+): ", src, re.M))
        declared |= set(re.findall(r"^(?:event|interface) (\w+):", src, re.M))
        transitions = {t.name for t in build_ir(cls).transitions}
        other = {d for d in declared - transitions - {"__init__"} if not d.startswith("_")}
        assert other <= GENERATED_NAMES, other - GENERATED_NAMES


def test_clone_initialiser_guard_is_explicit():
    src = generate_vyper(build_ir(Model), "clone.artefact")
    init = _function(src, "initialize")
    assert "INITIALISER GUARD" in init
    assert 'assert msg.sender == _FACTORY, "initialize: only the factory' in init
    assert 'assert self.record == 0, "initialize: artefact already initialised"' in init
    # the factory initialises each proxy in the transaction that creates it
    factory = generate_vyper(build_ir(Model), "clone")
    assert (
        "create_minimal_proxy_to(IMPLEMENTATION, salt=_id)\n"
        "    extcall _Artefact(_a).initialize(_id)"
    ) in factory
