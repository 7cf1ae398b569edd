"""Hypothesis strategies: random *valid* DSL lifecycle classes (the differential and property
tests draw their lifecycles here, and so does ``proml mutate --coverage --random N``).

Needs hypothesis (the ``dev`` extra); nothing else in :mod:`proml_sim.ir` imports this module.
:func:`draw_lifecycles` gives a reproducible list of them outside a test.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

__all__ = ["draw_lifecycles", "lifecycles", "passable_proposal"]

from hypothesis import strategies as st

from proml_sim.dsl import ADMIN, Artefact, Consortium, Role, State, StateGroup
from proml_sim.ir.events import ZERO_ADDRESS

if TYPE_CHECKING:
    from proml_sim.ir.interpreter import Interpreter

_counter = itertools.count()


@st.composite
def lifecycles(
    draw: Any, max_states: int = 6, max_roles: int = 3, governance: bool = False
) -> type[Artefact]:
    """A random lifecycle class that passes validation.

    ``governance=True``: half of them declare a ``Consortium`` (quorum 1 to 3, maybe limiting the
    founding domain's roles), and transitions
    may carry domain-level separation of duty (``separate_domain_from``).  Off by default, so
    the draws of other users of this strategy are unchanged.

    Construction keeps it valid: every state i > 0 gets an edge from an earlier non-final state
    (reachable), every non-final state gets an edge to a later state (the last state is final, so
    every state can finish); then random extra transitions (self loops, several sources) with
    random roles, thresholds (accounts or domains), evidence and separation of duty.
    """
    n_states = draw(st.integers(2, max_states))
    n_roles = draw(st.integers(1, max_roles))
    finals = {n_states - 1} | set(
        draw(st.sets(st.integers(1, n_states - 1), max_size=max(0, n_states - 2)))
    )
    ns: dict[str, Any] = {}
    roles: list[Role] = []
    for i in range(n_roles):
        admin = draw(st.sampled_from([None, *roles]))
        role = Role(admin=admin)
        roles.append(role)
        ns[f"ro{i}"] = role
    role_choices = [*roles, ADMIN]
    reg_by = draw(st.one_of(st.none(), st.sampled_from(roles)))
    states = []
    for i in range(n_states):
        if i == 0:
            s = State(initial=True, by=reg_by, evidence=draw(st.booleans()))
        else:
            s = State(final=i in finals)
        states.append(s)
        ns[f"st{i}"] = s
    non_final = [i for i in range(n_states) if i not in finals]

    edges: list[tuple[list[int], int]] = []
    for i in range(1, n_states):
        src = draw(st.sampled_from([j for j in non_final if j < i]))
        edges.append(([src], i))
    for j in non_final:
        tgt = draw(st.integers(j + 1, n_states - 1))
        edges.append(([j], tgt))
    n_extra = draw(st.integers(0, 3))
    for _ in range(n_extra):
        srcs = draw(st.lists(st.sampled_from(non_final), min_size=1, max_size=3, unique=True))
        tgt = draw(st.integers(0, n_states - 1))
        edges.append((srcs, tgt))

    names = [f"t{k}" for k in range(len(edges))]
    for k, (srcs, tgt) in enumerate(edges):
        by = draw(st.lists(st.sampled_from(role_choices), min_size=1, max_size=2, unique=True))
        approvals = draw(st.sampled_from([1, 1, 1, 2, 3]))
        count: Literal["accounts", "domains"] = (
            "domains" if approvals > 1 and draw(st.booleans()) else "accounts")
        sod = draw(st.lists(st.sampled_from(names), max_size=1))
        dsod = draw(st.lists(st.sampled_from(names), max_size=1)) if governance else []
        group: State | StateGroup = states[srcs[0]]
        for src in srcs[1:]:
            group = group | states[src]
        ns[names[k]] = group.to(
            states[tgt], by=by, approvals=approvals, count=count,
            evidence=draw(st.booleans()), separate_from=sod, separate_domain_from=dsod,
        )
    if governance and draw(st.booleans()):
        founder = draw(st.one_of(
            st.none(), st.lists(st.sampled_from(role_choices), max_size=2, unique=True)))
        ns["governance"] = Consortium(quorum=draw(st.integers(1, 3)), founder_roles=founder)
    name = f"Random{next(_counter)}"
    return type(name, (Artefact,), ns)


def draw_lifecycles(n: int, seed: int = 0, *, governance: bool = False,
                    max_states: int = 6, max_roles: int = 3,
                    keep: Callable[[type[Artefact]], bool] | None = None
                    ) -> list[type[Artefact]]:
    """``n`` distinct random lifecycles (by IR fingerprint) drawn by :func:`lifecycles` with
    hypothesis seeded by ``seed`` (reproducible: no example database, derandomised draws);
    ``keep``: a filter a draw must pass (``proml mutate --coverage --random`` keeps those
    whose contracts a chain can deploy).

    Example: ``[c.__name__ for c in draw_lifecycles(2, seed=1)]`` is two ``RandomN`` names."""
    import contextlib
    import dataclasses

    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    from proml_sim.ir import build_ir

    found: dict[str, type[Artefact]] = {}
    refused: set[str] = set()

    class Enough(Exception):
        """Stops the draws once ``n`` distinct lifecycles are found."""

    @hypothesis_seed(seed)
    @settings(max_examples=max(20, 20 * n), database=None, phases=[Phase.generate],
              report_multiple_bugs=False, print_blob=False,
              deadline=None, suppress_health_check=list(HealthCheck))
    @given(lifecycles(max_states=max_states, max_roles=max_roles, governance=governance))
    def collect(lc: type[Artefact]) -> None:
        # by structure: the drawn class names all differ
        fp = dataclasses.replace(build_ir(lc), name="R").fingerprint()
        if fp not in found and fp not in refused:
            if keep is None or keep(lc):
                found[fp] = lc
            else:
                refused.add(fp)
        if len(found) >= n:  # (hypothesis replays the last draw: it must raise again)
            raise Enough

    with contextlib.suppress(Enough):
        collect()
    if len(found) < n:
        raise ValueError(f"drew only {len(found)} distinct lifecycles of {n}; ask for fewer")
    return list(found.values())


def passable_proposal(
    data: st.DataObject, gov: Interpreter, candidates: Sequence[str],
    new_domains: Sequence[bytes], n_roles: int,
) -> tuple[str, str, bytes, str, int]:
    """A governance proposal that can pass, drawn against ``gov`` (the reference interpreter,
    which holds the consortium as it stands): a member domain's admin proposes a new domain
    (an id of ``new_domains`` never used) with a fresh admin account, the removal of a member
    (while more than one is left), the rotation of a member's admin key to a fresh account,
    or new roles for a member.  Fresh means a ``candidates`` account no domain has bound
    (neither enrolled nor a domain's admin).  Random proposals alone rarely pass, and the
    passing ones are what the differential and threat properties need.

    Returns ``(kind, proposer, domain, new admin or the zero address, role mask)``; the
    proposer is an address.  Used by the differential lock-step tests and by the threat
    property suite (``proml mutate``), so both drive governance by the same rule.
    """
    admins = [a for _roles, a in gov.members.values()]
    bound = {*admins, *gov.domains}
    fresh = [a for a in candidates if a not in bound]
    unused = [d for d in new_domains if d not in gov.used]
    kinds = ["set_roles", *(["remove_domain"] if len(gov.members) > 1 else []),
             *(["add_domain"] if fresh and unused else []),
             *(["rotate_admin"] if fresh else [])]
    kind = data.draw(st.sampled_from(kinds), label="kind")
    proposer = data.draw(st.sampled_from(admins), label="proposer")
    domain = data.draw(st.sampled_from(unused if kind == "add_domain" else list(gov.members)),
                       label="domain")
    who = (data.draw(st.sampled_from(fresh), label="new admin")
           if kind in ("add_domain", "rotate_admin") else ZERO_ADDRESS)
    roles = data.draw(st.integers(0, (1 << n_roles) - 1), label="roles")
    return kind, proposer, domain, who, roles
