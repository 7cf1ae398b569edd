"""Availability attacks by insiders: D2 withheld approvals, D3 history growth, D4 junk
registrations, D5 a node serving a stale view.

Each cast (who takes part, where, with which roles) is the threat model's ``[actors]``.
Shared with D1, R1-R2 and C1-C3: :func:`model_world` (the cast on a Model lifecycle),
:func:`vm_cost` (a deterministic cost of a database operation) and :class:`RegionView` (what an
honest node in one region knows of a world's canonical chain).
"""

from __future__ import annotations

import bisect
import functools
import random
import sqlite3
import statistics
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak

from proml_sim.errors import UsageError
from proml_sim.ir import Approved, Registered
from proml_sim.lifecycles import Dataset, Model
from proml_sim.node.freshness import FreshnessGuard
from proml_sim.sim import NetworkModel, digest_of, domain_id, get_profile
from proml_sim.sim.monitor import outcome as tx_outcome
from proml_sim.sim.world import GENESIS_TS, Participant, SimBlock, SimTx, World
from proml_sim.threats.catalogue import Actor, ThreatModel
from proml_sim.threats.kit import Alarm, central, outcome, trials_outcome, watch, world
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import (
    model_lifecycle,
    param_error,
    play,
    salt,
    send_ok,
    threshold_of,
)

ZERO32 = b"\0" * 32


# -- shared set-up -----------------------------------------------------------------------------
def model_world(tm: ThreatModel, seed: int, lifecycle: Any = Model,
                **kw: Any) -> tuple[World, dict[str, Participant]]:
    """:func:`kit.world` of ``tm``'s cast on the Model ``lifecycle`` beside the Dataset."""
    return world(tm, seed, lifecycles=[Dataset, lifecycle], **kw)


def trained(w: World, ps: dict[str, Participant], digest: bytes) -> bytes:
    """Set-up: op registers model "m", dev trains it with ``digest``; the run starts after."""
    mc = w.clients["Model"]
    mid: bytes = mc.register(ps["op"].signer, salt("m"))
    mc.fire(ps["dev"].signer, "train", mid, digest, "", [])
    w.mark_start()
    return mid


def vm_cost(conn: sqlite3.Connection, fn: Callable[[], Any]) -> int:
    """SQLite virtual-machine instructions ``fn`` executes on ``conn``: a deterministic cost."""
    n = [0]

    def tick() -> int:
        n[0] += 1
        return 0

    conn.set_progress_handler(tick, 1)
    fn()
    conn.set_progress_handler(None, 1)
    return n[0]


def median(xs: list[float], default: float | None = None) -> float | None:
    """The median of ``xs``; ``default`` when there are none (None: undefined, as
    :func:`~proml_sim.threats.kit.ratio`; never NaN, which is not JSON)."""
    return statistics.median(xs) if xs else default


# -- what an honest node in a region knows of the chain ---------------------------------------
@dataclass(frozen=True)
class Head:
    """Header facts of a simulated block, as a node would report them."""

    number: int
    hash: bytes
    timestamp: float


class RegionView:
    """An honest node in ``region`` following ``world``'s canonical chain.

    A block reaches the node after the network's block delay from the producer's region, drawn
    from the view's own ``rng`` (the world's draws stay alone); a block counts once its parent
    has arrived too.  Simulated blocks have no header hash: a stand-in chains ``keccak(parent
    hash, height, producer, time, tx hashes)``; timestamps are ``GENESIS_TS + time``.  ``clock``
    gives the node's time (default the world's); ``network`` replaces the world's network (a
    partition the world itself does not know).
    """

    def __init__(self, world: World, region: str, rng: random.Random,
                 clock: Callable[[], float] | None = None,
                 network: NetworkModel | None = None) -> None:
        self.world, self.region, self.rng = world, region, rng
        self.clock = clock or (lambda: world.env.now)
        self.network = network or world.network
        self._blocks: list[SimBlock] = []
        self._arrival: list[float] = []
        self._hash: list[bytes] = []

    def _fill(self) -> None:
        canon, i = self.world.canon, 0  # i: first block a reorg replaced, or new
        while i < len(self._blocks) and i < len(canon) and self._blocks[i] is canon[i]:
            i += 1
        del self._blocks[i:], self._arrival[i:], self._hash[i:]
        for b in canon[i:]:
            t = self.network.deliver_at(b.region, self.region, b.time,
                                        self.network.block_delay(b.region, self.region, self.rng))
            parent = self._hash[-1] if self._hash else ZERO32
            self._blocks.append(b)
            self._arrival.append(max(t, self._arrival[-1] if self._arrival else 0.0))
            self._hash.append(keccak(parent + b.height.to_bytes(8, "big") + b.producer.encode()
                                     + int(b.time * 1000).to_bytes(8, "big")
                                     + b"".join(x.hash for x in b.txs)))

    def arrival(self, height: int) -> float:
        """When the node has the canonical block at ``height`` (and all before it)."""
        self._fill()
        return self._arrival[height - 1]

    def height_at(self, now: float | None = None) -> int:
        self._fill()
        return bisect.bisect_right(self._arrival, self.clock() if now is None else now)

    def _head_of(self, height: int) -> Head:
        if height <= 0:
            return Head(0, ZERO32, float(GENESIS_TS))
        b = self._blocks[height - 1]
        return Head(height, self._hash[height - 1], float(GENESIS_TS + int(b.time)))

    def head(self) -> Head:
        return self._head_of(self.height_at())

    def head_at(self, now: float) -> Head:
        return self._head_of(self.height_at(now))

    def block(self, number: int) -> Head:
        if not 0 <= number <= self.height_at():
            raise LookupError(f"no block #{number} at this node yet")
        return self._head_of(number)

    def includes(self, tx: SimTx, now: float | None = None) -> bool:
        """Whether ``tx`` is in a block this node has by ``now``."""
        return tx.block is not None and 0 < tx.block.height <= self.height_at(now) and (
            self.world.canon[tx.block.height - 1] is tx.block)


def clock_ts(world: World) -> float:
    """A node's wall clock, in the chain's timestamp unit (see :class:`RegionView`)."""
    return GENESIS_TS + world.env.now


# -- D2 ----------------------------------------------------------------------------------------
@scenario("D2")
class WithholdApproval:
    """w of n verifiers never approve; the requester's timeout flags the stall; the role admin
    escalates by granting the verifier role to standby verifiers of other domains."""

    @staticmethod
    def _p(tm: ThreatModel) -> tuple[int, int, float, float, float, Any]:
        p = tm.parameters
        return (int(p["verifiers"]), int(p["attack_w"]), float(p["timeout_s"]),
                float(p["approval_mean_s"]), float(p["horizon_s"]),
                model_lifecycle(int(p["approvals"]), str(p["count"])))

    @staticmethod
    def standbys(tm: ThreatModel) -> list[Actor]:
        """The k standby verifiers of the cast (no role until the escalation)."""
        return [a for a in tm.cast() if not a.roles]

    @staticmethod
    def _outcome(done: float | None, stalled: bool, timeout: float, horizon: float,
                 withholders: int) -> Outcome:
        done = done if done is not None and done <= horizon else None
        metrics = {"completion_rate": float(done is not None), "latency_s": done or horizon}
        if not withholders:  # nobody withholds: no attempt (a slow approval is no attack)
            return trials_outcome([], metrics=metrics)
        return outcome(stalled, attack_at=0.0, alarms=[Alarm(timeout, "requester:timeout")]
                       if stalled else [], metrics=metrics)

    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        n, w_, timeout, mean, horizon, lc = WithholdApproval._p(tm)
        # the database is run by verif-0's domain: its admin withholds whenever w >= 1
        db = central(tm, workdir, {"Model": lc}, admin="v0")
        aid, rng = db.register("op", "Model", "m"), random.Random(seed)
        db.fire("dev", "train", aid, "model")

        def approvals(names: list[str], t0: float) -> float | None:
            turns = sorted((t0 + rng.expovariate(1 / mean), v) for v in names)
            return next((t for t, v in turns if db.fire(v, "verify", aid, "ev", at=t)), None)

        done = approvals([f"v{i}" for i in range(w_, n)], 0.0)
        stalled = done is None or done > timeout
        if stalled and w_ == 0:  # escalation needs the database admin, v0
            for s in (standbys := WithholdApproval.standbys(tm)):
                db.grant(s.name, "Model", "verifier", s.domain)
            done = approvals([s.name for s in standbys], timeout)
        db.close()
        return WithholdApproval._outcome(done, stalled, timeout, horizon, w_)

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        st: dict[str, Any]
        n, w_, timeout, mean, horizon, lc = WithholdApproval._p(tm)
        standbys = [s.name for s in WithholdApproval.standbys(tm)]
        # a consortium: the standbys' domains may hold the verifier role, their admins enrol
        # them when the requester escalates
        w, ps = model_world(tm, seed, lc, allow=[(s, "Model", "verifier") for s in standbys]
                            if lc is Model else ())
        mc, st = w.clients["Model"], {"done": None, "stalled": False}
        mid = trained(w, ps, digest_of("model", seed))

        def approver(name: str) -> Any:
            yield w.env.timeout(w.rng.expovariate(1 / mean))
            if mc.state(mid) == "trained":
                tx = yield from send_ok(w, name, "Model", "fire", "verify", mid,
                                        digest_of("ev"), "", [])
                if tx_outcome(tx) == "ok" and w.result(tx).fired:
                    st["done"] = w.env.now

        def requester() -> Any:
            yield w.env.timeout(timeout)
            if mc.state(mid) != "verified":  # the chain shows fewer than k approvals: escalate
                st["stalled"] = True
                need = threshold_of(mc)[0] - sum(isinstance(e, Approved) and e.id == mid
                                                 for e in mc.events())
                for s in standbys[:max(0, need)]:
                    yield from send_ok(w, w.domain_admin(ps[s], "Model").name, "Model", "grant",
                                       "verifier", ps[s].address, domain_id(ps[s].domain))
                    w.env.process(approver(s))

        for i in range(w_, n):
            w.env.process(approver(f"v{i}"))
        play(w, horizon, requester())
        return WithholdApproval._outcome(st["done"], bool(st["stalled"]), timeout, horizon,
                                         w_)


# -- D3 ----------------------------------------------------------------------------------------
@scenario("D3")
class HistoryGrowth:
    """An insider grows an artefact's history; do operations get dearer?"""

    @staticmethod
    def _points(tm: ThreatModel) -> list[int]:
        """``history``: the lengths the costs are measured at (a list: no [ranges] rule); the
        growth is the last length's cost against the first's, so a single length (nothing
        grown, nothing compared: it was measured "prevented") is refused."""
        h = tm.parameters["history"]
        if (not isinstance(h, list) or len(h) < 2 or any(type(x) is not int or x < 0 for x in h)
                or h != sorted(set(h))):
            raise UsageError(f"D3: history={h!r}; give two or more increasing whole numbers "
                             ">= 0 (the cost at the first length is compared with the last), "
                             "e.g. --param 'history=[1, 10, 100]'")
        return list(h)

    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        db = central(tm, workdir, {"Model": Model})
        if not tm.parameters["baseline_index"]:  # ablation: what the history index buys
            db.admin_sql("DROP INDEX history_by_artefact")
        grown, other = db.register("op", "Model", "grown"), db.register("op", "Model", "other")
        cost: dict[str, list[float]] = {}
        for L in HistoryGrowth._points(tm):
            while len(db.history(grown)) <= L:  # the insider's growth, through the application
                db.fire("dev", "train", grown, f"g{len(db.history(grown))}")
            ops: dict[str, Callable[[], Any]] = {
                "train": functools.partial(db.fire, "dev", "train", grown, f"t{L}"),
                "approve": functools.partial(db.fire, "v0", "verify", grown, f"{L}"),
                "register": functools.partial(db.register, "op", "Model", f"f{L}"),
                "read_history": functools.partial(db.history, other)}
            for op, fn in ops.items():
                cost.setdefault(op, []).append(vm_cost(db.conn, fn))
        db.close()
        growth = max(c[-1] / max(1.0, c[0]) for c in cost.values())
        return outcome(growth > 2.0, metrics={"cost_growth": growth}, note=(
            "cost = SQLite VM instructions per operation; success: one grew more than 2x"))

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        points = HistoryGrowth._points(tm)
        w, _ = model_world(tm, seed, gas_estimates="cached")
        gas: dict[str, list[int]] = {}

        def run() -> Any:
            mid = w.result((yield from send_ok(w, "op", "Model", "register", salt("grown"))))
            for j in range(points[-1] + 1):  # the insider's history growth
                last = yield from w.send("dev", "Model", "fire", "train", mid,
                                         digest_of(seed, j), "", [])
                if j in points:
                    yield w.confirmed(last, 1)
                    for op, who, args in (("train", "dev", ("fire", "train", mid, salt(f"t{j}"),
                                                             "", [])),
                                          ("approve", "v0", ("fire", "verify", mid,
                                                             salt(f"e{j}"), "", [])),
                                          ("register", "op", ("register", salt(f"{j:06d}")))):
                        tx = yield from send_ok(w, who, "Model", *args)
                        gas.setdefault(op, []).append(tx.receipt.gas_used)  # type: ignore

        play(w, float(tm.parameters["horizon_s"]), run())
        if not gas or any(len(g) < len(points) for g in gas.values()):
            raise param_error(tm, f"horizon_s={tm.parameters['horizon_s']} too short for "
                              f"history {points}: raise it")
        growth = max(g[-1] - g[0] for g in gas.values())
        return outcome(growth > float(tm.parameters["tolerance_gas"]), metrics={
            "gas_growth": float(growth), "gas_train": float(gas["train"][-1])},
            note="gas from receipts, after the first and the last history length")


# -- D4 ----------------------------------------------------------------------------------------
@scenario("D4")
class JunkRegistrations:
    """An insider operator spams junk registrations at a rate; honest latency and gas."""

    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        db = central(tm, workdir, {"Model": Model})  # an honest team: d0
        honest, ref = db.register("d0", "Model", "honest"), db.register("d0", "Model", "ref")

        def costs(i: int) -> list[int]:
            return [vm_cost(db.conn, fn) for fn in (
                functools.partial(db.register, "d0", "Model", f"h{i}"),
                functools.partial(db.fire, "d0", "train", honest, f"d{i}"),
                functools.partial(db.admin_sql, "SELECT id FROM artefacts WHERE name='ref'"),
                functools.partial(db.history, ref))]

        # the insider's junk (baseline_junk rows); at attack_rate 0 nobody spams, on either
        # system (the baseline spammed its 5000 rows anyway: "prevented" beside no_attack)
        before = costs(0)
        junk = int(tm.parameters["baseline_junk"]) * (float(tm.parameters["attack_rate"]) > 0)
        for j in range(junk):  # the insider registers junk through the application
            db.register("spammer", "Model", f"junk{j}")
        growth = max(a / max(1, b) for a, b in zip(costs(1), before, strict=True))
        db.close()
        metrics, note = {"honest_cost_growth": growth}, ("baseline cost = SQLite VM "
                                                         "instructions of an honest operation")
        if not junk:  # no junk registered (or attack_rate 0): no attempt (no_attack)
            return trials_outcome([], metrics=metrics, note=note)
        return outcome(growth > 2.0, metrics=metrics, note=note)

    @staticmethod
    def _run(tm: ThreatModel, seed: int, rate: float) -> dict[str, Any]:
        p = tm.parameters
        prof = get_profile("consortium-fast").with_(block_gas_limit=int(p["block_gas_limit"]))
        start, end, horizon, window = (float(p[k]) for k in (
            "spam_start_s", "spam_end_s", "horizon_s", "monitor_window_s"))
        teams = [a.name for a in tm.cast() if a.name != "spammer"]
        w, ps = model_world(tm, seed, profile=prof, gas_estimates="cached",
                            engine=str(p["engine"]))
        mc, honest, junk = w.clients["Model"], [], []  # type: ignore[var-annotated]
        mids = {d: mc.register(ps[d].signer, salt(d)) for d in teams}
        for d in teams:  # trained once: every later train costs the same
            mc.fire(ps[d].signer, "train", mids[d], digest_of(d), "", [])
        w.mark_start()

        def loop(who: str, mean: float, t0: float, t1: float) -> Any:
            yield w.env.timeout(t0)
            while w.env.now < t1:
                yield w.env.timeout(w.rng.expovariate(1 / mean))
                n = len(honest) + len(junk)
                args: tuple[Any, ...] = ("register", salt(f"junk{n}")) if who == "spammer" else (
                    "fire", "train", mids[who], digest_of(who, n), "", [])
                (junk if who == "spammer" else honest).append(
                    (yield from w.send(who, "Model", *args)))

        for d in teams:
            w.env.process(loop(d, 10, 0, end + 20))
        if rate > 0:
            w.env.process(loop("spammer", 1 / rate, start, end))
        # any domain's node: Registered events per registrant in a sliding window
        seen: deque[tuple[float, str]] = deque()
        st: dict[str, Any] = {"read": 0, "flagged": None, "revoked": None}

        def rule(w: World, events: list[Any]) -> str | None:
            seen.extend((w.env.now, e.registrant) for e in events[st["read"]:]
                        if isinstance(e, Registered))
            st["read"] = len(events)
            while seen and seen[0][0] < w.env.now - window:
                seen.popleft()
            (who, c), = Counter(r for _, r in seen).most_common(1) or [("", 0)]
            st["flagged"] = who if c > int(p["monitor_quota"]) else None
            return f"{who} registered {c} artefacts in {window:g} s" if st["flagged"] else None

        alarms: list[Alarm] = []
        mon = watch(w, "Model", every=prof.block_time, rule=rule, alarms=alarms)

        def react() -> Any:  # the role admin reacts to the alarm
            yield mon
            tx = yield from send_ok(w, w.domain_admin(st["flagged"], "Model").name, "Model",
                                    "revoke", "operator", st["flagged"])
            st["revoked"] = tx.block.height if tx.block else None

        play(w, horizon, react())
        spam = [t for t in honest if start <= t.submitted <= end]
        ok = [t.block.height for t in junk if tx_outcome(t) == "ok" and t.block]
        right = st["flagged"] == ps["spammer"].address
        gas = [t.receipt.gas_used for t in honest if t.receipt]
        if not gas:
            raise param_error(tm, f"no honest transaction confirmed by horizon_s={horizon:g} "
                              f"at block_gas_limit={prof.block_gas_limit}: raise horizon_s, or "
                              "block_gas_limit to fit a transaction")
        # (no honest transaction in the spam window: no latency to compare, None)
        return {"p50": median([t.confirmed.get(1, horizon) - t.submitted for t in spam]),
                "sent": len(junk),
                "lost": sum(1 not in t.confirmed for t in spam), "junk": len(ok),
                "gas": statistics.fmean(gas),
                "after_revoke": sum(st["revoked"] is not None and h > st["revoked"] for h in ok),
                "alarms": alarms if right else [], "false": bool(alarms) and not right}

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        p = tm.parameters
        quiet = JunkRegistrations._run(tm, seed, 0.0)  # the same seed's work without spam
        att = JunkRegistrations._run(tm, seed, float(p["attack_rate"]))
        metrics = {"honest_latency_p50_s": att["p50"],
                   "honest_latency_p50_nospam_s": quiet["p50"],
                   "honest_gas_delta": att["gas"] - quiet["gas"],
                   "junk_records": float(att["junk"]),
                   "junk_after_revoke": float(att["after_revoke"]),
                   "false_flags": float(quiet["false"] or att["false"] or bool(quiet["alarms"]))}
        if not att["sent"]:  # no spam sent (attack_rate 0): no attempt (no_attack)
            return trials_outcome([], metrics=metrics)
        slowed = att["p50"] is not None and att["p50"] > 2 * max(quiet["p50"] or 0.0, 1e-9)
        return outcome(slowed or att["lost"] > 0,
                       attack_at=float(p["spam_start_s"]), alarms=att["alarms"], metrics=metrics)


# -- D5 ----------------------------------------------------------------------------------------
@scenario("D5")
class StaleNode:
    """A node operator freezes its view just before a model's withdrawal reaches it; consumers
    that read through it keep using the withdrawn model unless they check freshness."""

    @staticmethod
    def _plan(tm: ThreatModel, seed: int) -> tuple[float, float, int, float]:
        t_w, p = random.Random(seed).uniform(60, 120), tm.parameters
        return t_w, t_w + float(p["after_s"]), int(p["consumers"]), float(p["use_mean_s"])

    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        t_w, horizon, n, mean = StaleNode._plan(tm, seed)
        db = central(tm, workdir, {"Model": Model})
        aid = db.register("op", "Model", "m")
        db.fire("dev", "train", aid, "m")
        replica = sqlite3.connect(workdir / "replica.sqlite")
        db.conn.backup(replica)  # the admin serves a copy taken before the withdrawal
        db.fire("op", "withdraw", aid, at=t_w)
        rng, stale, uses = random.Random(seed + 1), 0, 0
        for _ in range(n):  # each consumer checks the model before every use
            t = t_w + rng.expovariate(1 / mean)
            while t < horizon:
                (state,), = replica.execute("SELECT state FROM artefacts WHERE id=?", (aid,))
                stale, t = stale + (state != "withdrawn"), t + rng.expovariate(1 / mean)
                uses += 1
        replica.close()
        db.close()
        metrics = {"stale_actions": float(stale)}
        if not uses:  # nobody read the stale copy: no attempt (no_attack), never "prevented"
            return trials_outcome([], metrics=metrics, note=StaleNode.unexposed(tm))
        return outcome(stale > 0, attack_at=t_w, metrics=metrics)

    @staticmethod
    def unexposed(tm: ThreatModel) -> str:
        """The note of a run in which no consumer used the model while the node lied."""
        return (f"no consumer used the model while the node served its stale view (after_s = "
                f"{tm.parameters['after_s']:g} s after the withdrawal): nothing to judge "
                "(lengthen after_s)")

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        t_w, horizon, n, mean = StaleNode._plan(tm, seed)
        p = tm.parameters
        w, ps = model_world(tm, seed)
        mid = trained(w, ps, digest_of("m"))
        rng = random.Random(seed * 7919 + 5)  # the nodes' own draws
        honest, st = RegionView(w, str(p["liar_region"]), rng), dict[str, Any](cut=10**9)

        class Liar:
            """Serves its honest view until the withdrawal's block arrives, then the parent of
            that block forever (a real, old head: nothing in it is false but its age)."""

            def head(self) -> Head:
                tx, h = st.get("tx"), honest.height_at()
                if tx is not None and tx.block is not None and h >= tx.block.height:
                    st["cut"] = min(st["cut"], tx.block.height - 1)
                    st.setdefault("frozen_at", honest.arrival(tx.block.height))
                return honest.block(min(h, st["cut"]))

            def block(self, number: int) -> Head:
                if number > self.head().number:
                    raise LookupError(number)
                return honest.block(number)

        liar = Liar()
        guard = FreshnessGuard(float(p["max_age_s"]), {"peer-co": RegionView(
            w, str(p["peer_region"]), rng)}, max_lag_blocks=0, max_future_s=5,
            clock=lambda: clock_ts(w))
        counts, alarms = Counter[str](), []  # type: Counter[str], list[Alarm]
        exposed = {"uses": 0}

        def lied() -> bool:  # the node's answer differs from what it would say if honest
            return "tx" in st and honest.includes(st["tx"]) and liar.head().number < \
                st["tx"].block.height

        def operator() -> Any:
            yield w.env.timeout(t_w)
            st["tx"] = yield from w.send("op", "Model", "fire", "withdraw", mid)

        def consumer() -> Any:
            switched = False
            while (yield w.env.timeout(w.rng.expovariate(1 / mean))) or w.env.now < horizon:
                counts["stale_actions_unguarded"] += lied()
                rep = guard.assess(liar)
                exposed["uses"] += "frozen_at" in st  # a use while the node lies
                bad = set(rep.kinds) if not switched else set()
                if bad == {"lag"}:  # an honest node catches up to the peer's head of now
                    yield w.env.timeout(float(p["catch_up_s"]))
                    bad = set(guard.assess(liar, at_least=max(rep.peer_heads.values())).kinds
                              ) - {"lag"}
                if bad:
                    switched = True
                    if "frozen_at" in st:
                        alarms.append(Alarm(w.env.now, "guard", ", ".join(sorted(bad))))
                    else:
                        counts["false_alarms"] += 1
                counts["stale_actions"] += not switched and lied()

        play(w, horizon, operator(), *(consumer() for _ in range(n)))
        metrics = {k: float(counts[k]) for k in (
            "stale_actions", "stale_actions_unguarded", "false_alarms")}
        # the node froze only once the withdrawal reached it: no use after that (a short
        # after_s), or no freeze by the end, is a run without an attempt, never "prevented"
        if not exposed["uses"]:
            return trials_outcome([], metrics=metrics, note=StaleNode.unexposed(tm))
        return outcome(counts["stale_actions"] > 0, attack_at=st.get("frozen_at"),
                       alarms=alarms, metrics=metrics)
