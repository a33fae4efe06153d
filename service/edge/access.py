"""One log line per page request: method, route, status, time; never the link's token.

The tokens are path segments (/c/{token}), and whoever holds one can answer for a person:
the line names the route's pattern instead of the path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger("care-intro.pages")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Asked every few seconds by monitors: a line each would bury the pages people open.
QUIET = frozenset({"/healthz", "/metrics"})


def route_of(request: web.Request) -> str:
    """The path as its route names it ("/c/{token}"); a path no route knows is not repeated,
    since it may be a mistyped link with a token in it."""
    info = request.match_info
    if info.http_exception is not None:
        return "(no route)"
    return info.route.resource.canonical if info.route.resource is not None else "(no route)"


@web.middleware
async def log_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = route_of(request)
        level = logging.DEBUG if route in QUIET else logging.INFO
        millis = (time.perf_counter() - started) * 1000
        log.log(level, "%s %s %d %.1f ms", request.method, route, status, millis)
