"""Engine names and one factory, for command lines and configs (``--engine pyevm|revm|rpc``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from proml_sim.chain.base import ChainBackend

__all__ = ["ENGINES", "IN_PROCESS_ENGINES", "make_backend"]

ENGINES = ("pyevm", "revm", "rpc")
"""Every engine :func:`make_backend` knows."""
IN_PROCESS_ENGINES = ("pyevm", "revm")
"""The engines that need no external node."""


def make_backend(
    engine: str, *, funded: Iterable[str] = (), rpc_url: str | None = None, **kw: Any
) -> ChainBackend:
    """A fresh backend of the named engine with ``funded`` accounts.

    ``pyevm`` and ``revm`` run in process and take the keywords of
    :class:`~proml_sim.chain.pyevm.PyEVMBackend` (``chain_id``, ``gas_limit``,
    ``genesis_timestamp``, ``balance_wei``; ``revm`` also ``workers``).  ``rpc`` drives the
    Ethereum JSON-RPC node at ``rpc_url`` (see :class:`~proml_sim.chain.rpc.RPCBackend`): a
    development node that mines on request (anvil, hardhat), else
    :class:`~proml_sim.errors.EngineError`.
    """
    if engine == "pyevm":
        _no_url(engine, rpc_url)
        from proml_sim.chain.pyevm import PyEVMBackend

        return PyEVMBackend(funded=funded, **kw)
    if engine == "revm":
        _no_url(engine, rpc_url)
        from proml_sim.chain.revm import RevmBackend

        return RevmBackend(funded=funded, **kw)
    if engine == "rpc":
        if not rpc_url:
            raise ValueError(
                "engine 'rpc' needs the URL of an Ethereum JSON-RPC node: pass --rpc-url URL "
                "(rpc_url=...), e.g. http://127.0.0.1:8545 for a local anvil"
            )
        from proml_sim.chain.rpc import RPCBackend

        return RPCBackend(rpc_url, funded=funded, **kw)  # drives it: a development node
    raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


def _no_url(engine: str, rpc_url: str | None) -> None:
    if rpc_url:
        raise ValueError(f"engine {engine!r} runs in process and takes no rpc_url; use 'rpc'")
