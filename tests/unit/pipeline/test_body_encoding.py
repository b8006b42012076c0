"""Compressed request bodies: which encodings are taken, and decoding within a bound."""

from __future__ import annotations

import gzip
import zlib

import pytest

from proxy.errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError
from proxy.pipeline.body_encoding import body_encoding, inflate

DATA = b'{"model": "m", "messages": []}' * 10


@pytest.mark.parametrize(
    ("header", "accepted", "expected"),
    [
        (None, False, None),
        ("identity", False, None),
        (" GZIP ", True, "gzip"),
        ("x-gzip", True, "x-gzip"),
        ("deflate", True, "deflate"),
    ],
)
def test_encodings_taken(header: str | None, accepted: bool, expected: str | None) -> None:
    headers = {} if header is None else {"Content-Encoding": header}
    assert body_encoding(headers, accepted=accepted) == expected


@pytest.mark.parametrize(
    ("header", "accepted"), [("gzip", False), ("br", True), ("zstd", True), ("gzip, br", True)]
)
def test_encodings_refused(header: str, accepted: bool) -> None:
    with pytest.raises(UnsupportedMediaTypeError) as caught:
        body_encoding({"Content-Encoding": header}, accepted=accepted)
    assert caught.value.status == 415
    assert caught.value.param == "Content-Encoding"


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", gzip.compress(DATA)),
        ("gzip", gzip.compress(DATA[:7]) + gzip.compress(DATA[7:])),  # two members
        ("deflate", zlib.compress(DATA)),
    ],
)
def test_inflate(encoding: str, body: bytes) -> None:
    assert inflate(body, encoding, len(DATA)) == DATA


@pytest.mark.parametrize(
    ("encoding", "body", "error"),
    [
        ("gzip", gzip.compress(DATA), PayloadTooLargeError),  # one byte over the bound
        ("gzip", gzip.compress(DATA)[:-9], BadRequestError),  # truncated
        ("gzip", b"plain text", BadRequestError),
        ("deflate", zlib.compress(DATA) + b"junk", BadRequestError),
        ("deflate", gzip.compress(DATA), BadRequestError),
    ],
)
def test_inflate_refuses(encoding: str, body: bytes, error: type[Exception]) -> None:
    limit = len(DATA) - 1 if error is PayloadTooLargeError else len(DATA)
    with pytest.raises(error):
        inflate(body, encoding, limit)


def test_a_bomb_is_stopped_at_the_bound_without_decoding_it_all() -> None:
    bomb = gzip.compress(bytes(50 * 1024 * 1024))
    with pytest.raises(PayloadTooLargeError):
        inflate(bomb, "gzip", 1024)
