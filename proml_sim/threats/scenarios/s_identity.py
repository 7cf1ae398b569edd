"""Spoofing of identities: S1 stolen approver key, S3 Sybil approver accounts, S5 tx.origin
confused deputy, S6 replayed approvals, S7 front-run registrations.

Each scenario runs against the centralised baseline (SQLite, its application enforcing the same
lifecycle rules) and against ProML on the simulated chain (``consortium-fast``, real engine).
Contrasts that need another contract (a lifecycle counting accounts, a planted ``tx.origin``
mutant, caller-chosen ids) are deployed beside the paper's contracts in the same world with
:func:`add_lifecycle`, so both run on the same chain under the same attack.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import random
import sqlite3
from pathlib import Path
from typing import Any

import simpy
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from proml_sim.chain import TxSender
from proml_sim.chain.abi import ContractABI
from proml_sim.chain.accounts import DEFAULT_TIP
from proml_sim.chain.client import REVERT_GAS, LifecycleClient, PendingOp
from proml_sim.chain.engines import make_backend
from proml_sim.codegen import generate_vyper
from proml_sim.compiler import CompiledContract, compile_artefact, compile_source
from proml_sim.dsl import Artefact, Role, State
from proml_sim.errors import EngineError, LifecycleError, TransactionFailed
from proml_sim.ir import Approved, Registered, build_ir
from proml_sim.lifecycles import Dataset, Model
from proml_sim.sim import World, digest_of, domain_id
from proml_sim.threats.baseline import CentralDB
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.monitor import Activity, ActivityMonitor, ChainReader, activities
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import (
    model_lifecycle,
    model_world,
    outcome_of,
    salt,
    small_world,
    threshold_of,
)
from proml_sim.threats.scenarios.r_repudiation import tx_fields, tx_signer, tx_with

MIN = 60.0
HOUR = 3600.0


# ---------------------------------------------------------------------------------------------
# helpers: extra contracts in a world, mutants, raw calls
# ---------------------------------------------------------------------------------------------
def add_lifecycle(w: World, key: str, compiled: CompiledContract,
                  grants: list[tuple[str, str]]) -> LifecycleClient:
    """Deploy another lifecycle registry in ``w`` (admin: the consortium admin), grant
    ``(participant, role)``, and make it usable as ``w.send(p, key, ...)``.  Call before any
    participant sends through the world."""
    assert w.admin is not None
    client: LifecycleClient = w.add_lifecycle(key, compiled, grants, deployer=w.admin)
    return client


def compile_mutant(lifecycle: Any, old: str, new: str) -> CompiledContract:
    """The lifecycle's generated registry with every ``old`` replaced by ``new`` (a checked
    text substitution: the site must exist and ``new`` must not be there already)."""
    ir = build_ir(lifecycle)
    src = generate_vyper(ir)
    if old not in src:
        raise RuntimeError(f"mutation site {old!r} not found in the generated {ir.name}; the "
                           "generator changed: update the mutant")
    if new in src:
        raise RuntimeError(f"{new!r} already occurs in the generated {ir.name}")
    mutated = src.replace(old, new)
    compiled = compile_source(mutated, ir.name)
    return dataclasses.replace(compiled, fingerprint=ir.fingerprint(), ir=ir)


class RawCalls:
    """A world client for any contract (or for contract creation): ``w.send(p, key, "call",
    fn, *args)`` and ``w.send(p, key, "create", initcode)``; ``tip`` per client."""

    def __init__(self, world: World, address: str | None, abi: Any = (), *,
                 tip: int = DEFAULT_TIP) -> None:
        self.world = world
        self.address = address
        self.abi = ContractABI(list(abi))
        self.tip = tip

    def _send(self, signer: Any, to: str | None, data: bytes, kind: str) -> PendingOp:
        gw = self.world.gateway
        try:
            gas = gw.estimate_gas(signer.address, to, data)
        except (LifecycleError, TransactionFailed):
            gas = REVERT_GAS  # sent anyway: it reverts on chain, as an attacker's try would
        tx_hash = TxSender(gw, signer, tip=self.tip).send(to, data, gas=gas)
        return PendingOp(tx_hash, kind, lambda r: r, data)

    def call(self, signer: Any, fn: str, *args: Any) -> PendingOp:
        assert self.address is not None
        return self._send(signer, self.address, self.abi.encode_call(fn, list(args)), fn)

    def raw(self, signer: Any, data: bytes) -> PendingOp:
        assert self.address is not None
        return self._send(signer, self.address, data, "raw")

    def create(self, signer: Any, initcode: bytes) -> PendingOp:
        return self._send(signer, None, initcode, "create")

    def pay(self, signer: Any, to: str, wei: int) -> PendingOp:
        """A plain transfer of ``wei`` to ``to``."""
        tx_hash = TxSender(self.world.gateway, signer, tip=self.tip).send(to, b"", gas=21_000,
                                                                           value=wei)
        return PendingOp(tx_hash, "pay", lambda r: r, b"")

    def result(self, op: PendingOp) -> Any:
        """The receipt (no decoding: callers look at status, logs, contract address)."""
        receipt = self.world.gateway.receipt(op.tx_hash)
        if receipt is None:
            raise TransactionFailed(f"{op.kind} transaction is not mined yet")
        return receipt


def central_db(path: Path, lifecycles: dict[str, Any], admin: str) -> CentralDB:
    """The baseline's database without an fsync per commit (a simulated run needs no
    durability; with it, each commit costs ~10 ms and long runs take seconds)."""
    db = CentralDB(path, lifecycles, admin=admin)
    db.admin_sql("PRAGMA synchronous=OFF")
    return db


def _ok(tx: Any) -> bool:
    return tx.receipt is not None and bool(tx.receipt.status)


def _reason(w: World, tx: Any) -> str:
    return outcome_of(w, tx).partition(":")[2] or outcome_of(w, tx)


def _model(w: World, name: str, tag: str, key: str = "Model") -> Any:
    """(generator) register a model as op, train it as dev; returns its id."""
    tx = yield from w.send(w.participants["op"], key, "register", salt(tag))
    yield w.confirmed(tx, 1)
    mid = w.result(tx)
    tx = yield from w.send(w.participants["dev"], key, "fire", "train", mid,
                           digest_of("model", name, tag), "", [])
    yield w.confirmed(tx, 1)
    w.result(tx)
    return mid


# ---------------------------------------------------------------------------------------------
# S1: stolen approver keys, an activity monitor per identity, revocation
# ---------------------------------------------------------------------------------------------
S1_DEFAULTS: dict[str, Any] = {
    "approvers": 4, "stolen": 2, "targets": 3, "horizon_s": 3 * HOUR, "poll_s": 60.0,
    "reaction_mean_s": 900.0, "burst_max": 4, "burst_window_s": 1800.0,
    "honest_interval_s": 1200.0, "attack_after_s": [40 * MIN, 80 * MIN],
    "attack_gap_s": [60.0, 600.0], "approvals": 2, "count": "domains",
}


def _params(tm: ThreatModel, defaults: dict[str, Any]) -> dict[str, Any]:
    unknown = set(tm.parameters) - set(defaults)
    if unknown:
        raise ValueError(f"{tm.path}: unknown parameters {sorted(unknown)}; known: "
                         f"{sorted(defaults)}")
    return {**defaults, **tm.parameters}


@dataclasses.dataclass
class _S1Plan:
    """Every random draw of one S1 run, drawn up front so both systems face the same run."""

    groups: list[str]
    attack_at: dict[str, float]
    gaps: dict[str, list[float]]
    reaction: dict[str, float]  # account name -> admin reaction delay after its first alert
    honest_gaps: dict[str, list[float]]
    honest_pairs: dict[str, list[tuple[int, ...]]]  # the k verifiers of each honest model
    seq_second_after: float

    @classmethod
    def draw(cls, seed: int, p: dict[str, Any]) -> _S1Plan:
        rng = random.Random(f"S1-{seed}")
        n = int(p["approvers"])
        groups = [str(s) for s in range(n + 1)] + ["seq"]
        a0, a1 = p["attack_after_s"]
        g0, g1 = p["attack_gap_s"]
        k = int(p["targets"])
        per = 2 + int(p["horizon_s"] // max(p["honest_interval_s"], 1.0)) * 2
        return cls(
            groups=groups,
            attack_at={g: rng.uniform(a0, a1) for g in groups},
            gaps={g: [rng.uniform(g0, g1) for _ in range(k)] for g in groups},
            reaction={f"v{g}_{i}": rng.expovariate(1.0 / p["reaction_mean_s"])
                      for g in groups for i in range(n)},
            honest_gaps={g: [rng.expovariate(1.0 / p["honest_interval_s"]) for _ in range(per)]
                         for g in groups},
            honest_pairs={g: [tuple(rng.sample(range(n), min(n, int(p["approvals"]))))
                              for _ in range(per)] for g in groups},
            seq_second_after=rng.uniform(10 * MIN, 60 * MIN),
        )


def _stolen(group: str, n: int, k: int) -> list[str]:
    """Names of the stolen keys in a group: the first s verifiers (seq: the first k, k being
    the threshold: k - 1 approve, are revoked, then the k-th approves)."""
    s = k if group == "seq" else int(group)
    return [f"v{group}_{i}" for i in range(min(s, n))]


def _s1_outcome(p: dict[str, Any], plan: _S1Plan, res: dict[str, Any]) -> Outcome:
    """Headline, series and metrics from per-group results (same for both systems)."""
    n, k = int(p["approvers"]), int(p["approvals"])
    series: dict[str, list[tuple[float, float]]] = {
        "asr_by_keys": [], "detected_by_keys": [], "damage_models_by_keys": [],
        "damage_approvals_by_keys": []}
    for s in range(n + 1):
        r = res[str(s)]
        series["asr_by_keys"].append((float(s), float(r["verified"] > 0)))
        if s:
            series["detected_by_keys"].append((float(s), float(r["detected"])))
        series["damage_models_by_keys"].append((float(s), float(r["verified"])))
        series["damage_approvals_by_keys"].append((float(s), float(r["bogus_approvals"])))
    head = res[str(int(p["stolen"]))]
    alerts = res["alerts"]
    stolen_all = {a for g in plan.groups for a in _stolen(g, n, k)}
    true_alerts = sum(1 for a in alerts if a in stolen_all)
    metrics = {
        "damage": float(head["verified"]),
        "damage_approvals": float(head["bogus_approvals"]),
        "false_alerts": float(len(alerts) - true_alerts),
        "precision": true_alerts / len(alerts) if alerts else 1.0,
        "detection_rate_keys": (sum(res[g]["detected"] for g in plan.groups if g != "0")
                                / (len(plan.groups) - 1)),
    }
    if head["ttd"] is not None:
        metrics["ttd_monitor_s"] = head["ttd"]
    if head["ttr"] is not None:
        metrics["time_to_revoke_s"] = head["ttr"]
    if res["seq"]["revoked_counted"] is not None:
        metrics["revoked_approvals_counted"] = float(res["seq"]["revoked_counted"])
    succeeded = head["verified"] > 0
    # each target model is one attack attempt of the run (the seed's world is their cluster)
    return Outcome(succeeded, succeeded and head["detected"],
                   head["ttd"] if succeeded and head["detected"] else None,
                   metrics=metrics, series=series, attempts=int(p["targets"]),
                   successes=int(head["verified"]),
                   detections=int(head["verified"]) if head["detected"] else 0)


@scenario("S1", limit="k stolen keys from k domains, used together, meet a k-of-n threshold "
                     "before anyone can react; the monitor flags them and revocation bounds "
                     "the damage to what was approved before it")
class StolenApproverKey:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        p = _params(tm, S1_DEFAULTS)
        plan = _S1Plan.draw(seed, p)
        n = int(p["approvers"])
        env = simpy.Environment()
        db = central_db(workdir / "p.sqlite",
                        {"Model": model_lifecycle(int(p["approvals"]), str(p["count"]))},
                        admin="db-admin")
        # the attacker reads the threshold from the service's published rules
        k = db.irs["Model"].transition("verify").approvals
        db.grant("op", "Model", "operator", "client-co")
        db.grant("dev", "Model", "developer", "dev-co")
        for g in plan.groups:
            for i in range(n):
                db.grant(f"v{g}_{i}", "Model", "verifier", f"verif-{i}")
        # the operator runs the same monitor over its approvals table (given every domain's
        # evaluation log): like for like with ProML's
        mon = ActivityMonitor(burst_max=int(p["burst_max"]),
                              burst_window_s=float(p["burst_window_s"]))
        for g in plan.groups:
            for i in range(n):
                mon.watch(f"v{g}_{i}")
        alerted: dict[str, float] = {}
        revoked: dict[str, float] = {}
        first_attack: dict[str, float] = {}
        bogus: dict[str, set[tuple[str, str]]] = {g: set() for g in plan.groups}
        seq: dict[str, Any] = {"revoked_counted": None}
        counter = [0]

        def new_model(tag: str) -> str:
            counter[0] += 1
            aid = db.register("op", "Model", f"{tag}-{counter[0]}", at=env.now)
            db.fire("dev", "train", aid, digest_of("model", tag, counter[0]).hex(), at=env.now)
            return aid

        def approve(v: str, aid: str, d: str) -> str:
            try:
                db.fire(v, "verify", aid, d, at=env.now)
                return "ok"
            except LifecycleError as exc:
                return type(exc).__name__

        def honest(g: str):
            for j, gap in enumerate(plan.honest_gaps[g]):
                yield env.timeout(gap)
                aid = new_model(f"h{g}")
                ev = digest_of("eval", g, j).hex()
                for i in plan.honest_pairs[g][j]:
                    v = f"v{g}_{i}"
                    if v in revoked:
                        continue
                    mon.expect(v, aid.encode(), bytes.fromhex(ev))
                    approve(v, aid, ev)

        def attacker(g: str, targets: list[str]):
            keys = _stolen(g, n, k)
            dead: set[str] = set()
            yield env.timeout(plan.attack_at[g])
            first_attack[g] = env.now
            for j, aid in enumerate(targets):
                use = _keys_for(keys, dead, j, k)
                if not use:
                    return
                d = digest_of("bogus", g, j).hex()
                for v in use:
                    why = approve(v, aid, d)
                    if why == "ok":
                        bogus[g].add((v, aid))
                    elif why == "RoleNotAllowed":
                        dead.add(v)  # revoked
                yield env.timeout(plan.gaps[g][j])

        def sequential(target: str):
            *first, b = _stolen("seq", n, k)
            yield env.timeout(plan.attack_at["seq"])
            first_attack["seq"] = env.now
            d = digest_of("bogus", "seq").hex()
            for a in first:
                if approve(a, target, d) == "ok":
                    bogus["seq"].add((a, target))
            while (not set(first) <= set(revoked)
                   and env.now < p["horizon_s"] - plan.seq_second_after):
                yield env.timeout(p["poll_s"])
            if not set(first) <= set(revoked):
                return
            yield env.timeout(plan.seq_second_after)  # the second key is stolen later
            if approve(b, target, d) == "ok":
                bogus["seq"].add((b, target))
            state = db.admin_sql("SELECT state FROM artefacts WHERE id=?", (target,))[0][0]
            seq["revoked_counted"] = state == "verified"

        def revoke(v: str):
            yield env.timeout(plan.reaction[v])
            db.revoke(v, "Model", "verifier")
            revoked[v] = env.now

        def monitor():
            last = 0
            while True:
                yield env.timeout(p["poll_s"])
                rows = db.admin_sql("SELECT rowid, artefact, digest, approver FROM approvals "
                                    "WHERE rowid > ? ORDER BY rowid", (last,))
                for rowid, aid, d, who in rows:
                    last = rowid
                    act = Activity(who, "approve", aid.encode(), bytes.fromhex(d), env.now,
                                   "verify")
                    for al in mon.observe(act):
                        if al.account not in alerted:
                            alerted[al.account] = env.now
                            env.process(revoke(al.account))

        targets = {g: [new_model(f"t{g}") for _ in range(int(p["targets"]))]
                   for g in plan.groups}
        for g in plan.groups:
            env.process(honest(g))
            if g == "seq":
                env.process(sequential(targets[g][0]))
            elif g != "0":
                env.process(attacker(g, targets[g]))
        env.process(monitor())
        env.run(until=p["horizon_s"])
        res: dict[str, Any] = {"alerts": [a.account for a in mon.alerts]}
        for g in plan.groups:
            keys = _stolen(g, n, k)
            states = [db.admin_sql("SELECT state FROM artefacts WHERE id=?", (t,))[0][0]
                      for t in targets[g]]
            res[g] = _group_result(keys, alerted, revoked, first_attack.get(g),
                                   sum(s == "verified" for s in states), len(bogus[g]))
        res["seq"]["revoked_counted"] = seq["revoked_counted"]
        db.close()
        return _s1_outcome(p, plan, res)

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        p = _params(tm, S1_DEFAULTS)
        plan = _S1Plan.draw(seed, p)
        n = int(p["approvers"])
        regions = ("eu", "us", "asia")
        people = {"op": ("client-co", "eu"), "dev": ("dev-co", "us")}
        for g in plan.groups:
            for i in range(n):
                people[f"v{g}_{i}"] = (f"verif-{i}", regions[i % 3])
        grants = [("op", "Model", "operator"), ("dev", "Model", "developer")]
        grants += [(v, "Model", "verifier") for v in people if v.startswith("v")]
        w, ps = model_world(seed, people, grants,
                            model_lifecycle(int(p["approvals"]), str(p["count"])))
        model = w.clients["Model"]
        k, _ = threshold_of(model)  # the attacker reads the threshold from the contract
        name_of = {pp.address: name for name, pp in ps.items()}
        # each verifier domain watches its own accounts against its own evaluation log
        mon = ActivityMonitor(burst_max=int(p["burst_max"]),
                              burst_window_s=float(p["burst_window_s"]))
        for name, pp in ps.items():
            if name.startswith("v"):
                mon.watch(pp.address)
        reader = ChainReader(model, w.backend)
        alerted: dict[str, float] = {}
        revoked: dict[str, float] = {}
        first_attack: dict[str, float] = {}
        bogus: dict[str, set[tuple[str, bytes]]] = {g: set() for g in plan.groups}
        targets: dict[str, list[bytes]] = {}
        seq: dict[str, Any] = {"revoked_counted": None}

        def approve(v: str, mid: bytes, d: bytes):
            tx = yield from w.send(ps[v], "Model", "fire", "verify", mid, d, "", [])
            yield w.confirmed(tx, 1)
            return _ok(tx)

        def honest(g: str):
            for j, gap in enumerate(plan.honest_gaps[g]):
                yield w.env.timeout(gap)
                mid = yield from _model(w, "honest", f"h{g}-{j}")
                ev = digest_of("eval", g, j)
                for i in plan.honest_pairs[g][j]:
                    v = f"v{g}_{i}"
                    if v in revoked:
                        continue  # its domain enrols a new key (not modelled)
                    mon.expect(ps[v].address, mid, ev)
                    yield from approve(v, mid, ev)

        def setup_targets(g: str):
            targets[g] = []
            for j in range(int(p["targets"])):
                targets[g].append((yield from _model(w, "target", f"t{g}-{j}")))

        def attacker(g: str):
            keys = _stolen(g, n, k)
            dead: set[str] = set()
            yield w.env.timeout(plan.attack_at[g])
            first_attack[g] = w.env.now
            for j, mid in enumerate(targets[g]):
                use = _keys_for(keys, dead, j, k)
                if not use:
                    return
                d = digest_of("bogus", g, j)
                txs = []
                for v in use:  # the keys of one target in one block: nobody can react between
                    txs.append((v, (yield from w.send(ps[v], "Model", "fire", "verify", mid, d,
                                                      "", []))))
                for v, tx in txs:
                    yield w.confirmed(tx, 1)
                    if _ok(tx):
                        bogus[g].add((v, mid))
                    elif _reason(w, tx) == "RoleNotAllowed":
                        dead.add(v)  # revoked
                yield w.env.timeout(plan.gaps[g][j])

        def sequential():
            *first, b = _stolen("seq", n, k)
            yield w.env.timeout(plan.attack_at["seq"])
            mid = targets["seq"][0]
            first_attack["seq"] = w.env.now
            d = digest_of("bogus", "seq")
            for a in first:
                if (yield from approve(a, mid, d)):
                    bogus["seq"].add((a, mid))
            while (not set(first) <= set(revoked)
                   and w.env.now < p["horizon_s"] - plan.seq_second_after):
                yield w.env.timeout(p["poll_s"])
            if not set(first) <= set(revoked):
                return
            yield w.env.timeout(plan.seq_second_after)  # the second key is stolen later
            if (yield from approve(b, mid, d)):
                bogus["seq"].add((b, mid))
            seq["revoked_counted"] = model.state(mid) == "verified"

        def revoke(v: str):
            yield w.env.timeout(plan.reaction[v])
            tx = yield from w.send(w.domain_admin(ps[v], "Model"), "Model", "revoke", "verifier",
                                   ps[v].address)
            yield w.confirmed(tx, 1)
            if _ok(tx):
                revoked[v] = w.env.now

        def monitor():
            while True:
                yield w.env.timeout(p["poll_s"])
                for al in mon.observe_many(activities(reader.poll(), model.ir)):
                    v = name_of[al.account]
                    if v not in alerted:
                        alerted[v] = w.env.now
                        w.env.process(revoke(v))

        def start():
            for g in plan.groups:
                yield from setup_targets(g)
            for g in plan.groups:
                w.env.process(honest(g))
                if g == "seq":
                    w.env.process(sequential())
                elif g != "0":
                    w.env.process(attacker(g))
            w.env.process(monitor())

        w.env.process(start())
        w.run(p["horizon_s"], drain=False)
        w.finish()
        res: dict[str, Any] = {"alerts": [name_of[a.account] for a in mon.alerts]}
        for g in plan.groups:
            verified = sum(model.state(t) == "verified" for t in targets.get(g, []))
            res[g] = _group_result(_stolen(g, n, k), alerted, revoked, first_attack.get(g),
                                   verified, len(bogus[g]))
        res["seq"]["revoked_counted"] = seq["revoked_counted"]
        return _s1_outcome(p, plan, res)


def _keys_for(keys: list[str], dead: set[str], j: int, k: int) -> list[str]:
    """The stolen keys the attacker uses on its j-th target: k of the keys still alive, in
    rotation (spreading the activity over the keys)."""
    alive = [v for v in keys if v not in dead]
    if not alive:
        return []
    return [alive[(j * k + i) % len(alive)] for i in range(min(k, len(alive)))]


def _group_result(keys: list[str], alerted: dict[str, float], revoked: dict[str, float],
                  first: float | None, verified: int, bogus_approvals: int) -> dict[str, Any]:
    flagged = [alerted[k] for k in keys if k in alerted]
    ttd = (min(flagged) - first) if flagged and first is not None else None
    ttrs = [revoked[k] - alerted[k] for k in keys if k in alerted and k in revoked]
    return {"detected": bool(flagged), "ttd": ttd,
            "ttr": sum(ttrs) / len(ttrs) if ttrs else None, "verified": verified,
            "bogus_approvals": bogus_approvals, "revoked_counted": None}


# ---------------------------------------------------------------------------------------------
# S3: one person, several approver accounts (Sybil)
# ---------------------------------------------------------------------------------------------
class ModelByAccounts(Artefact):
    """The paper's Model with verification counted over *accounts* instead of trust domains
    (the contrast for S3; the paper's lifecycle counts domains)."""

    operator = Role()
    developer = Role()
    verifier = Role()
    auditor = Role()

    requested = State(initial=True, by=operator)
    trained = State()
    rejected = State()
    verified = State()
    delivered = State()
    audited = State(final=True)
    withdrawn = State(final=True)

    train = (requested | trained | rejected).to(trained, by=developer, evidence=True)
    verify = trained.to(verified, by=verifier, approvals=2, count="accounts", evidence=True,
                        separate_from=train)
    reject = trained.to(rejected, by=verifier, evidence=True, separate_from=train)
    accept = verified.to(delivered, by=operator)
    audit = delivered.to(audited, by=auditor, evidence=True)
    withdraw = (requested | trained | rejected | verified | delivered).to(withdrawn, by=operator)


S3_DEFAULTS: dict[str, Any] = {"sybils": 4}
S3_MODES = (("domains", "Model"), ("accounts", "ModelByAccounts"))


def _s3_outcome(asr: dict[tuple[str, int], bool], refused: int, a: int) -> Outcome:
    series = {f"asr_{mode}_by_accounts": [(float(k), float(asr[(mode, k)]))
                                           for k in range(1, a + 1)] for mode, _ in S3_MODES}
    return Outcome(asr[("domains", a)], False, None, series=series,
                   metrics={"asr_domain_counting": float(asr[("domains", a)]),
                            "asr_account_counting": float(asr[("accounts", a)]),
                            "sybil_approvals_refused": float(refused)})


@scenario("S3")
class Sybil:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        a = int(_params(tm, S3_DEFAULTS)["sybils"])
        db = central_db(workdir / "p.sqlite", {"Model": Model, "ModelByAccounts": ModelByAccounts},
                        admin="db-admin")
        asr: dict[tuple[str, int], bool] = {}
        refused = 0
        for _, lc in S3_MODES:
            db.grant("op", lc, "operator", "client-co")
            db.grant("dev", lc, "developer", "dev-co")
            for i in range(a):  # one person's accounts, all in her organisation's domain
                db.grant(f"mallory{i}", lc, "verifier", "verif-0")
        for mode, lc in S3_MODES:
            for k in range(1, a + 1):
                aid = db.register("op", lc, f"m{k}-{seed}")
                db.fire("dev", "train", aid, digest_of("model", k).hex())
                for i in range(k):
                    try:
                        db.fire(f"mallory{i}", "verify", aid, digest_of("bogus", k).hex())
                    except LifecycleError:
                        refused += mode == "domains" and k == a
                state = db.admin_sql("SELECT state FROM artefacts WHERE id=?", (aid,))[0][0]
                asr[(mode, k)] = state == "verified"
        db.close()
        return _s3_outcome(asr, refused, a)

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        a = int(_params(tm, S3_DEFAULTS)["sybils"])
        people = {"op": ("client-co", "eu"), "dev": ("dev-co", "us"),
                  **{f"mallory{i}": ("verif-0", "asia") for i in range(a)}}
        grants = [("op", "operator"), ("dev", "developer"),
                  *((f"mallory{i}", "verifier") for i in range(a))]
        w, ps = small_world(seed, people, [(n, "Model", r) for n, r in grants])
        # the contrast: the same lifecycle counting accounts, on the same chain
        add_lifecycle(w, "ModelByAccounts", compile_artefact(ModelByAccounts), grants)
        asr: dict[tuple[str, int], bool] = {}
        refused = [0]

        def attempt(mode: str, lc: str, k: int):
            mid = yield from _model(w, lc, f"m{k}-{mode}", lc)
            txs = []
            for i in range(k):  # her k accounts approve a bogus evaluation, same block
                txs.append((yield from w.send(ps[f"mallory{i}"], lc, "fire", "verify", mid,
                                              digest_of("bogus", k), "", [])))
            for tx in txs:
                yield w.confirmed(tx, 1)
                refused[0] += mode == "domains" and k == a and _reason(w, tx) == \
                    "AlreadyApproved"
            asr[(mode, k)] = w.clients[lc].state(mid) == "verified"

        def run():
            for mode, lc in S3_MODES:
                for k in range(1, a + 1):
                    yield from attempt(mode, lc, k)

        w.env.process(run())
        w.run(2 * HOUR, drain=False)
        w.finish()
        return _s3_outcome(asr, refused[0], a)


# ---------------------------------------------------------------------------------------------
# S5: an approver tricked into calling a malicious contract (tx.origin)
# ---------------------------------------------------------------------------------------------
RELAY_SOURCE = """# pragma version ~=0.4.3
# A "claim your reward" contract: whoever calls claim() unknowingly sends the planted call
# (here: an approval of a bogus evaluation) to the target, as this contract.
target: public(address)
payload: public(Bytes[1024])


@deploy
def __init__(target: address, payload: Bytes[1024]):
    self.target = target
    self.payload = payload


@external
def claim() -> bool:
    # the victim's transaction succeeds whatever the planted call does
    return raw_call(self.target, self.payload, revert_on_failure=False)
"""


def tx_origin_mutant() -> tuple[CompiledContract, str]:
    """The paper's Model contract whose transitions check the role of ``tx.origin`` instead of
    ``msg.sender``, and where it comes from: the mutation-testing module's ``b-tx-origin``
    when it is there, else the same edit made here (each transition's role assert only)."""
    try:
        mutants: Any = importlib.import_module("proml_sim.threats.mutants")
    except ImportError:
        mutants = None
    if mutants is not None:
        for m in mutants.mutants_for(Model):
            if not isinstance(m, tuple) and m.id == "b-tx-origin":
                return mutants.build_mutant(m, Model), "mutants.b-tx-origin"
    ir = build_ir(Model)
    src = generate_vyper(ir)
    lines = src.splitlines(keepends=True)
    hits = 0
    for i, line in enumerate(lines):
        if (line.startswith(("    assert self.roles[msg.sender] & ",  # single-admin design
                             "    assert self._eff(msg.sender) & "))  # consortium
                and "RoleNotAllowed: " in line
                and f"{ir.name}.register needs" not in line):
            lines[i] = line.replace("msg.sender", "tx.origin")
            hits += 1
    if hits != len(ir.transitions):
        raise RuntimeError(f"tx.origin mutant: found {hits} transition role checks in the "
                           f"generated {ir.name}, expected {len(ir.transitions)}")
    compiled = compile_source("".join(lines), ir.name)
    return dataclasses.replace(compiled, fingerprint=ir.fingerprint(), ir=ir), "local"


S5_DEFAULTS: dict[str, Any] = {"victims": 2}


def _relayed(receipt: Any, lifecycle: str) -> bool:
    """Did the lifecycle contract accept (log anything in) a relayed call?"""
    return receipt is not None and any(log.address == lifecycle for log in receipt.logs)


@scenario("S5", limit="the baseline's web application authenticates by an ambient session "
                     "(no CSRF token): a page the role holder visits acts as them")
class TxOrigin:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        p = _params(tm, S5_DEFAULTS)
        db = central_db(workdir / "p.sqlite", {"Model": Model}, admin="db-admin")
        db.grant("op", "Model", "operator", "client-co")
        db.grant("dev", "Model", "developer", "dev-co")
        victims = [f"v{i}" for i in range(int(p["victims"]))]
        for i, v in enumerate(victims):
            db.grant(v, "Model", "verifier", f"verif-{i}")
        aid = db.register("op", "Model", f"m-{seed}")
        db.fire("dev", "train", aid, digest_of("model", seed).hex())
        accepted = 0
        # the attacker's page posts requests with the visitor's session cookie (the browser
        # attaches it); only a per-request token the page cannot read would stop it
        for who, step, d in ([(v, "verify", digest_of("bogus-eval", seed)) for v in victims]
                             + [("dev", "train", digest_of("bogus-model", seed))]):
            with contextlib.suppress(LifecycleError):
                db.fire(who, step, aid, d.hex())
                accepted += 1
        state = db.admin_sql("SELECT state FROM artefacts WHERE id=?", (aid,))[0][0]
        db.close()
        return Outcome(accepted > 0, False, None,
                       metrics={"relayed_calls_accepted": float(accepted),
                                "bogus_verified": float(state == "verified")})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        p = _params(tm, S5_DEFAULTS)
        nv = int(p["victims"])
        people = {"op": ("client-co", "eu"), "dev": ("dev-co", "us"),
                  "mallory": ("attacker-co", "asia"),
                  **{f"v{i}": (f"verif-{i}", "eu") for i in range(nv)}}
        grants = [("op", "operator"), ("dev", "developer"),
                  *((f"v{i}", "verifier") for i in range(nv))]
        w, ps = small_world(seed, people, [(n, "Model", r) for n, r in grants])
        mutant, origin = tx_origin_mutant()
        add_lifecycle(w, "ModelTxOrigin", mutant, grants)
        relay = compile_source(RELAY_SOURCE, "Relay")
        w.sim_clients["deploy"] = RawCalls(w, None)
        res: dict[str, dict[str, float]] = {}

        def lure(key: str, mid: bytes, fn: str, digest: bytes, victims: list[str]):
            """Deploy a relay planting fn(mid, digest); each victim calls claim()."""
            client = w.clients[key]
            payload = client.contract_abi.encode_call(fn, [mid, digest, "", []])
            # constructor arguments follow the init code
            init = relay.bytecode + abi_encode(["address", "bytes"], [client.address, payload])
            tx = yield from w.send(ps["mallory"], "deploy", "create", init)
            yield w.confirmed(tx, 1)
            rkey = f"relay-{key}-{fn}"
            w.sim_clients[rkey] = RawCalls(w, w.result(tx).contract_address, relay.abi)
            claims = []
            for v in victims:
                claims.append((yield from w.send(ps[v], rkey, "call", "claim")))
            for c in claims:
                yield w.confirmed(c, 1)
            return sum(_relayed(c.receipt, client.address) for c in claims), sum(
                _ok(c) for c in claims)

        def attack(key: str):
            mid = yield from _model(w, key, f"m-{seed}", key)
            client = w.clients[key]
            verifiers = [f"v{i}" for i in range(nv)]
            # the verifiers are lured into approving a bogus evaluation...
            acc_v, ok_v = yield from lure(key, mid, "verify", digest_of("bogus-eval", seed),
                                          verifiers)
            verified = client.state(mid) == "verified"
            # ...and the developer into recording a bogus model version
            acc_t, ok_t = yield from lure(key, mid, "train", digest_of("bogus-model", seed),
                                          ["dev"])
            bogus = digest_of("bogus-model", seed)
            res[key] = {"accepted": float(acc_v + acc_t), "claims_ok": float(ok_v + ok_t),
                        "verified": float(verified),
                        "bogus_version": float(any(h.digest == bogus
                                                   for h in client.history(mid)))}

        def run():
            yield from attack("Model")
            yield from attack("ModelTxOrigin")

        w.env.process(run())
        w.run(HOUR, drain=False)
        w.finish()
        real, mut = res["Model"], res["ModelTxOrigin"]
        return Outcome(real["accepted"] > 0, False, None,
                       metrics={"relayed_calls_accepted": real["accepted"],
                                "asr_mutant": float(mut["accepted"] > 0),
                                "relayed_calls_accepted_mutant": mut["accepted"],
                                "bogus_version_mutant": mut["bogus_version"],
                                "bogus_verified_mutant": mut["verified"],
                                "victim_txs_succeeded": real["claims_ok"]},
                       series={"asr_by_contract": [(0.0, float(real["accepted"] > 0)),
                                                   (1.0, float(mut["accepted"] > 0))]},
                       note=f"tx.origin mutant: {origin}")


# ---------------------------------------------------------------------------------------------
# S6: replay an approval (same artefact, other artefact, other contract, other chain)
# ---------------------------------------------------------------------------------------------
#: why an engine refused a replayed transaction (substring of its error -> label for the notes)
REJECTIONS = (("already known", "a known transaction"), ("nonce", "a used nonce"),
              ("chain id", "another chain id"), ("cannot pay", "an unfunded signer"))
#: the replays tried against ProML (the baseline has no chain: other_chain does not apply)
REPLAYS = ("same_tx", "same_sender_again", "same_domain_account", "no_role_sender",
           "other_artefact", "other_contract", "other_chain", "stale_version")


def _s6_outcome(success: dict[str, bool], extra: dict[str, float] | None = None,
                note: str = "") -> Outcome:
    n = sum(success.values())
    metrics = {f"replay_{k}": float(v) for k, v in success.items()}
    metrics["successful_replays"] = float(n)
    metrics["replays_tried"] = float(len(success))
    metrics.update(extra or {})
    return Outcome(n > 0, False, None, metrics=metrics, note=note)


@scenario("S6", limit="the baseline authenticates requests with a bearer session token that "
                     "is not bound to the request's content or to one deployment")
class Replay:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        lcs = {"Model": Model}
        prod = central_db(workdir / "prod.sqlite", lcs, admin="db-admin")
        # another deployment accepting the same single sign-on (staging, a sister project)
        other = central_db(workdir / "other.sqlite", lcs, admin="db-admin")
        for db in (prod, other):
            db.grant("op", "Model", "operator", "client-co")
            db.grant("dev", "Model", "developer", "dev-co")
            db.grant("v1", "Model", "verifier", "verif-1")
        prod.grant("v1b", "Model", "verifier", "verif-1")
        prod.grant("v2", "Model", "verifier", "verif-2")

        def model(db: CentralDB, name: str) -> str:
            aid = db.register("op", "Model", f"{name}-{seed}")
            db.fire("dev", "train", aid, digest_of("model", name, seed).hex())
            return aid

        m1, m2, m1x = model(prod, "m1"), model(prod, "m2"), model(other, "m1")
        d = digest_of("eval", seed).hex()
        prod.fire("v1", "verify", m1, d)  # the captured request: token of v1 + body

        def tried(db: CentralDB, who: str, aid: str) -> bool:
            """Replay the body with ``who``'s token; did it add an approval?"""
            try:
                db.fire(who, "verify", aid, d)
                return True
            except LifecycleError:
                return False

        success = {
            "same_tx": tried(prod, "v1", m1),  # de-duplicated by (approver, version, digest)
            "same_sender_again": tried(prod, "v1", m1),
            "same_domain_account": tried(prod, "v1b", m1),
            "no_role_sender": tried(prod, "eve", m1),  # with eve's own session
            "other_artefact": tried(prod, "v1", m2),  # the token does not bind the body
            "other_contract": tried(other, "v1", m1x),  # nor the deployment
            # other_chain: not applicable (no chain; the other deployment is the nearest case)
        }
        prod.fire("dev", "train", m1, digest_of("model", "m1", "v2", seed).hex())
        # v1's approval of the old version must not add up with v2's on the new one
        with contextlib.suppress(LifecycleError):
            prod.fire("v2", "verify", m1, d)
        state = prod.admin_sql("SELECT state FROM artefacts WHERE id=?", (m1,))[0][0]
        success["stale_version"] = state == "verified"
        prod.close()
        other.close()
        return _s6_outcome(success)

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        people = {"op": ("client-co", "eu"), "dev": ("dev-co", "us"), "v1": ("verif-1", "eu"),
                  "v1b": ("verif-1", "eu"), "v2": ("verif-2", "asia"), "eve": ("eve-co", "asia")}
        grants = [("op", "operator"), ("dev", "developer"), ("v1", "verifier"),
                  ("v1b", "verifier"), ("v2", "verifier")]
        w, ps = small_world(seed, people, [(n, "Model", r) for n, r in grants])
        assert w.backend is not None and w.admin is not None
        w.sim_clients["pay"] = RawCalls(w, None)
        # another consortium's registry on the same chain, where v1 also verifies
        add_lifecycle(w, "ModelB", compile_artefact(Model),
                      [("op", "operator"), ("dev", "developer"), ("v1", "verifier")])
        # another chain (a staging network) with the same contracts at the same addresses
        founder = w.domain_admin(ps["op"], "Model")  # deployed both registries on chain A
        chain_c = make_backend("revm" if w.engine_name == "revm" else "pyevm",
                               funded=[*(w.domain_admin(ps[n]).address for n in ("op", "dev",
                                                                                 "v1")),
                                       ps["op"].address, ps["dev"].address, ps["v1"].address],
                               chain_id=w.backend.chain_id + 1)
        other: dict[str, LifecycleClient] = {}
        for cls in (Dataset, Model):  # same deployer, same nonces: same addresses
            other[cls.__name__] = LifecycleClient.deploy(
                chain_c, compile_artefact(cls), founder.signer, domain_id(founder.domain))
        mc = other["Model"]
        w.enrol(mc, grants[:3], founder)
        model, model_b = w.clients["Model"], w.clients["ModelB"]
        success: dict[str, bool] = {}
        facts: dict[str, Any] = {}

        def engine_accepts(backend: Any, raw: bytes) -> bool:
            try:
                backend.submit(raw)
                return True
            except EngineError as exc:
                why = str(exc)
                facts.setdefault("rejections", set()).add(next(
                    (label for key, label in REJECTIONS if key in why), why[:40]))
                return False

        def v1_approvals(client: Any, mid: bytes) -> int:
            return sum(1 for ev in client.events() if isinstance(ev, Approved)
                       and ev.id == mid and ev.approver == ps["v1"].address)

        def run():
            m1 = yield from _model(w, "m1", "m1")
            m2 = yield from _model(w, "m2", "m2")
            m1b = yield from _model(w, "m1", "m1", "ModelB")  # same registrant and salt: same id
            mc.register(ps["op"].signer, salt("m1"))
            mc.fire(ps["dev"].signer, "train", m1, digest_of("model", "m1", "m1"), "", [])
            d = digest_of("eval", seed)
            t = yield from w.send(ps["v1"], "Model", "fire", "verify", m1, d, "", [])
            yield w.confirmed(t, 1)
            assert _ok(t)
            f = tx_fields(t.raw)
            # preconditions that make the cross-chain replay sharp: only the chain id differs
            facts["sharp"] = (mc.address == model.address and m1b == m1 and mc.exists(m1)
                              and chain_c.nonce(ps["v1"].address) == f["nonce"])
            # 1. the signed transaction itself, re-broadcast
            success["same_tx"] = engine_accepts(w.backend, t.raw)
            # 2-4. the same approval calldata, signed anew by v1 (a wallet retry), by another
            # account of v1's domain, by an account without the role
            for kind, who in (("same_sender_again", "v1"), ("same_domain_account", "v1b"),
                              ("no_role_sender", "eve")):
                tx = yield from w.send(ps[who], "Model", "fire", "verify", m1, d, "", [])
                yield w.confirmed(tx, 1)
                success[kind] = _ok(tx)
            # 5-6. the signed transaction with another artefact / another contract: the
            # signature then recovers to some stranger, not v1
            data = model.transition_abi.encode_call("verify", [m2, d, "", []])
            alts = {"other_artefact": (tx_with(t.raw, data=data), model, m2),
                    "other_contract": (tx_with(t.raw, to=model_b.address), model_b, m1b)}
            strangers = {k: tx_signer(raw) for k, (raw, _, _) in alts.items()}
            facts["signers"] = set(strangers.values())
            for raw, _, _ in alts.values():
                engine_accepts(w.backend, raw)  # the stranger has no ether
            for k in alts:  # eve funds the strangers: now the altered transactions run...
                tx = yield from w.send(ps["eve"], "pay", "pay", strangers[k], 10**18)
                yield w.confirmed(tx, 1)
            for raw, _, _ in alts.values():
                engine_accepts(w.backend, raw)
            # 7. the signed transaction on the other chain
            ok = engine_accepts(chain_c, t.raw)
            if ok:
                chain_c.produce_block()
            success["other_chain"] = ok and v1_approvals(mc, m1) > 0
            # 8. the model is retrained: v1's approval of the old version must not count
            tx = yield from w.send(ps["dev"], "Model", "fire", "train", m1,
                                   digest_of("model", "m1", "retrained"), "", [])
            yield w.confirmed(tx, 1)
            tx = yield from w.send(ps["v2"], "Model", "fire", "verify", m1, d, "", [])
            yield w.confirmed(tx, 1)
            success["stale_version"] = model.state(m1) == "verified"
            facts["v1_counted"] = v1_approvals(model, m1)
            # (the world's blocks above carried the altered transactions accepted earlier)
            for k, (raw, client, mid) in alts.items():
                r = w.gateway.receipt(keccak(raw))
                facts[f"{k}_ran"] = r is not None
                # ...as the stranger, who holds no role: nothing counts for v1
                success[k] = v1_approvals(client, mid) > 0 or (r is not None and r.status)

        w.env.process(run())
        w.run(HOUR, drain=False)
        w.finish()
        assert facts.get("sharp"), "S6 set-up: the other chain must differ only by chain id"
        assert set(success) == set(REPLAYS)
        assert ps["v1"].address not in facts["signers"]
        note = ("refused by the engines: " + "; ".join(sorted(facts["rejections"]))
                if facts.get("rejections") else "")
        # the altered transactions, once their stranger signer was funded, ran as that stranger
        ran = float(facts["other_artefact_ran"]) + float(facts["other_contract_ran"])
        return _s6_outcome(success, {"altered_txs_ran_as_stranger": ran,
                                     "v1_approvals_counted": float(facts["v1_counted"])}, note)


# ---------------------------------------------------------------------------------------------
# S7: front-run a registration (claim squatting)
# ---------------------------------------------------------------------------------------------
S7_DEFAULTS: dict[str, Any] = {"names": 5, "commit_reveal_names": 3, "front_run_tip": 20}
#: the mutant's registration site: the id is the caller's salt instead of keccak(sender ++ salt)
SENDER_BOUND_ID = "_id: bytes32 = keccak256(concat(convert(msg.sender, bytes20), salt))"


def caller_chosen_id_mutant() -> CompiledContract:
    """The paper's Model contract with caller-chosen ids (``id = salt``): squattable."""
    return compile_mutant(Model, SENDER_BOUND_ID, "_id: bytes32 = salt")


def _bare_name_owners(client: Any, s: bytes) -> set[str]:
    """Registrants of the bare name (salt) ``s``: more than one makes the bare name
    ambiguous (a node refuses it and asks for name@registrant)."""
    return {ev.registrant for ev in client.events() if isinstance(ev, Registered)
            and ev.salt == s}


@scenario("S7", limit="an insider running the baseline database front-runs the victim's "
                     "registration by inserting the row first")
class FrontRun:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        p = _params(tm, S7_DEFAULTS)
        db = central_db(workdir / "p.sqlite", {"Model": Model}, admin="mallory")
        db.grant("op", "Model", "operator", "client-co")
        squatted = 0
        for i in range(int(p["names"])):
            name = f"model-{seed}-{i}"
            # the admin sees the request in the application's queue and inserts it first
            aid = f"Model:op:{name}"
            db.admin_sql("INSERT INTO artefacts VALUES (?, 'Model', ?, 'mallory', 'requested', "
                         "1, NULL)", (aid, name))
            try:
                db.register("op", "Model", name)
            except sqlite3.IntegrityError:
                squatted += 1
        db.close()
        n = int(p["names"])
        return Outcome(squatted > 0, False, None,
                       metrics={"squat_rate": squatted / n, "latency_cost_s": 0.0})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        p = _params(tm, S7_DEFAULTS)
        people = {"op": ("client-co", "eu"), "mallory": ("squat-co", "eu")}
        grants = [("op", "operator"), ("mallory", "operator")]  # an insider with the role
        w, ps = small_world(seed, people, [(n, "Model", r) for n, r in grants])
        add_lifecycle(w, "ModelSaltId", caller_chosen_id_mutant(), grants)
        for key in ("Model", "ModelSaltId"):
            w.sim_clients[f"squat-{key}"] = RawCalls(
                w, w.clients[key].address, tip=int(p["front_run_tip"]) * DEFAULT_TIP)
        res: dict[str, list[dict[str, Any]]] = {"Model": [], "ModelSaltId": []}
        commit_delays: list[float] = []
        seen: set[bytes] = set()

        def front_runner():
            # watches the mempool; copies every registration of the victim with a higher tip
            while True:
                yield w.env.timeout(0.5)
                for tx in list(w.pending.values()):
                    if (tx.hash in seen or tx.sender != ps["op"].address
                            or tx.meta.get("method") != "register"):
                        continue
                    seen.add(tx.hash)
                    key = tx.meta["lifecycle"]
                    yield from w.send(ps["mallory"], f"squat-{key}", "raw",
                                      tx_fields(tx.raw)["data"])

        def victim(key: str, i: int):
            s = salt(f"model-{i}")
            tx = yield from w.send(ps["op"], key, "register", s, digest_of("m", i), "", [])
            yield w.confirmed(tx, 1)
            row: dict[str, Any] = {"ok": _ok(tx), "latency": tx.confirmed[1] - tx.submitted}
            if row["ok"]:
                aid = w.result(tx)
                row["owner_is_victim"] = (w.clients[key].history(aid)[0].actor
                                          == ps["op"].address)
            row["salt"] = s
            res[key].append(row)

        def commit_reveal(i: int):
            # what commit-reveal would add: one more confirmed transaction before registering
            # (an anchor transaction as the commitment; the registry does not check it)
            s = salt(f"cr-{i}")
            t0 = w.env.now
            tx = yield from w.send(ps["op"], "Anchor", "anchor",
                                   digest_of("commit", ps["op"].address, s), 1, "")
            yield w.confirmed(tx, 1)
            commit_delays.append(w.env.now - t0)

        def run():
            for i in range(int(p["names"])):
                for key in ("Model", "ModelSaltId"):
                    yield w.env.timeout(w.rng.uniform(5, 30))
                    yield from victim(key, i)
            for i in range(int(p["commit_reveal_names"])):
                yield w.env.timeout(w.rng.uniform(5, 30))
                yield from commit_reveal(i)

        w.env.process(front_runner())
        w.env.process(run())
        w.run(2 * HOUR, drain=False)
        w.finish()

        def squat_rate(rows: list[dict[str, Any]]) -> float:
            return sum(1 for r in rows if not r["ok"] or not r["owner_is_victim"]) / len(rows)

        real, mutant = squat_rate(res["Model"]), squat_rate(res["ModelSaltId"])
        lat = [r["latency"] for r in res["Model"]]
        return Outcome(real > 0, False, None,
                       metrics={"squat_rate": real, "squat_rate_caller_chosen_ids": mutant,
                                "latency_cost_s": 0.0,  # sender-bound ids add no step
                                "register_latency_s": sum(lat) / len(lat),
                                "commit_reveal_extra_s": (sum(commit_delays) / len(commit_delays)
                                                          if commit_delays else 0.0),
                                # the residual: the copy makes the bare name ambiguous
                                "bare_name_ambiguous_rate": sum(
                                    len(_bare_name_owners(w.clients["Model"], r["salt"])) > 1
                                    for r in res["Model"]) / len(lat)})
