"""Private-branch attackers, reorgs of any depth on the engine, finality rules, the race check."""

from __future__ import annotations

import pytest

from proml_sim.ir import replay
from proml_sim.sim import World, get_profile
from proml_sim.sim.forks import (
    ConfirmationPolicy,
    PrivateBranch,
    final_height,
    nakamoto,
    pow_final_depth,
    rosenfeld,
    run_races,
)
from proml_sim.sim.world import SimBlock
from proml_sim.threats.metrics import wilson
from tests.unit.sim.helpers import stream_world


def test_published_values():
    # Rosenfeld (2014) exact and the Bitcoin paper's section 11 table
    assert rosenfeld(0.3, 10) == pytest.approx(0.0651, abs=5e-5)
    assert nakamoto(0.3, 10) == pytest.approx(0.0416605, abs=1e-6)
    assert nakamoto(0.1, 1) == pytest.approx(0.2045873, abs=1e-7)
    assert nakamoto(0.1, 5) == pytest.approx(0.0009137, abs=1e-7)
    assert rosenfeld(0.1, 1) == pytest.approx(0.2)  # 2q at one confirmation
    assert rosenfeld(0.3, 0) == 1.0 and rosenfeld(0.5, 3) == 1.0
    # the Poisson approximation underestimates the risk at depth
    assert all(nakamoto(q, z) < rosenfeld(q, z) for q in (0.1, 0.3) for z in range(4, 11))
    assert pow_final_depth(0.1, 1e-3) == 6
    with pytest.raises(ValueError, match="share"):
        rosenfeld(1.5, 1)


@pytest.mark.parametrize(("q", "z"), [(0.3, 2), (0.3, 6), (0.1, 1)])
def test_races_on_the_world_match_rosenfeld(q, z):
    """A bounded version of E7's check: a few hundred races through World's PoW loop; the
    exact value lies in a loose (99.9 %) Wilson interval."""
    wins, n, w = run_races(q, z, 400, seed=11)
    est = wilson(wins, n, z=3.29)
    assert est.lo <= rosenfeld(q, z) <= est.hi, (wins, n, rosenfeld(q, z))
    assert w.stats["reorgs"] == wins  # every won race is one reorg on the world's chain


def test_deep_reorg_reverts_and_reexecutes_engine_state():
    prof = get_profile("ropsten-2022").with_(stale_rate=0.0, empty_block_rate=0.0)
    atk = PrivateBranch(0.45, confirmations=4, censor=frozenset({"domain000"}))
    w = stream_world(seed=5, profile=prof, horizon=1500, rate=1 / 15, attacker=atk)
    won = [r for r in atk.races if r.success]
    assert won and max(r.depth for r in won) >= 4 and w.stats["max_reorg_depth"] >= 4
    assert w.stats["max_reorg_depth"] == max(w.reorg_depths)
    # the engine's chain is exactly the canonical chain: orphaned blocks were reverted and the
    # attacker's branch executed, block by block
    mat = [b for b in w.canon if b.number != -1]
    assert [b.number for b in mat] == list(range(mat[0].number, mat[0].number + len(mat)))
    assert w.backend.head().number == mat[-1].number
    for b in mat[-20:]:
        assert set(w.backend.block(b.number).tx_hashes) == {t.hash for t in b.txs}
    client = w.clients["Model"]
    assert replay(client.ir, client.events()) == client.snapshot()
    for mid in w.test_ids:
        hist = client.history(mid)
        assert [h.version for h in hist] == list(range(1, len(hist) + 1))
    # the censored team's records were taken out by deep reorgs, and the rows say how deep
    deep = [r for r in w.monitor.rows if r["reorg_depth"] >= 4]
    assert "domain000" in {r["domain"] for r in deep}
    assert all(r["outcome"] in ("ok", "pending") for r in deep)
    # the attacker's blocks never carry the censored domain's records; others' they re-include
    domain = {r["tx"]: r["domain"] for r in w.monitor.rows}
    theirs = [domain[h.hex()] for b in w.canon if b.producer == "attacker" and b.number != -1
              for h in w.backend.block(b.number).tx_hashes]
    assert theirs and "domain000" not in theirs


def test_no_attacker_no_change_and_invalid_share():
    w = stream_world(seed=2, profile="ropsten-2022", horizon=300)
    assert w.stats["max_reorg_depth"] <= 1 and w.attacker is None
    with pytest.raises(ValueError, match="share"):
        PrivateBranch(1.0)


def _chain(slots=None, producers=None) -> list[SimBlock]:
    n = len(slots or producers)
    return [SimBlock(h + 1, -1, 0.0, (producers or ["p"] * n)[h], "eu", [],
                     slot=(slots or list(range(1, n + 1)))[h]) for h in range(n)]


def test_pos_finality_counts_epochs_with_missed_slots():
    prof = get_profile("ethereum-pos")  # 32-slot epochs, two epochs
    slots = [s for s in range(1, 130) if s % 7]  # every 7th slot missed
    chain = _chain(slots=slots)
    # head in epoch 4 (slot 129 -> 128..): final are blocks in epochs 0 and 1 (slot < 64)
    assert final_height(prof, chain) == sum(1 for s in slots if s < 64)
    # the first block of epoch 3 finalises epoch 0 (epochs 1 and 2 justified on top of it)
    assert final_height(prof, chain[: sum(1 for s in slots if s < 96) + 1]) == sum(
        1 for s in slots if s < 32)
    assert final_height(prof, chain[: sum(1 for s in slots if s < 96)]) == 0
    assert final_height(prof, chain[:40]) == 0
    # more than a third of the stake withholding votes: nothing is justified, nothing final
    assert final_height(prof, chain, attacker_share=0.34) == 0


def test_poa_finality_needs_a_majority_of_signers_on_top():
    prof = get_profile("poa-clique")  # 5 signers: 3 distinct ones on top
    chain = _chain(producers=["a", "b", "c", "d", "e", "a"])
    assert final_height(prof, chain) == 3  # d, e, a sealed on top of block 3
    chain = _chain(producers=["a", "b", "c", "c", "c", "b"])
    assert final_height(prof, chain) == 0 + 0  # on top of block 1: b, c only
    chain = _chain(producers=["a", "b", "a", "b", "c"])
    assert final_height(prof, chain) == 2  # a, b, c on top of block 2


def test_confirmation_policies():
    prof = get_profile("ropsten-2022")
    chain = _chain(producers=["p"] * 10)
    assert ConfirmationPolicy.parse("L@3").satisfied(prof, chain, 8)
    assert not ConfirmationPolicy.parse("L@4").satisfied(prof, chain, 8)
    fin = ConfirmationPolicy.parse("finalised")
    assert fin.name == "finalised" and ConfirmationPolicy.parse("12").name == "L@12"
    assert fin.satisfied(prof, chain, 5) and not fin.satisfied(prof, chain, 6)  # depth 6
    for bad in ("L@0", "soon", "L@x"):
        with pytest.raises(ValueError, match="policy"):
            ConfirmationPolicy.parse(bad)


def test_minority_cannot_reorg_pos_or_clique():
    """LMD-GHOST weight and clique's signer limit: a minority's private branch never wins."""
    atk = PrivateBranch(0.3, confirmations=1)
    w = stream_world(seed=4, profile="ethereum-pos", horizon=900, rate=1 / 30, attacker=atk)
    assert atk.races and not any(r.success for r in atk.races)
    assert w.stats["missed_slots"] > 10  # its withheld proposals are missed slots
    assert any(r["final"] is not None for r in w.monitor.rows)  # honest 70 % still finalises
    # 2 of 5 clique signers: the signer limit stalls their branch at 2 blocks (difficulty <= 4);
    # it wins only when honest out-of-turn blocks (difficulty 1) made the honest branch
    # lighter, so at most 3 honest blocks deep, never below a final block (3 signers on top)
    prof = get_profile("poa-clique").with_(sealer_offline_rate=0.3)
    atk = PrivateBranch(0.4, confirmations=1)
    w = stream_world(seed=4, profile=prof, horizon=900, rate=1 / 30, attacker=atk)
    assert atk.races and max(r.private for r in atk.races) <= 2
    won = [r for r in atk.races if r.success]
    assert won and max(r.depth for r in won) <= 3 and w.stats["final_reverted"] == 0


def test_world_stats_on_honest_pos_finality():
    w = World(seed=1, profile="ethereum-pos")
    assert w.stats["reorgs"] == 0 and w.attacker is None


def test_e07_writes_race_check_tradeoff_and_figure(tmp_path, monkeypatch):
    """E7 end to end on a tiny grid: the keys reproduce reads, the CSVs and the figure."""
    from experiments import e07_forks
    from experiments.common import ExperimentConfig

    monkeypatch.setitem(e07_forks.SIZES, "smoke", {"races": 60, "c1_seeds": 1,
                                                   "c1_records_s": 200, "c2_seeds": 1})
    monkeypatch.setattr(e07_forks, "ZS", (0, 2))
    monkeypatch.setattr(e07_forks, "C1_GRID", (("ropsten-2022", (0.3,), ("L@1", "finalised"),
                                                 3.0),))
    monkeypatch.setattr(e07_forks, "C2_EQUIVOCATORS", (1,))
    r = e07_forks.main(ExperimentConfig(out=tmp_path))
    assert len(r["race"]) == 4 and r["race_summary"]["points"] == 4
    assert all(x["races"] == 60 and x["lo"] - 1e-9 <= x["measured"] <= x["hi"] + 1e-9
               for x in r["race"])
    assert [x["measured"] for x in r["race"] if x["z"] == 0] == [1.0, 1.0]
    cell = r["forks"]["ropsten-2022"]["0.3"]["L@1"]["C1"]
    assert cell["trials"] > 0 and cell["asr_lo"] <= cell["asr"] <= cell["asr_hi"]
    c2 = r["forks"]["poa-clique"]["0.2"]
    assert c2["finalised"]["C2"]["asr"] == 1.0 and c2["checkpoint"]["C2"]["asr"] == 0.0
    for f in ("e07_race.csv", "e07_forks.csv", "e07_forks.json", "e07_forks.png"):
        assert (tmp_path / f).stat().st_size > 0
