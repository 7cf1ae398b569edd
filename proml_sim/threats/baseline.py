"""The centralised baseline: one provenance database (SQLite, on disk) run by one domain.

Honest users go through the application, which enforces the same lifecycle rules as the
contract (role, source state, evidence, separation of duty by account and by the domain the
database records, k-of-n approvals) using the lifecycle IR.  The
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
import hmac
import json
import secrets
import sqlite3
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from proml_sim.errors import (
    AlreadyApproved,
    EvidenceRequired,
    LifecycleError,
    RoleNotAllowed,
    TransitionNotAllowed,
    UnknownArtefact,
    UsageError,
)
from proml_sim.fsutil import parse_json
from proml_sim.ir import LifecycleIR, build_ir
from proml_sim.ir import messages as msg

SCHEMA = """
CREATE TABLE IF NOT EXISTS artefacts (
    id TEXT PRIMARY KEY, lifecycle TEXT, name TEXT, owner TEXT, state TEXT, version INTEGER,
    digest TEXT);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, artefact TEXT, step TEXT, actor TEXT,
    version INTEGER, digest TEXT, at REAL);
CREATE TABLE IF NOT EXISTS roles (account TEXT, lifecycle TEXT, role TEXT, domain TEXT,
    PRIMARY KEY (account, lifecycle, role));
CREATE TABLE IF NOT EXISTS accounts (account TEXT PRIMARY KEY, domain TEXT NOT NULL);
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
        """Give ``account`` ``role`` on ``lifecycle``, recording ``account`` as ``domain``'s.
        An account has one domain, kept after its roles are revoked (as on chain); the admin
        records the domain it is told, so a grant naming another domain moves the account
        (one administrator cannot check such a claim: threat E2)."""
        self.admin_sql("INSERT OR REPLACE INTO accounts VALUES (?, ?)", (account, domain))
        self.admin_sql("UPDATE roles SET domain=? WHERE account=?", (domain, account))
        self.admin_sql("INSERT OR REPLACE INTO roles VALUES (?, ?, ?, ?)",
                       (account, lifecycle, role, domain))

    def revoke(self, account: str, lifecycle: str, role: str) -> None:
        self.admin_sql("DELETE FROM roles WHERE account=? AND lifecycle=? AND role=?",
                       (account, lifecycle, role))

    def _roles(self, account: str, lifecycle: str) -> set[str]:
        return {r for (r,) in self.conn.execute(
            "SELECT role FROM roles WHERE account=? AND lifecycle=?", (account, lifecycle))}

    def _domain(self, account: str) -> str:
        row = self.conn.execute("SELECT domain FROM accounts WHERE account=?",
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
        for other in dict.fromkeys((*t.separate_from, *t.separate_domain_from)):
            # separation of duty, as the contract: against the last actor of `other` here, by
            # account and (separate_domain_from) by the domain the database records
            last = self.conn.execute("SELECT actor FROM history WHERE artefact=? AND step=? "
                                     "ORDER BY seq DESC LIMIT 1", (artefact, other)).fetchone()
            if last is None:
                continue
            if other in t.separate_from and last[0] == actor:
                raise msg.separation(ir, t, other)
            if other in t.separate_domain_from and self._domain(last[0]) == self._domain(actor):
                raise msg.domain_separation(ir, t, other)
        if t.approvals > 1:
            rows = self.conn.execute(
                "SELECT approver, domain FROM approvals WHERE artefact=? AND step=? AND "
                "version=? AND digest=?", (artefact, transition, version, digest)).fetchall()
            mine = self._domain(actor)
            # as the contract counts: an approver who no longer holds a role of the step
            # (revoked since approving) does not count, nor block its domain; a domain is the
            # approver's now
            valid = [(a, self._domain(a)) for a, _ in rows if self._roles(a, lifecycle) & set(t.by)]
            if any(a == actor for a, _ in rows) or (
                    t.count == "domains" and any(d == mine for _, d in valid)):
                raise AlreadyApproved(f"{lifecycle}.{transition}: already approved")
            self.conn.execute("INSERT INTO approvals VALUES (?, ?, ?, ?, ?, ?)",
                              (artefact, transition, version, digest, actor, mine))
            self._audit(at, actor, f"approve:{transition}", artefact, digest)
            count = (len({d for _, d in valid} | {mine}) if t.count == "domains"
                     else len(valid) + 1)
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


# -- the authenticated API: what a careful web service puts in front of the database -----------
SESSION_COOKIE = "sid"
CSRF_HEADER = "X-CSRF-Token"
SIGNATURE_HEADERS = ("X-Account", "X-Time", "X-Nonce", "X-Signature")
#: headers a cross-origin page may set without a CORS preflight (Fetch standard, simplified)
SIMPLE_HEADERS = frozenset({"Content-Type", "Accept", "Accept-Language", "Content-Language"})


@dataclass(frozen=True)
class Cookie:
    """A session cookie as the API sets it: host-only, ``Secure``, ``HttpOnly`` (no script
    reads it) and ``SameSite`` (``Strict``: never sent with a request another site starts)."""

    name: str
    value: str
    host: str
    samesite: str = "Strict"


@dataclass(frozen=True)
class Request:
    """One HTTP request as the API receives it: ``host`` is the deployment it is addressed to,
    ``origin`` the ``Origin`` header a browser sets (None from a non-browser client)."""

    method: str
    host: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    origin: str | None = None


def approval_request(host: str, artefact: str, transition: str, digest: str) -> Request:
    """``POST /artefacts/<id>/<transition>`` with the evidence digest as its JSON body."""
    return Request("POST", host, f"/artefacts/{artefact}/{transition}",
                   json.dumps({"digest": digest}).encode())


def request_message(req: Request, ts: int, nonce: str) -> bytes:
    """What an agent signs: method, host, path, SHA-256 of the body, time and nonce (so a
    signature is good for one request to one deployment, once, for a short time)."""
    return "\n".join((req.method.upper(), req.host, req.path,
                      hashlib.sha256(req.body).hexdigest(), str(ts), nonce)).encode()


def sign_request(req: Request, account: str, key: bytes, now: float, nonce: str) -> Request:
    """``req`` with an agent's signature headers (HMAC-SHA256 under its enrolled key)."""
    ts = int(now)
    sig = hmac.new(key, request_message(req, ts, nonce), hashlib.sha256).hexdigest()
    return replace(req, headers={**req.headers, **dict(zip(
        SIGNATURE_HEADERS, (account, str(ts), nonce, sig), strict=True))})


class CentralAPI:
    """The baseline's HTTP front: every write is authenticated one of two ways.

    * **browser sessions** (the web application): :meth:`login` sets a :class:`Cookie`
      (``samesite``) and gives the application's own pages a per-session CSRF token; a write
      needs the live session (idle for at most ``session_idle_s``), the token in
      ``X-CSRF-Token`` and, from a browser, an ``Origin`` of the application itself;
    * **agents** (scripts, CI): per-request HMAC signatures (:func:`sign_request`) bound to
      method, host, path and body, refused ``window_s`` away from the server's clock or with a
      nonce already seen (the nonce cache of ``proml serve``).

    ``csrf=False`` and ``samesite="None"`` give the weaker session design (cookie only) as a
    contrast.  :meth:`handle` returns ``(status, reason)``; ``refused`` counts refusals by
    reason.  Example::

        api = CentralAPI(db, "prov.example")
        key = api.enrol("v1")
        req = sign_request(approval_request(api.host, aid, "verify", d), "v1", key, now, "n1")
        api.handle(req, now)                     # (200, 'verify') or (4xx, why)
    """

    def __init__(self, db: CentralDB, host: str, *, samesite: str = "Strict",
                 csrf: bool = True, session_idle_s: float = 900.0,
                 window_s: float = 120.0) -> None:
        if samesite not in ("Strict", "Lax", "None"):
            raise UsageError(f"samesite={samesite!r}; use Strict, Lax or None")
        from proml_sim.serve.auth import NonceCache

        self.db, self.host, self.samesite, self.csrf = db, host, samesite, csrf
        self.session_idle_s, self.window_s = session_idle_s, window_s
        self.keys: dict[str, bytes] = {}
        self.sessions: dict[str, list[Any]] = {}  # sid -> [account, csrf token, last used]
        self.nonces = NonceCache(window_s)
        self.refused: dict[str, int] = {}

    def enrol(self, account: str) -> bytes:
        """Give an agent of ``account`` a signing key (returned once, kept by the agent)."""
        self.keys[account] = secrets.token_bytes(32)
        return self.keys[account]

    def login(self, account: str, now: float) -> tuple[Cookie, str]:
        """A browser login: the session cookie and the CSRF token the app's pages embed."""
        sid, token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.sessions[sid] = [account, token, now]
        return Cookie(SESSION_COOKIE, sid, self.host, self.samesite), token

    def _refuse(self, status: int, why: str) -> tuple[int, str]:
        self.refused[why] = self.refused.get(why, 0) + 1
        return status, why

    def _account(self, req: Request, now: float) -> str | tuple[int, str]:
        h = req.headers
        if SIGNATURE_HEADERS[3] in h:
            account, ts, nonce, sig = (h.get(k, "") for k in SIGNATURE_HEADERS)
            key = self.keys.get(account)
            if key is None or not ts.isdigit():
                return self._refuse(401, "unknown agent")
            if abs(now - int(ts)) > self.window_s:
                return self._refuse(401, "signature expired")
            good = hmac.new(key, request_message(replace(req, host=self.host), int(ts), nonce),
                            hashlib.sha256).hexdigest()
            if not hmac.compare_digest(good, sig):
                return self._refuse(401, "bad signature")
            if not self.nonces.add(f"{account}:{nonce}", now):
                return self._refuse(401, "nonce seen (replay)")
            return account
        session = self.sessions.get(req.cookies.get(SESSION_COOKIE, ""))
        if session is None:
            return self._refuse(401, "no session")
        if now - session[2] > self.session_idle_s:
            return self._refuse(401, "session expired")
        if self.csrf and (req.origin not in (None, f"https://{self.host}")
                          or not hmac.compare_digest(h.get(CSRF_HEADER, ""), session[1])):
            return self._refuse(403, "CSRF check failed")
        session[2] = now
        return str(session[0])

    def handle(self, req: Request, now: float) -> tuple[int, str]:
        """Serve one request: ``POST /artefacts/<id>/<transition>`` fires ``transition`` on the
        artefact as the authenticated account (the database's rules apply)."""
        parts = req.path.split("/")
        if req.method != "POST" or len(parts) != 4 or parts[1] != "artefacts":
            return 404, "no such route"
        who = self._account(req, now)
        if isinstance(who, tuple):
            return who
        try:
            digest = str(parse_json(req.body or b"{}").get("digest", ""))
            self.db.fire(who, parts[3], parts[2], digest, at=now)
        except (ValueError, LifecycleError) as exc:
            return 409, type(exc).__name__
        return 200, parts[3]


class Browser:
    """A role holder's browser: its cookie jar and the rules current browsers apply to a
    page's requests -- a page of another site cannot read the application's cookies or pages
    (same-origin policy), cannot set custom headers cross-origin without a CORS preflight the
    API does not grant, and gets the session cookie attached only as ``SameSite`` allows."""

    def __init__(self) -> None:
        self.jar: dict[str, Cookie] = {}

    def log_in(self, api: CentralAPI, account: str, now: float) -> str:
        """Log in to ``api``; returns the CSRF token the application's own page carries."""
        cookie, token = api.login(account, now)
        self.jar[api.host] = cookie
        return token

    def send(self, api: CentralAPI, page: str, req: Request, now: float) -> tuple[int, str]:
        """``req`` sent by a page of site ``page`` (a form post or a fetch)."""
        cross = page != req.host
        if cross and set(req.headers) - SIMPLE_HEADERS:
            return 0, "CORS preflight refused"
        c = self.jar.get(req.host)
        send = c is not None and (not cross or c.samesite == "None"
                                  or (c.samesite == "Lax" and req.method == "GET"))
        return api.handle(replace(req, origin=f"https://{page}",
                                  cookies={c.name: c.value} if send and c else {}), now)
