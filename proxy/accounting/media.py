"""What an image, audio or file part of a prompt counts as input tokens, for estimates
made when the provider reports no usage. Pure: no I/O, no image or audio library; the
sizes are read from the headers of inline (base64 data URL) content.

- Images, OpenAI's documented rule: detail "low" costs 85 tokens; otherwise the image
  is scaled to fit within 2048 x 2048, then so that its shortest side is at most 768 px,
  and costs 85 + 170 per 512 px tile (a 1024 x 1024 image: 765 tokens; 2048 x 4096:
  1,105). Width and height come from the PNG, JPEG, GIF or WebP header. An image given
  by URL or file id, or whose header cannot be read, counts as OpenAI's 1024 x 1024
  example: 765 tokens (85 at detail "low").
- Audio, OpenAI's rate for audio input: one token per whole 100 ms, the duration read from a
  WAV header or an MP3 frame header (bit rate), else taken at 128 kbit/s.
- Files (PDF): 1,000 tokens per page (a page is sent as its text and an image of it),
  the pages counted in the file when it is inline, else one page.
"""

from __future__ import annotations

import binascii
import math
import re
import struct
from collections.abc import Mapping
from fractions import Fraction

__all__ = [
    "FILE_PAGE_TOKENS",
    "UNKNOWN_IMAGE_TOKENS",
    "audio_part_tokens",
    "file_part_tokens",
    "image_part_tokens",
    "image_size",
    "image_tokens",
]

LOW_DETAIL_TOKENS = 85
_TILE_TOKENS = 170
UNKNOWN_IMAGE_TOKENS = 765  # OpenAI's worked example: 1024 x 1024 at detail high
AUDIO_TOKENS_PER_SECOND = 10
_DEFAULT_AUDIO_BYTES_PER_SECOND = 16_000  # 128 kbit/s
FILE_PAGE_TOKENS = 1_000
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
# Bytes of the header window decoded at a time; a JPEG's size may follow an embedded
# thumbnail, so its segments are walked, decoding only the few bytes of each marker.
_HEAD = 64
_JPEG_MAX_SEGMENTS = 256
_WHITESPACE = re.compile(r"\s+")


class _Raw:
    """Bytes in hand, read like `_Base64`."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def read(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length] if offset >= 0 and length > 0 else b""


class _Base64:
    """Random access to the bytes of a base64 string, decoding only what is read."""

    def __init__(self, text: str) -> None:
        if _WHITESPACE.search(text, 0, 256):  # wrapped base64 (MIME style)
            text = _WHITESPACE.sub("", text)
        self.text = text
        padding = len(text) - len(text.rstrip("="))
        self.size = len(text) * 3 // 4 - padding

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length <= 0 or offset >= self.size:
            return b""
        first = offset // 3
        last = math.ceil(min(offset + length, self.size) / 3)
        try:
            chunk = binascii.a2b_base64(self.text[first * 4 : last * 4])
        except (binascii.Error, ValueError):
            return b""
        return chunk[offset - first * 3 : offset - first * 3 + length]


def _data_url(url: object) -> tuple[str, _Base64] | None:
    """(media type, payload) of a `data:<type>;base64,<payload>` URL."""
    if not isinstance(url, str) or not url.startswith("data:"):
        return None
    head, comma, payload = url.partition(",")
    if not comma or not head.endswith(";base64"):
        return None
    return head[5:].partition(";")[0].lower(), _Base64(payload)


_Reader = _Raw | _Base64


def _jpeg_size(data: _Reader) -> tuple[int, int] | None:
    offset = 2
    for _ in range(_JPEG_MAX_SEGMENTS):
        header = data.read(offset, 9)
        if len(header) < 4 or header[0] != 0xFF:
            return None
        marker = header[1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            offset += 2
            continue
        length = struct.unpack(">H", header[2:4])[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if len(header) < 9:
                return None
            height, width = struct.unpack(">HH", header[5:9])
            return width, height
        if length < 2:
            return None
        offset += 2 + length
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, GIF or WebP header; None for anything else."""
    return _image_size(_Raw(data))


def _image_size(data: _Reader) -> tuple[int, int] | None:
    head = data.read(0, _HEAD)
    size: tuple[int, int] | None = None
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
        size = struct.unpack(">II", head[16:24])
    elif head[:6] in (b"GIF87a", b"GIF89a"):
        size = struct.unpack("<HH", head[6:10])
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        size = _webp_size(head)
    elif head[:3] == b"\xff\xd8\xff":
        size = _jpeg_size(data)
    if size is None or size[0] <= 0 or size[1] <= 0:
        return None
    return size


def _webp_size(head: bytes) -> tuple[int, int] | None:
    kind = head[12:16]
    if kind == b"VP8 " and len(head) >= 30:
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    return None


def image_tokens(width: int, height: int, detail: str = "auto") -> int:
    """OpenAI's tile rule (see the module docstring)."""
    if detail == "low":
        return LOW_DETAIL_TOKENS
    w, h = Fraction(width), Fraction(height)
    longest = max(w, h)
    if longest > 2048:
        w, h = w * 2048 / longest, h * 2048 / longest
    shortest = min(w, h)
    if shortest > 768:
        w, h = w * 768 / shortest, h * 768 / shortest
    tiles = math.ceil(w / 512) * math.ceil(h / 512)
    return LOW_DETAIL_TOKENS + _TILE_TOKENS * tiles


def image_part_tokens(part: Mapping[object, object]) -> int:
    """A chat `image_url` part ({"image_url": {"url", "detail"}}) or a Responses
    `input_image` part ({"image_url": "...", "detail"})."""
    image = part.get("image_url")
    url, detail = image, part.get("detail")
    if isinstance(image, Mapping):
        url, detail = image.get("url"), image.get("detail")
    detail = detail if isinstance(detail, str) else "auto"
    if detail == "low":
        return LOW_DETAIL_TOKENS
    inline = _data_url(url)
    size = _image_size(inline[1]) if inline is not None else None
    return UNKNOWN_IMAGE_TOKENS if size is None else image_tokens(*size, detail)


def _audio_seconds(fmt: str, data: _Reader) -> float:
    head = data.read(0, _HEAD)
    if fmt == "wav" or (head[:4] == b"RIFF" and head[8:12] == b"WAVE"):
        rate = _wav_byte_rate(data)
        if rate:
            return max(0, data.size - 44) / rate
    elif fmt == "mp3" or head[:3] == b"ID3" or head[:2] in (b"\xff\xfb", b"\xff\xf3"):
        rate = _mp3_byte_rate(data)
        if rate:
            return data.size / rate
    return data.size / _DEFAULT_AUDIO_BYTES_PER_SECOND


def _wav_byte_rate(data: _Reader) -> int | None:
    head = data.read(0, 36)
    if head[:4] != b"RIFF" or head[12:16] != b"fmt " or len(head) < 32:
        return None
    return struct.unpack("<I", head[28:32])[0] or None


# MPEG audio: kbit/s by bit-rate index, for MPEG-1 Layer III and MPEG-2/2.5 Layer III.
_MP3_KBPS = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}


def _mp3_byte_rate(data: _Reader) -> int | None:
    offset = 0
    head = data.read(0, 10)
    if head[:3] == b"ID3" and len(head) == 10:  # skip an ID3v2 tag (syncsafe size)
        offset = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
    frame = data.read(offset, 4)
    if len(frame) < 4 or frame[0] != 0xFF or frame[1] & 0xE0 != 0xE0:
        return None
    version = 1 if (frame[1] >> 3) & 3 == 3 else 2
    index = frame[2] >> 4
    if not 0 < index < 15:
        return None
    return _MP3_KBPS[version][index] * 1000 // 8


def audio_part_tokens(part: Mapping[object, object]) -> int:
    """A chat `input_audio` part: {"input_audio": {"data": base64, "format": ...}}."""
    audio = part.get("input_audio")
    if not isinstance(audio, Mapping) or not isinstance(audio.get("data"), str):
        return 0
    fmt = audio.get("format")
    seconds = _audio_seconds(fmt if isinstance(fmt, str) else "", _Base64(audio["data"]))
    # Whole 100 ms only: the recorded gpt-4o-audio-preview answer bills 44 tokens for an
    # MP3 of 4.49 s (tests/fixtures/recordings/openai/openai/chat-audio-input-*).
    return int(seconds * AUDIO_TOKENS_PER_SECOND)


def file_part_tokens(part: Mapping[object, object]) -> int:
    """A chat `file` part ({"file": {"file_data" | "file_id"}}) or a Responses
    `input_file` part ({"file_data" | "file_id" | "file_url"})."""
    file = part.get("file")
    source = file if isinstance(file, Mapping) else part
    data = source.get("file_data")
    inline = _data_url(data)
    if inline is None and isinstance(data, str) and not data.startswith("data:"):
        inline = ("application/pdf", _Base64(data))  # bare base64
    if inline is None:
        return FILE_PAGE_TOKENS
    decoded = inline[1].read(0, inline[1].size)
    return FILE_PAGE_TOKENS * max(1, len(_PDF_PAGE.findall(decoded)))
