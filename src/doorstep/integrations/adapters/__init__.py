"""Integrations adapters: the outside world behind the ports in `doorstep.integrations.ports`."""
