"""Shared experiment plumbing: configs, provenance of every output file, atomic writes."""

from __future__ import annotations

import csv
import io
import json
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from proml_sim.artifacts import write_atomic
from proml_sim.ir import build_ir
from proml_sim.lifecycles import PAPER_LIFECYCLES

PROFILES = ("smoke", "paper")


@dataclass(frozen=True)
class ExperimentConfig:
    """What every experiment receives.  ``profile``: ``smoke`` (CI-sized) or ``paper``."""

    out: Path
    profile: str = "smoke"
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; use one of {PROFILES}")


def provenance(config: ExperimentConfig) -> dict[str, Any]:
    """Seed, profile and IR fingerprints that every data file carries."""
    import vyper

    from proml_sim import __version__

    return {
        "seed": config.seed,
        "profile": config.profile,
        "fingerprints": {c.__name__: build_ir(c).fingerprint() for c in PAPER_LIFECYCLES},
        "proml_sim": __version__,
        "vyper": vyper.__version__,
        "python": platform.python_version(),
    }


def write_json(path: Path, obj: Any) -> Path:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    return path


def write_csv(path: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> Path:
    """CSV with ``# key: value`` provenance lines first, then a header and the rows."""
    buf = io.StringIO()
    for k, v in meta.items():
        buf.write(f"# {k}: {json.dumps(v, sort_keys=True)}\n")
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    write_atomic(path, buf.getvalue())
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")]
    return list(csv.DictReader(lines))


def save_figure(fig: Any, path: Path, dpi: int = 120) -> Path:
    """Save a matplotlib figure atomically (temporary file, then rename) and close it."""
    import matplotlib.pyplot as plt

    from proml_sim.fsutil import atomic_write_with

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return atomic_write_with(path, lambda fh: fig.savefig(fh, format=path.suffix[1:],
                                                              dpi=dpi))
    finally:
        plt.close(fig)


def as_dict(config: ExperimentConfig) -> dict[str, Any]:
    d = asdict(config)
    d["out"] = str(config.out)
    return d
