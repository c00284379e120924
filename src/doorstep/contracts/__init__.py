"""Published events and commands, one module per producing service. The only thing services share."""

from doorstep.contracts import identity, integrations, orders

__all__ = ["identity", "integrations", "orders"]
