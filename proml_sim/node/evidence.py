"""Where verification, lineage and export read their facts from: a live node or a bundle.

An :class:`EvidenceSource` gives the chain id, the lifecycle contracts and their IRs, every
lifecycle event of each contract in chain order *with its block metadata*
(:class:`ChainEvent`), and verified off-chain blobs.  :class:`LiveSource` reads them from a
:class:`~proml_sim.node.service.ProMLNode` (its chain and its store); the offline evidence bundle
(``bundle.py``) implements the same protocol from a zip file, so ``verify``, ``Lineage`` and
``export_prov`` run unchanged on either.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

from eth_utils.address import is_address, to_checksum_address

from proml_sim.chain.client import event_from_args
from proml_sim.errors import NodeError, StoreError, UnknownName, unknown_name_message
from proml_sim.fsutil import atomic_write_with
from proml_sim.ir import (
    EVENT_TYPES,
    ZERO32,
    LifecycleEvent,
    LifecycleIR,
    Registered,
)
from proml_sim.node.records import Record
from proml_sim.node.service import ArtefactRef, ProMLNode, find_named, name_salt
from proml_sim.node.store import BlobStore, check_digest, sha256_file


@dataclass(frozen=True)
class ChainEvent:
    """One lifecycle event as the chain holds it: the event and where and by whom it happened."""

    lifecycle: str
    address: str  # the emitting contract
    block: int
    timestamp: int  # the block's timestamp (seconds)
    tx_hash: bytes
    tx_index: int
    log_index: int  # position among all logs of the block
    sender: str  # the signer of the transaction
    event: LifecycleEvent

    @property
    def position(self) -> tuple[int, int]:
        """Chain order: (block, log index)."""
        return (self.block, self.log_index)

    @property
    def kind(self) -> str:
        return type(self.event).__name__

    def to_json(self) -> dict[str, Any]:
        return {
            "lifecycle": self.lifecycle, "address": self.address, "block": self.block,
            "timestamp": self.timestamp, "tx_hash": "0x" + self.tx_hash.hex(),
            "tx_index": self.tx_index, "log_index": self.log_index, "sender": self.sender,
            "type": self.kind, "args": event_to_json(self.event),
        }

    @classmethod
    def from_json(cls, d: Any) -> ChainEvent:
        """Parse :meth:`to_json` output; ``ValueError`` names the offending field."""
        if not isinstance(d, dict):
            raise ValueError("an event must be a JSON object")
        return cls(
            lifecycle=_field(d, "lifecycle", str), address=_address(_field(d, "address", str),
                                                                    "address"),
            block=_field(d, "block", int), timestamp=_field(d, "timestamp", int),
            tx_hash=_hex_bytes(_field(d, "tx_hash", str), "tx_hash", 32),
            tx_index=_field(d, "tx_index", int), log_index=_field(d, "log_index", int),
            sender=_address(_field(d, "sender", str), "sender"),
            event=event_from_json(_field(d, "type", str), _field(d, "args", dict)),
        )


def event_to_json(ev: LifecycleEvent) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(ev):
        v = getattr(ev, f.name)
        if isinstance(v, bytes):
            v = "0x" + v.hex()
        elif isinstance(v, tuple):
            v = ["0x" + x.hex() for x in v]
        out[f.name] = v
    return out


#: the integer event arguments the contracts declare uint8 (``codegen/vyper.py``); the others
#: are uint256
_UINT8_ARGS = frozenset({"state", "transition", "source", "target", "role", "kind"})


def event_from_json(kind: str, args: dict[str, Any]) -> LifecycleEvent:
    """A lifecycle event from its JSON form, every field type-checked (``ValueError``)."""
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"type: {kind!r} is not a lifecycle event ({', '.join(EVENT_TYPES)})")
    kw: dict[str, Any] = {}
    extra = sorted(set(args) - {f.name for f in dataclasses.fields(cls)})
    if extra:  # the event holds no such argument: nothing read may go unchecked
        raise ValueError(f"args.{extra[0]} is not an argument of {kind}")
    for f in dataclasses.fields(cls):
        where = f"args.{f.name}"
        if f.name not in args:
            raise ValueError(f"{where} is missing")
        v = args[f.name]
        typ = str(f.type)
        if typ == "bytes":
            kw[f.name] = _hex_bytes(v, where, 32)
        elif typ == "int":
            bits = 8 if f.name in _UINT8_ARGS else 256
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 1 << bits:
                raise ValueError(f"{where} must be a non-negative integer below 2^{bits} (the "
                                 f"event's uint{bits}), not {v!r:.80}")
            kw[f.name] = v
        elif typ == "str" and f.name in ("locator",):
            if not isinstance(v, str):
                raise ValueError(f"{where} must be a string")
            kw[f.name] = v
        elif typ == "str":
            kw[f.name] = _address(v, where)
        else:  # tuple[bytes, ...]
            if not isinstance(v, list):
                raise ValueError(f"{where} must be a list of 0x hex ids")
            kw[f.name] = tuple(_hex_bytes(x, f"{where}[{i}]", 32) for i, x in enumerate(v))
    return cls(**kw)  # type: ignore[no-any-return]


def _field(d: dict[str, Any], name: str, typ: type) -> Any:
    if name not in d:
        raise ValueError(f"{name} is missing")
    v = d[name]
    if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
        raise ValueError(f"{name} must be {typ.__name__}, not {type(v).__name__}")
    return v


def _hex_bytes(v: Any, where: str, size: int) -> bytes:
    if not isinstance(v, str) or not v.startswith("0x"):
        raise ValueError(f"{where} must be a 0x-prefixed hex string")
    try:
        raw = bytes.fromhex(v[2:])
    except ValueError:
        raise ValueError(f"{where} is not valid hex") from None
    if len(raw) != size:
        raise ValueError(f"{where} must be {size} bytes, got {len(raw)}")
    return raw


def _address(v: Any, where: str) -> str:
    if not isinstance(v, str) or not is_address(v):
        raise ValueError(f"{where} must be a 0x address, not {v!r}")
    return str(to_checksum_address(v))


def hexdigest(digest: str | bytes) -> str:
    """A digest as 64 lower-case hex characters (``StoreError`` if it is not one)."""
    if isinstance(digest, bytes):
        if len(digest) != 32:
            raise StoreError(f"a SHA-256 digest has 32 bytes, not {len(digest)}")
        return digest.hex()
    return check_digest(digest)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Write ``path`` through a temporary file in its directory, ``fsync`` and rename: readers
    see the old file or the whole new one, never a half-written one."""
    path = Path(path)
    if not path.parent.is_dir():
        raise NodeError(f"cannot write {path}: the directory {path.parent} does not exist; "
                        "create it or pick another path")
    try:
        return atomic_write_with(path, write)
    except OSError as exc:
        raise NodeError(f"cannot write {path}: {exc.strerror or exc}; check the directory's "
                        "permissions and free space") from exc


def domain_name(raw: bytes) -> str | None:
    """A bytes32 trust domain as text (``None`` for the zero domain)."""
    stripped = raw.rstrip(b"\0")
    return stripped.decode("utf-8", errors="replace") if stripped else None


@runtime_checkable
class EvidenceSource(Protocol):
    """What verification, lineage and PROV export read.  Implemented by :class:`LiveSource` (a
    node) and ``BundleSource`` (an offline evidence bundle)."""

    @property
    def chain_id(self) -> int:
        """The EIP-155 chain id the source claims its events come from."""

    @property
    def contracts(self) -> Mapping[str, str]:
        """Lifecycle name -> the address of its (registry) contract."""

    @property
    def irs(self) -> Mapping[str, LifecycleIR]:
        """Lifecycle name -> its IR (the rules replay checks against)."""

    def events(self, lifecycle: str | None = None) -> Sequence[ChainEvent]:
        """Every lifecycle event of one contract (or of all, ``None``), in chain order."""

    def deployed_fingerprint(self, lifecycle: str) -> str | None:
        """The IR fingerprint the deployed contract reports (``IR_FINGERPRINT()``), if known."""

    def blob(self, digest: str | bytes) -> bytes:
        """A blob's bytes, verified against the digest (``StoreError`` if missing,
        ``BlobCorrupted`` if its bytes no longer hash to it)."""

    def open_blob(self, digest: str | bytes) -> BinaryIO:
        """A file object on the verified blob (for copying large blobs in constant memory)."""

    def has_blob(self, digest: str | bytes) -> bool:
        """Whether some copy of the blob is present (intact or not)."""

    def check_blob(self, digest: str | bytes) -> tuple[bool, str]:
        """(intact and available, a sentence saying where, or what is wrong and the fix);
        hashes in a stream, so large blobs cost constant memory."""

    def describe(self) -> str:
        """Where the evidence comes from, for reports."""


def load_record(source: EvidenceSource, digest: str | bytes) -> Record | None:
    """The provenance record behind an evidence digest; ``None`` for the zero digest or for a
    blob that is a plain file; ``StoreError``/``BlobCorrupted`` when the blob is unavailable."""
    if isinstance(digest, bytes) and digest == ZERO32:
        return None
    data = source.blob(digest)
    return parse_record(data)


def parse_record(data: bytes) -> Record | None:
    """A record from blob bytes, or ``None`` when the bytes are not a record."""
    if not data.startswith(b"{"):
        return None
    try:
        return Record.from_bytes(data)
    except (ValueError, KeyError, TypeError):
        return None


def resolve(source: EvidenceSource, ref: str | bytes | ArtefactRef) -> ArtefactRef:
    """An artefact of ``source`` by :class:`ArtefactRef`, ``0x`` id, ``name`` or
    ``name@0xregistrant`` (names are found through their registration salt)."""
    regs = [(ce.lifecycle, ce.event) for ce in source.events()
            if isinstance(ce.event, Registered)]
    if isinstance(ref, ArtefactRef):
        if not any(lc == ref.lifecycle and ev.id == ref.id for lc, ev in regs):
            raise UnknownName(f"{ref.lifecycle} artefact {ref.hex} is not registered in "
                              f"{source.describe()}; check the id")
        return ref
    if isinstance(ref, bytes) or (ref.startswith("0x") and len(ref) == 66):
        try:
            aid = ref if isinstance(ref, bytes) else bytes.fromhex(ref[2:])
        except ValueError:
            raise UnknownName(f"{ref!r} is not a 0x artefact id (64 hex digits)") from None
        hits = [(lc, ev) for lc, ev in regs if ev.id == aid]
        if not hits:
            raise UnknownName(f"no artefact with id 0x{aid.hex()} in {source.describe()}; "
                              "check the id")
        lc, ev = hits[0]
        return ArtefactRef(lc, aid, _name_of(source, ev))
    return find_named(ref, regs, f"in {source.describe()}",
                      "check the name (or pass its 0x id)")


def _name_of(source: EvidenceSource, ev: Registered) -> str | None:
    if ev.digest == ZERO32 or not source.has_blob(ev.digest):
        return None
    try:
        rec = load_record(source, ev.digest)
    except StoreError:
        return None
    return rec.name if rec is not None and name_salt_ok(rec.name, ev.salt) else None


def name_salt_ok(name: str | None, salt: bytes) -> bool:
    try:
        return name is not None and name_salt(name) == salt
    except NodeError:
        return False


def collect_events(backend: Any, lifecycle: str, address: str, codec: Any
                   ) -> list[ChainEvent]:
    """The lifecycle events a registry contract emitted, with block time and tx sender (one
    ``logs`` call; one block header and one receipt per distinct block and transaction)."""
    times: dict[int, int] = {}
    senders: dict[bytes, str] = {}
    out: list[ChainEvent] = []
    for log in backend.logs(address):
        if not codec.knows(log.topics):
            continue
        name, args = codec.decode_log(log)
        if name not in EVENT_TYPES:
            continue
        if log.block_number not in times:
            times[log.block_number] = backend.block(log.block_number).timestamp
        if log.tx_hash not in senders:
            receipt = backend.receipt(log.tx_hash)
            senders[log.tx_hash] = receipt.sender if receipt is not None else ""
        out.append(ChainEvent(lifecycle, log.address, log.block_number,
                              times[log.block_number], log.tx_hash, log.tx_index, log.log_index,
                              senders[log.tx_hash], event_from_args(name, args)))
    return out


def merge_in_chain_order(groups: Iterable[Sequence[ChainEvent]]) -> list[ChainEvent]:
    return sorted((ce for g in groups for ce in g), key=lambda ce: ce.position)


class LiveSource:
    """A node's view: its chain (events read once, on first use) and its store (with replicas).

    Only the registry contract layout is supported (the layout ``proml init`` deploys).
    """

    def __init__(self, node: ProMLNode, *, fetch: bool = True) -> None:
        self.node = node
        #: HTTP peers a missing blob is fetched from (hash-checked; the key is unlocked only
        #: when one is needed); what they said when none could serve it is kept in ``notes``
        self.peers: Any = None
        self.notes: dict[str, str] = {}
        #: when a set, missing blobs are collected here instead of fetched (:meth:`fetch` them
        #: later, e.g. outside a lock, and read again)
        self.deferred: set[str] | None = None
        if fetch and node.peer_urls():
            from proml_sim.node.peers import (
                PeerFetcher,
                RequestSigner,
                fetch_deadline_s,
                max_fetch_bytes,
            )

            self.peers = PeerFetcher(node.peer_urls(), lambda: RequestSigner.of_node(node),
                                     max_bytes=max_fetch_bytes(node.config),
                                     deadline_s=fetch_deadline_s(node.config))
        for lc, client in node.clients.items():
            if client.layout != "registry":
                raise NodeError(f"{lc} is deployed in the {client.layout} layout; evidence is "
                                "read from registry contracts only (redeploy with the registry "
                                "layout)")

    @property
    def chain_id(self) -> int:
        return int(self.node.backend.chain_id)

    @cached_property
    def contracts(self) -> Mapping[str, str]:
        return {lc: c.address for lc, c in self.node.clients.items()}

    @cached_property
    def irs(self) -> Mapping[str, LifecycleIR]:
        return {lc: c.ir for lc, c in self.node.clients.items()}

    @cached_property
    def _events(self) -> dict[str, list[ChainEvent]]:
        return {lc: collect_events(self.node.backend, lc, c.address, c.codec)
                for lc, c in self.node.clients.items()}

    @cached_property
    def _all(self) -> list[ChainEvent]:
        return merge_in_chain_order(self._events.values())

    def events(self, lifecycle: str | None = None) -> Sequence[ChainEvent]:
        if lifecycle is None:
            return self._all
        try:
            return self._events[lifecycle]
        except KeyError:
            raise NodeError(unknown_name_message(f"unknown lifecycle {lifecycle!r}", lifecycle,
                                                 list(self._events))) from None

    def refresh(self) -> None:
        """Forget the events read so far (the chain may have grown)."""
        self.__dict__.pop("_events", None)
        self.__dict__.pop("_all", None)

    def deployed_fingerprint(self, lifecycle: str) -> str | None:
        client = self.node.clients.get(lifecycle)
        if client is None:
            return None
        try:
            return client.fingerprint()
        except Exception:  # no code there, or not a lifecycle contract
            return None

    def _copies(self, digest: str) -> list[Path]:
        store = self.node.store
        return [store.path_of(digest)] + [BlobStore(r).path_of(digest) for r in store.replicas]

    def _fetch_missing(self, d: str) -> None:
        """Fetch a blob no local copy holds from the HTTP peers (once per digest)."""
        if self.peers is None or d in self.notes or any(p.exists() for p in self._copies(d)):
            return
        if self.deferred is not None:
            self.deferred.add(d)
            return
        self.fetch(d)

    def fetch(self, d: str) -> None:
        """Fetch blob ``d`` from the HTTP peers now; what happened goes to :attr:`notes`."""
        from proml_sim.errors import PeerError

        try:
            url = self.peers.fetch_into(self.node.store, d)
            self.notes[d] = f"fetched from peer {url}"
        except PeerError as exc:
            self.notes[d] = str(exc)

    def blob(self, digest: str | bytes) -> bytes:
        self._fetch_missing(hexdigest(digest))
        return self.node.store.get(hexdigest(digest))

    def open_blob(self, digest: str | bytes) -> BinaryIO:
        self._fetch_missing(hexdigest(digest))
        return self.node.store.open(hexdigest(digest))

    def has_blob(self, digest: str | bytes) -> bool:
        self._fetch_missing(hexdigest(digest))
        return any(p.exists() for p in self._copies(hexdigest(digest)))

    def check_blob(self, digest: str | bytes) -> tuple[bool, str]:
        d = hexdigest(digest)
        self._fetch_missing(d)
        bad: list[str] = []
        for path in self._copies(d):
            if not path.exists():
                continue
            got, _ = sha256_file(path)
            if got == d:
                where = "the node's store" if path.parent.parent.parent == self.node.store.root \
                    else f"replica {path.parent.parent.parent}"
                note = f"; but {'; '.join(bad)}" if bad else ""
                peer = f" ({self.notes[d]})" if d in self.notes else ""
                return True, f"intact in {where}{peer}{note}"
            bad.append(f"the copy at {path} is corrupted (its bytes hash to {got}): restore it "
                       "from a good replica or the original file")
        if bad:
            return False, "; ".join(bad)
        stores = [str(self.node.store.root), *map(str, self.node.store.replicas)]
        peers = f"; {self.notes[d]}" if d in self.notes else ""
        return False, (f"missing from {', '.join(stores)}: add the original file again "
                       "(`proml register`/`record` store it) or configure a replica that has it"
                       + peers)

    def describe(self) -> str:
        return f"node {self.node.name} ({self.node.home})"
