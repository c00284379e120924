"""The platform kernel: shared building blocks that know no service."""
