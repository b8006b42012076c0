"""Where the proxy listens: the client API, and the admin API on its own host/port when
`admin.port` is set. One app serves both sockets; a middleware keeps each path on its own."""

from __future__ import annotations

import errno
import socket

from aiohttp import web

from proxy.config import Config
from proxy.errors import NotFoundError

__all__ = ["AddressInUseError", "admin_listener_guard", "bind", "listen_sockets"]

_BOTH = frozenset({"/healthz"})
# The admin API and the console live on the admin listener when it is set.
_ADMIN_PATHS = ("/admin/", "/ui/")


def admin_listener_guard(admin_port: int):
    """Admin paths (the API and the console) only on the admin port; client paths never
    there."""

    @web.middleware
    async def guard(request: web.Request, handler) -> web.StreamResponse:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        on_admin = sockname is not None and sockname[1] == admin_port
        admin_path = request.path.startswith(_ADMIN_PATHS) or request.path == "/ui"
        if request.path not in _BOTH and admin_path != on_admin:
            raise NotFoundError(f"Unknown path {request.path}", code="not_found")
        return await handler(request)

    return guard


class AddressInUseError(OSError):
    """Another process listens on this address: the CLI names the option that moves us."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(errno.EADDRINUSE, f"{host}:{port} is already in use")
        self.host = host
        self.port = port


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); AddressInUseError when that port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUseError(host, port) from None
        raise
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def listen_sockets(config: Config, host: str, port: int) -> list[socket.socket]:
    sockets = [bind(host, port)]
    if config.admin.port is not None:
        try:
            sockets.append(bind(config.admin.host or host, config.admin.port))
        except OSError:
            sockets[0].close()
            raise
    return sockets
