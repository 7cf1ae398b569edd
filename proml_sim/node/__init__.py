"""The ProML node: provider layer (chain, keys, off-chain store) and service layer."""

from proml_sim.node.records import FileRef, InputRef, Record
from proml_sim.node.service import ArtefactRef, ProMLNode, StepHandle, name_salt
from proml_sim.node.store import Blob, BlobStore, sha256_file

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
