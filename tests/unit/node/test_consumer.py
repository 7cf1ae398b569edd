"""ConsumerGuard: served bytes against the chain's latest evidence, approvals binding tuples,
release lines and rollback memory; fetch_by_digest."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from proml_sim.chain import KeyRing, PyEVMBackend
from proml_sim.chain.client import LifecycleClient
from proml_sim.compiler import compile_artefact
from proml_sim.errors import NodeError
from proml_sim.ir import ZERO32
from proml_sim.lifecycles import SingleAdminDataset as Dataset  # a guard test, not governance
from proml_sim.lifecycles import SingleAdminModel as Model
from proml_sim.node.consumer import (
    ConsumerGuard,
    ConsumerRefused,
    DigestMismatch,
    NotApproved,
    RollbackRefused,
    TupleMismatch,
    fetch_by_digest,
    sha256,
    tuple_digest,
)

DATA = sha256(b"dataset rows")


def dom(name: str) -> bytes:
    return name.encode().ljust(32, b"\0")


def salt(name: str) -> bytes:
    return name.encode().ljust(32, b"\0")


def ev(model: bytes) -> bytes:
    return b'{"accuracy": 0.9, "model": "%s"}' % sha256(model).hex().encode()


@dataclass
class Chain:
    backend: Any
    model: LifecycleClient
    dataset: LifecycleClient
    who: dict[str, Any]
    ids: dict[str, bytes] = field(default_factory=dict)

    def release(self, name: str, model: bytes, prev: str | None = None, *, by: str = "op",
                verify: bool = True) -> bytes:
        """Register (naming ``prev`` as the superseded release), train, verify, accept."""
        m, w = self.model, self.who
        inputs = [self.ids[prev]] if prev else []
        aid = m.register(w[by].signer, salt(name), ZERO32, "", inputs)
        self.ids[name] = aid
        m.fire(w["dev"].signer, "train", aid, sha256(model), "", [])
        if verify:
            td = tuple_digest(sha256(model), DATA, sha256(ev(model)))
            for v in ("v0", "v1"):
                m.fire(w[v].signer, "verify", aid, td, "", [])
            m.fire(w[by].signer, "accept", aid)
        return aid


@pytest.fixture
def chain() -> Chain:
    keys = KeyRing.from_seed("consumer-guard", 7)
    names = ["admin", "op", "op2", "dev", "v0", "v1", "da"]
    who = {n: _Signer(keys, a) for n, a in zip(names, keys.addresses, strict=True)}
    backend = PyEVMBackend(funded=keys.addresses)
    model = LifecycleClient.deploy(backend, compile_artefact(Model), who["admin"].signer,
                                   dom("consortium"))
    dataset = LifecycleClient.deploy(backend, compile_artefact(Dataset), who["admin"].signer,
                                     dom("consortium"))
    for n, role in (("op", "operator"), ("op2", "operator"), ("dev", "developer"),
                    ("v0", "verifier"), ("v1", "verifier")):
        model.grant(who["admin"].signer, role, who[n].address, dom(f"{n}-co"))
    dataset.grant(who["admin"].signer, "dataset_admin", who["da"].address, dom("data-co"))
    return Chain(backend, model, dataset, who)


@dataclass
class _Signer:
    keys: KeyRing
    address: str

    @property
    def signer(self) -> Any:
        return self.keys.signer(self.address)


def guard(c: Chain, **kw: Any) -> ConsumerGuard:
    return ConsumerGuard(c.model, content_steps=("train",), approval_step="verify",
                         accept_states=("verified", "delivered", "audited"), **kw)


# -- tuple digest and fetching ----------------------------------------------------------------
def test_tuple_digest_binds_each_element_and_its_position():
    a, b, c = sha256(b"a"), sha256(b"b"), sha256(b"c")
    t = tuple_digest(a, b, c)
    assert t == tuple_digest(a, b, c)
    assert len({t, tuple_digest(b, a, c), tuple_digest(a, c, b), tuple_digest(a, b, a)}) == 4
    assert t != sha256(a + b + c)  # domain-separated from a plain hash of the bytes
    with pytest.raises(ValueError, match="dataset digest must be 32 bytes"):
        tuple_digest(a, b"short", c)


def test_fetch_by_digest_takes_the_first_source_with_the_recorded_bytes():
    good = b"recorded bytes"

    def down() -> bytes:
        raise OSError("connection refused")

    data, src, bad = fetch_by_digest(sha256(good), [
        ("url", lambda: b"other bytes"), ("mirror", down), ("archive", lambda: good),
        ("never-asked", lambda: good)])
    assert (data, src, bad) == (good, "archive", ["url", "mirror"])
    with pytest.raises(DigestMismatch, match=r"tried url, mirror.*do not use them"):
        fetch_by_digest(sha256(good), [("url", lambda: b"x"), ("mirror", down)])


# -- bytes against the latest evidence --------------------------------------------------------
def test_check_bytes_accepts_latest_content_refuses_older_and_altered(chain: Chain):
    d, w = chain.dataset, chain.who
    v1, v2 = b"raw rows", b"raw rows, fixed"
    aid = d.register(w["da"].signer, salt("ds"), sha256(v1), "https://x/ds.csv", [])
    g = ConsumerGuard(d)
    assert g.check_bytes(aid, v1).version == 1
    d.grant(w["da"].signer, "labeller", w["da"].address, dom("data-co"))
    d.fire(w["da"].signer, "label", aid, sha256(v2), "", [])
    acc = g.check_bytes(aid, v2)
    assert (acc.version, acc.state, acc.digest, acc.release) == (2, "labelled", sha256(v2), 1)
    with pytest.raises(RollbackRefused, match=r"version 1's content.*latest recorded content is "
                                              r"version 2"):
        g.check_bytes(aid, v1)
    with pytest.raises(DigestMismatch, match="altered or swapped"):
        g.check_bytes(aid, b"poisoned rows")
    with pytest.raises(NotApproved, match="not registered"):
        g.check_bytes(b"\x01" * 32, v1)
    only_released = ConsumerGuard(d, accept_states=["released"])
    with pytest.raises(NotApproved, match=r"is 'labelled'.*accepts only released"):
        only_released.check_bytes(aid, v2)


def test_a_view_older_than_one_seen_is_refused(chain: Chain):
    m, w = chain.model, chain.who
    aid = chain.release("r1", b"model one")
    g = guard(chain)
    g.check_approved(aid, b"model one", DATA, ev(b"model one"))
    head = chain.backend.head().number

    class Behind:  # a node that serves the chain as it was two blocks ago
        ir = m.ir

        def events(self) -> list[Any]:
            return m.events(to_block=head - 2)

    g.client = Behind()
    with pytest.raises(RollbackRefused, match=r"shows version \d, but this consumer has seen "
                                              r"version \d.*another domain's node"):
        g.view(aid)
    assert w  # the chain itself is unchanged


# -- approvals bind the tuple ------------------------------------------------------------------
def test_check_approved_requires_the_approved_tuple_and_model(chain: Chain):
    m, w = chain.model, chain.who
    aid = m.register(w["op"].signer, salt("m"), ZERO32, "", [])
    g = guard(chain)
    m.fire(w["dev"].signer, "train", aid, sha256(b"m1"), "", [])
    with pytest.raises(NotApproved, match="'trained'"):
        g.check_approved(aid, b"m1", DATA, ev(b"m1"))
    m.fire(w["v0"].signer, "reject", aid, sha256(b"failing"), "", [])
    m.fire(w["dev"].signer, "train", aid, sha256(b"m2"), "", [])
    td = tuple_digest(sha256(b"m2"), DATA, sha256(ev(b"m2")))
    for v in ("v0", "v1"):
        m.fire(w[v].signer, "verify", aid, td, "", [])
    acc = g.check_approved(aid, b"m2", DATA, ev(b"m2"))
    assert acc.state == "verified" and acc.digest == sha256(b"m2")
    with pytest.raises(TupleMismatch, match="not the approved combination"):
        g.check_approved(aid, b"m2", sha256(b"other dataset"), ev(b"m2"))
    with pytest.raises(TupleMismatch):
        g.check_approved(aid, b"m2", DATA, ev(b"m1"))
    with pytest.raises(RollbackRefused, match="version 2's content"):
        g.check_approved(aid, b"m1", DATA, ev(b"m1"))  # the rejected version, its own eval
    with pytest.raises(DigestMismatch):
        g.check_approved(aid, b"swapped", DATA, ev(b"swapped"))
    with pytest.raises(ValueError, match="approval_step"):
        ConsumerGuard(m).check_approved(aid, b"m2", DATA, ev(b"m2"))
    assert all(issubclass(e, ConsumerRefused) and issubclass(e, NodeError) for e in (
        DigestMismatch, RollbackRefused, NotApproved, TupleMismatch))


# -- release lines and rollback --------------------------------------------------------------
def test_superseded_release_is_refused(chain: Chain):
    r1 = chain.release("r1", b"model one")
    r2 = chain.release("r2", b"model two", "r1")
    chain.release("r3", b"model three", "r2", verify=False)  # registered, not approved yet
    g = guard(chain, release_lines=True)
    assert g.line_of(r2) == [r1, r2] and g.successors(r1) == [r2]
    with pytest.raises(RollbackRefused, match=r"superseded by 0x[0-9a-f]{12}.*1 newer accepted"):
        g.check_approved(r1, b"model one", DATA, ev(b"model one"))
    acc = g.check_approved(r2, b"model two", DATA, ev(b"model two"))
    assert (acc.line, acc.release) == (r1, 2)
    # without release lines every artefact is its own line: r1 alone is a valid model
    assert guard(chain).check_approved(r1, b"model one", DATA, ev(b"model one")).release == 1


def test_only_the_same_owner_supersedes(chain: Chain):
    r1 = chain.release("r1", b"model one")
    chain.release("x", b"squatter", "r1", by="op2")  # another operator names r1 as input
    g = guard(chain, release_lines=True)
    assert g.successors(r1) == []
    assert g.check_approved(r1, b"model one", DATA, ev(b"model one")).release == 1


def test_never_older_than_accepted_even_after_a_withdrawal(chain: Chain, tmp_path: Path):
    r1 = chain.release("r1", b"model one")
    r2 = chain.release("r2", b"model two", "r1")
    mem = tmp_path / "consumer.json"
    g = guard(chain, release_lines=True, memory=mem)
    g.check_approved(r2, b"model two", DATA, ev(b"model two"))
    chain.model.fire(chain.who["op"].signer, "withdraw", r2)  # r2 no longer supersedes r1
    assert guard(chain, release_lines=True).check_approved(
        r1, b"model one", DATA, ev(b"model one")).release == 1  # a fresh consumer takes r1
    again = guard(chain, release_lines=True, memory=mem)  # restarted: remembers release 2
    assert again.accepted[r1].release == 2 and again.seen[r2] == 4  # delivered: v4
    with pytest.raises(RollbackRefused, match=r"already accepted release 2.*forget"):
        again.check_approved(r1, b"model one", DATA, ev(b"model one"))
    again.forget(r1)
    assert again.check_approved(r1, b"model one", DATA, ev(b"model one")).release == 1


def test_memory_file_errors_are_clear(chain: Chain, tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(NodeError, match=r"cannot read the consumer memory .*restore it"):
        guard(chain, memory=bad)
    other = tmp_path / "dataset.json"
    ConsumerGuard(chain.dataset, memory=other)._save()
    with pytest.raises(NodeError, match="lifecycle 'SingleAdminDataset'"):
        guard(chain, memory=other)


def test_configuration_is_validated(chain: Chain):
    with pytest.raises(ValueError, match="no step 'fit'"):
        ConsumerGuard(chain.model, content_steps=["fit"])
    with pytest.raises(ValueError, match="carries no evidence"):
        ConsumerGuard(chain.model, approval_step="accept")
    with pytest.raises(KeyError, match="no state 'shipped'"):
        ConsumerGuard(chain.model, accept_states=["shipped"])
