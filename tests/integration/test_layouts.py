"""The factory and clone layouts on the py-evm engine: what the per-artefact contracts add.

The lifecycle rules themselves are checked against the interpreter for every layout by the
differential test and by ``test_client.py``; here: the clone's initialiser guard, CREATE2
addresses, misrouted calls, trust in events, and that roles live in one place.
"""

from __future__ import annotations

import pytest
from eth_abi.abi import encode
from eth_utils.address import to_checksum_address

from proml_sim import RoleNotAllowed, UnknownArtefact
from proml_sim.chain import ContractABI, KeyRing, PyEVMBackend
from proml_sim.chain.accounts import send_and_mine
from proml_sim.chain.client import (
    LifecycleClient,
    compile_layout,
    create_address,
    eip1167_initcode,
)
from proml_sim.ir import Registered, replay
from proml_sim.lifecycles import SingleAdminModel as Model  # layout mechanics, one admin

DIG = b"\xaa" * 32
DA, DB = b"A" * 32, b"B" * 32


def _deploy(layout: str, seed: str = "layouts"):
    keys = KeyRing.from_seed(seed, 6)
    admin, op, dev, v1, v2, _out = keys.addresses
    backend = PyEVMBackend(funded=keys.addresses)
    c = LifecycleClient.deploy(backend, compile_layout(Model, layout), keys.signer(admin), DA)
    s = keys.signer
    for role, who, d in (("operator", op, DA), ("developer", dev, DA), ("verifier", v1, DA),
                         ("verifier", v2, DB)):
        c.grant(s(admin), role, who, d)
    return keys, backend, c


@pytest.fixture(params=["factory", "clone"])
def env(request):
    return _deploy(request.param)


def _initialize(c: LifecycleClient, aid: bytes) -> bytes:
    return c.artefact_abi.encode_call("initialize", [aid])


def test_clone_initialiser_refuses_everyone_but_the_factory():
    keys, backend, c = _deploy("clone")
    admin, op = keys.addresses[0], keys.addresses[1]
    mid = c.register(keys.signer(op), b"\x01" * 32)
    c.fire(keys.signer(keys.addresses[2]), "train", mid, DIG)
    proxy = c.artefact_address(mid)
    for who in (admin, op):  # the deployer and the registrant are not the factory
        for target in (proxy, c.template):  # a live clone, and the implementation itself
            r = send_and_mine(backend, keys.signer(who), target, _initialize(c, mid), gas=200_000)
            assert not r.status
            assert r.revert_reason == "initialize: only the factory may initialise an artefact"
    # nothing was reset
    assert (c.state(mid), c.version(mid)) == ("trained", 2)
    assert replay(c.ir, c.events()) == c.snapshot()


def test_clone_initialiser_runs_once_even_for_its_factory():
    """The once-only check on its own: an implementation whose factory is an account we hold,
    behind a proxy that account deploys by hand, so the factory itself can try twice."""
    keys = KeyRing.from_seed("init-once", 2)
    fake_factory, other = keys.addresses
    backend = PyEVMBackend(funded=keys.addresses)
    bundle = compile_layout(Model, "clone")
    assert bundle.artefact is not None
    abi = ContractABI(list(bundle.artefact.abi))
    signer = keys.signer(fake_factory)
    impl = send_and_mine(backend, signer, None,
                         bundle.artefact.bytecode + encode(["address"], [fake_factory]))
    proxy = send_and_mine(backend, signer, None, eip1167_initcode(impl.contract_address))
    assert proxy.status and len(backend.code(proxy.contract_address)) == 45
    p = proxy.contract_address

    def view(fn, *args):
        return abi.decode_output(fn, backend.call(p, abi.encode_call(fn, list(args))).output)

    assert view("initialized") is False
    first = send_and_mine(backend, signer, p, abi.encode_call("initialize", [b"\x01" * 32]))
    assert first.status and view("initialized") is True
    second = send_and_mine(backend, signer, p, abi.encode_call("initialize", [b"\x02" * 32]),
                           gas=200_000)
    assert not second.status
    assert second.revert_reason == "initialize: artefact already initialised"
    assert view("state_of", b"\x01" * 32) == 1 and view("state_of", b"\x02" * 32) == 0
    stranger = send_and_mine(backend, keys.signer(other), p,
                             abi.encode_call("initialize", [b"\x03" * 32]), gas=200_000)
    assert stranger.revert_reason == "initialize: only the factory may initialise an artefact"


def test_clone_factory_refuses_an_implementation_bound_to_another_factory():
    keys = KeyRing.from_seed("bind", 1)
    (admin,) = keys.addresses
    backend = PyEVMBackend(funded=keys.addresses)
    bundle = compile_layout(Model, "clone")
    assert bundle.artefact is not None
    signer = keys.signer(admin)
    impl = send_and_mine(backend, signer, None,
                         bundle.artefact.bytecode + encode(["address"], [admin]))
    data = bundle.main.bytecode + encode(["bytes32", "address"], [DA, impl.contract_address])
    r = send_and_mine(backend, signer, None, data, gas=3_000_000)
    assert not r.status and r.revert_reason == "implementation is bound to another factory"


def test_artefact_addresses_are_create2_of_the_id(env):
    keys, backend, c = env
    op = keys.addresses[1]
    mid = c.register(keys.signer(op), b"\x02" * 32)
    addr = c.artefact_address(mid)
    assert to_checksum_address(c._view("artefact_of", mid)) == addr
    created = [lg for lg in backend.logs(c.address) if lg.topics[0] == c._created_topic]
    assert [lg.topics[1] for lg in created] == [mid]
    assert backend.code(addr) and addr not in (c.address, c.template)
    # another id, another contract; an unregistered id has no code at its address
    other = c.artefact_address(b"\x03" * 32)
    assert other != addr and backend.code(other) == b""


def test_a_call_sent_to_another_artefacts_contract_is_unknown_artefact(env):
    """The id argument is checked: a transition can never act on a different artefact."""
    keys, backend, c = env
    op, dev = keys.addresses[1], keys.addresses[2]
    a = c.register(keys.signer(op), b"\x04" * 32)
    b = c.register(keys.signer(op), b"\x05" * 32)
    data = c.transition_abi.encode_call("train", [a, DIG, "", []])
    r = send_and_mine(backend, keys.signer(dev), c.artefact_address(b), data, gas=200_000)
    assert not r.status and r.revert_reason.startswith("UnknownArtefact: SingleAdminModel:")
    assert c.version(a) == 1 and c.version(b) == 1


@pytest.mark.parametrize("layout", ["factory", "clone"])
def test_an_artefact_contract_is_heard_only_for_its_own_artefact(layout):
    """A contract that lets a call act for another id (its id check removed, as a reviewer's
    mutant does) logs a step in that artefact's name; the client reads each artefact contract
    for the artefact it was created for, so that log is not the other artefact's history."""
    import dataclasses

    from proml_sim.codegen import generate_vyper
    from proml_sim.compiler import compile_source

    honest = compile_layout(Model, layout)
    check = "assert id == _ID," if layout == "factory" else "assert _r != 0 and id == self._id,"
    src = generate_vyper(honest.ir, f"{layout}.artefact")
    assert src.count(check) >= 2
    part = compile_source(src.replace(check, "assert True,"), honest.ir.name)
    mutant = dataclasses.replace(honest, artefact=dataclasses.replace(
        part, ir=honest.ir, fingerprint=honest.ir.fingerprint()))
    keys = KeyRing.from_seed("one-artefact", 6)
    admin, op, dev = keys.addresses[:3]
    backend = PyEVMBackend(funded=keys.addresses)
    c = LifecycleClient.deploy(backend, mutant, keys.signer(admin), DA)
    c.grant(keys.signer(admin), "operator", op, DA)
    c.grant(keys.signer(admin), "developer", dev, DA)
    a = c.register(keys.signer(op), b"\x04" * 32)
    b = c.register(keys.signer(op), b"\x05" * 32)
    data = c.transition_abi.encode_call("train", [a, DIG, "", []])
    r = send_and_mine(backend, keys.signer(dev), c.artefact_address(b), data, gas=200_000)
    assert r.status  # the mutant accepts it, and logs a Transitioned naming a
    assert [(lg.address, lg.topics[1]) for lg in r.logs] == [(c.artefact_address(b), a)]
    assert [h.step for h in c.history(a)] == ["register"]
    assert all(getattr(ev, "id", b) == b for ev in c.events()
               if not isinstance(ev, Registered))


def test_transition_on_unregistered_id_reverts_at_the_factory(env):
    keys, backend, c = env
    dev = keys.addresses[2]
    with pytest.raises(UnknownArtefact):
        c.fire(keys.signer(dev), "train", b"\x06" * 32, DIG)
    r = backend.receipt(backend.head().tx_hashes[0])
    assert r is not None and r.to == c.address and not r.status


def test_revocation_in_the_factory_applies_to_every_artefact_at_once(env):
    keys, _backend, c = env
    admin, op, dev = keys.addresses[:3]
    ids = [c.register(keys.signer(op), bytes([0x10 + i]) * 32) for i in range(3)]
    c.fire(keys.signer(dev), "train", ids[0], DIG)
    c.revoke(keys.signer(admin), "developer", dev)
    for aid in ids:
        with pytest.raises(RoleNotAllowed):
            c.fire(keys.signer(dev), "train", aid, DIG)


def test_events_come_only_from_the_factory_and_the_contracts_it_created():
    """Two factories of the same lifecycle on one chain: each client sees only its own
    artefacts, although the other's contracts emit events with the same signatures."""
    keys, backend, c1 = _deploy("factory")
    admin, op, dev = keys.addresses[:3]
    c2 = LifecycleClient.deploy(backend, c1.bundle, keys.signer(admin), DB)
    c2.grant(keys.signer(admin), "operator", op, DB)
    c2.grant(keys.signer(admin), "developer", dev, DB)
    a1 = c1.register(keys.signer(op), b"\x07" * 32)
    a2 = c2.register(keys.signer(op), b"\x07" * 32)  # same sender and salt: same id
    assert a1 == a2 and c1.artefact_address(a1) != c2.artefact_address(a2)
    c2.fire(keys.signer(dev), "train", a2, DIG)
    assert c1.version(a1) == 1 and c2.version(a2) == 2
    assert [h.step for h in c1.history(a1)] == ["register"]
    assert [h.step for h in c2.history(a2)] == ["register", "train"]
    assert replay(c1.ir, c1.events()) == c1.snapshot()


def test_client_reopens_a_deployed_factory_from_its_main_contract(env):
    keys, backend, c = env
    mid = c.register(keys.signer(keys.addresses[1]), b"\x08" * 32)
    again = LifecycleClient(backend, c.compiled, c.address)
    assert again.layout == c.layout and again.template == c.template
    assert again.state(mid) == "requested" and again.events() == c.events()
    assert again.fingerprint() == c.ir.fingerprint()


def test_create_addresses_follow_the_deployers_nonce():
    """The clone implementation is told the factory's address in advance (the deployer's next
    CREATE address); the client computes it with the usual RLP rule."""
    keys = KeyRing.from_seed("nonce", 1)
    (admin,) = keys.addresses
    backend = PyEVMBackend(funded=keys.addresses)
    signer = keys.signer(admin)
    for n in range(3):
        r = send_and_mine(backend, signer, None, b"\x60\x00\x60\x00\xf3")  # empty contract
        assert r.contract_address == create_address(admin, n)
    c = LifecycleClient.deploy(backend, compile_layout(Model, "clone"), signer, DA)
    assert c.template == create_address(admin, 3) and c.address == create_address(admin, 4)


def test_client_knows_every_generated_layout():
    """The chain layer does not import codegen; its list of layouts must follow codegen's."""
    from proml_sim.chain.client import LAYOUTS as CLIENT_LAYOUTS
    from proml_sim.codegen import LAYOUT_PARTS, LAYOUTS

    assert CLIENT_LAYOUTS == LAYOUTS
    assert all(parts[1:] in ((), (f"{lay}.artefact",)) for lay, parts in LAYOUT_PARTS.items())
