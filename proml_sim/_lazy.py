"""Names of a package imported on first use (PEP 562), one mechanism for every ``__init__``.

The command line builds its parser from modules whose packages re-export heavy names (py-evm,
vyper, eth-account take ~1 s together); importing them only when a name is used keeps
``proml --help`` and read-only commands fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any


def table(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``{name: module}`` from ``(module, "name name ...")`` pairs."""
    return {name: module for module, names in pairs for name in names.split()}


def getattr_for(package: str, names: dict[str, str], namespace: MutableMapping[str, Any]
                ) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``names`` maps each public name to the module
    that defines it; the value is imported on first use and stored in ``namespace`` (the
    package's ``globals()``), so later lookups skip ``__getattr__``."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
