"""The per-identity activity monitor: its rules on synthetic activity, and reading a real chain."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from proml_sim.chain import KeyRing, PyEVMBackend
from proml_sim.chain.client import LifecycleClient
from proml_sim.compiler import compile_artefact
from proml_sim.lifecycles import SingleAdminModel as Model  # one admin grants every domain
from proml_sim.sim import digest_of, domain_id
from proml_sim.threats.monitor import (
    Activity,
    ActivityMonitor,
    ChainReader,
    activities,
)

A = "0x" + "aa" * 20
B = "0x" + "bb" * 20
M1, M2 = b"\x01" * 32, b"\x02" * 32
D1, D2 = b"\x11" * 32, b"\x22" * 32


def approve(who: str, art: bytes, dig: bytes, t: float) -> Activity:
    return Activity(who, "approve", art, dig, t, "verify")


def test_unexpected_approval_of_a_watched_identity_alerts_once():
    mon = ActivityMonitor()
    mon.watch(A, [(M1, D1)])
    assert mon.observe(approve(A, M1, D1, 0)) == []  # its domain evaluated that
    first = mon.observe(approve(A, M2, D2, 10))
    assert [(a.rule, a.account) for a in first] == [("unexpected", mon.first_alert(A).account)]
    assert mon.observe(approve(A, M1, D2, 20)) == []  # each rule fires once per identity
    assert mon.first_alert(A) is first[0] and mon.flagged() == {first[0].account}
    # an identity nobody watches is never 'unexpected'
    assert mon.observe(approve(B, M2, D2, 30)) == [] and mon.first_alert(B) is None


def test_expect_extends_the_evaluation_log_and_addresses_are_normalised():
    mon = ActivityMonitor()
    mon.watch(A.lower())
    mon.expect(A.upper().replace("0X", "0x"), M1, D1)
    assert mon.watched(A) and mon.observe(approve(A, M1, D1, 0)) == []
    assert mon.observe(approve(A.lower(), M1, D2, 1))[0].rule == "unexpected"


def test_burst_counts_approvals_in_a_sliding_window():
    mon = ActivityMonitor(burst_max=2, burst_window_s=100)
    for t in (0, 60, 120, 180):  # never three within 100 s
        assert mon.observe(approve(B, M1, D1, t)) == []
    alerts = mon.observe(approve(B, M1, D1, 200)) + mon.observe(approve(B, M2, D1, 210))
    assert [a.rule for a in alerts] == ["burst"] and "3 approvals" in alerts[0].detail


def test_only_approvals_are_judged_and_bad_settings_are_refused():
    mon = ActivityMonitor(burst_max=1, burst_window_s=10)
    mon.watch(A)
    for action in ("fire", "register", "grant", "revoke"):
        assert mon.observe(Activity(A, action, M1, D2, 0.0)) == []
    assert mon.seen == 4 and mon.alerts == []
    with pytest.raises(ValueError):
        ActivityMonitor(burst_max=0)
    with pytest.raises(ValueError):
        ActivityMonitor(burst_window_s=0)


def test_reader_and_activities_on_a_real_chain_flag_a_stolen_approval():
    keys = {n: KeyRing.from_seed(f"mon-{n}", 1, owner=n) for n in ("admin", "op", "dev", "v0",
                                                                    "v1")}
    s = {n: k.signer(k.addresses[0]) for n, k in keys.items()}
    backend = PyEVMBackend(funded=[x.address for x in s.values()])
    c = LifecycleClient.deploy(backend, compile_artefact(Model), s["admin"], domain_id("adm"))
    for n, role in (("op", "operator"), ("dev", "developer"), ("v0", "verifier"),
                    ("v1", "verifier")):
        c.grant(s["admin"], role, s[n].address, domain_id(f"dom-{n}"))
    reader = ChainReader(c)
    setup = reader.poll()
    assert len(setup) == 5 and all(e.time == backend.block(e.block).timestamp for e in setup)
    assert reader.poll() == []  # nothing new
    mid = c.register(s["op"], b"m".ljust(32, b"\0"))
    c.fire(s["dev"], "train", mid, digest_of("model"), "", [])
    mon = ActivityMonitor()
    mon.watch(s["v0"].address, [(mid, digest_of("eval"))])
    mon.watch(s["v1"].address, [(mid, digest_of("eval"))])
    c.fire(s["v0"], "verify", mid, digest_of("eval"), "", [])
    c.fire(s["v1"], "verify", mid, digest_of("bogus"), "", [])  # v1's key, not v1's evaluation
    evs = reader.poll()
    acts = activities(evs, c.ir)
    assert [a.action for a in acts] == ["register", "fire", "approve", "approve"]
    assert acts[1].transition == "train" and acts[2].digest == digest_of("eval")
    alerts = mon.observe_many(acts)
    assert [(a.account, a.rule) for a in alerts] == [(s["v1"].address, "unexpected")]
    # the second approval of the same digest fires the transition: counted once, not twice
    c.fire(s["v1"], "verify", mid, digest_of("eval"), "", [])
    mon.expect(s["v1"].address, mid, digest_of("eval"))
    last = activities(reader.poll(), c.ir)
    assert [a.action for a in last] == ["approve"] and c.state(mid) == "verified"


def test_reader_refuses_per_artefact_layouts():
    with pytest.raises(ValueError, match="registry"):
        ChainReader(SimpleNamespace(layout="factory"))
