"""``proml consortium``: three nodes govern the trust domains of Model (the paper's lifecycle,
a consortium by default) from the command line."""

from __future__ import annotations

import json

from proml_sim.cli import main
from proml_sim.node.service import ProMLNode


def _json(capsys, argv):
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def test_domains_join_by_quorum_and_enrol_only_their_own_accounts(tmp_path, capsys):
    chain = tmp_path / "chain"
    a, b, c = (str(tmp_path / n) for n in "abc")
    assert main(["init", "--home", a, "--name", "a", "--domain", "org", "--new-chain",
                 "--chain", str(chain), "--seed", "a",
                 "--lifecycle", "Model"]) == 0
    nb = ProMLNode.init(b, name="b", domain="lab", chain_dir=chain, seed="b")
    nc = ProMLNode.init(c, name="c", domain="audit", chain_dir=chain, seed="c")
    capsys.readouterr()
    code, req = _json(capsys, ["consortium", "join", "Model", "--roles", "verifier",
                               "--home", b])
    assert code == 0 and not req["member"] and nb.address in req["command"]
    assert main(["consortium", "join", "Model", "--roles", "nope", "--home", b]) == 2
    capsys.readouterr()
    # one member: the founder's proposal is its own quorum
    code, out = _json(capsys, ["consortium", "propose", "Model", "add_domain",
                               "--domain", "lab", "--admin", nb.address, "--roles", "verifier",
                               "--home", a])
    assert code == 0 and out["proposal"] == 1
    assert main(["consortium", "execute", "Model", "1", "--home", c]) == 0
    # two members: the newcomer needs both
    assert main(["consortium", "propose", "Model", "add_domain", "--domain", "audit",
                 "--admin", nc.address, "--roles", "auditor,verifier", "--home", b]) == 0
    assert main(["consortium", "execute", "Model", "2", "--home", c]) == 2
    assert "lacks a quorum" in capsys.readouterr().err
    assert main(["consortium", "vote", "Model", "2", "--home", c]) == 2  # not a member
    assert main(["consortium", "vote", "Model", "2", "--home", a]) == 0
    assert main(["consortium", "execute", "Model", "2", "--home", c]) == 0
    capsys.readouterr()
    code, req = _json(capsys, ["consortium", "join", "Model", "--roles", "auditor",
                               "--home", c])
    assert code == 0 and req["member"] and req["command"] is None
    code, info = _json(capsys, ["consortium", "show", "Model", "--home", c])
    assert code == 0 and info["this_node_is_admin_of"] == "audit"
    assert {m["domain"]: m["roles"] for m in info["members"]}["lab"] == ["verifier"]
    code, rows = _json(capsys, ["consortium", "list", "Model", "--home", a])
    assert [(r["id"], r["status"]) for r in rows] == [(1, "executed"), (2, "executed")]
    # a domain enrols its own accounts only, and only roles it may hold
    assert main(["grant", "Model", "verifier", nb.address, "--domain", "lab",
                 "--home", b]) == 0
    assert main(["grant", "Model", "verifier", nc.address, "--domain", "lab",
                 "--home", a]) == 2
    assert main(["grant", "Model", "developer", nb.address, "--domain", "lab",
                 "--home", b]) == 2
    err = capsys.readouterr().err
    assert "this node enrols only accounts of its own domain 'org'" in err
    assert "may not hold that role" in err and "proml consortium propose Model set_roles" in err
    assert main(["deploy", "SingleAdminModel", "--home", a]) == 0  # the comparison option
    capsys.readouterr()
    assert main(["consortium", "show", "SingleAdminModel", "--home", a]) == 2
    assert "single-admin design" in capsys.readouterr().err
