"""Whether the model an upstream says answered is the model the request is billed as.
Pure: no I/O.

A provider names the snapshot that served a request (`gpt-4o` is answered by
`gpt-4o-2024-08-06`): a dated or versioned snapshot of the billed model is a match. Any
other name means the request may have been served (and charged by the provider) as
another model than the one the proxy bills: the proxy counts and logs it.
"""

from __future__ import annotations

import re

__all__ = ["answered_as_billed"]

# What may follow the billed name in a snapshot's name: a date or version after "-", ":"
# or "@" (gpt-4o-2024-08-06, gpt-4-0613, claude-3-5-sonnet-20241022, gemini-1.5-pro-002,
# mistral-large-2407, gpt-3.5-turbo-instruct:20230824-v2, claude-sonnet-4@20250514).
_SNAPSHOT = re.compile(r"[-:@]\d[\d.\-]*(?:-v\d+)?")


def answered_as_billed(billed: str, wire: str, answered: str | None) -> bool:
    """`billed`: the target's model; `wire`: the name sent upstream (an Azure deployment);
    `answered`: the response's `model` (None: the answer did not say, nothing to check)."""
    if not answered:
        return True
    answered = answered.lower()
    for name in {billed.lower(), wire.lower()}:
        if answered == name:
            return True
        if answered.startswith(name) and _SNAPSHOT.fullmatch(answered, len(name)):
            return True
    return False
