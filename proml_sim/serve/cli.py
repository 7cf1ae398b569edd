"""``proml serve`` and ``proml serve-bench``.  Parsers only here: the HTTP stack is imported
when a command runs, so ``proml --help`` stays fast."""

from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import sys
from typing import Any

from proml_sim.errors import NodeError

DEFAULT_PORT = 8765
#: seconds an idle client connection stays open
KEEP_ALIVE_S = 75


def check_loopback(host: str) -> str:
    """``host`` if it is a loopback address (``proml serve`` never listens beyond the machine:
    put a reverse proxy in front to publish it); :class:`NodeError` otherwise."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise NodeError(f"--host {host}: `proml serve` listens on loopback addresses only "
                    "(127.0.0.1 or ::1); publish it through a reverse proxy if you must")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise NodeError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another "
                        "--port (0: any free port)") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def cmd_serve(args: argparse.Namespace) -> int:
    from proml_sim.serve import require_stack

    require_stack()
    host = check_loopback(args.host)
    if not 0 <= args.port <= 65535:
        from proml_sim.errors import UsageError

        raise UsageError(f"argument --port: {args.port} is not a TCP port; give 0 to 65535")
    import uvicorn

    clean_stop_server = _clean_stop_server_class()
    from proml_sim.node.cli_keys import passphrase_of
    from proml_sim.node.peers import RequestSigner, fetch_deadline_s, max_fetch_bytes
    from proml_sim.node.service import ProMLNode
    from proml_sim.serve.app import build_app
    from proml_sim.serve.auth import configured_origins, loopback_origins, public_parts

    node = ProMLNode.open(args.home, passphrase=passphrase_of(args))
    for setting in (public_parts, configured_origins, max_fetch_bytes, fetch_deadline_s):
        setting(node.config)  # a bad node.json "serve" entry stops it here, named (exit 2)
    # unlocked once, now: the server signs its peer requests with the node's chain key
    signer = RequestSigner.of_node(node)
    sock = bind(host, args.port)
    port = sock.getsockname()[1]
    try:  # members sign for this very address (a request signed for another is refused)
        app = build_app(node, origins=loopback_origins(host, port), peer_signer=signer)
    except BaseException:
        sock.close()
        raise
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    token = app.state.explorer.token
    info = {"url": url, "explorer": f"{url}/?token={token}", "node": node.name,
            "domain": node.domain, "address": node.address, "peers": node.peer_urls()}
    if args.json:
        print(json.dumps(info), flush=True)
    else:
        print(f"serving node {node.name} ({node.domain}) at {url}\n"
              f"explorer (this link logs you in once; keep it private): {info['explorer']}\n"
              "stop with Ctrl-C", flush=True)
    # keep-alive longer than clients' (httpx: 5 s, like uvicorn's default): with equal
    # timeouts a client may reuse a connection the server is closing
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=5, timeout_keep_alive=KEEP_ALIVE_S)
    server = clean_stop_server(config)
    server.run(sockets=[sock])
    sock.close()
    if not args.json:
        print("stopped", flush=True)
    return 0


def _clean_stop_server_class() -> type:
    import uvicorn

    class CleanStop(uvicorn.Server):
        """uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown (the process then dies
        by the signal); a stop asked for is a normal end here: exit status 0."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            self._captured_signals.clear()

    return CleanStop


def cmd_serve_bench(args: argparse.Namespace) -> int:
    from proml_sim.serve import require_stack

    require_stack()
    from proml_sim.serve.bench import format_bench, run_bench

    result = run_bench(args.home, clients=args.clients, duration=args.duration)
    print(json.dumps(result, indent=2) if args.json else format_bench(result))
    return 0 if result["errors"] == 0 else 1


def register(sub: Any) -> None:
    """Add ``serve`` and ``serve-bench`` to the top-level ``proml`` subparsers."""
    import proml_sim.cliargs as cliargs
    from proml_sim.node.cli_keys import add_passphrase_option

    p = sub.add_parser("serve", help="serve this node's evidence over HTTP to other members' "
                       "nodes (signed requests) and the explorer web pages (loopback only)")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on "
                   "(default 127.0.0.1)")
    p.add_argument("--port", type=cliargs.non_negative_int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT}; 0: any free port, printed)")
    p.add_argument("--json", action="store_true", help="print the URLs as one JSON line")
    add_passphrase_option(p)  # the key is unlocked once, at start, to sign peer requests
    cliargs.global_options(p, home=True)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("serve-bench", help="load benchmark of `proml serve` on loopback: N "
                       "concurrent clients for D seconds; p50/p99 latency and requests/s")
    p.add_argument("--clients", type=cliargs.positive_int, default=200,
                   help="concurrent clients (default 200)")
    p.add_argument("--duration", type=cliargs.positive_float, default=30.0,
                   help="seconds (default 30, at most 600)")
    p.add_argument("--json", action="store_true", help="machine-readable result")
    cliargs.global_options(p, home=True)
    p.set_defaults(func=cmd_serve_bench)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `proml serve`")
