"""Users and employees: invitations, activation, deactivation, profiles, preferences and saved addresses.

Who may do what to whom:
- A caller grants a role only when the role's permissions (in the tenant's matrix) are all their own and
  its reach is no wider than theirs; `super_admin` belongs to the installation and is never granted here.
- A caller changes, deactivates or activates a user only when that user holds nothing the caller does not
  (so nobody takes an admin's account away from below), and only within their reach: merchant staff see
  and manage the users of their merchants, a caller of reach `own` only themselves. Anything outside the
  caller's reach, like anything of another tenant, answers 404 as if it did not exist.
- Profiles, preferences and addresses are always the caller's own (`/me`).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from sqlalchemy import ColumnElement, Select, String, cast, false, or_, select
from sqlalchemy.exc import IntegrityError

from doorstep.identity.adapters.accounts import address_from_row, user_from_row
from doorstep.identity.adapters.tables import addresses, users
from doorstep.identity.adapters.unit_of_work import IdentityUnitOfWork
from doorstep.identity.api import IdentityService
from doorstep.identity.api_sessions import TokensOut
from doorstep.identity.domain.commands import (
    AcceptInvitation,
    ActivateUser,
    AddAddress,
    ChangeAddress,
    ChangeMe,
    ChangeUser,
    DeactivateUser,
    InviteUser,
    RemoveAddress,
)
from doorstep.identity.domain.errors import (
    AddressNotFound,
    AlreadyRegistered,
    InvitationInvalid,
    InvitationPending,
    RoleNotGrantable,
    SelfDeactivation,
    TenantNotFound,
    TooManyAddresses,
    UserNotFound,
    UserNotManageable,
    UserRequired,
)
from doorstep.identity.domain.roles import permissions_of
from doorstep.identity.domain.users import (
    MAX_PASSWORD,
    MIN_PASSWORD,
    Address,
    Invitation,
    User,
    UserStatus,
    check_password,
    check_roles,
    digest,
    normalise_email,
    normalise_phone,
)
from doorstep.identity.security import TokenSigner, hash_password, verify_password
from doorstep.identity.sessions import (
    Notifier,
    Session,
    SessionPolicy,
    enforce,
    issue_session,
)
from doorstep.infra.service import Service
from doorstep.kernel.auth import PUBLIC, Authenticated, Principal, Requires
from doorstep.kernel.bus import Handler
from doorstep.kernel.clock import utcnow
from doorstep.kernel.errors import Conflict, InvalidInput
from doorstep.kernel.ids import new_id
from doorstep.kernel.limits import RateLimiter, RevocationList
from doorstep.kernel.messages import Command
from doorstep.kernel.pagination import Page, newest_first, page_of
from doorstep.kernel.permissions import ROLE_REACH, Reach, Role, reach_of

MAX_ADDRESSES = 50
MAX_MERCHANTS = 100
_REACH_RANK = {Reach.OWN: 0, Reach.MERCHANTS: 1, Reach.TENANT: 2}

# ISO 3166-1 alpha-2: every officially assigned code.
_COUNTRY_CODES = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV
    BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES
    ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE
    IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY
    MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU
    NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM
    SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE
    VG VI VN VU WF WS YE YT ZA ZM ZW
"""
COUNTRIES = frozenset(_COUNTRY_CODES.split())


# --- Field types: the API validates with them, and so do the handlers (for callers of the bus) ---------


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


def _country(value: str) -> str:
    if value not in COUNTRIES:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code, e.g. DE")
    return value


def _email(value: str) -> str:
    try:
        return normalise_email(value)
    except InvalidInput as error:
        raise ValueError(error.detail) from None


def _phone(value: str) -> str:
    try:
        return normalise_phone(value)
    except InvalidInput as error:
        raise ValueError(error.detail) from None


def _language(value: str) -> str:
    """BCP 47 language tags as people use them: `de`, `en-GB`, `es-419`, `zh-Hant-TW`; case made canonical."""
    parts = value.split("-")
    language, rest = parts[0], parts[1:]
    if not (2 <= len(language) <= 3 and language.isascii() and language.isalpha()):
        raise ValueError("give a language tag such as de, en-GB or es-419")
    canonical = [language.lower()]
    if rest and len(rest[0]) == 4 and rest[0].isascii() and rest[0].isalpha():
        canonical.append(rest.pop(0).title())
    if rest and (
        (len(rest[0]) == 2 and rest[0].isascii() and rest[0].isalpha())
        or (len(rest[0]) == 3 and rest[0].isdigit())
    ):
        canonical.append(rest.pop(0).upper())
    if rest:
        raise ValueError("give a language tag such as de, en-GB or es-419")
    return "-".join(canonical)


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _time_zone(value: str) -> str:
    zones = _time_zones()
    if zones and value not in zones:
        raise ValueError("give an IANA time zone such as Europe/Berlin")
    return value


def _vat_id(value: str) -> str:
    compact = "".join(value.split()).upper()
    if not (4 <= len(compact) <= 15 and compact[:2].isalpha() and compact.isascii() and compact.isalnum()):
        raise ValueError("give the VAT id with its country prefix, e.g. DE123456789")
    return compact


def _past(value: date) -> date:
    if value >= date.today():
        raise ValueError("the date of birth must be in the past")
    if value.year < 1900:
        raise ValueError("the date of birth must be after 1900")
    return value


def _text(max_length: int) -> Any:
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


Name = Annotated[str, _text(200), AfterValidator(_no_nul)]
Label = Annotated[str, _text(100), AfterValidator(_no_nul)]
Line = Annotated[str, _text(300), AfterValidator(_no_nul)]
City = Annotated[str, _text(100), AfterValidator(_no_nul)]
PostalCode = Annotated[str, _text(20), AfterValidator(_no_nul)]
Instructions = Annotated[str, _text(500), AfterValidator(_no_nul)]
Country = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True, min_length=2, max_length=2),
    AfterValidator(_country),
]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
MerchantId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,99}$")]
MerchantIds = Annotated[list[MerchantId], Field(max_length=MAX_MERCHANTS)]
RoleList = Annotated[list[str], Field(min_length=1, max_length=len(Role))]
EmailAddress = Annotated[str, StringConstraints(max_length=320), AfterValidator(_email)]
PhoneNumber = Annotated[str, StringConstraints(max_length=30), AfterValidator(_phone)]
Password = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD)]
Token = Annotated[str, Field(min_length=1, max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerProfile(_Strict):
    default_address_id: str | None = Field(
        default=None,
        max_length=36,
        description="The saved address deliveries go to unless another is chosen; follows `is_default`",
    )
    marketing_opt_in: bool | None = Field(default=None, description="Offers and news, on the chosen channels")
    date_of_birth: Annotated[date, AfterValidator(_past)] | None = Field(
        default=None, description="For age-restricted goods (alcohol, tobacco), checked again at hand-over"
    )
    dietary_preferences: (
        list[Literal["vegetarian", "vegan", "halal", "kosher", "gluten_free", "lactose_free", "nut_free"]]
        | None
    ) = Field(default=None, max_length=7)


class DealerProfile(_Strict):
    company_name: Annotated[str, _text(200), AfterValidator(_no_nul)] | None = Field(
        default=None, description="Required once there is a dealer section"
    )
    vat_id: Annotated[str, StringConstraints(max_length=20), AfterValidator(_vat_id)] | None = Field(
        default=None, description="With its country prefix, e.g. DE123456789"
    )
    registration_number: Annotated[str, _text(50), AfterValidator(_no_nul)] | None = None
    billing_email: EmailAddress | None = None
    contact_phone: PhoneNumber | None = Field(default=None, description="E.164, e.g. +4930123456")


class Profile(_Strict):
    """Who the user is to the platform: as a customer, as a dealer (a business that orders for resale)."""

    customer: CustomerProfile | None = None
    dealer: DealerProfile | None = None


class NotificationPreferences(_Strict):
    channels: list[Literal["push", "sms", "email"]] | None = Field(
        default=None, max_length=3, description="Where to reach the user, most preferred first; [] for none"
    )
    order_updates: bool | None = Field(default=None, description="Messages as an order moves along")
    delivery_updates: bool | None = Field(default=None, description="Driver on the way, arriving, delivered")

    @field_validator("channels")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("name each channel once")
        return value


class Preferences(_Strict):
    language: Annotated[str, StringConstraints(max_length=35), AfterValidator(_language)] | None = Field(
        default=None, description="BCP 47, e.g. de, en-GB"
    )
    time_zone: Annotated[str, StringConstraints(max_length=64), AfterValidator(_time_zone)] | None = Field(
        default=None, description="IANA, e.g. Europe/Berlin"
    )
    units: Literal["metric", "imperial"] | None = None
    notifications: NotificationPreferences | None = None


def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


_NAME = _adapter(Name)
_MERCHANT_IDS = _adapter(MerchantIds)
_ADDRESS_FIELDS: dict[str, TypeAdapter[Any]] = {
    "label": _adapter(Label),
    "line1": _adapter(Line),
    "line2": _adapter(Line | None),
    "city": _adapter(City),
    "postal_code": _adapter(PostalCode | None),
    "country": _adapter(Country),
    "lat": _adapter(Latitude | None),
    "lng": _adapter(Longitude | None),
    "instructions": _adapter(Instructions | None),
    "is_default": _adapter(bool),
}


def _where(prefix: str, error: ValidationError) -> tuple[str, str]:
    first = error.errors()[0]
    path = ".".join(str(part) for part in (prefix, *first["loc"]) if part != "")
    return path, str(first["msg"])


def valid(adapter: TypeAdapter[Any], value: object, *, field: str) -> Any:
    try:
        return adapter.validate_python(value)
    except ValidationError as error:
        where, message = _where(field, error)
        raise InvalidInput(message, field=where, location="body") from None


# --- Rules (pure) --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caller:
    actor: str
    kind: str
    subject: str
    permissions: frozenset[str]
    reach: Reach
    merchant_ids: frozenset[str]

    @classmethod
    def of(cls, *, actor: str, permissions: Iterable[str], reach: str, merchant_ids: Iterable[str]) -> Caller:
        kind, _, subject = actor.partition(":")
        return cls(actor, kind, subject, frozenset(permissions), Reach(reach), frozenset(merchant_ids))

    def is_user(self, user_id: str) -> bool:
        return self.kind == "user" and self.subject == user_id


def check_grantable(
    roles: Iterable[str], *, overrides: Mapping[str, frozenset[str]], caller: Caller, field: str = "roles"
) -> None:
    """Refuse a role whose permissions the caller does not all hold, or whose reach is wider than theirs."""
    for role in sorted(roles):
        if role == Role.SUPER_ADMIN:
            raise RoleNotGrantable(
                "super_admin belongs to the installation and is never granted through the API",
                role=role,
                field=field,
            )
        missing = permissions_of(frozenset({role}), overrides) - caller.permissions
        if missing:
            raise RoleNotGrantable(
                f"you cannot grant {role}: it holds {', '.join(sorted(missing))}, which you do not",
                role=role,
                field=field,
                missing_permissions=sorted(missing),
            )
        reach = ROLE_REACH[Role(role)]
        if _REACH_RANK[reach] > _REACH_RANK[caller.reach]:
            raise RoleNotGrantable(
                f"you cannot grant {role}: it reaches {reach.value}, further than you ({caller.reach.value})",
                role=role,
                field=field,
            )


def can_see(user: User, caller: Caller) -> bool:
    if caller.reach is Reach.TENANT or caller.is_user(user.id):
        return True
    return caller.reach is Reach.MERCHANTS and bool(user.merchant_ids & caller.merchant_ids)


def check_manageable(user: User, *, overrides: Mapping[str, frozenset[str]], caller: Caller) -> None:
    """Only a caller who holds everything the user holds, as far, may change them."""
    beyond = permissions_of(user.roles, overrides) - caller.permissions
    if beyond or _REACH_RANK[reach_of(user.roles)] > _REACH_RANK[caller.reach]:
        raise UserNotManageable("this user holds permissions you do not; ask someone who holds them")


def check_merchants(
    roles: frozenset[str], old: frozenset[str], new: frozenset[str], *, caller: Caller
) -> None:
    """Merchant staff belong to merchants; merchant staff callers add and remove only their own merchants."""
    if Role.MERCHANT_STAFF.value in roles and not new:
        raise InvalidInput(
            "merchant staff need the merchants they work for", field="merchant_ids", location="body"
        )
    if caller.reach is Reach.TENANT:
        return
    if (new - caller.merchant_ids) != (old - caller.merchant_ids):
        raise InvalidInput(
            "you can add or remove only merchants you work for", field="merchant_ids", location="body"
        )


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7396): objects merge key by key, null removes, anything else replaces."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping):
            current = merged.get(key)
            merged[key] = merge_patch(current if isinstance(current, Mapping) else {}, value)
        else:
            merged[key] = value
    return merged


def _document(model: type[_Strict], value: Mapping[str, Any], *, field: str) -> dict[str, Any]:
    try:
        checked = model.model_validate(value)
    except ValidationError as error:
        where, message = _where(field, error)
        raise InvalidInput(message, field=where, location="body") from None
    document: dict[str, Any] = checked.model_dump(mode="json", exclude_none=True)
    return document


def patched_profile(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    profile = _document(Profile, merge_patch(current, patch), field="profile")
    dealer = profile.get("dealer")
    if dealer is not None and "company_name" not in dealer:
        raise InvalidInput(
            "a dealer profile needs the company name", field="profile.dealer.company_name", location="body"
        )
    return profile


def patched_preferences(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    return _document(Preferences, merge_patch(current, patch), field="preferences")


def with_default_address(profile: Mapping[str, Any], address_id: str | None) -> dict[str, Any]:
    """The profile with `customer.default_address_id` set to the default address (or removed: none)."""
    customer = dict(profile.get("customer") or {})
    if address_id is None:
        if "default_address_id" not in customer:
            return dict(profile)
        customer.pop("default_address_id")
    else:
        customer["default_address_id"] = address_id
    return {**profile, "customer": customer}


def address_fields(values: Mapping[str, object]) -> dict[str, Any]:
    """Each field checked by its type; unknown fields refused."""
    checked: dict[str, Any] = {}
    for name, value in values.items():
        adapter = _ADDRESS_FIELDS.get(name)
        if adapter is None:
            raise InvalidInput(f"addresses have no field {name}", field=name, location="body")
        checked[name] = valid(adapter, value, field=name)
    return checked


def check_location(address: Address) -> None:
    if (address.lat is None) != (address.lng is None):
        missing = "lng" if address.lng is None else "lat"
        raise InvalidInput("give both lat and lng, or neither", field=missing, location="body")


def address_snapshot(address: Address) -> dict[str, Any]:
    return {
        "id": address.id,
        "user_id": address.user_id,
        "label": address.label,
        "line1": address.line1,
        "line2": address.line2,
        "city": address.city,
        "postal_code": address.postal_code,
        "country": address.country,
        "lat": address.lat,
        "lng": address.lng,
        "instructions": address.instructions,
        "is_default": address.is_default,
    }


# --- Handlers ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Invited:
    user: User
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class MeChanged:
    user: User
    session: Session | None  # new tokens when the password changed: every session before ended


def _caller(cmd: InviteUser | ChangeUser | DeactivateUser | ActivateUser) -> Caller:
    return Caller.of(
        actor=cmd.actor,
        permissions=cmd.caller_permissions,
        reach=cmd.caller_reach,
        merchant_ids=cmd.caller_merchant_ids,
    )


async def _managed_user(
    uow: IdentityUnitOfWork, *, tenant_id: str, user_id: str, caller: Caller
) -> tuple[User, dict[str, frozenset[str]]]:
    user = await uow.users.get(tenant_id=tenant_id, user_id=user_id, for_update=True)
    if user is None or not can_see(user, caller):
        raise UserNotFound(f"there is no user {user_id}")
    overrides = await uow.roles.overrides(tenant_id)
    check_manageable(user, overrides=overrides, caller=caller)
    return user, overrides


async def _make_default(uow: IdentityUnitOfWork, address: Address) -> None:
    await uow.addresses.clear_default(tenant_id=address.tenant_id, user_id=address.user_id)
    address.is_default = True


async def _sync_default(uow: IdentityUnitOfWork, user: User, *, now: datetime) -> None:
    """`profile.customer.default_address_id` follows the address marked default."""
    default = await uow.addresses.default_id(tenant_id=user.tenant_id, user_id=user.id)
    profile = with_default_address(user.profile, default)
    if profile != user.profile:
        user.change(now=now, profile=profile)
        await uow.users.save(user)


async def _profile_change(
    uow: IdentityUnitOfWork, user: User, patch: Mapping[str, Any], *, now: datetime
) -> dict[str, Any]:
    """The patched profile; a `customer.default_address_id` given makes that address the default."""
    profile = patched_profile(user.profile, patch)
    customer = patch.get("customer")
    where = "profile.customer.default_address_id"
    if isinstance(customer, Mapping) and "default_address_id" in customer:
        wanted = customer["default_address_id"]
        if wanted is None:
            if await uow.addresses.count(tenant_id=user.tenant_id, user_id=user.id):
                raise InvalidInput(
                    "mark another address as the default instead", field=where, location="body"
                )
        else:
            address = await uow.addresses.get(
                tenant_id=user.tenant_id, user_id=user.id, address_id=str(wanted)
            )
            if address is None:
                raise InvalidInput("this is not one of the user's addresses", field=where, location="body")
            if not address.is_default:
                await _make_default(uow, address)
                await uow.addresses.save(address)
    default = await uow.addresses.default_id(tenant_id=user.tenant_id, user_id=user.id)
    return with_default_address(profile, default)


async def invite_user(cmd: InviteUser, *, uow: IdentityUnitOfWork, notifier: Notifier) -> Invited:
    """A user in status `invited`, an invitation valid for 7 days, and a message with its token."""
    caller = _caller(cmd)
    email = normalise_email(cmd.email) if cmd.email is not None else None
    phone = normalise_phone(cmd.phone) if cmd.phone is not None else None
    if email is None and phone is None:
        raise InvalidInput("give an email or a phone number", field="email", location="body")
    name = valid(_NAME, cmd.name, field="name")
    roles = check_roles(cmd.roles)
    merchant_ids = frozenset(valid(_MERCHANT_IDS, cmd.merchant_ids, field="merchant_ids"))
    if caller.reach is Reach.OWN:
        raise UserNotManageable("your permissions reach only your own account: you cannot invite anyone")
    check_merchants(roles, frozenset(), merchant_ids, caller=caller)
    if caller.reach is Reach.MERCHANTS and not merchant_ids:
        raise InvalidInput("give at least one of your merchants", field="merchant_ids", location="body")
    now = utcnow()
    async with uow:
        if await uow.tenants.get(cmd.tenant_id) is None:
            raise TenantNotFound(f"there is no tenant {cmd.tenant_id}")
        check_grantable(roles, overrides=await uow.roles.overrides(cmd.tenant_id), caller=caller)
        if await uow.users.taken(tenant_id=cmd.tenant_id, email=email, phone=phone):
            raise AlreadyRegistered("a user with this email or phone exists in this tenant")
        user = User.register(
            tenant_id=cmd.tenant_id,
            email=email,
            phone=phone,
            name=name,
            roles=roles,
            merchant_ids=merchant_ids,
            password_hash=None,
            status=UserStatus.INVITED,
            now=now,
        )
        try:
            await uow.users.add(user)
        except IntegrityError:
            raise AlreadyRegistered("a user with this email or phone exists in this tenant") from None
        invitation, token = Invitation.issue(tenant_id=cmd.tenant_id, user_id=user.id, now=now)
        await uow.invitations.add(invitation)
        destination = email or phone
        assert destination is not None
        notifier.send(
            uow,
            tenant_id=cmd.tenant_id,
            channel="email" if email else "sms",
            to=destination,
            template="identity.invitation",
            params={"token": token, "name": user.name, "expires_at": invitation.expires_at.isoformat()},
            sensitive=["token"],
        )
        uow.audit_user(user, actor=cmd.actor, action="user.invited", before=None)
        await uow.commit()
    return Invited(user=user, token=token, expires_at=invitation.expires_at)


async def _open_invitation(
    uow: IdentityUnitOfWork, token_hash: str, *, now: datetime
) -> tuple[Invitation, User]:
    invitation = await uow.invitations.by_hash(token_hash)
    if invitation is None or invitation.accepted_at is not None or invitation.expires_at <= now:
        raise InvitationInvalid("the invitation is unknown, used or expired")
    user = await uow.users.get(tenant_id=invitation.tenant_id, user_id=invitation.user_id)
    if user is None or user.status is not UserStatus.INVITED:
        raise InvitationInvalid("the invitation is unknown, used or expired")
    return invitation, user


async def accept_invitation(
    cmd: AcceptInvitation, *, uow: IdentityUnitOfWork, signer: TokenSigner, session_policy: SessionPolicy
) -> Session:
    """Sets the password, activates the user and signs them in."""
    password = check_password(cmd.password, field="password")
    name = valid(_NAME, cmd.name, field="name") if cmd.name is not None else None
    token_hash = digest(cmd.token)
    # Looked at first, so that a made-up token costs no password hash (~50 ms of CPU).
    async with uow:
        await _open_invitation(uow, token_hash, now=utcnow())
    password_hash = await hash_password(password)
    now = utcnow()
    async with uow:
        invitation, user = await _open_invitation(uow, token_hash, now=now)
        if not await uow.invitations.accept(invitation, now=now):
            raise InvitationInvalid("the invitation is unknown, used or expired")
        before = user.snapshot()
        changes: dict[str, Any] = {"status": UserStatus.ACTIVE, "password_hash": password_hash}
        if name is not None:
            changes["name"] = name
        user.change(now=now, **changes)
        await uow.users.save(user)
        uow.audit_user(user, actor=f"user:{user.id}", action="user.invitation_accepted", before=before)
        session = await issue_session(uow, user, signer=signer, policy=session_policy, now=now)
        await uow.commit()
    return session


async def change_user(
    cmd: ChangeUser, *, uow: IdentityUnitOfWork, revocations: RevocationList, signer: TokenSigner
) -> User:
    """Changed roles or merchants end the user's access tokens at once; the next refresh carries the new ones."""
    caller = _caller(cmd)
    name = valid(_NAME, cmd.name, field="name") if cmd.name is not None else None
    roles = check_roles(cmd.roles) if cmd.roles is not None else None
    merchant_ids = (
        frozenset(valid(_MERCHANT_IDS, cmd.merchant_ids, field="merchant_ids"))
        if cmd.merchant_ids is not None
        else None
    )
    now = utcnow()
    async with uow:
        user, overrides = await _managed_user(
            uow, tenant_id=cmd.tenant_id, user_id=cmd.user_id, caller=caller
        )
        new_roles = user.roles if roles is None else roles
        new_merchants = user.merchant_ids if merchant_ids is None else merchant_ids
        if roles is not None:
            check_grantable(roles, overrides=overrides, caller=caller)
        check_merchants(new_roles, user.merchant_ids, new_merchants, caller=caller)
        changes: dict[str, Any] = {}
        if name is not None and name != user.name:
            changes["name"] = name
        if new_roles != user.roles:
            changes["roles"] = new_roles
        if new_merchants != user.merchant_ids:
            changes["merchant_ids"] = new_merchants
        if cmd.profile is not None:
            profile = await _profile_change(uow, user, cmd.profile, now=now)
            if profile != user.profile:
                changes["profile"] = profile
        if not changes:
            return user
        before = user.snapshot()
        user.change(now=now, **changes)
        await uow.users.save(user)
        uow.audit_user(user, actor=cmd.actor, action="user.changed", before=before)
        await uow.commit()
    if "roles" in changes or "merchant_ids" in changes:
        await revocations.revoke_subject(user.id, issued_before=now, until=now + signer.lifetime)
    return user


async def deactivate_user(
    cmd: DeactivateUser, *, uow: IdentityUnitOfWork, revocations: RevocationList, signer: TokenSigner
) -> User:
    """Ends every session at once: refresh tokens revoked, access tokens refused from the next request."""
    caller = _caller(cmd)
    if caller.is_user(cmd.user_id):
        raise SelfDeactivation("you cannot deactivate yourself; ask another administrator")
    now = utcnow()
    async with uow:
        user, _ = await _managed_user(uow, tenant_id=cmd.tenant_id, user_id=cmd.user_id, caller=caller)
        if user.status is not UserStatus.DEACTIVATED:
            before = user.snapshot()
            user.deactivate(now=now)
            await uow.users.save(user)
            await uow.refresh_tokens.revoke_user(user.id, now=now)
            uow.audit_user(user, actor=cmd.actor, action="user.deactivated", before=before)
            await uow.commit()
    # Also when it was deactivated before: a retry after the revocation list failed completes the job.
    cutoff = user.sessions_valid_after or now
    await revocations.revoke_subject(user.id, issued_before=cutoff, until=cutoff + signer.lifetime)
    return user


async def activate_user(cmd: ActivateUser, *, uow: IdentityUnitOfWork) -> User:
    caller = _caller(cmd)
    now = utcnow()
    async with uow:
        user, _ = await _managed_user(uow, tenant_id=cmd.tenant_id, user_id=cmd.user_id, caller=caller)
        if user.status is UserStatus.INVITED:
            raise InvitationPending("the user has not accepted the invitation yet")
        if user.status is UserStatus.ACTIVE:
            return user
        before = user.snapshot()
        user.activate(now=now)
        await uow.users.save(user)
        uow.audit_user(user, actor=cmd.actor, action="user.activated", before=before)
        await uow.commit()
    return user


async def _new_password_hash(
    cmd: ChangeMe, *, uow: IdentityUnitOfWork, limiter: RateLimiter, policy: SessionPolicy
) -> tuple[str, str | None]:
    """The new password's hash, and the stored hash it replaces (checked against `current_password`)."""
    if cmd.new_password is None:
        raise InvalidInput("give the new password", field="new_password", location="body")
    new_password = check_password(cmd.new_password, field="new_password")
    await enforce(limiter, f"password:{cmd.tenant_id}:{cmd.user_id}", policy.login_quota, "password changes")
    async with uow:
        user = await uow.users.get(tenant_id=cmd.tenant_id, user_id=cmd.user_id)
        if user is None:
            raise UserNotFound(f"there is no user {cmd.user_id}")
        stored = user.password_hash
    # A user who signed up with a one-time code has no password yet, and sets the first one here.
    if stored is not None:
        if cmd.current_password is None:
            raise InvalidInput("give the current password", field="current_password", location="body")
        if not await verify_password(stored, cmd.current_password):
            raise InvalidInput("the current password is wrong", field="current_password", location="body")
    return await hash_password(new_password), stored


async def change_me(
    cmd: ChangeMe,
    *,
    uow: IdentityUnitOfWork,
    signer: TokenSigner,
    session_policy: SessionPolicy,
    revocations: RevocationList,
    limiter: RateLimiter,
) -> MeChanged:
    """A new password ends every session, this one included, and starts a new one for this caller."""
    name = valid(_NAME, cmd.name, field="name") if cmd.name is not None else None
    changes_password = cmd.new_password is not None or cmd.current_password is not None
    password_hash, replaced = (
        await _new_password_hash(cmd, uow=uow, limiter=limiter, policy=session_policy)
        if changes_password
        else (None, None)
    )
    now = utcnow()
    session: Session | None = None
    async with uow:
        user = await uow.users.get(tenant_id=cmd.tenant_id, user_id=cmd.user_id, for_update=True)
        if user is None:
            raise UserNotFound(f"there is no user {cmd.user_id}")
        user.ensure_active()
        changes: dict[str, Any] = {}
        if name is not None and name != user.name:
            changes["name"] = name
        if cmd.profile is not None:
            profile = await _profile_change(uow, user, cmd.profile, now=now)
            if profile != user.profile:
                changes["profile"] = profile
        if cmd.preferences is not None:
            preferences = patched_preferences(user.preferences, cmd.preferences)
            if preferences != user.preferences:
                changes["preferences"] = preferences
        before = user.snapshot()
        if password_hash is not None:
            if user.password_hash != replaced:
                raise Conflict("the password changed meanwhile; try again with the current one")
            changes["password_hash"] = password_hash
        if not changes:
            return MeChanged(user=user, session=None)
        user.change(now=now, **changes)
        if user.snapshot() != before:
            uow.audit_user(user, actor=f"user:{user.id}", action="user.changed", before=before)
        if password_hash is not None:
            user.sign_out_everywhere(now=now)
            await uow.refresh_tokens.revoke_user(user.id, now=now)
            # A token's `iat` is its signing time rounded down (to the second, or finer): starting the new
            # session at the next whole second makes it the one token of this user that the cut-off
            # below (`now`) leaves valid, however fine `iat` is.
            start = now.replace(microsecond=0) + timedelta(seconds=1)
            session = await issue_session(uow, user, signer=signer, policy=session_policy, now=start)
            uow.audit(
                tenant_id=cmd.tenant_id,
                actor=f"user:{user.id}",
                action="user.password_changed",
                object_type="user",
                object_id=user.id,
                before=None,
                after={"sessions_valid_after": now},
            )
        await uow.users.save(user)
        await uow.commit()
    if session is not None:
        await revocations.revoke_subject(user.id, issued_before=now, until=now + signer.lifetime)
    return MeChanged(user=user, session=session)


async def _own_user(uow: IdentityUnitOfWork, *, tenant_id: str, user_id: str) -> User:
    user = await uow.users.get(tenant_id=tenant_id, user_id=user_id, for_update=True)
    if user is None:
        raise UserNotFound(f"there is no user {user_id}")
    return user


def _audit_address(
    uow: IdentityUnitOfWork, action: str, address: Address, *, before: Address | None, after: Address | None
) -> None:
    uow.audit(
        tenant_id=address.tenant_id,
        actor=f"user:{address.user_id}",
        action=action,
        object_type="address",
        object_id=address.id,
        before=address_snapshot(before) if before is not None else None,
        after=address_snapshot(after) if after is not None else None,
    )


async def add_address(cmd: AddAddress, *, uow: IdentityUnitOfWork) -> Address:
    """The first address becomes the default; marking a new one default moves the default to it."""
    fields = address_fields(
        {
            name: getattr(cmd, name)
            for name in (
                "label",
                "line1",
                "line2",
                "city",
                "postal_code",
                "country",
                "lat",
                "lng",
                "instructions",
                "is_default",
            )
        }
    )
    now = utcnow()
    address = Address(id=new_id(), tenant_id=cmd.tenant_id, user_id=cmd.user_id, created_at=now, **fields)
    check_location(address)
    async with uow:
        user = await _own_user(uow, tenant_id=cmd.tenant_id, user_id=cmd.user_id)
        count = await uow.addresses.count(tenant_id=cmd.tenant_id, user_id=cmd.user_id)
        if count >= MAX_ADDRESSES:
            raise TooManyAddresses(f"a user keeps at most {MAX_ADDRESSES} addresses; remove one first")
        if address.is_default or count == 0:
            await _make_default(uow, address)
        await uow.addresses.add(address)
        await _sync_default(uow, user, now=now)
        _audit_address(uow, "address.added", address, before=None, after=address)
        await uow.commit()
    return address


async def change_address(cmd: ChangeAddress, *, uow: IdentityUnitOfWork) -> Address:
    changes = address_fields(cmd.changes)
    now = utcnow()
    async with uow:
        user = await _own_user(uow, tenant_id=cmd.tenant_id, user_id=cmd.user_id)
        address = await uow.addresses.get(
            tenant_id=cmd.tenant_id, user_id=cmd.user_id, address_id=cmd.address_id
        )
        if address is None:
            raise AddressNotFound(f"there is no address {cmd.address_id}")
        before = replace(address)
        default = changes.pop("is_default", None)
        for name, value in changes.items():
            setattr(address, name, value)
        check_location(address)
        if default is False and address.is_default:
            raise InvalidInput(
                "mark another address as the default instead", field="is_default", location="body"
            )
        if default is True and not address.is_default:
            await _make_default(uow, address)
        if address_snapshot(address) == address_snapshot(before):
            return address
        await uow.addresses.save(address)
        await _sync_default(uow, user, now=now)
        _audit_address(uow, "address.changed", address, before=before, after=address)
        await uow.commit()
    return address


async def remove_address(cmd: RemoveAddress, *, uow: IdentityUnitOfWork) -> None:
    """Removing the default makes the oldest remaining address the default."""
    now = utcnow()
    async with uow:
        user = await _own_user(uow, tenant_id=cmd.tenant_id, user_id=cmd.user_id)
        address = await uow.addresses.get(
            tenant_id=cmd.tenant_id, user_id=cmd.user_id, address_id=cmd.address_id
        )
        if address is None:
            raise AddressNotFound(f"there is no address {cmd.address_id}")
        await uow.addresses.remove(address)
        if address.is_default:
            successor = await uow.addresses.oldest(tenant_id=cmd.tenant_id, user_id=cmd.user_id)
            if successor is not None:
                successor.is_default = True
                await uow.addresses.save(successor)
        await _sync_default(uow, user, now=now)
        _audit_address(uow, "address.removed", address, before=address, after=None)
        await uow.commit()


HANDLERS: dict[type[Command], Handler] = {
    InviteUser: invite_user,
    AcceptInvitation: accept_invitation,
    ChangeUser: change_user,
    DeactivateUser: deactivate_user,
    ActivateUser: activate_user,
    ChangeMe: change_me,
    AddAddress: add_address,
    ChangeAddress: change_address,
    RemoveAddress: remove_address,
}


# --- Read side -----------------------------------------------------------------------------------------


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _json_list_has(column: ColumnElement[Any], value: str) -> ColumnElement[bool]:
    """A JSON list of plain strings (roles, merchant ids) holding `value`, on SQLite and PostgreSQL alike."""
    return cast(column, String).like(f'%"{_like(value)}"%', escape="\\")


def within_reach(query: Select[Any], viewer: Principal) -> Select[Any]:
    if viewer.reach is Reach.TENANT:
        return query
    itself = users.c.id == viewer.subject if viewer.kind == "user" else false()
    if viewer.reach is Reach.MERCHANTS:
        return query.where(
            or_(
                itself,
                *(_json_list_has(users.c.merchant_ids, merchant) for merchant in sorted(viewer.merchant_ids)),
            )
        )
    return query.where(itself)


async def _read_user(service: Service, *, tenant_id: str, user_id: str, viewer: Principal | None) -> User:
    query = select(users).where(users.c.tenant_id == tenant_id, users.c.id == user_id)
    if viewer is not None:
        query = within_reach(query, viewer)
    async with service.database.reader() as session:
        row = (await session.execute(query)).first()
    if row is None:
        raise UserNotFound(f"there is no user {user_id}")
    return user_from_row(row)


# --- HTTP API ------------------------------------------------------------------------------------------

router = APIRouter(prefix="/v1/identity", tags=["users"])


ReadsUsers = Annotated[Principal, Depends(Requires("users.read"))]
ManagesUsers = Annotated[Principal, Depends(Requires("users.manage"))]
OwnProfile = Annotated[Principal, Depends(Requires("profile.self"))]


class UserOut(BaseModel):
    id: str
    email: str | None
    phone: str | None
    name: str
    status: UserStatus
    roles: list[str]
    merchant_ids: list[str]
    profile: Profile
    preferences: Preferences
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(**cls._fields(user))

    @staticmethod
    def _fields(user: User) -> dict[str, Any]:
        return {
            "id": user.id,
            "email": user.email,
            "phone": user.phone,
            "name": user.name,
            "status": user.status,
            "roles": sorted(user.roles),
            "merchant_ids": sorted(user.merchant_ids),
            "profile": Profile.model_validate(user.profile),
            "preferences": Preferences.model_validate(user.preferences),
            "created_at": user.created_at,
            "updated_at": user.updated_at,
        }


class InvitedOut(UserOut):
    invitation_token: str = Field(
        description="Shown once: what the invitee accepts with. Also sent to their email or phone."
    )
    invitation_expires_at: datetime


class InviteIn(_Strict):
    email: EmailAddress | None = None
    phone: PhoneNumber | None = Field(default=None, description="E.164, e.g. +4930123456")
    name: Name
    roles: RoleList = Field(description="e.g. dispatcher, merchant_staff, driver, customer")
    merchant_ids: MerchantIds = Field(default=[], description="Required for merchant staff")


class AcceptIn(_Strict):
    token: Token
    password: Password
    name: Name | None = Field(default=None, description="Replaces the name the invitation was made with")


class UserPatch(_Strict):
    """Only the fields sent change. `profile` merges (RFC 7396): null removes a field."""

    name: Name | None = None
    roles: RoleList | None = None
    merchant_ids: MerchantIds | None = None
    profile: Profile | None = None


class MeUser(UserOut):
    kind: Literal["user"] = "user"
    tenant_id: str
    permissions: list[str]
    reach: Reach


class MeApiKey(BaseModel):
    kind: Literal["api_key"] = "api_key"
    id: str
    tenant_id: str
    permissions: list[str]


class MeChangedOut(MeUser):
    tokens: TokensOut | None = Field(
        description="After a password change: new tokens for this caller. Every earlier session ended, "
        "this request's access token included."
    )


class MePatch(_Strict):
    """Only the fields sent change. `profile` and `preferences` merge (RFC 7396): null removes a field."""

    name: Name | None = None
    profile: Profile | None = None
    preferences: Preferences | None = None
    current_password: Password | None = None
    new_password: Password | None = Field(
        default=None, description=f"{MIN_PASSWORD} to {MAX_PASSWORD} characters; ends every other session"
    )


class AddressOut(BaseModel):
    id: str
    label: str
    line1: str
    line2: str | None
    city: str
    postal_code: str | None
    country: str
    lat: float | None
    lng: float | None
    instructions: str | None
    is_default: bool
    created_at: datetime

    @classmethod
    def of(cls, address: Address) -> AddressOut:
        return cls(**{**address_snapshot(address), "created_at": address.created_at})


class AddressIn(_Strict):
    label: Label = Field(description="e.g. Home, Work")
    line1: Line = Field(description="Street and number")
    line2: Line | None = Field(default=None, description="Floor, flat, company")
    city: City
    postal_code: PostalCode | None = None
    country: Country = Field(description="ISO 3166-1 alpha-2, e.g. DE")
    lat: Latitude | None = Field(default=None, description="With lng, or neither")
    lng: Longitude | None = Field(default=None, description="With lat, or neither")
    instructions: Instructions | None = Field(default=None, description="For the driver: gate code, floor")
    is_default: bool = Field(default=False, description="The first address is the default anyway")


class AddressPatch(_Strict):
    """Only the fields sent change; null clears an optional field."""

    label: Label | None = None
    line1: Line | None = None
    line2: Line | None = None
    city: City | None = None
    postal_code: PostalCode | None = None
    country: Country | None = None
    lat: Latitude | None = None
    lng: Longitude | None = None
    instructions: Instructions | None = None
    is_default: bool | None = None


class AddressList(BaseModel):
    """Every address of the user (at most 50), the default first; `next_cursor` for the shape lists share."""

    items: list[AddressOut]
    next_cursor: None = None


_NOT_NULL = {
    "name",
    "roles",
    "merchant_ids",
    "profile",
    "preferences",
    "label",
    "line1",
    "city",
    "country",
    "is_default",
}


def _sent(patch: BaseModel) -> dict[str, Any]:
    """The fields sent, with their values; null for a field that cannot be empty is refused."""
    sent = patch.model_dump(mode="json", exclude_unset=True)
    for name, value in sent.items():
        if value is None and name in _NOT_NULL:
            raise InvalidInput(f"{name} cannot be null", field=name, location="body")
    return sent


def _by(principal: Principal) -> dict[str, Any]:
    return {
        "tenant_id": principal.tenant_id,
        "actor": principal.actor,
        "caller_permissions": sorted(principal.permissions),
        "caller_reach": principal.reach.value,
        "caller_merchant_ids": sorted(principal.merchant_ids),
    }


def _own(principal: Principal) -> str:
    if principal.kind != "user":
        raise UserRequired("profiles, preferences and addresses belong to users: sign in as one")
    return principal.subject


def _me(user: User, principal: Principal) -> dict[str, Any]:
    return {
        **UserOut._fields(user),
        "tenant_id": user.tenant_id,
        "permissions": sorted(principal.permissions),
        "reach": principal.reach,
    }


@router.post("/users", status_code=201, summary="Invite a user or employee (status invited)")
async def invite(body: InviteIn, principal: ManagesUsers, service: IdentityService) -> InvitedOut:
    invited: Invited = await service.bus.handle(InviteUser(**_by(principal), **body.model_dump()))
    return InvitedOut(
        **UserOut._fields(invited.user),
        invitation_token=invited.token,
        invitation_expires_at=invited.expires_at,
    )


@router.post(
    "/invitations/accept",
    summary="Accept an invitation: set a password, activate the account, sign in",
    dependencies=[PUBLIC],
)
async def accept(body: AcceptIn, service: IdentityService) -> TokensOut:
    session: Session = await service.bus.handle(AcceptInvitation(**body.model_dump()))
    return TokensOut.of(session)


@router.get("/users", response_model=Page[UserOut], summary="List users; newest first")
async def list_users(
    principal: ReadsUsers,
    service: IdentityService,
    status: Annotated[UserStatus | None, Query()] = None,
    role: Annotated[Role | None, Query()] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Part of the name, email or phone")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[UserOut]:
    query = within_reach(select(users).where(users.c.tenant_id == principal.tenant_id), principal)
    if status is not None:
        query = query.where(users.c.status == status.value)
    if role is not None:
        query = query.where(_json_list_has(users.c.roles, role.value))
    if q:
        if "\x00" in q:
            raise InvalidInput("text must not contain NUL characters", field="q", location="query")
        pattern = f"%{_like(q.strip().lower())}%"
        query = query.where(
            or_(
                *(
                    column.ilike(pattern, escape="\\")
                    for column in (users.c.name, users.c.email, users.c.phone)
                )
            )
        )
    query = newest_first(query, users.c.id, limit=limit, cursor=cursor)
    async with service.database.reader() as session:
        rows = (await session.execute(query)).all()
    page, next_cursor = page_of(rows, limit)
    return Page[UserOut](items=[UserOut.of(user_from_row(row)) for row in page], next_cursor=next_cursor)


@router.get("/users/{user_id}", summary="One user")
async def get_user(user_id: str, principal: ReadsUsers, service: IdentityService) -> UserOut:
    user = await _read_user(service, tenant_id=principal.tenant_id, user_id=user_id, viewer=principal)
    return UserOut.of(user)


@router.patch("/users/{user_id}", summary="Change a user's name, roles, merchants or profile")
async def patch_user(
    user_id: str, body: UserPatch, principal: ManagesUsers, service: IdentityService
) -> UserOut:
    user: User = await service.bus.handle(ChangeUser(**_by(principal), user_id=user_id, **_sent(body)))
    return UserOut.of(user)


@router.post(
    "/users/{user_id}/deactivate", summary="Deactivate a user: every session ends at once, log-in refused"
)
async def deactivate(user_id: str, principal: ManagesUsers, service: IdentityService) -> UserOut:
    user: User = await service.bus.handle(DeactivateUser(**_by(principal), user_id=user_id))
    return UserOut.of(user)


@router.post("/users/{user_id}/activate", summary="Activate a deactivated user again")
async def activate(user_id: str, principal: ManagesUsers, service: IdentityService) -> UserOut:
    user: User = await service.bus.handle(ActivateUser(**_by(principal), user_id=user_id))
    return UserOut.of(user)


@router.get(
    "/me",
    response_model=Annotated[MeUser | MeApiKey, Field(discriminator="kind")],
    summary="Who is calling: the user with their permissions, or the API key",
)
async def me(principal: Authenticated, service: IdentityService) -> MeUser | MeApiKey:
    if principal.kind != "user":
        return MeApiKey(
            id=principal.subject, tenant_id=principal.tenant_id, permissions=sorted(principal.permissions)
        )
    user = await _read_user(service, tenant_id=principal.tenant_id, user_id=principal.subject, viewer=None)
    return MeUser(**_me(user, principal))


@router.patch("/me", summary="Change one's own name, profile, preferences or password")
async def patch_me(body: MePatch, principal: OwnProfile, service: IdentityService) -> MeChangedOut:
    user_id = _own(principal)
    sent = _sent(body)
    changed: MeChanged = await service.bus.handle(
        ChangeMe(tenant_id=principal.tenant_id, user_id=user_id, **sent)
    )
    tokens = TokensOut.of(changed.session) if changed.session is not None else None
    return MeChangedOut(**_me(changed.user, principal), tokens=tokens)


@router.get("/me/addresses", summary="One's saved addresses, the default first")
async def list_addresses(principal: OwnProfile, service: IdentityService) -> AddressList:
    user_id = _own(principal)
    async with service.database.reader() as session:
        rows = (
            await session.execute(
                select(addresses)
                .where(addresses.c.tenant_id == principal.tenant_id, addresses.c.user_id == user_id)
                .order_by(addresses.c.is_default.desc(), addresses.c.id)
            )
        ).all()
    return AddressList(items=[AddressOut.of(address_from_row(row)) for row in rows])


@router.post("/me/addresses", status_code=201, summary="Save an address (at most 50)")
async def create_address(body: AddressIn, principal: OwnProfile, service: IdentityService) -> AddressOut:
    address: Address = await service.bus.handle(
        AddAddress(tenant_id=principal.tenant_id, user_id=_own(principal), **body.model_dump())
    )
    return AddressOut.of(address)


@router.patch("/me/addresses/{address_id}", summary="Change a saved address")
async def patch_address(
    address_id: str, body: AddressPatch, principal: OwnProfile, service: IdentityService
) -> AddressOut:
    address: Address = await service.bus.handle(
        ChangeAddress(
            tenant_id=principal.tenant_id, user_id=_own(principal), address_id=address_id, changes=_sent(body)
        )
    )
    return AddressOut.of(address)


@router.delete("/me/addresses/{address_id}", status_code=204, summary="Remove a saved address")
async def delete_address(address_id: str, principal: OwnProfile, service: IdentityService) -> Response:
    await service.bus.handle(
        RemoveAddress(tenant_id=principal.tenant_id, user_id=_own(principal), address_id=address_id)
    )
    return Response(status_code=204)
