"""Repudiation: R1 an actor denies a recorded action (the baseline's admin edits the author);
R2 the owner deletes the off-chain evidence blob.

Also the forensic helpers other scenarios use: :func:`tx_fields` decodes a signed EIP-1559
transaction and :func:`tx_with` alters one keeping its signature; who signed one is the chain
layer's :func:`~proml_sim.chain.proofs.tx_sender` (the proofs' own ecrecover, no engine).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import rlp
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from proml_sim.chain.abi import ContractABI
from proml_sim.chain.proofs import tx_sender
from proml_sim.errors import ProMLError
from proml_sim.ir import Transitioned, replay
from proml_sim.lifecycles import Dataset, Model
from proml_sim.node import BlobStore, ProMLNode
from proml_sim.sim import digest_of
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.kit import Alarm, Auditor, central, outcome, ratio
from proml_sim.threats.monitor import ChainReader
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import play, salt, send_ok, trials_of, wait_until
from proml_sim.threats.scenarios.d_availability import model_world

HOUR = 3600.0


# ---------------------------------------------------------------------------------------------
# forensics: who signed a raw transaction, and what it says
# ---------------------------------------------------------------------------------------------
def _rlp_fields(raw: bytes) -> Any:
    if raw[:1] != b"\x02":
        raise ValueError("only EIP-1559 (type 2) transactions are decoded here")
    return rlp.decode(raw[1:])


def tx_fields(raw: bytes) -> dict[str, Any]:
    """The fields of a signed EIP-1559 (type 2) transaction."""
    f = _rlp_fields(raw)

    def num(b: bytes) -> int:
        return int.from_bytes(b, "big")

    return {"chain_id": num(f[0]), "nonce": num(f[1]), "tip": num(f[2]), "max_fee": num(f[3]),
            "gas": num(f[4]), "to": to_checksum_address(f[5]) if f[5] else None,
            "value": num(f[6]), "data": bytes(f[7]), "y": num(f[9]), "r": num(f[10]),
            "s": num(f[11])}


def tx_with(raw: bytes, *, to: str | None = None, data: bytes | None = None) -> bytes:
    """``raw`` with its destination or calldata changed and the *original* signature kept (what
    a replayer can do without the key)."""
    f = list(rlp.decode(raw[1:]))
    if to is not None:
        f[5] = bytes.fromhex(to[2:])
    if data is not None:
        f[7] = data
    return b"\x02" + bytes(rlp.encode(f))


# ---------------------------------------------------------------------------------------------
# R1: an actor denies a recorded action
# ---------------------------------------------------------------------------------------------
R1_STEPS = [("register", "op"), ("train", "dev"), ("verify", "v1")]  # what really happened


def _r1_times(seed: int) -> list[float]:
    """When train, the two approvals, the denial (the rewrite) and the audit happen."""
    rng = random.Random(f"R1-{seed}")
    t = [rng.uniform(10, 60) * 60]
    t += [t[-1] + rng.uniform(5, 30) * 60]
    t += [t[-1] + rng.uniform(5, 30) * 60]
    t += [t[-1] + rng.uniform(1, 4) * HOUR]
    return [*t, t[-1] + rng.uniform(1, 24) * HOUR]


@scenario("R1")
class DenyAction:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        t_train, t_v0, t_v1, t_deny, t_audit = _r1_times(seed)
        db = central(tm, workdir, {"Model": Model})
        aud = Auditor(db, float(tm.parameters["audit_every_s"]))
        aid = db.register("op", "Model", "m")
        for who, step, evidence, t in (("dev", "train", "bad model", t_train),
                                       ("v0", "verify", "eval", t_v0),
                                       ("v1", "verify", "eval", t_v1)):
            aud.visit_until(t)  # the outside auditor notes the audit head on its visits
            db.fire(who, step, aid, evidence, at=t)
        aud.visit_until(t_deny)
        # the model misbehaves; dev denies having trained it, and the DBA (dev's ally, or paid)
        # makes the record agree: history and audit rows rewritten, the audit chain re-hashed
        db.admin_sql("UPDATE history SET actor='intern' WHERE artefact=? AND step='train'",
                     (aid,))
        db.admin_sql("UPDATE audit SET actor='intern' WHERE artefact=? AND action='train'",
                     (aid,))
        db.rechain_audit()
        hist = {(step, actor) for _, step, actor, *_ in db.history(aid)}  # what the auditor sees
        alarms = aud.visit_until(t_audit)
        db.close()
        correct = sum(step in hist for step in R1_STEPS)
        return outcome(("train", "dev") not in hist, attack_at=t_deny, alarms=alarms, metrics={
            "attribution": correct / len(R1_STEPS),
            "integrity_violations": float(len(R1_STEPS) - correct)})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        times = _r1_times(seed)
        w, ps = model_world(tm, seed)
        model, sent = w.clients["Model"], {}  # tx hash -> raw (any node serves raw txs)
        mid = model.artefact_id(ps["op"].address, salt("m"))

        def workflow() -> Any:
            steps: tuple[tuple[Any, ...], ...] = (
                (0.0, "op", "register", salt("m")),
                (times[0], "dev", "fire", "train", mid, digest_of("bad", seed), "", []),
                *((t, v, "fire", "verify", mid, digest_of("eval"), "", [])
                  for t, v in zip(times[1:3], ("v0", "v1"), strict=True)),
                # dev denies; the consortium admin can only revoke its role
                (times[3], w.domain_admin(ps["dev"], "Model").name, "revoke", "developer",
                 ps["dev"].address))
            for t, who, *args in steps:
                yield wait_until(w.env, t)
                tx = yield from send_ok(w, who, "Model", *args)
                sent[tx.hash] = tx.raw

        play(w, times[4], workflow(), tail=0.0)
        # the auditor: every event's transaction recovers to the event's actor, and the disputed
        # train's signed calldata says train(this id, this digest); replay(events) == state
        train = ContractABI(model.abi).selector("train")
        attributed, checked, disputed_ok = 0, 0, False
        for ce in ChainReader(model, w.backend).poll():
            ev, raw = ce.event, sent.get(ce.tx_hash)
            actor = next((getattr(ev, a) for a in ("actor", "approver", "registrant")
                          if hasattr(ev, a)), None)
            if actor is None or raw is None:
                continue  # set-up grants (made before the run) and the revocation
            f = tx_fields(raw)
            ok = (keccak(raw) == ce.tx_hash and tx_sender(raw) == actor
                  and f["to"] == model.address and f["chain_id"] == model.backend.chain_id)
            checked, attributed = checked + 1, attributed + ok
            if f["data"][:4] == train and isinstance(ev, Transitioned):
                disputed_ok = (ok and actor == ps["dev"].address and f["data"][4:36] == ev.id
                               == mid and f["data"][36:68] == ev.digest)
        replay_ok = replay(model.ir, model.events()) == model.snapshot()
        return outcome(not (disputed_ok and replay_ok), attack_at=times[3], metrics={
            "attribution": ratio(attributed, checked),
            "replay_matches": float(replay_ok),
            "integrity_violations": float(checked - attributed)})


# ---------------------------------------------------------------------------------------------
# R2: the owner deletes the off-chain blob
# ---------------------------------------------------------------------------------------------
def _r2_plan(tm: ThreatModel, seed: int) -> tuple[int, int, float, list[tuple[float, float]]]:
    """(replicas, datasets, replica loss, per dataset (deleted at, fetched at))."""
    p, rng = tm.parameters, random.Random(f"R2-{seed}")
    n = int(p["trials"])
    return (int(p["replicas"]), n, float(p["replica_loss"]),
            [(rng.uniform(1, 6) * HOUR, rng.uniform(7, 24) * HOUR) for _ in range(n)])


def _retrievable(node: ProMLNode, name: str) -> bool:
    """Can ``node`` get the registration's evidence, verified against the on-chain digest:
    the record behind the digest and every file it names?"""
    try:
        ref = node.resolve(name)
        rec = node.record_of(node.client(ref.lifecycle).history(ref.id)[0].digest)
        if rec is None:
            return False
        for f in (*rec.outputs, *rec.input_files):
            node.store.get(f.sha256)  # re-hashed on read; healed from a replica if needed
        return True
    except ProMLError:
        return False


@scenario("R2")
class DeleteBlob:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        _, n, _, plan = _r2_plan(tm, seed)
        # the data company runs the provenance database (as in T1) and its own file store
        db = central(tm, workdir, {"Dataset": Dataset}, admin="owner")
        store = BlobStore(workdir / "da-store")
        aids = [db.register("owner", "Dataset", f"ds{i}", store.put_bytes(
            f"rows {seed} {i}\n".encode() * 200).digest) for i in range(n)]
        shutil.rmtree(store.objects)  # the bytes go, and so do the rows, audit re-chained
        for table, col in (("history", "artefact"), ("artefacts", "id"), ("audit", "artefact")):
            db.admin_sql(f"DELETE FROM {table} WHERE {col} LIKE 'Dataset:%'")
        db.rechain_audit()
        gone = [(d := db.digest_of(a)) is None or store.check(d) is not None for a in aids]
        db.close()
        return trials_of([(g, t_del, []) for g, (t_del, _) in zip(gone, plan, strict=True)],
                              metrics={"availability": 1 - sum(gone) / n})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        r, n, loss, plan = _r2_plan(tm, seed)
        rng = random.Random(f"R2-loss-{seed}")
        chain, reps = workdir / "chain", [workdir / f"domain-{i}" for i in range(r)]
        admin = ProMLNode.init(workdir / "admin", name="admin", domain="consortium",
                               chain_dir=chain, new_chain=True, seed=f"R2-{seed}-a",
                               plain_key=True)  # a simulation: plain keys

        def node(name: str, domain: str) -> ProMLNode:
            return ProMLNode.init(workdir / name, name=name, domain=domain, chain_dir=chain,
                                  seed=f"R2-{seed}-{name}", replicas=reps, plain_key=True)

        own, cons = tm.cast()  # the cast's nodes; the owner replicates new blobs to r domains
        owner, roles = node(own.name, own.domain), [x for _, x in own.roles]
        # its domain joins the Dataset consortium (the founder's vote is the quorum of one
        # member) with the owner as its domain admin, which enrols itself
        from proml_sim.node import consortium as gov

        gov.execute(admin, "Dataset", gov.propose(admin, "Dataset", "add_domain", own.domain,
                                                  owner.address, roles))
        for role in roles:
            owner.grant("Dataset", role, owner.address, own.domain)
        consumer = node(cons.name, cons.domain)  # reads the other domains' stores, not the owner's
        for i in range(n):
            f = workdir / f"data{i}.csv"
            f.write_bytes(f"rows {seed} {i}\n".encode() * 200)
            owner.register("Dataset", f"ds{i}", [f])
        for rep in reps:  # other domains also lose copies, each independently
            for blob in (rep / "objects").rglob("*") if loss > 0 else ():
                if blob.is_file() and rng.random() < loss:
                    blob.unlink()
        shutil.rmtree(owner.store.objects)  # its own store: all it controls
        trials: list[tuple[bool, float, list[Alarm]]] = []
        noticed, delays = 0, []
        for i, (t_del, t_fetch) in enumerate(plan):
            name = f"ds{i}@{owner.address}"
            lost = not _retrievable(consumer, name)
            # what the consumer sees: the chain commits to a digest and no store it can reach
            # has bytes hashing to it: 'blob missing', not evidence of a deletion (limit)
            if lost and consumer.client("Dataset").history(consumer.resolve(name).id):
                noticed += 1
                delays.append(t_fetch - t_del)
            trials.append((lost, t_del, []))
        return trials_of(trials, metrics={
            "availability": 1 - sum(t[0] for t in trials) / n,
            "missing_noticed": noticed / n,
            **({"missing_noticed_after_s": sum(delays) / len(delays)} if delays else {})})
