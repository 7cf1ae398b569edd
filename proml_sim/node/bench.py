"""Node benchmarks: hashing throughput against ``sha256sum`` (same file, same run), the
overhead of capturing one step, and ``proml status`` (a fresh process) on small and large chains
beside ``proml --help`` (the ratio large/small is the figure: opening the chain store is O(1) in
history)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from proml_sim.node.service import ProMLNode
from proml_sim.node.store import BlobStore, sha256_file


def _make_file(path: Path, size_mb: int) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as fh:
        for i in range(size_mb):
            fh.write(block[:8] + i.to_bytes(8, "big") + block[16:])  # distinct 1 MiB blocks


def hash_bench(size_mb: int = 1024, directory: str | Path | None = None) -> dict[str, Any]:
    """MB/s of ``sha256_file`` and of storing the file, beside ``sha256sum`` on the same file."""
    if size_mb < 1:
        raise ValueError("--size-mb must be >= 1")
    tmp = Path(tempfile.mkdtemp(dir=directory, prefix="proml-hash-bench-"))
    try:
        f = tmp / "big.bin"
        _make_file(f, size_mb)
        t0 = time.perf_counter()
        ours, _ = sha256_file(f)
        t_ours = time.perf_counter() - t0
        res: dict[str, Any] = {"size_mb": size_mb, "sha256_file_mb_s": round(size_mb / t_ours, 1)}
        tool = shutil.which("sha256sum")
        if tool:
            t0 = time.perf_counter()
            out = subprocess.run([tool, str(f)], capture_output=True, text=True, check=True)
            t_tool = time.perf_counter() - t0
            if out.stdout.split()[0] != ours:
                raise AssertionError("sha256sum and sha256_file disagree")
            res["sha256sum_mb_s"] = round(size_mb / t_tool, 1)
            res["ratio_vs_sha256sum"] = round(t_tool / t_ours, 3)
        t0 = time.perf_counter()
        BlobStore(tmp / "store").put_file(f)
        res["store_put_mb_s"] = round(size_mb / (time.perf_counter() - t0), 1)
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def capture_bench(steps: int = 20) -> dict[str, Any]:
    """Milliseconds a captured step adds over the same work done bare (a 1 KiB output)."""
    tmp = Path(tempfile.mkdtemp(prefix="proml-capture-bench-"))
    try:
        node = ProMLNode.init(tmp / "home", name="bench", domain="bench", new_chain=True,
                              seed="capture-bench", plain_key=True)  # a benchmark
        for role in ("operator", "developer"):
            node.grant("Model", role, node.address, "bench")
        node.register("Model", "m")
        out = tmp / "out.bin"

        def work(i: int) -> None:
            out.write_bytes(i.to_bytes(4, "big") * 256)

        t0 = time.perf_counter()
        for i in range(steps):
            work(i)
        bare = (time.perf_counter() - t0) / steps
        t0 = time.perf_counter()
        for i in range(steps):
            with node.step("train", artefact="m", outputs=[out], params={"i": i}):
                work(i)
        captured = (time.perf_counter() - t0) / steps
        return {"steps": steps, "bare_ms": round(bare * 1e3, 3),
                "captured_ms": round(captured * 1e3, 2),
                "overhead_ms_per_step": round((captured - bare) * 1e3, 2)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build_status_home(directory: str | Path, transitions: int, *, per_block: int = 250) -> str:
    """A node home at ``directory`` whose chain holds ``transitions`` lifecycle transitions
    (registrations and ``train`` steps of Model artefacts, 10 per artefact, many per block:
    built through the Python API, not one CLI call each).  Returns the name to ask about."""
    from proml_sim.chain.client import LifecycleClient
    from proml_sim.compiler import compile_artefact
    from proml_sim.node.service import LIFECYCLES, name_salt

    if transitions < 1:
        raise ValueError("--status-sizes must be >= 1")
    node = ProMLNode.init(Path(directory), name="bench", domain="bench", new_chain=True,
                          seed="status-bench", plain_key=True)  # a benchmark
    for role in ("operator", "developer"):
        node.grant("Model", role, node.address, "bench")
    backend: Any = node.backend
    client = LifecycleClient(backend, compile_artefact(LIFECYCLES["Model"]),
                             node.config["contracts"]["Model"], automine=False)
    signer = node.signer
    n_art = max(1, transitions // 10)
    ts = backend.head().timestamp

    def mine() -> None:
        nonlocal ts
        while backend.pending():
            ts += 1
            backend.produce_block(ts, max_txs=per_block)

    with backend.locked():
        ops = [client.register(signer, name_salt(f"m{i}"), gas=400_000) for i in range(n_art)]
        mine()
        ids = [client.result(op) for op in ops]
        done = n_art
        i = 0
        while done < transitions:
            client.fire(signer, "train", ids[i % n_art], (done + 1).to_bytes(32, "big"),
                        gas=400_000)
            done += 1
            i += 1
            if i % per_block == 0:
                mine()
        mine()
    backend.close()
    return "m0"


def _run(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``proml argv`` in a fresh process."""
    import resource
    import sys

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "proml_sim.cli", *argv], check=True,
                   capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def status_bench(sizes: tuple[int, ...] = (10, 10_000), runs: int = 3) -> dict[str, Any]:
    """Wall and CPU time of ``proml status`` (a fresh process, median of ``runs``; the sizes'
    runs interleaved so they share the machine's load) on homes whose chains hold each of
    ``sizes`` transitions, the ratio largest/smallest, and ``proml --help``."""
    import statistics

    if not sizes or min(sizes) < 1 or runs < 1:
        raise ValueError("--status-sizes must be >= 1 and runs >= 1")
    tmp = Path(tempfile.mkdtemp(prefix="proml-status-bench-"))
    try:
        res: dict[str, Any] = {"runs": runs, "status_s": {}, "status_cpu_s": {}, "blocks": {},
                               "open_ms": {}}
        homes = {}
        for n in sizes:
            home = tmp / f"home{n}"
            homes[str(n)] = (home, build_status_home(home, n))
            res["blocks"][str(n)], res["open_ms"][str(n)] = _chain_open(home)
        samples: dict[str, list[tuple[float, float]]] = {k: [] for k in [*homes, "help"]}
        for _ in range(runs):
            for key, (home, name) in homes.items():
                samples[key].append(_run(["status", name, "--home", str(home)]))
            samples["help"].append(_run(["--help"]))
        for key in homes:
            res["status_s"][key] = round(statistics.median(w for w, _ in samples[key]), 3)
            res["status_cpu_s"][key] = round(statistics.median(c for _, c in samples[key]), 3)
        small, big = str(min(sizes)), str(max(sizes))
        res["ratio"] = round(res["status_s"][big] / res["status_s"][small], 2)
        res["cpu_ratio"] = round(res["status_cpu_s"][big] / res["status_cpu_s"][small], 2)
        res["help_s"] = round(statistics.median(w for w, _ in samples["help"]), 3)
        res["help_cpu_s"] = round(statistics.median(c for _, c in samples["help"]), 3)
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _chain_open(home: Path) -> tuple[int, float]:
    """(head block number, milliseconds to open the chain and read its head: median of 5)."""
    import statistics

    from proml_sim.chain.journal import JournaledChain

    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        chain = JournaledChain(home / "chain")
        n = chain.head().number
        times.append(time.perf_counter() - t0)
        chain.close()
    return n, round(statistics.median(times) * 1e3, 2)


def status_text(s: dict[str, Any]) -> str:
    """The lines ``proml node-bench`` prints for :func:`status_bench`."""
    sizes = ", ".join(f"{n} transitions ({s['blocks'][n]} blocks) {t} s wall, "
                      f"{s['status_cpu_s'][n]} s CPU (chain open {s['open_ms'][n]} ms)"
                      for n, t in s["status_s"].items())
    return (f"proml status (fresh process, median of {s['runs']}): {sizes}; ratio largest/"
            f"smallest {s['ratio']} wall, {s['cpu_ratio']} CPU\nproml --help: {s['help_s']} s "
            f"wall, {s['help_cpu_s']} s CPU")
