"""Atomic file writes, used by every layer that writes: a temporary file in the target's
directory, ``fsync``, then ``os.replace``.  Readers see the old file or the whole new one, never
a half-written one; on any failure the temporary file is removed and the error propagates
(callers turn ``OSError`` into their own domain error)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO


def atomic_write_with(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Atomically replace ``path`` with what ``write`` writes to the binary file it gets."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write_with(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | Path, text: str, *, mkdir: bool = True) -> Path:
    """Atomically write ``text`` (UTF-8), creating the parent directory if needed."""
    if mkdir:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 2,
                      sort_keys: bool = True, mkdir: bool = True, **kw: Any) -> Path:
    """Atomically write ``obj`` as JSON (with a trailing newline)."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, **kw) + "\n"
    return atomic_write_text(path, text, mkdir=mkdir)
