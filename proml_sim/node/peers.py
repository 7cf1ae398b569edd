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

import os
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
    port = port or (443 if scheme == "https" else 80)
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
    """Fetches blobs from HTTP peers into a store, hash-checked before anything is kept."""

    def __init__(self, urls: Sequence[str], signer: RequestSigner | Any,
                 timeout: float = TIMEOUT_S, *, min_rate: float = MIN_RATE,
                 grace_s: float = GRACE_S) -> None:
        self.urls = [check_peer_url(u) for u in urls]
        self._signer = signer
        self.timeout = timeout
        self.min_rate, self.grace_s = min_rate, grace_s
        #: what each failed attempt said, for the error message and ``--json`` output
        self.notes: list[str] = []

    def _signer_now(self) -> RequestSigner:
        # a callable defers unlocking the key until a blob is really missing
        if not isinstance(self._signer, RequestSigner):
            self._signer = self._signer()
        return self._signer

    def fetch_into(self, store: Any, digest: str) -> str:
        """Fetch blob ``digest`` from the first peer serving its true bytes into ``store`` (a
        :class:`~proml_sim.node.store.BlobStore`); returns the peer's URL.  :class:`PeerError`
        naming every peer's failure if none could."""
        import httpx

        path = f"/blobs/sha256/{digest}"
        tried: list[str] = []
        with httpx.Client(timeout=self.timeout) as http:
            for url in self.urls:
                try:
                    headers = self._signer_now().headers("GET", path, origin=url)
                    with http.stream("GET", url + path, headers=headers) as resp:
                        if resp.status_code != 200:
                            tried.append(f"{url}: HTTP {resp.status_code} {_reason(resp)}")
                            continue
                        store.put_stream(self._paced(resp.iter_bytes()), expect=digest)
                    return url
                except httpx.HTTPError as exc:
                    tried.append(f"{url}: unreachable ({type(exc).__name__}: {exc})")
                except (BlobCorrupted, _TooSlow) as exc:  # nothing was kept
                    tried.append(f"{url}: {exc}")
        self.notes.extend(tried)
        raise PeerError(f"blob {digest} is held by no peer that could serve it ("
                        + "; ".join(tried) + "); start a peer that holds it (`proml serve`) or "
                        "add one with `proml replica add URL`")

    def _paced(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """``chunks`` as they arrive, stopped (:class:`_TooSlow`) once :attr:`grace_s` have
        passed and the peer's average rate is under :attr:`min_rate` bytes per second."""
        start, received = time.monotonic(), 0
        for chunk in chunks:
            received += len(chunk)
            elapsed = time.monotonic() - start
            if elapsed > self.grace_s and received < self.min_rate * elapsed:
                raise _TooSlow(f"too slow ({received:,} bytes in {elapsed:.0f} s, under "
                               f"{self.min_rate:,.0f} bytes/s); nothing was kept")
            yield chunk


class _TooSlow(Exception):
    """A peer sends a blob slower than :attr:`PeerFetcher.min_rate` (the next peer is asked)."""


#: what is read of a refusal's body for its reason: the server's own errors are one short line;
#: another peer's body, of any size or nesting, costs no more than this
REASON_BYTES = 4096


def _reason(resp: Any) -> str:
    """The ``error`` of a refusal's JSON body (the first :data:`REASON_BYTES`), else ''."""
    head = b""
    for chunk in resp.iter_bytes(REASON_BYTES):
        head += chunk
        if len(head) >= REASON_BYTES:
            return ""  # longer than any refusal this project sends: not a reason to quote
    try:
        body = parse_json(head)
    except (ValueError, UnicodeDecodeError):
        return ""
    return " ".join(str(body.get("error", "")).split())[:300] if isinstance(body, dict) else ""
