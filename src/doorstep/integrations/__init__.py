"""Integrations: partner platforms in, (later) status webhooks and couriers out."""
