"""The ProML node: provider layer (chain, keys, off-chain store) and service layer.

Names are imported on first use (PEP 562), so that registering the command line stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proml_sim._lazy import getattr_for, table

if TYPE_CHECKING:
    from proml_sim.node.records import FileRef, InputRef, Record
    from proml_sim.node.service import ArtefactRef, ProMLNode, StepHandle, name_salt
    from proml_sim.node.store import Blob, BlobStore, sha256_file

#: the module each public name lives in
_LAZY = table((
    ("proml_sim.node.records", "FileRef InputRef Record"),
    ("proml_sim.node.service", "ArtefactRef ProMLNode StepHandle name_salt"),
    ("proml_sim.node.store", "Blob BlobStore sha256_file"),
))
__getattr__ = getattr_for(__name__, _LAZY, globals())


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
