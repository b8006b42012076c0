"""Failed authentication on every listener: refusing blocked addresses, counting failures.

Each place that checks a credential (the client API, /v1/models, the admin API,
/metrics) calls `refuse_blocked` before and `count_failure` when it fails; the rules
are in access.auth_failures, the settings in the config's `auth_failures` section.
"""

from __future__ import annotations

import logging
import math
import time
from functools import lru_cache

from aiohttp import web

from proxy.access.addresses import Network, client_address, trusted_networks
from proxy.access.auth_failures import BlockPolicy
from proxy.access.ratelimit import RateLimitError
from proxy.config import ServerConfig
from proxy.errors import AuthenticationError
from proxy.state import STATE

__all__ = ["AuthBlockedError", "address_of", "count_failure", "refuse_blocked"]

log = logging.getLogger("costproxy.access")


class AuthBlockedError(RateLimitError):
    code = "too_many_failed_authentications"


@lru_cache(maxsize=8)
def _trusted(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return trusted_networks(entries)


def address_of(request: web.Request) -> str:
    """The client's address (see `server.trusted_proxies`)."""
    settings: ServerConfig = request.app[STATE].config.server
    trusted = _trusted(tuple(settings.trusted_proxies)) if settings.trusted_proxies else ()
    return client_address(request.remote, request.headers.get("X-Forwarded-For"), trusted)


def refuse_blocked(request: web.Request, realm: str) -> None:
    """429 while the client's address is refused in `realm` after repeated failures."""
    state = request.app[STATE]
    if not state.auth_failures:  # nobody failed lately: nothing to look up (the hot path)
        return
    wait_s = state.auth_failures.blocked_s(realm, address_of(request), time.monotonic())
    if wait_s > 0:
        state.metrics.auth_blocked(realm)
        retry_after = max(1, math.ceil(wait_s))
        raise AuthBlockedError(
            f"Too many failed authentications from your address: retry after {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )


def count_failure(request: web.Request, realm: str, error: AuthenticationError) -> None:
    """One failed authentication of the client's address: counted, logged with the
    address, and perhaps the start of a block."""
    state = request.app[STATE]
    address = address_of(request)
    settings = state.config.auth_failures
    policy = BlockPolicy(
        settings.threshold, settings.window_s, settings.block_s, settings.max_block_s
    )
    state.metrics.auth_failed(error.code)
    block_s = state.auth_failures.failed(realm, address, time.monotonic(), policy)
    log.info("authentication failed (%s) on the %s API from %s", error.code, realm, address)
    if block_s:
        log.warning(
            "address %s refused on the %s API for %gs after %d or more failed authentications",
            address,
            realm,
            block_s,
            settings.threshold,
        )
