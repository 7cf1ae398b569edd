"""The lifecycle client against the py-evm engine: same errors as the interpreter, real gas.

Every test that takes ``env`` runs once per contract layout (registry, factory, clone): the client
has one API and the same exceptions whatever the layout.
"""

from __future__ import annotations

import pytest

from proml_sim import (
    AlreadyApproved,
    KeyCustodyError,
    RoleNotAllowed,
    SeparationOfDuty,
    TransitionNotAllowed,
    UnknownArtefact,
    compile_artefact,
)
from proml_sim.chain import KeyRing, PyEVMBackend
from proml_sim.chain.client import LAYOUTS, LifecycleClient
from proml_sim.ir import Interpreter, artefact_id, replay
from proml_sim.lifecycles import SingleAdminModel as Model  # the client, not governance

DIG = b"\xaa" * 32
DA, DB = b"A" * 32, b"B" * 32


@pytest.fixture(params=LAYOUTS)
def env(request):
    keys = KeyRing.from_seed("client-test", 6)
    admin, op, dev, v1, v2, _out = keys.addresses
    backend = PyEVMBackend(funded=keys.addresses)
    client = LifecycleClient.deploy(backend, compile_artefact(Model), keys.signer(admin), DA,
                                    layout=request.param)
    assert client.layout == request.param
    s = keys.signer
    client.grant(s(admin), "operator", op, DA)
    client.grant(s(admin), "developer", dev, DA)
    client.grant(s(admin), "verifier", v1, DA)
    client.grant(s(admin), "verifier", v2, DB)
    return keys, backend, client


def test_full_model_flow_and_history(env):
    keys, _backend, c = env
    _admin, op, dev, v1, v2, _ = keys.addresses
    s = keys.signer
    mid = c.register(s(op), b"\x01" * 32)
    assert mid == c.artefact_id(op, b"\x01" * 32)
    assert c.fire(s(dev), "train", mid, DIG, "s3://m", [b"\x05" * 32]).version == 2
    r = c.approve(s(v1), "verify", mid, DIG)
    assert not r.fired and r.approvals == 1 and c.state(mid) == "trained"
    r = c.approve(s(v2), "verify", mid, DIG)
    assert r.fired and c.state(mid) == "verified" and c.version(mid) == 3
    hist = c.history(mid)
    assert [h.step for h in hist] == ["register", "train", "verify"]
    assert hist[1].actor == dev and hist[1].locator == "s3://m"
    assert hist[1].inputs == (b"\x05" * 32,)
    assert c.fingerprint() == c.ir.fingerprint()


def test_reverts_decode_to_interpreter_errors_and_still_cost_gas(env):
    keys, backend, c = env
    admin, op, dev, v1, v2, out = keys.addresses
    s = keys.signer
    oracle = Interpreter(c.ir, admin, DA)
    for role, who, d in (("operator", op, DA), ("developer", dev, DA), ("verifier", v1, DA),
                         ("verifier", v2, DB)):
        oracle.grant(admin, role, who, d)
    mid = c.register(s(op), b"\x02" * 32)
    oracle.register(op, b"\x02" * 32)
    cases = [
        (out, "train", mid, DIG, RoleNotAllowed),
        (v1, "verify", mid, DIG, TransitionNotAllowed),
        (dev, "train", b"\x07" * 32, DIG, UnknownArtefact),
    ]
    for sender, t, aid, dig, exc in cases:
        with pytest.raises(exc) as on_chain:
            c.fire(s(sender), t, aid, dig)
        with pytest.raises(exc) as off_chain:
            oracle.fire(sender, t, aid, dig)
        assert str(on_chain.value) == str(off_chain.value)
    # the failed attempt was a real transaction: mined, status 0, gas paid
    receipt = backend.receipt(backend.block(backend.head().number).tx_hashes[0])
    assert receipt is not None and not receipt.status and receipt.gas_used > 21_000


def test_preflight_refuses_without_sending(env):
    keys, backend, c = env
    out = keys.addresses[5]
    mid = c.register(keys.signer(keys.addresses[1]), b"\x03" * 32)
    strict = LifecycleClient(backend, c.compiled, c.address, preflight=True)
    head = backend.head().number
    with pytest.raises(RoleNotAllowed):
        strict.fire(keys.signer(out), "train", mid, DIG)
    assert backend.head().number == head and not backend.pending()


def test_pending_ops_many_per_block(env):
    keys, backend, c = env
    op, dev = keys.addresses[1], keys.addresses[2]
    mid = c.register(keys.signer(op), b"\x04" * 32)
    c.automine = False
    ops = [c.fire(keys.signer(dev), "train", mid, bytes([i + 1]) * 32) for i in range(10)]
    block = backend.produce_block()
    assert len(block.tx_hashes) == 10
    versions = [c.result(o).version for o in ops]
    assert versions == list(range(2, 12))


def test_double_approval_and_separation_of_duty(env):
    keys, _backend, c = env
    admin, op, dev, v1, _v2, _ = keys.addresses
    s = keys.signer
    c.grant(s(admin), "verifier", dev, DB)
    mid = c.register(s(op), b"\x05" * 32)
    c.fire(s(dev), "train", mid, DIG)
    with pytest.raises(SeparationOfDuty):
        c.approve(s(dev), "verify", mid, DIG)
    c.approve(s(v1), "verify", mid, DIG)
    with pytest.raises(AlreadyApproved):
        c.approve(s(v1), "verify", mid, DIG)


def test_key_custody(env):
    keys, _backend, _c = env
    other = KeyRing.from_seed("someone-else", 1)
    with pytest.raises(KeyCustodyError):
        other.signer(keys.addresses[1])


def test_events_replay_into_storage(env):
    keys, _backend, c = env
    admin, op, dev, v1, *_ = keys.addresses
    mid = c.register(keys.signer(op), b"\x06" * 32)
    c.fire(keys.signer(dev), "train", mid, DIG)
    c.approve(keys.signer(v1), "verify", mid, DIG)
    c.revoke(keys.signer(admin), "verifier", v1)
    assert replay(c.ir, c.events()) == c.snapshot()
    assert not c.has_role(v1, "verifier")


def test_approve_refuses_single_approval_transitions(env):
    keys, _backend, c = env
    with pytest.raises(ValueError, match="needs no approvals"):
        c.approve(keys.signer(keys.addresses[2]), "train", b"\x00" * 32)


def test_register_and_fire_pending_in_one_block(env):
    """A transition may follow a registration still in the pool (per-artefact layouts address the
    artefact contract before it exists: CREATE2 from the id)."""
    keys, backend, c = env
    op, dev = keys.addresses[1], keys.addresses[2]
    c.automine = False
    reg = c.register(keys.signer(op), b"\x08" * 32)
    fire = c.fire(keys.signer(dev), "train", artefact_id(op, b"\x08" * 32), DIG)
    block = backend.produce_block()
    assert len(block.tx_hashes) == 2
    mid = c.result(reg)
    assert c.result(fire).version == 2 and c.state(mid) == "trained"


def test_fire_after_a_failed_pending_registration_is_unknown_artefact(env):
    """The registration fails (no operator role), so the transition queued behind it finds no
    artefact: the same UnknownArtefact as the interpreter, whatever the layout."""
    keys, backend, c = env
    dev = keys.addresses[2]
    c.automine = False
    reg = c.register(keys.signer(dev), b"\x09" * 32)
    fire = c.fire(keys.signer(dev), "train", artefact_id(dev, b"\x09" * 32), DIG)
    backend.produce_block()
    with pytest.raises(RoleNotAllowed):
        c.result(reg)
    with pytest.raises(UnknownArtefact):
        c.result(fire)
    assert not c.exists(artefact_id(dev, b"\x09" * 32))
