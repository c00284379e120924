"""The edge's list of public routes is exactly what the services declare `PUBLIC`: they cannot drift."""

from __future__ import annotations

from pathlib import Path

from fastapi.routing import APIRoute
from tests.platform import settings_for

from doorstep.gateway.edge import INTERNAL_ROUTES, PUBLIC_ROUTES
from doorstep.kernel.auth import permission_of
from doorstep.runtime.app import build_app
from doorstep.runtime.services import build_services, make_broker


def test_the_gateway_lets_through_exactly_the_routes_the_services_declare_public(tmp_path: Path) -> None:
    # Given the all-in-one app, which has every service's routes
    settings = settings_for(tmp_path)
    app = build_app(settings, build_services(settings), make_broker(settings))
    # When every route whose dependencies declare PUBLIC is collected (from the services' routers: the
    # app holds included routers, not their routes)
    declared = {
        (method, route.path)
        for service in app.state.services.values()
        for router in service.routers
        for route in router.routes
        if isinstance(route, APIRoute) and permission_of(route.dependant.dependencies) == "public"
        for method in (route.methods or set()) - {"HEAD"}
    }
    # Then they are the gateway's public routes plus the internal ones it refuses from outside
    assert declared == PUBLIC_ROUTES | INTERNAL_ROUTES
    assert not PUBLIC_ROUTES & INTERNAL_ROUTES
