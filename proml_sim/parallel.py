"""Run independent tasks serially, on local processes or on a Dask cluster, with results in
task order whichever runs them: the machinery of ``proml sweep`` and of
:class:`proml_sim.sim.study.Study`.

A task is ``fn(*args)`` with ``fn`` a module-level function (worker processes import it by
name) and picklable arguments.  Executors: ``workers=0`` runs serially in this process;
``workers=K`` (default: the CPU count) runs K spawned processes
(:class:`concurrent.futures.ProcessPoolExecutor`); ``scheduler="tcp://HOST:PORT"`` submits to
a running Dask scheduler (``dask.distributed``, the ``sweeps`` extra).

Example: ``rows, executor, n = run_tasks(pow, [(2, 3), (2, 4)], workers=0)`` gives
``([8, 16], "serial", 1)``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["DASK_HINT", "grid_points", "run_tasks"]

DASK_HINT = "pip install 'proml-sim[sweeps]'  (dask[distributed])"

Progress = Callable[[int, int], None]


def grid_points(axes: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, the first axis varying slowest.  Example:
    ``grid_points({"a": [1, 2], "b": ["x"]})`` is ``[{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]``.
    """
    names = list(axes)
    for name in names:
        if not list(axes[name]):
            raise ValueError(f"parameter {name!r} has no values; give at least one")
    return [dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(list(axes[n]) for n in names))]


def run_tasks(fn: Callable[..., Any], tasks: Sequence[tuple[Any, ...]], *,
              workers: int | None = None, scheduler: str | None = None,
              progress: Progress | None = None) -> tuple[list[Any], str, int]:
    """Run ``fn(*t)`` for every ``t`` in ``tasks``; returns (results in task order, the
    executor used: ``serial``, ``processes`` or ``dask``, the number of local workers).

    Example: ``run_tasks(pow, [(2, 3), (2, 4)], workers=2)`` runs both on two processes."""
    tasks = list(tasks)
    if workers is not None and workers < 0:
        raise ValueError("workers must be >= 0 (0: serially in this process)")
    if scheduler:
        return _on_dask(fn, tasks, scheduler, progress), "dask", 0
    if workers == 0 or len(tasks) <= 1:
        return _serial(fn, tasks, progress), "serial", 1
    n = min(workers or os.cpu_count() or 1, len(tasks))
    return _on_processes(fn, tasks, n, progress), "processes", n


def _serial(fn: Callable[..., Any], tasks: list[tuple[Any, ...]],
            progress: Progress | None) -> list[Any]:
    out = []
    for i, t in enumerate(tasks):
        out.append(fn(*t))
        if progress:
            progress(i + 1, len(tasks))
    return out


def _on_processes(fn: Callable[..., Any], tasks: list[tuple[Any, ...]], workers: int,
                  progress: Progress | None) -> list[Any]:
    # imported here: the command line registers `proml sweep` without paying for them
    from concurrent.futures import as_completed

    from proml_sim.procs import process_pool

    # spawned, not forked: a clean interpreter per worker (no inherited engine state or
    # threads); torn down at once on Ctrl-C
    out: list[Any] = [None] * len(tasks)
    with process_pool(workers) as pool:
        futures = {pool.submit(fn, *t): i for i, t in enumerate(tasks)}
        for done, fut in enumerate(as_completed(futures), 1):
            out[futures[fut]] = fut.result()
            if progress:
                progress(done, len(tasks))
    return out


def _on_dask(fn: Callable[..., Any], tasks: list[tuple[Any, ...]], scheduler: str,
             progress: Progress | None) -> list[Any]:
    try:
        from dask.distributed import Client
        from dask.distributed import as_completed as dask_completed
    except ImportError:
        raise ValueError(f"--scheduler needs dask.distributed: {DASK_HINT}") from None
    # the client only: the cluster belongs to whoever started it and keeps running
    try:
        client: Any = Client(scheduler, timeout="30s")  # type: ignore[no-untyped-call]
    except OSError as exc:  # refused, unreachable, or no answer within the timeout
        raise ValueError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); start one "
                         "(`dask scheduler`, then `dask worker ADDRESS`) or fix the address"
                         ) from None
    with client:
        futures = [client.submit(fn, *t, pure=False) for t in tasks]
        for done, _ in enumerate(dask_completed(futures), 1):  # type: ignore[no-untyped-call]
            if progress:
                progress(done, len(tasks))
        out: list[Any] = client.gather(futures)
    return out
