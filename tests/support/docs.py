"""The shell and Python blocks of README.md and docs/*.md, and running them as written.

Markers: an HTML comment on the line right before a block's opening fence.

    <!-- docs-test: starts the quickstart -->   the README's run command: started in the
                                               background with --port/--fake-port added
    <!-- docs-test: skip: REASON -->           not run here (no Docker engine, a real
                                               secret, ten minutes); every skip is listed
                                               in tests/e2e/test_docs.py
    <!-- docs-test: exit N -->                 run; must end with exit status N

Every other ```sh / ```bash / ```shell / ```python block runs, in page order, from the root
of a copy of the checkout; a placeholder (…) in a block that runs is an error. Shell blocks
run in `bash -e -o pipefail`; what they export (and `source .venv/bin/activate`) carries on
to the page's next blocks. Python blocks run with the `python` first on that PATH. The
quickstart's ports 8080 and 9000 are replaced by the free ports the test chose.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Block", "BlockFailed", "Session", "blocks_of", "check_markers", "user_env"]

LANGUAGES = {"sh": "sh", "bash": "sh", "shell": "sh", "console": "sh", "python": "python"}
_MARKER = re.compile(r"^<!--\s*docs-test:\s*(.*?)\s*-->$")
_FENCE = re.compile(r"^```(.*)$")
START = "starts the quickstart"
PLACEHOLDER = "…"
BLOCK_TIMEOUT_S = 180


@dataclass(frozen=True, slots=True)
class Block:
    page: str  # relative to the checkout
    line: int  # of the opening fence, 1-based
    language: str  # "sh" or "python"
    text: str
    marker: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def skip_reason(self) -> str | None:
        if self.marker and self.marker.startswith("skip:"):
            return self.marker.removeprefix("skip:").strip()
        return None

    @property
    def expected_exit(self) -> int:
        if self.marker and self.marker.startswith("exit "):
            return int(self.marker.split()[1])
        return 0


def blocks_of(path: Path, root: Path) -> list[Block]:
    """The runnable blocks of a markdown file, with their markers."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        info = opening.group(1).strip()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise ValueError(f"{path}:{i + 1}: a code block is never closed")
        marker = _MARKER.match(lines[i - 1].strip()) if i else None
        language = LANGUAGES.get(info.split()[0] if info else "")
        if language is not None:
            found.append(
                Block(
                    page=str(path.relative_to(root)),
                    line=i + 1,
                    language=language,
                    text="\n".join(lines[i + 1 : end]) + "\n",
                    marker=marker.group(1) if marker else None,
                )
            )
        elif marker:
            raise ValueError(f"{path}:{i + 1}: a docs-test marker on a block that never runs")
        i = end + 1
    return found


def check_markers(blocks: list[Block]) -> list[str]:
    """What is wrong with the markers: unknown ones, skips without a reason, placeholders
    in blocks that run."""
    problems = []
    for block in blocks:
        marker = block.marker
        if marker is not None and not (
            marker == START
            or (marker.startswith("skip:") and block.skip_reason)
            or re.fullmatch(r"exit \d+", marker)
        ):
            problems.append(f"{block.where}: unknown marker {marker!r}")
        if block.skip_reason is None and PLACEHOLDER in block.text:
            problems.append(
                f"{block.where}: a placeholder ({PLACEHOLDER}) in a block that runs: mark it "
                "<!-- docs-test: skip: REASON -->"
            )
    return problems


class BlockFailed(AssertionError):
    pass


class Session:
    """Runs blocks in `root` (a copy of the checkout) against a quickstart on `port`."""

    def __init__(self, root: Path, env: dict[str, str], port: int, fake_port: int) -> None:
        self.root = root
        self.env = dict(env)
        self.port = port
        self.fake_port = fake_port

    def substitute(self, text: str) -> str:
        for host in ("127.0.0.1", "localhost"):
            text = text.replace(f"{host}:8080", f"{host}:{self.port}")
            text = text.replace(f"{host}:9000", f"{host}:{self.fake_port}")
        return text

    def start_command(self, block: Block) -> list[str]:
        """The run command of a `starts the quickstart` block, with the test's ports."""
        (line,) = [line for line in block.text.splitlines() if line.strip()]
        command = line.split(" #", 1)[0].strip()
        return ["bash", "-c", f"{command} --port {self.port} --fake-port {self.fake_port}"]

    def run(self, block: Block) -> str:
        """Run one block; its output. BlockFailed when its exit status is not the expected."""
        text = self.substitute(block.text)
        if block.language == "python":
            python = shutil.which("python", path=self.env.get("PATH")) or "python3"
            argv = [python, "-c", text]
            env_file = None
        else:
            env_file = Path(tempfile.mkstemp(prefix="docs-env-")[1])
            argv = ["bash", "-e", "-o", "pipefail", "-c", f'{text}\nenv -0 > "{env_file}"\n']
        try:
            result = subprocess.run(
                argv,
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=BLOCK_TIMEOUT_S,
            )
            output = result.stdout + result.stderr
            if result.returncode != block.expected_exit:
                raise BlockFailed(
                    f"{block.where}: exit status {result.returncode}, expected "
                    f"{block.expected_exit}\n--- the block ---\n{block.text}--- its output ---\n"
                    f"{output}"
                )
            if env_file is not None and result.returncode == 0:
                self.env = dict(_environ(env_file.read_bytes()))
            return output
        finally:
            if env_file is not None:
                env_file.unlink(missing_ok=True)


def _environ(dump: bytes) -> Iterator[tuple[str, str]]:
    for item in dump.split(b"\0"):
        name, sep, value = item.decode(errors="replace").partition("=")
        if sep and name and not name.startswith("BASH_FUNC_"):
            yield name, value


def user_env(exclude_path: str) -> dict[str, str]:
    """The test's environment as a new user's: no costproxy or OpenAI settings, no
    virtual environment active (its bin dir off the PATH)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COSTPROXY_", "OPENAI_")) and k not in ("VIRTUAL_ENV", "PYTHONPATH")
    }
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p != exclude_path
    )
    env["PYTHONUNBUFFERED"] = "1"
    return env
