"""Consortium governance on chain: a scripted lock-step run against the reference interpreter
passes on the generated contract (every layout) and catches each planted governance mutant."""

from __future__ import annotations

from typing import Any

import pytest

from proml_sim import Artefact, Consortium, Interpreter, Role, State, build_ir, compile_artefact
from proml_sim.chain import KeyRing, PyEVMBackend
from proml_sim.chain.client import LifecycleClient, compile_layout
from proml_sim.compiler import CompiledContract
from proml_sim.gas import measure_governance_gas
from proml_sim.ir import replay
from proml_sim.threats.mutants import build_mutant, governance_mutants


class Governed(Artefact):
    """Training and a 2-of-n by-domain verification, under a quorum of two domains."""

    governance = Consortium(quorum=2)
    trainer = Role()
    verifier = Role()
    draft = State(initial=True, by=trainer)
    verified = State(final=True)
    train = draft.to(draft, by=trainer)
    verify = draft.to(verified, by=verifier, approvals=2, count="domains",
                      separate_domain_from=train)


D = [bytes([0xD0 + i]) * 32 for i in range(3)]
ALL = 0b111

#: (sender, operation, arguments); an artefact argument "A" is the registered artefact
SCRIPT: list[tuple[int, str, tuple[Any, ...]]] = [
    (0, "propose", ("add_domain", D[1], 1, ALL)),
    (5, "execute", (1,)),  # one member: the founder alone is the quorum
    (0, "propose", ("add_domain", D[2], 2, ALL)),
    (5, "execute", (2,)),  # two members now: QuorumNotReached
    (1, "vote", (2,)),
    (5, "execute", (2,)),
    (1, "propose", ("set_roles", D[1], None, ALL)),
    (1, "vote", (3,)),  # AlreadyVoted (gov-double-vote accepts it)
    (5, "execute", (3,)),  # QuorumNotReached (gov-execute-before-quorum executes it)
    (1, "grant", ("trainer", 3, D[2])),  # ForeignAccount (gov-foreign-enrol binds it)
    (1, "grant", ("trainer", 3, D[1])),
    (2, "grant", ("verifier", 4, D[2])),
    (0, "grant", ("verifier", 5, D[0])),
    (1, "grant", ("verifier", 1, D[1])),
    (3, "register", (b"\x01" * 32,)),
    (3, "fire", ("train", "A")),
    (1, "fire", ("verify", "A")),  # SeparationOfDuty: D1 trained it
    (4, "fire", ("verify", "A")),  # D2 approves: 1 of 2
    (0, "propose", ("remove_domain", D[2], None, 0)),
    (1, "vote", (4,)),
    (0, "execute", (4,)),
    (4, "fire", ("verify", "A")),  # D2 removed: RoleNotAllowed
    (5, "fire", ("verify", "A")),  # D2's approval no longer counts: 1 of 2, not fired
]


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # compared by type and message
        return (type(exc).__name__, str(exc))


def lock_step(compiled: Any) -> str | None:
    """Run SCRIPT on ``compiled`` and on the interpreter; the first disagreement, or None."""
    ir = build_ir(Governed)
    keys = KeyRing.from_seed("governance", 6)
    accounts = list(keys.addresses)
    chain = LifecycleClient.deploy(PyEVMBackend(funded=accounts), compiled,
                                   keys.signer(accounts[0]), D[0])
    oracle = Interpreter(ir, accounts[0], D[0])
    artefact = b""
    for step, (sender, op, raw) in enumerate(SCRIPT):
        args = list(raw)
        if op == "propose":
            args[2] = accounts[args[2]] if args[2] is not None else "0x" + "00" * 20
        elif op == "grant":
            args[1] = accounts[args[1]]
        elif op == "fire":
            args[1] = artefact
        want = _outcome(getattr(oracle, op), accounts[sender], *args)
        got = _outcome(getattr(chain, op), keys.signer(accounts[sender]), *args)
        if want != got:
            return f"step {step} {op}{raw}: interpreter {want}, chain {got}"
        if op == "register":
            artefact = want[1]
    snap = chain.snapshot()
    if snap != oracle.snapshot():
        return "final snapshots differ"
    if replay(ir, chain.events()) != snap:
        return "the event log does not replay into the chain's state"
    return None


@pytest.mark.parametrize("layout", ["registry", "factory", "clone"])
def test_generated_contract_agrees_with_interpreter(layout: str) -> None:
    ir = build_ir(Governed)
    compiled: Any = compile_artefact(ir) if layout == "registry" else compile_layout(ir, layout)
    assert lock_step(compiled) is None


@pytest.mark.parametrize("mutant", governance_mutants(Governed), ids=lambda m: m.id)
def test_governance_mutant_is_killed(mutant: Any) -> None:
    compiled: CompiledContract = build_mutant(mutant, Governed)
    assert lock_step(compiled) is not None, f"{mutant.id} survived the scripted lock-step run"


def test_governance_gas_rows_are_real_and_above_the_lower_bound() -> None:
    rows = measure_governance_gas(layouts=("registry", "clone"))
    ops = [r["operation"] for r in rows]
    assert ops == ["gov_propose", "gov_vote", "gov_execute", "grant_role"] * 2
    for r in rows:
        assert r["status"] == "ok", r
        assert r["lower_bound"] <= r["gas"], r


def test_proof_codec_knows_the_governance_events() -> None:
    from proml_sim.lifecycles import Model
    from proml_sim.node.proofs import GOVERNANCE_EVENTS_ABI, LIFECYCLE_EVENTS_ABI

    def shape(es: list[Any]) -> list[Any]:
        return sorted((e["name"], [(i["name"], i["type"], bool(i["indexed"]))
                                   for i in e["inputs"]]) for e in es)

    compiled = [e for e in compile_artefact(Model).abi if e.get("type") == "event"]
    assert shape(LIFECYCLE_EVENTS_ABI + GOVERNANCE_EVENTS_ABI) == shape(compiled)
