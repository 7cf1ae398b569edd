"""Argument types of the ``proml`` command line, shared by every subcommand.

Each helper is an argparse ``type=`` callable: it returns the parsed value or raises
``argparse.ArgumentTypeError`` with one line naming the problem and the fix, which argparse
turns into a usage error (exit 2) *before* the command does any work.  This module imports only
the standard library at import time, so registering parsers stays cheap (``proml --help``);
:func:`address` imports ``eth_utils`` only when an address is actually given.

Paths: an output file must not be a directory and its parent directory must exist (nothing is
ever created at the filesystem root); an output directory may be created, but only inside an
existing parent, and must not be a file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from proml_sim.errors import UsageError

#: the node home when neither ``--home`` nor ``$PROML_HOME`` says otherwise
DEFAULT_HOME = ".proml"
HOME_ENV = "PROML_HOME"
HOME_HELP = f"node home directory (default: ${HOME_ENV}, else ./{DEFAULT_HOME})"
#: the contract layouts a command line may name (``chain.client.LAYOUTS``, which the parser
#: does not import: a test holds the two equal)
LAYOUTS = ("registry", "factory", "clone")

_HEX = re.compile(r"[0-9a-fA-F]*")


def default_home() -> str:
    """``$PROML_HOME`` if set and not empty, else ``./.proml``."""
    return os.environ.get(HOME_ENV) or DEFAULT_HOME


def _fail(message: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(message)


def _int(text: str, what: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise _fail(f"{text!r} is not a whole number; give {what}") from None


def positive_int(text: str) -> int:
    """A count that must be at least 1 (steps, seeds, sizes, examples...)."""
    n = _int(text, "a positive whole number (1 or more)")
    if n < 1:
        raise _fail(f"{n} is too small; give a positive whole number (1 or more)")
    return n


def non_negative_int(text: str) -> int:
    """A count or index that may be 0 (a seed, a version, a worker count)."""
    n = _int(text, "a whole number, 0 or more")
    if n < 0:
        raise _fail(f"{n} is negative; give a whole number, 0 or more")
    return n


def _float(text: str, what: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise _fail(f"{text!r} is not a number; give {what}") from None
    if x != x or x in (float("inf"), float("-inf")):
        raise _fail(f"{text!r} is not a finite number; give {what}")
    return x


def positive_float(text: str) -> float:
    """A finite quantity above 0 (days, rates)."""
    x = _float(text, "a number above 0")
    if x <= 0:
        raise _fail(f"{text} is not above 0; give a number above 0")
    return x


def non_negative_float(text: str) -> float:
    """A finite quantity of 0 or more (an age in seconds)."""
    x = _float(text, "a number, 0 or more")
    if x < 0:
        raise _fail(f"{text} is negative; give a number, 0 or more")
    return x


def hex_bytes(n: int, what: str = "id") -> Callable[[str], str]:
    """``0x`` followed by exactly ``2 * n`` hex digits (returned lower-case)."""

    def parse(text: str) -> str:
        body = text[2:] if text[:2] in ("0x", "0X") else None
        if body is None or len(body) != 2 * n or not _HEX.fullmatch(body):
            raise _fail(f"{text!r} is not a valid {what}: write 0x and {2 * n} hex digits")
        return "0x" + body.lower()

    return parse


def address(text: str) -> str:
    """An Ethereum address: ``0x`` + 40 hex digits.  Mixed case must be a correct EIP-55
    checksum (a wrong one means a typo); returned in checksum form."""
    if not (text[:2] == "0x" and len(text) == 42 and _HEX.fullmatch(text[2:])):
        raise _fail(f"{text!r} is not an address: write 0x and 40 hex digits")
    from eth_utils.address import is_checksum_address, to_checksum_address

    body = text[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(text):
        raise _fail(f"{text} has a wrong EIP-55 checksum (a typo?); copy the address again, "
                    f"or write it all lower-case to skip the check")
    return str(to_checksum_address(text))


def artefact_ref(text: str) -> str:
    """An artefact name (``name`` or ``name@0xregistrant``) or a ``0x`` id of 32 bytes."""
    if not text:
        raise _fail("an empty artefact name; give a name or a 0x id")
    if text[:2] in ("0x", "0X"):
        return hex_bytes(32, "artefact id")(text)
    return text


def rpc_url(text: str) -> str:
    """The URL of an Ethereum JSON-RPC node: ``http(s)://`` or ``ws(s)://`` and a host."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text)
        ok = parts.scheme in ("http", "https", "ws", "wss") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        ok = False
    if not ok:
        raise _fail(f"{text!r} is not a JSON-RPC URL; write e.g. http://127.0.0.1:8545")
    return text


def artefact_or_file(text: str) -> str:
    """An input: an artefact (name or ``0x`` id) or a file.  Text starting with ``0x`` that is
    not a file must be a well-formed id."""
    if text[:2] in ("0x", "0X") and not Path(text).exists():
        return hex_bytes(32, "artefact id")(text)
    return artefact_ref(text)


def name(text: str) -> str:
    """A non-empty name without control characters (participants, domains, artefacts)."""
    if not text.strip():
        raise _fail("an empty name; give a name")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise _fail(f"{text!r} contains control characters; give a printable name")
    return text


def existing_file(text: str) -> str:
    """A file that must exist (an input)."""
    p = Path(text)
    if p.is_dir():
        raise _fail(f"{text} is a directory; give a file")
    if p.exists() and not p.is_file():  # a pipe (`<(...)`), a socket, a device
        raise _fail(f"{text} is not a regular file (a pipe or a device); write it to a file "
                    "first and give that")
    if not p.is_file():
        raise _fail(f"{text} does not exist; check the path")
    return text


def existing_dir(text: str) -> str:
    """A directory that must exist."""
    p = Path(text)
    if not p.exists():
        raise _fail(f"{text} does not exist; create the directory or check the path")
    if not p.is_dir():
        raise _fail(f"{text} is not a directory; give a directory")
    return text


def output_file(text: str) -> str:
    """A file to write: not a directory, in a directory that exists
    (:func:`proml_sim.fsutil.check_output_path`, which every atomic write applies too)."""
    from proml_sim.errors import OutputError
    from proml_sim.fsutil import check_output_path

    if not text:
        raise _fail("an empty file name; give a file to write")
    try:
        check_output_path(text)
    except OutputError as exc:
        raise _fail(str(exc)) from None
    return text


def output_dir(text: str) -> str:
    """A directory to write into: an existing directory, or a new one inside an existing
    parent (never a chain of new directories, never a file)."""
    if not text:
        raise _fail("an empty directory name; give a directory")
    p = Path(text)
    if p.exists() and not p.is_dir():
        raise _fail(f"{text} is a file, not a directory; give a directory to write into")
    if not p.exists() and not p.parent.is_dir():
        raise _fail(f"cannot create {text}: the directory {p.parent} does not exist; create "
                    "it first or choose another path")
    return text


def home_dir(text: str) -> str:
    """A node home: not a file (whether it exists is the command's business)."""
    if not text:
        raise _fail("an empty home; give a directory")
    if Path(text).exists() and not Path(text).is_dir():
        raise _fail(f"{text} is a file, not a node home directory; give a directory")
    return text


def check(flag: str, parse: Callable[[str], Any], value: str) -> Any:
    """Apply an argument type after parsing (for a check that depends on other options, or
    on a global option such as ``--home``): a rejected value is a :class:`UsageError`."""
    try:
        return parse(value)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"argument {flag}: {exc}") from None


def global_options(p: argparse.ArgumentParser, *, home: bool = False) -> None:
    """Give a subcommand the global ``--json`` (and, with ``home=True``, ``--home``).

    Their default is ``SUPPRESS``: a value given *before* the subcommand (``proml --json
    status``) is kept unless the option is repeated after it (``proml status --json``).
    """
    # argparse.ArgumentError: the module defined the option itself (cli.py fixes its default)
    with contextlib.suppress(argparse.ArgumentError):
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="JSON output; errors as JSON too")
    if home:
        with contextlib.suppress(argparse.ArgumentError):
            p.add_argument("--home", type=home_dir, metavar="DIR", default=argparse.SUPPRESS,
                           help=HOME_HELP)
