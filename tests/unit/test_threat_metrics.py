from __future__ import annotations

import pytest

from proml_sim.threats.metrics import bootstrap, wilson


def test_wilson_known_values():
    e = wilson(0, 20)
    assert e.value == 0 and e.lo == 0 and 0.15 < e.hi < 0.17  # 0.161 for n=20
    e = wilson(20, 20)
    assert e.value == 1 and e.hi == 1 and 0.83 < e.lo < 0.85
    e = wilson(10, 20)
    assert e.lo < 0.5 < e.hi and abs((e.lo + e.hi) / 2 - 0.5) < 1e-9
    assert wilson(0, 0).value is None
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_bootstrap_contains_median_and_is_reproducible():
    xs = [float(i) for i in range(1, 101)]
    a, b = bootstrap(xs, seed=1), bootstrap(xs, seed=1)
    assert a == b and a.lo <= a.value <= a.hi and a.value == 50.5
    assert bootstrap([]).value is None and bootstrap([3.0]).lo == 3.0


def test_cluster_bootstrap_resamples_seeds_not_trials():
    from proml_sim.threats.metrics import cluster_bootstrap

    # 10 seeds of 10 trials each; the seeds disagree strongly (all or nothing)
    clustered = [(10, 10)] * 5 + [(0, 10)] * 5
    e = cluster_bootstrap(clustered, seed=3)
    w = wilson(50, 100)  # what treating the 100 trials as independent would claim
    assert e.value == 0.5 and e.n == 100
    assert (e.hi - e.lo) > 1.5 * (w.hi - w.lo)  # the correlation within seeds widens it
    assert cluster_bootstrap([]).value is None and cluster_bootstrap([(2, 4)]).lo == 0.5


def test_trial_rate_wilson_for_single_trials_and_floor_for_clusters():
    from proml_sim.threats.metrics import trial_rate

    assert trial_rate([(1, 1), (0, 1), (1, 1)]) == wilson(2, 3)
    # two seeds that agree: the bootstrap has no spread, the pooled Wilson interval is the floor
    e = trial_rate([(1, 3), (1, 3)])
    w = wilson(2, 6)
    assert e.value == pytest.approx(1 / 3) and e.lo <= w.lo and e.hi >= w.hi and e.n == 6
    with pytest.raises(ValueError):
        trial_rate([(4, 3)])


def test_summarise_counts_attempts_and_gives_every_sweep_point_an_interval():
    from proml_sim.threats.runner import Outcome, summarise

    outs = [Outcome(True, True, 5.0, attempts=3, successes=2, detections=1,
                    series={"asr_by_c": [(0.0, 0.0), (1.0, 1.0)]}),
            Outcome(False, attempts=3, successes=0, series={"asr_by_c": [(0.0, 0.0),
                                                                        (1.0, 1.0)]})]
    s = summarise(outs)
    assert (s["trials"], s["trial_successes"]) == (6, 2) and s["asr"] == pytest.approx(1 / 3)
    assert s["detection_rate"] == 0.5 and s["verdict"] == "documented_limit"
    ci = {x: (lo, hi) for x, lo, hi in s["asr_by_c_ci"]}
    assert ci[1.0] == (wilson(2, 2).lo, 1.0) and ci[0.0] == (0.0, wilson(0, 2).hi)
    with pytest.raises(ValueError):  # successes contradicting the headline bit
        Outcome(False, attempts=2, successes=1).trials()


def test_a_rate_over_no_cases_is_undefined_and_left_out_of_the_summary():
    from proml_sim.threats.kit import outcome, ratio
    from proml_sim.threats.runner import summarise

    assert ratio(3, 4) == 0.75 and ratio(0, 0) is None and ratio(2, 0) is None
    # a seed that had nothing to count (None) does not pull the mean to 0 (or 1)
    outs = [outcome(False, metrics={"precision": ratio(1, 2), "recall": ratio(0, 0)}),
            outcome(False, metrics={"precision": ratio(0, 0), "recall": ratio(0, 0)})]
    s = summarise(outs)
    assert s["precision"] == 0.5 and s["precision_ci"] == [0.5, 0.5]
    assert s["recall"] is None and s["recall_ci"] == [None, None]


def test_param_sweep_parses_toml_values_and_rejects_unknown_names():
    import argparse

    from proml_sim.errors import UsageError
    from proml_sim.threats.catalogue import load_catalogue
    from proml_sim.threats.cli import param_sweep
    from proml_sim.threats.runner import with_parameters

    assert param_sweep("stolen=1,2,3") == ("stolen", [1, 2, 3])
    assert param_sweep("count=domains,accounts") == ("count", ["domains", "accounts"])
    assert param_sweep("attack_after_s=[1.0, 2.0],[3.0, 4.0]")[1] == [[1.0, 2.0], [3.0, 4.0]]
    for bad in ("stolen", "=1", "stolen="):
        with pytest.raises(argparse.ArgumentTypeError):
            param_sweep(bad)
    s1 = load_catalogue()["S1"]
    assert with_parameters(s1, {"approvals": 3}).parameters["approvals"] == 3
    assert with_parameters(s1, {"poll_s": 30}).parameters["poll_s"] == 30.0
    with pytest.raises(UsageError, match="no parameter"):
        with_parameters(s1, {"stolne": 3})
    with pytest.raises(UsageError, match="must be an int"):
        with_parameters(s1, {"approvals": "three"})
    # the example is written as the user writes values (TOML): `True` is text, `true` a bool
    with pytest.raises(UsageError, match=r'must be a bool like true \(written as in TOML\), '
                                         r'not "True"'):
        with_parameters(load_catalogue()["T12"], {"record_inputs": "True"})
    with pytest.raises(UsageError, match=r'must be a str like "Strict" .*, not 3$'):
        with_parameters(load_catalogue()["S5"], {"session_samesite": 3})
    # an integer beyond TOML's 64 bits (Python's reader takes it) is refused, in a list too:
    # T10 steps=10**20 was an internal error (OverflowError), D5 consumers=10**22 a hang
    for tid, name, value in (("T10", "steps", 10**20), ("D5", "consumers", 10**22),
                             ("D3", "history", [1, 2**63]), ("T9", "legit_updates", -2**63 - 1)):
        with pytest.raises(UsageError, match=rf"{tid} parameter {name}: .* is beyond a TOML "
                                             r"integer \(-2\^63 \.\. 2\^63-1\)"):
            with_parameters(load_catalogue()[tid], {name: value})
    assert with_parameters(load_catalogue()["T9"], {"legit_updates": 2**63 - 1})


def test_baseline_guards_audit_chain_and_indexes(tmp_path):
    import sqlite3

    from proml_sim.lifecycles import Model
    from proml_sim.threats.baseline import CentralDB

    db = CentralDB(tmp_path / "b.sqlite", {"Model": Model}, admin="dba")
    db.grant("op", "Model", "operator", "client-co")
    db.grant("dev", "Model", "developer", "dev-co")
    aid = db.register("op", "Model", "m", at=1.0)
    db.fire("dev", "train", aid, "ab" * 32, at=2.0)
    assert db.verify_audit() is None and len(db.admin_sql("SELECT * FROM audit")) == 2
    for sql in ("UPDATE history SET actor='x'", "DELETE FROM audit"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):  # the application
            db.conn.execute(sql)
    db.conn.rollback()
    head = db.audit_head()
    db.admin_sql("UPDATE audit SET actor='intern' WHERE action='train'")  # the DBA bypasses
    assert db.bypasses == 1 and db.verify_audit() == 2
    db.rechain_audit()  # ...and re-chains: only a kept head tells
    assert db.verify_audit() is None and db.audit_head() != head
    plan = db.conn.execute("EXPLAIN QUERY PLAN SELECT * FROM history WHERE artefact=? "
                           "ORDER BY seq", (aid,)).fetchall()
    assert "USING INDEX" in str(plan)
    db.close()
