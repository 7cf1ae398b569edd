"""``proml key ...``: the node's key at rest (export, import, rotate, encrypt, show).

Passphrases: the home's keystore is unlocked with ``--passphrase-file FILE``, else
``$PROML_PASSPHRASE``, else a prompt when stdin is a terminal.  A key coming in (the file of
``key import``, a re-encrypted ``key export``, a new passphrase for ``key rotate``) takes its
passphrase from ``--new-passphrase-file FILE``, else ``$PROML_NEW_PASSPHRASE``, else a prompt.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import proml_sim.cliargs as cliargs
from proml_sim.errors import KeystoreError, NodeError
from proml_sim.node.keys import (
    KEYSTORE,
    NEW_PASSPHRASE_ENV,
    PassphraseSource,
)

DEFAULT_HOME = ".proml"


def add_passphrase_option(p: argparse.ArgumentParser, *, prompt: bool = True) -> None:
    """``--passphrase-file`` for a command that may unlock the node's key (``prompt``: whether
    the command asks on a terminal when none is given)."""
    p.add_argument("--passphrase-file", metavar="FILE",
                   help="read the keystore passphrase from FILE's first line (else "
                   "$PROML_PASSPHRASE, else " + ("a prompt on a terminal)" if prompt else
                                                 "the key is not unlocked)"))


def passphrase_of(args: argparse.Namespace) -> PassphraseSource:
    """The passphrase source the command line names."""
    return PassphraseSource(file=getattr(args, "passphrase_file", None))


def _new_passphrase(args: argparse.Namespace, *, required: bool) -> PassphraseSource | None:
    """The source of a passphrase for a key coming in; None if not asked for (``required``
    False and neither --new-passphrase-file nor $PROML_NEW_PASSPHRASE given)."""
    if args.new_passphrase_file or required or NEW_PASSPHRASE_ENV in os.environ:
        return PassphraseSource(file=args.new_passphrase_file, env=NEW_PASSPHRASE_ENV,
                                option="--new-passphrase-file")
    return None


def _open(args: argparse.Namespace) -> Any:
    from proml_sim.node.service import ProMLNode

    return ProMLNode.open(args.home, passphrase=passphrase_of(args))


def _emit(args: argparse.Namespace, obj: Any, text: str) -> None:
    print(json.dumps(obj) if args.json else text)


def _out_path(out: str) -> Path:
    from proml_sim.fsutil import check_output_path

    path = check_output_path(out)
    if path.exists():
        raise NodeError(f"--out {out} already exists; nothing was overwritten, pick another")
    return path


def cmd_key_show(args: argparse.Namespace) -> int:
    node = _open(args)
    key = node.key
    info = {"address": node.address, "kind": key.kind, "file": str(key.path)}
    _emit(args, info, f"{node.address}: {key.kind} key in {key.path}")
    return 0


def cmd_key_export(args: argparse.Namespace) -> int:
    from proml_sim.node.keys import export_keystore, write_secret

    out = _out_path(args.out) if args.out else None
    node = _open(args)
    if args.plain:
        key_hex = "0x" + node.key.private_key().hex()
        print("warning: writing the node's private key UNENCRYPTED; anyone who reads it can "
              "act as this node", file=sys.stderr)
        if out is None:
            print(key_hex)
        else:
            write_secret(out, {"address": node.address, "private_key": key_hex[2:]})
            _emit(args, {"address": node.address, "out": str(out)},
                  f"wrote the plain key of {node.address} to {out} (mode 0600)")
        return 0
    new = _new_passphrase(args, required=args.reencrypt or node.key.kind != "keystore")
    data = export_keystore(node.key, new)
    if out is None:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        write_secret(out, data)
        _emit(args, {"address": node.address, "out": str(out)},
              f"wrote the keystore of {node.address} to {out}")
    return 0


def cmd_key_import(args: argparse.Namespace) -> int:
    from proml_sim.chain.accounts import Signer
    from proml_sim.node.keys import (
        decrypt_keystore,
        encrypt_key,
        install_key,
        load_keystore,
        parse_plain_key,
        plain_address_mismatch,
        plain_key_file,
        rotate,
    )

    node = _open(args)
    incoming = PassphraseSource(file=args.new_passphrase_file, env=NEW_PASSPHRASE_ENV,
                                option="--new-passphrase-file")
    if args.plain:
        try:
            text = Path(args.file).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise KeystoreError(f"cannot read the key file {args.file}: {why}") from None
        private = parse_plain_key(text, args.file)
        if (wrong := plain_address_mismatch(text, args.file)) is not None:
            # the entry or a digit of the key changed: which, nothing here tells
            raise KeystoreError(f"{args.file} records the address {wrong[0]!r}, but its "
                                f"private key is the key of {wrong[1]}: the address entry or "
                                "a digit of the key is damaged; nothing was imported: restore "
                                "the file from a copy")
        address = Signer(private).address
        if node.key.kind == "plain":
            obj = plain_key_file(address, private)  # a home of plain keys (tests) stays plain
        else:
            obj = encrypt_key(private, incoming.get(f"the keystore of {address}", confirm=True))
    else:
        obj = load_keystore(args.file)
        private = decrypt_keystore(obj, incoming.get(f"keystore {args.file}"), args.file)
        address = Signer(private).address
    if address == node.address:
        path, retired = install_key(node.home, obj, address)
        info = {"address": address, "keystore": str(path), "retired": [str(r) for r in retired]}
        _emit(args, info, f"imported the key of {address} into {path}" + (
            f"; the previous key file is kept in {retired[0].parent}" if retired else ""))
        return 0
    if not args.replace:
        raise KeystoreError(f"{args.file} holds the key of {address}, not this node's "
                            f"({node.address}); pass --replace to rotate to it (roles move on "
                            "chain, the old key is kept)")
    rot = rotate(node, new_key=private, new_file=obj)
    return _report_rotation(args, rot)


def _report_rotation(args: argparse.Namespace, rot: Any) -> int:
    info = rot.as_json()
    lines = [f"rotated {rot.old} -> {rot.new}",
             f"  granted to the new address: {', '.join(info['granted']) or 'none'}",
             f"  revoked from the old address: {', '.join(info['revoked']) or 'none'}",
             f"  new key in {rot.keystore}; old key kept in {', '.join(rot.retired)}"]
    if rot.funded_wei:
        lines.append(f"  funded the new address with {rot.funded_wei} wei")
    if rot.pending:
        lines.append("  this node is not the admin of every role; the role admin must run:")
        lines += [f"    {c}" for c in rot.pending]
    _emit(args, info, "\n".join(lines))
    return 0


def cmd_key_rotate(args: argparse.Namespace) -> int:
    from proml_sim.node.keys import rotate

    node = _open(args)
    rot = rotate(node, passphrase=_new_passphrase(args, required=False))
    return _report_rotation(args, rot)


def cmd_key_encrypt(args: argparse.Namespace) -> int:
    from proml_sim.node.keys import encrypt_key, install_key

    node = _open(args)
    if node.key.kind == "keystore":
        raise KeystoreError(f"{node.home / KEYSTORE} is already encrypted; change its "
                            "passphrase with `proml key export --reencrypt` and `key import`")
    private = node.key.private_key()
    obj = encrypt_key(private, passphrase_of(args).get(f"the new keystore of {node.home}",
                                                       confirm=True))
    path, retired = install_key(node.home, obj, node.address)
    info = {"address": node.address, "keystore": str(path),
            "retired": [str(r) for r in retired]}
    _emit(args, info, f"encrypted the key of {node.address} into {path}; the plain file was "
          f"moved to {retired[0]}: delete it (e.g. `shred -u`) once the keystore unlocks")
    return 0


def register(sub: Any) -> None:
    """Add ``proml key ...`` to the top-level parser."""
    key = sub.add_parser("key", help="the node's key: show, export, import, rotate, encrypt")
    ksub = key.add_subparsers(dest="key_command", metavar="KEY_COMMAND")
    ksub.required = True

    def common(p: argparse.ArgumentParser, *, new: str = "") -> None:
        cliargs.global_options(p, home=True)
        add_passphrase_option(p)
        if new:
            p.add_argument("--new-passphrase-file", metavar="FILE", help=new)

    p = ksub.add_parser("show", help="the node's address and how its key is stored")
    common(p)
    p.set_defaults(func=cmd_key_show)

    p = ksub.add_parser("export", help="write the node's key as a v3 keystore (geth, "
                        "eth-account); never the plain key unless --plain")
    p.add_argument("--out", help="file to create (default: print to stdout)")
    p.add_argument("--reencrypt", action="store_true",
                   help="re-encrypt under a new passphrase (--new-passphrase-file, "
                   "$PROML_NEW_PASSPHRASE or a prompt)")
    p.add_argument("--plain", action="store_true",
                   help="export the UNENCRYPTED private key (hex): anyone reading it can act "
                   "as this node")
    common(p, new="passphrase of the exported keystore (else $PROML_NEW_PASSPHRASE, else a "
           "prompt)")
    p.set_defaults(func=cmd_key_export)

    p = ksub.add_parser("import", help="make a v3 keystore (or, with --plain, a hex key) the "
                        "node's key; another address only with --replace (a rotation)")
    p.add_argument("file", help="a v3 keystore file (geth keystore/UTC--..., eth-account), or "
                   "a hex private key file with --plain")
    p.add_argument("--plain", action="store_true", help="FILE holds a plain hex private key")
    p.add_argument("--replace", action="store_true",
                   help="the key is another address: rotate to it (roles move on chain)")
    common(p, new="passphrase of FILE, which stays the keystore's passphrase (else "
           "$PROML_NEW_PASSPHRASE, else a prompt)")
    p.set_defaults(func=cmd_key_import)

    p = ksub.add_parser("rotate", help="a new key: roles move to it on chain, it is funded, "
                        "the old key is kept in keys-retired/")
    common(p, new="passphrase of the new keystore (else $PROML_NEW_PASSPHRASE, else the "
           "current passphrase)")
    p.set_defaults(func=cmd_key_rotate)

    p = ksub.add_parser("encrypt", help="encrypt a plain keys.json into a keystore (the plain "
                        "file is moved to keys-retired/)")
    common(p)
    p.set_defaults(func=cmd_key_encrypt)
