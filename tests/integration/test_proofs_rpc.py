"""Chain proofs from a real JSON-RPC node (anvil): headers rebuilt from the block's fields must
hash to the block hash, receipts rebuilt from eth_getBlockReceipts must reproduce each header's
receipts root, and the bundle made from them verifies offline against a pinned checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from proml_sim.chain.proofs import block_receipt_rlps, decode_header, header_rlp
from proml_sim.errors import ProofError
from proml_sim.node import ProMLNode
from proml_sim.node.bundle import load_bundle, write_bundle
from proml_sim.node.evidence import LiveSource
from proml_sim.node.proofs import check_extends, check_proofs


def test_proofs_from_a_json_rpc_node(tmp_path: Path, anvil_url: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    admin = ProMLNode.init(tmp_path / "admin", name="admin", domain="consortium",
                           new_chain=True, rpc_url=anvil_url, seed="proofs-rpc-admin")
    admin.grant("Model", "operator", admin.address, "consortium")
    admin.grant("Model", "developer", admin.address, "consortium")
    admin.register("Model", "rpc-proved")
    out = tmp_path / "m.bin"
    with admin.step("train", artefact="rpc-proved", outputs=[out]):
        out.write_bytes(b"weights")
    backend = admin.backend
    head = backend.head()
    for n in range(max(0, head.number - 5), head.number + 1):
        h = decode_header(header_rlp(backend, n))
        assert h.hash == backend.block(n).hash
        assert h.number == n
        block_receipt_rlps(backend, h)  # raises unless the receipts rebuild the root
    source = LiveSource(ProMLNode.open(tmp_path / "admin"))
    path = write_bundle(source, "rpc-proved", tmp_path / "b.zip")
    b = load_bundle(path)
    checks = check_proofs(b.proofs, b.events(), b.contracts, checkpoint=head.hash)
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    assert check_extends(backend, backend.block(head.number - 2).hash)[0] == head.number - 2
    # the walk back reads the parents a batch at a time: across several batches
    from proml_sim.chain import rpc

    monkeypatch.setattr(rpc, "BATCH", 3)
    old = max(0, head.number - 10)
    assert check_extends(backend, backend.block(old).hash) == (old, head.hash)
    assert check_extends(backend, head.hash) == (head.number, head.hash)
    # a node serving a block without a header field: a failed proof naming it, not a crash
    from proml_sim.chain.proofs import _header_of

    block = backend._rpc("eth_getBlockByNumber", [hex(head.number), False])
    for broken in ({k: v for k, v in block.items() if k != "mixHash"},
                   dict(block, gasUsed="0xzz"), dict(block, hash=None)):
        with pytest.raises(ProofError, match="missing or malformed header field"):
            _header_of(backend, head.number, broken)
    with pytest.raises(ProofError, match="does not extend"):
        check_extends(backend, b"\x12" * 32)

    # a node serving a wrong receipt is caught by the root it must reproduce
    real = backend._try

    def lying(method: str, params: list[object] | None = None) -> object:
        got = real(method, params)
        if method == "eth_getBlockReceipts" and got:
            got[0] = dict(got[0], cumulativeGasUsed=hex(int(got[0]["cumulativeGasUsed"], 16) + 1))
        return got

    monkeypatch.setattr(backend, "_try", lying)
    last = decode_header(header_rlp(backend, b.events()[-1].block))
    with pytest.raises(ProofError, match="do not rebuild its receipts root"):
        block_receipt_rlps(backend, last)
