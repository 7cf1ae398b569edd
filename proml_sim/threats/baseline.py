"""The centralised baseline: one provenance database (SQLite, on disk) run by one domain.

Honest users go through the application, which enforces the same lifecycle rules as the
contract (role, source state, evidence, k-of-n approvals) using the lifecycle IR.  The
database has the defences a careful centralised design has, so ProML is compared with a good
baseline, not a strawman:

* **digests**: every record and history row carries the evidence digest it was made with;
* **indexes** on the history, approvals and name lookups (reads do not scan the tables);
* an **append-only audit table**, hash-chained (each row hashes the previous row's hash and its
  own fields), written by the application on every action, and **triggers** that abort any
  UPDATE or DELETE of the audit and history tables.

The database's administrator is an insider with DBA access (:meth:`CentralDB.admin_sql`).
A statement the guards refuse is executed the way such an insider would: the guard triggers are
dropped, the statement runs, the triggers are re-created (each bypass is counted in
``CentralDB.bypasses``); nothing outside the database records what happened.  Scenarios use
that power to show an attack is real.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

from proml_sim.errors import (
    AlreadyApproved,
    EvidenceRequired,
    RoleNotAllowed,
    TransitionNotAllowed,
    UnknownArtefact,
)
from proml_sim.ir import LifecycleIR, build_ir

SCHEMA = """
CREATE TABLE IF NOT EXISTS artefacts (
    id TEXT PRIMARY KEY, lifecycle TEXT, name TEXT, owner TEXT, state TEXT, version INTEGER,
    digest TEXT);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, artefact TEXT, step TEXT, actor TEXT,
    version INTEGER, digest TEXT, at REAL);
CREATE TABLE IF NOT EXISTS roles (account TEXT, lifecycle TEXT, role TEXT, domain TEXT,
    PRIMARY KEY (account, lifecycle, role));
CREATE TABLE IF NOT EXISTS approvals (artefact TEXT, step TEXT, version INTEGER, digest TEXT,
    approver TEXT, domain TEXT);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL, actor TEXT, action TEXT, artefact TEXT,
    digest TEXT, hash TEXT);
CREATE INDEX IF NOT EXISTS history_by_artefact ON history (artefact, seq);
CREATE INDEX IF NOT EXISTS approvals_by_key ON approvals (artefact, step, version, digest);
CREATE INDEX IF NOT EXISTS artefacts_by_name ON artefacts (name);
"""

#: the append-only guards: (trigger name, SQL creating it)
GUARDS = tuple(
    (f"{table}_no_{op.lower()}",
     f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
     f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")
    for table in ("audit", "history") for op in ("UPDATE", "DELETE"))
GENESIS = "0" * 64


def audit_hash(prev: str, at: float, actor: str, action: str, artefact: str,
               digest: str | None) -> str:
    """One audit row's hash: SHA-256 over the previous row's hash and this row's fields."""
    return hashlib.sha256("\x1f".join((prev, repr(float(at)), actor, action, artefact,
                                        digest or "")).encode()).hexdigest()


class CentralDB:
    """The baseline provenance service.  ``admin`` is the insider running it."""

    def __init__(self, path: str | Path, lifecycles: dict[str, Any], admin: str) -> None:
        self.path = Path(path)
        self.conn = sqlite3.connect(self.path)
        self.conn.executescript(SCHEMA)
        for _, create in GUARDS:
            self.conn.execute(create)
        self.conn.commit()
        self.irs: dict[str, LifecycleIR] = {k: build_ir(v) for k, v in lifecycles.items()}
        self.admin = admin
        self.bypasses = 0  # statements the guards refused that the DBA ran by dropping them

    def close(self) -> None:
        self.conn.close()

    # -- the insider's power ------------------------------------------------------------------
    def admin_sql(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Raw SQL as the database administrator (no rule, no trace outside the database).

        A statement an append-only guard refuses runs as a DBA would run it: drop the guard
        triggers, run it, re-create them (counted in ``bypasses``)."""
        try:
            cur = self.conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            if "append-only" not in str(exc):
                raise
            self.conn.rollback()
            for name, _ in GUARDS:
                self.conn.execute(f"DROP TRIGGER IF EXISTS {name}")
            cur = self.conn.execute(sql, params)
            for _, create in GUARDS:
                self.conn.execute(create)
            self.bypasses += 1
        rows = cur.fetchall()
        self.conn.commit()
        return rows

    # -- the audit trail --------------------------------------------------------------------------
    def _audit(self, at: float, actor: str, action: str, artefact: str, digest: str) -> None:
        """Append one hash-chained audit row (same transaction as the change it records)."""
        row = self.conn.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        h = audit_hash(row[0] if row else GENESIS, at, actor, action, artefact, digest)
        self.conn.execute("INSERT INTO audit (at, actor, action, artefact, digest, hash) "
                          "VALUES (?, ?, ?, ?, ?, ?)", (at, actor, action, artefact, digest, h))

    def audit_head(self) -> str:
        """The hash of the last audit row (what an auditor notes down to check later)."""
        row = self.conn.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return str(row[0]) if row else GENESIS

    def verify_audit(self) -> int | None:
        """Recompute the audit chain; the seq of the first row that does not hash, or None."""
        prev = GENESIS
        for seq, at, actor, action, artefact, digest, h in self.conn.execute(
                "SELECT seq, at, actor, action, artefact, digest, hash FROM audit ORDER BY seq"):
            if audit_hash(prev, at, actor, action, artefact, digest) != h:
                return int(seq)
            prev = h
        return None

    def rechain_audit(self) -> None:
        """The DBA's cover-up of the audit trail after deleting rows: recompute every hash
        (the chain has no secret, so :meth:`verify_audit` passes again; only someone who kept
        an earlier head or copy can tell)."""
        prev = GENESIS
        for seq, at, actor, action, artefact, digest in self.admin_sql(
                "SELECT seq, at, actor, action, artefact, digest FROM audit ORDER BY seq"):
            prev = audit_hash(prev, at, actor, action, artefact, digest)
            self.admin_sql("UPDATE audit SET hash=? WHERE seq=?", (prev, seq))

    # -- the application ------------------------------------------------------------------------
    def grant(self, account: str, lifecycle: str, role: str, domain: str) -> None:
        self.admin_sql("INSERT OR REPLACE INTO roles VALUES (?, ?, ?, ?)",
                       (account, lifecycle, role, domain))

    def revoke(self, account: str, lifecycle: str, role: str) -> None:
        self.admin_sql("DELETE FROM roles WHERE account=? AND lifecycle=? AND role=?",
                       (account, lifecycle, role))

    def _roles(self, account: str, lifecycle: str) -> set[str]:
        return {r for (r,) in self.conn.execute(
            "SELECT role FROM roles WHERE account=? AND lifecycle=?", (account, lifecycle))}

    def _domain(self, account: str) -> str:
        row = self.conn.execute("SELECT domain FROM roles WHERE account=? LIMIT 1",
                                (account,)).fetchone()
        return str(row[0]) if row else ""

    def register(self, actor: str, lifecycle: str, name: str, digest: str = "", at: float = 0.0
                 ) -> str:
        ir = self.irs[lifecycle]
        if ir.register_by and not self._roles(actor, lifecycle) & set(ir.register_by):
            raise RoleNotAllowed(f"{lifecycle}.register needs role {' or '.join(ir.register_by)}")
        aid = f"{lifecycle}:{actor}:{name}"
        self.conn.execute("INSERT INTO artefacts VALUES (?, ?, ?, ?, ?, 1, ?)",
                          (aid, lifecycle, name, actor, ir.initial.name, digest))
        self.conn.execute("INSERT INTO history (artefact, step, actor, version, digest, at) "
                          "VALUES (?, 'register', ?, 1, ?, ?)", (aid, actor, digest, at))
        self._audit(at, actor, "register", aid, digest)
        self.conn.commit()
        return aid

    def fire(self, actor: str, transition: str, artefact: str, digest: str = "",
             at: float = 0.0) -> bool:
        """Apply a transition through the application; returns whether it fired."""
        row = self.conn.execute("SELECT lifecycle, state, version FROM artefacts WHERE id=?",
                                (artefact,)).fetchone()
        if row is None:
            raise UnknownArtefact(f"unknown artefact {artefact}")
        lifecycle, state, version = row
        ir = self.irs[lifecycle]
        t = ir.transition(transition)
        if not self._roles(actor, lifecycle) & set(t.by):
            raise RoleNotAllowed(f"{lifecycle}.{transition} needs role {' or '.join(t.by)}")
        if state not in t.sources:
            raise TransitionNotAllowed(f"{lifecycle}.{transition} not allowed from {state}")
        if t.evidence and not digest:
            raise EvidenceRequired(f"{lifecycle}.{transition} needs evidence")
        if t.approvals > 1:
            rows = self.conn.execute(
                "SELECT approver, domain FROM approvals WHERE artefact=? AND step=? AND "
                "version=? AND digest=?", (artefact, transition, version, digest)).fetchall()
            mine = self._domain(actor)
            if any(a == actor for a, _ in rows) or (
                    t.count == "domains" and any(d == mine for _, d in rows)):
                raise AlreadyApproved(f"{lifecycle}.{transition}: already approved")
            self.conn.execute("INSERT INTO approvals VALUES (?, ?, ?, ?, ?, ?)",
                              (artefact, transition, version, digest, actor, mine))
            self._audit(at, actor, f"approve:{transition}", artefact, digest)
            count = len({d for _, d in rows} | {mine}) if t.count == "domains" else len(rows) + 1
            if count < t.approvals:
                self.conn.commit()
                return False
        self.conn.execute("UPDATE artefacts SET state=?, version=?, digest=? WHERE id=?",
                          (t.target, version + 1, digest or None, artefact))
        self.conn.execute("INSERT INTO history (artefact, step, actor, version, digest, at) "
                          "VALUES (?, ?, ?, ?, ?, ?)",
                          (artefact, transition, actor, version + 1, digest, at))
        self._audit(at, actor, transition, artefact, digest)
        self.conn.commit()
        return True

    def digest_of(self, artefact: str) -> str | None:
        row = self.conn.execute("SELECT digest FROM artefacts WHERE id=?", (artefact,)).fetchone()
        return row[0] if row else None

    def history(self, artefact: str) -> list[tuple[Any, ...]]:
        return self.conn.execute(
            "SELECT seq, step, actor, version, digest, at FROM history WHERE artefact=? "
            "ORDER BY seq", (artefact,)).fetchall()
