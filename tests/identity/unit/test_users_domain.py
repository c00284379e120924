"""The rules of users.py, without a database: who may grant what, to whom, and what a profile or address holds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from doorstep.identity.domain.errors import RoleNotGrantable, UserNotManageable
from doorstep.identity.domain.users import Address, User, UserStatus
from doorstep.identity.users import (
    COUNTRIES,
    Caller,
    address_fields,
    can_see,
    check_grantable,
    check_location,
    check_manageable,
    check_merchants,
    merge_patch,
    patched_preferences,
    patched_profile,
    with_default_address,
)
from doorstep.kernel.errors import InvalidInput
from doorstep.kernel.permissions import DEFAULT_ROLES, TENANT_PERMISSIONS, Role

NOW = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)


def caller(
    permissions: frozenset[str] = TENANT_PERMISSIONS,
    *,
    reach: str = "tenant",
    merchant_ids: frozenset[str] = frozenset(),
    actor: str = "user:u-caller",
) -> Caller:
    return Caller.of(actor=actor, permissions=permissions, reach=reach, merchant_ids=merchant_ids)


def user(roles: set[str], *, user_id: str = "u-1", merchant_ids: frozenset[str] = frozenset()) -> User:
    return User(
        id=user_id,
        tenant_id="t-1",
        email="someone@example.com",
        phone=None,
        password_hash=None,
        name="Someone",
        status=UserStatus.ACTIVE,
        roles=frozenset(roles),
        merchant_ids=merchant_ids,
        profile={},
        preferences={},
        created_at=NOW,
        updated_at=NOW,
    )


# --- Granting roles ------------------------------------------------------------------------------------


def test_a_tenant_admin_grants_every_role_but_super_admin() -> None:
    # Given a caller with every permission of the tenant
    admin = caller()

    # When they grant each tenant role
    # Then none is refused
    check_grantable([role.value for role in Role if role is not Role.SUPER_ADMIN], overrides={}, caller=admin)
    # But super_admin is refused, naming the role
    with pytest.raises(RoleNotGrantable) as refused:
        check_grantable(["super_admin"], overrides={}, caller=admin)
    assert refused.value.extensions["role"] == "super_admin"


def test_a_role_holding_a_permission_the_caller_lacks_is_refused() -> None:
    # Given a fulfilment admin who may also manage users
    lead = caller(DEFAULT_ROLES[Role.FULFILMENT_ADMIN] | {"users.manage"})

    # When they grant a dispatcher, and then an inventory admin
    check_grantable(["dispatcher"], overrides={}, caller=lead)
    with pytest.raises(RoleNotGrantable) as refused:
        check_grantable(["dispatcher", "inventory_admin"], overrides={}, caller=lead)

    # Then the inventory admin is refused, listing what they lack
    assert refused.value.extensions["role"] == "inventory_admin"
    assert refused.value.extensions["missing_permissions"] == ["catalog.manage", "inventory.manage"]


def test_the_tenants_matrix_decides_what_a_role_holds() -> None:
    # Given a fulfilment admin, and a tenant whose dispatchers may refund
    lead = caller(DEFAULT_ROLES[Role.FULFILMENT_ADMIN])
    overrides = {"dispatcher": DEFAULT_ROLES[Role.DISPATCHER] | {"wallet.refund"}}

    # When they grant a dispatcher
    with pytest.raises(RoleNotGrantable) as refused:
        check_grantable(["dispatcher"], overrides=overrides, caller=lead)

    # Then it is refused for wallet.refund alone
    assert refused.value.extensions["missing_permissions"] == ["wallet.refund"]


def test_a_role_reaching_further_than_the_caller_is_refused() -> None:
    # Given merchant staff who hold every permission but reach only their merchants
    staff = caller(reach="merchants", merchant_ids=frozenset({"m1"}))

    # When they grant an employee (tenant reach) and a driver (own reach)
    check_grantable(["driver"], overrides={}, caller=staff)
    with pytest.raises(RoleNotGrantable, match="reaches tenant"):
        check_grantable(["employee"], overrides={}, caller=staff)


# --- Managing users ------------------------------------------------------------------------------------


def test_only_a_caller_holding_everything_a_user_holds_manages_them() -> None:
    # Given a fulfilment admin who may manage users
    lead = caller(DEFAULT_ROLES[Role.FULFILMENT_ADMIN] | {"users.manage"})

    # When they manage a dispatcher, and a tenant admin
    check_manageable(user({"dispatcher"}), overrides={}, caller=lead)
    with pytest.raises(UserNotManageable):
        check_manageable(user({"tenant_admin"}), overrides={}, caller=lead)
    # And a key with every tenant permission cannot manage the installation's super-admin
    with pytest.raises(UserNotManageable):
        check_manageable(user({"super_admin"}), overrides={}, caller=caller())


def test_reach_decides_whom_a_caller_sees() -> None:
    # Given staff of merchant m1, and a caller of reach own
    staff = caller(reach="merchants", merchant_ids=frozenset({"m1"}), actor="user:u-staff")
    customer = caller(reach="own", actor="user:u-customer")

    # Then staff see users of m1 and themselves, nobody else
    assert can_see(user({"merchant_staff"}, merchant_ids=frozenset({"m1", "m2"})), staff)
    assert can_see(user({"merchant_staff"}, user_id="u-staff"), staff)
    assert not can_see(user({"merchant_staff"}, merchant_ids=frozenset({"m2"})), staff)
    assert not can_see(user({"dispatcher"}), staff)
    # And a customer sees only themselves
    assert can_see(user({"customer"}, user_id="u-customer"), customer)
    assert not can_see(user({"customer"}), customer)
    # And the tenant reach sees everyone
    assert can_see(user({"customer"}), caller())


def test_merchant_staff_need_merchants() -> None:
    # Given a tenant admin
    # When they make merchant staff without merchants
    with pytest.raises(InvalidInput) as refused:
        check_merchants(frozenset({"merchant_staff"}), frozenset(), frozenset(), caller=caller())

    # Then the problem names merchant_ids
    assert refused.value.field == "merchant_ids"


def test_merchant_staff_add_and_remove_only_their_own_merchants() -> None:
    # Given staff of m1 and m2
    staff = caller(reach="merchants", merchant_ids=frozenset({"m1", "m2"}))
    roles = frozenset({"merchant_staff"})

    # When they add or remove their own merchants for a user who is also staff of m9
    check_merchants(roles, frozenset({"m1", "m9"}), frozenset({"m2", "m9"}), caller=staff)
    # But touching m9, or adding m8, is refused
    for old, new in [({"m1", "m9"}, {"m1"}), ({"m1"}, {"m1", "m8"})]:
        with pytest.raises(InvalidInput) as refused:
            check_merchants(roles, frozenset(old), frozenset(new), caller=staff)
        assert refused.value.field == "merchant_ids"


# --- Profiles and preferences --------------------------------------------------------------------------


def test_a_merge_patch_merges_objects_and_null_removes() -> None:
    # Given a stored document
    stored = {"customer": {"marketing_opt_in": True, "date_of_birth": "1990-01-01"}, "dealer": {"x": 1}}

    # When a patch changes one nested field, removes another and a whole section
    merged = merge_patch(
        stored, {"customer": {"marketing_opt_in": False, "date_of_birth": None}, "dealer": None}
    )

    # Then only those changed, and the stored document is untouched
    assert merged == {"customer": {"marketing_opt_in": False}}
    assert stored["customer"] == {"marketing_opt_in": True, "date_of_birth": "1990-01-01"}


def test_a_dealer_profile_needs_its_company_name() -> None:
    # Given no profile yet
    # When a dealer section without a company name is patched in
    with pytest.raises(InvalidInput) as refused:
        patched_profile({}, {"dealer": {"vat_id": "DE123456789"}})

    # Then the problem names the field
    assert refused.value.field == "profile.dealer.company_name"
    # But with the company name stored before, a VAT id alone is enough, in canonical form
    profile = patched_profile(
        {"dealer": {"company_name": "Dora GmbH"}}, {"dealer": {"vat_id": "de 123456789"}}
    )
    assert profile == {"dealer": {"company_name": "Dora GmbH", "vat_id": "DE123456789"}}


def test_an_unknown_profile_field_is_named() -> None:
    with pytest.raises(InvalidInput) as refused:
        patched_profile({}, {"customer": {"shoe_size": 44}})
    assert refused.value.field == "profile.customer.shoe_size"


@pytest.mark.parametrize(
    ("given", "stored"),
    [("de", "de"), ("EN-gb", "en-GB"), ("es-419", "es-419"), ("zh-hant-tw", "zh-Hant-TW")],
)
def test_languages_are_kept_as_bcp47_tags(given: str, stored: str) -> None:
    assert patched_preferences({}, {"language": given}) == {"language": stored}


@pytest.mark.parametrize("given", ["", "english", "d3", "en-GB-x"])
def test_other_languages_are_refused(given: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        patched_preferences({}, {"language": given})
    assert refused.value.field == "preferences.language"


def test_the_default_address_follows_into_the_profile() -> None:
    # Given a profile with a customer section
    profile = {"customer": {"marketing_opt_in": True}}

    # When the default address is set, then there is none
    with_default = with_default_address(profile, "a-1")
    without = with_default_address(with_default, None)

    # Then the id comes and goes, and the rest stays
    assert with_default == {"customer": {"marketing_opt_in": True, "default_address_id": "a-1"}}
    assert without == profile
    assert with_default_address({}, None) == {}


# --- Addresses -----------------------------------------------------------------------------------------


def test_every_iso_country_code_is_known() -> None:
    assert len(COUNTRIES) == 249
    assert {"DE", "GB", "US", "SS", "XK"} & COUNTRIES == {"DE", "GB", "US", "SS"}


def test_address_fields_are_checked_and_made_canonical() -> None:
    # Given address fields as a client sends them
    fields = address_fields({"label": " Home ", "country": "de", "lat": 52.5, "line2": None})

    # Then text is trimmed and the country in capitals
    assert fields == {"label": "Home", "country": "DE", "lat": 52.5, "line2": None}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"country": "XX"}, "country"),
        ({"lat": 91.0}, "lat"),
        ({"lng": float("nan")}, "lng"),
        ({"line1": "a\x00b"}, "line1"),
        ({"city": None}, "city"),
        ({"floor": 3}, "floor"),
    ],
)
def test_bad_address_fields_are_named(fields: dict[str, object], named: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        address_fields(fields)
    assert refused.value.field == named


def test_a_location_needs_both_coordinates() -> None:
    # Given an address with a latitude only
    address = Address(
        id="a-1",
        tenant_id="t-1",
        user_id="u-1",
        label="Home",
        line1="L",
        city="C",
        country="DE",
        created_at=NOW,
    )
    address.lat = 52.5

    # Then the missing longitude is named
    with pytest.raises(InvalidInput) as refused:
        check_location(address)
    assert refused.value.field == "lng"
    # And with both, or neither, it is fine
    address.lng = 13.4
    check_location(address)
    address.lat = address.lng = None
    check_location(address)
