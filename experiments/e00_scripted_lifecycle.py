"""E0: the paper's 9-step scenario driven as signed transactions on a chain engine (py-evm by
default; ``config.extra["engine"]`` and ``["rpc_url"]`` choose another).

Seven participants in separate trust domains, each with its own key; every step is one
transaction (or several: the 2-of-n verification; a domain joining the consortium by proposal,
votes and execution, then enrolling its own account) and its receipt gives gas, block and
events.  The run ends by checking the final states and that the event log replays into the
contract's state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.common import ExperimentConfig, provenance, write_csv, write_json
from proml_sim.chain import KeyRing
from proml_sim.chain.client import LifecycleClient
from proml_sim.chain.engines import make_backend
from proml_sim.compiler import compile_artefact
from proml_sim.ir import replay
from proml_sim.lifecycles import Dataset, Model

PARTICIPANTS = ("operator", "data_company", "labeller", "developer", "verifier_a", "verifier_b",
                "auditor")


def domain(name: str) -> bytes:
    return name.encode().ljust(32, b"\0")


def main(config: ExperimentConfig) -> dict[str, Any]:
    keys = KeyRing.from_seed(f"e00-{config.seed}", 1 + len(PARTICIPANTS))
    _, *addrs = keys.addresses
    who = dict(zip(PARTICIPANTS, addrs, strict=True))
    s = {k: keys.signer(v) for k, v in who.items()}
    engine = config.extra.get("engine", "pyevm")
    backend = make_backend(engine, funded=keys.addresses, rpc_url=config.extra.get("rpc_url"))
    # consortium governance (the paper lifecycles' default): the client's domain founds both
    # consortiums; every other domain joins by a proposal a quorum of members passes, and each
    # participant, its domain's admin, enrols its own account
    ds = LifecycleClient.deploy(backend, compile_artefact(Dataset), s["operator"],
                                domain("client"))
    mdl = LifecycleClient.deploy(backend, compile_artefact(Model), s["operator"],
                                 domain("client"))
    rows: list[dict[str, Any]] = []
    members: dict[str, list[str]] = {"Dataset": ["operator"], "Model": ["operator"]}

    def step(n: int, text: str, client: LifecycleClient, op: str, *args: Any) -> Any:
        client.automine = False
        pending = getattr(client, op)(*args)
        block = backend.produce_block()
        receipt = backend.receipt(pending.tx_hash)
        assert receipt is not None
        result = client.result(pending)
        rows.append({
            "step": n, "description": text, "contract": client.ir.name, "operation": op,
            "sender": receipt.sender, "block": block.number, "gas": receipt.gas_used,
            "status": receipt.status,
        })
        return result

    def join(n: int, client: LifecycleClient, name: str, role: str, dom: str) -> None:
        """``name``'s domain joins: the earliest member proposes, members vote up to the
        quorum, the proposer executes; then ``name`` enrols itself in ``role``."""
        ms = members[client.ir.name]
        assert client.ir.consortium is not None
        voters = ms[:min(client.ir.consortium.quorum, len(ms))]
        pid = step(n, f"{dom} proposed ({role})", client, "propose", s[voters[0]], "add_domain",
                   domain(dom), who[name], client.ir.role(role).bit)
        for v in voters[1:]:
            step(n, f"{v} votes for {dom}", client, "vote", s[v], pid)
        step(n, f"{dom} admitted", client, "execute", s[voters[0]], pid)
        step(n, f"{name} enrolled as {role}", client, "grant", s[name], role, who[name],
             domain(dom))
        ms.append(name)

    raw, labels, released, model, evaluation, audit = (bytes([i]) * 32 for i in range(1, 7))
    mid = None
    # 1 client has an idea: the model request is registered by the operator
    step(1, "operator role granted", mdl, "grant", s["operator"], "operator", who["operator"],
         domain("client"))
    mid = step(1, "client registers the model idea", mdl, "register", s["operator"],
               b"model-1".ljust(32, b"\0"))
    # 2 client hires a data company: its domain joins the Dataset consortium
    join(2, ds, "data_company", "dataset_admin", "data-co")
    # 3 data gathered
    did = step(3, "raw data registered", ds, "register", s["data_company"],
               b"dataset-1".ljust(32, b"\0"), raw, "s3://data-co/raw.tar")
    # 4 labelling outsourced: the crowd platform joins (client and data company vote)
    join(4, ds, "labeller", "labeller", "crowd")
    step(4, "labels attached", ds, "fire", s["labeller"], "label", did, labels,
         "s3://crowd/labels.csv", [did])
    # 5 data passed to developers
    step(5, "labels reviewed (not by labeller)", ds, "fire", s["data_company"], "review", did)
    step(5, "dataset released to developers", ds, "fire", s["data_company"], "release", did,
         released, "s3://data-co/release-v1.tar")
    # 6 model developed
    for name, role, dom in (("developer", "developer", "dev-co"),
                            ("verifier_a", "verifier", "verif-a"),
                            ("verifier_b", "verifier", "verif-b"),
                            ("auditor", "auditor", "audit-co")):
        join(6 if role == "developer" else 7 if role == "verifier" else 9, mdl, name, role, dom)
    step(6, "model trained on released dataset", mdl, "fire", s["developer"], "train", mid,
         model, "s3://dev-co/model-v1.pkl", [did])
    # 7 tested and verified: 2 verifiers from 2 domains approve the same (model, eval) digest
    step(7, "verifier A approves", mdl, "fire", s["verifier_a"], "verify", mid, evaluation)
    step(7, "verifier B approves (fires)", mdl, "fire", s["verifier_b"], "verify", mid,
         evaluation)
    # 8 returned to client
    step(8, "client accepts the model", mdl, "fire", s["operator"], "accept", mid)
    # 9 third-party validation
    step(9, "auditor records validation", mdl, "fire", s["auditor"], "audit", mid, audit,
         "s3://audit-co/report.pdf")

    final = {"dataset": ds.state(did), "model": mdl.state(mid)}
    replay_ok = all(replay(c.ir, c.events()) == c.snapshot() for c in (ds, mdl))
    ok = final == {"dataset": "released", "model": "audited"} and replay_ok and all(
        r["status"] for r in rows)
    meta = provenance(config)
    write_csv(Path(config.out) / "e00_scripted_lifecycle.csv", rows, meta)
    result = {"ok": ok, "final_states": final, "replay_matches_state": replay_ok,
              "transactions": len(rows), "total_gas": sum(r["gas"] for r in rows),
              "engine": engine,
              "history": [h.step for h in mdl.history(mid)]}
    write_json(Path(config.out) / "e00_scripted_lifecycle.json", {"meta": meta, **result,
                                                                  "rows": rows})
    return {**result, "rows": rows}
