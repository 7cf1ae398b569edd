"""The lineage graph: which artefact versions fed which, from chain events and records.

Nodes are artefact versions, :class:`VersionKey` ``(lifecycle, id, version)``, each created by
one ``Registered`` or ``Transitioned`` event, with attributes ``name``, ``state``, ``step``,
``actor``, ``domain`` (the actor's trust domain from its last ``RoleGranted`` before the
event), ``digest`` (the event's evidence, hex, ``None`` for none), ``evidence`` (the latest
non-zero digest up to this version: what a consumer of this version checks), ``block``,
``timestamp``, ``tx``, ``locator``, ``approvers`` (approvals that fired the transition) and
``pending`` (approvals given on this version that have not fired).

Edges (attribute ``kind``):

* ``"input"``: from the input artefact version to the version it fed.  The event carries only
  input *ids*; the version consumed is the input's version at that event's position in chain
  order.  When the step's record is available, its ``InputRef`` states the version explicitly;
  the record's statement is used (it is what the step says it consumed, committed by the
  evidence digest) and any disagreement is listed in :attr:`Lineage.conflicts`.
* ``"version"``: ``v -> v+1`` of the same artefact.

Version edges make lineage conservative: a later version is treated as derived from the earlier
ones (a reviewed dataset carries its labelled content; a retrained model may start from the old
one), so a tainted version taints every later version and everything they fed.

:meth:`Lineage.affected_by` answers "which artefacts were built with a vulnerable library?": the
versions whose record captured the package at a version the specifier matches
(``torch==2.0.1``, ``numpy<1.26``, ``python>=3.12,<3.12.2``), every version built on them, and
the versions whose record is unavailable (their environment is unknown).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import networkx as nx

from proml_sim.errors import NodeError, StoreError, UnknownName, UsageError
from proml_sim.ir import (
    ZERO32,
    Approved,
    Registered,
    RoleGranted,
    Transitioned,
    replay,
)
from proml_sim.node.evidence import (
    ChainEvent,
    EvidenceSource,
    atomic_write,
    domain_name,
    load_record,
    name_salt_ok,
    resolve,
)
from proml_sim.node.records import Record
from proml_sim.node.service import ArtefactRef


class VersionKey(NamedTuple):
    """One artefact version: the node of the lineage graph."""

    lifecycle: str
    id: str  # 0x hex
    version: int

    def label(self, name: str | None = None) -> str:
        return f"{self.lifecycle} {name or self.id[:10] + '...'} v{self.version}"


@dataclass(frozen=True)
class InputUse:
    """One input of a step: the version the chain order implies and the version the record
    states (``None`` when the record is unavailable or does not mention it)."""

    input: VersionKey  # the version used for the edge
    chain_version: int
    record_version: int | None
    record_evidence: str | None


@dataclass(frozen=True)
class Conflict:
    """A disagreement between the chain and a record about a version's inputs."""

    key: VersionKey
    message: str


@dataclass(frozen=True)
class PastState:
    """An artefact's state at a past time (the last change at or before it)."""

    lifecycle: str
    id: str
    name: str | None
    state: str
    version: int
    block: int
    timestamp: int


@dataclass
class BlastRadius:
    """Everything downstream of one artefact version."""

    root: VersionKey
    versions: list[VersionKey] = field(default_factory=list)
    artefacts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"root": list(self.root), "versions": [list(v) for v in self.versions],
                "artefacts": self.artefacts}


@dataclass
class Affected:
    """What :meth:`Lineage.affected_by` found for one package specifier.

    ``matched``: versions whose record's environment has the package at a matching version
    (with that version); ``descendants``: versions built on a matched one (not matched
    themselves); ``unknown``: versions whose evidence blob is missing or corrupted, or whose
    record gives the package a version PEP 440 cannot compare (treat them as suspect);
    ``unknown_descendants``: versions built on an unknown one and not already affected
    (suspect too); ``listing``: how many records list the package at all (0 means the query
    cannot tell: the package was never used, or it is not among the packages records
    capture)."""

    query: str
    package: str
    matched: list[tuple[VersionKey, str]] = field(default_factory=list)
    descendants: list[VersionKey] = field(default_factory=list)
    unknown: list[VersionKey] = field(default_factory=list)
    unknown_descendants: list[VersionKey] = field(default_factory=list)
    listing: int = 0

    @property
    def affected(self) -> list[VersionKey]:
        """Matched versions and their descendants."""
        return [k for k, _ in self.matched] + self.descendants


def parse_requirement(text: str) -> Any:
    """``PKG==VERSION`` or ``PKG<2.1`` (any PEP 440 specifier set) as a
    :class:`packaging.requirements.Requirement`; :class:`UsageError` naming the fix otherwise.

    Example: ``parse_requirement("torch>=2.0,<2.1").specifier.contains("2.0.1")`` is True."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise UsageError(f"{text!r} is not a package specifier ({exc}); write e.g. "
                         "torch==2.0.1 or 'numpy<1.26'") from None
    if req.extras or req.marker or req.url:
        raise UsageError(f"{text!r}: extras, markers and URLs mean nothing here; give the "
                         f"package and a version specifier only, e.g. {req.name}==2.0.1")
    if not req.specifier:
        raise UsageError(f"{text!r} names no version; write e.g. {req.name}==2.0.1 or "
                         f"'{req.name}<2.1'")
    return req


class Lineage:
    """The lineage graph of every artefact an evidence source knows."""

    def __init__(self, source: EvidenceSource) -> None:
        self.source = source
        self.graph: nx.DiGraph = nx.DiGraph()
        self.conflicts: list[Conflict] = []
        #: version -> its inputs as the chain order and its record state them
        self.uses: dict[VersionKey, list[InputUse]] = {}
        #: version -> its record (when the evidence is a readable record)
        self.records: dict[VersionKey, Record] = {}
        self.names: dict[tuple[str, str], str] = {}
        #: evidence digests whose blob is present but unreadable (corrupted)
        self.unreadable: set[bytes] = set()
        self._build()

    # -- construction ---------------------------------------------------------------------------
    def _record(self, digest: bytes) -> Record | None:
        if digest == ZERO32 or not self.source.has_blob(digest):
            return None
        try:
            return load_record(self.source, digest)
        except StoreError:  # corrupted: verify reports it; lineage uses the chain alone
            self.unreadable.add(digest)
            return None

    def _build(self) -> None:
        g = self.graph
        current: dict[tuple[str, bytes], int] = {}
        lifecycles_of: dict[bytes, list[str]] = {}
        evidence: dict[tuple[str, bytes], str | None] = {}
        domains: dict[str, dict[str, str | None]] = {}
        approvals: dict[tuple[str, bytes, int, int, bytes], list[dict[str, Any]]] = {}
        for ce in self.source.events():
            ev, lc = ce.event, ce.lifecycle
            doms = domains.setdefault(lc, {})
            if isinstance(ev, RoleGranted):
                doms[ev.account] = domain_name(ev.domain)
                continue
            if isinstance(ev, Approved):
                approvals.setdefault((lc, ev.id, ev.transition, ev.version, ev.digest), []).append(
                    {"approver": ev.approver, "domain": doms.get(ev.approver),
                     "block": ce.block, "tx": "0x" + ce.tx_hash.hex(), "count": ev.count,
                     "digest": ev.digest.hex() if ev.digest != ZERO32 else None})
                continue
            if not isinstance(ev, Registered | Transitioned):
                continue
            ir = self.source.irs[lc]
            aid = "0x" + ev.id.hex()
            if isinstance(ev, Registered):
                version, step, actor = 1, "register", ev.registrant
                state = ir.state_by_index(ev.state).name
            else:
                version, actor = ev.version, ev.actor
                step = ir.transitions[ev.transition].name
                state = ir.state_by_index(ev.target).name
            key = VersionKey(lc, aid, version)
            digest = ev.digest.hex() if ev.digest != ZERO32 else None
            if digest is not None:
                evidence[(lc, ev.id)] = digest
            rec = self._record(ev.digest)
            if rec is not None:
                self.records[key] = rec
                if isinstance(ev, Registered) and name_salt_ok(rec.name, ev.salt):
                    self.names[(lc, aid)] = rec.name  # type: ignore[assignment]
            approvers: list[dict[str, Any]] = []
            if isinstance(ev, Transitioned):
                approvers = approvals.pop((lc, ev.id, ev.transition, ev.version - 1, ev.digest),
                                          [])
            g.add_node(key, lifecycle=lc, id=aid, version=version,
                       name=self.names.get((lc, aid)), state=state, step=step, actor=actor,
                       domain=doms.get(actor), digest=digest,
                       evidence=evidence.get((lc, ev.id)), block=ce.block,
                       timestamp=ce.timestamp, tx="0x" + ce.tx_hash.hex(),
                       log_index=ce.log_index, locator=ev.locator, approvers=approvers,
                       pending=[])
            if version > 1:
                prev = VersionKey(lc, aid, version - 1)
                if prev in g:
                    g.add_edge(prev, key, kind="version")
                else:
                    self.conflicts.append(Conflict(
                        key, f"{self.label(key)} follows no version {version - 1}"))
            self.uses[key] = self._inputs(key, ev.inputs, rec, current, lifecycles_of)
            for use in self.uses[key]:
                g.add_edge(use.input, key, kind="input", chain_version=use.chain_version,
                           record_version=use.record_version)
            current[(lc, ev.id)] = version
            lifecycles_of.setdefault(ev.id, [])
            if lc not in lifecycles_of[ev.id]:
                lifecycles_of[ev.id].append(lc)
        for (lc, aid_b, _t, version, _d), given in approvals.items():
            key = VersionKey(lc, "0x" + aid_b.hex(), version)
            if key in g:
                g.nodes[key]["pending"].extend(given)

    def _inputs(self, key: VersionKey, ids: Sequence[bytes], rec: Record | None,
                current: dict[tuple[str, bytes], int],
                lifecycles_of: dict[bytes, list[str]]) -> list[InputUse]:
        stated = {(r.lifecycle, r.artefact.lower()): r for r in rec.inputs} if rec else {}
        out: list[InputUse] = []
        for raw in ids:
            hexid = "0x" + raw.hex()
            lcs = lifecycles_of.get(raw, [])
            if not lcs:
                self.conflicts.append(Conflict(key, f"{self.label(key)} names input {hexid}, "
                                                    "which is not a registered artefact at "
                                                    "that block"))
                continue
            for lc in lcs:
                ref = stated.get((lc, hexid))
                if len(lcs) > 1 and rec is not None and ref is None:
                    continue  # the same id in several lifecycles: the record says which
                chain_v = current[(lc, raw)]
                version = chain_v
                if ref is not None and 1 <= ref.version <= chain_v and ref.version != chain_v:
                    version = ref.version
                    self.conflicts.append(Conflict(key, (
                        f"{self.label(key)}: its record says it consumed {lc} {hexid} version "
                        f"{ref.version}, the chain order gives version {chain_v}")))
                elif ref is not None and ref.version != chain_v:
                    self.conflicts.append(Conflict(key, (
                        f"{self.label(key)}: its record names {lc} {hexid} version "
                        f"{ref.version}, which did not exist at that block (version {chain_v} "
                        "did)")))
                out.append(InputUse(VersionKey(lc, hexid, version), chain_v,
                                    ref.version if ref else None,
                                    ref.evidence if ref else None))
        if rec is not None:
            listed = {(u.input.lifecycle, u.input.id) for u in out}
            for r in rec.inputs:
                if (r.lifecycle, r.artefact.lower()) not in listed:
                    self.conflicts.append(Conflict(key, (
                        f"{self.label(key)}: its record names input {r.lifecycle} "
                        f"{r.artefact} that the transaction does not carry")))
        return out

    # -- queries ---------------------------------------------------------------------------------
    def ref(self, ref: str | bytes | ArtefactRef | VersionKey) -> ArtefactRef:
        if isinstance(ref, VersionKey):
            ref = ArtefactRef(ref.lifecycle, bytes.fromhex(ref.id[2:]))
        found = resolve(self.source, ref)
        name = found.name or self.names.get((found.lifecycle, found.hex))
        return ArtefactRef(found.lifecycle, found.id, name)

    def versions(self, ref: str | bytes | ArtefactRef | VersionKey) -> list[VersionKey]:
        """Every version of an artefact, oldest first."""
        r = self.ref(ref)
        out = sorted((k for k in self.graph if k.lifecycle == r.lifecycle and k.id == r.hex),
                     key=lambda k: k.version)
        if not out:
            raise UnknownName(f"{r.lifecycle} {r.name or r.hex} has no versions on chain")
        return out

    def key(self, ref: str | bytes | ArtefactRef | VersionKey, version: int | None = None,
            *, default: str = "latest") -> VersionKey:
        """One version of an artefact (``version=None``: the latest, or the first when
        ``default="first"``)."""
        if isinstance(ref, VersionKey) and version is None:
            if ref not in self.graph:
                raise UnknownName(f"{ref.label()} is not on chain")
            return ref
        vs = self.versions(ref)
        if version is None:
            return vs[-1] if default == "latest" else vs[0]
        for k in vs:
            if k.version == version:
                return k
        r = self.ref(ref)
        raise UnknownName(f"{r.lifecycle} {r.name or r.hex} has no version {version} (versions "
                          f"1..{vs[-1].version}); pick one of those")

    def name(self, key: VersionKey) -> str | None:
        return self.names.get((key.lifecycle, key.id))

    def label(self, key: VersionKey) -> str:
        return key.label(self.name(key))

    def ordered(self, keys: Iterable[VersionKey]) -> list[VersionKey]:
        """``keys`` in chain order (of the events that created them)."""
        g = self.graph
        return sorted(keys, key=lambda k: (g.nodes[k]["block"], g.nodes[k]["log_index"]))

    def ancestors(self, ref: str | bytes | ArtefactRef | VersionKey,
                  version: int | None = None) -> list[VersionKey]:
        """Every version this one was built from (``version=None``: the latest version), in
        chain order, without the version itself."""
        return self.ordered(nx.ancestors(self.graph, self.key(ref, version)))

    def descendants(self, ref: str | bytes | ArtefactRef | VersionKey,
                    version: int | None = None) -> list[VersionKey]:
        """Every version built on this one (``version=None``: the first version, so anything
        built on any version), in chain order, without the version itself."""
        return self.ordered(nx.descendants(self.graph, self.key(ref, version, default="first")))

    def blast_radius(self, ref: str | bytes | ArtefactRef | VersionKey,
                     version: int) -> BlastRadius:
        """Which artefact versions depend on this one ("which models depend on dataset D
        version 2?"): every downstream version, and the distinct artefacts by lifecycle (with
        the versions of each that are affected), the root artefact's own later versions
        included."""
        root = self.key(ref, version)
        down = self.descendants(root)
        out = BlastRadius(root, down)
        per: dict[tuple[str, str], list[int]] = {}
        for k in down:
            per.setdefault((k.lifecycle, k.id), []).append(k.version)
        for (lc, aid), vs in per.items():
            out.artefacts.setdefault(lc, []).append(
                {"id": aid, "name": self.names.get((lc, aid)), "versions": vs,
                 "latest_state": self.graph.nodes[self.versions(
                     ArtefactRef(lc, bytes.fromhex(aid[2:])))[-1]]["state"]})
        return out

    def affected_by(self, spec: str) -> Affected:
        """Every artefact version built with a package version matching ``spec``
        (:func:`parse_requirement`), its descendants, and the versions whose record is
        unavailable (:class:`Affected`).  A record's environment names packages by
        distribution name; ``python`` means the interpreter version.

        Example: ``lin.affected_by("torch==2.0.1").affected`` lists the versions to recall."""
        from packaging.utils import canonicalize_name
        from packaging.version import InvalidVersion, Version

        req = parse_requirement(spec)
        want = canonicalize_name(req.name)
        out = Affected(spec, req.name)
        hits = set()
        for key in self.ordered(self.graph):
            rec = self.records.get(key)
            if rec is None:
                digest = self.graph.nodes[key]["digest"]
                if digest is not None and (bytes.fromhex(digest) in self.unreadable
                                           or not self.source.has_blob(digest)):
                    out.unknown.append(key)
                continue
            env = rec.environment if isinstance(rec.environment, dict) else {}
            pkgs = env.get("packages")
            found: dict[str, str] = {canonicalize_name(str(n)): str(v) for n, v in (
                pkgs.items() if isinstance(pkgs, dict) else ())}
            if want == "python" and "python" not in found and env.get("python"):
                found["python"] = str(env["python"])
            if want not in found:
                continue
            out.listing += 1
            try:
                ok = req.specifier.contains(Version(found[want]), prereleases=True)
            except InvalidVersion:  # not PEP 440: cannot be compared, so not known safe
                out.unknown.append(key)
                continue
            if ok:
                out.matched.append((key, found[want]))
                hits.add(key)
        down: set[VersionKey] = set()
        for key in hits:
            down |= nx.descendants(self.graph, key)
        out.descendants = self.ordered(down - hits)
        suspect: set[VersionKey] = set()
        for key in out.unknown:
            suspect |= nx.descendants(self.graph, key)
        out.unknown_descendants = self.ordered(suspect - hits - down - set(out.unknown))
        return out

    def state_at(self, ref: str | bytes | ArtefactRef | VersionKey,
                 timestamp: int) -> PastState | None:
        """The artefact's state and version at ``timestamp`` (block time, seconds), by replaying
        its lifecycle's events up to that time; ``None`` if it was not registered yet."""
        r = self.ref(ref)
        events = [ce for ce in self.source.events(r.lifecycle) if ce.timestamp <= timestamp]
        snap = replay(self.source.irs[r.lifecycle], [ce.event for ce in events])
        rec = snap.records.get(r.id)
        if rec is None:
            return None
        state, version = rec
        last = _last_change(events, r.id)
        return PastState(r.lifecycle, r.hex, r.name,
                         self.source.irs[r.lifecycle].state_by_index(state).name, version,
                         last.block, last.timestamp)

    def subgraph(self, keys: Iterable[VersionKey]) -> nx.DiGraph:
        """The lineage graph restricted to ``keys`` (for pictures)."""
        return self.graph.subgraph(list(keys)).copy()

    def around(self, ref: str | bytes | ArtefactRef | VersionKey, version: int | None = None,
               *, up: bool = True, down: bool = False) -> nx.DiGraph:
        """A version with its ancestors and/or descendants, as a graph."""
        key = self.key(ref, version, default="latest" if up else "first")
        keys = {key}
        if up:
            keys |= nx.ancestors(self.graph, key)
        if down:
            keys |= nx.descendants(self.graph, key)
        return self.subgraph(keys)

    def node_json(self, key: VersionKey) -> dict[str, Any]:
        """One version as ``--json`` prints it (docs/json.md: digests 0x-hex like ids, times
        ISO-8601 UTC beside unix seconds)."""
        from proml_sim.node.service import iso_time

        def ox(d: str | None) -> str | None:
            return None if d is None else "0x" + d

        a = self.graph.nodes[key]
        approvers = [{**ap, "digest": ox(ap["digest"])} for ap in a["approvers"]]
        return {"lifecycle": key.lifecycle, "id": key.id, "version": key.version,
                **{k: a[k] for k in ("name", "state", "step", "actor", "domain", "block",
                                     "timestamp", "tx")},
                "time": iso_time(a["timestamp"]), "digest": ox(a["digest"]),
                "evidence": ox(a["evidence"]), "approvers": approvers,
                "inputs": [list(u.input) for u in self.uses.get(key, [])]}


def _last_change(events: Sequence[ChainEvent], aid: bytes) -> ChainEvent:
    for ce in reversed(events):
        ev = ce.event
        if isinstance(ev, Registered | Transitioned) and ev.id == aid:
            return ce
    raise AssertionError("replay found a record without its event")  # pragma: no cover


def build_lineage(source: EvidenceSource) -> Lineage:
    return Lineage(source)


_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")


def render_png(graph: nx.DiGraph, path: str | Path, *, title: str | None = None) -> Path:
    """Draw a lineage graph (or a subgraph) to a PNG: one lane per artefact, versions left to
    right in chain order; version edges grey, input edges coloured.  Written atomically."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency
        raise NodeError("drawing a lineage needs matplotlib: pip install matplotlib") from exc
    path = Path(path)
    if not graph.number_of_nodes():
        raise NodeError("the lineage graph is empty: nothing to draw; check the artefact")
    nodes = sorted(graph.nodes, key=lambda k: (graph.nodes[k]["block"],
                                               graph.nodes[k]["log_index"]))
    lanes: dict[tuple[str, str], int] = {}
    for k in sorted(nodes, key=lambda k: (k.lifecycle, graph.nodes[k]["block"])):
        lanes.setdefault((k.lifecycle, k.id), len(lanes))
    lifecycles = sorted({k.lifecycle for k in nodes})
    pos = {k: (float(i), -float(lanes[(k.lifecycle, k.id)])) for i, k in enumerate(nodes)}
    width = max(6.0, 1.6 * len(nodes))
    height = max(3.0, 1.3 * len(lanes) + 1)
    fig, ax = plt.subplots(figsize=(min(width, 40.0), min(height, 30.0)))
    try:
        colour = {lc: _COLOURS[i % len(_COLOURS)] for i, lc in enumerate(lifecycles)}
        version_edges = [(u, v) for u, v, d in graph.edges(data=True) if d["kind"] == "version"]
        input_edges = [(u, v) for u, v, d in graph.edges(data=True) if d["kind"] != "version"]
        nx.draw_networkx_edges(graph, pos, edgelist=version_edges, ax=ax, edge_color="#999999",
                               arrows=True, arrowsize=12, node_size=2200)
        nx.draw_networkx_edges(graph, pos, edgelist=input_edges, ax=ax, edge_color="#c44e52",
                               arrows=True, arrowsize=14, width=1.8, node_size=2200,
                               connectionstyle="arc3,rad=0.1")
        nx.draw_networkx_nodes(graph, pos, ax=ax, node_size=2200,
                               node_color=[colour[k.lifecycle] for k in nodes], nodelist=nodes,
                               alpha=0.85)
        labels = {k: f"{graph.nodes[k].get('name') or k.id[:8]}\nv{k.version} "
                     f"{graph.nodes[k]['state']}" for k in nodes}
        nx.draw_networkx_labels(graph, pos, labels=labels, ax=ax, font_size=7)
        for lc in lifecycles:
            ax.plot([], [], "o", color=colour[lc], label=lc)
        ax.legend(loc="upper right", fontsize=8, frameon=False)
        ax.set_title(title or "lineage (red: inputs, grey: versions)", fontsize=10)
        ax.margins(0.15)
        ax.axis("off")
        atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110,
                                                  bbox_inches="tight"))
    finally:
        plt.close(fig)
    return path
