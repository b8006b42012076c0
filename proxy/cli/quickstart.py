"""`costproxy quickstart`: the quickstart config on the embedded store, in front of the
bundled fake upstream unless OPENAI_API_KEY is set (and, for the Claude routes on
Anthropic's Messages API, ANTHROPIC_API_KEY); it tells the user what to type next.

It keeps its admin token in `data/admin-token` and where it listens in
`data/quickstart.json` (both 0600), so that the commands run beside it find it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from proxy.cli.quickstart_state import QuickstartState, ensure_token, write_state, write_token
from proxy.cli.serving import serve_config
from proxy.cli.target import load
from proxy.config import Config
from proxy.listeners import bind, listen_sockets

__all__ = ["add_quickstart_command", "banner"]

_DEMO_KEY_PREFIX = "sk-demo-"


def _demo_keys(config: Config) -> list[str]:
    """The config's demo client keys (by convention "sk-demo-…"), as `key (who)`: they
    are in the shipped file for anyone to read; no other key is ever printed."""
    shown = []
    for key in config.keys:
        secret = key.key.get_secret_value() if key.key is not None else ""
        if secret.startswith(_DEMO_KEY_PREFIX):
            who = "trusted: send X-Customer-Id" if key.trusted else f"customer {key.customer}"
            shown.append(f"{secret} ({who})")
    return shown


def banner(config: Config, url: str, token_file: Path, upstream: str, claude: str) -> str:
    """What the quickstart prints once it listens: what runs, and the lines to copy."""
    keys = _demo_keys(config)
    lines = [
        f"costproxy quickstart: listening on {url}/v1 (store: {config.store.backend}, "
        f"{config.store.sqlite_path if config.store.backend == 'sqlite' else 'redis'})",
        f"  upstream:     {upstream}",
        f"  Claude:       {claude}",
        f"  client keys:  {', '.join(keys) if keys else 'the keys of the config'}",
        f"  admin token:  in {token_file} (readable by you only)",
        "",
        "In another terminal, in this directory:",
        "  source .venv/bin/activate          # puts `costproxy` on the PATH",
        "  costproxy report --group-by customer,model   # finds this proxy by data/",
        "From elsewhere, or for curl:",
        f"  export COSTPROXY_URL={url} COSTPROXY_ADMIN_TOKEN=$(cat {token_file.resolve()})",
        "Stop with Ctrl-C.",
    ]
    return "\n".join(lines)


def cmd_quickstart(args: argparse.Namespace) -> int:
    """Serve the quickstart config; without OPENAI_API_KEY, route to the fake upstream."""
    env = dict(os.environ)
    data_dir = Path(args.data_dir)
    if env.get("COSTPROXY_ADMIN_TOKEN"):  # the one that works: keep the file in step
        token_file = write_token(data_dir, env["COSTPROXY_ADMIN_TOKEN"])
    else:
        token_file = ensure_token(data_dir)
        env["COSTPROXY_ADMIN_TOKEN"] = token_file.read_text(encoding="utf-8").strip()
    fake_root = f"http://127.0.0.1:{args.fake_port}"
    fake_openai, fake_anthropic = not env.get("OPENAI_API_KEY"), not env.get("ANTHROPIC_API_KEY")
    use_fake = fake_openai or fake_anthropic
    if fake_openai:
        env["COSTPROXY_UPSTREAM_URL"] = fake_root + "/v1"
        upstream = (
            f"the bundled fake upstream at {fake_root}/v1 (OPENAI_API_KEY is not set: "
            "deterministic replies, real accounting)"
        )
    else:
        upstream = "OpenAI, with your OPENAI_API_KEY"
    if fake_anthropic:  # the Messages API's base URL is the API root
        env["COSTPROXY_ANTHROPIC_URL"] = fake_root
        claude = (
            f"the bundled fake upstream's Messages API at {fake_root} "
            "(ANTHROPIC_API_KEY is not set; docs/anthropic.md)"
        )
    else:
        claude = "Anthropic, with your ANTHROPIC_API_KEY (docs/anthropic.md)"
    config = load(args.config, env)
    # As `serve --port`: the listener moves, the config stays as the file says (a reload
    # compares the file with it, and would see a changed server section otherwise).
    port = args.port if args.port is not None else config.server.port
    sockets = listen_sockets(config, config.server.host, port)
    try:
        fake_socket = bind("127.0.0.1", args.fake_port) if use_fake else None
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    url = f"http://{config.server.host}:{port}"
    write_state(
        data_dir,
        QuickstartState(
            url, str(Path(args.config).resolve()), str(token_file.resolve()), os.getpid()
        ),
    )
    return serve_config(
        config,
        config_path=args.config,
        env=env,
        sockets=sockets,
        banner=banner(config, url, token_file, upstream, claude),
        fake_upstream=fake_socket,
    )


def add_quickstart_command(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    quick = sub.add_parser(
        "quickstart", help="run with the quickstart config (fake upstream if no key)"
    )
    quick.add_argument("--config", "-c", default="config/quickstart.yaml")
    quick.add_argument("--port", type=int, help="the proxy's port (default: from the config)")
    quick.add_argument(
        "--fake-port", type=int, default=9000, help="the fake upstream's port (default: 9000)"
    )
    quick.add_argument("--data-dir", default="data", help="admin token and state (default: data)")
    quick.set_defaults(func=cmd_quickstart)
    return quick
