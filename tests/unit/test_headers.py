"""Header allowlists: matching, and the config patterns that are refused."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from proxy.config import parse_config
from proxy.errors import ConfigError
from proxy.headers import NEVER_FORWARDED, HeaderAllowlist, check_header_patterns
from proxy.pipeline.request import upstream_headers

OPENAI = HeaderAllowlist.of(["Accept", "Idempotency-Key"])


@pytest.mark.parametrize(
    ("allowlist", "name", "allowed"),
    [
        (OPENAI, "accept", True),
        (OPENAI, "idempotency-key", True),
        (OPENAI, "openai-beta", False),
        (OPENAI | HeaderAllowlist.of(["OpenAI-Beta"]), "openai-beta", True),
        (HeaderAllowlist.of(["x-mock-*"]), "x-mock-status", True),
        (HeaderAllowlist.of(["x-mock-*"]), "x-mocked", False),
        (HeaderAllowlist(), "accept", False),
    ],
)
def test_allows(allowlist: HeaderAllowlist, name: str, allowed: bool) -> None:
    assert allowlist.allows(name) is allowed


def test_upstream_headers_take_the_allowed_and_the_providers_win() -> None:
    client = CIMultiDict(
        {
            "Authorization": "Bearer client",
            "Idempotency-Key": "k",
            "Helicone-Auth": "x",
            "Connection": "Idempotency-Key",  # made hop-by-hop by the client: stays here
            "Accept": "application/json",
        }
    )
    sent = upstream_headers(client, {"Authorization": "Bearer provider"}, OPENAI)
    assert dict(sent) == {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "Authorization": "Bearer provider",
    }


@pytest.mark.parametrize(
    "pattern", ["Authorization", "x-customer-id", "X-*", "*", "a b", "content-*", "Cookie"]
)
def test_patterns_the_proxy_owns_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError):
        check_header_patterns([pattern], NEVER_FORWARDED)


def test_config_names_the_refused_header() -> None:
    config = {
        "providers": {"p": {"base_url": "http://127.0.0.1:1", "forward_headers": ["X-Api-Key"]}},
        "models": {"m": {"targets": [{"provider": "p", "model": "m"}]}},
    }
    with pytest.raises(ConfigError, match=r"providers\.p\.forward_headers"):
        parse_config(config)
