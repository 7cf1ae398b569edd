"""Shared plumbing of the integrity scenarios (T2-T10).

* :func:`paper_world`: a simulated world with the paper's participants and roles (the labeller
  is granted by the dataset admin, as the lifecycle delegates it);
* :func:`send_ok`: send one lifecycle call and wait for its receipt;
* :class:`WorldSource`: the world's chain and an evidence store as the node's
  ``EvidenceSource``, so the node's own lineage and verification run on simulated worlds;
* :func:`lineage_downstream`: the models built on an artefact version, from the node's lineage
  module when it is installed, else from the chain's events;
* baseline helpers: a provenance database with an application lineage table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from proml_sim.chain.client import event_from_args
from proml_sim.ir import ZERO32, LifecycleIR, Registered, Transitioned
from proml_sim.lifecycles import Dataset, Model
from proml_sim.node.store import BlobStore, sha256_file
from proml_sim.sim import World
from proml_sim.sim.world import Participant, SimTx
from proml_sim.threats.baseline import CentralDB
from proml_sim.threats.scenarios.common import small_world

HOUR = 3600.0
#: The spacing unit of scripted steps in scenarios whose timing does not matter (10 simulated
#: minutes): activity is sparse, and the world's run time grows with the blocks simulated.
TICK = 600.0

#: name -> (trust domain, region)
PEOPLE: dict[str, tuple[str, str]] = {
    "op": ("client-co", "eu"), "da": ("data-co", "eu"), "dev": ("dev-co", "us"),
    "v0": ("verif-0", "eu"), "v1": ("verif-1", "us"), "v2": ("verif-2", "asia"),
}
GRANTS: list[tuple[str, str, str]] = [
    ("op", "Model", "operator"), ("da", "Dataset", "dataset_admin"), ("dev", "Model", "developer"),
    ("v0", "Model", "verifier"), ("v1", "Model", "verifier"), ("v2", "Model", "verifier"),
]


def paper_world(seed: int, *, extra: Mapping[str, tuple[str, str]] | None = None,
                labellers: Sequence[str] = (), grants: Iterable[tuple[str, str, str]] = (),
                profile: Any = "consortium-fast") -> tuple[World, dict[str, Participant]]:
    """A world with :data:`PEOPLE` (plus ``extra``), their :data:`GRANTS` (plus ``grants``), and
    ``labellers`` (names in ``extra``) granted ``Dataset.labeller`` by their domains."""
    people = {**PEOPLE, **(extra or {})}
    # the labellers' domains join the Dataset consortium and enrol them (consortium default)
    hired = [(name, "Dataset", "labeller") for name in labellers]
    w, ps = small_world(seed, people, [*GRANTS, *grants, *hired], profile=profile)
    return w, ps


def send_ok(w: World, who: Participant, lifecycle: str, method: str, *args: Any) -> Any:
    """Generator: send one call as ``who``, wait until its block is seen; returns the SimTx."""
    tx = yield from w.send(who, lifecycle, method, *args)
    yield w.confirmed(tx, 1)
    return tx


def ok(tx: SimTx) -> bool:
    return tx.receipt is not None and bool(tx.receipt.status)


def hexd(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def latest_evidence(client: Any, aid: bytes, step: str | None = None) -> bytes:
    """The latest non-zero evidence digest of an artefact (of one step, if given)."""
    for h in reversed(client.history(aid)):
        if h.digest != ZERO32 and (step is None or h.step == step):
            return bytes(h.digest)
    return ZERO32


# -- the world as the node's evidence source ---------------------------------------------------
class WorldSource:
    """The node's ``EvidenceSource`` protocol over a simulated world's engine and a blob store
    holding every participant's evidence (records, files)."""

    def __init__(self, world: World, store: BlobStore) -> None:
        self.world = world
        self.store = store
        self._cache: dict[str, list[Any]] | None = None

    @property
    def chain_id(self) -> int:
        assert self.world.backend is not None
        return int(self.world.backend.chain_id)

    @property
    def contracts(self) -> Mapping[str, str]:
        return {lc: self.world.clients[lc].address for lc in ("Dataset", "Model")}

    @property
    def irs(self) -> Mapping[str, LifecycleIR]:
        return {lc: self.world.clients[lc].ir for lc in ("Dataset", "Model")}

    def _events(self) -> dict[str, list[Any]]:
        if self._cache is None:
            from proml_sim.node.evidence import collect_events

            self._cache = {lc: collect_events(self.world.backend, lc, c.address, c.codec)
                           for lc, c in ((lc, self.world.clients[lc])
                                         for lc in ("Dataset", "Model"))}
        return self._cache

    def refresh(self) -> None:
        self._cache = None

    def events(self, lifecycle: str | None = None) -> Sequence[Any]:
        evs = self._events()
        if lifecycle is not None:
            return evs[lifecycle]
        return sorted((ce for g in evs.values() for ce in g), key=lambda ce: ce.position)

    def deployed_fingerprint(self, lifecycle: str) -> str | None:
        return str(self.world.clients[lifecycle].fingerprint())

    def blob(self, digest: str | bytes) -> bytes:
        return self.store.get(_hex(digest))

    def open_blob(self, digest: str | bytes) -> Any:
        return self.store.open(_hex(digest))

    def has_blob(self, digest: str | bytes) -> bool:
        return self.store.has(_hex(digest))

    def check_blob(self, digest: str | bytes) -> tuple[bool, str]:
        d = _hex(digest)
        if not self.store.has(d):
            return False, f"missing from the exchange store {self.store.root}"
        got, _ = sha256_file(self.store.path_of(d))
        return (True, "intact in the exchange store") if got == d else (
            False, f"corrupted: its bytes hash to {got}")

    def describe(self) -> str:
        return f"simulated world (seed {self.world.seed})"


def _hex(digest: str | bytes) -> str:
    return digest.hex() if isinstance(digest, bytes) else digest.lower().removeprefix("0x")


def node_module(name: str) -> Any | None:
    """``proml_sim.node.<name>`` if it is installed and imports, else ``None``."""
    import importlib

    try:
        return importlib.import_module(f"proml_sim.node.{name}")
    except Exception:  # absent, or broken while being edited: scenarios fall back
        return None


def downstream_from_events(world: World, lifecycle: str, aid: bytes, version: int
                           ) -> set[bytes]:
    """Model ids built, directly or through other artefacts, on ``aid`` at ``version`` or later
    (the conservative rule of the node's lineage: a later version carries the earlier content),
    from the chain's ``Registered``/``Transitioned`` inputs in chain order."""
    events: list[tuple[str, Any]] = []
    for lc in ("Dataset", "Model"):
        for ce in _chain_events(world, lc):
            events.append((lc, ce))
    events.sort(key=lambda x: (x[1][0], x[1][1]))
    tainted: set[tuple[str, bytes]] = set()
    models: set[bytes] = set()
    for lc, (_, _, ev) in events:
        if not isinstance(ev, Registered | Transitioned):
            continue
        v = 1 if isinstance(ev, Registered) else ev.version
        me = (lc, ev.id)
        if lc == lifecycle and ev.id == aid and v >= version:
            tainted.add(me)
        if me in tainted or any((other, i) in tainted for i in ev.inputs
                                for other in ("Dataset", "Model")):
            tainted.add(me)
            if lc == "Model":
                models.add(ev.id)
    return models


def _chain_events(world: World, lifecycle: str) -> list[tuple[int, int, Any]]:
    """(block, log index, event) of one lifecycle contract, in chain order."""
    c = world.clients[lifecycle]
    assert world.backend is not None
    out = []
    for log in world.backend.logs(c.address):
        if c.codec.knows(log.topics):
            name, args = c.codec.decode_log(log)
            out.append((log.block_number, log.log_index, event_from_args(name, args)))
    return out


def lineage_downstream(world: World, store: BlobStore, lifecycle: str, aid: bytes,
                       version: int) -> tuple[set[bytes], str]:
    """(Model ids downstream of ``aid`` at ``version``, which lineage computed them): the node's
    ``Lineage.blast_radius`` when that module is installed, else :func:`downstream_from_events`."""
    mod = node_module("lineage")
    if mod is not None:
        try:
            lin = mod.Lineage(WorldSource(world, store))
            radius = lin.blast_radius(
                mod.VersionKey(lifecycle, "0x" + aid.hex(), version), version)
            return ({bytes.fromhex(a["id"][2:]) for a in radius.artefacts.get("Model", [])},
                    "node lineage")
        except (AttributeError, TypeError):  # another API than this code knows: fall back
            pass
    return downstream_from_events(world, lifecycle, aid, version), "chain events"


# -- the baseline --------------------------------------------------------------------------------
def baseline_db(workdir: Path, admin: str, name: str = "provenance.sqlite") -> CentralDB:
    """The centralised provenance database (both lifecycles) run by ``admin``, with the paper's
    roles granted, and an application lineage table ``inputs(artefact, version, input)``."""
    db = CentralDB(workdir / name, {"Dataset": Dataset, "Model": Model}, admin=admin)
    for person, lc, role in GRANTS:
        db.grant(person, lc, role, PEOPLE[person][0])
    db.conn.execute("CREATE TABLE IF NOT EXISTS inputs (artefact TEXT, version INTEGER, "
                    "input TEXT)")
    db.conn.commit()
    return db


def db_version(db: CentralDB, aid: str) -> int:
    row = db.conn.execute("SELECT version FROM artefacts WHERE id=?", (aid,)).fetchone()
    return int(row[0])


def db_fire(db: CentralDB, actor: str, transition: str, aid: str, digest: str = "",
            at: float = 0.0, inputs: Sequence[str] = ()) -> bool:
    """Fire through the baseline application, recording the declared inputs (lineage)."""
    fired = db.fire(actor, transition, aid, digest, at)
    if fired and inputs:
        v = db_version(db, aid)
        db.conn.executemany("INSERT INTO inputs VALUES (?, ?, ?)", [(aid, v, i) for i in inputs])
        db.conn.commit()
    return fired


def db_step_digest(db: CentralDB, aid: str, step: str) -> str | None:
    """The digest of the latest ``step`` row of an artefact's history, as the database says."""
    rows = [r for r in db.history(aid) if r[1] == step]
    return rows[-1][4] if rows else None
