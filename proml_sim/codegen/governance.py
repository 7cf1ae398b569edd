"""IR -> Vyper for consortium governance (lifecycles declaring ``Consortium(quorum=...)``).

Governance lives in the contract that holds roles and domains: the registry, or the factory of
the ``factory`` and ``clone`` layouts (their artefact contracts ask the factory for an account's
*effective* roles).  It is part of each lifecycle's contract rather than one consortium contract
shared by a lifecycle's registries: every guard then reads its own storage (no external call on
the hot path of a transition), a lifecycle's authorisation is one contract's state and its event
log alone replays it, and no cross-contract trust has to be set up at deployment.  The cost: the
consortiums of a Dataset and a Model registry are governed separately (a member domain joins
each by its own proposal).

State: member domains (``gov_member``), the roles each may hold (``gov_allowed``), each domain's
admin account (``gov_admin_of`` / ``gov_admin_domain``), proposals with their voting domains and
the governance epoch.  An account's effective roles are ``roles[a] & gov_allowed[domains[a]]``:
removing a domain (or narrowing its roles) takes effect on all its accounts at once, and their
pending approvals stop counting, in O(1).  A proposal is valid only in the epoch it was opened
in: executing any proposal ends the epoch, so a vote collected under one membership can never be
counted under another (expiry, as TUF signs a root rotation against a root version).
"""

from __future__ import annotations

from proml_sim.codegen.vyper import _q
from proml_sim.ir import messages as msg
from proml_sim.ir.model import MAX_DOMAINS, LifecycleIR


def emit_gov_declarations(ir: LifecycleIR) -> str:
    """Constants, the proposal struct and the governance storage."""
    assert ir.consortium is not None
    return f'''
QUORUM: constant(uint256) = {ir.consortium.quorum}
MAX_DOMAINS: constant(uint256) = {MAX_DOMAINS}

struct GovProposal:
    kind: uint8
    domain: bytes32
    account: address
    roles: uint256
    status: uint8
    epoch: uint256

gov_member: public(HashMap[bytes32, bool])
gov_allowed: public(HashMap[bytes32, uint256])
gov_admin_of: public(HashMap[bytes32, address])
gov_admin_domain: public(HashMap[address, bytes32])
gov_used: HashMap[bytes32, bool]
gov_members: public(uint256)
gov_epoch: public(uint256)
gov_proposals: public(uint256)
gov_proposal: public(HashMap[uint256, GovProposal])
gov_votes: HashMap[uint256, DynArray[bytes32, MAX_DOMAINS]]
'''


def emit_gov_founding(ir: LifecycleIR) -> str:
    """Constructor lines (after the deployer's admin grant): the deployer's domain founds the
    consortium and may hold the founder roles (every role by default); logged as proposal 0."""
    all_roles = ir.founder_mask()
    return f'''    self.gov_used[admin_domain] = True
    self.gov_member[admin_domain] = True
    self.gov_allowed[admin_domain] = {all_roles}
    self.gov_admin_of[admin_domain] = msg.sender
    self.gov_admin_domain[msg.sender] = admin_domain
    self.gov_members = 1
    log GovExecuted(id=0, kind=1, domain=admin_domain, account=msg.sender, roles={all_roles}, sender=msg.sender)
'''


def founding_check(ir: LifecycleIR) -> str:
    """The constructor's first line: a consortium is founded by a non-zero domain."""
    return f"    assert admin_domain != empty(bytes32), {_q(msg.founder_domain(ir))}\n"


def emit_gov_roles(ir: LifecycleIR) -> str:
    """Effective roles, and grant/revoke restricted to the sender's own domain."""
    return f'''

@internal
@view
def _eff(_a: address) -> uint256:
    # roles an account can use: only those its domain may hold (none once it is removed)
    return self.roles[_a] & self.gov_allowed[self.domains[_a]]


@external
@view
def effective_roles(account: address) -> uint256:
    return self._eff(account)


@internal
@view
def _gov_domain(role: uint8) -> bytes32:
    # the domain the sender manages: the one it administers, else its own if it holds the
    # admin role of `role`
    _mine: bytes32 = self.gov_admin_domain[msg.sender]
    if _mine != empty(bytes32):
        return _mine
    _admin: uint256 = (ADMIN_TABLE >> (convert(role, uint256) * 8)) & 255
    assert self._eff(msg.sender) & (1 << _admin) != 0, {_q(msg.not_role_admin(ir))}
    return self.domains[msg.sender]


@external
def grant_role(role: uint8, account: address, domain: bytes32):
    assert convert(role, uint256) < N_ROLES, {_q(msg.unknown_role(ir))}
    _mine: bytes32 = self._gov_domain(role)
    assert domain == _mine, {_q(msg.other_domain(ir))}
    assert self.gov_allowed[_mine] & (1 << convert(role, uint256)) != 0, {_q(msg.domain_role(ir))}
    _b: bytes32 = self.domains[account]
    _ad: bytes32 = self.gov_admin_domain[account]
    assert (_b == empty(bytes32) or _b == _mine) and (_ad == empty(bytes32) or _ad == _mine), {_q(msg.foreign_account(ir))}
    self.roles[account] = self.roles[account] | (1 << convert(role, uint256))
    self.domains[account] = domain
    log RoleGranted(role=role, account=account, sender=msg.sender, domain=domain)


@external
def revoke_role(role: uint8, account: address):
    assert convert(role, uint256) < N_ROLES, {_q(msg.unknown_role(ir))}
    _mine: bytes32 = self._gov_domain(role)
    assert self.domains[account] == _mine, {_q(msg.foreign_account(ir))}
    self.roles[account] = self.roles[account] & ~(1 << convert(role, uint256))
    log RoleRevoked(role=role, account=account, sender=msg.sender)
'''


def emit_gov_proposals(ir: LifecycleIR) -> str:
    """propose / vote / execute and their views."""
    return f'''

@internal
@view
def _gov_check(_k: uint8, _d: bytes32, _a: address, _m: uint256):
    # the change must still be possible: checked when proposed and again when executed
    assert _k >= 1 and _k <= 4, {_q(msg.bad_kind(ir))}
    if _k == 1:
        assert self.gov_members < MAX_DOMAINS, {_q(msg.consortium_full(ir))}
        assert _d != empty(bytes32) and not self.gov_used[_d], {_q(msg.domain_taken(ir))}
    else:
        assert self.gov_member[_d], {_q(msg.not_member(ir))}
    if _k == 2:
        assert self.gov_members >= 2, {_q(msg.last_member(ir))}
    if _k == 1 or _k == 3:
        _b: bytes32 = self.domains[_a]
        assert _a != empty(address) and self.gov_admin_domain[_a] == empty(bytes32) and (_b == empty(bytes32) or (_k == 3 and _b == _d)), {_q(msg.bad_new_admin(ir))}
    if _k == 1 or _k == 4:
        assert _m >> N_ROLES == 0, {_q(msg.bad_role_mask(ir))}


@internal
@view
def _gov_open(_p: uint256) -> GovProposal:
    assert _p >= 1 and _p <= self.gov_proposals, {_q(msg.unknown_proposal(ir))}
    _x: GovProposal = self.gov_proposal[_p]
    assert _x.status == 1 and _x.epoch == self.gov_epoch, {_q(msg.proposal_closed(ir))}
    return _x


@internal
@view
def _gov_sender() -> bytes32:
    _mine: bytes32 = self.gov_admin_domain[msg.sender]
    assert _mine != empty(bytes32), {_q(msg.not_domain_admin(ir))}
    return _mine


@external
def gov_propose(kind: uint8, domain: bytes32, account: address, roles: uint256) -> uint256:
    _mine: bytes32 = self._gov_sender()
    self._gov_check(kind, domain, account, roles)
    _p: uint256 = self.gov_proposals + 1
    self.gov_proposals = _p
    self.gov_proposal[_p] = GovProposal(kind=kind, domain=domain, account=account, roles=roles, status=1, epoch=self.gov_epoch)
    self.gov_votes[_p] = [_mine]
    log GovProposed(id=_p, kind=kind, domain=domain, account=account, roles=roles, proposer=msg.sender, epoch=self.gov_epoch)
    log GovVoted(id=_p, domain=_mine, voter=msg.sender, count=1)
    return _p


@external
def gov_vote(id: uint256) -> uint256:
    _mine: bytes32 = self._gov_sender()
    _x: GovProposal = self._gov_open(id)
    assert _mine not in self.gov_votes[id], {_q(msg.already_voted(ir))}
    self.gov_votes[id].append(_mine)
    _n: uint256 = len(self.gov_votes[id])
    log GovVoted(id=id, domain=_mine, voter=msg.sender, count=_n)
    return _n


@external
def gov_execute(id: uint256):
    _x: GovProposal = self._gov_open(id)
    assert len(self.gov_votes[id]) >= min(QUORUM, self.gov_members), {_q(msg.quorum_not_reached(ir))}
    self._gov_check(_x.kind, _x.domain, _x.account, _x.roles)
    _d: bytes32 = _x.domain
    if _x.kind == 1:
        self.gov_used[_d] = True
        self.gov_member[_d] = True
        self.gov_allowed[_d] = _x.roles
        self.gov_admin_of[_d] = _x.account
        self.gov_admin_domain[_x.account] = _d
        self.gov_members += 1
    elif _x.kind == 2:
        self.gov_member[_d] = False
        self.gov_allowed[_d] = 0
        self.gov_admin_domain[self.gov_admin_of[_d]] = empty(bytes32)
        self.gov_admin_of[_d] = empty(address)
        self.gov_members -= 1
    elif _x.kind == 3:
        self.gov_admin_domain[self.gov_admin_of[_d]] = empty(bytes32)
        self.gov_admin_of[_d] = _x.account
        self.gov_admin_domain[_x.account] = _d
    else:
        self.gov_allowed[_d] = _x.roles
    self.gov_proposal[id].status = 2
    self.gov_epoch += 1
    log GovExecuted(id=id, kind=_x.kind, domain=_d, account=_x.account, roles=_x.roles, sender=msg.sender)


@external
@view
def gov_votes_of(id: uint256) -> DynArray[bytes32, MAX_DOMAINS]:
    return self.gov_votes[id]
'''
