"""Every catalogued threat model, run as a user runs it (``proml threats run ID --param ...
--json``) at generated parameter values inside its ``[ranges]``, ends in exit 0 with a
well-formed report, or in exit 2 naming a rule the ranges cannot state (issue 14: "several
threat verdicts hold only at the parameters they were written for").

Values are drawn around each parameter's default: up to three times it, down to zero, the
small integers and the range's own bounds, one to three parameters at a time, at a random
seed.  The same sweep, run by hand before it was a test, found a horizon fixed in code
cutting S5's and S7's attacks short (an internal error at ``victims = 20``), a negative delay
at T2's ``verifiers = 90`` and D1's unequal trial sets at a short ``horizon_s``; the fixes' own
tests pin those cases.

Checked per run: the exit code; no traceback; an end within ten minutes (S6 with
``poll_s = 1e-300`` never ended before its range had a floor); each side's verdict is one of
the runner's labels; trial counts in order (successes <= trials); every rate inside its 95 %
interval, inside [0, 1].  (A sweep exits 0 once it ran: its points' verdicts may differ from
the expected ones, which are for the defaults; ``matches_expected`` says which.)  It also found
T10's detection curve of zeros with no cheating step (a rate over no cases: ``kit.ratio``).

``slow``: CI runs it at ``PROML_PARAM_EXAMPLES`` (default 4) examples per model, about 2 min.
A run costs seconds to minutes, so failures are reported as drawn, not shrunk.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from proml_sim.threats.catalogue import load_catalogue
from proml_sim.threats.runner import _literal, implemented
from tests.fixtures.cli import run_cli

pytestmark = pytest.mark.slow

CATALOGUE = load_catalogue()
IDS = sorted(tm.id for tm in implemented(CATALOGUE.values()))
EXAMPLES = int(os.environ.get("PROML_PARAM_EXAMPLES", "4"))
#: one seed at up to three times the defaults takes seconds (at 20 examples a model, C1's twenty
#: runs took 124 s in all, the most of any model); ten minutes is a run that does not end
ALARM_S = 600
VERDICTS = {"prevented", "detected", "undetected", "no_attack", "out_of_scope",
            "documented_limit"}


def _values(tm: Any, name: str, v: Any) -> st.SearchStrategy[Any] | None:
    """Values for one parameter around its default ``v``, at most three times it (a run's cost
    grows with its parameters), the largest first (Hypothesis tries its first choices first);
    None for one not drawn (a list, a free string: a lifecycle path)."""
    if isinstance(v, bool):
        return st.booleans()
    rules = tm.ranges.get(name, ())
    bounds = [b for op, b in rules if op != "in" and isinstance(b, int | float)]
    if isinstance(v, int):
        top = max(3 * v, 3)
        picks = [3 * v, 2 * v, v + 1, v // 2, 2, 1, 0, *bounds, *(b + 1 for b in bounds)]
        return st.one_of(st.sampled_from(_unique(int(x) for x in picks if 0 <= x <= top)),
                         st.integers(0, top))
    if isinstance(v, float):
        top = max(3 * v, 1.0)
        picks = [3 * v, 2 * v, v / 2, v / 10, 1.0, 0.0, *bounds]
        return st.one_of(st.sampled_from(_unique(float(x) for x in picks if 0 <= x <= top)),
                         st.floats(0, top, allow_nan=False, allow_infinity=False))
    options = [b for op, b in rules if op == "in"]
    return st.sampled_from(list(options[0])) if options else None


def _unique(xs: Any) -> list[Any]:
    return list(dict.fromkeys(xs))


@st.composite
def assignments(draw: st.DrawFn, tm: Any) -> dict[str, Any]:
    """One to three of ``tm``'s parameters at in-range values other than the defaults."""
    reads = getattr(tm.play, "reads", {})
    drawn = {n: s for n, v in sorted(tm.parameters.items())
             if n not in reads and (s := _values(tm, n, v)) is not None}
    assume(drawn)
    names = draw(st.lists(st.sampled_from(sorted(drawn)), min_size=1,
                          max_size=min(3, len(drawn)), unique=True))
    values = {n: draw(drawn[n]) for n in names}
    values = {n: x for n, x in values.items() if x != tm.parameters[n]}
    assume(values)
    assume(dataclasses.replace(tm, parameters={**tm.parameters, **values}).out_of_range()
           is None)
    return values


def run(argv: list[str]) -> tuple[int, str, str]:
    return run_cli(argv, ALARM_S, "an in-range value should not make a run endless (S6 "
                   "poll_s=1e-300 did before [ranges] had a floor)")


def _not_json(constant: str) -> Any:
    raise AssertionError(f"the --json report holds {constant}, which is not JSON")


def check_side(tid: str, side: str, r: dict[str, Any]) -> None:
    assert r["verdict"] in VERDICTS, (tid, side, r["verdict"])
    assert 0 <= r["trial_successes"] <= r["trials"], (tid, side, r)
    for key, value in r.items():  # every rate (and sweep of a rate) inside its interval
        if key.endswith("_ci") or not key.endswith(("asr", "_rate")) or value is None:
            continue
        points = ([(y, lo, hi) for (_, y, _), (_, lo, hi) in zip(value, r[f"{key}_ci"],
                                                                 strict=True)]
                  if isinstance(value, list) else [(value, *r[f"{key}_ci"])])
        for y, lo, hi in points:
            assert 0.0 <= lo <= y <= hi <= 1.0, (tid, side, key, y, lo, hi)


@pytest.mark.parametrize("tid", IDS)
@settings(max_examples=EXAMPLES, deadline=None,
          phases=(Phase.explicit, Phase.reuse, Phase.generate),
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(data=st.data(), seed=st.integers(0, 1000))
def test_a_threat_model_at_in_range_parameters_gives_a_well_formed_verdict(
        tid: str, data: st.DataObject, seed: int) -> None:
    tm = CATALOGUE[tid]
    values = data.draw(assignments(tm), label="parameters")
    argv = ["threats", "run", tid, "--seeds", "1", "--seed", str(seed), "--json"]
    for name, value in values.items():
        argv += ["--param", f"{name}={_literal(value)}"]
    code, out, err = run(argv)
    assert "Traceback" not in out + err, (argv, err)
    assert code in (0, 2), (argv, code, out, err)
    if code == 2:  # a rule [ranges] cannot state (approvals > 16): one line naming the fix
        problem = json.loads(err.strip().splitlines()[-1])
        assert problem["code"] == 2 and problem["error"] and "\n" not in problem["error"], (
            argv, problem)
        return
    (report,) = json.loads(out, parse_constant=_not_json)  # NaN and Infinity are not JSON
    assert report["id"] == tid and report["sweep"] == list(values), (argv, report)
    (point,) = report["points"]
    for side in ("baseline", "proml"):
        check_side(tid, side, point[side])
    assert isinstance(point["matches_expected"], bool), (argv, point)
