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
        if d.get("ir_version") != IR_VERSION:
            raise ValueError(
                f"lifecycle IR version {d.get('ir_version')!r} is not supported (this proml-sim "
                f"reads version {IR_VERSION}); regenerate it with this version."
            )
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


def _consortium_from(d: dict[str, Any] | None) -> ConsortiumIR | None:
    if not d:
        return None
    founder = d.get("founder_roles")
    return ConsortiumIR(d["quorum"], None if founder is None else tuple(founder))


def _pos(items: list[Any], name: str) -> int:
    return next(i for i, x in enumerate(items) if x.name == name)
