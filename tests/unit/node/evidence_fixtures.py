"""Small worlds for the lineage, verification, bundle and PROV tests.

Six nodes in six trust domains share one journaled chain; every store replicates to one shared
``archive`` store, so any node can read any blob (as the paper's participants exchange
evidence).  The history, in chain order::

    alice (data-co)   register Dataset iris  [iris_raw.csv]                  iris v1
    alice             register Dataset wine  [wine.csv]                      wine v1
    bob (dev-co)      register Model reg; train on iris v1 + wine v1         reg v1, v2
    lena (label-co)   label iris [iris_raw.csv] -> [iris_labelled.csv]       iris v2
    bob               register Model clf; train on iris v2 + wine v1         clf v1, v2
    vera, vic         approve verify clf (eval.json): 2 of 2 domains         clf v3 verified
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proml_sim.ir import StepResult
from proml_sim.node import FileRef, InputRef, ProMLNode, Record
from proml_sim.node import consortium as gov
from proml_sim.node.cli_evidence import register
from proml_sim.node.evidence import LiveSource


@dataclass
class World:
    root: Path
    nodes: dict[str, ProMLNode]
    files: dict[str, Path]
    times: dict[str, int] = field(default_factory=dict)  # block time after each step

    def __getitem__(self, name: str) -> ProMLNode:
        return self.nodes[name]

    def source(self, name: str = "admin") -> LiveSource:
        return LiveSource(ProMLNode.open(self.nodes[name].home))

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    def copies(self, digest: str) -> list[Path]:
        """Every stored copy of a blob (node stores and the archive)."""
        stores = [n.store.root for n in self.nodes.values()] + [self.archive]
        paths = [s / "objects" / digest[:2] / digest[2:] for s in stores]
        return [p for p in paths if p.exists()]


def _node(root: Path, name: str, domain: str, archive: bool = True,
          chain: dict[str, Any] | None = None, **kw: Any) -> ProMLNode:
    where: dict[str, Any] = chain if chain is not None else {"chain_dir": root / "chain"}
    return ProMLNode.init(root / name, name=name, domain=domain, seed=f"evidence-{name}",
                          replicas=[root / "archive"] if archive else [], **where, **kw)


def make_world(root: Path, *, verify_model: bool = True, archive: bool = True,
               rpc_url: str | None = None) -> World:
    """The world above; ``archive=False``: no shared store, each node holds only the blobs it
    produced (the nodes exchange them over HTTP, ``proml serve``); ``rpc_url``: the chain is
    that JSON-RPC node instead of a shared journal directory."""
    root.mkdir(parents=True, exist_ok=True)
    rpc = {"rpc_url": rpc_url} if rpc_url else None
    admin = _node(root, "admin", "consortium", archive, rpc, new_chain=True)
    join = {**rpc, "contracts": admin.config["contracts"]} if rpc else None
    alice = _node(root, "alice", "data-co", archive, join)
    lena = _node(root, "lena", "label-co", archive, join)
    bob = _node(root, "bob", "dev-co", archive, join)
    vera = _node(root, "vera", "verify-a", archive, join)
    vic = _node(root, "vic", "verify-b", archive, join)
    nodes = {n.name: n for n in (admin, alice, lena, bob, vera, vic)}
    files = {}
    for name, text in (("iris_raw.csv", "x,y\n1,2\n3,4\n"), ("wine.csv", "a,b\n5,6\n"),
                       ("iris_labelled.csv", "x,y,label\n1,2,setosa\n3,4,virginica\n"),
                       ("reg.pkl", "regressor-bytes"), ("clf.pkl", "classifier-bytes"),
                       ("eval.json", '{"accuracy": 0.93}')):
        files[name] = root / "work" / name
        files[name].parent.mkdir(exist_ok=True)
        files[name].write_text(text)
    w = World(root, nodes, files)

    def mark(step: str) -> None:
        w.times[step] = admin.backend.head().timestamp

    # the consortium default: the admin's domain founded both; the others join by vote and
    # enrol their own accounts
    gov.admit([admin], "Dataset", alice, ["dataset_admin"])
    gov.admit([admin, alice], "Dataset", lena, ["labeller"])
    gov.admit([admin], "Model", bob, ["operator", "developer"])
    gov.admit([admin, bob], "Model", vera, ["verifier"])
    gov.admit([admin, bob], "Model", vic, ["verifier"])
    mark("roles")
    alice.register("Dataset", "iris", [files["iris_raw.csv"]], params={"source": "field"})
    mark("iris v1")
    alice.register("Dataset", "wine", [files["wine.csv"]])
    bob.register("Model", "reg")
    bob.record("train", "reg", inputs=["iris", files["iris_raw.csv"], "wine"],
               outputs=[files["reg.pkl"]], params={"alpha": 0.1})
    mark("reg v2")
    lena.record("label", "iris", inputs=[files["iris_raw.csv"]],
                outputs=[files["iris_labelled.csv"]])
    mark("iris v2")
    bob.register("Model", "clf")
    bob.record("train", "clf", inputs=["iris", files["iris_labelled.csv"], "wine"],
               outputs=[files["clf.pkl"]], params={"C": 1.0})
    mark("clf v2")
    if verify_model:
        vera.approve("verify", "clf", files["eval.json"])
        vic.approve("verify", "clf", files["eval.json"])
        mark("clf v3")
    return w


def record_with(node: ProMLNode, transition: str, artefact: str, record: Record,
                inputs: Sequence[str] = ()) -> StepResult:
    """Fire ``transition`` with a hand-made record as its evidence (what a dishonest or buggy
    tool could submit), bypassing the node's own record building."""
    blob = node.store.put_bytes(record.canonical())
    ref = node.resolve(artefact)
    client = node.client(ref.lifecycle)
    ids = [node.resolve(i).id for i in inputs]
    with node._writing():
        op = client.fire(node.signer, transition, ref.id, bytes.fromhex(blob.digest),
                         f"proml:{blob.digest}", ids)
        return node._mine(client, op)  # type: ignore[no-any-return]


def file_ref(node: ProMLNode, path: Path) -> FileRef:
    blob = node.store.put_file(path)
    return FileRef(path.name, blob.digest, blob.size)


def make_record(node: ProMLNode, lifecycle: str, step: str, artefact: str, *,
                inputs: Sequence[InputRef] = (), input_files: Sequence[FileRef] = (),
                outputs: Sequence[FileRef] = ()) -> Record:
    ref = node.resolve(artefact)
    return Record(lifecycle=lifecycle, step=step, artefact=ref.hex, name=ref.name,
                  actor=node.address, node=node.name, domain=node.domain,
                  time="2024-01-01T00:00:00+00:00", inputs=tuple(inputs),
                  input_files=tuple(input_files), outputs=tuple(outputs))


def cli(argv: Sequence[str]) -> int:
    """Run one of the evidence commands through an argparse parser built with
    ``cli_evidence.register`` (as the top-level ``proml`` parser does)."""
    parser = argparse.ArgumentParser(prog="proml")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(list(argv))
    return int(args.func(args))
