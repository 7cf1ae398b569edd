"""Load benchmark of ``proml serve`` on loopback (``proml serve-bench``).

Starts ``proml serve`` on the home in a child process (any free loopback port), then runs
``clients`` concurrent clients (asyncio + httpx) for ``duration`` seconds, each looping over a
mix of requests a member and a person make: a signed blob download (the signature is checked
and the blob re-hashed on every request), the artefact list (JSON) and the explorer's index
page.  Reports requests/s, p50/p99 latency and every error; finally stops the server with
SIGTERM and checks that it exits cleanly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from proml_sim.errors import NodeError
from proml_sim.fsutil import parse_json


def _percentile(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return 0.0
    i = min(len(sorted_vals) - 1, max(0, round(q * (len(sorted_vals) - 1))))
    return sorted_vals[i]


def spawn_server(home: str | Path, *, env: dict[str, str] | None = None
                 ) -> subprocess.Popen[str]:
    """``proml serve --port 0 --json`` on ``home`` in a child process (see :func:`ready`)."""
    return subprocess.Popen(
        [sys.executable, "-m", "proml_sim.cli", "serve", "--home", str(home), "--port", "0",
         "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})})


def ready(proc: subprocess.Popen[str], home: str | Path, timeout: float = 60.0
          ) -> dict[str, Any]:
    """The URLs a spawned server prints once it listens; :class:`NodeError` if it failed."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        err = proc.stderr.read() if proc.stderr else ""
        proc.wait(timeout)
        raise NodeError(f"`proml serve --home {home}` did not start: {err.strip()}")
    info: dict[str, Any] = parse_json(line)
    return info


def start_server(home: str | Path, *, env: dict[str, str] | None = None
                 ) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """``proml serve --port 0 --json`` on ``home`` in a child process; (process, its URLs)."""
    proc = spawn_server(home, env=env)
    return proc, ready(proc, home)


def stop_server(proc: subprocess.Popen[str], timeout: float = 20.0, *,
                terminate: bool = True) -> int:
    """SIGTERM (unless already sent: a second one could land after the server restored the
    default handler), then wait; the exit code (0 = a clean stop)."""
    if terminate and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return -9


async def load(url: str, token: str, signer: Any, blob: str | None, clients: int,
                duration: float) -> dict[str, Any]:
    """``clients`` concurrent clients on a running server for ``duration`` seconds (the
    figures of :func:`run_bench`, without starting or stopping the server)."""
    import httpx

    lat: list[float] = []
    per_kind: dict[str, list[float]] = {"blob": [], "api": [], "page": []}
    errors: list[str] = []
    stop_at = time.perf_counter() + duration
    # idle connections are dropped by the client well before the server's keep-alive ends
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients,
                          keepalive_expiry=20.0)
    # members sign (no cookie: every blob request's signature is checked); the person's pages
    # go with the session cookie the login link (``token``, single-use) sets
    async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as member, \
            httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as person:
        login = await person.get("/", params={"token": token})
        if login.status_code != 303:
            raise NodeError(f"the explorer login link was refused (HTTP {login.status_code}): "
                            "it works once; restart `proml serve` for a new one")
        async def client(i: int) -> None:
            n = i
            while time.perf_counter() < stop_at:
                kind = n % 3
                n += 1
                t0 = time.perf_counter()
                try:
                    if kind == 0 and blob:
                        path = f"/blobs/sha256/{blob}"
                        r = await member.get(path, headers=signer.headers("GET", path, origin=url))
                    elif kind == 1:
                        r = await person.get("/api/artefacts")
                    else:
                        r = await person.get("/")
                    if r.status_code != 200:
                        errors.append(f"HTTP {r.status_code} {r.request.url.path}")
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                took = time.perf_counter() - t0
                lat.append(took)
                per_kind["blob" if kind == 0 and blob else "api" if kind == 1 else "page"].append(
                    took)

        t0 = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(clients)))
        wall = time.perf_counter() - t0
    lat.sort()
    kinds = {}
    for k, vals in per_kind.items():
        if vals:
            vals.sort()
            kinds[k] = {"requests": len(vals), "p50_ms": round(1000 * _percentile(vals, 0.5), 1),
                        "p99_ms": round(1000 * _percentile(vals, 0.99), 1)}
    return {"by_kind": kinds, "requests": len(lat), "errors": len(errors),
            "first_errors": errors[:5],
            "seconds": round(wall, 2), "requests_per_s": round(len(lat) / wall, 1),
            "p50_ms": round(1000 * _percentile(lat, 0.5), 1),
            "p99_ms": round(1000 * _percentile(lat, 0.99), 1)}


def run_bench(home: str | Path, *, clients: int = 200, duration: float = 30.0
              ) -> dict[str, Any]:
    """Serve ``home`` in a child process and load it; the figures (see the module doc)."""
    if clients < 1 or not 0 < duration <= 600:
        raise NodeError("serve-bench needs --clients >= 1 and 0 < --duration <= 600")
    from proml_sim.node.peers import RequestSigner
    from proml_sim.node.service import ProMLNode

    node = ProMLNode.open(home)
    signer = RequestSigner.of_node(node)  # requests signed as the node itself (a member)
    blob = next(iter(node.store.digests()), None)
    proc, info = start_server(home)
    try:
        url = info["url"]
        token = info["explorer"].split("token=", 1)[1]
        result = asyncio.run(load(url, token, signer, blob, clients, duration))
    finally:
        code = stop_server(proc)
    result.update(clients=clients, duration_s=duration, clean_stop=code == 0,
                  mix="signed blob GET, /api/artefacts, / (explorer)" if blob
                  else "/api/artefacts, / (explorer)")
    if code != 0:
        result["errors"] += 1
        result["first_errors"].append(f"the server exited with {code} on SIGTERM")
    return result


def format_bench(r: dict[str, Any]) -> str:
    """The human summary of :func:`run_bench`."""
    lines = [f"proml serve under load: {r['clients']} concurrent clients for "
             f"{r['duration_s']:g} s on loopback ({r['mix']})",
             f"  {r['requests']} requests, {r['requests_per_s']} requests/s, "
             f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, {r['errors']} errors, "
             f"clean stop: {'yes' if r['clean_stop'] else 'NO'}"]
    lines += [f"  {k}: {v['requests']} requests, p50 {v['p50_ms']} ms, p99 {v['p99_ms']} ms"
              for k, v in r["by_kind"].items()]
    lines += [f"  error: {e}" for e in r["first_errors"]]
    return "\n".join(lines)
