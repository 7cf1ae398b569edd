"""Fetching missing blobs from other domains' nodes over HTTP (``proml serve`` peers).

A node's ``node.json`` lists its HTTP peers among its replicas (``{"kind": "http", "url":
...}``, added with ``proml replica add URL``).  When verification, a bundle or lineage needs a
blob the node lacks, :class:`PeerFetcher` asks each peer in turn for
``GET /blobs/sha256/<hex>``, signed with the node's chain key (:func:`sign_headers`), streams the
answer into the store and keeps it only if its bytes hash to the digest asked for.  A peer that
is down, refuses, or serves other bytes is skipped with a note; nothing unverified is stored.

The request signature (EIP-191 ``personal_sign``) covers :func:`request_message`: method, the
origin addressed (:func:`origin_of`: ``scheme://host:port``), path, time and a random nonce.
The origin binds a request to the server it is meant for: a peer that receives it cannot replay
it to another server (that server accepts only its own origins).  The server side
(``proml_sim/serve/auth.py``) recovers the signer from the same message, so this module holds
the one definition of what is signed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from proml_sim.errors import BlobCorrupted, NodeError, PeerError
from proml_sim.fsutil import parse_json

#: request headers carrying the signature
ADDRESS_HEADER = "X-ProML-Address"
TIME_HEADER = "X-ProML-Time"
NONCE_HEADER = "X-ProML-Nonce"
SIGNATURE_HEADER = "X-ProML-Signature"
#: the origin the request is signed for (also inside the signed text)
ORIGIN_HEADER = "X-ProML-Origin"
#: seconds a peer request may take (connect and between chunks)
TIMEOUT_S = 10.0
#: once GRACE_S have passed, a peer must have sent at least MIN_RATE bytes per second on average:
#: each byte resets the read timeout, so a peer trickling a byte a second held a verification
#: forever
MIN_RATE = 32 * 1024
GRACE_S = 30.0
#: an answer's status and headers (or a refusal's reason) must arrive within this many times
#: TIMEOUT_S
HEADERS_FACTOR = 2.0
#: the most bytes a blob from a peer may have (node.json ``serve.max_fetch_bytes``), whatever
#: it declares: a peer sending without end is stopped there
MAX_BLOB_BYTES = 64 << 30
#: the longest one blob's fetch from one peer may take (node.json ``serve.fetch_deadline_s``):
#: a peer sending just above MIN_RATE with a huge Content-Length took days
FETCH_DEADLINE_S = 3600.0


def request_message(method: str, origin: str, path: str, timestamp: int, nonce: str) -> str:
    """The text a peer request signs (EIP-191 personal message): ``origin`` is the server
    addressed (:func:`origin_of`), ``path`` includes the query string, if any."""
    return (f"proml-serve request\n{method.upper()}\n{origin_of(origin)}\n{path}\n{timestamp}"
            f"\n{nonce}")


def origin_of(url: str) -> str:
    """The origin of ``url``, normalised: ``scheme://host:port`` with a lowercase scheme and
    host, the port explicit (80/443 by default) and an IPv6 host in brackets; :class:`NodeError`
    if it is not an http(s) URL."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise NodeError(f"{url!r} is not an http(s) URL; give e.g. http://127.0.0.1:8765")
    scheme, host = parts.scheme.lower(), parts.hostname.lower()
    if port == 0:
        raise NodeError(f"{url!r} names port 0, which no server listens on; give its port")
    port = port if port is not None else (443 if scheme == "https" else 80)
    with contextlib.suppress(ValueError):  # an IP literal in one spelling ([0:0::1] is [::1])
        host = str(ipaddress.ip_address(host))
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


class RequestSigner:
    """Signs peer requests with a node's chain key (unlocked once, when made)."""

    def __init__(self, private_key: bytes) -> None:
        from eth_account import Account

        self._account = Account.from_key(private_key)
        self.address: str = self._account.address

    @classmethod
    def of_node(cls, node: Any) -> RequestSigner:
        """The signer of a :class:`~proml_sim.node.service.ProMLNode` (unlocks its key: the
        passphrase sources of ``node/keys.py``)."""
        return cls(node.key.private_key())

    def headers(self, method: str, path: str, *, origin: str, timestamp: int | None = None,
                nonce: str | None = None) -> dict[str, str]:
        """The signature headers of one request to the server at ``origin`` (its URL)."""
        from eth_account.messages import encode_defunct

        ts = int(time.time()) if timestamp is None else timestamp
        nonce = nonce or os.urandom(16).hex()
        origin = origin_of(origin)
        msg = encode_defunct(text=request_message(method, origin, path, ts, nonce))
        sig = self._account.sign_message(msg).signature.hex()
        return {ADDRESS_HEADER: self.address, ORIGIN_HEADER: origin, TIME_HEADER: str(ts),
                NONCE_HEADER: nonce, SIGNATURE_HEADER: sig if sig.startswith("0x") else "0x" + sig}


def check_peer_url(url: str) -> str:
    """A peer URL, normalised (no trailing slash); :class:`NodeError` if it is not http(s)."""
    try:
        origin_of(url)
    except NodeError:
        raise NodeError(f"peer {url!r} is not an http(s) URL; give e.g. http://127.0.0.1:8765"
                        ) from None
    return url.rstrip("/")


class PeerFetcher:
    """Fetches blobs from HTTP peers into a store, hash-checked before anything is kept.

    Every request is bounded: its answer must start (status and headers, or a refusal's
    reason) within :attr:`headers_s`, a blob's bytes must keep :attr:`min_rate` on average
    after :attr:`grace_s` (a watchdog closes the connection of a peer that drips bytes so no
    read times out), no more bytes are taken than the peer declared nor than :attr:`max_bytes`,
    and only identity-encoded bodies are taken (a compressed one would expand on disk)."""

    def __init__(self, urls: Sequence[str], signer: RequestSigner | Any,
                 timeout: float = TIMEOUT_S, *, min_rate: float = MIN_RATE,
                 grace_s: float = GRACE_S, max_bytes: int = MAX_BLOB_BYTES,
                 headers_s: float | None = None,
                 deadline_s: float = FETCH_DEADLINE_S) -> None:
        self.urls = [check_peer_url(u) for u in urls]
        self._signer = signer
        self.timeout = timeout
        self.min_rate, self.grace_s = min_rate, grace_s
        self.max_bytes = max_bytes
        self.headers_s = HEADERS_FACTOR * timeout if headers_s is None else headers_s
        self.deadline_s = deadline_s
        #: what each failed attempt said, for the error message and ``--json`` output
        self.notes: list[str] = []
        #: peers that timed out or could not be reached: not asked again by this fetcher (each
        #: cost up to headers_s per blob, so a command's time grew with peers times blobs)
        self.dead: dict[str, str] = {}

    def _signer_now(self) -> RequestSigner:
        # a callable defers unlocking the key until a blob is really missing
        if not isinstance(self._signer, RequestSigner):
            self._signer = self._signer()
        return self._signer

    def fetch_into(self, store: Any, digest: str) -> str:
        """Fetch blob ``digest`` from the first peer serving its true bytes into ``store`` (a
        :class:`~proml_sim.node.store.BlobStore`); returns the peer's URL.  :class:`PeerError`
        naming every peer's failure if none could."""
        path = f"/blobs/sha256/{digest}"
        tried: list[str] = []
        for url in self.urls:
            if url in self.dead:
                tried.append(f"{url}: not asked again ({self.dead[url]})")
                continue
            try:
                self._fetch_one(store, url, path, digest)
                return url
            except _Refused as exc:  # nothing was kept
                tried.append(printable(f"{url}: {exc}"))
                if exc.dead:
                    self.dead[url] = printable(str(exc))[:200]
        self.notes.extend(tried)
        raise PeerError(f"blob {digest} is held by no peer that could serve it ("
                        + "; ".join(tried) + "); start a peer that holds it (`proml serve`) or "
                        "add one with `proml replica add URL`")

    def _fetch_one(self, store: Any, url: str, path: str, digest: str) -> None:
        """One peer's attempt; :class:`_Refused` saying why it failed (nothing kept)."""
        import httpx

        dog = _Watchdog(self.headers_s, self.deadline_s)
        try:
            with httpx.Client(timeout=self.timeout) as http:
                headers = {**self._signer_now().headers("GET", path, origin=url),
                           "Accept-Encoding": "identity"}
                with http.stream("GET", url + path, headers=headers,
                                 extensions={"trace": dog.trace}) as resp:
                    if resp.status_code != 200:
                        raise _Refused(f"HTTP {resp.status_code} {_reason(resp, dog)}".rstrip())
                    encoding = resp.headers.get("content-encoding", "identity").strip().lower()
                    if encoding not in ("", "identity"):
                        raise _Refused(f"sent the blob {encoding}-encoded, not as its bytes "
                                       "(asked for identity); nothing was kept")
                    limit = self._limit(resp.headers.get("content-length"))
                    dog.body_started(self.grace_s, self.min_rate, self.timeout)
                    store.put_stream(self._paced(resp.iter_raw(), dog, limit), expect=digest)
        except httpx.HTTPError as exc:
            if dog.expired:
                raise _Refused(dog.why(), dead=True) from None
            raise _Refused(f"unreachable ({type(exc).__name__}: {exc})", dead=True) from None
        except _TooSlow as exc:
            raise _Refused(str(exc), dead=exc.slow) from None
        except BlobCorrupted as exc:
            raise _Refused(str(exc)) from None
        finally:
            dog.stop()

    def _limit(self, declared: str | None) -> int:
        """The most bytes taken: the Content-Length the peer declared, at most
        :attr:`max_bytes`; :class:`_Refused` if it declares more."""
        if declared is None:
            return self.max_bytes
        try:
            length = int(declared)
        except ValueError:
            raise _Refused(f"declared a Content-Length of {printable(declared)[:40]!r}, not a "
                           "number; nothing was kept") from None
        if length > self.max_bytes:
            raise _Refused(f"declared {length:,} bytes, over the {self.max_bytes:,} a peer blob "
                           "may have (node.json serve.max_fetch_bytes); nothing was kept")
        return length

    def _paced(self, chunks: Iterator[bytes], dog: _Watchdog | None = None,
               limit: int | None = None) -> Iterator[bytes]:
        """``chunks`` as they arrive, stopped (:class:`_TooSlow`) once :attr:`grace_s` have
        passed and the peer's average rate is under :attr:`min_rate` bytes per second, or once
        more than ``limit`` bytes came."""
        start, received = time.monotonic(), 0
        for chunk in chunks:
            received += len(chunk)
            if dog is not None:
                dog.received = received
            if limit is not None and received > limit:
                raise _TooSlow(f"sent more than the {limit:,} bytes allowed (its Content-Length "
                               "or node.json serve.max_fetch_bytes); nothing was kept")
            elapsed = time.monotonic() - start
            if elapsed > self.grace_s and received < self.min_rate * elapsed:
                raise _TooSlow(f"too slow ({received:,} bytes in {elapsed:.0f} s, under "
                               f"{self.min_rate:,.0f} bytes/s); nothing was kept", slow=True)
            yield chunk


class _Refused(Exception):
    """One peer's attempt failed (the next peer is asked); nothing was kept.  ``dead``: it
    timed out or could not be reached (not asked again by the same fetcher)."""

    def __init__(self, message: str, *, dead: bool = False) -> None:
        super().__init__(message)
        self.dead = dead


class _Watchdog:
    """Closes a request's connection once its deadline passes: the answer must start within
    ``headers_s``; then a blob must keep the minimum rate (:meth:`body_started`).  Each byte
    resets httpx's read timeout, which is all it has: a peer dripping header bytes or a refusal
    slowly held a verification for hours."""

    def __init__(self, headers_s: float, deadline_s: float = FETCH_DEADLINE_S) -> None:
        self.start = time.monotonic()
        self.headers_s = headers_s
        self.deadline_s = deadline_s
        self.received = 0
        self.expired = False
        self._body: tuple[float, float, float, float] | None = None
        self._sock: Any = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: keeps the connection's socket."""
        if event == "connection.connect_tcp.complete" and info.get("return_value") is not None:
            self._sock = info["return_value"].get_extra_info("socket")

    def body_started(self, grace_s: float, min_rate: float, slack: float) -> None:
        self._body = (time.monotonic(), grace_s, min_rate, slack)

    def deadline(self) -> float:
        if self._body is None:
            return self.start + self.headers_s
        began, grace_s, min_rate, slack = self._body
        return min(began + max(grace_s, self.received / min_rate) + slack,
                   self.start + self.deadline_s)

    def why(self) -> str:
        if self._body is None:
            return (f"too slow (no complete answer within {self.headers_s:.0f} s); nothing "
                    "was kept")
        if time.monotonic() > self.start + self.deadline_s:
            return (f"not done within {self.deadline_s:.0f} s ({self.received:,} bytes; "
                    "node.json serve.fetch_deadline_s); nothing was kept")
        return (f"too slow ({self.received:,} bytes in {time.monotonic() - self._body[0]:.0f} "
                f"s, under {self._body[2]:,.0f} bytes/s); nothing was kept")

    def _watch(self) -> None:
        while not self._done.wait(min(0.25, self.headers_s / 4)):
            if time.monotonic() > self.deadline():
                self.expired = True
                if self._sock is not None:
                    with contextlib.suppress(OSError):
                        self._sock.shutdown(socket.SHUT_RDWR)
                return

    def stop(self) -> None:
        self._done.set()


class _TooSlow(Exception):
    """A peer sends a blob slower than :attr:`PeerFetcher.min_rate` (``slow``), or more bytes
    than allowed (the next peer is asked)."""

    def __init__(self, message: str, *, slow: bool = False) -> None:
        super().__init__(message)
        self.slow = slow


#: what is read of a refusal's body for its reason: the server's own errors are one short line;
#: another peer's body, of any size or nesting, costs no more than this
REASON_BYTES = 4096


def _reason(resp: Any, dog: _Watchdog | None = None) -> str:
    """The ``error`` of a refusal's JSON body (the first :data:`REASON_BYTES`), else ''."""
    import httpx

    head = b""
    try:
        for chunk in resp.iter_raw(REASON_BYTES):
            head += chunk
            if len(head) >= REASON_BYTES:
                return ""  # longer than any refusal this project sends: not a reason to quote
    except httpx.HTTPError:  # cut short (by the watchdog, or the peer): no reason to quote
        return (f"(its reason was not sent within {dog.headers_s:.0f} s)"
                if dog is not None and dog.expired else "")
    try:
        body = parse_json(head)
    except (ValueError, UnicodeDecodeError):
        return ""
    return printable(str(body.get("error", "")))[:300] if isinstance(body, dict) else ""


def printable(text: str) -> str:
    """``text`` (from a peer) fit to show: control characters (NUL, ESC...) and runs of
    whitespace become one space."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def serve_settings(config: Any) -> dict[str, Any]:
    """``node.json``'s ``serve`` object (default empty); :class:`NodeError` if it is none: the
    one reader of it, for the server's settings (``serve/auth.py``) and the fetcher's."""
    serve = config.get("serve")
    if serve is None:
        return {}
    if not isinstance(serve, dict):
        raise NodeError('node.json "serve" must be an object, e.g. {"public": ["pages"]}; fix '
                        "it in node.json")
    return serve


def _positive(config: Any, name: str, default: float, whole: bool, unit: str) -> Any:
    """``serve.<name>`` of node.json, a positive finite number (a whole one if ``whole``)."""
    import math

    value = serve_settings(config).get(name, default)
    ok = not isinstance(value, bool) and isinstance(value, int if whole else int | float)
    try:
        ok = ok and value > 0 and math.isfinite(float(value))
    except OverflowError:  # an int past the floats: a whole count still, no time in seconds
        ok = whole
    if not ok:
        kind = "whole number" if whole else "number"
        raise NodeError(f'node.json "serve.{name}" must be a positive {kind} of {unit} '
                        f"(default {f'{default:,}' if whole else f'{default:g}'}); fix it in "
                        "node.json")
    return value


def fetch_deadline_s(config: Any) -> float:
    """``node.json``'s ``serve.fetch_deadline_s`` (default :data:`FETCH_DEADLINE_S`)."""
    return float(_positive(config, "fetch_deadline_s", FETCH_DEADLINE_S, False, "seconds"))


def max_fetch_bytes(config: Any) -> int:
    """``node.json``'s ``serve.max_fetch_bytes`` (default :data:`MAX_BLOB_BYTES`)."""
    return int(_positive(config, "max_fetch_bytes", MAX_BLOB_BYTES, True, "bytes"))
