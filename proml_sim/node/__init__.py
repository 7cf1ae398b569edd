"""The ProML node: provider layer (chain, keys, off-chain store) and service layer.

Names are imported on first use (PEP 562), so that registering the command line stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from proml_sim.node.records import FileRef, InputRef, Record
    from proml_sim.node.service import ArtefactRef, ProMLNode, StepHandle, name_salt
    from proml_sim.node.store import Blob, BlobStore, sha256_file

#: the module each public name lives in
_LAZY = {
    name: module
    for module, names in (
        ("proml_sim.node.records", "FileRef InputRef Record"),
        ("proml_sim.node.service", "ArtefactRef ProMLNode StepHandle name_salt"),
        ("proml_sim.node.store", "Blob BlobStore sha256_file"),
    )
    for name in names.split()
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'proml_sim.node' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


__all__ = [
    "ArtefactRef",
    "Blob",
    "BlobStore",
    "FileRef",
    "InputRef",
    "ProMLNode",
    "Record",
    "StepHandle",
    "name_salt",
    "sha256_file",
]
