"""Files only their owner may read: created so from the first byte, never restricted after.

What the proxy writes holds spend per customer (the SQLite store, the journal) or
credentials (the admin token the quickstart generates). A file created with the
process's umask (0644, usually) and chmod-ed afterwards is readable by everyone in
between; these helpers give the mode at creation, and `write_private` replaces a file
atomically (a reader sees the old content or the new, never a part).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from io import BufferedWriter
from pathlib import Path

__all__ = [
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "open_private",
    "private_dir",
    "shared_with_others",
    "touch_private",
    "write_private",
]

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: str | os.PathLike[str]) -> Path:
    """The directory, created 0700 (with its missing parents) when it does not exist; an
    existing one keeps its mode (the operator chose it)."""
    directory = Path(path)
    directory.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    return directory


def touch_private(path: str | os.PathLike[str]) -> Path:
    """The file, created empty and 0600 when it does not exist (an existing one is left
    as it is): for files another library opens, such as SQLite's database."""
    target = Path(path)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    return target


def open_private(path: str | os.PathLike[str]) -> BufferedWriter:
    """`open(path, "ab")`: a new file created 0600 (an existing one keeps its mode)."""
    return open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE), "ab")


def write_private(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Replace `path` with `data`, atomically, 0600 from the first byte: written to a
    private temporary file beside it, flushed to disk, then renamed over it."""
    target = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")  # 0600
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def shared_with_others(path: str | os.PathLike[str]) -> bool:
    """Whether users other than the owner may read the file (a file from before, or an
    operator's choice: worth a warning, not a change behind their back)."""
    return bool(Path(path).stat().st_mode & 0o077)
