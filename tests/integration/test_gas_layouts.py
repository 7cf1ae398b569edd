"""Gas per contract layout from real receipts: flat in history length, never below the schedule's
lower bound, and the E2 experiment's published keys."""

from __future__ import annotations

import json

import pytest

from proml_sim.chain.client import LAYOUTS
from proml_sim.gas import history_spread, measure_history_gas, measure_paper_gas


@pytest.fixture(scope="module")
def rows():
    return measure_paper_gas(layouts=LAYOUTS)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_gas_is_flat_in_history_length(layout):
    """The same call after 10 and after 1,000 prior transitions (on the same artefact, and in the
    same lifecycle) costs the same gas.  Warm/cold effects cannot build up: EIP-2929 access lists
    and EIP-2200 "original values" are per transaction, so every measured call starts cold and
    touches the same slots.  What may differ is calldata: a fresh artefact's id is a hash, and a
    zero byte in it costs 4 gas instead of 16; hence the tolerance of 200 gas."""
    hist = measure_history_gas(layout, (10, 1000))
    by = {(r["scope"], r["operation"], r["history"]): r for r in hist}
    for scope, op in (("artefact", "later_transition"), ("lifecycle", "registration"),
                      ("lifecycle", "first_transition")):
        short, long = by[(scope, op, 10)], by[(scope, op, 1000)]
        assert long["prior_transitions"] >= 1000 > short["prior_transitions"] >= 10
        assert abs(long["gas"] - short["gas"]) <= 200, (scope, op, short["gas"], long["gas"])
    assert max(history_spread(hist)[layout].values()) <= 200


def test_measured_gas_never_beats_the_lower_bound_in_any_layout(rows):
    assert {r["layout"] for r in rows} == set(LAYOUTS)
    for r in rows:
        assert r["gas"] >= r["lower_bound"], r


def test_creation_is_in_the_lower_bound(rows):
    """Registration in the per-artefact layouts is dominated by creating a contract; the bound
    models it (CREATE2, init code, code deposit), so it stays close to the measured gas."""
    for r in rows:
        if r["operation"] == "registration" and r["layout"] != "registry":
            assert r["overhead"] <= 1.05, r


def test_layouts_trade_registration_cost_for_transition_cost(rows):
    g = {(r["layout"], r["lifecycle"], r["operation"]): r["gas"] for r in rows}
    for lc in ("Dataset", "Model"):
        reg = [g[(lay, lc, "registration")] for lay in ("registry", "clone", "factory")]
        assert reg == sorted(reg) and reg[2] > 5 * reg[1] and reg[1] > 2 * reg[0]
        later = [g[(lay, lc, "later_transition")] for lay in ("registry", "factory", "clone")]
        assert later == sorted(later) and later[2] - later[0] < 10_000
        # roles live in one contract whatever the layout: same code, same gas (to a few gas of
        # calldata: the factory and the registry sit at different addresses)
        for op in ("grant_role", "revoke_role"):
            values = [g[(lay, lc, op)] for lay in LAYOUTS]
            assert max(values) - min(values) < 100, (op, values)


def test_e02_keeps_registry_numbers_under_the_published_key(tmp_path, monkeypatch):
    from experiments import e02_gas
    from experiments.common import ExperimentConfig, read_csv

    monkeypatch.setitem(e02_gas.HISTORY_LENGTHS, "smoke", (1, 10))
    res = e02_gas.main(ExperimentConfig(out=tmp_path, profile="smoke", seed=2))
    summary = res["summary"]
    assert summary["gas"] == summary["gas_by_layout"]["registry"]
    assert set(summary["gas_by_layout"]) == set(LAYOUTS)
    assert summary["gas_by_layout"]["factory"]["Model"]["registration"] > (
        summary["gas"]["Model"]["registration"])
    assert all(r["layout"] == "registry" for r in res["rows"])
    assert summary["assumptions"]["eth_usd"] > 0 and summary["assumptions"]["gas_prices_gwei"]
    for name in ("e02_gas.csv", "e02_gas_history.csv"):
        text = (tmp_path / name).read_text()
        assert text.startswith("# seed: 2") and "fingerprints" in text
    csv_rows = read_csv(tmp_path / "e02_gas.csv")
    assert {r["layout"] for r in csv_rows} == set(LAYOUTS)
    assert all(float(r["usd@busy (30 gwei)"]) > float(r["usd@low (1 gwei)"]) for r in csv_rows)
    data = json.loads((tmp_path / "e02_gas.json").read_text())
    assert data["meta"]["seed"] == 2 and len(data["history_rows"]) == 3 * 2 * 3
    for fig in res["figures"]:
        assert (tmp_path / fig).read_bytes()[:4] == b"\x89PNG"
    assert "e02_gas_layouts.png" in res["report_md"]


#: a lifecycle of a user's own: a role administered by another (single-admin design), a 3-of-n
#: step counted by domains with domain separation, evidence at registration
WALKED = '''
from proml_sim.dsl import Artefact, Consortium, Role, State

class Paper(Artefact):
    editor = Role()
    author = Role()
    reviewer = Role(admin=editor)
    submitted = State(initial=True, by=author, evidence=True)
    reviewed = State()
    published = State(final=True)
    review = submitted.to(reviewed, by=reviewer, approvals=3, count="domains", evidence=True)
    revise = (submitted | reviewed).to(submitted, by=author, evidence=True)
    publish = reviewed.to(published, by=editor, separate_domain_from="review")

class GovernedPaper(Paper):
    governance = Consortium(quorum=3)
'''


def test_any_lifecycle_is_walked_for_gas_from_its_rules(tmp_path, monkeypatch, capsys):
    import sys

    from proml_sim.cli import main
    from proml_sim.gas import measure_walk_gas
    from proml_sim.lifecycles import Model

    # the walk and the paper's hand-written drive make the same first train: the same gas
    walked = {r["operation"]: r for r in measure_walk_gas(Model)}
    paper = {r["operation"]: r for r in measure_paper_gas() if r["lifecycle"] == "Model"}
    assert walked["train"]["gas"] == paper["first_transition"]["gas"]
    assert walked["verify (2/2)"]["note"].startswith("last approval: fires")
    (tmp_path / "walked.py").write_text(WALKED)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "walked", raising=False)
    for cls in ("walked:Paper", "walked:GovernedPaper"):
        assert main(["gas", "--lifecycle", cls, "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        ops = [r["operation"] for r in rows]
        assert ops == ["deployment", "grant_role", "registration", "review (1/3)",
                       "review (3/3)", "revise", "publish", "rejected_attempt", "revoke_role"]
        assert all(r["status"] == "ok" for r in rows if r["operation"] != "rejected_attempt")
        assert {r["status"] for r in rows if r["operation"] == "rejected_attempt"} == {
            "reverted"}
        assert all(r["gas"] > 21_000 and r["lower_bound"] is None for r in rows)
    assert main(["gas", "--lifecycle", "walked:Paper"]) == 0
    assert "review (3/3)" in capsys.readouterr().out
    # a lifecycle too large for one contract is priced in a per-artefact layout
    from proml_sim.cliargs import LAYOUTS as CLI_LAYOUTS

    assert CLI_LAYOUTS == LAYOUTS
    for layout in ("factory", "clone"):
        assert main(["gas", "--lifecycle", "walked:GovernedPaper", "--layout", layout,
                     "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert [r["operation"] for r in rows][:3] == ["deployment_template", "deployment",
                                                      "grant_role"]
        assert {r["layout"] for r in rows} == {layout}
        assert all(r["status"] == "ok" for r in rows if r["operation"] != "rejected_attempt")
    assert main(["gas", "--lifecycle", "walked:Paper", "--single-admin"]) == 2
    assert main(["gas", "--lifecycle", "walked:Nope"]) == 2
