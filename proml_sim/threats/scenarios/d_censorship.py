"""D1: m of N proof-of-authority sealers censor one trust domain."""

from __future__ import annotations

import statistics
from pathlib import Path

import simpy

from proml_sim.lifecycles import Model
from proml_sim.sim import Producer, digest_of, get_profile
from proml_sim.threats.baseline import CentralDB
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import salt, small_world

HORIZON = 900.0


def _censored_run(seed: int, sealers: int, m: int, records: int) -> tuple[list[float], int]:
    """(inclusion delays of the victim's records, how many never got in) with m censors."""
    prof = get_profile("poa-clique").with_(sealer_offline_rate=0.0, stale_rate=0.0)
    producers = [Producer(f"sealer{i}", ("eu", "us", "asia")[i % 3],
                          censors=frozenset({"victim-co"}) if i < m else frozenset())
                 for i in range(sealers)]
    people = {"victim": ("victim-co", "eu"), "other": ("other-co", "us")}
    grants = [(p, "Model", r) for p in people for r in ("operator", "developer")]
    w, ps = small_world(seed, people, grants, profile=prof, producers=producers)
    mids = {}
    for p in ps:  # each team's model exists before the measured period
        mids[p] = w.clients["Model"].register(ps[p].signer, salt(p))
    w.mark_start()
    txs = []

    def victim():
        for i in range(records):
            yield w.env.timeout(w.rng.expovariate(1 / 20))
            txs.append((yield from w.send(ps["victim"], "Model", "fire", "train",
                                          mids["victim"], digest_of("v", i), "", [])))

    w.env.process(victim())
    w.run(HORIZON, drain=False)
    w.finish()
    delays = [t.confirmed[1] - t.submitted for t in txs if 1 in t.confirmed]
    return delays, len(txs) - len(delays)


@scenario("D1", limit="when every sealer censors a domain, its records never get in; the "
                     "stall is visible to the victim and to anyone comparing submissions")
class Censorship:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        env = simpy.Environment()
        db = CentralDB(workdir / "p.sqlite", {"Model": Model}, admin="db-admin")
        db.grant("victim", "Model", "operator", "victim-co")
        refused = []

        def victim():  # the database's admin drops the victim's writes (a trigger, say)
            for i in range(int(tm.parameters.get("records", 10))):
                yield env.timeout(20)
                refused.append(i)

        env.process(victim())
        env.run()
        db.close()
        return Outcome(True, False, None, metrics={"censored_forever_rate": 1.0})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        sealers = int(tm.parameters.get("sealers", 5))
        records = int(tm.parameters.get("records", 10))
        attack_m = int(tm.parameters.get("attack_m", sealers - 1))
        series_med, series_forever = [], []
        headline_forever = 0.0
        for m in range(sealers + 1):
            delays, lost = _censored_run(seed * 100 + m, sealers, m, records)
            med = statistics.median(delays) if delays else HORIZON
            series_med.append((float(m), med))
            series_forever.append((float(m), lost / records))
            if m == attack_m:
                headline_forever = lost / records
                headline_delay = med
        return Outcome(headline_forever > 0, False, None,
                       metrics={"censorship_delay_s": headline_delay,
                                "censored_forever_rate": headline_forever},
                       series={"censorship_delay_by_m": series_med,
                               "censored_forever_by_m": series_forever})
