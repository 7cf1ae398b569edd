from __future__ import annotations

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
