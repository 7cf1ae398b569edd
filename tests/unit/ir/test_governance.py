"""Consortium governance in the DSL, the IR and the reference interpreter (no chain)."""

from __future__ import annotations

import pytest
from eth_utils.address import to_checksum_address

from proml_sim import Artefact, Consortium, Interpreter, Role, State, build_ir
from proml_sim.errors import (
    AlreadyVoted,
    DomainRoleNotAllowed,
    ForeignAccount,
    InvalidArgument,
    InvalidDefinition,
    InvalidProposal,
    NotDomainAdmin,
    ProposalClosed,
    QuorumNotReached,
    RoleNotAllowed,
    SeparationOfDuty,
)
from proml_sim.ir import LifecycleIR
from proml_sim.lifecycles import SingleAdminDataset as Dataset  # the single-admin design

A = [to_checksum_address(f"0x{i + 1:040x}") for i in range(8)]
D = [bytes([0xD0 + i]) * 32 for i in range(4)]
Z = "0x" + "00" * 20


class Gov(Artefact):
    governance = Consortium(quorum=2)
    trainer = Role()
    verifier = Role()
    draft = State(initial=True, by=trainer)
    verified = State(final=True)
    train = draft.to(draft, by=trainer)
    verify = draft.to(verified, by=verifier, approvals=2, count="domains",
                      separate_domain_from=train)


def three_domains() -> Interpreter:
    """Founder D0 (A0), then D1 (admin A1) and D2 (admin A2), all roles allowed."""
    i = Interpreter(build_ir(Gov), A[0], D[0])
    i.execute(A[7], i.propose(A[0], "add_domain", D[1], A[1], 0b111))
    pid = i.propose(A[1], "add_domain", D[2], A[2], 0b111)
    i.vote(A[0], pid)
    i.execute(A[7], pid)
    return i


def test_consortium_is_validated_at_class_definition() -> None:
    with pytest.raises(InvalidDefinition, match=r"quorum=0\) is impossible"):
        type("Bad", (Artefact,), {"g": Consortium(quorum=0), "s": State(initial=True, final=True)})
    with pytest.raises(InvalidDefinition, match="2 Consortium declarations"):
        type("Bad2", (Artefact,), {"g": Consortium(quorum=1), "h": Consortium(quorum=2),
                                   "s": State(initial=True, final=True)})
    with pytest.raises(InvalidDefinition, match="separate_domain_from names 'nope'"):
        s, e = State(initial=True), State(final=True)
        r = Role()
        type("Bad3", (Artefact,), {"r": r, "s": s, "e": e,
                                   "t": s.to(e, by=r, separate_domain_from="nope")})


def test_a_subclass_inherits_its_bases_consortium() -> None:
    # a researcher's variant of the paper's Model (k = 3) keeps its governance; a subclass
    # that declares its own quorum overrides it
    from proml_sim.lifecycles import Model

    strict = type("Strict", (Model,), {"verify": Model.trained.to(
        Model.verified, by=Model.verifier, approvals=3, count="domains", evidence=True,
        separate_from=Model.train, separate_domain_from=Model.train)})
    ir = build_ir(strict)
    assert ir.consortium is not None and ir.consortium.quorum == 2
    assert ir.transition("verify").approvals == 3
    assert build_ir(type("Q3", (Model,), {"g": Consortium(quorum=3)})).consortium.quorum == 3


def test_ir_carries_consortium_and_keeps_single_admin_fingerprints() -> None:
    ir = build_ir(Gov)
    assert ir.consortium is not None and ir.consortium.quorum == 2
    assert LifecycleIR.from_json(ir.canonical_json()) == ir
    assert '"consortium":{"quorum":2}' in ir.canonical_json()
    assert ir.transition("verify").separate_domain_from == ("train",)
    single = build_ir(Dataset)
    assert "consortium" not in single.canonical_json()
    assert "separate_domain_from" not in single.canonical_json()
    assert LifecycleIR.from_json(single.canonical_json()) == single


def test_a_consortium_needs_a_founding_domain() -> None:
    with pytest.raises(InvalidProposal, match="founding domain"):
        Interpreter(build_ir(Gov), A[0])


def test_quorum_votes_and_expiry() -> None:
    i = three_domains()
    pid = i.propose(A[2], "set_roles", D[1], Z, 0b011)
    with pytest.raises(AlreadyVoted):
        i.vote(A[2], pid)
    with pytest.raises(QuorumNotReached):
        i.execute(A[7], pid)
    with pytest.raises(NotDomainAdmin):
        i.vote(A[5], pid)
    other = i.propose(A[0], "set_roles", D[2], Z, 0b001)
    assert i.vote(A[1], pid) == 2
    i.execute(A[7], pid)
    assert i.members[D[1]][0] == 0b011
    with pytest.raises(ProposalClosed):  # executing one proposal expires the others
        i.vote(A[1], other)
    with pytest.raises(ProposalClosed):
        i.execute(A[7], pid)


def test_domains_enrol_only_their_own_accounts_and_roles() -> None:
    i = three_domains()
    with pytest.raises(ForeignAccount):
        i.grant(A[1], "trainer", A[3], D[2])  # into another domain
    i.grant(A[1], "trainer", A[3], D[1])
    with pytest.raises(ForeignAccount):
        i.grant(A[2], "verifier", A[3], D[2])  # an account of another domain
    with pytest.raises(ForeignAccount):
        i.revoke(A[2], "trainer", A[3])
    pid = i.propose(A[0], "set_roles", D[2], Z, 0b001)
    i.vote(A[1], pid)
    i.execute(A[7], pid)
    with pytest.raises(DomainRoleNotAllowed):
        i.grant(A[2], "verifier", A[4], D[2])


def test_removal_drops_roles_and_pending_approvals() -> None:
    i = three_domains()
    i.grant(A[1], "trainer", A[3], D[1])
    i.grant(A[2], "verifier", A[4], D[2])
    i.grant(A[0], "verifier", A[5], D[0])
    aid = i.register(A[3], b"\x01" * 32)
    i.fire(A[3], "train", aid)
    i.grant(A[1], "verifier", A[6], D[1])
    with pytest.raises(SeparationOfDuty, match="trust domain that did train"):
        i.fire(A[6], "verify", aid)
    assert i.fire(A[4], "verify", aid).approvals == 1
    pid = i.propose(A[0], "remove_domain", D[2])
    i.vote(A[1], pid)
    i.execute(A[0], pid)
    assert i.effective_roles(A[4]) == 0 and i.has_role(A[4], "verifier")
    with pytest.raises(RoleNotAllowed):
        i.fire(A[4], "verify", aid)
    result = i.fire(A[5], "verify", aid)
    assert not result.fired and result.approvals == 1
    with pytest.raises(NotDomainAdmin):  # the removed domain's admin lost its seat too
        i.propose(A[2], "set_roles", D[1], Z, 0)


def test_stolen_admin_key_is_rotated_by_quorum() -> None:
    i = three_domains()
    pid = i.propose(A[0], "rotate_admin", D[1], A[6])
    i.vote(A[2], pid)
    i.execute(A[7], pid)
    with pytest.raises(NotDomainAdmin):
        i.propose(A[1], "set_roles", D[1], Z, 0b111)  # the old (stolen) key
    i.grant(A[6], "trainer", A[3], D[1])  # the new key manages the domain


def test_single_admin_lifecycles_have_no_consortium() -> None:
    i = Interpreter(build_ir(Dataset), A[0])
    with pytest.raises(InvalidArgument, match="single-admin design"):
        i.propose(A[0], "add_domain", D[1], A[1], 1)


def test_diagrams_show_governance_and_domain_separation() -> None:
    from proml_sim.codegen.diagram import to_dot, to_mermaid

    ir = build_ir(Gov)
    assert "quorum 2" in to_mermaid(ir) and "quorum 2" in to_dot(ir)
    assert "not domain of train" in to_mermaid(ir)
    assert "quorum" not in to_mermaid(build_ir(Dataset))  # single-admin diagrams unchanged


def test_founder_roles_limit_the_founding_domain() -> None:
    class Narrow(Artefact):
        operator = Role()
        verifier = Role()
        governance = Consortium(quorum=2, founder_roles=[operator])
        a = State(initial=True, by=operator)
        b = State(final=True)
        go = a.to(b, by=verifier)

    ir = build_ir(Narrow)
    assert ir.consortium is not None and ir.consortium.founder_roles == ("operator",)
    assert LifecycleIR.from_json(ir.canonical_json()) == ir
    i = Interpreter(ir, A[0], D[0])
    i.grant(A[0], "operator", A[1], D[0])
    with pytest.raises(DomainRoleNotAllowed):  # the founder cannot seat its own verifiers
        i.grant(A[0], "verifier", A[1], D[0])
    assert i.effective_roles(A[0]) == 0  # the deployer's built-in admin bit is not allowed
    with pytest.raises(InvalidDefinition, match="founder_roles names"):
        type("Bad4", (Artefact,), {"g": Consortium(quorum=1, founder_roles=[Role()]),
                                   "s": State(initial=True, final=True)})


def test_governance_identifiers_are_reserved_for_dsl_names() -> None:
    """The registry declares DSL transition names beside the governance functions, storage,
    events, struct and parameters: those must be reserved (the factory declares no DSL name)."""
    import re

    from proml_sim.codegen import generate_vyper
    from proml_sim.dsl._names import GENERATED_NAMES
    from proml_sim.lifecycles import Model

    ir = build_ir(Model)
    src = generate_vyper(ir)
    declared = set(re.findall(r"^def (\w+)\(", src, re.M))
    declared |= set(re.findall(r"^(\w+): ", src, re.M))
    declared |= set(re.findall(r"^(?:event|interface|struct) (\w+):", src, re.M))
    declared |= {p for sig in re.findall(r"^def \w+\(([^)]*)\)", src, re.M)
                 for p in re.findall(r"(\w+):", sig)}
    other = {d for d in declared - {t.name for t in ir.transitions} - {"__init__"}
             if not d.startswith("_")}
    assert other <= GENERATED_NAMES, other - GENERATED_NAMES
