"""What the tampering scenarios (T1-T12) share: the lifecycle a threat model names, the node's
evidence source over a world and node records, and the baseline database of the paper's
lifecycles with the cast's roles (its insider and outside auditor are the kit's
:func:`~proml_sim.threats.kit.dba_rewrite` and :class:`~proml_sim.threats.kit.Auditor`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from proml_sim.lifecycles import Dataset, Model, load_lifecycle
from proml_sim.node.consumer import ConsumerRefused, NotApproved
from proml_sim.node.evidence import LiveSource
from proml_sim.node.records import FileRef, Record
from proml_sim.node.store import BlobStore
from proml_sim.sim import World
from proml_sim.sim.world import Participant, SimTx
from proml_sim.threats.baseline import CentralDB
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.kit import Alarm, Extra, central
from proml_sim.threats.runner import Outcome
from proml_sim.threats.scenarios.common import param, trials_of

HOUR = 3600.0
#: the spacing of scripted steps whose timing does not matter (10 simulated minutes)
TICK = 600.0
#: the lifecycles of the baseline's database (the paper's two)
PAPER = {"Dataset": Dataset, "Model": Model}


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def hexd(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def lifecycle_name(tm: Any, key: str = "lifecycle") -> type:
    """The lifecycle class a threat model's parameter names (``Dataset``, ``Model`` or
    ``package.module:Class``)."""
    return load_lifecycle(str(param(tm, key)))


def uses(check: Callable[[], Any], alarms: list[Alarm], at: float, who: str = "consumer"
         ) -> bool:
    """A consumer's decision: whether ``check()`` (a :class:`ConsumerGuard` check) accepts.  A
    refusal other than "nothing approved yet" goes to the consumer's own log as an alarm."""
    try:
        check()
        return True
    except NotApproved:
        return False
    except ConsumerRefused as exc:
        alarms.append(Alarm(at, who, type(exc).__name__))
        return False


def trials(goals: Sequence[bool], caught: Sequence[bool], *, attack_at: float | None = None,
           alarms: Iterable[Alarm] = (), metrics: Mapping[str, float | None] | None = None,
           note: str = "") -> Outcome:
    """:func:`~proml_sim.scenarios.common.trials_of` of a run whose attempt ``i`` reached the
    goal (``goals[i]``) and, if so, was caught by ``alarms`` (``caught[i]``)."""
    seen = tuple(sorted(alarms, key=lambda a: a.at))
    return trials_of([(g, None, seen if c else ()) for g, c in zip(goals, caught, strict=True)],
                     attack_at=attack_at, metrics=metrics, note=note)


def ok(tx: SimTx) -> bool:
    return tx.receipt is not None and bool(tx.receipt.status)


def latest_evidence(client: Any, aid: bytes, step: str | None = None) -> bytes:
    """The latest non-zero evidence digest of an artefact (of one step, if given)."""
    return next((bytes(h.digest) for h in reversed(client.history(aid))
                 if h.digest.strip(b"\0") and step in (None, h.step)), b"\0" * 32)


def evidence_source(w: World, store: BlobStore) -> LiveSource:
    """The node's evidence source (what ``proml verify``/``lineage`` read) over the world's
    chain and one evidence store."""
    clients = {lc: c for lc, c in w.clients.items() if lc in ("Dataset", "Model")}
    node = SimpleNamespace(backend=w.backend, store=store, clients=clients,
                           name="simulated world", home=f"seed {w.seed}")
    return LiveSource(cast(Any, node), fetch=False)


def node_record(p: Participant, lifecycle: str, step: str, artefact: bytes | None = None,
                name: str | None = None, *, at: float | None = 0.0,
                env: dict[str, Any] | None = None, **kw: Any) -> Record:
    """A step's record as ``ProMLNode`` writes it (actor, node, domain, time: ``at`` simulated
    seconds after 1.7e9, None a fixed time; ``env``: the environment; ``kw``: inputs,
    input_files, outputs, params)."""
    when = ("2024-01-01T00:00:00+00:00" if at is None else datetime.fromtimestamp(
        1_700_000_000 + at, UTC).isoformat(timespec="seconds"))
    return Record(lifecycle=lifecycle, step=step,
                  artefact=("0x" + artefact.hex()) if artefact else None,
                  name=name if artefact is None else None, actor=p.address, node=p.name,
                  domain=p.domain, time=when, environment=dict(env or {}), **kw)


def put_record(store: BlobStore, actor: Participant, lifecycle: str, step: str,
               artefact: bytes | None = None, **kw: Any) -> bytes:
    """Store a :func:`node_record` of one step; its digest, the evidence the step carries."""
    rec = node_record(actor, lifecycle, step, artefact, at=None, **kw)
    return bytes.fromhex(store.put_bytes(rec.canonical()).digest)


def fref(store: BlobStore, name: str, data: bytes) -> FileRef:
    blob = store.put_bytes(data)
    return FileRef(name, blob.digest, blob.size)


# -- the baseline -----------------------------------------------------------------------------
def baseline_db(tm: ThreatModel, workdir: Path, admin: str, extra: Extra = (),
                dataset: type = Dataset) -> CentralDB:
    """The centralised database of the paper's lifecycles (``dataset``: the Dataset lifecycle
    ProML deploys too, so both systems run the same rules) run by ``admin``, the cast's roles
    (and ``extra``'s) granted (:func:`~proml_sim.threats.kit.central`)."""
    return central(tm, workdir, {**PAPER, "Dataset": dataset}, admin=admin, name="provenance",
                   extra=extra)


def db_evidence(db: CentralDB, step: str, digest: str, lifecycle: str = "Dataset") -> str:
    """The baseline's digest argument of ``step``: ``digest`` where the lifecycle takes
    evidence on it, none where it does not (the contract refuses one there)."""
    return digest if db.irs[lifecycle].transition(step).evidence else ""


def db_dataset(db: CentralDB, name: str, raw: str, labelled: str, labeller: str = "lab",
               release: bool = True) -> str:
    """The baseline application's dataset steps, :data:`TICK` apart: ``da`` registers the
    ``raw`` digest, ``labeller`` labels it ``labelled``, ``da`` reviews and releases that
    (each step with the digest where the lifecycle takes evidence)."""
    aid = db.register("da", "Dataset", name, raw, 0.0)
    db.fire(labeller, "label", aid, db_evidence(db, "label", labelled), TICK)
    if release:
        db.fire("da", "review", aid, db_evidence(db, "review", labelled), 2 * TICK)
        db.fire("da", "release", aid, db_evidence(db, "release", labelled), 3 * TICK)
    return aid


def db_step_digest(db: CentralDB, aid: str, step: str) -> str | None:
    """The digest of the latest ``step`` row of an artefact's history, as the database says."""
    rows = [r for r in db.history(aid) if r[1] == step]
    return str(rows[-1][4]) if rows else None
