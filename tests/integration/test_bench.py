"""``proml bench`` over several engines: JSON shape, ratios, usage errors."""

from __future__ import annotations

import json

import pytest

from proml_sim.cli import main


def test_bench_reports_every_engine_and_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "--engine", "revm", "--engine", "pyevm", "--n", "40", "--per-block", "20",
            "--baseline-n", "3", "--workers", "2", "--json"]
    assert main(argv) == 0
    res = json.loads(capsys.readouterr().out)
    assert list(res["engines"]) == ["revm", "pyevm"]
    for name, e in res["engines"].items():
        assert e["tx_per_s"] > 0 and e["sign_tx_per_s"] > 0 and e["blocks"] == 2
        assert e["transitions"] == 40 and res["ratio"][name] > 0
    assert res["engines"]["revm"]["workers"] == 2
    cpu = res["engines"]["revm"]["cpu"]  # where the CPU goes, and the ceiling it implies
    assert cpu["recovery_us_per_tx"] > 0 and cpu["sequential_us_per_tx"] > 0
    per_tx = (cpu["recovery_us_per_tx"] + cpu["sequential_us_per_tx"]) / 1e6
    assert cpu["ceiling_tx_per_s"] <= min(1e6 / cpu["sequential_us_per_tx"],
                                          cpu["cpus"] / per_tx) * 1.01
    assert "cpu" not in res["engines"]["pyevm"]
    assert res["baseline"]["tx_per_s"] > 0


def test_bench_on_a_node(anvil_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "--engine", "rpc", "--rpc-url", anvil_url, "--n", "6", "--per-block", "3",
            "--baseline-n", "2", "--json"]
    assert main(argv) == 0
    res = json.loads(capsys.readouterr().out)
    assert list(res["engines"]) == ["rpc"] and res["engines"]["rpc"]["blocks"] == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--engine", "rpc"], "--rpc-url"),
        (["--workers", "-1"], "--workers"),
    ],
)
def test_bench_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", *argv]) == 2
    assert message in capsys.readouterr().err
