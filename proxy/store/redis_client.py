"""The type of the Redis client the Redis store's modules share."""

from __future__ import annotations

from typing import Any

__all__ = ["RedisClient"]

# redis-py types every reply as `bytes | str` (and its cluster client apart from `Redis`),
# whatever `decode_responses` says. This store always decodes, so a client is `RedisClient`:
# commands unchecked, replies read as the str they are.
RedisClient = Any
