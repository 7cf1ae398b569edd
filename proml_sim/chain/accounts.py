"""Deterministic accounts, key custody and transaction signing.

Keys come from a seed (``keccak(namespace|seed|index)``), so a simulation's addresses are a
function of its seed.  A :class:`Signer` keeps its private key to itself and signs EIP-1559
transactions with libsecp256k1 (coincurve); a :class:`KeyRing` is what one actor holds, and asking
it for a key it does not hold raises :class:`~proml_sim.errors.KeyCustodyError`.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import coincurve
from eth_utils.address import to_canonical_address, to_checksum_address

from proml_sim.chain.trie import keccak, rlp_encode_bytes, rlp_encode_list, rlp_uint
from proml_sim.errors import EngineError, KeyCustodyError, NonceTaken

if TYPE_CHECKING:
    from proml_sim.chain.base import ChainBackend, Receipt

__all__ = [
    "DEFAULT_TIP",
    "KeyRing",
    "Signer",
    "TxSender",
    "derive_private_keys",
    "send_and_mine",
]

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
DEFAULT_TIP = 10**9  # 1 gwei priority fee
_DYNAMIC_FEE_TX_TYPE = b"\x02"


def derive_private_keys(seed: str | int, n: int, *, namespace: str = "proml-sim") -> list[bytes]:
    """``n`` private keys derived from ``seed``: key ``i`` is ``keccak("namespace|seed|i")``.

    A digest that is not a valid secp256k1 scalar (0 or >= the group order, probability ~2^-128)
    is re-hashed with a ``|retry`` suffix until it is, so the result is still deterministic.
    ``seed`` is used through ``str()``: ``42`` and ``"42"`` give the same keys.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    keys: list[bytes] = []
    for index in range(n):
        material = f"{namespace}|{seed}|{index}".encode()
        key = keccak(material)
        while not 0 < int.from_bytes(key, "big") < SECP256K1_N:
            material += b"|retry"
            key = keccak(material)
        keys.append(key)
    return keys


class Signer:
    """One externally owned account: its address and, privately, its key."""

    __slots__ = ("__key", "address", "canonical_address")

    def __init__(self, private_key: bytes) -> None:
        if len(private_key) != 32 or not 0 < int.from_bytes(private_key, "big") < SECP256K1_N:
            raise EngineError("a private key must be 32 bytes encoding an integer in [1, n-1]")
        self.__key = coincurve.PrivateKey(private_key)
        public = self.__key.public_key.format(compressed=False)[1:]
        self.canonical_address: bytes = keccak(public)[12:]
        self.address: str = to_checksum_address(self.canonical_address)

    def __repr__(self) -> str:
        return f"Signer({self.address})"

    def sign_transaction(
        self,
        *,
        chain_id: int,
        nonce: int,
        to: str | bytes | None,
        data: bytes,
        gas: int,
        max_fee_per_gas: int,
        max_priority_fee_per_gas: int,
        value: int = 0,
    ) -> bytes:
        """A raw signed EIP-1559 (type 2) transaction with an empty access list.

        ``to=None`` (or ``b""``) creates a contract with ``data`` as init code.
        """
        if to is None or to == b"":
            to_bytes = b""
        elif isinstance(to, str):
            to_bytes = to_canonical_address(to)
        else:
            to_bytes = to
        # Encoded by hand: the payload is a flat list of scalars, and pyrlp's generic encoder
        # costs more than the signature itself.  Checked against py-evm's builder in the tests.
        payload = (
            rlp_uint(chain_id)
            + rlp_uint(nonce)
            + rlp_uint(max_priority_fee_per_gas)
            + rlp_uint(max_fee_per_gas)
            + rlp_uint(gas)
            + rlp_encode_bytes(to_bytes)
            + rlp_uint(value)
            + rlp_encode_bytes(data)
            + b"\xc0"  # access list: []
        )
        digest = keccak(_DYNAMIC_FEE_TX_TYPE + rlp_encode_list(payload))
        sig = self.__key.sign_recoverable(digest, hasher=None)  # libsecp256k1: low-s, RFC 6979
        r = int.from_bytes(sig[0:32], "big")
        s = int.from_bytes(sig[32:64], "big")
        return _DYNAMIC_FEE_TX_TYPE + rlp_encode_list(
            payload + rlp_uint(sig[64]) + rlp_uint(r) + rlp_uint(s)
        )


class KeyRing:
    """The keys one actor holds (key custody).

    ``owner`` names the actor in custody errors.  Addresses keep insertion order.
    """

    def __init__(self, signers: Iterable[Signer] = (), *, owner: str = "this actor") -> None:
        self.owner = owner
        self._signers: dict[str, Signer] = {}
        for s in signers:
            self._signers[s.address] = s

    @classmethod
    def from_seed(
        cls, seed: str | int, n: int, *, namespace: str = "proml-sim", owner: str = "this actor"
    ) -> KeyRing:
        """A key ring holding the first ``n`` keys derived from ``seed``."""
        return cls(
            (Signer(k) for k in derive_private_keys(seed, n, namespace=namespace)), owner=owner
        )

    def add(self, private_key: bytes) -> str:
        """Take custody of a key; return its checksum address."""
        signer = Signer(private_key)
        self._signers[signer.address] = signer
        return signer.address

    @property
    def addresses(self) -> tuple[str, ...]:
        """Checksum addresses of the held keys."""
        return tuple(self._signers)

    def signer(self, address: str) -> Signer:
        """The signer for ``address``; :class:`KeyCustodyError` if the key is not held here."""
        try:
            return self._signers[to_checksum_address(address)]
        except (KeyError, ValueError):
            raise KeyCustodyError(
                f"actor {self.owner} holds no key for {address}; add it to its KeyRing "
                f"(KeyRing.add(private_key)) or send from one of its {len(self._signers)} "
                "address(es)"
            ) from None

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str):
            return False
        try:
            return to_checksum_address(address) in self._signers
        except ValueError:
            return False

    def __iter__(self) -> Iterator[Signer]:
        return iter(self._signers.values())

    def __len__(self) -> int:
        return len(self._signers)

    def __repr__(self) -> str:
        return f"KeyRing(owner={self.owner!r}, {len(self._signers)} key(s))"


class TxSender:
    """Signs and submits transactions for one signer on one backend.

    Nonces come from :meth:`ChainBackend.next_nonce` (which counts the sender's pending
    transactions), so several transactions can be sent before a block is produced, and a
    :meth:`ChainBackend.revert` needs no bookkeeping here; fees and a nonce another process
    took: :func:`submit_signed`.
    """

    def __init__(self, backend: ChainBackend, signer: Signer, *, tip: int = DEFAULT_TIP) -> None:
        self.backend = backend
        self.signer = signer
        self.tip = tip
        self._to_cache: dict[str, bytes] = {}

    @property
    def address(self) -> str:
        return self.signer.address

    def send(
        self,
        to: str | None,
        data: bytes = b"",
        *,
        gas: int | None = None,
        value: int = 0,
        tip: int | None = None,
    ) -> bytes:
        """Sign and submit; return the transaction hash.  ``gas=None`` asks
        :meth:`ChainBackend.estimate_gas` (one extra execution: pass ``gas`` on hot paths)."""
        backend = self.backend
        if gas is None:
            gas = backend.estimate_gas(self.signer.address, to, data, value)
        tip = self.tip if tip is None else tip
        to_bytes = b""
        if to is not None:
            cached = self._to_cache.get(to)
            if cached is None:
                cached = self._to_cache[to] = to_canonical_address(to)
            to_bytes = cached
        return submit_signed(backend, self.signer, to_bytes, data, gas=gas, tip=tip, value=value)


#: how many times a transaction is signed again after another one from the same account took
#: its nonce (:class:`~proml_sim.errors.NonceTaken`) before the error is the caller's
NONCE_ATTEMPTS = 8


def submit_signed(backend: ChainBackend, signer: Signer, to: str | bytes | None, data: bytes,
                  *, gas: int, tip: int = DEFAULT_TIP, value: int = 0) -> bytes:
    """Sign a transaction with the sender's next nonce (:meth:`ChainBackend.next_nonce`, which
    counts its pending transactions) and submit it; return its hash.  Fees: ``max_fee = 2 *
    base_fee + tip``, the usual wallet rule that survives a few full blocks of base-fee growth.

    Another process may send from the same account meanwhile (a second node home with the same
    key, the user's own script): when the node says the nonce is taken, the transaction was not
    sent, and it is signed again with the next nonce, after a short random wait, up to
    :data:`NONCE_ATTEMPTS` times."""
    attempt = 0
    while True:
        attempt += 1
        raw = signer.sign_transaction(
            chain_id=backend.chain_id,
            nonce=backend.next_nonce(signer.address),
            to=to,
            data=data,
            gas=gas,
            max_fee_per_gas=2 * backend.base_fee() + tip,
            max_priority_fee_per_gas=tip,
            value=value,
        )
        try:
            return backend.submit(raw)
        except NonceTaken as exc:
            if attempt >= NONCE_ATTEMPTS:
                raise NonceTaken(
                    f"{exc} ({attempt} attempts: another process keeps sending from "
                    f"{signer.address} at the same time; run it again when that one is done)",
                    exc.error) from None
            time.sleep(random.uniform(0.05, 0.2) * attempt)


def send_and_mine(
    backend: ChainBackend,
    signer: Signer,
    to: str | None,
    data: bytes = b"",
    gas: int | None = None,
    timestamp: int | None = None,
    *,
    value: int = 0,
) -> Receipt:
    """Send one transaction, produce a block, return its receipt (tests and scripts).

    Raises :class:`EngineError` if the transaction was not included (e.g. it waits behind a
    nonce gap or the block was full).
    """
    tx_hash = TxSender(backend, signer).send(to, data, gas=gas, value=value)
    backend.produce_block(timestamp)
    receipt = backend.receipt(tx_hash)
    if receipt is None:
        raise EngineError(
            f"transaction 0x{tx_hash.hex()} from {signer.address} was not included in the block "
            "just produced; it is still pending (nonce gap or full block?)"
        )
    return receipt


def is_address(value: object) -> bool:
    """``0x`` and 40 hex digits; in mixed case, a right EIP-55 checksum (so one flipped
    letter of a recorded address is found, not sent to the chain)."""
    from eth_utils.address import is_checksum_address

    if not (isinstance(value, str) and value[:2] == "0x"
            and re.fullmatch("[0-9a-fA-F]{40}", value[2:])):
        return False
    body = value[2:]
    return body in (body.lower(), body.upper()) or bool(is_checksum_address(value))
