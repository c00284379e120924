from doorstep.kernel.errors import Conflict, Forbidden, NotFound, Unauthenticated


class TenantNotFound(NotFound):
    slug = "tenant-not-found"
    title = "Tenant not found"


class ApiKeyNotFound(NotFound):
    slug = "api-key-not-found"
    title = "API key not found"


class UserNotFound(NotFound):
    slug = "user-not-found"
    title = "User not found"


class AddressNotFound(NotFound):
    slug = "address-not-found"
    title = "Address not found"


class InvalidCredentials(Unauthenticated):
    """One answer for unknown user, wrong password and wrong code: a caller learns nothing from it."""

    slug = "invalid-credentials"
    title = "Invalid credentials"


class OneTimeCodeLocked(Unauthenticated):
    slug = "one-time-code-locked"
    title = "One-time code locked"


class UserNotActive(Forbidden):
    slug = "user-not-active"
    title = "User not active"


class AlreadyRegistered(Conflict):
    slug = "already-registered"
    title = "Already registered"


class RoleNotGrantable(Forbidden):
    slug = "role-not-grantable"
    title = "Role not grantable"


class InvitationInvalid(NotFound):
    slug = "invitation-invalid"
    title = "Invitation invalid"


class UserNotManageable(Forbidden):
    """The user holds permissions or a reach the caller does not: only someone at least as mighty may change them."""

    slug = "user-not-manageable"
    title = "User not manageable"


class SelfDeactivation(Conflict):
    slug = "self-deactivation"
    title = "You cannot deactivate yourself"


class InvitationPending(Conflict):
    slug = "invitation-pending"
    title = "Invitation pending"


class UserRequired(Forbidden):
    """Profiles, preferences and addresses belong to users: an API key has none."""

    slug = "user-required"
    title = "User required"


class TooManyAddresses(Conflict):
    slug = "too-many-addresses"
    title = "Too many addresses"
