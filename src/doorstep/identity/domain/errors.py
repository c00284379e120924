from doorstep.kernel.errors import NotFound


class TenantNotFound(NotFound):
    slug = "tenant-not-found"
    title = "Tenant not found"


class ApiKeyNotFound(NotFound):
    slug = "api-key-not-found"
    title = "API key not found"
