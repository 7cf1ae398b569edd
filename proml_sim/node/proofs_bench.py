"""Bundle size and proof-verification time at 100, 1,000 and 10,000 lifecycle events.

``python -m proml_sim.node.proofs_bench [SIZES...]`` builds, per size, a node whose Model
contract holds that many transitions (``bench.build_status_home``: registrations and ``train``
steps, 250 per block), bundles its first artefact (every event of the contract is in the
bundle; the steps' digests name no stored blob, so the bundle is made with ``allow_missing``),
then times, offline: loading the bundle, checking its proofs against the pinned head
(:func:`~proml_sim.node.proofs.check_proofs`), and the whole ``verify`` (replay included).
It prints one JSON object per size and the ratios of the largest size to the smallest.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from proml_sim.node.bench import build_status_home
from proml_sim.node.bundle import load_bundle, write_bundle
from proml_sim.node.evidence import LiveSource
from proml_sim.node.proofs import check_proofs
from proml_sim.node.service import ProMLNode
from proml_sim.node.verify import verify


def measure(events: int, directory: Path) -> dict[str, Any]:
    """Figures for one chain of ``events`` transitions built under ``directory``."""
    home = directory / f"n{events}"
    name = build_status_home(home, events)
    node = ProMLNode.open(home)
    pin = node.backend.head().hash
    t0 = time.perf_counter()
    path = write_bundle(LiveSource(node), name, directory / f"b{events}.zip", allow_missing=True)
    t_bundle = time.perf_counter() - t0
    with zipfile.ZipFile(path) as zf:
        proofs_raw = zf.getinfo("proofs.json").file_size
    t0 = time.perf_counter()
    b = load_bundle(path)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    checks = check_proofs(b.proofs, b.events(), b.contracts, checkpoint=pin)
    t_proofs = time.perf_counter() - t0
    failed = [c.detail for c in checks if not c.ok]
    t0 = time.perf_counter()
    verify(b, b.artefact)
    t_verify = time.perf_counter() - t0
    assert b.proofs is not None
    return {"events": len(b.events()), "blocks": len(b.proofs["headers"]),
            "receipt_blocks": len(b.proofs["receipts"]),
            "bundle_bytes": path.stat().st_size, "proofs_json_bytes": proofs_raw,
            "bundle_s": round(t_bundle, 3), "load_s": round(t_load, 3),
            "check_proofs_s": round(t_proofs, 3), "verify_rest_s": round(t_verify, 3),
            "proofs_ok": not failed, "failures": failed}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; sizes from ``argv`` (default 100 1000 10000)."""
    args = sys.argv[1:] if argv is None else argv
    sizes = [int(a) for a in args] or [100, 1000, 10_000]
    # throwaway homes in a temporary directory: their keystores need no secret passphrase
    os.environ.setdefault("PROML_PASSPHRASE", "proofs-bench")
    os.environ.setdefault("PROML_LIGHT_KDF", "1")
    with tempfile.TemporaryDirectory(prefix="proml-proofs-bench-") as tmp:
        rows = [measure(n, Path(tmp)) for n in sizes]
    for r in rows:
        print(json.dumps(r))
    lo, hi = rows[0], rows[-1]
    scale = hi["events"] / lo["events"]
    print(json.dumps({"ratio_events": round(scale, 1),
                      "ratio_bundle_bytes": round(hi["bundle_bytes"] / lo["bundle_bytes"], 1),
                      "ratio_check_proofs_s": round(hi["check_proofs_s"]
                                                    / max(lo["check_proofs_s"], 1e-6), 1)}))
    return 0 if all(r["proofs_ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
