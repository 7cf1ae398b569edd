"""Offline evidence bundles: round trip without a network, validation of malformed bundles,
and verification of altered histories carried in a bundle."""

from __future__ import annotations

import hashlib
import json
import socket
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from proml_sim.errors import BundleError, NodeError, UnknownName
from proml_sim.node import bundle as bundle_mod
from proml_sim.node.bundle import BUNDLE_FORMAT, load_bundle, write_bundle
from proml_sim.node.lineage import Lineage
from proml_sim.node.verify import evidence_digests, verification_scope, verify
from tests.unit.node.evidence_fixtures import World, cli, make_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="module")
def bundle(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bundle(world.source(), "clf", tmp_path_factory.mktemp("b") / "clf.zip")


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def rewrite(src: Path, dest: Path, change: Callable[[dict[str, bytes]], None]) -> Path:
    m = members(src)
    change(m)
    with zipfile.ZipFile(dest, "w") as zf:
        for name, data in m.items():
            zf.writestr(name, data)
    return dest


def edit_json(name: str, fn: Callable[[Any], None]) -> Callable[[dict[str, bytes]], None]:
    def change(m: dict[str, bytes]) -> None:
        obj = json.loads(m[name])
        fn(obj)
        m[name] = json.dumps(obj).encode()
    return change


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    attempts: list[tuple[Any, ...]] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access is blocked in this test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_bundle_holds_what_verification_needs(world: World, bundle: Path) -> None:
    source = world.source()
    m = members(bundle)
    manifest = json.loads(m["manifest.json"])
    assert manifest["format"] == BUNDLE_FORMAT and manifest["chain_id"] == source.chain_id
    assert manifest["contracts"] == dict(source.contracts)
    assert manifest["artefact"]["name"] == "clf" and manifest["artefact"]["version"] == 3
    for lc, ir in source.irs.items():
        assert m[f"ir/{lc}.json"] == ir.canonical_json().encode()
        assert manifest["lifecycles"][lc]["fingerprint"] == ir.fingerprint()
    events = json.loads(m["events.json"])
    assert len(events) == len(source.events())  # all events of both contracts
    lin = Lineage(source)
    wanted = evidence_digests(lin, verification_scope(lin, lin.key("clf")))
    blobs = {n.removeprefix("blobs/") for n in m if n.startswith("blobs/")}
    assert blobs == set(wanted) == set(manifest["blobs"])
    for d in blobs:
        assert hashlib.sha256(m[f"blobs/{d}"]).hexdigest() == d
    # the same evidence gives the same bytes
    again = write_bundle(source, "clf", bundle.with_name("again.zip"))
    assert again.read_bytes() == bundle.read_bytes()


def test_round_trip_verifies_with_sockets_blocked(bundle: Path, no_network: list[Any],
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(OSError, match="blocked"):
        socket.create_connection(("example.org", 80))  # the block works
    no_network.clear()
    source = load_bundle(bundle)
    report = verify(source, "clf")
    assert report.ok, report.render()
    assert report.source == f"bundle {bundle}"
    assert verify(source, "iris").ok
    lin = Lineage(source)
    assert [lin.name(k) for k in lin.ancestors("clf")] == ["iris", "wine", "iris", "clf", "clf"]
    # the CLI needs no node home for it (run in an empty directory)
    monkeypatch.chdir(tmp_path)
    assert cli(["verify", "--bundle", str(bundle)]) == 0
    assert "PASSED" in capsys.readouterr().out
    assert no_network == []


def test_cli_bundle_then_verify(world: World, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "iris.zip"
    assert cli(["bundle", "iris", "-o", str(out), "--json",
                "--home", str(world["lena"].home)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["bundle"] == str(out) and info["blobs"] == 4 and info["missing"] == []
    assert cli(["verify", "iris", "--bundle", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    # nothing pinned: the report says what was taken from the bundle itself
    assert report["unpinned"] == ["checkpoint (--checkpoint)", "chain id (--expect-chain-id)",
                                  "Dataset contract (--expect-contract)"]
    node = world["lena"]
    pins = ["--checkpoint", "0x" + node.backend.head().hash.hex(), "--expect-chain-id",
            str(node.backend.chain_id)]
    pins += [a for lc, addr in node.config["contracts"].items()
             for a in ("--expect-contract", f"{lc}={addr}")]
    assert cli(["verify", "iris", "--bundle", str(out), *pins]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("PASSED") and "not pinned" not in summary
    assert cli(["verify", "iris", "--bundle", str(out)]) == 0
    assert "not pinned, so taken from the evidence itself: checkpoint" in capsys.readouterr().out
    # a bundle of iris does not carry the models: asking for one is an input error
    with pytest.raises(UnknownName, match="no artefact named 'reg' in bundle"):
        cli(["verify", "reg", "--bundle", str(out)])


def test_a_bundle_only_knows_its_own_lifecycles(world: World, tmp_path: Path) -> None:
    out = write_bundle(world.source(), "wine", tmp_path / "wine.zip")
    source = load_bundle(out)
    assert set(source.irs) == {"Dataset"}
    with pytest.raises(NodeError, match="no artefact named 'clf'"):
        verify(source, "clf")


def test_missing_blob_refuses_to_bundle_unless_allowed(tmp_path: Path) -> None:
    w = make_world(tmp_path, verify_model=False)
    bob = w["bob"]
    rec = bob.record_of(bob.history("clf")[-1].digest)
    assert rec is not None
    digest = rec.outputs[0].sha256
    for p in w.copies(digest):
        p.unlink()
    out = tmp_path / "clf.zip"
    with pytest.raises(BundleError, match=f"{digest} \\(output clf.pkl of Model clf v2"):
        write_bundle(w.source(), "clf", out)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".clf.zip")]
    write_bundle(w.source(), "clf", out, allow_missing=True)
    source = load_bundle(out)
    assert digest in source.missing
    report = verify(source, "clf")
    (detail,) = [c.detail for c in report.failures]
    assert f"output clf.pkl of Model clf v2: blob {digest} was unavailable when the bundle" \
        in detail


# -- altered histories inside a structurally valid bundle ------------------------------------
def _first(events: list[dict[str, Any]], kind: str, **args: Any) -> dict[str, Any]:
    return next(e for e in events if e["type"] == kind
                and all(e["args"].get(k) == v for k, v in args.items()))


def test_a_transition_by_an_account_without_the_role_fails_replay(world: World, bundle: Path,
                                                                   tmp_path: Path) -> None:
    eve = world["alice"].address  # a dataset admin, not a model developer
    clf = "0x" + world["bob"].resolve("clf").id.hex()

    def forge(events: list[dict[str, Any]]) -> None:
        ev = _first(events, "Transitioned", transition=0, id=clf)  # clf's train
        ev["args"]["actor"] = eve
        ev["sender"] = eve

    bad = load_bundle(rewrite(bundle, tmp_path / "forged.zip", edit_json("events.json", forge)))
    report = verify(bad, "clf")
    details = [c.detail for c in report.failures if c.name == "replay Model"]
    assert len(details) == 1
    assert f"train of Model clf v2 by {eve} is on chain, but the Model rules refuse it" in \
        details[0]
    assert "RoleNotAllowed: Model.train needs role developer" in details[0]


def test_an_event_not_signed_by_its_actor_fails_replay(world: World, bundle: Path,
                                                       tmp_path: Path) -> None:
    lena = world["lena"].address

    def forge(events: list[dict[str, Any]]) -> None:
        _first(events, "Transitioned", transition=0)["sender"] = lena

    bad = load_bundle(rewrite(bundle, tmp_path / "signer.zip", edit_json("events.json", forge)))
    (detail,) = [c.detail for c in verify(bad, "clf").failures]
    assert f"but the transaction was signed by {lena}" in detail


def test_a_caller_chosen_version_fails(world: World, bundle: Path, tmp_path: Path) -> None:
    def forge(events: list[dict[str, Any]]) -> None:
        _first(events, "Transitioned", transition=0)["args"]["version"] = 7

    bad = load_bundle(rewrite(bundle, tmp_path / "v7.zip", edit_json("events.json", forge)))
    report = verify(bad, "reg")
    assert any("records version 7 after version 1; the contract assigns 2" in c.detail
               for c in report.failures if c.name == "versions")
    assert any(c.name == "replay Model" for c in report.failures)


def test_a_huge_version_fails_without_counting_down_to_it(world: World, bundle: Path,
                                                          tmp_path: Path) -> None:
    # a uint256 version the contract never assigned: the lineage check looks versions up
    # rather than counting down from 10^40 (which exhausted memory)
    clf = "0x" + world["bob"].resolve("clf").id.hex()

    def forge(events: list[dict[str, Any]]) -> None:
        _first(events, "Transitioned", transition=0, id=clf)["args"]["version"] = 10**40

    bad = load_bundle(rewrite(bundle, tmp_path / "big.zip", edit_json("events.json", forge)))
    report = verify(bad, "clf")
    assert any(f"records version {10**40} after version 1" in c.detail
               for c in report.failures if c.name == "versions")


def test_a_replay_disagreement_names_what_differs(world: World, bundle: Path,
                                                 tmp_path: Path) -> None:
    # the target state is not in the event's description: both sides read "train of Model
    # clf v2 by ...", so the report names the differing argument and its states
    clf = "0x" + world["bob"].resolve("clf").id.hex()

    def forge(events: list[dict[str, Any]]) -> None:
        _first(events, "Transitioned", transition=0, id=clf)["args"]["target"] = 1

    bad = load_bundle(rewrite(bundle, tmp_path / "target.zip", edit_json("events.json", forge)))
    details = [c.detail for c in verify(bad, "clf").failures if c.name == "replay Model"]
    assert any("the chain records [train of Model clf v2" in d and "(Transitioned target: the "
               "chain's 1 (requested), the rules' 2 (trained))" in d for d in details), details


def test_a_vote_on_no_proposal_fails_replay(bundle: Path, tmp_path: Path) -> None:
    # after a disagreement the replay follows the chain's facts: a fact about no proposal
    # (or no member domain) changes nothing, where it raised KeyError (exit 70)
    def forge(events: list[dict[str, Any]]) -> None:
        founding = _first(events, "GovExecuted")
        last = events[-1]
        events.append(dict(last, type="GovVoted", lifecycle=founding["lifecycle"],
                           address=founding["address"], log_index=last["log_index"] + 1,
                           tx_hash="0x" + "ab" * 32,
                           args={"id": 99, "domain": "0x" + "00" * 32, "voter": last["sender"],
                                 "count": 1}))

    bad = load_bundle(rewrite(bundle, tmp_path / "vote.zip", edit_json("events.json", forge)))
    details = [c.detail for c in verify(bad, "clf").failures if c.name.startswith("replay")]
    assert any("the vote 1 on consortium proposal 99" in d and "rules refuse it" in d
               for d in details), details


def test_events_from_another_contract_fail_the_chain_check(bundle: Path, tmp_path: Path
                                                           ) -> None:
    def forge(events: list[dict[str, Any]]) -> None:
        _first(events, "Registered")["address"] = "0x" + "22" * 20

    bad = load_bundle(rewrite(bundle, tmp_path / "addr.zip", edit_json("events.json", forge)))
    (detail,) = [c.detail for c in verify(bad, "clf").failures]
    assert "1 Dataset event(s) come from 0x2222" in detail


def test_a_dropped_approval_fails_replay(bundle: Path, tmp_path: Path) -> None:
    def forge(events: list[dict[str, Any]]) -> None:
        events.remove(_first(events, "Approved", count=1))

    bad = load_bundle(rewrite(bundle, tmp_path / "drop.zip", edit_json("events.json", forge)))
    (detail,) = [c.detail for c in verify(bad, "clf").failures if c.name == "replay Model"]
    assert "approval 2 of verify on Model clf v2" in detail
    assert "rules give [approval 1 of verify" in detail


@pytest.mark.parametrize(("field", "value"), [("version", 9), ("version", 0),
                                            ("name", "wine")])
def test_a_manifest_that_misdescribes_its_subject_fails(world: World, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str],
                                                        field: str, value: Any) -> None:
    # the manifest is read by people: what it says of its subject must be what is proven
    out = tmp_path / "iris.zip"
    assert cli(["bundle", "iris", "-o", str(out), "--home", str(world["lena"].home)]) == 0
    assert cli(["verify", "--bundle", str(out)]) == 0
    assert "ok    manifest: manifest.json's subject, Dataset iris v" in capsys.readouterr().out

    def forge(manifest: dict[str, Any]) -> None:
        manifest["artefact"][field] = value

    bad = rewrite(out, tmp_path / "bad.zip", edit_json("manifest.json", forge))
    assert cli(["verify", "--bundle", str(bad), "--json"]) == 1
    (fail,) = [c for c in json.loads(capsys.readouterr().out)["checks"] if not c["ok"]]
    assert fail["name"] == "manifest" and f"{field} {value!r}" in fail["detail"]


def test_a_manifest_naming_an_unregistered_subject_fails(world: World, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    # the subject's id changed to one no event registers: verifying the artefact by its name
    # (so by the events, not the manifest) must still say the manifest was altered
    out = tmp_path / "iris.zip"
    assert cli(["bundle", "iris", "-o", str(out), "--home", str(world["lena"].home)]) == 0
    capsys.readouterr()

    def forge(manifest: dict[str, Any]) -> None:
        manifest["artefact"]["id"] = "0x" + "22" * 32

    bad = rewrite(out, tmp_path / "bad.zip", edit_json("manifest.json", forge))
    assert cli(["verify", "iris", "--bundle", str(bad), "--json"]) == 1
    (fail,) = [c for c in json.loads(capsys.readouterr().out)["checks"] if not c["ok"]]
    assert fail["name"] == "manifest" and "registered by none of the bundle's events" in (
        fail["detail"])


@pytest.mark.parametrize("named", [None, "clf", "id"])
def test_a_bundle_without_its_subjects_registration_fails(world: World, bundle: Path,
                                                          tmp_path: Path, named: str | None,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    # the subject's Registered event removed: a failed check (exit 1) naming it, not an
    # unknown name (exit 2) sending the user to check what they typed
    clf = "0x" + world["bob"].resolve("clf").id.hex()

    def forge(events: list[dict[str, Any]]) -> None:
        events.remove(_first(events, "Registered", id=clf))

    bad = rewrite(bundle, tmp_path / "bad.zip", edit_json("events.json", forge))
    ref = [] if named is None else [clf if named == "id" else named]
    assert cli(["verify", *ref, "--bundle", str(bad), "--json"]) == 1
    failed = {c["name"]: c["detail"] for c in json.loads(capsys.readouterr().out)["checks"]
              if not c["ok"]}
    assert "no event of the bundle registers it" in failed["subject"]
    assert "event omitted: Model Registered" in failed["events"]
    # a name the bundle never held is still the user's input error (exit 2 at the top)
    with pytest.raises(UnknownName, match="no artefact named 'nosuch'"):
        cli(["verify", "nosuch", "--bundle", str(bad)])


def test_a_copied_event_fails_verification_not_name_lookup(world: World, bundle: Path,
                                                           tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    # the subject's registration listed twice names one artefact, not two (no "ambiguous"
    # exit 2): the proofs and the replay name the copy
    clf = "0x" + world["bob"].resolve("clf").id.hex()

    def forge(events: list[dict[str, Any]]) -> None:
        reg = _first(events, "Registered", id=clf)
        events.insert(events.index(reg) + 1, dict(reg))

    bad = rewrite(bundle, tmp_path / "bad.zip", edit_json("events.json", forge))
    assert cli(["verify", "clf", "--bundle", str(bad), "--json"]) == 1
    failed = [c["name"] for c in json.loads(capsys.readouterr().out)["checks"] if not c["ok"]]
    assert "events" in failed and "replay Model" in failed


# -- malformed bundles ---------------------------------------------------------------------------
def test_not_a_zip_or_no_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_text("not a zip")
    with pytest.raises(BundleError, match="not an evidence bundle \\(not a zip file"):
        load_bundle(junk)
    with pytest.raises(BundleError, match="no evidence bundle at"):
        load_bundle(tmp_path / "absent.zip")


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m.pop("manifest.json"), "member manifest.json is missing"),
    (lambda m: m.pop("events.json"), "member events.json is missing"),
    (lambda m: m.pop("ir/Model.json"), "member ir/Model.json is missing"),
    (lambda m: m.__setitem__("manifest.json", b"{not json"),
     "manifest.json: not valid JSON"),
    (lambda m: m.__setitem__("events.json", b"[1,"), "events.json: not valid JSON"),
    (edit_json("manifest.json", lambda d: d.update(format=BUNDLE_FORMAT + 1)),
     "has format 2, newer than this proml-sim reads \\(1\\); upgrade proml-sim"),
    (edit_json("manifest.json", lambda d: d.update(chain_id="1337")),
     "field 'chain_id' must be an integer, not str"),
    (edit_json("manifest.json", lambda d: d.pop("artefact")), "field 'artefact' is missing"),
    (edit_json("manifest.json", lambda d: d["contracts"].update(Model="0x12")),
     "contracts.Model must be a 0x address"),
    (edit_json("events.json", lambda e: e[3].update(block="nine")),
     "events.json: event \\[3\\]: block must be int, not str"),
    (edit_json("events.json", lambda e: e[0]["args"].pop("domain")),
     "events.json: event \\[0\\]: args.domain is missing"),
    (edit_json("events.json", lambda e: e[0].update(type="Minted")),
     "events.json: event \\[0\\]: type: 'Minted' is not a lifecycle event"),
    (edit_json("events.json", lambda e: e.__setitem__(0, "x")),
     "events.json: event \\[0\\]: an event must be a JSON object"),
    # an argument is read before the chain proofs are checked: the event ABI's bounds hold
    (edit_json("events.json", lambda e: _first(e, "Transitioned")["args"].update(
        transition=256)), "args.transition must be a non-negative integer below 2\\^8"),
    (edit_json("events.json", lambda e: _first(e, "Transitioned")["args"].update(
        target=10**40)), "args.target must be a non-negative integer below 2\\^8"),
    (edit_json("events.json", lambda e: _first(e, "Approved")["args"].update(count=2**256)),
     "args.count must be a non-negative integer below 2\\^256"),
    (edit_json("events.json", lambda e: _first(e, "Transitioned")["args"].update(
        transition=200)), "args.transition 200 is no transition of ir/Model.json"),
    (edit_json("events.json", lambda e: _first(e, "Registered")["args"].update(state=0)),
     "args.state 0 is no state of ir/Dataset.json \\(its states: numbered 1 to 5\\)"),
    (edit_json("events.json", lambda e: _first(e, "Registered")["args"].update(extra=1)),
     "args.extra is not an argument of Registered"),
    (lambda m: m.__setitem__("ir/Model.json", m["ir/Model.json"].replace(b"verifier",
                                                                          b"verifyer")),
     "ir/Model.json: its SHA-256 is not the fingerprint"),
    (lambda m: m.__setitem__("blobs/" + "00" * 32, b"stray"), "blobs/0000.*is not part of"),
])
def test_malformed_bundles_are_refused(bundle: Path, tmp_path: Path,
                                       change: Callable[[dict[str, bytes]], None],
                                       message: str) -> None:
    with pytest.raises(BundleError, match=message) as info:
        load_bundle(rewrite(bundle, tmp_path / "bad.zip", change))
    assert "upgrade proml-sim" in str(info.value) or "proml bundle ARTEFACT -o FILE" in str(
        info.value)


def _with_ir(doc: Any) -> Callable[[dict[str, bytes]], None]:
    """Replace ir/Model.json by ``doc`` and state its fingerprint in the manifest, as a forger
    would (so the IR itself, not its hash, is what is checked)."""
    def change(m: dict[str, bytes]) -> None:
        raw = json.dumps(doc).encode()
        m["ir/Model.json"] = raw
        manifest = json.loads(m["manifest.json"])
        manifest["lifecycles"]["Model"]["fingerprint"] = hashlib.sha256(raw).hexdigest()
        m["manifest.json"] = json.dumps(manifest).encode()
    return change


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: [], "a lifecycle IR must be a JSON object, not list"),
    (lambda d: None, "a lifecycle IR must be a JSON object, not NoneType"),
    (lambda d: dict(d, consortium="x"), "IR.consortium must be an object or null"),
    (lambda d: dict(d, states=[]), "states must list 1 to 255 entries"),
    (lambda d: dict(d, states=d["states"][:2]), "names '.*', which is not one of the IR's states"),
    (lambda d: dict(d, transitions={}), "IR.transitions must be a list"),
    (lambda d: dict(d, states=[dict(d["states"][0], initial=None), *d["states"][1:]]),
     "states\\[0\\].initial must be true or false"),
    (lambda d: dict(d, transitions=[dict(d["transitions"][0], index="x"),
                                    *d["transitions"][1:]]),
     "transitions\\[0\\].index must be an integer"),
    (lambda d: dict(d, transitions=[dict(d["transitions"][0], name=None),
                                    *d["transitions"][1:]]),
     "transitions\\[0\\].name must be a string"),
])
def test_a_malformed_ir_is_refused_naming_its_field(bundle: Path, tmp_path: Path,
                                                    edit: Callable[[Any], Any],
                                                    message: str) -> None:
    ir = json.loads(members(bundle)["ir/Model.json"])
    bad = rewrite(bundle, tmp_path / "ir.zip", _with_ir(edit(ir)))
    with pytest.raises(BundleError, match="ir/Model.json: not a lifecycle IR \\(.*" + message):
        load_bundle(bad)


def test_events_beyond_the_ir_are_refused(bundle: Path, tmp_path: Path) -> None:
    # rules without transitions (fingerprint restated): the events name transitions they lack
    ir = json.loads(members(bundle)["ir/Model.json"])
    bad = rewrite(bundle, tmp_path / "ir.zip", _with_ir(dict(ir, transitions=[])))
    with pytest.raises(BundleError, match=r"args.transition 0 is no transition of "
                                          r"ir/Model.json \(its transitions: none\)"):
        load_bundle(bad)


def test_a_listed_blob_no_event_names_fails(bundle: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    # hashing to its name and listed is not enough: a blob the history never names is no
    # evidence of it (the same blob present but unlisted is refused as an altered bundle)
    extra = b"a file no record mentions"
    digest = hashlib.sha256(extra).hexdigest()

    def add(m: dict[str, bytes]) -> None:
        m[f"blobs/{digest}"] = extra
        manifest = json.loads(m["manifest.json"])
        manifest["blobs"][digest] = len(extra)
        m["manifest.json"] = json.dumps(manifest).encode()

    bad = rewrite(bundle, tmp_path / "listed.zip", add)
    assert cli(["verify", "--bundle", str(bad), "--json"]) == 1
    (fail,) = [c for c in json.loads(capsys.readouterr().out)["checks"] if not c["ok"]]
    assert fail["name"] == "blob" and f"blob {digest} is listed in manifest.json" in (
        fail["detail"]) and "not evidence of this history" in fail["detail"]
    assert cli(["verify", "--bundle", str(bundle)]) == 0
    assert "blobs manifest.json lists is named by the bundle's events" in (
        capsys.readouterr().out)


@pytest.mark.parametrize("member", ["proofs.json", "events.json", "manifest.json"])
def test_a_member_inflating_past_the_cap_is_refused(bundle: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    member: str) -> None:
    # a zip bomb: a few KB that inflate past the cap are refused after reading cap + 1 bytes
    monkeypatch.setattr(bundle_mod, "MAX_MEMBER_BYTES", 1 << 20)
    assert load_bundle(bundle).events()  # the genuine bundle is well within it
    bomb = rewrite(bundle, tmp_path / "bomb.zip",
                   lambda m: m.__setitem__(member, b"[" + b" " * (2 << 20) + b"]"))
    reads: list[int] = []
    real_read = zipfile.ZipExtFile.read

    def read(self: zipfile.ZipExtFile, n: int | None = -1) -> bytes:
        reads.append(-1 if n is None else n)
        return real_read(self, n)

    monkeypatch.setattr(zipfile.ZipExtFile, "read", read)
    with pytest.raises(BundleError, match=f"malformed evidence bundle: {member}: inflates to "
                                          "more than 1 MiB, the cap on one member"):
        load_bundle(bomb)
    assert (1 << 20) + 1 in reads and -1 not in reads  # a bounded read, never read whole


def test_the_members_read_whole_share_one_cap(bundle: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = {n: len(b) for n, b in members(bundle).items()}
    monkeypatch.setattr(bundle_mod, "MAX_READ_BYTES", sizes["manifest.json"] + 10)
    with pytest.raises(BundleError, match=r"ir/\w+\.json: inflates to more than the 10 bytes "
                                          r"left of the [\d,]+ bytes cap on the members read "
                                          "whole"):
        load_bundle(bundle)


def test_a_blob_whose_name_is_not_its_hash_is_refused(bundle: Path, tmp_path: Path) -> None:
    def swap(m: dict[str, bytes]) -> None:
        name = next(n for n in m if n.startswith("blobs/"))
        m[name] = b"other bytes"

    with pytest.raises(BundleError, match=r"its bytes hash to .*not to its name"):
        load_bundle(rewrite(bundle, tmp_path / "swap.zip", swap))


def test_a_listed_blob_that_is_absent_is_refused(bundle: Path, tmp_path: Path) -> None:
    def drop(m: dict[str, bytes]) -> None:
        m.pop(next(n for n in m if n.startswith("blobs/")))

    with pytest.raises(BundleError, match=r"member blobs/[0-9a-f]{64} is missing"):
        load_bundle(rewrite(bundle, tmp_path / "drop.zip", drop))


@pytest.mark.parametrize("where", [0, 2])
def test_a_damaged_member_is_refused(bundle: Path, tmp_path: Path, where: int) -> None:
    data = bytearray(bundle.read_bytes())
    blob = next(n for n in members(bundle) if n.startswith("blobs/"))
    with zipfile.ZipFile(bundle) as zf:
        info = zf.getinfo(blob)
    # flip one byte inside the compressed data of that member: its CRC no longer matches
    head = info.header_offset
    name_len = int.from_bytes(data[head + 26:head + 28], "little")
    extra_len = int.from_bytes(data[head + 28:head + 30], "little")
    offset = head + 30 + name_len + extra_len + (info.compress_size // where if where else 0)
    data[offset] ^= 0xFF
    broken = tmp_path / "broken.zip"
    broken.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="malformed evidence bundle"):
        load_bundle(broken)


def test_cli_verify_of_a_malformed_bundle_is_an_input_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(BundleError):
        cli(["verify", "--bundle", str(junk)])
