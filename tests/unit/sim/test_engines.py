"""The simulator on every engine (py-evm, revm, a JSON-RPC node), and the block building and
transaction reading that the world does itself, checked against simple reference versions."""

from __future__ import annotations

import random
from typing import Any

import pytest
import rlp
from hypothesis import given, settings
from hypothesis import strategies as st

from proml_sim.chain.accounts import Signer, derive_private_keys
from proml_sim.errors import EngineError
from proml_sim.sim import Producer, SimTx, World, get_profile
from proml_sim.sim.scenario import StreamScenario, run_streams
from proml_sim.sim.world import _type2_nonce_tip_gas

#: reorgs on every engine: stale blocks that lose half the time
REORGS = get_profile("ropsten-2022").with_(name="ropsten-stale", stale_rate=0.4,
                                           empty_block_rate=0.1)


def _rows(engine: str, rpc_url: str | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    w, stats = run_streams(StreamScenario(REORGS, teams=3, hours=0.25, per_hour=120, seed=5,
                                          engine=engine, rpc_url=rpc_url))
    assert w.backend is not None and w.backend.name
    return w.monitor.rows, stats


def _measured(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What a row measures, without the engine's own numbering (tx hash, engine block)."""
    skip = {"tx", "engine_block"}
    return [tuple(v for k, v in r.items() if k not in skip) for r in rows]


def test_same_scenario_same_rows_on_pyevm_and_revm():
    a, sa = _rows("pyevm")
    b, sb = _rows("revm")
    assert sa["orphaned_blocks"] > 0 and sa["reorged_txs"] > 0  # reverts ran on both
    assert len(a) > 50 and a == b  # hashes and engine blocks too: same chain
    assert {r["outcome"] for r in a} == {"ok"}


def test_same_scenario_same_measurements_on_a_node(anvil_url: str):
    a, _ = _rows("pyevm")
    c, sc = _rows("rpc", anvil_url)
    assert sc["orphaned_blocks"] > 0
    assert _measured(a) == _measured(c)


def test_more_teams_than_a_consortium_holds_are_refused_before_any_run(capsys):
    # each team is a member domain of the consortium Model (at most 256): 257 teams used to
    # fail only at the 257th enrolment, and 10**8 ran on making keys
    with pytest.raises(ValueError, match=r"teams must be <= 256: each team is a trust domain"):
        StreamScenario("consortium-fast", 257, 0.01, 10)
    from proml_sim.cli import main

    for argv in (["simulate", "--teams", str(10**8)], ["sim-bench", "--teams", "257"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("proml: error: teams must be <= 256"), err


def test_unknown_engine_and_missing_url_are_refused():
    with pytest.raises(ValueError, match="unknown engine"):
        run_streams(StreamScenario("consortium-fast", 1, 0.01, 10, engine="evmone"))
    with pytest.raises(ValueError, match="needs the URL"):
        run_streams(StreamScenario("consortium-fast", 1, 0.01, 10, engine="rpc"))


# -- block building ---------------------------------------------------------------------------
def _reference_select(w: World, producer: Producer, heard_by: float,
                      chain_nonce: dict[str, int]) -> list[SimTx]:
    """The simulator's first block builder (a linear scan per pick), kept as the oracle."""
    known = [t for t in w.pending.values() if t.arrivals[producer.name] <= heard_by
             and t.participant.domain not in producer.censors]
    known.sort(key=lambda t: (-t.tip, t.submitted))
    known = known[: w.profile.mempool_capacity]
    next_nonce: dict[str, int] = {}
    chosen: list[SimTx] = []
    gas, limit, progress = 0, w.profile.block_gas_limit, True
    by_sender: dict[str, list[SimTx]] = {}
    for t in sorted(known, key=lambda t: (t.sender, t.nonce)):
        by_sender.setdefault(t.sender, []).append(t)
    heads = dict.fromkeys(by_sender, 0)
    while progress:
        progress = False
        best: SimTx | None = None
        for s, queue in by_sender.items():
            i = heads[s]
            if i >= len(queue):
                continue
            cand = queue[i]
            want = next_nonce.setdefault(s, chain_nonce[s])
            if cand.nonce != want:
                continue
            if best is None or (cand.tip, -cand.submitted) > (best.tip, -best.submitted):
                best = cand
        if best is not None and gas + best.gas <= limit:
            chosen.append(best)
            gas += best.gas
            heads[best.sender] += 1
            next_nonce[best.sender] += 1
            progress = True
    return chosen


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), senders=st.integers(1, 12), n=st.integers(0, 80),
       capacity=st.integers(1, 90), limit=st.integers(21_000, 2_000_000))
def test_block_building_matches_the_reference(seed: int, senders: int, n: int, capacity: int,
                                               limit: int):
    rng = random.Random(seed)
    prof = get_profile("consortium-fast").with_(block_gas_limit=limit, mempool_capacity=capacity)
    w = World(seed=0, profile=prof)
    parts = [w.add_participant(f"p{i}", f"d{i % 3}", "eu") for i in range(senders)]
    producer = Producer("producer-0", "eu", censors=frozenset({"d2"}) if rng.random() < 0.3
                        else frozenset())
    chain_nonce = {f"0x{i:040x}": rng.randint(0, 3) for i in range(senders)}
    next_nonce = dict(chain_nonce)
    for k in range(n):
        i = rng.randrange(senders)
        s = f"0x{i:040x}"
        nonce = next_nonce[s] + (1 if rng.random() < 0.1 else 0)  # sometimes a gap
        next_nonce[s] = nonce + 1
        tx = SimTx(k.to_bytes(32, "big"), b"", s, nonce, rng.choice([1, 2, 2, 5]),
                   rng.choice([30_000, 50_000, 200_000]), parts[i], None,  # type: ignore[arg-type]
                   {}, float(rng.randint(0, 20)),
                   arrivals={"producer-0": rng.choice([0.0, 5.0, 50.0])})
        w.pending[tx.hash] = tx
    w._chain_nonce = chain_nonce.__getitem__  # type: ignore[method-assign]
    heard_by = rng.choice([1.0, 10.0, 100.0])
    ours = w._select(producer, heard_by)
    assert [t.hash for t in ours] == [t.hash for t in
                                      _reference_select(w, producer, heard_by, chain_nonce)]


@settings(max_examples=100, deadline=None)
@given(nonce=st.integers(0, 2**64 - 1), tip=st.integers(0, 2**80), gas=st.integers(0, 2**63),
       data=st.binary(max_size=300), to=st.one_of(st.none(), st.binary(min_size=20, max_size=20)))
def test_gateway_reads_nonce_tip_and_gas_like_rlp(nonce: int, tip: int, gas: int, data: bytes,
                                                  to: bytes | None):
    signer = Signer(derive_private_keys("gateway", 1)[0])
    raw = signer.sign_transaction(chain_id=1337, nonce=nonce, to=to, data=data, gas=gas,
                                  max_fee_per_gas=tip + 7, max_priority_fee_per_gas=tip)
    fields = rlp.decode(raw[1:])
    expect = tuple(int.from_bytes(fields[i], "big") for i in (1, 2, 4))
    assert _type2_nonce_tip_gas(raw) == expect == (nonce, tip, gas)
    with pytest.raises(EngineError, match="truncated"):
        _type2_nonce_tip_gas(raw[:4])


# -- bounded memory ---------------------------------------------------------------------------
@pytest.mark.parametrize("profile", ["consortium-fast", "poa-clique", "ethereum-pos"])
def test_rows_stream_out_during_the_run(profile: str, tmp_path):
    """A row is written once its transaction is 12 deep and final, whichever comes last, so the
    transactions held in memory stay bounded (finality before depth 12 included)."""
    from proml_sim.sim import Monitor, record_stream
    from proml_sim.sim.scenario import prepare_teams

    w = World(seed=2, profile=profile, engine="revm",
              monitor=Monitor(tmp_path / "rows.csv", keep=False))
    ps, ids = prepare_teams(w, 4)
    horizon = 3600.0
    for p, mid in zip(ps, ids, strict=True):
        w.env.process(record_stream(w, p, mid, 1 / 30, horizon))
    live = []
    for t in range(600, int(horizon) + 1, 600):
        w.run(t, drain=False)
        live.append(len(w.txs))
    w.finish()
    window = 12 + (w.profile.finality_time_blocks() or 0)  # blocks a row can wait for
    per_block = 4 / 30 * w.profile.block_time
    assert w.monitor.count > 300 and not w.monitor.rows
    assert max(live) <= 3 * window * per_block + 20, live  # not growing with the run


# -- the experiments take the engine ------------------------------------------------------------
def test_experiments_run_on_the_engine_they_are_given(tmp_path):
    from experiments import e00_scripted_lifecycle, e03_overhead, e04_scaling
    from experiments.common import ExperimentConfig
    from proml_sim.sim import StepDurations

    e00 = {eng: e00_scripted_lifecycle.main(ExperimentConfig(tmp_path / eng,
                                                             extra={"engine": eng}))
           for eng in ("pyevm", "revm")}
    assert e00["revm"]["engine"] == "revm" and e00["revm"]["ok"]
    assert e00["revm"]["rows"] == e00["pyevm"]["rows"]  # gas for gas, block for block
    sat = [e04_scaling.saturation_point("consortium-fast", 600_000, 1.2, 1.0, 4, engine=eng)
           for eng in ("pyevm", "revm")]
    assert sat[0] == sat[1] and sat[0]["included"] > 50
    short = StepDurations().scaled(1 / 200)
    wf = [e03_overhead.run("poa-clique", 1, 2, 1, 7, short, engine=eng)
          for eng in ("pyevm", "revm")]
    assert wf[0] == wf[1] and wf[0][0]["transactions"] >= 9


def test_reproduce_refuses_an_engine_url_mismatch(capsys):
    from proml_sim.cli import main

    assert main(["reproduce", "--engine", "rpc"]) == 2
    assert "--rpc-url" in capsys.readouterr().err
    assert main(["reproduce", "--engine", "revm", "--rpc-url", "http://127.0.0.1:1"]) == 2
