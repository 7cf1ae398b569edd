"""A :class:`ChainBackend` for any Ethereum JSON-RPC node, through web3.py's HTTP provider.

The same signed raw transactions go to the node with ``eth_sendRawTransaction``. Block
production uses a development node's methods when it has them (anvil, hardhat): automining is
switched off at start (``evm_setAutomine false``) and :meth:`RPCBackend.produce_block` mines
one block at the requested timestamp (``evm_mine``); snapshots are ``evm_snapshot`` /
``evm_revert`` (the node's pool is not in its snapshot: on anvil it is emptied and the
snapshot's pending transactions are sent again, in arrival order); funded accounts get their
balance with ``anvil_setBalance`` (or ``hardhat_setBalance``). A node whose EVM predates the
contracts' (:data:`~proml_sim.compiler.EVM_VERSION`; ganache 7) is refused. A node
without those methods (geth, a public network) cannot be driven: it is used with
``drive=False`` only, as a ProML node's chain is (which must not change how a shared node mines
either). Not driving, :meth:`RPCBackend.produce_block` waits until the node has mined the
pending transactions (with none, its next block), a timestamp cannot be chosen
(:attr:`mines_at_timestamp` is False), and :meth:`RPCBackend.fund` pays from an account the
node unlocks (geth ``--dev``'s developer account) where it cannot set balances.

Receipts come from ``eth_getTransactionReceipt``; the revert data of a failed transaction,
which a receipt does not carry, is read with ``debug_traceTransaction`` (call tracer, top call
only) where the node offers it, so revert reasons decode into the same lifecycle errors as on
the in-process engines.  A successful call's return data is not read (a trace replays the block
up to the transaction): :attr:`Receipt.output` is ``b""`` for it (a creation's is the deployed
code, as on the other engines); read results through calls or events.

Differences from the in-process engines: the node keeps its own pool (ordering, replacement and
eviction rules are the node's; anvil orders by priority fee); ``max_txs`` cannot cap a block;
gas estimates are the node's (``eth_estimateGas``); block hashes are the node's real header
hashes.  web3 is an optional dependency (the ``dev`` extra).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import time
from collections.abc import Iterable
from typing import Any

import rlp
from eth_utils.address import to_checksum_address

from proml_sim.chain._txpool import next_base_fee, rewind_snapshots
from proml_sim.chain.abi import decode_revert_reason
from proml_sim.chain.base import BlockInfo, CallResult, ChainBackend, Log, Receipt
from proml_sim.chain.trie import keccak
from proml_sim.errors import (
    EngineError,
    NoFaucet,
    NonceTaken,
    RPCError,
    TransactionFailed,
    lifecycle_error_from_reason,
)
from proml_sim.fsutil import parse_json

__all__ = ["RPCBackend"]

_INSTALL_HINT = "the rpc engine needs web3: pip install 'web3>=7,<9' (or 'proml-sim[dev]')"


#: what nodes answer when another transaction from the account took the nonce: geth, anvil,
#: hardhat, besu ("nonce too low", "replacement transaction underpriced"), nethermind
#: ("OldNonce", "ReplacementNotAllowed"); hardhat when automining ("nonce too high")
_NONCE_TAKEN = re.compile(r"nonce too (?:low|high)|replacement transaction underpriced|oldnonce|"
                          r"replacementnotallowed|nonce has already been used", re.IGNORECASE)
#: ... and when the very same signed transaction is already in its pool: geth, anvil,
#: hardhat and besu, nethermind
_ALREADY_KNOWN = re.compile(r"already known|already imported|known transaction|alreadyknown",
                            re.IGNORECASE)

#: JSON-RPC calls sent in one batch (geth's default limit is 1,000)
BATCH = 200

#: how long a write waits for a node that mines on its own (not driven) to include it
MINE_WAIT_S = 600.0

#: opcodes the compiled contracts use that older EVMs lack: name, the hardfork that brought
#: it, creation code running it (checked with ``eth_call`` when a node is opened)
_OPCODES = (("PUSH0", "shanghai", "5f50"), ("MCOPY", "cancun", "5f5f5f5e"),
            ("TLOAD", "cancun", "5f5c50"))


def _web3() -> Any:
    try:
        import web3
    except ImportError as exc:
        raise ImportError(f"{_INSTALL_HINT} ({exc})") from exc
    return web3


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def _bytes(value: str | None) -> bytes:
    return bytes.fromhex(value[2:]) if value else b""


def _result(method: str, response: Any) -> Any:
    """A JSON-RPC answer's result; its error (or an answer that is not one) as one line,
    :class:`~proml_sim.errors.RPCError` (``METHOD: the node's message``)."""
    if not isinstance(response, dict) or "error" in response:
        err = response.get("error") if isinstance(response, dict) else response
        message = err.get("message", err) if isinstance(err, dict) else err
        raise RPCError(f"{method}: {message}", err)
    return response.get("result")


class _WebSocketRPC:
    """JSON-RPC requests over one WebSocket (``ws://``, ``wss://``), for nodes reached that
    way: web3 8 has no synchronous WebSocket provider, so this uses the ``websockets`` library
    web3 depends on.  One request at a time (the backend is not shared between threads
    unlocked); an answer is matched to its request by id, anything else (a subscription's
    notice) is passed over."""

    #: the largest message read (a block with its transactions, a call trace)
    MAX_MESSAGE = 256 << 20

    def __init__(self, url: str, timeout: float) -> None:
        self.url, self.timeout = url, timeout
        self._ws: Any = None
        self._ids = itertools.count(1)

    def __call__(self, method: str, params: list[Any]) -> Any:
        from websockets.sync.client import connect

        if self._ws is None:
            self._stack = contextlib.ExitStack()  # a connection is used as a context manager
            self._ws = self._stack.enter_context(
                connect(self.url, open_timeout=self.timeout, max_size=self.MAX_MESSAGE))
        rid = next(self._ids)
        try:
            self._ws.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method,
                                      "params": params}))
            deadline = time.monotonic() + self.timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no answer within {self.timeout:g} s")
                answer = parse_json(self._ws.recv(timeout=left))
                if isinstance(answer, dict) and answer.get("id") == rid:
                    return answer
        except Exception:
            self._stack.close()
            self._ws = None  # the next request connects again
            raise


class RPCBackend(ChainBackend):
    """A chain behind a JSON-RPC endpoint.  See the module docstring.

    ``funded`` accounts get at least ``balance_wei`` each (:meth:`fund`); ``gas_limit`` sets the
    block gas limit when the node allows it (``evm_setBlockGasLimit``).  ``drive=True`` needs a
    development node (else :class:`~proml_sim.errors.EngineError`); ``drive=False`` (a
    ProML node's chain, a peer's head) changes nothing on the node: its automining stays as it
    is, and :meth:`produce_block` waits for the pending transactions to be mined (asking with
    ``evm_mine`` only a node that does not mine them by itself).
    """

    name = "rpc"

    def __init__(
        self,
        url: str,
        *,
        funded: Iterable[str] = (),
        balance_wei: int = 10**24,
        gas_limit: int | None = None,
        timeout: float = 30.0,
        drive: bool = True,
        **ignored: Any,
    ) -> None:
        web3 = _web3()
        self.url = url
        self._timeout = timeout
        self._request: Any
        self._batch: Any = None  # a node taking JSON-RPC batches: one HTTP request for many
        if url.startswith(("ws://", "wss://")):
            self._request = _WebSocketRPC(url, timeout)
        else:
            w3 = web3.Web3(web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
            self._request = w3.provider.make_request
            self._batch = w3.provider.make_batch_request
        try:
            self.chain_id = _int(self._rpc("eth_chainId"))
        except EngineError as exc:
            raise EngineError(
                f"no Ethereum JSON-RPC node answers at {url} ({exc}); start one (e.g. anvil) or "
                "check --rpc-url"
            ) from None
        self._check_evm()
        # driving a development node (anvil, hardhat): automining off, blocks mined with
        # evm_mine at the timestamps asked for
        self.dev = drive and self._try("evm_setAutomine", [False]) is not None
        if drive and not self.dev:  # refused before anything is funded on it
            raise EngineError(
                f"the node at {url} mines on its own (no evm_setAutomine/evm_mine): a "
                "simulation, benchmark or experiment decides when blocks are made, and at "
                "which time; use a development node (anvil, hardhat) there. A ProML node "
                "(`proml init --rpc-url`) runs on any node")
        if gas_limit is not None and self.dev:
            self._try("evm_setBlockGasLimit", [hex(gas_limit)])
        self.mines_at_timestamp = self.dev
        if self.dev:
            self._try("anvil_setCoinbase", ["0x" + "00" * 20])
        for address in funded:
            self.fund(address, balance_wei)
        self._pending: dict[bytes, bytes] = {}  # hash -> raw, arrival order
        self._receipts: dict[bytes, Receipt] = {}
        self._timestamps: dict[int, int] = {}  # block number -> timestamp
        self._nonces: dict[bytes, int] = {}  # our transactions' nonces
        self._snapshots: dict[int, tuple[str, dict[bytes, bytes]]] = {}
        self._snapshot_ids = itertools.count(1)
        self._tracing: bool | None = None

    def _check_evm(self) -> None:
        """Refuse a node whose EVM lacks an opcode the compiled contracts use (they target
        :data:`~proml_sim.compiler.EVM_VERSION`): the contracts would deploy, then every call
        would fail with "invalid opcode"."""
        if self._try("eth_call", [{"data": "0x" + "".join(c for _, _, c in _OPCODES)},
                                  "latest"]) is not None:
            return
        from proml_sim.compiler import EVM_VERSION

        for name, fork, code in _OPCODES:
            try:
                self._rpc("eth_call", [{"data": "0x" + code}, "latest"])
            except EngineError as exc:
                raise EngineError(
                    f"the node at {self.url} cannot run {name} (the {fork} hardfork) that the "
                    f"contracts, compiled for {EVM_VERSION}, use ({exc}); run the node at the "
                    f"{EVM_VERSION} hardfork") from None

    # -- plumbing -----------------------------------------------------------------------------
    def _rpc(self, method: str, params: list[Any] | None = None) -> Any:
        try:
            response = self._request(method, params or [])
        except Exception as exc:
            raise EngineError(f"{method} failed: {exc}") from None
        return _result(method, response)

    def _rpc_many(self, method: str, params: list[list[Any]]) -> list[Any]:
        """``method`` called with each of ``params``, in order: over HTTP as JSON-RPC batches
        of :data:`BATCH` (a bundle reads thousands of headers; one request each spent nearly
        all of its time in HTTP), one by one on a node that refuses batches or over a
        WebSocket.  A failed call raises as :meth:`_rpc` does."""
        out: list[Any] = []
        for i in range(0, len(params), BATCH):
            chunk = params[i:i + BATCH]
            answers = None
            if self._batch is not None:
                try:
                    answers = self._batch([(method, p) for p in chunk])
                except Exception:  # a node that cannot batch: one by one
                    answers = None
                if not isinstance(answers, list) or len(answers) != len(chunk) or any(
                        "batch" in str(a.get("error", "")).lower() for a in answers
                        if isinstance(a, dict)):  # refused as a batch (too large, not allowed)
                    self._batch = answers = None
            if answers is None:
                out += [self._rpc(method, p) for p in chunk]
                continue
            out += [_result(method, answer) for answer in answers]
        return out

    def _try(self, method: str, params: list[Any] | None = None) -> Any:
        """The result, or ``None`` when the node does not offer ``method``."""
        try:
            result = self._rpc(method, params)
        except EngineError:
            return None
        return True if result is None else result

    def set_balance(self, address: str, wei: int) -> None:
        """Set a balance on a development node (``anvil_setBalance``/``hardhat_setBalance``)."""
        for method in ("anvil_setBalance", "hardhat_setBalance"):
            if self._try(method, [to_checksum_address(address), hex(wei)]) is not None:
                return
        raise EngineError(
            f"the node at {self.url} cannot set balances (no anvil_setBalance/hardhat_setBalance);"
            " fund the accounts yourself or use a development node such as anvil"
        )

    def fund(self, address: str, wei: int) -> int:
        """Give ``address`` at least ``wei``; return what it was given (0: it had enough).

        A development node sets the balance (``anvil_setBalance``, ``hardhat_setBalance``);
        otherwise the richest account the node unlocks
        (geth ``--dev``'s developer account) sends it the difference, at most a tenth of its
        own balance.  A node with neither (a public network) raises
        :class:`~proml_sim.errors.EngineError` naming the address to fund."""
        have = self.balance(address)
        if have >= wei:
            return 0
        checksum = to_checksum_address(address)
        for method in ("anvil_setBalance", "hardhat_setBalance"):
            if self._try(method, [checksum, hex(wei)]) is not None:
                if self.dev:
                    self._try("evm_mine", [])  # make the balance part of a block, like a genesis
                return wei - have
        accounts = self._try("eth_accounts")
        richest = max(((self.balance(a), a) for a in accounts if isinstance(a, str)),
                      default=(0, "")) if isinstance(accounts, list) else (0, "")
        if richest[0] > 0:  # a tenth of its balance at most: it funds others too
            value = min(wei - have, richest[0] // 10)
            tx = self._rpc("eth_sendTransaction", [{"from": richest[1], "to": checksum,
                                                    "value": hex(value)}])
            self._await([bytes.fromhex(tx[2:])], self.head().number)
            return value
        raise NoFaucet(
            f"the node at {self.url} has no development faucet and no unlocked funded account "
            f"to give {address} gas money: send it some from an account of yours")

    def _await(self, hashes: list[bytes], parent: int) -> None:
        """Until each of ``hashes`` has a receipt (none given: until a block after ``parent``).
        A node that has not mined them yet is asked to (``evm_mine``: a development node with
        automining off; a node mining on its own refuses, and is waited for)."""

        def done() -> bool:
            return (all(self._rpc("eth_getTransactionReceipt", ["0x" + h.hex()]) is not None
                        for h in hashes) if hashes else self.head().number > parent)

        if not done():
            self._try("evm_mine", [])
        # a node mining on its own schedule (a public network) may take minutes to include
        wait = self._timeout if self.dev else max(self._timeout, MINE_WAIT_S)
        deadline = time.monotonic() + wait
        while not done():
            if time.monotonic() > deadline:
                what = (f"transaction(s) {', '.join('0x' + h.hex() for h in hashes)} not mined"
                        if hashes else "no new block")
                raise EngineError(f"{what} by the node at {self.url} within {wait:g} s; is it "
                                  "mining? (a transaction sent stays in its pool: check with "
                                  "`proml status` before sending it again)")
            time.sleep(0.2)

    # -- transactions ---------------------------------------------------------------------------
    def submit(self, raw_tx: bytes) -> bytes:
        raw_tx = bytes(raw_tx)
        try:
            tx_hash = bytes.fromhex(self._rpc("eth_sendRawTransaction", ["0x" + raw_tx.hex()])[2:])
        except RPCError as exc:
            if _ALREADY_KNOWN.search(str(exc)):
                tx_hash = keccak(raw_tx)  # these very bytes are in its pool: sent
            elif _NONCE_TAKEN.search(str(exc)):
                raise NonceTaken(str(exc), exc.error) from None
            else:
                raise
        if tx_hash != keccak(raw_tx):
            raise EngineError("the node returned a different transaction hash than keccak(raw)")
        self._pending[tx_hash] = raw_tx
        try:
            fields = rlp.decode(raw_tx[1:] if raw_tx[0] < 0x80 else raw_tx)
            self._nonces[tx_hash] = int.from_bytes(fields[1 if raw_tx[0] < 0x80 else 0], "big")
        except Exception:  # the node accepted it; its nonce will be read from the node
            pass
        return tx_hash

    def pending(self) -> tuple[bytes, ...]:
        return tuple(self._pending)

    def produce_block(
        self, timestamp: int | None = None, *, max_txs: int | None = None
    ) -> BlockInfo:
        if max_txs is not None:
            raise EngineError(
                "the rpc engine cannot cap the transactions of a block (max_txs); the node "
                "includes what fits"
            )
        parent = self.head()
        if not self.dev:
            if timestamp is not None:
                raise EngineError(
                    f"the node at {self.url} is not driven (no evm_mine, or drive=False): its "
                    "blocks cannot be asked for at a timestamp; pass none")
            # not driving it: until our pending transactions are mined (automining nodes have
            # mined them at submission), or, with none, until its next block
            self._await(list(self._pending), parent.number)
            for h in list(self._pending):
                if self.receipt(h) is not None:
                    self._pending.pop(h)
            return self.head()
        else:
            if timestamp is None:
                timestamp = parent.timestamp + 12
            if timestamp <= parent.timestamp:
                raise EngineError(
                    f"block timestamp {timestamp} must be greater than the parent's "
                    f"({parent.timestamp}, block {parent.number})"
                )
            # a bare timestamp: anvil and hardhat both take it (hardhat refuses anvil's
            # {"timestamp", "blocks"} object)
            self._rpc("evm_mine", [timestamp])
        info = self.head()
        for h in info.tx_hashes:
            self._pending.pop(h, None)
        return info

    def receipt(self, tx_hash: bytes) -> Receipt | None:
        tx_hash = bytes(tx_hash)
        cached = self._receipts.get(tx_hash)
        if cached is not None:
            return cached
        r = self._rpc("eth_getTransactionReceipt", ["0x" + tx_hash.hex()])
        if r is None:
            return None
        status = _int(r["status"]) == 1
        created = to_checksum_address(r["contractAddress"]) if r.get("contractAddress") else None
        if not status:
            output, reason = self._trace_output(tx_hash)
        else:  # a trace replays the block up to the transaction: only creations read code
            output, reason = (self.code(created) if created else b""), None
        logs = tuple(self._log(log) for log in r["logs"])
        number = _int(r["blockNumber"])
        timestamp = self._timestamps.get(number)
        if timestamp is None:
            timestamp = self._timestamps[number] = self.block(number).timestamp
        nonce = self._nonces.get(tx_hash)
        if nonce is None:
            nonce = _int(self._rpc("eth_getTransactionByHash", ["0x" + tx_hash.hex()])["nonce"])
        receipt = Receipt(
            tx_hash=tx_hash,
            block_number=number,
            block_hash=_bytes(r["blockHash"]),
            block_timestamp=timestamp,
            tx_index=_int(r["transactionIndex"]),
            sender=to_checksum_address(r["from"]),
            to=to_checksum_address(r["to"]) if r.get("to") else None,
            nonce=nonce,
            contract_address=created,
            status=status,
            gas_used=_int(r["gasUsed"]),
            cumulative_gas_used=_int(r["cumulativeGasUsed"]),
            effective_gas_price=_int(r["effectiveGasPrice"]),
            logs=logs,
            output=output,
            revert_reason=reason,
        )
        self._receipts[tx_hash] = receipt
        return receipt

    def _trace_output(self, tx_hash: bytes) -> tuple[bytes, str | None]:
        """(revert data, decoded revert reason) of a failed transaction."""
        if self._tracing is False:
            return b"", None
        config = {"tracer": "callTracer", "tracerConfig": {"onlyTopCall": True}}
        trace = self._try("debug_traceTransaction", ["0x" + tx_hash.hex(), config])
        self._tracing = trace is not None
        if not isinstance(trace, dict):
            return b"", None
        output = _bytes(trace.get("output"))
        return output, decode_revert_reason(output)

    @staticmethod
    def _log(log: dict[str, Any]) -> Log:
        return Log(
            address=to_checksum_address(log["address"]),
            topics=tuple(_bytes(t) for t in log["topics"]),
            data=_bytes(log["data"]),
            block_number=_int(log["blockNumber"]),
            tx_hash=_bytes(log["transactionHash"]),
            tx_index=_int(log["transactionIndex"]),
            log_index=_int(log["logIndex"]),
        )

    # -- reads ----------------------------------------------------------------------------------
    def _tx_object(
        self, sender: str | None, to: str | None, data: bytes, value: int
    ) -> dict[str, Any]:
        tx: dict[str, Any] = {"data": "0x" + bytes(data).hex(), "value": hex(value)}
        if sender:
            tx["from"] = to_checksum_address(sender)
        if to:
            tx["to"] = to_checksum_address(to)
        return tx

    @staticmethod
    def _revert_data(exc: EngineError) -> bytes:
        err = exc.error if isinstance(exc, RPCError) else None
        data = err.get("data") if isinstance(err, dict) else None
        if isinstance(data, dict):  # some nodes nest it
            data = data.get("data")
        return _bytes(data) if isinstance(data, str) and data.startswith("0x") else b""

    def call(
        self, to: str | None, data: bytes, *, sender: str | None = None, value: int = 0
    ) -> CallResult:
        tx = self._tx_object(sender, to, data, value)
        config = {"tracer": "callTracer", "tracerConfig": {"onlyTopCall": True}}
        trace = self._try("debug_traceCall", [tx, "latest", config])
        if isinstance(trace, dict):
            ok = not trace.get("error")
            output = _bytes(trace.get("output"))
            gas = _int(trace.get("gasUsed", "0x0"))
            return CallResult(ok, output, gas, None if ok else decode_revert_reason(output))
        try:
            output = _bytes(self._rpc("eth_call", [tx, "latest"]))
        except EngineError as exc:
            revert = self._revert_data(exc)
            return CallResult(False, revert, 0, decode_revert_reason(revert))
        return CallResult(True, output, 0, None)

    def estimate_gas(self, sender: str, to: str | None, data: bytes, value: int = 0) -> int:
        try:
            return _int(self._rpc("eth_estimateGas", [self._tx_object(sender, to, data, value)]))
        except EngineError as exc:
            revert = self._revert_data(exc)
            reason = decode_revert_reason(revert)
            if reason is not None:
                err = lifecycle_error_from_reason(reason)
                if err is not None:
                    raise err from None
            raise TransactionFailed(
                f"gas estimation failed: the transaction would revert ({reason or exc})"
            ) from None

    def nonce(self, address: str) -> int:
        return _int(self._rpc("eth_getTransactionCount", [to_checksum_address(address), "latest"]))

    def next_nonce(self, address: str) -> int:
        return _int(
            self._rpc("eth_getTransactionCount", [to_checksum_address(address), "pending"])
        )

    def balance(self, address: str) -> int:
        return _int(self._rpc("eth_getBalance", [to_checksum_address(address), "latest"]))

    def code(self, address: str) -> bytes:
        return _bytes(self._rpc("eth_getCode", [to_checksum_address(address), "latest"]))

    # -- blocks and logs --------------------------------------------------------------------------
    @staticmethod
    def _block_info(b: dict[str, Any]) -> BlockInfo:
        return BlockInfo(
            number=_int(b["number"]),
            hash=_bytes(b["hash"]),
            parent_hash=_bytes(b["parentHash"]),
            timestamp=_int(b["timestamp"]),
            gas_used=_int(b["gasUsed"]),
            gas_limit=_int(b["gasLimit"]),
            base_fee=_int(b.get("baseFeePerGas", "0x0")),
            tx_hashes=tuple(_bytes(t) for t in b["transactions"]),
        )

    def head(self) -> BlockInfo:
        return self._block_info(self._rpc("eth_getBlockByNumber", ["latest", False]))

    def block(self, number: int) -> BlockInfo:
        b = self._rpc("eth_getBlockByNumber", [hex(number), False]) if number >= 0 else None
        if b is None:
            raise EngineError(f"no block {number}: the chain has blocks 0..{self.head().number}")
        return self._block_info(b)

    def logs(
        self,
        address: str | None = None,
        from_block: int = 0,
        to_block: int | None = None,
        topics: list[bytes | None] | None = None,
    ) -> list[Log]:
        query: dict[str, Any] = {
            "fromBlock": hex(from_block),
            "toBlock": "latest" if to_block is None else hex(to_block),
        }
        if address is not None:
            query["address"] = to_checksum_address(address)
        if topics:
            query["topics"] = [None if t is None else "0x" + bytes(t).hex() for t in topics]
        return [self._log(log) for log in self._rpc("eth_getLogs", [query])]

    # -- snapshots ------------------------------------------------------------------------------
    def snapshot(self) -> int:
        node_id = self._rpc("evm_snapshot")
        sid = next(self._snapshot_ids)
        self._snapshots[sid] = (node_id, dict(self._pending))
        return sid

    def revert(self, snapshot_id: int) -> None:
        node_id, pending = rewind_snapshots(self._snapshots, snapshot_id)
        if not self._rpc("evm_revert", [node_id]):
            raise EngineError(f"the node refused to revert to its snapshot {node_id}")
        # a node's revert consumes the snapshot; ours stays valid: take it again
        self._snapshots[snapshot_id] = (self._rpc("evm_snapshot"), pending)
        # the node's pool is not part of its snapshot: put back exactly the snapshot's pending
        # transactions, in arrival order (anvil; other nodes keep their pool as it is)
        if self._try("anvil_dropAllTransactions") is not None:
            for raw in pending.values():
                self._rpc("eth_sendRawTransaction", ["0x" + raw.hex()])
        self._pending = dict(pending)
        self._receipts.clear()
        self._timestamps.clear()

    def release(self, snapshot_id: int) -> None:
        self._snapshots.pop(snapshot_id, None)

    # -- fees -----------------------------------------------------------------------------------
    def base_fee(self) -> int:
        pending = self._try("eth_getBlockByNumber", ["pending", False])
        if isinstance(pending, dict) and pending.get("baseFeePerGas"):
            return _int(pending["baseFeePerGas"])
        head = self.head()
        return next_base_fee(head.base_fee, head.gas_used, head.gas_limit)

    @property
    def gas_limit(self) -> int:
        return self.head().gas_limit
