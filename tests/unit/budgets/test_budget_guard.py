"""The budget step with a fake store: no budget means no store call at all."""

from __future__ import annotations

from proxy.access.auth import Attribution, Principal
from proxy.apis import OPENAI
from proxy.budgets.alert_delivery import AlertDispatcher
from proxy.budgets.book import BudgetBook
from proxy.budgets.guard import BudgetGuard
from proxy.budgets.webhooks import WebhookSender
from proxy.config import BudgetingConfig
from proxy.pipeline.exchange import Exchange
from proxy.routing.routes import Route


class NoStore:
    def __getattr__(self, name: str):
        raise AssertionError(f"the store was asked for {name} with no budgets configured")


def exchange() -> Exchange:
    return Exchange(
        request_id="req_1",
        ts_ms=0,
        started=0.0,
        endpoint="chat.completions",
        api=OPENAI,
        payload={"messages": []},
        principal=Principal("k1", "acme", False),
        attribution=Attribution("acme", "p1", ("f=s",)),
        route=Route("m", ()),
        target=None,  # type: ignore[arg-type]
    )


async def test_no_budgets_no_store_round_trip() -> None:
    store = NoStore()
    guard = BudgetGuard(
        store,  # type: ignore[arg-type]
        BudgetBook({}, {}),
        BudgetingConfig(),
        AlertDispatcher(store, WebhookSender([])),  # type: ignore[arg-type]
    )
    hold = await guard.reserve(None, exchange(), 100)  # type: ignore[arg-type]
    assert hold is None
    guard.settle(hold, 123)
    await guard.drain()
