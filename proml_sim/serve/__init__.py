"""``proml serve``: a node's evidence over HTTP, for other members' nodes and for people.

* ``app.py``     the ASGI application (Starlette): blobs, the JSON API, the explorer pages
* ``auth.py``    members only: signed requests checked against on-chain roles and domains
* ``diagram.py`` the lifecycle diagram as server-side SVG (current state highlighted)
* ``cli.py``     ``proml serve`` and ``proml serve-bench``
* ``bench.py``   the loopback load benchmark

The HTTP stack (starlette, uvicorn, httpx, jinja2) is an optional extra (``pip install
'proml-sim[serve]'``), imported only here and only when a command needs it, so ``proml --help``
stays fast.  The client side of peer fetches lives in ``node/peers.py`` (the node fetches).
"""

from __future__ import annotations

from proml_sim.errors import NodeError


def require_stack() -> None:
    """Fail with an install hint when the HTTP stack is missing."""
    missing = []
    for mod in ("starlette", "uvicorn", "httpx", "jinja2"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        raise NodeError(f"`proml serve` needs {', '.join(missing)}; install them with "
                        "pip install 'proml-sim[serve]'")
