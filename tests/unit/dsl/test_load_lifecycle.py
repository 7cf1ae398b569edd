"""``load_lifecycle`` of a user's ``package.module:Class``: whatever the module does while it is
imported, the answer is an UnknownLifecycle (exit 2) naming the module and the fix."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from proml_sim import cli
from proml_sim.errors import UnknownLifecycle
from proml_sim.lifecycles import load_lifecycle

BODIES = {
    "exits": ("import sys\nsys.exit(3)\n", "called sys.exit(3); put the module's script part"),
    "raises": ("raise RuntimeError('at import')\n", "failed: RuntimeError: at import"),
    "bare": ("raise BaseException('odd')\n", "failed: BaseException: odd"),
}


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_a_module_that_fails_while_importing_is_an_input_error(
        kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    body, said = BODIES[kind]
    name = f"proml_user_lc_{kind}"
    (tmp_path / f"{name}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(UnknownLifecycle, match="importing module") as err:
        load_lifecycle(f"{name}:Thing")
    assert said in str(err.value)
    monkeypatch.delitem(sys.modules, name, raising=False)
    assert cli.main(["compile", f"{name}:Thing"]) == 2  # not the module's own exit code
    out = capsys.readouterr().err
    assert said in out and len(out.strip().splitlines()) == 1


def test_a_bare_base_exception_is_one_line_exit_70(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    def broken(args: object) -> int:
        raise BaseException("odd")

    monkeypatch.setattr(cli, "cmd_gas", broken)
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    assert cli.main(["gas"]) == cli.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "internal error (BaseException: odd)" in err and len(err.strip().splitlines()) == 1
