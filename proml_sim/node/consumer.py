"""Consumer-side acceptance: check what you were served against what the chain recorded.

A consumer gets bytes from anywhere: a URL, a mirror, a colleague's hand-off, a model hub.  The
chain holds what was recorded and approved.  :class:`ConsumerGuard` accepts served bytes only if

* they hash to the content digest the chain recorded for the artefact's **latest** version (a
  URL or locator is only a hint); bytes matching an *older* version's digest are a rollback;
* the artefact is in a state the consumer accepts (for a model: verified, delivered, audited);
* for an approved artefact, the approval that fired binds the tuple ``(model, dataset,
  evaluation)`` (:func:`tuple_digest`), and the model bytes are the version that was approved;
* it is never older than what this consumer has already seen: an artefact's on-chain version
  never goes back (a node serving an older view is refused), a release superseded by a newer
  accepted release of the same owner is refused, and within a release line the consumer never
  accepts an earlier release than one it accepted before.

**Release lines** (``release_lines=True``).  The contract assigns versions per artefact; a
product's successive releases are separate artefacts.  A release names its predecessor as an
input of its *registration*, made by the same account (``register(salt, 0, "", [previous])``):
that account's own on-chain statement "this supersedes that".  A release is superseded once a
successor is in an accepted state; a successor that was registered but not (yet) approved, or
was withdrawn, supersedes nothing.  What a consumer accepted is remembered (optionally in a
JSON file, ``memory=``), so a later withdrawal of the newest release does not make the consumer
go back on its own: call :meth:`ConsumerGuard.forget` to accept an older release deliberately.

The guard reads the chain through any object with the :class:`LifecycleClient` reading API
(``ir`` and ``events()``) and the bytes it is given; it never trusts a served claim.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from proml_sim.errors import (
    ConsumerRefused,
    DigestMismatch,
    NodeError,
    NotApproved,
    RollbackRefused,
    TupleMismatch,
)
from proml_sim.fsutil import atomic_write_json, parse_json
from proml_sim.ir import (
    ZERO32,
    HistoryEntry,
    LifecycleEvent,
    LifecycleIR,
    Registered,
    history_from_events,
)

#: Domain separation of the tuple digest (so it is never the digest of some plain file).
__all__ = [  # the refusal errors live in proml_sim.errors and are re-exported here
    "MEMORY_FORMAT",
    "TUPLE_TAG",
    "Acceptance",
    "ArtefactView",
    "ChainReader",
    "ConsumerGuard",
    "ConsumerRefused",
    "DigestMismatch",
    "NotApproved",
    "RollbackRefused",
    "TupleMismatch",
    "fetch_by_digest",
    "sha256",
    "tuple_digest",
]

TUPLE_TAG = b"proml-tuple:v1:"
MEMORY_FORMAT = 1


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def tuple_digest(model: bytes, dataset: bytes, evaluation: bytes) -> bytes:
    """The digest approvers sign for an evaluation: it binds the model's, the dataset's and the
    evaluation's content digests (32 bytes each) together, so approvals of one tuple never
    count for another (mix-and-match of versions)."""
    for name, d in (("model", model), ("dataset", dataset), ("evaluation", evaluation)):
        if len(d) != 32:
            raise ValueError(f"tuple_digest: the {name} digest must be 32 bytes (SHA-256), "
                             f"not {len(d)}")
    return sha256(TUPLE_TAG + model + dataset + evaluation)


class ChainReader(Protocol):
    """What the guard reads: a lifecycle's IR and its events in chain order."""

    @property
    def ir(self) -> LifecycleIR: ...

    def events(self) -> list[LifecycleEvent]: ...


@dataclass(frozen=True)
class ArtefactView:
    """One artefact as the chain shows it now."""

    id: bytes
    version: int
    state: str
    registrant: str
    history: tuple[HistoryEntry, ...]

    def content(self, steps: frozenset[str] | None) -> list[tuple[int, bytes]]:
        """(version, digest) of every entry whose digest names the artefact's bytes."""
        return [(h.version, h.digest) for h in self.history
                if h.digest != ZERO32 and (steps is None or h.step in steps)]


@dataclass(frozen=True)
class Acceptance:
    """What a consumer accepted: the artefact, its on-chain version and state, the digest of
    the bytes, and the release's position in its line (1 for a line's first release)."""

    id: bytes
    version: int
    state: str
    digest: bytes
    line: bytes  # the id of the line's first release
    release: int


def fetch_by_digest(digest: bytes, sources: Sequence[tuple[str, Callable[[], bytes]]]
                    ) -> tuple[bytes, str, list[str]]:
    """Fetch bytes by content: try ``sources`` (name, fetch) in order and return the first bytes
    that hash to ``digest`` with the source's name, and the names of sources that served other
    bytes or failed.  A URL is only a hint: what counts is the digest.
    Raises :class:`DigestMismatch` when no source has the right bytes."""
    bad: list[str] = []
    for name, fetch in sources:
        try:
            data = fetch()
        except OSError:
            bad.append(name)
            continue
        if sha256(data) == digest:
            return data, name, bad
        bad.append(name)
    raise DigestMismatch(
        f"no source served bytes hashing to {digest.hex()} (tried {', '.join(bad) or 'none'}): "
        "every copy differs from the recorded digest; do not use them, and ask the recorder's "
        "domain or a replica for the recorded bytes")


class ConsumerGuard:
    """One consumer's acceptance checks for one lifecycle.

    ``content_steps``: the steps whose evidence digest is the digest of the artefact's bytes
    (``None``: every step with a digest; for ``Model``, ``("train",)``: the verify digest is a
    tuple digest, not the model's).  ``approval_step``: the k-of-n step whose digest is a
    :func:`tuple_digest` (``"verify"`` for ``Model``).  ``accept_states``: states in which the
    artefact may be used (``None``: any).  ``release_lines``: treat a registration's inputs
    registered by the same account as the release it supersedes (off: every artefact is a line
    of its own).  ``memory``: a JSON file remembering the versions seen and the releases
    accepted across restarts.
    """

    def __init__(self, client: ChainReader, *, content_steps: Iterable[str] | None = None,
                 approval_step: str | None = None, accept_states: Iterable[str] | None = None,
                 release_lines: bool = False, memory: str | Path | None = None) -> None:
        self.client = client
        self.release_lines = release_lines
        ir = client.ir
        self.ir = ir
        known_steps = {"register", *(t.name for t in ir.transitions)}
        self.content_steps = frozenset(content_steps) if content_steps is not None else None
        for s in sorted(self.content_steps or ()):
            if s not in known_steps:
                raise ValueError(f"{ir.name} has no step {s!r}; content_steps must name steps of "
                                 f"{sorted(known_steps)}")
        if approval_step is not None:
            t = ir.transition(approval_step)  # KeyError naming the known transitions
            if not t.evidence:
                raise ValueError(f"{ir.name}.{approval_step} carries no evidence digest, so it "
                                 "cannot bind a tuple; pick a transition with evidence=True")
        self.approval_step = approval_step
        self.accept_states = frozenset(accept_states) if accept_states is not None else None
        for s in sorted(self.accept_states or ()):
            ir.state(s)  # KeyError naming the known states
        self.memory = Path(memory) if memory is not None else None
        #: highest on-chain version seen per artefact id
        self.seen: dict[bytes, int] = {}
        #: per release line (id of its first release): the latest release accepted
        self.accepted: dict[bytes, Acceptance] = {}
        if self.memory is not None and self.memory.exists():
            self._load()

    # -- reading the chain ---------------------------------------------------------------------
    def view(self, aid: bytes, events: Sequence[LifecycleEvent] | None = None) -> ArtefactView:
        """The artefact as the chain shows it; refuses a view older than one seen before."""
        evs = list(self.client.events()) if events is None else events
        hist = history_from_events(self.ir, evs, aid)
        if not hist:
            raise NotApproved(f"{self.ir.name} 0x{aid.hex()} is not registered on this chain: "
                              "check the id and the contract address you pinned")
        last = hist[-1]
        before = self.seen.get(aid, 0)
        if last.version < before:
            raise RollbackRefused(
                f"{self.ir.name} 0x{aid.hex()[:12]}...: the chain shows version {last.version}, "
                f"but this consumer has seen version {before}: the node you read from is behind "
                "or lying; read from another domain's node")
        if last.version > before:
            self.seen[aid] = last.version
            self._save()
        return ArtefactView(aid, last.version, last.target, hist[0].actor, tuple(hist))

    def _state_ok(self, v: ArtefactView) -> None:
        if self.accept_states is not None and v.state not in self.accept_states:
            raise NotApproved(
                f"{self.ir.name} 0x{v.id.hex()[:12]}... is {v.state!r} (version {v.version}); "
                f"this consumer accepts only {', '.join(sorted(self.accept_states))}")

    def _bytes_ok(self, v: ArtefactView, digest: bytes, upto: int | None = None) -> int:
        """The version whose content the bytes are; refuses other and older bytes."""
        content = [(ver, d) for ver, d in v.content(self.content_steps)
                   if upto is None or ver <= upto]
        if not content:
            raise NotApproved(f"{self.ir.name} 0x{v.id.hex()[:12]}... has no recorded content "
                              "digest to check the bytes against")
        latest_v, latest_d = content[-1]
        if digest == latest_d:
            return latest_v
        older = [ver for ver, d in content if d == digest]
        if older:
            raise RollbackRefused(
                f"{self.ir.name} 0x{v.id.hex()[:12]}...: the bytes served are version "
                f"{older[-1]}'s content, but the latest recorded content is version {latest_v}'s "
                f"({latest_d.hex()[:16]}...): an older version was served; fetch the latest")
        raise DigestMismatch(
            f"{self.ir.name} 0x{v.id.hex()[:12]}...: the bytes served hash to "
            f"{digest.hex()[:16]}..., but the chain records {latest_d.hex()[:16]}... for "
            f"version {latest_v}: they were altered or swapped; do not use them, fetch the "
            "recorded bytes by digest from another source")

    # -- release lines --------------------------------------------------------------------------
    def _registrations(self, events: Sequence[LifecycleEvent]) -> dict[bytes, Registered]:
        return {ev.id: ev for ev in events if isinstance(ev, Registered)}

    def line_of(self, aid: bytes, events: Sequence[LifecycleEvent] | None = None
                ) -> list[bytes]:
        """The releases before ``aid`` in its line, first release first, ``aid`` last."""
        if not self.release_lines:
            return [aid]
        evs = list(self.client.events()) if events is None else events
        regs = self._registrations(evs)
        out = [aid]
        cur = regs.get(aid)
        while cur is not None:
            prev = [i for i in cur.inputs if i in regs and regs[i].registrant == cur.registrant
                    and i not in out]
            if not prev:
                break
            out.append(prev[0])
            cur = regs[prev[0]]
        return out[::-1]

    def successors(self, aid: bytes, events: Sequence[LifecycleEvent] | None = None
                   ) -> list[bytes]:
        """Later releases of ``aid``'s line now in an accepted state (nearest first)."""
        if not self.release_lines:
            return []
        evs = list(self.client.events()) if events is None else events
        regs = self._registrations(evs)
        me = regs.get(aid)
        if me is None:
            return []
        out: list[bytes] = []
        frontier = [aid]
        while frontier:
            nxt = [r.id for r in regs.values() if r.registrant == me.registrant
                   and any(f in r.inputs for f in frontier) and r.id not in out and r.id != aid]
            out += nxt
            frontier = nxt
        live = []
        for s in out:
            hist = history_from_events(self.ir, evs, s)
            if hist and (self.accept_states is None or hist[-1].target in self.accept_states):
                live.append(s)
        return live

    def _line_ok(self, v: ArtefactView, digest: bytes, version: int,
                 events: Sequence[LifecycleEvent]) -> Acceptance:
        newer = self.successors(v.id, events)
        if newer:
            raise RollbackRefused(
                f"{self.ir.name} 0x{v.id.hex()[:12]}... is superseded by "
                f"0x{newer[-1].hex()[:12]}... ({len(newer)} newer accepted release(s) by the "
                "same owner): an old release was served; fetch the latest release")
        line = self.line_of(v.id, events)
        acc = Acceptance(v.id, v.version, v.state, digest, line[0], len(line))
        prev = self.accepted.get(line[0])
        if prev is not None and acc.release < prev.release:
            raise RollbackRefused(
                f"{self.ir.name} 0x{v.id.hex()[:12]}... is release {acc.release} of its line, but "
                f"this consumer already accepted release {prev.release} "
                f"(0x{prev.id.hex()[:12]}...): it never goes back; call forget() to do so "
                "deliberately")
        return acc

    def _remember(self, acc: Acceptance) -> Acceptance:
        prev = self.accepted.get(acc.line)
        if prev is None or acc.release >= prev.release:
            self.accepted[acc.line] = acc
            self._save()
        return acc

    def forget(self, line: bytes) -> None:
        """Drop what was accepted in a line (to follow a deliberate, announced rollback)."""
        self.accepted.pop(line, None)
        self._save()

    # -- the checks -----------------------------------------------------------------------------
    def check_bytes(self, aid: bytes, data: bytes) -> Acceptance:
        """Accept ``data`` as artefact ``aid``: latest recorded content, accepted state, not
        superseded, not older than accepted before.  Raises a :class:`ConsumerRefused`."""
        evs = list(self.client.events())
        v = self.view(aid, evs)
        self._state_ok(v)
        d = sha256(data)
        version = self._bytes_ok(v, d)
        return self._remember(self._line_ok(v, d, version, evs))

    def check_approved(self, aid: bytes, model: bytes, dataset_digest: bytes,
                       evaluation: bytes) -> Acceptance:
        """Accept ``model`` with its evaluation: the bytes are the approved version's content,
        and the approval that fired bound exactly (model, dataset, evaluation)."""
        if self.approval_step is None:
            raise ValueError("check_approved needs the guard's approval_step (e.g. 'verify')")
        evs = list(self.client.events())
        v = self.view(aid, evs)
        self._state_ok(v)
        fired = [h for h in v.history if h.step == self.approval_step]
        if not fired:
            raise NotApproved(f"{self.ir.name} 0x{aid.hex()[:12]}... has no "
                              f"{self.approval_step!r} on chain: nothing was approved")
        approval = fired[-1]
        d = sha256(model)
        version = self._bytes_ok(v, d, upto=approval.version - 1)
        later = [ver for ver, _ in v.content(self.content_steps) if ver > approval.version]
        if later:
            raise NotApproved(f"{self.ir.name} 0x{aid.hex()[:12]}...: version {later[-1]} "
                              "changed the content after the approval; it is not approved")
        want = tuple_digest(d, dataset_digest, sha256(evaluation))
        if want != approval.digest:
            raise TupleMismatch(
                f"{self.ir.name} 0x{aid.hex()[:12]}...: the approvers bound tuple "
                f"{approval.digest.hex()[:16]}... at version {approval.version}, but the model, "
                f"dataset and evaluation served make {want.hex()[:16]}...: they are not the "
                "approved combination (mixed versions?); fetch the approved evaluation and "
                "dataset")
        return self._remember(self._line_ok(v, d, version, evs))

    # -- memory ---------------------------------------------------------------------------------
    def _save(self) -> None:
        if self.memory is None:
            return
        data = {"format": MEMORY_FORMAT, "lifecycle": self.ir.name,
                "seen": {"0x" + k.hex(): v for k, v in self.seen.items()},
                "accepted": {"0x" + k.hex(): _acc_json(a) for k, a in self.accepted.items()}}
        atomic_write_json(self.memory, data, indent=None)

    def _load(self) -> None:
        assert self.memory is not None
        try:
            data = parse_json(self.memory.read_text())
            if data.get("format") != MEMORY_FORMAT or data.get("lifecycle") != self.ir.name:
                raise ValueError(f"format {data.get('format')!r}, lifecycle "
                                 f"{data.get('lifecycle')!r}")
            self.seen = {bytes.fromhex(k[2:]): int(v) for k, v in data["seen"].items()}
            self.accepted = {bytes.fromhex(k[2:]): _acc_from(a)
                             for k, a in data["accepted"].items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise NodeError(f"cannot read the consumer memory {self.memory} ({exc}); it must be "
                            f"a {self.ir.name} guard's memory file: restore it or pick another "
                            "path (starting afresh forgets what was seen)") from exc


def _acc_json(a: Acceptance) -> dict[str, Any]:
    return {"id": "0x" + a.id.hex(), "version": a.version, "state": a.state,
            "digest": "0x" + a.digest.hex(), "line": "0x" + a.line.hex(), "release": a.release}


def _acc_from(d: dict[str, Any]) -> Acceptance:
    return Acceptance(bytes.fromhex(d["id"][2:]), int(d["version"]), str(d["state"]),
                      bytes.fromhex(d["digest"][2:]), bytes.fromhex(d["line"][2:]),
                      int(d["release"]))
