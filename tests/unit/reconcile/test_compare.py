"""The comparison, table by table: the proxy's rows against a provider's report. Prices are
literals in USD per 1M tokens; expected costs are worked out by hand in the comments."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from proxy.reconcile.compare import ReconcileInputError, Scope, reconcile
from proxy.reconcile.coverage import DAY_S, day_start
from proxy.reconcile.figures import ProxyRow, Tolerance
from proxy.reconcile.report import ChargeKind, CostRow, ProviderReport, Span, UsageRow
from proxy.reconcile.reports import parse_report
from tests.support.report_exports import tsv_page

D1, D2 = date(2026, 11, 2), date(2026, 11, 3)
MINI = "gpt-4o-mini"
MINI_SNAPSHOT = "gpt-4o-mini-2024-07-18"
TABLE = {
    MINI: {"input": "0.15", "cached_input": "0.075", "output": "0.60"},
    "gpt-4o": {"input": "2.50", "cached_input": "1.25", "output": "10"},
    "gpt-5": {"input": "1.25", "cached_input": "0.125", "output": "10"},
    "gpt-5-mini": {"input": "0.25", "cached_input": "0.025", "output": "2"},
    "claude-sonnet-4-5": {"input": "3", "cached_input": "0.30", "output": "15"},
}
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "reports" / "openai"


def price_of(model: str, kind: ChargeKind) -> Decimal | None:
    """The table of this test: the undated name of a snapshot has its price."""
    for name in (model, model.rsplit("-", 3)[0], model.rsplit("-", 1)[0]):
        if name in TABLE:
            price = TABLE[name].get(kind)
            return None if price is None else Decimal(price)
    return None


def days(*which: date) -> tuple[Span, ...]:
    return tuple((day_start(d), day_start(d) + DAY_S) for d in which)


def report(
    usage: list[UsageRow], costs: list[CostRow], covered: tuple[date, ...] = (D1, D2), **kw
) -> ProviderReport:
    return ProviderReport(
        kind=kw.pop("kind", "openai"),
        usage=tuple(usage),
        costs=tuple(costs),
        usage_spans=days(*covered),
        cost_spans=days(*covered),
        has_usage=True,
        has_costs=True,
        **kw,
    )


def line_items(day: date, model: str, uncached: int, cached: int, output: int, price=TABLE[MINI]):
    """OpenAI's cost lines of some traffic at `price`, with their quantities."""
    return [
        CostRow(day, Decimal(n) * Decimal(price[kind]) / 1_000_000, model, kind,
                quantity_tokens=Decimal(n), label=f"{model}, {kind}")
        for kind, n in (("input", uncached), ("cached_input", cached), ("output", output))
    ]  # fmt: skip


def compare(proxy: list[ProxyRow], rep: ProviderReport, **kw) -> dict:
    return reconcile(
        provider="openai",
        report=rep,
        proxy_rows=proxy,
        from_day=kw.pop("from_day", D1),
        to_day=kw.pop("to_day", D2),
        tolerance=kw.pop("tolerance", Tolerance()),
        price_of=price_of,
        **kw,
    )


def codes(row: dict) -> list[str]:
    return [e["code"] for e in row["explained"]]


# 12 requests of gpt-4o-mini: 3,400 input tokens of which 1,000 cached, 960 output.
# Cost: 2,400 × 0.15 + 1,000 × 0.075 + 960 × 0.60 = 360 + 75 + 576 = 1,011 USD per 1M
# = $0.001011 = 1,011,000 nano-dollars.
PROXY_D1 = ProxyRow(D1, MINI, 12, 3400, 1000, 0, 960, 1_011_000)
USAGE_D1 = UsageRow(D1, MINI_SNAPSHOT, "proj_proxy", None, 12, 3400, 1000, 0, 0, 960)
COSTS_D1 = line_items(D1, MINI_SNAPSHOT, 2400, 1000, 960)


def test_the_same_traffic_matches_with_zero_differences() -> None:
    result = compare([PROXY_D1], report([USAGE_D1], COSTS_D1))
    assert result["matched"] is True
    (row,) = result["rows"]
    assert row["day"] == "2026-11-02"
    assert row["model"] == MINI  # the snapshot is compared under the alias the proxy records
    assert row["report_models"] == [MINI_SNAPSHOT]
    figures = {
        "requests": 12,
        "input_tokens": 3400,
        "cached_input_tokens": 1000,
        "cache_write_tokens": 0,
        "output_tokens": 960,
        "cost_usd": "0.001011000",
    }
    assert row["proxy"] == figures and row["provider"] == figures
    assert set(row["difference"].values()) == {0, "0.000000000"}
    assert row["explained"] == []
    assert result["totals"]["difference"]["cost_usd"] == "0.000000000"
    assert result["days_not_covered"] == [] and result["notes"] == []


def test_traffic_around_the_proxy() -> None:
    # gpt-4o on D2: the proxy never saw it. 10 requests, 1,000 in, 100 out:
    # 1,000 × 2.50 + 100 × 10 = 3,500 per 1M = $0.0035.
    around = UsageRow(D2, "gpt-4o-2024-08-06", None, None, 10, 1000, 0, 0, 0, 100)
    costs = line_items(D2, "gpt-4o-2024-08-06", 1000, 0, 100, TABLE["gpt-4o"])
    result = compare([PROXY_D1], report([USAGE_D1, around], [*COSTS_D1, *costs]))
    assert result["matched"] is False
    row = result["rows"][1]
    assert (row["day"], row["model"]) == ("2026-11-03", "gpt-4o-2024-08-06")
    assert row["difference"]["requests"] == 10 and row["difference"]["cost_usd"] == "0.003500000"
    assert codes(row) == ["not_through_proxy"]
    assert row["explained"][0]["message"] == (
        "the provider billed 10 requests, 1,000 input tokens, 100 output tokens, $0.0035 for "
        "gpt-4o-2024-08-06 that never passed through the proxy: another client of the "
        "organisation, or a model no route of the config sends there"
    )
    assert result["totals"]["difference"]["cost_usd"] == "0.003500000"


def test_more_requests_than_the_proxy_recorded() -> None:
    extra = UsageRow(D1, MINI_SNAPSHOT, None, None, 2, 100, 0, 0, 0, 10)
    result = compare([PROXY_D1], report([USAGE_D1, extra], COSTS_D1))
    (row,) = result["rows"]
    assert row["difference"]["requests"] == 2 and row["difference"]["input_tokens"] == 100
    assert codes(row) == ["requests_not_recorded"]
    assert "2 requests more than the proxy recorded" in row["explained"][0]["message"]
    assert not row["within_tolerance"] and not result["matched"]


def test_a_day_the_report_lacks() -> None:
    proxy_d2 = ProxyRow(D2, MINI, 1, 100, 0, 0, 10, 21_000)
    result = compare([PROXY_D1, proxy_d2], report([USAGE_D1], COSTS_D1, covered=(D1,)))
    assert result["matched"] is False
    row = result["rows"][1]
    assert row["day"] == "2026-11-03"
    assert row["difference"]["requests"] == -1 and row["difference"]["cost_usd"] == "-0.000021000"
    # The report saying nothing of a day it does not cover is not "not in the report".
    assert codes(row) == ["day_not_covered", "day_not_covered"]
    assert row["explained"][0]["message"] == "the usage report has no bucket for 2026-11-03"
    assert result["days_not_covered"] == [
        {"day": "2026-11-03", "why": "the usage report has no bucket for 2026-11-03; "
                                     "the cost report has no bucket for 2026-11-03"}
    ]  # fmt: skip


def test_a_day_covered_in_part() -> None:
    rep = report([USAGE_D1], COSTS_D1, covered=(D1,))
    partial = (day_start(D2), day_start(D2) + 63_060)  # until 17:31
    rep = replace(rep, usage_spans=(*rep.usage_spans, partial))
    result = compare([PROXY_D1], rep)
    assert result["days_not_covered"][0]["why"].startswith(
        "the usage report covers 2026-11-03 only 00:00 to 17:31 UTC"
    )
    assert result["matched"] is False


def test_a_day_without_traffic_is_covered_by_an_empty_bucket() -> None:
    # Both days have buckets, only D1 has traffic: nothing to say about D2.
    result = compare([PROXY_D1], report([USAGE_D1], COSTS_D1))
    assert [r["day"] for r in result["rows"]] == ["2026-11-02"] and result["matched"]


def test_traffic_the_report_does_not_show() -> None:
    result = compare([PROXY_D1], report([], []))
    (row,) = result["rows"]
    assert codes(row) == ["not_in_report"]
    assert row["explained"][0]["message"].startswith(
        "the proxy recorded 12 requests to gpt-4o-mini that the report does not show"
    )


def test_estimated_and_unpriced_records() -> None:
    # 2 requests the upstream gave no usage for (counted by the proxy: 10 input tokens more
    # than the provider's), and 1 without a price (cost 0 in the proxy).
    proxy = ProxyRow(D1, MINI, 12, 3410, 1000, 0, 960, 1_011_000, estimated_requests=2,
                     unpriced_requests=1)  # fmt: skip
    result = compare([proxy], report([USAGE_D1], COSTS_D1))
    (row,) = result["rows"]
    assert row["difference"]["input_tokens"] == -10
    assert codes(row) == ["estimated_usage", "unpriced"]
    assert row["explained"][0]["message"] == (
        "2 of the proxy's requests have estimated usage (the upstream reported none, the "
        "proxy counted the tokens itself)"
    )
    assert row["explained"][1]["message"].startswith("1 of the proxy's requests had no price")
    assert result["matched"] is False


def test_a_price_changed_in_the_report() -> None:
    # The provider bills input at $0.165 per 1M, the table says $0.15:
    # 2,400 × 0.165 + 1,000 × 0.075 + 960 × 0.60 = 396 + 75 + 576 = 1,047 → $0.001047.
    raised = {**TABLE[MINI], "input": "0.165"}
    result = compare([PROXY_D1], report([USAGE_D1], line_items(D1, MINI_SNAPSHOT, 2400, 1000, 960,
                                                                raised)))  # fmt: skip
    (row,) = result["rows"]
    assert row["provider"]["cost_usd"] == "0.001047000"
    assert row["difference"]["cost_usd"] == "0.000036000"
    assert row["explained"] == [
        {
            "code": "price_mismatch",
            "message": "the price of gpt-4o-mini looks out of date: the bill implies $0.165 "
            "per 1M input tokens, the table says $0.15",
        }
    ]
    assert result["matched"] is False


def test_the_implied_price_uses_usage_tokens_when_lines_have_no_quantity() -> None:
    costs = [CostRow(D1, Decimal("0.000396"), MINI_SNAPSHOT, "input"),  # 2,400 × 0.165
             CostRow(D1, Decimal("0.000075"), MINI_SNAPSHOT, "cached_input"),
             CostRow(D1, Decimal("0.000576"), MINI_SNAPSHOT, "output")]  # fmt: skip
    (row,) = compare([PROXY_D1], report([USAGE_D1], costs))["rows"]
    assert codes(row) == ["price_mismatch"]
    assert "implies $0.165 per 1M input tokens" in row["explained"][0]["message"]


def test_a_price_the_table_does_not_have() -> None:
    usage = UsageRow(D1, "o9-2027-01-01", None, None, 1, 1_000_000, 0, 0, 0, 0)
    costs = [CostRow(D1, Decimal("4.2"), "o9-2027-01-01", "input", quantity_tokens=Decimal(10**6))]
    proxy = ProxyRow(D1, "o9", 1, 1_000_000, 0, 0, 0, 0, unpriced_requests=1)
    (row,) = compare([proxy], report([usage], costs))["rows"]
    assert row["model"] == "o9"
    assert codes(row) == ["unpriced", "price_missing"]
    assert row["explained"][1]["message"] == (
        "the table has no input price for o9: the bill implies $4.2 per 1M input tokens"
    )


def test_cost_within_the_tolerance_and_tokens_exact() -> None:
    # The provider rounds: $0.001015 against the proxy's $0.001011 is 0.39% of the bill.
    costs = [CostRow(D1, Decimal("0.001015"), MINI_SNAPSHOT)]
    result = compare([PROXY_D1], report([USAGE_D1], costs))
    assert result["rows"][0]["difference"]["cost_usd"] == "0.000004000"
    assert result["matched"] is True
    assert compare([PROXY_D1], report([USAGE_D1], costs),
                   tolerance=Tolerance(cost_pct=Decimal("0.3")))["matched"] is False  # fmt: skip
    one_token_more = ProxyRow(D1, MINI, 12, 3401, 1000, 0, 960, 1_011_000)
    assert compare([one_token_more], report([USAGE_D1], COSTS_D1))["matched"] is False
    assert compare([one_token_more], report([USAGE_D1], COSTS_D1),
                   tolerance=Tolerance(tokens_pct=Decimal("0.1")))["matched"] is True  # fmt: skip


def test_the_scope_keeps_the_providers_project() -> None:
    other = UsageRow(D1, MINI_SNAPSHOT, "proj_other", None, 5, 500, 0, 0, 0, 50)
    scope = Scope(project_ids=frozenset({"proj_proxy"}))
    result = compare([PROXY_D1], report([USAGE_D1, other], COSTS_D1), scope=scope)
    # Costs not grouped by project cannot be filtered: said in a note.
    assert result["notes"] == [
        "the cost report is not grouped by project: it covers the whole organisation, not only "
        "project proj_proxy"
    ]
    assert result["rows"][0]["difference"]["requests"] == 0 and result["matched"]


def test_usage_not_grouped_by_model_cannot_be_compared() -> None:
    ungrouped = UsageRow(D1, None, None, None, 12, 3400, 1000, 0, 0, 960)
    with pytest.raises(ReconcileInputError, match="not grouped by model"):
        compare([PROXY_D1], report([ungrouped], COSTS_D1))


def test_costs_not_split_by_model() -> None:
    # One model that day: the day's cost is its cost. Two models: it cannot be split.
    whole = [CostRow(D1, Decimal("0.001011"))]
    (row,) = compare([PROXY_D1], report([USAGE_D1], whole))["rows"]
    assert row["provider"]["cost_usd"] == "0.001011000" and row["explained"] == []
    second = UsageRow(D1, "gpt-4o-2024-08-06", None, None, 1, 10, 0, 0, 0, 1)
    result = compare([PROXY_D1], report([USAGE_D1, second], whole))
    assert [r["provider"]["cost_usd"] for r in result["rows"]] == [None, None]
    assert "cost_not_split" in codes(result["rows"][0])
    assert result["totals"]["provider"]["cost_usd"] == "0.001011000"  # the day's cost is counted
    assert result["matched"] is False


def test_without_a_cost_report_costs_are_not_compared() -> None:
    rep = ProviderReport("openai", (USAGE_D1,), (), days(D1, D2), (), has_usage=True)
    result = compare([PROXY_D1], rep)
    (row,) = result["rows"]
    assert row["provider"]["cost_usd"] is None and row["difference"]["cost_usd"] is None
    assert result["notes"] == ["no cost report: costs are not compared"]
    assert result["matched"] is True


def test_anthropic_has_no_request_counts_and_prices_each_cache_kind() -> None:
    # 2,000 input = 1,000 uncached + 600 cache reads + 400 5-minute writes; 300 output.
    # At $3 / $0.30 / $15: 3,000 + 180 + 4,500 = 7,680 per 1M; writes at 1.25 × $3 = $3.75:
    # 1,500 per 1M. Total $0.00918.
    model, snapshot = "claude-sonnet-4-5", "claude-sonnet-4-5-20250929"
    usage = UsageRow(D1, snapshot, None, None, None, 2000, 600, 400, 0, 300)
    costs = [CostRow(D1, Decimal(c) / 100, snapshot, kind) for kind, c in
             (("input", "0.3"), ("cached_input", "0.018"), ("cache_write_5m", "0.15"),
              ("output", "0.45"))]  # fmt: skip
    proxy = ProxyRow(D1, model, 3, 2000, 600, 400, 300, 9_180_000)
    result = compare([proxy], report([usage], costs, kind="anthropic", counts_requests=False))
    (row,) = result["rows"]
    assert row["provider"]["requests"] is None and row["difference"]["requests"] is None
    assert row["difference"]["cache_write_tokens"] == 0
    assert row["provider"]["cost_usd"] == "0.009180000"
    # The test's table has no cache-write prices: the bill's is reported.
    assert row["explained"] == [
        {
            "code": "price_missing",
            "message": "the table has no 5-minute cache write price for claude-sonnet-4-5: the "
            "bill implies $3.75 per 1M 5-minute cache write tokens",
        }
    ]
    assert result["matched"] is True


def test_rows_outside_the_range_are_left_out() -> None:
    before = UsageRow(date(2026, 11, 1), MINI_SNAPSHOT, None, None, 9, 9, 0, 0, 0, 9)
    result = compare([PROXY_D1], report([USAGE_D1, before], COSTS_D1))
    assert [r["day"] for r in result["rows"]] == ["2026-11-02"]


def test_real_october_2025_exports() -> None:
    """The real usage and daily cost exports of one organisation (tests/fixtures): on three
    days the bill is exactly the tokens at list prices; on the others it is not."""
    usage = tsv_page(FIXTURES / "usage_completions_export_2025-10_real.tsv",
                     "organization.usage.completions.result")  # fmt: skip
    costs = tsv_page(FIXTURES / "costs_daily_export_2025-10_real.tsv", "organization.costs.result")
    rep = parse_report("openai", [usage], [costs])
    # The proxy recorded what the usage report shows, priced by the table.
    proxy = [
        ProxyRow(date(2025, 10, 5), "gpt-4o", 10, 59200, 5760, 0, 10646, 247_260_000),
        ProxyRow(date(2025, 10, 6), "gpt-5", 9, 52047, 8192, 0, 76000, 815_842_750),
        ProxyRow(date(2025, 10, 7), "gpt-5-mini", 21, 80992, 0, 0, 274770, 569_788_000),
        ProxyRow(date(2025, 10, 10), "gpt-5-mini", 11, 124784, 0, 0, 154852, 340_900_000),
        ProxyRow(date(2025, 10, 11), "gpt-5-mini", 2, 22688, 0, 0, 33191, 72_054_000),
    ]
    scope = Scope(project_ids=frozenset({"proj_4BhNtYH0z7dWbBtzhibxa65W"}))
    result = compare(proxy, rep, from_day=date(2025, 10, 5), to_day=date(2025, 10, 11), scope=scope)
    rows = {r["day"]: r for r in result["rows"]}
    for day in ("2025-10-07", "2025-10-10", "2025-10-11"):
        assert rows[day]["within_tolerance"] and rows[day]["explained"] == [], rows[day]
    # 2025-10-05: 53,440 × 2.50 + 5,760 × 1.25 + 10,646 × 10 = $0.24726, billed $0.895874.
    assert rows["2025-10-05"]["explained"] == [
        {
            "code": "price_mismatch",
            "message": "the bill's cost of gpt-4o, $0.895874000, is not its tokens at the "
            "table's prices, $0.247260000: a price looks out of date (fetch the costs grouped "
            "by line item to see which)",
        }
    ]
    assert codes(rows["2025-10-06"]) == ["price_mismatch"]
    # 2025-10-08 was billed $0.5455665 with no usage: the cost has no model to go to; and the
    # saved usage export has no bucket at all for 2025-10-09.
    assert result["days_not_covered"] == [
        {"day": "2025-10-08", "why": "the cost report does not split $0.5455665000000000 of "
                                     "2025-10-08 by model (ask for it grouped by line item or "
                                     "description)"},
        {"day": "2025-10-09", "why": "the usage report has no bucket for 2025-10-09"},
    ]  # fmt: skip
    # 0.895874 + 0.56177125 + 0.569788 + 0.5455665 + 0.3409 + 0.072054
    assert result["totals"]["provider"]["cost_usd"] == "2.985953750"
    assert result["matched"] is False
