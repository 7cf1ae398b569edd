"""ABI helpers: revert reasons, call encoding, output and event decoding (eth-abi underneath).

Selectors and event topics are computed once per :class:`ContractABI` and cached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import DecodingError

from proml_sim.chain.trie import keccak
from proml_sim.errors import EngineError

__all__ = [
    "ERROR_SELECTOR",
    "PANIC_SELECTOR",
    "ContractABI",
    "EventCodec",
    "canonical_type",
    "decode_output",
    "decode_revert_reason",
    "encode_call",
    "event_topic",
    "function_selector",
]

ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)

_ABIEntry = Mapping[str, Any]


def decode_revert_reason(data: bytes) -> str | None:
    """The message of an ``Error(string)`` revert payload, or ``None`` for anything else
    (empty data, custom errors, ``Panic(uint256)``, malformed payloads)."""
    if len(data) < 4 or data[:4] != ERROR_SELECTOR:
        return None
    try:
        (reason,) = abi_decode(["string"], data[4:])
    except (DecodingError, ValueError, OverflowError):
        return None
    return str(reason)


def canonical_type(param: _ABIEntry) -> str:
    """Canonical ABI type of a parameter, expanding tuples (``tuple[2]`` -> ``(a,b)[2]``)."""
    typ = str(param["type"])
    if typ.startswith("tuple"):
        inner = ",".join(canonical_type(c) for c in param.get("components", ()))
        return f"({inner}){typ[len('tuple') :]}"
    return typ


def _signature(entry: _ABIEntry) -> str:
    return f"{entry['name']}({','.join(canonical_type(p) for p in entry.get('inputs', ()))})"


def function_selector(entry: _ABIEntry) -> bytes:
    """The 4-byte selector of a function ABI entry."""
    return keccak(_signature(entry).encode())[:4]


def event_topic(entry: _ABIEntry) -> bytes:
    """topic0 of a (non-anonymous) event ABI entry."""
    return keccak(_signature(entry).encode())


def _is_reference(typ: str) -> bool:
    # an indexed string/bytes/array/tuple argument is stored as the keccak of its encoding
    return typ in ("string", "bytes") or typ.endswith("]") or typ.startswith("(")


class _Event:
    __slots__ = ("indexed", "name", "names", "non_indexed", "topic")

    def __init__(self, entry: _ABIEntry) -> None:
        self.name = str(entry["name"])
        self.topic = event_topic(entry)
        inputs = list(entry.get("inputs", ()))
        self.names = [str(p["name"]) for p in inputs]
        self.indexed = [(str(p["name"]), canonical_type(p)) for p in inputs if p.get("indexed")]
        self.non_indexed = [
            (str(p["name"]), canonical_type(p)) for p in inputs if not p.get("indexed")
        ]


class EventCodec:
    """Decodes logs of the events declared in an ABI into ``(event_name, {arg: value})``.

    Indexed arguments come from topics 1..n; an indexed dynamic argument (``string``,
    ``bytes``, arrays, tuples) is only its keccak hash on chain and is returned as those 32 bytes.
    Non-indexed arguments are ABI-decoded from the log data.  Arguments keep declaration order.
    """

    def __init__(self, abi: Sequence[_ABIEntry]) -> None:
        self._by_topic: dict[bytes, _Event] = {}
        for entry in abi:
            if entry.get("type") == "event" and not entry.get("anonymous"):
                ev = _Event(entry)
                self._by_topic[ev.topic] = ev

    @property
    def topics(self) -> dict[str, bytes]:
        """Event name -> topic0."""
        return {ev.name: t for t, ev in self._by_topic.items()}

    def topic(self, event_name: str) -> bytes:
        """topic0 of the named event (``EngineError`` if the ABI has no such event)."""
        for t, ev in self._by_topic.items():
            if ev.name == event_name:
                return t
        raise EngineError(f"the ABI declares no event {event_name!r}; known: {sorted(self.topics)}")

    def knows(self, topics: Sequence[bytes]) -> bool:
        """Whether a log with these topics is one of this ABI's events."""
        return bool(topics) and topics[0] in self._by_topic

    def decode(self, topics: Sequence[bytes], data: bytes) -> tuple[str, dict[str, Any]]:
        """Decode one log given its topics and data."""
        if not topics or topics[0] not in self._by_topic:
            raise EngineError(
                f"log topic0 {topics[0].hex() if topics else '(none)'} matches no event of this "
                f"ABI ({', '.join(sorted(self.topics)) or 'no events'})"
            )
        ev = self._by_topic[topics[0]]
        if len(topics) != len(ev.indexed) + 1:
            raise EngineError(
                f"log for event {ev.name} has {len(topics) - 1} indexed topics, "
                f"the ABI declares {len(ev.indexed)}"
            )
        values: dict[str, Any] = {}
        try:
            for (name, typ), topic in zip(ev.indexed, topics[1:], strict=True):
                values[name] = bytes(topic) if _is_reference(typ) else abi_decode([typ], topic)[0]
            if ev.non_indexed:
                decoded = abi_decode([t for _, t in ev.non_indexed], data)
                for (name, _), value in zip(ev.non_indexed, decoded, strict=True):
                    values[name] = value
        except DecodingError as exc:
            # the chain served bytes the event cannot have: damaged chain data (a node's own
            # store) or a contract that is not the one this ABI describes
            raise EngineError(f"log for event {ev.name} does not decode "
                              f"({type(exc).__name__}); the chain data is damaged (`proml "
                              "doctor` checks a node's chain and names the damage) or the "
                              "contract is not this ABI's") from None
        return ev.name, {n: values[n] for n in ev.names}

    def decode_log(self, log: Any) -> tuple[str, dict[str, Any]]:
        """Decode a :class:`~proml_sim.chain.base.Log` (anything with ``topics`` and ``data``)."""
        try:
            return self.decode(log.topics, log.data)
        except EngineError as exc:
            where = getattr(log, "block_number", None)
            if where is None:
                raise
            raise EngineError(f"log {getattr(log, 'log_index', '?')} of block {where} "
                              f"({getattr(log, 'address', '?')}): {exc}") from None


class ContractABI:
    """Function lookup with cached selectors and type lists for one contract ABI."""

    def __init__(self, abi: Sequence[_ABIEntry]) -> None:
        self.abi = list(abi)
        self._fns: dict[str, tuple[bytes, list[str], list[str]]] = {}
        for entry in self.abi:
            if entry.get("type") == "function":
                name = str(entry["name"])
                if name in self._fns:  # overloads: first wins; vyper emits none
                    continue
                self._fns[name] = (
                    function_selector(entry),
                    [canonical_type(p) for p in entry.get("inputs", ())],
                    [canonical_type(p) for p in entry.get("outputs", ())],
                )
        self.events = EventCodec(self.abi)

    def _fn(self, fn_name: str) -> tuple[bytes, list[str], list[str]]:
        try:
            return self._fns[fn_name]
        except KeyError:
            raise EngineError(
                f"the ABI has no function {fn_name!r}; known: {', '.join(sorted(self._fns))}"
            ) from None

    def selector(self, fn_name: str) -> bytes:
        """4-byte selector of ``fn_name``."""
        return self._fn(fn_name)[0]

    def encode_call(self, fn_name: str, args: Sequence[Any] = ()) -> bytes:
        """Calldata for ``fn_name(*args)``."""
        selector, in_types, _ = self._fn(fn_name)
        if len(args) != len(in_types):
            raise EngineError(
                f"{fn_name} takes {len(in_types)} argument(s) ({', '.join(in_types)}), "
                f"got {len(args)}"
            )
        return selector + abi_encode(in_types, list(args))

    def decode_output(self, fn_name: str, data: bytes) -> Any:
        """Decoded return value: ``None`` for no outputs, the value for one, a tuple for more."""
        _, _, out_types = self._fn(fn_name)
        if not out_types:
            return None
        values = abi_decode(out_types, data)
        return values[0] if len(out_types) == 1 else tuple(values)


_CACHE: dict[int, tuple[Sequence[_ABIEntry], ContractABI]] = {}


def _contract(abi: Sequence[_ABIEntry]) -> ContractABI:
    # Memo keyed by the ABI object's identity (the entry keeps the object alive, so the id cannot
    # be reused); callers pass the same ABI list again and again.  Do not mutate a cached ABI.
    hit = _CACHE.get(id(abi))
    if hit is None or hit[0] is not abi:
        hit = _CACHE[id(abi)] = (abi, ContractABI(abi))
    return hit[1]


def encode_call(abi: Sequence[_ABIEntry], fn_name: str, args: Sequence[Any] = ()) -> bytes:
    """Calldata for ``fn_name(*args)`` under ``abi`` (selectors cached per ABI object)."""
    return _contract(abi).encode_call(fn_name, args)


def decode_output(abi: Sequence[_ABIEntry], fn_name: str, data: bytes) -> Any:
    """Decode ``fn_name``'s return data under ``abi``."""
    return _contract(abi).decode_output(fn_name, data)
