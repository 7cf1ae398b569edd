"""Training data: T3 (an outsourced labeller flips labels) and T10 (undeclared extra training
data), the two integrity threats a ledger cannot prevent: it attributes, traces and, with spot
checks, detects."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from proml_sim.ir import Registered, Transitioned
from proml_sim.node.lineage import Lineage, VersionKey
from proml_sim.node.records import InputRef, Record
from proml_sim.node.store import BlobStore
from proml_sim.sim.world import domain_id
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.kit import Alarm, ratio, world
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import param, play, salt, send_ok, trials_of
from proml_sim.threats.scenarios.t_support import (
    TICK,
    baseline_db,
    db_dataset,
    evidence_source,
    fref,
    hexd,
    latest_evidence,
    put_record,
    sha,
    trials,
)

# -- T3 ---------------------------------------------------------------------------------------
CHOICES = (("p",), ("c",), ("p", "c"))  # the poisoned dataset, the clean one, or both


def _t3_plan(tm: ThreatModel, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    rows = param(tm, "rows")
    flipped = set(rng.sample(range(rows), round(param(tm, "flip_fraction") * rows)))
    raw = {"p": "".join(f"{i},{i * 7 % 13}\n" for i in range(rows)),
           "c": "".join(f"{i},{i * 5 % 11}\n" for i in range(rows))}
    labels = {k: [rng.randrange(2) for _ in range(rows)] for k in raw}
    labels["p"] = [1 - y if i in flipped else y for i, y in enumerate(labels["p"])]
    # each model trained on a choice of datasets, half of them retrained on another choice
    models = [[rng.choice(CHOICES)] + [rng.choice(CHOICES)] * (rng.random() < 0.5)
              for _ in range(param(tm, "models"))]
    return {"models": models, "raw": {k: v.encode() for k, v in raw.items()},
            "labelled": {k: "".join(f"{x},{y}\n" for x, y in zip(
                raw[k].splitlines(), labels[k], strict=True)).encode() for k in raw},
            "truth": {i for i, ts in enumerate(models) if any("p" in t for t in ts)},
            "flipped": float(len(flipped))}


def _t3_outcome(plan: dict[str, Any], attribution: bool, found: set[int], note: str = ""
                ) -> Outcome:
    """Success: models were trained on the flipped labels (always: nothing can tell a wrong
    label); what differs is whom the evidence names and which models a recall finds.  No
    label flipped (flip_fraction 0, or too few rows), or no model trained on the poisoned
    dataset (a seed whose few ``models`` all chose the clean one): no attack attempt, never
    "prevented" -- nothing refused the flipped labels, nobody used them."""
    hit, truth = len(found & plan["truth"]), plan["truth"]
    attempts = [True] if plan["flipped"] and truth else []
    return trials(attempts, [False] * len(attempts), note=note, metrics={
        "attribution": float(attribution), "recall": ratio(hit, len(truth)),
        "precision": ratio(hit, len(found)), "blast_radius": float(len(found)),
        "labels_flipped": plan["flipped"]})


@scenario("T3")
class LabelFlip:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t3_plan(tm, seed)
        db = baseline_db(tm, workdir, "da")
        db.conn.execute("CREATE TABLE inputs (artefact TEXT, input TEXT)")  # its lineage
        ids = {}
        for key, lab in (("p", "lab"), ("c", "lab_b")):
            ids[key] = db_dataset(db, f"ds-{key}", hexd(plan["raw"][key]),
                                  hexd(plan["labelled"][key]), lab)
        mids = [db.register("op", "Model", f"m{i}") for i in range(len(plan["models"]))]
        for i, trains in enumerate(plan["models"]):
            for n, t in enumerate(trains):
                db.fire("dev", "train", mids[i], hexd(b"model %d.%d" % (i, n)))
                db.conn.executemany("INSERT INTO inputs VALUES (?, ?)", [(mids[i], ids[k])
                                                                         for k in t])
        db.conn.commit()
        # discovered: the data company, liable for its subcontractor, shifts the blame
        db.admin_sql("UPDATE history SET actor='lab_b' WHERE artefact=? AND step='label'",
                     (ids["p"],))
        first = next(r for r in db.history(ids["p"]) if r[4] == hexd(plan["labelled"]["p"]))
        users = {a for (a,) in db.admin_sql("SELECT artefact FROM inputs WHERE input=?",
                                           (ids["p"],))}
        db.close()
        return _t3_outcome(plan, first[2] == "lab", {i for i, m in enumerate(mids) if m in users})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t3_plan(tm, seed)
        w, ps = world(tm, seed)
        ids = {k: w.client("Dataset").artefact_id(ps["da"].address, salt(f"ds-{k}"))
               for k in "pc"}
        mids = [w.client("Model").artefact_id(ps["op"].address, salt(f"m{i}"))
                for i in range(len(plan["models"]))]

        def story() -> Any:
            for key, lab in (("p", "lab"), ("c", "lab_b")):
                data, aid = sha(plan["labelled"][key]), ids[key]
                yield from send_ok(w, "da", "Dataset", "register", salt(f"ds-{key}"),
                                   sha(plan["raw"][key]), "", [])
                yield from send_ok(w, lab, "Dataset", "fire", "label", aid, data, "", [])
                yield from send_ok(w, "da", "Dataset", "fire", "review", aid)
                yield from send_ok(w, "da", "Dataset", "fire", "release", aid, data, "", [])
            for i, trains in enumerate(plan["models"]):
                yield from send_ok(w, "op", "Model", "register", salt(f"m{i}"))
                for n, t in enumerate(trains):
                    yield from send_ok(w, "dev", "Model", "fire", "train", mids[i],
                                       sha(b"model %d.%d" % (i, n)), "", [ids[k] for k in t])

        play(w, (4 + 2 * len(plan["models"])) * TICK, story(), tail=0.0)
        # discovered: who introduced the poisoned bytes?  The first event carrying their digest
        c, bad = w.client("Dataset"), sha(plan["labelled"]["p"])
        ev = next(e for e in c.events() if isinstance(e, Registered | Transitioned)
                  and e.digest == bad)
        actor = ev.registrant if isinstance(ev, Registered) else ev.actor
        attribution = (actor, c.domain_of(actor)) == (ps["lab"].address, domain_id("label-co"))
        version = getattr(ev, "version", 1)
        radius = Lineage(evidence_source(w, BlobStore(workdir / "exchange"))).blast_radius(
            VersionKey("Dataset", "0x" + ids["p"].hex(), version), version)
        found = {bytes.fromhex(a["id"][2:]) for a in radius.artefacts.get("Model", [])}
        return _t3_outcome(plan, attribution, {i for i, m in enumerate(mids) if m in found},
                           note="affected models found by node lineage")


# -- T10 --------------------------------------------------------------------------------------
SWEEP = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)


def fit(rows: list[tuple[float, float]], l2: float) -> bytes:
    """The model: a ridge-regularised line through ``rows``, serialised (deterministic)."""
    n = len(rows)
    mx, my = sum(x for x, _ in rows) / n, sum(y for _, y in rows) / n
    a = sum((x - mx) * (y - my) for x, y in rows) / (sum((x - mx) ** 2 for x, _ in rows) + l2)
    return json.dumps({"a": round(a, 12), "b": round(my - a * mx, 12), "l2": l2},
                      sort_keys=True).encode()


def _rows(data: bytes) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in (ln.split(",") for ln in
                                              data.decode().splitlines()[1:])]


def _t10_plan(tm: ThreatModel, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    steps = param(tm, "steps")
    cheats = round(steps * param(tm, "cheat_rate"))
    kinds = ["cheat"] * cheats + ["honest"] * (steps - cheats)
    rng.shuffle(kinds)
    declared = "x,y\n" + "".join(f"{x},{2 * x + 1 + rng.gauss(0, 0.5):.6f}\n" for x in range(40))
    extra = "x,y\n" + "".join(f"{x},{3 * x - 2 + rng.gauss(0, 0.5):.6f}\n" for x in range(40, 60))
    return {"kinds": kinds, "u": [rng.random() for _ in range(steps)],
            "l2": [round(rng.uniform(0.0, 5.0), 3) for _ in range(steps)],
            "delay": [rng.uniform(0.5, 6.0) * TICK for _ in range(steps)],
            "declared": declared.encode(), "extra": extra.encode(),
            "rate": param(tm, "spot_check_rate")}


def _t10_model(plan: dict[str, Any], i: int) -> bytes:
    rows = _rows(plan["declared"]) + _rows(plan["extra"]) * (plan["kinds"][i] == "cheat")
    return fit(rows, plan["l2"][i])


def _t10_outcome(plan: dict[str, Any], flagged: dict[int, float],
                 started: dict[int, float]) -> Outcome:
    """Attempts = the cheating steps (each trains on undeclared data: always reached); caught =
    a spot check (made with probability spot_check_rate) re-ran it and flagged it; its time to
    detect runs from that step's start (``started``: it was null, "detected" with no time)."""
    cheats = [i for i, k in enumerate(plan["kinds"]) if k == "cheat"]

    def caught(p: float) -> list[bool]:
        return [i in flagged and plan["u"][i] < p for i in cheats]

    seen = caught(plan["rate"])
    o = trials_of([(True, started[i], [Alarm(flagged[i], "spot-check")] if c else [])
                   for i, c in zip(cheats, seen, strict=True)], metrics={
        "false_alarms": float(sum(1 for i in flagged if plan["kinds"][i] == "honest"))})
    # (no cheating step: nothing to detect, no point)
    o.series["detection_by_spot_rate"] = [(p, sum(caught(p)) / len(cheats)) for p in SWEEP
                                          if cheats]
    return o


@scenario("T10")
class UndeclaredData:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t10_plan(tm, seed)
        db = baseline_db(tm, workdir, "dev")  # the developer's domain runs the database
        db.conn.execute("CREATE TABLE inputs (version INTEGER, input TEXT, l2 REAL)")
        files = {hexd(plan["declared"]): plan["declared"], hexd(plan["extra"]): plan["extra"]}
        mid = db.register("op", "Model", "m")
        flagged: dict[int, float] = {}
        for i, kind in enumerate(plan["kinds"]):
            db.fire("dev", "train", mid, hexd(_t10_model(plan, i)), (i + 1) * TICK)
            v = len(db.history(mid))
            db.conn.execute("INSERT INTO inputs VALUES (?, ?, ?)",
                            (v, hexd(plan["declared"]), plan["l2"][i]))
            # the auditor's re-run comes; the admin sees it coming: the extra data is
            # "declared" while it runs, then removed again
            if kind == "cheat":
                db.admin_sql("INSERT INTO inputs VALUES (?, ?, ?)",
                             (v, hexd(plan["extra"]), plan["l2"][i]))
            declared = db.admin_sql("SELECT input, l2 FROM inputs WHERE version=?", (v,))
            rows = [r for f, _ in declared for r in _rows(files[f])]
            if hexd(fit(rows, declared[0][1])) != db.history(mid)[-1][4]:
                flagged[i] = (i + 1) * TICK + plan["delay"][i]
            db.admin_sql("DELETE FROM inputs WHERE version=? AND input=?", (v, hexd(plan["extra"])))
        db.close()
        return _t10_outcome(plan, flagged, {i: (i + 1) * TICK for i in range(len(plan["kinds"]))})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t10_plan(tm, seed)
        w, ps = world(tm, seed)
        store = BlobStore(workdir / "exchange")
        did = w.client("Dataset").artefact_id(ps["da"].address, salt("ds"))
        mid = w.client("Model").artefact_id(ps["op"].address, salt("m"))
        flagged: dict[int, float] = {}
        started: dict[int, float] = {}

        def developer() -> Any:
            dref = fref(store, "declared.csv", plan["declared"])
            yield from send_ok(w, "da", "Dataset", "register", salt("ds"), put_record(
                store, ps["da"], "Dataset", "register", name="ds", outputs=(dref,)), "", [])
            yield from send_ok(w, "op", "Model", "register", salt("m"))
            ds = w.clients["Dataset"]
            inp = InputRef("0x" + did.hex(), "Dataset", 1, latest_evidence(ds, did).hex())
            for i in range(len(plan["kinds"])):
                yield w.env.timeout(TICK)
                started[i] = w.env.now
                # the record declares the dataset only, whatever the step really read
                rec = put_record(store, ps["dev"], "Model", "train", mid, inputs=(inp,),
                                 input_files=(dref,), params={"l2": plan["l2"][i]},
                                 outputs=(fref(store, "model.json", _t10_model(plan, i)),))
                yield from send_ok(w, "dev", "Model", "fire", "train", mid, rec, "", [did])
                w.env.process(auditor(i, w.clients["Model"].version(mid)))

        def auditor(i: int, version: int) -> Any:
            """Re-run the step from what the chain says it declared (its record, by digest)."""
            yield w.env.timeout(plan["delay"][i])
            digest = next(h.digest for h in w.clients["Model"].history(mid)
                          if h.version == version)
            rec = Record.from_bytes(store.get(digest.hex()))
            rows = [r for f in rec.input_files for r in _rows(store.get(f.sha256))]
            if hexd(fit(rows, rec.params["l2"])) != rec.outputs[0].sha256:
                flagged[i] = w.env.now

        play(w, (len(plan["kinds"]) + 8) * TICK, developer(), tail=0.0)
        return _t10_outcome(plan, flagged, started)
