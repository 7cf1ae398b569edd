"""Shared helpers for scenarios: small worlds of participants on the simulated chain."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, Literal

from proml_sim.dsl import Artefact, Role, State
from proml_sim.lifecycles import Model
from proml_sim.sim import World
from proml_sim.sim.monitor import outcome
from proml_sim.sim.world import Participant, SimTx

PAPER_MODEL = Model  # model_lifecycle's own class named Model shadows the name there


def small_world(seed: int, people: dict[str, tuple[str, str]],
                grants: Iterable[tuple[str, str, str]], profile: Any = "consortium-fast",
                allow: Iterable[tuple[str, str, str]] = (),
                **kw: Any) -> tuple[World, dict[str, Participant]]:
    """A world with ``people`` = {name: (domain, region)} and role ``grants``
    (name, lifecycle, role), set up and ready to run (``allow``: see :meth:`World.setup`)."""
    w = World(seed=seed, profile=profile, **kw)
    ps = {n: w.add_participant(n, d, r) for n, (d, r) in people.items()}
    w.setup(grants, allow=allow)
    w.mark_start()
    return w, ps


def outcome_of(world: World, tx: SimTx) -> str:
    """'ok', 'reverted:<Code>' or 'pending' for a transaction the world saw."""
    return outcome(tx)


def salt(text: str) -> bytes:
    return text.encode().ljust(32, b"\0")[:32]


# -- the verification threshold as a scenario parameter ---------------------------------------
@functools.cache
def model_lifecycle(approvals: int = 2, count: str = "domains") -> type[Artefact]:
    """The paper's Model lifecycle with ``verify`` needing ``approvals`` approvals counted by
    ``count`` ("domains" or "accounts"); (2, "domains") is the paper's own class."""
    if (approvals, count) == (2, "domains"):
        return PAPER_MODEL
    if approvals < 2 or count not in ("domains", "accounts"):
        raise ValueError(f"approvals={approvals}, count={count!r}: use approvals >= 2 and "
                         "count 'domains' or 'accounts' in the threat model's [parameters]")
    k = approvals
    mode: Literal["accounts", "domains"] = "accounts" if count == "accounts" else "domains"

    class Model(Artefact):  # the paper's name: the same lifecycle, the same events
        operator = Role()
        developer = Role()
        verifier = Role()
        auditor = Role()
        requested = State(initial=True, by=operator)
        trained = State()
        rejected = State()
        verified = State()
        delivered = State()
        audited = State(final=True)
        withdrawn = State(final=True)
        train = (requested | trained | rejected).to(trained, by=developer, evidence=True)
        verify = trained.to(verified, by=verifier, approvals=k, count=mode, evidence=True,
                            separate_from=train)
        reject = trained.to(rejected, by=verifier, evidence=True, separate_from=train)
        accept = verified.to(delivered, by=operator)
        audit = delivered.to(audited, by=auditor, evidence=True)
        withdraw = (requested | trained | rejected | verified | delivered).to(
            withdrawn, by=operator)

    return Model


def model_world(seed: int, people: dict[str, tuple[str, str]],
                grants: Iterable[tuple[str, str, str]], lifecycle: type[Artefact] = Model,
                **kw: Any) -> tuple[World, dict[str, Participant]]:
    """:func:`small_world` whose "Model" contract is ``lifecycle`` (a threshold variant from
    :func:`model_lifecycle`) instead of the paper's, with the Model grants made on it."""
    grants = list(grants)
    if lifecycle is Model:
        return small_world(seed, people, grants, **kw)
    from proml_sim.chain.client import LifecycleClient
    from proml_sim.compiler import compile_artefact
    from proml_sim.sim import domain_id

    w, ps = small_world(seed, people, [g for g in grants if g[1] != "Model"], **kw)
    assert w.admin is not None and w.backend is not None
    compiled = compile_artefact(lifecycle)
    client = LifecycleClient.deploy(w.backend, compiled, w.admin.signer, domain_id(w.admin.domain))
    for name, lc, role in grants:
        if lc == "Model":
            client.grant(w.admin.signer, role, ps[name].address, domain_id(ps[name].domain))
    w.clients["Model"] = client
    w.sim_clients["Model"] = LifecycleClient(w.gateway, compiled, client.address, automine=False)
    w.mark_start()
    return w, ps


def threshold_of(client: Any, transition: str = "verify") -> tuple[int, str]:
    """(k, count mode) of a transition of a deployed lifecycle, read from the lifecycle the
    contract was compiled from (what an attacker reads from the verified source)."""
    t = client.ir.transition(transition)
    return int(t.approvals), str(t.count)
