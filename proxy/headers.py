"""Which headers cross the proxy, in each direction: by allowlist. Pure.

Client headers reach the provider only when the provider's API defines them (each kind
lists its own) or the config adds them (`providers.<name>.forward_headers`,
`models.<route>.forward_headers`): a gateway or upstream that honours some header
(`Helicone-Auth`, `X-Portkey-Api-Key`, `OpenAI-Beta`, `X-Forwarded-For`, …) cannot be
steered by a client that sends it. Provider headers reach the client only when they
describe the answer itself: its content, the provider's request id, `Retry-After`
(extendable with `providers.<name>.return_headers`); the organisation's own
`openai-organization`, `openai-project`, `x-ratelimit-*` and CORS headers stay behind.
The rate-limit headers a client sees are the proxy's, describing its own limits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "NEVER_FORWARDED",
    "NEVER_RETURNED",
    "NO_HEADERS",
    "RESPONSE_HEADERS",
    "HeaderAllowlist",
    "check_header_patterns",
]

# Headers no config may let through, because the proxy itself owns them: credentials and
# the proxy's attribution headers (upstream), framing and cookies (both ways).
NEVER_FORWARDED = frozenset(
    {
        "authorization", "proxy-authorization", "api-key", "x-api-key", "cookie", "host",
        "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
        "content-length", "content-encoding", "content-type", "accept-encoding",
        "x-customer-id", "x-end-user-id", "x-cost-tags", "x-request-id",
        "openai-organization", "openai-project",
    }
)  # fmt: skip
NEVER_RETURNED = frozenset(
    {
        "set-cookie", "connection", "keep-alive", "te", "trailer", "transfer-encoding",
        "upgrade", "content-length", "content-encoding", "proxy-authenticate", "x-request-id",
    }
)  # fmt: skip
# What every kind returns: the answer's content headers and when to retry. The provider's
# X-Request-Id is returned as x-upstream-request-id (the proxy's own id takes its name).
RESPONSE_HEADERS = ("content-type", "content-language", "content-disposition", "retry-after")

_TOKEN = re.compile(r"^[!#$%&'+.^_`|~0-9A-Za-z-]+\*?$")


@dataclass(frozen=True, slots=True)
class HeaderAllowlist:
    """Header names (lower case) and name prefixes (from patterns such as `x-mock-*`)."""

    names: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()

    @classmethod
    def of(cls, *patterns: Iterable[str]) -> HeaderAllowlist:
        names: set[str] = set()
        prefixes: set[str] = set()
        for group in patterns:
            for pattern in group:
                lowered = pattern.lower()
                if lowered.endswith("*"):
                    prefixes.add(lowered[:-1])
                else:
                    names.add(lowered)
        return cls(frozenset(names), tuple(sorted(prefixes)))

    def __or__(self, other: HeaderAllowlist) -> HeaderAllowlist:
        if not other.names and not other.prefixes:
            return self
        return HeaderAllowlist(
            self.names | other.names, tuple(sorted({*self.prefixes, *other.prefixes}))
        )

    def allows(self, lowered: str) -> bool:
        """Whether the header named `lowered` (lower case) may pass."""
        return lowered in self.names or (bool(self.prefixes) and lowered.startswith(self.prefixes))


NO_HEADERS = HeaderAllowlist()


def check_header_patterns(patterns: list[str], never: frozenset[str]) -> list[str]:
    """Config patterns: header names, or a prefix ending in `*`; none the proxy owns."""
    for pattern in patterns:
        if not _TOKEN.match(pattern) or pattern == "*":
            raise ValueError(f"{pattern!r} is not a header name (or a prefix ending in '*')")
        lowered = pattern.lower()
        owned = sorted(
            h
            for h in never
            if h == lowered or (lowered.endswith("*") and h.startswith(lowered[:-1]))
        )
        if owned:
            raise ValueError(
                f"{pattern!r} would pass {', '.join(owned)}, which the proxy never lets through"
            )
    return patterns
