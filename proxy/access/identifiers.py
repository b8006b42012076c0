"""One spelling per identifier: customer ids, end-user ids and tags. Pure.

Clients and operators write the same name in different Unicode forms: a precomposed "é"
or "e" + a combining accent, a fullwidth "ａcme" typed on a CJK keyboard. Each would be
a customer (or end user, or tag) of its own: a budget or a report by one spelling misses
the spend of the other. Identifiers are therefore normalised to NFKC wherever they enter
(request headers and body, config, admin API, CLI): NFC's canonical forms, plus the
compatibility mappings (fullwidth and halfwidth forms, ligatures, superscripts) that
plain NFC leaves apart. Tag names are also case-folded ("Env" is "env"); customer ids,
end-user ids and tag values keep their case.
"""

from __future__ import annotations

import unicodedata

__all__ = ["normal_id", "normal_tag", "normal_tag_name"]


def normal_id(value: str) -> str:
    """A customer id, end-user id or tag value in its one spelling (NFKC)."""
    if value.isascii():  # the common case, already normal: no table lookups
        return value
    return unicodedata.normalize("NFKC", value)


def normal_tag_name(name: str) -> str:
    """A tag's name: NFKC, then case-folded (and NFKC again: folding may denormalise)."""
    if name.isascii():
        return name.lower()
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def normal_tag(tag: str) -> str:
    """ "Env=Prod" → "env=Prod": a `name=value` tag as it is counted."""
    name, sep, value = tag.partition("=")
    return f"{normal_tag_name(name)}{sep}{normal_id(value)}"
