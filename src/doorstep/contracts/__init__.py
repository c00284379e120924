"""Published events and commands, one module per producing service (and `audit`, which every service
publishes). The only thing services share."""

from doorstep.contracts import audit, dispatch, identity, integrations, notifications, orders

__all__ = ["audit", "dispatch", "identity", "integrations", "notifications", "orders"]
