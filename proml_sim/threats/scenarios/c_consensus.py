"""Consensus-level attacks: C1 a private-branch attacker's reorg (``proml_sim.sim.forks``)
removes a record a consumer acted on, C2 equivocating PoA sealers show two partitions two
histories, C3 a producer skews timestamps at deadlines.

The baseline is one database: it has no forks (C1 is out of its scope), but its admin can show
two groups two views (C2) and write any time into a row (C3).
"""

from __future__ import annotations

import random
import shutil
import statistics
from pathlib import Path
from typing import Any

import simpy

from proml_sim.lifecycles import Model
from proml_sim.node.freshness import FreshnessGuard
from proml_sim.sim import (
    MAX_FUTURE_S,
    REGIONS,
    NetworkModel,
    Partition,
    Producer,
    SimBlock,
    SimTx,
    World,
    digest_of,
    get_profile,
)
from proml_sim.sim.forks import ConfirmationPolicy, PrivateBranch, final_height
from proml_sim.sim.profiles import ChainProfile
from proml_sim.threats.baseline import CentralDB
from proml_sim.threats.catalogue import CatalogueError, ThreatModel
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import salt, small_world
from proml_sim.threats.scenarios.d_availability import Head, RegionView, clock_ts


def _median(xs: list[float], default: float = float("nan")) -> float:
    return statistics.median(xs) if xs else default


# -- C1 ----------------------------------------------------------------------------------------
class ForkChoiceView:
    """A consumer's node: it adopts the world's canonical chain as blocks reach it, the longest
    chain it has fully received, keeping the block it saw first on a tie (so it may hold a block
    the world has already orphaned until the next block reaches it).  Arrival delays come from
    the view's own ``rng``."""

    def __init__(self, world: World, region: str, rng: random.Random) -> None:
        self.world, self.region, self.rng = world, region, rng
        self.view: list[SimBlock] = []
        self.txs: dict[int, tuple[SimTx, ...]] = {}
        self._arrival: dict[int, float] = {}

    def arrival(self, b: SimBlock) -> float:
        t = self._arrival.get(id(b))
        if t is None:
            net = self.world.network
            d = net.block_delay(b.region, self.region, self.rng)
            sent = max(b.time, b.published)  # a private block leaves at its release
            t = self._arrival[id(b)] = net.deliver_at(b.region, self.region, sent, d)
        return t

    def update(self, now: float) -> list[SimBlock]:
        """Follow the chain up to ``now``; return the blocks this node dropped (a reorg)."""
        canon = self.world.canon
        i = max(0, len(self.view) - 64)  # reorgs deeper than 64 blocks are not followed
        while i < len(self.view) and i < len(canon) and self.view[i] is canon[i]:
            i += 1
        p = i
        while p < len(canon) and self.arrival(canon[p]) <= now:
            p += 1
        if p <= len(self.view):
            return []  # nothing longer arrived: keep what was seen first
        dropped = self.view[i:]
        for b in canon[i:p]:
            self.txs.setdefault(id(b), tuple(b.txs))  # fresh blocks still list their txs
        self.view = list(canon[:p])
        return dropped


def c1_settings(p: dict[str, Any]) -> tuple[float, list[ConfirmationPolicy], ChainProfile,
                                             PrivateBranch]:
    """C1's attacker share, consumer policies, chain profile and attacker from its parameters
    (a bad value raises ValueError naming it)."""
    q = float(p.get("attacker_share", 0.3))
    ConfirmationPolicy.parse(str(p.get("defence_policy", "L@12")))
    policies = [ConfirmationPolicy.parse(x) for x in p.get("policies", ["L@1", "L@12"])]
    target = ConfirmationPolicy.parse(str(p.get("attack_policy", p.get("defence_policy",
                                                                       "L@12"))))
    prof = get_profile(str(p.get("profile", "ropsten-2022")))
    if prof.consensus == "fixed":
        raise ValueError(f"profile {prof.name!r} has one producer: no forks to attack; choose "
                         "a pow, pos or poa profile")
    if "block_time" in p:
        prof = prof.with_(block_time=float(p["block_time"]))
    prof = prof.with_(stale_rate=float(p.get("stale_rate", prof.stale_rate)),
                      empty_block_rate=0.0)
    z = target.k if target.kind == "depth" else (
        prof.finality_time_blocks() if prof.consensus == "pow" else 10**6)
    atk = PrivateBranch(q, confirmations=int(z or 1), censor=frozenset({"victim-co"}),
                        margin_s=float(p.get("release_margin_s", 2.0)))
    return q, policies, prof, atk


def _checked(tm: ThreatModel, check: Any) -> None:
    """Run ``check`` on the scenario's parameters; a bad value becomes a CatalogueError."""
    try:
        check()
    except CatalogueError:
        raise
    except (ValueError, TypeError) as exc:
        raise CatalogueError(f"{tm.path or tm.id}: [parameters] {exc}; fix the value in the "
                             "scenario file") from None


def reorg_attack(seed: int, p: dict[str, Any]) -> dict[str, Any]:
    """One run of C1's attack: a private-branch attacker (``proml_sim.sim.forks``) with share
    ``attacker_share`` of the block production leaves the victim's records out of its branch
    and releases it once they are ``attack_policy`` deep (and its branch wins the fork
    choice); one consumer node (``consumer_region``) acts on the victim's records under each of
    ``policies`` and re-verifies inclusion as blocks reach it.

    Returns, per policy: the attack attempts (the attacker's races), the attempts that made
    that consumer act on a record later taken away (double records), the consumer's latency
    (submission to acting, s) and its detection lags; and the world's reorg depths."""
    _, policies, prof, atk = c1_settings(p)
    rate, rec_s = float(p.get("record_rate_per_s", 1 / 6)), float(p.get("records_s", 240))
    poll = float(p.get("poll_s", 0.25))
    people = {"victim": ("victim-co", "eu"), "other": ("other-co", "us")}
    w, ps = small_world(seed, people, [(n, "Model", r) for n in people
                                       for r in ("operator", "developer")], profile=prof,
                        attacker=atk)
    mc = w.clients["Model"]
    mids = {n: mc.register(ps[n].signer, salt(n)) for n in people}
    w.mark_start()
    records: dict[bytes, SimTx] = {}

    def team(name: str) -> Any:
        n = 0
        while True:
            yield w.env.timeout(w.rng.expovariate(rate))
            if w.env.now >= rec_s:
                return
            n += 1
            tx = yield from w.send(ps[name], "Model", "fire", "train", mids[name],
                                   digest_of(name, n), "", [])
            if name == "victim":
                records[tx.hash] = tx

    node = ForkChoiceView(w, str(p.get("consumer_region", "asia")), random.Random(seed + 17))
    names = [pol.name for pol in policies]
    acted: dict[str, dict[bytes, tuple[SimBlock, float]]] = {n: {} for n in names}
    first: dict[str, dict[bytes, float]] = {n: {} for n in names}
    doubles: dict[str, list[tuple[float, int]]] = {n: [] for n in names}  # (seen at, height)
    lag: dict[str, list[float]] = {n: [] for n in names}
    upto = dict.fromkeys(names, 0)  # heights of the node's view acted on, per policy

    def consumer() -> Any:  # one node, one virtual consumer per policy
        while True:
            yield w.env.timeout(poll)
            now = w.env.now
            dropped = node.update(now)
            if dropped:
                low = dropped[0].height - 1
                for n in names:
                    upto[n] = min(upto[n], low)
                for b in dropped:  # re-verify inclusion: what it acted on is gone
                    for tx in node.txs.get(id(b), ()):
                        for n in names:
                            a = acted[n].get(tx.hash)
                            if a is not None and a[0] is b:
                                doubles[n].append((now, b.height))
                                lag[n].append(now - a[1])
                                del acted[n][tx.hash]  # it acts again on the re-inclusion
            view = node.view
            for pol in policies:
                n = pol.name
                top = (len(view) - pol.k + 1 if pol.kind == "depth"
                       else final_height(w.profile, view))
                for h in range(upto[n] + 1, top + 1):
                    b = view[h - 1]
                    for tx in node.txs.get(id(b), ()):
                        if tx.hash in records and tx.hash not in acted[n]:
                            acted[n][tx.hash] = (b, now)
                            first[n].setdefault(tx.hash, now)
                upto[n] = max(upto[n], top)

    for n in people:
        w.env.process(team(n))
    w.env.process(consumer())
    w.run(rec_s + float(p.get("tail_s", 120)), drain=False)
    w.finish()
    races = [r for r in atk.races if r.ended is not None]
    out: dict[str, Any] = {"races": len(races), "won": sum(r.success for r in races),
                           "reorg_depths": list(w.reorg_depths), "records": len(records),
                           "blocks": w.stats["blocks"], "orphaned": w.stats["orphaned"],
                           "final_reverted": w.stats["final_reverted"], "policy": {}}
    ends = sorted(r.ended for r in races if r.success and r.ended is not None)
    for n in names:
        # an attempt succeeded against this consumer if, after that race's release (and before
        # the next one's), the consumer lost a record it had acted on
        hit = {max((e for e in ends if e <= t), default=None) for t, _ in doubles[n]}
        hit.discard(None)
        out["policy"][n] = {
            "successes": len(hit), "doubles": len(doubles[n]),
            "acted": len(first[n]),
            "latency_s": [first[n][h] - records[h].submitted for h in first[n]],
            "detect_lag_s": lag[n]}
    return out


@scenario("C1")
class ReorgAfterAction:
    """A private-branch attacker takes the victim's records out of the chain after a consumer
    acted on them at its confirmation policy; the consumer re-verifies inclusion."""

    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        return Outcome(False, out_of_scope=True,
                       note="one database has one history: no forks, no reorgs; a committed row "
                            "disappears only if the admin deletes it (history rewrite, T4/R1)")

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        p = dict(tm.parameters)
        _checked(tm, lambda: c1_settings(p))
        defence = ConfirmationPolicy.parse(str(p.get("defence_policy", "L@12"))).name
        pols = [ConfirmationPolicy.parse(x).name for x in p.get("policies", ["L@1", defence])]
        if defence not in pols:
            pols.append(defence)
        p["policies"] = pols
        r = reorg_attack(seed, p)
        d, first = r["policy"][defence], r["policy"][pols[0]]
        won = d["successes"] > 0
        return Outcome(
            won, won, _median(d["detect_lag_s"]) if won else None,
            metrics={"attempts": float(r["races"]), "attempts_won": float(r["won"]),
                     "double_record_attempts": float(d["successes"]),
                     "double_record_rate": d["successes"] / max(1, r["races"]),
                     f"double_record_rate_{pols[0]}": first["successes"] / max(1, r["races"]),
                     "latency_defence_s": _median(d["latency_s"]),
                     f"latency_{pols[0]}_s": _median(first["latency_s"]),
                     "latency_cost_s": _median(d["latency_s"]) - _median(first["latency_s"]),
                     "max_reorg_depth": float(max(r["reorg_depths"], default=0)),
                     "final_reverted": float(r["final_reverted"]),
                     "records": float(r["records"])},
            series={"double_records_by_policy": [
                (float(i), v["successes"] / max(1, r["races"]))
                for i, v in enumerate(r["policy"].values())]},
            note=f"attacker share {p.get('attacker_share', 0.3)} releases its private branch "
                 f"once the victim's records are {p.get('attack_policy', defence)} deep; "
                 f"policies {', '.join(pols)}; success: the {defence} consumer acted on a "
                 "record the attacker's branch removed")


# -- C2 ----------------------------------------------------------------------------------------
class SwitchView:
    """A node on partition A's side: it follows A's branch until the heal, then the winning
    branch B as B's blocks reach it."""

    def __init__(self, a: RegionView, b: RegionView, heal: float) -> None:
        self.a, self.b, self.heal = a, b, heal

    def _on_b(self, now: float) -> bool:
        return now >= self.heal and self.b.height_at(now) > 0

    def head(self) -> Head:
        now = self.a.clock()
        return self.b.head_at(now) if self._on_b(now) else self.a.head_at(min(now, self.heal))

    def block(self, number: int) -> Head:
        if number > self.head().number:
            raise LookupError(number)
        now = self.a.clock()
        return (self.b if self._on_b(now) else self.a).block(number)

    def depth_of(self, txs: dict[str, SimTx]) -> tuple[str, int] | None:
        """Which branch's record this node has, and how deep, if any."""
        seen = self.seen(txs)
        return None if seen is None else seen[:2]

    def seen(self, txs: dict[str, SimTx]) -> tuple[str, int, bool] | None:
        """Which branch's record this node has, how deep, and whether it is final by the
        clique signer rule on the node's chain (``proml_sim.sim.forks.final_height``)."""
        now = self.a.clock()
        side, view = ("B", self.b) if self._on_b(now) else ("A", self.a)
        tx = txs.get(side)
        H = view.height_at(min(now, self.heal) if side == "A" else now)
        if tx is None or tx.block is None or tx.block.height > H:
            return None
        w = view.world
        final = tx.block.height <= final_height(w.profile, w.canon[:H])
        return side, H - tx.block.height + 1, final


@scenario("C2", limit="while a partition lasts nobody can compare histories across it: "
                     "consumers that act on depth alone act on the branch that later loses")
class Equivocation:
    """One PoA sealer seals on both sides of a partition; an accomplice signs two conflicting
    trainings (same nonce), one per side; side B wins at the heal."""

    @staticmethod
    def sealers(k: int, n: int) -> dict[str, list[Producer]]:
        """``k`` of the ``n`` clique sealers equivocate (seal on both sides); the honest ones
        split, the smaller half in partition A (eu), the rest in B (us, asia)."""
        if not 0 <= k <= n:
            raise ValueError(f"equivocators={k}; must be in [0, {n}]")
        eq = [f"sealer-E{j}" for j in range(k)]
        honest = [f"sealer-{j + 1}" for j in range(n - k)]
        half = len(honest) // 2
        return {"A": [Producer(x, "eu") for x in eq + honest[:half]],
                "B": [Producer(x, ("us", "asia")[j % 2])
                      for j, x in enumerate(eq + honest[half:])]}

    @staticmethod
    def _plan(tm: ThreatModel, seed: int) -> tuple[float, float, float]:
        rng = random.Random(seed)
        t_a = rng.uniform(10, 30)
        heal = float(tm.parameters.get("partition_s", 300))
        return t_a, heal, heal + float(tm.parameters.get("after_s", 120))

    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        t_a, heal, horizon = Equivocation._plan(tm, seed)
        n = int(tm.parameters.get("consumers", 3))
        delay = float(tm.parameters.get("baseline_act_after_s", 15))
        env = simpy.Environment()
        dbs = {}
        db = CentralDB(workdir / "A.sqlite", {"Model": Model}, admin="db-admin")
        db.grant("op", "Model", "operator", "client-co")
        db.grant("dev", "Model", "developer", "dev-co")
        aid = db.register("op", "Model", "m")
        db.close()
        shutil.copy(workdir / "A.sqlite", workdir / "B.sqlite")
        for side in "AB":  # the admin serves group A and group B from two copies
            dbs[side] = CentralDB(workdir / f"{side}.sqlite", {"Model": Model}, admin="db-admin")
        acted: list[tuple[str, float]] = []

        def attack():
            yield env.timeout(t_a)
            dbs["A"].fire("dev", "train", aid, digest_of("model-X").hex(), at=env.now)
            dbs["B"].fire("dev", "train", aid, digest_of("model-Y").hex(), at=env.now)
            yield env.timeout(heal - t_a)
            # the admin settles on B for everyone: group A's copy becomes B's
            dbs["A"].close()
            shutil.copy(workdir / "B.sqlite", workdir / "A.sqlite")
            dbs["A"] = CentralDB(workdir / "A.sqlite", {"Model": Model}, admin="db-admin")

        def consumer():
            yield env.timeout(t_a + delay)
            d = dbs["A"].digest_of(aid)  # group A trusts its database
            acted.append((d or "", env.now))

        env.process(attack())
        for _ in range(n):
            env.process(consumer())
        env.run(until=horizon)
        losing = sum(1 for d, _ in acted if d == digest_of("model-X").hex())
        for x in dbs.values():
            x.close()
        return Outcome(losing > 0, False, None,
                       metrics={"acted_on_losing_rate": losing / n},
                       note="baseline consumers trust the one database; answers are unsigned, "
                            "so even a client that compared answers could prove nothing")

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        p = tm.parameters
        _checked(tm, lambda: Equivocation.sealers(int(p.get("equivocators", 1)), 5))
        t_a, heal, horizon = Equivocation._plan(tm, seed)
        n = int(p.get("consumers", 3))
        depths = [int(d) for d in p.get("depths", [1, 3, 12])]
        cp_depth = int(p.get("checkpoint_depth", 3))
        poll = float(p.get("poll_s", 0.5))
        prof = get_profile("poa-clique").with_(sealer_offline_rate=0.0, stale_rate=0.0)
        sides = Equivocation.sealers(int(p.get("equivocators", 1)), prof.sealers)
        people = {"op": ("client-co", "eu"), "dev": ("dev-co", "eu")}
        grants = [("op", "Model", "operator"), ("dev", "Model", "developer")]
        worlds: dict[str, World] = {}
        txs: dict[str, SimTx] = {}
        for side in ("B", "A"):  # B first: the winner does not depend on A's consumers
            w, ps = small_world(seed, people, grants, profile=prof, producers=sides[side])
            mid = w.clients["Model"].register(ps["op"].signer, salt("m"))  # before the split
            w.mark_start()
            worlds[side] = w

            def dev(w=w, ps=ps, mid=mid, side=side):
                yield w.env.timeout(t_a)
                txs[side] = yield from w.send(ps["dev"], "Model", "fire", "train", mid,
                                              digest_of("model-" + "XY"[side == "B"]), "", [])

            w.env.process(dev())
            if side == "B":
                w.run(horizon + 60, drain=False)
                w.finish()
        wa, wb = worlds["A"], worlds["B"]
        rng = random.Random(seed * 31 + 7)
        cut = NetworkModel(partitions=(Partition(frozenset({"eu"}), 0.0, heal),))

        def node(region: str = "eu") -> SwitchView:
            return SwitchView(RegionView(wa, region, rng),
                              RegionView(wb, region, rng, clock=lambda: wa.env.now,
                                         network=cut), heal)

        peers = {"peer-a": node(), "peer-b": RegionView(wb, "us", rng,
                                                        clock=lambda: wa.env.now)}
        peer_region = {"peer-a": "eu", "peer-b": "us"}
        guard = FreshnessGuard(600, peers, max_lag_blocks=10**6, min_peers=len(peers),
                               clock=lambda: clock_ts(wa))
        acted: dict[tuple[int, str], tuple[str, float]] = {}  # (consumer, policy) -> (side, t)
        dropped_at: dict[int, float] = {}
        fork_seen: list[float] = []

        def reply_time(t: float, region: str) -> float:
            go = cut.deliver_at("eu", region, t, cut.base_delay("eu", region, rng))
            return cut.deliver_at(region, "eu", go, cut.base_delay(region, "eu", rng))

        def by_depth(i: int, me: SwitchView):  # acts once the record is d deep (or final)
            while wa.env.now < horizon:
                yield wa.env.timeout(poll)
                seen = me.seen(txs)
                if i not in dropped_at and any(acted.get((i, f"d{d}"), ("",))[0] == "A"
                                               for d in depths) and (seen is None or
                                                                     seen[0] == "B"):
                    dropped_at[i] = wa.env.now  # re-verify inclusion: record X is gone
                if seen is None:
                    continue
                side, depth, final = seen
                for d in depths:
                    if depth >= d and (i, f"d{d}") not in acted:
                        acted[(i, f"d{d}")] = (side, wa.env.now)
                if final and (i, "finalised") not in acted:
                    acted[(i, "finalised")] = (side, wa.env.now)

        def by_checkpoint(i: int, me: SwitchView):  # ... and only if other domains agree
            while wa.env.now < horizon and (i, "checkpoint") not in acted:
                yield wa.env.timeout(poll)
                seen = me.depth_of(txs)
                if seen is None or seen[1] < cp_depth:
                    continue
                # ask both peers for their heads; answers from across the partition wait
                t_ans = max(reply_time(wa.env.now, r) for r in peer_region.values())
                yield wa.env.timeout(max(0.0, t_ans - wa.env.now))
                rep = guard.assess(me)
                again = me.depth_of(txs)
                if "fork" in rep.kinds or again is None or again[0] != seen[0]:
                    fork_seen.append(wa.env.now)  # disagreement, or the record was reorged
                elif rep.ok and again[1] >= cp_depth:
                    acted[(i, "checkpoint")] = (again[0], wa.env.now)

        for i in range(n):
            wa.env.process(by_depth(i, node()))
            wa.env.process(by_checkpoint(i, node()))
        wa.run(horizon, drain=False)
        wa.finish()
        pols = [f"d{d}" for d in depths] + ["finalised", "checkpoint"]
        losing = {pol: sum(1 for i in range(n) if acted.get((i, pol), ("",))[0] == "A") / n
                  for pol in pols}
        latency = {pol: _median([acted[(i, pol)][1] - t_a for i in range(n)
                                 if (i, pol) in acted], float("nan")) for pol in pols}
        cp_acts = [acted[(i, "checkpoint")] for i in range(n) if (i, "checkpoint") in acted]
        d_ttd = [dropped_at[i] - acted[(i, f"d{cp_depth}")][1] for i in dropped_at
                 if acted.get((i, f"d{cp_depth}"), ("",))[0] == "A"]
        proofs = sum(1 for a, b in zip(wa.canon, wb.canon, strict=False)
                     if a.producer == b.producer and a.producer.startswith("sealer-E")
                     and a.time < heal)
        detect = (min(fork_seen) - t_a) if fork_seen else None
        return Outcome(
            losing["checkpoint"] > 0, bool(fork_seen), detect,
            metrics={"acted_on_losing_rate": losing["checkpoint"],
                     f"acted_on_losing_rate_d{cp_depth}": losing[f"d{cp_depth}"],
                     "detect_s": detect if detect is not None else horizon,
                     "depth_policy_ttd_s": _median(d_ttd, 0.0),
                     "latency_cost_s": _median([t - t_a for _, t in cp_acts], horizon) - _median(
                         [acted[(i, f"d{cp_depth}")][1] - t_a for i in range(n)
                          if (i, f"d{cp_depth}") in acted], 0.0),
                     "checkpoint_completion": len(cp_acts) / n,
                     **{f"acted_on_losing_rate_{pol}": losing[pol] for pol in pols
                        if pol != "checkpoint"},
                     **{f"latency_{pol}_s": v for pol, v in latency.items()},
                     "equivocation_proofs": float(proofs)},
            series={"acted_on_losing_by_depth": [(float(d), losing[f"d{d}"]) for d in depths]},
            note="modelled: two Worlds from one seed share the set-up chain; each partition's "
                 "3 of 5 sealers (the equivocator in both) seal every 5 s; the accomplice signs "
                 "two trainings with one nonce; B wins at the heal (fork choice not modelled)")


# -- C3 ----------------------------------------------------------------------------------------
@scenario("C3", limit="a timestamp skew smaller than the drift tolerance is not flagged; only "
                     "a policy that does not read timestamps is immune to it")
class TimestampSkew:
    """Deadlines every period_s; at each, an accomplice's late record and a victim's on-time
    record; a skewing miner backdates blocks with the late one and forward-dates blocks with
    the on-time one."""

    @staticmethod
    def _deadlines(tm: ThreatModel) -> list[float]:
        k, per = int(tm.parameters.get("deadlines", 8)), float(tm.parameters.get("period_s", 120))
        return [per * (j + 1) for j in range(k)]

    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        rng = random.Random(seed)
        env = simpy.Environment()
        db = CentralDB(workdir / "p.sqlite", {"Model": Model}, admin="db-admin")
        db.grant("op", "Model", "operator", "client-co")
        for who in ("late", "victim"):
            db.grant(who, "Model", "developer", f"{who}-co")
        aids = {who: db.register("op", "Model", who) for who in ("late", "victim")}
        wrong = [0]
        decisions = [0]

        def round_(D: float):
            t_late, t_ok = D + rng.uniform(0.5, 10), D - rng.uniform(0.5, 10)
            yield env.timeout(t_ok - env.now)
            db.fire("victim", "train", aids["victim"], digest_of("v", D).hex(), at=env.now)
            yield env.timeout(t_late - env.now)
            db.fire("late", "train", aids["late"], digest_of("l", D).hex(), at=env.now)
            # the admin (the accomplice's ally) rewrites the two times across the deadline
            db.admin_sql("UPDATE history SET at=? WHERE artefact=? AND digest=?",
                         (D - 1, aids["late"], digest_of("l", D).hex()))
            db.admin_sql("UPDATE history SET at=? WHERE artefact=? AND digest=?",
                         (D + 1, aids["victim"], digest_of("v", D).hex()))
            for who, truth, tag in (("late", False, "l"), ("victim", True, "v")):
                (at,) = db.admin_sql("SELECT at FROM history WHERE artefact=? AND digest=?",
                                     (aids[who], digest_of(tag, D).hex()))[0]
                decisions[0] += 1
                wrong[0] += (at <= D) != truth

        def run():
            for D in TimestampSkew._deadlines(tm):
                yield env.process(round_(D))

        env.process(run())
        env.run()
        db.close()
        return Outcome(wrong[0] > 0, False, None,
                       metrics={"wrong_decisions": float(wrong[0]),
                                "wrong_rate": wrong[0] / max(1, decisions[0])})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        p = tm.parameters
        deadlines = TimestampSkew._deadlines(tm)
        share = float(p.get("skewer_share", 0.4))
        tol = float(p.get("drift_tolerance_s", 4))
        margin = float(p.get("cutoff_margin_s", 0.0))
        region = str(p.get("consumer_region", "us"))
        prof = get_profile("ropsten-2022").with_(empty_block_rate=0.0, stale_rate=0.0)
        others = (1 - share) / 4
        producers = [Producer("skewer", "eu", weight=share)] + [
            Producer(f"miner-{i}", REGIONS[i % 3], weight=others) for i in range(4)]
        people = {"late": ("late-co", "eu"), "victim": ("victim-co", "us"),
                  **{f"h{i}": (f"honest-{i}", REGIONS[i % 3]) for i in range(3)}}
        grants = [(n, "Model", r) for n in people for r in ("operator", "developer")]
        w = World(seed=seed, profile=prof, producers=producers)
        ps = {n: w.add_participant(n, d, r) for n, (d, r) in people.items()}
        w.setup(grants)
        mc = w.clients["Model"]
        mids = {n: mc.register(ps[n].signer, salt(n)) for n in people}
        w.mark_start()
        edge: list[tuple[SimTx, float, str]] = []  # (tx, deadline, who)

        def skew(producer: Producer, txs: list[SimTx], honest: int, parent: int,
                 now: float) -> int | None:
            """The skewing miner's choice (the world keeps it within what nodes accept)."""
            if producer.name != "skewer":
                return None
            for t in txs:
                D, who = t.meta.get("deadline"), t.meta.get("edge")
                if D is None:
                    continue
                d_ts = int(w.real_ts(D))
                if who == "late" and now > D:
                    return d_ts  # backdate: the late record looks in time
                if who == "victim" and now <= D:
                    return honest + MAX_FUTURE_S  # forward-date: the on-time one looks late
            return None

        w.timestamp_policy = skew

        def sender(name: str, who: str, offset: Any):
            for j, D in enumerate(deadlines):
                at = D + offset()
                yield w.env.timeout(max(0.0, at - w.env.now))
                tx = yield from w.send(ps[name], "Model", "fire", "train", mids[name],
                                       digest_of(name, j), "", [], deadline=D, edge=who)
                edge.append((tx, D, who))

        rng = random.Random(seed + 3)
        w.env.process(sender("late", "late", lambda: rng.uniform(0.5, 10)))
        w.env.process(sender("victim", "victim", lambda: -rng.uniform(0.5, 10)))
        for i in range(3):  # honest records around the deadlines (not targeted)
            w.env.process(sender(f"h{i}", "honest", lambda: rng.uniform(-15, 15)))
        w.run(deadlines[-1] + 180, drain=False)
        w.finish()
        view = RegionView(w, region, random.Random(seed + 11))
        cut = {D: view.height_at(D + margin) for D in deadlines}
        counts = {"naive": 0, "defended": 0, "naive_targeted": 0, "defended_targeted": 0,
                  "decisions": 0, "skewed": 0, "flagged_skewed": 0, "flagged_other": 0}
        hits: list[bool] = []  # per successful skew on the defended policy: was it flagged
        for tx, D, who in edge:
            b = tx.block
            if b is None or tx.receipt is None:
                continue
            counts["decisions"] += 1
            truth = b.time <= D
            ts = tx.receipt.block_timestamp
            naive = ts <= w.real_ts(D)
            defended = b.height <= cut[D]
            skewed = abs(ts - (w.real_ts(b.time))) > 1.0 and b.producer == "skewer"
            flag = abs(ts - w.real_ts(view.arrival(b.height))) > tol
            counts["naive"] += naive != truth
            counts["defended"] += defended != truth
            if who != "honest":
                counts["naive_targeted"] += naive != truth
                counts["defended_targeted"] += defended != truth
                if skewed and defended != truth:
                    hits.append(flag)
        for b in w.canon:
            if b.timestamp is None:  # empty, not materialised
                continue
            ts = b.timestamp
            off = abs(ts - w.real_ts(b.time)) > 1.0
            flag = abs(ts - w.real_ts(view.arrival(b.height))) > tol
            if b.producer == "skewer" and off:
                counts["skewed"] += 1
                counts["flagged_skewed"] += flag
            elif flag:
                counts["flagged_other"] += 1
        det = counts["flagged_skewed"] / counts["skewed"] if counts["skewed"] else 0.0
        return Outcome(
            bool(hits), bool(hits) and all(hits), None,
            metrics={"wrong_decisions": float(counts["defended"]),
                     "wrong_decisions_targeted": float(counts["defended_targeted"]),
                     "wrong_decisions_naive": float(counts["naive"]),
                     "wrong_decisions_naive_targeted": float(counts["naive_targeted"]),
                     "decisions": float(counts["decisions"]),
                     "skewed_blocks": float(counts["skewed"]),
                     "skew_detection_rate": det,
                     "drift_flags_other_blocks": float(counts["flagged_other"])},
            note="defended policy: a record counts if its block number is at most the head the "
                 "consumer's node had when its own clock passed the deadline; timestamps are "
                 "only checked for drift against the block's arrival")
