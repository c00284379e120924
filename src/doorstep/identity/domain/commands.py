from doorstep.kernel.messages import Command


class CreateTenant(Command):
    name: str


class CreateApiKey(Command):
    tenant_id: str
    name: str


class RevokeApiKey(Command):
    tenant_id: str
    api_key_id: str
