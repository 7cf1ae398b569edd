"""History and versions: T4 (cover-up by rewriting history), T7 (rollback to an older approved
release), T9 (caller-chosen huge version number)."""

from __future__ import annotations

import itertools
import random
import sqlite3
from pathlib import Path
from typing import Any

from eth_abi.abi import encode
from eth_utils.crypto import keccak

from proml_sim.compiler import compile_artefact
from proml_sim.errors import LifecycleError
from proml_sim.ir import Transitioned
from proml_sim.node.consumer import tuple_digest
from proml_sim.node.store import BlobStore
from proml_sim.sim.monitor import outcome as tx_outcome
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.kit import Alarm, Auditor, world
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import add_lifecycle, param, play, salt, send_ok, wait_until
from proml_sim.threats.scenarios.t_integrity import bound_ok, evaluation, model_guard
from proml_sim.threats.scenarios.t_support import (
    TICK,
    baseline_db,
    hexd,
    ok,
    sha,
    trials,
    uses,
)


def prefix_violations(snapshots: list[tuple[Any, ...]]) -> int:
    """Pairs of consecutive snapshots where the earlier is not a prefix of the later one."""
    return sum(1 for a, b in itertools.pairwise(snapshots) if b[:len(a)] != a)


def selector_call(signature: str, *values: Any) -> bytes:
    """Calldata of a function the contract may not have (ABI-encoded ``values``)."""
    types = signature[signature.index("(") + 1:-1].split(",")
    return keccak(signature.encode())[:4] + encode(types, list(values))


# -- T4 ---------------------------------------------------------------------------------------
#: the honest history: (who, step, evidence); the owner later wants the rejection gone
T4_STORY = (("dev", "train", b"m1"), ("v0", "reject", b"failing evaluation"),
            ("dev", "train", b"m2"), ("v1", "verify", b"passing evaluation"),
            ("v2", "verify", b"passing evaluation"), ("op", "accept", b""))


def _t4_times(seed: int) -> list[float]:
    rng = random.Random(seed)
    return list(itertools.accumulate(rng.uniform(0.3, 1.0) * TICK for _ in range(7)))


@scenario("T4")
class CoverUp:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        times = _t4_times(seed)
        db = baseline_db(tm, workdir, "op")  # the owner runs the database
        aud = Auditor(db, param(tm, "audit_every_s"))
        mid = db.register("op", "Model", "m")
        for (who, step, ev), at in zip(T4_STORY, times, strict=False):
            aud.visit_until(at)
            db.fire(who, step, mid, hexd(ev) if ev else "", at)
        cover_at = times[-1] + param(tm, "cover_after_s")
        aud.visit_until(cover_at)
        # the cover-up: the rejection and the failed version never happened; the DBA drops the
        # append-only triggers, deletes the rows, renumbers, and re-chains the audit trail
        rows = db.history(mid)
        for seq in [r[0] for r in rows if r[1] == "reject"] + [r[0] for r in rows
                                                                 if r[1] == "train"][:1]:
            db.admin_sql("DELETE FROM history WHERE seq=?", (seq,))
        for n, r in enumerate(db.history(mid), start=1):
            db.admin_sql("UPDATE history SET version=? WHERE seq=?", (n, r[0]))
        db.admin_sql("UPDATE artefacts SET version=? WHERE id=?", (len(db.history(mid)), mid))
        db.admin_sql("DELETE FROM audit WHERE artefact=? AND (action='reject' OR seq=(SELECT "
                     "MIN(seq) FROM audit WHERE artefact=? AND action='train'))", (mid, mid))
        db.rechain_audit()
        rewritten = not any(r[1] == "reject" for r in db.history(mid))
        alarms = aud.visit_until(cover_at + 24 * 3600)
        metrics = {"audit_chain_verifies_after": float(db.verify_audit() is None),
                   "guard_bypasses": float(db.bypasses)}
        db.close()
        return trials([rewritten], [bool(alarms)], attack_at=cover_at, alarms=alarms,
                      metrics=metrics)

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        times = _t4_times(seed)
        w, ps = world(tm, seed)
        # deployed the Model (its founding domain's admin); also runs the operator key
        owner = w.domain_admin(ps["op"], "Model")
        assert owner is not None and w.backend is not None
        # prepared in advance: a look-alike Model contract the owner controls, with sock roles
        cast = {"op": "op", "dev": "sock0", "v1": "sock1", "v2": "sock2"}
        decoy = add_lifecycle(w, "Decoy", compile_artefact(w.lifecycles["Model"]), [
            (name, {"op": "operator", "dev": "developer"}.get(real_name, "verifier"))
            for real_name, name in cast.items()])
        real = w.clients["Model"]
        pinned = real.address  # the consumer pins the registry it first read
        mid = real.artefact_id(ps["op"].address, salt("m"))
        tries: list[Any] = []
        snaps: list[tuple[Any, ...]] = []
        fooled: list[bool] = []

        def story() -> Any:
            yield from send_ok(w, "op", "Model", "register", salt("m"))
            for (who, step, ev), at in zip(T4_STORY, times, strict=False):
                yield wait_until(w.env, at)
                yield from send_ok(w, who, "Model", "fire", step, mid,
                                   *((sha(ev), "", []) if ev else ()))
            snaps.append(tuple(real.events()))
            yield w.env.timeout(param(tm, "cover_after_s"))
            # there is no delete path: every way the owner can try, on the pinned contract
            tries.append((yield from send_ok(w, "op", "Model", "register", salt("m"))))
            for sig, args in (("delete_history(bytes32)", [mid]),
                              ("set_record(bytes32,uint256)", [mid, 1]),
                              ("rewrite(bytes32,uint256,bytes32)", [mid, 3, sha(b"clean")])):
                tries.append((yield from send_ok(w, owner, "Model", "send_raw",
                                                 selector_call(sig, *args), None, sig)))
            tries.append((yield from send_ok(w, owner, "Model", "revoke", "verifier",
                                             ps["v0"].address)))
            tries.append((yield from send_ok(w, "op", "Model", "fire", "withdraw", mid)))
            # the sanitised copy: registered, trained once, verified, accepted; announced as
            # "the registry moved" -- the consumer checks the announcement against its pin
            fake = decoy.artefact_id(ps["op"].address, salt("m"))
            yield from send_ok(w, "op", "Decoy", "register", salt("m"))
            for (who, step, ev) in T4_STORY[2:]:
                yield from send_ok(w, cast[who], "Decoy", "fire", step, fake,
                                   *((sha(ev), "", []) if ev else ()))
            fooled.append(decoy.address == pinned)
            snaps.append(tuple(real.events()))

        play(w, times[-1] + param(tm, "cover_after_s") + 3 * TICK, story(), tail=0.0)
        present = any(isinstance(e, Transitioned) and e.id == mid
                      and real.ir.transitions[e.transition].name == "reject"
                      for e in real.events())
        rewritten = not present or prefix_violations(snaps) > 0 or any(fooled)
        reverted = sorted({tx_outcome(t) for t in tries if not ok(t)})
        return trials([rewritten], [False], metrics={
            "attempts_reverted": float(sum(not ok(t) for t in tries)),
            "decoy_same_fingerprint": float(decoy.fingerprint() == real.fingerprint())},
            note="accepted owner calls (withdraw) only append events; reverted: "
                 + ", ".join(reverted))


# -- T7 ---------------------------------------------------------------------------------------
def _t7_plan(tm: ThreatModel, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    k = param(tm, "releases")
    ret, new = param(tm, "returning_consumers"), param(tm, "new_consumers")
    return {"k": k, "returning": ret, "attack_at": (2 * k + rng.uniform(0.5, 1.5)) * TICK,
            "served": [rng.randrange(k - 1) for _ in range(ret + new)],  # an older release
            "variant": [rng.choice(("old id", "latest id")) for _ in range(ret + new)],
            "models": [b"release %d seed %d\n" % (i + 1, seed) * 32 for i in range(k)],
            "data": sha(b"rows %d\n" % seed * 40)}


def _t7_outcome(plan: dict[str, Any], used: list[bool], alarms: list[Alarm]) -> Outcome:
    return trials(used, [bool(alarms)] * len(used), attack_at=plan["attack_at"],
                  alarms=sorted(alarms, key=lambda a: a.at))


@scenario("T7")
class Rollback:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t7_plan(tm, seed)
        db = baseline_db(tm, workdir, "op")  # the operator's domain runs database and hub
        db.conn.execute("CREATE TABLE releases (idx INTEGER, artefact TEXT)")
        d = plan["data"]
        memory: dict[int, int] = {}  # what each consumer accepted (its own log)
        alarms: list[Alarm] = []

        def fetch(c: int, idx: int, at: float) -> bool:
            """Consumer ``c`` is served release ``idx`` (1-based) and checks it in the DB."""
            (aid,), m = db.conn.execute("SELECT artefact FROM releases WHERE idx=?", (
                idx,)).fetchone(), plan["models"][idx - 1]
            latest = db.conn.execute("SELECT MAX(idx) FROM releases").fetchone()[0]
            if idx == latest >= memory.get(c, 0) and bound_ok(db, aid, m, evaluation(m, d), d):
                memory[c] = idx
                return True
            alarms.append(Alarm(at, f"consumer-{c}", "an older release than accepted before"))
            return False

        for i, m in enumerate(plan["models"]):
            aid = db.register("op", "Model", f"r{i + 1}")
            db.fire("dev", "train", aid, hexd(m))
            for v in ("v0", "v1"):
                db.fire(v, "verify", aid, tuple_digest(sha(m), d, sha(evaluation(m, d))).hex())
            db.fire("op", "accept", aid)
            db.conn.execute("INSERT INTO releases VALUES (?, ?)", (i + 1, aid))
            for c in range(plan["returning"]):  # returning consumers take each release
                fetch(c, i + 1, (2 * i + 1.5) * TICK)
        rows = db.admin_sql("SELECT idx, artefact FROM releases")
        used = []
        for c, j in enumerate(plan["served"]):  # the catalogue shown lists release j+1 last
            db.admin_sql("DELETE FROM releases")
            db.conn.executemany("INSERT INTO releases VALUES (?, ?)", [r for r in rows
                                                                       if r[0] <= j + 1])
            used.append(fetch(c, j + 1, plan["attack_at"]))
        db.close()
        return _t7_outcome(plan, used, alarms)

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t7_plan(tm, seed)
        w, ps = world(tm, seed)
        store = BlobStore(workdir / "exchange")
        d = plan["data"]
        rel = [w.client("Model").artefact_id(ps["op"].address, salt(f"r{i}"))
               for i in range(plan["k"])]
        guards = [model_guard(w, release_lines=True, memory=workdir / f"consumer{c}.json")
                  for c in range(len(plan["served"]))]
        alarms: list[Alarm] = []
        used: list[bool] = []

        def fetch(c: int, aid: bytes, j: int) -> bool:
            m = plan["models"][j]  # accepted: an older release than the latest one
            return uses(lambda: guards[c].check_approved(aid, m, d, evaluation(m, d)), alarms,
                        w.env.now, f"consumer-{c}") and j < plan["k"] - 1

        def releases() -> Any:
            for i, m in enumerate(plan["models"]):
                yield wait_until(w.env, (2 * i + 0.5) * TICK)
                # each release names the one it supersedes, by its owner
                yield from send_ok(w, "op", "Model", "register", salt(f"r{i}"), b"\0" * 32, "",
                                   rel[i - 1:i])
                yield from send_ok(w, "dev", "Model", "fire", "train", rel[i], sha(m), "", [])
                ev = evaluation(m, d)
                blob = store.put_bytes(ev)
                for v in ("v0", "v1"):
                    yield from send_ok(w, v, "Model", "fire", "verify", rel[i],
                                       tuple_digest(sha(m), d, sha(ev)), f"store://{blob.digest}",
                                       [])
                yield from send_ok(w, "op", "Model", "fire", "accept", rel[i])
                yield w.env.timeout(TICK)
                for c in range(plan["returning"]):
                    fetch(c, rel[i], i)
            yield wait_until(w.env, plan["attack_at"])
            for c, j in enumerate(plan["served"]):  # the hub serves an older, approved release
                used.append(fetch(c, rel[j] if plan["variant"][c] == "old id" else rel[-1], j))

        play(w, plan["attack_at"] + TICK, releases(), tail=0.0)
        return _t7_outcome(plan, used, alarms)


# -- T9 ---------------------------------------------------------------------------------------
HUGE = 2**256 - 1
SQLITE_MAX = 2**63 - 1


def version_jumps(versions: list[int]) -> int:
    """Steps where an artefact's version is not the previous one plus one."""
    return sum(1 for a, b in itertools.pairwise(versions) if b != a + 1)


def _t9_outcome(versions: list[int], rejected: int, **metrics: float) -> Outcome:
    """Success = the record is corrupted: a version jump, or a legitimate update refused."""
    jumps = version_jumps(versions)
    return trials([jumps > 0 or rejected > 0], [False], metrics={
        "legit_rejected": float(rejected), "version_jumps": float(jumps),
        "max_version": float(max(versions)), **metrics})


@scenario("T9")
class FastForward:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        """The application's ordinary update API (it numbers versions itself, as the contract
        does): the insider's call can carry the huge number only where the API takes a value,
        the digest; then the legitimate updates follow."""
        legit = param(tm, "legit_updates")
        db = baseline_db(tm, workdir, "dev")
        mid = db.register("op", "Model", "m")
        rejected = 0
        for i, (who, digest) in enumerate([("dev", hexd(b"m1"))] + [
                ("mal", f"{huge:064x}"[-64:]) for huge in (HUGE, SQLITE_MAX, 2**64)] + [
                ("dev", hexd(b"m%d" % (n + 2))) for n in range(legit)]):
            try:
                db.fire(who, "train", mid, digest, at=i * TICK)
            except (LifecycleError, OverflowError, sqlite3.Error):
                rejected += who == "dev"
        versions = [int(r[3]) for r in db.history(mid)]
        db.close()
        return _t9_outcome(versions, rejected)

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        legit = param(tm, "legit_updates")
        w, ps = world(tm, seed)
        mid = w.client("Model").artefact_id(ps["op"].address, salt("m"))
        tries: list[Any] = []
        results: list[bool] = []

        def run() -> Any:
            yield from send_ok(w, "op", "Model", "register", salt("m"))
            yield from send_ok(w, "dev", "Model", "fire", "train", mid, sha(b"m1"), "", [])
            # the insider tries to choose the version: appended to a real call, and as calls
            # of functions that would take one
            train = w.sim_clients["Model"].transition_abi.encode_call(
                "train", [mid, sha(b"ff"), "", []])
            calls = [train + huge.to_bytes(32, "big") for huge in (HUGE, SQLITE_MAX, 2**64)] + [
                selector_call(f"{fn}(bytes32,bytes32,string,bytes32[],uint256)", mid, sha(b"ff"),
                              "", [], HUGE) for fn in ("train", "verify")] + [
                selector_call("set_version(bytes32,uint256)", mid, HUGE)]
            for data in calls:
                tries.append((yield from send_ok(w, "mal", "Model", "send_raw", data, None, "")))
            # afterwards, the honest developer's updates; approvals bind the current version
            for who, step, ev in [("dev", "train", b"m%d" % (i + 2)) for i in range(legit)] + [
                    ("v0", "verify", b"ev"), ("v1", "verify", b"ev")]:
                results.append(ok((yield from send_ok(w, who, "Model", "fire", step, mid, sha(ev),
                                                      "", []))))

        play(w, (legit + 12) * TICK, run(), tail=0.0)
        client = w.clients["Model"]
        return _t9_outcome([h.version for h in client.history(mid)],
                           sum(not r for r in results),
                           attempts_reverted=float(sum(not ok(t) for t in tries)),
                           verified=float(client.state(mid) == "verified"))
