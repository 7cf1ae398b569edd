"""The lifecycle client with automine off: many operations per block, decoded per receipt.

Random batches of operations (registrations, transitions, approvals that do and do not fire,
grants and revokes, wrong-role and wrong-state calls that revert inside the block, calls with
malformed arguments refused before signing) from several senders are submitted with automine
off and mined together; every ``result(op)`` must equal what the reference interpreter says for
that operation at its position in the block order (same value, or same exception type and
message), and after each batch the contract state must equal the interpreter's (the
differential test's invariant).  Runs for each contract layout (registry, factory, clone).

The machinery (deployment, the lock-step comparison, the state invariant) is the differential
test's :class:`LockStep`; here its one-operation-per-block rules are replaced by one batch rule.

Budget (default run): about 20 s on 2 cores (batches 12 s, examples 8 s); the ``slow`` classes
run many more batches (about 70 s with ``CI`` set).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from proml_sim import ADMIN, Artefact, InvalidArgument, Role, State
from proml_sim.chain import KeyRing, PyEVMBackend
from proml_sim.chain.client import LAYOUTS, LifecycleClient, PendingOp, compile_layout
from proml_sim.ir import ZERO32, Interpreter, StepResult, artefact_id, build_ir

# chain mechanics under one admin (governance: test_differential, test_governance_chain)
from proml_sim.lifecycles import SingleAdminDataset as Dataset
from proml_sim.lifecycles import SingleAdminModel as Model
from tests.property.test_differential import (
    DIGESTS,
    DOMAINS,
    N_ACCOUNTS,
    LockStep,
    _settings,
    outcome,
)
from tests.strategies import lifecycles

#: malformed fixed-size arguments: a bytes32 one byte short and one byte long, addresses that
#: are too short, not hex, or carry a wrong EIP-55 checksum
SHORT, LONG = b"\x11" * 31, b"\x11" * 33


def _bad_checksum(address: str) -> str:
    """``address`` with the case of its first letter flipped: a wrong EIP-55 checksum."""
    for k, ch in enumerate(address[2:], start=2):
        if ch.isalpha():
            return address[:k] + ch.swapcase() + address[k + 1:]
    raise AssertionError("an address without letters")


def _label(op: str, outcome: tuple[str, Any]) -> str:
    """What one mined operation did, for ``--hypothesis-show-statistics``."""
    kind, value = outcome
    if kind != "ok":
        return f"{op} reverted in the block: {kind}"
    if isinstance(value, StepResult):
        return f"{op}: {'fired' if value.fired else 'approval recorded, not fired'}"
    return f"{op}: ok"


class Batched(LockStep):
    """Batches of operations mined together, each result checked against the interpreter."""

    # the differential test's single-step rules are replaced by the batch rule below
    grant = revoke = register = fire = None  # type: ignore[assignment]

    def start(self, cls: Any) -> None:
        self.setup(cls)
        # give accounts 1.. some roles each (not all: wrong-role calls stay likely), in two
        # trust domains, so that approvals can count and fire
        for i in range(1, N_ACCOUNTS):
            for r in range(1, len(self.ir.roles)):
                if (i + r) % 3:
                    self.both("grant", 0, r, self.accounts[i], DOMAINS[i % 2])
        self.known: list[bytes] = []
        self.chain.automine = False

    # -- one operation, drawn --------------------------------------------------------------------
    def draw_op(self, data: st.DataObject) -> tuple[str, int, tuple[Any, ...]]:
        sender = data.draw(st.integers(0, N_ACCOUNTS - 1), label="sender")
        kind = data.draw(st.sampled_from(
            ["fire", "fire", "fire", "fire", "register", "register", "grant", "revoke", "bad"]
        ), label="kind")
        if kind == "register":
            if self.ir.register_by and data.draw(st.booleans(), label="registrant holds role"):
                holders = [i for i in range(N_ACCOUNTS) if any(
                    self.oracle.has_role(self.accounts[i], r) for r in self.ir.register_by)]
                sender = data.draw(st.sampled_from(holders or [sender]), label="registrant")
            if not data.draw(st.booleans(), label="reuse salt") or not self.salt:
                self.salt += 1
            salt = self.salt.to_bytes(32, "big")
            digest = data.draw(st.sampled_from(DIGESTS), label="digest")
            self.known.append(artefact_id(self.accounts[sender], salt))
            return "register", sender, (salt, digest, "ipfs://x", [])
        if kind == "fire":
            plausible = self.plausible()
            if plausible and data.draw(st.integers(0, 3), label="plausible") > 0:
                # an allowed step by an account holding its role, as of before this batch:
                # approvals accumulate (and fire) within one block; some become wrong-state
                t, artefact, sender = data.draw(st.sampled_from(plausible), label="step")
            else:
                t = data.draw(st.sampled_from(self.ir.transitions), label="transition")
                artefact = data.draw(st.sampled_from([*self.known, b"\xee" * 32]),
                                     label="artefact")
            if not t.evidence:
                return "fire", sender, (t.name, artefact)
            # mostly one digest, so that approvals of the same evidence accumulate
            digest = data.draw(st.sampled_from([DIGESTS[1], *DIGESTS]), label="digest")
            return "fire", sender, (t.name, artefact, digest, "s3://b/k", [artefact])
        role = data.draw(st.integers(0, len(self.ir.roles)), label="role")
        account = self.accounts[data.draw(st.integers(0, N_ACCOUNTS - 1), label="account")]
        if kind == "grant":
            return "grant", sender, (role, account, data.draw(st.sampled_from(DOMAINS)))
        if kind == "revoke":
            return "revoke", sender, (role, account)
        bad = data.draw(st.sampled_from(
            ["salt", "digest", "artefact", "domain", "account", "checksum", "inputs"]
        ), label="malformed")
        short = data.draw(st.sampled_from([SHORT, LONG]), label="length")
        t = data.draw(st.sampled_from(self.ir.transitions), label="transition")
        artefact = data.draw(st.sampled_from([*self.known, b"\xee" * 32]), label="artefact")
        if bad == "salt":
            return "register", sender, (short, ZERO32, "", [])
        if bad == "digest":
            return "register", sender, ((self.salt + 1).to_bytes(32, "big"), short, "", [])
        if bad == "artefact":
            return "fire", sender, (t.name, short)
        if bad == "inputs":
            return "register", sender, ((self.salt + 1).to_bytes(32, "big"), ZERO32, "", [short])
        if bad == "domain":
            return "grant", sender, (role, account, short)
        if bad == "account":
            return "revoke", sender, (role, data.draw(st.sampled_from(["0x123", "0x" + "zz" * 20])))
        return "grant", sender, (role, _bad_checksum(account), DOMAINS[0])

    def plausible(self) -> list[tuple[Any, bytes, int]]:
        """(transition, artefact, sender) steps the interpreter would allow right now, but for
        evidence and separation of duty."""
        out = []
        for aid in sorted(self.oracle.records):
            state = self.oracle.state(aid)
            for t in self.ir.transitions:
                if state in t.sources:
                    out += [(t, aid, i) for i in range(N_ACCOUNTS)
                            if any(self.oracle.has_role(self.accounts[i], r) for r in t.by)]
        return out

    # -- a batch ---------------------------------------------------------------------------------
    @rule(data=st.data(), size=st.integers(1, 10))
    def batch(self, data: st.DataObject, size: int) -> None:
        submitted: dict[bytes, tuple[PendingOp, str, int, tuple[Any, ...]]] = {}
        for _ in range(size):
            op, sender, args = self.draw_op(data)
            kind, value = outcome(getattr(self.chain, op), self.keys.signer(self.accounts[sender]),
                                  *args)
            if kind != "ok":
                # refused before anything was signed: nothing sent, nothing changed, so the
                # interpreter says the same wherever the call would have stood in the block
                assert (kind, value) == outcome(getattr(self.oracle, op), self.accounts[sender],
                                                *args), f"{op}{args} by account {sender}"
                event(f"refused before signing: {kind}")
                continue
            assert isinstance(value, PendingOp)
            submitted[value.tx_hash] = (value, op, sender, args)
        while self.backend.pending():
            block = self.backend.produce_block()
            for tx_hash in block.tx_hashes:  # the block's order, which the interpreter follows
                pending, op, sender, args = submitted.pop(tx_hash)
                expected = outcome(getattr(self.oracle, op), self.accounts[sender], *args)
                actual = outcome(self.chain.result, pending)
                assert actual == expected, f"{op}{args} by account {sender} in block order"
                event(_label(op, expected))
        assert not submitted


class PaperBatched(Batched):
    @initialize(cls=st.sampled_from([Dataset, Model, "Loop"]))
    def init(self, cls: Any) -> None:
        self.start(_two_sources() if cls == "Loop" else cls)


class RandomBatched(Batched):
    @initialize(cls=lifecycles(max_states=5, max_roles=3))
    def init(self, cls: Any) -> None:
        self.start(cls)


def _on(layout: str, base: type[Batched] = PaperBatched) -> Any:
    return type(f"{base.__name__}_{layout}", (base,), {"layout": layout}).TestCase


_batched = settings(_settings, max_examples=8, stateful_step_count=7)
TestBatchedRegistry = _on("registry")
TestBatchedRegistry.settings = _batched
TestBatchedFactory = _on("factory")
TestBatchedFactory.settings = _batched
TestBatchedClone = _on("clone")
TestBatchedClone.settings = _batched


def _long() -> settings:
    return settings(_settings, max_examples=40 if os.environ.get("CI") else 150,
                    stateful_step_count=12)


@pytest.mark.slow
class TestBatchedRegistryLong(_on("registry")):  # type: ignore[misc]
    settings = _long()


@pytest.mark.slow
class TestBatchedFactoryLong(_on("factory")):  # type: ignore[misc]
    settings = _long()


@pytest.mark.slow
class TestBatchedCloneLong(_on("clone")):  # type: ignore[misc]
    settings = _long()


@pytest.mark.slow
class TestRandomBatchedLong(_on("registry", RandomBatched)):  # type: ignore[misc]
    """Random lifecycles (each compiled: ~1.3 s), batched, on the registry layout."""

    settings = settings(_settings, max_examples=15 if os.environ.get("CI") else 60,
                        stateful_step_count=10)


# -- the two bugs, by example ---------------------------------------------------------------------
def _two_sources() -> type[Artefact]:
    """An approval transition with two source states: its state cannot be inferred from the
    transition alone."""

    class Loop(Artefact):
        r = Role()
        a = State(initial=True, by=r)
        b = State()
        c = State(final=True)
        go = a.to(b, by=r)
        back = b.to(a, by=r)
        ok = (a | b).to(c, by=r, approvals=2)
        stop = (a | b).to(c, by=ADMIN)

    return Loop


@pytest.fixture(params=LAYOUTS)
def loop(request: Any) -> tuple[Any, ...]:
    keys = KeyRing.from_seed("batched", 4)
    admin, x, y, z = keys.addresses
    backend = PyEVMBackend(funded=keys.addresses)
    ir = build_ir(_two_sources())
    client = LifecycleClient.deploy(backend, compile_layout(ir, request.param), keys.signer(admin))
    oracle = Interpreter(ir, admin)
    for who in (x, y, z):
        client.grant(keys.signer(admin), "r", who, DOMAINS[0])
        oracle.grant(admin, "r", who, DOMAINS[0])
    return keys, backend, client, oracle


def test_approval_result_is_as_of_its_own_receipt(loop: tuple[Any, ...]) -> None:
    """An approval that did not fire reports the state and version it saw, not a later one:
    in one block go (a -> b), approve, back (b -> a), approve, stop (-> c)."""
    keys, backend, client, oracle = loop
    _admin, x, y, z = keys.addresses
    aid = client.register(keys.signer(x), b"\x01" * 32)
    oracle.register(x, b"\x01" * 32)
    client.automine = False
    steps = [(x, "go"), (y, "ok"), (x, "back"), (z, "ok"), (keys.addresses[0], "stop")]
    ops = [client.fire(keys.signer(who), t, aid) for who, t in steps]
    assert len(backend.produce_block().tx_hashes) == len(steps)
    results = [client.result(op) for op in ops]
    assert results == [oracle.fire(who, t, aid) for who, t in steps]
    assert results[1] == StepResult(False, 1, 2, 2, "b")
    assert results[3] == StepResult(False, 1, 2, 3, "a")
    assert client.state(aid) == "c"  # the later view differs from both approvals' results


def test_approval_result_in_a_later_block_is_unchanged(loop: tuple[Any, ...]) -> None:
    keys, backend, client, _oracle = loop
    _admin, x, y, z = keys.addresses
    aid = client.register(keys.signer(x), b"\x02" * 32)
    client.fire(keys.signer(x), "go", aid)
    client.automine = False
    first = client.fire(keys.signer(y), "ok", aid)
    backend.produce_block()
    client.fire(keys.signer(z), "ok", aid)  # fires in the next block
    backend.produce_block()
    assert client.result(first) == StepResult(False, 1, 2, 2, "b")
    assert client.state(aid) == "c" and client.version(aid) == 3


@pytest.mark.parametrize("value", [SHORT, LONG, "0x" + "11" * 32],
                         ids=["31-bytes", "33-bytes", "hex-str"])
@pytest.mark.parametrize("where", ["salt", "digest", "inputs[0]", "artefact", "domain"])
def test_bad_bytes32_refused_before_signing(
    loop: tuple[Any, ...], where: str, value: Any
) -> None:
    """A bytes32 of the wrong length (or not bytes) is InvalidArgument naming the argument and
    its length, from the client before anything is sent and from the interpreter alike."""
    keys, backend, client, oracle = loop
    admin, x, _y, _z = keys.addresses
    salt = b"\x04" * 32
    calls = {
        "salt": ("register", x, (value, ZERO32, "", [])),
        "digest": ("register", x, (salt, value, "", [])),
        "inputs[0]": ("register", x, (salt, ZERO32, "", [value])),
        "artefact": ("fire", x, ("go", value)),
        "domain": ("grant", admin, ("r", x, value)),
    }
    op, sender, args = calls[where]
    nonce, head = backend.next_nonce(sender), backend.head().number
    with pytest.raises(InvalidArgument) as chain_err:
        getattr(client, op)(keys.signer(sender), *args)
    with pytest.raises(InvalidArgument) as oracle_err:
        getattr(oracle, op)(sender, *args)
    text = str(chain_err.value)
    assert text == str(oracle_err.value)
    assert f"argument {where} must be exactly 32 bytes" in text
    got = f"got {len(value)} bytes" if isinstance(value, bytes) else f"got {type(value).__name__}"
    assert got in text and "pass a 32-byte value" in text
    assert backend.next_nonce(sender) == nonce and backend.head().number == head
    assert not backend.pending()


@pytest.mark.parametrize("op", ["grant", "revoke"])
def test_bad_addresses_refused_before_signing(loop: tuple[Any, ...], op: str) -> None:
    keys, backend, client, oracle = loop
    admin, x, *_ = keys.addresses
    extra = (DOMAINS[0],) if op == "grant" else ()
    for account, words in [
        ("0x123", "must be an address"),
        ("0x" + "zz" * 20, "must be an address"),
        (x[2:], "must be an address"),  # no 0x
        (_bad_checksum(x), "fails its EIP-55 checksum"),
        (b"\x01" * 20, "must be an address"),
    ]:
        with pytest.raises(InvalidArgument, match=words) as chain_err:
            getattr(client, op)(keys.signer(admin), "r", account, *extra)
        with pytest.raises(InvalidArgument) as oracle_err:
            getattr(oracle, op)(admin, "r", account, *extra)
        assert str(chain_err.value) == str(oracle_err.value)
        assert "argument account" in str(chain_err.value)
    assert not backend.pending() and backend.next_nonce(admin) == backend.nonce(admin)
    # all lower case, all upper case and the correct checksum are all accepted
    for account in (x.lower(), "0x" + x[2:].upper(), x):
        getattr(client, op)(keys.signer(admin), "r", account, *extra)
        getattr(oracle, op)(admin, "r", account, *extra)
    assert client.snapshot() == oracle.snapshot()


@pytest.mark.parametrize("role", [1.0, True, None, -1, 2, 256])
def test_bad_role_refused_before_signing(loop: tuple[Any, ...], role: Any) -> None:
    keys, backend, client, oracle = loop
    admin, x, *_ = keys.addresses
    with pytest.raises(InvalidArgument) as chain_err:
        client.grant(keys.signer(admin), role, x, DOMAINS[0])
    with pytest.raises(InvalidArgument) as oracle_err:
        oracle.grant(admin, role, x, DOMAINS[0])
    assert str(chain_err.value) == str(oracle_err.value)
    assert not backend.pending()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_call_enabled_by_an_earlier_grant_in_its_block_has_gas_to_succeed(layout: str) -> None:
    """Found by the batched machine: a registration whose estimate reverts (no role yet) but that
    is mined after the grant giving the role must get gas enough to succeed, even where it deploys
    an artefact contract (factory: 1.82M gas), not end out of gas."""
    keys = KeyRing.from_seed("grant-then-register", 2)
    admin, lab = keys.addresses
    backend = PyEVMBackend(funded=keys.addresses)
    c = LifecycleClient.deploy(backend, compile_layout(build_ir(Dataset), layout),
                               keys.signer(admin), layout=layout)
    c.automine = False
    grant = c.grant(keys.signer(admin), "dataset_admin", lab)
    reg = c.register(keys.signer(lab), b"\1" * 32, b"\2" * 32, "ipfs://x")
    block = backend.produce_block()
    assert block.tx_hashes == (grant.tx_hash, reg.tx_hash)
    c.result(grant)
    aid = c.result(reg)
    assert c.state(aid) == "collected" and c.version(aid) == 1
