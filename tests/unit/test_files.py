"""Private files: 0600 from creation, atomic replacement."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from proxy.files import open_private, private_dir, touch_private, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_are_private_from_creation_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)  # the most permissive umask: the modes below are the helpers' own
    try:
        directory = private_dir(tmp_path / "a" / "b")
        write_private(directory / "token", "secret\n")
        touch_private(directory / "store.db")
        with open_private(directory / "journal.jsonl") as file:
            file.write(b"{}\n")
    finally:
        os.umask(old)
    assert mode(directory) == 0o700
    assert {p.name: mode(p) for p in directory.iterdir()} == {
        "token": 0o600,
        "store.db": 0o600,
        "journal.jsonl": 0o600,
    }


def test_write_private_replaces_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "admin-token"
    write_private(target, "one")
    write_private(target, b"two")
    assert target.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["admin-token"]


def test_touch_private_leaves_an_existing_file_alone(tmp_path: Path) -> None:
    target = tmp_path / "store.db"
    target.write_bytes(b"data")
    target.chmod(0o640)
    touch_private(target)
    assert target.read_bytes() == b"data" and mode(target) == 0o640
