from __future__ import annotations

from typing import Any

from proml_sim.sim import World, record_stream
from proml_sim.sim.scenario import prepare_teams


def stream_world(seed: int = 1, profile: Any = "consortium-fast", teams: int = 3,
                 rate: float = 1 / 20, horizon: float = 600.0, run_extra: float = 400.0,
                 **kw: Any) -> World:
    w = World(seed=seed, profile=profile, **kw)
    ps, ids = prepare_teams(w, teams)
    for p, mid in zip(ps, ids, strict=True):
        w.env.process(record_stream(w, p, mid, rate, horizon))
    w.run(horizon + run_extra, drain=False)
    w.finish()
    w.test_ids = ids  # type: ignore[attr-defined]
    return w
