"""T1: the dataset admin swaps a released dataset's bytes; T1L: the same swap laundered through
a labeller account the dataset admin appoints itself (a sock) and a label step."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import proml_sim.lifecycles as lifecycles
from proml_sim.dsl import Consortium
from proml_sim.errors import LifecycleError, UsageError, lifecycle_error_from_reason
from proml_sim.ir import Registered, Transitioned, build_ir
from proml_sim.node.consumer import ConsumerGuard
from proml_sim.node.store import BlobStore
from proml_sim.sim.monitor import outcome as tx_outcome
from proml_sim.sim.world import domain_id
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.kit import Alarm, Auditor, dba_rewrite, watch, world
from proml_sim.threats.runner import Outcome, scenario
from proml_sim.threats.scenarios.common import param, play, salt, send_ok, wait_until
from proml_sim.threats.scenarios.t_support import (
    HOUR,
    TICK,
    baseline_db,
    db_dataset,
    db_evidence,
    hexd,
    lifecycle_name,
    ok,
    sha,
    trials,
    uses,
)

_Single: Any = getattr(lifecycles, "SingleAdminDataset", lifecycles.Dataset)


class StrictDataset(_Single):  # type: ignore[misc]
    """The consortium Dataset whose review must come from another domain than the label."""

    governance = Consortium(quorum=2)
    review = _Single.labelled.to(_Single.reviewed, by=_Single.dataset_admin,
                                 separate_from=_Single.label, separate_domain_from=_Single.label)


GOOD, BAD = b"good rows\n" * 100, b"poisoned rows\n" * 100


def _plan(tm: ThreatModel, seed: int) -> tuple[float, list[float]]:
    rng = random.Random(seed)
    swap = rng.uniform(1, 4) * HOUR
    # consumers fetch after the swap (fetches before it see honest bytes and measure nothing)
    n = param(tm, "consumers")
    return swap, sorted(rng.uniform(swap + TICK, 12 * HOUR) for _ in range(n))


def _sock_domain(tm: ThreatModel) -> str:
    """The trust domain the sock labeller claims (T1L's ``sock_domain``; any name a domain id
    can hold, so it cannot have a [ranges] list)."""
    name = str(param(tm, "sock_domain"))
    if len(name.encode()) > 32:
        raise UsageError(f"{tm.id}: sock_domain = {name!r} is longer than 32 bytes, the most a "
                         "trust domain name can have; shorten it")
    return name


def _dataset(tm: ThreatModel) -> type:
    """The Dataset lifecycle both systems run (``lifecycle``): it must have the label, review
    and release steps the scenario takes, each one call by one party."""
    cls = lifecycle_name(tm)
    ir = build_ir(cls)
    if not {"label", "review", "release"} <= {t.name for t in ir.transitions}:
        raise UsageError(f"{tm.id}: lifecycle {cls.__name__} has no label/review/release steps; "
                         "name a Dataset lifecycle (Dataset, package.module:Class)")
    if k := next((t for t in ir.transitions if t.name in ("label", "review", "release")
                  and t.approvals > 1), None):
        raise UsageError(f"{tm.id}: {cls.__name__}.{k.name} needs {k.approvals} approvals; "
                         f"{tm.id} takes label, review and release as one call each by one "
                         "party: name a Dataset lifecycle where they are single steps")
    if not ir.register_evidence and not ir.transition("label").evidence:
        raise UsageError(f"{tm.id}: {cls.__name__} records no digest at registration nor on "
                         "label, so a consumer has nothing to check the bytes against: name a "
                         "Dataset lifecycle that records one (evidence=True)")
    return cls


def _evidence(cls: type, step: str, digest: Any) -> tuple[Any, ...]:
    """A step's evidence arguments on ``cls``, (digest, locator, inputs) where the step takes
    evidence, none where it does not (the contract refuses a digest there)."""
    return (digest, "", []) if build_ir(cls).transition(step).evidence else ()


def _baseline(tm: ThreatModel, seed: int, workdir: Path, launder: bool) -> Outcome:
    swap, fetches = _plan(tm, seed)
    db = baseline_db(tm, workdir, "da", dataset=_dataset(tm))
    aud = Auditor(db, param(tm, "audit_every_s"))
    blob = workdir / "dataset.bin"
    blob.write_bytes(GOOD)
    aid = db_dataset(db, "ds", hexd(GOOD), hexd(GOOD), release=not launder)
    aud.visit_until(swap)
    blob.write_bytes(BAD)
    refused = []
    if launder:  # through the application: a labeller it appointed, claiming label-co
        db.grant("sock", "Dataset", "labeller", _sock_domain(tm))
        for who, step in (("sock", "label"), ("da", "review"), ("da", "release")):
            try:  # an attack step the lifecycle's rules refuse is the defence, not the set-up
                db.fire(who, step, aid, db_evidence(db, step, hexd(BAD)), swap)
            except LifecycleError as exc:
                refused.append(f"{step} by {who} refused: {type(exc).__name__}: {exc}")
    else:  # the DBA makes the record agree with the new bytes, audit trail included
        dba_rewrite(db, aid, dict.fromkeys(("register", "label", "release"), hexd(BAD)))
    used = []
    for t in fetches:  # a consumer uses the bytes if they hash to the recorded digest
        aud.visit_until(t)
        used.append(hexd(blob.read_bytes()) == db.digest_of(aid)
                    and db.admin_sql("SELECT state FROM artefacts WHERE id=?",
                                     (aid,))[0][0] == "released")
    alarms = aud.visit_until(12 * HOUR)
    db.close()
    return trials(used, [bool(alarms)] * len(used), attack_at=swap, alarms=alarms,
                  note="; ".join(refused))


def _proml(tm: ThreatModel, seed: int, workdir: Path, launder: bool) -> Outcome:
    swap, fetches = _plan(tm, seed)
    claim = _sock_domain(tm) if launder else ""
    cls = _dataset(tm)
    ds = cls.__name__
    in_house = [("da", ds, "labeller")] * bool(param(tm, "in_house_labelling"))
    # the sock: an account the dataset admin holds, in its domain
    w, ps = world(tm, seed, lifecycles=[cls], rename={"Dataset": ds}, grants=in_house)
    store = BlobStore(workdir / "da-store")
    digest = bytes.fromhex(store.put_bytes(GOOD).digest)
    aid = w.client(ds).artefact_id(ps["da"].address, salt("ds"))
    used: list[bool] = []
    alarms: list[Alarm] = []
    steps: list[str] = []

    def do(who: str, *call: Any, honest: bool = False) -> Any:
        tx = yield from send_ok(w, who, ds, *call)
        what = call[1] if call[0] == "fire" else call[0]
        steps.append(f"{what} {tx_outcome(tx)}")
        if honest and not ok(tx):  # the set-up, not the attack, failed: the run names it
            reason = tx.receipt.revert_reason if tx.receipt else ""
            raise (lifecycle_error_from_reason(reason) if reason else None) or LifecycleError(
                f"{ds}.{what} by {who}: {tx_outcome(tx)}")
        return ok(tx)

    def data_company() -> Any:
        yield from do("da", "register", salt("ds"), digest, "store://ds", [], honest=True)
        yield from do("lab", "fire", "label", aid, *_evidence(cls, "label", digest),
                      honest=True)
        if not launder:
            for step in ("review", "release"):
                yield from do("da", "fire", step, aid, *_evidence(cls, step, digest),
                              honest=True)
        yield wait_until(w.env, swap)
        store.path_of(digest.hex()).write_bytes(BAD)  # the served bytes change
        if launder:  # the admin appoints its sock labeller (a consortium refuses a foreign
            sock = ps["sock"]  # domain: it then enrols the sock into its own) and launders
            for domain in dict.fromkeys((claim, sock.domain)):
                if (yield from do("da", "grant", "labeller", sock.address, domain_id(domain))):
                    break
            for who, step in (("sock", "label"), ("da", "review"), ("da", "release")):
                yield from do(who, "fire", step, aid, *_evidence(cls, step, sha(BAD)))

    def consumer(at: float) -> Any:
        yield w.env.timeout(at)
        used.append(uses(lambda: guard.check_bytes(aid, store.path_of(digest.hex()).read_bytes()),
                         alarms, w.env.now))

    guard = ConsumerGuard(w.client(ds), accept_states=("released",))
    # the defence a consortium makes meaningful: a label step by an account enrolled in the
    # registering domain is no outsourced labelling (the domain comes from the chain)
    watch(w, ds, every=param(tm, "monitor_every_s"), alarms=alarms,
          name="label-domain-monitor", rule=lambda w, evs: _self_labelled(w.client(ds), evs))
    play(w, 12 * HOUR + 1, data_company(), *map(consumer, fetches), tail=0.0)
    return trials(used, [bool(alarms)] * len(used), attack_at=swap, alarms=alarms,
                  note=f"{ds}: " + ", ".join(steps))


def _self_labelled(client: Any, events: list[Any]) -> str | None:
    """What the label-domain monitor flags, from chain events: a label step by an account of
    the registrant's own domain, or a release whose digest is not the last label's."""
    owner = {e.id: client.domain_of(e.registrant) for e in events if isinstance(e, Registered)}
    labelled: dict[bytes, bytes] = {}
    for e in events:
        if not isinstance(e, Transitioned) or e.id not in owner:
            continue
        step = client.ir.transitions[e.transition].name
        if step == "label" and client.domain_of(e.actor) == owner[e.id]:
            return f"label of 0x{e.id.hex()[:12]} by {e.actor}, of the registrant's domain"
        if step == "label":
            labelled[e.id] = e.digest
        if step == "release" and labelled.get(e.id) != e.digest:
            return f"0x{e.id.hex()[:12]} released other bytes than were labelled and reviewed"
    return None


@scenario("T1")
class SwapBytes:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        return _baseline(tm, seed, workdir, launder=False)

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        return _proml(tm, seed, workdir, launder=False)


@scenario("T1L")
class LaunderedSwap:
    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        return _baseline(tm, seed, workdir, launder=True)

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        return _proml(tm, seed, workdir, launder=True)
