"""``proml bench``: signed lifecycle transitions per second on each engine against a baseline,
measured in one run.

Engine path (what the simulator uses): the ``Model.train`` self-loop (evidence: digest, locator,
one input id) from several developers with real secp256k1 keys, packed ``per_block`` to a block.
The participants sign (timed apart, as ``sign_tx_per_s``: signing is the senders' work, not the
chain's); ``tx_per_s`` is timed from the first ``submit`` of a signed raw transaction to the last
receipt, and covers decoding, signature recovery and pool checks, block production (execution,
receipts) and fetching every receipt with its ``Transitioned`` event (checked by topic).
ABI-decoding the event arguments (eth-abi, ~75 us per event) is timed apart as
``decode_events_s``; ``end_to_end_tx_per_s`` includes signing and decoding too.  The revm engine
can recover senders in ``workers`` processes, overlapped with block production (a node verifies
signatures while it builds); the default is one worker when the machine has two or more CPUs.

For that engine the bench also reports where the CPU goes, measured in the same run: sender
recovery per transaction (decode + secp256k1 recovery, timed on a sample in this process: the
part that parallelises) and the main process's CPU per transaction (admission, execution, journal
read-back, receipts: the sequential part), and from them the ceiling this machine allows,
``min(1 / sequential, cpus / (sequential + recovery))`` transactions per second.

Baseline path: web3.py + ``EthereumTesterProvider`` (py-evm behind eth-tester), the same contract
and call, signed with eth-account and mined one block per transaction, waiting for each receipt,
signing and event decoding included (as a script using that stack would do).
"""

from __future__ import annotations

import os
import time
from typing import Any

from proml_sim.chain import KeyRing
from proml_sim.chain.base import ChainBackend
from proml_sim.chain.client import LifecycleClient
from proml_sim.chain.engines import ENGINES, IN_PROCESS_ENGINES, make_backend
from proml_sim.compiler import compile_artefact
from proml_sim.ir import ZERO32
from proml_sim.lifecycles import Model
from proml_sim.progress import progress

#: the paper's Model is a consortium: the benchmark's accounts all belong to the founding
#: domain (one member; the guards still read domain and allowed roles, as in production)
BENCH_DOMAIN = b"bench".ljust(32, b"\0")

N_DEVELOPERS = 4
DIGEST = bytes.fromhex("ab" * 32)
TARGETS = {"tx_per_s": 1000, "ratio": 10, "revm_tx_per_s": 20_000}


def _backend(
    engine: str, funded: tuple[str, ...], per_block: int, rpc_url: str | None, workers: int
) -> ChainBackend:
    # a block gas limit that holds `per_block` transitions (a chain parameter, not a shortcut)
    gas_limit = max(60_000_000, per_block * 150_000)
    if engine == "rpc":
        return make_backend(engine, funded=funded, rpc_url=rpc_url, gas_limit=gas_limit)
    if engine == "revm":
        return make_backend(engine, funded=funded, gas_limit=gas_limit, workers=workers)
    return make_backend(engine, funded=funded, gas_limit=gas_limit)


def bench_engine(
    engine: str,
    n: int,
    per_block: int,
    seed: int = 0,
    *,
    rpc_url: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Throughput of one engine; see the module docstring for what is timed."""
    if workers is None:
        workers = 1 if (os.cpu_count() or 1) >= 2 else 0
    compiled = compile_artefact(Model)
    keys = KeyRing.from_seed(f"bench-{seed}", 2 + N_DEVELOPERS)
    backend = _backend(engine, keys.addresses, per_block, rpc_url, workers)
    try:
        return _run(backend, engine, compiled, keys, n, per_block, workers)
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()


def _run(
    backend: ChainBackend,
    engine: str,
    compiled: Any,
    keys: KeyRing,
    n: int,
    per_block: int,
    workers: int,
) -> dict[str, Any]:
    admin, operator, *devs = keys.addresses
    client = LifecycleClient.deploy(backend, compiled, keys.signer(admin), BENCH_DOMAIN)
    client.grant(keys.signer(admin), "operator", operator, BENCH_DOMAIN)
    ids = []
    for d in devs:
        client.grant(keys.signer(admin), "developer", d, BENCH_DOMAIN)
        aid = client.register(keys.signer(operator), bytes.fromhex(d[2:]).rjust(32, b"\0"))
        client.fire(keys.signer(d), "train", aid, DIGEST)
        ids.append(aid)
    signers = [keys.signer(d) for d in devs]
    nonces = [backend.next_nonce(d) for d in devs]
    data0 = client.contract_abi.encode_call("train", [ids[0], DIGEST, "s3://models/m/0", [ids[0]]])
    gas = int(backend.estimate_gas(devs[0], client.address, data0) * 1.25)
    # max fee: room for the base fee to grow over the run's full blocks
    max_fee = 4 * backend.base_fee() + 10**9
    topic = client.codec.topic("Transitioned")

    # the participants sign (timed apart)
    t0 = time.perf_counter()
    raws = []
    for j in range(n):
        k = j % N_DEVELOPERS
        data = client.contract_abi.encode_call(
            "train", [ids[k], DIGEST, f"s3://models/m/{j}", [ids[k]]]
        )
        raws.append(
            signers[k].sign_transaction(
                chain_id=backend.chain_id, nonce=nonces[k], to=client.address, data=data,
                gas=gas, max_fee_per_gas=max_fee, max_priority_fee_per_gas=10**9,
            )
        )
        nonces[k] += 1
    sign_s = time.perf_counter() - t0

    batches = [raws[i : i + per_block] for i in range(0, n, per_block)]
    verify = getattr(backend, "verify_batch", None)
    submit_s = block_s = receipt_s = 0.0
    fired = 0
    receipts = []
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    ahead = verify(batches[0]) if verify is not None else None
    for i, batch in enumerate(batches):
        ta = time.perf_counter()
        if ahead is not None:
            hashes = backend.submit_batch(ahead)  # type: ignore[attr-defined]
            # recover the next batch's senders in the workers while this block is built
            ahead = verify(batches[i + 1]) if verify and i + 1 < len(batches) else None
        else:
            hashes = [backend.submit(raw) for raw in batch]
        tb = time.perf_counter()
        block = backend.produce_block()
        tc = time.perf_counter()
        if len(block.tx_hashes) != len(hashes):
            raise AssertionError(
                f"{engine}: block {block.number} holds {len(block.tx_hashes)} of {len(hashes)}"
            )
        for h in hashes:
            receipt = backend.receipt(h)
            if receipt is None or not receipt.status:
                raise AssertionError(f"{engine}: benchmark transition reverted or missing")
            for log in receipt.logs:
                if log.topics[0] == topic:
                    fired += 1
            receipts.append(receipt)
        td = time.perf_counter()
        submit_s += tb - ta
        block_s += tc - tb
        receipt_s += td - tc
    total = time.perf_counter() - t_start
    main_cpu = time.process_time() - cpu_start
    if fired != n:
        raise AssertionError(f"{engine}: expected {n} Transitioned events, found {fired}")
    t0 = time.perf_counter()
    decoded = sum(
        1 for r in receipts for log in r.logs if client.codec.decode_log(log)[0] == "Transitioned"
    )
    decode_s = time.perf_counter() - t0
    assert decoded == n
    out: dict[str, Any] = {
        "engine": backend.name,
        "transitions": n,
        "per_block": per_block,
        "blocks": len(batches),
        "seconds": round(total, 4),
        "tx_per_s": round(n / total, 1),
        "sign_tx_per_s": round(n / sign_s, 1),
        "end_to_end_tx_per_s": round(n / (total + sign_s + decode_s), 1),
        "breakdown_s": {
            "submit": round(submit_s, 4),
            "produce_block": round(block_s, 4),
            "receipts": round(receipt_s, 4),
        },
        "apart_s": {"sign": round(sign_s, 4), "decode_events": round(decode_s, 4)},
    }
    if verify is not None:
        out["workers"] = workers
        out["cpu"] = _cpu_budget(raws, main_cpu / n, workers)
    return out


def _cpu_budget(raws: list[bytes], main_cpu_per_tx: float, workers: int) -> dict[str, Any]:
    """Where the revm engine's CPU goes per transaction, and the ceiling it implies here."""
    from proml_sim.chain.revm import recover_senders

    sample = raws[: min(len(raws), 500)]
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        recover_senders(sample)
        best = min(best, (time.process_time() - t0) / len(sample))
    # without workers the main process also recovered every sender
    sequential = max(main_cpu_per_tx - (best if workers == 0 else 0.0), 1e-9)
    cpus = os.cpu_count() or 1
    ceiling = min(1 / sequential, cpus / (sequential + best))
    return {
        "cpus": cpus,
        "recovery_us_per_tx": round(best * 1e6, 1),
        "sequential_us_per_tx": round(sequential * 1e6, 1),
        "ceiling_tx_per_s": round(ceiling, 1),
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

    receipt = send(admin, contract.constructor(BENCH_DOMAIN).build_transaction(
        {"from": admin.address, "nonce": w3.eth.get_transaction_count(admin.address)}))
    c = w3.eth.contract(address=receipt["contractAddress"], abi=list(compiled.abi))

    def build(fn: Any, acct: Any) -> dict[str, Any]:
        return dict(fn.build_transaction({"from": acct.address, "gas": 1_000_000,
                                          "nonce": w3.eth.get_transaction_count(acct.address)}))

    send(admin, build(c.functions.grant_role(1, operator.address, BENCH_DOMAIN), admin))
    send(admin, build(c.functions.grant_role(2, dev.address, BENCH_DOMAIN), admin))
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


def run_bench(
    n: int = 2000,
    per_block: int = 1000,
    baseline_n: int = 100,
    seed: int = 0,
    *,
    engines: list[str] | tuple[str, ...] | None = None,
    rpc_url: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Bench ``engines`` (default: the in-process ones, plus ``rpc`` when ``rpc_url`` is given)
    and the baseline; ratios are each engine's ``tx_per_s`` over the baseline's."""
    if n < 1 or per_block < 1 or baseline_n < 1:
        raise ValueError("--n, --per-block and --baseline-n must be positive integers")
    if workers is not None and workers < 0:
        raise ValueError("--workers must be 0 (recover in process) or a positive integer")
    if not engines:
        engines = (*IN_PROCESS_ENGINES, "rpc") if rpc_url else IN_PROCESS_ENGINES
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise ValueError(
            f"unknown engine(s) {', '.join(unknown)}; choose from {', '.join(ENGINES)}"
        )
    if "rpc" in engines and not rpc_url:
        raise ValueError("engine rpc needs a node: pass --rpc-url URL (e.g. a local anvil)")
    todo = list(dict.fromkeys(engines))
    results = {}
    with progress("bench", total=len(todo) + 1, unit="runs") as bar:
        for e in todo:
            bar.update(description=f"bench: {n} transitions on {e}")
            results[e] = bench_engine(e, n, per_block, seed, rpc_url=rpc_url, workers=workers)
            bar.advance()
        bar.update(description=f"bench: {baseline_n} transitions on the web3 baseline")
        baseline = bench_web3_baseline(baseline_n, seed)
        bar.advance()
    return {
        "contract": "Model.train (evidence: digest, locator, 1 input id)",
        "tx_per_s_covers": "submit of pre-signed raw txs (decode, signature recovery, pool "
        "checks) -> blocks (execution, receipts) -> every receipt fetched, event checked by topic",
        "engines": results,
        "baseline": baseline,
        "ratio": {e: round(r["tx_per_s"] / baseline["tx_per_s"], 2) for e, r in results.items()},
        "targets": TARGETS,
    }


def format_bench(result: dict[str, Any]) -> str:
    lines = [f"contract: {result['contract']}", f"tx/s covers: {result['tx_per_s_covers']}"]
    for name, e in result["engines"].items():
        extra = f", {e['workers']} recovery workers" if "workers" in e else ""
        lines.append(
            f"{name:>8}: {e['tx_per_s']:>9.1f} tx/s  ({e['transitions']} signed transitions, "
            f"{e['per_block']} per block, {e['seconds']} s{extra})"
        )
        lines.append(
            "          time: "
            + ", ".join(f"{k} {v:.2f}s" for k, v in e["breakdown_s"].items())
            + "; apart: "
            + ", ".join(f"{k} {v:.2f}s" for k, v in e["apart_s"].items())
        )
        lines.append(
            f"          signing {e['sign_tx_per_s']:.0f} tx/s; end to end (sign + all + decode) "
            f"{e['end_to_end_tx_per_s']:.0f} tx/s"
        )
        if "cpu" in e:
            c = e["cpu"]
            lines.append(
                f"          cpu per tx: sender recovery {c['recovery_us_per_tx']} us "
                f"(parallel), the rest {c['sequential_us_per_tx']} us (main process); ceiling "
                f"on {c['cpus']} CPUs: {c['ceiling_tx_per_s']:.0f} tx/s"
            )
    b = result["baseline"]
    lines.append(f"baseline: {b['tx_per_s']:>9.1f} tx/s  ({b['engine']}, one block per tx, "
                 f"{b['transitions']} transitions)")
    for name, r in result["ratio"].items():
        lines.append(f"ratio {name}/baseline: {r:.1f}x")
    t = result["targets"]
    lines.append(f"targets: >= {t['tx_per_s']} tx/s and >= {t['ratio']}x; revm >= "
                 f"{t['revm_tx_per_s']} tx/s")
    return "\n".join(lines)
