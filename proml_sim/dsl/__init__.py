"""Declarative DSL for artefact state machines.

A lifecycle is a class::

    class Dataset(Artefact):
        admin_role = Role()                    # admin of the roles below (default admin: ADMIN)
        collector = Role(admin=admin_role)
        labeller = Role(admin=admin_role)

        registered = State(initial=True, by=collector, evidence=True)
        labelled = State()
        released = State(final=True)

        label = registered.to(labelled, by=labeller, evidence=True)
        release = labelled.to(released, by=admin_role, approvals=2, count="domains",
                              separate_from=label)

Governance: without a declaration one key rules the roles (the single-admin design: the
deployer holds ``ADMIN``, role admins grant roles in any trust domain they name).  Declaring
``governance = Consortium(quorum=2)`` makes trust domains members of a consortium: each domain
enrols only its own accounts, and adding or removing a domain, rotating a domain's admin and
which roles a domain may hold change only by proposals a quorum of member domains approves.
``separate_domain_from=`` on a transition is separation of duty between domains (the domain
that trained a model may not verify it), beside the account-level ``separate_from=``.

Roles and states are objects, so a typo fails at import time; the class body is validated once,
when the class is created, and :class:`~proml_sim.errors.InvalidDefinition` lists every problem.
The DSL generates nothing: :func:`proml_sim.ir.build_ir` is the only code that reads these
classes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Literal

from proml_sim.dsl._names import IDENTIFIER, is_reserved
from proml_sim.errors import InvalidDefinition

__all__ = ["ADMIN", "MAX_APPROVALS", "MAX_DOMAINS", "MAX_ROLES", "MAX_STATES", "Artefact",
           "Consortium", "Role", "State", "Transition"]

#: Upper bounds the generated contract supports (bit-packed roles, uint8 states, bounded loops).
MAX_ROLES = 32
MAX_STATES = 255
MAX_TRANSITIONS = 255
MAX_APPROVALS = 16
#: Member domains of a consortium (bounded vote lists on chain).
MAX_DOMAINS = 256  # the simulator's many-team worlds (one domain per team) need more than 16

CountMode = Literal["accounts", "domains"]


class Role:
    """A role that accounts hold.  ``admin`` is the role whose holders grant and revoke it
    (default: :data:`ADMIN`).

    Example::

        >>> from proml_sim import Artefact, Role, State, build_ir
        >>> class Lab(Artefact):
        ...     head = Role()
        ...     member = Role(admin=head)  # heads grant and revoke membership
        ...     open = State(initial=True, by=member)
        ...     closed = State(final=True)
        ...     close = open.to(closed, by=head)
        >>> Lab.member, Lab.member.admin
        (Role('member'), Role('head'))
        >>> build_ir(Lab).role("member")
        RoleIR(name='member', index=2, admin='head')
    """

    _counter: ClassVar[int] = 0

    def __init__(self, admin: Role | None = None, *, doc: str = "") -> None:
        self.admin = admin
        self.doc = doc
        self.name: str | None = None
        Role._counter += 1
        self._order = Role._counter

    def __set_name__(self, owner: type, name: str) -> None:
        if self.name is None:
            self.name = name

    def __repr__(self) -> str:
        return f"Role({self.name!r})"


class _AdminRole(Role):
    """The built-in administrator role (index 0), held by the deployer; the default admin of
    every role, and usable in ``by=`` like any declared role.

    Example::

        >>> from proml_sim import ADMIN, Artefact, Role, State, build_ir
        >>> class Ticket(Artefact):
        ...     support = Role()  # no admin given: ADMIN grants and revokes it
        ...     opened = State(initial=True)
        ...     closed = State(final=True)
        ...     close = opened.to(closed, by=[support, ADMIN])
        >>> ADMIN
        Role('admin')
        >>> ir = build_ir(Ticket)
        >>> ir.role("support").admin, ir.transition("close").by
        ('admin', ('admin', 'support'))
    """

    def __init__(self) -> None:
        super().__init__(admin=None, doc="built-in administrator, held by the deployer")
        self.name = "admin"


#: The built-in administrator role (index 0), granted to the deployer; default admin of every role.
ADMIN: Role = _AdminRole()


class Consortium:
    """Consortium governance of a lifecycle's roles and trust domains.

    ``quorum``: member domains (one vote each) a proposal needs before it can be executed; while
    the consortium has fewer members than that, every member must vote.  ``founder_roles``: the
    roles the founding domain (the deployer's) may hold (default: every role); any other domain's
    roles are set by the proposal that admits it.  Declare at most one, as a class attribute
    (``governance = Consortium(quorum=2)``).

    Example::

        >>> from proml_sim import Artefact, Consortium, Interpreter, Role, State, build_ir
        >>> class Memo(Artefact):
        ...     governance = Consortium(quorum=2)
        ...     writer = Role()
        ...     draft = State(initial=True, by=writer)
        ...     sent = State(final=True)
        ...     dispatch = draft.to(sent, by=writer)
        >>> build_ir(Memo).consortium
        ConsortiumIR(quorum=2, founder_roles=None)
        >>> org_a, org_b = b"a" * 32, b"b" * 32  # two trust domain ids
        >>> founder, b_admin = "0x" + "11" * 20, "0x" + "22" * 20
        >>> memo = Interpreter(build_ir(Memo), founder, org_a)
        >>> memo.propose(founder, "add_domain", org_b, b_admin, 0b10)
        1
        >>> memo.execute(founder, 1)  # one member so far: the founder alone is the quorum
        >>> memo.grant(b_admin, "writer", "0x" + "33" * 20, org_a)  # not its own domain
        Traceback (most recent call last):
        ...
        proml_sim.errors.ForeignAccount: Memo: a domain enrols accounts only into itself; ...
    """

    def __init__(
        self, *, quorum: int, founder_roles: Role | Iterable[Role] | None = None, doc: str = ""
    ) -> None:
        self.quorum = quorum
        self.founder_roles = None if founder_roles is None else _as_roles(founder_roles)
        self.doc = doc
        self.name: str | None = None

    def __set_name__(self, owner: type, name: str) -> None:
        if self.name is None:
            self.name = name

    def __repr__(self) -> str:
        return f"Consortium(quorum={self.quorum!r})"


def _as_roles(by: Role | Iterable[Role] | None) -> tuple[Any, ...]:
    if by is None:
        return ()
    if isinstance(by, Role):
        return (by,)
    if isinstance(by, str | bytes):
        return (by,)  # reported by validation: roles must be Role objects
    try:
        return tuple(by)
    except TypeError:
        return (by,)


class _Sources:
    """One or more source states, joined with ``|``."""

    states: tuple[State, ...]

    def __or__(self, other: _Sources) -> StateGroup:
        if not isinstance(other, _Sources):
            return NotImplemented
        merged = list(self.states)
        merged += [s for s in other.states if s not in merged]
        return StateGroup(tuple(merged))

    def to(
        self,
        target: State,
        *,
        by: Role | Iterable[Role] | None = None,
        approvals: int = 1,
        count: CountMode = "accounts",
        evidence: bool = False,
        separate_from: Transition | str | Iterable[Transition | str] = (),
        separate_domain_from: Transition | str | Iterable[Transition | str] = (),
        doc: str = "",
    ) -> Transition:
        """A transition from these states to ``target``.

        ``by``: role(s) allowed to fire (or approve) it.  ``approvals=k``: k distinct approvers
        holding one of those roles must approve the same artefact version (and the same evidence
        digest) before it fires; ``count="domains"`` counts distinct trust domains instead of
        accounts.  ``evidence=True``: the call must carry a non-zero content digest and may carry
        a locator URI and input artefact ids.  ``separate_from``: separation of duty, the actor
        must differ from whoever last fired the named transition(s) on the same artefact.
        ``separate_domain_from``: the same between trust domains: the actor's domain must differ
        from the domain of whoever last fired the named transition(s).
        """
        return Transition(self.states, target, _as_roles(by), approvals, count, evidence,
                           _as_refs(separate_from), doc, _as_refs(separate_domain_from))


def _as_refs(refs: Any) -> tuple[Any, ...]:
    if isinstance(refs, Transition | str):
        return (refs,)
    try:
        return tuple(refs)
    except TypeError:
        return (refs,)


class State(_Sources):
    """A state of the lifecycle.

    ``initial=True`` marks the state an artefact enters when registered; ``by`` then restricts
    who may register (default: anyone) and ``evidence=True`` makes registration carry a digest.
    ``final=True`` marks an end state (no transitions out of it).  ``a | b`` groups states as
    the sources of one transition.

    Example::

        >>> from proml_sim import Artefact, Role, State
        >>> class Paper(Artefact):
        ...     author = Role()
        ...     draft = State(initial=True, by=author)  # only authors register papers
        ...     revised = State()
        ...     published = State(final=True)
        ...     revise = (draft | revised).to(revised, by=author)
        ...     publish = revised.to(published, by=author)
        >>> list(Paper.__states__)
        ['draft', 'revised', 'published']
        >>> Paper.draft.initial, Paper.draft.by, Paper.published.final
        (True, (Role('author'),), True)
    """

    def __init__(
        self,
        *,
        initial: bool = False,
        final: bool = False,
        by: Role | Iterable[Role] | None = None,
        evidence: bool = False,
        doc: str = "",
    ) -> None:
        self.initial = initial
        self.final = final
        self.by = _as_roles(by)
        self.evidence = evidence
        self.doc = doc
        self.name: str | None = None
        self.states = (self,)

    def __set_name__(self, owner: type, name: str) -> None:
        if self.name is None:
            self.name = name

    def __repr__(self) -> str:
        return f"State({self.name!r})"


class StateGroup(_Sources):
    """Several source states: ``a | b``."""

    def __init__(self, states: tuple[State, ...]) -> None:
        self.states = states

    def __repr__(self) -> str:
        return " | ".join(repr(s) for s in self.states)


class Transition:
    """A named step between states; created with ``source.to(target, ...)`` (see
    :meth:`State.to` for ``by``, ``approvals``, ``count``, ``evidence``, ``separate_from``).

    Example::

        >>> from proml_sim import Artefact, Role, State
        >>> class Paper(Artefact):
        ...     author = Role()
        ...     reviewer = Role()
        ...     draft = State(initial=True)
        ...     accepted = State(final=True)
        ...     accept = draft.to(accepted, by=reviewer, approvals=2)  # two reviewers agree
        >>> Paper.accept
        Transition('accept')
        >>> Paper.accept.sources, Paper.accept.target, Paper.accept.approvals
        ((State('draft'),), State('accepted'), 2)
    """

    def __init__(
        self,
        sources: tuple[State, ...],
        target: State,
        by: tuple[Any, ...],
        approvals: Any,
        count: Any,
        evidence: Any,
        separate_from: tuple[Any, ...],
        doc: str = "",
        separate_domain_from: tuple[Any, ...] = (),
    ) -> None:
        self.sources = sources
        self.target = target
        self.by = by
        self.approvals = approvals
        self.count = count
        self.evidence = evidence
        self.separate_from = separate_from
        self.separate_domain_from = separate_domain_from
        self.doc = doc
        self.name: str | None = None

    def __set_name__(self, owner: type, name: str) -> None:
        if self.name is None:
            self.name = name

    def __repr__(self) -> str:
        return f"Transition({self.name!r})"


class Artefact:
    """Base class of every lifecycle.  Subclasses are validated when they are defined.

    Class attributes filled in by validation: ``__roles__``, ``__states__``, ``__transitions__``
    (name -> object, in declaration order) and ``__consortium__`` (None: single admin).

    Example::

        >>> from proml_sim import Artefact, Role, State
        >>> class Paper(Artefact):
        ...     author = Role()
        ...     reviewer = Role()
        ...     draft = State(initial=True, by=author, evidence=True)
        ...     accepted = State(final=True)
        ...     accept = draft.to(accepted, by=reviewer, approvals=2)
        >>> list(Paper.__roles__), list(Paper.__transitions__)
        (['author', 'reviewer'], ['accept'])

    A class that breaks the rules raises :class:`~proml_sim.errors.InvalidDefinition` listing
    every problem.
    """

    __consortium__: ClassVar[Consortium | None] = None
    __roles__: ClassVar[dict[str, Role]] = {}
    __states__: ClassVar[dict[str, State]] = {}
    __transitions__: ClassVar[dict[str, Transition]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        roles, states, transitions = _collect(cls)
        problems = _validate(cls.__name__, roles, states, transitions)
        consortia: list[Consortium] = []
        for klass in cls.__mro__:  # the most derived declaration wins, as for any attribute
            if issubclass(klass, Artefact):
                # (not the ``__consortium__`` a validated base class records: a subclass of a
                # consortium lifecycle inherits its one declaration)
                consortia = [v for k, v in vars(klass).items()
                             if isinstance(v, Consortium) and k != "__consortium__"]
                if consortia:
                    break
        problems += _validate_consortium(cls.__name__, consortia, roles)
        if problems:
            raise InvalidDefinition(cls.__name__, problems)
        cls.__roles__ = roles
        cls.__states__ = states
        cls.__transitions__ = transitions
        cls.__consortium__ = consortia[0] if consortia else None


def _validate_consortium(
    c: str, consortia: list[Consortium], roles: dict[str, Role]
) -> list[str]:
    p: list[str] = []
    declared = {id(r) for r in roles.values()} | {id(ADMIN)}
    if len(consortia) > 1:
        p.append(
            f"{c}: {len(consortia)} Consortium declarations; declare at most one "
            "(`governance = Consortium(quorum=...)`)."
        )
    for x in consortia:
        q = x.quorum
        if not isinstance(q, int) or isinstance(q, bool) or not 1 <= q <= MAX_DOMAINS:
            p.append(
                f"{c}: Consortium(quorum={q!r}) is impossible; use an integer from 1 to "
                f"{MAX_DOMAINS} (member domains that must approve a proposal)."
            )
        for r in x.founder_roles or ():
            if not isinstance(r, Role) or id(r) not in declared:
                p.append(
                    f"{c}: Consortium founder_roles names {r!r}, which is not a role declared in "
                    f"{c}; pass declared Role objects (or ADMIN)."
                )
    return p


def _collect(cls: type) -> tuple[dict[str, Role], dict[str, State], dict[str, Transition]]:
    """Gather declarations from the class and its lifecycle bases, bases first."""
    roles: dict[str, Role] = {}
    states: dict[str, State] = {}
    transitions: dict[str, Transition] = {}
    for klass in reversed(cls.__mro__):
        if klass is Artefact or not issubclass(klass, Artefact):
            continue
        for name, value in vars(klass).items():
            if isinstance(value, Role):
                roles[name] = value
            elif isinstance(value, State):
                states[name] = value
            elif isinstance(value, Transition):
                transitions[name] = value
    return roles, states, transitions


def _fmt(names: Iterable[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _validate(
    cls_name: str,
    roles: dict[str, Role],
    states: dict[str, State],
    transitions: dict[str, Transition],
) -> list[str]:
    p: list[str] = []
    c = cls_name

    # names: valid identifiers, not reserved, each object bound to one name only
    seen_objects: dict[int, str] = {}
    for kind, table in (("role", roles), ("state", states), ("transition", transitions)):
        for name, obj in table.items():
            if not IDENTIFIER.match(name):
                p.append(
                    f"{kind} name '{name}' is not a valid contract identifier (ASCII letter first, "
                    "then letters, digits or '_', at most 40 characters); rename it."
                )
            elif is_reserved(name):
                p.append(
                    f"{kind} name '{name}' is reserved by the generated contract; rename it "
                    f"(for example '{name}_{kind}')."
                )
            if id(obj) in seen_objects:
                p.append(
                    f"{kind} '{name}' is the same object as '{seen_objects[id(obj)]}' (duplicate "
                    "name); declare a separate object or remove one name."
                )
            else:
                seen_objects[id(obj)] = name
            if obj.name != name and seen_objects[id(obj)] == name:
                p.append(
                    f"{kind} '{name}' was first declared as '{obj.name}' in another lifecycle; "
                    "declare a new object in this class."
                )
    lowered: dict[str, str] = {}
    for name in [*roles, *states, *transitions]:
        other = lowered.setdefault(name.lower(), name)
        if other != name:
            p.append(
                f"names '{other}' and '{name}' differ only by case (duplicate name); rename one."
            )

    # sizes
    if len(roles) + 1 > MAX_ROLES:
        p.append(f"{len(roles)} roles declared; at most {MAX_ROLES - 1} are supported.")
    if len(states) > MAX_STATES:
        p.append(f"{len(states)} states declared; at most {MAX_STATES} are supported.")
    if len(transitions) > MAX_TRANSITIONS:
        p.append(f"{len(transitions)} transitions declared; at most {MAX_TRANSITIONS}.")

    role_objs = {id(r) for r in roles.values()} | {id(ADMIN)}

    def check_roles(where: str, rs: tuple[Any, ...]) -> None:
        for r in rs:
            if not isinstance(r, Role):
                p.append(
                    f"{where}: by= takes Role objects, got {r!r}; declare `x = Role()` in the "
                    "class and pass it."
                )
            elif id(r) not in role_objs:
                p.append(
                    f"{where}: role {repr(r.name) if r.name else '(unnamed Role object)'} is "
                    f"not declared in {c}; add it as a class "
                    "attribute (`name = Role()`) or use a declared role."
                )

    for name, role in roles.items():
        if role.admin is not None:
            check_roles(f"role '{name}' admin", (role.admin,))

    # states
    initials = [n for n, s in states.items() if s.initial]
    finals = [n for n, s in states.items() if s.final]
    if not states:
        p.append("no states declared; add `start = State(initial=True)` and a final state.")
    elif len(initials) != 1:
        if not initials:
            p.append("no initial state; mark exactly one state with State(initial=True).")
        else:
            p.append(
                f"{len(initials)} initial states ({_fmt(initials)}); exactly one state may be "
                "initial: keep one and unmark the others."
            )
    if states and not finals:
        p.append("no final state; mark at least one state with State(final=True).")
    for name, s in states.items():
        if s.by and not s.initial:
            p.append(f"state '{name}': by= applies only to the initial state (who may register).")
        if s.evidence and not s.initial:
            p.append(f"state '{name}': evidence= on a state applies only to the initial state.")
        if s.initial:
            check_roles(f"state '{name}' (registration)", s.by)

    state_objs = {id(s): n for n, s in states.items()}
    trans_objs = {id(t): n for n, t in transitions.items()}

    # transitions
    for name, t in transitions.items():
        where = f"transition '{name}'"
        for s in t.sources:
            if id(s) not in state_objs:
                p.append(f"{where}: source state '{s.name}' is not declared in {c}; declare it.")
            elif s.final:
                p.append(
                    f"{where}: leaves final state '{state_objs[id(s)]}'; final states have no "
                    "outgoing transitions: unmark final= or remove the transition."
                )
        if not isinstance(t.target, State):
            p.append(f"{where}: target must be a State, got {t.target!r}.")
        elif id(t.target) not in state_objs:
            p.append(f"{where}: target state '{t.target.name}' is not declared in {c}; declare it.")
        if not t.by:
            p.append(f"{where}: no role may fire it; pass by=<role> (or a list of roles).")
        check_roles(where, t.by)
        k = t.approvals
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_APPROVALS:
            p.append(
                f"{where}: approvals={k!r} is impossible; use an integer from 1 to "
                f"{MAX_APPROVALS}."
            )
        if t.count not in ("accounts", "domains"):
            p.append(f"{where}: count={t.count!r}; use count='accounts' or count='domains'.")
        elif t.count == "domains" and k == 1:
            p.append(
                f"{where}: count='domains' needs approvals >= 2 (one approval has one domain)."
            )
        if not isinstance(t.evidence, bool):
            p.append(f"{where}: evidence= takes True or False, got {t.evidence!r}.")
        for opt, refs in (("separate_from", t.separate_from),
                          ("separate_domain_from", t.separate_domain_from)):
            for ref in refs:
                ref_name = ref if isinstance(ref, str) else trans_objs.get(id(ref))
                if ref_name is None or ref_name not in transitions:
                    shown = ref if isinstance(ref, str) else getattr(ref, "name", ref)
                    p.append(
                        f"{where}: {opt} names '{shown}', which is not a transition of {c}; "
                        "name a declared transition."
                    )

    # graph rules (only on well-formed parts)
    if initials:
        edges: dict[str, set[str]] = {n: set() for n in states}
        for t in transitions.values():
            tgt = state_objs.get(id(t.target))
            for s in t.sources:
                src = state_objs.get(id(s))
                if src is not None and tgt is not None:
                    edges[src].add(tgt)
        reach = set(initials)
        frontier = list(initials)
        while frontier:
            for nxt in edges[frontier.pop()]:
                if nxt not in reach:
                    reach.add(nxt)
                    frontier.append(nxt)
        for n in states:
            if n not in reach:
                p.append(
                    f"state '{n}' is unreachable from {_fmt(initials)}; add a transition into it "
                    "or remove it."
                )
        if finals:
            can_finish = set(finals)
            changed = True
            while changed:
                changed = False
                for src, tgts in edges.items():
                    if src not in can_finish and tgts & can_finish:
                        can_finish.add(src)
                        changed = True
            for n in states:
                if n in reach and n not in can_finish:
                    p.append(
                        f"state '{n}' cannot reach a final state; add a transition out of it "
                        "towards a final state, or mark it final."
                    )
    return [f"{c}: {msg}" if not msg.startswith(c) else msg for msg in p]
