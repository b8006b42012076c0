"""What the fake upstream does for one request: server-wide options plus per-request overrides.

Overrides come from `x-mock-*` request headers (the proxy forwards client headers) and, as
a shortcut usable from any client, from substrings of the model name ("nousage",
"error500"). Pure: no I/O, so the rules are testable with plain tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from proxy.mock_upstream.payloads import NO_PARTS, Usage, UsageParts

__all__ = ["Behaviour", "MockOptions", "MockRequestError", "resolve_behaviour"]

_MAX_CHUNKS = 10_000
_MODEL_ERROR = re.compile(r"error(\d{3})")


class MockRequestError(ValueError):
    """The request cannot be served as asked; answered with a 400 in OpenAI's error shape."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True, slots=True)
class MockOptions:
    """Defaults applied to every request; `x-mock-*` headers override them per request."""

    latency_ms: float = field(default=0.0, metadata={"help": "delay before response headers"})
    chunk_delay_ms: float = field(default=0.0, metadata={"help": "delay between stream chunks"})
    chunks: int = field(default=8, metadata={"help": "content pieces in a reply"})
    no_usage: bool = field(default=False, metadata={"help": "never report usage"})
    cached_tokens: int = field(default=0, metadata={"help": "cached prompt tokens to report"})
    reasoning_tokens: int = field(default=0, metadata={"help": "reasoning tokens to report"})

    def __post_init__(self) -> None:
        for option in fields(self):
            if getattr(self, option.name) < 0:
                raise ValueError(f"MockOptions.{option.name} must be >= 0")
        if self.chunks > _MAX_CHUNKS:
            raise ValueError(f"MockOptions.chunks must be <= {_MAX_CHUNKS}")


@dataclass(frozen=True, slots=True)
class Behaviour:
    """Everything one request's reply depends on besides its body."""

    latency_s: float = 0.0
    chunk_delay_s: float = 0.0
    chunks: int = 8
    no_usage: bool = False
    forced_usage: Usage | None = None
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    status: int | None = None
    html_error: bool = False
    fail_after: int | None = None
    truncate_after: int | None = None  # clean end of body halfway through this piece
    malformed: bool = False
    fixed_ids: bool = False  # same id and `created` every time: byte-exact comparisons
    parts: UsageParts = NO_PARTS  # cache writes, audio, images, searches to report
    service_tier: str | None = None  # None: as the request asked ("auto" → "default")
    stream_error: str | None = None  # Messages streams: end in an `error` event of this type

    @classmethod
    def from_options(cls, options: MockOptions) -> Behaviour:
        return cls(
            latency_s=options.latency_ms / 1000,
            chunk_delay_s=options.chunk_delay_ms / 1000,
            chunks=options.chunks,
            no_usage=options.no_usage,
            cached_tokens=options.cached_tokens,
            reasoning_tokens=options.reasoning_tokens,
        )

    def usage(self, prompt_tokens: int) -> Usage | None:
        """The usage to report, or None when this reply must carry none."""
        if self.no_usage:
            return None
        if self.forced_usage is not None:
            return replace(self.forced_usage, parts=self.parts)
        # A real upstream never reports more cached tokens than prompt tokens; a proxy
        # billing "prompt - cached" at the full rate must never see a negative remainder.
        # Parts (audio, images, cache writes) are content the reply "saw" or produced
        # besides the text: they add to their totals, as providers count them.
        prompt = prompt_tokens + self.parts.input
        return Usage(
            prompt_tokens=prompt,
            cached_tokens=min(self.cached_tokens, prompt - self.parts.input),
            completion_tokens=self.chunks + self.reasoning_tokens + self.parts.output,
            reasoning_tokens=self.reasoning_tokens,
            parts=self.parts,
        )

    def tier(self, payload: Mapping[str, Any]) -> str:
        """The service tier the reply names: forced, else the one the request asked for
        (OpenAI answers "auto", or no request at all, with "default")."""
        if self.service_tier is not None:
            return self.service_tier
        asked = payload.get("service_tier")
        return asked if isinstance(asked, str) and asked not in ("", "auto") else "default"


def _number(header: str, value: str, kind: Callable[[str], Any], high: float) -> Any:
    try:
        number = kind(value)
    except ValueError:
        raise MockRequestError(f"{header} must be a number, got {value!r}") from None
    if not 0 <= number <= high:
        raise MockRequestError(f"{header} must be between 0 and {high}, got {value!r}")
    return number


def _flag(header: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no", ""):
        return False
    raise MockRequestError(f"{header} must be 1 or 0, got {value!r}")


def _usage(header: str, value: str) -> Usage:
    parts = value.split(",")
    if len(parts) != 4:
        raise MockRequestError(f"{header} must be IN,CACHED,OUT,REASONING, got {value!r}")
    # Deliberately not checked for consistency (cached <= in, reasoning <= out): tests use
    # this header to feed the proxy exactly the odd usage a real upstream might send.
    prompt, cached, completion, reasoning = (_number(header, p, int, 10**12) for p in parts)
    return Usage(prompt, cached, completion, reasoning)


_PARTS = {f.name for f in fields(UsageParts)}


def _parts(header: str, value: str) -> UsageParts:
    """ "cache_write_5m=100,input_audio=20,web_searches=2" → UsageParts."""
    counts: dict[str, int] = {}
    for item in value.split(","):
        name, eq, number = item.strip().partition("=")
        if not eq or name not in _PARTS:
            raise MockRequestError(
                f"{header} must be NAME=COUNT pairs, NAME one of {', '.join(sorted(_PARTS))}; "
                f"got {item!r}"
            )
        counts[name] = _number(header, number, int, 10**12)
    return UsageParts(**counts)


def _tier(header: str, value: str) -> str:
    if not value.strip() or len(value) > 64:
        raise MockRequestError(f"{header} must be a service tier name, got {value!r}")
    return value.strip()


def _error_type(header: str, value: str) -> str:
    if not re.fullmatch(r"[a-z_]{1,64}", value.strip()):
        raise MockRequestError(f"{header} must be an error type such as overloaded_error")
    return value.strip()


def _status(header: str, value: str) -> int:
    status = _number(header, value, int, 599)
    if status < 400:
        raise MockRequestError(f"{header} must be an error status 400-599, got {value!r}")
    return status


# header name -> (Behaviour field, parser of the header value)
_HEADERS: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "x-mock-latency-ms": ("latency_s", lambda h, v: _number(h, v, float, 600_000) / 1000),
    "x-mock-chunk-delay-ms": ("chunk_delay_s", lambda h, v: _number(h, v, float, 60_000) / 1000),
    "x-mock-chunks": ("chunks", lambda h, v: _number(h, v, int, _MAX_CHUNKS)),
    "x-mock-no-usage": ("no_usage", _flag),
    "x-mock-usage": ("forced_usage", _usage),
    "x-mock-usage-parts": ("parts", _parts),
    "x-mock-service-tier": ("service_tier", _tier),
    "x-mock-status": ("status", _status),
    "x-mock-html-error": ("html_error", _flag),
    "x-mock-fail-after": ("fail_after", lambda h, v: _number(h, v, int, _MAX_CHUNKS)),
    "x-mock-truncate-after": ("truncate_after", lambda h, v: _number(h, v, int, _MAX_CHUNKS)),
    "x-mock-malformed": ("malformed", _flag),
    "x-mock-fixed-ids": ("fixed_ids", _flag),
    "x-mock-stream-error": ("stream_error", _error_type),
}


def resolve_behaviour(base: Behaviour, headers: Mapping[str, str], model: str) -> Behaviour:
    """`base` adjusted by the model name, then by `x-mock-*` headers (headers win)."""
    changes: dict[str, Any] = {}
    if "nousage" in model:
        changes["no_usage"] = True
    for tier in ("flex", "priority"):  # e.g. "gpt-5-as-flex": a reply on that tier
        if f"as-{tier}" in model:
            changes["service_tier"] = tier
    if "error" in model and (match := _MODEL_ERROR.search(model)):
        changes["status"] = _status("model name", match.group(1))
    for name, value in headers.items():
        lowered = name.lower()
        if not lowered.startswith("x-mock-"):
            continue
        known = _HEADERS.get(lowered)
        if known is None:
            # A typo in a test header would otherwise silently test the default path.
            raise MockRequestError(f"unknown header {name}; known: {', '.join(_HEADERS)}")
        attribute, parse = known
        changes[attribute] = parse(name, value)
    return replace(base, **changes) if changes else base
