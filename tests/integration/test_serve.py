"""`proml serve`: members-only blobs, the JSON API, peers fetching missing blobs, the explorer.

The multi-domain test runs six `proml serve` processes (one per node home, loopback ports) over
a world where no store is shared: each node holds only the blobs it produced, and `proml verify`
passes on every node only because the missing blobs come from the peers, hash-checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

with warnings.catch_warnings():  # starlette 1.x prefers httpx2 for its test client
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

from proml_sim.chain.accounts import derive_private_keys  # noqa: E402
from proml_sim.errors import NodeError, PeerError  # noqa: E402
from proml_sim.node.peers import PeerFetcher, RequestSigner  # noqa: E402
from proml_sim.node.service import ProMLNode  # noqa: E402
from proml_sim.serve.app import build_app  # noqa: E402
from proml_sim.serve.bench import ready, spawn_server, stop_server  # noqa: E402
from proml_sim.serve.cli import check_loopback  # noqa: E402
from tests.fixtures.anvil import find_anvil  # noqa: E402
from tests.unit.node.evidence_fixtures import World, cli, make_world  # noqa: E402

NAMES = ("admin", "alice", "lena", "bob", "vera", "vic")
#: the in-process app's origin (its test client addresses it so)
BASE = "http://127.0.0.1"


@pytest.fixture(scope="module")
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The six-domain world with no shared store.  On anvil when it is installed (as `.ci/run`
    does): then the homes share no directory at all, the chain being a JSON-RPC node; else on
    a shared chain journal directory (the stores still separate)."""
    rpc_url = request.getfixturevalue("anvil_url") if find_anvil() else None
    return make_world(tmp_path_factory.mktemp("serve") / "w", archive=False, rpc_url=rpc_url)


@pytest.fixture(scope="module")
def servers(world: World) -> Iterator[dict[str, dict[str, object]]]:
    """Six `proml serve` processes, one per home; stopped (SIGTERM) at the end, cleanly."""
    procs = {}
    try:
        for name in NAMES:  # started together, then each awaited
            procs[name] = spawn_server(world[name].home)
        yield {name: ready(p, name) for name, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes = {name: stop_server(p, terminate=False) for name, p in procs.items()}
    assert codes == dict.fromkeys(NAMES, 0), f"servers did not stop cleanly: {codes}"


def _digest_held_only_by(world: World, owner: str) -> str:
    others = [world[n].store for n in NAMES if n != owner]
    for d in world[owner].store.digests():
        if not any(s.has(d) for s in others):
            return d
    raise AssertionError(f"{owner} holds no blob of its own")


def test_every_node_verifies_with_blobs_from_its_peers(world, servers, capsys):
    if find_anvil():  # nothing shared but the network: every home's chain is the RPC node
        assert all(world[n].config["chain"]["kind"] == "rpc" for n in NAMES)
    clf = world["vera"].resolve("clf")
    lena_only = _digest_held_only_by(world, "lena")
    # without peers, a node lacks the other domains' evidence
    assert cli(["verify", "clf", "--home", str(world["vera"].home)]) == 1
    capsys.readouterr()
    connect_peers(world, servers)
    capsys.readouterr()
    for name in NAMES:
        home = str(world[name].home)
        assert cli(["verify", "clf", "--home", home, "--json"]) == 0, name
        report = json.loads(capsys.readouterr().out)
        assert report["ok"] and report["artefact"]["id"] == clf.hex
        assert cli(["lineage", "clf", "--home", home]) == 0
        capsys.readouterr()
    # fetched blobs were stored under their digests, checked: every node now holds them
    assert all(world[n].store.has(lena_only) for n in NAMES)
    # a bundle from a node that produced nothing of it, then verified offline
    out = world.root / "clf-bundle.zip"
    assert cli(["bundle", "clf", "-o", str(out), "--home", str(world["admin"].home)]) == 0
    assert cli(["verify", "--bundle", str(out)]) == 0


def connect_peers(world: World, servers: dict[str, dict[str, object]]) -> None:
    """Every node gets every other node's server as an HTTP peer (`proml replica add URL`)."""
    from proml_sim.cli import main

    for name in NAMES:
        home = str(world[name].home)
        have = ProMLNode.open(home).peer_urls()
        for other in NAMES:
            url = str(servers[other]["url"])
            if other != name and url not in have:
                assert main(["replica", "add", url, "--home", home]) == 0


def test_replica_list_shows_http_peers(world, servers, capsys):
    from proml_sim.cli import main

    home = str(world["alice"].home)
    url = str(servers["bob"]["url"])
    node = ProMLNode.open(home)
    if url not in node.peer_urls():
        assert main(["replica", "add", url, "--home", home]) == 0
    assert main(["replica", "add", url, "--home", home]) == 2  # already a peer: one line
    assert "already a peer" in capsys.readouterr().err
    assert main(["replica", "list", "--home", home, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["replicas"]
    assert {"kind": "http", "url": url} in listed
    assert main(["replica", "remove", url + "/", "--home", home]) == 0
    assert url not in ProMLNode.open(home).peer_urls()
    assert main(["replica", "remove", url, "--home", home]) == 2  # not a peer any more
    assert "not a peer" in capsys.readouterr().err
    assert main(["replica", "add", url, "--home", home]) == 0


class _WrongBytes(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"not the bytes you asked for"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _HostileRefusal(http.server.BaseHTTPRequestHandler):
    """Refuses with a body no refusal of ours has: 8 MB of '[' (deeper than any parser)."""

    def do_GET(self) -> None:
        body = b'{"error": ' + b"[" * (8 << 20)
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client stops reading: it has its reason
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def _peer(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """The URL of a peer on loopback answering with ``handler``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_a_peer_refusing_with_a_hostile_body_is_named_not_parsed(tmp_path):
    # the refusal's body was read whole and parsed with httpx's json: a RecursionError (or, with
    # py-evm loaded, a stack overflow) in the verifier, for any peer's choice of body
    from proml_sim.node.store import BlobStore

    with _peer(_HostileRefusal) as url, pytest.raises(PeerError) as err:
        PeerFetcher([url], RequestSigner(b"\x01" * 32)).fetch_into(
            BlobStore(tmp_path / "s"), "ab" * 32)
    msg = str(err.value)
    assert f"{url}: HTTP 403" in msg and len(msg) < 1000, msg[:300]


class _Endless(http.server.BaseHTTPRequestHandler):
    """Answers 200 and sends zeros without end (no Content-Length)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        chunk = bytes(1 << 20)
        with contextlib.suppress(OSError):  # until the client hangs up
            while True:
                self.wfile.write(chunk)

    def log_message(self, *args: object) -> None:
        pass


def test_a_peer_sending_without_end_is_stopped_before_the_disk_fills(tmp_path, monkeypatch):
    # it streamed into a temporary file until the disk was full (for everything else on it)
    import shutil

    from proml_sim.errors import StoreError
    from proml_sim.node import store as store_mod

    real = shutil.disk_usage
    seen = []

    def shrinking(path):  # this disk has 3 GiB free, less what the stream wrote so far
        u = real(path)
        written = sum(p.stat().st_size for p in (tmp_path / "s" / "objects").glob(".incoming-*"))
        seen.append(written)
        return u._replace(free=(3 << 30) - written * 64)

    monkeypatch.setattr(store_mod.shutil, "disk_usage", shrinking)
    with _peer(_Endless) as url, pytest.raises(StoreError) as err:
        PeerFetcher([url], RequestSigner(b"\x01" * 32)).fetch_into(
            store_mod.BlobStore(tmp_path / "s"), "ab" * 32)
    assert f"would keep less than {1 << 30:,} bytes free" in str(err.value)
    assert "nothing was kept" in str(err.value) and len(seen) > 1
    assert not list((tmp_path / "s" / "objects").rglob("*.*")), "a temporary file was left"
    assert not [p for p in (tmp_path / "s" / "objects").rglob("*") if p.is_file()]
    # on a nearly full disk (300 MB free) a blob still comes in, taking at most half of it
    monkeypatch.setattr(store_mod.shutil, "disk_usage",
                        lambda path: real(path)._replace(free=300 << 20))
    blob = store_mod.BlobStore(tmp_path / "s").put_stream([b"weights"], expect=hashlib.sha256(
        b"weights").hexdigest())
    assert blob.size == 7


class _Trickle(http.server.BaseHTTPRequestHandler):
    """Promises 10 MB and sends a byte a tenth of a second: each byte resets a read timeout."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(10**7))
        self.end_headers()
        with contextlib.suppress(OSError):
            for _ in range(600):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)

    def log_message(self, *args: object) -> None:
        pass


class _Serves(http.server.BaseHTTPRequestHandler):
    """Serves the bytes b"weights" for any blob."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "7")
        self.end_headers()
        self.wfile.write(b"weights")

    def log_message(self, *args: object) -> None:
        pass


def test_a_peer_trickling_a_blob_is_left_for_the_next(tmp_path):
    # a peer sending a byte now and then held the verification forever (no read timed out)
    from proml_sim.node.store import BlobStore

    digest = hashlib.sha256(b"weights").hexdigest()
    store = BlobStore(tmp_path / "s")
    with _peer(_Trickle) as slow, _peer(_Serves) as good:
        fetcher = PeerFetcher([slow, good], RequestSigner(b"\x01" * 32), min_rate=1000,
                              grace_s=1.0)
        started = time.monotonic()
        assert fetcher.fetch_into(store, digest) == good
        assert time.monotonic() - started < 20
        assert fetcher.notes == []  # it was served: the slow peer is not an error
        with pytest.raises(PeerError) as err:
            PeerFetcher([slow], RequestSigner(b"\x01" * 32), min_rate=1000,
                        grace_s=1.0).fetch_into(store, "ab" * 32)
    assert f"{slow}: too slow (" in str(err.value) and "under 1,000 bytes/s" in str(err.value)
    assert store.has(digest) and not store.has("ab" * 32)
    assert not list((tmp_path / "s" / "objects").glob(".incoming-*"))


class _Relay(http.server.BaseHTTPRequestHandler):
    """A malicious peer: replays each signed request it receives to ``target`` (another member's
    server), keeping what that server answers; answers 404 itself."""

    target = ""
    answers: list[tuple[int, bytes]] = []

    def do_GET(self) -> None:
        import urllib.error
        import urllib.request

        headers = {k: v for k, v in self.headers.items() if k.lower().startswith("x-proml-")}
        try:
            with urllib.request.urlopen(urllib.request.Request(
                    self.target + self.path, headers=headers), timeout=20) as r:
                self.answers.append((r.status, r.read()))
        except urllib.error.HTTPError as exc:
            self.answers.append((exc.code, exc.read()))
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_peer_cannot_relay_a_signed_request_to_another_server(world, servers, tmp_path):
    # the signature covered method, path, time and nonce: a peer vera lists could replay her
    # fresh request to bob's server and take bob's blobs
    from proml_sim.node.store import BlobStore

    digest = _digest_held_only_by(world, "bob")
    _Relay.target, _Relay.answers = str(servers["bob"]["url"]), []
    with _peer(_Relay) as relay, pytest.raises(PeerError):
        PeerFetcher([relay], RequestSigner.of_node(world["vera"])).fetch_into(
            BlobStore(tmp_path / "s"), digest)
    assert len(_Relay.answers) == 1
    status, body = _Relay.answers[0]
    assert status == 403 and b"signed for" in body and len(body) < 1000


class _Gzipped(http.server.BaseHTTPRequestHandler):
    """Serves b"weights" gzip-encoded, whatever was asked (httpx decoded it: 18.7 MB of a
    bomb became 4 GiB on disk)."""

    asked: list[str] = []

    def do_GET(self) -> None:
        import gzip

        self.asked.append(self.headers.get("Accept-Encoding", ""))
        body = gzip.compress(b"weights")
        self.send_response(200)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_compressed_answer_is_refused_not_expanded(tmp_path):
    from proml_sim.node.store import BlobStore

    digest = hashlib.sha256(b"weights").hexdigest()
    store = BlobStore(tmp_path / "s")
    _Gzipped.asked = []
    with _peer(_Gzipped) as url, pytest.raises(PeerError) as err:
        PeerFetcher([url], RequestSigner(b"\x01" * 32)).fetch_into(store, digest)
    assert _Gzipped.asked == ["identity"]
    assert "gzip-encoded" in str(err.value) and not store.has(digest)


class _Drip(http.server.BaseHTTPRequestHandler):
    """Drips its answer a byte at a time for up to 30 s: ``part`` "headers" (the header lines
    never end) or "error" (a 500 whose 4,000-byte body never ends)."""

    part = "headers"

    def do_GET(self) -> None:
        with contextlib.suppress(OSError):
            if self.part == "headers":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Drip: ")
            else:
                self.wfile.write(b"HTTP/1.1 500 Oops\r\nContent-Length: 4000\r\n\r\n{")
            for _ in range(300):
                self.wfile.write(b"a")
                self.wfile.flush()
                time.sleep(0.1)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("part", ["headers", "error"])
def test_a_peer_dripping_its_answer_is_cut_off(tmp_path, part):
    # each byte reset httpx's read timeout: a peer dripping its headers or its refusal held a
    # verification for hours
    from proml_sim.node.store import BlobStore

    _Drip.part = part
    with _peer(_Drip) as url, pytest.raises(PeerError) as err:
        PeerFetcher([url], RequestSigner(b"\x01" * 32), timeout=0.5).fetch_into(
            BlobStore(tmp_path / "s"), "ab" * 32)
    msg = str(err.value)
    if part == "headers":
        assert f"{url}: too slow (no complete answer within 1 s)" in msg, msg
    else:
        assert f"{url}: HTTP 500 (its reason was not sent within 1 s)" in msg, msg


class _Huge(http.server.BaseHTTPRequestHandler):
    """Declares a terabyte."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(10**12))
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_no_more_bytes_are_taken_than_declared_or_allowed(tmp_path):
    # an endless fast body filled 5.6 GB in 30 s before the disk reserve stopped it
    from proml_sim.node.store import BlobStore

    store = BlobStore(tmp_path / "s")
    with _peer(_Endless) as endless, _peer(_Huge) as huge, pytest.raises(PeerError) as err:
        PeerFetcher([endless, huge], RequestSigner(b"\x01" * 32),
                    max_bytes=5 << 20).fetch_into(store, "ab" * 32)
    msg = str(err.value)
    assert f"{endless}: sent more than the {5 << 20:,} bytes allowed" in msg, msg
    assert f"{huge}: declared {10**12:,} bytes, over the {5 << 20:,}" in msg, msg
    assert not [p for p in (tmp_path / "s" / "objects").rglob("*") if p.is_file()]


class _ControlRefusal(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"error": "no\x00 such\x1b[2J\x1b]0;owned\x07 blob"}).encode()
        self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_peers_text_reaches_no_terminal_raw(tmp_path):
    from proml_sim.node.store import BlobStore

    with _peer(_ControlRefusal) as url, pytest.raises(PeerError) as err:
        PeerFetcher([url], RequestSigner(b"\x01" * 32)).fetch_into(
            BlobStore(tmp_path / "s"), "ab" * 32)
    msg = str(err.value)
    assert f"{url}: HTTP 404 no such [2J ]0;owned blob" in msg, msg
    assert not any(not c.isprintable() for c in msg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_peer_down_or_serving_wrong_bytes_is_skipped(world, servers, tmp_path):
    bad = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _WrongBytes)
    threading.Thread(target=bad.serve_forever, daemon=True).start()
    try:
        down = f"http://127.0.0.1:{_free_port()}"
        wrong = f"http://127.0.0.1:{bad.server_address[1]}"
        digest = _digest_held_only_by(world, "bob")
        from proml_sim.node.store import BlobStore

        store = BlobStore(tmp_path / "store")
        signer = RequestSigner.of_node(world["vera"])
        fetcher = PeerFetcher([down, wrong, str(servers["bob"]["url"])], signer)
        assert fetcher.fetch_into(store, digest) == servers["bob"]["url"]
        assert list(store.digests()) == [digest]  # the wrong bytes were not kept
        assert store.get(digest)
        # only bad peers: a clear error naming each, nothing stored
        empty = BlobStore(tmp_path / "empty")
        with pytest.raises(PeerError) as err:
            PeerFetcher([down, wrong], signer).fetch_into(empty, digest)
        msg = str(err.value)
        assert "unreachable" in msg and "hash to" in msg and "nothing was stored" in msg
        assert list(empty.digests()) == []
        leftovers = list((tmp_path / "empty").rglob("*"))
        assert all(p.is_dir() for p in leftovers), leftovers
    finally:
        bad.shutdown()


# -- members only (in-process: the same app, driven by Starlette's test client) -----------------
@pytest.fixture
def app_client(world):
    node = ProMLNode.open(world["bob"].home)
    with TestClient(build_app(node, origins=[BASE]), base_url=BASE) as client:
        yield client, node


def _path(world: World) -> str:
    return f"/blobs/sha256/{_digest_held_only_by(world, 'bob')}"


def test_members_get_blobs_with_etag(world, app_client):
    client, _ = app_client
    path = _path(world)
    vera = RequestSigner.of_node(world["vera"])
    r = client.get(path, headers=vera.headers("GET", path, origin=BASE))
    assert r.status_code == 200
    digest = path.rsplit("/", 1)[1]
    import hashlib

    assert hashlib.sha256(r.content).hexdigest() == digest
    assert r.headers["etag"] == f'"{digest}"'
    r = client.head(path, headers=vera.headers("HEAD", path, origin=BASE))
    assert r.status_code == 200 and r.content == b""
    r = client.get(path, headers={**vera.headers("GET", path, origin=BASE),
                                  "If-None-Match": f'"{digest}"'})
    assert r.status_code == 304
    missing = "/blobs/sha256/" + "ab" * 32
    assert client.get(missing, headers=vera.headers("GET", missing, origin=BASE)).status_code == 404


def test_requests_refused(world, app_client):
    client, _ = app_client
    path = _path(world)
    vera = RequestSigner.of_node(world["vera"])
    outsider = RequestSigner(derive_private_keys("outsider", 1, namespace="x")[0])

    def status(headers: dict[str, str], p: str = path) -> tuple[int, str]:
        r = client.get(p, headers=headers)
        return r.status_code, r.json().get("error", "") if r.status_code != 200 else ""

    code, why = status({})
    assert code == 403 and "members only" in why
    forged = {**vera.headers("GET", path, origin=BASE),
              "X-ProML-Address": world["alice"].address}
    code, why = status(forged)
    assert code == 403 and "not by" in why
    code, why = status(outsider.headers("GET", path, origin=BASE))
    assert code == 403 and "holds no role" in why
    stale = vera.headers("GET", path, origin=BASE, timestamp=int(time.time()) - 3600)
    code, why = status(stale)
    assert code == 403 and "clock" in why
    other_path = vera.headers("GET", "/api/artefacts", origin=BASE)  # signed for another path
    code, why = status(other_path)
    assert code == 403
    once = vera.headers("GET", path, origin=BASE)
    assert status(once)[0] == 200
    code, why = status(once)
    assert code == 403 and "replay" in why
    garbage = {**vera.headers("GET", path, origin=BASE), "X-ProML-Signature": "0x1234"}
    assert status(garbage)[0] == 403
    # signed for another server: refused, naming the origin it was signed for
    elsewhere = vera.headers("GET", path, origin="http://127.0.0.1:9701")
    code, why = status(elsewhere)
    assert code == 403 and "signed for http://127.0.0.1:9701" in why
    # the origin inside the signature: changing the header breaks it
    moved = {**vera.headers("GET", path, origin="http://127.0.0.1:9701"),
             "X-ProML-Origin": BASE}
    code, why = status(moved)
    assert code == 403 and "not by" in why
    # the JSON API is members-only too
    assert client.get("/api/artefacts").status_code == 403
    assert client.get("/").status_code == 403


def test_outsider_visibility_is_a_setting(world):
    node = ProMLNode.open(world["bob"].home)
    node.config["serve"] = {"public": ["blobs"]}  # in memory only: the home is shared
    with TestClient(build_app(node, origins=[BASE]), base_url=BASE) as client:
        assert client.get(_path(world)).status_code == 200
        assert client.get("/api/artefacts").status_code == 403


def test_owner_link_opens_the_explorer_and_json_api(world, servers):
    # the ancestors' names come from their records, which bob fetches from his peers
    connect_peers(world, servers)
    node = ProMLNode.open(world["bob"].home)
    with TestClient(build_app(node, origins=[BASE]), base_url=BASE) as client:
        _check_owner_link(client)


def _check_owner_link(client):
    token = client.app.state.explorer.token
    assert client.get("/?token=wrong").status_code == 403
    r = client.get(f"/?token={token}")
    assert r.status_code == 200 and "clf" in r.text
    # the cookie is a session id, not the token; the link works once
    assert client.cookies["proml_session_80"] != token
    again = client.get(f"/api/node?token={token}")
    assert again.status_code == 403 and "already used" in again.json()["error"]
    assert "restart `proml serve`" in again.json()["error"]
    with TestClient(client.app, base_url=BASE, cookies={"proml_session_80": token}) as other:
        assert other.get("/api/artefacts").status_code == 403  # the token is no session
    rows = client.get("/api/artefacts").json()
    clf = next(a for a in rows if a["name"] == "clf")
    page = client.get(clf["href"])
    assert page.status_code == 200
    assert 'class="state current"' in page.text and 'data-state="verified"' in page.text
    data = client.get(f"/api/artefacts/Model/{clf['id']}").json()
    assert data["artefact"]["state"] == "verified"
    assert [h["step"] for h in data["history"]][:2] == ["register", "train"]
    assert {a["name"] for a in data["lineage"]["ancestors"]} >= {"iris", "wine"}
    unknown = client.get("/api/artefacts/Model/0x1234")
    assert unknown.status_code == 404 and "<home>" in unknown.json()["error"]
    home = str(client.app.state.explorer.node.home)
    assert home not in unknown.text  # no local path in an answer (the server's log has it)
    assert client.get("/api/artefacts/Nope/0x12").status_code == 404
    # a malformed request is the requester's error (400), not a missing artefact (404)
    bad = client.get("/api/artefacts/Model/zz")
    assert bad.status_code == 400 and "0x artefact id" in bad.json()["error"]
    bad = client.get(f"/api/artefacts/Model/{clf['id']}?version=1e3")
    assert bad.status_code == 400 and "whole number" in bad.json()["error"]


def test_loopback_only():
    from proml_sim.errors import NodeError

    assert check_loopback("127.0.0.1") == "127.0.0.1"
    assert check_loopback("::1") == "::1"
    for host in ("0.0.0.0", "192.168.1.4", "example.org"):
        with pytest.raises(NodeError, match="loopback"):
            check_loopback(host)


def test_short_load_has_no_error(world, servers):
    import asyncio

    from proml_sim.serve.bench import load

    info = servers["bob"]  # the fixture checks the clean stop of every server
    token = str(info["explorer"]).split("token=", 1)[1]
    signer = RequestSigner.of_node(world["vera"])  # a member
    blob = next(world["bob"].store.digests())
    r = asyncio.run(load(str(info["url"]), token, signer, blob, 20, 1.5))
    assert r["errors"] == 0, r["first_errors"]
    assert r["requests"] > 20
    assert set(r["by_kind"]) == {"blob", "api", "page"}
    assert 0 < r["p50_ms"] <= r["p99_ms"]


def test_env_is_test_session():
    assert os.environ.get("PROML_LIGHT_KDF") == "1"


# -- the explorer in a real browser (Debian's chromium, driven by Playwright) -------------------
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]


def test_explorer_in_a_browser(world, servers, tmp_path, capsys):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (`apt-get install -y "
                    "chromium`, as .ci/run does) to run the browser test")
    sync_api = pytest.importorskip("playwright.sync_api")
    connect_peers(world, servers)
    # the admin node produced no evidence: fetch it from the peers first (as `proml verify`
    # does), so its server's verify report can pass
    assert cli(["verify", "clf", "--home", str(world["admin"].home)]) == 0
    capsys.readouterr()
    link = str(servers["admin"]["explorer"])
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(accept_downloads=True)
            page.goto(link)
            assert page.title().startswith("ProML explorer")
            page.click("a.artefact:text-is('clf')")
            assert page.inner_text("#name") == "clf"
            assert page.inner_text("#state") == "verified"
            current = page.locator("#lifecycle g.state.current")
            assert current.count() == 1 and current.get_attribute("data-state") == "verified"
            steps = page.locator("#timeline tr").all_inner_texts()
            assert any("register" in s for s in steps) and any("verify" in s for s in steps)
            assert page.inner_text("#verdict") == "PASSED"
            assert page.locator("#checks td.fail").count() == 0
            # evidence downloads are links to the blob store
            href = page.locator("a.evidence").first.get_attribute("href")
            assert href and href.startswith("/blobs/sha256/")
            # the bundle download, verified offline
            with page.expect_download() as dl:
                page.click("#bundle")
            bundle = tmp_path / "from-browser.zip"
            dl.value.save_as(bundle)
            assert cli(["verify", "--bundle", str(bundle)]) == 0
            # follow the lineage to an ancestor, then back to a descendant
            page.click("#lineage a.lineage-node:has-text('iris')")
            assert page.inner_text("#name") == "iris"
            assert "Dataset" in page.inner_text("h1")
            page.click("#lineage a.lineage-node:has-text('clf')")
            assert page.inner_text("#name") == "clf"
            # outsiders (a fresh browser context: no cookie) see nothing
            other = browser.new_context().new_page()
            resp = other.goto(str(servers["admin"]["url"]) + "/")
            assert resp is not None and resp.status == 403
            assert "members only" in other.inner_text("#error")
        finally:
            browser.close()


class _Held(http.server.BaseHTTPRequestHandler):
    """Holds every request until ``release`` is set, then refuses it (404)."""

    asked = threading.Event()
    release = threading.Event()

    def do_GET(self) -> None:
        self.asked.set()
        self.release.wait(120)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_slow_peer_holds_only_the_request_that_needs_it(world, tmp_path):
    # the server fetched a missing blob holding its one lock: a slow peer froze /api/node and
    # every other request
    from proml_sim.node.store import BlobStore

    node = ProMLNode.open(world["vera"].home)
    node.store = BlobStore(tmp_path / "empty-store")  # in memory: a node that holds nothing
    clf = node.resolve("clf")
    _Held.asked, _Held.release = threading.Event(), threading.Event()
    with _peer(_Held) as held:
        node.config["replicas"] = [{"kind": "http", "url": held}]  # in memory only
        app = build_app(node, origins=[BASE], peer_signer=RequestSigner.of_node(node))
        with TestClient(app, base_url=BASE) as client:
            client.get(f"/?token={app.state.explorer.token}")
            page: list[int] = []
            slow = threading.Thread(target=lambda: page.append(
                client.get(f"/api/artefacts/Model/{clf.hex}").status_code))
            slow.start()
            try:
                assert _Held.asked.wait(60), "the artefact page asked no peer"
                others: list[int] = []
                fast = threading.Thread(target=lambda: others.extend(
                    client.get(p).status_code for p in ("/api/node", "/api/artefacts")))
                fast.start()
                fast.join(60)
                held_meanwhile = not _Held.release.is_set() and slow.is_alive()
                assert others == [200, 200] and held_meanwhile, others
            finally:
                _Held.release.set()
                slow.join(120)
                fast.join(60)
    assert page == [200]  # answered once the peer refused: a report naming the peer


def test_verify_names_the_peers_that_failed(world, tmp_path):
    from proml_sim.node.evidence import LiveSource
    from proml_sim.node.store import BlobStore
    from proml_sim.node.verify import verify

    node = ProMLNode.open(world["vera"].home)
    node.store = BlobStore(tmp_path / "empty-store")  # in memory: a node that holds nothing
    dead = f"http://127.0.0.1:{_free_port()}"
    node.config["replicas"] = [{"kind": "http", "url": dead}]  # in memory only
    report = verify(LiveSource(node), "clf")
    assert not report.ok
    bad = [c.detail for c in report.failures if "missing from" in c.detail]
    # the first blob names the failure; the rest say the dead peer was not asked again
    assert bad and f"{dead}: unreachable" in bad[0]
    assert all(f"{dead}: not asked again (unreachable" in d for d in bad[1:])
    assert list(node.store.digests()) == []  # nothing stored


def test_lineage_names_the_peers_that_failed(world, tmp_path, monkeypatch, capsys):
    # lineage showed ids instead of names, exit 0, and never said a peer had failed
    from proml_sim.node import cli_evidence
    from proml_sim.node.evidence import LiveSource
    from proml_sim.node.store import BlobStore

    node = ProMLNode.open(world["vera"].home)
    node.store = BlobStore(tmp_path / "empty-store")  # in memory: a node that holds nothing
    dead = f"http://127.0.0.1:{_free_port()}"
    node.config["replicas"] = [{"kind": "http", "url": dead}]  # in memory only
    monkeypatch.setattr(cli_evidence, "_live", lambda args: LiveSource(node))
    home = str(world["vera"].home)
    capsys.readouterr()
    assert cli(["lineage", "clf", "--home", home, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["unfetched"] and all(f"{dead}: unreachable" in u["reason"]
                                    or f"{dead}: not asked again (unreachable" in u["reason"]
                                    for u in out["unfetched"])
    assert cli(["lineage", "clf", "--home", home]) == 0
    notes = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("note: ")]
    assert notes and all(dead in ln for ln in notes)


class _SteadyTrickle(http.server.BaseHTTPRequestHandler):
    """Declares a huge blob and sends it steadily, above any minimum rate a test sets."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(10**9))
        self.end_headers()
        with contextlib.suppress(OSError):
            while True:
                self.wfile.write(bytes(4096))
                time.sleep(0.01)

    def log_message(self, *args: object) -> None:
        pass


def test_a_fetch_ends_at_its_deadline_and_a_dead_peer_is_not_asked_again(tmp_path):
    """A peer just above the minimum rate, declaring a huge blob, took days (the rate rule
    alone); a peer that timed out was asked again for every blob, so a command's time grew
    with peers times blobs."""
    from proml_sim.node.store import BlobStore

    with _peer(_SteadyTrickle) as url:
        f = PeerFetcher([url], RequestSigner(b"\x01" * 32), min_rate=1.0, deadline_s=1.5)
        with pytest.raises(PeerError) as err:
            f.fetch_into(BlobStore(tmp_path / "s"), "ab" * 32)
        assert f"{url}: not done within 2 s" in str(err.value), str(err.value)[:300]
        with pytest.raises(PeerError) as err:
            f.fetch_into(BlobStore(tmp_path / "s"), "cd" * 32)
        assert f"{url}: not asked again (not done within 2 s" in str(err.value)
    assert not list((tmp_path / "s").rglob("*.incoming*"))  # nothing half-written kept


@pytest.mark.parametrize(("serve", "said"), [
    ({"public": {"pages": False, "blobs": False}}, '"serve.public" must be a list of'),
    ({"public": 5}, '"serve.public" must be a list of'),
    ({"public": ["Pages"]}, '"serve.public" must be a list of'),
    ("yes", 'node.json "serve" must be an object'),
    ({"origins": ["evidence.example.org"]}, '"serve.origins" must be a list of URLs'),
    ({"origins": ["http://127.0.0.1:0"]}, "names port 0"),
    ({"fetch_deadline_s": 0}, '"serve.fetch_deadline_s" must be a positive number'),
    ({"max_fetch_bytes": 0}, '"serve.max_fetch_bytes" must be a positive whole number'),
])
def test_a_bad_serve_setting_stops_serve_at_start_named(world, tmp_path, serve, said, capsys):
    """A table of flags for serve.public was read as its keys: everything public; other
    values ended as an internal error, were ignored, or failed later at every request."""
    import shutil

    from proml_sim.cli import main
    from proml_sim.fsutil import atomic_write_json, parse_json

    shutil.copytree(world.root, tmp_path / "w", ignore=shutil.ignore_patterns("*.lock"))
    home = tmp_path / "w" / Path(world["bob"].home).relative_to(world.root)
    config = parse_json((home / "node.json").read_text())
    atomic_write_json(home / "node.json", {**config, "serve": serve})
    assert main(["serve", "--home", str(home), "--port", "0"]) == 2
    assert said in capsys.readouterr().err


def test_origins_name_one_server_in_one_spelling():
    from proml_sim.node.peers import origin_of

    assert origin_of("http://[0:0:0:0:0:0:0:1]:8765/x") == origin_of("http://[::1]:8765")
    assert origin_of("HTTP://127.0.0.1") == "http://127.0.0.1:80"
    with pytest.raises(NodeError, match="port 0"):
        origin_of("http://127.0.0.1:0")


def test_answers_name_no_local_path_even_from_a_relative_home(world, monkeypatch):
    """A verify report in a 200 answer named the store's path; with a relative home ("."),
    every "." of a message became "<home>"."""
    from proml_sim.serve.app import _without_paths

    monkeypatch.chdir(world["bob"].home)
    node = ProMLNode.open(".")
    assert _without_paths("version 1.5 is not e.g. whole", node) == \
        "version 1.5 is not e.g. whole"
    store = str(Path(node.store.root).resolve())
    assert _without_paths(f"missing from {store}/objects/ab", node) == \
        "missing from <store>/objects/ab"
    with TestClient(build_app(node, origins=[BASE]), base_url=BASE) as client:
        token = client.app.state.explorer.token
        assert client.get(f"/?token={token}").status_code == 200
        rows = client.get("/api/artefacts").json()
        data = client.get(f"/api/artefacts/Model/{rows[0]['id']}").text
        assert str(Path(world["bob"].home).resolve()) not in data
