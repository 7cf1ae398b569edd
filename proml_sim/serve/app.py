"""The ASGI application of ``proml serve`` (Starlette).

Routes (``part`` is what node.json's ``serve.public`` may open to outsiders)::

    GET|HEAD /blobs/sha256/<hex>             blob bytes, streamed; ETag = digest   (blobs)
    GET /api/node                            this node: name, domain, address, head (pages)
    GET /api/artefacts                       every artefact (as `proml ls --json`)  (pages)
    GET /api/artefacts/<lc>/<id>             status, history, lineage, verify report (pages)
    GET /api/artefacts/<lc>/<id>/bundle      the evidence bundle (zip)              (pages)
    GET /                                    explorer: the artefacts                (pages)
    GET /artefacts/<lc>/<id>                 explorer: one artefact                 (pages)

Every answer reuses the node's services (``ProMLNode.ls``/``history_detail``, ``Lineage``,
``verify``, ``write_bundle``).  Members sign requests (``auth.py``); the person who started the
server opens the explorer through the single-use link it prints: its random token, used once,
sets a cookie holding a separate random session id (a later use of the link is refused: restart
``proml serve`` for a new one).  Node and chain access is serialised by one lock (the chain
backend is not thread-safe); blob bytes are streamed, and missing blobs fetched from peers,
outside it.
"""

from __future__ import annotations

import hmac
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from proml_sim.errors import AccessDenied, ProMLError, StoreError, UnknownName, UsageError
from proml_sim.node.bundle import write_bundle
from proml_sim.node.evidence import LiveSource, load_record
from proml_sim.node.lineage import Lineage
from proml_sim.node.service import ArtefactRef, ProMLNode
from proml_sim.node.store import check_digest
from proml_sim.node.verify import verify
from proml_sim.serve.auth import Gate, configured_origins
from proml_sim.serve.diagram import lifecycle_svg, lineage_svg

SESSION_COOKIE = "proml_session"
#: seconds between looks at the chain head: pages may lag the chain by this much, and a burst
#: of requests costs one look, not one each
HEAD_POLL_S = 0.25
TEMPLATES = Path(__file__).parent / "templates"
#: rounds of (read under the lock, fetch what it lacked outside it) a request may take: each
#: round may find more (a fetched record names its files)
FETCH_ROUNDS = 6
T = TypeVar("T")


class Explorer:
    """The state behind the app: the node, its current view of the chain, the gate."""

    def __init__(self, node: ProMLNode, *, origins: Sequence[str], token: str | None = None,
                 peer_signer: Any = None) -> None:
        self.node = node
        self.lock = threading.RLock()
        self.gate = Gate(node, (*origins, *configured_origins(node.config)),
                         chain_lock=self.lock)
        self.token = token or secrets.token_urlsafe(24)
        self._token_used = False
        self._sessions: list[str] = []  # the session ids the login link handed out
        self._login_lock = threading.Lock()
        self.peer_signer = peer_signer
        self._head: tuple[int, bytes] | None = None
        self._source: LiveSource | None = None
        self._lineage: Lineage | None = None
        self._ls: list[dict[str, Any]] | None = None  # the artefact list at this head
        self._checked = -HEAD_POLL_S  # when the chain head was last looked at (monotonic)

    # -- the chain view, refreshed when the head moves ------------------------------------
    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < HEAD_POLL_S:
            return
        self._checked = now
        sync = getattr(self.node.backend, "sync", None)
        if sync is not None:
            sync()  # blocks other processes appended to a shared journal
        head = self.node.backend.head()
        if self._head != (head.number, head.hash):
            self._head = (head.number, head.hash)
            src = LiveSource(self.node)
            if src.peers is not None and self.peer_signer is not None:
                src.peers._signer = self.peer_signer  # unlocked once, at start
            self._source, self._lineage, self._ls = src, None, None

    def source(self) -> LiveSource:
        self._refresh()
        assert self._source is not None
        return self._source

    def lineage(self) -> Lineage:
        src = self.source()
        if self._lineage is None:
            self._lineage = Lineage(src)
        return self._lineage

    def with_fetches(self, work: Callable[[], T]) -> T:
        """``work()`` under the lock, the blobs it lacks fetched from the peers outside it (a
        slow peer then holds this request only): each round collects what ``work`` missed,
        fetches it unlocked and runs ``work`` again, until nothing new is missing."""
        for last in [False] * FETCH_ROUNDS + [True]:
            failed: ProMLError | None = None
            with self.lock:
                src = self.source()
                src.deferred = set()
                try:
                    result = work()
                except ProMLError as exc:  # e.g. a bundle missing a blob not yet fetched
                    failed = exc
                finally:
                    missing, src.deferred = src.deferred, None
                if not missing or last:
                    if failed is not None:
                        raise failed
                    return result
                self._lineage = None  # it read no missing record: built again once fetched
            for d in sorted(missing):  # content-addressed, atomic writes: concurrent fetches
                src.fetch(d)           # of one blob by two requests are safe
        raise AssertionError("unreachable")  # pragma: no cover

    def node_info(self) -> dict[str, Any]:
        self._refresh()
        assert self._head is not None
        return {"name": self.node.name, "domain": self.node.domain,
                "address": self.node.address, "chain_id": int(self.node.backend.chain_id),
                "head": self._head[0], "head_hash": "0x" + self._head[1].hex(),
                "peers": self.node.peer_urls()}

    # -- access ---------------------------------------------------------------------------
    def allow(self, request: Request, part: str) -> str | None:
        """The requester (a member address, "owner", or None for a permitted outsider);
        :class:`AccessDenied` otherwise."""
        cookie = request.cookies.get(session_cookie(request), "")
        if cookie and any(hmac.compare_digest(cookie, s) for s in self._sessions):
            return "owner"
        if request.headers.get("x-proml-signature") is None and part in self.gate.public:
            return None
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return self.gate.check(request.method, target, request.headers, part)

    def login(self, token: str) -> str:
        """A new session id for the login link's ``token`` (single-use);
        :class:`AccessDenied` if it is not the token or was used already."""
        if not hmac.compare_digest(token, self.token):
            raise AccessDenied("this login link is not valid; open the link `proml serve` "
                               "printed")
        with self._login_lock:
            if self._token_used:
                raise AccessDenied("this login link was already used (it works once); restart "
                                   "`proml serve` for a new link, or go on in the browser it "
                                   "logged in")
            self._token_used = True
            session = secrets.token_urlsafe(32)
            self._sessions.append(session)
            return session

    def ref(self, lifecycle: str, aid: str) -> ArtefactRef:
        if lifecycle not in self.node.clients:
            raise UnknownName(f"no lifecycle {lifecycle!r} on this chain; see /api/artefacts")
        try:
            raw = bytes.fromhex(aid.removeprefix("0x"))
        except ValueError:
            raise UsageError(f"{aid!r} is not a 0x artefact id; see /api/artefacts") from None
        return self.lineage().ref(ArtefactRef(lifecycle, raw))


def _href(lc: str, aid: str, version: int | None = None) -> str:
    return f"/artefacts/{lc}/{aid}" + (f"?version={version}" if version else "")


def _error(request: Request, exc: Exception, templates: Jinja2Templates,
           ex: Explorer) -> Response:
    status = (403 if isinstance(exc, AccessDenied) else 404 if isinstance(exc, UnknownName)
              else 400 if isinstance(exc, ProMLError) else 500)
    message = str(exc) if isinstance(exc, ProMLError) else (
        f"internal error ({type(exc).__name__}); the server log names it")
    shown = _without_paths(message, ex.node)
    if shown != message and status != 500:  # the paths stay in the server's own log
        print(f"proml serve: {request.method} {request.url.path}: {message}", file=sys.stderr,
              flush=True)
    message = shown
    if status == 500:  # one line in the server's log, never a traceback
        print(f"proml serve: {request.method} {request.url.path} failed: "
              f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    if "text/html" in request.headers.get("accept", "") and not request.url.path.startswith(
            ("/api/", "/blobs/")):
        try:
            info = ex.node_info() if status != 403 else {"name": ex.node.name, "domain": "",
                                                         "chain_id": "", "head": ""}
        except Exception:
            info = {"name": ex.node.name, "domain": "", "chain_id": "", "head": ""}
        return templates.TemplateResponse(request, "error.html", {
            "node": info, "status": status, "message": message}, status_code=status)
    return JSONResponse({"error": message}, status_code=status)


def _without_paths(text: str, node: ProMLNode) -> str:
    """``text`` with the server's local paths (home, store, replicas) replaced by names: an
    answer to a member names no directory of this machine."""
    places: dict[str, str] = {}
    for name, where in (("<home>", node.home), ("<store>", node.store.root),
                        *((f"<replica {i + 1}>", r) for i, r in enumerate(node.store.replicas))):
        for form in (Path(where).absolute(), Path(where).resolve()):
            places[str(form)] = name  # absolute forms only: a relative home "." is no path
    for path in sorted(places, key=len, reverse=True):  # the longest first: a store in a home
        text = text.replace(path, places[path])
    return text


def _json_without_paths(obj: Any, node: ProMLNode) -> Any:
    """A JSON answer with every string's local paths replaced (:func:`_without_paths`)."""
    if isinstance(obj, str):
        return _without_paths(obj, node)
    if isinstance(obj, list):
        return [_json_without_paths(v, node) for v in obj]
    if isinstance(obj, dict):
        return {k: _json_without_paths(v, node) for k, v in obj.items()}
    return obj


def session_cookie(request: Request) -> str:
    """The session cookie's name for this server: browsers scope cookies by host, not port,
    so two servers on 127.0.0.1 would overwrite (and receive) each other's."""
    return f"{SESSION_COOKIE}_{request.url.port or 80}"


def build_app(node: ProMLNode, *, origins: Sequence[str], token: str | None = None,
              peer_signer: Any = None) -> Starlette:
    """The Starlette app serving ``node`` (``app.state.explorer`` holds the state); signed
    requests must be signed for one of ``origins`` (the server's own URLs, e.g.
    :func:`~proml_sim.serve.auth.loopback_origins`) or node.json's ``serve.origins``."""
    ex = Explorer(node, origins=origins, token=token, peer_signer=peer_signer)
    import jinja2

    templates = Jinja2Templates(env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True))

    def guarded(part: str, fn: Any) -> Any:
        def endpoint(request: Request) -> Response:
            try:
                token = request.query_params.get("token")
                if token is not None:
                    session = ex.login(token)
                    resp = RedirectResponse(request.url.path, status_code=303)
                    resp.set_cookie(session_cookie(request), session, httponly=True,
                                    samesite="strict")
                    return resp
                ex.allow(request, part)
                return fn(request)  # type: ignore[no-any-return]
            except Exception as exc:
                return _error(request, exc, templates, ex)
        return endpoint

    def blob(request: Request) -> Response:
        digest = check_digest(request.path_params["digest"])
        etag = f'"{digest}"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        try:
            path = node.store._verified_path(digest)  # re-hashed: never serve damaged bytes
        except StoreError as exc:
            if not node.store.path_of(digest).exists():
                raise UnknownName(f"blob {digest} is not held by node {node.name}") from exc
            raise
        return FileResponse(path, media_type="application/octet-stream",
                            headers={"ETag": etag, "Cache-Control": "max-age=31536000, immutable"})

    def api_node(request: Request) -> Response:
        with ex.lock:
            return JSONResponse(ex.node_info())

    def artefacts() -> list[dict[str, Any]]:
        with ex.lock:
            ex._refresh()
            if ex._ls is None:  # replaying every event is the cost: once per chain head
                ex._ls = node.ls()
                for r in ex._ls:
                    r["href"] = _href(r["lifecycle"], r["id"])
            return ex._ls

    def api_artefacts(request: Request) -> Response:
        return JSONResponse(artefacts())

    def details(request: Request) -> dict[str, Any]:
        return ex.with_fetches(lambda: _details(request))

    def _details(request: Request) -> dict[str, Any]:
        with ex.lock:
            ref = ex.ref(request.path_params["lc"], request.path_params["aid"])
            lin = ex.lineage()
            v = request.query_params.get("version")
            try:
                key = lin.key(ref, int(v) if v else None)
            except ValueError:
                raise UsageError(f"version {v!r} is not a whole number; give e.g. ?version=1"
                                 ) from None
            latest = lin.key(ref)
            src = ex.source()
            history = node.history_detail(ref)
            for row in history:
                row["evidence"] = _evidence(src, row["digest"])
            report = verify(src, ref)
            up, down = lin.ancestors(key), lin.descendants(key)
            svg_lineage = lineage_svg(
                lin.around(key, up=True, down=True), key, lin.label,
                lambda k: _href(k.lifecycle, k.id, k.version))
            attrs = lin.graph.nodes[latest]
            return {
                "a": {"lifecycle": ref.lifecycle, "id": ref.hex, "name": lin.name(latest),
                      "state": attrs["state"], "version": latest.version,
                      "shown_version": key.version},
                "history": history, "timeline": history,
                "lineage": {"version": lin.node_json(key),
                            "ancestors": [lin.node_json(k) for k in up],
                            "descendants": [lin.node_json(k) for k in down]},
                "report": report.to_dict(),
                "conflicts": [c.message for c in lin.conflicts if c.key in {key, *up, *down}],
                "lifecycle_svg": lifecycle_svg(src.irs[ref.lifecycle], attrs["state"]),
                "lineage_svg": svg_lineage,
                "bundle_href": f"/api/artefacts/{ref.lifecycle}/{ref.hex}/bundle",
                "api_href": f"/api/artefacts/{ref.lifecycle}/{ref.hex}",
            }

    def api_artefact(request: Request) -> Response:
        d = details(request)
        return JSONResponse(_json_without_paths(
            {"artefact": d["a"], "history": d["history"], "lineage": d["lineage"],
             "verify": d["report"], "conflicts": d["conflicts"], "bundle": d["bundle_href"]},
            ex.node))

    def api_bundle(request: Request) -> Response:
        tmp = Path(tempfile.mkdtemp(prefix="proml-bundle-"))
        try:
            def bundle() -> tuple[ArtefactRef, Path]:
                ref = ex.ref(request.path_params["lc"], request.path_params["aid"])
                return ref, write_bundle(ex.source(), ref, tmp / "bundle.zip")

            ref, path = ex.with_fetches(bundle)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        name = f"{ref.name or ref.hex[:12]}-bundle.zip"
        return FileResponse(path, media_type="application/zip", filename=name,
                            background=BackgroundTask(shutil.rmtree, tmp, True))

    def page_index(request: Request) -> Response:
        rows = artefacts()
        with ex.lock:
            info = ex.node_info()
        return templates.TemplateResponse(request, "index.html",
                                          {"node": info, "artefacts": rows})

    def page_artefact(request: Request) -> Response:
        d = details(request)
        with ex.lock:
            d["node"] = ex.node_info()
        return templates.TemplateResponse(request, "artefact.html", d)

    routes = [
        Route("/blobs/sha256/{digest}", guarded("blobs", blob), methods=["GET", "HEAD"]),
        Route("/api/node", guarded("pages", api_node)),
        Route("/api/artefacts", guarded("pages", api_artefacts)),
        Route("/api/artefacts/{lc}/{aid}", guarded("pages", api_artefact)),
        Route("/api/artefacts/{lc}/{aid}/bundle", guarded("pages", api_bundle)),
        Route("/", guarded("pages", page_index)),
        Route("/artefacts/{lc}/{aid}", guarded("pages", page_artefact)),
    ]
    app = Starlette(routes=routes)
    app.state.explorer = ex
    return app


def _evidence(src: LiveSource, digest: str | None) -> list[dict[str, str]]:
    """Download links for a step's evidence: its record and the files the record lists."""
    if not digest or int(digest, 16) == 0:
        return []
    d = digest.removeprefix("0x")
    out = [{"label": "record", "href": f"/blobs/sha256/{d}"}]
    try:
        rec = load_record(src, d)
    except ProMLError:
        rec = None
    if rec is not None:
        for f in (*rec.input_files, *rec.outputs):
            out.append({"label": f.name, "href": f"/blobs/sha256/{f.sha256}"})
    return out

