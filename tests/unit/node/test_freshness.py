"""FreshnessGuard: a node's head against the clock and against other domains' nodes."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from proml_sim.chain import PyEVMBackend
from proml_sim.errors import NodeError
from proml_sim.node.freshness import FreshnessGuard, StaleView


@dataclass(frozen=True)
class H:
    number: int
    hash: bytes
    timestamp: float


class Chain:
    """A toy node: blocks every 12 s from t=1000; ``fork_at`` changes hashes from there."""

    def __init__(self, height: int, fork_at: int | None = None, tag: bytes = b"a") -> None:
        self.height, self.fork_at, self.tag = height, fork_at, tag

    def block(self, n: int) -> H:
        if n > self.height:
            raise LookupError(n)
        forked = self.fork_at is not None and n >= self.fork_at
        return H(n, (self.tag if forked else b"c") + n.to_bytes(4, "big"), 1000 + 12 * n)

    def head(self) -> H:
        return self.block(self.height)


class Down:
    def head(self) -> H:
        raise ConnectionError("peer unreachable")


def at(height: int) -> float:
    return 1000 + 12 * height + 3  # 3 s after block `height`


def test_fresh_view_passes():
    g = FreshnessGuard(60, {"bank": Chain(10), "lab": Chain(11)}, max_lag_blocks=2)
    r = g.check(Chain(10), now=at(11))
    assert r.ok and r.peer_heads == {"bank": 10, "lab": 11} and r.lag_blocks == 1
    assert r.age_s == pytest.approx(15)


def test_old_head_is_stale_with_a_clear_message():
    g = FreshnessGuard(30)
    with pytest.raises(StaleView) as e:
        g.check(Chain(10), now=at(20))
    assert isinstance(e.value, NodeError)
    assert "is 123 s old (max 30 s)" in str(e.value) and "another trust domain" in str(e.value)
    assert e.value.report.kinds == {"age"}


def test_head_from_the_future_is_flagged():
    r = FreshnessGuard(30, max_future_s=15).assess(Chain(10), now=1000 + 12 * 10 - 40)
    assert r.kinds == {"future"} and "in the future" in r.problems[0]


def test_lagging_node_is_caught_by_a_peer_before_its_age_shows():
    g = FreshnessGuard(300, {"bank": Chain(16)}, max_lag_blocks=2)
    r = g.assess(Chain(10), now=at(16))
    assert r.kinds == {"lag"} and r.lag_blocks == 6
    assert "6 block(s) behind peer 'bank' (#16; max lag 2)" in r.problems[0]
    assert g.assess(Chain(15), now=at(16)).ok


def test_catch_up_target_separates_a_slow_node_from_a_withholding_one():
    g = FreshnessGuard(300, {"bank": Chain(16)}, max_lag_blocks=0)
    first = g.assess(Chain(15), now=at(16))
    target = max(first.peer_heads.values())
    assert first.kinds == {"lag"} and target == 16
    # a moment later the peer has moved on; the honest node has the block the peer had
    later = FreshnessGuard(300, {"bank": Chain(17)}, max_lag_blocks=1)
    assert later.check(Chain(16), now=at(17), at_least=target).ok
    with pytest.raises(StaleView, match="has not reached #16") as e:
        later.check(Chain(15), now=at(17), at_least=target)
    assert e.value.report.kinds == {"behind", "lag"}


def test_disagreeing_histories_are_a_fork_at_the_common_height():
    node, peer = Chain(12, fork_at=9, tag=b"x"), Chain(14, fork_at=9, tag=b"y")
    r = FreshnessGuard(300, {"bank": peer}, max_lag_blocks=5).assess(node, now=at(14))
    assert r.kinds == {"fork"} and r.disagreeing == ("bank",)
    assert "disagree at block #12" in r.problems[0]
    # the same history below the fork agrees, whichever side is ahead
    assert FreshnessGuard(300, [Chain(8, 9, b"y")]).assess(node, now=at(12)).ok


def test_unreachable_peers_count_against_the_quorum_only():
    g = FreshnessGuard(60, {"bank": Down(), "lab": Chain(10)}, min_peers=1)
    r = g.check(Chain(10), now=at(10))
    assert r.unreachable == ("bank",) and r.ok
    g2 = FreshnessGuard(60, {"bank": Down(), "lab": Down()}, min_peers=1)
    with pytest.raises(StaleView, match="only 0 of 2 peer"):
        g2.check(Chain(10), now=at(10))


def test_every_problem_is_reported_at_once():
    g = FreshnessGuard(30, {"bank": Chain(20, fork_at=1, tag=b"z")}, max_lag_blocks=1)
    r = g.assess(Chain(10), now=at(20))
    assert r.kinds == {"age", "lag", "fork"} and len(r.problems) == 3


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="max_age_s"):
        FreshnessGuard(0)
    with pytest.raises(ValueError, match="min_peers"):
        FreshnessGuard(10, [Chain(1)], min_peers=2)


def test_works_on_a_real_engine_with_its_clock():
    a, b = PyEVMBackend(), PyEVMBackend()
    for t in (1_700_000_010, 1_700_000_020, 1_700_000_030):
        a.produce_block(t)
        b.produce_block(t)
    b.produce_block(1_700_000_040)
    g = FreshnessGuard(25, {"b": b}, max_lag_blocks=0, clock=lambda: 1_700_000_041)
    r = g.assess(a)
    assert r.kinds == {"lag"} and r.lag_blocks == 1 and r.age_s == pytest.approx(11)
    assert FreshnessGuard(25, {"b": b}, clock=lambda: 1_700_000_041).check(b).ok
