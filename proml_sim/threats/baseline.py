"""The centralised baseline: one provenance database (SQLite, on disk) run by one domain.

Honest users go through the application, which enforces the same lifecycle rules as the
contract (role, source state, evidence, k-of-n approvals) using the lifecycle IR.  The
database's administrator is an insider with plain SQL access (:meth:`CentralDB.admin_sql`):
rows can be updated or deleted, the audit table included, and nothing outside the database
records what happened.  Scenarios use that power to show an attack is real.
"""

from __future__ import annotations

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
"""


class CentralDB:
    """The baseline provenance service.  ``admin`` is the insider running it."""

    def __init__(self, path: str | Path, lifecycles: dict[str, Any], admin: str) -> None:
        self.path = Path(path)
        self.conn = sqlite3.connect(self.path)
        self.conn.executescript(SCHEMA)
        self.irs: dict[str, LifecycleIR] = {k: build_ir(v) for k, v in lifecycles.items()}
        self.admin = admin

    def close(self) -> None:
        self.conn.close()

    # -- the insider's power ------------------------------------------------------------------
    def admin_sql(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Raw SQL as the database administrator (no rule, no trace outside the database)."""
        cur = self.conn.execute(sql, params)
        rows = cur.fetchall()
        self.conn.commit()
        return rows

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
            count = len({d for _, d in rows} | {mine}) if t.count == "domains" else len(rows) + 1
            if count < t.approvals:
                self.conn.commit()
                return False
        self.conn.execute("UPDATE artefacts SET state=?, version=?, digest=? WHERE id=?",
                          (t.target, version + 1, digest or None, artefact))
        self.conn.execute("INSERT INTO history (artefact, step, actor, version, digest, at) "
                          "VALUES (?, ?, ?, ?, ?, ?)",
                          (artefact, transition, actor, version + 1, digest, at))
        self.conn.commit()
        return True

    def digest_of(self, artefact: str) -> str | None:
        row = self.conn.execute("SELECT digest FROM artefacts WHERE id=?", (artefact,)).fetchone()
        return row[0] if row else None

    def history(self, artefact: str) -> list[tuple[Any, ...]]:
        return self.conn.execute(
            "SELECT seq, step, actor, version, digest, at FROM history WHERE artefact=? "
            "ORDER BY seq", (artefact,)).fetchall()
