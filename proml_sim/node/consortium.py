"""Consortium governance from a node: propose, vote, execute, list, show.

Works on lifecycles deployed with a ``Consortium`` declaration: the paper's ``Dataset`` and
``Model``, which ``proml init`` deploys by default with the node's domain as the founder (the
single-admin ``SingleAdminDataset`` / ``SingleAdminModel`` have none).  A new organisation
joins by running its own node (``proml init`` on the shared chain, which gives it a key and a
domain name), and asking a member to propose it: ``proml consortium propose <Lifecycle>
add_domain --domain <its domain> --admin <its address> --roles <roles>``; once a quorum of
members voted, anyone executes it, and the new domain's admin then enrols its own accounts with
``proml grant`` (:func:`admit` does the whole sequence from Python).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from proml_sim.errors import NodeError

if TYPE_CHECKING:
    from proml_sim.chain.client import LifecycleClient
    from proml_sim.node.service import ProMLNode

KIND_NAMES = {1: "add_domain", 2: "remove_domain", 3: "rotate_admin", 4: "set_roles"}
STATUS = {1: "open", 2: "executed"}


def _governed(node: ProMLNode, lifecycle: str) -> LifecycleClient:
    client = node.client(lifecycle)
    if client.ir.consortium is None:
        raise NodeError(
            f"{lifecycle} uses the single-admin design and has no consortium; deploy a lifecycle "
            "that declares `governance = Consortium(quorum=...)` (e.g. proml deploy Model, the "
            "paper's default)"
        )
    return client


def domain_name(raw: bytes) -> str:
    """A domain id as the node shows it: its text if it is a padded name, else 0x-hex."""
    text = raw.rstrip(b"\0")
    try:
        decoded = text.decode()
    except UnicodeDecodeError:
        return "0x" + raw.hex()
    return decoded if decoded.isprintable() and decoded else "0x" + raw.hex()


def role_mask(client: LifecycleClient, roles: list[str]) -> int:
    """The mask of the named roles (unknown names refused with the known ones)."""
    mask = 0
    for r in roles:
        try:
            mask |= client.ir.role(r).bit
        except KeyError as exc:
            raise NodeError(f"{exc.args[0]}; check the spelling") from None
    return mask


def propose(node: ProMLNode, lifecycle: str, kind: str, domain: str, admin: str | None,
            roles: list[str]) -> int:
    """Open a proposal as this node's domain admin; returns its id."""
    from proml_sim.ir.events import ZERO_ADDRESS
    from proml_sim.node.service import check_address, domain_bytes

    client = _governed(node, lifecycle)
    if kind in ("add_domain", "rotate_admin") and not admin:
        raise NodeError(f"{kind} needs --admin ADDRESS (the domain admin's account)")
    if kind in ("add_domain", "set_roles") and not roles:
        raise NodeError(f"{kind} needs --roles ROLE[,ROLE...] (the roles the domain may hold)")
    account = check_address(admin) if admin else ZERO_ADDRESS
    with node._writing():
        pid: int = node._mine(client, client.propose(
            node.signer, kind, domain_bytes(domain), account, role_mask(client, roles)))
    return pid


def vote(node: ProMLNode, lifecycle: str, proposal: int) -> int:
    """Vote for a proposal as this node's domain admin; returns its vote count."""
    client = _governed(node, lifecycle)
    with node._writing():
        count: int = node._mine(client, client.vote(node.signer, proposal))
    return count


def execute(node: ProMLNode, lifecycle: str, proposal: int) -> None:
    """Carry out a proposal a quorum of domains voted for."""
    client = _governed(node, lifecycle)
    with node._writing():
        node._mine(client, client.execute(node.signer, proposal))


def proposals(node: ProMLNode, lifecycle: str) -> list[dict[str, Any]]:
    """Every proposal with its status (open, expired, executed) and votes."""
    client = _governed(node, lifecycle)
    snap = client.snapshot()
    out = []
    for pid, (kind, domain, account, roles, status, epoch, votes) in snap.proposals.items():
        state = STATUS[status] if status != 1 or epoch == snap.epoch else "expired"
        out.append({
            "id": pid, "kind": KIND_NAMES.get(kind, str(kind)), "domain": domain_name(domain),
            "account": account, "roles": [r.name for r in client.ir.roles if roles & r.bit],
            "status": state, "votes": [domain_name(v) for v in votes],
        })
    return out


def join_request(node: ProMLNode, lifecycle: str, roles: list[str]) -> dict[str, Any]:
    """What a member must run to admit this node's domain (nothing is sent: only members may
    propose).  ``member``: this node's domain is already a member."""
    client = _governed(node, lifecycle)
    role_mask(client, roles)  # unknown role names are refused here, not by the member
    info = show(node, lifecycle)
    member = any(m["domain"] == node.domain for m in info["members"])
    command = (f"proml consortium propose {lifecycle} add_domain --domain {node.domain} "
               f"--admin {node.address} --roles {','.join(roles)}")
    return {"lifecycle": lifecycle, "domain": node.domain, "address": node.address,
            "roles": roles, "member": member, "command": None if member else command}


def admit(members: Sequence[ProMLNode], lifecycle: str, newcomer: ProMLNode,
          roles: list[str]) -> int:
    """``newcomer``'s domain joins ``lifecycle``'s consortium, with ``newcomer`` as its admin,
    allowed ``roles``: ``members[0]`` proposes ``add_domain``, the other ``members`` vote until
    the quorum is reached (refused with the contract's reason if they are too few),
    ``members[0]`` executes; then ``newcomer`` enrols its own account in ``roles``.  Returns the
    proposal id.  Each step is the same transaction as ``proml consortium propose|vote|execute``
    and ``proml grant`` on the nodes.

    Example: ``admit([client], "Model", developer, ["developer"])``."""
    if not members:
        raise NodeError("admitting a domain needs at least one member node to propose it")
    needed = show(members[0], lifecycle)["votes_needed"]
    pid = propose(members[0], lifecycle, "add_domain", newcomer.domain, newcomer.address, roles)
    count = 1
    for m in members[1:]:
        if count >= needed:
            break
        count = vote(m, lifecycle, pid)
    execute(members[0], lifecycle, pid)
    for role in roles:
        newcomer.grant(lifecycle, role, newcomer.address, newcomer.domain)
    return pid


def show(node: ProMLNode, lifecycle: str) -> dict[str, Any]:
    """The members (domain, admin, roles it may hold), the quorum and this node's seat."""
    client = _governed(node, lifecycle)
    snap = client.snapshot()
    assert client.ir.consortium is not None
    members = [
        {"domain": domain_name(d), "admin": admin,
         "roles": [r.name for r in client.ir.roles if allowed & r.bit]}
        for d, (allowed, admin) in snap.members.items()
    ]
    return {
        "lifecycle": lifecycle, "quorum": client.ir.consortium.quorum,
        "votes_needed": min(client.ir.consortium.quorum, len(members)), "epoch": snap.epoch,
        "members": members,
        "this_node_is_admin_of": next(
            (m["domain"] for m in members if m["admin"] == node.address), None),
    }
