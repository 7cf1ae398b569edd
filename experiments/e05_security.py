"""E5: the security evaluation: every catalogued threat against the centralised baseline and
against ProML, with measured verdicts and metrics (95 % intervals over seeds), plus the
collusion curve ASR(c), the double-record rate against confirmation depth and the censorship
delay against the number of censoring sealers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.common import ExperimentConfig, provenance, save_figure, write_json
from proml_sim.progress import progress
from proml_sim.threats.catalogue import load_catalogue
from proml_sim.threats.runner import load_scenarios, run_threat

#: seeds per scenario: the smoke profile caps them, the paper profile uses each model's own
#: but at least PAPER_SEEDS (the README and REPORT matrices: at least 20 seeds, intervals)
SMOKE_SEEDS = 2
PAPER_SEEDS = 20


def main(config: ExperimentConfig) -> dict[str, Any]:
    out = Path(config.out)
    cat = load_catalogue()
    impl = load_scenarios()
    results = []
    missing = [t for t in cat if t not in impl]
    todo = [(tid, tm) for tid, tm in cat.items() if tid in impl]
    with progress("e05 security", total=len(todo), unit="threats") as bar:
        for tid, tm in todo:
            bar.update(description=f"e05 security: {tid}")
            seeds = (min(tm.seeds, SMOKE_SEEDS) if config.profile == "smoke"
                     else max(tm.seeds, PAPER_SEEDS))
            results.append(run_threat(tm, seeds, config.seed))
            bar.advance()
    meta = provenance(config)
    write_json(out / "e05_security.json", {"meta": meta, "results": results,
                                           "not_implemented": missing})
    figures = plot(results, out)
    return {"results": results, "not_implemented": missing, "figures": figures}


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
