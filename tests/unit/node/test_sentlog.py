"""The node's sent log: what doctor checks the chain still holds (node/sentlog.py)."""

from __future__ import annotations

from pathlib import Path

from proml_sim.node import sentlog


def test_dropped_entries_are_named_until_acknowledged(tmp_path: Path) -> None:
    on_chain = {b"\x01" * 32}
    sentlog.append(tmp_path, b"\x01" * 32, "Dataset.register", 7)
    sentlog.append(tmp_path, b"\x02" * 32, "Dataset.label", 8)

    def receipt(h: bytes) -> object | None:
        return object() if h in on_chain else None

    (lost,) = sentlog.dropped(tmp_path, receipt)
    assert lost[0] == 2 and lost[1] is not None and lost[1]["what"] == "Dataset.label"
    assert "0x" + "02" * 32 in lost[2] and "mined in block 8" in lost[2]
    sentlog.acknowledge(tmp_path, tx="0x" + "02" * 32)
    assert sentlog.dropped(tmp_path, receipt) == []
    assert len((tmp_path / sentlog.SENT_LOG).read_text().splitlines()) == 3  # appended only


def test_a_torn_line_is_named_and_the_next_append_starts_its_own_line(tmp_path: Path) -> None:
    sentlog.append(tmp_path, b"\x01" * 32, "Model.train", 3)
    with (tmp_path / sentlog.SENT_LOG).open("a") as f:
        f.write('{"tx": "0x12')  # an append cut short
    sentlog.append(tmp_path, b"\x03" * 32, "Model.verify", 4)
    got = sentlog.dropped(tmp_path, lambda h: object())
    assert [(n, e) for n, e, _ in got] == [(2, None)]  # the later entry survived whole
    sentlog.acknowledge(tmp_path, line=2)
    assert sentlog.dropped(tmp_path, lambda h: object()) == []


def test_a_log_that_cannot_be_written_warns_and_the_step_stands(tmp_path, capsys, monkeypatch):
    """The transaction is mined before its log line is written: a full disk or a read-only
    home must not turn a recorded step into a failed command."""
    from proml_sim.node import ProMLNode

    node = ProMLNode.init(tmp_path / "h", name="a", domain="d1", new_chain=True, seed="sl")

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sentlog, "append", refuse)
    node.grant("Dataset", "dataset_admin", node.address, "d1")
    assert "dataset_admin" in node.whoami()["roles"]["Dataset"]
    err = capsys.readouterr().err
    assert "Dataset.grant_role is on chain (tx 0x" in err and "No space left on device" in err


def test_a_named_line_is_acknowledged_by_what_it_holds(tmp_path: Path) -> None:
    sentlog.append(tmp_path, b"\x05" * 32, "Model.train", 3)
    with (tmp_path / sentlog.SENT_LOG).open("a") as f:
        f.write("not json\n")
    assert sentlog.acknowledge_line(tmp_path, 1) == "the dropped transaction 0x" + "05" * 32
    assert sentlog.acknowledge_line(tmp_path, 2) == "the unreadable line"
    assert sentlog.dropped(tmp_path, lambda h: None) == []


def test_a_log_that_is_a_link_or_a_pipe_is_neither_read_nor_written_through(
        tmp_path: Path) -> None:
    """``sent.jsonl`` a symbolic link to another file (``doctor --repair`` used to append an
    ``ack`` line to the link's target for each of its lines: /etc/passwd, as root), or a pipe
    (doctor blocked reading it): nothing is appended, nothing read, and the kind is named."""
    import os

    import pytest

    victim = tmp_path / "victim.txt"
    victim.write_text("root:x:0:0:root:/root:/bin/bash\n")
    home = tmp_path / "h"
    home.mkdir()
    (home / sentlog.SENT_LOG).symlink_to(victim)
    assert "is a symbolic link (to " in (sentlog.not_a_log(home) or "")
    assert list(sentlog.entries(home)) == []
    for write in (lambda: sentlog.append(home, b"\x01" * 32, "Model.train", 3),
                  lambda: sentlog.acknowledge_line(home, 1)):
        with pytest.raises(OSError, match="appended nothing"):
            write()
    assert victim.read_text() == "root:x:0:0:root:/root:/bin/bash\n"
    (home / sentlog.SENT_LOG).unlink()
    os.mkfifo(home / sentlog.SENT_LOG)
    assert sentlog.not_a_log(home) == "is not a regular file"
    assert sentlog.dropped(home, lambda h: None) == []  # returns: no read of the pipe
    with pytest.raises(OSError, match="appended nothing"):
        sentlog.append(home, b"\x01" * 32, "Model.train", 3)
