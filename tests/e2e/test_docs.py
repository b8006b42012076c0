"""What the README and docs/ say is what runs: every shell and Python block, as written.

A copy of the checkout gets its own `.venv` (its third-party packages come from this test
run's environment through a .pth file, so nothing is downloaded; costproxy itself is
installed into it by `scripts/run.sh`, as on a first start). The README's run command
starts the quickstart there (on free ports), then the README's blocks run in order from the
copy's root, with the environment of a user who set nothing. Each docs/ page then runs in
the state the README leaves. tests/support/docs.py describes the markers.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.docs import START, Block, BlockFailed, Session, blocks_of, check_markers
from tests.support.docs import user_env as new_user_env
from tests.support.procs import REPO, free_port

PAGES = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]

# Blocks that cannot run here, each with its reason in the page. A new one is a decision:
# add it here too.
EXPECTED_SKIPS = {
    ("README.md", "bash scripts/test.sh"),
    ("README.md", "OPENAI_API_KEY=sk-… ACME_KEY=… GLOBEX_KEY=… BACKEND_KEY=… bash scripts/run.sh"),
    ("docs/observability.md", "docker compose --profile demo up -d"),
    (
        "docs/operations.md",
        "export OPENAI_API_KEY=sk-… ACME_KEY=… BACKEND_KEY=… COSTPROXY_ADMIN_TOKEN=…",
    ),
    ("docs/performance.md", "make bench"),
    ("docs/console.md", "costproxy customers unshare share_…"),
    (
        "docs/reconcile.md",
        "OPENAI_ADMIN_KEY=sk-admin-… costproxy reconcile --config config/costproxy.yaml \\",
    ),
}
# Not copied: the checkout's own state (its quickstart's data/, its .venv) and caches.
_NOT_COPIED = shutil.ignore_patterns(".venv", ".git", "__pycache__", ".pytest_cache", ".ruff_cache")


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in blocks_of(REPO / page, REPO)]


def test_markers_are_known_and_placeholders_never_run():
    assert check_markers(all_blocks()) == []


def test_the_blocks_that_do_not_run_are_these():
    skipped = {
        (b.page, b.text.split("#")[0].splitlines()[0].strip())
        for b in all_blocks()
        if b.skip_reason
    }
    assert skipped == EXPECTED_SKIPS


def test_a_failing_documented_command_fails_the_test(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("Intro.\n\n```sh\necho fine\nfalse\necho never\n```\n")
    (block,) = blocks_of(page, tmp_path)
    session = Session(tmp_path, new_user_env(""), 1, 2)
    with pytest.raises(BlockFailed, match=r"page.md:3: exit status 1, expected 0"):
        session.run(block)


def runs(block: Block) -> bool:
    return block.skip_reason is None and block.marker != START


def copy_of_the_checkout(root: Path) -> Path:
    def ignore(directory: str, names: list[str]) -> set[str]:
        top = {"data"} if Path(directory) == REPO else set()
        return set(_NOT_COPIED(directory, names)) | (top & set(names))

    shutil.copytree(REPO, root, ignore=ignore)
    # A virtual environment as `python -m venv` makes it, whose site-packages also sees the
    # packages this test runs with (already installed: no download). costproxy itself is
    # not there: the first start installs it from the copy.
    base_python = sys._base_executable  # type: ignore[attr-defined]
    venv = root / ".venv"
    subprocess.run([base_python, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = sysconfig.get_paths()["purelib"]
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    own = subprocess.run(
        [str(venv / "bin/python"), "-c", where], check=True, capture_output=True, text=True
    ).stdout.strip()
    (Path(own) / "_test_run_packages.pth").write_text(purelib + "\n")
    return root


@dataclass
class Quickstart:
    """The quickstart the README starts, as a user runs it: `bash scripts/run.sh`."""

    session: Session
    block: Block
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    first_start: str = ""  # what the first start printed

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log else ""

    def start(self) -> None:
        self.log = Path(tempfile.mkstemp(prefix="docs-quickstart-", suffix=".log")[1])
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.session.start_command(self.block),
                cwd=self.session.root,
                env=self.session.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 300  # a first start installs costproxy
        url = f"http://127.0.0.1:{self.session.port}/healthz"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.block.where}: the quickstart exited:\n{self.output()}")
            try:
                with urllib.request.urlopen(url, timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"{self.block.where}: the quickstart never answered:\n{self.output()}")

    def stop(self) -> int | None:
        process, self.process = self.process, None
        if process is None:
            return None
        process.send_signal(signal.SIGTERM)  # run.sh execs the quickstart: this is it
        try:
            return process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()


@pytest.fixture(scope="module")
def readme(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Session, Quickstart]]:
    """The README followed to the letter in a copy of the checkout: the quickstart started
    as it says, then every block in order. Yields the session in the state it leaves."""
    root = copy_of_the_checkout(tmp_path_factory.mktemp("checkout") / "costproxy")
    env = new_user_env(str(Path(sys.executable).parent))
    session = Session(root, env, free_port(), free_port())
    blocks = blocks_of(root / "README.md", root)
    (start_block,) = [b for b in blocks if b.marker == START]
    quickstart = Quickstart(session, start_block)
    quickstart.start()
    quickstart.first_start = quickstart.output()
    try:
        for block in blocks:
            if runs(block):
                session.run(block)
        yield session, quickstart
    finally:
        quickstart.stop()


def test_the_readme_runs_as_written(readme: tuple[Session, Quickstart]):
    session, quickstart = readme
    assert "Installing costproxy and its dependencies into .venv/" in quickstart.first_start
    assert f"listening on http://127.0.0.1:{session.port}/v1" in quickstart.first_start
    assert (session.root / "acme.csv").read_text().startswith("request_id,ts_ms,time,")


def test_a_second_start_installs_nothing(readme: tuple[Session, Quickstart]):
    session, quickstart = readme
    assert quickstart.stop() == 0
    quickstart.start()  # leaves it running for the other tests of this module
    assert "Install" not in quickstart.output()
    assert f"listening on http://127.0.0.1:{session.port}/v1" in quickstart.output()


@pytest.mark.parametrize("page", [p for p in PAGES if p != "README.md"])
def test_each_docs_page_runs_as_written(readme: tuple[Session, Quickstart], page: str):
    session, _ = readme
    page_session = Session(session.root, session.env, session.port, session.fake_port)
    for block in blocks_of(session.root / page, session.root):
        if runs(block):
            page_session.run(block)
