"""What the identity service publishes."""

from __future__ import annotations

from doorstep.kernel.messages import Event


class TenantCreated(Event):
    event_type = "doorstep.identity.tenant.created.v1"
    tenant_id: str
    name: str

    def subject(self) -> str:
        return self.tenant_id


class ApiKeyCreated(Event):
    event_type = "doorstep.identity.api_key.created.v1"
    api_key_id: str
    name: str

    def subject(self) -> str:
        return self.api_key_id


class ApiKeyRevoked(Event):
    event_type = "doorstep.identity.api_key.revoked.v1"
    api_key_id: str

    def subject(self) -> str:
        return self.api_key_id


class UserCreated(Event):
    event_type = "doorstep.identity.user.created.v1"
    user_id: str
    roles: list[str]
    status: str

    def subject(self) -> str:
        return self.user_id


class UserChanged(Event):
    """Roles, merchants, status or profile changed."""

    event_type = "doorstep.identity.user.changed.v1"
    user_id: str
    roles: list[str]
    merchant_ids: list[str]
    status: str

    def subject(self) -> str:
        return self.user_id


class UserDeactivated(Event):
    """Every session of the user ended at `sessions_valid_after`; services drop what they cached of them."""

    event_type = "doorstep.identity.user.deactivated.v1"
    user_id: str

    def subject(self) -> str:
        return self.user_id


class RolePermissionsChanged(Event):
    event_type = "doorstep.identity.role.permissions_changed.v1"
    role: str
    permissions: list[str]

    def subject(self) -> str:
        return self.role
