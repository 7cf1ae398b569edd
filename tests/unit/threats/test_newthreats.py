"""T11 (a vulnerable ML framework), T12 (a step never recorded) and I1 (what an outsider learns
from on-chain metadata): each side measured, at the default and at other parameters.

The workloads are small here (2 teams, 3 trainings each) to keep the tests fast; the threat
models' defaults are what `proml threats run` measures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from proml_sim.threats.catalogue import ThreatModel, load_catalogue
from proml_sim.threats.runner import Outcome, verdict, with_parameters
from proml_sim.threats.scenarios.newthreats import (
    OutsiderReadsMetadata,
    Plan,
    Step,
    UnrecordedStep,
    VulnerableFramework,
    t11_truth,
    teams_plan,
)

SMALL = {"teams": 2, "trainings": 3, "datasets": 2}


def tm(tid: str, **params: Any) -> ThreatModel:
    base = load_catalogue()[tid]
    return with_parameters(base, {**(SMALL if "teams" in base.parameters else {}), **params})


def both(cls: Any, t: ThreatModel, tmp_path: Path, seed: int = 0) -> tuple[Outcome, Outcome]:
    (tmp_path / "b").mkdir()
    (tmp_path / "p").mkdir()
    return cls.baseline(t, seed, tmp_path / "b"), cls.proml(t, seed, tmp_path / "p")


def test_t11_truth_follows_inputs_and_later_versions() -> None:
    plan = Plan("torch", [("1.0", 0), ("1.1", 2)], {})
    plan.steps = [Step(0, "data", "dataset", "ds0", "1.1"),
                  Step(1, "data", "dataset", "ds1", "1.0"),
                  Step(2, "t0", "register", "m0", "1.0"),
                  Step(3, "t0", "train", "m0", "1.0", ("ds1",)),
                  Step(4, "t1", "register", "m1", "1.1"),
                  Step(5, "t1", "train", "m1", "1.0", ("ds1", "m0")),
                  Step(6, "t0", "register", "m2", "1.0"),
                  Step(7, "t0", "train", "m2", "1.0", ("ds0",))]
    # ds0 was made with 1.1, m1 registered with it (so its training too), m2 trained on ds0
    assert t11_truth(plan, "torch==1.1") == {("ds0", 1), ("m1", 1), ("m1", 2), ("m2", 2)}
    assert t11_truth(plan, "torch==2.0") == set()
    assert len(t11_truth(plan, "torch<2")) == 8


def test_t11_the_query_finds_exactly_the_affected_the_baseline_flags_a_window(
        tmp_path: Path) -> None:
    t = tm("T11")
    base, prom = both(VulnerableFramework, t, tmp_path, seed=1)  # seed 0: nobody adopted it
    truth = t11_truth(teams_plan(t, 1), t.parameters["vulnerable"])
    assert truth and prom.trials() == (len(truth), len(truth), len(truth))
    assert prom.metrics["recall"] == prom.metrics["precision"] == 1.0
    assert prom.metrics["unknown"] == 0.0 and prom.detected and prom.ttd_s is not None
    # the baseline has no environment: every step since the release is suspect
    assert base.metrics["recall"] == 1.0 and base.metrics["precision"] < 1.0
    assert base.metrics["flagged"] > prom.metrics["flagged"] == len(truth)


def test_t11_with_no_affected_version_in_use_nothing_was_attempted(tmp_path: Path) -> None:
    # seed 0: nobody adopted the vulnerable release; a version nobody ever installed likewise:
    # no trial (no_attack), never a prevented attempt
    for i, (t, seed) in enumerate(((tm("T11"), 0), (tm("T11", vulnerable="torch==9.9.9"), 1))):
        (tmp_path / str(i)).mkdir()
        outcomes = both(VulnerableFramework, t, tmp_path / str(i), seed=seed)
        assert all(o.trials() == (0, 0, 0) for o in outcomes)
        assert verdict([outcomes[1]]) == verdict([outcomes[0]]) == "no_attack"


def test_t11_lost_records_are_listed_as_unknown(tmp_path: Path) -> None:
    prom = VulnerableFramework.proml(tm("T11", lost_records=0.5), 1, tmp_path)
    assert prom.metrics["unknown"] > 0
    assert prom.metrics["recall"] == 1.0  # the defender quarantines the unknown ones too
    assert prom.metrics["precision"] < 1.0


@pytest.mark.parametrize(("params", "baseline", "proml"), [
    ({}, (3, 3, 0), (3, 0, 0)),                            # relabel: lineage refuses
    ({"record_inputs": False}, (3, 3, 0), (3, 3, 0)),      # nothing hashes what was read
    ({"consumer_checks": False}, (3, 3, 0), (3, 3, 3)),    # used, but every one alarmed
    ({"hidden": "retrain"}, (3, 0, 0), (3, 0, 0)),         # served bytes were never recorded
])
def test_t12_what_each_system_can_see_of_an_unrecorded_step(
        tmp_path: Path, params: dict[str, Any], baseline: tuple[int, int, int],
        proml: tuple[int, int, int]) -> None:
    base, prom = both(UnrecordedStep, tm("T12", **params), tmp_path)
    assert base.trials() == baseline and prom.trials() == proml
    if params.get("hidden", "relabel") == "relabel" and params.get("record_inputs", True):
        assert "lineage" in prom.note  # the alarm that refused (or flagged) each model
    if params.get("hidden") == "retrain":  # both consumers logged the refusal
        assert "not the recorded digest" in base.note and "no output" in prom.note


def test_i1_outsider_reads_domains_names_lineage_not_files(tmp_path: Path) -> None:
    base, prom = both(OutsiderReadsMetadata, tm("I1"), tmp_path)
    m = prom.metrics
    assert m["accounts_linked"] == m["trainings_timed"] == m["lineage_edges"] == 1.0
    assert m["names_recovered"] == 1.0  # the default locator names the artefact
    assert m["datasets_confirmed"] == 0.0  # the chain holds record digests, not the files'
    assert 0.0 < m.pop("timing_error_s") < 10.0  # block time after the step: 2 s blocks
    assert not prom.detected  # reading leaves no trace
    assert base.trials()[1] == 0 and all(base.metrics[k] == 0.0 for k in m)
    assert all(base.metrics[f"operator_{k}"] == 1.0 for k in m)


def test_i1_without_the_locator_names_fall_to_the_dictionary(tmp_path: Path) -> None:
    prom = OutsiderReadsMetadata.proml(tm("I1", locator_names=False, guessed_names=0.0,
                                          raw_digests=True), 0, tmp_path)
    assert prom.metrics["names_recovered"] == 0.0  # nothing guessed, nothing recovered
    assert prom.metrics["datasets_confirmed"] == 1.0  # a raw digest confirms a held file
