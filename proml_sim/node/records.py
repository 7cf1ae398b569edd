"""Off-chain provenance records: what a lifecycle step consumed, produced and how.

A record is canonical JSON (sorted keys, no whitespace) stored in the node's blob store; its
SHA-256 is the evidence digest the transaction carries on chain.  So the chain commits to the
record, and the record commits (by digest) to every output and input file, the parameters, the
code and the environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

from proml_sim.fsutil import parse_json

RECORD_FORMAT = 1
#: Packages whose versions are captured as the environment (when installed), plus those named
#: in ``$PROML_ENV_PACKAGES`` (comma-separated): what ``proml lineage --affected-by`` can find.
ENV_PACKAGES = ("proml-sim", "numpy", "scikit-learn", "scipy", "pandas", "torch", "vyper",
                "py-evm", "tensorflow", "keras", "jax", "transformers", "xgboost", "lightgbm",
                "pillow", "onnx", "onnxruntime")


@dataclass(frozen=True)
class FileRef:
    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class InputRef:
    """An input artefact at the version the step consumed, and that version's evidence."""

    artefact: str  # 0x id
    lifecycle: str
    version: int
    evidence: str  # hex digest of the input's record at that version


@dataclass(frozen=True)
class Record:
    lifecycle: str
    step: str  # "register" or a transition name
    artefact: str | None  # 0x id (None for a registration: the id is known after it)
    name: str | None
    actor: str
    node: str
    domain: str
    time: str
    inputs: tuple[InputRef, ...] = ()
    input_files: tuple[FileRef, ...] = ()
    outputs: tuple[FileRef, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    code: FileRef | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    format: int = RECORD_FORMAT

    def canonical(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=True, default=str).encode()

    def digest(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    @classmethod
    def from_bytes(cls, data: bytes) -> Record:
        d = parse_json(data)
        if d.get("format") != RECORD_FORMAT:
            raise ValueError(f"record format {d.get('format')!r} is not {RECORD_FORMAT}")
        return cls(
            lifecycle=d["lifecycle"], step=d["step"], artefact=d["artefact"], name=d["name"],
            actor=d["actor"], node=d["node"], domain=d["domain"], time=d["time"],
            inputs=tuple(InputRef(**i) for i in d["inputs"]),
            input_files=tuple(FileRef(**f) for f in d["input_files"]),
            outputs=tuple(FileRef(**f) for f in d["outputs"]),
            params=d["params"], code=FileRef(**d["code"]) if d["code"] else None,
            environment=d["environment"],
        )


def environment() -> dict[str, Any]:
    """Python, platform and the versions of relevant installed packages."""
    pkgs = {}
    extra = [n.strip() for n in os.environ.get("PROML_ENV_PACKAGES", "").split(",")]
    for name in dict.fromkeys([*ENV_PACKAGES, *(n for n in extra if n)]):
        try:
            pkgs[name] = metadata.version(name)
        except (metadata.PackageNotFoundError, ValueError):  # not installed, or not a name
            continue
    return {"python": sys.version.split()[0], "platform": platform.platform(terse=True),
            "packages": pkgs}
