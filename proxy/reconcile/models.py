"""Which row of the proxy's records a model named in a provider's report belongs to. Pure.

The proxy records the upstream model as the config names it, often an alias ("gpt-4o-mini",
"claude-sonnet-4-5"); the reports name the dated snapshot that served it
("gpt-4o-mini-2024-07-18", "claude-sonnet-4-5-20250929"). The rule, in order:

1. a report model the proxy recorded under exactly that name is that row;
2. otherwise, a report model whose name without its date suffix ("-YYYY-MM-DD" or
   "-YYYYMMDD") the proxy recorded is that alias's row;
3. otherwise it keeps its own name (traffic the proxy did not see under any name).

Two snapshots of one alias on one day land in the alias's row together. Aliases that are
not a prefix of the snapshot ("claude-3-5-sonnet-latest") do not match: route such models
by their dated name to reconcile them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["match_models", "undated"]

_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")


def undated(model: str) -> str:
    """The model name without a snapshot date suffix."""
    return _DATE_SUFFIX.sub("", model)


def match_models(proxy_models: Iterable[str], report_models: Iterable[str]) -> Mapping[str, str]:
    """Report model name → the row model it is compared under."""
    recorded = set(proxy_models)
    matched: dict[str, str] = {}
    for model in report_models:
        if model in recorded:
            matched[model] = model
        elif (alias := undated(model)) in recorded:
            matched[model] = alias
        else:
            matched[model] = model
    return matched
