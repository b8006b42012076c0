"""Reading and checking the client's request, and shaping the one sent upstream."""

from __future__ import annotations

import json
from collections.abc import Mapping

import orjson
from aiohttp import web
from multidict import CIMultiDict

from proxy.errors import BadRequestError, PayloadTooLargeError
from proxy.headers import HeaderAllowlist
from proxy.pipeline.body_encoding import body_encoding, inflate

__all__ = [
    "check_payload",
    "has_duplicate_model",
    "read_payload",
    "upstream_body",
    "upstream_headers",
]

# Which top-level fields each endpoint requires, and the JSON types the proxy relies on.
_REQUIRED: dict[str, tuple[str, type | tuple[type, ...]]] = {
    "chat.completions": ("messages", list),
    "completions": ("prompt", (str, list)),
    "embeddings": ("input", (str, list)),
    "responses": ("input", (str, list)),
}
_INT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens", "n")
# No model takes more (APIs parse these as 32-bit integers); past it a value is a mistake,
# or an attempt to overflow the budget reservation, which multiplies it by a price.
MAX_INT_FIELD = 2**31 - 1
_STREAMING = frozenset({"chat.completions", "completions", "responses"})
_USAGE_OPTION = frozenset({"chat.completions", "completions"})


async def read_payload(
    request: web.Request, max_bytes: int, *, accept_compressed: bool = False
) -> tuple[bytes, dict]:
    """The raw body and its parsed JSON object; parsed once for the whole request (its
    API checks the fields: apis.Api.check_payload).

    A compressed body (only with `accept_compressed`) is decoded here, within max_bytes:
    the server runs with aiohttp's own decompression off (see server.serve), so what
    `read()` returns is what the client sent.
    """
    encoding = body_encoding(request.headers, accepted=accept_compressed)
    if request.content_length is not None and request.content_length > max_bytes:
        raise _too_large(max_bytes)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(max_bytes) from None
    if encoding is not None:
        raw = inflate(raw, encoding, max_bytes)
    if not raw:
        raise BadRequestError("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(
            f"The request body is not valid JSON: {exc}", code="invalid_json"
        ) from None
    if not isinstance(payload, dict):
        raise BadRequestError("The request body must be a JSON object.", code="invalid_json")
    return raw, payload


def _too_large(max_bytes: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"The request body is larger than the limit of {max_bytes} bytes.")


def check_payload(endpoint: str, payload: dict) -> None:
    """The types the proxy itself relies on in an OpenAI-API request; everything else is
    the upstream's to judge."""
    model = payload.get("model")
    if model is None:
        raise BadRequestError(
            "You must provide a model parameter.", code="missing_model", param="model"
        )
    if not isinstance(model, str) or not model:
        raise BadRequestError(
            "'model' must be a non-empty string.", code="invalid_type", param="model"
        )
    field, kind = _REQUIRED[endpoint]
    if field not in payload:
        raise BadRequestError(
            f"Missing required parameter: '{field}'.",
            code="missing_required_parameter",
            param=field,
        )
    if not isinstance(payload[field], kind):
        raise BadRequestError(f"'{field}' has the wrong type.", code="invalid_type", param=field)
    stream = payload.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise BadRequestError("'stream' must be a boolean.", code="invalid_type", param="stream")
    if stream and endpoint not in _STREAMING:
        raise BadRequestError(
            f"'stream' is not supported on {endpoint}.", code="invalid_value", param="stream"
        )
    options = payload.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise BadRequestError(
            "'stream_options' must be an object.", code="invalid_type", param="stream_options"
        )
    for name in _INT_FIELDS:
        value = payload.get(name)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 0
        ):
            raise BadRequestError(
                f"'{name}' must be a non-negative integer.", code="invalid_type", param=name
            )
        if value is not None and value > MAX_INT_FIELD:
            raise BadRequestError(
                f"'{name}' must be at most {MAX_INT_FIELD}.",
                code="integer_above_max_value",
                param=name,
            )


def has_duplicate_model(raw: bytes) -> bool:
    """Whether the body's top-level object names `model` more than once.

    orjson keeps the last of duplicate keys, and the proxy routes and bills that one;
    an upstream whose parser keeps the first would serve another model than the one
    billed, so such a body is sent re-serialised, with one `model`. Only bodies with
    two or more `"model"` strings anywhere (a tool schema may have such a property) are
    parsed again, keeping each object's pairs.
    """
    if raw.count(b'"model"') < 2:
        return False
    top: list[list[tuple[str, object]]] = [[]]

    def keep_pairs(pairs: list[tuple[str, object]]) -> dict:
        top[0] = pairs  # objects close inside out: the top-level one is the last
        return dict(pairs)

    try:
        json.loads(raw, object_pairs_hook=keep_pairs)
    except (ValueError, RecursionError):
        return True  # read differently than orjson did: send what orjson read
    return sum(1 for key, _ in top[0] if key == "model") > 1


def upstream_body(
    raw: bytes, payload: dict, endpoint: str, upstream_model: str, *, duplicate_model: bool
) -> tuple[bytes, bool]:
    """The body to send upstream, and whether the proxy asked for stream usage itself.

    Only `model` and, for streams, `stream_options.include_usage` may change; when
    neither does, and the body names its model once, the client's bytes go upstream
    untouched. Otherwise it is re-serialised with exactly one `model`: the target's.
    """
    injected = False
    changed = duplicate_model
    if payload.get("stream") is True and endpoint in _USAGE_OPTION:
        options = payload.get("stream_options") or {}
        if options.get("include_usage") is not True:
            payload = {**payload, "stream_options": {**options, "include_usage": True}}
            injected = changed = True
    if payload["model"] != upstream_model:
        payload = {**payload, "model": upstream_model}
        changed = True
    if not changed:
        return raw, injected
    try:
        return orjson.dumps(payload), injected
    except orjson.JSONEncodeError:  # orjson reads 1024 levels deep but writes only 254
        raise BadRequestError(
            "The request body is nested too deeply.", code="invalid_json"
        ) from None


def upstream_headers(
    client_headers: Mapping[str, str],
    provider_headers: dict[str, str],
    allowed: HeaderAllowlist,
    defaults: Mapping[str, str] | None = None,
) -> CIMultiDict[str]:
    """The headers of an upstream request: the client's that `allowed` lets through (an
    allowlist: see proxy.headers), the content type, the provider's own (its key, and the
    config's `headers`, which win); then `defaults` for what none of these set (e.g.
    Anthropic's `anthropic-version`)."""
    headers: CIMultiDict[str] = CIMultiDict()
    connection_listed: set[str] | None = None
    for name, value in client_headers.items():
        lowered = name.lower()
        if not allowed.allows(lowered):
            continue
        if connection_listed is None:  # a header the client made hop-by-hop stays here
            connection_listed = {
                token.strip().lower() for token in client_headers.get("Connection", "").split(",")
            }
        if lowered not in connection_listed:
            headers.add(name, value)
    headers["Content-Type"] = "application/json"
    headers.update(provider_headers)
    for name, value in (defaults or {}).items():
        headers.setdefault(name, value)
    return headers
