"""``proml node-bench``'s chain figures: homes of a given size, and the status timing keys."""

from __future__ import annotations

from proml_sim.chain.journal import JournaledChain
from proml_sim.node.bench import build_status_home, status_bench, status_text
from proml_sim.node.service import ProMLNode


def test_status_home_holds_the_transitions(tmp_path):
    name = build_status_home(tmp_path / "h", 25, per_block=7)
    node = ProMLNode.open(tmp_path / "h")
    st = node.status(name)
    assert st["state"] == "trained"
    assert st["steps"] + node.status("m1")["steps"] == 25  # two artefacts share 25 transitions
    chain = JournaledChain(tmp_path / "h" / "chain")
    model = node.config["contracts"]["Model"]
    assert len(chain.logs(model)) >= 25  # one event per transition at least


def test_status_bench_keys(tmp_path):
    res = status_bench((2, 12), runs=1)
    assert set(res["status_s"]) == {"2", "12"} and res["help_s"] > 0
    assert res["ratio"] == round(res["status_s"]["12"] / res["status_s"]["2"], 2)
    assert res["status_cpu_s"]["2"] > 0 and res["help_cpu_s"] > 0 and res["cpu_ratio"] > 0
    assert res["blocks"]["12"] >= res["blocks"]["2"] and res["open_ms"]["2"] > 0
    assert "ratio largest/smallest" in status_text(res)
