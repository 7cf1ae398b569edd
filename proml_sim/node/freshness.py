"""Freshness of a node's view: is the chain a node serves recent, and do other domains agree?

A node that lags, or lies, can serve a *stale view*: an old head, and the state as of that
head (a model before its withdrawal, a role before its revocation).  Every answer it gives is
a real, validly signed part of the chain, so nothing in the answers themselves shows the lie.
:class:`FreshnessGuard` checks the view before a consumer acts on it:

* **age**: the head's timestamp must be at most ``max_age_s`` behind the consumer's own clock
  (a chain that makes a block every few seconds has no old head unless the node stopped
  following it), and at most ``max_future_s`` ahead of it (a head from the future is a clock
  or producer fault, not news);
* **lag**: no peer (another trust domain's node) may be more than ``max_lag_blocks`` ahead of
  the node's head;
* **agreement**: at the height both know, the node and each peer must report the same block
  hash (different hashes: a fork, a reorg in progress, an equivocating producer, or a lying
  node -- do not act until they agree);
* **quorum**: at least ``min_peers`` peers must answer (a guard that cannot reach anyone
  cannot cross-check);
* **catch-up** (optional, ``at_least``): the node must have reached a given height, e.g. the
  peers' head of a moment ago: an honest node that was briefly behind catches up, a node that
  withholds blocks does not.

Anything with ``head()`` (and, for the agreement check at a height other than the head,
``block(number)``) returning an object with ``number``, ``hash`` and ``timestamp`` can be a
node or a peer: a :class:`~proml_sim.chain.base.ChainBackend`, a JSON-RPC node, or a
simulator's view of one.  The guard is pure: it keeps no state and reads the clock it is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from proml_sim.errors import StaleView

__all__ = ["FreshnessGuard", "FreshnessReport", "HeadLike", "HeadSource", "StaleView"]


class HeadLike(Protocol):
    """The header facts the guard reads (``BlockInfo`` has them)."""

    @property
    def number(self) -> int: ...

    @property
    def hash(self) -> bytes: ...

    @property
    def timestamp(self) -> int | float: ...


class HeadSource(Protocol):
    """A node (or a view of one) the guard can ask for its head."""

    def head(self) -> Any: ...


@dataclass(frozen=True)
class FreshnessReport:
    """What one check found.  ``problems`` is empty when the view may be acted on."""

    head_number: int
    head_hash: bytes
    head_timestamp: float
    now: float
    age_s: float
    peer_heads: dict[str, int] = field(default_factory=dict)
    unreachable: tuple[str, ...] = ()
    lag_blocks: int = 0  # how far the furthest peer is ahead (0 if none is)
    disagreeing: tuple[str, ...] = ()  # peers reporting another hash at a common height
    problems: tuple[str, ...] = ()
    kinds: frozenset[str] = frozenset()  # of "age", "future", "lag", "fork", "quorum", "behind"

    @property
    def ok(self) -> bool:
        return not self.problems


def _short(h: bytes) -> str:
    return "0x" + h.hex()[:12] if h else "0x?"


class FreshnessGuard:
    """``FreshnessGuard(max_age_s, peers)``: check a node's head against the clock and peers.

    ``peers`` maps a name (e.g. the peer's trust domain) to a head source; a plain sequence is
    named ``peer0``, ``peer1``...  ``clock`` returns the current time in the chain's timestamp
    unit (seconds since the epoch by default).
    """

    def __init__(self, max_age_s: float, peers: Mapping[str, HeadSource] | Any = (), *,
                 max_lag_blocks: int = 2, max_future_s: float = 15.0, min_peers: int = 0,
                 clock: Callable[[], float] = time.time) -> None:
        if not max_age_s > 0:
            raise ValueError(f"max_age_s={max_age_s}; must be > 0 seconds (a few block "
                             "intervals of the chain)")
        if max_lag_blocks < 0 or max_future_s < 0:
            raise ValueError("max_lag_blocks and max_future_s must be >= 0")
        named = dict(peers) if isinstance(peers, Mapping) else {
            f"peer{i}": p for i, p in enumerate(peers)}
        if min_peers < 0 or min_peers > len(named):
            raise ValueError(f"min_peers={min_peers} but {len(named)} peer(s) given; give more "
                             "peers or lower min_peers")
        self.max_age_s = float(max_age_s)
        self.max_lag_blocks = int(max_lag_blocks)
        self.max_future_s = float(max_future_s)
        self.min_peers = int(min_peers)
        self.peers: dict[str, HeadSource] = named
        self.clock = clock

    # -- checks ---------------------------------------------------------------------------------
    def assess(self, node: HeadSource, now: float | None = None, *,
               at_least: int | None = None) -> FreshnessReport:
        """Check ``node``'s view; return a report (never raises for a stale view).

        ``at_least``: a height the node must have reached (typically the highest peer head of
        an earlier check, after giving the node time to catch up)."""
        now = float(self.clock() if now is None else now)
        head = node.head()
        number, hsh, ts = int(head.number), bytes(head.hash), float(head.timestamp)
        age = now - ts
        problems: list[str] = []
        kinds: set[str] = set()
        if at_least is not None and number < at_least:
            kinds.add("behind")
            problems.append(
                f"node head #{number} has not reached #{at_least}, which a peer already had: "
                "the node withholds or does not receive blocks; use another trust domain's node")
        if age > self.max_age_s:
            kinds.add("age")
            problems.append(
                f"node head #{number} ({_short(hsh)}) is {age:.0f} s old (max {self.max_age_s:g}"
                " s): the node stopped following the chain or serves a stale view; ask another "
                "trust domain's node, or raise max_age_s if the chain makes blocks less often")
        elif -age > self.max_future_s:
            kinds.add("future")
            problems.append(
                f"node head #{number} ({_short(hsh)}) is stamped {-age:.0f} s in the future "
                f"(max {self.max_future_s:g} s): the producer's or this machine's clock is wrong;"
                " do not order events by this timestamp")
        peer_heads: dict[str, int] = {}
        unreachable: list[str] = []
        disagreeing: list[str] = []
        lag = 0
        for name, peer in self.peers.items():
            try:
                ph = peer.head()
            except Exception:  # an unreachable peer is counted, not fatal by itself
                unreachable.append(name)
                continue
            pnum = int(ph.number)
            peer_heads[name] = pnum
            lag = max(lag, pnum - number)
            mine, theirs = self._common(node, head, peer, ph)
            if mine is not None and theirs is not None and mine != theirs:
                disagreeing.append(name)
                common = min(number, pnum)
                problems.append(
                    f"node and peer {name!r} disagree at block #{common} ({_short(mine)} vs "
                    f"{_short(theirs)}): different histories (a fork, a reorg in progress, an "
                    "equivocating producer or a lying node); do not act until they agree")
        if disagreeing:
            kinds.add("fork")
        if lag > self.max_lag_blocks:
            kinds.add("lag")
            ahead = max(peer_heads, key=lambda n: peer_heads[n])
            problems.append(
                f"node head #{number} is {lag} block(s) behind peer {ahead!r} "
                f"(#{peer_heads[ahead]}; max lag {self.max_lag_blocks}): the node is lagging or "
                "withholding blocks; wait for it to catch up, or use the peer")
        if len(peer_heads) < self.min_peers:
            kinds.add("quorum")
            problems.append(
                f"only {len(peer_heads)} of {len(self.peers)} peer(s) answered ("
                f"{', '.join(unreachable) or 'none'} unreachable); {self.min_peers} needed to "
                "cross-check the node: retry later or add peers")
        return FreshnessReport(number, hsh, ts, now, age, peer_heads, tuple(unreachable), lag,
                               tuple(disagreeing), tuple(problems), frozenset(kinds))

    def check(self, node: HeadSource, now: float | None = None, *,
              at_least: int | None = None) -> FreshnessReport:
        """Like :meth:`assess`, but raise :class:`StaleView` naming every problem found."""
        report = self.assess(node, now, at_least=at_least)
        if report.problems:
            raise StaleView("stale or disputed view: " + "; ".join(report.problems), report)
        return report

    # -- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _common(node: HeadSource, head: Any, peer: HeadSource, ph: Any
                ) -> tuple[bytes | None, bytes | None]:
        """The two hashes at the height both know (None where a side cannot tell)."""
        n, p = int(head.number), int(ph.number)
        if n == p:
            return bytes(head.hash), bytes(ph.hash)
        try:
            if p > n:
                return bytes(head.hash), bytes(peer.block(n).hash)  # type: ignore[attr-defined]
            return bytes(node.block(p).hash), bytes(ph.hash)  # type: ignore[attr-defined]
        except Exception:  # no block() or no such block: agreement cannot be checked here
            return None, None
