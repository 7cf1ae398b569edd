"""An activity monitor per identity: flags actions outside an identity's usual pattern.

A trust domain watches what its own accounts do on chain (everyone can read the events) and
compares it with what the domain knows it did off chain.  Two rules:

* ``unexpected``: an approval by a watched account of an (artefact, evidence digest) that its
  domain never evaluated (the domain's evaluation log, given with :meth:`ActivityMonitor.expect`).
  A stolen approver key used to approve a bogus evaluation trips it at the first approval.
* ``burst``: more than ``burst_max`` approvals by one account within ``burst_window_s``
  seconds (an attacker hurrying before revocation; needs no evaluation log).

The monitor is source-agnostic: it consumes :class:`Activity` records.  :class:`ChainReader`
turns a lifecycle contract's logs into :class:`ChainEvent` (event, block, block time, tx hash)
incrementally, and :func:`activities` turns those into activities; a scenario can feed rows of
a database the same way.  Each rule fires at most once per account (the first offending
activity); :meth:`ActivityMonitor.first_alert` is what an administrator reacts to.

Usage::

    reader = ChainReader(client)               # a registry-layout LifecycleClient
    mon = ActivityMonitor(burst_max=3, burst_window_s=600)
    mon.watch(v0_address)
    mon.expect(v0_address, model_id, evaluation_digest)   # the domain's own evaluation log
    for alert in mon.observe_many(activities(reader.poll(), client.ir)):
        ...                                    # e.g. revoke alert.account
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address

from proml_sim.chain.base import ChainBackend
from proml_sim.chain.client import event_from_args
from proml_sim.ir import (
    Approved,
    LifecycleEvent,
    LifecycleIR,
    Registered,
    RoleGranted,
    RoleRevoked,
    Transitioned,
)

RULES = ("unexpected", "burst")


@dataclass(frozen=True)
class Activity:
    """One action by one identity.  ``time``: when it happened (seconds, any fixed origin)."""

    account: str
    action: str  # "approve", "fire", "register", "grant", "revoke"
    artefact: bytes = b""
    digest: bytes = b""
    time: float = 0.0
    transition: str = ""
    block: int = -1


@dataclass(frozen=True)
class Alert:
    account: str
    rule: str  # one of RULES
    activity: Activity
    detail: str


@dataclass(frozen=True)
class ChainEvent:
    """A decoded lifecycle event with where and when it was included."""

    event: LifecycleEvent
    block: int
    time: int  # block timestamp
    tx_hash: bytes


class ActivityMonitor:
    """Per-identity rules over a stream of :class:`Activity` (see the module docstring)."""

    def __init__(self, *, burst_max: int = 3, burst_window_s: float = 600.0) -> None:
        if burst_max < 1 or burst_window_s <= 0:
            raise ValueError("burst_max must be >= 1 and burst_window_s > 0")
        self.burst_max = burst_max
        self.burst_window_s = burst_window_s
        self._expected: dict[str, set[tuple[bytes, bytes]]] = {}
        self._recent: dict[str, deque[float]] = {}
        self._fired: set[tuple[str, str]] = set()
        self.alerts: list[Alert] = []
        self.seen = 0

    # -- configuration ------------------------------------------------------------------------
    def watch(self, account: str, evaluated: Iterable[tuple[bytes, bytes]] = ()) -> None:
        """Apply the ``unexpected`` rule to ``account``, whose domain evaluated ``evaluated``
        ((artefact, digest) pairs; more can be added with :meth:`expect`)."""
        self._expected.setdefault(_cs(account), set()).update(evaluated)

    def expect(self, account: str, artefact: bytes, digest: bytes) -> None:
        """Record that ``account``'s domain evaluated ``digest`` for ``artefact`` (its own log)."""
        self._expected.setdefault(_cs(account), set()).add((artefact, digest))

    def watched(self, account: str) -> bool:
        return _cs(account) in self._expected

    # -- observing ----------------------------------------------------------------------------
    def observe(self, act: Activity) -> list[Alert]:
        """Check one activity; return the alerts it raised (each rule once per account)."""
        self.seen += 1
        who = _cs(act.account)
        new: list[Alert] = []
        if act.action != "approve":
            return new
        expected = self._expected.get(who)
        if expected is not None and (act.artefact, act.digest) not in expected:
            new += self._raise(who, "unexpected", act,
                               f"approved {act.digest.hex()[:12]} for {act.artefact.hex()[:12]}, "
                               "which its domain never evaluated")
        window = self._recent.setdefault(who, deque())
        window.append(act.time)
        while window and window[0] <= act.time - self.burst_window_s:
            window.popleft()
        if len(window) > self.burst_max:
            new += self._raise(who, "burst", act,
                               f"{len(window)} approvals within {self.burst_window_s:g} s "
                               f"(usual at most {self.burst_max})")
        return new

    def observe_many(self, acts: Iterable[Activity]) -> list[Alert]:
        out: list[Alert] = []
        for a in acts:
            out += self.observe(a)
        return out

    def _raise(self, who: str, rule: str, act: Activity, detail: str) -> list[Alert]:
        if (who, rule) in self._fired:
            return []
        self._fired.add((who, rule))
        alert = Alert(who, rule, act, detail)
        self.alerts.append(alert)
        return [alert]

    # -- results --------------------------------------------------------------------------------
    def flagged(self) -> set[str]:
        """Accounts with at least one alert."""
        return {a.account for a in self.alerts}

    def first_alert(self, account: str) -> Alert | None:
        who = _cs(account)
        return next((a for a in self.alerts if a.account == who), None)


def _cs(account: str) -> str:
    """Addresses in checksum form; other account names (a database's users) as they are."""
    if account.startswith("0x") and len(account) == 42:
        return to_checksum_address(account)
    return account


class ChainReader:
    """Incremental reader of one registry-layout lifecycle contract's events."""

    def __init__(self, client: Any, backend: ChainBackend | None = None) -> None:
        if getattr(client, "layout", "registry") != "registry":
            raise ValueError(f"ChainReader reads registry-layout contracts; this client is "
                             f"{client.layout}: use LifecycleClient.events() instead")
        self.client = client
        self.backend: ChainBackend = backend or client.backend
        self.next_block = 0
        self._times: dict[int, int] = {}

    def poll(self) -> list[ChainEvent]:
        """Events in blocks not read yet, in chain order."""
        head = self.backend.head().number
        if head < self.next_block:
            return []
        out = []
        codec = self.client.codec
        for log in self.backend.logs(self.client.address, self.next_block, head):
            if not codec.knows(log.topics):
                continue
            name, args = codec.decode_log(log)
            out.append(ChainEvent(event_from_args(name, args), log.block_number,
                                  self._time(log.block_number), log.tx_hash))
        self.next_block = head + 1
        return out

    def _time(self, number: int) -> int:
        t = self._times.get(number)
        if t is None:
            t = self._times[number] = self.backend.block(number).timestamp
        return t


def activities(events: Sequence[ChainEvent], ir: LifecycleIR) -> list[Activity]:
    """The identities' activities in ``events``: an ``Approved`` is an approval (the
    ``Transitioned`` that a k-th approval fires is not counted again); a ``Transitioned`` of a
    1-approval transition is a ``fire``."""
    out = []
    for ce in events:
        ev = ce.event
        if isinstance(ev, Approved):
            out.append(Activity(ev.approver, "approve", ev.id, ev.digest, ce.time,
                                ir.transitions[ev.transition].name, ce.block))
        elif isinstance(ev, Transitioned):
            t = ir.transitions[ev.transition]
            if t.approvals == 1:
                out.append(Activity(ev.actor, "fire", ev.id, ev.digest, ce.time, t.name,
                                    ce.block))
        elif isinstance(ev, Registered):
            out.append(Activity(ev.registrant, "register", ev.id, ev.digest, ce.time, "",
                                ce.block))
        elif isinstance(ev, RoleGranted | RoleRevoked):
            out.append(Activity(ev.sender, "grant" if isinstance(ev, RoleGranted) else "revoke",
                                b"", b"", ce.time, "", ce.block))
    return out

