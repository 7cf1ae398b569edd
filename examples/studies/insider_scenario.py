"""Study 3: a new insider-attack scenario (X2, ``X2.toml``) as a plugin, written with the
scenario kit.  Run: ``proml threats run X2 --scenarios examples/studies/insider_scenario.py``."""

from proml_sim.lifecycles import Dataset
from proml_sim.sim import World
from proml_sim.threats.baseline import CentralDB
from proml_sim.threats.kit import Alarm, Consumer, attempt, outcome
from proml_sim.threats.runner import scenario

RAW, LABELS, POISON = b"\x01" * 32, b"\x02" * 32, b"\x66" * 32


@scenario("X2")
class RelabelAfterReview:
    @staticmethod
    def proml(tm, seed, workdir):
        w = World(seed, "consortium-fast", lifecycles=[Dataset])
        da = w.add_participant("da", "data-co", "eu")
        lab = w.add_participant("lab", "data-co", "us")
        # a consortium: data-co may also hold the labeller role its dataset admin grants
        w.setup(grants=[("da", "Dataset", "dataset_admin")],
                allow=[("lab", "Dataset", "labeller")])
        did = w.client("Dataset").artefact_id(da.address, b"d".ljust(32, b"\0"))
        attack = {}

        def story(w):
            yield from attempt(w, da, "Dataset", "register", b"d".ljust(32, b"\0"), RAW)
            yield from attempt(w, da, "Dataset", "grant", "labeller", lab.address,
                               b"data-co".ljust(32, b"\0"))
            yield from attempt(w, lab, "Dataset", "fire", "label", did, LABELS)
            yield from attempt(w, da, "Dataset", "fire", "review", did)
            yield w.env.timeout(w.rng.uniform(60, 600))
            yield from attempt(w, lab, "Dataset", "fire", "label", did, POISON, out=attack)

        w.env.process(story(w))
        w.run(1200)
        goal = Consumer("Dataset", state="reviewed").accepts(w, did, digest=POISON)
        return outcome(goal, attack_at=attack["at"], note=attack["outcome"])

    @staticmethod
    def baseline(tm, seed, workdir):
        db = CentralDB(workdir / "db.sqlite", {"Dataset": Dataset}, admin="da")
        db.grant("da", "Dataset", "dataset_admin", "data-co")
        db.grant("lab", "Dataset", "labeller", "data-co")
        did = db.register("da", "Dataset", "d", RAW.hex())
        db.fire("lab", "label", did, LABELS.hex())
        db.fire("da", "review", did)
        at = 60 + seed * 97 % 540
        db.admin_sql("UPDATE artefacts SET digest=? WHERE id=?", (POISON.hex(), did))
        every = tm.parameters["audit_every_s"]
        last = [r[4] for r in db.history(did) if r[4]][-1]  # the audit: history vs current
        alarms = [Alarm(every * (at // every + 1), "audit")] if last != db.digest_of(did) else []
        goal = db.digest_of(did) == POISON.hex()
        db.close()
        return outcome(goal, attack_at=at, alarms=alarms)
