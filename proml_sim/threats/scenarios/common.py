"""Shared helpers for scenarios: small worlds of participants on the simulated chain."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from proml_sim.sim import World
from proml_sim.sim.monitor import outcome
from proml_sim.sim.world import Participant, SimTx


def small_world(seed: int, people: dict[str, tuple[str, str]],
                grants: Iterable[tuple[str, str, str]], profile: Any = "consortium-fast",
                **kw: Any) -> tuple[World, dict[str, Participant]]:
    """A world with ``people`` = {name: (domain, region)} and role ``grants``
    (name, lifecycle, role), set up and ready to run."""
    w = World(seed=seed, profile=profile, **kw)
    ps = {n: w.add_participant(n, d, r) for n, (d, r) in people.items()}
    w.setup(grants)
    w.mark_start()
    return w, ps


def outcome_of(world: World, tx: SimTx) -> str:
    """'ok', 'reverted:<Code>' or 'pending' for a transaction the world saw."""
    return outcome(tx)


def salt(text: str) -> bytes:
    return text.encode().ljust(32, b"\0")[:32]
