"""Builds the integrations service from settings. The one place its dependencies are wired."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from pathlib import Path

from doorstep.infra.service import Service, assemble
from doorstep.infra.shared import Shared, make_shared
from doorstep.integrations import api, consumers
from doorstep.integrations.adapters.platforms.http_client import HttpxPlatformClient
from doorstep.integrations.adapters.tables import inbox, outbox
from doorstep.integrations.adapters.unit_of_work import IntegrationsUnitOfWork
from doorstep.integrations.couriers import api as couriers_api
from doorstep.integrations.couriers.handlers import HANDLERS as COURIER_HANDLERS
from doorstep.integrations.couriers.networks import CourierNetworks
from doorstep.integrations.couriers.provider_http import ProviderHttp
from doorstep.integrations.deliveries import api as deliveries_api
from doorstep.integrations.deliveries.handlers import HANDLERS as DELIVERY_HANDLERS
from doorstep.integrations.deliveries.handlers import delivery_runtime
from doorstep.integrations.handlers import HANDLERS
from doorstep.integrations.outbound import api as outbound_api
from doorstep.integrations.outbound import dispatcher as outbound_dispatcher
from doorstep.integrations.outbound.handlers import HANDLERS as OUTBOUND_HANDLERS
from doorstep.integrations.retention import prune_integrations
from doorstep.integrations.status_reports import api as status_reports_api
from doorstep.integrations.status_reports import worker as status_reports_worker
from doorstep.integrations.status_reports.handlers import HANDLERS as STATUS_REPORT_HANDLERS
from doorstep.integrations.status_reports.handlers import ReportingRuntime
from doorstep.integrations.tickets import api as tickets_api
from doorstep.integrations.tickets.handlers import HANDLERS as TICKET_HANDLERS
from doorstep.kernel.settings import Settings

NAME = "integrations"


def build(settings: Settings, shared: Shared | None = None) -> Service:
    shared = shared or make_shared(settings)
    webhooks = outbound_dispatcher.webhook_runtime(settings)
    # Platform and courier APIs are called at URLs tenants set: guarded like status webhooks.
    platform_client = HttpxPlatformClient(allowed=webhooks.allowed)
    status_reports = ReportingRuntime()
    service = assemble(
        name=NAME,
        settings=settings,
        unit_of_work=IntegrationsUnitOfWork,
        outbox=outbox,
        inbox=inbox,
        handlers={
            **HANDLERS,
            **OUTBOUND_HANDLERS,
            **TICKET_HANDLERS,
            **STATUS_REPORT_HANDLERS,
            **COURIER_HANDLERS,
            **DELIVERY_HANDLERS,
        },
        shared=shared,
        migrations=Path(__file__).parent / "migrations",
        routers=[
            api.router,
            outbound_api.router,
            tickets_api.router,
            status_reports_api.router,
            couriers_api.router,
            deliveries_api.router,
        ],
        consumers=consumers.subscriptions,
        dependencies={
            "platform_client": platform_client,
            "webhooks": webhooks,
            "status_reports": status_reports,
            "couriers": CourierNetworks(http=ProviderHttp(allowed=webhooks.allowed)),
            "deliveries": delivery_runtime(settings, geocoder=shared.geocoder(settings)),
        },
    )
    # The status-webhook worker runs while the app does, in every process that serves integrations.
    service.routers = [*service.routers, outbound_dispatcher.worker(settings, service.bus, webhooks)]
    service.routers = [
        *service.routers,
        status_reports_worker.worker(service.bus, status_reports, platform_client),
    ]
    retention = timedelta(days=settings.webhooks_retention_days)
    service.maintenance.append(partial(prune_integrations, service.database, retention=retention))
    return service
