"""Which proxy a state command talks to, and how: one convention for every command.

Every command that reads or changes state (report, export, keys, customers, budgets) takes
`--url`, `--config` and `--admin-token-file` on its own subcommand; their environment forms
are COSTPROXY_URL, COSTPROXY_CONFIG and COSTPROXY_ADMIN_TOKEN. Flags win over the
environment. With neither a URL nor a config, a command run where the quickstart keeps its
data finds it through `data/quickstart.json`: over HTTP while it runs, straight on its store
when it has stopped.

Over HTTP a command runs the admin API; straight on the store it runs the same service
functions the admin API runs, so both print the same thing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import IO, Any, BinaryIO, TypeVar

import orjson

from proxy.cli import check_config
from proxy.cli.quickstart_state import QuickstartState, read_state
from proxy.config import Config, load_config
from proxy.errors import ConfigError, ProxyError
from proxy.store.base import Store
from proxy.store.factory import make_store

__all__ = [
    "CliError",
    "Direct",
    "Remote",
    "Target",
    "add_target_options",
    "direct",
    "load",
    "resolve",
]

T = TypeVar("T")
URL_ENV, CONFIG_ENV, TOKEN_ENV = "COSTPROXY_URL", "COSTPROXY_CONFIG", "COSTPROXY_ADMIN_TOKEN"


class CliError(Exception):
    """A problem the user can act on: printed as one line, exit status 1."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would repeat the request, Authorization header included, wherever a redirect
    points: the admin token must only ever go to the address the user gave."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        raise CliError(
            f"{req.full_url} answered {code} with a redirect to {newurl}; costproxy does not "
            "follow redirects with the admin token (give the final address as --url)"
        )


_OPENER = urllib.request.build_opener(_NoRedirects)


@dataclass(frozen=True, slots=True)
class Remote:
    """A running proxy's admin API."""

    url: str
    token: str

    def call(self, method: str, path: str, body: object = None, timeout: float = 60) -> Any:
        """One admin call; its JSON answer (None when it has no body)."""
        data = None if body is None else orjson.dumps(body)
        raw = self._open(method, path, data, timeout).read()
        return orjson.loads(raw) if raw else None

    def download(self, path: str, out: BinaryIO, timeout: float = 300) -> None:
        """Copy an answer to `out` as it streams in."""
        with self._open("GET", path, None, timeout) as resp:
            while chunk := resp.read(64 * 1024):
                out.write(chunk)

    def _open(self, method: str, path: str, data: bytes | None, timeout: float) -> Any:
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            return _OPENER.open(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raise CliError(_error_message(exc.code, exc.read())) from None
        except urllib.error.URLError as exc:
            raise CliError(f"cannot reach {self.url}: {exc.reason}") from None
        except OSError as exc:  # a reset or a timeout after connecting
            raise CliError(f"{self.url}: {exc}") from None


def _error_message(status: int, body: bytes) -> str:
    try:
        return f"{status}: {orjson.loads(body)['error']['message']}"
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return f"HTTP {status}"


@dataclass(frozen=True, slots=True)
class Direct:
    """A config file: the command opens its store itself."""

    config: Config
    path: str

    def run(self, work: Callable[[Store], Awaitable[T]], *, changes: bool = False) -> T:
        """Run `work` on the opened store; with `changes`, running proxies then drop
        their caches of keys and customers."""

        async def opened() -> T:
            store = make_store(self.config.store)
            await store.open()
            try:
                result = await work(store)
                if changes:
                    await store.publish_change()
                return result
            finally:
                await store.close()

        try:
            return asyncio.run(opened())
        except ProxyError as exc:
            raise CliError(exc.message) from None


Target = Remote | Direct


def add_target_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("which proxy (default: the quickstart in ./data)")
    where = group.add_mutually_exclusive_group()
    where.add_argument(
        "--url", help=f"a running proxy, e.g. http://127.0.0.1:8080 (env: {URL_ENV})"
    )
    where.add_argument(
        "--config", "-c", help=f"a config file: use its store directly (env: {CONFIG_ENV})"
    )
    group.add_argument(
        "--admin-token-file",
        metavar="FILE",
        help=f"a file holding the admin token (env: {TOKEN_ENV} holds the token itself)",
    )
    # Kept for scripts that pass it; `ps` shows it to every user of the machine.
    group.add_argument("--admin-token", help=argparse.SUPPRESS)


def resolve(
    args: argparse.Namespace,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Target:
    """The target of a command from its flags, then the environment, then the quickstart."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    url, config = args.url, args.config
    if url is None and config is None:
        url, config = env.get(URL_ENV) or None, env.get(CONFIG_ENV) or None
    quickstart = read_state(cwd)
    if url is not None:
        return Remote(_checked_url(url), _token(args, env, quickstart, url))
    if config is not None:
        return Direct(load(config, env), config)
    if quickstart is None:
        raise CliError(
            "which proxy? give --url (or set COSTPROXY_URL) for a running proxy, or --config "
            "(or COSTPROXY_CONFIG) for its config file; or run this where the quickstart "
            "(bash scripts/run.sh) keeps its data/"
        )
    if quickstart.running():
        return Remote(quickstart.url, _token(args, env, quickstart, quickstart.url))
    # Stopped: its store is still here. Its config reads the admin token from the env.
    token = quickstart.token()
    return Direct(load(quickstart.config, {**env, TOKEN_ENV: token}), quickstart.config)


def direct(
    args: argparse.Namespace,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Direct:
    """The config of a command that works on the store itself (it needs the config, not
    only the admin API): `--config`, else COSTPROXY_CONFIG, else the quickstart's."""
    env = os.environ if env is None else env
    config = args.config or env.get(CONFIG_ENV) or None
    if config is not None:
        return Direct(load(config, env), config)
    quickstart = read_state(Path.cwd() if cwd is None else cwd)
    if quickstart is None:
        raise CliError(
            "which config? give --config (or set COSTPROXY_CONFIG), or run this where the "
            "quickstart (bash scripts/run.sh) keeps its data/"
        )
    token = quickstart.token()
    return Direct(load(quickstart.config, {**env, TOKEN_ENV: token}), quickstart.config)


def _checked_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"--url must be an http(s) address like http://127.0.0.1:8080, got {url!r}")
    # The admin API's paths start at the root: "/v1" (the client API's base) is dropped.
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[:-3]
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _token(
    args: argparse.Namespace,
    env: Mapping[str, str],
    quickstart: QuickstartState | None,
    url: str,
) -> str:
    if args.admin_token_file:
        return _read_token(Path(args.admin_token_file))
    if env.get(TOKEN_ENV):
        return env[TOKEN_ENV]
    if args.admin_token:
        print(
            "costproxy: warning: --admin-token shows the token to every user of this machine "
            f"(ps, shell history); use --admin-token-file FILE or set {TOKEN_ENV}",
            file=sys.stderr,
        )
        return args.admin_token
    if quickstart is not None and _checked_url(quickstart.url) == _checked_url(url):
        return quickstart.token()
    raise CliError(f"{url} needs the admin token: give --admin-token-file FILE or set {TOKEN_ENV}")


def _read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CliError(f"cannot read the admin token from {path}: {exc.strerror}") from None
    if not token:
        raise CliError(f"{path} is empty: it should hold the admin token")
    return token


def load(path: str, env: Mapping[str, str] | None = None) -> Config:
    """The config at `path`, or CliError naming every problem (as check-config does)."""
    env = os.environ if env is None else env
    try:
        return load_config(path, env=env)
    except ConfigError as exc:
        text, valid = check_config.report(path, env)
        raise CliError(str(exc) if valid else text) from None
