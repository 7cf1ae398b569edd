from __future__ import annotations

import pytest

from proml_sim import (
    AlreadyApproved,
    AlreadyRegistered,
    EvidenceRequired,
    Interpreter,
    InvalidArgument,
    NotRoleAdmin,
    RoleNotAllowed,
    SeparationOfDuty,
    TransitionNotAllowed,
    UnknownArtefact,
    build_ir,
)
from proml_sim.ir import artefact_id, replay

# role semantics on the single-admin design (governance: test_governance.py)
from proml_sim.lifecycles import SingleAdminDataset as Dataset
from proml_sim.lifecycles import SingleAdminModel as Model

ADMIN_A = "0x" + "11" * 20
OP = "0x" + "22" * 20
DEV = "0x" + "33" * 20
V1 = "0x" + "44" * 20
V2 = "0x" + "55" * 20
V3 = "0x" + "66" * 20
AUD = "0x" + "77" * 20
D1, D2, D3 = (bytes([i]) * 32 for i in (1, 2, 3))
DIG = b"\xaa" * 32


@pytest.fixture
def model():
    m = Interpreter(build_ir(Model), ADMIN_A, D1)
    m.grant(ADMIN_A, "operator", OP, D1)
    m.grant(ADMIN_A, "developer", DEV, D2)
    for v, d in ((V1, D1), (V2, D2), (V3, D2)):
        m.grant(ADMIN_A, "verifier", v, d)
    m.grant(ADMIN_A, "auditor", AUD, D3)
    return m


def test_paper_model_lifecycle_and_history(model):
    mid = model.register(OP, b"\x01" * 32)
    assert mid == artefact_id(OP, b"\x01" * 32)
    assert model.state(mid) == "requested" and model.version(mid) == 1
    r = model.fire(DEV, "train", mid, DIG, "s3://m/v1", [b"\x09" * 32])
    assert r.fired and r.version == 2 and model.state(mid) == "trained"
    # 2-of-n verifiers counted by trust domain
    r1 = model.fire(V2, "verify", mid, DIG)
    assert not r1.fired and r1.approvals == 1 and model.state(mid) == "trained"
    with pytest.raises(AlreadyApproved, match="this trust domain already approved"):
        model.fire(V3, "verify", mid, DIG)  # same domain as V2
    r2 = model.fire(V1, "verify", mid, DIG)
    assert r2.fired and model.state(mid) == "verified" and model.version(mid) == 3
    model.fire(OP, "accept", mid)
    model.fire(AUD, "audit", mid, DIG)
    steps = [h.step for h in model.history(mid)]
    assert steps == ["register", "train", "verify", "accept", "audit"]
    assert model.history(mid)[1].inputs == (b"\x09" * 32,)


def test_guards_raise_typed_errors_in_rule_order(model):
    mid = model.register(OP, b"\x02" * 32)
    with pytest.raises(UnknownArtefact, match="unknown artefact id"):
        model.fire(DEV, "train", b"\x00" * 32, DIG)
    with pytest.raises(RoleNotAllowed, match=r"Model.train needs role developer$"):
        model.fire(V1, "train", mid, DIG)
    with pytest.raises(TransitionNotAllowed, match=r"Model\.verify is allowed only from trained"):
        model.fire(V1, "verify", mid, DIG)
    with pytest.raises(EvidenceRequired):
        model.fire(DEV, "train", mid)
    with pytest.raises(AlreadyRegistered):
        model.register(OP, b"\x02" * 32)
    with pytest.raises(RoleNotAllowed, match=r"Model\.register needs role operator"):
        model.register(DEV, b"\x03" * 32)
    with pytest.raises(NotRoleAdmin):
        model.grant(OP, "developer", OP)
    with pytest.raises(InvalidArgument, match="unknown role index"):
        model.grant(ADMIN_A, 9, OP)
    with pytest.raises(InvalidArgument, match="at most 16 input"):
        model.fire(DEV, "train", mid, DIG, "", [b"\x01" * 32] * 17)
    with pytest.raises(TypeError, match="takes no evidence"):
        model.fire(OP, "accept", mid, DIG)


def test_separation_of_duty(model):
    model.grant(ADMIN_A, "verifier", DEV, D3)  # the developer also holds verifier
    mid = model.register(OP, b"\x04" * 32)
    model.fire(DEV, "train", mid, DIG)
    with pytest.raises(SeparationOfDuty, match="the actor of train may not also do this"):
        model.fire(DEV, "verify", mid, DIG)


def test_revoked_approver_no_longer_counts_and_revoked_sender_refused(model):
    mid = model.register(OP, b"\x05" * 32)
    model.fire(DEV, "train", mid, DIG)
    model.fire(V1, "verify", mid, DIG)
    model.revoke(ADMIN_A, "verifier", V1)
    with pytest.raises(RoleNotAllowed):
        model.fire(V1, "verify", mid, DIG)
    r = model.fire(V2, "verify", mid, DIG)
    assert not r.fired and r.approvals == 1  # V1's approval no longer counts
    assert model.approvals(mid, "verify", DIG) == 1


def test_approvals_bind_version_and_digest(model):
    mid = model.register(OP, b"\x06" * 32)
    model.fire(DEV, "train", mid, DIG)
    model.fire(V1, "verify", mid, DIG)
    other = b"\xbb" * 32
    r = model.fire(V2, "verify", mid, other)  # different evaluation digest: separate count
    assert not r.fired
    model.fire(DEV, "train", mid, DIG)  # new version: earlier approvals are stale
    assert model.approvals(mid, "verify", DIG) == 0


def test_replay_of_events_equals_state(model):
    d = Interpreter(build_ir(Dataset), ADMIN_A)
    d.grant(ADMIN_A, "dataset_admin", DEV, D2)
    did = d.register(DEV, b"\x07" * 32, DIG)
    d.grant(DEV, "labeller", V1, D1)
    d.fire(V1, "label", did, DIG)
    d.fire(DEV, "review", did)
    d.revoke(DEV, "labeller", V1)
    assert replay(d.ir, d.events) == d.snapshot()
    mid = model.register(OP, b"\x08" * 32)
    model.fire(DEV, "train", mid, DIG)
    model.fire(V1, "verify", mid, DIG)
    assert replay(model.ir, model.events) == model.snapshot()
