"""The permission vocabulary every service declares its endpoints with, and the roles built from it.

A permission names what a caller may do (`orders.read`); a role is a named set of permissions. Identity
stores each tenant's matrix (defaults below, editable by a tenant admin) and writes the caller's
effective permissions into the access token, so every service checks them locally.
"""

from __future__ import annotations

from enum import StrEnum

PERMISSIONS: dict[str, str] = {
    "orders.read": "See orders, their items and status history",
    "orders.create": "Place orders (API, storefront checkout, CSV import)",
    "orders.manage": "Change orders: amend, move along the lifecycle, cancel",
    "integrations.read": "See platform connections and the inbound log",
    "integrations.manage": "Connect platforms, replay inbound deliveries",
    "tickets.read": "See support tickets",
    "tickets.manage": "Open, assign, comment on and close support tickets",
    "pricing.manage": "See and edit the delivery rate card the delivery API quotes with",
    "dispatch.read": "See the fleet, jobs and live positions",
    "dispatch.assign": "Assign, unassign and reorder jobs; change dispatch policies",
    "dispatch.execute": "Carry out one's own jobs as a driver: positions, task steps, proof of delivery",
    "catalog.read": "See merchants, menus and stock",
    "catalog.manage": "Change merchants, menus and prices",
    "inventory.manage": "Change stock levels and reservations",
    "wallet.read": "See payments, balances and payouts",
    "wallet.refund": "Refund payments",
    "reports.read": "See reports and analytics",
    "users.read": "See the tenant's users and employees",
    "users.manage": "Invite, change, activate and deactivate users",
    "roles.manage": "Edit the tenant's permission matrix",
    "api_keys.manage": "Issue and revoke API keys",
    "audit.read": "Read the audit log",
    "profile.self": "Keep one's own profile, preferences and saved addresses",
    "tenants.manage": "Installation: create and see every tenant (super-admin only)",
}

# What only the installation's super-admin holds; no tenant admin can grant it.
INSTALLATION_PERMISSIONS = frozenset({"tenants.manage"})
TENANT_PERMISSIONS = frozenset(PERMISSIONS) - INSTALLATION_PERMISSIONS


class Reach(StrEnum):
    """How far a caller's permissions extend inside the tenant."""

    TENANT = "tenant"  # everything of the tenant
    MERCHANTS = "merchants"  # only the merchants the user is staff of
    OWN = "own"  # only what is the caller's own: a customer's orders, a driver's jobs


class Role(StrEnum):
    SUPER_ADMIN = "super_admin"
    TENANT_ADMIN = "tenant_admin"
    FULFILMENT_ADMIN = "fulfilment_admin"
    INVENTORY_ADMIN = "inventory_admin"
    ANALYTICS_ADMIN = "analytics_admin"
    DISPATCHER = "dispatcher"
    MERCHANT_STAFF = "merchant_staff"
    DEALER = "dealer"
    DRIVER = "driver"
    CUSTOMER = "customer"
    EMPLOYEE = "employee"


ROLE_REACH: dict[Role, Reach] = {
    Role.SUPER_ADMIN: Reach.TENANT,
    Role.TENANT_ADMIN: Reach.TENANT,
    Role.FULFILMENT_ADMIN: Reach.TENANT,
    Role.INVENTORY_ADMIN: Reach.TENANT,
    Role.ANALYTICS_ADMIN: Reach.TENANT,
    Role.DISPATCHER: Reach.TENANT,
    Role.MERCHANT_STAFF: Reach.MERCHANTS,
    Role.DEALER: Reach.OWN,
    Role.DRIVER: Reach.OWN,
    Role.CUSTOMER: Reach.OWN,
    Role.EMPLOYEE: Reach.TENANT,
}

DEFAULT_ROLES: dict[Role, frozenset[str]] = {
    Role.SUPER_ADMIN: frozenset(PERMISSIONS),
    Role.TENANT_ADMIN: TENANT_PERMISSIONS,
    Role.FULFILMENT_ADMIN: frozenset(
        {
            "orders.read",
            "orders.create",
            "orders.manage",
            "dispatch.read",
            "dispatch.assign",
            "integrations.read",
            "catalog.read",
            "reports.read",
            "users.read",
            "profile.self",
            # The support desk: fulfilment follows up tickets on orders, deliveries and connections.
            "tickets.read",
            "tickets.manage",
            # Fulfilment sets what deliveries cost partners.
            "pricing.manage",
        }
    ),
    Role.INVENTORY_ADMIN: frozenset(
        {"catalog.read", "catalog.manage", "inventory.manage", "orders.read", "reports.read", "profile.self"}
    ),
    Role.ANALYTICS_ADMIN: frozenset(
        {"reports.read", "orders.read", "dispatch.read", "wallet.read", "audit.read", "profile.self"}
    ),
    # Dispatchers work the tickets on the orders they move.
    Role.DISPATCHER: frozenset(
        {"orders.read", "orders.manage", "dispatch.read", "dispatch.assign", "profile.self"}
        | {"tickets.read", "tickets.manage"}
    ),
    # Merchant staff open and comment on tickets about their merchants' orders, and see only those
    # (their reach is their merchants): never the tenant's connections or webhook endpoints.
    Role.MERCHANT_STAFF: frozenset(
        {"orders.read", "orders.create", "orders.manage", "catalog.read", "catalog.manage", "profile.self"}
        | {"tickets.read", "tickets.manage"}
    ),
    Role.DEALER: frozenset({"orders.read", "orders.create", "catalog.read", "wallet.read", "profile.self"}),
    Role.DRIVER: frozenset({"dispatch.execute", "profile.self"}),
    Role.CUSTOMER: frozenset({"orders.read", "orders.create", "catalog.read", "wallet.read", "profile.self"}),
    # Employees staff the support desk: they see, take on, comment on and close tickets.
    Role.EMPLOYEE: frozenset(
        {"orders.read", "catalog.read", "profile.self", "tickets.read", "tickets.manage"}
    ),
}
assert set(DEFAULT_ROLES) == set(Role) == set(ROLE_REACH)
assert all(perms <= set(PERMISSIONS) for perms in DEFAULT_ROLES.values())


def reach_of(roles: frozenset[str] | set[str]) -> Reach:
    """The widest reach among the roles: a dispatcher who is also a customer sees the whole tenant."""
    reaches = {ROLE_REACH[Role(role)] for role in roles if role in Role.__members__.values()}
    for reach in (Reach.TENANT, Reach.MERCHANTS, Reach.OWN):
        if reach in reaches:
            return reach
    return Reach.OWN
