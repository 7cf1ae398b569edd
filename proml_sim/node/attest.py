"""Attestations others can read: in-toto Statement v1 in DSSE envelopes (``proml export
--format in-toto``), checked against the chain by ``proml verify --attestation``.

One statement per transition (a version of an artefact): its subjects are the step's output
files by SHA-256 (the provenance record itself when the step produced no file; and, with
``--model-dir``, the model directory named by its OpenSSF model-signing root digest, so that a
model signed with ``model-signing`` and its ProML history name the same thing); its predicate
(:data:`PREDICATE_TYPE`) holds the lifecycle, IR fingerprint, chain id, contract, transaction,
block, actor, trust domain, approvers and inputs.  A training step (a step whose record names
code, input artefacts or input files) also gets a SLSA Provenance v1 statement whose resolved
dependencies are the input datasets (by their record digest), input files and the code (by file
digest).

Envelopes follow DSSE (payload type ``application/vnd.in-toto+json``), signed by the node's
key (the actor's, so a node exports the transitions it fired; others are listed as skipped):
the signature is secp256k1 ECDSA over SHA-256 of the DSSE pre-authentication encoding,
``r || s || v`` (65 bytes, base64); ``keyid`` is the signer's Ethereum address, which a
verifier recovers from the signature and compares with the chain's actor.  Output: one
envelope per line (``.intoto.jsonl``, as SLSA tooling reads them).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import coincurve
from eth_utils.address import to_checksum_address

from proml_sim.chain.trie import keccak
from proml_sim.errors import NodeError
from proml_sim.fsutil import parse_json
from proml_sim.node.evidence import EvidenceSource, LiveSource
from proml_sim.node.lineage import Lineage, VersionKey
from proml_sim.node.verify import verification_scope

__all__ = ["PAYLOAD_TYPE", "PREDICATE_TYPE", "SLSA_PREDICATE_TYPE", "STATEMENT_TYPE",
           "dsse_pae", "export_in_toto", "model_dir_subject", "open_envelope", "sign_envelope",
           "statements", "verify_attestation"]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://proml-sim.dev/attestation/transition/v1"
SLSA_PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://proml-sim.dev/lifecycle-step/v1"


def dsse_pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding (what is signed)."""
    t = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def _address_of(public: coincurve.PublicKey) -> str:
    return str(to_checksum_address(keccak(public.format(compressed=False)[1:])[12:]))


def sign_envelope(statement: dict[str, Any], private_key: bytes) -> dict[str, Any]:
    """A DSSE envelope of ``statement`` signed with a secp256k1 key (see the module doc)."""
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    key = coincurve.PrivateKey(private_key)
    sig = key.sign_recoverable(dsse_pae(PAYLOAD_TYPE, payload), hasher=_sha256)
    return {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": _address_of(key.public_key),
                            "sig": base64.b64encode(sig).decode()}]}


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def open_envelope(env: Any) -> tuple[str, dict[str, Any]]:
    """(signer address, statement) of a DSSE envelope whose one signature recovers to its
    keyid; ``NodeError`` naming what is wrong otherwise."""
    try:
        if env.get("payloadType") != PAYLOAD_TYPE:
            raise ValueError(f"payloadType is {env.get('payloadType')!r}, not {PAYLOAD_TYPE}")
        payload = base64.b64decode(env["payload"], validate=True)
        (sig_obj,) = env["signatures"]
        sig = base64.b64decode(sig_obj["sig"], validate=True)
        public = coincurve.PublicKey.from_signature_and_message(
            sig, dsse_pae(PAYLOAD_TYPE, payload), hasher=_sha256)
        statement = parse_json(payload)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NodeError(f"not a ProML DSSE envelope ({exc}); export one with `proml export "
                        "--format in-toto`") from None
    signer = _address_of(public)
    if signer.lower() != str(sig_obj.get("keyid", "")).lower():
        raise NodeError(f"the envelope's signature was made by {signer}, not by its keyid "
                        f"{sig_obj.get('keyid')}: the statement or signature was altered")
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise NodeError(f"the envelope's payload is not an in-toto Statement v1 "
                        f"({STATEMENT_TYPE})")
    return signer, statement


def model_dir_subject(path: str | Path) -> dict[str, Any]:
    """The in-toto subject OpenSSF ``model-signing`` gives a model directory: its name and
    the SHA-256 over the per-file digests of its manifest (the library computes both)."""
    try:
        from model_signing import hashing
        from model_signing._signing.signing import Payload
    except ImportError as exc:
        raise NodeError(f"--model-dir needs the model-signing package ({exc}); install it "
                        "with `pip install 'proml-sim[attest]'`") from None
    p = Path(path)
    if not p.is_dir():
        raise NodeError(f"--model-dir {p}: not a directory")
    manifest = hashing.Config().hash(p)  # type: ignore[no-untyped-call]
    subject = Payload(manifest).statement.pb.subject[0]
    return {"name": subject.name, "digest": {"sha256": subject.digest["sha256"]},
            "files": [[d.identifier, d.digest.digest_hex]
                      for d in manifest.resource_descriptors()]}


def _scope(lin: Lineage, ref: str | None) -> list[VersionKey]:
    if ref is None:
        return lin.ordered(lin.graph.nodes)
    return verification_scope(lin, lin.key(ref))


def statements(source: EvidenceSource, ref: str | None = None, *,
               model_dirs: Sequence[dict[str, Any]] = ()) -> list[tuple[VersionKey, str,
                                                                        dict[str, Any]]]:
    """(version, actor, statement) of every transition in ``ref``'s lineage (or on the chain):
    the ProML statement, and a SLSA one after it for a training step."""
    lin = Lineage(source)
    return _derive(source, lin, _scope(lin, ref), model_dirs)


def _derive(source: EvidenceSource, lin: Lineage, keys: Iterable[VersionKey],
            model_dirs: Sequence[dict[str, Any]]) -> list[tuple[VersionKey, str, dict[str, Any]]]:
    out = []
    for key in keys:
        a = lin.node_json(key)
        rec = lin.records.get(key)
        subjects: list[dict[str, Any]] = [{"name": f.name, "digest": {"sha256": f.sha256}}
                                          for f in (rec.outputs if rec else ())]
        out_digests = {f.sha256 for f in (rec.outputs if rec else ())}
        signed_models = []
        for md in model_dirs:
            if md["files"] and {d for _, d in md["files"]} <= out_digests:
                subjects.append({"name": md["name"], "digest": md["digest"]})
                signed_models.append({"name": md["name"], "sha256": md["digest"]["sha256"],
                                      "files": md["files"]})
        if not subjects and a["evidence"]:
            subjects = [{"name": f"proml-record:{lin.label(key)}",
                         "digest": {"sha256": a["evidence"][2:]}}]
        if not subjects:
            continue  # no digest to name: nothing an attestation could be about
        inputs = [{"lifecycle": u.input.lifecycle, "id": u.input.id,
                   "version": u.input.version,
                   "evidence": lin.graph.nodes[u.input].get("evidence")}
                  for u in lin.uses.get(key, [])]
        predicate = {
            "lifecycle": key.lifecycle, "irFingerprint": source.irs[key.lifecycle].fingerprint(),
            "chainId": source.chain_id, "contract": source.contracts[key.lifecycle],
            "artefact": {"id": key.id, "name": a["name"], "version": key.version},
            "step": a["step"], "state": a["state"], "tx": a["tx"], "block": a["block"],
            "logIndex": lin.graph.nodes[key]["log_index"], "time": a["time"],
            "actor": a["actor"], "domain": a["domain"], "evidence": a["evidence"],
            "approvers": [{"approver": ap["approver"], "domain": ap["domain"],
                           "block": ap["block"], "tx": ap["tx"]} for ap in a["approvers"]],
            "inputs": inputs,
        }
        if signed_models:  # how each model-signing root digest is made from output digests
            predicate["modelSigning"] = signed_models
        out.append((key, a["actor"], {"_type": STATEMENT_TYPE, "subject": subjects,
                                      "predicateType": PREDICATE_TYPE, "predicate": predicate}))
        if rec is not None and (rec.code is not None or rec.inputs or rec.input_files):
            out.append((key, a["actor"], _slsa(subjects, predicate, rec)))
    return out


def _slsa(subjects: list[dict[str, Any]], p: dict[str, Any], rec: Any) -> dict[str, Any]:
    deps = [{"uri": f"proml:{i.lifecycle}/{i.artefact}@v{i.version}",
             "digest": {"sha256": i.evidence},
             "annotations": {"role": "input-artefact", "lifecycle": i.lifecycle}}
            for i in rec.inputs]
    deps += [{"name": f.name, "digest": {"sha256": f.sha256},
              "annotations": {"role": "input-file"}} for f in rec.input_files]
    if rec.code is not None:
        deps.append({"name": rec.code.name, "digest": {"sha256": rec.code.sha256},
                     "annotations": {"role": "code"}})
    return {"_type": STATEMENT_TYPE, "subject": subjects, "predicateType": SLSA_PREDICATE_TYPE,
            "predicate": {
                "buildDefinition": {
                    "buildType": BUILD_TYPE,
                    "externalParameters": {"lifecycle": p["lifecycle"], "step": p["step"],
                                           "artefact": p["artefact"], "params": rec.params,
                                           "modelSigning": p.get("modelSigning", [])},
                    "internalParameters": {"environment": rec.environment},
                    "resolvedDependencies": deps},
                "runDetails": {
                    "builder": {"id": f"https://proml-sim.dev/node/{p['actor']}"},
                    "metadata": {"invocationId": p["tx"], "finishedOn": p["time"]}}}}


def export_in_toto(source: LiveSource, ref: str | None = None, *,
                   model_dirs: Iterable[str | Path] = ()) -> tuple[list[dict[str, Any]],
                                                                   list[str]]:
    """(DSSE envelopes of this node's transitions, labels of the skipped ones fired by other
    actors).  Unlocks the node's key (it may ask for the passphrase); a transition signed by
    a key this node retired (``proml key rotate``) is signed with that key, the retired
    keystore unlocked with the node's passphrase (one that does not open with it is skipped,
    and said)."""
    from proml_sim.errors import WrongPassphrase
    from proml_sim.node.keys import open_retired, retired_key_files

    mds = [model_dir_subject(d) for d in model_dirs]
    node = source.node
    retired = {old.lower(): f for f, old in retired_key_files(node.home) if old is not None}
    keys: dict[str, bytes | None] = {}
    envs, skipped = [], []
    for key, actor, st in statements(source, ref, model_dirs=mds):
        label = f"{key.lifecycle} {key.id[:10]}.. v{key.version} ({actor}"
        who = actor.lower()
        if who not in keys and who == node.address.lower():
            keys[who] = node.key.private_key()
        elif who not in keys and who in retired:
            try:
                keys[who] = open_retired(retired[who], node.key.same_passphrase())
            except WrongPassphrase:
                keys[who] = None
        if (private := keys.get(who)) is not None:
            envs.append(sign_envelope(st, private))
        elif who in retired:
            skipped.append(f"{label}: this node's retired key, which does not open with the "
                           "passphrase given)")
        else:
            skipped.append(label + ")")
    return envs, sorted(set(skipped))


def verify_attestation(source: EvidenceSource, path: str | Path) -> dict[str, Any]:
    """Check each envelope of ``path`` (JSON lines, or one JSON envelope) against the chain:
    the signature recovers to the chain's actor, and the predicate's chain id, contract, IR
    fingerprint, transaction, block, version, evidence and subjects are the chain's."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise NodeError(f"cannot read the attestation {path}: {exc}") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    try:
        envs = [parse_json(ln) for ln in lines] if len(lines) > 1 else [parse_json(text)]
    except ValueError as exc:
        raise NodeError(f"{path} is not JSON (nor JSON lines) ({exc})") from None
    lin = Lineage(source)
    # what the chain says each transition's statements are (the exporter's own derivation)
    derived = {(st["predicateType"], key.lifecycle, lin.graph.nodes[key]["tx"]): (key, st)
               for key, _actor, st in _derive(source, lin, lin.ordered(lin.graph.nodes), ())}
    out: list[str] = []
    ok = True
    for i, env in enumerate(envs):
        where = f"[{i}]"
        try:
            signer, st = open_envelope(env)
            problems = _check_statement(source, lin, derived, signer, st)
        except NodeError as exc:
            problems = [str(exc)]
            st = {}
        kind = st.get("predicateType", "?")
        label = f"{where} {kind if isinstance(kind, str) else _json_text(kind)} for " + (
            _lifecycle_of(st))
        if problems:
            ok = False
            out += [f"FAIL  {label}: {p}" for p in problems]
        else:
            out.append(f"ok    {label}: signed by the chain's actor {signer}; matches the chain")
    out.append(f"{'PASSED' if ok else 'FAILED'}: {len(envs)} attestation(s)")
    return {"ok": ok, "count": len(envs), "lines": out}


def _at(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]...``, None where a step is not an object or lacks the key."""
    for k in path:
        obj = obj.get(k) if isinstance(obj, dict) else None
    return obj


def _json_text(v: Any) -> str:
    return json.dumps(v, sort_keys=True)[:120]


def _lifecycle_of(st: dict[str, Any]) -> str:
    lc = (_at(st, "predicate", "lifecycle")
          or _at(st, "predicate", "buildDefinition", "externalParameters", "lifecycle"))
    return lc if isinstance(lc, str) else "?"


def _differences(claimed: Any, chain: Any, at: str = "") -> list[str]:
    """The paths where ``claimed`` is not ``chain`` as JSON (types included: ``true`` is not
    ``1``, ``1.0`` is not ``1``), down to the first field of an object that differs."""
    if isinstance(claimed, dict) and isinstance(chain, dict):
        out = []
        for k in sorted(set(claimed) | set(chain)):
            if k not in chain:
                out.append(f"{at}{k} is not a field ProML states")
            elif k not in claimed:
                out.append(f"{at}{k} is missing (the chain's is {_json_text(chain[k])})")
            else:
                out += _differences(claimed[k], chain[k], f"{at}{k}.")
        return out
    if json.dumps(claimed, sort_keys=True) != json.dumps(chain, sort_keys=True):
        return [f"{at.rstrip('.')} is {_json_text(claimed)}, the chain's is {_json_text(chain)}"]
    return []


def _check_statement(source: EvidenceSource, lin: Lineage,
                     derived: dict[tuple[str, str, str], tuple[VersionKey, dict[str, Any]]],
                     signer: str, st: dict[str, Any]) -> list[str]:
    """The statement is the one the chain gives for its transaction (every predicate field,
    compared as JSON), signed by that transition's actor, about subjects the step's record
    names (or model-signing roots made of them)."""
    kind = st.get("predicateType")
    if kind not in (PREDICATE_TYPE, SLSA_PREDICATE_TYPE):
        return [f"predicate type {_json_text(kind)} is not one ProML issues"]
    p = st.get("predicate")
    if not isinstance(p, dict):
        return ["the predicate is not a JSON object"]
    slsa = kind == SLSA_PREDICATE_TYPE
    lc = _lifecycle_of(st)
    tx = _at(p, "runDetails", "metadata", "invocationId") if slsa else p.get("tx")
    if not isinstance(tx, str):
        return [f"the predicate names no transaction (a string): {_json_text(tx)}"]
    found = derived.get((kind, lc, tx))
    if found is None:
        other = next((v[0] for k, v in derived.items() if k[1:] == (lc, tx)), None)
        if other is None:
            return [f"no {lc} transition in transaction {tx} on this chain"]
        why = _unreadable_record(source, lin, other, lin.node_json(other)["digest"])
        if why:
            return [f"the statement cannot be checked: {why}"]
        return [f"the chain's {lc} transition in transaction {tx} has no statement of type "
                f"{kind} (a SLSA one is made for a step with code, inputs or input files)"]
    key, want = found
    a = lin.node_json(key)
    problems = []
    if a["actor"].lower() != signer.lower():
        problems.append(f"signed by {signer}, but the chain's actor is {a['actor']}")
    missing = _unreadable_record(source, lin, key, a["digest"])
    models, problem = _model_roots(p, slsa, {f.sha256 for f in lin.records[key].outputs}
                                   if key in lin.records else set())
    problems += problem
    claimed, chain = _without_models(p, slsa), _without_models(want["predicate"], slsa)
    # the name is proven by the registration's record, inputs, code and parameters by the
    # step's: where this verifier cannot read one, such a field is unchecked, not forged
    first = lin.versions(key)[0]
    unread = missing or _unreadable_record(source, lin, first, lin.node_json(first)["digest"])
    unchecked = False
    for d in _differences(claimed, chain):
        if unread and d.startswith(_FROM_RECORDS):
            unchecked = True
        else:
            problems.append(d)
    if unchecked:
        problems.append(f"the statement cannot be checked whole: {unread}")
    subjects = st.get("subject")
    if not isinstance(subjects, list) or not subjects:
        return [*problems, "the statement names no subject (in-toto needs at least one)"]
    allowed = {_at(s, "digest", "sha256") for s in want["subject"]} | models
    if a["evidence"]:  # the step's record itself (what a step without outputs names)
        allowed.add(a["evidence"][2:])
    for s in subjects:
        d = _at(s, "digest", "sha256")
        if not isinstance(s, dict) or not isinstance(d, str) or not isinstance(
                s.get("name"), str):
            problems.append(f"subject {_json_text(s)} is not {{name, digest: {{sha256}}}}")
        elif d in allowed:
            continue
        elif missing:  # no record to compare with: say so, not that the subject is forged
            problems.append(f"subject {s['name']!r} (sha256 {d}) cannot be checked: "
                            f"{missing}")
        else:
            problems.append(f"subject {s['name']!r} (sha256 {d}) is not an output the "
                            "chain's record of that step names")
    return problems


#: predicate fields read from off-chain records (the rest are the chain's own)
_FROM_RECORDS = ("artefact.name ", "inputs", "buildDefinition.")


def _without_models(p: dict[str, Any], slsa: bool) -> dict[str, Any]:
    """The predicate without its model-signing entries (the exporter adds them for a model
    directory it was given; :func:`_model_roots` checks them against the outputs)."""
    q = {k: v for k, v in p.items() if k != "modelSigning"}
    ext = _at(q, "buildDefinition", "externalParameters")
    if slsa and isinstance(ext, dict):
        q["buildDefinition"] = {**q["buildDefinition"], "externalParameters": {
            k: v for k, v in ext.items() if k != "modelSigning"}}
    return q


def _model_roots(p: dict[str, Any], slsa: bool, outputs: set[str]) -> tuple[set[str], list[str]]:
    """The model-signing roots the predicate states, each SHA-256 over its files' digests, all
    outputs of the step (what a subject may name besides the outputs), and the problems."""
    models = (_at(p, "buildDefinition", "externalParameters", "modelSigning") if slsa
              else p.get("modelSigning")) or []
    if not isinstance(models, list):
        return set(), ["modelSigning is not a list"]
    roots, problems = set(), []
    for m in models:
        try:
            files = [bytes.fromhex(d) for _, d in m["files"]]
            root = hashlib.sha256(b"".join(files)).hexdigest()
        except (KeyError, TypeError, ValueError):
            problems.append("a modelSigning entry is malformed")
            continue
        if root != m.get("sha256"):
            problems.append(f"model {m.get('name')!r}: its files' digests hash to {root}, "
                            f"not to the stated root {m.get('sha256')}")
        elif not {f.hex() for f in files} <= outputs:
            problems.append(f"model {m.get('name')!r}: some of its files are not outputs "
                            "the chain's record names")
        else:
            roots.add(root)
    return roots, problems


def _unreadable_record(source: EvidenceSource, lin: Lineage, key: VersionKey,
                       digest: str | None) -> str | None:
    """Why the record behind this step's on-chain ``digest`` cannot be read here (the source's
    own sentence: missing, or corrupted, and the fix); None when there is nothing to read."""
    if digest is None:
        return None
    ok, why = source.check_blob(digest)
    return None if ok else f"the record of {lin.label(key)}: blob {digest} {why}"
