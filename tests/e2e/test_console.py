"""The spend console in a real browser (Debian's chromium driven by Playwright), against a
real proxy on each store, with traffic sent by the official openai SDK.

Screenshots of every page are written to a temporary directory (printed at the end of the
module) as test artefacts.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI
from playwright.async_api import Playwright, async_playwright

from tests.support.browser import PageWatch, browser
from tests.support.procs import ServerProcess, costproxy, free_port, start_proxy
from tests.support.stack import (
    ACME_KEY,
    ADMIN_TOKEN,
    BACKEND_KEY,
    ENV,
    GLOBEX_KEY,
    Stack,
    base_config,
)

TODAY = datetime.now(UTC).date().isoformat()
RANGE = f"from={TODAY}&to={TODAY}"
PAGES = [
    "/ui/",
    "/ui/customers",
    "/ui/customers/acme",
    "/ui/requests",
    "/ui/budgets",
    "/ui/keys",
    "/ui/prices",
    "/ui/export",
]


@pytest.fixture(scope="module")
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def shots(stack: Stack) -> Iterator[Path]:
    """The screenshots' directory: $COSTPROXY_TEST_ARTEFACTS/<store> when set, else a new
    temporary directory (outside pytest's own, which keeps only its last few runs)."""
    base = os.environ.get("COSTPROXY_TEST_ARTEFACTS")
    if base:
        path = Path(base) / f"console-{stack.backend}"
        path.mkdir(parents=True, exist_ok=True)
    else:
        path = Path(tempfile.mkdtemp(prefix=f"costproxy-console-{stack.backend}-"))
    yield path
    print(f"\nconsole screenshots ({stack.backend}): {path}", file=sys.stderr)


def sdk(stack: Stack, key: str, **headers: str) -> AsyncOpenAI:
    return AsyncOpenAI(
        base_url=stack.url + "/v1", api_key=key, max_retries=0, default_headers=headers
    )


async def chat(client: AsyncOpenAI, model: str = "gpt-4o-mini") -> str:
    """One request through the proxy; its x-request-id."""
    raw = await client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "Tell me a story"}]
    )
    return raw.headers["x-request-id"]


@pytest.fixture(scope="module")
async def traffic(stack: Stack) -> dict[str, str]:
    """Real traffic for the module: two customers, a tagged request, an unpriced model."""
    ids = {}
    async with sdk(stack, ACME_KEY) as acme, sdk(stack, GLOBEX_KEY) as globex:
        ids["acme"] = await chat(acme)
        await chat(acme, "story")
        ids["globex"] = await chat(globex)
        ids["unpriced"] = await chat(globex, "unpriced")
    async with sdk(
        stack, BACKEND_KEY, **{"X-Customer-Id": "initech", "X-Cost-Tags": "feature=search"}
    ) as backend:
        ids["initech"] = await chat(backend)
    return ids


async def login(watch: PageWatch, stack: Stack, path: str = "/ui/") -> None:
    page = watch.page
    await page.goto(stack.url + path)
    assert "/ui/login" in page.url
    await page.fill("input[name=token]", ADMIN_TOKEN)
    await page.click("form.login button[type=submit]")
    await page.wait_for_url(re.compile(re.escape(stack.url + path) + "$"))


async def exact(page, selector: str) -> Decimal:
    """The exact amount behind a money cell (its data-usd), as a Decimal."""
    return Decimal(await page.locator(selector).first.get_attribute("data-usd"))


async def test_a_page_without_a_session_gets_the_login_page(
    playwright: Playwright, stack: Stack
) -> None:
    async with browser(playwright) as watch:
        for path in ("/ui/", "/ui/customers/acme", "/ui/keys"):
            response = await watch.page.goto(stack.url + path)
            assert response is not None and response.status == 200
            assert watch.page.url.startswith(stack.url + "/ui/login?next=")
            assert await watch.page.locator("input[type=password][name=token]").count() == 1
        await watch.page.fill("input[name=token]", "not-the-admin-token-at-all")
        await watch.page.click("form.login button[type=submit]")
        assert await watch.page.locator(".error").inner_text() == "That is not the admin token."
        assert watch.errors and all("401" in e for e in watch.errors)  # the failed login only
    # A change without a session (and without its CSRF token) is refused.
    async with (
        aiohttp.ClientSession() as http,
        http.post(stack.url + "/ui/keys", data={"customer": "x"}) as resp,
    ):
        assert resp.status == 403


async def test_every_page_renders_without_errors_and_with_a_strict_policy(
    playwright: Playwright, stack: Stack, traffic: dict[str, str], shots: Path
) -> None:
    async with browser(playwright) as watch:
        await login(watch, stack)
        page = watch.page
        for path in [*PAGES, f"/ui/requests/{traffic['acme']}"]:
            response = await page.goto(stack.url + path)
            assert response is not None and response.status == 200, path
            headers = response.headers
            assert "script-src 'self'" in headers["content-security-policy"]
            assert "unsafe-inline" not in headers["content-security-policy"]
            assert headers["x-frame-options"] == "DENY"
            assert float(headers["server-timing"].split("dur=")[1]) >= 0
            assert await page.locator("h1").count() == 1
            html = await page.content()
            assert ADMIN_TOKEN not in html
            name = path.strip("/").replace("/", "_") or "overview"
            await page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        assert watch.errors == []
        [cookie] = await watch.context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert ADMIN_TOKEN not in cookie["value"]
        assert cookie["expires"] > datetime.now(UTC).timestamp() + 11 * 3600
        # Nothing in browser storage either.
        stored = await page.evaluate("() => [localStorage.length, sessionStorage.length]")
        assert stored == [0, 0]


async def test_overview_and_customer_totals_equal_the_spend_api(
    playwright: Playwright, stack: Stack, traffic: dict[str, str], http: aiohttp.ClientSession
) -> None:
    everyone = await stack.spend(http, **{"from": TODAY, "to": TODAY, "group_by": "model"})
    acme = await stack.spend(
        http, customer="acme", **{"from": TODAY, "to": TODAY, "group_by": "model"}
    )
    async with browser(playwright) as watch:
        await login(watch, stack)
        page = watch.page
        await page.goto(f"{stack.url}/ui/?{RANGE}")
        total = everyone["total"]
        assert await exact(page, "table.by-model tfoot .usd") == Decimal(total["cost_usd"])
        assert await exact(page, ".card:has-text('This range') .usd") == Decimal(total["cost_usd"])
        rows = page.locator("table.by-model tbody .usd")
        assert sum(
            [Decimal(v) for v in await rows.evaluate_all("e => e.map(x => x.dataset.usd)")]
        ) == Decimal(total["cost_usd"])
        # Unpriced traffic is listed apart from $0, with its request count.
        unpriced_row = page.locator("table.unpriced-models tbody tr", has_text="no-price-model")
        assert await unpriced_row.locator("td").nth(2).inner_text() == str(
            total["unpriced_requests"]
        )
        assert (
            await page.locator("table.by-model tbody tr", has_text="no-price-model")
            .locator(".unpriced")
            .count()
            == 1
        )

        # What-if: actual and alternative per alternative, as GET /admin/v1/spend?what_if=1.
        what_if = await stack.spend(http, **{"from": TODAY, "to": TODAY, "what_if": "1"})
        assert what_if["what_if"]["groups"]
        for group in what_if["what_if"]["groups"]:
            row = page.locator("table.what-if tbody tr", has_text=group["alternative"])
            amounts = await row.locator(".usd").evaluate_all("e => e.map(x => x.dataset.usd)")
            assert [Decimal(a) for a in amounts[:2]] == [
                Decimal(group["actual_cost_usd"]),
                Decimal(group["alternative_cost_usd"]),
            ]

        await page.goto(f"{stack.url}/ui/customers/acme?{RANGE}")
        assert await exact(page, "table.by-model tfoot .usd") == Decimal(acme["total"]["cost_usd"])
        by_model = {g["model"]: Decimal(g["cost_usd"]) for g in acme["groups"]}
        for model, cost in by_model.items():
            row = page.locator("table.by-model tbody tr", has_text=model)
            assert await exact(row, ".usd") == cost
        requests_cell = page.locator("table.by-model tfoot td").nth(2)
        assert await requests_cell.inner_text() == str(acme["total"]["requests"])

        await page.goto(f"{stack.url}/ui/customers?{RANGE}")
        customers = await stack.spend(http, **{"from": TODAY, "to": TODAY, "group_by": "customer"})
        for group in customers["groups"]:
            row = page.locator(
                "table.customers tbody tr", has=page.locator(f"a:text-is('{group['customer']}')")
            )
            assert await exact(row, ".usd") == Decimal(group["cost_usd"])
        assert await exact(page, "table.customers tfoot tr:last-child .usd") == Decimal(
            customers["total"]["cost_usd"]
        )
        assert watch.errors == []


async def test_the_requests_page_shows_a_request_just_made(
    playwright: Playwright, stack: Stack, http: aiohttp.ClientSession
) -> None:
    async with sdk(stack, ACME_KEY) as acme:
        request_id = await chat(acme)
    record = await stack.usage(http, request_id)
    async with browser(playwright) as watch:
        await login(watch, stack, "/ui/requests")
        page = watch.page
        link = page.locator(f"a[href='/ui/requests/{request_id}']")
        assert await link.count() == 1
        await link.click()
        await page.wait_for_url(f"{stack.url}/ui/requests/{request_id}")
        assert await page.locator("h1").inner_text() == f"Request {request_id}"
        assert await exact(page, "main .usd") == Decimal(record["cost_usd"])
        await page.goto(f"{stack.url}/ui/requests?customer=globex")
        assert await page.locator(f"a[href='/ui/requests/{request_id}']").count() == 0
        assert watch.errors == []


async def test_a_key_issued_in_the_console_works_until_revoked_there(
    playwright: Playwright, stack: Stack, shots: Path
) -> None:
    customer = f"console-{uuid.uuid4().hex[:6]}"
    async with browser(playwright) as watch:
        await login(watch, stack, "/ui/keys")
        page = watch.page
        await page.fill("form.inline input[name=customer]", customer)
        await page.fill("form.inline input[name=name]", "from-the-console")
        await page.click("form.inline button[type=submit]")
        secret = (await page.locator("#secret").inner_text()).strip()
        assert secret.startswith("cp-")
        await page.screenshot(path=str(shots / "key_issued.png"), full_page=True)
        await page.goto(stack.url + "/ui/keys")  # shown once: the list never shows it
        assert secret not in await page.content()

        async with sdk(stack, secret) as client:
            await chat(client)
            # Rotate (confirmation page, no grace period): the new secret works, the old not.
            row = page.locator("table.keys tbody tr", has_text=customer)
            await row.locator("a.button:text-is('Rotate')").click()
            assert (await page.locator("h1").inner_text()).startswith("Rotate key")
            await page.fill("input[name=grace_s]", "0")
            await page.click("form button[type=submit]:text-is('Rotate the key')")
            rotated = (await page.locator("#secret").inner_text()).strip()
            assert rotated.startswith("cp-") and rotated != secret
            with pytest.raises(openai.AuthenticationError):
                await chat(client)
        async with sdk(stack, rotated) as client:
            await chat(client)
            await page.goto(stack.url + "/ui/keys")
            row = page.locator("table.keys tbody tr", has_text=customer)
            await row.locator("a.danger").click()  # Revoke: a confirmation page first
            assert (await page.locator("h1").inner_text()).startswith("Revoke key")
            await page.click("button.danger")
            await page.wait_for_url(re.compile(r"/ui/keys\?revoked="))
            assert await page.locator("table.keys tbody tr", has_text=customer).count() == 0
            with pytest.raises(openai.AuthenticationError):
                await chat(client)
        assert watch.errors == []


async def test_a_customer_link_shows_that_customer_alone_until_revoked(
    playwright: Playwright,
    stack: Stack,
    traffic: dict[str, str],
    http: aiohttp.ClientSession,
    shots: Path,
) -> None:
    config = stack.proxy.args[stack.proxy.args.index("--config") + 1]
    env = {**os.environ, **ENV}
    made = costproxy("customers", "share", "acme", "--days", "1", "--config", config,
                     "--base-url", stack.url, env=env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    url = made.stdout.strip()
    assert url.startswith(stack.url + "/ui/share/cps-")
    share_id = re.search(r"(share_[0-9a-f]+)", made.stderr)[1]
    acme = await stack.spend(http, customer="acme", **{"from": TODAY, "to": TODAY})

    async with browser(playwright) as watch:
        page = watch.page
        await page.goto(url)
        assert page.url.startswith(stack.url + "/ui/customers/acme")  # the secret left the URL
        await page.goto(f"{stack.url}/ui/customers/acme?{RANGE}")
        assert await exact(page, "table.by-model tfoot .usd") == Decimal(acme["total"]["cost_usd"])
        assert "globex" not in (await page.content()).lower()
        await page.screenshot(path=str(shots / "shared_customer.png"), full_page=True)
        for path, status in [
            ("/ui/customers/globex", 404),
            (f"/ui/requests/{traffic['globex']}", 404),
            ("/ui/", 403),
            ("/ui/customers", 403),
            ("/ui/keys", 403),
        ]:
            response = await page.goto(stack.url + path)
            assert response is not None and response.status == status, path
        await page.goto(stack.url + "/ui/requests?customer=globex")  # its own requests only
        assert await page.locator(f"a[href='/ui/requests/{traffic['acme']}']").count() == 1
        assert await page.locator(f"a[href='/ui/requests/{traffic['globex']}']").count() == 0

        revoked = costproxy("customers", "unshare", share_id, "--config", config, env=env)
        assert revoked.returncode == 0, revoked.stderr
        await page.goto(f"{stack.url}/ui/customers/acme")
        assert "/ui/login" in page.url  # the session ended with the link
        response = await page.goto(url)
        assert response is not None and response.status == 404
    listed = costproxy("customers", "shares", "acme", "--config", config, env=env)
    assert f"{share_id}  acme" in listed.stdout and "revoked" in listed.stdout


async def test_the_console_is_on_the_admin_listener_when_it_has_one(
    upstream: ServerProcess, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    config = base_config(upstream.url, {"backend": "sqlite", "sqlite_path": str(tmp_path / "db")})
    admin_port = free_port()
    config["admin"] = {**config["admin"], "host": "127.0.0.1", "port": admin_port}
    proxy = start_proxy(config, tmp_path, ENV)
    try:
        for path in ("/ui/login", "/ui/", "/ui/static/console.css"):
            async with http.get(proxy.url + path, allow_redirects=False) as resp:
                assert resp.status == 404, path  # not on the client listener
            async with http.get(
                f"http://127.0.0.1:{admin_port}{path}", allow_redirects=False
            ) as resp:
                assert resp.status in (200, 303), path
        made = costproxy(
            "customers", "share", "acme", "--config", proxy.args[-1], env={**os.environ, **ENV}
        )
        assert made.stdout.startswith(f"http://127.0.0.1:{admin_port}/ui/share/cps-")
    finally:
        proxy.stop()


async def test_changes_need_the_sessions_csrf_token_and_our_origin(stack: Stack) -> None:
    jar = aiohttp.CookieJar(unsafe=True)  # keeps cookies of 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        login = {"token": ADMIN_TOKEN, "next": "/ui/keys"}
        async with http.post(stack.url + "/ui/login", data=login, allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/ui/keys"
        async with http.get(stack.url + "/ui/keys") as resp:
            page = await resp.text()
        token = re.search(r'name="csrf" value="([^"]+)"', page)[1]
        customer = f"csrf-{uuid.uuid4().hex[:6]}"
        for data, headers in [
            ({"customer": customer}, {}),  # no token
            ({"customer": customer, "csrf": token[:-2] + "xx"}, {}),  # a wrong one
            ({"customer": customer, "csrf": token}, {"Origin": "https://evil.example"}),
        ]:
            async with http.post(stack.url + "/ui/keys", data=data, headers=headers) as resp:
                assert resp.status == 403
        async with http.post(
            stack.url + "/ui/keys", data={"customer": customer, "csrf": token}
        ) as resp:
            assert resp.status == 200 and 'id="secret"' in await resp.text()
        async with http.get(
            stack.url + "/admin/v1/keys", params={"customer": customer}, headers=stack.admin_headers
        ) as resp:
            assert len((await resp.json())["keys"]) == 1  # only the one with the right token
