"""accounting.media: image sizes from real files' headers, OpenAI's image-token rule on
its own worked examples, audio durations, and parts of every shape."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest

from proxy.accounting import media
from tests.support.recordings import recording

IMAGES = Path(__file__).resolve().parents[2] / "fixtures" / "images"


def data_url(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64," + base64.b64encode(data).decode()


PNG_URL = data_url((IMAGES / "python.png").read_bytes())


@pytest.mark.parametrize("name", ["python.png", "python.jpg", "python.gif", "python.webp"])
def test_image_size_of_real_files(name: str) -> None:
    assert media.image_size((IMAGES / name).read_bytes()) == (16, 16)  # as file(1) says


def test_a_jpeg_size_after_a_large_segment() -> None:
    # The real JPEG with a 60 KB APP1 segment (EXIF and thumbnails are stored there)
    # inserted after its SOI marker: the size sits after it, read by walking segments.
    jpeg = (IMAGES / "python.jpg").read_bytes()
    app1 = b"\xff\xe1" + struct.pack(">H", 60_002) + b"\x00" * 60_000
    big = jpeg[:2] + app1 + jpeg[2:]
    assert media.image_size(big) == (16, 16)
    part = {"type": "image_url", "image_url": {"url": data_url(big, "image/jpeg")}}
    assert media.image_part_tokens(part) == 85 + 170


@pytest.mark.parametrize(
    "data",
    [b"", b"GIF8", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0\x00", b"RIFF\x00\x00\x00\x00WEBPVP8Z",
     b"not an image at all"],
)  # fmt: skip
def test_image_size_of_other_bytes_is_none(data: bytes) -> None:
    assert media.image_size(data) is None


# OpenAI's vision guide, "Calculating costs": its worked examples, and the rule's edges.
@pytest.mark.parametrize(
    ("width", "height", "detail", "tokens"),
    [
        (1024, 1024, "high", 765),  # scaled to 768 x 768: 4 tiles
        (2048, 4096, "high", 1105),  # to 1024 x 2048, then 768 x 1536: 6 tiles
        (4096, 8192, "low", 85),
        (16, 16, "auto", 255),  # never scaled up: 1 tile
        (512, 512, "high", 255),
        (513, 512, "high", 425),
        (768, 1536, "high", 1105),
        (3000, 1000, "high", 85 + 170 * 8),  # 2048 x 683 (shortest under 768): 4 x 2 tiles
    ],
)
def test_openai_image_token_rule(width: int, height: int, detail: str, tokens: int) -> None:
    assert media.image_tokens(width, height, detail) == tokens


@pytest.mark.parametrize(
    ("part", "tokens"),
    [
        pytest.param(
            {"type": "image_url", "image_url": {"url": PNG_URL}},
            255,
            id="chat-inline-png",
        ),
        pytest.param(
            {"type": "input_image", "image_url": data_url((IMAGES / "python.gif").read_bytes()),
             "detail": "high"},
            255,
            id="responses-inline-gif",
        ),
        pytest.param(
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            765,
            id="url-counts-as-1024-square",
        ),
        pytest.param(
            {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}},
            85,
            id="url-low-detail",
        ),
        pytest.param({"type": "input_image", "file_id": "file-1"}, 765, id="file-id"),
        pytest.param(
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,!!!notbase64"}},
            765,
            id="undecodable",
        ),
    ],
)  # fmt: skip
def test_image_part_tokens(part: dict, tokens: int) -> None:
    assert media.image_part_tokens(part) == tokens


def wav(seconds: float, rate: int = 16_000) -> bytes:
    data = b"\x00\x00" * int(rate * seconds)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
        + b"fmt " + struct.pack("<I", 16) + fmt
        + b"data" + struct.pack("<I", len(data)) + data
    )  # fmt: skip


def test_the_recorded_audio_counts_what_openai_billed() -> None:
    # gpt-4o-audio-preview billed 44 audio tokens for this MP3 (4.49 s at 96 kbit/s).
    item = recording("openai/chat-audio-input-gpt-4o-audio-preview")
    part = item.meta["request"]["messages"][0]["content"][1]
    assert item.meta["reported_usage"]["prompt_tokens_details"]["audio_tokens"] == 44
    assert media.audio_part_tokens(part) == 44


@pytest.mark.parametrize(
    ("audio", "tokens"),
    [
        ({"data": base64.b64encode(wav(2.5)).decode(), "format": "wav"}, 25),
        ({"data": base64.b64encode(wav(0.05)).decode(), "format": "wav"}, 0),
        ({"data": base64.b64encode(b"\x00" * 32_000).decode(), "format": "flac"}, 20),  # 128k
        ({"data": 5, "format": "wav"}, 0),
    ],
)
def test_audio_part_tokens(audio: dict, tokens: int) -> None:
    assert media.audio_part_tokens({"type": "input_audio", "input_audio": audio}) == tokens


def pdf(pages: int) -> bytes:
    objects = b"".join(
        b"%d 0 obj << /Type /Page /Parent 2 0 R >> endobj\n" % i for i in range(pages)
    )
    return b"%PDF-1.4\n1 0 obj << /Type /Pages /Count 3 >> endobj\n" + objects + b"%%EOF\n"


@pytest.mark.parametrize(
    ("part", "tokens"),
    [
        ({"type": "file", "file": {"file_data": data_url(pdf(3), "application/pdf")}}, 3000),
        ({"type": "input_file", "file_data": data_url(pdf(1), "application/pdf")}, 1000),
        ({"type": "input_file", "file_data": base64.b64encode(pdf(2)).decode()}, 2000),
        ({"type": "file", "file": {"file_id": "file-abc"}}, 1000),
        ({"type": "input_file", "file_url": "https://example.com/x.pdf"}, 1000),
    ],
)  # fmt: skip
def test_file_part_tokens(part: dict, tokens: int) -> None:
    assert media.file_part_tokens(part) == tokens
