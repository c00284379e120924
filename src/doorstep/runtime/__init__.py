"""Running Doorstep: the all-in-one process, one process per service, and the `doorstep` CLI."""
