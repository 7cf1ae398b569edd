"""``proml bench``: signed lifecycle transitions per second, engine against a baseline, one run.

Engine path (what the simulator uses): the ``Model.train`` self-loop (evidence: digest, locator,
one input id) signed by several developers with real secp256k1 keys, submitted to the engine's
pending pool and packed ``per_block`` to a block; every receipt is fetched and its
``Transitioned`` event decoded.  Baseline path: web3.py + ``EthereumTesterProvider`` (py-evm
behind eth-tester), the same contract and call, signed with eth-account and mined one block per
transaction, waiting for each receipt.  Both are timed from signing to decoded receipt.
"""

from __future__ import annotations

import time
from typing import Any

from proml_sim.chain import KeyRing, PyEVMBackend
from proml_sim.chain.client import LifecycleClient
from proml_sim.compiler import compile_artefact
from proml_sim.ir import ZERO32
from proml_sim.lifecycles import Model

N_DEVELOPERS = 4
DIGEST = bytes.fromhex("ab" * 32)


def bench_engine(n: int, per_block: int, seed: int = 0) -> dict[str, Any]:
    compiled = compile_artefact(Model)
    keys = KeyRing.from_seed(f"bench-{seed}", 2 + N_DEVELOPERS)
    admin, operator, *devs = keys.addresses
    # a block gas limit that holds `per_block` transitions (a chain parameter, not a shortcut)
    backend = PyEVMBackend(funded=keys.addresses, gas_limit=max(60_000_000, per_block * 150_000))
    client = LifecycleClient.deploy(backend, compiled, keys.signer(admin), ZERO32)
    client.grant(keys.signer(admin), "operator", operator)
    ids = []
    for d in devs:
        client.grant(keys.signer(admin), "developer", d)
        aid = client.register(keys.signer(operator), bytes.fromhex(d[2:]).rjust(32, b"\0"))
        client.fire(keys.signer(d), "train", aid, DIGEST)
        ids.append(aid)
    signers = [keys.signer(d) for d in devs]
    nonces = [backend.next_nonce(d) for d in devs]
    data0 = client.contract_abi.encode_call("train", [ids[0], DIGEST, "s3://models/m/0", [ids[0]]])
    gas = int(backend.estimate_gas(devs[0], client.address, data0) * 1.25)
    base_fee = backend.base_fee()
    tip = 10**9

    t0 = time.perf_counter()
    sign_s = submit_s = block_s = receipt_s = 0.0
    done = 0
    fired = 0
    while done < n:
        batch = min(per_block, n - done)
        ta = time.perf_counter()
        raws = []
        for j in range(batch):
            k = (done + j) % N_DEVELOPERS
            data = client.contract_abi.encode_call("train",
                               [ids[k], DIGEST, f"s3://models/m/{done + j}", [ids[k]]])
            raws.append(signers[k].sign_transaction(
                chain_id=backend.chain_id, nonce=nonces[k], to=client.address, data=data,
                gas=gas, max_fee_per_gas=4 * base_fee + tip, max_priority_fee_per_gas=tip))
            nonces[k] += 1
        tb = time.perf_counter()
        hashes = [backend.submit(raw) for raw in raws]
        tc = time.perf_counter()
        backend.produce_block()
        td = time.perf_counter()
        for h in hashes:
            receipt = backend.receipt(h)
            assert receipt is not None and receipt.status, "benchmark transition reverted"
            for log in receipt.logs:
                if client.codec.decode_log(log)[0] == "Transitioned":
                    fired += 1
        te = time.perf_counter()
        sign_s += tb - ta
        submit_s += tc - tb
        block_s += td - tc
        receipt_s += te - td
        done += batch
    total = time.perf_counter() - t0
    if fired != n:
        raise AssertionError(f"expected {n} Transitioned events, decoded {fired}")
    return {
        "engine": backend.name,
        "transitions": n,
        "per_block": per_block,
        "blocks": -(-n // per_block),
        "seconds": round(total, 4),
        "tx_per_s": round(n / total, 1),
        "breakdown_s": {
            "sign": round(sign_s, 4), "submit": round(submit_s, 4),
            "produce_block": round(block_s, 4), "receipts_and_events": round(receipt_s, 4),
        },
    }


def bench_web3_baseline(n: int, seed: int = 0) -> dict[str, Any]:
    try:
        from eth_account import Account
        from web3 import EthereumTesterProvider, Web3
    except ImportError as exc:  # pragma: no cover - dev extra
        raise ImportError(
            f"the baseline needs web3 and eth-tester ({exc}); pip install 'proml-sim[dev]'"
        ) from exc
    compiled = compile_artefact(Model)
    provider = EthereumTesterProvider()
    w3 = Web3(provider)
    tester: Any = provider.ethereum_tester
    keys = tester.backend.account_keys  # eth-tester's funded keys
    admin, operator, dev = (Account.from_key(k.to_bytes()) for k in keys[:3])
    contract = w3.eth.contract(abi=list(compiled.abi), bytecode=compiled.bytecode)

    def send(acct: Any, tx: dict[str, Any]) -> Any:
        tx.setdefault("nonce", w3.eth.get_transaction_count(acct.address))
        tx.setdefault("chainId", w3.eth.chain_id)
        tx.setdefault("gas", 1_000_000)
        tx.setdefault("maxFeePerGas", 2 * w3.eth.get_block("latest")["baseFeePerGas"] + 10**9)
        tx.setdefault("maxPriorityFeePerGas", 10**9)
        signed = acct.sign_transaction(tx)
        h = w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(h)
        assert receipt["status"] == 1
        return receipt

    receipt = send(admin, contract.constructor(ZERO32).build_transaction(
        {"from": admin.address, "nonce": w3.eth.get_transaction_count(admin.address)}))
    c = w3.eth.contract(address=receipt["contractAddress"], abi=list(compiled.abi))

    def build(fn: Any, acct: Any) -> dict[str, Any]:
        return dict(fn.build_transaction({"from": acct.address, "gas": 1_000_000,
                                          "nonce": w3.eth.get_transaction_count(acct.address)}))

    send(admin, build(c.functions.grant_role(1, operator.address, ZERO32), admin))
    send(admin, build(c.functions.grant_role(2, dev.address, ZERO32), admin))
    send(operator, build(c.functions.register(b"\x01" * 32, ZERO32, "", []), operator))
    aid = c.functions.artefact_id(operator.address, b"\x01" * 32).call()
    send(dev, build(c.functions.train(aid, DIGEST, "", []), dev))

    t0 = time.perf_counter()
    for i in range(n):
        r = send(dev, build(c.functions.train(aid, DIGEST, f"s3://models/m/{i}", [aid]), dev))
        events = c.events.Transitioned().process_receipt(r)
        assert len(events) == 1
    total = time.perf_counter() - t0
    return {
        "engine": "web3+EthereumTesterProvider",
        "transitions": n,
        "per_block": 1,
        "seconds": round(total, 4),
        "tx_per_s": round(n / total, 1),
    }


def run_bench(n: int = 2000, per_block: int = 1000, baseline_n: int = 100,
              seed: int = 0) -> dict[str, Any]:
    if n < 1 or per_block < 1 or baseline_n < 1:
        raise ValueError("--n, --per-block and --baseline-n must be positive integers")
    engine = bench_engine(n, per_block, seed)
    baseline = bench_web3_baseline(baseline_n, seed)
    return {
        "contract": "Model.train (evidence: digest, locator, 1 input id)",
        "engines": {"pyevm": engine},
        "baseline": baseline,
        "ratio": {"pyevm": round(engine["tx_per_s"] / baseline["tx_per_s"], 2)},
        "targets": {"tx_per_s": 1000, "ratio": 10},
    }


def format_bench(result: dict[str, Any]) -> str:
    lines = [f"contract: {result['contract']}"]
    for name, e in result["engines"].items():
        lines.append(
            f"{name:>8}: {e['tx_per_s']:>9.1f} tx/s  ({e['transitions']} signed transitions, "
            f"{e['per_block']} per block, {e['seconds']} s)"
        )
        lines.append("          time: " + ", ".join(
            f"{k} {v:.2f}s" for k, v in e.get("breakdown_s", {}).items()))
    b = result["baseline"]
    lines.append(f"baseline: {b['tx_per_s']:>9.1f} tx/s  ({b['engine']}, one block per tx, "
                 f"{b['transitions']} transitions)")
    for name, r in result["ratio"].items():
        lines.append(f"ratio {name}/baseline: {r:.1f}x (target >= {result['targets']['ratio']}x; "
                     f"absolute target >= {result['targets']['tx_per_s']} tx/s)")
    return "\n".join(lines)
