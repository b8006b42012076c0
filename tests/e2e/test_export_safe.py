"""CSV an operator opens in a spreadsheet never runs what a client sent: text cells that
begin like a formula are written with a leading apostrophe, in the export and the report.
JSON Lines keeps the values as sent."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
import uuid

import aiohttp
import orjson
import pytest

from tests.support.procs import REPO
from tests.support.stack import ADMIN_TOKEN, BACKEND_KEY, ENV, Stack

HOSTILE = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def report_csv(stack: Stack, customer: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "report", "--customer", customer,
         "--group-by", "end_user", "--format", "csv", "--url", stack.url],
        cwd=REPO, env={**os.environ, **ENV, "COSTPROXY_ADMIN_TOKEN": ADMIN_TOKEN},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
async def test_formula_cells_are_escaped_in_csv_only(stack: Stack, http: aiohttp.ClientSession):
    customer = f"csv-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {BACKEND_KEY}", "X-Customer-Id": customer}
    for end_user in HOSTILE:
        body = {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "x"}],
            "user": end_user,
        }
        async with http.post(stack.url + "/v1/chat/completions", json=body, headers=headers) as r:
            assert r.status == (200 if end_user.isprintable() else 400), await r.text()

    params = {"customer": customer, "format": "csv"}
    async with http.get(stack.url + "/admin/v1/usage", params=params,
                        headers=stack.admin_headers) as resp:  # fmt: skip
        rows = list(csv.DictReader(io.StringIO(await resp.text())))
    async with http.get(stack.url + "/admin/v1/usage", params={**params, "format": "jsonl"},
                        headers=stack.admin_headers) as resp:  # fmt: skip
        sent = {orjson.loads(line)["end_user"] for line in (await resp.text()).splitlines()}

    # Control characters are refused at the door (400); the rest is recorded as sent.
    accepted = [u for u in HOSTILE if u.isprintable()]
    assert sent == set(accepted)
    assert sorted(row["end_user"] for row in rows) == sorted("'" + u for u in accepted)
    assert all(row["customer"] == customer for row in rows)  # plain text is left alone

    lines = list(csv.reader(io.StringIO(await asyncio.to_thread(report_csv, stack, customer))))
    assert lines[0][0] == "end_user"
    assert sorted(line[0] for line in lines[1:-1]) == sorted("'" + u for u in accepted)
