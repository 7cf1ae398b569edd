"""The threat catalogue as data: one TOML file per scenario in ``threat_models/``, validated.

A bad file raises :class:`CatalogueError` naming the file, the field and the fix.  Fields::

    id = "T1"                      # unique, matches the file name
    title = "..."
    stride = ["T"]                 # letters of S, T, R, I, D, E
    attacker_role = "DA"           # actor code from THREATS.md (O, DA, L, MD, V, A, C, BP, N)
    attacker_domain = "data-co"
    capabilities = ["..."]         # what the attacker can do
    keys_held = ["..."]            # keys the attacker holds
    preconditions = ["..."]
    steps = ["..."]
    defence = "..."
    oracle = "..."                 # how a run decides whether the attack succeeded
    metrics = ["asr", ...]         # from METRICS
    seeds = 20                     # default number of seeds
    [expected]                     # expected verdicts
    baseline = "detected"          # prevented | detected | documented_limit | out_of_scope
    proml = "prevented"
    [parameters]                   # scenario-specific knobs (optional)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proml_sim.errors import ProMLError

STRIDE = frozenset("STRIDE")
ACTORS = frozenset({"O", "DA", "L", "MD", "V", "A", "C", "BP", "N"})
VERDICTS = ("prevented", "detected", "documented_limit", "out_of_scope")
METRICS = frozenset({
    "asr", "detection_rate", "precision", "ttd_s", "time_to_revoke_s", "damage",
    "blast_radius", "attribution", "integrity_violations", "asr_by_c", "double_record_rate",
    "censorship_delay_s", "gas", "availability", "consumers_exposed", "latency_cost_s",
    "completion_rate", "stall_detect_s", "wrong_decisions", "recall",
})
REQUIRED: dict[str, type | tuple[type, ...]] = {
    "id": str, "title": str, "stride": list, "attacker_role": str, "attacker_domain": str,
    "capabilities": list, "keys_held": list, "preconditions": list, "steps": list,
    "defence": str, "oracle": str, "metrics": list, "expected": dict,
}


class CatalogueError(ProMLError, ValueError):
    """A threat-model file is invalid."""


@dataclass(frozen=True)
class ThreatModel:
    id: str
    title: str
    stride: tuple[str, ...]
    attacker_role: str
    attacker_domain: str
    capabilities: tuple[str, ...]
    keys_held: tuple[str, ...]
    preconditions: tuple[str, ...]
    steps: tuple[str, ...]
    defence: str
    oracle: str
    metrics: tuple[str, ...]
    expected_baseline: str
    expected_proml: str
    seeds: int = 20
    parameters: dict[str, Any] = field(default_factory=dict)
    path: str = ""


def _err(path: Path, fld: str, problem: str, fix: str) -> CatalogueError:
    return CatalogueError(f"{path}: field '{fld}' {problem}; {fix}")


def load_threat(path: str | Path) -> ThreatModel:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{path}: not valid TOML ({exc}); fix the syntax") from exc
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot be read ({exc})") from exc
    for fld, typ in REQUIRED.items():
        if fld not in data:
            raise _err(path, fld, "is missing", f"add `{fld} = ...` (see threat_models/README)")
        if not isinstance(data[fld], typ):
            raise _err(path, fld, f"has type {type(data[fld]).__name__}",
                       f"make it a {getattr(typ, '__name__', typ)}")
    unknown = set(data) - set(REQUIRED) - {"seeds", "parameters"}
    if unknown:
        raise _err(path, sorted(unknown)[0], "is not a known field",
                   f"remove it or use one of {sorted(REQUIRED)}, seeds, parameters")
    if data["id"] != path.stem:
        raise _err(path, "id", f"is {data['id']!r} but the file is {path.name}",
                   f"rename the file to {data['id']}.toml or fix the id")
    bad = [s for s in data["stride"] if s not in STRIDE]
    if not data["stride"] or bad:
        raise _err(path, "stride", f"has {bad or 'no letters'}",
                   "use letters from S, T, R, I, D, E")
    if data["attacker_role"] not in ACTORS:
        raise _err(path, "attacker_role", f"is {data['attacker_role']!r}",
                   f"use one of {sorted(ACTORS)}")
    bad = [m for m in data["metrics"] if m not in METRICS]
    if not data["metrics"] or bad:
        raise _err(path, "metrics", f"has unknown metrics {bad}", f"use {sorted(METRICS)}")
    exp = data["expected"]
    for side in ("baseline", "proml"):
        if exp.get(side) not in VERDICTS:
            raise _err(path, f"expected.{side}", f"is {exp.get(side)!r}",
                       f"use one of {', '.join(VERDICTS)}")
    seeds = data.get("seeds", 20)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise _err(path, "seeds", f"is {seeds!r}", "use a positive integer")
    params = data.get("parameters", {})
    if not isinstance(params, dict):
        raise _err(path, "parameters", "is not a table", "write it as [parameters]")
    for fld in ("capabilities", "keys_held", "preconditions", "steps"):
        if not all(isinstance(x, str) for x in data[fld]):
            raise _err(path, fld, "has non-text entries", "make every entry a string")
    return ThreatModel(
        id=data["id"], title=data["title"], stride=tuple(data["stride"]),
        attacker_role=data["attacker_role"], attacker_domain=data["attacker_domain"],
        capabilities=tuple(data["capabilities"]), keys_held=tuple(data["keys_held"]),
        preconditions=tuple(data["preconditions"]), steps=tuple(data["steps"]),
        defence=data["defence"], oracle=data["oracle"], metrics=tuple(data["metrics"]),
        expected_baseline=exp["baseline"], expected_proml=exp["proml"], seeds=seeds,
        parameters=params, path=str(path),
    )


def catalogue_dir() -> Path:
    """``threat_models/`` of the repository (or ``$PROML_THREAT_MODELS``)."""
    import os

    env = os.environ.get("PROML_THREAT_MODELS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "threat_models"


def load_catalogue(directory: str | Path | None = None) -> dict[str, ThreatModel]:
    d = Path(directory) if directory else catalogue_dir()
    files = sorted(d.glob("*.toml"))
    if not files:
        raise CatalogueError(f"no threat models (*.toml) in {d}; set PROML_THREAT_MODELS")
    out = {}
    for f in files:
        tm = load_threat(f)
        out[tm.id] = tm
    order = "TSRDC"  # THREATS.md's order: tampering, spoofing, repudiation, DoS, consensus
    return dict(sorted(out.items(), key=lambda kv: (order.find(kv[0][0]) % 10, kv[0][0],
                                                    int(kv[0][1:]) if kv[0][1:].isdigit() else 0)))
