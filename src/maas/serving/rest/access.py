"""Every REST route declares what it requires: ``dependencies=access.allow(Scope.DEPLOY)``
or ``access.open()``. ``require_declared`` refuses to build an app with a route that
declares nothing, so no route can be added unguarded by omission."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from fastapi import Depends, FastAPI, params
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.requests import Request

from maas.control.access import OPEN, Reach, Requirement, Scope
from maas.serving.access import Gatekeeper, Refusal, bearer_token

__all__ = ["RouteAccess", "api_routes", "require_declared"]

_READS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


class _Check:
    """The dependency of one route: admit the caller or raise 401 / 403 / 429."""

    def __init__(self, gatekeeper: Gatekeeper, need: Requirement) -> None:
        self.gatekeeper = gatekeeper
        self.need = need

    async def __call__(self, request: Request) -> None:
        refusal = None
        if request.method not in _READS:
            address = request.client.host if request.client is not None else "unknown"
            refusal = Refusal(request.method, request.url.path, address)
        principal = await self.gatekeeper.admit(
            bearer_token(request.headers.get("authorization")),
            self.need,
            request.path_params.get("name"),
            refusal,
        )
        request.state.principal = principal


class RouteAccess:
    """Makes each route's declaration: ``allow`` (any of the scopes) or ``open``."""

    def __init__(self, gatekeeper: Gatekeeper) -> None:
        self.gatekeeper = gatekeeper

    def allow(self, *scopes: Scope, reach: Reach = Reach.NAMED) -> list[params.Depends]:
        """Any one of ``scopes``; ``reach``: the models the route acts on (by default the
        one its ``{name}`` names)."""
        return [Depends(_Check(self.gatekeeper, Requirement.any_of(*scopes, reach=reach)))]

    def open(self) -> list[params.Depends]:
        return [Depends(_Check(self.gatekeeper, OPEN))]


def api_routes(app: FastAPI) -> Iterator[tuple[str, str, Requirement | None]]:
    """Every API route's method, path and declared requirement (None: none declared),
    routes of included routers too."""
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue  # the OpenAPI document and its viewers: open, they hold no data
        dependant = context.dependant
        found = [d.call.need for d in dependant.dependencies if isinstance(d.call, _Check)]
        for method in sorted(context.methods or ()):
            yield method, str(context.path), found[0] if len(found) == 1 else None


def require_declared(app: FastAPI) -> None:
    """Raise at build time if an API route declares no access (or more than one)."""
    missing = [f"{method} {path}" for method, path, need in api_routes(app) if need is None]
    if missing:
        raise RuntimeError(f"routes without an access declaration: {', '.join(missing)}")
