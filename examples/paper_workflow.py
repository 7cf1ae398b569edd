"""The paper's 9-step workflow, for real: six participants, six trust domains, six nodes,
under quorum governance (the paper's Dataset / Model, consortiums of member domains by default).

Run: ``python examples/paper_workflow.py --out DIR`` (needs ``pip install -e '.[examples]'``).

Participants, each with its own node home, keys and store (all nodes share one embedded chain
directory and replicate their blobs to a consortium evidence archive):

=============  ==============  ==============================================================
participant    trust domain    does
=============  ==============  ==============================================================
client         client-co       has the idea (registers the model), hires the data company,
                               evaluates on held-out data (2nd verifier), accepts the model
data company   data-co         collects the data (scikit-learn's bundled breast-cancer data:
                               no download), hires the labeller, reviews and releases
labeller       crowd-co        the outsourced labeller: attaches the labels
developer      dev-co          trains a logistic-regression model on the released split
verifier       verif-co        evaluates on the held-out split (1st verifier)
auditor        audit-co        third-party validation of model and data
=============  ==============  ==============================================================

Governance: the client's node creates the chain and founds both consortiums (quorum 2).  Every
other domain joins by a proposal (``proml consortium propose``) that a quorum of the current
members votes for; each domain's node is its domain's admin and enrols only its own account,
only in the roles the consortium allowed its domain.  No single key can mint a verifier domain.

Each step is captured through the node's Python decorator / context manager or through the
``proml`` command line, exactly as a participant's own scripts and shell would.  The run ends
with ``proml verify`` passing, a lineage PNG and a PROV-JSON file; then it tampers with the
dataset's bytes in every store after registration and shows ``proml verify`` catching it.
"""

from __future__ import annotations

import argparse
import csv
import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from proml_sim.node import ProMLNode, sha256_file
from proml_sim.node import consortium as gov

DS, MODEL = "Dataset", "Model"  # consortium governance (quorum 2): the default
PARTICIPANTS = {  # name: trust domain
    "client": "client-co", "data": "data-co", "labeller": "crowd-co", "developer": "dev-co",
    "verifier": "verif-co", "auditor": "audit-co",
}


def proml(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The ``proml`` CLI in a separate process, as a shell script would call it."""
    cmd = [sys.executable, "-m", "proml_sim.cli", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def main(out: Path) -> dict[str, Any]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import train_test_split

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    work = out / "work"
    work.mkdir(parents=True)
    chain, archive = out / "chain", out / "archive"
    homes = {n: out / "nodes" / n for n in PARTICIPANTS}
    steps: list[str] = []

    # -- step 1: the client has an idea; it creates the chain and registers the model ------
    client = ProMLNode.init(homes["client"], name="client", domain="client-co", new_chain=True,
                            chain_dir=chain, seed="example-client", replicas=[archive],
                            plain_key=True)  # simulated participants: plain keys
    nodes = {"client": client}
    for name, domain in PARTICIPANTS.items():
        if name != "client":
            proml("init", "--name", name, "--domain", domain, "--chain", str(chain),
                  "--home", str(homes[name]), "--seed", f"example-{name}",
                  "--replica", str(archive), "--plain-key")
            nodes[name] = ProMLNode.open(homes[name])
    addr = {n: nd.address for n, nd in nodes.items()}
    members = {DS: ["client"], MODEL: ["client"]}

    def admit(lifecycle: str, name: str, roles: str) -> None:
        """A domain joins: the client proposes (CLI), the other members vote, it executes;
        then the new domain's own node enrols its own account."""
        pid = json.loads(proml("consortium", "propose", lifecycle, "add_domain", "--domain",
                               PARTICIPANTS[name], "--admin", addr[name], "--roles", roles,
                               "--json", "--home", str(homes["client"])).stdout)["proposal"]
        for voter in members[lifecycle][1:]:
            gov.vote(nodes[voter], lifecycle, pid)
        gov.execute(nodes[name], lifecycle, pid)
        members[lifecycle].append(name)
        for role in roles.split(","):
            nodes[name].grant(lifecycle, role, addr[name], PARTICIPANTS[name])

    for role in ("operator", "verifier"):  # the founding domain may hold every role
        client.grant(MODEL, role, addr["client"], "client-co")
    admit(MODEL, "developer", "developer")
    admit(MODEL, "verifier", "verifier")
    admit(MODEL, "auditor", "auditor")
    client.register(MODEL, "tumour-classifier", params={"goal": "classify tumours"})
    steps.append("1 client registers the model idea")

    # -- step 2: the client hires a data company: the consortium admits its domain ---------
    admit(DS, "data", "dataset_admin")
    steps.append("2 client hires the data company")

    # -- step 3: data gathered (features only: labels come from the labeller) --------------
    bunch = load_breast_cancer()
    raw = work / "raw.csv"
    with open(raw, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["row", *bunch.feature_names])
        for i, row in enumerate(bunch.data):
            w.writerow([i, *(f"{v:.6g}" for v in row)])
    proml("register", "breast-cancer", str(raw), "--lifecycle", DS,
          "--locator", "pypi:scikit-learn/sklearn/datasets/data/breast_cancer.csv",
          "--home", str(homes["data"]))
    steps.append("3 data company registers the collected data")

    # -- step 4: labelling outsourced; the labeller's script is captured by a context manager
    admit(DS, "labeller", "labeller")  # quorum: the client and the data company vote
    labels = work / "labels.csv"
    with nodes["labeller"].step("label", artefact="breast-cancer", inputs=["breast-cancer", raw],
                                outputs=[labels], params={"guideline": "v1"}) as s:
        with open(labels, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["row", "malignant"])
            for i, t in enumerate(bunch.target):
                w.writerow([i, int(t == 0)])
        s.params["labelled_rows"] = len(bunch.target)
    steps.append("4 outsourced labeller attaches labels")

    # -- step 5: review (not by the labeller) and hand-over of a train/held-out split -------
    proml("record", "review", "breast-cancer", "--home", str(homes["data"]))
    idx = list(range(len(bunch.target)))
    train_idx, held_idx = train_test_split(idx, test_size=0.25, random_state=0,
                                           stratify=bunch.target)
    train_csv, held_csv = work / "train.csv", work / "heldout.csv"
    for path, rows in ((train_csv, train_idx), (held_csv, held_idx)):
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["row", *bunch.feature_names, "malignant"])
            for i in sorted(rows):
                w.writerow([i, *(f"{v:.6g}" for v in bunch.data[i]), int(bunch.target[i] == 0)])
    proml("record", "release", "breast-cancer", "--input", str(raw), "--input", str(labels),
          "--output", str(train_csv), "--output", str(held_csv), "--param", "split=0.25",
          "--param", "seed=0", "--home", str(homes["data"]))
    steps.append("5 data company reviews and releases the split")

    def load(path: Path) -> tuple[list[list[float]], list[int]]:
        with open(path) as fh:
            rows = list(csv.reader(fh))[1:]
        return [[float(v) for v in r[1:-1]] for r in rows], [int(r[-1]) for r in rows]

    # -- step 6: the developer's training function, captured by the decorator ---------------
    model_pkl = work / "model.pkl"
    dev = nodes["developer"]

    @dev.capture("train", artefact="tumour-classifier", inputs=["breast-cancer", train_csv],
                 outputs=[model_pkl])
    def train(C: float = 1.0, max_iter: int = 5000) -> Any:
        X, y = load(train_csv)
        clf = LogisticRegression(C=C, max_iter=max_iter).fit(X, y)
        model_pkl.write_bytes(pickle.dumps(clf))
        return clf

    train(C=1.0, max_iter=5000)
    steps.append("6 developer trains the model")

    # -- step 7: two verifiers in two domains evaluate on held-out data, approve the same report
    def evaluate(path: Path) -> Path:
        clf = pickle.loads(model_pkl.read_bytes())
        X, y = load(held_csv)
        pred = clf.predict(X)
        report = {"model_sha256": sha256_file(model_pkl)[0],
                  "heldout_sha256": sha256_file(held_csv)[0],
                  "accuracy": round(float(accuracy_score(y, pred)), 6),
                  "f1": round(float(f1_score(y, pred)), 6)}
        path.write_text(json.dumps(report, sort_keys=True))
        return path

    evaluation = evaluate(work / "evaluation.json")
    proml("approve", "verify", "tumour-classifier", "--evidence", str(evaluation),
          "--home", str(homes["verifier"]))
    proml("approve", "verify", "tumour-classifier", "--evidence", str(evaluation),
          "--home", str(homes["client"]))
    steps.append("7 verifier and client approve the same evaluation (2 domains)")

    # -- step 8: the model goes back to the client --------------------------------------------
    proml("record", "accept", "tumour-classifier", "--home", str(homes["client"]))
    steps.append("8 client accepts the model")

    # -- step 9: third-party validation --------------------------------------------------------
    audit = work / "audit.json"
    with nodes["auditor"].step("audit", artefact="tumour-classifier",
                               inputs=["tumour-classifier"], outputs=[audit]) as s:
        again = json.loads(evaluate(work / "audit-eval.json").read_text())
        claimed = json.loads(evaluation.read_text())
        audit.write_text(json.dumps({"reproduced": again == claimed, **again}, sort_keys=True))
        s.params["reproduced"] = again == claimed
    steps.append("9 auditor validates")

    status = json.loads(proml("status", "tumour-classifier", "--json",
                              "--home", str(homes["auditor"])).stdout)
    verify_ok = proml("verify", "tumour-classifier", "--home", str(homes["auditor"]),
                      check=False)
    lineage_png = out / "lineage.png"
    proml("lineage", "tumour-classifier", "--png", str(lineage_png),
          "--home", str(homes["auditor"]))
    prov_file = out / "provenance.prov.json"
    proml("export", "--format", "prov-json", "-o", str(prov_file),
          "--home", str(homes["auditor"]))

    # -- the attack: dataset bytes changed after registration, in every store ----------------
    ds_digest = sha256_file(raw)[0]
    tampered = 0
    for store_root in [*(h / "store" for h in homes.values()), archive]:
        blob = store_root / "objects" / ds_digest[:2] / ds_digest[2:]
        if blob.exists():
            blob.write_bytes(blob.read_bytes().replace(b"17.99", b"27.99", 1))
            tampered += 1
    verify_bad = proml("verify", "tumour-classifier", "--home", str(homes["auditor"]),
                       check=False)
    result = {
        "steps": steps, "final_state": status["state"], "model_version": status["version"],
        "verify_exit": verify_ok.returncode, "verify_report": verify_ok.stdout,
        "lineage_png": str(lineage_png), "prov": str(prov_file),
        "tampered_copies": tampered, "dataset_digest": ds_digest,
        "verify_after_tamper_exit": verify_bad.returncode,
        "verify_after_tamper_report": verify_bad.stdout,
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="paper-workflow-out", help="output directory (replaced)")
    r = main(Path(ap.parse_args().out))
    print("\n".join(r["steps"]))
    print(f"final state: {r['final_state']} (version {r['model_version']})")
    print(f"proml verify: exit {r['verify_exit']}")
    print(r["verify_report"])
    print(f"lineage: {r['lineage_png']}; PROV: {r['prov']}")
    print(f"after tampering with the dataset's bytes ({r['tampered_copies']} copies): "
          f"proml verify exit {r['verify_after_tamper_exit']}")
    print(r["verify_after_tamper_report"])
