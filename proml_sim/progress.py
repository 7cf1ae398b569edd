"""Progress for long work: a bar on a terminal, plain log lines otherwise, never on stdout.

``with progress("hashing data.bin", total=size, unit="B") as bar: bar.advance(len(chunk))``

* stderr is a terminal: a rich progress bar on stderr (several at once share one display, so an
  experiment's own bar shows under ``proml reproduce``'s);
* stderr is not a terminal (a pipe, a log file, CI): one plain line when the work starts, one
  every ``PROML_PROGRESS_INTERVAL`` seconds (default 10) while it runs, and one when it ends;
* ``PROML_PROGRESS=0`` (or ``off``/``false``/``no``), or :func:`set_enabled(False)`: nothing.

stdout is never written, so ``--json`` and other machine-readable output stay untouched.  rich
is imported only when a bar is actually drawn (``proml --help`` stays fast).
"""

from __future__ import annotations

import os
import sys
import time
from types import TracebackType
from typing import Any, TextIO

ENV = "PROML_PROGRESS"
ENV_INTERVAL = "PROML_PROGRESS_INTERVAL"
#: Files smaller than this are hashed without a progress display (it would only flicker).
BIG_FILE = 64 << 20
_OFF = {"0", "off", "false", "no"}
_override: bool | None = None


def set_enabled(on: bool | None) -> None:
    """Force progress on or off for this process (a CLI flag); ``None``: follow the env."""
    global _override
    _override = on


def enabled() -> bool:
    """Whether progress is shown at all (``PROML_PROGRESS``, unless :func:`set_enabled`)."""
    if _override is not None:
        return _override
    return os.environ.get(ENV, "1").strip().lower() not in _OFF


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get(ENV_INTERVAL, "10")))
    except ValueError:
        return 10.0


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced by something without isatty
        return False


class Progress:
    """One piece of long work; use :func:`progress` to make one."""

    def __init__(self, description: str, total: float | None, unit: str,
                 stream: TextIO | None, show: bool = True) -> None:
        self.description = description
        self.show = show
        self.total = total
        self.unit = unit
        self.completed = 0.0
        self._stream = stream
        self._mode = "off"
        self._task: Any = None
        self._started = 0.0
        self._last_line = 0.0

    # -- use ------------------------------------------------------------------------------------
    def advance(self, amount: float = 1) -> None:
        """``amount`` more of the work is done."""
        self.update(self.completed + amount)

    def update(self, completed: float | None = None, description: str | None = None) -> None:
        """Set how much is done (and, optionally, a new description)."""
        if completed is not None:
            self.completed = completed
        if description is not None:
            self.description = description
        if self._mode == "bar":
            _Live.update(self._task, self.completed, self._amount(), description)
        elif self._mode == "lines" and time.monotonic() - self._last_line >= _interval():
            self._line()

    # -- context --------------------------------------------------------------------------------
    def __enter__(self) -> Progress:
        if not self.show or not enabled():
            return self
        stream = self._stream or sys.stderr
        self._stream = stream
        self._started = self._last_line = time.monotonic()
        if _is_tty(stream):
            self._mode = "bar"
            self._task = _Live.add(stream, self.description, self.total, self._amount())
        else:
            self._mode = "lines"
            self._line()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._mode == "bar":
            _Live.remove(self._task)
        elif self._mode == "lines":
            took = time.monotonic() - self._started
            how = "done" if exc_type is None else "stopped"
            self._write(f"proml: {self.description}: {how} in {took:.1f} s ({self._amount()})")
        self._mode = "off"

    # -- plain lines ----------------------------------------------------------------------------
    def _amount(self) -> str:
        if not self.total:
            return _fmt(self.completed, self.unit)
        pct = 100.0 * self.completed / self.total
        if self.unit == "B":
            return f"{_fmt(self.completed, 'B')} of {_fmt(self.total, 'B')}, {pct:.0f}%"
        return f"{_fmt(self.completed, '')} of {_fmt(self.total, self.unit)}, {pct:.0f}%"

    def _line(self) -> None:
        self._last_line = time.monotonic()
        self._write(f"proml: {self.description}: {self._amount()}")

    def _write(self, text: str) -> None:
        assert self._stream is not None
        try:
            self._stream.write(text + "\n")
            self._stream.flush()
        except (OSError, ValueError):  # stderr closed or gone: progress is never worth failing
            self._mode = "off"


def _fmt(value: float, unit: str) -> str:
    if unit == "B":
        for size, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if value >= size:
                return f"{value / size:.1f} {name}"
        return f"{value:.0f} B"
    number = f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
    return f"{number} {unit}".rstrip()


class _Live:
    """The one rich display on stderr that every bar of this process shares (rich allows only
    one live display per console)."""

    progress: Any = None
    users = 0

    @classmethod
    def add(cls, stream: TextIO, description: str, total: float | None, amount: str) -> Any:
        if cls.progress is None:
            from rich.console import Console
            from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            cls.progress = RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(),
                TextColumn("{task.fields[amount]}"), TimeElapsedColumn(),
                console=Console(file=stream), transient=True,
            )
            cls.progress.start()
        cls.users += 1
        return cls.progress.add_task(description, total=total, amount=amount)

    @classmethod
    def update(cls, task: Any, completed: float, amount: str, description: str | None) -> None:
        kw: dict[str, Any] = {"completed": completed, "amount": amount}
        if description is not None:
            kw["description"] = description
        cls.progress.update(task, **kw)

    @classmethod
    def remove(cls, task: Any) -> None:
        cls.progress.remove_task(task)
        cls.users -= 1
        if cls.users == 0:
            cls.progress.stop()
            cls.progress = None


def progress(description: str, total: float | None = None, unit: str = "",
             *, stream: TextIO | None = None, show: bool = True) -> Progress:
    """A context manager reporting progress of one piece of work (see the module docstring).
    ``total``: the amount of work (``None``: unknown); ``unit``: ``"B"`` for bytes (shown in
    KiB/MiB/GiB), else a word shown after the numbers; ``stream``: stderr unless given;
    ``show=False``: silent (work too small to be worth a display)."""
    return Progress(description, total, unit, stream, show)


def for_file(fh: Any, what: str = "hashing") -> Progress:
    """Progress of reading the open file ``fh`` to its end; silent below :data:`BIG_FILE`."""
    try:
        size = os.fstat(fh.fileno()).st_size
    except (OSError, AttributeError, ValueError):
        size = 0
    return progress(f"{what} {getattr(fh, 'name', 'file')}", total=size, unit="B",
                    show=size >= BIG_FILE)
