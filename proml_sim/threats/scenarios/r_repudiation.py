"""Repudiation: R1 an actor denies a recorded action (the baseline's admin edits the author);
R2 the owner deletes the off-chain evidence blob.

Also the forensic helpers other scenarios use: :func:`tx_fields` decodes a signed EIP-1559
transaction and :func:`tx_signer` recovers who signed it, independently of any engine.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import coincurve
import rlp
import simpy
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from proml_sim.chain.abi import ContractABI
from proml_sim.errors import ProMLError
from proml_sim.ir import Approved, Registered, RoleGranted, Transitioned, replay
from proml_sim.lifecycles import Dataset, Model
from proml_sim.node import BlobStore, ProMLNode
from proml_sim.sim import digest_of
from proml_sim.threats.baseline import CentralDB
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.monitor import ChainReader
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import salt, small_world

HOUR = 3600.0


# ---------------------------------------------------------------------------------------------
# forensics: who signed a raw transaction, and what it says
# ---------------------------------------------------------------------------------------------
def tx_fields(raw: bytes) -> dict[str, Any]:
    """The fields of a signed EIP-1559 (type 2) transaction."""
    if raw[:1] != b"\x02":
        raise ValueError("only EIP-1559 (type 2) transactions are decoded here")
    f = rlp.decode(raw[1:])

    def num(b: bytes) -> int:
        return int.from_bytes(b, "big")

    return {"chain_id": num(f[0]), "nonce": num(f[1]), "tip": num(f[2]), "max_fee": num(f[3]),
            "gas": num(f[4]), "to": to_checksum_address(f[5]) if f[5] else None,
            "value": num(f[6]), "data": bytes(f[7]), "y": num(f[9]), "r": num(f[10]),
            "s": num(f[11])}


def tx_signer(raw: bytes) -> str:
    """The address whose key signed ``raw`` (ecrecover over the EIP-1559 signing payload)."""
    if raw[:1] != b"\x02":
        raise ValueError("only EIP-1559 (type 2) transactions are decoded here")
    f = rlp.decode(raw[1:])
    digest = keccak(b"\x02" + rlp.encode(f[:9]))
    y, r, s = (int.from_bytes(x, "big") for x in f[9:12])
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((y,))
    public = coincurve.PublicKey.from_signature_and_message(sig, digest, hasher=None)
    return to_checksum_address(keccak(public.format(compressed=False)[1:])[12:])


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
@scenario("R1", limit="the signature proves which key acted, not which person: a key that "
                     "was really stolen is S1's case (monitor, revocation)")
class DenyAction:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        rng = random.Random(f"R1-{seed}")
        env = simpy.Environment()
        db = CentralDB(workdir / "p.sqlite", {"Model": Model}, admin="db-admin")
        for who, role, dom in (("op", "operator", "client-co"), ("dev", "developer", "dev-co"),
                               ("v0", "verifier", "verif-0"), ("v1", "verifier", "verif-1")):
            db.grant(who, "Model", role, dom)
        # the history rows as it really happened: an approval that does not fire is no row
        truth = [("register", "op"), ("train", "dev"), ("verify", "v1")]
        found: dict[str, Any] = {}

        def workflow():
            aid = db.register("op", "Model", "m", at=env.now)
            yield env.timeout(rng.uniform(10, 60) * 60)
            db.fire("dev", "train", aid, digest_of("bad-model", seed).hex(), at=env.now)
            ev = digest_of("eval", seed).hex()
            for v in ("v0", "v1"):
                yield env.timeout(rng.uniform(5, 30) * 60)
                db.fire(v, "verify", aid, ev, at=env.now)
            yield env.timeout(rng.uniform(1, 4) * HOUR)
            # the model misbehaves; dev denies having trained it, and the database's admin
            # (dev's ally, or paid) makes the record agree
            db.admin_sql("UPDATE history SET actor='intern' WHERE artefact=? AND step='train'",
                         (aid,))
            yield env.timeout(rng.uniform(1, 24) * HOUR)
            found["history"] = db.history(aid)  # what an auditor is shown

        env.process(workflow())
        env.run()
        db.close()
        hist = [(step, actor) for _, step, actor, *_ in found["history"]]
        correct = sum(1 for t in truth if t in hist)
        repudiated = ("train", "dev") not in hist
        # nothing outside the database shows that 'intern' is not who trained the model
        return Outcome(repudiated, False, None,
                       metrics={"attribution": correct / len(truth),
                                "integrity_violations": float(len(truth) - correct)})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        rng = random.Random(f"R1-{seed}")
        people = {"op": ("client-co", "eu"), "dev": ("dev-co", "us"), "v0": ("verif-0", "eu"),
                  "v1": ("verif-1", "asia")}
        grants = [("op", "Model", "operator"), ("dev", "Model", "developer"),
                  ("v0", "Model", "verifier"), ("v1", "Model", "verifier")]
        w, ps = small_world(seed, people, grants)
        model = w.clients["Model"]
        sent: dict[bytes, bytes] = {}  # tx hash -> raw (any node serves raw transactions)
        state: dict[str, Any] = {}

        def send(who: str, *args: Any):
            tx = yield from w.send(ps[who], "Model", *args)
            sent[tx.hash] = tx.raw
            yield w.confirmed(tx, 1)
            return w.result(tx)

        def workflow():
            mid = yield from send("op", "register", salt("m"))
            state["id"] = mid
            yield w.env.timeout(rng.uniform(10, 60) * 60)
            yield from send("dev", "fire", "train", mid, digest_of("bad-model", seed), "", [])
            ev = digest_of("eval", seed)
            for v in ("v0", "v1"):
                yield w.env.timeout(rng.uniform(5, 30) * 60)
                yield from send(v, "fire", "verify", mid, ev, "", [])
            yield w.env.timeout(rng.uniform(1, 4) * HOUR)
            # dev denies; the consortium admin, asked to "fix" it, can only revoke dev's role
            tx = yield from w.send(w.domain_admin(ps["dev"], "Model"), "Model", "revoke",
                                   "developer", ps["dev"].address)
            sent[tx.hash] = tx.raw
            yield w.confirmed(tx, 1)

        w.env.process(workflow())
        w.run(8 * HOUR, drain=False)
        w.finish()
        events = ChainReader(model, w.backend).poll()
        abi = ContractABI(model.abi)
        attributed = checked = 0
        disputed_ok = False
        for ce in events:
            ev = ce.event
            actor = (ev.actor if isinstance(ev, Transitioned) else ev.approver
                     if isinstance(ev, Approved) else ev.registrant
                     if isinstance(ev, Registered) else ev.sender
                     if isinstance(ev, RoleGranted) else None)
            raw = sent.get(ce.tx_hash)
            if actor is None or raw is None:
                continue  # set-up grants (made before the run) and revocations
            checked += 1
            f = tx_fields(raw)
            ok = (keccak(raw) == ce.tx_hash and tx_signer(raw) == actor
                  and f["to"] == model.address and f["chain_id"] == model.backend.chain_id)
            attributed += ok
            if isinstance(ev, Transitioned) and model.ir.transitions[ev.transition].name == "train":
                # the signed calldata says train(this id, this digest): the event is not a
                # relabelling of some other call
                sel = abi.selector("train")
                disputed_ok = (ok and f["data"][:4] == sel and ev.id == state["id"]
                               and f["data"][4:36] == ev.id and f["data"][36:68] == ev.digest
                               and ev.actor == ps["dev"].address)
        replay_ok = replay(model.ir, model.events()) == model.snapshot()
        repudiated = not (disputed_ok and replay_ok)
        return Outcome(repudiated, False, None,
                       metrics={"attribution": attributed / checked if checked else 0.0,
                                "replay_matches": float(replay_ok),
                                "integrity_violations": float(checked - attributed)})


# ---------------------------------------------------------------------------------------------
# R2: the owner deletes the off-chain blob
# ---------------------------------------------------------------------------------------------
R2_DEFAULTS: dict[str, Any] = {"domains": 4, "replicas": 2, "replica_loss": 0.1, "trials": 20}


def _r2_params(tm: ThreatModel) -> dict[str, Any]:
    unknown = set(tm.parameters) - set(R2_DEFAULTS)
    if unknown:
        raise ValueError(f"{tm.path}: unknown parameters {sorted(unknown)}; known: "
                         f"{sorted(R2_DEFAULTS)}")
    return {**R2_DEFAULTS, **tm.parameters}


def _retrievable(node: ProMLNode, name: str) -> bool:
    """Can ``node`` get the registration's evidence, verified against the on-chain digest:
    the record behind the digest and every file it names?"""
    try:
        ref = node.resolve(name)
        digest = node.client(ref.lifecycle).history(ref.id)[0].digest
        rec = node.record_of(digest)
        if rec is None:
            return False
        for f in (*rec.outputs, *rec.input_files):
            node.store.get(f.sha256)  # re-hashed on read; healed from a replica if needed
        return True
    except ProMLError:
        return False


def _loss_series(root: Path, n: int, trials: int, loss: float, rng: random.Random,
                 seed: int) -> list[tuple[float, float]]:
    """Availability against replication factor r when, besides the owner deleting its copy,
    every other domain's copy of a blob is lost independently with probability ``loss``:
    ``trials`` blobs per r, written through a replicating store, then read back from the
    replicas (re-hashed)."""
    out = []
    for r in range(n):
        base = root / f"r{r}"
        reps = [base / f"rep{i}" for i in range(r)]
        owner = BlobStore(base / "owner", reps)
        blobs = [owner.put_bytes(f"blob {seed} {r} {t}".encode()).digest for t in range(trials)]
        shutil.rmtree(owner.objects)
        for d in blobs:
            for rep in reps:
                if rng.random() < loss:
                    BlobStore(rep).path_of(d).unlink()
        ok = sum(any(BlobStore(rep).check(d) is None for rep in reps) for d in blobs)
        out.append((float(r), ok / trials))
    return out


@scenario("R2", limit="with no copy outside the owner's domain (replication factor 0) the "
                     "owner can destroy the evidence; the chain still proves what it was")
class DeleteBlob:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        rng = random.Random(f"R2-{seed}")
        env = simpy.Environment()
        # the data company runs the provenance database (as in T1) and its own file store
        db = CentralDB(workdir / "p.sqlite", {"Dataset": Dataset}, admin="da")
        db.grant("da", "Dataset", "dataset_admin", "data-co")
        store = BlobStore(workdir / "da-store")
        data = f"rows of seed {seed}\n".encode() * 200
        blob = store.put_bytes(data)
        aid = db.register("da", "Dataset", "ds", blob.digest)
        seen: dict[str, Any] = {}

        def owner():
            yield env.timeout(rng.uniform(1, 6) * HOUR)
            shutil.rmtree(store.objects)  # the bytes go...
            db.admin_sql("DELETE FROM history WHERE artefact=?", (aid,))  # ...and the record
            db.admin_sql("DELETE FROM artefacts WHERE id=?", (aid,))

        def consumer():
            yield env.timeout(rng.uniform(7, 24) * HOUR)
            d = db.digest_of(aid)
            seen["digest_known"] = d is not None
            seen["available"] = d is not None and store.check(d) is None

        env.process(owner())
        env.process(consumer())
        env.run()
        db.close()
        # with the row gone, nothing shows the dataset ever existed: not even detectable
        return Outcome(not seen["available"], seen["digest_known"], None,
                       metrics={"availability": float(seen["available"])})

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        p = _r2_params(tm)
        rng = random.Random(f"R2-{seed}")
        n = int(p["domains"])
        env = simpy.Environment()
        chain = workdir / "chain"
        admin = ProMLNode.init(workdir / "admin", name="admin", domain="consortium",
                               chain_dir=chain, new_chain=True, seed=f"R2-{seed}-admin",
                               plain_key=True)  # a simulation: plain keys
        others = [ProMLNode.init(workdir / f"d{i}", name=f"d{i}", domain=f"domain-{i}",
                                 chain_dir=chain, seed=f"R2-{seed}-d{i}", plain_key=True)
                  for i in range(1, n)]
        stores = [o.store.root for o in others]
        # one owner per replication factor r, each replicating to the first r other domains
        owners = []
        for r in range(n):
            o = ProMLNode.init(workdir / f"owner{r}", name=f"owner{r}", domain="data-co",
                               chain_dir=chain, seed=f"R2-{seed}-o{r}", replicas=stores[:r],
                               plain_key=True)
            owners.append(o)
        # data-co joins the Dataset consortium (the founder's vote is the quorum of one member)
        # with owner0 as its domain admin, which enrols the owners
        from proml_sim.node import consortium as gov

        gov.execute(admin, "Dataset", gov.propose(admin, "Dataset", "add_domain", "data-co",
                                                  owners[0].address, ["dataset_admin"]))
        for o in owners:
            owners[0].grant("Dataset", "dataset_admin", o.address, "data-co")
        # the consumer reads the other domains' stores (not the owner's: what it heals is also
        # pushed to its replicas, and it has no business writing into the owner's domain)
        consumer = ProMLNode.init(workdir / "consumer", name="consumer", domain="cons-co",
                                  chain_dir=chain, seed=f"R2-{seed}-c", replicas=stores,
                                  plain_key=True)
        for r, o in enumerate(owners):
            f = workdir / f"data{r}.csv"
            f.write_bytes(f"rows of seed {seed} r {r}\n".encode() * 200)
            o.register("Dataset", f"ds{r}", [f])
        result: dict[int, tuple[bool, bool, float]] = {}
        deleted_at: dict[int, float] = {}

        def owner(r: int):
            yield env.timeout(rng.uniform(1, 6) * HOUR)
            shutil.rmtree(owners[r].store.objects)  # its own store: all it controls
            deleted_at[r] = env.now

        def fetch(r: int):
            yield env.timeout(rng.uniform(7, 24) * HOUR)
            name = f"ds{r}@{owners[r].address}"
            # what the consumer itself sees: the chain still commits to a digest (so the record
            # existed), and no store it can reach has bytes hashing to it -- an alarm raised
            # from the consumer's own data, not from looking into the owner's store
            on_chain = bool(consumer.client("Dataset").history(consumer.resolve(name).id))
            ok = _retrievable(consumer, name)
            result[r] = (ok, on_chain and not ok, env.now - deleted_at[r])

        for r in range(n):
            env.process(owner(r))
            env.process(fetch(r))
        env.run()
        series = [(float(r), float(result[r][0])) for r in range(n)]
        # and when other domains lose copies too (each copy independently, probability p)
        lossy = _loss_series(workdir / "loss", n, int(p["trials"]), float(p["replica_loss"]),
                             rng, seed)
        head = min(int(p["replicas"]), n - 1)
        available, noticed, ttd = result[head]
        return Outcome(not available, noticed, ttd if noticed else None,
                       metrics={"availability": float(available),
                                "deletion_evident": float(noticed)},
                       series={"availability_by_r": series,
                               "availability_by_r_with_loss": lossy})
