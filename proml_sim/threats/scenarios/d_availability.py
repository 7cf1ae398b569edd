"""Availability attacks by insiders: D2 withheld approvals, D3 history growth, D4 junk
registrations, D5 a node serving a stale view.

Each scenario runs against the centralised baseline (a simpy process over :class:`CentralDB`)
and against ProML (a :class:`~proml_sim.sim.World` on the real engine).  The helpers
:class:`RegionView` and :class:`Head` model what an honest node in one region knows of a
world's canonical chain; ``c_consensus`` uses them too.
"""

from __future__ import annotations

import bisect
import random
import re
import sqlite3
import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import simpy
from eth_utils.crypto import keccak

from proml_sim.compiler import compile_artefact
from proml_sim.ir import Registered, build_ir
from proml_sim.lifecycles import Model
from proml_sim.node.freshness import FreshnessGuard
from proml_sim.sim import REGIONS, NetworkModel, digest_of, domain_id, get_profile
from proml_sim.sim.world import GENESIS_TS, SimBlock, SimTx, World
from proml_sim.threats.baseline import CentralDB
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import outcome_of, salt, small_world

ZERO32 = b"\0" * 32


# -- what an honest node in a region knows of the chain ---------------------------------------
@dataclass(frozen=True)
class Head:
    """Header facts of a simulated block, as a node would report them."""

    number: int
    hash: bytes
    timestamp: float


GENESIS_HEAD = Head(0, ZERO32, float(GENESIS_TS))


class RegionView:
    """An honest node in ``region`` following ``world``'s canonical chain.

    A block reaches the node after the network's block delay from the producer's region
    (partitions included), drawn from the view's own ``rng`` so the world's draws are left
    alone; a block counts once its parent has arrived too.  The simulator's blocks have no
    header hash: a stand-in chains ``keccak(parent hash, height, producer, time, tx hashes)``.
    Timestamps are ``GENESIS_TS + simulated time``.  ``clock`` gives the node's current time
    (default: the world's simulated time); ``network`` replaces the world's network model (a
    node cut off from the world's producers by a partition the world itself does not know).
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
        canon = self.world.canon
        i = 0  # first index whose block changed (a reorg replaced it) or is new
        while i < len(self._blocks) and i < len(canon) and self._blocks[i] is canon[i]:
            i += 1
        del self._blocks[i:], self._arrival[i:], self._hash[i:]
        net = self.network
        for b in canon[i:]:
            d = net.block_delay(b.region, self.region, self.rng)
            t = net.deliver_at(b.region, self.region, b.time, d)
            parent_t = self._arrival[-1] if self._arrival else 0.0
            parent_h = self._hash[-1] if self._hash else ZERO32
            txs = b"".join(t_.hash for t_ in b.txs)
            self._blocks.append(b)
            self._arrival.append(max(t, parent_t))
            self._hash.append(keccak(parent_h + b.height.to_bytes(8, "big") + b.producer.encode()
                                     + int(b.time * 1000).to_bytes(8, "big") + txs))

    def arrival(self, height: int) -> float:
        """When the node has the canonical block at ``height`` (and all before it)."""
        self._fill()
        return self._arrival[height - 1]

    def height_at(self, now: float | None = None) -> int:
        self._fill()
        now = self.clock() if now is None else now
        return bisect.bisect_right(self._arrival, now)

    def _head_of(self, height: int) -> Head:
        if height <= 0:
            return GENESIS_HEAD
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


def _vm_counter(conn: sqlite3.Connection) -> Callable[[Callable[[], Any]], int]:
    """SQLite virtual-machine instructions an operation executes: a deterministic cost."""
    n = [0]

    def tick() -> int:
        n[0] += 1
        return 0

    conn.set_progress_handler(tick, 1)

    def cost(fn: Callable[[], Any]) -> int:
        n[0] = 0
        fn()
        return n[0]

    return cost


def _median(xs: list[float], default: float = float("nan")) -> float:
    return statistics.median(xs) if xs else default


# -- D2 ----------------------------------------------------------------------------------------
def _verify_k() -> int:
    return build_ir(Model).transition("verify").approvals


@scenario("D2", limit="w >= n-k+1 withholding approvers stall a k-of-n step until someone "
                     "escalates; the stall is visible to every domain, escalation is governance")
class WithholdApproval:
    """w of n verifiers never approve; the requester's timeout flags the stall; the role admin
    escalates by granting the verifier role to standby verifiers of other domains."""

    @staticmethod
    def _params(tm: ThreatModel) -> tuple[int, int, float, float, float]:
        p = tm.parameters
        return (int(p.get("verifiers", 4)), int(p.get("attack_w", 3)),
                float(p.get("timeout_s", 600)), float(p.get("approval_mean_s", 120)),
                float(p.get("horizon_s", 3600)))

    @staticmethod
    def _outcome(res: dict[int, dict[str, Any]], attack_w: int, horizon: float) -> Outcome:
        ws = sorted(res)
        h = res[attack_w]
        false_alarms = sum(1 for w_ in ws if res[w_]["flagged"] is not None and not
                           res[w_]["withheld_stall"])
        lat = [(float(w_), res[w_]["latency"] if res[w_]["latency"] is not None else horizon)
               for w_ in ws]
        return Outcome(
            h["stalled"], h["flagged"] is not None, h["flagged"],
            metrics={"completion_rate": float(h["latency"] is not None),
                     "latency_s": h["latency"] if h["latency"] is not None else horizon,
                     "stall_detect_s": h["flagged"] if h["flagged"] is not None else horizon,
                     "stall_false_alarms": float(false_alarms)},
            series={"completion_before_timeout_by_w": [(float(w_), float(not res[w_]["stalled"]))
                                                       for w_ in ws],
                    "completion_by_w": [(float(w_), float(res[w_]["latency"] is not None))
                                        for w_ in ws],
                    "latency_by_w": lat})

    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        n, attack_w, timeout, mean, horizon = WithholdApproval._params(tm)
        k = _verify_k()
        rng = random.Random(seed)
        env = simpy.Environment()
        # the database is run by verif-0's domain: its admin is the first withholder
        db = CentralDB(workdir / "p.sqlite", {"Model": Model}, admin="v0")
        db.grant("op", "Model", "operator", "client-co")
        db.grant("dev", "Model", "developer", "dev-co")
        for i in range(n):
            db.grant(f"v{i}", "Model", "verifier", f"verif-{i}")
        res: dict[int, dict[str, Any]] = {}

        def run(w_: int):
            aid = db.register("op", "Model", f"m{w_}", at=env.now)
            db.fire("dev", "train", aid, digest_of("model", w_).hex(), at=env.now)
            t0 = env.now
            ev = digest_of("evaluation", w_).hex()
            r = res[w_] = {"stalled": False, "flagged": None, "latency": None,
                           "withheld_stall": n - w_ < k}

            def approver(name: str):
                yield env.timeout(rng.expovariate(1 / mean))
                if db.admin_sql("SELECT state FROM artefacts WHERE id=?", (aid,))[0][0] != \
                        "trained":
                    return
                if db.fire(name, "verify", aid, ev, at=env.now):
                    r["latency"] = env.now - t0

            for i in range(w_, n):
                env.process(approver(f"v{i}"))
            yield env.timeout(timeout)
            if r["latency"] is None:
                r["stalled"] = True
                r["flagged"] = env.now - t0  # the requester's timeout
                # escalation needs the database admin (v0), a withholder whenever w >= 1
                if w_ == 0:
                    for j in range(k):
                        db.grant(f"s{j}", "Model", "verifier", f"standby-{j}")
                        env.process(approver(f"s{j}"))

        for w_ in range(n + 1):
            env.process(run(w_))
        env.run(until=horizon)
        db.close()
        return WithholdApproval._outcome(res, attack_w, horizon)

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        n, attack_w, timeout, mean, horizon = WithholdApproval._params(tm)
        k = _verify_k()
        people = {"op": ("client-co", "eu"), "dev": ("dev-co", "us"),
                  **{f"v{i}": (f"verif-{i}", REGIONS[i % 3]) for i in range(n)},
                  **{f"s{j}": (f"standby-{j}", REGIONS[(j + 1) % 3]) for j in range(k)}}
        grants = [("op", "Model", "operator"), ("dev", "Model", "developer"),
                  *((f"v{i}", "Model", "verifier") for i in range(n))]
        # standby verifiers' domains may hold the verifier role; their admins enrol them later
        w, ps = small_world(seed, people, grants,
                            allow=[(f"s{j}", "Model", "verifier") for j in range(k)])
        mc = w.clients["Model"]
        res: dict[int, dict[str, Any]] = {}

        def run(w_: int):
            tx = yield from w.send(ps["op"], "Model", "register", salt(f"m{w_}"))
            yield w.confirmed(tx, 1)
            mid = w.result(tx)
            tx = yield from w.send(ps["dev"], "Model", "fire", "train", mid,
                                   digest_of("model", w_), "", [])
            yield w.confirmed(tx, 1)
            t0 = w.env.now
            ev = digest_of("evaluation", w_)
            r = res[w_] = {"stalled": False, "flagged": None, "latency": None,
                           "withheld_stall": n - w_ < k, "approved": set()}

            def approver(name: str):
                yield w.env.timeout(w.rng.expovariate(1 / mean))
                if mc.state(mid) != "trained":
                    return
                atx = yield from w.send(ps[name], "Model", "fire", "verify", mid, ev, "", [])
                yield w.confirmed(atx, 1)
                if outcome_of(w, atx) == "ok":
                    r["approved"].add(ps[name].domain)
                    if w.result(atx).fired:
                        r["latency"] = w.env.now - t0

            for i in range(w_, n):
                w.env.process(approver(f"v{i}"))
            yield w.env.timeout(timeout)
            if mc.state(mid) != "verified":
                # the requester's node sees the stall on chain: fewer than k approvals
                r["stalled"] = True
                r["flagged"] = w.env.now - t0
                need = k - len(r["approved"])
                for j in range(max(0, need)):  # escalation: standbys' admins enrol them
                    s = ps[f"s{j}"]
                    gtx = yield from w.send(w.domain_admin(s), "Model", "grant", "verifier",
                                            s.address, domain_id(s.domain))
                    yield w.confirmed(gtx, 1)
                    w.env.process(approver(f"s{j}"))

        for w_ in range(n + 1):
            w.env.process(run(w_))
        w.run(horizon, drain=False)
        w.finish()
        return WithholdApproval._outcome(res, attack_w, horizon)


# -- D3 ----------------------------------------------------------------------------------------
def _loop_bounds(source: str) -> list[int]:
    """The bound of every ``for`` loop of a generated Vyper contract (DynArray capacity or
    range bound); a loop whose bound cannot be read is reported as -1."""
    bounds = []
    for m in re.finditer(r"^\s*for\s+\w+\s*:\s*[\w\[\], ]+\s+in\s+(.+):\s*$", source, re.M):
        it = m.group(1).strip()
        rng_ = re.match(r"range\((?:[^,]+,\s*)?(\d+)\)", it)
        if rng_:
            bounds.append(int(rng_.group(1)))
            continue
        name = it.split(".")[-1].split("[")[0]
        decl = re.search(rf"\b{re.escape(name)}\s*:\s*(?:HashMap\[[^,]+,\s*)?DynArray\[[^,]+,"
                         r"\s*(\d+)\]", source)
        bounds.append(int(decl.group(1)) if decl else -1)
    return bounds


@scenario("D3")
class HistoryGrowth:
    """An insider grows an artefact's history; do operations get dearer?"""

    @staticmethod
    def _points(tm: ThreatModel) -> list[int]:
        return [int(x) for x in tm.parameters.get("history", [1, 10, 100, 1000])]

    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        points = HistoryGrowth._points(tm)
        env = simpy.Environment()
        dbs = {}
        for kind in ("as_built", "without_index"):
            db = CentralDB(workdir / f"{kind}.sqlite", {"Model": Model}, admin="db-admin")
            for who, role, dom in (("op", "operator", "client-co"), ("dev", "developer", "dev-co"),
                                   ("v0", "verifier", "verif-0")):
                db.grant(who, "Model", role, dom)
            db.admin_sql("PRAGMA synchronous=OFF")  # speed only: VM instructions are the same
            if kind == "without_index":  # ablation: what the history index buys the baseline
                db.admin_sql("DROP INDEX history_by_artefact")
            dbs[kind] = (db, _vm_counter(db.conn))
        series: dict[str, list[tuple[float, float]]] = {}

        def run():
            state = {kind: {"grown": db.register("op", "Model", "grown"),
                            "other": db.register("op", "Model", "other")}
                     for kind, (db, _) in dbs.items()}
            done = 0
            for L in points:
                for kind, (db, _) in dbs.items():
                    for j in range(done, L):
                        db.fire("dev", "train", state[kind]["grown"],
                                digest_of(seed, "g", j).hex(), at=env.now)
                yield env.timeout(1)
                for kind, (db, cost) in dbs.items():
                    g, other = state[kind]["grown"], state[kind]["other"]
                    ops: dict[str, Callable[..., Any]] = {
                        "train": lambda db=db, g=g, L=L: db.fire(
                            "dev", "train", g, digest_of(seed, L).hex()),
                        "approve": lambda db=db, g=g, L=L: db.fire(
                            "v0", "verify", g, digest_of("ev", L).hex()),
                        "register": lambda db=db, L=L: db.register("op", "Model", f"fresh{L}"),
                        "read_history": lambda db=db, other=other: db.history(other),
                    }
                    for op, fn in ops.items():
                        series.setdefault(f"{op}_steps_{kind}_by_L", []).append(
                            (float(L), float(cost(fn))))
                done = L + 1

        env.process(run())
        env.run()
        for db, _ in dbs.values():
            db.close()
        growth = {k: dict(v)[float(points[-1])] / max(1.0, dict(v)[float(points[1])])
                  for k, v in series.items()}
        worst = max(growth[k] for k in growth if k.endswith("_as_built_by_L"))
        return Outcome(worst > 2.0, False, None, series=series,
                       metrics={"cost_growth_as_built": worst,
                                "cost_growth_without_index": max(
                                    growth[k] for k in growth
                                    if k.endswith("_without_index_by_L"))},
                       note="baseline cost = SQLite VM instructions per operation: with the "
                            "baseline's index on history(artefact) every operation stays flat; "
                            "without it (ablation) reading another artefact's history scans "
                            "the whole table and grows with the attacker's history")

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        points = HistoryGrowth._points(tm)
        tolerance = float(tm.parameters.get("tolerance_gas", 200))
        people = {"op": ("client-co", "eu"), "dev": ("dev-co", "us"), "v0": ("verif-0", "asia")}
        grants = [("op", "Model", "operator"), ("dev", "Model", "developer"),
                  ("v0", "Model", "verifier")]
        w, ps = small_world(seed, people, grants, gas_estimates="cached")
        gas: dict[int, dict[str, int]] = {}

        def gas_of(tx: SimTx) -> int:
            assert tx.receipt is not None and tx.receipt.status, outcome_of(w, tx)
            return tx.receipt.gas_used

        def run():
            tx = yield from w.send(ps["op"], "Model", "register", salt("grown"))
            yield w.confirmed(tx, 1)
            mid = w.result(tx)
            done = 0
            for L in points:
                last = None
                for j in range(done, L):  # the insider's history growth
                    last = yield from w.send(ps["dev"], "Model", "fire", "train", mid,
                                             digest_of(seed, "g", j), "", [])
                if last is not None:
                    yield w.confirmed(last, 1)
                t_train = yield from w.send(ps["dev"], "Model", "fire", "train", mid,
                                            digest_of(seed, L), "", [])
                yield w.confirmed(t_train, 1)
                t_appr = yield from w.send(ps["v0"], "Model", "fire", "verify", mid,
                                           digest_of("ev", L), "", [])
                # same-length salts: calldata costs 4/16 gas per zero/non-zero byte
                t_reg = yield from w.send(ps["op"], "Model", "register", salt(f"fresh{L:06d}"))
                yield w.confirmed(t_appr, 1) & w.confirmed(t_reg, 1)
                t_first = yield from w.send(ps["dev"], "Model", "fire", "train", w.result(t_reg),
                                            digest_of(seed, "f", L), "", [])
                yield w.confirmed(t_first, 1)
                gas[L] = {"train": gas_of(t_train), "approve": gas_of(t_appr),
                          "register": gas_of(t_reg), "first_train": gas_of(t_first)}
                done = L + 1

        w.env.process(run())
        w.run(float(tm.parameters.get("horizon_s", 600)), drain=False)
        w.finish()
        if len(gas) < len(points):
            raise RuntimeError(f"D3: only {sorted(gas)} of {points} measured; raise horizon_s")
        ops = list(gas[points[0]])
        series = {f"gas_{op}_by_L": [(float(L), float(gas[L][op])) for L in points]
                  for op in ops}
        growth = max(gas[points[-1]][op] - gas[points[1]][op] for op in ops)
        spread = max(max(gas[L][op] for L in points) - min(gas[L][op] for L in points)
                     for op in ops)
        bounds = _loop_bounds(compile_artefact(Model).source)
        return Outcome(growth > tolerance, False, None, series=series,
                       metrics={"gas_growth": float(growth), "gas_spread": float(spread),
                                "gas_train": float(gas[points[-1]]["train"]),
                                "loops": float(len(bounds)),
                                "max_loop_bound": float(max(bounds, default=0))},
                       note="gas from receipts; the contract's only loop walks one approval "
                            "key's approvers, at most 16 (Vyper loops are bounded)")


# -- D4 ----------------------------------------------------------------------------------------
@scenario("D4", limit="no quota in the contracts: an insider with a registration role can fill "
                     "blocks; the spam is attributed and the role revoked, but block space "
                     "stays contested until producers or fees limit the spammer")
class JunkRegistrations:
    """An insider operator spams junk registrations at a rate; honest latency and gas."""

    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        p = tm.parameters
        volumes = [int(x) for x in p.get("baseline_junk", [0, 100, 1000, 10000])]
        head = int(p.get("baseline_attack_junk", volumes[-1]))
        rng = random.Random(seed)
        env = simpy.Environment()
        db = CentralDB(workdir / "p.sqlite", {"Model": Model}, admin="db-admin")
        db.grant("op", "Model", "operator", "client-co")
        db.grant("dev", "Model", "developer", "dev-co")
        cost = _vm_counter(db.conn)
        series: dict[str, list[tuple[float, float]]] = {}

        def run():
            honest = db.register("op", "Model", "honest")
            # read back an artefact whose own history stays the same, so that only the junk
            # can change the cost of reading it (honest's history grows by a train per round)
            ref = db.register("op", "Model", "reference")
            inserted = 0
            for i, vol in enumerate(volumes):
                # the admin inserts junk rows under made-up owners (no trace of who did it)
                for j in range(inserted, vol):
                    owner = f"user{rng.randrange(10**6)}"
                    aid = f"Model:{owner}:junk{j}"
                    db.conn.execute("INSERT INTO artefacts VALUES (?, 'Model', ?, ?, "
                                    "'requested', 1, '')", (aid, f"junk{j}", owner))
                    db.conn.execute("INSERT INTO history (artefact, step, actor, version, digest,"
                                    " at) VALUES (?, 'register', ?, 1, '', ?)", (aid, owner,
                                                                                env.now))
                db.conn.commit()
                inserted = vol
                yield env.timeout(1)
                ops: dict[str, Callable[..., Any]] = {
                    "register": lambda i=i: db.register("op", "Model", f"h{i}"),
                    "train": lambda i=i: db.fire("dev", "train", honest, digest_of(i).hex()),
                    "find_by_name": lambda: db.admin_sql(
                        "SELECT id FROM artefacts WHERE name=?", ("honest",)),
                    "read_history": lambda: db.history(ref),
                }
                for op, fn in ops.items():
                    series.setdefault(f"{op}_steps_by_junk", []).append(
                        (float(vol), float(cost(fn))))

        env.process(run())
        env.run()
        db.close()
        at = {op: dict(v) for op, v in series.items()}
        worst = max(at[op][float(head)] / max(1.0, at[op][float(volumes[0])]) for op in at)
        return Outcome(worst > 2.0, False, None, series=series,
                       metrics={"honest_cost_growth": worst, "junk_records": float(head)},
                       note="baseline cost = SQLite VM instructions of an honest operation; "
                            "junk rows carry forged owners, so the spammer is not attributable")

    @staticmethod
    def _run(seed: int, rate: float, p: dict[str, Any]) -> dict[str, Any]:
        prof = get_profile("consortium-fast").with_(
            block_gas_limit=int(p.get("block_gas_limit", 1_500_000)))
        teams = int(p.get("honest_teams", 3))
        start, end = float(p.get("spam_start_s", 20)), float(p.get("spam_end_s", 80))
        horizon = float(p.get("horizon_s", 200))
        quota, window = int(p.get("monitor_quota", 20)), float(p.get("monitor_window_s", 30))
        people = {"spammer": ("spam-co", "us"), "op2": ("client-co", "eu"),
                  **{f"d{i}": (f"dev-{i}", REGIONS[i % 3]) for i in range(teams)}}
        grants = [("spammer", "Model", "operator"), ("op2", "Model", "operator"),
                  *((f"d{i}", "Model", "developer") for i in range(teams))]
        w, ps = small_world(seed, people, grants, profile=prof, gas_estimates="cached",
                            engine=str(p.get("engine", "pyevm")))
        mc = w.clients["Model"]
        models = {f"d{i}": mc.register(ps["op2"].signer, salt(f"team{i}")) for i in range(teams)}
        w.mark_start()
        honest: list[SimTx] = []
        junk: list[SimTx] = []
        st: dict[str, Any] = {"flagged": None, "revoked_at_block": None}

        def team(name: str):
            n = 0
            while w.env.now < end + 20:
                yield w.env.timeout(w.rng.expovariate(1 / 10))
                n += 1
                honest.append((yield from w.send(ps[name], "Model", "fire", "train",
                                                 models[name], digest_of(name, n), "", [],
                                                 later=n > 1)))

        def registrar():
            n = 0
            while w.env.now < end + 20:
                yield w.env.timeout(w.rng.expovariate(1 / 30))
                n += 1
                honest.append((yield from w.send(ps["op2"], "Model", "register",
                                                 salt(f"honest{n}"))))

        def spammer():
            yield w.env.timeout(start)
            n = 0
            while w.env.now < end:
                yield w.env.timeout(w.rng.expovariate(rate))
                n += 1
                junk.append((yield from w.send(ps["spammer"], "Model", "register",
                                               salt(f"junk{n}"))))

        def monitor():  # any domain's node: registrations per registrant in a sliding window
            seen: deque[tuple[float, str]] = deque()
            last = w.backend.head().number  # type: ignore[union-attr]
            while True:
                yield w.env.timeout(prof.block_time)
                head = w.backend.head().number  # type: ignore[union-attr]
                for ev in mc.events(last + 1, head) if head > last else []:
                    if isinstance(ev, Registered):
                        seen.append((w.env.now, ev.registrant))
                last = head
                while seen and seen[0][0] < w.env.now - window:
                    seen.popleft()
                counts: dict[str, int] = {}
                for _, who in seen:
                    counts[who] = counts.get(who, 0) + 1
                over = [a for a, c in counts.items() if c > quota]
                if over and st["flagged"] is None:
                    st["flagged"] = w.env.now
                    st["flagged_who"] = over
                    tx = yield from w.send(w.domain_admin(over[0], "Model"), "Model", "revoke",
                                           "operator", over[0])
                    yield w.confirmed(tx, 1)
                    st["revoked_at_block"] = tx.block.height if tx.block else None

        for i in range(teams):
            w.env.process(team(f"d{i}"))
        w.env.process(registrar())
        if rate > 0:
            w.env.process(spammer())
        w.env.process(monitor())
        w.run(horizon, drain=False)
        w.finish()
        in_window = [t for t in honest if start <= t.submitted <= end]
        lat = [(t.confirmed[1] - t.submitted) if 1 in t.confirmed else horizon - t.submitted
               for t in in_window]
        lost = sum(1 for t in in_window if 1 not in t.confirmed)
        # a later train (trained -> trained) of a team's model; its first one costs more
        train_gas = [t.receipt.gas_used for t in honest
                     if t.receipt is not None and t.meta.get("later")]
        accepted = [t for t in junk if outcome_of(w, t) == "ok"]
        rev = st["revoked_at_block"]
        return {
            "latency_p50": _median(lat, 0.0),
            "latency_p95": sorted(lat)[int(0.95 * (len(lat) - 1))] if lat else 0.0,
            "honest_lost": lost, "honest_n": len(in_window),
            "train_gas": statistics.fmean(train_gas) if train_gas else float("nan"),
            "junk_sent": len(junk), "junk_records": len(accepted),
            "junk_after_revoke": sum(1 for t in accepted if rev is not None and t.block is not
                                     None and t.block.height > rev),
            "flagged": st["flagged"], "flagged_right": st.get("flagged_who") == [
                ps["spammer"].address] if st["flagged"] is not None else None,
        }

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        p = tm.parameters
        rates = [float(x) for x in p.get("spam_rates", [0, 5, 10, 20])]
        attack = float(p.get("attack_rate", rates[-1]))
        runs = {r: JunkRegistrations._run(seed * 100 + i, r, p) for i, r in enumerate(rates)}
        base, att = runs[rates[0]], runs[attack]
        start = float(p.get("spam_start_s", 20))
        degraded = att["latency_p50"] > 2 * max(base["latency_p50"], 1e-9) or att["honest_lost"]
        detected = att["flagged"] is not None and bool(att["flagged_right"])
        ttd = att["flagged"] - start if detected else None
        return Outcome(
            bool(degraded), detected, ttd,
            metrics={"honest_latency_p50_s": att["latency_p50"],
                     "honest_latency_p95_s": att["latency_p95"],
                     "honest_latency_p50_nospam_s": base["latency_p50"],
                     "honest_gas_delta": att["train_gas"] - base["train_gas"],
                     "junk_records": float(att["junk_records"]),
                     "junk_after_revoke": float(att["junk_after_revoke"]),
                     "false_flags": float(sum(1 for r in rates if r == 0 and
                                              runs[r]["flagged"] is not None))},
            series={"honest_latency_p50_by_rate": [(r, runs[r]["latency_p50"]) for r in rates],
                    "honest_latency_p95_by_rate": [(r, runs[r]["latency_p95"]) for r in rates],
                    "honest_train_gas_by_rate": [(r, runs[r]["train_gas"]) for r in rates],
                    "junk_records_by_rate": [(r, float(runs[r]["junk_records"]))
                                             for r in rates]})


# -- D5 ----------------------------------------------------------------------------------------
@scenario("D5", limit="a withheld block that no peer has yet is invisible to the guard: a use "
                     "within that propagation window acts on the lie; the node is flagged next")
class StaleNode:
    """A node operator freezes its view just before a model's withdrawal reaches it; consumers
    that read through it keep using the withdrawn model unless they check freshness."""

    @staticmethod
    def _plan(tm: ThreatModel, seed: int) -> tuple[float, float, int, float]:
        rng = random.Random(seed)
        t_w = rng.uniform(60, 120)
        return (t_w, t_w + float(tm.parameters.get("after_s", 120)),
                int(tm.parameters.get("consumers", 4)), float(tm.parameters.get("use_mean_s", 10)))

    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        t_w, horizon, n, mean = StaleNode._plan(tm, seed)
        rng = random.Random(seed + 1)
        env = simpy.Environment()
        db = CentralDB(workdir / "primary.sqlite", {"Model": Model}, admin="node-admin")
        db.grant("op", "Model", "operator", "client-co")
        db.grant("dev", "Model", "developer", "dev-co")
        aid = db.register("op", "Model", "m")
        db.fire("dev", "train", aid, digest_of("m").hex())
        st: dict[str, Any] = {}

        def operator():
            yield env.timeout(t_w - 1)
            # the admin keeps serving a copy taken before the withdrawal (a replica it stopped)
            replica = sqlite3.connect(workdir / "replica.sqlite")
            db.conn.backup(replica)
            st["replica"] = replica
            yield env.timeout(1)
            db.fire("op", "withdraw", aid, at=env.now)
            st["withdrawn_at"] = env.now

        def state(conn: sqlite3.Connection) -> str:
            return str(conn.execute("SELECT state FROM artefacts WHERE id=?", (aid,))
                       .fetchone()[0])

        stale = [0]

        def consumer():
            while True:
                yield env.timeout(rng.expovariate(1 / mean))
                if env.now >= horizon:
                    return
                served = state(st.get("replica", db.conn))
                if served != "withdrawn" and state(db.conn) == "withdrawn":
                    stale[0] += 1  # nothing else to compare with: the consumer uses it

        env.process(operator())
        for _ in range(n):
            env.process(consumer())
        env.run(until=horizon)
        st["replica"].close()
        db.close()
        return Outcome(stale[0] > 0, False, None,
                       metrics={"stale_actions": float(stale[0]),
                                "stale_actions_unguarded": float(stale[0])})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        t_w, horizon, n, mean = StaleNode._plan(tm, seed)
        p = tm.parameters
        max_age, catch_up = float(p.get("max_age_s", 10)), float(p.get("catch_up_s", 2))
        liar_region, peer_region = str(p.get("liar_region", "us")), str(p.get("peer_region",
                                                                              "us"))
        regions = [REGIONS[(i + 1) % 3] for i in range(n)]  # the consumers' own
        people = {"op": ("client-co", "eu"), "dev": ("dev-co", "us"),
                  **{f"c{i}": (f"cons-{i}", regions[i]) for i in range(n)}}
        w, ps = small_world(seed, people, [("op", "Model", "operator"),
                                           ("dev", "Model", "developer")])
        mc = w.clients["Model"]
        mid = mc.register(ps["op"].signer, salt("m"))
        mc.fire(ps["dev"].signer, "train", mid, digest_of("m"), "", [])
        w.mark_start()
        rng = random.Random(seed * 7919 + 5)  # the nodes' own draws
        views = {r: RegionView(w, r, rng) for r in REGIONS}
        st: dict[str, Any] = {"detected": None}

        class Liar:
            """Serves its honest view until the withdrawal's block arrives, then the parent of
            that block forever (a real, old head: nothing in it is false but its age)."""

            def _height(self) -> int:
                h = views[liar_region].height_at()
                tx: SimTx | None = st.get("tx")
                if tx is not None and tx.block is not None and h >= tx.block.height:
                    st.setdefault("frozen_at", views[liar_region].arrival(tx.block.height))
                    return tx.block.height - 1
                return h

            def head(self) -> Head:
                return views[liar_region].block(self._height())

            def block(self, number: int) -> Head:
                if number > self._height():
                    raise LookupError(number)
                return views[liar_region].block(number)

            def withdrawn(self) -> bool:
                tx = st.get("tx")
                return tx is not None and tx.block is not None and \
                    self._height() >= tx.block.height

        liar = Liar()
        peer = RegionView(w, peer_region, rng)  # another domain's honest node
        guard = FreshnessGuard(max_age, {"peer-co": peer}, max_lag_blocks=0,
                               max_future_s=5, clock=lambda: clock_ts(w))

        def withdrawn_in(view: RegionView) -> bool:
            tx = st.get("tx")
            return tx is not None and view.includes(tx)

        counts = {"uses": 0, "stale": 0, "stale_unguarded": 0, "false_alarms": 0}

        def operator():
            yield w.env.timeout(t_w)
            st["tx"] = yield from w.send(ps["op"], "Model", "fire", "withdraw", mid)

        def lied() -> bool:  # the node's answer differs from what it would say if honest
            return not liar.withdrawn() and withdrawn_in(views[liar_region])

        def consumer(i: int):
            switched = False
            while True:
                yield w.env.timeout(w.rng.expovariate(1 / mean))
                if w.env.now >= horizon:
                    return
                counts["uses"] += 1
                if lied():
                    counts["stale_unguarded"] += 1  # a consumer without the guard uses it now
                if not switched:
                    rep = guard.assess(liar)
                    bad = set(rep.kinds)
                    if bad == {"lag"}:
                        # give the node catch_up_s to reach the peer's head of now: an honest
                        # node does (the peer may have moved on again), a withholding one not
                        target = max(rep.peer_heads.values())
                        yield w.env.timeout(catch_up)
                        bad = set(guard.assess(liar, at_least=target).kinds) - {"lag"}
                    if bad:
                        switched = True
                        if "frozen_at" in st:
                            if st["detected"] is None:
                                st["detected"] = w.env.now
                        else:
                            counts["false_alarms"] += 1
                if not switched and lied():
                    counts["stale"] += 1  # it uses the withdrawn model on the node's word

        w.env.process(operator())
        for i in range(n):
            w.env.process(consumer(i))
        w.run(horizon, drain=False)
        w.finish()
        frozen = st.get("frozen_at")
        ttd = (st["detected"] - frozen) if st["detected"] is not None and frozen is not None \
            else None
        return Outcome(counts["stale"] > 0, ttd is not None, ttd,
                       metrics={"stale_actions": float(counts["stale"]),
                                "stale_actions_unguarded": float(counts["stale_unguarded"]),
                                "uses": float(counts["uses"]),
                                "false_alarms": float(counts["false_alarms"]),
                                "detect_s": ttd if ttd is not None else horizon - (frozen or 0)})
