"""A :class:`ChainBackend` running py-evm (Prague rules) in process, with its own block producer.

Why not eth-tester: with automine off it keeps one pending transaction per sender and silently
drops the rest.  Here a pending pool feeds :meth:`PyEVMBackend.produce_block`, which selects
transactions the way an Ethereum builder does and executes them with py-evm's ``PragueVM`` state
machinery, one real block at a time: every transaction is signed, its sender recovered from the
signature, it is executed by py-evm, and the block carries real transaction, receipt and state
roots (it is persisted in py-evm's chain database and readable back through py-evm).

Where the time went and what changed (1,000 transactions of a small contract in one block):

* transaction and receipt tries: py-evm inserts items one by one into a ``HexaryTrie``; we build
  the same tries in one pass (:mod:`proml_sim.chain.trie`), ~50x faster, same nodes;
* per-transaction header copies, receipt objects and ``validate_receipt``: we keep the block's
  gas and bloom in locals and RLP-encode receipts directly (receipt encodings are checked
  against py-evm's in the tests, and whole blocks against stock py-evm's block hashes);
* sender recovery ran at execution (``eth_keys``, plus a re-encoding for the signing hash); it now
  runs once at :meth:`~PyEVMBackend.submit` with libsecp256k1 on the signing payload sliced from
  the raw bytes, and the recovered sender and hash are handed to py-evm's transaction object;
* py-evm's executor formats debug-log f-strings (hex of the whole contract code, ``repr`` of the
  transaction) even when debug logging is off: our executor subclass is the same logic without
  them;
* ``block.copy`` deep-copies every transaction (several times per block): the block object is
  built once, with its final header;
* account writes (``Account.copy`` deep-copies, pyrlp encodes) are done directly; type-2
  transactions are decoded without pyrlp's sedes layer (pyrlp still checks canonical RLP);
* the interpreter (:class:`_Computation`): same opcode functions and gas costs, with gas charged
  inline, ``PUSHn`` inlined, memory growth/writes, stack pops and SHA3 on cheaper paths, and the
  JUMPDEST analysis of a code shared across the transactions that run it.

Every change is a subclass of py-evm's Prague classes used only by this engine (no global patch),
and ``tests/unit/chain/test_pyevm.py`` replays blocks through stock py-evm and compares hashes.

Genesis funding: pass the accounts to fund as ``funded=``.  A faucet account with a fixed,
published key (:data:`FAUCET_SEED`) is also funded, so later accounts can be paid with
:meth:`PyEVMBackend.faucet_send` (an ordinary transfer transaction, included in the next block).

Blocks follow py-evm's ``MiningChain.mine_all``: like it, they do not run the Cancun/Prague
system calls (EIP-4788 beacon root, EIP-2935 history contract) and carry no requests.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from eth import constants as evm_constants
from eth._utils.address import generate_contract_address
from eth._utils.numeric import ceil32
from eth.chains.base import Chain
from eth.constants import GAS_SHA3, GAS_SHA3WORD
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth.db.backends.memory import MemoryDB
from eth.exceptions import FullStack, Halt, InsufficientStack
from eth.rlp.accounts import Account
from eth.validation import (
    validate_canonical_address,
    validate_stack_bytes,
    validate_stack_int,
    validate_uint64,
    validate_uint256,
)
from eth.vm.computation import NO_RESULT
from eth.vm.forks.london.transactions import DynamicFeeTransaction
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.forks.prague.state import PragueState, PragueTransactionExecutor
from eth.vm.forks.prague.transactions import PragueTypedTransaction
from eth.vm.forks.spurious_dragon._utils import collect_touched_accounts
from eth.vm.logic import stack as stack_logic
from eth.vm.logic.invalid import InvalidOpcode
from eth.vm.message import Message
from eth.vm.opcode import _FastOpcode, as_opcode
from eth.vm.opcode_values import SHA3, STOP
from eth.vm.spoof import SpoofTransaction
from eth.vm.stack import Stack, to_bytes
from eth_utils.address import to_canonical_address, to_checksum_address
from eth_utils.exceptions import ValidationError

from proml_sim.chain._txpool import (
    TX_BASE_GAS,
    BlockListReads,
    FaucetMixin,
    PendingTx,
    SnapshotBookkeeping,
    TxPool,
    decode_type2_items,
    encode_receipt,
    recover_typed_sender,
    scalar,
)
from proml_sim.chain.abi import decode_revert_reason
from proml_sim.chain.accounts import Signer, derive_private_keys
from proml_sim.chain.base import BlockInfo, CallResult, ChainBackend, Log, Receipt
from proml_sim.chain.trie import keccak, ordered_trie_root, rlp_encode_list, rlp_uint
from proml_sim.errors import (
    EngineError,
    TransactionFailed,
    lifecycle_error_from_reason,
)

__all__ = ["FAUCET_SEED", "PyEVMBackend"]

_recover_typed_sender = recover_typed_sender  # the name tests and older code import

FAUCET_SEED = "proml-sim faucet"
"""Seed of the faucet key (``derive_private_keys(FAUCET_SEED, 1)[0]``): public on purpose."""
FAUCET_BALANCE = 10**30

_ZERO_ADDRESS = b"\x00" * 20
_UINT256_MAX = 2**256 - 1
_MISSING = object()


# ---------------------------------------------------------------------------------------------
# py-evm pieces: executor without eager debug formatting, VM with the one-pass trie
# ---------------------------------------------------------------------------------------------
class _Executor(PragueTransactionExecutor):
    """py-evm's Prague executor minus the debug-log f-strings it builds even when debug logging
    is off (the hex of the whole contract code for every transaction).  Same state changes."""

    def validate_transaction(self, transaction: Any) -> None:
        # ``transaction.validate()`` (static field checks) already ran at submit and transactions
        # are immutable; the state-dependent checks (nonce, balance, base fee, EIP-2 s) run here.
        self.vm_state.validate_transaction(transaction)

    def build_evm_message(self, transaction: Any) -> Any:  # CancunTransactionExecutor's
        state = self.vm_state
        sender = transaction.sender
        state.delta_balance(sender, -(transaction.gas * state.get_gas_price(transaction)))
        state.increment_nonce(sender)
        msg_refund = self.calc_message_refund(transaction)
        message_gas = transaction.gas - transaction.intrinsic_gas
        if transaction.to == evm_constants.CREATE_CONTRACT_ADDRESS:
            contract_address = generate_contract_address(sender, state.get_nonce(sender) - 1)
            data = b""
            code = transaction.data
            is_delegation = False
        else:
            contract_address = None
            data = transaction.data
            code, delegation_address = self.get_code_at_address(transaction.to)
            is_delegation = delegation_address is not None
        return Message(
            gas=message_gas,
            to=transaction.to,
            sender=sender,
            value=transaction.value,
            data=data,
            code=code,
            create_address=contract_address,  # type: ignore[arg-type]
            refund=msg_refund,
            is_delegation=is_delegation,
        )

    def finalize_computation(self, transaction: Any, computation: Any) -> Any:
        # FrontierTransactionExecutor + SpuriousDragonTransactionExecutor, without f-strings
        state = self.vm_state
        transaction_context = state.get_transaction_context(transaction)
        gas_remaining = computation.get_gas_remaining()
        gas_used = transaction.gas - gas_remaining
        gas_refund = self.calculate_gas_refund(computation, gas_used)
        computation.data_floor_gas = self.calc_data_floor_gas(transaction, gas_used, gas_refund)
        gas_refund_amount = (
            gas_refund + gas_remaining - computation.data_floor_gas
        ) * transaction_context.gas_price
        if gas_refund_amount:
            state.delta_balance(computation.msg.sender, gas_refund_amount)
        gas_used = transaction.gas - gas_remaining - gas_refund + computation.data_floor_gas
        state.delta_balance(state.coinbase, gas_used * state.get_tip(transaction))
        for account in computation.get_accounts_for_deletion():
            state.delete_account(account)
        for account in collect_touched_accounts(computation):
            if state.account_exists(account) and state.account_is_empty(account):
                state.delete_account(account)
        return computation


class _AccountDB(AccountDB):
    """py-evm's AccountDB with cheaper account writes: ``Account.copy`` deep-copies every
    unchanged field and pyrlp's generic encoder is slow; a transaction writes ~5 accounts.
    Same validation, same encoding (``rlp([nonce, balance, storage_root, code_hash])``)."""

    def _set_account(self, address: Any, account: Any) -> None:
        self._account_cache[address] = account
        self._journaltrie[address] = rlp_encode_list(
            rlp_uint(account.nonce)
            + rlp_uint(account.balance)
            + b"\xa0"
            + account.storage_root
            + b"\xa0"
            + account.code_hash
        )

    def set_balance(self, address: Any, balance: int) -> None:
        validate_canonical_address(address, title="Storage Address")
        validate_uint256(balance, title="Account Balance")
        a = self._get_account(address)
        self._set_account(address, Account(a.nonce, balance, a.storage_root, a.code_hash))

    def set_nonce(self, address: Any, nonce: int) -> None:
        validate_canonical_address(address, title="Storage Address")
        validate_uint64(nonce, title="Nonce")
        a = self._get_account(address)
        self._set_account(address, Account(nonce, a.balance, a.storage_root, a.code_hash))


_PRAGUE_TX_BUILDER = PragueVM.get_transaction_builder()
_TYPED_TX_CLASS = PragueTypedTransaction
_PUSH_LOGIC = {stack_logic.push0: 0} | {getattr(stack_logic, f"push{n}"): n for n in range(1, 33)}
_DISPATCH_CACHE: dict[int, tuple[Any, dict[int, tuple[Any, int]], dict[int, tuple[int, int]]]] = {}


def _dispatch(
    opcodes: dict[int, Any],
) -> tuple[dict[int, tuple[Any, int]], dict[int, tuple[int, int]]]:
    """Split an opcode table into plain ``(logic, gas)`` pairs and ``PUSHn`` sizes (cached)."""
    hit = _DISPATCH_CACHE.get(id(opcodes))
    if hit is None or hit[0] is not opcodes:
        plain: dict[int, tuple[Any, int]] = {}
        pushes: dict[int, tuple[int, int]] = {}
        for op, fn in opcodes.items():
            if type(fn) is _FastOpcode:
                size = _PUSH_LOGIC.get(fn.logic_fn)
                if size is not None:
                    pushes[op] = (size, fn.gas_cost)
                else:
                    plain[op] = (fn.logic_fn, fn.gas_cost)
        hit = _DISPATCH_CACHE[id(opcodes)] = (opcodes, plain, pushes)
    return hit[1], hit[2]


class _Stack(Stack):
    """py-evm's Stack with the hot paths flattened (same checks, same errors): items stay
    ``int`` or ``bytes`` as pushed, and converting pops read them as big-endian."""

    def push_int(self, value: int) -> None:
        if len(self.values) > 1023:
            raise FullStack("Stack limit reached")
        if not 0 <= value <= _UINT256_MAX:
            validate_stack_int(value)
        self._append(value)

    def push_bytes(self, value: bytes) -> None:
        if len(self.values) > 1023:
            raise FullStack("Stack limit reached")
        if len(value) > 32:
            validate_stack_bytes(value)
        self._append(value)

    def pop1_int(self) -> int:
        x: Any
        try:
            x = self._pop()
        except IndexError:
            raise InsufficientStack("Wanted 1 stack item, had none") from None
        return x if type(x) is int else int.from_bytes(x, "big")

    def pop1_bytes(self) -> bytes:
        try:
            x = self._pop()
        except IndexError:
            raise InsufficientStack("Wanted 1 stack item, had none") from None
        return x if type(x) is bytes else to_bytes(x)

    def pop_ints(self, num_items: int) -> tuple[int, ...]:
        values: list[Any] = self.values
        if num_items > len(values):
            raise InsufficientStack(f"Wanted {num_items} stack items, only had {len(values)}")
        if num_items == 2:
            a, b = values.pop(), values.pop()
            return (
                a if type(a) is int else int.from_bytes(a, "big"),
                b if type(b) is int else int.from_bytes(b, "big"),
            )
        items = values[-num_items:]
        del values[-num_items:]
        items.reverse()
        return tuple(x if type(x) is int else int.from_bytes(x, "big") for x in items)


_JUMPDEST_CACHE: dict[bytes, tuple[set[int], set[int]]] = {}


def _sha3(computation: Any) -> None:
    """SHA3 as ``eth.vm.logic.sha3.sha3``, hashing with pysha3 directly."""
    start_position, size = computation.stack_pop_ints(2)
    computation.extend_memory(start_position, size)
    data = computation.memory_read_bytes(start_position, size)
    computation.consume_gas(GAS_SHA3WORD * (ceil32(len(data)) // 32), reason="SHA3: word gas cost")
    computation.stack_push_bytes(keccak(data))


class _Computation(PragueComputation):
    """PragueComputation with a tighter interpreter loop: the same opcode functions and gas
    costs, but gas is charged inline (no ``_FastOpcode.__call__`` -> ``consume_gas`` ->
    ``GasMeter.consume_gas`` chain per opcode), the code is read without a generator, and
    ``PUSHn`` (40% of executed opcodes) pushes its bytes directly, as ``push_XX`` does.
    (py-evm's DEBUG2 per-opcode trace is not emitted by this loop.)"""

    opcodes = {**PragueComputation.opcodes, SHA3: as_opcode(_sha3, "SHA3", GAS_SHA3)}

    def __init__(self, state: Any, message: Any, transaction_context: Any) -> None:
        super().__init__(state, message, transaction_context)
        # what py-evm's ``cached_property`` stack accessors would cache on first use (each
        # first use also pays an ``asyncio.iscoroutinefunction`` check)
        stack = self._stack = _Stack()
        # Which code positions are valid JUMPDESTs is a function of the code alone: share
        # py-evm's per-CodeStream memo across the transactions that run the same code.
        code = self.code
        raw = code._raw_code_bytes  # type: ignore[attr-defined]
        known = _JUMPDEST_CACHE.get(raw)
        if known is None:
            if len(_JUMPDEST_CACHE) > 512:
                _JUMPDEST_CACHE.clear()
            known = _JUMPDEST_CACHE[raw] = (set(), set())
        code.valid_positions, code.invalid_positions = known  # type: ignore[attr-defined]
        d = self.__dict__
        d["stack_pop_ints"] = stack.pop_ints
        d["stack_pop_bytes"] = stack.pop_bytes
        d["stack_pop_any"] = stack.pop_any
        d["stack_pop1_int"] = stack.pop1_int
        d["stack_pop1_bytes"] = stack.pop1_bytes
        d["stack_pop1_any"] = stack.pop1_any
        d["stack_push_int"] = stack.push_int
        d["stack_push_bytes"] = stack.push_bytes

    def extend_memory(self, start_position: int, size: int) -> None:
        # fast path: the range is inside the memory already (no gas, nothing to extend)
        if start_position >= 0 and size >= 0 and start_position + size <= len(self._memory):
            return
        super().extend_memory(start_position, size)

    def memory_write(self, start_position: int, size: int, value: bytes) -> None:
        buf = self._memory._bytes  # type: ignore[attr-defined]
        end = start_position + size
        if (
            size
            and type(value) is bytes
            and len(value) == size
            and 0 <= start_position < end <= len(buf)
        ):
            buf[start_position:end] = value
        else:  # py-evm's checks and errors
            super().memory_write(start_position, size, value)

    @classmethod
    def apply_computation(
        cls,
        state: Any,
        message: Any,
        transaction_context: Any,
        parent_computation: Any = None,
    ) -> Any:
        with cls(state, message, transaction_context) as computation:
            if computation.is_origin_computation:
                computation.contracts_created = []
                if message.is_create:
                    cls.consume_initcode_gas_cost(computation)
            if parent_computation is not None:
                computation.contracts_created = parent_computation.contracts_created
            if message.is_create:
                computation.contracts_created.append(message.storage_address)
            precompile = computation.precompiles.get(message.code_address, NO_RESULT)
            if precompile is not NO_RESULT:
                if not message.is_delegation:
                    precompile(computation)
                return computation

            opcodes = computation.opcodes
            plain, pushes = _dispatch(opcodes)
            code = computation.code
            raw = code._raw_code_bytes  # type: ignore[attr-defined]
            end = len(raw)
            meter = computation._gas_meter
            values = computation._stack.values  # type: ignore[attr-defined]
            try:
                while True:
                    pc = code.program_counter
                    if pc < end:
                        op = raw[pc]
                        code.program_counter = pc = pc + 1
                    else:
                        op = STOP
                    entry = plain.get(op)
                    if entry is not None:
                        gas = entry[1]
                        if gas > meter.gas_remaining:
                            meter.consume_gas(gas, "opcode")  # raises OutOfGas
                        meter.gas_remaining -= gas
                        entry[0](computation)
                        continue
                    push = pushes.get(op)
                    if push is not None:
                        size, gas = push
                        if gas > meter.gas_remaining:
                            meter.consume_gas(gas, "PUSH")  # raises OutOfGas
                        meter.gas_remaining -= gas
                        value = raw[pc : pc + size]
                        code.program_counter = pc + size
                        if len(value) != size:
                            value = value.ljust(size, b"\x00")
                        if len(values) > 1023:
                            raise FullStack("Stack limit reached")
                        values.append(value)
                        continue
                    fn = opcodes.get(op)
                    if fn is None:
                        fn = InvalidOpcode(op)
                    fn(computation=computation)
            except Halt:
                pass
        return computation


class _State(PragueState):
    account_db_class = _AccountDB
    computation_class = _Computation
    transaction_executor_class = _Executor


class _VM(PragueVM):
    _state_class = _State


# ---------------------------------------------------------------------------------------------
# database with an undo log (snapshots)
# ---------------------------------------------------------------------------------------------
class _UndoDB(MemoryDB):
    """A MemoryDB that, while a snapshot is alive, records the previous value of every key it
    overwrites or deletes, so a revert can put the database back exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.undo: list[tuple[bytes, object]] | None = None

    def __setitem__(self, key: bytes, value: bytes) -> None:
        if self.undo is not None:
            self.undo.append((key, self.kv_store.get(key, _MISSING)))
        self.kv_store[key] = value

    def __delitem__(self, key: bytes) -> None:
        if self.undo is not None:
            self.undo.append((key, self.kv_store.get(key, _MISSING)))
        del self.kv_store[key]

    def rollback(self, position: int) -> None:
        undo = self.undo
        assert undo is not None
        store = self.kv_store
        while len(undo) > position:
            key, old = undo.pop()
            if old is _MISSING:
                store.pop(key, None)
            else:
                store[key] = cast(bytes, old)


# ---------------------------------------------------------------------------------------------
# decoding
# ---------------------------------------------------------------------------------------------
def _decode_dynamic_fee(raw: bytes) -> Any:
    """py-evm's type-2 transaction object for ``raw``, built without pyrlp's sedes machinery
    (a third of the submit cost).  ``decode_type2_items`` checks the RLP is canonical, as
    pyrlp's strict decoder does; scalars are checked for leading zeros here, ranges by
    ``tx.validate()`` afterwards.  Transactions with a non-empty access list take py-evm's own
    decoder."""
    items = decode_type2_items(raw)
    if items[8] != []:
        return _PRAGUE_TX_BUILDER.decode(raw)
    to, data = items[5], items[7]
    if not isinstance(to, bytes) or len(to) not in (0, 20) or not isinstance(data, bytes):
        raise EngineError("malformed transaction: 'to' must be empty or 20 bytes, data bytes")
    names = ("chain_id", "nonce", "max_priority_fee_per_gas", "max_fee_per_gas", "gas")
    head = [scalar(items[i], names[i]) for i in range(5)]
    inner = DynamicFeeTransaction(
        *head,
        to,
        scalar(items[6], "value"),
        data,
        [],
        scalar(items[9], "y_parity"),
        scalar(items[10], "r"),
        scalar(items[11], "s"),
    )
    return _TYPED_TX_CLASS(2, inner)


# ---------------------------------------------------------------------------------------------
# the backend
# ---------------------------------------------------------------------------------------------
class PyEVMBackend(FaucetMixin, SnapshotBookkeeping, BlockListReads, ChainBackend):
    """py-evm with an explicit, deterministic block producer.  See the module docstring."""

    name = "py-evm"
    _head: Any

    def __init__(
        self,
        *,
        funded: Iterable[str] = (),
        chain_id: int = 1337,
        gas_limit: int = 60_000_000,
        genesis_timestamp: int = 1_700_000_000,
        balance_wei: int = 10**24,
        db: Any = None,
    ) -> None:
        self.chain_id = chain_id
        self._gas_limit = gas_limit
        self._faucet = Signer(derive_private_keys(FAUCET_SEED, 1)[0])
        alloc: dict[bytes, dict[str, Any]] = {
            self._faucet.canonical_address: _account(FAUCET_BALANCE)
        }
        for address in funded:
            alloc[to_canonical_address(address)] = _account(balance_wei)
        # ``db``: a persistent py-evm database (the chain store); snapshots need the _UndoDB
        self._db = _UndoDB() if db is None else db
        chain_class = _chain_class(chain_id)
        genesis_params = {
            "difficulty": 0,
            "gas_limit": gas_limit,
            "timestamp": genesis_timestamp,
            "coinbase": _ZERO_ADDRESS,
            "extra_data": b"",
            "nonce": b"\x00" * 8,
            "mix_hash": evm_constants.ZERO_HASH32,
        }
        self._chain: Any = chain_class.from_genesis(
            AtomicDB(self._db),
            genesis_params,
            alloc,
        )
        self._finish_init()

    @classmethod
    def from_db(cls, db: Any, *, chain_id: int, gas_limit: int) -> PyEVMBackend:
        """An engine over an existing py-evm database ``db`` (made by this engine with
        ``db=``), at its canonical head: nothing is replayed.  Only :meth:`produce_block`,
        :meth:`submit` and state reads are meant for it; the caller keeps the block index."""
        self = cls.__new__(cls)
        self.chain_id = chain_id
        self._gas_limit = gas_limit
        self._faucet = Signer(derive_private_keys(FAUCET_SEED, 1)[0])
        self._db = db
        self._chain = _chain_class(chain_id)(AtomicDB(db))
        self._finish_init()
        return self

    def reload_head(self) -> None:
        """Follow the database's canonical head (another process produced blocks)."""
        head = self._chain.chaindb.get_canonical_head()
        if head != self._head:
            self._head = head
            self._blocks = [self._block_info(head, ())]
            self._invalidate()

    def _finish_init(self) -> None:
        self._head = self._chain.get_canonical_head()
        self._blocks: list[BlockInfo] = [self._block_info(self._head, ())]
        self._receipt_encodings: list[bytes] = []
        self._receipts: dict[bytes, Receipt] = {}
        self._logs: list[Log] = []
        self._pool = TxPool()
        self._init_snapshots()
        self._read_vm: Any = None
        self._next_base_fee = 0
        self._checksums: dict[bytes, str] = {}
        self._canonicals: dict[str, bytes] = {}
        self._builder = _VM.get_transaction_builder()

    # -- helpers --------------------------------------------------------------------------------
    def _canon(self, address: str) -> bytes:
        b = self._canonicals.get(address)
        if b is None:
            b = to_canonical_address(address)
            if len(self._canonicals) < 100_000:
                self._canonicals[address] = b
        return b

    def _cs(self, address: bytes) -> str:
        cs = self._checksums.get(address)
        if cs is None:
            cs = self._checksums[address] = to_checksum_address(address)
        return cs

    @staticmethod
    def _block_info(header: Any, tx_hashes: tuple[bytes, ...]) -> BlockInfo:
        return BlockInfo(
            number=header.block_number,
            hash=header.hash,
            parent_hash=header.parent_hash,
            timestamp=header.timestamp,
            gas_used=header.gas_used,
            gas_limit=header.gas_limit,
            base_fee=header.base_fee_per_gas,
            tx_hashes=tx_hashes,
        )

    def _child_header(self, timestamp: int, **overrides: Any) -> Any:
        return _VM.create_header_from_parent(
            self._head,
            timestamp=timestamp,
            gas_limit=self._gas_limit,
            coinbase=_ZERO_ADDRESS,
            **overrides,
        )

    def _reader(self) -> Any:
        """State at the head, in a pending-block context with base fee 0 (for calls)."""
        if self._read_vm is None:
            header = self._child_header(self._head.timestamp + 12)
            self._next_base_fee = header.base_fee_per_gas
            self._read_vm = self._chain.get_vm(header.copy(base_fee_per_gas=0))
        return self._read_vm.state

    def _invalidate(self) -> None:
        self._read_vm = None
        self._pool.invalidate()

    # -- transactions ---------------------------------------------------------------------------
    def submit(self, raw_tx: bytes) -> bytes:
        raw_tx = bytes(raw_tx)
        if not raw_tx:
            raise EngineError("empty transaction")
        typed = raw_tx[0] < 0x80
        if typed and raw_tx[0] != 2:
            raise EngineError(
                f"transaction type {raw_tx[0]} is not supported; send EIP-1559 (type 2) or legacy"
            )
        try:
            tx = _decode_dynamic_fee(raw_tx) if typed else self._builder.decode(raw_tx)
            tx.validate()
        except EngineError:
            raise
        except Exception as exc:
            raise EngineError(f"malformed transaction: {exc}") from None
        if typed:
            if tx.chain_id != self.chain_id:
                raise EngineError(
                    f"transaction is signed for chain id {tx.chain_id}, this chain is "
                    f"{self.chain_id}"
                )
            sender = recover_typed_sender(raw_tx, tx)
            max_fee, tip = tx.max_fee_per_gas, tx.max_priority_fee_per_gas
        else:
            if tx.chain_id is None:
                raise EngineError(
                    "legacy transaction without an EIP-155 chain id (replayable); sign it with "
                    f"chain id {self.chain_id}"
                )
            if tx.chain_id != self.chain_id:
                raise EngineError(
                    f"transaction is signed for chain id {tx.chain_id}, this chain is "
                    f"{self.chain_id}"
                )
            try:
                tx.check_signature_validity()
                sender = tx.get_sender()
            except Exception as exc:
                raise EngineError(f"bad signature: {exc}") from None
            max_fee = tip = tx.gas_price
        tx_hash = keccak(raw_tx)
        # hand py-evm what we verified, so it neither recovers nor hashes again
        tx.__dict__["sender"] = sender
        tx.__dict__["hash"] = tx_hash
        if tx_hash in self._pool.entries or tx_hash in self._receipts:
            raise EngineError(f"transaction 0x{tx_hash.hex()} is already known")
        self._pool.admit(
            tx_hash,
            raw_tx,
            tx,
            sender,
            nonce=tx.nonce,
            gas=tx.gas,
            max_fee=max_fee,
            tip=tip,
            typed=typed,
            value=tx.value,
            data=tx.data,
            intrinsic=tx.intrinsic_gas,
            gas_limit=self._gas_limit,
            confirmed_nonce=self._reader().get_nonce,
            balance=self._reader().get_balance,
            checksum=self._cs,
        )
        return tx_hash

    def pending(self) -> tuple[bytes, ...]:
        return tuple(self._pool.entries)

    def produce_block(
        self, timestamp: int | None = None, *, max_txs: int | None = None
    ) -> BlockInfo:
        parent = self._head
        if timestamp is None:
            timestamp = parent.timestamp + 12
        if timestamp <= parent.timestamp:
            raise EngineError(
                f"block timestamp {timestamp} must be greater than the parent's "
                f"({parent.timestamp}, block {parent.block_number})"
            )
        header = self._child_header(timestamp)
        vm: Any = self._chain.get_vm(header)
        state: Any = vm.state
        base_fee = header.base_fee_per_gas
        gas_limit = header.gas_limit
        limit = len(self._pool.entries) if max_txs is None else max_txs
        selection = self._pool.select(base_fee, state.get_nonce)

        included: list[PendingTx] = []
        executed: list[tuple[PendingTx, Any, int, int, tuple[Any, ...]]] = []
        receipt_encodings: list[bytes] = []
        gas_used = 0
        bloom = 0
        finalize_gas_used = vm.finalize_gas_used
        while len(included) < limit and gas_limit - gas_used >= TX_BASE_GAS:
            entry = selection.pop()
            if entry is None:
                break
            if gas_used + entry.gas > gas_limit:
                continue  # does not fit: this sender waits for the next block
            state.lock_changes()
            snapshot = state.snapshot()
            try:
                computation = state.apply_transaction(entry.tx)
            except ValidationError:
                state.revert(snapshot)
                continue  # e.g. the balance went to earlier transactions: it stays pending
            tx_gas = finalize_gas_used(entry.tx, computation)
            gas_used += tx_gas
            logs = computation.get_log_entries()
            encoding, tx_bloom = encode_receipt(
                b"\x02" if entry.typed else b"", not computation.is_error, gas_used, logs
            )
            bloom |= tx_bloom
            receipt_encodings.append(encoding)
            included.append(entry)
            executed.append((entry, computation, tx_gas, gas_used, logs))
            selection.included(entry)

        self._receipt_encodings = receipt_encodings  # for a persistent store's receipt index
        chaindb: Any = self._chain.chaindb
        tx_root, tx_nodes = ordered_trie_root([e.raw for e in included])
        receipt_root, receipt_nodes = ordered_trie_root(receipt_encodings)
        chaindb.persist_trie_data_dict(tx_nodes)
        chaindb.persist_trie_data_dict(receipt_nodes)
        header = header.copy(
            transaction_root=tx_root, receipt_root=receipt_root, gas_used=gas_used, bloom=bloom
        )
        block_class = vm.get_block_class()
        # rewards (zero post-merge, but the coinbase is touched) and the state root, as
        # VM.finalize_block does, without its copy of every transaction
        finalized = vm.finalize_block(block_class(header, transactions=[], uncles=[]))
        header = finalized.block.header
        block = block_class(header, transactions=[e.tx for e in included], uncles=[])
        vm.validate_header(header, parent)
        chaindb.persist_block(block)
        self._head = header
        self._invalidate()
        self._index_block(header, executed, base_fee)
        self._pool.remove_block(included, selection.cursor)
        return self._blocks[-1]

    def _index_block(
        self,
        header: Any,
        executed: list[tuple[PendingTx, Any, int, int, tuple[Any, ...]]],
        base_fee: int,
    ) -> None:
        number, block_hash, ts = header.block_number, header.hash, header.timestamp
        log_index = 0
        receipts = self._receipts
        all_logs = self._logs
        for tx_index, (entry, computation, tx_gas, cumulative, raw_logs) in enumerate(executed):
            ok = not computation.is_error
            logs = []
            for address, topics, data in raw_logs:
                logs.append(
                    Log(
                        address=self._cs(address),
                        topics=tuple(t.to_bytes(32, "big") for t in topics),
                        data=data,
                        block_number=number,
                        tx_hash=entry.hash,
                        tx_index=tx_index,
                        log_index=log_index,
                    )
                )
                log_index += 1
            all_logs.extend(logs)
            to = entry.tx.to
            output = computation.output
            receipts[entry.hash] = Receipt(
                tx_hash=entry.hash,
                block_number=number,
                block_hash=block_hash,
                block_timestamp=ts,
                tx_index=tx_index,
                sender=self._cs(entry.sender),
                to=self._cs(to) if to else None,
                nonce=entry.nonce,
                contract_address=(
                    self._cs(computation.msg.storage_address) if ok and not to else None
                ),
                status=ok,
                gas_used=tx_gas,
                cumulative_gas_used=cumulative,
                effective_gas_price=min(entry.max_fee, base_fee + entry.tip)
                if entry.typed
                else entry.max_fee,
                logs=tuple(logs),
                output=output,
                revert_reason=None if ok else decode_revert_reason(output),
            )
        self._blocks.append(self._block_info(header, tuple(e[0].hash for e in executed)))

    def receipt(self, tx_hash: bytes) -> Receipt | None:
        return self._receipts.get(bytes(tx_hash))

    # -- reads ----------------------------------------------------------------------------------
    def _execute(
        self, sender: str | None, to: str | None, data: bytes, value: int, gas: int
    ) -> Any:
        state = self._reader()
        sender_b = self._canon(sender) if sender else _ZERO_ADDRESS
        builder: Any = self._builder
        unsigned = builder.create_unsigned_transaction(
            nonce=state.get_nonce(sender_b),
            gas_price=0,
            gas=gas,
            to=self._canon(to) if to else evm_constants.CREATE_CONTRACT_ADDRESS,
            value=value,
            data=data,
        )
        tx = SpoofTransaction(unsigned, from_=sender_b)
        snapshot = state.snapshot()
        try:
            return state.apply_transaction(tx)
        except ValidationError as exc:
            raise EngineError(f"cannot execute call: {exc}") from None
        finally:
            state.revert(snapshot)

    def call(
        self, to: str | None, data: bytes, *, sender: str | None = None, value: int = 0
    ) -> CallResult:
        c = self._execute(sender, to, data, value, self._gas_limit)
        ok = not c.is_error
        gas = self._read_vm.finalize_gas_used(_GasView(self._gas_limit), c)
        return CallResult(ok, c.output, gas, None if ok else decode_revert_reason(c.output))

    def estimate_gas(self, sender: str, to: str | None, data: bytes, value: int = 0) -> int:
        c = self._execute(sender, to, data, value, self._gas_limit)
        if c.is_error:
            reason = decode_revert_reason(c.output)
            if reason is not None:
                err = lifecycle_error_from_reason(reason)
                if err is not None:
                    raise err
            raise TransactionFailed(
                f"gas estimation failed: the transaction would revert ({reason or c.error!r})"
            )
        consumed = self._gas_limit - c.get_gas_remaining() + c.data_floor_gas
        # margin: 63/64 rule for nested calls and refund/sentry-dependent paths
        return int(min(self._gas_limit, consumed + consumed // 8 + 5_000))

    def nonce(self, address: str) -> int:
        return cast(int, self._reader().get_nonce(self._canon(address)))

    def next_nonce(self, address: str) -> int:
        return self._pool.next_nonce(self._canon(address), self._confirmed_nonce)

    def _confirmed_nonce(self, sender: bytes) -> int:
        return cast(int, self._reader().get_nonce(sender))

    def balance(self, address: str) -> int:
        return cast(int, self._reader().get_balance(self._canon(address)))

    def code(self, address: str) -> bytes:
        return cast(bytes, self._reader().get_code(self._canon(address)))

    # -- snapshots (SnapshotBookkeeping's hooks) ------------------------------------------------
    def _state_mark(self) -> Any:
        if self._db.undo is None:
            self._db.undo = []
        return len(self._db.undo), self._head

    def _state_rollback(self, mark: Any) -> None:
        position, self._head = mark
        self._db.rollback(position)

    def _state_stop(self) -> None:
        self._db.undo = None  # nothing left to roll back to: stop journaling

    def revert(self, snapshot_id: int) -> None:
        super().revert(snapshot_id)
        self._invalidate()

    # -- fees -----------------------------------------------------------------------------------
    def base_fee(self) -> int:
        self._reader()
        return self._next_base_fee

    @property
    def gas_limit(self) -> int:
        return self._gas_limit


def _chain_class(chain_id: int) -> Any:
    return Chain.configure(
        __name__="ProMLPragueChain", vm_configuration=((0, _VM),), chain_id=chain_id
    )


class _GasView:
    """What ``VM.finalize_gas_used`` reads from a transaction: its gas limit."""

    __slots__ = ("gas",)

    def __init__(self, gas: int) -> None:
        self.gas = gas


def _block_number(log: Log) -> int:
    return log.block_number


def _account(balance: int) -> dict[str, Any]:
    return {"balance": balance, "nonce": 0, "code": b"", "storage": {}}
