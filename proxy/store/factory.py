"""The store a config names, built but not opened."""

from __future__ import annotations

from proxy.config import StoreConfig
from proxy.store.base import Store

__all__ = ["make_store"]


def make_store(config: StoreConfig) -> Store:
    # Imported here so that the embedded store needs no redis client, and vice versa.
    if config.backend == "redis":
        from proxy.store.redis import RedisStore

        return RedisStore(
            config.redis_url,
            key_prefix=config.key_prefix,
            usage_log_maxlen=config.usage_log_max,
            retention_days=config.retention_days,
            request_index_days=config.request_index_days,
            cluster_nodes=config.redis_cluster_nodes,
        )
    from proxy.store.sqlite import SQLiteStore

    return SQLiteStore(config.sqlite_path, usage_log_max_rows=config.usage_log_max)
