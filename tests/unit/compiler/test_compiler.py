from __future__ import annotations

import pytest

from proml_sim import CompilationError, compile_artefact, compile_source
from proml_sim.compiler import cache_dir
from proml_sim.lifecycles import Model


def test_compile_artefact_returns_abi_bytecode_source_fingerprint():
    c = compile_artefact(Model)
    assert c.source.startswith("# pragma version")
    assert c.fingerprint == c.ir.fingerprint()
    names = {e.get("name") for e in c.abi}
    assert {"register", "train", "verify", "grant_role", "revoke_role", "Transitioned"} <= names
    assert len(c.bytecode) > len(c.runtime_bytecode) > 1000


def test_cache_hit_and_corrupt_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("PROML_CACHE_DIR", str(tmp_path))
    src = "# pragma version ~=0.4.3\n@external\ndef f() -> uint256:\n    return 7\n"
    a = compile_source(src, "F")
    entry = cache_dir() / f"{a.source_hash}.json"
    assert entry.exists()
    b = compile_source(src, "F")
    assert a.bytecode == b.bytecode
    entry.write_text("{not json")  # a corrupt entry is rebuilt, not trusted
    c = compile_source(src, "F")
    assert c.bytecode == a.bytecode
    assert not list(tmp_path.glob("*.tmp"))


def test_compiler_errors_carry_source_and_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PROML_CACHE_DIR", str(tmp_path))
    src = "# pragma version ~=0.4.3\n@external\ndef f() -> uint256:\n    return undefined_name\n"
    with pytest.raises(CompilationError) as info:
        compile_source(src, "Bad")
    err = info.value
    assert isinstance(err, RuntimeError)
    assert err.line == 4 and err.source == src
    assert "undefined_name" in str(err)
