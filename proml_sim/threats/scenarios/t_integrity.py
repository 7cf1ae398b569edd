"""Artefact integrity between steps: T2 (swap at a hand-off), T5 (broken lineage), T6 (split
view by URL), T8 (mix-and-match of versions).

In every ProML run the consumer-side checks are the node's :mod:`proml_sim.node.consumer`
(``ConsumerGuard``, ``tuple_digest``, ``fetch_by_digest``) reading the simulated chain; the
baseline runs the same checks against the centralised database, whose admin is the attacker
(or, for T6, the URL catalogue the baseline keeps instead of digests).
"""

from __future__ import annotations

import contextlib
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import simpy

from proml_sim.errors import LifecycleError
from proml_sim.ir import ZERO32
from proml_sim.node.consumer import (
    ConsumerGuard,
    ConsumerRefused,
    NotApproved,
    fetch_by_digest,
    sha256,
    tuple_digest,
)
from proml_sim.node.records import FileRef, InputRef, Record
from proml_sim.node.service import name_salt
from proml_sim.node.store import BlobStore
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import salt
from proml_sim.threats.scenarios.t_support import (
    HOUR,
    TICK,
    WorldSource,
    baseline_db,
    db_fire,
    db_step_digest,
    hexd,
    latest_evidence,
    node_module,
    ok,
    paper_world,
    send_ok,
)

MODEL_STATES = ("verified", "delivered", "audited")


def evaluation(model: bytes, dataset: bytes, *, names: bool = True) -> bytes:
    """A deterministic evaluation report of ``model`` on the dataset with digest ``dataset``
    (every honest verifier computes the same bytes).  ``names``: the report names the model's
    and the dataset's SHA-256 (a metrics-only report does not)."""
    score = int.from_bytes(sha256(model + dataset)[:2], "big") / 65535
    rep: dict[str, Any] = {"metrics": {"accuracy": round(0.6 + 0.4 * score, 4)}}
    if names:
        rep.update(model=sha256(model).hex(), dataset=dataset.hex())
    return json.dumps(rep, sort_keys=True).encode()


def model_guard(w: Any) -> ConsumerGuard:
    return ConsumerGuard(w.clients["Model"], content_steps=("train",), approval_step="verify",
                         accept_states=MODEL_STATES)


def bound_ok(model: bytes, ev: bytes, dataset: bytes, recorded_model: bytes | None,
             approved: bytes | None) -> str | None:
    """The baseline consumer's check (the guard's rules on the database's values): ``None`` if
    the model is the recorded one and the approval bound exactly this tuple, else the reason."""
    if recorded_model is None or approved is None:
        return "not approved"
    if sha256(model) != recorded_model:
        return "DigestMismatch"
    if tuple_digest(sha256(model), dataset, sha256(ev)) != approved:
        return "TupleMismatch"
    return None


def _hex_or_none(h: str | None) -> bytes | None:
    return bytes.fromhex(h) if h else None


# -- T2 ---------------------------------------------------------------------------------------
HANDOFFS = ("MD->V", "V->C")


def _t2_plan(tm: ThreatModel, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    p = float(tm.parameters.get("verifier_check_rate", 0.5))
    train_at = rng.uniform(0.5, 1.5) * HOUR
    handoff_at = train_at + rng.uniform(0.2, 1.0) * HOUR
    verify_at = [handoff_at + rng.uniform(0.5, 3.0) * HOUR for _ in range(3)]
    accept_at = max(verify_at) + HOUR
    return {"handoff": HANDOFFS[seed % 2], "diligent": [rng.random() < p for _ in range(3)],
            "train_at": train_at, "handoff_at": handoff_at, "verify_at": verify_at,
            "accept_at": accept_at, "consumer_at": accept_at + rng.uniform(0.5, 2.0) * HOUR,
            "good": b"model weights %d\n" % seed * 64,
            "bad": b"backdoored weights %d\n" % seed * 64,
            "data": b"dataset rows %d\n" % seed * 64}


def _t2_received(plan: dict[str, Any], who: str) -> bytes:
    """What the (attacker's) hand-off channel delivers to ``who``."""
    swapped = plan["handoff"] == "MD->V" or who == "cons"  # MD->V: the swap circulates
    return bytes(plan["bad"] if swapped else plan["good"])


def _t2_outcome(plan: dict[str, Any], det: list[tuple[str, float]], accepted: list[bytes],
                swapped_verified: bool) -> Outcome:
    swap_at = plan["handoff_at"] if plan["handoff"] == "MD->V" else plan["consumer_at"]
    first = min(det, key=lambda d: d[1]) if det else None
    where = {d[0] for d in det}
    used_bad = any(a == plan["bad"] for a in accepted)
    return Outcome(
        True, first is not None and not used_bad,
        (first[1] - swap_at) if first is not None and not used_bad else None,
        metrics={"detected_at_verifier": float("V" in where),
                 "detected_at_consumer": float("C" in where),
                 "swapped_accepted": float(used_bad),
                 "swapped_approved": float(swapped_verified),
                 "handoff_md_v": float(plan["handoff"] == "MD->V")},
        note=f"hand-off {plan['handoff']}")


@scenario("T2")
class HandoffSwap:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t2_plan(tm, seed)
        env = simpy.Environment()
        db = baseline_db(workdir, admin="dev")  # the developer's domain runs the database
        d = sha256(plan["data"])
        mid = db.register("op", "Model", "m")
        did = db.register("da", "Dataset", "d", d.hex())
        det: list[tuple[str, float]] = []
        accepted: list[bytes] = []
        evals: dict[bytes, bytes] = {}

        def developer():
            yield env.timeout(plan["train_at"])
            db_fire(db, "dev", "train", mid, hexd(plan["good"]), env.now, [did])
            if plan["handoff"] == "MD->V":  # swap, and make the database agree with the bytes
                yield env.timeout(plan["handoff_at"] - env.now)
                db.admin_sql("UPDATE history SET digest=? WHERE artefact=? AND step='train'",
                             (hexd(plan["bad"]), mid))

        def verifier(i: int):
            yield env.timeout(plan["verify_at"][i])
            got = _t2_received(plan, f"v{i}")
            if plan["diligent"][i] and db_step_digest(db, mid, "train") != hexd(got):
                det.append(("V", env.now))
                return
            ev = evaluation(got, d)
            td = tuple_digest(sha256(got), d, sha256(ev))
            evals[td] = ev
            with contextlib.suppress(LifecycleError):  # the third approval finds it verified
                db_fire(db, f"v{i}", "verify", mid, td.hex(), env.now)

        def attacker_v_c():  # after verification: swap the consumer's copy, cover it up
            yield env.timeout(plan["consumer_at"] - 60 - env.now)
            bad = plan["bad"]
            forged = evaluation(bad, d)
            td = tuple_digest(sha256(bad), d, sha256(forged))
            evals[td] = forged
            db.admin_sql("UPDATE history SET digest=? WHERE artefact=? AND step='train'",
                         (hexd(bad), mid))
            db.admin_sql("UPDATE history SET digest=? WHERE artefact=? AND step='verify'",
                         (td.hex(), mid))
            db.admin_sql("UPDATE approvals SET digest=? WHERE artefact=?", (td.hex(), mid))

        def consumer():
            yield env.timeout(plan["consumer_at"])
            got = _t2_received(plan, "cons")
            approved = _hex_or_none(db_step_digest(db, mid, "verify"))
            ev = evals.get(approved or b"", b"")
            why = bound_ok(got, ev, d, _hex_or_none(db_step_digest(db, mid, "train")), approved)
            if why is None:
                accepted.append(got)
            elif why != "not approved" and got == plan["bad"]:
                det.append(("C", env.now))

        env.process(developer())
        for i in range(3):
            env.process(verifier(i))
        if plan["handoff"] == "V->C":
            env.process(attacker_v_c())
        env.process(consumer())
        env.run()
        state = db.admin_sql("SELECT state FROM artefacts WHERE id=?", (mid,))[0][0]
        db.close()
        swapped_verified = state == "verified" and plan["handoff"] == "MD->V"
        return _t2_outcome(plan, det, accepted, swapped_verified)

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t2_plan(tm, seed)
        w, ps = paper_world(seed, extra={"cons": ("cons-co", "us")})
        store = BlobStore(workdir / "exchange")
        d = sha256(plan["data"])
        st: dict[str, Any] = {}
        det: list[tuple[str, float]] = []
        accepted: list[bytes] = []

        def developer():
            tx = yield from send_ok(w, ps["op"], "Model", "register", salt("m"))
            st["mid"] = w.result(tx)
            tx = yield from send_ok(w, ps["da"], "Dataset", "register", salt("d"), d, "", [])
            did = w.result(tx)
            yield w.env.timeout(max(0.0, plan["train_at"] - w.env.now))
            blob = store.put_bytes(plan["good"])
            yield from send_ok(w, ps["dev"], "Model", "fire", "train", st["mid"],
                               sha256(plan["good"]), f"store://{blob.digest}", [did])

        def verifier(i: int):
            yield w.env.timeout(plan["verify_at"][i])
            me = ps[f"v{i}"]
            got = _t2_received(plan, f"v{i}")
            recorded = latest_evidence(w.clients["Model"], st["mid"], "train")
            if plan["diligent"][i] and sha256(got) != recorded:
                det.append(("V", w.env.now))
                report = json.dumps({"finding": "model bytes received differ from the "
                                     "recorded train digest", "received": sha256(got).hex(),
                                     "recorded": recorded.hex()}, sort_keys=True).encode()
                blob = store.put_bytes(report)
                yield from send_ok(w, me, "Model", "fire", "reject", st["mid"],
                                   sha256(report), f"store://{blob.digest}", [])
                return
            ev = evaluation(got, d)
            blob = store.put_bytes(ev)
            yield from send_ok(w, me, "Model", "fire", "verify", st["mid"],
                               tuple_digest(sha256(got), d, sha256(ev)),
                               f"store://{blob.digest}", [])

        def operator():
            yield w.env.timeout(plan["accept_at"])
            if w.clients["Model"].state(st["mid"]) == "verified":
                yield from send_ok(w, ps["op"], "Model", "fire", "accept", st["mid"])

        def consumer():
            yield w.env.timeout(plan["consumer_at"])
            got = _t2_received(plan, "cons")
            hist = w.clients["Model"].history(st["mid"])
            loc = [h.locator for h in hist if h.step == "verify"]
            ev = store.get(loc[-1].removeprefix("store://")) if loc else b""
            try:
                model_guard(w).check_approved(st["mid"], got, d, ev)
                accepted.append(got)
            except NotApproved:
                pass  # nothing approved to use (a verifier rejected the swapped model)
            except ConsumerRefused:
                if got == plan["bad"]:
                    det.append(("C", w.env.now))

        w.env.process(developer())
        for i in range(3):
            w.env.process(verifier(i))
        w.env.process(operator())
        w.env.process(consumer())
        w.run(plan["consumer_at"] + 600, drain=False)
        w.finish()
        c = w.clients["Model"]
        swapped_verified = False
        if c.state(st["mid"]) in MODEL_STATES:
            ap = [h.digest for h in c.history(st["mid"]) if h.step == "verify"][-1]
            ev = evaluation(plan["bad"], d)
            swapped_verified = ap == tuple_digest(sha256(plan["bad"]), d, sha256(ev))
        return _t2_outcome(plan, det, accepted, swapped_verified)


# -- T5 ---------------------------------------------------------------------------------------
def _record(lifecycle: str, step: str, artefact: bytes | None, name: str | None, actor: Any,
            *, inputs: tuple[InputRef, ...] = (), input_files: tuple[FileRef, ...] = (),
            outputs: tuple[FileRef, ...] = (), params: dict[str, Any] | None = None) -> Record:
    return Record(lifecycle=lifecycle, step=step,
                  artefact=("0x" + artefact.hex()) if artefact else None, name=name,
                  actor=actor.address, node=actor.name, domain=actor.domain,
                  time=datetime(2024, 1, 1, tzinfo=UTC).isoformat(timespec="seconds"),
                  inputs=inputs, input_files=input_files, outputs=outputs,
                  params=dict(params or {}))


def _fref(store: BlobStore, name: str, data: bytes) -> FileRef:
    blob = store.put_bytes(data)
    return FileRef(name, blob.digest, blob.size)


def local_lineage_problems(store: BlobStore, client: Any, dataset: Any, rec: Record) -> list[str]:
    """The lineage rule without the node's verify module: each input the record names carries
    the input's on-chain evidence, and each input file is an output of that evidence's record."""
    problems = []
    for ref in rec.inputs:
        aid = bytes.fromhex(ref.artefact[2:])
        chain = latest_evidence(dataset if ref.lifecycle == "Dataset" else client, aid)
        if ref.evidence != chain.hex():
            problems.append(f"input {ref.artefact} evidence {ref.evidence} is not on chain")
            continue
        made = Record.from_bytes(store.get(chain.hex()))
        outs = {f.sha256 for f in made.outputs}
        problems += [f"input file {f.name} is not an output of {ref.artefact}"
                     for f in rec.input_files if f.sha256 not in outs]
    return problems


def lineage_findings(w: Any, store: BlobStore, mid: bytes) -> tuple[list[str], str]:
    """(lineage problems of model ``mid``, which checker): the node's ``verify`` (its
    ``lineage`` checks) when that module is installed, else :func:`local_lineage_problems`."""
    mod = node_module("verify")
    if mod is not None:
        try:
            report = mod.verify(WorldSource(w, store), mid)
            return [c.detail for c in report.checks if c.name == "lineage" and not c.ok], \
                "node verify"
        except (AttributeError, TypeError):
            pass
    c = w.clients["Model"]
    train = [h for h in c.history(mid) if h.step == "train"][-1]
    rec = Record.from_bytes(store.get(train.digest.hex()))
    return local_lineage_problems(store, c, w.clients["Dataset"], rec), "local rule"


T5_KINDS = ("honest", "broken", "lie")


def _t5_plan(tm: ThreatModel, seed: int) -> list[str]:
    n = {k: int(tm.parameters.get(k, d)) for k, d in (("honest", 3), ("broken", 2), ("lie", 1))}
    kinds = [k for k in T5_KINDS for _ in range(n[k])]
    random.Random(seed).shuffle(kinds)
    return kinds


def _t5_files(seed: int) -> dict[str, bytes]:
    return {"raw": b"x,y\n" + b"%d,%d\n" % (seed, seed + 1) * 50,
            "labelled": b"x,y,label\n" + b"%d,%d,cat\n" % (seed, seed + 1) * 50,
            # what a broken step reads instead: the unreviewed raw rows, or a local edit
            "other": b"x,y,label\n" + b"%d,%d,dog\n" % (seed, seed + 1) * 50}


def _t5_outcome(kinds: list[str], accepted: dict[int, bool], refused_at: dict[int, float],
                trained_at: dict[int, float], checker: str) -> Outcome:
    def rate(kind: str) -> float:
        idx = [i for i, k in enumerate(kinds) if k == kind]
        return sum(accepted.get(i, False) for i in idx) / len(idx) if idx else 0.0

    broken = [i for i, k in enumerate(kinds) if k == "broken"]
    caught = [i for i in broken if not accepted.get(i, False)]
    ttd = [refused_at[i] - trained_at[i] for i in caught if i in refused_at]
    return Outcome(
        bool(broken), bool(broken) and len(caught) == len(broken),
        max(ttd) if ttd and len(caught) == len(broken) else None,
        metrics={"broken_lineage_acceptance": rate("broken"), "lie_acceptance": rate("lie"),
                 "honest_acceptance": rate("honest")},
        note=f"lineage checked by {checker}; a step that lies about the hash of what it "
             "consumed passes the lineage rule (lie_acceptance): the residual limit")


@scenario("T5")
class BrokenLineage:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        kinds = _t5_plan(tm, seed)
        files = _t5_files(seed)
        env = simpy.Environment()
        db = baseline_db(workdir, admin="dev")  # the developer's domain runs the database
        db.conn.execute("CREATE TABLE consumed (artefact TEXT, file TEXT)")
        db.conn.execute("CREATE TABLE produced (artefact TEXT, file TEXT)")
        did = db.register("da", "Dataset", "d", hexd(files["raw"]))
        db.conn.execute("INSERT INTO produced VALUES (?, ?)", (did, hexd(files["labelled"])))
        accepted: dict[int, bool] = {}
        trained_at: dict[int, float] = {}
        refused_at: dict[int, float] = {}

        def step(i: int, kind: str):
            yield env.timeout((i + 1) * TICK)
            mid = db.register("op", "Model", f"m{i}")
            read = files["labelled"] if kind == "honest" else files["other"]
            claimed = files["labelled"] if kind == "lie" else read
            db_fire(db, "dev", "train", mid, hexd(b"model of " + read), env.now, [did])
            db.conn.execute("INSERT INTO consumed VALUES (?, ?)", (mid, hexd(claimed)))
            db.conn.commit()
            trained_at[i] = env.now
            if kind == "broken":  # the admin makes the recorded input agree with the output
                db.admin_sql("UPDATE consumed SET file=? WHERE artefact=?",
                             (hexd(files["labelled"]), mid))
            yield env.timeout(TICK)
            got = db.admin_sql("SELECT file FROM consumed WHERE artefact=?", (mid,))[0][0]
            made = {f for (f,) in db.admin_sql("SELECT file FROM produced WHERE artefact=?",
                                               (did,))}
            accepted[i] = got in made
            if not accepted[i]:
                refused_at[i] = env.now

        for i, k in enumerate(kinds):
            env.process(step(i, k))
        env.run()
        db.close()
        return _t5_outcome(kinds, accepted, refused_at, trained_at, "the database's records")

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        kinds = _t5_plan(tm, seed)
        files = _t5_files(seed)
        w, ps = paper_world(seed, extra={"lab": ("label-co", "asia")}, labellers=["lab"])
        store = BlobStore(workdir / "exchange")
        st: dict[str, Any] = {}
        accepted: dict[int, bool] = {}
        trained_at: dict[int, float] = {}
        refused_at: dict[int, float] = {}
        checker: list[str] = []

        def put(rec: Record) -> bytes:
            return bytes.fromhex(store.put_bytes(rec.canonical()).digest)

        def data_company():
            da, lab = ps["da"], ps["lab"]
            name = f"ds-{seed}"
            raw = _fref(store, "raw.csv", files["raw"])
            rec = _record("Dataset", "register", None, name, da, outputs=(raw,))
            tx = yield from send_ok(w, da, "Dataset", "register", name_salt(name), put(rec),
                                    f"proml:{name}", [])
            did = w.result(tx)
            lab_f = _fref(store, "labelled.csv", files["labelled"])
            rec = _record("Dataset", "label", did, name, lab, input_files=(raw,),
                          outputs=(lab_f,))
            yield from send_ok(w, lab, "Dataset", "fire", "label", did, put(rec), "", [])
            yield from send_ok(w, da, "Dataset", "fire", "review", did)
            rec = _record("Dataset", "release", did, name, da, input_files=(lab_f,),
                          outputs=(lab_f,))
            yield from send_ok(w, da, "Dataset", "fire", "release", did, put(rec), "", [])
            st["did"] = did

        def step(i: int, kind: str):
            yield w.env.timeout((i + 1) * TICK)
            did = st["did"]
            name = f"m{i}"
            tx = yield from send_ok(w, ps["op"], "Model", "register", name_salt(name))
            mid = w.result(tx)
            read = files["labelled"] if kind == "honest" else files["other"]
            claimed = files["labelled"] if kind == "lie" else read  # a lie: the hash is wrong
            ds = w.clients["Dataset"]
            ev = latest_evidence(ds, did)
            inp = InputRef("0x" + did.hex(), "Dataset", ds.version(did), ev.hex())
            model = _fref(store, "model.bin", b"model of " + read)
            rec = _record("Model", "train", mid, name, ps["dev"], inputs=(inp,),
                          input_files=(_fref(store, "train.csv", claimed),), outputs=(model,))
            yield from send_ok(w, ps["dev"], "Model", "fire", "train", mid, put(rec),
                               f"proml:{name}", [did])
            trained_at[i] = w.env.now
            yield w.env.timeout(TICK)
            problems, how = lineage_findings(w, store, mid)
            checker.append(how)
            d = bytes.fromhex(inp.evidence)
            for v in ("v0", "v1"):  # both verifiers check the lineage before approving
                if problems:
                    report = json.dumps({"lineage": problems}, sort_keys=True).encode()
                    blob = store.put_bytes(report)
                    tx = yield from send_ok(w, ps[v], "Model", "fire", "reject", mid,
                                            sha256(report), f"store://{blob.digest}", [])
                    refused_at[i] = w.env.now
                    break
                ev_b = evaluation(b"model of " + read, d)
                store.put_bytes(ev_b)
                tx = yield from send_ok(w, ps[v], "Model", "fire", "verify", mid,
                                        tuple_digest(bytes.fromhex(model.sha256), d,
                                                     sha256(ev_b)), "", [])
                assert ok(tx), tx.receipt
            accepted[i] = w.clients["Model"].state(mid) == "verified"

        w.env.process(data_company())
        for i, k in enumerate(kinds):
            w.env.process(step(i, k))
        w.run((len(kinds) + 3) * TICK, drain=False)
        w.finish()
        return _t5_outcome(kinds, accepted, refused_at, trained_at,
                           checker[0] if checker else "none")


# -- T6 ---------------------------------------------------------------------------------------
def _t6_plan(tm: ThreatModel, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    n = int(tm.parameters.get("consumers", 6))
    targeted = max(1, round(n * float(tm.parameters.get("targeted_fraction", 0.5))))
    split = rng.uniform(1, 3) * HOUR
    who = rng.sample(range(n), targeted)
    # targeted consumers fetch after the split (the attack is on them); others any time
    fetch = [rng.uniform(split / HOUR, 10) * HOUR if i in who else rng.uniform(0.3, 10) * HOUR
             for i in range(n)]
    return {"n": n, "targeted": set(who), "split": split, "fetch": fetch,
            "url": f"https://data-co.example/ds-{seed}.csv",
            "good": b"feature,label\n" + b"%d,1\n" % seed * 80,
            "bad": b"feature,label\n" + b"%d,0\n" % seed * 80}


def _t6_serve(plan: dict[str, Any], consumer: int, now: float) -> bytes:
    """The data company's web server: a split view by URL after ``split``."""
    if now >= plan["split"] and consumer in plan["targeted"]:
        return plan["bad"]  # type: ignore[no-any-return]
    return plan["good"]  # type: ignore[no-any-return]


@scenario("T6")
class SplitView:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t6_plan(tm, seed)
        env = simpy.Environment()
        db = baseline_db(workdir, admin="da")
        # a URL catalogue: the application accepts a registration without a digest
        aid = db.register("da", "Dataset", plan["url"], "")
        url_only = db.admin_sql("SELECT COUNT(*) FROM artefacts WHERE id=?", (aid,))[0][0]
        served_bad, detected, exposed = [], [], []

        def consumer(i: int):
            yield env.timeout(plan["fetch"][i])
            data = _t6_serve(plan, i, env.now)
            recorded = db.digest_of(aid)
            if data == plan["bad"]:
                served_bad.append(env.now)
            if recorded and hexd(data) != recorded:
                detected.append(env.now)
            elif data == plan["bad"]:
                exposed.append(i)

        for i in range(plan["n"]):
            env.process(consumer(i))
        env.run()
        db.close()
        return Outcome(bool(served_bad), bool(served_bad) and len(detected) == len(served_bad),
                       None, metrics={"consumers_exposed": float(len(exposed)),
                                      "url_only_accepted": float(url_only),
                                      "mismatches_served": float(len(served_bad)),
                                      "mismatches_detected": float(len(detected))})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t6_plan(tm, seed)
        people = {f"c{i}": (f"cons-{i}", "us") for i in range(plan["n"])}
        w, ps = paper_world(seed, extra=people)
        archive = BlobStore(workdir / "archive")  # another domain's replica, by digest
        st: dict[str, Any] = {}
        served_bad: list[float] = []
        detected: list[float] = []
        exposed: list[int] = []
        recovered: list[int] = []

        def data_company():
            # the URL alone is refused: the contract requires a digest at registration
            tx = yield from send_ok(w, ps["da"], "Dataset", "register", salt("url-only"), ZERO32,
                                    plan["url"], [])
            st["url_only"] = ok(tx)
            good = plan["good"]
            BlobStore(workdir / "da-store", [archive.root]).put_bytes(good)  # replicated
            tx = yield from send_ok(w, ps["da"], "Dataset", "register", salt("ds"), sha256(good),
                                    plan["url"], [])
            st["id"] = w.result(tx)

        def consumer(i: int):
            yield w.env.timeout(plan["fetch"][i])
            if "id" not in st:
                return
            guard = ConsumerGuard(w.clients["Dataset"])
            recorded = latest_evidence(w.clients["Dataset"], st["id"])
            now = w.env.now
            if _t6_serve(plan, i, now) == plan["bad"]:
                served_bad.append(now)
            try:
                data, _, bad = fetch_by_digest(recorded, [
                    ("url", lambda: _t6_serve(plan, i, now)),
                    ("archive", lambda: archive.get(recorded.hex()))])
                guard.check_bytes(st["id"], data)
            except ConsumerRefused:
                detected.append(now)  # nothing matched the record: refused, not recovered
                return
            if "url" in bad:
                detected.append(now)  # the digest check caught the URL's bytes
                recovered.append(i)
            if data == plan["bad"]:
                exposed.append(i)

        w.env.process(data_company())
        for i in range(plan["n"]):
            w.env.process(consumer(i))
        w.run(11 * HOUR, drain=False)
        w.finish()
        ttd = (min(detected) - plan["split"]) if detected else None
        return Outcome(bool(served_bad), bool(served_bad) and not exposed, ttd,
                       metrics={"consumers_exposed": float(len(exposed)),
                                "url_only_accepted": float(st.get("url_only", False)),
                                "mismatches_served": float(len(served_bad)),
                                "mismatches_detected": float(len(detected)),
                                "recovered": float(len(recovered))})


# -- T8 ---------------------------------------------------------------------------------------
def _t8_material(seed: int) -> dict[str, Any]:
    models = [b"model v%d seed %d\n" % (i, seed) * 32 for i in (1, 2, 3)]
    labelled = [b"x,label\n" + b"%d,%s\n" % (seed, lab) * 40 for lab in (b"a", b"b")]
    data = [sha256(x) for x in labelled]
    # evaluation i is of model i on the dataset version current then (v1 on d1, v2/v3 on d2)
    evals = [evaluation(m, data[0 if i == 0 else 1], names=False) for i, m in enumerate(models)]
    return {"models": models, "labelled": labelled, "data": data, "evals": evals,
            "raw": b"x\n" + b"%d\n" % seed * 40}


def _cross_tuples(mat: dict[str, Any]) -> list[tuple[int, int, int]]:
    """Every (model, dataset, evaluation) version combination except the approved (3, 2, 3)."""
    return [(m, d, e) for m in range(3) for d in range(2) for e in range(3)
            if (m, d, e) != (2, 1, 2)]


@scenario("T8")
class MixAndMatch:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        mat = _t8_material(seed)
        db = baseline_db(workdir, admin="dev")  # the developer's domain runs the database
        env = simpy.Environment()
        ms, ds, es = mat["models"], mat["data"], mat["evals"]
        mid = db.register("op", "Model", "m")

        def history():
            for i in range(3):
                yield env.timeout(TICK)
                db_fire(db, "dev", "train", mid, hexd(ms[i]), env.now)
                td = tuple_digest(sha256(ms[i]), ds[min(i, 1)], sha256(es[i]))
                if i < 2:
                    db_fire(db, f"v{i}", "reject", mid, td.hex(), env.now)
                else:
                    for v in ("v0", "v2"):
                        db_fire(db, v, "verify", mid, td.hex(), env.now)

        env.process(history())
        env.run()
        accepted = 0
        tuples = _cross_tuples(mat)
        for m, d, e in tuples:  # for each mix, the admin rewrites the approval to match it
            td = tuple_digest(sha256(ms[m]), ds[d], sha256(es[e]))
            db.admin_sql("UPDATE history SET digest=? WHERE artefact=? AND step='verify'",
                         (td.hex(), mid))
            db.admin_sql("UPDATE approvals SET digest=? WHERE artefact=? AND step='verify'",
                         (td.hex(), mid))
            last_train = [r for r in db.history(mid) if r[1] == "train"][-1][0]
            db.admin_sql("UPDATE history SET digest=? WHERE seq=?", (hexd(ms[m]), last_train))
            why = bound_ok(ms[m], es[e], ds[d],
                           _hex_or_none(db_step_digest(db, mid, "train")),
                           _hex_or_none(db_step_digest(db, mid, "verify")))
            accepted += why is None
        db.close()
        return Outcome(accepted > 0, False, None,
                       metrics={"cross_tuple_asr": accepted / len(tuples),
                                "tuples": float(len(tuples))})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        mat = _t8_material(seed)
        w, ps = paper_world(seed, extra={"lab": ("label-co", "asia")}, labellers=["lab"])
        ms, ds, es = mat["models"], mat["data"], mat["evals"]
        st: dict[str, Any] = {}

        def dataset():
            tx = yield from send_ok(w, ps["da"], "Dataset", "register", salt("d"),
                                    sha256(mat["raw"]), "", [])
            st["did"] = did = w.result(tx)
            yield from send_ok(w, ps["lab"], "Dataset", "fire", "label", did, ds[0], "", [])

        def model(key: str, bind: str):
            """One model's history; ``bind``: what the approvals sign, the tuple or (an
            ablation) the evaluation's digest alone."""
            tx = yield from send_ok(w, ps["op"], "Model", "register", salt(key))
            st[key] = mid = w.result(tx)
            for i in range(3):
                yield w.env.timeout(TICK)
                if i == 1 and key == "tuple":  # the dataset is relabelled between versions
                    did = st["did"]
                    yield from send_ok(w, ps["lab"], "Dataset", "fire", "label", did, ds[1], "",
                                       [])
                tx = yield from send_ok(w, ps["dev"], "Model", "fire", "train", mid,
                                        sha256(ms[i]), "", [st["did"]])
                assert ok(tx), tx.receipt
                td = tuple_digest(sha256(ms[i]), ds[min(i, 1)], sha256(es[i]))
                digest = td if bind == "tuple" else sha256(es[i])
                if i < 2:  # verifiers evaluated this version and rejected it
                    tx = yield from send_ok(w, ps[f"v{i}"], "Model", "fire", "reject", mid,
                                            digest, "", [])
                else:
                    for v in ("v0", "v2"):
                        tx = yield from send_ok(w, ps[v], "Model", "fire", "verify", mid,
                                                digest, "", [])
                assert ok(tx), tx.receipt

        def both():
            yield from dataset()
            yield from model("tuple", "tuple")
            yield from model("eval", "eval")

        w.env.process(both())
        w.run(8 * TICK, drain=False)
        w.finish()
        guard = model_guard(w)
        tuples = _cross_tuples(mat)
        accepted = 0
        for m, d, e in tuples:
            try:
                guard.check_approved(st["tuple"], ms[m], ds[d], es[e])
                accepted += 1
            except ConsumerRefused:
                pass
        genuine = guard.check_approved(st["tuple"], ms[2], ds[1], es[2]) is not None
        # ablation: approvals that sign the evaluation alone, checked element by element
        c = w.clients["Model"]
        hist = c.history(st["eval"])
        approved = [h.digest for h in hist if h.step == "verify"][-1]
        trained = {h.digest for h in hist if h.step == "train"}
        dsets = {h.digest for h in w.clients["Dataset"].history(st["did"])}
        weak = sum(1 for m, d, e in tuples if sha256(es[e]) == approved
                   and sha256(ms[m]) in trained and ds[d] in dsets)
        return Outcome(accepted > 0, False, None,
                       metrics={"cross_tuple_asr": accepted / len(tuples),
                                "tuples": float(len(tuples)),
                                "genuine_accepted": float(genuine),
                                "asr_eval_only_binding": weak / len(tuples)})
