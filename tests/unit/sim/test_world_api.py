"""The researcher's World API: any lifecycle, names, tidy rows, draining runs, custom profiles."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from proml_sim.dsl import Artefact, Role, State
from proml_sim.errors import ProfileError, SimNameError
from proml_sim.sim import ChainProfile, World, get_profile, load_profile


class Benchmark(Artefact):
    """A benchmark suite: drafted with its data digest, then published."""

    owner = Role(doc="maintainer")
    draft = State(initial=True, by=owner, evidence=True)
    published = State(final=True)
    publish = draft.to(published, by=owner, evidence=True)


def _salt(i: int) -> bytes:
    return bytes([i + 1]).ljust(32, b"\0")


def _world(profile: ChainProfile | str, n: int, gap: float = 30.0) -> World:
    w = World(seed=3, profile=profile, lifecycles=[Benchmark])
    w.add_participant("ann", "lab-a", "eu")
    w.setup(grants=[("ann", "Benchmark", "owner")])

    def actor(w: World):  # type: ignore[no-untyped-def]
        for i in range(n):
            tx = yield from w.send("ann", "Benchmark", "register", _salt(i), b"\1" * 32)
            yield w.confirmed(tx, 1)
            yield from w.send("ann", "Benchmark", "fire", "publish", w.result(tx), b"\2" * 32)
            yield w.env.timeout(gap)

    w.env.process(actor(w))
    return w


def test_custom_lifecycle_by_name_rows_filled_from_the_call() -> None:
    w = _world("consortium-fast", 3)
    w.run(200)
    rows = w.monitor.rows
    assert [r["transition"] for r in rows] == ["register", "publish"] * 3
    assert {r["lifecycle"] for r in rows} == {"Benchmark"}
    # the register row carries the id the call created; publish acts on the same artefact
    assert rows[0]["artefact"] == rows[1]["artefact"] and rows[0]["artefact"] != rows[2]["artefact"]
    assert all(r["outcome"] == "ok" for r in rows)


def test_unknown_names_list_the_known_ones() -> None:
    w = World(seed=1, profile="consortium-fast", lifecycles=[Benchmark])
    w.add_participant("ann", "lab-a", "eu")
    with pytest.raises(SimNameError, match="known: Benchmark"):
        w.setup(grants=[("ann", "Model", "developer")])
    with pytest.raises(SimNameError, match="known: ann"):
        w.setup(grants=[("bob", "Benchmark", "owner")])
    w.setup()
    with pytest.raises(SimNameError, match="Anchor, Benchmark"):
        next(w.send("ann", "Dataset", "register", _salt(0)))


def test_run_drains_in_flight_rows_unless_asked_not_to() -> None:
    # a call made just before `until` is still written complete: included, 12 deep, final
    drained = _world("consortium-fast", 2, gap=0.0)
    drained.run(5)
    assert len(drained.txs) == 0
    assert all(r["final"] is not None and r["l12_s"] is not None for r in drained.monitor.rows)
    censored = _world("consortium-fast", 2, gap=0.0)
    censored.run(5, drain=False)
    censored.finish()
    rows = censored.monitor.rows
    assert any(r["l12_s"] is None for r in rows)  # missing is None, never ''
    assert not any(v == "" for r in rows for v in r.values())
    l12 = [r["l12_s"] if r["l12_s"] is not None else math.nan for r in rows]
    assert any(math.isnan(x) for x in l12)


def test_finality_by_delay() -> None:
    prof = ChainProfile("lab-bft", consensus="fixed", block_time=2.0, finality_delay=9.0)
    w = _world(prof, 3)
    w.run(120)
    for r in w.monitor.rows:
        # final at the first block produced at least 9 s after the transaction's block
        # (blocks every 2 s; both times as the submitter's node saw the blocks, with jitter)
        assert 8.0 <= r["final"] - r["included"] <= 13.0, r


def test_ignored_and_conflicting_fields_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="finality_depth=3 is ignored by consensus 'pos'"):
        get_profile("ethereum-pos").with_(finality_depth=3)
    with pytest.raises(ProfileError, match="sealers=4 is ignored"):
        ChainProfile("x", consensus="pow", block_time=10.0, sealers=4)
    with pytest.raises(ProfileError, match="both set"):
        ChainProfile("x", consensus="fixed", block_time=1.0, finality_depth=2, finality_delay=3.0)
    with pytest.raises(ProfileError, match="unknown chain profile"):
        get_profile("nope")


def test_profile_from_toml(tmp_path: Path) -> None:
    f = tmp_path / "pos6.toml"
    f.write_text('base = "ethereum-pos"\nblock_time = 6.0\n')
    p = load_profile(f)
    assert (p.name, p.block_time, p.epoch_slots) == ("pos6", 6.0, 32)
    assert get_profile(str(f)) == p
    g = tmp_path / "lab.toml"
    g.write_text('[profile]\nconsensus = "fixed"\nblock_time = 1\nfinality_delay = 2.5\n')
    assert load_profile(g).finality_delay == 2.5
    bad = tmp_path / "bad.toml"
    bad.write_text('consensus = "fixed"\nblock_time = 1\ncolour = "red"\n')
    with pytest.raises(ProfileError, match="unknown field"):
        load_profile(bad)
    bad.write_text("consensus = \n")
    with pytest.raises(ProfileError, match="not valid TOML"):
        load_profile(bad)
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path / "missing.toml")


def test_final_height_by_delay_is_the_one_rule() -> None:
    from proml_sim.sim import final_height
    from proml_sim.sim.world import SimBlock

    prof = ChainProfile("d", consensus="poa", block_time=5.0, sealers=3, finality_delay=12.0)
    blocks = [SimBlock(h, h, 5.0 * h, "s", "eu", []) for h in range(1, 11)]  # t = 5 .. 50
    assert final_height(prof, blocks) == 7  # produced by t = 38 (50 - 12)
    assert final_height(prof, blocks[:2]) == 0
