"""Adversarial forks and finality: private-branch attackers, finality rules, confirmation policies.

A :class:`PrivateBranch` attacker is given to :class:`~proml_sim.sim.world.World`; the world's
own block-production loop hands it every block opportunity it wins (a share ``q`` of the hash
power on PoW, of the slots on PoS, of the sealers on PoA).  The attacker keeps those blocks
private, on a branch from the canonical head at the moment it started (the engine is
snapshotted there), and releases the branch when the chain's fork choice would adopt it (and
the victim's confirmation policy has been met); the world then reverts the engine to the fork
point and executes the attacker's blocks: a reorg of any depth, with real state.

Fork choice (what "the branch is heavier" means), per consensus:

* ``pow``: the longest chain (blocks; every block has the same difficulty in our profiles).
* ``pos``: LMD-GHOST weight: every slot, the attesters vote for the head they see, so each
  branch gains the attesting share of its side per slot since the fork (honest ``1 - q``,
  attacker ``q``).  A minority attacker never outweighs the honest branch.
* ``poa`` (clique): total difficulty (2 for an in-turn block, 1 out of turn); a signer may seal
  only one of any ``N // 2 + 1`` consecutive blocks, which caps a minority's private branch.

Finality (:func:`final_height`), as each chain defines it:

* ``pos``: Casper FFG with ``epoch_slots``-slot epochs: a block in epoch ``e`` lies under the
  checkpoint of epoch ``e + 1``, which is justified at the end of epoch ``e + 1`` and finalised
  when epoch ``e + 2`` is justified on top of it: the block is final once the chain has a block
  in epoch ``e + 1 + finality_epochs`` (missed slots only delay that block).  Justification
  needs 2/3 of the stake attesting: an attacker with more than 1/3 that withholds its votes
  stops finality.
* ``poa``: a block is final once blocks sealed by more than half of the ``N`` signers
  (``N // 2 + 1`` distinct signers) are built on top of it.  Why: clique lets a signer seal at
  most one of any ``N // 2 + 1`` consecutive blocks, so a competing branch long enough to
  outweigh those blocks needs a majority of signers, i.e. at least one honest signer sealing
  two conflicting branches (which honest signers never do).
* ``pow``: probabilistic: final at the smallest depth ``k`` whose double-spend probability
  (Rosenfeld's exact formula, :func:`rosenfeld`) for an assumed attacker share
  (``finality_share``) is at most ``finality_risk``; ``finality_depth``, when set, overrides.
* ``fixed``: ``finality_depth``.
* any but PoS with ``finality_delay``: final that many seconds after the block was produced.

The double-spend race follows Rosenfeld (2014), not the Poisson approximation of the Bitcoin
paper (section 11), whose table underestimates the risk (q = 0.3, z = 10: 0.0417 vs 0.0651):
the attacker's progress while the merchant waits for ``z`` blocks is negative binomial (the
number of attacker blocks while the honest network finds ``z``), not Poisson with the expected
value.  Rosenfeld's convention: the attacker pre-mines one block before the payment is sent,
and wins when its branch is strictly longer than the honest one after ``z`` confirmations.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from proml_sim.sim.profiles import ChainProfile
    from proml_sim.sim.world import Producer, SimBlock, SimTx, World


# -- published analysis ----------------------------------------------------------------------
def rosenfeld(q: float, z: int) -> float:
    """Rosenfeld's exact double-spend probability: an attacker with hash share ``q`` against a
    merchant waiting for ``z`` confirmations (1 - sum_{m=0}^{z} C(m+z-1, m)(p^z q^m - q^z p^m)).

    Example (the Bitcoin paper's Poisson value for the first is 0.0417)::

        >>> from proml_sim.sim.forks import rosenfeld
        >>> round(rosenfeld(0.3, 10), 4)
        0.0651
        >>> rosenfeld(0.5, 6)  # a majority attacker always wins eventually
        1.0
    """
    _check_share(q)
    if z <= 0:
        return 1.0
    if q >= 0.5:
        return 1.0
    if q == 0:
        return 0.0
    # each term in log space: C(m+z-1, m) alone passes the largest float past z ~ 500
    lp, lq, lz = math.log1p(-q), math.log(q), math.lgamma(z)

    def term(m: int) -> float:
        c = math.lgamma(m + z) - math.lgamma(m + 1) - lz
        return math.exp(c + z * lp + m * lq) - math.exp(c + z * lq + m * lp)

    return 1.0 - math.fsum(term(m) for m in range(z + 1))


def nakamoto(q: float, z: int) -> float:
    """The Bitcoin paper's section 11 value: the attacker's progress taken as Poisson with the
    expected value ``z q / p`` (an approximation that underestimates the risk)."""
    _check_share(q)
    if q >= 0.5:
        return 1.0
    p = 1.0 - q
    lam = z * q / p
    s = 1.0
    for k in range(z + 1):
        poisson = math.exp(-lam) * lam**k / math.factorial(k)
        s -= poisson * (1 - (q / p) ** (z - k))
    return s


def _check_share(q: float) -> None:
    if not 0 <= q <= 1:
        raise ValueError(f"attacker share q={q}; must be in [0, 1]")


def pow_final_depth(q: float, risk: float, limit: int = 1_000) -> int:
    """The smallest depth ``k`` with ``rosenfeld(q, k) <= risk`` (PoW probabilistic finality)."""
    if not 0 < risk < 1:
        raise ValueError(f"finality_risk={risk}; must be in (0, 1)")
    if q >= 0.5:
        raise ValueError(f"finality_share={q}: a majority attacker makes nothing final")
    for k in range(1, limit + 1):
        if rosenfeld(q, k) <= risk:
            return k
    raise ValueError(f"no depth up to {limit} brings the risk for q={q} under {risk}")


# -- finality ---------------------------------------------------------------------------------
def final_height(profile: ChainProfile, blocks: Sequence[SimBlock],
                 attacker_share: float = 0.0) -> int:
    """The highest height (1-based) of ``blocks`` (a canonical chain or a node's prefix of it)
    that is final under ``profile``'s rule (module docstring); 0 if none.  ``attacker_share``:
    stake that withholds attestations (PoS finality stops above 1/3).  With
    ``finality_delay``: the blocks produced at least that long before the head.

    Example (``ropsten-2022``, proof of work: final 6 blocks deep)::

        >>> from proml_sim.sim.forks import final_height
        >>> from proml_sim.sim.profiles import get_profile
        >>> from proml_sim.sim.world import SimBlock
        >>> chain = [SimBlock(height=h, number=h, time=12.0 * h, producer="m", region="eu",
        ...                   txs=[]) for h in range(1, 31)]
        >>> final_height(get_profile("ropsten-2022"), chain)
        25
    """
    n = len(blocks)
    if n == 0:
        return 0
    if profile.finality_delay is not None:
        bound = blocks[-1].time - profile.finality_delay
        return bisect.bisect_right(blocks, bound, key=lambda b: b.time)
    c = profile.consensus
    if c == "pos":
        if attacker_share > 1 / 3:
            return 0
        epoch = blocks[-1].slot // profile.epoch_slots
        bound = profile.epoch_slots * (epoch - profile.finality_epochs)  # final: slot < bound
        lo, hi = 0, n  # blocks' slots increase: binary search for the first slot >= bound
        while lo < hi:
            mid = (lo + hi) // 2
            if blocks[mid].slot < bound:
                lo = mid + 1
            else:
                hi = mid
        return lo
    if c == "poa" and profile.finality_depth is None:
        need = profile.sealers // 2 + 1
        signers: set[str] = set()
        for i in range(n - 1, 0, -1):
            signers.add(blocks[i].producer)
            if len(signers) >= need:
                return i  # blocks[i - 1] (height i) has a majority sealed on top of it
        return 0
    depth = profile.finality_time_blocks()
    if depth is None:
        return 0
    return max(0, n - depth + 1)


Kind = Literal["depth", "final"]


@dataclass(frozen=True)
class ConfirmationPolicy:
    """When a consumer acts on a record: ``L@k`` (its block is ``k`` deep on the consumer's
    node: the block itself counts as 1) or ``finalised`` (final under the chain's rule).

    Example (a 30-block proof-of-work chain, whose blocks up to height 25 are final)::

        >>> from proml_sim.sim.forks import ConfirmationPolicy
        >>> from proml_sim.sim.profiles import get_profile
        >>> from proml_sim.sim.world import SimBlock
        >>> pow_chain = get_profile("ropsten-2022")
        >>> view = [SimBlock(height=h, number=h, time=12.0 * h, producer="m", region="eu",
        ...                  txs=[]) for h in range(1, 31)]
        >>> policy = ConfirmationPolicy.parse("L@12")
        >>> policy.name, [policy.satisfied(pow_chain, view, h) for h in (19, 20)]
        ('L@12', [True, False])
        >>> final = ConfirmationPolicy.parse("finalised")
        >>> final.satisfied(pow_chain, view, 25), final.satisfied(pow_chain, view, 26)
        (True, False)
    """

    kind: Kind
    k: int = 0

    @classmethod
    def parse(cls, text: str) -> ConfirmationPolicy:
        """``"L@12"`` (or ``"12"``) or ``"finalised"`` (``"final"``, ``"finalized"``)."""
        t = str(text).strip()
        if t.lower() in ("finalised", "finalized", "final"):
            return cls("final")
        raw = t[2:] if t.upper().startswith("L@") else t
        try:
            k = int(raw)
        except ValueError:
            raise ValueError(f"confirmation policy {text!r}; use L@k (k >= 1) or "
                             "'finalised'") from None
        if k < 1:
            raise ValueError(f"confirmation policy {text!r}: k must be >= 1")
        return cls("depth", k)

    @property
    def name(self) -> str:
        return "finalised" if self.kind == "final" else f"L@{self.k}"

    def satisfied(self, profile: ChainProfile, view: Sequence[SimBlock], height: int,
                  attacker_share: float = 0.0) -> bool:
        """Whether a record at ``height`` may be acted on by a node whose chain is ``view``."""
        if height < 1 or height > len(view):
            return False
        if self.kind == "depth":
            return len(view) - height + 1 >= self.k
        return height <= final_height(profile, view, attacker_share)


# -- attackers --------------------------------------------------------------------------------
#: An attacker gives up when its odds of ever catching up, (q/p)^deficit, fall below this: the
#: success probability it forgoes is below it (far inside a 10,000-race interval, +-0.005).
GIVE_UP_ODDS = 1e-4

@dataclass
class Race:
    """One attack: where the private branch forked, how it ended."""

    fork_height: int
    started: float
    payment_height: int | None = None  # the first honest block after the fork
    ended: float | None = None
    success: bool = False
    depth: int = 0  # blocks reorganised away (on success)
    honest: int = 0  # honest blocks since the fork when it ended
    private: int = 0


@dataclass
class PrivateBranch:
    """An attacker with a share ``share`` of the block production (hash power, slots, sealers).

    ``confirmations``: the victim's policy the attacker waits out before releasing (``z``: the
    payment block and ``z - 1`` more on the honest chain).  ``give_up``: abandon the branch when
    this many blocks behind (None: from ``share``, so that catching up from there has
    probability below ``GIVE_UP_ODDS``: the success rate it forgoes is below that).
    ``censor``: trust domains whose transactions its blocks leave out (the records it
    removes).  ``repeat``: start a new race after each one ends.
    ``withhold_attestations``: (PoS) also withhold its votes, stopping finality above 1/3.
    ``margin_s``: wait this long after the block that completes the victim's ``confirmations``
    (its consumers hear of it with the network's delay) before releasing.

    Example (:func:`run_races` gives one to a proof-of-work world)::

        >>> from proml_sim.sim.forks import PrivateBranch, run_races
        >>> PrivateBranch(0.3, confirmations=6).give_up  # blocks behind before it abandons
        11
        >>> successes, races, world = run_races(0.3, confirmations=2, races=5, seed=1)
        >>> isinstance(world.attacker, PrivateBranch), races, 0 <= successes <= races
        (True, 5, True)
        >>> all(race.ended is not None for race in world.attacker.races[:5])
        True
    """

    share: float
    confirmations: int = 1
    give_up: int | None = None
    censor: frozenset[str] = frozenset()
    repeat: bool = True
    withhold_attestations: bool = False
    margin_s: float = 0.0
    races: list[Race] = field(default_factory=list)
    producer: Producer | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.share < 1:
            raise ValueError(f"attacker share={self.share}; must be in [0, 1)")
        if self.confirmations < 0:
            raise ValueError(f"confirmations={self.confirmations}; must be >= 0")
        if self.give_up is None:
            ratio = self.share / (1 - self.share)
            self.give_up = (max(1, math.ceil(math.log(GIVE_UP_ODDS) / math.log(ratio)))
                            if 0 < ratio < 1 else 1_000_000)
        self._race: Race | None = None
        self._snapshot: int | None = None
        self._blocks: list[tuple[float, bool, int]] = []  # (mined at, in turn, slot) each
        self._signers: list[str] = []  # PoA: who sealed each private block
        self._weight = [0.0, 0.0]  # PoS: (honest, private) attestation weight since the fork
        self.deferred: list[SimTx] = []  # rows held back while a branch could remove them

    # -- what the world asks ---------------------------------------------------------------
    @property
    def active(self) -> Race | None:
        """The race in progress, if any."""
        return self._race

    def holds(self, height: int) -> bool:
        """Whether a block at ``height`` could still be reorganised away by the branch."""
        return self._race is not None and height > self._race.fork_height

    def wins_slot(self, world: World) -> bool:
        """Draw whether the attacker wins this block opportunity (its share of them)."""
        return world.rng.random() < self.share

    def mined(self, world: World, in_turn: bool = False, signer: str = "") -> None:
        """The attacker found (sealed, proposed) a block: keep it private, maybe release."""
        if self._race is None:
            if not self.repeat and self.races:
                return
            self._start(world)
        if world.profile.consensus == "poa":
            assert self._race is not None
            keep = world.profile.sealers // 2
            parent = [b.producer for b in world.canon[:self._race.fork_height][-keep:]]
            if keep and signer in (parent + self._signers)[-keep:]:
                return  # clique's recency rule: this signer may not seal yet on this branch
            self._signers.append(signer)
        self._blocks.append((world.env.now, in_turn, world._slot))
        self._check(world)

    def honest_block(self, world: World) -> None:
        """An honest block joined the canonical chain."""
        race = self._race
        if race is None:
            return
        if race.payment_height is None:
            race.payment_height = race.fork_height + 1
        self._check(world)

    def slot(self, world: World) -> None:
        """(PoS) one slot passed: the attesters vote on the branches they see."""
        if self._race is not None:
            self._weight[0] += 1 - self.share
            self._weight[1] += self.share

    # -- the race ----------------------------------------------------------------------------
    def _start(self, world: World) -> None:
        assert world.backend is not None
        world.settle_contest()
        self._race = Race(len(world.canon), world.env.now)
        self._snapshot = world.backend.snapshot()
        self._blocks, self._signers, self._weight = [], [], [0.0, 0.0]

    def _heavier(self, world: World, honest: int) -> bool:
        c = world.profile.consensus
        if c == "pos":
            return self._weight[1] > self._weight[0]
        if c == "poa":
            mine = sum(2 if t else 1 for _, t, _ in self._blocks)
            theirs = sum(2 if b.in_turn else 1 for b in world.canon[self._race.fork_height:]
                         ) if self._race else 0
            return mine > theirs
        return len(self._blocks) > honest

    def _check(self, world: World) -> None:
        race = self._race
        assert race is not None
        honest = len(world.canon) - race.fork_height
        private = len(self._blocks)
        confirmed = honest >= self.confirmations and (
            self.margin_s <= 0 or self.confirmations == 0 or world.env.now >= world.canon[
                race.fork_height + self.confirmations - 1].time + self.margin_s)
        if confirmed and self._heavier(world, honest):
            self._end(world, True, honest, private)
        elif honest - private >= (self.give_up or 0) and honest > 0:
            self._end(world, False, honest, private)

    def _end(self, world: World, success: bool, honest: int, private: int) -> None:
        race = self._race
        assert race is not None and self._snapshot is not None and world.backend is not None
        race.ended, race.success = world.env.now, success
        race.honest, race.private = honest, private
        self._race = None
        snap, self._snapshot = self._snapshot, None
        blocks, self._blocks = self._blocks, []
        self.races.append(race)
        deferred, self.deferred = self.deferred, []
        if success:
            race.depth = world.reorganise(race.fork_height, snap, blocks, self.producer_for(world))
        else:
            world.backend.release(snap)
        world.finish_deferred(deferred)

    def producer_for(self, world: World) -> Producer:
        """The producer the attacker's blocks are attributed to (censoring ``censor``)."""
        if self.producer is None:
            from proml_sim.sim.world import Producer as _Producer

            near = world.producers[0]
            self.producer = _Producer("attacker", near.region, censors=self.censor,
                                      hears_as=near.name)
        return self.producer


def race_counts(races: Sequence[Race]) -> tuple[int, int]:
    """(successes, races) over finished races."""
    done = [r for r in races if r.ended is not None]
    return sum(1 for r in done if r.success), len(done)


def run_races(share: float, confirmations: int, races: int, seed: int = 0,
              profile: str | ChainProfile = "ropsten-2022", engine: str = "pyevm"
              ) -> tuple[int, int, World]:
    """Double-spend races on the world's own block production: a :class:`PrivateBranch`
    attacker with hash share ``share`` against a merchant waiting ``confirmations`` blocks,
    repeated until ``races`` have ended.  Propagation forks are switched off (``stale_rate``
    0), as in the analysis the races are checked against.  Returns (successes, races, world)."""
    from proml_sim.sim.profiles import get_profile
    from proml_sim.sim.world import World

    if races < 1:
        raise ValueError(f"races={races}; must be >= 1")
    prof = get_profile(profile)
    if prof.consensus != "pow":
        raise ValueError(f"profile {prof.name!r} is {prof.consensus}: races need proof of work")
    atk = PrivateBranch(share, confirmations=confirmations)
    w = World(seed, prof.with_(stale_rate=0.0), engine, attacker=atk)
    w.setup()
    w.mark_start()
    # a race takes ~1/q intervals to start, z/p to confirm, then the walk to a win or give-up:
    # run in chunks of about half the remaining races, until enough have ended
    per_race = 1 / max(share, 1e-3) + (confirmations + (atk.give_up or 0)) / (1 - share)
    while len(atk.races) < races:
        w.run(w.env.now + prof.block_time * (per_race * (races - len(atk.races)) / 2 + 1),
              drain=False)
    done = atk.races[:races]
    return sum(1 for r in done if r.success), races, w
