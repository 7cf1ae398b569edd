"""Ready-made scenarios: many teams recording provenance on one chain, and the simulator's own
benchmark (transitions/s, simulated seconds per wall second, growth with size)."""

from __future__ import annotations

import math
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proml_sim.ir import MAX_DOMAINS
from proml_sim.procs import process_pool
from proml_sim.progress import progress
from proml_sim.sim.actors import record_stream
from proml_sim.sim.monitor import Monitor
from proml_sim.sim.network import REGIONS
from proml_sim.sim.profiles import ChainProfile
from proml_sim.sim.world import Participant, World

#: Simulated time runs in this many slices, so that its progress can be shown.
SLICES = 100


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
        if self.teams > MAX_DOMAINS:  # refused before a key is made, not at the 257th domain
            raise ValueError(f"teams must be <= {MAX_DOMAINS}: each team is a trust domain of "
                             f"the consortium Model, which holds at most {MAX_DOMAINS} member "
                             f"domains (got {self.teams})")


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
    try:
        w = World(seed=sc.seed, profile=sc.profile, engine=sc.engine, monitor=monitor,
                  rpc_url=sc.rpc_url, gas_estimates=sc.gas_estimates)
        ps, ids = prepare_teams(w, sc.teams)
        setup_rss = _peak_rss_mb()
        horizon = sc.hours * 3600
        for p, mid in zip(ps, ids, strict=True):
            w.env.process(record_stream(w, p, mid, sc.per_hour / 3600, horizon))
        t0 = time.perf_counter()
        # in slices, to report simulated time; the same events run in the same order either
        # way; then drain: blocks go on until every row is complete (nothing censored)
        with progress("simulating", total=round(horizon), unit="simulated s") as bar:
            for k in range(1, SLICES + 1):
                w.run(horizon * k / SLICES, drain=k == SLICES)
                bar.update(round(min(w.env.now, horizon)))
        w.finish()
    except BaseException:
        kept = monitor.abort()
        if kept is not None:
            print(f"proml: the run stopped early; the {monitor.count} row(s) it recorded are "
                  f"kept in {kept}", file=sys.stderr)
        raise
    wall = time.perf_counter() - t0
    stats: dict[str, Any] = {
        "transactions": monitor.count, "blocks": w.stats["blocks"],
        "orphaned_blocks": w.stats["orphaned"], "reorged_txs": w.stats["reorged_txs"],
        "wall_s": round(wall, 3), "simulated_s": round(w.env.now, 1),
        "tx_per_wall_s": round(monitor.count / wall, 1) if wall else None,
        "sim_s_per_wall_s": round(w.env.now / wall, 1) if wall else None,
        "peak_rss_mb": _peak_rss_mb(), "setup_rss_mb": setup_rss,
    }
    if keep_rows and monitor.rows:
        l1 = [float(r["l1_s"]) for r in monitor.rows if r["l1_s"] is not None]
        l12 = [float(r["l12_s"]) for r in monitor.rows if r["l12_s"] is not None]
        if l1:
            stats["l1_median_s"] = round(statistics.median(l1), 2)
        if l12:
            stats["l12_median_s"] = round(statistics.median(l12), 2)
    return w, stats


def _peak_rss_mb() -> float:
    """This process's peak resident set size so far (MB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _bench_point(sc: StreamScenario) -> dict[str, Any]:
    """One benchmark point; its rows stream to a temporary CSV file (as in long runs)."""
    with tempfile.TemporaryDirectory(prefix="proml-sim-bench-") as tmp:
        _, st = run_streams(sc, rows_csv=Path(tmp) / "rows.csv", keep_rows=False)
    return st


def _loglog_slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log(y) against log(x) (1.0 = linear growth)."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len(pts) < 2:
        return float("nan")
    mx = statistics.mean(p[0] for p in pts)
    my = statistics.mean(p[1] for p in pts)
    den = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / den if den else float("nan")


def _linear_slope(xs: list[float], ys: list[float]) -> float:
    if len(xs) < 2:
        return float("nan")
    mx, my = statistics.mean(xs), statistics.mean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else float(
        "nan")


def simulator_bench(sizes: tuple[int, ...] = (500, 1000, 2000, 4000), profile: str =
                    "consortium-fast", teams: int = 20, seed: int = 0, engine: str = "pyevm",
                    *, per_hour: float = 60.0, rpc_url: str | None = None,
                    isolate: bool = True) -> dict[str, Any]:
    """Time scenarios of growing size (target transitions in ``sizes``) on one profile.

    Reports per point transitions per wall second, simulated seconds per wall second and peak
    memory (the process's peak RSS; ``setup_rss_mb`` is the peak before the measured run, after
    imports, engine creation and deployment); then the growth exponents of wall time and of
    the run's memory (peak minus set-up) against transitions, fitted on log-log scales (1.0 =
    linear, 0 = flat), and the memory added per 1,000 transitions.  Rows stream to a temporary
    CSV file.  With ``isolate`` (the default) every point runs in a fresh process, so points do
    not share caches or memory.
    """
    from proml_sim.chain.engines import ENGINES

    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "rpc" and not rpc_url:
        raise ValueError("engine 'rpc' needs --rpc-url URL (an Ethereum JSON-RPC node)")
    if not sizes or min(sizes) < 1 or teams < 1 or per_hour <= 0:
        raise ValueError("sizes must be >= 1 transitions, teams >= 1 and per_hour > 0")
    # every point's scenario, checked before the first runs
    scenarios = [StreamScenario(profile, teams, n / (teams * per_hour), per_hour, seed, engine,
                                rpc_url) for n in sizes]
    points = []
    with progress("simulator bench", total=len(sizes), unit="points") as bar:
        for n, sc in zip(sizes, scenarios, strict=True):
            bar.update(description=f"simulator bench: {n} transitions")
            if isolate:
                with process_pool(1) as pool:  # spawned; stops at once on Ctrl-C
                    st = pool.submit(_bench_point, sc).result()
            else:
                st = _bench_point(sc)
            st["run_rss_mb"] = round(st["peak_rss_mb"] - st["setup_rss_mb"], 1)
            points.append({"target": n, **st})
            bar.advance()
    txs = [float(p["transactions"]) for p in points]
    walls = [float(p["wall_s"]) for p in points]
    run_mb = [float(p["run_rss_mb"]) for p in points]
    def fit(v: float, digits: int) -> float | None:  # None (not NaN) from a single point
        return None if math.isnan(v) else round(v, digits)

    return {"profile": profile, "engine": engine, "teams": teams, "per_hour": per_hour,
            "isolated": isolate, "points": points,
            "growth_exponent": fit(_loglog_slope(txs, walls), 3),
            "memory_growth_exponent": fit(_loglog_slope(txs, run_mb), 3),
            "memory_mb_per_1k_transitions": fit(1000 * _linear_slope(txs, run_mb), 2)}
