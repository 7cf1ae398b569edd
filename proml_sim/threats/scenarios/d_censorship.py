"""D1: m of N proof-of-authority sealers censor one trust domain; in the baseline the DBA's
triggers drop the victim's rows while the application acknowledges them.  Each record of the
victim is one attempt; the victim's own alarm: a record missing ``stall_timeout_s`` later."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from proml_sim.lifecycles import Model
from proml_sim.sim import Producer, digest_of, get_profile
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.kit import Alarm, central, ratio
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import play, salt, trials_of, wait_until
from proml_sim.threats.scenarios.d_availability import median, model_world


@scenario("D1")
class Censorship:
    @staticmethod
    def send_times(tm: ThreatModel, seed: int) -> list[float]:
        """When the victim sends its records, the same instants on both systems: ``records``
        sends at exponential gaps (mean 20 s) from the seed's own generator, none after the
        run's end (``horizon_s``)."""
        rng, t, times = random.Random(seed), 0.0, []
        for _ in range(int(tm.parameters["records"])):
            t += rng.expovariate(1 / 20)
            if t > float(tm.parameters["horizon_s"]):
                break
            times.append(t)
        return times

    @staticmethod
    def unjudged(sent: int, judged: int, wait: float) -> str:
        """The note of a run whose records were all sent too late to judge (none, no trial)."""
        return (f"none of the victim's {sent} record(s) was sent stall_timeout_s = {wait:g} s "
                "before horizon_s: nothing to judge (shorten the timeout or lengthen the run)"
                if sent and not judged else "")

    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        p = tm.parameters
        wait, horizon = float(p["stall_timeout_s"]), float(p["horizon_s"])
        db = central(tm, workdir, {"Model": Model})
        aid = db.register("victim", "Model", "m")
        for table in ("history", "audit"):  # the censorship: the victim's rows never land
            db.admin_sql(f"CREATE TRIGGER censor_{table} BEFORE INSERT ON {table} "
                         "WHEN NEW.actor = 'victim' BEGIN SELECT RAISE(IGNORE); END")
        db.admin_sql("CREATE TRIGGER censor_state BEFORE UPDATE ON artefacts "
                     "WHEN OLD.owner = 'victim' BEGIN SELECT RAISE(IGNORE); END")
        trials, acked, times = [], 0, Censorship.send_times(tm, seed)
        for i, t in enumerate(times):
            d = digest_of("victim", i).hex()
            acked += db.fire("victim", "train", aid, d, at=t)
            kept = any(row[4] == d for row in db.history(aid))  # the victim's read-back
            # as on ProML, a record sent less than stall_timeout_s before the end is no trial
            if t + wait <= horizon:
                trials.append((not kept, t, [] if kept else [Alarm(t + wait,
                                                                   "victim:read-back")]))
        db.close()
        return trials_of(trials, metrics={"writes_acknowledged": float(acked)},
                         note=Censorship.unjudged(len(times), len(trials), wait))

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        p = tm.parameters
        n, m = int(p["sealers"]), int(p["attack_m"])
        horizon, wait = float(p["horizon_s"]), float(p["stall_timeout_s"])
        prof = get_profile("poa-clique").with_(sealers=n, sealer_offline_rate=0.0,
                                               stale_rate=0.0)
        producers = [Producer(f"sealer{i}", ("eu", "us", "asia")[i % 3],
                              censors=frozenset({"victim-co"}) if i < m else frozenset())
                     for i in range(n)]
        w, ps = model_world(tm, seed, profile=prof, producers=producers)
        mid = w.clients["Model"].register(ps["victim"].signer, salt("victim"))
        w.mark_start()
        txs = []

        def victim() -> Any:
            for i, at in enumerate(Censorship.send_times(tm, seed)):
                yield wait_until(w.env, at)
                txs.append((yield from w.send("victim", "Model", "fire", "train", mid,
                                              digest_of("v", i), "", [])))

        play(w, horizon, victim())
        delays = [t.confirmed[1] - t.submitted for t in txs if 1 in t.confirmed]
        # records sent too late to judge (less than stall_timeout_s before the horizon) are no
        # trials; the victim's node alarms when its record is still not in a block by then
        # (no censoring sealer, m = 0: nobody attacks, no trial)
        trials = [(1 not in t.confirmed, t.submitted, [Alarm(t.submitted + wait, "victim:pending")]
                   if t.confirmed.get(1, horizon) - t.submitted > wait else [])
                  for t in txs if t.submitted + wait <= horizon and m > 0]
        return trials_of(trials, metrics={
            "censorship_delay_s": median(delays, horizon),
            "censored_forever_rate": ratio(len(txs) - len(delays), len(txs))},
            note=Censorship.unjudged(len(txs), len(trials), wait) if m else "")
