"""`costproxy check-config FILE`: every problem of a config in one run, in plain words.

Loading a config stops at its first unset variable, and pydantic says "Extra inputs are
not permitted" for a typo. This check goes on: it notes every `${VAR}` that is not set,
validates with a stand-in value for each (so the rest is still checked), names every
unknown key with the closest known one, every model target naming an undefined provider,
and then runs the complete check a reload makes (prices, what-if rules, strategies).
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from proxy.config import ENV_REF, Config, interpolate_env, load_yaml
from proxy.errors import ConfigError
from proxy.published_secrets import published_secret_problems
from proxy.state import Snapshot, build_snapshot

__all__ = ["add_check_command", "diagnose"]

# Stands in for an unset variable while the rest is validated: an http URL (base_url and
# webhook checks pass) long enough for a token.
_STAND_IN = "http://unset.invalid/stand-in-value"

Path_ = tuple[str | int, ...]


def _dotted(path: Path_) -> str:
    return ".".join(str(part) for part in path) or "<root>"


def unset_variables(data: Any, env: Mapping[str, str], path: Path_ = ()) -> dict[Path_, str]:
    """Where the tree refers to a variable that is unset and has no default: path -> name."""
    found: dict[Path_, str] = {}
    if isinstance(data, str):
        for match in ENV_REF.finditer(data):
            name, default = match.group(1), match.group(2)
            if default is None and name not in env:
                found[path] = name
    elif isinstance(data, dict):
        for key, value in data.items():
            found |= unset_variables(value, env, (*path, str(key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found |= unset_variables(value, env, (*path, i))
    return found


def _model_at(path: Path_) -> type[BaseModel] | None:
    """The config model that a key at `path` belongs to (path without the key itself)."""
    model: Any = Config
    parts = list(path)
    while parts:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        part = parts.pop(0)
        field = next(
            (f for n, f in model.model_fields.items() if part in (n, f.alias)),
            None,
        )
        if field is None:
            return None
        model = _unwrap(field.annotation, parts)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(annotation: Any, parts: list[str | int]) -> Any:
    """The type inside Optional/Annotated/list/dict; a list index or dict key in `parts`
    that selects an item is consumed."""
    while True:
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is typing.Annotated:
            annotation = args[0]
        elif origin in (typing.Union, types.UnionType):
            annotation = next(a for a in args if a is not type(None))
        elif origin in (list, tuple) and args:
            if parts:
                parts.pop(0)
            annotation = args[0]
        elif origin is dict and len(args) == 2:
            if parts:
                parts.pop(0)
            annotation = args[1]
        else:
            return annotation


def _known_keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _unknown_key(path: Path_) -> str:
    key = str(path[-1])
    model = _model_at(path[:-1])
    if model is None:
        return f"{_dotted(path)}: unknown key {key!r}"
    known = _known_keys(model)
    hint = _did_you_mean(key, known) or f" (known here: {', '.join(known)})"
    return f"{_dotted(path)}: unknown key {key!r}{hint}"


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _message(error: Mapping[str, Any]) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "literal_error" and isinstance(error.get("input"), str):
        choices = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
        message = f"{error['input']!r}: {message}{_did_you_mean(error['input'], choices)}"
    return message


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dangling_providers(data: Any) -> list[str]:
    if not isinstance(data, dict):
        return []
    providers = _mapping(data.get("providers"))
    models = _mapping(data.get("models"))
    known = ", ".join(sorted(map(str, providers))) or "none"
    problems = []
    for route, spec in models.items():
        targets = spec.get("targets") if isinstance(spec, dict) else None
        for i, target in enumerate(targets if isinstance(targets, list) else []):
            name = target.get("provider") if isinstance(target, dict) else None
            if isinstance(name, str) and name not in providers:
                hint = _did_you_mean(name, list(map(str, providers))) or f" (known: {known})"
                problems.append(
                    f"models.{route}.targets.{i}.provider: {name!r} is not defined under "
                    f"providers{hint}"
                )
    return problems


def diagnose(text: str, env: Mapping[str, str], source: str = "<config>") -> list[str]:
    """Every problem of a config text; empty when it is valid (reload-level checks too)."""
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        return [f"not valid YAML: {exc}"]
    if not isinstance(data, dict):
        return ["the top level must be a mapping"]
    unset = unset_variables(data, env)
    problems = [
        f"{_dotted(path)}: environment variable {name} is not set "
        f"(set it, or write ${{{name}:-default}})"
        for path, name in unset.items()
    ]
    stand_ins = {name: _STAND_IN for name in unset.values()}
    resolved = interpolate_env(data, {**env, **stand_ins})
    dangling = _dangling_providers(resolved)
    problems += dangling
    try:
        config = Config.model_validate(resolved)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            path = tuple(error["loc"])
            if error["type"] == "extra_forbidden":
                problems.append(_unknown_key(path))
            elif path in unset:
                continue  # the stand-in's own complaint: the unset variable says it
            elif not any(d in error["msg"] for d in dangling):
                problems.append(f"{_dotted(path)}: {_message(error)}")
        return problems
    problems += published_secret_problems(data, resolved)
    if problems:
        return problems
    try:
        build_snapshot(config, source=source)
    except ConfigError as exc:
        return [str(exc).removeprefix(f"{source}: ").removeprefix("invalid config: ")]
    return []


def unpriced_target_problems(snapshot: Snapshot) -> list[str]:
    """One line per route target without a price (for check-config), saying why."""
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for route in snapshot.routes.values():
        for target in route.targets:
            if target.price is not None or target.key in seen:
                continue
            seen.add(target.key)
            provider = target.provider
            answer = snapshot.prices.resolve(
                provider.price_namespace, target.model, provider.config.base_url, provider.kind
            )
            why = getattr(answer, "reason", "no price")
            problems.append(
                f"models.{route.name}: target {provider.name}/{target.model} has no price "
                f"({why}); its requests would be recorded with an unknown cost"
            )
    return problems


def report(path: str, env: Mapping[str, str]) -> tuple[str, bool]:
    """(what to print, valid) for the config file at `path`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        return f"{path}: cannot read config: {exc.strerror}", False
    problems = diagnose(text, env, source=path)
    if problems:
        lines = [f"{path}: {len(problems)} problem(s):", *(f"  {p}" for p in problems)]
        return "\n".join(lines), False
    config = Config.model_validate(interpolate_env(load_yaml(text), env))
    lines = [
        f"{path}: valid ({len(config.providers)} providers, {len(config.models)} models, "
        f"{len(config.keys)} keys)"
    ]
    # Warnings, not errors: the proxy serves such targets (with an unknown cost), and a
    # config may route to one on purpose (the compose demo does).
    snapshot = build_snapshot(config, source=path)
    lines += [f"warning: {problem}" for problem in unpriced_target_problems(snapshot)]
    return "\n".join(lines), True


def cmd_check_config(args: argparse.Namespace) -> int:
    text, valid = report(args.config, os.environ)
    print(text, file=sys.stdout if valid else sys.stderr)
    return 0 if valid else 1


def add_check_command(sub: argparse._SubParsersAction) -> None:
    check = sub.add_parser(
        "check-config", help="name every problem of a config file (exit 0 valid, 1 invalid)"
    )
    check.add_argument("config")
    check.set_defaults(func=cmd_check_config)
