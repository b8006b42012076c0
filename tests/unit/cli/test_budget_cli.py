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

    result = costproxy("budgets", "-c", str(path), "set", "acme", "--monthly", "500",
                       "--alert-at", "50,80,100")  # fmt: skip
    assert result.returncode == 0, result.stderr
    listed = costproxy("budgets", "-c", str(path), "list")
    assert listed.returncode == 0, listed.stderr
    lines = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert lines[0][:6] == ["customer/acme", "runtime", "daily", "5.00", "True", "[50,"]
    assert lines[1][:4] == ["customer/acme", "runtime", "monthly", "500.00"]

    bad = costproxy("budgets", "-c", str(path), "set", "acme", "--weekly", "-3")
    assert bad.returncode == 2
    assert "greater than or equal to 0" in bad.stderr

    assert costproxy("budgets", "-c", str(path), "delete", "acme").returncode == 0
    after = costproxy("budgets", "-c", str(path), "list").stdout
    assert "config" in after and "monthly" not in after
