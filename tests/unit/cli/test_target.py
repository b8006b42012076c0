"""Which proxy a command talks to: flags, then the environment, then the quickstart's data/."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from proxy.cli.quickstart_state import QuickstartState, ensure_token, read_state, write_state
from proxy.cli.target import CliError, Direct, Remote, add_target_options, resolve
from tests.support.procs import REPO

QUICKSTART = str(REPO / "config/quickstart.yaml")


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_target_options(parser)
    return parser.parse_args(argv)


def quickstart_here(cwd: Path, *, pid: int) -> Path:
    token_file = ensure_token(cwd / "data")
    write_state(
        cwd / "data", QuickstartState("http://127.0.0.1:8123", QUICKSTART, str(token_file), pid)
    )
    return token_file


def test_files_are_private_from_the_start(tmp_path: Path):
    token_file = quickstart_here(tmp_path, pid=os.getpid())
    for path in (token_file, tmp_path / "data" / "quickstart.json"):
        assert path.stat().st_mode & 0o777 == 0o600
    assert not list((tmp_path / "data").glob(".*"))  # no temporary file left behind
    assert read_state(tmp_path) == QuickstartState(
        "http://127.0.0.1:8123", QUICKSTART, str(token_file), os.getpid()
    )


def test_a_running_quickstart_is_found_with_its_token(tmp_path: Path):
    token_file = quickstart_here(tmp_path, pid=os.getpid())  # this process: alive
    target = resolve(parse(), env={}, cwd=tmp_path)
    assert target == Remote("http://127.0.0.1:8123", token_file.read_text().strip())


def test_a_stopped_quickstart_is_read_straight_from_its_store(tmp_path: Path):
    quickstart_here(tmp_path, pid=2**22 + 12345)  # above pid_max: no such process
    target = resolve(parse(), env={}, cwd=tmp_path)
    assert isinstance(target, Direct)
    assert target.path == QUICKSTART
    assert target.config.store.backend == "sqlite"


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        # Flags win over the environment; the environment over the quickstart.
        (["--url", "http://10.0.0.1:1"], {"COSTPROXY_URL": "http://10.0.0.2:2"}, "10.0.0.1:1"),
        ([], {"COSTPROXY_URL": "http://10.0.0.2:2"}, "10.0.0.2:2"),
        (["--config", QUICKSTART], {"COSTPROXY_URL": "http://10.0.0.2:2"}, QUICKSTART),
        ([], {"COSTPROXY_CONFIG": QUICKSTART}, QUICKSTART),
        ([], {}, "127.0.0.1:8123"),
    ],
)
def test_precedence(tmp_path: Path, argv: list[str], env: dict, expected: str):
    quickstart_here(tmp_path, pid=os.getpid())
    env = {"COSTPROXY_ADMIN_TOKEN": "t" * 20, **env}
    target = resolve(parse(*argv), env=env, cwd=tmp_path)
    where = target.url if isinstance(target, Remote) else target.path
    assert expected in where


def test_the_client_base_url_works_as_url_too():
    target = resolve(parse("--url", "http://127.0.0.1:9/v1/"), env={"COSTPROXY_ADMIN_TOKEN": "t"})
    assert target == Remote("http://127.0.0.1:9", "t")


def test_token_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    token_file = tmp_path / "token"
    token_file.write_text("from-the-file\n")
    url = ["--url", "http://127.0.0.1:9"]
    by_file = resolve(parse(*url, "--admin-token-file", str(token_file)), env={}, cwd=tmp_path)
    assert by_file == Remote("http://127.0.0.1:9", "from-the-file")
    by_env = resolve(parse(*url), env={"COSTPROXY_ADMIN_TOKEN": "from-env"}, cwd=tmp_path)
    assert by_env == Remote("http://127.0.0.1:9", "from-env")
    assert capsys.readouterr().err == ""
    by_flag = resolve(parse(*url, "--admin-token", "on-the-line"), env={}, cwd=tmp_path)
    assert by_flag == Remote("http://127.0.0.1:9", "on-the-line")
    assert "warning: --admin-token shows the token" in capsys.readouterr().err
    with pytest.raises(CliError, match="needs the admin token"):
        resolve(parse(*url), env={}, cwd=tmp_path)


@pytest.mark.parametrize("url", ["127.0.0.1:8080", "ftp://127.0.0.1", "http://"])
def test_a_url_that_is_not_http_is_refused(url: str):
    with pytest.raises(CliError, match="http"):
        resolve(parse("--url", url), env={"COSTPROXY_ADMIN_TOKEN": "t"})


def test_nothing_to_talk_to_says_what_to_give(tmp_path: Path):
    with pytest.raises(CliError, match=r"give --url .* or --config"):
        resolve(parse(), env={}, cwd=tmp_path)
