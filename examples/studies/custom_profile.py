"""Study 2: a custom chain profile -- provenance latency and time to finality on a faster PoS
chain (``pos_6s.toml``) against Ethereum PoS, 4 seeds each, with 95 % bootstrap intervals."""

from pathlib import Path

from proml_sim.sim import Study
from proml_sim.sim.scenario import StreamScenario, run_streams

PROFILES = ["ethereum-pos", str(Path(__file__).with_name("pos_6s.toml"))]


def latency(params, seed):
    sc = StreamScenario(params["profile"], teams=8, hours=1.0, per_hour=20.0, seed=seed)
    w, stats = run_streams(sc)  # drains: no row is censored by the end of the hour
    final = sorted(r["final"] - r["submitted"] for r in w.monitor.rows if r["final"] is not None)
    return {"l1_median_s": stats["l1_median_s"], "l12_median_s": stats["l12_median_s"],
            "final_median_s": final[len(final) // 2],
            "all_final": len(final) == len(w.monitor.rows)}


if __name__ == "__main__":
    summary = Study(latency, {"profile": PROFILES}, seeds=4, workers=2).run().summary()
    for r in summary:
        print(f"{Path(r['profile']).stem:>13} {r['measure']:>15}: {r['value']:8.2f} "
              f"[{r['lo']:.2f}, {r['hi']:.2f}] ({r['stat']}, n={r['n']})")
