"""Spoofing of identities: S1 stolen approver keys, S3 Sybil approver accounts, S5 confused
deputy (a lured role holder), S6 replayed approvals, S7 front-run registrations.

Each scenario runs against the centralised baseline (SQLite :class:`CentralDB`, its
application enforcing the same lifecycle rules, behind the authenticated :class:`CentralAPI`
where requests matter) and against ProML on the simulated chain (``consortium-fast``, real
engine).  S1, S3 and S4 (``s_roles``) are written once over a :class:`Desk`: the Model service
as attacker and defenders meet it, on either system.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
from collections.abc import Callable, Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

import simpy
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from proml_sim.chain.accounts import DEFAULT_TIP
from proml_sim.chain.client import LifecycleClient
from proml_sim.chain.engines import make_backend
from proml_sim.chain.proofs import tx_sender
from proml_sim.compiler import CompiledContract, compile_artefact, compile_source
from proml_sim.errors import EngineError, LifecycleError
from proml_sim.ir import Approved, Registered
from proml_sim.lifecycles import Model
from proml_sim.sim import digest_of, domain_id
from proml_sim.sim.monitor import outcome as tx_outcome
from proml_sim.threats.baseline import (
    CSRF_HEADER,
    Browser,
    CentralAPI,
    approval_request,
    sign_request,
)
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.kit import Alarm, Extra, Trial, central, ratio, trials_outcome, world
from proml_sim.threats.monitor import Activity, ActivityMonitor, ChainReader, activities
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import (
    RawCalls,
    add_lifecycle,
    both_sides,
    finish,
    model_lifecycle,
    mutant,
    params,
    play,
    salt,
    send_ok,
    threshold_of,
)
from proml_sim.threats.scenarios.r_repudiation import tx_fields, tx_with
from proml_sim.threats.scenarios.t_support import ok

MIN, HOUR = 60.0, 3600.0
Gen = Generator[Any, Any, Any]


# -- the Model service on either system -------------------------------------------------------
class _Desk:
    """The Model service as actors meet it, on either system (:class:`BaselineDesk`,
    :class:`ChainDesk`), built from the threat model's cast (``extra``: participants the run
    adds, as for :func:`kit.world`).  Ids and digests are bytes on both; actions are simpy
    processes (``yield from d.fire(...)``) returning ``'ok'`` or the refusal's error name;
    ``model`` registers (as ``op``) and trains (as ``dev``) a model, ``revoke`` takes a
    verifier's role, ``approvals`` are those recorded since the last call (what a monitor
    reads), ``threshold`` is (k, count) as the deployed rules say (what an attacker reads)."""

    env: simpy.Environment
    fire: Callable[[str, str, bytes, bytes], Gen]

    def approve(self, who: str, aid: bytes, digest: bytes) -> Gen:
        return self.fire(who, "verify", aid, digest)

    def close(self) -> None:
        """End the run (the chain's: its unconfirmed rows written)."""

    def run(self, until: float) -> None:
        if until > self.env.now:
            self.env.run(until=until)
        self.close()

    def play(self, script: Gen, until: float, tail: float) -> simpy.Process:
        """Run the attack's ``script`` to simulated time ``until``, or past it to the script's
        end and ``tail`` seconds more (:func:`~proml_sim.threats.scenarios.common.play`'s
        rule), then end the run; the script's process (its value: what it returned)."""
        proc = self.env.process(script)
        if until > self.env.now:
            self.env.run(until=until)
        finish(self.env, [proc], tail)
        self.close()
        return proc


class BaselineDesk(_Desk):
    """The baseline: :class:`CentralDB` (:func:`kit.central`) of the lifecycle as ``key`` in a
    simpy clock (each call takes no time), behind its authenticated :class:`CentralAPI` at
    ``host`` (``api``: its options)."""

    def __init__(self, tm: ThreatModel, workdir: Path, lifecycle: Any, *, key: str = "Model",
                 extra: Extra = (), env: simpy.Environment | None = None, name: str = "p",
                 host: str = "prov.example", **api: Any) -> None:
        self.env, self.key = env or simpy.Environment(), key
        self.db = central(tm, workdir, {key: lifecycle}, name=name, extra=extra)
        self.api = CentralAPI(self.db, host, **api)
        self._last, self._n = 0, 0

    def model(self, tag: str) -> Gen:
        yield self.env.timeout(0)
        self._n += 1
        aid = self.db.register("op", self.key, f"{tag}-{self._n}", at=self.env.now)
        self.db.fire("dev", "train", aid, digest_of("model", tag).hex(), at=self.env.now)
        return aid.encode()

    def fire(self, who: str, step: str, aid: bytes, digest: bytes) -> Gen:
        yield self.env.timeout(0)
        try:
            self.db.fire(who, step, aid.decode(), digest.hex(), at=self.env.now)
            return "ok"
        except LifecycleError as exc:
            return type(exc).__name__

    def revoke(self, who: str) -> Gen:
        yield self.env.timeout(0)
        self.db.revoke(who, self.key, "verifier")
        return True

    def state(self, aid: bytes) -> str:
        return str(self.db.admin_sql("SELECT state FROM artefacts WHERE id=?",
                                     (aid.decode(),))[0][0])

    def approvals(self) -> list[Activity]:
        rows = self.db.admin_sql("SELECT rowid, artefact, digest, approver FROM approvals "
                                 "WHERE rowid > ? ORDER BY rowid", (self._last,))
        self._last = rows[-1][0] if rows else self._last
        return [Activity(who, "approve", a.encode(), bytes.fromhex(d), self.env.now, "verify")
                for _, a, d, who in rows]

    def threshold(self) -> tuple[int, str]:
        t = self.db.irs[self.key].transition("verify")
        return int(t.approvals), str(t.count)


class ChainDesk(_Desk):
    """ProML: the lifecycle deployed on the simulated chain (:func:`kit.world`), calls
    confirmed one block deep; ``beside`` ({key: compiled}) are registries deployed next to it,
    each with the cast's roles on ``key``, and ``"raw"`` sends raw transactions."""

    def __init__(self, tm: ThreatModel, seed: int, lifecycle: Any, *, extra: Extra = (),
                 beside: dict[str, CompiledContract] | None = None) -> None:
        self.w, self.ps = world(tm, seed, extra=extra, lifecycles=[lifecycle])
        self.env = self.w.env
        self.model_client = self.w.client("Model")
        self.reader = ChainReader(self.model_client, self.w.backend)
        self.names = {p.address: n for n, p in self.ps.items()}
        for key, compiled in (beside or {}).items():
            add_lifecycle(self.w, key, compiled, roles_on(tm, key))
        self.w.sim_clients["raw"] = RawCalls(self.w)

    def model(self, tag: str, key: str = "Model") -> Gen:
        """(also for a registry ``key`` deployed ``beside`` the Model)"""
        tx = yield from send_ok(self.w, "op", key, "register", salt(tag))
        mid = self.w.result(tx)
        yield from self.fire("dev", "train", mid, digest_of("model", tag), key)
        return mid

    def fire(self, who: str, step: str, aid: bytes, digest: bytes, key: str = "Model") -> Gen:
        tx = yield from send_ok(self.w, who, key, "fire", step, aid, digest, "", [])
        result = tx_outcome(tx)
        return result.partition(":")[2] or result

    def revoke(self, who: str) -> Gen:
        admin = self.w.domain_admin(self.ps[who], "Model")  # its domain's admin revokes
        tx = yield from send_ok(self.w, admin, "Model", "revoke", "verifier",
                                self.ps[who].address)
        return tx_outcome(tx) == "ok"

    def state(self, aid: bytes) -> str:
        return str(self.model_client.state(aid))

    def approvals(self) -> list[Activity]:
        return [Activity(self.names.get(a.account, a.account), "approve", a.artefact, a.digest,
                         self.env.now, a.transition)
                for a in activities(self.reader.poll(), self.model_client.ir)
                if a.action == "approve"]

    def threshold(self) -> tuple[int, str]:
        return threshold_of(self.model_client)

    def close(self) -> None:
        self.w.finish()


Desk = BaselineDesk | ChainDesk


def desk(side: str, tm: ThreatModel, seed: int, workdir: Path, p: dict[str, Any],
         extra: Extra = ()) -> Desk:
    """The ``side`` ("baseline" or "proml") desk of a run: the Model lifecycle whose verify
    needs ``p["approvals"]`` approvals counted by ``p["count"]`` (:func:`model_lifecycle`)."""
    lifecycle = model_lifecycle(int(p["approvals"]), str(p["count"]))
    if side == "baseline":
        return BaselineDesk(tm, workdir, lifecycle, extra=extra)
    return ChainDesk(tm, seed, lifecycle, extra=extra)


def roles_on(tm: ThreatModel, lifecycle: str) -> list[tuple[str, str]]:
    """(participant, role) of the cast on ``lifecycle``, in cast order: the grants of a
    lifecycle a run deploys beside the world's (``add_lifecycle``)."""
    return [(a.name, role) for a in tm.cast() for lc, role in a.roles if lc == lifecycle]


def watch_domains(d: Desk, accounts: Any, every: float, react: Any = None, phase: float = 0.0,
                  log: list[tuple[str, Alarm]] | None = None,
                  **rules: Any) -> tuple[ActivityMonitor, dict[str, Alarm]]:
    """Defence: every ``every`` s (the first time after ``phase`` + ``every`` s) the verifier
    domains compare the approvals recorded in their ``accounts``' names with their own
    evaluation logs (the returned monitor's ``expect``); the first alert per account becomes
    an :class:`Alarm` in the returned dict (and ``react(account)`` runs, e.g. a revocation).
    ``log`` (if given) gets every alert as (account, Alarm): a later alert on an account
    flagged before (by honest bursts, say) is what tells of an attack that started since."""
    mon, alarms = ActivityMonitor(**rules), dict[str, Alarm]()
    for v in accounts:
        mon.watch(v)

    def run() -> Gen:
        yield d.env.timeout(phase)
        while True:
            yield d.env.timeout(every)
            for al in mon.observe_many(d.approvals()):
                alarm = Alarm(d.env.now, f"domain-monitor:{al.rule}", al.detail)
                if log is not None:
                    log.append((al.account, alarm))
                if al.account not in alarms:
                    alarms[al.account] = alarm
                    if react is not None:
                        d.env.process(react(al.account))

    d.env.process(run())
    return mon, alarms


# -- S1: stolen approver keys, an activity monitor per identity, revocation -------------------
S1_PARAMS = ("approvers", "stolen", "targets", "horizon_s", "poll_s", "reaction_mean_s",
             "burst_max", "burst_window_s", "honest_interval_s", "approvals", "count")


def _stolen(group: str, n: int, k: int) -> list[str]:
    """The keys a thief group holds: the first s of its verifiers (``seq``: the first k)."""
    return [f"v{group}_{i}" for i in range(min(k if group == "seq" else int(group), n))]


def _s1(side: str, tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
    """The thief holds ``stolen`` keys (sweep them with ``--param stolen=0,1,...``); beside
    it, in the same world with its own n verifiers, group ``"seq"`` uses k keys one after the
    other, the last after the others were revoked.  Every random draw comes from a stream
    per actor, so both systems face the same run."""
    p = params(tm, *S1_PARAMS)  # (their [ranges]: 0 <= stolen <= approvers, ...)
    n, s = int(p["approvers"]), int(p["stolen"])
    groups = [str(s), "seq"]
    # each group's n verifiers (their names carry the group, so the run adds them to the cast)
    verifiers = [(f"v{g}_{i}", f"verif-{i}", ("eu", "us", "asia")[i % 3], "Model.verifier")
                 for g in groups for i in range(n)]
    d = desk(side, tm, seed, workdir, p, verifiers)
    k, _ = d.threshold()  # the thief reads the threshold from the deployed rules
    env = d.env
    revoked: dict[str, float] = {}
    start: dict[str, float] = {}
    bogus = dict.fromkeys(groups, 0)
    targets: dict[str, list[bytes]] = {g: [] for g in groups}
    seq: dict[str, float] = {}

    def rng(*tag: Any) -> random.Random:
        return random.Random("-".join(map(str, ("S1", seed, *tag))))

    def honest(g: str) -> Gen:
        r = rng("honest", g)
        for j in itertools.count():
            yield env.timeout(r.expovariate(1 / p["honest_interval_s"]))
            aid = yield from d.model(f"h{g}-{j}")
            for i in r.sample(range(n), min(n, k)):
                if f"v{g}_{i}" not in revoked:  # (its domain would enrol a new key)
                    mon.expect(f"v{g}_{i}", aid, digest_of("eval", g, j))
                    yield from d.approve(f"v{g}_{i}", aid, digest_of("eval", g, j))

    def approve_all(keys: list[str], aid: bytes, dg: bytes) -> Gen:
        """The keys approve together (one block on chain: nobody can react between)."""
        procs = [env.process(d.approve(v, aid, dg)) for v in keys]
        yield env.all_of(procs)
        return {v: pr.value for v, pr in zip(keys, procs, strict=True)}

    def thief(g: str) -> Gen:
        r, keys, dead = rng("thief", g), _stolen(g, n, k), set()
        yield env.timeout(r.uniform(40 * MIN, 80 * MIN))
        start[g] = env.now
        for j, aid in enumerate(targets[g]):
            alive = [v for v in keys if v not in dead]
            if not alive:
                return
            use = [alive[(j * k + i) % len(alive)] for i in range(min(k, len(alive)))]
            res = yield from approve_all(use, aid, digest_of("bogus", g, j))
            bogus[g] += sum(x == "ok" for x in res.values())
            dead |= {v for v, x in res.items() if x == "RoleNotAllowed"}  # revoked
            yield env.timeout(r.uniform(60, 600))

    def sequential() -> Gen:
        r, (*first, last) = rng("seq"), _stolen("seq", n, k)
        yield env.timeout(r.uniform(40 * MIN, 80 * MIN))
        start["seq"], aid, later = env.now, targets["seq"][0], r.uniform(10 * MIN, 60 * MIN)
        yield from approve_all(first, aid, digest_of("bogus", "seq"))
        while not set(first) <= set(revoked) and env.now < p["horizon_s"] - later:
            yield env.timeout(p["poll_s"])
        if set(first) <= set(revoked):
            yield env.timeout(later)  # the last key is stolen later
            yield from d.approve(last, aid, digest_of("bogus", "seq"))
            seq["counted"] = float(d.state(aid) == "verified")

    def revoke(v: str) -> Gen:
        yield env.timeout(rng("admin", v).expovariate(1 / p["reaction_mean_s"]))
        if (yield from d.revoke(v)):
            revoked[v] = env.now

    def begin() -> Gen:
        for g in groups:
            for j in range(int(p["targets"])):
                targets[g].append((yield from d.model(f"t{g}-{j}")))
        for g in groups:
            env.process(honest(g))
            if g != "0":
                env.process(sequential() if g == "seq" else thief(g))

    # each domain watches its own accounts against its own evaluation log; the admin revokes
    log: list[tuple[str, Alarm]] = []
    mon, alarms = watch_domains(d, [v[0] for v in verifiers], p["poll_s"], revoke, log=log,
                                burst_max=int(p["burst_max"]), burst_window_s=p["burst_window_s"])
    env.process(begin())
    d.run(p["horizon_s"])

    def after_theft(g: str, v: str, al: Alarm) -> bool:
        """An alarm on a key of group ``g``'s thief raised once it started: one about the
        theft (an alert on honest traffic before it, a burst say, detects nothing of it)."""
        return v in _stolen(g, n, k) and g in start and al.at >= start[g]

    # a consumer deploys a model once it is verified: each target is one attempt
    won = {g: [d.state(t) == "verified" for t in targets[g]] for g in groups}
    caught = {g: tuple(al for v, al in log if after_theft(g, v, al)) for g in groups}
    head = str(s)
    true_alarms = sum(1 for v, al in alarms.items() if any(after_theft(g, v, al) for g in groups))
    ttr = [revoked[v] - alarms[v].at for v in _stolen(head, n, k) if v in revoked]
    metrics = {"damage": float(sum(won[head])), "damage_approvals": float(bogus[head]),
               "false_alerts": float(len(alarms) - true_alarms),
               "precision": ratio(true_alarms, len(alarms)),
               **({"time_to_revoke_s": sum(ttr) / len(ttr)} if ttr else {}),
               **({"revoked_approvals_counted": seq["counted"]} if seq else {})}
    # (no stolen key: nobody attacks, no attempt; the verdict is no_attack)
    return trials_outcome([Trial(x, caught[head]) for x in won[head] if s > 0],
                          attack_at=start.get(head), metrics=metrics)


both_sides("S1", _s1)


# -- S3: one person, several approver accounts (Sybil) ----------------------------------------
S3_PARAMS = ("sybils", "approvals", "count")


def _s3(side: str, tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
    p = params(tm, *S3_PARAMS)
    a = int(p["sybils"])
    d = desk(side, tm, seed, workdir, p)  # her accounts mallory0.. (all of verif-0)
    won: dict[int, bool] = {}
    refused: list[str] = []

    def run() -> Gen:
        for m in range(1, a + 1):  # with m of her accounts, all in one block
            aid = yield from d.model(f"m{m}")
            procs = [d.env.process(d.approve(f"mallory{i}", aid, digest_of("bogus", m)))
                     for i in range(m)]
            yield d.env.all_of(procs)
            refused.extend(str(pr.value) for pr in procs if m == a and pr.value != "ok")
            won[m] = d.state(aid) == "verified"  # a consumer would deploy it

    d.play(run(), 2 * HOUR, tail=0.0)
    return trials_outcome(
        [Trial(won[a])], metrics={"sybil_approvals_refused": float(len(refused))},
        series={"asr_by_accounts": [(float(m), float(x)) for m, x in won.items()]},
        note=f"refused: {', '.join(sorted(set(refused)))}" if refused else "")


both_sides("S3", _s3)


# -- S5: a role holder lured into acting for the attacker (confused deputy) -------------------
S5_PARAMS = ("victims", "session_samesite", "csrf_token", "poll_s")
RELAY_SOURCE = """# pragma version ~=0.4.3
# A "claim your reward" contract: whoever calls claim() unknowingly sends the planted call
# to the target, as this contract.
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


def _s5_lures(tm: ThreatModel, seed: int) -> list[tuple[str, str, bytes]]:
    """(victim, transition, planted digest): each verifier of the cast approves a bogus
    evaluation, the developer records a bogus model version."""
    roles = roles_on(tm, "Model")
    return [*((v, "verify", digest_of("bogus-eval", seed)) for v, r in roles if r == "verifier"),
            *((d, "train", digest_of("bogus-model", seed)) for d, r in roles if r == "developer")]


@scenario("S5")
class ConfusedDeputy:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        p = params(tm, *S5_PARAMS)
        d = BaselineDesk(tm, workdir, Model, samesite=str(p["session_samesite"]),
                         csrf=bool(p["csrf_token"]))
        api, rng, env = d.api, random.Random(f"S5-{seed}"), d.env
        _, alarms = watch_domains(d, (v for v, r in roles_on(tm, "Model") if r == "verifier"),
                                  p["poll_s"], phase=rng.uniform(0, 60))
        tries: list[tuple[str, bool]] = []

        def run() -> Gen:
            aid = (yield from d.model(f"m-{seed}")).decode()
            start = env.now
            for who, step, dg in _s5_lures(tm, seed):
                browser = Browser()
                browser.log_in(api, who, env.now)  # the victim works in the application...
                yield env.timeout(rng.uniform(60, 600))  # ...and later opens the lure page,
                # whose form posts the planted call (it cannot read the CSRF token)
                status, _ = browser.send(api, "evil.example",
                                         approval_request(api.host, aid, step, dg.hex()), env.now)
                tries.append((who, status == 200))
                # the lure asks the victim's agent to sign a "claim" at the attacker's site,
                # which forwards the signed request to the service
                signed = sign_request(approval_request("evil.example", aid, step, dg.hex()),
                                      who, api.keys.get(who) or api.enrol(who), env.now,
                                      f"claim-{who}")
                status, _ = api.handle(replace(signed, host=api.host), env.now)
                tries.append((who, status == 200))
            return start

        proc = d.play(run(), 2 * HOUR, tail=HOUR)
        return trials_outcome(
            [Trial(ok, (alarms[w],) if w in alarms else ()) for w, ok in tries],
            attack_at=proc.value, note="refused: " + ", ".join(sorted(api.refused)),
            metrics={"forged_requests_accepted": float(sum(ok for _, ok in tries))})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        params(tm, *S5_PARAMS)  # checked (the victims are counted in the cast)
        d = ChainDesk(tm, seed, Model, beside={"ModelTxOrigin": mutant("b-tx-origin")})
        w, relay = d.w, compile_source(RELAY_SOURCE, "Relay")
        tries: dict[str, list[bool]] = {"Model": [], "ModelTxOrigin": []}
        claims_ok: list[bool] = []

        def lure(key: str, mid: bytes, victim: str, step: str, dg: bytes) -> Gen:
            client = w.clients[key]
            payload = client.contract_abi.encode_call(step, [mid, dg, "", []])
            init = relay.bytecode + abi_encode(["address", "bytes"], [client.address, payload])
            tx = yield from send_ok(w, "mallory", "raw", "tx", None, init)
            w.sim_clients[f"relay-{tx.hash.hex()}"] = RawCalls(
                w, w.result(tx).contract_address, relay.abi)
            claim = yield from send_ok(w, victim, f"relay-{tx.hash.hex()}", "call", "claim")
            if key == "Model":
                claims_ok.append(ok(claim))
            # the record is rewritten if the lifecycle contract logged anything for the relay
            logs = claim.receipt.logs if claim.receipt is not None else []
            tries[key].append(any(log.address == client.address for log in logs))

        def run() -> Gen:
            for key in tries:
                mid = yield from d.model(f"m-{seed}", key)
                for who, step, dg in _s5_lures(tm, seed):
                    yield from lure(key, mid, who, step, dg)

        play(w, HOUR, run(), tail=0.0)
        mut = tries["ModelTxOrigin"]
        return trials_outcome([Trial(x) for x in tries["Model"]], metrics={
            "asr_mutant": sum(mut) / len(mut), "victim_txs_succeeded": float(sum(claims_ok))})


# -- S6: replay an approval (same artefact, other artefact, other deployment, other chain) ----
S6_PARAMS = ("replay_after_s", "session_idle_s", "signature_window_s", "poll_s")
#: why an engine refused a replayed transaction (substring of its error -> label for the notes)
REJECTIONS = (("already known", "a known transaction"), ("nonce", "a used nonce"),
              ("chain id", "another chain id"), ("cannot pay", "an unfunded signer"))


def _replays(tries: dict[str, bool], alarm: Alarm | None, refused: str, at: float | None,
             **extra: float) -> Outcome:
    """One trial per replay; an alarm on v1 (its domain's monitor) covers each success."""
    return trials_outcome([Trial(ok, (alarm,) if alarm else ()) for ok in tries.values()],
                          attack_at=at, note=f"refused: {refused}", metrics={
        **{f"replay_{k}": float(v) for k, v in tries.items()},
        "successful_replays": float(sum(tries.values())), **extra})


def _s6_baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
    p = params(tm, *S6_PARAMS)
    kw = {"session_idle_s": p["session_idle_s"], "window_s": p["signature_window_s"]}
    prod = BaselineDesk(tm, workdir, Model, **kw)
    # a second deployment (staging) trusting the same agent keys and accounts
    other = BaselineDesk(tm, workdir, Model, key="ModelB", env=prod.env, name="staging",
                         host="staging", **kw)
    api, api_o = prod.api, other.api
    keys = {who: api.enrol(who) for who in ("v1", "v1b", "v2", "eve")}
    api_o.keys.update(keys)
    env = prod.env
    mon, alarms = watch_domains(prod, ("v1", "v1b", "v2"), p["poll_s"],
                                phase=random.Random(f"S6-{seed}").uniform(0, p["poll_s"]))
    tries: dict[str, bool] = {}
    ev = digest_of("eval", seed)

    def run() -> Gen:
        m1 = yield from prod.model(f"m1-{seed}")
        m2 = yield from prod.model(f"m2-{seed}")
        m3 = yield from prod.model(f"m3-{seed}")
        m1x = yield from other.model(f"m1-{seed}")
        n1, n2, n3 = (m.decode() for m in (m1, m2, m3))
        # captured (a logging proxy): v1's agent approving m1, v1's browser approving m3
        for m in (m1, m3):
            mon.expect("v1", m, ev)
        signed = sign_request(approval_request(api.host, n1, "verify", ev.hex()), "v1",
                              keys["v1"], env.now, f"n-{seed}")
        api.handle(signed, env.now)
        token = Browser().log_in(api, "v1", env.now)
        sid = next(iter(api.sessions))
        session = replace(approval_request(api.host, n3, "verify", ev.hex()),
                          headers={CSRF_HEADER: token}, cookies={"sid": sid})
        api.handle(session, env.now)
        yield env.timeout(p["replay_after_s"])
        start = env.now

        def passes(req: Any, at: CentralAPI = api, aid: str = "") -> bool:
            """``req`` (readdressed to model ``aid`` at ``at`` if given) is accepted."""
            if aid:
                req = replace(req, host=at.host, path=f"/artefacts/{aid}/verify")
            return at.handle(req, env.now)[0] == 200

        def fresh(who: str, req: Any) -> bool:
            return passes(sign_request(req, who, keys[who], env.now, f"{who}-{env.now}"))

        tries["same_request"] = passes(signed)
        for kind, who in (("same_sender_again", "v1"), ("same_domain_account", "v1b"),
                          ("no_role_sender", "eve")):
            tries[kind] = fresh(who, approval_request(api.host, n1, "verify", ev.hex()))
        tries["other_artefact"] = passes(signed, aid=n2)
        tries["other_deployment"] = passes(signed, api_o, m1x.decode())
        # the captured session (cookie + CSRF token) replayed from the attacker's machine
        tries["session_same_request"] = passes(session)
        tries["session_other_artefact"] = passes(session, aid=n2)
        tries["session_other_deployment"] = passes(session, api_o, m1x.decode())
        # m1 is retrained: v1's approval of the old version must not add up with v2's
        yield from prod.fire("dev", "train", m1, digest_of("model", "m1", "again"))
        fresh("v2", approval_request(api.host, n1, "verify", ev.hex()))
        tries["stale_version"] = prod.state(m1) == "verified"
        return start

    proc = env.process(run())
    prod.run(HOUR + p["replay_after_s"])  # as long as the chain side: past the replays
    return _replays(tries, alarms.get("v1"), ", ".join(sorted(api.refused)), proc.value)


def _s6_proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
    p = params(tm, *S6_PARAMS)
    # another consortium's registry on the same chain (ModelB), where v1 also verifies
    d = ChainDesk(tm, seed, Model, beside={"ModelB": compile_artefact(Model)})
    w, ps, other = d.w, d.ps, roles_on(tm, "ModelB")
    assert w.backend is not None and w.admin is not None
    # a staging chain (chain id + 1) with the same contracts at the same addresses
    founder = w.domain_admin(ps["op"], "Model")  # deployed Model on chain A (its domain's admin)
    names = list(dict.fromkeys(n for n, _ in other))
    chain_c = make_backend("revm" if w.engine_name == "revm" else "pyevm",
                           funded=[*(w.domain_admin(ps[n]).address for n in names),
                                   *(ps[n].address for n in names)],
                           chain_id=w.backend.chain_id + 1)
    mc = LifecycleClient.deploy(chain_c, compile_artefact(Model), founder.signer,
                                domain_id(founder.domain))  # same deployer, nonce: address
    w.enrol(mc, other, founder)  # the same governance set-up as on chain A
    model, model_b = w.clients["Model"], w.clients["ModelB"]
    tries: dict[str, bool] = {}
    refusals: set[str] = set()
    ran: list[bool] = []  # the altered transactions that ran (as their stranger signer)
    v1 = ps["v1"].address

    def accepted(backend: Any, raw: bytes) -> bool:
        try:
            backend.submit(raw)
            return True
        except EngineError as exc:
            refusals.add(next((lab for key, lab in REJECTIONS if key in str(exc)), str(exc)[:40]))
            return False

    def v1_counted(client: Any, mid: bytes) -> bool:
        return any(isinstance(e, Approved) and e.id == mid and e.approver == v1
                   for e in client.events())

    def run() -> Gen:
        m1 = yield from d.model("m1")
        m2 = yield from d.model("m2")
        m1b = yield from d.model("m1", "ModelB")  # same registrant and salt: same id
        mc.register(ps["op"].signer, salt("m1"))
        mc.fire(ps["dev"].signer, "train", m1, digest_of("model", "m1"), "", [])
        ev = digest_of("eval", seed)
        t = yield from send_ok(w, "v1", "Model", "fire", "verify", m1, ev, "", [])
        assert ok(t) and mc.address == model.address and m1b == m1 and mc.exists(m1), \
            "S6 set-up: the other chain must differ only by chain id"
        yield w.env.timeout(p["replay_after_s"])
        tries["same_request"] = accepted(w.backend, t.raw)
        for kind, who in (("same_sender_again", "v1"), ("same_domain_account", "v1b"),
                          ("no_role_sender", "eve")):
            tries[kind] = (yield from d.approve(who, m1, ev)) == "ok"
        # v1's signed transaction altered to another artefact / registry: the signature then
        # recovers to a stranger; eve funds the strangers so that the altered ones can run
        data = model.transition_abi.encode_call("verify", [m2, ev, "", []])
        alts = {"other_artefact": (tx_with(t.raw, data=data), model, m2),
                "other_deployment": (tx_with(t.raw, to=model_b.address), model_b, m1b)}
        for raw, _, _ in alts.values():
            yield from send_ok(w, "eve", "raw", "tx", tx_sender(raw), b"", 10**18)
            accepted(w.backend, raw)
        sent = accepted(chain_c, t.raw)
        if sent:
            chain_c.produce_block()
        tries["other_chain"] = sent and v1_counted(mc, m1)
        yield from d.fire("dev", "train", m1, digest_of("m1", "again"))
        yield from d.approve("v2", m1, ev)  # (its block also carried the altered transactions)
        tries["stale_version"] = model.state(m1) == "verified"
        for kind, (raw, client, mid) in alts.items():
            r = w.gateway.receipt(keccak(raw))  # ran as the stranger, or not at all
            ran.append(r is not None)
            tries[kind] = v1_counted(client, mid) or (r is not None and bool(r.status))

    play(w, HOUR + p["replay_after_s"], run(), tail=0.0)
    return _replays(tries, None, "; ".join(sorted(refusals)), None,
                    altered_txs_ran_as_stranger=float(sum(ran)))


both_sides("S6", lambda side, *a: (_s6_baseline if side == "baseline" else _s6_proml)(*a))


# -- S7: front-run a registration (claim squatting) -------------------------------------------
S7_PARAMS = ("names", "commit_reveal_names", "front_run_tip")
#: the mutant's registration site: the id is the caller's salt instead of keccak(sender ++ salt)
SENDER_BOUND_ID = "_id: bytes32 = keccak256(concat(convert(msg.sender, bytes20), salt))"


def caller_chosen_id_mutant() -> CompiledContract:
    """The paper's Model contract with caller-chosen ids (``id = salt``): squattable."""
    from proml_sim.codegen import generate_vyper
    from proml_sim.ir import build_ir

    ir = build_ir(Model)
    src = generate_vyper(ir)
    if src.count(SENDER_BOUND_ID) != 1:
        raise RuntimeError("S7 mutant: the generated registration site changed; update it")
    return replace(compile_source(src.replace(SENDER_BOUND_ID, "_id: bytes32 = salt"), ir.name),
                   fingerprint=ir.fingerprint(), ir=ir)


@scenario("S7")
class FrontRun:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        p = params(tm, *S7_PARAMS)
        db = central(tm, workdir, {"Model": Model}, admin="mallory")
        squatted = []
        for i in range(int(p["names"])):
            name = f"model-{seed}-{i}"
            # the admin sees the request in the application's queue and inserts the row first
            db.admin_sql("INSERT INTO artefacts VALUES (?, 'Model', ?, 'mallory', 'requested', "
                         "1, NULL)", (f"Model:op:{name}", name))
            try:
                db.register("op", "Model", name)
                squatted.append(False)
            except sqlite3.IntegrityError:  # the id is taken: the victim lost its name
                squatted.append(True)
        db.close()
        return trials_outcome([Trial(x) for x in squatted], metrics={"latency_cost_s": 0.0})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        p = params(tm, *S7_PARAMS)
        w, ps = world(tm, seed)  # mallory: an insider with the registering role
        add_lifecycle(w, "ModelSaltId", caller_chosen_id_mutant(), roles_on(tm, "ModelSaltId"))
        w.sim_clients["squat"] = RawCalls(w, tip=int(p["front_run_tip"]) * DEFAULT_TIP)
        lost: dict[str, list[bool]] = {"Model": [], "ModelSaltId": []}
        lat, commit = [], []
        seen: set[bytes] = set()

        def front_runner() -> Gen:  # copies each registration in the mempool, higher tip
            while True:
                yield w.env.timeout(0.5)
                for tx in list(w.pending.values()):
                    if (tx.hash not in seen and tx.sender == ps["op"].address
                            and tx.meta.get("method") == "register"):
                        seen.add(tx.hash)
                        f = tx_fields(tx.raw)
                        yield from w.send("mallory", "squat", "tx", f["to"], f["data"])

        def run() -> Gen:
            for i in range(int(p["names"])):
                for key in lost:
                    yield w.env.timeout(w.rng.uniform(5, 30))
                    tx = yield from send_ok(w, "op", key, "register", salt(f"model-{i}"),
                                            digest_of("m", i), "", [])
                    lat.append(tx.confirmed[1] - tx.submitted)
                    lost[key].append(not ok(tx) or w.clients[key].history(
                        w.result(tx))[0].actor != ps["op"].address)
            for i in range(int(p["commit_reveal_names"])):  # what commit-reveal would cost:
                t0 = w.env.now  # one more confirmed transaction (an anchor) before registering
                yield from send_ok(w, "op", "Anchor", "anchor", digest_of("commit", i), 1, "")
                commit.append(w.env.now - t0)

        w.env.process(front_runner())  # (until the end of the run)
        play(w, 2 * HOUR, run(), tail=0.0)
        model = w.clients["Model"]
        ambiguous = [len({e.registrant for e in model.events() if isinstance(e, Registered)
                          and e.salt == salt(f"model-{i}")}) > 1 for i in range(int(p["names"]))]
        mut = lost["ModelSaltId"]
        return trials_outcome([Trial(x) for x in lost["Model"]], metrics={
            "latency_cost_s": 0.0,  # sender-bound ids add no step
            "squat_rate_caller_chosen_ids": sum(mut) / len(mut),
            "register_latency_s": sum(lat) / len(lat),
            "commit_reveal_extra_s": ratio(sum(commit), len(commit)),
            # the residual: the copy makes the bare name ambiguous (refused, never resolved)
            "bare_name_ambiguous_rate": sum(ambiguous) / len(ambiguous)})
