"""Tutorial: your own threat scenario, as a plugin (run it: ``python threat_scenario.py OUT``).

X1 -- an insider swaps a published benchmark's data for a poisoned copy.  The scenario is a class
registered with ``@scenario("X1")``; its threat model is ``X1.toml`` beside this file, whose
``[actors]`` is the cast both systems are built from (``kit.world``, ``kit.central``), so the
code below holds only the attack.  Both sides use the scenario kit
(:mod:`proml_sim.threats.kit`), so success and detection mean the same thing: success = a
consumer accepts the poisoned copy; detected = an alarm from data a real deployment has, with
the time to detect.  Run it with the CLI::

    proml threats run X1 --scenarios docs/tutorials/threat_scenario.py

An attack made only of lifecycle calls (and the baseline insider's rewrite) needs no code at
all: ``X3.toml`` beside this file states it as a ``[play]`` (:mod:`proml_sim.threats.story`).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from proml_sim.dsl import Artefact, Role, State
from proml_sim.sim import World
from proml_sim.threats.catalogue import ThreatModel
from proml_sim.threats.kit import Alarm, Consumer, attempt, central, outcome, world
from proml_sim.threats.runner import Outcome, scenario

GOOD, POISON = b"\x11" * 32, b"\x66" * 32


class Benchmark(Artefact):
    """A benchmark suite: drafted with its data's digest, then published (final)."""

    owner = Role(doc="the organisation maintaining the benchmark")
    draft = State(initial=True, by=owner, evidence=True)
    published = State(final=True)
    publish = draft.to(published, by=owner, evidence=True)


@scenario("X1")
class InsiderSwap:
    """The owner, after publication, records a poisoned copy's digest."""

    @staticmethod
    def proml(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        w, _ = world(tm, seed, lifecycles=[Benchmark])
        salt = b"bench".ljust(32, b"\0")
        bid = w.client("Benchmark").artefact_id(w.participant("owner").address, salt)
        attack: dict[str, object] = {}

        def story(w: World):  # type: ignore[no-untyped-def]
            yield from attempt(w, "owner", "Benchmark", "register", salt, GOOD)
            yield from attempt(w, "owner", "Benchmark", "fire", "publish", bid, GOOD)
            yield w.env.timeout(w.rng.uniform(60, 600))  # later, the insider strikes
            yield from attempt(w, "owner", "Benchmark", "fire", "publish", bid, POISON,
                               out=attack)

        w.env.process(story(w))
        w.run(1200)
        goal = Consumer("Benchmark", state="published").accepts(w, bid, digest=POISON)
        return outcome(goal, attack_at=float(attack["at"]),  # type: ignore[arg-type]
                       note=f"insider's call: {attack['outcome']}")

    @staticmethod
    def baseline(tm: ThreatModel, seed: int, workdir: Path) -> Outcome:
        rng = random.Random(seed)
        db = central(tm, workdir, {"Benchmark": Benchmark}, admin="owner")
        bid = db.register("owner", "Benchmark", "bench", GOOD.hex())
        db.fire("owner", "publish", bid, GOOD.hex())
        mirror = db.digest_of(bid)  # a user's own copy of the published digest
        attack_at = rng.uniform(60, 600)
        db.admin_sql("UPDATE artefacts SET digest=? WHERE id=?", (POISON.hex(), bid))
        every = float(tm.parameters["check_every_s"])  # X1.toml [parameters]
        alarms = [Alarm(every * (attack_at // every + 1), "mirror-check")] \
            if db.digest_of(bid) != mirror else []
        goal = db.digest_of(bid) == POISON.hex()
        db.close()
        return outcome(goal, attack_at=attack_at, alarms=alarms)


def main(out: Path, seeds: int = 5) -> dict[str, object]:
    """Run X1 on both systems, print the verdicts and draw ASR with its Wilson interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from proml_sim.threats.catalogue import load_threat
    from proml_sim.threats.runner import run_threat

    r = run_threat(load_threat(Path(__file__).with_name("X1.toml")), seeds=seeds)
    sides = ("baseline", "proml")
    for s in sides:
        print(f"{s}: {r[s]['verdict']}, ASR {r[s]['asr']:.2f} {r[s]['asr_ci']}, "
              f"detected {r[s]['detection_rate']}, time to detect {r[s]['ttd_s']} s")
    fig, ax = plt.subplots(figsize=(4, 3))
    asr = [r[s]["asr"] for s in sides]
    err = [[a - r[s]["asr_ci"][0] for a, s in zip(asr, sides, strict=True)],
           [r[s]["asr_ci"][1] - a for a, s in zip(asr, sides, strict=True)]]
    ax.bar(sides, asr, yerr=err, capsize=6, color=["#c44", "#48c"])
    ax.set_ylabel(f"attack success rate ({seeds} seeds, 95 % Wilson)")
    ax.set_title("X1: insider swaps a published benchmark")
    out.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out / "x1_asr.png", dpi=100)
    return r


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tutorial_out"))
