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
