"""E3: provenance overhead as a share of the ML workflow (the paper's "negligible" claim).

Projects run the paper's 9-step workflow with the step durations of
:class:`proml_sim.sim.StepDurations` (our stated assumptions: days for data collection and
labelling, hours for training and verification).  Each provenance step is a signed transaction;
the team waits until its own node sees it ``wait_depth`` blocks deep before the next step.  The
overhead is the total waiting time over the project's duration; the cost is the gas of all its
transactions at stated gas prices.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from experiments.common import ExperimentConfig, provenance, save_figure, write_csv, write_json
from experiments.e02_gas import ETH_USD, GAS_PRICES_GWEI
from proml_sim.progress import progress
from proml_sim.sim import StepDurations, World, build_projects, paper_workflow

PROFILES = ("ropsten-2022", "ethereum-pos", "consortium-fast")
DEPTHS = (1, 12)
#: projects per (profile, depth) and teams to draw them from
SIZES = {"smoke": (3, 10), "paper": (20, 30)}


def run(profile: str, depth: int, seed: int, n_projects: int, n_teams: int,
        durations: StepDurations, engine: str = "pyevm", rpc_url: str | None = None
        ) -> list[dict[str, Any]]:
    w = World(seed=seed, profile=profile, engine=engine, rpc_url=rpc_url)
    projects, grants = build_projects(w, n_teams=n_teams, n_projects=n_projects)
    w.setup(grants)
    procs = [w.env.process(paper_workflow(w, p, durations, wait_depth=depth)) for p in projects]
    horizon = 12 * durations.total_median()
    w.env.run(until=w.env.all_of(procs) | w.env.timeout(horizon))
    w.finish()
    rows = []
    for proc in procs:
        if not proc.triggered:
            raise RuntimeError(f"a project did not finish within {horizon:.0f} simulated s")
        s: dict[str, Any] = dict(proc.value or {})
        s.update(profile=profile, wait_depth=depth, seed=seed)
        rows.append(s)
    return rows


def main(config: ExperimentConfig) -> dict[str, Any]:
    out = Path(config.out)
    n_projects, n_teams = SIZES[config.profile]
    durations = StepDurations()
    engine = config.extra.get("engine", "pyevm")
    rows: list[dict[str, Any]] = []
    profiles = list(config.extra.get("e03_profiles", PROFILES))
    with progress("e03 overhead", total=len(profiles) * len(DEPTHS), unit="runs") as bar:
        for i, profile in enumerate(profiles):
            for depth in DEPTHS:
                bar.update(description=f"e03 overhead: {profile}, depth {depth}")
                rows += run(profile, depth, config.seed + 100 * i + depth, n_projects, n_teams,
                            durations, engine, config.extra.get("rpc_url"))
                bar.advance()
    price = GAS_PRICES_GWEI["typical 2025 (5 gwei)"]
    for r in rows:
        r["cost_eth"] = round(r["gas"] * price * 1e-9, 6)
        r["cost_usd"] = round(r["cost_eth"] * ETH_USD, 2)
        r["share_pct"] = round(100 * r["share"], 4)
    meta = provenance(config)
    write_csv(out / "e03_overhead.csv", rows, meta)
    summary: dict[str, Any] = {}
    for r in rows:
        key = f"{r['profile']}@{r['wait_depth']}"
        summary.setdefault(key, []).append(r)
    table = {
        key: {
            "projects": len(rs),
            "median_duration_days": round(statistics.median(r["duration_s"] for r in rs) / 86400,
                                          2),
            "median_wait_min": round(statistics.median(r["provenance_wait_s"] for r in rs) / 60,
                                     2),
            "median_share_pct": round(statistics.median(r["share_pct"] for r in rs), 4),
            "max_share_pct": round(max(r["share_pct"] for r in rs), 4),
            "median_tx": statistics.median(r["transactions"] for r in rs),
            "median_cost_usd": round(statistics.median(r["cost_usd"] for r in rs), 2),
        }
        for key, rs in summary.items()
    }
    assumptions = {
        "step_medians_h": {k: round(v / 3600, 2) for k, v in vars(durations).items()
                           if k not in ("sigma", "p_reject")},
        "sigma": durations.sigma, "p_reject": durations.p_reject,
        "gas_price_gwei": price, "eth_usd": ETH_USD,
    }
    result = {"overhead": table, "assumptions": assumptions, "engine": engine}
    write_json(out / "e03_overhead.json", {"meta": meta, **result})
    plot(table, out / "e03_overhead.png")
    return {**result, "rows": rows, "figures": ["e03_overhead.png"]}


def plot(table: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(table)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(keys, [table[k]["median_share_pct"] for k in keys], color="#4c72b0")
    for i, k in enumerate(keys):
        ax.text(i, table[k]["median_share_pct"], f"{table[k]['median_wait_min']:.1f} min",
                ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("provenance waiting / workflow duration (%)")
    ax.set_title("Provenance overhead of the 9-step workflow (profile @ confirmations waited)")
    ax.tick_params(axis="x", rotation=30, labelsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
