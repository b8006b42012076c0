"""A proxy in front of the fake upstream's Messages API: the config the Anthropic
end-to-end tests share (prices from the catalogue, as a user's config would have them)."""

from __future__ import annotations

__all__ = ["anthropic_config"]


def anthropic_config(upstream_url: str, store: dict) -> dict:
    """Two `anthropic` providers on the fake upstream (its API root, as Anthropic's SDKs
    take a base URL), a route per model, and the stack's keys (tests/support/stack.py):
    ACME's, and the trusted backend key that names customers per request."""
    return {
        "store": store,
        "admin": {"token": "${T_ADMIN_TOKEN}"},
        "providers": {
            "anthropic": {
                "kind": "anthropic",
                "base_url": upstream_url,
                "api_key": "${T_UPSTREAM_KEY}",
                "forward_headers": ["x-mock-*"],  # the fake upstream's controls
            },
            "anthropic-backup": {
                "kind": "anthropic",
                "base_url": upstream_url,
                "api_key": "${T_UPSTREAM_KEY}",
                "forward_headers": ["x-mock-*"],  # the fake upstream's controls
            },
            "openai": {
                "base_url": upstream_url + "/v1",
                "api_key": "${T_UPSTREAM_KEY}",
                "forward_headers": ["x-mock-*"],
            },
        },
        "models": {
            "claude-sonnet-4-5": {
                "targets": [{"provider": "anthropic", "model": "claude-sonnet-4-5"}]
            },
            "claude-haiku-4-5": {
                "targets": [{"provider": "anthropic", "model": "claude-haiku-4-5"}]
            },
            # The first target answers 529 overloaded_error (the fake's "error529" models).
            "claude-fallback": {
                "targets": [
                    {"provider": "anthropic", "model": "claude-sonnet-4-5-error529"},
                    {"provider": "anthropic-backup", "model": "claude-haiku-4-5"},
                ],
                "backoff_base_s": 0.01,
            },
            "claude-close": {
                "targets": [{"provider": "anthropic", "model": "claude-haiku-4-5"}],
                "on_client_disconnect": "close",
            },
            "gpt-4o-mini": {"targets": [{"provider": "openai", "model": "gpt-4o-mini"}]},
        },
        "what_if": ["anthropic/claude-sonnet-4-5 -> openai/gpt-4o-mini"],
        "keys": [
            {"key": "${T_ACME_KEY}", "customer": "acme", "name": "acme-prod"},
            {"key": "${T_BACKEND_KEY}", "trusted": True, "name": "backend"},
            {"key": "${T_GLOBEX_KEY}", "customer": "globex", "name": "globex", "rpm": 3},
        ],
        "customers": {
            "thrifty": {"budgets": [{"period": "monthly", "limit_usd": "0.01"}]},
        },
    }
