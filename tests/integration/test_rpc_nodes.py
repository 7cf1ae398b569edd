"""A ProML node on Ethereum nodes other than the tests' anvil: hardhat (another implementation,
EDR) and a geth-like node (no development methods: it mines on its own, sets no balance, serves
no ``evm_mine``), each through the whole cycle a user runs from the CLI: init on a new chain,
roles, register, record, history, verify, bundle, and the bundle verified offline against the
pinned head.

Found by running it there: hardhat refused anvil's form of ``evm_mine`` and has no
``eth_getRawTransactionByHash`` (bundles could not be made); a geth-like node could not be used
at all (every open set balances it cannot set; every write asked for a block at a timestamp);
every command, reads included, funded the node's address and mined a block on the node; and a
node older than the contracts' EVM (ganache 7) took the deployment, then failed every call.
Two node homes with the same key (or a user's own script sending from the node's account)
lost writes to "nonce too low" when they ran at the same time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from proml_sim.chain import accounts
from proml_sim.chain import rpc as rpc_mod
from proml_sim.chain.accounts import Signer, submit_signed
from proml_sim.chain.proofs import encode_rpc_transaction, header_rlp, header_rlps
from proml_sim.chain.rpc import RPCBackend
from proml_sim.errors import EngineError, NonceTaken, ProofError, RPCError
from tests.fixtures.anvil import anvil, automine_anvil_url, geth_like, hardhat_url  # noqa: F401
from tests.fixtures.cli import run_cli

PASS = "pw"


def cli(home: Path, *argv: str) -> tuple[int, str, str]:
    return run_cli(["--home", str(home), *argv], 300, "a node command on a JSON-RPC node")


def rpc(url: str, method: str, *params: Any) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    req = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)["result"]


def mined(url: str, tx_hash: str) -> None:
    """Wait until ``tx_hash`` has a receipt (an automining anvil mines in the background)."""
    deadline = time.monotonic() + 20
    while rpc(url, "eth_getTransactionReceipt", tx_hash) is None:
        assert time.monotonic() < deadline, f"{tx_hash} was not mined within 20 s"
        time.sleep(0.05)


def head(url: str) -> tuple[int, str]:
    b = rpc(url, "eth_getBlockByNumber", "latest", False)
    return int(b["number"], 16), b["hash"]


def whole_cycle(url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    data, labels = tmp_path / "d.csv", tmp_path / "l.csv"
    data.write_text("a,b\n1,2\n")
    labels.write_text("1,cat\n")
    code, out, err = cli(home, "init", "--name", "alice", "--domain", "org-a", "--new-chain",
                         "--rpc-url", url)
    assert code == 0, err
    address = json.loads(cli(home, "--json", "whoami")[1])["address"]
    for role in ("dataset_admin", "labeller"):
        assert cli(home, "grant", "Dataset", role, address, "--domain", "org-a")[0] == 0
    code, _, err = cli(home, "register", "ds", str(data), "--lifecycle", "Dataset")
    assert code == 0, err
    code, _, err = cli(home, "record", "label", "ds", "--output", str(labels))
    assert code == 0, err
    # reads write nothing to the node: no block is mined, no balance set
    before = head(url)
    balance = rpc(url, "eth_getBalance", address, "latest")
    for read in (["status", "ds"], ["history", "ds"], ["checkpoint"], ["ls"], ["whoami"]):
        assert cli(home, *read)[0] == 0, read
    assert head(url) == before
    assert rpc(url, "eth_getBalance", address, "latest") == balance
    code, out, err = cli(home, "--json", "verify", "ds")
    assert code == 0, err
    assert json.loads(out)["ok"] is True
    bundle = tmp_path / "ds.zip"
    code, out, err = cli(home, "bundle", "ds", "-o", str(bundle))
    assert code == 0, err
    pin = json.loads(cli(home, "--json", "checkpoint")[1])["hash"]
    assert pin == head(url)[1] and pin in out  # the bundle proves up to the node's head
    code, out, err = run_cli(["--json", "verify", "--bundle", str(bundle), "--checkpoint", pin],
                             300, "verifying a bundle offline")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["ok"] is True
    assert any(c["name"] == "checkpoint" and c["ok"] for c in report["checks"]), report
    # a refused write is the lifecycle's own error, one line (separation of duty)
    code, _, err = cli(home, "record", "review", "ds")
    assert code == 2 and "may not also do this" in err and len(err.strip().splitlines()) == 1


@pytest.fixture
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROML_PASSPHRASE", PASS)


def test_a_node_on_hardhat(hardhat_url: str, tmp_path: Path,  # noqa: F811
                           passphrase: None) -> None:
    whole_cycle(hardhat_url, tmp_path)


@pytest.fixture
def geth_url(automine_anvil_url: str) -> Iterator[str]:  # noqa: F811
    with geth_like(automine_anvil_url) as url:
        yield url


def test_a_node_on_a_geth_like_node(geth_url: str, tmp_path: Path, passphrase: None) -> None:
    backend = RPCBackend(geth_url, drive=False)
    assert not backend.dev and not backend.mines_at_timestamp
    whole_cycle(geth_url, tmp_path)


def test_on_a_node_with_no_faucet_a_funded_account_is_brought(automine_anvil_url: str,  # noqa: F811
                                                              tmp_path: Path,
                                                              passphrase: None) -> None:
    """A public network: no faucet, no unlocked account.  init names the address it cannot
    fund and the way out; with ``--key`` (an account funded there, as a v3 keystore) the node
    works, paying its own gas."""
    with geth_like(automine_anvil_url, no_accounts=True) as url:
        code, _, err = cli(tmp_path / "home", "init", "--name", "a", "--domain", "org-a",
                           "--new-chain", "--rpc-url", url)
        assert code == 2
        assert "no development faucet and no unlocked funded account" in err
        assert "proml init --key KEYSTORE" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "home").exists()
        # an account of the user's, funded by someone else on that network
        account = Account.create("funded elsewhere")
        funder = rpc(automine_anvil_url, "eth_accounts")[0]
        mined(automine_anvil_url, rpc(automine_anvil_url, "eth_sendTransaction",
                                      {"from": funder, "to": account.address,
                                       "value": hex(10**19)}))
        keystore = tmp_path / "UTC--account.json"
        keystore.write_text(json.dumps(Account.encrypt(account.key, PASS, iterations=2)))
        code, _, err = cli(tmp_path / "home", "init", "--name", "a", "--domain", "org-a",
                           "--new-chain", "--rpc-url", url, "--key", str(keystore), "--seed",
                           "x")
        assert code == 2 and "drop --plain-key and --seed" in err
        code, out, err = cli(tmp_path / "home", "--json", "init", "--name", "a", "--domain",
                             "org-a", "--new-chain", "--rpc-url", url, "--key", str(keystore))
        assert code == 0, err
        assert json.loads(out)["address"] == account.address
        data = tmp_path / "d.csv"
        data.write_text("x\n")
        home = tmp_path / "home"
        assert cli(home, "grant", "Dataset", "dataset_admin", account.address, "--domain",
                   "org-a")[0] == 0
        code, _, err = cli(home, "register", "ds", str(data), "--lifecycle", "Dataset")
        assert code == 0, err
    spent = 10**19 - int(rpc(automine_anvil_url, "eth_getBalance", account.address,
                             "latest"), 16)
    assert spent > 0  # its own gas money, nobody topped it up


def test_a_node_leaves_a_shared_node_mining_as_it_did(automine_anvil_url: str,  # noqa: F811
                                                      tmp_path: Path,
                                                      passphrase: None) -> None:
    """Other tools share a development node: a ProML node's commands (and its freshness check
    of a peer) must not switch its automining off, which left their transactions pending."""
    url = automine_anvil_url
    assert rpc(url, "anvil_getAutomine") is True
    home = tmp_path / "home"
    assert cli(home, "init", "--name", "a", "--domain", "org-a", "--new-chain", "--rpc-url",
               url)[0] == 0
    address = json.loads(cli(home, "--json", "whoami")[1])["address"]
    assert cli(home, "grant", "Dataset", "dataset_admin", address, "--domain", "org-a")[0] == 0
    data = tmp_path / "d.csv"
    data.write_text("x\n")
    assert cli(home, "register", "ds", str(data), "--lifecycle", "Dataset")[0] == 0
    from proml_sim.node import ProMLNode
    ProMLNode.open(home).freshness(3600.0, [url])
    assert rpc(url, "anvil_getAutomine") is True
    # someone else's transaction is still mined as it arrives (anvil mines it in the
    # background: its receipt may take a moment; with automining off it never comes)
    funder = rpc(url, "eth_accounts")[0]
    mined(url, rpc(url, "eth_sendTransaction", {"from": funder, "to": address, "value": "0x1"}))


def test_simulations_refuse_a_node_they_cannot_drive(geth_url: str, tmp_path: Path) -> None:
    """A simulation decides when blocks are made: on a node mining on its own it would run
    with the node's block times, or stall; it is refused, naming the kind of node it needs."""
    from proml_sim.chain.engines import make_backend

    with pytest.raises(EngineError, match="mines on its own"):
        make_backend("rpc", rpc_url=geth_url)
    for argv in (["simulate", "--engine", "rpc", "--rpc-url", geth_url, "--teams", "2",
                  "--days", "0.01"],
                 ["bench", "--engine", "rpc", "--rpc-url", geth_url, "--n", "4"]):
        code, _, err = run_cli(argv, 120, "a refused simulation")
        assert code == 2, err
        assert "development node (anvil, hardhat)" in err and len(err.strip().splitlines()) <= 3


def test_a_node_older_than_the_contracts_is_refused_before_anything(
        tmp_path: Path, passphrase: None) -> None:
    """An EVM before Cancun lacks MCOPY, which the contracts use: deployed there they would
    fail every call with "invalid opcode" (ganache 7 did so); init names the fork instead."""
    with anvil("--silent", "--hardfork", "shanghai") as url:
        code, _, err = cli(tmp_path / "home", "init", "--name", "a", "--domain", "org-a",
                           "--new-chain", "--rpc-url", url)
    assert code == 2, err
    assert "cannot run MCOPY (the cancun hardfork)" in err and "prague" in err
    assert not (tmp_path / "home").exists()


def test_a_node_error_is_one_line(automine_anvil_url: str) -> None:  # noqa: F811
    with geth_like(automine_anvil_url) as url:
        backend = RPCBackend(url, drive=False)
        with pytest.raises(RPCError) as info:
            backend._rpc("evm_mine", [])
    assert str(info.value) == "evm_mine: the method evm_mine does not exist/is not available"
    assert info.value.error["code"] == -32601


def test_transactions_re_encode_from_their_fields(automine_anvil_url: str) -> None:  # noqa: F811
    """Where a node serves no raw transactions (hardhat), bundles re-encode them from their
    JSON-RPC fields: each type, checked against anvil's own raw encoding."""
    url = automine_anvil_url
    funder = rpc(url, "eth_accounts")[0]
    me = Account.create("re-encode")
    mined(url, rpc(url, "eth_sendTransaction", {"from": funder, "to": me.address,
                                               "value": hex(10**20)}))
    chain_id = int(rpc(url, "eth_chainId"), 16)
    fee = 10 * int(rpc(url, "eth_gasPrice"), 16)
    to = "0x" + "11" * 20
    txs = [
        {"nonce": 0, "gasPrice": fee, "gas": 21_000, "to": to, "value": 1, "data": b""},
        {"nonce": 1, "gasPrice": fee, "gas": 21_000, "to": to, "value": 1, "chainId": chain_id},
        {"type": 1, "nonce": 2, "gasPrice": fee, "gas": 30_000, "to": to, "value": 1,
         "chainId": chain_id, "accessList": [{"address": to, "storageKeys": ["0x" + "00" * 32]}]},
        {"type": 2, "nonce": 3, "maxFeePerGas": fee, "maxPriorityFeePerGas": 1, "gas": 60_000,
         "value": 0, "chainId": chain_id, "data": b"\x60\x00\x60\x00\xf3"},  # a creation
    ]
    for tx in txs:
        raw = me.sign_transaction(tx).raw_transaction
        h = rpc(url, "eth_sendRawTransaction", "0x" + raw.hex())
        fields = rpc(url, "eth_getTransactionByHash", h)
        assert encode_rpc_transaction(fields) == raw
        assert rpc(url, "eth_getRawTransactionByHash", h) == "0x" + raw.hex()
    altered = dict(fields, value=hex(1))
    with pytest.raises(ProofError, match="does not hash to its hash"):
        encode_rpc_transaction(altered)
    with pytest.raises(ProofError, match="cannot be re-encoded"):
        encode_rpc_transaction(dict(fields, type="0x7f"))


def _funded(url: str, seed: str) -> tuple[Any, Signer]:
    """An eth-account account (the "other process") and the same key as the node's signer."""
    account = Account.create(seed)
    funder = rpc(url, "eth_accounts")[0]
    tx = rpc(url, "eth_sendTransaction", {"from": funder, "to": account.address,
                                          "value": hex(10**20)})
    if rpc(url, "eth_getTransactionReceipt", tx) is None:
        rpc(url, "evm_mine")
    mined(url, tx)
    return account, Signer(bytes(account.key))


def _other_process_sends(url: str, account: Any, nonce: int, fee: int) -> str:
    tx = {"type": 2, "nonce": nonce, "to": "0x" + "22" * 20, "value": 1, "gas": 21_000,
          "maxFeePerGas": fee, "maxPriorityFeePerGas": 10**9,
          "chainId": int(rpc(url, "eth_chainId"), 16)}
    return str(rpc(url, "eth_sendRawTransaction",
                   "0x" + account.sign_transaction(tx).raw_transaction.hex()))


@pytest.mark.parametrize("node", ["anvil", "hardhat"])
def test_a_nonce_another_process_took_is_signed_again(node: str, request: pytest.FixtureRequest,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process sends from the same account between our nonce read and our send: the
    node refuses ours ("nonce too low"), which was not sent; it is signed again with the next
    nonce, and both transactions are mined."""
    url = request.getfixturevalue("automine_anvil_url" if node == "anvil" else "hardhat_url")
    account, signer = _funded(url, f"race {node}")
    backend = RPCBackend(url, drive=False)
    read = backend.next_nonce(signer.address)
    other = _other_process_sends(url, account, read, 3 * backend.base_fee() + 10**9)
    mined(url, other)
    reads: list[int] = []

    def next_nonce(address: str) -> int:  # the first read was made before the other's send
        reads.append(read if not reads else RPCBackend.next_nonce(backend, address))
        return reads[-1]

    monkeypatch.setattr(backend, "next_nonce", next_nonce)
    ours = submit_signed(backend, signer, "0x" + "33" * 20, b"", gas=21_000)
    mined(url, "0x" + ours.hex())
    assert reads == [read, read + 1]
    assert backend.nonce(signer.address) == read + 2

    # a process that keeps taking them: after NONCE_ATTEMPTS the error is one line, with why
    monkeypatch.setattr(backend, "next_nonce", lambda address: read)
    monkeypatch.setattr(accounts, "NONCE_ATTEMPTS", 2)
    with pytest.raises(NonceTaken) as info:
        submit_signed(backend, signer, "0x" + "33" * 20, b"", gas=21_000)
    message = str(info.value)
    assert message.startswith("eth_sendRawTransaction: ") and "\n" not in message
    assert "2 attempts: another process keeps sending from" in message
    assert signer.address in message and "run it again" in message


def test_a_pending_nonce_taken_or_our_own_transaction_known(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On a node that has not mined yet: a nonce another process's pending transaction holds
    ("replacement transaction underpriced") is signed again; our own transaction, already in
    the node's pool ("already imported"), is taken as sent."""
    with anvil("--silent", "--no-mining") as url:
        account, signer = _funded(url, "pending race")
        backend = RPCBackend(url, drive=False)
        read = backend.next_nonce(signer.address)
        fee = 2 * backend.base_fee() + 10**9
        other = _other_process_sends(url, account, read, fee)
        monkeypatch.setattr(backend, "next_nonce", lambda address: read)
        with pytest.raises(NonceTaken, match="replacement transaction underpriced"):
            backend.submit(signer.sign_transaction(
                chain_id=backend.chain_id, nonce=read, to="0x" + "33" * 20, data=b"",
                gas=21_000, max_fee_per_gas=fee, max_priority_fee_per_gas=10**9))
        monkeypatch.undo()
        ours = submit_signed(backend, signer, "0x" + "33" * 20, b"", gas=21_000)
        raw = bytes.fromhex(rpc(url, "eth_getRawTransactionByHash", "0x" + ours.hex())[2:])
        assert backend.submit(raw) == ours  # the node knows it: sent, not an error
        rpc(url, "evm_mine")
        mined(url, other)
        mined(url, "0x" + ours.hex())
        assert backend.nonce(signer.address) == read + 2


def test_two_homes_with_one_key_write_at_the_same_time(automine_anvil_url: str,  # noqa: F811
                                                       tmp_path: Path) -> None:
    """A second node home with the node's key (a CI runner's copy, a laptop's) registering at
    the same moment as the first: every write lands."""
    url = automine_anvil_url
    homes = [tmp_path / "h1", tmp_path / "h2"]
    assert cli(homes[0], "init", "--name", "a", "--domain", "org-a", "--new-chain",
               "--rpc-url", url, "--plain-key", "--seed", "shared key")[0] == 0
    node = json.loads((homes[0] / "node.json").read_text())
    contracts = tmp_path / "contracts.json"
    contracts.write_text(json.dumps(node["contracts"]))
    assert cli(homes[1], "init", "--name", "a2", "--domain", "org-a", "--rpc-url", url,
               "--contracts", str(contracts), "--plain-key", "--seed", "shared key")[0] == 0
    assert cli(homes[0], "grant", "Dataset", "dataset_admin", node["address"], "--domain",
               "org-a")[0] == 0
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    procs = []
    for i in range(8):
        data = tmp_path / f"d{i}.csv"
        data.write_text(f"{i}\n")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "proml_sim.cli", "--home", str(homes[i % 2]), "register",
             f"ds{i}", str(data), "--lifecycle", "Dataset"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    listed = json.loads(cli(homes[1], "--json", "ls")[1])
    assert {a["name"] for a in listed} >= {f"ds{i}" for i in range(8)}


def test_a_write_an_interrupted_run_left_waiting_is_named(tmp_path: Path,
                                                          passphrase: None) -> None:
    """A run stopped (Ctrl-C, a killed job) while its transaction waited to be mined: the next
    run of the same command is told that transaction is there, not "use a new salt" (there is
    no salt to choose) or a bare refusal judged against the state before it."""
    with anvil("--silent") as upstream, geth_like(upstream) as url:
        home = tmp_path / "home"
        assert cli(home, "init", "--name", "a", "--domain", "org-a", "--new-chain",
                   "--rpc-url", url)[0] == 0
        address = json.loads(cli(home, "--json", "whoami")[1])["address"]
        for role in ("dataset_admin", "labeller"):
            assert cli(home, "grant", "Dataset", role, address, "--domain", "org-a")[0] == 0
        data = tmp_path / "d.csv"
        data.write_text("x\n")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))

        def interrupted(*argv: str) -> None:  # sent, then stopped while it waits
            sent = rpc(upstream, "eth_getTransactionCount", address, "pending")
            proc = subprocess.Popen([sys.executable, "-m", "proml_sim.cli", "--home", str(home),
                                     *argv], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 120
            while rpc(upstream, "eth_getTransactionCount", address, "pending") == sent:
                assert proc.poll() is None and time.monotonic() < deadline, "nothing was sent"
                time.sleep(0.05)
            proc.kill()
            proc.wait()

        rpc(upstream, "evm_setAutomine", False)
        interrupted("register", "ds", str(data), "--lifecycle", "Dataset")
        code, _, err = cli(home, "register", "ds", str(data), "--lifecycle", "Dataset")
        assert code == 2 and "salt" not in err, err
        assert "'ds' is being registered by" in err and "`proml status ds`" in err
        rpc(upstream, "evm_mine")
        assert json.loads(cli(home, "--json", "status", "ds")[1])["state"] == "collected"
        interrupted("record", "retire", "ds")
        code, _, err = cli(home, "record", "retire", "ds")
        assert code == 2, err
        assert "1 transaction(s) from" in err and "still waiting to be mined" in err, err
        rpc(upstream, "evm_mine")
        rpc(upstream, "evm_setAutomine", True)
        assert json.loads(cli(home, "--json", "status", "ds")[1])["state"] == "retired"


def test_doctor_checks_the_node_is_the_homes_chain(tmp_path: Path, passphrase: None) -> None:
    """A development node restarted without its state is a new chain: every command refused
    the home, while `proml doctor` said healthy; it now names the chain, and what is wrong."""
    home = tmp_path / "home"
    with anvil("--silent") as url:
        assert cli(home, "init", "--name", "a", "--domain", "org-a", "--new-chain",
                   "--rpc-url", url)[0] == 0
        code, out, _ = cli(home, "doctor")
        assert code == 0 and "healthy" in out
        config = json.loads((home / "node.json").read_text())
        config["contracts"]["Dataset"] = "0x" + "44" * 20
        (home / "node.json").write_text(json.dumps(config))
        code, out, _ = cli(home, "--json", "doctor")
        problems = json.loads(out)["problems"]
        assert code == 1 and [p["kind"] for p in problems] == ["deployments"]
        assert "holds no code at Dataset's address" in problems[0]["what"]
    # the same kind of node, started afresh: another chain (two anvils started in the same
    # second have the same genesis: its chain id tells them apart here)
    with anvil("--silent", "--chain-id", "31338") as other:
        config["chain"]["url"] = other
        (home / "node.json").write_text(json.dumps(config))
        before = (home / "node.json").read_bytes()
        code, out, _ = cli(home, "--json", "doctor", "--repair")
        problems = json.loads(out)["problems"]
        assert code == 1 and [p["kind"] for p in problems] == ["chain"], problems
        assert problems[0]["what"].startswith("is another chain: chain id 31338")
        assert "anvil --state FILE" in problems[0]["fix"]
        assert (home / "node.json").read_bytes() == before  # nothing rewritten
    code, out, _ = cli(home, "--json", "doctor")  # no node answers there now
    problems = json.loads(out)["problems"]
    assert code == 1 and problems[0]["what"].startswith("cannot be used (no Ethereum JSON-RPC")


def test_a_node_over_a_websocket(tmp_path: Path, passphrase: None) -> None:
    """`--rpc-url ws://...` was accepted, then every request failed ("No connection adapters"):
    web3 8 has no synchronous WebSocket provider; the node speaks JSON-RPC over it itself."""
    with anvil("--silent") as url:
        ws = url.replace("http://", "ws://")
        home = tmp_path / "home"
        code, _, err = cli(home, "init", "--name", "a", "--domain", "org-a", "--new-chain",
                           "--rpc-url", ws)
        assert code == 0, err
        address = json.loads(cli(home, "--json", "whoami")[1])["address"]
        assert cli(home, "grant", "Dataset", "dataset_admin", address, "--domain",
                   "org-a")[0] == 0
        data = tmp_path / "d.csv"
        data.write_text("x\n")
        code, _, err = cli(home, "register", "ds", str(data), "--lifecycle", "Dataset")
        assert code == 0, err
        code, out, err = cli(home, "verify", "ds")
        assert code == 0 and "PASSED" in out, out + err
        assert cli(home, "doctor")[0] == 0
        # the head the node sees over the WebSocket is the one served over HTTP
        checkpoint = json.loads(cli(home, "--json", "checkpoint")[1])
        assert (checkpoint["number"], checkpoint["hash"]) == head(url)
    code, _, err = cli(home, "ls")  # the node is gone: one line naming it
    assert code == 2 and f"no Ethereum JSON-RPC node answers at {ws}" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("refusal", [False, True, "one error"])
def test_headers_are_read_in_batches_or_one_by_one(automine_anvil_url: str,  # noqa: F811
                                                   refusal: bool | str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A bundle reads every header from its first event to the head: one HTTP request each
    spent nearly all of its time in HTTP; they go in JSON-RPC batches, and one by one to a
    node that refuses batches, with the same bytes."""
    url = automine_anvil_url
    rpc(url, "anvil_mine", hex(30))
    monkeypatch.setattr(rpc_mod, "BATCH", 7)  # several batches, the last one short
    calls: list[int] = []
    batches = not refusal
    with geth_like(url, no_batches=refusal) as proxy:
        backend = RPCBackend(proxy, drive=False)
        top = backend.head().number
        one = [header_rlp(backend, n) for n in range(top - 20, top + 1)]
        real = backend._batch
        if real is not None:
            monkeypatch.setattr(backend, "_batch", lambda reqs: calls.append(len(reqs))
                                or real(reqs))
        assert list(header_rlps(backend, top - 20, top)) == one
    assert calls == ([7, 7, 7] if batches else [7])  # refused once, then one by one
    assert (backend._batch is None) != batches


def test_a_step_a_reorg_drops_is_named_by_doctor(tmp_path: Path, passphrase: None) -> None:
    """On a network a reorganisation can drop a block after `proml record` said the step was
    recorded: the chain then shows the earlier version and nothing said so (doctor: healthy).
    The node's sent log names the dropped transaction and the command to run again; once run,
    `doctor --repair` marks it handled, by an appended line."""
    with anvil("--silent", "--hardfork", "prague") as url:
        home = tmp_path / "home"
        data, labels = tmp_path / "d.csv", tmp_path / "l.csv"
        data.write_text("a,b\n1,2\n")
        labels.write_text("1,cat\n")
        assert cli(home, "init", "--name", "alice", "--domain", "org-a", "--new-chain",
                   "--rpc-url", url)[0] == 0
        address = json.loads(cli(home, "--json", "whoami")[1])["address"]
        for role in ("dataset_admin", "labeller"):
            assert cli(home, "grant", "Dataset", role, address, "--domain", "org-a")[0] == 0
        assert cli(home, "register", "ds", str(data), "--lifecycle", "Dataset")[0] == 0
        assert cli(home, "record", "label", "ds", "--output", str(labels))[0] == 0
        assert cli(home, "doctor")[0] == 0
        rpc(url, "anvil_reorg", 1, [])  # the label's block is replaced by an empty one
        assert json.loads(cli(home, "--json", "status", "ds")[1])["version"] == 1
        code, out, _ = cli(home, "--json", "doctor")
        assert code == 1
        (p,) = json.loads(out)["problems"]
        assert p["kind"] == "sent" and "(Dataset.label, mined in block" in p["what"]
        assert "is no longer on the chain" in p["what"]
        assert f"record label ds --output {labels}`" in p["fix"]
        assert cli(home, "record", "label", "ds", "--output", str(labels))[0] == 0
        assert cli(home, "doctor")[0] == 1  # until it is marked handled
        code, out, _ = cli(home, "--json", "doctor", "--repair")
        assert code == 0 and "marked the dropped transaction" in json.loads(out)["repaired"][0]
        assert cli(home, "doctor")[0] == 0
        assert json.loads(cli(home, "--json", "status", "ds")[1])["version"] == 2
