"""Proofs that a bundle's events are the chain's history, whole (the bundle's ``proofs.json``).

:func:`build_proofs` (run while bundling, on a node) collects, from the block of the involved
contracts' first event up to the head (the *checkpoint*):

* every block header's RLP, so the headers link by parent hash up to the checkpoint hash;
* for every block whose logs bloom may hold one of the contracts' lifecycle events (address
  and topic bloom bits), *every* receipt of the block (consensus encodings): they must rebuild
  the header's receipts root, so no receipt, and no log, can be left out or altered;
* for every event's transaction, Merkle-Patricia inclusion proofs of its receipt and of the
  transaction itself against its header's receipts and transactions roots (built with the
  ``trie`` package): a receipt holds neither the tx hash nor the signer, the transaction does.

:func:`check_proofs` (offline, from the bundle alone) re-derives the lifecycle events from the
proven receipts and compares them with the bundle's ``events.json``, naming the first
difference (an omitted, added, reordered or altered event), after checking that the headers
link, reach the pinned checkpoint, and that every bloom-matching block's receipts are present;
and that each contract's first event lies in the proven transaction that created it, whose init
code holds the IR fingerprint of the rules replayed (``rules``).
What a bloom cannot rule out is bundled; a block whose bloom has none of the contracts' bits
provably holds none of their logs, which is what makes omissions detectable.

Known limits: the contract addresses are the bundle's claims unless pinned
(``--expect-contract``); the chain id is bound by the transactions' signatures, but two chains
may share one (pin the checkpoint); the range starts at each contract's constructor
grant, not at a state proof that the contract did not exist before.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from proml_sim.chain.abi import EventCodec
from proml_sim.chain.client import event_from_args
from proml_sim.chain.proofs import (
    Header,
    block_receipt_rlps,
    block_transactions,
    bloom_may_hold,
    check_trie_proof,
    decode_header,
    decode_receipt_logs,
    header_rlp,
    header_rlps,
    receipts_root,
    trie_proof,
    tx_chain_id,
    tx_creation,
    tx_sender,
)
from proml_sim.chain.trie import keccak
from proml_sim.errors import ProofError
from proml_sim.ir import RoleGranted
from proml_sim.node.evidence import ChainEvent
from proml_sim.node.verify import Check

__all__ = ["GOVERNANCE_EVENTS_ABI", "LIFECYCLE_EVENTS_ABI", "PROOFS_FORMAT", "build_proofs",
           "check_extends", "check_proofs", "event_codec"]

PROOFS_FORMAT = 1


def _ev(name: str, *params: tuple[str, str, bool]) -> dict[str, Any]:
    return {"type": "event", "name": name, "anonymous": False,
            "inputs": [{"name": n, "type": t, "indexed": i} for n, t, i in params]}


#: the lifecycle events every generated contract declares (``codegen/vyper.py``; a test checks
#: this equals a compiled contract's ABI), so a verifier decodes logs without compiling
LIFECYCLE_EVENTS_ABI: list[dict[str, Any]] = [
    _ev("Registered", ("id", "bytes32", True), ("registrant", "address", True),
        ("salt", "bytes32", False), ("state", "uint8", False), ("digest", "bytes32", False),
        ("locator", "string", False), ("inputs", "bytes32[]", False)),
    _ev("Transitioned", ("id", "bytes32", True), ("transition", "uint8", True),
        ("actor", "address", True), ("source", "uint8", False), ("target", "uint8", False),
        ("version", "uint256", False), ("digest", "bytes32", False),
        ("locator", "string", False), ("inputs", "bytes32[]", False)),
    _ev("Approved", ("id", "bytes32", True), ("transition", "uint8", True),
        ("approver", "address", True), ("version", "uint256", False),
        ("digest", "bytes32", False), ("count", "uint256", False)),
    _ev("RoleGranted", ("role", "uint8", True), ("account", "address", True),
        ("sender", "address", True), ("domain", "bytes32", False)),
    _ev("RoleRevoked", ("role", "uint8", True), ("account", "address", True),
        ("sender", "address", True)),
]


#: the consortium governance events a lifecycle declaring a Consortium adds
#: (``codegen/vyper.py``; a test checks them against the compiled paper Model)
GOVERNANCE_EVENTS_ABI: list[dict[str, Any]] = [
    _ev("GovProposed", ("id", "uint256", True), ("kind", "uint8", False),
        ("domain", "bytes32", False), ("account", "address", False), ("roles", "uint256", False),
        ("proposer", "address", True), ("epoch", "uint256", False)),
    _ev("GovVoted", ("id", "uint256", True), ("domain", "bytes32", True),
        ("voter", "address", True), ("count", "uint256", False)),
    _ev("GovExecuted", ("id", "uint256", True), ("kind", "uint8", False),
        ("domain", "bytes32", False), ("account", "address", False), ("roles", "uint256", False),
        ("sender", "address", True)),
]


def event_codec() -> EventCodec:
    """A decoder of the lifecycle events (and of a consortium's governance events)."""
    return EventCodec(LIFECYCLE_EVENTS_ABI + GOVERNANCE_EVENTS_ABI)


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


# ---------------------------------------------------------------------------------------------
# building
# ---------------------------------------------------------------------------------------------
def build_proofs(backend: Any, contracts: Mapping[str, str], events: Sequence[ChainEvent]
                 ) -> dict[str, Any]:
    """The ``proofs.json`` of a bundle holding ``events`` of ``contracts``, up to the head."""
    head = backend.head()
    start = min((ce.block for ce in events), default=head.number)
    topics = list(event_codec().topics.values())
    addresses = list(contracts.values())
    headers: list[str] = []
    receipts: dict[str, list[str]] = {}
    by_block: dict[int, list[bytes]] = {}
    top = head
    for n, raw in enumerate(header_rlps(backend, start, head.number), start):
        h = top = decode_header(raw)
        headers.append(_hex(h.rlp))
        if bloom_may_hold(h.bloom, addresses, topics):
            rs = block_receipt_rlps(backend, h)
            by_block[n] = rs
            receipts[str(n)] = [_hex(r) for r in rs]
    wanted: dict[int, set[int]] = {}
    for ce in events:
        wanted.setdefault(ce.block, set()).add(ce.tx_index)
    inclusion = {}
    transactions = {}
    for block, indices in sorted(wanted.items()):
        found = by_block.get(block)
        if found is None:
            raise ProofError(f"block {block} holds a lifecycle event but its logs bloom does "
                             "not show it; the chain store is damaged: run `proml doctor`")
        inclusion[str(block)] = {"tx_indices": sorted(indices),
                                 "nodes": [_hex(n) for n in trie_proof(found, indices)]}
        txs = block_transactions(backend, decode_header(bytes.fromhex(headers[block - start][2:])))
        transactions[str(block)] = {"tx_indices": sorted(indices),
                                    "nodes": [_hex(n) for n in trie_proof(txs, indices)]}
    return {"format": PROOFS_FORMAT, "start": start,
            # the last header fetched (on a node that reorganised meanwhile, not `head`)
            "checkpoint": {"number": top.number, "hash": _hex(top.hash)},
            "headers": headers, "receipts": receipts, "inclusion": inclusion,
            "transactions": transactions}


# ---------------------------------------------------------------------------------------------
# checking
# ---------------------------------------------------------------------------------------------
def _bytes(v: Any, where: str) -> bytes:
    if not isinstance(v, str) or not v.startswith("0x"):
        raise ProofError(f"proofs.json: {where} must be a 0x hex string")
    try:
        return bytes.fromhex(v[2:])
    except ValueError:
        raise ProofError(f"proofs.json: {where} is not valid hex") from None


def _headers(proofs: Mapping[str, Any]) -> list[Header]:
    raw = proofs.get("headers")
    if not isinstance(raw, list) or not raw:
        raise ProofError("proofs.json holds no block headers")
    start = proofs.get("start")
    if type(start) is not int:  # (true == 1 in Python: it passed as block 1)
        raise ProofError(f"proofs.json: start must be a block number, not {start!r:.40}")
    out = [decode_header(_bytes(h, f"headers[{i}]")) for i, h in enumerate(raw)]
    if out[0].number != start:
        raise ProofError(f"the first header is block {out[0].number}, proofs.json says the "
                         f"range starts at {start}")
    for prev, h in itertools.pairwise(out):
        if h.number != prev.number + 1:
            raise ProofError(f"header of block {prev.number + 1} is missing (block "
                             f"{prev.number} is followed by {h.number}): a header was dropped")
        if h.parent_hash != prev.hash:
            raise ProofError(f"block {h.number}'s parent hash is not block {prev.number}'s "
                             "hash: a header was forged or comes from another chain (a fork)")
    return out


def check_proofs(proofs: Mapping[str, Any] | None, events: Sequence[ChainEvent],
                 contracts: Mapping[str, str], *, checkpoint: bytes | None = None,
                 chain_id: int | None = None,
                 fingerprints: Mapping[str, str] | None = None,
                 deploy_codes: Mapping[str, bytes] | None = None) -> list[Check]:
    """Check a bundle's proofs against its ``events`` (in its order) and ``contracts``; the
    checks ``verify`` reports first.  ``checkpoint``: the block hash the verifier trusts;
    ``chain_id``: the chain id the events' transactions must be signed for;
    ``fingerprints``: per lifecycle, the IR fingerprint of the rules the verifier replays,
    which the contract's proven deployment must hold (:func:`_check_rules`); ``deploy_codes``:
    per lifecycle, the deployment code the verifier generates and compiles from those rules,
    with which that deployment's init code must begin."""
    if proofs is None:
        return [Check("chain proofs", checkpoint is None,
                      "NOT CHECKED: the bundle carries no proofs (made by an older proml-sim "
                      "or from a chain without headers), so nothing shows its events are the "
                      "chain's, or all of them; rebuild it with `proml bundle`")]
    checks: list[Check] = []
    try:
        if type(proofs.get("format")) is not int or proofs["format"] != PROOFS_FORMAT:
            raise ProofError(f"proofs.json has format {proofs.get('format')!r}, this "
                             f"proml-sim reads {PROOFS_FORMAT}")
        headers = _headers(proofs)
    except ProofError as exc:
        return [Check("header chain", False, str(exc))]
    first, last = headers[0], headers[-1]
    checks.append(Check("header chain", True, f"{len(headers)} headers, blocks {first.number}.."
                        f"{last.number}, each linked to its parent by hash"))
    claimed = proofs.get("checkpoint")  # what `proml bundle` printed: it must be the last header
    if not (isinstance(claimed, dict) and type(claimed.get("number")) is int
            and claimed.get("number") == last.number
            and str(claimed.get("hash", "")).lower() == _hex(last.hash)):
        checks.append(Check("proved head", False, f"proofs.json says it proves up to "
                            f"{repr(claimed)[:120]}, "
                            f"but its headers end at block {last.number} ({_hex(last.hash)}): "
                            "the file was edited; rebuild it with `proml bundle`"))
    by_number = {h.number: h for h in headers}
    checks.append(_check_pin(headers, checkpoint, events))
    # headers past the pin link to it but nothing anchors them: what they hold is not proven
    anchored = [h for h in headers if h.number <= next(
        (x.number for x in headers if x.hash == checkpoint), last.number)]
    try:
        receipts = _check_receipts(proofs, by_number)
        checks.append(Check("receipts", True, f"the receipts of {len(receipts)} block(s) "
                            "rebuild their headers' receipts roots"))
        checks.append(_check_inclusion(proofs, by_number, receipts, events))
        check, proven = _check_transactions(proofs, by_number, events, chain_id)
        checks.append(check)
        if fingerprints is not None:
            checks.append(_check_rules(proven, events, contracts, fingerprints,
                                       deploy_codes or {}))
        checks.append(_check_complete(anchored, receipts, contracts))
        checks.append(_check_events(headers, receipts, contracts, events))
    except ProofError as exc:
        checks.append(Check(_name_of(exc), False, str(exc)))
    return checks


def _name_of(exc: ProofError) -> str:
    return getattr(exc, "check", "chain proofs")


def _fail(check: str, msg: str) -> ProofError:
    exc = ProofError(msg)
    exc.check = check  # type: ignore[attr-defined]
    return exc


def _check_pin(headers: list[Header], pin: bytes | None, events: Sequence[ChainEvent]) -> Check:
    last = headers[-1]
    if pin is None:
        return Check("checkpoint", True, f"NOT CHECKED: no checkpoint pinned, so nothing ties "
                     f"these headers (ending at block {last.number}, {_hex(last.hash)}) to the "
                     "chain you trust; pass --checkpoint HASH (`proml checkpoint` on a node you "
                     "trust prints it)")
    at = next((h for h in headers if h.hash == pin), None)
    if at is None:
        return Check("checkpoint", False, f"the header chain does not reach the pinned "
                     f"checkpoint {_hex(pin)}: it ends at block {last.number} ({_hex(last.hash)}); "
                     f"if your checkpoint is after block {last.number}, the bundle was made "
                     "before it: ask for one made since (`proml bundle` proves up to the "
                     "node's head); else it is cut short, from a fork or from another chain")
    late = [ce for ce in events if ce.block > at.number]
    if late:
        return Check("checkpoint", False, f"the pinned checkpoint is block {at.number}, but "
                     f"{len(late)} event(s) lie after it (from block {late[0].block}): they are "
                     "not anchored; pin a later checkpoint")
    after = (f"; the history is proven up to it (the state shown is as of block {at.number}): "
             f"the {last.number - at.number} header(s) after it (blocks {at.number + 1}.."
             f"{last.number}) are not anchored, nothing in them is proven or ruled out"
             if last.number > at.number else "")
    return Check("checkpoint", True, f"the header chain reaches the pinned checkpoint: block "
                 f"{at.number} {_hex(pin)}{after}")


def _block_key(key: Any) -> int | None:
    """A block number written as proofs.json writes it (ASCII decimal, no leading zero), or
    None: "020" or another script's digits would alias a block."""
    if isinstance(key, str) and key.isascii() and key.isdigit() and str(int(key)) == key:
        return int(key)
    return None


def _proof_entry(item: Any) -> bool:
    """An inclusion or transaction proof entry: distinct non-negative tx indices and nodes."""
    return (isinstance(item, dict) and isinstance(item.get("nodes"), list)
            and isinstance(item.get("tx_indices"), list)
            and all(type(i) is int and i >= 0 for i in item["tx_indices"])
            and len(set(item["tx_indices"])) == len(item["tx_indices"]))


def _check_receipts(proofs: Mapping[str, Any], by_number: Mapping[int, Header]
                    ) -> dict[int, list[bytes]]:
    raw = proofs.get("receipts")
    if not isinstance(raw, dict):
        raise _fail("receipts", "proofs.json: 'receipts' must be an object {block: [receipt]}")
    out: dict[int, list[bytes]] = {}
    for key, items in raw.items():
        n = _block_key(key)
        if n is None or not isinstance(items, list):
            raise _fail("receipts", f"proofs.json: receipts entry {key!r} is malformed")
        h = by_number.get(n)
        if h is None:
            raise _fail("receipts", f"receipts of block {n}, which is outside the proven "
                        "header range")
        rs = [_bytes(r, f"receipts.{n}[{i}]") for i, r in enumerate(items)]
        if receipts_root(rs) != h.receipt_root:
            raise _fail("receipts", f"block {n}'s receipts do not rebuild its receipts root "
                        f"{_hex(h.receipt_root)}: a receipt was altered, dropped or added")
        out[n] = rs
    return out


def _check_inclusion(proofs: Mapping[str, Any], by_number: Mapping[int, Header],
                     receipts: Mapping[int, list[bytes]], events: Sequence[ChainEvent]
                     ) -> Check:
    raw = proofs.get("inclusion")
    if not isinstance(raw, dict):
        raise _fail("inclusion", "proofs.json: 'inclusion' must be an object {block: proof}")
    count = 0
    for key, item in raw.items():
        n = _block_key(key)
        if n is None or not _proof_entry(item):
            raise _fail("inclusion", f"proofs.json: inclusion.{key} is malformed")
        h = by_number.get(n)
        if h is None:
            raise _fail("inclusion", f"the inclusion proof of block {n} is outside the header "
                        "range")
        nodes = [_bytes(p, f"inclusion.{n}.nodes") for p in item["nodes"]]
        try:
            proven = check_trie_proof(h.receipt_root, item["tx_indices"], nodes)
        except ProofError as exc:
            raise _fail("inclusion", f"block {n}: {exc}") from None
        rs = receipts.get(n, [])
        for idx, value in proven.items():
            if idx >= len(rs) or rs[idx] != value:
                raise _fail("inclusion", f"block {n} receipt {idx}: the inclusion proof proves "
                            "a receipt the block's receipts do not hold")
        count += len(proven)
    for ce in events:
        item = raw.get(str(ce.block))
        if item is None or ce.tx_index not in item["tx_indices"]:
            raise _fail("inclusion", f"{ce.kind} at block {ce.block} log {ce.log_index} has no "
                        "receipt inclusion proof")
    return Check("inclusion", True, f"{count} receipt inclusion proof(s) reach their headers' "
                 "receipts roots")


def _check_transactions(proofs: Mapping[str, Any], by_number: Mapping[int, Header],
                        events: Sequence[ChainEvent], chain_id: int | None
                        ) -> tuple[Check, dict[tuple[int, int], bytes]]:
    """Each event's transaction, proven under its header's transactions root, hashes to the
    event's tx hash and is signed by the event's sender (receipts hold neither); the check
    and the proven transactions by (block, index)."""
    raw = proofs.get("transactions")
    if not isinstance(raw, dict):
        raise _fail("transactions", "proofs.json: 'transactions' must be an object "
                    "{block: proof}")
    proven: dict[tuple[int, int], bytes] = {}
    for key, item in raw.items():
        n = _block_key(key)
        if n is None or not _proof_entry(item):
            raise _fail("transactions", f"proofs.json: transactions.{key} is malformed")
        h = by_number.get(n)
        if h is None:
            raise _fail("transactions", f"the transaction proof of block {n} is outside the "
                        "header range")
        nodes = [_bytes(p, f"transactions.{n}.nodes") for p in item["nodes"]]
        try:
            got = check_trie_proof(h.tx_root, item["tx_indices"], nodes, what="transaction")
        except ProofError as exc:
            raise _fail("transactions", f"block {n}: {exc}") from None
        proven.update({(n, i): tx for i, tx in got.items()})
    senders: dict[bytes, str] = {}
    for ce in events:
        tx = proven.get((ce.block, ce.tx_index))
        where = f"{ce.kind} at block {ce.block} log {ce.log_index}"
        if tx is None:
            raise _fail("transactions", f"{where} has no transaction inclusion proof")
        if keccak(tx) != ce.tx_hash:
            raise _fail("transactions", f"{where}: its tx hash 0x{ce.tx_hash.hex()} is not the "
                        f"proven transaction's 0x{keccak(tx).hex()} (altered)")
        if tx not in senders:
            try:
                senders[tx] = tx_sender(tx)
                signed_for = tx_chain_id(tx)
            except ProofError as exc:
                raise _fail("transactions", f"{where}: {exc}") from None
            if chain_id is not None and signed_for != chain_id:
                raise _fail("transactions", f"{where}: its transaction is signed for chain id "
                            f"{signed_for}, not {chain_id} (another chain's history)")
        if senders[tx].lower() != ce.sender.lower():
            raise _fail("transactions", f"{where}: its sender {ce.sender} is not the proven "
                        f"transaction's signer {senders[tx]} (altered)")
    bound = f", signed for chain id {chain_id}" if chain_id is not None else ""
    return Check("transactions", True, f"{len(senders)} transaction(s) proven under their "
                 f"headers' transactions roots: every event's tx hash and signer are the "
                 f"chain's{bound}"), proven


def _check_rules(proven: Mapping[tuple[int, int], bytes], events: Sequence[ChainEvent],
                 contracts: Mapping[str, str], fingerprints: Mapping[str, str],
                 deploy_codes: Mapping[str, bytes]) -> Check:
    """The rules replayed are the ones each contract was deployed with: its first event (the
    constructor's grant) lies in a proven transaction that created the contract's address
    (sender and nonce), and that init code holds ``PUSH32 <IR fingerprint>`` of the bundle's
    IR.  A forger cannot make the genuine contract's code hold the fingerprint of other rules
    (a SHA-256 preimage), so renamed states or steps in ``ir/*.json`` fail here."""
    done = []
    for lc, fp in sorted(fingerprints.items()):
        addr = contracts.get(lc, "")
        first = next((ce for ce in events if ce.lifecycle == lc), None)
        if first is None:
            continue  # no event of it: nothing of it is replayed
        tx = proven.get((first.block, first.tx_index))
        # (its sender is the proven signer: the transactions check compared them)
        made = tx_creation(tx, first.sender) if tx is not None else None
        if made is None or made[0].lower() != addr.lower():
            raise _fail("rules", f"the first {lc} event (block {first.block}) is not in the "
                        f"transaction that deployed {addr}, so nothing shows which rules that "
                        "contract enforces; rebuild the bundle with `proml bundle` (it starts "
                        "at each contract's deployment)")
        if b"\x7f" + bytes.fromhex(fp) not in made[1]:
            raise _fail("rules", f"the {lc} contract {addr} was deployed (block {first.block}) "
                        f"from code that does not hold the IR fingerprint {fp[:16]} of the "
                        f"rules the bundle gives (ir/{lc}.json): those rules were altered or "
                        "are another lifecycle's; get the IR the contract was generated from")
        code = deploy_codes.get(lc)
        if code is not None and not made[1].startswith(code):
            # the fingerprint is a constant of the code: the code may still add a backdoor
            raise _fail("rules", f"the {lc} contract {addr} was deployed (block {first.block}) "
                        "from code that states the rules' IR fingerprint but is not the code "
                        f"generated and compiled from them (ir/{lc}.json): it may enforce other "
                        "rules than it states; do not trust its history (or it was compiled by "
                        "another Vyper version than this proml-sim's)")
        done.append(f"{lc} (block {first.block}{', its code' if code is not None else ''})")
    return Check("rules", True, "each contract's proven deployment holds the IR fingerprint of "
                 "the rules replayed (and is the code generated and compiled from them, where "
                 f"said): {', '.join(done) or 'no lifecycle events'}")


def _check_complete(headers: list[Header], receipts: Mapping[int, list[bytes]],
                    contracts: Mapping[str, str]) -> Check:
    topics = list(event_codec().topics.values())
    addresses = list(contracts.values())
    n_match = 0
    for h in headers:
        if bloom_may_hold(h.bloom, addresses, topics):
            n_match += 1
            if h.number not in receipts:
                raise _fail("completeness", f"block {h.number}'s logs bloom may hold the "
                            "contracts' events but the bundle omits its receipts: its events "
                            "could have been left out")
    return Check("completeness", True, f"all {n_match} block(s) whose logs bloom may hold the "
                 f"contracts' events carry every receipt; the other {len(headers) - n_match} "
                 "provably hold none")


def _proven_events(headers: list[Header], receipts: Mapping[int, list[bytes]],
                   contracts: Mapping[str, str]) -> list[tuple[str, int, int, int, int, Any]]:
    """(lifecycle, block, log index, tx index, timestamp, event) of every lifecycle event the
    proven receipts hold, in chain order."""
    codec = event_codec()
    lc_of = {a.lower(): lc for lc, a in contracts.items()}
    times = {h.number: h.timestamp for h in headers}
    out = []
    for n in sorted(receipts):
        log_index = 0
        for tx_index, raw in enumerate(receipts[n]):
            _ok, logs = decode_receipt_logs(raw)
            for lg in logs:
                lc = lc_of.get(lg.address)
                if lc is not None and codec.knows(lg.topics):
                    try:
                        name, args = codec.decode(lg.topics, lg.data)
                        ev = event_from_args(name, args)
                    except Exception as exc:  # a log of the contract we cannot decode
                        raise _fail("events", f"block {n} log {log_index} of {lc} does not "
                                    f"decode as a lifecycle event ({exc})") from None
                    out.append((lc, n, log_index, tx_index, times[n], ev))
                log_index += 1
    return out


def _diff(a: Any, b: Any) -> str:
    if type(a) is not type(b):
        return f"it is a {type(b).__name__} on chain"
    names = [f.name for f in fields(a) if getattr(a, f.name) != getattr(b, f.name)]
    return f"field(s) {', '.join(names)} differ from the chain's"


def _check_events(headers: list[Header], receipts: Mapping[int, list[bytes]],
                  contracts: Mapping[str, str], events: Sequence[ChainEvent]) -> Check:
    proven = _proven_events(headers, receipts, contracts)
    positions = [ce.position for ce in events]
    for i, (a, b) in enumerate(itertools.pairwise(positions)):
        if b <= a:
            raise _fail("events", f"events.json is not in chain order: event [{i + 1}] (block "
                        f"{b[0]} log {b[1]}) comes after block {a[0]} log {a[1]} (events "
                        "reordered)")
    first_block = headers[0].number
    for ce in events:
        if ce.block < first_block:
            raise _fail("events", f"{ce.kind} at block {ce.block} lies before the proven range "
                        f"(from block {first_block}): the range was cut short")
    for lc, addr in contracts.items():
        mine = [p for p in proven if p[0] == lc]
        ev = mine[0][5] if mine else None
        if not (isinstance(ev, RoleGranted) and ev.role == 0 and ev.account == ev.sender):
            raise _fail("events", f"the proven range (from block {first_block}) does not start "
                        f"with {lc}'s creation ({addr}'s constructor grants the admin role): "
                        "earlier events are not covered (range cut short)")
    have = {ce.position: ce for ce in events}
    want = {(p[1], p[2]): p for p in proven}
    for pos, (lc, n, li, ti, ts, ev) in want.items():
        found = have.get(pos)
        if found is None:
            raise _fail("events", f"event omitted: {lc} {type(ev).__name__} at block {n} log "
                        f"{li} is in the proven receipts but not in events.json")
        ce = found
        if ce.lifecycle != lc or ce.address.lower() != contracts[lc].lower():
            raise _fail("events", f"event at block {n} log {li} is attributed to "
                        f"{ce.lifecycle} ({ce.address}), the chain's is {lc}'s "
                        f"({contracts[lc]})")
        if ce.event != ev:
            raise _fail("events", f"event altered: events.json's {ce.kind} at block {n} log "
                        f"{li}: {_diff(ce.event, ev)}")
        if ce.tx_index != ti or ce.timestamp != ts:
            raise _fail("events", f"event at block {n} log {li}: its tx index or block time "
                        "differs from the proven block's")
    for pos, bundled in have.items():
        if pos not in want:
            raise _fail("events", f"event not on chain: events.json's {bundled.lifecycle} "
                        f"{bundled.kind} at block {pos[0]} log {pos[1]} is in no proven "
                        "receipt of the contract (forged, or spliced from another contract)")
    return Check("events", True, f"all {len(events)} events are exactly the lifecycle events "
                 "of the proven receipts, in chain order, none omitted")


def check_extends(backend: Any, old_hash: bytes) -> tuple[int, bytes]:
    """Prove the chain's current head extends the block ``old_hash`` (an old checkpoint):
    walk the headers back from the head by parent hash; returns (old number, head hash).
    ``ProofError`` when the old checkpoint is not an ancestor (history rewritten, a reorg past
    it, or another chain)."""
    from proml_sim.chain.rpc import BATCH

    head = backend.head()
    h = decode_header(header_rlp(backend, head.number))
    if h.hash != head.hash:
        raise ProofError(f"the head header does not hash to the head hash {_hex(head.hash)}")
    while True:
        if h.hash == old_hash:
            return h.number, head.hash
        if h.number == 0:
            raise ProofError(f"the current head (block {head.number}, {_hex(head.hash)}) does "
                             f"not extend the checkpoint {_hex(old_hash)}: no ancestor has "
                             "that hash (history rewritten, a reorg past it, or another chain)")
        # the parents, a batch at a time (a node is asked for them together), newest first
        lo = max(0, h.number - BATCH)
        for raw in reversed(list(header_rlps(backend, lo, h.number - 1))):
            parent = decode_header(raw)
            if parent.hash != h.parent_hash:
                raise ProofError(f"block {h.number}'s parent hash is not block "
                                 f"{parent.number}'s hash: the chain's headers do not link")
            h = parent
            if h.hash == old_hash or h.number == 0:
                break
