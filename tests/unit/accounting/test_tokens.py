"""accounting.tokens: bundled encodings, model mapping and prompt/stream token counts."""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import subprocess
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import tiktoken
import tiktoken.load
from hypothesis import given, settings
from hypothesis import strategies as st
from tiktoken_ext import openai_public

from proxy.accounting import tokens
from proxy.accounting.tokens import (
    RankFileError,
    TokenCounter,
    count_chat_prompt,
    count_prompt,
    count_text,
    encoding_for_model,
    encoding_name_for_model,
)
from tests.support.procs import REPO

O200K = "gpt-4o"  # a model name standing for each encoding in the tables below
CL100K = "gpt-4"

# An image by URL cannot be sized: it counts as OpenAI's worked example, a 1024 x 1024
# image at detail high (85 + 4 tiles x 170).
URL_IMAGE_TOKENS = 765


def n(model: str, text: str) -> int:
    """Token length straight from the encoding: the by-hand side of the expected values."""
    return len(encoding_for_model(model).encode_ordinary(text))


# --- model -> encoding ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-2024-08-06", "o200k_base"),
        ("gpt-4o-mini", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("gpt-4.1", "o200k_base"),
        ("gpt-4.1-nano-2025-04-14", "o200k_base"),
        ("gpt-4.5-preview", "o200k_base"),
        ("o1", "o200k_base"),
        ("o1-mini", "o200k_base"),
        ("o3-mini-2025-01-31", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("gpt-5-mini", "o200k_base"),
        ("gpt-oss-120b", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-0613", "cl100k_base"),
        ("gpt-4-32k", "cl100k_base"),
        ("gpt-4-turbo-2024-04-09", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("gpt-3.5-turbo-instruct", "cl100k_base"),
        ("gpt-35-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("text-embedding-3-large", "cl100k_base"),
        ("text-embedding-ada-002", "cl100k_base"),
        ("davinci-002", "cl100k_base"),
        ("babbage-002", "cl100k_base"),
        # provider prefixes, fine-tune names, case and stray whitespace
        ("openai/gpt-4o", "o200k_base"),
        ("openai/gpt-4", "cl100k_base"),
        ("openrouter/openai/gpt-3.5-turbo", "cl100k_base"),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "o200k_base"),
        ("ft:gpt-3.5-turbo-0613:acme::abc123", "cl100k_base"),
        ("GPT-4-0613", "cl100k_base"),
        (" gpt-4 ", "cl100k_base"),
        # unknown and look-alike names fall back to o200k_base
        ("gpt-4.2", "o200k_base"),
        ("gpt-4x", "o200k_base"),
        ("text-embedding-ada-003", "o200k_base"),
        ("claude-3-5-sonnet", "o200k_base"),
        ("llama-3.1-70b", "o200k_base"),
        ("", "o200k_base"),
    ],
)
def test_encoding_name_for_model(model: str, expected: str) -> None:
    assert encoding_name_for_model(model) == expected


def _tiktoken_model_table() -> list[tuple[str, str]]:
    # tiktoken's own table is pure data; only its two modern encodings are bundled here.
    from tiktoken.model import MODEL_PREFIX_TO_ENCODING, MODEL_TO_ENCODING

    wanted = {"o200k_base", "cl100k_base"}
    exact = [(m, e) for m, e in MODEL_TO_ENCODING.items() if e in wanted]
    prefixed = [
        (p + "x" if p.endswith("-") else p + "-x", e) for p, e in MODEL_PREFIX_TO_ENCODING.items()
    ]
    return exact + [(m, e) for m, e in prefixed if e in wanted]


@pytest.mark.parametrize(("model", "expected"), _tiktoken_model_table())
def test_mapping_agrees_with_tiktoken(model: str, expected: str) -> None:
    assert encoding_name_for_model(model) == expected


def test_encoding_for_model_is_cached_per_encoding() -> None:
    assert encoding_for_model("gpt-4o") is encoding_for_model("o3-mini")
    assert encoding_for_model("gpt-4") is encoding_for_model("text-embedding-3-small")
    assert encoding_for_model("gpt-4o").name == "o200k_base"
    assert encoding_for_model("gpt-4").name == "cl100k_base"


# --- the encodings themselves -----------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "text", "ids"),
    [
        (CL100K, "hello world", [15339, 1917]),
        (O200K, "hello world", [24912, 2375]),
        (CL100K, "<|endoftext|>", [100257]),
        (CL100K, "<|fim_prefix|>", [100258]),
        (CL100K, "<|fim_middle|>", [100259]),
        (CL100K, "<|fim_suffix|>", [100260]),
        (CL100K, "<|endofprompt|>", [100276]),
        (O200K, "<|endoftext|>", [199999]),
        (O200K, "<|endofprompt|>", [200018]),
    ],
)
def test_known_token_ids(model: str, text: str, ids: list[int]) -> None:
    assert encoding_for_model(model).encode(text, allowed_special="all") == ids


@pytest.mark.parametrize(("model", "n_vocab"), [(CL100K, 100277), (O200K, 200019)])
def test_vocabulary_size(model: str, n_vocab: int) -> None:
    assert encoding_for_model(model).n_vocab == n_vocab


@pytest.mark.parametrize("model", [CL100K, O200K])
@pytest.mark.parametrize(
    "text",
    [
        "",
        "Hello, world! It's 2024-05-13 and we're testing.\n\n  Indented\tline\r\n",
        "Emoji 👩‍👩‍👧‍👦 🇯🇵 ✨ and skin tones 👍🏽",
        "日本語のテキストと中文文本，한국어 텍스트。",
        "Ünïcödé combining e\u0301 and Arabic مرحبا بالعالم and Hebrew שלום",
        'def f(x: int) -> int:\n    return x ** 2  # square\n\n{"json": [1, 2, 3]}',
        "<|endoftext|> is ordinary text here",
        "a" * 5000,
    ],
)
def test_roundtrip(model: str, text: str) -> None:
    encoding = encoding_for_model(model)
    assert encoding.decode(encoding.encode_ordinary(text)) == text


def test_special_token_text_counts_as_ordinary_text() -> None:
    assert count_text(O200K, "<|endoftext|>") > 1
    assert count_text(CL100K, "<|endoftext|>") > 1


def test_lone_surrogate_does_not_raise() -> None:
    assert count_text(O200K, "bad \ud800 text") >= 1


@pytest.mark.parametrize(
    ("constructor", "filename", "model"),
    [
        (openai_public.o200k_base, "o200k_base.tiktoken", O200K),
        (openai_public.cl100k_base, "cl100k_base.tiktoken", CL100K),
    ],
)
def test_matches_tiktokens_own_definition(
    constructor: Callable[[], dict[str, Any]],
    filename: str,
    model: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # tiktoken's constructor would download its rank file; hand it the bundled file through
    # tiktoken's own parser and hash check instead, then compare every part of the result.
    local = tmp_path / filename
    local.write_bytes(
        gzip.decompress((resources.files("proxy") / "data" / f"{filename}.gz").read_bytes())
    )
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # "" turns tiktoken's cache off

    def load_local(url: str, expected_hash: str) -> dict[bytes, int]:
        assert url.endswith("/" + filename)
        return tiktoken.load.load_tiktoken_bpe(str(local), expected_hash=expected_hash)

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", load_local)
    reference = tiktoken.Encoding(**constructor())
    ours = encoding_for_model(model)

    assert ours.name == reference.name
    assert ours._pat_str == reference._pat_str
    assert ours._special_tokens == reference._special_tokens
    # Ours keeps the ranks only in tiktoken's Rust core (the Python copy is dropped).
    assert ours.n_vocab == reference.n_vocab
    decode = ours.decode_single_token_bytes
    assert all(decode(rank) == token for token, rank in reference._mergeable_ranks.items())
    sample = "Hello 世界! 👋 It's   spaced\n\nout, 12345678 and <|endoftext|>."
    assert ours.encode(sample, allowed_special="all") == reference.encode(
        sample, allowed_special="all"
    )


# --- loading ----------------------------------------------------------------------------


def test_load_ranks_parses_a_valid_file() -> None:
    data = b"IQ== 0\nIg== 1\naGVsbG8= 2\n"
    ranks = tokens._load_ranks(data, hashlib.sha256(data).hexdigest())
    assert ranks == {b"!": 0, b'"': 1, b"hello": 2}


def test_load_ranks_rejects_a_hash_mismatch() -> None:
    compressed = (resources.files("proxy") / "data" / "cl100k_base.tiktoken.gz").read_bytes()
    data = bytearray(gzip.decompress(compressed))
    data[100] ^= 1  # one flipped bit
    expected = tokens._SPECS["cl100k_base"].sha256
    with pytest.raises(RankFileError, match=f"expected {expected}"):
        tokens._load_ranks(bytes(data), expected, source="cl100k_base.tiktoken.gz")


@pytest.mark.parametrize("data", [b"IQ== 0\nIg==\n", b"IQ== zero\n", b"!!!! 0\n"])
def test_load_ranks_rejects_a_malformed_file_with_a_clear_error(data: bytes) -> None:
    with pytest.raises(RankFileError, match="malformed"):
        tokens._load_ranks(data, hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_bundled_files_match_their_pinned_hashes(name: str) -> None:
    spec = tokens._SPECS[name]
    compressed = (resources.files("proxy") / "data" / spec.filename).read_bytes()
    assert hashlib.sha256(gzip.decompress(compressed)).hexdigest() == spec.sha256


def test_loading_works_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("proxy.accounting.tokens tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    # Force a real load from the bundled files.
    for loaded in (tokens._ENCODINGS, tokens._STARTED):
        loaded.clear()
    assert encoding_for_model(O200K).encode_ordinary("hello world") == [24912, 2375]
    assert encoding_for_model(CL100K).encode_ordinary("hello world") == [15339, 1917]
    assert list(tmp_path.iterdir()) == []


def test_import_is_light_and_lazy() -> None:
    # A fresh interpreter: importing must not pull in I/O libraries nor load any encoding.
    code = (
        "import sys, proxy.accounting.tokens as t;"
        "assert not {'aiohttp', 'redis'} & set(sys.modules), 'I/O library imported';"
        "assert not t._ENCODINGS, 'encoding loaded at import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# --- chat prompts -----------------------------------------------------------------------

# The example from OpenAI's cookbook "How to count tokens with tiktoken"; the cookbook
# checks its counts against the API: 129 prompt tokens on gpt-3.5-turbo/gpt-4, 124 on gpt-4o.
COOKBOOK_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate "
        "jargon into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more time to touch base on opportunities for "
        "increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client "
        "deliverable.",
    },
]


@pytest.mark.parametrize(
    ("model", "expected"),
    [("gpt-4o", 124), ("gpt-4o-mini", 124), ("gpt-4", 129), ("gpt-3.5-turbo", 129)],
)
def test_cookbook_example(model: str, expected: int) -> None:
    assert count_chat_prompt(model, COOKBOOK_MESSAGES) == expected


TOOL_CALL_ARGS = '{"city": "Paris", "unit": "celsius"}'

# (messages, expected as tokens-of(text) arithmetic): 3 per message, +1 per name, +3 primer.
CHAT_CASES: list[tuple[list[Any], Callable[[Callable[[str], int]], int]]] = [
    ([], lambda t: 3),
    ([{"role": "user", "content": "hi"}], lambda t: 3 + t("user") + t("hi") + 3),
    (
        [{"role": "user", "name": "bob", "content": "hi"}],
        lambda t: 3 + t("user") + t("bob") + 1 + t("hi") + 3,
    ),
    (
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
        ],
        lambda t: 3 + t("system") + t("Be brief.") + 3 + t("user") + t("Weather in Paris?") + 3,
    ),
    (
        [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": TOOL_CALL_ARGS},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "22C"},
        ],
        lambda t: (
            3
            + t("assistant")
            + t("get_weather")
            + t(TOOL_CALL_ARGS)
            + 3
            + t("tool")
            + t("call_1")
            + t("22C")
            + 3
        ),
    ),
    (
        [
            {
                "role": "assistant",
                "content": "",
                "function_call": {"name": "get_weather", "arguments": TOOL_CALL_ARGS},
            }
        ],
        lambda t: 3 + t("assistant") + t("get_weather") + t(TOOL_CALL_ARGS) + 3,
    ),
    (
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                    {"type": "input_text", "text": "Be precise."},
                ],
            }
        ],
        lambda t: (
            3 + t("user") + t("What is in this image?") + URL_IMAGE_TOKENS + t("Be precise.") + 3
        ),
    ),
    (
        [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAAA"}}]}],
        lambda t: 3 + t("user") + 3,  # 3 bytes of audio: less than 100 ms
    ),
]


@pytest.mark.parametrize("model", [O200K, CL100K])
@pytest.mark.parametrize(("messages", "expected"), CHAT_CASES)
def test_count_chat_prompt(
    model: str, messages: list[Any], expected: Callable[[Callable[[str], int]], int]
) -> None:
    assert count_chat_prompt(model, messages) == expected(lambda text: n(model, text))


ODD_MESSAGES: list[Any] = [
    None,
    "just a string",
    42,
    {"role": "user", "content": "not a list"},
    [None, 1, "x", [], {}],
    [{"role": 5, "name": None, "content": {"nested": {"deep": [1, 2]}}}],
    [
        {
            "role": "user",
            "content": [None, 1, "bare string", {"type": "text", "text": 5}, {"type": None}],
        }
    ],
    [{"role": "assistant", "tool_calls": "not a list"}],
    [{"role": "assistant", "tool_calls": [None, 3, {"function": None}, {"function": {"name": 1}}]}],
    [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]}],
    [{"role": "assistant", "function_call": "f()"}],
]


@pytest.mark.parametrize("messages", ODD_MESSAGES)
def test_count_chat_prompt_tolerates_odd_input(messages: Any) -> None:
    assert count_chat_prompt(O200K, messages) >= 0


# --- count_prompt per endpoint ----------------------------------------------------------

# (prompt or input value, expected as tokens-of(text) arithmetic)
PROMPT_INPUTS: list[tuple[Any, Callable[[Callable[[str], int]], int]]] = [
    ("hello world", lambda t: t("hello world")),
    ("", lambda t: 0),
    (["hello", "world peace"], lambda t: t("hello") + t("world peace")),
    ([15339, 1917, 0], lambda t: 3),
    ([[15339, 1917], [1], []], lambda t: 3),
    (["hi", 5, [1, "x", 2, None]], lambda t: t("hi") + 1 + 2),
    ([], lambda t: 0),
    ([True, False], lambda t: 0),
    ([[[1, 2]]], lambda t: 0),  # deeper nesting is not a valid prompt
    (None, lambda t: 0),
    (7, lambda t: 0),
    ({"text": "hi"}, lambda t: 0),
]


@pytest.mark.parametrize(("endpoint", "key"), [("completions", "prompt"), ("embeddings", "input")])
@pytest.mark.parametrize(("value", "expected"), PROMPT_INPUTS)
def test_count_prompt_completions_and_embeddings(
    endpoint: str, key: str, value: Any, expected: Callable[[Callable[[str], int]], int]
) -> None:
    model = "text-embedding-3-small" if endpoint == "embeddings" else "gpt-3.5-turbo-instruct"
    assert count_prompt(endpoint, {key: value}, model) == expected(lambda text: n(model, text))


def test_count_prompt_chat_uses_messages() -> None:
    body = {"model": "gpt-4o", "messages": COOKBOOK_MESSAGES, "temperature": 0}
    assert count_prompt("chat.completions", body, "gpt-4o") == 124


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def test_count_prompt_chat_counts_tool_definitions_as_compact_json() -> None:
    messages = [{"role": "user", "content": "hi"}]
    rendered = json.dumps(TOOLS, separators=(",", ":"))
    body = {"messages": messages, "tools": TOOLS}
    expected = 3 + n(O200K, "user") + n(O200K, "hi") + 3 + n(O200K, rendered)
    assert count_prompt("chat.completions", body, O200K) == expected
    legacy = {"messages": messages, "functions": [TOOLS[0]["function"]]}
    legacy_rendered = json.dumps([TOOLS[0]["function"]], separators=(",", ":"))
    assert count_prompt("chat.completions", legacy, O200K) == expected - n(O200K, rendered) + n(
        O200K, legacy_rendered
    )


RESPONSES_CASES: list[tuple[dict[str, Any], Callable[[Callable[[str], int]], int]]] = [
    ({"input": "Tell me a joke."}, lambda t: 3 + t("user") + t("Tell me a joke.") + 3),
    (
        {"instructions": "Talk like a pirate.", "input": "Hello"},
        lambda t: 3 + t("system") + t("Talk like a pirate.") + 3 + t("user") + t("Hello") + 3,
    ),
    (
        {
            "input": [
                {"role": "developer", "content": "Be brief."},
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is this?"},
                        {"type": "input_image", "image_url": "https://example.com/a.png"},
                    ],
                },
                {
                    "type": "message",
                    "role": "assistant",
                    "id": "msg_1",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "A cat.", "annotations": []}],
                },
            ]
        },
        lambda t: (
            3
            + t("developer")
            + t("Be brief.")
            + 3
            + t("user")
            + t("What is this?")
            + URL_IMAGE_TOKENS
            + 3
            + t("assistant")
            + t("A cat.")
            + 3
        ),
    ),
    (
        {
            "input": [
                {
                    "type": "function_call",
                    "call_id": "c1",
                    "name": "get_weather",
                    "arguments": TOOL_CALL_ARGS,
                },
                {"type": "function_call_output", "call_id": "c1", "output": "22C"},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "item_reference", "id": "msg_0"},
            ]
        },
        lambda t: 3 + t("get_weather") + t(TOOL_CALL_ARGS) + 3 + t("c1") + t("22C") + 3,
    ),
    (
        {"instructions": "Only instructions."},
        lambda t: 3 + t("system") + t("Only instructions.") + 3,
    ),
    ({}, lambda t: 0),
    ({"input": None, "instructions": 5}, lambda t: 0),
    ({"input": [None, 3, {"type": "unknown"}]}, lambda t: 3),
]


@pytest.mark.parametrize(("body", "expected"), RESPONSES_CASES)
def test_count_prompt_responses(
    body: dict[str, Any], expected: Callable[[Callable[[str], int]], int]
) -> None:
    assert count_prompt("responses", body, O200K) == expected(lambda text: n(O200K, text))


def test_count_prompt_responses_counts_tool_definitions() -> None:
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object"}}]
    body = {"input": "hi", "tools": tools}
    rendered = json.dumps(tools, separators=(",", ":"))
    expected = 3 + n(O200K, "user") + n(O200K, "hi") + 3 + n(O200K, rendered)
    assert count_prompt("responses", body, O200K) == expected


@pytest.mark.parametrize("endpoint", ["chat.completions", "completions", "embeddings", "responses"])
@pytest.mark.parametrize(
    "body", [None, [], "text", 3, {}, {"messages": None, "prompt": {}, "input": 1.5}]
)
def test_count_prompt_tolerates_odd_bodies(endpoint: str, body: Any) -> None:
    assert count_prompt(endpoint, body, O200K) >= 0


def test_count_prompt_rejects_an_unknown_endpoint() -> None:
    with pytest.raises(ValueError, match=r"audio\.speech"):
        count_prompt("audio.speech", {"input": "hi"}, O200K)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "role",
                    "content",
                    "name",
                    "type",
                    "text",
                    "tool_calls",
                    "function",
                    "arguments",
                    "input",
                    "messages",
                    "prompt",
                    "instructions",
                    "tools",
                    "output",
                    "call_id",
                    "tool_call_id",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, database=None, deadline=None)
@given(body=JSON_VALUES)
def test_count_prompt_never_raises_on_any_json(body: Any) -> None:
    for endpoint in ("chat.completions", "completions", "embeddings", "responses"):
        assert count_prompt(endpoint, body, O200K) >= 0


# --- streamed text ----------------------------------------------------------------------

PROSE = (
    "The quick brown fox jumps over the lazy dog. It's 2024, and prices rose 3.5% (again)!\n"
    "Lists:\n  - item one;\n  - item two...\n\n"
)
MIXED = PROSE + (
    'def f(x):\n    return {"a": [1, 2, 3]}  # code\n'
    "日本語の文章です。中文，标点。 Emoji 👩‍💻🚀 and café naïve.\r\n\t\tTabs\tand   spaces   \n"
)


def chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("model", [O200K, CL100K])
@pytest.mark.parametrize("text", [PROSE * 50, MIXED * 40, "", "x"])
@pytest.mark.parametrize("size", [1, 7, 100])
def test_token_counter_is_exact_below_the_buffer_size(model: str, text: str, size: int) -> None:
    assert len(text) < 16 * 1024
    counter = TokenCounter(model)
    for chunk in chunks(text, size):
        counter.add(chunk)
    assert counter.total() == count_text(model, text)


@pytest.mark.parametrize("model", [O200K, CL100K])
@pytest.mark.parametrize(
    "text",
    [
        PROSE * 1600,  # ~200 KiB
        MIXED * 1000,  # ~200 KiB
        "日本語の文章です。中文，标点。" * 14000,  # ~200 Ki characters, no whitespace at all
    ],
)
def test_token_counter_stays_close_on_long_text_in_bounded_memory(model: str, text: str) -> None:
    counter = TokenCounter(model)
    for chunk in chunks(text, 37):
        counter.add(chunk)
        assert counter._buffered <= 16 * 1024
    whole = count_text(model, text)
    assert abs(counter.total() - whole) <= whole * 0.005


@pytest.mark.parametrize("model", [O200K, CL100K])
def test_token_counter_cuts_after_letters_exactly(model: str) -> None:
    # Every whitespace run in this text follows a letter, so every cut is exact.
    text = " ".join(f"word{i % 97}x" for i in range(40_000)) + "\n"
    counter = TokenCounter(model)
    for chunk in chunks(text, 50):
        counter.add(chunk)
    assert counter.total() == count_text(model, text)


def test_token_counter_total_can_be_read_while_adding() -> None:
    counter = TokenCounter(O200K, buffer_chars=64)
    assert counter.total() == 0
    counter.add("")
    counter.add("Hello there, ")
    assert counter.total() == count_text(O200K, "Hello there, ")
    assert counter.total() == count_text(O200K, "Hello there, ")
    rest = "general Kenobi. " * 20
    counter.add(rest)
    assert counter.total() == count_text(O200K, "Hello there, " + rest)


def test_token_counter_accepts_one_huge_piece() -> None:
    text = PROSE * 3000
    counter = TokenCounter(O200K)
    counter.add(text)
    assert counter._buffered <= 16 * 1024
    assert counter.total() == count_text(O200K, text)


async def test_a_long_stream_waits_for_its_encoding_instead_of_loading_it_on_the_loop():
    for loaded in (tokens._ENCODINGS, tokens._STARTED):
        loaded.clear()
    counter = TokenCounter(O200K, buffer_chars=1000)
    text = "word " * 700  # 3,500 characters: past the buffer, within 4x it
    counter.add(text)
    assert not tokens.is_loaded(O200K)  # a thread loads it; the event loop did not
    assert counter._buffered == len(text)  # kept, not counted yet
    await tokens.ready(O200K)
    counter.add("more")
    assert counter._buffered < 1000  # counted now
    expected = encoding_for_model(O200K).encode_ordinary(text + "more")
    assert counter.total() == len(expected)


def test_past_four_buffers_the_count_does_not_wait():
    for loaded in (tokens._ENCODINGS, tokens._STARTED):
        loaded.clear()
    counter = TokenCounter(CL100K, buffer_chars=100)
    counter.add("word " * 100)  # 500 characters: memory stays bounded, so it loads now
    assert tokens.is_loaded(CL100K) and counter._buffered < 100


MESSAGES_CASES: list[tuple[dict[str, Any], Callable[[Callable[[str], int]], int]]] = [
    (
        {"system": "Be brief.", "messages": [{"role": "user", "content": "Hello"}]},
        lambda t: t("Be brief.") + 3 + t("Hello") + 3,
    ),
    (
        {
            "system": [
                {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}
            ],
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image", "source": {"type": "url", "url": "https://x/a.png"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "A picture.", "signature": "s"},
                        {"type": "tool_use", "id": "t1", "name": "look", "input": {"q": "cat"}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": "A cat."},
                        {"type": "document", "source": {"type": "text", "data": "..."}},
                    ],
                },
            ],
        },
        lambda t: (
            t("Be brief.")
            + (3 + t("What is this?") + 765)  # an image by URL: OpenAI's 1024 x 1024 example
            + (3 + t("A picture.") + t("look") + t('[{"q":"cat"}]'))
            + (3 + t("A cat.") + 1000)  # a document: one page
            + 3
        ),
    ),
    ({"messages": "not a list", "system": 7}, lambda t: 3),
    (
        {
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        },
        lambda t: 3 + t("hi") + 3 + t('[{"name":"f","input_schema":{"type":"object"}}]'),
    ),
]


@pytest.mark.parametrize("endpoint", ["messages", "messages.count_tokens"])
@pytest.mark.parametrize(("body", "expected"), MESSAGES_CASES)
def test_count_prompt_messages(
    endpoint: str, body: dict[str, Any], expected: Callable[[Callable[[str], int]], int]
) -> None:
    # Claude's tokenizer is not public: an estimate by the chat rules, with tiktoken's.
    assert count_prompt(endpoint, body, "claude-sonnet-4-5") == expected(
        lambda text: n(O200K, text)
    )
