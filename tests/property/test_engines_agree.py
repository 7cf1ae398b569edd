"""Differential test of the engines: the same random sequences of signed lifecycle transactions
(the paper's Model and Dataset contracts, through the lifecycle client with ``automine=False``
and explicit gas, grouped into random blocks, reverts included) go to py-evm, revm and a real
node (anvil); every transaction's gas used, status, decoded events, revert reason and decoded
result, the blocks' composition, and the final lifecycle state must be identical."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proml_sim import compile_artefact
from proml_sim.chain import ChainBackend, KeyRing, PyEVMBackend, RevmBackend
from proml_sim.chain.client import LifecycleClient
from proml_sim.chain.rpc import RPCBackend

# chain mechanics under one admin (governance: test_differential, test_governance_chain)
from proml_sim.lifecycles import SingleAdminDataset as Dataset
from proml_sim.lifecycles import SingleAdminModel as Model

N_ACCOUNTS = 6
KEYS = KeyRing.from_seed("engines-agree", N_ACCOUNTS)
COMPILED = {"Model": compile_artefact(Model), "Dataset": compile_artefact(Dataset)}
DIGESTS = [b"\0" * 32, b"\x11" * 32, b"\x22" * 32]
# role grants that make most operations meaningful (the rest of the plan adds and revokes more)
SETUP = {  # (granter, role, account); accounts[1] registers
    "Model": [(0, "operator", 1), (0, "developer", 2), (0, "verifier", 3), (0, "verifier", 4)],
    "Dataset": [(0, "dataset_admin", 1), (1, "labeller", 2), (0, "dataset_admin", 3),
                (0, "operator", 4)],
}

plans = st.tuples(
    st.sampled_from(sorted(COMPILED)),
    st.lists(
        st.tuples(
            st.sampled_from(["fire", "fire", "fire", "grant", "revoke", "register"]),
            st.integers(0, N_ACCOUNTS - 1),  # sender
            st.integers(0, 2),  # artefact
            st.integers(0, 2),  # digest / role choice
            st.integers(0, 99),  # transition choice
            st.booleans(),  # close the block after this op
        ),
        min_size=3,
        max_size=30,
    ),
)


def _outcome(client: LifecycleClient, op: Any) -> tuple[str, Any]:
    try:
        return ("ok", client.result(op))
    except Exception as exc:  # compared by type and message
        return (type(exc).__name__, str(exc))


def run_plan(backend: ChainBackend, plan: tuple[str, list[Any]]) -> dict[str, Any]:
    name, ops = plan
    compiled = COMPILED[name]
    ir = compiled.ir
    assert ir is not None
    a = KEYS.addresses
    start = backend.head().number
    ts = backend.head().timestamp
    c = LifecycleClient.deploy(backend, compiled, KEYS.signer(a[0]), b"D0".ljust(32, b"\0"))
    for granter, role, i in SETUP[name]:
        c.grant(KEYS.signer(a[granter]), role, a[i], bytes([i]).ljust(32, b"\0"))
    ids = [c.register(KEYS.signer(a[1]), bytes([n + 1]) * 32, DIGESTS[1]) for n in range(3)]
    c.automine = False
    ts = backend.head().timestamp
    pending = []
    for op, sender, art, choice, which, close in ops:
        s = KEYS.signer(a[sender])
        if op == "fire":
            t = ir.transitions[which % len(ir.transitions)]
            if t.evidence:
                args = (DIGESTS[choice], "s3://x" * choice, [ids[art]] * choice)
                pending.append(c.fire(s, t.name, ids[art], *args, gas=400_000))
            else:
                pending.append(c.fire(s, t.name, ids[art], gas=200_000))
        elif op == "grant":
            role = ir.roles[1 + which % (len(ir.roles) - 1)].name
            pending.append(c.grant(s, role, a[choice + 3], DIGESTS[choice], gas=200_000))
        elif op == "revoke":
            role = ir.roles[1 + which % (len(ir.roles) - 1)].name
            pending.append(c.revoke(s, role, a[(sender + art) % N_ACCOUNTS], gas=200_000))
        else:
            pending.append(c.register(s, bytes([9 + choice]) * 32, DIGESTS[choice], gas=200_000))
        if close:
            ts += 12
            backend.produce_block(ts)
    ts += 12
    backend.produce_block(ts)
    assert not backend.pending()
    blocks = [backend.block(n) for n in range(start + 1, backend.head().number + 1)]
    txs = []
    for op in pending:
        r = backend.receipt(op.tx_hash)
        assert r is not None
        events = [c.codec.decode_log(log) for log in r.logs]
        txs.append((r.status, r.gas_used, r.revert_reason, events, _outcome(c, op)))
    return {
        "blocks": [[backend.receipt(h).gas_used for h in b.tx_hashes] for b in blocks],  # type: ignore[union-attr]
        "block_gas": [b.gas_used for b in blocks],
        "txs": txs,
        "events": c.events(),
        "state": c.snapshot(),
    }


def assert_agree(make: Callable[[], ChainBackend], plan: tuple[str, list[Any]]) -> None:
    reference = run_plan(PyEVMBackend(funded=KEYS.addresses), plan)
    ours = run_plan(make(), plan)
    for i, (mine, ref) in enumerate(zip(ours["txs"], reference["txs"], strict=True)):
        assert mine == ref, f"transaction {i} of {plan[1][i]!r}"
    assert ours == reference


_fast = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
_long = settings(
    max_examples=300 if os.environ.get("CI") else 1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@_fast
@given(plans)
def test_revm_agrees_with_py_evm(plan: tuple[str, list[Any]]) -> None:
    assert_agree(lambda: RevmBackend(funded=KEYS.addresses), plan)


@pytest.fixture(scope="module")
def anvil(anvil_url: str) -> RPCBackend:
    return RPCBackend(anvil_url, funded=KEYS.addresses)


def _on_anvil(anvil: RPCBackend, plan: tuple[str, list[Any]]) -> None:
    sid = anvil.snapshot()
    try:
        assert_agree(lambda: anvil, plan)
    finally:
        anvil.revert(sid)


@settings(_fast, max_examples=40)
@given(plan=plans)
def test_anvil_agrees_with_py_evm(anvil: RPCBackend, plan: tuple[str, list[Any]]) -> None:
    _on_anvil(anvil, plan)


@pytest.mark.slow
@_long
@given(plans)
def test_revm_agrees_with_py_evm_long(plan: tuple[str, list[Any]]) -> None:
    assert_agree(lambda: RevmBackend(funded=KEYS.addresses), plan)


@pytest.mark.slow
@settings(_long, max_examples=100 if os.environ.get("CI") else 300)
@given(plan=plans)
def test_anvil_agrees_with_py_evm_long(anvil: RPCBackend, plan: tuple[str, list[Any]]) -> None:
    _on_anvil(anvil, plan)
