from __future__ import annotations

from typing import Any

from proml_sim.sim import World, record_stream


def stream_world(seed: int = 1, profile: Any = "consortium-fast", teams: int = 3,
                 rate: float = 1 / 20, horizon: float = 600.0, run_extra: float = 400.0,
                 regions: tuple[str, ...] = ("eu", "us", "asia"), **kw: Any) -> World:
    w = World(seed=seed, profile=profile, **kw)
    ps = [w.add_participant(f"t{i}", f"dom{i}", regions[i % len(regions)]) for i in range(teams)]
    w.setup(grants=[(p.name, "Model", r) for p in ps for r in ("operator", "developer")])
    ids = []
    for p in ps:
        mid = w.clients["Model"].register(p.signer, p.name.encode().ljust(32, b"\0"))
        w.clients["Model"].fire(p.signer, "train", mid, b"\1" * 32)
        ids.append(mid)
    w.mark_start()
    for p, mid in zip(ps, ids, strict=True):
        w.env.process(record_stream(w, p, mid, rate, horizon))
    w.run(horizon + run_extra)
    w.finish()
    w.test_ids = ids  # type: ignore[attr-defined]
    return w
