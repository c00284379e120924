from datetime import datetime

from doorstep.kernel.messages import Command


class CreateTenant(Command):
    name: str


class CreateApiKey(Command):
    tenant_id: str
    name: str
    scopes: list[str] | None = None
    expires_at: datetime | None = None
    actor: str = "system"
    # The permissions of whoever asks: a key never gets more than its maker holds. None: no limit (CLI).
    granter_permissions: list[str] | None = None


class RevokeApiKey(Command):
    tenant_id: str
    api_key_id: str
    actor: str = "system"


class CreateUser(Command):
    """Set-up (the CLI): an active user with a password and roles."""

    tenant_id: str
    email: str | None = None
    phone: str | None = None
    password: str
    name: str
    roles: list[str]
    merchant_ids: list[str] = []


class SignUp(Command):
    tenant_id: str
    email: str | None = None
    phone: str | None = None
    password: str
    name: str


class LogIn(Command):
    tenant_id: str
    email: str | None = None
    phone: str | None = None
    password: str | None = None
    code: str | None = None


class RequestCode(Command):
    tenant_id: str
    email: str | None = None
    phone: str | None = None
    ip: str | None = None


class RefreshSession(Command):
    refresh_token: str


class LogOut(Command):
    tenant_id: str
    user_id: str
    access_token_id: str | None
    access_expires_at: datetime | None
    refresh_token: str | None = None
    everywhere: bool = False


class SetRolePermissions(Command):
    tenant_id: str
    role: str
    permissions: list[str]
    actor: str
    editor_permissions: list[str]


class RotateSigningKeys(Command):
    """Start signing with a new key; `only_if_older_than` makes it the housekeeping's periodic check."""

    only_if_older_than_days: float | None = None


class _ByCaller(Command):
    """Who asks, as far as the user handlers need it: what they may grant and whom they may manage."""

    tenant_id: str
    actor: str  # "user:<id>" or "api_key:<id>"
    caller_permissions: list[str]
    caller_reach: str = "tenant"  # doorstep.kernel.permissions.Reach
    caller_merchant_ids: list[str] = []


class InviteUser(_ByCaller):
    """A user or employee in status `invited`, who sets a password by accepting the invitation."""

    email: str | None = None
    phone: str | None = None
    name: str
    roles: list[str]
    merchant_ids: list[str] = []


class AcceptInvitation(Command):
    token: str
    password: str
    name: str | None = None


class ChangeUser(_ByCaller):
    """Only the fields given change; `profile` is a JSON merge patch (RFC 7396) of the stored profile."""

    user_id: str
    name: str | None = None
    roles: list[str] | None = None
    merchant_ids: list[str] | None = None
    profile: dict[str, object] | None = None


class DeactivateUser(_ByCaller):
    user_id: str


class ActivateUser(_ByCaller):
    user_id: str


class ChangeMe(Command):
    """A user changes their own name, profile, preferences (merge patches) or password."""

    tenant_id: str
    user_id: str
    name: str | None = None
    profile: dict[str, object] | None = None
    preferences: dict[str, object] | None = None
    current_password: str | None = None
    new_password: str | None = None


class AddAddress(Command):
    tenant_id: str
    user_id: str
    label: str
    line1: str
    line2: str | None = None
    city: str
    postal_code: str | None = None
    country: str
    lat: float | None = None
    lng: float | None = None
    instructions: str | None = None
    is_default: bool = False


class ChangeAddress(Command):
    """`changes` holds only the fields sent; null clears an optional field."""

    tenant_id: str
    user_id: str
    address_id: str
    changes: dict[str, object]


class RemoveAddress(Command):
    tenant_id: str
    user_id: str
    address_id: str
