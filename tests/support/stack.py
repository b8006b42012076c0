"""The test stack's config and credentials: one place, so every test talks to the same setup."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from tests.support.procs import ServerProcess

__all__ = [
    "ADMIN_TOKEN",
    "ALTERNATIVES",
    "BACKEND_KEY",
    "METRICS_TOKEN",
    "SECRETS",
    "UPSTREAM_KEY",
    "WHAT_IF",
    "Stack",
    "base_config",
    "chat_status",
]

# Distinctive values so that a leak is easy to grep for in logs and responses.
UPSTREAM_KEY = "sk-upstream-SECRET-3f9a1c"
ACME_KEY = "sk-client-acme-SECRET-77d2"
GLOBEX_KEY = "sk-client-globex-SECRET-1b4e"
BACKEND_KEY = "sk-client-backend-SECRET-9c0d"
ADMIN_TOKEN = "admin-token-SECRET-5e6f7a8b9c"
METRICS_TOKEN = "metrics-token-SECRET-d4c3b2a1"
SECRETS = (UPSTREAM_KEY, ACME_KEY, GLOBEX_KEY, BACKEND_KEY, ADMIN_TOKEN, METRICS_TOKEN)

ENV = {
    "T_UPSTREAM_KEY": UPSTREAM_KEY,
    "T_ACME_KEY": ACME_KEY,
    "T_GLOBEX_KEY": GLOBEX_KEY,
    "T_BACKEND_KEY": BACKEND_KEY,
    "T_ADMIN_TOKEN": ADMIN_TOKEN,
    "T_METRICS_TOKEN": METRICS_TOKEN,
}

# USD per 1M tokens, as configured below (the tests compute costs from these literals).
PRICES = {
    "gpt-4o-mini": ("0.15", "0.075", "0.60"),
    "cheap-model": ("0.000333", "0.0001", "0.000777"),
}
# What-if alternatives and their prices, keyed "provider/model" like the price table.
ALTERNATIVES = {
    "rival/mini-like": ("0.1", "0.01", "0.4"),
    "rival/budget": ("0.000111", "0.000011", "0.000999"),  # odd digits: rounding shows
}
WHAT_IF = ["openai/gpt-4o-mini -> rival/mini-like", "* -> rival/budget"]


def base_config(upstream_url: str, store: dict) -> dict:
    return {
        "server": {"max_body_bytes": 64 * 1024},
        "store": store,
        "admin": {"token": "${T_ADMIN_TOKEN}"},
        "providers": {
            "openai": {
                "kind": "openai",
                "base_url": upstream_url + "/v1",
                "forward_headers": ["x-mock-*"],
                "api_key": "${T_UPSTREAM_KEY}",
            }
        },
        "models": {
            "gpt-4o-mini": {"targets": [{"provider": "openai", "model": "gpt-4o-mini"}]},
            "story": {"targets": [{"provider": "openai", "model": "cheap-model"}]},
            "gpt-4o": {"targets": [{"provider": "openai", "model": "gpt-4o"}]},
            "text-embedding-3-small": {
                "targets": [{"provider": "openai", "model": "text-embedding-3-small"}]
            },
            "mystery": {"targets": [{"provider": "openai", "model": "mystery-model-nousage"}]},
            "unpriced": {"targets": [{"provider": "openai", "model": "no-price-model"}]},
        },
        "prices": {
            key: {"input": i, "cached_input": c, "output": o}
            for key, (i, c, o) in [
                *((f"openai/{model}", p) for model, p in PRICES.items()),
                *ALTERNATIVES.items(),
            ]
        },
        "what_if": WHAT_IF,
        "keys": [
            {"key": "${T_ACME_KEY}", "customer": "acme", "name": "acme-prod"},
            {"key": "${T_GLOBEX_KEY}", "customer": "globex"},
            {"key": "${T_BACKEND_KEY}", "trusted": True, "name": "backend"},
        ],
    }


async def chat_status(http: aiohttp.ClientSession, url: str, key: str = ACME_KEY) -> int:
    """The status of a one-line chat request to the proxy at `url`, with `key`."""
    async with http.post(
        url + "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}"},
    ) as resp:
        await resp.read()
        return resp.status


@dataclass
class Stack:
    """A running proxy in front of the fake upstream."""

    proxy: ServerProcess
    upstream: ServerProcess
    backend: str

    @property
    def url(self) -> str:
        return self.proxy.url

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    async def spend(self, session: aiohttp.ClientSession, **params: str) -> dict:
        async with session.get(
            self.url + "/admin/v1/spend", params=params, headers=self.admin_headers
        ) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def usage(self, session: aiohttp.ClientSession, request_id: str) -> dict:
        async with session.get(
            f"{self.url}/admin/v1/usage/{request_id}", headers=self.admin_headers
        ) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def upstream_requests(self, session: aiohttp.ClientSession) -> list[dict]:
        async with session.get(self.upstream.url + "/_mock/requests") as resp:
            return await resp.json()

    async def clear_upstream_requests(self, session: aiohttp.ClientSession) -> None:
        async with session.delete(self.upstream.url + "/_mock/requests") as resp:
            assert resp.status in (200, 204)
