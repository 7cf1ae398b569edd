"""Study 1: a custom lifecycle in the simulator -- peer-reviewed benchmarks (2 reviewers from 2
organisations) recorded by 6 labs on Ethereum PoS; latency of each transition."""

import numpy as np

from proml_sim import Artefact, Role, State
from proml_sim.sim import World, rows_dataframe


class Benchmark(Artefact):
    """A benchmark drafted by a lab, approved by two reviewers of two organisations."""

    lab = Role()
    reviewer = Role()
    draft = State(initial=True, by=lab, evidence=True)
    published = State(final=True)
    publish = draft.to(published, by=reviewer, approvals=2, count="domains", evidence=True)


w = World(seed=7, profile="ethereum-pos", lifecycles=[Benchmark])
labs = [w.add_participant(f"lab{i}", f"org{i}", ("eu", "us", "asia")[i % 3]) for i in range(6)]
w.setup(grants=[(p.name, "Benchmark", r) for p in labs for r in ("lab", "reviewer")])


def lab_work(w, me, peers):
    for n in range(3):
        yield w.env.timeout(w.rng.expovariate(1 / 600))
        data = bytes([n + 1]) * 32
        salt = f"{me.name}-{n}".encode().ljust(32, b"\0")
        tx = yield from w.send(me, "Benchmark", "register", salt, data)
        yield w.confirmed(tx)
        bid = w.result(tx)
        for reviewer in w.rng.sample(peers, 2):  # two reviewers of other organisations
            yield from w.send(reviewer, "Benchmark", "approve", "publish", bid, data)


for me in labs:
    w.env.process(lab_work(w, me, [p for p in labs if p is not me]))
w.run(3 * 3600)
df = rows_dataframe(w.monitor.rows)
for (transition, outcome), g in df.groupby(["transition", "outcome"]):
    print(f"{transition:>8} {outcome:<10} n={len(g):>3}  L@1 median {np.median(g.l1_s):6.1f} s"
          f"  L@12 median {np.median(g.l12_s):6.1f} s  final median "
          f"{np.median(g.final - g.submitted):6.1f} s")
