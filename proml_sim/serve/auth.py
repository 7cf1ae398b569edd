"""Members only: who may read a node's evidence over HTTP.

A request carries an EIP-191 signature (``node/peers.py`` defines the signed message: method,
origin, path, time, nonce) made with the requester's chain key.  It is accepted when

* the origin it is signed for is one of this server's own (:func:`loopback_origins`, plus
  ``node.json``'s ``serve.origins`` for a reverse proxy): a peer cannot relay a request signed
  for it to another server,
* the signature recovers to the address it claims,
* its time is within :data:`WINDOW_S` of the server's clock,
* its nonce was not seen within the window (replays are refused), and
* the address is a member: it holds a role or a trust domain in one of the node's lifecycle
  contracts on chain (``roles_of`` / ``domain_of`` of the lifecycle clients).

What outsiders (unsigned requests) may see is ``node.json``'s ``"serve": {"public": [...]}``:
a list among ``"pages"`` (the explorer and the JSON API) and ``"blobs"``; default nothing.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from proml_sim.errors import AccessDenied, ProMLError
from proml_sim.node.peers import (
    ADDRESS_HEADER,
    NONCE_HEADER,
    ORIGIN_HEADER,
    SIGNATURE_HEADER,
    TIME_HEADER,
    origin_of,
    request_message,
    serve_settings,
)

#: seconds a signed request stays valid either side of the server's clock
WINDOW_S = 120
#: what outsiders may see (``node.json`` ``serve.public``)
PUBLIC_PARTS = ("pages", "blobs")
#: seconds a membership answer is reused (roles change by transactions, read again soon)
MEMBER_TTL_S = 5.0


class NonceCache:
    """Nonces seen within the time window, bounded (oldest dropped first)."""

    def __init__(self, window_s: float = WINDOW_S, limit: int = 100_000) -> None:
        self.window_s = window_s
        self.limit = limit
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: str, now: float) -> bool:
        """Record ``key``; False if it was already seen within the window."""
        with self._lock:
            while self._seen and (next(iter(self._seen.values())) < now - 2 * self.window_s
                                  or len(self._seen) >= self.limit):
                self._seen.popitem(last=False)
            if key in self._seen:
                return False
            self._seen[key] = now
            return True


def public_parts(config: Mapping[str, Any]) -> frozenset[str]:
    """What outsiders may see, from node.json (default nothing); :class:`NodeError` for
    anything but a list of :data:`PUBLIC_PARTS` (a table of flags was read as its keys: all
    public)."""
    from proml_sim.errors import NodeError

    parts = serve_settings(config).get("public", [])
    if not isinstance(parts, list) or not all(p in PUBLIC_PARTS for p in parts):
        raise NodeError(f'node.json "serve.public" must be a list of {" and ".join(PUBLIC_PARTS)} '
                        f"(what outsiders may see), not {parts!r:.60}; fix it in node.json")
    return frozenset(parts)


def loopback_origins(host: str, port: int) -> tuple[str, ...]:
    """The origins of a server listening on loopback ``host:port``: only the address it is
    bound to (the URL ``proml serve`` prints).  ``localhost`` and the other family's loopback
    address are left out: another process may listen on the same port there, and a request
    signed for it could be relayed here."""
    shown = f"[{host}]" if ":" in host else host
    return (origin_of(f"http://{shown}:{port}"),)


def configured_origins(config: Mapping[str, Any]) -> tuple[str, ...]:
    """``node.json``'s ``serve.origins``: the public URLs of a reverse proxy in front of the
    server (requests signed for them are accepted too); :class:`NodeError` if one is not an
    http(s) URL."""
    from proml_sim.errors import NodeError

    urls = serve_settings(config).get("origins", [])
    fix = 'node.json "serve.origins" must be a list of URLs, e.g. ["https://evidence.example.org"]'
    if not isinstance(urls, list):
        raise NodeError(fix)
    try:
        return tuple(origin_of(str(u)) for u in urls)
    except NodeError as exc:
        raise NodeError(f"{fix}: {exc}") from None


class Gate:
    """Checks signed requests against a node's chain (membership) and a nonce cache."""

    def __init__(self, node: Any, origins: Iterable[str], window_s: float = WINDOW_S,
                 chain_lock: threading.RLock | None = None) -> None:
        self.node = node
        #: the origins requests must be signed for (this server's own)
        self.origins = tuple(dict.fromkeys(origin_of(o) for o in origins))
        self.window_s = window_s
        self.nonces = NonceCache(window_s)
        self.public = public_parts(node.config)
        self._members: dict[str, tuple[float, bool]] = {}
        #: the lock that serialises chain access (the app's, shared with its other reads)
        self._chain_lock = chain_lock or threading.RLock()

    def is_member(self, address: str) -> bool:
        """True if ``address`` holds a role or a trust domain in one of the node's lifecycles."""
        if address.lower() == self.node.address.lower():
            return True  # the node itself (its own tools, the benchmark)
        now = time.monotonic()
        hit = self._members.get(address)
        if hit and now - hit[0] < MEMBER_TTL_S:
            return hit[1]
        with self._chain_lock:  # the chain backend is not shared between threads unguarded
            member = any(c.roles_of(address) or any(c.domain_of(address))
                         for c in self.node.clients.values())
        self._members[address] = (now, member)
        return member

    def check(self, method: str, path: str, headers: Mapping[str, str], part: str,
              now: float | None = None) -> str | None:
        """The member address a request is signed by, or None for an outsider allowed to see
        ``part``; :class:`AccessDenied` saying why otherwise."""
        sig = headers.get(SIGNATURE_HEADER)
        if sig is None:
            if part in self.public:
                return None
            raise AccessDenied(f"members only: sign the request with your node's chain key "
                               f"(headers {ADDRESS_HEADER}, {TIME_HEADER}, {NONCE_HEADER}, "
                               f"{SIGNATURE_HEADER}; `proml` peers do so)")
        claimed = headers.get(ADDRESS_HEADER, "")
        nonce = headers.get(NONCE_HEADER, "")
        signed_for = headers.get(ORIGIN_HEADER, "")
        try:
            origin = origin_of(signed_for)
        except ProMLError:
            raise AccessDenied(f"{ORIGIN_HEADER} must be the URL of the server addressed (as "
                               f"{self.origins[0] if self.origins else 'it is listed'}); "
                               "sign the request for it") from None
        if origin not in self.origins:
            raise AccessDenied(f"the request is signed for {_printable(origin)}, not for this "
                               f"server ({', '.join(self.origins)}): refused (a request relayed "
                               "by another server); add this server as a peer by the URL "
                               "`proml serve` prints")
        try:
            ts = int(headers.get(TIME_HEADER, ""))
        except ValueError:
            raise AccessDenied(f"{TIME_HEADER} must be a Unix time in seconds") from None
        now = time.time() if now is None else now
        if abs(now - ts) > self.window_s:
            raise AccessDenied(f"the request's time is {int(now - ts)} s off the server's clock "
                               f"(allowed {self.window_s} s); sync your clock and sign anew")
        if not 8 <= len(nonce) <= 128:
            raise AccessDenied(f"{NONCE_HEADER} must be 8 to 128 characters")
        try:
            from eth_account import Account
            from eth_account.messages import encode_defunct

            signer = Account.recover_message(
                encode_defunct(text=request_message(method, origin, path, ts, nonce)),
                signature=sig)
        except Exception:  # eth-account raises several types for a malformed signature
            raise AccessDenied("the request signature is malformed; sign it anew") from None
        if signer.lower() != claimed.lower():
            raise AccessDenied(f"the request is signed by {signer}, not by "
                               f"{claimed + ', ' if claimed else ''}the address it claims; sign "
                               "with the claimed key")
        if not self.is_member(signer):
            raise AccessDenied(f"{signer} holds no role or trust domain on this chain: members "
                               "only (ask a lifecycle admin for `proml grant`)")
        if not self.nonces.add(f"{signer}:{nonce}", now):
            raise AccessDenied("this request was already served (its nonce was seen): a replay "
                               "is refused; sign each request with a fresh nonce")
        return str(signer)


def _printable(text: str) -> str:
    """``text`` with control characters replaced (it came from the requester), at most 200."""
    return "".join(c if c.isprintable() else "?" for c in text)[:200]
