"""Hot reload of the config file: on SIGHUP, on POST /admin/v1/reload, or on change (watch).

The new file is validated completely (parsed, every reference and price resolved) before
it replaces the running config; an invalid one is rejected with the reason, and the old
config keeps serving. See `runtime` for how requests in flight and pools are kept.

`SECTIONS` says, for every section of the config, how a change to it takes effect:
through the snapshot (read at use time), through named hooks that the parts built at
start-up register, or only on restart (a reload that changes it is refused, naming it).
A test holds it to `Config`'s fields, so no section can be forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from aiohttp import web

from proxy.config import Config, load_config_text
from proxy.errors import ConfigError
from proxy.state import ProxyState, Snapshot, build_snapshot

__all__ = [
    "RELOADER",
    "RESTART_ONLY",
    "SECTIONS",
    "Reloader",
    "changed_sections",
    "describe_changes",
    "restart_only_changes",
]

log = logging.getLogger("costproxy.reload")

Hook = Callable[[Config], None]

# Section (a field of Config, by its YAML name) -> the hooks that apply it, besides the
# snapshot swap. () means the snapshot alone: whatever reads it reads it per use.
SECTIONS: Mapping[str, tuple[str, ...]] = {
    "server": (),  # restart only (below)
    "store": (),  # restart only
    "admin": (),  # the token is read per request; host and port: restart only
    "metrics": (),  # the token is read per scrape; the rest: restart only
    "request_log": ("request_log",),
    "auth_failures": (),  # read at each failed authentication
    # Target figures and breakers follow the targets that remain (see routing.target_health);
    # unchanged providers keep their connection pools (see runtime).
    "providers": ("breakers",),
    "models": ("breakers",),
    "prices": ("breakers",),  # resolved into the snapshot's route targets
    "billing": (),  # the snapshot's markups, read per request
    "keys": ("budgets",),  # key budgets are budgets
    "breaker": ("breakers",),
    "streams": (),  # resolved into the routes of the snapshot
    "reload": (),  # the watcher reads it each round
    "what_if": (),
    "customers": ("rate_limits", "budgets"),
    "tags": ("budgets",),
    "global": ("budgets",),
    "budgeting": ("budgets",),
    "alerts": ("alerts",),
    # The scheduler reads it each round (providers.<name>.report at each run); the hook
    # starts a round at once.
    "reconcile": ("reconcile",),
    "stack_secrets": (),  # checked as the config loads; nothing reads them after
}
# What a running process cannot take over: listening sockets, the store, and the label
# set of customer metrics (series already exported would change meaning).
RESTART_ONLY: tuple[str, ...] = (
    "server",
    "store",
    "admin.host",
    "admin.port",
    "metrics.port",
    "metrics.customer_label",
    "metrics.max_customers",
    "metrics.customers",
)


def _value(config: Config, path: str) -> object:
    section, _, field = path.partition(".")
    value = getattr(config, _ATTRS[section])
    return getattr(value, field) if field else value


_ATTRS = {(f.alias or name): name for name, f in Config.model_fields.items()}


def restart_only_changes(old: Config, new: Config) -> list[str]:
    return [path for path in RESTART_ONLY if _value(old, path) != _value(new, path)]


def changed_sections(old: Config, new: Config) -> list[str]:
    return [name for name in SECTIONS if _value(old, name) != _value(new, name)]


def _diff(old: Mapping[str, object], new: Mapping[str, object]) -> dict[str, list[str]]:
    return {
        "added": sorted(new.keys() - old.keys()),
        "removed": sorted(old.keys() - new.keys()),
        "changed": sorted(k for k in old.keys() & new.keys() if old[k] is not new[k]),
        "kept": sorted(k for k in old.keys() & new.keys() if old[k] is new[k]),
    }


def describe_changes(old: Snapshot, new: Snapshot) -> dict:
    """What a reload changed, for the admin answer and the log. Pure."""
    # Route equality covers targets: their provider (by identity: a rebuilt pool is a
    # change), model, price and what-if alternatives.
    routes_changed = {
        name
        for name in old.routes.keys() & new.routes.keys()
        if old.routes[name] != new.routes[name]
    }
    return {
        "generation": new.generation,
        "providers": _diff(old.providers, new.providers),
        "routes": {
            "added": sorted(new.routes.keys() - old.routes.keys()),
            "removed": sorted(old.routes.keys() - new.routes.keys()),
            "changed": sorted(routes_changed),
        },
    }


def _read(path: Path) -> tuple[str, str] | None:
    """(text, sha256) of the file, or None when it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data.decode("utf-8", "replace"), hashlib.sha256(data).hexdigest()


class Reloader:
    """Reloads `path` into the app's state. Counters and the last error are plain
    attributes, for metrics and the admin API."""

    def __init__(
        self, state: ProxyState, path: str | Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.state = state
        self.path = Path(path)
        self.env = env
        self.succeeded = 0
        self.failed = 0
        self.last_error: str | None = None
        self.last_reload_at: float | None = None
        self._lock = asyncio.Lock()
        read = _read(self.path)
        self._seen = read[1] if read else None  # the content last loaded or rejected
        self._tasks: set[asyncio.Task[None]] = set()
        # The hooks of SECTIONS, registered by the parts of the app built at start-up.
        self.hooks: dict[str, Hook] = {}

    def add_hook(self, name: str, hook: Hook) -> None:
        if not any(name in hooks for hooks in SECTIONS.values()):
            raise ValueError(f"no config section is applied by a hook named {name!r}")
        self.hooks[name] = hook

    def missing_hooks(self) -> list[str]:
        """Hooks SECTIONS names that nothing registered (the app checks at start-up)."""
        named = {hook for hooks in SECTIONS.values() for hook in hooks}
        return sorted(named - self.hooks.keys())

    async def reload(self, trigger: str) -> dict:
        """Load, validate and swap in the config file. Raises ConfigError (counted and
        logged) when the file is invalid; the running config is then untouched."""
        async with self._lock:  # one at a time: each builds on the one before
            try:
                read = _read(self.path)
                if read is None:
                    raise ConfigError(f"{self.path}: cannot read config")
                text, self._seen = read
                config = load_config_text(text, source=str(self.path), env=self.env)
                old = self.state.runtime.current
                restart = restart_only_changes(old.config, config)
                if restart:
                    raise ConfigError(
                        f"{self.path}: {', '.join(restart)} changed; these settings take "
                        "effect only on restart (reload the rest by restoring them)"
                    )
                new = build_snapshot(config, previous=old, source=str(self.path))
            except ConfigError as exc:
                self.failed += 1
                self.last_error = str(exc)
                log.error("config reload (%s) rejected, the running config stays: %s", trigger, exc)
                raise
            sections = changed_sections(old.config, config)
            await self.state.runtime.swap(new)
            hooks = {hook for section in sections for hook in SECTIONS[section]}
            for name in sorted(hooks):
                self.hooks[name](config)
            self.succeeded += 1
            self.last_error = None
            self.last_reload_at = time.time()
            changes = describe_changes(old, new) | {"sections": sections}
            log.info("config reloaded (%s): %s", trigger, changes)
            return changes

    def reload_in_background(self, trigger: str) -> None:
        """For signal handlers: reload without a caller to answer (the outcome is logged)."""
        task = asyncio.get_running_loop().create_task(self._reload_quietly(trigger))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reload_quietly(self, trigger: str) -> None:
        with contextlib.suppress(ConfigError):  # logged and counted by reload()
            await self.reload(trigger)

    async def watch(self) -> None:
        """Poll the file while `reload.watch` is on; reload when its content changes."""
        while True:
            settings = self.state.config.reload
            await asyncio.sleep(settings.interval_s)
            if not self.state.config.reload.watch:
                continue
            read = _read(self.path)
            if read is not None and read[1] != self._seen:
                await self._reload_quietly("file changed")

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


RELOADER = web.AppKey("costproxy_reloader", Reloader)
