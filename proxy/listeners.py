"""Where the proxy listens: the client API, and the admin API on its own host/port when
`admin.port` is set. One app serves both sockets; a middleware keeps each path on its own."""

from __future__ import annotations

import socket

from aiohttp import web

from proxy.config import Config
from proxy.errors import NotFoundError

__all__ = ["admin_listener_guard", "listen_sockets"]

_BOTH = frozenset({"/healthz"})
# The admin API and the console live on the admin listener when it is set.
_ADMIN_PATHS = ("/admin/", "/ui/")


def admin_listener_guard(admin_port: int):
    """Admin paths (the API and the console) only on the admin port; client paths never
    there."""

    @web.middleware
    async def guard(request: web.Request, handler) -> web.StreamResponse:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        on_admin = bool(sockname) and sockname[1] == admin_port
        admin_path = request.path.startswith(_ADMIN_PATHS) or request.path == "/ui"
        if request.path not in _BOTH and admin_path != on_admin:
            raise NotFoundError(f"Unknown path {request.path}", code="not_found")
        return await handler(request)

    return guard


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def listen_sockets(config: Config, host: str, port: int) -> list[socket.socket]:
    sockets = [_bind(host, port)]
    if config.admin.port is not None:
        sockets.append(_bind(config.admin.host or host, config.admin.port))
    return sockets
