"""E2 (core part): gas per operation of the paper lifecycles from real receipts, beside the
gas-schedule lower bound; cost in ETH and USD for stated gas-price scenarios."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.common import ExperimentConfig, provenance, write_csv, write_json
from proml_sim.gas import measure_paper_gas

#: Stated gas-price scenarios (gwei) and an ETH price (USD) for cost conversion.
GAS_PRICES_GWEI = {"low (1 gwei)": 1.0, "typical 2025 (5 gwei)": 5.0, "busy (30 gwei)": 30.0}
ETH_USD = 3000.0


def main(config: ExperimentConfig) -> dict[str, Any]:
    out = Path(config.out)
    rows = measure_paper_gas(seed=config.seed)
    meta = provenance(config)
    for r in rows:
        for label, gwei in GAS_PRICES_GWEI.items():
            eth = r["gas"] * gwei * 1e-9
            r[f"eth@{label}"] = round(eth, 8)
            r[f"usd@{label}"] = round(eth * ETH_USD, 4)
    write_csv(out / "e02_gas.csv", rows, meta)
    gas: dict[str, dict[str, int]] = {}
    bound: dict[str, dict[str, int]] = {}
    for r in rows:
        gas.setdefault(r["lifecycle"], {})[r["operation"]] = r["gas"]
        bound.setdefault(r["lifecycle"], {})[r["operation"]] = r["lower_bound"]
    summary = {
        "gas": gas,
        "gas_lower_bound": bound,
        "assumptions": {"gas_prices_gwei": GAS_PRICES_GWEI, "eth_usd": ETH_USD},
    }
    write_json(out / "e02_gas.json", {"meta": meta, "rows": rows, "summary": summary})
    plot(rows, out / "e02_gas.png")
    return {"rows": rows, "summary": summary, "figures": ["e02_gas.png"]}


def plot(rows: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ops = [r for r in rows if r["operation"] != "deployment"]
    labels = [f"{r['lifecycle']}\n{r['operation']}" for r in ops]
    x = range(len(ops))
    fig, ax = plt.subplots(figsize=(max(8, 0.8 * len(ops)), 4.5))
    ax.bar([i - 0.2 for i in x], [r["gas"] for r in ops], width=0.4, label="measured (receipt)")
    ax.bar([i + 0.2 for i in x], [r["lower_bound"] for r in ops], width=0.4,
           label="gas-schedule lower bound")
    ax.set_xticks(list(x), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("gas per transaction")
    ax.set_title("Gas per lifecycle operation (Prague schedule, py-evm receipts)")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
