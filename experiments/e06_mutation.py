"""E6: mutation testing of the generated contracts: every planted access-control mutant must be
killed by the threat property suite, and the unmutated contracts must pass it.  The report
runs it on the single-admin Model (``SingleAdminModel``: the fifteen access-control mutants,
minutes); the consortium Model, with the four governance mutants, costs ~16 min at the same
example count on 2 cores: ``proml mutate`` (its default lifecycle) runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.common import ExperimentConfig, provenance, write_json
from proml_sim.lifecycles import SingleAdminModel as Model
from proml_sim.progress import progress
from proml_sim.threats.mutants import format_matrix, run_mutation

#: hypothesis examples per mutant (and for the unmutated contracts) per experiment profile
EXAMPLES = {"smoke": 40, "paper": 80}


def main(config: ExperimentConfig) -> dict[str, Any]:
    with progress("e06 mutation") as bar:
        report = run_mutation(Model, max_examples=EXAMPLES[config.profile], seed=config.seed,
                              progress=lambda line: bar.update(description=f"e06 mutation: {line}"))
    data = report.to_json()
    write_json(Path(config.out) / "e06_mutation.json", {"meta": provenance(config), **data})
    required = [r for r in report.results if r.required]
    survivors = [r.id for r in report.applicable if not r.killed]
    return {"report": data, "matrix": format_matrix(report), "all_killed": report.all_killed,
            "required_killed": report.suite_ok and all(r.killed for r in required),
            "survivors": survivors, "suite_ok": report.suite_ok}
