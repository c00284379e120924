"""Identity: tenants and API keys (users, roles and tokens come with the identity issue)."""
