"""Gas per lifecycle operation from real receipts, beside the gas-schedule lower bound, for each
contract layout (registry, factory, clone), and gas against history length.

The lower bound is what *any* contract of the layout must pay for the same effects under the
fork's schedule (Prague, see :data:`SCHEDULE`):

* the intrinsic 21,000 and the calldata actually sent (with the EIP-7623 floor);
* the storage writes the operation must make (first write of a slot 20,000 + 2,100 cold access;
  update 2,900 + 2,100; clearing refunds 4,800, capped at a fifth of the gas used);
* one cold read (2,100) of the sender's role slot for authorisation, plus any other cold reads
  the operation needs (approvers' roles, separation-of-duty memory; the clone's id, which lives
  in the proxy's storage);
* in the per-artefact layouts, one cold account access (2,600, EIP-2929) per account beyond the
  transaction's target that the layout forces the operation to reach: the factory (roles live
  there) from an artefact contract, and, behind a clone, also the implementation it delegates to;
* the logs actually emitted (375 + 375 per topic + 8 per data byte);
* a contract creation, in a deployment transaction or inside a registration (factory and
  clone): 32,000, 2 gas per init-code word (EIP-3860), 200 gas per byte of deployed runtime code,
  and, for a creation inside a contract, the init code's trip through memory (copy 3 gas per word
  and the memory it occupies, 3 gas per word + words^2 / 512) and, for CREATE2, hashing it (6 gas
  per word).  Per-artefact layouts use CREATE2 salted with the id, so that an artefact's address
  is known before its registration is mined: the hashing is part of that effect.  Not counted:
  the cold access to the blueprint the factory copies the init code from (Solidity's ``new``
  keeps init code in the factory's own code instead), and warm accesses (100).

The difference to the measured gas is the contract's own overhead (dispatch, ABI decoding,
memory, checks, call overhead to the factory).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode

from proml_sim.chain import KeyRing, PyEVMBackend
from proml_sim.chain.base import Receipt
from proml_sim.chain.client import (
    LAYOUTS,
    CompiledLayout,
    LifecycleClient,
    PendingOp,
    as_layout,
    blueprint_deploy_code,
    compile_layout,
)
from proml_sim.compiler import CompiledContract, compile_artefact
from proml_sim.errors import LifecycleError, UsageError
from proml_sim.ir.model import TransitionIR
from proml_sim.lifecycles import PAPER_LIFECYCLES, Model

#: Prior transitions before the measured operation, for :func:`measure_history_gas`.
HISTORY_LENGTHS = (1, 10, 100, 1000)


@dataclass(frozen=True)
class GasSchedule:
    """Per-fork gas constants (Prague)."""

    tx_base: int = 21_000
    create: int = 32_000
    calldata_zero: int = 4
    calldata_nonzero: int = 16
    floor_per_token: int = 10  # EIP-7623
    initcode_word: int = 2  # EIP-3860
    keccak_word: int = 6  # CREATE2 hashes the init code
    copy_word: int = 3
    memory_word: int = 3
    memory_quad_divisor: int = 512
    code_deposit_byte: int = 200
    cold_account: int = 2_600  # EIP-2929
    cold_sload: int = 2_100
    sstore_set: int = 20_000  # 0 -> x, plus cold access
    sstore_reset: int = 2_900  # x -> y, plus cold access
    clear_refund: int = 4_800  # x -> 0 (EIP-3529)
    refund_quotient: int = 5
    log: int = 375
    log_topic: int = 375
    log_byte: int = 8


SCHEDULE = GasSchedule()


@dataclass(frozen=True)
class Creation:
    """A contract created by a contract during a transaction (a factory's registration)."""

    initcode_bytes: int
    runtime_bytes: int
    salted: bool = True  # CREATE2


def creation_gas(c: Creation, s: GasSchedule = SCHEDULE) -> int:
    """The schedule's minimum for creating ``c`` from a contract (see module docstring)."""
    words = -(-c.initcode_bytes // 32)
    per_word = s.initcode_word + s.copy_word + s.memory_word + (s.keccak_word if c.salted else 0)
    return (
        s.create + per_word * words + words * words // s.memory_quad_divisor
        + s.code_deposit_byte * c.runtime_bytes
    )


def calldata_gas(data: bytes, s: GasSchedule = SCHEDULE) -> tuple[int, int]:
    """(standard calldata gas, EIP-7623 token count)."""
    zeros = data.count(0)
    nonzero = len(data) - zeros
    return zeros * s.calldata_zero + nonzero * s.calldata_nonzero, zeros + 4 * nonzero


def lower_bound(
    receipt: Receipt,
    data: bytes,
    *,
    new_slots: int,
    updated_slots: int,
    auth_reads: int = 1,
    cleared_slots: int = 0,
    create_runtime_bytes: int | None = None,
    accounts: int = 0,
    creations: Sequence[Creation] = (),
    s: GasSchedule = SCHEDULE,
) -> int:
    """The schedule's minimum for a transaction with these effects (see module docstring).

    ``auth_reads``: cold reads (authorisation and others); ``accounts``: cold accounts reached
    beyond the target; ``create_runtime_bytes``: the transaction is a deployment of that much
    runtime code (``data`` is its init code); ``creations``: contracts created from inside.
    """
    standard, tokens = calldata_gas(data, s)
    execution = (
        new_slots * (s.sstore_set + s.cold_sload)
        + updated_slots * (s.sstore_reset + s.cold_sload)
        + cleared_slots * (s.sstore_reset + s.cold_sload)
        + auth_reads * s.cold_sload
        + accounts * s.cold_account
        + sum(creation_gas(c, s) for c in creations)
        + sum(s.log + s.log_topic * len(lg.topics) + s.log_byte * len(lg.data)
              for lg in receipt.logs)
    )
    if create_runtime_bytes is not None:
        words = -(-len(data) // 32)
        execution += s.create + s.initcode_word * words + s.code_deposit_byte * create_runtime_bytes
    total = s.tx_base + standard + execution
    # clearing a slot refunds 4,800, capped at a fifth of the gas used (EIP-3529)
    total -= min(cleared_slots * s.clear_refund, total // s.refund_quotient)
    return max(total, s.tx_base + s.floor_per_token * tokens)


#: What an operation on an artefact must reach beyond its target in each layout:
#: (cold accounts, cold storage reads).  Factory: the factory (roles).  Clone: the
#: implementation (delegatecall) and the factory, and the id in the proxy's storage.
LAYOUT_REACH = {"registry": (0, 0), "factory": (1, 0), "clone": (2, 1)}


def _mined(client: LifecycleClient, op: PendingOp) -> tuple[Receipt, Any]:
    client.backend.produce_block()
    receipt = client.backend.receipt(op.tx_hash)
    assert receipt is not None
    try:
        return receipt, client.result(op)
    except LifecycleError as exc:
        return receipt, exc


def _row(lifecycle: str, operation: str, receipt: Receipt, bound: int, note: str,
         layout: str = "registry") -> dict[str, Any]:
    return {
        "layout": layout, "lifecycle": lifecycle, "operation": operation,
        "gas": receipt.gas_used, "lower_bound": bound,
        "overhead": round(receipt.gas_used / bound, 2),
        "status": "ok" if receipt.status else "reverted", "note": note,
    }


def _deploy_receipts(backend: PyEVMBackend, n_blocks: int) -> list[Receipt]:
    """Receipts of the contract creations in the last ``n_blocks`` blocks, oldest first."""
    head = backend.head().number
    out = []
    for number in range(head - n_blocks + 1, head + 1):
        for h in backend.block(number).tx_hashes:
            r = backend.receipt(h)
            if r is not None and r.contract_address is not None:
                out.append(r)
    return out


def measure_lifecycle_gas(
    compiled: CompiledContract | CompiledLayout, seed: int = 0, *, layout: str | None = None
) -> list[dict[str, Any]]:
    """Drive one paper lifecycle in one contract layout and return a row per operation kind.

    ``layout`` defaults to the layout ``compiled`` was generated for (the registry for a plain
    :func:`~proml_sim.compiler.compile_artefact`).
    """
    bundle = as_layout(compiled, layout)
    layout = bundle.layout
    ir = bundle.ir
    keys = KeyRing.from_seed(f"gas-{seed}", 8)
    a = keys.addresses
    backend = PyEVMBackend(funded=a)
    dom = [bytes([i + 1]) * 32 for i in range(3)]
    admin = keys.signer(a[0])
    #: who grants roles in each domain: the one admin (single-admin design), or each member
    #: domain's own admin (a consortium: the deployer founds dom[0]; a[6], a[7] run the others)
    governed = ir.consortium is not None
    granter = {dom[0]: admin, dom[1]: keys.signer(a[6] if governed else a[0]),
               dom[2]: keys.signer(a[7] if governed else a[0])}
    # deployment, measured from its receipt(s)
    client = LifecycleClient.deploy(backend, bundle, admin, dom[0])
    rows: list[dict[str, Any]] = []
    if layout == "registry":
        (deploy_receipt,) = _deploy_receipts(backend, 1)
        init = bundle.main.bytecode + encode(["bytes32"], [dom[0]])
        runtime = len(bundle.main.runtime_bytecode)
        rows.append(_row(ir.name, "deployment", deploy_receipt,
                         lower_bound(deploy_receipt, init, new_slots=2, updated_slots=0,
                                     auth_reads=0, create_runtime_bytes=runtime),
                         f"{runtime} bytes runtime", layout))
    else:
        template_receipt, factory_receipt = _deploy_receipts(backend, 2)
        assert bundle.artefact is not None
        if layout == "clone":  # the implementation is told its factory's address
            template_init = bundle.artefact.bytecode + encode(["address"], [client.address])
            what = "clone implementation"
        else:
            template_init = blueprint_deploy_code(bundle.artefact.bytecode)
            what = "ERC-5202 blueprint of the artefact contract"
        factory_init = bundle.main.bytecode + encode(["bytes32", "address"],
                                                     [dom[0], client.template])
        for op_name, receipt, init, slots, note in (
            ("deployment_template", template_receipt, template_init, 0, what),
            ("deployment", factory_receipt, factory_init, 2, "factory"),
        ):
            code = backend.code(receipt.contract_address or "")
            rows.append(_row(ir.name, op_name, receipt,
                             lower_bound(receipt, init, new_slots=slots, updated_slots=0,
                                         auth_reads=0, create_runtime_bytes=len(code)),
                             f"{note}: {len(code)} bytes runtime", layout))
    client.automine = False
    if governed:  # set-up (not measured): dom[1] and dom[2] join, allowed every role
        every = sum(r.bit for r in ir.roles if r.name != "admin")
        for d in (dom[1], dom[2]):
            pid = _mined(client, client.propose(admin, "add_domain", d, granter[d].address,
                                                every))[1]
            if d == dom[2]:
                _mined(client, client.vote(granter[dom[1]], pid))
            _mined(client, client.execute(admin, pid))
    digest, locator = b"\x5a" * 32, "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
    reach_accounts, reach_reads = LAYOUT_REACH[layout]

    def run(op_name: str, op: PendingOp, note: str, *, new_slots: int, updated_slots: int,
            auth_reads: int = 1, cleared_slots: int = 0, on_artefact: bool = True) -> Any:
        receipt, result = _mined(client, op)
        accounts = reach_accounts if on_artefact else 0
        # a consortium's guards also read the sender's domain and what that domain may hold
        # (not counted for a revoke: its refund for the cleared slot caps what the bound can say)
        reads = (reach_reads if on_artefact else 0) + (2 if governed and not cleared_slots
                                                       else 0)
        bound = lower_bound(receipt, op.data, new_slots=new_slots, updated_slots=updated_slots,
                            auth_reads=auth_reads + reads, cleared_slots=cleared_slots,
                            accounts=accounts)
        rows.append(_row(ir.name, op_name, receipt, bound, note, layout))
        return result

    def register(signer: Any, salt: bytes, *args: Any, note: str) -> bytes:
        op = client.register(signer, salt, *args)
        receipt, aid = _mined(client, op)
        if layout == "registry":
            bound = lower_bound(receipt, op.data, new_slots=1, updated_slots=0)
        else:
            # the factory's map slot, the new contract's slots (record; the clone's id too),
            # the creation, and (clone) the implementation reached to initialise the proxy
            code = backend.code(client.artefact_address(aid))
            assert bundle.artefact is not None
            initcode = (len(bundle.artefact.bytecode) + 32 if layout == "factory"
                        else len(client._initcode))
            bound = lower_bound(
                receipt, op.data, new_slots=2 if layout == "factory" else 3, updated_slots=0,
                accounts=1 if layout == "clone" else 0,
                creations=[Creation(initcode, len(code))],
            )
            note += f"; creates {len(code)} bytes of code"
        rows.append(_row(ir.name, "registration", receipt, bound, note, layout))
        return aid  # type: ignore[no-any-return]

    if {"dataset_admin", "labeller"} <= {r.name for r in ir.roles}:  # Dataset, either design
        da, lab, outsider = a[1], a[2], a[3]
        _mined(client, client.grant(granter[dom[1]], "dataset_admin", da, dom[1]))
        # the labeller is hired: by the dataset admin (the role's admin), or, in a consortium,
        # enrolled by its own domain's admin
        hirer = granter[dom[2]] if governed else keys.signer(da)
        run("grant_role", client.grant(hirer, "labeller", lab, dom[2]),
            "labeller's domain admin enrols it" if governed else "dataset admin grants labeller",
            new_slots=2, updated_slots=0, on_artefact=False)
        aid = register(keys.signer(da), b"\x01" * 32, digest, locator,
                       note="register with digest + locator")
        run("first_transition", client.fire(keys.signer(lab), "label", aid, digest, locator,
                                            [aid]),
            "label (SoD memory written)", new_slots=1, updated_slots=1)
        run("later_transition", client.fire(keys.signer(lab), "label", aid, digest, locator,
                                            [aid]),
            "relabel (self loop), same labeller", new_slots=0, updated_slots=1)
        run("later_transition_sod", client.fire(keys.signer(da), "review", aid),
            "review: SoD check, no evidence", new_slots=0, updated_slots=1, auth_reads=2)
        run("rejected_attempt", client.fire(keys.signer(outsider), "release", aid, digest),
            "RoleNotAllowed: reverted, still paid", new_slots=0, updated_slots=0, auth_reads=1)
        run("revoke_role", client.revoke(hirer, "labeller", lab),
            "its domain admin revokes labeller" if governed else "dataset admin revokes labeller",
            new_slots=0, updated_slots=0, cleared_slots=1, on_artefact=False)
    else:
        op_, dev, v1, v2, outsider = a[1], a[2], a[3], a[4], a[5]
        for who, role, d in ((op_, "operator", dom[0]), (dev, "developer", dom[0]),
                             (v1, "verifier", dom[1])):
            _mined(client, client.grant(granter[d], role, who, d))
        run("grant_role", client.grant(granter[dom[2]], "verifier", v2, dom[2]),
            "domain admin enrols verifier" if governed else "admin grants verifier",
            new_slots=2, updated_slots=0, on_artefact=False)
        aid = register(keys.signer(op_), b"\x02" * 32, note="register (no evidence needed)")
        run("first_transition", client.fire(keys.signer(dev), "train", aid, digest, locator,
                                            [b"\x11" * 32]),
            "train: digest, locator, 1 input", new_slots=1, updated_slots=1)
        run("later_transition", client.fire(keys.signer(dev), "train", aid, digest, locator,
                                            [b"\x11" * 32]),
            "retrain (self loop), same developer", new_slots=0, updated_slots=1)
        run("approval", client.fire(keys.signer(v1), "verify", aid, digest),
            "1st of 2 verifier approvals (pending)", new_slots=2, updated_slots=0, auth_reads=2)
        run("approval_firing", client.fire(keys.signer(v2), "verify", aid, digest),
            "2nd approval, other domain: fires", new_slots=1, updated_slots=2, auth_reads=3)
        run("rejected_attempt", client.fire(keys.signer(outsider), "accept", aid),
            "RoleNotAllowed: reverted, still paid", new_slots=0, updated_slots=0, auth_reads=1)
        run("revoke_role", client.revoke(granter[dom[2]], "verifier", v2),
            "domain admin revokes verifier" if governed else "admin revokes verifier",
            new_slots=0, updated_slots=0, cleared_slots=1, on_artefact=False)
    return rows


def measure_paper_gas(
    seed: int = 0, layouts: Iterable[str] = ("registry",),
    lifecycles: Iterable[type[Any]] = PAPER_LIFECYCLES,
) -> list[dict[str, Any]]:
    """Rows of :func:`measure_lifecycle_gas` for the paper lifecycles (the consortium
    ``Dataset``/``Model``; pass ``lifecycles=SINGLE_ADMIN_LIFECYCLES`` for the single-admin
    design, or both) in each layout."""
    rows = []
    for layout in layouts:
        for cls in lifecycles:
            compiled: Any = (compile_artefact(cls) if layout == "registry"
                             else compile_layout(cls, layout))
            rows += measure_lifecycle_gas(compiled, seed)
    return rows


def _path(ir: Any, goal: TransitionIR) -> list[TransitionIR] | None:
    """The shortest sequence of transitions from the initial state to a source of ``goal``
    (None: no source of it is reachable)."""
    start = ir.initial.name
    back: dict[str, tuple[str, TransitionIR] | None] = {start: None}
    queue = [start]
    for state in queue:
        if state in goal.sources:
            path: list[TransitionIR] = []
            while (prev := back[state]) is not None:
                state, t = prev
                path.append(t)
            return path[::-1]
        for t in ir.transitions:
            if state in t.sources and t.target not in back:
                back[t.target] = (state, t)
                queue.append(t.target)
    return None


def measure_walk_gas(cls: type[Any], seed: int = 0, layout: str = "registry"
                     ) -> list[dict[str, Any]]:
    """Gas of any lifecycle's operations in one contract ``layout``, driven from its IR alone:
    the
    deployment, a role grant, a registration, each transition reachable from the initial
    state (fired on a fresh artefact after the shortest path to one of its sources; a k-of-n
    step as its first approval and the k-th, which fires), a call refused for want of the
    role, and a revocation.  Each actor is a role holder of its own trust domain, chosen so
    that separation of duty (by account and by domain) holds; evidence, where a step takes
    it, is a digest, a locator and one input, as :func:`measure_lifecycle_gas` sends them.
    The gas-schedule lower bound needs each operation's storage effects, which only the
    paper's lifecycles state, so ``lower_bound`` is None here.

    Example: ``measure_walk_gas(Model)``'s ``train`` row has the gas of
    :func:`measure_paper_gas`'s ``first_transition`` row (the same call on the same state)."""
    from proml_sim.ir import build_ir

    if layout not in LAYOUTS:
        raise UsageError(f"unknown contract layout {layout!r}; choose one of {LAYOUTS}")
    ir = build_ir(cls)
    compiled: Any = compile_artefact(cls) if layout == "registry" else compile_layout(cls,
                                                                                   layout)
    governed = ir.consortium is not None
    # the admin role too where a step (or registration) is the admin's: each domain then has
    # a holder of it
    roles = [r for r in ir.roles if r.name != "admin" or "admin" in ir.register_by
             or any("admin" in t.by for t in ir.transitions)]
    # enough trust domains for the largest k plus the actors separation of duty excludes
    n_dom = max((t.approvals for t in ir.transitions), default=1) + 2 + max(
        (len(t.separate_from) + len(t.separate_domain_from) for t in ir.transitions),
        default=0)
    # keys: the deployer, an outsider, each domain's admin, a holder of each role per domain
    keys = KeyRing.from_seed(f"gas-walk-{seed}", 2 + n_dom * (1 + len(roles)))
    a = keys.addresses
    backend = PyEVMBackend(funded=a)
    deployer, outsider = keys.signer(a[0]), a[1]
    founder = b"founder".ljust(32, b"\0")
    doms = [f"domain-{i}".encode().ljust(32, b"\0") for i in range(n_dom)]
    admin_of = {d: a[2 + i] for i, d in enumerate(doms)}
    holder = {(r.name, d): a[2 + n_dom * (1 + j) + i]
              for j, r in enumerate(roles) for i, d in enumerate(doms)}
    domain_of = {acct: d for (_, d), acct in holder.items()}
    domain_of[a[0]] = founder
    client = LifecycleClient.deploy(backend, compiled, deployer, founder)
    rows: list[dict[str, Any]] = []
    made = _deploy_receipts(backend, 1 if layout == "registry" else 2)
    for op_name, receipt in zip(("deployment_template", "deployment")[-len(made):], made,
                                strict=True):
        size = len(backend.code(receipt.contract_address or ""))
        rows.append(_walk_row(ir.name, op_name, receipt, f"{size} bytes runtime", layout))
    client.automine = False

    def done(op_name: str, op: PendingOp, note: str = "", *, measured: bool = True) -> Any:
        receipt, result = _mined(client, op)
        refused = isinstance(result, LifecycleError)
        if op_name == "rejected_attempt":
            if not refused:
                raise UsageError(f"{ir.name}: a call by an account without a role went "
                                 "through")
            note = f"{type(result).__name__}: reverted, still paid"
        if measured:
            rows.append(_walk_row(ir.name, op_name, receipt, note, layout))
        if refused and op_name != "rejected_attempt":
            raise UsageError(f"{ir.name}: driving {op_name} failed ({type(result).__name__}: "
                             f"{result}); the walk could not satisfy this lifecycle's rules")
        return result

    if governed:  # each domain joins, allowed every role, by the members' votes
        assert ir.consortium is not None
        every = sum(r.bit for r in roles)
        members = [founder]
        admins = {founder: deployer}
        for d in doms:
            pid = done("gov_propose", client.propose(deployer, "add_domain", d, admin_of[d],
                                                     every), measured=False)
            for m in members[1:min(ir.consortium.quorum, len(members))]:
                done("gov_vote", client.vote(admins[m], pid), measured=False)
            done("gov_execute", client.execute(deployer, pid), measured=False)
            members.append(d)
            admins[d] = keys.signer(admin_of[d])
    depth = {r.name: 0 for r in ir.roles}
    for _ in ir.roles:  # a role's administrator is granted before it (single-admin design)
        for r in ir.roles:
            if r.admin != r.name:
                depth[r.name] = depth[r.admin] + 1
    first = True
    for r in sorted(roles, key=lambda r: depth[r.name]):
        for d in doms:
            if governed:
                granter = keys.signer(admin_of[d])
            else:
                granter = deployer if r.admin == "admin" else keys.signer(holder[(r.admin, d)])
            done("grant_role", client.grant(granter, r.name, holder[(r.name, d)], d),
                 "a domain's admin enrols a role holder" if governed else
                 f"the holder of {r.admin} grants {r.name}", measured=first)
            first = False

    def holders(names: tuple[str, ...]) -> list[str]:
        """Accounts holding one of ``names``, one per domain in domain order."""
        out = []
        for d in doms:
            out += [holder[(n, d)] for n in names if (n, d) in holder][:1]
        return out

    digest, locator, inputs = b"\x5a" * 32, ("ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuy"
                                             "lqabf3oclgtqy55fbzdi"), [b"\x11" * 32]
    registrant = (holders(ir.register_by) or [a[0]])[0]  # anyone may: the deployer
    evidence = (digest, locator, inputs)
    salts = iter(range(1, 10**6))

    def register(measured: bool) -> bytes:
        salt = next(salts).to_bytes(32, "big")
        note = "with digest + locator" if ir.register_evidence else "no evidence"
        aid: bytes = done("registration", client.register(
            keys.signer(registrant), salt, *(evidence[:2] if ir.register_evidence else ())),
            note, measured=measured)
        return aid

    def fire(aid: bytes, t: TransitionIR, acted: dict[str, list[str]], measured: bool) -> None:
        """``t`` on ``aid`` by k actors whom separation of duty allows (``acted``: who did each
        step so far)."""
        not_acct = {x for s in t.separate_from for x in acted.get(s, [])}
        not_dom = {domain_of[x] for s in t.separate_domain_from for x in acted.get(s, [])}
        fit = [x for x in holders(t.by) if x not in not_acct and domain_of[x] not in not_dom]
        if len(fit) < t.approvals:
            raise UsageError(f"{ir.name}.{t.name}: {len(fit)} eligible actors for "
                             f"{t.approvals} approvals; the walk cannot satisfy its rules")
        ev = evidence if t.evidence else ()
        for i, who in enumerate(fit[:t.approvals]):
            name, note = t.name, "evidence: digest, locator, 1 input" if t.evidence else ""
            if t.approvals > 1:
                name = f"{t.name} ({i + 1}/{t.approvals})"
                note = ("approval, pending" if i + 1 < t.approvals else "last approval: fires") \
                    + (f", {t.count} counted" if t.count == "domains" else "")
            done(name, client.fire(keys.signer(who), t.name, aid, *ev), note,
                 measured=measured and (i == 0 or i + 1 == t.approvals))
        acted[t.name] = fit[:t.approvals]

    aid = register(True)
    skipped = []
    for t in ir.transitions:
        path = _path(ir, t)
        if path is None:
            skipped.append(t.name)
            continue
        aid = register(False)
        acted: dict[str, list[str]] = {}
        for step in path:
            fire(aid, step, acted, False)
        fire(aid, t, acted, True)
    t0 = ir.transitions[0] if ir.transitions else None
    if t0 is not None and (p := _path(ir, t0)) is not None:
        aid = register(False)
        acted = {}
        for step in p:
            fire(aid, step, acted, False)
        done("rejected_attempt", client.fire(keys.signer(outsider), t0.name, aid,
                                             *(evidence if t0.evidence else ())))
    r0 = max((r for r in roles if r.name != "admin"), key=lambda r: depth[r.name],
             default=None)
    if r0 is not None:
        revoker = (keys.signer(admin_of[doms[-1]]) if governed else deployer
                   if r0.admin == "admin" else keys.signer(holder[(r0.admin, doms[-1])]))
        done("revoke_role", client.revoke(revoker, r0.name, holder[(r0.name, doms[-1])]),
             f"revokes {r0.name}")
    for name in skipped:
        rows.append({"layout": layout, "lifecycle": ir.name, "operation": name, "gas": None,
                     "lower_bound": None, "overhead": None, "status": "unreachable",
                     "note": "no source state is reachable from the initial state"})
    return rows


def _walk_row(lifecycle: str, operation: str, receipt: Receipt, note: str, layout: str
              ) -> dict[str, Any]:
    return {**_row(lifecycle, operation, receipt, 1, note, layout), "lower_bound": None,
            "overhead": None}


def measure_governance_gas(
    seed: int = 0, layouts: Iterable[str] = ("registry",)
) -> list[dict[str, Any]]:
    """Gas of consortium governance (the paper's Model): a proposal, a vote, the execution of an
    add-domain proposal, and a grant into the sender's own domain, in each layout.  Governance
    lives in the registry or the factory, so the per-artefact layouts pay the same here.

    Lower bounds count the slots each call must write (the proposal's five fields and its vote
    list; the vote; the new member's five entries, the member count, the status and the epoch)
    and the cold reads its guards must make.
    """
    rows: list[dict[str, Any]] = []
    for layout in layouts:
        compiled: Any = (compile_artefact(Model) if layout == "registry"
                         else compile_layout(Model, layout))
        keys = KeyRing.from_seed(f"gas-gov-{seed}", 6)
        a = keys.addresses
        backend = PyEVMBackend(funded=a)
        dom = [bytes([i + 1]) * 32 for i in range(4)]
        client = LifecycleClient.deploy(backend, compiled, keys.signer(a[0]), dom[0])
        name = client.ir.name
        client.automine = False

        def run(op_name: str, op: PendingOp, note: str, *, new_slots: int, updated_slots: int,
                auth_reads: int, layout: str = layout, client: LifecycleClient = client,
                name: str = name) -> Any:
            receipt, result = _mined(client, op)
            bound = lower_bound(receipt, op.data, new_slots=new_slots,
                                updated_slots=updated_slots, auth_reads=auth_reads)
            rows.append(_row(name, op_name, receipt, bound, note, layout))
            return result

        # one member: the founder's proposal is its own quorum (bootstrap)
        _mined(client, client.execute(keys.signer(a[0]), _mined(
            client, client.propose(keys.signer(a[0]), "add_domain", dom[1], a[1], 0b11110))[1]))
        pid = run("gov_propose", client.propose(keys.signer(a[1]), "add_domain", dom[2], a[2],
                                                0b11110),
                  "add a domain (proposer's vote included)", new_slots=7, updated_slots=1,
                  auth_reads=6)
        run("gov_vote", client.vote(keys.signer(a[0]), pid), "2nd domain's vote: quorum",
            new_slots=1, updated_slots=1, auth_reads=5)
        run("gov_execute", client.execute(keys.signer(a[5]), pid),
            "execute add_domain (anyone may)", new_slots=5, updated_slots=3, auth_reads=6)
        run("grant_role", client.grant(keys.signer(a[2]), "verifier", a[3], dom[2]),
            "domain admin enrols its own verifier", new_slots=2, updated_slots=0, auth_reads=3)
    return rows


def measure_history_gas(
    layout: str = "registry", lengths: Iterable[int] = HISTORY_LENGTHS, seed: int = 0
) -> list[dict[str, Any]]:
    """Gas of the same operations after more and more history (``Model``, one layout).

    For each length n (ascending): ``scope="artefact"``: a ``train`` self loop (same developer,
    digest, locator and input) on an artefact that has had n transitions; ``scope="lifecycle"``:
    the registration and first transition of a fresh artefact in a lifecycle that has recorded
    ``prior_transitions`` (about n) transitions on other artefacts.  The history is built from
    the same transitions, many per block.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown contract layout {layout!r}; choose one of {LAYOUTS}")
    keys = KeyRing.from_seed(f"gas-history-{seed}", 3)
    _, op_a, dev_a = keys.addresses
    backend = PyEVMBackend(funded=keys.addresses)
    admin, op, dev = (keys.signer(x) for x in keys.addresses)
    compiled: Any = (compile_artefact(Model) if layout == "registry"
                     else compile_layout(Model, layout))
    # one trust domain founds the consortium and enrols both accounts (history is the point)
    dom = b"history".ljust(32, b"\0")
    client = LifecycleClient.deploy(backend, compiled, admin, dom)
    client.grant(admin, "operator", op_a, dom)
    client.grant(admin, "developer", dev_a, dom)
    digest, locator, inputs = b"\x5a" * 32, "s3://models/m/weights", [b"\x11" * 32]
    aid = client.register(op, b"\x01" * 32)
    client.automine = False

    def mined(op_: PendingOp) -> Receipt:
        backend.produce_block()
        receipt = backend.receipt(op_.tx_hash)
        assert receipt is not None and receipt.status, f"{op_.kind} failed while building history"
        return receipt

    first = client.fire(dev, "train", aid, digest, locator, inputs)
    mined(first)
    gas = int(backend.estimate_gas(dev_a, client.artefact_address(aid),
                                   first.data) * 1.25)  # same call every time
    done = 1  # transitions on the artefact
    lifecycle = 1  # transitions in the lifecycle
    rows: list[dict[str, Any]] = []
    for i, n in enumerate(sorted(set(lengths))):
        while done < n:
            batch = [client.fire(dev, "train", aid, digest, locator, inputs, gas=gas)
                     for _ in range(min(n - done, 500))]
            backend.produce_block()
            for op_ in batch[-1:]:
                receipt = backend.receipt(op_.tx_hash)
                assert receipt is not None and receipt.status
            done += len(batch)
            lifecycle += len(batch)
        r = mined(client.fire(dev, "train", aid, digest, locator, inputs))
        rows.append({"layout": layout, "scope": "artefact", "operation": "later_transition",
                     "history": n, "prior_transitions": done, "gas": r.gas_used})
        done += 1
        lifecycle += 1
        salt = bytes([0x40 + i % 0xB0]) * 32  # no zero bytes: same calldata cost every time
        reg = client.register(op, salt)
        r = mined(reg)
        fresh = client.result(reg)
        rows.append({"layout": layout, "scope": "lifecycle", "operation": "registration",
                     "history": n, "prior_transitions": lifecycle, "gas": r.gas_used})
        r = mined(client.fire(dev, "train", fresh, digest, locator, inputs))
        rows.append({"layout": layout, "scope": "lifecycle", "operation": "first_transition",
                     "history": n, "prior_transitions": lifecycle, "gas": r.gas_used})
        lifecycle += 1
    return rows


def history_spread(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per layout, ``"<scope>.<operation>"`` -> max - min gas over the history lengths."""
    groups: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        groups.setdefault((r["layout"], f"{r['scope']}.{r['operation']}"), []).append(r["gas"])
    out: dict[str, dict[str, int]] = {}
    for (layout, key), values in groups.items():
        out.setdefault(layout, {})[key] = max(values) - min(values)
    return out


def format_gas_table(rows: list[dict[str, Any]]) -> str:
    """A text table; a layout column appears when a row is not in the registry layout."""
    layouts = {r.get("layout", "registry") for r in rows}
    lay = layouts != {"registry"}  # the column shows when it says something
    w = max([9, *(len(r["lifecycle"]) for r in rows)])  # SingleAdminModel is wider
    head = (f"{'layout':<9} " if lay else "") + (
        f"{'lifecycle':<{w}} {'operation':<22} {'gas':>9} {'lower bound':>12} {'x':>5}  note"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            (f"{r.get('layout', 'registry'):<9} " if lay else "")
            + f"{r['lifecycle']:<{w}} {r['operation']:<22} {_num(r['gas'], ',', 9)} "
            f"{_num(r['lower_bound'], ',', 12)} {_num(r['overhead'], '.2f', 5)}  {r['note']}"
        )
    return "\n".join(lines)


def _num(v: float | None, fmt: str, width: int) -> str:
    """``v`` formatted, or ``-`` where there is none (a walk row's bound)."""
    return f"{'-':>{width}}" if v is None else f"{v:>{width}{fmt}}"
