"""Inbound partner platforms by the name used in webhook URLs."""

from __future__ import annotations

from doorstep.integrations.adapters.platforms.doordash_drive import DoorDashDriveAdapter
from doorstep.integrations.adapters.platforms.doorstep_json import DoorstepAdapter
from doorstep.integrations.adapters.platforms.json_mapping import JsonMappingAdapter
from doorstep.integrations.adapters.platforms.shopify import ShopifyAdapter
from doorstep.integrations.adapters.platforms.square import SquareAdapter
from doorstep.integrations.adapters.platforms.ubereats import UberEatsAdapter
from doorstep.integrations.adapters.platforms.woocommerce import WooCommerceAdapter
from doorstep.integrations.ports import PlatformAdapter


class UnknownPlatform(LookupError):
    """No adapter is registered under that platform name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown platform {name!r}; known: {', '.join(sorted(PLATFORMS))}")
        self.name = name


PLATFORMS: dict[str, PlatformAdapter] = {
    "doorstep": DoorstepAdapter(),
    "shopify": ShopifyAdapter(),
    "woocommerce": WooCommerceAdapter(),
    "square": SquareAdapter(),
    "doordash_drive": DoorDashDriveAdapter(),
    "ubereats": UberEatsAdapter(),
    "json_mapping": JsonMappingAdapter(),
}


def platform_adapter(name: str) -> PlatformAdapter:
    """The adapter for `name` as it appears in `/v1/integrations/webhooks/{platform}/...`."""
    try:
        return PLATFORMS[name]
    except KeyError:
        raise UnknownPlatform(name) from None
