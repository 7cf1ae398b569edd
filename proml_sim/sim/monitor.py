"""Monitors: one tidy row per transaction, kept in memory or streamed to a CSV file.

The row schema (:data:`COLUMNS`, documented in :data:`SCHEMA`) is the same in memory, in CSV
and in Parquet; a value that does not exist (a transaction never included has no ``l1_s``) is
``None`` in memory, an empty cell in CSV and null in Parquet -- never ``''``.  Times are
simulated seconds since the start of the run.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from proml_sim.errors import OutputError, ProMLError, lifecycle_error_from_reason

if TYPE_CHECKING:
    from proml_sim.sim.world import SimTx, World

COLUMNS = (
    "time", "actor", "domain", "region", "artefact", "transition", "lifecycle", "tx", "nonce",
    "submitted", "included", "confirmed", "final", "l1_s", "l12_s", "gas", "outcome", "block",
    "engine_block", "reorged", "reorg_depth", "acted_on_orphan", "profile", "seed",
)


#: What each column holds (the documented row schema).
SCHEMA: dict[str, str] = {
    "time": "simulated time the call was submitted (s)",
    "actor": "participant name",
    "domain": "the participant's trust domain",
    "region": "the participant's network region",
    "artefact": "artefact id (hex) the call acts on or registers; None for grants",
    "transition": "the transition fired, or the method (register, grant, revoke)",
    "lifecycle": "lifecycle contract name (Dataset, Model, your own class, Anchor)",
    "tx": "transaction hash (hex)",
    "nonce": "sender nonce",
    "submitted": "simulated submission time (s)",
    "included": "when the submitter saw it in a block (s); None if never",
    "confirmed": "when the submitter saw it 12 blocks deep (s); None if never",
    "final": "when the submitter saw it final (the profile's rule) (s); None if never",
    "l1_s": "included - submitted (s); None if never included",
    "l12_s": "confirmed - submitted (s); None if never 12 deep",
    "gas": "gas used (receipt); None if never included",
    "outcome": "'ok', 'reverted:<LifecycleError class>' or 'pending'",
    "block": "height on the simulated canonical chain; None if not in it",
    "engine_block": "the engine's block number (-1: an empty block); None if not in it",
    "reorged": "times a reorg took it out of the chain",
    "reorg_depth": "deepest such reorg",
    "acted_on_orphan": "times its submitter had seen it confirmed before a reorg undid it",
    "profile": "chain profile name",
    "seed": "the world's seed",
}


def outcome(tx: SimTx) -> str:
    """'ok', 'reverted:<Code>' (the lifecycle error's class) or 'pending'."""
    r = tx.receipt
    if r is None:
        return "pending"
    if r.status:
        return "ok"
    err = lifecycle_error_from_reason(r.revert_reason) if r.revert_reason else None
    return f"reverted:{err.code if err else 'unknown'}"


def row_of(world: World, tx: SimTx) -> dict[str, Any]:
    """The row of one transaction (:data:`SCHEMA`)."""
    inc = tx.confirmed.get(1)
    conf = tx.confirmed.get(12)
    art = tx.meta.get("artefact")
    return {
        "time": round(tx.submitted, 3),
        "actor": tx.participant.name,
        "domain": tx.participant.domain,
        "region": tx.participant.region,
        "artefact": art.hex() if isinstance(art, bytes) else (art or None),
        "transition": tx.meta.get("transition", tx.meta.get("method")),
        "lifecycle": tx.meta.get("lifecycle"),
        "tx": tx.hash.hex(),
        "nonce": tx.nonce,
        "submitted": round(tx.submitted, 3),
        "included": round(inc, 3) if inc is not None else None,
        "confirmed": round(conf, 3) if conf is not None else None,
        "final": round(tx.final_at, 3) if tx.final_at is not None else None,
        "l1_s": round(inc - tx.submitted, 3) if inc is not None else None,
        "l12_s": round(conf - tx.submitted, 3) if conf is not None else None,
        "gas": tx.receipt.gas_used if tx.receipt else None,
        "outcome": outcome(tx),
        "block": tx.block.height if tx.block else None,
        "engine_block": tx.block.number if tx.block else None,
        "reorged": tx.reorged,
        "reorg_depth": tx.reorg_depth,
        "acted_on_orphan": tx.acted_on_orphan,
        "profile": world.profile.name,
        "seed": world.seed,
    }


def rows_dataframe(rows: Iterable[dict[str, Any]]) -> Any:
    """Rows (:data:`SCHEMA`) as a pandas DataFrame with the schema's columns in order, missing
    values as NaN/None (needs pandas: ``pip install 'proml-sim[data]'``).
    Example: ``rows_dataframe(world.monitor.rows)["l1_s"].median()``."""
    try:
        import pandas as pd
    except ImportError:
        raise ProMLError("a DataFrame needs pandas: pip install 'proml-sim[data]'") from None
    return pd.DataFrame(list(rows), columns=list(COLUMNS))


def write_parquet(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Write rows (:data:`SCHEMA`) to a Parquet file atomically, typed by the schema (needs
    pyarrow: ``pip install 'proml-sim[data]'``).  Example: ``write_parquet(w.monitor.rows,
    "rows.parquet")``; read back with ``pandas.read_parquet``."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ProMLError("Parquet output needs pyarrow: pip install 'proml-sim[data]'") from None
    from proml_sim.fsutil import atomic_write_with

    f64, i64, s = pa.float64(), pa.int64(), pa.string()
    types = {"time": f64, "submitted": f64, "included": f64, "confirmed": f64, "final": f64,
             "l1_s": f64, "l12_s": f64, "nonce": i64, "gas": i64, "block": i64,
             "engine_block": i64, "reorged": i64, "reorg_depth": i64, "acted_on_orphan": i64,
             "seed": i64}
    schema = pa.schema([(c, types.get(c, s)) for c in COLUMNS])
    table = pa.Table.from_pylist(list(rows), schema=schema)
    return atomic_write_with(path, lambda fh: pq.write_table(table, fh))  # type: ignore[no-untyped-call]


class Monitor:
    """Collects one row per transaction.

    With ``path``, rows stream to a CSV file (``.part`` while running, renamed on
    :meth:`close`; a run that stops early calls :meth:`abort`), so memory stays bounded however
    long the run; ``keep=False`` keeps none in memory.

    ``rows``: the rows kept in memory; ``count``: rows recorded.
    Example: ``World(1, "ethereum-pos", monitor=Monitor("rows.csv", keep=False))``.
    """

    def __init__(self, path: str | Path | None = None, *, keep: bool = True) -> None:
        self.rows: list[dict[str, Any]] = []
        self.keep = keep or path is None
        self.count = 0
        self.path = Path(path) if path else None
        self._fh: IO[str] | None = None
        self._writer: Any = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._part = self.path.with_name(self.path.name + ".part")
            try:  # never over an interrupted run's kept rows (abort)
                self._fh = open(self._part, "x", newline="")  # noqa: SIM115 - closed in close()
            except FileExistsError:
                raise OutputError(f"{self._part} holds the rows of an interrupted run; move it "
                                  "away (or delete it), then run again") from None
            self._writer = csv.DictWriter(self._fh, fieldnames=COLUMNS)
            self._writer.writeheader()

    def record(self, world: World, tx: SimTx) -> None:
        row = row_of(world, tx)
        self.count += 1
        if self.keep:
            self.rows.append(row)
        if self._writer is not None:
            self._writer.writerow(row)

    def abort(self) -> Path | None:
        """The run stopped before its end: the ``.part`` file is removed when it holds no row,
        else kept (rows are never thrown away) and returned, for the error to name."""
        if self._fh is None or self._fh.closed:
            return None
        self._fh.close()
        if self.count == 0:
            self._part.unlink(missing_ok=True)
            return None
        return self._part

    def close(self) -> None:
        if self._fh is not None and not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            assert self.path is not None
            os.replace(self._part, self.path)
