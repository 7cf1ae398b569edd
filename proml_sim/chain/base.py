"""The chain-engine interface: value types and the :class:`ChainBackend` protocol.

Engines (``PyEVMBackend``...) implement :class:`ChainBackend`; everything above the chain layer
(node, sim, threats) talks to this interface only.  The model is an Ethereum execution client
with an explicit block producer:

* :meth:`ChainBackend.submit` takes a *signed* raw transaction into a pending pool after checking
  it, the way a node's mempool would;
* :meth:`ChainBackend.produce_block` builds one real block from that pool at a timestamp the
  caller chooses (a simulator drives time; nothing is mined behind its back);
* reads (:meth:`~ChainBackend.call`, balances, receipts, logs) see the latest produced block.

Addresses are EIP-55 checksum strings; hashes and raw data are ``bytes``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

__all__ = ["BlockInfo", "CallResult", "ChainBackend", "Log", "Receipt"]


@dataclass(frozen=True, slots=True)
class Log:
    """One event log, as included in a block."""

    address: str
    """Checksum address of the emitting contract."""
    topics: tuple[bytes, ...]
    """32-byte topics; ``topics[0]`` is the event signature hash for non-anonymous events."""
    data: bytes
    block_number: int
    tx_hash: bytes
    tx_index: int
    """Position of the emitting transaction in its block."""
    log_index: int
    """Position of this log among all logs of its block."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """Outcome of a transaction included in a block."""

    tx_hash: bytes
    block_number: int
    block_hash: bytes
    block_timestamp: int
    tx_index: int
    sender: str
    to: str | None
    """``None`` for a contract creation."""
    nonce: int
    contract_address: str | None
    """Address of the created contract (creation transactions that succeeded), else ``None``."""
    status: bool
    """``True`` if execution succeeded, ``False`` if it reverted or ran out of gas."""
    gas_used: int
    """Gas charged for *this* transaction (after refunds and the EIP-7623 floor)."""
    cumulative_gas_used: int
    """Gas used by this and all earlier transactions of the block."""
    effective_gas_price: int
    """Price paid per gas: ``min(max_fee, base_fee + priority_fee)``."""
    logs: tuple[Log, ...]
    output: bytes
    """Return data on success, raw revert data on failure."""
    revert_reason: str | None
    """Decoded ``Error(string)`` message of a revert, if there is one."""


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """Header facts about one block."""

    number: int
    hash: bytes
    parent_hash: bytes
    timestamp: int
    gas_used: int
    gas_limit: int
    base_fee: int
    tx_hashes: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class CallResult:
    """Result of a read-only call (nothing is committed)."""

    success: bool
    output: bytes
    """Return data on success, raw revert data on failure."""
    gas_used: int
    """Gas the call would be charged as a transaction (intrinsic gas included, after refunds)."""
    revert_reason: str | None


class ChainBackend(ABC):
    """An EVM chain whose blocks are produced on request.

    Implementations must be deterministic: the same construction arguments and the same sequence
    of calls give the same block hashes.  Nothing happens between calls (no automining, no wall
    clock).
    """

    name: str
    """Short engine name for reports (``"py-evm"``...)."""
    chain_id: int
    """EIP-155 chain id; transactions signed for another chain are rejected."""
    mines_at_timestamp: bool = True
    """Whether :meth:`produce_block` takes a ``timestamp`` (False for a JSON-RPC node that
    mines on its own schedule: a caller then passes none)."""

    # -- transactions -------------------------------------------------------------------------
    @abstractmethod
    def submit(self, raw_tx: bytes) -> bytes:
        """Put a signed raw transaction into the pending pool and return its hash.

        Accepts EIP-1559 (type 2) and legacy transactions.  The transaction is decoded and its
        sender recovered from the signature here; it is rejected at once with
        :class:`~proml_sim.errors.EngineError` naming the problem when: the encoding or the
        signature is invalid, it is signed for another chain id, its nonce is below the sender's
        confirmed nonce or equal to one already pending (no replacement), its gas limit is below
        the intrinsic gas or above the block gas limit, or the sender's balance cannot pay
        ``gas * max_fee + value``.  Nothing executes until :meth:`produce_block`.
        """

    @abstractmethod
    def pending(self) -> tuple[bytes, ...]:
        """Hashes of the transactions waiting in the pool, in arrival order."""

    @abstractmethod
    def produce_block(
        self, timestamp: int | None = None, *, max_txs: int | None = None
    ) -> BlockInfo:
        """Build, execute and append one block from the pending pool; return its header facts.

        Selection follows Ethereum block builders: highest effective priority fee
        (``min(max_priority_fee, max_fee - base_fee)``) first, ties by arrival; transactions of
        one sender always run in nonce order, so a block may hold many transactions of one
        sender.  A transaction is included only if its gas limit fits in the gas the block has
        left (``gas_used_so_far + tx.gas <= gas_limit``); one that does not fit, the rest of its
        sender's queue, transactions whose nonce follows a gap, and transactions whose max fee is
        below the base fee stay pending for a later block.  At most ``max_txs`` transactions are
        included when given.  ``timestamp`` must exceed the parent's; it defaults to parent + 12.
        Empty blocks are allowed.
        """

    @abstractmethod
    def receipt(self, tx_hash: bytes) -> Receipt | None:
        """The receipt of an included transaction, ``None`` if it is pending or unknown."""

    # -- reads at the latest block --------------------------------------------------------------
    @abstractmethod
    def call(
        self, to: str | None, data: bytes, *, sender: str | None = None, value: int = 0
    ) -> CallResult:
        """Execute a message at the latest state without committing anything.

        No signature is needed; ``sender`` defaults to the zero address.  Gas is not paid for
        (gas price 0) but is limited to the block gas limit.  ``to=None`` runs ``data`` as
        init code.
        """

    @abstractmethod
    def estimate_gas(self, sender: str, to: str | None, data: bytes, value: int = 0) -> int:
        """A gas limit sufficient for this transaction at the latest state.

        The transaction is executed once; the result is the gas it consumed before refunds,
        intrinsic gas included, plus a margin for the 63/64 call rule and refund-dependent
        paths, capped at the block gas limit.  ``to=None`` estimates a contract creation.  If
        the execution fails, the revert is raised as the matching
        :class:`~proml_sim.errors.LifecycleError` when its reason names one, else as
        :class:`~proml_sim.errors.TransactionFailed`.
        """

    @abstractmethod
    def nonce(self, address: str) -> int:
        """The sender's nonce in the latest state (confirmed transactions only)."""

    @abstractmethod
    def next_nonce(self, address: str) -> int:
        """The nonce a new transaction from ``address`` should use: the confirmed nonce plus its
        pending transactions that follow on without a gap."""

    @abstractmethod
    def balance(self, address: str) -> int:
        """Balance in wei at the latest state."""

    @abstractmethod
    def code(self, address: str) -> bytes:
        """Runtime code at ``address`` (``b""`` for an externally owned account)."""

    # -- blocks and logs --------------------------------------------------------------------------
    @abstractmethod
    def head(self) -> BlockInfo:
        """The latest block."""

    @abstractmethod
    def block(self, number: int) -> BlockInfo:
        """The canonical block at ``number`` (``EngineError`` if there is none)."""

    @abstractmethod
    def logs(
        self,
        address: str | None = None,
        from_block: int = 0,
        to_block: int | None = None,
        topics: list[bytes | None] | None = None,
    ) -> list[Log]:
        """Logs of canonical blocks ``from_block..to_block`` (inclusive; ``None`` = head), in chain
        order, optionally only from ``address`` and matching ``topics`` position by position
        (``None`` at a position matches anything; a log with fewer topics does not match)."""

    # -- snapshots ------------------------------------------------------------------------------
    @abstractmethod
    def snapshot(self) -> int:
        """Remember the chain head, the state and the pending pool; return an id for
        :meth:`revert`."""

    @abstractmethod
    def revert(self, snapshot_id: int) -> None:
        """Return exactly to a snapshot: head, state, receipts, logs and pending pool.

        Snapshots taken after ``snapshot_id`` are discarded; ``snapshot_id`` itself stays valid,
        so one can branch from it several times.  An unknown id raises
        :class:`~proml_sim.errors.EngineError`.
        """

    def release(self, snapshot_id: int) -> None:  # noqa: B027 - optional, no-op default
        """Forget a snapshot that will not be reverted to (frees what keeping it costs).

        Unknown ids are ignored.  Engines without snapshot bookkeeping need not override it.
        """

    # -- fees ------------------------------------------------------------------------------------
    @abstractmethod
    def base_fee(self) -> int:
        """Base fee per gas of the *next* block (what a transaction submitted now must cover)."""

    @property
    @abstractmethod
    def gas_limit(self) -> int:
        """Block gas limit."""
