from __future__ import annotations

import json

from proml_sim.cli import main


def test_reproduce_smoke_writes_report_and_summary(tmp_path):
    assert main(["reproduce", "--profile", "smoke", "--out", str(tmp_path), "--seed", "3"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["paper"] == {"l1_s": 16, "l12_s": 150}
    assert summary["meta"]["seed"] == 3 and summary["meta"]["profile"] == "smoke"
    assert summary["gas"]["Model"]["registration"] > 0
    assert summary["scenario"]["final_states"] == {"dataset": "released", "model": "audited"}
    assert summary["scenario"]["replay_matches_state"] is True
    report = (tmp_path / "REPORT.md").read_text()
    assert "Gas per operation" in report and "e02_gas.png" in report
    assert (tmp_path / "e02_gas.png").read_bytes()[:4] == b"\x89PNG"
    csv_text = (tmp_path / "e02_gas.csv").read_text()
    assert csv_text.startswith("# seed: 3") and "fingerprints" in csv_text
    assert not list(tmp_path.glob("*.tmp"))
