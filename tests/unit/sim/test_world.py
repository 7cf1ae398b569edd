from __future__ import annotations

import csv
import statistics

import pytest

from proml_sim.ir import replay
from proml_sim.sim import (
    Monitor,
    NetworkModel,
    Outage,
    Partition,
    Producer,
    StepDurations,
    World,
    build_projects,
    get_profile,
    paper_workflow,
)
from tests.unit.sim.helpers import stream_world


def _key(w: World) -> list[tuple]:
    return [(r["tx"], r["included"], r["confirmed"], r["gas"], r["outcome"]) for r in
            w.monitor.rows]


def test_same_seed_same_results_other_seed_differs():
    a = stream_world(seed=7, profile="ropsten-2022", horizon=400)
    b = stream_world(seed=7, profile="ropsten-2022", horizon=400)
    c = stream_world(seed=8, profile="ropsten-2022", horizon=400)
    assert _key(a) == _key(b) and len(_key(a)) > 10
    assert _key(a) != _key(c)


def test_rows_are_tidy_and_latencies_ordered():
    w = stream_world(profile="consortium-fast", horizon=300)
    rows = w.monitor.rows
    assert rows and all(r["outcome"] == "ok" for r in rows)
    for r in rows:
        assert r["submitted"] <= r["included"] <= r["confirmed"]
        assert 0 < r["l1_s"] <= r["l12_s"]
        assert r["gas"] > 21_000 and r["transition"] == "train"
        assert r["profile"] == "consortium-fast"
    # consortium-fast: 2 s blocks, so L@12 is about 12 blocks
    assert 20 <= statistics.median(r["l12_s"] for r in rows) <= 30


def test_orphaned_blocks_really_revert_and_reexecute():
    prof = get_profile("ropsten-2022").with_(stale_rate=0.5, empty_block_rate=0.0)
    w = stream_world(seed=3, profile=prof, horizon=900, rate=1 / 15)
    assert w.stats["orphaned"] > 5 and w.stats["reorged_txs"] > 0
    # the engine's chain is exactly the canonical chain (orphans were reverted); empty blocks
    # are counted by the simulation only
    heads = [b.number for b in w.canon if b.number != -1]
    assert heads == list(range(heads[0], heads[0] + len(heads)))
    assert w.backend.head().number == heads[-1]
    assert [b.height for b in w.canon] == list(range(1, len(w.canon) + 1))
    for b in w.orphans:
        for t in b.txs:  # every orphaned tx is pending again or included canonically later
            assert t.block is None or t.block in w.canon
    # versions of each artefact are 1..n without gaps, and events replay into state
    client = w.clients["Model"]
    assert replay(client.ir, client.events()) == client.snapshot()
    for mid in w.test_ids:
        hist = client.history(mid)
        assert [h.version for h in hist] == list(range(1, len(hist) + 1))
    reorged = [r for r in w.monitor.rows if r["reorged"]]
    assert reorged and all(r["outcome"] in ("ok", "pending") for r in reorged)


def test_outage_defers_submission():
    net = NetworkModel(outages=(Outage("team000", 0.0, 300.0),))
    w = stream_world(profile="consortium-fast", horizon=400, network=net)
    t0 = [r for r in w.monitor.rows if r["actor"] == "team000"]
    assert t0 and min(r["submitted"] for r in t0) >= 300.0


def test_partition_delays_inclusion():
    net = NetworkModel(partitions=(Partition(frozenset({"asia"}), 0.0, 200.0),))
    producers = [Producer("p-eu", "eu")]
    w = stream_world(profile="consortium-fast", horizon=300, network=net, producers=producers)
    asia = [r for r in w.monitor.rows if r["region"] == "asia" and r["submitted"] < 150]
    eu = [r for r in w.monitor.rows if r["region"] == "eu" and r["submitted"] < 150]
    assert asia and eu
    assert min(r["included"] for r in asia) >= 200.0
    assert max(r["l1_s"] for r in eu) < 10


def test_censoring_producers():
    prof = get_profile("poa-clique").with_(sealer_offline_rate=0.0, stale_rate=0.0)
    all_censor = [Producer(f"s{i}", "eu", censors=frozenset({"domain000"})) for i in range(3)]
    w = stream_world(profile=prof, horizon=300, producers=all_censor)
    dom0 = [r for r in w.monitor.rows if r["domain"] == "domain000"]
    assert dom0 and all(r["outcome"] == "pending" for r in dom0)
    some = [Producer("s0", "eu", censors=frozenset({"domain000"})), Producer("s1", "eu"),
            Producer("s2", "eu", censors=frozenset({"domain000"}))]
    w2 = stream_world(profile=prof, horizon=300, producers=some)
    d0 = [r for r in w2.monitor.rows if r["domain"] == "domain000"]
    other = [r for r in w2.monitor.rows if r["domain"] != "domain000"]
    assert all(r["outcome"] == "ok" for r in d0)
    assert statistics.median(r["l1_s"] for r in d0) > statistics.median(r["l1_s"] for r in other)


def test_pos_finality_after_two_epochs():
    w = stream_world(profile="ethereum-pos", horizon=300, run_extra=64 * 12 + 200)
    rows = [r for r in w.monitor.rows if r["final"] is not None]
    assert rows
    for r in rows:
        assert r["final"] - r["included"] >= 63 * 12 * 0.9


def test_block_gas_limit_bounds_each_block():
    prof = get_profile("consortium-fast").with_(block_gas_limit=200_000)
    w = stream_world(profile=prof, horizon=120, rate=1.0, teams=3)
    # the sum of the included transactions' gas limits fits the block, as on Ethereum
    assert all(b.gas_reserved <= 200_000 for b in w.canon)
    assert all(b.gas_used <= 200_000 for b in w.canon)
    assert max(b.n_txs for b in w.canon) >= 2  # full blocks, not one tx each


def test_profile_validation_names_the_field():
    with pytest.raises(ValueError, match=r"stale_rate=1\.5"):
        get_profile("ropsten-2022").with_(stale_rate=1.5)
    with pytest.raises(ValueError, match="no field"):
        get_profile("ropsten-2022").with_(nope=1)
    with pytest.raises(ValueError, match="unknown chain profile"):
        get_profile("mainnet-1999")


def test_monitor_streams_to_csv_atomically(tmp_path):
    path = tmp_path / "rows.csv"
    mon = Monitor(path, keep=False)
    w = stream_world(profile="consortium-fast", horizon=120, monitor=mon)
    assert path.exists() and not (tmp_path / "rows.csv.part").exists()
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == mon.count > 0 and not mon.rows
    assert {r["seed"] for r in rows} == {str(w.seed)}


def test_a_run_that_stops_early_keeps_its_rows_and_leaves_no_empty_part(tmp_path, capsys,
                                                                       monkeypatch):
    from proml_sim.sim.scenario import StreamScenario, run_streams

    # it stops before any row (an unknown profile at set-up): no rows.csv.part is left behind
    path = tmp_path / "rows.csv"
    with pytest.raises(ValueError):
        run_streams(StreamScenario("no-such-profile", 2, 0.1), rows_csv=path)
    assert not list(tmp_path.iterdir())
    # it is interrupted half-way (Ctrl-C): the rows so far are kept, and the file is named
    import proml_sim.sim.scenario as scenario

    real, calls = scenario.World.run, []

    def interrupted(self, until, **kw):
        calls.append(until)
        if len(calls) > scenario.SLICES // 2:
            raise KeyboardInterrupt
        return real(self, until, **kw)

    monkeypatch.setattr(scenario.World, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_streams(StreamScenario("consortium-fast", 3, 1.0, 120.0), rows_csv=path)
    part = tmp_path / "rows.csv.part"
    rows = list(csv.DictReader(part.open()))
    assert rows and not path.exists()
    assert f"the {len(rows)} row(s) it recorded are kept in {part}" in capsys.readouterr().err
    # the next run does not write over them
    from proml_sim.errors import OutputError

    kept = part.read_bytes()
    with pytest.raises(OutputError, match="holds the rows of an interrupted run"):
        run_streams(StreamScenario("consortium-fast", 3, 1.0, 120.0), rows_csv=path)
    assert part.read_bytes() == kept


def test_paper_workflow_completes_with_measured_overhead():
    w = World(seed=5, profile="consortium-fast")
    projects, grants = build_projects(w, n_teams=8, n_projects=2)
    w.setup(grants)
    durations = StepDurations().scaled(1 / 240)  # days -> minutes
    procs = [w.env.process(paper_workflow(w, p, durations, wait_depth=1)) for p in projects]
    w.run(5 * 3600, drain=False)
    w.finish()
    for proc in procs:
        s = proc.value
        assert s["final_model_state"] == "audited"
        # 11 steps: 2 registrations, grant, label, review, release, train, 2 verify, accept,
        # audit; plus reject + train for each rejected version
        assert s["transactions"] == 11 + 2 * (s["versions"] - 1)
        assert 0 < s["share"] < 1
    domains = {r["domain"] for r in w.monitor.rows}
    assert len(domains) >= 7  # seven roles from different teams


def test_timestamp_policy_is_clamped_to_what_nodes_accept():
    from proml_sim.sim import MAX_FUTURE_S, record_stream
    from proml_sim.sim.scenario import prepare_teams

    prof = get_profile("poa-clique").with_(sealer_offline_rate=0.0, stale_rate=0.0)
    w = World(seed=3, profile=prof, producers=[Producer("early", "eu"), Producer("late", "eu"),
                                                Producer("fair", "eu")])
    ps, ids = prepare_teams(w, 2)
    asked: list[tuple[str, int, int]] = []

    def policy(producer, txs, honest, parent, now):
        asked.append((producer.name, honest, parent))
        assert txs and all(t.hash in w.pending for t in txs)
        return {"early": parent - 1_000, "late": honest + 1_000}.get(producer.name)

    w.timestamp_policy = policy
    for p, mid in zip(ps, ids, strict=True):
        w.env.process(record_stream(w, p, mid, 1 / 5, 200))
    w.run(400, drain=False)
    w.finish()
    blocks = [b for b in w.canon if b.timestamp is not None]
    assert {b.producer for b in blocks} == {"early", "late", "fair"} and len(asked) == len(blocks)
    for b, (name, honest, parent) in zip(blocks, asked, strict=True):
        real = int(w.real_ts(b.time))
        assert name == b.producer and honest == max(real, parent + 1)
        want = {"early": parent + 1, "late": max(parent + 1, real + MAX_FUTURE_S),
                "fair": honest}
        assert b.timestamp == want[b.producer] == w.backend.block(b.number).timestamp, b


def test_send_raw_reaches_the_contract_and_reverts_like_a_call():
    from proml_sim.errors import TransactionFailed

    w = World(seed=1, profile="consortium-fast")
    op = w.add_participant("op", "dom-a", "eu")
    w.setup([("op", "Model", "operator")])
    mc = w.clients["Model"]
    with pytest.raises(TransactionFailed, match="reverted"):  # an unknown selector
        mc.send_raw(op.signer, bytes.fromhex("deadbeef") + b"\0" * 32)
    good = mc.contract_abi.encode_call("register", [b"\x05" * 32, b"\x00" * 32, "", []])
    assert mc.send_raw(op.signer, good) is None
    assert mc.exists(mc.artefact_id(op.address, b"\x05" * 32))
