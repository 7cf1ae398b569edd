"""Ready-made scenarios: many teams recording provenance on one chain, and the simulator's own
benchmark (transitions/s, simulated seconds per wall second, growth with size)."""

from __future__ import annotations

import math
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proml_sim.sim.actors import record_stream
from proml_sim.sim.monitor import Monitor
from proml_sim.sim.network import REGIONS
from proml_sim.sim.profiles import ChainProfile
from proml_sim.sim.world import Participant, World


@dataclass(frozen=True)
class StreamScenario:
    """``teams`` teams (one trust domain each, spread over the regions), each recording new
    model versions at ``per_hour`` Poisson updates per hour for ``hours`` simulated hours."""

    profile: str | ChainProfile = "ethereum-pos"
    teams: int = 10
    hours: float = 1.0
    per_hour: float = 30.0
    seed: int = 0
    engine: str = "pyevm"
    rpc_url: str | None = None
    gas_estimates: str = "exact"

    def __post_init__(self) -> None:
        if self.teams < 1 or self.hours <= 0 or self.per_hour <= 0:
            raise ValueError("teams must be >= 1, hours and per_hour > 0")


def prepare_teams(w: World, n: int) -> tuple[list[Participant], list[bytes]]:
    """Add ``n`` teams (one trust domain each, spread over the regions), set the world up with
    Model operator/developer roles, register each team's model and its first version before
    the measured period starts; return the teams and their model ids."""
    ps = [w.add_participant(f"team{i:03d}", f"domain{i:03d}", REGIONS[i % len(REGIONS)])
          for i in range(n)]
    w.setup(grants=[(p.name, "Model", r) for p in ps for r in ("operator", "developer")])
    model = w.clients["Model"]
    ids = []
    for p in ps:
        mid = model.register(p.signer, p.name.encode().ljust(32, b"\0"))
        model.fire(p.signer, "train", mid, b"\x01" * 32)
        ids.append(mid)
    w.mark_start()
    return ps, ids


def run_streams(sc: StreamScenario, rows_csv: str | Path | None = None,
                keep_rows: bool = True) -> tuple[World, dict[str, Any]]:
    """Run the scenario; rows stream to ``rows_csv`` when given.  Returns the world and stats."""
    monitor = Monitor(rows_csv, keep=keep_rows)
    w = World(seed=sc.seed, profile=sc.profile, engine=sc.engine, monitor=monitor,
              rpc_url=sc.rpc_url, gas_estimates=sc.gas_estimates)
    ps, ids = prepare_teams(w, sc.teams)
    horizon = sc.hours * 3600
    for p, mid in zip(ps, ids, strict=True):
        w.env.process(record_stream(w, p, mid, sc.per_hour / 3600, horizon))
    t0 = time.perf_counter()
    w.run(horizon + 20 * w.profile.block_time * 2)
    w.finish()
    wall = time.perf_counter() - t0
    stats: dict[str, Any] = {
        "transactions": monitor.count, "blocks": w.stats["blocks"],
        "orphaned_blocks": w.stats["orphaned"], "reorged_txs": w.stats["reorged_txs"],
        "wall_s": round(wall, 3), "simulated_s": round(w.env.now, 1),
        "tx_per_wall_s": round(monitor.count / wall, 1) if wall else None,
        "sim_s_per_wall_s": round(w.env.now / wall, 1) if wall else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if keep_rows and monitor.rows:
        l1 = [float(r["l1_s"]) for r in monitor.rows if r["l1_s"] != ""]
        l12 = [float(r["l12_s"]) for r in monitor.rows if r["l12_s"] != ""]
        if l1:
            stats["l1_median_s"] = round(statistics.median(l1), 2)
        if l12:
            stats["l12_median_s"] = round(statistics.median(l12), 2)
    return w, stats


def simulator_bench(sizes: tuple[int, ...] = (500, 1000, 2000, 4000), profile: str =
                    "consortium-fast", teams: int = 20, seed: int = 0, engine: str = "pyevm"
                    ) -> dict[str, Any]:
    """Time scenarios of growing size (target transitions in ``sizes``) on one profile.

    Reports transitions per wall second, simulated seconds per wall second, and the growth
    exponent of wall time against transitions (1.0 = linear), fitted on log-log scales.
    """
    points = []
    per_hour = 60.0
    for n in sizes:
        hours = n / (teams * per_hour)
        _, st = run_streams(StreamScenario(profile, teams, hours, per_hour, seed, engine),
                            keep_rows=False)
        points.append({"target": n, **st})
    xs = [math.log(p["transactions"]) for p in points]
    ys = [math.log(p["wall_s"]) for p in points]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    slope = (sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
             / sum((x - mx) ** 2 for x in xs)) if len(xs) > 1 else float("nan")
    return {"profile": profile, "engine": engine, "teams": teams, "points": points,
            "growth_exponent": round(slope, 3)}
