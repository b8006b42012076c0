"""Every report fixture under tests/fixtures/reports (real responses and the providers'
documented examples, each with its .source.md) parsed into the normalised shape. Expected
values are read off the fixture files, not produced by the parser."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from proxy.reconcile.coverage import uncovered
from proxy.reconcile.report import CostRow, ReportFormatError, UsageRow
from proxy.reconcile.reports import anthropic, openai, parse_report
from proxy.reconcile.reports.pages import error_message
from tests.support.report_exports import tsv_page

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "reports"
OPENAI = FIXTURES / "openai"
ANTHROPIC = FIXTURES / "anthropic"


def usage(day: date, model: str | None, requests: int | None, *tokens: int, **ids: str) -> UsageRow:
    """A UsageRow from (input, cached, 5m writes, 1h writes, output) tokens."""
    return UsageRow(day, model, ids.get("project"), ids.get("key"), requests, *tokens)


def load(path: Path) -> object:
    return orjson.loads(path.read_bytes())


def test_every_fixture_is_covered_here() -> None:
    """A fixture added later must get a parsing test: this file names each one."""
    text = Path(__file__).read_text()
    names = [p.name for p in FIXTURES.rglob("*") if p.suffix in (".json", ".tsv")]
    assert names
    assert [n for n in names if n not in text] == []


# --- OpenAI usage


def test_usage_grouped_by_model_real_page_with_a_cursor() -> None:
    page = load(OPENAI / "usage_completions_grouped_model_1d_has_more_real.json")
    report = parse_report("openai", [page], [])
    assert report.usage == (
        usage(date(2025, 8, 12), "gpt-5-2025-08-07", 270, 14350791, 12464896, 0, 0, 96969),
        usage(date(2025, 8, 13), "gpt-5-2025-08-07", 364, 18449801, 17526528, 0, 0, 138957),
        usage(date(2025, 8, 13), "gpt-5-mini-2025-08-07", 29, 1233391, 1091584, 0, 0, 7754),
        usage(date(2025, 8, 14), "gpt-5-2025-08-07", 321, 13718197, 12887680, 0, 0, 121397),
    )
    assert uncovered(report.usage_spans, date(2025, 8, 12), date(2025, 8, 15)) == {
        date(2025, 8, 15): ""  # the next page (has_more) was not saved
    }
    assert report.has_usage and not report.has_costs and report.costs == ()


def test_usage_concatenated_pages_real_partial_first_and_last_day() -> None:
    buckets = load(OPENAI / "usage_completions_ungrouped_1d_30days_buckets_real.json")
    report = parse_report("openai", [buckets], [])
    assert len(report.usage_spans) == 31
    assert sum(r.input_tokens for r in report.usage) == 16951009
    assert sum(r.requests or 0 for r in report.usage) == 19347
    assert {r.model for r in report.usage} == {None}  # not grouped
    assert report.usage[0] == usage(date(2025, 1, 11), None, 470, 141201, 0, 0, 0, 9756)
    # The first bucket starts at the requested time (17:31), the last ends "now" (17:31).
    gaps = uncovered(report.usage_spans, date(2025, 1, 11), date(2025, 2, 10))
    assert gaps == {
        date(2025, 1, 11): "17:31 to 24:00 UTC",
        date(2025, 2, 10): "00:00 to 17:31 UTC",
    }


def test_usage_documented_page_with_every_current_field() -> None:
    page = load(OPENAI / "usage_completions_spec_example_has_more.json")
    (row,) = parse_report("openai", [page], []).usage
    # input_tokens counts cache reads and cache writes: 1000 = 400 + 100 + 500.
    assert row == UsageRow(date(2024, 11, 1), None, None, None, 5, 1000, 400, 100, 0, 500)
    assert row.uncached_input_tokens == 500


def test_usage_documented_2025_field_set() -> None:
    page = load(OPENAI / "usage_completions_spec_example_2025-03_legacy_fields.json")
    (row,) = parse_report("openai", [page], []).usage
    assert row == UsageRow(date(2024, 11, 1), None, None, None, 5, 1000, 800, 0, 0, 500)


def test_usage_result_object_with_every_grouping_key() -> None:
    result = load(OPENAI / "usage_completions_result_object_spec_example.json")
    assert isinstance(result, dict)
    row = openai.usage_row(result, 1730419200)
    ids = {"project": "proj_abc", "key": result["api_key_id"]}
    assert row == usage(date(2024, 11, 1), result["model"], 5, 5000, 1800, 200, 0, 1000, **ids)


def test_embeddings_usage() -> None:
    page = load(OPENAI / "usage_embeddings_spec_example.json")
    (row,) = parse_report("openai", [page], []).usage
    assert row == UsageRow(date(2024, 11, 1), None, None, None, 2, 16, 0, 0, 0, 0)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("usage_moderations_spec_example.json", "moderations"),
        ("usage_images_spec_example.json", "images"),
        ("usage_audio_speeches_spec_example.json", "audio_speeches"),
        ("usage_audio_transcriptions_spec_example.json", "audio_transcriptions"),
        ("usage_vector_stores_spec_example.json", "vector_stores"),
        ("usage_code_interpreter_sessions_spec_example.json", "code_interpreter_sessions"),
        ("usage_file_search_calls_spec_example.json", "file_searches"),
        ("usage_web_search_calls_spec_example.json", "web_searches"),
    ],
)
def test_usage_of_kinds_the_proxy_does_not_record_is_counted_as_ignored(
    name: str, kind: str
) -> None:
    report = parse_report("openai", [load(OPENAI / name)], [])
    assert report.usage == ()
    assert report.ignored == {f"organization.usage.{kind}.result": 1}
    assert len(report.usage_spans) == 1


# --- OpenAI costs


def test_costs_by_line_item_real_string_amounts() -> None:
    page = load(OPENAI / "costs_grouped_line_item_string_amounts_real.json")
    report = parse_report("openai", [], [page])
    day = date(2026, 6, 14)
    model = "gpt-4o-mini-2024-07-18"
    assert report.costs == (
        CostRow(
            day,
            Decimal(0),
            model,
            "cached_input",
            None,
            Decimal(0),
            f"{model}, cached input",
            "proj_x",
        ),
        CostRow(
            day,
            Decimal("0.0000045"),
            model,
            "input",
            None,
            Decimal(30),
            f"{model}, input",
            "proj_x",
        ),
        CostRow(
            day,
            Decimal("0.0000342"),
            model,
            "output",
            None,
            Decimal(57),
            f"{model}, output",
            "proj_x",
        ),
    )
    # "0E-6176" is zero, and the 39-decimal strings keep every digit.
    assert str(report.costs[1].amount_usd) == "0.000004500000000000000000000000000000000"
    assert uncovered(report.cost_spans, day, date(2026, 6, 15)) == {}


def test_costs_empty_buckets_real() -> None:
    report = parse_report("openai", [], [load(OPENAI / "costs_empty_buckets_real.json")])
    assert report.costs == () and report.has_costs
    assert uncovered(report.cost_spans, date(2026, 6, 6), date(2026, 6, 8)) == {
        date(2026, 6, 8): ""
    }


def test_costs_ungrouped_real_float_amounts_are_read_as_written() -> None:
    buckets = load(OPENAI / "costs_ungrouped_1d_30days_buckets_real.json")
    report = parse_report("openai", [], [buckets])
    assert len(report.costs) == 31
    first = report.costs[0]
    assert first == CostRow(date(2025, 1, 11), Decimal("0.13080438340307526"))
    assert report.costs[2].amount_usd == Decimal("9.888144383403077")  # never a binary float
    # Costs buckets are whole UTC days, the last one ending at the next midnight.
    assert uncovered(report.cost_spans, date(2025, 1, 11), date(2025, 2, 10)) == {}


def test_costs_documented_page_and_object() -> None:
    (row,) = parse_report("openai", [], [load(OPENAI / "costs_spec_example.json")]).costs
    assert row == CostRow(date(2024, 11, 1), Decimal("0.06"))
    result = load(OPENAI / "costs_result_object_spec_example.json")
    assert isinstance(result, dict)
    # The documented object's line item is a placeholder without a comma: a charge of its own.
    row = openai.cost_row(result, 1730419200)
    assert row == CostRow(
        date(2024, 11, 1),
        Decimal("0.06"),
        "input_tokens",
        project_id="proj_abc",
        label="input_tokens",
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("gpt-4o-mini-2024-07-18, cached input", ("gpt-4o-mini-2024-07-18", "cached_input", None)),
        ("gpt-4o-mini-2024-07-18, output", ("gpt-4o-mini-2024-07-18", "output", None)),
        ("ft-gpt-4o-2024-08-06, input", ("ft-gpt-4o-2024-08-06", "input", None)),
        (
            "evals | gpt-4o-mini-2024-07-18, input",
            ("evals | gpt-4o-mini-2024-07-18", "input", None),
        ),
        ("assistants api | file search", ("assistants api | file search", None, None)),
        ("gpt-4o-audio-preview audio, input", ("gpt-4o-audio-preview", "input", "audio")),
        ("gpt-4o, audio input", ("gpt-4o", "input", "audio")),
        ("gpt-image-1, image output", ("gpt-image-1", "output", "image")),
        ("gpt-4o, cache writes", ("gpt-4o", "cache_write_5m", None)),
        ("gpt-4o, Input", ("gpt-4o", "input", None)),
        ("web search tool calls", ("web search tool calls", None, None)),
    ],
)
def test_line_items(line: str, expected: tuple) -> None:
    assert openai.split_line_item(line) == expected


def test_quantity_in_thousands_of_tokens() -> None:
    result = {
        "object": "organization.costs.result",
        "amount": {"value": 0.3, "currency": "usd"},
        "line_item": "gpt-4o, input",
        "quantity": 120,
        "quantity_unit": "1000_tokens",
    }
    assert openai.cost_row(result, 0).quantity_tokens == 120_000
    result["quantity_unit"] = "images"
    assert openai.cost_row(result, 0).quantity_tokens is None


# --- OpenAI exports (real, saved as TSV)


def test_usage_export_real() -> None:
    page = tsv_page(
        OPENAI / "usage_completions_export_2025-10_real.tsv",
        "organization.usage.completions.result",
    )
    report = parse_report("openai", [page], [])
    assert [
        (r.day.day, r.model, r.requests, r.input_tokens, r.cached_input_tokens, r.output_tokens)
        for r in report.usage
    ] == [
        (5, "gpt-4o-2024-08-06", 10, 59200, 5760, 10646),
        (6, "gpt-5-2025-08-07", 8, 46264, 8192, 60000),
        (6, "gpt-5-2025-08-07", 1, 5783, 0, 16000),
        (7, "gpt-5-mini-2025-08-07", 21, 80992, 0, 274770),
        (10, "gpt-5-mini-2025-08-07", 11, 124784, 0, 154852),
        (11, "gpt-5-mini-2025-08-07", 2, 22688, 0, 33191),
    ]
    assert {r.project_id for r in report.usage} == {"proj_4BhNtYH0z7dWbBtzhibxa65W"}
    assert {r.api_key_id for r in report.usage} == {"key_OYRZfEkH5R9CNgtY"}


def test_costs_export_real() -> None:
    page = tsv_page(OPENAI / "costs_daily_export_2025-10_real.tsv", "organization.costs.result")
    report = parse_report("openai", [], [page])
    assert [(c.day.day, c.amount_usd, c.model) for c in report.costs] == [
        (5, Decimal("0.8958740000000000"), None),
        (6, Decimal("0.5617712500000000"), None),
        (7, Decimal("0.569788"), None),
        (8, Decimal("0.5455665000000000"), None),
        (10, Decimal("0.34090000000000000"), None),
        (11, Decimal("0.072054"), None),
    ]
    assert uncovered(report.cost_spans, date(2025, 10, 5), date(2025, 10, 12)) == {}


# --- OpenAI errors: not reports


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("error_401_invalid_api_key.json", "Incorrect API key provided: sk-xxx."),
        ("error_401_missing_scope_envelope.json", "Missing scopes: api.usage.read"),
        ("error_403_missing_scope_bare_string.json", "Missing scopes: api.usage.read."),
    ],
)
def test_an_error_answer_is_not_a_report(name: str, message: str) -> None:
    body = load(OPENAI / name)
    found = error_message(body)
    assert found is not None and message in found
    with pytest.raises(ReportFormatError, match="error answer, not a report"):
        parse_report("openai", [body], [])


# --- Anthropic


@pytest.mark.parametrize(
    "name",
    ["usage_report_messages.documented.json", "usage_report_messages.documented_2026-01.json"],
)
def test_anthropic_usage_report(name: str) -> None:
    page = load(ANTHROPIC / name)
    report = parse_report("anthropic", [page], [])
    (row,) = report.usage
    model = "claude-opus-4-6" if name.endswith("documented.json") else "claude-sonnet-4-20250514"
    # input = uncached 1500 + cache reads 200 + 5-minute writes 500 + 1-hour writes 1000.
    ids = {"project": "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ", "key": "apikey_01Rj2N8SVvo6BePZj99NhmiT"}
    assert row == usage(date(2025, 8, 1), model, None, 3200, 200, 500, 1000, 500, **ids)
    assert row.uncached_input_tokens == 1500
    assert not report.counts_requests
    assert uncovered(report.usage_spans, date(2025, 8, 1), date(2025, 8, 1)) == {}


@pytest.mark.parametrize(
    "name", ["cost_report.documented.json", "cost_report.documented_2026-01.json"]
)
def test_anthropic_cost_report_amounts_are_cents(name: str) -> None:
    report = parse_report("anthropic", [], [load(ANTHROPIC / name)])
    (row,) = report.costs
    model = "claude-opus-4-6" if name.endswith("documented.json") else "claude-sonnet-4-20250514"
    assert row == CostRow(
        date(2025, 8, 1),
        Decimal("1.2378912"),
        model,
        "input",
        label="Claude Sonnet 4 Usage - Input Tokens",
        project_id="wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ",
    )


def test_anthropic_bucket_times_need_a_zone() -> None:
    page = {
        "data": [
            {
                "starting_at": "2025-08-01T00:00:00",
                "ending_at": "2025-08-02T00:00:00Z",
                "results": [],
            }
        ],
        "has_more": False,
        "next_page": None,
    }
    with pytest.raises(ReportFormatError, match="no time zone"):
        anthropic.parse([page], [])


# --- shapes refused with a clear message


def one_result(result: dict) -> dict:
    return {"data": [{"start_time": 0, "end_time": 1, "results": [result]}]}


COMPLETIONS = "organization.usage.completions.result"


@pytest.mark.parametrize(
    ("document", "match"),
    [
        ("text", "expected a JSON object"),
        ({"object": "page"}, "'data' list"),
        ({"data": [{"start_time": "x", "end_time": 1, "results": []}]}, "integer start_time"),
        (one_result({"object": "x"}), "not a usage result"),
        (one_result({"object": COMPLETIONS, "input_tokens": 1.5}), "whole number"),
        (one_result({"object": COMPLETIONS, "input_tokens": -1}), "negative"),
    ],
)
def test_bad_usage_documents(document: object, match: str) -> None:
    with pytest.raises(ReportFormatError, match=match):
        parse_report("openai", [document], [])


@pytest.mark.parametrize(
    ("amount", "match"),
    [
        ({"value": "1.2.3", "currency": "usd"}, "not a decimal"),
        ({"value": "NaN", "currency": "usd"}, "not a finite"),
        ({"value": 1, "currency": "eur"}, "only USD"),
        ({"currency": "usd"}, "amount.value"),
    ],
)
def test_bad_amounts(amount: dict, match: str) -> None:
    page = one_result({"object": "organization.costs.result", "amount": amount})
    with pytest.raises(ReportFormatError, match=match):
        parse_report("openai", [], [page])


def test_unknown_report_kind() -> None:
    with pytest.raises(ReportFormatError, match="unknown report kind"):
        parse_report("gemini", [], [])
