"""The paper's 9-step workflow, for real, as a user would run it (a separate process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.mark.slow  # 45 s: a subprocess training models (CI runs it)
def test_paper_workflow_example(tmp_path):
    pytest.importorskip("sklearn", reason="the example needs the [examples] extra")
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "paper_workflow.py"),
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    r = json.loads((out / "result.json").read_text())
    assert len(r["steps"]) == 9 and r["final_state"] == "audited"
    assert r["verify_exit"] == 0, r["verify_report"]
    assert "FAIL" not in r["verify_report"]
    assert Path(r["lineage_png"]).read_bytes()[:4] == b"\x89PNG"
    import prov.model

    doc = prov.model.ProvDocument.deserialize(Path(r["prov"]), format="json")
    assert len(list(doc.get_records(prov.model.ProvActivity))) >= 9
    # dataset bytes tampered after registration: verify names the corrupted blob
    assert r["tampered_copies"] >= 1
    assert r["verify_after_tamper_exit"] == 1
    assert r["dataset_digest"] in r["verify_after_tamper_report"]
    assert "corrupted" in r["verify_after_tamper_report"]
