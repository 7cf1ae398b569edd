"""Offline evidence bundles: everything verifying one artefact needs, in one zip file.

Members::

    manifest.json        format, chain id, contract addresses, per lifecycle the IR fingerprint
                         and the fingerprint the deployed contract reported, the artefact, the
                         blobs (digest -> size) and any blob that was unavailable when bundling
    events.json          every lifecycle event of the involved contracts, in chain order, with
                         block number, block time, tx hash, tx/log index and the tx signer
    ir/<Lifecycle>.json  the lifecycle IR's canonical JSON (its SHA-256 is the fingerprint)
    proofs.json          chain proofs (``proofs.py``): block headers from the contracts' first
                         event to the checkpoint, every receipt of each block whose logs bloom
                         may hold their events, and receipt inclusion proofs
    blobs/<sha256>       the artefact's and its ancestors' blobs: records, approval evidence,
                         outputs, input files, code

:func:`load_bundle` validates every member before returning a :class:`BundleSource` (an
:class:`~proml_sim.node.evidence.EvidenceSource`), so ``verify``, ``Lineage`` and
``export_prov`` run on it without a node, a chain or a network.  A bundle proves the history is
*consistent* (rules, digests, lineage); its ``proofs.json`` proves its events are the chain's,
all of them, once the verifier pins a checkpoint hash it trusts (``--checkpoint``).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import IO, Any, BinaryIO

from proml_sim.chain.proofs import supports_proofs
from proml_sim.errors import BlobCorrupted, BundleError, StoreError
from proml_sim.fsutil import parse_json
from proml_sim.ir import (
    Approved,
    LifecycleEvent,
    LifecycleIR,
    Registered,
    RoleGranted,
    RoleRevoked,
    Transitioned,
)
from proml_sim.node.evidence import (
    ChainEvent,
    EvidenceSource,
    _address,
    atomic_write,
    hexdigest,
    merge_in_chain_order,
)
from proml_sim.node.lineage import Lineage
from proml_sim.node.service import ArtefactRef
from proml_sim.node.store import CHUNK
from proml_sim.node.verify import Check, evidence_digests, verification_scope

BUNDLE_FORMAT = 1
BUNDLE_KIND = "proml-evidence-bundle"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # members carry no wall-clock time: same evidence, same bytes
#: what reading a damaged member raises (bad CRC, corrupt deflate stream, truncation)
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError)
_REBUILD = "rebuild it with `proml bundle ARTEFACT -o FILE` from a node"
#: the most a member read whole (manifest, events, IRs, proofs) may inflate to, and all of them
#: together: a zip of a few MB can inflate to GiBs.  The proofs of a 10,003-event history are
#: 36 MB (README, proofs_bench).  Blobs are streamed through SHA-256, never read whole here.
MAX_MEMBER_BYTES = 1 << 30
MAX_READ_BYTES = 2 << 30


def write_bundle(source: EvidenceSource, ref: str | bytes | ArtefactRef, path: str | Path, *,
                 allow_missing: bool = False) -> Path:
    """Write the evidence bundle of ``ref`` (its latest version and every ancestor) to ``path``,
    atomically.  A blob that is missing or corrupted in ``source`` raises
    :class:`BundleError` naming it, unless ``allow_missing`` (then the manifest lists it and
    verifying the bundle reports it)."""
    lin = Lineage(source)
    target = lin.key(ref)
    scope = verification_scope(lin, target)
    lifecycles = sorted({k.lifecycle for k in scope})
    digests = evidence_digests(lin, scope)
    present: list[str] = []
    missing: dict[str, str] = {}
    for d, roles in digests.items():
        ok, detail = source.check_blob(d)
        if ok:
            present.append(d)
        else:
            missing[d] = f"{', '.join(roles)}: {detail}"
    if missing and not allow_missing:
        first = next(iter(missing.items()))
        raise BundleError(
            f"cannot bundle {lin.label(target)}: {len(missing)} blob(s) unavailable, first "
            f"{first[0]} ({first[1]}); restore them (`proml verify` lists each), or bundle "
            "anyway with --allow-missing so the bundle records the gap")
    events = merge_in_chain_order(source.events(lc) for lc in lifecycles)
    irs = {lc: source.irs[lc] for lc in lifecycles}
    backend = getattr(getattr(source, "node", None), "backend", None)
    proofs = None
    if backend is not None and supports_proofs(backend):  # prove the events against the chain
        from proml_sim.node.proofs import build_proofs

        proofs = build_proofs(backend, {lc: source.contracts[lc] for lc in lifecycles}, events)
    sizes: dict[str, int] = {}

    def write(fh: BinaryIO) -> None:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for lc, ir in irs.items():
                _put(zf, f"ir/{lc}.json", ir.canonical_json().encode())
            _put(zf, "events.json", json.dumps([ce.to_json() for ce in events],
                                               indent=1).encode())
            if proofs is not None:
                _put(zf, "proofs.json", json.dumps(proofs, separators=(",", ":")).encode())
            for d in present:
                info = zipfile.ZipInfo(f"blobs/{d}", _FIXED_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                h = hashlib.sha256()
                size = 0
                with source.open_blob(d) as src, zf.open(info, "w", force_zip64=True) as out:
                    while chunk := src.read(CHUNK):
                        h.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                if h.hexdigest() != d:  # changed between the check and the copy
                    raise BlobCorrupted(f"blob {d} changed while it was bundled; bundle again")
                sizes[d] = size
            manifest = {
                "format": BUNDLE_FORMAT, "kind": BUNDLE_KIND, "chain_id": source.chain_id,
                "contracts": {lc: source.contracts[lc] for lc in lifecycles},
                "lifecycles": {lc: {"fingerprint": ir.fingerprint(),
                                    "deployed_fingerprint": source.deployed_fingerprint(lc)}
                               for lc, ir in irs.items()},
                "artefact": {"lifecycle": target.lifecycle, "id": target.id,
                             "name": lin.name(target), "version": target.version},
                "blobs": sizes, "missing": missing, "source": source.describe(),
            }
            _put(zf, "manifest.json", json.dumps(manifest, indent=1, sort_keys=True).encode())

    return atomic_write(path, write)


def _put(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, _FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def _bad(member: str, problem: str) -> BundleError:
    return BundleError(f"malformed evidence bundle: {member}: {problem}; {_REBUILD}")


def _want(obj: Mapping[str, Any], key: str, typ: type | tuple[type, ...], member: str,
          what: str) -> Any:
    if key not in obj:
        raise _bad(member, f"field {key!r} is missing")
    v = obj[key]
    if not isinstance(v, typ) or (isinstance(v, bool) and typ is int):
        raise _bad(member, f"field {key!r} must be {what}, not {type(v).__name__}")
    return v


class BundleSource:
    """An evidence bundle opened and validated by :func:`load_bundle`."""

    def __init__(self, path: Path, manifest: dict[str, Any], irs: dict[str, LifecycleIR],
                 events: list[ChainEvent], proofs: dict[str, Any] | None = None) -> None:
        self.path = path
        #: the chain proofs (``proofs.json``), or None for a bundle without them
        self.proofs = proofs
        self.manifest = manifest
        self._irs = irs
        self._all = events
        self._by_lc: dict[str, list[ChainEvent]] = {lc: [] for lc in irs}
        for ce in events:
            self._by_lc[ce.lifecycle].append(ce)
        self.blobs: dict[str, int] = manifest["blobs"]
        self.missing: dict[str, str] = manifest.get("missing", {})

    @property
    def chain_id(self) -> int:
        return int(self.manifest["chain_id"])

    @cached_property
    def contracts(self) -> Mapping[str, str]:
        return dict(self.manifest["contracts"])

    @property
    def irs(self) -> Mapping[str, LifecycleIR]:
        return self._irs

    @property
    def artefact(self) -> ArtefactRef:
        a = self.manifest["artefact"]
        return ArtefactRef(a["lifecycle"], bytes.fromhex(a["id"][2:]), a.get("name"))

    def check_claims(self, proven: Mapping[str, Any]) -> list[Check]:
        """The manifest's description of its subject (name, version) against what verifying
        the evidence proved (``proven``: a :class:`~proml_sim.node.verify.VerifyReport`'s
        artefact): a consumer who reads the manifest must read nothing the evidence denies.
        When another artefact of the bundle was verified, the subject must be one the
        bundle's events register.  Every blob it lists must be one the bundle's history
        names (:meth:`check_listed_blobs`)."""
        return self._check_subject(proven) + self.check_listed_blobs()

    def check_listed_blobs(self) -> list[Check]:
        """Each blob ``manifest.json`` lists must be named by the bundle's events: an event's
        evidence or approval digest, or a named record's output, input file or code (what
        ``proml bundle`` lists).  Another blob is no evidence of this history, though its bytes
        hash to its name."""
        lin = Lineage(self)
        versions = [k for k, attrs in lin.graph.nodes(data=True) if "digest" in attrs]
        named = evidence_digests(lin, versions)
        stray = sorted(d for d in self.blobs if d not in named)
        if stray:
            return [Check("blob", False, f"blob {d} is listed in manifest.json, but no event of "
                          "the bundle names it (as evidence, approval evidence, or a record's "
                          "output, input file or code): it is not evidence of this history; the "
                          f"bundle was altered: {_REBUILD}") for d in stray]
        return [Check("blob", True, f"each of the {len(self.blobs)} blobs manifest.json lists "
                      "is named by the bundle's events")]

    def _check_subject(self, proven: Mapping[str, Any]) -> list[Check]:
        a = self.manifest["artefact"]
        said = f"{a['lifecycle']} {a.get('name') or a['id']} v{a['version']}"
        if proven.get("id") != a["id"]:
            # another artefact of the bundle was verified: its subject must still be one the
            # bundle's events register (an id no event registers describes nothing proven)
            held = any(isinstance(ce.event, Registered) and ce.lifecycle == a["lifecycle"]
                       and "0x" + ce.event.id.hex() == a["id"] for ce in self._all)
            if not held:
                return [Check("manifest", False, f"manifest.json's subject, {said} ({a['id']}), "
                              "is registered by none of the bundle's events: the description "
                              f"was altered or its events removed; {_REBUILD}")]
            return [Check("manifest", True, f"manifest.json's subject, {said}, is registered "
                          "by the bundle's events (not the artefact verified here)")]
        bad = [f"{k} {a.get(k)!r} (the evidence proves {proven.get(k)!r})"
               for k in ("lifecycle", "id", "name", "version")
               # a name no held record proves (a bundle --allow-missing) is not denied
               if a.get(k) is not None and a.get(k) != proven.get(k)
               and not (k == "name" and proven.get(k) is None)]
        if bad:
            return [Check("manifest", False, f"manifest.json describes its subject with "
                          f"{', '.join(bad)}: the description was altered; use the proven "
                          f"values, or {_REBUILD}")]
        return [Check("manifest", True, f"manifest.json's subject, {said}, is what the "
                      "evidence proves")]

    def events(self, lifecycle: str | None = None) -> Sequence[ChainEvent]:
        if lifecycle is None:
            return self._all
        try:
            return self._by_lc[lifecycle]
        except KeyError:
            raise BundleError(f"the bundle {self.path} holds no {lifecycle} events (it has "
                              f"{', '.join(self._by_lc)})") from None

    def deployed_fingerprint(self, lifecycle: str) -> str | None:
        fp = self.manifest["lifecycles"].get(lifecycle, {}).get("deployed_fingerprint")
        return str(fp) if fp is not None else None

    def _read(self, d: str) -> bytes:
        if d not in self.blobs:
            why = self.missing.get(d)
            raise StoreError(f"blob {d} is not in the bundle {self.path}"
                             + (f" (unavailable when it was made: {why})" if why else "")
                             + f"; {_REBUILD} that holds it")
        try:
            with zipfile.ZipFile(self.path) as zf:
                return zf.read(f"blobs/{d}")
        except (OSError, KeyError, *_DAMAGED) as exc:
            raise StoreError(f"cannot read blob {d} from the bundle {self.path}: {exc}") from exc

    def blob(self, digest: str | bytes) -> bytes:
        d = hexdigest(digest)
        data = self._read(d)
        got = hashlib.sha256(data).hexdigest()
        if got != d:
            raise BlobCorrupted(f"blob {d} in the bundle {self.path} is corrupted: its bytes "
                                f"hash to {got}; {_REBUILD}")
        return data

    def open_blob(self, digest: str | bytes) -> BinaryIO:
        return io.BytesIO(self.blob(digest))

    def has_blob(self, digest: str | bytes) -> bool:
        return hexdigest(digest) in self.blobs

    def check_blob(self, digest: str | bytes) -> tuple[bool, str]:
        d = hexdigest(digest)
        if d not in self.blobs:
            why = self.missing.get(d)
            if why:
                return False, (f"was unavailable when the bundle was made ({why}); restore it "
                               f"on the node and {_REBUILD}")
            return False, f"is not in the bundle {self.path}; {_REBUILD}"
        try:
            with zipfile.ZipFile(self.path) as zf, zf.open(f"blobs/{d}") as fh:
                got = _sha256_stream(fh)
        except (OSError, KeyError, *_DAMAGED) as exc:
            return False, f"cannot be read from the bundle {self.path} ({exc}); {_REBUILD}"
        if got != d:
            return False, f"is corrupted in the bundle (its bytes hash to {got}); {_REBUILD}"
        return True, f"intact in bundle {self.path.name}"

    def describe(self) -> str:
        return f"bundle {self.path}"


def _sha256_stream(fh: IO[bytes]) -> str:
    h = hashlib.sha256()
    while chunk := fh.read(CHUNK):
        h.update(chunk)
    return h.hexdigest()


def load_bundle(path: str | Path) -> BundleSource:
    """Open an evidence bundle, validating every member (``BundleError`` names the member or
    field that is wrong and how to get a good bundle)."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"no evidence bundle at {path}; check the path, or make one with "
                          "`proml bundle ARTEFACT -o FILE`")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"{path} is not an evidence bundle (not a zip file: {exc}); make one "
                          "with `proml bundle ARTEFACT -o FILE`") from None
    with zf:
        try:
            return _load(path, zf)
        except _DAMAGED as exc:  # CRC errors and truncated members surface on read
            raise BundleError(f"malformed evidence bundle {path}: a member is damaged ({exc}); "
                              f"{_REBUILD}") from None


class _Reader:
    """Reads members of a bundle whole, each within :data:`MAX_MEMBER_BYTES` and all within
    :data:`MAX_READ_BYTES`: at most the cap plus one byte is inflated, whatever size the zip's
    header declares."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        self.total = 0

    def read(self, name: str) -> bytes:
        left = MAX_READ_BYTES - self.total
        cap = min(MAX_MEMBER_BYTES, left)
        try:
            fh = self.zf.open(name)
        except KeyError:
            raise BundleError(f"malformed evidence bundle: member {name} is missing; "
                              f"{_REBUILD}") from None
        with fh:
            data = fh.read(cap + 1)
        if len(data) > cap:
            what = (f"more than {_size(cap)}, the cap on one member" if cap == MAX_MEMBER_BYTES
                    else f"more than the {_size(left)} left of the {_size(MAX_READ_BYTES)} cap on "
                         "the members read whole")
            raise _bad(name, f"inflates to {what} (a genuine bundle of a 10,000-event history "
                             "holds 36 MB of proofs): a zip bomb, or not a bundle `proml bundle` "
                             "wrote")
        self.total += len(data)
        return data


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n:,} bytes"


def _json_member(reader: _Reader, name: str) -> Any:
    raw = reader.read(name)
    try:
        return parse_json(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(name, f"not valid JSON ({exc})") from None


def _load(path: Path, zf: zipfile.ZipFile) -> BundleSource:
    reader = _Reader(zf)
    listing = zf.namelist()
    names = set(listing)
    if len(names) != len(listing):
        dup = next(n for n in listing if listing.count(n) > 1)
        raise _bad(dup, "appears twice in the zip (a later copy would shadow the first); the "
                        "bundle was altered")
    m = _json_member(reader, "manifest.json")
    if not isinstance(m, dict):
        raise _bad("manifest.json", "must be a JSON object")
    fmt = _want(m, "format", int, "manifest.json", "an integer")
    if fmt > BUNDLE_FORMAT:
        raise BundleError(f"the bundle {path} has format {fmt}, newer than this proml-sim reads "
                          f"({BUNDLE_FORMAT}); upgrade proml-sim")
    if fmt < 1 or m.get("kind") != BUNDLE_KIND:
        raise _bad("manifest.json", f"format {fmt} / kind {m.get('kind')!r} is not a ProML "
                                    f"evidence bundle (kind {BUNDLE_KIND!r})")
    _want(m, "chain_id", int, "manifest.json", "an integer")
    contracts = _want(m, "contracts", dict, "manifest.json", "an object {lifecycle: address}")
    lcs = _want(m, "lifecycles", dict, "manifest.json", "an object {lifecycle: fingerprints}")
    if set(contracts) != set(lcs) or not lcs:
        raise _bad("manifest.json", "'contracts' and 'lifecycles' must name the same, non-empty "
                                    "set of lifecycles")
    irs: dict[str, LifecycleIR] = {}
    for lc, info in lcs.items():
        where = f"manifest.json lifecycles.{lc}"
        if not isinstance(info, dict):
            raise _bad(where, "must be an object")
        fp = _want(info, "fingerprint", str, where, "a hex string")
        dep = info.get("deployed_fingerprint")
        if dep is not None and not isinstance(dep, str):
            raise _bad(where, "field 'deployed_fingerprint' must be a hex string or null")
        try:
            contracts[lc] = _address(contracts[lc], f"contracts.{lc}")
        except ValueError as exc:
            raise _bad("manifest.json", str(exc)) from None
        member = f"ir/{lc}.json"
        raw = reader.read(member)
        if hashlib.sha256(raw).hexdigest() != fp:
            raise _bad(member, f"its SHA-256 is not the fingerprint {fp} the manifest states "
                               "(the lifecycle rules were altered)")
        try:  # from_dict checks every field: ValueError (UnicodeDecodeError is one) names it
            ir = LifecycleIR.from_json(raw.decode())
        except ValueError as exc:
            raise _bad(member, f"not a lifecycle IR ({exc})") from None
        if ir.name != lc:
            raise _bad(member, f"is the IR of {ir.name!r}, not {lc!r}")
        irs[lc] = ir
    art = _want(m, "artefact", dict, "manifest.json", "an object")
    alc = _want(art, "lifecycle", str, "manifest.json artefact", "a lifecycle name")
    aid = _want(art, "id", str, "manifest.json artefact", "a 0x id")
    _want(art, "version", int, "manifest.json artefact", "an integer")
    if alc not in irs:
        raise _bad("manifest.json", f"artefact.lifecycle {alc!r} is not one of the bundle's "
                                    "lifecycles")
    if not (aid.startswith("0x") and len(aid) == 66 and _is_hex(aid[2:])):
        raise _bad("manifest.json", "artefact.id must be a 0x id of 64 hex digits")
    name = art.get("name")
    if name is not None and not isinstance(name, str):
        raise _bad("manifest.json", "artefact.name must be a string or null")
    blobs = _want(m, "blobs", dict, "manifest.json", "an object {sha256: size}")
    missing = m.get("missing", {})
    if not isinstance(missing, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in missing.items()):
        raise _bad("manifest.json", "field 'missing' must be an object {sha256: reason}")
    for d, size in blobs.items():
        member = f"blobs/{d}"
        if not (len(d) == 64 and _is_hex(d) and d == d.lower()):
            raise _bad("manifest.json", f"blobs key {d!r} is not a SHA-256 hex digest")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _bad("manifest.json", f"blobs.{d} must be a size in bytes")
        if member not in names:
            raise BundleError(f"malformed evidence bundle: member {member} is missing (the "
                              f"manifest lists it); {_REBUILD}")
        with zf.open(member) as fh:
            got = _sha256_stream(fh)
        if got != d:
            raise _bad(member, f"its bytes hash to {got}, not to its name: the blob was altered")
        if zf.getinfo(member).file_size != size:
            raise _bad(member, f"is {zf.getinfo(member).file_size} bytes, the manifest says "
                               f"{size}")
    expected = {"manifest.json", "events.json", *(f"ir/{lc}.json" for lc in irs),
                *(f"blobs/{d}" for d in blobs)}
    proofs = None
    if "proofs.json" in names:
        expected.add("proofs.json")
        proofs = _json_member(reader, "proofs.json")
        if not isinstance(proofs, dict):
            raise _bad("proofs.json", "must be a JSON object")
    extra = sorted(names - expected)
    if extra:
        raise _bad(extra[0], "is not part of an evidence bundle (unlisted blob or stray file); "
                             "the bundle was altered")
    raw_events = _json_member(reader, "events.json")
    if not isinstance(raw_events, list):
        raise _bad("events.json", "must be a JSON list of events")
    events = []
    for i, d in enumerate(raw_events):
        try:
            ce = ChainEvent.from_json(d)
        except ValueError as exc:
            raise _bad("events.json", f"event [{i}]: {exc}") from None
        if ce.lifecycle not in irs:
            raise _bad("events.json", f"event [{i}]: lifecycle {ce.lifecycle!r} is not one of "
                                      "the bundle's lifecycles")
        problem = _beyond_ir(ce.event, irs[ce.lifecycle])
        if problem:
            raise _bad("events.json", f"event [{i}]: {problem}")
        events.append(ce)
    manifest = dict(m, contracts=contracts, missing=missing)
    return BundleSource(path, manifest, irs, events, proofs)


def _beyond_ir(ev: LifecycleEvent, ir: LifecycleIR) -> str | None:
    """The first transition, state or role index of ``ev`` that ``ir`` does not define,
    described (the contract emits none such); None when all are defined."""
    n_t, n_s, n_r = len(ir.transitions), len(ir.states), len(ir.roles)
    indices: list[tuple[str, int, int, int]] = []  # (argument, value, lowest, highest)
    if isinstance(ev, Transitioned | Approved):
        indices.append(("transition", ev.transition, 0, n_t - 1))
    if isinstance(ev, Transitioned):
        indices += [("source", ev.source, 1, n_s), ("target", ev.target, 1, n_s)]
    if isinstance(ev, Registered):
        indices.append(("state", ev.state, 1, n_s))
    if isinstance(ev, RoleGranted | RoleRevoked):
        indices.append(("role", ev.role, 0, n_r - 1))
    for arg, v, lo, hi in indices:
        if not lo <= v <= hi:
            kind = arg if arg in ("transition", "role") else "state"
            held = f"numbered {lo} to {hi}" if hi >= lo else "none"
            return (f"args.{arg} {v} is no {kind} of ir/{ir.name}.json (its {kind}s: {held}): "
                    "the events and the lifecycle rules disagree")
    return None


def _is_hex(s: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in s)
