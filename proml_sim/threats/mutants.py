"""Mutation testing of the generated contracts: plant access-control bugs, show the threat
properties kill every one.

A mutant is a text transformation of the *generated Vyper source* of one contract of a
lifecycle (the registry, or the clone implementation).  Every transformation has an anchor:
the exact generated text it changes, derived from the IR and the guard messages where it can
be.  When the anchor is not found exactly once the mutant raises :class:`MutantAnchorError`
(never silently returns the original), so a change in the generator shows up as a loud error
here rather than as a mutant that "survives" because it was never planted.

:func:`mutants_for` lists the mutants of a lifecycle (the required ones first), each aimed at
a transition chosen from the IR; :func:`run_mutation` compiles each one, runs
:func:`proml_sim.threats.properties.run_threat_properties` on it and on the unmutated contracts
(which must pass, or the suite is broken), and returns the kill matrix.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proml_sim.codegen import generate_vyper
from proml_sim.codegen.vyper import registry_access
from proml_sim.compiler import CompiledContract, compile_artefact, compile_source
from proml_sim.errors import CompilationError
from proml_sim.fsutil import atomic_write_json, read_toml
from proml_sim.ir import LifecycleIR, TransitionIR, build_ir
from proml_sim.ir import messages as msg
from proml_sim.threats.properties import PropertyResult, run_threat_properties

__all__ = [
    "Mutant",
    "MutantAnchorError",
    "MutantResult",
    "MutationReport",
    "NotApplicable",
    "build_mutant",
    "governance_mutants",
    "load_user_mutants",
    "mutants_for",
    "run_mutation",
    "write_report",
]


class MutantAnchorError(ValueError):
    """A mutant's anchor text is not in the source (or not exactly once): the generator and the
    mutant disagree, and the mutant refuses to produce anything."""

    def __init__(self, mutant: str, where: str, anchor: str, found: int) -> None:
        self.mutant, self.where, self.anchor, self.found = mutant, where, anchor, found
        super().__init__(
            f"mutant {mutant}: expected the anchor exactly once in {where}, found it {found} "
            f"time(s): {anchor!r}. The generated source no longer matches this mutant; update "
            "proml_sim/threats/mutants.py to the generator's current text."
        )


class NotApplicable(Exception):
    """The lifecycle has nothing this mutant could break (for example no k-of-n transition)."""


# -- anchored edits ------------------------------------------------------------------------------
def _function(source: str, name: str, mutant: str) -> tuple[int, int]:
    """Start and end of ``def name(...)`` up to the next top-level decorator."""
    starts = [m.start() for m in re.finditer(rf"^def {re.escape(name)}\(", source, re.M)]
    if len(starts) != 1:
        raise MutantAnchorError(mutant, "the source", f"def {name}(", len(starts))
    start = starts[0]
    nxt = re.search(r"^@", source[start:], re.M)
    return start, start + nxt.start() if nxt else len(source)


def _edit(source: str, fn: str | None, old: str, new: str | Callable[[re.Match[str]], str],
          mutant: str, *, regex: bool = False) -> str:
    """Replace ``old`` (text or regex) by ``new``, exactly once, inside function ``fn`` (or the
    whole source); anything else raises :class:`MutantAnchorError`."""
    start, end = _function(source, fn, mutant) if fn else (0, len(source))
    body = source[start:end]
    pattern = old if regex else re.escape(old)
    found = len(re.findall(pattern, body, re.M))
    if found != 1:
        raise MutantAnchorError(mutant, f"function {fn}" if fn else "the source", old, found)
    if regex:
        mutated = re.sub(pattern, new, body, count=1, flags=re.M)
    else:
        assert isinstance(new, str)
        mutated = body.replace(old, new, 1)
    return source[:start] + mutated + source[end:]


def _quoted(err: Exception) -> str:
    return f'"{getattr(err, "reason", str(err))}"'


def _role_check(ir: LifecycleIR, t: TransitionIR) -> str:
    """Regex of ``t``'s role assert line (any layout: the role lookup expression varies)."""
    return (rf"^    assert (?P<who>.+) & {ir.role_mask(t.by)} != 0, "
            rf"{re.escape(_quoted(msg.wrong_role(ir, t)))}\n")


def _source_mask(ir: LifecycleIR, names: tuple[str, ...]) -> int:
    mask = 0
    for s in names:
        mask |= 1 << ir.state(s).index
    return mask


# -- the mutants -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mutant:
    """One planted bug: ``apply(source)`` returns the mutated text of ``part``'s source."""

    id: str
    title: str
    how_killed: str
    layout: str
    part: str
    target: str
    required: bool
    apply: Callable[[str], str] = field(repr=False, compare=False)

    @property
    def letter(self) -> str:
        return self.id.split("-", 1)[0]


def _first(ir: LifecycleIR, pred: Callable[[TransitionIR], bool], what: str) -> TransitionIR:
    for t in ir.transitions:
        if pred(t):
            return t
    raise NotApplicable(f"{ir.name} has no {what}")


def _guarded_target(ir: LifecycleIR) -> TransitionIR:
    """The transition to widen: one whose sources are entered only through a guarded step
    (k-of-n or separation of duty), so widening skips that guard; else the first transition
    not already allowed from every state."""
    all_states = {s.name for s in ir.states}

    def guarded(state: str) -> bool:
        entries = [u for u in ir.transitions if u.target == state]
        return (state != ir.initial.name and bool(entries)
                and all(u.approvals > 1 or u.separate_from for u in entries))

    for t in ir.transitions:
        if set(t.sources) != all_states and all(guarded(s) for s in t.sources):
            return t
    return _first(ir, lambda t: set(t.sources) != all_states,
                  "transition that is not allowed from every state")


def _missing_role_check(ir: LifecycleIR) -> Mutant:
    t = ir.transitions[0]
    mid = "a-missing-role-check"
    return Mutant(
        mid, f"{t.name} does not check the caller's role", "role-holder (an account without "
        f"{'|'.join(t.by)} does {t.name}); lock-step", "registry", "registry", t.name, True,
        lambda s: _edit(s, t.name, _role_check(ir, t), "", mid, regex=True),
    )


def _tx_origin(ir: LifecycleIR) -> Mutant:
    mid = "b-tx-origin"

    def origin(m: re.Match[str]) -> str:
        if m.group(0).count("msg.sender") != 1:
            raise MutantAnchorError(mid, "a role check", "msg.sender", m.group(0).count(
                "msg.sender"))
        return m.group(0).replace("msg.sender", "tx.origin")

    def apply(source: str) -> str:
        for t in ir.transitions:
            source = _edit(source, t.name, _role_check(ir, t), origin, mid, regex=True)
        return source

    return Mutant(
        mid, "every transition authorises tx.origin instead of msg.sender", "role-holder (a "
        "phished role holder's relay call is accepted with the relay as actor); lock-step",
        "registry", "registry", "every transition", True, apply,
    )


_INIT_GUARD = (
    '    assert msg.sender == _FACTORY, "initialize: only the factory may initialise an '
    'artefact"\n',
    '    assert self.record == 0, "initialize: artefact already initialised"\n',
)


def _recallable_initialiser(ir: LifecycleIR) -> Mutant:
    mid = "c-recallable-initialiser"

    def apply(source: str) -> str:
        for line in _INIT_GUARD:
            source = _edit(source, "initialize", line, "", mid)
        return source

    return Mutant(
        mid, "the clone implementation's initialize guard is gone (anyone, any time)",
        "initialiser (re-initialising a proxy is accepted); replay (the record is reset "
        "without an event)", "clone", "clone.artefact", "initialize", True, apply,
    )


def _double_count(ir: LifecycleIR) -> Mutant:
    t = _first(ir, lambda t: t.approvals > 1, "k-of-n transition")
    mid = "d-double-count"

    def apply(source: str) -> str:
        source = _edit(source, "_approve",
                       "        if _a == msg.sender:\n            return ALREADY\n", "", mid)
        # counting domains, the caller's own domain seeds the "seen" set: without it the
        # caller's earlier approval counts as another domain
        return _edit(source, "_approve", "] = [_mine]\n", "] = []\n", mid)

    return Mutant(
        mid, "_approve does not recognise the caller's earlier approval: one approver counts "
        "twice", f"threshold ({t.name} fires with one approver); lock-step", "registry",
        "registry", t.name, True, apply,
    )


def _caller_version(ir: LifecycleIR) -> Mutant:
    t = ir.transitions[0]
    mid = "e-caller-version"
    args = ("id: bytes32, digest: bytes32, locator: String[256], inputs: DynArray[bytes32, 16]"
            if t.evidence else "id: bytes32")

    def apply(source: str) -> str:
        source = _edit(source, t.name, f"def {t.name}({args}):\n",
                       f"def {t.name}({args}, version: uint256 = 0):\n", mid)
        return _edit(source, t.name, "    _v: uint256 = _r >> 8\n",
                     "    _v: uint256 = _r >> 8\n    if version != 0:\n        _v = version\n",
                     mid)

    return Mutant(
        mid, f"{t.name} takes an optional caller-supplied version used instead of the stored "
        "one", "versions (a fast-forward or rollback version is recorded); caller-version",
        "registry", "registry", t.name, True, apply,
    )


def _wrong_source_state(ir: LifecycleIR) -> Mutant:
    t = _guarded_target(ir)
    mid = "f-wrong-source-state"
    every = _source_mask(ir, tuple(s.name for s in ir.states))
    old = (f"    assert ({_source_mask(ir, t.sources)} >> (_r & 255)) & 1 != 0, "
           f"{_quoted(msg.wrong_state(ir, t))}\n")
    return Mutant(
        mid, f"{t.name} is allowed from every state, not only {'|'.join(t.sources)}",
        "source-state (a transition from a state that is not a source); lock-step",
        "registry", "registry", t.name, True,
        lambda s: _edit(s, t.name, old, old.replace(f"({_source_mask(ir, t.sources)} >>",
                                                     f"({every} >>"), mid),
    )


def _revoke_keeps_role(ir: LifecycleIR) -> Mutant:
    mid = "g-revoke-keeps-role"
    line = ("    self.roles[account] = self.roles[account] & ~(1 << convert(role, uint256))\n")
    return Mutant(
        mid, "revoke_role logs RoleRevoked but does not clear the role bit",
        "replay (storage keeps the role the log revoked); revoked-key", "registry", "registry",
        "revoke_role", False, lambda s: _edit(s, "revoke_role", line, "", mid),
    )


def _grant_without_admin(ir: LifecycleIR) -> Mutant:
    mid = "h-grant-without-admin"
    if ir.consortium is not None:  # the role-admin check is in _gov_domain (grant and revoke)
        line = (f"    assert self._eff(msg.sender) & (1 << _admin) != 0, "
                f"{_quoted(msg.not_role_admin(ir))}\n")
        return Mutant(
            mid, "grant_role (and revoke_role) do not check that a sender who administers no "
            "domain holds the role's admin role", "role-admin (a RoleGranted sent by a holder "
            "of no admin role); lock-step", "registry", "registry", "_gov_domain", False,
            lambda s: _edit(s, "_gov_domain", line, "", mid),
        )
    return Mutant(
        mid, "grant_role does not check the sender holds the role's admin role",
        "role-admin (a RoleGranted sent by a non-admin)", "registry", "registry", "grant_role",
        False, lambda s: _edit(s, "grant_role", "    self._check_admin(role)\n", "", mid),
    )


def _sod_removed(ir: LifecycleIR) -> Mutant:
    t = _first(ir, lambda t: bool(t.separate_from), "separation-of-duty rule")
    other = t.separate_from[0]
    mid = "i-sod-removed"
    pattern = rf"^    assert .+ != msg.sender, {re.escape(_quoted(msg.separation(ir, t, other)))}\n"
    return Mutant(
        mid, f"{t.name} does not check separation of duty from {other}",
        f"separation-of-duty (the actor of {other} does {t.name})", "registry", "registry",
        t.name, False, lambda s: _edit(s, t.name, pattern, "", mid, regex=True),
    )


def _evidence_removed(ir: LifecycleIR) -> Mutant:
    t = _first(ir, lambda t: t.evidence, "transition that needs evidence")
    mid = "j-evidence-removed"
    line = f"    assert digest != empty(bytes32), {_quoted(msg.missing_evidence(ir, t))}\n"
    return Mutant(
        mid, f"{t.name} accepts a zero evidence digest", "evidence (a step without a digest)",
        "registry", "registry", t.name, False, lambda s: _edit(s, t.name, line, "", mid),
    )


def _revoked_approvals_count(ir: LifecycleIR) -> Mutant:
    t = _first(ir, lambda t: t.approvals > 1, "k-of-n transition")
    mid = "k-revoked-approvals-count"
    return Mutant(
        mid, "approvals by since-revoked approvers still count", f"threshold ({t.name} fires "
        "with a revoked approver's approval); lock-step", "registry", "registry", t.name, False,
        lambda s: _edit(s, "_approve", r"^        if .+ & mask == 0:\n            continue\n",
                        "", mid, regex=True),
    )


def _approval_ignores_digest(ir: LifecycleIR) -> Mutant:
    t = _first(ir, lambda t: t.approvals > 1 and t.evidence, "k-of-n transition with evidence")
    mid = "l-approval-ignores-digest"
    old = f"abi_encode(id, convert({t.index}, uint8), _v, digest))"
    return Mutant(
        mid, f"{t.name}'s approvals are counted without the evidence digest (mix-and-match)",
        "replay (approvals stored under another key than the log's); threshold; lock-step",
        "registry", "registry", t.name, False,
        lambda s: _edit(s, t.name, old, old.replace("_v, digest))", "_v, empty(bytes32)))"),
                        mid),
    )


def _approval_ignores_version(ir: LifecycleIR) -> Mutant:
    t = _first(ir, lambda t: t.approvals > 1, "k-of-n transition")
    mid = "m-approval-ignores-version"
    old = f"abi_encode(id, convert({t.index}, uint8), _v, "
    return Mutant(
        mid, f"{t.name}'s approvals are counted without the version (stale approvals count)",
        "replay (approvals stored under another key than the log's); threshold; lock-step",
        "registry", "registry", t.name, False,
        lambda s: _edit(s, t.name, old, old.replace("_v, ", "convert(0, uint256), "), mid),
    )


def _open_registration(ir: LifecycleIR) -> Mutant:
    if not ir.register_by:
        raise NotApplicable(f"{ir.name}: anyone may register already")
    mid = "n-open-registration"
    roles = registry_access(ir).roles.format(who="msg.sender")  # _eff(..) in a consortium
    line = (f"    assert {roles} & {ir.role_mask(ir.register_by)} != 0, "
            f"{_quoted(msg.register_role(ir))}\n")
    return Mutant(
        mid, "register does not check the registrant's role",
        "role-holder (a Registered by a non-holder); lock-step", "registry", "registry",
        "register", False, lambda s: _edit(s, "register", line, "", mid),
    )


def _domains_as_accounts(ir: LifecycleIR) -> Mutant:
    t = _first(ir, lambda t: t.approvals > 1 and t.count == "domains",
               "k-of-n transition counting trust domains")
    mid = "o-domains-as-accounts"
    old = f", {ir.role_mask(t.by)}, True)\n"
    return Mutant(
        mid, f"{t.name} counts approver accounts, not trust domains (Sybil approvers)",
        f"threshold ({t.name} fires with two accounts of one domain); lock-step", "registry",
        "registry", t.name, False,
        lambda s: _edit(s, t.name, old, old.replace("True)", "False)"), mid),
    )


_BUILDERS: tuple[Callable[[LifecycleIR], Mutant], ...] = (
    _missing_role_check, _tx_origin, _recallable_initialiser, _double_count, _caller_version,
    _wrong_source_state, _revoke_keeps_role, _grant_without_admin, _sod_removed,
    _evidence_removed, _revoked_approvals_count, _approval_ignores_digest,
    _approval_ignores_version, _open_registration, _domains_as_accounts,
)
#: ids of the mutants the issue requires, in order
REQUIRED = ("a-missing-role-check", "b-tx-origin", "c-recallable-initialiser", "d-double-count",
            "e-caller-version", "f-wrong-source-state")


def mutants_for(lifecycle: Any) -> list[Mutant | tuple[str, str]]:
    """The mutants of ``lifecycle`` (a DSL class or IR), required ones first, the consortium's
    governance mutants last; a mutant the lifecycle offers no target for is ``(id, reason)``
    instead."""
    ir = build_ir(lifecycle)
    out: list[Mutant | tuple[str, str]] = []
    for builder, mid in zip((*_BUILDERS, *_GOV_BUILDERS), _builder_ids(), strict=True):
        try:
            out.append(builder(ir))
        except NotApplicable as exc:
            out.append((mid, str(exc)))
    return out


def _builder_ids() -> list[str]:
    return [
        *REQUIRED, "g-revoke-keeps-role", "h-grant-without-admin", "i-sod-removed",
        "j-evidence-removed", "k-revoked-approvals-count", "l-approval-ignores-digest",
        "m-approval-ignores-version", "n-open-registration", "o-domains-as-accounts",
        # the consortium's guards (not applicable to the single-admin design)
        "gov-double-vote", "gov-execute-before-quorum", "gov-foreign-enrol",
        "gov-removed-domain-counts",
    ]


# -- consortium governance guards (lifecycles declaring a Consortium) --------------------------
def _need_consortium(ir: LifecycleIR) -> None:
    if ir.consortium is None:
        raise NotApplicable(f"{ir.name} uses the single-admin design (no consortium)")


def _gov_double_vote(ir: LifecycleIR) -> Mutant:
    _need_consortium(ir)
    mid = "gov-double-vote"
    line = f"    assert _mine not in self.gov_votes[id], {_quoted(msg.already_voted(ir))}\n"
    return Mutant(
        mid, "gov_vote counts a domain's vote again", "lock-step (a second vote by one domain "
        "is accepted; one domain reaches quorum alone)", "registry", "registry", "gov_vote",
        True, lambda s: _edit(s, "gov_vote", line, "", mid),
    )


def _gov_early_execute(ir: LifecycleIR) -> Mutant:
    _need_consortium(ir)
    mid = "gov-execute-before-quorum"
    pattern = r"^    assert len\(self.gov_votes\[id\]\) >= .+\n"
    return Mutant(
        mid, "gov_execute does not check the quorum", "lock-step (a proposal with one vote "
        "executes)", "registry", "registry", "gov_execute", True,
        lambda s: _edit(s, "gov_execute", pattern, "", mid, regex=True),
    )


def _gov_foreign_enrol(ir: LifecycleIR) -> Mutant:
    _need_consortium(ir)
    mid = "gov-foreign-enrol"
    line = f"    assert domain == _mine, {_quoted(msg.other_domain(ir))}\n"
    return Mutant(
        mid, "grant_role lets a domain enrol an account into another domain", "lock-step (a "
        "domain admin binds an account to another domain's id)", "registry", "registry",
        "grant_role", True, lambda s: _edit(s, "grant_role", line, "", mid),
    )


def _gov_removed_counts(ir: LifecycleIR) -> Mutant:
    _need_consortium(ir)
    mid = "gov-removed-domain-counts"
    line = "    return self.roles[_a] & self.gov_allowed[self.domains[_a]]\n"
    return Mutant(
        mid, "roles of a removed domain's accounts keep working", "lock-step (a removed "
        "domain's account still acts and its pending approvals still count)", "registry",
        "registry", "_eff", True, lambda s: _edit(s, "_eff", line, "    return self.roles[_a]\n",
                                                   mid),
    )


_GOV_BUILDERS = (_gov_double_vote, _gov_early_execute, _gov_foreign_enrol, _gov_removed_counts)


def governance_mutants(lifecycle: Any) -> list[Mutant]:
    """Mutants of the consortium guards of ``lifecycle`` (which must declare a Consortium):
    a vote counted twice per domain, execution before quorum, a domain enrolling an account
    into another domain, a removed domain's roles still working."""
    ir = build_ir(lifecycle)
    return [b(ir) for b in _GOV_BUILDERS]


def build_mutant(mutant: Mutant, lifecycle: Any) -> CompiledContract:
    """Plant ``mutant`` in the generated source of its part and compile it (disk cache); the
    result carries the lifecycle's IR, so the threat machine can run it."""
    ir = build_ir(lifecycle)
    source = generate_vyper(ir, mutant.part)
    mutated = mutant.apply(source)
    if mutated == source:  # every anchor edits text; this guards the guard
        raise MutantAnchorError(mutant.id, mutant.part, "(no change)", 0)
    compiled = compile_source(mutated, ir.name)
    return dataclasses.replace(compiled, ir=ir, fingerprint=ir.fingerprint())


# -- running -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class MutantResult:
    """One row of the kill matrix.  ``status``: ``killed``, ``survived``, ``not-applicable`` or
    ``not-compiled``."""

    id: str
    title: str
    layout: str
    target: str
    required: bool
    status: str
    prop: str | None = None
    props: tuple[str, ...] = ()
    examples: int = 0
    seconds: float = 0.0
    how_killed: str = ""
    failure: str | None = None
    #: the same run without the reference interpreter (chain-data properties only); ``None``
    #: when that run was not asked for
    chain_killed: bool | None = None
    chain_prop: str | None = None
    chain_examples: int = 0

    @property
    def killed(self) -> bool:
        return self.status == "killed"


@dataclass(frozen=True)
class MutationReport:
    lifecycle: str
    fingerprint: str
    seed: int
    max_examples: int
    steps: int
    originals: dict[str, PropertyResult]
    results: tuple[MutantResult, ...]
    seconds: float

    @property
    def applicable(self) -> list[MutantResult]:
        return [r for r in self.results if r.status != "not-applicable"]

    @property
    def suite_ok(self) -> bool:
        """The unmutated contracts pass (else a kill means nothing)."""
        return all(r.passed for r in self.originals.values())

    @property
    def all_killed(self) -> bool:
        return self.suite_ok and all(r.killed for r in self.applicable)

    def to_json(self) -> dict[str, Any]:
        applicable = self.applicable
        killed = sum(r.killed for r in applicable)
        return {
            "lifecycle": self.lifecycle,
            "ir_fingerprint": self.fingerprint,
            "seed": self.seed,
            "max_examples": self.max_examples,
            "steps": self.steps,
            "seconds": round(self.seconds, 2),
            "originals": {
                layout: {"passed": r.passed, "examples": r.examples,
                         "seconds": round(r.seconds, 2), "failure": r.failure}
                for layout, r in self.originals.items()
            },
            "mutants": [
                {"id": r.id, "title": r.title, "layout": r.layout, "target": r.target,
                 "required": r.required, "status": r.status, "killed": r.killed,
                 "property": r.prop, "properties": list(r.props), "examples": r.examples,
                 "seconds": round(r.seconds, 2), "how_killed": r.how_killed,
                 "chain_only": None if r.chain_killed is None else {
                     "killed": r.chain_killed, "property": r.chain_prop,
                     "examples": r.chain_examples},
                 "failure": r.failure}
                for r in self.results
            ],
            "killed": killed,
            "applicable": len(applicable),
            "kill_rate": killed / len(applicable) if applicable else None,
            "suite_ok": self.suite_ok,
            "all_killed": self.all_killed,
        }


def run_mutation(
    lifecycle: Any,
    *,
    max_examples: int = 50,
    seed: int = 0,
    steps: int = 30,
    only: tuple[str, ...] | None = None,
    mutants: Sequence[Mutant | tuple[str, str]] | None = None,
    chain_only: bool = False,
    progress: Callable[[str], None] | None = None,
) -> MutationReport:
    """Run the threat properties on the unmutated contracts of every layout a mutant uses, then
    on each mutant (``mutants``, default :func:`mutants_for`; ``only``: ids or letters to
    restrict to).  A mutant is killed when the
    properties fail on it; the first broken property and the examples it took are recorded.
    ``chain_only``: also run each mutant without the reference interpreter, to show which
    mutants the chain-data properties alone kill."""
    ir = build_ir(lifecycle)
    start = time.perf_counter()
    say = progress or (lambda _line: None)
    planned = list(mutants_for(ir) if mutants is None else mutants)
    if only:
        wanted = set(only)
        planned = [m for m in planned if _mid(m) in wanted or _mid(m).split("-")[0] in wanted]
        unknown = wanted - {_mid(m) for m in planned} - {_mid(m).split("-")[0] for m in planned}
        if unknown:
            known = [_mid(m) for m in (mutants_for(ir) if mutants is None else mutants)]
            raise ValueError(f"unknown mutant(s) {sorted(unknown)}; known: {known}")
    layouts = sorted({m.layout for m in planned if isinstance(m, Mutant)},
                     key=lambda x: (x != "registry", x))
    originals: dict[str, PropertyResult] = {}
    for layout in layouts:
        say(f"unmutated {ir.name} ({layout}) ...")
        res = run_threat_properties(compile_artefact(ir, layout=layout), layout,
                                    max_examples, seed, steps=steps)
        originals[layout] = res
        say(f"unmutated {ir.name} ({layout}): "
            f"{'passes' if res.passed else 'FAILS: ' + (res.prop or '')} "
            f"({res.examples} examples, {res.seconds:.1f} s)")
    results = []
    for i, m in enumerate(planned, 1):
        if not isinstance(m, Mutant):
            results.append(MutantResult(m[0], m[1], "-", "-", m[0] in REQUIRED,
                                        "not-applicable"))
            say(f"[{i}/{len(planned)}] {m[0]}: not applicable ({m[1]})")
            continue
        try:
            compiled = build_mutant(m, ir)
        except CompilationError as exc:
            results.append(MutantResult(m.id, m.title, m.layout, m.target, m.required,
                                        "not-compiled", failure=str(exc)))
            say(f"[{i}/{len(planned)}] {m.id}: does not compile: {exc}")
            continue
        res = run_threat_properties(compiled, m.layout, max_examples, seed, steps=steps)
        status = "survived" if res.passed else "killed"
        chain: PropertyResult | None = None
        if chain_only:
            chain = run_threat_properties(compiled, m.layout, max_examples, seed, steps=steps,
                                          lockstep=False)
        results.append(MutantResult(
            m.id, m.title, m.layout, m.target, m.required, status, res.prop, res.props,
            res.examples, res.seconds, m.how_killed, res.failure,
            None if chain is None else not chain.passed,
            None if chain is None else chain.prop, 0 if chain is None else chain.examples))
        say(f"[{i}/{len(planned)}] {m.id}: {status}"
            + (f" by {res.prop} after {res.examples} example(s)" if not res.passed else
               f" {res.examples} examples")
            + f" ({res.seconds:.1f} s)"
            + ("" if chain is None else
               f"; chain data only: {_verdict(chain)} after {chain.examples} example(s)"))
    return MutationReport(ir.name, ir.fingerprint(), seed, max_examples, steps, originals,
                          tuple(results), time.perf_counter() - start)


def _verdict(res: PropertyResult) -> str:
    return "survived" if res.passed else f"killed by {res.prop}"


def _mid(m: Mutant | tuple[str, str]) -> str:
    return m.id if isinstance(m, Mutant) else m[0]


def write_report(report: MutationReport, out: Path) -> Path:
    """Write ``out/mutation.json`` atomically (a temporary file renamed into place)."""
    return atomic_write_json(out / "mutation.json", report.to_json())


def format_matrix(report: MutationReport) -> str:
    """The kill matrix as a text table."""
    chain = any(r.chain_killed is not None for r in report.results)
    rows = [("mutant", "layout", "target", "killed", "property", "examples", "s",
             *(["chain data only"] if chain else []))]
    for r in report.results:
        verdict = {"killed": "yes", "survived": "NO", "not-applicable": "n/a",
                   "not-compiled": "ERROR"}[r.status]
        only = ("-" if r.chain_killed is None else
                f"{r.chain_prop} ({r.chain_examples})" if r.chain_killed else "survived")
        rows.append((r.id + ("" if r.required else " (extra)"), r.layout, r.target, verdict,
                     r.prop or "-", str(r.examples) if r.examples else "-",
                     f"{r.seconds:.1f}" if r.seconds else "-", *([only] if chain else [])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    applicable = report.applicable
    killed = sum(r.killed for r in applicable)
    originals = ", ".join(
        f"{layout} {'passes' if r.passed else 'FAILS (' + (r.prop or '?') + ')'}"
        for layout, r in report.originals.items())
    lines.append("")
    lines += [f"{r.id}: does not compile: {(r.failure or '?').splitlines()[-1]}"
              for r in report.results if r.status == "not-compiled"]
    lines.append(f"{report.lifecycle}: {killed}/{len(applicable)} mutants killed; unmutated "
                 f"contract: {originals}; seed {report.seed}, up to {report.max_examples} "
                 f"examples x {report.steps} steps; {report.seconds:.0f} s")
    return "\n".join(lines)


# -- a user's own mutants (``proml mutate --mutant-file FILE``) ---------------------------------
_USER_KEYS = {"id", "title", "old", "new", "layout", "part", "function", "how_killed"}


def load_user_mutants(path: str | Path, lifecycle: Any) -> list[Mutant]:
    """The mutants of a TOML file of ``[[mutant]]`` tables, each the exact replacement of one
    text of a generated contract::

        [[mutant]]
        id = "u-one-approval"               # unique, not one of the catalogue's ids
        title = "verify fires on one approval"
        old = "if _n < 2:"                  # the exact generated text, found exactly once
        new = "if _n < 1:"
        function = "verify"                 # optional: search only this function's body
        layout = "registry"                 # optional: registry (default), factory, clone
        part = "registry"                   # optional: the layout's contract, or
                                            # "factory.artefact" / "clone.artefact"

    Every anchor is checked against the lifecycle's generated source at once: a text that is
    not there exactly once raises :class:`MutantAnchorError`; a malformed file, ``ValueError``
    naming the file, the entry and the fix.
    """
    import tomllib

    path = Path(path)
    try:
        data = read_toml(path)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: cannot be read as TOML ({exc}); fix the file") from exc
    entries = data.get("mutant")
    if not isinstance(entries, list) or not entries or set(data) != {"mutant"}:
        raise ValueError(f"{path}: expected one or more [[mutant]] tables and nothing else")
    ir = build_ir(lifecycle)
    taken = set(_builder_ids())
    out: list[Mutant] = []
    for n, e in enumerate(entries, 1):
        where = f"{path}: mutant #{n}"
        if not isinstance(e, dict):
            raise ValueError(f"{where} is not a table; write it as [[mutant]]")
        unknown = set(e) - _USER_KEYS
        missing = {"id", "title", "old", "new"} - set(e)
        if unknown or missing:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}, missing "
                             f"{sorted(missing)}; the keys are {sorted(_USER_KEYS)}")
        if not all(isinstance(v, str) for v in e.values()):
            raise ValueError(f"{where}: every value must be a string")
        if e["id"] in taken:
            raise ValueError(f"{where}: id {e['id']!r} is already used; choose another")
        taken.add(e["id"])
        if e["old"] == e["new"]:
            raise ValueError(f"{where}: old and new are the same text; a mutant must change it")
        layout = e.get("layout", "registry")
        if layout not in ("registry", "factory", "clone"):
            raise ValueError(f"{where}: layout {layout!r}; use registry, factory or clone")
        part = e.get("part", layout)
        if part not in (layout, f"{layout}.artefact"):
            raise ValueError(f"{where}: part {part!r} is not a contract of layout {layout}; "
                             f"use {layout} or {layout}.artefact")
        mid, fn, old, new = e["id"], e.get("function"), e["old"], e["new"]

        def apply(source: str, mid: str = mid, fn: str | None = fn, old: str = old,
                  new: str = new) -> str:
            return _edit(source, fn, old, new, mid)

        try:  # the anchor must be there now, not at run time
            apply(generate_vyper(ir, part))
        except MutantAnchorError as exc:
            raise ValueError(
                f"{where} ({mid}): its old text occurs {exc.found} time(s) in the generated "
                f"{part} contract of {ir.name}{f' function {fn}' if fn else ''}, not exactly "
                "once; copy the exact text from `proml generate` output (add function = ... "
                "to narrow the search)") from None
        m = Mutant(mid, e["title"], e.get("how_killed", "(a user's mutant)"), layout, part,
                   fn or "-", False, apply)
        try:  # and the contract must compile, before minutes go on the unmutated run
            build_mutant(m, lifecycle)
        except CompilationError as exc:
            raise ValueError(f"{where} ({mid}): the {part} contract with this replacement does "
                             f"not compile ({str(exc).splitlines()[-1]}); fix its new text"
                             ) from None
        out.append(m)
    return out
