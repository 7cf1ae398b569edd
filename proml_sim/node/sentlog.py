"""The node's log of the transactions it sent: ``HOME/sent.jsonl``, one JSON line each.

A step a node recorded is on the chain only while the chain keeps the block that holds it: on
a JSON-RPC network a reorganisation (or a development node restarted without its state) drops
it, and the artefact silently falls back a version while the node's store still holds the
record.  So every transaction a node's command mines is appended here (tx hash, what it did,
the block it was mined in, the command that sent it), and ``proml doctor`` asks the chain for
each one's receipt: a transaction no longer there is damage named with the command to run
again; once it has been, ``proml doctor --repair`` appends an ``ack`` line for it.  The log is
append-only (nothing in it is rewritten); an unreadable line (an interrupted append) is named.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from proml_sim.fsutil import parse_json

SENT_LOG = "sent.jsonl"


def append(home: Path, tx_hash: bytes, what: str, block: int) -> None:
    """Append one mined transaction to the home's log (one write of one line, then fsync)."""
    _append(home, {"tx": "0x" + tx_hash.hex(), "what": what, "block": block,
                   "at": int(time.time()), "command": _command()})


def acknowledge(home: Path, *, tx: str | None = None, line: int | None = None) -> None:
    """Mark a dropped transaction (or an unreadable line) handled: an appended ``{"ack": tx}``
    (``{"ack_line": n}``) line; nothing is deleted."""
    _append(home, {"ack": tx, "at": int(time.time())} if tx is not None
            else {"ack_line": line, "at": int(time.time())})


def acknowledge_line(home: Path, n: int) -> str:
    """Mark line ``n`` of the log handled (what :func:`dropped` named): its transaction when the
    line holds one, else the line itself; what was marked, described."""
    entry = next((e for i, e in entries(home) if i == n), None)
    if entry is not None and "tx" in entry:
        acknowledge(home, tx=entry["tx"])
        return f"the dropped transaction {entry['tx']}"
    acknowledge(home, line=n)
    return "the unreadable line"


def not_a_log(home: Path) -> str | None:
    """What makes ``HOME/sent.jsonl`` something the node must neither read as its log nor
    append to (a symbolic link, a directory, a pipe ...), or None (a regular file, or none).
    An append through a link would write into whatever file it names."""
    path = home / SENT_LOG
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return f"is a symbolic link (to {os.readlink(path)}), not the node's own file"
    return "is a directory" if stat.S_ISDIR(mode) else "is not a regular file"


def _append(home: Path, entry: dict[str, Any]) -> None:
    path = home / SENT_LOG
    problem = not_a_log(home)
    if problem is not None:
        raise OSError(errno.EINVAL, f"{path} {problem}; appended nothing")
    line = json.dumps(entry, sort_keys=True) + "\n"
    # never through a link (O_NOFOLLOW), never blocking on a pipe put there (O_NONBLOCK)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK,
                 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, f"{path} is not a regular file; appended nothing")
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":  # after a torn last line, a line
            line = "\n" + line                          # of our own
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


#: the ``proml`` command line being run (set by the CLI), else None: the process's own
COMMAND: str | None = None


def _command() -> str:
    """The command line that sent the transaction (``proml record ...``, or a script's)."""
    return (COMMAND or shlex.join(sys.argv))[:1000]


def _tx(v: Any) -> bool:
    if not (isinstance(v, str) and len(v) == 66 and v.startswith("0x")):
        return False
    try:
        bytes.fromhex(v[2:])
    except ValueError:
        return False
    return True


def entries(home: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """(line number, entry) of the home's log, its ``ack`` lines included; entry None for a
    line that does not parse."""
    path = home / SENT_LOG
    if not path.exists() or not_a_log(home) is not None:
        return  # (doctor names a log of the wrong kind: not_a_log)
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                e = parse_json(raw)
            except (ValueError, UnicodeDecodeError):
                e = None
            ok = isinstance(e, dict) and (_tx(e.get("ack")) or type(e.get("ack_line")) is int
                                          or (_tx(e.get("tx")) and type(e.get("block")) is int))
            yield n, (e if ok else None)


def dropped(home: Path, receipt: Any) -> list[tuple[int, dict[str, Any] | None, str]]:
    """The log's entries the chain no longer holds (``receipt(tx_hash)`` is None) and not
    acknowledged, and its unreadable lines: (line number, entry or None, what is wrong)."""
    out: list[tuple[int, dict[str, Any] | None, str]] = []
    seen = [e for _, e in entries(home) if e is not None]
    acked = {e["ack"].lower() for e in seen if "ack" in e}
    acked_lines = {e["ack_line"] for e in seen if "ack_line" in e}
    for n, e in entries(home):
        if e is not None and ("ack" in e or "ack_line" in e or e["tx"].lower() in acked):
            continue
        if e is None and n in acked_lines:
            continue
        if e is None:
            out.append((n, None, "does not parse (an interrupted append, or edited)"))
        elif receipt(bytes.fromhex(e["tx"][2:])) is None:
            out.append((n, e, f"transaction {e['tx']} ({e.get('what', '?')}, mined in block "
                              f"{e['block']}) is no longer on the chain"))
    return out
