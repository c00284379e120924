"""Builds the identity service from settings. The one place its dependencies are wired."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from doorstep.identity import api, api_sessions, audit, sessions, tenant_notices, ticket_notices, users
from doorstep.identity.adapters.accounts import prune_sessions
from doorstep.identity.adapters.tables import inbox, outbox
from doorstep.identity.adapters.unit_of_work import IdentityUnitOfWork
from doorstep.identity.domain.commands import RotateSigningKeys
from doorstep.identity.domain.keys import SigningKey
from doorstep.identity.handlers import HANDLERS
from doorstep.identity.security import TokenSigner
from doorstep.identity.views import signing_key_list
from doorstep.infra.service import Service, assemble
from doorstep.infra.shared import Shared, make_shared
from doorstep.kernel.limits import Quota
from doorstep.kernel.settings import Settings

NAME = "identity"


def build(settings: Settings, shared: Shared | None = None) -> Service:
    shared = shared or make_shared(settings)
    holder: list[Service] = []

    async def load_keys() -> list[SigningKey]:
        return await signing_key_list(holder[0].database)

    signer = TokenSigner(
        load_keys=load_keys,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        lifetime=timedelta(seconds=settings.access_token_seconds),
    )
    policy = sessions.SessionPolicy(
        refresh_lifetime=timedelta(days=settings.refresh_token_days),
        code_quota=Quota(limit=settings.otp_per_hour, period_seconds=3600, burst=settings.otp_per_hour - 1),
        code_ip_quota=Quota(
            limit=settings.otp_ip_per_hour, period_seconds=3600, burst=settings.otp_ip_per_hour - 1
        ),
        login_quota=Quota(limit=10, period_seconds=900, burst=9),
    )
    service = assemble(
        name=NAME,
        settings=settings,
        unit_of_work=IdentityUnitOfWork,
        outbox=outbox,
        inbox=inbox,
        handlers={
            **HANDLERS,
            **sessions.HANDLERS,
            **users.HANDLERS,
            **audit.HANDLERS,
            **tenant_notices.HANDLERS,
            **ticket_notices.HANDLERS,
        },
        migrations=Path(__file__).parent / "migrations",
        routers=[api.router, api.well_known, api_sessions.router, users.router, audit.router],
        consumers=lambda bus: [
            *audit.subscriptions(bus),
            *tenant_notices.subscriptions(bus),
            *ticket_notices.subscriptions(bus),
        ],
        dependencies={
            "signer": signer,
            "session_policy": policy,
            "limiter": shared.limiter,
            "revocations": shared.revocations,
            "notifier": sessions.OutboxNotifier(),
            "api_key_cache_seconds": settings.api_key_cache_seconds,
        },
        shared=shared,
    )
    holder.append(service)
    rotation = RotateSigningKeys(only_if_older_than_days=settings.signing_key_rotation_days)

    async def rotate_when_due() -> object:
        return await service.bus.handle(rotation)

    signer.ensure_key = rotate_when_due
    service.maintenance.append(rotate_when_due)
    service.maintenance.append(lambda: prune_sessions(service.database))
    return service
