"""The generated mutant catalogue: the bugs a reviewer plants, found in the generated contract
text itself (``proml mutate --catalogue``).

Unlike the hand-written mutants of :mod:`proml_sim.threats.mutants` (one per attack, each with
an anchor), this catalogue is derived mechanically from the Vyper that
:func:`proml_sim.codegen.generate_vyper` produces for a lifecycle, so it follows every change
of the code generator and works for any lifecycle (single-admin or consortium):

* ``guard``: each guard (an ``assert`` or ``raise`` carrying a revert reason) removed (replaced
  by ``pass``, so the block it sits in stays valid);
* ``compare``: each comparison of a guard or branch condition moved by one or flipped
  (``<`` -> ``<=``, ``<=`` -> ``<``, ``>`` -> ``>=``, ``>=`` -> ``>``, ``==`` <-> ``!=``,
  ``in`` <-> ``not in``);
* ``bound``: each capacity or bound constant changed by one either way: integer literals
  compared with directly (``_n < 2``, ``len(_entries) >= 16``), the integer constants the
  contract declares (``N_ROLES``, ``QUORUM``, ``MAX_DOMAINS`` ...) and the ``DynArray`` bound of
  local and storage variables;
* ``source``: each state added to or dropped from a step's source-state mask (the step also
  allowed from a state it must refuse, or no longer from one it must accept);
* ``role``: each role added to or dropped from a step's role mask (the role guard, and the
  mask ``_approve`` uses to count only approvers still holding a role of the step).

Sites are found by parsing each condition with Python's :mod:`ast` (Vyper expressions are
Python expressions), so a ``&`` mask or a ``>>`` shift is never mistaken for a comparison.

A mutant is *equivalent* when it provably cannot change behaviour; :func:`catalogue` lists those
with the reason (never dropping them silently): the compiler may prove it (the mutated source
compiles to the very bytecode of the original, checked when run), the guard removed is one no
call can make fail (:func:`proml_sim.threats.properties.unreachable_guards`: a separation-of-
duty guard whose state guard always refuses first), or the reason is one of
:data:`EQUIVALENCE_RULES` (argued from the generated code, see each rule).  A mutant the
compiler rejects is *stillborn* (``not-compiled``): listed, and not counted as a kill.

Example::

    >>> from proml_sim.lifecycles import Model
    >>> cat = catalogue(Model)
    >>> sorted({m.kind for m in cat})
    ['bound', 'compare', 'guard', 'role', 'source']
    >>> next(m for m in cat if m.id == "guard-verify-6").title
    'verify: guard "ApprovalsFull: Model.verify: approval slots for this version are full" removed'
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proml_sim.codegen import generate_vyper
from proml_sim.ir import LifecycleIR, build_ir
from proml_sim.threats.mutants import Mutant, MutantAnchorError
from proml_sim.threats.properties import unreachable_guards

__all__ = ["EQUIVALENCE_RULES", "KINDS", "CatalogueMutant", "catalogue", "catalogue_mutants"]

#: the kinds of the catalogue, in the order they are listed
KINDS = ("guard", "compare", "bound", "source", "role")

_FN = re.compile(r"^def (\w+)\(")
_GUARD = re.compile(r'^(?P<indent>\s+)(?:assert (?P<expr>.+), "(?P<reason>(?:[^"\\]|\\.)*)"'
                    r'|raise "(?P<reason2>(?:[^"\\]|\\.)*)")\s*$')
_COND = re.compile(r"^(?P<indent>\s+)(?P<kw>if|elif) (?P<expr>.+):\s*$")
_SOURCE_MASK = re.compile(r"^\((?P<mask>\d+) >> \(")
_ROLE_MASK = re.compile(r" & (?P<mask>\d+) != 0$")
_APPROVE_MASK = re.compile(r"self\._approve\(.*, (?P<mask>\d+), (?:True|False)\)$")
_CONST = re.compile(r"^(?P<name>[A-Z][A-Z0-9_]*): constant\(uint256\) = (?P<value>\d+)\s*$")
_DYNARRAY = re.compile(r"DynArray\[(?P<type>[\w\[\], ]+?), (?P<bound>\d+)\]")
_FLIP = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="),
         ast.GtE: (">=", ">"), ast.Eq: ("==", "!="), ast.NotEq: ("!=", "=="),
         ast.In: ("in", "not in"), ast.NotIn: ("not in", "in")}


@dataclass(frozen=True)
class CatalogueMutant:
    """One generated mutant: ``line`` (1-based) of the generated ``part`` source becomes
    ``new`` (the whole line; ``old`` is what it was).  ``equivalent``: why this mutant cannot
    change behaviour, or ``None``."""

    id: str
    kind: str
    function: str
    line: int
    old: str
    new: str
    title: str
    part: str = "registry"
    equivalent: str | None = None

    def apply(self, source: str) -> str:
        """The mutated source; :class:`MutantAnchorError` if line ``line`` is not ``old``."""
        lines = source.split("\n")
        if len(lines) < self.line or lines[self.line - 1] != self.old:
            raise MutantAnchorError(self.id, f"line {self.line} of the {self.part} source",
                                    self.old, 0)
        lines[self.line - 1] = self.new
        return "\n".join(lines)

    def as_mutant(self) -> Mutant:
        """The mutant in the form :func:`proml_sim.threats.mutants.run_mutation` and
        :func:`~proml_sim.threats.mutants.build_mutant` take."""
        how = {"guard": "lock-step (the guard's revert reason is missing where the reference "
                        "refuses), or the chain-data property the guard protects",
               "compare": "lock-step (a boundary case decided the other way), or a chain-data "
                          "property",
               "bound": "lock-step (a capacity reached one step early or late)",
               "source": "lock-step (a step taken or refused in a state the reference decides "
                         "the other way): the guard probe tries each step from every state",
               "role": "lock-step (a step taken or refused by a caller whose roles the "
                       "reference decides the other way), or the revoked-approver probes"
               }[self.kind]
        return Mutant(self.id, self.title, how, "registry", self.part, self.function, False,
                      self.apply)


# -- equivalent mutants ----------------------------------------------------------------------------
#: (kind, function, regex the *mutated* line must match, reason): a mutant matching a rule is
#: equivalent; each reason is the argument from the generated code.
EQUIVALENCE_RULES: tuple[tuple[str, str, str, str], ...] = (
    ("bound", "_approve", r"^    _seen: DynArray\[bytes32, 18\] = \[_mine\]$",
     "_seen holds the caller's domain plus at most one domain per entry of the approvers list, "
     "which the storage type bounds at 16 entries: it never holds more than 17, so a bound of "
     "18 is never reached (only the memory reserved, and so gas, changes)"),
    ("bound", "_approve", r"^    _entries: DynArray\[address, 17\] = self\.approvers\[key\]$",
     "_entries is a copy of self.approvers[key], whose storage type bounds it at 16 entries: "
     "a local bound of 17 is never reached (only the memory reserved, and so gas, changes)"),
)


def _equivalent(kind: str, function: str, new: str) -> str | None:
    for k, fn, pattern, reason in EQUIVALENCE_RULES:
        if k == kind and fn == function and re.match(pattern, new):
            return reason
    return None


# -- finding the sites --------------------------------------------------------------------------
def _compare_sites(expr: str) -> list[tuple[int, int, str, str]]:
    """(start, end, old operator text, new) of every comparison operator in ``expr``, and
    (start, end, old literal, new) of every non-zero integer literal compared with directly
    (kind told apart by the caller: operators are not digits)."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        return []
    out: list[tuple[int, int, str, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
            old, new = _FLIP.get(type(op), ("", ""))
            if not old:
                continue
            assert left.end_col_offset is not None
            gap = expr[left.end_col_offset:right.col_offset]
            at = gap.find(f" {old} ")
            if at < 0:
                continue
            start = left.end_col_offset + at + 1
            out.append((start, start + len(old), old, new))
        for operand in operands:
            if (isinstance(operand, ast.Constant) and type(operand.value) is int
                    and operand.value != 0):
                assert operand.end_col_offset is not None
                out.append((operand.col_offset, operand.end_col_offset, str(operand.value), ""))
    return sorted(out)


def catalogue(lifecycle: Any, part: str = "registry",
              kinds: tuple[str, ...] = KINDS) -> list[CatalogueMutant]:
    """Every mutant of the catalogue for ``lifecycle``'s generated ``part`` contract (the
    registry by default), equivalent ones included (their ``equivalent`` says why)."""
    ir: LifecycleIR = build_ir(lifecycle)
    source = generate_vyper(ir, part)
    out: list[CatalogueMutant] = []
    fn = ""
    guards: dict[str, int] = {}
    conds: dict[str, int] = {}
    seen_ids: dict[str, int] = {}

    dead = unreachable_guards(ir)
    # without a k-of-n step nothing ever appends to the approvers list: its bound is moot
    no_approvals = None if any(t.approvals > 1 for t in ir.transitions) else (
        f"no transition of {ir.name} takes approvals, so nothing ever appends to the "
        "approvers list (it stays empty): its bound is never reached")

    def add(kind: str, line_no: int, old: str, new: str, title: str, base_id: str,
            equivalent: str | None = None) -> None:
        n = seen_ids.get(base_id, 0)
        seen_ids[base_id] = n + 1
        mid = base_id if n == 0 else f"{base_id}.{n + 1}"
        if kind in kinds:
            out.append(CatalogueMutant(mid, kind, fn or "(contract)", line_no, old, new, title,
                                       part, equivalent or _equivalent(kind, fn, new)))

    for line_no, line in enumerate(source.split("\n"), 1):
        if line.lstrip().startswith("#"):
            continue
        m = _FN.match(line)
        if m:
            fn = m.group(1)
            continue
        if line and not line[0].isspace():
            if not line.startswith("@"):
                fn = ""  # a top-level declaration: not inside a function any more
            c = _CONST.match(line)
            if c and _is_bound(c.group("name"), source):
                value = int(c.group("value"))
                for delta in (-1, 1):
                    if value + delta < 0:
                        continue
                    new = line.replace(f"= {value}", f"= {value + delta}")
                    add("bound", line_no, line, new,
                        f"constant {c.group('name')} = {value} changed to {value + delta}",
                        f"bound-{c.group('name')}{delta:+d}")
            _dynarray_bounds(line, line_no, add, storage=True, moot=no_approvals)
            continue
        if not fn:
            continue  # event and struct fields
        g = _GUARD.match(line)
        expr: str | None = None
        if g:
            guards[fn] = guards.get(fn, 0) + 1
            reason = g.group("reason") or g.group("reason2")
            add("guard", line_no, line, f"{g.group('indent')}pass",
                f'{fn}: guard "{reason}" removed', f"guard-{fn}-{guards[fn]}",
                f"the guard never fails: {dead[reason]}" if reason in dead else None)
            expr = g.group("expr")
            prefix = len(g.group("indent")) + len("assert ")
            if expr and reason.startswith(("TransitionNotAllowed:", "RoleNotAllowed:")):
                _mask_bits(ir, fn, line, line_no, expr, prefix, reason, add)
        else:
            c2 = _COND.match(line)
            if c2:
                expr = c2.group("expr")
                prefix = len(c2.group("indent")) + len(c2.group("kw")) + 1
        if expr is not None:
            conds[fn] = conds.get(fn, 0) + 1
            for j, (start, end, old, new) in enumerate(_compare_sites(expr), 1):
                a, b = prefix + start, prefix + end
                if old.isdigit():
                    for delta in (-1, 1):
                        v = int(old) + delta
                        mutated = line[:a] + str(v) + line[b:]
                        add("bound", line_no, line, mutated,
                            f"{fn}: bound {old} changed to {v} in `{expr.strip()}`",
                            f"bound-{fn}-{conds[fn]}-{j}{delta:+d}")
                else:
                    mutated = line[:a] + new + line[b:]
                    add("compare", line_no, line, mutated,
                        f"{fn}: `{old}` -> `{new}` in `{expr.strip()}`",
                        f"cmp-{fn}-{conds[fn]}-{j}")
        elif ":" in line and "DynArray[" in line and "=" in line:
            _dynarray_bounds(line, line_no, add, storage=False)
        counted = _APPROVE_MASK.search(line)
        if counted:
            _flip_bits(line, counted.start("mask"), int(counted.group("mask")), ir.roles,
                       "role", line_no, f"role-{fn}-approve", add,
                       (f"{fn}: approvals by role {{}} also count",
                        f"{fn}: approvals by role {{}} no longer count"))
    return out


def _mask_bits(ir: LifecycleIR, fn: str, line: str, line_no: int, expr: str, prefix: int,
               reason: str, add: Callable[..., None]) -> None:
    """The ``source`` and ``role`` mutants of a state or role guard: each bit of its mask
    (each state of the lifecycle, each role including the admin) flipped."""
    if reason.startswith("TransitionNotAllowed:"):
        m = _SOURCE_MASK.match(expr)
        if m:
            _flip_bits(line, prefix + m.start("mask"), int(m.group("mask")), ir.states,
                       "source", line_no, f"source-{fn}", add,
                       (f"{fn}: also from {{}}", f"{fn}: no longer from {{}}"))
    else:
        m = _ROLE_MASK.search(expr)
        if m:
            _flip_bits(line, prefix + m.start("mask"), int(m.group("mask")), ir.roles, "role",
                       line_no, f"role-{fn}", add,
                       (f"{fn}: also by role {{}}", f"{fn}: no longer by role {{}}"))


def _flip_bits(line: str, at: int, mask: int, items: Any, kind: str, line_no: int,
               base_id: str, add: Callable[..., None],
               title: tuple[str, str]) -> None:
    """One mutant per item (a state or a role: ``.name``, ``.index``): its bit of ``mask``,
    the integer literal at column ``at`` of ``line``, set if clear, cleared if set;
    ``title``: what the mutant does when the bit is set and when it is cleared (``{}``: the
    item's name)."""
    old = str(mask)
    for item in items:
        new_mask = mask ^ (1 << item.index)
        added = new_mask > mask
        add(kind, line_no, line, line[:at] + str(new_mask) + line[at + len(old):],
            f"{title[0 if added else 1].format(item.name)} (mask {old} -> {new_mask})",
            f"{base_id}-{'add' if added else 'drop'}-{item.name}")


def _is_bound(name: str, source: str) -> bool:
    """A declared constant is a bound when a comparison, a ``min``/``max`` or a DynArray
    bound uses it (``ADMIN_TABLE``, a packed table, is not)."""
    n = re.escape(name)
    op = r"(?:<=|>=|==|!=|(?<![<>])<(?!<)|(?<![<>])>(?!>))"
    return bool(re.search(rf"{op} {n}\b|\b{n} {op} |(?:min|max)\([^)]*\b{n}\b"
                          rf"|DynArray\[[^\]]*, {n}\]", source))


def _dynarray_bounds(line: str, line_no: int, add: Callable[..., None], *,
                     storage: bool, moot: str | None = None) -> None:
    """The DynArray bounds of a storage declaration (``name: HashMap[.., DynArray[T, N]]``)
    or of a local variable declaration, each changed by one either way."""
    decl = re.match(r"^\s*(?P<name>\w+): ", line)
    if decl is None or (storage and "(" in line.split(":", 1)[1].split("[", 1)[0]):
        return  # constants, public(...) getters with calls, and anything not a declaration
    for k, m in enumerate(_DYNARRAY.finditer(line), 1):
        value = int(m.group("bound"))
        for delta in (-1, 1):
            new = line[:m.start("bound")] + str(value + delta) + line[m.end("bound"):]
            add("bound", line_no, line, new,
                f"{'storage' if storage else 'local'} {decl.group('name')}: DynArray bound "
                f"{value} changed to {value + delta}",
                f"bound-{decl.group('name')}-{k}{delta:+d}",
                moot if decl.group("name") == "approvers" else None)


def catalogue_mutants(lifecycle: Any, part: str = "registry",
                      kinds: tuple[str, ...] = KINDS) -> list[Mutant]:
    """The non-equivalent catalogue mutants as :class:`~proml_sim.threats.mutants.Mutant`."""
    return [m.as_mutant() for m in catalogue(lifecycle, part, kinds) if m.equivalent is None]


# -- running the catalogue ------------------------------------------------------------------
@dataclass(frozen=True)
class CatalogueResult:
    """One mutant on one seed.  ``status``: ``killed``, ``survived``, ``not-compiled`` (the
    compiler rejects it: stillborn) or ``equivalent`` (same bytecode as the original)."""

    id: str
    seed: int
    status: str
    prop: str | None = None
    examples: int = 0
    seconds: float = 0.0
    failure: str | None = None


@dataclass(frozen=True)
class CatalogueRun:
    """The catalogue of one lifecycle run on some seeds (see :func:`run_catalogue`)."""

    lifecycle: str
    fingerprint: str
    seeds: tuple[int, ...]
    max_examples: int
    steps: int
    kinds: tuple[str, ...]
    entries: tuple[CatalogueMutant, ...]  # the whole catalogue, equivalent ones included
    ran: tuple[str, ...]  # ids run (all non-equivalent ones, or a sample)
    originals: dict[int, Any]  # seed -> PropertyResult of the unmutated contract
    results: tuple[CatalogueResult, ...]
    seconds: float
    executor: str
    workers: int

    @property
    def suite_ok(self) -> bool:
        """The unmutated contract passes on every seed (else kills mean nothing)."""
        return all(r.passed for r in self.originals.values())

    @property
    def survivors(self) -> list[str]:
        """Ids of mutants that survived on at least one seed."""
        return sorted({r.id for r in self.results if r.status == "survived"})

    @property
    def all_killed(self) -> bool:
        return self.suite_ok and not self.survivors

    def status_of(self, mid: str) -> str:
        """``killed`` (on every seed), ``survived`` (on some seed), ``not-compiled``,
        ``equivalent`` (by bytecode or by rule) or ``not-run`` (left out of a sample)."""
        entry = next(e for e in self.entries if e.id == mid)
        if entry.equivalent:
            return "equivalent"
        rows = [r for r in self.results if r.id == mid]
        if not rows:
            return "not-run"
        for status in ("survived", "not-compiled", "equivalent"):
            if any(r.status == status for r in rows):
                return status
        return "killed"

    def counts(self) -> dict[str, dict[str, int]]:
        """kind -> status -> number of mutants."""
        out: dict[str, dict[str, int]] = {k: {} for k in self.kinds}
        for e in self.entries:
            s = self.status_of(e.id)
            out[e.kind][s] = out[e.kind].get(s, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``proml mutate --catalogue --json``)."""
        by_id: dict[str, list[CatalogueResult]] = {}
        for r in self.results:
            by_id.setdefault(r.id, []).append(r)
        return {
            "lifecycle": self.lifecycle, "ir_fingerprint": self.fingerprint, "part": "registry",
            "seeds": list(self.seeds), "max_examples": self.max_examples, "steps": self.steps,
            "kinds": list(self.kinds), "seconds": round(self.seconds, 1),
            "executor": self.executor, "workers": self.workers,
            "originals": {str(s): {"passed": r.passed, "examples": r.examples,
                                   "seconds": round(r.seconds, 2), "failure": r.failure}
                          for s, r in self.originals.items()},
            "counts": self.counts(),
            "catalogue_size": len(self.entries), "run": len(self.ran),
            "sampled": len(self.ran) < sum(1 for e in self.entries if not e.equivalent),
            "mutants": [
                {"id": e.id, "kind": e.kind, "function": e.function, "line": e.line,
                 "title": e.title, "old": e.old, "new": e.new,
                 "status": self.status_of(e.id), "equivalent_because": e.equivalent or (
                     "the mutated source compiles to the original's bytecode"
                     if self.status_of(e.id) == "equivalent" else None),
                 "results": [{"seed": r.seed, "status": r.status, "property": r.prop,
                              "examples": r.examples, "seconds": round(r.seconds, 2),
                              "failure": r.failure if r.status != "killed" else None}
                             for r in by_id.get(e.id, [])]}
                for e in self.entries],
            "survived": self.survivors,
            "suite_ok": self.suite_ok,
            "all_killed": self.all_killed,
        }


def _resolve(lifecycle: Any) -> Any:
    if isinstance(lifecycle, str):
        from proml_sim.lifecycles import load_lifecycle

        return load_lifecycle(lifecycle)
    return lifecycle


_CATALOGUES: dict[str, dict[str, CatalogueMutant]] = {}


def _entry(lifecycle: Any, mid: str) -> CatalogueMutant:
    ir = build_ir(_resolve(lifecycle))
    key = ir.fingerprint()
    if key not in _CATALOGUES:  # once per process: workers run many mutants of one lifecycle
        _CATALOGUES[key] = {m.id: m for m in catalogue(ir)}
    return _CATALOGUES[key][mid]


def run_one(lifecycle: Any, mid: str, seed: int, max_examples: int,
            steps: int) -> CatalogueResult:
    """Plant catalogue mutant ``mid`` of ``lifecycle`` (a class or its
    :func:`~proml_sim.lifecycles.load_lifecycle` spec), compile it (disk cache) and run the
    threat properties on it with ``seed``.  A task of :func:`run_catalogue` (module level, so
    worker processes import it)."""
    from proml_sim.compiler import compile_artefact
    from proml_sim.errors import CompilationError
    from proml_sim.threats.mutants import build_mutant
    from proml_sim.threats.properties import run_threat_properties

    lc = _resolve(lifecycle)
    entry = _entry(lc, mid)
    try:
        compiled = build_mutant(entry.as_mutant(), lc)
    except CompilationError as exc:
        return CatalogueResult(mid, seed, "not-compiled", failure=str(exc).splitlines()[-1])
    # the init code holds the constructor and the runtime code: a constructor guard's mutant
    # changes only the former
    if compiled.bytecode == compile_artefact(lc).bytecode:
        return CatalogueResult(mid, seed, "equivalent")
    res = run_threat_properties(compiled, "registry", max_examples, seed, steps=steps)
    return CatalogueResult(mid, seed, "survived" if res.passed else "killed", res.prop,
                           res.examples, res.seconds, res.failure)


def run_original(lifecycle: Any, seed: int, max_examples: int, steps: int) -> Any:
    """The threat properties on the unmutated registry contract (a task of
    :func:`run_catalogue`)."""
    from proml_sim.compiler import compile_artefact
    from proml_sim.threats.properties import run_threat_properties

    lc = _resolve(lifecycle)
    return run_threat_properties(compile_artefact(lc), "registry", max_examples, seed,
                                 steps=steps)


def sample_ids(entries: list[CatalogueMutant], n: int | None) -> list[str]:
    """The ids to run: every non-equivalent mutant, or ``n`` of them (deterministic, in
    catalogue order): each kind gets one when ``n`` allows and the rest in proportion to its
    size (largest remainder), spread evenly over that kind's mutants."""
    ids = [e.id for e in entries if not e.equivalent]
    if n is None or n >= len(ids):
        return ids
    by_kind: dict[str, list[str]] = {}
    for e in entries:
        if not e.equivalent:
            by_kind.setdefault(e.kind, []).append(e.id)
    quota = {k: int(n >= len(by_kind)) for k in by_kind}
    left = n - sum(quota.values())
    share = {k: left * (len(v) - quota[k]) / (len(ids) - sum(quota.values()))
             for k, v in by_kind.items()}
    for k in by_kind:
        quota[k] += int(share[k])
    for k in sorted(by_kind, key=lambda k: share[k] - int(share[k]), reverse=True):
        if sum(quota.values()) >= n:
            break
        quota[k] += 1
    chosen = {v[(i * len(v)) // quota[k]] for k, v in by_kind.items() for i in range(quota[k])}
    return [i for i in ids if i in chosen]


def run_catalogue(
    lifecycle: Any,
    *,
    seeds: tuple[int, ...] = (0,),
    max_examples: int = 50,
    steps: int = 30,
    kinds: tuple[str, ...] = KINDS,
    sample: int | None = None,
    only: tuple[str, ...] | None = None,
    workers: int | None = 0,
    progress: Callable[[int, int], None] | None = None,
) -> CatalogueRun:
    """Run the catalogue of ``lifecycle`` (a class, or a spec for worker processes): the
    unmutated contract, then (if it passes on every seed) every (or ``sample``) non-equivalent
    mutant of ``kinds``, on every seed, through :func:`proml_sim.parallel.run_tasks`
    (``workers``: 0 serial in this process, ``None`` one process per CPU).  ``only``: these ids."""
    import time

    from proml_sim.lifecycles import lifecycle_spec
    from proml_sim.parallel import run_tasks

    start = time.perf_counter()
    lc = _resolve(lifecycle)
    ir = build_ir(lc)
    entries = catalogue(ir, kinds=kinds)
    if only:
        known = {e.id for e in entries}
        unknown = sorted(set(only) - known)
        if unknown:
            raise ValueError(f"unknown catalogue mutant(s) {unknown}; list them with "
                             "proml mutate --catalogue --list")
        entries = [e for e in entries if e.id in set(only)]
    ran = sample_ids(entries, sample)
    # worker processes import the lifecycle by its spec; this process may pass the class
    arg: Any = lc if workers == 0 else (lifecycle if isinstance(lifecycle, str)
                                        else lifecycle_spec(lc))
    # the unmutated contract first: if it fails, a kill means nothing and no mutant is run
    first, executor, n = run_tasks(_task, [(arg, s, max_examples, steps) for s in seeds],
                                   workers=workers)
    originals = dict(zip(seeds, first, strict=True))
    if not all(r.passed for r in first):
        ran = []
    tasks: list[tuple[Any, ...]] = [(arg, mid, s, max_examples, steps)
                                    for mid in ran for s in seeds]
    rows, executor, n = (run_tasks(_task, tasks, workers=workers, progress=progress)
                         if tasks else ([], executor, n))
    return CatalogueRun(ir.name, ir.fingerprint(), tuple(seeds), max_examples, steps, kinds,
                        tuple(entries), tuple(ran), originals, tuple(rows),
                        time.perf_counter() - start, executor, n)


def _task(*args: Any) -> Any:
    """One task: ``(lifecycle, seed, ...)`` the original, ``(lifecycle, id, seed, ...)`` a
    mutant."""
    if isinstance(args[1], str):
        return run_one(*args)
    return run_original(*args)


def format_catalogue(run: CatalogueRun) -> str:
    """The catalogue run as text: per kind, how many mutants were killed, survived, were
    stillborn or equivalent; then every survivor and every equivalent mutant with its reason."""
    counts = run.counts()
    statuses = ("killed", "survived", "not-compiled", "equivalent", "not-run")
    rows: list[tuple[str, ...]] = [("kind", *statuses)]
    for k in run.kinds:
        rows.append((k, *(str(counts[k].get(s, 0)) for s in statuses)))
    rows.append(("all", *(str(sum(counts[k].get(s, 0) for k in run.kinds)) for s in statuses)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w)
                       in enumerate(zip(row, widths, strict=True))) for row in rows]
    originals = ", ".join(f"seed {s}: {'passes' if r.passed else 'FAILS (' + str(r.prop) + ')'}"
                          for s, r in run.originals.items())
    lines += ["", f"{run.lifecycle}: {len(run.entries)} catalogue mutants, {len(run.ran)} run "
                  f"on seeds {','.join(map(str, run.seeds))} ({run.max_examples} examples x "
                  f"{run.steps} steps), {run.seconds:.0f} s on {run.workers} "
                  f"{run.executor} worker(s); unmutated contract: {originals}"]
    for e in run.entries:
        s = run.status_of(e.id)
        if s == "survived":
            seeds = [r.seed for r in run.results if r.id == e.id and r.status == "survived"]
            lines.append(f"SURVIVED {e.id} (seeds {seeds}): {e.title}")
        elif s == "equivalent":
            why = e.equivalent or "the mutated source compiles to the original's bytecode"
            lines.append(f"equivalent {e.id}: {e.title} -- {why}")
        elif s == "not-compiled":
            lines.append(f"stillborn {e.id}: {e.title} (the compiler rejects it)")
    return "\n".join(lines)
