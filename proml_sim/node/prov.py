"""W3C PROV export of lineage, with the ``prov`` package.

Mapping (namespaces: ``proml`` vocabulary, ``art`` artefact versions, ``file`` blobs by SHA-256,
``tx`` transactions, ``acct`` accounts, ``org`` trust domains):

* **entities**: each artefact version (``art:<Lifecycle>_<id>_v<n>``; type
  ``proml:ArtefactVersion`` and ``proml:<Lifecycle>``; name, version, state, evidence digest,
  locator) and each file a record names (``file:<sha256>``; name, size);
* **activities**: each transition or registration (``tx:<tx hash>``; start = end = block time;
  transaction, block, transition, lifecycle; the record's parameters as JSON);
* **agents**: each account (``acct:<address>``, type ``proml:Account``) and each trust domain
  (``org:<domain>``, ``prov:Organization``), joined by ``actedOnBehalfOf``;
* relations: ``used`` (input versions, the previous version, input files), ``wasGeneratedBy``
  (the new version and its output files), ``wasAssociatedWith`` (the actor; approvers with
  ``prov:role`` ``proml:approver``), ``wasDerivedFrom`` (inputs; the previous version as a
  ``prov:Revision``), ``wasAttributedTo`` (the actor), ``hadMember`` (version -> its output
  files).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from proml_sim.errors import NodeError
from proml_sim.node.evidence import EvidenceSource
from proml_sim.node.lineage import Lineage, VersionKey
from proml_sim.node.service import ArtefactRef
from proml_sim.node.verify import verification_scope

FORMATS = ("prov-json", "prov-n")
Attrs = dict[Any, Any]
VOCAB = "urn:proml:vocab#"


def _time(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def export_prov(source: EvidenceSource, ref: str | bytes | ArtefactRef | None = None,
                fmt: str = "prov-json") -> str:
    """The PROV document of ``ref`` (its latest version and its ancestors) or, ``ref=None``,
    of every artefact in ``source``, as PROV-JSON or PROV-N text."""
    if fmt not in FORMATS:
        raise NodeError(f"unknown PROV format {fmt!r}; use one of {', '.join(FORMATS)}")
    try:
        from prov.model import PROV, Namespace, ProvDocument
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise NodeError("PROV export needs the prov package: pip install 'prov>=2.0,<3'"
                        ) from exc
    lin = Lineage(source)
    scope = (lin.ordered(lin.graph.nodes) if ref is None
             else verification_scope(lin, lin.key(ref)))
    cid = source.chain_id
    doc = ProvDocument()
    proml = doc.add_namespace(Namespace("proml", VOCAB))
    art = doc.add_namespace(Namespace("art", f"urn:proml:{cid}:artefact:"))
    filens = doc.add_namespace(Namespace("file", "urn:proml:sha256:"))
    txns = doc.add_namespace(Namespace("tx", f"urn:proml:{cid}:tx:"))
    acct = doc.add_namespace(Namespace("acct", f"urn:proml:{cid}:account:"))
    org = doc.add_namespace(Namespace("org", "urn:proml:domain:"))

    def vid(k: VersionKey) -> Any:
        return art[f"{k.lifecycle}_{k.id}_v{k.version}"]

    agents: dict[str, Any] = {}
    orgs: dict[str, Any] = {}
    delegations: set[tuple[str, str]] = set()
    files: dict[str, Any] = {}

    def agent(address: str, domain: str | None) -> Any:
        if address not in agents:
            info: Attrs = {"prov:type": proml["Account"], "prov:label": address}
            agents[address] = doc.agent(acct[address], info)
        if domain:
            if domain not in orgs:
                about: Attrs = {"prov:type": PROV["Organization"], "prov:label": domain}
                orgs[domain] = doc.agent(org[quote(domain, safe="")], about)
            if (address, domain) not in delegations:
                delegations.add((address, domain))
                doc.actedOnBehalfOf(agents[address], orgs[domain])
        return agents[address]

    def file_entity(sha: str, name: str, size: int) -> Any:
        if sha not in files:
            info: Attrs = {"prov:type": proml["File"], "prov:label": name, "proml:name": name,
                           "proml:size": size, "proml:sha256": sha}
            files[sha] = doc.entity(filens[sha], info)
        return files[sha]

    for key in scope:
        a = lin.graph.nodes[key]
        name = lin.name(key)
        attrs: Attrs = {
            "prov:type": proml["ArtefactVersion"], "proml:lifecycle": key.lifecycle,
            "proml:artefact": key.id, "proml:version": key.version, "proml:state": a["state"],
            "prov:label": f"{name or key.id} v{key.version} ({a['state']})",
        }
        if name:
            attrs["proml:name"] = name
        if a["evidence"]:
            attrs["proml:evidence"] = a["evidence"]
        if a["locator"]:
            attrs["proml:locator"] = a["locator"]
        typed: list[tuple[Any, Any]] = [*attrs.items(), ("prov:type", proml[key.lifecycle])]
        ent = doc.entity(vid(key), typed)
        t = _time(a["timestamp"])
        act_attrs: Attrs = {
            "prov:type": proml["Registration" if a["step"] == "register" else "Transition"],
            "prov:label": f"{key.lifecycle}.{a['step']} {name or key.id} v{key.version}",
            "proml:transition": a["step"], "proml:lifecycle": key.lifecycle,
            "proml:tx": a["tx"], "proml:block": a["block"],
        }
        rec = lin.records.get(key)
        if rec is not None and rec.params:
            act_attrs["proml:params"] = json.dumps(rec.params, sort_keys=True, default=str)
        if rec is not None and rec.code is not None:
            act_attrs["proml:code"] = rec.code.sha256
        act = doc.activity(txns[a["tx"]], t, t, act_attrs)
        actor = agent(a["actor"], a["domain"])
        doc.wasGeneratedBy(ent, act, t)
        doc.wasAttributedTo(ent, actor)
        approvers = {ap["approver"]: ap for ap in a["approvers"]}
        if a["actor"] not in approvers:
            as_actor: Attrs = {"prov:role": proml["actor"]}
            doc.wasAssociatedWith(act, actor, other_attributes=as_actor)
        for addr, ap in approvers.items():
            as_approver: Attrs = {"prov:role": proml["approver"], "proml:approval_tx": ap["tx"]}
            doc.wasAssociatedWith(act, agent(addr, ap["domain"]), other_attributes=as_approver)
        if key.version > 1:
            prev = VersionKey(key.lifecycle, key.id, key.version - 1)
            doc.used(act, vid(prev), t)
            revision: Attrs = {"prov:type": PROV["Revision"]}
            doc.wasDerivedFrom(ent, vid(prev), act, other_attributes=revision)
        for use in lin.uses.get(key, []):
            as_input: Attrs = {"prov:role": proml["input"]}
            doc.used(act, vid(use.input), t, other_attributes=as_input)
            doc.wasDerivedFrom(ent, vid(use.input), act)
        if rec is not None:
            for f in rec.outputs:
                fe = file_entity(f.sha256, f.name, f.size)
                doc.wasGeneratedBy(fe, act, t)
                doc.hadMember(ent, fe)
            for f in rec.input_files:
                doc.used(act, file_entity(f.sha256, f.name, f.size), t)
    if fmt == "prov-n":
        return str(doc.get_provn())
    return str(doc.serialize(format="json", indent=1))
