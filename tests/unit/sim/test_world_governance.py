"""World set-up under consortium governance (the paper lifecycles' default): domains join by
proposal and quorum votes in real transactions, each domain's admin enrols its own
participants, and scenarios reach the right key through ``World.domain_admin``."""

from __future__ import annotations

import pytest

from proml_sim.errors import ForeignAccount
from proml_sim.ir import GovExecuted, GovProposed, GovVoted
from proml_sim.lifecycles import Model, SingleAdminModel
from proml_sim.sim import World
from proml_sim.sim.world import domain_id

PEOPLE = {"op": "client-co", "dev": "dev-co", "v1": "lab-1", "v2": "lab-2", "eve": "eve-co"}
GRANTS = [("op", "Model", "operator"), ("dev", "Model", "developer"),
          ("v1", "Model", "verifier"), ("v2", "Model", "verifier")]


@pytest.fixture(scope="module")
def world() -> World:
    w = World(seed=5, profile="consortium-fast", lifecycles=[Model])
    for name, dom in PEOPLE.items():
        w.add_participant(name, dom, "eu")
    w.allow("eve", "Model", "auditor")  # admitted, allowed auditor, nobody enrolled yet
    w.setup(grants=GRANTS)
    w.mark_start()
    return w


def test_domains_join_by_quorum_and_enrol_their_own_accounts(world: World) -> None:
    m = world.clients["Model"]
    snap = m.snapshot()
    domains = ["client-co", "dev-co", "lab-1", "lab-2", "eve-co"]
    assert {domain_id(d) for d in domains} == set(snap.members)
    for d in domains:  # each domain's admin is its own dedicated participant
        allowed, admin = snap.members[domain_id(d)]
        assert admin == world.domain_admin(d).address and world.domain_admin(d).domain == d
        assert world.domain_admin(d).name == f"admin@{d}"
    # the founder (first domain granted) deployed; the others were admitted one by one, each
    # by as many member votes as the quorum (2) asked for at that time
    events = m.events()
    proposed = [e for e in events if isinstance(e, GovProposed)]
    executed = [e for e in events if isinstance(e, GovExecuted) and e.id > 0]
    # first the founder, alone, narrows its own roles (set_roles: kind 4) to what it needs
    assert (proposed[0].kind, proposed[0].domain) == (4, domain_id("client-co"))
    assert snap.members[domain_id("client-co")][0] == m.ir.role("operator").bit
    assert [e.domain for e in proposed[1:]] == [domain_id(d) for d in domains[1:]]
    assert {e.kind for e in proposed[1:]} == {1} and len(executed) == len(proposed) == 5
    votes = [sum(1 for e in events if isinstance(e, GovVoted) and e.id == p.id)
             for p in proposed]
    assert votes == [1, 1, 2, 2, 2]  # the founder alone admits the second member, then 2 of n
    assert snap.members[domain_id("lab-1")][0] == m.ir.role("verifier").bit  # only its roles
    for name, _, role in GRANTS:
        p = world.participant(name)
        assert m.domain_of(p.address) == domain_id(p.domain)
        assert m.has_role(p.address, role)
        assert world.domain_admin(name).domain == p.domain != world.domain_admin(name).name


def test_no_key_of_the_world_mints_accounts_in_another_domain(world: World) -> None:
    m = world.clients["Model"]
    eve = world.participant("eve")
    with pytest.raises(ForeignAccount):  # lab-1's admin cannot enrol into eve-co
        m.grant(world.domain_admin("v1").signer, "verifier", eve.address, domain_id("eve-co"))
    assert world.domain_admin("op", "Anchor") is world.admin  # single-admin contracts


def test_allowed_roles_are_enrolled_and_revoked_at_run_time_by_the_domain_admin(
        world: World) -> None:
    m = world.clients["Model"]
    eve, v1 = world.participant("eve"), world.participant("v1")
    out = {}

    def admin_work(w: World):  # type: ignore[no-untyped-def]
        tx = yield from w.send(w.domain_admin(eve), "Model", "grant", "auditor", eve.address,
                               domain_id(eve.domain))
        yield w.confirmed(tx, 1)
        out["granted"] = m.has_role(eve.address, "auditor")
        tx = yield from w.send(w.domain_admin(v1.address, "Model"), "Model", "revoke",
                               "verifier", v1.address)
        yield w.confirmed(tx, 1)
        out["revoked"] = not m.has_role(v1.address, "verifier")

    world.env.process(admin_work(world))
    world.run(120)
    assert out == {"granted": True, "revoked": True}


def test_single_admin_lifecycles_keep_one_admin_and_extra_registries_enrol_too() -> None:
    w = World(seed=6, profile="consortium-fast", lifecycles=[SingleAdminModel])
    for name, dom in PEOPLE.items():
        w.add_participant(name, dom, "eu")
    w.setup(grants=[(n, "SingleAdminModel", r) for n, _, r in GRANTS])
    assert w.domain_admin("v1") is w.admin  # no consortium lifecycle: the one admin
    s = w.clients["SingleAdminModel"]
    assert s.domain_of(w.participant("v2").address) == domain_id("lab-2")
    # a consortium registry added after set-up: founded by the deployer's domain, by votes
    extra = w.add_lifecycle("Extra", Model, [("dev", "developer"), ("v1", "verifier")],
                            deployer="op")
    assert extra.has_role(w.participant("v1").address, "verifier")
    assert w.domain_admin("op", "Extra").name == "op"  # the deployer founded it
    assert set(extra.snapshot().members) == {domain_id(d) for d in ("client-co", "dev-co",
                                                                    "lab-1")}
