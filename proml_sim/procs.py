"""Worker processes that stop with their parent on Ctrl-C.

:func:`process_pool` is a :class:`~concurrent.futures.ProcessPoolExecutor` (spawned workers)
with two changes, so that ``proml`` answers Ctrl-C with exit 130 and one line, at once:

* workers ignore SIGINT: a Ctrl-C at a terminal (sent to the whole process group) reaches only
  the parent, so no worker prints a ``KeyboardInterrupt`` traceback of its own;
* when the body raises (``KeyboardInterrupt`` included), queued work is cancelled and running
  workers are terminated before the exception goes on, instead of the executor's default of
  waiting for every submitted task to finish.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def process_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` spawned processes that is torn down at once on an exception."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_ignore_sigint)
    try:
        yield pool
    except BaseException:
        # the executor has no public way to stop running tasks (3.14 adds terminate_workers);
        # take the workers before shutdown() forgets them
        running = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in running:
            proc.terminate()
        raise
    else:
        pool.shutdown(wait=True)
