"""The gateway: the single entry point that routes `/v1/<area>/...` to the service that owns it."""
