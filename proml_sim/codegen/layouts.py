"""IR -> Vyper for the two per-artefact layouts: ``factory`` and ``clone``.

Both split the registry in two:

* a **factory** contract per lifecycle holds what is shared by all artefacts: roles (bit masks,
  bit 0 = built-in admin), trust domains, role admins, ``grant_role`` / ``revoke_role`` (the
  registry's own emitters, so the same guards and events), and ``register``, which creates one
  **artefact contract** per registration and records ``artefact_of[id]``;
* the artefact contract holds that artefact's record (``version << 8 | state``), its approvals
  and its separation-of-duty memory, and runs the transitions.  It asks its factory for the
  caller's roles and domain (``staticcall``), so a grant or a revocation takes effect on every
  artefact at once, exactly as in the registry.

The transitions are emitted by :func:`proml_sim.codegen.vyper.emit_transition` with a different
:class:`~proml_sim.codegen.vyper.Access`: same guards, same guard order, same revert reasons,
same events (``Transitioned`` and ``Approved`` come from the artefact contract; ``Registered``,
``RoleGranted``, ``RoleRevoked`` from the factory), so :func:`proml_sim.ir.replay` rebuilds the
state from the union of their logs.  The factory also emits ``ArtefactCreated(id, artefact)``:
the address of the contract it created, which tells a reader which contracts' logs to trust (a
contract anyone else creates from the same code is not in the factory's map).  It carries no
lifecycle state, so replay needs nothing from it.

Ids stay the registry's sender-bound ``keccak256(sender ++ salt)``, and the artefact contract is
created with ``CREATE2`` salted with that id: its address is a function of (factory, id, code)
alone, so a client can address an artefact whose registration is still pending, and no one but
the factory can ever put code there.  Transition calls keep the registry's signature (the id is
the first argument) and the artefact contract checks it: a call sent to the wrong contract
reverts with ``UnknownArtefact`` instead of acting on another artefact.  The factory answers any
other call (for instance a transition call for an id it has no contract for) with the same
``UnknownArtefact`` revert.

How the artefact contract is created differs:

``factory``
    ``create_from_blueprint``: the artefact contract's init code is stored once in an ERC-5202
    blueprint; each registration runs its constructor, which fixes the factory and the id as
    immutables (part of the code: reading them costs 3 gas, not a storage read).  This is what
    Solidity's ``new Artefact(...)`` does (with the init code read from another account instead
    of the factory's own code), so its numbers compare with the usual "contract per artefact";
    ``create_copy_of`` was not used because it copies runtime code without running a
    constructor, so the per-artefact values would need an initialiser and storage, which is the
    clone's design at the full contract's deployment price.
``clone``
    ``create_minimal_proxy_to``: a 45-byte EIP-1167 proxy that ``DELEGATECALL``s one
    implementation contract.  Per-artefact values (the id) live in the proxy's storage and are
    set by ``initialize(id)``, which the factory calls in the registering transaction.  The
    initialiser guard is explicit: only the factory (an immutable of the implementation, which
    proxies see because they run its code) and only once (the record is 0 exactly until then).

Identifiers: a per-artefact contract declares DSL transition names, so every other identifier it
declares is either in :data:`proml_sim.dsl._names.GENERATED_NAMES` (reserved for DSL names) or
starts with ``_`` (DSL names start with a letter); the factory declares no DSL name at all.
"""

from __future__ import annotations

from proml_sim.codegen.vyper import (
    EVIDENCE_ARGS,
    GOV_EVENTS,
    Access,
    _q,
    admin_table,
    emit_approve_helper,
    emit_events,
    emit_header,
    emit_roles,
    emit_transition,
    founding,
    gov_declarations,
    register_checks,
)
from proml_sim.ir import messages as msg
from proml_sim.ir.model import MAX_APPROVERS, LifecycleIR

#: The "# Contract layout:" header line of each part: the part's name first.
_NOTES = {
    "factory": "factory -- the factory: roles, domains, registration; a contract per artefact",
    "factory.artefact": "factory.artefact -- one artefact's contract, created by the factory",
    "clone": "clone -- the factory: roles, domains, registration; an EIP-1167 proxy per artefact",
    "clone.artefact": "clone.artefact -- the implementation behind every artefact's proxy",
}

_FACTORY_CALL = "staticcall _Factory(_FACTORY)"

#: How transitions reach their data inside an artefact contract.  ``factory``: the id is an
#: immutable; ``clone``: the id is in (the proxy's) storage and the record is 0 until initialised.
ARTEFACT_ACCESS = {
    "factory": Access(
        record="self.record",
        exists="id == _ID",
        roles=_FACTORY_CALL + ".roles({who})",
        domains=_FACTORY_CALL + ".domains({who})",
        last_actor="self.last_actor[{t}]",
    ),
    "clone": Access(
        record="self.record",
        exists="_r != 0 and id == self._id",
        roles=_FACTORY_CALL + ".roles({who})",
        domains=_FACTORY_CALL + ".domains({who})",
        last_actor="self.last_actor[{t}]",
    ),
}


#: Lines identical to the registry's (kept here whole, as the registry emitter writes them).
_APPROVERS_OF = (
    "def approvers_of(id: bytes32, transition: uint8, version: uint256, digest: bytes32) "
    f"-> DynArray[address, {MAX_APPROVERS}]:"
)


def artefact_access(ir: LifecycleIR, kind: str) -> Access:
    """How an artefact contract of ``kind`` reaches its data; with a consortium it asks the
    factory for the caller's *effective* roles (those its domain may hold)."""
    access = ARTEFACT_ACCESS[kind]
    if ir.consortium is None:
        return access
    return Access(access.record, access.exists, _FACTORY_CALL + ".effective_roles({who})",
                  access.domains, access.last_actor)


def _log_registered(ir: LifecycleIR) -> str:
    return (
        f"    log Registered(id=_id, registrant=msg.sender, salt=salt, state={ir.initial.index}, "
        "digest=digest, locator=locator, inputs=inputs)"
    )


def emit_factory(ir: LifecycleIR, kind: str) -> str:
    """The factory of the ``factory`` or ``clone`` layout (``kind``)."""
    clone = kind == "clone"
    template = "IMPLEMENTATION" if clone else "BLUEPRINT"
    interface = '''
interface _Artefact:
    def initialize(id: bytes32): nonpayable
    def _factory() -> address: view
''' if clone else ""
    template_doc = (
        "# the implementation every artefact's proxy delegates to (it names this factory)"
        if clone else
        "# the ERC-5202 blueprint holding the artefact contract's init code"
    )
    bind_check = (
        "\n    assert staticcall _Artefact(implementation)._factory() == self, "
        '"implementation is bound to another factory"'
        if clone else ""
    )
    if clone:
        create = (
            "    _a: address = create_minimal_proxy_to(IMPLEMENTATION, salt=_id)\n"
            "    extcall _Artefact(_a).initialize(_id)\n"
        )
    else:
        create = "    _a: address = create_from_blueprint(BLUEPRINT, _id, salt=_id)\n"
    arg = "implementation" if clone else "blueprint"
    gov_events = GOV_EVENTS if ir.consortium is not None else ()
    before, after = founding(ir)
    return "".join([
        emit_header(ir, _NOTES[kind]),
        interface,
        emit_events("Registered", "RoleGranted", "RoleRevoked", *gov_events),
        '''
event ArtefactCreated:
    id: indexed(bytes32)
    artefact: indexed(address)
''',
        f'''
IR_FINGERPRINT: public(constant(bytes32)) = 0x{ir.fingerprint()}
N_ROLES: constant(uint256) = {len(ir.roles)}
# admin role index of role i, packed 8 bits per role
ADMIN_TABLE: constant(uint256) = {admin_table(ir)}
{template_doc}
{template}: public(immutable(address))

roles: public(HashMap[address, uint256])
domains: public(HashMap[address, bytes32])
artefact_of: public(HashMap[bytes32, address])
{gov_declarations(ir)}

@deploy
def __init__(admin_domain: bytes32, {arg}: address):
{before}    {template} = {arg}{bind_check}
    self.roles[msg.sender] = 1
    self.domains[msg.sender] = admin_domain
    log RoleGranted(role=0, account=msg.sender, sender=msg.sender, domain=admin_domain)
{after}

@external
@pure
def artefact_id(registrant: address, salt: bytes32) -> bytes32:
    return keccak256(concat(convert(registrant, bytes20), salt))
''',
        emit_roles(ir),
        f'''

@external
def register(salt: bytes32, {EVIDENCE_ARGS}) -> bytes32:
{register_checks(ir)}    _id: bytes32 = keccak256(concat(convert(msg.sender, bytes20), salt))
    assert self.artefact_of[_id] == empty(address), {_q(msg.already_registered(ir))}
    # CREATE2 salted with the id: the address depends on (factory, id, code) only
{create}    self.artefact_of[_id] = _a
{_log_registered(ir)}
    log ArtefactCreated(id=_id, artefact=_a)
    return _id


@external
def __default__():
    # Any other call, e.g. a transition for an id with no artefact contract, is refused as the
    # registry refuses a transition on an unknown id.
    raise {_q(msg.unknown_artefact(ir))}
''',
    ])


def emit_artefact(ir: LifecycleIR, kind: str) -> str:
    """The per-artefact contract of the ``factory`` or ``clone`` layout (``kind``)."""
    clone = kind == "clone"
    access = artefact_access(ir, kind)
    eff = (
        "    def effective_roles(account: address) -> uint256: view\n"
        if ir.consortium is not None else ""
    )
    me = "self._id" if clone else "_ID"
    initial = ir.initial.index
    if clone:
        fixed = '''
# The factory, fixed when the implementation is deployed.  Proxies run this code,
# so it is theirs too; the artefact's own values live in the proxy's storage.
_FACTORY: immutable(address)

record: uint256
_id: bytes32
'''
        setup = f'''

@deploy
def __init__(factory: address):
    # The implementation itself is never initialised: only the factory may call initialize, and
    # the factory calls it only on proxies it has just created.
    _FACTORY = factory


@external
@view
def initialized() -> bool:
    return self.record != 0


@external
def initialize(id: bytes32):
    # INITIALISER GUARD (a re-callable initialiser is a known vulnerability: whoever calls it
    # again resets the artefact's state and version).  Both checks are needed:
    # 1. only the factory, which calls it in the transaction that creates the proxy;
    assert msg.sender == _FACTORY, "initialize: only the factory may initialise an artefact"
    # 2. only once: the record is 0 exactly until initialisation (state and version are never 0
    #    afterwards), so it is the "initialised" flag, at no extra storage cost.
    assert self.record == 0, "initialize: artefact already initialised"
    self._id = id
    self.record = (1 << 8) | {initial}
'''
    else:
        fixed = '''
# The factory that created this contract and the artefact's id: fixed at creation,
# so they are part of the code (immutables), not storage.
_FACTORY: immutable(address)
_ID: immutable(bytes32)

record: uint256
'''
        setup = f'''

@deploy
def __init__(id: bytes32):
    _FACTORY = msg.sender
    _ID = id
    self.record = (1 << 8) | {initial}
'''
    return "".join([
        emit_header(ir, _NOTES[f"{kind}.artefact"]),
        f'''
interface _Factory:
    def roles(account: address) -> uint256: view
    def domains(account: address) -> bytes32: view
{eff}''',
        emit_events("Transitioned", "Approved"),
        f'''
IR_FINGERPRINT: public(constant(bytes32)) = 0x{ir.fingerprint()}
ALREADY: constant(uint256) = max_value(uint256)
FULL: constant(uint256) = max_value(uint256) - 1
{fixed}approvers: HashMap[bytes32, DynArray[address, {MAX_APPROVERS}]]
last_actor: HashMap[uint8, address]
''',
        setup,
        f'''

@external
@view
def _factory() -> address:
    return _FACTORY


@external
@view
def state_of(id: bytes32) -> uint8:
    if id != {me}:
        return 0
    return convert(self.record & 255, uint8)


@external
@view
def version_of(id: bytes32) -> uint256:
    if id != {me}:
        return 0
    return self.record >> 8


@external
@view
{_APPROVERS_OF}
    return self.approvers[keccak256(abi_encode(id, transition, version, digest))]


@external
@view
def last_actor_of(id: bytes32, transition: uint8) -> address:
    if id != {me}:
        return empty(address)
    return self.last_actor[transition]
''',
        emit_approve_helper(ir, access),
        *(emit_transition(ir, t, access) for t in ir.transitions),
    ])


def generate_layout_part(ir: LifecycleIR, part: str) -> str:
    """Source of one contract of the factory or clone layout: ``"factory"``, ``"clone"`` (the
    factories) or ``"factory.artefact"``, ``"clone.artefact"`` (the per-artefact contracts)."""
    kind, _, sub = part.partition(".")
    if kind not in ("factory", "clone") or sub not in ("", "artefact"):
        raise ValueError(f"unknown part {part!r} of the factory and clone layouts")
    return emit_artefact(ir, kind) if sub else emit_factory(ir, kind)
