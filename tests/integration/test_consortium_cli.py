"""``proml consortium``: three nodes govern GovernedModel's trust domains from the command line."""

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
                 "--lifecycle", "proml_sim.lifecycles:GovernedModel"]) == 0
    nb = ProMLNode.init(b, name="b", domain="lab", chain_dir=chain, seed="b")
    nc = ProMLNode.init(c, name="c", domain="audit", chain_dir=chain, seed="c")
    capsys.readouterr()
    code, req = _json(capsys, ["consortium", "join", "GovernedModel", "--roles", "verifier",
                               "--home", b])
    assert code == 0 and not req["member"] and nb.address in req["command"]
    assert main(["consortium", "join", "GovernedModel", "--roles", "nope", "--home", b]) == 2
    capsys.readouterr()
    # one member: the founder's proposal is its own quorum
    code, out = _json(capsys, ["consortium", "propose", "GovernedModel", "add_domain",
                               "--domain", "lab", "--admin", nb.address, "--roles", "verifier",
                               "--home", a])
    assert code == 0 and out["proposal"] == 1
    assert main(["consortium", "execute", "GovernedModel", "1", "--home", c]) == 0
    # two members: the newcomer needs both
    assert main(["consortium", "propose", "GovernedModel", "add_domain", "--domain", "audit",
                 "--admin", nc.address, "--roles", "auditor,verifier", "--home", b]) == 0
    assert main(["consortium", "execute", "GovernedModel", "2", "--home", c]) == 2
    assert "lacks a quorum" in capsys.readouterr().err
    assert main(["consortium", "vote", "GovernedModel", "2", "--home", c]) == 2  # not a member
    assert main(["consortium", "vote", "GovernedModel", "2", "--home", a]) == 0
    assert main(["consortium", "execute", "GovernedModel", "2", "--home", c]) == 0
    capsys.readouterr()
    code, req = _json(capsys, ["consortium", "join", "GovernedModel", "--roles", "auditor",
                               "--home", c])
    assert code == 0 and req["member"] and req["command"] is None
    code, info = _json(capsys, ["consortium", "show", "GovernedModel", "--home", c])
    assert code == 0 and info["this_node_is_admin_of"] == "audit"
    assert {m["domain"]: m["roles"] for m in info["members"]}["lab"] == ["verifier"]
    code, rows = _json(capsys, ["consortium", "list", "GovernedModel", "--home", a])
    assert [(r["id"], r["status"]) for r in rows] == [(1, "executed"), (2, "executed")]
    # a domain enrols its own accounts only, and only roles it may hold
    assert main(["grant", "GovernedModel", "verifier", nb.address, "--domain", "lab",
                 "--home", b]) == 0
    assert main(["grant", "GovernedModel", "verifier", nc.address, "--domain", "lab",
                 "--home", a]) == 2
    assert main(["grant", "GovernedModel", "developer", nb.address, "--domain", "lab",
                 "--home", b]) == 2
    err = capsys.readouterr().err
    assert "enrols accounts only into itself" in err and "may not hold that role" in err
    assert main(["deploy", "Model", "--home", a]) == 0
    capsys.readouterr()
    assert main(["consortium", "show", "Model", "--home", a]) == 2  # single-admin lifecycle
    assert "single-admin design" in capsys.readouterr().err
