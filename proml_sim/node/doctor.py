"""``proml doctor``: check a node home's data, and repair it from replicas.

Checks (each problem is one :class:`Problem`: the file, the block or blob, what is wrong, the
fix):

* the chain (a chain directory of :mod:`proml_sim.chain.journal`): ``chain.json`` first (each
  entry's type, the genesis its parameters give against its ``genesis_hash``, its chain id
  against the state DB's), then every block-log record
  (checksum, hash chain, agreement with the state DB's index), SQLite's own integrity check of
  the state DB, and the state DB against a replay of the log into a scratch copy (every block
  must replay to its logged hash; then every row of every table, py-evm's state, the block
  index, receipts and logs, must be the replay's: a flipped byte in a log's data, which
  SQLite's check cannot see, is named);
* the home's contracts: code at each address ``node.json`` records (on an embedded chain read
  from the state DB without opening the chain; on an RPC chain, with its identity, from the
  node);
* the chain's deployment files (``deployments.json``, ``lifecycles.json``; joining nodes read
  them): readable, and holding this node's lifecycles at its ``node.json``'s addresses;
* the node's key file (:meth:`~proml_sim.node.keys.NodeKey.inspect`; unlocked only with a
  passphrase given, never asked for: :func:`check_key`) and the retired keys;
* the off-chain store: every blob re-hashed against its digest (and its ``objects`` a
  directory, the chain's ``lock`` a file: either of the wrong kind stops reads or writes);
* stray temporary files of atomic writes (``.<name>.*.tmp``, the store's ``.incoming-*``) in the
  home, the chain directory and the store.

``--repair``: a damaged block log is rebuilt from the state DB (byte for byte: each record at
the byte range and CRC the DB recorded) or, when the DB is damaged too, restored from a
replica's or peer's copy (``--from DIR``, checked block by block against the hash chain and our
intact blocks); the state DB is rebuilt from the log by replay; a ``chain.json`` entry the state
DB vouches for is written again (:func:`~proml_sim.chain.journal.chain_json_damage`); damaged
blobs are restored from
the store's replicas (hash-checked); damaged deployment files are written again with every
entry still readable plus this node's own, and an entry only node.json can have right (a broken
checksum or no contract at the address; a spec that does not load) takes node.json's (another
conflicting address and a damaged key are left to a person); stray temporary files are moved into
``<home>/quarantine/``.  Nothing is deleted: every replaced file
is renamed aside (``*.damaged-<time>``) or quarantined.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from proml_sim.errors import HomeError, JournalError, NodeError
from proml_sim.fsutil import parse_json
from proml_sim.node.store import QUARANTINE


@dataclass(frozen=True)
class Problem:
    """One thing wrong, with where it is and how to fix it."""

    kind: str  # config | chain-log | state-db | chain | chain-json | chain-lock | deployments
    #            | key | blob | store | temp-file | sent | sent-file | code
    path: str
    what: str
    fix: str

    def line(self) -> str:
        return f"{self.path}: {self.what}; fix: {self.fix}"


@dataclass
class Report:
    """What :func:`check` found (and :func:`repair` did)."""

    home: str
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"home": self.home, "healthy": self.healthy,
                "problems": [asdict(p) for p in self.problems], "notes": self.notes,
                "repaired": self.repaired}


def _config(home: Path) -> dict[str, Any]:
    try:
        config = parse_json((home / "node.json").read_text())
    except FileNotFoundError:
        raise HomeError(f"{home} is not a node home (no node.json); pass --home") from None
    except (OSError, ValueError) as exc:
        raise HomeError(f"cannot read {home / 'node.json'}: {exc}; restore it from a copy"
                        ) from None
    if not isinstance(config, dict):
        raise HomeError(f"{home / 'node.json'} is not a node configuration")
    return config


def _checked_config(home: Path) -> tuple[dict[str, Any], Problem | None, str | None]:
    """``node.json`` as the checks and repairs read it, what is wrong with it, and a note:
    unreadable (then the chain directory where `init --new-chain` puts it is used, if there,
    and the note says so), or malformed (then only its entries of the right types).
    HomeError if there is none."""
    from proml_sim.node.service import config_problem

    path = home / "node.json"
    try:
        config = _config(home)
    except HomeError as exc:
        if not path.exists():  # not a home; one there but unreadable is damage found
            raise
        problem = Problem("config", str(path), _about(path, str(exc).split("; ")[0]),
                          "restore node.json from a copy")
        if not (home / "chain" / "chain.json").is_file():
            return {}, problem, None
        return ({"chain": {"kind": "journal", "path": "chain"}}, problem,
                f"node.json unreadable: checked the chain at {home / 'chain'}, where "
                "`proml init --new-chain` puts it")
    what = config_problem(home, config)
    if what is None:
        return config, None, None
    return usable_config(config), Problem(
        "config", str(path), what, "upgrade proml-sim" if "upgrade" in what else
        "restore node.json from a copy (or correct that entry)"), None


def usable_config(config: dict[str, Any]) -> dict[str, Any]:
    """The entries of a malformed ``node.json`` of the types the other checks read (the rest
    dropped), so one bad entry does not stop the checks of the chain, key and blobs."""
    kinds: dict[str, type] = {"chain": dict, "contracts": dict, "lifecycles": dict,
                              "address": str, "replicas": list}
    out: dict[str, Any] = {k: v for k, v in config.items()
                           if isinstance(v, kinds.get(k, object))}
    out["replicas"] = [r for r in out.get("replicas", []) if isinstance(r, str | dict)]
    return out


def chain_dir(home: Path, config: dict[str, Any]) -> Path | None:
    """The home's chain directory (None for an RPC chain)."""
    chain = config.get("chain") or {}
    if chain.get("kind") != "journal" or not isinstance(chain.get("path"), str):
        return None
    return home / str(chain["path"])  # relative to the home (an absolute one stays absolute)


# ---------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------
#: the kinds of damage to a chain directory (the checks that read through it skip on them)
_CHAIN_KINDS = ("chain", "chain-json", "state-db", "chain-log")


def check_chain(d: Path, report: Report, *, replay: bool = True,
                chain_id: int | None = None) -> None:
    """Problems of the chain directory ``d``, appended to ``report``; ``chain_id``: the home's
    node.json's, a witness when chain.json and the state DB disagree on it."""
    from proml_sim.chain.blockstore import (
        DB_NAME,
        FILE_HEADER_SIZE,
        LOG_NAME,
        StateDB,
        read_log,
        scan_log,
    )
    from proml_sim.chain.journal import CHAIN_JSON_FIX, _read_meta, chain_json_damage, genesis_of

    fix_log = ("proml doctor --repair (rebuilds it from the state DB), or with --from DIR (a "
               "replica's or peer's copy of this chain)")
    fix_db = "proml doctor --repair (rebuilds the state DB from the block log)"
    meta_path = d / "chain.json"
    fix_meta = "restore chain.json from a replica of this chain"
    try:
        meta = _read_meta(d, check_genesis=False)
    except JournalError as exc:
        report.problems.append(Problem("chain", str(meta_path),
                                       _about(meta_path, str(exc).split("; ")[0]), fix_meta))
        return
    if meta["format"] == 1 or meta.get("import_pending"):
        report.notes.append(f"{d}: a format-1 chain; it is imported into the new store when "
                            "it is next opened")
        return
    # a damaged entry of chain.json would make the log and the DB look like another chain's:
    # the entries the state DB vouches for are named (and mended by --repair), the rest of the
    # checks use the values they should have
    try:
        whats, mended = chain_json_damage(d, chain_id)
        meta = {**meta, **mended}
        if "genesis_hash" not in mended:
            _read_meta(d)  # a malformed hash the DB cannot vouch for
        given = genesis_of(meta)
    except JournalError as exc:
        report.problems.append(Problem("chain", str(meta_path),
                                       _about(meta_path, str(exc).split("; ")[0]), fix_meta))
        return
    report.problems += [Problem("chain-json", str(meta_path), w, CHAIN_JSON_FIX) for w in whats]
    genesis = bytes.fromhex(meta["genesis_hash"])
    if given != genesis:  # a parameter entry is damaged: judge nothing against it
        report.problems.append(Problem(
            "chain", str(meta_path), "its genesis parameters (chain_id, gas_limit, "
            f"genesis_timestamp, funded) give genesis 0x{given.hex()}, not its genesis_hash "
            f"0x{genesis.hex()}: one of them is damaged", fix_meta))
        return
    db: StateDB | None = None
    committed: list[tuple[int, bytes, int, int]] = []
    db_path = d / DB_NAME
    try:
        db = StateDB(db_path, readonly=True)
        rows = db.q("PRAGMA integrity_check")
        if [tuple(r) for r in rows] != [("ok",)]:
            raise JournalError(f"state DB {db_path}: SQLite integrity check failed "
                               f"({rows[0][0]})")
        if db.meta.get("genesis_hash") != genesis:
            raise JournalError(f"state DB {db_path} belongs to another chain")
        if str(db.meta.get("chain_id")) != str(meta["chain_id"]):  # no replay can agree
            report.problems.append(Problem(
                "chain", str(meta_path), f"its chain_id {meta['chain_id']!r} is not the state "
                f"DB's {db.meta.get('chain_id')!r} (node.json's chain.chain_id says which the "
                "home expects)", fix_meta))
            replay = False
        committed = db.committed()
    except (JournalError, sqlite3.Error) as exc:
        report.problems.append(Problem("state-db", str(db_path), str(exc).split("; ")[0],
                                       fix_db))
        db = None
    lock = d / "lock"
    if (lock.exists() or lock.is_symlink()) and not lock.is_file():
        report.problems.append(Problem(
            "chain-lock", str(lock), "is not a regular file: no writer can take the chain's lock, "
            "so every write is refused", "move it aside; the next writer creates the lock"))
    log_path = d / LOG_NAME
    try:
        data = read_log(log_path)
    except JournalError as exc:
        report.problems.append(Problem("chain-log", str(log_path), str(exc).split("; ")[0],
                                       "fix its permissions"))
        return
    if data is None:
        report.problems.append(Problem("chain-log", str(log_path), "the block log is missing",
                                       fix_log))
        return
    scan = scan_log(log_path, data, genesis, committed, all_txs=True)
    for line in scan.damage:
        report.problems.append(Problem("chain-log", str(log_path),
                                       line.removeprefix(f"{log_path}: "), fix_log))
    if scan.torn:
        report.notes.append(f"{log_path}: an incomplete final record ({scan.torn} bytes, a crash "
                            "mid-append) will be moved to a side file by the next write")
    head = committed[-1][0] if committed else 0
    ahead = [r for r in scan.records if r.number > head]
    if ahead and db is not None:
        report.notes.append(f"{log_path}: blocks {ahead[0].number}..{ahead[-1].number} are "
                            "logged but not yet in the state DB; the next write replays them")
    if whats and replay:
        report.notes.append(f"{d}: the state DB was not compared with a replay of the log: "
                            "that runs once chain.json is repaired")
        return
    if db is None or not replay or scan.damage:
        return
    _check_replay(d, db, committed[-1][3] if committed else FILE_HEADER_SIZE, report)
    db.close()


#: the state DB's tables, each with its primary key and how a row is named in a problem
_TABLES: tuple[tuple[str, str, Callable[[tuple[Any, ...]], str]], ...] = (
    ("meta", "key", lambda k: f"meta entry {k[0]!r}"),
    ("blocks", "number", lambda k: f"block {k[0]}"),
    ("receipts", "tx_hash", lambda k: f"the receipt of tx 0x{bytes(k[0]).hex()}"),
    ("logs", "block, log_index", lambda k: f"log {k[1]} of block {k[0]}"),
    ("kv", "key", lambda k: f"state entry 0x{bytes(k[0]).hex()[:16]}.."),
)


def _check_replay(d: Path, db: Any, head_end: int, report: Report) -> None:
    """Replay the log up to the DB's head into a scratch copy of the chain (the commit path
    every writer takes) and compare the two state DBs row for row, table by table: py-evm's
    state, the block index, the receipts and the logs all must be what the log gives."""
    import tempfile
    from urllib.parse import quote

    from proml_sim.chain.journal import replay_into

    fix_db = "proml doctor --repair (rebuilds the state DB from the block log)"
    with tempfile.TemporaryDirectory(prefix="proml-doctor-") as tmp:
        try:
            chain = replay_into(d, tmp, log_end=head_end)
        except JournalError as exc:
            what = str(exc).replace(tmp, str(d)).split("; ")[0]
            report.problems.append(Problem("chain-log", str(d / "chain.log"),
                                           what.removeprefix(f"{d / 'chain.log'}: "),
                                           "restore the log with --repair --from DIR"))
            return
        except (OSError, sqlite3.Error) as exc:  # the scratch space, not the home
            raise NodeError(f"cannot replay the chain into a scratch copy in {tmp} ({exc}); "
                            "point TMPDIR at a writable directory with room for a copy of "
                            f"{d / 'chain.log'}") from None
        chain.close()
        try:
            db.conn.execute("ATTACH DATABASE ? AS replay",
                            (f"file:{quote(str(Path(tmp) / 'state.sqlite'))}?mode=ro",))
            try:
                for table, key, name in _TABLES:
                    ours = db.conn.execute(f"SELECT {key} FROM (SELECT * FROM main.{table} "
                                           f"EXCEPT SELECT * FROM replay.{table})").fetchall()
                    theirs = db.conn.execute(f"SELECT {key} FROM (SELECT * FROM replay.{table} "
                                             f"EXCEPT SELECT * FROM main.{table})").fetchall()
                    bad = sorted({tuple(r) for r in ours} | {tuple(r) for r in theirs})
                    if bad:
                        report.problems.append(Problem(
                            "state-db", str(db.path),
                            f"{len(bad)} row(s) of its {table} table differ from a replay of "
                            f"the block log (first: {name(bad[0])})", fix_db))
            finally:
                db.conn.execute("DETACH DATABASE replay")
        except sqlite3.Error as exc:
            report.problems.append(Problem("state-db", str(db.path),
                                           f"cannot be compared with a replay ({exc})", fix_db))


def check_store(home: Path, config: dict[str, Any], report: Report) -> list[str]:
    """Re-hash every blob of the home's store; returns the digests of damaged blobs."""
    from proml_sim.node.store import BlobStore, sha256_file

    store = BlobStore(home / "store", _replicas(home, config))
    bad: list[str] = []
    if store.objects.exists() and not store.objects.is_dir():
        report.problems.append(Problem(
            "store", str(store.objects), "is not a directory: no blob can be stored or read",
            "move it aside (keep it if it holds anything); the blobs the replicas hold come "
            "back as they are read"))
    if not store.objects.is_dir():
        return bad
    for sub in sorted(store.objects.iterdir()):
        if not sub.is_dir() or len(sub.name) != 2:
            continue
        for f in sorted(sub.iterdir()):
            if f.name.startswith("."):
                continue
            digest = sub.name + f.name
            try:
                got, _ = sha256_file(f)
            except OSError as exc:  # StoreError is one too
                report.problems.append(Problem("blob", str(f), f"blob {digest} cannot be read "
                                               f"({exc})", "fix its permissions"))
                continue
            if got != digest:
                bad.append(digest)
                report.problems.append(Problem(
                    "blob", str(f), f"blob {digest} is damaged (its bytes hash to {got})",
                    "proml doctor --repair (restores it from a replica of the store)"
                    if store.replicas else "add the original file again (`proml register` of "
                    "the same bytes) or configure a replica that has it"))
    return bad


def _about(path: Path, what: str) -> str:
    """``what`` (an error's first clause) without the path that the problem line names."""
    what = what.removeprefix(f"{path}: ")
    return what.replace(f"cannot read {path}: ", "cannot be read: ").replace(f"{path} ", "", 1)


def check_rpc_chain(home: Path, config: dict[str, Any], report: Report) -> None:
    """An RPC chain's node answers, is the chain the home was made for (chain id and genesis),
    and holds code at each of the home's contract addresses (a development node restarted
    without its state is a new chain: every command refused it, while doctor said healthy).
    Reads only."""
    from proml_sim.chain.rpc import RPCBackend
    from proml_sim.errors import EngineError
    from proml_sim.node.service import identity_mismatch

    chain = config.get("chain") or {}
    url = chain.get("url")
    if not isinstance(url, str):
        report.problems.append(Problem("chain", str(home / "node.json"), "its chain is an RPC "
                                       "endpoint without a url", "put the node's URL in "
                                       "chain.url of node.json"))
        return
    fix_new = ("point chain.url in node.json at the node of the home's chain (a development "
               "node keeps its chain across restarts only with its state saved, e.g. anvil "
               "--state FILE), or make a new home on this chain with `proml init`")
    try:
        backend = RPCBackend(url, drive=False)
        mismatch = identity_mismatch(chain, backend)
    except EngineError as exc:
        report.problems.append(Problem("chain", url, f"cannot be used ({exc})",
                                       "start the node, or point chain.url in node.json at it"))
        return
    if mismatch is not None:
        report.problems.append(Problem("chain", url, f"is another chain: {mismatch}", fix_new))
        return
    check_code(config, backend.code, url, report)


def check_sent(home: Path, config: dict[str, Any], cdir: Path | None, report: Report) -> None:
    """Every transaction the node's log says it mined (``sentlog``) is still on the chain: a
    reorganisation of an RPC network, or its node restarted without its state, drops it while
    the home's store keeps the record.  Reads only; skipped when the chain cannot be read."""
    from proml_sim.errors import EngineError, ProMLError
    from proml_sim.node import sentlog

    wrong = sentlog.not_a_log(home)
    if wrong is not None:
        report.problems.append(Problem(
            "sent-file", str(home / sentlog.SENT_LOG), f"{wrong}: the node appends the "
            "transactions it sends to its own regular file, so none is logged (nor watched)",
            "replace it with a regular file (the file a link names, copied, if it is this "
            "node's log), or move it aside: the next command starts a new log"))
        return
    damaged = ("config", "chain", "chain-log", "state-db", "chain-json")
    if not (home / sentlog.SENT_LOG).exists() or any(p.kind in damaged
                                                      for p in report.problems):
        return  # (a damaged chain is named already; its repair comes first)
    try:
        if cdir is None:
            from proml_sim.chain.rpc import RPCBackend

            url = str((config.get("chain") or {}).get("url"))
            lost = sentlog.dropped(home, RPCBackend(url, drive=False).receipt)
        else:
            from proml_sim.chain.blockstore import DB_NAME, StateDB

            db = StateDB(cdir / DB_NAME, readonly=True)
            try:
                lost = sentlog.dropped(home, db.receipt)
            finally:
                db.close()
    except (EngineError, ProMLError, OSError) as exc:
        report.notes.append(f"the sent log was not checked against the chain ({exc})")
        return
    where = str(home / sentlog.SENT_LOG)
    for n, entry, what in lost:
        fix = ("run again the command that sent it, which records the step anew: "
               f"`{entry.get('command') or 'proml ...'}` (its record and blobs are still in the "
               "store; `proml status` shows what the chain now holds), then `proml doctor "
               "--repair` marks this entry handled" if entry is not None
               else "nothing is lost if it is the last line (an append was interrupted); else "
               "restore the file from a backup")
        report.problems.append(Problem("sent", f"{where}:{n}", what, fix))


def check_code(config: dict[str, Any], code: Callable[[str], bytes], where: str,
               report: Report) -> None:
    """Each contract of ``node.json`` holds code on the chain (``code(address)`` reads it):
    every command refuses a home whose recorded address holds none.  A malformed address is
    left to the node.json check, which names it.  Reads only."""
    from proml_sim.chain.accounts import is_address
    from proml_sim.node.service import contracts_without_code

    contracts = config.get("contracts")
    wellformed = {lc: a for lc, a in (contracts.items() if isinstance(contracts, dict) else [])
                  if is_address(a)}
    for lc, address, exc in contracts_without_code(wellformed, code):
        if exc is not None:
            report.problems.append(Problem("deployments", where, f"cannot read {lc}'s code at "
                                           f"{address} ({exc})", f"fix contracts.{lc} in "
                                           "node.json"))
        else:
            report.problems.append(Problem(
                "deployments", where, f"holds no code at {lc}'s address {address} (node.json)",
                f"fix contracts.{lc} in node.json (`proml init --contracts FILE` of a member "
                "of this chain gives the addresses, as does the chain directory's "
                "deployments.json if it differs) or restore node.json from a copy"))
    check_contract_code(config, code, wellformed, report)


def check_contract_code(config: dict[str, Any], code: Callable[[str], bytes],
                        contracts: dict[str, str], report: Report) -> None:
    """Each lifecycle contract's code is the code generated and compiled from its class (what
    every command checks when it loads the lifecycle); a class that does not load is left to
    the commands, which name it.  Reads only."""
    from proml_sim.compiler import compile_artefact
    from proml_sim.errors import ProMLError
    from proml_sim.lifecycles import load_lifecycle
    from proml_sim.node.service import CODE_FIX, code_mismatch

    specs = config.get("lifecycles")
    for lc, spec in (specs.items() if isinstance(specs, dict) else []):
        if lc not in contracts or not isinstance(spec, str):
            continue
        try:
            compiled = compile_artefact(load_lifecycle(spec))
            problem = code_mismatch(lc, spec, contracts[lc], code(contracts[lc]), compiled)
        except (ProMLError, OSError):
            continue
        if problem is not None:
            report.problems.append(Problem("code", contracts[lc], problem, CODE_FIX))


def check_home_chain(home: Path, config: dict[str, Any], cdir: Path, report: Report) -> None:
    """The chain identity ``node.json`` records (chain id, genesis) is the chain directory's
    (every command refuses a home whose entry differs; doctor said healthy).  Checked only
    when the directory's own files agree (``chain.json`` against its state DB and block log,
    by :func:`check_chain`), so the entry is what differs.  Reads only."""
    from proml_sim.chain.journal import _read_meta

    chain = config.get("chain") or {}
    if "genesis" not in chain or any(p.kind in _CHAIN_KINDS
                                     for p in report.problems):
        return
    try:
        meta = _read_meta(cdir)
    except JournalError:
        return
    if meta["format"] == 1 or meta.get("import_pending"):
        return
    found = {"chain_id": meta.get("chain_id"), "genesis": "0x" + str(meta["genesis_hash"])}
    wrong = {k: v for k, v in found.items() if chain.get(k) != v}
    bad = [f"chain.{k} {chain.get(k)!r}, where the chain there has {v!r}"
           for k, v in wrong.items()]
    if bad:
        report.problems.append(Problem(
            "chain", str(home / "node.json"), f"records {'; '.join(bad)} (its block log and "
            f"state DB agree with its chain.json: the entry differs)",
            f"if {cdir} is this home's chain, set "
            f"{', '.join(f'chain.{k} to {v!r}' for k, v in wrong.items())} in node.json "
            "(or restore node.json from a copy); else point chain.path at the home's own "
            "chain directory"))


def check_home_code(config: dict[str, Any], cdir: Path, report: Report) -> None:
    """:func:`check_code` on the home's own chain directory, read through its state DB without
    opening the chain (no recovery, no lock).  Only when that chain is sound and is the home's
    (no problem named so far with the chain or node.json's record of it)."""
    from proml_sim.chain.journal import read_code

    if any(p.kind in _CHAIN_KINDS for p in report.problems):
        return
    try:
        with read_code(cdir) as reader:
            check_code(config, reader, str(cdir), report)
    except JournalError:
        return  # a format-1 chain (imported when opened), or a state DB check_chain names


def check_deployments(cdir: Path, config: dict[str, Any], report: Report) -> None:
    """The chain directory's record of its deployed lifecycles (``deployments.json``,
    ``lifecycles.json``): readable, and listing this node's own contracts at the addresses its
    ``node.json`` has (other nodes joining the chain read it)."""
    from proml_sim.node.service import DEPLOYMENTS, LIFECYCLE_SPECS, deployment_table

    fix = ("proml doctor --repair (writes it again with this node's lifecycles and every "
           "entry still readable; a damaged file is kept aside)")
    tables: dict[str, dict[str, str]] = {}
    for name in (DEPLOYMENTS, LIFECYCLE_SPECS):
        path = cdir / name
        if not path.exists() and name == LIFECYCLE_SPECS:
            tables[name] = {}
            continue
        try:
            tables[name] = deployment_table(path)
        except HomeError as exc:
            report.problems.append(Problem("deployments", str(path),
                                           _about(path, str(exc).split("; ")[0]), fix))
    for name, mine in ((DEPLOYMENTS, config.get("contracts")),
                       (LIFECYCLE_SPECS, config.get("lifecycles"))):
        if name not in tables or not isinstance(mine, dict):
            continue
        decided = _decided_conflicts(cdir, name, tables[name], mine)
        for lc, value in sorted(mine.items()):
            theirs = tables[name].get(lc)
            if theirs is None:
                report.problems.append(Problem(
                    "deployments", str(cdir / name), f"lacks {lc} (this node's node.json has "
                    f"{value}): nodes that join the chain will not see it", fix))
            elif lc in decided:
                report.problems.append(Problem(
                    "deployments", str(cdir / name), f"has {lc} as {theirs}, {decided[lc]}; "
                    f"this node's node.json has {value}", "proml doctor --repair (writes "
                    "node.json's entry there; the damaged file is kept aside)"))
            elif _differs(name, theirs, value):
                report.problems.append(Problem(
                    "deployments", str(cdir / name), f"has {lc} as {theirs}, this node's "
                    f"node.json as {value}", f"restore {name} from a replica of this chain if "
                    "node.json is right, or node.json from a copy if it is wrong"))


def _differs(name: str, theirs: Any, value: Any) -> bool:
    """A deployment file's entry is not node.json's: another value (an address in any case),
    or an address whose mixed case breaks its EIP-55 checksum (a joiner would refuse it)."""
    from proml_sim.chain.accounts import is_address
    from proml_sim.node.service import DEPLOYMENTS

    return str(theirs).lower() != str(value).lower() or (
        name == DEPLOYMENTS and not is_address(theirs))


def _decided_conflicts(cdir: Path, name: str, table: dict[str, str], mine: Any
                       ) -> dict[str, str]:
    """The entries of the deployment file ``name`` that differ from this node's node.json
    where only node.json's value can be right (an address with a broken EIP-55 checksum or no
    code at it, beside node.json's with code; a spec that does not load, beside node.json's
    that does): {lifecycle: why the file's value is wrong}.  Other conflicts are a person's."""
    from proml_sim.chain.accounts import is_address
    from proml_sim.chain.journal import read_code
    from proml_sim.errors import UnknownLifecycle
    from proml_sim.lifecycles import load_lifecycle
    from proml_sim.node.service import DEPLOYMENTS

    conflicts = {lc: (str(table[lc]), v) for lc, v in (mine or {}).items()
                 if isinstance(v, str) and lc in table and _differs(name, table[lc], v)}
    if not conflicts:
        return {}
    out: dict[str, str] = {}
    if name == DEPLOYMENTS:
        try:
            with read_code(cdir) as code:
                for lc, (theirs, value) in conflicts.items():
                    if not (is_address(value) and code(value)):
                        continue
                    if not is_address(theirs):
                        out[lc] = "not an address (or its EIP-55 checksum is broken)"
                    elif not code(theirs):
                        out[lc] = "where the chain holds no contract"
        except (JournalError, ValueError):
            return {}  # the chain cannot say: a person decides
        return out
    for lc, (theirs, value) in conflicts.items():
        try:
            load_lifecycle(value)
        except UnknownLifecycle:  # node.json's own spec must load to decide anything
            continue
        try:
            load_lifecycle(theirs)
        except UnknownLifecycle as exc:
            out[lc] = f"a spec that does not load ({str(exc).split('; ')[0]})"
    return out


def repair_deployments(cdir: Path, config: dict[str, Any]) -> list[str]:
    """Write the chain's deployment files again: every entry still readable, plus this node's
    own lifecycles where an entry is missing (a conflicting entry is left for a person to
    decide).  A damaged file is renamed aside; the writes are atomic, under the chain's lock."""
    from proml_sim.chain.journal import _aside_stamp, _set_aside, directory_lock
    from proml_sim.node.service import (
        DEPLOYMENTS,
        LIFECYCLE_SPECS,
        deployment_table,
        write_deployments,
    )

    with directory_lock(cdir):
        done: list[str] = []
        tables: dict[str, dict[str, str]] = {}
        for name, mine in ((DEPLOYMENTS, config.get("contracts")),
                           (LIFECYCLE_SPECS, config.get("lifecycles"))):
            path = cdir / name
            try:
                table = deployment_table(path) if path.exists() else {}
            except HomeError:
                aside = _set_aside(path, "damaged")
                done.append(f"moved the damaged {path} to {aside}")
                table = {}
            added = {lc: v for lc, v in (mine or {}).items()
                     if isinstance(v, str) and lc not in table}
            if added:
                done.append(f"{path}: added {', '.join(sorted(added))} from this node's "
                            "node.json (a node that deployed a lifecycle this one lacks adds "
                            "it back with its own `proml doctor --repair`)")
            decided = _decided_conflicts(cdir, name, table, mine)
            if decided:
                aside = path.with_name(f"{path.name}.damaged-{_aside_stamp(path, 'damaged')}")
                shutil.copyfile(path, aside)
                added |= {lc: (mine or {})[lc] for lc in decided}
                done.append(f"{path}: wrote node.json's {', '.join(sorted(decided))} over "
                            f"{'; '.join(f'{lc}: {why}' for lc, why in decided.items())} "
                            f"(the damaged file is kept as {aside})")
            tables[name] = {**table, **added}
        if done:  # a file intact and complete is never rewritten
            write_deployments(cdir, tables[DEPLOYMENTS], tables[LIFECYCLE_SPECS])
        return done


#: the fix of a damaged key file: a key is nowhere else
KEY_FIX = "restore the key file from your backup (`proml key import FILE`); a key cannot be rebuilt"


def check_key(home: Path, config: dict[str, Any], report: Report,
              passphrase: str | None = None) -> None:
    """The node's key file (:meth:`NodeKey.inspect`; with a ``passphrase``, also that the
    keystore opens to the node's key: its ciphertext, salt, MAC and iv), an interrupted
    rotation, and the retired keys in ``keys-retired/`` (:func:`check_retired_keys`)."""
    from proml_sim.node.keys import (
        KEYSTORE,
        NEXT_KEYSTORE,
        RETIRED,
        NodeKey,
        is_plain_key_file,
        retired_key_files,
    )

    address = config.get("address")
    if not isinstance(address, str):
        return
    retired = retired_key_files(home)
    mine = [f for f, old in retired if old is not None and old.lower() == address.lower()]
    if (home / RETIRED).exists() and not (home / RETIRED).is_dir():
        report.problems.append(Problem(
            "key", str(home / RETIRED), "is not a directory: a key rotation cannot keep the old "
            "key there, so it stops before its last steps", "move the file aside"))
    nxt = home / NEXT_KEYSTORE
    if nxt.exists():  # the rotation stopped between writing its new key and swapping files
        report.problems.append(Problem(
            "key", str(nxt), "is the new key of an interrupted key rotation (its chain steps "
            "or its file swap were not finished)", "run `proml key rotate` again: it resumes "
            "with this key (nothing else uses it)"))
    key = NodeKey(home, address)
    found = key.inspect()
    if found is not None and found.holds and not nxt.exists() and mine:
        # the files were swapped (node.json's key retired, the new one in place), node.json
        # not yet updated: the rotation's last step; the key file is the new key's
        report.problems.append(Problem(
            "key", str(home / "node.json"), f"still names {address}, whose key a rotation to "
            f"{found.holds} retired: the rotation was interrupted before its last step",
            "run `proml key rotate` again: it points node.json at the new key"))
        key, found = NodeKey(home, found.holds), None
    if found is None and key.kind == "keystore":
        if passphrase is None:
            report.notes.append(f"{KEYSTORE} was checked without unlocking it (its MAC needs "
                                "the passphrase): pass --passphrase-file FILE or set "
                                "$PROML_PASSPHRASE to check that it opens to this node's key")
        else:
            found = key.unlock_check(passphrase)
    if found is not None:
        fix = KEY_FIX
        if key.kind == "missing" and mine:  # an install killed between retiring and writing
            plain = is_plain_key_file(mine[-1])
            fix = (f"this node's key is in {mine[-1]}: `proml key import {mine[-1]}"
                   f"{' --plain' if plain else ''}` puts it back" + (
                       "" if plain else " (its passphrase is the node's: give it with "
                       "--new-passphrase-file or $PROML_NEW_PASSPHRASE)"))
        if found.holds:  # either file may be the damaged one: say both ways out
            fix = (f"if node.json's address was altered, set it to {found.holds} (the key's; "
                   f"the chain's events name the node's address); else {fix}")
        if found.passphrase:
            fix = ("check the passphrase (--passphrase-file, $PROML_PASSPHRASE); if it is "
                   f"right, {fix}")
        report.problems.append(Problem("key", str(key.path), _about(key.path, found.what), fix))
    check_retired_keys(home, retired, report, passphrase)


def check_retired_keys(home: Path, retired: list[tuple[Path, str | None]], report: Report,
                       passphrase: str | None) -> None:
    """Each file in ``keys-retired/`` (``retired``: with the address its name gives) against
    that address (its shape; with a ``passphrase``, that it opens to that key: one that does
    not is a note, it may have an earlier passphrase).  A retired key signs nothing
    now, but it is the only copy of the old key (a domain-admin seat stays with it until a
    pending rotation is executed)."""
    from proml_sim.node.keys import KEYSTORE, RETIRED, inspect_key_file, unlock_key_file

    fix = (f"restore it from your backup: the node signs with its {KEYSTORE}, but this is the "
           "only copy of the old key, which still holds any seat or role a pending rotation has "
           "not moved")
    for f, old in retired:
        if old is None or not f.is_file():
            report.problems.append(Problem(
                "key", str(f), "is not a retired key file (a file named "
                "UTC--<time>--<address>)", f"move it out of {home / RETIRED}: only `proml key` "
                "puts files there"))
            continue
        found = inspect_key_file(f, old)
        if found is None and passphrase is not None:
            found = unlock_key_file(f, old, passphrase)
            if found is not None and found.passphrase:  # another passphrase is no damage
                report.notes.append(f"{f} does not open with the passphrase given: it may "
                                    "have been written with an earlier one")
                continue
        if found is not None:
            report.problems.append(Problem("key", str(f), _about(f, found.what), fix))


def _replicas(home: Path, config: dict[str, Any]) -> list[Path]:
    """The replica store directories of ``node.json`` (paths, or ``{"kind": "dir", "path"}``
    entries; relative paths are relative to the home)."""
    out = []
    for r in config.get("replicas") or ():
        if isinstance(r, dict):
            if r.get("kind") != "dir" or not isinstance(r.get("path"), str):
                continue
            r = r["path"]
        if isinstance(r, str):
            out.append(home / r)  # an absolute r stays absolute
    return out


def stray_temp_files(home: Path, dirs: list[Path]) -> list[Path]:
    """Leftover temporary files of atomic writes (a crash between write and rename)."""
    out: list[Path] = []
    for d in dirs:
        if not d.is_dir():
            continue
        for f in sorted(d.iterdir()):
            if f.is_file() and ((f.name.startswith(".") and f.name.endswith(".tmp"))
                                or f.name.startswith(".incoming-")):
                out.append(f)
    return out


def _temp_dirs(home: Path, cdir: Path | None) -> list[Path]:
    dirs = [home, home / "store", home / "store" / "objects"]
    objects = home / "store" / "objects"
    if objects.is_dir():
        dirs += [p for p in sorted(objects.iterdir()) if p.is_dir()]
    if cdir is not None:
        dirs.append(cdir)
    return dirs


def check(home: str | Path, *, replay: bool = True, passphrase: str | None = None) -> Report:
    """Check the home's chain, blobs and temporary files (``passphrase``: also unlock the key
    files, see :func:`check_key`)."""
    home = Path(home)
    report = Report(str(home))
    config, problem, note = _checked_config(home)
    # damage found, like any other: named, and the rest still checked (every command
    # refuses this home; doctor said healthy)
    report.problems += [problem] if problem is not None else []
    report.notes += [note] if note is not None else []
    cdir = chain_dir(home, config)
    if "chain" not in config:
        report.notes.append("the chain was not checked: node.json names none")
    elif cdir is None:
        report.notes.append("the chain is an RPC endpoint: checked that its node is the home's "
                            "chain and holds its contracts; the node checks its own data")
        check_rpc_chain(home, config, report)
    else:
        recorded = (config.get("chain") or {}).get("chain_id")
        check_chain(cdir, report, replay=replay,
                    chain_id=recorded if isinstance(recorded, int) else None)
        check_home_chain(home, config, cdir, report)
        check_home_code(config, cdir, report)
    if cdir is not None and (cdir / "chain.json").exists():
        check_deployments(cdir, config, report)
    check_key(home, config, report, passphrase)
    check_sent(home, config, cdir, report)
    check_store(home, config, report)
    for f in stray_temp_files(home, _temp_dirs(home, cdir)):
        report.problems.append(Problem("temp-file", str(f), "a stray temporary file of an "
                                       "interrupted write", "proml doctor --repair (moves it "
                                       f"into {home / QUARANTINE})"))
    return report


# ---------------------------------------------------------------------------------------------
# repair
# ---------------------------------------------------------------------------------------------
def repair(home: str | Path, source: str | Path | None = None, *,
           passphrase: str | None = None) -> Report:
    """Repair what :func:`check` finds (see the module docstring); returns the report of a
    check made after the repair, listing what was done in ``repaired``."""
    try:
        return _repair(Path(home), source, passphrase)
    except OSError as exc:
        raise NodeError(f"cannot repair {home}: {exc.strerror or exc} ({exc.filename}); make "
                        "the home and its chain directory writable, then run it again") from None


def _repair(home: Path, source: str | Path | None, passphrase: str | None) -> Report:
    from proml_sim.chain.journal import rebuild_state_db, regenerate_log, restore_log
    from proml_sim.node.store import BlobStore

    config, _, _ = _checked_config(home)  # check() names a bad node.json; repair the rest
    before = check(home, replay=True, passphrase=passphrase)
    done: list[str] = []
    cdir = chain_dir(home, config)
    kinds = {p.kind for p in before.problems}
    if cdir is not None and "chain-json" in kinds:
        from proml_sim.chain.journal import repair_chain_json

        recorded = (config.get("chain") or {}).get("chain_id")
        did = repair_chain_json(cdir, recorded if isinstance(recorded, int) else None)
        if did:
            done.append(did)
            # the log and the DB are judged anew
            before = check(home, replay=True, passphrase=passphrase)
            kinds = {p.kind for p in before.problems}
    if cdir is not None and "chain-log" in kinds:
        if source is None and "state-db" in kinds:
            raise NodeError(
                "the block log and the state DB are both damaged: pass --from DIR, a replica's "
                f"or peer's copy of this chain's directory ({before.problems[0].line()})")
        if source is None:
            # the DB holds every committed block: rebuild the log from it, byte for byte
            try:
                old, n = regenerate_log(cdir)
            except JournalError as exc:
                raise NodeError(f"{exc}; pass --from DIR, a replica's or peer's copy of this "
                                "chain's directory") from None
            done.append(f"rebuilt the block log from the state DB ({n} blocks, each at the "
                        "byte range and CRC the DB recorded)"
                        + (f"; the damaged log is kept as {old}" if old else ""))
        else:
            src = Path(source)
            old, n = restore_log(cdir, src)
            done.append(f"restored the block log from {src} ({n} blocks verified)"
                        + (f"; the damaged log is kept as {old}" if old else ""))
        mid = check(home, replay=True, passphrase=passphrase)
        kinds = {p.kind for p in mid.problems}
        if "chain-log" in kinds and "state-db" not in kinds:
            # the DB indexes the old log's byte ranges: rebuild it from the restored log
            kinds.add("state-db")
    if cdir is not None and "state-db" in kinds:
        old, head = rebuild_state_db(cdir)
        done.append(f"rebuilt the state DB of {cdir} by replaying the block log (head block "
                    f"{head})" + (f"; the old DB is kept as {old}" if old else ""))
    if cdir is not None and "deployments" in {p.kind for p in before.problems}:
        done += repair_deployments(cdir, config)
    # the store's own healing: a replica's good bytes replace the damaged copy, which goes
    # into the quarantine (a blob no replica has is left where it is)
    store = BlobStore(home / "store", _replicas(home, config), quarantine=home / QUARANTINE)
    store.warn = False  # this report says it
    quarantine = home / QUARANTINE / time.strftime("%Y%m%dT%H%M%S")
    for p in before.problems:
        if p.kind == "blob" and store.replicas:
            digest = Path(p.path).parent.name + Path(p.path).name
            if store.check(digest) is None and digest in store.healed:
                done.append(f"restored blob {digest} from a replica (the damaged copy is in "
                            f"{store.healed[digest]})")
        elif p.kind == "sent":
            from proml_sim.node import sentlog

            what = sentlog.acknowledge_line(home, int(p.path.rpartition(":")[2]))
            done.append(f"marked {what} handled in {p.path} (an appended line; nothing in the "
                        "log is rewritten; send a dropped step again if you have not: its entry "
                        "names the command)")
        elif p.kind == "temp-file":
            src_path = Path(p.path)
            rel = src_path.relative_to(home) if src_path.is_relative_to(home) else Path(
                src_path.parent.name) / src_path.name
            dest = quarantine / "temp" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(src_path, dest)
            done.append(f"moved the stray temporary file {src_path} to {dest}")
    after = check(home, replay=True, passphrase=passphrase)
    after.repaired = done
    return after
