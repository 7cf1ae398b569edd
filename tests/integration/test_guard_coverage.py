"""Guard coverage of the property suite (`proml mutate --coverage`) and a user's own mutants
(`proml mutate --mutant-file`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from proml_sim import lifecycles
from proml_sim.codegen import generate_vyper
from proml_sim.ir import build_ir
from proml_sim.lifecycles import SingleAdminModel as Model  # its messages, checked below
from proml_sim.threats.mutants import load_user_mutants
from proml_sim.threats.properties import budget_guards, guard_reasons


def proml(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "proml_sim.cli", *args], capture_output=True,
                          text=True, timeout=600)


def test_guard_reasons_lists_every_assert_of_the_generated_contract():
    src = generate_vyper(build_ir(Model))
    g = guard_reasons(src)
    assert sum(g.values()) == src.count("assert ") - src.count("assert_")  # every site
    assert g["UnknownArtefact: SingleAdminModel: unknown artefact id; register it first"] > 1
    assert "ApprovalsFull: SingleAdminModel.verify: approval slots for this version are full" in g
    assert all(": " in r for r in g)  # each one a "<Code>: <message>" reason


def test_user_mutant_file_is_checked_when_loaded(tmp_path: Path):
    good = tmp_path / "m.toml"
    good.write_text('[[mutant]]\nid = "u-one"\ntitle = "verify on one approval"\n'
                    'function = "verify"\nold = "if _n < 2:"\nnew = "if _n < 1:"\n')
    [m] = load_user_mutants(good, Model)
    src = generate_vyper(build_ir(Model))
    assert m.apply(src) != src and "if _n < 1:" in m.apply(src)
    bad = {"missing": '[[mutant]]\nid = "u"\ntitle = "t"\nold = "x"\n',
           "absent": '[[mutant]]\nid = "u"\ntitle = "t"\nold = "no such text"\nnew = "y"\n',
           "taken": '[[mutant]]\nid = "a-missing-role-check"\ntitle = "t"\nold = "x"\n'
                    'new = "y"\n',
           "toml": "[[mutant]\n"}
    for name, text in bad.items():
        f = tmp_path / f"{name}.toml"
        f.write_text(text)
        with pytest.raises(ValueError, match=str(f.name)):
            load_user_mutants(f, Model)
    r = proml("mutate", "--mutant-file", str(tmp_path / "absent.toml"))
    assert r.returncode == 2 and "exactly once" in r.stderr and "Traceback" not in r.stderr
    # a replacement vyper rejects is an input error at once (it was an ERROR row, without its
    # reason, after minutes of the unmutated run)
    broken = tmp_path / "broken.toml"
    broken.write_text('[[mutant]]\nid = "u-broken"\ntitle = "t"\nfunction = "verify"\n'
                      'old = "if _n < 2:"\nnew = "if _n < 2"\n')
    with pytest.raises(ValueError, match=r"u-broken.*does not compile .*fix its new text"):
        load_user_mutants(broken, Model)
    r = proml("mutate", "--mutant-file", str(broken))
    assert r.returncode == 2 and "does not compile" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("lifecycle", ["Model", "Dataset"])
def test_every_guard_of_the_paper_contracts_is_hit_at_the_default_count(lifecycle: str):
    r = proml("mutate", "--coverage", "--lifecycle", lifecycle, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    [cov] = json.loads(r.stdout)
    assert cov["suite_passed"] and not cov["missed"]
    # by name, the CLI takes the paper's lifecycles as they are: the consortium design
    guards = guard_reasons(generate_vyper(build_ir(getattr(lifecycles, lifecycle))))
    assert any(r.startswith("QuorumNotReached") for r in guards)
    assert {g["reason"] for g in cov["guards"]} == set(guards)
    # every guard is hit, except the ones named beyond a sequence's budget (the 256-domain
    # cap: 255 admissions by quorum), each with its reason
    ir = build_ir(getattr(lifecycles, lifecycle))
    assert {g["reason"] for g in cov["guards"] if g["sequences"] == 0} == set(budget_guards(ir))
    assert all(g["unreachable"] for g in cov["guards"] if g["sequences"] == 0)


def test_coverage_text_counts_only_guards_hit_and_says_why_the_others_cannot_be(capsys):
    # the text report is what a reviewer reads: a guard no sequence can reach (the member cap)
    # is neither counted as hit nor left at 0 unexplained, and a missed one fails the run
    import argparse

    from proml_sim.threats.cli_mutate import _print_coverage
    from proml_sim.threats.properties import GuardCoverage

    cap, other, missed = "InvalidProposal: cap", "RoleNotAllowed: x", "EvidenceRequired: y"
    why = "reachable only after 255 admissions by quorum"
    args = argparse.Namespace(json=False, seed=3)
    row = GuardCoverage("L", "registry", 12, {cap: 1, other: 2, missed: 1},
                        {other: 5}, True, {cap: why})
    assert _print_coverage(args, [row]) == 1
    out = capsys.readouterr().out
    assert "L (registry): 1 of 3 guards hit in 12 sequences (seed 3); 1 no sequence can hit" in out
    assert f"not by a sequence: {why}" in out
    assert out.count("not by a sequence") == 1  # the missed guard is not excused
    full = GuardCoverage("L", "registry", 12, {cap: 1, other: 2}, {other: 5}, True, {cap: why})
    assert _print_coverage(args, [full]) == 0
