"""Training data: T3 (an outsourced labeller flips labels) and T10 (undeclared extra training
data), the two integrity threats a ledger cannot prevent: it attributes, traces and, with spot
checks, detects."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import simpy

from proml_sim.ir import Registered, RoleGranted, Transitioned
from proml_sim.node.consumer import sha256
from proml_sim.node.records import InputRef, Record
from proml_sim.node.service import name_salt
from proml_sim.node.store import BlobStore
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.t_integrity import _fref, _record
from proml_sim.threats.scenarios.t_support import (
    TICK,
    baseline_db,
    db_fire,
    hexd,
    latest_evidence,
    lineage_downstream,
    paper_world,
    send_ok,
)

# -- T3 ---------------------------------------------------------------------------------------
CHOICES = (("p",), ("c",), ("p", "c"))


def _t3_plan(tm: ThreatModel, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    rows = int(tm.parameters.get("rows", 200))
    flip = float(tm.parameters.get("flip_fraction", 0.1))
    labels = [rng.randrange(2) for _ in range(rows)]
    flipped = set(rng.sample(range(rows), round(flip * rows)))
    poisoned = [1 - y if i in flipped else y for i, y in enumerate(labels)]
    models = []
    for _ in range(int(tm.parameters.get("models", 8))):
        trains = [rng.choice(CHOICES)]
        if rng.random() < 0.5:  # retrained later, on another choice of datasets
            trains.append(rng.choice(CHOICES))
        models.append(trains)
    raw = "".join(f"{i},{i * 7 % 13}\n" for i in range(rows)).encode()
    other = "".join(f"{i},{i * 5 % 11}\n" for i in range(rows)).encode()
    return {"models": models, "raw": {"p": raw, "c": other}, "flipped": len(flipped),
            "labelled": {"p": _labelled(raw, poisoned),  # the labeller's flipped labels
                         "c": _labelled(other, [rng.randrange(2) for _ in range(rows)])}}


def _labelled(raw: bytes, labels: list[int]) -> bytes:
    lines = raw.decode().splitlines()
    return "".join(f"{x},{y}\n" for x, y in zip(lines, labels, strict=True)).encode()


def _t3_truth(plan: dict[str, Any]) -> set[int]:
    return {i for i, trains in enumerate(plan["models"]) if any("p" in t for t in trains)}


def _recall(found: set[int], truth: set[int]) -> tuple[float, float]:
    hit = len(found & truth)
    return (hit / len(truth) if truth else 1.0), (hit / len(found) if found else 1.0)


@scenario("T3", limit="a ledger cannot tell a wrong label from a right one: the flipped labels "
                     "are used; what ProML adds is exact attribution of the labelled bytes to "
                     "the labeller's key and the recall of every model trained on them")
class LabelFlip:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t3_plan(tm, seed)
        env = simpy.Environment()
        db = baseline_db(workdir, admin="da")  # the data company runs the database
        for lab, dom in (("lab_a", "label-co"), ("lab_b", "label-b-co")):
            db.grant(lab, "Dataset", "labeller", dom)
        ids: dict[str, str] = {}
        mids: list[str] = []

        def data_company():
            for key, lab in (("p", "lab_a"), ("c", "lab_b")):
                data = plan["labelled"][key]
                aid = db.register("da", "Dataset", f"ds-{key}", hexd(plan["raw"][key]), env.now)
                yield env.timeout(TICK)
                db_fire(db, lab, "label", aid, hexd(data), env.now)
                db_fire(db, "da", "review", aid, "", env.now)
                db_fire(db, "da", "release", aid, hexd(data), env.now)
                ids[key] = aid

        def developer():
            yield env.timeout(3 * TICK)
            for i, trains in enumerate(plan["models"]):
                mid = db.register("op", "Model", f"m{i}", "", env.now)
                mids.append(mid)
                for n, t in enumerate(trains):
                    yield env.timeout(TICK)
                    db_fire(db, "dev", "train", mid, hexd(b"model %d.%d" % (i, n)), env.now,
                            [ids[k] for k in t])

        env.process(data_company())
        env.process(developer())
        env.run()
        # discovered: the data company, liable for its subcontractor, shifts the blame
        db.admin_sql("UPDATE history SET actor='lab_b' WHERE artefact=? AND step='label'",
                     (ids["p"],))
        rows = [r for r in db.history(ids["p"]) if r[4] == hexd(plan["labelled"]["p"])]
        attribution = float(bool(rows) and rows[0][2] == "lab_a")
        users = {a for (a,) in db.admin_sql("SELECT DISTINCT artefact FROM inputs WHERE input=?",
                                           (ids["p"],))}
        found = {i for i, m in enumerate(mids) if m in users}
        recall, precision = _recall(found, _t3_truth(plan))
        db.close()
        return Outcome(True, False, None,
                       metrics={"attribution": attribution, "recall": recall,
                                "precision": precision, "blast_radius": float(len(found)),
                                "labels_flipped": float(plan["flipped"])})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t3_plan(tm, seed)
        extra = {"lab_a": ("label-co", "asia"), "lab_b": ("label-b-co", "us")}
        w, ps = paper_world(seed, extra=extra, labellers=list(extra))
        store = BlobStore(workdir / "exchange")
        ids: dict[str, bytes] = {}
        mids: list[bytes] = []

        def data_company():
            for key, lab in (("p", "lab_a"), ("c", "lab_b")):
                data = plan["labelled"][key]
                tx = yield from send_ok(w, ps["da"], "Dataset", "register", name_salt(f"ds-{key}"),
                                        sha256(plan["raw"][key]), "", [])
                aid = w.result(tx)
                yield w.env.timeout(TICK)
                yield from send_ok(w, ps[lab], "Dataset", "fire", "label", aid, sha256(data), "",
                                   [])
                yield from send_ok(w, ps["da"], "Dataset", "fire", "review", aid)
                yield from send_ok(w, ps["da"], "Dataset", "fire", "release", aid, sha256(data),
                                   "", [])
                ids[key] = aid

        def developer():
            yield w.env.timeout(3 * TICK)
            for i, trains in enumerate(plan["models"]):
                tx = yield from send_ok(w, ps["op"], "Model", "register", name_salt(f"m{i}"))
                mid = w.result(tx)
                mids.append(mid)
                for n, t in enumerate(trains):
                    yield w.env.timeout(TICK)
                    yield from send_ok(w, ps["dev"], "Model", "fire", "train", mid,
                                       sha256(b"model %d.%d" % (i, n)), "", [ids[k] for k in t])

        w.env.process(data_company())
        w.env.process(developer())
        horizon = (4 + 2 * len(plan["models"])) * TICK
        w.run(horizon, drain=False)
        w.finish()
        # discovered: who introduced the poisoned bytes?  The first event carrying their digest
        events = w.clients["Dataset"].events()
        bad = sha256(plan["labelled"]["p"])
        domain: dict[str, bytes] = {}
        culprit = None
        for ev in events:
            if isinstance(ev, RoleGranted):
                domain[ev.account] = ev.domain
            elif isinstance(ev, Registered | Transitioned) and ev.digest == bad:
                actor = ev.registrant if isinstance(ev, Registered) else ev.actor
                culprit = (actor, domain.get(actor, b"").rstrip(b"\0").decode(),
                           1 if isinstance(ev, Registered) else ev.version)
                break
        attribution = float(culprit is not None and culprit[0] == ps["lab_a"].address
                            and culprit[1] == "label-co")
        version = culprit[2] if culprit else 1
        found_ids, how = lineage_downstream(w, store, "Dataset", ids["p"], version)
        found = {i for i, m in enumerate(mids) if m in found_ids}
        recall, precision = _recall(found, _t3_truth(plan))
        return Outcome(True, False, None,
                       metrics={"attribution": attribution, "recall": recall,
                                "precision": precision, "blast_radius": float(len(found)),
                                "labels_flipped": float(plan["flipped"])},
                       note=f"affected models found by {how}")


# -- T10 --------------------------------------------------------------------------------------
SWEEP = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)


def fit(rows: list[tuple[float, float]], l2: float) -> bytes:
    """The model: a ridge-regularised line through ``rows``, serialised (deterministic)."""
    n = len(rows)
    mx = sum(x for x, _ in rows) / n
    my = sum(y for _, y in rows) / n
    sxx = sum((x - mx) ** 2 for x, _ in rows)
    sxy = sum((x - mx) * (y - my) for x, y in rows)
    a = sxy / (sxx + l2)
    return json.dumps({"a": round(a, 12), "b": round(my - a * mx, 12), "l2": l2},
                      sort_keys=True).encode()


def _rows(data: bytes) -> list[tuple[float, float]]:
    out = []
    for line in data.decode().splitlines()[1:]:
        x, y = line.split(",")
        out.append((float(x), float(y)))
    return out


def _t10_plan(tm: ThreatModel, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    steps = int(tm.parameters.get("steps", 12))
    cheats = round(steps * float(tm.parameters.get("cheat_rate", 0.4)))
    kinds = ["cheat"] * cheats + ["honest"] * (steps - cheats)
    rng.shuffle(kinds)
    declared = "x,y\n" + "".join(f"{x},{2 * x + 1 + rng.gauss(0, 0.5):.6f}\n"
                                 for x in range(40))
    extra = "x,y\n" + "".join(f"{x},{3 * x - 2 + rng.gauss(0, 0.5):.6f}\n"
                              for x in range(40, 60))
    return {"kinds": kinds, "u": [rng.random() for _ in range(steps)],
            "l2": [round(rng.uniform(0.0, 5.0), 3) for _ in range(steps)],
            "check_delay": [rng.uniform(0.5, 6.0) * TICK for _ in range(steps)],
            "declared": declared.encode(), "extra": extra.encode(),
            "rate": float(tm.parameters.get("spot_check_rate", 0.25))}


def _t10_train(plan: dict[str, Any], i: int) -> bytes:
    rows = _rows(plan["declared"])
    if plan["kinds"][i] == "cheat":
        rows += _rows(plan["extra"])
    return fit(rows, plan["l2"][i])


def _t10_outcome(plan: dict[str, Any], flagged: dict[int, float], trained: dict[int, float]
                 ) -> Outcome:
    cheats = [i for i, k in enumerate(plan["kinds"]) if k == "cheat"]
    honest = [i for i, k in enumerate(plan["kinds"]) if k == "honest"]

    def caught(p: float) -> list[int]:
        return [i for i in cheats if i in flagged and plan["u"][i] < p]

    series = [(p, len(caught(p)) / len(cheats) if cheats else 0.0) for p in SWEEP]
    now = caught(plan["rate"])
    ttd = [flagged[i] - trained[i] for i in now]
    return Outcome(
        bool(cheats), bool(cheats) and len(now) == len(cheats),
        max(ttd) if ttd and len(now) == len(cheats) else None,
        metrics={"detection_at_spot_rate": len(now) / len(cheats) if cheats else 0.0,
                 "spot_check_rate": plan["rate"], "cheats": float(len(cheats)),
                 "false_alarms": float(sum(1 for i in honest if i in flagged))},
        series={"detection_by_spot_rate": series})


@scenario("T10", limit="undeclared data leaves no trace in the provenance: it is found only "
                      "when someone re-runs the step from its declared inputs, so detection "
                      "tracks the spot-check rate (series detection_by_spot_rate)")
class UndeclaredData:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t10_plan(tm, seed)
        env = simpy.Environment()
        db = baseline_db(workdir, admin="dev")  # the developer's domain runs the database
        db.conn.execute("CREATE TABLE params (artefact TEXT, version INTEGER, l2 REAL)")
        files = {hexd(plan["declared"]): plan["declared"], hexd(plan["extra"]): plan["extra"]}
        mid = db.register("op", "Model", "m")
        flagged: dict[int, float] = {}
        trained: dict[int, float] = {}
        version: dict[int, int] = {}

        def developer():
            for i in range(len(plan["kinds"])):
                yield env.timeout(TICK)
                db_fire(db, "dev", "train", mid, hexd(_t10_train(plan, i)), env.now,
                        [hexd(plan["declared"])])
                version[i] = v = db.conn.execute("SELECT version FROM artefacts WHERE id=?",
                                                 (mid,)).fetchone()[0]
                db.conn.execute("INSERT INTO params VALUES (?, ?, ?)", (mid, v, plan["l2"][i]))
                db.conn.commit()
                trained[i] = env.now
                env.process(auditor(i))

        def auditor(i: int):
            yield env.timeout(plan["check_delay"][i])
            v = version[i]
            cheat = plan["kinds"][i] == "cheat"
            if cheat:  # the admin sees the check coming: the extra data is "declared" for it
                db.admin_sql("INSERT INTO inputs VALUES (?, ?, ?)", (mid, v, hexd(plan["extra"])))
            declared = [f for (f,) in db.admin_sql(
                "SELECT input FROM inputs WHERE artefact=? AND version=?", (mid, v))]
            l2 = db.admin_sql("SELECT l2 FROM params WHERE artefact=? AND version=?",
                              (mid, v))[0][0]
            recorded = next(r for r in db.history(mid) if r[3] == v)[4]
            if cheat:
                db.admin_sql("DELETE FROM inputs WHERE artefact=? AND version=? AND input=?",
                             (mid, v, hexd(plan["extra"])))
            rows = [r for f in declared for r in _rows(files[f])]
            if hexd(fit(rows, l2)) != recorded:
                flagged[i] = env.now

        env.process(developer())
        env.run()
        db.close()
        return _t10_outcome(plan, flagged, trained)

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t10_plan(tm, seed)
        w, ps = paper_world(seed, extra={"aud": ("audit-co", "eu")})
        store = BlobStore(workdir / "exchange")
        st: dict[str, Any] = {}
        flagged: dict[int, float] = {}
        trained: dict[int, float] = {}

        def put(rec: Record) -> bytes:
            return bytes.fromhex(store.put_bytes(rec.canonical()).digest)

        def developer():
            dref = _fref(store, "declared.csv", plan["declared"])
            rec = _record("Dataset", "register", None, "ds", ps["da"], outputs=(dref,))
            tx = yield from send_ok(w, ps["da"], "Dataset", "register", name_salt("ds"),
                                    put(rec), "", [])
            did = w.result(tx)
            tx = yield from send_ok(w, ps["op"], "Model", "register", name_salt("m"))
            st["mid"] = mid = w.result(tx)
            ds = w.clients["Dataset"]
            inp = InputRef("0x" + did.hex(), "Dataset", ds.version(did),
                           latest_evidence(ds, did).hex())
            for i in range(len(plan["kinds"])):
                yield w.env.timeout(TICK)
                model = _fref(store, "model.json", _t10_train(plan, i))
                # the record declares the dataset only, whatever the step really read
                rec = _record("Model", "train", mid, "m", ps["dev"], inputs=(inp,),
                              input_files=(dref,), outputs=(model,),
                              params={"l2": plan["l2"][i]})
                tx = yield from send_ok(w, ps["dev"], "Model", "fire", "train", mid, put(rec),
                                        "", [did])
                trained[i] = w.env.now
                w.env.process(auditor(i, w.clients["Model"].version(mid)))

        def auditor(i: int, version: int):
            """Re-run the step from what the chain says it declared (its record, by digest)."""
            yield w.env.timeout(plan["check_delay"][i])
            hist = w.clients["Model"].history(st["mid"])
            digest = next(h.digest for h in hist if h.version == version)
            rec = Record.from_bytes(store.get(digest.hex()))
            rows = [r for f in rec.input_files for r in _rows(store.get(f.sha256))]
            if hexd(fit(rows, rec.params["l2"])) != rec.outputs[0].sha256:
                flagged[i] = w.env.now

        w.env.process(developer())
        w.run((len(plan["kinds"]) + 8) * TICK, drain=False)
        w.finish()
        return _t10_outcome(plan, flagged, trained)
