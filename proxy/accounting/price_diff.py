"""What changed between two catalogue versions, and where the config departs from the
catalogue. Pure: both sides come in as plain JSON-like data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Change", "ModelChange", "diff_catalogues", "diff_prices", "flatten"]

ABSENT = "-"


@dataclass(frozen=True, slots=True)
class Change:
    path: str  # e.g. "prices.always.input_mtok"
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class ModelChange:
    key: str  # "provider/model"
    kind: Literal["added", "removed", "changed"]
    changes: tuple[Change, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.key,
            "change": self.kind,
            "leaves": [{"path": c.path, "old": c.old, "new": c.new} for c in self.changes],
        }


def flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    """{"a": {"b": "1"}} → {"a.b": "1"}; leaves as strings."""
    if isinstance(tree, Mapping):
        out: dict[str, str] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(tree, list):
        out = {}
        for index, value in enumerate(tree):
            out.update(flatten(value, f"{prefix}[{index}]"))
        return out
    return {prefix: str(tree)}


def diff_prices(old: Any, new: Any) -> tuple[Change, ...]:
    """Every leaf that differs, added or removed, in path order."""
    a, b = flatten(old), flatten(new)
    return tuple(
        Change(path, a.get(path, ABSENT), b.get(path, ABSENT))
        for path in sorted(a.keys() | b.keys())
        if a.get(path) != b.get(path)
    )


def diff_catalogues(
    old: Mapping[str, Any], new: Mapping[str, Any], provider: str | None = None
) -> list[ModelChange]:
    """Two catalogue dumps (see catalogue_dump), model by model; `provider` keeps only
    that provider's models."""
    old_models: Mapping[str, Any] = old["models"]
    new_models: Mapping[str, Any] = new["models"]
    keys = sorted(old_models.keys() | new_models.keys())
    if provider is not None:
        keys = [k for k in keys if k.split("/", 1)[0] == provider]
    out: list[ModelChange] = []
    for key in keys:
        if key not in old_models:
            out.append(ModelChange(key, "added", diff_prices({}, new_models[key])))
        elif key not in new_models:
            out.append(ModelChange(key, "removed"))
        elif changes := diff_prices(old_models[key], new_models[key]):
            out.append(ModelChange(key, "changed", changes))
    return out
