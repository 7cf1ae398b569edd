"""The frozen intermediate representation of a lifecycle.

:func:`build_ir` is the only code in the toolkit that reads DSL classes; everything downstream
(interpreter, codegen, compiler, chain client, node) works from a :class:`LifecycleIR`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Literal

from proml_sim.dsl import MAX_DOMAINS as _DSL_MAX_DOMAINS
from proml_sim.errors import InvalidDefinition, UnknownLifecycleName, unknown_name_message
from proml_sim.fsutil import parse_json

#: Bump when the meaning of the IR (and so of the generated contract) changes.
IR_VERSION = 1
#: Bounds shared by interpreter, contract and client.
MAX_INPUTS = 16
MAX_LOCATOR_BYTES = 256
MAX_APPROVERS = 16
ADMIN_ROLE = "admin"
#: Consortium bounds: member domains (and so votes per proposal).
MAX_DOMAINS = _DSL_MAX_DOMAINS
#: Proposal kinds (the ``kind`` argument of ``propose``), by name.
PROPOSAL_KINDS = {"add_domain": 1, "remove_domain": 2, "rotate_admin": 3, "set_roles": 4}


@dataclass(frozen=True)
class RoleIR:
    name: str
    index: int  # bit position in the role mask; 0 is the built-in admin
    admin: str  # name of the role that grants and revokes this one

    @property
    def bit(self) -> int:
        return 1 << self.index


@dataclass(frozen=True)
class StateIR:
    name: str
    index: int  # 1-based; 0 means "not registered" on chain
    initial: bool = False
    final: bool = False


@dataclass(frozen=True)
class TransitionIR:
    name: str
    index: int  # 0-based
    sources: tuple[str, ...]
    target: str
    by: tuple[str, ...]
    approvals: int = 1
    count: Literal["accounts", "domains"] = "accounts"
    evidence: bool = False
    separate_from: tuple[str, ...] = ()
    #: domain-level separation of duty (omitted from the canonical JSON when empty, so lifecycles
    #: that do not use it keep their fingerprints)
    separate_domain_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConsortiumIR:
    """Consortium governance: proposals need ``quorum`` member domains' votes (all members'
    while there are fewer)."""

    quorum: int
    #: roles the founding domain may hold; None: every role (omitted from the canonical JSON)
    founder_roles: tuple[str, ...] | None = None


@dataclass(frozen=True)
class LifecycleIR:
    """A lifecycle as frozen data: roles, states and transitions by name and index, with lookups
    (:meth:`role`, :meth:`state`, :meth:`transition`), canonical JSON and a fingerprint.

    Example::

        >>> from proml_sim import LifecycleIR, build_ir
        >>> from proml_sim.lifecycles import Dataset
        >>> ir = build_ir(Dataset)
        >>> ir.initial.name, ir.register_by
        ('collected', ('dataset_admin',))
        >>> ir.transition("review").separate_from
        ('label',)
        >>> LifecycleIR.from_json(ir.canonical_json()) == ir
        True
        >>> ir.state("relesed")
        Traceback (most recent call last):
        ...
        proml_sim.errors.UnknownLifecycleName: Dataset has no state 'relesed'; did you mean ...
    """

    name: str
    roles: tuple[RoleIR, ...]
    states: tuple[StateIR, ...]
    transitions: tuple[TransitionIR, ...]
    register_by: tuple[str, ...] = ()  # empty: anyone may register
    register_evidence: bool = False
    doc: str = ""
    ir_version: int = IR_VERSION
    #: None: the single-admin design (omitted from the canonical JSON, so its fingerprints stay)
    consortium: ConsortiumIR | None = None
    _index: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    # -- lookups -------------------------------------------------------------------------------
    def role(self, name: str) -> RoleIR:
        found: RoleIR = self._lookup("role", name, self.roles)
        return found

    def state(self, name: str) -> StateIR:
        found: StateIR = self._lookup("state", name, self.states)
        return found

    def transition(self, name: str) -> TransitionIR:
        found: TransitionIR = self._lookup("transition", name, self.transitions)
        return found

    def _lookup(self, kind: str, name: str, items: tuple[Any, ...]) -> Any:
        table = self._index.get(kind)
        if table is None:
            table = {i.name: i for i in items}
            self._index[kind] = table
        try:
            return table[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name
            raise UnknownLifecycleName(unknown_name_message(
                f"{self.name} has no {kind} {name!r}", name, [i.name for i in items])) from None

    @property
    def initial(self) -> StateIR:
        return next(s for s in self.states if s.initial)

    def state_by_index(self, index: int) -> StateIR:
        return self.states[index - 1]

    def role_mask(self, names: tuple[str, ...]) -> int:
        mask = 0
        for n in names:
            mask |= self.role(n).bit
        return mask

    def founder_mask(self) -> int:
        """Roles the founding domain of a consortium may hold (every role by default)."""
        c = self.consortium
        if c is None or c.founder_roles is None:
            return (1 << len(self.roles)) - 1
        return self.role_mask(c.founder_roles)

    @cached_property
    def sod_targets(self) -> frozenset[str]:
        """Transitions whose last actor must be remembered for separation-of-duty checks."""
        return frozenset(
            n for t in self.transitions for n in (*t.separate_from, *t.separate_domain_from)
        )

    # -- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("_index")
        if d["consortium"] is None:
            d.pop("consortium")
        elif d["consortium"]["founder_roles"] is None:
            d["consortium"].pop("founder_roles")
        for t in d["transitions"]:
            if not t["separate_domain_from"]:
                t.pop("separate_domain_from")
        return d

    def canonical_json(self) -> str:
        """Sorted keys, no whitespace, ASCII: byte-identical for equal lifecycles."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the canonical JSON."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LifecycleIR:
        """The IR of :meth:`to_dict` output; ``ValueError`` names the first field that is
        missing, of the wrong type or inconsistent (an index out of place, an unknown name)."""
        if not isinstance(d, dict):
            raise ValueError(f"a lifecycle IR must be a JSON object, not {type(d).__name__}")
        version = d.get("ir_version")
        if not _is_int(version) or version != IR_VERSION:
            raise ValueError(
                f"lifecycle IR version {version!r} is not supported (this proml-sim "
                f"reads version {IR_VERSION}); regenerate it with this version."
            )
        _check_ir_dict(d)
        return cls(
            name=d["name"],
            roles=tuple(RoleIR(**r) for r in d["roles"]),
            states=tuple(StateIR(**s) for s in d["states"]),
            transitions=tuple(
                TransitionIR(
                    **{
                        **t,
                        "sources": tuple(t["sources"]),
                        "by": tuple(t["by"]),
                        "separate_from": tuple(t["separate_from"]),
                        "separate_domain_from": tuple(t.get("separate_domain_from", ())),
                    }
                )
                for t in d["transitions"]
            ),
            register_by=tuple(d["register_by"]),
            register_evidence=d["register_evidence"],
            doc=d.get("doc", ""),
            consortium=_consortium_from(d.get("consortium")),
        )

    @classmethod
    def from_json(cls, text: str) -> LifecycleIR:
        return cls.from_dict(parse_json(text))


def build_ir(cls: Any) -> LifecycleIR:
    """Build the IR of a validated DSL lifecycle class (or return an IR unchanged).

    Example::

        >>> from proml_sim import build_ir
        >>> from proml_sim.lifecycles import Dataset
        >>> ir = build_ir(Dataset)
        >>> [s.name for s in ir.states]
        ['collected', 'labelled', 'reviewed', 'released', 'retired']
        >>> build_ir(ir) is ir
        True
    """
    if isinstance(cls, LifecycleIR):
        return cls
    from proml_sim.dsl import ADMIN, Artefact

    if not (isinstance(cls, type) and issubclass(cls, Artefact) and cls is not Artefact):
        raise InvalidDefinition(
            getattr(cls, "__name__", repr(cls)),
            ["not a lifecycle: pass a subclass of proml_sim.Artefact (or a LifecycleIR)."],
        )
    role_names = {id(ADMIN): ADMIN_ROLE}
    roles = [RoleIR(ADMIN_ROLE, 0, ADMIN_ROLE)]
    for name, r in cls.__roles__.items():
        role_names[id(r)] = name
    for i, (name, r) in enumerate(cls.__roles__.items(), start=1):
        admin = ADMIN_ROLE if r.admin is None else role_names[id(r.admin)]
        roles.append(RoleIR(name, i, admin))
    state_names = {id(s): n for n, s in cls.__states__.items()}
    states = [
        StateIR(name, i, bool(s.initial), bool(s.final))
        for i, (name, s) in enumerate(cls.__states__.items(), start=1)
    ]
    trans_names = {id(t): n for n, t in cls.__transitions__.items()}
    transitions = []
    for i, (name, t) in enumerate(cls.__transitions__.items()):
        sources = sorted({state_names[id(s)] for s in t.sources}, key=lambda n: _pos(states, n))
        transitions.append(
            TransitionIR(
                name=name,
                index=i,
                sources=tuple(sources),
                target=state_names[id(t.target)],
                by=tuple(sorted({role_names[id(r)] for r in t.by}, key=lambda n: _pos(roles, n))),
                approvals=t.approvals,
                count=t.count,
                evidence=t.evidence,
                separate_from=tuple(
                    sorted({r if isinstance(r, str) else trans_names[id(r)]
                            for r in t.separate_from})
                ),
                separate_domain_from=tuple(
                    sorted({r if isinstance(r, str) else trans_names[id(r)]
                            for r in t.separate_domain_from})
                ),
            )
        )
    initial = next(s for s in cls.__states__.values() if s.initial)
    return LifecycleIR(
        name=cls.__name__,
        roles=tuple(roles),
        states=tuple(states),
        transitions=tuple(transitions),
        register_by=tuple(
            sorted({role_names[id(r)] for r in initial.by}, key=lambda n: _pos(roles, n))
        ),
        register_evidence=bool(initial.evidence),
        doc=(cls.__doc__ or "").strip(),
        consortium=None if cls.__consortium__ is None else ConsortiumIR(
            cls.__consortium__.quorum,
            None if cls.__consortium__.founder_roles is None else tuple(
                sorted({role_names[id(r)] for r in cls.__consortium__.founder_roles},
                       key=lambda n: _pos(roles, n))
            ),
        ),
    )


#: the fields of each part of an IR's dict: name -> (type check, what it must be, required)
_Spec = dict[str, tuple[Any, str, bool]]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_names(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


_INT = (_is_int, "an integer")
_STR = (lambda v: isinstance(v, str), "a string")
_BOOL = (lambda v: isinstance(v, bool), "true or false")
_NAMES = (_is_names, "a list of names")
_LIST = (lambda v: isinstance(v, list), "a list")
_ROLE: _Spec = {"name": (*_STR, True), "index": (*_INT, True), "admin": (*_STR, True)}
_STATE: _Spec = {"name": (*_STR, True), "index": (*_INT, True), "initial": (*_BOOL, False),
                 "final": (*_BOOL, False)}
_TRANSITION: _Spec = {
    "name": (*_STR, True), "index": (*_INT, True), "sources": (*_NAMES, True),
    "target": (*_STR, True), "by": (*_NAMES, True), "approvals": (*_INT, False),
    "count": (lambda v: v in ("accounts", "domains"), "'accounts' or 'domains'", False),
    "evidence": (*_BOOL, False), "separate_from": (*_NAMES, True),
    "separate_domain_from": (*_NAMES, False),
}
_TOP: _Spec = {
    "ir_version": (*_INT, True), "name": (*_STR, True), "roles": (*_LIST, True),
    "states": (*_LIST, True), "transitions": (*_LIST, True),
    "register_by": (*_NAMES, True), "register_evidence": (*_BOOL, True),
    "doc": (*_STR, False),
    "consortium": (lambda v: v is None or isinstance(v, dict), "an object or null", False),
}
_CONSORTIUM: _Spec = {
    "quorum": (*_INT, True),
    "founder_roles": (lambda v: v is None or _is_names(v), "a list of names or null", False),
}


def _check_fields(d: Any, spec: _Spec, where: str) -> None:
    if not isinstance(d, dict):
        raise ValueError(f"{where} must be a JSON object, not {type(d).__name__}")
    for key, (ok, what, required) in spec.items():
        if key not in d:
            if required:
                raise ValueError(f"{where}.{key} is missing")
            continue
        if not ok(d[key]):
            raise ValueError(f"{where}.{key} must be {what}, not {d[key]!r:.60}")
    extra = sorted(set(d) - set(spec))
    if extra:
        raise ValueError(f"{where} has the unknown field {extra[0]!r}")


def _check_ir_dict(d: dict[str, Any]) -> None:
    """Check an IR's dict is what :meth:`LifecycleIR.to_dict` writes: every field present and
    of its type, indices in place (roles and transitions from 0, states from 1), names unique
    and every name a rule gives (admin, source, target, role, separation) defined
    (``ValueError`` naming the field)."""
    _check_fields(d, _TOP, "IR")
    parts = (("roles", _ROLE, 0, 1, 256), ("states", _STATE, 1, 1, 255),
             ("transitions", _TRANSITION, 0, 0, 256))
    names: dict[str, set[str]] = {}
    for part, spec, first, least, most in parts:
        items = d[part]
        if not least <= len(items) <= most:
            raise ValueError(f"IR {part} must list {least} to {most} entries, not {len(items)}")
        for i, item in enumerate(items):
            _check_fields(item, spec, f"{part}[{i}]")
            if item["index"] != first + i:
                raise ValueError(f"{part}[{i}].index is {item['index']}, not its position "
                                 f"{first + i}")
        names[part] = {item["name"] for item in items}
        if len(names[part]) != len(items):
            raise ValueError(f"IR {part} repeat a name")
    if sum(bool(s.get("initial")) for s in d["states"]) != 1:
        raise ValueError("IR states must have exactly one initial state")

    def known(part: str, where: str, given: list[str]) -> None:
        for n in given:
            if n not in names[part]:
                raise ValueError(f"{where} names {n!r}, which is not one of the IR's {part}")

    for i, r in enumerate(d["roles"]):
        known("roles", f"roles[{i}].admin", [r["admin"]])
    for i, t in enumerate(d["transitions"]):
        known("states", f"transitions[{i}].sources", t["sources"])
        known("states", f"transitions[{i}].target", [t["target"]])
        known("roles", f"transitions[{i}].by", t["by"])
        known("transitions", f"transitions[{i}].separate_from", t["separate_from"])
        known("transitions", f"transitions[{i}].separate_domain_from",
              t.get("separate_domain_from", []))
        if not 1 <= t.get("approvals", 1) <= MAX_APPROVERS:
            raise ValueError(f"transitions[{i}].approvals must be 1 to {MAX_APPROVERS}")
    known("roles", "register_by", d["register_by"])
    if d.get("consortium") is not None:
        _check_fields(d["consortium"], _CONSORTIUM, "consortium")
        if not 1 <= d["consortium"]["quorum"] <= MAX_DOMAINS:
            raise ValueError(f"consortium.quorum must be 1 to {MAX_DOMAINS}")
        known("roles", "consortium.founder_roles", d["consortium"].get("founder_roles") or [])


def _consortium_from(d: dict[str, Any] | None) -> ConsortiumIR | None:
    if not d:
        return None
    founder = d.get("founder_roles")
    return ConsortiumIR(d["quorum"], None if founder is None else tuple(founder))


def _pos(items: list[Any], name: str) -> int:
    return next(i for i, x in enumerate(items) if x.name == name)
