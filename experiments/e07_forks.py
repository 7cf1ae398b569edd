"""E7: adversarial forks: the double-spend race against Rosenfeld's exact analysis, then the
trade-off of attack success against provenance latency per confirmation policy (C1, C2).

Part 1 runs double-spend races through the simulator's own PoW block production
(:func:`proml_sim.sim.forks.run_races`: a ``PrivateBranch`` attacker in ``World``) for q = 0.1
and 0.3 and z = 0..10, and sets each measured rate beside Rosenfeld's exact value and the
Bitcoin paper's Poisson approximation (section 11).  Each point is an independent trial (its
own seed, derived from (seed, q, z)).  The check is stated honestly for 22 points: the 95 %
Wilson interval of each, the number of misses beside the number expected of a perfect
simulator and the binomial probability of at least that many, and the family-wise check
(Bonferroni: each interval at 1 - 0.05/22), which must contain every exact value.

Part 2 re-measures C1 (a private-branch attacker with share q removes records a consumer acted
on) per chain profile, q and confirmation policy (L@k or finalised), and C2 (equivocating
clique sealers across a partition; q = the equivocators' share of the sealers): attack success
per attempt (Wilson over the attempts of all seeds) against the consumer's latency (median,
bootstrap interval).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace
from pathlib import Path
from statistics import NormalDist
from typing import Any

from experiments.common import ExperimentConfig, provenance, save_figure, write_csv, write_json
from proml_sim.sim.forks import nakamoto, rosenfeld, run_races
from proml_sim.threats.catalogue import load_catalogue
from proml_sim.threats.metrics import bootstrap, wilson
from proml_sim.threats.scenarios.c_consensus import Equivocation, reorg_attack

QS = (0.1, 0.3)
ZS = tuple(range(11))
#: per experiment profile: races per (q, z) point; C1 seeds and simulated seconds of records;
#: C2 seeds.  The paper profile runs the issue's 10,000 races per point.
SIZES: dict[str, dict[str, int]] = {
    "smoke": {"races": 1_000, "c1_seeds": 2, "c1_records_s": 900, "c2_seeds": 4},
    "paper": {"races": 10_000, "c1_seeds": 10, "c1_records_s": 3_600, "c2_seeds": 20},
}
#: (profile, attacker shares, policies, block time or None for the profile's) for C1
C1_GRID: tuple[tuple[str, tuple[float, ...], tuple[str, ...], float | None], ...] = (
    ("ropsten-2022", (0.1, 0.3), ("L@1", "L@3", "L@12", "finalised"), 3.0),
    ("ethereum-pos", (0.3,), ("L@1", "L@12", "finalised"), None),
    ("poa-clique", (0.4,), ("L@1", "L@3", "finalised"), None),
)
#: C2: equivocating sealers (of 5) and the consumers' policies (the scenario's names)
C2_EQUIVOCATORS = (0, 1, 2)
C2_POLICIES = {"d1": "L@1", "d3": "L@3", "d12": "L@12", "finalised": "finalised",
               "checkpoint": "checkpoint"}


#: the family-wise error rate of the race check: with ``points`` intervals, each is taken at
#: level 1 - FAMILY_ALPHA / points (Bonferroni), so a correct simulator has every exact value
#: inside all of them with probability at least 1 - FAMILY_ALPHA
FAMILY_ALPHA = 0.05


def point_seed(seed: int, q: float, z: int) -> int:
    """The seed of one (q, z) point: derived from (seed, q, z), so points are independent
    trials (no common random numbers, no collisions between experiment seeds)."""
    digest = hashlib.sha256(f"e07-race/{seed}/{q!r}/{z}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def family_z(points: int, alpha: float = FAMILY_ALPHA) -> float:
    """The two-sided normal quantile for Bonferroni intervals: ``points`` intervals that all
    contain their true values with probability at least ``1 - alpha``."""
    return NormalDist().inv_cdf(1 - alpha / (2 * points))


def binom_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): how surprising ``k`` misses of ``n`` intervals are."""
    return min(1.0, sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))


def race_check(races: int, seed: int) -> list[dict[str, Any]]:
    """Measured catch-up rates beside Rosenfeld and Nakamoto, one row per (q, z): the 95 %
    Wilson interval and the family-wise (Bonferroni over all points) one."""
    zf = family_z(len(QS) * len(ZS))
    rows = []
    for q in QS:
        for z in ZS:
            wins, n, w = run_races(q, z, races, seed=point_seed(seed, q, z))
            est, fam = wilson(wins, n), wilson(wins, n, z=zf)
            exact = rosenfeld(q, z)
            assert est.lo is not None and est.hi is not None  # n >= 1
            assert fam.lo is not None and fam.hi is not None
            rows.append({"q": q, "z": z, "races": n, "wins": wins, "measured": est.value,
                         "lo": est.lo, "hi": est.hi, "fw_lo": fam.lo, "fw_hi": fam.hi,
                         "rosenfeld": round(exact, 6), "nakamoto": round(nakamoto(q, z), 6),
                         "contains_rosenfeld": bool(est.lo <= exact <= est.hi),
                         "fw_contains_rosenfeld": bool(fam.lo <= exact <= fam.hi),
                         "max_reorg_depth": w.stats["max_reorg_depth"]})
    return rows


def race_summary(race: list[dict[str, Any]], races: int) -> dict[str, Any]:
    """The honest statement of the race check: misses of the 95 % intervals against the number
    a perfect simulator would have, and the family-wise check that must hold."""
    points = len(race)
    misses = sum(not r["contains_rosenfeld"] for r in race)
    fw_misses = sum(not r["fw_contains_rosenfeld"] for r in race)
    return {"points": points, "races_per_point": races,
            "contain_rosenfeld": points - misses, "misses": misses,
            "expected_misses": round(0.05 * points, 2),
            "p_at_least_misses": round(binom_tail(misses, points, 0.05), 4),
            "p_no_miss_if_perfect": round(0.95**points, 4),
            "family_alpha": FAMILY_ALPHA,
            "family_level": round(1 - FAMILY_ALPHA / points, 6),
            "family_z": round(family_z(points), 4),
            "family_misses": fw_misses, "family_check": fw_misses == 0,
            "max_abs_error": max(abs(r["measured"] - r["rosenfeld"]) for r in race)}


def c1_grid(size: dict[str, int], seed: int) -> list[dict[str, Any]]:
    base = dict(load_catalogue()["C1"].parameters)
    rows = []
    for profile, shares, policies, block_time in C1_GRID:
        for q in shares:
            for pol in policies:
                # the attacker targets the policy it faces: it releases once records are that deep
                p = {**base, "profile": profile, "attacker_share": q, "policies": [pol],
                     "attack_policy": pol, "records_s": size["c1_records_s"],
                     "tail_s": 1_500 if profile == "ethereum-pos" else 300}
                p.pop("block_time", None)
                if block_time is not None:
                    p["block_time"] = block_time
                if profile != "ropsten-2022":
                    p.pop("stale_rate", None)  # the profile's own contest rate
                runs = [reorg_attack(seed + s, p) for s in range(size["c1_seeds"])]
                trials = sum(r["races"] for r in runs)
                hits = sum(r["policy"][pol]["successes"] for r in runs)
                lat = [x for r in runs for x in r["policy"][pol]["latency_s"]]
                rows.append(_row("C1", profile, q, pol, hits, trials, lat,
                                 max_depth=max(max(r["reorg_depths"], default=0) for r in runs),
                                 final_reverted=sum(r["final_reverted"] for r in runs)))
    return rows


def c2_grid(size: dict[str, int], seed: int, workdir: Path) -> list[dict[str, Any]]:
    tm = load_catalogue()["C2"]
    rows = []
    for k in C2_EQUIVOCATORS:
        q = k / 5
        params = {**tm.parameters, "equivocators": k}
        tmk = replace(tm, parameters=params)
        outs = [Equivocation.proml(tmk, seed + s, workdir) for s in range(size["c2_seeds"])]
        n = int(params.get("consumers", 3))
        for pol, name in C2_POLICIES.items():
            key = ("acted_on_losing_rate" if pol == "checkpoint"
                   else f"acted_on_losing_rate_{pol}")
            hits = sum(round((o.metrics.get(key) or 0.0) * n) for o in outs)
            lat = [v for o in outs if (v := o.metrics.get(f"latency_{pol}_s")) is not None
                   and not math.isnan(v)]
            rows.append(_row("C2", "poa-clique", q, name, hits, n * len(outs), lat))
    return rows


def _row(scenario: str, profile: str, q: float, policy: str, hits: int, trials: int,
         latency: list[float], **extra: Any) -> dict[str, Any]:
    asr = wilson(hits, trials)
    lat = bootstrap(latency)
    return {"scenario": scenario, "profile": profile, "q": q, "policy": policy,
            "successes": hits, "trials": trials, "asr": asr.value, "asr_lo": asr.lo,
            "asr_hi": asr.hi, "latency_median_s": lat.value, "latency_lo_s": lat.lo,
            "latency_hi_s": lat.hi, "acted": len(latency), **extra}


def main(config: ExperimentConfig) -> dict[str, Any]:
    out = Path(config.out)
    size = SIZES[config.profile]
    meta = provenance(config)
    race = race_check(size["races"], config.seed)
    work = out / "e07_work"
    work.mkdir(parents=True, exist_ok=True)
    grid = c1_grid(size, config.seed) + c2_grid(size, config.seed, work)
    forks: dict[str, Any] = {}
    for r in grid:
        forks.setdefault(r["profile"], {}).setdefault(str(r["q"]), {}).setdefault(
            r["policy"], {})[r["scenario"]] = {k: r[k] for k in (
                "asr", "asr_lo", "asr_hi", "trials", "latency_median_s", "latency_lo_s",
                "latency_hi_s")}
    result = {
        "race": race, "grid": grid, "forks": forks, "sizes": size,
        "race_summary": race_summary(race, size["races"]),
    }
    write_csv(out / "e07_race.csv", race, meta)
    write_csv(out / "e07_forks.csv", grid, meta)
    write_json(out / "e07_forks.json", {"meta": meta, **result})
    plot(race, grid, out / "e07_forks.png")
    return {**result, "figures": ["e07_forks.png"]}


def plot(race: list[dict[str, Any]], grid: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    ax = axes[0]
    for q, colour in zip(QS, ("tab:blue", "tab:red"), strict=True):
        pts = [r for r in race if r["q"] == q and r["z"] > 0]
        zs = [r["z"] for r in pts]
        ax.errorbar(zs, [r["measured"] for r in pts],
                    yerr=[[max(0.0, r["measured"] - r["lo"]) for r in pts],
                          [max(0.0, r["hi"] - r["measured"]) for r in pts]],
                    fmt="o", color=colour, ms=4, capsize=2, label=f"simulated q={q}")
        ax.plot(zs, [r["rosenfeld"] for r in pts], "-", color=colour, label="Rosenfeld (exact)")
        ax.plot(zs, [r["nakamoto"] for r in pts], ":", color=colour,
                label="Bitcoin paper s. 11 (Poisson)")
    ax.set_yscale("log")
    ax.set_xlabel("confirmations z the merchant waits for")
    ax.set_ylabel("attacker success probability")
    ax.set_title("Double-spend race on the simulator's PoW loop")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    series: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    for r in grid:
        if r["latency_median_s"] is not None:
            series.setdefault((r["scenario"], r["profile"], r["q"]), []).append(r)
    for (sc, prof, q), pts in series.items():
        ax = axes[1] if sc == "C1" else axes[2]
        pts.sort(key=lambda r: r["latency_median_s"])
        # C2: the policies' latencies barely depend on q: shift the series apart a little
        xs = [r["latency_median_s"] * (1 + (0.08 * q if sc == "C2" else 0.0)) for r in pts]
        ys = [r["asr"] for r in pts]
        ax.errorbar(xs, ys, yerr=[[max(0.0, y - r["asr_lo"]) for y, r in zip(ys, pts,
                                                                              strict=True)],
                                  [max(0.0, r["asr_hi"] - y) for y, r in zip(ys, pts,
                                                                             strict=True)]],
                    fmt="o-" if sc == "C1" else "o", ms=4, capsize=2,
                    label=f"{prof} q={q}" if sc == "C1" else f"equivocators q={q}")
        for x, y, r in zip(xs, ys, pts, strict=True):
            ax.annotate(r["policy"], (x, y), fontsize=6, xytext=(2, 2),
                        textcoords="offset points")
    for ax, title in ((axes[1], "C1: private branch vs the consumer's policy"),
                      (axes[2], "C2: equivocating clique sealers, partition")):
        ax.set_xscale("log")
        ax.set_xlabel("consumer latency: submission to acting, median (s)")
        ax.set_ylabel("attack success per attempt (95 % Wilson)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)
