"""`costproxy budgets set/list/delete` against the embedded store, as an operator runs it."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.support.procs import costproxy


def test_set_list_delete(tmp_path: Path) -> None:
    config = {
        "store": {"backend": "sqlite", "sqlite_path": str(tmp_path / "c.db")},
        "providers": {"p": {"base_url": "http://127.0.0.1:1/v1"}},
        "models": {"m": {"targets": [{"provider": "p", "model": "m"}]}},
        "customers": {"acme": {"budgets": [{"period": "daily", "limit_usd": 5}]}},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))

    result = costproxy("budgets", "set", "acme", "--monthly", "500", "--alert-at", "50,80,100",
                       "-c", str(path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    listed = costproxy("budgets", "list", "-c", str(path))
    assert listed.returncode == 0, listed.stderr
    lines = [line.split() for line in listed.stdout.splitlines()[2:]]
    assert lines[0][:6] == ["customer/acme", "runtime", "daily", "5.00", "True", "50,80,100"]
    assert lines[1][:4] == ["customer/acme", "runtime", "monthly", "500.00"]

    bad = costproxy("budgets", "set", "acme", "--weekly", "-3", "-c", str(path))
    assert bad.returncode == 2
    assert "greater than or equal to 0" in bad.stderr

    deleted = costproxy("budgets", "delete", "acme", "--config", str(path))
    assert deleted.returncode == 0
    assert deleted.stdout.startswith("customer/acme: run-time budgets deleted")
    after = costproxy("budgets", "list", "--config", str(path)).stdout
    assert "config" in after and "monthly" not in after
