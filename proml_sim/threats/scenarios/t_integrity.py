"""Artefact integrity between steps: T2 (swap at a hand-off), T5 (broken lineage), T6 (split
view by URL), T8 (mix-and-match of versions).

ProML's consumers are the node's :mod:`proml_sim.node.consumer` checks reading the simulated
chain; the baseline runs the same rules on the centralised database, whose admin is the
attacker (with the outside :class:`~.t_support.Auditor` as its defence).
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from proml_sim.errors import LifecycleError, UsageError
from proml_sim.ir import ZERO32
from proml_sim.node.consumer import (
    ConsumerGuard,
    ConsumerRefused,
    fetch_by_digest,
    tuple_digest,
)
from proml_sim.node.records import InputRef
from proml_sim.node.store import BlobStore
from proml_sim.node.verify import verify
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.kit import Alarm, Auditor, dba_rewrite, ratio, world
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import param, play, salt, send_ok, wait_until
from proml_sim.threats.scenarios.t_support import (
    HOUR,
    TICK,
    baseline_db,
    db_step_digest,
    evidence_source,
    fref,
    hexd,
    latest_evidence,
    put_record,
    sha,
    trials,
    uses,
)

MODEL_STATES = ("verified", "delivered", "audited")


def evaluation(model: bytes, dataset: bytes, *, names: bool = True) -> bytes:
    """A deterministic evaluation report of ``model`` on the dataset with digest ``dataset``
    (every honest verifier computes the same bytes).  ``names``: the report names the model's
    and the dataset's SHA-256 (a metrics-only report does not)."""
    score = int.from_bytes(sha(model + dataset)[:2], "big") / 65535
    rep: dict[str, Any] = {"metrics": {"accuracy": round(0.6 + 0.4 * score, 4)}}
    if names:
        rep.update(model=sha(model).hex(), dataset=dataset.hex())
    return json.dumps(rep, sort_keys=True).encode()


def model_guard(w: Any, **kw: Any) -> ConsumerGuard:
    return ConsumerGuard(w.clients["Model"], content_steps=("train",), approval_step="verify",
                         accept_states=MODEL_STATES, **kw)


def bound_ok(db: Any, aid: str, model: bytes, ev: bytes, dataset: bytes) -> bool:
    """The baseline consumer: the guard's rules on the database's values (the model is the
    recorded train digest and the approval bound exactly this tuple)."""
    approved = db_step_digest(db, aid, "verify")
    return db_step_digest(db, aid, "train") == hexd(model) and approved == tuple_digest(
        sha(model), dataset, sha(ev)).hex()


# -- T2 ---------------------------------------------------------------------------------------
def _t2_plan(tm: ThreatModel, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    p = param(tm, "verifier_check_rate")
    n = param(tm, "verifiers")
    train_at = rng.uniform(0.5, 1.5) * HOUR
    handoff_at = train_at + rng.uniform(0.2, 1.0) * HOUR
    verify_at = sorted(handoff_at + rng.uniform(0.5, 3.0) * HOUR for _ in range(n))
    modes = param(tm, "handoff").split(",")
    if not modes or not set(modes) <= {"MD->V", "V->C"}:
        raise UsageError(f"T2 parameter handoff={param(tm, 'handoff')!r}: use 'MD->V', 'V->C' "
                         "or 'MD->V,V->C' (alternating over seeds)")
    return {"handoff": modes[seed % len(modes)], "diligent": [rng.random() < p for _ in range(n)],
            "train_at": train_at, "handoff_at": handoff_at, "verify_at": verify_at,
            "accept_at": verify_at[-1] + HOUR, "consumer_at": verify_at[-1] + 2.5 * HOUR,
            "good": b"model weights %d\n" % seed * 64,
            "bad": b"backdoored weights %d\n" % seed * 64,
            "data": sha(b"dataset rows %d\n" % seed * 64)}


def _t2_verifiers(n: int) -> list[tuple[str, str, str, str]]:
    """The verifiers beyond the paper's three (parameter ``verifiers``), each in its own domain."""
    return [(f"v{i}", f"verif-{i}", "eu", "Model.verifier") for i in range(3, n)]


def _t2_received(plan: dict[str, Any], who: str) -> bytes:
    """What the (attacker's) hand-off channel delivers to ``who``."""
    swapped = plan["handoff"] == "MD->V" or who == "cons"  # MD->V: the swap circulates
    return bytes(plan["bad"] if swapped else plan["good"])


@scenario("T2")
class HandoffSwap:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t2_plan(tm, seed)
        n = len(plan["verify_at"])  # the developer's domain runs the database
        db = baseline_db(tm, workdir, "dev", _t2_verifiers(n))
        aud = Auditor(db, param(tm, "audit_every_s"))
        d, bad = plan["data"], plan["bad"]
        mid = db.register("op", "Model", "m")
        db.fire("dev", "train", mid, hexd(plan["good"]), plan["train_at"])
        alarms: list[Alarm] = []
        if plan["handoff"] == "MD->V":  # swap, and make the database agree with the bytes
            aud.visit_until(plan["handoff_at"])
            dba_rewrite(db, mid, {"train": hexd(bad)})
        for i, at in enumerate(plan["verify_at"]):
            aud.visit_until(at)
            got = _t2_received(plan, f"v{i}")
            if plan["diligent"][i] and db_step_digest(db, mid, "train") != hexd(got):
                alarms.append(Alarm(at, "verifier", "bytes differ from the recorded train"))
                continue
            with contextlib.suppress(LifecycleError):  # a late approval finds it verified
                db.fire(f"v{i}", "verify", mid,
                        tuple_digest(sha(got), d, sha(evaluation(got, d))).hex(), at)
        at = plan["consumer_at"]
        aud.visit_until(at - 60)
        if plan["handoff"] == "V->C":  # after verification: the consumer's copy, covered up
            dba_rewrite(db, mid, {"train": hexd(bad), "verify": tuple_digest(
                sha(bad), d, sha(evaluation(bad, d))).hex()})
        used = bound_ok(db, mid, bad, evaluation(bad, d), d)
        alarms += aud.visit_until(at + 12 * HOUR)
        db.close()
        start = plan["handoff_at"] if plan["handoff"] == "MD->V" else at - 60
        return trials([used], [bool(alarms)], attack_at=start, alarms=alarms,
                      note=f"hand-off {plan['handoff']}")

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t2_plan(tm, seed)
        n = len(plan["verify_at"])
        w, ps = world(tm, seed, extra=_t2_verifiers(n))
        store = BlobStore(workdir / "exchange")
        d = plan["data"]
        mid = w.client("Model").artefact_id(ps["op"].address, salt("m"))
        alarms: list[Alarm] = []
        used: list[bool] = []

        def story() -> Any:
            yield from send_ok(w, "op", "Model", "register", salt("m"))
            yield wait_until(w.env, plan["train_at"])
            yield from send_ok(w, "dev", "Model", "fire", "train", mid, sha(plan["good"]), "", [])
            for i, at in enumerate(plan["verify_at"]):  # each verifier gets the hand-off
                yield wait_until(w.env, at)
                got, c = _t2_received(plan, f"v{i}"), w.client("Model")
                if plan["diligent"][i] and sha(got) != latest_evidence(c, mid, "train"):
                    alarms.append(Alarm(w.env.now, "verifier", "not the recorded train bytes"))
                    yield from send_ok(w, f"v{i}", "Model", "fire", "reject", mid, sha(got), "",
                                       [])
                elif c.state(mid) == "trained":
                    ev = evaluation(got, d)
                    yield from send_ok(w, f"v{i}", "Model", "fire", "verify", mid, tuple_digest(
                        sha(got), d, sha(ev)), f"store://{store.put_bytes(ev).digest}", [])
            yield wait_until(w.env, plan["accept_at"])
            if w.client("Model").state(mid) == "verified":
                yield from send_ok(w, "op", "Model", "fire", "accept", mid)
            yield wait_until(w.env, plan["consumer_at"])
            got = _t2_received(plan, "cons")
            loc = [h.locator for h in w.clients["Model"].history(mid) if h.step == "verify"]
            ev = store.get(loc[-1].removeprefix("store://")) if loc else b""
            used.append(uses(lambda: model_guard(w).check_approved(mid, got, d, ev), alarms,
                             w.env.now) and got == plan["bad"])

        play(w, plan["consumer_at"] + 600, story(), tail=0.0)
        start = plan["handoff_at"] if plan["handoff"] == "MD->V" else plan["consumer_at"]
        return trials(used, [bool(alarms)], attack_at=start, alarms=alarms,
                      note=f"hand-off {plan['handoff']}")


# -- T5 ---------------------------------------------------------------------------------------
def _t5_plan(tm: ThreatModel, seed: int) -> tuple[list[str], dict[str, bytes]]:
    kinds = [k for k in ("honest", "broken", "lie") for _ in range(param(tm, k))]
    random.Random(seed).shuffle(kinds)
    rows = b"%d,%d" % (seed, seed + 1)
    # what a broken or lying step reads instead: a local edit of the released rows
    return kinds, {"raw": b"x,y\n" + (rows + b"\n") * 50,
                   "labelled": b"x,y,label\n" + (rows + b",cat\n") * 50,
                   "other": b"x,y,label\n" + (rows + b",dog\n") * 50}


def _t5_outcome(kinds: list[str], approved: dict[int, bool], alarms: list[Alarm],
                note: str) -> Outcome:
    """Attempts = the broken and the lying steps; success = such a step approved."""
    bad = [i for i, k in enumerate(kinds) if k != "honest"]

    def rate(kind: str) -> float | None:
        idx = [i for i, k in enumerate(kinds) if k == kind]
        return ratio(sum(approved.get(i, False) for i in idx), len(idx))

    return trials([approved.get(i, False) for i in bad], [False] * len(bad), alarms=alarms,
                  metrics={"broken_lineage_acceptance": rate("broken"),
                           "lie_acceptance": rate("lie"),
                           "honest_acceptance": rate("honest")},
                  note=note)


@scenario("T5")
class BrokenLineage:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        kinds, files = _t5_plan(tm, seed)
        db = baseline_db(tm, workdir, "dev")  # the developer's domain runs the database
        db.conn.execute("CREATE TABLE consumed (artefact TEXT, file TEXT)")
        did = db.register("da", "Dataset", "d", hexd(files["raw"]))
        db.fire("lab", "label", did, hexd(files["labelled"]))
        approved: dict[int, bool] = {}
        for i, kind in enumerate(kinds):
            mid = db.register("op", "Model", f"m{i}")
            read = files["labelled"] if kind == "honest" else files["other"]
            claimed = read if kind == "broken" else files["labelled"]
            db.fire("dev", "train", mid, hexd(b"model of " + read), (i + 1) * TICK)
            db.conn.execute("INSERT INTO consumed VALUES (?, ?)", (mid, hexd(claimed)))
            if kind == "broken":  # the admin makes the recorded input agree with the output
                db.admin_sql("UPDATE consumed SET file=? WHERE artefact=?",
                             (hexd(files["labelled"]), mid))
            got = db.admin_sql("SELECT file FROM consumed WHERE artefact=?", (mid,))[0][0]
            approved[i] = got == db_step_digest(db, did, "label")  # the verifiers' lineage rule
        db.close()
        return _t5_outcome(kinds, approved, [], "lineage checked on the database's records")

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        kinds, files = _t5_plan(tm, seed)
        w, ps = world(tm, seed)
        store = BlobStore(workdir / "exchange")
        did = w.client("Dataset").artefact_id(ps["da"].address, salt("ds"))
        approved: dict[int, bool] = {}
        alarms: list[Alarm] = []

        def data_company() -> Any:
            raw = fref(store, "raw.csv", files["raw"])
            lab = fref(store, "labelled.csv", files["labelled"])
            yield from send_ok(w, "da", "Dataset", "register", salt("ds"), put_record(
                store, ps["da"], "Dataset", "register", name="ds", outputs=(raw,)), "", [])
            for who, step, kw in (("lab", "label", {"input_files": (raw,), "outputs": (lab,)}),
                                  ("da", "review", None),
                                  ("da", "release", {"input_files": (lab,), "outputs": (lab,)})):
                ev: tuple[Any, ...] = () if kw is None else (
                    put_record(store, ps[who], "Dataset", step, did, **kw), "", [])
                yield from send_ok(w, who, "Dataset", "fire", step, did, *ev)

        def step(i: int, kind: str) -> Any:
            yield w.env.timeout((i + 1) * TICK)
            mid = w.client("Model").artefact_id(ps["op"].address, salt(f"m{i}"))
            yield from send_ok(w, "op", "Model", "register", salt(f"m{i}"))
            read = files["labelled"] if kind == "honest" else files["other"]
            claimed = read if kind == "broken" else files["labelled"]  # a lie: the wrong hash
            ds = w.clients["Dataset"]
            inp = InputRef("0x" + did.hex(), "Dataset", ds.version(did),
                           latest_evidence(ds, did).hex())
            model = fref(store, "model.bin", b"model of " + read)
            rec = put_record(store, ps["dev"], "Model", "train", mid, inputs=(inp,),
                             input_files=(fref(store, "train.csv", claimed),), outputs=(model,))
            yield from send_ok(w, "dev", "Model", "fire", "train", mid, rec, "", [did])
            yield w.env.timeout(TICK)
            report = verify(evidence_source(w, store), mid)  # both verifiers run the node's
            problems = [c.detail for c in report.checks if c.name == "lineage" and not c.ok]
            if problems:
                alarms.append(Alarm(w.env.now, "verifier-lineage", problems[0]))
                yield from send_ok(w, "v0", "Model", "fire", "reject", mid, sha(
                    json.dumps(problems).encode()), "", [])
            else:
                ev = evaluation(b"model of " + read, bytes.fromhex(inp.evidence))
                td = tuple_digest(bytes.fromhex(model.sha256), bytes.fromhex(inp.evidence),
                                  sha(ev))
                for v in ("v0", "v1"):
                    yield from send_ok(w, v, "Model", "fire", "verify", mid, td, "", [])
            approved[i] = w.clients["Model"].state(mid) == "verified"

        play(w, (len(kinds) + 3) * TICK, data_company(), *map(step, range(len(kinds)), kinds),
             tail=0.0)
        return _t5_outcome(kinds, approved, alarms, "lineage checked by node verify")


# -- T6 ---------------------------------------------------------------------------------------
def _t6_plan(tm: ThreatModel, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    n = param(tm, "consumers")
    f = param(tm, "targeted_fraction")  # (0: nobody targeted, no attempt; else at least one)
    who = set(rng.sample(range(n), max(1, round(n * f)) if f > 0 else 0))
    split = rng.uniform(1, 3) * HOUR
    # targeted consumers fetch after the split (the attack is on them); others any time
    fetch = [rng.uniform(split, 10 * HOUR) if i in who else rng.uniform(0.3, 10) * HOUR
             for i in range(n)]
    return {"targeted": who, "split": split, "fetch": fetch,
            "url": f"https://data-co.example/ds-{seed}.csv",
            "good": b"feature,label\n" + b"%d,1\n" % seed * 80,
            "bad": b"feature,label\n" + b"%d,0\n" % seed * 80}


def _t6_serve(plan: dict[str, Any], consumer: int, now: float) -> bytes:
    """The data company's web server: a split view by URL after ``split``."""
    targeted = now >= plan["split"] and consumer in plan["targeted"]
    return bytes(plan["bad"] if targeted else plan["good"])


def _t6_outcome(plan: dict[str, Any], used: dict[int, bool], alarms: list[Alarm],
                metrics: Mapping[str, float | None]) -> Outcome:
    served = [i for i in sorted(used) if i in plan["targeted"]]  # every one after the split
    return trials([used[i] for i in served], [bool(alarms)] * len(served),
                  attack_at=plan["split"], alarms=alarms, metrics=metrics)


@scenario("T6")
class SplitView:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t6_plan(tm, seed)
        db = baseline_db(tm, workdir, "da")
        # a careful catalogue records the digest of the honest bytes (as T1's baseline does);
        # the URL is where consumers fetch them
        aid = db.register("da", "Dataset", plan["url"], hexd(plan["good"]))
        used, alarms = {}, []
        for i, at in enumerate(plan["fetch"]):
            used[i] = hexd(_t6_serve(plan, i, at)) == db.digest_of(aid)
            if not used[i]:
                alarms.append(Alarm(at, "consumer", "bytes differ from the recorded digest"))
        db.close()
        return _t6_outcome(plan, used, sorted(alarms, key=lambda a: a.at), {"recovered": 0.0})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t6_plan(tm, seed)
        n = len(plan["fetch"])
        w, ps = world(tm, seed)
        archive = BlobStore(workdir / "archive")  # another domain's replica, by digest
        aid = w.client("Dataset").artefact_id(ps["da"].address, salt("ds"))
        used: dict[int, bool] = {}
        alarms: list[Alarm] = []
        st = {"recovered": 0.0}

        def data_company() -> Any:
            # the URL alone is refused: the contract requires a digest at registration
            tx = yield from send_ok(w, "da", "Dataset", "register", salt("url-only"), ZERO32,
                                    plan["url"], [])
            st["url_only_accepted"] = float(bool(tx.receipt and tx.receipt.status))
            BlobStore(workdir / "da-store", [archive.root]).put_bytes(plan["good"])
            yield from send_ok(w, "da", "Dataset", "register", salt("ds"), sha(plan["good"]),
                               plan["url"], [])

        def consumer(i: int) -> Any:
            yield w.env.timeout(plan["fetch"][i])
            now = w.env.now
            recorded = latest_evidence(w.clients["Dataset"], aid)
            try:
                data, _, bad = fetch_by_digest(recorded, [
                    ("url", lambda: _t6_serve(plan, i, now)),
                    ("archive", lambda: archive.get(recorded.hex()))])
                ConsumerGuard(w.clients["Dataset"]).check_bytes(aid, data)
            except ConsumerRefused:
                used[i] = False  # nothing matched the record: refused, not recovered
                alarms.append(Alarm(now, "consumer", "no copy matches the recorded digest"))
                return
            used[i] = data == plan["bad"]
            if "url" in bad:  # the digest check caught the URL's bytes; the replica served
                alarms.append(Alarm(now, "consumer", "the URL served other bytes"))
                st["recovered"] += 1

        play(w, 11 * HOUR, data_company(), *map(consumer, range(n)), tail=0.0)
        return _t6_outcome(plan, used, sorted(alarms, key=lambda a: a.at), st)


# -- T8 ---------------------------------------------------------------------------------------
def _t8_material(seed: int) -> dict[str, Any]:
    models = [b"model v%d seed %d\n" % (i, seed) * 32 for i in (1, 2, 3)]
    data = [sha(b"x,label\n" + b"%d,%s\n" % (seed, lab) * 40) for lab in (b"a", b"b")]
    # evaluation i is of model i on the dataset version current then (v1 on d1, v2/v3 on d2)
    evals = [evaluation(m, data[min(i, 1)], names=False) for i, m in enumerate(models)]
    tds = [tuple_digest(sha(m), data[min(i, 1)], sha(evals[i])) for i, m in enumerate(models)]
    # every (model, dataset, evaluation) version combination except the approved (3, 2, 3)
    mixes = [(models[m], data[d], evals[e]) for m in range(3) for d in range(2) for e in range(3)
             if (m, d, e) != (2, 1, 2)]
    return {"models": models, "data": data, "evals": evals, "tds": tds, "mixes": mixes}


@scenario("T8")
class MixAndMatch:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        mat = _t8_material(seed)
        db = baseline_db(tm, workdir, "dev")  # the developer's domain runs the database
        aud = Auditor(db, param(tm, "audit_every_s"))
        mid = db.register("op", "Model", "m")
        for i, m in enumerate(mat["models"]):
            db.fire("dev", "train", mid, hexd(m), (2 * i + 1) * TICK)
            for v in ("v0", "v2") if i == 2 else (f"v{i}",):
                db.fire(v, "verify" if i == 2 else "reject", mid, mat["tds"][i].hex(),
                        (2 * i + 2) * TICK)
        at = param(tm, "attack_after_s") + 6 * TICK
        aud.visit_until(at)
        used = []
        for m, d, e in mat["mixes"]:  # for each mix, the admin rewrites the record to match
            dba_rewrite(db, mid, {"verify": tuple_digest(sha(m), d, sha(e)).hex(),
                                  "train": hexd(m)})
            used.append(bound_ok(db, mid, m, e, d))
        alarms = aud.visit_until(at + 24 * HOUR)
        db.close()
        return trials(used, [bool(alarms)] * len(used), attack_at=at, alarms=alarms)

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        mat = _t8_material(seed)
        w, ps = world(tm, seed)
        ms, ds = mat["models"], mat["data"]
        did = w.client("Dataset").artefact_id(ps["da"].address, salt("d"))
        ids = {k: w.client("Model").artefact_id(ps["op"].address, salt(k)) for k in ("t", "e")}

        def story() -> Any:
            yield from send_ok(w, "da", "Dataset", "register", salt("d"), sha(b"raw"), "", [])
            yield from send_ok(w, "lab", "Dataset", "fire", "label", did, ds[0], "", [])
            for key, mid in ids.items():  # "e": an ablation whose approvals sign the evaluation
                yield from send_ok(w, "op", "Model", "register", salt(key))
                for i in range(3):
                    if i == 1 and key == "t":  # the dataset is relabelled between versions
                        yield from send_ok(w, "lab", "Dataset", "fire", "label", did, ds[1], "",
                                           [])
                    yield from send_ok(w, "dev", "Model", "fire", "train", mid, sha(ms[i]), "",
                                       [did])
                    digest = mat["tds"][i] if key == "t" else sha(mat["evals"][i])
                    for v in ("v0", "v2") if i == 2 else (f"v{i}",):
                        yield from send_ok(w, v, "Model", "fire", "verify" if i == 2 else
                                           "reject", mid, digest, "", [])

        play(w, 16 * TICK, story(), tail=0.0)
        guard = model_guard(w)
        alarms: list[Alarm] = []
        used = [uses(partial(guard.check_approved, ids["t"], m, d, e), alarms, w.env.now)
                for m, d, e in mat["mixes"]]
        genuine = guard.check_approved(ids["t"], ms[2], ds[1], mat["evals"][2]) is not None
        # the ablation: approvals signing the evaluation alone, checked element by element
        hist = w.clients["Model"].history(ids["e"])
        approved = [h.digest for h in hist if h.step == "verify"][-1]
        trained = {h.digest for h in hist if h.step == "train"}
        weak = sum(sha(e) == approved and sha(m) in trained and d in ds
                   for m, d, e in mat["mixes"])
        return trials(used, [False] * len(used),
                      metrics={"genuine_accepted": float(genuine),
                               "asr_eval_only_binding": weak / len(mat["mixes"])})
