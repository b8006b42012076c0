"""accounting.record_view: one record shape for the admin API and the export."""

from __future__ import annotations

from proxy.accounting.export import COLUMNS
from proxy.accounting.record_view import RECORD_JSON_FIELDS, record_json
from tests.support.records import make_record


def test_money_leaves_as_nine_decimal_strings_and_what_if_as_an_object() -> None:
    record = make_record(
        cost_nusd=1_234_567_891,
        provider_cost_nusd=5,
        billable_nusd=None,
        what_if={"rival/b": 12, "rival/a": 3_000_000_000},
        tags=("env=prod",),
    )
    view = record_json(record)
    assert (view["cost_usd"], view["provider_cost_usd"], view["billable_usd"]) == (
        "1.234567891",
        "0.000000005",
        None,
    )
    assert view["what_if"] == {"rival/a": "3.000000000", "rival/b": "0.000000012"}
    assert view["tags"] == ["env=prod"]
    assert not any(name.endswith("_nusd") for name in view)
    assert tuple(view) == RECORD_JSON_FIELDS == COLUMNS


def test_an_unpriced_record_and_no_alternatives() -> None:
    view = record_json(make_record(cost_nusd=None))
    assert (view["cost_usd"], view["what_if"]) == (None, {})
