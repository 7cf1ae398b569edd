"""Tutorial: your own simulation study (run it: ``python simulation_study.py OUT``).

Question: how long until a benchmark's publication is final, as the block time of a
BFT-style consortium chain (finality by delay) changes?  Steps: a custom lifecycle, a custom
chain profile, one run as a function of (parameters, seed), a :class:`Study` over a grid x
seeds, tidy rows with intervals, a figure.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

from proml_sim.dsl import Artefact, Role, State
from proml_sim.sim import ChainProfile, Study, World


class Benchmark(Artefact):
    """A benchmark suite: drafted with its data's digest, then published (final)."""

    owner = Role(doc="the organisation maintaining the benchmark")
    draft = State(initial=True, by=owner, evidence=True)
    published = State(final=True)
    publish = draft.to(published, by=owner, evidence=True)


def one_run(params: dict[str, Any], seed: int) -> dict[str, Any]:
    """Three labs publish a benchmark every ~2 minutes for an hour; measure time to final."""
    chain = ChainProfile("lab-bft", consensus="fixed", block_time=params["block_time"],
                         finality_delay=params["finality_delay"])
    w = World(seed, chain, lifecycles=[Benchmark])
    labs = [w.add_participant(f"lab{i}", f"lab-{i}", r) for i, r in enumerate(("eu", "us", "asia"))]
    w.setup(grants=[(lab.name, "Benchmark", "owner") for lab in labs])

    def lab_work(w: World, lab: Any):  # type: ignore[no-untyped-def]
        for n in range(10**6):
            yield w.env.timeout(w.rng.expovariate(1 / 120))
            salt = f"{lab.name}-{n}".encode().ljust(32, b"\0")
            tx = yield from w.send(lab, "Benchmark", "register", salt, b"\1" * 32)
            yield w.confirmed(tx, 1)
            yield from w.send(lab, "Benchmark", "fire", "publish", w.result(tx), b"\2" * 32)

    for lab in labs:
        w.env.process(lab_work(w, lab))
    w.run(3600)  # drains: every call made in the hour gets its final time
    final = [r["final"] - r["submitted"] for r in w.monitor.rows if r["transition"] == "publish"]
    return {"publications": len(final), "to_final_s": statistics.median(final)}


def main(out: Path, seeds: int = 3) -> list[dict[str, Any]]:
    """The study: block time x seeds; prints the summary and draws the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    study = Study(one_run, {"block_time": [1.0, 2.0, 5.0], "finality_delay": [6.0]}, seeds)
    summary = study.run().summary(["to_final_s"])
    for row in summary:
        print(f"block time {row['block_time']} s: median time to final {row['value']:.1f} s "
              f"[{row['lo']:.1f}, {row['hi']:.1f}] over {row['n']} seeds")
    x = [r["block_time"] for r in summary]
    y = [r["value"] for r in summary]
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.errorbar(x, y, yerr=[[v - r["lo"] for v, r in zip(y, summary, strict=True)],
                            [r["hi"] - v for v, r in zip(y, summary, strict=True)]],
                marker="o", capsize=4)
    ax.set_xlabel("block time (s)")
    ax.set_ylabel("publication to final (s)")
    ax.set_title("Benchmarks on a BFT-style chain (finality after 6 s)")
    out.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out / "time_to_final.png", dpi=100)
    return summary


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tutorial_out"))
