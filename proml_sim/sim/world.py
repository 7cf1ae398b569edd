"""The simulated world: a simpy environment, a real chain engine, participants and block producers.

Transactions are real: participants sign them with their own keys through the ordinary
:class:`~proml_sim.chain.client.LifecycleClient`; the world holds them in a mempool model
(what each block producer has heard, and when) and, when a producer makes a block, submits the
transactions that producer would pick (heard before its template, nonce-ordered, highest tip
first, up to the block gas limit and its mempool capacity) to the engine, which executes them
in a block at the block's timestamp.  Gas, reverts and state are the engine's.

Orphaned blocks really revert: the engine is snapshotted before a contested block; when the
competing branch wins, the engine is reverted and the winner executed, and transactions that the
winner lacks go back to the mempool.  An attacker (:class:`~proml_sim.sim.forks.PrivateBranch`)
wins its share of the block opportunities of the loops below, keeps those blocks private and,
when the fork choice adopts its branch, the world reverts the engine to the fork point and
executes the branch (:meth:`World.reorganise`): reorgs of any depth, with real state.  Finality
follows each chain's rule (:func:`~proml_sim.sim.forks.final_height`).  Confirmations and
finality are counted on the canonical chain as each participant's node sees it (block
propagation delays, outages, partitions).

There are no globals: every random draw comes from the world's seeded ``random.Random``.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import simpy
from eth_utils.address import to_checksum_address

from proml_sim.chain import KeyRing
from proml_sim.chain._txpool import rlp_walk
from proml_sim.chain.anchor import AnchorClient
from proml_sim.chain.base import BlockInfo, CallResult, ChainBackend, Log, Receipt
from proml_sim.chain.client import LifecycleClient, PendingOp
from proml_sim.chain.trie import keccak
from proml_sim.compiler import compile_artefact
from proml_sim.errors import EngineError, SimNameError
from proml_sim.lifecycles import Dataset, Model
from proml_sim.sim.forks import PrivateBranch, final_height
from proml_sim.sim.monitor import Monitor
from proml_sim.sim.network import REGIONS, NetworkModel
from proml_sim.sim.profiles import ChainProfile, get_profile

GENESIS_TS = 1_700_000_000
#: Geth refuses a block stamped more than 15 s ahead of its own clock, and a block's timestamp
#: must exceed its parent's: the bounds within which a producer may choose a timestamp.
MAX_FUTURE_S = 15
#: Extra gas over a cached estimate (``gas_estimates="cached"``): ~4 more cold slot reads.
CACHED_GAS_HEADROOM = 20_000
#: Confirmation depths tracked for every transaction (L@1, L@12 of the paper).
DEPTHS = (1, 12)
#: The lifecycles a world deploys when ``World(lifecycles=...)`` is not given: the paper's.
DEFAULT_LIFECYCLES: tuple[type, ...] = (Dataset, Model)


def domain_id(name: str) -> bytes:
    """A trust domain's on-chain id: its name, UTF-8, right-padded to 32 bytes.

    Example: ``domain_id("lab-a") == b"lab-a".ljust(32, b"\\0")``."""
    raw = name.encode()
    if len(raw) > 32:
        raise ValueError(f"trust domain name {name!r} is longer than 32 bytes; shorten it")
    return raw.ljust(32, b"\0")


@dataclass
class Participant:
    """One actor: its own keys, in one trust domain and region.

    Example: ``alice = w.add_participant("alice", "lab-a", "eu"); alice.address``."""

    name: str
    domain: str
    region: str
    keys: KeyRing

    @property
    def address(self) -> str:
        return self.keys.addresses[0]

    @cached_property
    def signer(self) -> Any:
        return self.keys.signer(self.address)


@dataclass
class SimTx:
    """A transaction as the world sees it, with its measured times (simulated seconds).

    Example: ``tx = yield from w.send(...); yield w.confirmed(tx, 12); tx.confirmed[12]``."""

    hash: bytes
    raw: bytes
    sender: str
    nonce: int
    tip: int
    gas: int
    participant: Participant
    op: PendingOp
    meta: dict[str, Any]
    submitted: float
    arrivals: dict[str, float] = field(default_factory=dict)  # producer -> heard at
    block: SimBlock | None = None
    confirmed: dict[int, float] = field(default_factory=dict)  # depth -> seen by submitter
    final_at: float | None = None
    reorged: int = 0
    reorg_depth: int = 0  # the deepest reorg that took it out of the chain
    acted_on_orphan: int = 0
    receipt: Receipt | None = None
    waiters: dict[int, list[simpy.Event]] = field(default_factory=dict)
    done: bool = False


@dataclass
class SimBlock:
    """A block of the simulated chain (``world.canon``: the canonical chain; ``world.orphans``).

    Example: ``[b.n_txs for b in w.canon[-10:]]`` (transactions in the last ten blocks).
    """

    height: int  # on the simulated canonical chain
    number: int  # the engine's block number; -1 for an empty block (not materialised)
    time: float  # simulated time it was produced
    producer: str
    region: str
    txs: list[SimTx]
    seen: dict[str, float] = field(default_factory=dict)  # region -> seen at
    snapshot: int | None = None  # engine snapshot taken just before it (contested blocks)
    gas_used: int = 0
    n_txs: int = 0
    gas_reserved: int = 0  # sum of the included transactions' gas limits
    timestamp: int | None = None  # the engine block's timestamp (None: not materialised)
    slot: int = 0  # PoS: the slot it was proposed in (finality counts epochs of slots)
    in_turn: bool = True  # PoA: sealed by the in-turn signer (clique difficulty 2, else 1)
    published: float = 0.0  # when it left its producer (a private block: at its release)


@dataclass(frozen=True)
class Producer:
    """A block producer (miner, validator, sealer) in a region.

    ``censors``: trust domains whose transactions it never includes (insider attacks use it).
    ``hears_as``: the producer whose mempool it shares (an attacker's node beside that one).

    Example: ``World(1, "poa-clique", producers=[Producer(f"s{i}", "eu") for i in range(5)])``.
    """

    name: str
    region: str
    weight: float = 1.0
    censors: frozenset[str] = frozenset()
    hears_as: str = ""


class _Gateway(ChainBackend):
    """What participants' clients talk to: reads go to the engine; writes go to the world's
    mempool model instead of the engine's pool; nonces count the world's pending transactions."""

    name = "sim-gateway"
    #: the world's own gas policy (``gas_estimates``) decides; LifecycleClient adds no headroom
    gas_headroom = 0

    def __init__(self, world: World, engine: ChainBackend) -> None:
        self.world = world
        self.engine = engine
        self.chain_id = self.engine.chain_id
        self._nonces: dict[str, int] = {}
        self._checksums: dict[str, str] = {}  # address as given -> checksum address
        self._last_sender: str | None = None
        self._estimates: dict[tuple[str | None, bytes, int], int] = {}

    def submit(self, raw_tx: bytes) -> bytes:
        sender = self._last_sender
        if sender is None:
            raise EngineError("submit without next_nonce: sign through LifecycleClient")
        self._last_sender = None
        if raw_tx[:1] != b"\x02":
            raise EngineError("the simulator accepts EIP-1559 (type 2) transactions only")
        nonce, tip, gas = _type2_nonce_tip_gas(raw_tx)
        if nonce != self._nonces.get(sender):
            raise EngineError(f"nonce {nonce} out of order for {sender}")
        self._nonces[sender] = nonce + 1
        h = keccak(raw_tx)
        self.world._accept(h, raw_tx, sender, nonce, tip, gas)
        return h

    def next_nonce(self, address: str) -> int:
        checksum = self._checksums.get(address)
        if checksum is None:
            checksum = self._checksums[address] = to_checksum_address(address)
        address = checksum
        self._last_sender = address
        if address not in self._nonces:
            self._nonces[address] = self.engine.nonce(address)
        return self._nonces[address]

    def estimate_gas(self, sender: str, to: str | None, data: bytes, value: int = 0) -> int:
        if self.world.gas_estimates == "exact":
            return self.engine.estimate_gas(sender, to, data, value)
        # "cached": one execution per (contract, function, calldata size), reused with extra
        # headroom for paths that read a few more slots (e.g. one more approver); a call whose
        # estimate reverts is not cached
        key = (to, data[:4], len(data))
        gas = self._estimates.get(key)
        if gas is None:
            gas = self.engine.estimate_gas(sender, to, data, value) + CACHED_GAS_HEADROOM
            self._estimates[key] = gas
        return min(gas, self.engine.gas_limit)

    def pending(self) -> tuple[bytes, ...]:
        return tuple(self.world.pending)

    def produce_block(self, timestamp: int | None = None, *, max_txs: int | None = None) -> Any:
        raise EngineError("in a World, block producers make blocks; participants only submit")

    def receipt(self, tx_hash: bytes) -> Receipt | None:
        return self.engine.receipt(tx_hash)

    def call(self, to: str | None, data: bytes, *, sender: str | None = None, value: int = 0
             ) -> CallResult:
        return self.engine.call(to, data, sender=sender, value=value)

    def nonce(self, address: str) -> int:
        return self.engine.nonce(address)

    def balance(self, address: str) -> int:
        return self.engine.balance(address)

    def code(self, address: str) -> bytes:
        return self.engine.code(address)

    def head(self) -> BlockInfo:
        return self.engine.head()

    def block(self, number: int) -> BlockInfo:
        return self.engine.block(number)

    def logs(self, address: str | None = None, from_block: int = 0, to_block: int | None = None,
             topics: list[bytes | None] | None = None) -> list[Log]:
        return self.engine.logs(address, from_block, to_block, topics)

    def snapshot(self) -> int:
        raise EngineError("snapshots belong to the world's block production")

    def revert(self, snapshot_id: int) -> None:
        raise EngineError("snapshots belong to the world's block production")

    def base_fee(self) -> int:
        return self.engine.base_fee()

    @property
    def gas_limit(self) -> int:
        return self.engine.gas_limit


#: ``(producer, its transactions, honest timestamp, parent's timestamp, simulated now)`` ->
#: the timestamp the producer wants, or None for the honest one (see ``World.timestamp_policy``).
TimestampPolicy = Callable[["Producer", list["SimTx"], int, int, float], "int | None"]


class World:
    """``World(seed, profile, engine)``: the simpy environment, the chain and its producers.

    ``gas_estimates``: ``"exact"`` estimates every transaction's gas by executing it at the
    latest state (as wallets do; one extra execution per transaction); ``"cached"`` estimates
    once per (contract, function, calldata size) and adds headroom (large scenarios).

    ``lifecycles``: the lifecycle classes to deploy (default the paper's Dataset and Model); add
    more with :meth:`deploy` before :meth:`setup`.  Lifecycles and participants are then named
    by string everywhere (grants, :meth:`send`); an unknown name raises
    :class:`~proml_sim.errors.SimNameError` listing the known ones.

    Add participants with :meth:`add_participant`, then :meth:`setup` deploys the lifecycle
    contracts (and the batch Anchor) and grants roles; start actor processes with
    ``world.env.process(...)`` and run with :meth:`run`.

    Attributes a study reads: ``env`` (the simpy environment: ``env.now``, ``env.timeout``,
    ``env.process``), ``rng`` (the seeded ``random.Random`` every draw should use), ``monitor``
    (its ``rows``: :data:`~proml_sim.sim.monitor.SCHEMA`), ``profile``, ``participants`` (by
    name), ``canon`` (the canonical :class:`SimBlock` list), ``stats`` (blocks, orphaned,
    reorgs, ...).

    Example::

        from proml_sim.lifecycles import Dataset
        w = World(seed=1, profile="consortium-fast", lifecycles=[Dataset])
        alice = w.add_participant("alice", "lab-a", "eu")
        w.setup(grants=[("alice", "Dataset", "dataset_admin")])

        def alice_works(w):
            yield from w.send("alice", "Dataset", "register", b"d1".ljust(32, b"\0"))

        w.env.process(alice_works(w))
        w.run(600)          # drains: every row of a call made before t = 600 s is written
        rows = w.monitor.rows
    """

    def __init__(
        self,
        seed: int,
        profile: str | ChainProfile = "ropsten-2022",
        engine: str = "pyevm",
        *,
        network: NetworkModel | None = None,
        producers: Iterable[Producer] | None = None,
        monitor: Monitor | None = None,
        rpc_url: str | None = None,
        gas_estimates: str = "exact",
        attacker: PrivateBranch | None = None,
        lifecycles: Iterable[type] | None = None,
    ) -> None:
        if gas_estimates not in ("exact", "cached"):
            raise ValueError(f"gas_estimates={gas_estimates!r}; use 'exact' or 'cached'")
        self.gas_estimates = gas_estimates
        self.seed = seed
        self.rng = random.Random(seed)
        self.profile = get_profile(profile)
        self.engine_name = engine
        self.rpc_url = rpc_url
        self.network = network or NetworkModel()
        self.env = simpy.Environment()
        self.monitor = monitor or Monitor()
        self.participants: dict[str, Participant] = {}
        self.producers: list[Producer] = list(producers) if producers else self._default_producers()
        self.txs: dict[bytes, SimTx] = {}  # live transactions (row not yet written)
        self.pending: dict[bytes, SimTx] = {}  # not in a canonical block
        self.canon: list[SimBlock] = []
        self.orphans: list[SimBlock] = []
        self.backend: ChainBackend | None = None
        self.clients: dict[str, Any] = {}
        self.admin: Participant | None = None
        self._domain_admins: dict[str, Participant] = {}  # trust domain -> its admin (consortia)
        self._founders: dict[str, Participant] = {}  # add_lifecycle's chosen founders
        self._allowed: list[tuple[str, str, str]] = []  # World.allow before setup
        self._t0_ts = GENESIS_TS
        self._contested: SimBlock | None = None
        self._pending_meta: tuple[Participant, dict[str, Any], str, str] | None = None
        self._started = False
        self.stats = {"blocks": 0, "orphaned": 0, "reorged_txs": 0, "missed_slots": 0,
                      "reorgs": 0, "max_reorg_depth": 0, "final_reverted": 0}
        #: a private-branch attacker (``proml_sim.sim.forks``); None: honest producers only
        if attacker is not None and self.profile.consensus == "fixed":
            raise ValueError(f"profile {self.profile.name!r} has one producer: no forks to "
                             "attack; give the attacker a pow, pos or poa profile")
        self.attacker = attacker
        self.reorg_depths: list[int] = []  # every reorg's depth, in order
        self._final = 0  # highest final height on the canonical chain
        self._slot = 0  # PoS slot / PoA in-turn flag of the block being made
        self._in_turn = True
        self._contest_wins = 0.5
        p = self.profile
        self._has_finality = (p.consensus in ("pos", "poa") or p.finality_delay is not None
                              or p.finality_time_blocks() is not None)
        self._fin_delay = p.finality_delay
        # finality by depth alone (PoW, fixed, PoA with finality_depth): no rule to evaluate
        self._fin_depth = (p.finality_time_blocks() if p.consensus in ("pow", "fixed") or (
            p.consensus == "poa" and p.finality_depth is not None) else None)
        self._fin_epoch = -1  # PoS: the head's epoch when finality was last evaluated
        # how far behind the head a block can still become final (keeps its transactions)
        self._final_lag = (int(4 * p.finality_delay / p.block_time) + 8
                           if p.finality_delay is not None
                           else p.epoch_slots * (p.finality_epochs + 2) if p.consensus == "pos"
                           else 4 * p.sealers + 8 if p.consensus == "poa"
                           else (p.finality_time_blocks() or 0))
        self._keep = max(max(DEPTHS), self._final_lag) + 2
        #: How producers stamp blocks.  None: honestly, the simulated clock (``real_ts``).  A
        #: policy may choose another timestamp; the world clamps it to what nodes accept (above
        #: the parent's, at most MAX_FUTURE_S ahead of the clock), as a miner or sealer can.
        self.timestamp_policy: TimestampPolicy | None = None
        self.lifecycles: dict[str, type] = {}
        for cls in DEFAULT_LIFECYCLES if lifecycles is None else lifecycles:
            self.deploy(cls)
        self._closed = False  # draining after run(until): no new calls accepted

    # -- set-up ------------------------------------------------------------------------------
    def _default_producers(self) -> list[Producer]:
        p = self.profile
        n = p.sealers if p.consensus == "poa" else (1 if p.consensus == "fixed" else 6)
        return [Producer(f"producer-{i}", REGIONS[i % len(REGIONS)]) for i in range(n)]

    def deploy(self, cls: type) -> None:
        """Deploy lifecycle class ``cls`` (a :mod:`proml_sim.dsl` lifecycle) at :meth:`setup`;
        it is then known by its class name.  Call before ``setup``.

        Example: ``w.deploy(Benchmark)`` then ``w.setup(grants=[("ann", "Benchmark", "owner")])``.
        """
        if self._started:
            raise RuntimeError("deploy lifecycles before World.setup()")
        name = getattr(cls, "__name__", "")
        if not isinstance(cls, type) or name in ("Anchor", ""):
            raise SimNameError(f"cannot deploy {cls!r}: give a lifecycle class (not named "
                               "'Anchor', which the world deploys itself)")
        if name in self.lifecycles and self.lifecycles[name] is not cls:
            raise SimNameError(f"a different lifecycle named {name!r} is already deployed; "
                               "rename one of the classes")
        self.lifecycles[name] = cls

    def participant(self, who: str | Participant) -> Participant:
        """The participant named ``who`` (a :class:`Participant` is returned as is)."""
        if isinstance(who, Participant):
            return who
        p = self.participants.get(who)
        if p is None:
            raise SimNameError(f"no participant {who!r} in this world; known: "
                               f"{', '.join(sorted(self.participants)) or 'none'} "
                               "(add it with World.add_participant)")
        return p

    def client(self, lifecycle: str) -> Any:
        """The deployed lifecycle's :class:`~proml_sim.chain.client.LifecycleClient` for reads
        (``state``, ``history``, ``events``) at the engine's current state.  Example:
        ``w.client("Dataset").state(dataset_id)``."""
        return self._client(lifecycle, self.clients)

    def _client(self, lifecycle: str, clients: dict[str, Any]) -> Any:
        c = clients.get(lifecycle)
        if c is None:
            raise SimNameError(f"no lifecycle {lifecycle!r} in this world; known: "
                               f"{', '.join(sorted(clients))} (pass it in World(lifecycles=...) "
                               "or World.deploy before setup)")
        return c

    def add_participant(self, name: str, domain: str, region: str) -> Participant:
        """Add a participant with its own keys in trust ``domain`` and ``region``
        (one of :data:`~proml_sim.sim.network.REGIONS`).  Example:
        ``w.add_participant("alice", "lab-a", "eu")``."""
        if self._started:
            raise RuntimeError("add participants before World.setup()")
        if name in self.participants:
            raise ValueError(f"participant {name!r} already exists; names must be unique")
        if region not in REGIONS:
            raise ValueError(f"unknown region {region!r}; choose one of {', '.join(REGIONS)}")
        domain_id(domain)
        keys = KeyRing.from_seed(f"world-{self.seed}-{name}", 1, owner=name)
        p = Participant(name, domain, region, keys)
        self.participants[name] = p
        return p

    def allow(self, who: str, lifecycle: str, role: str) -> None:
        """Before :meth:`setup`: admit ``who``'s domain into ``lifecycle``'s consortium and
        allow it ``role`` without enrolling ``who`` (its domain's admin grants it later, e.g. a
        labeller hired during the run); the same as :meth:`setup`'s ``allow``.  Ignored by
        single-admin lifecycles.  Example: ``w.allow("lena", "Dataset", "labeller")``."""
        if self._started:
            raise RuntimeError("allow roles before World.setup()")
        self.participant(who)
        self._client(lifecycle, self.lifecycles)
        self._allowed.append((who, lifecycle, role))

    def setup(self, grants: Iterable[tuple[str, str, str]] = (),
              allow: Iterable[tuple[str, str, str]] = ()) -> None:
        """Create the engine (funding every participant), deploy the world's lifecycles and the
        batch Anchor contract, and grant ``(participant, lifecycle, role)`` for each of
        ``grants`` (names checked first: nothing is deployed when one is unknown).

        A single-admin lifecycle (and the Anchor) is deployed by :attr:`admin` (the
        ``consortium-admin`` participant), which grants every role.  A lifecycle with a
        ``Consortium`` declaration (the paper's ``Dataset`` / ``Model``) is set up by domain
        enrolment, in real transactions: the first domain named by its grants founds it (its
        admin deploys), every other domain of its grants' participants joins by an
        ``add_domain`` proposal voted by a quorum of the members so far, each domain (the
        founder's too, by a ``set_roles`` of its own while it is alone) allowed exactly the
        roles its participants are granted, and each domain's admin then enrols its own
        participants.  Each such domain gets a dedicated admin participant, ``admin@DOMAIN``
        (a participant's own key is not its domain's admin key, so a stolen participant key
        does not carry the power to enrol); :meth:`domain_admin` returns it.

        ``allow``: ``(participant, lifecycle, role)`` triples that admit the participant's
        domain and allow it the role without enrolling the participant (its domain's admin may
        grant it later, e.g. standby verifiers); ignored by single-admin lifecycles."""
        if self._started:
            raise RuntimeError("World.setup() runs once")
        grants = list(grants)
        allow = [*self._allowed, *allow]
        for name, lifecycle, _ in [*grants, *allow]:
            self.participant(name)
            self._client(lifecycle, self.lifecycles)
        self._started = True
        self.admin = self.add_participant_unchecked("consortium-admin", "consortium", "eu")
        compiled = {name: compile_artefact(cls) for name, cls in self.lifecycles.items()}
        # each consortium lifecycle's member domains, founder first
        members: dict[str, list[str]] = {}
        for lc, c in compiled.items():
            if c.ir is not None and c.ir.consortium is not None:
                doms = list(dict.fromkeys(self.participants[n].domain
                                          for n, g, _ in [*grants, *allow] if g == lc))
                first = next(iter(self.participants.values()))
                members[lc] = doms or [first.domain]
        # every domain gets its admin (funded), also for consortium lifecycles added later
        for d in dict.fromkeys(p.domain for p in list(self.participants.values())):
            self._domain_admins[d] = self._new_domain_admin(d)
        funded = [p.address for p in self.participants.values()]
        self.backend = _make_engine(self.engine_name, funded, self.profile, self.rpc_url)
        for name, c in compiled.items():
            deployer = self._domain_admins[members[name][0]] if name in members else self.admin
            self.clients[name] = LifecycleClient.deploy(
                self.backend, c, deployer.signer, domain_id(deployer.domain))
        self.clients["Anchor"] = AnchorClient.deploy(self.backend, self.admin.signer)
        for lc, doms in members.items():
            self._admit(self.clients[lc], doms, [(n, r) for n, g, r in [*grants, *allow]
                                                if g == lc], self._domain_admins)
        for name, lifecycle, role in grants:
            p = self.participants[name]
            granter = self.domain_admin(p, lifecycle)
            self.clients[lifecycle].grant(granter.signer, role, p.address, domain_id(p.domain))
        self._t0_ts = self.backend.head().timestamp + 1
        self.gateway = _Gateway(self, self.backend)
        self.sim_clients: dict[str, Any] = {
            name: LifecycleClient(self.gateway, c.compiled, c.address, automine=False)
            for name, c in self.clients.items() if isinstance(c, LifecycleClient)
        }
        anchor = self.clients["Anchor"]
        self.sim_clients["Anchor"] = AnchorClient(self.gateway, anchor.compiled, anchor.address,
                                                  automine=False)
        self.env.process(self._produce_blocks())

    def _new_domain_admin(self, domain: str) -> Participant:
        """The dedicated admin participant of ``domain`` (in the region of the domain's first
        participant); the world's own admin for its own domain."""
        assert self.admin is not None
        if domain == self.admin.domain:
            return self.admin
        name = f"admin@{domain}"
        if name in self.participants:
            raise SimNameError(f"participant name {name!r} is reserved for the admin of trust "
                               f"domain {domain!r}; rename that participant")
        region = next(p.region for p in self.participants.values() if p.domain == domain)
        return self.add_participant_unchecked(name, domain, region)

    def _admit(self, client: LifecycleClient, domains: list[str],
               grants: list[tuple[str, str]], admins: dict[str, Participant]) -> None:
        """Admit ``domains[1:]`` into ``client``'s consortium (founded by ``domains[0]``): the
        earliest member proposes ``add_domain`` (allowed the roles of ``(participant, role)``
        ``grants`` in that domain), as many more members vote as the quorum needs, and the
        proposer executes; ``admins``: each domain's admin."""
        assert client.ir.consortium is not None
        quorum = client.ir.consortium.quorum

        def mask_of(d: str) -> int:
            return sum({client.ir.role(role).bit for name, role in grants
                        if self.participants[name].domain == d})

        # the founding domain may hold every role (or its founder_roles): while it is the only
        # member its own vote narrows that to the roles its participants need, as for the others
        pid = client.propose(admins[domains[0]].signer, "set_roles", domain_id(domains[0]),
                             roles=mask_of(domains[0]))
        client.execute(admins[domains[0]].signer, pid)
        for i, d in enumerate(domains[1:], start=1):
            mask = mask_of(d)
            voters = [admins[m] for m in domains[:min(quorum, i)]]
            pid = client.propose(voters[0].signer, "add_domain", domain_id(d),
                                 admins[d].address, mask)
            for v in voters[1:]:
                client.vote(v.signer, pid)
            client.execute(voters[0].signer, pid)

    def add_lifecycle(self, key: str, lifecycle: Any, grants: Iterable[tuple[str, str]],
                      deployer: str | Participant | None = None) -> LifecycleClient:
        """Deploy another lifecycle registry after :meth:`setup` (``lifecycle``: a DSL class or
        its compiled contract, e.g. a mutant), grant ``(participant, role)`` as :meth:`setup`
        does (a consortium lifecycle by domain enrolment, founded by ``deployer``'s domain,
        default the first grant's), make it usable as ``w.send(p, key, ...)`` and restart
        simulated time after the set-up blocks.  Call before any participant sends.

        Example: ``w.add_lifecycle("ModelB", Model, [("op", "operator"), ("v1", "verifier")])``.
        """
        if not self._started or self.backend is None or self.admin is None:
            raise RuntimeError("call World.setup() before World.add_lifecycle()")
        if key in self.clients:
            raise SimNameError(f"a lifecycle named {key!r} is already deployed; use another key")
        grants = list(grants)
        for name, _ in grants:
            self.participant(name)
        compiled = lifecycle if hasattr(lifecycle, "bytecode") else compile_artefact(lifecycle)
        consortium = compiled.ir is not None and compiled.ir.consortium is not None
        if deployer is not None:
            founder = self.participant(deployer)
        elif consortium and grants:
            founder = self._domain_admins.get(self.participants[grants[0][0]].domain, self.admin)
        else:
            founder = self.admin
        client = LifecycleClient.deploy(self.backend, compiled, founder.signer,
                                        domain_id(founder.domain))
        self.enrol(client, grants, founder)
        if consortium:
            self._founders[key] = founder
        self.clients[key] = client
        self.sim_clients[key] = LifecycleClient(self.gateway, compiled, client.address,
                                                automine=False)
        self.mark_start()
        return client

    def enrol(self, client: LifecycleClient, grants: Iterable[tuple[str, str]],
              founder: Participant) -> None:
        """Grant ``(participant, role)`` on ``client`` (a lifecycle ``founder`` deployed, on
        this world's chain or another), as :meth:`setup` does: a consortium lifecycle by domain
        enrolment (``founder``'s domain founded it; the others join by proposal and votes of
        the members' admins; each domain's admin enrols its participants), a single-admin one
        by ``founder``'s grants.  Direct transactions (automined on ``client``'s backend)."""
        grants = list(grants)
        if client.ir.consortium is None:
            for name, role in grants:
                p = self.participant(name)
                client.grant(founder.signer, role, p.address, domain_id(p.domain))
            return
        doms = list(dict.fromkeys([founder.domain,
                                   *(self.participant(n).domain for n, _ in grants)]))
        admins = {**self._domain_admins, founder.domain: founder}
        self._admit(client, doms, grants, admins)
        for name, role in grants:
            p = self.participants[name]
            client.grant(admins[p.domain].signer, role, p.address, domain_id(p.domain))

    def domain_admin(self, who: str | Participant, lifecycle: str | None = None) -> Participant:
        """The participant that administers the roles of ``who`` (a participant, its name or
        address, or a trust domain's name): for a consortium lifecycle the admin of its
        domain, for a single-admin one :attr:`admin`.  ``lifecycle=None``: the domain's admin
        if the world has a consortium lifecycle, else :attr:`admin`.

        Example: ``yield from w.send(w.domain_admin("v1"), "Model", "revoke", "verifier",
        w.participant("v1").address)``."""
        if not self._started or self.admin is None:
            raise RuntimeError("call World.setup() before World.domain_admin()")
        if isinstance(who, str) and who.startswith("0x") and who not in self.participants:
            by_address = {p.address.lower(): p for p in self.participants.values()}
            who = by_address.get(who.lower(), who)  # an account's address: its participant
        if isinstance(who, Participant) or who in self.participants:
            domain = self.participant(who).domain
        elif who in self._domain_admins or any(p.domain == who
                                                for p in self.participants.values()):
            domain = who
        else:
            raise SimNameError(f"no participant or trust domain {who!r} in this world; "
                               f"participants: {', '.join(sorted(self.participants))}")
        if lifecycle is not None:
            c = self._client(lifecycle, self.clients)
            if getattr(c, "ir", None) is None or c.ir.consortium is None:
                return self.admin
            founder = self._founders.get(lifecycle)
            if founder is not None and founder.domain == domain:
                return founder  # add_lifecycle's own deployer founded it
        elif not any(getattr(c, "ir", None) is not None and c.ir.consortium is not None
                     for c in self.clients.values()):
            return self.admin
        return self._domain_admins.get(domain, self.admin)

    def mark_start(self) -> None:
        """Start simulated time after blocks made outside the simulation (set-up calls made
        directly through ``world.clients``)."""
        assert self.backend is not None
        self._t0_ts = self.backend.head().timestamp + 1 - int(self.env.now)

    def add_participant_unchecked(self, name: str, domain: str, region: str) -> Participant:
        keys = KeyRing.from_seed(f"world-{self.seed}-{name}", 1, owner=name)
        p = Participant(name, domain, region, keys)
        self.participants[name] = p
        return p

    # -- participants' side ----------------------------------------------------------------------
    def send(self, who: str | Participant, lifecycle: str, method: str, *args: Any,
             **meta: Any) -> Generator[Any, Any, SimTx]:
        """Sign and submit one lifecycle call as ``who`` (a participant or its name); waits
        while its node is down.  ``method`` is a :class:`~proml_sim.chain.client.LifecycleClient`
        write (``register``, ``fire``, ``approve``, ``grant``, ``revoke``) and ``args`` its
        arguments after the signer.

        ``meta``: extra columns for this call's row.  ``transition`` and ``artefact`` are filled
        from the call (``fire("label", art, ...)``: transition ``label``, artefact ``art``;
        ``register(salt, ...)``: transition ``register``, artefact the id it creates); pass
        them only to override.  Once :meth:`run` drains, further calls wait forever (the world
        accepts nothing new).

        Example (inside an actor process)::

            tx = yield from w.send("alice", "Dataset", "fire", "label", art, digest)
            yield w.confirmed(tx, 12)
        """
        who = self.participant(who)
        client = self._client(lifecycle, self.sim_clients)
        if self._closed:
            yield self.env.event()  # never fires: the run is draining
        up = self.network.node_up_at(who.name, self.env.now)
        if up > self.env.now:
            yield self.env.timeout(up - self.env.now)
        if method in ("fire", "approve") and len(args) >= 2:
            meta.setdefault("transition", args[0])
            meta.setdefault("artefact", args[1])
        elif method == "register" and args and isinstance(client, LifecycleClient):
            meta.setdefault("artefact", client.artefact_id(who.address, args[0]))
        meta.setdefault("transition", method)
        self._pending_meta = (who, meta, lifecycle, method)
        op = getattr(client, method)(who.signer, *args)
        tx = self.txs[op.tx_hash]
        tx.op = op
        return tx

    def confirmed(self, tx: SimTx, depth: int = 1) -> simpy.Event:
        """An event that fires when ``tx``'s submitter sees it ``depth`` blocks deep."""
        ev = self.env.event()
        if depth in tx.confirmed:
            ev.succeed(tx)
        else:
            tx.waiters.setdefault(depth, []).append(ev)
        return ev

    def result(self, tx: SimTx) -> Any:
        """The decoded outcome of an included transaction (raises its lifecycle error)."""
        return self.sim_clients[tx.meta["lifecycle"]].result(tx.op)

    def _accept(self, h: bytes, raw: bytes, sender: str, nonce: int, tip: int, gas: int) -> None:
        if self._pending_meta is None:
            raise EngineError("transactions enter the world through World.send()")
        who, meta, lifecycle, method = self._pending_meta
        self._pending_meta = None
        now = self.env.now
        tx = SimTx(h, raw, sender, nonce, tip, gas, who, None,  # type: ignore[arg-type]
                   {"lifecycle": lifecycle, "method": method, **meta}, now)
        for p in self.producers:
            delay = self.network.tx_delay(who.region, p.region, self.rng)
            t = self.network.deliver_at(who.region, p.region, now, delay)
            tx.arrivals[p.name] = self.network.node_up_at(p.name, t)
        self.txs[h] = tx
        self.pending[h] = tx

    # -- block production --------------------------------------------------------------------------
    def _produce_blocks(self) -> Generator[Any, Any, None]:
        p = self.profile
        if p.consensus == "pow":
            atk = self.attacker
            while True:
                yield self.env.timeout(self.rng.expovariate(1.0 / p.block_time))
                if atk is not None and atk.wins_slot(self):
                    atk.mined(self)  # the attacker's hash power found this one
                    continue
                producer = self._weighted_producer()
                template_age = self.rng.uniform(0.0, p.template_refresh)
                empty = self.rng.random() < p.empty_block_rate
                self._make_block(producer, self.env.now - template_age, p.stale_rate,
                                 empty=empty)
                if atk is not None:
                    atk.honest_block(self)
        elif p.consensus == "pos":
            slot = 0
            atk = self.attacker
            while True:
                yield self.env.timeout(p.block_time)
                slot += 1
                self._slot = slot
                if atk is not None:
                    atk.slot(self)
                if self.rng.random() < p.missed_slot_rate:
                    self.stats["missed_slots"] += 1
                    continue
                if atk is not None and atk.wins_slot(self):
                    self.stats["missed_slots"] += 1  # its proposal is withheld from the honest
                    atk.mined(self)
                    continue
                self._make_block(self.rng.choice(self.producers), self.env.now, p.reorg_rate,
                                 competitor_wins=1.0)
                if atk is not None:
                    atk.honest_block(self)
        elif p.consensus == "poa":
            n = 0
            atk = self.attacker
            attackers = (self.producers[:round(atk.share * len(self.producers))]
                         if atk is not None else [])
            while True:
                yield self.env.timeout(p.block_time)
                in_turn = self.producers[n % len(self.producers)]
                n += 1
                if atk is not None and attackers:
                    # its sealers (the first share of them) also seal this height on their
                    # private branch: equivocation
                    s = in_turn if in_turn in attackers else self.rng.choice(attackers)
                    atk.mined(self, in_turn=s is in_turn, signer=s.name)
                producer, extra = in_turn, 0.0
                offline = self.rng.random() < p.sealer_offline_rate
                if offline or self.network.node_up_at(in_turn.name, self.env.now) > self.env.now:
                    others = [s for s in self.producers if s is not in_turn] or [in_turn]
                    producer = self.rng.choice(others)
                    extra = self.rng.uniform(0.0, p.wiggle * len(self.producers) / 2)
                if extra:
                    yield self.env.timeout(extra)
                self._in_turn = producer is in_turn
                self._make_block(producer, self.env.now, p.stale_rate)
                if atk is not None:
                    atk.honest_block(self)
        else:
            while True:
                yield self.env.timeout(p.block_time)
                self._make_block(self.producers[0], self.env.now, 0.0)

    def _weighted_producer(self) -> Producer:
        weights = [pr.weight for pr in self.producers]
        return self.rng.choices(self.producers, weights=weights)[0]

    def _select(self, producer: Producer, heard_by: float) -> list[SimTx]:
        """What ``producer`` puts in a block built from what it heard by ``heard_by``.

        The mempool capacity keeps the best-paying transactions (highest tip, then earliest).
        Then, greedily: the best-paying transaction among each sender's next-nonce one (ties:
        earliest submitted, then the lowest sender address), until the next one would exceed
        the block gas limit.  A heap holds each sender's candidate (O(n log senders))."""
        censors = producer.censors
        name = producer.hears_as or producer.name
        known = [
            t for t in self.pending.values()
            if t.arrivals[name] <= heard_by and t.participant.domain not in censors
        ]
        known.sort(key=lambda t: (-t.tip, t.submitted))
        known = known[: self.profile.mempool_capacity]
        known.sort(key=lambda t: (t.sender, t.nonce))
        by_sender: dict[str, list[SimTx]] = {}
        for t in known:
            by_sender.setdefault(t.sender, []).append(t)
        # one candidate per sender: its transaction at the chain's next nonce, if heard
        next_nonce: dict[str, int] = {}
        heap: list[tuple[int, float, int, int, str]] = []  # (-tip, submitted, rank, index, s)
        for rank, (s, queue) in enumerate(by_sender.items()):
            want = next_nonce[s] = self._chain_nonce(s)
            head = queue[0]
            if head.nonce == want:
                heap.append((-head.tip, head.submitted, rank, 0, s))
        heapq.heapify(heap)
        chosen: list[SimTx] = []
        gas = 0
        limit = self.profile.block_gas_limit
        while heap:
            _, _, rank, i, s = heap[0]
            queue = by_sender[s]
            best = queue[i]
            if gas + best.gas > limit:
                break
            chosen.append(best)
            gas += best.gas
            want = next_nonce[s] = next_nonce[s] + 1
            if i + 1 < len(queue) and queue[i + 1].nonce == want:
                nxt = queue[i + 1]
                heapq.heapreplace(heap, (-nxt.tip, nxt.submitted, rank, i + 1, s))
            else:
                heapq.heappop(heap)
        return chosen

    def _chain_nonce(self, sender: str) -> int:
        assert self.backend is not None
        return self.backend.nonce(sender)

    def real_ts(self, t: float) -> float:
        """The chain timestamp that simulated time ``t`` corresponds to."""
        return self._t0_ts + t

    def _timestamp(self, producer: Producer, txs: list[SimTx], at: float | None = None) -> int:
        assert self.backend is not None
        parent = self.backend.head().timestamp
        now = self._t0_ts + int(self.env.now if at is None else at)
        honest = max(now, parent + 1)
        if self.timestamp_policy is None:
            return honest
        want = self.timestamp_policy(producer, txs, honest, parent, self.env.now)
        if want is None:
            return honest
        return int(max(parent + 1, min(want, now + MAX_FUTURE_S)))

    def _execute(self, producer: Producer, txs: list[SimTx], when: float,
                 stamp_at: float | None = None) -> SimBlock:
        assert self.backend is not None
        height = len(self.canon) + 1
        if not txs:
            # An empty block changes no state: it is counted on the simulated chain (heights,
            # confirmations, finality) but not materialised in the engine (saves ~0.7 ms each).
            return SimBlock(height, -1, when, producer.name, producer.region, [],
                            slot=self._slot, in_turn=self._in_turn)
        for t in txs:
            self.backend.submit(t.raw)
        info = self.backend.produce_block(self._timestamp(producer, txs, stamp_at))
        included = set(info.tx_hashes)
        leftover = [t for t in txs if t.hash not in included]
        if leftover:
            raise EngineError(
                f"engine left {len(leftover)} selected transaction(s) pending; the world's "
                "selection and the engine disagree (nonce or gas accounting)"
            )
        block = SimBlock(height, info.number, when, producer.name, producer.region, txs,
                         gas_used=info.gas_used, n_txs=len(txs),
                         gas_reserved=sum(t.gas for t in txs), timestamp=info.timestamp,
                         slot=self._slot, in_turn=self._in_turn)
        for t in txs:
            t.block = block
            t.receipt = self.backend.receipt(t.hash)
            del self.pending[t.hash]
        return block

    def _make_block(self, producer: Producer, heard_by: float, contest_rate: float,
                    competitor_wins: float = 0.5, *, empty: bool = False) -> None:
        assert self.backend is not None
        if self._contested is not None:
            self._resolve_contest(competitor_wins)
        txs = [] if empty else self._select(producer, heard_by)
        contested = self.rng.random() < contest_rate
        snap = self.backend.snapshot() if contested else None
        block = self._execute(producer, txs, self.env.now)
        block.snapshot = snap
        self._append(block)
        if contested:
            self._contested = block
            self._contest_wins = competitor_wins

    def settle_contest(self) -> None:
        """Settle a pending contest now (a block found on top of it, e.g. an attacker's)."""
        if self._contested is not None:
            self._resolve_contest(self._contest_wins)

    def reorganise(self, fork_height: int, snapshot: int,
                   blocks: list[tuple[float, bool, int]], producer: Producer) -> int:
        """Adopt a released branch: revert the engine to ``snapshot`` (taken at height
        ``fork_height``), orphan the canonical blocks above it (their transactions go back to the
        mempool) and execute ``blocks`` (``(mined at, in turn, slot)`` each) as ``producer``
        builds them from what it had heard by then.  Returns the reorg depth."""
        assert self.backend is not None
        self._contested = None  # its snapshot was taken after ``snapshot``: reverting drops it
        self.backend.revert(snapshot)
        self.backend.release(snapshot)
        dropped = self.canon[fork_height:]
        del self.canon[fork_height:]
        depth = len(dropped)
        if fork_height < self._final:
            self.stats["final_reverted"] += self._final - fork_height
            self._final = fork_height
        self._fin_epoch = -1
        for b in dropped:
            self.orphans.append(b)
            self.stats["orphaned"] += 1
            for t in b.txs:
                self._unconfirm(t, depth)
        slot, in_turn = self._slot, self._in_turn
        for when, turn, s in blocks:
            self._slot, self._in_turn = s, turn
            block = self._execute(producer, self._select(producer, when), when, stamp_at=when)
            block.published = self.env.now
            self._append(block)
        self._slot, self._in_turn = slot, in_turn
        self._note_reorg(depth)
        return depth

    def _note_reorg(self, depth: int) -> None:
        self.reorg_depths.append(depth)
        self.stats["reorgs"] += 1
        self.stats["max_reorg_depth"] = max(self.stats["max_reorg_depth"], depth)

    def finish_deferred(self, txs: Iterable[SimTx]) -> None:
        """Write the rows held back while an attacker's branch could still remove them."""
        for t in txs:
            if t.block is not None and max(DEPTHS) in t.confirmed and (
                    not self._has_finality or t.final_at is not None):
                self._maybe_finish(t)

    def _resolve_contest(self, competitor_wins: float) -> None:
        """The block after a contested one decides: keep it, or reorganise onto a competitor."""
        assert self.backend is not None
        loser = self._contested
        self._contested = None
        assert loser is not None and loser.snapshot is not None
        if loser is not self.canon[-1] or self.rng.random() >= competitor_wins:
            self.backend.release(loser.snapshot)
            return
        # reorg: drop the contested block, execute the competitor at the same height
        self.backend.revert(loser.snapshot)
        self.backend.release(loser.snapshot)
        self.canon.pop()
        self.orphans.append(loser)
        self.stats["orphaned"] += 1
        self._note_reorg(1)
        self._final = min(self._final, len(self.canon))
        self._fin_epoch = -1
        for t in loser.txs:
            self._unconfirm(t)
        if self.profile.consensus == "pos":
            return  # the next proposer simply builds on the parent (a missed block)
        others = [p for p in self.producers if p.name != loser.producer] or self.producers
        rival = self.rng.choice(others)
        # the rival built its own template: most of what the loser had, in its own order
        in_loser = {x.hash for x in loser.txs}
        dropped: set[str] = set()
        keep = []
        for t in self._select(rival, loser.time):
            if t.sender in dropped:
                continue  # keep each sender's nonces contiguous
            if t.hash in in_loser or self.rng.random() < 0.5:
                keep.append(t)
            else:
                dropped.add(t.sender)
        block = self._execute(rival, keep, loser.time)
        self._append(block)

    def _unconfirm(self, t: SimTx, depth: int = 1) -> None:
        self.pending[t.hash] = t
        t.block = None
        t.receipt = None
        t.reorged += 1
        t.reorg_depth = max(t.reorg_depth, depth)
        self.stats["reorged_txs"] += 1
        if t.confirmed:
            t.acted_on_orphan += 1
        t.confirmed.clear()
        t.final_at = None

    def _seen(self, block: SimBlock, region: str) -> float:
        t = block.seen.get(region)
        if t is None:
            delay = self.network.block_delay(block.region, region, self.rng)
            t = self.network.deliver_at(block.region, region, max(block.time, self.env.now), delay)
            block.seen[region] = t
        return t

    def _append(self, block: SimBlock) -> None:
        self.canon.append(block)
        self.stats["blocks"] += 1
        head = block.height
        has_fin = self._has_finality
        for depth in DEPTHS:
            h = head - depth + 1
            if h < 1:
                continue
            for t in self.canon[h - 1].txs:
                if depth in t.confirmed:
                    continue
                seen = self.network.node_up_at(t.participant.name, self._seen(block,
                                                                               t.participant.region))
                t.confirmed[depth] = seen
                for ev in t.waiters.pop(depth, []):
                    self._fire_at(ev, seen, t)
                if depth == max(DEPTHS):  # final already when finality is shallower
                    self._maybe_finish(t, not has_fin or t.final_at is not None)
        # keep memory bounded: transactions deeper than any depth still tracked are done (but
        # not those an attacker's private branch could still take out of the chain)
        keep = self._keep
        atk = self.attacker
        if head > keep and (atk is None or not atk.holds(head - keep)):
            self.canon[head - keep - 1].txs = []
        if has_fin:
            if self._fin_delay is not None:
                f = final_height(self.profile, self.canon)  # the delay rule (binary search)
            elif self._fin_depth is not None:
                f = head - self._fin_depth + 1
            elif self.profile.consensus == "pos":
                # the finalised bound moves only when the head enters a new epoch
                epoch = block.slot // self.profile.epoch_slots
                if epoch == self._fin_epoch:
                    return
                self._fin_epoch = epoch
                share = atk.share if atk is not None and atk.withhold_attestations else 0.0
                f = final_height(self.profile, self.canon, share)
            else:
                f = final_height(self.profile, self.canon)
            for h in range(max(self._final + 1, f - keep + 1), f + 1):
                for t in self.canon[h - 1].txs:
                    if t.final_at is None:
                        t.final_at = self._seen(block, t.participant.region)
                        self._maybe_finish(t, max(DEPTHS) in t.confirmed)
            self._final = max(self._final, f)

    def is_final(self, height: int) -> bool:
        """Whether the canonical block at ``height`` is final (the chain's rule)."""
        return 1 <= height <= self._final

    def _fire_at(self, ev: simpy.Event, when: float, value: Any) -> None:
        def fire(_: simpy.Event) -> None:
            ev.succeed(value)

        self.env.timeout(max(0.0, when - self.env.now)).callbacks.append(fire)

    def _maybe_finish(self, t: SimTx, ready: bool = True) -> None:
        """Write the row once the deepest tracked depth (and finality, if any) is reached."""
        if t.done or not ready:
            return
        atk = self.attacker
        if atk is not None and t.block is not None and atk.holds(t.block.height):
            atk.deferred.append(t)  # a private branch may still take it out: wait
            return
        t.done = True
        self.monitor.record(self, t)
        self.txs.pop(t.hash, None)

    # -- running ------------------------------------------------------------------------------
    def run(self, until: float, drain: bool = True, max_drain_s: float | None = None) -> None:
        """Advance simulated time to ``until`` seconds.

        ``drain=True`` (default): then stop accepting calls (actors calling :meth:`send` wait
        forever) and keep producing blocks until every transaction submitted so far has its
        row written (confirmed at the deepest tracked depth and final), so no measurement is
        censored by the end of the run; gives up after ``max_drain_s`` more simulated seconds
        (default: 50 times the time to finality, at least one hour) and leaves the rest to
        :meth:`finish`, which writes them with the missing times as None.  ``drain=False``
        stops exactly at ``until`` (in-flight rows are written by :meth:`finish`, censored).
        """
        if not self._started:
            raise RuntimeError("call World.setup() before World.run()")
        if until > self.env.now:
            self.env.run(until=until)
        if not drain:
            return
        self._closed = True
        p = self.profile
        horizon = max_drain_s if max_drain_s is not None else max(
            3600.0, 50 * p.block_time * (self._keep + 1) + 50 * (p.finality_delay or 0.0))
        stop = self.env.now + horizon
        step = p.block_time
        while self.txs and self.env.now < stop:
            self.env.run(until=min(stop, self.env.now + step))
            step = min(step * 2, 64 * p.block_time)

    def finish(self) -> None:
        """Write the rows of transactions still in flight, then close the monitor."""
        for t in list(self.txs.values()):
            self._maybe_finish(t)
        self.monitor.close()


def _type2_nonce_tip_gas(raw: bytes) -> tuple[int, int, int]:
    """Nonce, priority fee and gas limit of a type-2 transaction, read from its RLP prefix
    (fields 1, 2 and 4 of ``[chain_id, nonce, tip, max_fee, gas, ...]``) without decoding the
    rest: the engine decodes and checks the whole transaction when the block is built."""
    try:
        pos = rlp_walk(raw, 1)[0]  # first field of the list
        out = []
        for i in range(5):
            start, end = rlp_walk(raw, pos)
            if i in (1, 2, 4):
                out.append(int.from_bytes(raw[start:end], "big"))
            pos = end
    except IndexError:
        pos = len(raw) + 1
    if pos > len(raw):
        raise EngineError("malformed transaction: truncated RLP")
    return out[0], out[1], out[2]


#: The engine's own block gas limit: big enough for set-up deployments.  The profile's block gas
#: limit is enforced by the world's block building (``World._select``).
ENGINE_GAS_LIMIT = 30_000_000


def _make_engine(engine: str, funded: list[str], profile: ChainProfile,
                 rpc_url: str | None) -> ChainBackend:
    gas_limit = max(profile.block_gas_limit, ENGINE_GAS_LIMIT)
    try:
        from proml_sim.chain.engines import make_backend
    except ImportError:  # engines module not present: the py-evm engine only
        if engine != "pyevm":
            raise ValueError(f"unknown engine {engine!r}; this build has only 'pyevm'") from None
        from proml_sim.chain import PyEVMBackend

        return PyEVMBackend(funded=funded, gas_limit=gas_limit)
    backend: ChainBackend = make_backend(engine, funded=funded, rpc_url=rpc_url,
                                         gas_limit=gas_limit)
    return backend

