"""A :class:`ChainBackend` on revm (Rust) through ``pyrevm``, with the same pool and block producer
rules as :class:`~proml_sim.chain.pyevm.PyEVMBackend` and the same gas, receipt for receipt.

Why not pyrevm's ``message_call`` as it is: it never finalises revm's journal, so every slot and
account a call touched stays *warm* for all later calls, and the "original value" of a storage
slot (which decides SSTORE costs and refunds, EIP-2200/3529) stays the value it had at the
first call.  Gas from a sequence of raw ``message_call`` s is therefore wrong (too low).  Here
every transaction runs on a *cold* journal:

1. committed state lives in pyrevm's database layer only; the journal is empty between
   transactions;
2. the sender's up-front payment (``gas * price``) and, for calls, its nonce increment are
   written to the database; a journal checkpoint is taken; the transaction runs
   (``message_call`` / ``deploy``: intrinsic gas, EIP-2929 warm/cold accounting, refunds capped
   at 1/5, on the Cancun rules of revm 8);
3. the journal's ``state`` map (every account the transaction loaded, with balance, nonce and
   storage slots' original and present values; see :func:`_journal_changes`) is read back in
   one call, the checkpoint is reverted (which also makes everything cold again), and the changes
   are written to the database;
4. the engine applies what pyrevm's message mode leaves out: the EIP-7623 calldata floor
   (Prague), the refund of unused gas to the sender and the priority fee to the coinbase (the
   base fee is burnt), as py-evm's Prague VM does.

The property test ``tests/property/test_engines_agree.py`` checks per-transaction gas, status,
events, revert reasons and final state against py-evm (and a real node, anvil).

Differences from py-evm, none visible to the lifecycle contracts: revm 8 implements Cancun, so
Prague-only features other than the calldata floor (EIP-7702 authorisations, BLS precompiles,
EIP-2935 history storage) are absent; pyrevm's message API runs with base fee 0 in the EVM, so
the ``BASEFEE`` and ``GASPRICE`` opcodes read 0 (fees are still charged as above); ``BLOCKHASH``
does not see this engine's block hashes; transactions with a non-empty access list are refused
at submit.

Blocks: number, timestamp, EIP-1559 base fee, gas limit, gas used and the ordered transaction
hashes are real.  The block hash is ``keccak(rlp([parent_hash, number, timestamp, gas_limit,
gas_used, base_fee, keccak(tx hashes), keccak(outcomes)]))`` where an outcome is a transaction's
status byte and gas used: deterministic and chained, but **not** an Ethereum header hash (there
is no state, transaction or receipt trie root).

Signature recovery dominates :meth:`RevmBackend.submit` (decoding plus libsecp256k1, ~60 us); with
``workers=N`` :meth:`RevmBackend.submit_many` recovers senders in ``N`` worker processes, and
:meth:`RevmBackend.verify_batch` / :meth:`RevmBackend.submit_batch` let a caller overlap that
recovery with block production (a node verifies signatures while it builds).
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_canonical_address, to_checksum_address

from proml_sim.chain._txpool import (
    TX_BASE_GAS,
    BlockListReads,
    FaucetMixin,
    PendingTx,
    SnapshotBookkeeping,
    TxPool,
    decode_type2_items,
    floor_gas,
    next_base_fee,
    recover_typed_sender,
    scalar,
)
from proml_sim.chain.abi import decode_revert_reason
from proml_sim.chain.accounts import Signer, derive_private_keys
from proml_sim.chain.base import BlockInfo, CallResult, ChainBackend, Log, Receipt
from proml_sim.chain.pyevm import FAUCET_BALANCE, FAUCET_SEED
from proml_sim.chain.trie import keccak, rlp_encode_bytes, rlp_encode_list, rlp_uint
from proml_sim.errors import EngineError, TransactionFailed, lifecycle_error_from_reason

__all__ = ["RevmBackend", "VerifiedBatch", "recover_senders"]

_INSTALL_HINT = "the revm engine needs pyrevm: pip install 'pyrevm>=0.3.7,<0.4'"
_ZERO_ADDRESS = b"\x00" * 20
_ZERO_HEX = "0x" + "00" * 20
_KECCAK_EMPTY = keccak(b"")
_UINT256_MAX = 2**256 - 1
_UINT64_MAX = 2**64 - 1
_GENESIS_BASE_FEE = 1_000_000_000  # EIP-1559 initial base fee, as py-evm's London genesis
_MISSING = object()


def _pyrevm() -> Any:
    try:
        import pyrevm
    except ImportError as exc:  # pragma: no cover - pyrevm is a dependency
        raise ImportError(f"{_INSTALL_HINT} ({exc})") from exc
    return pyrevm


# ---------------------------------------------------------------------------------------------
# decoding
# ---------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Tx:
    """The fields of a signed transaction the engine executes."""

    chain_id: int | None
    nonce: int
    tip: int
    max_fee: int
    gas: int
    to: bytes  # b"" for a creation
    value: int
    data: bytes
    y_parity: int
    r: int
    s: int
    typed: bool


def _check_ranges(tx: _Tx) -> None:
    for name, v in (
        ("max_fee_per_gas", tx.max_fee),
        ("max_priority_fee_per_gas", tx.tip),
        ("gas", tx.gas),
        ("value", tx.value),
    ):
        if v > _UINT256_MAX:
            raise EngineError(f"malformed transaction: {name} does not fit in 256 bits")
    if tx.nonce >= _UINT64_MAX:
        raise EngineError("malformed transaction: nonce must be below 2**64 - 1")


def _decode(raw: bytes) -> _Tx:
    """Decode a raw type-2 or legacy transaction (no signature recovery)."""
    if not raw:
        raise EngineError("empty transaction")
    if raw[0] < 0x80:
        if raw[0] != 2:
            raise EngineError(
                f"transaction type {raw[0]} is not supported; send EIP-1559 (type 2) or legacy"
            )
        items = decode_type2_items(raw)
        if items[8] != []:
            raise EngineError(
                "the revm engine does not support access lists; send an empty access list"
            )
        to, data = items[5], items[7]
        if not isinstance(to, bytes) or len(to) not in (0, 20) or not isinstance(data, bytes):
            raise EngineError("malformed transaction: 'to' must be empty or 20 bytes, data bytes")
        tx = _Tx(
            scalar(items[0], "chain_id"),
            scalar(items[1], "nonce"),
            scalar(items[2], "max_priority_fee_per_gas"),
            scalar(items[3], "max_fee_per_gas"),
            scalar(items[4], "gas"),
            to,
            scalar(items[6], "value"),
            data,
            scalar(items[9], "y_parity"),
            scalar(items[10], "r"),
            scalar(items[11], "s"),
            True,
        )
    else:
        from eth.vm.forks.prague import PragueVM

        try:
            legacy = PragueVM.get_transaction_builder().decode(raw)
            legacy.validate()
        except Exception as exc:
            raise EngineError(f"malformed transaction: {exc}") from None
        tx = _Tx(
            legacy.chain_id,
            legacy.nonce,
            legacy.gas_price,
            legacy.gas_price,
            legacy.gas,
            legacy.to,
            legacy.value,
            legacy.data,
            0,
            legacy.r,
            legacy.s,
            False,
        )
    _check_ranges(tx)
    return tx


def _recover(raw: bytes, tx: _Tx) -> bytes:
    if tx.typed:
        return recover_typed_sender(raw, tx)
    from eth.vm.forks.prague import PragueVM

    legacy = PragueVM.get_transaction_builder().decode(raw)
    try:
        legacy.check_signature_validity()
        return bytes(legacy.get_sender())
    except Exception as exc:
        raise EngineError(f"bad signature: {exc}") from None


_Fields = tuple[Any, ...]


def recover_senders(raws: Sequence[bytes]) -> list[tuple[_Fields | None, bytes | str]]:
    """Decode raw transactions and recover their senders (the worker processes' task), per raw
    transaction: (its decoded fields, its sender or the error text of a failed recovery), or
    (None, decoding error text)."""
    out: list[tuple[_Fields | None, bytes | str]] = []
    for raw in raws:
        try:
            tx = _decode(raw)
        except EngineError as exc:
            out.append((None, str(exc)))
            continue
        fields = (
            tx.chain_id, tx.nonce, tx.tip, tx.max_fee, tx.gas, tx.to, tx.value, tx.data,
            tx.y_parity, tx.r, tx.s, tx.typed,
        )
        try:
            out.append((fields, _recover(raw, tx)))
        except EngineError as exc:
            out.append((fields, str(exc)))
    return out


def _intrinsic_gas(tx: _Tx) -> int:
    data = tx.data
    zeros = data.count(0)
    gas = TX_BASE_GAS + 4 * zeros + 16 * (len(data) - zeros)
    if not tx.to:
        gas += 32_000 + 2 * ((len(data) + 31) // 32)  # creation + EIP-3860 init code words
    return gas


@dataclass
class VerifiedBatch:
    """Raw transactions whose senders :meth:`RevmBackend.verify_batch` is recovering."""

    raws: list[bytes]
    _pending: Any
    _results: list[tuple[_Fields | None, bytes | str]] | None = None

    def results(self) -> list[tuple[_Fields | None, bytes | str]]:
        """Per raw transaction: (decoded fields or None, sender or error text); waits for the
        workers."""
        if self._results is None:
            chunks = self._pending.get() if hasattr(self._pending, "get") else self._pending
            self._results = [r for chunk in chunks for r in chunk]
        return self._results


# ---------------------------------------------------------------------------------------------
# reading revm's journal
# ---------------------------------------------------------------------------------------------
_ACCOUNT = ": Account { info: AccountInfo { balance: "
_ACCOUNT_LEN = len(_ACCOUNT)
_SLOT_RE = re.compile(
    r"(\d+): StorageSlot \{ previous_or_original_value: (\d+), present_value: (\d+) \}"
)


@dataclass(slots=True)
class _Changes:
    """What one transaction did, read from the state part of revm's journal (every account the
    transaction loaded, with its storage slots' values before and after)."""

    accounts: dict[str, tuple[int, int]]
    """hex address -> (balance, nonce) after the transaction, for every loaded account"""
    slots: dict[tuple[str, int], tuple[int, int]]
    """(hex address, slot) -> (value before, value after), for slots whose value changed"""
    created: list[str]
    destroyed: list[str]


_STATE_OPEN = "JournaledState { state: {"
_CODE_OPEN = "Some(Bytecode { bytecode: 0x"
_CODE_RAW_CLOSE = ", state: Raw })"
_INFO_CLOSE = " }, storage: {"
_STATUS = "}, status: AccountStatus("


def _journal_changes(text: str, code_length: Callable[[str], int | None] = lambda a: None
                     ) -> _Changes:
    """Parse pyrevm's ``journal_str`` (revm's ``JournaledState`` debug text) after a transaction.

    Between transactions the journal holds no contract account (every transaction runs in its
    own checkpoint, reverted afterwards), so the ``state`` map lists exactly the accounts this
    transaction loaded, each as ``0x<addr>: Account { info: AccountInfo { balance: B, nonce: N,
    code_hash: 0x<hash>, code: None | Some(Bytecode { bytecode: 0x<hex>, state: Raw }) },
    storage: {K: StorageSlot { previous_or_original_value: O, present_value: P }, ..}, status:
    AccountStatus(..) }``.  The text is walked left to right; an account's code (most of the
    text) is stepped over by its length, ``code_length(address)``, when the engine knows it
    (else searched past).
    """
    if not text.startswith(_STATE_OPEN):
        raise EngineError("unexpected pyrevm journal format (pyrevm>=0.3.7,<0.4 is supported)")
    accounts: dict[str, tuple[int, int]] = {}
    slots: dict[tuple[str, int], tuple[int, int]] = {}
    created: list[str] = []
    destroyed: list[str] = []
    _find, index, startswith = text.find, text.index, text.startswith
    pos = len(_STATE_OPEN)
    while text[pos] != "}":
        address = text[pos : pos + 42]
        if not startswith(_ACCOUNT, pos + 42):
            raise EngineError("unexpected pyrevm journal format near " + repr(text[pos : pos + 80]))
        b0 = pos + 42 + _ACCOUNT_LEN
        b1 = index(", nonce: ", b0)
        n1 = index(", code_hash: ", b1)
        accounts[address] = (int(text[b0:b1]), int(text[b1 + 9 : n1]))
        c0 = n1 + 13 + 66 + 8  # past ", code_hash: 0x<64>, code: "
        if startswith("None", c0):
            p = c0 + 4
        else:
            length = code_length(address)
            p = c0 + len(_CODE_OPEN) + 2 * length if length is not None else -1
            if p > 0 and startswith(_CODE_RAW_CLOSE, p):
                p += len(_CODE_RAW_CLOSE)
            else:  # code this engine has not stored yet (created by this transaction)
                p = index(_INFO_CLOSE, c0)
        if not startswith(_INFO_CLOSE, p):
            raise EngineError("unexpected pyrevm journal format near " + repr(text[p : p + 80]))
        p += len(_INFO_CLOSE)
        s1 = index(_STATUS, p)
        if p < s1:
            for key, old, new in _SLOT_RE.findall(text, p, s1):
                if old != new:  # canonical decimal text: equal strings, equal values
                    slots[(address, int(key))] = (int(old), int(new))
        e = index(")", s1 + 25)
        status = text[s1 + 25 : e]
        if "Created" in status:
            created.append(address)
        if "SelfDestructed" in status:
            destroyed.append(address)
        pos = e + 3  # past ") }"
        if startswith(", ", pos):
            pos += 2
    return _Changes(accounts, slots, created, destroyed)


def _created_code_length(text: str, address_hex: str) -> int:
    """Length of a created account's runtime code (revm pads analysed code)."""
    at = text.find(address_hex + ": Account {")
    ln = text.index("len: ", at) + len("len: ")
    return int(text[ln : text.index(",", ln)])


def _parse_failure(message: str) -> tuple[str, int, bytes]:
    """``("revert"|"halt"|"invalid", gas_used, output)`` from pyrevm's error text."""
    if message.startswith("Revert {"):
        g = message.index("gas_used: ") + len("gas_used: ")
        gas = int(message[g : message.index(",", g)])
        o = message.index("output: 0x") + len("output: 0x")
        end = message.index(" }", o)
        return "revert", gas, bytes.fromhex(message[o:end])
    if message.startswith("Halt {"):
        g = message.index("gas_used: ") + len("gas_used: ")
        end = g
        while end < len(message) and message[end].isdigit():
            end += 1
        return "halt", int(message[g:end]), b""
    return "invalid", 0, b""


# ---------------------------------------------------------------------------------------------
# the backend
# ---------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Outcome:
    ok: bool
    gas_used: int
    output: bytes
    logs: list[tuple[bytes, tuple[bytes, ...], bytes]]
    created: bytes | None


class RevmBackend(FaucetMixin, SnapshotBookkeeping, BlockListReads, ChainBackend):
    """revm with an explicit, deterministic block producer.  See the module docstring.

    ``workers``: worker processes that recover senders in :meth:`submit_many` and
    :meth:`verify_batch` (0 = recover in this process).
    """

    name = "revm"

    def __init__(
        self,
        *,
        funded: Iterable[str] = (),
        chain_id: int = 1337,
        gas_limit: int = 60_000_000,
        genesis_timestamp: int = 1_700_000_000,
        balance_wei: int = 10**24,
        workers: int = 0,
    ) -> None:
        pyrevm = _pyrevm()
        self._pyrevm = pyrevm
        self.chain_id = chain_id
        self._gas_limit = gas_limit
        self._workers = workers
        self._procs: Any = None
        self._evm: Any = pyrevm.EVM(
            env=pyrevm.Env(cfg=pyrevm.CfgEnv(chain_id=chain_id)),
            gas_limit=gas_limit,
            spec_id="CANCUN",
        )
        self._info = pyrevm.AccountInfo
        # committed state mirrored in Python: reads and pool checks without crossing into Rust
        self._balance: dict[bytes, int] = {}
        self._nonce: dict[bytes, int] = {}
        self._code_hash: dict[bytes, bytes] = {}
        self._code: dict[bytes, bytes] = {}
        self._code_len_hex: dict[str, int] = {}  # lowercase 0x address -> code length
        self._undo: list[tuple[Any, ...]] | None = None
        self._faucet = Signer(derive_private_keys(FAUCET_SEED, 1)[0])
        self._write_account(self._faucet.canonical_address, FAUCET_BALANCE, 0)
        for address in funded:
            self._write_account(to_canonical_address(address), balance_wei, 0)
        genesis = self._make_block(
            number=0,
            parent_hash=b"\x00" * 32,
            timestamp=genesis_timestamp,
            gas_used=0,
            base_fee=_GENESIS_BASE_FEE,
            tx_hashes=(),
            outcomes=b"",
        )
        self._blocks: list[BlockInfo] = [genesis]
        self._receipts: dict[bytes, Receipt] = {}
        self._logs: list[Log] = []
        self._pool = TxPool()
        self._init_snapshots()
        self._env_block: tuple[int, int, int] | None = None
        self._checksums: dict[bytes, str] = {}

    # -- helpers --------------------------------------------------------------------------------
    def _code_length(self, address_hex: str) -> int | None:
        return self._code_len_hex.get(address_hex)

    def _cs(self, address: bytes) -> str:
        cs = self._checksums.get(address)
        if cs is None:
            cs = self._checksums[address] = to_checksum_address(address)
        return cs

    def _write_account(self, address: bytes, balance: int, nonce: int) -> None:
        """Commit an account's balance and nonce (code unchanged) to revm's database."""
        if self._undo is not None:
            self._undo.append(
                ("a", address, self._balance.get(address, _MISSING), self._nonce.get(address, 0))
            )
        self._balance[address] = balance
        self._nonce[address] = nonce
        code_hash = self._code_hash.get(address)
        if code_hash is None:
            info = self._info(balance=balance, nonce=nonce)
        else:
            info = self._info(balance=balance, nonce=nonce, code_hash=code_hash)
        self._evm.insert_account_info("0x" + address.hex(), info)

    def _set_block_env(self, number: int, timestamp: int, base_fee: int) -> None:
        key = (number, timestamp, base_fee)
        if self._env_block != key:
            self._evm.set_block_env(
                self._pyrevm.BlockEnv(
                    number=number,
                    coinbase=_ZERO_HEX,
                    timestamp=timestamp,
                    difficulty=0,
                    prevrandao=b"\x00" * 32,
                    basefee=base_fee,
                    gas_limit=self._gas_limit,
                )
            )
            self._env_block = key

    def _make_block(
        self,
        *,
        number: int,
        parent_hash: bytes,
        timestamp: int,
        gas_used: int,
        base_fee: int,
        tx_hashes: tuple[bytes, ...],
        outcomes: bytes,
    ) -> BlockInfo:
        header = rlp_encode_list(
            rlp_encode_bytes(parent_hash)
            + rlp_uint(number)
            + rlp_uint(timestamp)
            + rlp_uint(self._gas_limit)
            + rlp_uint(gas_used)
            + rlp_uint(base_fee)
            + rlp_encode_bytes(keccak(b"".join(tx_hashes)))
            + rlp_encode_bytes(keccak(outcomes))
        )
        return BlockInfo(
            number=number,
            hash=keccak(header),
            parent_hash=parent_hash,
            timestamp=timestamp,
            gas_used=gas_used,
            gas_limit=self._gas_limit,
            base_fee=base_fee,
            tx_hashes=tx_hashes,
        )

    # -- transactions ---------------------------------------------------------------------------
    def submit(self, raw_tx: bytes) -> bytes:
        raw_tx = bytes(raw_tx)
        tx = _decode(raw_tx)
        self._check_chain_id(tx)
        return self._admit(raw_tx, tx, _recover(raw_tx, tx))

    def _check_chain_id(self, tx: _Tx) -> None:
        if tx.chain_id is None:
            raise EngineError(
                "legacy transaction without an EIP-155 chain id (replayable); sign it with "
                f"chain id {self.chain_id}"
            )
        if tx.chain_id != self.chain_id:
            raise EngineError(
                f"transaction is signed for chain id {tx.chain_id}, this chain is {self.chain_id}"
            )

    def _admit(self, raw: bytes, tx: _Tx, sender: bytes) -> bytes:
        tx_hash = keccak(raw)
        if tx_hash in self._pool.entries or tx_hash in self._receipts:
            raise EngineError(f"transaction 0x{tx_hash.hex()} is already known")
        self._pool.admit(
            tx_hash,
            raw,
            tx,
            sender,
            nonce=tx.nonce,
            gas=tx.gas,
            max_fee=tx.max_fee,
            tip=tx.tip,
            typed=tx.typed,
            value=tx.value,
            data=tx.data,
            intrinsic=_intrinsic_gas(tx),
            gas_limit=self._gas_limit,
            confirmed_nonce=self._confirmed_nonce,
            balance=self._balance_of,
            checksum=self._cs,
        )
        return tx_hash

    def _confirmed_nonce(self, sender: bytes) -> int:
        return self._nonce.get(sender, 0)

    def _balance_of(self, sender: bytes) -> int:
        return self._balance.get(sender, 0)

    def verify_batch(self, raws: Sequence[bytes]) -> VerifiedBatch:
        """Start recovering the senders of ``raws`` in the worker processes and return at once;
        :meth:`submit_batch` admits them.  Without workers the recovery runs here, now."""
        raws = [bytes(r) for r in raws]
        if self._workers <= 0 or len(raws) < 2:
            return VerifiedBatch(raws, [recover_senders(raws)])
        if self._procs is None:
            ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
            self._procs = ctx.Pool(self._workers)
        size = -(-len(raws) // self._workers)
        chunks = [raws[i : i + size] for i in range(0, len(raws), size)]
        return VerifiedBatch(raws, self._procs.map_async(recover_senders, chunks))

    def submit_batch(self, batch: VerifiedBatch) -> list[bytes]:
        """Admit a :meth:`verify_batch` result, in order, each exactly as :meth:`submit` would
        (same checks in the same order, same errors).  The first rejected transaction raises
        :class:`EngineError` naming its index; the ones before it stay admitted."""
        hashes = []
        admit = self._admit
        for i, (raw, (fields, sender)) in enumerate(
            zip(batch.raws, batch.results(), strict=True)
        ):
            try:
                if fields is None:
                    raise EngineError(str(sender))
                tx = _Tx(*fields)
                if tx.chain_id != self.chain_id:
                    self._check_chain_id(tx)
                if isinstance(sender, str):
                    raise EngineError(sender)
                hashes.append(admit(raw, tx, sender))
            except EngineError as exc:
                raise EngineError(f"transaction {i} of the batch: {exc}") from None
        return hashes

    def submit_many(self, raws: Sequence[bytes]) -> list[bytes]:
        """:meth:`submit` for several transactions; senders are recovered in the worker
        processes when the backend has some."""
        return self.submit_batch(self.verify_batch(raws))

    def close(self) -> None:
        """Stop the worker processes (if any)."""
        if self._procs is not None:
            self._procs.terminate()
            self._procs.join()
            self._procs = None

    def __del__(self) -> None:
        if getattr(self, "_procs", None) is not None:
            self.close()

    def pending(self) -> tuple[bytes, ...]:
        return tuple(self._pool.entries)

    # -- execution ----------------------------------------------------------------------------
    def _run(
        self, sender: bytes, tx: _Tx, gas: int
    ) -> tuple[str, int, int, bytes, list[Any], str | None]:
        """Execute on the journal: (kind, gas used after refunds, refunded, output, logs,
        error text or None).  ``kind`` is ok/revert/halt/invalid.  The caller reverts.
        pyrevm's message mode charges no fees: :meth:`_execute` does."""
        evm = self._evm
        try:
            if tx.to:
                out = evm.message_call(
                    "0x" + sender.hex(),
                    "0x" + tx.to.hex(),
                    calldata=tx.data,
                    value=tx.value,
                    gas=gas,
                    gas_price=0,
                )
            else:
                evm.deploy("0x" + sender.hex(), tx.data, value=tx.value, gas=gas, gas_price=0)
                out = b""
        except RuntimeError as exc:
            kind, used, output = _parse_failure(str(exc))
            if kind == "invalid":
                return kind, 0, 0, b"", [], str(exc)
            return kind, used, 0, output, [], None
        r = evm.result
        return "ok", r.gas_used, r.gas_refunded, bytes(out), r.logs, None

    def _execute(self, entry: PendingTx, base_fee: int) -> _Outcome | None:
        """Run one pool transaction as a real transaction and commit its effects; ``None`` if
        it is not valid in the current state (it then stays pending)."""
        tx: _Tx = entry.tx
        sender = entry.sender
        if self._balance.get(sender, 0) < tx.gas * tx.max_fee + tx.value:
            return None  # e.g. earlier transactions of the block spent the balance
        price = min(tx.max_fee, base_fee + tx.tip) if tx.typed else tx.max_fee
        undo_at = len(self._undo) if self._undo is not None else 0
        # py-evm order: charge gas * price and (calls) bump the nonce before execution; a
        # creation's nonce is bumped by revm's create frame, which derives the address from it
        balance, nonce = self._balance.get(sender, 0), self._nonce.get(sender, 0)
        self._write_account(sender, balance - tx.gas * price, nonce + 1 if tx.to else nonce)
        evm = self._evm
        checkpoint = evm.snapshot()
        kind, used, _, output, raw_logs, _ = self._run(sender, tx, tx.gas)
        if kind == "invalid":
            evm.revert(checkpoint)
            if self._undo is not None:
                self._undo_to(undo_at)
            else:
                self._write_account(sender, balance, nonce)
            return None
        # read what changed while the journal still holds it, then revert (everything cold)
        text = evm.journal_str
        changes = _journal_changes(text, self._code_length)
        sender_hex = "0x" + sender.hex()
        if sender_hex not in changes.accounts:  # revm always loads the caller
            evm.revert(checkpoint)
            raise EngineError("unexpected pyrevm journal: the sender's account is not in it")
        created_infos = {}
        for a in changes.created:
            code = evm.get_code(a) or b""
            code = bytes(code[: _created_code_length(text, a)]) if code else b""
            created_infos[a] = code
        evm.revert(checkpoint)

        gas_used = max(used, floor_gas(tx.data))
        created = None
        accounts = changes.accounts
        for address_hex in changes.destroyed:
            address = bytes.fromhex(address_hex[2:])
            accounts.pop(address_hex, None)
            self._code_hash.pop(address, None)
            self._code.pop(address, None)
            self._code_len_hex.pop(address_hex, None)
            self._write_account(address, 0, 0)
        # what message mode leaves out: the refund of unused gas (after the EIP-7623 floor)
        balance, nonce = accounts[sender_hex]
        accounts[sender_hex] = (balance + (tx.gas - gas_used) * price, nonce)
        for address_hex, (balance, nonce) in accounts.items():
            address = bytes.fromhex(address_hex[2:])
            if address_hex in created_infos:
                created = address
                code = created_infos[address_hex]
                if code:
                    self._install_code(address, address_hex, balance, nonce, code)
                    continue
            if balance != self._balance.get(address, 0) or nonce != self._nonce.get(address, 0):
                self._write_account(address, balance, nonce)
        tip_total = gas_used * (price - base_fee)  # the base fee is burnt
        if tip_total:
            self._write_account(
                _ZERO_ADDRESS,
                self._balance.get(_ZERO_ADDRESS, 0) + tip_total,
                self._nonce.get(_ZERO_ADDRESS, 0),
            )
        if changes.slots:
            writes = [(a, k, new) for (a, k), (_, new) in changes.slots.items()]
            if self._undo is not None:
                for (a, k), (old, _) in changes.slots.items():
                    self._undo.append(("s", a, k, old))
            self._write_storage(writes)
        logs = []
        if kind == "ok":
            for log in raw_logs:
                topics, data = log.data
                logs.append((bytes.fromhex(log.address[2:]), tuple(topics), bytes(data)))
            if created is not None:
                output = self._code.get(created, b"")
        else:
            created = None
        return _Outcome(kind == "ok", gas_used, output, logs, created)

    def _install_code(
        self, address: bytes, address_hex: str, balance: int, nonce: int, code: bytes
    ) -> None:
        """Commit a created account with its code (stored raw: revm's debug text of raw code
        has a known length, which :func:`_journal_changes` steps over)."""
        code_hash = keccak(code)
        if self._undo is not None:
            old = self._balance.get(address, _MISSING)
            self._undo.append(("a", address, old, self._nonce.get(address, 0)))
            self._undo.append(("c", address))
        self._code_hash[address] = code_hash
        self._code[address] = code
        self._balance[address] = balance
        self._nonce[address] = nonce
        self._code_len_hex[address_hex] = len(code)
        self._evm.insert_account_info(
            address_hex, self._info(balance=balance, nonce=nonce, code_hash=code_hash, code=code)
        )

    def _write_storage(self, writes: list[tuple[str, int, int]]) -> None:
        """Commit storage slots to revm's database.  pyrevm's ``insert_account_storage`` writes
        the database only for an account the journal has not loaded, and loads it (where it
        would stay warm, and where later writes would land in the journal instead): so each
        write runs inside its own checkpoint, reverted at once, after the account writes."""
        evm = self._evm
        snapshot, insert, revert = evm.snapshot, evm.insert_account_storage, evm.revert
        for address_hex, key, value in writes:
            checkpoint = snapshot()
            insert(address_hex, key, value)
            revert(checkpoint)

    def produce_block(
        self, timestamp: int | None = None, *, max_txs: int | None = None
    ) -> BlockInfo:
        parent = self._blocks[-1]
        if timestamp is None:
            timestamp = parent.timestamp + 12
        if timestamp <= parent.timestamp:
            raise EngineError(
                f"block timestamp {timestamp} must be greater than the parent's "
                f"({parent.timestamp}, block {parent.number})"
            )
        number = parent.number + 1
        base_fee = self.base_fee()
        gas_limit = self._gas_limit
        self._set_block_env(number, timestamp, base_fee)
        limit = len(self._pool.entries) if max_txs is None else max_txs
        selection = self._pool.select(base_fee, self._confirmed_nonce)
        included: list[PendingTx] = []
        results: list[tuple[PendingTx, _Outcome, int]] = []
        gas_used = 0
        outcomes = []
        while len(included) < limit and gas_limit - gas_used >= TX_BASE_GAS:
            entry = selection.pop()
            if entry is None:
                break
            if gas_used + entry.gas > gas_limit:
                continue  # does not fit: this sender waits for the next block
            outcome = self._execute(entry, base_fee)
            if outcome is None:
                continue
            gas_used += outcome.gas_used
            included.append(entry)
            results.append((entry, outcome, gas_used))
            status = b"\x01" if outcome.ok else b"\x00"
            outcomes.append(status + outcome.gas_used.to_bytes(8, "big"))
            selection.included(entry)
        info = self._make_block(
            number=number,
            parent_hash=parent.hash,
            timestamp=timestamp,
            gas_used=gas_used,
            base_fee=base_fee,
            tx_hashes=tuple(e.hash for e in included),
            outcomes=b"".join(outcomes),
        )
        self._blocks.append(info)
        self._index_block(info, results, base_fee)
        self._pool.remove_block(included, selection.cursor)
        return info

    def _index_block(
        self, info: BlockInfo, results: list[tuple[PendingTx, _Outcome, int]], base_fee: int
    ) -> None:
        number, block_hash, ts = info.number, info.hash, info.timestamp
        cs = self._cs
        log_index = 0
        receipts = self._receipts
        all_logs = self._logs
        for tx_index, (entry, outcome, cumulative) in enumerate(results):
            tx: _Tx = entry.tx
            logs = []
            for address, topics, data in outcome.logs:
                logs.append(Log(cs(address), topics, data, number, entry.hash, tx_index, log_index))
                log_index += 1
            all_logs.extend(logs)
            ok = outcome.ok
            output = outcome.output
            receipts[entry.hash] = Receipt(
                tx_hash=entry.hash,
                block_number=number,
                block_hash=block_hash,
                block_timestamp=ts,
                tx_index=tx_index,
                sender=cs(entry.sender),
                to=cs(tx.to) if tx.to else None,
                nonce=entry.nonce,
                contract_address=cs(outcome.created) if outcome.created else None,
                status=ok,
                gas_used=outcome.gas_used,
                cumulative_gas_used=cumulative,
                effective_gas_price=min(tx.max_fee, base_fee + tx.tip) if tx.typed else tx.max_fee,
                logs=tuple(logs),
                output=output,
                revert_reason=None if ok else decode_revert_reason(output),
            )

    def receipt(self, tx_hash: bytes) -> Receipt | None:
        return self._receipts.get(bytes(tx_hash))

    # -- reads ----------------------------------------------------------------------------------
    def _simulate(
        self, sender: str | None, to: str | None, data: bytes, value: int
    ) -> tuple[str, int, int, bytes]:
        head = self._blocks[-1]
        self._set_block_env(head.number + 1, head.timestamp + 12, 0)
        sender_b = to_canonical_address(sender) if sender else _ZERO_ADDRESS
        tx = _Tx(
            self.chain_id,
            0,
            0,
            0,
            self._gas_limit,
            to_canonical_address(to) if to else b"",
            value,
            bytes(data),
            0,
            0,
            0,
            True,
        )
        evm = self._evm
        checkpoint = evm.snapshot()
        try:
            kind, used, refunded, output, _, error = self._run(sender_b, tx, self._gas_limit)
        finally:
            evm.revert(checkpoint)
        if kind == "invalid":
            raise EngineError(f"cannot execute call: {error}")
        return kind, used, refunded, output

    def call(
        self, to: str | None, data: bytes, *, sender: str | None = None, value: int = 0
    ) -> CallResult:
        kind, used, _, output = self._simulate(sender, to, data, value)
        ok = kind == "ok"
        gas = max(used, floor_gas(bytes(data)))
        return CallResult(ok, output, gas, None if ok else decode_revert_reason(output))

    def estimate_gas(self, sender: str, to: str | None, data: bytes, value: int = 0) -> int:
        kind, used, refunded, output = self._simulate(sender, to, data, value)
        if kind != "ok":
            reason = decode_revert_reason(output)
            if reason is not None:
                err = lifecycle_error_from_reason(reason)
                if err is not None:
                    raise err
            what = reason or ("out of gas or invalid" if kind == "halt" else "reverted")
            raise TransactionFailed(f"gas estimation failed: the transaction would revert ({what})")
        consumed = used + refunded + max(floor_gas(bytes(data)) - used, 0)
        # margin: 63/64 rule for nested calls and refund/sentry-dependent paths
        return int(min(self._gas_limit, consumed + consumed // 8 + 5_000))

    def nonce(self, address: str) -> int:
        return self._nonce.get(to_canonical_address(address), 0)

    def next_nonce(self, address: str) -> int:
        return self._pool.next_nonce(to_canonical_address(address), self._confirmed_nonce)

    def balance(self, address: str) -> int:
        return self._balance.get(to_canonical_address(address), 0)

    def code(self, address: str) -> bytes:
        return self._code.get(to_canonical_address(address), b"")

    # -- snapshots ------------------------------------------------------------------------------
    def _state_mark(self) -> Any:
        if self._undo is None:
            self._undo = []
        return len(self._undo)

    def _state_stop(self) -> None:
        self._undo = None  # nothing left to roll back to: stop journaling

    def _state_rollback(self, mark: Any) -> None:
        self._undo_to(mark)

    def _undo_to(self, position: int) -> None:
        undo = self._undo
        assert undo is not None
        slots: dict[tuple[str, int], int] = {}
        accounts: dict[bytes, tuple[Any, int]] = {}
        while len(undo) > position:  # newest first: the oldest value of each key wins
            entry = undo.pop()
            if entry[0] == "s":
                slots[(entry[1], entry[2])] = entry[3]
            elif entry[0] == "c":
                self._code_hash.pop(entry[1], None)
                self._code.pop(entry[1], None)
                self._code_len_hex.pop("0x" + entry[1].hex(), None)
            else:
                accounts[entry[1]] = (entry[2], entry[3])
        evm, info = self._evm, self._info
        for address, (old_balance, old_nonce) in accounts.items():
            if old_balance is _MISSING:
                self._balance.pop(address, None)
                self._nonce.pop(address, None)
                old_balance = 0
            else:
                self._balance[address] = old_balance
                self._nonce[address] = old_nonce
            code_hash = self._code_hash.get(address, _KECCAK_EMPTY)
            acct = info(balance=old_balance, nonce=old_nonce, code_hash=code_hash)
            evm.insert_account_info("0x" + address.hex(), acct)
        if slots:
            self._write_storage([(a, k, v) for (a, k), v in slots.items()])

    # -- fees -----------------------------------------------------------------------------------
    def base_fee(self) -> int:
        head = self._blocks[-1]
        return next_base_fee(head.base_fee, head.gas_used, head.gas_limit)

    @property
    def gas_limit(self) -> int:
        return self._gas_limit


def _block_number(log: Log) -> int:
    return log.block_number
