"""The readers of text from outside: nesting too deep is a malformed input, whatever the
process's recursion limit (py-evm's dependency py_ecc raises it to 100,000 on import)."""

from __future__ import annotations

import sys
import tomllib

import pytest

from proml_sim.fsutil import parse_json, parse_toml


@pytest.mark.parametrize("limit", [1000, 100_000])
def test_deep_json_and_toml_are_malformed_at_any_recursion_limit(limit: int) -> None:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        with pytest.raises(ValueError, match="nested too deeply"):
            parse_json("[" * 200_000)  # at 100,000 the C parser overflowed the stack
        with pytest.raises(tomllib.TOMLDecodeError, match="nested too deeply"):
            parse_toml("a = " + "[" * 50_000 + "1" + "]" * 50_000)  # parsed whole at 100,000
        assert sys.getrecursionlimit() == limit  # restored
        assert parse_json('{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}
        assert parse_toml("a = [[1], {b = 2}]") == {"a": [[1], {"b": 2}]}
    finally:
        sys.setrecursionlimit(old)
