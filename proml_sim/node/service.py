"""The ProML node: one per participant and trust domain.

Provider layer: a chain backend (a persistent embedded chain shared through a directory, or any
Ethereum JSON-RPC endpoint), the participant's keys, and an off-chain content-addressed store.
Service layer: register datasets and models, record lifecycle transitions with evidence,
approve, grant and revoke roles, status and history; lineage, verification, bundles and PROV
export build on these (``lineage.py``, ``verify.py``, ``bundle.py``, ``prov.py``).

Home directory (``--home``, default ``./.proml``)::

    node.json    format, name, domain, address, chain (journal path or RPC URL), contracts
    keys.json    the participant's private key (mode 0600)
    store/       the content-addressed blob store
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from proml_sim.chain import KeyRing, derive_private_keys
from proml_sim.chain.anchor import AnchorClient
from proml_sim.chain.base import ChainBackend
from proml_sim.chain.client import LifecycleClient
from proml_sim.chain.journal import JournaledChain
from proml_sim.compiler import compile_artefact
from proml_sim.errors import HomeError, NodeError, UnknownName
from proml_sim.fsutil import atomic_write_json
from proml_sim.ir import ZERO32, HistoryEntry, Registered, StepResult
from proml_sim.lifecycles import PAPER_LIFECYCLES
from proml_sim.node.records import FileRef, InputRef, Record, environment
from proml_sim.node.store import Blob, BlobStore

HOME_FORMAT = 1
DEFAULT_HOME = ".proml"
LIFECYCLES = {c.__name__: c for c in PAPER_LIFECYCLES}
FUND_WEI = 10**22


def name_salt(name: str) -> bytes:
    """The registration salt of an artefact name (so any node can resolve the name)."""
    if not name or len(name) > 200:
        raise NodeError("artefact names must be 1 to 200 characters")
    return hashlib.sha256(b"proml-name:" + name.encode()).digest()


def domain_bytes(domain: str) -> bytes:
    raw = domain.encode()
    if not raw or len(raw) > 32:
        raise NodeError(f"trust domain {domain!r} must be 1 to 32 bytes; shorten it")
    return raw.ljust(32, b"\0")


@dataclass(frozen=True)
class ArtefactRef:
    lifecycle: str
    id: bytes
    name: str | None = None

    @property
    def hex(self) -> str:
        return "0x" + self.id.hex()


def find_named(ref: str, registrations: Iterable[tuple[str, Registered]], where: str,
               hint: str) -> ArtefactRef:
    """The one registration named by ``ref`` (``name`` or ``name@0xregistrant``; a name is
    found through its registration salt) among ``(lifecycle, Registered)`` pairs;
    :class:`UnknownName` saying ``where`` it looked and ``hint`` if none, or the candidates if
    several."""
    name, _, registrant = ref.partition("@")
    salt = name_salt(name)
    found = [(lc, ev) for lc, ev in registrations if ev.salt == salt and (
        not registrant or ev.registrant.lower() == registrant.lower())]
    if not found:
        raise UnknownName(f"no artefact named {name!r} {where}; {hint}")
    if len(found) > 1:
        who = ", ".join(f"{name}@{ev.registrant} ({lc})" for lc, ev in found)
        raise UnknownName(f"the name {name!r} is ambiguous: {who}; use one of these forms")
    lc, ev = found[0]
    return ArtefactRef(lc, ev.id, name)


@dataclass
class StepHandle:
    """What a capture block may add to while it runs."""

    params: dict[str, Any] = field(default_factory=dict)
    outputs: list[str | Path] = field(default_factory=list)
    result: StepResult | None = None
    record_digest: str | None = None


class ProMLNode:
    """A participant's node.  Use :meth:`init` once, then :meth:`open`."""

    def __init__(self, home: Path, config: dict[str, Any], keys: KeyRing,
                 backend: ChainBackend) -> None:
        self.home = home
        self.config = config
        self.keys = keys
        self.address: str = config["address"]
        self.name: str = config["name"]
        self.domain: str = config["domain"]
        self.backend = backend
        self.store = BlobStore(home / "store", config.get("replicas", ()))
        self.clients = {
            # preflight: a call that would revert is refused before anything is signed or sent
            lc: LifecycleClient(backend, compile_artefact(LIFECYCLES[lc]), addr, automine=False,
                                preflight=True)
            for lc, addr in config["contracts"].items() if lc in LIFECYCLES
        }
        self.anchor = (AnchorClient(backend, _anchor_compiled(), config["contracts"]["Anchor"],
                                    automine=False) if "Anchor" in config["contracts"] else None)

    # -- creating and opening homes ---------------------------------------------------------
    @classmethod
    def init(cls, home: str | Path = DEFAULT_HOME, *, name: str, domain: str,
             chain_dir: str | Path | None = None, new_chain: bool = False,
             rpc_url: str | None = None, contracts: dict[str, str] | None = None,
             seed: str | None = None, replicas: Iterable[str | Path] = ()) -> ProMLNode:
        """Create a node home.  ``new_chain``: create the chain (journal at ``chain_dir``, or
        deploy on ``rpc_url``) and deploy the lifecycle contracts, this node being their admin;
        otherwise join the chain at ``chain_dir`` (contracts read from it) or at ``rpc_url``
        (``contracts`` given)."""
        home = Path(home)
        if (home / "node.json").exists():
            raise HomeError(f"{home} is already a node home; use it, or pick another --home")
        domain_bytes(domain)
        home.mkdir(parents=True, exist_ok=True)
        private_key = derive_private_keys(seed if seed is not None else os.urandom(32).hex(), 1,
                                          namespace="proml-node")[0]
        keys = KeyRing(owner=name)
        address = keys.add(private_key)
        config: dict[str, Any] = {"format": HOME_FORMAT, "name": name, "domain": domain,
                                  "address": address, "replicas": [str(r) for r in replicas]}
        if rpc_url:
            from proml_sim.chain.engines import make_backend

            backend = make_backend("rpc", rpc_url=rpc_url, funded=[address])
            config["chain"] = {"kind": "rpc", "url": rpc_url}
        else:
            cdir = Path(chain_dir) if chain_dir else home / "chain"
            if new_chain:
                backend = JournaledChain.create(cdir, funded=[address],
                                                genesis_timestamp=int(time.time()) - 60)
            else:
                backend = JournaledChain(cdir)
            config["chain"] = {"kind": "journal", "path": str(cdir.resolve())}
        signer = keys.signer(address)
        if new_chain:
            config["contracts"] = _deploy_all(backend, signer, domain)
            if isinstance(backend, JournaledChain):
                atomic_write_json(backend.directory / "deployments.json", config["contracts"],
                                  mkdir=False)
        elif contracts is not None:
            config["contracts"] = dict(contracts)
        elif isinstance(backend, JournaledChain):
            try:
                config["contracts"] = json.loads(
                    (backend.directory / "deployments.json").read_text())
            except FileNotFoundError:
                raise HomeError(f"the chain at {backend.directory} has no deployments.json; "
                                "create it with `proml init --new-chain`") from None
            _fund(backend, address)
        else:
            raise HomeError("joining an RPC chain needs the contract addresses (--contracts)")
        _write_keys(home / "keys.json", address, private_key)
        atomic_write_json(home / "node.json", config, mkdir=False)
        return cls(home, config, keys, backend)

    @classmethod
    def open(cls, home: str | Path = DEFAULT_HOME) -> ProMLNode:
        home = Path(home)
        try:
            config = json.loads((home / "node.json").read_text())
        except FileNotFoundError:
            raise HomeError(f"{home} is not a node home (no node.json); run `proml init` or "
                            "pass --home") from None
        except (OSError, ValueError) as exc:
            raise HomeError(f"cannot read {home / 'node.json'}: {exc}") from exc
        fmt = config.get("format")
        if not isinstance(fmt, int) or fmt > HOME_FORMAT:
            raise HomeError(f"node home {home} has format {fmt!r}, newer than this proml-sim "
                            f"understands ({HOME_FORMAT}); upgrade proml-sim")
        try:
            kdata = json.loads((home / "keys.json").read_text())
        except (OSError, ValueError) as exc:
            raise HomeError(f"cannot read the node's keys in {home / 'keys.json'}: {exc}") from exc
        keys = KeyRing(owner=config["name"])
        keys.add(bytes.fromhex(kdata["private_key"]))
        chain = config["chain"]
        backend: ChainBackend
        if chain["kind"] == "rpc":
            from proml_sim.chain.engines import make_backend

            backend = make_backend("rpc", rpc_url=chain["url"], funded=[config["address"]])
        else:
            backend = JournaledChain(chain["path"])
        return cls(home, config, keys, backend)

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def signer(self) -> Any:
        return self.keys.signer(self.address)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        if isinstance(self.backend, JournaledChain):
            with self.backend.locked():
                yield
        else:
            yield

    def _mine(self, client: Any, op: Any) -> Any:
        ts = max(int(time.time()), self.backend.head().timestamp + 1)
        self.backend.produce_block(ts)
        return client.result(op)

    def client(self, lifecycle: str) -> LifecycleClient:
        try:
            return self.clients[lifecycle]
        except KeyError:
            raise NodeError(f"unknown lifecycle {lifecycle!r}; use one of "
                            f"{', '.join(self.clients)}") from None

    # -- names --------------------------------------------------------------------------------
    def resolve(self, ref: str | ArtefactRef) -> ArtefactRef:
        """An artefact by name (``name`` or ``name@0xregistrant``) or by ``0x`` id."""
        if isinstance(ref, ArtefactRef):
            return ref
        if ref.startswith("0x") and len(ref) == 66:
            aid = bytes.fromhex(ref[2:])
            for lc, c in self.clients.items():
                if c.exists(aid):
                    return ArtefactRef(lc, aid, self.name_of(lc, aid))
            raise UnknownName(f"no artefact with id {ref} on this chain; check the id")
        registrations = [(lc, ev) for lc, c in self.clients.items()
                         for ev in c.events(topics=[c.codec.topic("Registered")])
                         if isinstance(ev, Registered)]
        return find_named(ref, registrations, "on this chain",
                          "register it with `proml register` or check the name")

    def name_of(self, lifecycle: str, aid: bytes) -> str | None:
        """The record's name for a registration, if its record is available."""
        for h in self.client(lifecycle).history(aid)[:1]:
            rec = self.record_of(h.digest)
            return rec.name if rec else None
        return None

    def record_of(self, digest: bytes) -> Record | None:
        """The off-chain record behind an evidence digest (None if not held or not a record)."""
        if digest == ZERO32:
            return None
        d = digest.hex()
        if not self.store.has(d) and not any(
                (Path(r) / "objects" / d[:2] / d[2:]).exists() for r in self.store.replicas):
            return None
        try:
            return Record.from_bytes(self.store.get(d))
        except (ValueError, KeyError):
            return None  # evidence that is a plain file, not a record

    # -- service ------------------------------------------------------------------------------
    def _file_refs(self, files: Iterable[str | Path]) -> list[FileRef]:
        out = []
        for f in files:
            blob: Blob = self.store.put_file(f)
            out.append(FileRef(Path(f).name, blob.digest, blob.size))
        return out

    def _input_refs(self, inputs: Iterable[str | Path | ArtefactRef]
                    ) -> tuple[list[InputRef], list[FileRef], list[bytes]]:
        arts: list[InputRef] = []
        files: list[str | Path] = []
        ids: list[bytes] = []
        for item in inputs:
            if isinstance(item, Path) or (isinstance(item, str) and item.startswith("file:")):
                files.append(Path(str(item).removeprefix("file:")))
                continue
            if isinstance(item, str) and not item.startswith("artefact:") and Path(item).is_file():
                files.append(Path(item))
                continue
            ref = self.resolve(item.removeprefix("artefact:") if isinstance(item, str) else item)
            hist = self.client(ref.lifecycle).history(ref.id)
            evidence = next((h.digest for h in reversed(hist) if h.digest != ZERO32), ZERO32)
            arts.append(InputRef(ref.hex, ref.lifecycle, hist[-1].version, evidence.hex()))
            ids.append(ref.id)
        return arts, self._file_refs(files), ids

    def _record(self, lifecycle: str, step: str, artefact: ArtefactRef | None, name: str | None,
                inputs: Iterable[Any], outputs: Iterable[str | Path],
                params: dict[str, Any] | None, code: str | Path | None
                ) -> tuple[Record, bytes, list[bytes]]:
        arts, in_files, ids = self._input_refs(inputs)
        outs = self._file_refs(outputs)
        code_ref = self._file_refs([code])[0] if code else None
        rec = Record(
            lifecycle=lifecycle, step=step, artefact=artefact.hex if artefact else None,
            name=name, actor=self.address, node=self.name, domain=self.domain,
            time=datetime.now(UTC).isoformat(timespec="seconds"), inputs=tuple(arts),
            input_files=tuple(in_files), outputs=tuple(outs), params=dict(params or {}),
            code=code_ref, environment=environment(),
        )
        blob = self.store.put_bytes(rec.canonical())
        return rec, bytes.fromhex(blob.digest), ids

    def register(self, lifecycle: str, name: str, files: Sequence[str | Path] = (), *,
                 locator: str | None = None, inputs: Sequence[Any] = (),
                 params: dict[str, Any] | None = None, code: str | Path | None = None
                 ) -> ArtefactRef:
        """Register a dataset or model under ``name``; its files are stored and recorded."""
        client = self.client(lifecycle)
        salt = name_salt(name)
        _, digest, ids = self._record(lifecycle, "register", None, name, inputs, files, params,
                                      code)
        with self._writing():
            op = client.register(self.signer, salt, digest, locator or f"proml:{name}", ids)
            aid = self._mine(client, op)
        return ArtefactRef(lifecycle, aid, name)

    def record(self, transition: str, artefact: str | ArtefactRef, *,
               inputs: Sequence[Any] = (), outputs: Sequence[str | Path] = (),
               params: dict[str, Any] | None = None, code: str | Path | None = None,
               locator: str | None = None) -> StepResult:
        """Record a lifecycle transition of ``artefact`` with its evidence."""
        ref = self.resolve(artefact)
        client = self.client(ref.lifecycle)
        t = client.ir.transition(transition)
        with self._writing():
            if not t.evidence:
                if inputs or outputs or params or code:
                    raise NodeError(f"{ref.lifecycle}.{transition} carries no evidence; drop "
                                    "inputs, outputs, params and code")
                op = client.fire(self.signer, transition, ref.id)
            else:
                _, digest, ids = self._record(ref.lifecycle, transition, ref, ref.name,
                                                inputs, outputs, params, code)
                loc = locator or f"proml:{digest.hex()}"
                op = client.fire(self.signer, transition, ref.id, digest, loc, ids)
            return self._mine(client, op)  # type: ignore[no-any-return]

    def approve(self, transition: str, artefact: str | ArtefactRef,
                evidence: str | Path | bytes | None = None) -> StepResult:
        """Approve a k-of-n transition.  Approvals count only when every approver passes the
        same evidence (for instance the same evaluation report file)."""
        ref = self.resolve(artefact)
        client = self.client(ref.lifecycle)
        t = client.ir.transition(transition)
        with self._writing():
            if t.evidence:
                if evidence is None:
                    raise NodeError(f"{ref.lifecycle}.{transition} needs evidence: pass the "
                                    "file every approver approves (--evidence FILE)")
                blob = (self.store.put_bytes(evidence) if isinstance(evidence, bytes)
                        else self.store.put_file(evidence))
                op = client.approve(self.signer, transition, ref.id, bytes.fromhex(blob.digest),
                                    f"proml:{blob.digest}", [])
            else:
                op = client.approve(self.signer, transition, ref.id)
            return self._mine(client, op)  # type: ignore[no-any-return]

    def grant(self, lifecycle: str, role: str, account: str, domain: str) -> None:
        client = self.client(lifecycle)
        with self._writing():
            self._mine(client, client.grant(self.signer, role, account, domain_bytes(domain)))

    def revoke(self, lifecycle: str, role: str, account: str) -> None:
        client = self.client(lifecycle)
        with self._writing():
            self._mine(client, client.revoke(self.signer, role, account))

    def status(self, artefact: str | ArtefactRef) -> dict[str, Any]:
        ref = self.resolve(artefact)
        c = self.client(ref.lifecycle)
        hist = c.history(ref.id)
        return {"name": ref.name, "id": ref.hex, "lifecycle": ref.lifecycle,
                "state": c.state(ref.id), "version": c.version(ref.id),
                "registrant": hist[0].actor, "steps": len(hist),
                "last_step": hist[-1].step, "last_actor": hist[-1].actor}

    def freshness(self, max_age_s: float, peers: Sequence[str] = (), *,
                  max_lag_blocks: int = 2, now: float | None = None) -> Any:
        """Check this node's view before acting on it (THREATS.md D5): its head is at most
        ``max_age_s`` old and no peer (another domain's node: a JSON-RPC URL or a shared chain
        directory) is ahead of it or disagrees with it.  Returns the
        :class:`~proml_sim.node.freshness.FreshnessReport`; ``report.ok`` says whether to act."""
        from proml_sim.node.freshness import FreshnessGuard

        named: dict[str, Any] = {}
        for p in peers:
            if p.startswith(("http://", "https://", "ws://")):
                from proml_sim.chain.engines import make_backend

                named[p] = make_backend("rpc", rpc_url=p)
            else:
                named[p] = JournaledChain(p)
        guard = FreshnessGuard(max_age_s, named, max_lag_blocks=max_lag_blocks,
                               min_peers=len(named))
        return guard.assess(self.backend, time.time() if now is None else now)

    def history(self, artefact: str | ArtefactRef) -> list[HistoryEntry]:
        ref = self.resolve(artefact)
        return self.client(ref.lifecycle).history(ref.id)

    # -- capture ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def step(self, transition: str, *, artefact: str | ArtefactRef,
             inputs: Sequence[Any] = (), outputs: Sequence[str | Path] = (),
             params: dict[str, Any] | None = None, code: str | Path | None = None
             ) -> Iterator[StepHandle]:
        """Capture one step of an existing script::

            with node.step("train", artefact="model", inputs=["dataset"],
                           outputs=["model.pkl"], params={"C": 1.0}) as s:
                ...  # the script's own code, unchanged
                s.params["accuracy"] = acc

        On success the outputs are hashed and stored, the record (inputs, outputs, params,
        code digest, environment) is stored, and the transition is submitted.  If the block
        raises, nothing is recorded and the exception propagates.
        """
        ref = self.resolve(artefact)  # fail fast, before the work
        self.client(ref.lifecycle).ir.transition(transition)
        handle = StepHandle(params=dict(params or {}), outputs=list(outputs))
        yield handle
        missing = [str(o) for o in handle.outputs if not Path(o).is_file()]
        if missing:
            raise NodeError(f"step {transition} finished but its outputs {missing} do not "
                            "exist; nothing was recorded")
        code = code if code is not None else _caller_script()
        handle.result = self.record(transition, ref, inputs=inputs, outputs=handle.outputs,
                                    params=handle.params, code=code)

    def capture(self, transition: str, *, artefact: str | ArtefactRef,
                inputs: Sequence[Any] = (), outputs: Sequence[str | Path] = ()) -> Any:
        """Decorator form of :meth:`step`: the call's keyword arguments become parameters and
        the function's source file the code digest."""
        def wrap(fn: Any) -> Any:
            import functools
            import inspect

            @functools.wraps(fn)
            def run(*args: Any, **kwargs: Any) -> Any:
                params = {k: _jsonable(v) for k, v in kwargs.items()}
                src = inspect.getsourcefile(fn)
                with self.step(transition, artefact=artefact, inputs=inputs, outputs=outputs,
                               params=params, code=src):
                    return fn(*args, **kwargs)

            return run

        return wrap


def _write_keys(path: Path, address: str, private_key: bytes) -> None:
    """The key file is created with mode 0600 before any byte of the key is written."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"address": address, "private_key": private_key.hex()}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _jsonable(v: Any) -> Any:
    try:
        json.dumps(v)
        return v
    except TypeError:
        return repr(v)


def _caller_script() -> Path | None:
    main = sys.argv[0] if sys.argv else ""
    p = Path(main)
    return p if main and p.is_file() and p.suffix == ".py" else None


def _anchor_compiled() -> Any:
    from proml_sim.compiler import compile_anchor

    return compile_anchor()


def _fund(backend: JournaledChain, address: str) -> None:
    if backend.balance(address) > 0:
        return
    with backend.locked():
        backend.faucet_send(address, FUND_WEI)
        backend.produce_block(max(int(time.time()), backend.head().timestamp + 1))


def _deploy_all(backend: ChainBackend, signer: Any, domain: str) -> dict[str, str]:
    ctx = backend.locked() if isinstance(backend, JournaledChain) else contextlib.nullcontext()
    with ctx:
        out: dict[str, str] = {}
        for lc, cls in LIFECYCLES.items():
            c = LifecycleClient.deploy(backend, compile_artefact(cls), signer, domain_bytes(domain))
            out[lc] = c.address
        out["Anchor"] = AnchorClient.deploy(backend, signer).address
    return out
