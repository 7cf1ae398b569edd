"""E2: gas and cost of provenance per contract layout.

* Gas per operation of the paper lifecycles from real receipts (py-evm, Prague), beside the
  gas-schedule lower bound for the same effects (``proml_sim/gas.py`` states the model), for the
  three contract layouts: ``registry`` (one contract per lifecycle), ``factory`` (one contract per
  artefact, created from an ERC-5202 blueprint) and ``clone`` (one EIP-1167 proxy per artefact).
* Gas against history length: the same transition after 1, 10, 100, 1,000 (paper: also 10,000)
  prior transitions on the same artefact, and a fresh artefact's registration and first
  transition after as many transitions in the same lifecycle.  It must stay flat.
* Cost in ETH and USD for stated gas-price scenarios and a stated ETH price (assumptions, not
  measurements: they are written beside every number).

``summary.gas.<lifecycle>.<operation>`` is the registry layout's gas (a published key);
``summary.gas_by_layout.<layout>.<lifecycle>.<operation>`` has every layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.common import ExperimentConfig, provenance, save_figure, write_csv, write_json
from proml_sim.chain.client import LAYOUTS
from proml_sim.gas import history_spread, measure_history_gas, measure_paper_gas
from proml_sim.progress import progress

#: Stated gas-price scenarios (gwei) and an ETH price (USD) for cost conversion.
GAS_PRICES_GWEI = {"low (1 gwei)": 1.0, "typical 2025 (5 gwei)": 5.0, "busy (30 gwei)": 30.0}
ETH_USD = 3000.0
#: The scenario whose USD cost the summary and report quote (every scenario is in the CSV).
REPORT_SCENARIO = "typical 2025 (5 gwei)"
#: Prior transitions before each measured operation, per profile.
HISTORY_LENGTHS = {"smoke": (1, 10, 100, 1000), "paper": (1, 10, 100, 1000, 10_000)}
#: Operations shown in the per-layout chart and cost table (what a team pays for again and again).
KEY_OPERATIONS = ("registration", "first_transition", "later_transition", "approval",
                  "rejected_attempt", "grant_role", "revoke_role")


def _cost(gas: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for label, gwei in GAS_PRICES_GWEI.items():
        eth = gas * gwei * 1e-9
        out[f"eth@{label}"] = round(eth, 8)
        out[f"usd@{label}"] = round(eth * ETH_USD, 4)
    return out


def main(config: ExperimentConfig) -> dict[str, Any]:
    out = Path(config.out)
    meta = provenance(config)
    layout_rows = measure_paper_gas(seed=config.seed, layouts=LAYOUTS)
    for r in layout_rows:
        r.update(_cost(r["gas"]))
    history_rows: list[dict[str, Any]] = []
    with progress("e02 gas over history", total=len(LAYOUTS), unit="layouts") as bar:
        for layout in LAYOUTS:
            bar.update(description=f"e02 gas over history: {layout}")
            history_rows += measure_history_gas(layout, HISTORY_LENGTHS[config.profile],
                                                config.seed)
            bar.advance()
    # data first
    write_csv(out / "e02_gas.csv", layout_rows, meta)
    write_csv(out / "e02_gas_history.csv", history_rows, meta)

    gas_by_layout: dict[str, dict[str, dict[str, int]]] = {}
    bound_by_layout: dict[str, dict[str, dict[str, int]]] = {}
    for r in layout_rows:
        gas_by_layout.setdefault(r["layout"], {}).setdefault(r["lifecycle"], {})[
            r["operation"]] = r["gas"]
        bound_by_layout.setdefault(r["layout"], {}).setdefault(r["lifecycle"], {})[
            r["operation"]] = r["lower_bound"]
    history: dict[str, dict[str, dict[str, int]]] = {}
    for r in history_rows:
        history.setdefault(r["layout"], {}).setdefault(f"{r['scope']}.{r['operation']}", {})[
            str(r["history"])] = r["gas"]
    typical = f"usd@{REPORT_SCENARIO}"
    cost_usd = {
        layout: {lc: {op: _cost(g)[typical] for op, g in ops.items() if op in KEY_OPERATIONS}
                 for lc, ops in per_lc.items()}
        for layout, per_lc in gas_by_layout.items()
    }
    summary = {
        # proml_sim/gas.py measures on its own py-evm chains whatever engine the run uses:
        # the engines agree gas for gas (tests/property/test_engines_agree.py)
        "engine": "pyevm",
        "gas": gas_by_layout["registry"],
        "gas_lower_bound": bound_by_layout["registry"],
        "gas_by_layout": gas_by_layout,
        "gas_lower_bound_by_layout": bound_by_layout,
        "history_gas": history,
        "history_spread_gas": history_spread(history_rows),
        "cost_usd_by_layout": {"scenario": REPORT_SCENARIO, "usd": cost_usd},
        "assumptions": {
            "gas_prices_gwei": GAS_PRICES_GWEI, "eth_usd": ETH_USD,
            "cost": "eth = gas x gwei x 1e-9; usd = eth x eth_usd (stated prices, not measured)",
            "history_lengths": list(HISTORY_LENGTHS[config.profile]),
        },
    }
    registry_rows = [r for r in layout_rows if r["layout"] == "registry"]
    write_json(out / "e02_gas.json", {"meta": meta, "rows": layout_rows,
                                      "history_rows": history_rows, "summary": summary})
    # plots second
    figures = [
        plot(registry_rows, out / "e02_gas.png").name,
        plot_layouts(layout_rows, out / "e02_gas_layouts.png").name,
        plot_history(history_rows, out / "e02_gas_history.png").name,
    ]
    return {
        "rows": registry_rows,
        "layout_rows": layout_rows,
        "history_rows": history_rows,
        "summary": summary,
        "figures": figures,
        "report_md": report_section(summary),
    }


def report_section(summary: dict[str, Any]) -> str:
    """Markdown for the report: gas per layout, flatness against history, cost."""
    g = summary["gas_by_layout"]
    ops = ("deployment_template", "deployment", "registration", "first_transition",
           "later_transition", "approval", "rejected_attempt", "grant_role", "revoke_role")
    lines = [
        "### Gas per contract layout (Model lifecycle)",
        "",
        "| operation | " + " | ".join(LAYOUTS) + " |",
        "|---|" + "---|" * len(LAYOUTS),
    ]
    for op in ops:
        cells = [f"{g[lay]['Model'][op]:,}" if op in g[lay]["Model"] else "-" for lay in LAYOUTS]
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    spread = summary["history_spread_gas"]
    usd = summary["cost_usd_by_layout"]["usd"]
    worst = max(v for per in spread.values() for v in per.values())
    lengths = summary["assumptions"]["history_lengths"]
    lines += [
        "",
        "`deployment_template`: the blueprint (factory) or the clone implementation, once per "
        "lifecycle; `deployment`: the registry or the factory. Lower bounds per row are in "
        "`e02_gas.csv`.",
        "",
        f"Gas against history ({', '.join(str(n) for n in lengths)} prior transitions on the same "
        f"artefact and in the same lifecycle): largest spread {worst} gas over all layouts and "
        "operations (`e02_gas_history.csv`).",
        "",
        f"Cost at {REPORT_SCENARIO} and ETH = {ETH_USD:,.0f} USD (stated assumptions; every "
        "scenario is in `e02_gas.csv`):",
        "",
        "| layout | registration (USD) | later transition (USD) |",
        "|---|---|---|",
        *(f"| {lay} | {usd[lay]['Model']['registration']:.3f} | "
          f"{usd[lay]['Model']['later_transition']:.3f} |" for lay in LAYOUTS),
        "",
        "![gas per layout](e02_gas_layouts.png)",
        "",
        "![gas against history length](e02_gas_history.png)",
    ]
    return "\n".join(lines) + "\n"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(rows: list[dict[str, Any]], path: Path) -> Path:
    """The registry layout: measured gas beside the lower bound, per operation."""
    plt = _plt()
    ops = [r for r in rows if not r["operation"].startswith("deployment")]
    labels = [f"{r['lifecycle']}\n{r['operation']}" for r in ops]
    x = range(len(ops))
    fig, ax = plt.subplots(figsize=(max(8, 0.8 * len(ops)), 4.5))
    ax.bar([i - 0.2 for i in x], [r["gas"] for r in ops], width=0.4, label="measured (receipt)")
    ax.bar([i + 0.2 for i in x], [r["lower_bound"] for r in ops], width=0.4,
           label="gas-schedule lower bound")
    ax.set_xticks(list(x), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("gas per transaction")
    ax.set_title("Gas per lifecycle operation, registry layout (Prague schedule, py-evm receipts)")
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def plot_layouts(rows: list[dict[str, Any]], path: Path) -> Path:
    """Model: gas per operation per layout (bars) and each one's lower bound (ticks), log scale
    (registration in the factory layout is ~35x the registry's)."""
    plt = _plt()
    model = [r for r in rows if r["lifecycle"] == "Model"]
    ops = [op for op in ("deployment_template", "deployment", *KEY_OPERATIONS)
           if any(r["operation"] == op for r in model)]
    by = {(r["layout"], r["operation"]): r for r in model}
    width = 0.8 / len(LAYOUTS)
    fig, ax = plt.subplots(figsize=(11, 5))
    for j, layout in enumerate(LAYOUTS):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(ops))]
        have = [(x, by[(layout, op)]) for x, op in zip(xs, ops, strict=True)
                if (layout, op) in by]
        bars = ax.bar([x for x, _ in have], [r["gas"] for _, r in have], width=width * 0.95,
                      label=layout)
        ax.scatter([x for x, _ in have], [r["lower_bound"] for _, r in have], marker="_",
                   s=120, color="black", zorder=3,
                   label="lower bound" if j == 0 else None)
        for bar, (_, r) in zip(bars, have, strict=True):
            if r["operation"] in ("registration", "later_transition"):
                ax.annotate(f"{r['gas'] / 1000:.0f}k", (bar.get_x() + bar.get_width() / 2,
                            r["gas"]), ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.set_xticks(range(len(ops)), ops, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("gas per transaction (log scale)")
    ax.set_title("Model lifecycle: gas per operation per contract layout (receipts vs lower bound)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_history(rows: list[dict[str, Any]], path: Path) -> Path:
    """Gas against prior transitions (log x): one line per layout and operation."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    panels = [("artefact", "later_transition", "transition on an artefact with n prior"),
              ("lifecycle", "first_transition", "first transition, n prior in lifecycle"),
              ("lifecycle", "registration", "registration, n prior in lifecycle")]
    for ax, (scope, op, title) in zip(axes, panels, strict=True):
        for layout in LAYOUTS:
            pts = sorted((r["history"], r["gas"]) for r in rows
                         if r["layout"] == layout and r["scope"] == scope
                         and r["operation"] == op)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=layout)
        ax.set_xscale("log")
        if op == "registration":
            ax.set_yscale("log")
        ax.set_xlabel("prior transitions n")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("gas per transaction")
    axes[0].legend(fontsize=8)
    fig.suptitle("Gas against history length (flat: O(1) storage per operation)")
    fig.tight_layout()
    return save_figure(fig, path)
