"""Keys at rest: the v3 keystore, passphrase sources, wrong passphrases, plain and legacy key
files (no chain needed here; the CLI and rotation are in tests/integration/test_keys_cli.py)."""

from __future__ import annotations

import json
import os
import stat
import sys
import uuid
from pathlib import Path

import pytest
from Crypto.Cipher import AES
from Crypto.Protocol.KDF import scrypt
from eth_account import Account
from eth_utils import keccak

from proml_sim.errors import KeystoreError, NodeError, WrongPassphrase
from proml_sim.node import keys as K

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
KEY = keccak(b"unit test key")
ADDRESS = Account.from_key(KEY).address


@pytest.fixture
def no_sources(monkeypatch):
    """No passphrase in the environment and stdin not a terminal."""
    monkeypatch.delenv(K.PASSPHRASE_ENV, raising=False)
    monkeypatch.delenv(K.NEW_PASSPHRASE_ENV, raising=False)
    monkeypatch.setattr(K, "_interactive", lambda: False)


def geth_light_keystore(private_key: bytes, passphrase: str) -> dict:
    """A v3 file written by hand from the Web3 Secret Storage definition, with geth's "light"
    scrypt parameters (n=4096, r=8, p=6: a p that eth-account never writes), so the reader is
    checked against the format, not against its own writer."""
    salt, iv = os.urandom(32), os.urandom(16)
    dk = scrypt(passphrase.encode(), salt, 32, N=4096, r=8, p=6)  # type: ignore[arg-type]
    ct = AES.new(dk[:16], AES.MODE_CTR, nonce=b"", initial_value=iv).encrypt(private_key)
    return {"version": 3, "id": str(uuid.uuid4()),
            "address": Account.from_key(private_key).address[2:].lower(),
            "crypto": {"cipher": "aes-128-ctr", "cipherparams": {"iv": iv.hex()},
                       "ciphertext": ct.hex(), "kdf": "scrypt",
                       "kdfparams": {"dklen": 32, "n": 4096, "r": 8, "p": 6, "salt": salt.hex()},
                       "mac": keccak(dk[16:32] + ct).hex()}}


def test_round_trip_uses_the_documented_cost_and_mode_0600(tmp_path, monkeypatch):
    monkeypatch.delenv(K.LIGHT_KDF_ENV, raising=False)
    data = K.encrypt_key(KEY, "pw")
    assert data["version"] == 3 and data["crypto"]["kdf"] == "scrypt"
    assert data["crypto"]["kdfparams"]["n"] == K.SCRYPT_N == 2**16
    path = K.write_secret(tmp_path / K.KEYSTORE, data)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert K.decrypt_keystore(K.load_keystore(path), "pw", path) == KEY
    assert K.keystore_address(data) == ADDRESS
    with pytest.raises(KeystoreError, match="already exists"):  # never over a key file
        K.write_secret(path, {"other": 1})
    assert K.decrypt_keystore(K.load_keystore(path), "pw", path) == KEY
    monkeypatch.setenv(K.LIGHT_KDF_ENV, "1")
    assert K.encrypt_key(KEY, "pw")["crypto"]["kdfparams"]["n"] == K.LIGHT_SCRYPT_N


def test_geth_standard_keystore_from_eth_account_decrypts():
    """eth-account's default parameters are geth's standard ones (n=2**18, r=8, p=1); the
    reader takes them from the file."""
    path = FIXTURES / "keystore_geth_standard.json"
    data = K.load_keystore(path)
    assert data["crypto"]["kdfparams"]["n"] == 2**18
    key = K.decrypt_keystore(data, "geth-standard-passphrase", path)
    assert Account.from_key(key).address == K.keystore_address(data)
    assert key == keccak(b"proml-sim keystore fixture")


def test_hand_written_geth_light_keystore_decrypts():
    data = geth_light_keystore(KEY, "light")
    assert K.decrypt_keystore(data, "light", "x.json") == KEY
    assert K.keystore_address(data) == ADDRESS  # geth's lowercase address without 0x


def test_wrong_passphrase_is_a_clear_error(tmp_path):
    path = K.write_secret(tmp_path / K.KEYSTORE, K.encrypt_key(KEY, "right", n=2**10))
    with pytest.raises(WrongPassphrase, match=f"wrong passphrase for keystore {path}") as e:
        K.decrypt_keystore(K.load_keystore(path), "wrong", path)
    assert isinstance(e.value, PermissionError) and isinstance(e.value, NodeError)


@pytest.mark.parametrize("content, match", [
    (b"not json", "not a keystore"),
    (b'{"version": 2, "crypto": {}}', "not a version 3 keystore"),
    (b"[1, 2]", "not a version 3 keystore"),
    (b'{"version": 3, "crypto": {"kdf": "scrypt"}}', "malformed|cannot be decrypted"),
    (b'{"version": 3, "crypto": {"kdf": "bcrypt", "cipher": "aes-128-ctr", "ciphertext": "00",'
     b' "cipherparams": {"iv": "00"}, "kdfparams": {}, "mac": "00"}}',
     "malformed|cannot be decrypted"),
])
def test_malformed_keystores_are_named_errors(tmp_path, content, match):
    path = tmp_path / "ks.json"
    path.write_bytes(content)
    with pytest.raises(KeystoreError, match=match):
        K.decrypt_keystore(K.load_keystore(path), "pw", path)
    with pytest.raises(KeystoreError, match="no keystore at"):
        K.load_keystore(tmp_path / "missing.json")
    with pytest.raises(KeystoreError, match="directory"):
        K.load_keystore(tmp_path)


def test_passphrase_sources_in_order(tmp_path, monkeypatch, no_sources):
    pfile = tmp_path / "pw.txt"
    pfile.write_text("from-file\nsecond line ignored\n")
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return "from-prompt"

    monkeypatch.setattr(K.getpass, "getpass", fake_getpass)
    with pytest.raises(KeystoreError) as e:  # nothing at all: the three ways are named
        K.PassphraseSource().get("keystore X")
    assert all(w in str(e.value) for w in ("--passphrase-file", "$PROML_PASSPHRASE",
                                           "terminal"))
    monkeypatch.setattr(K, "_interactive", lambda: True)
    assert K.PassphraseSource().get("keystore X") == "from-prompt"
    assert prompts == ["passphrase for keystore X: "]
    monkeypatch.setenv(K.PASSPHRASE_ENV, "from-env")
    assert K.PassphraseSource().get("keystore X") == "from-env"
    assert K.PassphraseSource(file=pfile).get("keystore X") == "from-file"
    assert K.PassphraseSource(file=pfile, text="given").get("keystore X") == "given"
    assert len(prompts) == 1  # the prompt only when nothing else is given


def test_prompt_confirmation_and_empty_passphrases(tmp_path, monkeypatch, no_sources):
    monkeypatch.setattr(K, "_interactive", lambda: True)
    answers = iter(["one", "two"])
    monkeypatch.setattr(K.getpass, "getpass", lambda prompt="": next(answers))
    with pytest.raises(KeystoreError, match="differ"):
        K.PassphraseSource().get("new keystore", confirm=True)

    def eof(prompt: str = "") -> str:
        raise EOFError

    monkeypatch.setattr(K.getpass, "getpass", eof)
    with pytest.raises(KeystoreError, match="no passphrase entered"):
        K.PassphraseSource().get("keystore X")
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(KeystoreError, match="empty"):
        K.PassphraseSource(file=empty).get("keystore X")
    with pytest.raises(KeystoreError, match="cannot read passphrase file"):
        K.PassphraseSource(file=tmp_path / "nope").get("keystore X")
    with pytest.raises(KeystoreError, match="is a directory"):
        K.PassphraseSource(file=tmp_path).get("keystore X")
    (tmp_path / "latin1").write_bytes(b"\xff\xfe")
    with pytest.raises(KeystoreError, match="not UTF-8"):
        K.PassphraseSource(file=tmp_path / "latin1").get("keystore X")
    monkeypatch.setenv(K.PASSPHRASE_ENV, b"\xff".decode(errors="surrogateescape"))
    with pytest.raises(KeystoreError, match="not valid UTF-8"):
        K.PassphraseSource().get("keystore X")
    with pytest.raises(KeystoreError, match="a plain key has no passphrase"):
        K.new_key_file(KEY, ADDRESS, plain=True, passphrase=K.PassphraseSource(text="x"),
                       what="home")


def test_prompt_through_a_real_terminal(tmp_path):
    """getpass on a pty: the passphrase typed at the prompt unlocks the keystore."""
    pty = pytest.importorskip("pty")
    path = K.write_secret(tmp_path / K.KEYSTORE, K.encrypt_key(KEY, "typed", n=2**10))
    code = ("import sys; from proml_sim.node import keys as K; "
            f"d = K.load_keystore({str(path)!r}); "
            "k = K.decrypt_keystore(d, K.PassphraseSource().get('ks'), 'ks'); "
            "print('KEY', k.hex())")
    env = {k: v for k, v in os.environ.items() if k != K.PASSPHRASE_ENV}
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execve(sys.executable, [sys.executable, "-c", code], env)
    out = b""
    sent = False
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if not sent and b"passphrase for ks" in out:
            os.write(fd, b"typed\n")
            sent = True
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    assert f"KEY {KEY.hex()}".encode() in out
    assert b"typed" not in out.split(b"passphrase for ks", 1)[1].split(b"KEY")[0]  # no echo


def test_node_key_kinds_and_lazy_unlock(tmp_path, no_sources):
    home = tmp_path
    key = K.NodeKey(home, ADDRESS)
    assert key.kind == "missing"
    with pytest.raises(KeystoreError, match="holds no key"):
        key.signer()
    K.write_secret(home / K.PLAIN_KEYS, K.plain_key_file(ADDRESS, KEY))
    assert key.kind == "plain" and key.legacy_notice() is None
    assert key.signer().address == ADDRESS and key.unlocked
    (home / K.PLAIN_KEYS).unlink()
    # what proml-sim wrote before keystores: no "plain" marker
    (home / K.PLAIN_KEYS).write_text(json.dumps({"address": ADDRESS, "private_key": KEY.hex()}))
    legacy = K.NodeKey(home, ADDRESS)
    assert legacy.kind == "legacy" and "proml key encrypt" in (legacy.legacy_notice() or "")
    assert legacy.signer().address == ADDRESS
    K.write_secret(home / K.KEYSTORE, K.encrypt_key(KEY, "pw", n=2**10))
    enc = K.NodeKey(home, ADDRESS)
    assert enc.kind == "keystore" and not enc.unlocked  # nothing read yet
    with pytest.raises(KeystoreError, match="needs a passphrase"):
        enc.signer()
    assert K.NodeKey(home, ADDRESS, K.PassphraseSource(text="pw")).signer().address == ADDRESS
    other = Account.create().address
    with pytest.raises(KeystoreError, match="holds the key of"):
        K.NodeKey(home, other, K.PassphraseSource(text="pw")).signer()


def test_plain_keys_and_retirement(tmp_path):
    assert K.parse_plain_key("0x" + KEY.hex() + "\n", "f") == KEY
    assert K.parse_plain_key(KEY.hex(), "f") == KEY
    assert K.parse_plain_key(json.dumps({"private_key": KEY.hex()}), "f") == KEY
    for bad in ("", "0x12", "zz" * 32, "{}", "{not json"):
        with pytest.raises(KeystoreError):
            K.parse_plain_key(bad, "f")
    name = K.geth_name(ADDRESS, when=0)
    assert name == f"UTC--1970-01-01T00-00-00.000000000Z--{ADDRESS[2:].lower()}"
    f = K.write_secret(tmp_path / K.KEYSTORE, {"version": 3})
    g = tmp_path / "copy.json"
    g.write_text("{}")
    first = K.retire(tmp_path, f, ADDRESS)
    assert first.parent.name == K.RETIRED and not f.exists() and first.exists()
    os.rename(g, f)
    second = K.retire(tmp_path, f, ADDRESS)  # same address again: both kept
    assert second != first and second.exists() and first.exists()
