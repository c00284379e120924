"""Signing up, logging in (password or one-time code), refreshing and logging out.

A session is a family of refresh tokens: each refresh spends one and issues the next. Presenting a spent
token again means it was copied, so the whole family is revoked, with the access tokens it issued.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.exc import IntegrityError

from doorstep.contracts.notifications import NotificationRequested
from doorstep.identity.adapters.unit_of_work import IdentityUnitOfWork
from doorstep.identity.domain.commands import (
    CreateUser,
    LogIn,
    LogOut,
    RefreshSession,
    RequestCode,
    RotateSigningKeys,
    SignUp,
)
from doorstep.identity.domain.errors import AlreadyRegistered, InvalidCredentials, TenantNotFound
from doorstep.identity.domain.roles import permissions_of
from doorstep.identity.domain.users import (
    OneTimeCode,
    RefreshToken,
    User,
    UserStatus,
    check_password,
    check_roles,
    digest,
    normalise_email,
    normalise_phone,
)
from doorstep.identity.security import Claims, TokenSigner, hash_password, new_signing_key, verify_password
from doorstep.kernel.bus import Handler
from doorstep.kernel.clock import utcnow
from doorstep.kernel.errors import InvalidInput, TooManyRequests
from doorstep.kernel.limits import Quota, RateLimiter, RevocationList
from doorstep.kernel.messages import Command
from doorstep.kernel.permissions import Reach, Role, reach_of


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    refresh_lifetime: timedelta
    code_quota: Quota  # codes sent per email or phone
    code_ip_quota: Quota  # codes asked for per client IP
    login_quota: Quota  # password tries per email or phone


@dataclass(frozen=True, slots=True)
class Session:
    access_token: str
    refresh_token: str
    expires_in: int
    user_id: str


class Notifier(Protocol):
    """The notification port: asks for a message to be delivered, within the caller's transaction."""

    def send(
        self,
        uow: IdentityUnitOfWork,
        *,
        tenant_id: str,
        channel: str,
        to: str,
        template: str,
        params: dict[str, str],
        sensitive: list[str],
    ) -> None: ...


class OutboxNotifier:
    """Publishes `notifications.requested` through the outbox: sent only if the transaction commits."""

    def send(
        self,
        uow: IdentityUnitOfWork,
        *,
        tenant_id: str,
        channel: str,
        to: str,
        template: str,
        params: dict[str, str],
        sensitive: list[str],
    ) -> None:
        assert channel in ("email", "sms")
        uow.emit(
            NotificationRequested(
                channel="email" if channel == "email" else "sms",
                to=to,
                template=template,
                params=params,
                sensitive=sensitive,
            ),
            tenant_id=tenant_id,
        )


def destination_of(email: str | None, phone: str | None) -> tuple[str | None, str | None]:
    """Exactly one of email and phone, normalised."""
    if (email is None) == (phone is None):
        raise InvalidInput("give either an email or a phone number", field="email", location="body")
    return (normalise_email(email) if email is not None else None), (
        normalise_phone(phone) if phone is not None else None
    )


async def enforce(limiter: RateLimiter, key: str, quota: Quota, what: str) -> None:
    """Counts one against `key`; a 429 problem with the rate-limit headers when it is over."""
    decision = await limiter.hit(key, quota)
    if not decision.allowed:
        raise TooManyRequests(f"too many {what}; try again later", headers=decision.headers(quota))


async def issue_session(
    uow: IdentityUnitOfWork,
    user: User,
    *,
    signer: TokenSigner,
    policy: SessionPolicy,
    now: datetime,
    family_id: str | None = None,
) -> Session:
    """An access token with the user's current permissions, and the next refresh token of the family."""
    overrides = await uow.roles.overrides(user.tenant_id)
    claims = Claims(
        tenant_id=user.tenant_id,
        user_id=user.id,
        roles=user.roles,
        permissions=permissions_of(user.roles, overrides),
        reach=reach_of(user.roles),
        merchant_ids=user.merchant_ids if reach_of(user.roles) is Reach.MERCHANTS else frozenset(),
    )
    access = await signer.sign(claims, now=now)
    refresh, plaintext = RefreshToken.issue(
        tenant_id=user.tenant_id,
        user_id=user.id,
        now=now,
        lifetime=policy.refresh_lifetime,
        family_id=family_id,
    )
    refresh.access_token_id = access.token_id
    refresh.access_expires_at = access.expires_at
    await uow.refresh_tokens.add(refresh)
    return Session(
        access_token=access.token,
        refresh_token=plaintext,
        expires_in=int(signer.lifetime.total_seconds()),
        user_id=user.id,
    )


async def register(uow: IdentityUnitOfWork, user: User) -> None:
    if await uow.tenants.get(user.tenant_id) is None:
        raise TenantNotFound(f"there is no tenant {user.tenant_id}")
    if await uow.users.taken(tenant_id=user.tenant_id, email=user.email, phone=user.phone):
        raise AlreadyRegistered("a user with this email or phone exists in this tenant")
    try:
        await uow.users.add(user)
    except IntegrityError:
        raise AlreadyRegistered("a user with this email or phone exists in this tenant") from None


async def sign_up(
    cmd: SignUp, *, uow: IdentityUnitOfWork, signer: TokenSigner, session_policy: SessionPolicy
) -> Session:
    """Self-service sign-up makes a customer; staff are invited (or created with the CLI)."""
    email, phone = destination_of(cmd.email, cmd.phone)
    password_hash = await hash_password(check_password(cmd.password))
    now = utcnow()
    async with uow:
        user = User.register(
            tenant_id=cmd.tenant_id,
            email=email,
            phone=phone,
            name=cmd.name,
            roles=frozenset({Role.CUSTOMER.value}),
            password_hash=password_hash,
            status=UserStatus.ACTIVE,
            now=now,
        )
        await register(uow, user)
        uow.audit_user(user, actor=f"user:{user.id}", action="user.signed_up", before=None)
        session = await issue_session(uow, user, signer=signer, policy=session_policy, now=now)
        await uow.commit()
    return session


async def create_user(cmd: CreateUser, *, uow: IdentityUnitOfWork) -> User:
    email, phone = (
        normalise_email(cmd.email) if cmd.email is not None else None,
        normalise_phone(cmd.phone) if cmd.phone is not None else None,
    )
    password_hash = await hash_password(check_password(cmd.password))
    async with uow:
        user = User.register(
            tenant_id=cmd.tenant_id,
            email=email,
            phone=phone,
            name=cmd.name,
            roles=check_roles(cmd.roles),
            merchant_ids=frozenset(cmd.merchant_ids),
            password_hash=password_hash,
            status=UserStatus.ACTIVE,
            now=utcnow(),
        )
        await register(uow, user)
        uow.audit_user(user, actor="system", action="user.created", before=None)
        await uow.commit()
    return user


async def request_code(
    cmd: RequestCode,
    *,
    uow: IdentityUnitOfWork,
    limiter: RateLimiter,
    notifier: Notifier,
    session_policy: SessionPolicy,
) -> None:
    """Sends a 6-digit code by SMS or email. Known or not, the answer is the same."""
    email, phone = destination_of(cmd.email, cmd.phone)
    destination = email or phone
    assert destination is not None
    if cmd.ip is not None:
        await enforce(limiter, f"otp-ip:{cmd.ip}", session_policy.code_ip_quota, "codes from this address")
    await enforce(
        limiter, f"otp:{cmd.tenant_id}:{destination}", session_policy.code_quota, "codes for this destination"
    )
    now = utcnow()
    async with uow:
        if await uow.tenants.get(cmd.tenant_id) is None:
            raise TenantNotFound(f"there is no tenant {cmd.tenant_id}")
        code, plaintext = OneTimeCode.generate(tenant_id=cmd.tenant_id, destination=destination, now=now)
        await uow.codes.add(code)
        notifier.send(
            uow,
            tenant_id=cmd.tenant_id,
            channel="email" if email else "sms",
            to=destination,
            template="identity.one_time_code",
            params={"code": plaintext, "expires_in_minutes": "5"},
            sensitive=["code"],
        )
        await uow.commit()


async def log_in(
    cmd: LogIn,
    *,
    uow: IdentityUnitOfWork,
    signer: TokenSigner,
    limiter: RateLimiter,
    session_policy: SessionPolicy,
) -> Session:
    email, phone = destination_of(cmd.email, cmd.phone)
    if (cmd.password is None) == (cmd.code is None):
        raise InvalidInput("give either a password or a one-time code", field="password", location="body")
    destination = email or phone
    await enforce(
        limiter, f"login:{cmd.tenant_id}:{destination}", session_policy.login_quota, "log-in attempts"
    )
    if cmd.code is not None:
        return await _log_in_with_code(cmd.tenant_id, email, phone, cmd.code, uow, signer, session_policy)
    async with uow:
        user = await uow.users.find(tenant_id=cmd.tenant_id, email=email, phone=phone)
        # Checked even for an unknown user, against a dummy hash, so both take as long.
        valid = await verify_password(user.password_hash if user else None, cmd.password or "")
        if user is None or not valid:
            raise InvalidCredentials("the email, phone or password is wrong")
        user.ensure_active()
        session = await issue_session(uow, user, signer=signer, policy=session_policy, now=utcnow())
        await uow.commit()
    return session


async def _log_in_with_code(
    tenant_id: str,
    email: str | None,
    phone: str | None,
    code: str,
    uow: IdentityUnitOfWork,
    signer: TokenSigner,
    policy: SessionPolicy,
) -> Session:
    """A right code logs in; for an unknown email or phone it also signs a customer up (passwordless)."""
    destination = email or phone
    assert destination is not None
    now = utcnow()
    async with uow:
        challenge = await uow.codes.latest(tenant_id=tenant_id, destination=destination)
        if challenge is None:
            raise InvalidCredentials("the code is wrong or expired")
        try:
            challenge.attempt(code, now=now)
        finally:
            # A wrong try counts even though the request fails: commit the count before answering.
            await uow.codes.save(challenge)
            if challenge.consumed_at is None:
                await uow.commit()
        user = await uow.users.find(tenant_id=tenant_id, email=email, phone=phone)
        if user is None:
            user = User.register(
                tenant_id=tenant_id,
                email=email,
                phone=phone,
                name=destination,
                roles=frozenset({Role.CUSTOMER.value}),
                password_hash=None,
                status=UserStatus.ACTIVE,
                now=now,
            )
            await register(uow, user)
            uow.audit_user(user, actor=f"user:{user.id}", action="user.signed_up", before=None)
        user.ensure_active()
        session = await issue_session(uow, user, signer=signer, policy=policy, now=now)
        await uow.commit()
    return session


async def refresh_session(
    cmd: RefreshSession,
    *,
    uow: IdentityUnitOfWork,
    signer: TokenSigner,
    revocations: RevocationList,
    session_policy: SessionPolicy,
) -> Session:
    now = utcnow()
    async with uow:
        token = await uow.refresh_tokens.by_hash(digest(cmd.refresh_token))
        if token is None or token.expires_at <= now or token.revoked_at is not None:
            raise InvalidCredentials("the refresh token is unknown, expired or revoked")
        if token.used_at is not None or not await uow.refresh_tokens.spend(token, now=now):
            family = await uow.refresh_tokens.revoke_family(token.family_id, now=now)
            await uow.commit()
            await _revoke_access_tokens(revocations, family)
            raise InvalidCredentials("the refresh token was used before: the session is revoked")
        user = await uow.users.get(tenant_id=token.tenant_id, user_id=token.user_id)
        if user is None or user.status is not UserStatus.ACTIVE:
            raise InvalidCredentials("the user is no longer active")
        session = await issue_session(
            uow, user, signer=signer, policy=session_policy, now=now, family_id=token.family_id
        )
        await uow.commit()
    return session


async def _revoke_access_tokens(revocations: RevocationList, tokens: list[RefreshToken]) -> None:
    for token in tokens:
        if token.access_token_id is not None and token.access_expires_at is not None:
            await revocations.revoke_token(token.access_token_id, until=token.access_expires_at)


async def log_out(
    cmd: LogOut, *, uow: IdentityUnitOfWork, revocations: RevocationList, signer: TokenSigner
) -> None:
    """Revokes the access token used, and the session of the refresh token given (or every session)."""
    now = utcnow()
    family: list[RefreshToken] = []
    async with uow:
        if cmd.everywhere:
            user = await uow.users.get(tenant_id=cmd.tenant_id, user_id=cmd.user_id)
            if user is not None:
                user.sign_out_everywhere(now=now)
                await uow.users.save(user)
            await uow.refresh_tokens.revoke_user(cmd.user_id, now=now)
        elif cmd.refresh_token is not None:
            token = await uow.refresh_tokens.by_hash(digest(cmd.refresh_token))
            if token is not None and token.user_id == cmd.user_id and token.tenant_id == cmd.tenant_id:
                family = await uow.refresh_tokens.revoke_family(token.family_id, now=now)
        await uow.commit()
    if cmd.everywhere:
        await revocations.revoke_subject(cmd.user_id, issued_before=now, until=now + signer.lifetime)
    await _revoke_access_tokens(revocations, family)
    if cmd.access_token_id is not None and cmd.access_expires_at is not None:
        await revocations.revoke_token(cmd.access_token_id, until=cmd.access_expires_at)


async def rotate_signing_keys(
    cmd: RotateSigningKeys, *, uow: IdentityUnitOfWork, signer: TokenSigner
) -> str | None:
    """A new key signs from now on; the others stop signing and leave the JWKS once their tokens expire.

    Returns the new key's id, or None when the newest key is younger than `only_if_older_than_days`.
    """
    now = utcnow()
    async with uow:
        keys = await uow.signing_keys.all()
        signing = [key for key in keys if key.signs()]
        if cmd.only_if_older_than_days is not None and signing:
            newest = max(key.created_at for key in signing)
            if now - newest < timedelta(days=cmd.only_if_older_than_days):
                return None
        for key in signing:
            key.retire(now=now, token_lifetime=signer.lifetime)
            await uow.signing_keys.save(key)
        await uow.signing_keys.prune(now=now)
        new_key = new_signing_key(now)
        await uow.signing_keys.add(new_key)
        await uow.commit()
    signer.forget()
    return new_key.kid


HANDLERS: dict[type[Command], Handler] = {
    CreateUser: create_user,
    SignUp: sign_up,
    LogIn: log_in,
    RequestCode: request_code,
    RefreshSession: refresh_session,
    LogOut: log_out,
    RotateSigningKeys: rotate_signing_keys,
}
