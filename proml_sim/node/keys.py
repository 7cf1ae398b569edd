"""Keys at rest: the node's private key in an encrypted keystore, unlocked only to sign.

The key lives in ``HOME/keystore.json``, a Web3 Secret Storage v3 file exactly as eth-account's
``Account.encrypt`` writes it and geth reads it (scrypt + AES-128-CTR + keccak MAC).  Any v3 file
decrypts whatever its KDF parameters (pbkdf2, or scrypt at any ``n``, ``r``, ``p``: they are read
from the file), so a geth keystore can be imported as it is.

Cost of a new keystore (:data:`SCRYPT_N`): scrypt with ``n = 2**16, r = 8, p = 1`` (64 MiB).
geth's standard ``n = 2**18`` takes about 0.6 s per unlock here (pycryptodome), once per write
command; geth's "light" cost (``n = 2**12, p = 6``) is too cheap for a key that may sit on a
shared disk.  ``2**16`` unlocks in about 0.15 s on the project's 2-core machine (see
docs/design.md, "Keys at rest") and costs an offline guesser a quarter of geth's standard.
``PROML_LIGHT_KDF=1`` (like geth's ``--lightkdf``) writes ``n = 2**12`` keystores: for the test
suite and throwaway homes only.

Passphrase, in this order (:class:`PassphraseSource`): ``--passphrase-file FILE`` (its first
line), the environment variable ``PROML_PASSPHRASE``, an interactive prompt (``getpass``) when
stdin is a terminal.  With none of these, :class:`~proml_sim.errors.KeystoreError` names the
three ways; a wrong passphrase is :class:`~proml_sim.errors.WrongPassphrase`.

Plain keys (``HOME/keys.json``, mode 0600) exist only behind an explicit flag meant for tests and
simulations (``proml init --plain-key``, ``ProMLNode.init(..., plain_key=True)``); such a file
carries ``"plain": true``.  A ``keys.json`` without that marker comes from an older proml-sim:
it still opens, with a one-line notice suggesting ``proml key encrypt``.

The key is unlocked lazily (:class:`NodeKey`): read-only commands never read it, never prompt.
Retired keys (rotation, import, encryption) are moved to ``HOME/keys-retired/`` under geth's
``UTC--<time>--<address>`` names, never deleted.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proml_sim.errors import KeystoreError, WrongPassphrase
from proml_sim.fsutil import atomic_write_with, parse_json

if TYPE_CHECKING:
    from proml_sim.chain.accounts import Signer
    from proml_sim.node.service import ProMLNode

KEYSTORE = "keystore.json"
PLAIN_KEYS = "keys.json"
RETIRED = "keys-retired"
#: the suffix of a retired plain key file's name (``UTC--...--<address>.plain.json``)
PLAIN_RETIRED = ".plain.json"
#: a rotation's new key, written before any chain step so an interrupted rotation can resume
NEXT_KEYSTORE = "keystore.next.json"
PASSPHRASE_ENV = "PROML_PASSPHRASE"
NEW_PASSPHRASE_ENV = "PROML_NEW_PASSPHRASE"
#: scrypt cost of the keystores proml writes (see the module docstring for the measurement)
SCRYPT_N = 2**16
#: with ``PROML_LIGHT_KDF=1`` (as geth's ``--lightkdf``): throwaway homes of tests only
LIGHT_SCRYPT_N = 2**12
LIGHT_KDF_ENV = "PROML_LIGHT_KDF"


# -- passphrases ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PassphraseSource:
    """Where a passphrase comes from: ``text`` (the Python API), else ``file`` (its first line),
    else the environment variable ``env``, else a prompt when stdin is a terminal."""

    file: str | Path | None = None
    env: str = PASSPHRASE_ENV
    text: str | None = field(default=None, repr=False)
    option: str = "--passphrase-file"

    @classmethod
    def of(cls, value: str | PassphraseSource | None) -> PassphraseSource:
        """A source from what the API accepts: a source, a passphrase string, or None."""
        if isinstance(value, PassphraseSource):
            return value
        return cls(text=value)

    def given(self) -> str | None:
        """The passphrase given without a prompt (``text``, ``file``, ``env``), else None."""
        if self.text is None and self.file is None and os.environ.get(self.env) is None:
            return None
        return self.get("the key")

    def get(self, what: str, *, confirm: bool = False) -> str:
        """The passphrase for ``what`` (named in the prompt and in errors).  ``confirm``: a new
        passphrase, asked twice at a prompt."""
        if self.text is not None:
            return _non_empty(self.text, "the passphrase given")
        if self.file is not None:
            return _non_empty(read_passphrase_file(self.file), f"passphrase file {self.file}")
        env = os.environ.get(self.env)
        if env is not None:
            return _non_empty(env, f"${self.env}")
        if _interactive():
            try:
                first = getpass.getpass(f"passphrase for {what}: ")
                if confirm and getpass.getpass("repeat the passphrase: ") != first:
                    raise KeystoreError("the two passphrases differ; nothing was written, "
                                        "try again")
            except EOFError:
                raise KeystoreError(f"no passphrase entered for {what}") from None
            return _non_empty(first, "the passphrase entered")
        raise KeystoreError(
            f"{what} needs a passphrase: pass {self.option} FILE, set ${self.env}, or run in "
            "a terminal to be prompted")


def _interactive() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):  # a closed or detached stdin
        return False


def _non_empty(passphrase: str, where: str) -> str:
    if not passphrase:
        raise KeystoreError(f"{where} is empty; a keystore needs a non-empty passphrase")
    try:
        passphrase.encode()
    except UnicodeEncodeError:  # e.g. undecodable bytes in the environment
        raise KeystoreError(f"{where} is not valid UTF-8 text; use a UTF-8 passphrase") from None
    return passphrase


def read_passphrase_file(path: str | Path) -> str:
    """The first line of a passphrase file (as geth's ``--password`` reads it)."""
    try:
        raw = Path(path).read_bytes()
    except IsADirectoryError:
        raise KeystoreError(f"passphrase file {path} is a directory; pass a file") from None
    except OSError as exc:
        raise KeystoreError(f"cannot read passphrase file {path}: {exc.strerror or exc}; "
                            "check the path and its permissions") from None
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise KeystoreError(f"passphrase file {path} is not UTF-8 text") from None
    return text.splitlines()[0] if text else ""


# -- v3 keystore files ---------------------------------------------------------------------------
def encrypt_key(private_key: bytes, passphrase: str, *, n: int | None = None
                ) -> dict[str, Any]:
    """A Web3 Secret Storage v3 keystore of ``private_key`` (eth-account's writer, scrypt with
    ``n``; default :data:`SCRYPT_N`, or :data:`LIGHT_SCRYPT_N` when ``$PROML_LIGHT_KDF`` is
    set)."""
    from eth_account import Account

    if n is None:
        n = LIGHT_SCRYPT_N if os.environ.get(LIGHT_KDF_ENV) else SCRYPT_N

    return dict(Account.encrypt(private_key, passphrase, kdf="scrypt", iterations=n))


def load_keystore(path: str | Path) -> dict[str, Any]:
    """A v3 keystore file's JSON, checked for shape; :class:`KeystoreError` naming the file."""
    try:
        data = parse_json(Path(path).read_bytes())
    except FileNotFoundError:
        raise KeystoreError(f"no keystore at {path}; check the path") from None
    except IsADirectoryError:
        raise KeystoreError(f"{path} is a directory, not a keystore file") from None
    except OSError as exc:
        raise KeystoreError(f"cannot read keystore {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise KeystoreError(f"{path} is not a keystore (not JSON); pass a Web3 Secret "
                            "Storage v3 file (geth's keystore/UTC--... or eth-account's)") from None
    if not isinstance(data, dict) or data.get("version") != 3 or not isinstance(
            data.get("crypto", data.get("Crypto")), dict):
        raise KeystoreError(f"{path} is not a version 3 keystore (Web3 Secret Storage); pass "
                            "one written by geth or eth-account")
    return data


def decrypt_keystore(data: dict[str, Any], passphrase: str, path: str | Path) -> bytes:
    """The private key in a v3 keystore (its own KDF parameters are used), checked against
    the address the keystore declares, if any (the MAC covers neither the iv nor the address:
    a damaged iv decrypts, to another key)."""
    from eth_account import Account

    from proml_sim.chain.accounts import Signer

    try:
        key = bytes(Account.decrypt(data, passphrase))
        declared = keystore_address(data)
        if declared is not None and (addr := Signer(key).address) != declared:
            raise KeystoreError(f"{path} declares the address {declared} but opens to the key "
                                f"of {addr}: its iv or ciphertext is damaged, or the file was "
                                "edited; restore it from a copy")
        return key
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise WrongPassphrase(f"wrong passphrase for keystore {path}; check "
                                  f"--passphrase-file or ${PASSPHRASE_ENV}") from None
        raise KeystoreError(f"keystore {path} cannot be decrypted ({exc}); is it a v3 file "
                            "from geth or eth-account?") from None
    except (KeyError, TypeError, AttributeError, NotImplementedError) as exc:
        raise KeystoreError(f"keystore {path} is malformed (missing or bad {exc}); pass a v3 "
                            "file from geth or eth-account") from None


def keystore_address(data: dict[str, Any]) -> str | None:
    """The checksum address a keystore declares (``address`` is optional in v3)."""
    from eth_utils.address import is_hex_address, to_checksum_address

    addr = data.get("address")
    if not isinstance(addr, str):
        return None
    addr = addr if addr.startswith("0x") else "0x" + addr
    return to_checksum_address(addr) if is_hex_address(addr) else None


def parse_plain_key(text: str, where: str) -> bytes:
    """A private key given as 64 hex digits (``0x`` optional), or a plain ``keys.json``."""
    text = text.strip()
    if text.startswith("{"):
        try:
            text = str(parse_json(text)["private_key"])
        except (ValueError, KeyError, TypeError):
            raise KeystoreError(f"{where} is JSON without a private_key field") from None
    hexkey = text.removeprefix("0x")
    try:
        key = bytes.fromhex(hexkey)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise KeystoreError(f"{where} is not a private key: expected 64 hex digits "
                            "(32 bytes, 0x optional)")
    return key


def plain_address_mismatch(text: str, where: str) -> tuple[Any, str] | None:
    """A plain key file's ``address`` entry and its private key's address when they differ (a
    byte of either flipped); None when it has no entry or they agree."""
    from proml_sim.chain.accounts import Signer, is_address

    addr = Signer(parse_plain_key(text, where)).address
    recorded = parse_json(text.strip()).get("address") if text.lstrip()[:1] == "{" else None
    if recorded is None or (is_address(recorded) and str(recorded).lower() == addr.lower()):
        return None
    return recorded, addr


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        return False
    return True


def write_secret(path: Path, obj: dict[str, Any]) -> Path:
    """Atomically write a key file, mode 0600 set before any byte of it is written; never over
    an existing file (keys are retired by renaming, see :func:`retire`)."""
    if path.exists():
        raise KeystoreError(f"{path} already exists; move it away first (nothing was written)")
    text = json.dumps(obj, indent=2, sort_keys=True).encode() + b"\n"
    try:
        return atomic_write_with(path, lambda fh: fh.write(text), mode=0o600)
    except OSError as exc:  # OutputError names the file and the fix already
        raise KeystoreError(str(exc)) from None


def plain_key_file(address: str, private_key: bytes) -> dict[str, Any]:
    """The contents of an explicitly plain ``keys.json`` (tests and simulations only)."""
    return {"address": address, "private_key": private_key.hex(), "plain": True}


def geth_name(address: str, when: float | None = None) -> str:
    """geth's keystore file name: ``UTC--2026-12-03T15-04-05.000000000Z--<address>``."""
    t = datetime.fromtimestamp(time.time() if when is None else when, UTC)
    stamp = t.strftime("%Y-%m-%dT%H-%M-%S.") + f"{t.microsecond * 1000:09d}Z"
    return f"UTC--{stamp}--{address.lower().removeprefix('0x')}"


def retire(home: Path, path: Path, address: str) -> Path:
    """Move a key file into ``HOME/keys-retired/`` under a timestamped geth name (a keystore
    there can be given to geth as it is); never deletes, never overwrites."""
    dest_dir = home / RETIRED
    try:
        dest_dir.mkdir(mode=0o700, exist_ok=True)
        suffix = PLAIN_RETIRED if path.name == PLAIN_KEYS else ""
        dest = dest_dir / (geth_name(address) + suffix)
        while dest.exists():  # two retirements within a microsecond: keep both
            dest = dest.with_name(dest.name + "_")
        os.rename(path, dest)
    except OSError as exc:
        raise KeystoreError(f"cannot move {path} to {dest_dir}: {exc.strerror or exc}; "
                            "nothing was changed") from None
    return dest


# -- the node's key ------------------------------------------------------------------------------
class NodeKey:
    """The node's key custody: which file holds the key, unlocked on the first signature."""

    def __init__(self, home: Path, address: str, passphrase: PassphraseSource | None = None,
                 signer: Signer | None = None) -> None:
        self.home = home
        self.address = address
        self.passphrase = passphrase or PassphraseSource()
        self._signer = signer
        self._unlocked_with: str | None = None  # so a rotation does not ask again

    @property
    def keystore_path(self) -> Path:
        return self.home / KEYSTORE

    @property
    def plain_path(self) -> Path:
        return self.home / PLAIN_KEYS

    @property
    def path(self) -> Path:
        """The file that holds the key (the keystore if both exist)."""
        return self.keystore_path if self.keystore_path.exists() or not \
            self.plain_path.exists() else self.plain_path

    @property
    def kind(self) -> str:
        """``keystore``, ``plain`` (explicit, tests/simulations), ``legacy`` (an unmarked
        plain keys.json from before keystores) or ``missing``."""
        if self.keystore_path.exists():
            return "keystore"
        if not self.plain_path.exists():
            return "missing"
        try:
            return "plain" if parse_json(self.plain_path.read_text()).get("plain") is True \
                else "legacy"
        except (OSError, ValueError, AttributeError):
            return "legacy"  # unreadable now: reported, with the fix, when the key is needed

    @property
    def unlocked(self) -> bool:
        return self._signer is not None

    def legacy_notice(self) -> str | None:
        """The one-line notice for an unmarked plain keys.json (None otherwise)."""
        if self.kind != "legacy":
            return None
        return (f"notice: {self.plain_path} holds the node's private key unencrypted; encrypt "
                f"it with `proml key encrypt --home {self.home}` (or import a keystore with "
                "`proml key import`)")

    def private_key(self) -> bytes:
        """Read (and decrypt) the key; checked against the node's address."""
        path = self.path
        if self.kind == "missing":
            raise KeystoreError(f"the node home {self.home} holds no key ({KEYSTORE} or "
                                f"{PLAIN_KEYS}); import one with `proml key import FILE`")
        if path.name == KEYSTORE:
            data = load_keystore(path)
            passphrase = self.passphrase.get(f"keystore {path}")
            key = decrypt_keystore(data, passphrase, path)
            self._unlocked_with = passphrase
        else:
            try:
                key = parse_plain_key(path.read_text(), str(path))
            except (OSError, UnicodeDecodeError) as exc:
                raise KeystoreError(f"cannot read the node's key {path}: "
                                    f"{getattr(exc, 'strerror', None) or exc}") from None
        from proml_sim.chain.accounts import Signer

        addr = Signer(key).address
        if addr.lower() != self.address.lower():
            raise KeystoreError(f"{path} holds the key of {addr}, but this node is "
                                f"{self.address} (node.json); restore the right key file or "
                                "finish the rotation with `proml key rotate`")
        return key

    def inspect(self) -> KeyProblem | None:
        """What is wrong with the key file, found without unlocking it (None: nothing seen).

        A plain key is checked against the node's address; an encrypted keystore for its v3
        shape and the address it declares (its MAC needs the passphrase: :meth:`unlock_check`)."""
        if self.kind == "missing":
            return KeyProblem(f"the node home {self.home} holds no key ({KEYSTORE} or "
                              f"{PLAIN_KEYS})")
        return inspect_key_file(self.path, self.address, "this node is {} (node.json)")

    def unlock_check(self, passphrase: str) -> KeyProblem | None:
        """What is wrong when the keystore is unlocked with ``passphrase`` (None: it opens to
        the node's key)."""
        return unlock_key_file(self.path, self.address, passphrase)

    def same_passphrase(self) -> PassphraseSource:
        """The passphrase the key was unlocked with (so it is not asked twice), else the
        node's passphrase source."""
        if self._unlocked_with is not None:
            return PassphraseSource(text=self._unlocked_with)
        return self.passphrase

    def signer(self) -> Signer:
        """The node's signer, unlocking the key the first time."""
        if self._signer is None:
            from proml_sim.chain.accounts import Signer

            self._signer = Signer(self.private_key())
        return self._signer


@dataclass(frozen=True)
class KeyProblem:
    """What is wrong with a key file: ``what``, a sentence naming the file; ``holds``, the
    address whose key it holds when that is not the one expected; ``passphrase``, True when a
    wrong passphrase would look the same (a MAC mismatch)."""

    what: str
    holds: str | None = None
    passphrase: bool = False


def inspect_key_file(path: Path, address: str, whose: str = "its name says {}"
                     ) -> KeyProblem | None:
    """What is wrong with the key file at ``path`` that should hold ``address``'s key, found
    without unlocking it (None: nothing seen): a keystore's v3 shape and the address it
    declares, a plain key's key against its address entry.  ``whose`` says where ``address``
    comes from."""
    try:
        if is_plain_key_file(path):
            from proml_sim.chain.accounts import Signer

            text = path.read_text()
            addr: str | None = Signer(parse_plain_key(text, str(path))).address
            if (wrong := plain_address_mismatch(text, str(path))) is not None:
                return KeyProblem(f"{path} records the address {wrong[0]!r}, but its private "
                                  f"key is the key of {addr}: the address entry is damaged "
                                  f"(write it as {addr}, or restore the file from a copy)")
        else:
            data = load_keystore(path)
            crypto: dict[str, Any] = data.get("crypto", data.get("Crypto")) or {}
            params = crypto.get("cipherparams")
            hexes = [crypto.get("ciphertext"), crypto.get("mac"),
                     params.get("iv") if isinstance(params, dict) else None]
            if not all(isinstance(h, str) and h and _is_hex(h) for h in hexes) or \
                    crypto.get("kdf") not in ("scrypt", "pbkdf2") or \
                    not isinstance(crypto.get("kdfparams"), dict):
                return KeyProblem(f"{path} is a damaged keystore (its crypto fields are "
                                  "malformed)")
            if crypto.get("cipher") != "aes-128-ctr":  # eth-account ignores it, geth does not
                return KeyProblem(f"{path} is a damaged keystore (its cipher is "
                                  f"{crypto.get('cipher')!r}, where v3 keystores use "
                                  "'aes-128-ctr')")
            addr = keystore_address(data)
            if addr is None and data.get("address") is not None:
                return KeyProblem(f"{path} declares a malformed address "
                                  f"{data.get('address')!r}")
    except KeystoreError as exc:
        return KeyProblem(str(exc).split("; ")[0])
    except (OSError, UnicodeDecodeError) as exc:
        return KeyProblem(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}")
    if addr is not None and addr.lower() != address.lower():
        return KeyProblem(f"{path} holds the key of {addr}, but {whose.format(address)}",
                          holds=addr)
    return None


def is_plain_key_file(path: Path) -> bool:
    """A plain key file: the home's ``keys.json`` or a retired one (``...plain.json[_]``)."""
    return path.name == PLAIN_KEYS or PLAIN_RETIRED in path.name


def retired_key_files(home: Path) -> list[tuple[Path, str | None]]:
    """The files in ``HOME/keys-retired/``, each with the address its geth name gives (None:
    a name that gives none)."""
    d = home / RETIRED
    if not d.is_dir():
        return []
    out = []
    for f in sorted(d.iterdir()):
        m = re.search(r"--([0-9a-fA-F]{40})(?:\.plain\.json)?_*$", f.name)
        out.append((f, "0x" + m.group(1) if m else None))
    return out


def open_retired(path: Path, passphrase: PassphraseSource) -> bytes:
    """The private key of a retired key file (a keystore unlocked with ``passphrase``, or a
    plain one); :class:`KeystoreError` (:class:`WrongPassphrase`) when it cannot be had."""
    if is_plain_key_file(path):
        try:
            return parse_plain_key(path.read_text(), str(path))
        except (OSError, UnicodeDecodeError) as exc:
            raise KeystoreError(f"cannot read the retired key {path}: {exc}") from None
    return decrypt_keystore(load_keystore(path), passphrase.get(f"retired keystore {path}"),
                            path)


def unlock_key_file(path: Path, address: str, passphrase: str) -> KeyProblem | None:
    """What is wrong when the keystore at ``path`` is unlocked with ``passphrase`` (None: it
    opens to ``address``'s key; a plain key file has nothing to unlock).  A MAC that does not
    match cannot tell a wrong passphrase from a damaged ciphertext, salt or MAC: both are
    said; a key other than ``address``'s is another key's file or a damaged iv (the MAC
    covers neither the iv nor the address)."""
    from proml_sim.chain.accounts import Signer

    if is_plain_key_file(path):
        return None
    try:
        key = decrypt_keystore(load_keystore(path), passphrase, path)
    except WrongPassphrase:
        return KeyProblem(f"{path} does not open with the passphrase given (MAC mismatch): the "
                          "passphrase is wrong, or the file's ciphertext, salt or MAC is "
                          "damaged", passphrase=True)
    except KeystoreError as exc:
        return KeyProblem(str(exc).split("; ")[0])
    addr = Signer(key).address
    if addr.lower() != address.lower():
        return KeyProblem(f"{path} opens to the key of {addr}, not {address}'s: another key's "
                          "file, or its iv is damaged")
    return None


def new_key_file(private_key: bytes, address: str, *, plain: bool,
                 passphrase: PassphraseSource, what: str) -> tuple[str, dict[str, Any]]:
    """(file name, contents) of a new key file: a keystore (passphrase asked now, twice at a
    prompt) or, only if ``plain``, an explicitly plain keys.json."""
    if plain:
        if passphrase.text is not None or passphrase.file is not None:
            raise KeystoreError("a plain key has no passphrase: drop --plain-key to encrypt "
                                "the key, or drop the passphrase")
        return PLAIN_KEYS, plain_key_file(address, private_key)
    return KEYSTORE, encrypt_key(private_key, passphrase.get(what, confirm=True))


# -- export, import, encrypt ---------------------------------------------------------------------
def export_keystore(key: NodeKey, new_passphrase: PassphraseSource | None) -> dict[str, Any]:
    """The node's key as a v3 keystore: the file itself, or re-encrypted under
    ``new_passphrase`` (always for a plain key, which has no keystore yet)."""
    if key.kind == "keystore" and new_passphrase is None:
        return load_keystore(key.keystore_path)
    private = key.private_key()
    src = new_passphrase or PassphraseSource(env=NEW_PASSPHRASE_ENV,
                                             option="--new-passphrase-file")
    return encrypt_key(private, src.get("the exported keystore", confirm=True))


def install_key(home: Path, obj: dict[str, Any], address: str) -> tuple[Path, list[Path]]:
    """Make ``obj`` (a keystore, or a plain key file) the home's key: the current key files are
    retired first (renamed, never deleted), then the new one written.  Returns (new, retired)."""
    retired: list[tuple[Path, Path]] = []  # (where it was, where it went)
    try:
        for name in (KEYSTORE, PLAIN_KEYS):
            p = home / name
            if p.exists():
                retired.append((p, retire(home, p, address)))
        name = KEYSTORE if obj.get("version") == 3 else PLAIN_KEYS
        return write_secret(home / name, obj), [kept for _, kept in retired]
    except KeystoreError as exc:  # put the retired files back: the home keeps its key
        left = []
        for was, kept in reversed(retired):
            try:
                os.rename(kept, was)
            except OSError:  # it stays in keys-retired/, where doctor names it
                left.append(str(kept))
        raise KeystoreError(f"{str(exc).split('; ')[0]}; " + (
            f"the home's key is in {', '.join(left)}: `proml key import` puts it back" if left
            else "nothing was changed")) from None


# -- rotation ------------------------------------------------------------------------------------
@dataclass
class Rotation:
    """What a rotation did: roles moved on chain, the commands left for other role admins."""

    old: str
    new: str
    granted: list[tuple[str, str]] = field(default_factory=list)   # (lifecycle, role)
    revoked: list[tuple[str, str]] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # `proml grant/revoke ...` for the admins
    seats: list[str] = field(default_factory=list)  # lifecycles whose domain-admin seat moved
    funded_wei: int = 0
    retired: list[str] = field(default_factory=list)
    keystore: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"old_address": self.old, "new_address": self.new,
                "granted": [f"{lc}.{r}" for lc, r in self.granted],
                "revoked": [f"{lc}.{r}" for lc, r in self.revoked],
                "pending": self.pending, "seats": self.seats, "funded_wei": self.funded_wei,
                "retired": self.retired, "keystore": self.keystore}


def _role_depth(ir: Any, name: str) -> int:
    """How far a role is below the built-in admin in the grant hierarchy."""
    depth, seen = 0, {name}
    while (admin := ir.role(name).admin) not in seen:
        seen.add(admin)
        name, depth = admin, depth + 1
    return depth


def record_rotation(node: ProMLNode, old: Signer, new: str) -> Rotation:
    """Record on chain that ``new`` replaces ``old``: in every lifecycle, each role ``old``
    holds is granted to ``new`` (same trust domain) and revoked from ``old``, by ``old`` itself
    when it holds that role's admin role; otherwise the exact ``proml grant``/``proml revoke``
    the role admin must run is listed in ``pending``.  Idempotent (a resumed rotation skips what
    is done).

    On a consortium lifecycle where ``old`` is a domain's admin, that admin moves its domain's
    roles itself, then its seat by a ``rotate_admin`` proposal: executed at once when its own
    vote is the quorum, else the other members' vote and the execution are ``pending``.
    """
    rot = Rotation(old.address, new)
    for lc, client in node.clients.items():
        ir = client.ir
        held = client.roles_of(old.address)
        domain_raw = client.domain_of(old.address)
        domain = domain_raw.rstrip(b"\0").decode(errors="replace")
        roles = [r for r in ir.roles if held & r.bit]
        can = {r.name: bool(held & ir.role(r.admin).bit) for r in roles}
        seat = None  # the member domain whose admin seat ``old`` holds (a consortium)
        if ir.consortium is not None:
            snap = client.snapshot()
            seat = next((d for d, (_, a) in snap.members.items() if a == old.address), None)
            if seat is not None:  # a domain's admin enrols and revokes its own accounts
                domain_raw = seat
                domain = seat.rstrip(b"\0").decode(errors="replace")
                can = {r.name: True for r in roles}
        with node._writing():
            for r in roles:
                if client.has_role(new, r.name):
                    continue
                if can[r.name]:
                    node._mine(client, client.grant(old, r.name, new, domain_raw))
                    rot.granted.append((lc, r.name))
                else:
                    rot.pending.append(f"proml grant {lc} {r.name} {new} --domain {domain}")
            # a role before the role that administers it, so old keeps the right to revoke
            for r in sorted(roles, key=lambda r: -_role_depth(ir, r.name)):
                if can[r.name]:
                    node._mine(client, client.revoke(old, r.name, old.address))
                    rot.revoked.append((lc, r.name))
                else:
                    rot.pending.append(f"proml revoke {lc} {r.name} {old.address}")
        if seat is not None:
            _rotate_seat(node, client, old, new, seat, rot)
    return rot


def _rotate_seat(node: ProMLNode, client: Any, old: Signer, new: str, seat: bytes,
                 rot: Rotation) -> None:
    """Move ``seat``'s domain-admin seat from ``old`` to ``new``: a ``rotate_admin`` proposal
    (old's domain votes by proposing), executed at once when that is a quorum; otherwise the
    other members' votes and the execution are listed in ``rot.pending``.  A resumed rotation
    reuses its open proposal."""
    from proml_sim.node import consortium

    lc = client.ir.name
    snap = client.snapshot()
    pid = next((i for i, (k, d, a, _, status, epoch, _) in snap.proposals.items()
                if k == 3 and d == seat and a == new and status == 1 and epoch == snap.epoch),
               None)
    votes = len(snap.proposals[pid][6]) if pid is not None else 1
    if pid is None:
        pid = consortium.propose(node, lc, "rotate_admin", consortium.domain_name(seat), new, [])
    needed = min(client.ir.consortium.quorum, len(snap.members))
    if votes >= needed:
        consortium.execute(node, lc, pid)
        rot.seats.append(lc)
    else:
        rot.pending += [f"proml consortium vote {lc} {pid}  (by {needed - votes} other "
                        "member domain(s))", f"proml consortium execute {lc} {pid}"]


def _fund(node: ProMLNode, old: Signer, new: str) -> int:
    """Give the new address gas money: the dev faucet on the embedded chain, elsewhere the old
    key's balance less the transfer's fee."""
    from proml_sim.chain.journal import JournaledChain
    from proml_sim.node import service

    backend = node.backend
    if backend.balance(new) > 0:
        return 0
    if isinstance(backend, JournaledChain):
        service._fund(backend, new)
        return backend.balance(new)
    from proml_sim.chain.accounts import DEFAULT_TIP, send_and_mine

    fee = 21_000 * (2 * backend.base_fee() + DEFAULT_TIP)
    value = backend.balance(old.address) - fee
    if value <= 0:
        raise KeystoreError(f"the old key {old.address} cannot pay the transfer to {new}; fund "
                            f"{new} yourself, then run `proml key rotate` again to finish")
    with node._writing():
        send_and_mine(backend, old, new, gas=21_000, value=value,
                      timestamp=service.next_timestamp(backend))
    return value


def rotate(node: ProMLNode, *, new_key: bytes | None = None,
           new_file: dict[str, Any] | None = None,
           passphrase: PassphraseSource | None = None) -> Rotation:
    """Replace the node's key: a new key (or ``new_key``) is written to ``keystore.next.json``
    first (so nothing is lost if a step fails: run again to resume), the roles move on chain
    (:func:`record_rotation`), the new address is funded, the old key file is retired (renamed
    into ``keys-retired/``), and node.json's address is updated atomically last.

    ``new_file``: the new key's file as it is to be kept (an imported keystore, ``new_key``
    being its decrypted key).  Otherwise the new key is stored like the old one: plain for an
    explicitly plain home, else a keystore under ``passphrase`` (default: the node's own
    passphrase source)."""
    from proml_sim.chain.accounts import Signer

    home = node.home
    key: NodeKey = node.key
    nxt = home / NEXT_KEYSTORE
    done = _finish_swapped(node)
    if done is not None:
        return done
    old = key.signer()  # unlock first: a wrong passphrase stops everything before any change
    plain = key.kind == "plain"  # a legacy unmarked keys.json moves on to a keystore
    if nxt.exists():  # an interrupted rotation: resume with the key it had chosen
        try:
            data = parse_json(nxt.read_text())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            raise KeystoreError(f"the interrupted rotation's key {nxt} cannot be read ({exc}); "
                                "if no chain step used it, move it away and rotate again"
                                ) from None
        if data.get("version") == 3:
            src = passphrase or key.same_passphrase()
            pw = src.get(f"keystore {nxt}")
            private = decrypt_keystore(data, pw, nxt)
        else:
            private = parse_plain_key(json.dumps(data), str(nxt))
        if new_key is not None and new_key != private:
            raise KeystoreError(f"an interrupted rotation to {Signer(private).address} is "
                                f"pending in {nxt}; finish it with `proml key rotate` first")
        new_signer = Signer(private)
    else:
        private = new_key if new_key is not None else os.urandom(32)
        new_signer = Signer(private)
        if new_signer.address == old.address:
            raise KeystoreError(f"the new key is the node's current key ({old.address}); "
                                "nothing to rotate")
        if new_file is not None:
            obj = new_file
        elif plain and passphrase is None:
            obj = plain_key_file(new_signer.address, private)
        else:
            src = passphrase or key.same_passphrase()
            obj = encrypt_key(private, src.get(f"the new keystore of {home}", confirm=True))
        write_secret(nxt, obj)
        data = obj
    rot = record_rotation(node, old, new_signer.address)
    rot.funded_wei = _fund(node, old, new_signer.address)
    # the chain steps succeeded: swap the files, then point node.json at the new address
    for p in (key.keystore_path, key.plain_path):
        if p.exists():
            try:
                rot.retired.append(str(retire(home, p, old.address)))
            except KeystoreError as exc:  # not "nothing was changed": the roles have moved
                raise KeystoreError(
                    f"the rotation's chain steps are done (roles moved to "
                    f"{new_signer.address}), but {str(exc).split('; ')[0]}; fix that and run "
                    f"`proml key rotate` again: it resumes with the new key in {nxt}") from None
    final = home / (KEYSTORE if data.get("version") == 3 else PLAIN_KEYS)
    try:
        os.rename(nxt, final)
    except OSError as exc:
        raise KeystoreError(f"cannot move {nxt} to {final}: {exc.strerror or exc}; move it "
                            "by hand (the chain steps are done)") from None
    rot.keystore = str(final)
    set_home_address(node, new_signer.address)
    node.key = NodeKey(home, new_signer.address, key.passphrase, new_signer)
    return rot


def _finish_swapped(node: ProMLNode) -> Rotation | None:
    """A rotation interrupted after its file swap (the home's key file is already the new key,
    the old one retired, node.json not yet updated): finish it by updating node.json."""
    key: NodeKey = node.key
    if (node.home / NEXT_KEYSTORE).exists() or key.kind not in ("keystore", "plain"):
        return None
    try:
        data = parse_json(key.path.read_text())
    except (OSError, ValueError):
        return None
    declared = keystore_address(data) if isinstance(data, dict) else None
    retired = node.home / RETIRED
    old = node.address.lower().removeprefix("0x")
    if declared is None or declared == node.address or not retired.is_dir() or not any(
            p.name.split("--")[-1].startswith(old) for p in retired.iterdir()):
        return None
    new = NodeKey(node.home, declared, key.passphrase)
    new.signer()  # only a key this node can unlock is taken as the rotation's result
    set_home_address(node, declared)
    node.key = new
    return Rotation(old=key.address, new=declared, keystore=str(key.path))


def set_home_address(node: ProMLNode, address: str) -> None:
    """Point node.json (written atomically) and the open node at ``address``."""
    node.config["address"] = address
    try:
        node.save_config()
    except OSError as exc:
        raise KeystoreError(f"cannot update {node.home / 'node.json'} to the new address "
                            f"{address}: {exc}; run `proml key rotate` again") from None
    node.address = address
