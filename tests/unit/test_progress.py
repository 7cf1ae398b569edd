"""Progress for long work: plain lines on stderr without a terminal, a bar on one, nothing on
stdout ever, and nothing at all with ``PROML_PROGRESS=0``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from proml_sim import progress as prog
from proml_sim.node.store import BlobStore, sha256_file


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(prog.ENV, raising=False)
    monkeypatch.setenv(prog.ENV_INTERVAL, "0")  # a line on every update
    prog.set_enabled(None)


def _work(stream: Any, **kw: Any) -> None:
    with prog.progress("counting", total=4, unit="steps", stream=stream, **kw) as bar:
        for _ in range(4):
            bar.advance()


def test_plain_lines_without_a_terminal() -> None:
    out = io.StringIO()
    _work(out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "proml: counting: 0 of 4 steps, 0%"
    assert "proml: counting: 2 of 4 steps, 50%" in lines
    assert lines[-1].startswith("proml: counting: done in ")
    assert lines[-1].endswith("(4 of 4 steps, 100%)")


def test_lines_are_periodic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(prog.ENV_INTERVAL, "3600")
    out = io.StringIO()
    _work(out)
    assert len(out.getvalue().splitlines()) == 2  # start and end only


@pytest.mark.parametrize("value", ["0", "off", "false", "NO"])
def test_off_by_env(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(prog.ENV, value)
    out, tty = io.StringIO(), _Terminal()
    _work(out)
    _work(tty)
    assert out.getvalue() == "" and tty.getvalue() == ""


def test_off_by_flag_and_show() -> None:
    out = io.StringIO()
    prog.set_enabled(False)
    try:
        _work(out)
    finally:
        prog.set_enabled(None)
    _work(out, show=False)
    assert out.getvalue() == ""


def test_bar_on_a_terminal_and_nested_bars_share_it(capsys: pytest.CaptureFixture[str]) -> None:
    tty = _Terminal()
    with prog.progress("outer", total=2, stream=tty) as outer:
        _work(tty)  # a second display would raise rich's LiveError
        outer.advance()
    assert "outer" in tty.getvalue()
    assert prog._Live.progress is None and prog._Live.users == 0
    assert capsys.readouterr().out == ""


def test_stopped_work_says_so() -> None:
    out = io.StringIO()
    with pytest.raises(KeyError), prog.progress("failing", stream=out):
        raise KeyError("x")
    assert "proml: failing: stopped in " in out.getvalue()


def test_a_closed_stderr_is_not_an_error() -> None:
    out = io.StringIO()
    out.close()
    _work(out)  # no exception: progress is never worth failing for


def test_big_files_are_hashed_with_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(prog, "BIG_FILE", 1 << 20)
    big, small = tmp_path / "big.bin", tmp_path / "small.bin"
    big.write_bytes(os.urandom(3 << 20))
    small.write_bytes(b"x" * 1000)
    sha256_file(big)
    sha256_file(small)
    BlobStore(tmp_path / "store").put_file(big)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"proml: hashing {big}: 1.0 MiB of 3.0 MiB, 33%" in captured.err
    assert f"proml: storing {big}: done in" in captured.err
    assert "small.bin" not in captured.err


def test_simulated_time_in_slices_runs_the_same_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Running simulated time in slices (to report it) changes nothing in the simulation."""
    from proml_sim.sim import scenario

    sc = scenario.StreamScenario("consortium-fast", 2, 0.3, 20.0, 3)
    scenario.run_streams(sc, rows_csv=tmp_path / "sliced.csv", keep_rows=False)
    monkeypatch.setattr(scenario, "SLICES", 1)
    scenario.run_streams(sc, rows_csv=tmp_path / "whole.csv", keep_rows=False)
    sliced = (tmp_path / "sliced.csv").read_text()
    assert sliced == (tmp_path / "whole.csv").read_text() and sliced.count("\n") > 5


def _simulate(tmp_path: Path, progress: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, prog.ENV: progress, prog.ENV_INTERVAL: "0"}
    return subprocess.run(
        [sys.executable, "-m", "proml_sim.cli", "simulate", "--teams", "2", "--days", "0.01",
         "--per-hour", "20", "--profile", "consortium-fast", "--out",
         str(tmp_path / f"rows{progress}.csv"), "--json"],
        capture_output=True, text=True, env=env, check=True, timeout=120,
    )


def test_cli_progress_goes_to_stderr_only(tmp_path: Path) -> None:
    """`proml simulate` without a terminal: plain lines on stderr, the same JSON on stdout as
    with progress off (wall-clock figures aside), and nothing on stderr when off."""
    on, off = _simulate(tmp_path, "1"), _simulate(tmp_path, "0")
    assert "proml: simulating: 0 of " in on.stderr and "proml: simulating: done in" in on.stderr
    assert off.stderr == ""
    clock = {"wall_s", "tx_per_wall_s", "sim_s_per_wall_s", "peak_rss_mb", "setup_rss_mb",
             "rows"}
    a, b = json.loads(on.stdout), json.loads(off.stdout)
    assert on.stdout.count("\n") == off.stdout.count("\n") == 1
    assert {k: v for k, v in a.items() if k not in clock} == {
        k: v for k, v in b.items() if k not in clock}
    assert a.keys() == b.keys()
