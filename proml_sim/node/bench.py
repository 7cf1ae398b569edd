"""Node benchmarks: hashing throughput against ``sha256sum`` (same file, same run) and the
overhead of capturing one step."""

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
