"""What the quickstart leaves in its data directory for the commands run beside it.

`data/admin-token` holds the admin token and `data/quickstart.json` where the quickstart
listens, its config and its process id; both are created 0600 in one step (never written
first and restricted after), so no other user of the machine can read the token.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from proxy.files import private_dir, write_private

__all__ = [
    "STATE_FILE",
    "QuickstartState",
    "ensure_token",
    "read_state",
    "write_state",
    "write_token",
]

DATA_DIR = "data"
STATE_FILE = "quickstart.json"
TOKEN_FILE = "admin-token"


def ensure_token(data_dir: Path) -> Path:
    """The admin-token file in `data_dir`, with a new random token if there is none."""
    path = data_dir / TOKEN_FILE
    if not path.exists() or not path.read_text(encoding="utf-8").strip():
        write_token(data_dir, secrets.token_urlsafe(24))
    return path


def write_token(data_dir: Path, token: str) -> Path:
    path = data_dir / TOKEN_FILE
    write_private(private_dir(path.parent) / path.name, token + "\n")
    return path


@dataclass(frozen=True, slots=True)
class QuickstartState:
    url: str  # the proxy's root, e.g. http://127.0.0.1:8080
    config: str  # absolute path of the config it serves
    admin_token_file: str  # absolute path
    pid: int

    def running(self) -> bool:
        """Whether the process that wrote this still runs (signal 0 only checks)."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, another user's
            return True
        return True

    def token(self) -> str:
        return Path(self.admin_token_file).read_text(encoding="utf-8").strip()


def write_state(data_dir: Path, state: QuickstartState) -> Path:
    path = data_dir / STATE_FILE
    write_private(
        private_dir(path.parent) / path.name,
        orjson.dumps(asdict(state), option=orjson.OPT_INDENT_2) + b"\n",
    )
    return path


def read_state(cwd: Path) -> QuickstartState | None:
    """The quickstart's state in `cwd/data`, or None when there is none (or it is garbled)."""
    try:
        data = orjson.loads((cwd / DATA_DIR / STATE_FILE).read_bytes())
        return QuickstartState(
            url=str(data["url"]),
            config=str(data["config"]),
            admin_token_file=str(data["admin_token_file"]),
            pid=int(data["pid"]),
        )
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
