"""Outbound status webhooks: tenants' endpoints, signed deliveries (Standard Webhooks), retries."""
