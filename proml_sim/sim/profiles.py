"""Block-production profiles: frozen, validated configs with names.

Each profile states how blocks are made (consensus), how long between them, how often a block is
orphaned, how deep reorgs go, when a block is final, the block gas limit, fee ordering and the
mempool capacity.  The numbers come from ``PERFORMANCE.md`` and are calibrated (``ropsten-2022``)
so that the simulator's L@1 and L@12 medians match the paper's 16 s and 150 s; ``experiments/
e01_latency.py`` checks that every run.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from proml_sim.errors import ProfileError
from proml_sim.fsutil import read_toml

Consensus = Literal["pow", "pos", "poa", "fixed"]


def _number(value: Any, whole: bool, optional: bool) -> bool:
    """A profile field's value is of its kind: a finite number (a whole one for counts), or
    None where the field allows it (a TOML string or boolean is not)."""
    if value is None:
        return optional
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) if whole else math.isfinite(value)


@lru_cache(maxsize=64)
def _pow_final_depth(share: float, risk: float) -> int:
    from proml_sim.sim.forks import pow_final_depth

    return pow_final_depth(share, risk)


@dataclass(frozen=True)
class ChainProfile:
    """How one chain produces blocks.  Times in seconds.

    ``pow``: block intervals are exponential with mean ``block_time``; a fraction ``stale_rate``
    of blocks meets a competing block at the same height and loses half the time (then the
    canonical chain is reorganised: state is reverted and the winner re-executed).  A miner
    builds on a block template refreshed every ``template_refresh`` seconds, so a transaction
    must reach it before the template it lands in was built.  A fraction ``empty_block_rate`` of
    blocks is mined empty (miners that start on a new block before validating the parent's
    transactions; common on PoW chains, frequent on Ropsten).

    ``pos``: one slot every ``block_time`` seconds; a slot is missed with ``missed_slot_rate``; a
    block is re-orged out (depth 1) with ``reorg_rate``; blocks are final after
    ``finality_epochs`` epochs of ``epoch_slots`` slots.

    ``poa`` (clique): ``sealers`` sealers take turns every ``block_time`` seconds; when the
    in-turn sealer is offline an out-of-turn sealer seals after a random ``wiggle``; two
    out-of-turn sealers racing cause short forks (``stale_rate``).

    ``fixed``: one producer, a fixed period, no forks.

    Finality: by depth (``finality_depth``; PoW's default is the Rosenfeld depth of
    ``finality_share``/``finality_risk``, PoS counts ``finality_epochs``, PoA the clique signer
    rule) or by delay (``finality_delay``: a block is final once that many seconds have passed
    since it was produced, seen at the first block after; not on PoS).  A field the chosen
    consensus ignores, set away from its default, is a :class:`~proml_sim.errors.ProfileError`
    (:data:`CONSENSUS_FIELDS` lists which fields each consensus reads).

    Example::

        fast = ChainProfile("lab-bft", consensus="fixed", block_time=1.0, finality_delay=3.0)
        slow = get_profile("ethereum-pos").with_(block_time=6.0)
        mine = load_profile("my_chain.toml")   # the same fields, as TOML keys
    """

    name: str
    consensus: Consensus
    block_time: float
    block_gas_limit: int = 30_000_000
    stale_rate: float = 0.0
    reorg_rate: float = 0.0
    template_refresh: float = 0.0
    empty_block_rate: float = 0.0
    missed_slot_rate: float = 0.0
    epoch_slots: int = 32
    finality_epochs: int = 2
    finality_depth: int | None = None  # for chains without finality gadgets: "final" at depth
    #: PoW probabilistic finality (when ``finality_depth`` is None): final at the smallest depth
    #: whose double-spend probability (Rosenfeld) for an attacker with ``finality_share`` of the
    #: hash power is at most ``finality_risk``
    finality_share: float = 0.1
    finality_risk: float = 0.001
    sealers: int = 1
    wiggle: float = 0.5
    sealer_offline_rate: float = 0.0
    mempool_capacity: int = 5_000
    #: finality by delay: final this many seconds after the block was produced (None: by depth)
    finality_delay: float | None = None
    #: what the paper (or the public chain) reports, shown beside our numbers
    reference: dict[str, float] | None = None

    def __post_init__(self) -> None:
        wrong = [f"{f.name}={getattr(self, f.name)!r}; must be a finite number"
                 + (" (a whole one)" if "int" in str(f.type) else "")
                 for f in fields(self) if f.name not in ("name", "consensus", "reference")
                 and not _number(getattr(self, f.name), "int" in str(f.type),
                                 "None" in str(f.type))]
        if wrong:  # the checks below compare numbers
            raise ProfileError(f"profile {self.name!r}: " + "; ".join(wrong))
        problems = []
        if self.consensus not in ("pow", "pos", "poa", "fixed"):
            problems.append(f"consensus={self.consensus!r}; use pow, pos, poa or fixed")
        if not self.block_time > 0:
            problems.append(f"block_time={self.block_time}; must be > 0 seconds")
        for f in ("stale_rate", "reorg_rate", "missed_slot_rate", "sealer_offline_rate",
                  "empty_block_rate"):
            v = getattr(self, f)
            if not 0 <= v < 1:
                problems.append(f"{f}={v}; must be in [0, 1)")
        if not 21_000 <= self.block_gas_limit <= MAX_GAS_LIMIT:
            problems.append(f"block_gas_limit={self.block_gas_limit}; must be >= 21,000 and "
                            f"<= {MAX_GAS_LIMIT:,} (2^63 - 1, the most a block header holds)")
        if self.mempool_capacity < 1:
            problems.append("mempool_capacity must be >= 1")
        if self.consensus == "poa" and self.sealers < 1:
            problems.append("poa needs sealers >= 1")
        if self.consensus == "pos" and (self.epoch_slots < 1 or self.finality_epochs < 1):
            problems.append("pos needs epoch_slots >= 1 and finality_epochs >= 1")
        if not 0 <= self.finality_share < 0.5 or not 0 < self.finality_risk < 1:
            problems.append("finality_share must be in [0, 0.5) and finality_risk in (0, 1)")
        if self.template_refresh < 0 or self.wiggle < 0:
            problems.append("template_refresh and wiggle must be >= 0")
        if self.finality_depth is not None and not 1 <= self.finality_depth <= MAX_DEPTH:
            problems.append(f"finality_depth={self.finality_depth}; must be >= 1 (1: final in "
                            f"the block that includes it) and <= {MAX_DEPTH:,} blocks")
        if self.finality_delay is not None:
            if not 0 <= self.finality_delay <= MAX_DELAY_S:
                problems.append(f"finality_delay={self.finality_delay}; must be >= 0 and <= "
                                f"{MAX_DELAY_S:g} seconds (a year: longer, nothing a run "
                                "records would ever be final)")
            if self.finality_depth is not None:
                problems.append("finality_depth and finality_delay both set; choose one")
        if self.consensus in CONSENSUS_FIELDS:
            defaults = _DEFAULTS
            used = COMMON_FIELDS | CONSENSUS_FIELDS[self.consensus]
            reads = ", ".join(sorted(CONSENSUS_FIELDS[self.consensus]))
            for fld in fields(self):
                if fld.name not in used and getattr(self, fld.name) != defaults[fld.name]:
                    problems.append(
                        f"{fld.name}={getattr(self, fld.name)!r} is ignored by consensus "
                        f"{self.consensus!r} (it reads {reads} besides the common fields); "
                        "remove it")
        if not isinstance(self.name, str) or not self.name:
            problems.append(f"name={self.name!r}; must be a non-empty string")
        if self.reference is not None and (not isinstance(self.reference, dict) or not all(
                isinstance(k, str) and _number(v, False, False)
                for k, v in self.reference.items())):
            problems.append(f"reference={self.reference!r}; must be a table of names to finite "
                            "numbers (e.g. {l1_median_s = 16.0})")
        if not problems and self.consensus == "pow" and self.finality_depth is None \
                and self.finality_delay is None:
            try:  # the Rosenfeld depth: a risk no depth reaches is this profile's error
                _pow_final_depth(self.finality_share, self.finality_risk)
            except ValueError as exc:
                problems.append(f"{exc}; raise finality_risk, lower finality_share or set "
                                "finality_depth")
        if problems:
            raise ProfileError(f"profile {self.name!r}: " + "; ".join(problems))

    def with_(self, **changes: Any) -> ChainProfile:
        """A copy with some fields changed (validated again)."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ProfileError(
                f"profile {self.name!r} has no field(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        return replace(self, **changes)

    def finality_time_blocks(self) -> int | None:
        """Depth at which a block counts as final: PoS at least two epochs (the exact rule
        counts epochs: ``proml_sim.sim.forks.final_height``), PoW the probabilistic depth, PoA
        and fixed ``finality_depth`` (None on PoA: the clique signer rule of ``forks``)."""
        if self.consensus == "pos":
            return self.epoch_slots * self.finality_epochs
        if self.finality_delay is not None:
            return None
        if self.consensus == "pow" and self.finality_depth is None:
            return _pow_final_depth(self.finality_share, self.finality_risk)
        return self.finality_depth


#: The largest block gas limit a header holds (2^63 - 1, as the engines check).
MAX_GAS_LIMIT = 2**63 - 1
#: The deepest finality depth and the longest finality delay a profile may state.
MAX_DEPTH, MAX_DELAY_S = 1_000_000, 365 * 86_400.0
#: Fields every consensus reads.
COMMON_FIELDS = frozenset({"name", "consensus", "block_time", "block_gas_limit",
                           "mempool_capacity", "reference"})
#: The fields each consensus reads besides :data:`COMMON_FIELDS`.
CONSENSUS_FIELDS: dict[str, frozenset[str]] = {
    "pow": frozenset({"stale_rate", "template_refresh", "empty_block_rate", "finality_depth",
                      "finality_share", "finality_risk", "finality_delay"}),
    "pos": frozenset({"missed_slot_rate", "reorg_rate", "epoch_slots", "finality_epochs"}),
    "poa": frozenset({"sealers", "wiggle", "sealer_offline_rate", "stale_rate",
                      "finality_depth", "finality_delay"}),
    "fixed": frozenset({"finality_depth", "finality_delay"}),
}
_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in fields(ChainProfile) if f.default is not MISSING
}

PROFILES: dict[str, ChainProfile] = {
    p.name: p
    for p in (
        # Ropsten in 2022 (proof of work), where the paper measured L@1 = 16 s, L@12 = 150 s.
        # "Final" (probabilistic): 6 blocks, where a 10 % attacker's odds fall under 1e-3.
        # Uncle/stale rate 6 % (half of contested blocks lose: ~3 % orphaned), miners refresh
        # their block template every 3 s (geth's recommit interval) and a tx must reach them
        # first.  Calibrated (experiments/e01_latency.py, seeds 1-4, 8 simulated hours, 12
        # teams): mean interval 12.1 s and 35 % of blocks mined empty give L@1 ~15-16 s and
        # L@12 ~141-152 s.
        ChainProfile(
            name="ropsten-2022", consensus="pow", block_time=12.1, block_gas_limit=30_000_000,
            stale_rate=0.06, template_refresh=3.0, empty_block_rate=0.35, finality_depth=None,
            reference={"l1_median_s": 16.0, "l12_median_s": 150.0},
        ),
        # Ethereum proof of stake (2025): 12 s slots, ~0.5 % missed, depth-1 reorgs ~0.06 %,
        # 32-slot epochs, finalised with the epoch two after its own (12.8-19.2 min), 45M gas.
        ChainProfile(
            name="ethereum-pos", consensus="pos", block_time=12.0, block_gas_limit=45_000_000,
            missed_slot_rate=0.005, reorg_rate=0.0006, epoch_slots=32, finality_epochs=2,
        ),
        # Clique proof of authority: 5 s period, 5 sealers, 2 % of in-turn sealers offline;
        # final once 3 of the 5 signers have sealed on top (the signer rule of sim/forks.py).
        ChainProfile(
            name="poa-clique", consensus="poa", block_time=5.0, block_gas_limit=30_000_000,
            sealers=5, wiggle=0.5, sealer_offline_rate=0.02, stale_rate=0.01,
        ),
        # A consortium chain with one producer and a short fixed period.
        ChainProfile(
            name="consortium-fast", consensus="fixed", block_time=2.0,
            block_gas_limit=60_000_000, finality_depth=1,
        ),
    )
}


def load_profile(path: str | Path) -> ChainProfile:
    """A profile from a TOML file: the :class:`ChainProfile` fields as top-level keys (or under
    a ``[profile]`` table); ``name`` defaults to the file's stem, and ``base = "NAME"`` starts
    from a named profile.  Example file::

        base = "ethereum-pos"
        name = "pos-6s"
        block_time = 6.0
    """
    import tomllib  # here: profiles are imported when the command line is built

    p = Path(path)
    try:
        data = read_toml(p)
    except OSError as exc:
        raise ProfileError(f"cannot read profile file {p}: {exc}; give a readable TOML file") \
            from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"profile file {p} is not valid TOML: {exc}") from None
    if isinstance(data.get("profile"), dict):
        data = data["profile"]
    base = data.pop("base", None)
    if "base_fee_gwei" in data:  # a field of earlier versions that nothing read
        raise ProfileError(f"profile file {p}: base_fee_gwei is not modelled (every engine "
                           "starts at EIP-1559's genesis base fee, 1 gwei, and sets it per "
                           "block from gas use); remove it")
    data.setdefault("name", p.stem)
    try:
        if base is not None:
            return get_profile(str(base)).with_(**data)
        known = {f.name for f in fields(ChainProfile)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ProfileError(f"profile file {p}: unknown field(s) {unknown}; known: "
                               f"{sorted(known)}")
        if "consensus" not in data or "block_time" not in data:
            raise ProfileError(f"profile file {p}: needs consensus and block_time (or base = "
                               f"one of {', '.join(PROFILES)})")
        return ChainProfile(**data)
    except TypeError as exc:
        raise ProfileError(f"profile file {p}: {exc}") from None


def get_profile(name: str | Path | ChainProfile) -> ChainProfile:
    """A profile by name (:data:`PROFILES`), from a ``.toml`` file (:func:`load_profile`), or
    the :class:`ChainProfile` given.  Example: ``get_profile("poa-clique")``."""
    if isinstance(name, ChainProfile):
        return name
    if isinstance(name, Path) or str(name).endswith(".toml"):
        return load_profile(name)
    try:
        return PROFILES[name]
    except KeyError:
        raise ProfileError(
            f"unknown chain profile {name!r}; choose one of {', '.join(PROFILES)} or give a "
            ".toml file"
        ) from None
