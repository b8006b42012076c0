"""Offline token counting with tiktoken, built from the rank files bundled in `proxy/data`.

Pure module: no network (tiktoken's own `get_encoding` would download), no aiohttp/redis.
The counts are estimates for when an upstream reports no usage; real usage always wins.
"""

from __future__ import annotations

import asyncio
import binascii
import functools
import gzip
import hashlib
import json
import re
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

import tiktoken

from proxy.accounting import media

__all__ = [
    "RankFileError",
    "TokenCounter",
    "count_chat_prompt",
    "count_prompt",
    "count_text",
    "encoding_for_model",
    "encoding_name_for_model",
    "is_loaded",
    "load_soon",
    "ready",
]

# OpenAI cookbook ("How to count tokens with tiktoken"): every message is wrapped in
# <|start|>{role/name}\n{content}<|end|>\n, a name costs one more token, and every reply
# is primed with <|start|>assistant<|message|>.
_TOKENS_PER_MESSAGE = 3
_TOKENS_PER_NAME = 1
_REPLY_PRIMER_TOKENS = 3

_IMAGE_PART_TYPES = frozenset({"image_url", "input_image", "image"})
_FILE_PART_TYPES = frozenset({"file", "input_file"})
_ENDPOINTS = frozenset(
    {
        "chat.completions",
        "completions",
        "embeddings",
        "responses",
        "messages",
        "messages.count_tokens",
    }
)
_MESSAGES_ENDPOINTS = frozenset({"messages", "messages.count_tokens"})


class RankFileError(Exception):
    """A bundled rank file is missing, unreadable or does not match its pinned sha256."""


@dataclass(frozen=True)
class _EncodingSpec:
    filename: str
    sha256: str  # of the uncompressed file, as pinned in tiktoken_ext/openai_public.py
    pat_str: str
    special_tokens: tuple[tuple[str, int], ...]


# pat_str and special tokens copied verbatim from tiktoken_ext/openai_public.py (tiktoken
# 0.14); tests/test_tokens.py checks them against that module so a drift is caught.
_CL100K_PAT_STR = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PAT_STR = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

_SPECS: Mapping[str, _EncodingSpec] = {
    "o200k_base": _EncodingSpec(
        filename="o200k_base.tiktoken.gz",
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        pat_str=_O200K_PAT_STR,
        special_tokens=(("<|endoftext|>", 199999), ("<|endofprompt|>", 200018)),
    ),
    "cl100k_base": _EncodingSpec(
        filename="cl100k_base.tiktoken.gz",
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        pat_str=_CL100K_PAT_STR,
        special_tokens=(
            ("<|endoftext|>", 100257),
            ("<|fim_prefix|>", 100258),
            ("<|fim_middle|>", 100259),
            ("<|fim_suffix|>", 100260),
            ("<|endofprompt|>", 100276),
        ),
    ),
}

# Model families in match order. A family matches the model name itself or the name
# followed by a separator ("gpt-4-0613", "gpt-4o:ft"), so "gpt-4" does not match "gpt-4o"
# or "gpt-4.1". Anything unlisted is a newer (or non-OpenAI) model: o200k_base is the
# closest guess. The o200k rows change no result; they document the mapping.
_MODEL_FAMILIES: tuple[tuple[str, str], ...] = (
    ("gpt-4o", "o200k_base"),
    ("chatgpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("gpt-oss", "o200k_base"),  # tiktoken says o200k_harmony: same ranks, more special tokens
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-35", "cl100k_base"),  # Azure spells gpt-3.5-turbo "gpt-35-turbo"
    ("text-embedding-3", "cl100k_base"),
    ("text-embedding-ada-002", "cl100k_base"),
    ("davinci-002", "cl100k_base"),
    ("babbage-002", "cl100k_base"),
)
_DEFAULT_ENCODING = "o200k_base"


def encoding_name_for_model(model: str) -> str:
    """The tiktoken encoding name for a model, e.g. "openai/gpt-4o-2024-08-06" -> "o200k_base"."""
    name = model.strip().lower().rpartition("/")[2].removeprefix("ft:")
    for family, encoding_name in _MODEL_FAMILIES:
        if name.startswith(family) and _is_family_boundary(name, len(family)):
            return encoding_name
    return _DEFAULT_ENCODING


def _is_family_boundary(name: str, index: int) -> bool:
    # "." and alphanumerics continue a family name ("gpt-4" + "o", "gpt-4" + ".1").
    return index == len(name) or not (name[index].isalnum() or name[index] == ".")


def encoding_for_model(model: str) -> tiktoken.Encoding:
    """The encoding for `model`; the first call per encoding loads it, on this thread.

    Loading takes 0.1-0.3 s of CPU and holds 20-45 MB for good, so the proxy loads an
    encoding only when a count is needed, and off the event loop: the request path awaits
    `ready(model)` before it counts (see also `load_soon`).
    """
    return _encoding(encoding_name_for_model(model))


def is_loaded(model: str) -> bool:
    return encoding_name_for_model(model) in _ENCODINGS


async def ready(model: str) -> None:
    """Load the encoding of `model` in a thread unless it is loaded: after this, counting
    for `model` does not block the event loop."""
    if not is_loaded(model):
        await asyncio.to_thread(encoding_for_model, model)


def load_soon(model: str) -> None:
    """Start loading the encoding of `model` in a thread, without waiting for it."""
    name = encoding_name_for_model(model)
    if name not in _ENCODINGS and name not in _STARTED:
        _STARTED.add(name)
        threading.Thread(target=_encoding, args=(name,), daemon=True).start()


_ENCODINGS: dict[str, tiktoken.Encoding] = {}  # by name, once loaded
_STARTED: set[str] = set()  # names load_soon started loading
_LOADING = threading.Lock()  # one load at a time: two threads must not both build one


def _encoding(name: str) -> tiktoken.Encoding:
    encoding = _ENCODINGS.get(name)
    if encoding is None:
        with _LOADING:
            encoding = _ENCODINGS.get(name)
            if encoding is None:
                encoding = _ENCODINGS[name] = _build(name)
    return encoding


def _build(name: str) -> tiktoken.Encoding:
    spec = _SPECS[name]
    try:
        compressed = (resources.files("proxy") / "data" / spec.filename).read_bytes()
        data = gzip.decompress(compressed)
    except (OSError, EOFError, zlib.error) as exc:
        raise RankFileError(
            f"tiktoken rank file proxy/data/{spec.filename} is missing or unreadable ({exc}); "
            "the costproxy installation is incomplete"
        ) from exc
    encoding = tiktoken.Encoding(
        name=name,
        pat_str=spec.pat_str,
        mergeable_ranks=_load_ranks(data, spec.sha256, source=spec.filename),
        special_tokens=dict(spec.special_tokens),
    )
    # The Rust core keeps its own copy of the ranks; tiktoken keeps the Python dict only to
    # pickle the encoding, which we never do. Dropping it frees ~31 MB (o200k_base).
    encoding._mergeable_ranks = {}
    return encoding


# strict_mode rejects stray characters that a2b_base64 would otherwise skip (~30 ms).
_decode_base64 = functools.partial(binascii.a2b_base64, strict_mode=True)


def _load_ranks(data: bytes, expected_sha256: str, *, source: str = "<bytes>") -> dict[bytes, int]:
    """Parse a .tiktoken rank file (lines of "base64-token rank") after checking its sha256."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise RankFileError(
            f"tiktoken rank file {source} has sha256 {actual}, expected {expected_sha256}; "
            "the file is corrupt or not the one this costproxy version pins"
        )
    # One split() and map() over all fields instead of tiktoken's per-line loop with
    # base64.b64decode: about twice as fast on o200k's 200k lines. The hash check above
    # already vouches for the format; the checks below only turn garbage into a clear error.
    fields = data.split()
    if len(fields) % 2:
        raise RankFileError(f"tiktoken rank file {source} is malformed: odd number of fields")
    try:
        return dict(zip(map(_decode_base64, fields[0::2]), map(int, fields[1::2]), strict=True))
    except ValueError as exc:  # binascii.Error is a ValueError
        raise RankFileError(f"tiktoken rank file {source} is malformed: {exc}") from exc


def count_text(model: str, text: str) -> int:
    """Tokens in `text`; special-token text such as "<|endoftext|>" counts as ordinary text."""
    return len(encoding_for_model(model).encode_ordinary(text))


def count_chat_prompt(model: str, messages: object) -> int:
    """Prompt tokens of a chat.completions `messages` list, by the OpenAI cookbook rules.

    Best effort on any JSON value: parts and fields of unknown shape count nothing;
    image, audio and file parts count as `media` says. Never raises on client input.
    """
    if not isinstance(messages, list):
        return 0
    encoding = encoding_for_model(model)
    total = sum(_message_tokens(encoding, message) for message in messages)
    return total + _REPLY_PRIMER_TOKENS


def _message_tokens(encoding: tiktoken.Encoding, message: object) -> int:
    if not isinstance(message, Mapping):
        return 0
    tokens = _TOKENS_PER_MESSAGE
    for key in ("role", "name", "tool_call_id"):
        tokens += _text_tokens(encoding, message.get(key))
    if isinstance(message.get("name"), str):
        tokens += _TOKENS_PER_NAME
    tokens += _content_tokens(encoding, message.get("content"))
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list):
        for call in tool_calls:
            if isinstance(call, Mapping):
                tokens += _function_call_tokens(encoding, call.get("function"))
    # The deprecated single-call form that some clients still send back.
    return tokens + _function_call_tokens(encoding, message.get("function_call"))


def _function_call_tokens(encoding: tiktoken.Encoding, function: object) -> int:
    if not isinstance(function, Mapping):
        return 0
    return _text_tokens(encoding, function.get("name")) + _text_tokens(
        encoding, function.get("arguments")
    )


def _content_tokens(encoding: tiktoken.Encoding, content: object) -> int:
    if isinstance(content, str):
        return _text_tokens(encoding, content)
    if not isinstance(content, list):
        return 0
    return sum(_part_tokens(encoding, part) for part in content)


def _part_tokens(encoding: tiktoken.Encoding, part: object) -> int:
    # Chat uses type "text", the Responses API "input_text"/"output_text"; any part with
    # a string "text" is counted so that new text-like types are not billed as zero.
    if isinstance(part, str):
        return _text_tokens(encoding, part)
    if not isinstance(part, Mapping):
        return 0
    kind = part.get("type")
    if kind in _IMAGE_PART_TYPES:
        return media.image_part_tokens(part)
    if kind == "input_audio":
        return media.audio_part_tokens(part)
    if kind in _FILE_PART_TYPES:
        return media.file_part_tokens(part)
    return _text_tokens(encoding, part.get("text")) + _text_tokens(encoding, part.get("refusal"))


def _text_tokens(encoding: tiktoken.Encoding, value: object) -> int:
    return len(encoding.encode_ordinary(value)) if isinstance(value, str) else 0


def count_prompt(endpoint: str, body: object, model: str) -> int:
    """Best-effort prompt tokens of a request body; never raises on client input.

    `endpoint` is "chat.completions", "completions", "embeddings", "responses" or
    Anthropic's "messages" (and "messages.count_tokens"); any other value is a programming
    error (ValueError). Tool definitions ("tools", legacy "functions") are counted as
    compact JSON: OpenAI renders them in its own format of similar size, so this is an
    estimate that tends to run slightly high. Claude's tokenizer is not public: its
    prompts are counted with tiktoken's, by the chat rules, an estimate too.
    """
    if endpoint not in _ENDPOINTS:
        raise ValueError(f"count_prompt: unknown endpoint {endpoint!r}")
    if not isinstance(body, Mapping):
        return 0
    encoding = encoding_for_model(model)
    if endpoint in _MESSAGES_ENDPOINTS:
        return _messages_prompt_tokens(encoding, body) + _tool_definition_tokens(
            encoding, body.get("tools")
        )
    if endpoint == "completions":
        return _prompt_input_tokens(encoding, body.get("prompt"))
    if endpoint == "embeddings":
        return _prompt_input_tokens(encoding, body.get("input"))
    tools = _tool_definition_tokens(encoding, body.get("tools"))
    if endpoint == "chat.completions":
        tools += _tool_definition_tokens(encoding, body.get("functions"))
        return count_chat_prompt(model, body.get("messages")) + tools
    return _responses_input_tokens(encoding, body) + tools


def _prompt_input_tokens(encoding: tiktoken.Encoding, value: object) -> int:
    """A completions prompt or embeddings input: str | list[str] | list[int] | list[list[int]].

    Token ids count one each. Only these two levels are read, so hostile nesting cannot
    recurse deeply.
    """
    if isinstance(value, str):
        return _text_tokens(encoding, value)
    if not isinstance(value, list):
        return 0
    total = 0
    for item in value:
        if isinstance(item, str):
            total += _text_tokens(encoding, item)
        elif _is_token_id(item):
            total += 1
        elif isinstance(item, list):
            total += sum(1 for token in item if _is_token_id(token))
    return total


def _is_token_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _responses_input_tokens(encoding: tiktoken.Encoding, body: Mapping[object, object]) -> int:
    # "instructions" is inserted as a system message and a string "input" is a user
    # message, so both get the same per-message overhead as chat.
    items: list[object] = []
    if isinstance(body.get("instructions"), str):
        items.append({"role": "system", "content": body["instructions"]})
    value = body.get("input")
    if isinstance(value, str):
        items.append({"role": "user", "content": value})
    elif isinstance(value, list):
        items.extend(value)
    total = sum(_response_item_tokens(encoding, item) for item in items)
    return total + _REPLY_PRIMER_TOKENS if items else 0


def _response_item_tokens(encoding: tiktoken.Encoding, item: object) -> int:
    if isinstance(item, str):
        return _message_tokens(encoding, {"role": "user", "content": item})
    if not isinstance(item, Mapping):
        return 0
    kind = item.get("type")
    if kind == "function_call":
        return _TOKENS_PER_MESSAGE + _function_call_tokens(encoding, item)
    if kind == "function_call_output":
        output = _text_tokens(encoding, item.get("output"))
        return _TOKENS_PER_MESSAGE + _text_tokens(encoding, item.get("call_id")) + output
    if "role" in item:  # type "message", or the short form without a type
        return _message_tokens(encoding, {"role": item["role"], "content": item.get("content")})
    return 0  # reasoning items, item references and unknown types: not estimated


def _messages_prompt_tokens(encoding: tiktoken.Encoding, body: Mapping[object, object]) -> int:
    # Anthropic's body: `system` (a string or text blocks) and `messages` whose content is
    # a string or a list of blocks; each message costs the chat overhead.
    messages = body.get("messages")
    total = _blocks_tokens(encoding, body.get("system"), nested=True)
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, Mapping):
                content = message.get("content")
                total += _TOKENS_PER_MESSAGE + _blocks_tokens(encoding, content, nested=True)
    return total + _REPLY_PRIMER_TOKENS


def _blocks_tokens(encoding: tiktoken.Encoding, content: object, *, nested: bool) -> int:
    """A string, or a list of Anthropic content blocks: text and thinking as text, tool
    calls as their name and input JSON, tool results by their content (one level deep,
    so hostile nesting cannot recurse), images and documents as `media` counts them."""
    if isinstance(content, str):
        return _text_tokens(encoding, content)
    if not isinstance(content, list):
        return 0
    total = 0
    for block in content:
        if not isinstance(block, Mapping):
            total += _part_tokens(encoding, block)
            continue
        kind = block.get("type")
        if kind in ("tool_use", "server_tool_use"):
            total += _text_tokens(encoding, block.get("name"))
            total += _tool_definition_tokens(encoding, [block.get("input")])
        elif isinstance(kind, str) and kind.endswith("tool_result"):
            if nested:
                total += _blocks_tokens(encoding, block.get("content"), nested=False)
        elif kind == "document":
            total += media.FILE_PAGE_TOKENS
        else:
            total += _part_tokens(encoding, block) + _text_tokens(encoding, block.get("thinking"))
    return total


def _tool_definition_tokens(encoding: tiktoken.Encoding, tools: object) -> int:
    if not isinstance(tools, list) or not tools:
        return 0
    try:
        rendered = json.dumps(tools, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):  # not JSON data: give up on the estimate
        return 0
    return _text_tokens(encoding, rendered)


# A cut point in streamed text: the start of the last whitespace run, preferably one that
# follows a letter or digit. Pieces of the tiktoken split regex never run from a letter or
# digit into the whitespace after it, so such a cut tokenizes exactly as the whole text
# does; after punctuation, a piece such as ".\n" may straddle the cut (off by one token).
_EXACT_CUT = re.compile(r".*[^\W_](?=\s)", re.DOTALL)
_WHITESPACE_CUT = re.compile(r".*\S(?=\s)", re.DOTALL)


class TokenCounter:
    """Counts the tokens of text that arrives in pieces (a stream), in bounded memory.

    Text is buffered; past `buffer_chars` characters the buffer is tokenized up to a
    whitespace cut in its second half and only the rest is kept. The total equals
    tokenizing the whole text at once when the text is shorter than the buffer or every
    cut follows a letter or digit, and is otherwise within a token or so per cut (one cut
    per ~8-16 Ki characters; text without whitespace is cut anywhere).
    """

    def __init__(self, model: str, *, buffer_chars: int = 16 * 1024) -> None:
        # Resolved on first use: most streams carry usage and never count a token, and
        # an encoding holds 20-45 MB of RSS that such a proxy never needs.
        self._model = model
        self._encoding: tiktoken.Encoding | None = None
        self._buffer_chars = buffer_chars
        self._parts: list[str] = []
        self._buffered = 0
        self._counted = 0

    def add(self, text: str) -> None:
        if not text:
            return
        self._parts.append(text)
        self._buffered += len(text)
        while self._buffered > self._buffer_chars and self._flush():
            pass

    def total(self) -> int:
        """Tokens in everything added so far; adding more afterwards is fine."""
        if not self._parts:
            return self._counted
        return self._counted + len(self._encode("".join(self._parts)))

    def _encode(self, text: str) -> list[int]:
        if self._encoding is None:
            self._encoding = encoding_for_model(self._model)
        return self._encoding.encode_ordinary(text)

    def _flush(self) -> bool:
        """Tokenize the first half of the buffer; False when that has to wait."""
        # Counting now would load the encoding on the event loop: buffer a little longer
        # (a fraction of a second; at most 4x the buffer) while a thread loads it.
        waiting = self._encoding is None and not is_loaded(self._model)
        if waiting and self._buffered <= 4 * self._buffer_chars:
            load_soon(self._model)
            return False
        buffer = "".join(self._parts)
        # Cutting in the second half halves the buffer at least, keeping the work linear.
        half = len(buffer) // 2
        match = _EXACT_CUT.match(buffer, half) or _WHITESPACE_CUT.match(buffer, half)
        cut = match.end() if match else len(buffer)
        self._counted += len(self._encode(buffer[:cut]))
        rest = buffer[cut:]
        self._parts = [rest] if rest else []
        self._buffered = len(rest)
        return True
