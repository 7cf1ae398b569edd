"""The ProML node: one per participant and trust domain.

Provider layer: a chain backend (a persistent embedded chain shared through a directory, or any
Ethereum JSON-RPC endpoint), the participant's keys, and an off-chain content-addressed store.
Service layer: register datasets and models, record lifecycle transitions with evidence,
approve, grant and revoke roles, status and history; lineage, verification, bundles and PROV
export build on these (``lineage.py``, ``verify.py``, ``bundle.py``, ``prov.py``).

Home directory (``--home``, default ``./.proml``)::

    node.json      format, name, domain, address, chain, replicas, contracts, lifecycles
    keystore.json  the participant's private key, encrypted (Web3 Secret Storage v3; ``keys.py``)
                   or keys.json, a plain key (``--plain-key``: tests and simulations only)
    keys-retired/  keys replaced by `proml key rotate|import|encrypt` (never deleted)
    store/         the content-addressed blob store

``node.json`` (format 2) stores every path relative to the home, so a moved or copied home keeps
working, and records the chain's identity so that it never writes into another chain::

    "chain":      {"kind": "journal", "path": "chain", "chain_id": 1337, "genesis": "0x.."}
                  or {"kind": "rpc", "url": "http://..", "chain_id": .., "genesis": "0x.."}
    "replicas":   [{"kind": "dir", "path": "../other/.proml/store"}, ...]
    "contracts":  {"Dataset": "0x..", "Model": "0x..", "Anchor": "0x..", ...}
    "lifecycles": {"Dataset": "Dataset", "Model": "Model", "Mine": "pkg.mod:Mine"}

A format-1 home (absolute chain path, replicas as plain strings, the paper's lifecycles only)
opens as format 2 in memory (its chain path made relative to the home; a relative format-1
replica path is taken relative to the home);
the new format is written, atomically, by the next writing command.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from proml_sim.chain import KeyRing, derive_private_keys
from proml_sim.chain.accounts import is_address
from proml_sim.chain.anchor import AnchorClient
from proml_sim.chain.base import ChainBackend
from proml_sim.chain.client import LifecycleClient
from proml_sim.chain.journal import JournaledChain
from proml_sim.compiler import compile_artefact
from proml_sim.errors import (
    AlreadyRegistered,
    BlobCorrupted,
    DomainRoleNotAllowed,
    EngineError,
    HomeError,
    JournalError,
    NodeError,
    NoFaucet,
    NotDomainAdmin,
    NotRoleAdmin,
    RoleNotAllowed,
    TransitionNotAllowed,
    UnknownLifecycle,
    UnknownName,
    unknown_name_message,
)
from proml_sim.fsutil import atomic_write_json, parse_json
from proml_sim.ir import (
    ZERO32,
    Approved,
    HistoryEntry,
    Registered,
    RoleGranted,
    StepResult,
    Transitioned,
)
from proml_sim.lifecycles import PAPER_LIFECYCLES, lifecycle_spec, load_lifecycle
from proml_sim.node.keys import (
    KEYSTORE,
    NodeKey,
    PassphraseSource,
    decrypt_keystore,
    load_keystore,
    new_key_file,
    write_secret,
)
from proml_sim.node.records import FileRef, InputRef, Record, environment
from proml_sim.node.store import QUARANTINE, Blob, BlobStore

HOME_FORMAT = 2
DEFAULT_HOME = ".proml"
#: the paper's lifecycles, deployed by ``proml init`` unless ``--lifecycle`` says otherwise
LIFECYCLES = {c.__name__: c for c in PAPER_LIFECYCLES}
DEFAULT_LIFECYCLE_SPECS = tuple(LIFECYCLES)
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
    # one entry per artefact: the same registration seen twice (a bundle's event list with a
    # copied event) is one artefact, not an ambiguity (the bundle's proofs name the copy)
    found = list({(lc, ev.id): (lc, ev) for lc, ev in registrations if ev.salt == salt and (
        not registrant or ev.registrant.lower() == registrant.lower())}.values())
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

    def __init__(self, home: Path, config: dict[str, Any], key: NodeKey,
                 backend: ChainBackend, *, dirty: bool = False) -> None:
        self.home = home
        self.config = config
        self.key = key  # unlocked on the first signature only: reads never need it
        self.address: str = config["address"]
        self.name: str = config["name"]
        self.domain: str = config["domain"]
        self.backend = backend
        #: node.json differs from what is on disk (migrated or identity learnt): written by the
        #: next writing command, never by a read
        self._dirty = dirty
        self.store = BlobStore(home / "store", self.replica_dirs(),
                               quarantine=home / QUARANTINE)
        self.clients = {
            lc: self._client_for(lc, spec, config["contracts"][lc])
            for lc, spec in config["lifecycles"].items() if lc in config["contracts"]
        }
        #: lifecycles deployed on the chain by other nodes that this one cannot load
        self.unavailable: dict[str, str] = {}
        if isinstance(backend, JournaledChain):
            self._add_chain_lifecycles(backend)
        self.anchor = (AnchorClient(backend, _anchor_compiled(), config["contracts"]["Anchor"],
                                    automine=False) if "Anchor" in config["contracts"] else None)

    def _add_chain_lifecycles(self, backend: JournaledChain) -> None:
        """Lifecycles another node deployed on this embedded chain after this home was made
        (``proml deploy``): used as well, unless their class cannot be imported here."""
        try:
            contracts, specs = read_deployments(backend.directory)
        except HomeError as exc:
            # named, not silent: the lifecycles other nodes deployed drop out of this node's
            # view until the file is repaired (once a process, as the journal's own warning)
            if str(exc) not in _warned_deployments:
                _warned_deployments.add(str(exc))
                sys.stderr.write(f"warning: {exc}; until then lifecycles other nodes "
                                 "deployed on this chain are not seen here\n")
            return
        for lc, spec in specs.items():
            if lc in self.clients or lc in self.config["contracts"]:
                continue
            try:
                self.clients[lc] = self._client_for(lc, spec, contracts[lc])
            except (UnknownLifecycle, HomeError) as exc:
                self.unavailable[lc] = f"{exc}"

    def _client_for(self, lifecycle: str, spec: str, address: str) -> LifecycleClient:
        compiled = compile_artefact(load_lifecycle(spec))
        if compiled.name != lifecycle:
            raise HomeError(f"lifecycle {lifecycle!r} of {self.home / 'node.json'} is recorded "
                            f"as {spec!r}, which now names lifecycle {compiled.name!r}; restore "
                            "the class or fix the spec in node.json")
        # preflight: a call that would revert is refused before anything is signed or sent
        client = LifecycleClient(self.backend, compiled, address, automine=False, preflight=True)
        assert compiled.ir is not None
        try:
            on_chain = client.fingerprint()
        except Exception:  # no code there (yet) or no such view: the calls will say so
            return client
        if on_chain != compiled.ir.fingerprint():
            hint = (" (homes made before the paper's Dataset/Model became consortium "
                    "lifecycles deployed the single-admin ones, now SingleAdminDataset/"
                    "SingleAdminModel: start a new chain with `proml init --new-chain`)"
                    if spec in LIFECYCLES else "")
            raise HomeError(f"the {lifecycle} contract at {address} was generated from another "
                            f"definition than {spec!r} (IR fingerprint {on_chain[:12]}.. on "
                            f"chain, {compiled.ir.fingerprint()[:12]}.. here){hint}; use the "
                            "class it was deployed from")
        # the fingerprint is a constant the code states: the code itself must be what this
        # node generates and compiles from the lifecycle, or it may enforce other rules (a
        # function the interface hides, a backdoor behind one argument) under the same name
        problem = code_mismatch(lifecycle, spec, address, self.backend.code(address), compiled)
        if problem is not None:
            raise HomeError(f"{problem}; do not record with it ({CODE_FIX})")
        return client

    # -- paths and identity ---------------------------------------------------------------------
    def path(self, stored: str) -> Path:
        """A path of node.json (relative to the home, or absolute in an old home), resolved
        (symbolic links and ``..`` as the file system sees them)."""
        return (self.home / stored).resolve()

    def replica_dirs(self) -> list[Path]:
        """The replica store directories (``{"kind": "dir"}`` entries), resolved."""
        return [self.path(r["path"]) for r in self.config["replicas"] if r["kind"] == "dir"]

    def save_config(self) -> None:
        """Write node.json (atomically)."""
        atomic_write_json(self.home / "node.json", self.config, mkdir=False)
        self._dirty = False

    # -- creating and opening homes ---------------------------------------------------------
    @classmethod
    def init(cls, home: str | Path = DEFAULT_HOME, *, name: str, domain: str,
             chain_dir: str | Path | None = None, new_chain: bool = False,
             rpc_url: str | None = None, contracts: dict[str, Any] | None = None,
             seed: str | None = None, replicas: Iterable[str | Path] = (),
             lifecycles: Sequence[str] = (), plain_key: bool = False,
             passphrase: str | PassphraseSource | None = None,
             key_file: str | Path | None = None) -> ProMLNode:
        """Create a node home.  ``new_chain``: create the chain (journal at ``chain_dir``, or
        deploy on ``rpc_url``) and deploy the lifecycle contracts, this node being their admin;
        otherwise join the chain at ``chain_dir`` (contracts read from it) or at ``rpc_url``
        (``contracts`` given).  ``lifecycles``: import specs deployed with a new chain
        (default: the paper's Dataset and Model).  Relative ``chain_dir`` and ``replicas`` are
        taken relative to the current directory and stored relative to the home.  The key is
        stored encrypted under ``passphrase`` (a string, or a :class:`PassphraseSource`: file,
        ``$PROML_PASSPHRASE``, prompt); ``plain_key`` stores it unencrypted, for tests and
        simulations only.  ``key_file``: the node's key is this v3 keystore (an account funded
        on a network with no faucet), unlocked with ``passphrase`` and kept as it is."""
        home = Path(home)
        if (home / "node.json").exists():
            raise HomeError(f"{home} is already a node home; use it, or pick another --home")
        domain_bytes(domain)
        if lifecycles and not new_chain:
            raise HomeError("--lifecycle chooses what a new chain deploys; when joining, the "
                            "chain's lifecycles are used (add one later with `proml deploy`)")
        specs = list(dict.fromkeys(lifecycles or DEFAULT_LIFECYCLE_SPECS))
        classes = [load_lifecycle(spec) for spec in specs]  # fail before anything is created
        if new_chain:
            _check_deployable(classes)
        source = PassphraseSource.of(passphrase)
        keys = KeyRing(owner=name)
        # the passphrase is asked before anything is created or deployed
        if key_file is not None:
            if plain_key or seed is not None:
                raise HomeError("--key brings the node's key: drop --plain-key and --seed")
            key_name, key_obj = KEYSTORE, load_keystore(key_file)
            private_key = decrypt_keystore(key_obj, source.get(f"keystore {key_file}"),
                                           key_file)
            address = keys.add(private_key)
        else:
            private_key = derive_private_keys(seed if seed is not None else os.urandom(32).hex(),
                                              1, namespace="proml-node")[0]
            address = keys.add(private_key)
            key_name, key_obj = new_key_file(private_key, address, plain=plain_key,
                                             passphrase=source,
                                             what=f"the new keystore of {home}")
        backend: ChainBackend
        if rpc_url:  # a node that cannot serve (or fund) us is refused before the home exists
            from proml_sim.chain.rpc import RPCBackend

            backend = RPCBackend(rpc_url, drive=False)
            if key_file is None:  # a brought key brings its own gas money
                try:
                    backend.fund(address, FUND_WEI)
                except NoFaucet:
                    raise HomeError(
                        f"the node at {rpc_url} has no development faucet and no unlocked "
                        "funded account to give a new key gas money: bring an account funded "
                        "there, `proml init --key KEYSTORE` (a v3 keystore)") from None
        home.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {"format": HOME_FORMAT, "name": name, "domain": domain,
                                  "address": address,
                                  "replicas": [_replica_entry(home, r) for r in replicas]}
        if rpc_url:
            config["chain"] = {"kind": "rpc", "url": rpc_url}
        else:
            cdir = Path(chain_dir) if chain_dir else home / "chain"
            if new_chain:
                backend = JournaledChain.create(cdir, funded=[address],
                                                genesis_timestamp=int(time.time()) - 60)
            else:
                backend = JournaledChain(cdir)
            config["chain"] = {"kind": "journal", "path": _relative(home, cdir)}
        config["chain"].update(chain_identity(backend))
        signer = keys.signer(address)
        if new_chain:
            deployed = _deploy_all(backend, signer, domain, classes)
            config["contracts"] = {lc: addr for lc, (addr, _) in deployed.items()}
            config["lifecycles"] = {lc: spec for lc, (_, spec) in deployed.items()
                                    if lc != "Anchor"}
            if isinstance(backend, JournaledChain):
                write_deployments(backend.directory, config["contracts"], config["lifecycles"])
        elif contracts is not None:
            config["contracts"], config["lifecycles"] = _split_deployments(contracts)
            unknown = [lc for lc in config["contracts"]
                       if lc != "Anchor" and lc not in config["lifecycles"]]
            if unknown:  # else its contract would drop out of this node's view, unsaid
                raise HomeError(
                    f"the contracts file names {', '.join(unknown)} without a lifecycle spec, "
                    "so this node could not read it; give {\"contracts\": {name: address}, "
                    "\"lifecycles\": {name: \"package.module:Class\"}} (a founding node's "
                    "node.json has that shape: pass it as --contracts)")
        elif isinstance(backend, JournaledChain):
            contracts_, specs_ = read_deployments(backend.directory)
            # a lifecycle whose class cannot be imported here is left to discovery on open
            # (named when used), rather than making the whole chain unjoinable
            specs_ = {lc: sp for lc, sp in specs_.items() if _loads(sp)}
            config["contracts"] = {lc: a for lc, a in contracts_.items()
                                   if lc in specs_ or lc == "Anchor"}
            config["lifecycles"] = specs_
            _fund(backend, address)
        else:
            raise HomeError("joining an RPC chain needs the contract addresses (--contracts)")
        for spec in config["lifecycles"].values():
            load_lifecycle(spec)  # every lifecycle this home records must load
        write_secret(home / key_name, key_obj)
        atomic_write_json(home / "node.json", config, mkdir=False)
        return cls(home, config, NodeKey(home, address, source, signer), backend)

    @classmethod
    def open(cls, home: str | Path = DEFAULT_HOME, *,
             passphrase: str | PassphraseSource | None = None) -> ProMLNode:
        """Open a node home (any format up to :data:`HOME_FORMAT`).  The chain must be the one
        the home was made for (chain id and genesis hash), else :class:`HomeError`.  The key
        is not read here: it is unlocked (``passphrase``, else ``$PROML_PASSPHRASE``, else a
        prompt) on the first write only."""
        home = Path(home)
        try:
            config = parse_json((home / "node.json").read_text())
        except FileNotFoundError:
            raise HomeError(f"{home} is not a node home (no node.json); run `proml init` or "
                            "pass --home") from None
        except (OSError, ValueError) as exc:
            raise HomeError(f"cannot read {home / 'node.json'}: {exc}") from exc
        problem = config_problem(home, config)
        if problem is not None:
            raise HomeError(f"{home / 'node.json'} {problem}" + (
                "" if "upgrade" in problem else "; restore it from a copy"))
        dirty = _upgrade_config(home, config)
        key = NodeKey(home, config["address"], PassphraseSource.of(passphrase))
        notice = key.legacy_notice()
        if notice:
            print(notice, file=sys.stderr)
        chain = config["chain"]
        backend: ChainBackend
        if chain["kind"] == "rpc":
            from proml_sim.chain.rpc import RPCBackend

            # opening changes nothing on the node (its automining stays as it is) and funds
            # nothing: init funded the address, and `key rotate` moves the balance to a new key
            backend = RPCBackend(chain["url"], drive=False)
            where = chain["url"]
        else:
            cdir = home / chain["path"]
            try:
                backend = JournaledChain(cdir)
            except JournalError as exc:
                raise HomeError(f"{exc} (the chain of node home {home}, recorded in node.json as "
                                f"{chain['path']!r} relative to the home); if the home or the "
                                "chain moved, put them back side by side or fix chain.path in "
                                "node.json") from exc
            where = str(cdir)
        _check_identity(home, chain, backend, where)
        _check_contracts(home, config["contracts"], backend, where)
        if "genesis" not in chain:  # an old home: learn the identity, saved on the next write
            chain.update(chain_identity(backend))
            dirty = True
        return cls(home, config, key, backend, dirty=dirty)

    # -- replicas -------------------------------------------------------------------------------
    def peer_urls(self) -> list[str]:
        """The HTTP peers (``{"kind": "http"}`` replicas: other domains' ``proml serve``)."""
        return [r["url"] for r in self.config["replicas"] if r["kind"] == "http"]

    def add_replica(self, directory: str | Path) -> Path | str:
        """Add a replica store directory (relative: to the current directory); new blobs are
        copied there from now on (``sync_replicas`` copies the ones held already).  An
        ``http(s)://`` URL adds an HTTP peer instead: missing blobs are fetched from it."""
        entry = _replica_entry(self.home, directory)
        if entry["kind"] == "http":
            if entry["url"] in self.peer_urls():
                raise NodeError(f"{entry['url']} is already a peer of this node; see "
                                "`proml replica list`")
            self.config["replicas"].append(entry)
            self.save_config()
            return entry["url"]
        target = self.path(entry["path"])
        if target.exists() and not target.is_dir():
            raise NodeError(f"{directory} is a file; give another domain's store directory")
        if target == (self.home / "store").resolve():
            raise NodeError(f"{directory} is this node's own store; give another domain's store")
        if any(self.path(r["path"]).resolve() == target for r in self.config["replicas"]
               if r["kind"] == "dir"):
            raise NodeError(f"{directory} is already a replica of this node; see "
                            "`proml replica list`")
        self.config["replicas"].append(entry)
        self.save_config()
        self.store.replicas = self.replica_dirs()
        return target

    def remove_replica(self, directory: str | Path) -> Path | str:
        """Stop replicating to ``directory`` (nothing is deleted there)."""
        if str(directory).startswith(("http://", "https://")):
            url = str(directory).rstrip("/")
            keep = [r for r in self.config["replicas"] if r.get("url") != url]
            if len(keep) == len(self.config["replicas"]):
                raise NodeError(f"{url} is not a peer of this node (peers: "
                                f"{', '.join(self.peer_urls()) or 'none'}); see "
                                "`proml replica list`")
            self.config["replicas"] = keep
            self.save_config()
            return url
        target = Path(directory).resolve()
        keep = [r for r in self.config["replicas"]
                if r["kind"] != "dir" or self.path(r["path"]).resolve() != target]
        if len(keep) == len(self.config["replicas"]):
            known = ", ".join(str(p) for p in self.replica_dirs()) or "none"
            raise NodeError(f"{directory} is not a replica of this node (replicas: {known}); "
                            "see `proml replica list`")
        self.config["replicas"] = keep
        self.save_config()
        self.store.replicas = self.replica_dirs()
        return target

    def sync_replicas(self) -> dict[str, dict[str, int]]:
        """Copy every blob of this store that a replica lacks (hash-checked; a replica's valid
        blob is never overwritten): counts per replica."""
        return {str(d): self.store.sync_to(d) for d in self.replica_dirs()}

    # -- lifecycles -----------------------------------------------------------------------------
    def deploy(self, spec: str) -> tuple[str, str]:
        """Deploy the lifecycle ``spec`` (``package.module:Class``) on this node's chain, this
        node being its admin; records its address and spec in node.json and, on an embedded
        chain, in the chain's deployments.json (so nodes that join later load it).  Returns
        (lifecycle name, address)."""
        cls = load_lifecycle(spec)
        compiled = compile_artefact(cls)
        lc = compiled.name
        if lc in self.config["contracts"]:
            raise NodeError(f"a lifecycle named {lc} is already deployed at "
                            f"{self.config['contracts'][lc]}; rename the class to deploy "
                            "another")
        spec = lifecycle_spec(cls)
        with self._writing():
            deployed = _deploy_all(self.backend, self.signer, self.domain, [cls], anchor=False,
                                   lock=False)
            addr = deployed[lc][0]
            self.config["contracts"][lc] = addr
            self.config["lifecycles"][lc] = spec
            self.save_config()
            if isinstance(self.backend, JournaledChain):
                contracts, specs = read_deployments(self.backend.directory)
                contracts[lc], specs[lc] = addr, spec
                write_deployments(self.backend.directory, contracts, specs)
        self.clients[lc] = self._client_for(lc, spec, addr)
        return lc, addr

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def signer(self) -> Any:
        """The node's signer; the first use unlocks the key (may ask for the passphrase)."""
        return self.key.signer()

    @property
    def keys(self) -> KeyRing:
        """The node's key as a :class:`KeyRing` (unlocks the key)."""
        return KeyRing([self.key.signer()], owner=self.name)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        self.key.signer()  # unlock (maybe prompt) before anything is written or locked
        if self._dirty:  # an upgraded config is written only by a command that writes anyway
            self.save_config()
        if isinstance(self.backend, JournaledChain):
            with self.backend.locked():
                yield
        else:
            yield

    def _mine(self, client: Any, op: Any) -> Any:
        """Mine ``op`` and return its result; a transaction that went through is appended to
        the home's sent log (``sentlog``: what ``proml doctor`` checks the chain still holds)."""
        from proml_sim.node import sentlog

        self.backend.produce_block(next_timestamp(self.backend))
        result = client.result(op)
        receipt = self.backend.receipt(op.tx_hash)
        try:
            sentlog.append(self.home, op.tx_hash, f"{client.ir.name}.{op.kind}",
                           receipt.block_number if receipt is not None else -1)
        except OSError as exc:  # the step is on chain: say what was not written, go on
            print(f"proml: warning: {client.ir.name}.{op.kind} is on chain (tx "
                  f"0x{op.tx_hash.hex()}), but {self.home / sentlog.SENT_LOG} could not be "
                  f"appended to ({exc.strerror or exc}); `proml doctor` will not watch it",
                  file=sys.stderr)
        return result

    def client(self, lifecycle: str) -> LifecycleClient:
        """The client of a deployed lifecycle, by name."""
        try:
            return self.clients[lifecycle]
        except KeyError:
            if lifecycle in self.unavailable:
                raise NodeError(f"lifecycle {lifecycle} is deployed on this chain but this node "
                                f"cannot load it: {self.unavailable[lifecycle]}") from None
            raise NodeError(unknown_name_message(
                f"unknown lifecycle {lifecycle!r} on this chain", lifecycle, list(self.clients))
                + "; deploy another with `proml deploy package.module:Class`") from None

    # -- names --------------------------------------------------------------------------------
    def resolve(self, ref: str | ArtefactRef) -> ArtefactRef:
        """An artefact by name (``name`` or ``name@0xregistrant``) or by ``0x`` id."""
        if isinstance(ref, ArtefactRef):
            return ref
        if ref.startswith("0x") and len(ref) == 66:
            try:
                aid = bytes.fromhex(ref[2:])
            except ValueError:
                raise UnknownName(f"{ref} is not an artefact id (0x and 64 hex digits); check "
                                  "it, or give the artefact's name") from None
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

    def registered_name(self, ev: Registered) -> str | None:
        """The name of a registration: from its record if held, else from its default locator
        ``proml:<name>`` when that name hashes to the registration's salt (so it is the name)."""
        from proml_sim.node.evidence import name_salt_ok

        try:
            rec = self.record_of(ev.digest)
        except BlobCorrupted:  # a listing goes on; verify and doctor name the damaged blob
            rec = None
        if rec is not None and name_salt_ok(rec.name, ev.salt):
            return rec.name
        guess = ev.locator.removeprefix("proml:")
        return guess if ev.locator.startswith("proml:") and name_salt_ok(guess, ev.salt) else None

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
        for lc, c in self.clients.items():  # same name, same registrant: one artefact id each
            aid = c.artefact_id(self.address, salt)
            if c.exists(aid):
                raise NodeError(f"an artefact named {name!r} already exists (id 0x{aid.hex()}, "
                                f"lifecycle {lc}, registrant {self.address}); choose another "
                                "name")
        _, digest, ids = self._record(lifecycle, "register", None, name, inputs, files, params,
                                      code)
        with self._writing(), self._explained(None, client):
            try:
                op = client.register(self.signer, salt, digest, locator or f"proml:{name}", ids)
                aid = self._mine(client, op)
            except AlreadyRegistered:  # not on the chain when checked above: another run's
                aid = client.artefact_id(self.address, salt)
                raise NodeError(f"an artefact named {name!r} is being registered by "
                                f"{self.address} (id 0x{aid.hex()}) in another run (its "
                                "transaction waits to be mined, or was just mined); see "
                                f"`proml status {name}`, or choose another name") from None
        return ArtefactRef(lifecycle, aid, name)

    def record(self, transition: str, artefact: str | ArtefactRef, *,
               inputs: Sequence[Any] = (), outputs: Sequence[str | Path] = (),
               params: dict[str, Any] | None = None, code: str | Path | None = None,
               locator: str | None = None) -> StepResult:
        """Record a lifecycle transition of ``artefact`` with its evidence."""
        ref = self.resolve(artefact)
        client = self.client(ref.lifecycle)
        t = self._recordable(ref, client, transition)
        with self._writing(), self._explained(ref, client):
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
                evidence: str | Path | bytes | None = None, *,
                new_tally: bool = False) -> StepResult:
        """Approve a k-of-n transition.  Approvals count only when every approver passes the
        same evidence (for instance the same evaluation report file): evidence other than that
        of approvals already given for this version would start a second, separate tally, so
        it is refused with an explanation unless ``new_tally``."""
        ref = self.resolve(artefact)
        client = self.client(ref.lifecycle)
        t = self._transition(client, transition)
        if t.approvals < 2:
            raise NodeError(f"{ref.lifecycle}.{t.name} needs no approvals; record it with "
                            f"`proml record {t.name} {ref.name or ref.hex}`")
        digest = ZERO32
        if t.evidence:
            if evidence is None:
                raise NodeError(f"{ref.lifecycle}.{t.name} needs evidence: pass the "
                                "file every approver approves (--evidence FILE)")
            blob = (self.store.put_bytes(evidence) if isinstance(evidence, bytes)
                    else self.store.put_file(evidence))
            digest = bytes.fromhex(blob.digest)
        if not new_tally:
            self._check_tally(ref, client, t, digest)
        with self._writing(), self._explained(ref, client):
            if t.evidence:
                op = client.approve(self.signer, transition, ref.id, digest,
                                    f"proml:{digest.hex()}", [])
            else:
                op = client.approve(self.signer, transition, ref.id)
            return self._mine(client, op)  # type: ignore[no-any-return]

    def pending_tallies(self, ref: ArtefactRef, transition: str) -> dict[bytes, list[str]]:
        """Approvals given for the artefact's current version of ``transition``: evidence
        digest -> approvers in order (the contract counts each digest separately)."""
        client = self.client(ref.lifecycle)
        t = self._transition(client, transition)
        version = client.version(ref.id)
        out: dict[bytes, list[str]] = {}
        for ev in client.events():
            if (isinstance(ev, Approved) and ev.id == ref.id and ev.transition == t.index
                    and ev.version == version):
                out.setdefault(ev.digest, []).append(ev.approver)
        return out

    def _check_tally(self, ref: ArtefactRef, client: LifecycleClient, t: Any,
                     digest: bytes) -> None:
        tallies = self.pending_tallies(ref, t.name)
        if not tallies or digest in tallies:
            return
        def copy(d: bytes) -> str:
            held = [p for p in (self.store.path_of(d.hex()), *(
                BlobStore(r).path_of(d.hex()) for r in self.store.replicas)) if p.is_file()]
            return f", a copy of which is at {held[0]}" if held else ""

        what = "; ".join(
            f"{len(who)} of {t.approvals} by "
            + ", ".join(f"{a} ({self._domain_of(client, a) or 'no domain'})" for a in who)
            + f" on evidence 0x{d.hex()}{copy(d)}" for d, who in tallies.items())
        name = ref.name or ref.hex
        raise NodeError(
            f"{ref.lifecycle}.{t.name} of {name} already has approvals on other evidence "
            f"({what}); your evidence 0x{digest.hex()} would start a new tally, counted "
            "separately. To join theirs, approve the same file (the one with that digest): "
            f"`proml approve {t.name} {name} --evidence THAT_FILE`; to start a new tally "
            "anyway, add --new-tally")

    def grant(self, lifecycle: str, role: str, account: str, domain: str) -> None:
        """Grant ``role`` of ``lifecycle`` to ``account`` (EIP-55 checked) in trust ``domain``;
        this node must hold the role's admin role, or, on a consortium lifecycle (the paper's
        default), be its domain's admin and enrol an account of its own domain."""
        client = self.client(lifecycle)
        account = check_address(account)
        self._check_admin(client, role, "granting")
        if client.ir.consortium is not None and domain != self.domain:
            raise NodeError(
                f"{lifecycle} is governed by a consortium: this node enrols only accounts of its "
                f"own domain {self.domain!r}; {domain!r}'s own node grants its accounts (a new "
                f"domain first joins: `proml consortium join {lifecycle}` on its node prints the "
                "add_domain proposal a quorum of members must pass)")
        with self._writing(), self._governed(client, role):
            self._mine(client, client.grant(self.signer, role, account, domain_bytes(domain)))

    def revoke(self, lifecycle: str, role: str, account: str) -> None:
        """Revoke ``role`` of ``lifecycle`` from ``account``; refused, with nothing sent, if the
        account does not hold it."""
        client = self.client(lifecycle)
        account = check_address(account)
        self._check_admin(client, role, "revoking")
        if not client.has_role(account, role):
            raise NodeError(f"{account} does not hold {lifecycle}.{role}; nothing to revoke "
                            f"(see its roles with `proml whoami` on its node)")
        with self._writing(), self._governed(client, role):
            self._mine(client, client.revoke(self.signer, role, account))

    @contextlib.contextmanager
    def _governed(self, client: LifecycleClient, role: str) -> Iterator[None]:
        """On a consortium lifecycle, add to a refused grant/revoke what needs a quorum and
        the command that starts it (the revert reasons are shared with the interpreter)."""
        try:
            yield
        except (NotDomainAdmin, NotRoleAdmin) as exc:
            if client.ir.consortium is None:
                raise
            lc = client.ir.name
            raise type(exc)(
                f"{exc}; on {lc} this node acts as the admin of domain {self.domain!r}, which "
                f"must be a member with this node's key as its admin: see `proml consortium "
                f"show {lc}`; a new domain joins by an add_domain proposal a quorum passes "
                f"(`proml consortium join {lc}` prints it), a lost admin key is replaced by "
                "rotate_admin") from exc
        except DomainRoleNotAllowed as exc:
            lc = client.ir.name
            raise DomainRoleNotAllowed(
                f"{exc}: `proml consortium propose {lc} set_roles --domain {self.domain} "
                f"--roles <its current roles>,{role}` (a quorum of members then votes and executes)"
                ) from exc

    def _recordable(self, ref: ArtefactRef, client: LifecycleClient, transition: str) -> Any:
        """The transition, if one actor records it (k-of-n ones go through approve)."""
        t = self._transition(client, transition)
        if t.approvals > 1:
            ev = " --evidence FILE" if t.evidence else ""
            raise NodeError(f"{ref.lifecycle}.{t.name} needs {t.approvals} approvals, it is not "
                            f"recorded by one actor; use `proml approve {t.name} "
                            f"{ref.name or ref.hex}{ev}`")
        return t

    def _transition(self, client: LifecycleClient, name: str) -> Any:
        try:
            return client.ir.transition(name)
        except KeyError as exc:
            raise NodeError(f"{exc.args[0]}; check the spelling") from None

    def _check_admin(self, client: LifecycleClient, role: str, verb: str) -> None:
        try:
            admin = client.ir.role(role).admin
        except KeyError as exc:
            raise NodeError(f"{exc.args[0]}; check the spelling") from None
        if client.ir.consortium is not None:
            return  # a domain's admin may too: the contract decides, with its one-line reason
        if not client.has_role(self.address, admin):
            raise NotRoleAdmin(f"{verb} {client.ir.name}.{role} needs role {admin}; "
                               f"{self.address} ({self.name}) does not hold it")

    @contextlib.contextmanager
    def _explained(self, ref: ArtefactRef | None, client: LifecycleClient) -> Iterator[None]:
        """Add what the static revert reasons cannot say (they are shared word for word with
        the interpreter): the artefact's current state, the roles this node holds."""
        try:
            yield
        except TransitionNotAllowed as exc:
            if ref is None:
                raise
            raise TransitionNotAllowed(f"{exc}; {ref.name or ref.hex} is "
                                       f"{client.state(ref.id)}{self._pending_note()}") from exc
        except RoleNotAllowed as exc:
            held = self.roles_held(client) or ["none"]
            raise RoleNotAllowed(f"{exc}; {self.address} ({self.name}) holds "
                                 f"{', '.join(held)}") from exc

    def _pending_note(self) -> str:
        """``; N transaction(s) ... pending`` when the chain's node holds transactions of this
        account not yet mined (an earlier run stopped while it waited): what the refusal was
        judged against may change once they are."""
        try:
            waiting = self.backend.next_nonce(self.address) - self.backend.nonce(self.address)
        except EngineError:
            return ""
        if waiting <= 0:
            return ""
        return (f"; {waiting} transaction(s) from {self.address} are still waiting to be mined "
                "(another run's?): check again once they are")

    def roles_held(self, client: LifecycleClient, account: str | None = None) -> list[str]:
        """The names of the roles ``account`` (default: this node) holds in a lifecycle."""
        mask = client.roles_of(account or self.address)
        return [r.name for r in client.ir.roles if mask & r.bit]

    def _domain_of(self, client: LifecycleClient, account: str) -> str | None:
        from proml_sim.node.evidence import domain_name

        return domain_name(client.domain_of(account))

    def status(self, artefact: str | ArtefactRef) -> dict[str, Any]:
        ref = self.resolve(artefact)
        c = self.client(ref.lifecycle)
        hist = c.history(ref.id)
        # state and version from the events, not from contract calls: the events replay into
        # the contract's exact state (the differential tests check replay == storage), and
        # reading them needs no EVM, so `proml status` opens no engine (about 0.4 s of imports)
        return {"name": ref.name, "id": ref.hex, "lifecycle": ref.lifecycle,
                "state": hist[-1].target, "version": hist[-1].version,
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
                from proml_sim.chain.rpc import RPCBackend

                named[p] = RPCBackend(p, drive=False)  # a peer's node: only read
            else:
                named[p] = JournaledChain(p)
        guard = FreshnessGuard(max_age_s, named, max_lag_blocks=max_lag_blocks,
                               min_peers=len(named))
        return guard.assess(self.backend, time.time() if now is None else now)

    def history(self, artefact: str | ArtefactRef) -> list[HistoryEntry]:
        """The artefact's provenance trail (as the interpreter gives it)."""
        ref = self.resolve(artefact)
        return self.client(ref.lifecycle).history(ref.id)

    def history_detail(self, artefact: str | ArtefactRef) -> list[dict[str, Any]]:
        """The trail with where and when each step happened (docs/json.md): block, tx hash,
        block time, the actor's trust domain and, for a k-of-n transition, its approvers (each
        with domain, block, tx and time).  Computed here from the event logs (the interpreter
        has no blocks); domains as granted when the step happened, as lineage has them."""
        from proml_sim.node.evidence import domain_name

        ref = self.resolve(artefact)
        client = self.client(ref.lifecycle)
        ir = client.ir
        domains: dict[str, str | None] = {}
        rows: list[dict[str, Any]] = []
        approvals: dict[tuple[int, int, bytes], list[dict[str, Any]]] = {}
        for ce in self._chain_events(client):
            ev = ce.event
            when = {"block": ce.block, "time": iso_time(ce.timestamp), "timestamp": ce.timestamp,
                    "tx": _hex(ce.tx_hash)}
            if isinstance(ev, RoleGranted):
                domains[ev.account] = domain_name(ev.domain)
                continue
            if isinstance(ev, Approved) and ev.id == ref.id:
                approvals.setdefault((ev.transition, ev.version, ev.digest), []).append(
                    {"approver": ev.approver, "domain": domains.get(ev.approver), **when})
                continue
            if isinstance(ev, Registered) and ev.id == ref.id:
                step, actor, source = "register", ev.registrant, None
                target, version, approvers = ir.state_by_index(ev.state).name, 1, None
            elif isinstance(ev, Transitioned) and ev.id == ref.id:
                t = ir.transitions[ev.transition]
                step, actor = t.name, ev.actor
                source = ir.state_by_index(ev.source).name
                target, version = ir.state_by_index(ev.target).name, ev.version
                approvers = (approvals.get((ev.transition, ev.version - 1, ev.digest), [])
                             if t.approvals > 1 else None)
            else:
                continue
            rows.append({
                "step": step, "version": version, "source": source, "target": target,
                "actor": actor, "actor_domain": domains.get(actor), **when,
                "digest": _hex(ev.digest), "locator": ev.locator,
                "inputs": [_hex(i) for i in ev.inputs], "approvers": approvers})
        return rows

    def _chain_events(self, client: LifecycleClient) -> list[Any]:
        """A lifecycle's events with block, time and tx (``evidence.ChainEvent``)."""
        from proml_sim.node.evidence import collect_events

        return collect_events(self.backend, client.ir.name, client.address, client.codec)

    def ls(self, lifecycle: str | None = None) -> list[dict[str, Any]]:
        """Every artefact on the chain (optionally of one lifecycle): name (from its record,
        if held), lifecycle, id, state, version, registrant, registration block."""
        lcs = [lifecycle] if lifecycle else list(self.clients)
        out: list[dict[str, Any]] = []
        for lc in lcs:
            client = self.client(lc)
            ir = client.ir
            rows: dict[bytes, dict[str, Any]] = {}
            for ce in self._chain_events(client):
                ev, block = ce.event, ce.block
                if isinstance(ev, Registered):
                    rows[ev.id] = {"name": self.registered_name(ev), "lifecycle": lc,
                                   "id": _hex(ev.id), "state": ir.state_by_index(ev.state).name,
                                   "version": 1, "registrant": ev.registrant,
                                   "registered_block": block,
                                   "registered_time": iso_time(ce.timestamp)}
                elif isinstance(ev, Transitioned) and ev.id in rows:
                    rows[ev.id]["state"] = ir.state_by_index(ev.target).name
                    rows[ev.id]["version"] = ev.version
            out.extend(rows.values())
        return out

    def whoami(self) -> dict[str, Any]:
        """This node: name, domain, address, the roles it holds per lifecycle, chain, head."""
        head = self.backend.head()
        chain = dict(self.config["chain"])
        if chain["kind"] == "journal":
            chain["path"] = str(self.path(chain["path"]))
        return {"name": self.name, "domain": self.domain, "address": self.address,
                "roles": {lc: self.roles_held(c) for lc, c in self.clients.items()},
                "chain": chain, "head": head.number, "head_hash": _hex(head.hash),
                "head_time": iso_time(head.timestamp), "head_timestamp": head.timestamp,
                "home": str(self.home)}

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
        self._recordable(ref, self.client(ref.lifecycle), transition)
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


def iso_time(ts: int | float) -> str:
    """Unix seconds as ISO-8601 UTC (``2026-12-03T15:04:05Z``), the time format of every
    JSON output (docs/json.md)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hex(b: bytes | None) -> str | None:
    return None if b is None else "0x" + b.hex()


def check_address(account: str) -> str:
    """``account`` as an EIP-55 address: all-lowercase hex is accepted (it carries no
    checksum), mixed case must carry a valid checksum; anything else is refused."""
    from eth_utils.address import is_checksum_address, to_checksum_address

    body = account[2:] if account.startswith(("0x", "0X")) else None
    if body is None or len(body) != 40 or any(c not in "0123456789abcdefABCDEF" for c in body):
        raise NodeError(f"{account!r} is not an address: write 0x and 40 hex digits")
    if body != body.lower() and not is_checksum_address("0x" + body):
        raise NodeError(f"{account} has a wrong EIP-55 checksum (mixed case that does not "
                        "match); check the address, or write it all in lower case")
    return to_checksum_address("0x" + body.lower())


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


def next_timestamp(backend: ChainBackend) -> int | None:
    """The timestamp a node's next block is mined at: now, after the head's (None for a node
    that mines on its own schedule, :attr:`~proml_sim.chain.ChainBackend.mines_at_timestamp`)."""
    if not backend.mines_at_timestamp:
        return None
    return max(int(time.time()), backend.head().timestamp + 1)


def _fund(backend: JournaledChain, address: str) -> None:
    if backend.balance(address) > 0:
        return
    with backend.locked():
        backend.faucet_send(address, FUND_WEI)
        backend.produce_block(next_timestamp(backend))


def _deploy_all(backend: ChainBackend, signer: Any, domain: str, classes: Sequence[type],
                anchor: bool = True, lock: bool = True) -> dict[str, tuple[str, str]]:
    """Deploy ``classes`` (and the Anchor): lifecycle name -> (address, import spec).
    ``lock=False``: the caller already holds the chain's writer lock."""
    ctx = (backend.locked() if lock and isinstance(backend, JournaledChain)
           else contextlib.nullcontext())
    _check_deployable(classes)  # all of them, before the first is deployed
    with ctx:
        out: dict[str, tuple[str, str]] = {}
        for cls in classes:
            compiled = compile_artefact(cls)
            c = LifecycleClient.deploy(backend, compiled, signer, domain_bytes(domain))
            out[compiled.name] = (c.address, lifecycle_spec(cls))
        if anchor:
            out["Anchor"] = (AnchorClient.deploy(backend, signer).address, "")
    return out


def _check_deployable(classes: Sequence[type]) -> None:
    """Refuse a lifecycle whose contract a chain cannot deploy (EIP-170's code size), before
    anything is created or deployed."""
    from proml_sim.chain.client import as_layout, check_code_size

    for cls in classes:
        check_code_size(as_layout(compile_artefact(cls)),
                        "a node deploys one contract per lifecycle (the registry layout): "
                        "give the lifecycle fewer transitions, or split it in two")


def _loads(spec: str) -> bool:
    try:
        load_lifecycle(spec)
    except UnknownLifecycle:
        return False
    return True


def _relative(home: Path, path: str | Path) -> str:
    """``path`` (relative: to the current directory) as a POSIX path relative to ``home``."""
    return Path(os.path.relpath(Path(path).resolve(), home.resolve())).as_posix()


def _replica_entry(home: Path, replica: str | Path) -> dict[str, str]:
    if str(replica).startswith(("http://", "https://")):  # another domain's `proml serve`
        from proml_sim.node.peers import check_peer_url

        return {"kind": "http", "url": check_peer_url(str(replica))}
    return {"kind": "dir", "path": _relative(home, replica)}


def chain_identity(backend: ChainBackend) -> dict[str, Any]:
    """What makes a chain itself: its chain id and genesis block hash (0x-hex)."""
    return {"chain_id": backend.chain_id, "genesis": "0x" + backend.block(0).hash.hex()}


def identity_mismatch(chain: dict[str, Any], backend: ChainBackend) -> str | None:
    """How ``backend``'s chain differs from the one a home's ``chain`` entry records (chain id
    and genesis), or None when it is that chain (or the entry records no identity yet)."""
    if "genesis" not in chain:
        return None
    found = chain_identity(backend)
    if found["genesis"] == chain["genesis"] and found["chain_id"] == chain.get("chain_id"):
        return None
    return (f"chain id {found['chain_id']} and genesis {found['genesis']}, where the home was "
            f"made for chain id {chain.get('chain_id')} and genesis {chain['genesis']}")


def _check_identity(home: Path, chain: dict[str, Any], backend: ChainBackend, where: str) -> None:
    mismatch = identity_mismatch(chain, backend)
    if mismatch is not None:
        raise HomeError(
            f"the chain at {where} is not the chain of node home {home}: {mismatch}; refusing "
            "to use it; point chain in node.json at the home's own chain (or restore that chain)"
        )


#: what to do about a contract whose code is not its lifecycle's (:func:`code_mismatch`)
CODE_FIX = ("deploy the lifecycle anew, or compile with the Vyper version its deployer used")


def code_mismatch(lifecycle: str, spec: str, address: str, code: bytes,
                  compiled: Any) -> str | None:
    """Why the ``code`` at ``address`` is not the runtime code generated and compiled from the
    lifecycle (``compiled``), or None (it is, or there is no code: named elsewhere)."""
    if not code or code == compiled.runtime_bytecode:
        return None
    return (f"the {lifecycle} contract at {address} is not the code generated and compiled "
            f"from {spec!r} ({len(code)} bytes on chain, {len(compiled.runtime_bytecode)} "
            f"compiled here by {compiled.compiler}), though it may state its IR fingerprint: "
            "it may enforce other rules than it states")


def contracts_without_code(contracts: dict[str, Any], code: Callable[[str], bytes]
                           ) -> list[tuple[str, str, Exception | None]]:
    """``(lifecycle, address, None)`` for each contract ``node.json`` records at an address
    where the chain holds no code (an altered address read as an empty lifecycle: `proml ls`
    listed nothing), ``(lifecycle, address, error)`` where ``code(address)`` could not say.
    Code the state DB cannot give back intact (JournalError) is left out: that damage is named
    where it is found (when the contract is used, and by doctor's chain check)."""
    from proml_sim.errors import EngineError

    found: list[tuple[str, str, Exception | None]] = []
    for lc, address in sorted(contracts.items()):
        try:
            if not code(str(address)):
                found.append((lc, str(address), None))
        except JournalError:
            continue
        except (EngineError, ValueError, TypeError) as exc:
            found.append((lc, str(address), exc))
    return found


def _check_contracts(home: Path, contracts: dict[str, str], backend: ChainBackend,
                     where: str) -> None:
    """Each contract ``node.json`` records holds code on the chain (see
    :func:`contracts_without_code`)."""
    for lc, address, exc in contracts_without_code(contracts, backend.code):
        if exc is not None:
            raise exc
        raise HomeError(
            f"{home / 'node.json'} records {lc} at {address}, where the chain at {where} "
            f"holds no contract; fix contracts.{lc} in node.json (the chain directory's "
            "deployments.json, or a member of this chain, has the address) or restore "
            "node.json from a copy")


def _upgrade_config(home: Path, config: dict[str, Any]) -> bool:
    """Bring a node.json of an older format to :data:`HOME_FORMAT` in memory; True if it
    changed (KeyError/TypeError/ValueError naming the entry if it is malformed)."""
    changed = False
    chain = config.get("chain")
    if not isinstance(chain, dict):
        raise TypeError("chain")
    if chain.get("kind") not in ("journal", "rpc"):
        raise ValueError("chain.kind")
    where = "path" if chain["kind"] == "journal" else "url"
    if not isinstance(chain.get(where), str):
        raise TypeError(f"chain.{where}")
    if not isinstance(config.get("contracts"), dict):
        raise TypeError("contracts")
    if config["format"] < 2:
        # format 1: an absolute chain path; replicas were bare strings; only the paper's
        # lifecycles existed
        if chain["kind"] == "journal":
            old = Path(chain["path"])
            own = home / "chain"
            if (old.name == "chain" and (own / "chain.json").is_file()
                    and old.resolve() != own.resolve()):
                # a copied or moved home that holds its own chain (where `init --new-chain`
                # put it): use that copy, never the original home's chain
                old = own
            chain["path"] = _relative(home, old)
        if not isinstance(config.get("replicas", []), list):
            raise TypeError("replicas")
        config["replicas"] = [{"kind": "dir", "path": str(r)} if isinstance(r, str) else r
                              for r in config.get("replicas", [])]
        config["lifecycles"] = {lc: lc for lc in config["contracts"] if lc in LIFECYCLES}
        config["format"] = HOME_FORMAT
        changed = True
    for key in ("name", "domain", "address"):
        if not isinstance(config.get(key), str):
            raise TypeError(key)
    if not isinstance(config.get("replicas"), list):
        raise TypeError("replicas")
    for i, r in enumerate(config["replicas"]):
        if not (isinstance(r, dict) and r.get("kind") in ("dir", "http") and isinstance(
                r.get("url" if r["kind"] == "http" else "path"), str)):
            raise TypeError(f"replicas[{i}]")
    if not isinstance(config.get("lifecycles"), dict):
        raise TypeError("lifecycles")
    if not is_address(config["address"]):
        raise ValueError("address")
    for lc, addr in config["contracts"].items():
        if not is_address(addr):
            raise ValueError(f"contracts.{lc}")
    for lc, spec in config["lifecycles"].items():
        if lc not in config["contracts"] or not isinstance(spec, str):
            raise ValueError(f"lifecycles.{lc}")
    return changed


def config_problem(home: Path, config: Any) -> str | None:
    """What makes ``config`` (a parsed ``node.json``) unusable, or None: the check every
    command makes on opening the home, for ``proml doctor`` to report."""
    if not isinstance(config, dict):
        return "is not a node configuration (a JSON object)"
    fmt = config.get("format")
    if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 1:
        return f"is malformed: its entry 'format' is missing or wrong (found {fmt!r})"
    if fmt > HOME_FORMAT:
        return (f"has format {fmt}, newer than this proml-sim understands ({HOME_FORMAT}); "
                "upgrade proml-sim")
    try:
        _upgrade_config(home, copy.deepcopy(config))
    except (KeyError, TypeError, ValueError) as exc:
        return f"is malformed: its entry {exc.args[0]!r} is missing or wrong"
    return None


def _split_deployments(obj: Any) -> tuple[dict[str, str], dict[str, str]]:
    """(contracts, lifecycle specs) from ``{"contracts": .., "lifecycles": ..}`` or from the
    flat ``{name: address}`` of the paper's lifecycles."""
    if not isinstance(obj, dict):
        raise HomeError("contract addresses must be a JSON object {lifecycle: address}")
    if isinstance(obj.get("contracts"), dict):
        contracts = dict(obj["contracts"])
        specs = dict(obj.get("lifecycles") or {})
    else:
        contracts, specs = dict(obj), {}
    for lc in contracts:
        if lc in LIFECYCLES:
            specs.setdefault(lc, lc)
    return contracts, {lc: sp for lc, sp in specs.items() if lc in contracts}


_DEPLOYMENTS_FIX = ("`proml doctor --repair` on a node of this chain writes it again from that "
                    "node's record (the damaged file is kept aside)")


def read_deployments(directory: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The contracts deployed on an embedded chain (``deployments.json`` in its ``directory``,
    kept in the paper's flat shape for older readers) and the import specs of its lifecycles
    (``lifecycles.json``); :class:`HomeError` naming a file that is missing or damaged."""
    if not (directory / DEPLOYMENTS).exists():
        raise HomeError(f"the chain at {directory} has no {DEPLOYMENTS}; "
                        "create it with `proml init --new-chain`")
    contracts = deployment_table(directory / DEPLOYMENTS)
    specs = deployment_table(directory / LIFECYCLE_SPECS) \
        if (directory / LIFECYCLE_SPECS).exists() else {}
    return _split_deployments({"contracts": contracts, "lifecycles": specs})


DEPLOYMENTS, LIFECYCLE_SPECS = "deployments.json", "lifecycles.json"
#: deployment-file damage already named on stderr by this process
_warned_deployments: set[str] = set()


def deployment_table(path: Path) -> dict[str, str]:
    """One of a chain directory's deployment files, checked: a JSON object of lifecycle names
    and contract addresses (``deployments.json``) or import specs (``lifecycles.json``)."""
    from eth_utils.address import is_address

    try:
        table = parse_json(path.read_text())
    except (OSError, ValueError) as exc:
        raise HomeError(f"cannot read {path}: {exc}; {_DEPLOYMENTS_FIX}") from None
    addresses = path.name == DEPLOYMENTS
    if not isinstance(table, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and (not addresses or is_address(v))
            for k, v in table.items()):
        raise HomeError(f"{path} is not a JSON object of lifecycle names and "
                        f"{'contract addresses' if addresses else 'import specs'}; "
                        f"{_DEPLOYMENTS_FIX}")
    return table


def write_deployments(directory: Path, contracts: dict[str, str],
                      specs: dict[str, str]) -> None:
    atomic_write_json(directory / DEPLOYMENTS, contracts, mkdir=False)
    atomic_write_json(directory / LIFECYCLE_SPECS, specs, mkdir=False)
