from __future__ import annotations

import json

import pytest
from hypothesis import given, settings

from proml_sim import InvalidDefinition, LifecycleIR, build_ir
from proml_sim.lifecycles import Dataset, Model
from tests.strategies import lifecycles


def test_paper_ir_shape():
    ir = build_ir(Model)
    assert ir.name == "Model"
    assert [r.name for r in ir.roles] == ["admin", "operator", "developer", "verifier", "auditor"]
    assert ir.roles[0].index == 0 and ir.role("verifier").bit == 1 << 3
    assert ir.initial.name == "requested" and ir.initial.index == 1
    verify = ir.transition("verify")
    assert verify.approvals == 2 and verify.count == "domains" and verify.evidence
    assert verify.separate_from == ("train",)
    assert ir.transition("train").sources == ("requested", "trained", "rejected")
    assert ir.register_by == ("operator",) and not ir.register_evidence
    assert ir.sod_targets == frozenset({"train"})
    d = build_ir(Dataset)
    assert d.register_evidence and d.role("labeller").admin == "dataset_admin"


def test_fingerprint_is_stable_and_sensitive():
    a, b = build_ir(Dataset), build_ir(Dataset)
    assert a == b and a.fingerprint() == b.fingerprint()
    assert len(a.fingerprint()) == 64
    assert a.fingerprint() != build_ir(Model).fingerprint()
    # canonical JSON has sorted keys and no whitespace
    text = a.canonical_json()
    assert " " not in text.replace("raw data", "") or '": ' not in text
    assert text.startswith('{"consortium":')  # sorted keys: the paper's are consortia


@settings(max_examples=40, deadline=None)
@given(lifecycles())
def test_json_round_trip_preserves_fingerprint(cls):
    ir = build_ir(cls)
    back = LifecycleIR.from_json(ir.canonical_json())
    assert back == ir and back.fingerprint() == ir.fingerprint()


def test_ir_rejects_newer_version_with_a_clear_error():
    d = build_ir(Dataset).to_dict()
    d["ir_version"] = 99
    try:
        LifecycleIR.from_dict(d)
    except ValueError as exc:
        assert "version 99 is not supported" in str(exc)
    else:
        raise AssertionError("expected ValueError")


def test_build_ir_refuses_non_lifecycles():
    try:
        build_ir(int)
    except InvalidDefinition as exc:
        assert "not a lifecycle" in str(exc)
    else:
        raise AssertionError


def test_unknown_names_give_known_list():
    ir = build_ir(Model)
    try:
        ir.transition("trian")
    except KeyError as exc:
        assert "no transition 'trian'" in str(exc) and "train" in str(exc)


def _set(path: str, value: object):
    """A change of the IR dict: ``path`` like ``states[0].initial`` or ``roles`` set to
    ``value``."""
    def change(d: dict) -> None:
        *parents, last = path.replace("[", ".").replace("]", "").split(".")
        for p in parents:
            d = d[int(p)] if p.isdigit() else d[p]
        d[int(last) if last.isdigit() else last] = value
    return change


@pytest.mark.parametrize(("change", "message"), [
    (_set("states", []), "states must list 1 to 255 entries, not 0"),
    (_set("states", {}), "IR.states must be a list, not {}"),
    (_set("transitions", {}), "IR.transitions must be a list"),
    (_set("states[0].initial", None), "states\\[0\\].initial must be true or false, not None"),
    (_set("states[0].initial", False), "exactly one initial state"),
    (_set("states[0].initial", []), "states\\[0\\].initial must be true or false"),
    (_set("transitions[0].index", None), "transitions\\[0\\].index must be an integer"),
    (_set("transitions[0].index", []), "transitions\\[0\\].index must be an integer"),
    (_set("transitions[0].index", 7), "transitions\\[0\\].index is 7, not its position 0"),
    (_set("transitions[0].name", None), "transitions\\[0\\].name must be a string"),
    (_set("transitions[0].name", ["a"]), "transitions\\[0\\].name must be a string"),
    (_set("transitions[0].sources", "requested"), "sources must be a list of names"),
    (_set("transitions[0].target", "nowhere"), "target names 'nowhere', which is not one of "
                                               "the IR's states"),
    (_set("transitions[0].separate_from", ["nosuch"]), "separate_from names 'nosuch'"),
    (_set("transitions[0].approvals", 0), "approvals must be 1 to 16"),
    (_set("roles[0]", None), "roles\\[0\\] must be a JSON object, not NoneType"),
    (_set("roles[1].admin", "x"), "roles\\[1\\].admin names 'x'"),
    (_set("consortium", 5), "IR.consortium must be an object or null, not 5"),
    (_set("consortium", "x"), "IR.consortium must be an object or null"),
    (_set("consortium", {}), "consortium.quorum is missing"),
    (_set("consortium.quorum", True), "consortium.quorum must be an integer"),
    (_set("ir_version", True), "lifecycle IR version True is not supported"),
    (_set("register_by", [1]), "IR.register_by must be a list of names"),
    (_set("surprise", 1), "IR has the unknown field 'surprise'"),
])
def test_from_dict_names_a_malformed_field(change, message):
    # an IR read from a file (an evidence bundle's ir/<L>.json) is checked field by field:
    # one ValueError naming the field, never AttributeError, IndexError or StopIteration
    d = json.loads(build_ir(Model).canonical_json())
    change(d)
    with pytest.raises(ValueError, match=message):
        LifecycleIR.from_dict(d)


@pytest.mark.parametrize("doc", [[], None, "x", 1, 1.5, True])
def test_from_dict_refuses_what_is_not_an_object(doc):
    with pytest.raises(ValueError, match="a lifecycle IR must be a JSON object"):
        LifecycleIR.from_dict(doc)
