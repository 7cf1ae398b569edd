"""Every ``proml`` subcommand, driven with generated bad argv, ends in exit 0, 1 or 2 and never in
a traceback or an internal error (issue 16, item 4).

The subcommands are enumerated from the parser (:func:`proml_sim.cli.commands`), so a new one is
covered without touching this file.  Each runs in process through ``main(argv)``, against one
initialised node home on a new embedded chain (made once per module), with generated values:
typos of transition, role and lifecycle names, bad hex and addresses (wrong EIP-55 checksums),
zero, negative and non-numbers, directories where files go and files where directories go,
missing parents, non-UTF-8 text, unknown options.

Commands that do long work (benchmarks, simulations, experiments) always get at least one value
their argument types reject, so they must fail before doing any work; a per-example alarm turns
"started the long work anyway" into a test failure.

Default run: a few examples per command (about 20 s in all); ``-m slow``: many more.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import proml_sim.cliargs as cliargs
from proml_sim.cli import commands, main
from proml_sim.ir import build_ir
from proml_sim.lifecycles import PAPER_LIFECYCLES
from tests.fixtures.cli import run_cli

COMMANDS = commands()
#: commands whose valid runs take long: every generated argv for them carries a rejected value
SLOW = {"bench", "gas", "simulate", "sim-bench", "reproduce", "mutate", "sweep", "threats run",
        "node-bench", "serve", "serve-bench"}  # serve: a valid run serves until stopped
ALARM_S = 60  # a fast command that runs longer than this started work it should not have
ADDRESS = "0x9438bfd6e8d32C4f8ec79210eDa8e497aD9cE46A"  # the key of --seed 1, below


def run(argv: list[str]) -> tuple[int, str, str]:
    return run_cli(argv, ALARM_S, "it should have failed fast")


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A working directory with a node home ``h`` (new embedded chain, alice holding the admin
    roles, dataset ``ds1`` and model ``m1`` registered), a file and a directory."""
    root = tmp_path_factory.mktemp("badargs")
    old = Path.cwd()
    os.chdir(root)  # commands with default output paths write here, not into the checkout
    try:
        (root / "f.txt").write_text("some data\n")
        (root / "d").mkdir()
        setup = [
            ["init", "--home", "h", "--name", "alice", "--domain", "acme", "--new-chain",
             "--seed", "1"],
            ["grant", "Dataset", "dataset_admin", ADDRESS, "--domain", "acme", "--home", "h"],
            ["grant", "Model", "operator", ADDRESS, "--domain", "acme", "--home", "h"],
            ["register", "ds1", "f.txt", "--lifecycle", "Dataset", "--home", "h"],
            ["register", "m1", "--lifecycle", "Model", "--input", "ds1", "--home", "h"],
        ]
        for argv in setup:
            code, out, err = run(argv)
            assert code == 0, (argv, out, err)
        yield root
    finally:
        os.chdir(old)


# -- values --------------------------------------------------------------------------------------
IRS = [build_ir(c) for c in PAPER_LIFECYCLES]
NAMES = sorted({*(c.__name__ for c in PAPER_LIFECYCLES),
                *(t.name for ir in IRS for t in ir.transitions),
                *(r.name for ir in IRS for r in ir.roles)})


@st.composite
def typo(draw: st.DrawFn) -> str:
    word = draw(st.sampled_from(NAMES))
    i = draw(st.integers(0, len(word) - 1))
    op = draw(st.sampled_from(["drop", "swap", "insert", "case"]))
    if op == "drop":
        return word[:i] + word[i + 1:]
    if op == "swap" and i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == "case":
        return word.swapcase()
    return word[:i] + draw(st.sampled_from("aeixz_")) + word[i:]


def wrong_checksum(addr: str) -> str:
    """Flip the case of one letter of a checksummed address: a typo EIP-55 catches."""
    i = next(i for i, c in enumerate(addr) if i > 1 and c.isalpha())
    return addr[:i] + addr[i].swapcase() + addr[i + 1:]


hexes = st.builds(lambda n, up: "0x" + os.urandom(n).hex().upper() if up else
                  "0x" + os.urandom(n).hex(), st.sampled_from([0, 1, 19, 20, 21, 31, 32, 33]),
                  st.booleans())
bad_hex = st.sampled_from(["0x", "0xZZ", "0x12", "0xg" + "0" * 63, "0x" + "0" * 65,
                          "0X" + "f" * 64])
addresses = st.sampled_from([ADDRESS, ADDRESS.lower(), wrong_checksum(ADDRESS), "0x123",
                             "0x" + "Z" * 40, ADDRESS[:-1], ADDRESS + "0"])
numbers = st.sampled_from(["0", "-1", "-7", "1", "2", "1.5", "nan", "inf", "1e999", "abc", "",
                           "0x10", " 3", "99999999999999999999"])
non_utf8 = st.sampled_from([os.fsdecode(b"\xff\xfe"), os.fsdecode(b"ds\x80"),
                            os.fsdecode(b"/tmp/\xe9t\xe9")])
unknown_options = st.sampled_from(["--bogus", "-z", "--json=1", "--home=", "--", "-"])


def paths(root: Path) -> st.SearchStrategy[str]:
    return st.sampled_from([str(root / "f.txt"), str(root / "d"), str(root / "h"),
                            str(root / "missing" / "x"), "/nonexistent/x", str(root / "new_out"),
                            "f.txt", "d", "d/new.txt", "", "."])


def values(root: Path) -> st.SearchStrategy[str]:
    # names that exist come often, so that commands get past "no such artefact" to the
    # lifecycle, role and transition checks; rarer kinds stop parsing early
    known = st.sampled_from(["ds1", "m1", "ds1", "m1", "Dataset", "Model", *NAMES])
    return st.one_of(known, typo(), known, typo(), hexes, bad_hex, addresses, numbers,
                     paths(root), known, numbers, paths(root), non_utf8, unknown_options,
                     st.text(max_size=8))


def rejected(action: argparse.Action, root: Path) -> st.SearchStrategy[str] | None:
    """Values this option's type or choices must reject, or None if it validates nothing."""
    by_type = {
        cliargs.positive_int: ["0", "-1", "x", "1.5", ""],
        cliargs.non_negative_int: ["-1", "x", "2.5", ""],
        cliargs.positive_float: ["0", "-2", "nan", "inf", "x"],
        cliargs.non_negative_float: ["-1", "nan", "x"],
        cliargs.output_file: [str(root / "d"), str(root / "missing" / "x")],
        cliargs.output_dir: [str(root / "f.txt"), str(root / "missing" / "sub"), ""],
        cliargs.existing_file: [str(root / "d"), str(root / "missing.txt")],
        cliargs.existing_dir: [str(root / "f.txt"), str(root / "missing")],
        cliargs.artefact_ref: ["0xZZ", "0x12", ""],
        cliargs.address: ["0x123", wrong_checksum(ADDRESS)],
        cliargs.name: ["", "\x01x"],
    }
    if action.type in by_type:
        return st.sampled_from(by_type[action.type])  # type: ignore[index]
    if action.choices:
        return st.one_of(typo(), st.just("nonsense")).filter(lambda v: v not in action.choices)
    return None


def slot(action: argparse.Action, root: Path) -> st.SearchStrategy[str]:
    """Values for one argument: mostly of the kind its name asks for (so that generated argv
    reach the checks behind parsing), sometimes anything."""
    names = st.one_of(typo(), st.sampled_from(NAMES))
    artefacts = st.one_of(st.sampled_from(["ds1", "m1", "ds2"]), hexes, bad_hex, typo())
    kinds = {"transition": names, "role": names, "lifecycle": names, "artefact": artefacts,
             "input": artefacts, "account": addresses, "files": paths(root),
             "output": paths(root), "evidence": paths(root), "code": paths(root)}
    vals = values(root)
    kind = kinds.get(action.dest)
    return st.one_of(kind, kind, kind, vals) if kind is not None else vals


@st.composite
def argv_for(draw: st.DrawFn, words: str, parser: argparse.ArgumentParser, root: Path
             ) -> list[str]:
    positionals = [a for a in parser._actions if not a.option_strings]
    options = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    argv = words.split()
    for a in positionals:  # each positional once, sometimes left out or doubled
        argv += [draw(slot(a, root)) for _ in range(draw(st.sampled_from([1, 1, 1, 1, 0, 2])))]
    for a in draw(st.lists(st.sampled_from(options), max_size=3)) if options else []:
        argv.append(draw(st.sampled_from(a.option_strings)))
        if a.nargs != 0:
            argv.append(draw(slot(a, root)))
    if draw(st.integers(0, 7)) == 0:
        argv.insert(draw(st.integers(len(words.split()), len(argv))), draw(unknown_options))
    if words in SLOW:  # at least one value its types reject: it must fail before any work
        checked = [(a, s) for a in parser._actions if (s := rejected(a, root)) is not None
                   and a.option_strings]
        a, bad = draw(st.sampled_from(checked))
        argv += [a.option_strings[0], draw(bad)]
    if any(a.dest == "home" for a in options) and draw(st.integers(0, 5)) > 0:
        argv += ["--home", "h"]  # mostly the real home, so node commands get past "no home"
    if draw(st.integers(0, 3)) == 0:
        argv.insert(draw(st.sampled_from([0, len(argv)])), "--json")
    return argv


def json_asked(argv: list[str]) -> bool:
    """``--json`` among the options (not after ``--``)."""
    return "--json" in (argv[: argv.index("--")] if "--" in argv else argv)


def check(argv: list[str], code: int, out: str, err: str) -> None:
    assert "Traceback" not in out + err, (argv, err)
    assert "internal error" not in err, (argv, err)
    assert code in (0, 1, 2), (argv, code, out, err)
    assert not Path("/nonexistent").exists(), (argv, "created a directory at the root")
    if code == 2:  # one line on stderr naming the problem, JSON if asked for
        last = err.strip().splitlines()[-1]
        if json_asked(argv):
            doc = json.loads(last)
            assert set(doc) == {"error", "code"} and doc["code"] == 2, (argv, err)
        else:
            assert last.startswith("proml: error: "), (argv, err)


def takes_home(words: str) -> bool:
    return any(a.dest == "home" for a in COMMANDS[words]._actions)


def _drive(words: str, place: Path, data: st.DataObject) -> None:
    argv = data.draw(argv_for(words, COMMANDS[words], place), label="argv")
    code, out, err = run(argv)
    check(argv, code, out, err)


@pytest.mark.parametrize("words", sorted(COMMANDS))
@settings(max_examples=12, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bad_argv_never_ends_in_a_traceback(words: str, place: Path, data: st.DataObject) -> None:
    _drive(words, place, data)


@pytest.mark.slow
@pytest.mark.parametrize("words", sorted(COMMANDS))
@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bad_argv_never_ends_in_a_traceback_many(words: str, place: Path,
                                                  data: st.DataObject) -> None:
    _drive(words, place, data)


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_typos_of_lifecycle_names_are_input_errors(place: Path, data: st.DataObject) -> None:
    """A typo of a transition, role or lifecycle name, on an artefact that exists: exit 2, one
    line; the closest known name is suggested when there is one."""
    ir = data.draw(st.sampled_from(IRS), label="lifecycle")
    artefact = "ds1" if ir.name == "Dataset" else "m1"
    verb = data.draw(st.sampled_from(["record", "approve", "grant", "revoke", "register"]))
    known = {ir.name, *(t.name for t in ir.transitions), *(r.name for r in ir.roles)}
    bad = data.draw(typo().filter(lambda t: t not in known and t.strip()), label="typo")
    argv = {
        "record": ["record", bad, artefact],
        "approve": ["approve", bad, artefact],
        "grant": ["grant", ir.name, bad, ADDRESS, "--domain", "acme"],
        "revoke": ["revoke", ir.name, bad, ADDRESS],
        "register": ["register", "x", "--lifecycle", bad],
    }[verb]
    code, out, err = run([*argv, "--home", "h"])
    check(argv, code, out, err)
    assert code == 2 and len(err.strip().splitlines()) == 1, (argv, err)
    assert bad in err or repr(bad) in err or ascii(bad) in err, (argv, err)


def test_every_command_is_driven() -> None:
    """The enumeration sees the nested and the registered commands, not just the top level."""
    assert {"threats run", "threats list", "status", "record", "grant", "reproduce",
            "sweep"} <= set(COMMANDS)
    assert set(COMMANDS) >= SLOW


@pytest.mark.parametrize("argv, needle", [
    (["record", "labl", "ds1"], "did you mean 'label'?"),
    (["approve", "verfy", "m1"], "did you mean 'verify'?"),
    (["grant", "Model", "verfier", ADDRESS, "--domain", "x"], "did you mean 'verifier'?"),
    (["grant", "Model", "verifier", "0x123", "--domain", "x"], "is not an address"),
    (["grant", "Model", "verifier", wrong_checksum(ADDRESS), "--domain", "x"], "EIP-55"),
    (["history", "0x" + "Z" * 64], "is not a valid artefact id"),
    (["node-bench", "--steps", "0"], "--steps: 0 is too small"),
    (["threats", "run", "--seeds", "0"], "--seeds: 0 is too small"),
    (["threats", "run", "--seeds", "-1"], "--seeds: -1 is too small"),
    (["diagram", "Model", "-o", "/nonexistent/x"], "/nonexistent does not exist"),
    (["reproduce", "--out", "f.txt"], "f.txt is a file, not a directory"),
    (["bundle", "ds1", "-o", "d"], "cannot write d: it is a directory"),
    (["init", "--name", "a", "--domain", "b", "--new-chain", "--home", "/nonexistent/h"],
     "the directory /nonexistent does not exist"),
    (["replica", "add", "/nonexistent/r"], "the directory /nonexistent does not exist"),
    (["status", os.fsdecode(b"ds\xff")], "is not valid UTF-8"),
    # found by the property test above: a NUL in a path reached the OS as an internal error
    (["key", "export", "--out", "\x00", "--home", "h"], "contains a NUL byte"),
])
def test_issue_cases_are_one_line_input_errors(place: Path, argv: list[str], needle: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    if "--home" not in argv and takes_home(" ".join(argv[:2]) if argv[0] == "threats"
                                           else argv[0]):
        argv = [*argv, "--home", "h"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1, err
    assert not Path("/nonexistent").exists()


def test_global_options_before_or_after_and_proml_home(place: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    outs = []
    for argv in (["--json", "--home", "h", "status", "ds1"], ["status", "ds1", "--json",
                 "--home", "h"], ["--home", "h", "status", "--json", "ds1"]):
        assert main(argv) == 0
        outs.append(json.loads(capsys.readouterr().out))
    assert outs[0] == outs[1] == outs[2] and outs[0]["name"] == "ds1"
    monkeypatch.setenv("PROML_HOME", str(place / "h"))
    monkeypatch.chdir(place / "d")  # no ./.proml here: the home comes from $PROML_HOME
    assert main(["--json", "status", "ds1"]) == 0
    assert json.loads(capsys.readouterr().out) == outs[0]
    monkeypatch.setenv("PROML_HOME", str(place / "f.txt"))
    assert main(["--json", "status", "ds1"]) == 2
    err = json.loads(capsys.readouterr().err)
    assert err["code"] == 2 and "PROML_HOME" in err["error"] and "is a file" in err["error"]
