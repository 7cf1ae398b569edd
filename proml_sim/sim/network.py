"""Network model: regions, one-way delays, node outages and partitions.

A message from region ``a`` to region ``b`` takes a log-normal one-way delay whose median is
``LATENCY_MS[a][b]`` (spread ``sigma``), plus a gossip overhead: transactions cross a few p2p
hops before a block producer has them, blocks need validation at every hop.  An outage stops a
node from sending or hearing anything; a partition cuts a set of regions from the rest.  Both
are intervals of simulated time; a message that would cross them waits until they end.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

#: Median one-way latency between regions, in milliseconds (public cloud inter-region pings / 2).
LATENCY_MS: dict[str, dict[str, float]] = {
    "eu": {"eu": 8.0, "us": 45.0, "asia": 110.0},
    "us": {"eu": 45.0, "us": 12.0, "asia": 85.0},
    "asia": {"eu": 110.0, "us": 85.0, "asia": 15.0},
}
REGIONS = tuple(LATENCY_MS)


@dataclass(frozen=True)
class Outage:
    """Node ``node`` (a participant or producer name) is down in [start, end).

    Example: ``NetworkModel(outages=[Outage("alice", 600.0, 900.0)])``."""

    node: str
    start: float
    end: float


@dataclass(frozen=True)
class Partition:
    """Regions ``regions`` are cut from all other regions in [start, end).

    Example: ``NetworkModel(partitions=[Partition(frozenset({"eu"}), 0.0, 300.0)])``."""

    regions: frozenset[str]
    start: float
    end: float


@dataclass(frozen=True)
class NetworkModel:
    """Delays between regions and the faults of one run.

    ``tx_gossip_s``: mean extra delay (exponential) for a transaction to reach block producers
    through the p2p network; ``block_gossip_s``: mean extra delay for a block to reach a node.

    Example: ``World(1, "poa-clique", network=NetworkModel(outages=[Outage("producer-0",
    0.0, 60.0)]))``.
    """

    sigma: float = 0.3
    tx_gossip_s: float = 0.6
    block_gossip_s: float = 0.4
    outages: tuple[Outage, ...] = ()
    partitions: tuple[Partition, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.sigma < 0 or self.tx_gossip_s < 0 or self.block_gossip_s < 0:
            raise ValueError("network delays and spread must be >= 0")
        for o in self.outages:
            if o.end <= o.start:
                raise ValueError(f"outage of {o.node!r}: end {o.end} must be after {o.start}")
        for p in self.partitions:
            unknown = set(p.regions) - set(REGIONS)
            if unknown:
                raise ValueError(f"partition names unknown regions {sorted(unknown)}; "
                                 f"known: {', '.join(REGIONS)}")

    def base_delay(self, a: str, b: str, rng: random.Random) -> float:
        """One-way wire delay in seconds between regions ``a`` and ``b``."""
        try:
            median = LATENCY_MS[a][b] / 1000.0
        except KeyError:
            raise ValueError(
                f"unknown region in ({a!r}, {b!r}); known regions: {', '.join(REGIONS)}"
            ) from None
        return median * math.exp(rng.gauss(0.0, self.sigma)) if self.sigma else median

    def tx_delay(self, a: str, b: str, rng: random.Random) -> float:
        return self.base_delay(a, b, rng) + rng.expovariate(1 / self.tx_gossip_s) if (
            self.tx_gossip_s) else self.base_delay(a, b, rng)

    def block_delay(self, a: str, b: str, rng: random.Random) -> float:
        return self.base_delay(a, b, rng) + rng.expovariate(1 / self.block_gossip_s) if (
            self.block_gossip_s) else self.base_delay(a, b, rng)

    def node_up_at(self, node: str, t: float) -> float:
        """The first time >= t at which ``node`` is up."""
        changed = True
        while changed:
            changed = False
            for o in self.outages:
                if o.node == node and o.start <= t < o.end:
                    t = o.end
                    changed = True
        return t

    def deliver_at(self, src: str, dst: str, sent: float, delay: float) -> float:
        """When a message sent at ``sent`` with wire ``delay`` arrives, given partitions."""
        t = sent
        changed = True
        while changed:
            changed = False
            for p in self.partitions:
                crosses = (src in p.regions) != (dst in p.regions)
                if crosses and p.start <= t < p.end:
                    t = p.end
                    changed = True
        return t + delay
