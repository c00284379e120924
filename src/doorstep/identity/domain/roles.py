"""A tenant's permission matrix: the default roles, changed where the tenant admin changed them."""

from __future__ import annotations

from collections.abc import Mapping

from doorstep.kernel.errors import InvalidInput
from doorstep.kernel.permissions import DEFAULT_ROLES, INSTALLATION_PERMISSIONS, PERMISSIONS, Role


def matrix(overrides: Mapping[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    return {role.value: overrides.get(role.value, DEFAULT_ROLES[role]) for role in Role}


def permissions_of(roles: frozenset[str], overrides: Mapping[str, frozenset[str]]) -> frozenset[str]:
    table = matrix(overrides)
    granted: set[str] = set()
    for role in roles:
        granted |= table.get(role, frozenset())
    return frozenset(granted)


def check_matrix_change(role: str, permissions: list[str], *, editor: frozenset[str]) -> frozenset[str]:
    """What a tenant admin may set: known permissions they hold themselves, never installation ones."""
    if role not in {r.value for r in Role}:
        raise InvalidInput(f"unknown role {role!r}", field="role", location="path")
    if role == Role.SUPER_ADMIN:
        raise InvalidInput("the super-admin role belongs to the installation", field="role", location="path")
    for index, permission in enumerate(permissions):
        if permission not in PERMISSIONS:
            raise InvalidInput(
                f"unknown permission {permission!r}", field=f"permissions.{index}", location="body"
            )
        if permission in INSTALLATION_PERMISSIONS:
            raise InvalidInput(
                f"{permission} belongs to the installation's super-admin",
                field=f"permissions.{index}",
                location="body",
            )
        if permission not in editor:
            raise InvalidInput(
                f"you cannot grant {permission}, which you do not hold",
                field=f"permissions.{index}",
                location="body",
            )
    return frozenset(permissions)
