"""History and versions: T4 (cover-up by rewriting history), T7 (rollback to an older approved
release), T9 (caller-chosen huge version number)."""

from __future__ import annotations

import itertools
import random
import sqlite3
from pathlib import Path
from typing import Any

import simpy
from eth_utils.crypto import keccak

from proml_sim.errors import LifecycleError
from proml_sim.ir import ZERO32, Transitioned
from proml_sim.lifecycles import Model
from proml_sim.node.consumer import (
    ConsumerGuard,
    ConsumerRefused,
    DigestMismatch,
    RollbackRefused,
    sha256,
    tuple_digest,
)
from proml_sim.node.store import BlobStore
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import outcome_of, salt
from proml_sim.threats.scenarios.t_integrity import MODEL_STATES, bound_ok, evaluation
from proml_sim.threats.scenarios.t_support import (
    TICK,
    baseline_db,
    db_fire,
    db_step_digest,
    hexd,
    ok,
    paper_world,
    send_ok,
)


def prefix_violations(snapshots: list[tuple[Any, ...]]) -> int:
    """Pairs of consecutive snapshots where the earlier is not a prefix of the later one."""
    return sum(1 for a, b in itertools.pairwise(snapshots) if b[:len(a)] != a)


def selector_call(signature: str, *words: bytes) -> bytes:
    """Calldata for a function the contract may not have (4-byte selector + 32-byte words)."""
    return keccak(signature.encode())[:4] + b"".join(w.rjust(32, b"\0") for w in words)


# -- T4 ---------------------------------------------------------------------------------------
T4_SNAPSHOT_EVERY = 300.0


def _t4_plan(seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    t = [rng.uniform(0.3, 0.8) * TICK]
    for _ in range(4):  # train, reject, retrain, verify+accept
        t.append(t[-1] + rng.uniform(0.3, 1.0) * TICK)
    return {"steps": t, "cover_at": t[-1] + rng.uniform(0.5, 1.5) * TICK,
            "end": t[-1] + 3 * TICK}


@scenario("T4")
class CoverUp:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t4_plan(seed)
        env = simpy.Environment()
        db = baseline_db(workdir, admin="op")  # the owner runs the database
        snaps: list[tuple[Any, ...]] = []
        caught: dict[str, float] = {}
        mid = db.register("op", "Model", "m")

        def honest():
            s = plan["steps"]
            yield env.timeout(s[0])
            db_fire(db, "dev", "train", mid, hexd(b"m1"), env.now)
            yield env.timeout(s[1] - env.now)
            db_fire(db, "v0", "reject", mid, hexd(b"failing evaluation"), env.now)
            yield env.timeout(s[2] - env.now)
            db_fire(db, "dev", "train", mid, hexd(b"m2"), env.now)
            yield env.timeout(s[3] - env.now)
            for v in ("v1", "v2"):
                db_fire(db, v, "verify", mid, hexd(b"passing evaluation"), env.now)
            yield env.timeout(s[4] - env.now)
            db_fire(db, "op", "accept", mid, "", env.now)

        def owner():  # the cover-up: the rejection and the failed version never happened
            yield env.timeout(plan["cover_at"])
            rows = db.history(mid)
            gone = [r[0] for r in rows if r[1] == "reject"] + [
                r[0] for r in rows if r[1] == "train"][:1]
            for seq in gone:
                db.admin_sql("DELETE FROM history WHERE seq=?", (seq,))
            for n, r in enumerate(db.history(mid), start=1):
                db.admin_sql("UPDATE history SET version=? WHERE seq=?", (n, r[0]))
            db.admin_sql("UPDATE artefacts SET version=? WHERE id=?", (len(db.history(mid)), mid))
            # ...and the hash-chained audit trail: drop the rejection's rows, re-chain the rest
            # (the chain has no secret, so its internal check passes again afterwards)
            db.admin_sql("DELETE FROM audit WHERE artefact=? AND action='reject'", (mid,))
            db.rechain_audit()

        def auditor():  # an outside auditor keeps its own copies of the history it was shown
            while env.now < plan["end"]:
                snaps.append(tuple(db.history(mid)))
                if prefix_violations(snaps[-2:]) and "at" not in caught:
                    caught["at"] = env.now
                yield env.timeout(T4_SNAPSHOT_EVERY)

        env.process(honest())
        env.process(owner())
        env.process(auditor())
        env.run(until=plan["end"] + 1)
        present = any(r[1] == "reject" for r in db.history(mid))
        chain_ok = db.verify_audit() is None
        bypasses = db.bypasses
        db.close()
        v = prefix_violations(snaps)
        # detected: the auditor's own earlier copy is no prefix of what it is shown now
        found = caught.get("at")
        return Outcome(v > 0 or not present, found is not None,
                       None if found is None else found - plan["cover_at"],
                       metrics={"integrity_violations": float(v),
                                "reject_present": float(present), "consumers_fooled": 0.0,
                                "audit_chain_verifies_after": float(chain_ok),
                                "guard_bypasses": float(bypasses)})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t4_plan(seed)
        socks = {f"sock{i}": (f"sock-{i}", "eu") for i in range(3)}
        w, ps = paper_world(seed, extra=socks)
        # deployed the Model (its founding domain's admin); also runs the operator key
        owner = w.domain_admin(ps["op"], "Model")
        assert owner is not None and w.backend is not None
        # prepared in advance: a look-alike Model contract the owner controls
        decoy = w.add_lifecycle("Decoy", Model, [
            ("op", "operator"), ("sock0", "developer"), ("sock1", "verifier"),
            ("sock2", "verifier")], deployer=owner)
        real = w.clients["Model"]
        pinned = (real.address, real.fingerprint())  # the consumer pins what it first reads
        st: dict[str, Any] = {}
        snaps: list[tuple[Any, ...]] = []
        attempts: list[Any] = []
        fooled: list[str] = []

        def honest():
            s = plan["steps"]
            tx = yield from send_ok(w, ps["op"], "Model", "register", salt("m"))
            st["mid"] = mid = w.result(tx)
            yield w.env.timeout(s[0] - w.env.now)
            yield from send_ok(w, ps["dev"], "Model", "fire", "train", mid, sha256(b"m1"), "", [])
            yield w.env.timeout(s[1] - w.env.now)
            yield from send_ok(w, ps["v0"], "Model", "fire", "reject", mid,
                               sha256(b"failing evaluation"), "", [])
            yield w.env.timeout(s[2] - w.env.now)
            yield from send_ok(w, ps["dev"], "Model", "fire", "train", mid, sha256(b"m2"), "", [])
            yield w.env.timeout(s[3] - w.env.now)
            for v in ("v1", "v2"):
                yield from send_ok(w, ps[v], "Model", "fire", "verify", mid,
                                   sha256(b"passing evaluation"), "", [])
            yield w.env.timeout(s[4] - w.env.now)
            yield from send_ok(w, ps["op"], "Model", "fire", "accept", mid)

        def raw(who: Any, data: bytes, kind: str) -> Any:
            return (yield from send_ok(w, who, "Model", "send_raw", data, None, kind))

        def cover_up():
            yield w.env.timeout(plan["cover_at"])
            mid = st["mid"]
            # there is no delete path: every way the owner can try, on the pinned contract
            attempts.append((yield from send_ok(w, ps["op"], "Model", "register", salt("m"))))
            for sig, words in (("delete_history(bytes32)", [mid]),
                               ("set_record(bytes32,uint256)", [mid, b"\x01"]),
                               ("rewrite(bytes32,uint256,bytes32)",
                                [mid, b"\x03", sha256(b"clean")])):
                attempts.append((yield from raw(owner, selector_call(sig, *words),
                                                sig.split("(")[0])))
            attempts.append((yield from send_ok(w, owner, "Model", "revoke", "verifier",
                                                ps["v0"].address)))
            attempts.append((yield from send_ok(w, ps["op"], "Model", "fire", "withdraw", mid)))
            # the sanitised copy: registered, trained once, verified, accepted
            tx = yield from send_ok(w, ps["op"], "Decoy", "register", salt("m"))
            did = w.result(tx)
            yield from send_ok(w, ps["sock0"], "Decoy", "fire", "train", did, sha256(b"m2"), "",
                               [])
            for v in ("sock1", "sock2"):
                yield from send_ok(w, ps[v], "Decoy", "fire", "verify", did,
                                   sha256(b"passing evaluation"), "", [])
            yield from send_ok(w, ps["op"], "Decoy", "fire", "accept", did)
            st["decoy"] = (decoy.address, decoy.fingerprint())

        def consumer():  # told "the registry moved": checks the announcement against its pin
            yield w.env.timeout(plan["cover_at"] + TICK)
            announced = st.get("decoy")
            if announced is not None and announced[0] != pinned[0]:
                return  # refused: not the contract it pinned
            if announced is not None:
                fooled.append("consumer")

        def auditor():
            while w.env.now < plan["end"]:
                snaps.append(tuple(real.events()))
                yield w.env.timeout(T4_SNAPSHOT_EVERY)

        for proc in (honest(), cover_up(), consumer(), auditor()):
            w.env.process(proc)
        w.run(plan["end"] + 1, drain=False)
        w.finish()
        final = real.events()
        present = any(isinstance(e, Transitioned) and e.id == st["mid"]
                      and real.ir.transitions[e.transition].name == "reject" for e in final)
        v = prefix_violations([*snaps, tuple(final)])
        accepted = [t for t in attempts if ok(t)]
        return Outcome(v > 0 or not present or bool(fooled), False, None,
                       metrics={"integrity_violations": float(v),
                                "reject_present": float(present),
                                "consumers_fooled": float(len(fooled)),
                                "cover_up_attempts": float(len(attempts)),
                                "attempts_reverted": float(len(attempts) - len(accepted)),
                                "decoy_same_fingerprint": float(
                                    st.get("decoy", ("", ""))[1] == pinned[1])},
                       note="accepted owner calls (withdraw) only append events; "
                            "reverted: " + ", ".join(sorted({outcome_of(w, t) for t in attempts
                                                             if not ok(t)})))


# -- T7 ---------------------------------------------------------------------------------------
def _t7_plan(tm: ThreatModel, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    k = int(tm.parameters.get("releases", 3))
    ret = int(tm.parameters.get("returning_consumers", 2))
    new = int(tm.parameters.get("new_consumers", 2))
    attack_at = (2 * k + rng.uniform(0.5, 1.5)) * TICK
    served = [rng.randrange(k - 1) for _ in range(ret + new)]  # an older release each
    variant = [rng.choice(("old id", "latest id")) for _ in range(ret + new)]
    return {"k": k, "returning": ret, "new": new, "attack_at": attack_at, "served": served,
            "variant": variant, "end": attack_at + TICK,
            "models": [b"release %d seed %d\n" % (i + 1, seed) * 32 for i in range(k)],
            "data": b"rows %d\n" % seed * 40}


def _t7_outcome(plan: dict[str, Any], exposed: list[int], history: dict[int, list[int]],
                refusals: list[str]) -> Outcome:
    mono = sum(1 for seq in history.values() for a, b in itertools.pairwise(seq)
               if b < a)
    return Outcome(bool(exposed), False, None,
                   metrics={"consumers_exposed": float(len(exposed)),
                            "monotonic_violations": float(mono),
                            "refused": float(len(refusals)),
                            "refused_superseded_or_older": float(
                                sum(r == RollbackRefused.__name__ for r in refusals)),
                            "refused_digest": float(sum(r == DigestMismatch.__name__
                                                        for r in refusals))})


@scenario("T7")
class Rollback:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t7_plan(tm, seed)
        env = simpy.Environment()
        db = baseline_db(workdir, admin="op")  # the operator's domain runs database and hub
        db.conn.execute("CREATE TABLE releases (line TEXT, idx INTEGER, artefact TEXT)")
        d = sha256(plan["data"])
        rel: list[str] = []
        evals: dict[bytes, bytes] = {}
        history: dict[int, list[int]] = {}
        memory: dict[int, int] = {}
        exposed: list[int] = []
        refusals: list[str] = []

        def releases():
            for i, m in enumerate(plan["models"]):
                yield env.timeout(2 * TICK * i + 0.5 * TICK - env.now)
                aid = db.register("op", "Model", f"r{i + 1}")
                db_fire(db, "dev", "train", aid, hexd(m), env.now)
                ev = evaluation(m, d)
                td = tuple_digest(sha256(m), d, sha256(ev))
                evals[td] = ev
                for v in ("v0", "v1"):
                    db_fire(db, v, "verify", aid, td.hex(), env.now)
                db_fire(db, "op", "accept", aid, "", env.now)
                db.conn.execute("INSERT INTO releases VALUES ('product', ?, ?)", (i + 1, aid))
                db.conn.commit()
                rel.append(aid)

        def fetch(c: int, idx: int, model: bytes):
            """Consumer ``c`` is served release ``idx`` (1-based); checks it against the DB."""
            aid = rel[idx - 1]
            latest = db.conn.execute("SELECT artefact FROM releases WHERE line='product' "
                                     "ORDER BY idx DESC LIMIT 1").fetchone()[0]
            approved = bytes.fromhex(db_step_digest(db, aid, "verify") or "00" * 32)
            why = "RollbackRefused" if aid != latest else bound_ok(
                model, evals.get(approved, b""), d,
                bytes.fromhex(db_step_digest(db, aid, "train") or "00" * 32), approved)
            if why is None and idx < memory.get(c, 0):
                why = "RollbackRefused"  # the consumer remembers what it accepted
            if why is not None:
                refusals.append(why)
                return
            memory[c] = max(memory.get(c, 0), idx)
            history.setdefault(c, []).append(idx)
            if idx < len(rel):  # an older release than the latest one was accepted
                exposed.append(c)

        def returning(c: int):
            for i in range(plan["k"]):
                yield env.timeout(2 * TICK * i + 1.5 * TICK - env.now)
                fetch(c, i + 1, plan["models"][i])

        def attacker():
            yield env.timeout(plan["attack_at"])
            rows = db.admin_sql("SELECT line, idx, artefact FROM releases")
            for c in range(plan["returning"] + plan["new"]):
                j = plan["served"][c] + 1
                # the catalogue shows this consumer release j as the latest, and serves it
                db.admin_sql("DELETE FROM releases")
                for row in rows:
                    if row[1] <= j:
                        db.admin_sql("INSERT INTO releases VALUES (?, ?, ?)", row)
                fetch(c, j, plan["models"][j - 1])

        env.process(releases())
        for c in range(plan["returning"]):
            env.process(returning(c))
        env.process(attacker())
        env.run()
        db.close()
        return _t7_outcome(plan, exposed, history, refusals)

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        plan = _t7_plan(tm, seed)
        w, ps = paper_world(seed)
        store = BlobStore(workdir / "exchange")
        d = sha256(plan["data"])
        rel: list[bytes] = []
        evals: list[bytes] = []
        history: dict[int, list[int]] = {}
        exposed: list[int] = []
        refusals: list[str] = []
        guards = {c: ConsumerGuard(w.clients["Model"], content_steps=("train",),
                                   approval_step="verify", accept_states=MODEL_STATES,
                                   release_lines=True, memory=workdir / f"consumer{c}.json")
                  for c in range(plan["returning"] + plan["new"])}

        def releases():
            tx = yield from send_ok(w, ps["da"], "Dataset", "register", salt("d"), d, "", [])
            did = w.result(tx)
            for i, m in enumerate(plan["models"]):
                yield w.env.timeout(2 * TICK * i + 0.5 * TICK - w.env.now)
                prev = [rel[-1]] if rel else []  # the release it supersedes, by its owner
                tx = yield from send_ok(w, ps["op"], "Model", "register", salt(f"r{i + 1}"),
                                        ZERO32, "", prev)
                aid = w.result(tx)
                yield from send_ok(w, ps["dev"], "Model", "fire", "train", aid, sha256(m), "",
                                   [did])
                ev = evaluation(m, d)
                blob = store.put_bytes(ev)
                for v in ("v0", "v1"):
                    yield from send_ok(w, ps[v], "Model", "fire", "verify", aid,
                                       tuple_digest(sha256(m), d, sha256(ev)),
                                       f"store://{blob.digest}", [])
                tx = yield from send_ok(w, ps["op"], "Model", "fire", "accept", aid)
                assert ok(tx), tx.receipt
                rel.append(aid)
                evals.append(ev)

        def fetch(c: int, aid: bytes, model: bytes, ev: bytes):
            try:
                acc = guards[c].check_approved(aid, model, d, ev)
            except ConsumerRefused as exc:
                refusals.append(type(exc).__name__)
                return
            history.setdefault(c, []).append(acc.release)
            if acc.release < len(rel):  # an older release than the latest one was accepted
                exposed.append(c)

        def returning(c: int):
            for i in range(plan["k"]):
                yield w.env.timeout(2 * TICK * i + 1.5 * TICK - w.env.now)
                fetch(c, rel[i], plan["models"][i], evals[i])

        def attacker():  # the hub serves an older, validly approved release
            yield w.env.timeout(plan["attack_at"])
            for c in guards:
                j = plan["served"][c]
                aid = rel[j] if plan["variant"][c] == "old id" else rel[-1]
                fetch(c, aid, plan["models"][j], evals[j])

        w.env.process(releases())
        for c in range(plan["returning"]):
            w.env.process(returning(c))
        w.env.process(attacker())
        w.run(plan["end"], drain=False)
        w.finish()
        return _t7_outcome(plan, exposed, history, refusals)


# -- T9 ---------------------------------------------------------------------------------------
HUGE = 2**256 - 1
SQLITE_MAX = 2**63 - 1


def version_jumps(versions: list[int]) -> int:
    """Steps where an artefact's version is not the previous one plus one."""
    return sum(1 for a, b in itertools.pairwise(versions) if b != a + 1)


@scenario("T9")
class FastForward:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        """The careful baseline's application numbers versions itself (``version + 1`` in
        :meth:`CentralDB.fire`): the insider's call carries a digest and no version; it tries
        the same call with the huge version packed in where a version could go (the digest
        field), then the legitimate updates follow."""
        legit = int(tm.parameters.get("legit_updates", 5))
        env = simpy.Environment()
        db = baseline_db(workdir, admin="dev")
        db.grant("dev2", "Model", "developer", "dev-co")
        mid = db.register("op", "Model", "m")
        rejected: list[int] = []

        def update(actor: str, digest: str) -> bool:
            try:
                return db.fire(actor, "train", mid, digest, at=env.now)
            except (LifecycleError, OverflowError, sqlite3.Error):
                return False

        def run():
            yield env.timeout(TICK)
            update("dev", hexd(b"m1"))
            yield env.timeout(TICK)
            update("dev2", f"{SQLITE_MAX:064x}")  # the attacker's "version"
            for i in range(legit):
                yield env.timeout(TICK)
                if not update("dev", hexd(b"m%d" % (i + 2))):
                    rejected.append(i)

        env.process(run())
        env.run()
        versions = [int(r[3]) for r in db.history(mid)]
        db.close()
        jumps = version_jumps(versions)
        return Outcome(jumps > 0 or bool(rejected), False, None,
                       metrics={"legit_rejected": float(len(rejected)),
                                "version_jumps": float(jumps),
                                "max_version": float(max(versions))})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        legit = int(tm.parameters.get("legit_updates", 5))
        w, ps = paper_world(seed, extra={"mal": ("dev-co", "us")},
                            grants=[("mal", "Model", "developer")])
        st: dict[str, Any] = {}
        attempts: list[Any] = []
        rejected: list[int] = []

        def raw(who: Any, data: bytes, kind: str) -> Any:
            return (yield from send_ok(w, who, "Model", "send_raw", data, None, kind))

        def run():
            c = w.sim_clients["Model"]
            tx = yield from send_ok(w, ps["op"], "Model", "register", salt("m"))
            st["mid"] = mid = w.result(tx)
            yield w.env.timeout(TICK)
            yield from send_ok(w, ps["dev"], "Model", "fire", "train", mid, sha256(b"m1"), "",
                               [])
            yield w.env.timeout(TICK)
            # the insider tries to choose the version: appended to a real call, and as calls
            # of functions that would take one
            train = c.transition_abi.encode_call("train", [mid, sha256(b"ff"), "", []])
            for huge in (HUGE, SQLITE_MAX, 2**64):
                attempts.append((yield from raw(ps["mal"], train + huge.to_bytes(32, "big"),
                                                "train+version")))
            for sig in ("train(bytes32,bytes32,string,bytes32[],uint256)",
                        "set_version(bytes32,uint256)", "verify(bytes32,bytes32,string,"
                        "bytes32[],uint256)"):
                attempts.append((yield from raw(ps["mal"], _selector_with_version(sig, mid),
                                                sig.split("(")[0])))
            for i in range(legit):  # afterwards, the honest developer's updates
                yield w.env.timeout(TICK)
                tx = yield from send_ok(w, ps["dev"], "Model", "fire", "train", mid,
                                        sha256(b"m%d" % (i + 2)), "", [])
                if not ok(tx):
                    rejected.append(i)
            for v in ("v0", "v1"):  # approvals still bind the contract's current version
                tx = yield from send_ok(w, ps[v], "Model", "fire", "verify", mid,
                                        sha256(b"evaluation"), "", [])
                if not ok(tx):
                    rejected.append(-1)

        w.env.process(run())
        w.run((legit + 4) * TICK, drain=False)
        w.finish()
        client = w.clients["Model"]
        versions = [h.version for h in client.history(st["mid"])]
        jumps = version_jumps(versions)
        return Outcome(jumps > 0 or bool(rejected), False, None,
                       metrics={"legit_rejected": float(len(rejected)),
                                "version_jumps": float(jumps),
                                "max_version": float(max(versions)),
                                "attempts": float(len(attempts)),
                                "attempts_reverted": float(sum(not ok(t) for t in attempts)),
                                "verified": float(client.state(st["mid"]) == "verified")},
                       note="an appended version argument is ignored (the contract assigns "
                            "version+1); functions taking a version do not exist (revert)")


def _selector_with_version(signature: str, mid: bytes) -> bytes:
    """ABI-encoded call of a version-taking function: the artefact id first, a digest for any
    other bytes32, empty dynamic values, and a huge version for the uint256."""
    from eth_abi.abi import encode

    types = signature[signature.index("(") + 1:-1].split(",")
    values: list[Any] = []
    for t in types:
        fill = {"string": "", "bytes32[]": [], "uint256": HUGE,
                "bytes32": sha256(b"ff") if values else mid}
        values.append(fill[t])
    return keccak(signature.encode())[:4] + encode(types, values)
