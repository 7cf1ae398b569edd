"""Atomic file writes, used by every layer that writes: a temporary file in the target's
directory, ``fsync``, then ``os.replace``.  Readers see the old file or the whole new one, never
a half-written one; on any failure the temporary file is removed and
:class:`~proml_sim.errors.OutputError` (an ``OSError``) names the file and the fix.

New files get mode ``0o666 & ~umask``, as ``open()`` would give them (``mkstemp`` alone would
make every output 0600 whatever the user's umask); secrets pass ``mode=0o600``.  A missing
directory is created only where the caller asks for it (``mkdir=True``): an output path typed
by a user (``-o``) into a directory that does not exist is an input error, not a reason to
create directories.

Readers of text from outside (files, bundles, peers, a user's TOML) parse it with
:func:`parse_json` and :func:`parse_toml`: input nested deeper than the parsers' recursion
limit is a malformed file (``ValueError``) like any other, not a ``RecursionError``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import threading
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from proml_sim.errors import OutputError

#: the recursion limit while text from outside is parsed.  JSON's C parser recurses on the C
#: stack, and py-evm's dependency py_ecc raises the process's limit to 100,000 when imported:
#: deep enough for ``"[" * 100_000`` to overflow an 8 MiB stack (a segmentation fault) before
#: any ``RecursionError``, and for a deep TOML value to be parsed, then crash whatever prints
#: it.  No JSON or TOML this project reads nests a hundredth as deep.
PARSE_RECURSION_LIMIT = 10_000
# the limit is process-wide: one parse at a time lowers and restores it (the parsers hold the
# GIL throughout, so this serialises nothing that ran in parallel)
_PARSING = threading.Lock()


@contextlib.contextmanager
def _bounded_recursion() -> Iterator[None]:
    with _PARSING:
        limit = sys.getrecursionlimit()
        if limit > PARSE_RECURSION_LIMIT:
            sys.setrecursionlimit(PARSE_RECURSION_LIMIT)
        try:
            yield
        finally:
            if limit > PARSE_RECURSION_LIMIT:
                sys.setrecursionlimit(limit)


def parse_json(data: str | bytes) -> Any:
    """``json.loads``, with nesting too deep to parse a ``ValueError`` (the malformed-JSON
    error every reader already handles) rather than a ``RecursionError`` or a crash: the
    recursion limit is held at :data:`PARSE_RECURSION_LIMIT` while it parses (no thread of
    this project recurses that deep meanwhile)."""
    try:
        with _bounded_recursion():
            return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply to parse") from None


def parse_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads``, with nesting too deep to parse a ``TOMLDecodeError`` (a
    ``ValueError``) rather than a ``RecursionError``, at the same bounded limit."""
    try:
        with _bounded_recursion():
            return tomllib.loads(text)
    except RecursionError:
        raise tomllib.TOMLDecodeError("TOML nested too deeply to parse") from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """The TOML file at ``path`` parsed (:func:`parse_toml`).  TOML is UTF-8: a byte that is
    not is a ``TOMLDecodeError`` naming its offset (it was an internal error where the text was
    decoded first); an unreadable file raises ``OSError``."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise tomllib.TOMLDecodeError(f"byte {exc.start} ({data[exc.start]:#04x}) is not UTF-8 "
                                      "text, which TOML requires") from None
    return parse_toml(text)


def default_mode() -> int:
    """``0o666 & ~umask``: the mode ``open()`` gives a new file under the current umask."""
    try:  # Linux reports it without changing it (no window where another thread sees 022)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere reading the umask means setting it: set it straight back
    os.umask(mask)
    return 0o666 & ~mask


def check_output_path(path: str | Path) -> Path:
    """``path`` as a :class:`Path` if a file can be written there: its directory exists and it
    is not itself a directory; otherwise :class:`OutputError` naming the fix."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a directory; give a file name")
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: the directory {path.parent} does not exist; "
                          "create it first or pick another path")
    return path


def atomic_write_with(path: str | Path, write: Callable[[BinaryIO], object], *,
                      mode: int | None = None) -> Path:
    """Atomically replace ``path`` with what ``write`` writes to the binary file it gets; the
    file gets ``mode`` (default ``0o666 & ~umask``)."""
    path = check_output_path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; check the directory's "
                          "permissions and free space") from exc
    try:
        os.fchmod(fd, default_mode() if mode is None else mode)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; check the directory's "
                          "permissions and free space") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Atomically write ``data`` to ``path`` (its directory must exist)."""
    return atomic_write_with(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | Path, text: str, *, mkdir: bool = True) -> Path:
    """Atomically write ``text`` (UTF-8); ``mkdir``: create the parent directory if needed."""
    if mkdir:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 2,
                      sort_keys: bool = True, mkdir: bool = True, **kw: Any) -> Path:
    """Atomically write ``obj`` as JSON (with a trailing newline)."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, **kw) + "\n"
    return atomic_write_text(path, text, mkdir=mkdir)
