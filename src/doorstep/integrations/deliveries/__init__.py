"""Doorstep as a delivery API: partners quote, accept, follow and cancel deliveries priced by rate cards."""
