"""E6: mutation testing of the generated contracts: every planted access-control mutant must be
killed by the threat property suite, and the unmutated contracts must pass it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.common import ExperimentConfig, provenance, write_json
from proml_sim.lifecycles import Model
from proml_sim.threats.mutants import format_matrix, run_mutation

#: hypothesis examples per mutant (and for the unmutated contracts) per experiment profile
EXAMPLES = {"smoke": 15, "paper": 50}


def main(config: ExperimentConfig) -> dict[str, Any]:
    report = run_mutation(Model, max_examples=EXAMPLES[config.profile], seed=config.seed)
    data = report.to_json()
    write_json(Path(config.out) / "e06_mutation.json", {"meta": provenance(config), **data})
    return {"report": data, "matrix": format_matrix(report), "all_killed": report.all_killed,
            "suite_ok": report.suite_ok}
