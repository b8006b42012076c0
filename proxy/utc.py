"""UTC time as every output writes it: the admin API, exports, webhooks and logs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["iso_utc"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_utc(ms: int) -> str:
    """UTC epoch milliseconds → ISO-8601 to the second with "Z": 2026-11-28T12:00:00Z.
    (Records keep their milliseconds in `ts_ms`.)"""
    moment = _EPOCH + timedelta(milliseconds=ms)  # exact: no float seconds
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
