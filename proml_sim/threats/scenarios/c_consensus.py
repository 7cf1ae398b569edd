"""Consensus-level attacks: C1 a private-branch attacker's reorg (``proml_sim.sim.forks``)
removes a record a consumer acted on, C2 equivocating PoA sealers show two partitions two
histories, C3 a producer skews timestamps at deadlines.

The baseline is one database: it has no forks (C1 is out of its scope), but its admin can show
two groups two views (C2) and write any time into a row (C3).
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from proml_sim.errors import UsageError
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
from proml_sim.sim.profiles import CONSENSUS_FIELDS
from proml_sim.threats.catalogue import ThreatModel, catalogue_dir, load_threat
from proml_sim.threats.kit import Alarm, central, outcome, ratio, world
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import param_error, play, salt, trials_of, wait_until
from proml_sim.threats.scenarios.d_availability import Head, RegionView, clock_ts, median


def teams_world(tm: ThreatModel, seed: int, **kw: Any) -> tuple[World, dict[str, bytes]]:
    """:func:`~proml_sim.threats.kit.world` of ``tm``'s cast (``kw`` to it), each team (actor)
    the operator of one model it has registered: {team: model id}."""
    w, ps = world(tm, seed, **kw)
    mids = {n: w.clients["Model"].register(p.signer, salt(n)) for n, p in ps.items()}
    w.mark_start()
    return w, mids


# -- C1 ----------------------------------------------------------------------------------------
def c1_attacker(p: dict[str, Any]) -> tuple[list[ConfirmationPolicy], Any, PrivateBranch]:
    """C1's consumer policies, chain profile and attacker from its parameters (ValueError)."""
    policies = [ConfirmationPolicy.parse(x) for x in p["policies"]]
    target = ConfirmationPolicy.parse(str(p.get("attack_policy", p["defence_policy"])))
    prof = get_profile(str(p["profile"]))
    if prof.consensus == "fixed":
        raise ValueError(f"profile {prof.name!r} has one producer: no forks to attack")
    # stale_rate (and no empty blocks) for a profile whose consensus reads them, PoW or PoA;
    # a PoS profile forks by its own reorg_rate and has no empty-block template
    forking = {"stale_rate": float(p.get("stale_rate", prof.stale_rate)), "empty_block_rate": 0.0}
    prof = prof.with_(**({"block_time": float(p["block_time"])} if "block_time" in p else {}),
                      **{f: v for f, v in forking.items() if f in CONSENSUS_FIELDS[prof.consensus]})
    z = target.k if target.kind == "depth" else (
        prof.finality_time_blocks() if prof.consensus == "pow" else 10**6)
    return policies, prof, PrivateBranch(float(p["attacker_share"]), confirmations=int(z or 1),
                                         censor=frozenset({"victim-co"}),
                                         margin_s=float(p["release_margin_s"]))


def reorg_attack(seed: int, p: dict[str, Any], tm: ThreatModel | None = None
                 ) -> dict[str, Any]:
    """One run of C1 (parameters ``p``, the teams of ``tm``'s cast, by default the
    catalogue's C1: victim and other): the attacker (``proml_sim.sim.forks.PrivateBranch``, share
    ``attacker_share``) leaves the victim's records out of its private branch and releases it
    once they are ``attack_policy`` deep and the branch wins the fork choice; one consumer node
    (``consumer_region``, the longest chain it has received, first-seen on a tie) acts on each
    victim record under each of ``policies`` and re-verifies inclusion as blocks arrive.

    Returns ``races`` (attempts), ``won`` (races the attacker's branch won), ``records`` (the
    victim's); per policy ``successes`` (races after whose release a block the consumer acted
    on was no longer canonical: world truth), ``trials`` (each race: success, its end, the
    consumer's re-verification alarms), ``latency_s`` (submission to acting) and
    ``detect_lag_s``; and the world's ``reorg_depths`` and ``final_reverted``."""
    policies, prof, atk = c1_attacker(p)
    w, mids = teams_world(tm or load_threat(catalogue_dir() / "C1.toml"), seed, profile=prof,
                          attacker=atk)
    rate, until = float(p["record_rate_per_s"]), float(p["records_s"])
    records: dict[bytes, SimTx] = {}

    def team(name: str) -> Any:
        n = 0
        while (yield w.env.timeout(w.rng.expovariate(rate))) or w.env.now < until:
            n += 1
            tx = yield from w.send(name, "Model", "fire", "train", mids[name],
                                   digest_of(name, n), "", [])
            records.update({tx.hash: tx} if name == "victim" else {})

    net, rng, region = w.network, random.Random(seed + 17), str(p["consumer_region"])
    arrival: dict[int, float] = {}
    view: list[SimBlock] = []
    names = [pol.name for pol in policies]
    acted: dict[str, dict[bytes, tuple[SimBlock, float]]] = {n: {} for n in names}
    first: dict[str, dict[bytes, float]] = {n: {} for n in names}
    done = {n: [] for n in names}  # type: dict[str, list[tuple[SimBlock, float]]]
    seen_drop: dict[str, list[tuple[float, float]]] = {n: [] for n in names}  # (at, acted at)
    upto = dict.fromkeys(names, 0)

    def arrives(b: SimBlock) -> float:  # a private block leaves at its release
        if id(b) not in arrival:
            arrival[id(b)] = net.deliver_at(b.region, region, max(b.time, b.published),
                                            net.block_delay(b.region, region, rng))
        return arrival[id(b)]

    def consumer() -> Any:  # one node, one virtual consumer per policy
        nonlocal view
        while True:
            yield w.env.timeout(float(p["poll_s"]))
            canon, now = w.canon, w.env.now
            i = max(0, len(view) - 64)  # reorgs deeper than 64 blocks are not followed
            while i < min(len(view), len(canon)) and view[i] is canon[i]:
                i += 1
            top = i
            while top < len(canon) and arrives(canon[top]) <= now:
                top += 1
            if top > len(view):  # a longer chain arrived: adopt it, re-verify what was acted
                gone = {id(b) for b in view[i:]}
                for n in names:
                    upto[n] = min(upto[n], i)
                    for h, (b, t) in list(acted[n].items()):
                        if id(b) in gone:
                            seen_drop[n].append((now, t))
                            del acted[n][h]  # it acts again on the re-inclusion
                view = list(canon[:top])
            for pol in policies:
                n, tx_blocks = pol.name, (len(view) - pol.k + 1 if pol.kind == "depth"
                                          else final_height(w.profile, view))
                for b in view[upto[n]:max(upto[n], tx_blocks)]:
                    for tx in (t for t in b.txs if t.hash in records and t.hash not in
                               acted[n]):
                        acted[n][tx.hash] = (b, now)
                        first[n].setdefault(tx.hash, now)
                        done[n].append((b, now))
                upto[n] = max(upto[n], tx_blocks)

    for n in mids:
        w.env.process(team(n))
    play(w, until + float(p["tail_s"]), consumer())
    races = [(r, r.ended) for r in atk.races if r.ended is not None]
    canon = {id(b) for b in w.canon}
    out: dict[str, Any] = {"races": len(races), "won": sum(r.success for r, _ in races),
                           "records": len(records),
                           "reorg_depths": list(w.reorg_depths),
                           "final_reverted": w.stats["final_reverted"], "policy": {}}
    for n in names:
        hit = [r for r, end in races if r.success and any(
            id(b) not in canon and b.height > r.fork_height and r.started <= t <= end
            for b, t in done[n])]
        out["policy"][n] = {
            "successes": len(hit), "trials": [(r in hit, end, [Alarm(
                at, "consumer:re-verify") for at, t in seen_drop[n] if r.started <= t <= end
                and at >= end]) for r, end in races],
            "latency_s": [first[n][h] - records[h].submitted for h in first[n]],
            "detect_lag_s": [at - t for at, t in seen_drop[n]]}
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
        p = tm.parameters.copy()
        defence = str(p["defence_policy"])
        p["policies"] = list(dict.fromkeys([*p["policies"], defence]))
        try:
            r = reorg_attack(seed, p, tm)
        except UsageError:
            raise  # already names the file and the fix (a missing parameter)
        except ValueError as exc:
            raise param_error(tm, str(exc)) from None
        d = r["policy"][ConfirmationPolicy.parse(defence).name]
        shallow = r["policy"][ConfirmationPolicy.parse(p["policies"][0]).name]
        note = (f"attacker share {p['attacker_share']}; success: the {defence} consumer acted "
                "on a record the attacker's released branch removed")
        if not r["races"]:  # no race: say why (a stalled chain is no reorg, nor prevention)
            note += (f"; no race: of the victim's {r['records']} record(s), the public chain "
                     f"took {len(d['latency_s'])} to {defence}" + (
                         " (not that deep within the run, as when the attacker withholds "
                         "nearly every block: a stall, not a reorg)"
                         if r["records"] and not d["latency_s"] else ""))
        elif not r["records"]:  # races, but no victim record to take out: nothing attacked
            note += (f"; no attempt: the victim sent no record within records_s = "
                     f"{p['records_s']} s, so the attacker's {r['races']} race(s) had nothing "
                     "to remove (lengthen records_s)")
        return trials_of(d["trials"] if r["records"] else [], metrics={
            "victim_records_acted": float(len(d["latency_s"])),
            "races_won": float(r["won"]), "max_reorg_depth": float(max(r["reorg_depths"],
                                                                       default=0)),
            "latency_defence_s": (slow := median(d["latency_s"])),
            "latency_cost_s": None if slow is None or (fast := median(shallow["latency_s"]))
            is None else slow - fast,
            # (a rate over the races that had a victim record at stake: none, undefined)
            "double_record_rate_shallow": ratio(shallow["successes"],
                                                r["races"] if r["records"] else 0),
            "final_reverted": float(r["final_reverted"])}, note=note)


# -- C2 ----------------------------------------------------------------------------------------
class SwitchView:
    """A node on partition A's side: it follows A's branch until the heal, then the winning
    branch B as B's blocks reach it."""

    def __init__(self, a: RegionView, b: RegionView, heal: float) -> None:
        self.a, self.b, self.heal = a, b, heal

    def _side(self) -> tuple[str, RegionView, float]:
        now = self.a.clock()
        if now >= self.heal and self.b.height_at(now) > 0:
            return "B", self.b, now
        return "A", self.a, min(now, self.heal)

    def head(self) -> Head:
        _, v, t = self._side()
        return v.head_at(t)

    def block(self, number: int) -> Head:
        if number > self.head().number:
            raise LookupError(number)
        return self._side()[1].block(number)

    def seen(self, txs: dict[str, SimTx]) -> tuple[str, int, bool] | None:
        """Which branch's record this node has, how deep, and whether it is final by the
        clique signer rule on the node's chain (``proml_sim.sim.forks.final_height``)."""
        side, view, t = self._side()
        tx, H = txs.get(side), view.height_at(t)
        if tx is None or tx.block is None or tx.block.height > H:
            return None
        w = view.world
        return side, H - tx.block.height + 1, tx.block.height <= final_height(w.profile,
                                                                             w.canon[:H])


def c2_sides(k: int, n: int) -> dict[str, list[Producer]]:
    """``k`` of ``n`` clique sealers equivocate (seal on both sides); of the honest ones the
    smaller half is in partition A (eu), the rest in B (us, asia)."""
    if not 0 <= k <= n:
        raise ValueError(f"equivocators={k}; must be in [0, {n}]")
    eq, honest = [f"sealer-E{j}" for j in range(k)], [f"sealer-{j + 1}" for j in range(n - k)]
    return {"A": [Producer(x, "eu") for x in eq + honest[:len(honest) // 2]],
            "B": [Producer(x, ("us", "asia")[j % 2])
                  for j, x in enumerate(eq + honest[len(honest) // 2:])]}


@scenario("C2")
class Equivocation:
    """Equivocating PoA sealers seal on both sides of a partition; an accomplice signs two
    conflicting trainings (same nonce), one per side; side B wins at the heal."""

    @staticmethod
    def _plan(tm: ThreatModel, seed: int) -> tuple[float, float, float, int]:
        t_a, p = random.Random(seed).uniform(10, 30), tm.parameters
        heal = float(p["partition_s"])
        return t_a, heal, heal + float(p["after_s"]), int(p["consumers"])

    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        t_a, heal, _, n = Equivocation._plan(tm, seed)
        db = central(tm, workdir, {"Model": Model}, name="A")
        aid = db.register("victim", "Model", "m")
        db.close()
        shutil.copy(workdir / "A.sqlite", workdir / "B.sqlite")  # the admin serves two copies
        dbs = {s: central(tm, workdir, {"Model": Model}, name=s) for s in "AB"}
        for s, dbx in dbs.items():  # the accomplice's two trainings, one per copy
            dbx.fire("victim", "train", aid, digest_of("model-" + "XY"[s == "B"]).hex(), at=t_a)
        # group A's consumers act on their database's answer, noting its audit head
        acted = [(dbs["A"].digest_of(aid), *dbs["A"].admin_sql(
            "SELECT seq, hash FROM audit ORDER BY seq DESC")[0]) for _ in range(n)]
        for dbx in dbs.values():
            dbx.close()
        shutil.copy(workdir / "B.sqlite", workdir / "A.sqlite")  # at the heal: B for everyone
        db = central(tm, workdir, {"Model": Model}, name="A")
        moved = [db.admin_sql("SELECT hash FROM audit WHERE seq=?", (s,)) != [(h,)]
                 for _, s, h in acted]
        db.close()
        losing = sum(d == digest_of("model-X").hex() for d, _, _ in acted)
        alarms = [Alarm(heal, "consumer:noted-head")] if tm.parameters["heads_kept"] and any(
            moved) else []
        return outcome(losing > 0, attack_at=t_a, alarms=alarms,
                       metrics={"acted_on_losing_rate": losing / n})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        p = tm.parameters
        t_a, heal, horizon, n = Equivocation._plan(tm, seed)
        depths, cp = list(p["depths"]), int(p["checkpoint_depth"])
        if any(type(d) is not int or d < 0 for d in depths):  # a list: no [ranges] rule
            raise UsageError(f"C2: depths={depths!r}; give whole numbers of confirmations "
                             ">= 0, e.g. --param 'depths=[1, 3, 12]'")
        prof = get_profile("poa-clique").with_(sealer_offline_rate=0.0, stale_rate=0.0)
        try:
            sides = c2_sides(int(p["equivocators"]), prof.sealers)
        except UsageError:
            raise  # already names the file and the fix (a missing parameter)
        except ValueError as exc:
            raise param_error(tm, str(exc)) from None
        worlds: dict[str, World] = {}
        txs: dict[str, SimTx] = {}
        for side in ("B", "A"):  # B first: the winner does not depend on A's consumers
            w, mids = teams_world(tm, seed, profile=prof, producers=sides[side])
            worlds[side] = w

            def dev(w: World = w, mid: bytes = mids["victim"], side: str = side) -> Any:
                yield w.env.timeout(t_a)  # one accomplice key, one nonce, two trainings
                txs[side] = yield from w.send("victim", "Model", "fire", "train", mid,
                                              digest_of("model-" + "XY"[side == "B"]), "", [])

            w.env.process(dev())
        worlds["B"].run(horizon + 60, drain=False)
        worlds["B"].finish()
        wa, wb = worlds["A"], worlds["B"]
        rng = random.Random(seed * 31 + 7)
        cut = NetworkModel(partitions=(Partition(frozenset({"eu"}), 0.0, heal),))

        def node(region: str = "eu") -> SwitchView:
            return SwitchView(RegionView(wa, region, rng), RegionView(
                wb, region, rng, clock=lambda: wa.env.now, network=cut), heal)

        guard = FreshnessGuard(600, {"peer-a": node(), "peer-b": RegionView(
            wb, "us", rng, clock=lambda: wa.env.now)}, max_lag_blocks=10**6, min_peers=2,
            clock=lambda: clock_ts(wa))
        acted: dict[tuple[int, str], tuple[str, float]] = {}  # (consumer, policy) -> (side, t)
        alarms: list[Alarm] = []

        def replied(t: float) -> float:  # when both peers' answers are back (eu, us)
            go = cut.deliver_at("eu", "us", t, cut.base_delay("eu", "us", rng))
            return max(t, cut.deliver_at("us", "eu", go, cut.base_delay("us", "eu", rng)))

        def consumer(i: int, me: SwitchView, checkpoint: bool) -> Any:
            while wa.env.now < horizon and not (checkpoint and (i, "checkpoint") in acted):
                yield wa.env.timeout(float(p["poll_s"]))
                seen = me.seen(txs)
                if seen is not None and not checkpoint:  # depth and finality policies
                    for pol, ok in (*((f"d{d}", seen[1] >= d) for d in depths),
                                    ("finalised", seen[2])):
                        if ok and (i, pol) not in acted:
                            acted[(i, pol)] = (seen[0], wa.env.now)
                if not checkpoint or seen is None or seen[1] < cp:
                    continue
                yield wa.env.timeout(replied(wa.env.now) - wa.env.now)
                rep, again = guard.assess(me), me.seen(txs)
                if "fork" in rep.kinds or again is None or again[0] != seen[0]:
                    alarms.append(Alarm(wa.env.now, "checkpoint:disagreement"))
                elif rep.ok and again[1] >= cp:
                    acted[(i, "checkpoint")] = (again[0], wa.env.now)

        for i in range(n):
            wa.env.process(consumer(i, node(), False))
            wa.env.process(consumer(i, node(), True))
        wa.run(horizon, drain=False)
        wa.finish()
        pols = [f"d{d}" for d in depths] + ["finalised", "checkpoint"]
        losing = {pol: sum(acted.get((i, pol), ("",))[0] == "A" for i in range(n)) / n
                  for pol in pols}
        latency = {pol: median([acted[(i, pol)][1] - t_a for i in range(n) if (i, pol) in acted])
                   for pol in pols}
        proofs = sum(a.producer == b.producer and a.producer.startswith("sealer-E")
                     and a.time < heal for a, b in zip(wa.canon, wb.canon, strict=False))
        return outcome(losing["checkpoint"] > 0, attack_at=t_a, alarms=alarms, metrics={
            "acted_on_losing_rate": losing["checkpoint"],
            **{f"acted_on_losing_rate_{pol}": v for pol, v in losing.items()},
            **{f"latency_{pol}_s": v for pol, v in latency.items()},
            "checkpoint_completion": sum((i, "checkpoint") in acted for i in range(n)) / n,
            "equivocation_proofs": float(proofs)})


# -- C3 ----------------------------------------------------------------------------------------
@scenario("C3")
class TimestampSkew:
    """Deadlines every period_s; at each, an accomplice's late record and a victim's on-time
    record; a skewing miner backdates blocks with the late one and forward-dates blocks with
    the on-time one.  Each targeted record is an attempt."""

    @staticmethod
    def _deadlines(tm: ThreatModel) -> list[float]:
        k, per = int(tm.parameters["deadlines"]), float(tm.parameters["period_s"])
        return [per * (j + 1) for j in range(k)]

    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        rng = random.Random(seed)
        db = central(tm, workdir, {"Model": Model})
        aids = {who: db.register(who, "Model", who) for who in ("late", "victim")}
        trials = []
        for D in TimestampSkew._deadlines(tm):
            sent = {"victim": D - rng.uniform(0.5, 10), "late": D + rng.uniform(0.5, 10)}
            for who, t in sent.items():
                db.fire(who, "train", aids[who], f"{who}{D}", at=t)
            # the admin (the accomplice's ally) rewrites the two times across the deadline
            for who, at in (("late", D - 1), ("victim", D + 1)):
                db.admin_sql("UPDATE history SET at=? WHERE artefact=? AND digest=?",
                             (at, aids[who], f"{who}{D}"))
            for who, t in sent.items():
                (at,), = db.admin_sql("SELECT at FROM history WHERE artefact=? AND digest=?",
                                      (aids[who], f"{who}{D}"))
                # the victim reads its row back and knows when it sent it: its own log
                alarm = [Alarm(D + 1, "victim:own-log")] if who == "victim" and at != t else []
                trials.append(((at <= D) != (t <= D), t, alarm))
        db.close()
        return trials_of(trials)

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        p, deadlines = tm.parameters, TimestampSkew._deadlines(tm)
        share, tol = float(p["skewer_share"]), float(p["drift_tolerance_s"])
        prof = get_profile("ropsten-2022").with_(empty_block_rate=0.0, stale_rate=0.0)
        producers = [Producer("skewer", "eu", weight=share)] + [
            Producer(f"miner-{i}", REGIONS[i % 3], weight=(1 - share) / 4) for i in range(4)]
        w, mids = teams_world(tm, seed, profile=prof, producers=producers)
        edge: list[tuple[SimTx, float, str]] = []

        def skew(producer: Producer, txs: list[SimTx], honest: int, parent: int,
                 now: float) -> int | None:
            """The skewing miner's choice (the world keeps it within what nodes accept)."""
            for t in txs if producer.name == "skewer" else ():
                D, who = t.meta.get("deadline"), t.meta.get("edge")
                if who == "late" and D is not None and now > D:
                    return int(w.real_ts(D))  # backdate: the late record looks in time
                if who == "victim" and D is not None and now <= D:
                    return honest + MAX_FUTURE_S  # forward-date: the on-time one looks late
            return None

        w.timestamp_policy = skew
        rng = random.Random(seed + 3)

        def sender(name: str, lo: float, hi: float) -> Any:
            for j, D in enumerate(deadlines):
                yield wait_until(w.env, D + rng.uniform(lo, hi))
                who = name if name in ("late", "victim") else "honest"
                edge.append(((yield from w.send(name, "Model", "fire", "train", mids[name],
                                                digest_of(name, j), "", [], deadline=D,
                                                edge=who)), D, who))

        for name in mids:  # late after each deadline, the victim before, the others around
            w.env.process(sender(name, *{"late": (0.5, 10), "victim": (-10, -0.5)}.get(
                name, (-15, 15))))
        w.run(deadlines[-1] + 180, drain=False)
        w.finish()
        view = RegionView(w, str(p["consumer_region"]), random.Random(seed + 11))
        cut = {D: view.height_at(D + float(p["cutoff_margin_s"])) for D in deadlines}
        def decide(policy: str, b: SimBlock, ts: float, D: float) -> bool:  # "in time"?
            return ts <= w.real_ts(D) if policy == "naive" else b.height <= cut[D]

        trials, wrong = [], Counter[str]()
        targeted = [(tx, D, who) for tx, D, who in edge
                    if tx.block is not None and tx.receipt is not None and who != "honest"]
        # the skewer stamps only the blocks it seals: none of them holding a targeted record
        # (share 0, or a share too small to seal one in the run) is a run without an attack,
        # no trial (its records were judged "prevented" with no stamp ever skewed)
        if not any(tx.block is not None and tx.block.producer == "skewer"
                   for tx, _, _ in targeted):
            targeted = []
        for tx, D, _ in targeted:
            b = tx.block
            assert b is not None and tx.receipt is not None
            truth, ts, honest_ts = b.time <= D, tx.receipt.block_timestamp, w.real_ts(b.time)
            # the attack succeeds when its stamp flips the decision to a wrong one (a decision
            # wrong with the honest stamp too is the policy's own cut: counted, not the attack);
            # an honest miner's stamp (whole seconds, above its parent's) is no skew
            flip = {pol: b.producer == "skewer" and decide(pol, b, ts, D) != truth
                    and decide(pol, b, honest_ts, D) == truth for pol in ("naive", "defended")}
            wrong.update(naive=flip["naive"], defended=decide("defended", b, ts, D) != truth)
            trials.append((flip["defended"], b.time, [Alarm(view.arrival(b.height), "drift")]
                           if abs(ts - w.real_ts(view.arrival(b.height))) > tol else []))
        skewed_blocks = [(b, b.timestamp) for b in w.canon if b.producer == "skewer"
                  and b.timestamp is not None and abs(b.timestamp - w.real_ts(b.time)) > 1.0]
        return trials_of(trials, metrics={
            "skew_flips_naive": float(wrong["naive"]),
            "wrong_decisions_targeted": float(wrong["defended"]),
            "skewed_blocks": float(len(skewed_blocks)),
            "skew_detection_rate": ratio(sum(abs(ts - w.real_ts(view.arrival(b.height))) > tol
                                             for b, ts in skewed_blocks), len(skewed_blocks))},
            note="defended policy: a record counts if its block is at most the head the "
                 "consumer's node had when its own clock passed the deadline")
