"""T1: the dataset admin swaps a dataset's bytes after registering its digest."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import simpy

from proml_sim.lifecycles import Dataset, Model
from proml_sim.node.store import BlobStore
from proml_sim.threats.baseline import CentralDB
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import small_world

HOUR = 3600.0


def _plan(tm: ThreatModel, seed: int) -> tuple[float, list[float]]:
    rng = random.Random(seed)
    n = int(tm.parameters.get("consumers", 4))
    swap = rng.uniform(1, 4) * HOUR
    # consumers fetch after the swap (fetches before it see honest bytes and measure nothing)
    fetches = sorted(rng.uniform(swap / HOUR, 12) * HOUR for _ in range(n))
    return swap, fetches


@scenario("T1")
class SwapBytes:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        swap, fetches = _plan(tm, seed)
        env = simpy.Environment()
        db = CentralDB(workdir / "provenance.sqlite", {"Dataset": Dataset, "Model": Model},
                       admin="da")
        db.grant("da", "Dataset", "dataset_admin", "data-co")
        good, bad = b"good rows\n" * 100, b"poisoned rows\n" * 100
        blob = workdir / "dataset.bin"
        blob.write_bytes(good)
        aid = db.register("da", "Dataset", "ds", hashlib.sha256(good).hexdigest())
        exposed: list[float] = []
        detected: list[float] = []

        def attacker():  # swap bytes, then rewrite the digest and the history to match
            yield env.timeout(swap)
            blob.write_bytes(bad)
            d = hashlib.sha256(bad).hexdigest()
            db.admin_sql("UPDATE artefacts SET digest=? WHERE id=?", (d, aid))
            db.admin_sql("UPDATE history SET digest=? WHERE artefact=?", (d, aid))

        def consumer(at: float):
            yield env.timeout(at)
            data = blob.read_bytes()
            if hashlib.sha256(data).hexdigest() != db.digest_of(aid):
                detected.append(env.now)
            elif data == bad:
                exposed.append(env.now)

        env.process(attacker())
        for t in fetches:
            env.process(consumer(t))
        env.run()
        db.close()
        return Outcome(True, bool(detected), (min(detected) - swap) if detected else None,
                       metrics={"consumers_exposed": float(len(exposed))})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        swap, fetches = _plan(tm, seed)
        people = {"da": ("data-co", "eu"), **{f"c{i}": (f"cons-{i}", "us")
                                              for i in range(len(fetches))}}
        w, ps = small_world(seed, people, [("da", "Dataset", "dataset_admin")])
        store = BlobStore(workdir / "da-store")
        good, bad = b"good rows\n" * 100, b"poisoned rows\n" * 100
        blob = store.put_bytes(good)
        state: dict[str, bytes] = {}
        exposed: list[float] = []
        detected: list[float] = []

        def attacker():
            tx = yield from w.send(ps["da"], "Dataset", "register", b"ds".ljust(32, b"\0"),
                                   bytes.fromhex(blob.digest), "store://da/ds")
            yield w.confirmed(tx, 1)
            state["id"] = w.result(tx)
            yield w.env.timeout(max(0.0, swap - w.env.now))
            store.path_of(blob.digest).write_bytes(bad)  # the served bytes change

        def consumer(at: float):
            yield w.env.timeout(at)
            if "id" not in state:
                return
            onchain = w.clients["Dataset"].history(state["id"])[0].digest
            data = store.path_of(blob.digest).read_bytes()  # what the data company serves
            if hashlib.sha256(data).digest() != onchain:
                detected.append(w.env.now)
            elif data == bad:
                exposed.append(w.env.now)

        w.env.process(attacker())
        for t in fetches:
            w.env.process(consumer(t))
        w.run(13 * HOUR, drain=False)
        w.finish()
        ttd = (min(detected) - swap) if detected else None
        # the swap itself always happens: the question is whether consumers notice
        return Outcome(True, bool(detected), ttd,
                       metrics={"consumers_exposed": float(len(exposed))})
