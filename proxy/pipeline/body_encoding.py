"""Compressed request bodies: which encodings are taken, and decoding one within a bound.

A compressed body is a small upload that the proxy would inflate in its own memory (a
200 KB gzip of zeros is 200 MB), so it is refused (415) unless the operator turns on
`server.accept_compressed_bodies`; then its *decoded* size is bounded by
`server.max_body_bytes`: decoding stops one byte past it. Pure: no I/O.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

from proxy.errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError

__all__ = ["ENCODINGS", "body_encoding", "inflate"]

# Content-Encoding -> zlib's window bits for it. gzip may hold several members.
ENCODINGS: Mapping[str, int] = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,  # HTTP's "deflate" is the zlib format
}


def body_encoding(headers: Mapping[str, str], *, accepted: bool) -> str | None:
    """The body's encoding, None when plain; 415 when compressed bodies are not accepted
    or the encoding is not one the proxy decodes."""
    value = headers.get("Content-Encoding", "").strip().lower()
    if value in ("", "identity"):
        return None
    if not accepted:
        raise UnsupportedMediaTypeError(
            f"Compressed request bodies (Content-Encoding: {value[:32]}) are not accepted; "
            "send the body uncompressed.",
            param="Content-Encoding",
        )
    if value not in ENCODINGS:
        raise UnsupportedMediaTypeError(
            f"Content-Encoding {value[:32]!r} is not supported: use "
            f"{', '.join(ENCODINGS)} or none.",
            param="Content-Encoding",
        )
    return value


def inflate(data: bytes, encoding: str, max_bytes: int) -> bytes:
    """`data` decoded, never holding more than max_bytes + 1 bytes of output: 413 past
    `max_bytes`, 400 when the data is not valid for its encoding."""
    pieces: list[bytes] = []
    size = 0
    rest = data
    while rest:
        decoder = zlib.decompressobj(ENCODINGS[encoding])
        try:
            piece = decoder.decompress(rest, max_bytes - size + 1)
        except zlib.error:
            raise _invalid(encoding) from None
        size += len(piece)
        if size > max_bytes:
            raise PayloadTooLargeError(
                f"The request body is larger than the limit of {max_bytes} bytes once decompressed."
            )
        if not decoder.eof:
            raise _invalid(encoding)  # truncated
        pieces.append(piece)
        rest = decoder.unused_data
        if rest and encoding == "deflate":
            raise _invalid(encoding)  # one zlib stream only; gzip may have more members
    return b"".join(pieces)


def _invalid(encoding: str) -> BadRequestError:
    return BadRequestError(
        f"The request body is not valid {encoding} data.", code="invalid_body_encoding"
    )
