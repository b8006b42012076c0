"""Demo secrets beside a real provider key: refused when a config loads. Pure.

The quickstart, the compose stack and the README publish secrets that make a first run
work with no setup: a demo admin token, demo client keys (one of them trusted, so it may
name any customer), Grafana's admin password. Anyone can read them here. In front of the
bundled fake upstream they guard nothing worth guarding; in front of a provider key they
would let anyone who reaches the proxy spend on it. So a config in which some provider
has an API key and some secret is still a published one does not load (serve,
check-config, reload), and the message names the variable to set.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["PUBLISHED", "published_secret_problems", "published_secrets_refusal"]

# Every default secret in docker-compose.yml, config/ and the README (a test holds this
# list to those files).
PUBLISHED = frozenset(
    {
        "demo-admin-token-change-me",
        "sk-demo-client-key-change-me",
        "sk-demo-acme",
        "sk-demo-globex",
        "sk-demo-backend",
        "admin",  # Grafana's
    }
)

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def _secrets(config: Mapping[str, Any]) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """(path, value) of every secret a config holds besides the providers' keys."""
    for section in ("admin", "metrics"):
        yield (section, "token"), _get(config, (section, "token"))
    for i, key in enumerate(config.get("keys") or []):
        if isinstance(key, Mapping):
            yield ("keys", i, "key"), key.get("key")
    webhooks = _get(config, ("alerts", "webhooks")) or []
    for i, hook in enumerate(webhooks if isinstance(webhooks, list) else []):
        if isinstance(hook, Mapping):
            yield ("alerts", "webhooks", i, "secret"), hook.get("secret")
    stack = config.get("stack_secrets") or {}
    for name, value in stack.items() if isinstance(stack, Mapping) else ():
        yield ("stack_secrets", name), value


def _get(data: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        if isinstance(part, int):
            data = data[part] if isinstance(data, list) and part < len(data) else None
        else:
            data = data.get(part) if isinstance(data, Mapping) else None
    return data


def _keyed_providers(config: Mapping[str, Any]) -> list[str]:
    providers = config.get("providers") or {}
    return sorted(
        name
        for name, provider in (providers.items() if isinstance(providers, Mapping) else ())
        if isinstance(provider, Mapping) and provider.get("api_key")
    )


def published_secret_problems(raw: Mapping[str, Any], resolved: Mapping[str, Any]) -> list[str]:
    """Each published secret `resolved` (the config after ${VAR} interpolation) holds
    beside a provider key, with the variable to set (read from `raw`, the config as
    written); empty when there is none or no provider has a key."""
    keyed = _keyed_providers(resolved)
    if not keyed:
        return []
    problems = []
    for path, value in _secrets(resolved):
        if not isinstance(value, str) or value not in PUBLISHED:
            continue
        where = ".".join(str(part) for part in path)
        if path[0] == "stack_secrets":
            variables = [str(path[1])]
        else:
            written = _get(raw, path)
            variables = _VARIABLE.findall(written) if isinstance(written, str) else []
        fix = (
            f"set {' or '.join(variables)} to a secret of your own"
            if variables
            else "replace it in the config with a secret of your own"
        )
        problems.append(
            f"{where} is a published demo secret and provider {keyed[0]!r} has a real API "
            f"key: {fix}"
        )
    return problems


def published_secrets_refusal(raw: Mapping[str, Any], resolved: Mapping[str, Any]) -> str | None:
    """Why the config may not load, or None (see published_secret_problems)."""
    problems = published_secret_problems(raw, resolved)
    if not problems:
        return None
    header = (
        "refusing the demo secrets this repository publishes (anyone can read them) "
        "beside a real provider key"
    )
    return "\n  ".join([header, *problems])
