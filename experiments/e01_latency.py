"""E1: provenance latency L@1 and L@12 per block-production profile.

Teams in three regions record provenance updates (new model versions: ``Model.train`` with a
fresh digest) at Poisson times; each update is a signed transaction executed on the py-evm
engine in the block that includes it.  L@d is the time from submission until the submitter's
own node sees the transaction d blocks deep.  On ``ropsten-2022`` the medians must match the
paper's 16 s and 150 s within 15 %.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.common import ExperimentConfig, provenance, save_figure, write_csv, write_json
from proml_sim.progress import progress
from proml_sim.sim import PROFILES
from proml_sim.sim.scenario import StreamScenario, run_streams

#: (teams, simulated hours, updates per team per hour) per experiment profile
SIZES = {"smoke": (6, 3.0, 30.0), "paper": (12, 24.0, 30.0)}
TOLERANCE = 0.15


def run_profile(profile: str, seed: int, teams: int, hours: float, per_hour: float,
                engine: str = "pyevm", rpc_url: str | None = None
                ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    w, st = run_streams(StreamScenario(profile, teams, hours, per_hour, seed, engine, rpc_url))
    rows = w.monitor.rows
    l1 = [float(r["l1_s"]) for r in rows if r["l1_s"] is not None]
    l12 = [float(r["l12_s"]) for r in rows if r["l12_s"] is not None]
    stats = {
        "transactions": len(rows),
        "l1_median_s": st["l1_median_s"],
        "l12_median_s": st["l12_median_s"],
        "l1_p95_s": round(_q(l1, 0.95), 2),
        "l12_p95_s": round(_q(l12, 0.95), 2),
        "blocks": st["blocks"],
        "orphaned_blocks": st["orphaned_blocks"],
        "reorged_txs": st["reorged_txs"],
        "reverted": sum(1 for r in rows if str(r["outcome"]).startswith("reverted")),
    }
    return rows, stats


def _q(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def main(config: ExperimentConfig) -> dict[str, Any]:
    out = Path(config.out)
    teams, hours, per_hour = SIZES[config.profile]
    profiles = config.extra.get("profiles", list(PROFILES))
    engine = config.extra.get("engine", "pyevm")
    meta = provenance(config)
    all_rows: list[dict[str, Any]] = []
    latency: dict[str, Any] = {}
    samples: dict[str, tuple[list[float], list[float]]] = {}
    with progress("e01 latency", total=len(profiles), unit="profiles") as bar:
        for i, name in enumerate(profiles):
            bar.update(description=f"e01 latency: {name}")
            rows, stats = run_profile(name, config.seed + i, teams, hours, per_hour, engine,
                                      config.extra.get("rpc_url"))
            all_rows += rows
            latency[name] = stats
            samples[name] = ([float(r["l1_s"]) for r in rows if r["l1_s"] is not None],
                             [float(r["l12_s"]) for r in rows if r["l12_s"] is not None])
            bar.advance()
    ref = PROFILES["ropsten-2022"].reference or {}
    check = {}
    if "ropsten-2022" in latency:
        ours = latency["ropsten-2022"]
        for key, paper in (("l1_median_s", ref["l1_median_s"]),
                           ("l12_median_s", ref["l12_median_s"])):
            err = (ours[key] - paper) / paper
            check[key] = {"ours": ours[key], "paper": paper, "rel_error": round(err, 3),
                          "within_tolerance": abs(err) <= TOLERANCE}
    write_csv(out / "e01_latency.csv", all_rows, meta)
    result = {"latency": latency, "paper_check": check, "tolerance": TOLERANCE,
              "sizes": {"teams": teams, "hours": hours, "updates_per_team_hour": per_hour},
              "engine": engine}
    write_json(out / "e01_latency.json", {"meta": meta, **result})
    plot_cdf(samples, out / "e01_latency_cdf.png", ref)
    return {**result, "figures": ["e01_latency_cdf.png"]}


def plot_cdf(samples: dict[str, tuple[list[float], list[float]]], path: Path,
             ref: dict[str, float]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, idx, label, paper in ((axes[0], 0, "L@1", ref.get("l1_median_s")),
                                  (axes[1], 1, "L@12", ref.get("l12_median_s"))):
        for name, pair in samples.items():
            xs = sorted(pair[idx])
            if xs:
                ax.step(xs, [(i + 1) / len(xs) for i in range(len(xs))], where="post",
                        label=name)
        if paper:
            ax.axvline(paper, color="k", linestyle="--", linewidth=1,
                       label=f"paper median (Ropsten) {paper:.0f} s")
        ax.axhline(0.5, color="grey", linewidth=0.5)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"{label}: submission to {label[2:]} confirmation(s) seen (s)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction of provenance records")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle("Provenance latency per block-production profile (simulated, py-evm)")
    fig.tight_layout()
    return save_figure(fig, path)
