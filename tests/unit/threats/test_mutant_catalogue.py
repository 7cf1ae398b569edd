"""The generated mutant catalogue (`proml mutate --catalogue`): found in the contract text of
any lifecycle, every guard / comparison / bound covered, equivalent mutants listed with the
reason; a bounded sample is killed; a surviving planted mutant is exit 1.  Random-lifecycle
guard coverage (`proml mutate --coverage --random N`).

Budget (default run, 2 cores): about 40 s, most of it the killed samples and the survivor.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from proml_sim.codegen import generate_vyper
from proml_sim.ir import build_ir
from proml_sim.ir.strategies import draw_lifecycles
from proml_sim.lifecycles import Dataset, GovernedModel, Model, SingleAdminModel
from proml_sim.threats.mutant_catalogue import (
    KINDS,
    catalogue,
    format_catalogue,
    run_catalogue,
    sample_ids,
)
from proml_sim.threats.mutants import MutantAnchorError
from proml_sim.threats.properties import guard_reasons, unreachable_guards

LIFECYCLES = [Model, Dataset, GovernedModel]


def _comparisons(line: str) -> int:
    """Comparison operators of a condition line, counted by the tokenizer (independently of
    the catalogue's ast walk): ==, !=, <, <=, >, >=, in, not in."""
    toks = [t.string for t in tokenize.generate_tokens(io.StringIO(line.strip()).readline)
            if t.type in (tokenize.OP, tokenize.NAME)]
    n = sum(t in ("==", "!=", "<", "<=", ">", ">=") for t in toks)
    return n + sum(t == "in" for t in toks)  # `not in` is one operator, counted by its `in`


def proml(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "proml_sim.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("lifecycle", LIFECYCLES, ids=lambda c: c.__name__)
def test_every_guard_and_comparison_of_the_generated_text_is_a_mutant(lifecycle: type) -> None:
    src = generate_vyper(build_ir(lifecycle))
    cat = catalogue(lifecycle)
    guards = [m for m in cat if m.kind == "guard"]
    # one guard mutant per assert/raise site carrying a revert reason
    assert len(guards) == sum(guard_reasons(src).values())
    # every comparison operator of a guard or branch condition has its compare mutant
    lines = src.split("\n")
    conds = [ln for ln in lines if re.match(r"\s+(assert|if|elif) ", ln)]
    assert len([m for m in cat if m.kind == "compare"]) == sum(map(_comparisons, conds))
    assert len({m.id for m in cat}) == len(cat)  # ids unique
    for m in cat:  # each mutant changes its one line, and only that line
        mutated = m.apply(src).split("\n")
        assert mutated[m.line - 1] == m.new != m.old == lines[m.line - 1]
        assert mutated[: m.line - 1] == lines[: m.line - 1]
        assert mutated[m.line:] == lines[m.line:]


@pytest.mark.parametrize("lifecycle", [*LIFECYCLES, SingleAdminModel], ids=lambda c: c.__name__)
def test_each_state_and_role_of_a_steps_masks_is_a_mutant(lifecycle: type) -> None:
    # source: one mutant per (step, state), the step's source mask with that state's bit
    # flipped (the masks recomputed from the IR, not read back from the text); role: one per
    # (step, role) on the role guard, and again on the mask _approve counts with (k-of-n steps)
    ir = build_ir(lifecycle)
    cat = catalogue(lifecycle, kinds=("source", "role"))
    assert {m.kind for m in cat} == {"source", "role"}
    for t in ir.transitions:
        sources = sum(1 << ir.state(s).index for s in t.sources)
        roles = ir.role_mask(t.by)
        for kind, items, mask, prefix in (("source", ir.states, sources, f"source-{t.name}-"),
                                          ("role", ir.roles, roles, f"role-{t.name}-")):
            ms = [m for m in cat if m.kind == kind and m.id.startswith(prefix)
                  and "-approve-" not in m.id]
            assert len(ms) == len(items), (t.name, kind)
            for m, item in zip(ms, items, strict=True):
                added = not mask & (1 << item.index)
                assert m.id == f"{prefix}{'add' if added else 'drop'}-{item.name}"
                assert f"mask {mask} -> {mask ^ (1 << item.index)})" in m.title
                assert item.name in m.title and m.function == t.name
        approve = [m for m in cat if m.id.startswith(f"role-{t.name}-approve-")]
        assert len(approve) == (len(ir.roles) if t.approvals > 1 else 0)
        assert all(f"mask {roles} -> " in m.title for m in approve)


def test_bounds_are_the_thresholds_and_capacities_not_masks() -> None:
    # the single-admin Model: its line numbers (the ids) carry no governance code
    titles = {m.id: m.title for m in catalogue(SingleAdminModel) if m.kind == "bound"}
    assert "bound-verify-8-2-1" in titles and "bound-verify-8-2+1" in titles  # _n < 2 (k)
    assert "bound-_approve-6-2-1" in titles  # len(_entries) >= 16 (approval slots)
    assert {"bound-N_ROLES-1", "bound-N_ROLES+1"} <= set(titles)
    assert not any("ADMIN_TABLE" in t for t in titles.values())  # a packed table, no bound
    assert not any(" & " in t.split("`")[1] for t in titles.values() if "`" in t
                   and "changed to" in t and t.split("changed to")[0].endswith("& "))
    gov = {m.id for m in catalogue(GovernedModel) if m.kind == "bound"}
    assert {"bound-QUORUM-1", "bound-QUORUM+1", "bound-MAX_DOMAINS-1"} <= gov


def test_equivalent_mutants_are_listed_with_the_reason() -> None:
    eq = {m.id: m.equivalent for m in catalogue(Model) if m.equivalent}
    assert set(eq) == {"bound-_seen-1+1", "bound-_entries-1+1"}
    assert "never holds more than 17" in eq["bound-_seen-1+1"]
    assert "never reached" in eq["bound-_entries-1+1"]


def test_the_catalogue_follows_the_generator_on_random_lifecycles() -> None:
    for i, lc in enumerate(draw_lifecycles(6, seed=3)):
        ir = dataclasses.replace(build_ir(lc), name=f"R{i}")
        src = generate_vyper(ir)
        cat = catalogue(ir)
        assert len([m for m in cat if m.kind == "guard"]) == sum(guard_reasons(src).values())
        dead = unreachable_guards(ir)
        for m in cat:
            assert m.apply(src) != src
            reason = re.search(r'guard "(.*)" removed', m.title)
            if m.kind == "guard" and reason and reason.group(1) in dead:
                assert m.equivalent and "never fails" in m.equivalent
    # a source that is not the one the catalogue was made from: loud, never a silent no-op
    m = catalogue(Model)[0]
    with pytest.raises(MutantAnchorError):
        m.apply(generate_vyper(build_ir(Dataset)))


def test_draw_lifecycles_is_reproducible_and_distinct() -> None:
    a = [build_ir(c) for c in draw_lifecycles(4, seed=7)]
    b = [build_ir(c) for c in draw_lifecycles(4, seed=7)]

    def shape(ir: object) -> str:
        return dataclasses.replace(ir, name="R").fingerprint()  # type: ignore[type-var]
    assert [shape(x) for x in a] == [shape(x) for x in b]
    assert len({shape(x) for x in a}) == 4


def test_draw_lifecycles_passes_over_what_keep_refuses() -> None:
    """(``--coverage --random`` keeps only draws a chain can deploy, EIP-170.)"""
    def fp(c: type) -> str:
        return dataclasses.replace(build_ir(c), name="R").fingerprint()

    first = fp(draw_lifecycles(1, seed=7)[0])
    kept = [fp(c) for c in draw_lifecycles(2, seed=7, keep=lambda c: fp(c) != first)]
    assert len(set(kept)) == 2 and first not in kept


def test_the_quorum_guard_of_a_quorum_of_one_is_unreachable() -> None:
    """Quorum 1: the proposer's domain votes as it proposes, and members change only by an
    execution, which closes every open proposal: QuorumNotReached can never be raised."""
    from proml_sim import Artefact, Consortium, Role, State

    def lifecycle(quorum: int) -> type:
        class Q(Artefact):
            r = Role()
            a = State(initial=True, by=r)
            b = State(final=True)
            go = a.to(b, by=r)
            governance = Consortium(quorum=quorum)
        return Q

    reason = "QuorumNotReached: Q: proposal lacks a quorum of member domains; collect more votes"
    assert any(r.startswith(reason) for r in unreachable_guards(build_ir(lifecycle(1))))
    assert not any(r.startswith(reason) for r in unreachable_guards(build_ir(lifecycle(2))))


def test_unreachable_separation_guard_is_recognised() -> None:
    from proml_sim import Artefact, Role, State

    class OneWay(Artefact):
        r = Role()
        a = State(initial=True, by=r)
        b = State()
        c = State(final=True)
        go = a.to(b, by=r)
        back = b.to(a, by=r)
        end = b.to(c, by=r)
        # after `end` the artefact is final: `go` can never follow it on the same artefact
        late = a.to(c, by=r, separate_from="end")
        # after `go` the artefact can come back to a (through `back`): reachable
        again = a.to(b, by=r, separate_from="go")

    dead = unreachable_guards(build_ir(OneWay))
    assert list(dead) == ["SeparationOfDuty: OneWay.late: the actor of end may not also do this"]


def test_sample_spreads_over_the_kinds() -> None:
    cat = catalogue(Model)
    for n in (len(KINDS), 10):  # one of each kind as soon as n allows
        ids = sample_ids(cat, n)
        assert len(ids) == n == len(set(ids))
        assert {next(m.kind for m in cat if m.id == i) for i in ids} == set(KINDS)


@pytest.mark.slow  # ~1 min: the default run stays under 10 min on 2 cores
def test_a_bounded_sample_is_killed_and_a_planted_survivor_is_exit_1(tmp_path: Path) -> None:
    # 5 examples: each of these dies within 3 (a survivor would use them all)
    run = run_catalogue(Model, seeds=(0,), max_examples=5, steps=30, workers=0,
                        only=("guard-verify-6", "cmp-verify-8-1", "bound-_seen-1-1",
                              "bound-approvers-1+1"))
    status = {e.id: run.status_of(e.id) for e in run.entries}
    assert status == {"guard-verify-6": "killed", "cmp-verify-8-1": "killed",
                      "bound-_seen-1-1": "killed", "bound-approvers-1+1": "not-compiled"}
    assert run.all_killed and "stillborn bound-approvers-1+1" in format_catalogue(run)
    # a planted mutant that changes nothing the chain does (a comment) survives: exit 1
    f = tmp_path / "m.toml"
    f.write_text('[[mutant]]\nid = "u-comment"\ntitle = "a comment edited"\nfunction = '
                 '"_approve"\nold = "at most 16 entries"\nnew = "at most 15 entries"\n')
    r = proml("mutate", "--mutant-file", str(f), "--mutant", "u-comment", "--max-examples",
              "3", "--steps", "5", "--json")
    assert r.returncode == 1, r.stderr
    [row] = json.loads(r.stdout)["mutants"]
    assert row["id"] == "u-comment" and row["status"] == "survived"


def test_catalogue_cli_lists_and_refuses_unknown_ids() -> None:
    r = proml("mutate", "--catalogue", "--list", "--lifecycle", "Dataset", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert {row["kind"] for row in rows} == set(KINDS)
    r = proml("mutate", "--catalogue", "--mutant", "no-such-mutant", "--workers", "0")
    assert r.returncode == 2 and "--list" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("argv", [
    ("--layout", "factory"),              # a coverage option on the plain mutant run
    ("--kind", "guard"),                  # a catalogue option elsewhere
    ("--coverage", "--seeds", "3"),
    ("--coverage", "--catalogue"),
    ("--governance",),                    # needs --random
    ("--coverage", "--random", "2", "--lifecycle", "Dataset"),  # random draws replace it
    ("--catalogue", "--chain-only"),
    ("--coverage", "--mutant", "b"),
    ("--workers", "2"),
])
def test_an_option_that_does_nothing_in_the_run_is_exit_2(argv: tuple[str, ...]) -> None:
    # never silently ignored: the user asked for something the run would not do
    r = proml("mutate", *argv)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and "proml mutate --help" in r.stderr, r.stderr


@pytest.mark.slow
def test_a_sample_of_the_dataset_catalogue_is_killed_on_one_seed() -> None:
    """24 mutants of one paper lifecycle's catalogue (each kind) on seed 0 at the default
    example count; the whole catalogue's runs are the README's figures."""
    r = proml("mutate", "--catalogue", "--lifecycle", "Dataset", "--seed", "0", "--sample",
              "24", "--json")
    out = json.loads(r.stdout)
    assert out["suite_ok"] and not out["survived"], out["survived"]
    assert r.returncode == 0 and out["run"] == 24 and out["sampled"]
    assert {m["kind"] for m in out["mutants"] if m["results"]} == set(KINDS)


@pytest.mark.slow
@pytest.mark.parametrize("n, extra", [(4, ()), (3, ("--governance",))],
                         ids=["plain", "consortium"])
def test_every_guard_of_random_lifecycles_is_hit(n: int, extra: tuple[str, ...]) -> None:
    """(Seed 0's third consortium lifecycle has a domain-separated step whose role only the
    founding domain may hold.)"""
    # (seed 0's consortium draws: 8.5 min alone on 2 cores, one lifecycle most of it; beside
    # the other slow suites it took over 10: a timeout is a hang guard, not a speed check)
    r = proml("mutate", "--coverage", "--random", str(n), *extra, "--seed", "0", "--json",
              timeout=2400)
    rows = json.loads(r.stdout)
    assert len(rows) == n
    for row in rows:
        assert row["suite_passed"] and not row["missed"], (row["lifecycle"], row["missed"])
    assert r.returncode == 0


@pytest.mark.slow  # 12-16 s of property runs (CI runs it)
def test_a_constructor_mutant_is_not_taken_for_equivalent() -> None:
    """The consortium's founding-domain guard lives in the constructor: its mutant leaves the
    runtime code as it was, so equivalence is judged on the init code (constructor + runtime),
    and the mutant is run -- and killed (the probe deploys with a zero founding domain)."""
    from proml_sim.compiler import compile_artefact
    from proml_sim.threats.mutant_catalogue import run_one
    from proml_sim.threats.mutants import build_mutant

    entry = next(e for e in catalogue(Model) if e.id == "guard-__init__-1")
    assert entry.equivalent is None
    mutant = build_mutant(entry.as_mutant(), Model)
    original = compile_artefact(Model)
    assert mutant.runtime_bytecode == original.runtime_bytecode
    assert mutant.bytecode != original.bytecode
    assert run_one(Model, entry.id, 0, 10, 30).status == "killed"  # ~7 s


def test_the_capacity_probe_checks_the_member_cap_both_ways() -> None:
    """The 256-member cap is beyond a generated sequence's budget; the capacity probe (once per
    run) admits domains by quorum up to it, in lock-step with the reference: the unmutated
    contract passes, and the cap moved either way or its guard removed is caught, naming the
    admission that differs."""
    from proml_sim.compiler import compile_artefact
    from proml_sim.threats.mutants import build_mutant
    from proml_sim.threats.properties import capacity_probe, prepare_layout

    assert capacity_probe(prepare_layout(compile_artefact(Dataset), None)) == []
    seen = {}
    for mid in ("bound-MAX_DOMAINS-1", "bound-MAX_DOMAINS+1", "guard-_gov_check-2"):
        entry = next(e for e in catalogue(Dataset) if e.id == mid)
        [v] = capacity_probe(prepare_layout(build_mutant(entry.as_mutant(), Dataset), None))
        assert v.prop == "lock-step" and "add_domain" in v.message
        seen[mid] = re.search(r"with (\d+) members", v.message).group(1)  # type: ignore[union-attr]
    assert seen == {"bound-MAX_DOMAINS-1": "255", "bound-MAX_DOMAINS+1": "256",
                    "guard-_gov_check-2": "256"}


@pytest.mark.slow  # 12-16 s of property runs (CI runs it)
def test_domain_separation_is_probed_through_a_domain_that_may_hold_the_role() -> None:
    """``fin`` is separated by domain from ``go``; ``go``'s holders (role ``ro``) are first
    in domains that may not hold ADMIN, which ``fin`` needs: the probe has ``go`` done by a
    holder in the founding domain, so an account of that domain can try ``fin`` (and is
    refused), without taking a role its domain admin already held."""
    from proml_sim.compiler import compile_artefact
    from proml_sim.dsl import ADMIN, Artefact, Consortium, Role, State
    from proml_sim.threats.properties import guard_coverage

    class DomainSep(Artefact):
        ro = Role()
        a = State(initial=True)
        b = State()
        c = State(final=True)
        go = a.to(b, by=ro)
        fin = b.to(c, by=ADMIN, separate_domain_from=["go"])
        governance = Consortium(quorum=2)

    cov = guard_coverage(compile_artefact(DomainSep), max_examples=10, seed=0)
    reason = "SeparationOfDuty: DomainSep.fin: the trust domain that did go may not also do this"
    assert cov.suite_passed and cov.hits.get(reason, 0) >= 1, cov.to_json()


@pytest.mark.slow  # 25 s of property runs (CI runs it)
def test_a_threshold_into_a_final_state_is_done_with_exactly_k_approvals() -> None:
    """``sign`` (3 approvals, two steps in, into a final state) is on no later step's walk and
    rarely completed by chance draws: the guard probe does it with exactly k approvals, so
    its threshold mutants (``_n < 3`` moved by one, the bound changed) die within 3 examples."""
    from proml_sim.dsl import Artefact, Role, State

    class Sign(Artefact):
        maker = Role()
        signer = Role()
        a = State(initial=True)
        b = State()
        c = State()
        done = State(final=True)
        go = a.to(b, by=maker)
        check = b.to(c, by=maker)
        sign = c.to(done, by=[maker, signer], approvals=3, separate_from="check")

    ids = tuple(m.id for m in catalogue(Sign)
                if m.function == "sign" and "_n < 3" in m.old and m.equivalent is None)
    assert len(ids) == 3, ids
    run = run_catalogue(Sign, seeds=(0,), max_examples=3, steps=30, workers=0, only=ids)
    assert {i: run.status_of(i) for i in ids} == dict.fromkeys(ids, "killed")


def test_the_kind_option_offers_every_kind_of_the_catalogue() -> None:
    import argparse

    from proml_sim.threats.cli_mutate import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    mutate = next(a for a in parser._subparsers._group_actions  # type: ignore[union-attr]
                  if isinstance(a, argparse._SubParsersAction)).choices["mutate"]
    kind = next(a for a in mutate._actions if a.dest == "kind")
    assert tuple(kind.choices or ()) == KINDS
