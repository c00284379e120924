"""Signing up, logging in, refreshing, logging out, and who am I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from doorstep.identity.api import IdentityService
from doorstep.identity.domain.commands import LogIn, LogOut, RefreshSession, RequestCode, SignUp
from doorstep.identity.domain.users import MAX_PASSWORD
from doorstep.identity.sessions import Session
from doorstep.kernel import context
from doorstep.kernel.auth import PUBLIC, Authenticated

router = APIRouter(prefix="/v1/identity", tags=["sessions"])
Email = Annotated[str, Field(min_length=3, max_length=320)]
Phone = Annotated[str, Field(min_length=4, max_length=30)]
TenantId = Annotated[str, Field(min_length=1, max_length=36)]


class SignUpIn(BaseModel):
    tenant_id: TenantId
    email: Email | None = None
    phone: Phone | None = None
    password: str = Field(min_length=1, max_length=MAX_PASSWORD)
    name: str = Field(min_length=1, max_length=200)


class LogInIn(BaseModel):
    tenant_id: TenantId
    email: Email | None = None
    phone: Phone | None = None
    password: str | None = Field(default=None, min_length=1, max_length=MAX_PASSWORD)
    code: str | None = Field(default=None, pattern=r"^[0-9]{6}$", description="The one-time code sent")


class CodeIn(BaseModel):
    tenant_id: TenantId
    email: Email | None = None
    phone: Phone | None = None


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class LogOutIn(BaseModel):
    refresh_token: str | None = Field(default=None, min_length=1, max_length=200)
    everywhere: bool = Field(default=False, description="End every session of the user, on every device")


class TokensOut(BaseModel):
    access_token: str
    refresh_token: str
    expires_in: int = Field(description="Seconds the access token is valid")
    token_type: str = Field(default="Bearer", description="How to send the access token")

    @classmethod
    def of(cls, session: Session) -> TokensOut:
        return cls(
            access_token=session.access_token,
            refresh_token=session.refresh_token,
            expires_in=session.expires_in,
        )


@router.post("/signup", status_code=201, summary="Sign up as a customer", dependencies=[PUBLIC])
async def sign_up(body: SignUpIn, service: IdentityService) -> TokensOut:
    session: Session = await service.bus.handle(SignUp(**body.model_dump()))
    return TokensOut.of(session)


@router.post("/login", summary="Log in with a password or a one-time code", dependencies=[PUBLIC])
async def log_in(body: LogInIn, service: IdentityService) -> TokensOut:
    session: Session = await service.bus.handle(LogIn(**body.model_dump()))
    return TokensOut.of(session)


@router.post(
    "/otp",
    status_code=202,
    summary="Send a one-time code by SMS or email (valid 5 minutes)",
    dependencies=[PUBLIC],
)
async def send_code(body: CodeIn, service: IdentityService) -> Response:
    origin = context.origin.get()
    await service.bus.handle(RequestCode(**body.model_dump(), ip=origin.ip if origin else None))
    return Response(status_code=202)


@router.post(
    "/token/refresh", summary="Trade a refresh token for new tokens (it is spent)", dependencies=[PUBLIC]
)
async def refresh(body: RefreshIn, service: IdentityService) -> TokensOut:
    session: Session = await service.bus.handle(RefreshSession(refresh_token=body.refresh_token))
    return TokensOut.of(session)


@router.post("/logout", status_code=204, summary="End this session (or every session)")
async def log_out(
    principal: Authenticated, service: IdentityService, body: LogOutIn | None = None
) -> Response:
    body = body or LogOutIn()
    await service.bus.handle(
        LogOut(
            tenant_id=principal.tenant_id,
            user_id=principal.subject,
            access_token_id=principal.token_id,
            access_expires_at=principal.expires_at,
            refresh_token=body.refresh_token,
            everywhere=body.everywhere and principal.kind == "user",
        )
    )
    return Response(status_code=204)
