"""Keys at rest through the CLI on an embedded chain: encrypted homes, read-only commands that
never ask for the key, wrong passphrases, export/import/rotate (roles moved on chain, the old key
kept), homes with an old plain keys.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import keccak

from proml_sim.cli import build_parser, main
from proml_sim.node import ProMLNode
from proml_sim.node import keys as K

#: commands that only read: they must never unlock the key (C adds ls and whoami)
READ_ONLY = [["status"], ["status", "m"], ["history", "m"], ["lineage", "m"],
             ["verify", "m"], ["bundle", "m", "-o", "{tmp}/b.zip"], ["export", "m"], ["ls"],
             ["whoami"], ["key", "show"], ["key", "export"]]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture
def homes(tmp_path, capsys, monkeypatch):
    """admin (new chain) and dev, both encrypted under their own passphrase files; dev holds
    Model.operator and developer and registered model m."""
    monkeypatch.delenv(K.PASSPHRASE_ENV, raising=False)
    monkeypatch.setattr(K, "_interactive", lambda: False)
    pw = {}
    for name in ("admin", "dev"):
        pw[name] = tmp_path / f"{name}.pw"
        pw[name].write_text(f"{name} passphrase\n")
    a, d = str(tmp_path / "admin"), str(tmp_path / "dev")
    assert run(capsys, "init", "--name", "admin", "--domain", "consortium", "--new-chain",
               "--home", a, "--seed", "ka", "--passphrase-file", str(pw["admin"]))[0] == 0
    assert run(capsys, "init", "--name", "dev", "--domain", "dev-co", "--chain",
               f"{a}/chain", "--home", d, "--seed", "kd", "--passphrase-file",
               str(pw["dev"]))[0] == 0
    dev_addr = json.loads((tmp_path / "dev" / "node.json").read_text())["address"]
    # the consortium default: dev-co joins (the founder's vote is the quorum of one member),
    # then dev's own node enrols itself
    code, out, _ = run(capsys, "consortium", "propose", "Model", "add_domain", "--domain",
                       "dev-co", "--admin", dev_addr, "--roles", "operator,developer", "--json",
                       "--home", a, "--passphrase-file", str(pw["admin"]))
    assert code == 0
    assert run(capsys, "consortium", "execute", "Model", str(json.loads(out)["proposal"]),
               "--home", a, "--passphrase-file", str(pw["admin"]))[0] == 0
    for role in ("operator", "developer"):
        assert run(capsys, "grant", "Model", role, dev_addr, "--domain", "dev-co", "--home", d,
                   "--passphrase-file", str(pw["dev"]))[0] == 0
    assert run(capsys, "register", "m", "--lifecycle", "Model", "--home", d,
               "--passphrase-file", str(pw["dev"]))[0] == 0
    return tmp_path, pw


def test_homes_hold_only_an_encrypted_key(homes):
    tmp, pw = homes
    for name in ("admin", "dev"):
        ks = tmp / name / K.KEYSTORE
        assert ks.stat().st_mode & 0o777 == 0o600 and not (tmp / name / K.PLAIN_KEYS).exists()
        data = json.loads(ks.read_text())
        assert data["version"] == 3 and "private_key" not in ks.read_text()
        assert K.keystore_address(data) == json.loads(
            (tmp / name / "node.json").read_text())["address"]


def test_read_only_commands_never_ask_for_the_key(homes, capsys, monkeypatch):
    tmp, _ = homes

    def no_prompt(prompt: str = "") -> str:
        raise AssertionError(f"a read-only command prompted: {prompt}")

    monkeypatch.setattr(K, "_interactive", lambda: True)  # a prompt would be possible...
    monkeypatch.setattr(K.getpass, "getpass", no_prompt)  # ...and fails the test if shown
    known = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    ran = 0
    for argv in READ_ONLY:
        if argv[0] not in known:
            continue  # a command another branch adds
        args = [a.format(tmp=tmp) for a in argv] + ["--home", str(tmp / "dev")]
        code, out, err = run(capsys, *args)
        assert code == 0, (argv, err)
        ran += 1
    assert ran >= 8


def test_wrong_or_missing_passphrase_is_exit_2_and_changes_nothing(homes, capsys, tmp_path):
    tmp, pw = homes
    bad = tmp / "bad.pw"
    bad.write_text("not it\n")
    d = str(tmp / "dev")
    head = ProMLNode.open(d).backend.head().number
    code, _, err = run(capsys, "record", "train", "m", "--home", d, "--passphrase-file", str(bad))
    assert code == 2
    assert err.strip() == (f"proml: error: wrong passphrase for keystore {d}/keystore.json; check "
                           "--passphrase-file or $PROML_PASSPHRASE")
    code, _, err = run(capsys, "record", "train", "m", "--home", d)
    assert code == 2 and "--passphrase-file FILE, set $PROML_PASSPHRASE, or run in a terminal" \
        in err
    assert ProMLNode.open(d).backend.head().number == head
    code, _, err = run(capsys, "init", "--name", "x", "--domain", "x", "--new-chain", "--home",
                       str(tmp / "x"))
    assert code == 2 and "needs a passphrase" in err and not (tmp / "x").exists()


def test_passphrase_from_the_environment(homes, capsys, monkeypatch):
    tmp, pw = homes
    monkeypatch.setenv(K.PASSPHRASE_ENV, "dev passphrase")
    code, out, _ = run(capsys, "record", "train", "m", "--home", str(tmp / "dev"))
    assert code == 0 and "trained" in out


def test_export_then_import_the_same_key_keeps_the_old_file(homes, capsys):
    tmp, pw = homes
    d = str(tmp / "dev")
    out = tmp / "exported.json"
    assert run(capsys, "key", "export", "--home", d, "--out", str(out))[0] == 0
    assert out.read_bytes() == (tmp / "dev" / K.KEYSTORE).read_bytes()  # the file as it is
    assert run(capsys, "key", "export", "--home", d, "--out", str(out))[0] == 2  # no overwrite
    new_pw = tmp / "new.pw"
    new_pw.write_text("a new passphrase\n")
    re = tmp / "reencrypted.json"
    assert run(capsys, "key", "export", "--home", d, "--out", str(re), "--reencrypt",
               "--passphrase-file", str(pw["dev"]), "--new-passphrase-file", str(new_pw))[0] == 0
    addr = json.loads((tmp / "dev" / "node.json").read_text())["address"]
    assert Account.from_key(Account.decrypt(json.loads(re.read_text()), "a new passphrase")
                            ).address == addr
    code, text, _ = run(capsys, "key", "import", str(re), "--home", d, "--new-passphrase-file",
                        str(new_pw), "--json")
    assert code == 0
    info = json.loads(text)
    assert len(info["retired"]) == 1 and Path(info["retired"][0]).exists()
    # the home now opens with the imported file's passphrase
    assert run(capsys, "record", "train", "m", "--home", d, "--passphrase-file",
               str(new_pw))[0] == 0
    code, _, err = run(capsys, "key", "export", "--home", d, "--plain", "--passphrase-file",
                       str(new_pw))
    assert code == 0 and "UNENCRYPTED" in err
    plain = tmp / "plain.json"  # to a file, --json: the object docs/json.md gives
    code, text, _ = run(capsys, "key", "export", "--home", d, "--plain", "--out", str(plain),
                        "--passphrase-file", str(new_pw), "--json")
    assert code == 0 and json.loads(text) == {"address": addr, "out": str(plain)}


def test_rotate_moves_roles_and_keeps_the_old_key(homes, capsys):
    tmp, pw = homes
    a, d = str(tmp / "admin"), str(tmp / "dev")
    old_admin = json.loads((tmp / "admin" / "node.json").read_text())["address"]
    code, out, _ = run(capsys, "key", "rotate", "--home", a, "--passphrase-file",
                       str(pw["admin"]), "--json")
    assert code == 0
    rot = json.loads(out)
    new_admin = rot["new_address"]
    assert rot["old_address"] == old_admin != new_admin
    assert set(rot["granted"]) == set(rot["revoked"]) == {"Dataset.admin", "Model.admin"}
    # its domain-admin seats: Dataset's consortium has one member (its own vote is the
    # quorum); Model's has two (dev-co must vote)
    assert rot["seats"] == ["Dataset"] and rot["pending"][1] == "proml consortium execute Model 2"
    assert rot["pending"][0].startswith("proml consortium vote Model 2 ")
    assert run(capsys, "consortium", "vote", "Model", "2", "--home", d, "--passphrase-file",
               str(pw["dev"]))[0] == 0
    assert run(capsys, *rot["pending"][1].split()[1:], "--home", d, "--passphrase-file",
               str(pw["dev"]))[0] == 0
    node = ProMLNode.open(a)
    assert node.address == new_admin and node.backend.balance(new_admin) > 0
    for lc, c in node.clients.items():
        assert c.has_role(new_admin, "admin") and not c.roles_of(old_admin), lc
        assert c.domain_of(new_admin) == b"consortium".ljust(32, b"\0")
        assert c.snapshot().members[b"consortium".ljust(32, b"\0")][1] == new_admin, lc
    retired = [Path(p) for p in rot["retired"]]
    assert retired[0].parent == tmp / "admin" / K.RETIRED
    old_key = K.decrypt_keystore(K.load_keystore(retired[0]), "admin passphrase", retired[0])
    assert Account.from_key(old_key).address == old_admin
    # the same passphrase unlocks the new key, and the new admin can act
    code, out, _ = run(capsys, "key", "rotate", "--home", d, "--passphrase-file", str(pw["dev"]),
                       "--json")
    assert code == 0
    rot = json.loads(out)
    new_dev, old_dev = rot["new_address"], rot["old_address"]
    # dev is dev-co's admin: it moves its own roles; its seat needs the other member's vote
    assert sorted(rot["granted"]) == sorted(rot["revoked"]) == ["Model.developer",
                                                                 "Model.operator"]
    assert rot["pending"][0].startswith("proml consortium vote Model 3 ")
    assert run(capsys, "consortium", "vote", "Model", "3", "--home", a, "--passphrase-file",
               str(pw["admin"]))[0] == 0
    assert run(capsys, *rot["pending"][1].split()[1:], "--home", a, "--passphrase-file",
               str(pw["admin"]))[0] == 0
    model = ProMLNode.open(d).client("Model")
    assert model.has_role(new_dev, "developer") and not model.roles_of(old_dev)
    assert run(capsys, "record", "train", "m", "--home", d, "--passphrase-file",
               str(pw["dev"]))[0] == 0


def test_import_replace_rotates_to_a_geth_keystore(homes, capsys):
    tmp, pw = homes
    a = str(tmp / "admin")
    private = keccak(b"imported admin key")
    ks = tmp / "UTC--import"
    ks.write_text(json.dumps(Account.encrypt(private, "theirs", iterations=2**10)))
    theirs = tmp / "theirs.pw"
    theirs.write_text("theirs\n")
    code, _, err = run(capsys, "key", "import", str(ks), "--home", a, "--new-passphrase-file",
                       str(theirs))
    assert code == 2 and "pass --replace" in err
    code, out, _ = run(capsys, "key", "import", str(ks), "--home", a, "--replace",
                       "--new-passphrase-file", str(theirs), "--passphrase-file",
                       str(pw["admin"]), "--json")
    assert code == 0
    new = Account.from_key(private).address
    assert json.loads(out)["new_address"] == new
    assert json.loads((tmp / "admin" / K.KEYSTORE).read_text()) == json.loads(ks.read_text())
    assert ProMLNode.open(a).client("Model").has_role(new, "admin")


def test_a_keystore_whose_key_is_not_the_address_it_declares_is_refused(homes, capsys):
    # a changed digit of the iv decrypts (the MAC does not cover it) to another key: `key
    # import --replace` rotated the node to that key and reported success, and the home's key
    # file then declared an address the node no longer had
    tmp, pw = homes
    a = str(tmp / "admin")
    data = Account.encrypt(keccak(b"imported admin key"), "theirs", iterations=2**10)
    iv = data["crypto"]["cipherparams"]["iv"]
    data["crypto"]["cipherparams"]["iv"] = ("1" if iv[0] != "1" else "2") + iv[1:]
    ks = tmp / "UTC--damaged"
    ks.write_text(json.dumps(data))
    theirs = tmp / "theirs.pw"
    theirs.write_text("theirs\n")
    before = (tmp / "admin" / "node.json").read_bytes()
    code, _, err = run(capsys, "key", "import", str(ks), "--home", a, "--replace",
                       "--new-passphrase-file", str(theirs), "--passphrase-file",
                       str(pw["admin"]))
    assert code == 2 and "declares the address" in err and "iv or ciphertext is damaged" in err
    assert (tmp / "admin" / "node.json").read_bytes() == before
    assert not (tmp / "admin" / K.RETIRED).exists()
    # a plain key file whose address entry is not its key's: a digit of either changed
    plain = tmp / "plain.json"
    private = keccak(b"imported admin key")
    plain.write_text(json.dumps({"address": "0x" + "ab" * 20, "private_key": private.hex()}))
    code, _, err = run(capsys, "key", "import", str(plain), "--plain", "--home", a,
                       "--replace", "--new-passphrase-file", str(theirs), "--passphrase-file",
                       str(pw["admin"]))
    assert code == 2 and "a digit of the key is damaged; nothing was imported" in err, err
    assert (tmp / "admin" / "node.json").read_bytes() == before


def test_an_install_that_cannot_write_the_new_key_puts_the_old_one_back(homes, capsys,
                                                                           monkeypatch):
    # `key import` of the node's own key retires the current file, then writes the new one: a
    # write that failed (a full disk) left the home with no key file at all
    tmp, pw = homes
    d = tmp / "dev"
    out = tmp / "exported.json"
    assert run(capsys, "key", "export", "--home", str(d), "--out", str(out))[0] == 0
    before = (d / K.KEYSTORE).read_bytes()

    def full(path, obj):
        raise K.KeystoreError(f"cannot write {path}: No space left on device; free space")

    monkeypatch.setattr(K, "write_secret", full)
    code, _, err = run(capsys, "key", "import", str(out), "--home", str(d),
                       "--new-passphrase-file", str(pw["dev"]))
    assert code == 2 and "No space left on device; nothing was changed" in err, err
    assert (d / K.KEYSTORE).read_bytes() == before
    assert not list((d / K.RETIRED).iterdir())


def test_old_plain_keys_json_home_opens_and_can_be_encrypted(tmp_path, capsys, monkeypatch):
    home = tmp_path / "old"
    node = ProMLNode.init(home, name="old", domain="old-co", new_chain=True, seed="old",
                          plain_key=True)
    data = json.loads((home / K.PLAIN_KEYS).read_text())
    assert data.pop("plain") is True
    (home / K.PLAIN_KEYS).write_text(json.dumps(data))  # as proml-sim wrote it before
    monkeypatch.delenv(K.PASSPHRASE_ENV, raising=False)
    code, _, err = run(capsys, "grant", "Model", "operator", node.address, "--domain", "old-co",
                       "--home", str(home))
    assert code == 0 and err.count("\n") == 1 and "proml key encrypt" in err
    pwf = tmp_path / "pw"
    pwf.write_text("now encrypted\n")
    code, out, err = run(capsys, "key", "encrypt", "--home", str(home), "--passphrase-file",
                         str(pwf))
    assert code == 0 and not (home / K.PLAIN_KEYS).exists()
    assert next(iter((home / K.RETIRED).iterdir())).name.endswith(".plain.json")
    code, _, err = run(capsys, "status", "--home", str(home))
    assert code == 0 and err == ""  # no notice any more, no passphrase needed to read
    assert run(capsys, "grant", "Model", "developer", node.address, "--domain", "old-co",
               "--home", str(home), "--passphrase-file", str(pwf))[0] == 0
    code, _, err = run(capsys, "key", "encrypt", "--home", str(home), "--passphrase-file",
                       str(pwf))
    assert code == 2 and "already encrypted" in err


def test_an_interrupted_rotation_resumes_with_the_same_key(tmp_path, monkeypatch):
    from proml_sim.errors import KeystoreError

    home = tmp_path / "n"
    node = ProMLNode.init(home, name="n", domain="n-co", new_chain=True, seed="n",
                          passphrase="pw")
    old = node.address

    def crash(*a: object, **k: object) -> int:
        raise KeystoreError("simulated crash before funding")

    monkeypatch.setattr(K, "_fund", crash)
    with pytest.raises(KeystoreError, match="simulated"):
        K.rotate(node)
    pending = json.loads((home / K.NEXT_KEYSTORE).read_text())
    assert json.loads((home / "node.json").read_text())["address"] == old  # not switched yet
    assert (home / K.KEYSTORE).exists()  # the old key still in place
    monkeypatch.undo()
    calls = []
    real = K.set_home_address

    def crash_once(n: ProMLNode, a: str) -> None:
        calls.append(a)
        if len(calls) == 1:
            raise KeystoreError("simulated crash before node.json")
        real(n, a)

    monkeypatch.setattr(K, "set_home_address", crash_once)
    node = ProMLNode.open(home, passphrase="pw")
    with pytest.raises(KeystoreError, match=r"before node\.json"):
        K.rotate(node)  # resumed: same new key, roles moved, files swapped
    new = K.keystore_address(pending)
    assert calls == [new] and not (home / K.NEXT_KEYSTORE).exists()
    node = ProMLNode.open(home, passphrase="pw")
    rot = K.rotate(node)  # finishes: only node.json was left
    assert (rot.old, rot.new) == (old, new) and calls == [new, new]
    node = ProMLNode.open(home, passphrase="pw")
    assert node.address == new and node.client("Model").has_role(new, "admin")
    assert not node.client("Model").roles_of(old)
    assert len(list((home / K.RETIRED).iterdir())) == 1


def test_rotation_funds_by_transfer_off_the_embedded_chain():
    """On a chain without the dev faucet (an RPC node) the new address gets the old key's
    balance less the transfer's fee."""
    import contextlib
    from types import SimpleNamespace

    from proml_sim.chain import KeyRing, PyEVMBackend

    keys = KeyRing.from_seed("rotation-funding", 2)
    old, new = keys.addresses
    backend = PyEVMBackend(funded=[old])
    node = SimpleNamespace(backend=backend, _writing=contextlib.nullcontext)
    before = backend.balance(old)
    sent = K._fund(node, keys.signer(old), new)  # type: ignore[arg-type]
    assert sent > 0 and backend.balance(new) == sent
    assert 0 <= backend.balance(old) < before - sent  # the fee was paid from what is left
    assert K._fund(node, keys.signer(old), new) == 0  # funded already: nothing sent


def test_rotate_to_a_new_passphrase(tmp_path, capsys, monkeypatch):
    from proml_sim.errors import WrongPassphrase

    home = tmp_path / "n"
    ProMLNode.init(home, name="n", domain="n-co", new_chain=True, seed="np", passphrase="old pw")
    monkeypatch.setenv(K.NEW_PASSPHRASE_ENV, "new pw")
    monkeypatch.setenv(K.PASSPHRASE_ENV, "old pw")
    code, out, _ = run(capsys, "key", "rotate", "--home", str(home), "--json")
    assert code == 0
    new = json.loads(out)["new_address"]
    with pytest.raises(WrongPassphrase):
        ProMLNode.open(home, passphrase="old pw").signer  # noqa: B018
    assert ProMLNode.open(home, passphrase="new pw").signer.address == new
