"""The baseline's authenticated API (threats/baseline.py CentralAPI, Browser): what a careful
centralised service refuses and what it cannot tell apart, request by request."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from proml_sim.lifecycles import Model
from proml_sim.sim import digest_of
from proml_sim.threats.baseline import (
    CSRF_HEADER,
    Browser,
    CentralAPI,
    CentralDB,
    approval_request,
    sign_request,
)
from proml_sim.threats.kit import Alarm, Trial, trials_outcome
from proml_sim.threats.runner import verdict

D = digest_of("eval").hex()


@pytest.fixture
def world(tmp_path: Any) -> tuple[CentralDB, str, str]:
    db = CentralDB(tmp_path / "p.sqlite", {"Model": Model}, admin="dba")
    for who, role, dom in (("op", "operator", "c"), ("dev", "developer", "d"),
                           ("v1", "verifier", "v-1"), ("v2", "verifier", "v-2")):
        db.grant(who, "Model", role, dom)
    ids = []
    for name in ("m1", "m2"):
        aid = db.register("op", "Model", name)
        db.fire("dev", "train", aid, digest_of("model", name).hex())
        ids.append(aid)
    return db, ids[0], ids[1]


def test_signed_requests_are_bound_to_host_path_body_time_and_nonce(world):
    db, m1, m2 = world
    api = CentralAPI(db, "prov.example", window_s=120)
    key = api.enrol("v1")
    req = sign_request(approval_request(api.host, m1, "verify", D), "v1", key, 1000.0, "n-1")
    assert api.handle(req, 1010.0) == (200, "verify")
    assert api.handle(req, 1011.0) == (401, "nonce seen (replay)")
    assert api.handle(req, 1200.0) == (401, "signature expired")
    for forged in (replace(req, path=f"/artefacts/{m2}/verify"),
                   replace(req, body=b'{"digest": "00"}')):
        assert api.handle(forged, 1012.0) == (401, "bad signature")
    staging = sign_request(approval_request("staging", m1, "verify", D), "v1", key, 1000.0,
                           "n-4")  # signed for another deployment, delivered here
    assert api.handle(staging, 1012.0) == (401, "bad signature")
    other = sign_request(approval_request(api.host, m2, "verify", D), "v1", b"k" * 32, 1000.0,
                         "n-2")
    assert api.handle(other, 1010.0) == (401, "bad signature")  # not v1's enrolled key
    # the application's rules apply behind the authentication
    again = sign_request(approval_request(api.host, m1, "verify", D), "v1", key, 1000.0, "n-3")
    assert api.handle(again, 1010.0) == (409, "AlreadyApproved")


@pytest.mark.parametrize(("samesite", "csrf", "forged_ok"), [
    ("Strict", True, False), ("Lax", False, False), ("None", True, False),
    ("None", False, True)])
def test_a_cross_site_page_cannot_act_for_a_logged_in_user(world, samesite, csrf, forged_ok):
    db, m1, _ = world
    api = CentralAPI(db, "prov.example", samesite=samesite, csrf=csrf)
    browser = Browser()
    token = browser.log_in(api, "v1", 0.0)
    forged = approval_request(api.host, m1, "verify", D)
    assert (browser.send(api, "evil.example", forged, 5.0)[0] == 200) is forged_ok
    # a fetch with the token header needs a CORS preflight the API never grants
    with_header = replace(forged, headers={CSRF_HEADER: token})
    assert browser.send(api, "evil.example", with_header, 6.0) == (0, "CORS preflight refused")
    if not forged_ok:  # the application's own page, with its token, works
        assert browser.send(api, api.host, with_header, 7.0) == (200, "verify")


def test_a_captured_session_is_a_bearer_credential_until_it_idles_out(world):
    db, m1, m2 = world
    api = CentralAPI(db, "prov.example", session_idle_s=900)
    token = Browser().log_in(api, "v1", 0.0)
    sid = next(iter(api.sessions))
    stolen = replace(approval_request(api.host, m1, "verify", D),
                     headers={CSRF_HEADER: token}, cookies={"sid": sid})
    assert api.handle(stolen, 600.0) == (200, "verify")  # from anywhere, within the timeout
    late = replace(stolen, path=f"/artefacts/{m2}/verify")
    assert api.handle(late, 600.0 + 901.0) == (401, "session expired")


def test_trials_outcome_counts_attempts_and_detections():
    o = trials_outcome([Trial(True, (Alarm(70.0, "m"),)), Trial(True), Trial(False)],
                       attack_at=10.0)
    assert o.trials() == (3, 2, 1) and o.ttd_s == 60.0 and o.attack_succeeded
    assert not o.detected  # one success went unseen
    assert trials_outcome([Trial(False)]).trials() == (1, 0, 0)
    # no trial: nobody attacked (a sweep's zero point), which is no_attack, never prevented
    none = trials_outcome([], metrics={"damage": 0.0})
    assert none.trials() == (0, 0, 0) and none.metrics == {"damage": 0.0}
    assert verdict([none]) == "no_attack"


def test_the_application_separates_duties_by_account_and_by_recorded_domain(tmp_path):
    # the consortium Model's verify is separate_from train and separate_domain_from train;
    # the database's application enforced neither (a weaker baseline than the contract)
    from proml_sim.errors import SeparationOfDuty

    db = CentralDB(tmp_path / "sod.sqlite", {"Model": Model}, admin="dba")
    for who, role, domain in [("op", "operator", "client-co"), ("dev", "developer", "dev-co"),
                              ("dev", "verifier", "dev-co"), ("qa", "verifier", "dev-co"),
                              ("lab", "verifier", "lab-1")]:
        db.grant(who, "Model", role, domain)
    aid = db.register("op", "Model", "m")
    assert db.fire("dev", "train", aid, "w1")
    with pytest.raises(SeparationOfDuty, match="the actor of train may not also do this"):
        db.fire("dev", "verify", aid, "e")
    with pytest.raises(SeparationOfDuty, match="the trust domain that did train may not"):
        db.fire("qa", "verify", aid, "e")
    assert db.fire("lab", "verify", aid, "e") is False  # one of two approvals
    # the admin records the domain it is told: the same account as a partner's goes through
    db.grant("qa", "Model", "verifier", "lab-2")
    assert db.fire("qa", "verify", aid, "e") is True


def test_a_revoked_approver_no_longer_counts_and_a_revoked_trainer_keeps_its_domain(tmp_path):
    # as the contract: an approval whose approver lost the role before the k-th does not
    # count (nor blocks its domain), and an account's domain outlives its roles, so the
    # trainer's domain still may not verify after the trainer's role is revoked
    from proml_sim.errors import SeparationOfDuty

    db = CentralDB(tmp_path / "rv.sqlite", {"Model": Model}, admin="dba")
    for who, role, domain in [("op", "operator", "client-co"), ("dev", "developer", "dev-co"),
                              ("qa", "verifier", "dev-co"), ("a1", "verifier", "lab-1"),
                              ("a2", "verifier", "lab-1"), ("b", "verifier", "lab-2")]:
        db.grant(who, "Model", role, domain)
    aid = db.register("op", "Model", "m")
    assert db.fire("dev", "train", aid, "w1")
    db.revoke("dev", "Model", "developer")
    with pytest.raises(SeparationOfDuty, match="the trust domain that did train may not"):
        db.fire("qa", "verify", aid, "e")
    assert db.fire("a1", "verify", aid, "e") is False  # one of two approvals
    db.revoke("a1", "Model", "verifier")  # e.g. its key reported stolen
    assert db.fire("b", "verify", aid, "e") is False  # a1's no longer counts: still one
    assert db.fire("a2", "verify", aid, "e") is True  # lab-1 again, since a1's is void
    assert db.admin_sql("SELECT state FROM artefacts WHERE id=?", (aid,))[0][0] == "verified"
