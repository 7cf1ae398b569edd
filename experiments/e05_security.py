"""E5: the security evaluation: every catalogued threat against the centralised baseline and
against ProML, with measured verdicts and metrics (95 % intervals over seeds), plus the
collusion curve ASR(c), the double-record rate against confirmation depth and the censorship
delay against the number of censoring sealers."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from experiments.common import ExperimentConfig, provenance, save_figure, write_json
from proml_sim.progress import progress
from proml_sim.threats.catalogue import load_catalogue
from proml_sim.threats.runner import implemented, run_threat

#: seeds per scenario, in every profile: each model's own but at least MIN_SEEDS (the README
#: and REPORT matrices come from at least 20 seeds, with intervals; all 35 take ~6 min)
MIN_SEEDS = 20
#: seeds per point of the figures' parameter sweeps (D1 over m, C1 over depth)
SWEEP_SEEDS = {"smoke": 3, "paper": 20}


def main(config: ExperimentConfig) -> dict[str, Any]:
    out = Path(config.out)
    cat = load_catalogue()
    ok = {tm.id for tm in implemented(cat.values())}
    results = []
    missing = [t for t in cat if t not in ok]
    todo = [(tid, tm) for tid, tm in cat.items() if tid in ok]
    with progress("e05 security", total=len(todo), unit="threats") as bar:
        for tid, tm in todo:
            bar.update(description=f"e05 security: {tid}")
            seeds = max(tm.seeds, MIN_SEEDS)
            results.append(run_threat(tm, seeds, config.seed))
            bar.advance()
    meta = provenance(config)
    write_json(out / "e05_security.json", {"meta": meta, "results": results,
                                           "not_implemented": missing})
    # the sweeps first: the figures read the first series of each id
    figures = plot(_sweeps(cat, SWEEP_SEEDS[config.profile], config.seed) + results, out)
    return {"results": results, "not_implemented": missing, "figures": figures}


def _sweeps(cat: dict[str, Any], seeds: int, seed: int) -> list[dict[str, Any]]:
    """The curves a scenario's own parameters give (``proml threats run ID --param``): D1's
    censorship delay against the censoring sealers m, C1's double-record rate against the
    confirmation depth the consumer (and the attacker) uses; as ``_series`` reads them."""
    from proml_sim.threats.runner import sweep_threat

    out = []
    for tid, name, values, x, key, metric in (
            ("D1", "attack_m", list(range(int(cat["D1"].parameters["sealers"]) + 1)), float,
             "censorship_delay_by_m", "censorship_delay_s"),
            ("C1", "defence_policy", ["L@1", "L@3", "L@6", "L@12"], lambda v: float(v[2:]),
             "double_record_by_depth", "asr")):
        if tid not in cat:
            continue
        tm = cat[tid]
        if tid == "C1":  # the attacker targets the policy it faces
            tm = dataclasses.replace(tm, parameters={k: v for k, v in tm.parameters.items()
                                                     if k != "attack_policy"})
        points = sweep_threat(tm, [(name, values)], seeds, seed)["points"]
        out.append({"id": tid, **{side: {key: [[x(p["parameters"][name]), p[side].get(metric),
                                                p[side]["seeds"]] for p in points
                                               if p[side].get(metric) is not None
                                               and p[side]["verdict"] != "out_of_scope"]}
                                  for side in ("baseline", "proml")}})
    return out


def _series(results: list[dict[str, Any]], tid: str, prefix: str) -> dict[str, list[Any]]:
    """The first sweep (a list of [x, y, n]) whose key starts with ``prefix``, per side."""
    for r in results:
        if r["id"] != tid:
            continue
        out = {}
        for side in ("baseline", "proml"):
            for k, v in sorted(r[side].items()):
                if k.startswith(prefix) and isinstance(v, list) and v and isinstance(v[0], list):
                    out[side] = v
                    break
        return out
    return {}


def plot(results: list[dict[str, Any]], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    panels = [
        ("S4", "asr_by_c", "colluding approvers c (k = 2)", "attack success rate",
         "Collusion curve ASR(c)", "e05_collusion.png"),
        ("C1", "double_record", "confirmation depth acted at", "double-record rate",
         "Reorgs: acting on a record that disappears", "e05_double_record.png"),
        ("D1", "censorship_delay", "censoring sealers m (of 5)", "median inclusion delay (s)",
         "Censorship delay", "e05_censorship.png"),
    ]
    for tid, key, xlabel, ylabel, title, name in panels:
        series = _series(results, tid, key)
        if not any(series.values()):
            continue
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for side, pts in series.items():
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=side)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        save_figure(fig, out / name)
        figures.append(name)
    return figures
